/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Token bucket: the bucket holds up to burst tokens and refills at rate
 * tokens per second; each request takes one. The clock is passed in so tests
 * (and several workers sharing one clock reading) stay deterministic. Not
 * locked: the caller owns one bucket per thread or serialises access.
 */
#include "autoconf.h"

#include <stddef.h>
#include <stdint.h>

#include "ratelimit.h"

/* Guards against 0.999999 after many small refills denying a due token. */
#define RATELIMIT_EPSILON 1e-9
#define RATELIMIT_MAX_RATE 1e9

void
ratelimit_init(struct ratelimit *rl, double rate, double burst, uint64_t now_ms)
{
	rl->rate = rate;
	rl->burst = burst < 1 ? 1 : burst;
	rl->tokens = rl->burst;
	rl->last_ms = now_ms;
}

static void
ratelimit_refill(struct ratelimit *rl, uint64_t now_ms)
{
	if (now_ms <= rl->last_ms)
		return;		/* monotonic clock: equal, never earlier */
	rl->tokens += (double)(now_ms - rl->last_ms) * rl->rate / 1000.0;
	if (rl->tokens > rl->burst)
		rl->tokens = rl->burst;
	rl->last_ms = now_ms;
}

int
ratelimit_take(struct ratelimit *rl, uint64_t now_ms, unsigned *retry_after_s)
{
	double wait;
	unsigned secs;

	ratelimit_refill(rl, now_ms);
	if (rl->tokens >= 1.0 - RATELIMIT_EPSILON) {
		rl->tokens -= 1.0;
		return 0;
	}
	wait = (1.0 - rl->tokens) / rl->rate;
	if (wait > 4e9)
		wait = 4e9;
	secs = (unsigned)wait;
	if ((double)secs < wait)
		secs++;
	if (retry_after_s != NULL)
		*retry_after_s = secs < 1 ? 1 : secs;
	return -1;
}

/* Digits with an optional fraction; no sign, exponent, inf or locale. */
static const char *
parse_decimal(const char *s, double *v)
{
	double x = 0, scale = 1;
	int digits = 0;

	for (; *s >= '0' && *s <= '9'; s++, digits++)
		x = x * 10 + (*s - '0');
	if (*s == '.')
		for (s++; *s >= '0' && *s <= '9'; s++, digits++) {
			scale /= 10;
			x += (*s - '0') * scale;
		}
	if (digits == 0 || digits > 15)
		return NULL;
	*v = x;
	return s;
}

int
ratelimit_parse(const char *s, double *per_sec)
{
	double v, div;

	if ((s = parse_decimal(s, &v)) == NULL || *s++ != '/')
		return -1;
	switch (*s) {
	case 's':
		div = 1;
		break;
	case 'm':
		div = 60;
		break;
	case 'h':
		div = 3600;
		break;
	default:
		return -1;
	}
	if (s[1] != '\0')
		return -1;
	v /= div;
	if (!(v > 0) || v > RATELIMIT_MAX_RATE)
		return -1;
	*per_sec = v;
	return 0;
}
