/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Token bucket with an injected clock, and the "N/unit" rate syntax. */
#include "autoconf.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "ratelimit.h"

static void
t_burst_then_empty(void **state)
{
	struct ratelimit rl;
	unsigned retry = 0;
	(void)state;

	ratelimit_init(&rl, 10, 10, 1000);
	for (int i = 0; i < 10; i++)
		assert_int_equal(ratelimit_take(&rl, 1000, &retry), 0);
	assert_int_equal(ratelimit_take(&rl, 1000, &retry), -1);
	assert_int_equal(retry, 1);
}

static void
t_refill_exact(void **state)
{
	struct ratelimit rl;
	unsigned retry;
	(void)state;

	ratelimit_init(&rl, 10, 1, 0);
	assert_int_equal(ratelimit_take(&rl, 0, &retry), 0);
	assert_int_equal(ratelimit_take(&rl, 99, &retry), -1);
	assert_int_equal(ratelimit_take(&rl, 100, &retry), 0);
	assert_int_equal(ratelimit_take(&rl, 150, &retry), -1);
	assert_int_equal(ratelimit_take(&rl, 200, &retry), 0);
}

static void
t_burst_cap(void **state)
{
	struct ratelimit rl;
	unsigned retry;
	int ok = 0;
	(void)state;

	ratelimit_init(&rl, 5, 5, 0);
	/* an hour idle refills to the burst, not to 18000 tokens */
	while (ratelimit_take(&rl, 3600000, &retry) == 0)
		ok++;
	assert_int_equal(ok, 5);
}

static void
t_retry_after(void **state)
{
	struct ratelimit rl;
	unsigned retry = 0;
	(void)state;

	ratelimit_init(&rl, 1.0 / 60, 1, 0);		/* 1/m */
	assert_int_equal(ratelimit_take(&rl, 0, &retry), 0);
	assert_int_equal(ratelimit_take(&rl, 0, &retry), -1);
	assert_int_equal(retry, 60);
	assert_int_equal(ratelimit_take(&rl, 30000, &retry), -1);
	assert_int_equal(retry, 30);
	assert_int_equal(ratelimit_take(&rl, 59500, &retry), -1);
	assert_int_equal(retry, 1);			/* 0.5 s rounds up */
	assert_int_equal(ratelimit_take(&rl, 60000, &retry), 0);

	ratelimit_init(&rl, 100.0 / 3600, 1, 0);	/* 100/h: one per 36 s */
	assert_int_equal(ratelimit_take(&rl, 0, &retry), 0);
	assert_int_equal(ratelimit_take(&rl, 0, &retry), -1);
	assert_int_equal(retry, 36);
	/* NULL retry_after is allowed */
	assert_int_equal(ratelimit_take(&rl, 0, NULL), -1);
}

static void
t_fractional_rate(void **state)
{
	struct ratelimit rl;
	unsigned retry;
	int ok = 0;
	(void)state;

	ratelimit_init(&rl, 2.5, 3, 0);
	for (uint64_t t = 0; t <= 10000; t += 10)
		ok += ratelimit_take(&rl, t, &retry) == 0;
	/* 3 at once, then 2.5/s for 10 s */
	assert_int_equal(ok, 3 + 25);
}

static void
t_small_steps_accumulate(void **state)
{
	struct ratelimit rl;
	unsigned retry;
	int ok = 0;
	(void)state;

	/* 3/s sampled every millisecond: 0.003-token float steps must not
	 * lose tokens (burst 2 so the cap never clips a fraction) */
	ratelimit_init(&rl, 3, 2, 0);
	for (uint64_t t = 0; t <= 60000; t++)
		ok += ratelimit_take(&rl, t, &retry) == 0;
	assert_int_equal(ok, 2 + 180);
	/* with burst 1, what exceeds the bucket is discarded, as it should
	 * be: 0.999 + 0.003 is clipped to 1, so a token every 334 ms */
	ok = 0;
	ratelimit_init(&rl, 3, 1, 0);
	for (uint64_t t = 0; t <= 60000; t++)
		ok += ratelimit_take(&rl, t, &retry) == 0;
	assert_int_equal(ok, 1 + 60000 / 334);
}

static void
t_clock_not_advancing(void **state)
{
	struct ratelimit rl;
	unsigned retry;
	(void)state;

	ratelimit_init(&rl, 1, 1, 5000);
	assert_int_equal(ratelimit_take(&rl, 5000, &retry), 0);
	/* an earlier reading adds nothing and does not move the clock back */
	assert_int_equal(ratelimit_take(&rl, 1000, &retry), -1);
	assert_int_equal(ratelimit_take(&rl, 5999, &retry), -1);
	assert_int_equal(ratelimit_take(&rl, 6000, &retry), 0);
}

static void
t_burst_at_least_one(void **state)
{
	struct ratelimit rl;
	unsigned retry;
	(void)state;

	ratelimit_init(&rl, 0.5, 0, 0);
	assert_true(rl.burst == 1);
	assert_int_equal(ratelimit_take(&rl, 0, &retry), 0);
	assert_int_equal(ratelimit_take(&rl, 0, &retry), -1);
	assert_int_equal(retry, 2);
}

static void
t_parse_valid(void **state)
{
	static const struct { const char *s; double v; } cases[] = {
		{ "10/s", 10 }, { "600/m", 10 }, { "3600/h", 1 }, { "2.5/s", 2.5 },
		{ "0.5/s", 0.5 }, { "1/m", 1.0 / 60 }, { "100/h", 100.0 / 3600 },
		{ "1000000000/s", 1e9 }, { "7./s", 7 },
	};
	double v;
	(void)state;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		v = -1;
		if (ratelimit_parse(cases[i].s, &v) != 0)
			fail_msg("%s rejected", cases[i].s);
		if (v < cases[i].v * 0.999999 || v > cases[i].v * 1.000001)
			fail_msg("%s -> %g", cases[i].s, v);
	}
}

static void
t_parse_invalid(void **state)
{
	static const char *const bad[] = {
		"", "10", "10/", "/s", "10/d", "10/sec", "10 /s", "10/ s", "-1/s",
		"0/s", "0.0/s", "1e3/s", "inf/s", "nan/s", "0x10/s", ".5/s ",
		"10/s ", "2000000000/s", "1234567890123456/s", "10/S",
	};
	double v = 42;
	(void)state;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (ratelimit_parse(bad[i], &v) != -1)
			fail_msg("'%s' accepted", bad[i]);
	assert_true(v == 42);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(t_burst_then_empty), cmocka_unit_test(t_refill_exact),
		cmocka_unit_test(t_burst_cap), cmocka_unit_test(t_retry_after),
		cmocka_unit_test(t_fractional_rate),
		cmocka_unit_test(t_small_steps_accumulate),
		cmocka_unit_test(t_clock_not_advancing),
		cmocka_unit_test(t_burst_at_least_one),
		cmocka_unit_test(t_parse_valid), cmocka_unit_test(t_parse_invalid),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
