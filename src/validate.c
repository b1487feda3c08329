/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "autoconf.h"

#include <event2/buffer.h>
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "certstore.h"
#include "http.h"
#include "log.h"
#include "pool.h"
#include "runtime.h"
#include "stream.h"
#include "tls.h"
#include "util.h"
#include "validate.h"

#define MAX_RESULTS     256
#define RETRY_FIRST_S   15
#define RETRY_MAX_S     600
#define BODY_PEEK       1024    /* enough to recognise nginx's error page */

struct vresult {
	char *mapping;
	unsigned char fp[32];
	enum validation_state state;
	char reason[200];
	unsigned failures;
	time_t retry_at;
	time_t used;
};

struct vjob {
	struct worker *w;
	struct generation *gen;         /* keeps the mapping and material alive */
	struct dest *d;
	struct vresult *res;
	struct tls_ctx *tls;
	struct upconn *uc;
	struct http_in resp;
	int resp_init;
	struct evbuffer *body;
	struct event *timer, *reap;
	int done;
	struct vjob *next;
};

static struct {
	struct vresult results[MAX_RESULTS];
	struct vjob *jobs;
	struct event *retry;            /* wakes a reload for due retries */
	void (*reload_request)(void);
} V;

void
validate_init(void (*reload_request)(void))
{
	V.reload_request = reload_request;
}

static struct vresult *
result_find(const char *mapping, const unsigned char fp[32], int create)
{
	struct vresult *lru = &V.results[0];

	for (size_t i = 0; i < MAX_RESULTS; i++) {
		struct vresult *r = &V.results[i];
		if (r->mapping && strcmp(r->mapping, mapping) == 0 && memcmp(r->fp, fp, 32) == 0)
			return r;
		if (r->used < lru->used)
			lru = r;
	}
	if (!create)
		return NULL;
	free(lru->mapping);
	memset(lru, 0, sizeof(*lru));
	lru->mapping = xstrdup(mapping);
	memcpy(lru->fp, fp, 32);
	lru->used = time(NULL);
	return lru;
}

enum validation_state
validate_lookup(const char *mapping, const unsigned char fp[32], char *reason, size_t len)
{
	struct vresult *r = result_find(mapping, fp, 0);

	if (r == NULL)
		return VAL_UNKNOWN;
	r->used = time(NULL);
	if (reason != NULL)
		snprintf(reason, len, "%s", r->reason);
	return r->state;
}

static void
vjob_reap(evutil_socket_t fd, short what, void *arg)
{
	struct vjob *j = arg, **pp;

	(void)fd;
	(void)what;
	for (pp = &V.jobs; *pp != NULL; pp = &(*pp)->next)
		if (*pp == j) {
			*pp = j->next;
			break;
		}
	pool_release(j->uc, 0);
	if (j->resp_init)
		http_in_free(&j->resp);
	evbuffer_free(j->body);
	event_free(j->timer);
	event_free(j->reap);
	tls_ctx_free(j->tls);
	generation_unref(&j->gen);
	free(j);
}

static void
arm_retry(time_t at)
{
	struct timeval tv = { at > time(NULL) ? at - time(NULL) : 1, 0 };

	if (V.retry == NULL)
		return;
	evtimer_add(V.retry, &tv);
}

/* Record the outcome; a pass or a due retry brings a reload. */
static void
vjob_finish(struct vjob *j, int ok, const char *reason)
{
	struct vresult *r = j->res;
	const struct cert_material *c = j->d->candidate;
	unsigned delay;

	if (j->done)
		return;
	j->done = 1;
	r->state = ok ? VAL_OK : VAL_FAILED;
	snprintf(r->reason, sizeof(r->reason), "%s", ok ? "" : reason);
	if (ok) {
		log_info("mapping '%s': new certificate serial %s validated against %s",
		    j->d->m->name, c->serial_hex, j->d->authority);
		V.reload_request();
	} else {
		r->failures++;
		delay = RETRY_FIRST_S << (r->failures > 6 ? 6 : r->failures - 1);
		if (delay > RETRY_MAX_S)
			delay = RETRY_MAX_S;
		r->retry_at = time(NULL) + delay;
		log_warnx("mapping '%s': new certificate serial %s (%s) was not accepted by %s: "
		    "%s; keeping serial %s; retry in %us", j->d->m->name, c->serial_hex,
		    c->subject, j->d->authority, reason, j->d->cert->serial_hex, delay);
		arm_retry(r->retry_at);
	}
	event_active(j->reap, EV_TIMEOUT, 0);
}

/* What the response says about our certificate. */
static void
vjob_judge(struct vjob *j)
{
	const struct http_msg *m = &j->resp.msg;
	char reason[200];
	size_t n = evbuffer_get_length(j->body);
	const char *body = n ? (const char *)evbuffer_pullup(j->body, -1) : "";

	if (m->status == 495 || m->status == 496 ||
	    (m->status == 400 && n > 0 && memmem(body, n, "SSL certificate", 15) != NULL)) {
		snprintf(reason, sizeof(reason), "the server answered %d %s to our test "
		    "request (it does not accept the certificate)", m->status,
		    m->reason ? m->reason : "");
		vjob_finish(j, 0, reason);
		return;
	}
	vjob_finish(j, 1, NULL);
}

static int
vjob_body(void *arg, const char *data, size_t len)
{
	struct vjob *j = arg;

	if (evbuffer_get_length(j->body) < BODY_PEEK)
		evbuffer_add(j->body, data, len);
	return 0;
}

static const struct http_in_cb vjob_cb = { .on_body = vjob_body };

static void
vjob_read(struct stream *s, void *arg)
{
	struct vjob *j = arg;
	struct evbuffer_iovec v;

	while (!j->done && evbuffer_peek(s->in, -1, NULL, &v, 1) > 0 && v.iov_len > 0) {
		size_t used = http_in_feed(&j->resp, v.iov_base, v.iov_len);
		evbuffer_drain(s->in, used);
		if (j->resp.state == HTTP_IN_HEAD_DONE && j->resp.msg.status < 200) {
			http_in_resume(&j->resp);       /* interim: wait for the final */
			http_in_resume(&j->resp);
		} else if (j->resp.state == HTTP_IN_HEAD_DONE) {
			http_in_resume(&j->resp);
		} else if (j->resp.state == HTTP_IN_DONE) {
			vjob_judge(j);
		} else if (j->resp.state == HTTP_IN_ERROR) {
			vjob_finish(j, 0, j->resp.error);
		} else if (evbuffer_get_length(j->body) >= BODY_PEEK) {
			vjob_judge(j);
		}
		if (used == 0 && j->resp.state != HTTP_IN_DONE &&
		    j->resp.state != HTTP_IN_HEAD_DONE)
			break;
	}
	if (!j->done && (s->error || s->eof)) {
		if (j->resp.state == HTTP_IN_BODY)
			vjob_judge(j);
		else
			vjob_finish(j, 0, s->error ? stream_error(s) :
			    "the server closed the connection without answering");
	}
}

static void
vjob_ignore(struct stream *s, void *arg)
{
	(void)s;
	(void)arg;
}

static void
vjob_connect_unused(struct stream *s, void *arg, int ok)
{
	(void)s;
	(void)arg;
	(void)ok;
}

static const struct stream_cb vjob_stream_cb = {
	.on_connect = vjob_connect_unused, .on_read = vjob_read,
	.on_drain = vjob_ignore, .on_write_error = vjob_read,
};

static void
vjob_ready(void *arg, struct upconn *uc, enum up_err err, const char *reason)
{
	struct vjob *j = arg;
	const struct mapping *m = j->d->m;

	if (err != UP_OK) {
		char why[300];
		snprintf(why, sizeof(why), "%s", reason);
		j->uc = NULL;
		pool_release(uc, 0);
		vjob_finish(j, 0, why);
		return;
	}
	stream_set_cb(uc->s, &vjob_stream_cb, j);
	evbuffer_add_printf(uc->s->out, "GET %s HTTP/1.1\r\nHost: %s\r\n"
	    "User-Agent: mtlsd-validate\r\nConnection: close\r\n\r\n",
	    m->path_prefix, j->d->authority);
	stream_set_reading(uc->s, 1);
	stream_flush(uc->s);
}

static void
vjob_timeout(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	vjob_finish(arg, 0, "no answer to the test request in time");
}

static void
vjob_start(struct worker *w, struct generation *g, struct dest *d, struct vresult *r)
{
	const struct config *cfg = g->cfg;
	struct vjob *j = xcalloc(1, sizeof(*j));
	uint64_t ms = cfg->timeouts.connect_ms + cfg->timeouts.handshake_ms +
	    cfg->timeouts.upstream_response_ms;
	struct timeval tv = { (time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000 };
	char err[300];

	j->w = w;
	j->d = d;
	j->res = r;
	j->gen = g;
	generation_ref(g);
	j->body = evbuffer_new();
	j->timer = evtimer_new(w->base, vjob_timeout, j);
	j->reap = event_new(w->base, -1, 0, vjob_reap, j);
	j->next = V.jobs;
	V.jobs = j;
	r->state = VAL_RUNNING;
	http_in_init(&j->resp, 0, cfg->limits.max_header_bytes, 100, &vjob_cb, j);
	j->resp_init = 1;
	evtimer_add(j->timer, &tv);
	log_info("mapping '%s': validating new certificate serial %s against %s",
	    d->m->name, d->candidate->serial_hex, d->authority);
	if ((j->tls = tls_ctx_new(d->m, d->candidate, err, sizeof(err))) == NULL) {
		vjob_finish(j, 0, err);
		return;
	}
	j->uc = pool_connect_tls(w, d, j->tls, d->candidate->not_after, vjob_ready, j);
}

static void
retry_due(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
	V.reload_request();     /* the rebuild starts the due checks */
}

void
validate_start(struct worker *w, struct generation *g)
{
	time_t now = time(NULL);

	if (V.retry == NULL)
		V.retry = evtimer_new(w->base, retry_due, NULL);
	for (size_t i = 0; i < g->n_dests; i++) {
		struct dest *d = &g->dests[i];
		struct vresult *r;
		if (d->candidate == NULL)
			continue;
		r = result_find(d->m->name, d->candidate->fingerprint_sha256, 1);
		if (r->state == VAL_RUNNING || r->state == VAL_OK)
			continue;
		if (r->state == VAL_FAILED && now < r->retry_at) {
			arm_retry(r->retry_at);
			continue;
		}
		vjob_start(w, g, d, r);
	}
}

void
validate_free(void)
{
	while (V.jobs != NULL) {
		V.jobs->done = 1;
		vjob_reap(-1, 0, V.jobs);
	}
	for (size_t i = 0; i < MAX_RESULTS; i++)
		free(V.results[i].mapping);
	memset(V.results, 0, sizeof(V.results));
	if (V.retry != NULL)
		event_free(V.retry);
	V.retry = NULL;
}
