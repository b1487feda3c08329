/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * check-p12 collects findings (ok, warning, bad) in the order a person would
 * check by hand: can it be read, what is it encrypted with and who can open
 * that, does the password fit, is there a key with its certificate, is the
 * key strong enough, is the certificate valid and for client authentication,
 * is the chain complete. The verdict is "bad" when any finding is.
 *
 * export writes the file next to nothing others can read: the directory
 * must not be writable by group or others, nor readable by others; the file
 * is created 0600 under a temporary name and renamed into place after it
 * has been read back.
 */
#include "autoconf.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "certstore.h"
#include "config.h"
#include "ctl_admin.h"
#include "ctl_p12.h"
#include "ctl_util.h"
#include "json.h"
#include "log.h"
#include "p12.h"
#include "util.h"
#include "x509.h"

#define P12_FILE_MAX    (1024 * 1024)
#define MAX_FINDINGS    32
#define EXPIRY_WARN_DAYS 30
#define RSA_MIN_BITS    2048
#define EC_MIN_BITS     256
#define GEN_PASS_LEN    24

enum level { LVL_OK, LVL_WARN, LVL_BAD };

static const char *const level_name[] = {"ok", "warning", "bad"};

struct finding {
	enum level level;
	const char *check;
	char msg[600];
};

struct check {
	const char *file;
	struct finding f[MAX_FINDINGS];
	size_t n;
	struct p12_info info;
	int inspected;
	struct x509_bundle b;
	struct x509_cert *leaf;         /* in b */
	struct x509_key *key;           /* in b */
	time_t now;
};

static void add(struct check *c, enum level l, const char *check, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void
add(struct check *c, enum level l, const char *check, const char *fmt, ...)
{
	va_list ap;

	if (c->n == MAX_FINDINGS)
		return;
	c->f[c->n].level = l;
	c->f[c->n].check = check;
	va_start(ap, fmt);
	vsnprintf(c->f[c->n].msg, sizeof(c->f[c->n].msg), fmt, ap);
	va_end(ap);
	c->n++;
}

/* --- encryption -------------------------------------------------------------- */

static int
part_legacy(const struct p12_part *p)
{
	return p->cipher != P12_CIPHER_NONE && p->cipher != P12_CIPHER_AES;
}

static void
check_encryption(struct check *c)
{
	const struct p12_info *in = &c->info;
	int rc2_rc4_des = 0, tdes = 0, aes = 0;

	for (size_t i = 0; i < in->n_parts; i++) {
		const struct p12_part *p = &in->parts[i];
		const char *what = p->is_key ? "key encryption" : "certificate encryption";
		rc2_rc4_des |= p->cipher == P12_CIPHER_RC2 || p->cipher == P12_CIPHER_RC4 ||
		    p->cipher == P12_CIPHER_DES;
		tdes |= p->cipher == P12_CIPHER_3DES;
		aes |= p->cipher == P12_CIPHER_AES;
		if (p->cipher == P12_CIPHER_NONE)
			add(c, p->is_key ? LVL_WARN : LVL_OK, what, "%s%s", p->alg, p->is_key ?
			    " (the private key is protected by nothing but the file's mode)" :
			    " (certificates are public)");
		else
			add(c, part_legacy(p) ? LVL_WARN : LVL_OK, what, "%s, %ld iterations%s",
			    p->alg, p->iterations, part_legacy(p) ? " (legacy)" : "");
	}
	if (!in->has_mac)
		add(c, LVL_WARN, "integrity", "no MAC: nothing detects a modified file or a "
		    "wrong password before decryption");
	else
		add(c, in->mac_digest == X509_DIGEST_SHA1 ? LVL_WARN : LVL_OK, "integrity",
		    "%s MAC, %ld iterations%s", in->mac_alg, in->mac_iterations,
		    in->mac_digest == X509_DIGEST_SHA1 ? " (legacy SHA-1)" : "");
	if (rc2_rc4_des)
		add(c, LVL_WARN, "openssl", "legacy encryption (RC2, RC4 or single DES): "
		    "OpenSSL 3 opens it only with -legacy; re-export it with OpenSSL 3's "
		    "defaults (openssl pkcs12 -export, without -legacy) or with mtlsctl export");
	else if (tdes)
		add(c, LVL_WARN, "openssl", "3DES encryption: OpenSSL 3 opens it, but 3DES is "
		    "deprecated; prefer AES (OpenSSL 3's default)");
	else
		add(c, LVL_OK, "openssl", "OpenSSL 3 opens it without -legacy");
	if (aes || in->mac_digest > X509_DIGEST_SHA1)
		add(c, LVL_OK, "java", "modern format (PBES2/AES, HMAC-SHA2): Java's PKCS12 "
		    "keystore opens it from Java 8u301, 11.0.12 and 17 on; older Java releases "
		    "cannot");
	else
		add(c, LVL_OK, "java", "legacy format (PBE with SHA-1): every Java release's "
		    "PKCS12 keystore opens it");
}

/* --- contents ----------------------------------------------------------------- */

static void
check_decrypt(struct check *c, const void *buf, size_t len, const char *pw, int mac_ok)
{
	char err[400];
	int legacy = 0;

	for (size_t i = 0; i < c->info.n_parts; i++)
		legacy |= c->info.parts[i].cipher == P12_CIPHER_RC2 ||
		    c->info.parts[i].cipher == P12_CIPHER_RC4;
	if (x509_parse_pkcs12(buf, len, pw, &c->b, err, sizeof(err)) == 0) {
		add(c, LVL_OK, "decryption", "mtlsd can decrypt it (%zu certificate(s), %zu "
		    "key(s))", c->b.n_certs, c->b.n_keys);
		return;
	}
	if (mac_ok == 1 && legacy)
		add(c, LVL_BAD, "decryption", "the password is right, but mtlsd cannot decrypt "
		    "its legacy RC2/RC4 encryption: re-export it with AES (OpenSSL 3's default, "
		    "or mtlsctl export)");
	else if (mac_ok == 0 || strstr(err, "wrong password") != NULL)
		add(c, LVL_BAD, "password", "wrong password (the file's MAC does not verify)");
	else
		add(c, LVL_BAD, "decryption", "%s", err);
}

static void
check_pair(struct check *c)
{
	for (size_t k = 0; k < c->b.n_keys && c->leaf == NULL; k++)
		for (size_t i = 0; i < c->b.n_certs && c->leaf == NULL; i++)
			if (memcmp(c->b.certs[i]->spki_sha256, c->b.keys[k]->spki_sha256, 32) == 0) {
				c->leaf = c->b.certs[i];
				c->key = c->b.keys[k];
			}
	if (c->b.n_keys == 0)
		add(c, LVL_BAD, "key", "no private key in it (a certificate-only PKCS#12, "
		    "e.g. a trust store)");
	else if (c->leaf == NULL)
		add(c, LVL_BAD, "key", "no certificate in it matches its private key");
	else
		add(c, c->b.n_keys > 1 ? LVL_WARN : LVL_OK, "key", "the private key (%s) "
		    "matches the certificate %s%s", c->key->desc, c->leaf->subject,
		    c->b.n_keys > 1 ? "; the other keys in it are ignored" : "");
}

static void
check_strength(struct check *c)
{
	const struct x509_cert *x = c->leaf;
	int weak_sig;
	const char *sig = x509_cert_sig_alg(x, &weak_sig);

	if (x->key_type == X509_KEY_OTHER)
		add(c, LVL_BAD, "key strength", "%s: mtlsd uses RSA and EC keys only", x->key_desc);
	else if ((x->key_type == X509_KEY_RSA && x->key_bits < RSA_MIN_BITS) ||
	    (x->key_type == X509_KEY_EC && x->key_bits < EC_MIN_BITS))
		add(c, LVL_BAD, "key strength", "weak key: %s (mtlsd needs RSA %d or EC %d bits "
		    "at least)", x->key_desc, RSA_MIN_BITS, EC_MIN_BITS);
	else
		add(c, LVL_OK, "key strength", "%s", x->key_desc);
	add(c, weak_sig ? LVL_WARN : LVL_OK, "signature", "%s%s", sig, weak_sig ?
	    ": many servers refuse SHA-1 and MD5 signatures" : "");
}

static void
check_validity(struct check *c)
{
	const struct x509_cert *x = c->leaf;
	char nb[40], na[40];
	long long left = ctl_days_left(x->not_after, c->now);

	x509_time_format(x->not_before, nb, sizeof(nb));
	x509_time_format(x->not_after, na, sizeof(na));
	if (c->now > x->not_after)
		add(c, LVL_BAD, "validity", "expired on %s", na);
	else if (c->now < x->not_before)
		add(c, LVL_WARN, "validity", "not valid before %s (mtlsd keeps it pending until "
		    "then)", nb);
	else
		add(c, left < EXPIRY_WARN_DAYS ? LVL_WARN : LVL_OK, "validity",
		    "%s .. %s (%lld days left)", nb, na, left);
	if (x->is_ca)
		add(c, LVL_BAD, "usage", "it is a CA certificate (basicConstraints CA:TRUE), "
		    "not a client certificate");
	else if (x->has_eku && !x->eku_client_auth)
		add(c, LVL_BAD, "usage", "not for TLS client authentication (extendedKeyUsage "
		    "lacks clientAuth)");
	else
		add(c, LVL_OK, "usage", "%s", x->has_eku ? "extendedKeyUsage includes "
		    "clientAuth" : "no extendedKeyUsage (any use allowed)");
}

static const struct x509_cert *
issuer_in(const struct x509_bundle *b, const struct x509_cert *x)
{
	for (size_t i = 0; i < b->n_certs; i++)
		if (b->certs[i] != x && x509_cert_issued_by(x, b->certs[i]))
			return b->certs[i];
	return NULL;
}

/* The chain from the leaf through the file's CA certificates; where it
 * ends tells whether an intermediate is missing. */
static void
check_chain(struct check *c, const char *ca_file)
{
	const struct x509_cert *cur = c->leaf, *next;
	struct x509_bundle ca = {0};
	char path[1200] = "", err[200];
	size_t used = 1, len;
	char *buf;
	int depth = 0;

	snprintf(path, sizeof(path), "leaf");
	while (!cur->self_signed && depth++ < 8 && (next = issuer_in(&c->b, cur)) != NULL) {
		snprintf(path + strlen(path), sizeof(path) - strlen(path), " <- %s", next->subject);
		cur = next;
		used++;
	}
	if (used < c->b.n_certs)
		add(c, LVL_WARN, "chain", "%zu certificate(s) in the file are not part of the "
		    "leaf's chain", c->b.n_certs - used);
	if (cur->self_signed) {
		add(c, LVL_OK, "chain", "complete up to the root (%s): %s", cur->subject, path);
		return;
	}
	if (ca_file == NULL) {
		if (used == 1)
			add(c, LVL_WARN, "chain", "no CA certificate in the file: the server must "
			    "have the issuer %s; if that is an intermediate CA, add it to the file "
			    "(--ca-file ROOT.pem checks the chain)", cur->issuer);
		else
			add(c, LVL_OK, "chain", "%s; the server must have %s, the issuer of the "
			    "last one (--ca-file ROOT.pem checks it)", path, cur->issuer);
		return;
	}
	if ((buf = read_file(ca_file, P12_FILE_MAX, &len)) == NULL ||
	    x509_parse(buf, len, &ca, err, sizeof(err)) < 0) {
		add(c, LVL_BAD, "chain", "cannot read --ca-file %s: %s", ca_file,
		    buf == NULL ? strerror(errno) : err);
		free(buf);
		return;
	}
	free(buf);
	if ((next = issuer_in(&ca, cur)) != NULL)
		add(c, LVL_OK, "chain", "complete: %s <- %s (from %s)", path, next->subject,
		    ca_file);
	else
		add(c, LVL_BAD, "chain", "incomplete: %s is issued by %s, which is neither in "
		    "the file nor in %s: the intermediate CA certificate is missing", cur->subject,
		    cur->issuer, ca_file);
	x509_bundle_clear(&ca);
}

/* --- check-p12 ---------------------------------------------------------------- */

static const char check_usage[] =
    "usage: mtlsctl check-p12 FILE [--password-file F] [--ca-file ROOT.pem] [--json]\n"
    "Test a PKCS#12 (.p12/.pfx) before using it: structure, encryption and who\n"
    "can open it (mtlsd, OpenSSL 3 with or without -legacy, Java), password,\n"
    "key/certificate match, key strength, signature, validity, extendedKeyUsage\n"
    "and chain completeness. Prints a verdict line, then each finding.\n"
    "  --password-file F  the password (\"-\": standard input); default FILE.pass\n"
    "                     when it exists, else an empty password\n"
    "  --ca-file ROOT.pem the CA the remote side trusts: the chain must reach it\n"
    "  --json             one JSON document\n"
    "Exit 0 when usable (warnings allowed), 1 when not, 2 on wrong usage.\n";

static char *
check_password(const char *file, const char *pwfile, const char **source)
{
	char *def = xasprintf("%s.pass", file), *pw;

	*source = pwfile;
	if (pwfile == NULL && access(def, F_OK) == 0)
		*source = def;
	if (*source == NULL) {
		free(def);
		*source = "(none: empty password)";
		return xstrdup("");
	}
	pw = ctl_read_secret(*source);
	if (*source == def)
		*source = "FILE.pass";
	free(def);
	return pw;
}

static enum level
verdict(const struct check *c, const char **first_bad, size_t *warnings)
{
	enum level v = LVL_OK;

	*first_bad = NULL;
	*warnings = 0;
	for (size_t i = 0; i < c->n; i++) {
		if (c->f[i].level == LVL_BAD && *first_bad == NULL)
			*first_bad = c->f[i].msg;
		*warnings += c->f[i].level == LVL_WARN;
		if (c->f[i].level > v)
			v = c->f[i].level;
	}
	return v;
}

static void
print_json(const struct check *c, enum level v)
{
	struct json_writer j;
	char t[40];

	ctl_json_init(&j);
	jw_open(&j, NULL, '{');
	jw_str(&j, "file", c->file);
	jw_str(&j, "verdict", v == LVL_OK ? "ok" : v == LVL_WARN ? "warnings" : "bad");
	jw_bool(&j, "usable", v != LVL_BAD);
	jw_open(&j, "findings", '[');
	for (size_t i = 0; i < c->n; i++) {
		jw_open(&j, NULL, '{');
		jw_str(&j, "level", level_name[c->f[i].level]);
		jw_str(&j, "check", c->f[i].check);
		jw_str(&j, "message", c->f[i].msg);
		jw_close(&j, '}');
	}
	jw_close(&j, ']');
	jw_open(&j, "encryption", '[');
	for (size_t i = 0; c->inspected && i < c->info.n_parts; i++) {
		jw_open(&j, NULL, '{');
		jw_str(&j, "part", c->info.parts[i].is_key ? "key" : "certificates");
		jw_str(&j, "algorithm", c->info.parts[i].alg);
		jw_int(&j, "iterations", c->info.parts[i].iterations);
		jw_bool(&j, "legacy", part_legacy(&c->info.parts[i]));
		jw_close(&j, '}');
	}
	jw_close(&j, ']');
	jw_str(&j, "mac", c->inspected && c->info.has_mac ? c->info.mac_alg : NULL);
	if (c->leaf != NULL) {
		char *sans = x509_cert_sans(c->leaf);
		jw_open(&j, "certificate", '{');
		jw_str(&j, "subject", c->leaf->subject);
		jw_str(&j, "sans", sans);
		jw_str(&j, "issuer", c->leaf->issuer);
		jw_str(&j, "serial", c->leaf->serial_hex);
		x509_time_format(c->leaf->not_before, t, sizeof(t));
		jw_str(&j, "not_before", t);
		x509_time_format(c->leaf->not_after, t, sizeof(t));
		jw_str(&j, "not_after", t);
		jw_str(&j, "key", c->leaf->key_desc);
		jw_close(&j, '}');
		free(sans);
	} else
		jw_str(&j, "certificate", NULL);
	jw_close(&j, '}');
	ctl_json_print(&j);
}

static void
print_text(const struct check *c, enum level v, const char *first_bad, size_t warnings)
{
	static const char *const tag[] = {"ok  ", "WARN", "BAD "};

	if (v == LVL_BAD)
		printf("%s: NOT USABLE: %s\n", c->file, first_bad);
	else if (warnings > 0)
		printf("%s: usable, with %zu warning(s)\n", c->file, warnings);
	else
		printf("%s: OK\n", c->file);
	for (size_t i = 0; i < c->n; i++)
		printf("  %s  %-22s %s\n", tag[c->f[i].level], c->f[i].check, c->f[i].msg);
}

static void
check_run(struct check *c, const char *buf, size_t len, const char *pw, const char *pwsrc,
    const char *ca_file)
{
	char err[300];
	int mac;

	if (p12_inspect(buf, len, &c->info, err, sizeof(err)) < 0) {
		add(c, LVL_BAD, "structure", "%s", err);
		return;
	}
	c->inspected = 1;
	add(c, LVL_OK, "structure", "PKCS#12, %zu part(s)", c->info.n_parts);
	check_encryption(c);
	mac = p12_mac_check(&c->info, pw);
	if (mac == 1)
		add(c, LVL_OK, "password", "the password (%s) opens it: the MAC verifies", pwsrc);
	else if (mac == 0 && !p12_password_ok(pw))
		add(c, LVL_WARN, "password", "not printable ASCII: tools differ in how they use "
		    "such passwords");
	check_decrypt(c, buf, len, pw, mac);
	if (c->b.n_certs == 0 && c->b.n_keys == 0)
		return;
	check_pair(c);
	if (c->leaf == NULL)
		return;
	check_strength(c);
	check_validity(c);
	check_chain(c, ca_file);
	if (c->key != NULL) {
		size_t plen;
		char *pem = x509_cert_pem(c->leaf, &plen);
		if (x509_check_pair(pem, plen, c->key->der, c->key->der_len, err,
		    sizeof(err)) < 0)
			add(c, LVL_BAD, "tls", "%s", err);
		free(pem);
	}
}

int
ctl_p12_check(struct ctl *ctl, int argc, char **argv)
{
	const char *pwfile = NULL, *ca_file = NULL, *pwsrc, *first_bad;
	int json = 0, rc;
	const struct ctl_opt opts[] = {{"password-file", 1, &pwfile, NULL},
	    {"ca-file", 1, &ca_file, NULL}, {"json", 0, NULL, &json}, {NULL, 0, NULL, NULL}};
	struct check *c;
	char **pos, *buf, *pw;
	size_t npos, len, warnings;
	enum level v;

	if ((rc = ctl_parse(argc, argv, opts, check_usage, 1, 1, &pos, &npos)) >= 0)
		return rc;
	if ((buf = read_file(pos[0], P12_FILE_MAX, &len)) == NULL) {
		ctl_err("cannot read %s: %s", pos[0], errno == EFBIG ? "too large" :
		    strerror(errno));
		return CTL_FAIL;
	}
	if ((pw = check_password(pos[0], pwfile, &pwsrc)) == NULL) {
		free(buf);
		return CTL_FAIL;
	}
	c = xcalloc(1, sizeof(*c));
	c->file = pos[0];
	c->now = ctl->now;
	check_run(c, buf, len, pw, pwsrc, ca_file);
	v = verdict(c, &first_bad, &warnings);
	if (json)
		print_json(c, v);
	else
		print_text(c, v, first_bad, warnings);
	x509_bundle_clear(&c->b);
	free(c);
	ctl_secret_free(pw);
	wipe_free(buf, len);
	return v == LVL_BAD ? CTL_FAIL : CTL_OK;
}

/* --- export -------------------------------------------------------------------- */

static const char export_usage[] =
    "usage: mtlsctl [-c FILE] export NAME --p12 OUT [--password-file F] [--force]\n"
    "Write the certificate NAME presents now (as the running mtlsd reports it,\n"
    "else as mtlsd would choose it from certs_dir/NAME), its chain and its key\n"
    "as a password-protected PKCS#12: PBES2 (PBKDF2-HMAC-SHA256, AES-256-CBC)\n"
    "with an HMAC-SHA256 MAC, as OpenSSL 3 writes by default. OUT is created\n"
    "with mode 0600; its directory must not be writable by group or others nor\n"
    "readable by others.\n"
    "  --p12 OUT          the file to write\n"
    "  --password-file F  the password (printable ASCII; \"-\": standard input);\n"
    "                     without it a random one is written to OUT.pass (0600)\n"
    "  --force            replace OUT (and OUT.pass) if they exist\n"
    "Exit 0 when written, 1 on failure, 2 on wrong usage.\n";

/* The directory of path must keep the file to its owner. */
static int
dir_private(const char *path)
{
	char *copy = xstrdup(path), *dir = dirname(copy);
	struct stat st;
	int ok = 0;

	if (stat(dir, &st) < 0)
		ctl_err("cannot use directory %s: %s", dir, strerror(errno));
	else if ((st.st_mode & (S_IWGRP | S_IWOTH)) != 0)
		ctl_err("refusing to write into %s: mode %04o lets %s write there (use a "
		    "directory only you can write, e.g. mkdir -m 700 DIR)", dir,
		    (unsigned)(st.st_mode & 07777), st.st_mode & S_IWOTH ? "others" : "the group");
	else if ((st.st_mode & S_IROTH) != 0)
		ctl_err("refusing to write into %s: mode %04o lets others list it (use a "
		    "directory others cannot read, e.g. chmod o-rwx %s)", dir,
		    (unsigned)(st.st_mode & 07777), dir);
	else
		ok = 1;
	free(copy);
	return ok;
}

/* Write data to path atomically with mode 0600 (a temporary name beside
 * it, then rename). */
static int
write_private(const char *path, const void *data, size_t len, int force)
{
	char *tmp = xasprintf("%s.tmp-%ld", path, (long)getpid());
	int fd, ok;

	if (!force && access(path, F_OK) == 0) {
		ctl_err("%s exists (--force replaces it)", path);
		free(tmp);
		return -1;
	}
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	ok = fd >= 0 && fchmod(fd, 0600) == 0 && write(fd, data, len) == (ssize_t)len &&
	    fsync(fd) == 0;
	if (fd >= 0 && close(fd) < 0)
		ok = 0;
	if (ok && rename(tmp, path) < 0)
		ok = 0;
	if (!ok) {
		ctl_err("cannot write %s: %s", path, strerror(errno));
		(void)unlink(tmp);
	}
	free(tmp);
	return ok ? 0 : -1;
}

static char *
random_password(void)
{
	static const char set[] = "ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789";
	unsigned char r[GEN_PASS_LEN];
	char *pw = xmalloc(GEN_PASS_LEN + 1);

	if (x509_random(r, sizeof(r)) < 0)
		fatalx("no random numbers");
	for (size_t i = 0; i < GEN_PASS_LEN; i++)
		pw[i] = set[r[i] % (sizeof(set) - 1)];
	pw[GEN_PASS_LEN] = '\0';
	explicit_bzero(r, sizeof(r));
	return pw;
}

/* The serial the running daemon presents for name, if it can be asked. */
static char *
daemon_serial(struct ctl *ctl, const char *name)
{
	char err[300], *serial = NULL;
	struct json *j = ctl_admin_status(ctl, err, sizeof(err));
	int certs;

	if (j == NULL)
		return NULL;
	certs = json_get(j, json_root(j), "certificates");
	for (size_t i = 0; i < json_array_len(j, certs); i++) {
		int c = json_array_at(j, certs, i);
		const char *n = json_string(j, json_get(j, c, "name"));
		const char *s = json_string(j, json_path(j, c, "current.serial"));
		if (n != NULL && s != NULL && strcmp(n, name) == 0)
			serial = xstrdup(s);
	}
	json_free(j);
	return serial;
}

static const struct cert_material *
export_pick(struct ctl *ctl, const struct certset *set)
{
	char *serial = daemon_serial(ctl, set->name);
	const struct cert_material *m = NULL;

	for (size_t i = 0; serial != NULL && i < set->n_pairs; i++)
		if (strcmp(set->pairs[i]->serial_hex, serial) == 0)
			m = set->pairs[i];
	free(serial);
	return m != NULL ? m : ctl_set_current(ctl, set);
}

/* The PKCS#12 of m, read back before it is written anywhere. */
static unsigned char *
export_build(const struct cert_material *m, const char *name, const char *pw, size_t *len)
{
	struct x509_bundle chain = {0}, key = {0}, back = {0};
	unsigned char *der = NULL;
	char err[300];

	if (x509_parse(m->chain_pem, m->chain_pem_len, &chain, err, sizeof(err)) < 0 ||
	    x509_parse(m->key_der, m->key_der_len, &key, err, sizeof(err)) < 0 ||
	    key.n_keys != 1) {
		ctl_err("cannot read the certificate material: %s", err);
		goto done;
	}
	der = p12_create(chain.certs, chain.n_certs, key.keys[0], pw, name, P12_EXPORT_ITER,
	    len, err, sizeof(err));
	if (der == NULL) {
		ctl_err("cannot make the PKCS#12: %s", err);
		goto done;
	}
	if (x509_parse_pkcs12(der, *len, pw, &back, err, sizeof(err)) < 0 ||
	    back.n_keys != 1 || back.n_certs != chain.n_certs ||
	    memcmp(back.keys[0]->spki_sha256, chain.certs[0]->spki_sha256, 32) != 0) {
		ctl_err("the PKCS#12 made does not read back (%s); nothing written", err);
		wipe_free(der, *len);
		der = NULL;
	}
done:
	x509_bundle_clear(&chain);
	x509_bundle_clear(&key);
	x509_bundle_clear(&back);
	return der;
}

static int
export_write(const char *out, const char *pwfile, int force, const unsigned char *der,
    size_t len, const char *pw)
{
	char *passpath = xasprintf("%s.pass", out), *line;
	int rc = 0;

	if (pwfile == NULL) {
		line = xasprintf("%s\n", pw);
		rc = write_private(passpath, line, strlen(line), force);
		wipe_free(line, strlen(line));
	}
	if (rc == 0 && write_private(out, der, len, force) < 0) {
		if (pwfile == NULL)
			(void)unlink(passpath);
		rc = -1;
	}
	free(passpath);
	return rc;
}

int
ctl_p12_export(struct ctl *ctl, int argc, char **argv)
{
	const char *out = NULL, *pwfile = NULL;
	int force = 0, rc;
	const struct ctl_opt opts[] = {{"p12", 1, &out, NULL},
	    {"password-file", 1, &pwfile, NULL}, {"force", 0, NULL, &force},
	    {NULL, 0, NULL, NULL}};
	const struct cert_material *m;
	struct certset *set;
	unsigned char *der = NULL;
	char **pos, *pw = NULL;
	size_t npos, len = 0;

	if ((rc = ctl_parse(argc, argv, opts, export_usage, 1, 1, &pos, &npos)) >= 0)
		return rc;
	if (out == NULL) {
		fprintf(stderr, "mtlsctl: export needs --p12 OUT\n%s", export_usage);
		return CTL_USAGE;
	}
	if (!dir_private(out) || (set = ctl_load_set(ctl, pos[0])) == NULL)
		return CTL_FAIL;
	rc = CTL_FAIL;
	if ((m = export_pick(ctl, set)) == NULL) {
		ctl_err("certificate '%s' has no current certificate to export%s%s", set->name,
		    set->problems.n ? ": " : "", set->problems.n ? set->problems.msgs[0] : "");
		goto done;
	}
	pw = pwfile != NULL ? ctl_read_secret(pwfile) : random_password();
	if (pw == NULL)
		goto done;
	if (pw[0] == '\0' || !p12_password_ok(pw)) {
		ctl_err("the password must be non-empty printable ASCII (other characters are "
		    "encoded differently by different tools)");
		goto done;
	}
	if ((der = export_build(m, set->name, pw, &len)) == NULL ||
	    export_write(out, pwfile, force, der, len, pw) < 0)
		goto done;
	printf("wrote %s (mode 0600): certificate '%s' serial %s, %s, %d certificate(s) and "
	    "the key; %s\n", out, set->name, m->serial_hex, m->subject, m->chain_len,
	    p12_create_desc);
	if (pwfile == NULL)
		printf("password: in %s.pass (mode 0600)\n", out);
	rc = CTL_OK;
done:
	if (der != NULL)
		wipe_free(der, len);
	ctl_secret_free(pw);
	certset_free(set);
	return rc;
}
