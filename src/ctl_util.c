/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "autoconf.h"

#include <errno.h>
#include <event2/buffer.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "certstore.h"
#include "config.h"
#include "ctl_util.h"
#include "json.h"
#include "log.h"
#include "util.h"

#define SECRET_MAX 4096
#define CTL_MAX_OPTS 16

void
ctl_err(const char *fmt, ...)
{
	va_list ap;

	fputs("mtlsctl: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

const struct config *
ctl_config(struct ctl *ctl)
{
	struct config_errors errs = {0}, isolated = {0};

	if (ctl->cfg != NULL || ctl->cfg_failed)
		return ctl->cfg;
	ctl->cfg = config_reload(ctl->config_path, NULL, &errs, &isolated);
	if (ctl->cfg == NULL) {
		ctl->cfg_failed = 1;
		for (size_t i = 0; i < errs.n; i++)
			fprintf(stderr, "%s\n", errs.msgs[i]);
		ctl_err("configuration %s has errors (mtlsd -t shows them too)",
		    ctl->config_path);
	}
	/* a broken mapping file is left out, as a reload would */
	for (size_t i = 0; i < isolated.n; i++)
		fprintf(stderr, "warning: %s\n", isolated.msgs[i]);
	config_errors_clear(&errs);
	config_errors_clear(&isolated);
	return ctl->cfg;
}

void
ctl_free(struct ctl *ctl)
{
	config_free(ctl->cfg);
	ctl->cfg = NULL;
}

struct certset *
ctl_load_set(struct ctl *ctl, const char *name)
{
	const struct config *cfg = ctl_config(ctl);
	struct config_errors errs = {0};
	struct certset *set;
	char *cache;

	if (cfg == NULL)
		return NULL;
	cache = xasprintf("%s/vault", cfg->state_dir);
	set = certset_load(cfg->certs_dir, cache, name, ctl->now, &errs);
	free(cache);
	for (size_t i = 0; i < errs.n; i++)
		ctl_err("%s", errs.msgs[i]);
	config_errors_clear(&errs);
	return set;
}

const struct cert_material *
ctl_set_current(struct ctl *ctl, const struct certset *set)
{
	struct rotation_conf rot;

	certset_rotation(set, &ctl->cfg->rotation, &rot);
	return certset_choose(set, &rot, ctl->now, NULL);
}

int
ctl_pair_pending(const struct cert_material *p, const struct cert_material *cur, time_t now)
{
	if (cur != NULL && memcmp(p->fingerprint_sha256, cur->fingerprint_sha256, 32) == 0)
		return 0;
	if (p->not_before > now)
		return 1;
	return cur != NULL && p->not_before > cur->not_before;
}

static void
usage_error(const char *usage, const char *msg, const char *arg)
{
	fprintf(stderr, "mtlsctl: %s%s%s\n%s", arg ? arg : "", arg ? ": " : "", msg, usage);
}

int
ctl_parse(int argc, char **argv, const struct ctl_opt *opts, const char *usage,
    size_t min_pos, size_t max_pos, char ***pos, size_t *n_pos)
{
	struct option lo[CTL_MAX_OPTS + 2];
	size_t n = 0;
	int ch, idx;

	for (; opts != NULL && opts[n].name != NULL; n++) {
		if (n == CTL_MAX_OPTS)
			fatalx("too many options");
		lo[n] = (struct option){opts[n].name, opts[n].has_arg ? required_argument :
		    no_argument, NULL, 0x100 + (int)n};
	}
	lo[n] = (struct option){"help", no_argument, NULL, 'h'};
	lo[n + 1] = (struct option){NULL, 0, NULL, 0};
	/* GNU getopt: optind 0 starts over on a fresh argv, and permuting lets
	 * options follow the arguments ("check-p12 FILE --json") */
	optind = 0;
	opterr = 0;
	while ((ch = getopt_long(argc, argv, "h", lo, &idx)) != -1) {
		if (ch == 'h') {
			fputs(usage, stdout);
			return CTL_OK;
		}
		if (ch == '?' || ch == ':') {
			usage_error(usage, "unknown option or missing argument",
			    argv[optind - 1]);
			return CTL_USAGE;
		}
		if (opts[ch - 0x100].has_arg)
			*opts[ch - 0x100].str = optarg;
		else
			*opts[ch - 0x100].flag = 1;
	}
	*pos = argv + optind;
	*n_pos = (size_t)(argc - optind);
	if (*n_pos < min_pos || *n_pos > max_pos) {
		usage_error(usage, *n_pos < min_pos ? "missing argument" : "too many arguments",
		    NULL);
		return CTL_USAGE;
	}
	return -1;
}

char *
ctl_read_secret(const char *path)
{
	char *buf;
	size_t len = 0;

	if (strcmp(path, "-") == 0) {
		buf = xcalloc(1, SECRET_MAX + 1);
		len = fread(buf, 1, SECRET_MAX, stdin);
		buf[len] = '\0';
	} else if ((buf = read_file(path, SECRET_MAX, &len)) == NULL) {
		ctl_err("cannot read password file %s: %s", path,
		    errno == EFBIG ? "too large" : strerror(errno));
		return NULL;
	}
	while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == '\r'))
		buf[--len] = '\0';
	if (strlen(buf) != len) {
		ctl_err("password file %s holds a NUL byte", path);
		wipe_free(buf, len);
		return NULL;
	}
	return buf;
}

void
ctl_secret_free(char *s)
{
	if (s != NULL)
		wipe_free(s, strlen(s));
}

long long
ctl_days_left(time_t t, time_t now)
{
	long long s = (long long)t - (long long)now;

	return s >= 0 ? s / 86400 : -((-s + 86399) / 86400);
}

time_t
ctl_parse_time(const char *s)
{
	struct tm tm;
	const char *end;

	if (s == NULL)
		return -1;
	memset(&tm, 0, sizeof(tm));
	end = strptime(s, "%Y-%m-%dT%H:%M:%SZ", &tm);
	if (end == NULL || *end != '\0')
		return -1;
	return timegm(&tm);
}

/* --- JSON --------------------------------------------------------------- */

void
ctl_json_init(struct json_writer *j)
{
	memset(j, 0, sizeof(*j));
	if ((j->b = evbuffer_new()) == NULL)
		fatalx("out of memory");
}

void
ctl_json_print(struct json_writer *j)
{
	size_t n = evbuffer_get_length(j->b);

	fwrite(evbuffer_pullup(j->b, -1), 1, n, stdout);
	fputc('\n', stdout);
	evbuffer_free(j->b);
	j->b = NULL;
}

