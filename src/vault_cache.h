/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The cache of what Vault issued: state_dir/vault/NAME/SERIAL.pem, one file per
 * pair (leaf, chain, key; 0600 in 0700 directories), written atomically so
 * that a reader never sees half a pair. Its first line records which request
 * made it. The certificate store reads these files; this module writes,
 * scans and prunes them.
 */
#ifndef MTLSD_VAULT_CACHE_H
#define MTLSD_VAULT_CACHE_H

#include <stddef.h>
#include <time.h>

#include "util.h"

#define VAULT_CACHE_SIG_TAG "# mtlsd-request: "

struct vault_cached {
	int found;                      /* a readable pair is cached */
	time_t not_before, not_after;   /* of the newest pair */
	time_t obtained;                /* when it was written (file mtime) */
	char serial[80];
	char signature[17];             /* the request that made it */
	unsigned char fingerprint[32];  /* of its leaf */
};

/* The newest pair (by not-before) in dir; out->found = 0 when none. */
void vault_cache_scan(const char *dir, struct vault_cached *out);
/* 1 when dir holds a pair whose leaf has this fingerprint. */
int vault_cache_has(const char *dir, const unsigned char fingerprint[32]);
/* Write header + pem as dir/file (creating root and dir 0700). 0, or -1
 * with the reason in err. */
int vault_cache_write(const char *root, const char *dir, const char *file, const char *header,
    const char *pem, size_t len, char *err, size_t errlen) MUSTCHECK;
/* Delete expired pairs and all but the keep newest; never the newest. */
void vault_cache_prune(const char *dir, time_t now, size_t keep);

#endif
