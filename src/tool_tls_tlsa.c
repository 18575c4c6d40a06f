/*
 * tool_tls_tlsa.c - `tlsproxy tls output-server-tlsa`: the DANE TLSA
 * "3 1 1" records (RFC 7671 section 5.1, made by tool_x509.c) of the
 * route's keys or of the key or certificate files given, on stdout.
 *
 * Runs on the main thread of the short-lived `tls` process; no event
 * loop.  Called by tool_tls.c.
 */
#include "tlsproxy/tool_tls_int.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "tlsproxy/config.h"
#include "tlsproxy/tool_x509.h"

/* tlsa_file - the TLSA record for the key (or certificate) in ARG. */
static int
tlsa_file(struct tp_tool_tls *t, const char *arg, const char *path,
    const char *host, unsigned port)
{
	EVP_PKEY *key;
	int rc;

	if ((rc = tp_tool_tls_exists_or_say(t, arg, path)) != 0)
		return rc;
	if ((key = tp_x509_read_key(path)) == NULL)
		return tp_tool_tls_say(t, TP_TOOL_TLS_EX_FAIL,
		    "%s: no PEM private key or certificate", path);
	printf("; %s\n", path);
	rc = tp_x509_put_tlsa(stdout, "", host, port, key) < 0
	    ? tp_tool_tls_say(t, TP_TOOL_TLS_EX_FAIL,
		  "%s: cannot encode the public key", path)
	    : TP_TOOL_TLS_EX_OK;
	EVP_PKEY_free(key);
	return rc;
}

int
tp_tool_tls_output_server_tlsa(struct tp_tool_tls *t, int argc, char **argv)
{
	const struct tp_cval *kv;
	char hbuf[256], *path;
	unsigned long port = 25;
	const char *host;
	struct tp_tool_tls_opts o;
	int rc, found = 0;
	bool need_route;

	if ((rc = tp_tool_tls_get_opts(t, argc, argv, "h:p:r:", &o)) != 0)
		return rc;
	if (o.p != NULL) {
		char *end;

		errno = 0;
		port = strtoul(o.p, &end, 10);
		if (*o.p < '0' || *o.p > '9' || *end != '\0' || errno ||
		    port < 1 || port > 65535)
			return tp_tool_tls_say(t, TP_TOOL_TLS_EX_USAGE,
			    "bad port \"%s\": 1 to 65535", o.p);
	}
	if (o.h != NULL) {
		/* A fully qualified name with its final dot is fine here. */
		snprintf(hbuf, sizeof(hbuf), "%s", o.h);
		if (hbuf[0] != '\0' && hbuf[strlen(hbuf) - 1] == '.')
			hbuf[strlen(hbuf) - 1] = '\0';
		if (!tp_tool_tls_hostname_ok(hbuf))
			return tp_tool_tls_say(t, TP_TOOL_TLS_EX_USAGE,
			    "bad hostname \"%s\": use a DNS name", o.h);
	}
	need_route = o.h == NULL || o.argc == 0 || t->ropt != NULL;
	for (int i = 0; i < o.argc; i++)
		if (strcmp(o.argv[i], "rsa") == 0 ||
		    strcmp(o.argv[i], "ecdsa") == 0)
			need_route = true;
	if (need_route &&
	    (rc = tp_tool_tls_pick_route(t, TP_TOOL_TLS_SERVER, false)) != 0)
		return rc;
	host = hbuf;
	if (o.h == NULL)
		tp_tool_tls_default_host(t->route, hbuf, sizeof(hbuf));
	if (o.argc == 0) {
		static char *both[] = {"rsa", "ecdsa"};

		o.argc = 2;
		o.argv = both;
	}
	for (int i = 0; i < o.argc; i++) {
		enum tp_x509_alg a = TP_X509_NONE;

		if (tp_tool_tls_parse_alg(o.argv[i], &a) == 0) {
			/* The route's pair of that kind, if it has one. */
			kv = tp_tool_tls_slot_key(t->route,
			    a == TP_X509_EC ? tp_tool_tls_slot_ec
					    : tp_tool_tls_slot_rsa);
			if (kv == NULL)
				continue;
			rc = tlsa_file(t, kv->raw, kv->s, host, (unsigned)port);
		} else {
			if ((path = tp_tool_tls_resolve(t, o.argv[i])) == NULL)
				return tp_tool_tls_say(
				    t, TP_TOOL_TLS_EX_FAIL, "out of memory");
			rc =
			    tlsa_file(t, o.argv[i], path, host, (unsigned)port);
			free(path);
		}
		if (rc != 0)
			return rc;
		found++;
	}
	if (found == 0)
		return tp_tool_tls_say(t, TP_TOOL_TLS_EX_FAIL,
		    "route %s has no cert_file or "
		    "eccert_file: it serves a self-signed certificate made "
		    "at each start, which no TLSA record can match (make a "
		    "key with new-server-key)",
		    t->route->name);
	return TP_TOOL_TLS_EX_OK;
}
