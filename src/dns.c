/*
 * dns.c - DNSSEC-validating lookups on the worker loops (spec 4.8).
 *
 * Each worker has one libunbound context per configuration generation,
 * made at its first lookup from the generation's dns_* settings: the
 * trust anchors read at load (config.c, so a chroot needs no files),
 * recursion from the root or forwarders (dns_resolver), stub zones
 * (dns_stub, which also make a built-in local zone of that name
 * transparent).  ub_ctx_async(1): the context resolves in its own thread
 * and signals its descriptor, which a uv_poll on the worker's loop
 * watches; ub_process() then runs the callbacks on the worker's thread.
 * A context replaced by a reload lives on until its last lookup ends.
 *
 * Every lookup has its own timer (dns_timeout): libunbound may take far
 * longer to give up on a silent server.  Outcomes follow libunbound's
 * result: bogus first (it comes with rcode 0 and the data attached, and
 * is an error here), then NXDOMAIN, SERVFAIL, data or NODATA; secure is
 * the DNSSEC status.  Worker thread only, except context creation, which
 * is serialized (libunbound's option parsing is not reentrant).
 */
#include "tlsproxy/dns.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <unbound.h>
#include <uv.h>

#include "tlsproxy/common.h"
#include "tlsproxy/config.h"
#include "tlsproxy/dns_parse.h"
#include "tlsproxy/gen.h"
#include "tlsproxy/log.h"
#include "tlsproxy/metrics.h"
#include "tlsproxy/wctx.h"

struct dns_ctx {
	struct ub_ctx *ub;
	uv_poll_t poll;
	struct tp_wctx *w;
	unsigned long serial;
	uint64_t timeout_ms;
	unsigned pending; /* lookups not yet freed */
	bool retired;     /* replaced, or the worker stops */
	bool closing;
};

struct tp_dns {
	struct dns_ctx *cur;
};

struct tp_dns_query {
	struct dns_ctx *ctx;
	uv_timer_t timer;
	tp_dns_cb cb;
	void *arg;
	int id;
	int type;
	int err; /* submission failed: deliver SERVFAIL from the timer */
	bool done;
	char name[TP_HOST_MAX + 32];
};

static pthread_mutex_t create_lock = PTHREAD_MUTEX_INITIALIZER;

static void
ctx_on_closed(uv_handle_t *h)
{
	struct dns_ctx *d = h->data;

	ub_ctx_delete(d->ub); /* joins its thread */
	free(d);
}

/* ctx_maybe_close - a retired context goes once its lookups are over. */
static void
ctx_maybe_close(struct dns_ctx *d)
{
	if (!d->retired || d->pending > 0 || d->closing)
		return;
	d->closing = true;
	uv_close((uv_handle_t *)&d->poll, ctx_on_closed);
}

static void
ctx_on_readable(uv_poll_t *p, int status, int events)
{
	struct dns_ctx *d = p->data;
	int rc;

	(void)status;
	(void)events;
	if ((rc = ub_process(d->ub)) != 0)
		tp_log(TP_LOG_WARNING, "dns: %s", ub_strerror(rc));
}

/* ctx_set - one libunbound setting; logs what failed. */
static int
ctx_set(struct ub_ctx *ub, int rc, const char *what, const char *value)
{
	if (rc != 0)
		tp_log(TP_LOG_WARNING, "dns: %s %s: %s", what, value,
		    ub_strerror(rc));
	(void)ub;
	return rc;
}

/* ctx_new - a context for the worker's current generation. */
static struct dns_ctx *
ctx_new(struct tp_wctx *w)
{
	const struct tp_config *cfg = w->gen->cfg;
	struct dns_ctx *d = calloc(1, sizeof(*d));
	struct ub_ctx *ub;
	char zone[TP_HOST_MAX + 32];
	int bad = 0;

	if (d == NULL)
		return NULL;
	pthread_mutex_lock(&create_lock);
	if ((d->ub = ub = ub_ctx_create()) == NULL) {
		pthread_mutex_unlock(&create_lock);
		free(d);
		return NULL;
	}
	/* Forwarders and stubs on loopback are common (and the tests). */
	bad |=
	    ctx_set(ub, ub_ctx_set_option(ub, "do-not-query-localhost:", "no"),
		"option", "do-not-query-localhost");
	/* A small cache per context: there is one per worker. */
	ub_ctx_set_option(ub, "msg-cache-size:", "1m");
	ub_ctx_set_option(ub, "rrset-cache-size:", "2m");
	ub_ctx_set_option(ub, "key-cache-size:", "1m");
	ub_ctx_set_option(ub, "neg-cache-size:", "256k");
	for (size_t i = 0; i < cfg->ndns_ta; i++)
		bad |= ctx_set(ub, ub_ctx_add_ta(ub, cfg->dns_ta[i]),
		    "trust anchor", cfg->dns_ta[i]);
	if (cfg->dns_mode != TP_DNS_RECURSIVE)
		for (size_t i = 0; i < cfg->ndns_fwd; i++)
			bad |= ctx_set(ub, ub_ctx_set_fwd(ub, cfg->dns_fwd[i]),
			    "forwarder", cfg->dns_fwd[i]);
	for (size_t i = 0; i < cfg->ndns_stubs; i++) {
		const struct tp_dns_stub *s = &cfg->dns_stubs[i];

		/* A stub overrides a built-in local zone (test., local.). */
		snprintf(zone, sizeof(zone), "%s transparent", s->zone);
		ub_ctx_set_option(ub, "local-zone:", zone);
		for (size_t j = 0; j < s->naddrs; j++)
			bad |= ctx_set(ub,
			    ub_ctx_set_stub(ub, s->zone, s->addrs[j], 0),
			    "stub", s->addrs[j]);
	}
	bad |= ctx_set(ub, ub_ctx_async(ub, 1), "async", "");
	pthread_mutex_unlock(&create_lock);
	if (bad)
		tp_log(TP_LOG_WARNING, "dns: some settings were refused");
	d->w = w;
	d->serial = w->gen->serial;
	d->timeout_ms = cfg->g[TP_K_DNS_TIMEOUT].n;
	uv_poll_init(&w->loop, &d->poll, ub_fd(ub));
	d->poll.data = d;
	uv_poll_start(&d->poll, UV_READABLE, ctx_on_readable);
	return d;
}

/* ctx_get - the worker's context for its current generation. */
static struct dns_ctx *
ctx_get(struct tp_wctx *w)
{
	struct tp_dns *dns = w->dns;

	if (dns == NULL && (dns = w->dns = calloc(1, sizeof(*dns))) == NULL)
		return NULL;
	if (dns->cur != NULL && dns->cur->serial != w->gen->serial) {
		dns->cur->retired = true;
		ctx_maybe_close(dns->cur);
		dns->cur = NULL;
	}
	if (dns->cur == NULL)
		dns->cur = ctx_new(w);
	return dns->cur;
}

static void
query_on_closed(uv_handle_t *h)
{
	struct tp_dns_query *q = h->data;
	struct dns_ctx *d = q->ctx;

	free(q);
	d->pending--;
	ctx_maybe_close(d);
}

static void
query_free(struct tp_dns_query *q)
{
	q->done = true;
	uv_close((uv_handle_t *)&q->timer, query_on_closed);
}

/* query_deliver - the answer to the caller, then the query goes. */
static void
query_deliver(struct tp_dns_query *q, struct tp_dns_answer *a)
{
	tp_metrics_dns(q->type, a->outcome, a->dnssec);
	if (a->outcome != TP_DNS_OK || a->dnssec == TP_DNSSEC_BOGUS)
		tp_log(TP_LOG_DEBUG, "dns: %s/%s: %s (%s)%s%s", q->name,
		    tp_dns_type_name(q->type), tp_dns_outcome_name(a->outcome),
		    tp_dnssec_name(a->dnssec), a->why[0] ? ": " : "", a->why);
	uv_timer_stop(&q->timer);
	q->done = true;
	q->cb(q->arg, a);
	query_free(q);
}

static void
query_on_result(void *arg, int err, struct ub_result *r)
{
	struct tp_dns_query *q = arg;
	struct tp_dns_answer a = {
	    .qname = q->name, .qtype = q->type, .why = ""};

	if (q->done) { /* cannot happen after ub_cancel; be safe */
		if (r != NULL)
			ub_resolve_free(r);
		return;
	}
	if (err != 0 || r == NULL) {
		a.outcome = TP_DNS_SERVFAIL;
		a.why = ub_strerror(err);
	} else if (r->bogus) {
		/* RFC 7672 2.1.1: bogus is an error, whatever came with it */
		a.outcome = TP_DNS_SERVFAIL;
		a.dnssec = TP_DNSSEC_BOGUS;
		a.why =
		    r->why_bogus ? r->why_bogus : "DNSSEC validation failed";
	} else {
		a.dnssec = r->secure ? TP_DNSSEC_SECURE : TP_DNSSEC_INSECURE;
		if (r->rcode == 3 || r->nxdomain)
			a.outcome = TP_DNS_NXDOMAIN;
		else if (r->rcode != 0)
			a.outcome = TP_DNS_SERVFAIL;
		else if (r->havedata)
			a.outcome = TP_DNS_OK;
		else
			a.outcome = TP_DNS_NODATA;
		if (a.outcome == TP_DNS_SERVFAIL)
			a.why = "server failure";
		if (a.outcome == TP_DNS_OK) {
			a.data = r->data;
			a.len = r->len;
		}
		if (r->canonname != NULL) {
			/* names go without the root's dot here (SNI, logs) */
			size_t n = strlen(r->canonname);

			if (n > 1 && r->canonname[n - 1] == '.')
				r->canonname[n - 1] = '\0';
			if (!tp_strcaseeq(r->canonname, q->name))
				a.canon = r->canonname;
		}
	}
	query_deliver(q, &a);
	if (r != NULL)
		ub_resolve_free(r);
}

static void
query_on_timer(uv_timer_t *t)
{
	struct tp_dns_query *q = t->data;
	struct tp_dns_answer a = {.qname = q->name, .qtype = q->type};

	if (q->err == 0) {
		ub_cancel(q->ctx->ub, q->id);
		a.outcome = TP_DNS_TIMEOUT;
		a.why = "timeout";
	} else {
		a.outcome = TP_DNS_SERVFAIL;
		a.why = ub_strerror(q->err);
	}
	query_deliver(q, &a);
}

struct tp_dns_query *
tp_dns_lookup(
    struct tp_wctx *w, const char *name, int type, tp_dns_cb cb, void *arg)
{
	struct dns_ctx *d = ctx_get(w);
	struct tp_dns_query *q;

	if (d == NULL || (q = calloc(1, sizeof(*q))) == NULL)
		return NULL;
	q->ctx = d;
	q->cb = cb;
	q->arg = arg;
	q->type = type;
	snprintf(q->name, sizeof(q->name), "%s", name);
	uv_timer_init(&w->loop, &q->timer);
	q->timer.data = q;
	d->pending++;
	q->err = ub_resolve_async(
	    d->ub, q->name, type, 1, q, query_on_result, &q->id);
	/* A refusal is answered from the loop too, never from here. */
	uv_timer_start(
	    &q->timer, query_on_timer, q->err ? 0 : d->timeout_ms, 0);
	return q;
}

void
tp_dns_cancel(struct tp_dns_query *q)
{
	if (q == NULL || q->done)
		return;
	if (q->err == 0)
		ub_cancel(q->ctx->ub, q->id);
	uv_timer_stop(&q->timer);
	query_free(q);
}

void
tp_dns_worker_finish(struct tp_wctx *w)
{
	struct tp_dns *dns = w->dns;

	if (dns == NULL)
		return;
	if (dns->cur != NULL) {
		dns->cur->retired = true;
		ctx_maybe_close(dns->cur);
	}
	free(dns);
	w->dns = NULL;
}
