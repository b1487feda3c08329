/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * libFuzzer target for config.c (and router.c on what it accepts): each
 * input is loaded twice,
 *   1. as the main file (DIR/main/mtlsd.yaml, next to an empty mappings.d),
 *   2. as a mappings_dir file (DIR/map/mappings.d/fuzz.yaml) under a fixed,
 *      valid main file,
 * and its first line is also parsed as a listener string.
 *
 * Properties checked (abort on violation):
 *  - no memory error, leak or undefined behaviour;
 *  - a failed load returns NULL with at least one error, every error one
 *    line; a successful load adds no error;
 *  - config_dump() runs and config_restart_needed(cfg, cfg) is NULL;
 *  - every enabled mapping reachable through the proxy port routes its own
 *    URL (host, port, prefix) to a mapping, and upper-casing the host or
 *    adding a trailing dot changes nothing.
 * The files live in a temp dir made once per process (removed at exit); a
 * relative trust.ca_file "trust/ca.pem" exists in both directories.
 */
#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "log.h"
#include "router.h"

static char dir[64];
static char main_path[128], map_main_path[128], map_file_path[160];
static FILE *devnull;

static void
write_file(const char *path, const void *data, size_t len)
{
	FILE *fp = fopen(path, "w");

	if (fp == NULL || (len > 0 && fwrite(data, 1, len, fp) != len) || fclose(fp) != 0) {
		perror(path);
		abort();
	}
}

static void
cleanup(void)
{
	char cmd[128];

	if (dir[0] == '\0')
		return;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", dir);
}

static void
setup(void)
{
	static const char map_main[] = "proxy:\n  listen: [\"127.0.0.1:0\"]\n"
	                               "mappings_dir: mappings.d\ncerts_dir: certs.d\n";
	static const char ca[] = "-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n";
	const char *tmp = getenv("TMPDIR");
	char p[192];

	snprintf(dir, sizeof(dir), "%s/mtlsd-fuzzcfg.XXXXXX", tmp ? tmp : "/tmp");
	if (mkdtemp(dir) == NULL)
		abort();
	atexit(cleanup);
	snprintf(main_path, sizeof(main_path), "%s/main/mtlsd.yaml", dir);
	snprintf(map_main_path, sizeof(map_main_path), "%s/map/mtlsd.yaml", dir);
	snprintf(map_file_path, sizeof(map_file_path), "%s/map/mappings.d/fuzz.yaml", dir);
	for (int i = 0; i < 2; i++) {
		const char *sub = i ? "map" : "main";

		snprintf(p, sizeof(p), "%s/%s", dir, sub);
		mkdir(p, 0700);
		snprintf(p, sizeof(p), "%s/%s/mappings.d", dir, sub);
		mkdir(p, 0700);
		snprintf(p, sizeof(p), "%s/%s/trust", dir, sub);
		mkdir(p, 0700);
		snprintf(p, sizeof(p), "%s/%s/trust/ca.pem", dir, sub);
		write_file(p, ca, sizeof(ca) - 1);
	}
	write_file(map_main_path, map_main, sizeof(map_main) - 1);
	if ((devnull = fopen("/dev/null", "w")) == NULL)
		abort();
	log_init("fuzz", LOG_LVL_ERROR);
}

static void
check_route(const struct router *r, const struct mapping *m)
{
	char host[300];
	const struct mapping *got;
	const char *why = NULL;
	size_t n;

	got = router_match(r, m->host, m->port, m->path_prefix, &why);
	if (got == NULL) {
		fprintf(stderr, "mapping %s (%s:%u%s) does not route to itself: %s\n", m->name,
		    m->host, m->port, m->path_prefix, why ? why : "?");
		abort();
	}
	/* case and one trailing dot do not matter */
	n = strlen(m->host);
	if (n == 0 || n + 2 > sizeof(host) || m->host[n - 1] == '.')
		return;
	for (size_t i = 0; i <= n; i++)
		host[i] = (char)toupper((unsigned char)m->host[i]);
	memcpy(host + n, ".", 2);
	if (router_match(r, host, m->port, m->path_prefix, NULL) != got) {
		fprintf(stderr, "mapping %s: host %s routes differently\n", m->name, host);
		abort();
	}
}

static void
check_config(const struct config *cfg, const char *probe)
{
	struct router *r;
	char buf[256];

	config_dump(cfg, devnull);
	if (config_restart_needed(cfg, cfg) != NULL)
		abort();
	r = router_new(cfg);
	for (size_t i = 0; i < cfg->n_mappings; i++) {
		const struct mapping *m = &cfg->mappings[i];

		if (m->enabled && (m->listen == NULL || !m->listen->is_unix))
			check_route(r, m);
	}
	/* a request made of the input's bytes */
	(void)router_match_reason(r, probe, 0, probe, buf, sizeof(buf));
	if (strchr(buf, '\n') != NULL)
		abort();
	router_free(r);
}

static void
load(const char *path, const char *probe)
{
	struct config_errors errs = {NULL, 0};
	struct config *cfg = config_load(path, &errs);

	if ((cfg == NULL) != (errs.n > 0)) {
		fprintf(
		    stderr, "config_load: %s with %zu errors\n", cfg ? "config" : "NULL", errs.n);
		abort();
	}
	for (size_t i = 0; i < errs.n; i++)
		if (strchr(errs.msgs[i], '\n') != NULL || strchr(errs.msgs[i], '\r') != NULL)
			abort();
	config_errors_clear(&errs);
	if (cfg != NULL) {
		check_config(cfg, probe);
		config_free(cfg);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct listen_spec ls;
	char line[256], err[256];
	size_t n;

	if (dir[0] == '\0')
		setup();
	/* the first line, as a probe for the router and as a listener */
	for (n = 0; n < size && n < sizeof(line) - 1 && data[n] != '\n' && data[n] != '\0'; n++)
		line[n] = (char)data[n];
	line[n] = '\0';
	memset(&ls, 0, sizeof(ls));
	if (listen_spec_parse(line, &ls, err, sizeof(err)) == 0)
		(void)listen_spec_is_loopback(&ls);
	listen_spec_clear(&ls);

	write_file(main_path, data, size);
	load(main_path, line);
	write_file(map_file_path, data, size);
	load(map_main_path, line);
	return 0;
}
