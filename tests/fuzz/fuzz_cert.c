/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * libFuzzer target for x509.c: every input goes through x509_parse (PEM or
 * DER: certificates and keys) and through x509_parse_pkcs12 with the
 * password "secret" (the one tests/data/mkcerts.sh uses).
 *
 * Properties checked (abort on violation):
 *  - no memory error, leak or undefined behaviour;
 *  - all or nothing: a failed parse leaves the bundle as it was and says
 *    why; a successful one fills every field of what it returns;
 *  - a certificate written back as PEM parses to the same certificate
 *    (fingerprint, SPKI hash, subject, serial);
 *  - a key that pairs with a certificate by SPKI hash is accepted by the
 *    TLS library for that certificate (x509_check_pair).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "x509.h"

static void
check_cert(const struct x509_cert *c)
{
	struct x509_bundle again = {0};
	char err[256];
	size_t len;
	char *pem;

	if (c->der == NULL || c->der_len == 0 || c->subject == NULL || c->issuer == NULL ||
	    c->serial_hex == NULL || memchr(c->key_desc, '\0', sizeof(c->key_desc)) == NULL)
		abort();
	pem = x509_cert_pem(c, &len);
	if (strlen(pem) != len)
		abort();
	if (x509_parse(pem, len, &again, err, sizeof(err)) != 0) {
		fprintf(stderr, "PEM of a parsed certificate does not parse: %s\n", err);
		abort();
	}
	if (again.n_certs != 1 || again.n_keys != 0 ||
	    memcmp(again.certs[0]->fingerprint, c->fingerprint, 32) != 0 ||
	    memcmp(again.certs[0]->spki_sha256, c->spki_sha256, 32) != 0 ||
	    strcmp(again.certs[0]->subject, c->subject) != 0 ||
	    strcmp(again.certs[0]->serial_hex, c->serial_hex) != 0)
		abort();
	(void)x509_cert_issued_by(c, c);
	x509_bundle_clear(&again);
	free(pem);
}

static void
check_pairs(const struct x509_bundle *b)
{
	char err[256];

	/* a handful: each check builds a TLS context */
	for (size_t i = 0; i < b->n_certs && i < 2; i++) {
		size_t len;
		char *pem = x509_cert_pem(b->certs[i], &len);

		for (size_t j = 0; j < b->n_keys && j < 2; j++) {
			const struct x509_key *k = b->keys[j];
			int same = memcmp(k->spki_sha256, b->certs[i]->spki_sha256, 32) == 0;
			int ok =
			    x509_check_pair(pem, len, k->der, k->der_len, err, sizeof(err)) == 0;

			if (same && !ok) {
				fprintf(stderr,
				    "key %zu pairs with certificate %zu by SPKI, but: %s\n", j, i,
				    err);
				abort();
			}
			/* !same && ok is possible (a certificate with a compressed
			 * point pairs by the TLS library, not by our hash): the
			 * certificate is then reported without key, which is safe */
			(void)ok;
		}
		free(pem);
	}
}

static void
check_bundle(int rc, const struct x509_bundle *b, const char *err)
{
	if (rc != 0) {
		if (b->n_certs != 0 || b->n_keys != 0 || err[0] == '\0')
			abort();
		return;
	}
	if (b->n_certs + b->n_keys == 0)
		return;
	for (size_t i = 0; i < b->n_certs; i++)
		check_cert(b->certs[i]);
	for (size_t i = 0; i < b->n_keys; i++)
		if (b->keys[i]->der == NULL || b->keys[i]->der_len == 0)
			abort();
	check_pairs(b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int init;
	struct x509_bundle b = {0};
	char err[256];
	int rc;

	if (!init) {
		log_init("fuzz", LOG_LVL_ERROR);
		init = 1;
	}
	err[0] = '\0';
	rc = x509_parse(data, size, &b, err, sizeof(err));
	check_bundle(rc, &b, err);
	x509_bundle_clear(&b);

	memset(&b, 0, sizeof(b));
	err[0] = '\0';
	rc = x509_parse_pkcs12(data, size, "secret", &b, err, sizeof(err));
	check_bundle(rc, &b, err);
	x509_bundle_clear(&b);
	x509_thread_cleanup();
	return 0;
}
