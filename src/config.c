/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * YAML configuration. Every key lives in keys[] below: its dotted path, type,
 * scope, default, flags and where it is stored. Defaults, parsing, the
 * required-key check, config_restart_needed() and config_dump() all walk that
 * one table, so a new key is one line here plus its field in config.h.
 *
 * libyaml's document API gives every node a start mark; every message is
 * "file:line:col: message" with both numbers 1-based.
 */
#include "autoconf.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>
#include <yaml.h>

#include "config.h"
#include "log.h"
#include "ratelimit.h"
#include "util.h"

#define CONFIG_MAX_FILE (16u * 1024 * 1024)
/* Bound on values visited per file: YAML aliases can share one node many
 * times, and a config parser must not be a decompression bomb. */
#define CONFIG_MAX_VISITS 1000000u

enum cftype {
	T_SECTION, T_STRING, T_HTTPURL, T_PATH, T_BOOL, T_UINT, T_DURATION,
	T_ENUM, T_LISTEN, T_LISTEN_LIST, T_MAPPINGS, T_NAME, T_CERTNAME,
	T_URL, T_HOSTNAME, T_PINS, T_RATE, T_ADDRESS, T_MODE, T_UIDS,
};

/* What a key's offset is relative to. */
enum cfscope { S_MAIN, S_MAPPING, S_LISTEN };

#define K_RELOAD	0x01	/* a SIGHUP applies it; otherwise restart */
#define K_REQUIRED	0x02
#define K_MAPFILE	0x04	/* allowed at the top of a mappings_dir file */
#define K_READABLE	0x08	/* a file that must be readable now */
#define K_MICROS	0x10	/* T_DURATION in microseconds, not milliseconds */
#define NOFF		((size_t)-1)

struct cfkey {
	const char *path;		/* dotted, relative to the scope */
	enum cftype type;
	enum cfscope scope;
	unsigned flags;
	const char *def;		/* default as written in YAML, or NULL */
	size_t off, off_n;		/* field; element count for lists */
	long long min, max;		/* T_UINT, T_DURATION bounds (max 0: none) */
	const char *const *names;	/* T_ENUM */
};

static const char *const activate_names[] = { "immediately", "before-expiry", NULL };
static const char *const level_names[] = { "error", "warn", "info", "debug", NULL };
static const char *const format_names[] = { "text", "json", NULL };

_Static_assert(sizeof(enum rotation_activate) == sizeof(int), "enum stored as int");

#define CF(f) .off = offsetof(struct config, f)
#define MP(f) .off = offsetof(struct mapping, f)
#define LS(f) .off = offsetof(struct listen_spec, f)
#define R K_RELOAD

static const struct cfkey keys[] = {
	{ "proxy", T_SECTION, .flags = R, .off = NOFF },
	{ "proxy.listen", T_LISTEN_LIST, CF(proxy_listen), .flags = R,
	    .off_n = offsetof(struct config, n_proxy_listen), .def = "127.0.0.1:3128" },
	{ "admin", T_SECTION, .flags = R, .off = NOFF },
	{ "admin.listen", T_LISTEN, CF(admin_listen), .flags = R },
	{ "mappings_dir", T_PATH, CF(mappings_dir), .flags = R, .def = "mappings.d" },
	{ "certs_dir", T_PATH, CF(certs_dir), .flags = R, .def = "certs.d" },
	{ "state_dir", T_PATH, CF(state_dir), .flags = R, .def = "/var/lib/mtlsd" },
	{ "rotation", T_SECTION, .flags = R, .off = NOFF },
	{ "rotation.activate", T_ENUM, CF(rotation.activate), .flags = R,
	    .def = "immediately", .names = activate_names },
	{ "rotation.activate_before_expiry", T_DURATION,
	    CF(rotation.activate_before_expiry_ms), .flags = R, .def = "72h" },
	{ "rotation.warn_before", T_DURATION, CF(rotation.warn_before_ms),
	    .flags = R, .def = "336h" },
	{ "timeouts", T_SECTION, .flags = R, .off = NOFF },
	{ "timeouts.connect", T_DURATION, CF(timeouts.connect_ms), .flags = R,
	    .def = "5s", .min = 1 },
	{ "timeouts.handshake", T_DURATION, CF(timeouts.handshake_ms), .flags = R,
	    .def = "5s", .min = 1 },
	{ "timeouts.client_header", T_DURATION, CF(timeouts.client_header_ms),
	    .flags = R, .def = "10s", .min = 1 },
	{ "timeouts.upstream_response", T_DURATION,
	    CF(timeouts.upstream_response_ms), .flags = R, .def = "30s", .min = 1 },
	{ "timeouts.idle", T_DURATION, CF(timeouts.idle_ms), .flags = R,
	    .def = "60s", .min = 1 },
	{ "limits", T_SECTION, .flags = R, .off = NOFF },
	{ "limits.max_connections", T_UINT, CF(limits.max_connections),
	    .flags = R, .def = "10000", .min = 1, .max = 10000000 },
	{ "limits.max_header_bytes", T_UINT, CF(limits.max_header_bytes),
	    .flags = R, .def = "32768", .min = 1024, .max = 1048576 },
	{ "pool", T_SECTION, .flags = R, .off = NOFF },
	{ "pool.max_idle_per_destination", T_UINT,
	    CF(pool.max_idle_per_destination), .flags = R, .def = "64",
	    .min = 0, .max = 100000 },
	{ "pool.idle_timeout", T_DURATION, CF(pool.idle_timeout_ms), .flags = R,
	    .def = "90s", .min = 1 },
	{ "pool.surplus_timeout", T_DURATION, CF(pool.surplus_timeout_ms), .flags = R,
	    .def = "5s" },
	{ "vault", T_SECTION, CF(vault.configured), .flags = R },
	{ "vault.address", T_HTTPURL, CF(vault.address), .flags = R | K_REQUIRED },
	{ "vault.ca_file", T_PATH, CF(vault.ca_file), .flags = R },
	{ "vault.namespace", T_STRING, CF(vault.namespace), .flags = R },
	{ "vault.auth", T_SECTION, .flags = R | K_REQUIRED, .off = NOFF },
	{ "vault.auth.token_file", T_PATH, CF(vault.token_file), .flags = R },
	{ "vault.auth.approle", T_SECTION, .flags = R, .off = NOFF },
	{ "vault.auth.approle.role_id_file", T_PATH, CF(vault.role_id_file),
	    .flags = R | K_REQUIRED },
	{ "vault.auth.approle.secret_id_file", T_PATH, CF(vault.secret_id_file),
	    .flags = R | K_REQUIRED },
	{ "vault.auth.approle.mount", T_STRING, CF(vault.approle_mount), .flags = R },
	{ "log", T_SECTION, .flags = R, .off = NOFF },
	{ "log.level", T_ENUM, CF(log.level), .flags = R, .def = "info",
	    .names = level_names },
	{ "log.format", T_ENUM, CF(log.json), .flags = R, .def = "text",
	    .names = format_names },
	{ "log.access_log", T_BOOL, CF(log.access_log), .flags = R, .def = "true" },
	{ "workers", T_UINT, CF(workers), .def = "1", .min = 1, .max = 1024 },
	{ "busy_poll", T_DURATION, CF(busy_poll_us), .flags = R | K_MICROS,
	    .def = "50us", .max = 1000 },
	{ "mappings", T_MAPPINGS, .flags = R | K_MAPFILE, .off = NOFF },

	/* one item of a mappings: list */
	{ "name", T_NAME, S_MAPPING, R | K_REQUIRED, MP(name) },
	{ "url", T_URL, S_MAPPING, R | K_REQUIRED, .off = NOFF },
	{ "listen", T_LISTEN, S_MAPPING, R, MP(listen) },
	{ "certificate", T_CERTNAME, S_MAPPING, R | K_REQUIRED, MP(certificate) },
	{ "trust", T_SECTION, S_MAPPING, R, .off = NOFF },
	{ "trust.ca_file", T_PATH, S_MAPPING, R | K_READABLE, MP(trust_ca_file) },
	{ "trust.pin_sha256", T_PINS, S_MAPPING, R, MP(pins),
	    .off_n = offsetof(struct mapping, n_pins) },
	{ "server_name", T_HOSTNAME, S_MAPPING, R, MP(server_name) },
	{ "validate", T_BOOL, S_MAPPING, R, "true", MP(validate) },
	{ "enabled", T_BOOL, S_MAPPING, R, "true", MP(enabled) },
	{ "rate_limit", T_RATE, S_MAPPING, R, .off = NOFF },

	/* the map form of a listener */
	{ "address", T_ADDRESS, S_LISTEN, K_REQUIRED, .off = NOFF },
	{ "allow_remote", T_BOOL, S_LISTEN, 0, LS(allow_remote) },
	{ "mode", T_MODE, S_LISTEN, 0, .off = NOFF },
	{ "group", T_STRING, S_LISTEN, 0, LS(group) },
	{ "allowed_uids", T_UIDS, S_LISTEN, 0, .off = NOFF },
};

#define N_KEYS ARRAY_LEN(keys)

/* State while reading one file. */
struct parse {
	struct config *cfg;
	struct config_errors *errs;
	const char *file;		/* owned by cfg->files */
	yaml_document_t *doc;
	int mapfile;			/* a mappings_dir file */
	int defaults;			/* applying defaults: no positions */
	const struct config *prev;	/* isolation: last good configuration */
	struct config_errors *isolated;	/* isolation: errors of kept files */
	unsigned visits;
	struct config_pos seen[N_KEYS];	/* where each key was last given */
	unsigned char set[N_KEYS];	/* given with a non-null value */
};

typedef int (*setter_fn)(struct parse *, const struct cfkey *, void *, yaml_node_t *);

static int walk_map(struct parse *, yaml_node_t *, enum cfscope, const char *, void *);
static void mapping_clear(struct mapping *);

/* ---------------------------------------------------------------- errors */

/* Messages quote values from the files: control bytes (a newline in a
 * quoted scalar) become '?' so every error stays one line. */
static void __attribute__((format(printf, 3, 0)))
errors_vadd(struct config_errors *errs, const struct config_pos *pos,
    const char *fmt, va_list ap)
{
	char msg[1024];
	char *line;

	vsnprintf(msg, sizeof(msg), fmt, ap);
	for (char *c = msg; *c; c++)
		if ((unsigned char)*c < 0x20 || *c == 0x7f)
			*c = '?';
	if (pos != NULL && pos->file != NULL && pos->line > 0)
		line = xasprintf("%s:%d:%d: %s", pos->file, pos->line, pos->col, msg);
	else if (pos != NULL && pos->file != NULL)
		line = xasprintf("%s: %s", pos->file, msg);
	else
		line = xstrdup(msg);
	errs->msgs = xrealloc(errs->msgs, (errs->n + 1) * sizeof(char *));
	errs->msgs[errs->n++] = line;
}

void
config_errors_add(struct config_errors *errs, const struct config_pos *pos,
    const char *fmt, ...)
{
	va_list ap;

	if (errs == NULL)
		return;
	va_start(ap, fmt);
	errors_vadd(errs, pos, fmt, ap);
	va_end(ap);
}

void
config_errors_clear(struct config_errors *errs)
{
	for (size_t i = 0; i < errs->n; i++)
		free(errs->msgs[i]);
	free(errs->msgs);
	errs->msgs = NULL;
	errs->n = 0;
}

static struct config_pos
node_pos(const struct parse *p, const yaml_node_t *n)
{
	struct config_pos pos = { p->file, 0, 0 };

	if (!p->defaults) {
		pos.line = (int)n->start_mark.line + 1;
		pos.col = (int)n->start_mark.column + 1;
	}
	return pos;
}

static void __attribute__((format(printf, 3, 4)))
perr_at(struct parse *p, const struct config_pos *pos, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	errors_vadd(p->errs, pos, fmt, ap);
	va_end(ap);
}

static void __attribute__((format(printf, 3, 4)))
perr(struct parse *p, const yaml_node_t *n, const char *fmt, ...)
{
	struct config_pos pos = node_pos(p, n);
	va_list ap;

	va_start(ap, fmt);
	errors_vadd(p->errs, &pos, fmt, ap);
	va_end(ap);
}

/* ------------------------------------------------------- node helpers */

/* The text of a scalar node; NULL for maps, lists and embedded NULs. */
static const char *
scalar(const yaml_node_t *n)
{
	const char *s;

	if (n->type != YAML_SCALAR_NODE)
		return NULL;
	s = (const char *)n->data.scalar.value;
	return strlen(s) == n->data.scalar.length ? s : NULL;
}

/* A plain "", "~" or "null": the key counts as not given. */
static int
is_null(const yaml_node_t *n)
{
	const char *s = scalar(n);

	if (s == NULL || n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
		return 0;
	return *s == '\0' || strcmp(s, "~") == 0 || strcmp(s, "null") == 0 ||
	    strcmp(s, "Null") == 0 || strcmp(s, "NULL") == 0;
}

/* "'value'" (shortened), "a map" or "a list". */
static void
describe(const yaml_node_t *n, char *buf, size_t len)
{
	const char *s = scalar(n);

	if (n->type == YAML_MAPPING_NODE)
		snprintf(buf, len, "a map");
	else if (n->type == YAML_SEQUENCE_NODE)
		snprintf(buf, len, "a list");
	else if (s == NULL)
		snprintf(buf, len, "a value with a NUL byte");
	else
		snprintf(buf, len, "'%.60s%s'", s, strlen(s) > 60 ? "..." : "");
}

static yaml_node_t *
item_node(struct parse *p, yaml_node_item_t *it)
{
	return yaml_document_get_node(p->doc, *it);
}

static void *
field(void *base, const struct cfkey *k)
{
	return (char *)base + k->off;
}

static const char *
leaf(const char *path)
{
	const char *dot = strrchr(path, '.');

	return dot ? dot + 1 : path;
}

/* ------------------------------------------------------ key table walks */

static const char *
expect_of(const struct cfkey *k, char *buf, size_t len)
{
	static const char *const expects[] = {
		[T_SECTION] = "a map of keys",
		[T_STRING] = "a non-empty string",
		[T_HTTPURL] = "an address like https://127.0.0.1:8200",
		[T_PATH] = "a path",
		[T_BOOL] = "true or false",
		[T_UINT] = "a whole number",
		[T_DURATION] = "a duration like 5s, 250ms, 72h",
		[T_LISTEN] = "a listener like \"127.0.0.1:3128\", \"[::1]:3128\", "
		    "\"unix:/path\" or a map with 'address'",
		[T_LISTEN_LIST] = "a list of listeners",
		[T_MAPPINGS] = "a list of mappings",
		[T_NAME] = "a name of letters, digits, '.', '_' and '-'",
		[T_CERTNAME] = "a certificate name of letters, digits, '.', '_' "
		    "and '-' (no '/' or '..')",
		[T_URL] = "a URL like https://host[:port]/path",
		[T_HOSTNAME] = "a host name",
		[T_PINS] = "a list of SHA-256 pins (44 base64 or 64 hex characters)",
		[T_RATE] = "a rate like 10/s, 600/m, 100/h",
		[T_ADDRESS] = "a listener like \"127.0.0.1:3128\", \"[::1]:3128\" "
		    "or \"unix:/path\"",
		[T_MODE] = "an octal file mode like 0660",
		[T_UIDS] = "a list of user ids or user names",
	};
	size_t used;

	if (k->type == T_DURATION && (k->flags & K_MICROS))
		return "a duration like 50us, 1ms, or 0";
	if (k->type != T_ENUM)
		return expects[k->type];
	used = (size_t)snprintf(buf, len, "one of");
	for (size_t i = 0; k->names[i] && used < len; i++)
		used += (size_t)snprintf(buf + used, len - used, "%s %s",
		    i ? "," : "", k->names[i]);
	return buf;
}

static int
bad_value(struct parse *p, const struct cfkey *k, const yaml_node_t *n)
{
	char got[96], ebuf[128];

	describe(n, got, sizeof(got));
	perr(p, n, "%s: expected %s, got %s", k->path, expect_of(k, ebuf,
	    sizeof(ebuf)), got);
	return -1;
}

static int
key_parent_is(const struct cfkey *k, const char *prefix)
{
	const char *l = leaf(k->path);

	if (l == k->path)
		return *prefix == '\0';
	return strlen(prefix) == (size_t)(l - 1 - k->path) &&
	    strncmp(k->path, prefix, strlen(prefix)) == 0;
}

static const struct cfkey *
key_lookup(enum cfscope scope, const char *prefix, const char *name)
{
	for (size_t i = 0; i < N_KEYS; i++)
		if (keys[i].scope == scope && strcmp(leaf(keys[i].path), name) == 0 &&
		    key_parent_is(&keys[i], prefix))
			return &keys[i];
	return NULL;
}

static size_t
key_index(enum cfscope scope, const char *path)
{
	for (size_t i = 0; i < N_KEYS; i++)
		if (keys[i].scope == scope && strcmp(keys[i].path, path) == 0)
			return i;
	fatalx("config: no key %s", path);
}

/* Forget which keys of a scope were seen: a new mapping or listener item. */
static void
reset_scope(struct parse *p, enum cfscope scope)
{
	for (size_t i = 0; i < N_KEYS; i++)
		if (keys[i].scope == scope) {
			memset(&p->seen[i], 0, sizeof(p->seen[i]));
			p->set[i] = 0;
		}
}

/* "in 'timeouts'", "in mapping", "in listener", or "" at the top. */
static void
scope_label(enum cfscope scope, const char *prefix, char *buf, size_t len)
{
	if (*prefix != '\0')
		snprintf(buf, len, " in '%s'", prefix);
	else if (scope == S_MAPPING)
		snprintf(buf, len, " in mapping");
	else if (scope == S_LISTEN)
		snprintf(buf, len, " in listener");
	else
		buf[0] = '\0';
}

static void
check_required(struct parse *p, yaml_node_t *map, enum cfscope scope,
    const char *prefix)
{
	char label[96];

	for (size_t i = 0; i < N_KEYS; i++) {
		if (keys[i].scope != scope || !(keys[i].flags & K_REQUIRED) ||
		    p->set[i] || !key_parent_is(&keys[i], prefix))
			continue;
		scope_label(scope, prefix, label, sizeof(label));
		perr(p, map, "missing required key '%s'%s", leaf(keys[i].path), label);
	}
}

static setter_fn setter_of(enum cftype type);

static void
walk_pair(struct parse *p, yaml_node_t *kn, yaml_node_t *vn,
    enum cfscope scope, const char *prefix, void *base)
{
	const char *name = scalar(kn);
	const struct cfkey *k;
	char label[96];
	size_t i;

	if (name == NULL) {
		perr(p, kn, "expected a key name");
		return;
	}
	k = key_lookup(scope, prefix, name);
	if (p->mapfile && scope == S_MAIN && (k == NULL || !(k->flags & K_MAPFILE))) {
		perr(p, kn, "unknown key '%s' in a mappings file (only "
		    "'mappings' belongs here)", name);
		return;
	}
	if (k == NULL) {
		scope_label(scope, prefix, label, sizeof(label));
		perr(p, kn, "unknown key '%s'%s", name, label);
		return;
	}
	i = (size_t)(k - keys);
	if (p->seen[i].line > 0) {
		perr(p, kn, "duplicate key '%s' (first at line %d, column %d)",
		    k->path, p->seen[i].line, p->seen[i].col);
		return;
	}
	p->seen[i] = node_pos(p, kn);
	if (is_null(vn))
		return;
	p->set[i] = 1;
	setter_of(k->type)(p, k, base, vn);
}

/* Walk one YAML map against the keys of scope under prefix.
 * Returns 0, or -1 when it added errors. */
static int
walk_map(struct parse *p, yaml_node_t *map, enum cfscope scope,
    const char *prefix, void *base)
{
	size_t nerr = p->errs->n;
	yaml_node_pair_t *pair;

	for (pair = map->data.mapping.pairs.start;
	    pair < map->data.mapping.pairs.top; pair++) {
		if (++p->visits > CONFIG_MAX_VISITS) {
			if (p->visits == CONFIG_MAX_VISITS + 1)
				perr(p, map, "document too large (aliases expand "
				    "to more than %u values)", CONFIG_MAX_VISITS);
			return -1;
		}
		walk_pair(p, yaml_document_get_node(p->doc, pair->key),
		    yaml_document_get_node(p->doc, pair->value), scope, prefix, base);
	}
	check_required(p, map, scope, prefix);
	return p->errs->n == nerr ? 0 : -1;
}

/* Defaults are written as YAML text and go through the same setters. */
static void
apply_defaults(struct parse *p, enum cfscope scope, void *base)
{
	char buf[64];
	yaml_node_t n;

	p->defaults = 1;
	for (size_t i = 0; i < N_KEYS; i++) {
		if (keys[i].scope != scope || keys[i].def == NULL)
			continue;
		memset(&n, 0, sizeof(n));
		snprintf(buf, sizeof(buf), "%s", keys[i].def);
		n.type = YAML_SCALAR_NODE;
		n.data.scalar.value = (yaml_char_t *)buf;
		n.data.scalar.length = strlen(buf);
		if (setter_of(keys[i].type)(p, &keys[i], base, &n) < 0)
			fatalx("config: default of %s does not parse", keys[i].path);
	}
	p->defaults = 0;
}

/* ------------------------------------------------------- plain setters */

static int
set_section(struct parse *p, const struct cfkey *k, void *base, yaml_node_t *n)
{
	if (n->type != YAML_MAPPING_NODE)
		return bad_value(p, k, n);
	if (k->off != NOFF)
		*(int *)field(base, k) = 1;
	return walk_map(p, n, k->scope, k->path, base);
}

static int
is_alnum(int c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9');
}

/* [A-Za-z0-9._-]+ */
static int
name_ok(const char *s)
{
	if (*s == '\0' || strlen(s) > 128)
		return 0;
	for (; *s; s++)
		if (!is_alnum((unsigned char)*s) && !strchr("._-", *s))
			return 0;
	return 1;
}

/* A DNS name (letters, digits, '-', '_', single dots) or an IP literal. */
static int
host_ok(const char *s)
{
	struct in6_addr a6;

	if (strchr(s, ':') != NULL)
		return inet_pton(AF_INET6, s, &a6) == 1;
	if (*s == '\0' || *s == '.' || strlen(s) > 253)
		return 0;
	for (; *s; s++) {
		if (s[0] == '.' && (s[1] == '.' || s[1] == '\0'))
			return 0;
		if (!is_alnum((unsigned char)*s) && !strchr(".-_", *s))
			return 0;
	}
	return 1;
}

static void
strip_trailing_dot(char *s)
{
	size_t n = strlen(s);

	if (n > 1 && s[n - 1] == '.')
		s[n - 1] = '\0';
}

static int
string_ok(enum cftype type, char *s)
{
	switch (type) {
	case T_NAME:
		return name_ok(s);
	case T_CERTNAME:
		return name_ok(s) && s[0] != '.' && strstr(s, "..") == NULL;
	case T_HOSTNAME:
		ascii_lower(s);
		strip_trailing_dot(s);
		return host_ok(s);
	case T_HTTPURL:
		return (ascii_ncasecmp(s, "https://", 8) == 0 && s[8]) ||
		    (ascii_ncasecmp(s, "http://", 7) == 0 && s[7]);
	default:
		return *s != '\0';
	}
}

/* T_STRING, T_HTTPURL, T_NAME, T_CERTNAME, T_HOSTNAME: a checked char *. */
static int
set_string(struct parse *p, const struct cfkey *k, void *base, yaml_node_t *n)
{
	char **slot = field(base, k);
	const char *s = scalar(n);
	char *v;

	if (s == NULL)
		return bad_value(p, k, n);
	v = xstrdup(s);
	if (!string_ok(k->type, v)) {
		free(v);
		return bad_value(p, k, n);
	}
	free(*slot);
	*slot = v;
	return 0;
}

/* Lexically drop "." components and doubled slashes; never follows
 * symlinks, so a Kubernetes-style "..data" swap keeps working. */
static void
path_clean(char *s)
{
	char *r = s, *w = s;

	while (*r) {
		if (r[0] == '/' && r[1] == '/')
			r++;
		else if (r[0] == '/' && r[1] == '.' && (r[2] == '/' ||
		    (r[2] == '\0' && w > s)))
			r += 2;
		else
			*w++ = *r++;
	}
	if (w > s + 1 && w[-1] == '/')
		w--;
	*w = '\0';
}

static char *
path_resolve(const struct config *cfg, const char *s)
{
	char *path;

	path = *s == '/' ? xstrdup(s) : xasprintf("%s/%s", cfg->dir, s);
	path_clean(path);
	return path;
}

static int
check_readable(struct parse *p, const struct cfkey *k, yaml_node_t *n,
    const char *path)
{
	struct stat st;
	int fd;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
		perr(p, n, "%s: cannot read '%s': %s", k->path, path, strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) == 0 && !S_ISREG(st.st_mode)) {
		perr(p, n, "%s: '%s' is not a regular file", k->path, path);
		close(fd);
		return -1;
	}
	close(fd);
	return 0;
}

static int
set_path(struct parse *p, const struct cfkey *k, void *base, yaml_node_t *n)
{
	char **slot = field(base, k);
	const char *s = scalar(n);
	char *path;

	if (s == NULL || *s == '\0')
		return bad_value(p, k, n);
	path = path_resolve(p->cfg, s);
	if ((k->flags & K_READABLE) && check_readable(p, k, n, path) < 0) {
		free(path);
		return -1;
	}
	free(*slot);
	*slot = path;
	return 0;
}

static int
set_bool(struct parse *p, const struct cfkey *k, void *base, yaml_node_t *n)
{
	static const char *const yes[] = { "true", "yes", "on" };
	static const char *const no[] = { "false", "no", "off" };
	const char *s = scalar(n);

	for (size_t i = 0; s != NULL && i < ARRAY_LEN(yes); i++) {
		if (ascii_casecmp(s, yes[i]) == 0 || ascii_casecmp(s, no[i]) == 0) {
			*(int *)field(base, k) = ascii_casecmp(s, yes[i]) == 0;
			return 0;
		}
	}
	return bad_value(p, k, n);
}

/* Optional '-', then decimal digits only; no overflow. */
static int
parse_int(const char *s, long long *v)
{
	int neg = *s == '-';
	long long x = 0;

	s += neg;
	if (*s == '\0')
		return -1;
	for (; *s; s++) {
		if (*s < '0' || *s > '9' || x > (0x7fffffffffffffffLL - 9) / 10)
			return -1;
		x = x * 10 + (*s - '0');
	}
	*v = neg ? -x : x;
	return 0;
}

static int
set_uint(struct parse *p, const struct cfkey *k, void *base, yaml_node_t *n)
{
	const char *s = scalar(n);
	long long v;

	if (s == NULL || parse_int(s, &v) < 0)
		return bad_value(p, k, n);
	if (v < k->min || v > k->max) {
		perr(p, n, "%s: must be between %lld and %lld, got %s", k->path,
		    k->min, k->max, s);
		return -1;
	}
	*(unsigned *)field(base, k) = (unsigned)v;
	return 0;
}

/* A T_DURATION key's value as written in YAML, in its unit. */
static void
format_duration(const struct cfkey *k, uint64_t v, char *buf, size_t len)
{
	if (k->flags & K_MICROS)
		duration_format_us(v, buf, len);
	else
		duration_format(v, buf, len);
}

static int
set_duration(struct parse *p, const struct cfkey *k, void *base, yaml_node_t *n)
{
	const char *s = scalar(n);
	char limit[32];
	uint64_t v;
	int micros = (k->flags & K_MICROS) != 0;

	if (s == NULL || (micros ? duration_parse_us(s, &v) : duration_parse(s, &v)) < 0)
		return bad_value(p, k, n);
	if (v < (uint64_t)k->min || (k->max > 0 && v > (uint64_t)k->max)) {
		int low = v < (uint64_t)k->min;
		format_duration(k, (uint64_t)(low ? k->min : k->max), limit, sizeof(limit));
		perr(p, n, "%s: must be at %s %s, got %s", k->path, low ? "least" : "most",
		    limit, s);
		return -1;
	}
	*(uint64_t *)field(base, k) = v;
	return 0;
}

static int
set_enum(struct parse *p, const struct cfkey *k, void *base, yaml_node_t *n)
{
	const char *s = scalar(n);

	for (int i = 0; s != NULL && k->names[i] != NULL; i++) {
		if (strcmp(s, k->names[i]) == 0) {
			*(int *)field(base, k) = i;
			return 0;
		}
	}
	return bad_value(p, k, n);
}

/* -------------------------------------------------------------- listeners */

static int
listen_unix(const char *path, struct listen_spec *spec, char *err, size_t errlen)
{
	struct sockaddr_un *sa = (struct sockaddr_un *)&spec->ss;

	if (path[0] != '/') {
		snprintf(err, errlen, "a unix socket path must be absolute");
		return -1;
	}
	if (strlen(path) >= sizeof(sa->sun_path)) {
		snprintf(err, errlen, "unix socket path longer than %zu bytes",
		    sizeof(sa->sun_path) - 1);
		return -1;
	}
	sa->sun_family = AF_UNIX;
	memcpy(sa->sun_path, path, strlen(path) + 1);
	spec->sslen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) +
	    strlen(path) + 1);
	spec->is_unix = 1;
	spec->unix_path = xstrdup(path);
	return 0;
}

static int
parse_port(const char *s, uint16_t *port)
{
	long long v;

	if (*s == '-' || strlen(s) > 5 || parse_int(s, &v) < 0 || v > 65535)
		return -1;
	*port = (uint16_t)v;
	return 0;
}

/* Split "host:port" or "[v6]:port"; host copied into buf. */
static int
split_hostport(const char *s, char *buf, size_t len, const char **port,
    int *v6, char *err, size_t errlen)
{
	const char *hs = s, *he;

	*v6 = *s == '[';
	if (*v6) {
		hs = s + 1;
		if ((he = strchr(hs, ']')) == NULL || he[1] != ':') {
			snprintf(err, errlen, "expected [IPv6]:port");
			return -1;
		}
		*port = he + 2;
	} else if ((he = strrchr(s, ':')) == NULL) {
		snprintf(err, errlen, "missing :port");
		return -1;
	} else if (memchr(s, ':', (size_t)(he - s)) != NULL) {
		snprintf(err, errlen, "an IPv6 address needs brackets, like [::1]:3128");
		return -1;
	} else
		*port = he + 1;
	if (he == hs || (size_t)(he - hs) >= len) {
		snprintf(err, errlen, "missing or overlong address before the port");
		return -1;
	}
	memcpy(buf, hs, (size_t)(he - hs));
	buf[he - hs] = '\0';
	return 0;
}

/* Numeric addresses only, plus the literal "localhost": never DNS. */
static int
listen_inet(const char *s, struct listen_spec *spec, char *err, size_t errlen)
{
	struct sockaddr_in *sin = (struct sockaddr_in *)&spec->ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&spec->ss;
	char host[INET6_ADDRSTRLEN + 1];
	const char *port;
	uint16_t pnum;
	int v6;

	if (split_hostport(s, host, sizeof(host), &port, &v6, err, errlen) < 0)
		return -1;
	if (parse_port(port, &pnum) < 0) {
		snprintf(err, errlen, "the port must be a number from 0 to 65535");
		return -1;
	}
	if (v6 && inet_pton(AF_INET6, host, &sin6->sin6_addr) == 1) {
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons(pnum);
		spec->sslen = sizeof(*sin6);
		return 0;
	}
	if (!v6 && ascii_casecmp(host, "localhost") == 0)
		snprintf(host, sizeof(host), "127.0.0.1");
	if (v6 || inet_pton(AF_INET, host, &sin->sin_addr) != 1) {
		snprintf(err, errlen, "'%s' is not a numeric IP address (names "
		    "other than localhost are never resolved)", host);
		return -1;
	}
	sin->sin_family = AF_INET;
	sin->sin_port = htons(pnum);
	spec->sslen = sizeof(*sin);
	return 0;
}

int
listen_spec_parse(const char *s, struct listen_spec *spec, char *err, size_t errlen)
{
	int rc;

	memset(spec, 0, sizeof(*spec));
	if (strncmp(s, "unix:", 5) == 0)
		rc = listen_unix(s + 5, spec, err, errlen);
	else
		rc = listen_inet(s, spec, err, errlen);
	if (rc < 0) {
		memset(spec, 0, sizeof(*spec));
		return -1;
	}
	spec->address = xstrdup(s);
	return 0;
}

int
listen_spec_is_loopback(const struct listen_spec *spec)
{
	const struct sockaddr_in *sin = (const struct sockaddr_in *)&spec->ss;
	const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)&spec->ss;

	if (spec->is_unix)
		return 1;
	if (spec->ss.ss_family == AF_INET)
		return (ntohl(sin->sin_addr.s_addr) >> 24) == 127;
	if (spec->ss.ss_family == AF_INET6)
		return IN6_IS_ADDR_LOOPBACK(&sin6->sin6_addr) ||
		    (IN6_IS_ADDR_V4MAPPED(&sin6->sin6_addr) &&
		    sin6->sin6_addr.s6_addr[12] == 127);
	return 0;
}

void
listen_spec_clear(struct listen_spec *spec)
{
	if (spec == NULL)
		return;
	free(spec->address);
	free(spec->unix_path);
	free(spec->group);
	free(spec->allowed_uids);
	memset(spec, 0, sizeof(*spec));
}

static void
listen_spec_free(struct listen_spec *spec)
{
	listen_spec_clear(spec);
	free(spec);
}

/* Parse a listener string into ls, keeping its map-form options. */
static int
listener_address(struct parse *p, const struct cfkey *k, yaml_node_t *n,
    struct listen_spec *ls)
{
	struct listen_spec tmp;
	const char *s = scalar(n);
	char err[160];

	if (s == NULL)
		return bad_value(p, k, n);
	if (listen_spec_parse(s, &tmp, err, sizeof(err)) < 0) {
		perr(p, n, "%s: invalid listener '%s': %s", k->path, s, err);
		return -1;
	}
	free(ls->address);
	free(ls->unix_path);
	ls->address = tmp.address;
	ls->unix_path = tmp.unix_path;
	ls->ss = tmp.ss;
	ls->sslen = tmp.sslen;
	ls->is_unix = tmp.is_unix;
	return 0;
}

static int
listener_check(struct parse *p, const struct cfkey *k, struct listen_spec *ls)
{
	int admin = strcmp(k->path, "admin.listen") == 0;

	if (!ls->is_unix && (ls->has_mode || ls->group || ls->n_allowed_uids)) {
		perr_at(p, &ls->pos, "%s: mode, group and allowed_uids apply "
		    "only to unix: listeners", k->path);
		return -1;
	}
	if (!ls->allow_remote && !listen_spec_is_loopback(ls)) {
		perr_at(p, &ls->pos, "listening on %s would let anyone who can "
		    "reach it %s; set allow_remote: true to allow it", ls->address,
		    admin ? "use the admin endpoint" : "use our client certificates");
		return -1;
	}
	return 0;
}

/* A listener in either form, into the zeroed *ls. */
static int
listener_load(struct parse *p, const struct cfkey *k, yaml_node_t *n,
    struct listen_spec *ls)
{
	ls->pos = node_pos(p, n);
	if (n->type == YAML_MAPPING_NODE) {
		reset_scope(p, S_LISTEN);
		if (walk_map(p, n, S_LISTEN, "", ls) < 0)
			return -1;
	} else if (listener_address(p, k, n, ls) < 0)
		return -1;
	return listener_check(p, k, ls);
}

static int
set_listen(struct parse *p, const struct cfkey *k, void *base, yaml_node_t *n)
{
	struct listen_spec **slot = field(base, k);
	struct listen_spec *ls = xcalloc(1, sizeof(*ls));

	if (listener_load(p, k, n, ls) < 0) {
		listen_spec_free(ls);
		return -1;
	}
	listen_spec_free(*slot);
	*slot = ls;
	return 0;
}

static int
listen_list_add(struct parse *p, const struct cfkey *k, yaml_node_t *n,
    struct listen_spec **list, size_t *nl)
{
	*list = xrealloc(*list, (*nl + 1) * sizeof(**list));
	memset(&(*list)[*nl], 0, sizeof(**list));
	if (listener_load(p, k, n, &(*list)[*nl]) < 0) {
		listen_spec_clear(&(*list)[*nl]);
		return -1;
	}
	(*nl)++;
	return 0;
}

static void
listen_list_free(struct listen_spec *list, size_t n)
{
	for (size_t i = 0; i < n; i++)
		listen_spec_clear(&list[i]);
	free(list);
}

/* A list of listeners; a single listener is a list of one. */
static int
set_listen_list(struct parse *p, const struct cfkey *k, void *base, yaml_node_t *n)
{
	struct listen_spec **slot = field(base, k), *list = NULL;
	size_t *count = (size_t *)((char *)base + k->off_n), nl = 0;
	yaml_node_item_t *it;
	int rc = 0;

	if (n->type != YAML_SEQUENCE_NODE)
		rc = listen_list_add(p, k, n, &list, &nl);
	else
		for (it = n->data.sequence.items.start;
		    it < n->data.sequence.items.top; it++)
			if (listen_list_add(p, k, item_node(p, it), &list, &nl) < 0)
				rc = -1;
	if (rc < 0) {
		listen_list_free(list, nl);
		return -1;
	}
	listen_list_free(*slot, *count);
	*slot = list;
	*count = nl;
	return 0;
}

static int
set_address(struct parse *p, const struct cfkey *k, void *base, yaml_node_t *n)
{
	return listener_address(p, k, n, base);
}

/* "0660", "660" or "0o660": always octal, as chmod reads it. */
static int
set_mode(struct parse *p, const struct cfkey *k, void *base, yaml_node_t *n)
{
	struct listen_spec *ls = base;
	const char *s = scalar(n);
	unsigned v = 0;

	if (s != NULL && (strncmp(s, "0o", 2) == 0 || strncmp(s, "0O", 2) == 0))
		s += 2;
	if (s == NULL || *s == '\0' || strlen(s) > 5)
		return bad_value(p, k, n);
	for (; *s; s++) {
		if (*s < '0' || *s > '7')
			return bad_value(p, k, n);
		v = v * 8 + (unsigned)(*s - '0');
	}
	if (v > 07777)
		return bad_value(p, k, n);
	ls->mode = v;
	ls->has_mode = 1;
	return 0;
}

static int
uid_lookup(const char *s, uid_t *uid)
{
	struct passwd pw, *res = NULL;
	char buf[4096];
	long long v;

	if (parse_int(s, &v) == 0) {
		if (v < 0 || v >= 0xffffffffLL)
			return -1;
		*uid = (uid_t)v;
		return 0;
	}
	if (getpwnam_r(s, &pw, buf, sizeof(buf), &res) != 0 || res == NULL)
		return -1;
	*uid = pw.pw_uid;
	return 0;
}

static int
set_uids(struct parse *p, const struct cfkey *k, void *base, yaml_node_t *n)
{
	struct listen_spec *ls = base;
	yaml_node_item_t *it;
	const char *s;
	uid_t *uids;
	size_t nu = 0;

	if (n->type != YAML_SEQUENCE_NODE)
		return bad_value(p, k, n);
	uids = xcalloc((size_t)(n->data.sequence.items.top -
	    n->data.sequence.items.start) + 1, sizeof(uid_t));
	for (it = n->data.sequence.items.start; it < n->data.sequence.items.top; it++) {
		yaml_node_t *item = item_node(p, it);
		if ((s = scalar(item)) == NULL) {
			free(uids);
			return bad_value(p, k, item);
		}
		if (uid_lookup(s, &uids[nu]) < 0) {
			perr(p, item, "%s: unknown user '%s'", k->path, s);
			free(uids);
			return -1;
		}
		nu++;
	}
	free(ls->allowed_uids);
	ls->allowed_uids = uids;
	ls->n_allowed_uids = nu;
	return 0;
}

/* --------------------------------------------------------------- mappings */

static int
url_port(const char *s, size_t len, uint16_t *port)
{
	char buf[8];

	if (len == 0 || len >= sizeof(buf))
		return -1;
	memcpy(buf, s, len);
	buf[len] = '\0';
	return parse_port(buf, port) < 0 || *port == 0 ? -1 : 0;
}

static int
url_host(const char *auth, size_t alen, struct mapping *m, const char **why)
{
	const char *he = auth + alen, *colon = NULL;
	char *host;

	if (*auth == '[') {
		const char *rb = memchr(auth, ']', alen);
		if (rb == NULL || (rb + 1 < he && rb[1] != ':')) {
			*why = "expected [IPv6] in brackets";
			return -1;
		}
		host = xstrndup(auth + 1, (size_t)(rb - auth - 1));
		colon = rb + 1 < he ? rb + 1 : NULL;
		if (strchr(host, ':') == NULL) {
			free(host);
			*why = "only IPv6 addresses go in brackets";
			return -1;
		}
	} else {
		colon = memchr(auth, ':', alen);
		host = xstrndup(auth, (size_t)((colon ? colon : he) - auth));
	}
	ascii_lower(host);
	strip_trailing_dot(host);
	if (!host_ok(host)) {
		free(host);
		*why = "missing or invalid host";
		return -1;
	}
	m->host = host;
	m->port = 443;
	if (colon != NULL && url_port(colon + 1, (size_t)(he - colon - 1),
	    &m->port) < 0) {
		*why = "the port must be a number from 1 to 65535";
		return -1;
	}
	return 0;
}

/* The path prefix: printable, no "." or ".." segments (routing compares
 * normalised request paths against it). */
static int
url_path_ok(const char *path)
{
	const char *s;

	for (s = path; *s; s++)
		if ((unsigned char)*s <= 0x20 || (unsigned char)*s >= 0x7f)
			return 0;
	for (s = path; (s = strchr(s, '/')) != NULL; s++)
		if ((s[1] == '.' && (s[2] == '/' || s[2] == '\0')) ||
		    (s[1] == '.' && s[2] == '.' && (s[3] == '/' || s[3] == '\0')))
			return 0;
	return 1;
}

/* https://host[:port][/path]: no userinfo, query or fragment. */
static int
url_parse(const char *url, struct mapping *m, const char **why)
{
	const char *auth = url + 8;
	size_t alen;

	if (ascii_ncasecmp(url, "https://", 8) != 0) {
		*why = ascii_ncasecmp(url, "http://", 7) == 0 ?
		    "the scheme must be https (mtlsd only forwards over mutual TLS)" :
		    "expected https://host[:port]/path";
		return -1;
	}
	alen = strcspn(auth, "/");
	if (strpbrk(url, "?#") != NULL) {
		*why = "a query or fragment is not allowed";
		return -1;
	}
	if (memchr(auth, '@', alen) != NULL) {
		*why = "user information (user@) is not allowed";
		return -1;
	}
	if (url_host(auth, alen, m, why) < 0)
		return -1;
	if (!url_path_ok(auth + alen)) {
		*why = "the path must be printable and have no '.' or '..' segments";
		return -1;
	}
	m->path_prefix = xstrdup(auth[alen] ? auth + alen : "/");
	return 0;
}

static int
set_url(struct parse *p, const struct cfkey *k, void *base, yaml_node_t *n)
{
	struct mapping *m = base;
	const char *s = scalar(n), *why = NULL;

	if (s == NULL)
		return bad_value(p, k, n);
	if (url_parse(s, m, &why) < 0) {
		perr(p, n, "%s '%s': %s", k->path, s, why);
		free(m->host);
		m->host = NULL;
		return -1;
	}
	m->url = xstrdup(s);
	return 0;
}

static int
b64val(int c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	return c == '+' ? 62 : c == '/' ? 63 : -1;
}

static int
hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c |= 0x20;
	return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* 44 characters of base64 ending in '=' or 64 hex digits -> 32 bytes. */
static int
pin_decode(const char *s, uint8_t out[32])
{
	uint32_t acc = 0;
	size_t i, bits = 0, o = 0;

	if (strlen(s) == 64) {
		for (i = 0; i < 32; i++) {
			int hi = hexval(s[2 * i]), lo = hexval(s[2 * i + 1]);
			if (hi < 0 || lo < 0)
				return -1;
			out[i] = (uint8_t)(hi << 4 | lo);
		}
		return 0;
	}
	if (strlen(s) != 44 || s[43] != '=')
		return -1;
	for (i = 0; i < 43; i++) {
		int v = b64val((unsigned char)s[i]);
		if (v < 0)
			return -1;
		acc = (acc << 6) | (uint32_t)v;
		if ((bits += 6) >= 8) {
			bits -= 8;
			out[o++] = (uint8_t)(acc >> bits);
		}
	}
	return (acc & ((1u << bits) - 1)) == 0 ? 0 : -1;
}

static int
set_pins(struct parse *p, const struct cfkey *k, void *base, yaml_node_t *n)
{
	uint8_t (**slot)[32] = field(base, k), (*pins)[32];
	size_t *count = (size_t *)((char *)base + k->off_n), np = 0;
	yaml_node_item_t *it;
	const char *s;

	if (n->type != YAML_SEQUENCE_NODE)
		return bad_value(p, k, n);
	pins = xcalloc((size_t)(n->data.sequence.items.top -
	    n->data.sequence.items.start) + 1, 32);
	for (it = n->data.sequence.items.start; it < n->data.sequence.items.top; it++) {
		yaml_node_t *item = item_node(p, it);
		if ((s = scalar(item)) == NULL || pin_decode(s, pins[np]) < 0) {
			free(pins);
			return bad_value(p, k, item);
		}
		np++;
	}
	free(*slot);
	*slot = pins;
	*count = np;
	return 0;
}

static int
set_rate(struct parse *p, const struct cfkey *k, void *base, yaml_node_t *n)
{
	struct mapping *m = base;
	const char *s = scalar(n);
	double rate;
	unsigned burst;

	if (s == NULL || ratelimit_parse(s, &rate) < 0)
		return bad_value(p, k, n);
	burst = (unsigned)rate;
	if ((double)burst < rate)
		burst++;
	m->has_rate_limit = 1;
	m->rate_per_sec = rate;
	m->rate_burst = burst < 1 ? 1 : burst;
	return 0;
}

static void
mapping_clear(struct mapping *m)
{
	free(m->name);
	free(m->url);
	free(m->host);
	free(m->path_prefix);
	listen_spec_free(m->listen);
	free(m->certificate);
	free(m->trust_ca_file);
	free(m->pins);
	free(m->server_name);
	memset(m, 0, sizeof(*m));
}

/* One "- name: ..." item; appended to cfg->mappings only when clean. */
static int
mapping_load(struct parse *p, const struct cfkey *k, yaml_node_t *n)
{
	struct config *cfg = p->cfg;
	size_t nerr = p->errs->n;
	struct mapping m;

	if (n->type != YAML_MAPPING_NODE)
		return bad_value(p, k, n);
	memset(&m, 0, sizeof(m));
	m.pos = node_pos(p, n);
	reset_scope(p, S_MAPPING);
	apply_defaults(p, S_MAPPING, &m);
	walk_map(p, n, S_MAPPING, "", &m);
	if (m.server_name == NULL && m.host != NULL)
		m.server_name = xstrdup(m.host);
	if (p->errs->n != nerr) {
		mapping_clear(&m);
		return -1;
	}
	cfg->mappings = xrealloc(cfg->mappings,
	    (cfg->n_mappings + 1) * sizeof(*cfg->mappings));
	cfg->mappings[cfg->n_mappings++] = m;
	return 0;
}

static int
set_mappings(struct parse *p, const struct cfkey *k, void *base, yaml_node_t *n)
{
	yaml_node_item_t *it;
	int rc = 0;

	(void)base;
	if (n->type != YAML_SEQUENCE_NODE)
		return bad_value(p, k, n);
	for (it = n->data.sequence.items.start; it < n->data.sequence.items.top; it++)
		if (mapping_load(p, k, item_node(p, it)) < 0)
			rc = -1;
	return rc;
}

static setter_fn
setter_of(enum cftype type)
{
	static const setter_fn setters[] = {
		[T_SECTION] = set_section, [T_STRING] = set_string,
		[T_HTTPURL] = set_string, [T_PATH] = set_path,
		[T_BOOL] = set_bool, [T_UINT] = set_uint,
		[T_DURATION] = set_duration, [T_ENUM] = set_enum,
		[T_LISTEN] = set_listen, [T_LISTEN_LIST] = set_listen_list,
		[T_MAPPINGS] = set_mappings, [T_NAME] = set_string,
		[T_CERTNAME] = set_string, [T_URL] = set_url,
		[T_HOSTNAME] = set_string, [T_PINS] = set_pins,
		[T_RATE] = set_rate, [T_ADDRESS] = set_address,
		[T_MODE] = set_mode, [T_UIDS] = set_uids,
	};

	return setters[type];
}

/* ------------------------------------------------------------------ files */

static const char *
config_add_file(struct config *cfg, const char *path)
{
	cfg->files = xrealloc(cfg->files, (cfg->n_files + 1) * sizeof(char *));
	cfg->texts = xrealloc(cfg->texts, (cfg->n_files + 1) * sizeof(char *));
	cfg->files[cfg->n_files] = xstrdup(path);
	cfg->texts[cfg->n_files] = NULL;
	return cfg->files[cfg->n_files++];
}

/* The text a previous configuration read from path (a mapping file). */
static const char *
config_text(const struct config *cfg, const char *path)
{
	/* a kept-back file appears twice: broken (no text), then last good */
	for (size_t i = 0; cfg != NULL && i < cfg->n_files; i++)
		if (cfg->texts[i] != NULL && strcmp(cfg->files[i], path) == 0)
			return cfg->texts[i];
	return NULL;
}

/* libyaml reader errors (bad UTF-8) carry a byte offset, not a mark. */
static void
syntax_error(struct parse *p, const yaml_parser_t *parser, const char *buf)
{
	struct config_pos pos = { p->file, (int)parser->problem_mark.line + 1,
	    (int)parser->problem_mark.column + 1 };

	if (parser->error == YAML_READER_ERROR) {
		pos.line = 1;
		pos.col = 1;
		for (size_t i = 0; i < parser->problem_offset && buf[i]; i++) {
			pos.col = buf[i] == '\n' ? 1 : pos.col + 1;
			pos.line += buf[i] == '\n';
		}
	}
	if (parser->context != NULL)
		perr_at(p, &pos, "YAML syntax error: %s (%s at line %d, column %d)",
		    parser->problem ? parser->problem : "unknown", parser->context,
		    (int)parser->context_mark.line + 1,
		    (int)parser->context_mark.column + 1);
	else
		perr_at(p, &pos, "YAML syntax error: %s",
		    parser->problem ? parser->problem : "unknown");
}

static void
walk_document(struct parse *p, yaml_document_t *doc)
{
	yaml_node_t *root = yaml_document_get_root_node(doc);

	if (root == NULL)
		return;		/* empty file: defaults, no mappings */
	if (root->type != YAML_MAPPING_NODE) {
		perr(p, root, "expected a map of keys at the top of the file");
		return;
	}
	walk_map(p, root, S_MAIN, "", p->cfg);
}

static void
check_single_document(struct parse *p, yaml_parser_t *parser, const char *buf)
{
	yaml_document_t doc;
	yaml_node_t *root;

	if (!yaml_parser_load(parser, &doc)) {
		syntax_error(p, parser, buf);
		return;
	}
	if ((root = yaml_document_get_root_node(&doc)) != NULL)
		perr(p, root, "only one YAML document per file is read; "
		    "remove the second one");
	yaml_document_delete(&doc);
}

/* Walk one file's text. Returns 0 when the YAML itself was readable
 * (other errors may still have been added), -1 otherwise. */
static int
load_text(struct parse *p, const char *buf, size_t len)
{
	yaml_parser_t parser;
	yaml_document_t doc;
	int rc = -1;

	if (!yaml_parser_initialize(&parser))
		fatalx("yaml_parser_initialize");
	yaml_parser_set_input_string(&parser, (const unsigned char *)buf, len);
	if (!yaml_parser_load(&parser, &doc))
		syntax_error(p, &parser, buf);
	else {
		p->doc = &doc;
		walk_document(p, &doc);
		yaml_document_delete(&doc);
		p->doc = NULL;
		check_single_document(p, &parser, buf);
		rc = 0;
	}
	yaml_parser_delete(&parser);
	return rc;
}

/* Read and walk one file; mapping files keep their text (isolation). */
static int
load_file(struct parse *p, const char *path)
{
	struct config_pos fpos;
	size_t len;
	char *buf;
	int rc;

	p->file = config_add_file(p->cfg, path);
	fpos = (struct config_pos){ p->file, 0, 0 };
	if ((buf = read_file(path, CONFIG_MAX_FILE, &len)) == NULL) {
		perr_at(p, &fpos, "cannot read: %s", strerror(errno));
		return -1;
	}
	rc = load_text(p, buf, len);
	if (p->mapfile)
		p->cfg->texts[p->cfg->n_files - 1] = buf;
	else
		free(buf);
	return rc;
}

static void
parse_init(struct parse *p, struct config *cfg, struct config_errors *errs,
    int mapfile)
{
	memset(p, 0, sizeof(*p));
	p->cfg = cfg;
	p->errs = errs;
	p->mapfile = mapfile;
	p->file = cfg->path;
}

static int
yaml_name(const struct dirent *d)
{
	size_t n = strlen(d->d_name);

	if (d->d_name[0] == '.')	/* hidden, and Kubernetes' ..data */
		return 0;
	return (n > 5 && strcmp(d->d_name + n - 5, ".yaml") == 0) ||
	    (n > 4 && strcmp(d->d_name + n - 4, ".yml") == 0);
}

/* Byte order, not the locale's collation: the same order everywhere. */
static int
name_cmp(const struct dirent **a, const struct dirent **b)
{
	return strcmp((*a)->d_name, (*b)->d_name);
}

/* The main file may sit in mappings_dir ("mappings_dir: ."): not twice. */
static int
same_file(const char *a, const char *b)
{
	struct stat sa, sb;

	return stat(a, &sa) == 0 && stat(b, &sb) == 0 && sa.st_dev == sb.st_dev &&
	    sa.st_ino == sb.st_ino;
}

/* Move errs[from..] to the isolated list, marked as kept back. */
static void
isolate_errors(struct parse *main_p, size_t from, const char *path, int kept)
{
	struct config_errors *errs = main_p->errs;

	for (size_t i = from; i < errs->n; i++) {
		config_errors_add(main_p->isolated, NULL, "%s", errs->msgs[i]);
		free(errs->msgs[i]);
	}
	errs->n = from;
	config_errors_add(main_p->isolated, NULL, kept ?
	    "%s: not applied; its mappings keep their last good version" :
	    "%s: not applied; its mappings are not loaded until it is fixed", path);
}

static void
drop_mappings_from(struct config *cfg, size_t n)
{
	while (cfg->n_mappings > n)
		mapping_clear(&cfg->mappings[--cfg->n_mappings]);
}

/* One mapping file. On a reload (main_p->isolated), a broken file does not
 * fail the reload: its mappings come from the text the running
 * configuration read from it, or stay absent if it had none. */
static void
load_mapping_file(struct parse *main_p, const char *path)
{
	struct config *cfg = main_p->cfg;
	size_t nerr = main_p->errs->n, nmap = cfg->n_mappings, nfile = cfg->n_files;
	const char *good;
	struct parse p;

	parse_init(&p, cfg, main_p->errs, 1);
	load_file(&p, path);
	if (main_p->isolated == NULL || main_p->errs->n == nerr)
		return;
	drop_mappings_from(cfg, nmap);
	free(cfg->texts[nfile]);        /* a broken text is never "last good" */
	cfg->texts[nfile] = NULL;
	good = config_text(main_p->prev, path);
	isolate_errors(main_p, nerr, path, good != NULL);
	if (good == NULL)
		return;
	parse_init(&p, cfg, main_p->errs, 1);
	p.file = config_add_file(cfg, path);
	cfg->texts[cfg->n_files - 1] = xstrdup(good);
	load_text(&p, good, strlen(good));
	if (main_p->errs->n != nerr) {         /* e.g. its trust file went away */
		drop_mappings_from(cfg, nmap);
		isolate_errors(main_p, nerr, path, 0);
	}
}

static void
load_mappings_dir(struct parse *main_p)
{
	struct config *cfg = main_p->cfg;
	struct dirent **ents;
	struct config_pos pos = main_p->seen[key_index(S_MAIN, "mappings_dir")];
	int n;

	if ((n = scandir(cfg->mappings_dir, &ents, yaml_name, name_cmp)) < 0) {
		pos.file = main_p->file;
		perr_at(main_p, &pos, "mappings_dir '%s': %s", cfg->mappings_dir,
		    strerror(errno));
		return;
	}
	for (int i = 0; i < n; i++) {
		char *path = xasprintf("%s/%s", cfg->mappings_dir, ents[i]->d_name);
		if (!same_file(path, cfg->path))
			load_mapping_file(main_p, path);
		free(path);
		free(ents[i]);
	}
	free(ents);
}

/* ------------------------------------------------------ whole-config checks */

/* Tokens and keys cross this link: https, or http to this host only. */
static int
vault_address_ok(const char *a)
{
	static const char *const local[] = { "127.0.0.1", "localhost", "[::1]" };

	if (ascii_ncasecmp(a, "http://", 7) != 0)
		return 1;
	a += 7;
	for (size_t i = 0; i < ARRAY_LEN(local); i++) {
		size_t n = strlen(local[i]);
		if (ascii_ncasecmp(a, local[i], n) == 0 &&
		    (a[n] == '\0' || a[n] == ':' || a[n] == '/'))
			return 1;
	}
	return 0;
}

static void
check_vault(struct parse *p)
{
	const struct config *cfg = p->cfg;
	size_t auth = key_index(S_MAIN, "vault.auth");
	int approle = p->set[key_index(S_MAIN, "vault.auth.approle")];

	if (!cfg->vault.configured || !p->set[auth])
		return;
	if (cfg->vault.token_file != NULL && approle)
		perr_at(p, &p->seen[auth], "vault.auth: use either token_file "
		    "or approle, not both");
	else if (cfg->vault.token_file == NULL && !approle)
		perr_at(p, &p->seen[auth], "vault.auth: needs token_file or approle");
	if (cfg->vault.address != NULL && !vault_address_ok(cfg->vault.address))
		perr_at(p, &p->seen[key_index(S_MAIN, "vault.address")], "vault.address: "
		    "plain http is allowed only to a loopback address (a local Vault Agent); "
		    "use https");
}

static void
check_mapping_names(struct config *cfg, struct config_errors *errs)
{
	for (size_t i = 1; i < cfg->n_mappings; i++) {
		for (size_t j = 0; j < i; j++) {
			const struct mapping *a = &cfg->mappings[j];
			const struct mapping *b = &cfg->mappings[i];
			if (strcmp(a->name, b->name) != 0)
				continue;
			config_errors_add(errs, &b->pos, "duplicate mapping name '%s' "
			    "(first defined at %s:%d:%d)", b->name, a->pos.file,
			    a->pos.line, a->pos.col);
			break;
		}
	}
}

struct listener_ref {
	const struct listen_spec *ls;
	const char *key;	/* proxy.listen, admin.listen, or NULL: a mapping */
	const char *mapping;
};

/* Same socket, or the same port with a wildcard address on either side. */
static int
listen_conflict(const struct listen_spec *a, const struct listen_spec *b)
{
	const struct sockaddr_in *a4 = (const struct sockaddr_in *)&a->ss;
	const struct sockaddr_in *b4 = (const struct sockaddr_in *)&b->ss;
	const struct sockaddr_in6 *a6 = (const struct sockaddr_in6 *)&a->ss;
	const struct sockaddr_in6 *b6 = (const struct sockaddr_in6 *)&b->ss;

	if (a->is_unix || b->is_unix)
		return a->is_unix && b->is_unix &&
		    strcmp(a->unix_path, b->unix_path) == 0;
	if (a->ss.ss_family != b->ss.ss_family)
		return 0;
	if (a->ss.ss_family == AF_INET)
		return a4->sin_port != 0 && a4->sin_port == b4->sin_port &&
		    (a4->sin_addr.s_addr == b4->sin_addr.s_addr ||
		    a4->sin_addr.s_addr == INADDR_ANY ||
		    b4->sin_addr.s_addr == INADDR_ANY);
	return a6->sin6_port != 0 && a6->sin6_port == b6->sin6_port &&
	    (IN6_ARE_ADDR_EQUAL(&a6->sin6_addr, &b6->sin6_addr) ||
	    IN6_IS_ADDR_UNSPECIFIED(&a6->sin6_addr) ||
	    IN6_IS_ADDR_UNSPECIFIED(&b6->sin6_addr));
}

static size_t
collect_listeners(const struct config *cfg, struct listener_ref *refs)
{
	size_t n = 0;

	for (size_t i = 0; i < cfg->n_proxy_listen; i++)
		refs[n++] = (struct listener_ref){ &cfg->proxy_listen[i],
		    "proxy.listen", NULL };
	if (cfg->admin_listen != NULL)
		refs[n++] = (struct listener_ref){ cfg->admin_listen, "admin.listen",
		    NULL };
	for (size_t i = 0; i < cfg->n_mappings; i++)
		if (cfg->mappings[i].listen != NULL)
			refs[n++] = (struct listener_ref){ cfg->mappings[i].listen, NULL,
			    cfg->mappings[i].name };
	return n;
}

static void
listen_conflict_error(struct config_errors *errs, const struct listener_ref *b,
    const struct listener_ref *a)
{
	char who[160], where[PATH_MAX + 32];

	if (a->key != NULL)
		snprintf(who, sizeof(who), "%s", a->key);
	else
		snprintf(who, sizeof(who), "mapping '%s'", a->mapping);
	if (a->ls->pos.line > 0)
		snprintf(where, sizeof(where), "at %s:%d:%d", a->ls->pos.file,
		    a->ls->pos.line, a->ls->pos.col);
	else
		snprintf(where, sizeof(where), "(its default)");
	config_errors_add(errs, &b->ls->pos, "listen address '%s' is already "
	    "used by %s %s", b->ls->address, who, where);
}

static void
check_listeners(const struct config *cfg, struct config_errors *errs)
{
	struct listener_ref *refs;
	size_t n;

	refs = xcalloc(cfg->n_proxy_listen + cfg->n_mappings + 1, sizeof(*refs));
	n = collect_listeners(cfg, refs);
	for (size_t i = 1; i < n; i++) {
		for (size_t j = 0; j < i; j++) {
			if (listen_conflict(refs[j].ls, refs[i].ls)) {
				listen_conflict_error(errs, &refs[i], &refs[j]);
				break;
			}
		}
	}
	free(refs);
}

/* The directory of the main file, made absolute without resolving symlinks. */
static char *
config_dir(const char *path)
{
	char *abs, *cwd, *slash;

	if (path[0] == '/')
		abs = xstrdup(path);
	else {
		if ((cwd = getcwd(NULL, 0)) == NULL)
			fatal("getcwd");
		abs = xasprintf("%s/%s", cwd, path);
		free(cwd);
	}
	path_clean(abs);
	slash = strrchr(abs, '/');
	slash[slash == abs ? 1 : 0] = '\0';
	return abs;
}

struct config *
config_load(const char *path, struct config_errors *errs)
{
	return config_reload(path, NULL, errs, NULL);
}

struct config *
config_reload(const char *path, const struct config *prev, struct config_errors *errs,
    struct config_errors *isolated)
{
	struct config_errors local = { NULL, 0 };
	struct config *cfg = xcalloc(1, sizeof(*cfg));
	struct parse *p = xmalloc(sizeof(*p));
	size_t nerr;
	int failed;

	if (errs == NULL)
		errs = &local;
	nerr = errs->n;
	cfg->path = xstrdup(path);
	cfg->dir = config_dir(path);
	parse_init(p, cfg, errs, 0);
	p->prev = prev;
	p->isolated = isolated;
	apply_defaults(p, S_MAIN, cfg);
	if (load_file(p, path) == 0) {
		check_vault(p);
		load_mappings_dir(p);
		check_mapping_names(cfg, errs);
		check_listeners(cfg, errs);
	}
	free(p);
	failed = errs->n != nerr;
	config_errors_clear(&local);
	if (failed) {
		config_free(cfg);
		return NULL;
	}
	return cfg;
}

void
config_free(struct config *cfg)
{
	if (cfg == NULL)
		return;
	for (size_t i = 0; i < cfg->n_files; i++) {
		free(cfg->files[i]);
		free(cfg->texts[i]);
	}
	free(cfg->files);
	free(cfg->texts);
	listen_list_free(cfg->proxy_listen, cfg->n_proxy_listen);
	listen_spec_free(cfg->admin_listen);
	free(cfg->mappings_dir);
	free(cfg->certs_dir);
	free(cfg->state_dir);
	free(cfg->vault.address);
	free(cfg->vault.ca_file);
	free(cfg->vault.namespace);
	free(cfg->vault.token_file);
	free(cfg->vault.role_id_file);
	free(cfg->vault.secret_id_file);
	free(cfg->vault.approle_mount);
	for (size_t i = 0; i < cfg->n_mappings; i++)
		mapping_clear(&cfg->mappings[i]);
	free(cfg->mappings);
	free(cfg->path);
	free(cfg->dir);
	free(cfg);
}

const struct mapping *
config_find_mapping(const struct config *cfg, const char *name)
{
	for (size_t i = 0; i < cfg->n_mappings; i++)
		if (strcmp(cfg->mappings[i].name, name) == 0)
			return &cfg->mappings[i];
	return NULL;
}

/* ------------------------------------------------------- dump and compare */

static void
listen_format(const struct listen_spec *ls, char *buf, size_t len)
{
	size_t n = (size_t)snprintf(buf, len, "%s", ls->address);

	if (ls->allow_remote && n < len)
		n += (size_t)snprintf(buf + n, len - n, " allow_remote");
	if (ls->has_mode && n < len)
		n += (size_t)snprintf(buf + n, len - n, " mode=%04o", ls->mode);
	if (ls->group && n < len)
		n += (size_t)snprintf(buf + n, len - n, " group=%s", ls->group);
	for (size_t i = 0; i < ls->n_allowed_uids && n < len; i++)
		n += (size_t)snprintf(buf + n, len - n, "%s%u", i ? "," : " uids=",
		    (unsigned)ls->allowed_uids[i]);
}

static void
listen_list_format(const struct listen_spec *list, size_t nl, char *buf, size_t len)
{
	size_t n = (size_t)snprintf(buf, len, "[");

	for (size_t i = 0; i < nl && n < len; i++) {
		n += (size_t)snprintf(buf + n, len - n, "%s", i ? ", " : "");
		if (n < len)
			listen_format(&list[i], buf + n, len - n);
		n += strlen(buf + n);
	}
	if (n < len)
		snprintf(buf + n, len - n, "]");
}

/* One key's effective value as text; "" for sections and lists of maps. */
static void
key_format(const struct cfkey *k, const void *base, char *buf, size_t len)
{
	const char *f = (const char *)base + (k->off == NOFF ? 0 : k->off);
	const struct mapping *m = base;

	buf[0] = '\0';
	switch (k->type) {
	case T_STRING: case T_HTTPURL: case T_PATH: case T_NAME:
	case T_CERTNAME: case T_HOSTNAME:
		snprintf(buf, len, "%s", *(char *const *)f ? *(char *const *)f : "~");
		break;
	case T_BOOL:
		snprintf(buf, len, "%s", *(const int *)f ? "true" : "false");
		break;
	case T_UINT:
		snprintf(buf, len, "%u", *(const unsigned *)f);
		break;
	case T_DURATION:
		format_duration(k, *(const uint64_t *)f, buf, len);
		break;
	case T_ENUM:
		snprintf(buf, len, "%s", k->names[*(const int *)f]);
		break;
	case T_LISTEN:
		if (*(struct listen_spec *const *)f)
			listen_format(*(struct listen_spec *const *)f, buf, len);
		else
			snprintf(buf, len, "~");
		break;
	case T_LISTEN_LIST:
		listen_list_format(*(struct listen_spec *const *)f,
		    *(const size_t *)((const char *)base + k->off_n), buf, len);
		break;
	case T_URL:
		snprintf(buf, len, "%s", m->url);
		break;
	case T_PINS:
		snprintf(buf, len, "%zu pin(s)", m->n_pins);
		break;
	case T_RATE:
		if (m->has_rate_limit)
			snprintf(buf, len, "%g/s burst %u", m->rate_per_sec, m->rate_burst);
		else
			snprintf(buf, len, "~");
		break;
	default:
		break;
	}
}

static int
key_dumpable(const struct cfkey *k)
{
	return k->type != T_SECTION && k->type != T_MAPPINGS && k->scope != S_LISTEN;
}

void
config_dump(const struct config *cfg, FILE *fp)
{
	char buf[1024];

	for (size_t i = 0; i < N_KEYS; i++) {
		if (keys[i].scope != S_MAIN || !key_dumpable(&keys[i]))
			continue;
		key_format(&keys[i], cfg, buf, sizeof(buf));
		fprintf(fp, "%s: %s\n", keys[i].path, buf);
	}
	for (size_t m = 0; m < cfg->n_mappings; m++) {
		for (size_t i = 0; i < N_KEYS; i++) {
			if (keys[i].scope != S_MAPPING || !key_dumpable(&keys[i]))
				continue;
			key_format(&keys[i], &cfg->mappings[m], buf, sizeof(buf));
			fprintf(fp, "mappings.%s.%s: %s\n", cfg->mappings[m].name,
			    keys[i].path, buf);
		}
	}
}

const char *
config_restart_needed(const struct config *old, const struct config *next)
{
	char a[1024], b[1024];

	for (size_t i = 0; i < N_KEYS; i++) {
		if (keys[i].scope != S_MAIN || (keys[i].flags & K_RELOAD) ||
		    !key_dumpable(&keys[i]))
			continue;
		key_format(&keys[i], old, a, sizeof(a));
		key_format(&keys[i], next, b, sizeof(b));
		if (strcmp(a, b) != 0)
			return keys[i].path;
	}
	return NULL;
}
