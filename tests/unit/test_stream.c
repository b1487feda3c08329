/* SPDX-License-Identifier: GPL-2.0-or-later */
/* stream.c: reading a new client's request ahead of epoll, or not. */
#include "autoconf.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "stream.h"

static void
t_reads_ahead_while_a_third_found(void **state)
{
	unsigned skipped = 0;

	(void)state;
	assert_true(stream_read_ahead(256, &skipped));
	assert_true(stream_read_ahead(86, &skipped));
	assert_true(stream_read_ahead(85, &skipped));
	assert_int_equal(skipped, 0);
}

static void
t_below_a_third_tries_one_in_16(void **state)
{
	unsigned skipped = 0, tried = 0;

	(void)state;
	for (int i = 0; i < 64; i++)
		tried += (unsigned)stream_read_ahead(84, &skipped);
	assert_int_equal(tried, 4);
	for (int i = 0; i < 15; i++)
		assert_false(stream_read_ahead(0, &skipped));
	assert_true(stream_read_ahead(0, &skipped));
}

static void
t_rate_averages_about_16_reads(void **state)
{
	unsigned r = 256;
	int n;

	(void)state;
	/* reads that all find stay there */
	assert_int_equal(stream_ahead_rate_next(256, 1), 256);
	/* about 16 that find nothing: below a third */
	for (n = 0; r >= 256 / 3; n++)
		r = stream_ahead_rate_next(r, 0);
	assert_in_range(n, 14, 20);
	/* it never falls below what 6 reads that find bring back over */
	for (int i = 0; i < 1000; i++)
		r = stream_ahead_rate_next(r, 0);
	for (n = 0; r < 256 / 3; n++)
		r = stream_ahead_rate_next(r, 1);
	assert_in_range(n, 1, 6);
	/* one in two finding: well over a third */
	r = 0;
	for (int i = 0; i < 200; i++)
		r = stream_ahead_rate_next(r, i % 2);
	assert_in_range(r, 100, 156);
}

/* ---- real sockets ------------------------------------------------------- */

struct client {
	struct stream *s;
	int peer;
	char got[64];
	size_t len;
};

static void
on_read(struct stream *s, void *arg)
{
	struct client *c = arg;
	size_t n = evbuffer_get_length(s->in);

	if (n > sizeof(c->got) - 1 - c->len)
		n = sizeof(c->got) - 1 - c->len;
	evbuffer_remove(s->in, c->got + c->len, n);
	c->len += n;
}

static const struct stream_cb client_cb = { .on_read = on_read };

static void
client_open(struct event_base *base, struct client *c, const char *first)
{
	int sv[2];

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
	memset(c, 0, sizeof(*c));
	c->peer = sv[1];
	if (first != NULL)
		assert_int_equal(write(c->peer, first, strlen(first)), (ssize_t)strlen(first));
	c->s = stream_new_plain(base, sv[0], &client_cb, c);
}

static void
client_close(struct client *c)
{
	stream_free(c->s);
	close(c->peer);
}

/* Clients that connect and write later teach a worker to stop reading
 * ahead, clients whose request came with the connection teach it to start
 * again; either way every client's bytes arrive. */
static void
t_clients_are_read_whichever_way(void **state)
{
	struct event_base *base = event_base_new();
	struct client c[40];

	(void)state;
	assert_non_null(base);
	for (int round = 0; round < 3; round++) {
		/* silent at first, then they write */
		for (int i = 0; i < 40; i++)
			client_open(base, &c[i], NULL);
		event_base_loop(base, EVLOOP_NONBLOCK);
		for (int i = 0; i < 40; i++)
			assert_int_equal(write(c[i].peer, "late", 4), 4);
		event_base_loop(base, EVLOOP_NONBLOCK);
		for (int i = 0; i < 40; i++) {
			assert_string_equal(c[i].got, "late");
			client_close(&c[i]);
		}
		assert_false(stream_read_ahead_rate() >= 256 / 3);
		/* their requests there at the accept */
		for (int k = 0; k < 4; k++) {
			for (int i = 0; i < 40; i++)
				client_open(base, &c[i], "early");
			event_base_loop(base, EVLOOP_NONBLOCK);
			for (int i = 0; i < 40; i++) {
				assert_string_equal(c[i].got, "early");
				client_close(&c[i]);
			}
		}
		assert_true(stream_read_ahead_rate() >= 256 / 3);
	}
	event_base_free(base);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(t_reads_ahead_while_a_third_found),
		cmocka_unit_test(t_below_a_third_tries_one_in_16),
		cmocka_unit_test(t_rate_averages_about_16_reads),
		cmocka_unit_test(t_clients_are_read_whichever_way),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
