/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The vault: section of certs_dir/NAME/certificate.yaml: where Vault makes
 * this certificate (PKI issue or sign, or a KV secret holding it) and how
 * often it is renewed.
 */
#ifndef MTLSD_VAULT_CONF_H
#define MTLSD_VAULT_CONF_H

#include <stddef.h>
#include <stdint.h>
#include <yaml.h>

#define VAULT_RENEW_AT_DEFAULT 0.66
#define VAULT_KV_REFRESH_DEFAULT_MS (5 * 60 * 1000)

enum vault_kind { VAULT_PKI_ISSUE = 1, VAULT_PKI_SIGN, VAULT_KV };

struct vault_cert_conf {
	enum vault_kind kind;
	char *path;                     /* API path under /v1/: pki/issue/web */
	char *common_name;
	char **alt_names, **ip_sans, **uri_sans;
	size_t n_alt, n_ip, n_uri;
	uint64_t ttl_ms;                /* 0: the role's default */
	double renew_at;                /* PKI: re-issue at this part of the lifetime */
	int key_rsa, key_bits;          /* pki/sign: the key made here (EC P-256) */
	int kv_version;                 /* 1 or 2 */
	int kv_version_set;             /* as written (0: from the path) */
	uint64_t refresh_ms;            /* KV: re-read period */
	/* KV field names */
	char *f_certificate, *f_private_key, *f_ca_chain, *f_p12, *f_p12_password;
	/* over everything a request asks for: cached material made with other
	 * settings is replaced */
	char signature[17];
};

/*
 * Parse the vault: mapping node of doc into c (zeroed first). 0, or -1 with
 * "line N: vault.KEY: reason" in err (c is then freed).
 */
int vault_conf_parse(yaml_document_t *doc, yaml_node_t *node, struct vault_cert_conf *c,
    char *err, size_t errlen);
void vault_conf_free(struct vault_cert_conf *c);
void vault_conf_copy(struct vault_cert_conf *dst, const struct vault_cert_conf *src);
/* "pki/issue", "pki/sign" or "kv" */
const char *vault_kind_name(enum vault_kind k);

#endif
