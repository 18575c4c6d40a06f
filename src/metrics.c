/*
 * metrics.c - counters per route (in the route's shared state, gen.h, so
 * they survive reloads) and their Prometheus text exposition.  Workers
 * add with relaxed atomics; the main thread reads them to render.
 */
#include "tlsproxy/metrics.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tlsproxy/config.h"
#include "tlsproxy/dns_parse.h"
#include "tlsproxy/gen.h"
#include "tlsproxy/tls_policy.h"

/* upper bounds of the latency buckets, in microseconds */
static const uint64_t lat_le_us[TP_LAT_BUCKETS] = {1000, 2500, 5000, 10000,
    25000, 50000, 100000, 250000, 500000, 1000000, 5000000};

void
tp_metrics_add(_Atomic unsigned long long *counter, unsigned long long n)
{
	atomic_fetch_add_explicit(counter, n, memory_order_relaxed);
}

/* DNS lookups by type, outcome and DNSSEC status, for the process. */
static const int dns_types[] = {
    TP_DNS_A, TP_DNS_AAAA, TP_DNS_MX, TP_DNS_TLSA, TP_DNS_TXT, TP_DNS_CNAME, 0};
#define DNS_TYPES (sizeof(dns_types) / sizeof(dns_types[0]))
static atomic_ullong dns_lookups[DNS_TYPES][TP_DNS_OUTCOMES][TP_DNSSEC_STATES];

void
tp_metrics_dns(int type, int outcome, int dnssec)
{
	size_t t = 0;

	while (dns_types[t] != 0 && dns_types[t] != type)
		t++;
	if (outcome < 0 || outcome >= TP_DNS_OUTCOMES || dnssec < 0 ||
	    dnssec >= TP_DNSSEC_STATES)
		return;
	tp_metrics_add(&dns_lookups[t][outcome][dnssec], 1);
}

static pthread_mutex_t domains_lock = PTHREAD_MUTEX_INITIALIZER;

/* domain_slot - the counters of domain (the first TP_DOMAINS_MAX by
 * name, then "other"); NULL when out of memory. */
static struct tp_domain_stats *
domain_slot(struct tp_route_stats *st, const char *domain)
{
	struct tp_domain_stats *d = NULL;
	unsigned i, n;

	pthread_mutex_lock(&domains_lock);
	if (st->domains == NULL)
		st->domains = calloc(TP_DOMAINS_MAX + 1, sizeof(*st->domains));
	if (st->domains != NULL) {
		n = atomic_load(&st->ndomains);
		for (i = 0; i < n && strcmp(st->domains[i].name, domain); i++)
			;
		if (i == n && n < TP_DOMAINS_MAX) {
			snprintf(st->domains[n].name,
			    sizeof(st->domains[n].name), "%s", domain);
			atomic_store(&st->ndomains, n + 1);
		}
		d = &st->domains[i < TP_DOMAINS_MAX ? i : TP_DOMAINS_MAX];
	}
	pthread_mutex_unlock(&domains_lock);
	return d;
}

void
tp_metrics_domain(struct tp_route_stats *st, const char *domain, int result)
{
	struct tp_domain_stats *d;

	if (result >= 0 && result < TP_DR_COUNT &&
	    (d = domain_slot(st, domain)) != NULL)
		tp_metrics_add(&d->res[result], 1);
}

void
tp_metrics_tlsrpt(
    struct tp_route_stats *st, const char *domain, int policy, int result)
{
	struct tp_domain_stats *d;

	if (policy >= 0 && policy < TP_RPT_POLICIES && result >= 0 &&
	    result < TP_RPT_RESULTS && (d = domain_slot(st, domain)) != NULL)
		tp_metrics_add(&d->rpt[policy][result], 1);
}

void
tp_metrics_dane(struct tp_route_stats *st, int result)
{
	if (result >= 0 && result < TP_DANE_COUNT)
		tp_metrics_add(&st->dane[result], 1);
}

void
tp_metrics_handshake(
    struct tp_route_stats *st, int version, bool resumed, uint64_t latency_us)
{
	int i = TP_HS_FAILED;

	switch (version) {
	case 0:
		break;
	case TP_PROTO_TLS1:
		i = TP_HS_TLS10;
		break;
	case TP_PROTO_TLS11:
		i = TP_HS_TLS11;
		break;
	case TP_PROTO_TLS12:
		i = TP_HS_TLS12;
		break;
	default:
		i = TP_HS_TLS13;
		break;
	}
	tp_metrics_add(&st->handshakes[i], 1);
	if (version == 0)
		return;
	if (resumed)
		tp_metrics_add(&st->resumed, 1);
	for (int b = 0; b < TP_LAT_BUCKETS; b++)
		if (latency_us <= lat_le_us[b])
			tp_metrics_add(&st->lat_bucket[b], 1);
	tp_metrics_add(&st->lat_count, 1);
	tp_metrics_add(&st->lat_sum_us, latency_us);
}

void
tp_metrics_verify_failure(struct tp_route_stats *st, const char *why)
{
	int r = TP_VF_OTHER;

	if (strstr(why, "untrusted") || strstr(why, "issuer"))
		r = TP_VF_UNTRUSTED;
	else if (strstr(why, "name mismatch"))
		r = TP_VF_NAME;
	else if (strstr(why, "expired") || strstr(why, "not yet valid"))
		r = TP_VF_EXPIRED;
	else if (strstr(why, "fingerprint"))
		r = TP_VF_FINGERPRINT;
	else if (strstr(why, "TLSA"))
		r = TP_VF_TLSA;
	tp_metrics_add(&st->verify_failures[r], 1);
}

struct out {
	char *buf;
	size_t len, cap;
	bool oom;
};

__attribute__((format(printf, 2, 3))) static void
put(struct out *o, const char *fmt, ...)
{
	va_list ap;
	int n;

	for (;;) {
		va_start(ap, fmt);
		n = vsnprintf(o->buf + o->len, o->cap - o->len, fmt, ap);
		va_end(ap);
		if (n < 0) {
			o->oom = true;
			return;
		}
		if ((size_t)n < o->cap - o->len) {
			o->len += (size_t)n;
			return;
		}
		char *nb = realloc(o->buf, o->cap * 2 + (size_t)n);

		if (nb == NULL) {
			o->oom = true;
			return;
		}
		o->buf = nb;
		o->cap = o->cap * 2 + (size_t)n;
	}
}

#define LOAD(x) atomic_load_explicit(&(x), memory_order_relaxed)

static void
family(struct out *o, const char *name, const char *type, const char *help)
{
	put(o, "# HELP tlsproxy_%s %s\n# TYPE tlsproxy_%s %s\n", name, help,
	    name, type);
}

char *
tp_metrics_render(const struct tp_gen *g, size_t *len)
{
	static const char *hs[] = {
	    "failed", "TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3"};
	static const char *vf[] = {"untrusted", "name_mismatch", "expired",
	    "fingerprint", "tlsa", "other"};
	static const char *dane[] = {"verified", "trusted", "mismatch",
	    "no_tlsa", "unusable", "lookup_error", "refused"};
	static const char *dr[] = {"verified", "trusted", "untrusted",
	    "anonymous", "plaintext", "deferred", "rejected"};
	static const char *rpt_policy[] = {"tlsa", "sts", "no-policy-found"};
	static const char *rpt_result[] = {"success", "starttls-not-supported",
	    "certificate-host-mismatch", "certificate-expired",
	    "certificate-not-trusted", "validation-failure", "tlsa-invalid",
	    "dnssec-invalid", "dane-required", "sts-policy-fetch-error",
	    "sts-policy-invalid", "sts-webpki-invalid"};
	struct out o = {malloc(8192), 0, 8192, false};
	size_t i;
	int k;

	if (o.buf == NULL)
		return NULL;
#define EACH for (i = 0; i < g->nroutes; i++)
#define R    (g->routes[i].stats)
	family(&o, "sessions_total", "counter", "Sessions accepted.");
	EACH put(&o, "tlsproxy_sessions_total{route=\"%s\"} %llu\n", R->name,
	    LOAD(R->total));
	family(&o, "sessions_active", "gauge", "Sessions open now.");
	EACH put(&o, "tlsproxy_sessions_active{route=\"%s\"} %u\n", R->name,
	    LOAD(R->active));
	family(&o, "handshakes_total", "counter",
	    "TLS handshakes by outcome and protocol version.");
	EACH for (k = 0; k < TP_HS_COUNT; k++) put(&o,
	    "tlsproxy_handshakes_total{route=\"%s\",outcome=\"%s\","
	    "version=\"%s\"} %llu\n",
	    R->name, k ? "ok" : "failed", k ? hs[k] : "",
	    LOAD(R->handshakes[k]));
	family(&o, "verify_failures_total", "counter",
	    "Peer verification failures by reason.");
	EACH for (k = 0; k < TP_VF_COUNT; k++) put(&o,
	    "tlsproxy_verify_failures_total{route=\"%s\","
	    "reason=\"%s\"} %llu\n",
	    R->name, vf[k], LOAD(R->verify_failures[k]));
	family(&o, "resumptions_total", "counter", "Resumed TLS sessions.");
	EACH put(&o, "tlsproxy_resumptions_total{route=\"%s\"} %llu\n", R->name,
	    LOAD(R->resumed));
	family(&o, "bytes_total", "counter",
	    "Bytes relayed: in = from the client, out = to the client.");
	EACH
	{
		put(&o,
		    "tlsproxy_bytes_total{route=\"%s\",direction=\"in\"} "
		    "%llu\n",
		    R->name, LOAD(R->bytes_in));
		put(&o,
		    "tlsproxy_bytes_total{route=\"%s\",direction=\"out\"} "
		    "%llu\n",
		    R->name, LOAD(R->bytes_out));
	}
	family(&o, "connect_failures_total", "counter",
	    "Failed connections to the destination (each address tried).");
	EACH put(&o, "tlsproxy_connect_failures_total{route=\"%s\"} %llu\n",
	    R->name, LOAD(R->connect_failures));
	family(&o, "reuse_idle", "gauge",
	    "Upstream connections kept idle for reuse (connection_reuse).");
	EACH put(&o, "tlsproxy_reuse_idle{route=\"%s\"} %u\n", R->name,
	    atomic_load_explicit(&R->pooled, memory_order_relaxed));
	family(&o, "reuse_total", "counter",
	    "Sessions served over a kept upstream connection.");
	EACH put(&o, "tlsproxy_reuse_total{route=\"%s\"} %llu\n", R->name,
	    LOAD(R->reused));
	family(&o, "reuse_expired_total", "counter",
	    "Kept upstream connections closed without reuse (idle time, "
	    "server closed or spoke, reload).");
	EACH put(&o, "tlsproxy_reuse_expired_total{route=\"%s\"} %llu\n",
	    R->name, LOAD(R->pool_closed));
	family(&o, "rejects_total", "counter",
	    "Sessions ended with the proxy's own 421.");
	EACH put(&o, "tlsproxy_rejects_total{route=\"%s\"} %llu\n", R->name,
	    LOAD(R->rejects));
	family(&o, "handshake_seconds", "histogram", "TLS handshake latency.");
	EACH
	{
		for (k = 0; k < TP_LAT_BUCKETS; k++)
			put(&o,
			    "tlsproxy_handshake_seconds_bucket{route=\"%s\","
			    "le=\"%g\"} %llu\n",
			    R->name, lat_le_us[k] / 1e6,
			    LOAD(R->lat_bucket[k]));
		put(&o,
		    "tlsproxy_handshake_seconds_bucket{route=\"%s\","
		    "le=\"+Inf\"} %llu\n",
		    R->name, LOAD(R->lat_count));
		put(&o, "tlsproxy_handshake_seconds_sum{route=\"%s\"} %.6f\n",
		    R->name, LOAD(R->lat_sum_us) / 1e6);
		put(&o, "tlsproxy_handshake_seconds_count{route=\"%s\"} %llu\n",
		    R->name, LOAD(R->lat_count));
	}
	family(&o, "dane_total", "counter",
	    "DANE results per destination host (DNS TLSA records).");
	EACH for (k = 0; k < TP_DANE_COUNT; k++)
	    put(&o, "tlsproxy_dane_total{route=\"%s\",result=\"%s\"} %llu\n",
		R->name, dane[k], LOAD(R->dane[k]));
	family(&o, "gateway_destinations_total", "counter",
	    "Gateway transactions per destination domain and outcome "
	    "(the first 50 domains by name, then \"other\").");
	EACH
	{
		/* the lock only guards the table's growth: take a count */
		pthread_mutex_lock(&domains_lock);
		unsigned nd = R->domains ? atomic_load(&R->ndomains) : 0;
		bool other = R->domains != NULL;
		pthread_mutex_unlock(&domains_lock);
		for (unsigned d = 0; d < nd + other; d++)
			for (k = 0; k < TP_DR_COUNT; k++) {
				const struct tp_domain_stats *ds =
				    &R->domains[d < nd ? d : TP_DOMAINS_MAX];
				unsigned long long v = LOAD(ds->res[k]);

				if (v > 0)
					put(&o,
					    "tlsproxy_gateway_destinations_"
					    "total{route=\"%s\",domain="
					    "\"%s\",result=\"%s\"} %llu\n",
					    R->name,
					    d < nd ? ds->name : "other", dr[k],
					    v);
			}
	}
	family(&o, "tlsrpt_results_total", "counter",
	    "TLS outcomes per destination domain as RFC 8460 reports them: "
	    "policy type and result type (mx: routes and gateways).");
	EACH
	{
		pthread_mutex_lock(&domains_lock);
		unsigned nd = R->domains ? atomic_load(&R->ndomains) : 0;
		bool other = R->domains != NULL;
		pthread_mutex_unlock(&domains_lock);
		for (unsigned d = 0; d < nd + other; d++) {
			const struct tp_domain_stats *ds =
			    &R->domains[d < nd ? d : TP_DOMAINS_MAX];

			for (int pt = 0; pt < TP_RPT_POLICIES; pt++)
				for (k = 0; k < TP_RPT_RESULTS; k++) {
					unsigned long long v =
					    LOAD(ds->rpt[pt][k]);

					if (v > 0)
						put(&o,
						    "tlsproxy_tlsrpt_results_"
						    "total{route=\"%s\",domain="
						    "\"%s\",policy_type=\"%s\","
						    "result_type=\"%s\"} "
						    "%llu\n",
						    R->name,
						    d < nd ? ds->name : "other",
						    rpt_policy[pt],
						    rpt_result[k], v);
				}
		}
	}
#undef EACH
#undef R
	family(&o, "dns_lookups_total", "counter",
	    "DNS lookups by type, outcome and DNSSEC status (those seen).");
	for (i = 0; i < DNS_TYPES; i++)
		for (k = 0; k < TP_DNS_OUTCOMES; k++)
			for (int s = 0; s < TP_DNSSEC_STATES; s++)
				if (LOAD(dns_lookups[i][k][s]) > 0)
					put(&o,
					    "tlsproxy_dns_lookups_total{type="
					    "\"%s\",outcome=\"%s\",dnssec="
					    "\"%s\"} %llu\n",
					    tp_dns_type_name(dns_types[i]),
					    tp_dns_outcome_name(k),
					    tp_dnssec_name(s),
					    LOAD(dns_lookups[i][k][s]));
	if (o.oom) {
		free(o.buf);
		return NULL;
	}
	*len = o.len;
	return o.buf;
}
