/*
 * tls_verify.h - client-mode peer verification with Postfix's meaning of
 * the levels: fingerprint (certificate or public-key sha256), verify and
 * secure (chain to the trust anchors plus a name from the match list),
 * dane and dane-only (static TLSA records through OpenSSL's DANE API).
 * Built per route at start/reload (main thread); applied per session.
 */
#ifndef TLSPROXY_TLS_VERIFY_H
#define TLSPROXY_TLS_VERIFY_H

#include <stdbool.h>
#include <stddef.h>

#include <openssl/ssl.h>

struct tp_config;
struct tp_cfg_route;

struct tp_tlsa {
	unsigned char usage, selector, mtype;
	unsigned char *data;
	size_t len;
};

struct tp_verify {
	int security; /* enum tp_security */
	char **names; /* match list; "" for hostname (per session) */
	size_t nnames;
	unsigned char (*fps)[32]; /* sha256 fingerprints */
	size_t nfps;
	struct tp_tlsa *tlsa;
	size_t ntlsa;
	char *nexthop;
};

/*
 * What DNS said about one destination host for security = dane/dane-only
 * (spec 4.8, dest.c), applied on top of the route's settings.
 */
struct tp_dane {
	int level;         /* TP_SEC_MAY (no TLSA), TP_SEC_ENCRYPT (none
			      usable), TP_SEC_DANE (usable records) */
	bool trusted_only; /* insecure MX: a match is "Trusted", not
			      "Verified" (Postfix's half-dane) */
	struct tp_tlsa *tlsa;
	size_t ntlsa;
	char base[256];  /* TLSA base domain: SNI, DANE-TA reference name */
	char qname[256]; /* the host name as listed, also a DANE-TA name */
};

/*
 * tp_verify_build - the route's verification settings; loads trust
 * anchors into ctx for verify/secure and enables DANE for dane levels.
 * Problems go to tp_config_diag at the key's line.  Returns NULL when the
 * route verifies nothing (security below fingerprint).
 */
struct tp_verify *tp_verify_build(
    struct tp_config *cfg, const struct tp_cfg_route *r, SSL_CTX *ctx);
void tp_verify_free(struct tp_verify *v);
/*
 * tp_verify_prepare - before the handshake: the names to check (host is
 * the name being connected to) and the TLSA records (d: from DNS, or
 * NULL for the route's own).  0 or -1.
 */
int tp_verify_prepare(SSL *ssl, const struct tp_verify *v,
    const struct tp_dane *d, const char *host);
/*
 * tp_verify_check - after the handshake: 0 when the peer passes the
 * route's level (*trust = "Verified"), else -1 with the reason in why
 * ("untrusted issuer", "name mismatch (names seen: ...)", "certificate
 * has expired", "fingerprint mismatch", "TLSA mismatch").
 * *trust is Postfix's trust word for the log line either way.
 */
int tp_verify_check(SSL *ssl, const struct tp_verify *v,
    const struct tp_dane *d, const char **trust, char *why, size_t len);
/*
 * tp_verify_describe - "CN=mx.example.com, issuer CN=Example CA" and, with
 * digest, ", sha256 AB:CD:..." for the peer's certificate; "" if none.
 */
void tp_verify_describe(SSL *ssl, bool digest, char *buf, size_t len);

#endif
