/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "autoconf.h"

#include <errno.h>
#include <event2/dns.h>
#include <event2/event.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "log.h"
#include "loop.h"
#include "proxy.h"
#include "runtime.h"
#include "util.h"
#include "workers.h"
#include "x509.h"

#define DRAIN_POLL_MS 20

/* A worker thread and its one-call mailbox (only the main thread posts,
 * and it waits for each call, so one slot is enough). */
struct worker_thread {
	pthread_t tid;
	int running;
	int stop;                       /* the worker's own: leave the loop */
	int efd;                        /* eventfd: a call is waiting */
	struct event *ev;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	worker_fn fn;
	void *arg;
	int done;
};

static struct {
	struct worker **all;            /* [id]; all[0] is the main thread's */
	unsigned n;
	struct event *drain_poll;
} W;

static void
base_new(struct worker *w)
{
	TAILQ_INIT(&w->conns);
	if ((w->base = event_base_new()) == NULL)
		fatalx("cannot create the event loop");
	w->dns = evdns_base_new(w->base, EVDNS_BASE_INITIALIZE_NAMESERVERS);
	if (w->dns == NULL)     /* no resolv.conf: /etc/hosts and literals only */
		w->dns = evdns_base_new(w->base, 0);
	if (w->dns == NULL)
		fatalx("cannot create the DNS resolver");
}

/* In the worker's thread: run the posted call, then say it is done. */
static void
call_cb(evutil_socket_t fd, short what, void *arg)
{
	struct worker *w = arg;
	struct worker_thread *th = w->th;
	uint64_t v;
	worker_fn fn;
	void *fn_arg;

	(void)what;
	(void)!read(fd, &v, sizeof(v));
	pthread_mutex_lock(&th->mu);
	fn = th->fn;
	fn_arg = th->arg;
	pthread_mutex_unlock(&th->mu);
	if (fn == NULL)
		return;
	fn(w, fn_arg);
	pthread_mutex_lock(&th->mu);
	th->fn = NULL;
	th->done = 1;
	pthread_cond_signal(&th->cv);
	pthread_mutex_unlock(&th->mu);
}

void
workers_init(struct worker *main_w, unsigned n)
{
	W.n = n;
	W.all = xcalloc(n, sizeof(*W.all));
	W.all[0] = main_w;
	main_w->id = 0;
	base_new(main_w);
	for (unsigned i = 1; i < n; i++) {
		struct worker *w = xcalloc(1, sizeof(*w));
		struct worker_thread *th = xcalloc(1, sizeof(*th));
		w->id = i;
		w->th = th;
		base_new(w);
		if ((th->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) < 0)
			fatal("eventfd");
		th->ev = event_new(w->base, th->efd, EV_READ | EV_PERSIST, call_cb, w);
		if (th->ev == NULL || event_add(th->ev, NULL) < 0)
			fatalx("cannot create a worker's event");
		pthread_mutex_init(&th->mu, NULL);
		pthread_cond_init(&th->cv, NULL);
		W.all[i] = w;
	}
	runtime_set_workers(n);
}

unsigned
workers_count(void)
{
	return W.n;
}

struct worker *
workers_get(unsigned i)
{
	return W.all[i];
}

static void *
worker_main(void *arg)
{
	struct worker *w = arg;
	char name[16];

	snprintf(name, sizeof(name), "mtlsd-w%u", w->id);
	(void)pthread_setname_np(pthread_self(), name);
	/* a drain ends the loop once idle; the thread runs until told to stop */
	while (!w->th->stop)
		loop_run(&w->loop, w->base, EVLOOP_NO_EXIT_ON_EMPTY);
	x509_thread_cleanup();
	return NULL;
}

void
workers_start(void)
{
	sigset_t all, old;
	int err;

	/* signals are the main thread's (its loop watches them) */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	for (unsigned i = 1; i < W.n; i++) {
		struct worker *w = W.all[i];
		if ((err = pthread_create(&w->th->tid, NULL, worker_main, w)) != 0)
			fatalx("cannot start worker %u: %s", i, strerror(err));
		w->th->running = 1;
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
}

void
workers_call(struct worker *w, worker_fn fn, void *arg)
{
	struct worker_thread *th = w->th;
	uint64_t one = 1;

	if (th == NULL || !th->running) {
		fn(w, arg);
		return;
	}
	pthread_mutex_lock(&th->mu);
	th->fn = fn;
	th->arg = arg;
	th->done = 0;
	pthread_mutex_unlock(&th->mu);
	while (write(th->efd, &one, sizeof(one)) < 0 && errno == EINTR)
		;
	pthread_mutex_lock(&th->mu);
	while (!th->done)
		pthread_cond_wait(&th->cv, &th->mu);
	pthread_mutex_unlock(&th->mu);
}

void
workers_call_all(worker_fn fn, void *arg)
{
	for (unsigned i = W.n; i-- > 0;)
		workers_call(W.all[i], fn, arg);
}

static int
all_idle(void)
{
	for (unsigned i = 0; i < W.n; i++)
		if (RELAXED_GET(W.all[i]->n_conns) != 0)
			return 0;
	return 1;
}

void
workers_drained(struct worker *w)
{
	if (w->id == 0 && all_idle())
		event_base_loopexit(w->base, NULL);
}

static void
drain_poll(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
	if (all_idle())
		event_base_loopexit(W.all[0]->base, NULL);
}

static void
drain_one(struct worker *w, void *arg)
{
	(void)arg;
	proxy_drain(w);
}

void
workers_drain(void)
{
	struct timeval tv = { 0, DRAIN_POLL_MS * 1000 };

	/* the others' last connections end in their threads: poll for them */
	if (W.n > 1 && W.drain_poll == NULL) {
		W.drain_poll = event_new(W.all[0]->base, -1, EV_PERSIST, drain_poll, NULL);
		event_add(W.drain_poll, &tv);
	}
	workers_call_all(drain_one, NULL);
}

static void
stop_one(struct worker *w, void *arg)
{
	(void)arg;
	generation_leave(w);
	w->th->stop = 1;
	event_base_loopbreak(w->base);
}

void
workers_stop(void)
{
	int kept = 0;

	if (W.drain_poll != NULL)
		event_free(W.drain_poll);
	W.drain_poll = NULL;
	for (unsigned i = 1; i < W.n; i++) {
		struct worker *w = W.all[i];
		struct worker_thread *th = w->th;
		if (th->running) {
			workers_call(w, stop_one, NULL);
			pthread_join(th->tid, NULL);
			th->running = 0;
		} else {
			generation_leave(w);
		}
		if (w->n_conns > 0) {
			/* still busy after the drain period: the process exits with
			 * them, as the main thread's own */
			kept = 1;
			continue;
		}
		event_free(th->ev);
		close(th->efd);
		pthread_mutex_destroy(&th->mu);
		pthread_cond_destroy(&th->cv);
		evdns_base_free(w->dns, 0);
		event_base_free(w->base);
		free(th);
		free(w);
		W.all[i] = NULL;
	}
	if (!kept)
		free(W.all);
	W.n = 0;
}
