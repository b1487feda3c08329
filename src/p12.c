/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * PKCS#12 structure. wolfSSL 5.5's wc_PKCS12_create() can only encrypt with
 * RC4, DES or 3DES (OpenSSL 3 needs -legacy for some of these and current
 * Java discourages them), so the file is assembled here as OpenSSL 3 writes
 * it: the certificates in an encryptedData, the key in a
 * pkcs8ShroudedKeyBag, both PBES2 (PBKDF2-HMAC-SHA256, AES-256-CBC), and an
 * HMAC-SHA256 MAC over the whole. The crypto comes from x509.c.
 */
#include "autoconf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "der.h"
#include "p12.h"
#include "util.h"
#include "x509.h"

const char p12_create_desc[] =
    "PBES2 (PBKDF2-HMAC-SHA256, AES-256-CBC), HMAC-SHA256 MAC";

#define PKCS1(x) 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, x
static const unsigned char oid_data[] = {PKCS1(0x07), 0x01};
static const unsigned char oid_encrypted_data[] = {PKCS1(0x07), 0x06};
static const unsigned char oid_key_bag[] = {PKCS1(0x0c), 0x0a, 0x01, 0x01};
static const unsigned char oid_shrouded_key_bag[] = {PKCS1(0x0c), 0x0a, 0x01, 0x02};
static const unsigned char oid_cert_bag[] = {PKCS1(0x0c), 0x0a, 0x01, 0x03};
static const unsigned char oid_x509_cert[] = {PKCS1(0x09), 0x16, 0x01};
static const unsigned char oid_friendly_name[] = {PKCS1(0x09), 0x14};
static const unsigned char oid_local_key_id[] = {PKCS1(0x09), 0x15};
static const unsigned char oid_pbes2[] = {PKCS1(0x05), 0x0d};
static const unsigned char oid_pbkdf2[] = {PKCS1(0x05), 0x0c};
static const unsigned char oid_pkcs12_pbe[] = {PKCS1(0x0c), 0x01};     /* + 1..6 */
static const unsigned char oid_pkcs5_pbe[] = {PKCS1(0x05)};            /* + 1..11 */
static const unsigned char oid_hmac[] = {0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x02};
static const unsigned char oid_nist_aes[] = {0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x01};
static const unsigned char oid_nist_hash[] = {0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02};
static const unsigned char oid_des_ede3_cbc[] = {0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x03, 0x07};
static const unsigned char oid_rc2_cbc[] = {0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x03, 0x02};
static const unsigned char oid_sha1[] = {0x2b, 0x0e, 0x03, 0x02, 0x1a};

static void errf(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
errf(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

/* Is oid = prefix + one more byte? That byte, else -1. */
static int
oid_arc(const struct der *oid, const unsigned char *prefix, size_t n)
{
	if (oid->len != n + 1 || memcmp(oid->p, prefix, n) != 0)
		return -1;
	return oid->p[n];
}

#define OID_ARC(v, arr) oid_arc((v), (arr), sizeof(arr))

/* --- reading: algorithm identifiers ---------------------------------------- */

static const char *
digest_name(enum x509_digest d)
{
	switch (d) {
	case X509_DIGEST_SHA1: return "SHA1";
	case X509_DIGEST_SHA256: return "SHA256";
	case X509_DIGEST_SHA384: return "SHA384";
	case X509_DIGEST_SHA512: return "SHA512";
	}
	return "?";
}

/* hmacWithSHA1 (7), SHA256 (9), SHA384 (10), SHA512 (11). */
static enum x509_digest
hmac_digest(int arc)
{
	switch (arc) {
	case 7: return X509_DIGEST_SHA1;
	case 9: return X509_DIGEST_SHA256;
	case 10: return X509_DIGEST_SHA384;
	case 11: return X509_DIGEST_SHA512;
	}
	return 0;
}

/* A DigestInfo's hash: sha1, or NIST sha256 (1), sha384 (2), sha512 (3). */
static enum x509_digest
hash_digest(const struct der *oid)
{
	if (DER_OID_EQ(oid, oid_sha1))
		return X509_DIGEST_SHA1;
	switch (OID_ARC(oid, oid_nist_hash)) {
	case 1: return X509_DIGEST_SHA256;
	case 2: return X509_DIGEST_SHA384;
	case 3: return X509_DIGEST_SHA512;
	}
	return 0;
}

static const struct {
	int arc;
	enum p12_cipher cipher;
	const char *name;
} pkcs12_pbes[] = {
	{1, P12_CIPHER_RC4, "pbeWithSHAAnd128BitRC4"},
	{2, P12_CIPHER_RC4, "pbeWithSHAAnd40BitRC4"},
	{3, P12_CIPHER_3DES, "pbeWithSHAAnd3-KeyTripleDES-CBC"},
	{4, P12_CIPHER_3DES, "pbeWithSHAAnd2-KeyTripleDES-CBC"},
	{5, P12_CIPHER_RC2, "pbeWithSHAAnd128BitRC2-CBC"},
	{6, P12_CIPHER_RC2, "pbeWithSHAAnd40BitRC2-CBC"},
}, pkcs5_pbes[] = {
	{3, P12_CIPHER_DES, "pbeWithMD5AndDES-CBC"},
	{6, P12_CIPHER_RC2, "pbeWithMD5AndRC2-CBC"},
	{10, P12_CIPHER_DES, "pbeWithSHA1AndDES-CBC"},
	{11, P12_CIPHER_RC2, "pbeWithSHA1AndRC2-CBC"},
};

/* PKCS#12 or PKCS#5 v1 PBE: params SEQUENCE { salt, iterations }. */
static int
pbe_v1(struct p12_part *part, const struct der *oid, struct der params)
{
	int a12 = OID_ARC(oid, oid_pkcs12_pbe), a5 = OID_ARC(oid, oid_pkcs5_pbe);
	struct der seq, v;

	for (size_t i = 0; i < ARRAY_LEN(pkcs12_pbes) && a12 >= 0; i++)
		if (pkcs12_pbes[i].arc == a12) {
			part->cipher = pkcs12_pbes[i].cipher;
			snprintf(part->alg, sizeof(part->alg), "%s", pkcs12_pbes[i].name);
		}
	for (size_t i = 0; i < ARRAY_LEN(pkcs5_pbes) && a5 >= 0; i++)
		if (pkcs5_pbes[i].arc == a5) {
			part->cipher = pkcs5_pbes[i].cipher;
			snprintf(part->alg, sizeof(part->alg), "%s", pkcs5_pbes[i].name);
		}
	if (part->cipher == P12_CIPHER_NONE)
		return -1;
	if (der_expect(&params, DER_SEQUENCE, &seq) == 0 &&
	    der_expect(&seq, DER_OCTETS, &v) == 0 && der_expect(&seq, DER_INTEGER, &v) == 0)
		(void)der_long(&v, &part->iterations);
	return 0;
}

/* The cipher of a PBES2 encryptionScheme. */
static const char *
pbes2_cipher(const struct der *oid, enum p12_cipher *c)
{
	*c = P12_CIPHER_AES;
	switch (OID_ARC(oid, oid_nist_aes)) {
	case 2: return "AES-128-CBC";
	case 22: return "AES-192-CBC";
	case 42: return "AES-256-CBC";
	}
	*c = DER_OID_EQ(oid, oid_des_ede3_cbc) ? P12_CIPHER_3DES :
	     DER_OID_EQ(oid, oid_rc2_cbc) ? P12_CIPHER_RC2 : P12_CIPHER_OTHER;
	return *c == P12_CIPHER_3DES ? "DES-EDE3-CBC" : *c == P12_CIPHER_RC2 ? "RC2-CBC" :
	       "an unknown cipher";
}

/* PBES2-params: SEQUENCE { keyDerivationFunc, encryptionScheme }. */
static int
pbe_v2(struct p12_part *part, struct der params)
{
	struct der seq, kdf, kdf_oid, kdf_params, enc, enc_oid, v, prf, prf_oid;
	enum x509_digest d = X509_DIGEST_SHA1;  /* PBKDF2's default prf */
	const char *cipher;

	part->pbes2 = 1;
	if (der_expect(&params, DER_SEQUENCE, &seq) < 0 ||
	    der_expect(&seq, DER_SEQUENCE, &kdf) < 0 || der_expect(&kdf, DER_OID, &kdf_oid) < 0 ||
	    der_expect(&seq, DER_SEQUENCE, &enc) < 0 || der_expect(&enc, DER_OID, &enc_oid) < 0)
		return -1;
	cipher = pbes2_cipher(&enc_oid, &part->cipher);
	if (!DER_OID_EQ(&kdf_oid, oid_pbkdf2)) {
		snprintf(part->alg, sizeof(part->alg), "PBES2 (unknown KDF, %s)", cipher);
		return 0;
	}
	if (der_expect(&kdf, DER_SEQUENCE, &kdf_params) == 0 &&
	    der_expect(&kdf_params, DER_OCTETS, &v) == 0 &&
	    der_expect(&kdf_params, DER_INTEGER, &v) == 0) {
		(void)der_long(&v, &part->iterations);
		(void)der_expect(&kdf_params, DER_INTEGER, &v);        /* keyLength */
		if (der_expect(&kdf_params, DER_SEQUENCE, &prf) == 0 &&
		    der_expect(&prf, DER_OID, &prf_oid) == 0)
			d = hmac_digest(OID_ARC(&prf_oid, oid_hmac));
	}
	snprintf(part->alg, sizeof(part->alg), "PBES2 (PBKDF2-HMAC-%s, %s)",
	    d ? digest_name(d) : "unknown", cipher);
	return 0;
}

/* An AlgorithmIdentifier SEQUENCE's contents into part. */
static void
part_alg(struct p12_part *part, struct der alg)
{
	struct der oid, params = {NULL, 0};

	part->cipher = P12_CIPHER_NONE;
	if (der_expect(&alg, DER_OID, &oid) == 0) {
		params = alg;
		if (DER_OID_EQ(&oid, oid_pbes2) ? pbe_v2(part, params) == 0 :
		    pbe_v1(part, &oid, params) == 0)
			return;
	}
	part->cipher = P12_CIPHER_OTHER;
	snprintf(part->alg, sizeof(part->alg), "an unknown algorithm");
}

static struct p12_part *
part_add(struct p12_info *info, int is_key)
{
	struct p12_part *p;

	if (info->n_parts == P12_MAX_PARTS)
		return NULL;
	p = &info->parts[info->n_parts++];
	memset(p, 0, sizeof(*p));
	p->is_key = is_key;
	return p;
}

/* --- reading: the containers ------------------------------------------------ */

/* SafeContents in clear: key bags say how the key is protected. */
static int
inspect_bags(struct p12_info *info, struct der contents)
{
	struct der seq, bag, oid, val, epki, alg;
	struct p12_part *p;
	int clear_certs = 0;

	if (der_expect(&contents, DER_SEQUENCE, &seq) < 0)
		return -1;
	while (der_expect(&seq, DER_SEQUENCE, &bag) == 0) {
		if (der_expect(&bag, DER_OID, &oid) < 0 || der_expect(&bag, DER_CTX0, &val) < 0)
			return -1;
		if (DER_OID_EQ(&oid, oid_cert_bag))
			clear_certs = 1;
		else if (DER_OID_EQ(&oid, oid_key_bag)) {
			if ((p = part_add(info, 1)) != NULL)
				snprintf(p->alg, sizeof(p->alg), "not encrypted");
		} else if (DER_OID_EQ(&oid, oid_shrouded_key_bag)) {
			if (der_expect(&val, DER_SEQUENCE, &epki) < 0 ||
			    der_expect(&epki, DER_SEQUENCE, &alg) < 0)
				return -1;
			if ((p = part_add(info, 1)) != NULL)
				part_alg(p, alg);
		}
	}
	if (clear_certs && (p = part_add(info, 0)) != NULL)
		snprintf(p->alg, sizeof(p->alg), "not encrypted");
	return 0;
}

/* One ContentInfo of the AuthenticatedSafe. */
static int
inspect_content(struct p12_info *info, struct der ci)
{
	struct der oid, ctx, v, ed, eci;
	struct p12_part *p;

	if (der_expect(&ci, DER_OID, &oid) < 0 || der_expect(&ci, DER_CTX0, &ctx) < 0)
		return -1;
	if (DER_OID_EQ(&oid, oid_data))
		return der_expect(&ctx, DER_OCTETS, &v) < 0 ? -1 : inspect_bags(info, v);
	if ((p = part_add(info, 0)) == NULL)
		return 0;
	if (!DER_OID_EQ(&oid, oid_encrypted_data)) {
		p->cipher = P12_CIPHER_OTHER;
		snprintf(p->alg, sizeof(p->alg), "public-key encryption (not read)");
		return 0;
	}
	/* EncryptedData { version, EncryptedContentInfo { type, alg, [0] } } */
	if (der_expect(&ctx, DER_SEQUENCE, &ed) < 0 || der_expect(&ed, DER_INTEGER, &v) < 0 ||
	    der_expect(&ed, DER_SEQUENCE, &eci) < 0 || der_expect(&eci, DER_OID, &v) < 0 ||
	    der_expect(&eci, DER_SEQUENCE, &v) < 0)
		return -1;
	part_alg(p, v);
	return 0;
}

/* MacData { DigestInfo { AlgorithmIdentifier, digest }, salt, iterations } */
static int
inspect_mac(struct p12_info *info, struct der md)
{
	struct der di, alg, oid, v;

	info->has_mac = 1;
	info->mac_iterations = 1;
	if (der_expect(&md, DER_SEQUENCE, &di) < 0 || der_expect(&di, DER_SEQUENCE, &alg) < 0 ||
	    der_expect(&alg, DER_OID, &oid) < 0 || der_expect(&di, DER_OCTETS, &v) < 0)
		return -1;
	info->mac = v.p;
	info->mac_len = v.len;
	info->mac_digest = hash_digest(&oid);
	snprintf(info->mac_alg, sizeof(info->mac_alg), "HMAC-%s",
	    info->mac_digest ? digest_name(info->mac_digest) : "unknown");
	if (der_expect(&md, DER_OCTETS, &v) < 0)
		return -1;
	info->mac_salt = v.p;
	info->mac_salt_len = v.len;
	if (der_expect(&md, DER_INTEGER, &v) == 0 && der_long(&v, &info->mac_iterations) < 0)
		return -1;
	return 0;
}

int
p12_inspect(const void *buf, size_t len, struct p12_info *info, char *err, size_t errlen)
{
	struct der cur = {buf, len}, pfx, v, auth, oid, ctx, safes, ci;

	memset(info, 0, sizeof(*info));
	if (der_expect(&cur, DER_SEQUENCE, &pfx) < 0 || der_expect(&pfx, DER_INTEGER, &v) < 0) {
		errf(err, errlen, "not a PKCS#12 file (not DER; BER with indefinite lengths "
		    "is not read)");
		return -1;
	}
	if (der_expect(&pfx, DER_SEQUENCE, &auth) < 0 || der_expect(&auth, DER_OID, &oid) < 0 ||
	    der_expect(&auth, DER_CTX0, &ctx) < 0) {
		errf(err, errlen, "not a PKCS#12 file (no authSafe)");
		return -1;
	}
	if (!DER_OID_EQ(&oid, oid_data) || der_expect(&ctx, DER_OCTETS, &v) < 0) {
		errf(err, errlen, "PKCS#12 with public-key integrity (signedData) is not "
		    "supported; export it with a password");
		return -1;
	}
	info->auth_safe = v.p;
	info->auth_safe_len = v.len;
	if (der_expect(&pfx, DER_SEQUENCE, &v) == 0 && inspect_mac(info, v) < 0) {
		errf(err, errlen, "PKCS#12: malformed MAC");
		return -1;
	}
	v.p = info->auth_safe;
	v.len = info->auth_safe_len;
	if (der_expect(&v, DER_SEQUENCE, &safes) < 0) {
		errf(err, errlen, "PKCS#12: malformed contents");
		return -1;
	}
	while (der_expect(&safes, DER_SEQUENCE, &ci) == 0)
		if (inspect_content(info, ci) < 0) {
			errf(err, errlen, "PKCS#12: malformed contents");
			return -1;
		}
	return 0;
}

/* --- the password ------------------------------------------------------------ */

int
p12_password_ok(const char *pw)
{
	for (const unsigned char *p = (const unsigned char *)pw; *p != '\0'; p++)
		if (*p < 0x20 || *p > 0x7e)
			return 0;
	return 1;
}

/* The MAC's password: a BMPString (UTF-16BE) with a two-byte NUL. An
 * empty password is those two bytes, or (some writers) nothing at all. */
static unsigned char *
bmp_password(const char *pw, size_t *len)
{
	size_t n = strlen(pw);
	unsigned char *b = xcalloc(2 * n + 2, 1);

	for (size_t i = 0; i < n; i++)
		b[2 * i + 1] = (unsigned char)pw[i];
	*len = 2 * n + 2;
	return b;
}

static int
mac_compute(enum x509_digest d, const unsigned char *bmp, size_t bmp_len,
    const unsigned char *salt, size_t salt_len, long iter, const void *data, size_t len,
    unsigned char *out)
{
	unsigned char key[64];
	size_t klen = x509_digest_size(d);
	int ret = -1;

	if (klen > 0 && x509_pkcs12_kdf(d, bmp, bmp_len, salt, salt_len, iter, 3, key, klen) == 0)
		ret = x509_hmac(d, key, klen, data, len, out);
	explicit_bzero(key, sizeof(key));
	return ret;
}

int
p12_mac_check(const struct p12_info *info, const char *password)
{
	unsigned char mac[64], *bmp;
	size_t bmp_len;
	int ret = -1;

	if (!info->has_mac || info->mac_digest == 0 ||
	    info->mac_len != x509_digest_size(info->mac_digest) || !p12_password_ok(password))
		return -1;
	bmp = bmp_password(password, &bmp_len);
	for (int empty = 0; empty < 2 && ret != 1; empty++) {
		if (empty && password[0] != '\0')
			break;
		if (mac_compute(info->mac_digest, bmp, empty ? 0 : bmp_len, info->mac_salt,
		    info->mac_salt_len, info->mac_iterations, info->auth_safe,
		    info->auth_safe_len, mac) < 0)
			break;
		ret = memcmp(mac, info->mac, info->mac_len) == 0;
	}
	wipe_free(bmp, bmp_len);
	return ret;
}

/* --- writing ----------------------------------------------------------------- */

/* PBES2 AlgorithmIdentifier into alg and the raw ciphertext of data into ct. */
static int
pbes2_encrypt(const char *password, long iter, const void *data, size_t len,
    struct der_buf *alg, struct der_buf *ct)
{
	unsigned char salt[16], iv[16], key[32], *c;
	struct der_buf kdf = {0}, kdfp = {0}, prf = {0}, enc = {0}, params = {0}, t = {0};
	const unsigned char hmac_sha256[] = {0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x02, 0x09};
	const unsigned char aes256[] = {0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x01, 0x2a};
	size_t clen;
	int ret = -1;

	if (x509_random(salt, sizeof(salt)) < 0 || x509_random(iv, sizeof(iv)) < 0 ||
	    x509_pbkdf2(X509_DIGEST_SHA256, password, strlen(password), salt, sizeof(salt),
	    iter, key, sizeof(key)) < 0 ||
	    (c = x509_aes_cbc_encrypt(key, sizeof(key), iv, data, len, &clen)) == NULL)
		goto done;
	der_raw(ct, c, clen);
	free(c);
	der_tlv(&prf, DER_OID, hmac_sha256, sizeof(hmac_sha256));
	der_tlv(&prf, DER_NULL, NULL, 0);
	der_tlv(&kdfp, DER_OCTETS, salt, sizeof(salt));
	der_int(&kdfp, iter);
	der_wrap(&kdfp, DER_SEQUENCE, &prf);
	der_tlv(&kdf, DER_OID, oid_pbkdf2, sizeof(oid_pbkdf2));
	der_wrap(&kdf, DER_SEQUENCE, &kdfp);
	der_tlv(&enc, DER_OID, aes256, sizeof(aes256));
	der_tlv(&enc, DER_OCTETS, iv, sizeof(iv));
	der_wrap(&params, DER_SEQUENCE, &kdf);
	der_wrap(&params, DER_SEQUENCE, &enc);
	der_tlv(&t, DER_OID, oid_pbes2, sizeof(oid_pbes2));
	der_wrap(&t, DER_SEQUENCE, &params);
	der_wrap(alg, DER_SEQUENCE, &t);
	ret = 0;
done:
	explicit_bzero(key, sizeof(key));
	return ret;
}

/* One attribute: SEQUENCE { OID, SET { value } }. */
static void
attribute(struct der_buf *b, const unsigned char *oid, size_t oid_len, int tag,
    const void *v, size_t n)
{
	struct der_buf a = {0}, set = {0};

	der_tlv(&set, tag, v, n);
	der_tlv(&a, DER_OID, oid, oid_len);
	der_wrap(&a, DER_SET, &set);
	der_wrap(b, DER_SEQUENCE, &a);
}

/* SET OF the leaf's attributes: friendlyName and localKeyId. DER sorts a
 * SET OF by encoding; these two differ within their first bytes. */
static void
bag_attributes(struct der_buf *b, const char *name, const unsigned char id[20])
{
	struct der_buf fn = {0}, kid = {0}, set = {0};
	size_t n = strlen(name), blen;
	unsigned char *bmp = bmp_password(name, &blen);
	int fn_first;

	attribute(&fn, oid_friendly_name, sizeof(oid_friendly_name), DER_BMPSTRING, bmp,
	    2 * n);     /* no terminator in a BMPString */
	attribute(&kid, oid_local_key_id, sizeof(oid_local_key_id), DER_OCTETS, id, 20);
	fn_first = memcmp(fn.p, kid.p, fn.len < kid.len ? fn.len : kid.len) < 0 ||
	    (memcmp(fn.p, kid.p, fn.len < kid.len ? fn.len : kid.len) == 0 && fn.len < kid.len);
	der_raw(&set, fn_first ? fn.p : kid.p, fn_first ? fn.len : kid.len);
	der_raw(&set, fn_first ? kid.p : fn.p, fn_first ? kid.len : fn.len);
	der_wrap(b, DER_SET, &set);
	der_buf_free(&fn);
	der_buf_free(&kid);
	free(bmp);
}

/* SafeBag { certBag, [0] CertBag { x509Certificate, [0] OCTET STRING } } */
static void
cert_bag(struct der_buf *b, const struct x509_cert *c, const char *name,
    const unsigned char *id)
{
	struct der_buf bag = {0}, cb = {0}, x = {0}, v = {0};

	der_tlv(&x, DER_OCTETS, c->der, c->der_len);
	der_tlv(&cb, DER_OID, oid_x509_cert, sizeof(oid_x509_cert));
	der_wrap(&cb, DER_CTX0, &x);
	der_wrap(&v, DER_SEQUENCE, &cb);
	der_tlv(&bag, DER_OID, oid_cert_bag, sizeof(oid_cert_bag));
	der_wrap(&bag, DER_CTX0, &v);
	if (id != NULL)
		bag_attributes(&bag, name, id);
	der_wrap(b, DER_SEQUENCE, &bag);
}

/* ContentInfo { encryptedData, [0] EncryptedData { 0, { data, alg, [0] ct } } } */
static int
certs_content(struct der_buf *out, struct x509_cert *const *certs, size_t n,
    const char *password, long iter, const char *name, const unsigned char id[20])
{
	struct der_buf bags = {0}, safe = {0}, alg = {0}, ct = {0}, eci = {0}, ed = {0},
	    ctx = {0}, ci = {0};

	for (size_t i = 0; i < n; i++)
		cert_bag(&bags, certs[i], name, i == 0 ? id : NULL);
	der_wrap(&safe, DER_SEQUENCE, &bags);
	if (pbes2_encrypt(password, iter, safe.p, safe.len, &alg, &ct) < 0) {
		der_buf_free(&safe);
		return -1;
	}
	der_buf_free(&safe);
	der_tlv(&eci, DER_OID, oid_data, sizeof(oid_data));
	der_raw(&eci, alg.p, alg.len);
	der_tlv(&eci, DER_CTX0_PRIM, ct.p, ct.len);     /* [0] IMPLICIT OCTET STRING */
	der_buf_free(&alg);
	der_buf_free(&ct);
	der_int(&ed, 0);
	der_wrap(&ed, DER_SEQUENCE, &eci);
	der_wrap(&ctx, DER_SEQUENCE, &ed);
	der_tlv(&ci, DER_OID, oid_encrypted_data, sizeof(oid_encrypted_data));
	der_wrap(&ci, DER_CTX0, &ctx);
	der_wrap(out, DER_SEQUENCE, &ci);
	return 0;
}

/* ContentInfo { data, [0] OCTET STRING { SafeContents { shroudedKeyBag } } } */
static int
key_content(struct der_buf *out, const struct x509_key *key, const char *password, long iter,
    const char *name, const unsigned char id[20], char *err, size_t errlen)
{
	struct der_buf alg = {0}, ct = {0}, epki = {0}, v = {0}, bag = {0}, bags = {0},
	    safe = {0}, oct = {0}, ci = {0};
	unsigned char *p8;
	size_t p8_len;
	int r;

	if ((p8 = x509_key_pkcs8(key, &p8_len)) == NULL) {
		errf(err, errlen, "cannot convert the private key to PKCS#8");
		return -1;
	}
	r = pbes2_encrypt(password, iter, p8, p8_len, &alg, &ct);
	wipe_free(p8, p8_len);
	if (r < 0) {
		errf(err, errlen, "cannot encrypt the private key");
		return -1;
	}
	der_raw(&epki, alg.p, alg.len);
	der_tlv(&epki, DER_OCTETS, ct.p, ct.len);
	der_buf_free(&alg);
	der_buf_free(&ct);
	der_wrap(&v, DER_SEQUENCE, &epki);
	der_tlv(&bag, DER_OID, oid_shrouded_key_bag, sizeof(oid_shrouded_key_bag));
	der_wrap(&bag, DER_CTX0, &v);
	bag_attributes(&bag, name, id);
	der_wrap(&bags, DER_SEQUENCE, &bag);
	der_wrap(&safe, DER_SEQUENCE, &bags);
	der_wrap(&oct, DER_OCTETS, &safe);
	der_tlv(&ci, DER_OID, oid_data, sizeof(oid_data));
	der_wrap(&ci, DER_CTX0, &oct);
	der_wrap(out, DER_SEQUENCE, &ci);
	return 0;
}

/* MacData { DigestInfo { { sha256, NULL }, mac }, salt, iterations } */
static int
mac_data(struct der_buf *out, const char *password, long iter, const struct der_buf *auth)
{
	const unsigned char sha256[] = {0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01};
	struct der_buf alg = {0}, di = {0}, md = {0};
	unsigned char salt[16], mac[32], *bmp;
	size_t bmp_len;
	int r;

	if (x509_random(salt, sizeof(salt)) < 0)
		return -1;
	bmp = bmp_password(password, &bmp_len);
	r = mac_compute(X509_DIGEST_SHA256, bmp, bmp_len, salt, sizeof(salt), iter, auth->p,
	    auth->len, mac);
	wipe_free(bmp, bmp_len);
	if (r < 0)
		return -1;
	der_tlv(&alg, DER_OID, sha256, sizeof(sha256));
	der_tlv(&alg, DER_NULL, NULL, 0);
	der_wrap(&di, DER_SEQUENCE, &alg);
	der_tlv(&di, DER_OCTETS, mac, sizeof(mac));
	der_wrap(&md, DER_SEQUENCE, &di);
	der_tlv(&md, DER_OCTETS, salt, sizeof(salt));
	der_int(&md, iter);
	der_wrap(out, DER_SEQUENCE, &md);
	return 0;
}

unsigned char *
p12_create(struct x509_cert *const *certs, size_t n_certs, const struct x509_key *key,
    const char *password, const char *name, long iter, size_t *len, char *err, size_t errlen)
{
	struct der_buf contents = {0}, auth = {0}, oct = {0}, ci = {0}, pfx = {0}, out = {0};
	unsigned char id[20], *der = NULL;

	if (n_certs == 0 || !p12_password_ok(password)) {
		errf(err, errlen, n_certs == 0 ? "no certificate to export" :
		    "the password must be printable ASCII");
		return NULL;
	}
	/* localKeyId ties the key to its certificate, as OpenSSL writes it */
	x509_sha1(certs[0]->der, certs[0]->der_len, id);
	if (certs_content(&contents, certs, n_certs, password, iter, name, id) < 0) {
		errf(err, errlen, "cannot encrypt the certificates");
		goto done;
	}
	if (key_content(&contents, key, password, iter, name, id, err, errlen) < 0)
		goto done;
	der_wrap(&auth, DER_SEQUENCE, &contents);
	der_int(&pfx, 3);
	der_tlv(&oct, DER_OCTETS, auth.p, auth.len);
	der_tlv(&ci, DER_OID, oid_data, sizeof(oid_data));
	der_wrap(&ci, DER_CTX0, &oct);
	der_wrap(&pfx, DER_SEQUENCE, &ci);
	if (mac_data(&pfx, password, iter, &auth) < 0) {
		errf(err, errlen, "cannot compute the MAC");
		goto done;
	}
	der_wrap(&out, DER_SEQUENCE, &pfx);
	der = xmalloc(out.len);
	memcpy(der, out.p, out.len);
	*len = out.len;
done:
	der_buf_free(&contents);
	der_buf_free(&auth);
	der_buf_free(&pfx);
	der_buf_free(&out);
	return der;
}
