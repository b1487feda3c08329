/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Configuration: defaults, every error class with its exact
 * "file:line:col: message", relative paths, mapping files and listeners.
 * Each test gets a fresh temporary directory holding mtlsd.yaml and
 * mappings.d/.
 */
#include "autoconf.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <ftw.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "log.h"

static char dir[256];
static char mainpath[300];
static struct config_errors errs;
static struct config *cfg;

static int
rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static int
setup(void **state)
{
	(void)state;
	snprintf(dir, sizeof(dir), "/tmp/mtlsd-test-config.XXXXXX");
	if (mkdtemp(dir) == NULL)
		return -1;
	snprintf(mainpath, sizeof(mainpath), "%s/mtlsd.yaml", dir);
	char md[300];
	snprintf(md, sizeof(md), "%s/mappings.d", dir);
	return mkdir(md, 0755);
}

static int
teardown(void **state)
{
	(void)state;
	config_free(cfg);
	cfg = NULL;
	config_errors_clear(&errs);
	return nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static void
write_file(const char *rel, const char *content)
{
	char path[512];
	FILE *fp;

	snprintf(path, sizeof(path), "%s/%s", dir, rel);
	fp = fopen(path, "w");
	assert_non_null(fp);
	fputs(content, fp);
	fclose(fp);
}

static struct config *
load(const char *main_yaml)
{
	write_file("mtlsd.yaml", main_yaml);
	cfg = config_load(mainpath, &errs);
	return cfg;
}

static void
dump_errors(void)
{
	for (size_t i = 0; i < errs.n; i++)
		print_message("  error[%zu]: %s\n", i, errs.msgs[i]);
}

/* Exactly one error, equal to the formatted text. */
static void __attribute__((format(printf, 1, 2)))
expect_only(const char *fmt, ...)
{
	char want[2048];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(want, sizeof(want), fmt, ap);
	va_end(ap);
	assert_null(cfg);
	if (errs.n != 1 || strcmp(errs.msgs[0], want) != 0) {
		print_message("  wanted:   %s\n", want);
		dump_errors();
		fail();
	}
}

static void
expect_ok(void)
{
	if (cfg == NULL || errs.n != 0) {
		dump_errors();
		fail();
	}
}

/* ---------------------------------------------------------------- main */

static void
t_defaults_empty_file(void **state)
{
	char want[2048];
	(void)state;

	load("# nothing but a comment\n");
	expect_ok();
	assert_int_equal(cfg->n_proxy_listen, 1);
	assert_string_equal(cfg->proxy_listen[0].address, "127.0.0.1:3128");
	assert_int_equal(cfg->proxy_listen[0].ss.ss_family, AF_INET);
	assert_null(cfg->admin_listen);
	snprintf(want, sizeof(want), "%s/mappings.d", dir);
	assert_string_equal(cfg->mappings_dir, want);
	snprintf(want, sizeof(want), "%s/certs.d", dir);
	assert_string_equal(cfg->certs_dir, want);
	assert_string_equal(cfg->state_dir, "/var/lib/mtlsd");
	assert_string_equal(cfg->dir, dir);
	assert_int_equal(cfg->rotation.activate, ACTIVATE_IMMEDIATELY);
	assert_int_equal(cfg->rotation.activate_before_expiry_ms, 72ull * 3600000);
	assert_int_equal(cfg->rotation.warn_before_ms, 336ull * 3600000);
	assert_int_equal(cfg->timeouts.connect_ms, 5000);
	assert_int_equal(cfg->timeouts.handshake_ms, 5000);
	assert_int_equal(cfg->timeouts.client_header_ms, 10000);
	assert_int_equal(cfg->timeouts.upstream_response_ms, 30000);
	assert_int_equal(cfg->timeouts.idle_ms, 60000);
	assert_int_equal(cfg->limits.max_connections, 10000);
	assert_int_equal(cfg->limits.max_header_bytes, 32768);
	assert_int_equal(cfg->pool.max_idle_per_destination, 64);
	assert_int_equal(cfg->pool.idle_timeout_ms, 90000);
	assert_int_equal(cfg->pool.surplus_timeout_ms, 5000);
	assert_false(cfg->vault.configured);
	assert_int_equal(cfg->log.level, LOG_LVL_INFO);
	assert_false(cfg->log.json);
	assert_true(cfg->log.access_log);
	assert_int_equal(cfg->workers, 1);
	assert_int_equal(cfg->n_mappings, 0);
	assert_int_equal(cfg->n_files, 1);
	assert_string_equal(cfg->files[0], mainpath);
}

static void
t_every_main_key(void **state)
{
	(void)state;
	load("proxy:\n"
	    "  listen: [\"127.0.0.1:0\", \"[::1]:0\"]\n"
	    "admin:\n"
	    "  listen: \"unix:/run/mtlsd/admin.sock\"\n"
	    "mappings_dir: ./mappings.d/\n"
	    "certs_dir: /etc/mtlsd/certs.d\n"
	    "state_dir: /var/lib/other\n"
	    "rotation: {activate: before-expiry, activate_before_expiry: 48h, "
	    "warn_before: 7d}\n"
	    "timeouts: {connect: 1s, handshake: 2s, client_header: 3s, "
	    "upstream_response: 4s, idle: 250ms}\n"
	    "limits: {max_connections: 5, max_header_bytes: 4096}\n"
	    "pool: {max_idle_per_destination: 0, idle_timeout: 1m30s, surplus_timeout: 0s}\n"
	    "vault:\n"
	    "  address: https://127.0.0.1:8200\n"
	    "  ca_file: vault-ca.pem\n"
	    "  namespace: team-a\n"
	    "  auth: {token_file: /run/secrets/vault-token}\n"
	    "log: {level: debug, format: json, access_log: false}\n"
	    "workers: 4\n");
	expect_ok();
	assert_int_equal(cfg->n_proxy_listen, 2);
	assert_int_equal(cfg->proxy_listen[1].ss.ss_family, AF_INET6);
	assert_non_null(cfg->admin_listen);
	assert_true(cfg->admin_listen->is_unix);
	assert_string_equal(cfg->admin_listen->unix_path, "/run/mtlsd/admin.sock");
	assert_string_equal(cfg->certs_dir, "/etc/mtlsd/certs.d");
	assert_string_equal(cfg->state_dir, "/var/lib/other");
	assert_int_equal(cfg->rotation.activate, ACTIVATE_BEFORE_EXPIRY);
	assert_int_equal(cfg->rotation.activate_before_expiry_ms, 48ull * 3600000);
	assert_int_equal(cfg->rotation.warn_before_ms, 7ull * 86400000);
	assert_int_equal(cfg->timeouts.connect_ms, 1000);
	assert_int_equal(cfg->timeouts.idle_ms, 250);
	assert_int_equal(cfg->limits.max_connections, 5);
	assert_int_equal(cfg->limits.max_header_bytes, 4096);
	assert_int_equal(cfg->pool.max_idle_per_destination, 0);
	assert_int_equal(cfg->pool.idle_timeout_ms, 90000);
	assert_int_equal(cfg->pool.surplus_timeout_ms, 0);
	assert_true(cfg->vault.configured);
	assert_string_equal(cfg->vault.address, "https://127.0.0.1:8200");
	char want[2048];
	snprintf(want, sizeof(want), "%s/vault-ca.pem", dir);
	assert_string_equal(cfg->vault.ca_file, want);
	assert_string_equal(cfg->vault.namespace, "team-a");
	assert_string_equal(cfg->vault.token_file, "/run/secrets/vault-token");
	assert_null(cfg->vault.role_id_file);
	assert_int_equal(cfg->log.level, LOG_LVL_DEBUG);
	assert_true(cfg->log.json);
	assert_false(cfg->log.access_log);
	assert_int_equal(cfg->workers, 4);
}

static void
t_unknown_key_top(void **state)
{
	(void)state;
	load("workers: 2\nfoo: 1\n");
	expect_only("%s:2:1: unknown key 'foo'", mainpath);
}

static void
t_unknown_key_in_section(void **state)
{
	(void)state;
	load("timeouts:\n  conect: 5s\n");
	expect_only("%s:2:3: unknown key 'conect' in 'timeouts'", mainpath);
}

static void
t_bad_duration(void **state)
{
	(void)state;
	load("timeouts:\n  connect: fast\n");
	expect_only("%s:2:12: timeouts.connect: expected a duration like 5s, "
	    "250ms, 72h, got 'fast'", mainpath);
}

static void
t_duration_below_minimum(void **state)
{
	(void)state;
	load("timeouts: {idle: 0s}\n");
	expect_only("%s:1:18: timeouts.idle: must be at least 1ms, got 0s", mainpath);
}

static void
t_busy_poll(void **state)
{
	(void)state;
	load("# defaults\n");
	expect_ok();
	assert_true(cfg->busy_poll_us == 50);
	config_free(cfg);
	load("busy_poll: 250us\n");
	expect_ok();
	assert_true(cfg->busy_poll_us == 250);
	config_free(cfg);
	load("busy_poll: 0\n");
	expect_ok();
	assert_true(cfg->busy_poll_us == 0);
	config_free(cfg);
	load("busy_poll: 1ms\n");
	expect_ok();
	assert_true(cfg->busy_poll_us == 1000);
	config_free(cfg);
	load("busy_poll: 2ms\n");
	expect_only("%s:1:12: busy_poll: must be at most 1ms, got 2ms", mainpath);
	config_errors_clear(&errs);
	load("busy_poll: 50\n");
	expect_only("%s:1:12: busy_poll: expected a duration like 50us, 1ms, or 0, "
	    "got '50'", mainpath);
}

static void
t_workers_below_one(void **state)
{
	(void)state;
	load("workers: 0\n");
	expect_only("%s:1:10: workers: must be between 1 and 1024, got 0", mainpath);
	config_errors_clear(&errs);
	load("workers: -3\n");
	expect_only("%s:1:10: workers: must be between 1 and 1024, got -3", mainpath);
	config_errors_clear(&errs);
	load("workers: many\n");
	expect_only("%s:1:10: workers: expected a whole number, got 'many'", mainpath);
}

static void
t_bad_bool_enum_section(void **state)
{
	(void)state;
	load("log:\n  access_log: maybe\n  level: loud\n"
	    "rotation: {activate: later}\n"
	    "timeouts: 5s\n"
	    "limits: {max_header_bytes: 10}\n");
	assert_null(cfg);
	assert_int_equal(errs.n, 5);
	char want[2048];
	snprintf(want, sizeof(want), "%s:2:15: log.access_log: expected true or "
	    "false, got 'maybe'", mainpath);
	assert_string_equal(errs.msgs[0], want);
	snprintf(want, sizeof(want), "%s:3:10: log.level: expected one of error, "
	    "warn, info, debug, got 'loud'", mainpath);
	assert_string_equal(errs.msgs[1], want);
	snprintf(want, sizeof(want), "%s:4:22: rotation.activate: expected one of "
	    "immediately, before-expiry, got 'later'", mainpath);
	assert_string_equal(errs.msgs[2], want);
	snprintf(want, sizeof(want), "%s:5:11: timeouts: expected a map of keys, "
	    "got '5s'", mainpath);
	assert_string_equal(errs.msgs[3], want);
	snprintf(want, sizeof(want), "%s:6:28: limits.max_header_bytes: must be "
	    "between 1024 and 1048576, got 10", mainpath);
	assert_string_equal(errs.msgs[4], want);
}

static void
t_duplicate_key(void **state)
{
	(void)state;
	load("timeouts:\n  connect: 1s\n  connect: 2s\n");
	expect_only("%s:3:3: duplicate key 'timeouts.connect' (first at line 2, "
	    "column 3)", mainpath);
}

static void
t_yaml_syntax_error(void **state)
{
	(void)state;
	load("proxy:\n  listen: [\"127.0.0.1:1\"\nworkers: 1\n");
	expect_only("%s:3:1: YAML syntax error: did not find expected ',' or ']' "
	    "(while parsing a flow sequence at line 2, column 11)", mainpath);
	config_errors_clear(&errs);
	load("a: b: c\n");
	expect_only("%s:1:5: YAML syntax error: mapping values are not allowed "
	    "in this context", mainpath);
}

static void
t_invalid_utf8(void **state)
{
	(void)state;
	load("workers: 1\nlog: {level: \"\xff\"}\n");
	assert_null(cfg);
	assert_int_equal(errs.n, 1);
	char want[2048];
	snprintf(want, sizeof(want), "%s:2:15: YAML syntax error: invalid ", mainpath);
	assert_memory_equal(errs.msgs[0], want, strlen(want));
}

static void
t_top_level_not_a_map(void **state)
{
	(void)state;
	load("- a\n- b\n");
	expect_only("%s:1:1: expected a map of keys at the top of the file", mainpath);
}

static void
t_second_document(void **state)
{
	(void)state;
	load("workers: 1\n---\nworkers: 2\n");
	expect_only("%s:3:1: only one YAML document per file is read; remove the "
	    "second one", mainpath);
}

static void
t_main_file_missing(void **state)
{
	(void)state;
	cfg = config_load("/nonexistent/mtlsd.yaml", &errs);
	expect_only("/nonexistent/mtlsd.yaml: cannot read: No such file or directory");
}

static void
t_null_values_are_unset(void **state)
{
	(void)state;
	load("admin:\n  listen:\nvault: ~\nmappings:\n");
	expect_ok();
	assert_null(cfg->admin_listen);
	assert_false(cfg->vault.configured);
}

static void
t_relative_paths(void **state)
{
	char want[2048], cwd[PATH_MAX];
	(void)state;

	assert_int_equal(mkdir(strcat(strcpy(want, dir), "/maps"), 0755), 0);
	write_file("mtlsd.yaml", "mappings_dir: maps\ncerts_dir: ./c//d/\n"
	    "state_dir: st\n");
	assert_non_null(getcwd(cwd, sizeof(cwd)));
	assert_int_equal(chdir(dir), 0);
	cfg = config_load("./mtlsd.yaml", &errs);
	assert_int_equal(chdir(cwd), 0);
	expect_ok();
	assert_string_equal(cfg->dir, dir);
	assert_string_equal(cfg->path, "./mtlsd.yaml");
	snprintf(want, sizeof(want), "%s/maps", dir);
	assert_string_equal(cfg->mappings_dir, want);
	snprintf(want, sizeof(want), "%s/c/d", dir);
	assert_string_equal(cfg->certs_dir, want);
	snprintf(want, sizeof(want), "%s/st", dir);
	assert_string_equal(cfg->state_dir, want);
}

static void
t_mappings_dir_missing(void **state)
{
	(void)state;
	load("mappings_dir: elsewhere\n");
	expect_only("%s:1:1: mappings_dir '%s/elsewhere': No such file or directory",
	    mainpath, dir);
	config_errors_clear(&errs);
	char md[300];
	snprintf(md, sizeof(md), "%s/mappings.d", dir);
	assert_int_equal(rmdir(md), 0);
	load("workers: 1\n");
	expect_only("%s: mappings_dir '%s/mappings.d': No such file or directory",
	    mainpath, dir);
}

static void
t_main_file_inside_mappings_dir(void **state)
{
	(void)state;
	write_file("other.yaml", "mappings:\n  - {name: o, url: https://o/, "
	    "certificate: c}\n");
	load("mappings_dir: .\nmappings:\n  - {name: m, url: https://m/, "
	    "certificate: c}\n");
	expect_ok();
	assert_int_equal(cfg->n_mappings, 2);
	assert_string_equal(cfg->mappings[1].name, "o");
}

static void
t_vault_checks(void **state)
{
	(void)state;
	load("vault:\n  address: https://v:8200\n"
	    "  auth: {approle: {role_id_file: r, secret_id_file: /s}}\n");
	expect_ok();
	char want[2048];
	snprintf(want, sizeof(want), "%s/r", dir);
	assert_string_equal(cfg->vault.role_id_file, want);
	assert_string_equal(cfg->vault.secret_id_file, "/s");
	config_free(cfg);
	cfg = NULL;

	load("vault:\n  ca_file: x.pem\n");
	assert_null(cfg);
	assert_int_equal(errs.n, 2);
	snprintf(want, sizeof(want), "%s:2:3: missing required key 'address' in "
	    "'vault'", mainpath);
	assert_string_equal(errs.msgs[0], want);
	snprintf(want, sizeof(want), "%s:2:3: missing required key 'auth' in "
	    "'vault'", mainpath);
	assert_string_equal(errs.msgs[1], want);
	config_errors_clear(&errs);

	load("vault:\n  address: ftp://x\n  auth:\n    token_file: t\n"
	    "    approle: {role_id_file: a}\n");
	assert_null(cfg);
	assert_int_equal(errs.n, 3);
	snprintf(want, sizeof(want), "%s:2:12: vault.address: expected an address "
	    "like https://127.0.0.1:8200, got 'ftp://x'", mainpath);
	assert_string_equal(errs.msgs[0], want);
	snprintf(want, sizeof(want), "%s:5:14: missing required key "
	    "'secret_id_file' in 'vault.auth.approle'", mainpath);
	assert_string_equal(errs.msgs[1], want);
	snprintf(want, sizeof(want), "%s:3:3: vault.auth: use either token_file "
	    "or approle, not both", mainpath);
	assert_string_equal(errs.msgs[2], want);
}

static void
t_aliases_work(void **state)
{
	(void)state;
	load("timeouts: &t {connect: 2s}\n"
	    "mappings:\n"
	    "  - &m {name: a, url: https://a.example/, certificate: c}\n"
	    "  - {name: b, url: https://b.example/, certificate: c}\n");
	expect_ok();
	assert_int_equal(cfg->n_mappings, 2);
	assert_int_equal(cfg->timeouts.connect_ms, 2000);
}

/* ------------------------------------------------------------ mappings */

static void
t_mapping_defaults(void **state)
{
	const struct mapping *m;
	(void)state;

	write_file("mappings.d/one.yaml", "mappings:\n"
	    "  - name: bank\n"
	    "    url: https://API.Bank.Example./\n"
	    "    certificate: bank-client\n");
	load("");
	expect_ok();
	assert_int_equal(cfg->n_mappings, 1);
	m = &cfg->mappings[0];
	assert_string_equal(m->name, "bank");
	assert_string_equal(m->url, "https://API.Bank.Example./");
	assert_string_equal(m->host, "api.bank.example");
	assert_int_equal(m->port, 443);
	assert_string_equal(m->path_prefix, "/");
	assert_null(m->listen);
	assert_string_equal(m->certificate, "bank-client");
	assert_null(m->trust_ca_file);
	assert_int_equal(m->n_pins, 0);
	assert_string_equal(m->server_name, "api.bank.example");
	assert_true(m->validate);
	assert_true(m->enabled);
	assert_false(m->has_rate_limit);
	assert_int_equal(m->pos.line, 2);
	assert_int_equal(m->pos.col, 5);
	assert_int_equal(cfg->n_files, 2);
	assert_string_equal(m->pos.file, cfg->files[1]);
	assert_ptr_equal(config_find_mapping(cfg, "bank"), m);
	assert_null(config_find_mapping(cfg, "nope"));
}

static void
t_mapping_every_key(void **state)
{
	const struct mapping *m;
	(void)state;

	write_file("bank-root.pem", "not parsed here\n");
	write_file("mappings.d/bank.yaml", "mappings:\n"
	    "  - name: bank-openbanking\n"
	    "    url: https://[2001:DB8::1]:8443/open-banking/\n"
	    "    listen: 127.0.0.1:9001\n"
	    "    certificate: bank-client\n"
	    "    trust:\n"
	    "      ca_file: bank-root.pem\n"
	    "      pin_sha256:\n"
	    "        - \"47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\"\n"
	    "        - E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855\n"
	    "    server_name: API.bank.example.\n"
	    "    validate: false\n"
	    "    enabled: no\n"
	    "    rate_limit: 2.5/s\n");
	load("");
	expect_ok();
	m = &cfg->mappings[0];
	assert_string_equal(m->host, "2001:db8::1");
	assert_int_equal(m->port, 8443);
	assert_string_equal(m->path_prefix, "/open-banking/");
	assert_non_null(m->listen);
	assert_string_equal(m->listen->address, "127.0.0.1:9001");
	char want[2048];
	snprintf(want, sizeof(want), "%s/bank-root.pem", dir);
	assert_string_equal(m->trust_ca_file, want);
	assert_int_equal(m->n_pins, 2);
	/* SHA-256 of the empty string, in base64 and in hex */
	static const uint8_t empty_sha[32] = {
		0xe3, 0xb0, 0xc4, 0x42, 0x98, 0xfc, 0x1c, 0x14, 0x9a, 0xfb, 0xf4,
		0xc8, 0x99, 0x6f, 0xb9, 0x24, 0x27, 0xae, 0x41, 0xe4, 0x64, 0x9b,
		0x93, 0x4c, 0xa4, 0x95, 0x99, 0x1b, 0x78, 0x52, 0xb8, 0x55,
	};
	assert_memory_equal(m->pins[0], empty_sha, 32);
	assert_memory_equal(m->pins[1], empty_sha, 32);
	assert_string_equal(m->server_name, "api.bank.example");
	assert_false(m->validate);
	assert_false(m->enabled);
	assert_true(m->has_rate_limit);
	assert_true(m->rate_per_sec == 2.5);
	assert_int_equal(m->rate_burst, 3);
}

static void
t_many_files_sorted_and_filtered(void **state)
{
	(void)state;
	write_file("mappings.d/20-b.yaml", "mappings:\n"
	    "  - {name: b1, url: https://b.example/1, certificate: c}\n"
	    "  - {name: b2, url: https://b.example/2, certificate: c}\n");
	write_file("mappings.d/10-a.yml", "mappings:\n"
	    "  - {name: a1, url: https://a.example/, certificate: c}\n");
	write_file("mappings.d/30-c.yaml", "# empty while being written\n");
	write_file("mappings.d/example.yaml.disabled", "garbage: [\n");
	write_file("mappings.d/.hidden.yaml", "garbage: [\n");
	write_file("mappings.d/README", "garbage: [\n");
	write_file("mappings.d/40-d.yaml", "mappings: []\n");
	load("mappings:\n  - {name: main, url: https://m.example/, certificate: c}\n");
	expect_ok();
	assert_int_equal(cfg->n_mappings, 4);
	assert_string_equal(cfg->mappings[0].name, "main");
	assert_string_equal(cfg->mappings[1].name, "a1");
	assert_string_equal(cfg->mappings[2].name, "b1");
	assert_string_equal(cfg->mappings[3].name, "b2");
	assert_string_equal(cfg->mappings[3].path_prefix, "/2");
	assert_int_equal(cfg->n_files, 5);
}

static void
t_mapping_file_only_mappings(void **state)
{
	(void)state;
	write_file("mappings.d/x.yaml", "workers: 2\nmappings: []\n");
	load("");
	expect_only("%s/mappings.d/x.yaml:1:1: unknown key 'workers' in a mappings "
	    "file (only 'mappings' belongs here)", dir);
}

static void
t_mapping_missing_required(void **state)
{
	(void)state;
	write_file("mappings.d/x.yaml", "mappings:\n  - name: a\n    listen: "
	    "127.0.0.1:0\n");
	load("");
	assert_null(cfg);
	assert_int_equal(errs.n, 2);
	char want[2048];
	snprintf(want, sizeof(want), "%s/mappings.d/x.yaml:2:5: missing required key "
	    "'url' in mapping", dir);
	assert_string_equal(errs.msgs[0], want);
	snprintf(want, sizeof(want), "%s/mappings.d/x.yaml:2:5: missing required key "
	    "'certificate' in mapping", dir);
	assert_string_equal(errs.msgs[1], want);
}

static void
t_mapping_unknown_and_bad_items(void **state)
{
	(void)state;
	write_file("mappings.d/x.yaml", "mappings:\n"
	    "  - just-a-string\n"
	    "  - {name: a, url: https://a/, certificate: c, trust: {cafile: x}}\n"
	    "  - {name: b, url: https://b/, certificate: c, colour: red}\n");
	load("");
	assert_null(cfg);
	assert_int_equal(errs.n, 3);
	char want[2048];
	snprintf(want, sizeof(want), "%s/mappings.d/x.yaml:2:5: mappings: expected "
	    "a list of mappings, got 'just-a-string'", dir);
	assert_string_equal(errs.msgs[0], want);
	snprintf(want, sizeof(want), "%s/mappings.d/x.yaml:3:56: unknown key "
	    "'cafile' in 'trust'", dir);
	assert_string_equal(errs.msgs[1], want);
	snprintf(want, sizeof(want), "%s/mappings.d/x.yaml:4:48: unknown key "
	    "'colour' in mapping", dir);
	assert_string_equal(errs.msgs[2], want);
}

struct url_case {
	const char *url;
	const char *why;	/* NULL: valid */
	const char *host;
	unsigned port;
	const char *prefix;
};

static void
t_mapping_urls(void **state)
{
	static const struct url_case cases[] = {
		{ "https://a.example", NULL, "a.example", 443, "/" },
		{ "HTTPS://A.EXAMPLE:1/x/y", NULL, "a.example", 1, "/x/y" },
		{ "https://10.1.2.3:65535/", NULL, "10.1.2.3", 65535, "/" },
		{ "https://[::1]/api", NULL, "::1", 443, "/api" },
		{ "https://x_y.example./", NULL, "x_y.example", 443, "/" },
		{ .url = "http://a.example/", .why = "the scheme must be https (mtlsd only "
		    "forwards over mutual TLS)" },
		{ .url = "ftp://a.example/", .why = "expected https://host[:port]/path" },
		{ .url = "https://user:pw@a.example/", .why = "user information (user@) is not "
		    "allowed" },
		{ .url = "https://a.example/x?y=1", .why = "a query or fragment is not allowed" },
		{ .url = "https://a.example/#frag", .why = "a query or fragment is not allowed" },
		{ .url = "https://a.example:0/", .why = "the port must be a number from 1 to 65535" },
		{ .url = "https://a.example:65536/", .why = "the port must be a number from 1 to 65535" },
		{ .url = "https://a.example:/", .why = "the port must be a number from 1 to 65535" },
		{ .url = "https:///x", .why = "missing or invalid host" },
		{ .url = "https://a..b/", .why = "missing or invalid host" },
		{ .url = "https://a b/", .why = "missing or invalid host" },
		{ .url = "https://[nothex]/", .why = "only IPv6 addresses go in brackets" },
		{ .url = "https://::1/", .why = "missing or invalid host" },
		{ .url = "https://a/x/../y", .why = "the path must be printable and have no '.' or "
		    "'..' segments" },
		{ .url = "https://a/x/./", .why = "the path must be printable and have no '.' or "
		    "'..' segments" },
	};
	char yaml[512], want[2048];
	(void)state;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct url_case *c = &cases[i];
		snprintf(yaml, sizeof(yaml), "mappings:\n- name: m\n  certificate: c\n"
		    "  url: \"%s\"\n", c->url);
		load(yaml);
		if (c->why == NULL) {
			expect_ok();
			assert_string_equal(cfg->mappings[0].host, c->host);
			assert_int_equal(cfg->mappings[0].port, c->port);
			assert_string_equal(cfg->mappings[0].path_prefix, c->prefix);
			config_free(cfg);
			cfg = NULL;
			continue;
		}
		snprintf(want, sizeof(want), "%s:4:8: url '%s': %s", mainpath, c->url,
		    c->why);
		if (cfg != NULL || errs.n != 1 || strcmp(errs.msgs[0], want) != 0) {
			print_message("  url %s: wanted %s\n", c->url, want);
			dump_errors();
			fail();
		}
		config_errors_clear(&errs);
	}
}

static void
t_mapping_names(void **state)
{
	(void)state;
	load("mappings:\n"
	    "  - {name: \"a/b\", url: https://a/, certificate: ok}\n"
	    "  - {name: ok, url: https://a/, certificate: ../etc}\n"
	    "  - {name: ok2, url: https://a/, certificate: a/b}\n"
	    "  - {name: ok3, url: https://a/, certificate: .hidden}\n");
	assert_null(cfg);
	assert_int_equal(errs.n, 4);
	char want[2048];
	snprintf(want, sizeof(want), "%s:2:12: name: expected a name of letters, "
	    "digits, '.', '_' and '-', got 'a/b'", mainpath);
	assert_string_equal(errs.msgs[0], want);
	snprintf(want, sizeof(want), "%s:3:46: certificate: expected a certificate "
	    "name of letters, digits, '.', '_' and '-' (no '/' or '..'), got "
	    "'../etc'", mainpath);
	assert_string_equal(errs.msgs[1], want);
	assert_non_null(strstr(errs.msgs[2], ":4:47: certificate: expected"));
	assert_non_null(strstr(errs.msgs[3], ":5:47: certificate: expected"));
}

static void
t_duplicate_mapping_names(void **state)
{
	(void)state;
	write_file("mappings.d/a.yaml", "mappings:\n"
	    "  - {name: dup, url: https://a/, certificate: c}\n");
	write_file("mappings.d/b.yaml", "\nmappings:\n"
	    "  - {name: other, url: https://a/, certificate: c}\n"
	    "  - {name: dup, url: https://b/, certificate: c}\n");
	load("");
	expect_only("%s/mappings.d/b.yaml:4:5: duplicate mapping name 'dup' (first "
	    "defined at %s/mappings.d/a.yaml:2:5)", dir, dir);
}

static void
t_trust_ca_file_unreadable(void **state)
{
	(void)state;
	load("mappings:\n  - name: a\n    url: https://a/\n    certificate: c\n"
	    "    trust: {ca_file: missing.pem}\n");
	expect_only("%s:5:22: trust.ca_file: cannot read '%s/missing.pem': No such "
	    "file or directory", mainpath, dir);
	config_errors_clear(&errs);
	load("mappings:\n  - name: a\n    url: https://a/\n    certificate: c\n"
	    "    trust: {ca_file: /}\n");
	expect_only("%s:5:22: trust.ca_file: '/' is not a regular file", mainpath);
}

static void
t_pins_and_rates(void **state)
{
	(void)state;
	load("mappings:\n"
	    "  - {name: a, url: https://a/, certificate: c, rate_limit: 600/m}\n"
	    "  - {name: b, url: https://a/, certificate: c, rate_limit: 100/h}\n"
	    "  - {name: c, url: https://a/, certificate: c, rate_limit: 10/s}\n");
	expect_ok();
	assert_true(cfg->mappings[0].rate_per_sec == 10.0);
	assert_int_equal(cfg->mappings[0].rate_burst, 10);
	assert_true(cfg->mappings[1].rate_per_sec > 0.0277 &&
	    cfg->mappings[1].rate_per_sec < 0.0278);
	assert_int_equal(cfg->mappings[1].rate_burst, 1);
	assert_int_equal(cfg->mappings[2].rate_burst, 10);
	config_free(cfg);
	cfg = NULL;

	load("mappings:\n"
	    "  - {name: a, url: https://a/, certificate: c, rate_limit: 10/d}\n"
	    "  - name: b\n    url: https://a/\n    certificate: c\n"
	    "    trust: {pin_sha256: [abcd]}\n"
	    "  - name: c\n    url: https://a/\n    certificate: c\n"
	    "    trust: {pin_sha256: \"47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\"}\n");
	assert_null(cfg);
	assert_int_equal(errs.n, 3);
	char want[2048];
	snprintf(want, sizeof(want), "%s:2:60: rate_limit: expected a rate like "
	    "10/s, 600/m, 100/h, got '10/d'", mainpath);
	assert_string_equal(errs.msgs[0], want);
	snprintf(want, sizeof(want), "%s:6:26: trust.pin_sha256: expected a list "
	    "of SHA-256 pins (44 base64 or 64 hex characters), got 'abcd'", mainpath);
	assert_string_equal(errs.msgs[1], want);
	assert_non_null(strstr(errs.msgs[2], ":10:25: trust.pin_sha256: expected"));
}

/* ----------------------------------------------------------- listeners */

static void
t_listen_spec_parse(void **state)
{
	static const struct { const char *s; int ok; int family; unsigned port; } cases[] = {
		{ "127.0.0.1:3128", 1, AF_INET, 3128 },
		{ "localhost:0", 1, AF_INET, 0 },
		{ "LOCALHOST:80", 1, AF_INET, 80 },
		{ "[::1]:3128", 1, AF_INET6, 3128 },
		{ "0.0.0.0:65535", 1, AF_INET, 65535 },
		{ "unix:/run/x.sock", 1, AF_UNIX, 0 },
		{ .s = "unix:relative.sock" }, { .s = "127.0.0.1" }, { .s = "127.0.0.1:" },
		{ .s = "127.0.0.1:65536" }, { .s = "127.0.0.1:-1" }, { .s = "::1:3128" },
		{ .s = "[::1]3128" }, { .s = "example.com:443" }, { .s = "127.1:80" },
		{ .s = ":3128" }, { .s = "" }, { .s = "[127.0.0.1]:80" },
	};
	struct listen_spec ls;
	char err[200];
	(void)state;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int rc = listen_spec_parse(cases[i].s, &ls, err, sizeof(err));
		if ((rc == 0) != cases[i].ok)
			fail_msg("%s: rc %d (%s)", cases[i].s, rc, err);
		if (rc < 0) {
			assert_null(ls.address);
			continue;
		}
		assert_string_equal(ls.address, cases[i].s);
		assert_int_equal(ls.ss.ss_family, cases[i].family);
		if (cases[i].family == AF_INET)
			assert_int_equal(ntohs(((struct sockaddr_in *)&ls.ss)->sin_port),
			    cases[i].port);
		if (cases[i].family == AF_INET6)
			assert_int_equal(ntohs(((struct sockaddr_in6 *)&ls.ss)->sin6_port),
			    cases[i].port);
		listen_spec_clear(&ls);
	}
	assert_int_equal(listen_spec_parse("localhost:1", &ls, err, sizeof(err)), 0);
	assert_int_equal(ntohl(((struct sockaddr_in *)&ls.ss)->sin_addr.s_addr),
	    0x7f000001);
	listen_spec_clear(&ls);
	assert_int_equal(listen_spec_parse("example.com:443", &ls, err, sizeof(err)), -1);
	assert_string_equal(err, "'example.com' is not a numeric IP address "
	    "(names other than localhost are never resolved)");
}

static void
t_listen_loopback(void **state)
{
	static const struct { const char *s; int loop; } cases[] = {
		{ "127.0.0.1:1", 1 }, { "127.255.0.9:1", 1 }, { "[::1]:1", 1 },
		{ "[::ffff:127.0.0.1]:1", 1 }, { "unix:/x", 1 }, { "10.0.0.1:1", 0 },
		{ "0.0.0.0:1", 0 }, { "[::]:1", 0 }, { "128.0.0.1:1", 0 },
	};
	struct listen_spec ls;
	char err[200];
	(void)state;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		assert_int_equal(listen_spec_parse(cases[i].s, &ls, err, sizeof(err)), 0);
		if (listen_spec_is_loopback(&ls) != cases[i].loop)
			fail_msg("%s", cases[i].s);
		listen_spec_clear(&ls);
	}
}

static void
t_listen_remote_needs_allow(void **state)
{
	(void)state;
	load("mappings:\n  - name: a\n    url: https://a/\n    certificate: c\n"
	    "    listen: 0.0.0.0:9001\n");
	expect_only("%s:5:13: listening on 0.0.0.0:9001 would let anyone who can "
	    "reach it use our client certificates; set allow_remote: true to allow "
	    "it", mainpath);
	config_errors_clear(&errs);
	load("admin: {listen: \"10.0.0.1:9901\"}\n");
	expect_only("%s:1:17: listening on 10.0.0.1:9901 would let anyone who can "
	    "reach it use the admin endpoint; set allow_remote: true to allow it",
	    mainpath);
	config_errors_clear(&errs);
	load("proxy:\n  listen:\n    - {address: \"0.0.0.0:0\", allow_remote: true}\n");
	expect_ok();
	assert_true(cfg->proxy_listen[0].allow_remote);
}

static void
t_listen_map_form_unix(void **state)
{
	(void)state;
	load("admin:\n  listen:\n    address: unix:/run/mtlsd/admin.sock\n"
	    "    mode: 0660\n    group: mtlsd\n    allowed_uids: [0, root, 1234]\n");
	expect_ok();
	const struct listen_spec *ls = cfg->admin_listen;
	assert_true(ls->is_unix);
	assert_true(ls->has_mode);
	assert_int_equal(ls->mode, 0660);
	assert_string_equal(ls->group, "mtlsd");
	assert_int_equal(ls->n_allowed_uids, 3);
	assert_int_equal(ls->allowed_uids[0], 0);
	assert_int_equal(ls->allowed_uids[1], 0);
	assert_int_equal(ls->allowed_uids[2], 1234);
	assert_int_equal(ls->pos.line, 3);
	assert_int_equal(ls->pos.col, 5);
}

static void
t_listen_map_form_errors(void **state)
{
	(void)state;
	load("proxy:\n  listen:\n"
	    "    - {address: \"127.0.0.1:0\", mode: \"0600\"}\n"
	    "    - {address: \"unix:/x\", mode: \"0989\"}\n"
	    "    - {address: \"unix:/y\", allowed_uids: [no-such-user-xyz]}\n"
	    "    - {mode: \"0600\"}\n"
	    "    - {address: \"unix:/z\", colour: red}\n"
	    "    - \"nonsense\"\n");
	assert_null(cfg);
	assert_int_equal(errs.n, 6);
	char want[2048];
	snprintf(want, sizeof(want), "%s:3:7: proxy.listen: mode, group and "
	    "allowed_uids apply only to unix: listeners", mainpath);
	assert_string_equal(errs.msgs[0], want);
	snprintf(want, sizeof(want), "%s:4:34: mode: expected an octal file mode "
	    "like 0660, got '0989'", mainpath);
	assert_string_equal(errs.msgs[1], want);
	snprintf(want, sizeof(want), "%s:5:43: allowed_uids: unknown user "
	    "'no-such-user-xyz'", mainpath);
	assert_string_equal(errs.msgs[2], want);
	snprintf(want, sizeof(want), "%s:6:7: missing required key 'address' in "
	    "listener", mainpath);
	assert_string_equal(errs.msgs[3], want);
	snprintf(want, sizeof(want), "%s:7:28: unknown key 'colour' in listener",
	    mainpath);
	assert_string_equal(errs.msgs[4], want);
	snprintf(want, sizeof(want), "%s:8:7: proxy.listen: invalid listener "
	    "'nonsense': missing :port", mainpath);
	assert_string_equal(errs.msgs[5], want);
}

static void
t_duplicate_listeners(void **state)
{
	(void)state;
	load("proxy: {listen: [\"127.0.0.1:9001\", \"127.0.0.1:0\"]}\n"
	    "admin: {listen: \"127.0.0.1:0\"}\n"
	    "mappings:\n"
	    "  - {name: a, url: https://a/, certificate: c, listen: \"127.0.0.1:9001\"}\n"
	    "  - {name: b, url: https://a/, certificate: c, listen: \"unix:/s\"}\n"
	    "  - {name: c, url: https://a/, certificate: c, listen: \"unix:/s\"}\n"
	    "  - {name: d, url: https://a/, certificate: c, listen: "
	    "{address: \"0.0.0.0:9001\", allow_remote: true}}\n");
	assert_null(cfg);
	assert_int_equal(errs.n, 3);
	char want[2048];
	snprintf(want, sizeof(want), "%s:4:56: listen address '127.0.0.1:9001' is "
	    "already used by proxy.listen at %s:1:18", mainpath, mainpath);
	assert_string_equal(errs.msgs[0], want);
	snprintf(want, sizeof(want), "%s:6:56: listen address 'unix:/s' is already "
	    "used by mapping 'b' at %s:5:56", mainpath, mainpath);
	assert_string_equal(errs.msgs[1], want);
	snprintf(want, sizeof(want), "%s:7:56: listen address '0.0.0.0:9001' is "
	    "already used by proxy.listen at %s:1:18", mainpath, mainpath);
	assert_string_equal(errs.msgs[2], want);
}

static void
t_duplicate_default_listener(void **state)
{
	(void)state;
	load("admin: {listen: \"localhost:3128\"}\n");
	expect_only("%s:1:17: listen address 'localhost:3128' is already used by "
	    "proxy.listen (its default)", mainpath);
}

/* ------------------------------------------------- collecting, dumping */

static void
t_errors_across_files_collected(void **state)
{
	(void)state;
	write_file("mappings.d/a.yaml", "mappings:\n  - {name: x, url: http://a/, "
	    "certificate: c}\n");
	write_file("mappings.d/b.yaml", "mappings: [\n");
	load("workers: 0\n");
	assert_null(cfg);
	assert_int_equal(errs.n, 3);
	assert_non_null(strstr(errs.msgs[0], "mtlsd.yaml:1:10: workers:"));
	assert_non_null(strstr(errs.msgs[1], "mappings.d/a.yaml:2:20: url 'http://a/'"));
	assert_non_null(strstr(errs.msgs[2], "mappings.d/b.yaml:2:1: YAML syntax error"));
}

static void
t_restart_needed(void **state)
{
	struct config *a, *b;
	(void)state;

	write_file("a.yaml", "workers: 2\ntimeouts: {connect: 1s}\n");
	write_file("b.yaml", "workers: 2\ntimeouts: {connect: 9s}\n");
	write_file("c.yaml", "workers: 3\n");
	write_file("d.yaml", "workers: 2\nproxy: {listen: \"127.0.0.1:3129\"}\n");
	char p[300];
	snprintf(p, sizeof(p), "%s/a.yaml", dir);
	a = config_load(p, &errs);
	snprintf(p, sizeof(p), "%s/b.yaml", dir);
	b = config_load(p, &errs);
	assert_non_null(a);
	assert_non_null(b);
	assert_null(config_restart_needed(a, b));
	config_free(b);
	snprintf(p, sizeof(p), "%s/c.yaml", dir);
	b = config_load(p, &errs);
	assert_string_equal(config_restart_needed(a, b), "workers");
	config_free(b);
	snprintf(p, sizeof(p), "%s/d.yaml", dir);
	b = config_load(p, &errs);
	assert_null(config_restart_needed(a, b));        /* listeners follow a reload */
	config_free(b);
	write_file("e.yaml", "workers: 2\nbusy_poll: 0\n");
	snprintf(p, sizeof(p), "%s/e.yaml", dir);
	b = config_load(p, &errs);
	assert_null(config_restart_needed(a, b));        /* a reload applies it */
	config_free(b);
	config_free(a);
}

static void
t_dump(void **state)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *fp;
	(void)state;

	load("timeouts: {connect: 1500ms}\nmappings:\n"
	    "  - {name: a, url: https://a/x, certificate: c, rate_limit: 5/s}\n");
	expect_ok();
	fp = open_memstream(&buf, &len);
	config_dump(cfg, fp);
	fclose(fp);
	assert_memory_equal(buf, "proxy.listen: [127.0.0.1:3128]\n", 31);
	assert_non_null(strstr(buf, "\ntimeouts.connect: 1500ms\n"));
	assert_non_null(strstr(buf, "\nrotation.activate: immediately\n"));
	assert_non_null(strstr(buf, "\nlog.level: info\n"));
	assert_non_null(strstr(buf, "\nbusy_poll: 50us\n"));
	assert_non_null(strstr(buf, "\nmappings.a.url: https://a/x\n"));
	assert_non_null(strstr(buf, "\nmappings.a.rate_limit: 5/s burst 5\n"));
	assert_non_null(strstr(buf, "\nmappings.a.enabled: true\n"));
	free(buf);
}

/* ------------------------------------------------------------ fixtures */

static void
t_fixture_good(void **state)
{
	const char *data = getenv("MTLSD_TEST_DATA");
	char path[PATH_MAX];
	(void)state;

	if (data == NULL)
		skip();
	snprintf(path, sizeof(path), "%s/config/good/mtlsd.yaml", data);
	cfg = config_load(path, &errs);
	expect_ok();
	assert_int_equal(cfg->n_mappings, 4);
	assert_string_equal(cfg->mappings[0].name, "bank-openbanking");
	assert_string_equal(cfg->mappings[1].name, "bank-payments");
	assert_string_equal(cfg->mappings[2].name, "partner");
	assert_string_equal(cfg->mappings[3].name, "partner-legacy");
	assert_false(cfg->mappings[3].enabled);
	assert_non_null(cfg->mappings[0].trust_ca_file);
	assert_non_null(strstr(cfg->mappings[0].trust_ca_file,
	    "/config/good/trust/bank-root.pem"));
}

static void
t_fixture_bad(void **state)
{
	const char *data = getenv("MTLSD_TEST_DATA");
	char path[PATH_MAX];
	(void)state;

	if (data == NULL)
		skip();
	snprintf(path, sizeof(path), "%s/config/bad/mtlsd.yaml", data);
	cfg = config_load(path, &errs);
	assert_null(cfg);
	assert_int_equal(errs.n, 4);
	assert_non_null(strstr(errs.msgs[0], "bad/mtlsd.yaml:4:12: timeouts.connect: "
	    "expected a duration like 5s, 250ms, 72h, got 'soon'"));
	assert_non_null(strstr(errs.msgs[1], "bad/mtlsd.yaml:6:1: unknown key "
	    "'wokers'"));
	assert_non_null(strstr(errs.msgs[2], "bad/mappings.d/one.yaml:8:13: "
	    "listening on 0.0.0.0:9001 would let anyone"));
	assert_non_null(strstr(errs.msgs[3], "bad/mappings.d/two.yaml:2:5: "
	    "duplicate mapping name 'same' (first defined at "));
}

/* The shipped etc/mtlsd.yaml and its mappings.d must always load, as the
 * demo uses them: a copy with the trust file the demo creates. */
static void
t_shipped_config(void **state)
{
	const char *data = getenv("MTLSD_TEST_DATA");
	char tmpl[] = "/tmp/mtlsd-shipped-XXXXXX", cmd[3 * PATH_MAX], path[PATH_MAX];
	const struct mapping *m;
	(void)state;

	if (data == NULL)
		skip();
	assert_non_null(mkdtemp(tmpl));
	snprintf(cmd, sizeof(cmd), "cp -r '%s/../../etc/.' '%s/' && mkdir -p '%s/trust' && "
	    "echo x > '%s/trust/demo-server-root.pem'", data, tmpl, tmpl, tmpl);
	assert_int_equal(system(cmd), 0);
	snprintf(path, sizeof(path), "%s/mtlsd.yaml", tmpl);
	cfg = config_load(path, &errs);
	expect_ok();
	assert_int_equal(cfg->n_proxy_listen, 1);
	assert_non_null(cfg->admin_listen);
	assert_string_equal(cfg->admin_listen->address, "unix:/run/mtlsd/admin.sock");
	m = config_find_mapping(cfg, "demo");
	assert_non_null(m);
	assert_string_equal(m->host, "localhost");
	assert_int_equal(m->port, 8443);
	assert_non_null(m->listen);
	assert_string_equal(m->listen->address, "127.0.0.1:9001");
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpl);
	assert_int_equal(system(cmd), 0);
}

/* A reload isolates a broken mapping file: its mappings keep the text the
 * running configuration read, the other files apply, the errors are kept
 * aside with file:line:col. */
static void
t_reload_isolates_broken_mapping_file(void **state)
{
	struct config_errors isolated = { NULL, 0 };
	struct config *prev, *next;
	char path[400];
	(void)state;

	write_file("mappings.d/a.yaml", "mappings:\n  - {name: a, url: https://a.example/v1/, certificate: c}\n");
	write_file("mappings.d/b.yaml", "mappings:\n  - {name: b, url: https://b.example/, certificate: c}\n");
	prev = load("");
	expect_ok();
	cfg = NULL;
	write_file("mappings.d/a.yaml", "mappings:\n  - {name: a, url: [broken\n");
	write_file("mappings.d/b.yaml", "mappings:\n  - {name: b, url: https://b.example/v2/, certificate: c}\n");
	next = config_reload(mainpath, prev, &errs, &isolated);
	assert_non_null(next);
	assert_int_equal(errs.n, 0);
	assert_int_equal(next->n_mappings, 2);
	assert_string_equal(config_find_mapping(next, "a")->path_prefix, "/v1/");
	assert_string_equal(config_find_mapping(next, "b")->path_prefix, "/v2/");
	assert_int_equal(isolated.n, 2);
	snprintf(path, sizeof(path), "%s/mappings.d/a.yaml:3:1: YAML syntax error", dir);
	assert_non_null(strstr(isolated.msgs[0], path));
	assert_non_null(strstr(isolated.msgs[1], "keep their last good version"));
	/* a second reload still finds the last good text */
	config_errors_clear(&isolated);
	cfg = config_reload(mainpath, next, &errs, &isolated);
	assert_non_null(cfg);
	assert_string_equal(config_find_mapping(cfg, "a")->path_prefix, "/v1/");
	config_errors_clear(&isolated);
	config_free(prev);
	config_free(next);
}

/* A new broken file has no last good version: left out; a broken main file
 * still fails the whole reload. */
static void
t_reload_new_broken_file_and_broken_main(void **state)
{
	struct config_errors isolated = { NULL, 0 };
	struct config *prev;
	(void)state;

	prev = load("");
	expect_ok();
	cfg = NULL;
	write_file("mappings.d/new.yaml", "mappings:\n  - {name: n, url: http://plain/, certificate: c}\n");
	cfg = config_reload(mainpath, prev, &errs, &isolated);
	assert_non_null(cfg);
	assert_int_equal(cfg->n_mappings, 0);
	assert_non_null(strstr(isolated.msgs[isolated.n - 1], "not loaded until it is fixed"));
	config_free(cfg);
	config_errors_clear(&isolated);
	write_file("mtlsd.yaml", "timeouts: {connect: soon}\n");
	cfg = config_reload(mainpath, prev, &errs, &isolated);
	assert_null(cfg);
	assert_true(errs.n > 0);
	config_errors_clear(&isolated);
	config_free(prev);
}

int
main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(t_defaults_empty_file), T(t_every_main_key), T(t_unknown_key_top),
		T(t_unknown_key_in_section), T(t_bad_duration),
		T(t_duration_below_minimum), T(t_workers_below_one), T(t_busy_poll),
		T(t_bad_bool_enum_section), T(t_duplicate_key), T(t_yaml_syntax_error),
		T(t_invalid_utf8), T(t_top_level_not_a_map), T(t_second_document),
		T(t_main_file_missing), T(t_null_values_are_unset),
		T(t_relative_paths), T(t_mappings_dir_missing), T(t_main_file_inside_mappings_dir),
		T(t_vault_checks),
		T(t_aliases_work), T(t_mapping_defaults), T(t_mapping_every_key),
		T(t_many_files_sorted_and_filtered), T(t_mapping_file_only_mappings),
		T(t_reload_isolates_broken_mapping_file),
		T(t_reload_new_broken_file_and_broken_main),
		T(t_mapping_missing_required), T(t_mapping_unknown_and_bad_items),
		T(t_mapping_urls), T(t_mapping_names), T(t_duplicate_mapping_names),
		T(t_trust_ca_file_unreadable), T(t_pins_and_rates),
		T(t_listen_spec_parse), T(t_listen_loopback),
		T(t_listen_remote_needs_allow), T(t_listen_map_form_unix),
		T(t_listen_map_form_errors), T(t_duplicate_listeners),
		T(t_duplicate_default_listener), T(t_errors_across_files_collected),
		T(t_restart_needed), T(t_dump), T(t_fixture_good), T(t_fixture_bad),
		T(t_shipped_config),
	};
#undef T

	log_init("test_config", LOG_LVL_ERROR);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
