/*
 * gen.h - an immutable runtime generation: the parsed config plus one
 * SSL_CTX per route and the listening sockets, reference counted.
 * Built on the main thread (start, SIGHUP); workers and sessions hold
 * references; the last unref frees it on whichever thread drops it.
 */
#ifndef TLSPROXY_GEN_H
#define TLSPROXY_GEN_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

#include <openssl/ssl.h>

#include "tlsproxy/smtp_server.h"

struct tp_config;
struct tp_cfg_route;
struct tp_gw_policies;

#define TP_CAPS_MAX    1024
#define TP_LAT_BUCKETS 11 /* handshake latency histogram, see metrics.c */

enum tp_hs_outcome {
	TP_HS_FAILED,
	TP_HS_TLS10,
	TP_HS_TLS11,
	TP_HS_TLS12,
	TP_HS_TLS13,
	TP_HS_COUNT
};
/* DANE with DNS, per destination host (spec 4.8, 8) */
enum tp_dane_result {
	TP_DANE_VERIFIED,     /* a usable TLSA record matched */
	TP_DANE_TRUSTED,      /* matched, but the MX was insecure */
	TP_DANE_MISMATCH,     /* usable records, no match: 4.7.5 */
	TP_DANE_NO_TLSA,      /* none (or insecure): may */
	TP_DANE_UNUSABLE,     /* secure, none usable: encrypt */
	TP_DANE_LOOKUP_ERROR, /* TLSA lookup failed: host skipped */
	TP_DANE_REFUSED,      /* dane-only without usable records */
	TP_DANE_COUNT
};
/* What became of a gateway transaction's destination (metrics.c). */
enum tp_dest_result {
	TP_DR_VERIFIED, /* TLS, the level's checks passed: Verified */
	TP_DR_TRUSTED,  /* TLS, Trusted (a chain or insecure-MX DANE) */
	TP_DR_UNTRUSTED,
	TP_DR_ANONYMOUS,
	TP_DR_PLAINTEXT, /* may, and no STARTTLS: plaintext */
	TP_DR_DEFERRED,  /* not reached or not secured: 4xx */
	TP_DR_REJECTED,  /* null MX, no such domain: the gateway's 5xx */
	TP_DR_COUNT
};
#define TP_DOMAINS_MAX  50 /* destination domains counted by name */
/* TLS-RPT (RFC 8460 4.3): policy types tlsa, sts, no-policy-found; result
 * types success and the eleven failures (mta_sts.h names them) */
#define TP_RPT_POLICIES 3
#define TP_RPT_RESULTS  12

struct tp_domain_stats {
	char name[256]; /* "" for the slot that counts every other */
	atomic_ullong res[TP_DR_COUNT];
	atomic_ullong rpt[TP_RPT_POLICIES][TP_RPT_RESULTS];
};

enum tp_vf_reason {
	TP_VF_UNTRUSTED,
	TP_VF_NAME,
	TP_VF_EXPIRED,
	TP_VF_FINGERPRINT,
	TP_VF_TLSA,
	TP_VF_OTHER,
	TP_VF_COUNT
};

/* State that survives reloads, shared by every generation of a route. */
struct tp_route_stats {
	char *name;
	atomic_uint active;
	atomic_ullong total;
	atomic_int refs;
	/* server+starttls: the backend's EHLO keywords, one per line, as
	 * last learned by the probe (probe.c); under tp_caps_lock */
	char caps[TP_CAPS_MAX];
	bool caps_known;
	/* metrics (metrics.c), relaxed atomics shared by the workers */
	atomic_ullong handshakes[TP_HS_COUNT];
	atomic_ullong verify_failures[TP_VF_COUNT];
	atomic_ullong resumed;
	atomic_ullong bytes_in, bytes_out;
	atomic_ullong connect_failures;
	atomic_ullong rejects;
	/* connection reuse (connpool.c) */
	atomic_uint pooled;        /* idle connections kept now */
	atomic_ullong reused;      /* sessions given a kept connection */
	atomic_ullong pool_closed; /* kept connections closed unused */
	atomic_ullong lat_bucket[TP_LAT_BUCKETS];
	atomic_ullong lat_count, lat_sum_us;
	atomic_ullong dane[TP_DANE_COUNT];
	/* gateways: per destination domain, the first TP_DOMAINS_MAX
	 * seen by name, the rest together (bounded cardinality) */
	struct tp_domain_stats *domains; /* TP_DOMAINS_MAX + 1, or NULL */
	atomic_uint ndomains;
};

/* tp_caps_set / tp_caps_get - the learned capabilities, thread-safe. */
void tp_caps_set(struct tp_route_stats *st, const char *caps);
bool tp_caps_get(struct tp_route_stats *st, char *buf, size_t len);

struct tp_route_rt {
	const struct tp_cfg_route *cfg;
	size_t index;
	SSL_CTX *ctx;     /* NULL for security = none, and on a gateway */
	char *listen_key; /* identity of the listening socket */
	int *fds;         /* one listening socket per worker */
	struct tp_route_stats *stats;
	char *hostname; /* server, gateway: greeting and EHLO name */
	char *banner;   /* server: text of the 220 greeting */
	char *helo;     /* client, gateway: EHLO name sent upstream */
	struct tp_smtps_conf smtps; /* gateway: size is message_size_limit
				       (0: no SIZE) */
	struct tp_verify *verify;   /* client: fingerprint .. dane-only */
	/* gateway: its TLS policies, per destination domain: look them up
	 * with tp_gen_policy() (gen_policy.h); ctx and verify stay NULL */
	struct tp_gw_policies *gw;
};

struct tp_gen {
	atomic_int refs;
	unsigned long serial;
	struct tp_config *cfg;
	struct tp_route_rt *routes;
	size_t nroutes;
};

/*
 * tp_gen_build - load FILE and build every route's SSL_CTX.  Returns the
 * generation with refs = 1; check gen->cfg->nerrors (diagnostics are in
 * gen->cfg->diags).  Route stats are carried over from old (may be NULL).
 */
struct tp_gen *tp_gen_build(const char *path, const struct tp_gen *old);
void tp_gen_ref(struct tp_gen *g);
void tp_gen_unref(struct tp_gen *g);

#endif
