/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * mtlsctl status and certs: the running daemon's view (GET /status) or,
 * for certs when mtlsd is not running, the certificate directories read
 * here with the daemon's own loader (certstore).
 */
#ifndef MTLSD_CTL_CERTS_H
#define MTLSD_CTL_CERTS_H

struct ctl;

int ctl_certs_status(struct ctl *ctl, int argc, char **argv);
int ctl_certs_list(struct ctl *ctl, int argc, char **argv);

#endif
