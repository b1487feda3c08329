/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * certs_dir/NAME -> struct certset. Every file is read and parsed whole (a
 * file with any error contributes nothing), certificates and keys from all
 * files go into one pool (duplicates dropped, first file by name wins),
 * then every leaf certificate looks for its key by public key and for its
 * intermediates by issuer name and signature. Each problem is recorded as
 * "NAME/file: reason" and only that file or pair is skipped.
 */
#include "autoconf.h"

#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <yaml.h>

#include "certstore.h"
#include "log.h"
#include "util.h"
#include "x509.h"

#define CERT_FILE_MAX (1024 * 1024)
#define PASS_FILE_MAX 4096
#define CHAIN_MAX     8 /* leaf + intermediates sent */
#define RSA_MIN_BITS  2048
#define EC_MIN_BITS   256

struct found_cert {
	struct x509_cert *x;
	const char *file; /* points into scan.files */
};

struct found_key {
	struct x509_key *k;
	const char *file;
	int used; /* matched some leaf (even a rejected one) */
};

/* State of one certset_load. */
struct scan {
	struct certset *set;
	time_t now;
	char **files; /* sorted entry names */
	size_t n_files;
	struct found_cert *certs;
	size_t n_certs;
	struct found_key *keys;
	size_t n_keys;
	int yaml_loaded;
	char *yaml_password; /* from certificate.yaml; wiped on free */
	struct x509_bundle issuers; /* issuer_ca_file's certificates */
};

static void problem(struct scan *s, const char *file, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Vault's cached pairs are listed by absolute path (list_cache); the
 * directory's own files by name. */
static int
in_vault_cache(const char *file)
{
	return file[0] == '/';
}

static void
problem(struct scan *s, const char *file, const char *fmt, ...)
{
	va_list ap;
	char msg[512];

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (file != NULL && in_vault_cache(file))       /* outside NAME/ */
		config_errors_add(&s->set->problems, NULL, "%s: %s: %s", s->set->name, file, msg);
	else if (file != NULL)
		config_errors_add(&s->set->problems, NULL, "%s/%s: %s", s->set->name, file, msg);
	else
		config_errors_add(&s->set->problems, NULL, "%s: %s", s->set->name, msg);
}

static int
has_suffix(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);

	return n >= m && strcmp(s + n - m, suffix) == 0;
}

/* file relative to the set's directory (an absolute path stays as is) */
static char *
path_in(const struct scan *s, const char *file)
{
	if (file[0] == '/')
		return xstrdup(file);
	return xasprintf("%s/%s", s->set->dir, file);
}

/* Secrets must be 0600 or stricter: refuse group/other-readable ones. */
static int
mode_ok(struct scan *s, const char *file, mode_t mode, const char *what)
{
	if ((mode & (S_IRGRP | S_IROTH)) == 0)
		return 1;
	problem(s, file,
	    "%s has mode %04o; it must not be readable by group or others "
	    "(chmod 600)",
	    what, (unsigned)(mode & 07777));
	return 0;
}

/* Read certs_dir/NAME/file (following symlinks); NULL after a problem. */
static char *
slurp(struct scan *s, const char *file, size_t max, size_t *len, mode_t *mode)
{
	char *path = path_in(s, file), *buf = NULL;
	struct stat st;

	if (stat(path, &st) < 0 || (buf = read_file(path, max, len)) == NULL)
		problem(s, file, "cannot read: %s",
		    errno == EFBIG ? "file too large" : strerror(errno));
	else
		*mode = st.st_mode;
	free(path);
	return buf;
}

static void
strip_newlines(char *p, size_t *len)
{
	while (*len > 0 && (p[*len - 1] == '\n' || p[*len - 1] == '\r'))
		p[--*len] = '\0';
}

/* --- directory listing ------------------------------------------------------ */

/* Files that are never certificate material, or are read only on demand. */
static int
ignored_name(const char *n)
{
	return n[0] == '.' || strcmp(n, "certificate.yaml") == 0 || has_suffix(n, ".pass") ||
	       has_suffix(n, ".csr");
}

static int
cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Sorted names of the candidate files. A name stat() cannot follow (a
 * dangling symlink) stays, so that reading it reports why. */
static int
list_files(struct scan *s)
{
	DIR *d = opendir(s->set->dir);
	struct dirent *de;
	struct stat st;

	if (d == NULL)
		return -1;
	while ((de = readdir(d)) != NULL) {
		char *path;
		int keep;

		if (ignored_name(de->d_name))
			continue;
		path = path_in(s, de->d_name);
		keep = stat(path, &st) < 0 || S_ISREG(st.st_mode);
		free(path);
		if (!keep)
			continue;
		s->files = xrealloc(s->files, (s->n_files + 1) * sizeof(*s->files));
		s->files[s->n_files++] = xstrdup(de->d_name);
	}
	closedir(d);
	if (s->n_files > 0)
		qsort(s->files, s->n_files, sizeof(*s->files), cmp_str);
	return 0;
}

/* Vault's cached pairs (state_dir/vault/NAME/SERIAL.pem), by absolute path
 * so that problems and /status name the real file. */
static void
list_cache(struct scan *s, const char *vault_cache)
{
	DIR *d;
	struct dirent *de;
	size_t first = s->n_files;

	s->set->cache_dir = xasprintf("%s/%s", vault_cache, s->set->name);
	if ((d = opendir(s->set->cache_dir)) == NULL)
		return;         /* nothing issued yet */
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.' || !has_suffix(de->d_name, ".pem"))
			continue;
		s->files = xrealloc(s->files, (s->n_files + 1) * sizeof(*s->files));
		s->files[s->n_files++] = xasprintf("%s/%s", s->set->cache_dir, de->d_name);
	}
	closedir(d);
	if (s->n_files > first)
		qsort(s->files + first, s->n_files - first, sizeof(*s->files), cmp_str);
}

/* --- the pool of certificates and keys -------------------------------------- */

static int
cert_known(const struct scan *s, const struct x509_cert *c)
{
	for (size_t i = 0; i < s->n_certs; i++)
		if (memcmp(s->certs[i].x->fingerprint, c->fingerprint, 32) == 0)
			return 1;
	return 0;
}

static struct found_key *
key_by_spki(const struct scan *s, const unsigned char spki[32])
{
	for (size_t i = 0; i < s->n_keys; i++)
		if (memcmp(s->keys[i].k->spki_sha256, spki, 32) == 0)
			return &s->keys[i];
	return NULL;
}

/* Take everything from b (which ends empty); duplicates are dropped. */
static void
pool_add(struct scan *s, const char *file, struct x509_bundle *b)
{
	for (size_t i = 0; i < b->n_certs; i++) {
		if (cert_known(s, b->certs[i]))
			continue;
		s->certs = xrealloc(s->certs, (s->n_certs + 1) * sizeof(*s->certs));
		s->certs[s->n_certs++] = (struct found_cert){b->certs[i], file};
		b->certs[i] = NULL;
	}
	for (size_t i = 0; i < b->n_keys; i++) {
		if (key_by_spki(s, b->keys[i]->spki_sha256) != NULL)
			continue;
		s->keys = xrealloc(s->keys, (s->n_keys + 1) * sizeof(*s->keys));
		s->keys[s->n_keys++] = (struct found_key){b->keys[i], file, 0};
		b->keys[i] = NULL;
	}
	x509_bundle_clear(b);
}

/* --- PEM / DER files -------------------------------------------------------- */

static void
load_plain(struct scan *s, const char *file)
{
	struct x509_bundle b = {0};
	char err[256], *buf;
	size_t len = 0;
	mode_t mode = 0;

	if ((buf = slurp(s, file, CERT_FILE_MAX, &len, &mode)) == NULL)
		return;
	if (x509_parse(buf, len, &b, err, sizeof(err)) < 0)
		problem(s, file, "%s", err);
	else if (b.n_keys > 0 && !mode_ok(s, file, mode, "private key file"))
		x509_bundle_clear(&b);
	else
		pool_add(s, file, &b);
	wipe_free(buf, len);
}

/* --- PKCS#12 and its password ------------------------------------------------ */

/* The value of a top-level scalar key in a YAML mapping, or NULL. */
static const char *
yaml_top_scalar(yaml_document_t *doc, const char *key)
{
	yaml_node_t *root = yaml_document_get_root_node(doc);
	yaml_node_pair_t *pair;

	if (root == NULL || root->type != YAML_MAPPING_NODE)
		return NULL;
	for (pair = root->data.mapping.pairs.start; pair < root->data.mapping.pairs.top; pair++) {
		yaml_node_t *k = yaml_document_get_node(doc, pair->key);
		yaml_node_t *v = yaml_document_get_node(doc, pair->value);
		if (k != NULL && v != NULL && k->type == YAML_SCALAR_NODE &&
		    v->type == YAML_SCALAR_NODE && strcmp((char *)k->data.scalar.value, key) == 0)
			return (const char *)v->data.scalar.value;
	}
	return NULL;
}

/* Password from a file (trailing newlines stripped); NULL after a problem. */
static char *
password_file(struct scan *s, const char *file)
{
	size_t len = 0;
	mode_t mode = 0;
	char *pw = slurp(s, file, PASS_FILE_MAX, &len, &mode);

	if (pw == NULL)
		return NULL;
	if (!mode_ok(s, file, mode, "password file")) {
		wipe_free(pw, len);
		return NULL;
	}
	strip_newlines(pw, &len);
	return pw;
}

/* A mapping node's value for key, or NULL. */
static yaml_node_t *
yaml_map_get(yaml_document_t *doc, yaml_node_t *map, const char *key)
{
	yaml_node_pair_t *pair;

	if (map == NULL || map->type != YAML_MAPPING_NODE)
		return NULL;
	for (pair = map->data.mapping.pairs.start; pair < map->data.mapping.pairs.top; pair++) {
		yaml_node_t *k = yaml_document_get_node(doc, pair->key);
		if (k != NULL && k->type == YAML_SCALAR_NODE &&
		    strcmp((char *)k->data.scalar.value, key) == 0)
			return yaml_document_get_node(doc, pair->value);
	}
	return NULL;
}

static const char *
yaml_scalar(yaml_node_t *n)
{
	return n != NULL && n->type == YAML_SCALAR_NODE ? (const char *)n->data.scalar.value : NULL;
}

static void
yaml_duration(struct scan *s, yaml_document_t *doc, yaml_node_t *rot, const char *key,
    uint64_t *ms, int *has)
{
	yaml_node_t *n = yaml_map_get(doc, rot, key);
	const char *v = yaml_scalar(n);

	if (n == NULL)
		return;
	if (v == NULL || duration_parse(v, ms) < 0) {
		problem(s, "certificate.yaml", "line %zu: rotation.%s: expected a duration "
		    "like 72h", n->start_mark.line + 1, key);
		return;
	}
	*has = 1;
}

/* rotation: {activate, activate_before_expiry, warn_before} */
static void
yaml_rotation(struct scan *s, yaml_document_t *doc, yaml_node_t *rot)
{
	struct cert_options *o = &s->set->opts;
	yaml_node_t *n = yaml_map_get(doc, rot, "activate");
	const char *v = yaml_scalar(n);

	if (n != NULL) {
		if (v != NULL && strcmp(v, "immediately") == 0)
			o->rotation.activate = ACTIVATE_IMMEDIATELY;
		else if (v != NULL && strcmp(v, "before-expiry") == 0)
			o->rotation.activate = ACTIVATE_BEFORE_EXPIRY;
		else {
			problem(s, "certificate.yaml", "line %zu: rotation.activate: expected "
			    "immediately or before-expiry", n->start_mark.line + 1);
			return;
		}
		o->has_activate = 1;
	}
	yaml_duration(s, doc, rot, "activate_before_expiry",
	    &o->rotation.activate_before_expiry_ms, &o->has_before_expiry);
	yaml_duration(s, doc, rot, "warn_before", &o->rotation.warn_before_ms,
	    &o->has_warn_before);
}

/* issuer_ca_file: relative to the certificate directory. */
static void
yaml_issuer(struct scan *s, const char *file)
{
	char *path = file[0] == '/' ? xstrdup(file) : path_in(s, file);
	size_t len = 0;
	char *buf = read_file(path, CERT_FILE_MAX, &len);
	char err[160] = "no certificate in it";

	s->set->opts.issuer_ca_file = path;
	if (buf == NULL) {
		problem(s, "certificate.yaml", "issuer_ca_file %s: %s", path, strerror(errno));
		return;
	}
	if (x509_parse(buf, len, &s->issuers, err, sizeof(err)) < 0 || s->issuers.n_certs == 0)
		problem(s, "certificate.yaml", "issuer_ca_file %s: %s", path, err);
	free(buf);
}

static void
yaml_vault(struct scan *s, yaml_document_t *doc, yaml_node_t *n)
{
	struct vault_cert_conf *c = xcalloc(1, sizeof(*c));
	char err[320];

	if (vault_conf_parse(doc, n, c, err, sizeof(err)) < 0) {
		problem(s, "certificate.yaml", "%s", err);
		free(c);
		/* still Vault's: no "no files" error for what Vault would make */
		s->set->opts.vault_broken = 1;
		return;
	}
	s->set->opts.vault = c;
}

/* certificate.yaml (once per load): password, p12_password_file, rotation,
 * issuer_ca_file, vault. */
static void
yaml_password_load(struct scan *s, const char *buf, size_t len, mode_t mode)
{
	yaml_parser_t parser;
	yaml_document_t doc;
	yaml_node_t *root;
	const char *pw, *pwfile, *issuer;

	yaml_parser_initialize(&parser);
	yaml_parser_set_input_string(&parser, (const unsigned char *)buf, len);
	if (!yaml_parser_load(&parser, &doc)) {
		problem(s, "certificate.yaml", "cannot parse at line %zu: %s",
		    parser.problem_mark.line + 1, parser.problem ? parser.problem : "error");
		yaml_parser_delete(&parser);
		return;
	}
	root = yaml_document_get_root_node(&doc);
	pw = yaml_top_scalar(&doc, "password");
	pwfile = yaml_top_scalar(&doc, "p12_password_file");
	if (pw != NULL && mode_ok(s, "certificate.yaml", mode, "file with a password"))
		s->yaml_password = xstrdup(pw);
	else if (pw == NULL && pwfile != NULL)
		s->yaml_password = password_file(s, pwfile);
	if (yaml_map_get(&doc, root, "rotation") != NULL)
		yaml_rotation(s, &doc, yaml_map_get(&doc, root, "rotation"));
	if ((issuer = yaml_top_scalar(&doc, "issuer_ca_file")) != NULL)
		yaml_issuer(s, issuer);
	if (yaml_map_get(&doc, root, "vault") != NULL)
		yaml_vault(s, &doc, yaml_map_get(&doc, root, "vault"));
	yaml_document_delete(&doc);
	yaml_parser_delete(&parser);
}

static const char *
yaml_password(struct scan *s)
{
	char *path, *buf;
	size_t len = 0;
	mode_t mode = 0;
	struct stat st;

	if (s->yaml_loaded)
		return s->yaml_password;
	s->yaml_loaded = 1;
	path = path_in(s, "certificate.yaml");
	if (stat(path, &st) == 0 &&
	    (buf = slurp(s, "certificate.yaml", CERT_FILE_MAX, &len, &mode)) != NULL) {
		yaml_password_load(s, buf, len, mode);
		wipe_free(buf, len);
	}
	free(path);
	return s->yaml_password;
}

/* X.p12.pass, else certificate.yaml; *missing when neither exists. */
static char *
p12_password(struct scan *s, const char *file, int *missing)
{
	char *passfile = xasprintf("%s.pass", file), *path = path_in(s, passfile);
	const char *ypw;
	char *pw = NULL;
	struct stat st;

	*missing = 0;
	if (stat(path, &st) == 0)
		pw = password_file(s, passfile);
	else if ((ypw = yaml_password(s)) != NULL)
		pw = xstrdup(ypw);
	else {
		*missing = 1;
		pw = xstrdup(""); /* an export without password */
	}
	free(passfile);
	free(path);
	return pw;
}

static void
load_p12(struct scan *s, const char *file)
{
	struct x509_bundle b = {0};
	char err[320], *buf, *pw;
	size_t len = 0;
	mode_t mode = 0;
	int missing;

	if ((buf = slurp(s, file, CERT_FILE_MAX, &len, &mode)) == NULL)
		return;
	if (!mode_ok(s, file, mode, "PKCS#12 file") ||
	    (pw = p12_password(s, file, &missing)) == NULL) {
		free(buf);
		return;
	}
	if (x509_parse_pkcs12(buf, len, pw, &b, err, sizeof(err)) == 0)
		pool_add(s, file, &b);
	else if (missing && strstr(err, "wrong password") != NULL)
		problem(s, file,
		    "no password for it: put it in %s.pass (mode 0600) or in "
		    "certificate.yaml (password:)",
		    file);
	else
		problem(s, file, "%s", err);
	wipe_free(pw, strlen(pw));
	free(buf);
}

static void
load_file(struct scan *s, const char *file)
{
	if (has_suffix(file, ".p12") || has_suffix(file, ".pfx"))
		load_p12(s, file);
	else
		load_plain(s, file);
}

/* --- pairs ---------------------------------------------------------------- */

static const struct x509_cert *
find_issuer(const struct scan *s, const struct x509_cert *c)
{
	for (size_t i = 0; i < s->n_certs; i++)
		if (s->certs[i].x != c && x509_cert_issued_by(c, s->certs[i].x))
			return s->certs[i].x;
	return NULL;
}

/* Leaf first, then intermediates up to (not including) a self-signed root. */
static int
chain_build(
    const struct scan *s, const struct x509_cert *leaf, const struct x509_cert *chain[CHAIN_MAX])
{
	const struct x509_cert *cur = leaf, *next;
	int n = 0;

	chain[n++] = leaf;
	while (n < CHAIN_MAX && !cur->self_signed && (next = find_issuer(s, cur)) != NULL &&
	       !next->self_signed) {
		for (int i = 0; i < n; i++)
			if (chain[i] == next)
				return n; /* a loop of cross-signed CAs */
		chain[n++] = next;
		cur = next;
	}
	return n;
}

static char *
chain_pem(const struct x509_cert *const *chain, int n, size_t *len)
{
	char *out = NULL;
	size_t total = 0;

	for (int i = 0; i < n; i++) {
		size_t l;
		char *pem = x509_cert_pem(chain[i], &l);
		out = xrealloc(out, total + l + 1);
		memcpy(out + total, pem, l + 1);
		total += l;
		free(pem);
	}
	*len = total;
	return out;
}

static struct cert_material *
material_new(const struct found_cert *leaf, const struct found_key *key,
    const struct x509_cert *const *chain, int n)
{
	struct cert_material *m = xcalloc(1, sizeof(*m));
	const struct x509_cert *x = leaf->x;

	m->chain_pem = chain_pem(chain, n, &m->chain_pem_len);
	m->chain_len = n;
	m->key_der = xmalloc(key->k->der_len);
	memcpy(m->key_der, key->k->der, key->k->der_len);
	m->key_der_len = key->k->der_len;
	m->subject = xstrdup(x->subject);
	m->issuer = xstrdup(x->issuer);
	m->serial_hex = xstrdup(x->serial_hex);
	m->not_before = x->not_before;
	m->not_after = x->not_after;
	memcpy(m->spki_sha256, x->spki_sha256, 32);
	memcpy(m->fingerprint_sha256, x->fingerprint, 32);
	snprintf(m->key_desc, sizeof(m->key_desc), "%s", x->key_desc);
	m->cert_file = xstrdup(leaf->file);
	m->key_file = xstrdup(key->file);
	return m;
}

void
cert_material_free(struct cert_material *m)
{
	if (m == NULL)
		return;
	free(m->chain_pem);
	wipe_free(m->key_der, m->key_der_len);
	free(m->subject);
	free(m->issuer);
	free(m->serial_hex);
	free(m->cert_file);
	free(m->key_file);
	free(m);
}

/* Checks a leaf passes on its own; 0, or -1 after recording why not. */
static int
leaf_usable(struct scan *s, const struct found_cert *fc)
{
	const struct x509_cert *x = fc->x;
	char when[32];

	if (s->now > x->not_after && in_vault_cache(fc->file)) {
		return -1;      /* Vault's cache: vault.c removes it, nothing to fix */
	} else if (s->now > x->not_after) {
		x509_time_format(x->not_after, when, sizeof(when));
		problem(s, fc->file, "expired on %s", when);
	} else if (x->has_eku && !x->eku_client_auth)
		problem(s, fc->file,
		    "not valid for TLS client authentication "
		    "(extendedKeyUsage lacks clientAuth)");
	else if (x->key_type == X509_KEY_OTHER)
		problem(s, fc->file, "unsupported key type (RSA and EC keys are supported)");
	else if ((x->key_type == X509_KEY_RSA && x->key_bits < RSA_MIN_BITS) ||
	         (x->key_type == X509_KEY_EC && x->key_bits < EC_MIN_BITS))
		problem(s, fc->file, "key too weak: %s (at least RSA %d or EC %d bits)",
		    x->key_desc, RSA_MIN_BITS, EC_MIN_BITS);
	else
		return 0;
	return -1;
}

/* With issuer_ca_file, the chain must end at (or under) one of its CAs. */
static int
issuer_rejects(struct scan *s, const struct found_cert *fc,
    const struct x509_cert *const *chain, int n)
{
	const struct x509_cert *top = chain[n - 1];

	if (s->set->opts.issuer_ca_file == NULL)
		return 0;
	for (size_t i = 0; i < s->issuers.n_certs; i++) {
		const struct x509_cert *ca = s->issuers.certs[i];
		if (memcmp(top->fingerprint, ca->fingerprint, 32) == 0 ||
		    x509_cert_issued_by(top, ca))
			return 0;
	}
	problem(s, fc->file, "not issued by the CA in issuer_ca_file %s (issuer: %s)",
	    s->set->opts.issuer_ca_file, top->issuer);
	return 1;
}

static void
set_add_pair(struct certset *set, struct cert_material *m)
{
	set->pairs = xrealloc(set->pairs, (set->n_pairs + 1) * sizeof(*set->pairs));
	set->pairs[set->n_pairs++] = m;
}

static void
pair_leaf(struct scan *s, const struct found_cert *fc)
{
	const struct x509_cert *chain[CHAIN_MAX];
	struct found_key *key = key_by_spki(s, fc->x->spki_sha256);
	struct cert_material *m;
	char err[160];
	int n;

	if (key != NULL)
		key->used = 1;
	if (leaf_usable(s, fc) < 0)
		return;
	if (key == NULL) {
		problem(s, fc->file, "no private key matches this certificate");
		return;
	}
	n = chain_build(s, fc->x, chain);
	if (issuer_rejects(s, fc, chain, n))
		return;
	m = material_new(fc, key, chain, n);
	if (x509_check_pair(
	        m->chain_pem, m->chain_pem_len, m->key_der, m->key_der_len, err, sizeof(err)) < 0) {
		problem(s, fc->file, "%s (key from %s)", err, key->file);
		cert_material_free(m);
		return;
	}
	set_add_pair(s->set, m);
}

static void
report_orphan_keys(struct scan *s)
{
	for (size_t i = 0; i < s->n_keys; i++) {
		const struct found_key *k = &s->keys[i];
		const struct found_cert *ca = NULL;

		if (k->used)
			continue;
		for (size_t j = 0; j < s->n_certs && ca == NULL; j++)
			if (memcmp(s->certs[j].x->spki_sha256, k->k->spki_sha256, 32) == 0)
				ca = &s->certs[j];
		if (ca != NULL)
			problem(s, k->file,
			    "private key of CA certificate %s, not of a client "
			    "certificate",
			    ca->x->subject);
		else
			problem(s, k->file, "no certificate matches this private key");
	}
}

/* --- classification ------------------------------------------------------- */

/* Newest not_before first; ties by later not_after, then serial. */
static int
cmp_pair(const void *a, const void *b)
{
	const struct cert_material *x = *(struct cert_material *const *)a;
	const struct cert_material *y = *(struct cert_material *const *)b;

	if (x->not_before != y->not_before)
		return x->not_before > y->not_before ? -1 : 1;
	if (x->not_after != y->not_after)
		return x->not_after > y->not_after ? -1 : 1;
	return strcmp(x->serial_hex, y->serial_hex);
}

static void
classify(struct scan *s)
{
	struct certset *set = s->set;
	char when[32];

	if (set->n_pairs > 1)
		qsort(set->pairs, set->n_pairs, sizeof(*set->pairs), cmp_pair);
	for (size_t i = 0; i < set->n_pairs && set->current == NULL; i++)
		if (set->pairs[i]->not_before <= s->now && s->now <= set->pairs[i]->not_after)
			set->current = set->pairs[i];
	if (set->n_pairs == 0 && set->problems.n == 0 && set->opts.vault == NULL)
		problem(s, NULL, "no certificate and private key found");
	else if (set->n_pairs > 0 && set->current == NULL) {
		x509_time_format(set->pairs[set->n_pairs - 1]->not_before, when, sizeof(when));
		problem(
		    s, NULL, "no certificate is valid yet (the first one is valid from %s)", when);
	}
}

static void
scan_free(struct scan *s)
{
	for (size_t i = 0; i < s->n_certs; i++)
		x509_cert_free(s->certs[i].x);
	for (size_t i = 0; i < s->n_keys; i++)
		x509_key_free(s->keys[i].k);
	for (size_t i = 0; i < s->n_files; i++)
		free(s->files[i]);
	if (s->yaml_password != NULL)
		wipe_free(s->yaml_password, strlen(s->yaml_password));
	x509_bundle_clear(&s->issuers);
	free(s->certs);
	free(s->keys);
	free(s->files);
}

struct certset *
certset_load(const char *certs_dir, const char *vault_cache, const char *name, time_t now,
    struct config_errors *errs)
{
	struct certset *set;
	struct scan s = {.now = now};

	if (name[0] == '\0' || name[0] == '.' || strchr(name, '/') != NULL) {
		if (errs != NULL)
			config_errors_add(errs, NULL, "\"%s\": not a certificate name", name);
		return NULL;
	}
	s.set = set = xcalloc(1, sizeof(*set));
	set->name = xstrdup(name);
	set->dir = xasprintf("%s/%s", certs_dir, name);
	if (list_files(&s) < 0) {
		/* an empty set that says why: the mapping decides what that means
		 * (an error at start, 503 or the old certificate on a reload) */
		config_errors_add(&set->problems, NULL, "%s: cannot read certificate "
		    "directory: %s", set->dir, strerror(errno));
		scan_free(&s);
		return set;
	}
	(void)yaml_password(&s);        /* certificate.yaml first: options */
	if ((set->opts.vault != NULL || set->opts.vault_broken) && vault_cache != NULL)
		list_cache(&s, vault_cache);
	for (size_t i = 0; i < s.n_files; i++)
		load_file(&s, s.files[i]);
	for (size_t i = 0; i < s.n_certs; i++)
		if (!s.certs[i].x->is_ca)
			pair_leaf(&s, &s.certs[i]);
	report_orphan_keys(&s);
	classify(&s);
	scan_free(&s);
	return set;
}

void
certset_free(struct certset *set)
{
	if (set == NULL)
		return;
	for (size_t i = 0; i < set->n_pairs; i++)
		cert_material_free(set->pairs[i]);
	free(set->pairs);
	config_errors_clear(&set->problems);
	free(set->opts.issuer_ca_file);
	if (set->opts.vault != NULL) {
		vault_conf_free(set->opts.vault);
		free(set->opts.vault);
	}
	free(set->cache_dir);
	free(set->name);
	free(set->dir);
	free(set);
}

char *
cert_material_describe(const struct cert_material *m)
{
	char from[32], to[32];

	x509_time_format(m->not_before, from, sizeof(from));
	x509_time_format(m->not_after, to, sizeof(to));
	if (strcmp(m->cert_file, m->key_file) == 0)
		return xasprintf("%s serial %s (%s, %s..%s, %s)", m->subject, m->serial_hex,
		    m->key_desc, from, to, m->cert_file);
	return xasprintf("%s serial %s (%s, %s..%s, %s + %s)", m->subject, m->serial_hex,
	    m->key_desc, from, to, m->cert_file, m->key_file);
}

char *
certset_describe_current(const struct certset *set)
{
	size_t newer = 0;
	char *cur, *out;

	if (set->current == NULL)
		return xasprintf("%s: no current certificate (%zu problem%s)", set->name,
		    set->problems.n, set->problems.n == 1 ? "" : "s");
	for (size_t i = 0; i < set->n_pairs && set->pairs[i] != set->current; i++)
		newer++;
	cur = cert_material_describe(set->current);
	if (newer > 0)
		out = xasprintf("%s: current %s; %zu newer pair%s not yet valid", set->name, cur,
		    newer, newer == 1 ? "" : "s");
	else
		out = xasprintf("%s: current %s", set->name, cur);
	free(cur);
	return out;
}

struct cert_material *
cert_material_dup(const struct cert_material *m)
{
	struct cert_material *d = xcalloc(1, sizeof(*d));

	*d = *m;
	d->chain_pem = xmalloc(m->chain_pem_len + 1);
	memcpy(d->chain_pem, m->chain_pem, m->chain_pem_len + 1);
	d->key_der = xmalloc(m->key_der_len);
	memcpy(d->key_der, m->key_der, m->key_der_len);
	d->subject = xstrdup(m->subject);
	d->issuer = xstrdup(m->issuer);
	d->serial_hex = xstrdup(m->serial_hex);
	d->cert_file = xstrdup(m->cert_file);
	d->key_file = xstrdup(m->key_file);
	return d;
}

void
certset_rotation(const struct certset *set, const struct rotation_conf *global,
    struct rotation_conf *out)
{
	const struct cert_options *o = &set->opts;

	*out = *global;
	if (o->has_activate)
		out->activate = o->rotation.activate;
	if (o->has_before_expiry)
		out->activate_before_expiry_ms = o->rotation.activate_before_expiry_ms;
	if (o->has_warn_before)
		out->warn_before_ms = o->rotation.warn_before_ms;
}

static void
next_event(time_t t, time_t now, time_t *next)
{
	if (t > now && (*next == 0 || t < *next))
		*next = t;
}

const struct cert_material *
certset_choose(const struct certset *set, const struct rotation_conf *rot, time_t now,
    time_t *next_change)
{
	const struct cert_material *pick = NULL, *newest = NULL;
	time_t window = (time_t)(rot->activate_before_expiry_ms / 1000), next = 0;

	/* pairs are sorted newest first; walk oldest to newest */
	for (size_t i = set->n_pairs; i-- > 0;) {
		const struct cert_material *m = set->pairs[i];
		next_event(m->not_before, now, &next);
		next_event(m->not_after, now, &next);
		if (rot->activate == ACTIVATE_BEFORE_EXPIRY)
			next_event(m->not_after - window, now, &next);
		if (m->not_before > now || now >= m->not_after)
			continue;
		newest = m;
		if (pick == NULL && rot->activate == ACTIVATE_BEFORE_EXPIRY &&
		    now < m->not_after - window)
			pick = m;
	}
	if (next_change != NULL)
		*next_change = next;
	return pick != NULL ? pick : newest;
}
