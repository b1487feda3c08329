/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * JSON through libyaml. A JSON text is YAML flow syntax, so the document
 * loader does the parsing; what YAML allows and JSON does not (block style,
 * tags, aliases, unquoted keys, empty values, a second document) is refused
 * after loading, so callers see JSON only. Strings are the quoted scalars;
 * numbers, true, false and null are plain scalars.
 */
#include "autoconf.h"

#include <errno.h>
#include <event2/buffer.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "json.h"
#include "log.h"
#include "util.h"

struct json {
	yaml_document_t doc;
};

#define ADD_LIT(b, lit) evbuffer_add((b), (lit), sizeof(lit) - 1)

/* --- parsing ------------------------------------------------------------ */

/* Line and column (1-based) of byte off in buf. */
static void
position(const char *buf, size_t len, size_t off, size_t *line, size_t *col)
{
	*line = *col = 1;
	for (size_t i = 0; i < off && i < len; i++) {
		*col = buf[i] == '\n' ? 1 : *col + 1;
		*line += buf[i] == '\n';
	}
}

/* Reader errors (bad UTF-8, control characters) carry a byte offset, not a
 * mark; at the end of the input libyaml's mark sits on a line after the
 * last one. Both are counted from the text so the place is a real one. */
static void
parse_error(const yaml_parser_t *p, const char *buf, size_t len, char *err, size_t errlen)
{
	size_t line = p->problem_mark.line + 1, col = p->problem_mark.column + 1;
	const char *what = p->problem != NULL ? p->problem : "out of memory";
	int at_end = 0;

	if (p->error == YAML_READER_ERROR)
		position(buf, len, p->problem_offset, &line, &col);
	else if (p->problem_mark.index >= len && strstr(what, "end of stream") == NULL) {
		position(buf, len, len, &line, &col);
		at_end = 1;
	}
	snprintf(err, errlen, "line %zu column %zu: %s%s", line, col, what,
	    at_end ? " (at the end of the input)" : "");
}

static void
node_error(const yaml_node_t *n, const char *what, char *err, size_t errlen)
{
	snprintf(err, errlen, "line %zu column %zu: %s", n->start_mark.line + 1,
	    n->start_mark.column + 1, what);
}

static const char *
digits(const char *s)
{
	while (*s >= '0' && *s <= '9')
		s++;
	return s;
}

/* RFC 8259 number: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)? */
static int
is_number(const char *s)
{
	const char *e;

	s += *s == '-';
	if (*s == '0')
		s++;
	else if ((e = digits(s)) == s)
		return 0;
	else
		s = e;
	if (*s == '.') {
		if ((e = digits(s + 1)) == s + 1)
			return 0;
		s = e;
	}
	if (*s == 'e' || *s == 'E') {
		s++;
		s += *s == '+' || *s == '-';
		if ((e = digits(s)) == s)
			return 0;
		s = e;
	}
	return *s == '\0';
}

/* Unquoted, only JSON's literals and numbers: YAML would also take
 * "yes", "~" or an HTML error page as a plain string. */
static const char *
plain_problem(const yaml_node_t *n)
{
	const char *s = (const char *)n->data.scalar.value;

	if (n->data.scalar.length == 0)
		return "expected a value";      /* libyaml reads {"a":} so */
	if (strlen(s) != n->data.scalar.length ||
	    (strcmp(s, "true") != 0 && strcmp(s, "false") != 0 && strcmp(s, "null") != 0 &&
		!is_number(s)))
		return "not a JSON value (unquoted text)";
	return NULL;
}

static const char *
scalar_problem(const yaml_node_t *n)
{
	if (strcmp((const char *)n->tag, YAML_DEFAULT_SCALAR_TAG) != 0)
		return "tags are not JSON";
	switch (n->data.scalar.style) {
	case YAML_PLAIN_SCALAR_STYLE:
		return plain_problem(n);
	case YAML_SINGLE_QUOTED_SCALAR_STYLE:
	case YAML_DOUBLE_QUOTED_SCALAR_STYLE:
		return NULL;
	default:
		return "block scalars are not JSON";
	}
}

static const char *
mapping_problem(const yaml_document_t *d, const yaml_node_t *n)
{
	if (strcmp((const char *)n->tag, YAML_DEFAULT_MAPPING_TAG) != 0)
		return "tags are not JSON";
	if (n->data.mapping.style != YAML_FLOW_MAPPING_STYLE)
		return "block mappings are not JSON";
	for (const yaml_node_pair_t *p = n->data.mapping.pairs.start;
	    p < n->data.mapping.pairs.top; p++) {
		const yaml_node_t *k = d->nodes.start + p->key - 1;

		if (k->type != YAML_SCALAR_NODE || k->data.scalar.style == YAML_PLAIN_SCALAR_STYLE)
			return "object keys must be strings";
	}
	return NULL;
}

/* What makes node n not JSON, or NULL; adds its child references to refs. */
static const char *
node_problem(const yaml_document_t *d, const yaml_node_t *n, size_t *refs)
{
	switch (n->type) {
	case YAML_SCALAR_NODE:
		return scalar_problem(n);
	case YAML_SEQUENCE_NODE:
		*refs += (size_t)(n->data.sequence.items.top - n->data.sequence.items.start);
		if (strcmp((const char *)n->tag, YAML_DEFAULT_SEQUENCE_TAG) != 0)
			return "tags are not JSON";
		if (n->data.sequence.style != YAML_FLOW_SEQUENCE_STYLE)
			return "block sequences are not JSON";
		return NULL;
	case YAML_MAPPING_NODE:
		*refs += 2 * (size_t)(n->data.mapping.pairs.top - n->data.mapping.pairs.start);
		return mapping_problem(d, n);
	default:
		return "unexpected node";
	}
}

/* Refuse the YAML that is not JSON. In a tree every node but the root is
 * referenced exactly once; more references mean an alias shares a node. */
static int
check_json(const yaml_document_t *d, char *err, size_t errlen)
{
	size_t nodes = (size_t)(d->nodes.top - d->nodes.start), refs = 0;
	const char *what;

	if (nodes == 0) {
		snprintf(err, errlen, "line 1 column 1: no JSON value");
		return -1;
	}
	for (const yaml_node_t *n = d->nodes.start; n < d->nodes.top; n++) {
		if ((what = node_problem(d, n, &refs)) != NULL) {
			node_error(n, what, err, errlen);
			return -1;
		}
	}
	if (refs + 1 != nodes) {
		node_error(d->nodes.start, "aliases are not JSON", err, errlen);
		return -1;
	}
	return 0;
}

/* Scalars may be tokens or private keys: wipe them before libyaml frees. */
static void
doc_wipe_delete(yaml_document_t *d)
{
	for (yaml_node_t *n = d->nodes.start; n < d->nodes.top; n++)
		if (n->type == YAML_SCALAR_NODE)
			explicit_bzero(n->data.scalar.value, n->data.scalar.length);
	yaml_document_delete(d);
}

/* A "---" would start a second document that yaml_parser_load leaves
 * unread: load once more and expect nothing. */
static int
check_single(yaml_parser_t *p, const char *buf, size_t len, char *err, size_t errlen)
{
	yaml_document_t doc;
	int rc = 0;

	if (!yaml_parser_load(p, &doc)) {
		parse_error(p, buf, len, err, errlen);
		return -1;
	}
	if (doc.nodes.start < doc.nodes.top) {
		node_error(doc.nodes.start, "trailing data after the value", err, errlen);
		rc = -1;
	}
	doc_wipe_delete(&doc);
	return rc;
}

/* libyaml frees its read buffers, copies of the input, without wiping
 * them. Out of our reach: what its string growth leaves in freed memory,
 * and the scalars of a document that failed to load. */
static void
parser_wipe_delete(yaml_parser_t *p)
{
	if (p->raw_buffer.start != NULL)
		explicit_bzero(p->raw_buffer.start,
		    (size_t)(p->raw_buffer.end - p->raw_buffer.start));
	if (p->buffer.start != NULL)
		explicit_bzero(p->buffer.start, (size_t)(p->buffer.end - p->buffer.start));
	yaml_parser_delete(p);
}

struct json *
json_parse(const char *buf, size_t len, char *err, size_t errlen)
{
	yaml_parser_t parser;
	struct json *j = xcalloc(1, sizeof(*j));

	if (!yaml_parser_initialize(&parser))
		fatalx("yaml_parser_initialize: out of memory");
	if (buf == NULL)
		buf = "", len = 0;
	yaml_parser_set_input_string(&parser, (const unsigned char *)buf, len);
	if (!yaml_parser_load(&parser, &j->doc)) {
		parse_error(&parser, buf, len, err, errlen);
		parser_wipe_delete(&parser);
		free(j);
		return NULL;
	}
	if (check_json(&j->doc, err, errlen) == -1 ||
	    check_single(&parser, buf, len, err, errlen) == -1) {
		parser_wipe_delete(&parser);
		json_free(j);
		return NULL;
	}
	parser_wipe_delete(&parser);
	return j;
}

void
json_free(struct json *j)
{
	if (j == NULL)
		return;
	doc_wipe_delete(&j->doc);
	free(j);
}

/* --- reading ------------------------------------------------------------ */

/* Node index to node; NULL for 0 and anything out of range. */
static const yaml_node_t *
node_at(const struct json *j, int node)
{
	if (j == NULL || node < 1 || node > j->doc.nodes.top - j->doc.nodes.start)
		return NULL;
	return j->doc.nodes.start + node - 1;
}

static const yaml_node_t *
plain_at(const struct json *j, int node)
{
	const yaml_node_t *n = node_at(j, node);

	if (n == NULL || n->type != YAML_SCALAR_NODE ||
	    n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
		return NULL;
	return n;
}

int
json_root(const struct json *j)
{
	return node_at(j, 1) != NULL ? 1 : 0;
}

/* The first member wins when a key repeats (JSON leaves that open). */
static int
get_n(const struct json *j, int obj, const char *key, size_t keylen)
{
	const yaml_node_t *n = node_at(j, obj);

	if (n == NULL || n->type != YAML_MAPPING_NODE)
		return 0;
	for (const yaml_node_pair_t *p = n->data.mapping.pairs.start;
	    p < n->data.mapping.pairs.top; p++) {
		const yaml_node_t *k = node_at(j, p->key);

		if (k != NULL && k->data.scalar.length == keylen &&
		    memcmp(k->data.scalar.value, key, keylen) == 0)
			return p->value;
	}
	return 0;
}

int
json_get(const struct json *j, int obj, const char *key)
{
	if (key == NULL)
		return 0;
	return get_n(j, obj, key, strlen(key));
}

int
json_path(const struct json *j, int node, const char *dotted)
{
	const char *dot;

	if (dotted == NULL)
		return 0;
	for (;;) {
		dot = strchr(dotted, '.');
		if (dot == NULL)
			return get_n(j, node, dotted, strlen(dotted));
		if ((node = get_n(j, node, dotted, (size_t)(dot - dotted))) == 0)
			return 0;
		dotted = dot + 1;
	}
}

/* A string holding "\u0000" would read shorter as a C string than it is:
 * refuse it rather than hand out a silently truncated token or key. */
const char *
json_string(const struct json *j, int node)
{
	const yaml_node_t *n = node_at(j, node);
	const char *s;

	if (n == NULL || n->type != YAML_SCALAR_NODE ||
	    n->data.scalar.style == YAML_PLAIN_SCALAR_STYLE)
		return NULL;
	s = (const char *)n->data.scalar.value;
	if (memchr(s, '\0', n->data.scalar.length) != NULL)
		return NULL;
	return s;
}

int
json_is_null(const struct json *j, int node)
{
	const yaml_node_t *n;

	if (node == 0)
		return 1;
	n = plain_at(j, node);
	return n != NULL && strcmp((const char *)n->data.scalar.value, "null") == 0;
}

int
json_int(const struct json *j, int node, long long *out)
{
	const yaml_node_t *n = plain_at(j, node);
	const char *s;
	char *end;
	long long v;

	if (n == NULL)
		return -1;
	s = (const char *)n->data.scalar.value;
	/* plain scalars were checked to be JSON numbers or literals, so
	 * strtoll sees no sign, space or prefix it would take and JSON not */
	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0')
		return -1;
	*out = v;
	return 0;
}

int
json_bool(const struct json *j, int node, int *out)
{
	const yaml_node_t *n = plain_at(j, node);

	if (n == NULL)
		return -1;
	if (strcmp((const char *)n->data.scalar.value, "true") == 0)
		*out = 1;
	else if (strcmp((const char *)n->data.scalar.value, "false") == 0)
		*out = 0;
	else
		return -1;
	return 0;
}

size_t
json_array_len(const struct json *j, int node)
{
	const yaml_node_t *n = node_at(j, node);

	if (n == NULL || n->type != YAML_SEQUENCE_NODE)
		return 0;
	return (size_t)(n->data.sequence.items.top - n->data.sequence.items.start);
}

int
json_array_at(const struct json *j, int node, size_t i)
{
	if (i >= json_array_len(j, node))
		return 0;
	return node_at(j, node)->data.sequence.items.start[i];
}

int
json_is_object(const struct json *j, int node)
{
	const yaml_node_t *n = node_at(j, node);

	return n != NULL && n->type == YAML_MAPPING_NODE;
}

/* --- writing ------------------------------------------------------------ */

/* Length of the well-formed UTF-8 sequence at s (RFC 3629: no overlongs, no
 * surrogates, nothing above U+10FFFF), or 0. */
size_t
json_utf8_len(const unsigned char *s)
{
	size_t n;
	unsigned min;
	unsigned c = s[0];

	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf)
		n = 2, c &= 0x1f, min = 0x80;
	else if (c >= 0xe0 && c <= 0xef)
		n = 3, c &= 0x0f, min = 0x800;
	else if (c >= 0xf0 && c <= 0xf4)
		n = 4, c &= 0x07, min = 0x10000;
	else
		return 0;
	for (size_t i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;       /* also stops at the NUL */
		c = (c << 6) | (s[i] & 0x3f);
	}
	if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
		return 0;
	return n;
}

size_t
json_escape(char *dst, size_t room, const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t len = 0;

	if (room < (s == NULL ? 5 : 3))
		return 0;
	if (s == NULL)
		return (size_t)snprintf(dst, room, "null");
	dst[len++] = '"';
	while (*p != '\0') {
		size_t n = json_utf8_len(p);
		char esc[8];
		const char *piece = esc;
		size_t plen;

		if (*p == '"' || *p == '\\' || *p == '\n' || *p == '\r' || *p == '\t')
			plen = (size_t)snprintf(esc, sizeof(esc), "\\%c",
			    *p == '\n' ? 'n' : *p == '\r' ? 'r' : *p == '\t' ? 't' : *p);
		else if (*p < 0x20 || *p == 0x7f)
			plen = (size_t)snprintf(esc, sizeof(esc), "\\u%04x", *p);
		else if (n == 0)
			plen = (size_t)snprintf(esc, sizeof(esc), "\\ufffd");
		else
			piece = (const char *)p, plen = n;
		if (len + plen + 2 > room)
			break; /* cut before this character: still a whole literal */
		memcpy(dst + len, piece, plen);
		len += plen;
		p += n == 0 ? 1 : n;
	}
	dst[len++] = '"';
	dst[len] = '\0';
	return len;
}

void
json_write_string(struct evbuffer *out, const char *s)
{
	/* six bytes per input byte at most (\u00XX, \ufffd), quotes, NUL */
	size_t room = s == NULL ? 5 : strlen(s) * 6 + 3;
	struct evbuffer_iovec v;

	if (evbuffer_reserve_space(out, (ev_ssize_t)room, &v, 1) < 1)
		fatalx("out of memory writing JSON");
	v.iov_len = json_escape(v.iov_base, room, s);
	evbuffer_commit_space(out, &v, 1);
}

/* --- the streaming writer ------------------------------------------------ */

static void
jw_sep(struct json_writer *j, const char *key)
{
	if (j->keyed) {         /* jw_key wrote the separator and the key */
		j->keyed = 0;
		return;
	}
	if (j->more[j->depth])
		evbuffer_add(j->b, ",", 1);
	j->more[j->depth] = 1;
	if (key != NULL) {
		json_write_string(j->b, key);
		evbuffer_add(j->b, ":", 1);
	}
}

void
jw_key(struct json_writer *j, const char *key)
{
	jw_sep(j, key);
	j->keyed = 1;
}

void
jw_open(struct json_writer *j, const char *key, char c)
{
	jw_sep(j, key);
	evbuffer_add(j->b, &c, 1);
	if (j->depth + 1 >= JSON_WRITER_DEPTH)
		abort();        /* a programming error: the documents are ours */
	j->more[++j->depth] = 0;
}

void
jw_close(struct json_writer *j, char c)
{
	if (j->depth == 0)
		abort();
	j->depth--;
	evbuffer_add(j->b, &c, 1);
}

void
jw_str(struct json_writer *j, const char *key, const char *v)
{
	jw_sep(j, key);
	json_write_string(j->b, v);
}

void
jw_int(struct json_writer *j, const char *key, long long v)
{
	jw_sep(j, key);
	evbuffer_add_printf(j->b, "%lld", v);
}

void
jw_u64(struct json_writer *j, const char *key, unsigned long long v)
{
	jw_sep(j, key);
	evbuffer_add_printf(j->b, "%llu", v);
}

void
jw_bool(struct json_writer *j, const char *key, int v)
{
	jw_sep(j, key);
	evbuffer_add_printf(j->b, "%s", v ? "true" : "false");
}
