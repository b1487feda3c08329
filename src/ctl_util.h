/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * What every mtlsctl command shares: the invocation context (configuration
 * file, admin address), loading the configuration once, subcommand option
 * parsing, exit codes, and a small JSON writer for --json output.
 */
#ifndef MTLSD_CTL_UTIL_H
#define MTLSD_CTL_UTIL_H

#include <stddef.h>
#include <time.h>

#include "json.h"
#include "util.h"

/* Exit codes of every command (mtlsctl(8), EXIT STATUS). */
#define CTL_OK          0       /* done; the verdict is good */
#define CTL_FAIL        1       /* failed, or the verdict is bad */
#define CTL_USAGE       2       /* wrong options or arguments */

struct config;
struct evbuffer;

struct ctl {
	const char *config_path;        /* -c, default CONFIG_DEFAULT_PATH */
	const char *admin;              /* --admin or $MTLSCTL_ADMIN, else admin.listen */
	struct config *cfg;             /* loaded on first use */
	int cfg_failed;
	time_t now;
};

/* The configuration (loaded once; broken mapping files are left out with a
 * warning, as a reload would). NULL after printing why. */
const struct config *ctl_config(struct ctl *ctl);
void ctl_free(struct ctl *ctl);

struct certset;
struct cert_material;

/* certs_dir/NAME as mtlsd would load it now (Vault's cache included).
 * NULL after printing why. */
struct certset *ctl_load_set(struct ctl *ctl, const char *name);
/* The pair mtlsd would present from set now, by its rotation policy. */
const struct cert_material *ctl_set_current(struct ctl *ctl, const struct certset *set);
/* Pending, as /status says: not cur, and not valid yet or newer than cur. */
int ctl_pair_pending(const struct cert_material *p, const struct cert_material *cur, time_t now);

/* A subcommand's option table: name, whether it takes an argument, and
 * where it goes (a const char * or an int flag). */
struct ctl_opt {
	const char *name;
	int has_arg;
	const char **str;
	int *flag;
};

/*
 * Parse argv (argv[0] is the subcommand) against opts; --help prints usage
 * (a complete text, ending in a newline) to stdout. Positional arguments are
 * left in *pos / *n_pos (between min_pos and max_pos of them). Returns -1
 * to go on, or the exit code to return now (CTL_OK after --help,
 * CTL_USAGE after an error, printed with the usage to stderr).
 */
int ctl_parse(int argc, char **argv, const struct ctl_opt *opts, const char *usage,
    size_t min_pos, size_t max_pos, char ***pos, size_t *n_pos);

/* "mtlsctl: " + message on stderr. */
void ctl_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* A secret from a file (trailing newlines stripped), or stdin for "-".
 * NULL after printing why. Wipe with ctl_secret_free. */
char *ctl_read_secret(const char *path);
void ctl_secret_free(char *s);
/* Whole days until t, rounded down (negative once past), as /status does. */
long long ctl_days_left(time_t t, time_t now);
/* "2025-01-01T00:00:00Z" -> time_t; -1 when malformed. */
time_t ctl_parse_time(const char *s);

/* --- JSON output (json.h's writer, to stdout) --------------------------- */

void ctl_json_init(struct json_writer *j);
/* Write the document and a newline to stdout; frees the buffer. */
void ctl_json_print(struct json_writer *j);

#endif
