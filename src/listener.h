/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Local listening sockets: the forward-proxy port(s) and one dedicated port
 * per mapping that asks for one. They live across reloads: a reload keeps
 * the sockets whose address is unchanged, opens the new ones before the new
 * generation is published (so a bind failure aborts the reload), and closes
 * the removed ones after it (their connections finish).
 */
#ifndef MTLSD_LISTENER_H
#define MTLSD_LISTENER_H

#include <sys/types.h>

struct worker;
struct config;

/* Called for each accepted connection: fd is non-blocking and owned by the
 * callee; mapping is the dedicated mapping's name or NULL (proxy port). */
typedef void (*listener_accept_fn)(struct worker *w, int fd, const char *peer,
    const char *mapping);

void listeners_init(listener_accept_fn fn);
/* Open the listeners cfg needs that are not open yet (not accepting yet),
 * one socket per worker. 0, or -1 with err set and nothing changed. */
int listeners_prepare(const struct config *cfg, char *err, size_t errlen);
/*
 * Switching to cfg's listeners, in three steps: listeners_commit takes
 * cfg's settings (main thread); listeners_sync, in each worker's thread
 * (workers_call), starts accepting on the new ones, takes the settings and
 * stops accepting on those cfg no longer has; listeners_finish (main
 * thread, once every worker synced) closes those and logs the new ones.
 */
void listeners_commit(const struct config *cfg);
void listeners_sync(struct worker *w);
void listeners_finish(void);
/* Undo listeners_prepare (reload failed later). */
void listeners_abort(void);
/* Stop accepting everywhere, in every worker (shutdown). */
void listeners_close_all(void);

struct listen_spec;
struct sockaddr;
/* A bound, listening, non-blocking socket for spec (unix: stale socket
 * removed, mode and group applied); -1 with err set. Also for admin. */
int listener_open_socket(const struct listen_spec *spec, char *err, size_t errlen);
/* Apply spec's mode and group to its unix socket file; -1 with err set. */
int listener_unix_perms(const struct listen_spec *spec, char *err, size_t errlen);
/* "127.0.0.1:3128", "[::1]:3128" or "unix". */
void listener_format_addr(const struct sockaddr *sa, char *buf, size_t len);

#endif
