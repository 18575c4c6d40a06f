/*
 * test_smtp_server.c - the server-mode pre-TLS dialogue (spec 4.4, 5):
 * the proxy's greeting and EHLO reply, the commands it answers itself,
 * STARTTLS with the pipelined bytes after it left for the caller to
 * discard, 530 at encrypt and the switch to plaintext at may, the 512-octet
 * line bound and the error limits; and the backend side (greeting, then
 * the HELO/EHLO replay).
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

#include "tlsproxy/smtp_server.h"

#define EHLO_REPLY                                                             \
	"250-mx.example\r\n250-PIPELINING\r\n250-STARTTLS\r\n"                 \
	"250-ENHANCEDSTATUSCODES\r\n250 8BITMIME\r\n"
#define EHLO_REPLY_SIZE                                                        \
	"250-mx.example\r\n250-PIPELINING\r\n250-SIZE 10240000\r\n"            \
	"250-STARTTLS\r\n250-ENHANCEDSTATUSCODES\r\n250 8BITMIME\r\n"
#define E501 "501 5.5.4 Syntax: EHLO hostname\r\n"
#define TOO_MANY "421 4.7.0 mx.example Error: too many errors\r\n"

static struct tp_smtps_conf conf;
static struct tp_smtps ss;
static char out[1 << 16]; /* every reply sent so far */
static size_t outlen;
static size_t left;       /* input not consumed by the last feed */
static const char *rest;  /* where it starts */

static void
start(bool encrypt, unsigned long long size)
{
	conf.hostname = "mx.example";
	conf.banner = "mx.example ESMTP";
	conf.size = size;
	conf.encrypt = encrypt;
	tp_smtps_init(&ss, &conf, NULL);
	outlen = 0;
}

/* take - "send" ss.out: append it to out and empty it. */
static void
take(void)
{
	assert_true(outlen + ss.outlen < sizeof(out));
	memcpy(out + outlen, ss.out, ss.outlen);
	outlen += ss.outlen;
	out[outlen] = '\0';
	ss.outlen = 0;
}

/*
 * feed_step - feed str in pieces of `step` bytes (0 = whole), sending the
 * output after every call as the caller does, until an action other than
 * MORE.  Returns it; `left`/`rest` say what input is left.
 */
static enum tp_smtps_action
feed_step(const char *str, size_t len, size_t step)
{
	size_t off = 0;

	left = 0;
	rest = str + len;
	while (off < len) {
		size_t n = step == 0 || len - off < step ? len - off : step;
		const char *p = str + off;
		size_t l = n;
		enum tp_smtps_action a;

		do {
			size_t before = l;

			a = tp_smtps_input(&ss, &p, &l);
			assert_true(ss.outlen <= sizeof(ss.out));
			take();
			if (a != TP_SMTPS_MORE) {
				left = l + (len - off - n);
				rest = p;
				return a;
			}
			/* MORE with input left: the output was full. */
			assert_true(l == 0 || l < before);
		} while (l > 0);
		off += n;
	}
	return TP_SMTPS_MORE;
}

static enum tp_smtps_action
feed(const char *str)
{
	return feed_step(str, strlen(str), 0);
}

static void
out_is(const char *want)
{
	if (strcmp(out, want) != 0)
		fail_msg("out is\n\"%s\"\nwant\n\"%s\"", out, want);
}

static void
test_greeting(void **state)
{
	(void)state;
	start(false, 0);
	tp_smtps_greeting(&ss);
	take();
	out_is("220 mx.example ESMTP\r\n");

	/* A long banner still makes one line of at most 512 octets. */
	{
		char banner[2000];

		memset(banner, 'b', sizeof(banner) - 1);
		banner[sizeof(banner) - 1] = '\0';
		start(false, 0);
		conf.banner = banner;
		tp_smtps_greeting(&ss);
		take();
		assert_true(outlen <= 512);
		assert_memory_equal(out, "220 bbb", 7);
		assert_string_equal(out + outlen - 2, "\r\n");
	}
}

static void
test_ehlo(void **state)
{
	(void)state;
	start(false, 0);
	assert_int_equal(feed("EHLO client.example\r\n"), TP_SMTPS_MORE);
	out_is(EHLO_REPLY);
	assert_string_equal(ss.helo, "EHLO client.example\r\n");
	assert_null(strstr(out, "CHUNKING"));
	assert_null(strstr(out, "AUTH"));

	start(true, 10240000);
	assert_int_equal(feed("ehlo client.example\r\n"), TP_SMTPS_MORE);
	out_is(EHLO_REPLY_SIZE);
	assert_string_equal(ss.helo, "ehlo client.example\r\n");
}

static void
test_helo(void **state)
{
	(void)state;
	start(false, 0);
	assert_int_equal(feed("HELO client.example\r\n"), TP_SMTPS_MORE);
	out_is("250 mx.example\r\n");
	assert_string_equal(ss.helo, "HELO client.example\r\n");
}

static void
test_missing_argument(void **state)
{
	(void)state;
	start(false, 0);
	assert_int_equal(feed("EHLO\r\nEHLO \r\nHELO\r\nhelo   \r\n"),
	    TP_SMTPS_MORE);
	out_is("501 5.5.4 Syntax: EHLO hostname\r\n"
	       "501 5.5.4 Syntax: EHLO hostname\r\n"
	       "501 5.5.4 Syntax: HELO hostname\r\n"
	       "501 5.5.4 Syntax: HELO hostname\r\n");
	assert_string_equal(ss.helo, "");
	/* EHLOx is no EHLO: at may it is a command for the backend. */
	start(false, 0);
	assert_int_equal(feed("EHLOx\r\n"), TP_SMTPS_PLAINTEXT);
	assert_string_equal(ss.pending, "EHLOx\r\n");
}

static void
test_own_commands(void **state)
{
	(void)state;
	start(true, 0);
	assert_int_equal(feed("NOOP\r\nRSET\r\nnoop x\r\nHELP\r\n"),
	    TP_SMTPS_MORE);
	out_is("250 2.0.0 Ok\r\n250 2.0.0 Ok\r\n250 2.0.0 Ok\r\n"
	       "214 2.0.0 Commands: EHLO HELO STARTTLS NOOP RSET QUIT\r\n");
	assert_int_equal(ss.errors, 0);

	start(true, 0);
	assert_int_equal(feed("QUIT\r\nNOOP\r\n"), TP_SMTPS_CLOSE);
	out_is("221 2.0.0 Bye\r\n");
	assert_int_equal(left, 6);
}

static void
test_starttls(void **state)
{
	const char *in = "EHLO c\r\nSTARTTLS\r\nMAIL FROM:<evil@example>\r\n";

	(void)state;
	start(true, 0);
	assert_int_equal(feed(in), TP_SMTPS_STARTTLS);
	out_is(EHLO_REPLY "220 2.0.0 Ready to start TLS\r\n");
	/* The injected command is left for the caller to discard. */
	assert_int_equal(left, strlen("MAIL FROM:<evil@example>\r\n"));
	assert_string_equal(rest, "MAIL FROM:<evil@example>\r\n");

	/* Nothing after it: nothing left. */
	start(false, 0);
	assert_int_equal(feed("starttls\r\n"), TP_SMTPS_STARTTLS);
	out_is("220 2.0.0 Ready to start TLS\r\n");
	assert_int_equal(left, 0);

	/* Byte by byte, the bytes in the same feed are left. */
	start(false, 0);
	assert_int_equal(feed_step("STARTTLS\r\nQ", 11, 10),
	    TP_SMTPS_STARTTLS);
	assert_int_equal(left, 1);

	/* With an argument: 501, and the dialogue goes on. */
	start(true, 0);
	assert_int_equal(feed("STARTTLS x\r\nSTARTTLS\r\n"), TP_SMTPS_STARTTLS);
	out_is("501 5.5.4 Syntax: STARTTLS\r\n"
	       "220 2.0.0 Ready to start TLS\r\n");
	assert_int_equal(left, 0);
}

static void
test_encrypt_mail(void **state)
{
	(void)state;
	start(true, 0);
	assert_int_equal(feed("EHLO c\r\nMAIL FROM:<a@example>\r\n"
			      "RCPT TO:<b@example>\r\nDATA\r\n\r\n"),
	    TP_SMTPS_MORE);
	out_is(EHLO_REPLY
	    "530 5.7.0 Must issue a STARTTLS command first\r\n"
	    "530 5.7.0 Must issue a STARTTLS command first\r\n"
	    "530 5.7.0 Must issue a STARTTLS command first\r\n"
	    "530 5.7.0 Must issue a STARTTLS command first\r\n");
	assert_int_equal(ss.errors, 4);
}

static void
test_may_plaintext(void **state)
{
	(void)state;
	start(false, 0);
	assert_int_equal(feed("HELO first\r\nEHLO second.example\r\n"
			      "MAIL FROM:<a@example> SIZE=100\r\n"
			      "RCPT TO:<b@example>\r\n"),
	    TP_SMTPS_PLAINTEXT);
	out_is("250 mx.example\r\n" EHLO_REPLY);
	assert_string_equal(ss.pending, "MAIL FROM:<a@example> SIZE=100\r\n");
	assert_string_equal(ss.helo, "EHLO second.example\r\n");
	/* What follows is left for the plaintext relay. */
	assert_string_equal(rest, "RCPT TO:<b@example>\r\n");

	/* Without any HELO/EHLO, nothing to replay. */
	start(false, 0);
	assert_int_equal(feed("MAIL FROM:<>\n"), TP_SMTPS_PLAINTEXT);
	out_is("");
	assert_string_equal(ss.pending, "MAIL FROM:<>\r\n");
	assert_string_equal(ss.helo, "");

	/* An empty line is no command. */
	start(false, 0);
	assert_int_equal(feed("\r\nVRFY x\r\n"), TP_SMTPS_PLAINTEXT);
	out_is("500 5.5.2 Error: bad syntax\r\n");
	assert_string_equal(ss.pending, "VRFY x\r\n");

	/* The longest line goes plain whole. */
	{
		char line[600];

		memset(line, 'x', sizeof(line));
		memcpy(line, "MAIL ", 5);
		memcpy(line + 510, "\r\n", 3);
		start(false, 0);
		assert_int_equal(feed(line), TP_SMTPS_PLAINTEXT);
		assert_string_equal(ss.pending, line);
		memcpy(line, "EHLO ", 5);
		start(false, 0);
		assert_int_equal(feed(line), TP_SMTPS_MORE);
		assert_string_equal(ss.helo, line);
	}
}

static void
test_long_lines(void **state)
{
	char ok[600], bad[600], far[5000];

	(void)state;
	/* 512 octets with CRLF: fine. */
	memset(ok, 'o', sizeof(ok));
	memcpy(ok, "NOOP ", 5);
	memcpy(ok + 510, "\r\n", 3);
	/* 513: too long. */
	memset(bad, 'b', sizeof(bad));
	memcpy(bad, "NOOP ", 5);
	memcpy(bad + 511, "\r\n", 3);
	memset(far, 'f', sizeof(far));
	memcpy(far + sizeof(far) - 3, "\r\n", 3);

	start(true, 0);
	assert_int_equal(feed(ok), TP_SMTPS_MORE);
	out_is("250 2.0.0 Ok\r\n");
	outlen = 0;
	assert_int_equal(feed(bad), TP_SMTPS_MORE);
	out_is("500 5.5.2 Error: line too long\r\n");
	outlen = 0;
	/* The rest of the line was discarded, the next one is read. */
	assert_int_equal(feed_step(far, strlen(far), 100), TP_SMTPS_MORE);
	out_is("500 5.5.2 Error: line too long\r\n");
	outlen = 0;
	assert_int_equal(feed("NOOP\r\n"), TP_SMTPS_MORE);
	out_is("250 2.0.0 Ok\r\n");
	outlen = 0;
	/* The third one costs the session. */
	assert_int_equal(feed_step(bad, strlen(bad), 1), TP_SMTPS_CLOSE);
	out_is(TOO_MANY);

	/* Three in one feed: two 500s then the 421. */
	{
		char three[2000];

		snprintf(three, sizeof(three), "%s%s%sNOOP\r\n", bad, bad, bad);
		start(false, 0);
		assert_int_equal(feed(three), TP_SMTPS_CLOSE);
		out_is("500 5.5.2 Error: line too long\r\n"
		       "500 5.5.2 Error: line too long\r\n" TOO_MANY);
		assert_int_equal(left, 6);
	}

	/* A bare-LF line of 511 octets counts too (510 text octets max). */
	memset(bad, 'b', sizeof(bad));
	memcpy(bad, "NOOP ", 5);
	memcpy(bad + 511, "\n", 2);
	start(false, 0);
	assert_int_equal(feed(bad), TP_SMTPS_MORE);
	out_is("500 5.5.2 Error: line too long\r\n");
}

static void
test_too_many_errors(void **state)
{
	char in[400];
	size_t n = 0;

	(void)state;
	for (int i = 0; i < 12; i++)
		n += (size_t)sprintf(in + n, "EHLO\r\n");
	start(false, 0);
	assert_int_equal(feed(in), TP_SMTPS_CLOSE);
	assert_int_equal(ss.errors, 10);
	/* Nine 501s, then the 421. */
	for (int i = 0; i < 9; i++)
		assert_memory_equal(out + i * strlen(E501), E501, strlen(E501));
	assert_string_equal(out + 9 * strlen(E501), TOO_MANY);
	assert_int_equal(left, 12);

	/* 530s at encrypt count as errors. */
	n = 0;
	for (int i = 0; i < 10; i++)
		n += (size_t)sprintf(in + n, "MAIL FROM:<>\r\n");
	start(true, 0);
	assert_int_equal(feed(in), TP_SMTPS_CLOSE);
	assert_string_equal(out + outlen - strlen(TOO_MANY), TOO_MANY);

	/* Good commands do not. */
	n = 0;
	for (int i = 0; i < 20; i++)
		n += (size_t)sprintf(in + n, "NOOP\r\n");
	start(true, 0);
	assert_int_equal(feed(in), TP_SMTPS_MORE);
	assert_int_equal(ss.errors, 0);
}

static void
test_pipelined(void **state)
{
	const char *in = "EHLO a\r\nNOOP\r\nNOOP\r\n";

	(void)state;
	start(false, 0);
	assert_int_equal(feed(in), TP_SMTPS_MORE);
	out_is(EHLO_REPLY "250 2.0.0 Ok\r\n250 2.0.0 Ok\r\n");
	/* The same byte by byte, and in every split. */
	for (size_t step = 1; step < strlen(in); step++) {
		start(false, 0);
		assert_int_equal(feed_step(in, strlen(in), step),
		    TP_SMTPS_MORE);
		out_is(EHLO_REPLY "250 2.0.0 Ok\r\n250 2.0.0 Ok\r\n");
	}
}

/* A flood of pipelined commands: the output stays bounded. */
static void
test_output_bounded(void **state)
{
	static char in[1000 * 8];
	size_t n = 0, count = 0;
	const char *p;
	size_t l;
	int calls = 0;

	(void)state;
	for (int i = 0; i < 500; i++)
		n += (size_t)sprintf(in + n, "EHLO x\r\nNOOP\r\n");
	start(false, 0);
	p = in;
	l = n;
	while (l > 0) {
		assert_int_equal(tp_smtps_input(&ss, &p, &l), TP_SMTPS_MORE);
		assert_true(ss.outlen <= sizeof(ss.out));
		calls++;
		ss.outlen = 0;
	}
	assert_true(calls > 1);
	/* Every command answered: feed the lot again and count. */
	start(false, 0);
	assert_int_equal(feed_step(in, n, 0), TP_SMTPS_MORE);
	for (const char *q = out; (q = strstr(q, "250 ")) != NULL; q++)
		count++;
	assert_int_equal(count, 1000);
}

/* Backend side. */

static struct tp_smtpb sb;

static enum tp_smtpb_action
bfeed_step(const char *str, size_t step)
{
	size_t len = strlen(str), off = 0;

	left = 0;
	while (off < len) {
		size_t n = step == 0 || len - off < step ? len - off : step;
		const char *p = str + off;
		size_t l = n;
		enum tp_smtpb_action a = tp_smtpb_input(&sb, &p, &l);

		off += n;
		if (a != TP_SMTPB_MORE) {
			left = l + (len - off);
			rest = p;
			return a;
		}
		assert_int_equal(l, 0);
	}
	return TP_SMTPB_MORE;
}

static void
bout_is(const char *want)
{
	if (sb.outlen != strlen(want) || memcmp(sb.out, want, sb.outlen) != 0)
		fail_msg("out is \"%.*s\", want \"%s\"", (int)sb.outlen, sb.out,
		    want);
}

static void
test_backend_no_replay(void **state)
{
	(void)state;
	for (size_t step = 0; step < 5; step++) {
		tp_smtpb_init(&sb, NULL);
		assert_int_equal(bfeed_step("220-backend ESMTP\r\n220 hi\r\n",
		    step), TP_SMTPB_READY);
		assert_int_equal(left, 0);
	}
	/* An empty replay is no replay. */
	tp_smtpb_init(&sb, "");
	assert_int_equal(bfeed_step("220 backend\r\n", 0), TP_SMTPB_READY);
	/* Any 2xx will do. */
	tp_smtpb_init(&sb, NULL);
	assert_int_equal(bfeed_step("250 backend\n", 0), TP_SMTPB_READY);
}

static void
test_backend_replay(void **state)
{
	(void)state;
	for (size_t step = 0; step < 5; step++) {
		tp_smtpb_init(&sb, "EHLO client.example\r\n");
		assert_int_equal(bfeed_step("220 backend ESMTP\r\n", step),
		    TP_SMTPB_SEND);
		bout_is("EHLO client.example\r\n");
		assert_int_equal(bfeed_step("250-backend\r\n250-PIPELINING\r\n"
					    "250 CHUNKING\r\n",
		    step), TP_SMTPB_READY);
		assert_int_equal(left, 0);
	}
	/* Bytes after READY are the caller's (relayed, not eaten). */
	tp_smtpb_init(&sb, "HELO c\r\n");
	assert_int_equal(bfeed_step("220 b\r\n", 0), TP_SMTPB_SEND);
	bout_is("HELO c\r\n");
	assert_int_equal(bfeed_step("250 b\r\n250 more", 0), TP_SMTPB_READY);
	assert_int_equal(left, 8);
	assert_string_equal(rest, "250 more");
}

static void
test_backend_refused(void **state)
{
	(void)state;
	tp_smtpb_init(&sb, "EHLO c\r\n");
	assert_int_equal(bfeed_step("554 5.3.2 busy\r\n", 0),
	    TP_SMTPB_REFUSED);
	bout_is("554 5.3.2 busy\r\n");
	tp_smtpb_init(&sb, NULL);
	assert_int_equal(bfeed_step("421-4.3.2 a\r\n421 4.3.2 b\r\n", 1),
	    TP_SMTPB_REFUSED);
	bout_is("421 4.3.2 a\r\n");
}

static void
test_backend_malformed(void **state)
{
	char big[TP_LINE_MAX + 16];

	(void)state;
	tp_smtpb_init(&sb, NULL);
	assert_int_equal(bfeed_step("hello\r\n", 0), TP_SMTPB_FAIL);
	bout_is("backend: malformed reply");
	tp_smtpb_init(&sb, NULL);
	assert_int_equal(bfeed_step("220-a\r\n221 b\r\n", 0), TP_SMTPB_FAIL);
	bout_is("backend: reply code changes within a multi-line reply");
	tp_smtpb_init(&sb, "EHLO c\r\n");
	assert_int_equal(bfeed_step("220 b\r\n", 0), TP_SMTPB_SEND);
	assert_int_equal(bfeed_step("250 \x01\r\n", 0), TP_SMTPB_FAIL);
	bout_is("backend: non-printable text in reply");
	memset(big, 'x', sizeof(big));
	memcpy(big, "220 ", 4);
	memcpy(big + TP_LINE_MAX + 1, "\r\n", 3);
	tp_smtpb_init(&sb, NULL);
	assert_int_equal(bfeed_step(big, 0), TP_SMTPB_FAIL);
	bout_is("backend reply line too long");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_greeting),
	    cmocka_unit_test(test_ehlo),
	    cmocka_unit_test(test_helo),
	    cmocka_unit_test(test_missing_argument),
	    cmocka_unit_test(test_own_commands),
	    cmocka_unit_test(test_starttls),
	    cmocka_unit_test(test_encrypt_mail),
	    cmocka_unit_test(test_may_plaintext),
	    cmocka_unit_test(test_long_lines),
	    cmocka_unit_test(test_too_many_errors),
	    cmocka_unit_test(test_pipelined),
	    cmocka_unit_test(test_output_bounded),
	    cmocka_unit_test(test_backend_no_replay),
	    cmocka_unit_test(test_backend_replay),
	    cmocka_unit_test(test_backend_refused),
	    cmocka_unit_test(test_backend_malformed),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
