/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * PKCS#12 for mtlsctl (p12.c, der.c and their x509.c primitives), checked
 * against the openssl command line: what p12_create writes, openssl pkcs12
 * must open with the password (and refuse without it), and what openssl
 * writes (modern and -legacy), p12_inspect must describe.
 */
#include "autoconf.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "der.h"
#include "p12.h"
#include "util.h"
#include "x509.h"

static char tmp[256];

static int
group_setup(void **state)
{
	(void)state;
	snprintf(tmp, sizeof(tmp), "%s/mtlsd-p12-XXXXXX",
	    getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	return mkdtemp(tmp) != NULL ? 0 : -1;
}

static int
group_teardown(void **state)
{
	char cmd[512];

	(void)state;
	x509_thread_cleanup();
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmp);
	return system(cmd) == 0 ? 0 : -1;
}

static const char *
path(const char *name)
{
	static char p[4][512];
	static int i;

	i = (i + 1) % 4;
	snprintf(p[i], sizeof(p[i]), "%s/%s", tmp, name);
	return p[i];
}

static void
write_file(const char *name, const void *buf, size_t len)
{
	FILE *f = fopen(path(name), "w");

	assert_non_null(f);
	assert_int_equal(fwrite(buf, 1, len, f), len);
	assert_int_equal(fclose(f), 0);
}

static char *
slurp(const char *name, size_t *len)
{
	char *buf = read_file(path(name), 1 << 20, len);

	assert_non_null(buf);
	return buf;
}

static int run(char **out, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Run cmd through the shell; its stdout and stderr into *out (malloc'ed). */
static int
run(char **out, const char *fmt, ...)
{
	char cmd[2048], sh[2100], *buf = NULL;
	size_t len = 0, n;
	va_list ap;
	FILE *p;
	int st;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	/* every command of a && chain, not only the last one */
	snprintf(sh, sizeof(sh), "(%s) 2>&1", cmd);
	assert_non_null(p = popen(sh, "r"));
	do {
		buf = xrealloc(buf, len + 4097);
		n = fread(buf + len, 1, 4096, p);
		len += n;
	} while (n > 0);
	buf[len] = '\0';
	st = pclose(p);
	if (out != NULL)
		*out = buf;
	else
		free(buf);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* A fresh key of ours and a certificate for it from a throw-away CA made by
 * openssl (with SANs), both parsed; leaf.pem, ca.pem and key.pem on disk. */
struct pair {
	struct x509_bundle certs;       /* leaf, then the CA */
	struct x509_bundle key;
};

static void
pair_make(struct pair *p, enum x509_key_type type, int bits)
{
	char err[256] = "", *pem, *out = NULL;
	size_t len;
	struct x509_key *k = x509_key_generate(type, bits, err, sizeof(err));

	memset(p, 0, sizeof(*p));
	if (k == NULL)
		fail_msg("x509_key_generate: %s", err);
	pem = x509_key_pem(k, &len);
	write_file("key.pem", pem, len);
	wipe_free(pem, len);
	x509_key_free(k);
	if (run(&out, "cd '%s' && openssl req -x509 -new -newkey ec -pkeyopt "
	    "ec_paramgen_curve:P-256 -nodes -keyout ca.key -subj /CN=p12-test-ca -days 2 "
	    "-out ca.pem && openssl req -new -key key.pem -subj /CN=p12-leaf -out leaf.csr && "
	    "printf 'subjectAltName=DNS:leaf.example,IP:192.0.2.7\\nextendedKeyUsage=clientAuth\\n' "
	    ">ext && openssl x509 -req -in leaf.csr -CA ca.pem -CAkey ca.key -days 1 "
	    "-extfile ext -out leaf.pem", tmp) != 0)
		fail_msg("openssl: %s", out);
	free(out);
	pem = slurp("leaf.pem", &len);
	assert_int_equal(x509_parse(pem, len, &p->certs, err, sizeof(err)), 0);
	free(pem);
	pem = slurp("ca.pem", &len);
	assert_int_equal(x509_parse(pem, len, &p->certs, err, sizeof(err)), 0);
	free(pem);
	pem = slurp("key.pem", &len);
	assert_int_equal(x509_parse(pem, len, &p->key, err, sizeof(err)), 0);
	wipe_free(pem, len);
	assert_int_equal(p->certs.n_certs, 2);
	assert_int_equal(p->key.n_keys, 1);
}

static void
pair_free(struct pair *p)
{
	x509_bundle_clear(&p->certs);
	x509_bundle_clear(&p->key);
}

/* p12_create, written to name */
static void
create(const struct pair *p, const char *pw, const char *name)
{
	char err[256] = "";
	size_t len;
	unsigned char *der = p12_create(p->certs.certs, p->certs.n_certs, p->key.keys[0], pw,
	    "leaf-name", 2048, &len, err, sizeof(err));

	if (der == NULL)
		fail_msg("p12_create: %s", err);
	write_file(name, der, len);
	free(der);
}

/* --- DER ------------------------------------------------------------------ */

static void
t_der_int(void **state)
{
	static const struct {
		long v;
		unsigned char enc[6];
		size_t n;
	} cases[] = {
		{0, {0x02, 0x01, 0x00}, 3},
		{127, {0x02, 0x01, 0x7f}, 3},
		{128, {0x02, 0x02, 0x00, 0x80}, 4},
		{256, {0x02, 0x02, 0x01, 0x00}, 4},
		{100000, {0x02, 0x03, 0x01, 0x86, 0xa0}, 5},
	};
	struct der_buf b = {0};
	struct der cur, v;
	long back;
	int tag;

	(void)state;
	for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
		der_int(&b, cases[i].v);
		assert_int_equal(b.len, cases[i].n);
		assert_memory_equal(b.p, cases[i].enc, cases[i].n);
		cur.p = b.p;
		cur.len = b.len;
		assert_int_equal(der_next(&cur, &tag, &v), 0);
		assert_int_equal(tag, DER_INTEGER);
		assert_int_equal(der_long(&v, &back), 0);
		assert_int_equal(back, cases[i].v);
		assert_int_equal(cur.len, 0);
		der_buf_free(&b);
	}
}

static void
t_der_long_lengths(void **state)
{
	unsigned char big[70000];
	struct der_buf b = {0}, inner = {0};
	struct der cur, v;
	int tag;

	(void)state;
	memset(big, 0x5a, sizeof(big));
	der_tlv(&inner, DER_OCTETS, big, 200);          /* 0x81 form */
	der_tlv(&inner, DER_OCTETS, big, 300);          /* 0x82 form */
	der_tlv(&inner, DER_OCTETS, big, sizeof(big));  /* 0x83 form */
	der_wrap(&b, DER_SEQUENCE, &inner);
	assert_null(inner.p);
	cur.p = b.p;
	cur.len = b.len;
	assert_int_equal(der_expect(&cur, DER_SEQUENCE, &v), 0);
	assert_int_equal(cur.len, 0);
	cur = v;
	assert_int_equal(der_next(&cur, &tag, &v), 0);
	assert_int_equal(v.len, 200);
	assert_int_equal(der_next(&cur, &tag, &v), 0);
	assert_int_equal(v.len, 300);
	assert_int_equal(der_next(&cur, &tag, &v), 0);
	assert_int_equal(v.len, sizeof(big));
	assert_int_equal(der_next(&cur, &tag, &v), -1);        /* the end */
	der_buf_free(&b);
}

static void
t_der_malformed(void **state)
{
	static const unsigned char indefinite[] = {0x30, 0x80, 0x00, 0x00};
	static const unsigned char truncated[] = {0x30, 0x05, 0x02, 0x01};
	static const unsigned char long_len[] = {0x04, 0x85, 1, 0, 0, 0, 0};
	static const unsigned char wrong_tag[] = {0x02, 0x01, 0x01};
	struct der cur, v;
	int tag;

	(void)state;
	cur = (struct der){indefinite, sizeof(indefinite)};
	assert_int_equal(der_next(&cur, &tag, &v), -1);
	cur = (struct der){truncated, sizeof(truncated)};
	assert_int_equal(der_next(&cur, &tag, &v), -1);
	assert_int_equal(cur.len, sizeof(truncated));          /* unchanged */
	cur = (struct der){long_len, sizeof(long_len)};
	assert_int_equal(der_next(&cur, &tag, &v), -1);
	cur = (struct der){wrong_tag, sizeof(wrong_tag)};
	assert_int_equal(der_expect(&cur, DER_SEQUENCE, &v), -1);
	assert_int_equal(cur.len, sizeof(wrong_tag));          /* unchanged */
}

/* --- writing ---------------------------------------------------------------- */

static void
t_create_openssl_reads(void **state)
{
	struct pair p;
	char *out = NULL, *want = NULL;

	(void)state;
	pair_make(&p, X509_KEY_EC, 256);
	create(&p, "s3cret pass", "ours.p12");
	assert_int_equal(run(&out, "cd '%s' && openssl pkcs12 -in ours.p12 -passin "
	    "'pass:s3cret pass' -nodes -out back.pem && openssl pkey -in back.pem -pubout && "
	    "openssl x509 -in back.pem -pubkey -noout && grep -c 'BEGIN CERTIFICATE' back.pem && "
	    "grep friendlyName back.pem | head -n 1", tmp), 0);
	/* the key's public half twice (key, leaf), both certificates, the name */
	assert_int_equal(run(&want, "cd '%s' && openssl pkey -in key.pem -pubout", tmp), 0);
	assert_non_null(strstr(out, want));
	assert_non_null(strstr(strstr(out, want) + strlen(want), want));
	assert_non_null(strstr(out, "\n2\n"));
	assert_non_null(strstr(out, "friendlyName: leaf-name"));
	free(out);
	free(want);
	/* how openssl describes it: PBES2/AES-256 and a SHA-256 MAC */
	assert_int_equal(run(&out, "cd '%s' && openssl pkcs12 -in ours.p12 -passin "
	    "'pass:s3cret pass' -info -noout", tmp), 0);
	assert_non_null(strstr(out, "MAC: sha256, Iteration 2048"));
	assert_non_null(strstr(out, "Shrouded Keybag: PBES2, PBKDF2, AES-256-CBC, Iteration 2048, "
	    "PRF hmacWithSHA256"));
	assert_non_null(strstr(out, "PKCS7 Encrypted data: PBES2, PBKDF2, AES-256-CBC"));
	free(out);
	assert_int_not_equal(run(NULL, "cd '%s' && openssl pkcs12 -in ours.p12 -passin "
	    "pass:wrong -nodes", tmp), 0);
	pair_free(&p);
}

static void
t_create_rsa_traditional(void **state)
{
	struct pair p;
	char err[256] = "", *pem, *out = NULL;
	size_t len;
	struct x509_bundle trad = {0};

	(void)state;
	pair_make(&p, X509_KEY_RSA, 2048);
	/* the traditional ("RSA PRIVATE KEY") form must be converted to PKCS#8 */
	assert_int_equal(run(&out, "cd '%s' && openssl pkey -in key.pem -traditional -out "
	    "trad.pem && head -n 1 trad.pem", tmp), 0);
	assert_non_null(strstr(out, "BEGIN RSA PRIVATE KEY"));
	free(out);
	pem = slurp("trad.pem", &len);
	assert_int_equal(x509_parse(pem, len, &trad, err, sizeof(err)), 0);
	wipe_free(pem, len);
	x509_bundle_clear(&p.key);
	p.key = trad;
	create(&p, "pw", "rsa.p12");
	assert_int_equal(run(&out, "cd '%s' && openssl pkcs12 -in rsa.p12 -passin pass:pw "
	    "-nodes | openssl pkey -pubout && openssl pkey -in key.pem -pubout", tmp), 0);
	/* the same public key printed twice */
	assert_non_null(strstr(strstr(out, "END PUBLIC KEY") + 1, "BEGIN PUBLIC KEY"));
	free(out);
	pair_free(&p);
}

static void
t_create_reads_back(void **state)
{
	struct pair p;
	struct x509_bundle b = {0};
	char err[256] = "", *buf;
	size_t len;

	(void)state;
	pair_make(&p, X509_KEY_EC, 384);
	create(&p, "pw", "back.p12");
	buf = slurp("back.p12", &len);
	assert_int_equal(x509_parse_pkcs12(buf, len, "pw", &b, err, sizeof(err)), 0);
	assert_int_equal(b.n_keys, 1);
	assert_int_equal(b.n_certs, 2);
	assert_memory_equal(b.keys[0]->spki_sha256, p.certs.certs[0]->spki_sha256, 32);
	assert_memory_equal(b.certs[0]->fingerprint, p.certs.certs[0]->fingerprint, 32);
	x509_bundle_clear(&b);
	assert_int_equal(x509_parse_pkcs12(buf, len, "not-pw", &b, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "wrong password"));
	free(buf);
	pair_free(&p);
}

static void
t_create_refuses(void **state)
{
	struct pair p;
	char err[256] = "";
	size_t len;

	(void)state;
	pair_make(&p, X509_KEY_EC, 256);
	assert_null(p12_create(p.certs.certs, p.certs.n_certs, p.key.keys[0], "p\xc3\xa4ss",
	    "n", 2048, &len, err, sizeof(err)));
	assert_non_null(strstr(err, "printable ASCII"));
	assert_null(p12_create(p.certs.certs, 0, p.key.keys[0], "pw", "n", 2048, &len, err,
	    sizeof(err)));
	assert_int_equal(p12_password_ok("plain-ASCII pw 1"), 1);
	assert_int_equal(p12_password_ok("tab\there"), 0);
	pair_free(&p);
}

/* --- reading ----------------------------------------------------------------- */

static void
inspect_file(const char *name, struct p12_info *info, char **buf)
{
	char err[256] = "";
	size_t len;

	*buf = slurp(name, &len);
	if (p12_inspect(*buf, len, info, err, sizeof(err)) < 0)
		fail_msg("p12_inspect %s: %s", name, err);
}

static void
t_inspect_ours(void **state)
{
	struct pair p;
	struct p12_info info;
	char *buf;

	(void)state;
	pair_make(&p, X509_KEY_EC, 256);
	create(&p, "pw", "insp.p12");
	inspect_file("insp.p12", &info, &buf);
	assert_int_equal(info.n_parts, 2);
	assert_int_equal(info.parts[0].is_key, 0);
	assert_int_equal(info.parts[1].is_key, 1);
	for (size_t i = 0; i < 2; i++) {
		assert_int_equal(info.parts[i].cipher, P12_CIPHER_AES);
		assert_int_equal(info.parts[i].pbes2, 1);
		assert_int_equal(info.parts[i].iterations, 2048);
		assert_string_equal(info.parts[i].alg, "PBES2 (PBKDF2-HMAC-SHA256, AES-256-CBC)");
	}
	assert_int_equal(info.has_mac, 1);
	assert_int_equal(info.mac_digest, X509_DIGEST_SHA256);
	assert_string_equal(info.mac_alg, "HMAC-SHA256");
	assert_int_equal(info.mac_iterations, 2048);
	assert_int_equal(p12_mac_check(&info, "pw"), 1);
	assert_int_equal(p12_mac_check(&info, "pW"), 0);
	free(buf);
	pair_free(&p);
}

static void
t_inspect_openssl_legacy(void **state)
{
	struct pair p;
	struct p12_info info;
	char *buf, *out = NULL;

	(void)state;
	pair_make(&p, X509_KEY_EC, 256);
	if (run(&out, "cd '%s' && openssl pkcs12 -export -legacy -in leaf.pem -inkey key.pem "
	    "-passout pass:old -out legacy.p12", tmp) != 0)
		fail_msg("openssl -legacy: %s", out);
	free(out);
	inspect_file("legacy.p12", &info, &buf);
	assert_int_equal(info.n_parts, 2);
	assert_int_equal(info.parts[0].cipher, P12_CIPHER_RC2);
	assert_string_equal(info.parts[0].alg, "pbeWithSHAAnd40BitRC2-CBC");
	assert_int_equal(info.parts[1].cipher, P12_CIPHER_3DES);
	assert_string_equal(info.parts[1].alg, "pbeWithSHAAnd3-KeyTripleDES-CBC");
	assert_int_equal(info.parts[1].pbes2, 0);
	assert_int_equal(info.mac_digest, X509_DIGEST_SHA1);
	assert_int_equal(p12_mac_check(&info, "old"), 1);
	assert_int_equal(p12_mac_check(&info, "new"), 0);
	free(buf);
	pair_free(&p);
}

static void
t_inspect_openssl_variants(void **state)
{
	struct pair p;
	struct p12_info info;
	char *buf, *out = NULL;

	(void)state;
	pair_make(&p, X509_KEY_EC, 256);
	/* OpenSSL 3's default, and certificates left in clear */
	if (run(&out, "cd '%s' && openssl pkcs12 -export -in leaf.pem -inkey key.pem "
	    "-passout pass:x -out modern.p12 && openssl pkcs12 -export -in leaf.pem -inkey "
	    "key.pem -certpbe NONE -passout pass:x -out clearcerts.p12 && openssl pkcs12 "
	    "-export -in leaf.pem -inkey key.pem -nomac -passout pass:x -out nomac.p12", tmp) != 0)
		fail_msg("openssl: %s", out);
	free(out);
	inspect_file("modern.p12", &info, &buf);
	assert_int_equal(info.parts[0].cipher, P12_CIPHER_AES);
	assert_int_equal(info.mac_digest, X509_DIGEST_SHA256);
	assert_int_equal(p12_mac_check(&info, "x"), 1);
	free(buf);
	inspect_file("clearcerts.p12", &info, &buf);
	assert_int_equal(info.n_parts, 2);
	assert_int_equal(info.parts[0].cipher, P12_CIPHER_NONE);
	assert_string_equal(info.parts[0].alg, "not encrypted");
	free(buf);
	inspect_file("nomac.p12", &info, &buf);
	assert_int_equal(info.has_mac, 0);
	assert_int_equal(p12_mac_check(&info, "x"), -1);
	free(buf);
	pair_free(&p);
}

static void
t_inspect_garbage(void **state)
{
	struct p12_info info;
	char err[256] = "";
	static const char pem[] = "-----BEGIN CERTIFICATE-----\nMIIB\n";
	static const unsigned char notpfx[] = {0x30, 0x03, 0x04, 0x01, 0x00};

	(void)state;
	assert_int_equal(p12_inspect(pem, sizeof(pem) - 1, &info, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "not a PKCS#12 file"));
	assert_int_equal(p12_inspect(notpfx, sizeof(notpfx), &info, err, sizeof(err)), -1);
}

/* --- certificate details ------------------------------------------------------ */

static void
t_cert_sans_and_sig(void **state)
{
	struct pair p;
	char *sans;
	int weak = -1;

	(void)state;
	pair_make(&p, X509_KEY_EC, 256);
	sans = x509_cert_sans(p.certs.certs[0]);
	assert_non_null(sans);
	assert_string_equal(sans, "DNS:leaf.example, IP:192.0.2.7");
	free(sans);
	assert_null(x509_cert_sans(p.certs.certs[1]));          /* the CA has none */
	assert_string_equal(x509_cert_sig_alg(p.certs.certs[0], &weak), "ecdsa-with-SHA256");
	assert_int_equal(weak, 0);
	pair_free(&p);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(t_der_int),
	    cmocka_unit_test(t_der_long_lengths),
	    cmocka_unit_test(t_der_malformed),
	    cmocka_unit_test(t_create_openssl_reads),
	    cmocka_unit_test(t_create_rsa_traditional),
	    cmocka_unit_test(t_create_reads_back),
	    cmocka_unit_test(t_create_refuses),
	    cmocka_unit_test(t_inspect_ours),
	    cmocka_unit_test(t_inspect_openssl_legacy),
	    cmocka_unit_test(t_inspect_openssl_variants),
	    cmocka_unit_test(t_inspect_garbage),
	    cmocka_unit_test(t_cert_sans_and_sig),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
