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
 * tool_x509.c makes them, and the CSRs and TLSA records: this file owns
 * the verbs, their arguments, the route's settings and the messages.
 * The INI file is changed only through tool_ini.c (values in place,
 * comments and order kept, temporary file + rename) and only after the
 * rewritten text loads and the route's TLS context builds from it the way
 * `tlsproxy -t` builds it.  A configuration with errors is not touched.
 *
 * new-server-cert signs a new certificate for the key the route uses now
 * (the key is not copied).  enable-server, on a route with no TLS key set
 * (is_tls_key()), makes a key and a self-signed certificate as
 * new-server-key does and deploys them with security = may.
 * enable-client writes security = encrypt, the default of client routes:
 * Postfix's enable-client writes "may" because Postfix's own default is
 * no TLS; here "may" would weaken the default (and acts as encrypt on an
 * implicit-TLS route).  On a route with a TLS key set, both print typical
 * settings, change nothing and exit 0, as postfix-tls(1) does.
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

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "tlsproxy/config.h"
#include "tlsproxy/tls_ctx.h"
#include "tlsproxy/tls_keys.h"
#include "tlsproxy/tool_ini.h"
#include "tlsproxy/tool_x509.h"

#define EX_OK    0
#define EX_FAIL  1
#define EX_USAGE 2

enum want { WANT_SERVER, WANT_CLIENT };

struct tool {
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
struct slot {
	enum tp_key cert, key;
};

static const struct slot SLOT_RSA = {TP_K_CERT_FILE, TP_K_KEY_FILE};
static const struct slot SLOT_EC = {TP_K_ECCERT_FILE, TP_K_ECKEY_FILE};

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

/* say - "tlsproxy tls CMD: message" on stderr; returns CODE. */
static int say(const struct tool *t, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int
say(const struct tool *t, int code, const char *fmt, ...)
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

/* usage - put_usage() on stderr; returns 2. */
static int
usage(const char *cmd)
{
	put_usage(stderr, cmd);
	return EX_USAGE;
}

/* put_arg - S as one shell word (single-quoted when it needs it). */
static void
put_arg(FILE *f, const char *s)
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

/* put_cmd - "  tlsproxy -c CONFIG tls VERB" (the caller adds the rest). */
static void
put_cmd(FILE *f, const struct tool *t, const char *verb)
{
	fputs("  tlsproxy -c ", f);
	put_arg(f, t->path);
	fprintf(f, " tls %s", verb);
}

/* ------------------------------------------------------- configuration */

/* dir_of - the directory of PATH, as config.c computes it. */
static char *
dir_of(const char *path)
{
	const char *slash = strrchr(path, '/');

	if (slash == NULL)
		return strdup(".");
	return strndup(path, slash == path ? 1 : (size_t)(slash - path));
}

/* resolve - a file argument: relative names are in the config dir. */
static char *
resolve(const struct tool *t, const char *arg)
{
	char *out;

	if (arg[0] == '/' || strcmp(t->dir, ".") == 0)
		return strdup(arg);
	if (asprintf(&out, "%s/%s", t->dir, arg) < 0)
		return NULL;
	return out;
}

/*
 * exists_or_say - 0 if the file RESOLVED (argument ARG) exists, else a
 * message that says where relative names are looked up.
 */
static int
exists_or_say(const struct tool *t, const char *arg, const char *resolved)
{
	int e;

	if (access(resolved, F_OK) == 0)
		return 0;
	e = errno;
	if (arg[0] != '/' && access(arg, F_OK) == 0)
		return say(t, EX_FAIL,
		    "%s: %s; relative file names are "
		    "relative to the configuration directory %s, as in the "
		    "INI file: give %s relative to it or as an absolute path",
		    resolved, strerror(e), t->dir, arg);
	return say(t, EX_FAIL, "%s: %s", resolved, strerror(e));
}

/* print_diags - the configuration's FILE:LINE problems on stderr. */
static void
print_diags(const struct tp_config *cfg)
{
	for (size_t i = 0; i < cfg->ndiags; i++)
		fprintf(stderr, "%s\n", cfg->diags[i]);
}

/* load_config - read and parse the configuration once; 0 or exit code. */
static int
load_config(struct tool *t)
{
	char why[300];

	if (t->cfg != NULL)
		return 0;
	if (tp_ini_read_file(
		t->path, &t->text, &t->len, &t->st, why, sizeof(why)) < 0)
		return say(t, EX_FAIL, "%s: %s", t->path, why);
	t->cfg = tp_config_load_string(t->path, t->text);
	if (t->cfg == NULL)
		return say(t, EX_FAIL, "out of memory");
	if (t->cfg->nerrors > 0) {
		print_diags(t->cfg);
		return say(t, EX_FAIL,
		    "%s has %d error%s: fix %s first "
		    "(tlsproxy -c %s -t)",
		    t->path, t->cfg->nerrors, t->cfg->nerrors == 1 ? "" : "s",
		    t->cfg->nerrors == 1 ? "it" : "them", t->path);
	}
	return 0;
}

static const char *
mode_name(enum want w)
{
	return w == WANT_SERVER ? "server" : "client";
}

/* route_list - "a, b, c" (the names of the routes of mode W, or all). */
static void
route_list(const struct tp_config *cfg, int w, char *buf, size_t len)
{
	size_t o = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < cfg->nroutes && o < len; i++) {
		if (w >= 0 &&
		    (int)cfg->routes[i].mode !=
			(w == WANT_SERVER ? TP_MODE_SERVER : TP_MODE_CLIENT))
			continue;
		o += (size_t)snprintf(buf + o, len - o, "%s%s", o ? ", " : "",
		    cfg->routes[i].name);
	}
	if (buf[0] == '\0')
		snprintf(buf, len, "none");
}

/*
 * pick_route - the route named by -r, else the only route of mode W.
 * STRICT refuses a route of the other mode.  0 or an exit code.
 */
static int
pick_route(struct tool *t, enum want w, bool strict)
{
	const struct tp_cfg_route *r = NULL;
	enum tp_mode m = w == WANT_SERVER ? TP_MODE_SERVER : TP_MODE_CLIENT;
	char names[1024];
	size_t n = 0;
	int rc;

	if (t->route != NULL)
		return 0;
	if ((rc = load_config(t)) != 0)
		return rc;
	if (t->ropt != NULL) {
		r = tp_config_route(t->cfg, t->ropt);
		if (r == NULL) {
			route_list(t->cfg, -1, names, sizeof(names));
			return say(t, EX_USAGE,
			    "no route [%s] in %s (routes: "
			    "%s)",
			    t->ropt, t->path, names);
		}
		if (strict && r->mode != m)
			return say(t, EX_USAGE,
			    "route %s is a %s route; %s "
			    "takes a %s route",
			    r->name, tp_config_mode_name(r->mode), t->cmd,
			    mode_name(w));
		t->route = r;
		return 0;
	}
	for (size_t i = 0; i < t->cfg->nroutes; i++)
		if (t->cfg->routes[i].mode == m) {
			r = &t->cfg->routes[i];
			n++;
		}
	if (n == 1) {
		t->route = r;
		return 0;
	}
	route_list(t->cfg, (int)w, names, sizeof(names));
	if (n == 0) {
		route_list(t->cfg, -1, names, sizeof(names));
		return say(t, EX_USAGE,
		    "%s has no %s route; name the route "
		    "with -r ROUTE (routes: %s)",
		    t->path, mode_name(w), names);
	}
	return say(t, EX_USAGE,
	    "%s has %zu %s routes (%s): choose one with "
	    "-r ROUTE",
	    t->path, n, mode_name(w), names);
}

/*
 * is_tls_key - the keys that make up a route's TLS settings, for
 * all-default-* and enable-*: what Postfix's smtp(d)_tls_* parameters
 * cover.  Not listed: mode, accept, connect, tls (the port's framing),
 * timeouts, limits and the SMTP dialogue keys.
 */
static bool
is_tls_key(enum tp_key k)
{
	switch (k) {
	case TP_K_SECURITY:
	case TP_K_PROTOCOLS:
	case TP_K_CIPHERS:
	case TP_K_EXCLUDE_CIPHERS:
	case TP_K_CERT_FILE:
	case TP_K_KEY_FILE:
	case TP_K_ECCERT_FILE:
	case TP_K_ECKEY_FILE:
	case TP_K_CA_FILE:
	case TP_K_CA_PATH:
	case TP_K_SERVERNAME:
	case TP_K_NEXTHOP:
	case TP_K_MATCH:
	case TP_K_FINGERPRINT:
	case TP_K_TLSA:
	case TP_K_VERIFY_DEPTH:
	case TP_K_SESSION_CACHE:
	case TP_K_CONNECTION_REUSE:
	case TP_K_AUTH_ONLY:
	case TP_K_ASK_CCERT:
	case TP_K_REQ_CCERT:
	case TP_K_SESSION_TICKETS:
	case TP_K_TICKET_KEY_FILE:
	case TP_K_SNI:
		return true;
	default:
		return false;
	}
}

/*
 * list_set - the TLS keys set in route R (of mode W), one per line on F
 * with their lines, walking the key table; returns how many.
 */
static int
list_set(const struct tp_cfg_route *r, enum want w, FILE *f)
{
	enum tp_kscope own = w == WANT_SERVER ? S : C;
	int n = 0;

	for (int k = 0; k < TP_K_COUNT; k++) {
		const struct tp_cval *v = &r->v[k];

		if ((tp_keys[k].scope & own) == 0 ||
		    !is_tls_key((enum tp_key)k) || !v->set)
			continue;
		if (f != NULL)
			fprintf(f, "  %s = %s    (line %d)\n", tp_keys[k].name,
			    v->raw, v->line);
		n++;
	}
	return n;
}

/* default_host - the route's hostname key, else the system host name. */
static void
default_host(const struct tp_cfg_route *r, char *buf, size_t len)
{
	if (r != NULL && r->v[TP_K_HOSTNAME].set) {
		snprintf(buf, len, "%s", r->v[TP_K_HOSTNAME].raw);
		return;
	}
	if (gethostname(buf, len - 1) < 0 || buf[0] == '\0')
		snprintf(buf, len, "localhost");
	buf[len - 1] = '\0';
}

/* hostname_ok - a DNS name (an optional "*." first label) or not. */
static bool
hostname_ok(const char *h)
{
	size_t n = strlen(h), label = 0;

	if (strncmp(h, "*.", 2) == 0)
		h += 2, n -= 2;
	if (n == 0 || n > 253 || h[0] == '.' || h[n - 1] == '.' ||
	    strstr(h, "..") != NULL)
		return false;
	for (; *h; h++) {
		if (*h == '.') {
			label = 0;
			continue;
		}
		if (!((*h >= 'a' && *h <= 'z') || (*h >= 'A' && *h <= 'Z') ||
			(*h >= '0' && *h <= '9') || *h == '-' || *h == '_'))
			return false;
		if (++label > 63)
			return false;
	}
	return true;
}

/*
 * get_hosts - the hostname arguments, or the default one in BUF.
 * 0 or an exit code.
 */
static int
get_hosts(struct tool *t, int argc, char **argv, const char **hosts,
    int *nhosts, char *buf, size_t len)
{
	int rc;

	if (argc > TP_X509_MAX_HOSTS)
		return say(
		    t, EX_USAGE, "at most %d hostnames", TP_X509_MAX_HOSTS);
	for (int i = 0; i < argc; i++) {
		if (!hostname_ok(argv[i]))
			return say(t, EX_USAGE,
			    "bad hostname \"%s\": use "
			    "a DNS name",
			    argv[i]);
		hosts[i] = argv[i];
	}
	*nhosts = argc;
	if (argc > 0)
		return 0;
	if ((rc = pick_route(t, WANT_SERVER, false)) != 0)
		return rc;
	default_host(t->route, buf, len);
	if (!hostname_ok(buf))
		return say(t, EX_USAGE,
		    "the default hostname \"%s\" is not "
		    "a DNS name: give one as an argument",
		    buf);
	hosts[0] = buf;
	*nhosts = 1;
	return 0;
}

/* ---------------------------------------------------- key options */

/* parse_alg - -a rsa|ecdsa.  0 or -1. */
static int
parse_alg(const char *s, enum tp_x509_alg *alg)
{
	if (strcmp(s, "rsa") == 0)
		*alg = TP_X509_RSA;
	else if (strcmp(s, "ecdsa") == 0)
		*alg = TP_X509_EC;
	else
		return -1;
	return 0;
}

/*
 * parse_keyspec - -a and -b into ks (defaults: RSA 2048, secp256r1;
 * -b with a curve name and no -a means ECDSA).  0 or an exit code.
 */
static int
parse_keyspec(const struct tool *t, const char *a, const char *b,
    struct tp_x509_keyspec *ks)
{
	static const struct {
		const char *name, *ossl;
	} curves[] = {
	    {"secp256r1", "prime256v1"},
	    {"prime256v1", "prime256v1"},
	    {"P-256", "prime256v1"},
	    {"256", "prime256v1"},
	    {"secp384r1", "secp384r1"},
	    {"P-384", "secp384r1"},
	    {"384", "secp384r1"},
	    {"secp521r1", "secp521r1"},
	    {"P-521", "secp521r1"},
	    {"521", "secp521r1"},
	};

	memset(ks, 0, sizeof(*ks));
	ks->alg = TP_X509_RSA;
	if (a != NULL && parse_alg(a, &ks->alg) < 0)
		return say(t, EX_USAGE,
		    "bad algorithm \"%s\": use rsa or "
		    "ecdsa",
		    a);
	if (a == NULL && b != NULL && strspn(b, "0123456789") != strlen(b))
		ks->alg = TP_X509_EC;
	if (ks->alg == TP_X509_RSA) {
		ks->bits = 2048;
		if (b == NULL)
			return 0;
		if (strcmp(b, "2048") == 0 || strcmp(b, "3072") == 0 ||
		    strcmp(b, "4096") == 0) {
			ks->bits = atoi(b);
			return 0;
		}
		return say(t, EX_USAGE,
		    "bad RSA key size \"%s\": use 2048, "
		    "3072 or 4096",
		    b);
	}
	ks->curve = "prime256v1";
	if (b == NULL)
		return 0;
	for (size_t i = 0; i < sizeof(curves) / sizeof(curves[0]); i++)
		if (strcmp(b, curves[i].name) == 0) {
			ks->curve = curves[i].ossl;
			return 0;
		}
	return say(t, EX_USAGE,
	    "bad ECDSA curve \"%s\": use secp256r1 (also "
	    "called prime256v1), secp384r1 or secp521r1",
	    b);
}

/* ------------------------------------------------------------- files */

/* create_files - tp_x509_create_files() in the configuration directory
 * (KP, CP: the file name prefixes).  0 or an exit code. */
static int
create_files(const struct tool *t, const char *kp, const char *cp,
    struct tp_x509_files *nf)
{
	char why[PATH_MAX + 300];

	if (tp_x509_create_files(t->dir, kp, cp, nf, why, sizeof(why)) < 0)
		return say(t, EX_FAIL, "%s", why);
	return 0;
}

/* write_new - tp_x509_write_files(): on failure the new files are
 * removed.  0 or an exit code. */
static int
write_new(
    const struct tool *t, struct tp_x509_files *nf, EVP_PKEY *key, X509 *x)
{
	char why[PATH_MAX + 300];

	if (tp_x509_write_files(nf, key, x, why, sizeof(why)) < 0)
		return say(t, EX_FAIL, "%s", why);
	return 0;
}

/* ------------------------------------------------------ route keys */

/*
 * slot_key - the file holding the key of a pair: key_file, else
 * cert_file (a PEM file with both); NULL if the pair is not set.
 */
static const struct tp_cval *
slot_key(const struct tp_cfg_route *r, struct slot s)
{
	if (r->v[s.key].set)
		return &r->v[s.key];
	if (r->v[s.cert].set)
		return &r->v[s.cert];
	return NULL;
}

/* slot_alg - the public key algorithm of the pair's certificate. */
static enum tp_x509_alg
slot_alg(const struct tp_cfg_route *r, struct slot s)
{
	STACK_OF(X509) * chain;
	EVP_PKEY *pub;
	enum tp_x509_alg a = TP_X509_NONE;
	char why[300];

	if (!r->v[s.cert].set)
		return TP_X509_NONE;
	chain = tp_keys_load_chain(r->v[s.cert].s, why, sizeof(why));
	if (chain == NULL)
		return TP_X509_NONE;
	if ((pub = X509_get0_pubkey(sk_X509_value(chain, 0))) != NULL)
		a = tp_x509_key_alg(pub);
	sk_X509_pop_free(chain, X509_free);
	return a;
}

/*
 * route_key - the route's key file: of algorithm WANT (TP_X509_NONE: the
 * RSA pair's, else the ECDSA pair's).  Loads it into *key.  0 or an exit
 * code.
 */
static int
route_key(struct tool *t, enum tp_x509_alg want, EVP_PKEY **key,
    const struct tp_cval **kv)
{
	const struct tp_cfg_route *r = t->route;
	const struct tp_cval *rsa = slot_key(r, SLOT_RSA);
	const struct tp_cval *ec = slot_key(r, SLOT_EC);
	char why[300];

	*key = NULL;
	if (want == TP_X509_EC)
		*kv = ec                                  ? ec
		    : slot_alg(r, SLOT_RSA) == TP_X509_EC ? rsa
							  : NULL;
	else if (want == TP_X509_RSA)
		*kv = slot_alg(r, SLOT_RSA) == TP_X509_EC ? NULL : rsa;
	else
		*kv = rsa ? rsa : ec;
	if (*kv == NULL)
		return say(t, EX_FAIL,
		    "route %s has no %s: make one with "
		    "new-server-key",
		    r->name,
		    want == TP_X509_EC ? "ECDSA key (eccert_file/eckey_file)"
			: want == TP_X509_RSA ? "RSA key (cert_file/key_file)"
					      : "key (cert_file/key_file or "
						"eccert_file/eckey_file)");
	if ((*key = tp_keys_load_key((*kv)->s, why, sizeof(why))) == NULL)
		return say(t, EX_FAIL, "%s (%s:%d): %s", (*kv)->s, t->path,
		    (*kv)->line, why);
	if (want != TP_X509_NONE && tp_x509_key_alg(*key) != want) {
		EVP_PKEY_free(*key);
		*key = NULL;
		return say(t, EX_FAIL,
		    "the key in %s (%s:%d) is not an %s "
		    "key",
		    (*kv)->s, t->path, (*kv)->line,
		    want == TP_X509_EC ? "ECDSA" : "RSA");
	}
	return 0;
}

/* --------------------------------------------------------- rewrite */

/* put_reload - how to make the running daemon load the change. */
static void
put_reload(const struct tool *t, FILE *f)
{
	const struct tp_cval *pid = &t->cfg->g[TP_K_PID_FILE];

	fprintf(f,
	    "Check the configuration, then reload tlsproxy (SIGHUP; "
	    "sessions in progress carry on):\n");
	fputs("  tlsproxy -c ", f);
	put_arg(f, t->path);
	fputs(" -t\n", f);
	if (pid->set) {
		fputs("  kill -HUP $(cat ", f);
		put_arg(f, pid->s);
		fputs(")\n", f);
	}
	fprintf(f, "  %ssystemctl reload tlsproxy\n",
	    pid->set ? "or, under systemd: " : "");
}

/*
 * rewrite_route - set SETS in the route's section of the configuration
 * file: refused unless the rewritten text loads without errors and the
 * route's TLS context builds from it (what -t and a reload check).
 * 0 or an exit code; nothing is written on failure.
 */
static int
rewrite_route(struct tool *t, const struct tp_ini_set *sets, size_t nsets)
{
	const struct tp_cfg_route *r2;
	struct tp_config *cfg2 = NULL;
	char why[400], *text = NULL;
	size_t len = 0;
	SSL_CTX *ctx;
	int failed = 0, rc = EX_FAIL;

	if (tp_ini_edit(t->text, t->len, t->route->name, sets, nsets, &text,
		&len, why, sizeof(why)) < 0)
		return say(t, EX_FAIL, "cannot rewrite %s: %s", t->path, why);
	if (memchr(text, '\0', len) != NULL ||
	    (cfg2 = tp_config_load_string(t->path, text)) == NULL) {
		say(t, EX_FAIL, "cannot check the rewritten %s", t->path);
		goto out;
	}
	if (cfg2->nerrors == 0 &&
	    (r2 = tp_config_route(cfg2, t->route->name)) != NULL) {
		ctx = tp_tls_ctx_new(cfg2, r2, &failed);
		SSL_CTX_free(ctx);
	}
	if (cfg2->nerrors > 0 || failed) {
		print_diags(cfg2);
		say(t, EX_FAIL,
		    "refused: with this change route %s would not "
		    "load (problems above, at the lines of the rewritten "
		    "file); %s is unchanged",
		    t->route->name, t->path);
		goto out;
	}
	if (tp_ini_replace_file(t->path, text, len, &t->st, why, sizeof(why)) <
	    0) {
		say(t, EX_FAIL, "cannot write %s: %s", t->path, why);
		goto out;
	}
	rc = EX_OK;
out:
	tp_config_free(cfg2);
	free(text);
	return rc;
}

/*
 * check_pair - the checks of deploy-server-cert: the chain loads leaf
 * first, the key file's mode is safe, the key loads and matches the leaf.
 * Loads the key into *key.  0 or an exit code.
 */
static int
check_pair(const struct tool *t, const char *cert, const char *key_path,
    EVP_PKEY **key)
{
	STACK_OF(X509) * chain;
	X509 *leaf;
	char why[300];
	int rc = EX_FAIL;

	*key = NULL;
	if ((chain = tp_keys_load_chain(cert, why, sizeof(why))) == NULL)
		return say(
		    t, EX_FAIL, "refused: certificate file %s: %s", cert, why);
	leaf = sk_X509_value(chain, 0);
	if (tp_keys_check_mode(key_path, why, sizeof(why)) < 0) {
		say(t, EX_FAIL, "refused: key file %s: %s (chmod 600 it)",
		    key_path, why);
		goto out;
	}
	if ((*key = tp_keys_load_key(key_path, why, sizeof(why))) == NULL) {
		say(t, EX_FAIL, "refused: key file %s: %s", key_path, why);
		goto out;
	}
	if (X509_check_private_key(leaf, *key) != 1) {
		ERR_clear_error();
		say(t, EX_FAIL,
		    "refused: the key in %s does not match the "
		    "certificate in %s",
		    key_path, cert);
		goto out;
	}
	if (X509_cmp_current_time(X509_get0_notAfter(leaf)) < 0)
		fprintf(stderr,
		    "tlsproxy tls %s: warning: the certificate in "
		    "%s has expired\n",
		    t->cmd, cert);
	rc = EX_OK;
out:
	if (rc != EX_OK) {
		EVP_PKEY_free(*key);
		*key = NULL;
	}
	sk_X509_pop_free(chain, X509_free);
	return rc;
}

/*
 * deploy - check CERT and KEY (arguments as given: relative to the
 * configuration directory) and write them into the route's cert_file/
 * key_file, or eccert_file/eckey_file for an ECDSA key (unless cert_file
 * is the route's only pair and already ECDSA), with EXTRA settings.
 * 0 or an exit code.
 */
static int
deploy(struct tool *t, const char *cert, const char *key,
    const struct tp_ini_set *extra, size_t nextra, struct slot *used)
{
	const struct tp_cfg_route *r = t->route;
	struct tp_ini_set sets[8];
	size_t n = 0;
	char *cpath = resolve(t, cert), *kpath = resolve(t, key);
	EVP_PKEY *pkey = NULL;
	struct slot s = SLOT_RSA;
	int rc;

	if (cpath == NULL || kpath == NULL) {
		rc = say(t, EX_FAIL, "out of memory");
		goto out;
	}
	if ((rc = exists_or_say(t, cert, cpath)) != 0 ||
	    (rc = exists_or_say(t, key, kpath)) != 0 ||
	    (rc = check_pair(t, cpath, kpath, &pkey)) != 0)
		goto out;
	if (tp_x509_key_alg(pkey) == TP_X509_EC &&
	    !(r->v[TP_K_CERT_FILE].set && !r->v[TP_K_ECCERT_FILE].set &&
		slot_alg(r, SLOT_RSA) == TP_X509_EC))
		s = SLOT_EC;
	sets[n++] = (struct tp_ini_set){tp_keys[s.cert].name, cert};
	sets[n++] = (struct tp_ini_set){tp_keys[s.key].name, key};
	for (size_t i = 0; i < nextra && n < sizeof(sets) / sizeof(sets[0]);
	     i++)
		sets[n++] = extra[i];
	if ((rc = rewrite_route(t, sets, n)) != 0)
		goto out;
	*used = s;
out:
	EVP_PKEY_free(pkey);
	free(cpath);
	free(kpath);
	return rc;
}

/* ------------------------------------------------------ subcommands */

/* The options of one subcommand; unset ones are NULL. */
struct opts {
	const char *a, *b, *h, *k, *p;
	int argc; /* the operands */
	char **argv;
};

/* get_opts - parse OPTSTRING options of argv (argv[0] = subcommand). */
static int
get_opts(struct tool *t, int argc, char **argv, const char *optstring,
    struct opts *o)
{
	char spec[32];
	int ch;

	memset(o, 0, sizeof(*o));
	snprintf(spec, sizeof(spec), "+:%s", optstring);
	optind = 0; /* glibc: start afresh after main's getopt */
	opterr = 0;
	while ((ch = getopt(argc, argv, spec)) != -1) {
		switch (ch) {
		case 'a':
			o->a = optarg;
			break;
		case 'b':
			o->b = optarg;
			break;
		case 'h':
			o->h = optarg;
			break;
		case 'k':
			o->k = optarg;
			break;
		case 'p':
			o->p = optarg;
			break;
		case 'r':
			t->ropt = optarg;
			break;
		case ':':
			say(t, EX_USAGE, "option -%c needs an argument",
			    optopt);
			return usage(t->cmd);
		default:
			say(t, EX_USAGE, "unknown option -%c", optopt);
			return usage(t->cmd);
		}
	}
	o->argc = argc - optind;
	o->argv = argv + optind;
	return 0;
}

/* put_csr_hint - how to get a CA-signed certificate for KEYNAME. */
static void
put_csr_hint(const struct tool *t, FILE *f, const char *keyname,
    const char **hosts, int nhosts)
{
	fprintf(f,
	    "\nTo have the key certified by a CA instead, make a "
	    "certificate signing request:\n");
	put_cmd(f, t, "output-server-csr -k ");
	put_arg(f, keyname);
	fputs(" -r ", f);
	put_arg(f, t->route->name);
	for (int i = 0; i < nhosts; i++) {
		fputc(' ', f);
		put_arg(f, hosts[i]);
	}
	fputs(" > csr.pem\n", f);
	fprintf(f,
	    "then save the signed chain (the server certificate first, "
	    "then the\nintermediate CA certificates) in the configuration "
	    "directory and deploy\nit with the key as above.\n");
}

/* put_deploy_hint - the deploy-server-cert command for the pair. */
static void
put_deploy_hint(const struct tool *t, FILE *f, const char *what,
    const char *cert, const char *key)
{
	fprintf(
	    f, "\nTo deploy the new %s on route [%s]:\n", what, t->route->name);
	put_cmd(f, t, "deploy-server-cert -r ");
	put_arg(f, t->route->name);
	fputc(' ', f);
	put_arg(f, cert);
	fputc(' ', f);
	put_arg(f, key);
	fputc('\n', f);
}

static const char rollover[] =
    "\nKey rollover: DANE clients check this server's key against the TLSA\n"
    "records in DNS.  Publish the record above next to the current ones\n"
    "BEFORE deploying the new key, wait for the secondary name servers to\n"
    "update and for the old records' TTL to pass in remote DNS caches,\n"
    "then deploy; remove the old record afterwards.  To renew only the\n"
    "certificate, use \"tlsproxy tls new-server-cert\": it keeps the key,\n"
    "so a published \"3 1 1\" record stays valid.\n";

/* new_key_and_cert - a new key and self-signed certificate, written;
 * what new-server-key and enable-server share.  0 or an exit code. */
static int
new_key_and_cert(struct tool *t, const struct tp_x509_keyspec *ks,
    const char **hosts, int nhosts, EVP_PKEY **keyp, struct tp_x509_files *nf)
{
	char why[300];
	EVP_PKEY *key;
	X509 *x = NULL;
	int rc;

	*keyp = NULL;
	if ((key = tp_x509_genkey(ks, why, sizeof(why))) == NULL)
		return say(t, EX_FAIL, "cannot make a key: %s", why);
	if ((x = tp_x509_make_cert(key, hosts, nhosts, why, sizeof(why))) ==
	    NULL) {
		rc = say(t, EX_FAIL, "cannot make a certificate: %s", why);
		goto out;
	}
	if ((rc = create_files(t, ks->alg == TP_X509_EC ? "eckey" : "key",
		 ks->alg == TP_X509_EC ? "eccert" : "cert", nf)) != 0 ||
	    (rc = write_new(t, nf, key, x)) != 0)
		goto out;
	*keyp = key;
	key = NULL;
out:
	X509_free(x);
	EVP_PKEY_free(key);
	return rc;
}

/* put_created - what new-server-key made, with the TLSA records. */
static void
put_created(EVP_PKEY *key, const struct tp_x509_files *nf, const char **hosts,
    int nhosts)
{
	char desc[100];

	tp_x509_key_desc(key, desc, sizeof(desc));
	printf("New %s private key: %s (mode 0600)\n", desc, nf->kpath);
	printf("New self-signed certificate for %s, valid for 100 years: %s\n",
	    hosts[0], nf->cpath);
	printf("\nDANE TLSA record%s for the new key (publish before "
	       "deploying, see below):\n",
	    nhosts > 1 ? "s" : "");
	for (int i = 0; i < nhosts; i++)
		tp_x509_put_tlsa(stdout, "  ", hosts[i], 25, key);
}

static int
cmd_new_server_key(struct tool *t, int argc, char **argv)
{
	const char *hosts[TP_X509_MAX_HOSTS];
	char hbuf[256];
	struct tp_x509_files nf;
	struct tp_x509_keyspec ks;
	struct opts o;
	EVP_PKEY *key = NULL;
	int nhosts, rc;

	if ((rc = get_opts(t, argc, argv, "a:b:r:", &o)) != 0 ||
	    (rc = parse_keyspec(t, o.a, o.b, &ks)) != 0 ||
	    (rc = pick_route(t, WANT_SERVER, false)) != 0 ||
	    (rc = get_hosts(
		 t, o.argc, o.argv, hosts, &nhosts, hbuf, sizeof(hbuf))) != 0)
		return rc;
	if ((rc = new_key_and_cert(t, &ks, hosts, nhosts, &key, &nf)) != 0)
		return rc;
	put_created(key, &nf, hosts, nhosts);
	put_deploy_hint(t, stdout, "key and certificate", nf.cname, nf.kname);
	put_csr_hint(t, stdout, nf.kname, hosts, nhosts);
	fputs(rollover, stdout);
	printf("\nFile names are relative to the configuration directory %s, "
	       "as in the INI file.\n",
	    t->dir);
	EVP_PKEY_free(key);
	tp_x509_files_free(&nf, false);
	return EX_OK;
}

static int
cmd_new_server_cert(struct tool *t, int argc, char **argv)
{
	const char *hosts[TP_X509_MAX_HOSTS];
	const struct tp_cval *kv;
	enum tp_x509_alg want = TP_X509_NONE;
	char hbuf[256], desc[100], why[300];
	struct tp_x509_files nf;
	struct opts o;
	EVP_PKEY *key = NULL;
	X509 *x = NULL;
	int nhosts, rc;

	if ((rc = get_opts(t, argc, argv, "a:r:", &o)) != 0)
		return rc;
	if (o.a != NULL && parse_alg(o.a, &want) < 0)
		return say(t, EX_USAGE,
		    "bad algorithm \"%s\": use rsa or "
		    "ecdsa",
		    o.a);
	if ((rc = pick_route(t, WANT_SERVER, false)) != 0 ||
	    (rc = get_hosts(
		 t, o.argc, o.argv, hosts, &nhosts, hbuf, sizeof(hbuf))) != 0 ||
	    (rc = route_key(t, want, &key, &kv)) != 0)
		return rc;
	if ((x = tp_x509_make_cert(key, hosts, nhosts, why, sizeof(why))) ==
	    NULL) {
		rc = say(t, EX_FAIL, "cannot make a certificate: %s", why);
		goto out;
	}
	if ((rc = create_files(t, NULL,
		 tp_x509_key_alg(key) == TP_X509_EC ? "eccert" : "cert",
		 &nf)) != 0 ||
	    (rc = write_new(t, &nf, NULL, x)) != 0)
		goto out;
	tp_x509_key_desc(key, desc, sizeof(desc));
	printf("New self-signed certificate for %s, valid for 100 years: %s\n"
	       "for the current %s key of route [%s]: %s\n",
	    hosts[0], nf.cpath, desc, t->route->name, kv->s);
	printf("\nThe key is unchanged, so its DANE TLSA \"3 1 1\" "
	       "record%s stay%s valid:\n",
	    nhosts > 1 ? "s" : "", nhosts > 1 ? "" : "s");
	for (int i = 0; i < nhosts; i++)
		tp_x509_put_tlsa(stdout, "  ", hosts[i], 25, key);
	put_deploy_hint(t, stdout, "certificate", nf.cname, kv->raw);
	put_csr_hint(t, stdout, kv->raw, hosts, nhosts);
	printf("\nFile names are relative to the configuration directory %s, "
	       "as in the INI file.\n",
	    t->dir);
	tp_x509_files_free(&nf, false);
out:
	X509_free(x);
	EVP_PKEY_free(key);
	return rc;
}

static int
cmd_deploy_server_cert(struct tool *t, int argc, char **argv)
{
	struct slot s;
	struct opts o;
	int rc;

	if ((rc = get_opts(t, argc, argv, "r:", &o)) != 0)
		return rc;
	if (o.argc != 2) {
		say(t, EX_USAGE, "expected a certificate file and a key file");
		return usage(t->cmd);
	}
	if ((rc = pick_route(t, WANT_SERVER, false)) != 0 ||
	    (rc = deploy(t, o.argv[0], o.argv[1], NULL, 0, &s)) != 0)
		return rc;
	printf("Deployed on route [%s] in %s:\n  %s = %s\n  %s = %s\n",
	    t->route->name, t->path, tp_keys[s.cert].name, o.argv[0],
	    tp_keys[s.key].name, o.argv[1]);
	put_reload(t, stdout);
	return EX_OK;
}

static int
cmd_output_server_csr(struct tool *t, int argc, char **argv)
{
	const char *hosts[TP_X509_MAX_HOSTS];
	const struct tp_cval *kv;
	struct tp_x509_files nf = {.kfd = -1, .cfd = -1};
	struct tp_x509_keyspec ks;
	enum tp_x509_alg newalg = TP_X509_NONE;
	char hbuf[256], why[300], *kpath = NULL;
	X509_REQ *req = NULL;
	EVP_PKEY *key = NULL;
	struct opts o;
	int nhosts, rc;

	if ((rc = get_opts(t, argc, argv, "k:b:r:", &o)) != 0)
		return rc;
	if (o.k != NULL && parse_alg(o.k, &newalg) == 0) {
		if ((rc = parse_keyspec(t, o.k, o.b, &ks)) != 0)
			return rc;
	} else if (o.b != NULL) {
		return say(t, EX_USAGE,
		    "-b goes with -k rsa or -k ecdsa (a "
		    "new key)");
	}
	if ((o.k == NULL || newalg != TP_X509_NONE) &&
	    (rc = pick_route(t, WANT_SERVER, false)) != 0)
		return rc;
	if ((rc = get_hosts(
		 t, o.argc, o.argv, hosts, &nhosts, hbuf, sizeof(hbuf))) != 0)
		return rc;
	if (newalg != TP_X509_NONE) {
		if ((key = tp_x509_genkey(&ks, why, sizeof(why))) == NULL)
			return say(t, EX_FAIL, "cannot make a key: %s", why);
		if ((rc = create_files(t,
			 newalg == TP_X509_EC ? "eckey" : "key", NULL, &nf)) !=
			0 ||
		    (rc = write_new(t, &nf, key, NULL)) != 0)
			goto out;
	} else if (o.k != NULL) {
		if ((kpath = resolve(t, o.k)) == NULL) {
			rc = say(t, EX_FAIL, "out of memory");
			goto out;
		}
		if ((rc = exists_or_say(t, o.k, kpath)) != 0)
			goto out;
		if ((key = tp_keys_load_key(kpath, why, sizeof(why))) == NULL) {
			rc = say(t, EX_FAIL, "%s: %s", kpath, why);
			goto out;
		}
	} else if ((rc = route_key(t, TP_X509_NONE, &key, &kv)) != 0) {
		goto out;
	}
	if ((req = tp_x509_make_csr(key, hosts, nhosts, why, sizeof(why))) ==
	    NULL) {
		rc = say(t, EX_FAIL, "cannot make the CSR: %s", why);
		goto out;
	}
	if (!PEM_write_X509_REQ(stdout, req) || fflush(stdout) != 0) {
		rc = say(t, EX_FAIL, "cannot write the CSR");
		goto out;
	}
	if (newalg != TP_X509_NONE) {
		/* stdout is the CSR: the rest goes to stderr. */
		tp_x509_key_desc(key, why, sizeof(why));
		fprintf(stderr, "New %s private key: %s (mode 0600)\n", why,
		    nf.kpath);
		fprintf(stderr,
		    "DANE TLSA record%s for the new key (publish "
		    "before deploying it):\n",
		    nhosts > 1 ? "s" : "");
		for (int i = 0; i < nhosts; i++)
			tp_x509_put_tlsa(stderr, "  ", hosts[i], 25, key);
		fprintf(stderr,
		    "Save the signed certificate chain (server "
		    "certificate first) in the\nconfiguration directory %s, "
		    "then deploy it with the key:\n",
		    t->dir);
		put_cmd(stderr, t, "deploy-server-cert -r ");
		put_arg(stderr, t->route->name);
		fprintf(stderr, " CERTFILE ");
		put_arg(stderr, nf.kname);
		fputc('\n', stderr);
		fputs(rollover, stderr);
	}
	rc = EX_OK;
out:
	tp_x509_files_free(&nf, rc != EX_OK);
	X509_REQ_free(req);
	EVP_PKEY_free(key);
	free(kpath);
	return rc;
}

/* tlsa_file - the TLSA record for the key (or certificate) in ARG. */
static int
tlsa_file(struct tool *t, const char *arg, const char *path, const char *host,
    unsigned port)
{
	EVP_PKEY *key;
	int rc;

	if ((rc = exists_or_say(t, arg, path)) != 0)
		return rc;
	if ((key = tp_x509_read_key(path)) == NULL)
		return say(
		    t, EX_FAIL, "%s: no PEM private key or certificate", path);
	printf("; %s\n", path);
	rc = tp_x509_put_tlsa(stdout, "", host, port, key) < 0
	    ? say(t, EX_FAIL, "%s: cannot encode the public key", path)
	    : EX_OK;
	EVP_PKEY_free(key);
	return rc;
}

static int
cmd_output_server_tlsa(struct tool *t, int argc, char **argv)
{
	const struct tp_cval *kv;
	char hbuf[256], *path;
	unsigned long port = 25;
	const char *host;
	struct opts o;
	int rc, found = 0;
	bool need_route;

	if ((rc = get_opts(t, argc, argv, "h:p:r:", &o)) != 0)
		return rc;
	if (o.p != NULL) {
		char *end;

		errno = 0;
		port = strtoul(o.p, &end, 10);
		if (*o.p < '0' || *o.p > '9' || *end != '\0' || errno ||
		    port < 1 || port > 65535)
			return say(
			    t, EX_USAGE, "bad port \"%s\": 1 to 65535", o.p);
	}
	if (o.h != NULL) {
		/* A fully qualified name with its final dot is fine here. */
		snprintf(hbuf, sizeof(hbuf), "%s", o.h);
		if (hbuf[0] != '\0' && hbuf[strlen(hbuf) - 1] == '.')
			hbuf[strlen(hbuf) - 1] = '\0';
		if (!hostname_ok(hbuf))
			return say(t, EX_USAGE,
			    "bad hostname \"%s\": use a DNS name", o.h);
	}
	need_route = o.h == NULL || o.argc == 0 || t->ropt != NULL;
	for (int i = 0; i < o.argc; i++)
		if (strcmp(o.argv[i], "rsa") == 0 ||
		    strcmp(o.argv[i], "ecdsa") == 0)
			need_route = true;
	if (need_route && (rc = pick_route(t, WANT_SERVER, false)) != 0)
		return rc;
	host = hbuf;
	if (o.h == NULL)
		default_host(t->route, hbuf, sizeof(hbuf));
	if (o.argc == 0) {
		static char *both[] = {"rsa", "ecdsa"};

		o.argc = 2;
		o.argv = both;
	}
	for (int i = 0; i < o.argc; i++) {
		enum tp_x509_alg a = TP_X509_NONE;

		if (parse_alg(o.argv[i], &a) == 0) {
			/* The route's pair of that kind, if it has one. */
			kv = slot_key(
			    t->route, a == TP_X509_EC ? SLOT_EC : SLOT_RSA);
			if (kv == NULL)
				continue;
			rc = tlsa_file(t, kv->raw, kv->s, host, (unsigned)port);
		} else {
			if ((path = resolve(t, o.argv[i])) == NULL)
				return say(t, EX_FAIL, "out of memory");
			rc =
			    tlsa_file(t, o.argv[i], path, host, (unsigned)port);
			free(path);
		}
		if (rc != 0)
			return rc;
		found++;
	}
	if (found == 0)
		return say(t, EX_FAIL,
		    "route %s has no cert_file or "
		    "eccert_file: it serves a self-signed certificate made "
		    "at each start, which no TLSA record can match (make a "
		    "key with new-server-key)",
		    t->route->name);
	return EX_OK;
}

/* not_default - the "no changes made" report of enable-*. */
static int
not_default(struct tool *t, enum want w)
{
	printf(
	    "*** Route [%s] has non-default TLS settings; no changes made:\n",
	    t->route->name);
	list_set(t->route, w, stdout);
	if (w == WANT_SERVER) {
		printf("Typical settings for a server route:\n"
		       "  security = may          ; TLS offered, not "
		       "required (encrypt: required)\n"
		       "  cert_file = cert-YYYYMMDD-HHMMSS.pem\n"
		       "  key_file = key-YYYYMMDD-HHMMSS.pem\n"
		       "Use \"tlsproxy tls new-server-cert -r %s\" for a new "
		       "certificate for the\ncurrent key, or \"tlsproxy tls "
		       "new-server-key -r %s\" for a new key as well.\n"
		       "If you publish DANE TLSA records, see RFC 7671 "
		       "section 8 (key rollover)\nand sections 5.1 and 5.2 "
		       "(\"3 1 1\" records).\n",
		    t->route->name, t->route->name);
	} else {
		printf("Typical settings for a client route:\n"
		       "  security = encrypt      ; TLS required, "
		       "certificate not checked (the default)\n"
		       "  security = may          ; tls = starttls only: "
		       "plaintext if STARTTLS is not offered\n"
		       "  security = verify       ; with ca_file: the chain "
		       "and the name are checked\n"
		       "  protocols = >=TLSv1.2\n");
	}
	return EX_OK;
}

static int
cmd_enable_server(struct tool *t, int argc, char **argv)
{
	static const struct tp_ini_set may = {"security", "may"};
	const char *hosts[TP_X509_MAX_HOSTS];
	char hbuf[256];
	struct tp_x509_files nf;
	struct tp_x509_keyspec ks;
	struct opts o;
	struct slot s;
	EVP_PKEY *key = NULL;
	int nhosts, rc;

	if ((rc = get_opts(t, argc, argv, "a:b:r:", &o)) != 0 ||
	    (rc = parse_keyspec(t, o.a, o.b, &ks)) != 0 ||
	    (rc = pick_route(t, WANT_SERVER, true)) != 0 ||
	    (rc = get_hosts(
		 t, o.argc, o.argv, hosts, &nhosts, hbuf, sizeof(hbuf))) != 0)
		return rc;
	if (list_set(t->route, WANT_SERVER, NULL) > 0)
		return not_default(t, WANT_SERVER);
	if ((rc = new_key_and_cert(t, &ks, hosts, nhosts, &key, &nf)) != 0)
		return rc;
	put_created(key, &nf, hosts, nhosts);
	EVP_PKEY_free(key);
	if ((rc = deploy(t, nf.cname, nf.kname, &may, 1, &s)) != 0) {
		say(t, rc, "the new files stay in %s", t->dir);
		tp_x509_files_free(&nf, false);
		return rc;
	}
	printf("\nEnabled TLS on server route [%s] in %s:\n  %s = %s\n  %s = "
	       "%s\n  security = may\n",
	    t->route->name, t->path, tp_keys[s.cert].name, nf.cname,
	    tp_keys[s.key].name, nf.kname);
	put_reload(t, stdout);
	tp_x509_files_free(&nf, false);
	return EX_OK;
}

static int
cmd_enable_client(struct tool *t, int argc, char **argv)
{
	static const struct tp_ini_set enc = {"security", "encrypt"};
	struct opts o;
	int rc;

	if ((rc = get_opts(t, argc, argv, "r:", &o)) != 0)
		return rc;
	if (o.argc != 0) {
		say(t, EX_USAGE, "no arguments expected");
		return usage(t->cmd);
	}
	if ((rc = pick_route(t, WANT_CLIENT, true)) != 0)
		return rc;
	if (list_set(t->route, WANT_CLIENT, NULL) > 0)
		return not_default(t, WANT_CLIENT);
	/* A client route's default level is already encrypt: enabling
	 * writes it down (Postfix's "may" would be weaker than our
	 * default, and acts as encrypt on an implicit-TLS route anyway). */
	if ((rc = rewrite_route(t, &enc, 1)) != 0)
		return rc;
	printf("Enabled TLS on client route [%s] in %s:\n  security = encrypt"
	       "    ; TLS required, certificate not checked\n"
	       "For verification set security = verify and ca_file (and "
	       "match or nexthop\nfor an IP-literal connect).\n",
	    t->route->name, t->path);
	put_reload(t, stdout);
	return EX_OK;
}

static int
cmd_all_default(struct tool *t, int argc, char **argv, enum want w)
{
	struct opts o;
	int rc;

	if ((rc = get_opts(t, argc, argv, "r:", &o)) != 0)
		return rc;
	if (o.argc != 0) {
		say(t, EX_USAGE, "no arguments expected");
		return usage(t->cmd);
	}
	if ((rc = pick_route(t, w, true)) != 0)
		return rc;
	if (list_set(t->route, w, NULL) == 0)
		return EX_OK;
	printf("route [%s]: TLS settings not at their defaults:\n",
	    t->route->name);
	list_set(t->route, w, stdout);
	return EX_FAIL;
}

int
tp_tool_tls(const char *path, int argc, char **argv)
{
	struct tool t = {.path = path};
	int rc;

	if (argc < 1) {
		fprintf(stderr, "tlsproxy tls: a subcommand is needed\n");
		return usage(NULL);
	}
	t.cmd = argv[0];
	if (strcmp(t.cmd, "help") == 0 || strcmp(t.cmd, "-h") == 0) {
		put_usage(stdout, NULL);
		return EX_OK;
	}
	if ((t.dir = dir_of(path)) == NULL)
		return say(&t, EX_FAIL, "out of memory");
	tp_tls_init();
	if (strcmp(t.cmd, "new-server-key") == 0)
		rc = cmd_new_server_key(&t, argc, argv);
	else if (strcmp(t.cmd, "new-server-cert") == 0)
		rc = cmd_new_server_cert(&t, argc, argv);
	else if (strcmp(t.cmd, "deploy-server-cert") == 0)
		rc = cmd_deploy_server_cert(&t, argc, argv);
	else if (strcmp(t.cmd, "output-server-csr") == 0)
		rc = cmd_output_server_csr(&t, argc, argv);
	else if (strcmp(t.cmd, "output-server-tlsa") == 0)
		rc = cmd_output_server_tlsa(&t, argc, argv);
	else if (strcmp(t.cmd, "enable-server") == 0)
		rc = cmd_enable_server(&t, argc, argv);
	else if (strcmp(t.cmd, "enable-client") == 0)
		rc = cmd_enable_client(&t, argc, argv);
	else if (strcmp(t.cmd, "all-default-server") == 0)
		rc = cmd_all_default(&t, argc, argv, WANT_SERVER);
	else if (strcmp(t.cmd, "all-default-client") == 0)
		rc = cmd_all_default(&t, argc, argv, WANT_CLIENT);
	else {
		fprintf(
		    stderr, "tlsproxy tls: unknown subcommand \"%s\"\n", t.cmd);
		rc = usage(NULL);
	}
	tp_config_free(t.cfg);
	free(t.text);
	free(t.dir);
	return rc;
}
