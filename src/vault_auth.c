/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Settings and the token. A token comes from token_file (checked with
 * lookup-self; re-read when the file changes, Vault Agent's sink pattern) or
 * from an AppRole login. It is kept alive as Vault's own lifetime watcher
 * does (vault-api.md §6): renew-self at 2/3 of the lease plus a third of a
 * grace of 10-20 %, log in again when a renewal comes back shorter than
 * four graces or is refused, and at once on 403 "invalid token". Logins
 * back off 1 s, 2 s, ... 30 s with up to 25 % jitter.
 */
#include "autoconf.h"

#include <ctype.h>
#include <errno.h>
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "json.h"
#include "log.h"
#include "runtime.h"
#include "vault_int.h"

#define SECRET_FILE_MAX 8192

enum auth_op { OP_LOGIN, OP_LOOKUP, OP_RENEW, OP_VERIFY };

static enum auth_op auth_op;

static void auth_timer_at(long delay);

int
vault_token_usable(void)
{
	return V.token != NULL && V.token_ok &&
	       (V.st.token_expires == 0 || V.st.token_expires > time(NULL));
}

static void
token_clear(void)
{
	if (V.token != NULL)
		wipe_free(V.token, strlen(V.token));
	V.token = NULL;
	V.token_ok = 0;
}

/* --- secret files ---------------------------------------------------------------- */

/* A token or AppRole credential: not world-readable, one printable word. */
static char *
read_secret(const char *path, const char *what, struct stat *st_out, char *err, size_t errlen)
{
	struct stat st;
	size_t len = 0;
	char *buf;

	if (stat(path, &st) < 0 || (buf = read_file(path, SECRET_FILE_MAX, &len)) == NULL) {
		snprintf(err, errlen, "cannot read %s %s: %s", what, path, strerror(errno));
		return NULL;
	}
	if (st.st_mode & S_IROTH) {
		snprintf(err, errlen, "%s %s has mode %04o; it must not be readable by others "
		    "(chmod 640)", what, path, (unsigned)(st.st_mode & 07777));
		wipe_free(buf, len);
		return NULL;
	}
	while (len > 0 && isspace((unsigned char)buf[len - 1]))
		buf[--len] = '\0';
	for (size_t i = 0; i < len; i++)
		if (!isgraph((unsigned char)buf[i]) || buf[i] == '"' || buf[i] == '\\') {
			snprintf(err, errlen, "%s %s: expected one line without blanks or quotes",
			    what, path);
			wipe_free(buf, len);
			return NULL;
		}
	if (len == 0) {
		snprintf(err, errlen, "%s %s is empty", what, path);
		free(buf);
		return NULL;
	}
	if (st_out != NULL)
		*st_out = st;
	return buf;
}

static int
same_file(const struct stat *a, const struct stat *b)
{
	return a->st_ino == b->st_ino && a->st_dev == b->st_dev && a->st_size == b->st_size &&
	       a->st_mtim.tv_sec == b->st_mtim.tv_sec && a->st_mtim.tv_nsec == b->st_mtim.tv_nsec;
}

/* --- outcomes --------------------------------------------------------------------- */

static void
auth_failed(const char *why, long retry_after)
{
	/* Vault Agent waits up to 5 min; a sidecar whose certificates depend on
	 * Vault tries again sooner once it is back */
	long cap = 30;
	unsigned n = ++V.auth_failures;
	long delay = n > 9 ? cap : 1L << (n - 1);

	if (delay > cap)
		delay = cap;
	delay = (long)((double)delay * vault_rand(0.75, 1.0) + 0.5);
	if (retry_after > delay)
		delay = retry_after < 300 ? retry_after : 300;
	if (delay < 1)
		delay = 1;
	V.st.token_state = "error";
	vault_note_error(why);
	log_warnx("vault: %s; trying again in %lds", why, delay);
	auth_timer_at(delay);
}

/* Schedule the token's next renewal or login (lifetime watcher, §6.1). */
static void
token_plan(long remaining)
{
	double sleep;

	if (V.token_ttl <= 0 || remaining <= 0)
		return;         /* never expires */
	sleep = 2.0 / 3.0 * (double)remaining + (double)V.grace / 3.0;
	if (remaining <= V.grace || (double)remaining - sleep <= (double)V.grace)
		sleep = 0;      /* too close to the end to renew: log in again */
	auth_op = V.st.token_renewable && !V.renew_disabled && sleep > 0 ? OP_RENEW : OP_LOGIN;
	auth_timer_at((long)(sleep + 0.5));
}

static void
token_accepted(long ttl, int renewable, const char *how)
{
	int first = !V.token_ok;

	V.token_ok = 1;
	V.auth_failures = V.renew_failures = 0;
	V.renew_disabled = 0;
	V.token_ttl = ttl;
	V.grace = (long)((double)ttl * vault_rand(0.10, 0.20));
	V.st.token_state = "ok";
	V.st.token_renewable = renewable;
	V.st.token_expires = ttl > 0 ? time(NULL) + ttl : 0;
	V.st.logins++;
	if (ttl > 0)
		log_info("vault: %s (token ttl %lds%s)", how, ttl, renewable ? ", renewable" : "");
	else
		log_info("vault: %s (token does not expire)", how);
	token_plan(ttl);
	if (first)
		vault_jobs_kick();
}

/* --- the requests ----------------------------------------------------------------- */

static void on_auth_answer(void *arg, const struct vhttp_result *r);

static void
auth_send(enum auth_op op, const char *method, const char *path, const char *body,
    size_t body_len)
{
	char err[300];

	auth_op = op;
	V.auth_req = vault_request(method, path, op == OP_LOGIN && V.token_file == NULL ? NULL :
	    V.token, body, body_len, on_auth_answer, NULL, err, sizeof(err));
	if (V.auth_req == NULL)
		auth_failed(err, 0);
}

static void
approle_login(void)
{
	char err[300], *role, *secret, *body, *path;
	struct stat st;

	if ((role = read_secret(V.role_id_file, "role_id_file", NULL, err, sizeof(err))) == NULL) {
		auth_failed(err, 0);
		return;
	}
	if ((secret = read_secret(V.secret_id_file, "secret_id_file", &st, err,
	         sizeof(err))) == NULL) {
		wipe_free(role, strlen(role));
		auth_failed(err, 0);
		return;
	}
	V.token_st = st;
	/* read_secret allows no quote or backslash: no JSON escaping needed */
	body = xasprintf("{\"role_id\":\"%s\",\"secret_id\":\"%s\"}", role, secret);
	path = xasprintf("auth/%s/login", V.approle_mount);
	V.st.token_state = "logging in";
	auth_send(OP_LOGIN, "POST", path, body, strlen(body));
	free(path);
	wipe_free(body, strlen(body));
	wipe_free(role, strlen(role));
	wipe_free(secret, strlen(secret));
}

/* token_file: read it and ask Vault what the token is worth. */
static void
token_file_login(void)
{
	char err[300], *tok;
	struct stat st;

	if ((tok = read_secret(V.token_file, "token_file", &st, err, sizeof(err))) == NULL) {
		auth_failed(err, 0);
		return;
	}
	token_clear();
	V.token = tok;
	V.token_st = st;
	V.st.token_state = "logging in";
	auth_send(OP_LOOKUP, "GET", "auth/token/lookup-self", NULL, 0);
}

void
vault_auth_start(void)
{
	if (!V.configured || V.auth_req != NULL)
		return;
	evtimer_del(V.auth_timer);
	if (V.token_file != NULL)
		token_file_login();
	else
		approle_login();
}

static void
token_renew(void)
{
	char body[64];

	snprintf(body, sizeof(body), "{\"increment\":%ld}", V.token_ttl);
	auth_send(OP_RENEW, "POST", "auth/token/renew-self", body, strlen(body));
}

/* A job got 403 without "invalid token": older Vaults say only "permission
 * denied" for a dead token too, so ask Vault whether ours still lives. */
void
vault_token_verify(void)
{
	if (V.auth_req != NULL || V.token == NULL)
		return;
	evtimer_del(V.auth_timer);
	auth_send(OP_VERIFY, "GET", "auth/token/lookup-self", NULL, 0);
}

void
vault_token_invalid(const char *why)
{
	if (!V.token_ok)
		return;
	log_warnx("vault: the token is no longer valid (%s); logging in again", why);
	V.token_ok = 0;
	V.st.token_state = "none";
	if (V.auth_req != NULL) {
		vhttp_cancel(V.auth_req);
		V.auth_req = NULL;
	}
	vault_auth_start();
}

/* --- answers ----------------------------------------------------------------------- */

static void
on_login(const struct vault_answer *a)
{
	const struct json *j = a->j;
	int auth = json_get(j, json_root(j), "auth"), renewable = 0;
	const char *tok = json_string(j, json_get(j, auth, "client_token"));
	long long ttl = 0;

	if (tok == NULL || json_int(j, json_get(j, auth, "lease_duration"), &ttl) < 0) {
		auth_failed("AppRole login: Vault's answer has no auth.client_token", 0);
		return;
	}
	(void)json_bool(j, json_get(j, auth, "renewable"), &renewable);
	token_clear();
	V.token = xstrdup(tok);
	token_accepted((long)ttl, renewable, "logged in with AppRole");
}

static void
on_lookup(const struct vault_answer *a, int verify)
{
	const struct json *j = a->j;
	int data = json_get(j, json_root(j), "data"), renewable = 0;
	long long ttl = 0;

	if (json_int(j, json_get(j, data, "ttl"), &ttl) < 0) {
		auth_failed("token lookup: Vault's answer has no data.ttl", 0);
		return;
	}
	(void)json_bool(j, json_get(j, data, "renewable"), &renewable);
	if (verify) {           /* alive: the 403 was the policy's */
		token_plan(V.token_ttl > 0 ? (long)ttl : 0);
		return;
	}
	token_accepted((long)ttl, renewable, "using the token from token_file");
}

static void
on_renew(const struct vault_answer *a)
{
	long long r = 0;

	if (json_int(a->j, json_path(a->j, json_root(a->j), "auth.lease_duration"), &r) < 0) {
		auth_op = OP_LOGIN;
		auth_timer_at(0);
		return;
	}
	V.renew_failures = 0;
	V.st.token_expires = time(NULL) + r;
	if (r > V.token_ttl) {          /* a longer lease: a new grace */
		V.token_ttl = (long)r;
		V.grace = (long)((double)r * vault_rand(0.10, 0.20));
	}
	log_debug("vault: token renewed for %llds", r);
	if (r <= 4 * V.grace) {
		log_info("vault: the token nears its max TTL (%llds left); logging in again", r);
		auth_op = OP_LOGIN;
		auth_timer_at(0);
		return;
	}
	token_plan((long)r);
}

/* Renewal failed: 403 "permission denied" stops renewing (vault#22575);
 * anything else retries 10 s, 20 s, ... 5 min (±50 %) while the lease
 * lasts. */
static void
on_renew_failed(const struct vault_answer *a)
{
	time_t now = time(NULL), left = V.st.token_expires - now;
	long delay;

	vault_note_error(a->err);
	if (a->denied) {
		log_warnx("vault: token renewal refused (%s); logging in again before it "
		    "expires", a->err);
		V.renew_disabled = 1;
		token_plan(left > 0 ? (long)left : 0);
		return;
	}
	delay = 10L << (V.renew_failures < 5 ? V.renew_failures : 5);
	V.renew_failures++;
	if (delay > 300)
		delay = 300;
	delay = (long)((double)delay * vault_rand(0.5, 1.5));
	if (left - delay <= V.grace)
		delay = 0, auth_op = OP_LOGIN;
	log_warnx("vault: token renewal failed (%s); %s in %lds", a->err,
	    auth_op == OP_LOGIN ? "logging in again" : "retrying", delay);
	auth_timer_at(delay);
}

static void
on_auth_answer(void *arg, const struct vhttp_result *r)
{
	struct vault_answer a;
	enum auth_op op = auth_op;
	int was_down = !V.st.up;
	char why[420];

	(void)arg;
	V.auth_req = NULL;
	vault_answer_read(r, &a);
	if (a.err[0] == '\0' && a.j == NULL)
		snprintf(a.err, sizeof(a.err), "Vault's answer (HTTP %ld) is empty", a.status);
	if (a.err[0] != '\0') {
		if (op == OP_RENEW && !a.invalid_token) {
			on_renew_failed(&a);
		} else if (op == OP_VERIFY || op == OP_RENEW) {
			if (a.denied)
				vault_token_invalid(a.err);
			else
				token_plan(V.st.token_expires - time(NULL));
		} else {
			snprintf(why, sizeof(why), "%s: %s", op == OP_LOGIN ?
			    "AppRole login failed" : "token from token_file not accepted", a.err);
			token_clear();
			auth_failed(why, a.retry_after);
		}
	} else if (op == OP_LOGIN) {
		on_login(&a);
	} else if (op == OP_RENEW) {
		on_renew(&a);
	} else {
		on_lookup(&a, op == OP_VERIFY);
	}
	vault_answer_free(&a);
	if (was_down && V.st.up)
		vault_jobs_kick();
}

static void
on_auth_timer(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
	if (V.auth_req != NULL)
		return;
	if (auth_op == OP_RENEW && V.token_ok)
		token_renew();
	else
		vault_auth_start();
}

static void
auth_timer_at(long delay)
{
	struct timeval tv = { delay > 0 ? delay : 0, 0 };

	evtimer_add(V.auth_timer, &tv);
}

/*
 * A credential file changed (Vault Agent wrote a new token, an operator fixed
 * the secret_id) or the operator reloaded (force): a token file is read
 * again; a failed AppRole login is tried again now rather than after its
 * backoff.
 */
void
vault_credentials_check(int force)
{
	const char *file = V.token_file != NULL ? V.token_file : V.secret_id_file;
	struct stat st;

	if (file == NULL || V.auth_req != NULL)
		return;
	if (!force && stat(file, &st) == 0 && same_file(&st, &V.token_st))
		return;
	if (V.token_file == NULL && V.token_ok)
		return;         /* the new secret_id serves the next login */
	log_info("vault: %s changed; %s", file, V.token_file != NULL ? "re-reading it" :
	    "logging in again");
	vault_auth_start();
}

/* --- settings ---------------------------------------------------------------------- */

static int
same_str(const char *a, const char *b)
{
	return (a == NULL && b == NULL) || (a != NULL && b != NULL && strcmp(a, b) == 0);
}

static void
replace(char **slot, const char *v)
{
	free(*slot);
	*slot = v != NULL ? xstrdup(v) : NULL;
}

static void
settings_clear(void)
{
	if (V.auth_req != NULL)
		vhttp_cancel(V.auth_req);
	V.auth_req = NULL;
	evtimer_del(V.auth_timer);
	token_clear();
	replace(&V.address, NULL);
	replace(&V.ca_file, NULL);
	replace(&V.ns, NULL);
	replace(&V.token_file, NULL);
	replace(&V.role_id_file, NULL);
	replace(&V.secret_id_file, NULL);
	replace(&V.approle_mount, NULL);
	__atomic_store_n(&V.configured, 0, __ATOMIC_RELAXED);
	V.auth_failures = 0;
	memset(&V.st, 0, sizeof(V.st));
}

/* 1 when the new settings need a new login. */
/* vault.address without trailing slashes (paths are appended after "/v1/") */
static char *
address_of(const struct config *cfg)
{
	char *addr = xstrdup(cfg->vault.address);
	size_t n = strlen(addr);

	while (n > 0 && addr[n - 1] == '/')
		addr[--n] = '\0';
	return addr;
}

static int
settings_changed(const struct config *cfg)
{
	char *addr = address_of(cfg);
	int changed;

	changed = !V.configured || !same_str(V.address, addr) ||
	    !same_str(V.ca_file, cfg->vault.ca_file) || !same_str(V.ns, cfg->vault.namespace) ||
	    !same_str(V.token_file, cfg->vault.token_file) ||
	    !same_str(V.role_id_file, cfg->vault.role_id_file) ||
	    !same_str(V.secret_id_file, cfg->vault.secret_id_file) ||
	    !same_str(V.approle_mount, cfg->vault.approle_mount ? cfg->vault.approle_mount :
	                                                          "approle");
	free(addr);
	return changed;
}

static void
settings_take(const struct config *cfg)
{
	settings_clear();
	__atomic_store_n(&V.configured, 1, __ATOMIC_RELAXED);
	V.address = address_of(cfg);
	V.ca_file = cfg->vault.ca_file ? xstrdup(cfg->vault.ca_file) : NULL;
	V.ns = cfg->vault.namespace ? xstrdup(cfg->vault.namespace) : NULL;
	V.token_file = cfg->vault.token_file ? xstrdup(cfg->vault.token_file) : NULL;
	V.role_id_file = cfg->vault.role_id_file ? xstrdup(cfg->vault.role_id_file) : NULL;
	V.secret_id_file = cfg->vault.secret_id_file ? xstrdup(cfg->vault.secret_id_file) : NULL;
	V.approle_mount = xstrdup(cfg->vault.approle_mount ? cfg->vault.approle_mount : "approle");
	V.st.address = V.address;
	V.st.auth = V.token_file != NULL ? "token_file" : "approle";
	V.st.token_state = "none";
	V.st.up = 1;    /* until a request says otherwise */
}

void
vault_init(struct event_base *base, void (*reload_request)(void))
{
	V.base = base;
	V.reload_request = reload_request;
	TAILQ_INIT(&V.jobs);
	V.auth_timer = evtimer_new(base, on_auth_timer, NULL);
	srandom((unsigned)time(NULL) ^ (unsigned)getpid());
}

void
vault_apply(const struct generation *g)
{
	const struct config *cfg = g->cfg;

	if (V.base == NULL)
		return;
	if (!cfg->vault.configured) {
		if (V.configured)
			log_info("vault: no vault: section any more; Vault-made certificates stay "
			    "in use from the cache until they expire");
		__atomic_store_n(&V.configured, 0, __ATOMIC_RELAXED);
		vault_jobs_sync(g);     /* not configured: every job stops */
		settings_clear();
		return;
	}
	if (V.http == NULL && (V.http = vhttp_new(V.base)) == NULL) {
		log_error("vault: cannot start the HTTP client");
		return;
	}
	if (settings_changed(cfg)) {
		if (V.configured)
			log_info("vault: settings changed; logging in again");
		settings_take(cfg);
		vault_jobs_sync(g);
		vault_auth_start();
		return;
	}
	vault_jobs_sync(g);
	vault_credentials_check(0);
}

void
vault_shutdown(void)
{
	if (V.base == NULL)
		return;
	vault_jobs_free();
	settings_clear();
	if (V.auth_timer != NULL)
		event_free(V.auth_timer);
	if (V.http != NULL)
		vhttp_free(V.http);
	memset(&V, 0, sizeof(V));
}
