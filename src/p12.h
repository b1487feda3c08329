/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * PKCS#12 (RFC 7292) files for mtlsctl: what a file is encrypted with (no
 * password needed), whether a password matches its MAC, and writing a new
 * one the way OpenSSL 3 does by default (PBES2 with PBKDF2-HMAC-SHA256 and
 * AES-256-CBC, HMAC-SHA256 MAC). Decrypting one is x509_parse_pkcs12().
 */
#ifndef MTLSD_P12_H
#define MTLSD_P12_H

#include <stddef.h>

#include "util.h"
#include "x509.h"

#define P12_MAX_PARTS       8
#define P12_EXPORT_ITER     100000      /* PBKDF2 and MAC iterations we write */

enum p12_cipher {
	P12_CIPHER_NONE = 0,    /* stored in clear */
	P12_CIPHER_AES,
	P12_CIPHER_3DES,
	P12_CIPHER_RC2,
	P12_CIPHER_RC4,
	P12_CIPHER_DES,
	P12_CIPHER_OTHER,
};

/* One encrypted (or clear) piece of the file. */
struct p12_part {
	int is_key;             /* a key bag; else certificates (or unknown contents) */
	enum p12_cipher cipher;
	int pbes2;              /* PBES2 (PKCS#5 v2) rather than the PKCS#12 PBEs */
	long iterations;        /* 0 when not encrypted */
	char alg[96];           /* "PBES2 (PBKDF2-HMAC-SHA256, AES-256-CBC)" */
};

struct p12_info {
	struct p12_part parts[P12_MAX_PARTS];
	size_t n_parts;
	int has_mac;
	enum x509_digest mac_digest;    /* 0 when unknown */
	char mac_alg[24];               /* "HMAC-SHA256" */
	long mac_iterations;
	/* for p12_mac_check: views into the DER given to p12_inspect */
	const unsigned char *auth_safe, *mac_salt, *mac;
	size_t auth_safe_len, mac_salt_len, mac_len;
};

/* Read the structure of buf (DER; kept by info's views). 0, or -1 with a
 * one-line reason. */
int p12_inspect(const void *buf, size_t len, struct p12_info *info, char *err,
    size_t errlen) MUSTCHECK;
/* Does password open the MAC? 1 yes, 0 no, -1 cannot tell (no MAC, or a
 * digest we do not know). */
int p12_mac_check(const struct p12_info *info, const char *password);
/* 1 when password is ASCII without control characters: tools disagree on
 * how to turn anything else into the MAC's BMPString. */
int p12_password_ok(const char *password);
/*
 * A new PKCS#12: certs[0] is the leaf (it gets the friendly name and the
 * key's localKeyId), the rest its chain; key is the leaf's private key.
 * Returns malloc'ed DER (*len), or NULL with a reason.
 */
unsigned char *p12_create(struct x509_cert *const *certs, size_t n_certs,
    const struct x509_key *key, const char *password, const char *name, long iterations,
    size_t *len, char *err, size_t errlen) MUSTCHECK;
/* "PBES2 (PBKDF2-HMAC-SHA256, AES-256-CBC), HMAC-SHA256 MAC": what
 * p12_create writes. */
extern const char p12_create_desc[];

#endif
