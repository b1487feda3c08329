/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * admin.c's rendering: JSON and Prometheus escaping, /status, /metrics and
 * /certificates over a generation built by hand (no files, no sockets).
 * When python3 is installed, /status is also parsed by a real JSON parser.
 */
#include "autoconf.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <event2/buffer.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "admin.h"
#include "certstore.h"
#include "config.h"
#include "runtime.h"
#include "util.h"

#define NOW ((time_t)1893456000) /* 2030-01-01T00:00:00Z */
#define DAY 86400

/* The buffer's text, NUL-terminated, malloc'ed; the buffer is freed. */
static char *
drain(struct evbuffer *b)
{
	size_t n = evbuffer_get_length(b);
	char *s = xmalloc(n + 1);

	assert_int_equal(evbuffer_remove(b, s, n), (int)n);
	s[n] = '\0';
	evbuffer_free(b);
	return s;
}

static char *
json_of(const char *s)
{
	struct evbuffer *b = evbuffer_new();

	admin_json_string(b, s);
	return drain(b);
}

static char *
label_of(const char *s)
{
	struct evbuffer *b = evbuffer_new();

	admin_prom_label(b, s);
	return drain(b);
}

static void
t_json_string(void **state)
{
	static const struct { const char *in, *out; } cases[] = {
		{ "plain", "\"plain\"" },
		{ "", "\"\"" },
		{ "a\"b\\c", "\"a\\\"b\\\\c\"" },
		{ "l1\nl2\r\t", "\"l1\\nl2\\r\\t\"" },
		{ "\x01\x1f\x7f", "\"\\u0001\\u001f\\u007f\"" },
		{ "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", "\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\"" },
		{ "bad\xff", "\"bad\\ufffd\"" },
		{ "\xc0\xaf", "\"\\ufffd\\ufffd\"" },           /* overlong '/' */
		{ "\xed\xa0\x80", "\"\\ufffd\\ufffd\\ufffd\"" }, /* surrogate */
		{ "\xf4\x90\x80\x80", "\"\\ufffd\\ufffd\\ufffd\\ufffd\"" }, /* > U+10FFFF */
		{ "cut\xe2\x82", "\"cut\\ufffd\\ufffd\"" },     /* truncated at the end */
		{ "</script>", "\"</script>\"" },
	};
	(void)state;

	for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
		char *got = json_of(cases[i].in);
		if (strcmp(got, cases[i].out) != 0)
			fail_msg("case %zu: got %s, want %s", i, got, cases[i].out);
		free(got);
	}
	char *null = json_of(NULL);
	assert_string_equal(null, "null");
	free(null);
}

static void
t_prom_label(void **state)
{
	char *got;
	(void)state;

	got = label_of("a\"b\\c\nd");
	assert_string_equal(got, "a\\\"b\\\\c\\nd");
	free(got);
	got = label_of("client-pem");
	assert_string_equal(got, "client-pem");
	free(got);
	got = label_of("x\xffy");
	assert_string_equal(got, "x\xef\xbf\xbdy");
	free(got);
}

/* --- a generation by hand ------------------------------------------------- */

struct fixture {
	struct config cfg;
	struct mapping maps[3];
	struct listen_spec listen;
	struct generation gen;
	struct dest dests[3];
	struct certset set_a, set_b;
	struct certset *sets[2];
	struct cert_material cur, next, old, b_only_future;
	struct cert_material *pairs_a[3], *pairs_b[1];
	char *problems[2];
	struct admin_reload_stats reloads;
	char *reload_errors[1];
	struct admin_view view;
	struct admin_worker workers[2];
	struct dest_local *locals;              /* [3 dests][2 workers], 64-aligned */
};

static void
pair(struct cert_material *m, const char *serial, time_t nb, time_t na, unsigned char fp)
{
	static const char pem[] = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";

	m->chain_pem = (char *)(uintptr_t)pem;
	m->chain_pem_len = sizeof(pem) - 1;
	m->subject = (char *)(uintptr_t)"CN=client \"quoted\",O=Example";
	m->issuer = (char *)(uintptr_t)"CN=root";
	m->serial_hex = (char *)(uintptr_t)serial;
	m->not_before = nb;
	m->not_after = na;
	snprintf(m->key_desc, sizeof(m->key_desc), "EC P-256");
	m->cert_file = (char *)(uintptr_t)"client.crt";
	m->key_file = (char *)(uintptr_t)"client.key";
	m->chain_len = 1;
	memset(m->fingerprint_sha256, fp, sizeof(m->fingerprint_sha256));
}

static int
setup(void **state)
{
	struct fixture *f = xcalloc(1, sizeof(*f));

	f->listen.address = (char *)(uintptr_t)"127.0.0.1:9001";
	f->maps[0] = (struct mapping){ .name = (char *)(uintptr_t)"bank", .url =
	    (char *)(uintptr_t)"https://api.bank.example/", .certificate =
	    (char *)(uintptr_t)"a", .listen = &f->listen, .enabled = 1 };
	f->maps[1] = (struct mapping){ .name = (char *)(uintptr_t)"odd\"name\\x", .url =
	    (char *)(uintptr_t)"https://b.example/", .certificate = (char *)(uintptr_t)"a",
	    .enabled = 0 };
	f->maps[2] = (struct mapping){ .name = (char *)(uintptr_t)"partner", .url =
	    (char *)(uintptr_t)"https://p.example/", .certificate = (char *)(uintptr_t)"b",
	    .enabled = 1 };
	f->cfg.mappings = f->maps;
	f->cfg.n_mappings = 3;

	pair(&f->next, "0B", NOW + 10 * DAY, NOW + 400 * DAY, 2);      /* pending */
	pair(&f->cur, "0A", NOW - 100 * DAY, NOW + 30 * DAY, 1);       /* current */
	pair(&f->old, "09", NOW - 300 * DAY, NOW + 5 * DAY, 3);        /* older: neither */
	pair(&f->b_only_future, "0C", NOW + DAY, NOW + 2 * DAY, 4);
	f->pairs_a[0] = &f->next;
	f->pairs_a[1] = &f->cur;
	f->pairs_a[2] = &f->old;
	f->problems[0] = (char *)(uintptr_t)"a/bad.pem: expired \"2020\"\n";
	f->problems[1] = (char *)(uintptr_t)"a/x\xff.key: mode 0644";
	f->set_a = (struct certset){ .name = (char *)(uintptr_t)"a", .dir =
	    (char *)(uintptr_t)"/etc/mtlsd/certs.d/a", .pairs = f->pairs_a, .n_pairs = 3,
	    .current = &f->cur, .problems = { f->problems, 2 } };
	f->pairs_b[0] = &f->b_only_future;
	f->set_b = (struct certset){ .name = (char *)(uintptr_t)"b", .dir =
	    (char *)(uintptr_t)"/etc/mtlsd/certs.d/b", .pairs = f->pairs_b, .n_pairs = 1 };
	f->sets[0] = &f->set_a;
	f->sets[1] = &f->set_b;

	for (size_t i = 0; i < 3; i++) {
		f->dests[i].m = &f->maps[i];
		f->dests[i].gen = &f->gen;
	}
	f->dests[0].certs = f->dests[1].certs = &f->set_a;
	f->dests[0].cert = f->dests[1].cert = &f->cur;
	f->dests[2].certs = &f->set_b;
	/* counters live per worker: the admin endpoint shows their sums */
	if (posix_memalign((void **)&f->locals, 64, 6 * sizeof(*f->locals)) != 0)
		return -1;
	memset(f->locals, 0, 6 * sizeof(*f->locals));
	for (size_t i = 0; i < 3; i++) {
		f->dests[i].local = &f->locals[2 * i];
		f->dests[i].n_local = 2;
	}
	f->locals[0].requests = 40;
	f->locals[1].requests = 2;
	f->locals[0].handshakes = 1;
	f->locals[1].handshakes = 2;
	f->locals[1].resumed = 2;
	f->locals[1].n_idle = 1;
	f->locals[2].requests = 7;
	f->workers[0] = (struct admin_worker){ .conns = 5, .accepted = 100 };
	f->workers[1] = (struct admin_worker){ .conns = 7, .accepted = 23 };
	f->gen = (struct generation){ .id = 5, .refs = 1, .cfg = &f->cfg, .dests = f->dests,
	    .n_dests = 3, .sets = f->sets, .n_sets = 2 };

	f->reload_errors[0] = (char *)(uintptr_t)"/etc/mtlsd/mappings.d/x.yaml:3:7: bad \"url\"";
	f->reloads = (struct admin_reload_stats){ .ok = 4, .failed = 1, .last_ok = 0,
	    .last_generation = 5, .last_time = NOW - 10, .last_success_time = NOW - 60,
	    .errors = f->reload_errors, .n_errors = 1 };
	f->view = (struct admin_view){ .gen = &f->gen, .n_conns = 12, .now = NOW,
	    .started = NOW - 3600, .pid = 4321, .reloads = &f->reloads,
	    .workers = f->workers, .n_workers = 2 };
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture *f = *state;

	free(f->locals);
	free(*state);
	return 0;
}

static char *
status_of(const struct fixture *f)
{
	struct evbuffer *b = evbuffer_new();

	admin_render_status(b, &f->view);
	return drain(b);
}

static char *
metrics_of(const struct fixture *f)
{
	struct evbuffer *b = evbuffer_new();

	admin_render_metrics(b, &f->view);
	return drain(b);
}

static void
assert_contains(const char *hay, const char *needle)
{
	if (strstr(hay, needle) == NULL)
		fail_msg("missing: %s\n--- in:\n%s", needle, hay);
}

static void
assert_lacks(const char *hay, const char *needle)
{
	if (strstr(hay, needle) != NULL)
		fail_msg("unexpected: %s\n--- in:\n%s", needle, hay);
}

static void
t_status_fields(void **state)
{
	char *s = status_of(*state);

	assert_contains(s, "\"version\":\"" PACKAGE_VERSION "\"");
	assert_contains(s, "\"pid\":4321");
	assert_contains(s, "\"uptime_seconds\":3600");
	assert_contains(s, "\"generation\":5,");
	assert_contains(s, "\"connections\":12");
	assert_contains(s, "\"workers\":[{\"worker\":0,\"connections\":5,\"accepted\":100},"
	    "{\"worker\":1,\"connections\":7,\"accepted\":23}]");
	assert_contains(s, "\"last_reload\":{\"time\":\"2029-12-31T23:59:50Z\",\"ok\":false,"
	    "\"generation\":5,\"errors\":[\"/etc/mtlsd/mappings.d/x.yaml:3:7: bad \\\"url\\\"\"]}");
	assert_contains(s, "\"reloads\":{\"ok\":4,\"failed\":1,");
	assert_contains(s, "{\"name\":\"bank\",\"url\":\"https://api.bank.example/\","
	    "\"listen\":\"127.0.0.1:9001\",\"certificate\":\"a\",\"certificate_serial\":\"0A\","
	    "\"pending_serial\":null,\"pending_reason\":null,\"enabled\":true,\"usable\":true,\"requests\":42,\"upstream_handshakes\":3,"
	    "\"upstream_resumed\":2,\"pool_idle\":1}");
	assert_contains(s, "\"name\":\"odd\\\"name\\\\x\"");
	assert_contains(s, "\"listen\":null");
	assert_contains(s, "\"certificate_serial\":null,\"pending_serial\":null,"
	    "\"pending_reason\":null,\"enabled\":true,\"usable\":false");
	free(s);
}

static void
t_status_certificates(void **state)
{
	char *s = status_of(*state);

	/* set a: current 0A (30 days left), pending 0B, not the older 09 */
	/* no vault: section: null, and every certificate comes from files */
	assert_contains(s, "\"vault\":null,\"mappings\":");
	assert_contains(s, "\"name\":\"a\",\"dir\":\"/etc/mtlsd/certs.d/a\",\"source\":\"files\","
	    "\"current\":"
	    "{\"subject\":\"CN=client \\\"quoted\\\",O=Example\",\"issuer\":\"CN=root\","
	    "\"serial\":\"0A\",\"not_before\":\"2029-09-23T00:00:00Z\","
	    "\"not_after\":\"2030-01-31T00:00:00Z\",\"days_left\":30,\"key\":\"EC P-256\"");
	assert_contains(s, "\"files\":[\"client.crt\",\"client.key\"]");
	assert_contains(s, "\"pending\":[{\"subject\":\"CN=client \\\"quoted\\\",O=Example\","
	    "\"issuer\":\"CN=root\",\"serial\":\"0B\"");
	assert_lacks(s, "\"serial\":\"09\"");
	assert_contains(s, "\"problems\":[\"a/bad.pem: expired \\\"2020\\\"\\n\","
	    "\"a/x\\ufffd.key: mode 0644\"]");
	assert_contains(s, "\"used_by\":[\"bank\",\"odd\\\"name\\\\x\"]");
	/* set b: no current, its future pair is pending */
	assert_contains(s, "\"name\":\"b\",\"dir\":\"/etc/mtlsd/certs.d/b\",\"source\":\"files\",\"current\":null,"
	    "\"pending\":[{");
	assert_contains(s, "\"serial\":\"0C\"");
	assert_contains(s, "\"used_by\":[\"partner\"]");
	assert_contains(s, "\"sha256_fingerprint\":\"0101010101");
	free(s);
}

/* A mapping may present a copy of a pair (kept after its files went away)
 * or an older one held back by rotation: current follows dest->cert, and
 * pairs newer than it are pending. */
static void
t_status_current_follows_dest(void **state)
{
	struct fixture *f = *state;
	struct cert_material copy;
	char *s;

	copy = f->old;          /* a different object with old's fingerprint */
	f->dests[0].cert = f->dests[1].cert = &copy;
	s = status_of(f);
	assert_contains(s, "\"current\":{\"subject\":\"CN=client \\\"quoted\\\",O=Example\","
	    "\"issuer\":\"CN=root\",\"serial\":\"09\"");
	assert_contains(s, "\"certificate_serial\":\"09\"");
	/* 0A (newer than 09) and 0B (not yet valid) are both pending */
	assert_contains(s, "\"pending\":[{\"subject\":\"CN=client \\\"quoted\\\",O=Example\","
	    "\"issuer\":\"CN=root\",\"serial\":\"0B\"");
	assert_contains(s, "\"serial\":\"0A\"");
	free(s);
}

static void
t_status_pending_not_yet_valid(void **state)
{
	char *s = status_of(*state);

	assert_contains(s, "\"serial\":\"0B\"");
	assert_contains(s, "\"activates\":\"2030-01-11T00:00:00Z\","
	    "\"reason\":\"not valid before 2030-01-11T00:00:00Z\"}");
	free(s);
}

/* A validate: true mapping waiting for its test request: the new pair is
 * the mapping's candidate, with the reason runtime gave. */
static void
t_status_pending_validation(void **state)
{
	struct fixture *f = *state;
	char *s, *m;

	f->dests[0].cert = f->dests[1].cert = &f->old;
	f->dests[0].candidate = &f->cur;
	snprintf(f->dests[0].pending_reason, sizeof(f->dests[0].pending_reason),
	    "validation against api.bank.example in progress");
	s = status_of(f);
	assert_contains(s, "\"certificate_serial\":\"09\",\"pending_serial\":\"0A\","
	    "\"pending_reason\":\"validation against api.bank.example in progress\"");
	assert_contains(s, "\"reason\":\"mapping 'bank': validation against api.bank.example "
	    "in progress\"");
	free(s);
	m = metrics_of(f);
	assert_contains(m, "mtlsd_certificate_not_after_timestamp_seconds{certificate=\"a\","
	    "state=\"current\",serial=\"09\"} 1893888000\n");
	assert_contains(m, "mtlsd_certificate_not_after_timestamp_seconds{certificate=\"a\","
	    "state=\"pending\",serial=\"0A\"} 1896048000\n");
	free(m);
}

/* before-expiry: the newer valid pair waits for the current one's window
 * (not_after - activate_before_expiry). */
static void
t_status_pending_before_expiry(void **state)
{
	struct fixture *f = *state;
	char *s, *m;

	f->dests[0].cert = f->dests[1].cert = &f->old;     /* expires NOW + 5d */
	for (size_t i = 0; i < 2; i++) {
		f->dests[i].rotation.activate = ACTIVATE_BEFORE_EXPIRY;
		f->dests[i].rotation.activate_before_expiry_ms = 72ULL * 3600 * 1000;
	}
	s = status_of(f);
	assert_contains(s, "\"serial\":\"0A\"");
	assert_contains(s, "\"activates\":\"2030-01-03T00:00:00Z\",\"reason\":"
	    "\"rotation before-expiry: becomes current at 2030-01-03T00:00:00Z\"}");
	/* not yet valid: its not-before is later than the window */
	assert_contains(s, "\"activates\":\"2030-01-11T00:00:00Z\",\"reason\":"
	    "\"not valid before 2030-01-11T00:00:00Z\"}");
	free(s);
	m = metrics_of(f);
	assert_contains(m, "mtlsd_certificate_activation_timestamp_seconds{certificate=\"a\","
	    "state=\"pending\",serial=\"0A\"} 1893628800\n");
	assert_contains(m, "mtlsd_certificate_activation_timestamp_seconds{certificate=\"a\","
	    "state=\"pending\",serial=\"0B\"} 1894320000\n");
	free(m);
}

static void
t_status_parses(void **state)
{
	char path[] = "/tmp/mtlsd-admin-json-XXXXXX";
	char cmd[512];
	char *s = status_of(*state);
	int fd = mkstemp(path), rc;
	size_t n = strlen(s);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, s, n), (ssize_t)n);
	close(fd);
	free(s);
	if (system("command -v python3 >/dev/null 2>&1") != 0) {
		unlink(path);
		skip();
	}
	snprintf(cmd, sizeof(cmd), "python3 -c 'import json,sys; d = json.load(open(sys.argv[1], "
	    "encoding=\"utf-8\")); assert d[\"certificates\"][0][\"problems\"][1] == "
	    "\"a/x\\ufffd.key: mode 0644\"; assert d[\"mappings\"][1][\"name\"] == "
	    "\"odd\\\"name\\\\x\"' '%s'", path);
	rc = system(cmd);
	unlink(path);
	assert_int_equal(rc, 0);
}

static void
t_metrics(void **state)
{
	char *s = metrics_of(*state);

	assert_contains(s, "# HELP mtlsd_generation ");
	assert_contains(s, "# TYPE mtlsd_generation gauge\nmtlsd_generation 5\n");
	assert_contains(s, "# TYPE mtlsd_reloads_total counter\n"
	    "mtlsd_reloads_total{result=\"ok\"} 4\nmtlsd_reloads_total{result=\"failed\"} 1\n");
	assert_contains(s, "mtlsd_last_reload_successful 0\n");
	assert_contains(s, "mtlsd_last_reload_errors 1\n");
	assert_contains(s, "mtlsd_last_reload_success_timestamp_seconds 1893455940\n");
	assert_contains(s, "mtlsd_connections 12\n");
	assert_contains(s, "# TYPE mtlsd_worker_connections gauge\n"
	    "mtlsd_worker_connections{worker=\"0\"} 5\n"
	    "mtlsd_worker_connections{worker=\"1\"} 7\n");
	assert_contains(s, "# TYPE mtlsd_worker_accepted_total counter\n"
	    "mtlsd_worker_accepted_total{worker=\"0\"} 100\n"
	    "mtlsd_worker_accepted_total{worker=\"1\"} 23\n");
	assert_contains(s, "# TYPE mtlsd_requests_total counter\n"
	    "mtlsd_requests_total{mapping=\"bank\"} 42\n"
	    "mtlsd_requests_total{mapping=\"odd\\\"name\\\\x\"} 7\n"
	    "mtlsd_requests_total{mapping=\"partner\"} 0\n");
	assert_contains(s, "mtlsd_upstream_handshakes_total{mapping=\"bank\"} 3\n");
	assert_contains(s, "mtlsd_upstream_resumed_total{mapping=\"bank\"} 2\n");
	assert_contains(s, "# TYPE mtlsd_pool_idle_connections gauge\n"
	    "mtlsd_pool_idle_connections{mapping=\"bank\"} 1\n");
	assert_contains(s, "mtlsd_certificate_not_after_timestamp_seconds{certificate=\"a\","
	    "state=\"current\",serial=\"0A\"} 1896048000\n");
	assert_contains(s, "mtlsd_certificate_not_after_timestamp_seconds{certificate=\"a\","
	    "state=\"pending\",serial=\"0B\"} 1928016000\n");
	assert_contains(s, "mtlsd_certificate_not_before_timestamp_seconds{certificate=\"a\","
	    "state=\"pending\",serial=\"0B\"} 1894320000\n");
	assert_contains(s, "mtlsd_certificate_not_after_timestamp_seconds{certificate=\"b\","
	    "state=\"pending\",serial=\"0C\"} 1893628800\n");
	assert_lacks(s, "serial=\"09\"");
	assert_contains(s, "mtlsd_certificate_usable{certificate=\"a\"} 1\n"
	    "mtlsd_certificate_usable{certificate=\"b\"} 0\n");
	assert_contains(s, "mtlsd_certificate_problems{certificate=\"a\"} 2\n");
	assert_int_equal(s[strlen(s) - 1], '\n');
	free(s);
}

/* Each family's HELP and TYPE come once, before its samples. */
static void
t_metrics_families_once(void **state)
{
	char *s = metrics_of(*state), *line, *save = NULL;
	char seen[64][80];
	size_t n = 0;

	for (line = strtok_r(s, "\n", &save); line != NULL; line = strtok_r(NULL, "\n", &save)) {
		char name[80];
		if (sscanf(line, "# TYPE %79s", name) != 1)
			continue;
		for (size_t i = 0; i < n; i++)
			if (strcmp(seen[i], name) == 0)
				fail_msg("TYPE %s twice", name);
		assert_true(n < 64);
		snprintf(seen[n++], sizeof(seen[0]), "%s", name);
	}
	assert_true(n >= 16);
	free(s);
}

static void
t_pem(void **state)
{
	struct fixture *f = *state;
	static const char head[] = "# current: a\n# subject: CN=client \"quoted\",O=Example\n"
	    "# issuer: CN=root\n# serial: 0A\n# valid: 2029-09-23T00:00:00Z .. "
	    "2030-01-31T00:00:00Z (30 days left)\n-----BEGIN CERTIFICATE-----\n";
	struct evbuffer *b = evbuffer_new();
	char *s;

	assert_int_equal(admin_render_pem(b, &f->gen, "a", NOW), 0);
	s = drain(b);
	assert_true(strncmp(s, head, strlen(head)) == 0);
	assert_contains(s, "# pending: a\n");
	assert_contains(s, "# serial: 0B\n");
	assert_lacks(s, "# serial: 09\n");
	assert_lacks(s, "PRIVATE KEY");
	free(s);

	b = evbuffer_new();
	assert_int_equal(admin_render_pem(b, &f->gen, "nope", NOW), -1);
	assert_int_equal(evbuffer_get_length(b), 0);
	evbuffer_free(b);

	b = evbuffer_new();
	assert_int_equal(admin_render_pem(b, &f->gen, NULL, NOW), 0);
	s = drain(b);
	assert_contains(s, "# current: a\n");
	assert_contains(s, "# pending: b\n");
	free(s);
}

/* A comment line cannot be broken by a name or subject, and key material is
 * never served even if it somehow were in a chain. */
static void
t_pem_hostile(void **state)
{
	struct fixture *f = *state;
	static const char keypem[] = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
	    "-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----\n";
	struct evbuffer *b = evbuffer_new();
	char *s;

	f->cur.subject = (char *)(uintptr_t)"CN=x\n-----BEGIN CERTIFICATE-----\nAAAA";
	f->next.chain_pem = (char *)(uintptr_t)keypem;
	f->next.chain_pem_len = sizeof(keypem) - 1;
	assert_int_equal(admin_render_pem(b, &f->gen, "a", NOW), 0);
	s = drain(b);
	assert_contains(s, "# subject: CN=x?-----BEGIN CERTIFICATE-----?AAAA\n");
	assert_lacks(s, "PRIVATE KEY");
	assert_lacks(s, "# pending: a");
	free(s);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(t_json_string),
	    cmocka_unit_test(t_prom_label),
	    cmocka_unit_test_setup_teardown(t_status_fields, setup, teardown),
	    cmocka_unit_test_setup_teardown(t_status_certificates, setup, teardown),
	    cmocka_unit_test_setup_teardown(t_status_current_follows_dest, setup, teardown),
	    cmocka_unit_test_setup_teardown(t_status_pending_not_yet_valid, setup, teardown),
	    cmocka_unit_test_setup_teardown(t_status_pending_validation, setup, teardown),
	    cmocka_unit_test_setup_teardown(t_status_pending_before_expiry, setup, teardown),
	    cmocka_unit_test_setup_teardown(t_status_parses, setup, teardown),
	    cmocka_unit_test_setup_teardown(t_metrics, setup, teardown),
	    cmocka_unit_test_setup_teardown(t_metrics_families_once, setup, teardown),
	    cmocka_unit_test_setup_teardown(t_pem, setup, teardown),
	    cmocka_unit_test_setup_teardown(t_pem_hostile, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
