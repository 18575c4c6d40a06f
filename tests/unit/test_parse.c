/*
 * test_parse.c - value parsers of parse.h: numbers, durations, booleans,
 * HOST:PORT, mx:DOMAIN[:PORT], domain names, IP[@PORT] and lists.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <string.h>

#include "tlsproxy/parse.h"

/* ---- tp_parse_uint ---- */

static void
test_uint_ok(void **state)
{
	unsigned long long v = 99;
	const char *why = NULL;

	(void)state;
	assert_int_equal(tp_parse_uint("0", 0, 10, &v, &why), 0);
	assert_int_equal(v, 0);
	assert_int_equal(tp_parse_uint("10", 0, 10, &v, &why), 0);
	assert_int_equal(v, 10);
	assert_int_equal(tp_parse_uint("007", 0, 10, &v, &why), 0);
	assert_int_equal(v, 7); /* decimal, never octal */
	assert_int_equal(
	    tp_parse_uint("18446744073709551615", 0, ~0ULL, &v, &why), 0);
	assert_true(v == ~0ULL);
}

static void
test_uint_errors(void **state)
{
	static const char *bad[] = {"", "-1", "+1", " 1", "1 ", "1x", "0x10",
	    "1.5", "abc", "18446744073709551616"};
	unsigned long long v = 42;
	const char *why;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		why = NULL;
		assert_int_equal(tp_parse_uint(bad[i], 0, ~0ULL, &v, &why), -1);
		assert_non_null(why);
		assert_string_equal(why, "not a number");
		assert_true(v == 42); /* untouched on error */
	}
}

static void
test_uint_range(void **state)
{
	unsigned long long v = 42;
	const char *why = NULL;

	(void)state;
	assert_int_equal(tp_parse_uint("0", 1, 64, &v, &why), -1);
	assert_string_equal(why, "out of range");
	why = NULL;
	assert_int_equal(tp_parse_uint("65", 1, 64, &v, &why), -1);
	assert_string_equal(why, "out of range");
	assert_true(v == 42);
	assert_int_equal(tp_parse_uint("1", 1, 64, &v, &why), 0);
	assert_true(v == 1);
	assert_int_equal(tp_parse_uint("64", 1, 64, &v, &why), 0);
	assert_true(v == 64);
}

/* ---- tp_parse_duration_ms ---- */

static void
test_duration_units(void **state)
{
	static const struct {
		const char *s;
		uint64_t ms;
	} ok[] = {
	    {"500ms", 500},
	    {"1ms", 1},
	    {"30s", 30000},
	    {"300", 300000}, /* bare number = seconds */
	    {"1", 1000},
	    {"5m", 300000},
	    {"2h", 7200000},
	    {"1d", 86400000},
	    {"30d", 30ULL * 86400 * 1000},
	    {"720h", 30ULL * 86400 * 1000},
	    {"2592000000ms", 2592000000ULL},
	};
	uint64_t ms;
	const char *why;

	(void)state;
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		ms = 0;
		why = NULL;
		if (tp_parse_duration_ms(ok[i].s, &ms, &why) != 0)
			fail_msg("duration %s refused: %s", ok[i].s,
			    why ? why : "?");
		if (ms != ok[i].ms)
			fail_msg("duration %s = %llu ms, want %llu", ok[i].s,
			    (unsigned long long)ms,
			    (unsigned long long)ok[i].ms);
	}
}

static void
test_duration_errors(void **state)
{
	static const char *bad[] = {"", "s", "-1s", "+1s", " 1s", "1 s", "1.5s",
	    "10x", "10sec", "10S", "5mm", "1ms2", "abc",
	    "99999999999999999999s", "0x10"};
	uint64_t ms = 77;
	const char *why;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		why = NULL;
		if (tp_parse_duration_ms(bad[i], &ms, &why) != -1)
			fail_msg("duration \"%s\" accepted", bad[i]);
		assert_non_null(why);
		assert_true(ms == 77);
	}
}

static void
test_duration_range(void **state)
{
	static const char *bad[] = {"0", "0ms", "0s", "0m", "0d", "31d",
	    "2592001", "2592000001ms", "43201m", "721h",
	    "18446744073709551615ms", "18446744073709551615d"};
	uint64_t ms = 77;
	const char *why;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		why = NULL;
		if (tp_parse_duration_ms(bad[i], &ms, &why) != -1)
			fail_msg("duration \"%s\" accepted", bad[i]);
		assert_non_null(why);
		assert_non_null(strstr(why, "out of range"));
		assert_true(ms == 77);
	}
}

/* ---- tp_parse_bool ---- */

static void
test_bool(void **state)
{
	static const char *bad[] = {
	    "", "true", "false", "1", "0", "y", "n", "yes ", "on", "off"};
	bool b = false;
	const char *why = NULL;

	(void)state;
	assert_int_equal(tp_parse_bool("yes", &b, &why), 0);
	assert_true(b);
	assert_int_equal(tp_parse_bool("no", &b, &why), 0);
	assert_false(b);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		why = NULL;
		b = true;
		if (tp_parse_bool(bad[i], &b, &why) != -1)
			fail_msg("bool \"%s\" accepted", bad[i]);
		assert_string_equal(why, "must be yes or no");
		assert_true(b);
	}
}

/* ---- tp_parse_hostport ---- */

static void
test_hostport_ipv4(void **state)
{
	struct tp_hostport hp;
	const char *why = NULL;

	(void)state;
	assert_int_equal(tp_parse_hostport("127.0.0.1:25", &hp, &why), 0);
	assert_string_equal(hp.host, "127.0.0.1");
	assert_int_equal(hp.port, 25);
	assert_true(hp.is_ip);
	assert_false(hp.is_v6);
	assert_false(hp.wildcard);

	assert_int_equal(tp_parse_hostport("0.0.0.0:65535", &hp, &why), 0);
	assert_int_equal(hp.port, 65535);
	assert_int_equal(tp_parse_hostport("10.1.2.3:0", &hp, &why), 0);
	assert_int_equal(hp.port, 0);
}

static void
test_hostport_ipv6(void **state)
{
	struct tp_hostport hp;
	const char *why = NULL;

	(void)state;
	assert_int_equal(tp_parse_hostport("[::1]:25", &hp, &why), 0);
	assert_string_equal(hp.host, "::1");
	assert_int_equal(hp.port, 25);
	assert_true(hp.is_ip);
	assert_true(hp.is_v6);
	assert_false(hp.wildcard);

	assert_int_equal(tp_parse_hostport("[2001:db8::25]:587", &hp, &why), 0);
	assert_string_equal(hp.host, "2001:db8::25");
	assert_int_equal(hp.port, 587);
	assert_int_equal(
	    tp_parse_hostport("[::ffff:1.2.3.4]:465", &hp, &why), 0);
	assert_true(hp.is_v6);
}

static void
test_hostport_names(void **state)
{
	struct tp_hostport hp;
	const char *why = NULL;

	(void)state;
	assert_int_equal(
	    tp_parse_hostport("mail.example.com:465", &hp, &why), 0);
	assert_string_equal(hp.host, "mail.example.com");
	assert_int_equal(hp.port, 465);
	assert_false(hp.is_ip);
	assert_false(hp.is_v6);
	assert_false(hp.wildcard);

	assert_int_equal(tp_parse_hostport("localhost:2525", &hp, &why), 0);
	assert_string_equal(hp.host, "localhost");
	assert_int_equal(
	    tp_parse_hostport("my-host_1.example:25", &hp, &why), 0);
	assert_string_equal(hp.host, "my-host_1.example");
}

static void
test_hostport_wildcard(void **state)
{
	struct tp_hostport hp;
	const char *why = NULL;

	(void)state;
	assert_int_equal(tp_parse_hostport("*:25", &hp, &why), 0);
	assert_string_equal(hp.host, "*");
	assert_int_equal(hp.port, 25);
	assert_true(hp.wildcard);
	assert_false(hp.is_ip);
	assert_false(hp.is_v6);
}

static void
test_hostport_errors(void **state)
{
	static const char *bad[] = {
	    "",
	    "localhost",       /* no port */
	    "127.0.0.1",       /* no port */
	    "127.0.0.1:",      /* empty port */
	    ":25",             /* empty host */
	    "127.0.0.1:70000", /* port out of range */
	    "127.0.0.1:65536",
	    "127.0.0.1:-1",
	    "127.0.0.1:25x",
	    "127.0.0.1:0x19",
	    "::1:25", /* IPv6 without brackets */
	    "2001:db8::1:25",
	    "[::1]", /* no port */
	    "[::1]25",
	    "[::1]:",
	    "[::1",
	    "[]:25",
	    "[1.2.3.4]:25", /* not IPv6 in brackets */
	    "[example.com]:25",
	    "[::1]:70000",
	    "bad!host:25",
	    "bad host:25",
	    "bad/host:25",
	};
	struct tp_hostport hp;
	const char *why;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		why = NULL;
		if (tp_parse_hostport(bad[i], &hp, &why) != -1)
			fail_msg("hostport \"%s\" accepted", bad[i]);
		if (why == NULL)
			fail_msg("hostport \"%s\": no reason", bad[i]);
	}
}

static void
test_hostport_reasons(void **state)
{
	struct tp_hostport hp;
	const char *why = NULL;

	(void)state;
	assert_int_equal(tp_parse_hostport("::1:25", &hp, &why), -1);
	assert_non_null(strstr(why, "brackets"));
	assert_int_equal(tp_parse_hostport("host", &hp, &why), -1);
	assert_string_equal(why, "expected HOST:PORT");
	assert_int_equal(tp_parse_hostport("h:70000", &hp, &why), -1);
	assert_non_null(strstr(why, "port"));
	assert_int_equal(tp_parse_hostport("[::1]25", &hp, &why), -1);
	assert_string_equal(why, "expected [IPv6]:PORT");
}

static void
test_hostport_long_host(void **state)
{
	char s[TP_HOST_MAX + 16];
	struct tp_hostport hp;
	const char *why = NULL;

	(void)state;
	/* 255 characters fit (TP_HOST_MAX includes the NUL) */
	memset(s, 'a', TP_HOST_MAX - 1);
	strcpy(s + TP_HOST_MAX - 1, ":25");
	assert_int_equal(tp_parse_hostport(s, &hp, &why), 0);
	assert_int_equal(strlen(hp.host), TP_HOST_MAX - 1);
	/* 256 do not */
	memset(s, 'a', TP_HOST_MAX);
	strcpy(s + TP_HOST_MAX, ":25");
	assert_int_equal(tp_parse_hostport(s, &hp, &why), -1);
}

/* ---- tp_parse_dest: connect entries, mx:DOMAIN[:PORT] ---- */

static void
test_dest_mx(void **state)
{
	static const struct {
		const char *s, *host;
		unsigned port;
	} ok[] = {
	    {"mx:example.com", "example.com", 25},
	    {"mx:example.com:2525", "example.com", 2525},
	    {"mx:Example.COM.", "example.com", 25}, /* lower case, no dot */
	    {"mx:EXAMPLE.com.:587", "example.com", 587},
	    {"mx:test", "test", 25}, /* one label: a private or test zone */
	    {"mx:mail-1.sub_zone.example.test:65535",
		"mail-1.sub_zone.example.test", 65535},
	    {"mx:xn--bcher-kva.example", "xn--bcher-kva.example", 25},
	    {"mx:1.example", "1.example", 25}, /* digits are fine but last */
	};
	struct tp_hostport hp;
	const char *why;

	(void)state;
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		why = NULL;
		if (tp_parse_dest(ok[i].s, &hp, &why) != 0)
			fail_msg("%s refused: %s", ok[i].s, why ? why : "?");
		assert_true(hp.mx);
		assert_string_equal(hp.host, ok[i].host);
		assert_int_equal(hp.port, ok[i].port);
		assert_false(hp.is_ip);
		assert_false(hp.is_v6);
		assert_false(hp.wildcard);
	}
}

static void
test_dest_hostport(void **state)
{
	struct tp_hostport hp;
	const char *why = NULL;

	(void)state;
	/* every other form is tp_parse_hostport's, mx false */
	assert_int_equal(tp_parse_dest("mail.example.com:465", &hp, &why), 0);
	assert_false(hp.mx);
	assert_string_equal(hp.host, "mail.example.com");
	assert_int_equal(hp.port, 465);
	assert_int_equal(tp_parse_dest("192.0.2.1:25", &hp, &why), 0);
	assert_false(hp.mx);
	assert_true(hp.is_ip);
	assert_int_equal(tp_parse_dest("[2001:db8::1]:25", &hp, &why), 0);
	assert_false(hp.mx);
	assert_true(hp.is_v6);
	/* "mx" as a host name still works with its port after a dot */
	assert_int_equal(tp_parse_dest("mx.:25", &hp, &why), 0);
	assert_false(hp.mx);
	assert_string_equal(hp.host, "mx.");
	/* MX: in capitals is not the prefix: a HOST:PORT with a bad port */
	assert_int_equal(tp_parse_dest("MX:example.com", &hp, &why), -1);
	assert_string_equal(why, "bad port (0-65535)");
	/* and the old errors stay */
	assert_int_equal(tp_parse_dest("::1:25", &hp, &why), -1);
	assert_string_equal(why, "IPv6 addresses need brackets: [IPv6]:PORT");
	assert_int_equal(tp_parse_dest("host", &hp, &why), -1);
	assert_string_equal(why, "expected HOST:PORT");
	assert_int_equal(tp_parse_dest("[::1]25", &hp, &why), -1);
	assert_string_equal(why, "expected [IPv6]:PORT");
	/* Postfix's [HOST]:PORT: a host, no MX lookup (as HOST:PORT) */
	assert_int_equal(tp_parse_dest("[example.com]:25", &hp, &why), 0);
	assert_false(hp.mx);
	assert_false(hp.is_ip);
	assert_string_equal(hp.host, "example.com");
	assert_int_equal(hp.port, 25);
	assert_int_equal(tp_parse_dest("[192.0.2.1]:587", &hp, &why), 0);
	assert_true(hp.is_ip);
	assert_false(hp.is_v6);
	assert_int_equal(tp_parse_dest("[]:25", &hp, &why), -1);
	assert_string_equal(why, "expected [HOST]:PORT");
	assert_int_equal(tp_parse_dest("[example.com]25", &hp, &why), -1);
	assert_string_equal(why, "expected [HOST]:PORT");
	assert_int_equal(tp_parse_dest("[*]:25", &hp, &why), -1);
	assert_string_equal(why, "bad host name");
	assert_int_equal(tp_parse_dest("[bad/name]:25", &hp, &why), -1);
	assert_string_equal(why, "bad host name");
}

#define WHY_ADDR                                                                \
	"mx: takes a domain name, not an address (leave out mx: to connect to " \
	"an address)"
#define WHY_DOMAIN                                                             \
	"bad domain name (letters, digits, '-' and '_'; labels of 1 to 63 "    \
	"characters, 253 in all; not all digits at the end)"

static void
test_dest_mx_errors(void **state)
{
	static const struct {
		const char *s, *why;
	} bad[] = {
	    {"mx:", "expected mx:DOMAIN[:PORT]"},
	    {"mx:192.0.2.1", WHY_ADDR},
	    {"mx:192.0.2.1:25", WHY_ADDR},
	    {"mx:[192.0.2.1]", WHY_ADDR},
	    {"mx:[192.0.2.1]:25", WHY_ADDR},
	    {"mx:[mail.example.com]:25", WHY_ADDR},
	    {"mx:[x]", WHY_ADDR},
	    {"mx:[2001:db8::1]:25", WHY_ADDR},
	    {"mx:2001:db8::1", WHY_ADDR},
	    {"mx:::1", WHY_ADDR},
	    {"mx:25",
		"expected mx:DOMAIN[:PORT] (for a host named mx, write "
		"its full name)"},
	    {"mx::25", WHY_DOMAIN},
	    {"mx:.", WHY_DOMAIN},
	    {"mx:..", WHY_DOMAIN},
	    {"mx:a..example", WHY_DOMAIN},
	    {"mx:.example.com", WHY_DOMAIN},
	    {"mx:example.com..", WHY_DOMAIN},
	    {"mx:-example.com", WHY_DOMAIN},
	    {"mx:example-.com", WHY_DOMAIN},
	    {"mx:example.com-", WHY_DOMAIN},
	    {"mx:exa!mple.com", WHY_DOMAIN},
	    {"mx:exa/mple.com", WHY_DOMAIN},
	    {"mx:b\xc3\xbc"
	     "cher.example",
		WHY_DOMAIN},          /* UTF-8: A-labels only */
	    {"mx:1.2.3", WHY_DOMAIN}, /* all digits at the end */
	    {"mx:example.123", WHY_DOMAIN},
	    {"mx:*.example.com", WHY_DOMAIN},
	    {"mx:example.com:0", "bad port (1-65535)"},
	    {"mx:example.com:65536", "bad port (1-65535)"},
	    {"mx:example.com:", "bad port (1-65535)"},
	    {"mx:example.com:smtp", "bad port (1-65535)"},
	    {"mx:example.com:-1", "bad port (1-65535)"},
	};
	struct tp_hostport hp;
	const char *why;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		why = NULL;
		if (tp_parse_dest(bad[i].s, &hp, &why) != -1)
			fail_msg("\"%s\" accepted", bad[i].s);
		if (why == NULL || strcmp(why, bad[i].why) != 0)
			fail_msg("\"%s\": why \"%s\", want \"%s\"", bad[i].s,
			    why ? why : "(null)", bad[i].why);
	}
}

static void
test_domain_lengths(void **state)
{
	char s[300], out[300];
	const char *why = NULL;
	size_t n;

	(void)state;
	/* a label of 63 is fine, 64 is not */
	memset(s, 'a', 63);
	strcpy(s + 63, ".example");
	assert_int_equal(
	    tp_parse_domain(s, false, false, out, sizeof(out), &why), 0);
	memset(s, 'a', 64);
	strcpy(s + 64, ".example");
	assert_int_equal(
	    tp_parse_domain(s, false, false, out, sizeof(out), &why), -1);
	assert_string_equal(why, WHY_DOMAIN);
	/* 253 characters in all (254 with the trailing dot) */
	n = 0;
	while (n < 253) {
		size_t l = 253 - n >= 50 ? 49 : 253 - n;

		memset(s + n, 'b', l);
		n += l;
		if (n < 253)
			s[n++] = '.';
	}
	s[n] = '\0';
	assert_int_equal(strlen(s), 253);
	assert_int_equal(
	    tp_parse_domain(s, true, false, out, sizeof(out), &why), 0);
	assert_int_equal(strlen(out), 254);
	assert_int_equal(out[253], '.');
	strcat(s, ".");
	assert_int_equal(
	    tp_parse_domain(s, false, false, out, sizeof(out), &why), 0);
	assert_int_equal(strlen(out), 253);
	s[253] = 'c';
	s[254] = '\0';
	assert_int_equal(
	    tp_parse_domain(s, false, false, out, sizeof(out), &why), -1);
	/* an output buffer too small is an error, never an overflow */
	assert_int_equal(
	    tp_parse_domain("example.com", true, false, out, 12, &why), -1);
	assert_int_equal(
	    tp_parse_domain("example.com", true, false, out, 13, &why), 0);
	assert_string_equal(out, "example.com.");
}

static void
test_domain_forms(void **state)
{
	char out[300];
	const char *why = NULL;

	(void)state;
	assert_int_equal(
	    tp_parse_domain("Test", true, false, out, sizeof(out), &why), 0);
	assert_string_equal(out, "test.");
	assert_int_equal(
	    tp_parse_domain("test.", true, false, out, sizeof(out), &why), 0);
	assert_string_equal(out, "test.");
	assert_int_equal(
	    tp_parse_domain("Test.", false, false, out, sizeof(out), &why), 0);
	assert_string_equal(out, "test");
	/* the root only when allowed */
	assert_int_equal(
	    tp_parse_domain(".", true, true, out, sizeof(out), &why), 0);
	assert_string_equal(out, ".");
	assert_int_equal(
	    tp_parse_domain(".", true, false, out, sizeof(out), &why), -1);
	assert_int_equal(
	    tp_parse_domain("", true, true, out, sizeof(out), &why), -1);
	assert_int_equal(
	    tp_parse_domain("..", true, true, out, sizeof(out), &why), -1);
	assert_int_equal(tp_parse_domain("_dmarc.example.com", false, false,
			     out, sizeof(out), &why),
	    0);
	assert_int_equal(tp_parse_domain("2.0.192.in-addr.arpa", true, false,
			     out, sizeof(out), &why),
	    0);
	assert_string_equal(out, "2.0.192.in-addr.arpa.");
}

/* ---- tp_parse_ipport: DNS servers ---- */

static void
test_ipport(void **state)
{
	static const struct {
		const char *s, *out;
	} ok[] = {
	    {"192.0.2.53", "192.0.2.53"},
	    {"192.0.2.53@5353", "192.0.2.53@5353"},
	    {"127.0.0.1@053", "127.0.0.1@53"}, /* decimal, never octal */
	    {"::1", "::1"},
	    {"2001:db8::53@65535", "2001:db8::53@65535"},
	    {"::ffff:192.0.2.1@1", "::ffff:192.0.2.1@1"},
	};
	static const struct {
		const char *s, *why;
	} bad[] = {
	    {"", "expected an IP address (IP or IP@PORT)"},
	    {"@53", "expected an IP address (IP or IP@PORT)"},
	    {"dns.example", "expected an IP address (IP or IP@PORT)"},
	    {"192.0.2.300", "expected an IP address (IP or IP@PORT)"},
	    {"192.0.2.1:53", "write a port as IP@PORT"},
	    {"192.0.2.1:53:1", "expected an IP address (IP or IP@PORT)"},
	    {"dns.example:53", "expected an IP address (IP or IP@PORT)"},
	    {"2001:db8::zz", "expected an IP address (IP or IP@PORT)"},
	    {"192.0.2.1@", "bad port (1-65535)"},
	    {"192.0.2.1@0", "bad port (1-65535)"},
	    {"192.0.2.1@65536", "bad port (1-65535)"},
	    {"192.0.2.1@53x", "bad port (1-65535)"},
	    {"192.0.2.1@domain", "bad port (1-65535)"},
	    {"[::1]@53", "write the address without brackets: IP or IP@PORT"},
	    {"[::1]:53", "write the address without brackets: IP or IP@PORT"},
	};
	char out[TP_IPPORT_MAX];
	const char *why;

	(void)state;
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		why = NULL;
		if (tp_parse_ipport(ok[i].s, out, sizeof(out), &why) != 0)
			fail_msg("%s refused: %s", ok[i].s, why ? why : "?");
		assert_string_equal(out, ok[i].out);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		why = NULL;
		if (tp_parse_ipport(bad[i].s, out, sizeof(out), &why) != -1)
			fail_msg("\"%s\" accepted", bad[i].s);
		if (why == NULL || strcmp(why, bad[i].why) != 0)
			fail_msg("\"%s\": why \"%s\", want \"%s\"", bad[i].s,
			    why ? why : "(null)", bad[i].why);
	}
	/* a buffer too small is an error */
	assert_int_equal(tp_parse_ipport("192.0.2.53@53", out, 13, &why), -1);
	assert_int_equal(tp_parse_ipport("192.0.2.53@53", out, 14, &why), 0);
}

/* ---- tp_hostport_format ---- */

static void
test_hostport_format(void **state)
{
	static const char *round[] = {"127.0.0.1:25", "[::1]:25",
	    "[2001:db8::1]:465", "mail.example.com:587", "*:25", "localhost:0"};
	struct tp_hostport hp;
	const char *why = NULL;
	char out[300];

	(void)state;
	for (size_t i = 0; i < sizeof(round) / sizeof(round[0]); i++) {
		assert_int_equal(tp_parse_hostport(round[i], &hp, &why), 0);
		tp_hostport_format(&hp, out, sizeof(out));
		assert_string_equal(out, round[i]);
	}
	/* mx: entries print as written, with their port */
	assert_int_equal(tp_parse_dest("mx:Example.com.", &hp, &why), 0);
	tp_hostport_format(&hp, out, sizeof(out));
	assert_string_equal(out, "mx:example.com:25");
	assert_int_equal(tp_parse_dest("mx:example.com:2525", &hp, &why), 0);
	tp_hostport_format(&hp, out, sizeof(out));
	assert_string_equal(out, "mx:example.com:2525");
	/* truncates, always NUL-terminated */
	assert_int_equal(tp_parse_hostport("[::1]:25", &hp, &why), 0);
	memset(out, 'X', sizeof(out));
	tp_hostport_format(&hp, out, 4);
	assert_string_equal(out, "[::");
}

/* ---- tp_list_next ---- */

static void
test_list_next(void **state)
{
	static const char *want[] = {"a", "bb", "c", "d.example:25", "e"};
	const char *p = " a, bb  c,,, d.example:25 ,\te ,";
	char buf[64];
	size_t n = 0;

	(void)state;
	while (tp_list_next(&p, buf, sizeof(buf))) {
		assert_true(n < sizeof(want) / sizeof(want[0]));
		assert_string_equal(buf, want[n]);
		n++;
	}
	assert_int_equal(n, 5);
	assert_int_equal(*p, '\0');
	/* at the end it keeps returning 0 */
	assert_int_equal(tp_list_next(&p, buf, sizeof(buf)), 0);
}

static void
test_list_next_empty(void **state)
{
	static const char *empties[] = {"", " ", ",", " , ,, \t"};
	const char *p;
	char buf[16];

	(void)state;
	for (size_t i = 0; i < sizeof(empties) / sizeof(empties[0]); i++) {
		p = empties[i];
		assert_int_equal(tp_list_next(&p, buf, sizeof(buf)), 0);
		assert_int_equal(*p, '\0');
	}
}

static void
test_list_next_single(void **state)
{
	const char *p = "only";
	char buf[16];

	(void)state;
	assert_int_equal(tp_list_next(&p, buf, sizeof(buf)), 1);
	assert_string_equal(buf, "only");
	assert_int_equal(tp_list_next(&p, buf, sizeof(buf)), 0);
}

static void
test_list_next_small_buf(void **state)
{
	const char *p = "abcdefgh,ij";
	char buf[4];

	(void)state;
	/* an item too long for buf never overflows it, and the iteration
	   still moves past the whole item */
	memset(buf, 'X', sizeof(buf));
	assert_int_not_equal(tp_list_next(&p, buf, sizeof(buf)), 0);
	assert_non_null(memchr(buf, '\0', sizeof(buf)));
	assert_int_equal(tp_list_next(&p, buf, sizeof(buf)), 1);
	assert_string_equal(buf, "ij");
	assert_int_equal(tp_list_next(&p, buf, sizeof(buf)), 0);
}

static void
test_strcaseeq(void **state)
{
	(void)state;
	assert_true(tp_strcaseeq("TLSv1.2", "tlsV1.2"));
	assert_true(tp_strcaseeq("", ""));
	assert_false(tp_strcaseeq("TLSv1", "TLSv1.2"));
	assert_false(tp_strcaseeq("TLSv1.2", "TLSv1"));
	assert_false(tp_strcaseeq("a", "b"));
}

/* tp_parse_hex: colons and spaces between digits, both cases; bad, odd, long
 * refused. */
static void
test_hex(void **state)
{
	unsigned char b[4];

	(void)state;
	assert_int_equal(tp_parse_hex("0aFf", b, sizeof(b)), 2);
	assert_int_equal(b[0], 0x0a);
	assert_int_equal(b[1], 0xff);
	assert_int_equal(tp_parse_hex("01:02 03:04", b, sizeof(b)), 4);
	assert_int_equal(b[3], 0x04);
	assert_int_equal(tp_parse_hex("", b, sizeof(b)), 0);
	assert_int_equal(tp_parse_hex("abc", b, sizeof(b)), -1);
	assert_int_equal(tp_parse_hex("0g", b, sizeof(b)), -1);
	assert_int_equal(tp_parse_hex("0102030405", b, sizeof(b)), -1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_uint_ok),
	    cmocka_unit_test(test_uint_errors),
	    cmocka_unit_test(test_uint_range),
	    cmocka_unit_test(test_duration_units),
	    cmocka_unit_test(test_duration_errors),
	    cmocka_unit_test(test_duration_range),
	    cmocka_unit_test(test_bool),
	    cmocka_unit_test(test_hostport_ipv4),
	    cmocka_unit_test(test_hostport_ipv6),
	    cmocka_unit_test(test_hostport_names),
	    cmocka_unit_test(test_hostport_wildcard),
	    cmocka_unit_test(test_hostport_errors),
	    cmocka_unit_test(test_hostport_reasons),
	    cmocka_unit_test(test_hostport_long_host),
	    cmocka_unit_test(test_dest_mx),
	    cmocka_unit_test(test_dest_hostport),
	    cmocka_unit_test(test_dest_mx_errors),
	    cmocka_unit_test(test_domain_lengths),
	    cmocka_unit_test(test_domain_forms),
	    cmocka_unit_test(test_ipport),
	    cmocka_unit_test(test_hostport_format),
	    cmocka_unit_test(test_list_next),
	    cmocka_unit_test(test_list_next_empty),
	    cmocka_unit_test(test_list_next_single),
	    cmocka_unit_test(test_list_next_small_buf),
	    cmocka_unit_test(test_strcaseeq),
	    cmocka_unit_test(test_hex),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
