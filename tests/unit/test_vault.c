/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The Vault client's file-side parts: certificate.yaml's vault: section
 * (every key and every error, with its line), the cache (atomic write,
 * modes, scan, prune) and the certificate store reading the cache. Pairs
 * are made fresh by openssl for each run. The network side is tested by
 * tests/integration/t_10x_vault*.sh against tests/vault/vaultd.py.
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
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "certstore.h"
#include "util.h"
#include "vault_cache.h"
#include "vault_conf.h"

static char tmp[256];

/* --- the vault: section ---------------------------------------------------------- */

/* Parse "vault:" of a certificate.yaml text; 0 or -1 with err. */
static int
parse(const char *yaml, struct vault_cert_conf *c, char *err, size_t errlen)
{
	yaml_parser_t p;
	yaml_document_t doc;
	yaml_node_t *root, *v = NULL;
	int rc;

	yaml_parser_initialize(&p);
	yaml_parser_set_input_string(&p, (const unsigned char *)yaml, strlen(yaml));
	assert_true(yaml_parser_load(&p, &doc));
	root = yaml_document_get_root_node(&doc);
	for (yaml_node_pair_t *pr = root->data.mapping.pairs.start;
	     pr < root->data.mapping.pairs.top; pr++)
		if (strcmp((char *)yaml_document_get_node(&doc, pr->key)->data.scalar.value,
		        "vault") == 0)
			v = yaml_document_get_node(&doc, pr->value);
	assert_non_null(v);
	rc = vault_conf_parse(&doc, v, c, err, errlen);
	yaml_document_delete(&doc);
	yaml_parser_delete(&p);
	return rc;
}

static void
expect_error(const char *yaml, const char *want)
{
	struct vault_cert_conf c;
	char err[320] = "";

	assert_int_equal(parse(yaml, &c, err, sizeof(err)), -1);
	if (strstr(err, want) == NULL)
		fail_msg("error \"%s\" does not contain \"%s\"", err, want);
	assert_null(c.path);    /* freed on error */
}

static void
test_pki_issue(void **state)
{
	struct vault_cert_conf c;
	char err[320];

	(void)state;
	assert_int_equal(parse("vault:\n  pki: pki/issue/web\n  common_name: svc.example.com\n"
	    "  alt_names: [a.example.com, b.example.com]\n  ip_sans: 10.0.0.1\n"
	    "  uri_sans: [spiffe://x/y]\n  ttl: 720h\n", &c, err, sizeof(err)), 0);
	assert_int_equal(c.kind, VAULT_PKI_ISSUE);
	assert_string_equal(c.path, "pki/issue/web");
	assert_string_equal(c.common_name, "svc.example.com");
	assert_int_equal(c.n_alt, 2);
	assert_string_equal(c.alt_names[1], "b.example.com");
	assert_int_equal(c.n_ip, 1);
	assert_string_equal(c.ip_sans[0], "10.0.0.1");
	assert_string_equal(c.uri_sans[0], "spiffe://x/y");
	assert_int_equal(c.ttl_ms, 720ULL * 3600 * 1000);
	assert_true(c.renew_at > 0.659 && c.renew_at < 0.661);     /* the default */
	assert_string_equal(vault_kind_name(c.kind), "pki/issue");
	assert_int_equal(strlen(c.signature), 16);
	vault_conf_free(&c);
}

static void
test_pki_sign_and_issuer_path(void **state)
{
	struct vault_cert_conf c;
	char err[320];

	(void)state;
	assert_int_equal(parse("vault: {pki: pki_int/sign/client, common_name: a, key_type: rsa}",
	    &c, err, sizeof(err)), 0);
	assert_int_equal(c.kind, VAULT_PKI_SIGN);
	assert_true(c.key_rsa);
	assert_int_equal(c.key_bits, 2048);     /* the RSA default */
	vault_conf_free(&c);
	assert_int_equal(parse("vault: {pki: pki/sign/client, common_name: a}", &c, err,
	    sizeof(err)), 0);
	assert_false(c.key_rsa);
	assert_int_equal(c.key_bits, 256);      /* EC P-256 */
	vault_conf_free(&c);
	assert_int_equal(parse("vault: {pki: pki/issuer/default/issue/client, common_name: a, "
	    "renew_at: 0.5}", &c, err, sizeof(err)), 0);
	assert_int_equal(c.kind, VAULT_PKI_ISSUE);
	assert_true(c.renew_at > 0.49 && c.renew_at < 0.51);
	vault_conf_free(&c);
}

static void
test_kv(void **state)
{
	struct vault_cert_conf c;
	char err[320];

	(void)state;
	assert_int_equal(parse("vault: {kv: secret/data/partner/tls}", &c, err, sizeof(err)), 0);
	assert_int_equal(c.kind, VAULT_KV);
	assert_int_equal(c.kv_version, 2);
	assert_int_equal(c.refresh_ms, 5 * 60 * 1000);
	assert_string_equal(c.f_certificate, "certificate");
	assert_string_equal(c.f_private_key, "private_key");
	assert_string_equal(c.f_p12, "p12");
	assert_string_equal(c.f_p12_password, "p12_password");
	vault_conf_free(&c);
	assert_int_equal(parse("vault:\n  kv: kv/partner\n  refresh: 30s\n  fields:\n"
	    "    certificate: tls.crt\n    private_key: tls.key\n", &c, err, sizeof(err)), 0);
	assert_int_equal(c.kv_version, 1);
	assert_int_equal(c.refresh_ms, 30000);
	assert_string_equal(c.f_certificate, "tls.crt");
	assert_string_equal(c.f_private_key, "tls.key");
	vault_conf_free(&c);
	/* a KV v1 mount with a secret under "data/": kv_version says so */
	assert_int_equal(parse("vault: {kv: kv/data/x, kv_version: 1}", &c, err, sizeof(err)), 0);
	assert_int_equal(c.kv_version, 1);
	vault_conf_free(&c);
}

static void
test_errors_name_the_line_and_key(void **state)
{
	(void)state;
	expect_error("vault:\n  pki: pki/issue/web\n  common_name: a\n  tll: 1h\n",
	    "line 4: vault.tll: unknown key");
	expect_error("vault:\n  pki: pki/issue/web\n", "vault.common_name: required with pki:");
	expect_error("vault:\n  common_name: a\n", "say where Vault makes this certificate");
	expect_error("vault:\n  pki: pki/issue/web\n  common_name: a\n  ttl: soon\n",
	    "line 4: vault.ttl: expected a duration");
	expect_error("vault: {pki: pki/issue/web, common_name: a, renew_at: 1.5}",
	    "vault.renew_at: expected a number from 0.05 to 0.95");
	expect_error("vault: {pki: pki/web, common_name: a}", "expected MOUNT/issue/ROLE");
	expect_error("vault: {pki: /v1/pki/issue/web, common_name: a}", "no leading / or v1/");
	expect_error("vault: {pki: pki/issue/../sys, common_name: a}", "no leading / or v1/");
	expect_error("vault: {kv: secret}", "expected MOUNT/data/PATH");
	expect_error("vault: {pki: pki/sign/x, common_name: a, key_bits: 1024}",
	    "vault.key_bits");
	expect_error("vault: {pki: pki/sign/x, common_name: a, key_type: dsa}",
	    "vault.key_type: expected ec or rsa");
	expect_error("vault: {kv: secret/data/x, fields: {cert: x}}",
	    "vault.fields: unknown field cert");
	expect_error("vault: {pki: pki/issue/web, common_name: \"a b\"}",
	    "vault.common_name: expected a name without blanks");
	expect_error("vault: {pki: pki/issue/web, common_name: a, alt_names: {x: y}}",
	    "vault.alt_names: expected a list");
	expect_error("vault: [pki]", "expected a map");
}

/* The shipped examples (etc/examples) parse. */
static void
test_shipped_examples(void **state)
{
	static const char *const files[] = { "certificate-vault-pki.yaml",
		"certificate-vault-kv.yaml" };
	const char *data = getenv("MTLSD_TEST_DATA");
	struct vault_cert_conf c;
	char path[600], err[320];

	(void)state;
	for (size_t i = 0; i < 2; i++) {
		size_t len = 0;
		char *text;
		snprintf(path, sizeof(path), "%s/../../etc/examples/%s", data ? data : "tests/data",
		    files[i]);
		if ((text = read_file(path, 1 << 16, &len)) == NULL)
			fail_msg("cannot read %s", path);
		if (parse(text, &c, err, sizeof(err)) < 0)
			fail_msg("%s: %s", path, err);
		assert_int_equal(c.kind, i == 0 ? VAULT_PKI_ISSUE : VAULT_KV);
		vault_conf_free(&c);
		free(text);
	}
}

/* Settings the request depends on change the signature (and so force a new
 * certificate); renewal timing does not. */
static void
test_signature(void **state)
{
	struct vault_cert_conf a, b;
	char err[320];

	(void)state;
	assert_int_equal(parse("vault: {pki: pki/issue/web, common_name: a}", &a, err,
	    sizeof(err)), 0);
	assert_int_equal(parse("vault: {pki: pki/issue/web, common_name: a, renew_at: 0.8}", &b,
	    err, sizeof(err)), 0);
	assert_string_equal(a.signature, b.signature);
	vault_conf_free(&b);
	assert_int_equal(parse("vault: {pki: pki/issue/web, common_name: b}", &b, err,
	    sizeof(err)), 0);
	assert_string_not_equal(a.signature, b.signature);
	vault_conf_free(&b);
	assert_int_equal(parse("vault: {pki: pki/issue/web, common_name: a, alt_names: [x]}",
	    &b, err, sizeof(err)), 0);
	assert_string_not_equal(a.signature, b.signature);
	vault_conf_free(&b);
	vault_conf_copy(&b, &a);
	assert_string_equal(a.signature, b.signature);
	assert_ptr_not_equal(a.path, b.path);
	vault_conf_free(&b);
	vault_conf_free(&a);
}

/* --- the cache ---------------------------------------------------------------------- */

/* A self-signed leaf (CA:false) valid from now+from_days to now+to_days,
 * with its key, as one PEM (openssl ca: req cannot set past dates). */
static char *
make_pair(int from_days, int to_days, const char *serial, size_t *len)
{
	char cmd[4096], path[300];
	char *buf;

	snprintf(path, sizeof(path), "%s/pair-%s.pem", tmp, serial);
	snprintf(cmd, sizeof(cmd),
	    "set -e; cd %s; mkdir -p ca; cd ca; : > index.txt; echo %s > serial; "
	    "printf '[ca]\\ndefault_ca=c\\n[c]\\ndatabase=index.txt\\nserial=serial\\n"
	    "new_certs_dir=.\\ndefault_md=sha256\\npolicy=p\\nunique_subject=no\\n"
	    "[p]\\ncommonName=supplied\\n[leaf]\\nbasicConstraints=critical,CA:FALSE\\n"
	    "[req]\\ndistinguished_name=dn\\n[dn]\\n' > ca.cnf; "
	    "openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out k.pem; "
	    "openssl req -new -config ca.cnf -key k.pem -subj /CN=leaf-%s -out r.csr; "
	    "openssl ca -batch -config ca.cnf -selfsign -keyfile k.pem -in r.csr -notext "
	    "-extensions leaf -out c.pem "
	    "-startdate $(date -u -d '%+d days' +%%Y%%m%%d%%H%%M%%SZ) "
	    "-enddate $(date -u -d '%+d days' +%%Y%%m%%d%%H%%M%%SZ); "
	    "cat c.pem k.pem > %s", tmp, serial, serial, from_days, to_days, path);
	if (system(cmd) != 0)
		fail_msg("openssl could not make a pair: %s", cmd);
	buf = read_file(path, 1 << 20, len);
	assert_non_null(buf);
	return buf;
}

static void
write_pair(const char *dir, const char *serial, int from_days, int to_days, const char *sig)
{
	char root[300], file[100], header[100], err[300];
	size_t len;
	char *pem = make_pair(from_days, to_days, serial, &len);

	snprintf(root, sizeof(root), "%s/vault", tmp);
	snprintf(file, sizeof(file), "%s.pem", serial);
	snprintf(header, sizeof(header), "# test\n" VAULT_CACHE_SIG_TAG "%s\n", sig);
	if (vault_cache_write(root, dir, file, header, pem, len, err, sizeof(err)) < 0)
		fail_msg("vault_cache_write: %s", err);
	free(pem);
}

static void
test_cache_write_modes_and_scan(void **state)
{
	char dir[300], path[400];
	struct vault_cached c;
	struct stat st;

	(void)state;
	snprintf(dir, sizeof(dir), "%s/vault/one", tmp);
	vault_cache_scan(dir, &c);
	assert_false(c.found);          /* no directory yet */
	write_pair(dir, "0A01", -1, 30, "00000000000000aa");
	assert_int_equal(stat(dir, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0700);
	snprintf(path, sizeof(path), "%s/0A01.pem", dir);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	vault_cache_scan(dir, &c);
	assert_true(c.found);
	assert_string_equal(c.serial, "0A01");
	assert_string_equal(c.signature, "00000000000000aa");
	assert_true(c.not_after > time(NULL) + 29 * 86400);
	assert_true(vault_cache_has(dir, c.fingerprint));
	/* a newer pair becomes the newest */
	write_pair(dir, "0A02", 0, 30, "00000000000000bb");
	vault_cache_scan(dir, &c);
	assert_string_equal(c.serial, "0A02");
	assert_string_equal(c.signature, "00000000000000bb");
	/* a too-open directory is tightened */
	assert_int_equal(chmod(dir, 0755), 0);
	write_pair(dir, "0A03", 0, 31, "00000000000000cc");
	assert_int_equal(stat(dir, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0700);
}

static int
exists(const char *dir, const char *serial)
{
	char path[400];

	snprintf(path, sizeof(path), "%s/%s.pem", dir, serial);
	return access(path, F_OK) == 0;
}

static void
test_cache_prune(void **state)
{
	char dir[300];

	(void)state;
	snprintf(dir, sizeof(dir), "%s/vault/prune", tmp);
	write_pair(dir, "0B01", -20, -1, "0");     /* expired */
	write_pair(dir, "0B02", -4, 30, "0");
	write_pair(dir, "0B03", -3, 30, "0");
	write_pair(dir, "0B04", -2, 30, "0");
	write_pair(dir, "0B05", -1, 30, "0");
	vault_cache_prune(dir, time(NULL), 3);
	assert_false(exists(dir, "0B01"));
	assert_false(exists(dir, "0B02"));
	assert_true(exists(dir, "0B03"));
	assert_true(exists(dir, "0B04"));
	assert_true(exists(dir, "0B05"));
	/* the newest stays even when expired: it is all there is */
	snprintf(dir, sizeof(dir), "%s/vault/old", tmp);
	write_pair(dir, "0C01", -20, -1, "0");
	vault_cache_prune(dir, time(NULL), 3);
	assert_true(exists(dir, "0C01"));
}

/* The store reads Vault's cache for a certificate.yaml with vault:, and a
 * broken vault: section is a problem naming its line. */
static void
test_certstore_reads_cache(void **state)
{
	char certs[300], cache[300], dir[400], cmd[800];
	struct config_errors errs = { 0 };
	struct certset *set;
	FILE *f;

	(void)state;
	snprintf(certs, sizeof(certs), "%s/certs.d", tmp);
	snprintf(cache, sizeof(cache), "%s/vault", tmp);
	snprintf(cmd, sizeof(cmd), "mkdir -p %s/one", certs);
	assert_int_equal(system(cmd), 0);
	snprintf(dir, sizeof(dir), "%s/one/certificate.yaml", certs);
	assert_non_null(f = fopen(dir, "w"));
	fprintf(f, "vault:\n  pki: pki/issue/client\n  common_name: one\n");
	fclose(f);
	set = certset_load(certs, cache, "one", time(NULL), &errs);
	assert_non_null(set);
	assert_non_null(set->opts.vault);
	assert_string_equal(set->opts.vault->path, "pki/issue/client");
	assert_int_equal(set->n_pairs, 3);      /* 0A01..0A03 from the cache test */
	assert_non_null(set->current);
	assert_string_equal(set->current->serial_hex, "0A03");
	assert_int_equal(set->problems.n, 0);
	certset_free(set);
	/* without a cache root (mtlsd -t of another host's files), no pairs */
	set = certset_load(certs, NULL, "one", time(NULL), &errs);
	assert_int_equal(set->n_pairs, 0);
	assert_int_equal(set->problems.n, 0);   /* no "no files": Vault makes them */
	certset_free(set);
	assert_non_null(f = fopen(dir, "w"));
	fprintf(f, "vault:\n  pki: pki/issue/client\n  common_name: one\n  ttl: forever\n");
	fclose(f);
	set = certset_load(certs, cache, "one", time(NULL), &errs);
	assert_null(set->opts.vault);
	assert_true(set->opts.vault_broken);
	assert_int_equal(set->n_pairs, 3);      /* the cache still serves */
	assert_true(set->problems.n >= 1);
	assert_non_null(strstr(set->problems.msgs[0], "line 4: vault.ttl"));
	certset_free(set);
	config_errors_clear(&errs);
}

static int
setup(void **state)
{
	(void)state;
	snprintf(tmp, sizeof(tmp), "%s/mtlsd-vault-XXXXXX",
	    getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	return mkdtemp(tmp) != NULL ? 0 : -1;
}

static int
teardown(void **state)
{
	char cmd[400];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf %s", tmp);
	return system(cmd) == 0 ? 0 : -1;
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pki_issue),
		cmocka_unit_test(test_pki_sign_and_issuer_path),
		cmocka_unit_test(test_kv),
		cmocka_unit_test(test_errors_name_the_line_and_key),
		cmocka_unit_test(test_signature),
		cmocka_unit_test(test_shipped_examples),
		cmocka_unit_test(test_cache_write_modes_and_scan),
		cmocka_unit_test(test_cache_prune),
		cmocka_unit_test(test_certstore_reads_cache),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
