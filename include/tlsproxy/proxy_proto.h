/*
 * proxy_proto.h - HAProxy PROXY protocol v1 (text) and v2 (binary)
 * headers: encode one for the backend, decode one from a load balancer.
 * Pure (addresses as sockaddr_storage).
 */
#ifndef TLSPROXY_PROXY_PROTO_H
#define TLSPROXY_PROXY_PROTO_H

#include <stddef.h>
#include <sys/socket.h>

#define TP_PROXY_V1_MAX  107
#define TP_PROXY_HDR_MAX 1024 /* longest header we accept (v2 with TLVs) */

#include <stdbool.h>
#include <stdint.h>

/* What a v2 header tells the backend about the client's TLS (PP2_TYPE_SSL,
 * PP2_TYPE_AUTHORITY for the SNI). */
struct tp_proxy_tls {
	const char *version; /* "TLSv1.3" */
	const char *cipher;
	const char *sni; /* or NULL */
	const char *cn;  /* client certificate CN, or NULL */
	bool cert;       /* the client presented a certificate */
	uint32_t verify; /* 0: the client certificate verified */
};

/*
 * tp_proxy_encode - a v1 or v2 header; tls (v2 only, may be NULL) adds
 * the SSL TLVs.  Returns its length or -1.
 */
int tp_proxy_encode(int version, const struct sockaddr_storage *src,
    const struct sockaddr_storage *dst, const struct tp_proxy_tls *tls,
    char *buf, size_t len);
/*
 * tp_proxy_decode - parse a v1 or v2 header at the start of buf.
 * Returns the header length (> 0) with src/dst filled (family AF_UNSPEC
 * for "UNKNOWN"/LOCAL: keep the connection's own), 0 if more bytes are
 * needed, or -1 if this is not a valid header (*why).
 */
int tp_proxy_decode(const char *buf, size_t len, struct sockaddr_storage *src,
    struct sockaddr_storage *dst, const char **why);

#endif
