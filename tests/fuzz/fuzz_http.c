/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * libFuzzer target for http.c: requests and responses through http_in, fed
 * whole and in slices, resumed at every pause as the proxy does (pipelined
 * messages included), and the writers applied to whatever parsed.
 *
 * Input: byte 0 flags, bytes 1-2 the slicing seed, the rest the stream.
 *   flags bit 0    parse responses instead of requests
 *   flags bit 1    responses: the request was HEAD (skip_body)
 *   flags bit 2    feed end of input (0 bytes) after the data
 *   flags bit 3    small limits (1024 header bytes, 8 headers)
 *   flags bit 4-5  slice length bound: 1, 3, 17 or 251 bytes
 *   flags bit 6    writers: the client speaks HTTP/1.0
 *   flags bit 7    writers: close after the response
 *
 * Properties checked (abort on violation, so libFuzzer reports them):
 *  - no memory error, no stall (a feed that consumes nothing without a
 *    pause or an error would spin the proxy);
 *  - the verdict does not depend on slicing: heads, decoded body bytes,
 *    completions and the error status are the same whole and sliced;
 *  - every head we write re-parses as one valid head with the same framing,
 *    and a re-framed body decodes to the same bytes;
 *  - every refusal we write parses as a response with a one-line body.
 */
#include <event2/buffer.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http.h"

#define BIG_HEAD  (1u << 20)
#define MANY_HDRS 10000u

/* What a parse produced, as text; bodies as raw bytes. */
struct rec {
	char *buf;
	size_t len, cap;
};

static void
rec_add(struct rec *r, const void *p, size_t n)
{
	if (r->len + n + 1 > r->cap) {
		r->cap = (r->len + n + 1) * 2;
		r->buf = realloc(r->buf, r->cap);
		if (r->buf == NULL)
			abort();
	}
	memcpy(r->buf + r->len, p, n);
	r->len += n;
	r->buf[r->len] = '\0';
}

static void rec_printf(struct rec *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
rec_printf(struct rec *r, const char *fmt, ...)
{
	char tmp[512];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
	va_end(ap);
	if (n < 0)
		abort();
	rec_add(r, tmp, (size_t)n < sizeof(tmp) ? (size_t)n : sizeof(tmp) - 1);
}

static int
rec_body(void *arg, const char *data, size_t len)
{
	rec_add(arg, data, len);
	return 0;
}

static const struct http_in_cb rec_cb = {.on_body = rec_body};

static void
rec_head(struct rec *r, const struct http_msg *m)
{
	rec_printf(r, "<%d %s %s %d %d %d %llu %d %zu>", m->is_request,
	    m->is_request ? m->method_name : "", m->is_request ? m->target : m->reason, m->status,
	    (int)m->body, m->minor, (unsigned long long)m->content_length, m->keep_alive,
	    m->n_headers);
	for (size_t i = 0; i < m->n_headers; i++)
		rec_printf(r, "[%s: %s]", m->headers[i].name, m->headers[i].value);
}

/* xorshift for slice lengths: deterministic per input */
static unsigned
next_rand(uint32_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 17;
	*s ^= *s << 5;
	return *s;
}

struct opts {
	int is_request, skip_body, eof, small, http10, close;
	size_t step;
	uint32_t seed;
};

typedef void (*head_fn)(const struct opts *, const struct http_msg *, struct rec *);

/* Feed one slice from its own exact-size heap copy, so that ASan sees any
 * read outside it (the parser keeps pointers into fed data). */
static size_t
feed_copy(struct http_in *in, const char *data, size_t n)
{
	char *copy = n ? malloc(n) : NULL;
	size_t c;

	if (n && copy == NULL)
		abort();
	if (n)
		memcpy(copy, data, n);
	c = http_in_feed(in, copy, n);
	free(copy);
	return c;
}

/*
 * Parse data as the proxy would: feed, on a pause record and resume, feed
 * the rest again. sliced: slices of pseudo-random length 1..step.
 * on_head (may be NULL) sees each head before it is resumed.
 */
static void
drive(
    const struct opts *o, const char *data, size_t len, int sliced, head_fn on_head, struct rec *r)
{
	struct http_in in;
	uint32_t seed = o->seed | 1;
	size_t off = 0, guard = 0;
	int eof_sent = 0;

	http_in_init(&in, o->is_request, o->small ? 1024 : 8192, o->small ? 8 : 100, &rec_cb, r);
	http_in_set_skip_body(&in, o->skip_body);
	for (;;) {
		size_t n = len - off, c;
		int paused = 0;

		if (sliced && n > 0) {
			size_t s = 1 + next_rand(&seed) % o->step;
			n = n < s ? n : s;
		}
		if (n == 0) {
			if (!o->eof || eof_sent)
				break;
			eof_sent = 1;
		}
		c = feed_copy(&in, data + off, n);
		if (c > n)
			abort();
		off += c;
		if (in.state == HTTP_IN_HEAD_DONE) {
			rec_head(r, &in.msg);
			if (on_head != NULL)
				on_head(o, &in.msg, r);
			http_in_resume(&in);
			paused = 1;
		}
		if (in.state == HTTP_IN_DONE) {
			rec_printf(r, "<DONE>");
			http_in_resume(&in);
			paused = 1;
		}
		if (in.state == HTTP_IN_ERROR) {
			if (in.error == NULL || in.error_status < 400 || in.error_status > 599)
				abort();
			/* the status is the verdict and must not depend on slicing;
			 * with several faults in one message the reason names the
			 * one met first, which can differ (a long trailer field is
			 * counted at a slice end, but not before an invalid byte
			 * http_parser stops at) */
			rec_printf(r, "<ERR %d>", in.error_status);
			break;
		}
		if (paused) {
			/* each pause makes progress: a message needs at least
			 * one byte of head; bounded anyway */
			if (++guard > 2 * len + 4)
				abort();
			continue;
		}
		/* no pause, no error: everything fed must be consumed */
		if (c != n)
			abort();
		if (n == 0)
			break;
	}
	http_in_free(&in);
}

/* ---- writers ------------------------------------------------------------ */

struct decoded {
	struct rec body;
	int heads, done, err;
	struct http_msg first; /* copied framing of the first head */
};

static int
dec_body(void *arg, const char *data, size_t len)
{
	struct decoded *d = arg;

	rec_add(&d->body, data, len);
	return 0;
}

static const struct http_in_cb dec_cb = {.on_body = dec_body};

static int
same_bytes(const struct rec *r, const char *text)
{
	return r->len == strlen(text) && (r->len == 0 || memcmp(r->buf, text, r->len) == 0);
}

/* Parse what we wrote: exactly one message, nothing left over. */
static void
reparse(struct evbuffer *b, int is_request, int skip_body, struct decoded *d)
{
	size_t len = evbuffer_get_length(b), off = 0;
	const char *p = (const char *)evbuffer_pullup(b, -1);
	struct http_in in;
	int eof_sent = 0;

	memset(d, 0, sizeof(*d));
	http_in_init(&in, is_request, BIG_HEAD, MANY_HDRS, &dec_cb, d);
	http_in_set_skip_body(&in, skip_body);
	while (!d->done && !d->err) {
		size_t c = http_in_feed(&in, p + off, len - off);

		off += c;
		if (in.state == HTTP_IN_HEAD_DONE) {
			if (d->heads++ == 0) {
				d->first.body = in.msg.body;
				d->first.status = in.msg.status;
				d->first.content_length = in.msg.content_length;
			}
			http_in_resume(&in);
		} else if (in.state == HTTP_IN_DONE) {
			d->done = 1;
		} else if (in.state == HTTP_IN_ERROR) {
			fprintf(stderr, "reparse error: %s\n%.*s\n", in.error, (int)len, p);
			d->err = 1;
		} else if (off == len) {
			if (eof_sent)
				break;
			eof_sent = 1;
			http_in_feed(&in, NULL, 0);
			if (in.state == HTTP_IN_DONE)
				d->done = 1;
			else if (in.state != HTTP_IN_ERROR)
				break;
		}
	}
	if (!d->done || d->err || off != len) {
		fprintf(stderr, "reparse: done=%d err=%d off=%zu len=%zu\n%.*s\n", d->done, d->err,
		    off, len, (int)len, p);
		abort();
	}
	http_in_free(&in);
}

/* A body of the given framing, whose bytes are the head's own text. */
static void
write_body(struct evbuffer *b, enum http_body framing, const char *text, size_t n)
{
	switch (framing) {
	case HTTP_BODY_CHUNKED:
		http_write_chunk(b, text, n / 2);
		http_write_chunk(b, "", 0);
		http_write_chunk(b, text + n / 2, n - n / 2);
		http_write_last_chunk(b);
		break;
	case HTTP_BODY_EOF:
		evbuffer_add(b, text, n);
		break;
	default:
		break;
	}
}

static void
check_request_writer(const struct opts *o, const struct http_msg *m)
{
	struct evbuffer *b = evbuffer_new();
	struct http_msg req = *m;
	const char *text = m->target;
	struct decoded d;

	/* the proxy sends bodies of known length as is, the rest chunked */
	if (req.body == HTTP_BODY_LENGTH)
		req.content_length = strlen(text);
	http_write_request_head(b, &req, m->path, "upstream.example:8443");
	if (req.body == HTTP_BODY_LENGTH)
		evbuffer_add(b, text, strlen(text));
	else
		write_body(b, req.body, text, strlen(text));
	reparse(b, 1, 0, &d);
	if (d.heads != 1 || d.first.body != req.body)
		abort();
	if (req.body != HTTP_BODY_NONE && !same_bytes(&d.body, text))
		abort();
	free(d.body.buf);
	evbuffer_free(b);
	(void)o;
}

static void
check_response_writer(const struct opts *o, const struct http_msg *m)
{
	struct evbuffer *b = evbuffer_new();
	const char *text = m->reason;
	enum http_body framing;
	struct decoded d;
	struct http_msg resp = *m;

	if (resp.body == HTTP_BODY_LENGTH)
		resp.content_length = strlen(text);
	framing = http_write_response_head(b, &resp, o->skip_body, o->http10 ? 0 : 1, o->close);
	if (framing == HTTP_BODY_LENGTH)
		evbuffer_add(b, text, strlen(text));
	else
		write_body(b, framing, text, strlen(text));
	reparse(b, 0, o->skip_body, &d);
	if (d.heads != 1 || d.first.status != m->status)
		abort();
	if (framing != HTTP_BODY_NONE && !same_bytes(&d.body, text))
		abort();
	free(d.body.buf);
	evbuffer_free(b);
}

static void
check_error_writer(const struct opts *o, const char *reason)
{
	static const int statuses[] = {400, 403, 429, 431, 501, 502, 503, 504, 505};
	struct evbuffer *b = evbuffer_new();
	struct decoded d;
	int status = statuses[o->seed % (sizeof(statuses) / sizeof(statuses[0]))];

	http_write_error(b, status, reason, reason, o->seed % 3, o->close);
	reparse(b, 0, 0, &d);
	if (d.heads != 1 || d.first.status != status || d.body.len == 0 ||
	    memchr(d.body.buf, '\n', d.body.len) != d.body.buf + d.body.len - 1)
		abort();
	free(d.body.buf);
	evbuffer_free(b);
}

static void
on_head(const struct opts *o, const struct http_msg *m, struct rec *r)
{
	(void)r;
	/* lookups and hop-by-hop classification on whatever parsed */
	for (size_t i = 0; i < m->n_headers; i++) {
		if (http_msg_header(m, m->headers[i].name) == NULL)
			abort();
		/* the writers copy by these lengths */
		if (strlen(m->headers[i].name) != m->headers[i].name_len ||
		    strlen(m->headers[i].value) != m->headers[i].value_len)
			abort();
		(void)http_header_is_hop(m, m->headers[i].name);
	}
	if (m->is_request) {
		/* the proxy refuses these (405, 501) before writing anything */
		if (m->method != HTTP_CONNECT && !m->upgrade)
			check_request_writer(o, m);
		check_error_writer(o, m->target);
	} else {
		check_response_writer(o, m);
		check_error_writer(o, m->reason);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const size_t steps[] = {1, 3, 17, 251};
	struct rec whole = {0}, sliced = {0};
	struct opts o;

	if (size < 3)
		return 0;
	o.is_request = !(data[0] & 1);
	o.skip_body = !!(data[0] & 2);
	o.eof = !!(data[0] & 4);
	o.small = !!(data[0] & 8);
	o.step = steps[(data[0] >> 4) & 3];
	o.http10 = !!(data[0] & 0x40);
	o.close = !!(data[0] & 0x80);
	o.seed = (uint32_t)data[1] << 8 | data[2];
	data += 3;
	size -= 3;

	drive(&o, (const char *)data, size, 0, on_head, &whole);
	drive(&o, (const char *)data, size, 1, NULL, &sliced);
	if (whole.len != sliced.len ||
	    (whole.len > 0 && memcmp(whole.buf, sliced.buf, whole.len) != 0)) {
		fprintf(stderr, "slicing changed the verdict:\nwhole:  %.*s\nsliced: %.*s\n",
		    (int)whole.len, whole.buf, (int)sliced.len, sliced.buf);
		abort();
	}
	free(whole.buf);
	free(sliced.buf);
	return 0;
}
