/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * HTTP/1.1 framing on top of the packaged http_parser (libhttp-parser).
 *
 * http_in parses one direction (requests from a client, or responses from an
 * upstream). It pauses after each head so the caller can route and open the
 * other side before any body byte is consumed (backpressure), and after each
 * complete message so pipelined requests are answered in order. Body bytes
 * are handed out decoded (chunked framing removed); the writer functions
 * re-frame them, so what we send is always unambiguous whatever the peer did.
 */
#ifndef MTLSD_HTTP_H
#define MTLSD_HTTP_H

#include <http_parser.h>
#include <stddef.h>
#include <stdint.h>

struct evbuffer;

enum http_body {
	HTTP_BODY_NONE = 0,     /* no body */
	HTTP_BODY_LENGTH,       /* Content-Length: content_length */
	HTTP_BODY_CHUNKED,      /* Transfer-Encoding: chunked */
	HTTP_BODY_EOF,          /* response delimited by connection close */
};

struct http_header {
	char *name;
	char *value;
	size_t name_len, value_len;     /* strlen of each */
	int kind;                       /* private to http.c: a known name? */
};

/* A parsed head. All strings are owned by the message (they live in its
 * http_in's arena until the next message or http_in_free) and are
 * read-only: path, path_only and target may be one string. */
struct http_msg {
	int is_request;
	unsigned short major, minor;
	/* request */
	enum http_method method;
	const char *method_name;        /* static, from http_method_str() */
	char *target;                   /* request-target as sent */
	char *url_host;                 /* absolute-form: host (lower-case, no
	                                 * brackets, trailing dot removed); else NULL */
	uint16_t url_port;              /* absolute-form explicit port, 0 if none */
	int url_is_https;               /* absolute-form scheme was https */
	char *path;                     /* path and query to forward ("/" if empty) */
	char *path_only;                /* path without query, for routing */
	char *host_header;              /* Host header value (request), NULL if none */
	int expect_continue;            /* Expect: 100-continue */
	int upgrade;                    /* Upgrade header present */
	/* response */
	int status;
	char *reason;
	/* both */
	struct http_header *headers;    /* in order, as received */
	size_t n_headers;
	enum http_body body;
	uint64_t content_length;        /* HTTP_BODY_LENGTH only */
	int keep_alive;                 /* sender allows reuse after this message */
};

enum http_in_state {
	HTTP_IN_HEAD = 0,       /* reading a head */
	HTTP_IN_HEAD_DONE,      /* paused: in->msg is ready; call http_in_resume */
	HTTP_IN_BODY,           /* reading the body */
	HTTP_IN_DONE,           /* paused: message complete; call http_in_resume */
	HTTP_IN_ERROR,          /* in->error_status and in->error say why */
};

struct http_in_cb {
	/* decoded body bytes (data points into the fed buffer); return 0, or -1
	 * to fail the parse */
	int (*on_body)(void *arg, const char *data, size_t len);
};

struct http_in {
	http_parser parser;
	http_parser_settings settings;
	enum http_in_state state;
	struct http_msg msg;
	const struct http_in_cb *cb;
	void *arg;
	unsigned max_header_bytes;
	unsigned max_headers;
	size_t head_bytes;              /* bytes of the current head so far */
	int skip_body;                  /* response to HEAD (or 304/204 rules) */
	int error_status;               /* 400, 431, 501 (requests), 502 (responses) */
	const char *error;              /* static one-line reason */
	/* parser scratch: header being assembled (in the arena), last byte seen
	 * (bare LF check) */
	char *cur_name, *cur_value;
	size_t cur_name_len, cur_value_len;
	int last_was_value;
	char last_byte;
	/* private to http.c */
	size_t target_len, reason_len, headers_cap;
	char *arena;                    /* the message's strings */
	size_t arena_len, arena_cap;
	int msg_complete;               /* message ended right after its head */
	int scan_state;                 /* line-structure check of the head */
	unsigned sl_part;               /* start-line check: part and offset */
	size_t sl_pos;
	const char *scan_pos;           /* chunked framing check, during a feed */
};

/* is_request: parse requests (1) or responses (0). */
void http_in_init(struct http_in *in, int is_request, unsigned max_header_bytes,
    unsigned max_headers, const struct http_in_cb *cb, void *arg);
void http_in_free(struct http_in *in);
/* Start over as a fresh http_in_init of the same type, callbacks and
 * argument would, with these limits, keeping the memory already allocated. */
void http_in_reset(struct http_in *in, unsigned max_header_bytes, unsigned max_headers);

/*
 * Feed bytes; returns how many were consumed. Parsing stops early when the
 * state becomes HTTP_IN_HEAD_DONE, HTTP_IN_DONE or HTTP_IN_ERROR; the caller
 * keeps the unconsumed rest and feeds it again after http_in_resume().
 * Feeding 0 bytes signals end of input (completes an EOF-delimited body, or
 * is an error mid-message).
 */
size_t http_in_feed(struct http_in *in, const char *data, size_t len);

/* Leave HEAD_DONE (to BODY, or DONE when there is no body) or DONE (to HEAD
 * of the next message; the previous msg is freed). */
void http_in_resume(struct http_in *in);

/* Responses: the request was HEAD, so the next response has no body. */
void http_in_set_skip_body(struct http_in *in, int skip);

/* Case-insensitive header lookup; the first value or NULL. */
const char *http_msg_header(const struct http_msg *msg, const char *name);

/*
 * Is this header hop-by-hop (never forwarded)? Connection, Keep-Alive,
 * Proxy-Connection, Proxy-Authorization, Proxy-Authenticate, TE, Trailer,
 * Transfer-Encoding, Upgrade, Content-Length (re-framed by us), and every
 * header named in msg's Connection header(s).
 */
int http_header_is_hop(const struct http_msg *msg, const char *name);

/*
 * Upstream request head: "METHOD path HTTP/1.1", "Host: authority", the
 * end-to-end headers of req (no Host, no hop-by-hop, no Expect), then the
 * framing for body: Content-Length (HTTP_BODY_LENGTH), Transfer-Encoding:
 * chunked (HTTP_BODY_CHUNKED), nothing (HTTP_BODY_NONE).
 */
void http_write_request_head(struct evbuffer *out, const struct http_msg *req,
    const char *path, const char *authority);

/*
 * Client response head: "HTTP/1.1 status reason", end-to-end headers of resp,
 * framing: Content-Length kept as is (also for HEAD/304 where it describes
 * the resource), chunked for chunked bodies and for EOF-delimited bodies
 * when the client speaks HTTP/1.1 (client_minor >= 1), and
 * "Connection: close" when close is set. Returns the framing the body must
 * be written with (HTTP_BODY_EOF only for HTTP/1.0 clients).
 */
enum http_body http_write_response_head(struct evbuffer *out, const struct http_msg *resp,
    int head_request, int client_minor, int close);

/* Body framing for the writers above. */
void http_write_chunk(struct evbuffer *out, const char *data, size_t len);
void http_write_last_chunk(struct evbuffer *out);

/*
 * A refusal: status line, Content-Type text/plain, X-Mtlsd-Error: code,
 * optional Retry-After (retry_after > 0), Content-Length, Connection: close
 * when close; body "mtlsd: <reason>\n" (reason is one line, CR/LF stripped).
 */
void http_write_error(struct evbuffer *out, int status, const char *code,
    const char *reason, unsigned retry_after, int close);

/* Standard reason phrase for a status ("Bad Gateway"); "Unknown" if none. */
const char *http_status_text(int status);

#endif
