/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Routing table for the proxy port: one entry per mapping, sorted by host so
 * a lookup is a binary search plus a scan of that host's few entries for the
 * longest prefix. Normalisation rules are documented in router.h.
 */
#include "autoconf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "router.h"
#include "util.h"

#define WHY_HOST "no mapping for this host"
#define WHY_PORT "no mapping for this port of the host"
#define WHY_PATH "no mapping for this path on the host"

/*
 * Readings of a path: RFC 3986 (the one routes are chosen by), and the ways
 * common servers read more into it: nginx decodes %2F into a '/' before it
 * resolves "..", nginx and Apache merge runs of '/'. A request is routed only
 * when its path stays under the chosen prefix in every reading, so that
 * "/api/..%2Fadmin" or "/api//../admin" cannot reach /admin through /api/.
 */
enum { READ_DECODE_SLASH = 1, READ_MERGE_SLASHES = 2, N_READINGS = 4 };

struct route {
	const struct mapping *m;
	/* normalised per reading (index: READ_* flags), trailing '/' dropped:
	 * "/" -> "" */
	char *prefix[N_READINGS];
	size_t plen[N_READINGS];
	size_t order;		/* position in the configuration */
};

struct router {
	struct route *routes;	/* sorted by host, then order */
	size_t n;
};

static int
hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c |= 0x20;
	return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* RFC 3986 section 2.3 */
static int
unreserved(int c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' || c == '~';
}

/* RFC 3986 section 5.2.4, in place; the output never grows. */
static void
remove_dot_segments(char *buf)
{
	const char *r = buf;
	size_t w = 0;

	while (*r == '/') {
		const char *seg = r + 1;
		size_t n = strcspn(seg, "/");
		int last = seg[n] == '\0';

		if (n == 2 && seg[0] == '.' && seg[1] == '.') {
			while (w > 0 && buf[--w] != '/')
				;
		} else if (!(n == 1 && seg[0] == '.')) {
			buf[w++] = '/';
			memmove(buf + w, seg, n);
			w += n;
			last = 0;
		}
		if (last)
			buf[w++] = '/';
		r = seg + n;
	}
	buf[w] = '\0';
}

/* Decode unreserved escapes (and %2F with READ_DECODE_SLASH), cut at
 * '?'/'#', merge runs of '/' with READ_MERGE_SLASHES, drop dot segments.
 * out must hold strlen(path) + 1 bytes. */
static void
path_normalize(const char *path, char *out, int reading)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t w = 0;
	int hi, lo;

	for (const char *s = path; *s && *s != '?' && *s != '#'; s++) {
		if (s[0] == '%' && (hi = hexval((unsigned char)s[1])) >= 0 &&
		    (lo = hexval((unsigned char)s[2])) >= 0) {
			if (unreserved(hi << 4 | lo) ||
			    ((reading & READ_DECODE_SLASH) && (hi << 4 | lo) == '/'))
				out[w++] = (char)(hi << 4 | lo);
			else {
				out[w++] = '%';
				out[w++] = hex[hi];
				out[w++] = hex[lo];
			}
			s += 2;
		} else
			out[w++] = *s;
		if ((reading & READ_MERGE_SLASHES) && w >= 2 && out[w - 1] == '/' &&
		    out[w - 2] == '/')
			w--;
	}
	out[w] = '\0';
	if (out[0] == '/')
		remove_dot_segments(out);
}

static int
prefix_match(const char *prefix, size_t plen, const char *path)
{
	if (strncmp(path, prefix, plen) != 0)
		return 0;
	return path[plen] == '\0' || path[plen] == '/' || path[plen] == '?' ||
	    path[plen] == '#';
}

int
router_prefix_matches(const char *prefix, const char *path)
{
	size_t plen = strlen(prefix);

	while (plen > 0 && prefix[plen - 1] == '/')
		plen--;
	return prefix_match(prefix, plen, path);
}

static int
route_cmp(const void *a, const void *b)
{
	const struct route *x = a, *y = b;
	int c = strcmp(x->m->host, y->m->host);

	if (c != 0)
		return c;
	return x->order < y->order ? -1 : x->order > y->order;
}

struct router *
router_new(const struct config *cfg)
{
	struct router *r = xcalloc(1, sizeof(*r));

	r->routes = xcalloc(cfg->n_mappings + 1, sizeof(*r->routes));
	for (size_t i = 0; i < cfg->n_mappings; i++) {
		const struct mapping *m = &cfg->mappings[i];
		struct route *rt = &r->routes[r->n];

		if (m->listen != NULL && m->listen->is_unix)
			continue;
		rt->m = m;
		rt->order = i;
		for (int k = 0; k < N_READINGS; k++) {
			char *p = xmalloc(strlen(m->path_prefix) + 1);

			path_normalize(m->path_prefix, p, k);
			rt->plen[k] = strlen(p);
			while (rt->plen[k] > 0 && p[rt->plen[k] - 1] == '/')
				p[--rt->plen[k]] = '\0';
			rt->prefix[k] = p;
		}
		r->n++;
	}
	qsort(r->routes, r->n, sizeof(*r->routes), route_cmp);
	return r;
}

void
router_free(struct router *r)
{
	if (r == NULL)
		return;
	for (size_t i = 0; i < r->n; i++)
		for (int k = 0; k < N_READINGS; k++)
			free(r->routes[i].prefix[k]);
	free(r->routes);
	free(r);
}

/* Lower-case, no brackets, no trailing dot; -1 if it cannot be a host. */
static int
host_normalize(const char *host, char *buf, size_t len)
{
	size_t n = strlen(host);

	if (n >= 2 && host[0] == '[' && host[n - 1] == ']') {
		host++;
		n -= 2;
	}
	if (n > 1 && host[n - 1] == '.')
		n--;
	if (n == 0 || n >= len)
		return -1;
	memcpy(buf, host, n);
	buf[n] = '\0';
	ascii_lower(buf);
	return 0;
}

/* Index of the first route for host, or r->n. */
static size_t
first_route(const struct router *r, const char *host)
{
	size_t lo = 0, hi = r->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (strcmp(r->routes[mid].m->host, host) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < r->n && strcmp(r->routes[lo].m->host, host) == 0 ? lo : r->n;
}

static int
port_ok(uint16_t mapping_port, uint16_t req_port)
{
	return mapping_port == req_port ||
	    ((req_port == 0 || req_port == 80) && mapping_port == 443);
}

static int
route_better(const struct route *a, const struct route *best)
{
	if (best == NULL || a->plen[0] > best->plen[0])
		return 1;
	return a->plen[0] == best->plen[0] && a->m->enabled && !best->m->enabled;
}

/* Scan the routes of one host; path already normalised (RFC 3986). */
static const struct route *
match_host(const struct router *r, size_t i, const char *host, uint16_t port,
    const char *path, const char **why)
{
	const struct route *best = NULL;
	int port_seen = 0;

	for (; i < r->n && strcmp(r->routes[i].m->host, host) == 0; i++) {
		const struct route *rt = &r->routes[i];
		if (!port_ok(rt->m->port, port))
			continue;
		port_seen = 1;
		if (prefix_match(rt->prefix[0], rt->plen[0], path) && route_better(rt, best))
			best = rt;
	}
	if (best == NULL)
		*why = port_seen ? WHY_PATH : WHY_PORT;
	return best;
}

/* Does path stay under rt's prefix in every other reading? buf holds
 * strlen(path) + 1 bytes. */
static int
all_readings_match(const struct route *rt, const char *path, char *buf)
{
	for (int k = 1; k < N_READINGS; k++) {
		path_normalize(path, buf, k);
		if (!prefix_match(rt->prefix[k], rt->plen[k], buf))
			return 0;
	}
	return 1;
}

const struct mapping *
router_match(const struct router *r, const char *host, uint16_t port,
    const char *path, const char **why)
{
	const struct route *rt;
	const char *dummy;
	char hbuf[256], sbuf[1024], *pbuf = sbuf;
	size_t i;

	if (why == NULL)
		why = &dummy;
	*why = WHY_HOST;
	if (host == NULL || host_normalize(host, hbuf, sizeof(hbuf)) < 0 ||
	    (i = first_route(r, hbuf)) == r->n)
		return NULL;
	if (path == NULL)
		path = "/";
	if (strlen(path) >= sizeof(sbuf))
		pbuf = xmalloc(strlen(path) + 1);
	path_normalize(path, pbuf, 0);
	rt = match_host(r, i, hbuf, port, pbuf, why);
	if (rt != NULL && !all_readings_match(rt, path, pbuf)) {
		*why = WHY_PATH;
		rt = NULL;
	}
	if (pbuf != sbuf)
		free(pbuf);
	return rt ? rt->m : NULL;
}

/* Printable ASCII only, at most 128 characters: it goes into responses. */
static void
sanitize(const char *s, char *buf, size_t len)
{
	size_t w = 0;

	for (; s && *s && w + 4 < len && w < 128; s++)
		buf[w++] = (*s > 0x20 && *s < 0x7f) ? *s : '?';
	if (s && *s) {
		memcpy(buf + w, "...", 3);
		w += 3;
	}
	buf[w] = '\0';
}

const struct mapping *
router_match_reason(const struct router *r, const char *host, uint16_t port,
    const char *path, char *buf, size_t len)
{
	const struct mapping *m;
	char h[136], p[136], portbuf[32];
	const char *why;

	if ((m = router_match(r, host, port, path, &why)) != NULL)
		return m;
	sanitize(host, h, sizeof(h));
	sanitize(path, p, sizeof(p));
	if (port == 0)
		snprintf(portbuf, sizeof(portbuf), "the default port");
	else
		snprintf(portbuf, sizeof(portbuf), "port %u", (unsigned)port);
	if (strcmp(why, WHY_PATH) == 0)
		snprintf(buf, len, "no mapping for path %s on host %s", p, h);
	else if (strcmp(why, WHY_PORT) == 0)
		snprintf(buf, len, "no mapping for %s of host %s", portbuf, h);
	else
		snprintf(buf, len, "no mapping for host %s", h);
	return NULL;
}
