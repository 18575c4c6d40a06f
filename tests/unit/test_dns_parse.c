/*
 * test_dns_parse.c - DNS record data (dns_parse.c): wire names as
 * libunbound returns them (uncompressed; a pointer is malformed), MX and
 * TLSA rdata, the RFC 5321 5.1 order of MX hosts (preference first, equal
 * preferences in every order over many shuffles, a host once), RFC 7505
 * null MX, RFC 7672 usable TLSA records, _PORT._tcp names.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "tlsproxy/dns_parse.h"

#define U (const unsigned char *)

static void
test_names(void **state)
{
	char out[TP_HOST_MAX];
	size_t off = 0;

	(void)state;
	assert_int_equal(
	    tp_dns_name(U "\2mx\7Example\4test\0", 17, &off, out, sizeof(out)),
	    0);
	assert_string_equal(out, "mx.example.test");
	assert_int_equal(off, 17);
	off = 0;
	assert_int_equal(tp_dns_name(U "\0", 1, &off, out, sizeof(out)), 0);
	assert_string_equal(out, "");
	/* truncated, pointer, embedded dot or NUL, too long for out */
	off = 0;
	assert_int_equal(tp_dns_name(U "\3ab", 3, &off, out, sizeof(out)), -1);
	off = 0;
	assert_int_equal(
	    tp_dns_name(U "\xc0\x0c", 2, &off, out, sizeof(out)), -1);
	off = 0;
	assert_int_equal(
	    tp_dns_name(U "\3a.b\0", 5, &off, out, sizeof(out)), -1);
	off = 0;
	assert_int_equal(
	    tp_dns_name(U "\3a\0b\0", 5, &off, out, sizeof(out)), -1);
	off = 0;
	assert_int_equal(tp_dns_name(U "\4abcd\0", 6, &off, out, 4), -1);
	off = 0;
	assert_int_equal(tp_dns_name(U "\4abcd\0", 6, &off, out, 5), 0);
	assert_string_equal(out, "abcd");
	off = 0;
	assert_int_equal(tp_dns_name(U "", 0, &off, out, sizeof(out)), -1);
}

static void
test_mx(void **state)
{
	struct tp_mx mx;

	(void)state;
	assert_int_equal(tp_dns_mx(U "\0\12\2mx\4test\0", 11, &mx), 0);
	assert_int_equal(mx.pref, 10);
	assert_string_equal(mx.host, "mx.test");
	assert_int_equal(tp_dns_mx(U "\1\0\0", 3, &mx), 0);
	assert_int_equal(mx.pref, 256);
	assert_string_equal(mx.host, "");
	/* short, trailing junk */
	assert_int_equal(tp_dns_mx(U "\0\12", 2, &mx), -1);
	assert_int_equal(tp_dns_mx(U "\0\12\0x", 4, &mx), -1);
	assert_true(tp_dns_null_mx(&mx, 1));
	assert_false(tp_dns_null_mx(&mx, 0));
}

static unsigned
seq_rnd(void *arg, unsigned n)
{
	unsigned *s = arg;

	*s = *s * 1103515245u + 12345u;
	return (*s >> 16) % n;
}

static void
test_mx_order(void **state)
{
	struct tp_mx in[] = {{20, "b"}, {10, "a1"}, {30, "c"}, {10, "a2"},
	    {20, "b"}, {5, "x"}, {10, "a3"}};
	struct tp_mx mx[7];
	unsigned run, rng, firsts[3] = {0};
	size_t n;

	(void)state;
	for (run = 1; run <= 300; run++) {
		rng = run;
		memcpy(mx, in, sizeof(in));
		n = tp_dns_mx_order(mx, 7, seq_rnd, &rng);
		assert_int_equal(n, 6); /* b once */
		assert_string_equal(mx[0].host, "x");
		for (size_t i = 1; i < n; i++)
			assert_true(mx[i - 1].pref <= mx[i].pref);
		assert_string_equal(mx[4].host, "b");
		assert_string_equal(mx[5].host, "c");
		firsts[mx[1].host[1] - '1']++;
	}
	/* each of the equal preferences comes first now and then */
	for (int i = 0; i < 3; i++)
		assert_true(firsts[i] > 50);
	assert_int_equal(tp_dns_mx_order(mx, 0, seq_rnd, &rng), 0);
}

static void
test_tlsa(void **state)
{
	unsigned char rr[3 + 32], u, s, m;
	const unsigned char *data;
	size_t len;

	(void)state;
	memset(rr, 0xab, sizeof(rr));
	rr[0] = 3;
	rr[1] = 1;
	rr[2] = 1;
	assert_int_equal(
	    tp_dns_tlsa(rr, sizeof(rr), &u, &s, &m, &data, &len), 0);
	assert_int_equal(u, 3);
	assert_int_equal(s, 1);
	assert_int_equal(m, 1);
	assert_int_equal(len, 32);
	assert_ptr_equal(data, rr + 3);
	assert_int_equal(tp_dns_tlsa(rr, 2, &u, &s, &m, &data, &len), -1);
	/* RFC 7672 3.1: only DANE-TA and DANE-EE, known selectors and
	 * digests of the right size */
	assert_true(tp_dns_tlsa_usable(3, 1, 1, 32));
	assert_true(tp_dns_tlsa_usable(2, 0, 2, 64));
	assert_true(tp_dns_tlsa_usable(3, 0, 0, 500));
	assert_false(tp_dns_tlsa_usable(0, 1, 1, 32));
	assert_false(tp_dns_tlsa_usable(1, 1, 1, 32));
	assert_false(tp_dns_tlsa_usable(4, 1, 1, 32));
	assert_false(tp_dns_tlsa_usable(3, 2, 1, 32));
	assert_false(tp_dns_tlsa_usable(3, 1, 3, 32));
	assert_false(tp_dns_tlsa_usable(3, 1, 1, 31));
	assert_false(tp_dns_tlsa_usable(3, 1, 2, 32));
	assert_false(tp_dns_tlsa_usable(3, 1, 0, 0));
}

static void
test_names_and_words(void **state)
{
	char out[40];

	(void)state;
	assert_int_equal(tp_dns_tlsa_name(out, sizeof(out), 25, "mx.test"), 0);
	assert_string_equal(out, "_25._tcp.mx.test");
	assert_int_equal(tp_dns_tlsa_name(out, 10, 25, "mx.test"), -1);
	assert_string_equal(tp_dns_type_name(TP_DNS_TLSA), "TLSA");
	assert_string_equal(tp_dns_type_name(99), "other");
	assert_string_equal(tp_dns_outcome_name(TP_DNS_NXDOMAIN), "nxdomain");
	assert_string_equal(tp_dnssec_name(TP_DNSSEC_BOGUS), "bogus");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_names),
	    cmocka_unit_test(test_mx),
	    cmocka_unit_test(test_mx_order),
	    cmocka_unit_test(test_tlsa),
	    cmocka_unit_test(test_names_and_words),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
