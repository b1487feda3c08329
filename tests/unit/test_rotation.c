/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Which certificate is current, and when that changes: certset_choose with
 * an injected clock (the "now" argument). */
#include "autoconf.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "certstore.h"

#define DAY 86400
#define T0 ((time_t)2000000000)        /* 2033-05-18 */

static struct cert_material pairs[4];
static struct cert_material *ptrs[4];
static struct certset set;

/* pairs newest not_before first, as certset_load sorts them */
static void
make_set(size_t n, const time_t nb[], const time_t na[])
{
	memset(&set, 0, sizeof(set));
	for (size_t i = 0; i < n; i++) {
		memset(&pairs[i], 0, sizeof(pairs[i]));
		pairs[i].not_before = nb[i];
		pairs[i].not_after = na[i];
		ptrs[i] = &pairs[i];
	}
	set.pairs = ptrs;
	set.n_pairs = n;
}

static const struct rotation_conf immediately = { ACTIVATE_IMMEDIATELY, 72 * 3600000ULL,
	336 * 3600000ULL };
static const struct rotation_conf before_expiry = { ACTIVATE_BEFORE_EXPIRY, 72 * 3600000ULL,
	336 * 3600000ULL };

static void
t_immediately_newest_valid(void **state)
{
	time_t nb[] = { T0 - DAY, T0 - 30 * DAY }, na[] = { T0 + 90 * DAY, T0 + 10 * DAY };
	time_t next;
	(void)state;

	make_set(2, nb, na);
	assert_ptr_equal(certset_choose(&set, &immediately, T0, &next), &pairs[0]);
	assert_int_equal(next, T0 + 10 * DAY);  /* the old one's expiry */
}

static void
t_future_not_before_stays_pending(void **state)
{
	time_t nb[] = { T0 + 3600, T0 - 30 * DAY }, na[] = { T0 + 90 * DAY, T0 + 10 * DAY };
	time_t next;
	(void)state;

	make_set(2, nb, na);
	assert_ptr_equal(certset_choose(&set, &immediately, T0, &next), &pairs[1]);
	assert_int_equal(next, T0 + 3600);      /* wake up when it becomes valid */
	assert_ptr_equal(certset_choose(&set, &immediately, T0 + 3600, NULL), &pairs[0]);
}

static void
t_before_expiry_holds_new_back(void **state)
{
	time_t nb[] = { T0 - DAY, T0 - 30 * DAY }, na[] = { T0 + 90 * DAY, T0 + 10 * DAY };
	time_t next;
	(void)state;

	make_set(2, nb, na);
	/* old one is 10 days from expiry, window is 72h: it stays */
	assert_ptr_equal(certset_choose(&set, &before_expiry, T0, &next), &pairs[1]);
	assert_int_equal(next, T0 + 10 * DAY - 3 * DAY);
	/* at the window start the new one takes over */
	assert_ptr_equal(certset_choose(&set, &before_expiry, next, NULL), &pairs[0]);
	assert_ptr_equal(certset_choose(&set, &before_expiry, next - 1, NULL), &pairs[1]);
}

static void
t_before_expiry_alone_in_window_still_used(void **state)
{
	time_t nb[] = { T0 - 30 * DAY }, na[] = { T0 + DAY };
	(void)state;

	make_set(1, nb, na);
	assert_ptr_equal(certset_choose(&set, &before_expiry, T0, NULL), &pairs[0]);
}

static void
t_expired_never_chosen(void **state)
{
	time_t nb[] = { T0 - 30 * DAY }, na[] = { T0 - 1 };
	time_t next = 1;
	(void)state;

	make_set(1, nb, na);
	assert_null(certset_choose(&set, &immediately, T0, &next));
	assert_int_equal(next, 0);
	assert_null(certset_choose(&set, &before_expiry, T0, NULL));
}

static void
t_not_after_is_exclusive(void **state)
{
	time_t nb[] = { T0 - DAY }, na[] = { T0 };
	(void)state;

	make_set(1, nb, na);
	assert_null(certset_choose(&set, &immediately, T0, NULL));
	assert_ptr_equal(certset_choose(&set, &immediately, T0 - 1, NULL), &pairs[0]);
}

static void
t_before_expiry_three_generations(void **state)
{
	/* newest first: brand new, middle (outside window), oldest (in window) */
	time_t nb[] = { T0 - 1, T0 - 10 * DAY, T0 - 60 * DAY };
	time_t na[] = { T0 + 100 * DAY, T0 + 50 * DAY, T0 + DAY };
	(void)state;

	make_set(3, nb, na);
	assert_ptr_equal(certset_choose(&set, &before_expiry, T0, NULL), &pairs[1]);
	assert_ptr_equal(certset_choose(&set, &immediately, T0, NULL), &pairs[0]);
}

static void
t_certificate_yaml_overrides_policy(void **state)
{
	struct rotation_conf out;
	(void)state;

	memset(&set, 0, sizeof(set));
	certset_rotation(&set, &immediately, &out);
	assert_int_equal(out.activate, ACTIVATE_IMMEDIATELY);
	set.opts.has_activate = 1;
	set.opts.rotation.activate = ACTIVATE_BEFORE_EXPIRY;
	set.opts.has_before_expiry = 1;
	set.opts.rotation.activate_before_expiry_ms = 3600000;
	certset_rotation(&set, &immediately, &out);
	assert_int_equal(out.activate, ACTIVATE_BEFORE_EXPIRY);
	assert_int_equal(out.activate_before_expiry_ms, 3600000);
	assert_int_equal(out.warn_before_ms, immediately.warn_before_ms);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(t_immediately_newest_valid),
		cmocka_unit_test(t_future_not_before_stays_pending),
		cmocka_unit_test(t_before_expiry_holds_new_back),
		cmocka_unit_test(t_before_expiry_alone_in_window_still_used),
		cmocka_unit_test(t_expired_never_chosen),
		cmocka_unit_test(t_not_after_is_exclusive),
		cmocka_unit_test(t_before_expiry_three_generations),
		cmocka_unit_test(t_certificate_yaml_overrides_policy),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
