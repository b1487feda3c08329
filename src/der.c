/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "autoconf.h"

#include <stdlib.h>
#include <string.h>

#include "der.h"
#include "util.h"

int
der_next(struct der *cur, int *tag, struct der *val)
{
	const unsigned char *p = cur->p;
	size_t avail = cur->len, hdr, len, n;

	if (avail < 2 || (p[0] & 0x1f) == 0x1f)        /* no multi-byte tags */
		return -1;
	if (p[1] < 0x80) {
		hdr = 2;
		len = p[1];
	} else {
		n = p[1] & 0x7f;
		if (n == 0 || n > 4 || avail < 2 + n)   /* 0: BER indefinite */
			return -1;
		len = 0;
		for (size_t i = 0; i < n; i++)
			len = (len << 8) | p[2 + i];
		hdr = 2 + n;
	}
	if (len > avail - hdr)
		return -1;
	*tag = p[0];
	val->p = p + hdr;
	val->len = len;
	cur->p += hdr + len;
	cur->len -= hdr + len;
	return 0;
}

int
der_expect(struct der *cur, int tag, struct der *val)
{
	struct der save = *cur;
	int t;

	if (der_next(cur, &t, val) < 0)
		return -1;
	if (t != tag) {
		*cur = save;
		return -1;
	}
	return 0;
}

int
der_oid_eq(const struct der *oid, const unsigned char *bytes, size_t n)
{
	return oid->len == n && memcmp(oid->p, bytes, n) == 0;
}

int
der_long(const struct der *v, long *out)
{
	unsigned long x = 0;

	if (v->len == 0 || v->len > sizeof(long) || (v->p[0] & 0x80) != 0)
		return -1;
	for (size_t i = 0; i < v->len; i++)
		x = (x << 8) | v->p[i];
	if (x > (unsigned long)__LONG_MAX__)
		return -1;
	*out = (long)x;
	return 0;
}

static void
grow(struct der_buf *b, size_t more)
{
	unsigned char *p;
	size_t cap = b->cap ? b->cap : 256;

	if (b->len + more <= b->cap)
		return;
	while (cap < b->len + more)
		cap *= 2;
	/* not realloc: the old block may hold key material and must be wiped */
	p = xmalloc(cap);
	if (b->len > 0)
		memcpy(p, b->p, b->len);
	if (b->p != NULL)
		wipe_free(b->p, b->cap);
	b->p = p;
	b->cap = cap;
}

void
der_raw(struct der_buf *b, const void *v, size_t n)
{
	grow(b, n);
	if (n > 0)
		memcpy(b->p + b->len, v, n);
	b->len += n;
}

static void
header(struct der_buf *b, int tag, size_t n)
{
	unsigned char h[6];
	size_t k = 0;

	h[k++] = (unsigned char)tag;
	if (n < 0x80)
		h[k++] = (unsigned char)n;
	else if (n < 0x100) {
		h[k++] = 0x81;
		h[k++] = (unsigned char)n;
	} else if (n < 0x10000) {
		h[k++] = 0x82;
		h[k++] = (unsigned char)(n >> 8);
		h[k++] = (unsigned char)n;
	} else {
		h[k++] = 0x83;
		h[k++] = (unsigned char)(n >> 16);
		h[k++] = (unsigned char)(n >> 8);
		h[k++] = (unsigned char)n;
	}
	der_raw(b, h, k);
}

void
der_tlv(struct der_buf *b, int tag, const void *v, size_t n)
{
	header(b, tag, n);
	der_raw(b, v, n);
}

void
der_wrap(struct der_buf *b, int tag, struct der_buf *inner)
{
	der_tlv(b, tag, inner->p, inner->len);
	der_buf_free(inner);
}

void
der_int(struct der_buf *b, long v)
{
	unsigned char buf[sizeof(long) + 1];
	size_t n = 0;

	/* big-endian, minimal, with a 0 byte when the top bit is set */
	for (int shift = (int)(sizeof(long) - 1) * 8; shift >= 0; shift -= 8) {
		unsigned char c = (unsigned char)((unsigned long)v >> shift);
		if (n == 0 && c == 0 && shift > 0)
			continue;
		if (n == 0 && (c & 0x80) != 0)
			buf[n++] = 0;
		buf[n++] = c;
	}
	der_tlv(b, DER_INTEGER, buf, n);
}

void
der_buf_free(struct der_buf *b)
{
	if (b->p != NULL)
		wipe_free(b->p, b->cap);
	memset(b, 0, sizeof(*b));
}
