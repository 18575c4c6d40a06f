/*
 * tool_tls_int.h - what the files of `tlsproxy tls` (tool_tls.h) share
 * among themselves; nothing else includes it.  The tool state of one run,
 * its exit codes, and the helpers one file offers the others:
 *
 *   tool_tls.c          dispatch, usage text, messages (say, shell words)
 *   tool_tls_args.c     options, the -a/-b key spec, hostname operands
 *   tool_tls_route.c    the configuration, the route a verb applies to,
 *                       file names relative to it, the route's key pairs
 *   tool_tls_rewrite.c  checked rewrite of the route's section (through
 *                       tool_ini.c), deploying a pair, the reload hint
 *   tool_tls_cert.c     new-server-key, new-server-cert,
 *                       deploy-server-cert, output-server-csr
 *   tool_tls_tlsa.c     output-server-tlsa
 *   tool_tls_enable.c   enable-server, enable-client, all-default-*
 *
 * Functions returning "0 or an exit code" have said why on stderr when
 * they return an exit code.  OpenSSL and the config only; no libuv.
 */
#ifndef TLSPROXY_TOOL_TLS_INT_H
#define TLSPROXY_TOOL_TLS_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <sys/stat.h>

#include <openssl/types.h>

#include "tlsproxy/config.h"
#include "tlsproxy/tool_x509.h"

struct tp_ini_set;

/* Exit codes (tool_tls.c lists what each covers). */
#define TP_TOOL_TLS_EX_OK    0
#define TP_TOOL_TLS_EX_FAIL  1
#define TP_TOOL_TLS_EX_USAGE 2

/* The mode of route a verb works on. */
enum tp_tool_tls_want { TP_TOOL_TLS_SERVER, TP_TOOL_TLS_CLIENT };

/* One run of the tool. */
struct tp_tool_tls {
	const char *path; /* configuration file, as given */
	const char *cmd;  /* the subcommand */
	char *dir;        /* its directory, for relative file names */
	char *text;       /* the file as read, for the rewrite */
	size_t len;
	struct stat st;
	struct tp_config *cfg;
	const char *ropt; /* -r */
	const struct tp_cfg_route *route;
};

/* A certificate and key pair of a route: cert_file/key_file or the EC
 * pair. */
struct tp_tool_tls_slot {
	enum tp_key cert, key;
};

extern const struct tp_tool_tls_slot tp_tool_tls_slot_rsa, tp_tool_tls_slot_ec;

/* The options of one subcommand; unset ones are NULL. */
struct tp_tool_tls_opts {
	const char *a, *b, *h, *k, *p;
	int argc; /* the operands */
	char **argv;
};

/* ---------------------------------------------------- tool_tls.c */

/* tp_tool_tls_say - "tlsproxy tls CMD: message" on stderr; returns CODE. */
int tp_tool_tls_say(const struct tp_tool_tls *t, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* tp_tool_tls_usage - the synopsis of CMD (of every subcommand if NULL)
 * on stderr; returns 2. */
int tp_tool_tls_usage(const char *cmd);

/* tp_tool_tls_put_arg - S as one shell word (single-quoted when it needs
 * it). */
void tp_tool_tls_put_arg(FILE *f, const char *s);

/* ----------------------------------------------- tool_tls_args.c */

/* tp_tool_tls_get_opts - parse OPTSTRING options of argv (argv[0] =
 * subcommand); -r goes into t->ropt.  0 or an exit code. */
int tp_tool_tls_get_opts(struct tp_tool_tls *t, int argc, char **argv,
    const char *optstring, struct tp_tool_tls_opts *o);

/* tp_tool_tls_default_host - the route's hostname key, else the system
 * host name. */
void tp_tool_tls_default_host(
    const struct tp_cfg_route *r, char *buf, size_t len);

/* tp_tool_tls_hostname_ok - a DNS name (an optional "*." first label) or
 * not. */
bool tp_tool_tls_hostname_ok(const char *h);

/*
 * tp_tool_tls_get_hosts - the hostname arguments, or the default one in
 * BUF.  0 or an exit code.
 */
int tp_tool_tls_get_hosts(struct tp_tool_tls *t, int argc, char **argv,
    const char **hosts, int *nhosts, char *buf, size_t len);

/* tp_tool_tls_parse_alg - -a rsa|ecdsa.  0 or -1. */
int tp_tool_tls_parse_alg(const char *s, enum tp_x509_alg *alg);

/*
 * tp_tool_tls_parse_keyspec - -a and -b into ks (defaults: RSA 2048,
 * secp256r1; -b with a curve name and no -a means ECDSA).  0 or an exit
 * code.
 */
int tp_tool_tls_parse_keyspec(const struct tp_tool_tls *t, const char *a,
    const char *b, struct tp_x509_keyspec *ks);

/* ---------------------------------------------- tool_tls_route.c */

/* tp_tool_tls_resolve - a file argument: relative names are in the config
 * dir.  NULL when out of memory. */
char *tp_tool_tls_resolve(const struct tp_tool_tls *t, const char *arg);

/*
 * tp_tool_tls_exists_or_say - 0 if the file RESOLVED (argument ARG)
 * exists, else a message that says where relative names are looked up.
 */
int tp_tool_tls_exists_or_say(
    const struct tp_tool_tls *t, const char *arg, const char *resolved);

/* tp_tool_tls_print_diags - the configuration's FILE:LINE problems on
 * stderr. */
void tp_tool_tls_print_diags(const struct tp_config *cfg);

/*
 * tp_tool_tls_pick_route - the route named by -r, else the only route of
 * mode W, into t->route (reading the configuration first).  STRICT
 * refuses a route of the other mode.  0 or an exit code.
 */
int tp_tool_tls_pick_route(
    struct tp_tool_tls *t, enum tp_tool_tls_want w, bool strict);

/*
 * tp_tool_tls_slot_key - the file holding the key of a pair: key_file,
 * else cert_file (a PEM file with both); NULL if the pair is not set.
 */
const struct tp_cval *tp_tool_tls_slot_key(
    const struct tp_cfg_route *r, struct tp_tool_tls_slot s);

/* tp_tool_tls_slot_alg - the public key algorithm of the pair's
 * certificate. */
enum tp_x509_alg tp_tool_tls_slot_alg(
    const struct tp_cfg_route *r, struct tp_tool_tls_slot s);

/*
 * tp_tool_tls_route_key - the route's key file: of algorithm WANT
 * (TP_X509_NONE: the RSA pair's, else the ECDSA pair's).  Loads it into
 * *key.  0 or an exit code.
 */
int tp_tool_tls_route_key(struct tp_tool_tls *t, enum tp_x509_alg want,
    EVP_PKEY **key, const struct tp_cval **kv);

/* -------------------------------------------- tool_tls_rewrite.c */

/* tp_tool_tls_put_reload - how to make the running daemon load the
 * change. */
void tp_tool_tls_put_reload(const struct tp_tool_tls *t, FILE *f);

/*
 * tp_tool_tls_rewrite_route - set SETS in the route's section of the
 * configuration file: refused unless the rewritten text loads without
 * errors and the route's TLS context builds from it (what -t and a reload
 * check).  0 or an exit code; nothing is written on failure.
 */
int tp_tool_tls_rewrite_route(
    struct tp_tool_tls *t, const struct tp_ini_set *sets, size_t nsets);

/*
 * tp_tool_tls_deploy - check CERT and KEY (arguments as given: relative
 * to the configuration directory) and write them into the route's
 * cert_file/key_file, or eccert_file/eckey_file for an ECDSA key (unless
 * cert_file is the route's only pair and already ECDSA), with EXTRA
 * settings; *used is the pair written.  0 or an exit code.
 */
int tp_tool_tls_deploy(struct tp_tool_tls *t, const char *cert, const char *key,
    const struct tp_ini_set *extra, size_t nextra,
    struct tp_tool_tls_slot *used);

/* ----------------------------------------------- tool_tls_cert.c */

/* tp_tool_tls_new_key_and_cert - a new key and self-signed certificate,
 * written; what new-server-key and enable-server share.  0 or an exit
 * code. */
int tp_tool_tls_new_key_and_cert(struct tp_tool_tls *t,
    const struct tp_x509_keyspec *ks, const char **hosts, int nhosts,
    EVP_PKEY **keyp, struct tp_x509_files *nf);

/* tp_tool_tls_put_created - what new-server-key made, with the TLSA
 * records. */
void tp_tool_tls_put_created(EVP_PKEY *key, const struct tp_x509_files *nf,
    const char **hosts, int nhosts);

/* ------------------------------------------------------ the verbs */

/*
 * The subcommands, argv[0] being the subcommand: each returns the
 * process exit code.  tool_tls_cert.c:
 */
int tp_tool_tls_new_server_key(struct tp_tool_tls *t, int argc, char **argv);
int tp_tool_tls_new_server_cert(struct tp_tool_tls *t, int argc, char **argv);
int tp_tool_tls_deploy_server_cert(
    struct tp_tool_tls *t, int argc, char **argv);
int tp_tool_tls_output_server_csr(struct tp_tool_tls *t, int argc, char **argv);

/* tool_tls_tlsa.c: */
int tp_tool_tls_output_server_tlsa(
    struct tp_tool_tls *t, int argc, char **argv);

/* tool_tls_enable.c (all_default: all-default-server or -client, by W): */
int tp_tool_tls_enable_server(struct tp_tool_tls *t, int argc, char **argv);
int tp_tool_tls_enable_client(struct tp_tool_tls *t, int argc, char **argv);
int tp_tool_tls_all_default(
    struct tp_tool_tls *t, int argc, char **argv, enum tp_tool_tls_want w);

#endif
