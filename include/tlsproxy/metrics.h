/*
 * metrics.h - per-route counters for the stats endpoint (spec 8):
 * sessions, handshakes by outcome and TLS version, verification failures
 * by reason, resumptions, bytes each way, destination connect failures,
 * final 421s, and a handshake-latency histogram.  Recorded with relaxed
 * atomics from the workers; rendered as Prometheus text on demand.
 */
#ifndef TLSPROXY_METRICS_H
#define TLSPROXY_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct tp_gen;
struct tp_route_stats;

/* tp_metrics_handshake - version is a wire value (0x0304) or 0: failed. */
void tp_metrics_handshake(
    struct tp_route_stats *st, int version, bool resumed, uint64_t latency_us);
/* tp_metrics_verify_failure - reason as tls_verify.c words it. */
void tp_metrics_verify_failure(struct tp_route_stats *st, const char *why);
void tp_metrics_add(_Atomic unsigned long long *counter, unsigned long long n);
/* tp_metrics_dns - one DNS lookup: type (dns_parse.h), outcome and
 * DNSSEC status (dns.h enums).  Process-wide. */
void tp_metrics_dns(int type, int outcome, int dnssec);
/*
 * tp_metrics_domain - what became of a gateway's destination domain
 * (enum tp_dest_result): the first TP_DOMAINS_MAX domains are counted
 * by name, every later one under domain="other".
 */
void tp_metrics_domain(
    struct tp_route_stats *st, const char *domain, int result);
/*
 * tp_metrics_tlsrpt - a TLS outcome toward domain as RFC 8460 reports it:
 * policy 0 tlsa, 1 sts, 2 no-policy-found; result 0 success, else an RFC
 * 8460 failure type (mta_sts.h's order).  Same domain table.
 */
void tp_metrics_tlsrpt(
    struct tp_route_stats *st, const char *domain, int policy, int result);
/* tp_metrics_dane - a DANE result (enum tp_dane_result) on a route. */
void tp_metrics_dane(struct tp_route_stats *st, int result);
/*
 * tp_metrics_render - the Prometheus text for every route of g into a
 * malloc'd buffer (*len bytes); NULL when out of memory.
 */
char *tp_metrics_render(const struct tp_gen *g, size_t *len);

#endif
