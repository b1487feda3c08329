/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * mtlsctl talking to the running daemon: one HTTP/1.1 request per
 * connection to the admin endpoint (admin.listen, a unix socket or a
 * loopback port; --admin overrides it), and the reload command.
 */
#ifndef MTLSD_CTL_ADMIN_H
#define MTLSD_CTL_ADMIN_H

#include <stddef.h>

#include "util.h"

struct ctl;
struct json;

struct ctl_reply {
	int status;             /* HTTP status */
	char *body;             /* NUL-terminated, malloc'ed */
	size_t len;
};

/* method path against the admin endpoint. 0 with the reply (any status),
 * or -1 with err saying why it could not be asked ("cannot connect to
 * unix:/run/mtlsd/admin.sock: No such file or directory (is mtlsd
 * running?)"). */
int ctl_admin_request(struct ctl *ctl, const char *method, const char *path,
    struct ctl_reply *r, char *err, size_t errlen) MUSTCHECK;
void ctl_reply_free(struct ctl_reply *r);
/* GET /status, parsed. NULL with err when the daemon cannot be asked or
 * its answer is not JSON. */
struct json *ctl_admin_status(struct ctl *ctl, char *err, size_t errlen) MUSTCHECK;

/* mtlsctl reload: POST /reload, wait for the reload to finish, print its
 * result. */
int ctl_admin_reload(struct ctl *ctl, int argc, char **argv);

#endif
