/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * mtlsctl new-key (a private key and a certificate request in
 * certs_dir/NAME, for a CA to sign) and mtlsctl rm (certs_dir/NAME moved
 * to certs_dir/.trash, refused while an enabled mapping uses it).
 */
#ifndef MTLSD_CTL_KEY_H
#define MTLSD_CTL_KEY_H

struct ctl;

int ctl_key_new(struct ctl *ctl, int argc, char **argv);
int ctl_key_rm(struct ctl *ctl, int argc, char **argv);

#endif
