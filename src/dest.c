/*
 * dest.c - where a client session connects when a connect entry names a
 * host or a domain (spec 4.8): `mx:DOMAIN` is the domain's MX hosts in
 * preference order (equal preferences shuffled, RFC 5321 5.1; no MX: the
 * domain itself; null MX, RFC 7505: no mail), a host name is that host as
 * a DNSSEC-validated static MX (Postfix's [host]).  Each host's A and
 * AAAA records, and for security = dane/dane-only without static tlsa
 * its TLSA records at _PORT._tcp.HOST, come from the DNS layer (dns.c).
 * Postfix's DANE decisions (smtp_tls_policy.c dane_init, tls_dane.c):
 *   MX lookup error (SERVFAIL, timeout, bogus)    whole domain: 4.4.3
 *   MX insecure        dane: TLSA used, a match is "Trusted"; dane-only:
 *                      the host fails 4.7.5
 *   host address insecure                dane: may; dane-only: 4.7.5
 *   TLSA NODATA/NXDOMAIN, or insecure    dane: may; dane-only: 4.7.5
 *   TLSA lookup error          the host is skipped (4.7.5), next MX
 *   secure TLSA, none usable   dane: encrypt; dane-only: 4.7.5
 *   usable TLSA                DANE: the certificate must match
 * The TLSA base domain is the CNAME-expanded host name when its address
 * records are secure, else (or on NODATA there) the name as listed (RFC
 * 7671 7); it is also the SNI.  With mta_sts, the domain's MTA-STS policy
 * (sts.c) is looked up beside the MX records and applies to each host
 * without usable DANE (RFC 8461 2: DANE first): enforce - the MX name
 * must match a policy pattern (else the host is skipped, 4.7.5) and the
 * server must pass `secure` against the MX name with TLS 1.2 or later;
 * testing - the route's level, what would have failed is logged.  All lookups
 * for an entry run in parallel before the first connect; at most TP_DEST_ADDRS
 * addresses are tried and TP_DEST_SESSIONS sessions made (Postfix's
 * smtp_mx_address_limit, smtp_mx_session_limit).  Worker thread only.
 */
#include "tlsproxy/session.h"

#include <arpa/inet.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tlsproxy/common.h"
#include "tlsproxy/config.h"
#include "tlsproxy/conn.h"
#include "tlsproxy/dns.h"
#include "tlsproxy/dns_parse.h"
#include "tlsproxy/gen.h"
#include "tlsproxy/metrics.h"
#include "tlsproxy/mta_sts.h"
#include "tlsproxy/sts.h"
#include "tlsproxy/tls_policy.h"
#include "tlsproxy/tls_verify.h"
#include "tlsproxy/wctx.h"

#define TP_DEST_HOSTS    10 /* MX hosts looked at */
#define TP_DEST_ADDRS    5  /* addresses tried per entry */
#define TP_DEST_SESSIONS 2  /* sessions made per entry */
#define TP_DEST_HOSTADDR 8  /* addresses kept per host */

struct dest_host {
	struct tp_dest *d;
	char name[TP_HOST_MAX];  /* as listed in the MX record (qname) */
	char canon[TP_HOST_MAX]; /* its CNAME target, or "" */
	struct tp_dns_query *qa, *qaaaa, *qtlsa;
	struct sockaddr_storage addrs[TP_DEST_HOSTADDR];
	unsigned naddrs;
	bool addr_secure;  /* every address RRset secure */
	bool addr_error;   /* a lookup failed (not NXDOMAIN/NODATA) */
	bool tlsa_at_name; /* the TLSA retry at the listed name is on */
	struct tp_dane dane;
	bool use_dane;  /* dane is set: DNS decided the level */
	int result;     /* enum tp_dane_result of a failed host, or -1 */
	char fail[400]; /* this host may not be used: the 421 */
};

struct tp_dest {
	struct tp_conn *c;
	char domain[TP_HOST_MAX]; /* mx: domain, or the host name */
	unsigned port;
	bool mx;        /* an mx: entry */
	bool mx_secure; /* the MX RRset (or its absence) is secure */
	struct tp_dns_query *qmx;
	struct dest_host hosts[TP_DEST_HOSTS];
	unsigned nhosts;
	unsigned pending; /* lookups in flight */
	bool resolved;
	unsigned hi, ai; /* next host, next address of it */
	unsigned tried;  /* addresses handed out */
	unsigned sessions;
	uint32_t rng;
	/* MTA-STS (mta_sts): the domain's policy, or NULL */
	struct tp_sts_query *qsts;
	struct tp_sts *sts;
	struct tp_verify *sts_verify; /* enforce: secure, the MX name */
	int base_security;            /* the level without the policy */
	const struct tp_verify *base_verify;
};

/* dane_wanted - the route verifies TLSA records from DNS. */
static bool
dane_wanted(const struct tp_conn *c)
{
	return (c->security == TP_SEC_DANE ||
		   c->security == TP_SEC_DANE_ONLY) &&
	    c->verify != NULL && c->verify->ntlsa == 0;
}

static unsigned
dest_rnd(void *arg, unsigned n)
{
	uint32_t *s = arg;

	*s ^= *s << 13;
	*s ^= *s >> 17;
	*s ^= *s << 5;
	return *s % n;
}

/* reply_text - "421 4.7.5 text" without its codes, for the log. */
static const char *
reply_text(const char *reply)
{
	const char *p = strchr(reply, ' ');

	if (p != NULL && (p = strchr(p + 1, ' ')) != NULL)
		return p + 1;
	return reply;
}

/* dest_settle - every lookup is in: back to the connect loop.  Each DNS
 * callback ends with it, and nothing touches d after it (the session may
 * have moved on and freed it). */
static void
dest_settle(struct tp_dest *d)
{
	if (d->pending > 0 || d->resolved)
		return;
	d->resolved = true;
	tp_upstream_next(d->c);
}

/* dest_fail - the whole entry cannot be used; this is why. */
__attribute__((format(printf, 2, 3))) static void
dest_fail(struct tp_dest *d, const char *fmt, ...)
{
	struct tp_conn *c = d->c;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(tp_conn_reply(c), TP_CONN_REPLY_MAX, fmt, ap);
	va_end(ap);
	c->last_err = TP_EPROTO;
	tp_conn_log(c, TP_LOG_INFO, "%s", reply_text(tp_conn_reply(c)));
}

/*
 * host_fail - this host may not be used (dane-only without TLSA, TLSA
 * lookup error): Postfix's words, 4.7.5.
 */
static void
host_fail(struct dest_host *h, const char *what, int result)
{
	struct tp_dest *d = h->d;

	h->result = result;
	snprintf(h->fail, sizeof(h->fail),
	    "421 4.7.5 TLS policy lookup for %s/%s: %s", d->domain, h->name,
	    what);
}

static void
tlsa_free(struct tp_dane *dn)
{
	for (size_t i = 0; i < dn->ntlsa; i++)
		free(dn->tlsa[i].data);
	free(dn->tlsa);
	dn->tlsa = NULL;
	dn->ntlsa = 0;
}

/* host_dane_level - no usable TLSA: may for dane, a failure for
 * dane-only (spec 4.8). */
static void
host_no_tlsa(struct dest_host *h, int level, const char *why)
{
	struct tp_conn *c = h->d->c;

	if (c->security == TP_SEC_DANE_ONLY) {
		host_fail(h, why, TP_DANE_REFUSED);
		return;
	}
	h->use_dane = true;
	h->dane.level = level;
}

static void tlsa_lookup(struct dest_host *h, const char *name);

static void
host_on_tlsa(void *arg, const struct tp_dns_answer *a)
{
	struct dest_host *h = arg;
	struct tp_dest *d = h->d;
	struct tp_dane *dn = &h->dane;
	char tname[TP_HOST_MAX + 32];
	size_t n = 0, usable = 0;

	h->qtlsa = NULL;
	d->pending--;
	switch (a->outcome) {
	case TP_DNS_OK:
		break;
	case TP_DNS_NODATA:
	case TP_DNS_NXDOMAIN:
		/* RFC 7671 7: at the CNAME target first, then the name. */
		if (h->canon[0] && !h->tlsa_at_name) {
			h->tlsa_at_name = true;
			tlsa_lookup(h, h->name);
			dest_settle(d);
			return;
		}
		host_no_tlsa(h, TP_SEC_MAY, "no TLSA records found");
		dest_settle(d);
		return;
	default:
		tp_conn_log(d->c, TP_LOG_INFO,
		    "TLSA lookup error for %s:%u: %s (%s)", h->name, d->port,
		    tp_dns_outcome_name(a->outcome), a->why);
		snprintf(tname, sizeof(tname), "TLSA lookup error for %s:%u",
		    h->name, d->port);
		host_fail(h, tname, TP_DANE_LOOKUP_ERROR);
		dest_settle(d);
		return;
	}
	if (a->dnssec != TP_DNSSEC_SECURE) {
		host_no_tlsa(h, TP_SEC_MAY, "no TLSA records found");
		dest_settle(d);
		return;
	}
	while (a->data[n] != NULL)
		n++;
	tlsa_free(dn);
	if ((dn->tlsa = calloc(n + 1, sizeof(*dn->tlsa))) == NULL) {
		host_fail(h, "out of memory", -1);
		dest_settle(d);
		return;
	}
	for (size_t i = 0; i < n; i++) {
		unsigned char u, s, m;
		const unsigned char *data;
		size_t len;
		struct tp_tlsa *t = &dn->tlsa[usable];

		if (tp_dns_tlsa((const unsigned char *)a->data[i],
			(size_t)a->len[i], &u, &s, &m, &data, &len) < 0 ||
		    !tp_dns_tlsa_usable(u, s, m, len))
			continue;
		if ((t->data = malloc(len)) == NULL)
			continue;
		memcpy(t->data, data, len);
		t->len = len;
		t->usage = u;
		t->selector = s;
		t->mtype = m;
		usable++;
	}
	dn->ntlsa = usable;
	/* The base domain is where the records were found (RFC 7671 7). */
	snprintf(dn->base, sizeof(dn->base), "%s",
	    h->canon[0] && !h->tlsa_at_name ? h->canon : h->name);
	snprintf(dn->qname, sizeof(dn->qname), "%s", h->name);
	if (usable == 0) {
		tp_conn_log(d->c, TP_LOG_WARNING,
		    "%s:%u: all TLSA records unusable, fallback to "
		    "unauthenticated TLS",
		    h->name, d->port);
		host_no_tlsa(h, TP_SEC_ENCRYPT, "all TLSA records unusable");
	} else {
		h->use_dane = true;
		dn->level = TP_SEC_DANE;
		dn->trusted_only = !d->mx_secure;
	}
	dest_settle(d);
}

static void
tlsa_lookup(struct dest_host *h, const char *name)
{
	struct tp_dest *d = h->d;
	char qname[TP_HOST_MAX + 32];

	if (tp_dns_tlsa_name(qname, sizeof(qname), d->port, name) < 0) {
		host_fail(h, "name too long", TP_DANE_LOOKUP_ERROR);
		return;
	}
	h->qtlsa = tp_dns_lookup(d->c->w, qname, TP_DNS_TLSA, host_on_tlsa, h);
	if (h->qtlsa == NULL) {
		host_fail(h, "out of memory", -1);
		return;
	}
	d->pending++;
}

/* host_balance - IPv4 and IPv6 in turn, IPv4 first, whichever answer
 * came first (Postfix's smtp_balance_inet_protocols). */
static void
host_balance(struct dest_host *h)
{
	struct sockaddr_storage v4[TP_DEST_HOSTADDR], v6[TP_DEST_HOSTADDR];
	unsigned n4 = 0, n6 = 0, i4 = 0, i6 = 0, n = 0;

	for (unsigned i = 0; i < h->naddrs; i++) {
		if (h->addrs[i].ss_family == AF_INET)
			v4[n4++] = h->addrs[i];
		else
			v6[n6++] = h->addrs[i];
	}
	while (i4 < n4 || i6 < n6) {
		if (i4 < n4)
			h->addrs[n++] = v4[i4++];
		if (i6 < n6)
			h->addrs[n++] = v6[i6++];
	}
}

/* host_addrs_done - both address lookups are in: decide on TLSA. */
static void
host_addrs_done(struct dest_host *h)
{
	struct tp_dest *d = h->d;
	struct tp_conn *c = d->c;

	host_balance(h);
	if (h->naddrs == 0 || !dane_wanted(c))
		return;
	/* An insecure host name gets no TLSA lookup (RFC 7672 2.2.2). */
	if (!h->addr_secure) {
		host_no_tlsa(h, TP_SEC_MAY, "no TLSA records found");
		return;
	}
	if (!d->mx_secure && c->security == TP_SEC_DANE_ONLY) {
		host_fail(h, "non DNSSEC destination", TP_DANE_REFUSED);
		return;
	}
	tlsa_lookup(h, h->canon[0] ? h->canon : h->name);
}

static void
host_on_addr(void *arg, const struct tp_dns_answer *a)
{
	struct dest_host *h = arg;
	struct tp_dest *d = h->d;
	bool v6 = a->qtype == TP_DNS_AAAA;

	if (v6)
		h->qaaaa = NULL;
	else
		h->qa = NULL;
	d->pending--;
	if (a->dnssec != TP_DNSSEC_SECURE)
		h->addr_secure = false;
	if (a->canon != NULL && h->canon[0] == '\0')
		snprintf(h->canon, sizeof(h->canon), "%s", a->canon);
	if (a->outcome == TP_DNS_SERVFAIL || a->outcome == TP_DNS_TIMEOUT) {
		h->addr_error = true;
		tp_conn_log(d->c, TP_LOG_INFO,
		    "Host or domain name not found. Name service error for "
		    "name=%s type=%s: Host not found, try again (%s%s%s)",
		    h->name, tp_dns_type_name(a->qtype),
		    tp_dns_outcome_name(a->outcome), a->why[0] ? ": " : "",
		    a->why);
	}
	for (size_t i = 0; a->outcome == TP_DNS_OK && a->data[i] != NULL &&
	     h->naddrs < TP_DEST_HOSTADDR;
	     i++) {
		struct sockaddr_storage *ss = &h->addrs[h->naddrs];

		memset(ss, 0, sizeof(*ss));
		if (!v6 && a->len[i] == 4) {
			struct sockaddr_in *sin = (struct sockaddr_in *)ss;

			sin->sin_family = AF_INET;
			sin->sin_port = htons((uint16_t)d->port);
			memcpy(&sin->sin_addr, a->data[i], 4);
		} else if (v6 && a->len[i] == 16) {
			struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;

			sin6->sin6_family = AF_INET6;
			sin6->sin6_port = htons((uint16_t)d->port);
			memcpy(&sin6->sin6_addr, a->data[i], 16);
		} else {
			continue;
		}
		h->naddrs++;
	}
	if (h->qa == NULL && h->qaaaa == NULL)
		host_addrs_done(h);
	dest_settle(d);
}

/* host_add - look up the addresses of one more host. */
static void
host_add(struct tp_dest *d, const char *name)
{
	struct dest_host *h;

	if (d->nhosts >= TP_DEST_HOSTS)
		return;
	h = &d->hosts[d->nhosts++];
	h->d = d;
	snprintf(h->name, sizeof(h->name), "%s", name);
	h->addr_secure = true;
	h->qa = tp_dns_lookup(d->c->w, name, TP_DNS_A, host_on_addr, h);
	h->qaaaa = tp_dns_lookup(d->c->w, name, TP_DNS_AAAA, host_on_addr, h);
	d->pending += (h->qa != NULL) + (h->qaaaa != NULL);
	if (h->qa == NULL || h->qaaaa == NULL)
		snprintf(h->fail, sizeof(h->fail), "421 4.3.0 out of memory");
}

static void
dest_on_mx(void *arg, const struct tp_dns_answer *a)
{
	struct tp_dest *d = arg;
	struct tp_mx mx[TP_DEST_HOSTS * 2];
	size_t n = 0;

	d->qmx = NULL;
	d->pending--;
	d->mx_secure = a->dnssec == TP_DNSSEC_SECURE;
	switch (a->outcome) {
	case TP_DNS_OK:
		break;
	case TP_DNS_NODATA:
		/* RFC 5321 5.1: no MX, the domain's own addresses */
		host_add(d, d->domain);
		dest_settle(d);
		return;
	case TP_DNS_NXDOMAIN:
		d->c->dest_perm = TP_DEST_NXDOMAIN;
		dest_fail(d,
		    "421 4.4.4 Host or domain name not found. Name service "
		    "error for name=%s type=%s: Host not found",
		    d->domain, "MX");
		dest_settle(d);
		return;
	default:
		tp_conn_log(d->c, TP_LOG_INFO, "MX lookup for %s: %s (%s%s%s)",
		    d->domain, tp_dns_outcome_name(a->outcome),
		    tp_dnssec_name(a->dnssec), a->why[0] ? ": " : "", a->why);
		dest_fail(d,
		    "421 4.4.3 Host or domain name not found. Name service "
		    "error for name=%s type=%s: Host not found, try again",
		    d->domain, "MX");
		dest_settle(d);
		return;
	}
	for (size_t i = 0; a->data[i] != NULL && n < sizeof(mx) / sizeof(*mx);
	     i++)
		if (tp_dns_mx((const unsigned char *)a->data[i],
			(size_t)a->len[i], &mx[n]) == 0)
			n++;
	if (tp_dns_null_mx(mx, n)) {
		d->c->dest_perm = TP_DEST_NULLMX;
		dest_fail(d, "421 4.1.10 Domain %s does not accept mail%s",
		    d->domain, " (nullMX)");
		dest_settle(d);
		return;
	}
	n = tp_dns_mx_order(mx, n, dest_rnd, &d->rng);
	for (size_t i = 0; i < n; i++)
		if (mx[i].host[0] != '\0')
			host_add(d, mx[i].host);
	if (d->nhosts == 0)
		dest_fail(d,
		    "421 4.4.3 Host or domain name not found. Name service "
		    "error for name=%s type=%s: Malformed or unexpected name "
		    "server reply",
		    d->domain, "MX");
	dest_settle(d);
}

static void
dest_on_sts(void *arg, struct tp_sts *sts, int fail)
{
	struct tp_dest *d = arg;
	struct tp_conn *c = d->c;

	d->qsts = NULL;
	d->pending--;
	if (fail >= 0)
		tp_conn_tlsrpt_domain(
		    c, d->domain, TP_MTA_STS_POLICY_STS, fail);
	if (sts != NULL && sts->pol->mode == TP_MTA_STS_MODE_NONE) {
		tp_sts_release(sts);
		sts = NULL;
	}
	d->sts = sts;
	if (sts != NULL) {
		tp_conn_log(c, TP_LOG_INFO,
		    "MTA-STS policy for %s: mode %s, "
		    "id %s",
		    d->domain, tp_mta_sts_mode_name(sts->pol->mode),
		    sts->pol->id);
		if (sts->pol->mode == TP_MTA_STS_MODE_ENFORCE) {
			/* RFC 8461 4.2: WebPKI, the MX host's name */
			d->sts_verify = tp_verify_new(TP_SEC_SECURE, d->domain);
			if (d->sts_verify != NULL)
				tp_verify_add_match(d->sts_verify, "hostname");
		}
	}
	dest_settle(d);
}

int
tp_dest_start(struct tp_conn *c, const struct tp_hostport *hp)
{
	struct tp_dest *d = calloc(1, sizeof(*d));

	if (d == NULL)
		return -1;
	c->dest = d;
	d->c = c;
	snprintf(d->domain, sizeof(d->domain), "%s", hp->host);
	d->port = hp->port;
	d->mx = hp->mx;
	d->rng = (uint32_t)uv_hrtime() ^ (uint32_t)(uintptr_t)d;
	if (d->rng == 0)
		d->rng = 1;
	c->state = CS_CONNECT;
	uv_timer_stop(&c->timer); /* every lookup has dns_timeout */
	/* the level without an MTA-STS policy (dest_apply_sts) */
	d->base_security = c->security;
	d->base_verify = c->verify;
	if (!hp->mx) {
		/* [host]: a statically validated MX of itself (Postfix) */
		d->mx_secure = true;
		host_add(d, d->domain);
		return d->pending > 0 ? 0 : -1;
	}
	d->qmx = tp_dns_lookup(c->w, d->domain, TP_DNS_MX, dest_on_mx, d);
	if (d->qmx == NULL)
		return -1;
	d->pending++;
	if (c->sts_wanted) {
		const struct tp_cval *ca = &c->r->v[TP_K_CA_FILE];

		d->qsts = tp_sts_lookup(
		    c->w, d->domain, ca->set ? ca->s : NULL, dest_on_sts, d);
		if (d->qsts != NULL)
			d->pending++;
	}
	return 0;
}

/* host_dane_usable - DNSSEC TLSA records decide for this host. */
static bool
host_dane_usable(const struct dest_host *h)
{
	return h->use_dane && h->dane.level == TP_SEC_DANE;
}

/* sts_refuses - an enforce policy, no DANE, and h is not a policy MX. */
static bool
sts_refuses(const struct tp_dest *d, const struct dest_host *h)
{
	return d->sts != NULL && d->sts->pol->mode == TP_MTA_STS_MODE_ENFORCE &&
	    !host_dane_usable(h) &&
	    tp_mta_sts_policy_match(d->sts->pol, h->name) == NULL;
}

/*
 * dest_apply_sts - the level this host gets: DANE when it has usable
 * records (an MTA-STS policy never overrides it, RFC 8461 2), else an
 * enforce policy's `secure` against the MX name, else the route's; the
 * report's policy type goes with it.
 */
static void
dest_apply_sts(struct tp_dest *d, const struct dest_host *h)
{
	struct tp_conn *c = d->c;

	c->security = d->base_security;
	c->verify = d->base_verify;
	c->sts_mode = TP_MTA_STS_MODE_NONE;
	c->sts_match = true;
	c->rpt_domain = d->mx ? d->domain : NULL;
	c->rpt_policy = TP_MTA_STS_POLICY_NO_POLICY_FOUND;
	if (host_dane_usable(h)) {
		c->rpt_policy = TP_MTA_STS_POLICY_TLSA;
		return;
	}
	if (d->sts == NULL)
		return;
	c->rpt_policy = TP_MTA_STS_POLICY_STS;
	c->sts_mode = d->sts->pol->mode;
	c->sts_match = tp_mta_sts_policy_match(d->sts->pol, h->name) != NULL;
	if (c->sts_mode == TP_MTA_STS_MODE_ENFORCE && d->sts_verify != NULL) {
		c->security = TP_SEC_SECURE;
		c->verify = d->sts_verify;
		c->dane = NULL;
	}
}

int
tp_dest_next(struct tp_conn *c)
{
	struct tp_dest *d = c->dest;
	struct dest_host *h;
	char why[200];

	if (!d->resolved)
		return 0;
	for (; d->hi < d->nhosts; d->hi++, d->ai = 0) {
		h = &d->hosts[d->hi];
		if (d->tried >= TP_DEST_ADDRS ||
		    d->sessions >= TP_DEST_SESSIONS)
			break;
		if (d->ai == 0 && h->fail[0]) {
			/* the host's own 421, unless a better one came */
			snprintf(
			    tp_conn_reply(c), TP_CONN_REPLY_MAX, "%s", h->fail);
			c->last_err = TP_EPROTO;
			tp_conn_log(c, TP_LOG_INFO, "%s", reply_text(h->fail));
			tp_metrics_dane(c->rt->stats, h->result);
			tp_conn_tlsrpt_domain(c, d->domain,
			    TP_MTA_STS_POLICY_TLSA,
			    h->result == TP_DANE_LOOKUP_ERROR
				? TP_MTA_STS_RESULT_DNSSEC_INVALID
				: TP_MTA_STS_RESULT_DANE_REQUIRED);
			continue;
		}
		if (d->ai == 0 && sts_refuses(d, h)) {
			/* RFC 8461 4.1: not one of the policy's MX hosts */
			snprintf(tp_conn_reply(c), TP_CONN_REPLY_MAX,
			    "421 4.7.5 MTA-STS policy for %s: MX host %s does "
			    "not match the policy's mx patterns",
			    d->domain, h->name);
			c->last_err = TP_EPROTO;
			tp_conn_log(
			    c, TP_LOG_INFO, "%s", reply_text(tp_conn_reply(c)));
			tp_conn_tlsrpt_domain(c, d->domain,
			    TP_MTA_STS_POLICY_STS,
			    TP_MTA_STS_RESULT_VALIDATION_FAILURE);
			continue;
		}
		if (d->ai == 0 && h->naddrs == 0) {
			snprintf(why, sizeof(why),
			    "Host or domain name not found. Name service "
			    "error for name=%s type=A: Host not found%s",
			    h->name, h->addr_error ? ", try again" : "");
			snprintf(tp_conn_reply(c), TP_CONN_REPLY_MAX,
			    "421 4.4.%d %s", h->addr_error ? 3 : 4, why);
			c->last_err = TP_EPROTO;
			continue;
		}
		if (d->ai >= h->naddrs)
			continue;
		snprintf(c->up_host, sizeof(c->up_host), "%s", h->name);
		memcpy(&c->up_ss, &h->addrs[d->ai], sizeof(c->up_ss));
		c->up_port = d->port;
		c->dane = h->use_dane ? &h->dane : NULL;
		dest_apply_sts(d, h);
		d->ai++;
		d->tried++;
		return 1;
	}
	return -1;
}

void
tp_dest_session(struct tp_conn *c)
{
	if (c->dest != NULL)
		c->dest->sessions++;
}

void
tp_dest_free(struct tp_conn *c)
{
	struct tp_dest *d = c->dest;

	if (d == NULL)
		return;
	tp_dns_cancel(d->qmx);
	tp_sts_cancel(d->qsts);
	tp_sts_release(d->sts);
	if (c->verify == d->sts_verify && d->sts_verify != NULL) {
		c->verify = d->base_verify;
		c->security = d->base_security;
	}
	tp_verify_free(d->sts_verify);
	for (unsigned i = 0; i < d->nhosts; i++) {
		tp_dns_cancel(d->hosts[i].qa);
		tp_dns_cancel(d->hosts[i].qaaaa);
		tp_dns_cancel(d->hosts[i].qtlsa);
		tlsa_free(&d->hosts[i].dane);
	}
	free(d);
	c->dest = NULL;
	c->dane = NULL;
}
