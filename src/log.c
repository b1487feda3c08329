/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "autoconf.h"

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "json.h"
#include "log.h"
#include "util.h"

static const char *log_progname = "mtlsd";
/* set by the main thread, read by every worker */
static enum log_level log_level = LOG_LVL_INFO;
static int log_access_on;
static int log_json;

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

void
log_set_json(int on)
{
	__atomic_store_n(&log_json, on, __ATOMIC_RELAXED);
}

/*
 * The start of a line into buf (len bytes); its length. Text:
 * "2026-11-24T05:20:01.123Z mtlsd[info]: ", the message follows. JSON:
 * {"time":"2026-11-24T05:20:01.123Z","program":"mtlsd","level":"info"
 * and the fields follow, each with its comma first.
 */
static size_t
log_start(char *buf, size_t len, const char *level, int json)
{
	struct timespec ts;
	struct tm tm;
	int n;

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	n = snprintf(buf, len,
	    json ? "{\"time\":\"%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ\",\"program\":\"%s\","
		   "\"level\":\"%s\""
		 : "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %s[%s]: ",
	    tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
	    ts.tv_nsec / 1000000, log_progname, level);
	return n < 0 ? 0 : (size_t)n < len ? (size_t)n : len - 1;
}

/* A JSON field ,"key":value at buf + *n, if it fits with room for the
 * closing "}\n" after it: value as a string (null for NULL; one too long is
 * cut), or as it is when raw (a number). */
static void
json_field(char *buf, size_t len, size_t *n, const char *key, const char *value, int raw)
{
	size_t k = strlen(key) + 4, room, v;

	if (*n + k + 5 + 3 > len)
		return;
	snprintf(buf + *n, len - *n, ",\"%s\":", key);
	room = len - *n - k - 3;
	if (!raw)
		v = json_escape(buf + *n + k, room, value);
	else
		v = strlen(value) < room ? (size_t)snprintf(buf + *n + k, room, "%s", value) : 0;
	if (v > 0)
		*n += k + v;
	buf[*n] = '\0';
}

/* The end of a line (cut to fit len): '\n', after '}' for JSON; length. */
static size_t
log_end(char *buf, size_t len, size_t n, int json)
{
	if (n > len - 2 - (size_t)json)
		n = len - 2 - (size_t)json;
	if (json)
		buf[n++] = '}';
	buf[n++] = '\n';
	buf[n] = '\0';
	return n;
}

/* One write per line so concurrent writers never interleave inside a line. */
static void
log_emit(FILE *fp, const char *level, const char *msg, const char *suffix)
{
	char line[LOG_LINE_MAX];
	int json = __atomic_load_n(&log_json, __ATOMIC_RELAXED);
	size_t n = log_start(line, sizeof(line), level, json);

	if (json) {
		json_field(line, sizeof(line), &n, "msg", msg, 0);
		if (suffix != NULL)
			json_field(line, sizeof(line), &n, "error", suffix, 0);
	} else {
		int m = snprintf(line + n, sizeof(line) - n, "%s%s%s", msg, suffix ? ": " : "",
		    suffix ? suffix : "");
		n += m < 0 ? 0 : (size_t)m;
	}
	log_end(line, sizeof(line), n, json);
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

/*
 * Access lines are gathered per thread and written to standard output with
 * one write(2) when the thread's loop is about to sleep (loop.c), when the
 * buffer cannot take another line, or once the oldest line has waited
 * ACCESS_FLUSH_US: a write and an fflush per line cost a quarter of the
 * CPU of a small keep-alive request. As nginx's "access_log ... buffer=",
 * but never holding a line while the process is idle.
 */
#define ACCESS_BUF_SIZE 16384
#define ACCESS_FLUSH_US 100000

static __thread struct {
	size_t len;
	uint64_t first_us;      /* when the oldest line was added */
	char data[ACCESS_BUF_SIZE];
} access_buf;
/* whole buffers, so that two threads' lines never interleave in a pipe */
static pthread_mutex_t access_lock = PTHREAD_MUTEX_INITIALIZER;

void
log_access_flush(void)
{
	size_t off = 0;

	if (access_buf.len == 0)
		return;
	pthread_mutex_lock(&access_lock);
	while (off < access_buf.len) {
		ssize_t n = write(STDOUT_FILENO, access_buf.data + off, access_buf.len - off);
		if (n > 0)
			off += (size_t)n;
		else if (n < 0 && errno == EINTR)
			continue;
		else
			break; /* nowhere to write: the lines are lost, not the process */
	}
	pthread_mutex_unlock(&access_lock);
	access_buf.len = 0;
}

void
log_access_tick(uint64_t now)
{
	if (access_buf.len > 0 && now - access_buf.first_us >= ACCESS_FLUSH_US)
		log_access_flush();
}

/* Add a whole line to this thread's buffer. */
static void
access_add(const char *line, size_t len)
{
	if (ACCESS_BUF_SIZE - access_buf.len < len)
		log_access_flush();
	if (access_buf.len == 0)
		access_buf.first_us = now_us();
	memcpy(access_buf.data + access_buf.len, line, len);
	access_buf.len += len;
}

void
log_access(const struct log_field *f, size_t nf)
{
	char line[LOG_LINE_MAX];
	int json = __atomic_load_n(&log_json, __ATOMIC_RELAXED);
	size_t n;

	if (!log_access_enabled())
		return;
	n = log_start(line, sizeof(line), "access", json);
	for (size_t i = 0; i < nf; i++) {
		char num[24];
		const char *v = f[i].str;

		if (f[i].is_num) {
			snprintf(num, sizeof(num), "%llu", f[i].num);
			v = num;
		}
		if (json) {
			json_field(line, sizeof(line), &n, f[i].key, v, f[i].is_num);
		} else {
			int m = snprintf(line + n, sizeof(line) - n, "%s%s=%s", i > 0 ? " " : "",
			    f[i].key, v != NULL ? v : "-");
			n += m < 0 ? 0 : (size_t)m;
			if (n >= sizeof(line))
				break;
		}
	}
	access_add(line, log_end(line, sizeof(line), n, json));
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
	log_access_flush();
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
	log_access_flush();
	exit(1);
}
