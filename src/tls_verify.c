/*
 * tls_verify.c - Postfix's verification levels on OpenSSL (RFC 6125 name
 * checks, RFC 7672 DANE).
 *
 * The handshake always completes (SSL_VERIFY_NONE): the outcome is judged
 * here afterwards, so that a failure reaches the local MTA as our own
 * 421 4.7.5 with the reason instead of a bare TLS alert.  OpenSSL still
 * runs the chain, host and DANE checks during the handshake and records
 * the result; a resumed session keeps the result it was verified with
 * (and the client session cache is emptied on reload, sesscache.c).
 * match: "hostname" (the name connected to), "nexthop", "dot-nexthop"
 * (any subdomain of it), a literal name, or ".suffix" (any subdomain);
 * wildcards only as a whole left-most label (no partial wildcards).
 * Names come from subjectAltName DNS entries, the CN only when there are
 * none (OpenSSL's X509_check_host).  OpenSSL only; no libuv.
 */
#include "tlsproxy/common.h"
#include "tlsproxy/tls_verify.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509v3.h>

#include "tlsproxy/config.h"
#include "tlsproxy/parse.h"
#include "tlsproxy/tls_policy.h"

struct tp_verify *
tp_verify_new(int security, const char *nexthop)
{
	struct tp_verify *v = tp_xrealloc(NULL, 1, sizeof(*v));

	memset(v, 0, sizeof(*v));
	v->security = security;
	v->nexthop = nexthop ? tp_xstrdup(nexthop) : NULL;
	return v;
}

void
tp_verify_add_match(struct tp_verify *v, const char *word)
{
	struct tp_vname *n;

	v->names = tp_xrealloc(v->names, v->nnames + 1, sizeof(*v->names));
	n = &v->names[v->nnames++];
	n->name = NULL;
	if (strcmp(word, "hostname") == 0) {
		n->kind = TP_VNAME_HOSTNAME;
	} else if (strcmp(word, "nexthop") == 0) {
		n->kind = TP_VNAME_NEXTHOP;
	} else if (strcmp(word, "dot-nexthop") == 0) {
		n->kind = TP_VNAME_DOT_NEXTHOP;
	} else {
		n->kind = TP_VNAME_LITERAL;
		n->name = tp_xstrdup(word);
	}
}

void
tp_verify_add_fp(struct tp_verify *v, const unsigned char *md, size_t len)
{
	if (len != 20 && len != 32)
		return;
	v->fps = tp_xrealloc(v->fps, v->nfps + 1, sizeof(*v->fps));
	memcpy(v->fps[v->nfps].md, md, len);
	v->fps[v->nfps++].len = (unsigned char)len;
}

void
tp_verify_add_tlsa(struct tp_verify *v, unsigned usage, unsigned selector,
    unsigned mtype, const unsigned char *data, size_t len)
{
	struct tp_tlsa *t;

	v->tlsa = tp_xrealloc(v->tlsa, v->ntlsa + 1, sizeof(*v->tlsa));
	t = &v->tlsa[v->ntlsa++];
	t->usage = (unsigned char)usage;
	t->selector = (unsigned char)selector;
	t->mtype = (unsigned char)mtype;
	t->data = tp_xrealloc(NULL, len, 1);
	memcpy(t->data, data, len);
	t->len = len;
}

int
tp_verify_ctx_trust(
    struct tp_config *cfg, const struct tp_cfg_route *r, SSL_CTX *ctx)
{
	const struct tp_cval *vv = r->v;

	if (vv[TP_K_CA_FILE].set || vv[TP_K_CA_PATH].set) {
		if (!SSL_CTX_load_verify_locations(ctx,
			vv[TP_K_CA_FILE].set ? vv[TP_K_CA_FILE].s : NULL,
			vv[TP_K_CA_PATH].set ? vv[TP_K_CA_PATH].s : NULL)) {
			tp_config_diag(cfg,
			    vv[TP_K_CA_FILE].set ? vv[TP_K_CA_FILE].line
						 : vv[TP_K_CA_PATH].line,
			    false, "cannot load trust anchors from %s",
			    vv[TP_K_CA_FILE].set ? vv[TP_K_CA_FILE].raw
						 : vv[TP_K_CA_PATH].raw);
			ERR_clear_error();
			return -1;
		}
	} else {
		SSL_CTX_set_default_verify_paths(ctx);
	}
	/* Postfix counts the trust anchor: depth 1 is a leaf issued by a
	 * trusted CA.  OpenSSL counts the CAs above the leaf short of the
	 * anchor. */
	SSL_CTX_set_verify_depth(ctx, (int)vv[TP_K_VERIFY_DEPTH].n - 1);
	return 0;
}

int
tp_verify_ctx_dane(
    struct tp_config *cfg, const struct tp_cfg_route *r, SSL_CTX *ctx)
{
	if (SSL_CTX_dane_enable(ctx) <= 0) {
		tp_config_diag(cfg, r->v[TP_K_SECURITY].line, false,
		    "DANE is not available in this OpenSSL");
		ERR_clear_error();
		return -1;
	}
	return 0;
}

struct tp_verify *
tp_verify_build(
    struct tp_config *cfg, const struct tp_cfg_route *r, SSL_CTX *ctx)
{
	const struct tp_cval *vv = r->v;
	struct tp_verify *v;
	unsigned char md[32], *data;
	char item[300];
	const char *p;

	if (r->mode != TP_MODE_CLIENT || r->security < TP_SEC_FINGERPRINT)
		return NULL;
	v = tp_verify_new(r->security,
	    vv[TP_K_NEXTHOP].set  ? vv[TP_K_NEXTHOP].raw
		: r->nconnect > 0 ? r->connect[0].host
				  : "");
	/* fingerprints */
	for (size_t i = 0; i < vv[TP_K_FINGERPRINT].nlist; i++) {
		if (tp_parse_hex(vv[TP_K_FINGERPRINT].list[i], md, 32) != 32) {
			tp_config_diag(cfg, vv[TP_K_FINGERPRINT].lines[i],
			    false, "fingerprint: not a sha256 digest");
			continue;
		}
		tp_verify_add_fp(v, md, 32);
	}
	/* TLSA records */
	for (size_t i = 0; i < vv[TP_K_TLSA].nlist; i++) {
		const char *rec = vv[TP_K_TLSA].list[i];
		unsigned u, s, m;
		int off = 0;
		long n;

		data = tp_xrealloc(NULL, strlen(rec), 1);
		if (sscanf(rec, "%u %u %u %n", &u, &s, &m, &off) != 3 ||
		    (n = tp_parse_hex(rec + off, data, strlen(rec))) <= 0) {
			tp_config_diag(cfg, vv[TP_K_TLSA].lines[i], false,
			    "tlsa: bad record");
			free(data);
			continue;
		}
		tp_verify_add_tlsa(v, u, s, m, data, (size_t)n);
		free(data);
	}
	/* match list (verify, secure) */
	if (r->security == TP_SEC_VERIFY || r->security == TP_SEC_SECURE) {
		p = vv[TP_K_MATCH].set             ? vv[TP_K_MATCH].raw
		    : r->security == TP_SEC_VERIFY ? "hostname"
						   : "nexthop:dot-nexthop";
		for (;;) {
			size_t n = strcspn(p, ": ,");

			if (n > 0 && n < sizeof(item)) {
				memcpy(item, p, n);
				item[n] = '\0';
				tp_verify_add_match(v, item);
			}
			p += n;
			if (*p == '\0')
				break;
			p++;
		}
		tp_verify_ctx_trust(cfg, r, ctx);
	}
	if (r->security == TP_SEC_DANE || r->security == TP_SEC_DANE_ONLY)
		tp_verify_ctx_dane(cfg, r, ctx);
	return v;
}

void
tp_verify_free(struct tp_verify *v)
{
	if (v == NULL)
		return;
	for (size_t i = 0; i < v->nnames; i++)
		free(v->names[i].name);
	free(v->names);
	free(v->fps);
	for (size_t i = 0; i < v->ntlsa; i++)
		free(v->tlsa[i].data);
	free(v->tlsa);
	free(v->nexthop);
	free(v);
}

/* dane_records - OpenSSL's DANE with these records (RFC 7672 3). */
static int
dane_records(SSL *ssl, const char *base, const struct tp_tlsa *t, size_t n)
{
	if (SSL_dane_enable(ssl, base) <= 0)
		return -1;
	/* RFC 7672 3.1.1: DANE-EE(3) matches ignore names. */
	SSL_dane_set_flags(ssl, DANE_FLAG_NO_DANE_EE_NAMECHECKS);
	/* Only usable records get here (usages 2-3, selectors 0-1,
	 * matching types 0-2: checked at load or by dest.c). */
	for (size_t i = 0; i < n; i++)
		SSL_dane_tlsa_add(ssl, t[i].usage, t[i].selector, t[i].mtype,
		    t[i].data, t[i].len);
	ERR_clear_error();
	return 0;
}

int
tp_verify_prepare(SSL *ssl, const struct tp_verify *v, const struct tp_dane *d,
    const char *host)
{
	return tp_verify_prepare_dest(ssl, v, d, host, NULL);
}

int
tp_verify_prepare_dest(SSL *ssl, const struct tp_verify *v,
    const struct tp_dane *d, const char *host, const char *nexthop)
{
	const char *nh = nexthop ? nexthop : v ? v->nexthop : NULL;
	char dot[TP_HOST_MAX + 2];

	if (v == NULL)
		return 0;
	if (d != NULL) {
		if (d->level != TP_SEC_DANE)
			return 0;
		if (dane_records(ssl, d->base, d->tlsa, d->ntlsa) < 0)
			return -1;
		/* DANE-TA(2): the MX name as listed is a reference name too
		 * (Postfix: nexthop, hostname; RFC 7672 3.2.2). */
		if (strcmp(d->qname, d->base) != 0 &&
		    !SSL_add1_host(ssl, d->qname))
			return -1;
		return 0;
	}
	if (v->security == TP_SEC_VERIFY || v->security == TP_SEC_SECURE) {
		SSL_set_hostflags(ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
		for (size_t i = 0; i < v->nnames; i++) {
			const struct tp_vname *n = &v->names[i];
			const char *name = n->name;

			if (n->kind == TP_VNAME_HOSTNAME) {
				name = host;
			} else if (n->kind != TP_VNAME_LITERAL) {
				/* never a check with the name left out */
				if (nh == NULL || nh[0] == '\0' ||
				    strlen(nh) >= sizeof(dot) - 1)
					return -1;
				snprintf(dot, sizeof(dot), "%s%s",
				    n->kind == TP_VNAME_DOT_NEXTHOP ? "." : "",
				    nh);
				name = dot;
			}
			if (name == NULL || !SSL_add1_host(ssl, name))
				return -1;
		}
	}
	/* static records: the base domain is the route's nexthop, on a
	 * gateway the MX host's name (RFC 7672 3.2.2) */
	if ((v->security == TP_SEC_DANE || v->security == TP_SEC_DANE_ONLY) &&
	    v->ntlsa > 0 &&
	    dane_records(ssl,
		v->nexthop != NULL && v->nexthop[0] ? v->nexthop : host,
		v->tlsa, v->ntlsa) < 0)
		return -1;
	return 0;
}

/* digests - sha256 or sha1 (by LEN) of the certificate and of its key. */
static void
digests(X509 *peer, size_t len, unsigned char cert[32], unsigned char spki[32],
    bool *have_spki)
{
	const EVP_MD *md = len == 20 ? EVP_sha1() : EVP_sha256();
	unsigned char *der = NULL;
	unsigned int n = 0;
	int dl;

	if (!X509_digest(peer, md, cert, &n) || n != len)
		memset(cert, 0, 32);
	dl = i2d_PUBKEY(X509_get0_pubkey(peer), &der);
	*have_spki = dl > 0 &&
	    EVP_Digest(der, (size_t)dl, spki, &n, md, NULL) && n == len;
	OPENSSL_free(der);
}

static bool
fingerprint_matches(X509 *peer, const struct tp_verify *v)
{
	unsigned char cert[2][32], spki[2][32];
	bool have[2] = {false, false}, spk[2] = {false, false};

	for (size_t i = 0; i < v->nfps; i++) {
		const struct tp_fp *f = &v->fps[i];
		int k = f->len == 20 ? 1 : 0;

		if (!have[k]) {
			digests(peer, f->len, cert[k], spki[k], &spk[k]);
			have[k] = true;
		}
		if (memcmp(f->md, cert[k], f->len) == 0 ||
		    (spk[k] && memcmp(f->md, spki[k], f->len) == 0))
			return true;
	}
	return false;
}

/* names_seen - the peer's DNS names (or CN), for the log. */
static void
names_seen(X509 *peer, char *buf, size_t len)
{
	GENERAL_NAMES *gens =
	    X509_get_ext_d2i(peer, NID_subject_alt_name, NULL, NULL);
	size_t o = 0;

	buf[0] = '\0';
	for (int i = 0; gens && i < sk_GENERAL_NAME_num(gens); i++) {
		GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, i);

		if (g->type != GEN_DNS)
			continue;
		o += (size_t)snprintf(buf + o, o < len ? len - o : 0, "%s%.*s",
		    o ? ", " : "", ASN1_STRING_length(g->d.dNSName),
		    (const char *)ASN1_STRING_get0_data(g->d.dNSName));
	}
	GENERAL_NAMES_free(gens);
	if (o == 0)
		X509_NAME_get_text_by_NID(
		    X509_get_subject_name(peer), NID_commonName, buf, (int)len);
}

void
tp_verify_describe(SSL *ssl, bool digest, char *buf, size_t len)
{
	X509 *peer = SSL_get0_peer_certificate(ssl);
	char cn[128] = "", icn[128] = "";
	unsigned char md[32];
	unsigned int mdlen = 0;
	size_t o;

	buf[0] = '\0';
	if (peer == NULL)
		return;
	X509_NAME_get_text_by_NID(
	    X509_get_subject_name(peer), NID_commonName, cn, sizeof(cn));
	X509_NAME_get_text_by_NID(
	    X509_get_issuer_name(peer), NID_commonName, icn, sizeof(icn));
	o = (size_t)snprintf(buf, len, "CN=%s, issuer CN=%s", cn, icn);
	if (!digest || o >= len || !X509_digest(peer, EVP_sha256(), md, &mdlen))
		return;
	o += (size_t)snprintf(buf + o, len - o, ", sha256 ");
	for (unsigned i = 0; i < mdlen && o + 4 < len; i++)
		o += (size_t)snprintf(
		    buf + o, len - o, "%s%02X", i ? ":" : "", md[i]);
}

int
tp_verify_check(SSL *ssl, const struct tp_verify *v, const struct tp_dane *d,
    const char **trust, char *why, size_t len)
{
	X509 *peer = SSL_get0_peer_certificate(ssl);
	long res = SSL_get_verify_result(ssl);
	char names[200];

	*trust = peer == NULL  ? "Anonymous"
	    : res == X509_V_OK ? "Trusted"
			       : "Untrusted";
	if (v == NULL)
		return 0;
	if (peer == NULL) {
		snprintf(why, len, "no certificate");
		return -1;
	}
	switch (v->security) {
	case TP_SEC_FINGERPRINT:
		if (fingerprint_matches(peer, v)) {
			*trust = "Verified";
			return 0;
		}
		snprintf(why, len, "fingerprint mismatch");
		return -1;
	case TP_SEC_DANE:
	case TP_SEC_DANE_ONLY:
		/* DNS said may or encrypt: no verification (spec 4.8) */
		if (d != NULL && d->level != TP_SEC_DANE)
			return 0;
		if (d == NULL && v->ntlsa == 0 && v->security == TP_SEC_DANE)
			return 0; /* no records: may (here, encrypt) */
		/* A resumed session is not verified again: it keeps the
		 * result it got under the same records (the client cache
		 * is keyed by the TLSA answer, sesscache.c). */
		if ((SSL_get0_dane_authority(ssl, NULL, NULL) >= 0 ||
			SSL_session_reused(ssl)) &&
		    res == X509_V_OK) {
			*trust = d != NULL && d->trusted_only ? "Trusted"
							      : "Verified";
			return 0;
		}
		snprintf(why, len, "TLSA mismatch: %s",
		    X509_verify_cert_error_string(res));
		return -1;
	default:
		if (res == X509_V_OK) {
			*trust = "Verified";
			return 0;
		}
		if (res == X509_V_ERR_HOSTNAME_MISMATCH) {
			*trust = "Trusted";
			names_seen(peer, names, sizeof(names));
			snprintf(
			    why, len, "name mismatch (names seen: %s)", names);
		} else if (res ==
			X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY ||
		    res == X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN ||
		    res == X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT ||
		    res == X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT) {
			snprintf(why, len, "untrusted issuer (%s)",
			    X509_verify_cert_error_string(res));
		} else {
			snprintf(
			    why, len, "%s", X509_verify_cert_error_string(res));
		}
		return -1;
	}
}
