/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * A generation: one configuration with everything built from it (router,
 * certificate sets, TLS contexts, per-mapping state). Built off to the side,
 * published by one pointer swap, reference-counted so that a request finishes
 * on the generation it started with; the last reference frees it.
 */
#ifndef MTLSD_RUNTIME_H
#define MTLSD_RUNTIME_H

#include <stdint.h>
#include <sys/queue.h>
#include <sys/stat.h>
#include <time.h>

#include "config.h"
#include "ratelimit.h"
#include "util.h"

struct event_base;
struct evdns_base;
struct upconn;
struct dconn;
struct certset;
struct cert_material;
struct tls_ctx;

TAILQ_HEAD(upconn_list, upconn);
TAILQ_HEAD(dconn_list, dconn);

/* Per-mapping state of a generation: the upstream destination. */
struct dest {
	const struct mapping *m;
	struct generation *gen;
	struct certset *certs;                  /* shared by name within a generation */
	const struct cert_material *cert;       /* current, NULL = none usable */
	struct cert_material *kept;             /* owned copy when cert's files are gone */
	const struct cert_material *candidate;  /* chosen but not validated yet */
	char pending_reason[256];               /* why candidate is not current */
	struct tls_ctx *tls;                    /* NULL when cert is NULL */
	struct rotation_conf rotation;          /* effective policy of its certificate */
	struct stat trust_st;                   /* trust file as loaded (reuse check) */
	struct ratelimit rl;
	char *authority;                        /* Host header: host[:port] */
	char port_str[8];
	struct upconn_list idle;                /* pooled connections */
	unsigned n_idle;
	uint64_t requests, handshakes, resumed;
};

struct generation {
	unsigned id;
	unsigned refs;
	int retired;                            /* no longer current */
	struct config *cfg;
	char *vault_cache;                      /* state_dir/vault */
	struct router *router;
	struct dest *dests;                     /* one per cfg->mappings[i] */
	size_t n_dests;
	struct certset **sets;                  /* distinct certificate sets */
	size_t n_sets;
	time_t next_change;                     /* a certificate choice may change then */
	struct config_errors isolated;          /* problems a reload kept away */
};

/* Per event-loop state. */
struct worker {
	struct event_base *base;
	struct evdns_base *dns;
	struct generation *gen;                 /* current */
	struct dconn_list conns;
	unsigned n_conns;
	int draining;
	uint64_t next_conn_id;
};

/*
 * Load and check everything (config, certificates, TLS contexts). prev is
 * the running generation (NULL at start): a mapping whose certificate files
 * are gone or broken keeps the certificate prev presents (with a warning),
 * and a destination whose certificate and TLS settings did not change takes
 * over prev's TLS context (sessions) and idle connections. With strict, a
 * mapping without any usable certificate is an error (start, -t); else it
 * is served with 503 no_certificate. NULL + errs on failure.
 */
struct generation *generation_build(const char *path, unsigned id, time_t now, int strict,
    struct generation *prev, struct config_errors *errs) MUSTCHECK;
/* g replaces prev: take over prev's TLS contexts, idle connections and
 * counters where nothing changed. Only once the swap is certain. */
void generation_adopt(struct generation *g, struct generation *prev);
void generation_ref(struct generation *g);
/* Drop a reference and clear *gp; frees the generation on the last one. */
void generation_unref(struct generation **gp);
/* Mark as no longer current: idle pooled connections are closed now, busy
 * ones when their request ends. */
void generation_retire(struct generation *g);
/* Warn (once a day per certificate) about a current certificate within
 * warn_before of its expiry with no successor in its directory. */
void generation_warn_expiry(struct generation *g, time_t now);
struct dest *generation_dest(struct generation *g, const struct mapping *m);

#endif
