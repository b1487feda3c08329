/* SPDX-License-Identifier: GPL-2.0-or-later */
/* loop.c: a worker's event loop with adaptive busy polling (see loop.h). */
#include "autoconf.h"

#include <event2/event.h>

#include "log.h"
#include "loop.h"
#include "util.h"

__thread struct loop_activity loop_activity;

void
loop_woke(void)
{
	loop_activity.asleep = 0;
	loop_activity.woke_us = now_us();
}

unsigned
loop_next_window(unsigned window_us, uint64_t slept_us, unsigned max_us)
{
	/* grow from a quarter of the limit, double, halve, as haltpoll does */
	unsigned start = max_us / 4 > 0 ? max_us / 4 : max_us;

	if (max_us == 0)
		return 0;
	if (slept_us <= max_us)
		return window_us < start ? start : window_us >= max_us / 2 ? max_us : window_us * 2;
	window_us /= 2;
	return window_us < start ? 0 : window_us;
}

void
loop_set_busy_poll(struct loop *l, unsigned max_us)
{
	l->max_us = max_us;
	if (l->window_us > max_us)
		l->window_us = max_us;
}

static int
loop_ended(struct event_base *base, int rc)
{
	return rc != 0 || event_base_got_exit(base) || event_base_got_break(base);
}

/* Poll without blocking until the window passes with no event. */
static int
loop_poll(struct loop *l, struct event_base *base, int flags)
{
	uint64_t last = now_us();

	while (l->window_us > 0) {
		unsigned long before = loop_activity.events;
		uint64_t t;

		if (loop_ended(base, event_base_loop(base, EVLOOP_NONBLOCK | flags)))
			return -1;
		t = now_us();
		log_access_tick(t);
		if (loop_activity.events != before)
			last = t;
		else if (t - last >= l->window_us)
			break;
	}
	return 0;
}

static void
loop_serve(struct loop *l, struct event_base *base, int flags)
{
	for (;;) {
		uint64_t t0;
		int rc;

		log_access_flush(); /* before a sleep: no line waits on an idle loop */
		t0 = l->max_us > 0 ? now_us() : 0;
		loop_activity.asleep = l->max_us > 0;
		loop_activity.woke_us = 0;
		rc = event_base_loop(base, EVLOOP_ONCE | flags);
		loop_activity.asleep = 0;
		if (loop_ended(base, rc))
			return;
		/* woken by a timer or a signal rather than I/O: a long sleep */
		l->window_us = loop_next_window(l->window_us,
		    loop_activity.woke_us != 0 ? loop_activity.woke_us - t0 : UINT64_MAX,
		    l->max_us);
		if (loop_poll(l, base, flags) < 0)
			return;
	}
}

void
loop_run(struct loop *l, struct event_base *base, int flags)
{
	loop_serve(l, base, flags);
	log_access_flush(); /* the lines of the last pass */
}
