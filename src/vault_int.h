/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Shared by the Vault client's files: vault.c (state, jobs, status),
 * vault_auth.c (settings, login, token lifetime) and vault_job.c (what each
 * kind of job asks Vault and how its answer becomes a cached pair).
 */
#ifndef MTLSD_VAULT_INT_H
#define MTLSD_VAULT_INT_H

#include <sys/queue.h>
#include <sys/stat.h>
#include <time.h>

#include "vault.h"
#include "vault_cache.h"
#include "vault_conf.h"
#include "vault_http.h"

struct json;
struct x509_key;
struct certset;

struct vjob {
	TAILQ_ENTRY(vjob) link;
	char *name;
	char *cache_dir;                /* state_dir/vault/NAME */
	struct vault_cert_conf conf;
	struct vault_cert_status st;
	struct event *timer;
	struct vhttp_req *req;          /* in flight */
	struct x509_key *sign_key;      /* pki/sign: the key its request is for */
	struct vault_cached cached;     /* the newest pair on disk */
	double jitter;                  /* of the next renewal point */
	time_t retry_at;                /* after a failure */
	time_t last_read;               /* KV: last successful read */
	int parked;                     /* waits for a token */
	int seen;                       /* in the generation being applied */
};

struct vault_state {
	struct event_base *base;
	void (*reload_request)(void);
	struct vhttp *http;
	int configured;
	char *address, *ca_file, *ns, *token_file, *role_id_file, *secret_id_file;
	char *approle_mount;
	/* the token */
	char *token;
	int token_ok;                   /* accepted by Vault (login or lookup) */
	long token_ttl;                 /* as granted at login (0: never expires) */
	long grace;                     /* seconds (lifetime watcher's grace) */
	int renew_disabled;             /* a renewal was denied by policy */
	unsigned auth_failures, renew_failures;
	struct event *auth_timer;
	struct vhttp_req *auth_req;
	struct stat token_st;           /* token_file (or secret_id_file) as last read */
	TAILQ_HEAD(, vjob) jobs;
	struct vault_status st;
};

extern struct vault_state V;

/* An answer, read: err[0] != 0 when it is a failure (transport, HTTP >= 400
 * or not JSON); j is the parsed body (may be NULL). */
struct vault_answer {
	long status;
	struct json *j;
	char err[360];
	int invalid_token;              /* 403 naming "invalid token" */
	int denied;                     /* 403 */
	long retry_after;
};

/* A pair taken from an answer: pem = leaf, chain and key. */
struct vault_material {
	char *pem;                      /* NULL: nothing new (KV unchanged) */
	size_t len, cap;
	unsigned char fingerprint[32];  /* of the leaf */
	char serial[80];
	time_t not_after;
	long long kv_version;
};

double vault_rand(double lo, double hi);
struct vhttp_req *vault_request(const char *method, const char *path, const char *token,
    const char *body, size_t body_len, vhttp_cb cb, void *arg, char *err, size_t errlen);
void vault_answer_read(const struct vhttp_result *r, struct vault_answer *a);
void vault_answer_free(struct vault_answer *a);
void vault_note_error(const char *msg);

/* vault.c */
void vault_job_plan(struct vjob *j);
void vault_job_stored(struct vjob *j);
void vault_jobs_kick(void);
void vault_jobs_sync(const struct generation *g);
void vault_jobs_free(void);

/* vault_auth.c */
int vault_token_usable(void);
void vault_auth_start(void);
void vault_token_invalid(const char *why);
void vault_token_verify(void);
void vault_credentials_check(int force);

/* vault_job.c */
int vault_job_send(struct vjob *j, vhttp_cb cb, char *err, size_t errlen);
int vault_material_take(struct vjob *j, const struct vault_answer *a, struct vault_material *m,
    char *err, size_t errlen);
int vault_material_store(struct vjob *j, const struct vault_material *m, char *err,
    size_t errlen);
void vault_material_free(struct vault_material *m);

#endif
