/*
 * tool_tls_rewrite.c - changing a route's settings in the configuration
 * file for `tlsproxy tls`: the checked rewrite (through tool_ini.c, only
 * when the rewritten text loads and the route's TLS context builds from
 * it), deploying a certificate and key pair after the checks of
 * deploy-server-cert, and telling how to have the daemon reload.
 *
 * Runs on the main thread of the short-lived `tls` process; no event
 * loop.  Called by deploy-server-cert, enable-server and enable-client.
 */
#include "tlsproxy/tool_tls_int.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "tlsproxy/config.h"
#include "tlsproxy/tls_ctx.h"
#include "tlsproxy/tls_keys.h"
#include "tlsproxy/tool_ini.h"
#include "tlsproxy/tool_x509.h"

void
tp_tool_tls_put_reload(const struct tp_tool_tls *t, FILE *f)
{
	const struct tp_cval *pid = &t->cfg->g[TP_K_PID_FILE];

	fprintf(f,
	    "Check the configuration, then reload tlsproxy (SIGHUP; "
	    "sessions in progress carry on):\n");
	fputs("  tlsproxy -c ", f);
	tp_tool_tls_put_arg(f, t->path);
	fputs(" -t\n", f);
	if (pid->set) {
		fputs("  kill -HUP $(cat ", f);
		tp_tool_tls_put_arg(f, pid->s);
		fputs(")\n", f);
	}
	fprintf(f, "  %ssystemctl reload tlsproxy\n",
	    pid->set ? "or, under systemd: " : "");
}

int
tp_tool_tls_rewrite_route(
    struct tp_tool_tls *t, const struct tp_ini_set *sets, size_t nsets)
{
	const struct tp_cfg_route *r2;
	struct tp_config *cfg2 = NULL;
	char why[400], *text = NULL;
	size_t len = 0;
	SSL_CTX *ctx;
	int failed = 0, rc = TP_TOOL_TLS_EX_FAIL;

	if (tp_ini_edit(t->text, t->len, t->route->name, sets, nsets, &text,
		&len, why, sizeof(why)) < 0)
		return tp_tool_tls_say(t, TP_TOOL_TLS_EX_FAIL,
		    "cannot rewrite %s: %s", t->path, why);
	if (memchr(text, '\0', len) != NULL ||
	    (cfg2 = tp_config_load_string(t->path, text)) == NULL) {
		tp_tool_tls_say(t, TP_TOOL_TLS_EX_FAIL,
		    "cannot check the rewritten %s", t->path);
		goto out;
	}
	if (cfg2->nerrors == 0 &&
	    (r2 = tp_config_route(cfg2, t->route->name)) != NULL) {
		ctx = tp_tls_ctx_new(cfg2, r2, &failed);
		SSL_CTX_free(ctx);
	}
	if (cfg2->nerrors > 0 || failed) {
		tp_tool_tls_print_diags(cfg2);
		tp_tool_tls_say(t, TP_TOOL_TLS_EX_FAIL,
		    "refused: with this change route %s would not "
		    "load (problems above, at the lines of the rewritten "
		    "file); %s is unchanged",
		    t->route->name, t->path);
		goto out;
	}
	if (tp_ini_replace_file(t->path, text, len, &t->st, why, sizeof(why)) <
	    0) {
		tp_tool_tls_say(t, TP_TOOL_TLS_EX_FAIL, "cannot write %s: %s",
		    t->path, why);
		goto out;
	}
	rc = TP_TOOL_TLS_EX_OK;
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
check_pair(const struct tp_tool_tls *t, const char *cert, const char *key_path,
    EVP_PKEY **key)
{
	STACK_OF(X509) * chain;
	X509 *leaf;
	char why[300];
	int rc = TP_TOOL_TLS_EX_FAIL;

	*key = NULL;
	if ((chain = tp_keys_load_chain(cert, why, sizeof(why))) == NULL)
		return tp_tool_tls_say(t, TP_TOOL_TLS_EX_FAIL,
		    "refused: certificate file %s: %s", cert, why);
	leaf = sk_X509_value(chain, 0);
	if (tp_keys_check_mode(key_path, why, sizeof(why)) < 0) {
		tp_tool_tls_say(t, TP_TOOL_TLS_EX_FAIL,
		    "refused: key file %s: %s (chmod 600 it)", key_path, why);
		goto out;
	}
	if ((*key = tp_keys_load_key(key_path, why, sizeof(why))) == NULL) {
		tp_tool_tls_say(t, TP_TOOL_TLS_EX_FAIL,
		    "refused: key file %s: %s", key_path, why);
		goto out;
	}
	if (X509_check_private_key(leaf, *key) != 1) {
		ERR_clear_error();
		tp_tool_tls_say(t, TP_TOOL_TLS_EX_FAIL,
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
	rc = TP_TOOL_TLS_EX_OK;
out:
	if (rc != TP_TOOL_TLS_EX_OK) {
		EVP_PKEY_free(*key);
		*key = NULL;
	}
	sk_X509_pop_free(chain, X509_free);
	return rc;
}

int
tp_tool_tls_deploy(struct tp_tool_tls *t, const char *cert, const char *key,
    const struct tp_ini_set *extra, size_t nextra,
    struct tp_tool_tls_slot *used)
{
	const struct tp_cfg_route *r = t->route;
	struct tp_ini_set sets[8];
	size_t n = 0;
	char *cpath = tp_tool_tls_resolve(t, cert),
	     *kpath = tp_tool_tls_resolve(t, key);
	EVP_PKEY *pkey = NULL;
	struct tp_tool_tls_slot s = tp_tool_tls_slot_rsa;
	int rc;

	if (cpath == NULL || kpath == NULL) {
		rc = tp_tool_tls_say(t, TP_TOOL_TLS_EX_FAIL, "out of memory");
		goto out;
	}
	if ((rc = tp_tool_tls_exists_or_say(t, cert, cpath)) != 0 ||
	    (rc = tp_tool_tls_exists_or_say(t, key, kpath)) != 0 ||
	    (rc = check_pair(t, cpath, kpath, &pkey)) != 0)
		goto out;
	if (tp_x509_key_alg(pkey) == TP_X509_EC &&
	    !(r->v[TP_K_CERT_FILE].set && !r->v[TP_K_ECCERT_FILE].set &&
		tp_tool_tls_slot_alg(r, tp_tool_tls_slot_rsa) == TP_X509_EC))
		s = tp_tool_tls_slot_ec;
	sets[n++] = (struct tp_ini_set){tp_keys[s.cert].name, cert};
	sets[n++] = (struct tp_ini_set){tp_keys[s.key].name, key};
	for (size_t i = 0; i < nextra && n < sizeof(sets) / sizeof(sets[0]);
	     i++)
		sets[n++] = extra[i];
	if ((rc = tp_tool_tls_rewrite_route(t, sets, n)) != 0)
		goto out;
	*used = s;
out:
	EVP_PKEY_free(pkey);
	free(cpath);
	free(kpath);
	return rc;
}
