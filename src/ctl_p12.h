/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * mtlsctl check-p12 (the "PKCS#12 tester": will mtlsd, OpenSSL 3 and Java
 * accept this file, and is what it holds usable as a client certificate?)
 * and mtlsctl export (the current certificate and key of a name as a
 * password-protected PKCS#12 with modern encryption).
 */
#ifndef MTLSD_CTL_P12_H
#define MTLSD_CTL_P12_H

struct ctl;

int ctl_p12_check(struct ctl *ctl, int argc, char **argv);
int ctl_p12_export(struct ctl *ctl, int argc, char **argv);

#endif
