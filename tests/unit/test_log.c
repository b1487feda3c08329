/* SPDX-License-Identifier: GPL-2.0-or-later */
/* log.c: access lines, buffered per thread and written whole. */
#include "autoconf.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <event2/event.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "json.h"
#include "log.h"
#include "loop.h"
#include "util.h"

/* an access line of one field key=value */
static void
log1(const char *key, const char *value)
{
	const struct log_field f[] = { LOG_STR(key, value) };

	log_access(f, 1);
}

#define OUT_TEMPLATE "/tmp/mtlsd-test-log.XXXXXX" /* mkstemp's template */
static char out_path[sizeof(OUT_TEMPLATE)];
static int saved_stdout = -1;

/* standard output goes to a fresh file for each test */
static int
setup(void **state)
{
	int fd;

	(void)state;
	strcpy(out_path, OUT_TEMPLATE);
	if ((fd = mkstemp(out_path)) < 0)
		return -1;
	fflush(stdout); /* cmocka's own lines stay on the real output */
	saved_stdout = dup(STDOUT_FILENO);
	dup2(fd, STDOUT_FILENO);
	close(fd);
	log_set_access(1);
	log_set_json(0);
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
	log_access_flush();
	fflush(stdout);
	dup2(saved_stdout, STDOUT_FILENO);
	close(saved_stdout);
	unlink(out_path);
	return 0;
}

/* what standard output holds so far (free it) */
static char *
out_text(size_t *len)
{
	FILE *f = fopen(out_path, "r");
	char *buf = calloc(1, 1 << 20);
	size_t n;

	assert_non_null(f);
	assert_non_null(buf);
	n = fread(buf, 1, (1 << 20) - 1, f);
	fclose(f);
	if (len != NULL)
		*len = n;
	return buf;
}

static void
assert_line(const char *line, const char *msg)
{
	regex_t re;
	char want[256];

	snprintf(want, sizeof(want),
	    "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{3}Z "
	    "mtlsd\\[access\\]: %s$",
	    msg);
	assert_int_equal(regcomp(&re, want, REG_EXTENDED | REG_NOSUB), 0);
	assert_int_equal(regexec(&re, line, 0, NULL, 0), 0);
	regfree(&re);
}

static void
t_line_waits_for_flush(void **state)
{
	char *s;

	(void)state;
	const struct log_field f[] = { LOG_STR("client", "127.0.0.1:5"), LOG_STR("mapping", NULL),
		LOG_NUM("status", 200) };

	log_access(f, ARRAY_LEN(f));
	s = out_text(NULL);
	assert_string_equal(s, "");
	free(s);
	log_access_flush();
	s = out_text(NULL);
	assert_non_null(strchr(s, '\n'));
	*strchr(s, '\n') = '\0';
	assert_line(s, "client=127\\.0\\.0\\.1:5 mapping=- status=200");
	free(s);
}

static void
t_off_writes_nothing(void **state)
{
	char *s;

	(void)state;
	log_set_access(0);
	log1("x", "1");
	log_access_flush();
	s = out_text(NULL);
	assert_string_equal(s, "");
	free(s);
}

static void
t_tick_flushes_old_lines(void **state)
{
	char *s;

	(void)state;
	log1("x", "1");
	log_access_tick(now_us());
	s = out_text(NULL);
	assert_string_equal(s, ""); /* not old yet */
	free(s);
	log_access_tick(now_us() + 100000);
	s = out_text(NULL);
	assert_non_null(strstr(s, "x=1\n"));
	free(s);
}

/* A full buffer is written before the next line: only whole lines, in
 * order, and every one arrives. */
static void
t_full_buffer_writes_whole_lines(void **state)
{
	char pad[301], *s, *line, *save;
	size_t len;
	int i = 0;

	(void)state;
	memset(pad, 'p', sizeof(pad) - 1);
	pad[sizeof(pad) - 1] = '\0';
	for (int k = 0; k < 200; k++) {
		char n[8];
		const struct log_field f[] = { LOG_STR("n", n), LOG_STR("pad", pad) };

		snprintf(n, sizeof(n), "%03d", k);
		log_access(f, 2);
	}
	s = out_text(&len);
	assert_true(len > 0);             /* some buffers went out on their own */
	assert_int_equal(s[len - 1], '\n');
	free(s);
	log_access_flush();
	s = out_text(NULL);
	for (line = strtok_r(s, "\n", &save); line != NULL; line = strtok_r(NULL, "\n", &save)) {
		char want[64];

		snprintf(want, sizeof(want), "n=%03d pad=p{300}", i++);
		assert_line(line, want);
	}
	assert_int_equal(i, 200);
	free(s);
}

/* A message too long for a line is cut, and still ends the line. */
static void
t_long_line_is_cut(void **state)
{
	char *big = malloc(5000), *s;
	size_t len;

	(void)state;
	memset(big, 'b', 4999);
	big[4999] = '\0';
	log1("big", big);
	log1("after", "1");
	log_access_flush();
	s = out_text(&len);
	assert_non_null(strchr(s, '\n'));
	assert_int_equal(strchr(s, '\n') - s + 1, LOG_LINE_MAX - 1);
	assert_non_null(strstr(strchr(s, '\n') + 1, "mtlsd[access]: after=1\n"));
	free(s);
	free(big);
}

/* The first line of s as JSON (json_free it), with the fields every line
 * has checked. */
static struct json *
json_line(char *s, const char *level)
{
	char err[128], *nl = strchr(s, '\n');
	struct json *j;
	regex_t re;
	int root;

	assert_non_null(nl);
	j = json_parse(s, (size_t)(nl - s), err, sizeof(err));
	if (j == NULL)
		fail_msg("not JSON (%s): %.*s", err, (int)(nl - s), s);
	root = json_root(j);
	assert_true(json_is_object(j, root));
	assert_int_equal(regcomp(&re, "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:]{8}\\.[0-9]{3}Z$",
	    REG_EXTENDED | REG_NOSUB), 0);
	assert_int_equal(regexec(&re, json_string(j, json_get(j, root, "time")), 0, NULL, 0), 0);
	regfree(&re);
	assert_string_equal(json_string(j, json_get(j, root, "program")), "mtlsd");
	assert_string_equal(json_string(j, json_get(j, root, "level")), level);
	return j;
}

static void
t_json_access_line(void **state)
{
	const struct log_field f[] = { LOG_STR("client", "127.0.0.1:5"), LOG_STR("mapping", NULL),
		LOG_STR("path", "/a\"b\\c?d=\x01"), LOG_NUM("status", 200),
		LOG_NUM("resp_bytes", 18446744073709551615ull) };
	struct json *j;
	long long v;
	char *s;
	int root;

	(void)state;
	log_set_json(1);
	log_access(f, ARRAY_LEN(f));
	log_access_flush();
	s = out_text(NULL);
	j = json_line(s, "access");
	root = json_root(j);
	assert_string_equal(json_string(j, json_get(j, root, "client")), "127.0.0.1:5");
	assert_true(json_is_null(j, json_get(j, root, "mapping")));
	assert_non_null(json_get(j, root, "mapping"));
	assert_string_equal(json_string(j, json_get(j, root, "path")), "/a\"b\\c?d=\x01");
	assert_int_equal(json_int(j, json_get(j, root, "status"), &v), 0);
	assert_int_equal(v, 200);
	assert_non_null(strstr(s, "\"resp_bytes\":18446744073709551615}"));
	json_free(j);
	free(s);
}

/* A value too long for the line is cut, and the line still parses. */
static void
t_json_long_value_is_cut(void **state)
{
	char *big = malloc(5000), *s;
	struct json *j;
	size_t len;

	(void)state;
	memset(big, '"', 4999); /* each one escaped to two bytes */
	big[4999] = '\0';
	log_set_json(1);
	log1("big", big);
	log_access_flush();
	s = out_text(&len);
	assert_true(len <= LOG_LINE_MAX);
	j = json_line(s, "access");
	assert_true(strlen(json_string(j, json_get(j, json_root(j), "big"))) > 900);
	json_free(j);
	free(s);
	free(big);
}

/* Other lines go to standard error, as JSON too. */
static void
t_json_error_line(void **state)
{
	char path[] = "/tmp/mtlsd-test-log-err.XXXXXX", *s;
	int fd = mkstemp(path), saved = dup(STDERR_FILENO);
	struct json *j;
	FILE *f;

	(void)state;
	assert_true(fd >= 0);
	dup2(fd, STDERR_FILENO);
	log_set_json(1);
	errno = ENOENT;
	log_warn("cannot read \"%s\"", "x.pem");
	dup2(saved, STDERR_FILENO);
	close(saved);
	s = calloc(1, 4096);
	f = fdopen(fd, "r");
	rewind(f);
	assert_true(fread(s, 1, 4095, f) > 0);
	fclose(f);
	unlink(path);
	j = json_line(s, "warn");
	assert_string_equal(json_string(j, json_get(j, json_root(j), "msg")), "cannot read \"x.pem\"");
	assert_string_equal(json_string(j, json_get(j, json_root(j), "error")), strerror(ENOENT));
	json_free(j);
	free(s);
}

/* A loop writes what its callbacks logged before it sleeps, and when it
 * ends. */
static size_t seen_at_second_timer;

static void
cb_log(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
	log1("from", "loop");
}

static void
cb_look(evutil_socket_t fd, short what, void *arg)
{
	char *s = out_text(&seen_at_second_timer);

	(void)fd;
	(void)what;
	free(s);
	log1("last", "1");
	event_base_loopexit(arg, NULL);
}

static void
t_loop_flushes_before_sleeping(void **state)
{
	struct event_base *base = event_base_new();
	struct timeval soon = { 0, 1000 }, later = { 0, 200000 };
	struct loop l = { 0 };
	struct event *a, *b;
	char *s;

	(void)state;
	loop_set_busy_poll(&l, 50);
	a = evtimer_new(base, cb_log, NULL);
	b = evtimer_new(base, cb_look, base);
	evtimer_add(a, &soon);
	evtimer_add(b, &later);
	loop_run(&l, base, 0);
	/* the first line was out while the loop slept before the second timer */
	assert_true(seen_at_second_timer > 0);
	s = out_text(NULL);
	assert_non_null(strstr(s, "from=loop\n"));
	assert_non_null(strstr(s, "last=1\n")); /* written as loop_run returned */
	free(s);
	event_free(a);
	event_free(b);
	event_base_free(base);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(t_line_waits_for_flush, setup, teardown),
	    cmocka_unit_test_setup_teardown(t_off_writes_nothing, setup, teardown),
	    cmocka_unit_test_setup_teardown(t_tick_flushes_old_lines, setup, teardown),
	    cmocka_unit_test_setup_teardown(t_full_buffer_writes_whole_lines, setup, teardown),
	    cmocka_unit_test_setup_teardown(t_long_line_is_cut, setup, teardown),
	    cmocka_unit_test_setup_teardown(t_loop_flushes_before_sleeping, setup, teardown),
	    cmocka_unit_test_setup_teardown(t_json_access_line, setup, teardown),
	    cmocka_unit_test_setup_teardown(t_json_long_value_is_cut, setup, teardown),
	    cmocka_unit_test_setup_teardown(t_json_error_line, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
