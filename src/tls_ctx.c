/*
 * tls_ctx.c - SSL_CTX per route from its policy and keys.
 *
 * Both roles: protocol range, cipher grade and exclusions (tls_policy),
 * release buffers when idle, no renegotiation, no compression.
 * Server: an RSA (or any) chain from cert_file and an ECDSA chain from
 * eccert_file in the same SSL_CTX; OpenSSL gives each client the chain its
 * signature algorithms support.  Without either, a self-signed P-256
 * certificate made at start.  Client: verification runs but does not stop
 * the handshake; the result decides the trust word in the log (and, in a
 * later issue, the verify levels).  Main thread only.
 */
#include "tlsproxy/tls_ctx.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "tlsproxy/config.h"
#include "tlsproxy/tls_keys.h"
#include "tlsproxy/tls_policy.h"
#include "tlsproxy/tls_server.h"

void
tp_tls_init(void)
{
	OPENSSL_init_ssl(
	    OPENSSL_INIT_LOAD_SSL_STRINGS | OPENSSL_INIT_LOAD_CRYPTO_STRINGS,
	    NULL);
}

/*
 * load_pair - one certificate chain and its key into ctx.  Problems are
 * reported at the line of the key that names the file.
 */
static int
load_pair(struct tp_config *cfg, SSL_CTX *ctx, const struct tp_cval *cert,
    const struct tp_cval *key, const char *certkey, const char *keykey,
    bool want_ec)
{
	const struct tp_cval *kv = key->set ? key : cert;
	STACK_OF(X509) *chain = NULL;
	EVP_PKEY *pkey = NULL;
	X509 *leaf;
	char why[300];
	int rc = -1;

	if ((chain = tp_keys_load_chain(cert->s, why, sizeof(why))) == NULL) {
		tp_config_diag(cfg, cert->line, false, "%s %s: %s", certkey,
		    cert->raw, why);
		return -1;
	}
	leaf = sk_X509_shift(chain);
	if (tp_keys_check_mode(kv->s, why, sizeof(why)) < 0) {
		tp_config_diag(cfg, kv->line, false, "%s %s: %s",
		    key->set ? keykey : certkey, kv->raw, why);
		goto out;
	}
	if ((pkey = tp_keys_load_key(kv->s, why, sizeof(why))) == NULL) {
		tp_config_diag(cfg, kv->line, false, "%s %s: %s",
		    key->set ? keykey : certkey, kv->raw, why);
		goto out;
	}
	if (!X509_check_private_key(leaf, pkey)) {
		ERR_clear_error();
		tp_config_diag(cfg, kv->line, false,
		    "%s %s does not match the certificate in %s %s",
		    key->set ? keykey : certkey, kv->raw, certkey, cert->raw);
		goto out;
	}
	if (want_ec && EVP_PKEY_get_base_id(pkey) != EVP_PKEY_EC) {
		tp_config_diag(cfg, cert->line, false,
		    "%s %s: not an ECDSA certificate", certkey, cert->raw);
		goto out;
	}
	if (!SSL_CTX_use_cert_and_key(ctx, leaf, pkey, chain, 1)) {
		tp_config_diag(cfg, cert->line, false,
		    "%s %s: rejected by "
		    "OpenSSL (%s)",
		    certkey, cert->raw,
		    ERR_reason_error_string(ERR_peek_last_error()));
		ERR_clear_error();
		goto out;
	}
	rc = 0;
out:
	X509_free(leaf);
	EVP_PKEY_free(pkey);
	sk_X509_pop_free(chain, X509_free);
	return rc;
}

static int
use_selfsigned(
    struct tp_config *cfg, SSL_CTX *ctx, const struct tp_cfg_route *r)
{
	char host[256] = "localhost";
	EVP_PKEY *key;
	X509 *x;
	int ok;

	if (gethostname(host, sizeof(host) - 1) < 0 || host[0] == '\0')
		strcpy(host, "localhost");
	host[sizeof(host) - 1] = '\0';
	if (tp_keys_selfsigned(host, &x, &key) < 0) {
		tp_config_diag(cfg, r->line, false,
		    "route %s: cannot make a self-signed certificate", r->name);
		return -1;
	}
	ok = SSL_CTX_use_cert_and_key(ctx, x, key, NULL, 1);
	X509_free(x);
	EVP_PKEY_free(key);
	return ok ? 0 : -1;
}

void
tp_tls_params_route(const struct tp_cfg_route *r, struct tp_tls_params *p)
{
	const struct tp_cval *v = r->v;

	memset(p, 0, sizeof(*p));
	p->proto_min = r->proto_min;
	p->proto_max = r->proto_max;
	p->grade = v[TP_K_CIPHERS].e;
	p->exclude = v[TP_K_EXCLUDE_CIPHERS].raw;
	p->protocols = v[TP_K_PROTOCOLS].raw;
	p->prefix = "";
	p->proto_line = v[TP_K_PROTOCOLS].line;
	p->cipher_line = v[TP_K_EXCLUDE_CIPHERS].set
	    ? v[TP_K_EXCLUDE_CIPHERS].line
	    : v[TP_K_CIPHERS].line;
}

/*
 * ctx_base - a context with protocol range and ciphers from p, and the
 * route's modes, options and session settings, without certificates.
 */
static SSL_CTX *
ctx_base(struct tp_config *cfg, const struct tp_cfg_route *r,
    const struct tp_tls_params *p)
{
	const struct tp_cval *v = r->v;
	bool server = r->mode == TP_MODE_SERVER;
	char ciphers[1024];
	SSL_CTX *ctx;

	ctx = SSL_CTX_new(server ? TLS_server_method() : TLS_client_method());
	if (ctx == NULL) {
		tp_config_diag(cfg, r->line, false,
		    "route %s: SSL_CTX_new "
		    "failed",
		    r->name);
		return NULL;
	}
	SSL_CTX_set_mode(ctx,
	    SSL_MODE_RELEASE_BUFFERS | SSL_MODE_ENABLE_PARTIAL_WRITE |
		SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	SSL_CTX_set_options(ctx,
	    SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION |
		(server ? SSL_OP_CIPHER_SERVER_PREFERENCE : 0));
	if (p->proto_min < TP_PROTO_TLS12 || p->grade == TP_GRADE_NULL)
		SSL_CTX_set_security_level(ctx, 0);
	if (!SSL_CTX_set_min_proto_version(ctx, p->proto_min) ||
	    !SSL_CTX_set_max_proto_version(ctx, p->proto_max)) {
		tp_config_diag_at(cfg, p->file, p->proto_line, false,
		    "%sprotocols%s%s: not supported by this OpenSSL", p->prefix,
		    p->file ? "=" : " = ", p->protocols);
		ERR_clear_error();
	}
	if (tp_policy_cipherlist((enum tp_grade)p->grade, p->exclude, ciphers,
		sizeof(ciphers)) < 0 ||
	    !SSL_CTX_set_cipher_list(ctx, ciphers)) {
		tp_config_diag_at(cfg, p->file, p->cipher_line, false,
		    "%sciphers: OpenSSL accepts no cipher from \"%s\"",
		    p->prefix, ciphers);
		ERR_clear_error();
	}
	if (server) {
		static const unsigned char sid_ctx[] = "tlsproxy";

		SSL_CTX_set_session_id_context(
		    ctx, sid_ctx, sizeof(sid_ctx) - 1);
		/*
		 * session_tickets = no means no resumption at all, as
		 * Postfix's smtpd_tls_session_cache_timeout = 0: without
		 * tickets OpenSSL would still resume from its own cache, by
		 * session id (TLS 1.2) or a stateful ticket (TLS 1.3).  So
		 * the cache is off, and TLS 1.3 sends no ticket either.
		 */
		if (!v[TP_K_SESSION_TICKETS].n) {
			SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
			SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
			SSL_CTX_set_num_tickets(ctx, 0);
		} else {
			/* One TLS 1.3 ticket per handshake, as Postfix's smtpd:
			 * an MTA keeps one session per destination, and each
			 * ticket costs an encryption and a session copy. */
			SSL_CTX_set_num_tickets(ctx, 1);
		}
	} else {
		/* Verification is evaluated after the handshake. */
		SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
		SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	}
	return ctx;
}

/* sni_ctx_new - the context for one `sni` entry (tls_server.c). */
static SSL_CTX *
sni_ctx_new(struct tp_config *cfg, const struct tp_cfg_route *r, int line,
    const char *cert, const char *key)
{
	struct tp_cval cv = {.set = true, .line = line, .raw = (char *)cert};
	struct tp_cval kv = {.set = true, .line = line, .raw = (char *)key};
	int errs = cfg->nerrors;
	struct tp_tls_params p;
	SSL_CTX *ctx;

	tp_tls_params_route(r, &p);
	if ((ctx = ctx_base(cfg, r, &p)) == NULL)
		return NULL;
	cv.s = tp_config_resolve(cfg, cert);
	kv.s = tp_config_resolve(cfg, key);
	load_pair(cfg, ctx, &cv, &kv, "sni", "sni", false);
	free(cv.s);
	free(kv.s);
	if (cfg->nerrors != errs) {
		SSL_CTX_free(ctx);
		return NULL;
	}
	return ctx;
}

SSL_CTX *
tp_tls_ctx_new(struct tp_config *cfg, const struct tp_cfg_route *r, int *failed)
{
	const struct tp_cval *v = r->v;
	struct tp_tls_params p;
	SSL_CTX *ctx;
	int errs = cfg->nerrors;

	*failed = 0;
	if (r->security == TP_SEC_NONE)
		return NULL;
	tp_tls_params_route(r, &p);
	if ((ctx = ctx_base(cfg, r, &p)) == NULL) {
		*failed = 1;
		return NULL;
	}
	if (v[TP_K_CERT_FILE].set)
		load_pair(cfg, ctx, &v[TP_K_CERT_FILE], &v[TP_K_KEY_FILE],
		    "cert_file", "key_file", false);
	if (v[TP_K_ECCERT_FILE].set)
		load_pair(cfg, ctx, &v[TP_K_ECCERT_FILE], &v[TP_K_ECKEY_FILE],
		    "eccert_file", "eckey_file", true);
	if (r->mode == TP_MODE_SERVER) {
		if (!v[TP_K_CERT_FILE].set && !v[TP_K_ECCERT_FILE].set)
			use_selfsigned(cfg, ctx, r);
		tp_tls_server_setup(cfg, r, ctx, sni_ctx_new);
	}
	if (cfg->nerrors != errs) {
		SSL_CTX_free(ctx);
		*failed = 1;
		return NULL;
	}
	return ctx;
}

SSL_CTX *
tp_tls_ctx_client(struct tp_config *cfg, const struct tp_cfg_route *r,
    const struct tp_tls_params *p)
{
	const struct tp_cval *v = r->v;
	int errs = cfg->nerrors;
	SSL_CTX *ctx;

	if ((ctx = ctx_base(cfg, r, p)) == NULL)
		return NULL;
	if (v[TP_K_CERT_FILE].set)
		load_pair(cfg, ctx, &v[TP_K_CERT_FILE], &v[TP_K_KEY_FILE],
		    "cert_file", "key_file", false);
	if (cfg->nerrors != errs) {
		SSL_CTX_free(ctx);
		return NULL;
	}
	return ctx;
}
