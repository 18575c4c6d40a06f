/*
 * dns_parse.c - DNS record data: names (RFC 1035 3.1), MX (3.3.9), TLSA
 * (RFC 6698 2.1), the order of MX hosts (RFC 5321 5.1) and null MX (RFC
 * 7505).  libunbound returns rdata with names uncompressed, so a pointer
 * label is malformed here.  Pure.
 */
#include "tlsproxy/dns_parse.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

const char *
tp_dns_outcome_name(enum tp_dns_outcome o)
{
	static const char *names[] = {
	    "ok", "nodata", "nxdomain", "servfail", "timeout"};

	return o < TP_DNS_OUTCOMES ? names[o] : "?";
}

const char *
tp_dnssec_name(enum tp_dnssec s)
{
	static const char *names[] = {"insecure", "secure", "bogus"};

	return s < TP_DNSSEC_STATES ? names[s] : "?";
}

const char *
tp_dns_type_name(int type)
{
	switch (type) {
	case TP_DNS_A:
		return "A";
	case TP_DNS_AAAA:
		return "AAAA";
	case TP_DNS_MX:
		return "MX";
	case TP_DNS_TLSA:
		return "TLSA";
	case TP_DNS_TXT:
		return "TXT";
	case TP_DNS_CNAME:
		return "CNAME";
	default:
		return "other";
	}
}

int
tp_dns_name(const unsigned char *data, size_t len, size_t *off, char *out,
    size_t outlen)
{
	size_t o = 0, p = *off;
	unsigned n;

	if (outlen == 0)
		return -1;
	for (;;) {
		if (p >= len)
			return -1;
		n = data[p++];
		if (n == 0)
			break;
		if (n > 63 || p + n > len) /* a pointer or a short label */
			return -1;
		if (o + (o > 0) + n + 1 > outlen)
			return -1;
		if (o > 0)
			out[o++] = '.';
		for (unsigned i = 0; i < n; i++) {
			unsigned char ch = data[p + i];

			/* a dot or a NUL inside a label would change the
			 * name's meaning as text */
			if (ch == '.' || ch == '\0')
				return -1;
			out[o++] = (char)tolower(ch);
		}
		p += n;
	}
	out[o] = '\0';
	*off = p;
	return 0;
}

int
tp_dns_mx(const unsigned char *data, size_t len, struct tp_mx *mx)
{
	size_t off = 2;

	if (len < 3)
		return -1;
	mx->pref = (unsigned)data[0] << 8 | data[1];
	if (tp_dns_name(data, len, &off, mx->host, sizeof(mx->host)) < 0 ||
	    off != len)
		return -1;
	return 0;
}

bool
tp_dns_null_mx(const struct tp_mx *mx, size_t n)
{
	return n == 1 && mx[0].host[0] == '\0';
}

size_t
tp_dns_mx_order(struct tp_mx *mx, size_t n,
    unsigned (*rnd)(void *arg, unsigned n), void *arg)
{
	struct tp_mx t;
	size_t i, j, k;

	/* Shuffle (Fisher-Yates), then a stable sort by preference: equal
	 * preferences end up in random order (Postfix does the same). */
	for (i = n; i > 1; i--) {
		j = rnd(arg, (unsigned)i);
		t = mx[i - 1];
		mx[i - 1] = mx[j];
		mx[j] = t;
	}
	for (i = 1; i < n; i++) {
		t = mx[i];
		for (j = i; j > 0 && mx[j - 1].pref > t.pref; j--)
			mx[j] = mx[j - 1];
		mx[j] = t;
	}
	/* A host listed twice keeps its first (best) place. */
	for (i = 0, k = 0; i < n; i++) {
		for (j = 0; j < k; j++)
			if (strcmp(mx[j].host, mx[i].host) == 0)
				break;
		if (j == k)
			mx[k++] = mx[i];
	}
	return k;
}

int
tp_dns_tlsa(const unsigned char *data, size_t len, unsigned char *usage,
    unsigned char *selector, unsigned char *mtype, const unsigned char **assoc,
    size_t *alen)
{
	if (len < 3)
		return -1;
	*usage = data[0];
	*selector = data[1];
	*mtype = data[2];
	*assoc = data + 3;
	*alen = len - 3;
	return 0;
}

bool
tp_dns_tlsa_usable(unsigned char usage, unsigned char selector,
    unsigned char mtype, size_t alen)
{
	if (usage != 2 && usage != 3)
		return false;
	if (selector > 1)
		return false;
	switch (mtype) {
	case 0:
		return alen > 0;
	case 1:
		return alen == 32;
	case 2:
		return alen == 64;
	default:
		return false;
	}
}

int
tp_dns_tlsa_name(char *out, size_t len, unsigned port, const char *host)
{
	int n = snprintf(out, len, "_%u._tcp.%s", port, host);

	return n < 0 || (size_t)n >= len ? -1 : 0;
}
