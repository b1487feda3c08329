/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "autoconf.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"

static const char *log_progname = "mtlsd";
/* set by the main thread, read by every worker */
static enum log_level log_level = LOG_LVL_INFO;
static int log_access_on;

static const char *const level_names[] = { "error", "warn", "info", "debug" };

void
log_init(const char *progname, enum log_level level)
{
	log_progname = progname;
	__atomic_store_n(&log_level, level, __ATOMIC_RELAXED);
}

void
log_set_level(enum log_level level)
{
	__atomic_store_n(&log_level, level, __ATOMIC_RELAXED);
}

enum log_level
log_get_level(void)
{
	return __atomic_load_n(&log_level, __ATOMIC_RELAXED);
}

int
log_level_from_name(const char *name)
{
	for (size_t i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++)
		if (strcmp(name, level_names[i]) == 0)
			return (int)i;
	return -1;
}

void
log_set_access(int enabled)
{
	__atomic_store_n(&log_access_on, enabled, __ATOMIC_RELAXED);
}

int
log_access_enabled(void)
{
	return __atomic_load_n(&log_access_on, __ATOMIC_RELAXED);
}

/* One write per line so concurrent writers never interleave inside a line. */
static void
log_emit(FILE *fp, const char *level, const char *msg, const char *suffix)
{
	char line[2048];
	struct timespec ts;
	struct tm tm;

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	snprintf(line, sizeof(line), "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %s[%s]: %s%s%s\n",
	    tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
	    tm.tm_sec, ts.tv_nsec / 1000000, log_progname, level, msg,
	    suffix ? ": " : "", suffix ? suffix : "");
	fputs(line, fp);
	fflush(fp);
}

void
log_vmsg(enum log_level level, const char *fmt, va_list ap)
{
	char msg[1536];

	if (level > log_get_level())
		return;
	vsnprintf(msg, sizeof(msg), fmt, ap);
	log_emit(stderr, level_names[level], msg, NULL);
}

#define LOG_BODY(lvl)                 \
	do {                          \
		va_list ap;           \
		va_start(ap, fmt);    \
		log_vmsg(lvl, fmt, ap); \
		va_end(ap);           \
	} while (0)

void
log_warn(const char *fmt, ...)
{
	char msg[1536];
	int saved = errno;
	va_list ap;

	if (LOG_LVL_WARN > log_get_level())
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	log_emit(stderr, "warn", msg, strerror(saved));
	errno = saved;
}

void log_warnx(const char *fmt, ...) { LOG_BODY(LOG_LVL_WARN); }
void log_info(const char *fmt, ...) { LOG_BODY(LOG_LVL_INFO); }
void log_debug(const char *fmt, ...) { LOG_BODY(LOG_LVL_DEBUG); }
void log_error(const char *fmt, ...) { LOG_BODY(LOG_LVL_ERROR); }

void
log_access(const char *fmt, ...)
{
	char msg[2048];
	va_list ap;

	if (!log_access_enabled())
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	log_emit(stdout, "access", msg, NULL);
}

void
fatal(const char *fmt, ...)
{
	char msg[1536];
	int saved = errno;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	log_emit(stderr, "fatal", msg, strerror(saved));
	exit(1);
}

void
fatalx(const char *fmt, ...)
{
	char msg[1536];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	log_emit(stderr, "fatal", msg, NULL);
	exit(1);
}
