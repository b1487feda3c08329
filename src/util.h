/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Small helpers shared by every module: allocation, strings, time. */
#ifndef MTLSD_UTIL_H
#define MTLSD_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define MUSTCHECK __attribute__((warn_unused_result))
#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* Allocation that cannot fail: out of memory is fatal (after nginx/redis). */
void *xmalloc(size_t n);
void *xcalloc(size_t n, size_t size);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* snprintf(dst, size, "%s", src), without printf's cost. */
void str_copy(char *dst, size_t size, const char *src);
/* "a.b.c.d:port" of an IPv4 address (network order, 4 bytes), as inet_ntop
 * and snprintf would write it (accepting connections does it every time). */
void format_ipv4_port(const void *addr, unsigned port, char *buf, size_t len);
/* Keep freed memory at the top of the heap instead of trimming it after
 * every large request (call once at start-up). */
void malloc_tune(void);

/* "250ms", "5s", "10m", "72h", "7d", combinations "1h30m", or a bare "0";
 * 0 ok, -1 bad. */
int duration_parse(const char *s, uint64_t *ms) MUSTCHECK;
/* The same in microseconds, which also takes "us" ("50us", "1ms"). */
int duration_parse_us(const char *s, uint64_t *us) MUSTCHECK;
/* Format milliseconds as the shortest exact duration string ("90s", "72h"). */
void duration_format(uint64_t ms, char *buf, size_t len);
/* The same for microseconds ("50us", "1ms"). */
void duration_format_us(uint64_t us, char *buf, size_t len);

/* Monotonic milliseconds, for timers and rate limits. */
uint64_t now_ms(void);
/* Monotonic microseconds, for the busy-polling window. */
uint64_t now_us(void);

/* Read a whole file (at most max bytes); NULL + errno on failure. */
char *read_file(const char *path, size_t max, size_t *len);

/* Wipe secrets before free (explicit_bzero survives optimisation). */
void wipe_free(void *p, size_t n);

/* Case-insensitive ASCII comparisons that do not depend on locale. */
int ascii_casecmp(const char *a, const char *b);
int ascii_ncasecmp(const char *a, const char *b, size_t n);
void ascii_lower(char *s);

#endif
