/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The admin endpoint (libevent's evhttp) on admin.listen, loopback TCP or a
 * unix socket: GET /status (JSON), GET /metrics (Prometheus text),
 * GET /certificates[/NAME] (public certificates as PEM, never a key),
 * POST /reload. Answers are rendered from the generation that is current
 * when the request arrives; the only thing the endpoint changes is asking
 * for a reload.
 */
#ifndef MTLSD_ADMIN_H
#define MTLSD_ADMIN_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "util.h"

struct worker;
struct config;
struct config_errors;
struct generation;
struct evbuffer;

/* Open cfg->admin_listen (no-op returning 0 when it is NULL) and serve it on
 * w's loop. reload_request is what POST /reload calls. 0, or -1 with err. */
int admin_start(struct worker *w, const struct config *cfg, void (*reload_request)(void),
    char *err, size_t errlen) MUSTCHECK;
/* After a reload: follow a changed admin.listen (the new socket is opened
 * before the old one closes; on failure the old one stays and it is
 * logged), adopt new allowed_uids, mode and group. */
void admin_update(struct worker *w, const struct config *cfg);
/* Record a reload's outcome for /status and /metrics. generation is the one
 * now serving; errs (may be NULL) the reasons of a failure, copied. */
void admin_note_reload(int ok, unsigned generation, const struct config_errors *errs);
/* Close the endpoint (and unlink its unix socket); forget its state. */
void admin_stop(void);

/* --- rendering, exposed for the unit tests ------------------------------- */

struct admin_reload_stats {
	uint64_t ok, failed;            /* reloads since start */
	int last_ok;                    /* 1 before any reload (start counts) */
	unsigned last_generation;
	time_t last_time;               /* start or last reload */
	time_t last_success_time;
	char **errors;                  /* of the last reload: "file:line:col: msg" */
	size_t n_errors;
};

/* One worker's figures. */
struct admin_worker {
	unsigned conns;                 /* client connections open */
	uint64_t accepted;              /* client connections accepted */
};

struct admin_view {
	const struct generation *gen;   /* current */
	unsigned n_conns;               /* client connections open */
	const struct admin_worker *workers;
	unsigned n_workers;
	time_t now, started;
	long pid;
	const struct admin_reload_stats *reloads;
};

void admin_render_status(struct evbuffer *out, const struct admin_view *v);
void admin_render_metrics(struct evbuffer *out, const struct admin_view *v);
/* The current and pending public certificates of name (every certificate
 * when name is NULL) as PEM with "# ..." comment lines. -1 when no
 * certificate of that name is loaded (nothing written). */
int admin_render_pem(struct evbuffer *out, const struct generation *g, const char *name,
    time_t now) MUSTCHECK;
/* s as a JSON string literal ("null" for NULL); invalid UTF-8 becomes
 * U+FFFD so the document always parses. */
void admin_json_string(struct evbuffer *out, const char *s);
/* s escaped as a Prometheus label value (without the quotes). */
void admin_prom_label(struct evbuffer *out, const char *s);

#endif
