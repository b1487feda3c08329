/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Request -> mapping for the forward-proxy port: match on host, port and the
 * longest path prefix (at a '/' boundary). Built once per generation, read-only
 * afterwards (safe to share between worker threads).
 */
#ifndef MTLSD_ROUTER_H
#define MTLSD_ROUTER_H

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
 * NULL; on NULL, *why (static string) says which part did not match.
 */
const struct mapping *router_match(const struct router *r, const char *host,
    uint16_t port, const char *path, const char **why);

/* Does path fall under prefix (segment boundary)? Exposed for tests. */
int router_prefix_matches(const char *prefix, const char *path);

#endif
