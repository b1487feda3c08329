/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "autoconf.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "log.h"
#include "loop.h"
#include "stream.h"
#include "tls.h"
#include "util.h"

#define STREAM_READ_MAX   (64 * 1024)
#define STREAM_WRITE_LOW  (64 * 1024)
#define STREAM_CHUNK      (16 * 1024)       /* one TLS record */
#define STREAM_IOV        16                /* buffer pieces per sendmsg */

static void stream_read_cb(evutil_socket_t fd, short what, void *arg);
static void stream_write_cb(evutil_socket_t fd, short what, void *arg);

static struct stream *
stream_new(struct event_base *base, int fd, const struct stream_cb *cb, void *arg)
{
	struct stream *s = xcalloc(1, sizeof(*s));

	s->fd = fd;
	s->cb = cb;
	s->arg = arg;
	s->read_max = STREAM_READ_MAX;
	s->write_low = STREAM_WRITE_LOW;
	s->rev = event_new(base, fd, EV_READ | EV_PERSIST, stream_read_cb, s);
	s->wev = event_new(base, fd, EV_WRITE | EV_PERSIST, stream_write_cb, s);
	s->in = evbuffer_new();
	s->out = evbuffer_new();
	if (!s->rev || !s->wev || !s->in || !s->out)
		fatalx("out of memory creating a stream");
	return s;
}

/* Add or delete ev when it is not already as wanted; the new state. */
static unsigned
event_switch(struct event *ev, unsigned on, unsigned want)
{
	if (want != on) {
		if (want)
			event_add(ev, NULL);
		else
			event_del(ev);
	}
	return want;
}

/*
 * Register the events the state calls for, touching the loop (an epoll_ctl)
 * only when that changes. Output is written by stream_flush as soon as the
 * owner queues it; the write event is only for what the socket did not take
 * then, so a request that fits the socket buffer costs no epoll_ctl.
 */
static void
stream_update(struct stream *s)
{
	unsigned want_r = 0, want_w = 0;

	if (s->error) {
		want_r = want_w = 0;
	} else if (s->connecting) {
		want_w = 1;
	} else if (s->handshaking) {
		want_r = !s->tls_read_wants_write;
		want_w = s->tls_read_wants_write;
	} else {
		want_r = (s->reading && !s->eof &&
		    evbuffer_get_length(s->in) < s->read_max) || s->tls_write_wants_read;
		want_w = (s->write_blocked && evbuffer_get_length(s->out) > 0) ||
		    s->tls_read_wants_write;
	}
	s->rev_on = event_switch(s->rev, s->rev_on, want_r);
	s->wev_on = event_switch(s->wev, s->wev_on, want_w);
}

/*
 * Reading a new client's request ahead of epoll. The request is often there
 * by the time we accept the connection (nearly always with a serial client):
 * reading it in this loop pass instead of waiting for epoll to report it
 * saves an epoll round, and a whole request that asks to close never joins
 * epoll at all. A client that connects first and writes later (wrk does, for
 * nearly all connections under load) makes that read find nothing, a system
 * call for naught. So each worker keeps how often its reads ahead found
 * something (an average over about the last 16) and reads ahead while at
 * least a third did; otherwise it tries one connection in AHEAD_PROBE, to
 * notice when its clients change.
 */
#define AHEAD_FOUND 256u                /* the rate of reads that all found */
#define AHEAD_PROBE 16u

static __thread unsigned ahead_rate = AHEAD_FOUND;
static __thread unsigned ahead_skipped;

unsigned
stream_ahead_rate_next(unsigned rate, int found)
{
	return rate - rate / 16 + (found ? AHEAD_FOUND / 16 : 0);
}

unsigned
stream_read_ahead_rate(void)
{
	return ahead_rate;
}

int
stream_read_ahead(unsigned rate, unsigned *skipped)
{
	if (rate >= AHEAD_FOUND / 3)
		return 1;
	if (++*skipped < AHEAD_PROBE)
		return 0;
	*skipped = 0;
	return 1;
}

struct stream *
stream_new_plain(struct event_base *base, int fd, const struct stream_cb *cb, void *arg)
{
	struct stream *s = stream_new(base, fd, cb, arg);

	s->connected = 1;
	s->reading = 1;
	s->first_read = 1;
	if (stream_read_ahead(ahead_rate, &ahead_skipped)) {
		/* the socket joins epoll only after that read, if its owner
		 * still wants input then (stream_do_read) */
		s->reading_ahead = 1;
		event_active(s->rev, EV_READ, 1);
	} else {
		stream_update(s);
	}
	return s;
}

struct stream *
stream_new_tls_client(struct event_base *base, int fd, struct tls_conn *tls,
    const struct stream_cb *cb, void *arg)
{
	struct stream *s = stream_new(base, fd, cb, arg);

	s->tls = tls;
	s->connecting = 1;
	stream_update(s);
	return s;
}

void
stream_free(struct stream *s)
{
	if (s == NULL)
		return;
	if (s->tls != NULL) {
		if (s->connected && !s->error && !s->eof)
			tls_shutdown(s->tls);
		tls_conn_free(s->tls);
	}
	event_free(s->rev);
	event_free(s->wev);
	evbuffer_free(s->in);
	evbuffer_free(s->out);
	if (s->fd >= 0)
		close(s->fd);
	free(s);
}

void
stream_set_cb(struct stream *s, const struct stream_cb *cb, void *arg)
{
	s->cb = cb;
	s->arg = arg;
}

static void
stream_fail(struct stream *s, const char *what, int err)
{
	s->error = 1;
	if (s->tls != NULL && err == 0)
		snprintf(s->errbuf, sizeof(s->errbuf), "%s", tls_conn_error(s->tls));
	else
		snprintf(s->errbuf, sizeof(s->errbuf), "%s: %s", what, strerror(err));
	stream_update(s);
}

void
stream_disable(struct stream *s)
{
	s->error = 1;
	stream_update(s);
}

void
stream_reset_on_close(struct stream *s)
{
	struct linger l = { .l_onoff = 1, .l_linger = 0 };

	if (s->fd >= 0)
		(void)setsockopt(s->fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
}

/* Only when the close is sure to follow: MSG_MORE holds back a short last
 * segment until something pushes it (the FIN does). A write the socket did
 * not take whole leaves bytes in flight, whose ACKs push the rest. */
void
stream_last_out(struct stream *s)
{
	s->last_out = 1;
}

int
stream_eof_clean(const struct stream *s)
{
	return s->tls == NULL || tls_closed_cleanly(s->tls);
}

const char *
stream_error(const struct stream *s)
{
	return s->errbuf[0] ? s->errbuf : "connection error";
}

int
stream_error_is_tls(const struct stream *s)
{
	return s->tls != NULL && tls_conn_failed_tls(s->tls);
}

static void
stream_handshake(struct stream *s)
{
	switch (tls_handshake(s->tls)) {
	case TLS_IO_OK:
		s->handshaking = 0;
		s->connected = 1;
		s->tls_read_wants_write = 0;
		/* output queued while connecting goes out when the socket can */
		if (evbuffer_get_length(s->out) > 0)
			s->write_blocked = 1;
		stream_update(s);
		s->cb->on_connect(s, s->arg, 1);
		return;
	case TLS_IO_WANT_READ:
		s->tls_read_wants_write = 0;
		stream_update(s);
		return;
	case TLS_IO_WANT_WRITE:
		s->tls_read_wants_write = 1;
		stream_update(s);
		return;
	case TLS_IO_CLOSED:
	case TLS_IO_ERROR:
		break;
	}
	stream_fail(s, "TLS handshake", 0);
	if (!tls_conn_failed_tls(s->tls) && strcmp(tls_conn_error(s->tls), "TLS error") == 0)
		snprintf(s->errbuf, sizeof(s->errbuf), "connection closed during TLS handshake");
	s->cb->on_connect(s, s->arg, 0);
}

static void
stream_connect_done(struct stream *s)
{
	int err = 0;
	socklen_t len = sizeof(err);

	if (getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
		err = errno;
	if (err == EINPROGRESS || err == EALREADY)
		return;
	s->connecting = 0;
	if (err != 0) {
		stream_fail(s, "connect", err);
		s->cb->on_connect(s, s->arg, 0);
		return;
	}
	s->handshaking = 1;
	stream_handshake(s);
}

/* One read attempt into vec; returns bytes, 0 to stop, -1 error/eof noted. */
static ssize_t
stream_read_once(struct stream *s, void *buf, size_t len)
{
	if (s->tls != NULL) {
		size_t n = 0;
		switch (tls_read(s->tls, buf, len, &n)) {
		case TLS_IO_OK:
			return (ssize_t)n;
		case TLS_IO_WANT_READ:
			return 0;
		case TLS_IO_WANT_WRITE:
			s->tls_read_wants_write = 1;
			return 0;
		case TLS_IO_CLOSED:
			s->eof = 1;
			return -1;
		case TLS_IO_ERROR:
			stream_fail(s, "TLS read", 0);
			return -1;
		}
	}
	for (;;) {
		ssize_t n = read(s->fd, buf, len);
		if (n > 0)
			return n;
		if (n == 0) {
			s->eof = 1;
			return -1;
		}
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN || errno == EWOULDBLOCK)
			return 0;
		stream_fail(s, "read", errno);
		return -1;
	}
}

/*
 * A new client's first read, through the stack: a client that has sent
 * nothing yet then holds no input buffer (a reserved 16 KiB chain cost idle
 * connections 4 KiB of heap each). Returns 1 when the socket is drained.
 */
static int
stream_first_read(struct stream *s)
{
	char buf[STREAM_CHUNK];
	ssize_t n;

	s->first_read = 0;
	n = stream_read_once(s, buf, sizeof(buf));
	if (s->reading_ahead) {
		s->reading_ahead = 0;
		ahead_rate = stream_ahead_rate_next(ahead_rate, n != 0);
	}
	if (n > 0 && evbuffer_add(s->in, buf, (size_t)n) != 0)
		fatalx("out of memory reading a stream");
	return n < (ssize_t)sizeof(buf);
}

static void
stream_do_read(struct stream *s)
{
	size_t before = evbuffer_get_length(s->in);
	int ended = 0, plain = s->tls == NULL;

	if (s->first_read && s->reading)
		ended = stream_first_read(s);
	while (s->reading && !ended && evbuffer_get_length(s->in) < s->read_max) {
		struct evbuffer_iovec vec;
		ssize_t n;

		if (evbuffer_reserve_space(s->in, STREAM_CHUNK, &vec, 1) < 1)
			fatalx("out of memory reading a stream");
		n = stream_read_once(s, vec.iov_base, vec.iov_len < STREAM_CHUNK ?
		    vec.iov_len : STREAM_CHUNK);
		vec.iov_len = n > 0 ? (size_t)n : 0;
		evbuffer_commit_space(s->in, &vec, n > 0 ? 1 : 0);
		if (n <= 0)
			ended = 1;
		else if (s->tls == NULL ? (size_t)n < STREAM_CHUNK : tls_read_drained(s->tls))
			break;          /* socket drained; skip the EAGAIN read */
	}
	/* a plain stream (a client's: its owner frees it from the loop, never
	 * inside a callback) registers what it wants after its owner has seen
	 * the input: a connection whose owner needs no more input (a whole
	 * request that asks to close) never costs an epoll_ctl. A TLS stream
	 * (an upstream) may be freed by on_read: it registers before. */
	if (!plain)
		stream_update(s);
	if (evbuffer_get_length(s->in) != before || s->eof || s->error)
		s->cb->on_read(s, s->arg);
	if (plain)
		stream_update(s);
}

/* Write as much of s->out as the socket takes; 0, or -1 when dead. */
static int
stream_do_write_tls(struct stream *s)
{
	while (evbuffer_get_length(s->out) > 0) {
		size_t len = s->tls_write_len, n = 0;
		unsigned char *p;

		if (len == 0) {
			len = evbuffer_get_length(s->out);
			if (len > STREAM_CHUNK)
				len = STREAM_CHUNK;
		}
		p = evbuffer_pullup(s->out, (ssize_t)len);
		switch (tls_write(s->tls, p, len, &n)) {
		case TLS_IO_OK:
			evbuffer_drain(s->out, n);
			s->sent += n;
			s->tls_write_len = 0;
			continue;
		case TLS_IO_WANT_READ:
			s->tls_write_wants_read = 1;
			/* FALLTHROUGH */
		case TLS_IO_WANT_WRITE:
			s->tls_write_len = len;
			s->write_blocked = 1;
			return 0;
		case TLS_IO_CLOSED:
		case TLS_IO_ERROR:
			stream_fail(s, "TLS write", 0);
			return -1;
		}
	}
	return 0;
}

/* One sendmsg of out's first pieces (sendmsg, not writev: no file layer,
 * and the flags); the bytes sent, or -1 with errno. */
static ssize_t
stream_send(struct stream *s)
{
	struct evbuffer_iovec v[STREAM_IOV];
	struct iovec iov[STREAM_IOV];
	struct msghdr m = { .msg_iov = iov };
	int n = evbuffer_peek(s->out, -1, NULL, v, STREAM_IOV);
	ssize_t r;

	if (n > STREAM_IOV)
		n = STREAM_IOV;
	for (int i = 0; i < n; i++) {
		iov[i].iov_base = v[i].iov_base;
		iov[i].iov_len = v[i].iov_len;
	}
	m.msg_iovlen = (size_t)n;
	r = sendmsg(s->fd, &m, MSG_NOSIGNAL | (s->last_out ? MSG_MORE : 0));
	if (r > 0)
		evbuffer_drain(s->out, (size_t)r);
	return r;
}

static int
stream_do_write_plain(struct stream *s)
{
	while (evbuffer_get_length(s->out) > 0) {
		ssize_t n = stream_send(s);
		if (n >= 0) {
			s->sent += (uint64_t)n;
			continue;
		}
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN || errno == EWOULDBLOCK) {
			s->write_blocked = 1;
			return 0;
		}
		stream_fail(s, "write", errno);
		return -1;
	}
	return 0;
}

static void
stream_do_write(struct stream *s)
{
	int r;

	if (s->error || !s->connected)
		return;
	r = s->tls ? stream_do_write_tls(s) : stream_do_write_plain(s);
	if (evbuffer_get_length(s->out) == 0)
		s->write_blocked = 0;
	stream_update(s);
	if (r < 0) {
		s->cb->on_write_error(s, s->arg);
		return;
	}
	if (s->drain_pending && evbuffer_get_length(s->out) <= s->write_low) {
		s->drain_pending = 0;
		s->cb->on_drain(s, s->arg);
	}
}

void
stream_flush(struct stream *s)
{
	if (evbuffer_get_length(s->out) > 0)
		s->drain_pending = 1;
	if (s->connected && !s->error)
		stream_do_write(s);
}

void
stream_set_reading(struct stream *s, int on)
{
	s->reading = on ? 1 : 0;
	if (s->error)
		return;
	stream_update(s);
	/* bytes already decrypted inside wolfSSL raise no socket event */
	if (on && s->tls != NULL && s->connected && tls_pending(s->tls) > 0 &&
	    evbuffer_get_length(s->in) < s->read_max)
		event_active(s->rev, EV_READ, 0);
}

static void
stream_read_cb(evutil_socket_t fd, short what, void *arg)
{
	struct stream *s = arg;

	(void)fd;
	(void)what;
	loop_note_event();
	if (s->handshaking) {
		stream_handshake(s);
	} else if (s->tls_write_wants_read) {
		s->tls_write_wants_read = 0;
		stream_do_write(s);
	} else if (s->connected) {
		stream_do_read(s);
	}
}

static void
stream_write_cb(evutil_socket_t fd, short what, void *arg)
{
	struct stream *s = arg;

	(void)fd;
	(void)what;
	loop_note_event();
	if (s->connecting) {
		stream_connect_done(s);
	} else if (s->handshaking) {
		stream_handshake(s);
	} else if (s->tls_read_wants_write) {
		s->tls_read_wants_write = 0;
		stream_do_read(s);
	} else {
		stream_do_write(s);
	}
}
