/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Certificate material through wolfSSL: parse PEM (any mix of certificates
 * and keys), DER and PKCS#12 into certificates and private keys, describe
 * them, and tell which key belongs to which certificate by public key.
 * This file and tls.c are the only ones that include wolfSSL headers; the
 * types here are plain C.
 */
#ifndef MTLSD_X509_H
#define MTLSD_X509_H

#include <stddef.h>
#include <time.h>

#include "util.h"

enum x509_key_type { X509_KEY_OTHER = 0, X509_KEY_RSA, X509_KEY_EC };

/* A parsed certificate. Every field is filled by the parser. */
struct x509_cert {
	unsigned char *der;
	size_t der_len;
	char *subject; /* RFC 4514, most specific first: "CN=a,O=b" */
	char *issuer;
	char *serial_hex; /* upper-case hex, no colons, no sign byte */
	time_t not_before, not_after;
	int is_ca;           /* basicConstraints CA:TRUE */
	int has_eku;         /* extendedKeyUsage present */
	int eku_client_auth; /* ... and allows clientAuth (or any) */
	int self_signed;     /* issuer == subject, own key verifies it */
	enum x509_key_type key_type;
	int key_bits;
	char key_desc[32];             /* "EC P-256", "RSA 2048" */
	unsigned char spki_sha256[32]; /* SHA-256 of the SubjectPublicKeyInfo DER */
	unsigned char fingerprint[32]; /* SHA-256 of der */
	void *impl;                    /* wolfSSL's object; private to x509.c */
};

/* A parsed private key; der is wiped when freed. */
struct x509_key {
	unsigned char *der; /* as found: PKCS#8 or traditional DER */
	size_t der_len;
	enum x509_key_type type;
	int bits;
	char desc[32];
	unsigned char spki_sha256[32]; /* of the public key derived from it */
};

/* What one file held. Entries may be set to NULL by a caller that takes
 * ownership of them; x509_bundle_clear() skips NULL entries. */
struct x509_bundle {
	struct x509_cert **certs;
	size_t n_certs;
	struct x509_key **keys;
	size_t n_keys;
};

/*
 * Parse buf: PEM with any number of CERTIFICATE, PRIVATE KEY, RSA PRIVATE
 * KEY and EC PRIVATE KEY blocks (other blocks are ignored), or a single
 * DER certificate or DER private key. All or nothing: returns 0 and appends
 * to b, or -1 with a one-line reason in err and b unchanged.
 */
int x509_parse(
    const void *buf, size_t len, struct x509_bundle *b, char *err, size_t errlen) MUSTCHECK;
/*
 * Parse a PKCS#12 (DER) with password: appends its key (if any), the
 * certificate matching that key first, then the other certificates.
 * Returns 0, or -1 with a reason ("wrong password", ...) in err.
 */
int x509_parse_pkcs12(const void *der, size_t len, const char *password, struct x509_bundle *b,
    char *err, size_t errlen) MUSTCHECK;
void x509_bundle_clear(struct x509_bundle *b);
/* The first certificate of b that is not a CA (the leaf of a pair file), or
 * NULL. */
const struct x509_cert *x509_bundle_leaf(const struct x509_bundle *b);
void x509_cert_free(struct x509_cert *c);
void x509_key_free(struct x509_key *k);

/* 1 if issuer's subject is c's issuer and issuer's key verifies c. */
int x509_cert_issued_by(const struct x509_cert *c, const struct x509_cert *issuer);
/* c as one PEM block (malloc'ed, NUL-terminated, *len without the NUL). */
char *x509_cert_pem(const struct x509_cert *c, size_t *len);
/*
 * Load a PEM chain (leaf first) and a DER key into a fresh wolfSSL client
 * context, exactly as tls.c does, and check that the key matches the leaf.
 * Returns 0, or -1 with the reason in err.
 */
int x509_check_pair(const char *chain_pem, size_t chain_len, const unsigned char *key_der,
    size_t key_len, char *err, size_t errlen) MUSTCHECK;

/*
 * Free wolfSSL's per-thread ECC fixed-point cache (FP_ECC, built by every
 * EC signature check, ~800 KB). Call it before a thread that loaded
 * certificates exits, and at process exit for clean leak reports.
 */
void x509_thread_cleanup(void);

/* "2025-01-01T00:00:00Z" (UTC). */
void x509_time_format(time_t t, char *buf, size_t len);

/* --- making keys and requests (Vault pki/sign, mtlsctl new-key) ----------- */

/* A fresh private key: X509_KEY_EC with bits 256 or 384 (P-256, P-384), or
 * X509_KEY_RSA with bits 2048, 3072 or 4096 (e = 65537); other sizes are
 * refused. der is PKCS#8; every field is filled as by the parser
 * (spki_sha256 too). NULL with a reason in err. */
struct x509_key *x509_key_generate(enum x509_key_type type, int bits, char *err,
    size_t errlen) MUSTCHECK;
/* A PEM certificate request ("CERTIFICATE REQUEST") signed by key (SHA-256,
 * or SHA-384 for P-384), subject CN=cn, with a subjectAltName of the DNS
 * names, IP addresses (text, v4 or v6) and URIs given (none: no extension).
 * cn is 1..63 printable ASCII characters, names printable ASCII without
 * spaces; anything else is refused, never cut. malloc'ed, NUL-terminated;
 * NULL with a reason in err. */
char *x509_csr_pem(const struct x509_key *key, const char *cn, char *const *dns, size_t n_dns,
    char *const *ips, size_t n_ips, char *const *uris, size_t n_uris, char *err,
    size_t errlen) MUSTCHECK;
/* k as one PEM block ("PRIVATE KEY" for PKCS#8, else "RSA PRIVATE KEY" or
 * "EC PRIVATE KEY"), malloc'ed, *len without the NUL. Holds the key: the
 * caller wipes it (wipe_free). */
char *x509_key_pem(const struct x509_key *k, size_t *len);
/* Standard base64 (padding required, whitespace and newlines skipped) into a
 * malloc'ed buffer the caller wipes if it holds secrets; NULL when it is
 * empty or not valid base64. */
unsigned char *x509_base64_decode(const char *s, size_t len, size_t *out_len);

/* --- inspection (mtlsctl certs, check-p12) ------------------------------- */

/* The subjectAltName entries, "DNS:a, IP:192.0.2.1, URI:spiffe://x",
 * malloc'ed; NULL when there is none. */
char *x509_cert_sans(const struct x509_cert *c);
/* The signature algorithm's name ("ecdsa-with-SHA256"); *weak is set for
 * SHA-1 and MD5 signatures. A static string. */
const char *x509_cert_sig_alg(const struct x509_cert *c, int *weak);

/* --- primitives for PKCS#12 (p12.c builds and reads the structure) ------- */

enum x509_digest {
	X509_DIGEST_SHA1 = 1,
	X509_DIGEST_SHA256,
	X509_DIGEST_SHA384,
	X509_DIGEST_SHA512,
};

size_t x509_digest_size(enum x509_digest d);
/* Random bytes from wolfCrypt's DRBG. 0 or -1. */
int x509_random(void *buf, size_t len) MUSTCHECK;
/* PBKDF2 (RFC 8018) with HMAC-prf: out_len bytes. 0 or -1. */
int x509_pbkdf2(enum x509_digest prf, const void *pw, size_t pw_len, const unsigned char *salt,
    size_t salt_len, long iter, unsigned char *out, size_t out_len) MUSTCHECK;
/* The PKCS#12 key derivation (RFC 7292 appendix B; id 1 key, 2 IV, 3 MAC)
 * over a BMPString password (with its two-byte terminator). 0 or -1. */
int x509_pkcs12_kdf(enum x509_digest d, const unsigned char *bmp_pw, size_t pw_len,
    const unsigned char *salt, size_t salt_len, long iter, int id, unsigned char *out,
    size_t out_len) MUSTCHECK;
/* HMAC of data into out (x509_digest_size(d) bytes). 0 or -1. */
int x509_hmac(enum x509_digest d, const unsigned char *key, size_t key_len, const void *data,
    size_t len, unsigned char *out) MUSTCHECK;
void x509_sha1(const void *data, size_t len, unsigned char out[20]);
/* AES-CBC (key of 16, 24 or 32 bytes) with PKCS#7 padding: malloc'ed
 * ciphertext, or NULL. */
unsigned char *x509_aes_cbc_encrypt(const unsigned char *key, size_t key_len,
    const unsigned char iv[16], const void *in, size_t len, size_t *out_len);
/* k as PKCS#8 DER (converted from the traditional form when needed),
 * malloc'ed: the caller wipes it. NULL when it cannot be converted. */
unsigned char *x509_key_pkcs8(const struct x509_key *k, size_t *len);

#endif
