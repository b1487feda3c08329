/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * A buffered byte stream on a non-blocking socket, plain (a local client) or
 * TLS (an upstream). Reads fill s->in up to a high-water mark (backpressure:
 * the owner stops reading one side while the other side's output is full),
 * writes drain s->out. An upstream stream also runs the TCP connect and the
 * TLS handshake before it reports itself connected.
 */
#ifndef MTLSD_STREAM_H
#define MTLSD_STREAM_H

#include <stddef.h>
#include <stdint.h>

struct event_base;
struct evbuffer;
struct tls_conn;
struct stream;

struct stream_cb {
	/* connect + handshake finished: ok 1, or 0 with stream_error() set */
	void (*on_connect)(struct stream *s, void *arg, int ok);
	/* new bytes in s->in, or eof/error became set */
	void (*on_read)(struct stream *s, void *arg);
	/* s->out fell to the low-water mark (or empty) after being above it */
	void (*on_drain)(struct stream *s, void *arg);
	/* a write failed (peer gone); the stream is dead */
	void (*on_write_error)(struct stream *s, void *arg);
};

struct stream {
	int fd;
	struct tls_conn *tls;           /* NULL for plain */
	struct event *rev, *wev;
	struct evbuffer *in, *out;
	const struct stream_cb *cb;
	void *arg;
	size_t read_max;                /* stop reading when in reaches it */
	size_t write_low;               /* on_drain when out falls to it */
	unsigned connecting : 1, handshaking : 1, connected : 1;
	unsigned reading : 1;           /* owner wants input */
	unsigned eof : 1, error : 1;
	unsigned tls_read_wants_write : 1, tls_write_wants_read : 1;
	unsigned drain_pending : 1;     /* out was above write_low */
	unsigned write_blocked : 1;     /* a write left bytes in out (or none was
	                                 * tried since it got them): wait for POLLOUT */
	unsigned rev_on : 1, wev_on : 1;        /* events added to the loop */
	unsigned first_read : 1;        /* the next read is a new client's first */
	unsigned reading_ahead : 1;     /* and comes before epoll reported input */
	unsigned last_out : 1;          /* out ends the output: a close follows */
	size_t tls_write_len;           /* wolfSSL retry must repeat the length */
	uint64_t sent;                  /* bytes of out written so far */
	char errbuf[256];
};

/* Whether a new client's first read goes ahead of epoll, given the rate at
 * which such reads found something (0-256) and the count of connections
 * since the last read ahead; and the rate after one more read ahead. */
int stream_read_ahead(unsigned rate, unsigned *skipped);
unsigned stream_ahead_rate_next(unsigned rate, int found);
/* This thread's rate (for tests) */
unsigned stream_read_ahead_rate(void);

/* Plain accepted socket (owned). Reading starts enabled. */
struct stream *stream_new_plain(struct event_base *base, int fd,
    const struct stream_cb *cb, void *arg);
/* Upstream: fd has a non-blocking connect() in progress (owned); tls is
 * owned and driven through its handshake once the connect completes. */
struct stream *stream_new_tls_client(struct event_base *base, int fd,
    struct tls_conn *tls, const struct stream_cb *cb, void *arg);
void stream_free(struct stream *s);

/* Change owner/callbacks (pool hand-over). */
void stream_set_cb(struct stream *s, const struct stream_cb *cb, void *arg);
/* Start/stop reading; starting again re-delivers TLS-buffered bytes. */
void stream_set_reading(struct stream *s, int on);
/* Try to send s->out now (after the owner appended to it). */
void stream_flush(struct stream *s);
/* What out holds now (plain stream) is the last output before a close or
 * shutdown that follows as soon as it is written: it is sent with MSG_MORE,
 * so the FIN rides on its last segment instead of a segment of its own. */
void stream_last_out(struct stream *s);
/* Stop all I/O for good (the owner is closing it). */
void stream_disable(struct stream *s);
/* Make the coming close a TCP reset: for a peer whose only end-of-body
 * signal is the close itself, so that a cut is never taken for the end. */
void stream_reset_on_close(struct stream *s);
/* After eof: 0 when a TLS peer closed TCP without close_notify (which ends
 * no close-delimited body: RFC 9112 9.8), else 1. */
int stream_eof_clean(const struct stream *s);
/* Last error as one line. */
const char *stream_error(const struct stream *s);
int stream_error_is_tls(const struct stream *s);

#endif
