/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * certificate.yaml's vault: section. Every key is checked here, so that a
 * typo is a "line N: vault.KEY" problem at load time rather than a
 * certificate Vault never issues.
 */
#include "autoconf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"
#include "vault_conf.h"

struct vparse {
	yaml_document_t *doc;
	struct vault_cert_conf *c;
	char *err;
	size_t errlen;
	int failed;
};

static void verr(struct vparse *p, const yaml_node_t *n, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void
verr(struct vparse *p, const yaml_node_t *n, const char *key, const char *fmt, ...)
{
	char msg[256];
	va_list ap;

	if (p->failed++)
		return;         /* the first problem is the one to fix */
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	snprintf(p->err, p->errlen, "line %zu: vault.%s: %s", n->start_mark.line + 1, key, msg);
}

static const char *
scalar(const yaml_node_t *n)
{
	return n != NULL && n->type == YAML_SCALAR_NODE ? (const char *)n->data.scalar.value : NULL;
}

/* Names, paths and SANs go into URLs and JSON: printable ASCII, no blanks. */
static int
plain_text(const char *s)
{
	if (*s == '\0')
		return 0;
	for (; *s != '\0'; s++)
		if ((unsigned char)*s <= ' ' || (unsigned char)*s >= 0x7f || *s == '"' ||
		    *s == '\\' || *s == ',')
			return 0;
	return 1;
}

static char *
want_text(struct vparse *p, yaml_node_t *n, const char *key)
{
	const char *v = scalar(n);

	if (v == NULL || !plain_text(v)) {
		verr(p, n, key, "expected a name without blanks, quotes or commas");
		return NULL;
	}
	return xstrdup(v);
}

/* A list, or one string (Vault's comma-string-slice accepts both). */
static void
want_list(struct vparse *p, yaml_node_t *n, const char *key, char ***out, size_t *n_out)
{
	yaml_node_item_t *it;

	if (n->type == YAML_SCALAR_NODE) {
		*out = xcalloc(1, sizeof(**out));
		if (((*out)[0] = want_text(p, n, key)) != NULL)
			*n_out = 1;
		return;
	}
	if (n->type != YAML_SEQUENCE_NODE) {
		verr(p, n, key, "expected a list of names");
		return;
	}
	*out = xcalloc((size_t)(n->data.sequence.items.top - n->data.sequence.items.start) + 1,
	    sizeof(**out));
	for (it = n->data.sequence.items.start; it < n->data.sequence.items.top; it++) {
		char *v = want_text(p, yaml_document_get_node(p->doc, *it), key);
		if (v == NULL)
			return;
		(*out)[(*n_out)++] = v;
	}
}

static int
path_ok(const char *path)
{
	return path[0] != '/' && strncmp(path, "v1/", 3) != 0 && strstr(path, "..") == NULL &&
	       strstr(path, "//") == NULL && strchr(path, '?') == NULL &&
	       strchr(path, '#') == NULL && strchr(path, '%') == NULL;
}

/* pki/issue/ROLE, pki/sign/ROLE, pki/issuer/REF/issue/ROLE */
static void
want_pki_path(struct vparse *p, yaml_node_t *n)
{
	struct vault_cert_conf *c = p->c;
	const char *s, *role;

	if ((c->path = want_text(p, n, "pki")) == NULL)
		return;
	if (!path_ok(c->path)) {
		verr(p, n, "pki", "expected a path under /v1/ such as pki/issue/ROLE "
		    "(no leading / or v1/, no .., ? or %%)");
		return;
	}
	if ((role = strrchr(c->path, '/')) == NULL || role == c->path || role[1] == '\0') {
		verr(p, n, "pki", "expected MOUNT/issue/ROLE or MOUNT/sign/ROLE");
		return;
	}
	for (s = role - 1; s > c->path && *s != '/'; s--)
		;
	if (strncmp(s, "/issue/", 7) == 0)
		c->kind = VAULT_PKI_ISSUE;
	else if (strncmp(s, "/sign/", 6) == 0)
		c->kind = VAULT_PKI_SIGN;
	else
		verr(p, n, "pki", "expected MOUNT/issue/ROLE or MOUNT/sign/ROLE, not %s", c->path);
}


static void
want_kv_path(struct vparse *p, yaml_node_t *n)
{
	struct vault_cert_conf *c = p->c;
	const char *slash;

	if ((c->path = want_text(p, n, "kv")) == NULL)
		return;
	if (!path_ok(c->path)) {
		verr(p, n, "kv", "expected a path under /v1/ such as secret/data/NAME "
		    "(no leading / or v1/, no .., ? or %%)");
		return;
	}
	c->kind = VAULT_KV;
	slash = strchr(c->path, '/');
	if (slash == NULL || slash[1] == '\0') {
		verr(p, n, "kv", "expected MOUNT/data/PATH (KV v2) or MOUNT/PATH (KV v1)");
		return;
	}
	/* secret/data/x is KV v2's read path; kv_version: says otherwise */
	c->kv_version = strncmp(slash, "/data/", 6) == 0 ? 2 : 1;
}

static void
want_number(struct vparse *p, yaml_node_t *n, const char *key, double lo, double hi, double *out)
{
	const char *v = scalar(n);
	char *end;
	double d;

	if (v == NULL || (d = strtod(v, &end), end == v || *end != '\0') || d < lo || d > hi) {
		verr(p, n, key, "expected a number from %g to %g", lo, hi);
		return;
	}
	*out = d;
}

static void
want_duration(struct vparse *p, yaml_node_t *n, const char *key, uint64_t *ms)
{
	const char *v = scalar(n);

	if (v == NULL || duration_parse(v, ms) < 0 || *ms < 1000)
		verr(p, n, key, "expected a duration of at least 1s, like 720h");
}

static void
want_key_type(struct vparse *p, yaml_node_t *n)
{
	const char *v = scalar(n);

	if (v != NULL && strcmp(v, "rsa") == 0)
		p->c->key_rsa = 1;
	else if (v == NULL || strcmp(v, "ec") != 0)
		verr(p, n, "key_type", "expected ec or rsa");
}

static void
want_fields(struct vparse *p, yaml_node_t *n)
{
	struct vault_cert_conf *c = p->c;
	static const char *const names[] = { "certificate", "private_key", "ca_chain", "p12",
		"p12_password" };
	char **slots[] = { &c->f_certificate, &c->f_private_key, &c->f_ca_chain, &c->f_p12,
		&c->f_p12_password };
	yaml_node_pair_t *pr;

	if (n->type != YAML_MAPPING_NODE) {
		verr(p, n, "fields", "expected a map like {certificate: tls.crt}");
		return;
	}
	for (pr = n->data.mapping.pairs.start; pr < n->data.mapping.pairs.top; pr++) {
		yaml_node_t *k = yaml_document_get_node(p->doc, pr->key);
		yaml_node_t *v = yaml_document_get_node(p->doc, pr->value);
		size_t i;

		for (i = 0; i < ARRAY_LEN(names); i++)
			if (scalar(k) != NULL && strcmp(scalar(k), names[i]) == 0)
				break;
		if (i == ARRAY_LEN(names)) {
			verr(p, k, "fields", "unknown field %s (certificate, private_key, "
			    "ca_chain, p12, p12_password)", scalar(k) ? scalar(k) : "?");
			return;
		}
		free(*slots[i]);
		*slots[i] = want_text(p, v, "fields");
	}
}

static void
one_key(struct vparse *p, const char *key, yaml_node_t *v)
{
	struct vault_cert_conf *c = p->c;
	double d;

	if (strcmp(key, "pki") == 0)
		want_pki_path(p, v);
	else if (strcmp(key, "kv") == 0)
		want_kv_path(p, v);
	else if (strcmp(key, "common_name") == 0)
		c->common_name = want_text(p, v, key);
	else if (strcmp(key, "alt_names") == 0)
		want_list(p, v, key, &c->alt_names, &c->n_alt);
	else if (strcmp(key, "ip_sans") == 0)
		want_list(p, v, key, &c->ip_sans, &c->n_ip);
	else if (strcmp(key, "uri_sans") == 0)
		want_list(p, v, key, &c->uri_sans, &c->n_uri);
	else if (strcmp(key, "ttl") == 0)
		want_duration(p, v, key, &c->ttl_ms);
	else if (strcmp(key, "renew_at") == 0)
		want_number(p, v, key, 0.05, 0.95, &c->renew_at);
	else if (strcmp(key, "key_type") == 0)
		want_key_type(p, v);
	else if (strcmp(key, "key_bits") == 0) {
		d = 256;
		want_number(p, v, key, 256, 4096, &d);
		c->key_bits = (int)d;
	} else if (strcmp(key, "kv_version") == 0) {
		d = 2;
		want_number(p, v, key, 1, 2, &d);
		c->kv_version_set = d < 1.5 ? 1 : 2;
	}
	else if (strcmp(key, "refresh") == 0)
		want_duration(p, v, key, &c->refresh_ms);
	else if (strcmp(key, "fields") == 0)
		want_fields(p, v);
	else
		verr(p, v, key, "unknown key (pki, kv, common_name, alt_names, ip_sans, "
		    "uri_sans, ttl, renew_at, key_type, key_bits, kv_version, refresh, fields)");
}

static void
set_default(char **slot, const char *v)
{
	if (*slot == NULL)
		*slot = xstrdup(v);
}

/* Everything the request depends on, hashed (FNV-1a: a change detector). */
static void
make_signature(struct vault_cert_conf *c)
{
	uint64_t h = 1469598103934665603ULL;
	char *s = xasprintf("%d|%s|%s|%llu|%d|%d|%s|%s|%s|%s|%s", c->kind, c->path,
	    c->common_name ? c->common_name : "", (unsigned long long)c->ttl_ms, c->key_rsa,
	    c->key_bits, c->f_certificate, c->f_private_key, c->f_ca_chain, c->f_p12,
	    c->f_p12_password);
	char **lists[] = { c->alt_names, c->ip_sans, c->uri_sans };
	size_t ns[] = { c->n_alt, c->n_ip, c->n_uri };

	for (const char *q = s; *q != '\0'; q++)
		h = (h ^ (unsigned char)*q) * 1099511628211ULL;
	for (size_t l = 0; l < 3; l++)
		for (size_t i = 0; i < ns[l]; i++)
			for (const char *q = lists[l][i]; ; q++) {
				h = (h ^ (unsigned char)*q) * 1099511628211ULL;
				if (*q == '\0')
					break;
			}
	free(s);
	snprintf(c->signature, sizeof(c->signature), "%016llx", (unsigned long long)h);
}

static void
check_complete(struct vparse *p, yaml_node_t *node)
{
	struct vault_cert_conf *c = p->c;

	if (c->path == NULL)
		verr(p, node, "pki", "say where Vault makes this certificate: pki: "
		    "MOUNT/issue/ROLE (or MOUNT/sign/ROLE), or kv: MOUNT/data/PATH");
	else if (c->kind != VAULT_KV && c->common_name == NULL)
		verr(p, node, "common_name", "required with pki:");
	else if (c->kind == VAULT_PKI_SIGN && c->key_bits != 0 &&
	         (c->key_rsa ? c->key_bits < 2048 || c->key_bits > 4096 :
	                       c->key_bits != 256 && c->key_bits != 384))
		verr(p, node, "key_bits", c->key_rsa ? "expected 2048 to 4096 for rsa" :
		    "expected 256 or 384 for ec");
}

int
vault_conf_parse(yaml_document_t *doc, yaml_node_t *node, struct vault_cert_conf *c,
    char *err, size_t errlen)
{
	struct vparse p = { .doc = doc, .c = c, .err = err, .errlen = errlen };
	yaml_node_pair_t *pr;

	memset(c, 0, sizeof(*c));
	c->renew_at = VAULT_RENEW_AT_DEFAULT;
	c->refresh_ms = VAULT_KV_REFRESH_DEFAULT_MS;
	if (node->type != YAML_MAPPING_NODE) {
		verr(&p, node, "pki", "vault: expected a map like {pki: pki/issue/ROLE, "
		    "common_name: NAME}");
		return -1;
	}
	for (pr = node->data.mapping.pairs.start; pr < node->data.mapping.pairs.top && !p.failed;
	     pr++) {
		const char *key = scalar(yaml_document_get_node(doc, pr->key));
		one_key(&p, key ? key : "?", yaml_document_get_node(doc, pr->value));
	}
	if (!p.failed)
		check_complete(&p, node);
	if (p.failed) {
		vault_conf_free(c);
		return -1;
	}
	if (c->kind == VAULT_KV && c->kv_version_set != 0)
		c->kv_version = c->kv_version_set;
	if (c->kind == VAULT_PKI_SIGN && c->key_bits == 0)
		c->key_bits = c->key_rsa ? 2048 : 256;
	set_default(&c->f_certificate, "certificate");
	set_default(&c->f_private_key, "private_key");
	set_default(&c->f_ca_chain, "ca_chain");
	set_default(&c->f_p12, "p12");
	set_default(&c->f_p12_password, "p12_password");
	make_signature(c);
	return 0;
}

static void
free_list(char **l, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(l[i]);
	free(l);
}

void
vault_conf_free(struct vault_cert_conf *c)
{
	free(c->path);
	free(c->common_name);
	free_list(c->alt_names, c->n_alt);
	free_list(c->ip_sans, c->n_ip);
	free_list(c->uri_sans, c->n_uri);
	free(c->f_certificate);
	free(c->f_private_key);
	free(c->f_ca_chain);
	free(c->f_p12);
	free(c->f_p12_password);
	memset(c, 0, sizeof(*c));
}

static char *
dup_or_null(const char *s)
{
	return s != NULL ? xstrdup(s) : NULL;
}

static char **
dup_list(char *const *l, size_t n)
{
	char **out = xcalloc(n + 1, sizeof(*out));

	for (size_t i = 0; i < n; i++)
		out[i] = xstrdup(l[i]);
	return out;
}

void
vault_conf_copy(struct vault_cert_conf *dst, const struct vault_cert_conf *src)
{
	*dst = *src;
	dst->path = dup_or_null(src->path);
	dst->common_name = dup_or_null(src->common_name);
	dst->alt_names = dup_list(src->alt_names, src->n_alt);
	dst->ip_sans = dup_list(src->ip_sans, src->n_ip);
	dst->uri_sans = dup_list(src->uri_sans, src->n_uri);
	dst->f_certificate = dup_or_null(src->f_certificate);
	dst->f_private_key = dup_or_null(src->f_private_key);
	dst->f_ca_chain = dup_or_null(src->f_ca_chain);
	dst->f_p12 = dup_or_null(src->f_p12);
	dst->f_p12_password = dup_or_null(src->f_p12_password);
}

const char *
vault_kind_name(enum vault_kind k)
{
	switch (k) {
	case VAULT_PKI_ISSUE: return "pki/issue";
	case VAULT_PKI_SIGN: return "pki/sign";
	case VAULT_KV: return "kv";
	}
	return "?";
}
