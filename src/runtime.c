/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "autoconf.h"

#include <assert.h>
#include <dirent.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "certstore.h"
#include "log.h"
#include "loop.h"
#include "pool.h"
#include "router.h"
#include "runtime.h"
#include "tls.h"
#include "validate.h"

/* What a directory holds, as names, sizes, times and inodes (symlinks
 * followed, so a Kubernetes ..data swap changes it); 0 when unreadable. */
static uint64_t
dir_signature(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	uint64_t sig = 1;

	if (d == NULL)
		return 0;
	while ((e = readdir(d)) != NULL) {
		char path[PATH_MAX];
		struct stat st;
		uint64_t h = 1469598103934665603ULL;    /* FNV-1a */
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		if (stat(path, &st) < 0)
			memset(&st, 0, sizeof(st));
		for (const char *c = e->d_name; *c; c++)
			h = (h ^ (unsigned char)*c) * 1099511628211ULL;
		h ^= (uint64_t)st.st_size * 31 + (uint64_t)st.st_ino * 17 +
		    (uint64_t)st.st_mtim.tv_sec * 1000000007ULL + (uint64_t)st.st_mtim.tv_nsec;
		sig += h * 0x9E3779B97F4A7C15ULL;       /* order-independent */
	}
	closedir(d);
	return sig;
}

/* A set is adopted only when the directory looked the same before and
 * after reading it (as Envoy does): a copy in progress is read again, and
 * if it keeps changing the next check comes soon. */
static struct certset *
certset_load_settled(struct generation *g, const char *name, time_t now,
    struct config_errors *errs)
{
	char *dir = xasprintf("%s/%s", g->cfg->certs_dir, name);
	struct certset *set = NULL;

	for (int attempt = 0; attempt < 3; attempt++) {
		uint64_t before = dir_signature(dir);
		certset_free(set);
		if ((set = certset_load(g->cfg->certs_dir, g->vault_cache, name, now, errs)) == NULL)
			break;
		if (dir_signature(dir) == before)
			goto out;
	}
	if (set != NULL) {
		log_info("certificate '%s': %s keeps changing; looking again shortly",
		    name, dir);
		g->next_change = now + 1;
	}
out:
	free(dir);
	return set;
}

/* Certificate sets are loaded once per name, however many mappings use them. */
static struct certset *
gen_certset(struct generation *g, const char *name, time_t now, struct config_errors *errs)
{
	struct certset *set;

	for (size_t i = 0; i < g->n_sets; i++)
		if (strcmp(g->sets[i]->name, name) == 0)
			return g->sets[i];
	set = certset_load_settled(g, name, now, errs);
	if (set == NULL)
		return NULL;
	for (size_t i = 0; i < set->problems.n; i++)
		log_warnx("certificate %s", set->problems.msgs[i]);
	g->sets = xrealloc(g->sets, (g->n_sets + 1) * sizeof(*g->sets));
	g->sets[g->n_sets++] = set;
	return set;
}

static void
dest_init_authority(struct dest *d)
{
	const struct mapping *m = d->m;
	int v6 = strchr(m->host, ':') != NULL;

	snprintf(d->port_str, sizeof(d->port_str), "%u", m->port);
	if (m->port == 443)
		d->authority = xasprintf(v6 ? "[%s]" : "%s", m->host);
	else
		d->authority = xasprintf(v6 ? "[%s]:%u" : "%s:%u", m->host, m->port);
}

static void
no_cert_error(struct config_errors *errs, const struct mapping *m, const struct certset *set)
{
	if (set->opts.vault_broken)
		config_errors_add(errs, &m->pos, "mapping '%s': certificate '%s' is to come "
		    "from Vault, but %s/certificate.yaml has an error (below)", m->name,
		    m->certificate, set->dir);
	else
		config_errors_add(errs, &m->pos, "mapping '%s': certificate '%s' has no "
		    "usable certificate and key in %s%s", m->name, m->certificate, set->dir,
		    set->problems.n ? " (see the reasons below)" : " (no files)");
	for (size_t i = 0; i < set->problems.n; i++)
		config_errors_add(errs, NULL, "%s", set->problems.msgs[i]);
}

static struct dest *
prev_dest(struct generation *prev, const char *name)
{
	if (prev == NULL)
		return NULL;
	for (size_t i = 0; i < prev->n_dests; i++)
		if (strcmp(prev->dests[i].m->name, name) == 0)
			return &prev->dests[i];
	return NULL;
}

/* Same endpoint, trust and client certificate: the TLS context carries over. */
static int
dest_same_tls(const struct dest *a, const struct dest *b)
{
	const struct mapping *x = a->m, *y = b->m;

	if (a->cert == NULL || b->cert == NULL || a->tls == NULL ||
	    memcmp(a->cert->fingerprint_sha256, b->cert->fingerprint_sha256, 32) != 0)
		return 0;
	if (strcmp(x->host, y->host) != 0 || x->port != y->port ||
	    strcmp(x->server_name, y->server_name) != 0 || x->n_pins != y->n_pins ||
	    (x->n_pins && memcmp(x->pins, y->pins, x->n_pins * sizeof(*x->pins)) != 0))
		return 0;
	if ((x->trust_ca_file == NULL) != (y->trust_ca_file == NULL))
		return 0;
	if (x->trust_ca_file == NULL)
		return 1;
	return strcmp(x->trust_ca_file, y->trust_ca_file) == 0 &&
	    a->trust_st.st_ino == b->trust_st.st_ino && a->trust_st.st_size == b->trust_st.st_size &&
	    a->trust_st.st_mtime == b->trust_st.st_mtime;
}

/* Take over prev's context, rate-limit state and counters where they fit
 * (the idle connections follow per worker, in generation_switch). */
static void
dest_inherit(struct dest *d, struct dest *old)
{
	for (unsigned i = 0; i < d->n_local && i < old->n_local; i++) {
		d->local[i].requests = RELAXED_GET(old->local[i].requests);
		d->local[i].handshakes = RELAXED_GET(old->local[i].handshakes);
		d->local[i].resumed = RELAXED_GET(old->local[i].resumed);
	}
	if (old->m->has_rate_limit && d->m->has_rate_limit &&
	    old->m->rate_per_sec == d->m->rate_per_sec) {
		pthread_mutex_lock(&old->rl_lock);
		d->rl = old->rl;
		pthread_mutex_unlock(&old->rl_lock);
	}
	if (!dest_same_tls(old, d))
		return;
	tls_ctx_free(d->tls);
	tls_ctx_ref(old->tls);
	d->tls = old->tls;
}

static void
note_change(struct generation *g, time_t t)
{
	if (t != 0 && (g->next_change == 0 || t < g->next_change))
		g->next_change = t;
}

/* Keep presenting old's certificate (a copy: old's set goes with old). */
static void
dest_keep_old(struct generation *g, struct dest *d, const struct dest *old)
{
	d->kept = cert_material_dup(old->cert);
	d->cert = d->kept;
	note_change(g, d->cert->not_after);
}

/* With validate: true, a new choice waits for its test request to pass. */
static void
dest_gate_validation(struct generation *g, struct dest *d, const struct dest *old, time_t now)
{
	char why[200] = "";

	if (!d->m->validate || old == NULL || old->cert == NULL || d->cert == NULL ||
	    now >= old->cert->not_after ||
	    memcmp(d->cert->fingerprint_sha256, old->cert->fingerprint_sha256, 32) == 0)
		return;
	switch (validate_lookup(d->m->name, d->cert->fingerprint_sha256, why, sizeof(why))) {
	case VAL_OK:
		return;
	case VAL_FAILED:
		snprintf(d->pending_reason, sizeof(d->pending_reason),
		    "validation against %s failed: %s", d->authority, why);
		break;
	case VAL_UNKNOWN:
	case VAL_RUNNING:
		snprintf(d->pending_reason, sizeof(d->pending_reason),
		    "validation against %s in progress", d->authority);
		break;
	}
	d->candidate = d->cert;
	dest_keep_old(g, d, old);
}

/* Which certificate this destination presents now. */
static void
dest_choose_cert(struct generation *g, struct dest *d, struct dest *old, time_t now)
{
	time_t next = 0;

	certset_rotation(d->certs, &g->cfg->rotation, &d->rotation);
	d->cert = certset_choose(d->certs, &d->rotation, now, &next);
	note_change(g, next);
	if (d->cert != NULL) {
		dest_gate_validation(g, d, old, now);
		return;
	}
	if (old == NULL || old->cert == NULL || now >= old->cert->not_after)
		return;
	/* files gone or broken: a loaded certificate stays in service */
	dest_keep_old(g, d, old);
	log_warnx("mapping '%s': certificate '%s' has no usable files any more; keeping "
	    "serial %s in service until it expires or valid files return",
	    d->m->name, d->m->certificate, d->cert->serial_hex);
}

static unsigned runtime_workers;

void
runtime_set_workers(unsigned n)
{
	runtime_workers = n;
}

/* The parts every dest has, built or not (generation_free relies on them):
 * one dest_local per worker; at start the configuration says how many. */
static void
dest_init_local(struct dest *d, const struct mapping *m, unsigned cfg_workers)
{
	unsigned n = runtime_workers > cfg_workers ? runtime_workers : cfg_workers;
	void *p;

	d->m = m;
	if (n == 0)
		n = 1;
	if (posix_memalign(&p, 64, n * sizeof(*d->local)) != 0)
		fatalx("out of memory");
	memset(p, 0, n * sizeof(*d->local));
	d->local = p;
	d->n_local = n;
	for (unsigned i = 0; i < n; i++)
		TAILQ_INIT(&d->local[i].idle);
	pthread_mutex_init(&d->rl_lock, NULL);
}

static int
dest_build(struct generation *g, struct dest *d, time_t now, int strict,
    struct generation *prev, struct config_errors *errs)
{
	const struct mapping *m = d->m;
	struct dest *old = prev_dest(prev, m->name);
	char err[512];

	d->gen = g;
	dest_init_authority(d);
	if (m->has_rate_limit)
		ratelimit_init(&d->rl, m->rate_per_sec, m->rate_burst, now_ms());
	if (m->trust_ca_file != NULL)
		(void)stat(m->trust_ca_file, &d->trust_st);
	if ((d->certs = gen_certset(g, m->certificate, now, errs)) == NULL)
		return -1;
	dest_choose_cert(g, d, old, now);
	if (d->cert == NULL && !m->enabled)
		return 0;       /* 503 mapping_disabled anyway */
	if (d->cert == NULL) {
		if (d->certs->opts.vault != NULL && !g->cfg->vault.configured && strict) {
			config_errors_add(errs, &m->pos, "mapping '%s': certificate '%s' is to "
			    "come from Vault (vault: in %s/certificate.yaml), but there is no "
			    "vault: section in the main configuration", m->name, m->certificate,
			    d->certs->dir);
			return -1;
		}
		/* Vault makes it: serve 503 until it arrives (vault.c says why);
		 * said once, at start, not at every reload meanwhile */
		if (d->certs->opts.vault != NULL) {
			if (strict)
				config_errors_add(&g->isolated, &m->pos, "mapping '%s': "
				    "certificate '%s' is not issued by Vault yet; requests get "
				    "503 until it is", m->name, m->certificate);
			return 0;
		}
		if (!strict) {
			config_errors_add(&g->isolated, &m->pos, "mapping '%s': certificate "
			    "'%s' has no usable certificate and key; requests get 503",
			    m->name, m->certificate);
			return 0;
		}
		no_cert_error(errs, m, d->certs);
		return -1;
	}
	if ((d->tls = tls_ctx_new(m, d->cert, err, sizeof(err))) == NULL) {
		config_errors_add(errs, &m->pos, "mapping '%s': %s", m->name, err);
		return -1;
	}
	return 0;
}

struct generation *
generation_build(const char *path, unsigned id, time_t now, int strict,
    struct generation *prev, struct config_errors *errs)
{
	struct generation *g = xcalloc(1, sizeof(*g));
	int failed = 0;

	g->id = id;
	g->refs = 1;
	/* a reload isolates broken mapping files and certificates; a start (or
	 * -t) refuses them */
	if (prev != NULL)
		strict = 0;
	if ((g->cfg = config_reload(path, prev ? prev->cfg : NULL, errs,
	    prev ? &g->isolated : NULL)) == NULL) {
		config_errors_clear(&g->isolated);
		free(g);
		return NULL;
	}
	g->vault_cache = xasprintf("%s/vault", g->cfg->state_dir);
	g->router = router_new(g->cfg);
	g->n_dests = g->cfg->n_mappings;
	g->dests = xcalloc(g->n_dests, sizeof(*g->dests));
	for (size_t i = 0; i < g->n_dests; i++)
		dest_init_local(&g->dests[i], &g->cfg->mappings[i], g->cfg->workers);
	for (size_t i = 0; i < g->n_dests; i++)
		if (dest_build(g, &g->dests[i], now, strict, prev, errs) < 0)
			failed = 1;
	if (failed) {
		generation_unref(&g);
		return NULL;
	}
	return g;
}

void
generation_adopt(struct generation *g, struct generation *prev)
{
	for (size_t i = 0; i < g->n_dests; i++) {
		struct dest *old = prev_dest(prev, g->dests[i].m->name);
		if (old != NULL && g->dests[i].tls != NULL)
			dest_inherit(&g->dests[i], old);
	}
}

void
generation_ref(struct generation *g)
{
	__atomic_add_fetch(&g->refs, 1, __ATOMIC_RELAXED);
}

static void
generation_free(struct generation *g)
{
	for (size_t i = 0; i < g->n_dests; i++) {
		struct dest *d = &g->dests[i];
		/* every worker closed its idle connections when it left g */
		assert(dest_idle(d) == 0);
		tls_ctx_free(d->tls);
		if (d->kept != NULL)
			cert_material_free(d->kept);
		free(d->authority);
		free(d->local);
		pthread_mutex_destroy(&d->rl_lock);
	}
	for (size_t i = 0; i < g->n_sets; i++)
		certset_free(g->sets[i]);
	free(g->sets);
	free(g->dests);
	config_errors_clear(&g->isolated);
	router_free(g->router);
	config_free(g->cfg);
	free(g->vault_cache);
	free(g);
}

void
generation_unref(struct generation **gp)
{
	struct generation *g = *gp;
	unsigned left;

	*gp = NULL;
	if (g == NULL)
		return;
	left = __atomic_sub_fetch(&g->refs, 1, __ATOMIC_ACQ_REL);
	assert(left != UINT_MAX);
	if (left == 0)
		generation_free(g);
}

/* Close w's idle connections to g's destinations. */
static void
generation_flush(struct generation *g, struct worker *w)
{
	for (size_t i = 0; i < g->n_dests; i++)
		pool_flush(&g->dests[i], w);
}

void
generation_switch(struct worker *w, struct generation *g)
{
	struct generation *old = w->gen;

	/* before the early return: worker 0 holds the first generation
	 * already when the workers are given it at start */
	loop_set_busy_poll(&w->loop, g->cfg->busy_poll_us);
	if (old == g)
		return;
	generation_ref(g);
	for (size_t i = 0; old != NULL && i < g->n_dests; i++) {
		struct dest *d = &g->dests[i], *od = prev_dest(old, d->m->name);
		if (od != NULL && d->tls != NULL && d->tls == od->tls)
			pool_move(od, d, w);
	}
	w->gen = g;
	if (old != NULL) {
		generation_flush(old, w);
		generation_unref(&old);
	}
}

void
generation_leave(struct worker *w)
{
	if (w->gen == NULL)
		return;
	generation_flush(w->gen, w);
	generation_unref(&w->gen);
}

/* A dest_local counter summed over the workers. */
static uint64_t
dest_sum(const struct dest *d, size_t off)
{
	uint64_t n = 0;

	for (unsigned i = 0; i < d->n_local; i++) {
		const char *p = (const char *)&d->local[i] + off;
		n += RELAXED_GET(*(const uint64_t *)(const void *)p);
	}
	return n;
}

uint64_t
dest_requests(const struct dest *d)
{
	return dest_sum(d, offsetof(struct dest_local, requests));
}

uint64_t
dest_handshakes(const struct dest *d)
{
	return dest_sum(d, offsetof(struct dest_local, handshakes));
}

uint64_t
dest_resumed(const struct dest *d)
{
	return dest_sum(d, offsetof(struct dest_local, resumed));
}

unsigned
dest_idle(const struct dest *d)
{
	unsigned n = 0;

	for (unsigned i = 0; i < d->n_local; i++)
		n += RELAXED_GET(d->local[i].n_idle);
	return n;
}

struct dest *
generation_dest(struct generation *g, const struct mapping *m)
{
	size_t i = (size_t)(m - g->cfg->mappings);

	assert(i < g->n_dests);
	return &g->dests[i];
}

/* Names warned about and when, so a warning repeats once a day, not on
 * every reload. */
static struct {
	char *name;
	time_t at;
} warned[64];

static int
warn_due(const char *name, time_t now)
{
	size_t free_slot = ARRAY_LEN(warned);

	for (size_t i = 0; i < ARRAY_LEN(warned); i++) {
		if (warned[i].name != NULL && strcmp(warned[i].name, name) == 0) {
			if (now - warned[i].at < 86400)
				return 0;
			warned[i].at = now;
			return 1;
		}
		if (warned[i].name == NULL && free_slot == ARRAY_LEN(warned))
			free_slot = i;
	}
	if (free_slot < ARRAY_LEN(warned)) {
		warned[free_slot].name = xstrdup(name);
		warned[free_slot].at = now;
	}
	return 1;
}

/* Does the set hold a pair that outlives cur (a successor in sight)? */
static int
has_successor(const struct certset *set, const struct cert_material *cur)
{
	for (size_t i = 0; i < set->n_pairs; i++)
		if (set->pairs[i]->not_after > cur->not_after)
			return 1;
	return 0;
}

void
generation_warn_expiry(struct generation *g, time_t now)
{
	for (size_t i = 0; i < g->n_dests; i++) {
		const struct dest *d = &g->dests[i];
		time_t left;
		if (d->cert == NULL || has_successor(d->certs, d->cert))
			continue;
		if (d->certs->opts.vault != NULL)
			continue;       /* vault.c renews it, and says so when it cannot */
		left = d->cert->not_after - now;
		if (left > (time_t)(d->rotation.warn_before_ms / 1000) ||
		    !warn_due(d->m->certificate, now))
			continue;
		log_warnx("certificate '%s' (serial %s, used by mapping '%s') expires in %lld "
		    "hours and no successor is in %s", d->m->certificate, d->cert->serial_hex,
		    d->m->name, (long long)(left / 3600), d->certs->dir);
	}
}
