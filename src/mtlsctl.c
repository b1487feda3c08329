/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * mtlsctl: the administrator's tool for mtlsd. Global options, then one
 * command from the table; each command parses its own options (and --help)
 * and returns an exit code: 0 done / good verdict, 1 failed / bad verdict,
 * 2 wrong usage.
 */
#include "autoconf.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <time.h>

#include "config.h"
#include "ctl_admin.h"
#include "ctl_certs.h"
#include "ctl_key.h"
#include "ctl_p12.h"
#include "ctl_test.h"
#include "ctl_util.h"
#include "log.h"
#include "x509.h"

static const struct command {
	const char *name;
	int (*fn)(struct ctl *, int, char **);
	const char *args, *what;
} commands[] = {
	{"status", ctl_certs_status, "[--json]", "the running mtlsd: reloads, mappings"},
	{"certs", ctl_certs_list, "[NAME] [--json]", "current and pending certificates"},
	{"reload", ctl_admin_reload, "", "reload mtlsd and print the result"},
	{"check-p12", ctl_p12_check, "FILE [--password-file F] [--ca-file F] [--json]",
	    "test a PKCS#12 file"},
	{"new-key", ctl_key_new, "NAME --cn CN [--san DNS:x,IP:y,URI:z] [--key TYPE]",
	    "a key and CSR in certs_dir/NAME"},
	{"export", ctl_p12_export, "NAME --p12 OUT [--password-file F] [--force]",
	    "certificate and key as PKCS#12"},
	{"rm", ctl_key_rm, "NAME [--force]", "move certs_dir/NAME to the trash"},
	{"test", ctl_test_run, "URL|MAPPING [--pending] [--json]",
	    "one live mTLS request, with a verdict"},
};

static void
usage(FILE *fp)
{
	fprintf(fp, "usage: mtlsctl [-c FILE] [--admin ADDRESS] COMMAND [ARGS]\n"
	    "  -c FILE          configuration (default %s)\n"
	    "  --admin ADDRESS  mtlsd's admin endpoint (default: admin.listen), e.g.\n"
	    "                   unix:/run/mtlsd/admin.sock or 127.0.0.1:9901\n"
	    "commands (mtlsctl COMMAND --help for each):\n", CONFIG_DEFAULT_PATH);
	for (size_t i = 0; i < ARRAY_LEN(commands); i++)
		fprintf(fp, "  %-10s %-50s\n  %-10s   %s\n", commands[i].name, commands[i].args,
		    "", commands[i].what);
	fprintf(fp, "exit status: 0 ok, 1 failure or bad verdict, 2 wrong usage\n");
}

int
main(int argc, char **argv)
{
	static const struct option lo[] = {{"admin", required_argument, NULL, 'a'},
	    {"help", no_argument, NULL, 'h'}, {"version", no_argument, NULL, 'V'},
	    {NULL, 0, NULL, 0}};
	struct ctl ctl = {.config_path = CONFIG_DEFAULT_PATH, .now = time(NULL)};
	int ch, rc;

	log_init("mtlsctl", LOG_LVL_WARN);
#ifndef __SANITIZE_ADDRESS__
	/* private keys pass through this process too: no core dumps (as mtlsd;
	 * LeakSanitizer needs the process dumpable) */
	(void)prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
#endif
	ctl.admin = getenv("MTLSCTL_ADMIN");
	/* "+": stop at the command; its options are its own */
	while ((ch = getopt_long(argc, argv, "+c:h", lo, NULL)) != -1) {
		switch (ch) {
		case 'c': ctl.config_path = optarg; break;
		case 'a': ctl.admin = optarg; break;
		case 'V': printf("mtlsctl %s\n", PACKAGE_VERSION); return 0;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return CTL_USAGE;
		}
	}
	if (optind >= argc) {
		usage(stderr);
		return CTL_USAGE;
	}
	for (size_t i = 0; i < ARRAY_LEN(commands); i++) {
		if (strcmp(argv[optind], commands[i].name) != 0)
			continue;
		rc = commands[i].fn(&ctl, argc - optind, argv + optind);
		ctl_free(&ctl);
		x509_thread_cleanup();
		return rc;
	}
	fprintf(stderr, "mtlsctl: unknown command '%s'\n", argv[optind]);
	usage(stderr);
	return CTL_USAGE;
}
