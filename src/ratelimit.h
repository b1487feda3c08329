/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Token bucket per mapping ("10/s" -> rate 10, burst 10). Clock injected. */
#ifndef MTLSD_RATELIMIT_H
#define MTLSD_RATELIMIT_H

#include <stdint.h>

struct ratelimit {
	double rate;            /* tokens per second */
	double burst;           /* bucket size */
	double tokens;
	uint64_t last_ms;
};

void ratelimit_init(struct ratelimit *rl, double rate, double burst, uint64_t now_ms);
/* Take one token: 0 on success; -1 when empty, with *retry_after_s set to
 * whole seconds (>= 1) until a token is available. */
int ratelimit_take(struct ratelimit *rl, uint64_t now_ms, unsigned *retry_after_s);
/* Parse "10/s", "600/m", "100/h", "2.5/s": 0 ok, -1 bad. */
int ratelimit_parse(const char *s, double *per_sec);

#endif
