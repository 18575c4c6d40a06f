/*
 * tool_tls_enable.c - the `tlsproxy tls` verbs about a route's TLS
 * settings as a whole: enable-server, enable-client, all-default-server
 * and all-default-client, and which keys count as TLS settings.
 *
 * enable-server, on a route with no TLS key set (is_tls_key()), makes a
 * key and a self-signed certificate as new-server-key does and deploys
 * them with security = may.  enable-client writes security = encrypt,
 * the default of client routes: Postfix's enable-client writes "may"
 * because Postfix's own default is no TLS; here "may" would weaken the
 * default (and acts as encrypt on an implicit-TLS route).  On a route
 * with a TLS key set, both print typical settings, change nothing and
 * exit 0, as postfix-tls(1) does.
 *
 * Runs on the main thread of the short-lived `tls` process; no event
 * loop.  Called by tool_tls.c.
 */
#include "tlsproxy/tool_tls_int.h"

#include <stdbool.h>
#include <stdio.h>

#include <openssl/evp.h>

#include "tlsproxy/config.h"
#include "tlsproxy/tool_ini.h"
#include "tlsproxy/tool_x509.h"

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
list_set(const struct tp_cfg_route *r, enum tp_tool_tls_want w, FILE *f)
{
	enum tp_kscope own = w == TP_TOOL_TLS_SERVER ? S : C;
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

/* not_default - the "no changes made" report of enable-*. */
static int
not_default(struct tp_tool_tls *t, enum tp_tool_tls_want w)
{
	printf(
	    "*** Route [%s] has non-default TLS settings; no changes made:\n",
	    t->route->name);
	list_set(t->route, w, stdout);
	if (w == TP_TOOL_TLS_SERVER) {
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
	return TP_TOOL_TLS_EX_OK;
}

int
tp_tool_tls_enable_server(struct tp_tool_tls *t, int argc, char **argv)
{
	static const struct tp_ini_set may = {"security", "may"};
	const char *hosts[TP_X509_MAX_HOSTS];
	char hbuf[256];
	struct tp_x509_files nf;
	struct tp_x509_keyspec ks;
	struct tp_tool_tls_opts o;
	struct tp_tool_tls_slot s;
	EVP_PKEY *key = NULL;
	int nhosts, rc;

	if ((rc = tp_tool_tls_get_opts(t, argc, argv, "a:b:r:", &o)) != 0 ||
	    (rc = tp_tool_tls_parse_keyspec(t, o.a, o.b, &ks)) != 0 ||
	    (rc = tp_tool_tls_pick_route(t, TP_TOOL_TLS_SERVER, true)) != 0 ||
	    (rc = tp_tool_tls_get_hosts(
		 t, o.argc, o.argv, hosts, &nhosts, hbuf, sizeof(hbuf))) != 0)
		return rc;
	if (list_set(t->route, TP_TOOL_TLS_SERVER, NULL) > 0)
		return not_default(t, TP_TOOL_TLS_SERVER);
	if ((rc = tp_tool_tls_new_key_and_cert(
		 t, &ks, hosts, nhosts, &key, &nf)) != 0)
		return rc;
	tp_tool_tls_put_created(key, &nf, hosts, nhosts);
	EVP_PKEY_free(key);
	if ((rc = tp_tool_tls_deploy(t, nf.cname, nf.kname, &may, 1, &s)) !=
	    0) {
		tp_tool_tls_say(t, rc, "the new files stay in %s", t->dir);
		tp_x509_files_free(&nf, false);
		return rc;
	}
	printf("\nEnabled TLS on server route [%s] in %s:\n  %s = %s\n  %s = "
	       "%s\n  security = may\n",
	    t->route->name, t->path, tp_keys[s.cert].name, nf.cname,
	    tp_keys[s.key].name, nf.kname);
	tp_tool_tls_put_reload(t, stdout);
	tp_x509_files_free(&nf, false);
	return TP_TOOL_TLS_EX_OK;
}

/* route_only - a verb that takes -r ROUTE and nothing else: pick it. */
static int
route_only(
    struct tp_tool_tls *t, int argc, char **argv, enum tp_tool_tls_want w)
{
	struct tp_tool_tls_opts o;
	int rc;

	if ((rc = tp_tool_tls_get_opts(t, argc, argv, "r:", &o)) != 0)
		return rc;
	if (o.argc != 0) {
		tp_tool_tls_say(
		    t, TP_TOOL_TLS_EX_USAGE, "no arguments expected");
		return tp_tool_tls_usage(t->cmd);
	}
	return tp_tool_tls_pick_route(t, w, true);
}

int
tp_tool_tls_enable_client(struct tp_tool_tls *t, int argc, char **argv)
{
	static const struct tp_ini_set enc = {"security", "encrypt"};
	int rc;

	if ((rc = route_only(t, argc, argv, TP_TOOL_TLS_CLIENT)) != 0)
		return rc;
	if (list_set(t->route, TP_TOOL_TLS_CLIENT, NULL) > 0)
		return not_default(t, TP_TOOL_TLS_CLIENT);
	/* A client route's default level is already encrypt: enabling
	 * writes it down (Postfix's "may" would be weaker than our
	 * default, and acts as encrypt on an implicit-TLS route anyway). */
	if ((rc = tp_tool_tls_rewrite_route(t, &enc, 1)) != 0)
		return rc;
	printf("Enabled TLS on client route [%s] in %s:\n  security = encrypt"
	       "    ; TLS required, certificate not checked\n"
	       "For verification set security = verify and ca_file (and "
	       "match or nexthop\nfor an IP-literal connect).\n",
	    t->route->name, t->path);
	tp_tool_tls_put_reload(t, stdout);
	return TP_TOOL_TLS_EX_OK;
}

int
tp_tool_tls_all_default(
    struct tp_tool_tls *t, int argc, char **argv, enum tp_tool_tls_want w)
{
	int rc;

	if ((rc = route_only(t, argc, argv, w)) != 0)
		return rc;
	if (list_set(t->route, w, NULL) == 0)
		return TP_TOOL_TLS_EX_OK;
	printf("route [%s]: TLS settings not at their defaults:\n",
	    t->route->name);
	list_set(t->route, w, stdout);
	return TP_TOOL_TLS_EX_FAIL;
}
