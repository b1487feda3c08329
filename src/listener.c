/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "autoconf.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <event2/event.h>
#include <grp.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "config.h"
#include "listener.h"
#include "log.h"
#include "loop.h"
#include "runtime.h"
#include "util.h"
#include "workers.h"

#define LISTEN_BACKLOG 511

#ifndef LIST_FOREACH_SAFE
#define LIST_FOREACH_SAFE(var, head, field, tvar)                        \
	for ((var) = LIST_FIRST((head));                                 \
	    (var) && ((tvar) = LIST_NEXT((var), field), 1); (var) = (tvar))
#endif

/* Who may connect and where it goes: a listener's settings from the
 * configuration, as its owner thread sees them. */
struct lsettings {
	char *mapping;                  /* NULL: proxy port */
	uid_t *allowed_uids;
	size_t n_allowed_uids;
};

/* A listener's socket in one worker, touched only by that worker's thread
 * once it runs (TCP: one SO_REUSEPORT socket each; unix: a dup). */
struct lslot {
	struct listener *l;
	struct worker *w;
	int fd;
	struct event *ev;               /* readable: a connection waits */
	struct event *resume;           /* re-enable after EMFILE */
	struct lsettings set;           /* the worker's copy */
};

/* Owned by the main thread, which changes it only while no worker reads
 * it (workers read it inside workers_call). */
struct listener {
	LIST_ENTRY(listener) link;
	char *address;                  /* config spelling */
	char *key;                      /* identity across reloads */
	char *unix_path;
	struct lsettings set;           /* from the configuration */
	int prepared;                   /* opened by the pending reload */
	int keep;                       /* still in the pending config */
	struct lslot *slots;            /* [worker id] */
	unsigned n_slots;
};

static LIST_HEAD(, listener) listeners = LIST_HEAD_INITIALIZER(listeners);
static listener_accept_fn accept_fn;

void
listeners_init(listener_accept_fn fn)
{
	accept_fn = fn;
}

void
listener_format_addr(const struct sockaddr *sa, char *buf, size_t len)
{
	char host[INET6_ADDRSTRLEN] = "?";

	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)(const void *)sa;
		/* inet_ntop + snprintf cost 5% of a connection-per-request */
		format_ipv4_port(&in->sin_addr, ntohs(in->sin_port), buf, len);
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)(const void *)sa;
		inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof(host));
		snprintf(buf, len, "[%s]:%u", host, ntohs(in6->sin6_port));
	} else {
		snprintf(buf, len, "unix");
	}
}

static int
peer_allowed(const struct lslot *sl, int fd)
{
	const struct lsettings *set = &sl->set;
	struct ucred cred;
	socklen_t len = sizeof(cred);

	if (set->n_allowed_uids == 0)
		return 1;
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0)
		return 0;
	for (size_t i = 0; i < set->n_allowed_uids; i++)
		if (set->allowed_uids[i] == cred.uid)
			return 1;
	log_warnx("listener %s: refused a connection from uid %u (not in allowed_uids)",
	    sl->l->address, (unsigned)cred.uid);
	return 0;
}

/* The address a listener's socket is bound to, for the log: with port 0
 * the configuration's spelling does not say which port the kernel chose. */
static void
listener_bound_name(const struct listener *l, int fd, char *buf, size_t len)
{
	struct sockaddr_storage ss;
	socklen_t sslen = sizeof(ss);

	if (l->unix_path != NULL)
		snprintf(buf, len, "unix:%s", l->unix_path);
	else if (getsockname(fd, (struct sockaddr *)&ss, &sslen) == 0)
		listener_format_addr((struct sockaddr *)&ss, buf, len);
	else
		snprintf(buf, len, "%s", l->address);
}

static void
listener_accept(struct lslot *sl, int fd, const struct sockaddr *sa)
{
	char peer[80];

	loop_note_event();
	if (!peer_allowed(sl, fd)) {
		close(fd);
		return;
	}
	if (sl->l->unix_path != NULL) {
		snprintf(peer, sizeof(peer), "unix");
	} else {
		listener_format_addr(sa, peer, sizeof(peer));
	}
	accept_fn(sl->w, fd, peer, sl->set.mapping);
}

/*
 * One connection per report from epoll, as nginx accepts by default
 * (multi_accept off), where libevent's evconnlistener accepts until the
 * queue is empty: the socket stays readable while more connections wait,
 * and the accept that would find the queue empty (one per connection when
 * clients come one at a time) is never made. A burst is accepted one per
 * loop pass, between the other connections' events.
 */
static void
listener_readable(evutil_socket_t lfd, short what, void *arg)
{
	struct lslot *sl = arg;
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	struct timeval retry = { 0, 100000 };
	char bound[80];
	int fd, err;

	(void)what;
	fd = accept4(lfd, (struct sockaddr *)&ss, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (fd >= 0) {
		listener_accept(sl, fd, (struct sockaddr *)&ss);
		return;
	}
	if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR || errno == ECONNABORTED)
		return;
	/* out of descriptors or memory: pause this listener briefly instead
	 * of spinning on a queue it cannot empty */
	err = errno;
	listener_bound_name(sl->l, sl->fd, bound, sizeof(bound));
	log_warnx("accept on %s: %s", bound, strerror(err));
	event_del(sl->ev);
	evtimer_add(sl->resume, &retry);
}

static void
listener_resume(evutil_socket_t fd, short what, void *arg)
{
	struct lslot *sl = arg;

	(void)fd;
	(void)what;
	event_add(sl->ev, NULL);
}

int
listener_unix_perms(const struct listen_spec *spec, char *err, size_t errlen)
{
	if (spec->has_mode && chmod(spec->unix_path, spec->mode) < 0) {
		snprintf(err, errlen, "chmod %s: %s", spec->unix_path, strerror(errno));
		return -1;
	}
	if (spec->group != NULL) {
		struct group *gr = getgrnam(spec->group);
		if (gr == NULL || chown(spec->unix_path, (uid_t)-1, gr->gr_gid) < 0) {
			snprintf(err, errlen, "cannot give %s to group %s", spec->unix_path,
			    spec->group);
			return -1;
		}
	}
	return 0;
}

/*
 * Options every accepted TCP socket inherits from its listener, so they
 * cost no system call per connection:
 * - TCP_NODELAY: a response goes out as soon as it is written;
 * - TCP_QUICKACK off (delayed-ACK mode; listen() resets it, so after):
 *   the request is acknowledged by the response instead of by a pure ACK
 *   of its own, one segment less per new connection (HAProxy's
 *   tcp-smart-accept). A response slower than the delayed-ACK timer
 *   (40 ms) gets its ACK from the timer, as before.
 * Not TCP_DEFER_ACCEPT (nginx's "deferred"), though it saved a read, two
 * epoll_ctl and a wake-up per connection: a flood of silent connections
 * overflowed into SYN cookies, and one whose deferred handshake met a full
 * accept queue was dropped by the kernel while its client took it for
 * established (in t_96_idle, under load, mtlsd never saw some of the
 * 10,000 connections its client held).
 */
static void
tcp_accept_options(int fd)
{
	int one = 1, zero = 0;

	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	(void)setsockopt(fd, IPPROTO_TCP, TCP_QUICKACK, &zero, sizeof(zero));
}

/* A listening socket for spec bound to sa (spec's address, or the one the
 * kernel gave the first socket of a SO_REUSEPORT group). */
static int
open_socket(const struct listen_spec *spec, const struct sockaddr *sa, socklen_t salen,
    int reuseport, char *err, size_t errlen)
{
	int fd, one = 1;

	fd = socket(spec->ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		goto fail;
	if (spec->is_unix) {
		(void)unlink(spec->unix_path);  /* stale socket of a previous run */
	} else {
		(void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (reuseport && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) < 0)
			goto fail;
		if (spec->ss.ss_family == AF_INET6)
			(void)setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	}
	if (bind(fd, sa, salen) < 0)
		goto fail;
	if (spec->is_unix && listener_unix_perms(spec, err, errlen) < 0) {
		close(fd);
		(void)unlink(spec->unix_path);
		return -1;
	}
	/* nginx's default accept queue; the kernel caps it at somaxconn */
	if (listen(fd, LISTEN_BACKLOG) < 0)
		goto fail;
	if (!spec->is_unix)
		tcp_accept_options(fd);
	return fd;
fail:
	snprintf(err, errlen, "cannot listen on %s: %s", spec->address, strerror(errno));
	if (fd >= 0)
		close(fd);
	if (spec->is_unix)
		(void)unlink(spec->unix_path);
	return -1;
}

int
listener_open_socket(const struct listen_spec *spec, char *err, size_t errlen)
{
	return open_socket(spec, (const struct sockaddr *)&spec->ss, spec->sslen, 0, err,
	    errlen);
}

/*
 * One socket per worker: with one worker, spec's own; with more, TCP gets
 * a SO_REUSEPORT group bound to the address the first one got (port 0 is
 * resolved once), so the kernel spreads connections over the workers, and
 * a unix socket is shared (a dup each). 0, or -1 with err set.
 */
static int
open_slots(struct listener *l, const struct listen_spec *spec, char *err, size_t errlen)
{
	unsigned n = l->n_slots;
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);

	if ((l->slots[0].fd = open_socket(spec, (const struct sockaddr *)&spec->ss, spec->sslen,
	    n > 1 && !spec->is_unix, err, errlen)) < 0)
		return -1;
	if (n > 1 && !spec->is_unix &&
	    getsockname(l->slots[0].fd, (struct sockaddr *)&ss, &len) < 0) {
		snprintf(err, errlen, "cannot listen on %s: %s", spec->address, strerror(errno));
		return -1;
	}
	for (unsigned i = 1; i < n; i++) {
		int fd = spec->is_unix ? fcntl(l->slots[0].fd, F_DUPFD_CLOEXEC, 0) :
		    open_socket(spec, (const struct sockaddr *)&ss, len, 1, err, errlen);
		if (fd < 0) {
			if (spec->is_unix)
				snprintf(err, errlen, "cannot listen on %s: %s", spec->address,
				    strerror(errno));
			return -1;
		}
		l->slots[i].fd = fd;
	}
	return 0;
}

/* A listener's identity across reloads is its address; port 0 (the kernel
 * picks, as tests do) is not an identity, so it is qualified by its owner. */
static void
listener_key(const struct listen_spec *spec, const char *mapping, size_t idx,
    char *key, size_t len)
{
	const struct sockaddr_in *in = (const struct sockaddr_in *)(const void *)&spec->ss;
	int port0 = !spec->is_unix && in->sin_port == 0;     /* same offset for v6 */

	if (!port0)
		snprintf(key, len, "%s", spec->address);
	else if (mapping != NULL)
		snprintf(key, len, "%s|mapping %s", spec->address, mapping);
	else
		snprintf(key, len, "%s|proxy %zu", spec->address, idx);
}

static struct listener *
listener_find(const char *key)
{
	struct listener *l;

	LIST_FOREACH(l, &listeners, link)
		if (strcmp(l->key, key) == 0)
			return l;
	return NULL;
}

static void
lsettings_clear(struct lsettings *set)
{
	free(set->mapping);
	free(set->allowed_uids);
	memset(set, 0, sizeof(*set));
}

static void
lsettings_set(struct lsettings *set, const char *mapping, const uid_t *uids, size_t n)
{
	lsettings_clear(set);
	set->mapping = mapping ? xstrdup(mapping) : NULL;
	set->n_allowed_uids = n;
	if (n > 0) {
		set->allowed_uids = xcalloc(n, sizeof(uid_t));
		memcpy(set->allowed_uids, uids, n * sizeof(uid_t));
	}
}

/* Stop accepting on a slot and close its socket (in its worker's thread,
 * or before the worker runs). */
static void
slot_close(struct lslot *sl)
{
	if (sl->ev != NULL)
		event_free(sl->ev);
	if (sl->fd >= 0)
		close(sl->fd);
	sl->ev = NULL;
	sl->fd = -1;
	if (sl->resume != NULL)
		event_free(sl->resume);
	sl->resume = NULL;
	lsettings_clear(&sl->set);
}

static void
listener_free(struct listener *l)
{
	LIST_REMOVE(l, link);
	for (unsigned i = 0; i < l->n_slots; i++)
		slot_close(&l->slots[i]);
	if (l->unix_path != NULL)
		(void)unlink(l->unix_path);
	free(l->slots);
	free(l->address);
	free(l->key);
	free(l->unix_path);
	lsettings_clear(&l->set);
	free(l);
}

/* Adopt spec's settings (mapping name, allowed uids) on a listener. */
static void
listener_update(struct listener *l, const struct listen_spec *spec, const char *mapping)
{
	lsettings_set(&l->set, mapping, spec->allowed_uids, spec->n_allowed_uids);
	l->keep = 1;
}

static int
prepare_one(const struct listen_spec *spec, const char *mapping, size_t idx, char *err,
    size_t errlen)
{
	char key[512];
	struct listener *l;

	listener_key(spec, mapping, idx, key, sizeof(key));
	l = listener_find(key);
	if (l != NULL) {
		l->keep = 1;
		return 0;
	}
	l = xcalloc(1, sizeof(*l));
	l->address = xstrdup(spec->address);
	l->key = xstrdup(key);
	l->unix_path = spec->is_unix ? xstrdup(spec->unix_path) : NULL;
	l->n_slots = workers_count();
	l->slots = xcalloc(l->n_slots, sizeof(*l->slots));
	for (unsigned i = 0; i < l->n_slots; i++) {
		l->slots[i].l = l;
		l->slots[i].w = workers_get(i);
		l->slots[i].fd = -1;
	}
	l->prepared = 1;
	l->keep = 1;
	LIST_INSERT_HEAD(&listeners, l, link);
	return open_slots(l, spec, err, errlen);
}

int
listeners_prepare(const struct config *cfg, char *err, size_t errlen)
{
	struct listener *l;

	LIST_FOREACH(l, &listeners, link)
		l->keep = 0;
	for (size_t i = 0; i < cfg->n_proxy_listen; i++)
		if (prepare_one(&cfg->proxy_listen[i], NULL, i, err, errlen) < 0)
			goto fail;
	for (size_t i = 0; i < cfg->n_mappings; i++)
		if (cfg->mappings[i].listen != NULL && prepare_one(cfg->mappings[i].listen,
		    cfg->mappings[i].name, 0, err, errlen) < 0)
			goto fail;
	return 0;
fail:
	listeners_abort();
	return -1;
}

void
listeners_abort(void)
{
	struct listener *l, *tmp;

	LIST_FOREACH_SAFE(l, &listeners, link, tmp)
		if (l->prepared)
			listener_free(l);
}

static void
slot_start(struct lslot *sl)
{
	sl->ev = event_new(sl->w->base, sl->fd, EV_READ | EV_PERSIST, listener_readable, sl);
	sl->resume = evtimer_new(sl->w->base, listener_resume, sl);
	if (sl->ev == NULL || sl->resume == NULL || event_add(sl->ev, NULL) < 0)
		fatalx("cannot watch listener %s", sl->l->address);
}

void
listeners_sync(struct worker *w)
{
	struct listener *l;

	LIST_FOREACH(l, &listeners, link) {
		struct lslot *sl = &l->slots[w->id];
		if (!l->keep) {
			slot_close(sl);
			continue;
		}
		lsettings_set(&sl->set, l->set.mapping, l->set.allowed_uids,
		    l->set.n_allowed_uids);
		if (sl->ev == NULL && sl->fd >= 0)
			slot_start(sl);
	}
}

static void
listener_log_start(const struct listener *l)
{
	char bound[80];

	listener_bound_name(l, l->slots[0].fd, bound, sizeof(bound));
	if (l->set.mapping != NULL)
		log_info("listening on %s (mapping %s)", bound, l->set.mapping);
	else
		log_info("listening on %s (proxy)", bound);
}

void
listeners_commit(const struct config *cfg)
{
	char key[512];

	for (size_t i = 0; i < cfg->n_proxy_listen; i++) {
		listener_key(&cfg->proxy_listen[i], NULL, i, key, sizeof(key));
		listener_update(listener_find(key), &cfg->proxy_listen[i], NULL);
	}
	for (size_t i = 0; i < cfg->n_mappings; i++) {
		const struct mapping *m = &cfg->mappings[i];
		if (m->listen == NULL)
			continue;
		listener_key(m->listen, m->name, 0, key, sizeof(key));
		listener_update(listener_find(key), m->listen, m->name);
	}
}

void
listeners_finish(void)
{
	struct listener *l, *tmp;

	LIST_FOREACH_SAFE(l, &listeners, link, tmp) {
		if (!l->keep) {
			log_info("closing listener %s", l->address);
			listener_free(l);
		} else if (l->prepared) {
			l->prepared = 0;
			listener_log_start(l);
		}
	}
}

static void
sync_one(struct worker *w, void *arg)
{
	(void)arg;
	listeners_sync(w);
}

void
listeners_close_all(void)
{
	struct listener *l;

	LIST_FOREACH(l, &listeners, link)
		l->keep = 0;
	workers_call_all(sync_one, NULL);
	while ((l = LIST_FIRST(&listeners)) != NULL)
		listener_free(l);
}
