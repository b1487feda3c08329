/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Certificate material through wolfSSL. Certificates are read with the
 * OpenSSL compatibility layer (names, times, extensions); keys and PKCS#12
 * with wolfCrypt directly, so no EVP object ever holds a private key here.
 * Keys pair with certificates by the SHA-256 of the SubjectPublicKeyInfo:
 * the certificate's SPKI bytes as they appear in it, the key's SPKI as
 * wolfCrypt encodes the public key derived from the private one (named
 * curve, uncompressed point; RSA with NULL parameters), which is the same
 * encoding every CA uses.
 */
#include "autoconf.h"

#include <wolfssl/options.h>
#include <wolfssl/ssl.h>
#include <wolfssl/openssl/x509v3.h> /* XKU_* flags */
#include <wolfssl/wolfcrypt/asn.h>  /* RSAk */
#include <wolfssl/wolfcrypt/asn_public.h>
#include <wolfssl/wolfcrypt/coding.h>
#include <wolfssl/wolfcrypt/aes.h>
#include <wolfssl/wolfcrypt/ecc.h>
#include <wolfssl/wolfcrypt/error-crypt.h>
#include <wolfssl/wolfcrypt/hmac.h>
#include <wolfssl/wolfcrypt/pkcs12.h>
#include <wolfssl/wolfcrypt/pwdbased.h>
#include <wolfssl/wolfcrypt/random.h>
#include <wolfssl/wolfcrypt/rsa.h>
#include <wolfssl/wolfcrypt/sha.h>
#include <wolfssl/wolfcrypt/sha256.h>
#include <wolfssl/wolfcrypt/types.h>

#include <arpa/inet.h>

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "der.h"
#include "log.h"
#include "x509.h"

#define SPKI_MAX     2048 /* RSA 16384 fits */
#define NAME_MAX_LEN 1024

static void errf(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
errf(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (err == NULL || errlen == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

static void
sha256(const unsigned char *data, size_t len, unsigned char out[32])
{
	if (wc_Sha256Hash(data, (word32)len, out) != 0)
		fatalx("SHA-256 failed");
}

void
x509_time_format(time_t t, char *buf, size_t len)
{
	struct tm tm;

	if (gmtime_r(&t, &tm) == NULL || strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		snprintf(buf, len, "@%lld", (long long)t);
}

/* --- DER ---------------------------------------------------------------- */

/* Read one DER header at p (avail bytes): tag, header and content lengths. */
static int
der_header(const unsigned char *p, size_t avail, int *tag, size_t *hdr, size_t *len)
{
	size_t n, i;

	if (avail < 2)
		return -1;
	*tag = p[0];
	if (p[1] < 0x80) {
		*hdr = 2;
		*len = p[1];
	} else {
		n = p[1] & 0x7f;
		if (n == 0 || n > 4 || avail < 2 + n)
			return -1;
		*len = 0;
		for (i = 0; i < n; i++)
			*len = (*len << 8) | p[2 + i];
		*hdr = 2 + n;
	}
	return *len <= avail - *hdr ? 0 : -1;
}

/*
 * Locate the SubjectPublicKeyInfo inside a certificate: Certificate ->
 * tbsCertificate -> [0] version?, serial, signature, issuer, validity,
 * subject, SPKI. Its exact bytes are what pins and pairing hash.
 */
static int
der_cert_spki(const unsigned char *der, size_t len, const unsigned char **spki, size_t *spki_len)
{
	const unsigned char *p = der;
	size_t avail = len, hdr, clen;
	int tag, field;

	for (int depth = 0; depth < 2; depth++) { /* enter Certificate, tbs */
		if (der_header(p, avail, &tag, &hdr, &clen) < 0 || tag != 0x30)
			return -1;
		p += hdr;
		avail = clen;
	}
	for (field = 0;; field++) {
		if (der_header(p, avail, &tag, &hdr, &clen) < 0)
			return -1;
		if (field == 0 && tag == 0xa0)
			field = -1; /* explicit version: not counted */
		else if (field == 5) {
			if (tag != 0x30)
				return -1;
			*spki = p;
			*spki_len = hdr + clen;
			return 0;
		}
		p += hdr + clen;
		avail -= hdr + clen;
	}
}

/* --- public keys ---------------------------------------------------------- */

static const char *
curve_name(int curve_id)
{
	switch (curve_id) {
	case ECC_SECP256R1:
		return "P-256";
	case ECC_SECP384R1:
		return "P-384";
	case ECC_SECP521R1:
		return "P-521";
	default:
		return wc_ecc_get_name(curve_id);
	}
}

static void
ecc_describe(ecc_key *ecc, enum x509_key_type *type, int *bits, char *desc, size_t desclen)
{
	int id = ecc->dp != NULL ? ecc->dp->id : ECC_CURVE_INVALID;
	const char *cn = curve_name(id);

	*type = X509_KEY_EC;
	*bits = wc_ecc_size(ecc) * 8;
	snprintf(desc, desclen, "EC %s", cn != NULL ? cn : "unknown curve");
}

/* Key type and size from an SPKI (RSA or EC; anything else is "other"). */
static void
spki_describe(const unsigned char *spki, size_t len, enum x509_key_type *type, int *bits,
    char *desc, size_t desclen)
{
	RsaKey rsa;
	ecc_key ecc;
	word32 idx = 0;

	*type = X509_KEY_OTHER;
	*bits = 0;
	snprintf(desc, desclen, "unsupported key type");
	if (wc_InitRsaKey(&rsa, NULL) == 0) {
		if (wc_RsaPublicKeyDecode(spki, &idx, &rsa, (word32)len) == 0) {
			*type = X509_KEY_RSA;
			*bits = wc_RsaEncryptSize(&rsa) * 8;
			snprintf(desc, desclen, "RSA %d", *bits);
		}
		wc_FreeRsaKey(&rsa);
	}
	if (*type != X509_KEY_OTHER || wc_ecc_init(&ecc) != 0)
		return;
	idx = 0;
	if (wc_EccPublicKeyDecode(spki, &idx, &ecc, (word32)len) == 0)
		ecc_describe(&ecc, type, bits, desc, desclen);
	wc_ecc_free(&ecc);
}

/* --- certificates --------------------------------------------------------- */

/* RFC 4514 escaping of one attribute value. */
static void
name_append_value(char *out, size_t outlen, size_t *pos, const unsigned char *v, int n)
{
	for (int i = 0; i < n && *pos + 3 < outlen; i++) {
		unsigned char c = v[i];
		if ((c != '\0' && strchr(",+\"\\<>;", c) != NULL) ||
		    (i == 0 && (c == '#' || c == ' ')) || (i == n - 1 && c == ' '))
			out[(*pos)++] = '\\';
		out[(*pos)++] = (char)(c < 0x20 || c == 0x7f ? '?' : c);
	}
	out[*pos] = '\0';
}

/* One-line name, most specific attribute first ("CN=a,OU=b,O=c"). */
static char *
name_oneline(WOLFSSL_X509_NAME *name)
{
	char out[NAME_MAX_LEN];
	size_t pos = 0;
	int n = name != NULL ? wolfSSL_X509_NAME_entry_count(name) : 0;

	out[0] = '\0';
	for (int i = n - 1; i >= 0; i--) {
		WOLFSSL_X509_NAME_ENTRY *e = wolfSSL_X509_NAME_get_entry(name, i);
		WOLFSSL_ASN1_STRING *s = e ? wolfSSL_X509_NAME_ENTRY_get_data(e) : NULL;
		const char *sn;

		if (s == NULL)
			continue;
		sn = wolfSSL_OBJ_nid2sn(wolfSSL_OBJ_obj2nid(wolfSSL_X509_NAME_ENTRY_get_object(e)));
		pos += (size_t)snprintf(
		    out + pos, sizeof(out) - pos, "%s%s=", pos ? "," : "", sn ? sn : "?");
		if (pos >= sizeof(out))
			break;
		name_append_value(out, sizeof(out), &pos, wolfSSL_ASN1_STRING_data(s),
		    wolfSSL_ASN1_STRING_length(s));
	}
	return xstrdup(out);
}

static int
asn1_time(WOLFSSL_ASN1_TIME *t, time_t *out)
{
	struct tm tm;

	memset(&tm, 0, sizeof(tm));
	if (t == NULL || wolfSSL_ASN1_TIME_to_tm(t, &tm) != WOLFSSL_SUCCESS)
		return -1;
	*out = timegm(&tm);
	return 0;
}

static char *
serial_hex(WOLFSSL_X509 *x)
{
	unsigned char s[64];
	int n = (int)sizeof(s), i = 0;
	char *hex, *p;

	if (wolfSSL_X509_get_serial_number(x, s, &n) != WOLFSSL_SUCCESS || n <= 0)
		return xstrdup("");
	while (i < n - 1 && s[i] == 0) /* sign byte, as openssl prints */
		i++;
	hex = p = xmalloc((size_t)(n - i) * 2 + 1);
	for (; i < n; i++, p += 2)
		snprintf(p, 3, "%02X", s[i]);
	return hex;
}

static void
cert_eku(struct x509_cert *c, WOLFSSL_X509 *x)
{
	unsigned int xku;

	c->has_eku = wolfSSL_X509_get_ext_by_NID(x, NID_ext_key_usage, -1) >= 0;
	xku = wolfSSL_X509_get_extended_key_usage(x);
	c->eku_client_auth = !c->has_eku || (xku & (XKU_SSL_CLIENT | XKU_ANYEKU)) != 0;
}

static int
cert_verified_by(WOLFSSL_X509 *x, WOLFSSL_X509 *signer)
{
	WOLFSSL_EVP_PKEY *pk = wolfSSL_X509_get_pubkey(signer);
	int ok;

	if (pk == NULL)
		return 0;
	ok = wolfSSL_X509_verify(x, pk) == WOLFSSL_SUCCESS;
	wolfSSL_EVP_PKEY_free(pk);
	return ok;
}

/* Everything but the wolfSSL object itself, which c->impl already holds. */
static int
cert_fill(struct x509_cert *c, char *err, size_t errlen)
{
	WOLFSSL_X509 *x = c->impl;
	const unsigned char *spki;
	size_t spki_len;

	if (der_cert_spki(c->der, c->der_len, &spki, &spki_len) < 0) {
		errf(err, errlen, "certificate has no readable public key");
		return -1;
	}
	if (asn1_time(wolfSSL_X509_get_notBefore(x), &c->not_before) < 0 ||
	    asn1_time(wolfSSL_X509_get_notAfter(x), &c->not_after) < 0) {
		errf(err, errlen, "certificate has unreadable validity dates");
		return -1;
	}
	sha256(spki, spki_len, c->spki_sha256);
	sha256(c->der, c->der_len, c->fingerprint);
	spki_describe(spki, spki_len, &c->key_type, &c->key_bits, c->key_desc, sizeof(c->key_desc));
	c->subject = name_oneline(wolfSSL_X509_get_subject_name(x));
	c->issuer = name_oneline(wolfSSL_X509_get_issuer_name(x));
	c->serial_hex = serial_hex(x);
	c->is_ca = wolfSSL_X509_get_isCA(x) != 0;
	cert_eku(c, x);
	c->self_signed = wolfSSL_X509_NAME_cmp(wolfSSL_X509_get_issuer_name(x),
	                     wolfSSL_X509_get_subject_name(x)) == 0 &&
	                 cert_verified_by(x, x);
	return 0;
}

static struct x509_cert *
cert_from_der(const unsigned char *der, size_t len, char *err, size_t errlen)
{
	struct x509_cert *c = xcalloc(1, sizeof(*c));

	c->impl = wolfSSL_X509_d2i(NULL, der, (int)len);
	if (c->impl == NULL) {
		errf(err, errlen, "not a valid X.509 certificate");
		goto fail;
	}
	c->der = xmalloc(len);
	memcpy(c->der, der, len);
	c->der_len = len;
	if (cert_fill(c, err, errlen) < 0)
		goto fail;
	return c;
fail:
	x509_cert_free(c);
	return NULL;
}

void
x509_cert_free(struct x509_cert *c)
{
	if (c == NULL)
		return;
	wolfSSL_X509_free(c->impl);
	free(c->der);
	free(c->subject);
	free(c->issuer);
	free(c->serial_hex);
	free(c);
}

int
x509_cert_issued_by(const struct x509_cert *c, const struct x509_cert *issuer)
{
	WOLFSSL_X509 *x = c->impl, *i = issuer->impl;

	return wolfSSL_X509_NAME_cmp(
	           wolfSSL_X509_get_issuer_name(x), wolfSSL_X509_get_subject_name(i)) == 0 &&
	       cert_verified_by(x, i);
}

/* DER as one PEM block of wolfSSL's type (CERT_TYPE, ...); the buffer is
 * sized for it, so failing is a bug. */
static char *
der_pem(const unsigned char *der, size_t der_len, int type, size_t *len)
{
	size_t cap = der_len * 4 / 3 + der_len / 32 + 128;
	char *pem = xmalloc(cap);
	int n = wc_DerToPem(der, (word32)der_len, (byte *)pem, (word32)cap - 1, type);

	if (n <= 0)
		fatalx("wc_DerToPem: %d", n);
	pem[n] = '\0';
	if (len)
		*len = (size_t)n;
	return pem;
}

char *
x509_cert_pem(const struct x509_cert *c, size_t *len)
{
	return der_pem(c->der, c->der_len, CERT_TYPE, len);
}

/* --- private keys ----------------------------------------------------------- */

/*
 * A private RSA operation checked by the public one: catches keys whose
 * CRT parameters do not belong to n (wolfSSL's own check compares n and e
 * only, and this build lacks wc_CheckRsaKey).
 */
static int
rsa_selftest(RsaKey *rsa)
{
	static const byte msg[32] = "mtlsd rsa key consistency check";
	byte sig[2048], back[2048]; /* up to RSA 16384 */
	WC_RNG rng;
	int n, ret = -1;

	if (wc_InitRng(&rng) != 0)
		return -1;
	if (wc_RsaSetRNG(rsa, &rng) == 0 &&
	    (n = wc_RsaSSL_Sign(msg, sizeof(msg), sig, sizeof(sig), rsa, &rng)) > 0 &&
	    wc_RsaSSL_Verify(sig, (word32)n, back, sizeof(back), rsa) == (int)sizeof(msg) &&
	    memcmp(back, msg, sizeof(msg)) == 0)
		ret = 0;
	wc_RsaSetRNG(rsa, NULL);
	wc_FreeRng(&rng);
	return ret;
}

/* SPKI of an RSA private key (which carries n and e); the key must be sane. */
static int
rsa_key_spki(const unsigned char *der, word32 idx, size_t len, struct x509_key *k,
    unsigned char *spki, int *spki_len)
{
	RsaKey rsa;
	int ret = -1;

	if (wc_InitRsaKey(&rsa, NULL) != 0)
		return -1;
	if (wc_RsaPrivateKeyDecode(der, &idx, &rsa, (word32)len) != 0)
		goto done;
	if (rsa_selftest(&rsa) != 0) {
		ret = -2;
		goto done;
	}
	k->type = X509_KEY_RSA;
	k->bits = wc_RsaEncryptSize(&rsa) * 8;
	snprintf(k->desc, sizeof(k->desc), "RSA %d", k->bits);
	*spki_len = wc_RsaKeyToPublicDer(&rsa, spki, SPKI_MAX);
	ret = *spki_len > 0 ? 0 : -1;
done:
	wc_FreeRsaKey(&rsa);
	return ret;
}

/* SPKI of an EC private key: the public point is recomputed from the
 * private scalar, so a stale embedded public key cannot fake a match. */
static int
ecc_key_spki(const unsigned char *der, word32 idx, size_t len, struct x509_key *k,
    unsigned char *spki, int *spki_len)
{
	ecc_key ecc;
	ecc_point *derived = NULL;
	int ret = -1;

	if (wc_ecc_init(&ecc) != 0)
		return -1;
	if (wc_EccPrivateKeyDecode(der, &idx, &ecc, (word32)len) != 0)
		goto done;
	/* the public key a file carries beside the private one is not to be
	 * trusted: pairing by it would match a certificate with a key that
	 * cannot sign for it */
	if ((derived = wc_ecc_new_point()) == NULL || wc_ecc_make_pub(&ecc, derived) != 0 ||
	    (ecc.type != ECC_PRIVATEKEY_ONLY &&
	     wc_ecc_cmp_point(&ecc.pubkey, derived) != MP_EQ) ||
	    (ecc.type == ECC_PRIVATEKEY_ONLY && wc_ecc_make_pub(&ecc, NULL) != 0)) {
		ret = -2;
		goto done;
	}
	ecc_describe(&ecc, &k->type, &k->bits, k->desc, sizeof(k->desc));
	*spki_len = wc_EccPublicKeyToDer(&ecc, spki, SPKI_MAX, 1);
	ret = *spki_len > 0 ? 0 : -1;
done:
	if (derived != NULL)
		wc_ecc_del_point(derived);
	wc_ecc_free(&ecc);
	return ret;
}

static const char key_corrupt[] = "private key is corrupt (inconsistent parameters)";

static struct x509_key *
key_from_der(const unsigned char *der, size_t len, char *err, size_t errlen)
{
	struct der whole = { der, len }, outer;
	struct x509_key *k;
	unsigned char spki[SPKI_MAX];
	word32 idx = 0;
	size_t end = len;
	int spki_len = 0, ret;

	/* a key is one DER element whose length covers it exactly: the TLS
	 * library refuses any other (found by fuzz_cert) */
	if (der_expect(&whole, DER_SEQUENCE, &outer) < 0 || whole.len != 0) {
		errf(err, errlen, "not a valid RSA or EC private key");
		return NULL;
	}
	k = xcalloc(1, sizeof(*k));
	k->der = xmalloc(len);
	memcpy(k->der, der, len);
	k->der_len = len;
	/* PKCS#8 wraps the traditional key in an OCTET STRING; idx is left at
	 * it and its length returned. The key must fit in that string: when it
	 * claims more, the TLS library refuses the file although the decoders
	 * below would read on past the string (found by fuzz_cert). */
	ret = wc_GetPkcs8TraditionalOffset(k->der, &idx, (word32)len);
	if (ret >= 0)
		end = idx + (size_t)ret;
	else
		idx = 0;
	ret = rsa_key_spki(k->der, idx, end, k, spki, &spki_len);
	if (ret == -1)
		ret = ecc_key_spki(k->der, idx, end, k, spki, &spki_len);
	if (ret < 0) {
		errf(err, errlen, "%s",
		    ret == -2 ? key_corrupt : "not a valid RSA or EC private key");
		x509_key_free(k);
		return NULL;
	}
	sha256(spki, (size_t)spki_len, k->spki_sha256);
	return k;
}

void
x509_key_free(struct x509_key *k)
{
	if (k == NULL)
		return;
	wipe_free(k->der, k->der_len);
	free(k);
}

/* --- bundles ---------------------------------------------------------------- */

static void
bundle_add_cert(struct x509_bundle *b, struct x509_cert *c)
{
	b->certs = xrealloc(b->certs, (b->n_certs + 1) * sizeof(*b->certs));
	b->certs[b->n_certs++] = c;
}

static void
bundle_add_key(struct x509_bundle *b, struct x509_key *k)
{
	b->keys = xrealloc(b->keys, (b->n_keys + 1) * sizeof(*b->keys));
	b->keys[b->n_keys++] = k;
}

/* Move everything from src to the end of dst; src ends empty. */
static void
bundle_move(struct x509_bundle *dst, struct x509_bundle *src)
{
	for (size_t i = 0; i < src->n_certs; i++)
		bundle_add_cert(dst, src->certs[i]);
	for (size_t i = 0; i < src->n_keys; i++)
		bundle_add_key(dst, src->keys[i]);
	free(src->certs);
	free(src->keys);
	memset(src, 0, sizeof(*src));
}

const struct x509_cert *
x509_bundle_leaf(const struct x509_bundle *b)
{
	for (size_t i = 0; i < b->n_certs; i++)
		if (b->certs[i] != NULL && !b->certs[i]->is_ca)
			return b->certs[i];
	return NULL;
}

void
x509_bundle_clear(struct x509_bundle *b)
{
	for (size_t i = 0; i < b->n_certs; i++)
		x509_cert_free(b->certs[i]);
	for (size_t i = 0; i < b->n_keys; i++)
		x509_key_free(b->keys[i]);
	free(b->certs);
	free(b->keys);
	memset(b, 0, sizeof(*b));
}

/* --- PEM -------------------------------------------------------------------- */

struct pem_block {
	char label[64];
	const char *body; /* between the BEGIN and END lines */
	size_t body_len;
	int encrypted; /* traditional "Proc-Type: 4,ENCRYPTED" */
};

static const char *
mem_find(const char *hay, size_t haylen, const char *needle)
{
	return memmem(hay, haylen, needle, strlen(needle));
}

/*
 * Next "-----BEGIN L-----" ... "-----END L-----" at or after *pos.
 * Returns 1 with the block, 0 when there is none, -1 when a BEGIN line has
 * no matching END (a truncated or half-written file).
 */
static int
pem_next(const char *buf, size_t len, size_t *pos, struct pem_block *blk, char *err, size_t errlen)
{
	const char *begin, *lab, *labend, *end;
	char endline[96];
	size_t lablen;

	if ((begin = mem_find(buf + *pos, len - *pos, "-----BEGIN ")) == NULL)
		return 0;
	lab = begin + 11;
	labend = mem_find(lab, len - (size_t)(lab - buf), "-----");
	lablen = labend ? (size_t)(labend - lab) : 0;
	if (labend == NULL || lablen == 0 || lablen >= sizeof(blk->label) ||
	    memchr(lab, '\n', lablen) != NULL) {
		errf(err, errlen, "incomplete PEM block (broken BEGIN line)");
		return -1;
	}
	memcpy(blk->label, lab, lablen);
	blk->label[lablen] = '\0';
	blk->body = labend + 5;
	snprintf(endline, sizeof(endline), "-----END %s-----", blk->label);
	end = mem_find(blk->body, len - (size_t)(blk->body - buf), endline);
	if (end == NULL) {
		errf(err, errlen,
		    "incomplete PEM block: BEGIN %s without END "
		    "(file truncated or still being written)",
		    blk->label);
		return -1;
	}
	blk->body_len = (size_t)(end - blk->body);
	/* ':' never occurs in base64, so this cannot match key material */
	blk->encrypted = mem_find(blk->body, blk->body_len, "Proc-Type: 4,ENCRYPTED") != NULL;
	*pos = (size_t)(end - buf) + strlen(endline);
	return 1;
}

/* Base64 body to DER (caller frees; wipe for keys). Headers are skipped. */
static unsigned char *
pem_decode(const struct pem_block *blk, size_t *der_len)
{
	char *b64 = xmalloc(blk->body_len + 1);
	unsigned char *der = NULL;
	const char *p = blk->body, *end = blk->body + blk->body_len;
	size_t n = 0, cap;
	word32 outlen;

	while (p < end) {
		const char *eol = memchr(p, '\n', (size_t)(end - p));
		const char *lend = eol ? eol : end;
		if (memchr(p, ':', (size_t)(lend - p)) == NULL)
			for (const char *q = p; q < lend; q++)
				if (*q != '\r' && *q != ' ' && *q != '\t')
					b64[n++] = *q;
		p = eol ? eol + 1 : end;
	}
	cap = n * 3 / 4 + 3;
	outlen = (word32)cap;
	der = xmalloc(cap);
	if (n == 0 || Base64_Decode((const byte *)b64, (word32)n, der, &outlen) != 0) {
		wipe_free(der, cap);
		der = NULL;
	} else
		*der_len = outlen;
	wipe_free(b64, blk->body_len + 1);
	return der;
}

enum pem_kind { PEM_IGNORED, PEM_CERT, PEM_KEY, PEM_ENCRYPTED_KEY };

static enum pem_kind
pem_kind(const struct pem_block *blk)
{
	static const char *const certs[] = {"CERTIFICATE", "X509 CERTIFICATE"};
	static const char *const keys[] = {"PRIVATE KEY", "RSA PRIVATE KEY", "EC PRIVATE KEY"};

	for (size_t i = 0; i < ARRAY_LEN(certs); i++)
		if (strcmp(blk->label, certs[i]) == 0)
			return PEM_CERT;
	if (strcmp(blk->label, "ENCRYPTED PRIVATE KEY") == 0)
		return PEM_ENCRYPTED_KEY;
	for (size_t i = 0; i < ARRAY_LEN(keys); i++)
		if (strcmp(blk->label, keys[i]) == 0)
			return blk->encrypted ? PEM_ENCRYPTED_KEY : PEM_KEY;
	return PEM_IGNORED;
}

/* One PEM block into b; -1 with err on failure. */
static int
pem_block_parse(
    const struct pem_block *blk, int nth, struct x509_bundle *b, char *err, size_t errlen)
{
	enum pem_kind kind = pem_kind(blk);
	unsigned char *der;
	size_t der_len = 0;
	char why[160];
	void *obj;

	if (kind == PEM_IGNORED)
		return 0;
	if (kind == PEM_ENCRYPTED_KEY) {
		errf(err, errlen,
		    "encrypted private key (PEM block %d) is not supported; "
		    "store it decrypted with mode 0600",
		    nth);
		return -1;
	}
	if ((der = pem_decode(blk, &der_len)) == NULL) {
		errf(err, errlen, "cannot parse PEM block %d (%s): bad base64", nth, blk->label);
		return -1;
	}
	if (kind == PEM_CERT)
		obj = cert_from_der(der, der_len, why, sizeof(why));
	else
		obj = key_from_der(der, der_len, why, sizeof(why));
	wipe_free(der, der_len);
	if (obj == NULL) {
		errf(err, errlen, "cannot parse PEM block %d (%s): %s", nth, blk->label, why);
		return -1;
	}
	if (kind == PEM_CERT)
		bundle_add_cert(b, obj);
	else
		bundle_add_key(b, obj);
	return 0;
}

static int
parse_pem(const char *buf, size_t len, struct x509_bundle *b, char *err, size_t errlen)
{
	struct pem_block blk;
	size_t pos = 0;
	int nth = 0, r;

	while ((r = pem_next(buf, len, &pos, &blk, err, errlen)) == 1)
		if (pem_block_parse(&blk, ++nth, b, err, errlen) < 0)
			return -1;
	if (r < 0)
		return -1;
	if (b->n_certs == 0 && b->n_keys == 0) {
		errf(err, errlen, "no certificate or private key in it");
		return -1;
	}
	return 0;
}

static int
parse_der(const unsigned char *buf, size_t len, struct x509_bundle *b, char *err, size_t errlen)
{
	struct x509_cert *c;
	struct x509_key *k;
	char why[96] = "";

	if (len > 0 && buf[0] == 0x30) {
		if ((c = cert_from_der(buf, len, NULL, 0)) != NULL) {
			bundle_add_cert(b, c);
			return 0;
		}
		if ((k = key_from_der(buf, len, why, sizeof(why))) != NULL) {
			bundle_add_key(b, k);
			return 0;
		}
		if (strcmp(why, key_corrupt) == 0) {
			errf(err, errlen, "%s", why);
			return -1;
		}
	}
	errf(err, errlen,
	    "cannot parse: no complete PEM block, and not a DER "
	    "certificate or private key");
	return -1;
}

int
x509_parse(const void *buf, size_t len, struct x509_bundle *b, char *err, size_t errlen)
{
	struct x509_bundle tmp = {0};
	int r;

	if (mem_find(buf, len, "-----BEGIN ") != NULL)
		r = parse_pem(buf, len, &tmp, err, errlen);
	else
		r = parse_der(buf, len, &tmp, err, errlen);
	if (r < 0) {
		x509_bundle_clear(&tmp);
		return -1;
	}
	bundle_move(b, &tmp);
	return 0;
}

/* --- PKCS#12 ---------------------------------------------------------------- */

static void
pkcs12_error(int ret, char *err, size_t errlen)
{
	if (ret == MAC_CMP_FAILED_E)
		errf(err, errlen, "cannot open PKCS#12: wrong password (or corrupt file)");
	else if (ret == ASN_PARSE_E || ret == ASN_INPUT_E || ret == ALGO_ID_E ||
	         ret == NOT_COMPILED_IN)
		errf(err, errlen,
		    "cannot decrypt PKCS#12 contents (%s): if it was exported "
		    "with 40-bit RC2 (OpenSSL 1.x, openssl pkcs12 -legacy), re-export it "
		    "with AES (the OpenSSL 3 default)",
		    wc_GetErrorString(ret));
	else
		errf(err, errlen, "cannot open PKCS#12: %s", wc_GetErrorString(ret));
}

/* The DER pieces wc_PKCS12_parse hands out, in our types. */
static int
pkcs12_collect(byte *key, word32 key_len, byte *cert, word32 cert_len, WC_DerCertList *ca,
    struct x509_bundle *b, char *err, size_t errlen)
{
	char why[160];
	void *obj;

	if (key != NULL) {
		if ((obj = key_from_der(key, key_len, why, sizeof(why))) == NULL)
			goto fail;
		bundle_add_key(b, obj);
	}
	if (cert != NULL) {
		if ((obj = cert_from_der(cert, cert_len, why, sizeof(why))) == NULL)
			goto fail;
		bundle_add_cert(b, obj);
	}
	for (; ca != NULL; ca = ca->next) {
		if ((obj = cert_from_der(ca->buffer, ca->bufferSz, why, sizeof(why))) == NULL)
			goto fail;
		bundle_add_cert(b, obj);
	}
	if (b->n_certs == 0 && b->n_keys == 0) {
		snprintf(why, sizeof(why), "it holds no certificate or key");
		goto fail;
	}
	return 0;
fail:
	errf(err, errlen, "PKCS#12: %s", why);
	return -1;
}

/* wc_FreeCertList is not exported; the list is plain XMALLOC'ed nodes. */
static void
pkcs12_free_list(WC_DerCertList *ca)
{
	while (ca != NULL) {
		WC_DerCertList *next = ca->next;
		XFREE(ca->buffer, NULL, DYNAMIC_TYPE_PKCS);
		XFREE(ca, NULL, DYNAMIC_TYPE_PKCS);
		ca = next;
	}
}

int
x509_parse_pkcs12(const void *der, size_t len, const char *password, struct x509_bundle *b,
    char *err, size_t errlen)
{
	struct x509_bundle tmp = {0};
	WC_PKCS12 *p12 = wc_PKCS12_new();
	WC_DerCertList *ca = NULL;
	byte *key = NULL, *cert = NULL;
	word32 key_len = 0, cert_len = 0;
	int ret = -1, r;

	if (p12 == NULL)
		fatalx("wc_PKCS12_new");
	if (wc_d2i_PKCS12(der, (word32)len, p12) != 0) {
		errf(err, errlen, "not a PKCS#12 file (cannot parse)");
		goto done;
	}
	r = wc_PKCS12_parse(p12, password, &key, &key_len, &cert, &cert_len, &ca);
	if (r != 0) {
		pkcs12_error(r, err, errlen);
		goto done;
	}
	if (pkcs12_collect(key, key_len, cert, cert_len, ca, &tmp, err, errlen) == 0) {
		bundle_move(b, &tmp);
		ret = 0;
	}
done:
	x509_bundle_clear(&tmp);
	if (key != NULL) {
		explicit_bzero(key, key_len);
		XFREE(key, NULL, DYNAMIC_TYPE_PUBLIC_KEY);
	}
	XFREE(cert, NULL, DYNAMIC_TYPE_PKCS);
	pkcs12_free_list(ca);
	wc_PKCS12_free(p12);
	return ret;
}

/* --- loading check ---------------------------------------------------------- */

int
x509_check_pair(const char *chain_pem, size_t chain_len, const unsigned char *key_der,
    size_t key_len, char *err, size_t errlen)
{
	WOLFSSL_CTX *ctx;
	int ret = -1;

	if (wolfSSL_Init() != WOLFSSL_SUCCESS) {
		errf(err, errlen, "wolfSSL_Init failed");
		return -1;
	}
	if ((ctx = wolfSSL_CTX_new(wolfSSLv23_client_method())) == NULL) {
		errf(err, errlen, "cannot create a TLS context");
		goto done;
	}
	if (wolfSSL_CTX_use_certificate_chain_buffer(
	        ctx, (const unsigned char *)chain_pem, (long)chain_len) != WOLFSSL_SUCCESS)
		errf(err, errlen, "TLS library refuses the certificate chain");
	else if (wolfSSL_CTX_use_PrivateKey_buffer(
	             ctx, key_der, (long)key_len, WOLFSSL_FILETYPE_ASN1) != WOLFSSL_SUCCESS)
		errf(err, errlen, "TLS library refuses the private key");
	else if (wolfSSL_CTX_check_private_key(ctx) != WOLFSSL_SUCCESS)
		errf(err, errlen, "private key does not match the certificate");
	else
		ret = 0;
	wolfSSL_CTX_free(ctx);
done:
	wolfSSL_Cleanup();
	return ret;
}

void
x509_thread_cleanup(void)
{
#ifdef FP_ECC
	wc_ecc_fp_free();
#endif
}

/* --- making keys ------------------------------------------------------------ */

#define KEY_DER_MAX 4096 /* PKCS#8 of RSA 4096 is about 2.4 KB */

static int
rng_open(WC_RNG *rng, char *err, size_t errlen)
{
	if (wc_InitRng(rng) == 0)
		return 0;
	errf(err, errlen, "cannot seed the random number generator");
	return -1;
}

/* PKCS#8 of a new EC key, public point included (as OpenSSL writes it). */
static int
ec_generate(int bits, unsigned char *der, word32 *der_len, WC_RNG *rng)
{
	int id = bits == 256 ? ECC_SECP256R1 : ECC_SECP384R1, ret = -1;
	ecc_key ecc;

	if (wc_ecc_init(&ecc) != 0)
		return -1;
	if (wc_ecc_make_key_ex(rng, wc_ecc_get_curve_size_from_id(id), &ecc, id) == 0 &&
	    wc_EccKeyToPKCS8(&ecc, der, der_len) > 0)
		ret = 0;
	wc_ecc_free(&ecc);
	return ret;
}

/* PKCS#8 of a new RSA key, e = 65537. wolfCrypt only writes RSA keys in
 * the traditional form, so wrap that. */
static int
rsa_generate(int bits, unsigned char *der, word32 *der_len, WC_RNG *rng)
{
	unsigned char trad[KEY_DER_MAX];
	RsaKey rsa;
	int n, ret = -1;

	if (wc_InitRsaKey(&rsa, NULL) != 0)
		return -1;
	if (wc_MakeRsaKey(&rsa, bits, WC_RSA_EXPONENT, rng) == 0 &&
	    (n = wc_RsaKeyToDer(&rsa, trad, sizeof(trad))) > 0 &&
	    wc_CreatePKCS8Key(der, der_len, trad, (word32)n, RSAk, NULL, 0) > 0)
		ret = 0;
	wc_FreeRsaKey(&rsa);
	explicit_bzero(trad, sizeof(trad));
	return ret;
}

static int
key_size_ok(enum x509_key_type type, int bits, char *err, size_t errlen)
{
	if (type == X509_KEY_EC && (bits == 256 || bits == 384))
		return 0;
	/* the sizes Vault and every CA accept */
	if (type == X509_KEY_RSA && (bits == 2048 || bits == 3072 || bits == 4096))
		return 0;
	if (type == X509_KEY_EC)
		errf(err, errlen, "EC keys are 256 (P-256) or 384 (P-384) bits, not %d", bits);
	else if (type == X509_KEY_RSA)
		errf(err, errlen, "RSA keys are 2048, 3072 or 4096 bits, not %d", bits);
	else
		errf(err, errlen, "can only generate RSA and EC keys");
	return -1;
}

struct x509_key *
x509_key_generate(enum x509_key_type type, int bits, char *err, size_t errlen)
{
	unsigned char der[KEY_DER_MAX];
	word32 der_len = sizeof(der);
	struct x509_key *k = NULL;
	WC_RNG rng;
	int r;

	if (key_size_ok(type, bits, err, errlen) < 0 || rng_open(&rng, err, errlen) < 0)
		return NULL;
	if (type == X509_KEY_EC)
		r = ec_generate(bits, der, &der_len, &rng);
	else
		r = rsa_generate(bits, der, &der_len, &rng);
	wc_FreeRng(&rng);
	/* through the parser, so the key is described exactly as if loaded */
	if (r < 0)
		errf(err, errlen, "cannot generate a %s %d key", type == X509_KEY_EC ? "EC" : "RSA",
		    bits);
	else
		k = key_from_der(der, der_len, err, errlen);
	explicit_bzero(der, sizeof(der));
	return k;
}

char *
x509_key_pem(const struct x509_key *k, size_t *len)
{
	word32 idx = 0;
	int type;

	/* the same test key_from_der uses to find the traditional key inside */
	if (wc_GetPkcs8TraditionalOffset(k->der, &idx, (word32)k->der_len) >= 0)
		type = PKCS8_PRIVATEKEY_TYPE;
	else if (k->type == X509_KEY_EC)
		type = ECC_PRIVATEKEY_TYPE;
	else
		type = PRIVATEKEY_TYPE;
	return der_pem(k->der, k->der_len, type, len);
}

/* --- certificate requests --------------------------------------------------- */

#define SAN_DNS_MAX 253  /* RFC 1035 text form */
#define SAN_URI_MAX 2048 /* SPIFFE's limit for an ID */

/* GeneralName tags, context-specific and implicit (RFC 5280 4.2.1.6) */
#define GN_DNS 0x82
#define GN_URI 0x86
#define GN_IP  0x87

/* The private key as wolfCrypt signs with it. */
struct signer {
	int type; /* RSA_TYPE or ECC_TYPE, as wc_MakeCertReq_ex wants */
	union {
		RsaKey rsa;
		ecc_key ecc;
	} u;
};

/* Append a DER TLV (short or long form length) at *pos. */
static int
der_put(unsigned char *buf, size_t cap, size_t *pos, int tag, const void *v, size_t len)
{
	unsigned char hdr[4];
	size_t n = 0;

	hdr[n++] = (unsigned char)tag;
	if (len >= 0x100)
		hdr[n++] = 0x82;
	else if (len >= 0x80)
		hdr[n++] = 0x81;
	if (len >= 0x100)
		hdr[n++] = (unsigned char)(len >> 8);
	hdr[n++] = (unsigned char)len;
	if (len > 0xffff || n + len > cap - *pos)
		return -1;
	memcpy(buf + *pos, hdr, n);
	memcpy(buf + *pos + n, v, len);
	*pos += n + len;
	return 0;
}

/* Length 1..max, and only the characters in [lo, 0x7e]. */
static int
text_ok(const char *s, size_t max, unsigned char lo)
{
	size_t n = strlen(s);

	if (n == 0 || n > max)
		return 0;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] < lo || (unsigned char)s[i] > 0x7e)
			return 0;
	return 1;
}

/* IA5String names (DNS or URI): printable ASCII without spaces. */
static int
san_put_names(unsigned char *buf, size_t cap, size_t *pos, int tag, char *const *v, size_t n,
    char *err, size_t errlen)
{
	const char *what = tag == GN_DNS ? "DNS name" : "URI";
	size_t max = tag == GN_DNS ? SAN_DNS_MAX : SAN_URI_MAX;

	for (size_t i = 0; i < n; i++) {
		/* by position: the text may hold control characters */
		if (!text_ok(v[i], max, 0x21)) {
			errf(err, errlen,
			    "%s %zu must be 1 to %zu printable ASCII characters, no spaces", what,
			    i + 1, max);
			return -1;
		}
		if (der_put(buf, cap, pos, tag, v[i], strlen(v[i])) < 0) {
			errf(err, errlen, "too many subject alternative names");
			return -1;
		}
	}
	return 0;
}

static int
san_put_ips(
    unsigned char *buf, size_t cap, size_t *pos, char *const *v, size_t n, char *err, size_t errlen)
{
	unsigned char a[16];
	size_t alen;

	for (size_t i = 0; i < n; i++) {
		if (inet_pton(AF_INET, v[i], a) == 1)
			alen = 4;
		else if (inet_pton(AF_INET6, v[i], a) == 1)
			alen = 16;
		else {
			errf(err, errlen, "IP address %zu is not an IPv4 or IPv6 address", i + 1);
			return -1;
		}
		if (der_put(buf, cap, pos, GN_IP, a, alen) < 0) {
			errf(err, errlen, "too many subject alternative names");
			return -1;
		}
	}
	return 0;
}

/*
 * The GeneralNames SEQUENCE into req->altNames, which is what wolfSSL wants
 * there (it adds the extension around it, and for a request the
 * extensionRequest attribute). No names: no extension.
 */
static int
csr_san(Cert *req, char *const *dns, size_t n_dns, char *const *ips, size_t n_ips,
    char *const *uris, size_t n_uris, char *err, size_t errlen)
{
	size_t cap = sizeof(req->altNames) - 4, pos = 0, apos = 0; /* 4: SEQUENCE header */
	unsigned char *names = xmalloc(cap);
	int ret = -1;

	if (san_put_names(names, cap, &pos, GN_DNS, dns, n_dns, err, errlen) < 0 ||
	    san_put_ips(names, cap, &pos, ips, n_ips, err, errlen) < 0 ||
	    san_put_names(names, cap, &pos, GN_URI, uris, n_uris, err, errlen) < 0)
		goto done;
	req->altNamesSz = 0;
	if (pos > 0) {
		if (der_put(req->altNames, sizeof(req->altNames), &apos, 0x30, names, pos) < 0)
			fatalx("subject alternative names do not fit"); /* cap says they do */
		req->altNamesSz = (int)apos;
	}
	ret = 0;
done:
	free(names);
	return ret;
}

/* wolfSSL copies the name into a fixed array: refuse what it would cut. */
static int
csr_subject(Cert *req, const char *cn, char *err, size_t errlen)
{
	if (cn == NULL || !text_ok(cn, sizeof(req->subject.commonName) - 1, 0x20)) {
		errf(err, errlen, "common name must be 1 to %zu characters of printable ASCII",
		    sizeof(req->subject.commonName) - 1);
		return -1;
	}
	memcpy(req->subject.commonName, cn, strlen(cn) + 1);
	return 0;
}

/* The EC public point is recomputed: a traditional key may not carry it,
 * and the request must hold the key's own. */
static int
signer_load(struct signer *s, const struct x509_key *k)
{
	word32 idx = 0, len = (word32)k->der_len;

	if (wc_GetPkcs8TraditionalOffset(k->der, &idx, len) < 0)
		idx = 0;
	if (k->type == X509_KEY_RSA) {
		s->type = RSA_TYPE;
		if (wc_InitRsaKey(&s->u.rsa, NULL) != 0)
			return -1;
		if (wc_RsaPrivateKeyDecode(k->der, &idx, &s->u.rsa, len) == 0)
			return 0;
		wc_FreeRsaKey(&s->u.rsa);
		return -1;
	}
	if (k->type != X509_KEY_EC || wc_ecc_init(&s->u.ecc) != 0)
		return -1;
	s->type = ECC_TYPE;
	if (wc_EccPrivateKeyDecode(k->der, &idx, &s->u.ecc, len) == 0 &&
	    wc_ecc_make_pub(&s->u.ecc, NULL) == 0)
		return 0;
	wc_ecc_free(&s->u.ecc);
	return -1;
}

static void
signer_free(struct signer *s)
{
	if (s->type == RSA_TYPE)
		wc_FreeRsaKey(&s->u.rsa);
	else
		wc_ecc_free(&s->u.ecc);
}

/* The hash matches the key's strength, as CAs expect (RFC 5480 4). */
static int
sig_type(const struct x509_key *k)
{
	if (k->type == X509_KEY_RSA)
		return CTC_SHA256wRSA;
	if (k->bits <= 256)
		return CTC_SHA256wECDSA;
	return k->bits <= 384 ? CTC_SHA384wECDSA : CTC_SHA512wECDSA;
}

static char *
csr_sign(
    Cert *req, const struct x509_key *k, struct signer *s, WC_RNG *rng, char *err, size_t errlen)
{
	size_t cap = (size_t)req->altNamesSz + 4096; /* + name, RSA 4096 key and signature */
	unsigned char *der = xmalloc(cap);
	void *key = s->type == RSA_TYPE ? (void *)&s->u.rsa : (void *)&s->u.ecc;
	char *pem = NULL;
	int n;

	req->version = 0; /* CertificationRequestInfo has only v1 */
	req->sigType = sig_type(k);
	if ((n = wc_MakeCertReq_ex(req, der, (word32)cap, s->type, key)) < 0 ||
	    (n = wc_SignCert_ex(req->bodySz, req->sigType, der, (word32)cap, s->type, key, rng)) <
	        0)
		errf(err, errlen, "cannot make the certificate request: %s", wc_GetErrorString(n));
	else
		pem = der_pem(der, (size_t)n, CERTREQ_TYPE, NULL);
	free(der);
	return pem;
}

char *
x509_csr_pem(const struct x509_key *key, const char *cn, char *const *dns, size_t n_dns,
    char *const *ips, size_t n_ips, char *const *uris, size_t n_uris, char *err, size_t errlen)
{
	Cert *req = xmalloc(sizeof(*req)); /* ~20 KB: not on the stack */
	struct signer s;
	char *pem = NULL;
	WC_RNG rng;

	if (wc_InitCert(req) != 0)
		fatalx("wc_InitCert");
	if (csr_subject(req, cn, err, errlen) < 0 ||
	    csr_san(req, dns, n_dns, ips, n_ips, uris, n_uris, err, errlen) < 0)
		goto done;
	if (signer_load(&s, key) < 0) {
		errf(err, errlen, "cannot use the private key for signing");
		goto done;
	}
	if (rng_open(&rng, err, errlen) == 0) {
		pem = csr_sign(req, key, &s, &rng, err, errlen);
		wc_FreeRng(&rng);
	}
	signer_free(&s);
done:
	free(req);
	return pem;
}

/* --- base64 ----------------------------------------------------------------- */

static int
b64_char(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
	       c == '+' || c == '/';
}

/*
 * wolfSSL's Base64_Decode skips newlines and spaces but not tabs, and
 * quietly drops a short last group ("QUJDRA" gives 3 bytes) and anything
 * after padding; so whitespace goes first, and the alphabet, the length
 * and the padding are checked here.
 */
unsigned char *
x509_base64_decode(const char *s, size_t len, size_t *out_len)
{
	char *clean = xmalloc(len + 1);
	unsigned char *out = NULL, c;
	size_t n = 0, pad = 0, cap;
	word32 olen;

	for (size_t i = 0; i < len; i++) {
		c = (unsigned char)s[i];
		if (c == ' ' || c == '\t' || c == '\r' || c == '\n')
			continue;
		if (c == '=')
			pad++;
		else if (pad > 0 || !b64_char(c))
			goto done;
		clean[n++] = (char)c;
	}
	if (n == 0 || n % 4 != 0 || pad > 2)
		goto done;
	cap = n / 4 * 3 + 3;
	olen = (word32)cap;
	out = xmalloc(cap);
	if (Base64_Decode((const byte *)clean, (word32)n, out, &olen) != 0) {
		wipe_free(out, cap);
		out = NULL;
	} else
		*out_len = olen;
done:
	wipe_free(clean, len + 1);
	return out;
}

/* --- extensions and signature (mtlsctl) ------------------------------------- */

/* tbsCertificate's extensions ([3] EXPLICIT SEQUENCE), if any. */
static int
cert_extensions(const struct x509_cert *c, struct der *exts)
{
	struct der cur = {c->der, c->der_len}, cert, tbs, v;
	int tag;

	if (der_expect(&cur, DER_SEQUENCE, &cert) < 0 ||
	    der_expect(&cert, DER_SEQUENCE, &tbs) < 0)
		return -1;
	while (der_next(&tbs, &tag, &v) == 0)
		if (tag == 0xa3)
			return der_expect(&v, DER_SEQUENCE, exts);
	return -1;
}

static const unsigned char oid_san[] = {0x55, 0x1d, 0x11};

/* Append "TYPE:value" for one GeneralName; non-printable bytes become '?'. */
static void
san_append(char *out, size_t cap, size_t *pos, int tag, const struct der *v)
{
	char ip[INET6_ADDRSTRLEN] = "?";
	const char *type;

	switch (tag) {
	case 0x81: type = "email"; break;
	case 0x82: type = "DNS"; break;
	case 0x86: type = "URI"; break;
	case 0x87: type = "IP"; break;
	default: return;        /* otherName, directoryName, ...: not shown */
	}
	*pos += (size_t)snprintf(out + *pos, cap - *pos, "%s%s:", *pos ? ", " : "", type);
	if (*pos >= cap)
		return;
	if (tag == 0x87) {
		if (v->len == 4 || v->len == 16)
			inet_ntop(v->len == 4 ? AF_INET : AF_INET6, v->p, ip, sizeof(ip));
		*pos += (size_t)snprintf(out + *pos, cap - *pos, "%s", ip);
		return;
	}
	for (size_t i = 0; i < v->len && *pos + 1 < cap; i++)
		out[(*pos)++] = (char)(v->p[i] < 0x21 || v->p[i] > 0x7e ? '?' : v->p[i]);
	out[*pos] = '\0';
}

char *
x509_cert_sans(const struct x509_cert *c)
{
	struct der exts, ext, oid, val, names, gn;
	char out[2048];
	size_t pos = 0;
	int tag;

	out[0] = '\0';
	if (cert_extensions(c, &exts) < 0)
		return NULL;
	while (der_expect(&exts, DER_SEQUENCE, &ext) == 0) {
		if (der_expect(&ext, DER_OID, &oid) < 0 || !DER_OID_EQ(&oid, oid_san))
			continue;
		(void)der_expect(&ext, 0x01, &val);     /* critical */
		if (der_expect(&ext, DER_OCTETS, &val) < 0 ||
		    der_expect(&val, DER_SEQUENCE, &names) < 0)
			return NULL;
		while (pos + 1 < sizeof(out) && der_next(&names, &tag, &gn) == 0)
			san_append(out, sizeof(out), &pos, tag, &gn);
		return pos > 0 ? xstrdup(out) : NULL;
	}
	return NULL;
}

static const struct {
	unsigned char oid[9];
	size_t len;
	const char *name;
	int weak;
} sig_algs[] = {
	{{0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0b}, 9, "sha256WithRSAEncryption", 0},
	{{0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0c}, 9, "sha384WithRSAEncryption", 0},
	{{0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0d}, 9, "sha512WithRSAEncryption", 0},
	{{0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0a}, 9, "RSASSA-PSS", 0},
	{{0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x05}, 9, "sha1WithRSAEncryption", 1},
	{{0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x04}, 9, "md5WithRSAEncryption", 1},
	{{0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02}, 8, "ecdsa-with-SHA256", 0},
	{{0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x03}, 8, "ecdsa-with-SHA384", 0},
	{{0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x04}, 8, "ecdsa-with-SHA512", 0},
	{{0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x01}, 7, "ecdsa-with-SHA1", 1},
	{{0x2b, 0x65, 0x70}, 3, "Ed25519", 0},
};

const char *
x509_cert_sig_alg(const struct x509_cert *c, int *weak)
{
	struct der cur = {c->der, c->der_len}, cert, tbs, alg, oid;

	*weak = 0;
	if (der_expect(&cur, DER_SEQUENCE, &cert) < 0 ||
	    der_expect(&cert, DER_SEQUENCE, &tbs) < 0 ||
	    der_expect(&cert, DER_SEQUENCE, &alg) < 0 || der_expect(&alg, DER_OID, &oid) < 0)
		return "unknown";
	for (size_t i = 0; i < ARRAY_LEN(sig_algs); i++)
		if (der_oid_eq(&oid, sig_algs[i].oid, sig_algs[i].len)) {
			*weak = sig_algs[i].weak;
			return sig_algs[i].name;
		}
	return "unknown";
}

/* --- primitives for PKCS#12 (p12.c) ----------------------------------------- */

static int
wc_hash(enum x509_digest d)
{
	switch (d) {
	case X509_DIGEST_SHA1: return WC_SHA;
	case X509_DIGEST_SHA256: return WC_SHA256;
	case X509_DIGEST_SHA384: return WC_SHA384;
	case X509_DIGEST_SHA512: return WC_SHA512;
	}
	return -1;
}

size_t
x509_digest_size(enum x509_digest d)
{
	switch (d) {
	case X509_DIGEST_SHA1: return 20;
	case X509_DIGEST_SHA256: return 32;
	case X509_DIGEST_SHA384: return 48;
	case X509_DIGEST_SHA512: return 64;
	}
	return 0;
}

int
x509_random(void *buf, size_t len)
{
	WC_RNG rng;
	int ret;

	if (wc_InitRng(&rng) != 0)
		return -1;
	ret = wc_RNG_GenerateBlock(&rng, buf, (word32)len) == 0 ? 0 : -1;
	wc_FreeRng(&rng);
	return ret;
}

int
x509_pbkdf2(enum x509_digest prf, const void *pw, size_t pw_len, const unsigned char *salt,
    size_t salt_len, long iter, unsigned char *out, size_t out_len)
{
	if (iter < 1 || iter > INT32_MAX || wc_hash(prf) < 0)
		return -1;
	return wc_PBKDF2(out, pw, (int)pw_len, salt, (int)salt_len, (int)iter, (int)out_len,
	    wc_hash(prf)) == 0 ? 0 : -1;
}

int
x509_pkcs12_kdf(enum x509_digest d, const unsigned char *bmp_pw, size_t pw_len,
    const unsigned char *salt, size_t salt_len, long iter, int id, unsigned char *out,
    size_t out_len)
{
	if (iter < 1 || iter > INT32_MAX || wc_hash(d) < 0)
		return -1;
	return wc_PKCS12_PBKDF_ex(out, bmp_pw, (int)pw_len, salt, (int)salt_len, (int)iter,
	    (int)out_len, wc_hash(d), id, NULL) == 0 ? 0 : -1;
}

int
x509_hmac(enum x509_digest d, const unsigned char *key, size_t key_len, const void *data,
    size_t len, unsigned char *out)
{
	Hmac h;
	int ret = -1;

	if (wc_hash(d) < 0 || wc_HmacInit(&h, NULL, INVALID_DEVID) != 0)
		return -1;
	if (wc_HmacSetKey(&h, wc_hash(d), key, (word32)key_len) == 0 &&
	    wc_HmacUpdate(&h, data, (word32)len) == 0 && wc_HmacFinal(&h, out) == 0)
		ret = 0;
	wc_HmacFree(&h);
	return ret;
}

void
x509_sha1(const void *data, size_t len, unsigned char out[20])
{
	if (wc_ShaHash(data, (word32)len, out) != 0)
		fatalx("SHA-1 failed");
}

unsigned char *
x509_aes_cbc_encrypt(const unsigned char *key, size_t key_len, const unsigned char iv[16],
    const void *in, size_t len, size_t *out_len)
{
	size_t pad = 16 - len % 16, n = len + pad;     /* PKCS#7: always 1..16 */
	unsigned char *buf = xmalloc(n), *out = xmalloc(n);
	Aes aes;
	int ok = 0;

	memcpy(buf, in, len);
	memset(buf + len, (int)pad, pad);
	if (wc_AesInit(&aes, NULL, INVALID_DEVID) == 0) {
		ok = wc_AesSetKey(&aes, key, (word32)key_len, iv, AES_ENCRYPTION) == 0 &&
		     wc_AesCbcEncrypt(&aes, out, buf, (word32)n) == 0;
		wc_AesFree(&aes);
	}
	wipe_free(buf, n);
	if (!ok) {
		free(out);
		return NULL;
	}
	*out_len = n;
	return out;
}

unsigned char *
x509_key_pkcs8(const struct x509_key *k, size_t *len)
{
	unsigned char der[KEY_DER_MAX], *out = NULL;
	word32 idx = 0, n = sizeof(der);
	ecc_key ecc;
	int ok = 0;

	if (wc_GetPkcs8TraditionalOffset(k->der, &idx, (word32)k->der_len) >= 0) {
		out = xmalloc(k->der_len);
		memcpy(out, k->der, k->der_len);
		*len = k->der_len;
		return out;
	}
	idx = 0;
	if (k->type == X509_KEY_RSA)
		ok = wc_CreatePKCS8Key(der, &n, k->der, (word32)k->der_len, RSAk, NULL, 0) > 0;
	else if (k->type == X509_KEY_EC && wc_ecc_init(&ecc) == 0) {
		ok = wc_EccPrivateKeyDecode(k->der, &idx, &ecc, (word32)k->der_len) == 0 &&
		     wc_ecc_make_pub(&ecc, NULL) == 0 && wc_EccKeyToPKCS8(&ecc, der, &n) > 0;
		wc_ecc_free(&ecc);
	}
	if (ok) {
		out = xmalloc(n);
		memcpy(out, der, n);
		*len = n;
	}
	explicit_bzero(der, sizeof(der));
	return out;
}
