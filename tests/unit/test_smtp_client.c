/*
 * test_smtp_client.c - the client-mode STARTTLS negotiator (spec 4.2,
 * 4.6, 5): greeting, EHLO, STARTTLS, 220, fed whole and byte by byte;
 * the decisions at `may` and `encrypt`; response injection and every
 * other protocol error as a 421 with Postfix's wording, one line of at
 * most 512 octets ending in CRLF; an over-long reply line fails as soon
 * as it passes 2048 octets, without waiting for an LF that may never come.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tlsproxy/smtp_client.h"

#define HELO "proxy.example"
#define HOST "mx.example"
#define IP   "192.0.2.1"
#define PEER HOST "[" IP "]"

#define GREETING "220-mx.example ESMTP Postfix\r\n220 ready\r\n"
#define EHLO_TLS                                                               \
	"250-mx.example\r\n250-PIPELINING\r\n250-SIZE 10240000\r\n"            \
	"250-STARTTLS\r\n250-ENHANCEDSTATUSCODES\r\n250 8BITMIME\r\n"
#define EHLO_NOTLS "250-mx.example\r\n250-PIPELINING\r\n250 8BITMIME\r\n"

static struct tp_smtpc sc;
static size_t left; /* bytes feed() did not consume */

static void
start(bool may)
{
	tp_smtpc_init(&sc, HELO, may, HOST, IP);
	assert_int_equal(sc.state, TP_SMTPC_GREETING);
}

/*
 * feed - give str to the negotiator in pieces of `step` bytes (0 = all at
 * once) until it decides something other than MORE.  Every MORE must have
 * used all of its input.  Leaves the unconsumed byte count in `left`.
 */
static enum tp_smtpc_action
feed_step(const char *str, size_t len, size_t step)
{
	size_t off = 0;
	enum tp_smtpc_action a = TP_SMTPC_MORE;

	left = 0;
	while (off < len) {
		size_t n = step == 0 || len - off < step ? len - off : step;
		const char *p = str + off;
		size_t l = n;

		a = tp_smtpc_input(&sc, &p, &l);
		assert_ptr_equal(p, str + off + (n - l));
		off += n;
		if (a != TP_SMTPC_MORE) {
			left = l + (len - off);
			return a;
		}
		assert_int_equal(l, 0);
	}
	return a;
}

static enum tp_smtpc_action
feed(const char *str)
{
	return feed_step(str, strlen(str), 0);
}

static void
out_is(const char *want)
{
	if (sc.outlen != strlen(want) || memcmp(sc.out, want, sc.outlen) != 0)
		fail_msg("out is \"%.*s\", want \"%s\"", (int)sc.outlen, sc.out,
		    want);
}

/* check_fail - a FAIL line: "421 ", one line, CRLF, <= 512 octets. */
static void
check_fail_line(void)
{
	assert_true(sc.outlen >= 6);
	assert_true(sc.outlen <= 512);
	assert_memory_equal(sc.out, "421 4.", 6);
	assert_memory_equal(sc.out + sc.outlen - 2, "\r\n", 2);
	assert_null(memchr(sc.out, '\n', sc.outlen - 1));
	assert_null(memchr(sc.out, '\r', sc.outlen - 2));
	assert_int_equal(sc.state, TP_SMTPC_DONE);
}

static void
expect_fail(enum tp_smtpc_action a, const char *want)
{
	char line[700];

	assert_int_equal(a, TP_SMTPC_FAIL);
	check_fail_line();
	snprintf(line, sizeof(line), "%s\r\n", want);
	out_is(line);
}

static void
happy_path(size_t step)
{
	start(false);
	assert_string_equal(
	    tp_smtpc_phase(&sc), "receiving the initial server greeting");
	assert_int_equal(
	    feed_step(GREETING, strlen(GREETING), step), TP_SMTPC_SEND);
	assert_int_equal(left, 0);
	out_is("EHLO " HELO "\r\n");
	assert_string_equal(sc.greeting, "220 mx.example ESMTP Postfix");
	assert_string_equal(
	    tp_smtpc_phase(&sc), "performing the EHLO handshake");
	assert_int_equal(
	    feed_step(EHLO_TLS, strlen(EHLO_TLS), step), TP_SMTPC_SEND);
	assert_int_equal(left, 0);
	out_is("STARTTLS\r\n");
	assert_string_equal(tp_smtpc_phase(&sc), "sending STARTTLS");
	assert_int_equal(
	    feed_step("220 2.0.0 Ready to start TLS\r\n", 30, step),
	    TP_SMTPC_STARTTLS);
	assert_int_equal(left, 0);
	assert_int_equal(sc.state, TP_SMTPC_DONE);
	/* The greeting survives for the replay. */
	assert_string_equal(sc.greeting, "220 mx.example ESMTP Postfix");
}

static void
test_happy_path_whole(void **state)
{
	(void)state;
	happy_path(0);
}

static void
test_happy_path_byte_by_byte(void **state)
{
	(void)state;
	happy_path(1);
	happy_path(2);
	happy_path(3);
	happy_path(7);
}

/* Every MORE before the last byte of a reply; the decision on the last. */
static void
test_decides_on_last_byte(void **state)
{
	const char *g = "220 hi\r\n";
	const char *p;
	size_t l;

	(void)state;
	start(true);
	for (size_t i = 0; i < strlen(g); i++) {
		p = g + i;
		l = 1;
		if (i + 1 < strlen(g))
			assert_int_equal(
			    tp_smtpc_input(&sc, &p, &l), TP_SMTPC_MORE);
		else
			assert_int_equal(
			    tp_smtpc_input(&sc, &p, &l), TP_SMTPC_SEND);
		assert_int_equal(l, 0);
	}
	/* An empty feed changes nothing. */
	p = "";
	l = 0;
	assert_int_equal(tp_smtpc_input(&sc, &p, &l), TP_SMTPC_MORE);
	assert_int_equal(sc.state, TP_SMTPC_EHLO);
}

static void
test_greeting_forms(void **state)
{
	(void)state;
	/* Bare LF, code alone, lowercase keywords. */
	start(false);
	assert_int_equal(feed("220\n"), TP_SMTPC_SEND);
	assert_int_equal(strncmp(sc.greeting, "220", 3), 0);
	assert_int_equal(feed("250-x\n250 starttls\n"), TP_SMTPC_SEND);
	out_is("STARTTLS\r\n");
	assert_int_equal(feed("220\n"), TP_SMTPC_STARTTLS);

	/* Only the first line of a multi-line greeting is kept. */
	start(false);
	assert_int_equal(feed("220-first line\r\n220-second\r\n220 third\r\n"),
	    TP_SMTPC_SEND);
	assert_string_equal(sc.greeting, "220 first line");
}

/* The replayed greeting: one line, printable, at most 512 with CRLF. */
static void
test_greeting_long(void **state)
{
	char g[TP_LINE_MAX + 8];

	(void)state;
	memset(g, 'g', sizeof(g));
	memcpy(g, "220 ", 4);
	memcpy(g + TP_LINE_MAX, "\r\n", 3); /* a line of exactly 2048 */
	start(false);
	assert_int_equal(feed(g), TP_SMTPC_SEND);
	assert_true(strlen(sc.greeting) + 2 <= 512);
	assert_memory_equal(sc.greeting, "220 ggg", 7);
	for (size_t i = 4; sc.greeting[i] != '\0'; i++)
		assert_int_equal(sc.greeting[i], 'g');
}

static void
test_refused(void **state)
{
	(void)state;
	start(false);
	assert_int_equal(feed("554 5.7.1 go away\r\n"), TP_SMTPC_REFUSED);
	out_is("554 5.7.1 go away\r\n");
	assert_int_equal(sc.state, TP_SMTPC_DONE);

	start(true);
	assert_int_equal(feed("421-4.3.2 busy\r\n421 4.3.2 try later\r\n"),
	    TP_SMTPC_REFUSED);
	out_is("421 4.3.2 busy\r\n");

	/* A 2xx that is not 220 is no greeting either. */
	start(true);
	assert_int_equal(feed("250 hello\r\n"), TP_SMTPC_REFUSED);
	out_is("250 hello\r\n");

	/* The text is bounded: one line of at most 512 octets. */
	{
		char g[1200];

		memset(g, 'x', sizeof(g));
		memcpy(g, "554 ", 4);
		memcpy(g + 1100, "\r\n", 3);
		start(true);
		assert_int_equal(feed(g), TP_SMTPC_REFUSED);
		assert_true(sc.outlen <= 512);
		assert_memory_equal(sc.out + sc.outlen - 2, "\r\n", 2);
		assert_memory_equal(sc.out, "554 xxx", 7);
	}
}

static void
test_no_starttls(void **state)
{
	(void)state;
	/* may: plaintext. */
	start(true);
	assert_int_equal(feed(GREETING), TP_SMTPC_SEND);
	assert_int_equal(feed(EHLO_NOTLS), TP_SMTPC_PLAINTEXT);
	assert_int_equal(sc.state, TP_SMTPC_DONE);
	assert_string_equal(sc.greeting, "220 mx.example ESMTP Postfix");

	/* encrypt: 421 4.7.4. */
	start(false);
	assert_int_equal(feed(GREETING), TP_SMTPC_SEND);
	expect_fail(feed(EHLO_NOTLS),
	    "421 4.7.4 TLS is required, but was not offered by host " PEER);

	/* STARTTLSX, XSTARTTLS or STARTTLS in the first line are no offer. */
	start(false);
	assert_int_equal(feed(GREETING), TP_SMTPC_SEND);
	expect_fail(feed("250-STARTTLS\r\n250-STARTTLSX\r\n250 XSTARTTLS\r\n"),
	    "421 4.7.4 TLS is required, but was not offered by host " PEER);

	/* An EHLO refused is no offer either. */
	start(true);
	assert_int_equal(feed(GREETING), TP_SMTPC_SEND);
	assert_int_equal(
	    feed("502 5.5.1 EHLO not implemented\r\n"), TP_SMTPC_PLAINTEXT);
	start(false);
	assert_int_equal(feed(GREETING), TP_SMTPC_SEND);
	expect_fail(feed("502 5.5.1 EHLO not implemented\r\n"),
	    "421 4.7.4 TLS is required, but was not offered by host " PEER);
	/* STARTTLS in a non-250 reply does not count. */
	start(false);
	assert_int_equal(feed(GREETING), TP_SMTPC_SEND);
	expect_fail(feed("550-x\r\n550 STARTTLS\r\n"),
	    "421 4.7.4 TLS is required, but was not offered by host " PEER);
}

static void
test_starttls_refused(void **state)
{
	(void)state;
	start(true);
	assert_int_equal(feed(GREETING), TP_SMTPC_SEND);
	assert_int_equal(feed(EHLO_TLS), TP_SMTPC_SEND);
	assert_int_equal(feed("454 4.7.0 TLS not available due to local "
			      "problem\r\n"),
	    TP_SMTPC_PLAINTEXT);

	start(false);
	assert_int_equal(feed(GREETING), TP_SMTPC_SEND);
	assert_int_equal(feed(EHLO_TLS), TP_SMTPC_SEND);
	expect_fail(feed("454 4.7.0 TLS not available due to local "
			 "problem\r\n"),
	    "421 4.7.5 TLS is required, but host " PEER " refused to start "
	    "TLS: 454 4.7.0 TLS not available due to local problem");

	/* Multi-line refusal: the first line's text is quoted. */
	start(false);
	assert_int_equal(feed(GREETING), TP_SMTPC_SEND);
	assert_int_equal(feed(EHLO_TLS), TP_SMTPC_SEND);
	expect_fail(feed("502-5.5.1 no\r\n502 5.5.1 really not\r\n"),
	    "421 4.7.5 TLS is required, but host " PEER " refused to start "
	    "TLS: 502 5.5.1 no");
}

static void
test_response_injection(void **state)
{
	(void)state;
	start(false);
	assert_int_equal(feed(GREETING), TP_SMTPC_SEND);
	assert_int_equal(feed(EHLO_TLS), TP_SMTPC_SEND);
	expect_fail(feed("220 ok\r\nX"),
	    "421 4.5.0 Protocol error: " PEER " sent data after its 220 reply "
	    "to STARTTLS");

	/* Byte by byte: the extra byte in a later feed is still refused. */
	start(false);
	assert_int_equal(feed(GREETING), TP_SMTPC_SEND);
	assert_int_equal(feed(EHLO_TLS), TP_SMTPC_SEND);
	assert_int_equal(feed("220 ok\r\n\x16\x03\x01"), TP_SMTPC_FAIL);
	check_fail_line();
	assert_memory_equal(sc.out, "421 4.5.0 Protocol error: ", 26);
	/* An injected reply after 220 is no better. */
	start(true);
	assert_int_equal(feed(GREETING), TP_SMTPC_SEND);
	assert_int_equal(feed(EHLO_TLS), TP_SMTPC_SEND);
	assert_int_equal(feed("220 ok\r\n250 injected\r\n"), TP_SMTPC_FAIL);
	check_fail_line();
	/* After a refusal too, at may. */
	start(true);
	assert_int_equal(feed(GREETING), TP_SMTPC_SEND);
	assert_int_equal(feed(EHLO_TLS), TP_SMTPC_SEND);
	expect_fail(feed("454 no\r\nMORE"),
	    "421 4.5.0 Protocol error: " PEER " sent data before our next "
	    "command while sending STARTTLS");
}

static void
test_data_before_command(void **state)
{
	(void)state;
	/* After the greeting, before EHLO. */
	start(true);
	expect_fail(feed("220 hi\r\n250 early\r\n"),
	    "421 4.5.0 Protocol error: " PEER " sent data before our next "
	    "command while receiving the initial server greeting");
	start(true);
	expect_fail(feed("220 hi\r\nx"),
	    "421 4.5.0 Protocol error: " PEER " sent data before our next "
	    "command while receiving the initial server greeting");
	/* After the EHLO reply, before STARTTLS. */
	start(true);
	assert_int_equal(feed(GREETING), TP_SMTPC_SEND);
	expect_fail(feed(EHLO_TLS "2"),
	    "421 4.5.0 Protocol error: " PEER " sent data before our next "
	    "command while performing the EHLO handshake");
	/* Even at may without STARTTLS: no silent plaintext. */
	start(true);
	assert_int_equal(feed(GREETING), TP_SMTPC_SEND);
	assert_int_equal(feed(EHLO_NOTLS "\r\n"), TP_SMTPC_FAIL);
	check_fail_line();
}

static void
test_long_line(void **state)
{
	char g[TP_LINE_MAX + 16];
	char ok[TP_LINE_MAX + 32];

	(void)state;
	/* 2049 octets before CRLF. */
	memset(g, 'x', sizeof(g));
	memcpy(g, "220 ", 4);
	memcpy(g + TP_LINE_MAX + 1, "\r\n", 3);
	start(true);
	expect_fail(feed(g),
	    "421 4.5.0 Protocol error: reply line longer "
	    "than 2048 octets from " PEER);
	/* The same, byte by byte. */
	start(true);
	assert_int_equal(feed_step(g, strlen(g), 1), TP_SMTPC_FAIL);
	check_fail_line();
	/* In the EHLO reply. */
	memset(ok, 'y', sizeof(ok));
	memcpy(ok, "250-", 4);
	memcpy(ok + TP_LINE_MAX + 1, "\r\n250 x\r\n", 10);
	start(true);
	assert_int_equal(feed(GREETING), TP_SMTPC_SEND);
	expect_fail(feed(ok),
	    "421 4.5.0 Protocol error: reply line longer "
	    "than 2048 octets from " PEER);
	/* Exactly 2048 is fine. */
	memcpy(ok + TP_LINE_MAX, "\r\n250-STARTTLS\r\n250 x\r\n", 24);
	start(false);
	assert_int_equal(feed(GREETING), TP_SMTPC_SEND);
	assert_int_equal(feed(ok), TP_SMTPC_SEND);
	out_is("STARTTLS\r\n");
}

/*
 * spec 4.2.4, 5: a reply line over 2048 octets fails the session as soon
 * as it passes the limit: an upstream that sends 100,000 '2's and no LF
 * gets its 421 at the 2049th, not at a timeout.
 */
static void
test_long_line_at_once(void **state)
{
	static char big[100000];
	const char *p;
	size_t l;

	(void)state;
	memset(big, '2', sizeof(big));
	start(false);
	p = big;
	l = sizeof(big);
	expect_fail(tp_smtpc_input(&sc, &p, &l),
	    "421 4.5.0 Protocol error: reply line longer than 2048 octets "
	    "from " PEER);
	assert_ptr_equal(p, big + TP_LINE_MAX + 1);
	assert_int_equal(l, sizeof(big) - TP_LINE_MAX - 1);
	/* In pieces: decided at octet 2049, whatever the split. */
	for (size_t step = 1; step <= 4096; step = step * 3 + 1) {
		start(true);
		assert_int_equal(
		    feed_step(big, sizeof(big), step), TP_SMTPC_FAIL);
		check_fail_line();
		assert_int_equal(sizeof(big) - left, TP_LINE_MAX + 1);
	}
	/* 2048 octets and no LF: nothing decided yet. */
	start(false);
	assert_int_equal(feed_step(big, TP_LINE_MAX, 0), TP_SMTPC_MORE);
	/* ... a CR: still the line's possible end ... */
	assert_int_equal(feed_step("\r", 1, 0), TP_SMTPC_MORE);
	/* ... and anything but LF after it: too long. */
	expect_fail(feed_step("2", 1, 0),
	    "421 4.5.0 Protocol error: reply line longer than 2048 octets "
	    "from " PEER);
	/* In the EHLO reply, the same. */
	start(true);
	assert_int_equal(feed(GREETING), TP_SMTPC_SEND);
	memcpy(big, "250-", 4);
	assert_int_equal(feed_step(big, TP_LINE_MAX + 1, 0), TP_SMTPC_FAIL);
	assert_int_equal(left, 0);
	check_fail_line();
}

static void
test_malformed(void **state)
{
	char many[120 * 8 + 16];
	size_t n = 0;

	(void)state;
	start(true);
	expect_fail(feed("hello\r\n"),
	    "421 4.5.0 Protocol error: malformed reply from " PEER " while "
	    "receiving the initial server greeting");
	start(true);
	expect_fail(feed("220 caf\xc3\xa9\r\n"),
	    "421 4.5.0 Protocol error: non-printable text in reply from " PEER
	    " while receiving the initial server greeting");
	start(true);
	assert_int_equal(feed(GREETING), TP_SMTPC_SEND);
	expect_fail(feed("250-a\r\n251 b\r\n"),
	    "421 4.5.0 Protocol error: reply code changes within a multi-line "
	    "reply from " PEER " while performing the EHLO handshake");
	start(true);
	assert_int_equal(feed(GREETING), TP_SMTPC_SEND);
	expect_fail(feed("199 x\r\n"),
	    "421 4.5.0 Protocol error: malformed reply from " PEER " while "
	    "performing the EHLO handshake");
	start(false);
	assert_int_equal(feed(GREETING), TP_SMTPC_SEND);
	assert_int_equal(feed(EHLO_TLS), TP_SMTPC_SEND);
	expect_fail(feed("2200 ok\r\n"),
	    "421 4.5.0 Protocol error: malformed reply from " PEER " while "
	    "sending STARTTLS");
	/* 101 lines. */
	for (int i = 0; i < 101; i++)
		n += (size_t)sprintf(many + n, "250-x\r\n");
	n += (size_t)sprintf(many + n, "250 x\r\n");
	start(true);
	assert_int_equal(feed(GREETING), TP_SMTPC_SEND);
	expect_fail(feed(many),
	    "421 4.5.0 Protocol error: too many reply "
	    "lines from " PEER " while performing the EHLO "
	    "handshake");
	/* A bare CR line end is no line end: the text is non-printable. */
	start(true);
	expect_fail(feed("220 a\rb\r\n"),
	    "421 4.5.0 Protocol error: non-printable text in reply from " PEER
	    " while receiving the initial server greeting");
}

static void
test_lost_and_timeout(void **state)
{
	(void)state;
	start(true);
	tp_smtpc_fail_lost(&sc);
	check_fail_line();
	out_is("421 4.4.2 Lost connection with " PEER " while receiving the "
	       "initial server greeting\r\n");
	start(true);
	tp_smtpc_fail_timeout(&sc);
	check_fail_line();
	out_is("421 4.4.2 Conversation with " PEER " timed out while "
	       "receiving the initial server greeting\r\n");
	/* Partway through a reply. */
	start(true);
	assert_int_equal(feed(GREETING), TP_SMTPC_SEND);
	assert_int_equal(feed("250-mx\r\n250-PIPE"), TP_SMTPC_MORE);
	tp_smtpc_fail_timeout(&sc);
	out_is("421 4.4.2 Conversation with " PEER " timed out while "
	       "performing the EHLO handshake\r\n");
	start(true);
	assert_int_equal(feed(GREETING), TP_SMTPC_SEND);
	assert_int_equal(feed(EHLO_TLS), TP_SMTPC_SEND);
	tp_smtpc_fail_lost(&sc);
	out_is("421 4.4.2 Lost connection with " PEER " while sending "
	       "STARTTLS\r\n");
}

/* The plaintext retry (plain_only): the greeting alone decides. */
static void
test_plain_only(void **state)
{
	(void)state;
	start(false);
	sc.plain_only = true;
	assert_int_equal(feed(GREETING), TP_SMTPC_PLAINTEXT);
	assert_int_equal(sc.state, TP_SMTPC_DONE);
	assert_string_equal(sc.greeting, "220 mx.example ESMTP Postfix");
	/* A refusal is still relayed. */
	start(true);
	sc.plain_only = true;
	assert_int_equal(feed("554 no\r\n"), TP_SMTPC_REFUSED);
	out_is("554 no\r\n");
	/* And the greeting is still checked. */
	start(true);
	sc.plain_only = true;
	assert_int_equal(feed("220 ok\r\nEHLO"), TP_SMTPC_FAIL);
	check_fail_line();
}

/* Input after a decision is refused, never silently taken. */
static void
test_input_after_done(void **state)
{
	(void)state;
	start(true);
	assert_int_equal(feed(GREETING), TP_SMTPC_SEND);
	assert_int_equal(feed(EHLO_NOTLS), TP_SMTPC_PLAINTEXT);
	expect_fail(
	    feed("220 x\r\n"), "421 4.5.0 Protocol error: unexpected data");
}

/* Long names, long replies: still one line of at most 512 octets. */
static void
test_fail_bounded(void **state)
{
	char host[400], text[3000];

	(void)state;
	memset(host, 'h', sizeof(host) - 1);
	host[sizeof(host) - 1] = '\0';
	memset(text, 't', sizeof(text));
	memcpy(text, "454 ", 4);
	memcpy(text + TP_LINE_MAX, "\r\n", 3);

	tp_smtpc_init(&sc, HELO, false, host, "2001:db8::1");
	assert_int_equal(feed(GREETING), TP_SMTPC_SEND);
	assert_int_equal(feed(EHLO_TLS), TP_SMTPC_SEND);
	assert_int_equal(feed(text), TP_SMTPC_FAIL);
	check_fail_line();
	assert_memory_equal(
	    sc.out, "421 4.7.5 TLS is required, but host hhh", 39);

	tp_smtpc_init(&sc, HELO, false, host, "2001:db8::1");
	assert_int_equal(feed(GREETING), TP_SMTPC_SEND);
	assert_int_equal(feed(EHLO_NOTLS), TP_SMTPC_FAIL);
	check_fail_line();

	tp_smtpc_init(&sc, HELO, false, host, "2001:db8::1");
	tp_smtpc_fail_timeout(&sc);
	check_fail_line();
	tp_smtpc_fail_lost(&sc);
	check_fail_line();

	tp_smtpc_init(&sc, HELO, false, host, "2001:db8::1");
	assert_int_equal(feed("hello\r\n"), TP_SMTPC_FAIL);
	check_fail_line();
}

/* A long helo_name is sent whole (it fits the 256-octet field). */
static void
test_long_helo(void **state)
{
	char helo[256], want[300];

	(void)state;
	memset(helo, 'a', sizeof(helo) - 1);
	helo[sizeof(helo) - 1] = '\0';
	tp_smtpc_init(&sc, helo, true, HOST, IP);
	assert_int_equal(feed("220 x\r\n"), TP_SMTPC_SEND);
	snprintf(want, sizeof(want), "EHLO %s\r\n", helo);
	out_is(want);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_happy_path_whole),
	    cmocka_unit_test(test_happy_path_byte_by_byte),
	    cmocka_unit_test(test_decides_on_last_byte),
	    cmocka_unit_test(test_greeting_forms),
	    cmocka_unit_test(test_greeting_long),
	    cmocka_unit_test(test_refused),
	    cmocka_unit_test(test_no_starttls),
	    cmocka_unit_test(test_starttls_refused),
	    cmocka_unit_test(test_response_injection),
	    cmocka_unit_test(test_data_before_command),
	    cmocka_unit_test(test_long_line),
	    cmocka_unit_test(test_long_line_at_once),
	    cmocka_unit_test(test_malformed),
	    cmocka_unit_test(test_lost_and_timeout),
	    cmocka_unit_test(test_plain_only),
	    cmocka_unit_test(test_input_after_done),
	    cmocka_unit_test(test_fail_bounded),
	    cmocka_unit_test(test_long_helo),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
