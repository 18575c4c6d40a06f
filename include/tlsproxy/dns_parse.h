/*
 * dns_parse.h - DNS record data as libunbound hands it over (network
 * order, names uncompressed): A, AAAA, MX and TLSA records, the RFC 5321
 * 5.1 order of MX hosts and the RFC 7505 null MX.  Pure (no I/O): the
 * DNS layer (dns.c, dest.c) and the unit tests and fuzzers use it.
 */
#ifndef TLSPROXY_DNS_PARSE_H
#define TLSPROXY_DNS_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tlsproxy/parse.h"

#define TP_DNS_A     1
#define TP_DNS_CNAME 5
#define TP_DNS_MX    15
#define TP_DNS_TXT   16
#define TP_DNS_AAAA  28
#define TP_DNS_TLSA  52

enum tp_dns_outcome {
	TP_DNS_OK,
	TP_DNS_NODATA,
	TP_DNS_NXDOMAIN,
	TP_DNS_SERVFAIL,
	TP_DNS_TIMEOUT,
	TP_DNS_OUTCOMES
};

enum tp_dnssec {
	TP_DNSSEC_INSECURE,
	TP_DNSSEC_SECURE,
	TP_DNSSEC_BOGUS,
	TP_DNSSEC_STATES
};

/* tp_dns_outcome_name - "ok", "nodata", "nxdomain", "servfail", ... */
const char *tp_dns_outcome_name(enum tp_dns_outcome o);
/* tp_dnssec_name - "insecure", "secure", "bogus" */
const char *tp_dnssec_name(enum tp_dnssec s);
/* tp_dns_type_name - "A", "MX", "TLSA", ...; "other" */
const char *tp_dns_type_name(int type);

struct tp_mx {
	unsigned pref;
	char host[TP_HOST_MAX]; /* lower case, no trailing dot; "" = "." */
};

/*
 * tp_dns_name - the wire-format name at data[*off] (uncompressed labels,
 * as libunbound returns rdata) as text: lower case, no trailing dot, ""
 * for the root.  Advances *off.  0, or -1 when malformed or too long.
 */
int tp_dns_name(const unsigned char *data, size_t len, size_t *off, char *out,
    size_t outlen);
/* tp_dns_mx - one MX rdata.  0 or -1. */
int tp_dns_mx(const unsigned char *data, size_t len, struct tp_mx *mx);
/*
 * tp_dns_mx_order - sort by preference, equal preferences in random order
 * (RFC 5321 5.1: rnd(arg, n) returns 0..n-1), duplicates of a host
 * dropped (its best preference kept).  Returns the new count.
 */
size_t tp_dns_mx_order(struct tp_mx *mx, size_t n,
    unsigned (*rnd)(void *arg, unsigned n), void *arg);
/* tp_dns_null_mx - RFC 7505 2: a single MX record whose host is ".". */
bool tp_dns_null_mx(const struct tp_mx *mx, size_t n);
/*
 * tp_dns_tlsa - one TLSA rdata: usage, selector, matching type and the
 * association data (pointing into data).  0 or -1 (shorter than 3).
 */
int tp_dns_tlsa(const unsigned char *data, size_t len, unsigned char *usage,
    unsigned char *selector, unsigned char *mtype, const unsigned char **assoc,
    size_t *alen);
/*
 * tp_dns_tlsa_usable - RFC 7672 3.1: DANE-TA(2) or DANE-EE(3), selector
 * 0 or 1, matching type 0 (full), 1 (sha256, 32 octets) or 2 (sha512,
 * 64 octets).  PKIX-TA(0), PKIX-EE(1) and anything unknown are unusable.
 */
bool tp_dns_tlsa_usable(unsigned char usage, unsigned char selector,
    unsigned char mtype, size_t alen);
/* tp_dns_tlsa_name - "_PORT._tcp.HOST" into out.  0, or -1 too long. */
int tp_dns_tlsa_name(char *out, size_t len, unsigned port, const char *host);

#endif
