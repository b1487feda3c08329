/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Upstream connections: opening new ones (non-blocking DNS, TCP connect over
 * each resolved address in turn, TLS handshake, bounded by timeouts) and
 * keeping idle ones per destination for reuse. An idle connection that the
 * server closes, or that outlives its idle timeout or its client
 * certificate's not-after, is closed.
 */
#ifndef MTLSD_POOL_H
#define MTLSD_POOL_H

#include <stdint.h>
#include <sys/queue.h>
#include <time.h>

struct worker;
struct dest;
struct stream;
struct evutil_addrinfo;
struct tls_ctx;

enum up_err {
	UP_OK = 0,
	UP_DNS,         /* 502 upstream_dns */
	UP_CONNECT,     /* 502 upstream_connect */
	UP_TLS,         /* 502 upstream_tls */
	UP_TIMEOUT,     /* 504 upstream_timeout */
};

struct upconn;
typedef void (*pool_ready_fn)(void *arg, struct upconn *uc, enum up_err err, const char *reason);

struct upconn {
	struct worker *w;
	struct dest *dest;
	struct stream *s;
	struct tls_ctx *tls;            /* identity it presents (d->tls normally) */
	TAILQ_ENTRY(upconn) link;
	struct event *timer;            /* connect deadline, then idle deadline */
	pool_ready_fn ready;
	void *arg;
	struct evdns_getaddrinfo_request *dns_req;
	struct evutil_addrinfo *addrs, *next_addr, *cur_addr;
	int retried_fresh;              /* retried without the saved session */
	uint64_t requests;              /* completed on this connection */
	time_t not_after;               /* of the client certificate presented */
	int idle;
	int dead;                       /* to be freed from the loop */
	int deliver;                    /* outcome pending for ready() */
	int try_next;                   /* connect to the next address */
	uint64_t deadline_ms;           /* connect + handshake deadline */
	enum up_err fail_err;
	char reason[256];
};

/* The same with another client identity (validation of a new certificate):
 * such a connection is never pooled. */
struct upconn *pool_connect_tls(struct worker *w, struct dest *d, struct tls_ctx *tls,
    time_t not_after, pool_ready_fn ready, void *arg);
/* An idle connection of w's to d, or NULL. */
struct upconn *pool_take(struct worker *w, struct dest *d);
/* Start a new connection; ready() is called later from the loop, never from
 * inside this call. */
struct upconn *pool_connect(struct worker *w, struct dest *d, pool_ready_fn ready, void *arg);
/* The owner is done: keep it idle when reusable (and its generation is
 * current and the pool has room), else close it. Also cancels a connect. */
void pool_release(struct upconn *uc, int reusable);
/* Close every idle connection of w's to d. */
void pool_flush(struct dest *d, struct worker *w);
/* w's idle connections to from now belong to to (same TLS context). */
void pool_move(struct dest *from, struct dest *to, struct worker *w);
/* Resumption statistics for logs: was the TLS session resumed? */
int pool_conn_resumed(const struct upconn *uc);

#endif
