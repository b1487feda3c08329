/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Process figures for /metrics that show leaks from the outside: heap bytes
 * in use (glibc's allocator statistics) and open file descriptors. Tests
 * compare them before and after faults; operators can alert on growth.
 */
#ifndef MTLSD_PROCSTATS_H
#define MTLSD_PROCSTATS_H

#include <stdint.h>

struct evbuffer;

/* Heap bytes allocated and not yet freed (mallinfo2: uordblks + hblkhd),
 * or -1 where the C library cannot tell (not glibc, or glibc < 2.33). */
int64_t procstats_heap_in_use(void);

/* Open file descriptors of this process (entries of /proc/self/fd, the
 * directory's own descriptor not counted), or -1 when it cannot be read. */
int64_t procstats_open_fds(void);

/* Append mtlsd_heap_in_use_bytes and mtlsd_open_fds (HELP, TYPE, sample)
 * to a Prometheus text body; a figure that is unknown is left out. */
void procstats_render_metrics(struct evbuffer *out);

#endif
