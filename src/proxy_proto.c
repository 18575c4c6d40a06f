/*
 * proxy_proto.c - PROXY protocol v1/v2 (haproxy's proxy-protocol.txt).
 * Decoding is strict: v1 lines end in CRLF within 107 bytes and carry
 * valid addresses and ports; v2 must carry the signature, version 2, a
 * known command and family, and a length that fits TP_PROXY_HDR_MAX.
 * TLVs are skipped.  Pure.
 */
#include "tlsproxy/proxy_proto.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tlsproxy/parse.h"

static const char v2sig[12] = "\r\n\r\n\0\r\nQUIT\n";

/* tlv - append type/length/value at p + *off (bounded by cap). */
static bool
tlv(unsigned char *p, size_t *off, size_t cap, unsigned char type,
    const void *val, size_t vlen)
{
	if (*off + 3 + vlen > cap || vlen > 0xffff)
		return false;
	p[*off] = type;
	p[*off + 1] = (unsigned char)(vlen >> 8);
	p[*off + 2] = (unsigned char)vlen;
	memcpy(p + *off + 3, val, vlen);
	*off += 3 + vlen;
	return true;
}

/* ssl_tlvs - PP2_TYPE_SSL with its sub-TLVs, and PP2_TYPE_AUTHORITY. */
static size_t
ssl_tlvs(const struct tp_proxy_tls *t, unsigned char *p, size_t cap)
{
	unsigned char ssl[512];
	size_t o = 0, so = 5;

	ssl[0] = (unsigned char)(0x01 | (t->cert ? 0x02 | 0x04 : 0));
	ssl[1] = (unsigned char)(t->verify >> 24);
	ssl[2] = (unsigned char)(t->verify >> 16);
	ssl[3] = (unsigned char)(t->verify >> 8);
	ssl[4] = (unsigned char)t->verify;
	if ((t->version &&
		!tlv(ssl, &so, sizeof(ssl), 0x21, t->version,
		    strlen(t->version))) ||
	    (t->cn &&
		!tlv(ssl, &so, sizeof(ssl), 0x22, t->cn, strlen(t->cn))) ||
	    (t->cipher &&
		!tlv(
		    ssl, &so, sizeof(ssl), 0x23, t->cipher, strlen(t->cipher))))
		return 0;
	if (t->sni && !tlv(p, &o, cap, 0x02, t->sni, strlen(t->sni)))
		return 0;
	if (!tlv(p, &o, cap, 0x20, ssl, so))
		return 0;
	return o;
}

int
tp_proxy_encode(int version, const struct sockaddr_storage *src,
    const struct sockaddr_storage *dst, const struct tp_proxy_tls *tls,
    char *buf, size_t len)
{
	char s[INET6_ADDRSTRLEN], d[INET6_ADDRSTRLEN];
	bool v6 = src->ss_family == AF_INET6;
	const struct sockaddr_in *s4 = (const void *)src,
				 *d4 = (const void *)dst;
	const struct sockaddr_in6 *s6 = (const void *)src,
				  *d6 = (const void *)dst;
	unsigned char *p = (unsigned char *)buf;
	int n;

	if (src->ss_family != dst->ss_family ||
	    (src->ss_family != AF_INET && src->ss_family != AF_INET6)) {
		if (version == 1)
			return snprintf(buf, len, "PROXY UNKNOWN\r\n");
		if (len < 16)
			return -1;
		memcpy(p, v2sig, 12);
		p[12] = 0x20; /* LOCAL */
		p[13] = 0x00;
		p[14] = p[15] = 0;
		return 16;
	}
	if (version == 1) {
		inet_ntop(src->ss_family,
		    v6 ? (const void *)&s6->sin6_addr
		       : (const void *)&s4->sin_addr,
		    s, sizeof(s));
		inet_ntop(dst->ss_family,
		    v6 ? (const void *)&d6->sin6_addr
		       : (const void *)&d4->sin_addr,
		    d, sizeof(d));
		n = snprintf(buf, len, "PROXY %s %s %s %u %u\r\n",
		    v6 ? "TCP6" : "TCP4", s, d,
		    ntohs(v6 ? s6->sin6_port : s4->sin_port),
		    ntohs(v6 ? d6->sin6_port : d4->sin_port));
		return n < 0 || (size_t)n >= len ? -1 : n;
	}
	n = v6 ? 36 : 12;
	if (len < (size_t)(16 + n))
		return -1;
	if (tls != NULL)
		n += (int)ssl_tlvs(tls, p + 16 + n, len - 16 - (size_t)n);
	memcpy(p, v2sig, 12);
	p[12] = 0x21;             /* version 2, PROXY */
	p[13] = v6 ? 0x21 : 0x11; /* TCP over IPv6 / IPv4 */
	p[14] = (unsigned char)(n >> 8);
	p[15] = (unsigned char)n;
	if (v6) {
		memcpy(p + 16, &s6->sin6_addr, 16);
		memcpy(p + 32, &d6->sin6_addr, 16);
		memcpy(p + 48, &s6->sin6_port, 2);
		memcpy(p + 50, &d6->sin6_port, 2);
	} else {
		memcpy(p + 16, &s4->sin_addr, 4);
		memcpy(p + 20, &d4->sin_addr, 4);
		memcpy(p + 24, &s4->sin_port, 2);
		memcpy(p + 26, &d4->sin_port, 2);
	}
	return 16 + n;
}

static int
v1_addr(
    const char *ip, const char *port, int family, struct sockaddr_storage *ss)
{
	unsigned long long pn;
	const char *why;

	memset(ss, 0, sizeof(*ss));
	if (tp_parse_uint(port, 0, 65535, &pn, &why) < 0 ||
	    (port[0] == '0' && port[1] != '\0'))
		return -1;
	if (family == AF_INET) {
		struct sockaddr_in *s4 = (struct sockaddr_in *)ss;

		s4->sin_family = AF_INET;
		s4->sin_port = htons((uint16_t)pn);
		return inet_pton(AF_INET, ip, &s4->sin_addr) == 1 ? 0 : -1;
	}
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;

	s6->sin6_family = AF_INET6;
	s6->sin6_port = htons((uint16_t)pn);
	return inet_pton(AF_INET6, ip, &s6->sin6_addr) == 1 ? 0 : -1;
}

static int
decode_v1(const char *buf, size_t len, struct sockaddr_storage *src,
    struct sockaddr_storage *dst, const char **why)
{
	char line[TP_PROXY_V1_MAX + 1], *f[6], *save = NULL;
	const char *crlf;
	size_t n;
	int nf = 0, family;

	crlf = memchr(buf, '\n', len < TP_PROXY_V1_MAX ? len : TP_PROXY_V1_MAX);
	if (crlf == NULL) {
		if (len >= TP_PROXY_V1_MAX) {
			*why = "PROXY v1 line too long";
			return -1;
		}
		return 0;
	}
	n = (size_t)(crlf - buf);
	if (n == 0 || buf[n - 1] != '\r') {
		*why = "PROXY v1 line without CRLF";
		return -1;
	}
	memcpy(line, buf, n - 1);
	line[n - 1] = '\0';
	for (char *t = strtok_r(line, " ", &save); t && nf < 6;
	     t = strtok_r(NULL, " ", &save))
		f[nf++] = t;
	if (nf >= 2 && strcmp(f[0], "PROXY") == 0 &&
	    strcmp(f[1], "UNKNOWN") == 0) {
		src->ss_family = dst->ss_family = AF_UNSPEC;
		return (int)n + 1;
	}
	if (nf != 6 || strcmp(f[0], "PROXY") != 0 ||
	    (strcmp(f[1], "TCP4") != 0 && strcmp(f[1], "TCP6") != 0)) {
		*why = "bad PROXY v1 header";
		return -1;
	}
	family = f[1][3] == '4' ? AF_INET : AF_INET6;
	if (v1_addr(f[2], f[4], family, src) < 0 ||
	    v1_addr(f[3], f[5], family, dst) < 0) {
		*why = "bad address in PROXY v1 header";
		return -1;
	}
	return (int)n + 1;
}

static int
decode_v2(const unsigned char *p, size_t len, struct sockaddr_storage *src,
    struct sockaddr_storage *dst, const char **why)
{
	size_t body;

	if (len < 16)
		return 0;
	body = ((size_t)p[14] << 8) | p[15];
	if ((p[12] & 0xf0) != 0x20 || 16 + body > TP_PROXY_HDR_MAX) {
		*why = "bad PROXY v2 header";
		return -1;
	}
	if (len < 16 + body)
		return 0;
	memset(src, 0, sizeof(*src));
	memset(dst, 0, sizeof(*dst));
	if ((p[12] & 0x0f) == 0x00) { /* LOCAL: the connection's own */
		src->ss_family = dst->ss_family = AF_UNSPEC;
		return (int)(16 + body);
	}
	if ((p[12] & 0x0f) != 0x01) {
		*why = "bad PROXY v2 command";
		return -1;
	}
	if (p[13] == 0x11 && body >= 12) {
		struct sockaddr_in *s4 = (void *)src, *d4 = (void *)dst;

		s4->sin_family = d4->sin_family = AF_INET;
		memcpy(&s4->sin_addr, p + 16, 4);
		memcpy(&d4->sin_addr, p + 20, 4);
		memcpy(&s4->sin_port, p + 24, 2);
		memcpy(&d4->sin_port, p + 26, 2);
	} else if (p[13] == 0x21 && body >= 36) {
		struct sockaddr_in6 *s6 = (void *)src, *d6 = (void *)dst;

		s6->sin6_family = d6->sin6_family = AF_INET6;
		memcpy(&s6->sin6_addr, p + 16, 16);
		memcpy(&d6->sin6_addr, p + 32, 16);
		memcpy(&s6->sin6_port, p + 48, 2);
		memcpy(&d6->sin6_port, p + 50, 2);
	} else if ((p[13] & 0xf0) == 0x00) { /* UNSPEC */
		src->ss_family = dst->ss_family = AF_UNSPEC;
	} else {
		*why = "unsupported PROXY v2 address family";
		return -1;
	}
	return (int)(16 + body);
}

int
tp_proxy_decode(const char *buf, size_t len, struct sockaddr_storage *src,
    struct sockaddr_storage *dst, const char **why)
{
	size_t n = len < 12 ? len : 12;

	if (len > 0 && buf[0] == 'P') {
		if (memcmp(buf, "PROXY ", len < 6 ? len : 6) != 0) {
			*why = "not a PROXY header";
			return -1;
		}
		return len < 6 ? 0 : decode_v1(buf, len, src, dst, why);
	}
	if (memcmp(buf, v2sig, n) != 0) {
		*why = "not a PROXY header";
		return -1;
	}
	if (len < 12)
		return 0;
	return decode_v2((const unsigned char *)buf, len, src, dst, why);
}
