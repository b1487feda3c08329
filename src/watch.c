/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "autoconf.h"

#include <errno.h>
#include <event2/event.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "log.h"
#include "util.h"
#include "watch.h"

#define DEBOUNCE_MS     100
#define MAX_DELAY_MS    1000
#define WATCH_MASK (IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_CREATE | \
	IN_DELETE | IN_ATTRIB | IN_DELETE_SELF | IN_MOVE_SELF)

/* What a watched directory is, to tell interesting names from noise. */
enum watch_role {
	ROLE_CONFIG_DIR = 1,    /* only the main file's name (and ..data swaps) */
	ROLE_MAPPINGS = 2,      /* *.yaml, *.yml */
	ROLE_ANY = 4,           /* certificate and trust directories: any file */
	ROLE_PARENT = 8,        /* parent of a missing directory: creations */
};

struct watch_dir {
	int wd;
	unsigned roles;
	char *path;
	char *config_name;      /* ROLE_CONFIG_DIR: the main file's name */
};

static struct {
	int fd;
	struct event *ev, *timer;
	void (*reload_request)(void);
	struct watch_dir *dirs;
	size_t n_dirs;
	uint64_t first_event_ms;        /* of the pending batch, 0 = none */
} W = { .fd = -1 };

static void
watch_clear(void)
{
	for (size_t i = 0; i < W.n_dirs; i++) {
		(void)inotify_rm_watch(W.fd, W.dirs[i].wd);
		free(W.dirs[i].path);
		free(W.dirs[i].config_name);
	}
	free(W.dirs);
	W.dirs = NULL;
	W.n_dirs = 0;
}

static struct watch_dir *
watch_find(int wd)
{
	for (size_t i = 0; i < W.n_dirs; i++)
		if (W.dirs[i].wd == wd)
			return &W.dirs[i];
	return NULL;
}

/* Add dir with role; a missing dir is waited for through its parent. */
static void
watch_add(const char *dir, unsigned role, const char *config_name)
{
	struct watch_dir *d;
	char parent[PATH_MAX];
	int wd = inotify_add_watch(W.fd, dir, WATCH_MASK | IN_ONLYDIR);

	if (wd < 0) {
		if (errno == ENOENT && role != ROLE_PARENT) {
			snprintf(parent, sizeof(parent), "%s", dir);
			watch_add(dirname(parent), ROLE_PARENT, NULL);
		}
		return;
	}
	if ((d = watch_find(wd)) == NULL) {
		W.dirs = xrealloc(W.dirs, (W.n_dirs + 1) * sizeof(*W.dirs));
		d = &W.dirs[W.n_dirs++];
		memset(d, 0, sizeof(*d));
		d->wd = wd;
		d->path = xstrdup(dir);
	}
	d->roles |= role;
	if (config_name != NULL && d->config_name == NULL)
		d->config_name = xstrdup(config_name);
}

static void
watch_add_file_dir(const char *file, unsigned role)
{
	char buf[PATH_MAX];

	snprintf(buf, sizeof(buf), "%s", file);
	watch_add(dirname(buf), role, NULL);
}

void
watch_update(const struct config *cfg, const char *config_path)
{
	char buf[PATH_MAX], name[PATH_MAX];

	if (W.fd < 0)
		return;
	watch_clear();
	snprintf(buf, sizeof(buf), "%s", config_path);
	snprintf(name, sizeof(name), "%s", basename(buf));
	watch_add(cfg->dir, ROLE_CONFIG_DIR, name);
	watch_add(cfg->mappings_dir, ROLE_MAPPINGS, NULL);
	watch_add(cfg->certs_dir, ROLE_ANY, NULL);
	for (size_t i = 0; i < cfg->n_mappings; i++) {
		const struct mapping *m = &cfg->mappings[i];
		snprintf(buf, sizeof(buf), "%s/%s", cfg->certs_dir, m->certificate);
		watch_add(buf, ROLE_ANY, NULL);
		if (m->trust_ca_file != NULL)
			watch_add_file_dir(m->trust_ca_file, ROLE_ANY);
	}
	/* Vault Agent's token sink and rotated AppRole credentials */
	if (cfg->vault.token_file != NULL)
		watch_add_file_dir(cfg->vault.token_file, ROLE_ANY);
	if (cfg->vault.secret_id_file != NULL)
		watch_add_file_dir(cfg->vault.secret_id_file, ROLE_ANY);
	log_debug("watching %zu directories for changes", W.n_dirs);
}

static int
has_suffix(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);

	return n >= m && strcmp(s + n - m, suffix) == 0;
}

/* Is this event about something the configuration depends on? */
static int
event_relevant(const struct watch_dir *d, const struct inotify_event *ev)
{
	const char *name = ev->len > 0 ? ev->name : "";

	if (ev->mask & (IN_DELETE_SELF | IN_MOVE_SELF | IN_IGNORED))
		return 1;
	if (strncmp(name, "..", 2) == 0)
		return 1;       /* Kubernetes' atomic ..data swap */
	if ((d->roles & ROLE_PARENT) && (ev->mask & (IN_CREATE | IN_MOVED_TO)))
		return 1;
	if ((d->roles & ROLE_CONFIG_DIR) && d->config_name && strcmp(name, d->config_name) == 0)
		return 1;
	if ((d->roles & ROLE_MAPPINGS) && (has_suffix(name, ".yaml") || has_suffix(name, ".yml")))
		return 1;
	return (d->roles & ROLE_ANY) && name[0] != '.' && name[0] != '\0';
}

static void
watch_timer(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
	W.first_event_ms = 0;
	W.reload_request();
}

static void
watch_schedule(void)
{
	uint64_t now = now_ms(), delay = DEBOUNCE_MS;
	struct timeval tv;

	if (W.first_event_ms == 0)
		W.first_event_ms = now;
	else if (now + DEBOUNCE_MS > W.first_event_ms + MAX_DELAY_MS)
		delay = W.first_event_ms + MAX_DELAY_MS > now ?
		    W.first_event_ms + MAX_DELAY_MS - now : 0;
	tv.tv_sec = 0;
	tv.tv_usec = (suseconds_t)delay * 1000;
	evtimer_add(W.timer, &tv);
}

static void
watch_read(evutil_socket_t fd, short what, void *arg)
{
	char buf[16384] __attribute__((aligned(__alignof__(struct inotify_event))));
	ssize_t n;

	(void)what;
	(void)arg;
	while ((n = read(fd, buf, sizeof(buf))) > 0) {
		for (char *p = buf; p < buf + n;) {
			const struct inotify_event *ev = (const struct inotify_event *)(void *)p;
			const struct watch_dir *d = watch_find(ev->wd);
			if (d != NULL && event_relevant(d, ev)) {
				log_debug("change: %s/%s", d->path, ev->len ? ev->name : "");
				watch_schedule();
			}
			p += sizeof(*ev) + ev->len;
		}
	}
}

int
watch_init(struct event_base *base, void (*reload_request)(void))
{
	W.fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (W.fd < 0) {
		log_warn("inotify unavailable; changes apply on SIGHUP only");
		return -1;
	}
	W.reload_request = reload_request;
	W.ev = event_new(base, W.fd, EV_READ | EV_PERSIST, watch_read, NULL);
	W.timer = evtimer_new(base, watch_timer, NULL);
	event_add(W.ev, NULL);
	return 0;
}

void
watch_free(void)
{
	if (W.fd < 0)
		return;
	watch_clear();
	event_free(W.ev);
	event_free(W.timer);
	close(W.fd);
	W.fd = -1;
}
