/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <event2/buffer.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http.h"

#define MAXH 8192
#define MAXN 50

/* ---- helpers ------------------------------------------------------------ */

/* what the parser produced, as text: heads, body bytes, completions */
struct rec {
	char log[16384];
	size_t len;
	int fail_body;
};

static void
rec_add(struct rec *r, const char *s, size_t n)
{
	assert_true(r->len + n < sizeof(r->log));
	memcpy(r->log + r->len, s, n);
	r->len += n;
	r->log[r->len] = '\0';
}

static void
rec_printf(struct rec *r, const char *fmt, ...)
{
	char buf[1024];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	rec_add(r, buf, (size_t)n);
}

static int
rec_body(void *arg, const char *data, size_t len)
{
	struct rec *r = arg;

	if (r->fail_body)
		return -1;
	rec_add(r, data, len);
	return 0;
}

static const struct http_in_cb rec_cb = {.on_body = rec_body};

static void
rec_head(struct rec *r, const struct http_msg *m)
{
	if (m->is_request)
		rec_printf(r, "<REQ %s %s path=%s host=%s body=%d cl=%llu ka=%d>", m->method_name,
		    m->target, m->path, m->host_header ? m->host_header : "-", (int)m->body,
		    (unsigned long long)m->content_length, m->keep_alive);
	else
		rec_printf(r, "<RESP %d %s body=%d cl=%llu ka=%d>", m->status, m->reason,
		    (int)m->body, (unsigned long long)m->content_length, m->keep_alive);
}

/*
 * Feed data in slices of step bytes, resuming at every pause and re-feeding
 * what was not consumed, as the proxy does; eof feeds 0 bytes at the end.
 */
static void
drive(struct http_in *in, const char *data, size_t len, size_t step, int eof, struct rec *r)
{
	size_t off = 0;

	for (;;) {
		size_t n = len - off < step ? len - off : step, c;
		int paused = 0;

		if (n == 0 && !eof)
			break;
		c = http_in_feed(in, data + off, n);
		off += c;
		if (in->state == HTTP_IN_HEAD_DONE) {
			rec_head(r, &in->msg);
			http_in_resume(in);
			paused = 1;
		}
		if (in->state == HTTP_IN_DONE) {
			rec_printf(r, "<DONE>");
			http_in_resume(in);
			paused = 1;
		}
		if (in->state == HTTP_IN_ERROR) {
			rec_printf(r, "<ERR %d %s>", in->error_status, in->error);
			break;
		}
		if (paused)
			continue;
		/* without a pause, everything fed is consumed */
		assert_int_equal(c, n);
		if (n == 0)
			break;
	}
}

static void
run(const char *data, size_t len, int is_request, size_t step, int eof, struct rec *r)
{
	struct http_in in;

	memset(r, 0, sizeof(*r));
	http_in_init(&in, is_request, MAXH, MAXN, &rec_cb, r);
	drive(&in, data, len, step, eof, r);
	http_in_free(&in);
}

/* parse one request head; returns what the first feed consumed */
static size_t
head(struct http_in *in, const char *s)
{
	http_in_init(in, 1, MAXH, MAXN, NULL, NULL);
	return http_in_feed(in, s, strlen(s));
}

static void
expect_error(const char *s, int status)
{
	struct http_in in;

	head(&in, s);
	assert_int_equal(in.state, HTTP_IN_ERROR);
	assert_int_equal(in.error_status, status);
	assert_non_null(in.error);
	http_in_free(&in);

	/* the same verdict when the bytes trickle in */
	http_in_init(&in, 1, MAXH, MAXN, NULL, NULL);
	for (size_t i = 0; i < strlen(s) && in.state == HTTP_IN_HEAD; i++)
		http_in_feed(&in, s + i, 1);
	assert_int_equal(in.state, HTTP_IN_ERROR);
	assert_int_equal(in.error_status, status);
	http_in_free(&in);
}

/* expect_error, and our reason (not http_parser's) */
static void
expect_reason(const char *s, int status, const char *why)
{
	struct http_in in;

	expect_error(s, status);
	head(&in, s);
	assert_string_equal(in.error, why);
	http_in_free(&in);
}

static void
expect_ok(const char *s)
{
	struct http_in in;

	assert_int_equal(head(&in, s), strlen(s));
	assert_int_equal(in.state, HTTP_IN_HEAD_DONE);
	http_in_free(&in);
}

static void
assert_buf(struct evbuffer *b, const char *want)
{
	size_t n = evbuffer_get_length(b);
	char *got = (char *)evbuffer_pullup(b, -1);

	if (n != strlen(want) || memcmp(got, want, n) != 0)
		fail_msg("got [%.*s]\nwant [%s]", (int)n, got ? got : "", want);
}

/* ---- requests: heads ----------------------------------------------------- */

static void
t_get_simple(void **state)
{
	const char *s = "GET / HTTP/1.1\r\nHost: Svc.Local\r\nAccept: */*\r\n\r\n";
	struct http_in in;

	(void)state;
	assert_int_equal(head(&in, s), strlen(s));
	assert_int_equal(in.state, HTTP_IN_HEAD_DONE);
	assert_int_equal(in.msg.method, HTTP_GET);
	assert_string_equal(in.msg.method_name, "GET");
	assert_string_equal(in.msg.target, "/");
	assert_string_equal(in.msg.path, "/");
	assert_string_equal(in.msg.path_only, "/");
	assert_null(in.msg.url_host);
	assert_string_equal(in.msg.host_header, "Svc.Local");
	assert_int_equal(in.msg.major, 1);
	assert_int_equal(in.msg.minor, 1);
	assert_int_equal(in.msg.body, HTTP_BODY_NONE);
	assert_true(in.msg.keep_alive);
	assert_int_equal(in.msg.n_headers, 2);
	assert_string_equal(in.msg.headers[1].name, "Accept");
	assert_string_equal(in.msg.headers[1].value, "*/*");
	assert_string_equal(http_msg_header(&in.msg, "accept"), "*/*");
	assert_null(http_msg_header(&in.msg, "Cookie"));
	http_in_resume(&in);
	assert_int_equal(in.state, HTTP_IN_DONE);
	http_in_resume(&in);
	assert_int_equal(in.state, HTTP_IN_HEAD);
	assert_null(in.msg.target);
	http_in_free(&in);
}

static void
t_path_query_split(void **state)
{
	struct http_in in;

	(void)state;
	head(&in, "GET /a/b?x=1&y=/z HTTP/1.1\r\nHost: h\r\n\r\n");
	assert_int_equal(in.state, HTTP_IN_HEAD_DONE);
	assert_string_equal(in.msg.path, "/a/b?x=1&y=/z");
	assert_string_equal(in.msg.path_only, "/a/b");
	http_in_free(&in);
}

static void
t_value_whitespace(void **state)
{
	struct http_in in;

	(void)state;
	head(&in, "GET / HTTP/1.1\r\nHost: h\r\nX-A:  \tv a l \t\r\nX-Empty:\r\n\r\n");
	assert_int_equal(in.state, HTTP_IN_HEAD_DONE);
	assert_string_equal(http_msg_header(&in.msg, "X-A"), "v a l");
	assert_string_equal(http_msg_header(&in.msg, "X-Empty"), "");
	assert_int_equal(in.msg.n_headers, 3);
	http_in_free(&in);
}

static void
t_absolute_form_port(void **state)
{
	struct http_in in;

	(void)state;
	head(&in, "GET http://Api.Example.COM:8443/v1/x?q=1 HTTP/1.1\r\n"
	          "Host: api.example.com:8443\r\n\r\n");
	assert_int_equal(in.state, HTTP_IN_HEAD_DONE);
	assert_string_equal(in.msg.url_host, "api.example.com");
	assert_int_equal(in.msg.url_port, 8443);
	assert_false(in.msg.url_is_https);
	assert_string_equal(in.msg.path, "/v1/x?q=1");
	assert_string_equal(in.msg.path_only, "/v1/x");
	assert_string_equal(in.msg.target, "http://Api.Example.COM:8443/v1/x?q=1");
	http_in_free(&in);
}

static void
t_absolute_https_no_path(void **state)
{
	struct http_in in;

	(void)state;
	head(&in, "GET https://h.example HTTP/1.1\r\n\r\n");
	assert_int_equal(in.state, HTTP_IN_HEAD_DONE);
	assert_true(in.msg.url_is_https);
	assert_string_equal(in.msg.url_host, "h.example");
	assert_int_equal(in.msg.url_port, 0);
	assert_string_equal(in.msg.path, "/");
	assert_string_equal(in.msg.path_only, "/");
	assert_null(in.msg.host_header);
	http_in_free(&in);

	head(&in, "GET http://h?a=b HTTP/1.1\r\nHost: H\r\n\r\n");
	assert_int_equal(in.state, HTTP_IN_HEAD_DONE);
	assert_string_equal(in.msg.path, "/?a=b");
	assert_string_equal(in.msg.path_only, "/");
	http_in_free(&in);
}

static void
t_absolute_ipv6(void **state)
{
	struct http_in in;

	(void)state;
	head(&in, "GET http://[::1]:9001/p HTTP/1.1\r\nHost: [::1]:9001\r\n\r\n");
	assert_int_equal(in.state, HTTP_IN_HEAD_DONE);
	assert_string_equal(in.msg.url_host, "::1");
	assert_int_equal(in.msg.url_port, 9001);
	assert_string_equal(in.msg.path, "/p");
	http_in_free(&in);
}

static void
t_absolute_trailing_dot(void **state)
{
	struct http_in in;

	(void)state;
	head(&in, "GET http://bank.example./x HTTP/1.1\r\nHost: BANK.example\r\n\r\n");
	assert_int_equal(in.state, HTTP_IN_HEAD_DONE);
	assert_string_equal(in.msg.url_host, "bank.example");
	http_in_free(&in);
}

static void
t_absolute_host_match(void **state)
{
	(void)state;
	/* the default port of the scheme is the same authority */
	expect_ok("GET http://h:80/ HTTP/1.1\r\nHost: h\r\n\r\n");
	expect_ok("GET https://h/ HTTP/1.1\r\nHost: h:443\r\n\r\n");
	expect_ok("GET http://h/ HTTP/1.0\r\n\r\n");
	expect_error("GET http://h/ HTTP/1.1\r\nHost: other\r\n\r\n", 400);
	expect_error("GET http://h:8080/ HTTP/1.1\r\nHost: h\r\n\r\n", 400);
	expect_error("GET http://h/ HTTP/1.1\r\nHost: h:81\r\n\r\n", 400);
	expect_error("GET http://[::1]/ HTTP/1.1\r\nHost: [::2]\r\n\r\n", 400);
}

static void
t_absolute_rejects(void **state)
{
	(void)state;
	expect_error("GET http://user:pw@h/ HTTP/1.1\r\nHost: h\r\n\r\n", 400);
	expect_error("GET http://user@h/ HTTP/1.1\r\n\r\n", 400);
	expect_error("GET ftp://h/ HTTP/1.1\r\nHost: h\r\n\r\n", 400);
	expect_error("GET http://h:0/ HTTP/1.1\r\nHost: h\r\n\r\n", 400);
	expect_error("GET http://h:99999/ HTTP/1.1\r\nHost: h\r\n\r\n", 400);
	expect_error("GET /a#frag HTTP/1.1\r\nHost: h\r\n\r\n", 400);
}

static void
t_asterisk_and_connect(void **state)
{
	struct http_in in;

	(void)state;
	head(&in, "OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n");
	assert_int_equal(in.state, HTTP_IN_HEAD_DONE);
	assert_string_equal(in.msg.path, "*");
	http_in_free(&in);
	expect_error("GET * HTTP/1.1\r\nHost: h\r\n\r\n", 400);

	head(&in, "CONNECT bank.example:443 HTTP/1.1\r\nHost: bank.example:443\r\n\r\n");
	assert_int_equal(in.state, HTTP_IN_HEAD_DONE);
	assert_int_equal(in.msg.method, HTTP_CONNECT);
	assert_string_equal(in.msg.url_host, "bank.example");
	assert_int_equal(in.msg.url_port, 443);
	assert_int_equal(in.msg.body, HTTP_BODY_NONE);
	http_in_resume(&in);
	assert_int_equal(in.state, HTTP_IN_DONE);
	http_in_free(&in);
}

static void
t_expect_upgrade(void **state)
{
	struct http_in in;

	(void)state;
	head(&in, "POST /u HTTP/1.1\r\nHost: h\r\nExpect: 100-Continue\r\n"
	          "Content-Length: 3\r\n\r\n");
	assert_int_equal(in.state, HTTP_IN_HEAD_DONE);
	assert_true(in.msg.expect_continue);
	assert_false(in.msg.upgrade);
	http_in_free(&in);

	head(&in, "GET /ws HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\n\r\n");
	assert_int_equal(in.state, HTTP_IN_HEAD_DONE);
	assert_false(in.msg.expect_continue);
	assert_true(in.msg.upgrade);
	http_in_free(&in);
}

/* http_parser stops after an upgrade request's head; we carry on as HTTP. */
static void
t_upgrade_then_next(void **state)
{
	static const char s[] = "GET /ws HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\n"
	                        "Connection: Upgrade\r\n\r\n"
	                        "GET /next HTTP/1.1\r\nHost: h\r\n\r\n";
	struct rec r;

	(void)state;
	for (size_t step = 1; step <= sizeof(s); step *= 3) {
		run(s, sizeof(s) - 1, 1, step, 0, &r);
		assert_string_equal(r.log,
		    "<REQ GET /ws path=/ws host=h body=0 cl=0 ka=1><DONE>"
		    "<REQ GET /next path=/next host=h body=0 cl=0 ka=1><DONE>");
	}
}

static void
t_keep_alive(void **state)
{
	struct http_in in;

	(void)state;
	head(&in, "GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n");
	assert_false(in.msg.keep_alive);
	http_in_free(&in);
	head(&in, "GET / HTTP/1.0\r\n\r\n");
	assert_int_equal(in.state, HTTP_IN_HEAD_DONE);
	assert_false(in.msg.keep_alive);
	assert_int_equal(in.msg.minor, 0);
	http_in_free(&in);
	head(&in, "GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n");
	assert_true(in.msg.keep_alive);
	http_in_free(&in);
}

/* ---- requests: bodies and offsets ------------------------------------------ */

static void
t_post_content_length(void **state)
{
	const char *h = "POST /submit HTTP/1.1\r\nHost: h\r\nContent-Length: 11\r\n\r\n";
	const char *b = "hello\0world";
	char buf[256];
	size_t hl = strlen(h), n;
	struct rec r;
	struct http_in in;

	(void)state;
	memset(&r, 0, sizeof(r));
	memcpy(buf, h, hl);
	memcpy(buf + hl, b, 11);
	memcpy(buf + hl + 11, "GET", 3); /* start of a next request */
	http_in_init(&in, 1, MAXH, MAXN, &rec_cb, &r);
	n = http_in_feed(&in, buf, hl + 14);
	assert_int_equal(n, hl); /* exactly the head */
	assert_int_equal(in.state, HTTP_IN_HEAD_DONE);
	assert_int_equal(in.msg.body, HTTP_BODY_LENGTH);
	assert_int_equal(in.msg.content_length, 11);
	assert_int_equal(http_in_feed(&in, buf + n, 14), 0); /* still paused */
	http_in_resume(&in);
	assert_int_equal(in.state, HTTP_IN_BODY);
	n = http_in_feed(&in, buf + hl, 14);
	assert_int_equal(n, 11); /* exactly the body */
	assert_int_equal(in.state, HTTP_IN_DONE);
	assert_int_equal(r.len, 11);
	assert_memory_equal(r.log, b, 11);
	http_in_resume(&in);
	assert_int_equal(in.state, HTTP_IN_HEAD);
	assert_int_equal(http_in_feed(&in, buf + hl + 11, 3), 3);
	assert_int_equal(in.state, HTTP_IN_HEAD);
	http_in_free(&in);
}

static void
t_content_length_zero(void **state)
{
	struct http_in in;

	(void)state;
	head(&in, "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n");
	assert_int_equal(in.msg.body, HTTP_BODY_LENGTH);
	assert_int_equal(in.msg.content_length, 0);
	http_in_resume(&in);
	assert_int_equal(in.state, HTTP_IN_DONE);
	http_in_free(&in);
}

static const char chunked_req[] =
    "POST /c HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
    "5;name=val\r\nhello\r\n"
    "6\r\n world\r\n"
    "0\r\nX-Trailer: t\r\nX-Other: u\r\n\r\n";

static void
t_chunked_body(void **state)
{
	struct rec r;

	(void)state;
	run(chunked_req, sizeof(chunked_req) - 1, 1, 4096, 0, &r);
	assert_string_equal(
	    r.log, "<REQ POST /c path=/c host=h body=2 cl=0 ka=1>hello world<DONE>");
}

static void
t_chunked_trailers_not_headers(void **state)
{
	const char *h = "POST /c HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n";
	struct http_in in;
	struct rec r;
	size_t n;

	(void)state;
	memset(&r, 0, sizeof(r));
	http_in_init(&in, 1, MAXH, MAXN, &rec_cb, &r);
	n = http_in_feed(&in, chunked_req, sizeof(chunked_req) - 1);
	assert_int_equal(n, strlen(h));
	assert_int_equal(in.msg.body, HTTP_BODY_CHUNKED);
	http_in_resume(&in);
	n += http_in_feed(&in, chunked_req + n, sizeof(chunked_req) - 1 - n);
	assert_int_equal(n, sizeof(chunked_req) - 1);
	assert_int_equal(in.state, HTTP_IN_DONE);
	assert_int_equal(in.msg.n_headers, 2);
	assert_null(http_msg_header(&in.msg, "X-Trailer"));
	http_in_free(&in);
}

static void
t_chunked_bad_framing(void **state)
{
	static const char bare[] =
	    "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
	    "3\nabc\r\n0\r\n\r\n";
	static const char size[] =
	    "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
	    "zz\r\nabc\r\n0\r\n\r\n";
	struct rec r;

	(void)state;
	for (size_t step = 1; step < 64; step *= 3) {
		run(bare, sizeof(bare) - 1, 1, step, 0, &r);
		assert_non_null(strstr(r.log, "<ERR 400 "));
		run(size, sizeof(size) - 1, 1, step, 0, &r);
		assert_non_null(strstr(r.log, "<ERR 400 "));
	}
}

static const char pipelined[] =
    "POST /one HTTP/1.1\r\nHost: h\r\nContent-Length: 4\r\n\r\nABCD"
    "GET /two?x HTTP/1.1\r\nHost: h\r\n\r\n"
    "PUT /three HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
    "2\r\nxy\r\n0\r\n\r\n"
    "GET /four HTTP/1.0\r\n\r\n";

static const char pipelined_log[] = "<REQ POST /one path=/one host=h body=1 cl=4 ka=1>ABCD<DONE>"
                                    "<REQ GET /two?x path=/two?x host=h body=0 cl=0 ka=1><DONE>"
                                    "<REQ PUT /three path=/three host=h body=2 cl=0 ka=1>xy<DONE>"
                                    "<REQ GET /four path=/four host=- body=0 cl=0 ka=0><DONE>";

static void
t_pipelined(void **state)
{
	struct rec r;

	(void)state;
	run(pipelined, sizeof(pipelined) - 1, 1, sizeof(pipelined), 0, &r);
	assert_string_equal(r.log, pipelined_log);
}

static void
t_pipelined_offsets(void **state)
{
	const char *s = "GET /a HTTP/1.1\r\nHost: h\r\n\r\nGET /b HTTP/1.1\r\nHost: h\r\n\r\n";
	size_t first = strlen(s) / 2, n;
	struct http_in in;

	(void)state;
	http_in_init(&in, 1, MAXH, MAXN, NULL, NULL);
	n = http_in_feed(&in, s, strlen(s));
	assert_int_equal(n, first);
	assert_string_equal(in.msg.path, "/a");
	http_in_resume(&in);
	assert_int_equal(in.state, HTTP_IN_DONE);
	http_in_resume(&in);
	n = http_in_feed(&in, s + first, strlen(s) - first);
	assert_int_equal(n, strlen(s) - first);
	assert_int_equal(in.state, HTTP_IN_HEAD_DONE);
	assert_string_equal(in.msg.path, "/b");
	http_in_free(&in);
}

/* Every slicing of the input yields the same heads, bodies and ends. */
static void
t_byte_by_byte(void **state)
{
	static const size_t steps[] = {1, 2, 3, 5, 7, 16, 61};
	struct rec r;

	(void)state;
	for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
		run(pipelined, sizeof(pipelined) - 1, 1, steps[i], 0, &r);
		assert_string_equal(r.log, pipelined_log);
		run(chunked_req, sizeof(chunked_req) - 1, 1, steps[i], 0, &r);
		assert_string_equal(
		    r.log, "<REQ POST /c path=/c host=h body=2 cl=0 ka=1>hello world<DONE>");
	}
}

static void
t_body_callback_failure(void **state)
{
	const char *s = "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n\r\nab";
	struct rec r;
	struct http_in in;
	size_t n;

	(void)state;
	memset(&r, 0, sizeof(r));
	r.fail_body = 1;
	http_in_init(&in, 1, MAXH, MAXN, &rec_cb, &r);
	n = http_in_feed(&in, s, strlen(s));
	http_in_resume(&in);
	http_in_feed(&in, s + n, strlen(s) - n);
	assert_int_equal(in.state, HTTP_IN_ERROR);
	assert_int_equal(in.error_status, 500);
	http_in_free(&in);
}

static void
t_eof(void **state)
{
	struct http_in in;

	(void)state;
	/* at a message boundary: a clean close */
	http_in_init(&in, 1, MAXH, MAXN, NULL, NULL);
	assert_int_equal(http_in_feed(&in, NULL, 0), 0);
	assert_int_equal(in.state, HTTP_IN_HEAD);
	http_in_free(&in);

	/* in a head */
	http_in_init(&in, 1, MAXH, MAXN, NULL, NULL);
	http_in_feed(&in, "GET / HT", 8);
	http_in_feed(&in, NULL, 0);
	assert_int_equal(in.state, HTTP_IN_ERROR);
	assert_int_equal(in.error_status, 400);
	http_in_free(&in);

	/* in a Content-Length body */
	head(&in, "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\n");
	http_in_resume(&in);
	http_in_feed(&in, "ab", 2);
	http_in_feed(&in, NULL, 0);
	assert_int_equal(in.state, HTTP_IN_ERROR);
	http_in_free(&in);
}

/* ---- requests: rejections -------------------------------------------------- */

static void
t_reject_parser_errors(void **state)
{
	(void)state;
	expect_error("GET / HTTP/1.1\r\nHost: h\r\nContent-Length: x\r\n\r\n", 400);
	expect_error("GET / HTTP/1.1\r\nHost h\r\n\r\n", 400);
	expect_error("FOO / HTTP/1.1\r\nHost: h\r\n\r\n", 501);
}

static void
t_reject_head_too_large(void **state)
{
	char big[MAXH + 100];
	struct http_in in;

	(void)state;
	snprintf(big, sizeof(big), "GET / HTTP/1.1\r\nHost: h\r\nX-Big: %0*d\r\n\r\n", MAXH, 0);
	expect_error(big, 431);

	/* a head exactly at the limit passes, one byte more does not */
	for (int extra = 0; extra <= 1; extra++) {
		const char *pre = "GET / HTTP/1.1\r\nHost: h\r\nX: ";
		size_t len = 64 + (size_t)extra;

		snprintf(big, sizeof(big), "%s%0*d\r\n\r\n", pre, (int)(len - strlen(pre) - 4), 0);
		assert_int_equal(strlen(big), len);
		http_in_init(&in, 1, 64, MAXN, NULL, NULL);
		assert_int_equal(http_in_feed(&in, big, len), extra ? 64 : len);
		assert_int_equal(in.state, extra ? HTTP_IN_ERROR : HTTP_IN_HEAD_DONE);
		if (extra)
			assert_int_equal(in.error_status, 431);
		http_in_free(&in);
	}
}

static void
t_reject_too_many_headers(void **state)
{
	char buf[2048];
	const char *head_str;
	size_t n;
	struct http_in in;

	(void)state;
	n = (size_t)snprintf(buf, sizeof(buf), "GET / HTTP/1.1\r\nHost: h\r\n");
	for (int i = 0; i < MAXN; i++)
		n += (size_t)snprintf(buf + n, sizeof(buf) - n, "X-%d: v\r\n", i);
	snprintf(buf + n, sizeof(buf) - n, "\r\n");
	expect_error(buf, 431);

	http_in_init(&in, 1, MAXH, 3, NULL, NULL);
	head_str = "GET / HTTP/1.1\r\nHost: h\r\nA: 1\r\nB: 2\r\n\r\n";
	http_in_feed(&in, head_str, strlen(head_str));
	assert_int_equal(in.state, HTTP_IN_HEAD_DONE);
	http_in_free(&in);
}

static void
t_reject_cl_and_te(void **state)
{
	(void)state;
	expect_error("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n"
	             "Transfer-Encoding: chunked\r\n\r\n",
	    400);
	expect_error("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n"
	             "Content-Length: 3\r\n\r\n",
	    400);
}

static void
t_reject_duplicate_cl(void **state)
{
	(void)state;
	/* http_parser refuses these itself; our own check stands behind it */
	expect_error("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n"
	             "content-length: 3\r\n\r\nabc",
	    400);
	expect_error("POST / HTTP/1.1\r\nHost: h\r\nCONTENT-LENGTH: 3\r\n"
	             "X-A: 1\r\nContent-Length: 3\r\n\r\nabc",
	    400);
	expect_error("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n"
	             "Content-Length: 4\r\n\r\nabcd",
	    400);
	expect_error("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3, 3\r\n\r\nabc", 400);
}

static void
t_reject_transfer_encoding(void **state)
{
	static const char *const bad[] = {
	    "gzip",
	    "gzip, chunked",
	    "chunked, gzip",
	    "xchunked",
	    "chunkedx",
	    "chunked ",
	    "chunked\t",
	    "chunked;q=1",
	    "identity",
	};
	char buf[256];

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(buf, sizeof(buf),
		    "POST / HTTP/1.1\r\nHost: h\r\n"
		    "Transfer-Encoding: %s\r\n\r\n",
		    bad[i]);
		expect_error(buf, 400);
	}
	expect_reason("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n"
	              "transfer-encoding: chunked\r\n\r\n",
	    400, "unsupported transfer-encoding");
	expect_ok("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: CHUNKED\r\n\r\n");
}

/* RFC 9112 6.1: Transfer-Encoding in an HTTP/1.0 message is faulty framing */
static void
t_reject_te_in_http10(void **state)
{
	static const char resp[] = "HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
	                           "5\r\nhello\r\n0\r\n\r\n";
	struct http_in in;

	(void)state;
	expect_error("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", 400);
	expect_error("POST / HTTP/1.0\r\nHost: h\r\nTransfer-Encoding: chunked\r\n"
	             "Content-Length: 3\r\n\r\n",
	    400);
	expect_ok("POST / HTTP/1.0\r\nContent-Length: 3\r\n\r\n");

	http_in_init(&in, 0, MAXH, MAXN, NULL, NULL);
	http_in_feed(&in, resp, sizeof(resp) - 1);
	assert_int_equal(in.state, HTTP_IN_ERROR);
	assert_int_equal(in.error_status, 502);
	assert_string_equal(in.error, "Transfer-Encoding in an HTTP/1.0 message");
	http_in_free(&in);
}

static void
t_reject_obs_fold(void **state)
{
	(void)state;
	expect_error("GET / HTTP/1.1\r\nHost: h\r\nX-A: a\r\n b\r\n\r\n", 400);
	expect_error("GET / HTTP/1.1\r\nHost: h\r\nX-A: a\r\n\tb\r\n\r\n", 400);
	expect_error("GET / HTTP/1.1\r\n Host: h\r\n\r\n", 400);
}

static void
t_reject_bare_lf_cr(void **state)
{
	struct http_in in;

	(void)state;
	expect_error("GET / HTTP/1.1\nHost: h\n\n", 400);
	expect_error("GET / HTTP/1.1\r\nHost: h\nX: y\r\n\r\n", 400);
	expect_error("GET / HTTP/1.1\r\nHost: h\r\n\n", 400);
	expect_error("GET / HTTP/1.1\r\nHost: h\rX: y\r\n\r\n", 400);
	expect_error("GET / HTTP/1.1\r\nHost: h\r\n\r\r", 400);

	/* CR and LF in separate feeds are fine */
	http_in_init(&in, 1, MAXH, MAXN, NULL, NULL);
	http_in_feed(&in, "GET / HTTP/1.1\r", 15);
	http_in_feed(&in, "\nHost: h\r", 9);
	http_in_feed(&in, "\n\r", 2);
	assert_int_equal(http_in_feed(&in, "\n", 1), 1);
	assert_int_equal(in.state, HTTP_IN_HEAD_DONE);
	http_in_free(&in);
}

static void
t_reject_control_bytes(void **state)
{
	static const char nul[] = "GET / HTTP/1.1\r\nHost: h\r\nX: a\0b\r\n\r\n";
	struct http_in in;

	(void)state;
	http_in_init(&in, 1, MAXH, MAXN, NULL, NULL);
	http_in_feed(&in, nul, sizeof(nul) - 1);
	assert_int_equal(in.state, HTTP_IN_ERROR);
	assert_int_equal(in.error_status, 400);
	http_in_free(&in);
	expect_error("GET / HTTP/1.1\r\nHost: h\r\nX: a\x01z\r\n\r\n", 400);
	expect_error("GET / HTTP/1.1\r\nHost: h\r\nX: a\x7fz\r\n\r\n", 400);
	expect_error("GET / HTTP/1.1\r\nHost: h\r\nX: a\x1b[m\r\n\r\n", 400);
	expect_ok("GET / HTTP/1.1\r\nHost: h\r\nX: a\tb \xc3\xa9\r\n\r\n");
}

/* A head whose X value is 40 bytes of 'a' with byte c at offset pos. */
static size_t
value_head(char *buf, size_t pos, unsigned char c)
{
	static const char pre[] = "GET / HTTP/1.1\r\nHost: h\r\nX: ";
	size_t n = sizeof(pre) - 1;

	memcpy(buf, pre, n);
	memset(buf + n, 'a', 40);
	buf[n + pos] = (char)c;
	memcpy(buf + n + 40, "\r\n\r\n", 4);
	return n + 44;
}

/* The head scan checks field values eight bytes at a time: every byte value
 * at every offset after the first of a 40-byte value (within a word, at its
 * edges, in the tail), fed whole and byte by byte, gets the verdict of the
 * byte rules. */
static void
t_value_bytes_at_every_offset(void **state)
{
	char buf[128];

	(void)state;
	for (size_t pos = 1; pos < 40; pos++)
		for (unsigned c = 0; c < 256; c++) {
			int ok = c == '\t' || (c >= 0x20 && c != 0x7f);
			size_t len = value_head(buf, pos, (unsigned char)c);
			struct http_in in;

			http_in_init(&in, 1, MAXH, MAXN, NULL, NULL);
			http_in_feed(&in, buf, len);
			assert_int_equal(in.state, ok ? HTTP_IN_HEAD_DONE : HTTP_IN_ERROR);
			if (ok) { /* a trailing blank is not part of the value */
				const char *v = http_msg_header(&in.msg, "X");
				size_t want = pos == 39 && (c == ' ' || c == '\t') ? 39 : 40;

				assert_int_equal(strlen(v), want);
				assert_memory_equal(v, buf + len - 44, want);
			} else {
				assert_int_equal(in.error_status, 400);
				assert_string_equal(in.error,
				    c == '\r'   ? "bare CR in header section"
				    : c == '\n' ? "bare LF in header section"
						: "invalid character in header value");
			}
			http_in_free(&in);

			http_in_init(&in, 1, MAXH, MAXN, NULL, NULL);
			for (size_t i = 0; i < len && in.state == HTTP_IN_HEAD; i++)
				http_in_feed(&in, buf + i, 1);
			assert_int_equal(in.state, ok ? HTTP_IN_HEAD_DONE : HTTP_IN_ERROR);
			http_in_free(&in);
		}
}

static void
t_reject_bad_names(void **state)
{
	(void)state;
	expect_error("GET / HTTP/1.1\r\nHost: h\r\n: v\r\n\r\n", 400);
	expect_error("GET / HTTP/1.1\r\nHost: h\r\nX Y: v\r\n\r\n", 400);
	expect_error("GET / HTTP/1.1\r\nHost: h\r\nX(Y): v\r\n\r\n", 400);
	expect_error("GET / HTTP/1.1\r\nHost : h\r\n\r\n", 400);
	expect_error("GET / HTTP/1.1\r\nHost: h\r\nNoColon\r\n\r\n", 400);
}

/*
 * Found by fuzz_http (the verdict must not depend on how bytes arrive):
 * http_parser flags a bad name or value byte when it reaches it, our header
 * checks ran when the input slice ended, so one header too many followed by
 * a bad name was 400 when fed whole and 431 byte by byte, and other bad
 * heads got one of two reasons; a feed that began with a bad byte reached
 * http_parser as 0 bytes, which it reads as end of input.
 */
static void
t_verdict_independent_of_slicing(void **state)
{
	char buf[2048];
	size_t n;
	struct http_in whole, trickle;
	const char *te =
	    "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip\r\nBad(Name): x\r\n\r\n";
	const char *chunked = "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
	                      "5\r\nhello\n5\r\nworld\r\n0\r\n\r\n";
	const char *chunk_ext_ctl = "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
	    "5;a=\x01\r\nhello\r\n0\r\n\r\n";
	const char *nocolon =
	    "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip\r\nhello\r\n\r\n";
	static struct rec r1, r2;

	(void)state;
	n = (size_t)snprintf(buf, sizeof(buf), "GET / HTTP/1.1\r\nHost: h\r\n");
	for (int i = 0; i < MAXN; i++)
		n += (size_t)snprintf(buf + n, sizeof(buf) - n, "X-%d: v\r\n", i);
	snprintf(buf + n, sizeof(buf) - n, "Bad(Name): v\r\n\r\n");
	expect_error(buf, 431);

	head(&whole, te);
	http_in_init(&trickle, 1, MAXH, MAXN, NULL, NULL);
	for (size_t i = 0; i < strlen(te) && trickle.state == HTTP_IN_HEAD; i++)
		http_in_feed(&trickle, te + i, 1);
	assert_int_equal(whole.state, HTTP_IN_ERROR);
	assert_int_equal(trickle.state, HTTP_IN_ERROR);
	assert_string_equal(whole.error, trickle.error);
	http_in_free(&whole);
	http_in_free(&trickle);

	/* NUL in a value: one reason whether the parser or a callback saw it */
	http_in_init(&whole, 1, MAXH, MAXN, NULL, NULL);
	http_in_feed(&whole, "GET / HTTP/1.1\r\nHost: \0\0\r\n\r\n", 28);
	http_in_init(&trickle, 1, MAXH, MAXN, NULL, NULL);
	http_in_feed(&trickle, "GET / HTTP/1.1\r\nHost: \0", 23);
	http_in_feed(&trickle, "\0\r\n\r\n", 5);
	assert_int_equal(whole.state, HTTP_IN_ERROR);
	assert_int_equal(trickle.state, HTTP_IN_ERROR);
	assert_string_equal(whole.error, trickle.error);
	http_in_free(&whole);
	http_in_free(&trickle);

	/* a line without colon after a bad Transfer-Encoding */
	run(nocolon, strlen(nocolon), 1, strlen(nocolon), 0, &r1);
	run(nocolon, strlen(nocolon), 1, 1, 0, &r2);
	assert_string_equal(r1.log, r2.log);

	/* bare LF after chunk data: one reason, whole or byte by byte */
	run(chunked, strlen(chunked), 1, strlen(chunked), 0, &r1);
	run(chunked, strlen(chunked), 1, 1, 0, &r2);
	assert_string_equal(r1.log, r2.log);
	assert_non_null(strstr(r1.log, "<ERR 400 bare CR or LF in chunked framing>"));

	/* a control byte in a chunk extension (the parser skips extensions) */
	run(chunk_ext_ctl, strlen(chunk_ext_ctl), 1, strlen(chunk_ext_ctl), 0, &r1);
	run(chunk_ext_ctl, strlen(chunk_ext_ctl), 1, 1, 0, &r2);
	assert_string_equal(r1.log, r2.log);
	assert_non_null(strstr(r1.log, "<ERR 400 control character in chunked framing>"));
	assert_null(strstr(r1.log, "hello"));

	/* a feed starting with a bad byte is not end of input */
	http_in_init(&trickle, 1, MAXH, MAXN, NULL, NULL);
	assert_int_equal(http_in_feed(&trickle, "G", 1), 1);
	assert_int_equal(http_in_feed(&trickle, "\x05", 1), 0);
	assert_int_equal(trickle.state, HTTP_IN_ERROR);
	assert_string_equal(trickle.error, "malformed request line");
	http_in_free(&trickle);
}

static void
t_reject_host(void **state)
{
	(void)state;
	expect_error("GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n", 400);
	expect_error("GET / HTTP/1.1\r\nHost: a\r\nhost: b\r\n\r\n", 400);
	expect_error("GET / HTTP/1.1\r\nAccept: */*\r\n\r\n", 400);
	expect_error("GET / HTTP/1.1\r\nHost: a b\r\n\r\n", 400);
	expect_error("GET / HTTP/1.1\r\nHost: u@a\r\n\r\n", 400);
	expect_error("GET / HTTP/1.1\r\nHost: a/b\r\n\r\n", 400);
	expect_error("GET / HTTP/1.1\r\nHost: a:x\r\n\r\n", 400);
	expect_error("GET / HTTP/1.1\r\nHost: [::1\r\n\r\n", 400);
	expect_ok("GET / HTTP/1.0\r\n\r\n");
	expect_ok("GET / HTTP/1.1\r\nHost: [::1]:80\r\n\r\n");
	expect_ok("GET / HTTP/1.1\r\nHost:\r\n\r\n");
}

static void
t_reject_request_line(void **state)
{
	(void)state;
	expect_error("GET / HTTP/2.0\r\nHost: h\r\n\r\n", 505);
	expect_error("GET / HTTP/1.2\r\nHost: h\r\n\r\n", 505);
	expect_error("GET / HXXP/1.1\r\nHost: h\r\n\r\n", 400);
	expect_error("GET  / HTTP/1.1\r\nHost: h\r\n\r\n", 400);
	expect_error("GET / HTTP/1.1 \r\nHost: h\r\n\r\n", 400);
	expect_error("GET /a\tb HTTP/1.1\r\nHost: h\r\n\r\n", 400);
	expect_error("GET /\xc3\xa9 HTTP/1.1\r\nHost: h\r\n\r\n", 400);
	/* empty lines before a request are allowed (RFC 9112 2.2) */
	expect_ok("\r\n\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n");
}

/* ---- responses ---------------------------------------------------------------- */

static void
t_response_content_length(void **state)
{
	static const char s[] = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-A: b\r\n\r\nhello"
	                        "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n";
	struct rec r;

	(void)state;
	for (size_t step = 1; step <= sizeof(s); step *= 2) {
		run(s, sizeof(s) - 1, 0, step, 0, &r);
		assert_string_equal(r.log, "<RESP 200 OK body=1 cl=5 ka=1>hello<DONE>"
		                           "<RESP 404 Not Found body=1 cl=0 ka=1><DONE>");
	}
}

static void
t_response_chunked(void **state)
{
	static const char s[] = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
	                        "3\r\nabc\r\n10;x=y\r\n0123456789abcdef\r\n0\r\nT: v\r\n\r\n";
	struct rec r;

	(void)state;
	for (size_t step = 1; step <= sizeof(s); step *= 2) {
		run(s, sizeof(s) - 1, 0, step, 0, &r);
		assert_string_equal(
		    r.log, "<RESP 200 OK body=2 cl=0 ka=1>abc0123456789abcdef<DONE>");
	}
}

static void
t_response_eof(void **state)
{
	static const char s[] = "HTTP/1.1 200 OK\r\nX: y\r\n\r\nuntil the end";
	struct rec r;
	struct http_in in;

	(void)state;
	run(s, sizeof(s) - 1, 0, 4, 1, &r);
	assert_string_equal(r.log, "<RESP 200 OK body=3 cl=0 ka=0>until the end<DONE>");

	http_in_init(&in, 0, MAXH, MAXN, NULL, NULL);
	http_in_feed(&in, s, 20);
	assert_int_equal(in.state, HTTP_IN_HEAD);
	http_in_feed(&in, NULL, 0); /* EOF inside the head */
	assert_int_equal(in.state, HTTP_IN_ERROR);
	assert_int_equal(in.error_status, 502);
	http_in_free(&in);
}

static void
t_response_head_skip_body(void **state)
{
	static const char s[] = "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n"
	                        "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
	struct http_in in;
	struct rec r;
	size_t n;

	(void)state;
	memset(&r, 0, sizeof(r));
	http_in_init(&in, 0, MAXH, MAXN, &rec_cb, &r);
	http_in_set_skip_body(&in, 1);
	n = http_in_feed(&in, s, sizeof(s) - 1);
	assert_int_equal(n, strlen("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n"));
	assert_int_equal(in.msg.body, HTTP_BODY_NONE);
	assert_string_equal(http_msg_header(&in.msg, "Content-Length"), "100");
	http_in_resume(&in);
	assert_int_equal(in.state, HTTP_IN_DONE);
	http_in_resume(&in);
	/* the flag was for one response only */
	drive(&in, s + n, sizeof(s) - 1 - n, 1000, 0, &r);
	assert_string_equal(r.log, "<RESP 200 OK body=1 cl=2 ka=1>ok<DONE>");
	http_in_free(&in);
}

static void
t_response_204_304(void **state)
{
	static const char s[] =
	    "HTTP/1.1 204 No Content\r\n\r\n"
	    "HTTP/1.1 304 Not Modified\r\nContent-Length: 42\r\nETag: \"x\"\r\n\r\n"
	    "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nz";
	struct rec r;

	(void)state;
	run(s, sizeof(s) - 1, 0, 3, 0, &r);
	assert_string_equal(r.log, "<RESP 204 No Content body=0 cl=0 ka=1><DONE>"
	                           "<RESP 304 Not Modified body=0 cl=0 ka=1><DONE>"
	                           "<RESP 200 OK body=1 cl=1 ka=1>z<DONE>");
}

static void
t_response_100_continue(void **state)
{
	static const char s[] = "HTTP/1.1 100 Continue\r\n\r\n"
	                        "HTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nid";
	struct http_in in;
	struct rec r;

	(void)state;
	run(s, sizeof(s) - 1, 0, 1, 0, &r);
	assert_string_equal(r.log, "<RESP 100 Continue body=0 cl=0 ka=1><DONE>"
	                           "<RESP 201 Created body=1 cl=2 ka=1>id<DONE>");

	/* a HEAD request's final response after a 1xx still has no body */
	memset(&r, 0, sizeof(r));
	http_in_init(&in, 0, MAXH, MAXN, &rec_cb, &r);
	http_in_set_skip_body(&in, 1);
	drive(&in, s, sizeof(s) - 3, 1000, 0, &r);
	assert_string_equal(r.log, "<RESP 100 Continue body=0 cl=0 ka=1><DONE>"
	                           "<RESP 201 Created body=0 cl=0 ka=1><DONE>");
	http_in_free(&in);
}

static void
t_response_keep_alive(void **state)
{
	static const char s10[] = "HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n";
	static const char s10ka[] =
	    "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n";
	static const char s11c[] =
	    "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n";
	struct rec r;

	(void)state;
	run(s10, sizeof(s10) - 1, 0, 100, 0, &r);
	assert_string_equal(r.log, "<RESP 200 OK body=1 cl=0 ka=0><DONE>");
	run(s10ka, sizeof(s10ka) - 1, 0, 100, 0, &r);
	assert_string_equal(r.log, "<RESP 200 OK body=1 cl=0 ka=1><DONE>");
	run(s11c, sizeof(s11c) - 1, 0, 100, 0, &r);
	assert_string_equal(r.log, "<RESP 200 OK body=1 cl=0 ka=0><DONE>");
}

static void
t_response_errors(void **state)
{
	static const char *const bad[] = {
	    "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n",
	    "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
	    "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
	    "HTTP/1.1 200 OK\nContent-Length: 0\n\n",
	    "HTTP/2.0 200 OK\r\n\r\n",
	    "HTTP/1.1 20 OK\r\n\r\n",
	    "HXXP/1.1 200 OK\r\n\r\n",
	    "HTTP/1.1 200 O\x01K\r\n\r\n",
	    "HTTP/1.1 200 OK\r\nX: a\r\n b\r\n\r\n",
	    "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nq\r\n",
	};
	struct rec r;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		run(bad[i], strlen(bad[i]), 0, 1000, 0, &r);
		if (strstr(r.log, "<ERR 502 ") == NULL)
			fail_msg("%s: %s", bad[i], r.log);
		run(bad[i], strlen(bad[i]), 0, 1, 0, &r);
		if (strstr(r.log, "<ERR 502 ") == NULL)
			fail_msg("%s (bytewise): %s", bad[i], r.log);
	}
	/* tolerated: no reason phrase */
	run("HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n",
	    strlen("HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n"), 0, 100, 0, &r);
	assert_string_equal(r.log, "<RESP 200  body=1 cl=0 ka=1><DONE>");
}

/* ---- writers ------------------------------------------------------------------- */

static void
t_header_is_hop(void **state)
{
	struct http_in in;

	(void)state;
	head(&in, "GET / HTTP/1.1\r\nHost: h\r\nConnection: keep-alive, X-Secret ,x-other\r\n"
	          "Connection: Foo\r\n\r\n");
	assert_true(http_header_is_hop(&in.msg, "x-secret"));
	assert_true(http_header_is_hop(&in.msg, "X-Other"));
	assert_true(http_header_is_hop(&in.msg, "foo"));
	assert_true(http_header_is_hop(&in.msg, "Keep-Alive"));
	assert_true(http_header_is_hop(&in.msg, "te"));
	assert_true(http_header_is_hop(&in.msg, "Proxy-Authorization"));
	assert_true(http_header_is_hop(&in.msg, "content-length"));
	/* every name of the list, whatever its length and case */
	assert_true(http_header_is_hop(&in.msg, "CONNECTION"));
	assert_true(http_header_is_hop(&in.msg, "keep-alive"));
	assert_true(http_header_is_hop(&in.msg, "Proxy-Connection"));
	assert_true(http_header_is_hop(&in.msg, "proxy-authenticate"));
	assert_true(http_header_is_hop(&in.msg, "TE"));
	assert_true(http_header_is_hop(&in.msg, "trailer"));
	assert_true(http_header_is_hop(&in.msg, "Transfer-Encoding"));
	assert_true(http_header_is_hop(&in.msg, "UPGRADE"));
	assert_false(http_header_is_hop(&in.msg, "Upgrades"));
	assert_false(http_header_is_hop(&in.msg, "Trailers"));
	assert_false(http_header_is_hop(&in.msg, "X-Secre"));
	assert_false(http_header_is_hop(&in.msg, "Accept"));
	assert_false(http_header_is_hop(&in.msg, "Host"));
	http_in_free(&in);
}

static void
t_write_request_head(void **state)
{
	struct evbuffer *b = evbuffer_new();
	struct http_in in;

	(void)state;
	head(&in, "POST http://api.example/x?y=1 HTTP/1.1\r\nHost: api.example\r\n"
	          "Accept: */*\r\nConnection: keep-alive, X-Hop\r\nX-Hop: 1\r\n"
	          "Keep-Alive: timeout=5\r\nProxy-Authorization: Basic x\r\n"
	          "Expect: 100-continue\r\nTE: trailers\r\nContent-Length: 3\r\n"
	          "Upgrade: h2c\r\nX-Keep: yes\r\n\r\n");
	assert_int_equal(in.state, HTTP_IN_HEAD_DONE);
	http_write_request_head(b, &in.msg, "/prefix/x?y=1", "bank.example:8443");
	assert_buf(b, "POST /prefix/x?y=1 HTTP/1.1\r\n"
	              "Host: bank.example:8443\r\n"
	              "Accept: */*\r\n"
	              "X-Keep: yes\r\n"
	              "Content-Length: 3\r\n\r\n");
	http_in_free(&in);
	evbuffer_free(b);
}

static void
t_write_request_head_chunked(void **state)
{
	struct evbuffer *b = evbuffer_new();
	struct http_in in;

	(void)state;
	head(&in, "PUT /u HTTP/1.1\r\nhost: local\r\nTransfer-Encoding: chunked\r\n"
	          "X-A: 1\r\nx-a: 2\r\n\r\n");
	http_write_request_head(b, &in.msg, in.msg.path, "remote");
	assert_buf(b, "PUT /u HTTP/1.1\r\nHost: remote\r\nX-A: 1\r\nx-a: 2\r\n"
	              "Transfer-Encoding: chunked\r\n\r\n");
	http_in_free(&in);
	evbuffer_drain(b, evbuffer_get_length(b));

	head(&in, "GET /g HTTP/1.0\r\n\r\n");
	http_write_request_head(b, &in.msg, in.msg.path, "remote");
	assert_buf(b, "GET /g HTTP/1.1\r\nHost: remote\r\n\r\n");
	http_in_free(&in);
	evbuffer_free(b);
}

/* parse a response head into in (skip: response to HEAD) */
static void
resp_head(struct http_in *in, const char *s, int skip)
{
	http_in_init(in, 0, MAXH, MAXN, NULL, NULL);
	http_in_set_skip_body(in, skip);
	http_in_feed(in, s, strlen(s));
	assert_int_equal(in->state, HTTP_IN_HEAD_DONE);
}

static void
t_write_response_head(void **state)
{
	struct evbuffer *b = evbuffer_new();
	struct http_in in;

	(void)state;
	resp_head(&in,
	    "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
	    "Connection: X-Up\r\nX-Up: 1\r\nKeep-Alive: 5\r\nContent-Length: 12\r\n"
	    "Set-Cookie: a=1\r\nSet-Cookie: b=2\r\n\r\n",
	    0);
	assert_int_equal(http_write_response_head(b, &in.msg, 0, 1, 0), HTTP_BODY_LENGTH);
	assert_buf(b, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
	              "Set-Cookie: a=1\r\nSet-Cookie: b=2\r\nContent-Length: 12\r\n\r\n");
	evbuffer_drain(b, evbuffer_get_length(b));
	assert_int_equal(http_write_response_head(b, &in.msg, 0, 1, 1), HTTP_BODY_LENGTH);
	assert_buf(b, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
	              "Set-Cookie: a=1\r\nSet-Cookie: b=2\r\nContent-Length: 12\r\n"
	              "Connection: close\r\n\r\n");
	evbuffer_drain(b, evbuffer_get_length(b));
	/* an HTTP/1.0 client is told the connection persists */
	assert_int_equal(http_write_response_head(b, &in.msg, 0, 0, 0), HTTP_BODY_LENGTH);
	assert_buf(b, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
	              "Set-Cookie: a=1\r\nSet-Cookie: b=2\r\nContent-Length: 12\r\n"
	              "Connection: keep-alive\r\n\r\n");
	http_in_free(&in);
	evbuffer_free(b);
}

static void
t_write_response_reframe(void **state)
{
	struct evbuffer *b = evbuffer_new();
	struct http_in in;

	(void)state;
	/* EOF-delimited upstream body: chunked to HTTP/1.1, EOF to 1.0 */
	resp_head(&in, "HTTP/1.0 200 Fine\r\nX: y\r\n\r\n", 0);
	assert_int_equal(in.msg.body, HTTP_BODY_EOF);
	assert_int_equal(http_write_response_head(b, &in.msg, 0, 1, 0), HTTP_BODY_CHUNKED);
	assert_buf(b, "HTTP/1.1 200 Fine\r\nX: y\r\nTransfer-Encoding: chunked\r\n\r\n");
	evbuffer_drain(b, evbuffer_get_length(b));
	assert_int_equal(http_write_response_head(b, &in.msg, 0, 0, 0), HTTP_BODY_EOF);
	assert_buf(b, "HTTP/1.1 200 Fine\r\nX: y\r\nConnection: close\r\n\r\n");
	http_in_free(&in);
	evbuffer_drain(b, evbuffer_get_length(b));

	/* chunked upstream body */
	resp_head(&in, "HTTP/1.1 201 \r\nTransfer-Encoding: chunked\r\n\r\n", 0);
	assert_int_equal(http_write_response_head(b, &in.msg, 0, 1, 0), HTTP_BODY_CHUNKED);
	assert_buf(b, "HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n");
	evbuffer_drain(b, evbuffer_get_length(b));
	assert_int_equal(http_write_response_head(b, &in.msg, 0, 0, 1), HTTP_BODY_EOF);
	assert_buf(b, "HTTP/1.1 201 Created\r\nConnection: close\r\n\r\n");
	http_in_free(&in);
	evbuffer_free(b);
}

static void
t_write_response_no_body(void **state)
{
	struct evbuffer *b = evbuffer_new();
	struct http_in in;

	(void)state;
	/* HEAD: Content-Length describes the resource and is kept */
	resp_head(&in, "HTTP/1.1 200 OK\r\nContent-Length: 1234\r\nETag: e\r\n\r\n", 1);
	assert_int_equal(http_write_response_head(b, &in.msg, 1, 1, 0), HTTP_BODY_NONE);
	assert_buf(b, "HTTP/1.1 200 OK\r\nETag: e\r\nContent-Length: 1234\r\n\r\n");
	http_in_free(&in);
	evbuffer_drain(b, evbuffer_get_length(b));

	resp_head(&in, "HTTP/1.1 304 Not Modified\r\nContent-Length: 77\r\n\r\n", 0);
	assert_int_equal(http_write_response_head(b, &in.msg, 0, 1, 0), HTTP_BODY_NONE);
	assert_buf(b, "HTTP/1.1 304 Not Modified\r\nContent-Length: 77\r\n\r\n");
	http_in_free(&in);
	evbuffer_drain(b, evbuffer_get_length(b));

	resp_head(&in, "HTTP/1.1 204 No Content\r\nContent-Length: 0\r\nX: 1\r\n\r\n", 0);
	assert_int_equal(http_write_response_head(b, &in.msg, 0, 1, 0), HTTP_BODY_NONE);
	assert_buf(b, "HTTP/1.1 204 No Content\r\nX: 1\r\n\r\n");
	http_in_free(&in);
	evbuffer_free(b);
}

static void
t_write_chunks(void **state)
{
	struct evbuffer *b = evbuffer_new();
	char big[300];

	(void)state;
	memset(big, 'z', sizeof(big));
	http_write_chunk(b, "hello", 5);
	http_write_chunk(b, "", 0);
	assert_buf(b, "5\r\nhello\r\n");
	evbuffer_drain(b, evbuffer_get_length(b));
	http_write_chunk(b, big, sizeof(big));
	assert_int_equal(evbuffer_get_length(b), 5 + 300 + 2);
	assert_memory_equal(evbuffer_pullup(b, 5), "12c\r\n", 5);
	evbuffer_drain(b, evbuffer_get_length(b));
	http_write_last_chunk(b);
	assert_buf(b, "0\r\n\r\n");
	evbuffer_free(b);
}

/* What the writers produce, the parser reads back unchanged. */
static void
t_write_chunks_roundtrip(void **state)
{
	struct evbuffer *b = evbuffer_new();
	struct rec r;
	size_t n;

	(void)state;
	evbuffer_add_printf(b, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n");
	http_write_chunk(b, "abc", 3);
	http_write_chunk(b, "\r\n0\r\n\r\n", 7);
	http_write_last_chunk(b);
	n = evbuffer_get_length(b);
	run((const char *)evbuffer_pullup(b, -1), n, 0, 5, 0, &r);
	assert_string_equal(r.log, "<RESP 200 OK body=2 cl=0 ka=1>abc\r\n0\r\n\r\n<DONE>");
	evbuffer_free(b);
}

static void
t_write_error(void **state)
{
	struct evbuffer *b = evbuffer_new();

	(void)state;
	http_write_error(b, 403, "no_mapping", "no mapping for host x\r\ny", 0, 0);
	assert_buf(b, "HTTP/1.1 403 Forbidden\r\n"
	              "Content-Type: text/plain\r\n"
	              "X-Mtlsd-Error: no_mapping\r\n"
	              "Content-Length: 30\r\n"
	              "\r\n"
	              "mtlsd: no mapping for host xy\n");
	evbuffer_drain(b, evbuffer_get_length(b));
	http_write_error(b, 429, "rate_limited", "rate limit", 2, 1);
	assert_buf(b, "HTTP/1.1 429 Too Many Requests\r\n"
	              "Content-Type: text/plain\r\n"
	              "X-Mtlsd-Error: rate_limited\r\n"
	              "Retry-After: 2\r\n"
	              "Content-Length: 18\r\n"
	              "Connection: close\r\n"
	              "\r\n"
	              "mtlsd: rate limit\n");
	evbuffer_free(b);
}

static void
t_status_text(void **state)
{
	(void)state;
	assert_string_equal(http_status_text(200), "OK");
	assert_string_equal(http_status_text(400), "Bad Request");
	assert_string_equal(http_status_text(431), "Request Header Fields Too Large");
	assert_string_equal(http_status_text(502), "Bad Gateway");
	assert_string_equal(http_status_text(503), "Service Unavailable");
	assert_string_equal(http_status_text(504), "Gateway Timeout");
	assert_string_equal(http_status_text(505), "HTTP Version Not Supported");
	assert_string_equal(http_status_text(299), "Unknown");
	assert_string_equal(http_status_text(-1), "Unknown");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(t_get_simple),
	    cmocka_unit_test(t_path_query_split),
	    cmocka_unit_test(t_value_whitespace),
	    cmocka_unit_test(t_absolute_form_port),
	    cmocka_unit_test(t_absolute_https_no_path),
	    cmocka_unit_test(t_absolute_ipv6),
	    cmocka_unit_test(t_absolute_trailing_dot),
	    cmocka_unit_test(t_absolute_host_match),
	    cmocka_unit_test(t_absolute_rejects),
	    cmocka_unit_test(t_asterisk_and_connect),
	    cmocka_unit_test(t_expect_upgrade),
	    cmocka_unit_test(t_upgrade_then_next),
	    cmocka_unit_test(t_keep_alive),
	    cmocka_unit_test(t_post_content_length),
	    cmocka_unit_test(t_content_length_zero),
	    cmocka_unit_test(t_chunked_body),
	    cmocka_unit_test(t_chunked_trailers_not_headers),
	    cmocka_unit_test(t_chunked_bad_framing),
	    cmocka_unit_test(t_pipelined),
	    cmocka_unit_test(t_pipelined_offsets),
	    cmocka_unit_test(t_byte_by_byte),
	    cmocka_unit_test(t_body_callback_failure),
	    cmocka_unit_test(t_eof),
	    cmocka_unit_test(t_reject_parser_errors),
	    cmocka_unit_test(t_reject_head_too_large),
	    cmocka_unit_test(t_reject_too_many_headers),
	    cmocka_unit_test(t_reject_cl_and_te),
	    cmocka_unit_test(t_reject_duplicate_cl),
	    cmocka_unit_test(t_reject_transfer_encoding),
	    cmocka_unit_test(t_reject_te_in_http10),
	    cmocka_unit_test(t_reject_obs_fold),
	    cmocka_unit_test(t_reject_bare_lf_cr),
	    cmocka_unit_test(t_reject_control_bytes),
	    cmocka_unit_test(t_value_bytes_at_every_offset),
	    cmocka_unit_test(t_reject_bad_names),
	    cmocka_unit_test(t_verdict_independent_of_slicing),
	    cmocka_unit_test(t_reject_host),
	    cmocka_unit_test(t_reject_request_line),
	    cmocka_unit_test(t_response_content_length),
	    cmocka_unit_test(t_response_chunked),
	    cmocka_unit_test(t_response_eof),
	    cmocka_unit_test(t_response_head_skip_body),
	    cmocka_unit_test(t_response_204_304),
	    cmocka_unit_test(t_response_100_continue),
	    cmocka_unit_test(t_response_keep_alive),
	    cmocka_unit_test(t_response_errors),
	    cmocka_unit_test(t_header_is_hop),
	    cmocka_unit_test(t_write_request_head),
	    cmocka_unit_test(t_write_request_head_chunked),
	    cmocka_unit_test(t_write_response_head),
	    cmocka_unit_test(t_write_response_reframe),
	    cmocka_unit_test(t_write_response_no_body),
	    cmocka_unit_test(t_write_chunks),
	    cmocka_unit_test(t_write_chunks_roundtrip),
	    cmocka_unit_test(t_write_error),
	    cmocka_unit_test(t_status_text),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
