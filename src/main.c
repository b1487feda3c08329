/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * mtlsd: options and lifecycle. Start builds generation 1 and opens the
 * listeners; SIGHUP (coalesced) builds the next generation off to the side
 * and swaps it in whole or not at all; SIGTERM/SIGINT stop accepting, let
 * in-flight requests finish (bounded) and exit.
 */
#include "autoconf.h"

#include <event2/dns.h>
#include <event2/event.h>
#include <signal.h>
#include <sys/prctl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#ifdef HAVE_SYSTEMD
#include <systemd/sd-daemon.h>
#endif

#include "admin.h"
#include "config.h"
#include "listener.h"
#include "log.h"
#include "loop.h"
#include "proxy.h"
#include "runtime.h"
#include "tls.h"
#include "validate.h"
#include "vault.h"
#include "watch.h"
#include "workers.h"
#include "x509.h"

#define DRAIN_EXTRA_MS 2000

static struct {
	const char *config_path;
	int test_only;
	int verbose;
	struct worker w;
	struct event *ev_hup, *ev_term, *ev_int, *ev_usr1, *ev_reload, *ev_deadline;
	struct event *ev_rotate;
	int stopping;
	int starting;                   /* reloads wait until the start is done */
	int reload_pending;
} app;

#define VAULT_START_WAIT_MS 10000

static void
notify(const char *state)
{
#ifdef HAVE_SYSTEMD
	(void)sd_notify(0, state);
#else
	(void)state;
#endif
}

static void
usage(void)
{
	fprintf(stderr, "usage: mtlsd [-c FILE] [-t] [-f] [-v]\n"
	    "  -c FILE  configuration (default %s)\n"
	    "  -t       check the configuration, mappings and certificates, then exit\n"
	    "  -f       stay in the foreground (the default; for symmetry with other daemons)\n"
	    "  -v       verbose (debug) logging\n", CONFIG_DEFAULT_PATH);
	exit(2);
}

static void
print_errors(const struct config_errors *errs)
{
	for (size_t i = 0; i < errs->n; i++)
		fprintf(stderr, "%s\n", errs->msgs[i]);
}

static int
check_only(void)
{
	struct config_errors errs = { 0 };
	struct generation *g = generation_build(app.config_path, 1, time(NULL), 1, NULL, &errs);

	print_errors(&errs);
	config_errors_clear(&errs);
	if (g == NULL) {
		fprintf(stderr, "mtlsd: configuration %s test failed\n", app.config_path);
		return 1;
	}
	for (size_t i = 0; i < g->isolated.n; i++)
		fprintf(stderr, "warning: %s\n", g->isolated.msgs[i]);
	fprintf(stderr, "mtlsd: configuration %s test is successful (%zu mappings, "
	    "%zu certificates)\n", app.config_path, g->n_dests, g->n_sets);
	generation_unref(&g);
	return 0;
}

static void
apply_log_settings(const struct config *cfg)
{
	log_set_level(app.verbose ? LOG_LVL_DEBUG : (enum log_level)cfg->log.level);
	log_set_access(cfg->log.access_log);
	log_set_json(cfg->log.json);
}

/* In each worker's thread: the listeners and the generation of a start or
 * a reload, in one step, so that no connection meets one without the other. */
static void
worker_apply(struct worker *w, void *arg)
{
	listeners_sync(w);
	generation_switch(w, arg);
}

/* Certificates change with time too: rebuild when a choice can change (a
 * not-before, an activation window, an expiry), and at least daily so that
 * expiry warnings repeat. */
static void
arm_rotation_timer(const struct generation *g)
{
	time_t now = time(NULL), at = g->next_change, delay = 86400;
	struct timeval tv;

	if (at != 0 && at - now + 1 < delay)
		delay = at > now ? at - now + 1 : 1;
	tv.tv_sec = delay;
	tv.tv_usec = 0;
	evtimer_add(app.ev_rotate, &tv);
	if (at != 0)
		log_debug("next certificate change check in %llds", (long long)delay);
}

/* Build, open listeners, swap; any failure leaves the running state alone. */
static void
reload(evutil_socket_t fd, short what, void *arg)
{
	struct config_errors errs = { 0 };
	struct generation *old = app.w.gen, *g;
	const char *what_changed;
	char err[512];

	(void)fd;
	(void)what;
	(void)arg;
	notify("RELOADING=1");
	log_info("reload: reading %s", app.config_path);
	g = generation_build(app.config_path, old->id + 1, time(NULL), 1, old, &errs);
	for (size_t i = 0; i < errs.n; i++)
		log_error("%s", errs.msgs[i]);
	if (g == NULL) {
		log_error("reload failed: %zu error(s); still serving generation %u",
		    errs.n, old->id);
		admin_note_reload(0, old->id, &errs);
		goto out;
	}
	if (listeners_prepare(g->cfg, err, sizeof(err)) < 0) {
		log_error("reload failed: %s; still serving generation %u", err, old->id);
		config_errors_add(&errs, NULL, "%s", err);
		admin_note_reload(0, old->id, &errs);
		generation_unref(&g);
		goto out;
	}
	if ((what_changed = config_restart_needed(old->cfg, g->cfg)) != NULL)
		log_warnx("reload: %s changed in %s; it takes effect at the next restart "
		    "(running with %u workers)", what_changed, app.config_path, workers_count());
	listeners_commit(g->cfg);
	watch_update(g->cfg, app.config_path);
	generation_adopt(g, old);
	workers_call_all(worker_apply, g);
	listeners_finish();
	admin_update(&app.w, g->cfg);
	apply_log_settings(g->cfg);
	generation_unref(&g);           /* the workers hold it now */
	g = app.w.gen;
	for (size_t i = 0; i < g->isolated.n; i++)
		log_error("%s", g->isolated.msgs[i]);
	if (g->isolated.n > 0)
		log_info("reload: generation %u applied (%zu mappings) with %zu problem(s) "
		    "kept out, see above", g->id, g->n_dests, g->isolated.n);
	else
		log_info("reload: generation %u applied (%zu mappings)", g->id, g->n_dests);
	admin_note_reload(1, g->id, &g->isolated);
	generation_warn_expiry(g, time(NULL));
	arm_rotation_timer(g);
	validate_start(&app.w, g);
	vault_apply(g);
out:
	config_errors_clear(&errs);
	notify("READY=1");
}

/* SIGHUP and file changes feed this one coalescing request. */
static void
reload_request(void)
{
	if (app.starting)
		app.reload_pending = 1;
	else if (!app.stopping)
		event_active(app.ev_reload, EV_TIMEOUT, 0);
}

static void
on_wake(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
}

/* A certificate only Vault can give, and nothing cached: ask Vault before
 * listening (at most 10 s), so that the first requests find it. */
static void
vault_first_round(void)
{
	uint64_t deadline = now_ms() + VAULT_START_WAIT_MS;
	struct event *wake = evtimer_new(app.w.base, on_wake, NULL);
	struct timeval tv = { VAULT_START_WAIT_MS / 1000, 0 };
	struct config_errors errs = { 0 };
	struct generation *g;

	if (!vault_first_round_pending()) {
		event_free(wake);
		return;
	}
	log_info("waiting up to %ds for Vault to issue certificates that are not cached",
	    VAULT_START_WAIT_MS / 1000);
	evtimer_add(wake, &tv);
	while (vault_first_round_pending() && now_ms() < deadline)
		event_base_loop(app.w.base, EVLOOP_ONCE);
	event_free(wake);
	if (!app.reload_pending)
		return;
	/* what Vault delivered is in the cache now: load it */
	app.reload_pending = 0;
	if ((g = generation_build(app.config_path, 1, time(NULL), 1, NULL, &errs)) != NULL) {
		generation_unref(&app.w.gen);
		app.w.gen = g;
		vault_apply(g);
	}
	print_errors(&errs);
	config_errors_clear(&errs);
}

/* An operator's reload (SIGHUP, POST /reload) also re-reads what Vault
 * holds (KV secrets, the token file). */
static void
operator_reload(void)
{
	vault_refresh();
	reload_request();
}

static void
on_hup(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
	operator_reload();
}

static void
on_rotate(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
	log_debug("certificate change check");
	reload_request();
}

static void
on_deadline(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
	log_warnx("shutdown: %u connection(s) still busy after the drain period; "
	    "closing them", proxy_conns_total());
	event_base_loopexit(app.w.base, NULL);
}

static void
on_term(evutil_socket_t sig, short what, void *arg)
{
	uint64_t ms = app.w.gen->cfg->timeouts.upstream_response_ms + DRAIN_EXTRA_MS;
	struct timeval tv = { (time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000 };

	(void)what;
	(void)arg;
	if (app.stopping) {
		log_warnx("second signal %d: exiting now", (int)sig);
		event_base_loopexit(app.w.base, NULL);
		return;
	}
	app.stopping = 1;
	notify("STOPPING=1");
	watch_free();
	evtimer_del(app.ev_rotate);
	vault_shutdown();
	log_info("shutdown (signal %d): no new connections; draining %u", (int)sig,
	    proxy_conns_total());
	listeners_close_all();
	evtimer_add(app.ev_deadline, &tv);
	workers_drain();
}

static void
on_usr1(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
	log_info("SIGUSR1: logs go to stderr/stdout (journald); nothing to reopen");
}

static void
setup_events(void)
{
	struct event_base *b = app.w.base;

	signal(SIGPIPE, SIG_IGN);
	app.ev_hup = evsignal_new(b, SIGHUP, on_hup, NULL);
	app.ev_term = evsignal_new(b, SIGTERM, on_term, NULL);
	app.ev_int = evsignal_new(b, SIGINT, on_term, NULL);
	app.ev_usr1 = evsignal_new(b, SIGUSR1, on_usr1, NULL);
	app.ev_reload = event_new(b, -1, 0, reload, NULL);
	app.ev_deadline = evtimer_new(b, on_deadline, NULL);
	app.ev_rotate = evtimer_new(b, on_rotate, NULL);
	evsignal_add(app.ev_hup, NULL);
	evsignal_add(app.ev_term, NULL);
	evsignal_add(app.ev_int, NULL);
	evsignal_add(app.ev_usr1, NULL);
}

static void
teardown(void)
{
	event_free(app.ev_hup);
	event_free(app.ev_term);
	event_free(app.ev_int);
	event_free(app.ev_usr1);
	event_free(app.ev_reload);
	event_free(app.ev_deadline);
	event_free(app.ev_rotate);
	admin_stop();
	listeners_close_all();
	workers_stop();
	watch_free();
	validate_free();
	vault_shutdown();
	generation_leave(&app.w);
	evdns_base_free(app.w.dns, 0);
	event_base_free(app.w.base);
	x509_thread_cleanup();
	tls_global_cleanup();
}

static int
run(void)
{
	struct config_errors errs = { 0 };
	char err[512];

	app.w.gen = generation_build(app.config_path, 1, time(NULL), 1, NULL, &errs);
	print_errors(&errs);
	config_errors_clear(&errs);
	if (app.w.gen == NULL)
		fatalx("configuration %s has errors; not starting", app.config_path);
	apply_log_settings(app.w.gen->cfg);
	/* the other workers' loops exist from here, their threads start once
	 * everything is in place */
	workers_init(&app.w, app.w.gen->cfg->workers);
	setup_events();
	app.starting = 1;
	vault_init(app.w.base, reload_request);
	vault_apply(app.w.gen);
	vault_first_round();
	app.starting = 0;
	if (app.stopping) {             /* SIGTERM while waiting for Vault */
		log_info("exiting");
		teardown();
		return 0;
	}
	listeners_init(proxy_accept);
	validate_init(reload_request);
	if (listeners_prepare(app.w.gen->cfg, err, sizeof(err)) < 0)
		fatalx("%s", err);
	listeners_commit(app.w.gen->cfg);
	workers_call_all(worker_apply, app.w.gen);
	listeners_finish();
	workers_start();
	if (admin_start(&app.w, app.w.gen->cfg, operator_reload, err, sizeof(err)) < 0)
		fatalx("%s", err);
	if (watch_init(app.w.base, reload_request) == 0)
		watch_update(app.w.gen->cfg, app.config_path);
	for (size_t i = 0; i < app.w.gen->isolated.n; i++)
		log_warnx("%s", app.w.gen->isolated.msgs[i]);
	log_info("ready: generation %u, %zu mappings, %u worker%s (upstream TLS offers %s "
	    "first)", app.w.gen->id, app.w.gen->n_dests, workers_count(),
	    workers_count() == 1 ? "" : "s", tls_cipher_preference());
	generation_warn_expiry(app.w.gen, time(NULL));
	arm_rotation_timer(app.w.gen);
	notify("READY=1");
	loop_run(&app.w.loop, app.w.base, 0);
	log_info("exiting");
	teardown();
	return 0;
}

int
main(int argc, char **argv)
{
	int ch;

	log_init("mtlsd", LOG_LVL_INFO);
	app.config_path = CONFIG_DEFAULT_PATH;
	while ((ch = getopt(argc, argv, "c:tfvh")) != -1) {
		switch (ch) {
		case 'c': app.config_path = optarg; break;
		case 't': app.test_only = 1; break;
		case 'f': break;
		case 'v': app.verbose = 1; break;
		default: usage();
		}
	}
	if (optind != argc)
		usage();
	if (app.verbose)
		log_set_level(LOG_LVL_DEBUG);
#ifndef __SANITIZE_ADDRESS__
	/* private keys live in this process: no core dumps, no ptrace by the
	 * same user (LeakSanitizer needs both, hence not in ASan builds) */
	(void)prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
#endif
	malloc_tune();
	if (tls_global_init() < 0)
		fatalx("cannot initialise wolfSSL");
	if (app.test_only) {
		int rc = check_only();
		x509_thread_cleanup();
		tls_global_cleanup();
		return rc;
	}
	return run();
}
