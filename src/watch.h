/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * inotify on the configuration's directories: the main file's directory,
 * mappings_dir, certs_dir and every certificate directory in use (and the
 * directories of trust files). Directories, not files, are watched, so
 * editors that rename a temp file and Kubernetes' "..data" symlink swaps are
 * seen; a directory that does not exist yet is noticed through its parent.
 * Changes are debounced (100 ms, at most 1 s late under a steady stream of
 * events) into one reload request.
 */
#ifndef MTLSD_WATCH_H
#define MTLSD_WATCH_H

struct event_base;
struct config;

/* 0, or -1 (inotify unavailable: reloads still come from SIGHUP). */
int watch_init(struct event_base *base, void (*reload_request)(void));
/* Watch what cfg (loaded from config_path) depends on; replaces the old set. */
void watch_update(const struct config *cfg, const char *config_path);
void watch_free(void);

#endif
