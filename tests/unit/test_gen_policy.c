/*
 * test_gen_policy.c - a gateway route's runtime policies (gen_policy.c):
 * tp_gen_policy() finds the policy_file entry of a recipient domain, else
 * the route's default; levels, servername, shared contexts; the verify
 * settings resolve nexthop per session (a .parent entry checks each
 * subdomain against its own name), and fingerprints in sha256 and sha1
 * match, over real handshakes in memory (BIO pairs) with a self-signed
 * certificate that is also the trust anchor.  A broken policy_file or
 * ca_file fails the generation.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "tlsproxy/config.h"
#include "tlsproxy/gen.h"
#include "tlsproxy/gen_policy.h"
#include "tlsproxy/tls_ctx.h"
#include "tlsproxy/tls_keys.h"
#include "tlsproxy/tls_policy.h"
#include "tlsproxy/tls_verify.h"

#define MX "mx.sub.example.com" /* the server certificate's name */
#define ZERO256                                                                \
	"0000000000000000000000000000000000000000000000000000000000000000"

static char dir[64], ini[128], pol[128], ta[128], ca[128];
static char fp256[100], fp1[80], spki256[100]; /* hex with colons */
static X509 *cert;
static EVP_PKEY *key;
static struct tp_gen *gen;

static void
write_text(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	fputs(text, f);
	assert_int_equal(fclose(f), 0);
}

static void
hex(const unsigned char *md, unsigned n, char *out)
{
	for (unsigned i = 0; i < n; i++)
		sprintf(out + 3 * i, "%02X%s", md[i], i + 1 < n ? ":" : "");
}

static int
group_setup(void **state)
{
	unsigned char md[32], *der = NULL;
	unsigned int n;
	FILE *f;
	int dl;

	(void)state;
	tp_tls_init();
	strcpy(dir, "/tmp/tp_test_gen_policy.XXXXXX");
	if (mkdtemp(dir) == NULL)
		return -1;
	snprintf(ini, sizeof(ini), "%s/gw.ini", dir);
	snprintf(pol, sizeof(pol), "%s/tls_policy", dir);
	snprintf(ta, sizeof(ta), "%s/root.key", dir);
	snprintf(ca, sizeof(ca), "%s/ca.pem", dir);
	write_text(ta,
	    "test. 3600 IN DS 12345 13 2 "
	    "0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF"
	    "0123456789ABCDEF\n");
	if (tp_keys_selfsigned(MX, &cert, &key) < 0)
		return -1;
	/* the certificate is its own trust anchor: ca_file */
	if ((f = fopen(ca, "w")) == NULL || !PEM_write_X509(f, cert))
		return -1;
	fclose(f);
	X509_digest(cert, EVP_sha256(), md, &n);
	hex(md, n, fp256);
	X509_digest(cert, EVP_sha1(), md, &n);
	hex(md, n, fp1);
	dl = i2d_PUBKEY(X509_get0_pubkey(cert), &der);
	EVP_Digest(der, (size_t)dl, md, &n, EVP_sha256(), NULL);
	OPENSSL_free(der);
	hex(md, n, spki256);
	return 0;
}

static int
group_teardown(void **state)
{
	char cmd[128];

	(void)state;
	X509_free(cert);
	EVP_PKEY_free(key);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd) == 0 ? 0 : -1;
}

static int
teardown(void **state)
{
	(void)state;
	tp_gen_unref(gen);
	gen = NULL;
	return 0;
}

static void
dump(void)
{
	for (size_t i = 0; gen && i < gen->cfg->ndiags; i++)
		print_message("    %s\n", gen->cfg->diags[i]);
}

/* build - the generation of the gateway INI KEYS with POLICY as its file. */
static const struct tp_route_rt *
build(const char *keys, const char *policy)
{
	char text[2048];

	write_text(pol, policy);
	snprintf(text, sizeof(text),
	    "[global]\ndns_trust_anchor = root.key\n"
	    "[gw]\nmode = gateway\naccept = 127.0.0.1:10025\n"
	    "policy_file = tls_policy\nca_file = ca.pem\n%s",
	    keys);
	write_text(ini, text);
	tp_gen_unref(gen);
	gen = tp_gen_build(ini, NULL);
	assert_non_null(gen);
	if (gen->cfg->nerrors != 0) {
		dump();
		fail_msg("%d errors", gen->cfg->nerrors);
	}
	assert_int_equal(gen->nroutes, 1);
	return &gen->routes[0];
}

/*
 * handshake - a session of policy P to our server for recipient DOMAIN
 * (MX host MX): 0 when tp_verify_check passes, -1 when it fails, -2
 * when tp_verify_prepare_dest refuses; *trust gets the trust word.
 */
static int
handshake(const struct tp_dest_policy *p, const char *domain,
    const char **trust, char *why, size_t len)
{
	SSL_CTX *sctx = SSL_CTX_new(TLS_server_method());
	SSL *c, *s;
	BIO *cb, *sb;
	int rc, cr = -1, sr = -1;

	assert_non_null(sctx);
	assert_int_equal(SSL_CTX_use_certificate(sctx, cert), 1);
	assert_int_equal(SSL_CTX_use_PrivateKey(sctx, key), 1);
	c = SSL_new(p->ctx);
	s = SSL_new(sctx);
	assert_non_null(c);
	assert_non_null(s);
	assert_int_equal(BIO_new_bio_pair(&cb, 0, &sb, 0), 1);
	SSL_set_bio(c, cb, cb);
	SSL_set_bio(s, sb, sb);
	SSL_set_connect_state(c);
	SSL_set_accept_state(s);
	if (tp_verify_prepare_dest(c, p->verify, NULL, MX, domain) < 0) {
		rc = -2;
		goto out;
	}
	for (int i = 0; i < 20 && (cr != 1 || sr != 1); i++) {
		if (cr != 1)
			cr = SSL_do_handshake(c);
		if (sr != 1)
			sr = SSL_do_handshake(s);
	}
	assert_int_equal(cr, 1);
	assert_int_equal(sr, 1);
	why[0] = '\0';
	rc = tp_verify_check(c, p->verify, NULL, trust, why, len);
out:
	SSL_free(c);
	SSL_free(s);
	SSL_CTX_free(sctx);
	ERR_clear_error();
	return rc;
}

static void
test_lookup(void **state)
{
	const struct tp_route_rt *rt;
	const struct tp_dest_policy *p, *def;

	(void)state;
	rt = build("security = dane\n",
	    "# the gateway's table\n"                   /* 1 */
	    "example.com secure\n"                      /* 2 */
	    ".example.com verify servername=hostname\n" /* 3 */
	    "legacy.example none\n"                     /* 4 */
	    "may.example may\n"                         /* 5 */
	    "t13.example encrypt protocols=>=TLSv1.3\n" /* 6 */
	    "t13b.example may protocols=TLSv1.3\n"      /* 7 */
	    "hi.example encrypt ciphers=high\n"         /* 8 */
	    "dane.example dane-only\n"                  /* 9 */
	    "[mx.example.net]:25 encrypt\n");           /* 10 */
	assert_null(rt->ctx);
	assert_null(rt->verify);
	assert_non_null(rt->gw);
	/* not listed: the route's default */
	def = tp_gen_policy_default(rt);
	assert_non_null(def);
	p = tp_gen_policy(rt, "unlisted.example");
	assert_ptr_equal(p, def);
	assert_int_equal(p->security, TP_SEC_DANE);
	assert_non_null(p->ctx);
	assert_non_null(p->verify);
	assert_int_equal(p->verify->ntlsa, 0); /* records from DNS */
	assert_null(p->key);
	assert_int_equal(p->line, 0);
	assert_null(p->servername);
	/* the domain, its subdomains */
	p = tp_gen_policy(rt, "example.com");
	assert_int_equal(p->security, TP_SEC_SECURE);
	assert_string_equal(p->key, "example.com");
	assert_int_equal(p->line, 2);
	assert_ptr_equal(p->ctx, def->ctx); /* no settings of its own */
	p = tp_gen_policy(rt, "Sub.Example.COM");
	assert_int_equal(p->security, TP_SEC_VERIFY);
	assert_string_equal(p->key, ".example.com");
	assert_string_equal(p->servername, "hostname");
	/* none: a plain relay */
	p = tp_gen_policy(rt, "legacy.example");
	assert_int_equal(p->security, TP_SEC_NONE);
	assert_null(p->ctx);
	assert_null(p->verify);
	/* may and encrypt verify nothing */
	p = tp_gen_policy(rt, "may.example");
	assert_int_equal(p->security, TP_SEC_MAY);
	assert_null(p->verify);
	assert_ptr_equal(p->ctx, def->ctx);
	/* settings of their own: a context of their own, shared by the
	 * entries with the same resulting settings */
	p = tp_gen_policy(rt, "t13.example");
	assert_ptr_not_equal(p->ctx, def->ctx);
	assert_int_equal(SSL_CTX_get_min_proto_version(p->ctx), TP_PROTO_TLS13);
	assert_int_equal(
	    SSL_CTX_get_min_proto_version(def->ctx), TP_PROTO_TLS12);
	assert_ptr_equal(tp_gen_policy(rt, "t13b.example")->ctx, p->ctx);
	p = tp_gen_policy(rt, "hi.example");
	assert_ptr_not_equal(p->ctx, def->ctx);
	assert_ptr_not_equal(p->ctx, tp_gen_policy(rt, "t13.example")->ctx);
	/* dane-only: from DNS */
	p = tp_gen_policy(rt, "dane.example");
	assert_int_equal(p->security, TP_SEC_DANE_ONLY);
	assert_int_equal(p->verify->ntlsa, 0);
	/* an explicit nexthop key, asked for as such */
	p = tp_gen_policy(rt, "[mx.example.net]:25");
	assert_string_equal(p->key, "[mx.example.net]:25");
	assert_ptr_equal(tp_gen_policy(rt, "mx.example.net"), def);
	/* not a gateway */
	{
		struct tp_route_rt other = {0};

		assert_null(tp_gen_policy(&other, "example.com"));
		assert_null(tp_gen_policy_default(&other));
	}
}

static void
test_match_names(void **state)
{
	const struct tp_route_rt *rt;
	const struct tp_dest_policy *p;
	SSL *ssl;
	X509_VERIFY_PARAM *vp;

	(void)state;
	rt = build("security = secure\n",
	    "v.example verify\n"
	    "m.example secure match=nexthop:mx.m.example:.m.example\n");
	/* secure: nexthop and dot-nexthop, resolved per session */
	p = tp_gen_policy(rt, "other.example");
	assert_int_equal(p->verify->nnames, 2);
	assert_int_equal(p->verify->names[0].kind, TP_VNAME_NEXTHOP);
	assert_int_equal(p->verify->names[1].kind, TP_VNAME_DOT_NEXTHOP);
	assert_null(p->verify->nexthop);
	ssl = SSL_new(p->ctx);
	assert_int_equal(tp_verify_prepare_dest(ssl, p->verify, NULL,
			     "mx.other.example", "other.example"),
	    0);
	vp = SSL_get0_param(ssl);
	assert_string_equal(
	    X509_VERIFY_PARAM_get0_host(vp, 0), "other.example");
	assert_string_equal(
	    X509_VERIFY_PARAM_get0_host(vp, 1), ".other.example");
	assert_null(X509_VERIFY_PARAM_get0_host(vp, 2));
	SSL_free(ssl);
	/* without the destination a gateway's check is refused, never
	 * made with names left out */
	ssl = SSL_new(p->ctx);
	assert_int_equal(
	    tp_verify_prepare(ssl, p->verify, NULL, "mx.other.example"), -1);
	SSL_free(ssl);
	/* verify: hostname, the MX host */
	p = tp_gen_policy(rt, "v.example");
	assert_int_equal(p->verify->nnames, 1);
	assert_int_equal(p->verify->names[0].kind, TP_VNAME_HOSTNAME);
	ssl = SSL_new(p->ctx);
	assert_int_equal(
	    tp_verify_prepare(ssl, p->verify, NULL, "mx.v.example"), 0);
	assert_string_equal(X509_VERIFY_PARAM_get0_host(SSL_get0_param(ssl), 0),
	    "mx.v.example");
	SSL_free(ssl);
	/* the entry's own list */
	p = tp_gen_policy(rt, "m.example");
	assert_int_equal(p->verify->nnames, 3);
	assert_int_equal(p->verify->names[1].kind, TP_VNAME_LITERAL);
	assert_string_equal(p->verify->names[1].name, "mx.m.example");
	assert_string_equal(p->verify->names[2].name, ".m.example");
}

static void
test_handshakes(void **state)
{
	const struct tp_route_rt *rt;
	const char *trust;
	char why[300], text[1024];

	(void)state;
	snprintf(text, sizeof(text),
	    ".example.com secure\n"
	    "fp.example fingerprint match=%s\n"
	    "fp1.example fingerprint match=%s|%s\n"
	    "spki.example fingerprint fingerprint=%s\n"
	    "bad.example fingerprint match=%s\n"
	    "v.example verify\n"
	    "m.example verify match=" MX "\n",
	    fp256, ZERO256, fp1, spki256, ZERO256);
	rt = build("security = may\n", text);
	/* a .parent entry: each subdomain is its own nexthop */
	assert_int_equal(handshake(tp_gen_policy(rt, "sub.example.com"),
			     "sub.example.com", &trust, why, sizeof(why)),
	    0);
	assert_string_equal(trust, "Verified");
	assert_int_equal(handshake(tp_gen_policy(rt, "other.example.com"),
			     "other.example.com", &trust, why, sizeof(why)),
	    -1);
	assert_string_equal(trust, "Trusted");
	assert_string_equal(why, "name mismatch (names seen: " MX ")");
	/* fingerprints: sha256 and sha1 of the certificate, sha256 of its
	 * public key */
	assert_int_equal(handshake(tp_gen_policy(rt, "fp.example"),
			     "fp.example", &trust, why, sizeof(why)),
	    0);
	assert_string_equal(trust, "Verified");
	assert_int_equal(handshake(tp_gen_policy(rt, "fp1.example"),
			     "fp1.example", &trust, why, sizeof(why)),
	    0);
	assert_int_equal(handshake(tp_gen_policy(rt, "spki.example"),
			     "spki.example", &trust, why, sizeof(why)),
	    0);
	assert_int_equal(handshake(tp_gen_policy(rt, "bad.example"),
			     "bad.example", &trust, why, sizeof(why)),
	    -1);
	assert_string_equal(why, "fingerprint mismatch");
	/* verify: the MX host's name */
	assert_int_equal(handshake(tp_gen_policy(rt, "v.example"), "v.example",
			     &trust, why, sizeof(why)),
	    0);
	assert_int_equal(handshake(tp_gen_policy(rt, "m.example"), "m.example",
			     &trust, why, sizeof(why)),
	    0);
	/* may: nothing checked, the trust word still from ca_file */
	assert_int_equal(handshake(tp_gen_policy(rt, "any.example"),
			     "any.example", &trust, why, sizeof(why)),
	    0);
	assert_string_equal(trust, "Trusted");
}

static void
test_failures(void **state)
{
	char text[512], want[300];

	(void)state;
	/* a broken policy file: no generation */
	write_text(pol, "example.com secure\nexample.com may\n");
	snprintf(text, sizeof(text),
	    "[global]\ndns_trust_anchor = root.key\n"
	    "[gw]\nmode = gateway\naccept = 127.0.0.1:10025\n"
	    "policy_file = tls_policy\n");
	write_text(ini, text);
	gen = tp_gen_build(ini, NULL);
	assert_int_equal(gen->cfg->nerrors, 1);
	snprintf(want, sizeof(want),
	    "%s/tls_policy:2: duplicate key example.com (first at line 1)",
	    dir);
	assert_string_equal(gen->cfg->diags[0], want);
	assert_null(gen->routes);
	tp_gen_unref(gen);
	/* an unreadable ca_file: at its line */
	write_text(pol, "example.com secure\n");
	snprintf(text, sizeof(text),
	    "[global]\ndns_trust_anchor = root.key\n"
	    "[gw]\nmode = gateway\naccept = 127.0.0.1:10025\n"
	    "policy_file = tls_policy\nca_file = nope.pem\n");
	write_text(ini, text);
	gen = tp_gen_build(ini, NULL);
	assert_true(gen->cfg->nerrors >= 1);
	snprintf(want, sizeof(want),
	    "%s:7: cannot load trust anchors from "
	    "nope.pem",
	    ini);
	{
		bool found = false;

		for (size_t i = 0; i < gen->cfg->ndiags; i++)
			found |= strcmp(gen->cfg->diags[i], want) == 0;
		if (!found) {
			dump();
			fail_msg("no \"%s\"", want);
		}
	}
	assert_null(gen->routes[0].gw);
	tp_gen_unref(gen);
	/* a client certificate that does not load */
	snprintf(text, sizeof(text),
	    "[global]\ndns_trust_anchor = root.key\n"
	    "[gw]\nmode = gateway\naccept = 127.0.0.1:10025\n"
	    "security = none\ncert_file = nope.pem\n");
	write_text(ini, text);
	gen = tp_gen_build(ini, NULL);
	/* with security = none and no policy file nothing needs TLS */
	assert_int_equal(gen->cfg->nerrors, 0);
	assert_non_null(gen->routes[0].gw);
	assert_null(tp_gen_policy(&gen->routes[0], "x.example")->ctx);
}

int
main(void)
{
#define T(f) cmocka_unit_test_teardown(f, teardown)
	const struct CMUnitTest tests[] = {
	    T(test_lookup),
	    T(test_match_names),
	    T(test_handshakes),
	    T(test_failures),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
