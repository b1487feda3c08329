/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * HTTP/1.1 framing on top of Debian's libhttp-parser 2.9.4.
 *
 * The packaged library is built with HTTP_PARSER_STRICT=0: it accepts bare
 * LF and bare CR line ends, "HXXP/1.1", several spaces in the request line,
 * TAB and obs-text in the request-target, spaces in header names and
 * obs-fold. Whatever two parsers may read differently is a smuggling
 * vector, so this file checks the line structure of every head (and of the
 * chunked framing) itself and refuses what RFC 9112 does not allow.
 */
#include "autoconf.h"

#include <event2/buffer.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http.h"
#include "util.h"

#define HTTP_DEFAULT_MAX_HEADER_BYTES 32768
#define HTTP_DEFAULT_MAX_HEADERS      100
/* The strings of a message live in one arena per http_in, kept from one
 * message to the next (no malloc per header on a keep-alive connection)
 * unless a large head grew it past HTTP_ARENA_KEEP. */
#define HTTP_ARENA_MIN    256
#define HTTP_ARENA_KEEP   8192
#define HTTP_HEADERS_MIN  8
#define HTTP_HEADERS_KEEP 64

/* line-structure check of a head */
enum { SCAN_START_LINE = 0, SCAN_LINE_START, SCAN_IN_NAME, SCAN_IN_LINE, SCAN_END };

/* Header names this file acts on. Hop-by-hop (never forwarded): Connection,
 * Keep-Alive, Proxy-Connection, Proxy-Authorization, Proxy-Authenticate, TE,
 * Trailer, Transfer-Encoding, Upgrade, Content-Length (re-framed by us). */
enum header_kind {
	HK_OTHER = 0,
	HK_HOST,
	HK_EXPECT,
	HK_HOP, /* first hop-by-hop kind */
	HK_CONNECTION = HK_HOP,
	HK_CONTENT_LENGTH,
	HK_TRANSFER_ENCODING,
	HK_UPGRADE,
	HK_OTHER_HOP, /* the rest of the list */
};

/* By length, at most two names of a length (slot 0 and 1). */
#define KH(slot, name, kind) [sizeof(name) - 1][slot] = { name, kind }
static const struct {
	const char *name;
	enum header_kind kind;
} known_headers[20][2] = {
    KH(0, "TE", HK_OTHER_HOP),
    KH(0, "Host", HK_HOST),
    KH(0, "Expect", HK_EXPECT),
    KH(0, "Trailer", HK_OTHER_HOP),
    KH(1, "Upgrade", HK_UPGRADE),
    KH(0, "Connection", HK_CONNECTION),
    KH(1, "Keep-Alive", HK_OTHER_HOP),
    KH(0, "Content-Length", HK_CONTENT_LENGTH),
    KH(0, "Proxy-Connection", HK_OTHER_HOP),
    KH(0, "Transfer-Encoding", HK_TRANSFER_ENCODING),
    KH(0, "Proxy-Authenticate", HK_OTHER_HOP),
    KH(0, "Proxy-Authorization", HK_OTHER_HOP),
};
#undef KH

static int
is_alnum(unsigned char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

/*
 * Character classes, looked up for every byte of every head: CH_TCHAR the
 * token characters of RFC 9110 5.6.2 (ALPHA, DIGIT and "!#$%&'*+-.^_`|~"),
 * CH_FIELD the field-value characters (HTAB, SP, VCHAR, obs-text). The
 * ranges are disjoint and in order.
 */
enum { CH_TCHAR = 1, CH_FIELD = 2 };

static const unsigned char char_class[256] = {
    ['\t'] = CH_FIELD,
    [' '] = CH_FIELD,
    ['!'] = CH_TCHAR | CH_FIELD,
    ['"'] = CH_FIELD,
    ['#' ... '\''] = CH_TCHAR | CH_FIELD,
    ['(' ... ')'] = CH_FIELD,
    ['*' ... '+'] = CH_TCHAR | CH_FIELD,
    [','] = CH_FIELD,
    ['-' ... '.'] = CH_TCHAR | CH_FIELD,
    ['/'] = CH_FIELD,
    ['0' ... '9'] = CH_TCHAR | CH_FIELD,
    [':' ... '@'] = CH_FIELD,
    ['A' ... 'Z'] = CH_TCHAR | CH_FIELD,
    ['[' ... ']'] = CH_FIELD,
    ['^' ... '`'] = CH_TCHAR | CH_FIELD,
    ['a' ... 'z'] = CH_TCHAR | CH_FIELD,
    ['{'] = CH_FIELD,
    ['|'] = CH_TCHAR | CH_FIELD,
    ['}'] = CH_FIELD,
    ['~'] = CH_TCHAR | CH_FIELD,
    [0x80 ... 0xff] = CH_FIELD,
};

static int
is_tchar(unsigned char c)
{
	return char_class[c] & CH_TCHAR;
}

static int
is_field_char(unsigned char c)
{
	return char_class[c] & CH_FIELD;
}

/*
 * Eight bytes at a time (SWAR): is some byte of w below n (n <= 128), or
 * equal to c? Exact as yes/no answers: a borrow only starts at a byte that
 * answers yes.
 */
#define BYTES_ONE 0x0101010101010101ULL
#define BYTES_HIGH 0x8080808080808080ULL

static int
has_byte_below(uint64_t w, unsigned n)
{
	return ((w - BYTES_ONE * n) & ~w & BYTES_HIGH) != 0;
}

static int
has_byte(uint64_t w, unsigned char c)
{
	return has_byte_below(w ^ (BYTES_ONE * c), 1);
}

/* How many of d[0..n) are field-value bytes, from the start: whole words of
 * SP, VCHAR and obs-text, then byte by byte (HTAB, or the end of the run). */
static size_t
field_run(const unsigned char *d, size_t n)
{
	size_t i = 0;

	for (; i + 8 <= n; i += 8) {
		uint64_t w;

		memcpy(&w, d + i, sizeof(w));
		if (has_byte_below(w, 0x20) || has_byte(w, 0x7f))
			break;
	}
	while (i < n && is_field_char(d[i]))
		i++;
	return i;
}

static int
is_digit(unsigned char c)
{
	return c >= '0' && c <= '9';
}

/* Which of known_headers name (n bytes) is, case-insensitively (HK_OTHER if
 * none). Parsed headers have theirs in h->kind. */
static enum header_kind
header_kind(const char *name, size_t n)
{
	int first = name[0] | 0x20; /* lower case, for letters */

	if (n >= ARRAY_LEN(known_headers))
		return HK_OTHER;
	for (size_t i = 0; i < 2 && known_headers[n][i].name != NULL; i++)
		if ((known_headers[n][i].name[0] | 0x20) == first &&
		    (memcmp(name, known_headers[n][i].name, n) == 0 || /* the usual spelling */
			ascii_ncasecmp(name, known_headers[n][i].name, n) == 0))
			return known_headers[n][i].kind;
	return HK_OTHER;
}

/* Enter the error state (the first reason wins); returns -1. */
static int
fail(struct http_in *in, int status, const char *why)
{
	if (in->state != HTTP_IN_ERROR) {
		in->state = HTTP_IN_ERROR;
		in->error_status = in->msg.is_request ? status : 502;
		in->error = why;
	}
	return -1;
}

/* ---- the string arena ------------------------------------------------ */

/*
 * Every string of in->msg (headers, target, reason, path, ...) and the
 * header being assembled (cur_name, cur_value) points into in->arena, or is
 * NULL. When the arena grows they all move with it: rebase() is the one
 * place that knows the list.
 */
static char *
rebased(char *p, const char *old, char *new)
{
	return p == NULL ? NULL : new + (p - old);
}

static void
rebase(struct http_in *in, const char *old, char *new)
{
	struct http_msg *m = &in->msg;

	for (size_t i = 0; i < m->n_headers; i++) {
		m->headers[i].name = rebased(m->headers[i].name, old, new);
		m->headers[i].value = rebased(m->headers[i].value, old, new);
	}
	m->target = rebased(m->target, old, new);
	m->url_host = rebased(m->url_host, old, new);
	m->path = rebased(m->path, old, new);
	m->path_only = rebased(m->path_only, old, new);
	m->host_header = rebased(m->host_header, old, new);
	m->reason = rebased(m->reason, old, new);
	in->cur_name = rebased(in->cur_name, old, new);
	in->cur_value = rebased(in->cur_value, old, new);
}

/* A larger arena with room for n more bytes; every string moves along. */
static void
arena_grow(struct http_in *in, size_t n)
{
	size_t cap = in->arena_cap ? in->arena_cap : HTTP_ARENA_MIN;
	char *p;

	while (cap < in->arena_len + n)
		cap *= 2;
	p = xmalloc(cap);
	if (in->arena_len > 0) {
		memcpy(p, in->arena, in->arena_len);
		rebase(in, in->arena, p);
	}
	free(in->arena);
	in->arena = p;
	in->arena_cap = cap;
}

/* Room for n more bytes at the end of the arena. */
static void
arena_reserve(struct http_in *in, size_t n)
{
	if (in->arena_len + n > in->arena_cap)
		arena_grow(in, n);
}

/* Append n bytes to the string *s (NUL-terminated, *len long), moving it to
 * the end of the arena first unless it is already the last string there. */
static void
append(struct http_in *in, char **s, size_t *len, const char *at, size_t n)
{
	int last = *s != NULL && *s + *len + 1 == in->arena + in->arena_len;

	arena_reserve(in, last ? n : *len + n + 1);
	if (!last) {
		char *p = in->arena + in->arena_len;

		if (*len > 0)
			memcpy(p, *s, *len);
		*s = p;
		in->arena_len += *len + 1;
	}
	memcpy(*s + *len, at, n);
	*len += n;
	(*s)[*len] = '\0';
	in->arena_len += n;
}

/* A NUL-terminated copy of s[0..n) in the arena; s may point into it. */
static char *
arena_strndup(struct http_in *in, const char *s, size_t n)
{
	uintptr_t a = (uintptr_t)in->arena, p = (uintptr_t)s;
	int inside = in->arena != NULL && p >= a && p < a + in->arena_len;
	size_t off = inside ? (size_t)(p - a) : 0;
	char *d;

	arena_reserve(in, n + 1);
	if (inside)
		s = in->arena + off;
	d = in->arena + in->arena_len;
	if (n > 0)
		memcpy(d, s, n);
	d[n] = '\0';
	in->arena_len += n + 1;
	return d;
}

/* Forget the message's strings, keeping the memory for the next one. */
static void
msg_clear(struct http_in *in)
{
	struct http_header *h = in->msg.headers;

	memset(&in->msg, 0, sizeof(in->msg));
	in->msg.headers = h;
	in->arena_len = 0;
	if (in->arena_cap > HTTP_ARENA_KEEP) {
		free(in->arena);
		in->arena = NULL;
		in->arena_cap = 0;
	}
	if (in->headers_cap > HTTP_HEADERS_KEEP) {
		free(in->msg.headers);
		in->msg.headers = NULL;
		in->headers_cap = 0;
	}
}

/* Forget the current message: back to the start of a head. */
static void
message_reset(struct http_in *in)
{
	msg_clear(in);
	in->msg.is_request = in->parser.type == HTTP_REQUEST;
	in->cur_name = in->cur_value = NULL;
	in->cur_name_len = in->cur_value_len = 0;
	in->last_was_value = 0;
	in->last_byte = 0;
	in->head_bytes = 0;
	in->target_len = in->reason_len = 0;
	in->msg_complete = 0;
	in->scan_state = SCAN_START_LINE;
	in->sl_part = 0;
	in->sl_pos = 0;
	in->scan_pos = NULL;
}

/* ---- line structure -------------------------------------------------- */

/* "HTTP/" DIGIT "." DIGIT, one byte at pos */
static int
version_byte(size_t pos, unsigned char c)
{
	static const char v[] = "HTTP/d.d";

	if (pos >= sizeof(v) - 1)
		return -1;
	if (v[pos] == 'd')
		return is_digit(c) ? 0 : -1;
	return c == (unsigned char)v[pos] ? 0 : -1;
}

/* method SP request-target SP HTTP-version; 1 on a separator */
static int
request_line_byte(struct http_in *in, unsigned char c)
{
	switch (in->sl_part) {
	case 0:
		if (c == ' ' && in->sl_pos > 0)
			return 1;
		return is_tchar(c) ? 0 : -1;
	case 1:
		if (c == ' ' && in->sl_pos > 0)
			return 1;
		return c > 0x20 && c < 0x7f ? 0 : -1;
	default:
		return version_byte(in->sl_pos, c);
	}
}

/* HTTP-version SP 3DIGIT [SP reason-phrase] (a missing SP is tolerated) */
static int
status_line_byte(struct http_in *in, unsigned char c)
{
	size_t pos = in->sl_pos;

	if (pos < 8)
		return version_byte(pos, c);
	if (pos == 8 || pos == 12)
		return c == ' ' ? 0 : -1;
	if (pos < 12)
		return is_digit(c) ? 0 : -1;
	return is_field_char(c) ? 0 : -1;
}

static int
start_line_byte(struct http_in *in, unsigned char c)
{
	int r;

	r = in->msg.is_request ? request_line_byte(in, c) : status_line_byte(in, c);
	if (r > 0) {
		in->sl_part++;
		in->sl_pos = 0;
		return 0;
	}
	in->sl_pos++;
	return r;
}

static int
start_line_complete(const struct http_in *in)
{
	if (in->msg.is_request)
		return in->sl_part == 2 && in->sl_pos == 8;
	return in->sl_pos >= 12;
}

/* A CRLF: 1 when it is the empty line that ends the head. */
static int
scan_eol(struct http_in *in, const char **why)
{
	switch (in->scan_state) {
	case SCAN_START_LINE:
		/* empty lines before the start line are ignored (RFC 9112 2.2) */
		if (in->sl_part == 0 && in->sl_pos == 0)
			return 0;
		if (!start_line_complete(in)) {
			*why =
			    in->msg.is_request ? "malformed request line" : "malformed status line";
			return -1;
		}
		in->scan_state = SCAN_LINE_START;
		return 0;
	case SCAN_LINE_START:
		in->scan_state = SCAN_END;
		return 1;
	case SCAN_IN_NAME:
		*why = "header line without a colon";
		return -1;
	default:
		in->scan_state = SCAN_LINE_START;
		return 0;
	}
}

/*
 * A byte of a field name (or the colon that ends it). Names and values are
 * checked here rather than left to http_parser, which reports a bad byte
 * when it reaches it, while our callbacks run when a slice of input ends:
 * checking them in the scan keeps the verdict (400 here, or 431 for one
 * header too many before it) independent of how the bytes were sliced.
 */
static void
scan_name_byte(struct http_in *in, unsigned char c, const char **why)
{
	if (c == ':') {
		if (in->scan_state == SCAN_LINE_START)
			*why = "empty header name";
		in->scan_state = SCAN_IN_LINE;
	} else if (is_tchar(c))
		in->scan_state = SCAN_IN_NAME;
	else
		*why = "invalid character in header name";
}

/* One head byte: 0 fine, 1 it ends the head, -1 malformed (*why). */
static int
scan_head_byte(struct http_in *in, unsigned char c, const char **why)
{
	unsigned char last = (unsigned char)in->last_byte;

	in->last_byte = (char)c;
	*why = NULL;
	if (c == '\n' && last == '\r')
		return scan_eol(in, why);
	if (c == '\n')
		*why = "bare LF in header section";
	else if (last == '\r')
		*why = "bare CR in header section";
	else if (c == '\r') {
		/* http_parser refuses this CR itself: say it first */
		if (in->scan_state == SCAN_IN_NAME)
			*why = "header line without a colon";
	} else if (in->scan_state == SCAN_START_LINE) {
		if (start_line_byte(in, c) < 0)
			*why =
			    in->msg.is_request ? "malformed request line" : "malformed status line";
	} else if (in->scan_state == SCAN_LINE_START && (c == ' ' || c == '\t'))
		*why = "obsolete line folding";
	else if (in->scan_state == SCAN_LINE_START || in->scan_state == SCAN_IN_NAME)
		scan_name_byte(in, c, why);
	else if (!is_field_char(c))
		*why = "invalid character in header value";
	return *why != NULL ? -1 : 0;
}

/*
 * Check head bytes before http_parser sees them. Returns how many bytes are
 * fine: all n, up to and including the head's last byte, or up to the first
 * malformed one (then *why says what is wrong with it).
 */
static size_t
scan_head(struct http_in *in, const char *data, size_t n, const char **why)
{
	const unsigned char *d = (const unsigned char *)data;

	*why = NULL;
	for (size_t i = 0; i < n; i++) {
		int r;

		/* fast path over the bulk of a head: runs of field-value bytes
		 * in a line, of token bytes in a name; scan_head_byte would
		 * only record them as the last byte */
		if (in->last_byte != '\r' && in->scan_state == SCAN_IN_LINE &&
		    is_field_char(d[i])) {
			i += field_run(d + i + 1, n - i - 1);
			in->last_byte = (char)d[i];
			continue;
		}
		if (in->last_byte != '\r' && in->scan_state == SCAN_IN_NAME && is_tchar(d[i])) {
			while (i + 1 < n && is_tchar(d[i + 1]))
				i++;
			in->last_byte = (char)d[i];
			continue;
		}
		r = scan_head_byte(in, d[i], why);
		if (r < 0)
			return i;
		if (r > 0)
			return i + 1;
	}
	return n;
}

/* Chunk-size lines (extensions included), chunk ends and trailers: CR and
 * LF only in pairs, no other control byte but HTAB (libhttp_parser skips
 * whatever follows a ';' in a chunk-size line). */
static int
scan_framing(struct http_in *in, const char *from, const char *to)
{
	for (; from < to; from++) {
		unsigned char c = (unsigned char)*from;
		int after_cr = in->last_byte == '\r';

		in->last_byte = (char)c;
		if ((c == '\n') != after_cr)
			return fail(in, 400, "bare CR or LF in chunked framing");
		if ((c < 0x20 && c != '\t' && c != '\r' && c != '\n') || c == 0x7f)
			return fail(in, 400, "control character in chunked framing");
	}
	return 0;
}

/* ---- hosts and request-targets --------------------------------------- */

/* Lower-case copy (in the arena) without one trailing dot. */
static char *
host_normalize(struct http_in *in, const char *s, size_t n)
{
	char *h;

	if (n > 1 && s[n - 1] == '.')
		n--;
	h = arena_strndup(in, s, n);
	ascii_lower(h);
	return h;
}

/* Is s[0..n), normalized as host_normalize does, the string host? */
static int
host_same(const char *s, size_t n, const char *host)
{
	if (n > 1 && s[n - 1] == '.')
		n--;
	return strlen(host) == n && ascii_ncasecmp(s, host, n) == 0;
}

static int
host_chars_ok(const char *s, size_t n, int literal)
{
	const char *extra = literal ? ":.%-_~" : "-._~!$&'()*+,;=%";

	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (!is_alnum(c) && (c == '\0' || strchr(extra, c) == NULL))
			return 0;
	}
	return 1;
}

/* ":" *DIGIT after a host; an empty port is no port (RFC 3986 3.2.3). */
static int
port_parse(const char *s, uint16_t *port)
{
	unsigned long v = 0;

	*port = 0;
	if (*s == '\0')
		return 0;
	if (*s++ != ':')
		return -1;
	if (*s == '\0')
		return 0;
	for (size_t i = 0; s[i] != '\0'; i++) {
		if (!is_digit((unsigned char)s[i]) || i >= 5)
			return -1;
		v = v * 10 + (unsigned long)(s[i] - '0');
	}
	if (v == 0 || v > 65535)
		return -1;
	*port = (uint16_t)v;
	return 0;
}

/* Host header value → its host part (not normalized) and port (0 if none). */
static int
authority_parse(const char *s, const char **host, size_t *hostlen, uint16_t *port)
{
	const char *h = s, *rest;
	size_t n;
	int literal = s[0] == '[';

	if (literal) {
		if ((rest = strchr(s, ']')) == NULL)
			return -1;
		h = s + 1;
		n = (size_t)(rest - h);
		rest++;
		if (n == 0)
			return -1;
	} else {
		n = strcspn(s, ":");
		rest = s + n;
	}
	if (!host_chars_ok(h, n, literal) || (n == 0 && *rest != '\0') ||
	    port_parse(rest, port) < 0)
		return -1;
	*host = h;
	*hostlen = n;
	return 0;
}

static int
url_field(const struct http_parser_url *u, int f)
{
	return (u->field_set & (1 << f)) != 0;
}

/* path_only = the path ("/" if none); path = path_only "?" query. Both are
 * copies in the arena (which may move: m->target is read after each). */
static void
url_path(struct http_in *in, const struct http_parser_url *u)
{
	struct http_msg *m = &in->msg;
	size_t plen = url_field(u, UF_PATH) ? u->field_data[UF_PATH].len : 1;
	size_t qlen = u->field_data[UF_QUERY].len;

	if (url_field(u, UF_PATH))
		m->path_only = arena_strndup(in, m->target + u->field_data[UF_PATH].off, plen);
	else
		m->path_only = arena_strndup(in, "/", 1);
	if (!url_field(u, UF_QUERY)) {
		m->path = m->path_only;
		return;
	}
	arena_reserve(in, plen + 1 + qlen + 1);
	m->path = in->arena + in->arena_len;
	memcpy(m->path, m->path_only, plen);
	m->path[plen] = '?';
	memcpy(m->path + plen + 1, m->target + u->field_data[UF_QUERY].off, qlen);
	m->path[plen + 1 + qlen] = '\0';
	in->arena_len += plen + 1 + qlen + 1;
}

/* absolute-form: http[s]://host[:port][/path][?query] */
static int
target_absolute(struct http_in *in)
{
	struct http_msg *m = &in->msg;
	struct http_parser_url u;
	size_t slen;

	http_parser_url_init(&u);
	if (http_parser_parse_url(m->target, in->target_len, 0, &u) != 0 ||
	    !url_field(&u, UF_SCHEMA) || !url_field(&u, UF_HOST) || u.field_data[UF_HOST].len == 0)
		return fail(in, 400, "malformed request-target");
	if (url_field(&u, UF_USERINFO))
		return fail(in, 400, "userinfo in request-target");
	slen = u.field_data[UF_SCHEMA].len;
	if (slen == 5 && ascii_ncasecmp(m->target, "https", 5) == 0)
		m->url_is_https = 1;
	else if (slen != 4 || ascii_ncasecmp(m->target, "http", 4) != 0)
		return fail(in, 400, "unsupported scheme in request-target");
	if (url_field(&u, UF_PORT) && u.port == 0)
		return fail(in, 400, "invalid port in request-target");
	m->url_port = u.port;
	m->url_host =
	    host_normalize(in, m->target + u.field_data[UF_HOST].off, u.field_data[UF_HOST].len);
	url_path(in, &u);
	return 0;
}

/* authority-form, CONNECT only; the caller refuses CONNECT anyway */
static int
target_authority(struct http_in *in)
{
	struct http_msg *m = &in->msg;
	struct http_parser_url u;

	http_parser_url_init(&u);
	if (http_parser_parse_url(m->target, in->target_len, 1, &u) != 0 || u.port == 0)
		return fail(in, 400, "malformed CONNECT authority");
	m->url_host =
	    host_normalize(in, m->target + u.field_data[UF_HOST].off, u.field_data[UF_HOST].len);
	m->url_port = u.port;
	m->path = m->path_only = m->target;
	return 0;
}

static int
request_target(struct http_in *in)
{
	struct http_msg *m = &in->msg;
	const char *t = m->target;

	if (t == NULL)
		return fail(in, 400, "missing request-target");
	if (in->target_len > UINT16_MAX)
		return fail(in, 414, "request-target too long");
	if (m->method == HTTP_CONNECT)
		return target_authority(in);
	if (strchr(t, '#') != NULL)
		return fail(in, 400, "fragment in request-target");
	if (strcmp(t, "*") == 0) {
		if (m->method != HTTP_OPTIONS)
			return fail(in, 400, "asterisk-form is only for OPTIONS");
		m->path = m->path_only = m->target;
		return 0;
	}
	if (t[0] == '/') {
		size_t n = strcspn(t, "?");

		/* the message's strings are read-only: share them */
		m->path = m->target;
		m->path_only = t[n] == '\0' ? m->target : arena_strndup(in, t, n);
		return 0;
	}
	return target_absolute(in);
}

/* Host is required in HTTP/1.1 and must name what an absolute-form names. */
static int
request_host(struct http_in *in)
{
	struct http_msg *m = &in->msg;
	const char *host;
	size_t hostlen;
	uint16_t port, dflt = m->url_is_https ? 443 : 80;
	int same;

	if (m->host_header == NULL) {
		if (m->minor >= 1 && m->url_host == NULL)
			return fail(in, 400, "missing Host header");
		return 0;
	}
	if (authority_parse(m->host_header, &host, &hostlen, &port) < 0)
		return fail(in, 400, "malformed Host header");
	same = (m->url_host == NULL || host_same(host, hostlen, m->url_host)) &&
	       (port ? port : dflt) == (m->url_port ? m->url_port : dflt);
	if (!same && m->url_host != NULL && m->method != HTTP_CONNECT)
		return fail(in, 400, "Host header does not match request-target");
	return 0;
}

/* ---- heads --------------------------------------------------------------- */

/* Remove trailing OWS (not part of a field value); returns how much. */
static size_t
rtrim(char *s, size_t len)
{
	size_t n = len;

	while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t'))
		n--;
	s[n] = '\0';
	return len - n;
}

/* Has m a header of this kind already? */
static int
has_kind(const struct http_msg *m, enum header_kind kind)
{
	for (size_t i = 0; i < m->n_headers; i++)
		if (m->headers[i].kind == (int)kind)
			return 1;
	return 0;
}

static int
header_special(struct http_in *in, enum header_kind kind, char *value, size_t trimmed)
{
	struct http_msg *m = &in->msg;

	switch (kind) {
	case HK_HOST:
		if (!m->is_request)
			break;
		if (m->host_header != NULL)
			return fail(in, 400, "duplicate Host header");
		m->host_header = value; /* shares the header's string */
		break;
	case HK_TRANSFER_ENCODING:
		/* only exactly "chunked": we re-frame, other codings would
		 * reach the peer undeclared */
		if (trimmed > 0 || ascii_casecmp(value, "chunked") != 0 || has_kind(m, kind))
			return fail(in, 400, "unsupported transfer-encoding");
		break;
	case HK_CONTENT_LENGTH:
		if (has_kind(m, kind))
			return fail(in, 400, "duplicate Content-Length");
		break;
	case HK_EXPECT:
		if (m->is_request && ascii_casecmp(value, "100-continue") == 0)
			m->expect_continue = 1;
		break;
	case HK_UPGRADE:
		m->upgrade = 1;
		break;
	default:
		break;
	}
	return 0;
}

/* The header assembled in cur_name/cur_value is complete: store it. */
static int
header_finish(struct http_in *in)
{
	struct http_msg *m = &in->msg;
	struct http_header *h;
	char *name, *value;
	enum header_kind kind = HK_OTHER;
	size_t name_len, value_len, trimmed;
	int r = 0;

	if (in->cur_value == NULL)
		append(in, &in->cur_value, &in->cur_value_len, "", 0);
	name = in->cur_name;
	name_len = in->cur_name_len;
	value = in->cur_value;
	value_len = in->cur_value_len;
	trimmed = rtrim(value, value_len);
	in->cur_name = in->cur_value = NULL;
	in->cur_name_len = in->cur_value_len = 0;
	in->last_was_value = 0;
	if (name == NULL || *name == '\0')
		r = fail(in, 400, "empty header name");
	else if (m->n_headers >= in->max_headers)
		r = fail(in, 431, "too many header fields");
	else {
		kind = header_kind(name, name_len);
		r = header_special(in, kind, value, trimmed);
	}
	if (r < 0)
		return -1; /* the strings stay in the arena until the reset */
	if (m->n_headers == in->headers_cap) {
		in->headers_cap = in->headers_cap ? in->headers_cap * 2 : HTTP_HEADERS_MIN;
		m->headers = xrealloc(m->headers, in->headers_cap * sizeof(*h));
	}
	h = &m->headers[m->n_headers++];
	h->name = name;
	h->value = value;
	h->name_len = name_len;
	h->value_len = value_len - trimmed;
	h->kind = (int)kind;
	return 0;
}

static int
request_check(struct http_in *in)
{
	struct http_msg *m = &in->msg;

	m->method = (enum http_method)in->parser.method;
	m->method_name = http_method_str(m->method);
	if (m->major != 1 || m->minor > 1)
		return fail(in, 505, "unsupported HTTP version");
	if (request_target(in) < 0)
		return -1;
	return request_host(in);
}

static int
response_check(struct http_in *in)
{
	struct http_msg *m = &in->msg;

	m->status = (int)in->parser.status_code;
	if (m->reason == NULL)
		append(in, &m->reason, &in->reason_len, "", 0);
	if (m->major != 1)
		return fail(in, 502, "unsupported HTTP version in response");
	if (m->status < 100 || m->status > 599)
		return fail(in, 502, "invalid status code in response");
	return 0;
}

/*
 * http_should_keep_alive() without its "needs EOF" half, which cannot know
 * yet that we will return 1 (no body) from on_headers_complete.
 */
static int
connection_persists(const http_parser *p)
{
	if (p->http_major > 0 && p->http_minor > 0)
		return (p->flags & F_CONNECTION_CLOSE) == 0;
	return (p->flags & F_CONNECTION_KEEP_ALIVE) != 0;
}

static void
set_body(struct http_in *in)
{
	const http_parser *p = &in->parser;
	struct http_msg *m = &in->msg;

	if (!m->is_request &&
	    (in->skip_body || m->status / 100 == 1 || m->status == 204 || m->status == 304))
		m->body = HTTP_BODY_NONE;
	else if (p->flags & F_CHUNKED)
		m->body = HTTP_BODY_CHUNKED;
	else if (p->flags & F_CONTENTLENGTH) {
		m->body = HTTP_BODY_LENGTH;
		m->content_length = p->content_length;
	} else
		m->body = m->is_request ? HTTP_BODY_NONE : HTTP_BODY_EOF;
	m->keep_alive = connection_persists(p) && m->body != HTTP_BODY_EOF;
}

/* ---- parser callbacks ------------------------------------------------ */

static int
on_url(http_parser *p, const char *at, size_t n)
{
	struct http_in *in = p->data;

	append(in, &in->msg.target, &in->target_len, at, n);
	return 0;
}

static int
on_status(http_parser *p, const char *at, size_t n)
{
	struct http_in *in = p->data;

	append(in, &in->msg.reason, &in->reason_len, at, n);
	return 0;
}

/* Trailer fields are read and dropped, but bounded like a head. The framing
 * bytes before this field are checked first, so that the verdict is the
 * first fault in the byte stream however it arrives in slices. */
static int
trailer_bytes(struct http_in *in, const char *at, size_t n)
{
	if (in->scan_pos != NULL && in->scan_pos <= at) {
		if (scan_framing(in, in->scan_pos, at) < 0)
			return -1;
		in->scan_pos = at;
	}
	in->head_bytes += n;
	if (in->head_bytes > in->max_header_bytes)
		return fail(in, 431, "trailer section too large");
	return 0;
}

static int
on_header_field(http_parser *p, const char *at, size_t n)
{
	struct http_in *in = p->data;

	if (in->state == HTTP_IN_BODY)
		return trailer_bytes(in, at, n);
	if (in->last_was_value && header_finish(in) < 0)
		return -1;
	/* scan_head has checked every byte of names and values */
	append(in, &in->cur_name, &in->cur_name_len, at, n);
	return 0;
}

static int
on_header_value(http_parser *p, const char *at, size_t n)
{
	struct http_in *in = p->data;

	if (in->state == HTTP_IN_BODY)
		return trailer_bytes(in, at, n);
	append(in, &in->cur_value, &in->cur_value_len, at, n);
	in->last_was_value = 1;
	return 0;
}

/* The head is complete: check it, describe the body, pause. */
static int
on_headers_complete(http_parser *p)
{
	struct http_in *in = p->data;
	struct http_msg *m = &in->msg;
	int r;

	if (in->last_was_value && header_finish(in) < 0)
		return -1;
	m->major = p->http_major;
	m->minor = p->http_minor;
	m->upgrade |= p->upgrade;
	r = m->is_request ? request_check(in) : response_check(in);
	if (r < 0)
		return -1;
	/* an HTTP/1.0 peer ignores chunking: its framing is faulty, whatever
	 * else it says (RFC 9112 6.1), and a smuggling vector */
	if (m->minor == 0 && (p->flags & F_CHUNKED))
		return fail(in, 400, "Transfer-Encoding in an HTTP/1.0 message");
	set_body(in);
	in->state = HTTP_IN_HEAD_DONE;
	http_parser_pause(p, 1);
	/* 1: a response without body (HEAD; 1xx/204/304 http_parser knows) */
	return !m->is_request && m->body == HTTP_BODY_NONE;
}

static int
on_body(http_parser *p, const char *at, size_t n)
{
	struct http_in *in = p->data;

	if (in->msg.body == HTTP_BODY_CHUNKED) {
		if (scan_framing(in, in->scan_pos, at) < 0)
			return -1;
		in->scan_pos = at + n;
		in->last_byte = 0;
	}
	if (in->cb != NULL && in->cb->on_body != NULL && in->cb->on_body(in->arg, at, n) != 0)
		return fail(in, 500, "body consumer failed");
	return 0;
}

static int
on_message_complete(http_parser *p)
{
	struct http_in *in = p->data;

	/* while http_in_feed consumes the head's last byte (see feed_head) */
	if (in->state == HTTP_IN_HEAD_DONE) {
		in->msg_complete = 1;
		return 0;
	}
	in->state = HTTP_IN_DONE;
	http_parser_pause(p, 1);
	return 0;
}

/* ---- feeding ------------------------------------------------------------- */

/* After http_parser_execute: 0, or -1 in (now) the error state. */
static int
parser_error(struct http_in *in)
{
	enum http_errno e = HTTP_PARSER_ERRNO(&in->parser);

	if (in->state == HTTP_IN_ERROR)
		return -1;
	if (e == HPE_OK || e == HPE_PAUSED)
		return 0;
	if (e == HPE_HEADER_OVERFLOW)
		return fail(in, 431, "header section too large");
	if (e == HPE_INVALID_METHOD)
		return fail(in, 501, "method not implemented");
	return fail(in, 400, http_errno_description(e));
}

/*
 * http_parser pauses in on_headers_complete *before* consuming the head's
 * final LF (it returns that byte's offset) and would act on it only when fed
 * again. Feed that one byte now, so that what http_in_feed reports consumed
 * is exactly the head, what follows is exactly the body, and a message
 * without body is known complete (msg_complete) before the caller resumes.
 */
static int
head_last_byte(struct http_in *in, const char *lf)
{
	http_parser_pause(&in->parser, 0);
	http_parser_execute(&in->parser, &in->settings, lf, 1);
	if (parser_error(in) < 0)
		return -1;
	http_parser_pause(&in->parser, 1);
	return 0;
}

/*
 * The scan goes first, so http_parser and the callbacks never act on a
 * malformed head, and verdicts do not depend on how the bytes were sliced.
 */
static size_t
feed_head(struct http_in *in, const char *data, size_t len)
{
	size_t room = in->max_header_bytes - in->head_bytes;
	const char *why;
	size_t k, n;

	k = scan_head(in, data, len < room ? len : room, &why);
	/* executing 0 bytes would tell http_parser the stream ended */
	n = k > 0 ? http_parser_execute(&in->parser, &in->settings, data, k) : 0;
	if (parser_error(in) < 0)
		return n;
	if (in->state == HTTP_IN_HEAD_DONE) {
		/* paused on the head's last byte, which is left unconsumed */
		n++;
		if (n != k || in->scan_state != SCAN_END)
			fail(in, 400, "malformed header section");
		else
			head_last_byte(in, data + n - 1);
	} else if (why != NULL)
		fail(in, 400, why);
	else if (in->scan_state == SCAN_END)
		fail(in, 400, "malformed header section");
	else if (in->head_bytes + n >= in->max_header_bytes)
		fail(in, 431, "header section too large");
	in->head_bytes += n;
	return n;
}

static size_t
feed_body(struct http_in *in, const char *data, size_t len)
{
	size_t n;

	in->scan_pos = data;
	n = http_parser_execute(&in->parser, &in->settings, data, len);
	/* framing bytes up to where http_parser stopped (at an error: the byte
	 * it refused), before its verdict, as when they arrive in slices */
	if (in->state != HTTP_IN_ERROR && in->msg.body == HTTP_BODY_CHUNKED)
		scan_framing(in, in->scan_pos, data + n);
	parser_error(in);
	in->scan_pos = NULL;
	return n;
}

/*
 * End of input. http_parser completes an EOF-delimited body without leaving
 * its body state (a second EOF would complete it again): start afresh.
 */
static size_t
feed_eof(struct http_in *in)
{
	http_parser_execute(&in->parser, &in->settings, NULL, 0);
	if (parser_error(in) == 0 && in->state == HTTP_IN_DONE) {
		http_parser_init(&in->parser, in->parser.type);
		http_parser_pause(&in->parser, 1);
	}
	return 0;
}

/* ---- public: parsing ----------------------------------------------------- */

void
http_in_init(struct http_in *in, int is_request, unsigned max_header_bytes, unsigned max_headers,
    const struct http_in_cb *cb, void *arg)
{
	memset(in, 0, sizeof(*in));
	http_parser_init(&in->parser, is_request ? HTTP_REQUEST : HTTP_RESPONSE);
	in->parser.data = in;
	http_parser_settings_init(&in->settings);
	in->settings.on_url = on_url;
	in->settings.on_status = on_status;
	in->settings.on_header_field = on_header_field;
	in->settings.on_header_value = on_header_value;
	in->settings.on_headers_complete = on_headers_complete;
	in->settings.on_body = on_body;
	in->settings.on_message_complete = on_message_complete;
	in->cb = cb;
	in->arg = arg;
	in->max_header_bytes = max_header_bytes ? max_header_bytes : HTTP_DEFAULT_MAX_HEADER_BYTES;
	in->max_headers = max_headers ? max_headers : HTTP_DEFAULT_MAX_HEADERS;
	in->state = HTTP_IN_HEAD;
	message_reset(in);
}

void
http_in_reset(struct http_in *in, unsigned max_header_bytes, unsigned max_headers)
{
	http_parser_init(&in->parser, (enum http_parser_type)in->parser.type);
	in->state = HTTP_IN_HEAD;
	in->max_header_bytes = max_header_bytes ? max_header_bytes : HTTP_DEFAULT_MAX_HEADER_BYTES;
	in->max_headers = max_headers ? max_headers : HTTP_DEFAULT_MAX_HEADERS;
	in->skip_body = 0;
	in->error_status = 0;
	in->error = NULL;
	message_reset(in);
}

void
http_in_free(struct http_in *in)
{
	message_reset(in);
	free(in->arena);
	in->arena = NULL;
	in->arena_cap = 0;
	free(in->msg.headers);
	in->msg.headers = NULL;
	in->headers_cap = 0;
}

size_t
http_in_feed(struct http_in *in, const char *data, size_t len)
{
	switch (in->state) {
	case HTTP_IN_HEAD:
		return len == 0 ? feed_eof(in) : feed_head(in, data, len);
	case HTTP_IN_BODY:
		return len == 0 ? feed_eof(in) : feed_body(in, data, len);
	default:
		return 0;
	}
}

void
http_in_resume(struct http_in *in)
{
	if (in->state == HTTP_IN_HEAD_DONE) {
		in->head_bytes = 0; /* now counts trailer bytes */
		in->last_byte = 0;
		if (in->msg_complete)
			in->state = HTTP_IN_DONE;
		else {
			in->state = HTTP_IN_BODY;
			http_parser_pause(&in->parser, 0);
		}
	} else if (in->state == HTTP_IN_DONE) {
		/* a HEAD request's response may come after 1xx ones */
		if (!in->msg.is_request && in->msg.status >= 200)
			in->skip_body = 0;
		message_reset(in);
		in->state = HTTP_IN_HEAD;
		http_parser_pause(&in->parser, 0);
	}
}

void
http_in_set_skip_body(struct http_in *in, int skip)
{
	in->skip_body = skip;
}

const char *
http_msg_header(const struct http_msg *msg, const char *name)
{
	for (size_t i = 0; i < msg->n_headers; i++)
		if (ascii_casecmp(msg->headers[i].name, name) == 0)
			return msg->headers[i].value;
	return NULL;
}

/* The next token of a comma-separated list (blanks around it dropped):
 * its start and length, or NULL at the end; *list moves past it. */
static const char *
token_next(const char **list, size_t *len)
{
	const char *p = *list;

	for (;;) {
		size_t n, t;

		p += strspn(p, " \t,");
		if (*p == '\0') {
			*list = p;
			return NULL;
		}
		n = t = strcspn(p, ",");
		while (t > 0 && (p[t - 1] == ' ' || p[t - 1] == '\t'))
			t--;
		*list = p + n;
		if (t > 0) {
			*len = t;
			return p;
		}
		p += n;
	}
}

/* Is name one of the comma-separated tokens in list? */
static int
token_listed(const char *list, const char *name)
{
	size_t nlen = strlen(name), t;
	const char *tok;

	while ((tok = token_next(&list, &t)) != NULL)
		if (t == nlen && ascii_ncasecmp(tok, name, t) == 0)
			return 1;
	return 0;
}

int
http_header_is_hop(const struct http_msg *msg, const char *name)
{
	if (header_kind(name, strlen(name)) >= HK_HOP)
		return 1;
	for (size_t i = 0; i < msg->n_headers; i++)
		if (msg->headers[i].kind == HK_CONNECTION &&
		    token_listed(msg->headers[i].value, name))
			return 1;
	return 0;
}

/* ---- public: writing ----------------------------------------------------- */

/*
 * A head is assembled in a buffer on the stack and added to the evbuffer in
 * one piece (a printf per line cost more than the rest of the head).
 */
struct head_buf {
	struct evbuffer *out;
	size_t len;
	char buf[2048];
};

static void
hb_flush(struct head_buf *b)
{
	if (b->len > 0)
		evbuffer_add(b->out, b->buf, b->len);
	b->len = 0;
}

static void
hb_put(struct head_buf *b, const char *s, size_t n)
{
	if (n > sizeof(b->buf) - b->len) {
		hb_flush(b);
		if (n > sizeof(b->buf)) {
			evbuffer_add(b->out, s, n);
			return;
		}
	}
	memcpy(b->buf + b->len, s, n);
	b->len += n;
}

static void
hb_str(struct head_buf *b, const char *s)
{
	hb_put(b, s, strlen(s));
}

#define hb_lit(b, s) hb_put((b), (s), sizeof(s) - 1)

/* "name: value" CRLF, copied in one piece when it fits */
static void
hb_header(struct head_buf *b, const struct http_header *h)
{
	size_t n = h->name_len + h->value_len + 4;
	char *p = b->buf + b->len;

	if (n > sizeof(b->buf) - b->len) {
		hb_put(b, h->name, h->name_len);
		hb_lit(b, ": ");
		hb_put(b, h->value, h->value_len);
		hb_lit(b, "\r\n");
		return;
	}
	memcpy(p, h->name, h->name_len);
	p += h->name_len;
	*p++ = ':';
	*p++ = ' ';
	memcpy(p, h->value, h->value_len);
	p += h->value_len;
	*p++ = '\r';
	*p = '\n';
	b->len += n;
}

/* Decimal, as printf's %llu / %d. */
static void
hb_u64(struct head_buf *b, uint64_t v)
{
	char d[24];
	size_t i = sizeof(d);

	do {
		d[--i] = (char)('0' + v % 10);
		v /= 10;
	} while (v > 0);
	hb_put(b, d + i, sizeof(d) - i);
}

static void
hb_int(struct head_buf *b, int v)
{
	if (v < 0) {
		hb_lit(b, "-");
		hb_u64(b, (uint64_t)0 - (uint64_t)(int64_t)v);
	} else
		hb_u64(b, (uint64_t)v);
}

/* The tokens of a message's Connection header(s), parsed once per head. */
#define CONN_TOKENS_MAX 16

struct conn_tokens {
	size_t n;
	int overflow; /* more than CONN_TOKENS_MAX: use token_listed */
	const char *tok[CONN_TOKENS_MAX];
	size_t len[CONN_TOKENS_MAX];
};

static void
conn_tokens_add(struct conn_tokens *ct, const char *list)
{
	const char *tok;
	size_t t;

	while ((tok = token_next(&list, &t)) != NULL) {
		if (ct->n == CONN_TOKENS_MAX) {
			ct->overflow = 1;
			return;
		}
		ct->tok[ct->n] = tok;
		ct->len[ct->n++] = t;
	}
}

/* Does a Connection header of m name this header (nlen bytes)? */
static int
conn_listed(
    const struct conn_tokens *ct, const struct http_msg *m, const char *name, size_t nlen)
{
	if (ct->overflow) {
		for (size_t i = 0; i < m->n_headers; i++)
			if (m->headers[i].kind == HK_CONNECTION &&
			    token_listed(m->headers[i].value, name))
				return 1;
		return 0;
	}
	for (size_t i = 0; i < ct->n; i++)
		if (ct->len[i] == nlen && ascii_ncasecmp(ct->tok[i], name, nlen) == 0)
			return 1;
	return 0;
}

/* The end-to-end headers of m: what http_header_is_hop lets through, and
 * for requests neither Host nor Expect. */
static void
write_headers(struct head_buf *b, const struct http_msg *m)
{
	struct conn_tokens ct;

	ct.n = 0;
	ct.overflow = 0;
	for (size_t i = 0; i < m->n_headers && !ct.overflow; i++)
		if (m->headers[i].kind == HK_CONNECTION)
			conn_tokens_add(&ct, m->headers[i].value);
	for (size_t i = 0; i < m->n_headers; i++) {
		const struct http_header *h = &m->headers[i];
		int k = h->kind;

		if (k >= HK_HOP || (ct.n > 0 && conn_listed(&ct, m, h->name, h->name_len)))
			continue;
		if (m->is_request && (k == HK_HOST || k == HK_EXPECT))
			continue;
		hb_header(b, h);
	}
}

static void
write_framing(struct head_buf *b, enum http_body body, uint64_t length)
{
	if (body == HTTP_BODY_LENGTH) {
		hb_lit(b, "Content-Length: ");
		hb_u64(b, length);
		hb_lit(b, "\r\n");
	} else if (body == HTTP_BODY_CHUNKED)
		hb_lit(b, "Transfer-Encoding: chunked\r\n");
}

void
http_write_request_head(
    struct evbuffer *out, const struct http_msg *req, const char *path, const char *authority)
{
	struct head_buf b;

	b.out = out;
	b.len = 0;
	hb_str(&b, req->method_name);
	hb_lit(&b, " ");
	hb_str(&b, path);
	hb_lit(&b, " HTTP/1.1\r\nHost: ");
	hb_str(&b, authority);
	hb_lit(&b, "\r\n");
	write_headers(&b, req);
	write_framing(&b, req->body, req->content_length);
	hb_lit(&b, "\r\n");
	hb_flush(&b);
}

static int
status_has_body(int status)
{
	return status / 100 != 1 && status != 204 && status != 304;
}

/* How the body goes to the client; an HTTP/1.0 client cannot take chunks. */
static enum http_body
response_framing(const struct http_msg *resp, int head_request, int client_minor)
{
	if (head_request || !status_has_body(resp->status))
		return HTTP_BODY_NONE;
	switch (resp->body) {
	case HTTP_BODY_LENGTH:
		return HTTP_BODY_LENGTH;
	case HTTP_BODY_CHUNKED:
	case HTTP_BODY_EOF:
		return client_minor >= 1 ? HTTP_BODY_CHUNKED : HTTP_BODY_EOF;
	default:
		return HTTP_BODY_NONE;
	}
}

enum http_body
http_write_response_head(struct evbuffer *out, const struct http_msg *resp, int head_request,
    int client_minor, int close)
{
	enum http_body framing = response_framing(resp, head_request, client_minor);
	const char *reason = resp->reason, *cl;
	struct head_buf b;

	if (reason == NULL || *reason == '\0')
		reason = http_status_text(resp->status);
	b.out = out;
	b.len = 0;
	hb_lit(&b, "HTTP/1.1 ");
	hb_int(&b, resp->status);
	hb_lit(&b, " ");
	hb_str(&b, reason);
	hb_lit(&b, "\r\n");
	write_headers(&b, resp);
	if (head_request || resp->status == 304) {
		/* describes the resource, not this message */
		if ((cl = http_msg_header(resp, "Content-Length")) != NULL) {
			hb_lit(&b, "Content-Length: ");
			hb_str(&b, cl);
			hb_lit(&b, "\r\n");
		}
	} else if (framing == HTTP_BODY_NONE && status_has_body(resp->status))
		write_framing(&b, HTTP_BODY_LENGTH, 0);
	else
		write_framing(&b, framing, resp->content_length);
	if (close || framing == HTTP_BODY_EOF)
		hb_lit(&b, "Connection: close\r\n");
	else if (client_minor == 0)
		hb_lit(&b, "Connection: keep-alive\r\n");
	hb_lit(&b, "\r\n");
	hb_flush(&b);
	return framing;
}

void
http_write_chunk(struct evbuffer *out, const char *data, size_t len)
{
	static const char hex[] = "0123456789abcdef";
	char line[2 * sizeof(size_t) + 2];
	size_t i = sizeof(line) - 2;

	if (len == 0)
		return; /* a zero-size chunk would end the body */
	line[sizeof(line) - 2] = '\r';
	line[sizeof(line) - 1] = '\n';
	for (size_t v = len; v > 0; v >>= 4)
		line[--i] = hex[v & 15];
	evbuffer_add(out, line + i, sizeof(line) - i);
	evbuffer_add(out, data, len);
	evbuffer_add(out, "\r\n", 2);
}

void
http_write_last_chunk(struct evbuffer *out)
{
	evbuffer_add(out, "0\r\n\r\n", 5);
}

/* Copy without CR and LF, other control characters as spaces. */
static char *
one_line(const char *s)
{
	char *r = xstrdup(s ? s : ""), *w = r;

	for (const char *p = r; *p != '\0'; p++) {
		if (*p == '\r' || *p == '\n')
			continue;
		*w++ = (unsigned char)*p < 0x20 || *p == 0x7f ? ' ' : *p;
	}
	*w = '\0';
	return r;
}

void
http_write_error(struct evbuffer *out, int status, const char *code, const char *reason,
    unsigned retry_after, int close)
{
	char *line = one_line(reason), *tag = one_line(code);

	evbuffer_add_printf(out,
	    "HTTP/1.1 %d %s\r\n"
	    "Content-Type: text/plain\r\n",
	    status, http_status_text(status));
	if (*tag != '\0')
		evbuffer_add_printf(out, "X-Mtlsd-Error: %s\r\n", tag);
	if (retry_after > 0)
		evbuffer_add_printf(out, "Retry-After: %u\r\n", retry_after);
	evbuffer_add_printf(out, "Content-Length: %zu\r\n", strlen("mtlsd: \n") + strlen(line));
	if (close)
		evbuffer_add_printf(out, "Connection: close\r\n");
	evbuffer_add_printf(out, "\r\nmtlsd: %s\n", line);
	free(line);
	free(tag);
}

const char *
http_status_text(int status)
{
	const char *s = http_status_str((enum http_status)status);

	return strcmp(s, "<unknown>") == 0 ? "Unknown" : s;
}
