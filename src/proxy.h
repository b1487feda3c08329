/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * A downstream (local client) connection's life: read a request, route it,
 * take a pooled or new upstream, stream both ways with backpressure, answer
 * failures with a status, X-Mtlsd-Error and a one-line reason, keep-alive.
 */
#ifndef MTLSD_PROXY_H
#define MTLSD_PROXY_H

struct worker;

/* listener_accept_fn: take over an accepted client socket. */
void proxy_accept(struct worker *w, int fd, const char *peer, const char *mapping);
/* Shutdown: close idle client connections now; the busy ones close after
 * their current response. */
void proxy_drain(struct worker *w);
/* Client connections open, all workers together. */
unsigned proxy_conns_total(void);

#endif
