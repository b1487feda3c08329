/* SPDX-License-Identifier: GPL-2.0-or-later */
/* loop.c: the busy-polling window and the loop's exits. */
#include "autoconf.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <event2/event.h>
#include <sys/socket.h>
#include <unistd.h>

#include "loop.h"

static void
t_window_grows_on_short_sleeps(void **state)
{
	(void)state;
	/* from nothing to a quarter of the limit, then doubling, capped */
	assert_int_equal(loop_next_window(0, 10, 50), 12);
	assert_int_equal(loop_next_window(12, 10, 50), 24);
	assert_int_equal(loop_next_window(24, 10, 50), 48);
	assert_int_equal(loop_next_window(48, 10, 50), 50);
	assert_int_equal(loop_next_window(50, 50, 50), 50);
	assert_int_equal(loop_next_window(0, 0, 1000), 250);
	assert_int_equal(loop_next_window(0, 1, 1), 1);
}

static void
t_window_shrinks_to_nothing_on_long_sleeps(void **state)
{
	(void)state;
	assert_int_equal(loop_next_window(50, 51, 50), 25);
	assert_int_equal(loop_next_window(25, 1000000, 50), 12);
	assert_int_equal(loop_next_window(12, 1000000, 50), 0);
	assert_int_equal(loop_next_window(0, 1000000, 50), 0);
	/* woken by a timer or signal */
	assert_int_equal(loop_next_window(50, UINT64_MAX, 50), 25);
	/* busy_poll: 0 never polls, however short the sleep */
	assert_int_equal(loop_next_window(0, 0, 0), 0);
	assert_int_equal(loop_next_window(40, 0, 0), 0);
}

static void
t_set_busy_poll_clamps_the_window(void **state)
{
	struct loop l = {0};
	(void)state;

	loop_set_busy_poll(&l, 200);
	l.window_us = 200;
	loop_set_busy_poll(&l, 50);
	assert_int_equal(l.max_us, 50);
	assert_int_equal(l.window_us, 50);
	loop_set_busy_poll(&l, 0);
	assert_int_equal(l.window_us, 0);
}

/* A ping-pong over a socket pair: every byte read is written back by the
 * peer's callback, so events keep coming microseconds apart, which is
 * what makes the window grow; after `rounds` the last callback ends the
 * loop the way a drain or a stop does. */
struct pingpong {
	struct event_base *base;
	struct event *ev[2];
	int fd[2];
	unsigned rounds, seen;
	int use_break;
};

static void
pingpong_cb(evutil_socket_t fd, short what, void *arg)
{
	struct pingpong *pp = arg;
	char c;
	(void)what;

	loop_note_event();
	assert_int_equal(read(fd, &c, 1), 1);
	if (++pp->seen == pp->rounds) {
		if (pp->use_break)
			event_base_loopbreak(pp->base);
		else
			event_base_loopexit(pp->base, NULL);
		return;
	}
	assert_int_equal(write(fd, &c, 1), 1);
}

static void
run_pingpong(unsigned busy_poll_us, int use_break, int flags)
{
	struct pingpong pp = {.rounds = 2000, .use_break = use_break};
	struct loop l = {0};
	unsigned long before = loop_activity.events;

	loop_set_busy_poll(&l, busy_poll_us);
	pp.base = event_base_new();
	assert_non_null(pp.base);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, pp.fd), 0);
	for (int i = 0; i < 2; i++) {
		pp.ev[i] = event_new(pp.base, pp.fd[i], EV_READ | EV_PERSIST, pingpong_cb, &pp);
		assert_int_equal(event_add(pp.ev[i], NULL), 0);
	}
	assert_int_equal(write(pp.fd[0], "x", 1), 1);
	loop_run(&l, pp.base, flags);
	/* every event was handled once and the loop returned at the end */
	assert_int_equal(pp.seen, pp.rounds);
	assert_true(loop_activity.events - before == pp.rounds);
	assert_int_equal(loop_activity.asleep, 0);
	assert_true(l.window_us <= busy_poll_us);
	for (int i = 0; i < 2; i++) {
		event_free(pp.ev[i]);
		close(pp.fd[i]);
	}
	event_base_free(pp.base);
}

static void
t_run_ends_on_loopexit(void **state)
{
	(void)state;
	run_pingpong(0, 0, 0);
	run_pingpong(50, 0, 0);
	run_pingpong(1000, 0, EVLOOP_NO_EXIT_ON_EMPTY);
}

static void
t_run_ends_on_loopbreak(void **state)
{
	(void)state;
	run_pingpong(0, 1, EVLOOP_NO_EXIT_ON_EMPTY);
	run_pingpong(50, 1, EVLOOP_NO_EXIT_ON_EMPTY);
}

static void
t_run_without_events_returns(void **state)
{
	struct event_base *base = event_base_new();
	struct loop l = {0};
	(void)state;

	/* as event_base_dispatch does: nothing to wait for, nothing to run */
	loop_set_busy_poll(&l, 50);
	loop_run(&l, base, 0);
	assert_int_equal(loop_activity.asleep, 0);
	event_base_free(base);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(t_window_grows_on_short_sleeps),
	    cmocka_unit_test(t_window_shrinks_to_nothing_on_long_sleeps),
	    cmocka_unit_test(t_set_busy_poll_clamps_the_window),
	    cmocka_unit_test(t_run_ends_on_loopexit),
	    cmocka_unit_test(t_run_ends_on_loopbreak),
	    cmocka_unit_test(t_run_without_events_returns),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
