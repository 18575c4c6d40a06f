/*
 * tls_server.c - server-role extras on a route's SSL_CTX: certificates
 * chosen by SNI (`sni`), client certificates (`ask_ccert`, `req_ccert`,
 * verified against ca_file/ca_path) and session-ticket keys shared by a
 * fleet (`ticket_key_file`, re-read on reload).  The extra state hangs off
 * the SSL_CTX as ex_data and is freed with it.  Built on the main thread;
 * the callbacks run on worker threads and only read that state.
 */
#include "tlsproxy/tls_server.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "tlsproxy/config.h"
#include "tlsproxy/parse.h"
#include "tlsproxy/tls_keys.h"

#define TICKET_KEY_LEN  80 /* 16 name, 32 HMAC, 32 AES-256 */
#define MAX_TICKET_KEYS 16

struct ticket_key {
	unsigned char name[16], hmac[32], aes[32];
};

struct server_extra {
	size_t nsni;
	char **sni_names;
	SSL_CTX **sni_ctx;
	size_t nkeys;
	struct ticket_key keys[MAX_TICKET_KEYS];
};

static int extra_index = -1;

static void
extra_free(
    void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl, void *argp)
{
	struct server_extra *x = ptr;

	(void)parent, (void)ad, (void)idx, (void)argl, (void)argp;
	if (x == NULL)
		return;
	for (size_t i = 0; i < x->nsni; i++) {
		free(x->sni_names[i]);
		SSL_CTX_free(x->sni_ctx[i]);
	}
	free(x->sni_names);
	free(x->sni_ctx);
	OPENSSL_cleanse(x->keys, sizeof(x->keys));
	free(x);
}

static struct server_extra *
extra_of(SSL_CTX *ctx)
{
	struct server_extra *x;

	if (extra_index < 0)
		extra_index =
		    SSL_CTX_get_ex_new_index(0, NULL, NULL, NULL, extra_free);
	x = SSL_CTX_get_ex_data(ctx, extra_index);
	if (x == NULL) {
		if ((x = calloc(1, sizeof(*x))) == NULL)
			abort();
		SSL_CTX_set_ex_data(ctx, extra_index, x);
	}
	return x;
}

/* sni_match - exact (any case), or "*.rest" for one more label. */
static bool
sni_match(const char *pattern, const char *name)
{
	const char *dot;

	if (strcasecmp(pattern, name) == 0)
		return true;
	if (pattern[0] != '*' || pattern[1] != '.')
		return false;
	dot = strchr(name, '.');
	return dot != NULL && dot != name && strcasecmp(dot, pattern + 1) == 0;
}

static int
server_on_servername(SSL *ssl, int *alert, void *arg)
{
	struct server_extra *x = arg;
	const char *name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);

	(void)alert;
	if (name == NULL)
		return SSL_TLSEXT_ERR_NOACK;
	for (int pass = 0; pass < 2; pass++)
		for (size_t i = 0; i < x->nsni; i++) {
			bool wild = x->sni_names[i][0] == '*';

			if (wild == (pass == 1) &&
			    sni_match(x->sni_names[i], name)) {
				SSL_set_SSL_CTX(ssl, x->sni_ctx[i]);
				return SSL_TLSEXT_ERR_OK;
			}
		}
	return SSL_TLSEXT_ERR_NOACK; /* the default chain */
}

static int
ticket_on_key(SSL *ssl, unsigned char *name, unsigned char *iv,
    EVP_CIPHER_CTX *cctx, EVP_MAC_CTX *hctx, int enc)
{
	struct server_extra *x = extra_of(SSL_get_SSL_CTX(ssl));
	const struct ticket_key *k = NULL;
	OSSL_PARAM params[2];

	if (x->nkeys == 0)
		return -1; /* never a ticket under no key */
	if (enc) {
		k = &x->keys[0];
		memcpy(name, k->name, 16);
		if (RAND_bytes(iv, 16) <= 0 ||
		    !EVP_EncryptInit_ex(
			cctx, EVP_aes_256_cbc(), NULL, k->aes, iv))
			return -1;
	} else {
		for (size_t i = 0; i < x->nkeys && k == NULL; i++)
			if (memcmp(name, x->keys[i].name, 16) == 0)
				k = &x->keys[i];
		if (k == NULL)
			return 0; /* unknown key: full handshake */
		if (!EVP_DecryptInit_ex(
			cctx, EVP_aes_256_cbc(), NULL, k->aes, iv))
			return -1;
	}
	params[0] = OSSL_PARAM_construct_utf8_string(
	    OSSL_MAC_PARAM_DIGEST, (char *)"SHA256", 0);
	params[1] = OSSL_PARAM_construct_end();
	if (!EVP_MAC_init(hctx, k->hmac, 32, params))
		return -1;
	/* 2: decrypted with an older key, issue a new ticket */
	return !enc && k != &x->keys[0] ? 2 : 1;
}

/* load_ticket_keys - base64 lines of 80 bytes; the first encrypts. */
static int
load_ticket_keys(
    struct tp_config *cfg, const struct tp_cval *v, struct server_extra *x)
{
	char line[256], why[200];
	unsigned char raw[TICKET_KEY_LEN + 4];
	FILE *f;
	int n;

	if (tp_keys_check_mode(v->s, why, sizeof(why)) < 0) {
		tp_config_diag(
		    cfg, v->line, false, "ticket_key_file %s: %s", v->raw, why);
		return -1;
	}
	if ((f = fopen(v->s, "r")) == NULL) {
		tp_config_diag(
		    cfg, v->line, false, "ticket_key_file %s: %m", v->raw);
		return -1;
	}
	while (fgets(line, sizeof(line), f) != NULL) {
		line[strcspn(line, "\r\n")] = '\0';
		if (line[0] == '\0' || line[0] == '#')
			continue;
		n = EVP_DecodeBlock(
		    raw, (unsigned char *)line, (int)strlen(line));
		/* EVP_DecodeBlock counts '=' padding as zero bytes */
		if (n -
			    (int)(strchr(line, '=') ? strlen(strchr(line, '='))
						    : 0) !=
			TICKET_KEY_LEN ||
		    x->nkeys == MAX_TICKET_KEYS) {
			tp_config_diag(cfg, v->line, false,
			    "ticket_key_file "
			    "%s: each line must be %d bytes in base64 (head "
			    "-c %d /dev/urandom | base64 -w0), at most %d "
			    "lines",
			    v->raw, TICKET_KEY_LEN, TICKET_KEY_LEN,
			    MAX_TICKET_KEYS);
			fclose(f);
			return -1;
		}
		memcpy(x->keys[x->nkeys].name, raw, 16);
		memcpy(x->keys[x->nkeys].hmac, raw + 16, 32);
		memcpy(x->keys[x->nkeys].aes, raw + 48, 32);
		x->nkeys++;
	}
	fclose(f);
	OPENSSL_cleanse(raw, sizeof(raw));
	if (x->nkeys == 0) {
		tp_config_diag(cfg, v->line, false,
		    "ticket_key_file %s: no "
		    "key",
		    v->raw);
		return -1;
	}
	return 0;
}

static int
ccert_accept_any(int ok, X509_STORE_CTX *store)
{
	(void)ok;
	(void)store;
	return 1; /* ask_ccert: ask, log, never refuse */
}

/*
 * server_ccert - client certificates on ctx (the route's own or an SNI
 * one: after the switch OpenSSL verifies with the new context's store).
 */
static void
server_ccert(struct tp_config *cfg, const struct tp_cfg_route *r, SSL_CTX *ctx,
    bool report)
{
	const struct tp_cval *v = r->v;
	const struct tp_cval *ca = &v[TP_K_CA_FILE], *cap = &v[TP_K_CA_PATH];

	if (v[TP_K_ASK_CCERT].n || v[TP_K_REQ_CCERT].n) {
		if (ca->set || cap->set) {
			if (!SSL_CTX_load_verify_locations(ctx,
				ca->set ? ca->s : NULL,
				cap->set ? cap->s : NULL) &&
			    report)
				tp_config_diag(cfg,
				    ca->set ? ca->line : cap->line, false,
				    "cannot load trust "
				    "anchors");
			if (ca->set)
				SSL_CTX_set_client_CA_list(
				    ctx, SSL_load_client_CA_file(ca->s));
			ERR_clear_error();
		} else if (v[TP_K_REQ_CCERT].n && report) {
			tp_config_diag(cfg, v[TP_K_REQ_CCERT].line, false,
			    "req_ccert needs ca_file or ca_path to verify "
			    "client certificates against");
		}
		if (v[TP_K_REQ_CCERT].n)
			SSL_CTX_set_verify(ctx,
			    SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT,
			    NULL);
		else
			SSL_CTX_set_verify(
			    ctx, SSL_VERIFY_PEER, ccert_accept_any);
	}
}

int
tp_tls_server_setup(struct tp_config *cfg, const struct tp_cfg_route *r,
    SSL_CTX *ctx, tp_tls_ctx_factory make)
{
	const struct tp_cval *v = r->v;
	struct server_extra *x = extra_of(ctx), *sx;
	int errs = cfg->nerrors;

	server_ccert(cfg, r, ctx, true);
	if (v[TP_K_TICKET_KEY_FILE].set && v[TP_K_SESSION_TICKETS].n &&
	    load_ticket_keys(cfg, &v[TP_K_TICKET_KEY_FILE], x) == 0)
		SSL_CTX_set_tlsext_ticket_key_evp_cb(ctx, ticket_on_key);
	for (size_t i = 0; i < v[TP_K_SNI].nlist; i++) {
		const char *p = v[TP_K_SNI].list[i];
		char name[TP_HOST_MAX], cert[512], key[512] = "";
		SSL_CTX *sctx;

		if (tp_list_next(&p, name, sizeof(name)) <= 0 ||
		    tp_list_next(&p, cert, sizeof(cert)) <= 0 ||
		    tp_list_next(&p, key, sizeof(key)) < 0) {
			tp_config_diag(cfg, v[TP_K_SNI].lines[i], false,
			    "sni: expected NAME CERTFILE [KEYFILE]");
			continue;
		}
		sctx = make(
		    cfg, r, v[TP_K_SNI].lines[i], cert, key[0] ? key : cert);
		if (sctx == NULL)
			continue;
		/* the same client-certificate and ticket settings */
		server_ccert(cfg, r, sctx, false);
		if (x->nkeys > 0) {
			sx = extra_of(sctx);
			memcpy(sx->keys, x->keys, sizeof(x->keys));
			sx->nkeys = x->nkeys;
			SSL_CTX_set_tlsext_ticket_key_evp_cb(
			    sctx, ticket_on_key);
		}
		x->sni_names =
		    realloc(x->sni_names, (x->nsni + 1) * sizeof(char *));
		x->sni_ctx =
		    realloc(x->sni_ctx, (x->nsni + 1) * sizeof(SSL_CTX *));
		if (x->sni_names == NULL || x->sni_ctx == NULL)
			abort();
		x->sni_names[x->nsni] = strdup(name);
		x->sni_ctx[x->nsni++] = sctx;
	}
	if (x->nsni > 0) {
		SSL_CTX_set_tlsext_servername_callback(
		    ctx, server_on_servername);
		SSL_CTX_set_tlsext_servername_arg(ctx, x);
	}
	return cfg->nerrors == errs ? 0 : -1;
}
