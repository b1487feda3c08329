/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Request -> mapping for the forward-proxy port: match on host, port and the
 * longest path prefix (at a '/' boundary). Built once per generation, read-only
 * afterwards (safe to share between worker threads).
 *
 * Path normalisation (request paths and mapping prefixes alike), so that the
 * mapping chosen is the one the upstream will see the request under:
 *  - only the part before '?' or '#' is compared;
 *  - %XX escapes of unreserved characters (A-Z a-z 0-9 - . _ ~) are decoded,
 *    other escapes are kept (hex digits upper-cased), so "%2F" stays a byte
 *    inside a segment and never becomes a '/';
 *  - then "." and ".." segments are removed as in RFC 3986 section 5.2.4
 *    ("/api/../admin" is matched as "/admin", "/%2e%2e/x" as "/x").
 * Servers read more into a path than RFC 3986 does: nginx decodes "%2F"
 * into a '/' before it resolves "..", nginx and Apache merge "//". The
 * mapping chosen must contain the path in those readings too (prefix and
 * path read alike), or nothing matches: "/api/..%2Fadmin" and
 * "/api//../admin" are not under "/api/" ("/a%2Fb/c" is under "/a%2Fb").
 * Prefix match at a segment boundary: "/api" and "/api/" both match "/api",
 * "/api/x" and "/api?q", never "/apix"; "/" matches every path.
 * Ties (equal normalised prefix): an enabled mapping wins over a disabled
 * one, then the first in configuration order.
 * A mapping whose dedicated listener is a unix socket is reachable only on
 * that socket (its mode/group/allowed_uids are the access control), never
 * through the proxy port.
 */
#ifndef MTLSD_ROUTER_H
#define MTLSD_ROUTER_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"

struct router;

/* Mappings are borrowed from cfg, which must outlive the router. */
struct router *router_new(const struct config *cfg);
void router_free(struct router *r);

/*
 * host: as in the request (any case, optional trailing dot, IPv6 without
 * brackets); port: explicit port of the request URL or 0 when absent. A
 * request without a port (or with :80, the http default a client uses)
 * matches a mapping whose URL has the https default 443; otherwise the
 * ports must be equal. path: the request path (no query). Returns the
 * mapping (enabled or not: the caller answers 503 for a disabled one) or
 * NULL; on NULL, *why (static string) says which part did not match:
 * "no mapping for this host", "no mapping for this port of the host" or
 * "no mapping for this path on the host". why may be NULL.
 */
const struct mapping *router_match(const struct router *r, const char *host,
    uint16_t port, const char *path, const char **why);

/* As router_match, but on NULL writes the whole one-line reason into buf:
 * "no mapping for host X", "no mapping for port N of host X" or "no mapping
 * for path P on host X" (X and P sanitised to printable ASCII, truncated). */
const struct mapping *router_match_reason(const struct router *r,
    const char *host, uint16_t port, const char *path, char *buf, size_t len);

/* Does path fall under prefix (segment boundary)? Compares the strings as
 * given, without normalisation. Exposed for tests. */
int router_prefix_matches(const char *prefix, const char *path);

#endif
