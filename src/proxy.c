/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "autoconf.h"

#include <assert.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "certstore.h"
#include "http.h"
#include "log.h"
#include "pool.h"
#include "proxy.h"
#include "ratelimit.h"
#include "router.h"
#include "runtime.h"
#include "stream.h"
#include "util.h"
#include "vault.h"
#include "workers.h"

#define OUT_HIGH        (256 * 1024)    /* stop reading the other side above this */
#define MAX_HEADERS     100
#define LINGER_MS       2000

/* A client connection is an explicit state machine (memcached conn_set_state). */
enum dc_state {
	DC_HEAD,                /* reading a request head */
	DC_WAIT_UPSTREAM,       /* connecting to the upstream */
	DC_EXCHANGE,            /* request body up, response down */
	DC_LINGER,              /* response sent, discarding input before close */
	DC_CLOSED,              /* waiting to be reaped */
};

/* Client connections open in all workers (limits.max_connections). */
static unsigned conns_total;

/* The mapping's token bucket is one for all workers. */
static int
dest_rate_take(struct dest *d, unsigned *retry)
{
	int r;

	pthread_mutex_lock(&d->rl_lock);
	r = ratelimit_take(&d->rl, now_ms(), retry);
	pthread_mutex_unlock(&d->rl_lock);
	return r;
}

static const char *const dc_state_names[] = {
	"head", "wait-upstream", "exchange", "linger", "closed",
};

struct dconn {
	TAILQ_ENTRY(dconn) link;
	struct worker *w;
	uint64_t id;
	char peer[80];
	char *listener_mapping;         /* dedicated port: its mapping's name */
	struct stream *ds;
	enum dc_state state;
	struct http_in req;
	struct http_in resp;            /* reset for each response, memory kept */
	struct generation *gen;         /* held for one request */
	struct dest *dest;
	struct upconn *up;
	char *up_path;
	unsigned req_done : 1, resp_head_sent : 1, interim : 1, close_after : 1,
	    up_reusable : 1, up_reused : 1, retried : 1, head_request : 1,
	    linger_started : 1, in_pump : 1, pump_again : 1, continue_sent : 1,
	    in_move : 1, no_linger : 1, head_alone : 1;
	uint64_t sent_at_head;          /* ds->sent when the response head was queued */
	enum http_body resp_framing;
	size_t moved;                   /* body bytes dc_feed moves, not copies */
	int status;
	uint64_t t_start, t_up, bytes_in, bytes_out;
	struct event *timer, *reap;
};

static void dc_pump(struct dconn *dc);
static void dc_close(struct dconn *dc);
static void dc_connect_upstream(struct dconn *dc);
static void dc_attach_upstream(struct dconn *dc);

static void
dc_set_state(struct dconn *dc, enum dc_state st)
{
	assert(dc->state != DC_CLOSED);
	log_debug("conn %llu %s: %s -> %s", (unsigned long long)dc->id, dc->peer,
	    dc_state_names[dc->state], dc_state_names[st]);
	dc->state = st;
}

static void
dc_arm(struct dconn *dc, uint64_t ms)
{
	struct timeval tv = { (time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000 };

	evtimer_add(dc->timer, &tv);
}

static const struct config *
dc_cfg(const struct dconn *dc)
{
	return dc->gen ? dc->gen->cfg : dc->w->gen->cfg;
}

/* ---- stream callbacks: everything funnels into dc_pump ---- */

static void
dc_on_io(struct stream *s, void *arg)
{
	struct dconn *dc = arg;

	(void)s;
	dc_pump(dc);
}

static void
dc_on_ds_write_error(struct stream *s, void *arg)
{
	(void)s;
	dc_close(arg);
}

/* Upstream activity restarts the response timeout (after the pump: a
 * response that completes here arms the idle timer instead, once). */
static void
dc_on_up_io(struct stream *s, void *arg)
{
	struct dconn *dc = arg;

	(void)s;
	dc_pump(dc);
	if (dc->state == DC_EXCHANGE)
		dc_arm(dc, dc_cfg(dc)->timeouts.upstream_response_ms);
}

static void
dc_unused_connect(struct stream *s, void *arg, int ok)
{
	(void)s;
	(void)arg;
	(void)ok;
}

static const struct stream_cb ds_cb = {
	.on_connect = dc_unused_connect, .on_read = dc_on_io,
	.on_drain = dc_on_io, .on_write_error = dc_on_ds_write_error,
};
static const struct stream_cb up_cb = {
	.on_connect = dc_unused_connect, .on_read = dc_on_up_io,
	.on_drain = dc_on_io, .on_write_error = dc_on_up_io,
};

/* ---- body relays ---- */

/*
 * A body relayed as is (Content-Length, or delimited by the close) is not
 * copied: the parser still sees every byte, the callbacks only count them,
 * and dc_feed moves the evbuffer chains they came in to the other side.
 * Chunked bodies are decoded and re-framed, so they are copied.
 */
static struct evbuffer *
dc_req_move_to(const struct dconn *dc)
{
	return dc->req.msg.body == HTTP_BODY_LENGTH ? dc->up->s->out : NULL;
}

static struct evbuffer *
dc_resp_move_to(const struct dconn *dc)
{
	if (dc->resp.msg.body == HTTP_BODY_CHUNKED)
		return NULL;
	return dc->resp_framing == HTTP_BODY_LENGTH || dc->resp_framing == HTTP_BODY_EOF ?
	    dc->ds->out : NULL;
}

static int
dc_req_body(void *arg, const char *data, size_t len)
{
	struct dconn *dc = arg;

	dc->bytes_in += len;
	if (dc->in_move) {
		dc->moved += len;
		return 0;
	}
	if (dc->req.msg.body == HTTP_BODY_CHUNKED)
		http_write_chunk(dc->up->s->out, data, len);
	else
		evbuffer_add(dc->up->s->out, data, len);
	return 0;
}

static int
dc_resp_body(void *arg, const char *data, size_t len)
{
	struct dconn *dc = arg;

	dc->bytes_out += len;
	if (dc->in_move) {
		dc->moved += len;
		return 0;
	}
	if (dc->resp_framing == HTTP_BODY_CHUNKED)
		http_write_chunk(dc->ds->out, data, len);
	else
		evbuffer_add(dc->ds->out, data, len);
	return 0;
}

static const struct http_in_cb req_cb = { .on_body = dc_req_body };
static const struct http_in_cb resp_cb = { .on_body = dc_resp_body };

/*
 * Feed buffered bytes until the parser pauses or fails; bytes consumed.
 * With move_to, body bytes go there as they are (see dc_req_move_to): a
 * feed that starts in the body consumes nothing but body bytes (the parser
 * pauses at the end of a message), and the callbacks saw all of them.
 */
static size_t
dc_feed(struct dconn *dc, struct http_in *in, struct evbuffer *buf, struct evbuffer *move_to)
{
	struct evbuffer_iovec v[8];
	size_t total = 0;

	dc->in_move = move_to != NULL && in->state == HTTP_IN_BODY;
	for (;;) {
		int n = evbuffer_peek(buf, -1, NULL, v, 8);
		size_t used = 0;
		int stop = n <= 0;

		for (int i = 0; i < n && i < 8 && !stop; i++) {
			size_t c;
			if (v[i].iov_len == 0)
				continue;       /* 0 bytes would mean EOF to the parser */
			c = http_in_feed(in, v[i].iov_base, v[i].iov_len);
			used += c;
			stop = c < v[i].iov_len ||
			    (in->state != HTTP_IN_HEAD && in->state != HTTP_IN_BODY);
		}
		if (dc->in_move) {
			assert(dc->moved == used);
			if (evbuffer_remove_buffer(buf, move_to, used) != (int)used)
				fatalx("out of memory relaying a body");
			dc->moved = 0;
		} else
			evbuffer_drain(buf, used);
		total += used;
		if (stop || n <= 8)
			break;
	}
	dc->in_move = 0;
	return total;
}

/* ---- end of a request ---- */

static void
dc_access_log(struct dconn *dc)
{
	const struct http_msg *rq = &dc->req.msg;
	uint64_t now;

	if (!log_access_enabled())
		return;
	now = now_ms();
	{
		const struct log_field f[] = {
		    LOG_STR("client", dc->peer),
		    LOG_STR("mapping", dc->dest ? dc->dest->m->name : NULL),
		    LOG_STR("method", rq->method_name),
		    LOG_STR("path", rq->path),
		    LOG_NUM("status", dc->status),
		    LOG_NUM("req_bytes", dc->bytes_in),
		    LOG_NUM("resp_bytes", dc->bytes_out),
		    LOG_NUM("upstream_ms", dc->t_up ? now - dc->t_up : 0),
		    LOG_NUM("total_ms", now - dc->t_start),
		    LOG_STR("cert_serial", dc->dest && dc->dest->cert ? dc->dest->cert->serial_hex : NULL),
		    LOG_STR("upstream_conn", dc->up == NULL ? NULL : dc->up_reused ? "reused" :
			pool_conn_resumed(dc->up) ? "resumed" : "new"),
		};
		log_access(f, ARRAY_LEN(f));
	}
}

/* Forget the request: upstream back to the pool (or closed), generation unref. */
static void
dc_end_request(struct dconn *dc)
{
	dc_access_log(dc);
	if (dc->up != NULL) {
		dc->up->requests++;
		pool_release(dc->up, dc->up_reusable);
		dc->up = NULL;
	}
	free(dc->up_path);
	dc->up_path = NULL;
	dc->dest = NULL;
	generation_unref(&dc->gen);
	dc->req_done = dc->resp_head_sent = dc->interim = dc->up_reusable = 0;
	dc->up_reused = dc->retried = dc->head_request = dc->continue_sent = 0;
	dc->status = 0;
	dc->t_up = dc->bytes_in = dc->bytes_out = 0;
}

/* Nothing unread from the client (a peek: its socket may not be watched),
 * so closing now sends no reset that could destroy the response. */
static int
dc_client_quiet(struct dconn *dc)
{
	char c;
	ssize_t n;

	if (evbuffer_get_length(dc->ds->in) > 0)
		return 0;
	while ((n = recv(dc->ds->fd, &c, 1, MSG_PEEK | MSG_DONTWAIT)) < 0 && errno == EINTR)
		;
	return n <= 0;          /* EAGAIN: nothing; 0: the client closed too */
}

/* Send what is queued, then half-close and discard input for a while so the
 * client reads our response instead of a reset (nginx's lingering close).
 * A client that asked to close and sent nothing after its whole request has
 * nothing a reset could destroy: it is closed at once (nginx's
 * "lingering_close auto"), which saves a loop round per connection. */
static void
dc_close_after_flush(struct dconn *dc)
{
	if (dc->state == DC_CLOSED)
		return;
	if (dc->state != DC_LINGER)
		dc_set_state(dc, DC_LINGER);
	if (dc->linger_started)
		return;
	if (evbuffer_get_length(dc->ds->out) > 0) {
		stream_last_out(dc->ds);        /* the FIN rides on its end */
		return;
	}
	if (dc->no_linger && dc_client_quiet(dc)) {
		dc_close(dc);
		return;
	}
	dc->linger_started = 1;
	(void)shutdown(dc->ds->fd, SHUT_WR);
	stream_set_reading(dc->ds, 1);  /* discard what it sends */
	dc_arm(dc, LINGER_MS);
}

static void
dc_refuse(struct dconn *dc, int status, const char *code, const char *reason,
    unsigned retry_after)
{
	if (dc->state == DC_CLOSED)
		return;
	log_info("conn %llu %s: %d %s: %s", (unsigned long long)dc->id, dc->peer,
	    status, code, reason);
	if (dc->resp_head_sent) {
		if (!dc->head_alone || dc->ds->sent != dc->sent_at_head) {
			/* mid-response: closing is the only honest signal left */
			dc_close(dc);
			return;
		}
		/* the head (and any body) is all still queued, e.g. when the
		 * upstream's head and its fault came in one read: answer with
		 * the error instead */
		evbuffer_drain(dc->ds->out, evbuffer_get_length(dc->ds->out));
		dc->resp_head_sent = 0;
		dc->bytes_out = 0;
	}
	http_write_error(dc->ds->out, status, code, reason, retry_after, 1);
	dc->status = status;
	dc->up_reusable = 0;
	dc_end_request(dc);
	dc_close_after_flush(dc);
}

static void
dc_response_done(struct dconn *dc)
{
	if (dc->resp_framing == HTTP_BODY_CHUNKED)
		http_write_last_chunk(dc->ds->out);
	dc->up_reusable = dc->resp.msg.keep_alive && dc->req_done && !dc->up->s->eof &&
	    !dc->up->s->error;
	if (!dc->req_done)
		dc->close_after = 1;    /* answered before the body ended */
	dc->no_linger = dc->req_done && !dc->req.msg.keep_alive &&
	    evbuffer_get_length(dc->ds->in) == 0;
	dc_end_request(dc);
	if (dc->close_after) {
		dc_close_after_flush(dc);
		return;
	}
	http_in_resume(&dc->req);       /* DONE -> HEAD of the next request */
	dc_set_state(dc, DC_HEAD);
	dc_arm(dc, dc_cfg(dc)->timeouts.idle_ms);
}

/* ---- request head: route and choose an upstream ---- */

/* "host", "host:port", "[v6]:port" -> lower-case host without trailing dot. */
static int
split_host_port(const char *in, char *host, size_t hostlen, uint16_t *port)
{
	const char *end, *colon;
	size_t len;

	*port = 0;
	if (in[0] == '[') {
		if ((end = strchr(in, ']')) == NULL)
			return -1;
		colon = end[1] == ':' ? end + 1 : NULL;
		in++;
	} else {
		colon = strrchr(in, ':');
		end = colon ? colon : in + strlen(in);
	}
	if (colon != NULL) {
		char *ep;
		unsigned long p = strtoul(colon + 1, &ep, 10);
		if (*ep != '\0' || p == 0 || p > 65535)
			return -1;
		*port = (uint16_t)p;
	}
	len = (size_t)(end - in);
	if (len > 0 && in[len - 1] == '.')
		len--;
	if (len == 0 || len >= hostlen)
		return -1;
	memcpy(host, in, len);
	host[len] = '\0';
	ascii_lower(host);
	return 0;
}

/* The mapping for this request, or NULL with a one-line reason. */
static const struct mapping *
dc_route(struct dconn *dc, char *why, size_t whylen)
{
	const struct http_msg *rq = &dc->req.msg;
	const struct mapping *m;
	char host[256];
	uint16_t port = rq->url_port;

	if (dc->listener_mapping != NULL) {
		m = config_find_mapping(dc->gen->cfg, dc->listener_mapping);
		if (m == NULL)
			snprintf(why, whylen, "mapping %s of this port no longer exists",
			    dc->listener_mapping);
		return m;
	}
	if (rq->url_host != NULL) {
		snprintf(host, sizeof(host), "%s", rq->url_host);
	} else if (rq->host_header == NULL ||
	    split_host_port(rq->host_header, host, sizeof(host), &port) < 0) {
		snprintf(why, whylen, "request names no host (send absolute-form "
		    "requests to the proxy port)");
		return NULL;
	}
	return router_match_reason(dc->gen->router, host, port, rq->path_only, why, whylen);
}

/* Could this path climb out of a prefix once the upstream normalises it?
 * Dot segments ("..", ".", also as %2e) and encoded slashes or backslashes
 * (%2f, %5c, "\\") are refused on a prefixed dedicated port. */
static int
path_escapes(const char *path)
{
	const char *seg = path;

	for (const char *p = path;; p++) {
		if (*p == '\\' || (p[0] == '%' && p[1] != '\0' &&
		    (ascii_ncasecmp(p, "%2f", 3) == 0 || ascii_ncasecmp(p, "%5c", 3) == 0)))
			return 1;
		if (*p == '/' || *p == '?' || *p == '\0') {
			size_t len = (size_t)(p - seg), dots = 0, i = 0;
			while (i < len) {
				if (seg[i] == '.')
					i++;
				else if (len - i >= 3 && ascii_ncasecmp(seg + i, "%2e", 3) == 0)
					i += 3;
				else
					break;
				dots++;
			}
			if (i == len && (dots == 1 || dots == 2))
				return 1;
			if (*p != '/')
				return 0;
			seg = p + 1;
		}
	}
}

/* The path to send upstream; NULL when it could leave the mapping's prefix. */
static char *
dc_upstream_path(const struct dconn *dc, const struct mapping *m)
{
	const char *path = dc->req.msg.path;
	size_t plen = strlen(m->path_prefix);

	if (dc->listener_mapping == NULL || strcmp(m->path_prefix, "/") == 0)
		return xstrdup(path);
	if (path_escapes(path))
		return NULL;
	if (plen > 0 && m->path_prefix[plen - 1] == '/')
		plen--;
	return xasprintf("%.*s%s", (int)plen, m->path_prefix, path[0] == '/' ? path : "/");
}

/* Checks in the order a user would debug them; 0 = go on, -1 = refused. */
static int
dc_admit(struct dconn *dc, const struct mapping **mp)
{
	const struct http_msg *rq = &dc->req.msg;
	const struct mapping *m;
	char reason[512];
	unsigned retry;

	if (rq->method == HTTP_CONNECT) {
		dc_refuse(dc, 405, "method_not_allowed", "CONNECT is not supported: send "
		    "plain http:// requests and mtlsd makes the TLS connection", 0);
		return -1;
	}
	if (rq->upgrade) {
		dc_refuse(dc, 501, "upgrade_not_supported",
		    "protocol upgrades (Upgrade header) are not supported", 0);
		return -1;
	}
	if ((m = dc_route(dc, reason, sizeof(reason))) == NULL) {
		dc_refuse(dc, 403, "no_mapping", reason, 0);
		return -1;
	}
	dc->dest = generation_dest(dc->gen, m);
	if (!m->enabled) {
		snprintf(reason, sizeof(reason), "mapping %s is disabled", m->name);
		dc_refuse(dc, 503, "mapping_disabled", reason, 0);
		return -1;
	}
	if (dc->dest->tls == NULL) {
		char why[400] = "";
		if (dc->dest->certs != NULL && dc->dest->certs->opts.vault != NULL)
			vault_cert_reason(m->certificate, why, sizeof(why));
		snprintf(reason, sizeof(reason), "mapping %s has no usable client "
		    "certificate (%s)%s%s", m->name, m->certificate, why[0] ? ": " : "", why);
		dc_refuse(dc, 503, "no_certificate", reason, 0);
		return -1;
	}
	if (m->has_rate_limit && dest_rate_take(dc->dest, &retry) < 0) {
		snprintf(reason, sizeof(reason), "rate limit of mapping %s exceeded", m->name);
		dc_refuse(dc, 429, "rate_limited", reason, retry);
		return -1;
	}
	*mp = m;
	return 0;
}

static void
dc_request_head(struct dconn *dc)
{
	const struct mapping *m;
	struct dest_local *l;
	struct upconn *up;

	evtimer_del(dc->timer);
	dc->t_start = now_ms();
	dc->gen = dc->w->gen;
	generation_ref(dc->gen);
	if (dc_admit(dc, &m) < 0)
		return;
	if ((dc->up_path = dc_upstream_path(dc, m)) == NULL) {
		dc_refuse(dc, 400, "bad_request", "path with dot segments or encoded "
		    "slashes could leave the mapping's path prefix", 0);
		return;
	}
	dc->head_request = dc->req.msg.method == HTTP_HEAD;
	if (!dc->req.msg.keep_alive || dc->w->draining)
		dc->close_after = 1;
	l = dest_local(dc->dest, dc->w);
	RELAXED_SET(l->requests, l->requests + 1);
	if ((up = pool_take(dc->w, dc->dest)) != NULL) {
		dc->up = up;
		dc->up_reused = 1;
		dc_attach_upstream(dc);
		return;
	}
	dc_connect_upstream(dc);
}

/* ---- upstream ---- */

/* Log an upstream failure; TLS failures also name the certificate we sent. */
static void
dc_log_upstream_failure(const struct dconn *dc, int tls, const char *reason)
{
	const struct cert_material *cm = dc->dest->cert;

	if (tls && cm != NULL)
		log_warnx("mapping %s: %s (we presented %s, serial %s, from %s)",
		    dc->dest->m->name, reason, cm->subject, cm->serial_hex, cm->cert_file);
	else
		log_warnx("mapping %s: %s", dc->dest->m->name, reason);
}

static const char *const up_err_codes[] = {
	[UP_OK] = "ok", [UP_DNS] = "upstream_dns", [UP_CONNECT] = "upstream_connect",
	[UP_TLS] = "upstream_tls", [UP_TIMEOUT] = "upstream_timeout",
};

static void
dc_upstream_ready(void *arg, struct upconn *uc, enum up_err err, const char *reason)
{
	struct dconn *dc = arg;
	char why[300];

	if (err != UP_OK) {
		snprintf(why, sizeof(why), "%s", reason);       /* owned by uc */
		dc->up = NULL;
		pool_release(uc, 0);
		dc_log_upstream_failure(dc, err == UP_TLS, why);
		dc_refuse(dc, err == UP_TIMEOUT ? 504 : 502, up_err_codes[err], why, 0);
		dc_pump(dc);
		return;
	}
	dc_attach_upstream(dc);
	dc_pump(dc);
}

static void
dc_connect_upstream(struct dconn *dc)
{
	dc_set_state(dc, DC_WAIT_UPSTREAM);
	stream_set_reading(dc->ds, 0);
	dc->up_reused = 0;
	dc->up = pool_connect(dc->w, dc->dest, dc_upstream_ready, dc);
}

static void
dc_attach_upstream(struct dconn *dc)
{
	const struct http_msg *rq = &dc->req.msg;
	const struct config *cfg = dc->gen->cfg;

	stream_set_cb(dc->up->s, &up_cb, dc);
	http_write_request_head(dc->up->s->out, rq, dc->up_path, dc->dest->authority);
	if (rq->expect_continue && rq->body != HTTP_BODY_NONE && !dc->continue_sent) {
		evbuffer_add(dc->ds->out, "HTTP/1.1 100 Continue\r\n\r\n", 25);
		dc->continue_sent = 1;
	}
	http_in_reset(&dc->resp, cfg->limits.max_header_bytes, MAX_HEADERS);
	http_in_set_skip_body(&dc->resp, dc->head_request);
	dc->t_up = now_ms();
	if (dc->req.state == HTTP_IN_HEAD_DONE)
		http_in_resume(&dc->req);
	if (dc->req.state == HTTP_IN_DONE)
		dc->req_done = 1;
	dc_set_state(dc, DC_EXCHANGE);
	dc_arm(dc, cfg->timeouts.upstream_response_ms);
	stream_set_reading(dc->up->s, 1);
}

/* The upstream failed before the response ended. A reused idle connection
 * that the server closed just before our request is retried once on a new
 * connection when nothing was answered and there is no body to replay. */
static void
dc_upstream_failed(struct dconn *dc, const char *code, const char *reason)
{
	if (!dc->resp_head_sent && dc->up_reused && !dc->retried && dc->req_done &&
	    dc->req.msg.body == HTTP_BODY_NONE && dc->resp.head_bytes == 0) {
		log_debug("conn %llu: pooled connection was closed by the server; retrying",
		    (unsigned long long)dc->id);
		pool_release(dc->up, 0);
		dc->up = NULL;
		dc->retried = 1;
		dc_connect_upstream(dc);        /* attach writes the head again */
		return;
	}
	dc_log_upstream_failure(dc, strcmp(code, "upstream_tls") == 0, reason);
	dc->up_reusable = 0;
	dc_refuse(dc, 502, code, reason, 0);
}

/* ---- the pump: move whatever can move, in both directions ---- */

static void
dc_pump_head(struct dconn *dc)
{
	struct http_in *rq = &dc->req;

	if (dc->ds->error) {
		dc_close(dc);
		return;
	}
	dc_feed(dc, rq, dc->ds->in, NULL);
	if (rq->state == HTTP_IN_HEAD_DONE) {
		dc_request_head(dc);
	} else if (rq->state == HTTP_IN_ERROR) {
		dc_refuse(dc, rq->error_status, rq->error_status == 431 ?
		    "header_too_large" : "bad_request", rq->error, 0);
	} else if (dc->ds->eof) {
		dc_close(dc);   /* client went away between or inside heads */
	}
}

static void
dc_pump_body(struct dconn *dc)
{
	struct http_in *rq = &dc->req;

	if (!dc->req_done && dc->up != NULL &&
	    evbuffer_get_length(dc->up->s->out) < OUT_HIGH) {
		if (dc_feed(dc, rq, dc->ds->in, dc_req_move_to(dc)) > 0)
			dc_arm(dc, dc->gen->cfg->timeouts.upstream_response_ms);
		if (rq->state == HTTP_IN_DONE) {
			if (rq->msg.body == HTTP_BODY_CHUNKED)
				http_write_last_chunk(dc->up->s->out);
			dc->req_done = 1;
		} else if (rq->state == HTTP_IN_ERROR) {
			dc->up_reusable = 0;
			dc_refuse(dc, 400, "bad_request", rq->error, 0);
			return;
		}
	}
	if (dc->ds->error || (dc->ds->eof && !dc->req_done)) {
		dc_close(dc);   /* client gone: abandon the exchange */
		return;
	}
	if (dc->ds->eof)
		dc->close_after = 1;    /* half-closed after a full request */
}

static void
dc_resp_head(struct dconn *dc)
{
	const struct http_msg *rs = &dc->resp.msg;

	if (rs->status >= 100 && rs->status < 200) {
		dc->interim = 1;        /* 1xx: consumed here, never relayed */
		return;
	}
	if (!dc->req_done || dc->w->draining)
		dc->close_after = 1;
	dc->head_alone = evbuffer_get_length(dc->ds->out) == 0;
	dc->sent_at_head = dc->ds->sent;
	dc->resp_framing = http_write_response_head(dc->ds->out, rs, dc->head_request,
	    dc->req.msg.minor, dc->close_after);
	if (dc->resp_framing == HTTP_BODY_EOF)
		dc->close_after = 1;
	dc->status = rs->status;
	dc->resp_head_sent = 1;
}

static void
dc_pump_response(struct dconn *dc)
{
	struct http_in *rs = &dc->resp;
	struct stream *us = dc->up->s;

	while (evbuffer_get_length(dc->ds->out) < OUT_HIGH) {
		size_t used = dc_feed(dc, rs, us->in, dc_resp_move_to(dc));

		if (rs->state == HTTP_IN_BODY && us->eof && evbuffer_get_length(us->in) == 0) {
			/* only close_notify ends a close-delimited body: a bare
			 * FIN may be a cut (RFC 9112 9.8) */
			if (rs->msg.body == HTTP_BODY_EOF && !stream_eof_clean(us)) {
				dc_upstream_failed(dc, "upstream_reset",
				    "upstream closed the connection without TLS close_notify, "
				    "so its close-delimited body may be cut");
				return;
			}
			http_in_feed(rs, NULL, 0);      /* EOF ends an EOF-delimited body */
		}
		if (rs->state == HTTP_IN_HEAD_DONE) {
			dc_resp_head(dc);
			http_in_resume(rs);
			continue;
		}
		if (rs->state == HTTP_IN_DONE) {
			if (dc->interim) {
				dc->interim = 0;
				http_in_resume(rs);
				http_in_set_skip_body(rs, dc->head_request);
				continue;
			}
			dc_response_done(dc);
			return;
		}
		if (rs->state == HTTP_IN_ERROR) {
			dc_upstream_failed(dc, "upstream_protocol", rs->error);
			return;
		}
		if (used == 0)
			break;
	}
	if (evbuffer_get_length(us->in) == 0 && (us->eof || us->error)) {
		if (us->error && stream_error_is_tls(us))
			dc_upstream_failed(dc, "upstream_tls", stream_error(us));
		else if (us->error)
			dc_upstream_failed(dc, "upstream_reset", stream_error(us));
		else
			dc_upstream_failed(dc, "upstream_reset",
			    "upstream closed the connection before the response was complete");
	}
}

static void
dc_pump_linger(struct dconn *dc)
{
	if (evbuffer_get_length(dc->ds->in) > 0)
		dc->no_linger = 0;      /* it sent more after all: linger */
	evbuffer_drain(dc->ds->in, evbuffer_get_length(dc->ds->in));
	if (dc->ds->error || (dc->ds->eof && dc->linger_started))
		dc_close(dc);
	else
		dc_close_after_flush(dc);
}

static void
dc_pump_once(struct dconn *dc)
{
	switch (dc->state) {
	case DC_HEAD:
		dc_pump_head(dc);
		break;
	case DC_EXCHANGE:
		dc_pump_body(dc);
		if (dc->state == DC_EXCHANGE)
			dc_pump_response(dc);
		break;
	case DC_LINGER:
		dc_pump_linger(dc);
		break;
	case DC_WAIT_UPSTREAM:
		if (dc->ds->error)
			dc_close(dc);
		break;
	case DC_CLOSED:
		break;
	}
}

static void
dc_update_io(struct dconn *dc)
{
	/* only in DC_EXCHANGE is dc->up connected (while connecting, up->s may
	 * not even exist yet) */
	struct stream *us = dc->state == DC_EXCHANGE ? dc->up->s : NULL;
	int up_full = us && evbuffer_get_length(us->out) >= OUT_HIGH;
	int down_full = evbuffer_get_length(dc->ds->out) >= OUT_HIGH;

	/* a whole request that asks to close leaves nothing to read until the
	 * close (dc_client_quiet checks then), so its socket needs no epoll
	 * registration: the client's abort is then noticed when the response
	 * is written, as HAProxy does by default */
	stream_set_reading(dc->ds, dc->state == DC_HEAD ||
	    (dc->state == DC_LINGER && (dc->linger_started || !dc->no_linger)) ||
	    (us != NULL && !up_full && !(dc->req_done && dc->close_after)));
	if (us != NULL) {
		stream_set_reading(us, !down_full);
		stream_flush(us);
	}
	stream_flush(dc->ds);
}

static void
dc_pump(struct dconn *dc)
{
	if (dc->in_pump) {
		dc->pump_again = 1;
		return;
	}
	dc->in_pump = 1;
	do {
		enum dc_state before = dc->state;
		dc->pump_again = 0;
		dc_pump_once(dc);
		if (dc->state != before && dc->state != DC_CLOSED)
			dc->pump_again = 1;     /* e.g. pipelined request after a response */
	} while (dc->pump_again && dc->state != DC_CLOSED);
	dc->in_pump = 0;
	if (dc->state != DC_CLOSED)
		dc_update_io(dc);
	if (dc->state == DC_LINGER && !dc->linger_started &&
	    evbuffer_get_length(dc->ds->out) == 0)
		dc_close_after_flush(dc);
}

/* ---- timers, closing, accepting ---- */

static void
dc_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct dconn *dc = arg;
	char reason[256];

	(void)fd;
	(void)what;
	switch (dc->state) {
	case DC_HEAD:
		if (dc->req.head_bytes == 0) {
			dc_close(dc);   /* idle keep-alive connection */
			return;
		}
		dc_refuse(dc, 408, "client_timeout", "request head not received in time", 0);
		break;
	case DC_EXCHANGE:
		if (dc->resp_head_sent) {
			log_warnx("mapping %s: upstream stalled mid-response; closing",
			    dc->dest->m->name);
			dc_close(dc);
			return;
		}
		snprintf(reason, sizeof(reason), "no response from %s within %llums",
		    dc->dest->authority,
		    (unsigned long long)dc->gen->cfg->timeouts.upstream_response_ms);
		log_warnx("mapping %s: %s", dc->dest->m->name, reason);
		dc->up_reusable = 0;
		dc_refuse(dc, 504, "upstream_timeout", reason, 0);
		break;
	case DC_LINGER:
		dc_close(dc);
		return;
	case DC_WAIT_UPSTREAM:
	case DC_CLOSED:
		return;
	}
	dc_pump(dc);
}

static void
dc_reap(evutil_socket_t fd, short what, void *arg)
{
	struct dconn *dc = arg;
	struct worker *w = dc->w;

	(void)fd;
	(void)what;
	if (dc->up != NULL)
		pool_release(dc->up, 0);
	http_in_free(&dc->resp);
	http_in_free(&dc->req);
	generation_unref(&dc->gen);
	stream_free(dc->ds);
	event_free(dc->timer);
	event_free(dc->reap);
	free(dc->up_path);
	free(dc->listener_mapping);
	TAILQ_REMOVE(&w->conns, dc, link);
	RELAXED_SET(w->n_conns, w->n_conns - 1);
	__atomic_sub_fetch(&conns_total, 1, __ATOMIC_RELAXED);
	free(dc);
	if (w->draining && w->n_conns == 0)
		workers_drained(w);
}

/* Never free inside a callback: stop I/O now, free from the loop. */
static void
dc_close(struct dconn *dc)
{
	if (dc->state == DC_CLOSED)
		return;
	if (dc->up != NULL && dc->gen != NULL && (dc->resp_head_sent || dc->t_up))
		dc_access_log(dc);
	/* a response still under way is cut: where the close itself would end
	 * its body (HTTP/1.0 client, no length), only a reset says so */
	if (dc->resp_head_sent && dc->resp_framing == HTTP_BODY_EOF)
		stream_reset_on_close(dc->ds);
	dc_set_state(dc, DC_CLOSED);
	stream_disable(dc->ds);
	if (dc->up != NULL) {
		pool_release(dc->up, 0);
		dc->up = NULL;
	}
	evtimer_del(dc->timer);
	event_active(dc->reap, EV_TIMEOUT, 0);
}

static void
refuse_overloaded(int fd)
{
	static const char msg[] = "HTTP/1.1 503 Service Unavailable\r\n"
	    "Content-Type: text/plain\r\nX-Mtlsd-Error: overloaded\r\n"
	    "Content-Length: 50\r\nConnection: close\r\n\r\n"
	    "mtlsd: too many connections (limits.max_connections)\n";

	/* best effort on a fresh socket: the buffer is empty, so it fits */
	(void)!write(fd, msg, sizeof(msg) - 1);
	close(fd);
}

void
proxy_accept(struct worker *w, int fd, const char *peer, const char *mapping)
{
	const struct config *cfg = w->gen->cfg;
	struct dconn *dc;

	unsigned total;

	if (w->draining) {
		close(fd);
		return;
	}
	/* one limit for the process, whichever worker accepted */
	total = __atomic_add_fetch(&conns_total, 1, __ATOMIC_RELAXED);
	if (total > cfg->limits.max_connections) {
		__atomic_sub_fetch(&conns_total, 1, __ATOMIC_RELAXED);
		log_warnx("refusing %s: %u connections (limits.max_connections)", peer,
		    total - 1);
		refuse_overloaded(fd);
		return;
	}
	dc = xcalloc(1, sizeof(*dc));
	dc->w = w;
	dc->id = ++w->next_conn_id;
	str_copy(dc->peer, sizeof(dc->peer), peer);
	dc->listener_mapping = mapping ? xstrdup(mapping) : NULL;
	dc->timer = evtimer_new(w->base, dc_timeout, dc);
	dc->reap = event_new(w->base, -1, 0, dc_reap, dc);
	http_in_init(&dc->req, 1, cfg->limits.max_header_bytes, MAX_HEADERS, &req_cb, dc);
	http_in_init(&dc->resp, 0, cfg->limits.max_header_bytes, MAX_HEADERS, &resp_cb, dc);
	dc->ds = stream_new_plain(w->base, fd, &ds_cb, dc);
	dc->state = DC_HEAD;
	TAILQ_INSERT_TAIL(&w->conns, dc, link);
	RELAXED_SET(w->n_conns, w->n_conns + 1);
	RELAXED_SET(w->accepted, w->accepted + 1);
	dc_arm(dc, cfg->timeouts.client_header_ms);
}

void
proxy_drain(struct worker *w)
{
	struct dconn *dc, *next;

	w->draining = 1;
	for (dc = TAILQ_FIRST(&w->conns); dc != NULL; dc = next) {
		next = TAILQ_NEXT(dc, link);
		if (dc->state == DC_HEAD && dc->req.head_bytes == 0)
			dc_close(dc);
		else
			dc->close_after = 1;
	}
	if (w->n_conns == 0)
		workers_drained(w);
}

unsigned
proxy_conns_total(void)
{
	return __atomic_load_n(&conns_total, __ATOMIC_RELAXED);
}
