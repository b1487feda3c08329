/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * What a job asks Vault (pki/issue, pki/sign with a key made here, a KV
 * read) and how the answer becomes a cached pair: the certificate and the
 * key must match, the leaf must not be expired, and only then is the file
 * written. A bad answer is refused with its reason; the cache is untouched.
 */
#include "autoconf.h"

#include <event2/buffer.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "log.h"
#include "vault_int.h"
#include "x509.h"

/* --- request bodies ------------------------------------------------------------ */

static void
body_str(struct evbuffer *b, const char *key, const char *v)
{
	evbuffer_add_printf(b, "%s\"%s\":", evbuffer_get_length(b) > 1 ? "," : "", key);
	json_write_string(b, v);
}

/* Vault's comma-string-slice: "a,b" */
static void
body_list(struct evbuffer *b, const char *key, char *const *l, size_t n)
{
	struct evbuffer *v;

	if (n == 0)
		return;
	v = evbuffer_new();
	for (size_t i = 0; i < n; i++)
		evbuffer_add_printf(v, "%s%s", i ? "," : "", l[i]);
	evbuffer_add(v, "", 1);
	body_str(b, key, (const char *)evbuffer_pullup(v, -1));
	evbuffer_free(v);
}

static void
body_pki(struct evbuffer *b, const struct vault_cert_conf *c)
{
	char ttl[32];

	body_str(b, "common_name", c->common_name);
	body_list(b, "alt_names", c->alt_names, c->n_alt);
	body_list(b, "ip_sans", c->ip_sans, c->n_ip);
	body_list(b, "uri_sans", c->uri_sans, c->n_uri);
	if (c->ttl_ms > 0) {
		snprintf(ttl, sizeof(ttl), "%llus", (unsigned long long)(c->ttl_ms / 1000));
		body_str(b, "ttl", ttl);
	}
	body_str(b, "format", "pem");
}

/* pki/sign: the key is made here and never leaves the host. */
static int
body_csr(struct vjob *j, struct evbuffer *b, char *err, size_t errlen)
{
	const struct vault_cert_conf *c = &j->conf;
	char *csr;

	if (j->sign_key == NULL &&
	    (j->sign_key = x509_key_generate(c->key_rsa ? X509_KEY_RSA : X509_KEY_EC,
	         c->key_bits, err, errlen)) == NULL)
		return -1;
	csr = x509_csr_pem(j->sign_key, c->common_name, c->alt_names, c->n_alt, c->ip_sans,
	    c->n_ip, c->uri_sans, c->n_uri, err, errlen);
	if (csr == NULL)
		return -1;
	body_str(b, "csr", csr);
	free(csr);
	return 0;
}

int
vault_job_send(struct vjob *j, vhttp_cb cb, char *err, size_t errlen)
{
	struct evbuffer *b;
	int rc = 0;

	if (j->conf.kind == VAULT_KV) {
		j->req = vault_request("GET", j->conf.path, V.token, NULL, 0, cb, j, err, errlen);
		return j->req != NULL ? 0 : -1;
	}
	b = evbuffer_new();
	evbuffer_add(b, "{", 1);
	if (j->conf.kind == VAULT_PKI_SIGN)
		rc = body_csr(j, b, err, errlen);
	if (rc == 0) {
		body_pki(b, &j->conf);
		if (j->conf.kind == VAULT_PKI_ISSUE)
			body_str(b, "private_key_format", "pkcs8");
		evbuffer_add(b, "}", 1);
		j->req = vault_request("POST", j->conf.path, V.token,
		    (const char *)evbuffer_pullup(b, -1), evbuffer_get_length(b), cb, j, err,
		    errlen);
		rc = j->req != NULL ? 0 : -1;
	}
	evbuffer_free(b);
	return rc;
}

/* --- answers into pairs --------------------------------------------------------- */

/* A growing buffer for key material: wiped whenever it moves or ends. */
struct sbuf {
	char *p;
	size_t len, cap;
};

static void
sbuf_add(struct sbuf *b, const char *s, size_t n)
{
	if (b->len + n + 1 > b->cap) {
		size_t cap = (b->len + n + 1) * 2;
		char *p = xmalloc(cap);
		if (b->len > 0)
			memcpy(p, b->p, b->len);
		wipe_free(b->p, b->cap);
		b->p = p;
		b->cap = cap;
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

static void
add_pem(struct sbuf *b, const char *pem)
{
	size_t n = strlen(pem);

	sbuf_add(b, pem, n);
	if (n > 0 && pem[n - 1] != '\n')        /* Vault trims the last newline */
		sbuf_add(b, "\n", 1);
}

/* A string, or an array of strings (ca_chain in PKI answers). */
static void
add_pem_node(struct sbuf *b, const struct json *j, int node)
{
	if (json_string(j, node) != NULL) {
		add_pem(b, json_string(j, node));
		return;
	}
	for (size_t i = 0; i < json_array_len(j, node); i++)
		if (json_string(j, json_array_at(j, node, i)) != NULL)
			add_pem(b, json_string(j, json_array_at(j, node, i)));
}

/* One key, a leaf that it belongs to, not expired. */
static int
check_pair(const char *pem, size_t len, struct vault_material *m, char *err, size_t errlen)
{
	struct x509_bundle b = { 0 };
	const struct x509_cert *leaf = NULL;
	char why[200];
	int rc = -1;

	if (x509_parse(pem, len, &b, why, sizeof(why)) < 0) {
		snprintf(err, errlen, "refused Vault's answer: %s", why);
		return -1;
	}
	leaf = x509_bundle_leaf(&b);
	if (leaf == NULL || b.n_keys != 1)
		snprintf(err, errlen, "refused Vault's answer: it holds %s and %zu private keys "
		    "(expected a certificate and its key)", leaf ? "a certificate" :
		    "no leaf certificate", b.n_keys);
	else if (memcmp(leaf->spki_sha256, b.keys[0]->spki_sha256, 32) != 0)
		snprintf(err, errlen, "refused Vault's answer: certificate serial %s and the "
		    "private key do not match", leaf->serial_hex);
	else if (leaf->not_after <= time(NULL))
		snprintf(err, errlen, "refused Vault's answer: certificate serial %s is expired",
		    leaf->serial_hex);
	else {
		snprintf(m->serial, sizeof(m->serial), "%s", leaf->serial_hex);
		m->not_after = leaf->not_after;
		memcpy(m->fingerprint, leaf->fingerprint, 32);
		rc = 0;
	}
	x509_bundle_clear(&b);
	return rc;
}


static int
take_pki(struct vjob *j, const struct json *js, int data, struct sbuf *b, char *err,
    size_t errlen)
{
	const char *cert = json_string(js, json_get(js, data, "certificate"));
	const char *key = json_string(js, json_get(js, data, "private_key"));
	char *pem;
	size_t len;

	if (cert == NULL || (j->conf.kind == VAULT_PKI_ISSUE && key == NULL)) {
		snprintf(err, errlen, "refused Vault's answer: no data.certificate%s",
		    j->conf.kind == VAULT_PKI_ISSUE ? " or data.private_key" : "");
		return -1;
	}
	add_pem(b, cert);
	if (json_get(js, data, "ca_chain") != 0)
		add_pem_node(b, js, json_get(js, data, "ca_chain"));
	else if (json_get(js, data, "issuing_ca") != 0)
		add_pem_node(b, js, json_get(js, data, "issuing_ca"));
	if (j->conf.kind == VAULT_PKI_ISSUE) {
		add_pem(b, key);
		return 0;
	}
	pem = x509_key_pem(j->sign_key, &len);
	sbuf_add(b, pem, len);
	wipe_free(pem, len);
	return 0;
}

/* KV: {certificate, private_key[, ca_chain]} or {p12 (base64), p12_password} */
static int
take_kv_p12(const struct vjob *j, const struct json *js, int data, struct sbuf *b,
    char *err, size_t errlen)
{
	const char *p12 = json_string(js, json_get(js, data, j->conf.f_p12));
	const char *pw = json_string(js, json_get(js, data, j->conf.f_p12_password));
	struct x509_bundle bundle = { 0 };
	unsigned char *der;
	size_t der_len, len;
	char why[200], *pem;

	if ((der = x509_base64_decode(p12, strlen(p12), &der_len)) == NULL) {
		snprintf(err, errlen, "refused Vault's answer: %s.%s is not base64", j->conf.path,
		    j->conf.f_p12);
		return -1;
	}
	if (x509_parse_pkcs12(der, der_len, pw ? pw : "", &bundle, why, sizeof(why)) < 0) {
		snprintf(err, errlen, "refused Vault's answer: %s.%s: %s", j->conf.path,
		    j->conf.f_p12, why);
		wipe_free(der, der_len);
		return -1;
	}
	wipe_free(der, der_len);
	for (size_t i = 0; i < bundle.n_certs; i++) {
		pem = x509_cert_pem(bundle.certs[i], &len);
		sbuf_add(b, pem, len);
		free(pem);
	}
	for (size_t i = 0; i < bundle.n_keys; i++) {
		/* PKCS#12 hands out EC keys without their curve: store PKCS#8,
		 * which names it, so that other tools read the cache too */
		struct x509_key k8 = *bundle.keys[i];
		size_t len8 = 0;
		unsigned char *der8 = x509_key_pkcs8(bundle.keys[i], &len8);
		if (der8 != NULL) {
			k8.der = der8;
			k8.der_len = len8;
		}
		pem = x509_key_pem(&k8, &len);
		sbuf_add(b, pem, len);
		wipe_free(pem, len);
		if (der8 != NULL)
			wipe_free(der8, len8);
	}
	x509_bundle_clear(&bundle);
	return 0;
}

static int
take_kv(const struct vjob *j, const struct json *js, int root, struct sbuf *b,
    struct vault_material *m, char *err, size_t errlen)
{
	int data = j->conf.kv_version == 2 ? json_path(js, root, "data.data") :
	                                     json_get(js, root, "data");
	const char *cert, *key;
	long long v;

	if (j->conf.kv_version == 2 &&
	    json_int(js, json_path(js, root, "data.metadata.version"), &v) == 0)
		m->kv_version = v;
	if (!json_is_object(js, data)) {
		snprintf(err, errlen, "%s holds no data (a deleted or destroyed version?)",
		    j->conf.path);
		return -1;
	}
	if (json_string(js, json_get(js, data, j->conf.f_p12)) != NULL)
		return take_kv_p12(j, js, data, b, err, errlen);
	cert = json_string(js, json_get(js, data, j->conf.f_certificate));
	key = json_string(js, json_get(js, data, j->conf.f_private_key));
	if (cert == NULL || key == NULL) {
		snprintf(err, errlen, "%s has neither %s nor %s and %s", j->conf.path,
		    j->conf.f_p12, j->conf.f_certificate, j->conf.f_private_key);
		return -1;
	}
	add_pem(b, cert);
	add_pem_node(b, js, json_get(js, data, j->conf.f_ca_chain));
	add_pem(b, key);
	return 0;
}

int
vault_material_take(struct vjob *j, const struct vault_answer *a, struct vault_material *m,
    char *err, size_t errlen)
{
	struct sbuf b = { 0 };
	int root, rc;

	if (a->j == NULL || !json_is_object(a->j, (root = json_root(a->j)))) {
		snprintf(err, errlen, "refused Vault's answer: HTTP %ld without a JSON object",
		    a->status);
		return -1;
	}
	if (j->conf.kind == VAULT_KV)
		rc = take_kv(j, a->j, root, &b, m, err, errlen);
	else
		rc = take_pki(j, a->j, json_get(a->j, root, "data"), &b, err, errlen);
	/* the buffer is the material now (wiped by vault_material_free) */
	m->pem = b.p;
	m->len = b.len;
	m->cap = b.cap;
	if (rc == 0 && m->pem == NULL) {
		snprintf(err, errlen, "refused Vault's answer: it holds no PEM");
		rc = -1;
	}
	if (rc == 0)
		rc = check_pair(m->pem, m->len, m, err, errlen);
	if (rc < 0) {
		vault_material_free(m);
		return -1;
	}
	if (j->conf.kind == VAULT_KV) {
		j->st.kv_version = m->kv_version;
		if (vault_cache_has(j->cache_dir, m->fingerprint) &&
		    strcmp(j->cached.signature, j->conf.signature) == 0)
			vault_material_free(m);     /* the version we have */
	}
	return 0;
}

void
vault_material_free(struct vault_material *m)
{
	if (m->pem != NULL)
		wipe_free(m->pem, m->cap);
	m->pem = NULL;
	m->len = m->cap = 0;
}

/* --- into the cache ------------------------------------------------------------- */

int
vault_material_store(struct vjob *j, const struct vault_material *m, char *err, size_t errlen)
{
	char *root = xstrdup(j->cache_dir), *slash = strrchr(root, '/');
	char *file = xasprintf("%s.pem", m->serial), *header;
	char nb[32], na[32], ver[40] = "";
	time_t now = time(NULL);
	int rc;

	if (slash != NULL)
		*slash = '\0';
	x509_time_format(now, nb, sizeof(nb));
	x509_time_format(m->not_after, na, sizeof(na));
	header = xasprintf("# mtlsd: certificate '%s' from Vault %s, serial %s, obtained %s\n"
	    VAULT_CACHE_SIG_TAG "%s\n", j->name, j->conf.path, m->serial, nb, j->conf.signature);
	if (m->kv_version > 0)
		snprintf(ver, sizeof(ver), " version %lld", m->kv_version);
	rc = vault_cache_write(root, j->cache_dir, file, header, m->pem, m->len, err, errlen);
	if (rc == 0) {
		log_info("vault: certificate '%s': obtained serial %s from %s%s (not after %s); "
		    "cached in %s/%s", j->name, m->serial, j->conf.path, ver, na, j->cache_dir,
		    file);
		if (j->sign_key != NULL) {      /* the next renewal makes a new key */
			x509_key_free(j->sign_key);
			j->sign_key = NULL;
		}
		vault_cache_prune(j->cache_dir, now, 3);
		vault_job_stored(j);
		if (V.reload_request != NULL)
			V.reload_request();
	}
	free(header);
	free(file);
	free(root);
	return rc;
}
