/*
 * tool_tls_route.c - the configuration `tlsproxy tls` works on and the
 * route a verb applies to: the file read and parsed once (refused while
 * it has errors), the route named by -r or the only one of the verb's
 * mode, file names relative to the configuration directory, and the
 * route's certificate and key pairs (cert_file/key_file, the ECDSA pair).
 *
 * Runs on the main thread of the short-lived `tls` process; no event
 * loop.  Called by the verbs and by tool_tls_rewrite.c.
 */
#include "tlsproxy/tool_tls_int.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "tlsproxy/config.h"
#include "tlsproxy/tls_keys.h"
#include "tlsproxy/tool_ini.h"
#include "tlsproxy/tool_x509.h"

/* ------------------------------------------------------- configuration */

char *
tp_tool_tls_resolve(const struct tp_tool_tls *t, const char *arg)
{
	char *out;

	if (arg[0] == '/' || strcmp(t->dir, ".") == 0)
		return strdup(arg);
	if (asprintf(&out, "%s/%s", t->dir, arg) < 0)
		return NULL;
	return out;
}

int
tp_tool_tls_exists_or_say(
    const struct tp_tool_tls *t, const char *arg, const char *resolved)
{
	int e;

	if (access(resolved, F_OK) == 0)
		return 0;
	e = errno;
	if (arg[0] != '/' && access(arg, F_OK) == 0)
		return tp_tool_tls_say(t, TP_TOOL_TLS_EX_FAIL,
		    "%s: %s; relative file names are "
		    "relative to the configuration directory %s, as in the "
		    "INI file: give %s relative to it or as an absolute path",
		    resolved, strerror(e), t->dir, arg);
	return tp_tool_tls_say(
	    t, TP_TOOL_TLS_EX_FAIL, "%s: %s", resolved, strerror(e));
}

void
tp_tool_tls_print_diags(const struct tp_config *cfg)
{
	for (size_t i = 0; i < cfg->ndiags; i++)
		fprintf(stderr, "%s\n", cfg->diags[i]);
}

/* load_config - read and parse the configuration once; 0 or exit code. */
static int
load_config(struct tp_tool_tls *t)
{
	char why[300];

	if (t->cfg != NULL)
		return 0;
	if (tp_ini_read_file(
		t->path, &t->text, &t->len, &t->st, why, sizeof(why)) < 0)
		return tp_tool_tls_say(
		    t, TP_TOOL_TLS_EX_FAIL, "%s: %s", t->path, why);
	t->cfg = tp_config_load_string(t->path, t->text);
	if (t->cfg == NULL)
		return tp_tool_tls_say(t, TP_TOOL_TLS_EX_FAIL, "out of memory");
	if (t->cfg->nerrors > 0) {
		tp_tool_tls_print_diags(t->cfg);
		return tp_tool_tls_say(t, TP_TOOL_TLS_EX_FAIL,
		    "%s has %d error%s: fix %s first "
		    "(tlsproxy -c %s -t)",
		    t->path, t->cfg->nerrors, t->cfg->nerrors == 1 ? "" : "s",
		    t->cfg->nerrors == 1 ? "it" : "them", t->path);
	}
	return 0;
}

static const char *
mode_name(enum tp_tool_tls_want w)
{
	return w == TP_TOOL_TLS_SERVER ? "server" : "client";
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
			(w == TP_TOOL_TLS_SERVER ? TP_MODE_SERVER
						 : TP_MODE_CLIENT))
			continue;
		o += (size_t)snprintf(buf + o, len - o, "%s%s", o ? ", " : "",
		    cfg->routes[i].name);
	}
	if (buf[0] == '\0')
		snprintf(buf, len, "none");
}

int
tp_tool_tls_pick_route(
    struct tp_tool_tls *t, enum tp_tool_tls_want w, bool strict)
{
	const struct tp_cfg_route *r = NULL;
	enum tp_mode m =
	    w == TP_TOOL_TLS_SERVER ? TP_MODE_SERVER : TP_MODE_CLIENT;
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
			return tp_tool_tls_say(t, TP_TOOL_TLS_EX_USAGE,
			    "no route [%s] in %s (routes: "
			    "%s)",
			    t->ropt, t->path, names);
		}
		if (strict && r->mode != m)
			return tp_tool_tls_say(t, TP_TOOL_TLS_EX_USAGE,
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
		return tp_tool_tls_say(t, TP_TOOL_TLS_EX_USAGE,
		    "%s has no %s route; name the route "
		    "with -r ROUTE (routes: %s)",
		    t->path, mode_name(w), names);
	}
	return tp_tool_tls_say(t, TP_TOOL_TLS_EX_USAGE,
	    "%s has %zu %s routes (%s): choose one with "
	    "-r ROUTE",
	    t->path, n, mode_name(w), names);
}

/* ------------------------------------------------------ route keys */

const struct tp_tool_tls_slot tp_tool_tls_slot_rsa = {
    TP_K_CERT_FILE, TP_K_KEY_FILE};
const struct tp_tool_tls_slot tp_tool_tls_slot_ec = {
    TP_K_ECCERT_FILE, TP_K_ECKEY_FILE};

const struct tp_cval *
tp_tool_tls_slot_key(const struct tp_cfg_route *r, struct tp_tool_tls_slot s)
{
	if (r->v[s.key].set)
		return &r->v[s.key];
	if (r->v[s.cert].set)
		return &r->v[s.cert];
	return NULL;
}

enum tp_x509_alg
tp_tool_tls_slot_alg(const struct tp_cfg_route *r, struct tp_tool_tls_slot s)
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

int
tp_tool_tls_route_key(struct tp_tool_tls *t, enum tp_x509_alg want,
    EVP_PKEY **key, const struct tp_cval **kv)
{
	const struct tp_cfg_route *r = t->route;
	const struct tp_cval *rsa =
	    tp_tool_tls_slot_key(r, tp_tool_tls_slot_rsa);
	const struct tp_cval *ec = tp_tool_tls_slot_key(r, tp_tool_tls_slot_ec);
	char why[300];

	*key = NULL;
	if (want == TP_X509_EC)
		*kv = ec ? ec
		    : tp_tool_tls_slot_alg(r, tp_tool_tls_slot_rsa) ==
			TP_X509_EC
		    ? rsa
		    : NULL;
	else if (want == TP_X509_RSA)
		*kv =
		    tp_tool_tls_slot_alg(r, tp_tool_tls_slot_rsa) == TP_X509_EC
		    ? NULL
		    : rsa;
	else
		*kv = rsa ? rsa : ec;
	if (*kv == NULL)
		return tp_tool_tls_say(t, TP_TOOL_TLS_EX_FAIL,
		    "route %s has no %s: make one with "
		    "new-server-key",
		    r->name,
		    want == TP_X509_EC ? "ECDSA key (eccert_file/eckey_file)"
			: want == TP_X509_RSA ? "RSA key (cert_file/key_file)"
					      : "key (cert_file/key_file or "
						"eccert_file/eckey_file)");
	if ((*key = tp_keys_load_key((*kv)->s, why, sizeof(why))) == NULL)
		return tp_tool_tls_say(t, TP_TOOL_TLS_EX_FAIL, "%s (%s:%d): %s",
		    (*kv)->s, t->path, (*kv)->line, why);
	if (want != TP_X509_NONE && tp_x509_key_alg(*key) != want) {
		EVP_PKEY_free(*key);
		*key = NULL;
		return tp_tool_tls_say(t, TP_TOOL_TLS_EX_FAIL,
		    "the key in %s (%s:%d) is not an %s "
		    "key",
		    (*kv)->s, t->path, (*kv)->line,
		    want == TP_X509_EC ? "ECDSA" : "RSA");
	}
	return 0;
}
