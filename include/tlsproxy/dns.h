/*
 * dns.h - the DNS layer (spec 4.8): DNSSEC-validating lookups with
 * libunbound, driven by each worker's own loop (uv_poll on the context's
 * descriptor; no blocking call, no thread per lookup), one context per
 * worker and configuration generation, created at the first lookup.
 * Every lookup has tlsproxy's own dns_timeout.  A bogus answer is an
 * error (SERVFAIL, dnssec BOGUS), never data.  Worker thread only.
 */
#ifndef TLSPROXY_DNS_H
#define TLSPROXY_DNS_H

#include <stdbool.h>

#include "tlsproxy/dns_parse.h"

struct tp_wctx;
struct tp_dns_query;

struct tp_dns_answer {
	const char *qname;
	int qtype;
	enum tp_dns_outcome outcome;
	enum tp_dnssec dnssec; /* SECURE also for a proven NODATA/NXDOMAIN */
	const char *why;       /* what went wrong, for the log; "" if ok */
	const char *canon;     /* the CNAME target when qname is an alias */
	char **data;           /* rdata, NULL-terminated; only with OK */
	int *len;
};

/*
 * tp_dns_cb - the answer, once, on the worker's loop (never inside
 * tp_dns_lookup).  The query is gone when this runs: drop the handle
 * first.  a is valid during the call only.
 */
typedef void (*tp_dns_cb)(void *arg, const struct tp_dns_answer *a);

/*
 * tp_dns_lookup - ask for name/type (types in dns_parse.h) with the
 * worker's current generation's settings.  NULL when out of memory.
 */
struct tp_dns_query *tp_dns_lookup(
    struct tp_wctx *w, const char *name, int type, tp_dns_cb cb, void *arg);
/* tp_dns_cancel - the callback will not run. */
void tp_dns_cancel(struct tp_dns_query *q);
/* tp_dns_worker_finish - the worker stops: close its contexts. */
void tp_dns_worker_finish(struct tp_wctx *w);

#endif
