/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Vault's material on disk. A pair is written to a temporary file, synced
 * and renamed into place, then the directory is synced: after a crash the
 * file is either the whole pair or absent.
 */
#include "autoconf.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "vault_cache.h"
#include "x509.h"

#define CACHE_FILE_MAX (1024 * 1024)

struct entry {
	char *path;
	time_t not_before, not_after, obtained;
	char serial[80];
	char signature[17];
	unsigned char fingerprint[32];
};

static int
has_pem_suffix(const char *n)
{
	size_t len = strlen(n);

	return n[0] != '.' && len > 4 && strcmp(n + len - 4, ".pem") == 0;
}

/* The leaf of one cached file: its first certificate that is not a CA. */
static int
read_entry(const char *path, struct entry *e)
{
	struct x509_bundle b = { 0 };
	const struct x509_cert *c;
	char err[160], *buf, *tag;
	size_t len = 0;
	struct stat st;
	int ok = 0;

	if (stat(path, &st) < 0 || (buf = read_file(path, CACHE_FILE_MAX, &len)) == NULL)
		return -1;
	if (x509_parse(buf, len, &b, err, sizeof(err)) == 0 &&
	    (c = x509_bundle_leaf(&b)) != NULL) {
		e->not_before = c->not_before;
		e->not_after = c->not_after;
		snprintf(e->serial, sizeof(e->serial), "%s", c->serial_hex);
		memcpy(e->fingerprint, c->fingerprint, 32);
		ok = b.n_keys > 0;
	}
	e->obtained = st.st_mtime;
	e->signature[0] = '\0';
	if ((tag = strstr(buf, VAULT_CACHE_SIG_TAG)) != NULL)
		sscanf(tag + strlen(VAULT_CACHE_SIG_TAG), "%16[0-9a-f]", e->signature);
	x509_bundle_clear(&b);
	wipe_free(buf, len);
	return ok ? 0 : -1;
}

static int
newer(const struct entry *a, const struct entry *b)
{
	return a->not_before != b->not_before ? a->not_before > b->not_before :
	                                        a->obtained > b->obtained;
}

/* Every readable pair in dir, newest first. */
static struct entry *
list_entries(const char *dir, size_t *n)
{
	struct entry *v = NULL, e;
	struct dirent *de;
	DIR *d;

	*n = 0;
	if ((d = opendir(dir)) == NULL)
		return NULL;
	while ((de = readdir(d)) != NULL) {
		if (!has_pem_suffix(de->d_name))
			continue;
		memset(&e, 0, sizeof(e));
		e.path = xasprintf("%s/%s", dir, de->d_name);
		if (read_entry(e.path, &e) < 0) {
			free(e.path);
			continue;
		}
		v = xrealloc(v, (*n + 1) * sizeof(*v));
		v[(*n)++] = e;
	}
	closedir(d);
	/* insertion sort: a handful of files */
	for (size_t i = 1; i < *n; i++)
		for (size_t j = i; j > 0 && newer(&v[j], &v[j - 1]); j--) {
			e = v[j];
			v[j] = v[j - 1];
			v[j - 1] = e;
		}
	return v;
}

static void
free_entries(struct entry *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i].path);
	free(v);
}

void
vault_cache_scan(const char *dir, struct vault_cached *out)
{
	size_t n;
	struct entry *v = list_entries(dir, &n);

	memset(out, 0, sizeof(*out));
	if (n > 0) {
		out->found = 1;
		out->not_before = v[0].not_before;
		out->not_after = v[0].not_after;
		out->obtained = v[0].obtained;
		memcpy(out->serial, v[0].serial, sizeof(out->serial));
		memcpy(out->signature, v[0].signature, sizeof(out->signature));
		memcpy(out->fingerprint, v[0].fingerprint, 32);
	}
	free_entries(v, n);
}

int
vault_cache_has(const char *dir, const unsigned char fingerprint[32])
{
	size_t n;
	struct entry *v = list_entries(dir, &n);
	int found = 0;

	for (size_t i = 0; i < n && !found; i++)
		found = memcmp(v[i].fingerprint, fingerprint, 32) == 0;
	free_entries(v, n);
	return found;
}

/* A private directory: created 0700, or tightened to it. */
static int
private_dir(const char *dir, char *err, size_t errlen)
{
	struct stat st;

	if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
		snprintf(err, errlen, "cannot create %s: %s", dir, strerror(errno));
		return -1;
	}
	if (stat(dir, &st) < 0 || !S_ISDIR(st.st_mode)) {
		snprintf(err, errlen, "%s is not a directory", dir);
		return -1;
	}
	if ((st.st_mode & 077) != 0 && chmod(dir, 0700) < 0) {
		snprintf(err, errlen, "%s has mode %04o and cannot be made 0700: %s", dir,
		    (unsigned)(st.st_mode & 07777), strerror(errno));
		return -1;
	}
	return 0;
}

static int
write_all(int fd, const char *p, size_t len)
{
	while (len > 0) {
		ssize_t w = write(fd, p, len);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		p += w;
		len -= (size_t)w;
	}
	return 0;
}

static void
sync_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd >= 0) {
		(void)fsync(fd);
		close(fd);
	}
}

int
vault_cache_write(const char *root, const char *dir, const char *file, const char *header,
    const char *pem, size_t len, char *err, size_t errlen)
{
	char *tmp, *path;
	int fd, rc = -1;

	if (private_dir(root, err, errlen) < 0 || private_dir(dir, err, errlen) < 0)
		return -1;
	tmp = xasprintf("%s/.tmp.XXXXXX", dir);
	path = xasprintf("%s/%s", dir, file);
	if ((fd = mkstemp(tmp)) < 0) {     /* mkstemp makes it 0600 */
		snprintf(err, errlen, "cannot write in %s: %s", dir, strerror(errno));
		goto out;
	}
	if (write_all(fd, header, strlen(header)) < 0 || write_all(fd, pem, len) < 0 ||
	    fsync(fd) < 0) {
		snprintf(err, errlen, "cannot write %s: %s", tmp, strerror(errno));
		close(fd);
		unlink(tmp);
		goto out;
	}
	close(fd);
	if (rename(tmp, path) < 0) {
		snprintf(err, errlen, "cannot rename into %s: %s", path, strerror(errno));
		unlink(tmp);
		goto out;
	}
	sync_dir(dir);
	rc = 0;
out:
	free(tmp);
	free(path);
	return rc;
}

void
vault_cache_prune(const char *dir, time_t now, size_t keep)
{
	size_t n;
	struct entry *v = list_entries(dir, &n);

	for (size_t i = 1; i < n; i++) {
		if (i < keep && v[i].not_after > now)
			continue;
		if (unlink(v[i].path) == 0)
			log_info("vault: removed %s (%s)", v[i].path,
			    v[i].not_after <= now ? "expired" : "superseded");
	}
	free_entries(v, n);
}
