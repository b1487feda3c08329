/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * A worker's event loop, with adaptive busy polling (busy_poll: in the
 * configuration). Sleeping in epoll_wait and being woken costs the waker a
 * cross-CPU wake-up (an IPI, a VM exit under a hypervisor) and the sleeper a
 * context switch: under load, where the next event is microseconds away,
 * that is most of a keep-alive request's kernel cost on the load side. So
 * after events, the loop keeps polling without blocking for a short window
 * before it sleeps. The window adapts as the guest haltpoll driver's does:
 * it grows when a sleep ended soon after it began (polling a little longer
 * would have caught the event) and shrinks to nothing when sleeps are long,
 * so an idle or lightly loaded worker never spins.
 */
#ifndef MTLSD_LOOP_H
#define MTLSD_LOOP_H

#include <stdint.h>

struct event_base;

struct loop {
	unsigned max_us;    /* busy_poll; 0 = never poll */
	unsigned window_us; /* current polling window */
};

/* Activity of this thread's loop: the I/O callbacks note each event, so the
 * loop can tell a poll that found work from one that found none. */
struct loop_activity {
	unsigned long events;
	int asleep;       /* blocked in the loop's wait */
	uint64_t woke_us; /* first event after the wait */
};
extern __thread struct loop_activity loop_activity;

void loop_woke(void);

static inline void
loop_note_event(void)
{
	if (__builtin_expect(loop_activity.asleep, 0))
		loop_woke();
	loop_activity.events++;
}

/* Set the polling limit (busy_poll; a reload may change it). */
void loop_set_busy_poll(struct loop *l, unsigned max_us);
/* Run base until event_base_loopexit/loopbreak (or, without
 * EVLOOP_NO_EXIT_ON_EMPTY in flags, until it has no events). */
void loop_run(struct loop *l, struct event_base *base, int flags);

/* The next polling window after a sleep of slept_us (UINT64_MAX: ended by
 * something other than I/O); exposed for the unit tests. */
unsigned loop_next_window(unsigned window_us, uint64_t slept_us, unsigned max_us);

#endif
