/* SPDX-License-Identifier: GPL-2.0-or-later */
/* util.c: durations, locale-free ASCII helpers, read_file, small allocators. */
#include "autoconf.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util.h"

static void
t_duration_parse_valid(void **state)
{
	static const struct { const char *s; uint64_t ms; } cases[] = {
		{ "0s", 0 }, { "0ms", 0 }, { "250ms", 250 }, { "5s", 5000 },
		{ "10m", 600000 }, { "72h", 259200000 }, { "7d", 604800000 },
		{ "1h30m", 5400000 }, { "1m30s", 90000 }, { "1s500ms", 1500 },
		{ "90s", 90000 }, { "336h", 1209600000 }, { "1d1h1m1s1ms", 90061001 },
		{ "5s5s", 10000 }, { "0", 0 },
	};
	uint64_t ms;
	(void)state;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		ms = 12345;
		if (duration_parse(cases[i].s, &ms) != 0)
			fail_msg("'%s' rejected", cases[i].s);
		if (ms != cases[i].ms)
			fail_msg("'%s' -> %llu", cases[i].s, (unsigned long long)ms);
	}
}

static void
t_duration_parse_invalid(void **state)
{
	static const char *const bad[] = {
		"", "5", "s", "5x", "-5s", "+5s", "1.5s", " 5s", "5s ", "5 s", "5S",
		"5sec", "5mss", "h", "ms5", "99999999999999999999s",
		"18446744073709551615d", "5s-",
	};
	uint64_t ms = 777;
	(void)state;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (duration_parse(bad[i], &ms) != -1)
			fail_msg("'%s' accepted", bad[i]);
	assert_int_equal(duration_parse(NULL, &ms), -1);
	assert_int_equal(ms, 777);
}

static void
t_duration_parse_overflow_edge(void **state)
{
	uint64_t ms;
	char buf[64];
	(void)state;

	/* the largest whole number of days fits; one more day, or a sum past
	 * 2^64 ms, is rejected rather than wrapping */
	snprintf(buf, sizeof(buf), "%llud",
	    (unsigned long long)(UINT64_MAX / 86400000));
	assert_int_equal(duration_parse(buf, &ms), 0);
	assert_true(ms == UINT64_MAX / 86400000 * 86400000);
	snprintf(buf, sizeof(buf), "%llud",
	    (unsigned long long)(UINT64_MAX / 86400000 + 1));
	assert_int_equal(duration_parse(buf, &ms), -1);
	assert_int_equal(duration_parse("1844674407370955160ms", &ms), 0);
	assert_true(ms == 1844674407370955160ull);
	assert_int_equal(duration_parse("18446744073709551616ms", &ms), -1);
	assert_int_equal(duration_parse("213503982334d1000000000000s", &ms), -1);
}

static void
t_duration_parse_us(void **state)
{
	static const struct { const char *s; uint64_t us; } cases[] = {
		{ "0", 0 }, { "0us", 0 }, { "50us", 50 }, { "1ms", 1000 },
		{ "1ms250us", 1250 }, { "2s", 2000000 }, { "1h", 3600000000ull },
	};
	static const char *const bad[] = {
		"", "50", "us", "50 us", "-50us", "5.5us", "50uss", "50µs", "00x",
		"18446744073709551616us", "213503983d",
	};
	uint64_t us;
	(void)state;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		us = 777;
		if (duration_parse_us(cases[i].s, &us) != 0)
			fail_msg("'%s' rejected", cases[i].s);
		if (us != cases[i].us)
			fail_msg("'%s' -> %llu", cases[i].s, (unsigned long long)us);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (duration_parse_us(bad[i], &us) != -1)
			fail_msg("'%s' accepted", bad[i]);
	/* milliseconds have no microsecond unit: "50us" is not a timeout */
	assert_int_equal(duration_parse("50us", &us), -1);
}

static void
t_duration_format_us(void **state)
{
	static const struct { uint64_t us; const char *s; } cases[] = {
		{ 0, "0s" }, { 1, "1us" }, { 50, "50us" }, { 1000, "1ms" },
		{ 1500, "1500us" }, { 2000000, "2s" },
	};
	char buf[32];
	uint64_t back;
	(void)state;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		duration_format_us(cases[i].us, buf, sizeof(buf));
		assert_string_equal(buf, cases[i].s);
		assert_int_equal(duration_parse_us(buf, &back), 0);
		assert_true(back == cases[i].us);
	}
}

static void
t_duration_format(void **state)
{
	static const struct { uint64_t ms; const char *s; } cases[] = {
		{ 0, "0s" }, { 1, "1ms" }, { 250, "250ms" }, { 1500, "1500ms" },
		{ 5000, "5s" }, { 90000, "90s" }, { 60000, "1m" },
		{ 3600000, "1h" }, { 5400000, "90m" }, { 259200000, "3d" },
		{ 1209600000, "14d" }, { 90061001, "90061001ms" },
	};
	char buf[32];
	(void)state;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		duration_format(cases[i].ms, buf, sizeof(buf));
		assert_string_equal(buf, cases[i].s);
	}
	duration_format(5000, buf, 2);		/* truncates, terminated */
	assert_string_equal(buf, "5");
}

static void
t_duration_round_trip(void **state)
{
	static const uint64_t values[] = {
		0, 1, 999, 1000, 59999, 60000, 61000, 3599999, 3600000, 86400000,
		86400001, 123456789, 1ull << 40,
	};
	char buf[32];
	uint64_t ms;
	(void)state;

	for (size_t i = 0; i < sizeof(values) / sizeof(values[0]); i++) {
		duration_format(values[i], buf, sizeof(buf));
		assert_int_equal(duration_parse(buf, &ms), 0);
		assert_true(ms == values[i]);
	}
}

static void
t_ascii_casecmp(void **state)
{
	(void)state;
	assert_int_equal(ascii_casecmp("Host", "hOST"), 0);
	assert_int_equal(ascii_casecmp("", ""), 0);
	assert_true(ascii_casecmp("a", "b") < 0);
	assert_true(ascii_casecmp("B", "a") > 0);
	assert_true(ascii_casecmp("abc", "ab") > 0);
	assert_true(ascii_casecmp("ab", "abc") < 0);
	/* only ASCII letters fold: no locale, no Latin-1 */
	assert_true(ascii_casecmp("\xc4", "\xe4") != 0);
	assert_true(ascii_casecmp("[", "{") != 0);
	assert_true(ascii_casecmp("@", "`") != 0);
}

static void
t_ascii_ncasecmp(void **state)
{
	(void)state;
	assert_int_equal(ascii_ncasecmp("HTTPS://x", "https://y", 8), 0);
	assert_true(ascii_ncasecmp("HTTPS://x", "https://y", 9) != 0);
	assert_int_equal(ascii_ncasecmp("abc", "ABD", 0), 0);
	assert_int_equal(ascii_ncasecmp("ab", "AB", 10), 0);
	assert_true(ascii_ncasecmp("ab", "ABC", 10) < 0);
	assert_true(ascii_ncasecmp("abc", "AB", 10) > 0);
}

static void
t_ascii_lower(void **state)
{
	char s[] = "API.Bank.EXAMPLE-09_Z[\xc4]";
	(void)state;

	ascii_lower(s);
	assert_string_equal(s, "api.bank.example-09_z[\xc4]");
}

static void
t_read_file(void **state)
{
	char path[] = "/tmp/mtlsd-test-util.XXXXXX";
	size_t len = 99;
	char *buf;
	int fd;
	(void)state;

	fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "hello\0world", 11), 11);
	close(fd);
	buf = read_file(path, 100, &len);
	assert_non_null(buf);
	assert_int_equal(len, 11);
	assert_memory_equal(buf, "hello\0world", 12);	/* NUL-terminated too */
	free(buf);

	errno = 0;
	assert_null(read_file(path, 10, &len));
	assert_int_equal(errno, EFBIG);
	unlink(path);
	assert_null(read_file(path, 100, &len));
	assert_int_equal(errno, ENOENT);
	assert_null(read_file("/tmp", 100, NULL));
	assert_int_equal(errno, EINVAL);
}

static void
t_alloc_helpers(void **state)
{
	char *s;
	unsigned char *z;
	(void)state;

	s = xasprintf("%s:%d", "x", 42);
	assert_string_equal(s, "x:42");
	free(s);
	s = xstrndup("abcdef", 3);
	assert_string_equal(s, "abc");
	free(s);
	z = xcalloc(4, 8);
	for (int i = 0; i < 32; i++)
		assert_int_equal(z[i], 0);
	wipe_free(z, 32);
	wipe_free(NULL, 10);
	/* zero-sized requests still return freeable memory */
	s = xmalloc(0);
	assert_non_null(s);
	s = xrealloc(s, 0);
	assert_non_null(s);
	free(s);
}

static void
t_now_ms_monotonic(void **state)
{
	uint64_t a, b;
	(void)state;

	a = now_ms();
	b = now_ms();
	assert_true(b >= a);
	assert_true(a > 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(t_duration_parse_valid),
		cmocka_unit_test(t_duration_parse_invalid),
		cmocka_unit_test(t_duration_parse_overflow_edge),
		cmocka_unit_test(t_duration_format),
		cmocka_unit_test(t_duration_parse_us), cmocka_unit_test(t_duration_format_us),
		cmocka_unit_test(t_duration_round_trip),
		cmocka_unit_test(t_ascii_casecmp), cmocka_unit_test(t_ascii_ncasecmp),
		cmocka_unit_test(t_ascii_lower), cmocka_unit_test(t_read_file),
		cmocka_unit_test(t_alloc_helpers), cmocka_unit_test(t_now_ms_monotonic),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
