/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "autoconf.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "certstore.h"
#include "log.h"
#include "pool.h"
#include "router.h"
#include "runtime.h"
#include "tls.h"

/* Certificate sets are loaded once per name, however many mappings use them. */
static struct certset *
gen_certset(struct generation *g, const char *name, time_t now, struct config_errors *errs)
{
	struct certset *set;

	for (size_t i = 0; i < g->n_sets; i++)
		if (strcmp(g->sets[i]->name, name) == 0)
			return g->sets[i];
	set = certset_load(g->cfg->certs_dir, name, now, errs);
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
	config_errors_add(errs, &m->pos,
	    "mapping '%s': certificate '%s' has no usable certificate and key in %s%s",
	    m->name, m->certificate, set->dir,
	    set->problems.n ? " (see the reasons below)" : " (no files)");
	for (size_t i = 0; i < set->problems.n; i++)
		config_errors_add(errs, NULL, "%s", set->problems.msgs[i]);
}

static int
dest_build(struct generation *g, struct dest *d, time_t now, int strict,
    struct config_errors *errs)
{
	const struct mapping *m = d->m;
	char err[512];

	d->gen = g;
	TAILQ_INIT(&d->idle);
	dest_init_authority(d);
	if (m->has_rate_limit)
		ratelimit_init(&d->rl, m->rate_per_sec, m->rate_burst, now_ms());
	if ((d->certs = gen_certset(g, m->certificate, now, errs)) == NULL)
		return -1;
	d->cert = d->certs->current;
	if (d->cert == NULL) {
		if (!strict) {
			log_warnx("mapping '%s': certificate '%s' has no usable pair; "
			    "requests get 503", m->name, m->certificate);
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
    struct config_errors *errs)
{
	struct generation *g = xcalloc(1, sizeof(*g));
	int failed = 0;

	g->id = id;
	g->refs = 1;
	if ((g->cfg = config_load(path, errs)) == NULL) {
		free(g);
		return NULL;
	}
	g->router = router_new(g->cfg);
	g->n_dests = g->cfg->n_mappings;
	g->dests = xcalloc(g->n_dests, sizeof(*g->dests));
	for (size_t i = 0; i < g->n_dests; i++) {
		g->dests[i].m = &g->cfg->mappings[i];
		if (dest_build(g, &g->dests[i], now, strict, errs) < 0)
			failed = 1;
	}
	if (failed) {
		generation_unref(&g);
		return NULL;
	}
	return g;
}

void
generation_ref(struct generation *g)
{
	g->refs++;
}

static void
generation_free(struct generation *g)
{
	for (size_t i = 0; i < g->n_dests; i++) {
		struct dest *d = &g->dests[i];
		pool_flush(d);
		assert(d->n_idle == 0);
		tls_ctx_free(d->tls);
		free(d->authority);
	}
	for (size_t i = 0; i < g->n_sets; i++)
		certset_free(g->sets[i]);
	free(g->sets);
	free(g->dests);
	router_free(g->router);
	config_free(g->cfg);
	free(g);
}

void
generation_unref(struct generation **gp)
{
	struct generation *g = *gp;

	*gp = NULL;
	if (g == NULL)
		return;
	assert(g->refs > 0);
	if (--g->refs == 0)
		generation_free(g);
}

void
generation_retire(struct generation *g)
{
	g->retired = 1;
	for (size_t i = 0; i < g->n_dests; i++)
		pool_flush(&g->dests[i]);
}

struct dest *
generation_dest(struct generation *g, const struct mapping *m)
{
	size_t i = (size_t)(m - g->cfg->mappings);

	assert(i < g->n_dests);
	return &g->dests[i];
}
