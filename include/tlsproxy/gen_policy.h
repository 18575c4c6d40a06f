/*
 * gen_policy.h - a gateway route's runtime TLS policies (spec 4.9): its
 * default policy (the route's security, protocols, ciphers and trust
 * anchors) and one policy per policy_file entry, built with the
 * generation (gen.c) on the main thread and immutable afterwards, so any
 * worker reads them for as long as it holds the generation.
 *
 * Each policy has its level, an SSL_CTX and a struct tp_verify.  The
 * contexts carry the route's client certificate, its trust anchors
 * (ca_file/ca_path, else OpenSSL's default paths: Postfix loads its
 * CAfile at every level, so a may session still logs Trusted or
 * Untrusted) and DANE; an entry that sets protocols, ciphers or exclude
 * gets a context built with them, shared by every entry with the same
 * resulting settings, else the route's.  The verify settings keep
 * nexthop and dot-nexthop as names resolved per session
 * (tp_verify_prepare_dest with the recipient domain): a ".example.com"
 * entry serves every subdomain, each its own nexthop, and the route's
 * default serves every domain.
 */
#ifndef TLSPROXY_GEN_POLICY_H
#define TLSPROXY_GEN_POLICY_H

#include <openssl/ssl.h>

struct tp_config;
struct tp_cfg_route;
struct tp_route_rt;
struct tp_verify;
struct tp_gw_policies;

struct tp_dest_policy {
	int security; /* enum tp_security: none .. dane-only */
	SSL_CTX *ctx; /* the context to use; NULL for none */
	/* fingerprint, verify, secure: what to check; dane, dane-only: the
	 * static TLSA records (ntlsa 0: from DNS, dest.c's decision
	 * table); NULL below fingerprint.  Prepare each session with
	 * tp_verify_prepare_dest(ssl, verify, dane, mx_host, domain). */
	const struct tp_verify *verify;
	/* SNI: a name, "hostname" (the MX host's name), "nexthop" (the
	 * recipient domain); NULL: the default (the TLSA base domain with
	 * DANE, else the MX host's name) */
	const char *servername;
	const char *key; /* the policy_file key ("example.com",
			    ".example.com"), NULL for the route's default */
	int line;        /* its line in policy_file; 0 for the default */
};

/*
 * tp_gen_policy - the policy for recipient domain DOMAIN on gateway route
 * rt: its policy_file entry (the domain, else the nearest ".parent"
 * entry, as Postfix looks up smtp_tls_policy_maps), else the route's
 * default.  NULL when rt is not a gateway.  A "[host]:port" or
 * "host:port" name finds the entry of that key only (kept for explicit
 * nexthops; MX delivery by recipient domain never asks for them).
 */
const struct tp_dest_policy *tp_gen_policy(
    const struct tp_route_rt *rt, const char *domain);
/* tp_gen_policy_default - the route's own policy, NULL if no gateway. */
const struct tp_dest_policy *tp_gen_policy_default(
    const struct tp_route_rt *rt);

/*
 * tp_gen_policy_build - the policies of gateway route r, or NULL after
 * reporting every problem (tp_config_diag, at the INI line or at
 * POLICYFILE:LINE).  Main thread.
 */
struct tp_gw_policies *tp_gen_policy_build(
    struct tp_config *cfg, const struct tp_cfg_route *r);
void tp_gen_policy_free(struct tp_gw_policies *gp);

#endif
