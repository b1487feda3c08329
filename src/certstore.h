/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Certificate material per certificate NAME (certs_dir/NAME/): every file is
 * read (PEM with certificates and/or keys in any order, .crt/.key/.der,
 * PKCS#12 with X.p12.pass or certificate.yaml password), keys are paired
 * with certificates by public key, intermediates are chained to each leaf,
 * and the complete pairs are classified. No wolfSSL types leak from here.
 */
#ifndef MTLSD_CERTSTORE_H
#define MTLSD_CERTSTORE_H

#include <stddef.h>
#include <time.h>

#include "config.h"
#include "vault_conf.h"

/* One complete pair: a leaf certificate, its chain and its private key. */
struct cert_material {
	char *chain_pem;                /* leaf first, then intermediates (PEM) */
	size_t chain_pem_len;
	unsigned char *key_der;         /* PKCS#8 or traditional DER; wiped on free */
	size_t key_der_len;
	char *subject;                  /* one-line, e.g. "CN=client,O=Example" */
	char *issuer;
	char *serial_hex;               /* upper-case hex, no colons */
	time_t not_before, not_after;
	unsigned char spki_sha256[32];  /* pin of the leaf's public key */
	char key_desc[32];              /* "EC P-256", "RSA 3072" */
	char *cert_file;                /* file the leaf came from (basename) */
	char *key_file;                 /* file the key came from (basename) */
	int chain_len;                  /* certificates in chain_pem */
	unsigned char fingerprint_sha256[32];   /* of the leaf's DER: identity
	                                         * of a pair across reloads */
};

/* certs_dir/NAME/certificate.yaml: per-certificate settings. */
struct cert_options {
	int has_activate, has_before_expiry, has_warn_before;
	struct rotation_conf rotation;  /* fields valid per has_* */
	char *issuer_ca_file;           /* every pair must chain to it */
	struct vault_cert_conf *vault;  /* a vault: section (made by Vault), or NULL */
	int vault_broken;               /* a vault: section with a problem (kept out) */
};

struct certset {
	char *name;
	char *dir;                      /* certs_dir/NAME */
	char *cache_dir;                /* state_dir/vault/NAME when vault:, else NULL */
	/* complete pairs that passed every check, newest not_before first;
	 * includes pairs not yet valid (future not_before) */
	struct cert_material **pairs;
	size_t n_pairs;
	struct cert_material *current;  /* newest pair valid at load time, or NULL */
	/* files skipped and why, each "NAME/file: reason" */
	struct config_errors problems;
	struct cert_options opts;
};

/*
 * Load certs_dir/name as of time now. NULL (with a reason in errs) only for
 * a name that cannot be a directory name; a directory that cannot be read
 * gives an empty set whose problems say why. When its certificate.yaml has a vault:
 * section and vault_cache (state_dir/vault) is not NULL, the pairs Vault
 * issued, cached in vault_cache/name, are read too. Returns NULL (with a reason in errs)
 * only when the directory cannot be read at all; a directory without any
 * usable pair returns a set with current == NULL and problems saying why.
 * Private key files (and .p12/.pass files) readable by group or others are
 * refused ("mode 0644, must not be readable by group/others; chmod 600").
 */
struct certset *certset_load(const char *certs_dir, const char *vault_cache, const char *name,
    time_t now, struct config_errors *errs) MUSTCHECK;
void certset_free(struct certset *set);

/* One line for logs and `mtlsctl certs`, malloc'ed:
 * "CN=a,O=b serial 1001 (EC P-256, 2025-01-01T00:00:00Z..2026-01-01T00:00:00Z,
 * client.crt + client.key)". */
/* A copy that outlives its set (kept in service when its files go away). */
struct cert_material *cert_material_dup(const struct cert_material *m);
void cert_material_free(struct cert_material *m);

/* The rotation policy for this set: global, overridden by certificate.yaml. */
void certset_rotation(const struct certset *set, const struct rotation_conf *global,
    struct rotation_conf *out);

/*
 * The pair to present at now, or NULL when none is valid. Stateless, so a
 * restart chooses as the running daemon did:
 *  - immediately: the newest valid pair;
 *  - before-expiry: the oldest valid pair still outside its activation
 *    window (not_after - activate_before_expiry), else the newest valid.
 * *next_change (may be NULL) is the next moment the answer can change
 * (a not-before, a window start or a not-after), 0 when none.
 */
const struct cert_material *certset_choose(const struct certset *set,
    const struct rotation_conf *rot, time_t now, time_t *next_change);

char *cert_material_describe(const struct cert_material *m);
/* One line about the set, malloc'ed: "NAME: current <describe>; 1 newer
 * pair not yet valid" or "NAME: no current certificate (2 problems)". */
char *certset_describe_current(const struct certset *set);

#endif
