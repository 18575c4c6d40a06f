/*
 * test_proxy_proto.c - PROXY v1/v2 encode and decode: round trips, TLVs,
 * partial input, and every malformed header refused.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <cmocka.h>

#include "tlsproxy/proxy_proto.h"

static void
addr4(struct sockaddr_storage *ss, const char *ip, unsigned port)
{
	struct sockaddr_in *s = (struct sockaddr_in *)ss;

	memset(ss, 0, sizeof(*ss));
	s->sin_family = AF_INET;
	s->sin_port = htons(port);
	inet_pton(AF_INET, ip, &s->sin_addr);
}

static void
addr6(struct sockaddr_storage *ss, const char *ip, unsigned port)
{
	struct sockaddr_in6 *s = (struct sockaddr_in6 *)ss;

	memset(ss, 0, sizeof(*ss));
	s->sin6_family = AF_INET6;
	s->sin6_port = htons(port);
	inet_pton(AF_INET6, ip, &s->sin6_addr);
}

static void
test_v1_encode(void **state)
{
	struct sockaddr_storage s, d;
	char buf[200];
	int n;

	(void)state;
	addr4(&s, "192.0.2.7", 5555);
	addr4(&d, "198.51.100.1", 25);
	n = tp_proxy_encode(1, &s, &d, NULL, buf, sizeof(buf));
	assert_int_equal(n, (int)strlen(buf));
	assert_string_equal(buf, "PROXY TCP4 192.0.2.7 198.51.100.1 5555 25\r\n");
	addr6(&s, "2001:db8::1", 1);
	addr6(&d, "2001:db8::2", 2);
	tp_proxy_encode(1, &s, &d, NULL, buf, sizeof(buf));
	assert_string_equal(buf, "PROXY TCP6 2001:db8::1 2001:db8::2 1 2\r\n");
	/* too small a buffer */
	assert_int_equal(tp_proxy_encode(1, &s, &d, NULL, buf, 10), -1);
}

static void
test_roundtrip(void **state)
{
	struct sockaddr_storage s, d, s2, d2;
	const char *why = NULL;
	char buf[TP_PROXY_HDR_MAX];
	int n;

	(void)state;
	for (int v = 1; v <= 2; v++) {
		for (int six = 0; six < 2; six++) {
			if (six) {
				addr6(&s, "2001:db8::7", 40000);
				addr6(&d, "2001:db8::25", 25);
			} else {
				addr4(&s, "203.0.113.9", 6666);
				addr4(&d, "198.51.100.2", 465);
			}
			n = tp_proxy_encode(v, &s, &d, NULL, buf, sizeof(buf));
			assert_true(n > 0);
			/* every prefix: need more */
			for (int i = 1; i < n; i++)
				assert_int_equal(tp_proxy_decode(buf, (size_t)i,
				    &s2, &d2, &why), 0);
			assert_int_equal(tp_proxy_decode(buf, (size_t)n, &s2,
			    &d2, &why), n);
			assert_int_equal(s2.ss_family, s.ss_family);
			assert_memory_equal(&s2, &s, six ?
			    sizeof(struct sockaddr_in6) :
			    sizeof(struct sockaddr_in));
			assert_memory_equal(&d2, &d, six ?
			    sizeof(struct sockaddr_in6) :
			    sizeof(struct sockaddr_in));
		}
	}
}

static void
test_v2_tlvs(void **state)
{
	struct sockaddr_storage s, d, s2, d2;
	struct tp_proxy_tls tls = {.version = "TLSv1.3",
	    .cipher = "TLS_AES_256_GCM_SHA384", .sni = "mx.example.test",
	    .cn = "client.example", .cert = true, .verify = 0};
	const unsigned char *p;
	const char *why;
	char buf[TP_PROXY_HDR_MAX];
	int n, body;

	(void)state;
	addr4(&s, "192.0.2.1", 1000);
	addr4(&d, "192.0.2.2", 25);
	n = tp_proxy_encode(2, &s, &d, &tls, buf, sizeof(buf));
	p = (const unsigned char *)buf;
	body = p[14] << 8 | p[15];
	assert_int_equal(n, 16 + body);
	assert_true(body > 12);
	/* AUTHORITY first, then SSL with its client flags and version */
	assert_int_equal(p[28], 0x02);
	assert_int_equal(p[29] << 8 | p[30], 15);
	assert_memory_equal(p + 31, "mx.example.test", 15);
	assert_int_equal(p[46], 0x20);
	assert_int_equal(p[49], 0x07); /* SSL | CERT_CONN | CERT_SESS */
	assert_int_equal(p[54], 0x21);
	assert_memory_equal(p + 57, "TLSv1.3", 7);
	/* the decoder skips TLVs */
	assert_int_equal(tp_proxy_decode(buf, (size_t)n, &s2, &d2, &why), n);
	assert_int_equal(s2.ss_family, AF_INET);
}

static void
test_decode_errors(void **state)
{
	static const char *bad[] = {
	    "PROXY TCP4 1.2.3.4 5.6.7.8 65536 1\r\n",
	    "PROXY TCP4 1.2.3.4 5.6.7.8 01 1\r\n",
	    "PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n",
	    "PROXY TCP5 1.2.3.4 5.6.7.8 1 2\r\n",
	    "PROXY TCP4 1.2.3.4.5 5.6.7.8 1 2\r\n",
	    "PROXY TCP6 1.2.3.4 5.6.7.8 1 2\r\n",
	    "PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n",
	    "PROXYTCP4\r\n",
	    "GET / HTTP/1.0\r\n",
	    "\r\n\r\n\x00\r\nQUIX\n",
	};
	struct sockaddr_storage s, d;
	const char *why;
	char longv1[200];

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		size_t len = i == 9 ? 12 : strlen(bad[i]);

		why = NULL;
		assert_int_equal(tp_proxy_decode(bad[i], len, &s, &d, &why),
		    -1);
		assert_non_null(why);
	}
	/* 107 bytes without a line end: not v1 */
	memset(longv1, 'x', sizeof(longv1));
	memcpy(longv1, "PROXY ", 6);
	assert_int_equal(tp_proxy_decode(longv1, sizeof(longv1), &s, &d, &why),
	    -1);
	/* UNKNOWN: the connection's own addresses */
	assert_int_equal(tp_proxy_decode("PROXY UNKNOWN\r\nX", 16, &s, &d, &why),
	    15);
	assert_int_equal(s.ss_family, AF_UNSPEC);
}

static void
test_v2_local_and_length(void **state)
{
	static const unsigned char local[] = {'\r', '\n', '\r', '\n', 0,
	    '\r', '\n', 'Q', 'U', 'I', 'T', '\n', 0x20, 0x00, 0, 0};
	unsigned char big[16] = {'\r', '\n', '\r', '\n', 0, '\r', '\n', 'Q',
	    'U', 'I', 'T', '\n', 0x21, 0x11, 0xff, 0xff};
	struct sockaddr_storage s, d;
	const char *why;

	(void)state;
	assert_int_equal(tp_proxy_decode((const char *)local, sizeof(local),
	    &s, &d, &why), 16);
	assert_int_equal(s.ss_family, AF_UNSPEC);
	/* longer than we accept */
	assert_int_equal(tp_proxy_decode((const char *)big, sizeof(big), &s,
	    &d, &why), -1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_v1_encode),
	    cmocka_unit_test(test_roundtrip),
	    cmocka_unit_test(test_v2_tlvs),
	    cmocka_unit_test(test_decode_errors),
	    cmocka_unit_test(test_v2_local_and_length),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
