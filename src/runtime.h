/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * A generation: one configuration with everything built from it (router,
 * certificate sets, TLS contexts, per-mapping state). Built off to the side,
 * published by one pointer swap, reference-counted so that a request finishes
 * on the generation it started with; the last reference frees it.
 */
#ifndef MTLSD_RUNTIME_H
#define MTLSD_RUNTIME_H

#include <pthread.h>
#include <stdint.h>
#include <sys/queue.h>
#include <sys/stat.h>
#include <time.h>

#include "config.h"
#include "loop.h"
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

/*
 * A destination's part that belongs to one worker: its idle pooled
 * connections and its counters. Only that worker writes it (no locks on the
 * hot path); the admin endpoint reads the counters with relaxed loads. One
 * cache line each, so that workers do not share lines.
 */
struct dest_local {
	struct upconn_list idle;                /* pooled connections */
	unsigned n_idle;
	uint64_t requests, handshakes, resumed;
} __attribute__((aligned(64)));

/* Per-mapping state of a generation: the upstream destination. Immutable
 * once published, but for local[] (per worker) and rl (under rl_lock). */
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
	struct ratelimit rl;                    /* shared by the workers */
	pthread_mutex_t rl_lock;
	char *authority;                        /* Host header: host[:port] */
	char port_str[8];
	struct dest_local *local;               /* [worker id] */
	unsigned n_local;
};

struct generation {
	unsigned id;
	unsigned refs;                          /* atomic: workers share it */
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

struct worker_thread;

/* Per event-loop state: worker 0 is the main thread (see workers.h). */
struct worker {
	unsigned id;
	struct event_base *base;
	struct evdns_base *dns;
	struct generation *gen;                 /* current for this worker */
	struct dconn_list conns;
	unsigned n_conns;                       /* relaxed: admin reads it */
	uint64_t accepted;                      /* relaxed: admin reads it */
	int draining;
	uint64_t next_conn_id;
	struct worker_thread *th;               /* NULL for the main thread */
	struct loop loop;                       /* its busy-polling state */
};

/* Read and write a field that one thread writes and others only read. */
#define RELAXED_GET(x) __atomic_load_n(&(x), __ATOMIC_RELAXED)
#define RELAXED_SET(x, v) __atomic_store_n(&(x), (v), __ATOMIC_RELAXED)

/* How many workers the process runs (fixed at start): every generation
 * built afterwards has that many dest_local slots. */
void runtime_set_workers(unsigned n);

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
/* g replaces prev: take over prev's TLS contexts, rate-limit state and
 * counters where nothing changed. Only once the swap is certain, on the
 * main thread, before any worker switches to g. */
void generation_adopt(struct generation *g, struct generation *prev);
/* Make g w's current generation, from w's own thread: w's idle connections
 * follow to g where the destination kept its TLS context, the others are
 * closed, and requests in flight finish on the generation they started on. */
void generation_switch(struct worker *w, struct generation *g);
void generation_ref(struct generation *g);
/* Drop a reference and clear *gp; frees the generation on the last one. */
void generation_unref(struct generation **gp);
/* w leaves g for good (shutdown): close w's idle connections to g and
 * drop w's reference. From w's own thread. */
void generation_leave(struct worker *w);
/* Counters summed over the workers (relaxed reads: for the admin endpoint). */
uint64_t dest_requests(const struct dest *d);
uint64_t dest_handshakes(const struct dest *d);
uint64_t dest_resumed(const struct dest *d);
unsigned dest_idle(const struct dest *d);
static inline struct dest_local *
dest_local(struct dest *d, const struct worker *w)
{
	return &d->local[w->id];
}
/* Warn (once a day per certificate) about a current certificate within
 * warn_before of its expiry with no successor in its directory. */
void generation_warn_expiry(struct generation *g, time_t now);
struct dest *generation_dest(struct generation *g, const struct mapping *m);

#endif
