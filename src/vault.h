/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The Vault client: logs in (token file or AppRole), keeps its token alive
 * with the reference clients' timing, and for every certificate whose
 * certificate.yaml has a vault: section obtains the pair (PKI issue, PKI
 * sign with a key made here, or a KV secret), renews it before it expires,
 * and caches it atomically in state_dir/vault/NAME/. The certificate store
 * reads that cache like any certificate directory, so Vault's material takes
 * the same pending -> current path as a dropped file; a reload is requested
 * after each write. Vault failing never removes a working certificate.
 * Everything runs on the event loop (vault_http.c).
 */
#ifndef MTLSD_VAULT_H
#define MTLSD_VAULT_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

struct event_base;
struct config;
struct generation;

struct vault_cert_status {
	const char *name;
	const char *kind;               /* "pki/issue", "pki/sign", "kv" */
	const char *path;
	const char *state;              /* "ok", "requesting", "waiting for login",
	                                 * "retrying", "not issued yet" */
	time_t last_success, last_attempt, next_attempt;
	time_t not_after;               /* of the newest pair obtained (0: none) */
	char serial[80];                /* of the newest pair obtained */
	long long kv_version;           /* KV v2: version read last (0: n/a) */
	uint64_t obtained, failures;    /* totals since start */
	unsigned consecutive_failures;
	char last_error[320];           /* "" when the last attempt worked */
	time_t last_error_time;
};

struct vault_status {
	const char *address;
	const char *auth;               /* "token_file" or "approle" */
	const char *token_state;        /* "none", "logging in", "ok", "error" */
	time_t token_expires;           /* 0: never or unknown */
	int token_renewable;
	int up;                         /* the last request got an answer */
	time_t last_success;            /* last answer from Vault */
	uint64_t requests_ok, requests_failed, logins;
	char last_error[320];
	time_t last_error_time;
};

/* Once, with the loop. reload_request is called after new material is
 * cached. */
void vault_init(struct event_base *base, void (*reload_request)(void));
/*
 * After a start or reload (g is now current): follow cfg's vault: settings
 * (a changed address or auth logs in again) and g's certificates: a job per
 * Vault-made certificate, started, changed or stopped as needed.
 */
void vault_apply(const struct generation *g);
/* 1 while a certificate with nothing cached awaits its first answer: the
 * start waits for it (bounded) rather than answer 503 at once. */
int vault_first_round_pending(void);
/* SIGHUP, POST /reload: re-read KV secrets and the token file now. */
void vault_refresh(void);
void vault_shutdown(void);

/* NULL when Vault is not configured. */
const struct vault_status *vault_status(void);
/* NULL when name is not made by Vault. */
const struct vault_cert_status *vault_cert_status(const char *name);
/* Why name has no certificate yet, for a 503: "waiting for Vault: ...". */
void vault_cert_reason(const char *name, char *buf, size_t len);

#endif
