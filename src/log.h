/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Logging vocabulary (after OpenBSD httpd's log.c): one line per event. */
#ifndef MTLSD_LOG_H
#define MTLSD_LOG_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* the longest line, newline included (longer messages are cut) */
#define LOG_LINE_MAX 2048

enum log_level { LOG_LVL_ERROR = 0, LOG_LVL_WARN, LOG_LVL_INFO, LOG_LVL_DEBUG };

#define LOG_PRINTF(a, b) __attribute__((format(printf, a, b)))

/* progname prefixes every line; level filters; lines go to stderr. */
void log_init(const char *progname, enum log_level level);
void log_set_level(enum log_level level);
enum log_level log_get_level(void);
/* Parse "error|warn|info|debug"; -1 when unknown. */
int log_level_from_name(const char *name);
/* Access log to stdout (one line per request); off by default. Lines are
 * buffered per thread: a loop flushes before it sleeps (log_access_flush)
 * and calls log_access_tick(now_us()) while it polls. */
void log_set_access(int enabled);
int log_access_enabled(void);
void log_access_flush(void);
void log_access_tick(uint64_t now_us);
/* log.format: json makes every line one JSON object (log.c). */
void log_set_json(int on);

/* A field of an access line: key=value in text ("-" for a NULL string),
 * "key":value in JSON (null for a NULL string, a number when is_num). */
struct log_field {
	const char *key;
	const char *str;
	unsigned long long num;
	int is_num;
};
#define LOG_STR(k, v) { .key = (k), .str = (v) }
#define LOG_NUM(k, v) { .key = (k), .num = (unsigned long long)(v), .is_num = 1 }

void log_warn(const char *fmt, ...) LOG_PRINTF(1, 2);  /* adds strerror(errno) */
void log_warnx(const char *fmt, ...) LOG_PRINTF(1, 2);
void log_info(const char *fmt, ...) LOG_PRINTF(1, 2);
void log_debug(const char *fmt, ...) LOG_PRINTF(1, 2);
void log_error(const char *fmt, ...) LOG_PRINTF(1, 2);
void log_access(const struct log_field *f, size_t n);
void log_vmsg(enum log_level level, const char *fmt, va_list ap) LOG_PRINTF(2, 0);
__attribute__((noreturn)) void fatal(const char *fmt, ...) LOG_PRINTF(1, 2);
__attribute__((noreturn)) void fatalx(const char *fmt, ...) LOG_PRINTF(1, 2);

#endif
