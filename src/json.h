/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Reading JSON (Vault's answers) through libyaml: a JSON text is YAML flow
 * syntax, so libyaml's document loader parses it and we walk the nodes.
 * Nodes are plain ints (libyaml node indexes, 0 = none) so no libyaml type
 * leaks. Scalars may hold secrets: json_free() wipes them.
 */
#ifndef MTLSD_JSON_H
#define MTLSD_JSON_H

#include <stddef.h>

#include "util.h"

struct json;
struct evbuffer;

/* Parse buf (not NUL-terminated). NULL with a one-line reason in err
 * ("line 3 column 7: did not find expected ',' or '}'") on failure. YAML
 * that is not JSON (block style, tags, aliases, unquoted text, a second
 * document) is refused; trailing commas and '#' comments slip through.
 * Any top-level value is accepted: callers check for an object. */
struct json *json_parse(const char *buf, size_t len, char *err, size_t errlen) MUSTCHECK;
void json_free(struct json *j);

int json_root(const struct json *j);
/* The member key of object obj; 0 when obj is not an object or has no such
 * member. A repeated key: the first one wins. */
int json_get(const struct json *j, int obj, const char *key);
/* json_get along a dotted path: "data.metadata.version". */
int json_path(const struct json *j, int node, const char *dotted);

/* The text of a string (a quoted scalar): NULL for null, numbers, booleans,
 * objects, arrays and absent (0) nodes, and for a string holding "\u0000"
 * (it would read shorter than it is). Valid until json_free. */
const char *json_string(const struct json *j, int node);
int json_is_null(const struct json *j, int node);  /* absent (0) counts as null */
/* A number without fraction: 0 and *out set, else -1. */
int json_int(const struct json *j, int node, long long *out);
/* true/false: 0 and *out set, else -1. */
int json_bool(const struct json *j, int node, int *out);
/* Arrays: length (0 when node is not an array) and the i-th element. */
size_t json_array_len(const struct json *j, int node);
int json_array_at(const struct json *j, int node, size_t i);
int json_is_object(const struct json *j, int node);

/* s as a JSON string literal ("null" for NULL); invalid UTF-8 becomes
 * U+FFFD so the document always parses. */
void json_write_string(struct evbuffer *out, const char *s);
/* The same into dst (room bytes, NUL-terminated), cut before the first
 * character that does not fit, so it is always a whole literal; its
 * length (0 when room is too small even for "" or null). */
size_t json_escape(char *dst, size_t room, const char *s);
/*
 * A streaming writer (admin's /status, mtlsctl's --json): it only tracks
 * where commas go. key is NULL inside arrays.
 */
#define JSON_WRITER_DEPTH 16

struct json_writer {
	struct evbuffer *b;
	int depth;
	int more[JSON_WRITER_DEPTH];    /* something was written at this depth */
	int keyed;                      /* jw_key wrote the next value's key */
};

void jw_open(struct json_writer *j, const char *key, char c);
void jw_close(struct json_writer *j, char c);
/* The key of the value written next (by a helper that also writes array
 * elements, and so opens with a NULL key). */
void jw_key(struct json_writer *j, const char *key);
void jw_str(struct json_writer *j, const char *key, const char *v); /* NULL: null */
void jw_int(struct json_writer *j, const char *key, long long v);
void jw_u64(struct json_writer *j, const char *key, unsigned long long v);
void jw_bool(struct json_writer *j, const char *key, int v);

/* Length of the well-formed UTF-8 sequence at s (no overlongs, surrogates
 * or code points above U+10FFFF), or 0. */
size_t json_utf8_len(const unsigned char *s);

#endif
