/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The test runs in stages (resolve, connect, TLS, HTTP); the first one that
 * fails names the verdict. With TLS 1.3 a server that rejects our
 * certificate says so after our side of the handshake is done, so its alert
 * arrives on the first read: the HTTP stage reports TLS errors the same way.
 * A server may also accept the handshake and answer with an HTTP error
 * about the certificate (nginx's 400 "SSL certificate error", 495, 496).
 */
#include "autoconf.h"

#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "certstore.h"
#include "config.h"
#include "ctl_admin.h"
#include "ctl_test.h"
#include "ctl_util.h"
#include "json.h"
#include "log.h"
#include "router.h"
#include "tls.h"
#include "util.h"
#include "x509.h"

#define RESPONSE_MAX    16384
#define BODY_PEEK       1024

struct trial {
	const struct mapping *m;
	const struct cert_material *cm;
	const char *which;              /* "current" or "pending" */
	char *path;                     /* request target */
	char addr[80];                  /* the address connected to */
	const char *stage;              /* where it failed; NULL: it worked */
	char error[512];                /* the raw reason */
	char explain[1024];             /* in plain words */
	const char *tls_version;
	int http_status;
	char http_reason[64];
	const char *http_hint;          /* what an error page says, or NULL */
};

static void fail(struct trial *t, const char *stage, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
fail(struct trial *t, const char *stage, const char *fmt, ...)
{
	va_list ap;

	t->stage = stage;
	va_start(ap, fmt);
	vsnprintf(t->error, sizeof(t->error), fmt, ap);
	va_end(ap);
}

static int
remaining(uint64_t deadline)
{
	uint64_t now = now_ms();

	return now >= deadline ? 0 : (int)(deadline - now);
}

static int
wait_io(int fd, short ev, uint64_t deadline)
{
	struct pollfd p = {fd, ev, 0};
	int r;

	while ((r = poll(&p, 1, remaining(deadline))) < 0 && errno == EINTR)
		;
	return r > 0 ? 0 : -1;
}

/* --- resolving what to test ------------------------------------------------- */

/* "https://host[:port]/path": host, explicit port (0 if none), path. */
static int
url_split(const char *url, char *host, size_t hlen, uint16_t *port, const char **path)
{
	const char *p = strstr(url, "://"), *end, *colon;
	size_t n;

	if (p == NULL)
		return -1;
	p += 3;
	end = p + strcspn(p, "/?#");
	*path = *end != '\0' ? end : "/";
	*port = 0;
	if (*p == '[') {
		const char *rb = memchr(p, ']', (size_t)(end - p));
		if (rb == NULL)
			return -1;
		n = (size_t)(rb - p - 1);
		p++;
		colon = rb + 1 < end && rb[1] == ':' ? rb + 1 : NULL;
	} else {
		colon = memchr(p, ':', (size_t)(end - p));
		n = (size_t)((colon ? colon : end) - p);
	}
	if (n == 0 || n >= hlen)
		return -1;
	memcpy(host, p, n);
	host[n] = '\0';
	if (colon != NULL) {
		char *e;
		unsigned long v = strtoul(colon + 1, &e, 10);
		if (e != end || v == 0 || v > 65535)
			return -1;
		*port = (uint16_t)v;
	}
	return 0;
}

static const struct mapping *
resolve_mapping(const struct config *cfg, const char *arg, char **path)
{
	const struct mapping *m = config_find_mapping(cfg, arg);
	char host[256], why[300];
	const char *p;
	uint16_t port;
	struct router *r;

	if (m != NULL) {
		*path = xstrdup(m->path_prefix);
		return m;
	}
	if (strstr(arg, "://") == NULL) {
		ctl_err("no mapping named '%s' (give a mapping name or a URL)", arg);
		return NULL;
	}
	if (url_split(arg, host, sizeof(host), &port, &p) < 0) {
		ctl_err("%s: not a URL like https://host[:port]/path", arg);
		return NULL;
	}
	r = router_new(cfg);
	m = router_match_reason(r, host, port, p, why, sizeof(why));
	router_free(r);
	if (m == NULL)
		ctl_err("%s: %s (mtlsd would answer 403)", arg, why);
	else
		*path = xstrdup(p);
	return m;
}

/* From the running daemon: the serial the mapping presents (or its
 * pending one). NULL when it cannot be asked. */
static char *
daemon_serial(struct ctl *ctl, const char *mapping, int pending)
{
	char err[300], *serial = NULL;
	struct json *j = ctl_admin_status(ctl, err, sizeof(err));
	int maps;

	if (j == NULL)
		return NULL;
	maps = json_get(j, json_root(j), "mappings");
	for (size_t i = 0; i < json_array_len(j, maps); i++) {
		int m = json_array_at(j, maps, i);
		const char *n = json_string(j, json_get(j, m, "name"));
		const char *s = json_string(j, json_get(j, m, pending ? "pending_serial" :
		    "certificate_serial"));
		if (n != NULL && s != NULL && strcmp(n, mapping) == 0)
			serial = xstrdup(s);
	}
	json_free(j);
	return serial;
}

static const struct cert_material *
pick_pair(struct ctl *ctl, const struct certset *set, const char *mapping, int pending)
{
	char *serial = daemon_serial(ctl, mapping, pending);
	const struct cert_material *cur = ctl_set_current(ctl, set), *m = NULL;

	for (size_t i = 0; serial != NULL && i < set->n_pairs && m == NULL; i++)
		if (strcmp(set->pairs[i]->serial_hex, serial) == 0)
			m = set->pairs[i];
	free(serial);
	if (m != NULL || !pending)
		return m != NULL ? m : cur;
	/* pairs are newest first: the newest pending one */
	for (size_t i = 0; i < set->n_pairs; i++)
		if (ctl_pair_pending(set->pairs[i], cur, ctl->now))
			return set->pairs[i];
	return NULL;
}

/* --- the stages ----------------------------------------------------------------- */

static int
stage_connect(struct trial *t, uint64_t timeout_ms)
{
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res, *ai;
	char port[8], host[64], serv[8];
	uint64_t deadline = now_ms() + timeout_ms;
	int fd = -1, r, e = 0;
	socklen_t elen;

	snprintf(port, sizeof(port), "%u", (unsigned)t->m->port);
	if ((r = getaddrinfo(t->m->host, port, &hints, &res)) != 0) {
		fail(t, "resolve", "%s does not resolve: %s", t->m->host, gai_strerror(r));
		return -1;
	}
	for (ai = res; ai != NULL && fd < 0; ai = ai->ai_next) {
		if (getnameinfo(ai->ai_addr, ai->ai_addrlen, host, sizeof(host), serv,
		    sizeof(serv), NI_NUMERICHOST | NI_NUMERICSERV) == 0)
			snprintf(t->addr, sizeof(t->addr), ai->ai_family == AF_INET6 ? "[%s]:%s" :
			    "%s:%s", host, serv);
		fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (fd < 0)
			continue;
		elen = sizeof(e);
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0 ||
		    (errno == EINPROGRESS && wait_io(fd, POLLOUT, deadline) == 0 &&
		    getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &elen) == 0 && e == 0))
			break;
		e = e ? e : errno == EINPROGRESS ? ETIMEDOUT : errno;
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	if (fd < 0)
		fail(t, "connect", "cannot connect to %s (%s port %u): %s", t->addr, t->m->host,
		    (unsigned)t->m->port, strerror(e));
	return fd;
}

/* Wait for what a TLS operation wants (WANT_READ or WANT_WRITE); -1 when
 * the deadline passes first. */
static int
io_wait(int fd, enum tls_io io, uint64_t deadline)
{
	return wait_io(fd, io == TLS_IO_WANT_READ ? POLLIN : POLLOUT, deadline);
}

static int
stage_tls(struct trial *t, struct tls_conn *c, int fd, uint64_t timeout_ms)
{
	uint64_t deadline = now_ms() + timeout_ms;
	enum tls_io io;

	while ((io = tls_handshake(c)) != TLS_IO_OK) {
		if (io == TLS_IO_ERROR || io == TLS_IO_CLOSED) {
			fail(t, "tls", "%s", io == TLS_IO_CLOSED ? "connection closed by server" :
			    tls_conn_error(c));
			return -1;
		}
		if (io_wait(fd, io, deadline) < 0) {
			fail(t, "tls", "no TLS handshake within %llu ms",
			    (unsigned long long)timeout_ms);
			return -1;
		}
	}
	t->tls_version = tls_conn_version(c);
	return 0;
}

static int
send_request(struct trial *t, struct tls_conn *c, int fd, uint64_t deadline)
{
	char *req;
	size_t off = 0, len, n;
	enum tls_io io;
	int ret = 0;

	if (t->m->port == 443)
		req = xasprintf("GET %s HTTP/1.1\r\nHost: %s%s%s\r\nUser-Agent: mtlsctl/%s\r\n"
		    "Connection: close\r\n\r\n", t->path, strchr(t->m->host, ':') ? "[" : "",
		    t->m->host, strchr(t->m->host, ':') ? "]" : "", PACKAGE_VERSION);
	else
		req = xasprintf("GET %s HTTP/1.1\r\nHost: %s%s%s:%u\r\nUser-Agent: mtlsctl/%s\r\n"
		    "Connection: close\r\n\r\n", t->path, strchr(t->m->host, ':') ? "[" : "",
		    t->m->host, strchr(t->m->host, ':') ? "]" : "", (unsigned)t->m->port,
		    PACKAGE_VERSION);
	len = strlen(req);
	while (off < len) {
		io = tls_write(c, req + off, len - off, &n);
		off += n;
		if (io == TLS_IO_OK)
			continue;
		if (io == TLS_IO_ERROR || io == TLS_IO_CLOSED || io_wait(fd, io, deadline) < 0) {
			fail(t, io == TLS_IO_ERROR ? "tls" : "http", "%s", io == TLS_IO_ERROR ?
			    tls_conn_error(c) : "the server closed the connection before the request "
			    "was sent");
			ret = -1;
			break;
		}
	}
	free(req);
	return ret;
}

/* Read the response head and a little of the body (nginx names a rejected
 * certificate there). */
static int
stage_http(struct trial *t, struct tls_conn *c, int fd, uint64_t timeout_ms)
{
	uint64_t deadline = now_ms() + timeout_ms;
	char *buf = xmalloc(RESPONSE_MAX + 1), *head_end = NULL;
	size_t len = 0, n;
	enum tls_io io = TLS_IO_OK;
	int ret = -1;

	if (send_request(t, c, fd, deadline) < 0)
		goto done;
	while (len < RESPONSE_MAX && (head_end == NULL ||
	    len - (size_t)(head_end - buf) < BODY_PEEK)) {
		io = tls_read(c, buf + len, RESPONSE_MAX - len, &n);
		len += n;
		buf[len] = '\0';
		if (head_end == NULL)
			head_end = strstr(buf, "\r\n\r\n");
		if (io == TLS_IO_OK)
			continue;
		if ((io != TLS_IO_WANT_READ && io != TLS_IO_WANT_WRITE) ||
		    io_wait(fd, io, deadline) < 0)
			break;
	}
	if (head_end == NULL && io == TLS_IO_ERROR) {
		fail(t, "tls", "%s", tls_conn_error(c));
		goto done;
	}
	if (head_end == NULL || sscanf(buf, "HTTP/1.%*1d %3d %63[^\r\n]", &t->http_status,
	    t->http_reason) < 1) {
		fail(t, "http", "%s", io == TLS_IO_CLOSED ? "the server closed the connection "
		    "without an answer" : len == 0 ? "no answer within the response timeout" :
		    "the answer is not HTTP/1.x");
		goto done;
	}
	/* nginx completes the handshake whatever the client sent, and answers
	 * 400 with one of these pages (495/496 from its error_page names) */
	if (strstr(head_end, "No required SSL certificate was sent") != NULL)
		t->http_hint = "No required SSL certificate was sent";
	else if (strstr(head_end, "The SSL certificate error") != NULL)
		t->http_hint = "The SSL certificate error";
	if (t->http_status == 495 || t->http_status == 496 ||
	    (t->http_status == 400 && strstr(head_end, "SSL certificate") != NULL)) {
		fail(t, "http", "the server answered %d %s", t->http_status, t->http_reason);
		goto done;
	}
	ret = 0;
done:
	free(buf);
	return ret;
}

/* --- explaining ------------------------------------------------------------------ */

static void
alert_advice(struct trial *t, const char *alert, char *buf, size_t len)
{
	const struct cert_material *cm = t->cm;
	char nb[40], na[40];

	x509_time_format(cm->not_before, nb, sizeof(nb));
	x509_time_format(cm->not_after, na, sizeof(na));
	if (strcmp(alert, "unknown_ca") == 0)
		snprintf(buf, len, "the remote side must trust issuer %s (send them that CA "
		    "certificate; the chain we send is in certs_dir/%s)", cm->issuer,
		    t->m->certificate);
	else if (strcmp(alert, "certificate_expired") == 0)
		snprintf(buf, len, "the remote side says it is expired or not yet valid (it is "
		    "valid %s .. %s): check both clocks", nb, na);
	else if (strcmp(alert, "certificate_revoked") == 0)
		snprintf(buf, len, "its issuer revoked it: get a new certificate");
	else if (strcmp(alert, "access_denied") == 0)
		snprintf(buf, len, "the remote side verified it but does not allow %s: ask them "
		    "to authorize that subject", cm->subject);
	else if (strcmp(alert, "certificate_required") == 0)
		snprintf(buf, len, "the remote side got no certificate it could use");
	else
		snprintf(buf, len, "the remote side could not verify or use it: it must trust "
		    "issuer %s, get every intermediate (certs_dir/%s holds the chain we send) "
		    "and accept its key type and extendedKeyUsage", cm->issuer, t->m->certificate);
}

static void
explain(struct trial *t)
{
	const char *e = t->error, *a = strstr(e, "(alert ");
	char alert[64] = "", advice[600];

	if (a != NULL)
		sscanf(a, "(alert %63[^)])", alert);
	if (strstr(e, "server rejected our client certificate") != NULL) {
		alert_advice(t, alert, advice, sizeof(advice));
		snprintf(t->explain, sizeof(t->explain), "the server rejected our certificate: "
		    "alert %s — %s", alert, advice);
	} else if (strcmp(alert, "handshake_failure") == 0 || strcmp(alert,
	    "protocol_version") == 0 || strcmp(alert, "insufficient_security") == 0)
		snprintf(t->explain, sizeof(t->explain), "the server ended the handshake: alert %s "
		    "— no TLS version or cipher in common (mtlsd speaks TLS 1.2 and 1.3), or it "
		    "refused our certificate without saying why", alert);
	else if (a != NULL)
		snprintf(t->explain, sizeof(t->explain), "the server ended the handshake: alert %s",
		    alert);
	else if (strstr(e, "issuer not trusted") != NULL)
		snprintf(t->explain, sizeof(t->explain), "we do not trust the server's "
		    "certificate: its issuer is not in %s — get the CA that issued the server's "
		    "certificate and point trust.ca_file at it", t->m->trust_ca_file ?
		    t->m->trust_ca_file : "the system CA bundle (no trust.ca_file)");
	else if (strstr(e, "does not match name") != NULL)
		snprintf(t->explain, sizeof(t->explain), "the server's certificate is not for %s: "
		    "set server_name to a name it has if you connect by IP address or alias",
		    t->m->server_name);
	else if (strstr(e, "pin_sha256") != NULL)
		snprintf(t->explain, sizeof(t->explain), "the server's key changed: update "
		    "trust.pin_sha256 once you know the new key is genuine");
	else if (strstr(e, "server certificate") != NULL)
		snprintf(t->explain, sizeof(t->explain), "we do not accept the server's "
		    "certificate: %s", e);
	else if (strcmp(t->stage, "http") == 0 && (t->http_status == 496 ||
	    (t->http_hint != NULL && strstr(t->http_hint, "No required") != NULL)))
		snprintf(t->explain, sizeof(t->explain), "the server says no client certificate "
		    "reached it (HTTP %d%s%s%s): something between us and it ends TLS, or it asks "
		    "for a certificate from CAs ours is not from", t->http_status,
		    t->http_hint ? ", \"" : "", t->http_hint ? t->http_hint : "",
		    t->http_hint ? "\"" : "");
	else if (strcmp(t->stage, "http") == 0 && t->http_status != 0)
		snprintf(t->explain, sizeof(t->explain), "the server rejected our certificate "
		    "after the handshake: HTTP %d%s%s%s — the remote side must trust issuer %s "
		    "(and get every intermediate: the chain we send is in certs_dir/%s)",
		    t->http_status, t->http_hint ? " \"" : "", t->http_hint ? t->http_hint : "",
		    t->http_hint ? "\"" : "", t->cm->issuer, t->m->certificate);
	else if (strcmp(t->stage, "resolve") == 0)
		snprintf(t->explain, sizeof(t->explain), "%s — check the mapping's url and DNS", e);
	else if (strcmp(t->stage, "connect") == 0)
		snprintf(t->explain, sizeof(t->explain), "%s — the endpoint is down, or a firewall "
		    "is in the way", e);
	else if (strstr(e, "closed by server") != NULL)
		snprintf(t->explain, sizeof(t->explain), "the server closed the connection during "
		    "the handshake: it may not speak TLS on this port, or it refused us silently");
	else
		snprintf(t->explain, sizeof(t->explain), "%s", e);
}

/* --- the command ---------------------------------------------------------------- */

static const char test_usage[] =
    "usage: mtlsctl [-c FILE] test URL|MAPPING [--pending] [--json]\n"
    "Resolve the mapping (by name, or the one a request for URL goes to), make\n"
    "one mutual-TLS connection to its endpoint with its certificate (the one\n"
    "the running mtlsd presents, else the one it would choose), send GET for\n"
    "the URL's path (or the mapping's path prefix) and say whether the server\n"
    "accepted the certificate and, when not, why and who must fix what.\n"
    "  --pending  use the pending (next) certificate instead: will the remote\n"
    "             side accept it once it becomes current?\n"
    "  --json     one JSON document\n"
    "Exit 0 when the server accepted the certificate and answered, 1 when not,\n"
    "2 on wrong usage.\n";

static void
trial_run(struct ctl *ctl, struct trial *t)
{
	const struct config *cfg = ctl->cfg;
	struct tls_ctx *tctx;
	struct tls_conn *c = NULL;
	char err[300];
	int fd;

	if ((tctx = tls_ctx_new(t->m, t->cm, err, sizeof(err))) == NULL) {
		fail(t, "setup", "%s", err);
		return;
	}
	if ((fd = stage_connect(t, cfg->timeouts.connect_ms)) >= 0) {
		if ((c = tls_conn_new(tctx, fd)) == NULL)
			fail(t, "setup", "cannot start TLS");
		else if (stage_tls(t, c, fd, cfg->timeouts.handshake_ms) == 0)
			(void)stage_http(t, c, fd, cfg->timeouts.upstream_response_ms);
		if (c != NULL && t->stage == NULL)
			tls_shutdown(c);
		tls_conn_free(c);
		close(fd);
	}
	tls_ctx_free(tctx);
	if (t->stage != NULL)
		explain(t);
}

static void
print_json(const struct trial *t)
{
	struct json_writer j;

	ctl_json_init(&j);
	jw_open(&j, NULL, '{');
	jw_bool(&j, "ok", t->stage == NULL);
	jw_str(&j, "mapping", t->m->name);
	jw_str(&j, "url", t->m->url);
	jw_str(&j, "path", t->path);
	jw_str(&j, "certificate", t->m->certificate);
	jw_str(&j, "state", t->which);
	jw_str(&j, "serial", t->cm->serial_hex);
	jw_str(&j, "subject", t->cm->subject);
	jw_str(&j, "issuer", t->cm->issuer);
	jw_str(&j, "address", t->addr[0] ? t->addr : NULL);
	jw_str(&j, "tls_version", t->tls_version);
	if (t->http_status != 0)
		jw_int(&j, "http_status", t->http_status);
	else
		jw_str(&j, "http_status", NULL);
	jw_str(&j, "stage", t->stage);
	jw_str(&j, "error", t->stage ? t->error : NULL);
	jw_str(&j, "explanation", t->stage ? t->explain : NULL);
	jw_close(&j, '}');
	ctl_json_print(&j);
}

static void
print_text(const struct trial *t)
{
	printf("mapping %s (%s%s), certificate %s: %s serial %s, %s\n", t->m->name, t->m->url,
	    t->m->enabled ? "" : ", disabled", t->m->certificate, t->which,
	    t->cm->serial_hex, t->cm->subject);
	if (t->addr[0])
		printf("  connect  %s\n", t->addr);
	if (t->tls_version != NULL)
		printf("  tls      %s, server certificate verified as %s\n", t->tls_version,
		    t->m->server_name);
	if (t->http_status != 0)
		printf("  http     GET %s -> %d %s\n", t->path, t->http_status, t->http_reason);
	if (t->stage == NULL)
		printf("OK: %s accepted our certificate (serial %s) and answered %d\n",
		    t->m->host, t->cm->serial_hex, t->http_status);
	else
		printf("FAILED (%s): %s\n", t->stage, t->explain);
	if (t->stage != NULL && strstr(t->explain, t->error) == NULL)
		printf("  (%s)\n", t->error);
}

int
ctl_test_run(struct ctl *ctl, int argc, char **argv)
{
	int pending = 0, json = 0, rc;
	const struct ctl_opt opts[] = {{"pending", 0, NULL, &pending},
	    {"json", 0, NULL, &json}, {NULL, 0, NULL, NULL}};
	struct trial t;
	struct certset *set;
	char **pos;
	size_t npos;

	if ((rc = ctl_parse(argc, argv, opts, test_usage, 1, 1, &pos, &npos)) >= 0)
		return rc;
	memset(&t, 0, sizeof(t));
	if (ctl_config(ctl) == NULL || (t.m = resolve_mapping(ctl->cfg, pos[0], &t.path)) == NULL)
		return CTL_FAIL;
	if ((set = ctl_load_set(ctl, t.m->certificate)) == NULL) {
		free(t.path);
		return CTL_FAIL;
	}
	t.which = pending ? "pending" : "current";
	if ((t.cm = pick_pair(ctl, set, t.m->name, pending)) == NULL) {
		ctl_err("certificate '%s' has no %s certificate%s%s", set->name, t.which,
		    set->problems.n ? ": " : "", set->problems.n ? set->problems.msgs[0] : "");
		certset_free(set);
		free(t.path);
		return CTL_FAIL;
	}
	if (tls_global_init() < 0)
		fatalx("cannot initialise wolfSSL");
	trial_run(ctl, &t);
	if (json)
		print_json(&t);
	else
		print_text(&t);
	rc = t.stage == NULL ? CTL_OK : CTL_FAIL;
	certset_free(set);
	free(t.path);
	x509_thread_cleanup();
	tls_global_cleanup();
	return rc;
}
