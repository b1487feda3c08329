/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "autoconf.h"

#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "util.h"

void *
xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);

	if (p == NULL)
		fatal("malloc");
	return p;
}

void *
xcalloc(size_t n, size_t size)
{
	void *p = calloc(n ? n : 1, size ? size : 1);

	if (p == NULL)
		fatal("calloc");
	return p;
}

void *
xrealloc(void *p, size_t n)
{
	void *q = realloc(p, n ? n : 1);

	if (q == NULL)
		fatal("realloc");
	return q;
}

char *
xstrdup(const char *s)
{
	char *p = strdup(s);

	if (p == NULL)
		fatal("strdup");
	return p;
}

char *
xstrndup(const char *s, size_t n)
{
	char *p = strndup(s, n);

	if (p == NULL)
		fatal("strndup");
	return p;
}

char *
xasprintf(const char *fmt, ...)
{
	va_list ap;
	char *p;

	va_start(ap, fmt);
	if (vasprintf(&p, fmt, ap) < 0)
		fatal("vasprintf");
	va_end(ap);
	return p;
}

void
str_copy(char *dst, size_t size, const char *src)
{
	size_t n = strlen(src);

	if (size == 0)
		return;
	if (n >= size)
		n = size - 1;
	memcpy(dst, src, n);
	dst[n] = '\0';
}

/* Decimal digits of v at p; returns the end. */
static char *
put_uint(char *p, unsigned v)
{
	char d[10];
	size_t i = 0;

	do {
		d[i++] = (char)('0' + v % 10);
		v /= 10;
	} while (v > 0);
	while (i > 0)
		*p++ = d[--i];
	return p;
}

void
format_ipv4_port(const void *addr, unsigned port, char *buf, size_t len)
{
	const unsigned char *a = addr;
	char tmp[sizeof("255.255.255.255:65535")], *p = tmp;

	for (int i = 0; i < 4; i++) {
		p = put_uint(p, a[i]);
		*p++ = i < 3 ? '.' : ':';
	}
	p = put_uint(p, port);
	*p = '\0';
	str_copy(buf, len, tmp);
}

void
malloc_tune(void)
{
	/*
	 * glibc returns the free memory above the top of the heap (brk) once
	 * 128 KiB are free there, and takes it back for the next large
	 * response or upload: a system call, TLB flushes and page faults per
	 * request. Keep up to 8 MiB and grow by 1 MiB (untouched pages cost
	 * no RSS).
	 */
	(void)mallopt(M_TRIM_THRESHOLD, 8 << 20);
	(void)mallopt(M_TOP_PAD, 1 << 20);
}

static int
duration_unit(const char **s, int micro, uint64_t *mult)
{
	/* in microseconds; a millisecond duration takes no "us" */
	static const struct { const char *name; uint64_t us; } units[] = {
		{ "us", 1 }, { "ms", 1000 }, { "s", 1000000 }, { "m", 60000000 },
		{ "h", 3600000000 }, { "d", 86400000000 },
	};

	for (size_t i = 0; i < ARRAY_LEN(units); i++) {
		size_t n = strlen(units[i].name);
		if (strncmp(*s, units[i].name, n) == 0) {
			*s += n;
			*mult = micro ? units[i].us : units[i].us / 1000;
			return *mult != 0 ? 0 : -1;
		}
	}
	return -1;
}

static int
duration_parse_unit(const char *s, int micro, uint64_t *out)
{
	uint64_t total = 0;

	if (s == NULL || *s == '\0')
		return -1;
	if (strcmp(s, "0") == 0) {	/* zero needs no unit */
		*out = 0;
		return 0;
	}
	while (*s) {
		uint64_t v = 0, mult;
		if (*s < '0' || *s > '9')
			return -1;
		while (*s >= '0' && *s <= '9') {
			if (v > (UINT64_MAX - 9) / 10)
				return -1;
			v = v * 10 + (uint64_t)(*s++ - '0');
		}
		if (duration_unit(&s, micro, &mult) < 0)
			return -1;
		if (v > UINT64_MAX / mult || total > UINT64_MAX - v * mult)
			return -1;
		total += v * mult;
	}
	*out = total;
	return 0;
}

int
duration_parse(const char *s, uint64_t *ms)
{
	return duration_parse_unit(s, 0, ms);
}

int
duration_parse_us(const char *s, uint64_t *us)
{
	return duration_parse_unit(s, 1, us);
}

void
duration_format(uint64_t ms, char *buf, size_t len)
{
	if (ms == 0)
		snprintf(buf, len, "0s");
	else if (ms % 86400000 == 0)
		snprintf(buf, len, "%llud", (unsigned long long)(ms / 86400000));
	else if (ms % 3600000 == 0)
		snprintf(buf, len, "%lluh", (unsigned long long)(ms / 3600000));
	else if (ms % 60000 == 0)
		snprintf(buf, len, "%llum", (unsigned long long)(ms / 60000));
	else if (ms % 1000 == 0)
		snprintf(buf, len, "%llus", (unsigned long long)(ms / 1000));
	else
		snprintf(buf, len, "%llums", (unsigned long long)ms);
}

void
duration_format_us(uint64_t us, char *buf, size_t len)
{
	if (us % 1000 == 0)
		duration_format(us / 1000, buf, len);
	else
		snprintf(buf, len, "%lluus", (unsigned long long)us);
}

uint64_t
now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

uint64_t
now_ms(void)
{
	return now_us() / 1000;
}

char *
read_file(const char *path, size_t max, size_t *len)
{
	struct stat st;
	char *buf = NULL;
	size_t got = 0;
	int fd;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return NULL;
	if (fstat(fd, &st) < 0)
		goto fail;
	if (!S_ISREG(st.st_mode)) {
		errno = EINVAL;
		goto fail;
	}
	if ((size_t)st.st_size > max) {
		errno = EFBIG;
		goto fail;
	}
	buf = xmalloc((size_t)st.st_size + 1);
	while (got < (size_t)st.st_size) {
		ssize_t n = read(fd, buf + got, (size_t)st.st_size - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			goto fail;
		if (n == 0)
			break;
		got += (size_t)n;
	}
	buf[got] = '\0';
	close(fd);
	if (len)
		*len = got;
	return buf;
fail:
	{
		int saved = errno;
		free(buf);
		close(fd);
		errno = saved;
	}
	return NULL;
}

void
wipe_free(void *p, size_t n)
{
	if (p == NULL)
		return;
	explicit_bzero(p, n);
	free(p);
}

static int
lower(int c)
{
	return (c >= 'A' && c <= 'Z') ? c + 32 : c;
}

int
ascii_casecmp(const char *a, const char *b)
{
	while (*a && lower((unsigned char)*a) == lower((unsigned char)*b))
		a++, b++;
	return lower((unsigned char)*a) - lower((unsigned char)*b);
}

int
ascii_ncasecmp(const char *a, const char *b, size_t n)
{
	for (; n > 0; n--, a++, b++) {
		int d;

		if (*a == *b) { /* the usual case, same letter case too */
			if (*a == '\0')
				return 0;
			continue;
		}
		d = lower((unsigned char)*a) - lower((unsigned char)*b);
		if (d != 0)
			return d;
	}
	return 0;
}

void
ascii_lower(char *s)
{
	for (; *s; s++)
		*s = (char)lower((unsigned char)*s);
}
