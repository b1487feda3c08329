/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Just enough DER to read and write PKCS#12 containers (p12.c): a cursor
 * that walks TLVs with definite lengths (BER's indefinite form is refused),
 * and a growing buffer that nests TLVs. No crypto here; buffers are wiped
 * when freed because they may hold key material before it is encrypted.
 */
#ifndef MTLSD_DER_H
#define MTLSD_DER_H

#include <stddef.h>

#include "util.h"

#define DER_INTEGER     0x02
#define DER_OCTETS      0x04
#define DER_NULL        0x05
#define DER_OID         0x06
#define DER_BMPSTRING   0x1e
#define DER_SEQUENCE    0x30
#define DER_SET         0x31
#define DER_CTX0        0xa0    /* [0] constructed (EXPLICIT) */
#define DER_CTX0_PRIM   0x80    /* [0] primitive (IMPLICIT OCTET STRING) */

/* A view of DER bytes (never owned). */
struct der {
	const unsigned char *p;
	size_t len;
};

/* Take the next TLV off the front of cur: its tag and its contents. 0, or
 * -1 at the end or on malformed input (cur is then unchanged). */
int der_next(struct der *cur, int *tag, struct der *val) MUSTCHECK;
/* der_next that also requires the tag (-1 leaves cur alone, so optional
 * fields are tried with it). */
int der_expect(struct der *cur, int tag, struct der *val);
/* Does an OID's contents equal the n bytes given? */
int der_oid_eq(const struct der *oid, const unsigned char *bytes, size_t n);
#define DER_OID_EQ(v, arr) der_oid_eq((v), (arr), sizeof(arr))
/* A non-negative INTEGER that fits a long: 0 and *out, else -1. */
int der_long(const struct der *v, long *out);

/* An output buffer; zero-initialise it. */
struct der_buf {
	unsigned char *p;
	size_t len, cap;
};

void der_raw(struct der_buf *b, const void *v, size_t n);
/* One TLV with these contents. */
void der_tlv(struct der_buf *b, int tag, const void *v, size_t n);
/* One TLV whose contents are inner's bytes; inner is wiped and freed. */
void der_wrap(struct der_buf *b, int tag, struct der_buf *inner);
void der_int(struct der_buf *b, long v);
void der_buf_free(struct der_buf *b);

#endif
