/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Validate before use: with "validate: true" a mapping adopts a new client
 * certificate only after a live test request through it to the mapping's
 * endpoint succeeded. Until then the current certificate stays and the new
 * one is pending with the reason. A rejection (TLS alert, or the HTTP
 * answers servers give for an unaccepted certificate: 495/496, nginx's 400
 * "SSL certificate error") is retried with backoff. Results are kept per
 * (mapping, certificate fingerprint) across generations.
 */
#ifndef MTLSD_VALIDATE_H
#define MTLSD_VALIDATE_H

#include <stddef.h>
#include <time.h>

struct worker;
struct generation;

enum validation_state { VAL_UNKNOWN = 0, VAL_RUNNING, VAL_OK, VAL_FAILED };

void validate_init(void (*reload_request)(void));
/* State for mapping name + leaf fingerprint; reason (may be NULL) gets the
 * last failure. */
enum validation_state validate_lookup(const char *mapping, const unsigned char fp[32],
    char *reason, size_t len);
/* Start the checks generation g's destinations wait for (g is current). */
void validate_start(struct worker *w, struct generation *g);
/* Cancel running checks and free the results (shutdown). */
void validate_free(void);

#endif
