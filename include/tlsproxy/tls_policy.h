/*
 * tls_policy.h - Postfix's TLS vocabulary: security levels, the protocols
 * syntax (">=TLSv1.2", "<=TLSv1.3", "!SSLv3, !TLSv1") and cipher grades.
 * Pure: no OpenSSL, no libuv.  Version numbers are the wire values
 * (0x0303 = TLS 1.2), which are also OpenSSL's TLS1_2_VERSION etc.
 */
#ifndef TLSPROXY_TLS_POLICY_H
#define TLSPROXY_TLS_POLICY_H

#include <stddef.h>

enum tp_security {
	TP_SEC_NONE = 0,
	TP_SEC_MAY,
	TP_SEC_ENCRYPT,
	TP_SEC_FINGERPRINT,
	TP_SEC_VERIFY,
	TP_SEC_SECURE,
	TP_SEC_DANE,
	TP_SEC_DANE_ONLY,
};

enum tp_grade {
	TP_GRADE_HIGH = 0,
	TP_GRADE_MEDIUM,
	TP_GRADE_NULL,
};

#define TP_PROTO_SSL3  0x0300
#define TP_PROTO_TLS1  0x0301
#define TP_PROTO_TLS11 0x0302
#define TP_PROTO_TLS12 0x0303
#define TP_PROTO_TLS13 0x0304

/*
 * tp_policy_protocols - parse Postfix protocol syntax into the contiguous
 * range [*min, *max] of wire versions.  Returns 0, or -1 with *why set.
 */
int tp_policy_protocols(const char *spec, int *min, int *max, const char **why);
/* tp_policy_proto_name - "TLSv1.2" for 0x0303. */
const char *tp_policy_proto_name(int version);
/*
 * tp_policy_cipherlist - OpenSSL TLS <= 1.2 cipher string for a grade plus
 * the exclusions (a list of names, comma/space separated), into dst.
 * Returns 0, or -1 if dst is too small or an exclusion is malformed.
 */
int tp_policy_cipherlist(
    enum tp_grade grade, const char *exclude, char *dst, size_t len);

#endif
