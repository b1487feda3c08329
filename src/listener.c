/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "autoconf.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/event.h>
#include <event2/listener.h>
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
#include "runtime.h"
#include "util.h"

#ifndef LIST_FOREACH_SAFE
#define LIST_FOREACH_SAFE(var, head, field, tvar)                        \
	for ((var) = LIST_FIRST((head));                                 \
	    (var) && ((tvar) = LIST_NEXT((var), field), 1); (var) = (tvar))
#endif

struct listener {
	LIST_ENTRY(listener) link;
	char *address;                  /* config spelling */
	char *key;                      /* identity across reloads */
	char *mapping;                  /* NULL: proxy port */
	char *unix_path;
	uid_t *allowed_uids;
	size_t n_allowed_uids;
	int fd;
	int prepared;                   /* opened by the pending reload */
	int keep;                       /* still in the pending config */
	struct evconnlistener *evl;
	struct worker *w;
	struct event *resume;           /* re-enable after EMFILE */
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
peer_allowed(const struct listener *l, int fd)
{
	struct ucred cred;
	socklen_t len = sizeof(cred);

	if (l->n_allowed_uids == 0)
		return 1;
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0)
		return 0;
	for (size_t i = 0; i < l->n_allowed_uids; i++)
		if (l->allowed_uids[i] == cred.uid)
			return 1;
	log_warnx("listener %s: refused a connection from uid %u (not in allowed_uids)",
	    l->address, (unsigned)cred.uid);
	return 0;
}

static void
listener_accept(struct evconnlistener *evl, evutil_socket_t fd, struct sockaddr *sa,
    int salen, void *arg)
{
	struct listener *l = arg;
	char peer[80];
	int one = 1;

	(void)evl;
	(void)salen;
	if (!peer_allowed(l, fd)) {
		close(fd);
		return;
	}
	if (l->unix_path != NULL) {
		snprintf(peer, sizeof(peer), "unix");
	} else {
		listener_format_addr(sa, peer, sizeof(peer));
		(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	}
	accept_fn(l->w, fd, peer, l->mapping);
}

static void
listener_resume(evutil_socket_t fd, short what, void *arg)
{
	struct listener *l = arg;

	(void)fd;
	(void)what;
	evconnlistener_enable(l->evl);
}

/* Out of descriptors: pause this listener briefly instead of spinning. */
static void
listener_error(struct evconnlistener *evl, void *arg)
{
	struct listener *l = arg;
	struct timeval tv = { 0, 100000 };

	log_warn("accept on %s", l->address);
	evconnlistener_disable(evl);
	evtimer_add(l->resume, &tv);
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

int
listener_open_socket(const struct listen_spec *spec, char *err, size_t errlen)
{
	int fd, one = 1;

	fd = socket(spec->ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		goto fail;
	if (spec->is_unix) {
		(void)unlink(spec->unix_path);  /* stale socket of a previous run */
	} else {
		(void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (spec->ss.ss_family == AF_INET6)
			(void)setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	}
	if (bind(fd, (const struct sockaddr *)&spec->ss, spec->sslen) < 0)
		goto fail;
	if (spec->is_unix && listener_unix_perms(spec, err, errlen) < 0) {
		close(fd);
		(void)unlink(spec->unix_path);
		return -1;
	}
	if (listen(fd, 511) < 0)
		goto fail;
	return fd;
fail:
	snprintf(err, errlen, "cannot listen on %s: %s", spec->address, strerror(errno));
	if (fd >= 0)
		close(fd);
	if (spec->is_unix)
		(void)unlink(spec->unix_path);
	return -1;
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
listener_free(struct listener *l)
{
	LIST_REMOVE(l, link);
	if (l->evl != NULL)
		evconnlistener_free(l->evl);    /* closes fd */
	else if (l->fd >= 0)
		close(l->fd);
	if (l->unix_path != NULL)
		(void)unlink(l->unix_path);
	if (l->resume != NULL)
		event_free(l->resume);
	free(l->address);
	free(l->key);
	free(l->mapping);
	free(l->unix_path);
	free(l->allowed_uids);
	free(l);
}

/* Adopt spec's settings (mapping name, allowed uids) on a listener. */
static void
listener_update(struct listener *l, const struct listen_spec *spec, const char *mapping)
{
	free(l->mapping);
	l->mapping = mapping ? xstrdup(mapping) : NULL;
	free(l->allowed_uids);
	l->allowed_uids = NULL;
	l->n_allowed_uids = spec->n_allowed_uids;
	if (spec->n_allowed_uids > 0) {
		l->allowed_uids = xcalloc(spec->n_allowed_uids, sizeof(uid_t));
		memcpy(l->allowed_uids, spec->allowed_uids, spec->n_allowed_uids * sizeof(uid_t));
	}
	l->keep = 1;
}

static int
prepare_one(struct worker *w, const struct listen_spec *spec, const char *mapping,
    size_t idx, char *err, size_t errlen)
{
	char key[512];
	struct listener *l;
	int fd;

	listener_key(spec, mapping, idx, key, sizeof(key));
	l = listener_find(key);
	if (l != NULL) {
		l->keep = 1;
		return 0;
	}
	if ((fd = listener_open_socket(spec, err, errlen)) < 0)
		return -1;
	l = xcalloc(1, sizeof(*l));
	l->address = xstrdup(spec->address);
	l->key = xstrdup(key);
	l->unix_path = spec->is_unix ? xstrdup(spec->unix_path) : NULL;
	l->fd = fd;
	l->w = w;
	l->prepared = 1;
	l->keep = 1;
	LIST_INSERT_HEAD(&listeners, l, link);
	return 0;
}

int
listeners_prepare(struct worker *w, const struct config *cfg, char *err, size_t errlen)
{
	struct listener *l;

	LIST_FOREACH(l, &listeners, link)
		l->keep = 0;
	for (size_t i = 0; i < cfg->n_proxy_listen; i++)
		if (prepare_one(w, &cfg->proxy_listen[i], NULL, i, err, errlen) < 0)
			goto fail;
	for (size_t i = 0; i < cfg->n_mappings; i++)
		if (cfg->mappings[i].listen != NULL && prepare_one(w,
		    cfg->mappings[i].listen, cfg->mappings[i].name, 0, err, errlen) < 0)
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
listener_start(struct listener *l)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	char bound[80];

	l->evl = evconnlistener_new(l->w->base, listener_accept, l,
	    LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, -1, l->fd);
	if (l->evl == NULL)
		fatalx("cannot watch listener %s", l->address);
	evconnlistener_set_error_cb(l->evl, listener_error);
	l->resume = evtimer_new(l->w->base, listener_resume, l);
	l->prepared = 0;
	if (l->unix_path != NULL)
		snprintf(bound, sizeof(bound), "unix:%s", l->unix_path);
	else if (getsockname(l->fd, (struct sockaddr *)&ss, &len) == 0)
		listener_format_addr((struct sockaddr *)&ss, bound, sizeof(bound));
	else
		snprintf(bound, sizeof(bound), "%s", l->address);
	if (l->mapping != NULL)
		log_info("listening on %s (mapping %s)", bound, l->mapping);
	else
		log_info("listening on %s (proxy)", bound);
}

void
listeners_commit(struct worker *w, const struct config *cfg)
{
	struct listener *l, *tmp;

	(void)w;
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
	LIST_FOREACH_SAFE(l, &listeners, link, tmp) {
		if (!l->keep) {
			log_info("closing listener %s", l->address);
			listener_free(l);
		} else if (l->prepared) {
			listener_start(l);
		}
	}
}

void
listeners_close_all(void)
{
	struct listener *l;

	while ((l = LIST_FIRST(&listeners)) != NULL)
		listener_free(l);
}
