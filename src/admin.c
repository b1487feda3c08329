/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The admin endpoint on libevent's evhttp. The socket is opened here (as
 * listener.c opens the proxy's: mode and group applied before listen(), so
 * nobody connects to a socket with the umask's permissions) and handed to
 * evhttp. evhttp 2.1 has no accept hook, so allowed_uids is checked with
 * SO_PEERCRED on each request's connection: a peer that is not allowed gets
 * one 403 and the connection is closed. On loopback TCP, requests that come
 * from a web page (foreign Host, or an Origin header) are refused the same
 * way. Rendering only reads the current generation; POST /reload only asks
 * for the coalescing reload.
 */
#include "autoconf.h"

#include <arpa/inet.h>
#include <assert.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "admin.h"
#include "certstore.h"
#include "config.h"
#include "json.h"
#include "listener.h"
#include "log.h"
#include "procstats.h"
#include "proxy.h"
#include "runtime.h"
#include "util.h"
#include "vault.h"
#include "workers.h"
#include "x509.h"

#define ADMIN_TIMEOUT_S    10
#define ADMIN_MAX_HEADERS  8192
#define ADMIN_MAX_BODY     4096

#define ADD_LIT(b, lit) evbuffer_add((b), (lit), sizeof(lit) - 1)

static struct {
	struct worker *w;
	void (*reload_request)(void);
	struct evhttp *http;
	struct evhttp_bound_socket *bound;
	char *address;                  /* config spelling: identity across reloads */
	char *unix_path;                /* ours to unlink */
	uid_t *allowed_uids;
	size_t n_allowed_uids;
	int loopback;                   /* TCP on a loopback address: check Host */
	time_t started;
	struct admin_reload_stats reloads;
	struct admin_worker workers[1024];      /* config's maximum of workers */
} admin;

/* --- JSON --------------------------------------------------------------- */

void
admin_json_string(struct evbuffer *out, const char *s)
{
	json_write_string(out, s);
}

static void
jw_time(struct json_writer *j, const char *key, time_t t)
{
	char buf[40];

	x509_time_format(t, buf, sizeof(buf));
	jw_str(j, key, buf);
}

/* null for 0 (never, or not known) */
static void
jw_time0(struct json_writer *j, const char *key, time_t t)
{
	if (t == 0)
		jw_str(j, key, NULL);
	else
		jw_time(j, key, t);
}

static void
jw_hex(struct json_writer *j, const char *key, const unsigned char *p, size_t n)
{
	char buf[2 * 64 + 1];

	assert(n <= 64);
	for (size_t i = 0; i < n; i++)
		snprintf(buf + 2 * i, 3, "%02x", p[i]);
	buf[2 * n] = '\0';
	jw_str(j, key, buf);
}

static void
jw_errors(struct json_writer *j, const char *key, char *const *msgs, size_t n)
{
	jw_open(j, key, '[');
	for (size_t i = 0; i < n; i++)
		jw_str(j, NULL, msgs[i]);
	jw_close(j, ']');
}

/* --- what a generation shows ---------------------------------------------- */

/* Whole days until t, rounded down (negative once expired). */
static long long
days_left(time_t t, time_t now)
{
	long long s = (long long)t - (long long)now;

	return s >= 0 ? s / 86400 : -((-s + 86399) / 86400);
}

/* A destination using the set, preferring one that presents a pair. */
static const struct dest *
set_dest(const struct generation *g, const struct certset *set)
{
	const struct dest *any = NULL;

	for (size_t i = 0; i < g->n_dests; i++) {
		if (g->dests[i].certs != set)
			continue;
		if (g->dests[i].cert != NULL)
			return &g->dests[i];
		if (any == NULL)
			any = &g->dests[i];
	}
	return any;
}

/* The pair the set's mappings present: a mapping's dest->cert (which the
 * rotation policy or a pending validation may hold on an older pair, or a
 * copy kept in service after its files went away), else the set's choice. */
static const struct cert_material *
set_current(const struct generation *g, const struct certset *set)
{
	const struct dest *d = set_dest(g, set);

	return d != NULL && d->cert != NULL ? d->cert : set->current;
}

static int
same_pair(const struct cert_material *a, const struct cert_material *b)
{
	return a != NULL && b != NULL && memcmp(a->fingerprint_sha256, b->fingerprint_sha256,
	    sizeof(a->fingerprint_sha256)) == 0;
}

/* Pending: not presented, and either not valid yet or newer than the one
 * presented. Pairs are told apart by fingerprint, not by pointer. */
static int
pair_pending(const struct cert_material *p, const struct cert_material *cur, time_t now)
{
	if (same_pair(p, cur))
		return 0;
	if (p->not_before > now)
		return 1;
	return cur != NULL && p->not_before > cur->not_before;
}

/* Earliest time pending pair p can become current under the set's rotation
 * policy; a validate: true mapping then still waits for its test request. */
static time_t
pair_activation(const struct generation *g, const struct certset *set,
    const struct cert_material *p, const struct cert_material *cur)
{
	const struct dest *d = set_dest(g, set);
	time_t t = p->not_before, window;

	if (d != NULL && cur != NULL && d->rotation.activate == ACTIVATE_BEFORE_EXPIRY) {
		window = cur->not_after - (time_t)(d->rotation.activate_before_expiry_ms / 1000);
		if (window > t)
			t = window;
	}
	return t;
}

/* Why pending pair p is not presented, into buf. */
static void
pending_reason(const struct generation *g, const struct certset *set,
    const struct cert_material *p, const struct cert_material *cur, time_t now, char *buf,
    size_t len)
{
	char at[40];
	time_t act = pair_activation(g, set, p, cur);

	for (size_t i = 0; i < g->n_dests; i++) {
		const struct dest *d = &g->dests[i];
		if (d->certs == set && same_pair(d->candidate, p) && d->pending_reason[0] != '\0') {
			snprintf(buf, len, "mapping '%s': %s", d->m->name, d->pending_reason);
			return;
		}
	}
	x509_time_format(p->not_before > now ? p->not_before : act, at, sizeof(at));
	if (p->not_before > now)
		snprintf(buf, len, "not valid before %s", at);
	else if (act > now)
		snprintf(buf, len, "rotation before-expiry: becomes current at %s", at);
	else
		snprintf(buf, len, "not chosen yet (next certificate check)");
}

/* --- /status -------------------------------------------------------------- */

static void
status_pair_fields(struct json_writer *j, const struct cert_material *p, time_t now)
{
	jw_str(j, "subject", p->subject);
	jw_str(j, "issuer", p->issuer);
	jw_str(j, "serial", p->serial_hex);
	jw_time(j, "not_before", p->not_before);
	jw_time(j, "not_after", p->not_after);
	jw_int(j, "days_left", days_left(p->not_after, now));
	jw_str(j, "key", p->key_desc);
	jw_int(j, "chain_length", p->chain_len);
	jw_hex(j, "sha256_fingerprint", p->fingerprint_sha256, sizeof(p->fingerprint_sha256));
	jw_hex(j, "spki_sha256", p->spki_sha256, sizeof(p->spki_sha256));
	jw_open(j, "files", '[');
	jw_str(j, NULL, p->cert_file);
	if (p->key_file != NULL && (p->cert_file == NULL || strcmp(p->key_file, p->cert_file) != 0))
		jw_str(j, NULL, p->key_file);
	jw_close(j, ']');
}

static void
status_vault_cert(struct json_writer *j, const struct certset *set)
{
	const struct vault_cert_status *s = vault_cert_status(set->name);

	jw_open(j, "vault", '{');
	jw_str(j, "cache_dir", set->cache_dir);
	if (s != NULL) {
		jw_str(j, "kind", s->kind);
		jw_str(j, "path", s->path);
		jw_str(j, "state", s->state);
		jw_str(j, "serial", s->serial[0] ? s->serial : NULL);
		jw_time0(j, "not_after", s->not_after);
		jw_time0(j, "last_success", s->last_success);
		jw_time0(j, "last_attempt", s->last_attempt);
		jw_time0(j, "next_attempt", s->next_attempt);
		if (s->kv_version > 0)
			jw_int(j, "kv_version", s->kv_version);
		jw_u64(j, "obtained", s->obtained);
		jw_u64(j, "failures", s->failures);
		jw_int(j, "consecutive_failures", s->consecutive_failures);
		jw_str(j, "last_error", s->last_error[0] ? s->last_error : NULL);
		jw_time0(j, "last_error_time", s->last_error_time);
	} else {
		jw_str(j, "state", vault_status() == NULL ? "vault is not configured" :
		    "not started");
	}
	jw_close(j, '}');
}

static void
status_vault(struct json_writer *j)
{
	const struct vault_status *v = vault_status();

	if (v == NULL) {
		jw_str(j, "vault", NULL);
		return;
	}
	jw_open(j, "vault", '{');
	jw_str(j, "address", v->address);
	jw_str(j, "auth", v->auth);
	jw_str(j, "token_state", v->token_state);
	jw_time0(j, "token_expires", v->token_expires);
	jw_bool(j, "token_renewable", v->token_renewable);
	jw_bool(j, "up", v->up);
	jw_time0(j, "last_success", v->last_success);
	jw_u64(j, "requests_ok", v->requests_ok);
	jw_u64(j, "requests_failed", v->requests_failed);
	jw_u64(j, "logins", v->logins);
	jw_str(j, "last_error", v->last_error[0] ? v->last_error : NULL);
	jw_time0(j, "last_error_time", v->last_error_time);
	jw_close(j, '}');
}

static void
status_certset(struct json_writer *j, const struct generation *g, const struct certset *set, time_t now)
{
	const struct cert_material *cur = set_current(g, set);
	char why[512];

	jw_open(j, NULL, '{');
	jw_str(j, "name", set->name);
	jw_str(j, "dir", set->dir);
	jw_str(j, "source", set->opts.vault != NULL || set->opts.vault_broken ? "vault" : "files");
	if (set->opts.vault != NULL || set->opts.vault_broken)
		status_vault_cert(j, set);
	if (cur != NULL) {
		jw_open(j, "current", '{');
		status_pair_fields(j, cur, now);
		jw_close(j, '}');
	} else {
		jw_str(j, "current", NULL);
	}
	jw_open(j, "pending", '[');
	for (size_t i = 0; i < set->n_pairs; i++) {
		const struct cert_material *p = set->pairs[i];
		if (!pair_pending(p, cur, now))
			continue;
		jw_open(j, NULL, '{');
		status_pair_fields(j, p, now);
		jw_time(j, "activates", pair_activation(g, set, p, cur));
		pending_reason(g, set, p, cur, now, why, sizeof(why));
		jw_str(j, "reason", why);
		jw_close(j, '}');
	}
	jw_close(j, ']');
	jw_errors(j, "problems", set->problems.msgs, set->problems.n);
	jw_open(j, "used_by", '[');
	for (size_t i = 0; i < g->n_dests; i++)
		if (g->dests[i].certs == set)
			jw_str(j, NULL, g->dests[i].m->name);
	jw_close(j, ']');
	jw_close(j, '}');
}

static void
status_mapping(struct json_writer *j, const struct dest *d)
{
	const struct mapping *m = d->m;

	jw_open(j, NULL, '{');
	jw_str(j, "name", m->name);
	jw_str(j, "url", m->url);
	jw_str(j, "listen", m->listen != NULL ? m->listen->address : NULL);
	jw_str(j, "certificate", m->certificate);
	jw_str(j, "certificate_serial", d->cert != NULL ? d->cert->serial_hex : NULL);
	jw_str(j, "pending_serial", d->candidate != NULL ? d->candidate->serial_hex : NULL);
	jw_str(j, "pending_reason", d->candidate != NULL ? d->pending_reason : NULL);
	jw_bool(j, "enabled", m->enabled);
	jw_bool(j, "usable", d->cert != NULL);
	jw_u64(j, "requests", dest_requests(d));
	jw_u64(j, "upstream_handshakes", dest_handshakes(d));
	jw_u64(j, "upstream_resumed", dest_resumed(d));
	jw_u64(j, "pool_idle", dest_idle(d));
	jw_close(j, '}');
}

static void
status_workers(struct json_writer *j, const struct admin_view *v)
{
	if (v->n_workers == 0)
		return;
	jw_open(j, "workers", '[');
	for (unsigned i = 0; i < v->n_workers; i++) {
		jw_open(j, NULL, '{');
		jw_int(j, "worker", i);
		jw_int(j, "connections", v->workers[i].conns);
		jw_u64(j, "accepted", v->workers[i].accepted);
		jw_close(j, '}');
	}
	jw_close(j, ']');
}

static void
status_reload(struct json_writer *j, const struct admin_reload_stats *r)
{
	jw_open(j, "last_reload", '{');
	jw_time(j, "time", r->last_time);
	jw_bool(j, "ok", r->last_ok);
	jw_int(j, "generation", r->last_generation);
	jw_errors(j, "errors", r->errors, r->n_errors);
	jw_close(j, '}');
	jw_open(j, "reloads", '{');
	jw_u64(j, "ok", r->ok);
	jw_u64(j, "failed", r->failed);
	jw_time(j, "last_success", r->last_success_time);
	jw_close(j, '}');
}

void
admin_render_status(struct evbuffer *out, const struct admin_view *v)
{
	const struct generation *g = v->gen;
	struct json_writer j = { .b = out };

	jw_open(&j, NULL, '{');
	jw_str(&j, "version", PACKAGE_VERSION);
	jw_int(&j, "pid", v->pid);
	jw_time(&j, "started", v->started);
	jw_int(&j, "uptime_seconds", (long long)(v->now - v->started));
	jw_int(&j, "generation", g->id);
	jw_int(&j, "connections", v->n_conns);
	status_workers(&j, v);
	status_reload(&j, v->reloads);
	status_vault(&j);
	jw_open(&j, "mappings", '[');
	for (size_t i = 0; i < g->n_dests; i++)
		status_mapping(&j, &g->dests[i]);
	jw_close(&j, ']');
	jw_open(&j, "certificates", '[');
	for (size_t i = 0; i < g->n_sets; i++)
		status_certset(&j, g, g->sets[i], v->now);
	jw_close(&j, ']');
	jw_close(&j, '}');
	ADD_LIT(out, "\n");
	assert(j.depth == 0);
}

/* --- /metrics ------------------------------------------------------------- */

void
admin_prom_label(struct evbuffer *out, const char *s)
{
	const unsigned char *p = (const unsigned char *)s;

	while (*p != '\0') {
		size_t n = json_utf8_len(p);

		if (*p == '\\')
			ADD_LIT(out, "\\\\");
		else if (*p == '"')
			ADD_LIT(out, "\\\"");
		else if (*p == '\n')
			ADD_LIT(out, "\\n");
		else if (n == 0)
			ADD_LIT(out, "\xef\xbf\xbd");   /* U+FFFD */
		else
			evbuffer_add(out, p, n);
		p += n == 0 ? 1 : n;
	}
}

static void
prom_family(struct evbuffer *b, const char *name, const char *type, const char *help)
{
	evbuffer_add_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void
metrics_workers(struct evbuffer *b, const struct admin_view *v)
{
	if (v->n_workers == 0)
		return;
	prom_family(b, "mtlsd_worker_connections", "gauge",
	    "Client connections open, per worker (event-loop thread).");
	for (unsigned i = 0; i < v->n_workers; i++)
		evbuffer_add_printf(b, "mtlsd_worker_connections{worker=\"%u\"} %u\n", i,
		    v->workers[i].conns);
	prom_family(b, "mtlsd_worker_accepted_total", "counter",
	    "Client connections accepted, per worker (event-loop thread).");
	for (unsigned i = 0; i < v->n_workers; i++)
		evbuffer_add_printf(b, "mtlsd_worker_accepted_total{worker=\"%u\"} %" PRIu64 "\n",
		    i, v->workers[i].accepted);
}

static uint64_t
get_idle(const struct dest *d)
{
	return dest_idle(d);
}

static const struct {
	const char *name, *type, *help;
	uint64_t (*get)(const struct dest *);
} dest_metrics[] = {
	{ "mtlsd_requests_total", "counter",
	    "Requests routed to the mapping in the current generation.", dest_requests },
	{ "mtlsd_upstream_handshakes_total", "counter",
	    "Upstream TLS handshakes completed (current generation).", dest_handshakes },
	{ "mtlsd_upstream_resumed_total", "counter",
	    "Upstream TLS handshakes that resumed a session (current generation).",
	    dest_resumed },
	{ "mtlsd_pool_idle_connections", "gauge",
	    "Idle pooled upstream connections.", get_idle },
};

static void
metrics_dests(struct evbuffer *b, const struct generation *g)
{
	for (size_t k = 0; k < ARRAY_LEN(dest_metrics); k++) {
		prom_family(b, dest_metrics[k].name, dest_metrics[k].type, dest_metrics[k].help);
		for (size_t i = 0; i < g->n_dests; i++) {
			evbuffer_add_printf(b, "%s{mapping=\"", dest_metrics[k].name);
			admin_prom_label(b, g->dests[i].m->name);
			evbuffer_add_printf(b, "\"} %" PRIu64 "\n",
			    dest_metrics[k].get(&g->dests[i]));
		}
	}
}

static void
cert_sample(struct evbuffer *b, const char *metric, const struct certset *set,
    const char *state, const struct cert_material *p, int not_after)
{
	evbuffer_add_printf(b, "%s{certificate=\"", metric);
	admin_prom_label(b, set->name);
	evbuffer_add_printf(b, "\",state=\"%s\",serial=\"", state);
	admin_prom_label(b, p->serial_hex);
	evbuffer_add_printf(b, "\"} %lld\n",
	    (long long)(not_after ? p->not_after : p->not_before));
}

static void
metrics_cert_times(struct evbuffer *b, const struct generation *g, time_t now, int not_after)
{
	const char *metric = not_after ? "mtlsd_certificate_not_after_timestamp_seconds" :
	    "mtlsd_certificate_not_before_timestamp_seconds";

	prom_family(b, metric, "gauge", not_after ?
	    "End of validity of the current and pending certificates (Unix time)." :
	    "Start of validity of the current and pending certificates (Unix time).");
	for (size_t i = 0; i < g->n_sets; i++) {
		const struct certset *set = g->sets[i];
		const struct cert_material *cur = set_current(g, set);

		if (cur != NULL)
			cert_sample(b, metric, set, "current", cur, not_after);
		for (size_t k = 0; k < set->n_pairs; k++)
			if (pair_pending(set->pairs[k], cur, now))
				cert_sample(b, metric, set, "pending", set->pairs[k], not_after);
	}
}

static void
metrics_activation(struct evbuffer *b, const struct generation *g, time_t now)
{
	prom_family(b, "mtlsd_certificate_activation_timestamp_seconds", "gauge",
	    "Earliest time a pending certificate can become current under the rotation "
	    "policy (Unix time).");
	for (size_t i = 0; i < g->n_sets; i++) {
		const struct certset *set = g->sets[i];
		const struct cert_material *cur = set_current(g, set);

		for (size_t k = 0; k < set->n_pairs; k++) {
			const struct cert_material *p = set->pairs[k];
			if (!pair_pending(p, cur, now))
				continue;
			ADD_LIT(b, "mtlsd_certificate_activation_timestamp_seconds"
			    "{certificate=\"");
			admin_prom_label(b, set->name);
			ADD_LIT(b, "\",state=\"pending\",serial=\"");
			admin_prom_label(b, p->serial_hex);
			evbuffer_add_printf(b, "\"} %lld\n",
			    (long long)pair_activation(g, set, p, cur));
		}
	}
}

static void
metrics_certs(struct evbuffer *b, const struct generation *g, time_t now)
{
	metrics_cert_times(b, g, now, 1);
	metrics_cert_times(b, g, now, 0);
	metrics_activation(b, g, now);
	prom_family(b, "mtlsd_certificate_usable", "gauge",
	    "1 if the certificate has a current pair to present, else 0.");
	for (size_t i = 0; i < g->n_sets; i++) {
		ADD_LIT(b, "mtlsd_certificate_usable{certificate=\"");
		admin_prom_label(b, g->sets[i]->name);
		evbuffer_add_printf(b, "\"} %d\n", set_current(g, g->sets[i]) != NULL);
	}
	prom_family(b, "mtlsd_certificate_problems", "gauge",
	    "Files of the certificate that were skipped, and why, in /status.");
	for (size_t i = 0; i < g->n_sets; i++) {
		ADD_LIT(b, "mtlsd_certificate_problems{certificate=\"");
		admin_prom_label(b, g->sets[i]->name);
		evbuffer_add_printf(b, "\"} %zu\n", g->sets[i]->problems.n);
	}
}

static void
vault_cert_samples(struct evbuffer *b, const struct generation *g, const char *metric, int what)
{
	for (size_t i = 0; i < g->n_sets; i++) {
		const struct vault_cert_status *s = vault_cert_status(g->sets[i]->name);
		unsigned long long v;
		if (s == NULL)
			continue;
		v = what == 0 ? (unsigned long long)s->last_success :
		    what == 1 ? (unsigned long long)s->next_attempt :
		    what == 2 ? s->failures : s->obtained;
		evbuffer_add_printf(b, "%s{certificate=\"", metric);
		admin_prom_label(b, g->sets[i]->name);
		evbuffer_add_printf(b, "\"} %llu\n", v);
	}
}

static void
metrics_vault(struct evbuffer *b, const struct generation *g)
{
	const struct vault_status *v = vault_status();

	if (v == NULL)
		return;
	prom_family(b, "mtlsd_vault_up", "gauge",
	    "1 if the last request to Vault got an answer (not 5xx), else 0.");
	evbuffer_add_printf(b, "mtlsd_vault_up %d\n", v->up);
	prom_family(b, "mtlsd_vault_requests_total", "counter", "Requests to Vault, by result.");
	evbuffer_add_printf(b, "mtlsd_vault_requests_total{result=\"ok\"} %" PRIu64 "\n"
	    "mtlsd_vault_requests_total{result=\"failed\"} %" PRIu64 "\n", v->requests_ok,
	    v->requests_failed);
	prom_family(b, "mtlsd_vault_last_success_timestamp_seconds", "gauge",
	    "Last answer from Vault (Unix time, 0 = none yet).");
	evbuffer_add_printf(b, "mtlsd_vault_last_success_timestamp_seconds %lld\n",
	    (long long)v->last_success);
	prom_family(b, "mtlsd_vault_token_valid", "gauge",
	    "1 while mtlsd holds a token Vault accepted, else 0.");
	evbuffer_add_printf(b, "mtlsd_vault_token_valid %d\n", strcmp(v->token_state, "ok") == 0);
	prom_family(b, "mtlsd_vault_token_expiry_timestamp_seconds", "gauge",
	    "When the token expires unless renewed (Unix time, 0 = never).");
	evbuffer_add_printf(b, "mtlsd_vault_token_expiry_timestamp_seconds %lld\n",
	    (long long)v->token_expires);
	prom_family(b, "mtlsd_vault_certificate_last_success_timestamp_seconds", "gauge",
	    "Last time Vault delivered this certificate (Unix time, 0 = not since start).");
	vault_cert_samples(b, g, "mtlsd_vault_certificate_last_success_timestamp_seconds", 0);
	prom_family(b, "mtlsd_vault_certificate_next_attempt_timestamp_seconds", "gauge",
	    "Next request to Vault for this certificate: renewal or retry (Unix time).");
	vault_cert_samples(b, g, "mtlsd_vault_certificate_next_attempt_timestamp_seconds", 1);
	prom_family(b, "mtlsd_vault_certificate_errors_total", "counter",
	    "Failed requests for this certificate (Vault errors and refused answers).");
	vault_cert_samples(b, g, "mtlsd_vault_certificate_errors_total", 2);
	prom_family(b, "mtlsd_vault_certificate_obtained_total", "counter",
	    "New pairs obtained from Vault and cached.");
	vault_cert_samples(b, g, "mtlsd_vault_certificate_obtained_total", 3);
}

void
admin_render_metrics(struct evbuffer *out, const struct admin_view *v)
{
	const struct admin_reload_stats *r = v->reloads;

	prom_family(out, "mtlsd_start_time_seconds", "gauge", "Start of the process (Unix time).");
	evbuffer_add_printf(out, "mtlsd_start_time_seconds %lld\n", (long long)v->started);
	prom_family(out, "mtlsd_generation", "gauge", "Configuration generation being served.");
	evbuffer_add_printf(out, "mtlsd_generation %u\n", v->gen->id);
	prom_family(out, "mtlsd_reloads_total", "counter", "Reloads since start, by result.");
	evbuffer_add_printf(out, "mtlsd_reloads_total{result=\"ok\"} %" PRIu64 "\n"
	    "mtlsd_reloads_total{result=\"failed\"} %" PRIu64 "\n", r->ok, r->failed);
	prom_family(out, "mtlsd_last_reload_successful", "gauge",
	    "1 if the last reload (or the start) applied, 0 if it failed.");
	evbuffer_add_printf(out, "mtlsd_last_reload_successful %d\n", r->last_ok ? 1 : 0);
	prom_family(out, "mtlsd_last_reload_success_timestamp_seconds", "gauge",
	    "Time of the last successful reload, or of the start (Unix time).");
	evbuffer_add_printf(out, "mtlsd_last_reload_success_timestamp_seconds %lld\n",
	    (long long)r->last_success_time);
	prom_family(out, "mtlsd_last_reload_errors", "gauge",
	    "Errors of the last reload: why it failed, or what it kept out while applying "
	    "the rest.");
	evbuffer_add_printf(out, "mtlsd_last_reload_errors %zu\n", r->n_errors);
	prom_family(out, "mtlsd_connections", "gauge", "Client connections open.");
	evbuffer_add_printf(out, "mtlsd_connections %u\n", v->n_conns);
	metrics_workers(out, v);
	metrics_dests(out, v->gen);
	metrics_certs(out, v->gen, v->now);
	metrics_vault(out, v->gen);
	procstats_render_metrics(out);
}

/* --- /certificates -------------------------------------------------------- */

/* Text for a "# ..." line: a control character could end the comment and
 * start a PEM block of its own. */
static void
pem_comment_text(struct evbuffer *b, const char *s)
{
	for (const char *p = s; p != NULL && *p != '\0'; p++) {
		char c = (unsigned char)*p < 0x20 || *p == 0x7f ? '?' : *p;
		evbuffer_add(b, &c, 1);
	}
}

static void
pem_pair(struct evbuffer *b, const struct certset *set, const char *state,
    const struct cert_material *p, time_t now)
{
	char nb[40], na[40];

	/* chain_pem holds certificates only; refuse to serve anything else */
	if (strstr(p->chain_pem, "PRIVATE KEY") != NULL) {
		log_error("admin: certificate %s serial %s: chain holds key material; "
		    "not served", set->name, p->serial_hex);
		return;
	}
	x509_time_format(p->not_before, nb, sizeof(nb));
	x509_time_format(p->not_after, na, sizeof(na));
	evbuffer_add_printf(b, "# %s: ", state);
	pem_comment_text(b, set->name);
	ADD_LIT(b, "\n# subject: ");
	pem_comment_text(b, p->subject);
	ADD_LIT(b, "\n# issuer: ");
	pem_comment_text(b, p->issuer);
	ADD_LIT(b, "\n# serial: ");
	pem_comment_text(b, p->serial_hex);
	evbuffer_add_printf(b, "\n# valid: %s .. %s (%lld days left)\n", nb, na,
	    days_left(p->not_after, now));
	evbuffer_add(b, p->chain_pem, p->chain_pem_len);
	if (p->chain_pem_len > 0 && p->chain_pem[p->chain_pem_len - 1] != '\n')
		ADD_LIT(b, "\n");
}

static void
pem_set(struct evbuffer *b, const struct generation *g, const struct certset *set, time_t now)
{
	const struct cert_material *cur = set_current(g, set);
	int shown = 0;

	if (cur != NULL) {
		pem_pair(b, set, "current", cur, now);
		shown++;
	}
	for (size_t i = 0; i < set->n_pairs; i++)
		if (pair_pending(set->pairs[i], cur, now)) {
			pem_pair(b, set, "pending", set->pairs[i], now);
			shown++;
		}
	if (shown == 0) {
		ADD_LIT(b, "# ");
		pem_comment_text(b, set->name);
		evbuffer_add_printf(b, ": no usable certificate (%zu problems, see /status)\n",
		    set->problems.n);
	}
}

int
admin_render_pem(struct evbuffer *out, const struct generation *g, const char *name, time_t now)
{
	int found = 0;

	for (size_t i = 0; i < g->n_sets; i++) {
		if (name != NULL && strcmp(g->sets[i]->name, name) != 0)
			continue;
		pem_set(out, g, g->sets[i], now);
		found = 1;
	}
	return found || name == NULL ? 0 : -1;
}

/* --- HTTP ----------------------------------------------------------------- */

static void
reply(struct evhttp_request *req, int code, const char *reason, const char *ctype,
    struct evbuffer *body)
{
	struct evkeyvalq *h = evhttp_request_get_output_headers(req);

	evhttp_add_header(h, "Content-Type", ctype);
	evhttp_add_header(h, "Cache-Control", "no-store");
	evhttp_add_header(h, "X-Content-Type-Options", "nosniff");
	evhttp_send_reply(req, code, reason, body);
}

static void
reply_error(struct evhttp_request *req, int code, const char *reason, const char *msg,
    const char *detail)
{
	struct evbuffer *b = evbuffer_new();
	struct json_writer j = { .b = b };

	if (b == NULL)
		fatalx("out of memory");
	jw_open(&j, NULL, '{');
	jw_str(&j, "error", msg);
	if (detail != NULL)
		jw_str(&j, "detail", detail);
	jw_close(&j, '}');
	ADD_LIT(b, "\n");
	reply(req, code, reason, "application/json", b);
	evbuffer_free(b);
}

static void
admin_view_now(struct admin_view *v)
{
	v->gen = admin.w->gen;
	v->n_conns = proxy_conns_total();
	v->n_workers = workers_count();
	if (v->n_workers > ARRAY_LEN(admin.workers))
		v->n_workers = ARRAY_LEN(admin.workers);
	for (unsigned i = 0; i < v->n_workers; i++) {
		const struct worker *w = workers_get(i);
		admin.workers[i].conns = RELAXED_GET(w->n_conns);
		admin.workers[i].accepted = RELAXED_GET(w->accepted);
	}
	v->workers = admin.workers;
	v->now = time(NULL);
	v->started = admin.started;
	v->pid = (long)getpid();
	v->reloads = &admin.reloads;
}

static void
handle_status(struct evhttp_request *req, const char *arg, struct evbuffer *b)
{
	struct admin_view v;

	(void)arg;
	admin_view_now(&v);
	admin_render_status(b, &v);
	reply(req, HTTP_OK, "OK", "application/json", b);
}

static void
handle_metrics(struct evhttp_request *req, const char *arg, struct evbuffer *b)
{
	struct admin_view v;

	(void)arg;
	admin_view_now(&v);
	admin_render_metrics(b, &v);
	reply(req, HTTP_OK, "OK", "text/plain; version=0.0.4; charset=utf-8", b);
}

static void
handle_certificates(struct evhttp_request *req, const char *name, struct evbuffer *b)
{
	if (name != NULL && *name == '\0')
		name = NULL;            /* "/certificates/" */
	if (admin_render_pem(b, admin.w->gen, name, time(NULL)) < 0) {
		reply_error(req, HTTP_NOTFOUND, "Not Found", "no such certificate", name);
		return;
	}
	reply(req, HTTP_OK, "OK", "application/x-pem-file", b);
}

static void
handle_reload(struct evhttp_request *req, const char *arg, struct evbuffer *b)
{
	(void)arg;
	log_info("admin: reload requested");
	admin.reload_request();
	evbuffer_add_printf(b, "{\"requested\":true,\"generation\":%u}\n", admin.w->gen->id);
	reply(req, 202, "Accepted", "application/json", b);
}

typedef void (*handler_fn)(struct evhttp_request *, const char *arg, struct evbuffer *);

static const struct route {
	const char *path;
	int prefix;                     /* path + "/" + ARG also matches */
	enum evhttp_cmd_type method;
	const char *allow;
	handler_fn fn;
} routes[] = {
	{ "/status", 0, EVHTTP_REQ_GET, "GET, HEAD", handle_status },
	{ "/metrics", 0, EVHTTP_REQ_GET, "GET, HEAD", handle_metrics },
	{ "/certificates", 1, EVHTTP_REQ_GET, "GET, HEAD", handle_certificates },
	{ "/reload", 0, EVHTTP_REQ_POST, "POST", handle_reload },
};

/* The route for path, and its argument (after "prefix/") in *arg. */
static const struct route *
route_find(const char *path, const char **arg)
{
	for (size_t i = 0; i < ARRAY_LEN(routes); i++) {
		size_t n = strlen(routes[i].path);

		if (strncmp(path, routes[i].path, n) != 0)
			continue;
		*arg = NULL;
		if (path[n] == '\0')
			return &routes[i];
		if (routes[i].prefix && path[n] == '/') {
			*arg = path + n + 1;
			return &routes[i];
		}
	}
	return NULL;
}

static int
peer_allowed(struct evhttp_request *req)
{
	struct evhttp_connection *c = evhttp_request_get_connection(req);
	struct bufferevent *bev = c != NULL ? evhttp_connection_get_bufferevent(c) : NULL;
	evutil_socket_t fd = bev != NULL ? bufferevent_getfd(bev) : -1;
	struct ucred cred;
	socklen_t len = sizeof(cred);

	if (admin.n_allowed_uids == 0)
		return 1;
	if (fd < 0 || getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0) {
		log_warnx("admin: cannot tell the peer's uid; refused");
		return 0;
	}
	for (size_t i = 0; i < admin.n_allowed_uids; i++)
		if (admin.allowed_uids[i] == cred.uid)
			return 1;
	log_warnx("admin endpoint %s: refused a request from uid %u (not in allowed_uids)",
	    admin.address, (unsigned)cred.uid);
	return 0;
}

/* "localhost", 127.0.0.0/8 or [::1], with an optional port. */
static int
host_is_local(const char *host)
{
	char name[64];
	const char *end, *port;
	unsigned char addr[16];
	size_t n;

	if (host[0] == '[') {
		if ((end = strchr(host, ']')) == NULL)
			return 0;
		n = (size_t)(end - host - 1);
		port = end + 1;
	} else {
		port = strchr(host, ':');
		n = port != NULL ? (size_t)(port - host) : strlen(host);
		if (port == NULL)
			port = host + n;
	}
	if (n == 0 || n >= sizeof(name) || (*port != '\0' && (*port != ':' ||
	    port[1] == '\0' || strspn(port + 1, "0123456789") != strlen(port + 1))))
		return 0;
	memcpy(name, host[0] == '[' ? host + 1 : host, n);
	name[n] = '\0';
	if (host[0] == '[')
		return inet_pton(AF_INET6, name, addr) == 1 &&
		    IN6_IS_ADDR_LOOPBACK((const struct in6_addr *)(const void *)addr);
	if (ascii_casecmp(name, "localhost") == 0)
		return 1;
	return inet_pton(AF_INET, name, addr) == 1 && addr[0] == 127;
}

/* A web page in the operator's browser must not reach a loopback admin
 * port: DNS rebinding shows as a foreign Host, a cross-site request
 * carries Origin. Tools (curl, mtlsctl, Prometheus) send neither. */
static const char *
browser_refusal(struct evhttp_request *req)
{
	const struct evkeyvalq *h = evhttp_request_get_input_headers(req);
	const char *host = evhttp_find_header(h, "Host");

	if (evhttp_find_header(h, "Origin") != NULL)
		return "requests from web pages (with an Origin header) are refused";
	if (admin.loopback && host != NULL && !host_is_local(host))
		return "Host must be localhost or a loopback address";
	return NULL;
}

static void
admin_request(struct evhttp_request *req, void *arg)
{
	const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
	enum evhttp_cmd_type method = evhttp_request_get_command(req);
	const char *raw = uri != NULL ? evhttp_uri_get_path(uri) : NULL;
	const struct route *r;
	const char *rarg, *why;
	char *path;
	size_t len;

	(void)arg;
	if (!peer_allowed(req)) {
		evhttp_add_header(evhttp_request_get_output_headers(req), "Connection", "close");
		reply_error(req, 403, "Forbidden", "uid not in allowed_uids", NULL);
		return;
	}
	if ((why = browser_refusal(req)) != NULL) {
		log_warnx("admin endpoint %s: refused a request: %s", admin.address, why);
		evhttp_add_header(evhttp_request_get_output_headers(req), "Connection", "close");
		reply_error(req, 403, "Forbidden", why, NULL);
		return;
	}
	path = evhttp_uridecode(raw != NULL && *raw != '\0' ? raw : "/", 0, &len);
	if (path == NULL || strlen(path) != len) {      /* %00 */
		reply_error(req, HTTP_BADREQUEST, "Bad Request", "bad path", NULL);
	} else if ((r = route_find(path, &rarg)) == NULL) {
		reply_error(req, HTTP_NOTFOUND, "Not Found", "no such endpoint", path);
	} else if (method != r->method && !(method == EVHTTP_REQ_HEAD &&
	    r->method == EVHTTP_REQ_GET)) {
		evhttp_add_header(evhttp_request_get_output_headers(req), "Allow", r->allow);
		reply_error(req, 405, "Method Not Allowed", "method not allowed", r->allow);
	} else {
		struct evbuffer *b = evbuffer_new();

		if (b == NULL)
			fatalx("out of memory");
		r->fn(req, rarg, b);
		evbuffer_free(b);
	}
	free(path);
}

/* --- the socket ----------------------------------------------------------- */

static void
log_bound(int fd, const struct listen_spec *spec)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	char bound[80];

	if (spec->is_unix || getsockname(fd, (struct sockaddr *)&ss, &len) < 0)
		log_info("admin endpoint listening on %s", spec->address);
	else {
		listener_format_addr((struct sockaddr *)&ss, bound, sizeof(bound));
		log_info("admin endpoint listening on %s", bound);
	}
}

static void
adopt_uids(const struct listen_spec *spec)
{
	free(admin.allowed_uids);
	admin.allowed_uids = NULL;
	admin.n_allowed_uids = spec->n_allowed_uids;
	if (spec->n_allowed_uids > 0) {
		admin.allowed_uids = xcalloc(spec->n_allowed_uids, sizeof(uid_t));
		memcpy(admin.allowed_uids, spec->allowed_uids,
		    spec->n_allowed_uids * sizeof(uid_t));
	}
}

static void
unbind(void)
{
	if (admin.bound != NULL)
		evhttp_del_accept_socket(admin.http, admin.bound);      /* closes it */
	admin.bound = NULL;
	if (admin.unix_path != NULL)
		(void)unlink(admin.unix_path);
	free(admin.unix_path);
	free(admin.address);
	admin.unix_path = admin.address = NULL;
}

static int
admin_open(const struct listen_spec *spec, char *err, size_t errlen)
{
	int fd;

	if (admin.http == NULL) {
		if ((admin.http = evhttp_new(admin.w->base)) == NULL) {
			snprintf(err, errlen, "admin endpoint: cannot create the HTTP server");
			return -1;
		}
		evhttp_set_timeout(admin.http, ADMIN_TIMEOUT_S);
		evhttp_set_max_headers_size(admin.http, ADMIN_MAX_HEADERS);
		evhttp_set_max_body_size(admin.http, ADMIN_MAX_BODY);
		/* let every method through to answer 405 with a reason */
		evhttp_set_allowed_methods(admin.http, EVHTTP_REQ_GET | EVHTTP_REQ_POST |
		    EVHTTP_REQ_HEAD | EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE |
		    EVHTTP_REQ_OPTIONS | EVHTTP_REQ_PATCH);
		evhttp_set_gencb(admin.http, admin_request, NULL);
	}
	if ((fd = listener_open_socket(spec, err, errlen)) < 0)
		return -1;
	unbind();
	if ((admin.bound = evhttp_accept_socket_with_handle(admin.http, fd)) == NULL) {
		snprintf(err, errlen, "admin endpoint: cannot watch %s", spec->address);
		close(fd);
		if (spec->is_unix)
			(void)unlink(spec->unix_path);
		return -1;
	}
	admin.address = xstrdup(spec->address);
	admin.unix_path = spec->is_unix ? xstrdup(spec->unix_path) : NULL;
	admin.loopback = !spec->is_unix && listen_spec_is_loopback(spec);
	adopt_uids(spec);
	log_bound(fd, spec);
	return 0;
}

int
admin_start(struct worker *w, const struct config *cfg, void (*reload_request)(void),
    char *err, size_t errlen)
{
	admin.w = w;
	admin.reload_request = reload_request;
	admin.started = time(NULL);
	admin.reloads.last_ok = 1;
	admin.reloads.last_generation = w->gen->id;
	admin.reloads.last_time = admin.reloads.last_success_time = admin.started;
	if (cfg->admin_listen == NULL)
		return 0;
	return admin_open(cfg->admin_listen, err, errlen);
}

void
admin_update(struct worker *w, const struct config *cfg)
{
	const struct listen_spec *spec = cfg->admin_listen;
	char err[512];

	admin.w = w;
	if (spec == NULL) {
		if (admin.address != NULL)
			log_info("closing admin endpoint %s", admin.address);
		unbind();
		return;
	}
	if (admin.address != NULL && strcmp(admin.address, spec->address) == 0) {
		adopt_uids(spec);
		if (spec->is_unix && listener_unix_perms(spec, err, sizeof(err)) < 0)
			log_error("admin endpoint: %s", err);
		return;
	}
	if (admin_open(spec, err, sizeof(err)) < 0)
		log_error("%s; %s", err, admin.address != NULL ?
		    "keeping the old admin endpoint" : "no admin endpoint");
}

static void
reload_errors_clear(struct admin_reload_stats *r)
{
	for (size_t i = 0; i < r->n_errors; i++)
		free(r->errors[i]);
	free(r->errors);
	r->errors = NULL;
	r->n_errors = 0;
}

void
admin_note_reload(int ok, unsigned generation, const struct config_errors *errs)
{
	struct admin_reload_stats *r = &admin.reloads;

	reload_errors_clear(r);
	r->last_ok = ok;
	r->last_generation = generation;
	r->last_time = time(NULL);
	if (ok) {
		r->ok++;
		r->last_success_time = r->last_time;
	} else {
		r->failed++;
	}
	if (errs == NULL || errs->n == 0)
		return;
	r->errors = xcalloc(errs->n, sizeof(*r->errors));
	for (size_t i = 0; i < errs->n; i++)
		r->errors[i] = xstrdup(errs->msgs[i]);
	r->n_errors = errs->n;
}

void
admin_stop(void)
{
	unbind();
	if (admin.http != NULL)
		evhttp_free(admin.http);
	admin.http = NULL;
	free(admin.allowed_uids);
	reload_errors_clear(&admin.reloads);
	memset(&admin, 0, sizeof(admin));
}
