/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Making keys, certificate requests and PEM, and base64, checked against
 * the openssl command line: what we make, openssl must read, verify and
 * sign, and a certificate it signs must pair with our key.
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

#include "util.h"
#include "x509.h"

static char tmp[256]; /* scratch dir for openssl's inputs and outputs */

static int
group_setup(void **state)
{
	(void)state;
	snprintf(
	    tmp, sizeof(tmp), "%s/mtlsd-x509-XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
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

	i = (i + 1) % 4; /* a few may be live at once in one command */
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
	size_t n;
	char *buf = read_file(path(name), 1 << 20, len ? len : &n);

	assert_non_null(buf);
	return buf;
}

/* Run cmd through the shell; its stdout and stderr into *out (malloc'ed). */
static int run(char **out, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int
run(char **out, const char *fmt, ...)
{
	char cmd[2048], *buf = NULL;
	size_t len = 0, n;
	va_list ap;
	FILE *p;
	int st;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	strncat(cmd, " 2>&1", sizeof(cmd) - strlen(cmd) - 1);
	assert_non_null(p = popen(cmd, "r"));
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

/* --- helpers for requests ------------------------------------------------- */

static char *const test_dns[] = {"a.example", "*.b.example"};
static char *const test_ips[] = {"10.1.2.3", "::1", "2001:db8::42"};
static char *const test_uris[] = {"spiffe://x/y"};

static char *
csr(const struct x509_key *k, const char *cn, char *const *dns, size_t n_dns, char *const *ips,
    size_t n_ips, char *const *uris, size_t n_uris)
{
	char err[256] = "";
	char *pem = x509_csr_pem(k, cn, dns, n_dns, ips, n_ips, uris, n_uris, err, sizeof(err));

	if (pem == NULL)
		fail_msg("x509_csr_pem: %s", err);
	return pem;
}

/* openssl's -text of a request it has verified. */
static char *
csr_text(const char *pem)
{
	char *out;

	assert_non_null(strstr(pem, "-----BEGIN CERTIFICATE REQUEST-----\n"));
	write_file("req.csr", pem, strlen(pem));
	if (run(&out, "openssl req -in '%s' -noout -verify -text", path("req.csr")) != 0)
		fail_msg("openssl req: %s", out);
	assert_non_null(strstr(out, "verify OK"));
	return out;
}

static void
assert_has(const char *text, const char *want)
{
	if (strstr(text, want) == NULL)
		fail_msg("\"%s\" not in:\n%s", want, text);
}

/* A request from k verifies and holds the public key openssl derives from
 * keyfile. */
static void
csr_matches_key(const struct x509_key *k, const char *keyfile)
{
	char *pem = csr(k, "key.example", test_dns, 1, NULL, 0, NULL, 0), *text, *req, *pub;

	text = csr_text(pem);
	assert_int_equal(run(&req, "openssl req -in '%s' -noout -pubkey", path("req.csr")), 0);
	assert_int_equal(run(&pub, "openssl pkey -in '%s' -pubout", path(keyfile)), 0);
	assert_non_null(strstr(req, "-----BEGIN PUBLIC KEY-----"));
	assert_string_equal(req, pub);
	free(pub);
	free(req);
	free(text);
	free(pem);
}

/* --- keys ------------------------------------------------------------------- */

struct keycase {
	enum x509_key_type type;
	int bits;
	const char *desc;
};

static const struct keycase keycases[] = {
    {X509_KEY_EC, 256, "EC P-256"},
    {X509_KEY_EC, 384, "EC P-384"},
    {X509_KEY_RSA, 2048, "RSA 2048"},
    {X509_KEY_RSA, 3072, "RSA 3072"},
};

/* One parsed key out of PEM or DER. */
static struct x509_key *
parse_one_key(const void *buf, size_t len)
{
	struct x509_bundle b = {0};
	struct x509_key *k;
	char err[256] = "";

	if (x509_parse(buf, len, &b, err, sizeof(err)) != 0)
		fail_msg("x509_parse: %s", err);
	assert_int_equal(b.n_keys, 1);
	assert_int_equal(b.n_certs, 0);
	k = b.keys[0];
	b.keys[0] = NULL;
	x509_bundle_clear(&b);
	return k;
}

static struct x509_key *
generate(enum x509_key_type type, int bits)
{
	char err[256] = "";
	struct x509_key *k = x509_key_generate(type, bits, err, sizeof(err));

	if (k == NULL)
		fail_msg("x509_key_generate(%d, %d): %s", (int)type, bits, err);
	return k;
}

/* Every size generates, is described as the parser would, and survives
 * PEM both ways; openssl reads it as a valid key of the same kind. */
static void
t_key_generate(void **state)
{
	(void)state;
	for (size_t i = 0; i < ARRAY_LEN(keycases); i++) {
		const struct keycase *c = &keycases[i];
		struct x509_key *k = generate(c->type, c->bits), *back;
		size_t len;
		char *pem = x509_key_pem(k, &len), *out;

		assert_int_equal(k->type, c->type);
		assert_int_equal(k->bits, c->bits);
		assert_string_equal(k->desc, c->desc);
		assert_int_equal(strlen(pem), len);
		assert_non_null(strstr(pem, "-----BEGIN PRIVATE KEY-----\n"));
		assert_non_null(strstr(pem, "-----END PRIVATE KEY-----"));
		back = parse_one_key(pem, len);
		assert_string_equal(back->desc, c->desc);
		assert_memory_equal(back->spki_sha256, k->spki_sha256, 32);
		assert_int_equal(back->der_len, k->der_len);
		assert_memory_equal(back->der, k->der, k->der_len);
		write_file("gen.key", pem, len);
		csr_matches_key(k, "gen.key");
		if (run(&out, "openssl pkey -in '%s' -noout -text -check", path("gen.key")) != 0)
			fail_msg("openssl pkey: %s", out);
		assert_non_null(
		    strstr(out, c->type == X509_KEY_EC ? "NIST CURVE: P-" : "Exponent: 65537"));
		free(out);
		wipe_free(pem, len);
		x509_key_free(back);
		x509_key_free(k);
	}
}

/* Two keys of one kind differ. */
static void
t_key_generate_fresh(void **state)
{
	struct x509_key *a = generate(X509_KEY_EC, 256), *b = generate(X509_KEY_EC, 256);

	(void)state;
	assert_memory_not_equal(a->spki_sha256, b->spki_sha256, 32);
	x509_key_free(a);
	x509_key_free(b);
}

/* A key file whose public part belongs to another key (fuzzing found one):
 * refused, never paired by that public part with the other's certificate. */
static void
t_key_foreign_public_part(void **state)
{
	char err[200] = "";
	struct x509_key *a = x509_key_generate(X509_KEY_EC, 256, err, sizeof(err));
	struct x509_key *b = x509_key_generate(X509_KEY_EC, 256, err, sizeof(err));
	struct x509_bundle bundle = { 0 };
	unsigned char *forged;

	(void)state;
	assert_non_null(a);
	assert_non_null(b);
	assert_true(a->der_len > 70 && b->der_len == a->der_len);
	/* PKCS#8 of P-256 ends with the public point: 04 || x || y */
	assert_int_equal(a->der[a->der_len - 65], 0x04);
	forged = xmalloc(a->der_len);
	memcpy(forged, a->der, a->der_len);
	memcpy(forged + a->der_len - 64, b->der + b->der_len - 64, 64);
	assert_int_equal(x509_parse(forged, a->der_len, &bundle, err, sizeof(err)), -1);
	assert_string_equal(err, "private key is corrupt (inconsistent parameters)");
	assert_int_equal(bundle.n_keys, 0);
	/* the genuine one still parses, to the same public key */
	assert_int_equal(x509_parse(a->der, a->der_len, &bundle, err, sizeof(err)), 0);
	assert_memory_equal(bundle.keys[0]->spki_sha256, a->spki_sha256, 32);
	x509_bundle_clear(&bundle);
	free(forged);
	x509_key_free(a);
	x509_key_free(b);
}

/* PKCS#8 whose OCTET STRING is shorter than the key inside it: the TLS
 * library refuses it, so the loader must too (fuzz_cert found that it
 * paired such a key by reading past the string) */
static void
t_key_pkcs8_short_octet_string(void **state)
{
	char err[200] = "";
	struct x509_key *a = x509_key_generate(X509_KEY_EC, 256, err, sizeof(err));
	struct x509_bundle bundle = { 0 };
	unsigned char *bad;

	(void)state;
	assert_non_null(a);
	/* 30 81 87 | 02 01 00 | 30 13 <algorithm> | 04 6d 30 6b <ECPrivateKey> */
	assert_int_equal(a->der[27], 0x04);
	assert_int_equal(a->der[28], 0x6d);
	assert_int_equal(a->der[29], 0x30);
	bad = xmalloc(a->der_len);
	memcpy(bad, a->der, a->der_len);
	bad[28] = 0x2d;
	assert_int_equal(x509_parse(bad, a->der_len, &bundle, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "private key"));
	assert_int_equal(bundle.n_keys, 0);
	assert_int_equal(x509_parse(a->der, a->der_len, &bundle, err, sizeof(err)), 0);
	assert_int_equal(bundle.n_keys, 1);
	x509_bundle_clear(&bundle);
	free(bad);
	x509_key_free(a);
}

static void
t_key_generate_refused(void **state)
{
	static const struct {
		enum x509_key_type type;
		int bits;
		const char *why;
	} bad[] = {
	    {X509_KEY_EC, 521, "P-384"},
	    {X509_KEY_EC, 0, "P-256"},
	    {X509_KEY_EC, 2048, "not 2048"},
	    {X509_KEY_RSA, 1024, "not 1024"},
	    {X509_KEY_RSA, 8192, "not 8192"},
	    {X509_KEY_RSA, 2047, "2048, 3072 or 4096"},
	    {X509_KEY_RSA, 256, "RSA keys"},
	    {X509_KEY_OTHER, 256, "RSA and EC"},
	};

	(void)state;
	for (size_t i = 0; i < ARRAY_LEN(bad); i++) {
		char err[256] = "";

		assert_null(x509_key_generate(bad[i].type, bad[i].bits, err, sizeof(err)));
		if (strstr(err, bad[i].why) == NULL)
			fail_msg("case %zu: \"%s\" lacks \"%s\"", i, err, bad[i].why);
	}
}

/* Traditional keys (as openssl writes them on request) keep their label and
 * sign requests as well as PKCS#8 ones. */
static void
t_key_pem_traditional(void **state)
{
	static const struct {
		const char *cmd, *arg, *label, *desc; /* cmd -out FILE arg */
	} cases[] = {
	    {"openssl ecparam -genkey -name secp384r1 -noout", "", "EC PRIVATE KEY", "EC P-384"},
	    {"openssl genrsa -traditional", "2048", "RSA PRIVATE KEY", "RSA 2048"},
	    /* no public point in it: the request must still carry the right one */
	    {"openssl ecparam -genkey -name prime256v1 -noout | openssl ec -no_public", "",
	        "EC PRIVATE KEY", "EC P-256"},
	};

	(void)state;
	for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
		char begin[64], *in, *pem, *out;
		struct x509_key *k, *back;
		size_t inlen, len;

		if (run(&out, "%s -out '%s' %s", cases[i].cmd, path("trad.key"), cases[i].arg) != 0)
			fail_msg("openssl: %s", out);
		free(out);
		in = slurp("trad.key", &inlen);
		snprintf(begin, sizeof(begin), "-----BEGIN %s-----\n", cases[i].label);
		assert_non_null(strstr(in, begin));
		k = parse_one_key(in, inlen);
		assert_string_equal(k->desc, cases[i].desc);
		pem = x509_key_pem(k, &len);
		assert_non_null(strstr(pem, begin));
		back = parse_one_key(pem, len);
		assert_memory_equal(back->spki_sha256, k->spki_sha256, 32);
		assert_int_equal(back->der_len, k->der_len);
		csr_matches_key(k, "trad.key");
		wipe_free(pem, len);
		wipe_free(in, inlen);
		x509_key_free(back);
		x509_key_free(k);
	}
}

/* --- certificate requests --------------------------------------------------- */

static void
t_csr_sans(void **state)
{
	static const char *const sigalg[] = {
	    "ecdsa-with-SHA256", "ecdsa-with-SHA384", "sha256WithRSAEncryption"};

	(void)state;
	for (size_t i = 0; i < 3; i++) {
		struct x509_key *k = generate(keycases[i].type, keycases[i].bits);
		char *pem = csr(k, "svc.example", test_dns, 2, test_ips, 3, test_uris, 1);
		char *text = csr_text(pem);

		assert_has(text, "Subject: CN = svc.example\n");
		assert_has(text, "X509v3 Subject Alternative Name:");
		assert_has(text, "DNS:a.example, DNS:*.b.example, IP Address:10.1.2.3, "
		                 "IP Address:0:0:0:0:0:0:0:1, IP Address:2001:DB8:0:0:0:0:0:42, "
		                 "URI:spiffe://x/y\n");
		assert_has(text, sigalg[i]);
		assert_has(text, keycases[i].type == X509_KEY_EC ? "NIST CURVE: P-" : "65537");
		free(text);
		free(pem);
		x509_key_free(k);
	}
}

/* No names: no extension (and no empty extension request). */
static void
t_csr_no_sans(void **state)
{
	struct x509_key *k = generate(X509_KEY_EC, 256);
	char *pem = csr(k, "bare", NULL, 0, NULL, 0, NULL, 0), *text = csr_text(pem);

	(void)state;
	assert_has(text, "Subject: CN = bare\n");
	assert_null(strstr(text, "Alternative Name"));
	assert_null(strstr(text, "DNS:"));
	free(text);
	/* openssl 3.0 prints "Requested Extensions:" even for none: look at DER */
	assert_int_equal(run(&text, "openssl asn1parse -in '%s'", path("req.csr")), 0);
	assert_has(text, "cont [ 0 ]");
	assert_null(strstr(text, "Extension Request"));
	free(text);
	free(pem);
	x509_key_free(k);
}

/* Names long enough for one- and two-byte DER lengths, in the names and in
 * the SEQUENCE around them. */
static void
t_csr_long_names(void **state)
{
	struct x509_key *k = generate(X509_KEY_EC, 256);
	char *dns[20], uri[300], *uris[1] = {uri}, *pem, *text, want[400];

	(void)state;
	for (size_t i = 0; i < ARRAY_LEN(dns); i++)
		dns[i] = xasprintf("host-%02zu-%s.example", i,
		    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");
	snprintf(uri, sizeof(uri), "spiffe://trust.example/%0250d", 7);
	pem = csr(k, "long", dns, ARRAY_LEN(dns), NULL, 0, uris, 1);
	text = csr_text(pem);
	for (size_t i = 0; i < ARRAY_LEN(dns); i++) {
		snprintf(want, sizeof(want), "DNS:%s,", dns[i]);
		assert_has(text, want);
		free(dns[i]);
	}
	snprintf(want, sizeof(want), "URI:%s\n", uri);
	assert_has(text, want);
	free(text);
	free(pem);
	x509_key_free(k);
}

static void
csr_refused(const struct x509_key *k, const char *cn, char *const *dns, size_t n_dns,
    char *const *ips, size_t n_ips, char *const *uris, size_t n_uris, const char *why)
{
	char err[256] = "";

	assert_null(x509_csr_pem(k, cn, dns, n_dns, ips, n_ips, uris, n_uris, err, sizeof(err)));
	if (strstr(err, why) == NULL)
		fail_msg("\"%s\" lacks \"%s\"", err, why);
}

static void
t_csr_bad_input(void **state)
{
	static char *const bad_ips[] = {
	    "10.1.2", "10.1.2.3.4", "::g", "fe80::1%eth0", "", " 10.1.2.3", "host.example"};
	static char *const bad_names[] = {
	    "", "a b.example", "a\n.example", "tab\t", "caf\xc3\xa9.example", "del\x7f"};
	char cn64[65], *big[80], *ok_dns[] = {"ok.example"};
	struct x509_key *k = generate(X509_KEY_EC, 256);

	(void)state;
	memset(cn64, 'c', 64);
	cn64[64] = '\0';
	csr_refused(k, "", NULL, 0, NULL, 0, NULL, 0, "common name");
	csr_refused(k, NULL, NULL, 0, NULL, 0, NULL, 0, "common name");
	csr_refused(k, "a\nb", NULL, 0, NULL, 0, NULL, 0, "common name");
	csr_refused(k, cn64, NULL, 0, NULL, 0, NULL, 0, "1 to 63");
	free(csr(k, cn64 + 1, NULL, 0, NULL, 0, NULL, 0)); /* 63 fits */
	for (size_t i = 0; i < ARRAY_LEN(bad_ips); i++)
		csr_refused(k, "cn", ok_dns, 1, &bad_ips[i], 1, NULL, 0, "IP address 1 ");
	for (size_t i = 0; i < ARRAY_LEN(bad_names); i++) {
		char *two[2] = {"ok.example", bad_names[i]};

		csr_refused(k, "cn", two, 2, NULL, 0, NULL, 0, "DNS name 2 ");
		csr_refused(k, "cn", NULL, 0, NULL, 0, &bad_names[i], 1, "URI 1 ");
	}
	/* 80 names of 253 bytes: past what wolfSSL holds, refused not cut */
	for (size_t i = 0; i < ARRAY_LEN(big); i++) {
		big[i] = xmalloc(254);
		memset(big[i], 'd', 253);
		big[i][253] = '\0';
	}
	csr_refused(k, "cn", big, ARRAY_LEN(big), NULL, 0, NULL, 0, "too many");
	for (size_t i = 0; i < ARRAY_LEN(big); i++)
		free(big[i]);
	x509_key_free(k);
}

/* A throwaway openssl CA signs the request; the certificate it issues
 * carries the names and pairs with our key as tls.c would load them. */
static void
t_csr_signed_by_ca(void **state)
{
	(void)state;
	for (size_t i = 0; i < 3; i++) {
		struct x509_key *k = generate(keycases[i].type, keycases[i].bits);
		/* of the other type: wolfSSL 5.5.4's own check (x509_check_pair)
		 * passes any key of the leaf's curve, so spki_sha256 decides */
		struct x509_key *other = keycases[i].type == X509_KEY_EC
		                             ? generate(X509_KEY_RSA, 2048)
		                             : generate(X509_KEY_EC, 256);
		char *pem = csr(k, "leaf.example", test_dns, 1, test_ips, 1, test_uris, 1);
		struct x509_bundle b = {0};
		char err[256] = "", *out, *crt;
		size_t len;

		write_file("leaf.csr", pem, strlen(pem));
		if (run(&out,
		        "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes "
		        "-keyout '%s' -out '%s' -subj '/CN=Test CA' -days 1",
		        path("ca.key"), path("ca.crt")) != 0)
			fail_msg("openssl CA: %s", out);
		free(out);
		if (run(&out,
		        "openssl x509 -req -in '%s' -CA '%s' -CAkey '%s' -set_serial 4097 "
		        "-days 1 -copy_extensions copy -out '%s'",
		        path("leaf.csr"), path("ca.crt"), path("ca.key"), path("leaf.crt")) != 0)
			fail_msg("openssl x509 -req: %s", out);
		free(out);
		crt = slurp("leaf.crt", &len);
		if (x509_check_pair(crt, len, k->der, k->der_len, err, sizeof(err)) != 0)
			fail_msg("x509_check_pair: %s", err);
		assert_int_equal(
		    x509_check_pair(crt, len, other->der, other->der_len, err, sizeof(err)), -1);
		assert_int_equal(x509_parse(crt, len, &b, err, sizeof(err)), 0);
		assert_int_equal(b.n_certs, 1);
		assert_string_equal(b.certs[0]->subject, "CN=leaf.example");
		assert_string_equal(b.certs[0]->key_desc, keycases[i].desc);
		assert_memory_equal(b.certs[0]->spki_sha256, k->spki_sha256, 32);
		if (run(&out, "openssl x509 -in '%s' -noout -ext subjectAltName",
		        path("leaf.crt")) != 0)
			fail_msg("openssl x509: %s", out);
		assert_has(out, "DNS:a.example, IP Address:10.1.2.3, URI:spiffe://x/y");
		free(out);
		x509_bundle_clear(&b);
		free(crt);
		free(pem);
		x509_key_free(other);
		x509_key_free(k);
	}
}

/* --- base64 ----------------------------------------------------------------- */

/* Whatever openssl encodes (64-column lines), we decode to the same bytes. */
static void
t_base64_openssl(void **state)
{
	static const size_t sizes[] = {1, 2, 3, 4, 47, 48, 49, 1000, 4099};
	unsigned char buf[4099];

	(void)state;
	for (size_t i = 0; i < sizeof(buf); i++)
		buf[i] = (unsigned char)(i * 131 + 7);
	for (size_t i = 0; i < ARRAY_LEN(sizes); i++) {
		size_t tlen, dlen = 0;
		unsigned char *d;
		char *text;

		write_file("raw.bin", buf, sizes[i]);
		if (run(NULL, "openssl base64 -in '%s' -out '%s'", path("raw.bin"),
		        path("raw.b64")) != 0)
			fail_msg("openssl base64 failed");
		text = slurp("raw.b64", &tlen);
		if (sizes[i] > 48) /* more than one line */
			assert_true(strchr(text, '\n') < text + tlen - 1);
		d = x509_base64_decode(text, tlen, &dlen);
		assert_non_null(d);
		assert_int_equal(dlen, sizes[i]);
		assert_memory_equal(d, buf, dlen);
		free(d);
		free(text);
	}
}

static void
t_base64_whitespace(void **state)
{
	static const char in[] = " TWFu\r\n IGlz\tIGRp\n\nc3Rp bmd1aXNoZWQ=\r\n";
	size_t len = 0;
	unsigned char *d = x509_base64_decode(in, sizeof(in) - 1, &len);

	(void)state;
	assert_non_null(d);
	assert_int_equal(len, 20);
	assert_memory_equal(d, "Man is distinguished", 20);
	free(d);
	d = x509_base64_decode("QQ==", 4, &len);
	assert_non_null(d);
	assert_int_equal(len, 1);
	assert_int_equal(d[0], 'A');
	free(d);
	/* only len bytes are read */
	d = x509_base64_decode("QUJDRA==garbage", 8, &len);
	assert_non_null(d);
	assert_int_equal(len, 4);
	assert_memory_equal(d, "ABCD", 4);
	free(d);
}

static void
t_base64_invalid(void **state)
{
	static const char *const bad[] = {"", "  \n", "QUJ", "QUJDR", "QUJDRA", "QU=D",
	    "Q===", "QQ==QQ==", "QUJD!A==", "QUJD\x01", "QUJ\xc3\xa9", "QUJD-_==", "=QUJ"};
	size_t len = 12345;

	(void)state;
	for (size_t i = 0; i < ARRAY_LEN(bad); i++)
		if (x509_base64_decode(bad[i], strlen(bad[i]), &len) != NULL)
			fail_msg("accepted \"%s\"", bad[i]);
	assert_int_equal(len, 12345);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(t_key_generate),
	    cmocka_unit_test(t_key_generate_fresh),
	    cmocka_unit_test(t_key_generate_refused),
	    cmocka_unit_test(t_key_foreign_public_part),
	    cmocka_unit_test(t_key_pkcs8_short_octet_string),
	    cmocka_unit_test(t_key_pem_traditional),
	    cmocka_unit_test(t_csr_sans),
	    cmocka_unit_test(t_csr_no_sans),
	    cmocka_unit_test(t_csr_long_names),
	    cmocka_unit_test(t_csr_bad_input),
	    cmocka_unit_test(t_csr_signed_by_ca),
	    cmocka_unit_test(t_base64_openssl),
	    cmocka_unit_test(t_base64_whitespace),
	    cmocka_unit_test(t_base64_invalid),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
