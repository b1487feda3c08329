/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "autoconf.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/dns.h>
#include <event2/event.h>
#include <event2/util.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "certstore.h"
#include "log.h"
#include "pool.h"
#include "runtime.h"
#include "stream.h"
#include "tls.h"

static void pool_connect_next(struct upconn *uc);
static void uc_on_connect(struct stream *s, void *arg, int ok);
static void uc_idle_read(struct stream *s, void *arg);
static void uc_ignore(struct stream *s, void *arg);

static const struct stream_cb connect_cb = {
	.on_connect = uc_on_connect, .on_read = uc_ignore,
	.on_drain = uc_ignore, .on_write_error = uc_ignore,
};
static const struct stream_cb idle_cb = {
	.on_connect = uc_on_connect, .on_read = uc_idle_read,
	.on_drain = uc_ignore, .on_write_error = uc_idle_read,
};

static void
uc_ignore(struct stream *s, void *arg)
{
	(void)s;
	(void)arg;
}

static void
uc_free(struct upconn *uc)
{
	if (uc->dns_req != NULL) {
		/* libevent calls back later with EAI_CANCEL: free it there */
		uc->dead = 1;
		uc->ready = NULL;
		evtimer_del(uc->timer);
		evdns_getaddrinfo_cancel(uc->dns_req);
		return;
	}
	if (uc->addrs != NULL)
		evutil_freeaddrinfo(uc->addrs);
	stream_free(uc->s);
	event_free(uc->timer);
	free(uc);
}

static void
uc_unlink_idle(struct upconn *uc)
{
	struct dest_local *l = dest_local(uc->dest, uc->w);

	if (!uc->idle)
		return;
	TAILQ_REMOVE(&l->idle, uc, link);
	RELAXED_SET(l->n_idle, l->n_idle - 1);
	uc->idle = 0;
}

/* Report the outcome from the loop, never from inside the caller's call. */
static void
uc_finish(struct upconn *uc, enum up_err err, const char *reason)
{
	struct timeval tv = { 0, 0 };

	uc->fail_err = err;
	if (reason != uc->reason)
		snprintf(uc->reason, sizeof(uc->reason), "%s", reason);
	uc->deliver = 1;
	evtimer_add(uc->timer, &tv);
}

static void
uc_timer(evutil_socket_t fd, short what, void *arg)
{
	struct upconn *uc = arg;
	pool_ready_fn ready = uc->ready;

	(void)fd;
	(void)what;
	if (uc->idle || uc->dead) {     /* idle deadline, or closed while idle */
		uc_unlink_idle(uc);
		uc_free(uc);
		return;
	}
	if (ready == NULL)
		return;
	if (uc->try_next) {             /* next address, same deadline */
		uint64_t now = now_ms();
		uint64_t left = uc->deadline_ms > now ? uc->deadline_ms - now : 0;
		struct timeval tv = { (time_t)(left / 1000), (suseconds_t)(left % 1000) * 1000 };
		uc->try_next = 0;
		evtimer_add(uc->timer, &tv);
		pool_connect_next(uc);
		return;
	}
	if (uc->deliver) {              /* deferred outcome */
		uc->deliver = 0;
		uc->ready = NULL;
		ready(uc->arg, uc, uc->fail_err, uc->reason);
		return;
	}
	/* connect + handshake deadline */
	uc->ready = NULL;
	snprintf(uc->reason, sizeof(uc->reason), "no TLS connection to %s:%u within %llums",
	    uc->dest->m->host, uc->dest->m->port,
	    (unsigned long long)(uc->dest->gen->cfg->timeouts.connect_ms +
	    uc->dest->gen->cfg->timeouts.handshake_ms));
	ready(uc->arg, uc, UP_TIMEOUT, uc->reason);
}

static int
uc_socket(const struct evutil_addrinfo *ai)
{
	int fd, one = 1;

	fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(fd, ai->ai_addr, ai->ai_addrlen) < 0 && errno != EINPROGRESS) {
		int saved = errno;
		close(fd);
		errno = saved;
		return -1;
	}
	return fd;
}

static void
pool_connect_next(struct upconn *uc)
{
	struct dest *d = uc->dest;
	int fd, last_errno = ECONNREFUSED;

	stream_free(uc->s);
	uc->s = NULL;
	while (uc->next_addr != NULL) {
		struct evutil_addrinfo *ai = uc->next_addr;
		struct tls_conn *tls;

		uc->next_addr = ai->ai_next;
		uc->cur_addr = ai;
		if ((fd = uc_socket(ai)) < 0) {
			last_errno = errno;
			continue;
		}
		if ((tls = tls_conn_new(uc->tls, fd)) == NULL) {
			close(fd);
			uc_finish(uc, UP_TLS, "cannot create a TLS connection");
			return;
		}
		uc->s = stream_new_tls_client(uc->w->base, fd, tls, &connect_cb, uc);
		return;
	}
	snprintf(uc->reason, sizeof(uc->reason), "cannot connect to %s:%u: %s",
	    d->m->host, d->m->port, strerror(last_errno));
	uc_finish(uc, UP_CONNECT, uc->reason);
}

static void
uc_on_connect(struct stream *s, void *arg, int ok)
{
	struct upconn *uc = arg;
	pool_ready_fn ready = uc->ready;
	char reason[300];

	if (ok) {
		struct dest_local *l = dest_local(uc->dest, uc->w);
		evtimer_del(uc->timer);
		RELAXED_SET(l->handshakes, l->handshakes + 1);
		if (tls_conn_resumed(s->tls))
			RELAXED_SET(l->resumed, l->resumed + 1);
		uc->ready = NULL;
		ready(uc->arg, uc, UP_OK, NULL);
		return;
	}
	/* failures go through the loop: the stream is inside its callback */
	if (tls_conn_offered_session(s->tls) && !uc->retried_fresh) {
		struct timeval now = { 0, 0 };
		log_info("mapping %s: TLS resumption with %s:%u failed (%s); retrying "
		    "with a full handshake", uc->dest->m->name, uc->dest->m->host,
		    uc->dest->m->port, stream_error(s));
		tls_ctx_forget_session(uc->dest->tls);
		uc->retried_fresh = 1;
		uc->next_addr = uc->cur_addr;
		uc->try_next = 1;
		evtimer_add(uc->timer, &now);
	} else if (stream_error_is_tls(s)) {
		snprintf(reason, sizeof(reason), "TLS handshake with %s:%u failed: %s",
		    uc->dest->m->host, uc->dest->m->port, stream_error(s));
		uc_finish(uc, UP_TLS, reason);
	} else if (uc->next_addr != NULL) {
		struct timeval now = { 0, 0 };
		uc->try_next = 1;
		evtimer_add(uc->timer, &now);
	} else {
		snprintf(reason, sizeof(reason), "cannot connect to %s:%u: %s",
		    uc->dest->m->host, uc->dest->m->port, stream_error(s));
		uc_finish(uc, UP_CONNECT, reason);
	}
}

static void
uc_dns_done(int result, struct evutil_addrinfo *res, void *arg)
{
	struct upconn *uc = arg;

	uc->dns_req = NULL;
	if (uc->dead) {
		if (res != NULL)
			evutil_freeaddrinfo(res);
		uc_free(uc);
		return;
	}
	if (result != 0) {
		snprintf(uc->reason, sizeof(uc->reason), "cannot resolve %s: %s",
		    uc->dest->m->host, evutil_gai_strerror(result));
		uc_finish(uc, UP_DNS, uc->reason);
		return;
	}
	uc->addrs = uc->next_addr = res;
	pool_connect_next(uc);
}

struct upconn *
pool_connect(struct worker *w, struct dest *d, pool_ready_fn ready, void *arg)
{
	return pool_connect_tls(w, d, d->tls, d->cert->not_after, ready, arg);
}

struct upconn *
pool_connect_tls(struct worker *w, struct dest *d, struct tls_ctx *tls, time_t not_after,
    pool_ready_fn ready, void *arg)
{
	struct upconn *uc = xcalloc(1, sizeof(*uc));
	struct evutil_addrinfo hints;
	const struct config *cfg = d->gen->cfg;
	uint64_t ms = cfg->timeouts.connect_ms + cfg->timeouts.handshake_ms;
	struct timeval tv = { (time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000 };

	uc->w = w;
	uc->dest = d;
	uc->ready = ready;
	uc->arg = arg;
	uc->tls = tls;
	uc->not_after = not_after;
	uc->deadline_ms = now_ms() + ms;
	uc->timer = evtimer_new(w->base, uc_timer, uc);
	evtimer_add(uc->timer, &tv);
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_protocol = IPPROTO_TCP;
	hints.ai_flags = EVUTIL_AI_ADDRCONFIG;
	/* may call back at once (IP literal, /etc/hosts): uc_dns_done copes */
	uc->dns_req = evdns_getaddrinfo(w->dns, d->m->host, d->port_str, &hints,
	    uc_dns_done, uc);
	return uc;
}

struct upconn *
pool_take(struct worker *w, struct dest *d)
{
	struct dest_local *l = dest_local(d, w);
	struct upconn *uc;

	while ((uc = TAILQ_FIRST(&l->idle)) != NULL) {
		uc_unlink_idle(uc);
		evtimer_del(uc->timer);
		if (!uc->s->eof && !uc->s->error && time(NULL) < uc->not_after)
			return uc;
		uc_free(uc);
	}
	return NULL;
}

/*
 * How long a released connection may wait in the pool, in ms; 0: close it.
 * Up to max_idle_per_destination connections wait pool.idle_timeout. One
 * released while that many are idle, the surplus of a burst of concurrent
 * requests, waits pool.surplus_timeout: the rest of the burst reuses it
 * instead of paying a handshake each (with the cap alone, 256 concurrent
 * clients against a cap of 64 made 0.6x the req/s, p99 20x). Never past
 * the client certificate's expiry.
 */
static uint64_t
pool_keep_ms(const struct upconn *uc, time_t now)
{
	struct dest *d = uc->dest;
	const struct config *cfg = d->gen->cfg;
	uint64_t ms, left;

	if (d->gen != uc->w->gen || uc->tls != d->tls || now >= uc->not_after || uc->s->eof ||
	    uc->s->error || evbuffer_get_length(uc->s->in) > 0 ||
	    evbuffer_get_length(uc->s->out) > 0 || cfg->pool.max_idle_per_destination == 0)
		return 0;
	ms = cfg->pool.idle_timeout_ms;
	if (dest_local(d, uc->w)->n_idle >= cfg->pool.max_idle_per_destination &&
	    cfg->pool.surplus_timeout_ms < ms)
		ms = cfg->pool.surplus_timeout_ms;
	left = (uint64_t)(uc->not_after - now) * 1000;
	return left < ms ? left : ms;
}

/* A busy connection of a replaced generation: if the current generation
 * kept its destination's TLS context (same endpoint, same certificate), the
 * connection belongs there now; otherwise it stays with its old, retired
 * destination and is closed on release. */
static void
uc_follow_generation(struct upconn *uc)
{
	struct generation *cur = uc->w->gen;

	for (size_t i = 0; cur != NULL && i < cur->n_dests; i++) {
		struct dest *d = &cur->dests[i];
		if (d->tls == uc->tls && strcmp(d->m->name, uc->dest->m->name) == 0) {
			uc->dest = d;
			return;
		}
	}
}

void
pool_release(struct upconn *uc, int reusable)
{
	time_t now = time(NULL);
	struct dest_local *l;
	uint64_t ms;
	struct timeval tv;

	if (uc == NULL)
		return;
	uc->ready = NULL;
	if (uc->dest->gen != uc->w->gen)
		uc_follow_generation(uc);
	/* a connection that carried a request has a session worth resuming
	 * (TLS 1.3 tickets arrive after the handshake) */
	if (uc->s != NULL && uc->s->connected && !uc->s->error && uc->dest->gen == uc->w->gen &&
	    uc->requests > 0)
		tls_conn_save_session(uc->s->tls);
	if (!reusable || uc->s == NULL || !uc->s->connected || (ms = pool_keep_ms(uc, now)) == 0) {
		uc_free(uc);
		return;
	}
	stream_set_cb(uc->s, &idle_cb, uc);
	stream_set_reading(uc->s, 1);
	tv.tv_sec = (time_t)(ms / 1000);
	tv.tv_usec = (suseconds_t)(ms % 1000) * 1000;
	evtimer_add(uc->timer, &tv);
	uc->idle = 1;
	l = dest_local(uc->dest, uc->w);
	TAILQ_INSERT_HEAD(&l->idle, uc, link);          /* LIFO: warmest first */
	RELAXED_SET(l->n_idle, l->n_idle + 1);
}

/* An idle connection must stay silent: data or EOF means it is unusable. */
static void
uc_idle_read(struct stream *s, void *arg)
{
	struct upconn *uc = arg;
	struct timeval now = { 0, 0 };

	/* not from inside the stream's own callback: the timer frees it */
	stream_set_reading(s, 0);
	uc->dead = 1;
	evtimer_add(uc->timer, &now);
}

void
pool_flush(struct dest *d, struct worker *w)
{
	struct upconn *uc;

	while ((uc = TAILQ_FIRST(&dest_local(d, w)->idle)) != NULL) {
		uc_unlink_idle(uc);
		uc_free(uc);
	}
}

void
pool_move(struct dest *from, struct dest *to, struct worker *w)
{
	struct dest_local *a = dest_local(from, w), *b = dest_local(to, w);
	struct upconn *uc;

	while ((uc = TAILQ_FIRST(&a->idle)) != NULL) {
		TAILQ_REMOVE(&a->idle, uc, link);
		RELAXED_SET(a->n_idle, a->n_idle - 1);
		uc->dest = to;
		TAILQ_INSERT_TAIL(&b->idle, uc, link);
		RELAXED_SET(b->n_idle, b->n_idle + 1);
	}
}

int
pool_conn_resumed(const struct upconn *uc)
{
	return uc->s != NULL && uc->s->tls != NULL && tls_conn_resumed(uc->s->tls);
}
