/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * YAML configuration (main file plus every mappings_dir YAML file) parsed through one
 * table of keys into an immutable struct config. Every error is reported as
 * "file:line:col: message" (lines and columns 1-based, from libyaml marks).
 */
#ifndef MTLSD_CONFIG_H
#define MTLSD_CONFIG_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/types.h>

#include "util.h"

#ifndef SYSCONFDIR
#define SYSCONFDIR "/etc"
#endif
#define CONFIG_DEFAULT_PATH SYSCONFDIR "/mtlsd/mtlsd.yaml"

/* Where a value came from, for messages. file points to a string owned by
 * the struct config (config->files[]). */
struct config_pos {
	const char *file;
	int line, col;
};

/* A listener: "127.0.0.1:3128", "[::1]:3128", "unix:/run/x.sock", or a map
 * {address, allow_remote, mode, group, allowed_uids}. Port 0 = kernel picks. */
struct listen_spec {
	char *address;                  /* as written */
	struct sockaddr_storage ss;     /* resolved (numeric only, no DNS) */
	socklen_t sslen;
	int is_unix;
	char *unix_path;                /* is_unix only */
	int allow_remote;
	int has_mode;
	unsigned mode;                  /* unix only, e.g. 0660 */
	char *group;                    /* unix only, NULL if unset */
	uid_t *allowed_uids;            /* unix only; NULL/0 = anyone who can connect */
	size_t n_allowed_uids;
	struct config_pos pos;
};

enum rotation_activate { ACTIVATE_IMMEDIATELY = 0, ACTIVATE_BEFORE_EXPIRY };

struct rotation_conf {
	enum rotation_activate activate;
	uint64_t activate_before_expiry_ms;     /* default 72h */
	uint64_t warn_before_ms;                /* default 336h */
};

struct mapping {
	char *name;
	char *url;                      /* as written */
	char *host;                     /* lower-case, no trailing dot, no brackets */
	uint16_t port;                  /* default 443 */
	char *path_prefix;              /* starts with '/', default "/" */
	struct listen_spec *listen;     /* dedicated port, NULL if none */
	char *certificate;              /* name in certs_dir */
	char *trust_ca_file;            /* absolute path, NULL = system bundle */
	uint8_t (*pins)[32];            /* SHA-256 of SPKI, from base64 or hex */
	size_t n_pins;
	char *server_name;              /* SNI and name check; default = host */
	int validate;                   /* default 1 */
	int enabled;                    /* default 1 */
	int has_rate_limit;
	double rate_per_sec;            /* "10/s", "600/m", "36000/h" */
	unsigned rate_burst;            /* = ceil(rate per second), at least 1 */
	struct config_pos pos;          /* of the "- name:" item */
};

struct config {
	char *path;                     /* main file as given */
	char *dir;                      /* its directory: base for relative paths */
	char **files;                   /* every file read (owns config_pos.file) */
	char **texts;                   /* mapping files: the text read (else NULL) */
	size_t n_files;

	struct listen_spec *proxy_listen;
	size_t n_proxy_listen;
	struct listen_spec *admin_listen; /* NULL when admin is not configured */
	char *mappings_dir;             /* absolute; default <dir>/mappings.d */
	char *certs_dir;                /* absolute; default <dir>/certs.d */
	char *state_dir;                /* default /var/lib/mtlsd */
	struct rotation_conf rotation;
	struct {
		uint64_t connect_ms, handshake_ms, client_header_ms,
		    upstream_response_ms, idle_ms;
	} timeouts;                     /* 5s 5s 10s 30s 60s */
	struct {
		unsigned max_connections;       /* 10000 */
		unsigned max_header_bytes;      /* 32768 */
	} limits;
	struct {
		unsigned max_idle_per_destination;      /* 64 */
		uint64_t idle_timeout_ms;               /* 90s */
		uint64_t surplus_timeout_ms;            /* 5s: beyond max_idle */
	} pool;
	struct {
		int configured;
		char *address, *ca_file, *namespace;
		char *token_file, *role_id_file, *secret_id_file;
		char *approle_mount;            /* default "approle" */
	} vault;
	struct {
		int level;                      /* enum log_level, default info */
		int json;                       /* format: text|json */
		int access_log;                 /* default 1 */
	} log;
	unsigned workers;                       /* default 1 */
	uint64_t busy_poll_us;                  /* default 50us; 0 = off */

	struct mapping *mappings;
	size_t n_mappings;
};

/* Error list: each entry one line "file:line:col: message" (or "file: message"). */
struct config_errors {
	char **msgs;
	size_t n;
};

/* Parse the main file and every *.yaml in mappings_dir (sorted by name).
 * Returns a config, or NULL with at least one message in errs. */
struct config *config_load(const char *path, struct config_errors *errs) MUSTCHECK;
/*
 * A reload: as config_load, but a mapping file with errors does not fail
 * it. Its errors go to isolated (with a line saying so) and its mappings
 * come from the text prev read from that file, or are left out when prev
 * had none. Errors in the main file, or between files (duplicate names,
 * listeners), still fail the whole load.
 */
struct config *config_reload(const char *path, const struct config *prev,
    struct config_errors *errs, struct config_errors *isolated) MUSTCHECK;
void config_free(struct config *cfg);
void config_errors_add(struct config_errors *errs, const struct config_pos *pos,
    const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void config_errors_clear(struct config_errors *errs);

/* Parse one listener string into spec (address, ss/sslen or unix_path).
 * Returns 0, or -1 with a reason in err. Used by config and tests. */
int listen_spec_parse(const char *s, struct listen_spec *spec, char *err, size_t errlen);
int listen_spec_is_loopback(const struct listen_spec *spec);
void listen_spec_clear(struct listen_spec *spec);

const struct mapping *config_find_mapping(const struct config *cfg, const char *name);

/* Print every key's effective value, one "path: value" line each, walking
 * the same key table as the parser (for mtlsd -t -v and debugging). */
void config_dump(const struct config *cfg, FILE *fp);
/* The path of the first key that differs between old and next and cannot be
 * applied by a reload (workers), or NULL when next can be applied by SIGHUP. */
const char *config_restart_needed(const struct config *old, const struct config *next);

#endif
