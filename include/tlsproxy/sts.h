/*
 * sts.h - MTA-STS for a destination domain (spec 4.10, RFC 8461): the
 * `_mta-sts.D` TXT record through the DNS layer (dns.c), the policy from
 * https://mta-sts.D/.well-known/mta-sts.txt fetched with libcurl's multi
 * interface on the worker's loop (mta-sts.D resolved by the DNS layer
 * too), parsed by mta_sts.c and cached per domain for the process (and in
 * the mta_sts_cache file, read at start).  Worker threads; the cache is
 * shared under a mutex.
 */
#ifndef TLSPROXY_STS_H
#define TLSPROXY_STS_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

struct tp_wctx;
struct tp_sts_query;
struct tp_mta_sts_policy;

/* A domain's policy (its id, fetch time and text inside): immutable,
 * reference counted. */
struct tp_sts {
	atomic_int refs;
	char domain[256];
	const struct tp_mta_sts_policy *pol;
};

/*
 * tp_sts_cb - the policy for the domain (a reference: tp_sts_release it),
 * or NULL for none; fail is an RFC 8460 result type (enum tp_mta_sts_result)
 * when the fetch failed (a cached policy may come with it), or -1.
 * Runs on the loop, never inside tp_sts_lookup.
 */
typedef void (*tp_sts_cb)(void *arg, struct tp_sts *sts, int fail);

/*
 * tp_sts_lookup - the policy of domain: the TXT record, then the cache,
 * else a fetch (cafile: trust anchors for the policy host's certificate,
 * NULL for the system's).  NULL when out of memory.
 */
struct tp_sts_query *tp_sts_lookup(struct tp_wctx *w, const char *domain,
    const char *cafile, tp_sts_cb cb, void *arg);
/* tp_sts_cancel - the callback will not run. */
void tp_sts_cancel(struct tp_sts_query *q);
void tp_sts_release(struct tp_sts *s);
/* tp_sts_cache_load - read the cache file at start (path may be NULL). */
void tp_sts_cache_load(const char *path);
/* tp_sts_worker_finish - the worker stops: its transfers go. */
void tp_sts_worker_finish(struct tp_wctx *w);
/* tp_sts_init / tp_sts_done - libcurl's global state (main thread). */
void tp_sts_init(void);
void tp_sts_done(void);

#endif
