/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Router: host (case, trailing dot, brackets), port rule, longest prefix at
 * a segment boundary, tie-breaks, path normalisation and the reasons given
 * when nothing matches. The configuration is built by hand so these tests
 * do not depend on the YAML parser.
 */
#include "autoconf.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "router.h"
#include "util.h"

static struct config *cfg;
static struct router *rt;

static void
add(const char *name, const char *host, uint16_t port, const char *prefix)
{
	struct mapping *m;

	cfg->mappings = xrealloc(cfg->mappings,
	    (cfg->n_mappings + 1) * sizeof(*cfg->mappings));
	m = &cfg->mappings[cfg->n_mappings++];
	memset(m, 0, sizeof(*m));
	m->name = xstrdup(name);
	m->host = xstrdup(host);
	m->port = port;
	m->path_prefix = xstrdup(prefix);
	m->enabled = 1;
}

static int
setup(void **state)
{
	(void)state;
	cfg = xcalloc(1, sizeof(*cfg));
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
	router_free(rt);
	rt = NULL;
	for (size_t i = 0; i < cfg->n_mappings; i++) {
		free(cfg->mappings[i].name);
		free(cfg->mappings[i].host);
		free(cfg->mappings[i].path_prefix);
		if (cfg->mappings[i].listen)
			listen_spec_clear(cfg->mappings[i].listen);
		free(cfg->mappings[i].listen);
	}
	free(cfg->mappings);
	free(cfg);
	return 0;
}

/* Name of the mapping chosen, or the why string. */
static const char *
route(const char *host, uint16_t port, const char *path)
{
	const struct mapping *m;
	const char *why = NULL;

	if (rt == NULL)
		rt = router_new(cfg);
	m = router_match(rt, host, port, path, &why);
	if (m != NULL)
		return m->name;
	assert_non_null(why);
	return why;
}

static void
t_host_exact_and_case(void **state)
{
	(void)state;
	add("a", "api.bank.example", 443, "/");
	add("b", "other.example", 443, "/");
	assert_string_equal(route("api.bank.example", 0, "/x"), "a");
	assert_string_equal(route("API.Bank.EXAMPLE", 0, "/x"), "a");
	assert_string_equal(route("api.bank.example.", 0, "/x"), "a");
	assert_string_equal(route("other.example", 443, "/"), "b");
	assert_string_equal(route("bank.example", 0, "/"), "no mapping for this host");
	assert_string_equal(route("xapi.bank.example", 0, "/"), "no mapping for this host");
	assert_string_equal(route("", 0, "/"), "no mapping for this host");
	assert_null(router_match(rt, NULL, 0, "/", NULL));
}

static void
t_port_rule(void **state)
{
	(void)state;
	add("std", "h.example", 443, "/");
	add("alt", "h.example", 8443, "/");
	add("eighty", "e.example", 80, "/");
	assert_string_equal(route("h.example", 0, "/"), "std");
	assert_string_equal(route("h.example", 80, "/"), "std");
	assert_string_equal(route("h.example", 443, "/"), "std");
	assert_string_equal(route("h.example", 8443, "/"), "alt");
	assert_string_equal(route("h.example", 8080, "/"),
	    "no mapping for this port of the host");
	/* an https URL with :80 is matched only by an explicit :80 */
	assert_string_equal(route("e.example", 80, "/"), "eighty");
	assert_string_equal(route("e.example", 0, "/"),
	    "no mapping for this port of the host");
}

static void
t_longest_prefix_wins(void **state)
{
	(void)state;
	add("root", "h", 443, "/");
	add("api", "h", 443, "/api");
	add("v2", "h", 443, "/api/v2/");
	add("v2x", "h", 443, "/api/v2/x");
	assert_string_equal(route("h", 0, "/"), "root");
	assert_string_equal(route("h", 0, "/other"), "root");
	assert_string_equal(route("h", 0, "/api"), "api");
	assert_string_equal(route("h", 0, "/api/"), "api");
	assert_string_equal(route("h", 0, "/api/v1/z"), "api");
	assert_string_equal(route("h", 0, "/api/v2"), "v2");
	assert_string_equal(route("h", 0, "/api/v2/y"), "v2");
	assert_string_equal(route("h", 0, "/api/v2/x"), "v2x");
	assert_string_equal(route("h", 0, "/api/v2/xy"), "v2");
	assert_string_equal(route("h", 0, "/apix"), "root");
}

static void
t_prefix_order_independent(void **state)
{
	(void)state;
	add("deep", "h", 443, "/a/b/c");
	add("mid", "h", 443, "/a/b");
	add("top", "h", 443, "/a");
	assert_string_equal(route("h", 0, "/a/b/c/d"), "deep");
	assert_string_equal(route("h", 0, "/a/b/cd"), "mid");
	assert_string_equal(route("h", 0, "/a/bc"), "top");
	assert_string_equal(route("h", 0, "/ab"), "no mapping for this path on the host");
}

static void
t_segment_boundary(void **state)
{
	(void)state;
	assert_true(router_prefix_matches("/api", "/api"));
	assert_true(router_prefix_matches("/api", "/api/x"));
	assert_true(router_prefix_matches("/api", "/api?q=1"));
	assert_true(router_prefix_matches("/api", "/api#f"));
	assert_false(router_prefix_matches("/api", "/apix"));
	assert_false(router_prefix_matches("/api", "/ap"));
	assert_true(router_prefix_matches("/api/", "/api"));
	assert_true(router_prefix_matches("/api/", "/api/"));
	assert_true(router_prefix_matches("/api/", "/api/x"));
	assert_false(router_prefix_matches("/api/", "/apix"));
	assert_true(router_prefix_matches("/", "/"));
	assert_true(router_prefix_matches("/", "/anything/at/all"));
	assert_false(router_prefix_matches("/API", "/api"));
}

static void
t_disabled_returned_and_ties(void **state)
{
	const struct mapping *m;
	(void)state;

	add("old", "h", 443, "/pay/");
	add("new", "h", 443, "/pay");
	add("first", "t", 443, "/");
	add("second", "t", 443, "/");
	add("off", "d", 443, "/");
	cfg->mappings[0].enabled = 0;
	cfg->mappings[4].enabled = 0;
	/* equal normalised prefix: the enabled one wins even though later */
	assert_string_equal(route("h", 0, "/pay/x"), "new");
	/* both enabled: configuration order */
	assert_string_equal(route("t", 0, "/"), "first");
	/* a disabled mapping is still returned; the caller answers 503 */
	m = router_match(rt, "d", 0, "/", NULL);
	assert_non_null(m);
	assert_string_equal(m->name, "off");
	assert_false(m->enabled);
}

static void
t_normalise_percent(void **state)
{
	(void)state;
	add("root", "h", 443, "/");
	add("user", "h", 443, "/~user");
	add("enc", "h", 443, "/a%2fb");
	add("dash", "h", 443, "/x-y");
	assert_string_equal(route("h", 0, "/%7Euser/f"), "user");
	assert_string_equal(route("h", 0, "/%7euser"), "user");
	assert_string_equal(route("h", 0, "/x%2Dy"), "dash");
	/* %2F is reserved: stays encoded (case-normalised), never a '/' */
	assert_string_equal(route("h", 0, "/a%2Fb/c"), "enc");
	assert_string_equal(route("h", 0, "/a/b/c"), "root");
	/* malformed escapes are compared as written */
	assert_string_equal(route("h", 0, "/~user%zz"), "root");
	assert_string_equal(route("h", 0, "/~user%"), "root");
}

static void
t_normalise_dot_segments(void **state)
{
	(void)state;
	add("root", "h", 443, "/");
	add("api", "h", 443, "/api");
	add("admin", "h", 443, "/admin");
	assert_string_equal(route("h", 0, "/api/../admin/x"), "admin");
	assert_string_equal(route("h", 0, "/api/%2e%2e/admin"), "admin");
	assert_string_equal(route("h", 0, "/api/%2E%2E/admin"), "admin");
	assert_string_equal(route("h", 0, "/./api/./x"), "api");
	assert_string_equal(route("h", 0, "/x/../../api"), "api");
	assert_string_equal(route("h", 0, "/api/.."), "root");
	assert_string_equal(route("h", 0, "/admin/x/.."), "admin");
	/* ".." inside a segment is just a name */
	assert_string_equal(route("h", 0, "/api..x"), "root");
	assert_string_equal(route("h", 0, "/api/..x"), "api");
}

/*
 * Found by t_95_hostile against nginx: "/api/..%2Fadmin" and "/api//../admin"
 * matched /api/, and nginx (which decodes %2F before resolving "..", and
 * merges "//") served /admin with the api mapping's certificate.
 */
static void
t_normalise_readings(void **state)
{
	(void)state;
	add("api", "h", 443, "/api/");
	add("enc", "h", 443, "/a%2Fb");
	assert_string_equal(route("h", 0, "/api/..%2Fadmin"),
	    "no mapping for this path on the host");
	assert_string_equal(route("h", 0, "/api/..%2fadmin"),
	    "no mapping for this path on the host");
	assert_string_equal(route("h", 0, "/api/%2e%2e%2fadmin"),
	    "no mapping for this path on the host");
	assert_string_equal(route("h", 0, "/api//../admin"),
	    "no mapping for this path on the host");
	assert_string_equal(route("h", 0, "/api/x//../../admin"),
	    "no mapping for this path on the host");
	/* what stays under the prefix in every reading still matches */
	assert_string_equal(route("h", 0, "/api//x"), "api");
	assert_string_equal(route("h", 0, "/api/x%2Fy"), "api");
	assert_string_equal(route("h", 0, "/api/x/..%2Fy"), "api");
	assert_string_equal(route("h", 0, "/api/x//../y"), "api");
	/* a prefix with %2F is read the same way as the path */
	assert_string_equal(route("h", 0, "/a%2Fb/c"), "enc");
	assert_string_equal(route("h", 0, "/a%2fb"), "enc");
	assert_string_equal(route("h", 0, "/a/b/c"),
	    "no mapping for this path on the host");
}

static void
t_query_ignored(void **state)
{
	(void)state;
	add("api", "h", 443, "/api");
	assert_string_equal(route("h", 0, "/api?next=/other"), "api");
	assert_string_equal(route("h", 0, "/api#x"), "api");
	assert_string_equal(route("h", 0, "/apix?x=/api"),
	    "no mapping for this path on the host");
}

static void
t_unix_listener_excluded(void **state)
{
	char err[128];
	(void)state;

	add("sock", "h", 443, "/");
	add("tcp", "t", 443, "/");
	cfg->mappings[0].listen = xcalloc(1, sizeof(struct listen_spec));
	assert_int_equal(listen_spec_parse("unix:/run/x.sock",
	    cfg->mappings[0].listen, err, sizeof(err)), 0);
	cfg->mappings[1].listen = xcalloc(1, sizeof(struct listen_spec));
	assert_int_equal(listen_spec_parse("127.0.0.1:9001",
	    cfg->mappings[1].listen, err, sizeof(err)), 0);
	assert_string_equal(route("h", 0, "/"), "no mapping for this host");
	assert_string_equal(route("t", 0, "/"), "tcp");
}

static void
t_ipv6_hosts(void **state)
{
	(void)state;
	add("v6", "2001:db8::1", 8443, "/");
	assert_string_equal(route("2001:db8::1", 8443, "/"), "v6");
	assert_string_equal(route("[2001:DB8::1]", 8443, "/"), "v6");
	assert_string_equal(route("[2001:db8::1]", 0, "/"),
	    "no mapping for this port of the host");
}

static void
t_many_hosts_binary_search(void **state)
{
	char host[32], name[32];
	(void)state;

	for (int i = 999; i >= 0; i--) {
		snprintf(host, sizeof(host), "h%03d.example", i);
		snprintf(name, sizeof(name), "m%03d", i);
		add(name, host, 443, "/");
	}
	for (int i = 0; i < 1000; i += 37) {
		snprintf(host, sizeof(host), "H%03d.example", i);
		snprintf(name, sizeof(name), "m%03d", i);
		assert_string_equal(route(host, 0, "/x"), name);
	}
	assert_string_equal(route("h1000.example", 0, "/"), "no mapping for this host");
	assert_string_equal(route("a.example", 0, "/"), "no mapping for this host");
	assert_string_equal(route("z.example", 0, "/"), "no mapping for this host");
}

static void
t_long_path(void **state)
{
	size_t n = 5000;
	char *path = xmalloc(n + 1);
	(void)state;

	add("api", "h", 443, "/api");
	memcpy(path, "/api/", 5);
	memset(path + 5, 'a', n - 5);
	path[n] = '\0';
	assert_string_equal(route("h", 0, path), "api");
	memcpy(path, "/xyz/", 5);
	assert_string_equal(route("h", 0, path), "no mapping for this path on the host");
	free(path);
}

static void
t_reasons(void **state)
{
	char buf[256];
	(void)state;

	add("api", "h.example", 443, "/api");
	rt = router_new(cfg);
	assert_non_null(router_match_reason(rt, "h.example", 0, "/api", buf, sizeof(buf)));
	assert_null(router_match_reason(rt, "x.example", 0, "/", buf, sizeof(buf)));
	assert_string_equal(buf, "no mapping for host x.example");
	assert_null(router_match_reason(rt, "h.example", 8443, "/", buf, sizeof(buf)));
	assert_string_equal(buf, "no mapping for port 8443 of host h.example");
	assert_null(router_match_reason(rt, "h.example", 0, "/other", buf, sizeof(buf)));
	assert_string_equal(buf, "no mapping for path /other on host h.example");
	/* what goes back to the client is printable and bounded */
	assert_null(router_match_reason(rt, "bad\r\nhost", 0, "/", buf, sizeof(buf)));
	assert_string_equal(buf, "no mapping for host bad??host");
	char longhost[300];
	memset(longhost, 'a', sizeof(longhost) - 1);
	longhost[sizeof(longhost) - 1] = '\0';
	assert_null(router_match_reason(rt, longhost, 0, "/", buf, sizeof(buf)));
	assert_true(strlen(buf) < 160);
	assert_non_null(strstr(buf, "..."));
}

static void
t_empty_router(void **state)
{
	(void)state;
	assert_string_equal(route("h", 0, "/"), "no mapping for this host");
}

int
main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(t_host_exact_and_case), T(t_port_rule), T(t_longest_prefix_wins),
		T(t_prefix_order_independent), T(t_segment_boundary),
		T(t_disabled_returned_and_ties), T(t_normalise_percent),
		T(t_normalise_dot_segments), T(t_normalise_readings), T(t_query_ignored),
		T(t_unix_listener_excluded), T(t_ipv6_hosts),
		T(t_many_hosts_binary_search), T(t_long_path), T(t_reasons),
		T(t_empty_router),
	};
#undef T

	return cmocka_run_group_tests(tests, NULL, NULL);
}
