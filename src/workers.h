/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Event-loop threads (workers: N). Worker 0 is the main thread, which also
 * runs the control plane (reloads, inotify, Vault, the admin endpoint);
 * workers 1..N-1 are threads with their own loop, listening sockets, client
 * connections and upstream pools, sharing the generations. The main thread
 * reaches a worker only through workers_call, which runs a function in the
 * worker's thread and waits for it: what the function reads of the main
 * thread's state (listeners, the new generation) is stable meanwhile, and
 * nothing a worker owns is ever touched from another thread.
 */
#ifndef MTLSD_WORKERS_H
#define MTLSD_WORKERS_H

struct worker;
typedef void (*worker_fn)(struct worker *w, void *arg);

/* Set up n workers, the main thread's (main_w, its base and resolver made)
 * as worker 0; the others get their loop and resolver, not started yet. */
void workers_init(struct worker *main_w, unsigned n);
unsigned workers_count(void);
struct worker *workers_get(unsigned i);
/* Start the threads (each worker must have its generation by then). */
void workers_start(void);
/* Run fn(w, arg) in w's thread and wait for it (directly when w is the
 * main thread or its thread is not running). Main thread only. */
void workers_call(struct worker *w, worker_fn fn, void *arg);
/* The same for every worker, the main thread last. */
void workers_call_all(worker_fn fn, void *arg);
/* A draining worker has no connection left: once none has, the main loop
 * ends (a poll on the main thread catches the last of the others). */
void workers_drained(struct worker *w);
/* Drain every worker: the main loop exits once all are idle. */
void workers_drain(void);
/* Stop the threads and free their loops (after the main loop ended). */
void workers_stop(void);

#endif
