/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * status and certs. Both sources of certificate information (the daemon's
 * /status, or the directories read here when it is not running) are turned
 * into one small model first, so that the text and JSON renderings are the
 * same whichever source was used.
 */
#include "autoconf.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "certstore.h"
#include "config.h"
#include "ctl_admin.h"
#include "ctl_certs.h"
#include "ctl_util.h"
#include "json.h"
#include "util.h"
#include "x509.h"

/* --- the model ------------------------------------------------------------ */

struct cv_pair {
	const char *state;              /* "current" or "pending" */
	char *subject, *issuer, *serial, *sans, *key, *files, *reason, *activates;
	time_t not_before, not_after;
};

struct cv_user {
	char *mapping;
	int enabled;
};

struct cv_cert {
	char *name, *dir, *source;
	char *vault_state, *vault_error, *vault_next;
	int loaded;                     /* by the running daemon */
	struct cv_pair *pairs;          /* current (if any) first */
	size_t n_pairs;
	char **problems;
	size_t n_problems;
	struct cv_user *users;
	size_t n_users;
};

struct cv {
	int from_daemon;
	char *why_offline;              /* the daemon could not be asked */
	struct cv_cert *certs;
	size_t n;
};

static char *
dup0(const char *s)
{
	return s != NULL ? xstrdup(s) : NULL;
}

static void
cv_free(struct cv *v)
{
	for (size_t i = 0; i < v->n; i++) {
		struct cv_cert *c = &v->certs[i];
		for (size_t k = 0; k < c->n_pairs; k++) {
			struct cv_pair *p = &c->pairs[k];
			free(p->subject), free(p->issuer), free(p->serial), free(p->sans);
			free(p->key), free(p->files), free(p->reason), free(p->activates);
		}
		for (size_t k = 0; k < c->n_problems; k++)
			free(c->problems[k]);
		for (size_t k = 0; k < c->n_users; k++)
			free(c->users[k].mapping);
		free(c->pairs), free(c->problems), free(c->users);
		free(c->name), free(c->dir), free(c->source);
		free(c->vault_state), free(c->vault_error), free(c->vault_next);
	}
	free(v->certs);
	free(v->why_offline);
}

static struct cv_cert *
cv_add(struct cv *v, const char *name)
{
	struct cv_cert *c;

	v->certs = xrealloc(v->certs, (v->n + 1) * sizeof(*v->certs));
	c = &v->certs[v->n++];
	memset(c, 0, sizeof(*c));
	c->name = xstrdup(name);
	return c;
}

static struct cv_pair *
pair_add(struct cv_cert *c, const char *state)
{
	struct cv_pair *p;

	c->pairs = xrealloc(c->pairs, (c->n_pairs + 1) * sizeof(*c->pairs));
	p = &c->pairs[c->n_pairs++];
	memset(p, 0, sizeof(*p));
	p->state = state;
	return p;
}

static void
problem_add(struct cv_cert *c, const char *msg)
{
	c->problems = xrealloc(c->problems, (c->n_problems + 1) * sizeof(*c->problems));
	c->problems[c->n_problems++] = xstrdup(msg);
}

static void
user_add(struct cv_cert *c, const char *mapping, int enabled)
{
	c->users = xrealloc(c->users, (c->n_users + 1) * sizeof(*c->users));
	c->users[c->n_users++] = (struct cv_user){xstrdup(mapping), enabled};
}

static struct cv_cert *
cv_find(struct cv *v, const char *name)
{
	for (size_t i = 0; i < v->n; i++)
		if (strcmp(v->certs[i].name, name) == 0)
			return &v->certs[i];
	return NULL;
}

/* The SANs of the certificate with this serial in a PEM bundle. */
static char *
sans_in_pem(const char *pem, size_t len, const char *serial)
{
	struct x509_bundle b = {0};
	char err[160], *sans = NULL;

	if (pem == NULL || x509_parse(pem, len, &b, err, sizeof(err)) < 0)
		return NULL;
	for (size_t i = 0; i < b.n_certs && sans == NULL; i++)
		if (serial != NULL && strcmp(b.certs[i]->serial_hex, serial) == 0)
			sans = x509_cert_sans(b.certs[i]);
	x509_bundle_clear(&b);
	return sans;
}

/* --- from the daemon's /status -------------------------------------------- */

static const char *
jstr(const struct json *j, int node, const char *key)
{
	return json_string(j, json_get(j, node, key));
}

/* jstr for printing: "-" when absent or null. */
static const char *
jtxt(const struct json *j, int node, const char *key)
{
	const char *s = jstr(j, node, key);

	return s != NULL ? s : "-";
}

static void
daemon_pair(struct cv_cert *c, const struct json *j, int node, const char *state,
    const char *pem, size_t pem_len)
{
	struct cv_pair *p = pair_add(c, state);
	int files = json_get(j, node, "files");
	char buf[512] = "";

	p->subject = dup0(jstr(j, node, "subject"));
	p->issuer = dup0(jstr(j, node, "issuer"));
	p->serial = dup0(jstr(j, node, "serial"));
	p->key = dup0(jstr(j, node, "key"));
	p->reason = dup0(jstr(j, node, "reason"));
	p->activates = dup0(jstr(j, node, "activates"));
	p->not_before = ctl_parse_time(jstr(j, node, "not_before"));
	p->not_after = ctl_parse_time(jstr(j, node, "not_after"));
	for (size_t i = 0; i < json_array_len(j, files); i++) {
		const char *f = json_string(j, json_array_at(j, files, i));
		snprintf(buf + strlen(buf), sizeof(buf) - strlen(buf), "%s%s", i ? ", " : "",
		    f ? f : "?");
	}
	p->files = xstrdup(buf);
	p->sans = sans_in_pem(pem, pem_len, p->serial);
}

/* Is mapping name enabled in /status's mappings? */
static int
daemon_mapping_enabled(const struct json *j, const char *name)
{
	int maps = json_get(j, json_root(j), "mappings"), en = 1;

	for (size_t i = 0; i < json_array_len(j, maps); i++) {
		int m = json_array_at(j, maps, i);
		const char *n = jstr(j, m, "name");
		if (n != NULL && strcmp(n, name) == 0)
			(void)json_bool(j, json_get(j, m, "enabled"), &en);
	}
	return en;
}

static void
daemon_cert(struct ctl *ctl, struct cv *v, const struct json *j, int node)
{
	struct cv_cert *c = cv_add(v, jstr(j, node, "name") ? jstr(j, node, "name") : "?");
	int pend = json_get(j, node, "pending"), probs = json_get(j, node, "problems");
	int users = json_get(j, node, "used_by"), vault = json_get(j, node, "vault");
	char *path = xasprintf("/certificates/%s", c->name), err[256];
	struct ctl_reply r;
	int have_pem = ctl_admin_request(ctl, "GET", path, &r, err, sizeof(err)) == 0 &&
	    r.status == 200;

	free(path);
	c->loaded = 1;
	c->dir = dup0(jstr(j, node, "dir"));
	c->source = dup0(jstr(j, node, "source"));
	if (json_is_object(j, json_get(j, node, "current")))
		daemon_pair(c, j, json_get(j, node, "current"), "current",
		    have_pem ? r.body : NULL, r.len);
	for (size_t i = 0; i < json_array_len(j, pend); i++)
		daemon_pair(c, j, json_array_at(j, pend, i), "pending",
		    have_pem ? r.body : NULL, r.len);
	for (size_t i = 0; i < json_array_len(j, probs); i++)
		problem_add(c, json_string(j, json_array_at(j, probs, i)));
	for (size_t i = 0; i < json_array_len(j, users); i++) {
		const char *m = json_string(j, json_array_at(j, users, i));
		if (m != NULL)
			user_add(c, m, daemon_mapping_enabled(j, m));
	}
	if (json_is_object(j, vault)) {
		c->vault_state = dup0(jstr(j, vault, "state"));
		c->vault_error = dup0(jstr(j, vault, "last_error"));
		c->vault_next = dup0(jstr(j, vault, "next_attempt"));
	}
	ctl_reply_free(&r);
}

/* --- from the files ----------------------------------------------------------- */

static void
file_pair(struct cv_cert *c, const struct cert_material *m, const char *state, char *reason)
{
	struct cv_pair *p = pair_add(c, state);

	p->subject = xstrdup(m->subject);
	p->issuer = xstrdup(m->issuer);
	p->serial = xstrdup(m->serial_hex);
	p->key = xstrdup(m->key_desc);
	p->files = strcmp(m->cert_file, m->key_file) == 0 ? xstrdup(m->cert_file) :
	    xasprintf("%s, %s", m->cert_file, m->key_file);
	p->not_before = m->not_before;
	p->not_after = m->not_after;
	p->reason = reason;
	p->sans = sans_in_pem(m->chain_pem, m->chain_pem_len, m->serial_hex);
}

/* Why a pending pair waits, as far as the files tell. */
static char *
file_reason(struct ctl *ctl, const struct certset *set, const struct cert_material *p,
    const struct cert_material *cur)
{
	struct rotation_conf rot;
	char at[40];
	time_t act;

	if (p->not_before > ctl->now) {
		x509_time_format(p->not_before, at, sizeof(at));
		return xasprintf("not valid before %s", at);
	}
	certset_rotation(set, &ctl->cfg->rotation, &rot);
	act = cur != NULL ? cur->not_after - (time_t)(rot.activate_before_expiry_ms / 1000) : 0;
	if (rot.activate == ACTIVATE_BEFORE_EXPIRY && act > ctl->now) {
		x509_time_format(act, at, sizeof(at));
		return xasprintf("rotation before-expiry: becomes current at %s", at);
	}
	return xstrdup("newer than the current one: mtlsd adopts it at its next "
	    "certificate check (after a test request with validate: true)");
}

static void
file_cert(struct ctl *ctl, struct cv *v, const char *name)
{
	const struct config *cfg = ctl->cfg;
	struct cv_cert *c = cv_add(v, name);
	struct certset *set = ctl_load_set(ctl, name);
	const struct cert_material *cur;

	for (size_t i = 0; i < cfg->n_mappings; i++)
		if (strcmp(cfg->mappings[i].certificate, name) == 0)
			user_add(c, cfg->mappings[i].name, cfg->mappings[i].enabled);
	if (set == NULL) {
		c->dir = xasprintf("%s/%s", cfg->certs_dir, name);
		problem_add(c, "cannot read the certificate directory");
		return;
	}
	c->dir = xstrdup(set->dir);
	c->source = xstrdup(set->opts.vault != NULL || set->opts.vault_broken ? "vault" : "files");
	cur = ctl_set_current(ctl, set);
	if (cur != NULL)
		file_pair(c, cur, "current", NULL);
	for (size_t i = 0; i < set->n_pairs; i++)
		if (ctl_pair_pending(set->pairs[i], cur, ctl->now))
			file_pair(c, set->pairs[i], "pending",
			    file_reason(ctl, set, set->pairs[i], cur));
	for (size_t i = 0; i < set->problems.n; i++)
		problem_add(c, set->problems.msgs[i]);
	certset_free(set);
}

static int
cmp_name(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Every certificate name: the directories, and the names mappings use. */
static size_t
file_names(const struct config *cfg, char ***out)
{
	DIR *d = opendir(cfg->certs_dir);
	struct dirent *de;
	char **names = NULL;
	size_t n = 0;

	while (d != NULL && (de = readdir(d)) != NULL) {
		struct stat st;
		char *p = xasprintf("%s/%s", cfg->certs_dir, de->d_name);
		int dir = de->d_name[0] != '.' && stat(p, &st) == 0 && S_ISDIR(st.st_mode);
		free(p);
		if (!dir)
			continue;
		names = xrealloc(names, (n + 1) * sizeof(*names));
		names[n++] = xstrdup(de->d_name);
	}
	if (d != NULL)
		closedir(d);
	for (size_t i = 0; i < cfg->n_mappings; i++) {
		size_t k = 0;
		while (k < n && strcmp(names[k], cfg->mappings[i].certificate) != 0)
			k++;
		if (k < n)
			continue;
		names = xrealloc(names, (n + 1) * sizeof(*names));
		names[n++] = xstrdup(cfg->mappings[i].certificate);
	}
	if (n > 1)
		qsort(names, n, sizeof(*names), cmp_name);
	*out = names;
	return n;
}

/* The model: the daemon's certificates, then (or, without a daemon, only)
 * the directories it has not loaded. name limits it to one. */
static int
cv_build(struct ctl *ctl, struct cv *v, const char *name)
{
	char err[512], **names = NULL;
	struct json *j = ctl_admin_status(ctl, err, sizeof(err));
	size_t n;

	memset(v, 0, sizeof(*v));
	if (j != NULL) {
		int certs = json_get(j, json_root(j), "certificates");
		v->from_daemon = 1;
		for (size_t i = 0; i < json_array_len(j, certs); i++) {
			int c = json_array_at(j, certs, i);
			const char *cn = jstr(j, c, "name");
			if (name == NULL || (cn != NULL && strcmp(cn, name) == 0))
				daemon_cert(ctl, v, j, c);
		}
		json_free(j);
	} else
		v->why_offline = xstrdup(err);
	if (ctl_config(ctl) == NULL)
		return v->from_daemon ? 0 : -1;
	n = file_names(ctl->cfg, &names);
	for (size_t i = 0; i < n; i++) {
		if ((name == NULL || strcmp(names[i], name) == 0) && cv_find(v, names[i]) == NULL)
			file_cert(ctl, v, names[i]);
		free(names[i]);
	}
	free(names);
	if (name != NULL && v->n == 0 && cv_find(v, name) == NULL) {
		struct stat st;
		char *dir = xasprintf("%s/%s", ctl->cfg->certs_dir, name);
		int exists = stat(dir, &st) == 0;
		free(dir);
		if (exists)
			file_cert(ctl, v, name);
	}
	return 0;
}

/* --- rendering --------------------------------------------------------------- */

static void
json_pair(struct json_writer *j, const struct cv_pair *p, time_t now)
{
	char nb[40], na[40];

	x509_time_format(p->not_before, nb, sizeof(nb));
	x509_time_format(p->not_after, na, sizeof(na));
	jw_open(j, NULL, '{');
	jw_str(j, "state", p->state);
	jw_str(j, "serial", p->serial);
	jw_str(j, "subject", p->subject);
	jw_str(j, "sans", p->sans);
	jw_str(j, "issuer", p->issuer);
	jw_str(j, "not_before", nb);
	jw_str(j, "not_after", na);
	jw_int(j, "days_left", ctl_days_left(p->not_after, now));
	jw_str(j, "key", p->key);
	jw_str(j, "files", p->files);
	if (strcmp(p->state, "pending") == 0) {
		jw_str(j, "activates", p->activates);
		jw_str(j, "reason", p->reason);
	}
	jw_close(j, '}');
}

static void
json_cert(struct json_writer *j, const struct cv_cert *c, time_t now)
{
	jw_open(j, NULL, '{');
	jw_str(j, "name", c->name);
	jw_str(j, "dir", c->dir);
	jw_str(j, "source", c->source);
	jw_bool(j, "loaded_by_mtlsd", c->loaded);
	if (c->vault_state != NULL || c->vault_error != NULL) {
		jw_open(j, "vault", '{');
		jw_str(j, "state", c->vault_state);
		jw_str(j, "last_error", c->vault_error);
		jw_str(j, "next_attempt", c->vault_next);
		jw_close(j, '}');
	}
	jw_open(j, "used_by", '[');
	for (size_t i = 0; i < c->n_users; i++) {
		jw_open(j, NULL, '{');
		jw_str(j, "mapping", c->users[i].mapping);
		jw_bool(j, "enabled", c->users[i].enabled);
		jw_close(j, '}');
	}
	jw_close(j, ']');
	if (c->n_pairs > 0 && strcmp(c->pairs[0].state, "current") == 0) {
		jw_key(j, "current");
		json_pair(j, &c->pairs[0], now);
	} else
		jw_str(j, "current", NULL);
	jw_open(j, "pending", '[');
	for (size_t i = 0; i < c->n_pairs; i++)
		if (strcmp(c->pairs[i].state, "pending") == 0)
			json_pair(j, &c->pairs[i], now);
	jw_close(j, ']');
	jw_open(j, "problems", '[');
	for (size_t i = 0; i < c->n_problems; i++)
		jw_str(j, NULL, c->problems[i]);
	jw_close(j, ']');
	jw_close(j, '}');
}

static void
text_pair(const struct cv_pair *p, time_t now)
{
	char nb[40], na[40];
	long long left = ctl_days_left(p->not_after, now);

	x509_time_format(p->not_before, nb, sizeof(nb));
	x509_time_format(p->not_after, na, sizeof(na));
	printf("  %-9s serial %s\n", p->state, p->serial ? p->serial : "?");
	printf("    subject:  %s\n", p->subject ? p->subject : "?");
	if (p->sans != NULL)
		printf("    SANs:     %s\n", p->sans);
	printf("    issuer:   %s\n", p->issuer ? p->issuer : "?");
	printf("    valid:    %s .. %s (%s%lld days %s)\n", nb, na, left < 0 ? "expired " : "",
	    left < 0 ? -left : left, left < 0 ? "ago" : "left");
	printf("    key:      %s (%s)\n", p->key ? p->key : "?", p->files ? p->files : "?");
	if (p->reason != NULL)
		printf("    pending:  %s\n", p->reason);
}

static void
text_cert(const struct cv_cert *c, time_t now)
{
	printf("%s (%s%s%s)\n", c->name, c->source ? c->source : "?", c->dir ? ": " : "",
	    c->dir ? c->dir : "");
	if (c->vault_state != NULL)
		printf("  vault:    %s%s%s%s%s\n", c->vault_state,
		    c->vault_error ? "; last error: " : "", c->vault_error ? c->vault_error : "",
		    c->vault_next ? "; next attempt " : "", c->vault_next ? c->vault_next : "");
	printf("  used by:  ");
	for (size_t i = 0; i < c->n_users; i++)
		printf("%s%s%s", i ? ", " : "", c->users[i].mapping,
		    c->users[i].enabled ? "" : " (disabled)");
	printf("%s\n", c->n_users == 0 ? "no mapping" : "");
	if (c->n_pairs == 0 || strcmp(c->pairs[0].state, "current") != 0)
		printf("  current   none\n");
	for (size_t i = 0; i < c->n_pairs; i++)
		text_pair(&c->pairs[i], now);
	if (c->n_problems > 0)
		printf("  problems:\n");
	for (size_t i = 0; i < c->n_problems; i++)
		printf("    %s\n", c->problems[i]);
}

static const char certs_usage[] =
    "usage: mtlsctl [-c FILE] certs [NAME] [--json]\n"
    "Current and pending certificates of each certificate name (or of NAME):\n"
    "subject, SANs, issuer, serial, validity and days left, key, source (files\n"
    "or vault), the mappings that use it, why a pending one is pending, and the\n"
    "files mtlsd skipped and why. From the running mtlsd, or read from\n"
    "certs_dir when it is not running.\n"
    "  --json   one JSON document\n"
    "Exit 0, or 1 when NAME is unknown or nothing can be read.\n";

int
ctl_certs_list(struct ctl *ctl, int argc, char **argv)
{
	int json = 0, rc;
	const struct ctl_opt opts[] = {{"json", 0, NULL, &json}, {NULL, 0, NULL, NULL}};
	const char *name;
	char **pos;
	size_t npos;
	struct cv v;
	struct json_writer j;

	if ((rc = ctl_parse(argc, argv, opts, certs_usage, 0, 1, &pos, &npos)) >= 0)
		return rc;
	name = npos > 0 ? pos[0] : NULL;
	if (cv_build(ctl, &v, name) < 0) {
		ctl_err("%s", v.why_offline ? v.why_offline : "nothing to show");
		cv_free(&v);
		return CTL_FAIL;
	}
	if (name != NULL && v.n == 0) {
		ctl_err("no certificate named '%s' (no directory %s/%s, no mapping uses it)",
		    name, ctl->cfg ? ctl->cfg->certs_dir : "certs.d", name);
		cv_free(&v);
		return CTL_FAIL;
	}
	if (json) {
		ctl_json_init(&j);
		jw_open(&j, NULL, '{');
		jw_str(&j, "source", v.from_daemon ? "mtlsd" : "files");
		jw_open(&j, "certificates", '[');
		for (size_t i = 0; i < v.n; i++)
			json_cert(&j, &v.certs[i], ctl->now);
		jw_close(&j, ']');
		jw_close(&j, '}');
		ctl_json_print(&j);
	} else {
		if (!v.from_daemon)
			printf("# mtlsd not reachable (%s); read from the files\n", v.why_offline);
		for (size_t i = 0; i < v.n; i++) {
			if (i > 0)
				printf("\n");
			if (v.from_daemon && !v.certs[i].loaded)
				printf("# not loaded by mtlsd (no mapping uses it); read from the "
				    "files\n");
			text_cert(&v.certs[i], ctl->now);
		}
	}
	cv_free(&v);
	return CTL_OK;
}

/* --- status ---------------------------------------------------------------- */

static const char status_usage[] =
    "usage: mtlsctl [-c FILE] status [--json]\n"
    "The running mtlsd: version, generation, the last reload and its errors,\n"
    "each mapping (url, listener, certificate, state, requests) and a line per\n"
    "certificate. --json prints mtlsd's /status document as it is.\n"
    "Exit 0, or 1 when mtlsd cannot be reached.\n";

static const char *
mapping_state(const struct json *j, int m, char *buf, size_t len)
{
	int enabled = 1, usable = 1;
	const char *pend = jstr(j, m, "pending_serial");

	(void)json_bool(j, json_get(j, m, "enabled"), &enabled);
	(void)json_bool(j, json_get(j, m, "usable"), &usable);
	if (!enabled)
		return "disabled";
	if (!usable)
		return "no certificate (503)";
	if (pend == NULL)
		return "ok";
	snprintf(buf, len, "ok; pending %s: %s", pend,
	    jstr(j, m, "pending_reason") ? jstr(j, m, "pending_reason") : "?");
	return buf;
}

static void
status_header(const struct json *j)
{
	int r = json_root(j), last = json_get(j, r, "last_reload"), errs;
	long long up = 0, gen = 0, pid = 0, conns = 0, ok = 0, failed = 0, lgen = 0;
	int lok = 1;

	(void)json_int(j, json_get(j, r, "uptime_seconds"), &up);
	(void)json_int(j, json_get(j, r, "generation"), &gen);
	(void)json_int(j, json_get(j, r, "pid"), &pid);
	(void)json_int(j, json_get(j, r, "connections"), &conns);
	(void)json_int(j, json_path(j, r, "reloads.ok"), &ok);
	(void)json_int(j, json_path(j, r, "reloads.failed"), &failed);
	(void)json_int(j, json_get(j, last, "generation"), &lgen);
	(void)json_bool(j, json_get(j, last, "ok"), &lok);
	printf("mtlsd %s, pid %lld, up %lldd%02lldh%02lldm, generation %lld, %lld client "
	    "connection(s)\n", jtxt(j, r, "version"), pid,
	    up / 86400, up % 86400 / 3600, up % 3600 / 60, gen, conns);
	printf("last reload: %s at %s (generation %lld); %lld ok, %lld failed since start\n",
	    lok ? "ok" : "FAILED", jtxt(j, last, "time"), lgen,
	    ok, failed);
	errs = json_get(j, last, "errors");
	for (size_t i = 0; i < json_array_len(j, errs); i++)
		printf("  %s%s\n", lok ? "kept out: " : "",
		    json_string(j, json_array_at(j, errs, i)) ? json_string(j,
		    json_array_at(j, errs, i)) : "?");
	if (json_is_object(j, json_get(j, r, "vault"))) {
		int v = json_get(j, r, "vault"), vup = 0;
		(void)json_bool(j, json_get(j, v, "up"), &vup);
		printf("vault: %s, token %s, %s%s%s\n", jtxt(j, v, "address"),
		    jtxt(j, v, "token_state"), vup ? "up" : "DOWN",
		    jstr(j, v, "last_error") ? "; last error: " : "",
		    jstr(j, v, "last_error") ? jstr(j, v, "last_error") : "");
	}
}

static void
status_mappings(const struct json *j)
{
	int maps = json_get(j, json_root(j), "mappings");
	size_t n = json_array_len(j, maps), w[4] = {7, 3, 6, 11};
	const char *keys[4] = {"name", "url", "listen", "certificate"};
	char buf[512];

	for (size_t i = 0; i < n; i++)
		for (int k = 0; k < 4; k++) {
			const char *s = jstr(j, json_array_at(j, maps, i), keys[k]);
			if (s != NULL && strlen(s) > w[k])
				w[k] = strlen(s);
		}
	printf("\n%-*s  %-*s  %-*s  %-*s  %8s  %s\n", (int)w[0], "MAPPING", (int)w[1], "URL",
	    (int)w[2], "LISTEN", (int)w[3], "CERTIFICATE", "REQUESTS", "STATE");
	for (size_t i = 0; i < n; i++) {
		int m = json_array_at(j, maps, i);
		long long req = 0;
		(void)json_int(j, json_get(j, m, "requests"), &req);
		printf("%-*s  %-*s  %-*s  %-*s  %8lld  %s\n", (int)w[0], jtxt(j, m, "name"),
		    (int)w[1], jtxt(j, m, "url"), (int)w[2], jtxt(j, m, "listen"), (int)w[3],
		    jtxt(j, m, "certificate"), req, mapping_state(j, m, buf, sizeof(buf)));
	}
}

static void
status_certs(const struct json *j, time_t now)
{
	int certs = json_get(j, json_root(j), "certificates");

	if (json_array_len(j, certs) > 0)
		printf("\n");
	for (size_t i = 0; i < json_array_len(j, certs); i++) {
		int c = json_array_at(j, certs, i), cur = json_get(j, c, "current");
		size_t np = json_array_len(j, json_get(j, c, "pending"));
		size_t nprob = json_array_len(j, json_get(j, c, "problems"));

		printf("certificate %s (%s): ", jtxt(j, c, "name"), jtxt(j, c, "source"));
		if (json_is_object(j, cur))
			printf("current serial %s, %lld days left", jtxt(j, cur, "serial"),
			    ctl_days_left(ctl_parse_time(jstr(j, cur, "not_after")), now));
		else
			printf("NO CURRENT CERTIFICATE");
		printf("; %zu pending; %zu problem(s)\n", np, nprob);
	}
}

int
ctl_certs_status(struct ctl *ctl, int argc, char **argv)
{
	int json = 0, rc;
	const struct ctl_opt opts[] = {{"json", 0, NULL, &json}, {NULL, 0, NULL, NULL}};
	struct ctl_reply r;
	struct json *j;
	char err[512], **pos;
	size_t npos;

	if ((rc = ctl_parse(argc, argv, opts, status_usage, 0, 0, &pos, &npos)) >= 0)
		return rc;
	if (json) {
		if (ctl_admin_request(ctl, "GET", "/status", &r, err, sizeof(err)) < 0) {
			ctl_err("%s", err);
			return CTL_FAIL;
		}
		fwrite(r.body, 1, r.len, stdout);
		rc = r.status == 200 ? CTL_OK : CTL_FAIL;
		ctl_reply_free(&r);
		return rc;
	}
	if ((j = ctl_admin_status(ctl, err, sizeof(err))) == NULL) {
		ctl_err("%s", err);
		ctl_err("(mtlsctl certs reads the certificate files without mtlsd)");
		return CTL_FAIL;
	}
	status_header(j);
	status_mappings(j);
	status_certs(j, ctl->now);
	json_free(j);
	return CTL_OK;
}
