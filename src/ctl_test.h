/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * mtlsctl test URL|MAPPING: one live mutual-TLS handshake and request to a
 * mapping's endpoint with its current (or pending) certificate, done here
 * with the daemon's TLS code and the files, and a verdict that says in
 * plain words what failed and who must fix it.
 */
#ifndef MTLSD_CTL_TEST_H
#define MTLSD_CTL_TEST_H

struct ctl;

int ctl_test_run(struct ctl *ctl, int argc, char **argv);

#endif
