/*
 * tool_tls.c - `tlsproxy [-c FILE] tls SUBCOMMAND ...` (spec 7): the
 * verbs of Postfix's `postfix tls` (postfix-tls(1)) for tlsproxy routes.
 *
 *   new-server-key [-a rsa|ecdsa] [-b bits|curve] [-r ROUTE] [host...]
 *   new-server-cert [-a rsa|ecdsa] [-r ROUTE] [host...]
 *   deploy-server-cert [-r ROUTE] certfile keyfile
 *   output-server-csr [-k keyfile|rsa|ecdsa] [-b bits|curve] [-r ROUTE]
 *                     [host...]
 *   output-server-tlsa [-h host] [-p port] [-r ROUTE] [keyfile|rsa|ecdsa...]
 *   enable-server [-a rsa|ecdsa] [-b bits|curve] [-r ROUTE] [host...]
 *   enable-client [-r ROUTE]
 *   all-default-server [-r ROUTE], all-default-client [-r ROUTE]
 *
 * Relative file names, given or printed, are relative to the directory of
 * the configuration file, as in the INI file itself (and in Postfix), so a
 * name printed by new-server-key can be written into the INI unchanged.
 * Keys are created with O_CREAT|O_EXCL and mode 0600 (never chmod-ed
 * later), certificates 0644, named key-/cert-YYYYMMDD-HHMMSS.pem (UTC;
 * eckey-/eccert- for ECDSA); a stamp already taken moves on by a second.
 * tool_x509.c makes them, and the CSRs and TLSA records; the tool_tls*.c
 * files own the verbs, their arguments, the route's settings and the
 * messages (tool_tls_int.h says which file owns what).  This file
 * dispatches the subcommands and has their usage text and the message
 * helpers.
 * The INI file is changed only through tool_ini.c (values in place,
 * comments and order kept, temporary file + rename) and only after the
 * rewritten text loads and the route's TLS context builds from it the way
 * `tlsproxy -t` builds it.  A configuration with errors is not touched.
 *
 * Exit codes:
 *   0  success; all-default-*: every TLS setting of the route is unset
 *   1  failure or refusal, with a message on stderr:
 *        the configuration cannot be read or has errors;
 *        all-default-*: a TLS setting of the route is set (listed);
 *        deploy-server-cert, enable-server: the certificate file has no
 *          certificate or a chain that is not leaf first, the key file's
 *          mode is unsafe (group/world-writable or world-readable), it has
 *          no key, or the key does not match the certificate;
 *        the rewritten configuration would not load (its FILE:LINE
 *          problems are printed) or cannot be written;
 *        new-server-cert, output-server-csr, output-server-tlsa: the route
 *          has no key of the kind asked for, or a key file cannot be read;
 *        new-server-cert -a: the route's key is of the other algorithm;
 *        a new key or certificate file cannot be created or written
 *   2  usage: unknown subcommand or option, a missing option argument,
 *      wrong number of arguments, bad -a algorithm, bad -b RSA size
 *      (2048, 3072, 4096) or curve (secp256r1 = prime256v1, secp384r1,
 *      secp521r1), bad -p port, bad hostname, -r naming no route,
 *      -r omitted with no or several routes of the subcommand's mode,
 *      enable-* and all-default-* given a route of the other mode
 *
 * Runs on the main thread of a short-lived process; no event loop.
 * Called by main.c.  Messages go to stderr; results (the CSR, TLSA
 * records, what was created) to stdout.
 */
#include "tlsproxy/tool_tls.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tlsproxy/config.h"
#include "tlsproxy/tls_ctx.h"
#include "tlsproxy/tool_tls_int.h"

static const char *usages[] = {
    "new-server-key [-a rsa|ecdsa] [-b bits|curve] [-r ROUTE] [hostname...]",
    "new-server-cert [-a rsa|ecdsa] [-r ROUTE] [hostname...]",
    "deploy-server-cert [-r ROUTE] certfile keyfile",
    "output-server-csr [-k keyfile|rsa|ecdsa] [-b bits|curve] [-r ROUTE] "
    "[hostname...]",
    "output-server-tlsa [-h hostname] [-p port] [-r ROUTE] "
    "[keyfile|rsa|ecdsa...]",
    "enable-server [-a rsa|ecdsa] [-b bits|curve] [-r ROUTE] [hostname...]",
    "enable-client [-r ROUTE]",
    "all-default-server [-r ROUTE]",
    "all-default-client [-r ROUTE]",
};

/* ------------------------------------------------------------ messages */

int
tp_tool_tls_say(const struct tp_tool_tls *t, int code, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "tlsproxy tls %s: ", t->cmd);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return code;
}

/* put_usage - the synopsis of CMD (of every subcommand if NULL) on F. */
static void
put_usage(FILE *f, const char *cmd)
{
	size_t n = strlen(cmd ? cmd : "");
	bool any = false;

	for (size_t i = 0; i < sizeof(usages) / sizeof(usages[0]); i++) {
		if (cmd != NULL &&
		    (strncmp(usages[i], cmd, n) != 0 || usages[i][n] != ' '))
			continue;
		fprintf(f, "%s tlsproxy [-c FILE] tls %s\n",
		    any ? "      " : "usage:", usages[i]);
		any = true;
	}
}

int
tp_tool_tls_usage(const char *cmd)
{
	put_usage(stderr, cmd);
	return TP_TOOL_TLS_EX_USAGE;
}

void
tp_tool_tls_put_arg(FILE *f, const char *s)
{
	bool plain = *s != '\0';

	for (const char *p = s; *p; p++)
		if (strchr(
			"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
			"0123456789_./:@%+=,-",
			*p) == NULL)
			plain = false;
	if (plain) {
		fputs(s, f);
		return;
	}
	fputc('\'', f);
	for (const char *p = s; *p; p++) {
		if (*p == '\'')
			fputs("'\\''", f);
		else
			fputc(*p, f);
	}
	fputc('\'', f);
}

/* ------------------------------------------------------------ dispatch */

/* dir_of - the directory of PATH, as config.c computes it. */
static char *
dir_of(const char *path)
{
	const char *slash = strrchr(path, '/');

	if (slash == NULL)
		return strdup(".");
	return strndup(path, slash == path ? 1 : (size_t)(slash - path));
}

int
tp_tool_tls(const char *path, int argc, char **argv)
{
	struct tp_tool_tls t = {.path = path};
	int rc;

	if (argc < 1) {
		fprintf(stderr, "tlsproxy tls: a subcommand is needed\n");
		return tp_tool_tls_usage(NULL);
	}
	t.cmd = argv[0];
	if (strcmp(t.cmd, "help") == 0 || strcmp(t.cmd, "-h") == 0) {
		put_usage(stdout, NULL);
		return TP_TOOL_TLS_EX_OK;
	}
	if ((t.dir = dir_of(path)) == NULL)
		return tp_tool_tls_say(
		    &t, TP_TOOL_TLS_EX_FAIL, "out of memory");
	tp_tls_init();
	if (strcmp(t.cmd, "new-server-key") == 0)
		rc = tp_tool_tls_new_server_key(&t, argc, argv);
	else if (strcmp(t.cmd, "new-server-cert") == 0)
		rc = tp_tool_tls_new_server_cert(&t, argc, argv);
	else if (strcmp(t.cmd, "deploy-server-cert") == 0)
		rc = tp_tool_tls_deploy_server_cert(&t, argc, argv);
	else if (strcmp(t.cmd, "output-server-csr") == 0)
		rc = tp_tool_tls_output_server_csr(&t, argc, argv);
	else if (strcmp(t.cmd, "output-server-tlsa") == 0)
		rc = tp_tool_tls_output_server_tlsa(&t, argc, argv);
	else if (strcmp(t.cmd, "enable-server") == 0)
		rc = tp_tool_tls_enable_server(&t, argc, argv);
	else if (strcmp(t.cmd, "enable-client") == 0)
		rc = tp_tool_tls_enable_client(&t, argc, argv);
	else if (strcmp(t.cmd, "all-default-server") == 0)
		rc =
		    tp_tool_tls_all_default(&t, argc, argv, TP_TOOL_TLS_SERVER);
	else if (strcmp(t.cmd, "all-default-client") == 0)
		rc =
		    tp_tool_tls_all_default(&t, argc, argv, TP_TOOL_TLS_CLIENT);
	else {
		fprintf(
		    stderr, "tlsproxy tls: unknown subcommand \"%s\"\n", t.cmd);
		rc = tp_tool_tls_usage(NULL);
	}
	tp_config_free(t.cfg);
	free(t.text);
	free(t.dir);
	return rc;
}
