/*
 * tls_verify.h - client-mode peer verification with Postfix's meaning of
 * the levels: fingerprint (certificate or public-key sha256), verify and
 * secure (chain to the trust anchors plus a name from the match list),
 * dane and dane-only (static TLSA records through OpenSSL's DANE API).
 * Built per route, and on a gateway per policy_file entry, at start and
 * reload (main thread); read-only afterwards, applied per session.
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

/*
 * One name of a verify/secure match list.  hostname (the host connected
 * to), nexthop and dot-nexthop are resolved for each session.
 */
enum tp_vname_kind {
	TP_VNAME_LITERAL,    /* name: a host name, or .suffix */
	TP_VNAME_HOSTNAME,   /* the name of the host connected to */
	TP_VNAME_NEXTHOP,    /* the destination domain */
	TP_VNAME_DOT_NEXTHOP /* any subdomain of it */
};

struct tp_vname {
	enum tp_vname_kind kind;
	char *name; /* TP_VNAME_LITERAL only */
};

/* A certificate or public-key digest for security = fingerprint. */
struct tp_fp {
	unsigned char md[32];
	unsigned char len; /* 32: sha256; 20: sha1 (Postfix's older tables) */
};

struct tp_verify {
	int security;           /* enum tp_security */
	struct tp_vname *names; /* match list (verify, secure) */
	size_t nnames;
	struct tp_fp *fps;
	size_t nfps;
	struct tp_tlsa *tlsa; /* static records (dane, dane-only) */
	size_t ntlsa;
	/* the destination domain for nexthop and dot-nexthop, and the
	 * static TLSA records' base domain: a client route's (nexthop key,
	 * else its connect host); NULL on a gateway, where each session
	 * gives the recipient domain to tp_verify_prepare_dest() and the
	 * base domain is the MX host's name */
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
 * tp_verify_new - empty settings for SECURITY (a level from fingerprint
 * up), for the builders below; NEXTHOP as in struct tp_verify (NULL: per
 * session).
 */
struct tp_verify *tp_verify_new(int security, const char *nexthop);
/*
 * tp_verify_add_match - one word of a match list: hostname, nexthop,
 * dot-nexthop, a name or .suffix (checked by the caller).
 */
void tp_verify_add_match(struct tp_verify *v, const char *word);
/* tp_verify_add_fp - a sha256 (LEN 32) or sha1 (LEN 20) digest. */
void tp_verify_add_fp(struct tp_verify *v, const unsigned char *md, size_t len);
/* tp_verify_add_tlsa - a static TLSA record (usage 2 or 3). */
void tp_verify_add_tlsa(struct tp_verify *v, unsigned usage, unsigned selector,
    unsigned mtype, const unsigned char *data, size_t len);
/*
 * tp_verify_ctx_trust - the route's trust anchors into ctx (ca_file,
 * ca_path, else OpenSSL's default paths) and its verify_depth.  Problems
 * go to tp_config_diag at the key's line; 0 or -1.
 */
int tp_verify_ctx_trust(
    struct tp_config *cfg, const struct tp_cfg_route *r, SSL_CTX *ctx);
/* tp_verify_ctx_dane - enable DANE on ctx; 0 or -1 (reported). */
int tp_verify_ctx_dane(
    struct tp_config *cfg, const struct tp_cfg_route *r, SSL_CTX *ctx);
/*
 * tp_verify_prepare - before the handshake: the names to check (host is
 * the name being connected to) and the TLSA records (d: from DNS, or
 * NULL for the route's own).  0 or -1.
 */
int tp_verify_prepare(SSL *ssl, const struct tp_verify *v,
    const struct tp_dane *d, const char *host);
/*
 * tp_verify_prepare_dest - the same with the destination domain NEXTHOP
 * for match = nexthop/dot-nexthop (NULL: v->nexthop).  A gateway passes
 * the recipient domain; -1 when a name needs a nexthop and none is
 * known, so a session never goes on unchecked.
 */
int tp_verify_prepare_dest(SSL *ssl, const struct tp_verify *v,
    const struct tp_dane *d, const char *host, const char *nexthop);
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
