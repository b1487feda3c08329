/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The Vault client's state: settings, the token (vault_auth.c keeps it
 * alive) and one job per Vault-made certificate. A job asks Vault for its
 * pair when none is cached, when its settings changed, at renew_at of the
 * lifetime (PKI) or every refresh (KV); checks the answer; writes it to the
 * cache; and asks for a reload, which puts it through the usual pending ->
 * current path. Failures back off and never touch what is cached.
 */
#include "autoconf.h"

#include <event2/buffer.h>
#include <event2/event.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "certstore.h"
#include "json.h"
#include "log.h"
#include "runtime.h"
#include "vault.h"
#include "vault_cache.h"
#include "vault_int.h"
#include "x509.h"

struct vault_state V;

static void job_run(struct vjob *j);

double
vault_rand(double lo, double hi)
{
	return lo + (hi - lo) * ((double)random() / ((double)RAND_MAX + 1.0));
}

/* --- requests and answers -------------------------------------------------- */

struct vhttp_req *
vault_request(const char *method, const char *path, const char *token, const char *body,
    size_t body_len, vhttp_cb cb, void *arg, char *err, size_t errlen)
{
	char *url = xasprintf("%s/v1/%s", V.address, path);
	struct vhttp_request rq = {
		.method = method, .url = url, .token = token, .ns = V.ns, .ca_file = V.ca_file,
		.body = body, .body_len = body_len, .timeout_ms = 30000,
	};
	struct vhttp_req *r = vhttp_start(V.http, &rq, cb, arg, err, errlen);

	free(url);
	return r;
}

/* "1 error occurred:\n\t* permission denied\n\n" -> "permission denied" */
static void
errors_text(const struct json *j, char *out, size_t len)
{
	int errs = json_get(j, json_root(j), "errors");
	size_t o = 0;

	out[0] = '\0';
	for (size_t i = 0; i < json_array_len(j, errs) && o + 1 < len; i++) {
		const char *s = json_string(j, json_array_at(j, errs, i)), *star;
		if (s == NULL)
			continue;
		if (strstr(s, "occurred:") != NULL && (star = strstr(s, "* ")) != NULL)
			s = star + 2;
		for (; *s != '\0' && o + 1 < len; s++) {
			if (s[0] == '\n' && s[1] == '\t' && s[2] == '*' && s[3] == ' ') {
				o += (size_t)snprintf(out + o, len - o, "; ");
				s += 3;
			} else if ((unsigned char)*s >= ' ' && *s != 0x7f) {
				out[o++] = *s;
			}
		}
		if (i + 1 < json_array_len(j, errs) && o + 3 < len)
			o += (size_t)snprintf(out + o, len - o, "; ");
	}
	if (o < len)
		out[o] = '\0';
	while (o > 0 && (out[o - 1] == ' ' || out[o - 1] == ';'))
		out[--o] = '\0';
}

void
vault_answer_read(const struct vhttp_result *r, struct vault_answer *a)
{
	char perr[160], text[300];

	memset(a, 0, sizeof(*a));
	a->status = r->status;
	a->retry_after = r->retry_after;
	if (r->error != NULL || r->status == 0) {
		snprintf(a->err, sizeof(a->err), "cannot reach Vault at %s: %s", V.address,
		    r->error ? r->error : "no answer");
		V.st.up = 0;
		V.st.requests_failed++;
		vault_note_error(a->err);
		return;
	}
	V.st.up = r->status < 500;
	if (V.st.up)
		V.st.last_success = time(NULL);
	if (r->body_len > 0 && (a->j = json_parse(r->body, r->body_len, perr, sizeof(perr))) == NULL &&
	    r->status < 400)
		snprintf(a->err, sizeof(a->err), "Vault's answer (HTTP %ld) is not JSON: %s",
		    r->status, perr);
	if (r->status >= 400) {
		text[0] = '\0';
		if (a->j != NULL)
			errors_text(a->j, text, sizeof(text));
		a->invalid_token = r->status == 403 && strstr(text, "invalid token") != NULL;
		a->denied = r->status == 403;
		snprintf(a->err, sizeof(a->err), "Vault answered %ld%s%s", r->status,
		    text[0] ? ": " : "", text[0] ? text : r->status == 404 ? " (not found)" : "");
	}
	if (a->err[0] != '\0')
		V.st.requests_failed++;
	else
		V.st.requests_ok++;
	if (r->status >= 500)   /* Vault itself is unwell (sealed, no leader) */
		vault_note_error(a->err);
}

void
vault_answer_free(struct vault_answer *a)
{
	json_free(a->j);
	a->j = NULL;
}

/*
 * Workers' threads read what vault_cert_reason says (a 503 while a Vault
 * certificate is missing); the main thread changes it under this lock (it
 * reads its own state without it).
 */
static pthread_mutex_t status_lock = PTHREAD_MUTEX_INITIALIZER;

void
vault_note_error(const char *msg)
{
	pthread_mutex_lock(&status_lock);
	snprintf(V.st.last_error, sizeof(V.st.last_error), "%s", msg);
	pthread_mutex_unlock(&status_lock);
	V.st.last_error_time = time(NULL);
}

/* --- jobs: planning ---------------------------------------------------------- */

static void
job_set_state(struct vjob *j, const char *state)
{
	pthread_mutex_lock(&status_lock);
	j->st.state = state;
	pthread_mutex_unlock(&status_lock);
}

static void
job_arm(struct vjob *j, time_t at, time_t now)
{
	struct timeval tv = { at > now ? at - now : 0, 0 };

	pthread_mutex_lock(&status_lock);
	j->st.next_attempt = at > now ? at : now;
	pthread_mutex_unlock(&status_lock);
	evtimer_add(j->timer, &tv);
}

/* When the newest cached pair should be replaced. */
static time_t
job_due(struct vjob *j, time_t now)
{
	const struct vault_cached *c = &j->cached;
	time_t start;

	if (!c->found || c->not_after <= now || strcmp(c->signature, j->conf.signature) != 0)
		return now;
	if (j->conf.kind == VAULT_KV)
		return j->last_read == 0 ? now :
		    j->last_read + (time_t)((double)j->conf.refresh_ms / 1000 * j->jitter);
	/* from when we got it: Vault backdates not-before, which would make a
	 * short-lived certificate look half used on arrival */
	start = c->obtained > c->not_before ? c->obtained : c->not_before;
	if (start >= c->not_after)
		start = c->not_before;
	return start + (time_t)((double)(c->not_after - start) * j->conf.renew_at * j->jitter);
}

void
vault_job_plan(struct vjob *j)
{
	time_t now = time(NULL);

	if (j->req != NULL || j->parked)
		return;
	evtimer_del(j->timer);
	job_arm(j, j->st.consecutive_failures > 0 ? j->retry_at : job_due(j, now), now);
}

static void
job_rescan(struct vjob *j)
{
	vault_cache_scan(j->cache_dir, &j->cached);
	if (j->cached.found) {
		snprintf(j->st.serial, sizeof(j->st.serial), "%s", j->cached.serial);
		j->st.not_after = j->cached.not_after;
	}
	/* KV re-reads 85-95 % into refresh; PKI renews up to 5 % early */
	j->jitter = j->conf.kind == VAULT_KV ? vault_rand(0.85, 0.95) : vault_rand(0.95, 1.0);
}

static void
on_job_timer(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	job_run(arg);
}

/* --- jobs: failures ------------------------------------------------------------ */

/* Retry sooner for short-lived certificates: a tenth of the lifetime, from
 * 1 s to 5 min; 30 s at most while nothing valid is cached. */
static time_t
backoff_cap(const struct vjob *j, time_t now)
{
	const struct vault_cached *c = &j->cached;
	time_t cap;

	if (!c->found || c->not_after <= now)
		return 30;
	cap = (c->not_after - c->not_before) / 10;
	return cap < 1 ? 1 : cap > 300 ? 300 : cap;
}

static void
job_fail(struct vjob *j, const struct vault_answer *a, const char *why)
{
	time_t now = time(NULL), cap = backoff_cap(j, now), delay;
	unsigned n;

	j->st.failures++;
	pthread_mutex_lock(&status_lock);
	n = ++j->st.consecutive_failures;
	snprintf(j->st.last_error, sizeof(j->st.last_error), "%s", why);
	if (a != NULL && a->invalid_token)
		j->st.state = "waiting for login";
	pthread_mutex_unlock(&status_lock);
	j->st.last_error_time = now;
	if (a != NULL && a->invalid_token) {
		/* the token died: log in again; the job goes once it is back */
		vault_token_invalid(why);
		j->parked = 1;
		return;
	}
	if (a != NULL && a->denied)
		vault_token_verify();   /* a dead token, or a policy that denies */
	delay = n > 9 ? cap : (time_t)1 << (n - 1);
	if (delay > cap)
		delay = cap;
	delay = (time_t)((double)delay * vault_rand(0.75, 1.0) + 0.5);
	if (a != NULL && a->retry_after > delay)
		delay = a->retry_after < 300 ? a->retry_after : 300;
	if (delay < 1)
		delay = 1;
	j->retry_at = now + delay;
	job_set_state(j, "retrying");
	log_warnx("vault: certificate '%s': %s: %s; %s; next attempt in %llds", j->name,
	    j->conf.path, why, j->cached.found && j->cached.not_after > now ?
	    "keeping the cached certificate" : "no certificate yet (requests get 503)",
	    (long long)delay);
	vault_job_plan(j);
}

/* After Vault came back or a new token: retry now rather than at the end of
 * a long backoff. */
void
vault_jobs_kick(void)
{
	struct vjob *j;

	TAILQ_FOREACH(j, &V.jobs, link) {
		if (j->parked) {
			j->parked = 0;
			job_run(j);
		} else if (j->req == NULL && j->st.consecutive_failures > 0) {
			j->retry_at = time(NULL);
			vault_job_plan(j);
		}
	}
}

/* --- jobs: answers ------------------------------------------------------------- */

static void
job_success(struct vjob *j)
{
	pthread_mutex_lock(&status_lock);
	j->st.consecutive_failures = 0;
	j->st.last_error[0] = '\0';
	j->st.state = "ok";
	pthread_mutex_unlock(&status_lock);
	j->st.last_success = time(NULL);
}

static void
on_job_answer(void *arg, const struct vhttp_result *r)
{
	struct vjob *j = arg;
	struct vault_answer a;
	struct vault_material m = { 0 };
	char why[400];
	int was_down = !V.st.up;

	j->req = NULL;
	vault_answer_read(r, &a);
	if (a.err[0] != '\0') {
		job_fail(j, &a, a.err);
	} else if (vault_material_take(j, &a, &m, why, sizeof(why)) < 0) {
		job_fail(j, NULL, why);
	} else {
		if (m.pem != NULL && vault_material_store(j, &m, why, sizeof(why)) < 0)
			job_fail(j, NULL, why);
		else
			job_success(j);
		if (j->conf.kind == VAULT_KV)
			j->last_read = time(NULL);
		vault_material_free(&m);
		vault_job_plan(j);
	}
	vault_answer_free(&a);
	if (was_down && V.st.up)
		vault_jobs_kick();
}

static void
job_run(struct vjob *j)
{
	char err[300];

	if (j->req != NULL)
		return;
	evtimer_del(j->timer);
	if (!vault_token_usable()) {
		j->parked = 1;
		job_set_state(j, "waiting for login");
		vault_auth_start();
		return;
	}
	j->st.last_attempt = time(NULL);
	job_set_state(j, "requesting");
	if (vault_job_send(j, on_job_answer, err, sizeof(err)) < 0)
		job_fail(j, NULL, err);
}

/* --- jobs: life ------------------------------------------------------------------ */

static struct vjob *
job_find(const char *name)
{
	struct vjob *j;

	TAILQ_FOREACH(j, &V.jobs, link)
		if (strcmp(j->name, name) == 0)
			return j;
	return NULL;
}

static void
job_free(struct vjob *j)
{
	pthread_mutex_lock(&status_lock);
	TAILQ_REMOVE(&V.jobs, j, link);
	pthread_mutex_unlock(&status_lock);
	if (j->req != NULL)
		vhttp_cancel(j->req);
	event_free(j->timer);
	if (j->sign_key != NULL)
		x509_key_free(j->sign_key);
	vault_conf_free(&j->conf);
	free(j->name);
	free(j->cache_dir);
	free(j);
}

static void
job_set_conf(struct vjob *j, const struct certset *set)
{
	vault_conf_free(&j->conf);
	vault_conf_copy(&j->conf, set->opts.vault);
	j->st.kind = vault_kind_name(j->conf.kind);
	j->st.path = j->conf.path;
	free(j->cache_dir);
	j->cache_dir = xstrdup(set->cache_dir);
	if (j->sign_key != NULL) {      /* a key for other settings */
		x509_key_free(j->sign_key);
		j->sign_key = NULL;
	}
}

static void
job_sync(const struct certset *set)
{
	struct vjob *j = job_find(set->name);

	if (j == NULL) {
		j = xcalloc(1, sizeof(*j));
		j->name = xstrdup(set->name);
		j->st.name = j->name;
		j->st.state = "not issued yet";
		j->timer = evtimer_new(V.base, on_job_timer, j);
		pthread_mutex_lock(&status_lock);
		TAILQ_INSERT_TAIL(&V.jobs, j, link);
		pthread_mutex_unlock(&status_lock);
	} else if (strcmp(j->conf.signature, set->opts.vault->signature) == 0 &&
	           strcmp(j->cache_dir, set->cache_dir) == 0) {
		j->seen = 1;
		return;
	}
	j->seen = 1;
	job_set_conf(j, set);
	job_rescan(j);
	if (j->cached.found && j->cached.not_after > time(NULL) && j->st.obtained == 0 &&
	    j->st.consecutive_failures == 0)
		job_set_state(j, "ok"); /* served from the cache */
	if (j->cached.found && strcmp(j->cached.signature, j->conf.signature) != 0)
		log_info("vault: certificate '%s': the cached one was made with other "
		    "settings; asking Vault for a new one", j->name);
	if (j->req != NULL) {           /* an answer to the old settings */
		vhttp_cancel(j->req);
		j->req = NULL;
	}
	pthread_mutex_lock(&status_lock);
	j->st.consecutive_failures = 0;
	pthread_mutex_unlock(&status_lock);
	if (!j->parked)
		vault_job_plan(j);
}

void
vault_jobs_sync(const struct generation *g)
{
	struct vjob *j, *next;

	TAILQ_FOREACH(j, &V.jobs, link)
		j->seen = 0;
	for (size_t i = 0; V.configured && i < g->n_sets; i++) {
		const struct certset *set = g->sets[i];
		if (set->opts.vault != NULL && set->cache_dir != NULL)
			job_sync(set);
		else if (set->opts.vault_broken && (j = job_find(set->name)) != NULL)
			j->seen = 1;    /* a typo does not stop renewals */
	}
	for (j = TAILQ_FIRST(&V.jobs); j != NULL; j = next) {
		next = TAILQ_NEXT(j, link);
		if (!j->seen) {
			log_info("vault: certificate '%s' is no longer made by Vault", j->name);
			job_free(j);
		}
	}
}

/* Stored after a success: the cache holds it now. */
void
vault_job_stored(struct vjob *j)
{
	j->st.obtained++;
	job_rescan(j);
}

void
vault_jobs_free(void)
{
	while (!TAILQ_EMPTY(&V.jobs))
		job_free(TAILQ_FIRST(&V.jobs));
}

void
vault_refresh(void)
{
	struct vjob *j;

	if (!__atomic_load_n(&V.configured, __ATOMIC_RELAXED))
		return;
	vault_credentials_check(1);
	TAILQ_FOREACH(j, &V.jobs, link)
		if (j->conf.kind == VAULT_KV && j->req == NULL && !j->parked)
			job_run(j);
}

/* Start: a certificate with nothing cached whose first request has not
 * come back yet (and the login has not failed). */
int
vault_first_round_pending(void)
{
	time_t now = time(NULL);
	struct vjob *j;

	if (!V.configured || V.auth_failures > 0)
		return 0;
	TAILQ_FOREACH(j, &V.jobs, link)
		if (!(j->cached.found && j->cached.not_after > now) && j->st.obtained == 0 &&
		    j->st.failures == 0)
			return 1;
	return 0;
}

/* --- status -------------------------------------------------------------------- */

const struct vault_status *
vault_status(void)
{
	return V.configured ? &V.st : NULL;
}

const struct vault_cert_status *
vault_cert_status(const char *name)
{
	struct vjob *j = __atomic_load_n(&V.configured, __ATOMIC_RELAXED) ? job_find(name) : NULL;

	return j != NULL ? &j->st : NULL;
}

void
vault_cert_reason(const char *name, char *buf, size_t len)
{
	const struct vault_cert_status *s;
	time_t now = time(NULL);

	pthread_mutex_lock(&status_lock);
	s = vault_cert_status(name);
	if (!__atomic_load_n(&V.configured, __ATOMIC_RELAXED))
		snprintf(buf, len, "certificate '%s' is to come from Vault, but mtlsd.yaml "
		    "has no vault: section", name);
	else if (s == NULL)
		snprintf(buf, len, "certificate '%s' is to come from Vault", name);
	else if (s->consecutive_failures > 0)
		snprintf(buf, len, "waiting for Vault: %s; next attempt in %llds", s->last_error,
		    (long long)(s->next_attempt > now ? s->next_attempt - now : 0));
	else if (strcmp(s->state, "waiting for login") == 0)
		snprintf(buf, len, "waiting for Vault login%s%s", V.st.last_error[0] ? ": " : "",
		    V.st.last_error);
	else
		snprintf(buf, len, "waiting for Vault (%s)", s->state);
	pthread_mutex_unlock(&status_lock);
}
