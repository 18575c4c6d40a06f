/*
 * main.c - command line: tlsproxy [-c FILE] [-t] [-V], and the `tls`
 * key-management verbs.  Exit codes: 0 success, 1 configuration or start
 * failure, 2 usage.
 */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <uv.h>

#include "tlsproxy/common.h"
#include "tlsproxy/daemon.h"
#include "tlsproxy/log.h"

static void
usage(void)
{
	fprintf(stderr,
	    "usage: tlsproxy [-c FILE] [-t] [-V]\n"
	    "       tlsproxy [-c FILE] tls SUBCOMMAND ...\n"
	    "  -c FILE  configuration (default etc/tlsproxy.ini, then "
	    "/etc/tlsproxy/tlsproxy.ini)\n"
	    "  -t       check the configuration, certificates and keys; "
	    "exit\n"
	    "  -V       print versions; exit\n");
}

static const char *
default_config(void)
{
	if (access("etc/tlsproxy.ini", R_OK) == 0)
		return "etc/tlsproxy.ini";
	return "/etc/tlsproxy/tlsproxy.ini";
}

int
main(int argc, char **argv)
{
	const char *path = NULL;
	int ch, check = 0;

	tp_log_init("tlsproxy");
	while ((ch = getopt(argc, argv, "+c:tVh")) != -1) {
		switch (ch) {
		case 'c':
			path = optarg;
			break;
		case 't':
			check = 1;
			break;
		case 'V':
			printf("tlsproxy %s\n%s\nlibuv %s\n", TP_VERSION,
			    OpenSSL_version(OPENSSL_VERSION),
			    uv_version_string());
			return 0;
		case 'h':
			usage();
			return 0;
		default:
			usage();
			return 2;
		}
	}
	if (path == NULL)
		path = default_config();
	if (optind < argc) {
		if (strcmp(argv[optind], "tls") == 0) {
			fprintf(stderr, "tlsproxy tls: not implemented yet\n");
			return 2;
		}
		usage();
		return 2;
	}
	if (check)
		return tp_daemon_check(path);
	return tp_daemon_run(path);
}
