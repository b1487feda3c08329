/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Files mtlsctl creates in certs_dir belong to whoever owns certs_dir (the
 * mtlsd user in a package install), so that root running mtlsctl does not
 * leave keys the daemon cannot read. Keys are written 0600 under a dot-name
 * (certstore ignores those) and renamed into place: the daemon's watcher
 * never sees half a key.
 */
#include "autoconf.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "ctl_admin.h"
#include "ctl_key.h"
#include "ctl_util.h"
#include "json.h"
#include "util.h"
#include "x509.h"

#define MAX_SANS 64

/* A certificate name is a directory name under certs_dir. */
static int
name_ok(const char *name)
{
	size_t n = strlen(name);

	if (n == 0 || n > 128 || name[0] == '.' || name[0] == '-' ||
	    strspn(name, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-") != n) {
		ctl_err("'%s' is not a certificate name (letters, digits, '.', '_' and '-'; "
		    "not starting with '.' or '-')", name);
		return 0;
	}
	return 1;
}

/* Give path to certs_dir's owner when we are root and it is someone else. */
static void
own_like(const char *path, const struct stat *owner)
{
	if (geteuid() == 0 && owner != NULL && owner->st_uid != 0 &&
	    chown(path, owner->st_uid, owner->st_gid) < 0)
		ctl_err("warning: cannot give %s to uid %u: %s", path, (unsigned)owner->st_uid,
		    strerror(errno));
}

static void
utc_stamp(time_t now, char *buf, size_t len)
{
	struct tm tm;

	gmtime_r(&now, &tm);
	strftime(buf, len, "%Y%m%dT%H%M%SZ", &tm);
}

/* --- new-key ------------------------------------------------------------- */

static const char newkey_usage[] =
    "usage: mtlsctl [-c FILE] new-key NAME --cn CN [--san DNS:x,IP:y,URI:z]\n"
    "                                   [--key ec-p256|ec-p384|rsa-2048|rsa-3072|rsa-4096]\n"
    "Generate a private key (mode 0600) and a certificate request (CSR) in\n"
    "certs_dir/NAME for a CA to sign; put the signed certificate next to them\n"
    "and mtlsd pairs it with the key by itself. An existing NAME keeps its\n"
    "files: the new ones get a dated name (the way to rotate).\n"
    "  --cn CN     the request's subject common name\n"
    "  --san LIST  subjectAltName entries, comma-separated: DNS:name, IP:addr,\n"
    "              URI:uri (a bare entry is a DNS name)\n"
    "  --key TYPE  ec-p256 (default), ec-p384, rsa-2048, rsa-3072 or rsa-4096\n"
    "Exit 0 when written, 1 on failure, 2 on wrong usage.\n";

struct sans {
	char *dns[MAX_SANS], *ip[MAX_SANS], *uri[MAX_SANS];
	size_t n_dns, n_ip, n_uri;
	char *copy;
};

static int
sans_parse(const char *list, struct sans *s)
{
	char *save = NULL, *tok;

	memset(s, 0, sizeof(*s));
	if (list == NULL)
		return 0;
	s->copy = xstrdup(list);
	for (tok = strtok_r(s->copy, ",", &save); tok != NULL; tok = strtok_r(NULL, ",", &save)) {
		char **arr = s->dns;
		size_t *n = &s->n_dns;

		while (*tok == ' ')
			tok++;
		if (strncasecmp(tok, "DNS:", 4) == 0)
			tok += 4;
		else if (strncasecmp(tok, "IP:", 3) == 0)
			arr = s->ip, n = &s->n_ip, tok += 3;
		else if (strncasecmp(tok, "URI:", 4) == 0)
			arr = s->uri, n = &s->n_uri, tok += 4;
		else if (strchr(tok, ':') != NULL) {
			ctl_err("--san %s: use DNS:, IP: or URI:", tok);
			return -1;
		}
		if (*n == MAX_SANS) {
			ctl_err("--san: more than %d names of one type", MAX_SANS);
			return -1;
		}
		arr[(*n)++] = tok;
	}
	return 0;
}

static int
key_type(const char *s, enum x509_key_type *type, int *bits)
{
	static const struct {
		const char *name;
		enum x509_key_type type;
		int bits;
	} types[] = {{"ec-p256", X509_KEY_EC, 256}, {"ec-p384", X509_KEY_EC, 384},
	    {"rsa-2048", X509_KEY_RSA, 2048}, {"rsa-3072", X509_KEY_RSA, 3072},
	    {"rsa-4096", X509_KEY_RSA, 4096}};

	for (size_t i = 0; i < ARRAY_LEN(types); i++)
		if (strcmp(s, types[i].name) == 0) {
			*type = types[i].type;
			*bits = types[i].bits;
			return 0;
		}
	return -1;
}

/* Write data as dir/file, mode given, via a dot-name and rename; never
 * replaces an existing file. */
static int
write_new(const char *dir, const char *file, const void *data, size_t len, mode_t mode,
    const struct stat *owner)
{
	char *path = xasprintf("%s/%s", dir, file), *tmp = xasprintf("%s/.%s.tmp", dir, file);
	int fd, ok;

	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
	ok = fd >= 0 && fchmod(fd, mode) == 0 && write(fd, data, len) == (ssize_t)len &&
	    fsync(fd) == 0;
	if (fd >= 0 && close(fd) < 0)
		ok = 0;
	if (ok)
		own_like(tmp, owner);
	/* link() fails if path exists: never overwrite a key */
	if (ok && link(tmp, path) < 0)
		ok = 0;
	if (!ok)
		ctl_err("cannot write %s: %s", path, strerror(errno));
	(void)unlink(tmp);
	free(path);
	free(tmp);
	return ok ? 0 : -1;
}

/* certs_dir/NAME, made when missing (0750: mtlsd needs to read it). */
static char *
cert_dir(const struct config *cfg, const char *name, struct stat *owner)
{
	char *dir = xasprintf("%s/%s", cfg->certs_dir, name);
	struct stat st;

	if (stat(cfg->certs_dir, owner) < 0) {
		ctl_err("certs_dir %s: %s", cfg->certs_dir, strerror(errno));
		free(dir);
		return NULL;
	}
	if (stat(dir, &st) == 0 && S_ISDIR(st.st_mode))
		return dir;
	if (mkdir(dir, 0750) < 0) {
		ctl_err("cannot create %s: %s", dir, strerror(errno));
		free(dir);
		return NULL;
	}
	own_like(dir, owner);
	return dir;
}

/* "client", or "client-STAMP" when client.key or client.csr exists. */
static char *
file_base(const char *dir, time_t now)
{
	char *k = xasprintf("%s/client.key", dir), *r = xasprintf("%s/client.csr", dir), *c;
	char stamp[32];
	int taken = access(k, F_OK) == 0 || access(r, F_OK) == 0;

	free(k);
	free(r);
	if (!taken)
		return xstrdup("client");
	utc_stamp(now, stamp, sizeof(stamp));
	c = xasprintf("client-%s", stamp);
	return c;
}

static int
newkey_write(const char *dir, const char *base, const struct x509_key *key, const char *csr,
    const struct stat *owner)
{
	char *kf = xasprintf("%s.key", base), *rf = xasprintf("%s.csr", base), *pem;
	size_t plen;
	int rc;

	pem = x509_key_pem(key, &plen);
	rc = write_new(dir, kf, pem, plen, 0600, owner);
	wipe_free(pem, plen);
	if (rc == 0 && write_new(dir, rf, csr, strlen(csr), 0644, owner) < 0) {
		char *p = xasprintf("%s/%s", dir, kf);
		(void)unlink(p);
		free(p);
		rc = -1;
	}
	free(kf);
	free(rf);
	return rc;
}

int
ctl_key_new(struct ctl *ctl, int argc, char **argv)
{
	const char *cn = NULL, *san = NULL, *kt = "ec-p256";
	const struct ctl_opt opts[] = {{"cn", 1, &cn, NULL}, {"san", 1, &san, NULL},
	    {"key", 1, &kt, NULL}, {NULL, 0, NULL, NULL}};
	const struct config *cfg;
	enum x509_key_type type;
	struct x509_key *key = NULL;
	struct sans s;
	struct stat owner;
	char **pos, err[300], *csr = NULL, *dir = NULL, *base = NULL;
	size_t npos;
	int bits, rc;

	if ((rc = ctl_parse(argc, argv, opts, newkey_usage, 1, 1, &pos, &npos)) >= 0)
		return rc;
	if (cn == NULL || key_type(kt, &type, &bits) < 0) {
		fprintf(stderr, "mtlsctl: %s\n%s", cn == NULL ? "new-key needs --cn CN" :
		    "--key: ec-p256, ec-p384, rsa-2048, rsa-3072 or rsa-4096", newkey_usage);
		return CTL_USAGE;
	}
	if (sans_parse(san, &s) < 0) {
		free(s.copy);
		return CTL_USAGE;
	}
	rc = CTL_FAIL;
	if (!name_ok(pos[0]) || (cfg = ctl_config(ctl)) == NULL)
		goto done;
	if ((key = x509_key_generate(type, bits, err, sizeof(err))) == NULL ||
	    (csr = x509_csr_pem(key, cn, s.dns, s.n_dns, s.ip, s.n_ip, s.uri, s.n_uri, err,
	    sizeof(err))) == NULL) {
		ctl_err("%s", err);
		goto done;
	}
	if ((dir = cert_dir(cfg, pos[0], &owner)) == NULL)
		goto done;
	base = file_base(dir, ctl->now);
	if (newkey_write(dir, base, key, csr, &owner) < 0)
		goto done;
	printf("wrote %s/%s.key (%s, mode 0600) and %s/%s.csr (CN=%s%s%s)\n", dir, base, key->desc,
	    dir, base, cn, san ? ", " : "", san ? san : "");
	printf("next: have your CA sign %s.csr and put the certificate (with its intermediate "
	    "CAs) in %s/%s.crt; mtlsd pairs it with the key by itself\n", base, dir, base);
	rc = CTL_OK;
done:
	x509_key_free(key);
	free(csr);
	free(dir);
	free(base);
	free(s.copy);
	return rc;
}

/* --- rm --------------------------------------------------------------------- */

static const char rm_usage[] =
    "usage: mtlsctl [-c FILE] rm NAME [--force]\n"
    "Move certs_dir/NAME to certs_dir/.trash/NAME-YYYYmmddTHHMMSSZ (nothing is\n"
    "deleted: move it back to restore it). Refused while an enabled mapping\n"
    "uses NAME, in the configuration files or in the running mtlsd, and while\n"
    "a disabled mapping still names it (mtlsd's reloads would fail).\n"
    "  --force   move it even so\n"
    "Exit 0 when moved, 1 when refused or on failure, 2 on wrong usage.\n";

/* Mappings using name, enabled ones (in the files and in the running
 * daemon) or, with disabled, the disabled ones in the files: a
 * comma-separated list (malloc'ed) or NULL. */
static char *
users(struct ctl *ctl, const char *name, int disabled)
{
	const struct config *cfg = ctl->cfg;
	char list[2048] = "", err[300];
	struct json *j;

	for (size_t i = 0; i < cfg->n_mappings; i++) {
		const struct mapping *m = &cfg->mappings[i];
		if (m->enabled != disabled && strcmp(m->certificate, name) == 0)
			snprintf(list + strlen(list), sizeof(list) - strlen(list), "%s%s (%s:%d)",
			    list[0] ? ", " : "", m->name, m->pos.file, m->pos.line);
	}
	if (!disabled && (j = ctl_admin_status(ctl, err, sizeof(err))) != NULL) {
		int maps = json_get(j, json_root(j), "mappings"), en;
		for (size_t i = 0; i < json_array_len(j, maps); i++) {
			int m = json_array_at(j, maps, i);
			const char *mn = json_string(j, json_get(j, m, "name"));
			const char *mc = json_string(j, json_get(j, m, "certificate"));
			en = 1;
			(void)json_bool(j, json_get(j, m, "enabled"), &en);
			if (en && mn != NULL && mc != NULL && strcmp(mc, name) == 0 &&
			    config_find_mapping(cfg, mn) == NULL)
				snprintf(list + strlen(list), sizeof(list) - strlen(list),
				    "%s%s (in the running mtlsd)", list[0] ? ", " : "", mn);
		}
		json_free(j);
	}
	return list[0] ? xstrdup(list) : NULL;
}

static char *
trash_target(const struct config *cfg, const char *name, time_t now)
{
	char stamp[32], *trash = xasprintf("%s/.trash", cfg->certs_dir), *t;
	struct stat st;

	if (mkdir(trash, 0700) < 0 && errno != EEXIST) {
		ctl_err("cannot create %s: %s", trash, strerror(errno));
		free(trash);
		return NULL;
	}
	utc_stamp(now, stamp, sizeof(stamp));
	t = xasprintf("%s/%s-%s", trash, name, stamp);
	for (int i = 2; lstat(t, &st) == 0 && i < 100; i++) {
		free(t);
		t = xasprintf("%s/%s-%s-%d", trash, name, stamp, i);
	}
	free(trash);
	return t;
}

int
ctl_key_rm(struct ctl *ctl, int argc, char **argv)
{
	int force = 0, rc;
	const struct ctl_opt opts[] = {{"force", 0, NULL, &force}, {NULL, 0, NULL, NULL}};
	const struct config *cfg;
	char **pos, *dir = NULL, *used = NULL, *target = NULL;
	size_t npos;
	struct stat st;

	if ((rc = ctl_parse(argc, argv, opts, rm_usage, 1, 1, &pos, &npos)) >= 0)
		return rc;
	if (!name_ok(pos[0]) || (cfg = ctl_config(ctl)) == NULL)
		return CTL_FAIL;
	rc = CTL_FAIL;
	dir = xasprintf("%s/%s", cfg->certs_dir, pos[0]);
	if (lstat(dir, &st) < 0 || !S_ISDIR(st.st_mode)) {
		ctl_err("no certificate directory %s", dir);
		goto done;
	}
	if ((used = users(ctl, pos[0], 0)) != NULL && !force) {
		ctl_err("refusing to remove certificate '%s': enabled mapping(s) use it: %s. "
		    "Point them at another certificate first (or use --force)", pos[0], used);
		goto done;
	}
	/* mtlsd refuses a reload while any mapping names a missing directory */
	if (used == NULL && (used = users(ctl, pos[0], 1)) != NULL && !force) {
		ctl_err("refusing to remove certificate '%s': disabled mapping(s) still name it: "
		    "%s; mtlsd's reloads fail while a mapping's certificate directory is missing. "
		    "Remove those mappings or point them elsewhere first (or use --force)",
		    pos[0], used);
		goto done;
	}
	if ((target = trash_target(cfg, pos[0], ctl->now)) == NULL)
		goto done;
	if (rename(dir, target) < 0) {
		ctl_err("cannot move %s to %s: %s", dir, target, strerror(errno));
		goto done;
	}
	printf("moved %s to %s (restore: mv %s %s)\n", dir, target, target, dir);
	if (used != NULL)
		printf("warning: still named by %s: mtlsd's reloads fail until those mappings "
		    "change or the directory is back\n", used);
	rc = CTL_OK;
done:
	free(dir);
	free(used);
	free(target);
	return rc;
}
