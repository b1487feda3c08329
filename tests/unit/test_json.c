/* SPDX-License-Identifier: GPL-2.0-or-later */
/* json.c: Vault's answers (vault-api.md §1.3, §2.1, §3.1, §4.1, §1.4) read
 * through libyaml, the YAML-not-JSON refusals, and json_write_string. */
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

#include "json.h"

static struct json *
parse(const char *s)
{
	char err[256] = "";
	struct json *j = json_parse(s, strlen(s), err, sizeof(err));

	if (j == NULL)
		fail_msg("parse failed: %s", err);
	return j;
}

static const char *
str_at(const struct json *j, const char *path)
{
	return json_string(j, json_path(j, json_root(j), path));
}

static long long
int_at(const struct json *j, const char *path)
{
	long long v = -12345;

	if (json_int(j, json_path(j, json_root(j), path), &v) != 0)
		fail_msg("%s is not an integer", path);
	return v;
}

static int
bool_at(const struct json *j, const char *path)
{
	int v = -1;

	if (json_bool(j, json_path(j, json_root(j), path), &v) != 0)
		fail_msg("%s is not a boolean", path);
	return v;
}

static void
t_success_envelope(void **state)
{
	static const char doc[] = "{\n"
	    "  \"request_id\": \"0b1e7c0e-6f0a-3b5d-8a57-0d6f2a1c9e11\",\n"
	    "  \"lease_id\": \"\",\n"
	    "  \"renewable\": false,\n"
	    "  \"lease_duration\": 0,\n"
	    "  \"data\": { \"...\": \"...\" },\n"
	    "  \"wrap_info\": null,\n"
	    "  \"warnings\": null,\n"
	    "  \"auth\": null,\n"
	    "  \"mount_type\": \"pki\"\n"
	    "}\n";
	struct json *j = parse(doc);
	int root = json_root(j);
	(void)state;

	assert_int_equal(root, 1);
	assert_true(json_is_object(j, root));
	assert_string_equal(str_at(j, "request_id"), "0b1e7c0e-6f0a-3b5d-8a57-0d6f2a1c9e11");
	assert_string_equal(str_at(j, "lease_id"), "");
	assert_int_equal(bool_at(j, "renewable"), 0);
	assert_int_equal(int_at(j, "lease_duration"), 0);
	assert_true(json_is_object(j, json_get(j, root, "data")));
	assert_string_equal(json_string(j, json_get(j, json_get(j, root, "data"), "...")), "...");
	assert_true(json_is_null(j, json_get(j, root, "wrap_info")));
	assert_true(json_is_null(j, json_get(j, root, "warnings")));
	assert_true(json_is_null(j, json_get(j, root, "auth")));
	assert_int_not_equal(json_get(j, root, "auth"), 0);	/* present, null */
	assert_string_equal(str_at(j, "mount_type"), "pki");
	/* null is not a string, an object, an array or a number */
	assert_null(str_at(j, "auth"));
	assert_false(json_is_object(j, json_get(j, root, "auth")));
	assert_int_equal(json_array_len(j, json_get(j, root, "warnings")), 0);
	json_free(j);
}

static void
t_approle_login(void **state)
{
	static const char doc[] =
	    "{\"request_id\": \"9f4c\", \"lease_id\": \"\", \"renewable\": false, "
	    "\"lease_duration\": 0,\n \"data\": null, \"wrap_info\": null, \"warnings\": null,\n"
	    " \"auth\": {\n"
	    "  \"client_token\": \"hvs.CAESIJ-token\",\n"
	    "  \"accessor\": \"0e9e354a-520f-df04-6867-ee81cae3d42d\",\n"
	    "  \"policies\": [\"default\", \"pki-client\"],\n"
	    "  \"token_policies\": [\"default\", \"pki-client\"],\n"
	    "  \"metadata\": {\"role_name\": \"sidecar\"},\n"
	    "  \"lease_duration\": 3600,\n"
	    "  \"renewable\": true,\n"
	    "  \"entity_id\": \"b5e1\",\n"
	    "  \"token_type\": \"service\",\n"
	    "  \"orphan\": true,\n"
	    "  \"mfa_requirement\": null,\n"
	    "  \"num_uses\": 0\n"
	    " }\n"
	    "}";
	struct json *j = parse(doc);
	int pol;
	(void)state;

	assert_true(json_is_null(j, json_path(j, json_root(j), "data")));
	assert_string_equal(str_at(j, "auth.client_token"), "hvs.CAESIJ-token");
	assert_string_equal(str_at(j, "auth.metadata.role_name"), "sidecar");
	assert_int_equal(int_at(j, "auth.lease_duration"), 3600);
	assert_int_equal(int_at(j, "lease_duration"), 0);
	assert_int_equal(bool_at(j, "auth.renewable"), 1);
	assert_int_equal(bool_at(j, "auth.orphan"), 1);
	assert_true(json_is_null(j, json_path(j, json_root(j), "auth.mfa_requirement")));
	pol = json_path(j, json_root(j), "auth.policies");
	assert_int_equal(json_array_len(j, pol), 2);
	assert_string_equal(json_string(j, json_array_at(j, pol, 0)), "default");
	assert_string_equal(json_string(j, json_array_at(j, pol, 1)), "pki-client");
	assert_int_equal(json_array_at(j, pol, 2), 0);
	/* a path through null or a string finds nothing */
	assert_int_equal(json_path(j, json_root(j), "data.anything"), 0);
	assert_int_equal(json_path(j, json_root(j), "auth.client_token.x"), 0);
	json_free(j);
}

#define CERT1 "-----BEGIN CERTIFICATE-----\nMIIDaTCCAlGgAwIBAgIUOd0ukLcjH43TfTHFG9qE0FtlMVgw\n" \
	"DQYJKoZIhvcNAQELBQAwFjEUMBIGA1UEAxMLZXhhbXBsZS5jb20=\n-----END CERTIFICATE-----"
#define CERT1_JSON "-----BEGIN CERTIFICATE-----\\nMIIDaTCCAlGgAwIBAgIUOd0ukLcjH43TfTHFG9qE0FtlMVgw\\n" \
	"DQYJKoZIhvcNAQELBQAwFjEUMBIGA1UEAxMLZXhhbXBsZS5jb20=\\n-----END CERTIFICATE-----"

static void
t_pki_issue(void **state)
{
	static const char doc[] =
	    "{\"request_id\":\"r\",\"lease_id\":\"\",\"renewable\":false,\"lease_duration\":0,"
	    "\"data\":{"
	    "\"certificate\":\"" CERT1_JSON "\","
	    "\"issuing_ca\":\"-----BEGIN CERTIFICATE-----\\nMIIDint\\n-----END CERTIFICATE-----\","
	    "\"ca_chain\":[\"-----BEGIN CERTIFICATE-----\\nMIIDint\\n-----END CERTIFICATE-----\","
	    "\"-----BEGIN CERTIFICATE-----\\nMIIDroot\\n-----END CERTIFICATE-----\"],"
	    "\"private_key\":\"-----BEGIN EC PRIVATE KEY-----\\nMHcCAQEEIB\\/s3cr3t+key\\n"
	    "-----END EC PRIVATE KEY-----\","
	    "\"private_key_type\":\"ec\","
	    "\"serial_number\":\"39:dd:2e:90:b7:23:1f:8d:d3:7d:31:c5:1b:da:84:d0:5b:65:31:58\","
	    "\"expiration\":1718086400},"
	    "\"wrap_info\":null,\"warnings\":[\"TTL \\\"48h0m0s\\\" is longer than permitted\"],"
	    "\"auth\":null}";
	struct json *j = parse(doc);
	int chain, warn;
	(void)state;

	assert_string_equal(str_at(j, "data.certificate"), CERT1);
	assert_string_equal(str_at(j, "data.private_key"),
	    "-----BEGIN EC PRIVATE KEY-----\nMHcCAQEEIB/s3cr3t+key\n-----END EC PRIVATE KEY-----");
	assert_string_equal(str_at(j, "data.private_key_type"), "ec");
	assert_string_equal(str_at(j, "data.serial_number"),
	    "39:dd:2e:90:b7:23:1f:8d:d3:7d:31:c5:1b:da:84:d0:5b:65:31:58");
	assert_int_equal(int_at(j, "data.expiration"), 1718086400LL);
	chain = json_path(j, json_root(j), "data.ca_chain");
	assert_int_equal(json_array_len(j, chain), 2);
	assert_string_equal(json_string(j, json_array_at(j, chain, 0)),
	    "-----BEGIN CERTIFICATE-----\nMIIDint\n-----END CERTIFICATE-----");
	assert_string_equal(json_string(j, json_array_at(j, chain, 1)),
	    "-----BEGIN CERTIFICATE-----\nMIIDroot\n-----END CERTIFICATE-----");
	assert_string_equal(str_at(j, "data.issuing_ca"),
	    json_string(j, json_array_at(j, chain, 0)));
	warn = json_path(j, json_root(j), "warnings");
	assert_int_equal(json_array_len(j, warn), 1);
	assert_string_equal(json_string(j, json_array_at(j, warn, 0)),
	    "TTL \"48h0m0s\" is longer than permitted");
	json_free(j);
}

static void
t_kv2_read(void **state)
{
	static const char doc[] =
	    "{\n  \"request_id\": \"x\", \"lease_id\": \"\", \"renewable\": false, "
	    "\"lease_duration\": 0,\n"
	    "  \"data\": {\n"
	    "    \"data\": {\"p12\": \"MIIKpAIBAzCCCmoGCSqGSIb3DQEHAaCC\", "
	    "\"p12_password\": \"s3cr3t\"},\n"
	    "    \"metadata\": {\n"
	    "      \"created_time\": \"2024-06-10T06:13:20.123456789Z\",\n"
	    "      \"custom_metadata\": null,\n"
	    "      \"deletion_time\": \"\",\n"
	    "      \"destroyed\": false,\n"
	    "      \"version\": 3\n"
	    "    }\n"
	    "  },\n"
	    "  \"wrap_info\": null, \"warnings\": null, \"auth\": null\n"
	    "}\n";
	struct json *j = parse(doc);
	int data = json_get(j, json_root(j), "data");
	(void)state;

	assert_string_equal(str_at(j, "data.data.p12"), "MIIKpAIBAzCCCmoGCSqGSIb3DQEHAaCC");
	assert_string_equal(str_at(j, "data.data.p12_password"), "s3cr3t");
	assert_string_equal(str_at(j, "data.metadata.created_time"),
	    "2024-06-10T06:13:20.123456789Z");
	assert_string_equal(str_at(j, "data.metadata.deletion_time"), "");
	assert_int_equal(int_at(j, "data.metadata.version"), 3);
	assert_int_equal(bool_at(j, "data.metadata.destroyed"), 0);
	assert_true(json_is_null(j, json_path(j, json_root(j), "data.metadata.custom_metadata")));
	/* json_path from an inner node; the same node as json_get twice */
	assert_int_equal(json_path(j, data, "metadata.version"),
	    json_get(j, json_get(j, data, "metadata"), "version"));
	assert_int_equal(json_path(j, json_root(j), "data.data.nope"), 0);
	assert_int_equal(json_path(j, json_root(j), "data..data"), 0);
	assert_int_equal(json_path(j, json_root(j), ""), 0);
	assert_int_equal(json_path(j, json_root(j), "data."), 0);
	json_free(j);
}

static void
t_error_envelopes(void **state)
{
	struct json *j;
	int errs;
	(void)state;

	j = parse("{\"errors\":[]}");
	errs = json_get(j, json_root(j), "errors");
	assert_int_not_equal(errs, 0);
	assert_int_equal(json_array_len(j, errs), 0);
	assert_int_equal(json_array_at(j, errs, 0), 0);
	assert_false(json_is_object(j, errs));
	json_free(j);

	j = parse("{\"errors\":[\"1 error occurred:\\n\\t* permission denied\\n\\n\"]}");
	errs = json_get(j, json_root(j), "errors");
	assert_int_equal(json_array_len(j, errs), 1);
	assert_string_equal(json_string(j, json_array_at(j, errs, 0)),
	    "1 error occurred:\n\t* permission denied\n\n");
	json_free(j);

	j = parse("{\"errors\":[\"missing \\\"X-Vault-Request\\\" header\"]}");
	assert_string_equal(json_string(j, json_array_at(j,
	    json_get(j, json_root(j), "errors"), 0)), "missing \"X-Vault-Request\" header");
	json_free(j);
}

static void
t_scalars(void **state)
{
	static const char doc[] = "{\"i\":42,\"neg\":-7,\"zero\":0,\"max\":9223372036854775807,"
	    "\"min\":-9223372036854775808,\"over\":9223372036854775808,\"frac\":1.5,"
	    "\"exp\":1e3,\"str5\":\"5\",\"t\":true,\"f\":false,\"strtrue\":\"true\",\"n\":null,"
	    "\"strnull\":\"null\",\"esc\":\"a\\/b\\u003cc\\u00e9\",\"utf8\":\"caf\xc3\xa9\","
	    "\"obj\":{},\"arr\":[1,[2,3],{\"k\":\"v\"}],\"dup\":\"first\",\"dup\":\"second\"}";
	struct json *j = parse(doc);
	int root = json_root(j), arr, b = 9;
	long long v = 99;
	(void)state;

	assert_int_equal(int_at(j, "i"), 42);
	assert_int_equal(int_at(j, "neg"), -7);
	assert_int_equal(int_at(j, "zero"), 0);
	assert_true(int_at(j, "max") == INT64_MAX);
	assert_true(int_at(j, "min") == INT64_MIN);
	assert_int_equal(json_int(j, json_get(j, root, "over"), &v), -1);
	assert_int_equal(json_int(j, json_get(j, root, "frac"), &v), -1);
	assert_int_equal(json_int(j, json_get(j, root, "exp"), &v), -1);
	assert_int_equal(json_int(j, json_get(j, root, "str5"), &v), -1);
	assert_int_equal(json_int(j, json_get(j, root, "t"), &v), -1);
	assert_int_equal(json_int(j, json_get(j, root, "n"), &v), -1);
	assert_int_equal(json_int(j, 0, &v), -1);
	assert_int_equal(v, 99);	/* untouched on failure */
	assert_int_equal(bool_at(j, "t"), 1);
	assert_int_equal(bool_at(j, "f"), 0);
	assert_int_equal(json_bool(j, json_get(j, root, "strtrue"), &b), -1);
	assert_int_equal(json_bool(j, json_get(j, root, "i"), &b), -1);
	assert_int_equal(json_bool(j, 0, &b), -1);
	assert_int_equal(b, 9);
	assert_true(json_is_null(j, json_get(j, root, "n")));
	assert_true(json_is_null(j, json_get(j, root, "absent")));
	assert_true(json_is_null(j, 0));
	assert_false(json_is_null(j, json_get(j, root, "strnull")));
	assert_false(json_is_null(j, json_get(j, root, "zero")));
	assert_string_equal(str_at(j, "strnull"), "null");
	assert_string_equal(str_at(j, "str5"), "5");
	assert_null(str_at(j, "i"));
	assert_null(str_at(j, "t"));
	assert_null(str_at(j, "obj"));
	assert_null(str_at(j, "arr"));
	assert_null(str_at(j, "absent"));
	assert_string_equal(str_at(j, "esc"), "a/b<c\xc3\xa9");
	assert_string_equal(str_at(j, "utf8"), "caf\xc3\xa9");
	assert_true(json_is_object(j, json_get(j, root, "obj")));
	assert_int_equal(json_get(j, json_get(j, root, "obj"), "x"), 0);
	assert_string_equal(str_at(j, "dup"), "first");
	arr = json_get(j, root, "arr");
	assert_int_equal(json_array_len(j, arr), 3);
	assert_int_equal(json_array_len(j, json_array_at(j, arr, 1)), 2);
	assert_string_equal(json_string(j, json_get(j, json_array_at(j, arr, 2), "k")), "v");
	/* the wrong kind of node answers 0, never garbage */
	assert_int_equal(json_get(j, arr, "k"), 0);
	assert_int_equal(json_array_len(j, root), 0);
	assert_int_equal(json_array_at(j, root, 0), 0);
	assert_int_equal(json_get(j, root, NULL), 0);
	assert_int_equal(json_path(j, root, NULL), 0);
	assert_int_equal(json_get(j, 0, "i"), 0);
	assert_int_equal(json_get(j, 100000, "i"), 0);
	assert_int_equal(json_get(j, -1, "i"), 0);
	assert_null(json_string(j, 100000));
	assert_false(json_is_object(j, 0));
	json_free(j);
}

static void
t_top_level_values(void **state)
{
	struct json *j;
	long long v;
	(void)state;

	j = parse("\"just a string\"");
	assert_string_equal(json_string(j, json_root(j)), "just a string");
	json_free(j);
	j = parse("  -12  \n");
	assert_int_equal(json_int(j, json_root(j), &v), 0);
	assert_int_equal(v, -12);
	json_free(j);
	j = parse("[-0, 1E+2, 0.5e-3, -1.25]");
	assert_int_equal(json_array_len(j, json_root(j)), 4);
	assert_int_equal(json_int(j, json_array_at(j, json_root(j), 0), &v), 0);
	assert_int_equal(v, 0);
	assert_int_equal(json_int(j, json_array_at(j, json_root(j), 1), &v), -1);
	json_free(j);
	j = parse("[]");
	assert_int_equal(json_array_len(j, json_root(j)), 0);
	assert_false(json_is_object(j, json_root(j)));
	json_free(j);
	/* len bounds the input: what follows is not read */
	{
		char err[64];

		j = json_parse("{\"a\":1}garbage", 7, err, sizeof(err));
		assert_non_null(j);
		assert_int_equal(json_array_len(j, json_root(j)), 0);
		assert_true(json_is_object(j, json_root(j)));
		json_free(j);
	}
	json_free(NULL);
	assert_int_equal(json_root(NULL), 0);
}

/* A "\u0000" inside a token would silently shorten it as a C string. */
static void
t_embedded_nul(void **state)
{
	struct json *j = parse("{\"t\":\"hvs.a\\u0000b\",\"ok\":\"hvs.ab\"}");
	(void)state;

	assert_null(str_at(j, "t"));
	assert_string_equal(str_at(j, "ok"), "hvs.ab");
	json_free(j);
}

static void
t_malformed(void **state)
{
	static const struct { const char *in; const char *err; } bad[] = {
		{ "{\"data\":{\"certificate\":\"-----BEGIN",	/* a truncated answer */
		    "line 1 column 35: found unexpected end of stream" },
		{ "{\"a\":1", "line 1 column 7: did not find expected ',' or '}' "
		    "(at the end of the input)" },
		{ "{\"a\":\n [1,\n  2", "line 3 column 4: did not find expected ',' or ']' (at" },
		{ "{\"a\" 1}", "line 1 column 6: did not find expected ',' or '}'" },
		{ "{\"a\":1} trailing", "line 1 column 9:" },
		{ "{\"a\":1}}", "line 1 column 8:" },
		{ "[1]\ngarbage", "line 2 column 1:" },
		{ "{\"a\":1}\n---\n{\"b\":2}", "line 3 column 1: trailing data after the value" },
		{ "<html><body>502 Bad Gateway</body></html>", "line 1 column 1:" },
		{ "", "line 1 column 1: no JSON value" },
		{ " \n ", "no JSON value" },
		{ "{\"a\":}", "line 1 column 6: expected a value" },
		{ "{\"a\"}", "expected a value" },
		{ "{a: 1}", "line 1 column 1: object keys must be strings" },
		{ "{1: 1}", "object keys must be strings" },
		{ "a: 1", "block mappings are not JSON" },
		{ "- 1\n- 2", "block sequences are not JSON" },
		{ "{\"a\": |\n  x\n}", "line 1 column" },
		{ "{\"a\": &x \"s\", \"b\": *x}", "aliases are not JSON" },
		{ "{\"a\": !!binary \"aGk=\"}", "tags are not JSON" },
		{ "[1,,2]", "line 1 column 4:" },
		{ "\"\\ud83d\\ude00\"", "line 1 column" },	/* surrogates: libyaml refuses */
		{ "\"a\xff\"", "line 1 column 3: invalid leading UTF-8 octet" },
		{ "{\"a\":\n\"b\x01\"}", "line 2 column 3: control characters are not allowed" },
		{ "{\"a\": *nope}", "line 1 column" },
		{ "{\"a\": yes}", "line 1 column 7: not a JSON value" },
		{ "[~]", "not a JSON value" },
		{ "[01]", "not a JSON value" },
		{ "[.5]", "not a JSON value" },
		{ "[1.]", "not a JSON value" },
		{ "[+1]", "not a JSON value" },
		{ "[1e]", "not a JSON value" },
		{ "[0x10]", "not a JSON value" },
		{ "[NaN]", "not a JSON value" },
		{ "[-Infinity]", "not a JSON value" },
		{ "[True]", "not a JSON value" },
		{ "[hvs.unquoted]", "not a JSON value" },
	};
	char err[256];
	(void)state;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		strcpy(err, "untouched");
		if (json_parse(bad[i].in, strlen(bad[i].in), err, sizeof(err)) != NULL)
			fail_msg("accepted: %s", bad[i].in);
		if (strstr(err, "line ") != err || strstr(err, bad[i].err) == NULL)
			fail_msg("'%s': error '%s', expected '%s'", bad[i].in, err, bad[i].err);
	}
	/* a short error buffer is truncated, still terminated */
	assert_null(json_parse("{", 1, err, 8));
	assert_int_equal(strlen(err), 7);
	assert_memory_equal(err, "line 1 ", 7);
}

/* Write s with json_write_string, check the text, and read it back. */
static void
round_trip(const char *s, const char *want_json, const char *want_back)
{
	struct evbuffer *b = evbuffer_new();
	char *text, err[256];
	struct json *j;
	size_t len;

	assert_non_null(b);
	json_write_string(b, s);
	len = evbuffer_get_length(b);
	text = calloc(1, len + 1);
	assert_non_null(text);
	evbuffer_remove(b, text, len);
	if (strcmp(text, want_json) != 0)
		fail_msg("wrote %s, expected %s", text, want_json);
	j = json_parse(text, len, err, sizeof(err));
	if (j == NULL)
		fail_msg("%s does not parse: %s", text, err);
	if (want_back == NULL)
		assert_true(json_is_null(j, json_root(j)));
	else
		assert_string_equal(json_string(j, json_root(j)), want_back);
	json_free(j);
	free(text);
	evbuffer_free(b);
}

static void
t_write_string(void **state)
{
	(void)state;

	round_trip("plain", "\"plain\"", "plain");
	round_trip("", "\"\"", "");
	round_trip(NULL, "null", NULL);
	round_trip("say \"hi\"", "\"say \\\"hi\\\"\"", "say \"hi\"");
	round_trip("C:\\dir\\", "\"C:\\\\dir\\\\\"", "C:\\dir\\");
	round_trip("a\nb\rc\td", "\"a\\nb\\rc\\td\"", "a\nb\rc\td");
	round_trip("\x01\x1f\x7f", "\"\\u0001\\u001f\\u007f\"", "\x01\x1f\x7f");
	round_trip("</script>", "\"</script>\"", "</script>");
	round_trip("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", "\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\"",
	    "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80");
	/* invalid UTF-8: a stray byte, a truncated sequence, an overlong '/',
	 * a UTF-16 surrogate, above U+10FFFF */
	round_trip("a\xff" "b", "\"a\\ufffdb\"", "a\xef\xbf\xbd" "b");
	round_trip("\xc3", "\"\\ufffd\"", "\xef\xbf\xbd");
	round_trip("\xe2\x82", "\"\\ufffd\\ufffd\"", "\xef\xbf\xbd\xef\xbf\xbd");
	round_trip("\xc0\xaf", "\"\\ufffd\\ufffd\"", "\xef\xbf\xbd\xef\xbf\xbd");
	round_trip("\xed\xa0\x80", "\"\\ufffd\\ufffd\\ufffd\"",
	    "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd");
	round_trip("\xf4\x90\x80\x80", "\"\\ufffd\\ufffd\\ufffd\\ufffd\"",
	    "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd");
}

/* json_escape into a small buffer: cut before the first character that
 * does not fit, never inside an escape or a UTF-8 sequence. */
static void
t_escape_cut(void **state)
{
	static const struct {
		size_t room;
		const char *in, *want; /* want NULL: nothing written (0) */
	} cases[] = {
	    { 16, "abc", "\"abc\"" },
	    { 8, "abcdefgh", "\"abcde\"" },
	    { 6, "a\"b", "\"a\\\"\"" },
	    { 5, "a\"b", "\"a\"" },           /* not half of \" */
	    { 5, "a\xc3\xa9", "\"a\"" },       /* not half of U+00E9 */
	    { 9, "\x01x", "\"\\u0001\"" },
	    { 3, "abc", "\"\"" },
	    { 2, "abc", NULL },
	    { 5, NULL, "null" },
	    { 4, NULL, NULL },
	};
	char d[16];

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		size_t n = json_escape(d, cases[i].room, cases[i].in);

		assert_int_equal(n, cases[i].want ? strlen(cases[i].want) : 0);
		if (cases[i].want != NULL)
			assert_string_equal(d, cases[i].want);
	}
}

/* A document of the size Vault answers with (a chain of big PEMs). */
static void
t_large_document(void **state)
{
	struct evbuffer *b = evbuffer_new();
	char item[64], *text;
	struct json *j;
	size_t len;
	long long v;
	(void)state;

	evbuffer_add_printf(b, "{\"data\":{\"items\":[");
	for (int i = 0; i < 20000; i++)
		evbuffer_add_printf(b, "%s{\"n\":%d,\"s\":\"item %d\"}", i ? "," : "", i, i);
	evbuffer_add_printf(b, "]}}");
	len = evbuffer_get_length(b);
	text = (char *)evbuffer_pullup(b, -1);
	j = json_parse(text, len, item, sizeof(item));
	assert_non_null(j);
	assert_int_equal(json_array_len(j, json_path(j, json_root(j), "data.items")), 20000);
	assert_int_equal(json_int(j, json_get(j, json_array_at(j,
	    json_path(j, json_root(j), "data.items"), 19999), "n"), &v), 0);
	assert_int_equal(v, 19999);
	assert_string_equal(json_string(j, json_get(j, json_array_at(j,
	    json_path(j, json_root(j), "data.items"), 123), "s")), "item 123");
	json_free(j);
	evbuffer_free(b);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(t_success_envelope), cmocka_unit_test(t_approle_login),
		cmocka_unit_test(t_pki_issue), cmocka_unit_test(t_kv2_read),
		cmocka_unit_test(t_error_envelopes), cmocka_unit_test(t_scalars),
		cmocka_unit_test(t_top_level_values), cmocka_unit_test(t_embedded_nul),
		cmocka_unit_test(t_malformed), cmocka_unit_test(t_write_string),
		cmocka_unit_test(t_escape_cut),
		cmocka_unit_test(t_large_document),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
