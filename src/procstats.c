/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Process statistics: heap in use and open descriptors (see procstats.h).
 * Both are cheap enough to read on every scrape: mallinfo2() walks the arena
 * list under its locks (one arena per worker thread), and /proc/self/fd is a
 * directory of a few dozen entries unless thousands of clients are connected.
 */
#include "autoconf.h"

#include <dirent.h>
#include <event2/buffer.h>
#include <inttypes.h>
#include <stdio.h> /* defines __GLIBC__ (via features.h) */

/* mallinfo2 (size_t fields) appeared in glibc 2.33; the older mallinfo's
 * int fields wrap at 2 GiB, so it is not used as a fallback. */
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 33))
#define HAVE_MALLINFO2_GLIBC 1
#include <malloc.h>
#endif

#include "procstats.h"

int64_t
procstats_heap_in_use(void)
{
#ifdef HAVE_MALLINFO2_GLIBC
	struct mallinfo2 mi = mallinfo2();

	/* uordblks: bytes in chunks handed out from the arenas; hblkhd: bytes
	 * in chunks large enough to have their own mmap() */
	return (int64_t)(mi.uordblks + mi.hblkhd);
#else
	return -1;
#endif
}

int64_t
procstats_open_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	int64_t n = 0;

	if (d == NULL)
		return -1;
	while ((e = readdir(d)) != NULL)
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n - 1; /* the descriptor opendir() itself holds */
}

void
procstats_render_metrics(struct evbuffer *out)
{
	int64_t heap = procstats_heap_in_use(), fds = procstats_open_fds();

	if (heap >= 0)
		evbuffer_add_printf(out,
		    "# HELP mtlsd_heap_in_use_bytes Heap bytes allocated and not freed "
		    "(glibc mallinfo2: uordblks + hblkhd).\n"
		    "# TYPE mtlsd_heap_in_use_bytes gauge\n"
		    "mtlsd_heap_in_use_bytes %" PRId64 "\n",
		    heap);
	if (fds >= 0)
		evbuffer_add_printf(out,
		    "# HELP mtlsd_open_fds Open file descriptors of the process.\n"
		    "# TYPE mtlsd_open_fds gauge\n"
		    "mtlsd_open_fds %" PRId64 "\n",
		    fds);
}
