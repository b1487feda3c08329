/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * A small blocking HTTP/1.1 client for the admin endpoint: one request per
 * connection ("Connection: close"), the answer read to EOF and bounded. The
 * endpoint refuses requests with an Origin header or a foreign Host, so we
 * send neither (Host: localhost).
 */
#include "autoconf.h"

#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "ctl_admin.h"
#include "ctl_util.h"
#include "json.h"
#include "util.h"

#define ADMIN_DEFAULT       "unix:/run/mtlsd/admin.sock"
#define REPLY_MAX           (16 * 1024 * 1024)
#define IO_TIMEOUT_MS       30000
#define RELOAD_WAIT_MS      60000
#define RELOAD_POLL_MS      100

/* The address to ask: --admin, else admin.listen, else the default. */
static int
admin_spec(struct ctl *ctl, struct listen_spec *spec, char *err, size_t errlen)
{
	const struct config *cfg;
	const char *addr = ctl->admin;
	char why[256];

	if (addr == NULL) {
		if ((cfg = ctl_config(ctl)) == NULL)
			addr = ADMIN_DEFAULT;   /* the daemon may still run an older one */
		else if (cfg->admin_listen == NULL) {
			snprintf(err, errlen, "admin.listen is not set in %s; mtlsctl needs "
			    "the admin endpoint for this (or give --admin ADDRESS)",
			    ctl->config_path);
			return -1;
		} else
			addr = cfg->admin_listen->address;
	}
	memset(spec, 0, sizeof(*spec));
	if (listen_spec_parse(addr, spec, why, sizeof(why)) < 0) {
		snprintf(err, errlen, "admin address %s: %s", addr, why);
		return -1;
	}
	return 0;
}

static int
spec_port(const struct listen_spec *spec)
{
	const struct sockaddr_storage *ss = &spec->ss;

	if (ss->ss_family == AF_INET)
		return ntohs(((const struct sockaddr_in *)(const void *)ss)->sin_port);
	return ntohs(((const struct sockaddr_in6 *)(const void *)ss)->sin6_port);
}

static int
wait_fd(int fd, short events, int ms)
{
	struct pollfd p = {fd, events, 0};
	int r;

	while ((r = poll(&p, 1, ms)) < 0 && errno == EINTR)
		;
	if (r == 0)
		errno = ETIMEDOUT;
	return r > 0 ? 0 : -1;
}

static int
admin_connect(const struct listen_spec *spec, char *err, size_t errlen)
{
	struct sockaddr_un sun;
	const struct sockaddr *sa = (const struct sockaddr *)&spec->ss;
	socklen_t salen = spec->sslen;
	int fd, e;
	socklen_t elen = sizeof(e);

	if (spec->is_unix) {
		memset(&sun, 0, sizeof(sun));
		sun.sun_family = AF_UNIX;
		snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", spec->unix_path);
		sa = (const struct sockaddr *)&sun;
		salen = sizeof(sun);
	} else if (spec_port(spec) == 0) {
		snprintf(err, errlen, "admin.listen %s has port 0 (chosen at start); give "
		    "--admin with the port mtlsd logged", spec->address);
		return -1;
	}
	if ((fd = socket(sa->sa_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0)) < 0)
		goto fail;
	if (connect(fd, sa, salen) < 0) {
		if (errno != EINPROGRESS || wait_fd(fd, POLLOUT, IO_TIMEOUT_MS) < 0)
			goto fail;
		if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &elen) < 0 || e != 0) {
			errno = e;
			goto fail;
		}
	}
	return fd;
fail:
	e = errno;
	snprintf(err, errlen, "cannot connect to mtlsd's admin endpoint %s: %s%s",
	    spec->address, strerror(e),
	    e == ENOENT || e == ECONNREFUSED ? " (is mtlsd running?)" :
	    e == EACCES ? " (run as root or as a member of the socket's group)" : "");
	if (fd >= 0)
		close(fd);
	return -1;
}

static int
send_all(int fd, const char *buf, size_t len)
{
	while (len > 0) {
		ssize_t n = send(fd, buf, len, MSG_NOSIGNAL);
		if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
			if (wait_fd(fd, POLLOUT, IO_TIMEOUT_MS) < 0)
				return -1;
			continue;
		}
		if (n < 0)
			return -1;
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Everything until EOF (the request said Connection: close). */
static char *
recv_all(int fd, size_t *len)
{
	size_t cap = 16384, n = 0;
	char *buf = xmalloc(cap + 1);

	for (;;) {
		ssize_t r;
		if (n == cap) {
			if (cap >= REPLY_MAX)
				break;
			cap *= 2;
			buf = xrealloc(buf, cap + 1);
		}
		r = recv(fd, buf + n, cap - n, 0);
		if (r > 0) {
			n += (size_t)r;
			continue;
		}
		if (r == 0)
			break;
		if ((errno == EAGAIN || errno == EINTR) && wait_fd(fd, POLLIN, IO_TIMEOUT_MS) == 0)
			continue;
		free(buf);
		return NULL;
	}
	buf[n] = '\0';
	*len = n;
	return buf;
}

/* Status line, then the body after the blank line (Content-Length bounds
 * it when given; evhttp never chunks these replies). */
static int
parse_reply(char *raw, size_t len, struct ctl_reply *r)
{
	char *end = strstr(raw, "\r\n\r\n"), *cl;
	size_t body_off, blen;
	int status;

	if (sscanf(raw, "HTTP/1.%*1d %3d", &status) != 1 || end == NULL)
		return -1;
	body_off = (size_t)(end - raw) + 4;
	blen = len - body_off;
	*end = '\0';
	if ((cl = strcasestr(raw, "\r\ncontent-length:")) != NULL) {
		unsigned long long v = strtoull(cl + 17, NULL, 10);
		if (v < blen)
			blen = (size_t)v;
	}
	r->status = status;
	r->body = xmalloc(blen + 1);
	memcpy(r->body, raw + body_off, blen);
	r->body[blen] = '\0';
	r->len = blen;
	return 0;
}

int
ctl_admin_request(struct ctl *ctl, const char *method, const char *path, struct ctl_reply *r,
    char *err, size_t errlen)
{
	struct listen_spec spec;
	char *req, *raw = NULL;
	size_t len = 0;
	int fd, ret = -1;

	memset(r, 0, sizeof(*r));
	if (admin_spec(ctl, &spec, err, errlen) < 0)
		return -1;
	if ((fd = admin_connect(&spec, err, errlen)) < 0) {
		listen_spec_clear(&spec);
		return -1;
	}
	req = xasprintf("%s %s HTTP/1.1\r\nHost: localhost\r\nUser-Agent: mtlsctl/%s\r\n"
	    "Content-Length: 0\r\nConnection: close\r\n\r\n", method, path, PACKAGE_VERSION);
	if (send_all(fd, req, strlen(req)) < 0 || (raw = recv_all(fd, &len)) == NULL)
		snprintf(err, errlen, "admin endpoint %s: %s", spec.address, strerror(errno));
	else if (parse_reply(raw, len, r) < 0)
		snprintf(err, errlen, "admin endpoint %s: not an HTTP answer", spec.address);
	else
		ret = 0;
	free(req);
	free(raw);
	close(fd);
	listen_spec_clear(&spec);
	return ret;
}

void
ctl_reply_free(struct ctl_reply *r)
{
	free(r->body);
	memset(r, 0, sizeof(*r));
}

/* The "error" of a JSON error reply, else the start of the body. */
static void
reply_error(const struct ctl_reply *r, const char *what, char *err, size_t errlen)
{
	char why[160];
	struct json *j = json_parse(r->body, r->len, why, sizeof(why));
	const char *msg = j != NULL ? json_string(j, json_get(j, json_root(j), "error")) : NULL;

	snprintf(err, errlen, "%s: HTTP %d%s%.200s", what, r->status, msg || r->len ? ": " : "",
	    msg != NULL ? msg : r->body);
	json_free(j);
}

struct json *
ctl_admin_status(struct ctl *ctl, char *err, size_t errlen)
{
	struct ctl_reply r;
	struct json *j = NULL;
	char why[200];

	if (ctl_admin_request(ctl, "GET", "/status", &r, err, errlen) < 0)
		return NULL;
	if (r.status != 200)
		reply_error(&r, "GET /status", err, errlen);
	else if ((j = json_parse(r.body, r.len, why, sizeof(why))) == NULL ||
	    !json_is_object(j, json_root(j))) {
		snprintf(err, errlen, "GET /status: not a JSON object (%s)", j ? "other" : why);
		json_free(j);
		j = NULL;
	}
	ctl_reply_free(&r);
	return j;
}

/* --- reload --------------------------------------------------------------- */

static const char reload_usage[] =
    "usage: mtlsctl [-c FILE] reload\n"
    "Ask the running mtlsd to reload (POST /reload), wait for it to finish and\n"
    "print the result. Exit 0 when it applied, 1 when it failed or mtlsd\n"
    "cannot be reached.\n";

static long long
jint(struct json *j, const char *path)
{
	long long v = -1;

	(void)json_int(j, json_path(j, json_root(j), path), &v);
	return v;
}

static long long
reload_count(struct json *j)
{
	return jint(j, "reloads.ok") + jint(j, "reloads.failed");
}

static void
sleep_ms(int ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

static int
reload_print(struct json *j)
{
	int ok = 0, last = json_path(j, json_root(j), "last_reload.errors");
	size_t n = json_array_len(j, last);
	long long gen = jint(j, "generation");
	long long nmap = (long long)json_array_len(j, json_get(j, json_root(j), "mappings"));

	(void)json_bool(j, json_path(j, json_root(j), "last_reload.ok"), &ok);
	if (ok && n == 0)
		printf("reload: generation %lld applied (%lld mappings)\n", gen, nmap);
	else if (ok)
		printf("reload: generation %lld applied (%lld mappings) with %zu problem(s) "
		    "kept out:\n", gen, nmap, n);
	else
		printf("reload failed: %zu error(s); still serving generation %lld:\n", n, gen);
	for (size_t i = 0; i < n; i++) {
		const char *e = json_string(j, json_array_at(j, last, i));
		printf("  %s\n", e != NULL ? e : "?");
	}
	return ok ? CTL_OK : CTL_FAIL;
}

int
ctl_admin_reload(struct ctl *ctl, int argc, char **argv)
{
	struct json *j;
	struct ctl_reply r;
	char err[512], **pos;
	size_t npos;
	long long before;
	int rc, waited = 0;

	if ((rc = ctl_parse(argc, argv, NULL, reload_usage, 0, 0, &pos, &npos)) >= 0)
		return rc;
	if ((j = ctl_admin_status(ctl, err, sizeof(err))) == NULL) {
		ctl_err("%s", err);
		return CTL_FAIL;
	}
	before = reload_count(j);
	json_free(j);
	if (ctl_admin_request(ctl, "POST", "/reload", &r, err, sizeof(err)) < 0) {
		ctl_err("%s", err);
		return CTL_FAIL;
	}
	if (r.status != 202) {
		reply_error(&r, "POST /reload", err, sizeof(err));
		ctl_err("%s", err);
		ctl_reply_free(&r);
		return CTL_FAIL;
	}
	ctl_reply_free(&r);
	/* the reload runs after the answer; its count tells when it is done */
	while ((j = ctl_admin_status(ctl, err, sizeof(err))) != NULL &&
	    reload_count(j) <= before && waited < RELOAD_WAIT_MS) {
		json_free(j);
		sleep_ms(RELOAD_POLL_MS);
		waited += RELOAD_POLL_MS;
	}
	if (j == NULL) {
		ctl_err("%s", err);
		return CTL_FAIL;
	}
	if (reload_count(j) <= before) {
		json_free(j);
		ctl_err("the reload did not finish within %d s", RELOAD_WAIT_MS / 1000);
		return CTL_FAIL;
	}
	rc = reload_print(j);
	json_free(j);
	return rc;
}
