/*
 * test_smtp_server.c - the server-mode pre-TLS dialogue (spec 4.4, 5):
 * the proxy's greeting and EHLO reply (the backend's keywords as learned,
 * or the defaults, plus STARTTLS, minus CHUNKING, minus AUTH with
 * auth_only, SIZE as configured), the commands it answers itself,
 * STARTTLS with the pipelined bytes after it left for the caller to
 * discard, 530 at encrypt and the switch to plaintext at may, the 512-octet
 * line bound (500 at the octet that passes it, not at the line's end) and
 * the error limits, XCLIENT/XFORWARD/PIPECONNECT never offered and
 * XCLIENT/XFORWARD answered 550 by the proxy; and the backend side
 * (greeting, then the HELO/EHLO replay, an over-long line failing at once).
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

#define E501     "501 5.5.4 Syntax: EHLO hostname\r\n"
#define LONG     "500 5.5.2 Line too long\r\n"
#define TOO_MANY "421 4.7.0 Too many errors\r\n"
#define NO_AUTHZ "550 5.7.0 Error: insufficient authorization\r\n"

static struct tp_smtps_conf conf;
static struct tp_smtps ss;
static char out[1 << 16]; /* every reply sent so far */
static size_t outlen;
static size_t left;      /* input not consumed by the last feed */
static const char *rest; /* where it starts */

static char ehlo_out[4096]; /* this configuration's EHLO reply */

static void take(void);

/* start_caps - a fresh dialogue; learns its EHLO reply into ehlo_out. */
static void
start_caps(
    bool encrypt, unsigned long long size, bool auth_only, const char *caps)
{
	const char *p = "EHLO x\r\n";
	size_t l = 8;

	conf.hostname = "mx.example";
	conf.banner = "mx.example ESMTP";
	conf.size = size;
	conf.encrypt = encrypt;
	conf.auth_only = auth_only;
	tp_smtps_init(&ss, &conf, caps);
	assert_int_equal(tp_smtps_input(&ss, &p, &l), TP_SMTPS_MORE);
	assert_true(ss.outlen < sizeof(ehlo_out));
	memcpy(ehlo_out, ss.out, ss.outlen);
	ehlo_out[ss.outlen] = '\0';
	tp_smtps_init(&ss, &conf, caps);
	outlen = 0;
	out[0] = '\0';
}

static void
start(bool encrypt, unsigned long long size)
{
	start_caps(encrypt, size, false, NULL);
}

/* cat - the NULL-terminated strings, end to end. */
static const char *
cat(const char *first, ...)
{
	static char buf[1 << 14];
	va_list ap;
	const char *s;
	size_t n = 0;

	buf[0] = '\0';
	va_start(ap, first);
	for (s = first; s != NULL; s = va_arg(ap, const char *)) {
		assert_true(n + strlen(s) < sizeof(buf));
		memcpy(buf + n, s, strlen(s) + 1);
		n += strlen(s);
	}
	va_end(ap);
	return buf;
}

/*
 * check_ehlo - reply is one well-formed EHLO reply: "250-mx.example"
 * first, "250-" on every line but the last, "250 " on the last, and
 * exactly the keywords in want (NULL-terminated), in any order.
 */
static void
check_ehlo(const char *reply, const char *const *want)
{
	char kw[64][600];
	bool seen[64];
	size_t nkw = 0, nwant = 0;
	const char *p = reply, *e;

	e = strstr(p, "\r\n");
	assert_non_null(e);
	if (strncmp(p, "250-mx.example\r\n", 16) != 0)
		fail_msg("first line: \"%s\"", reply);
	p = e + 2;
	while (*p != '\0') {
		e = strstr(p, "\r\n");
		assert_non_null(e);
		assert_true(e - p >= 4);
		assert_true(nkw < 64);
		if (e[2] == '\0')
			assert_memory_equal(p, "250 ", 4);
		else
			assert_memory_equal(p, "250-", 4);
		memcpy(kw[nkw], p + 4, (size_t)(e - p) - 4);
		kw[nkw][e - p - 4] = '\0';
		nkw++;
		p = e + 2;
	}
	while (want[nwant] != NULL)
		nwant++;
	memset(seen, 0, sizeof(seen));
	for (size_t i = 0; i < nkw; i++) {
		size_t j;

		for (j = 0; j < nwant; j++)
			if (!seen[j] && strcmp(kw[i], want[j]) == 0)
				break;
		if (j == nwant)
			fail_msg(
			    "unexpected keyword \"%s\" in\n%s", kw[i], reply);
		seen[j] = true;
	}
	if (nkw != nwant)
		fail_msg("%zu keywords, want %zu in\n%s", nkw, nwant, reply);
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
	static const char *const defaults[] = {
	    "STARTTLS", "PIPELINING", "ENHANCEDSTATUSCODES", "8BITMIME", NULL};
	static const char *const with_size[] = {"STARTTLS", "PIPELINING",
	    "ENHANCEDSTATUSCODES", "8BITMIME", "SIZE 10240000", NULL};

	(void)state;
	/* Backend unknown: the defaults. */
	start(false, 0);
	assert_int_equal(feed("EHLO client.example\r\n"), TP_SMTPS_MORE);
	check_ehlo(out, defaults);
	assert_string_equal(out, ehlo_out);
	assert_string_equal(ss.helo, "EHLO client.example\r\n");
	/* 8BITMIME ends the default reply. */
	assert_non_null(strstr(out, "\r\n250 8BITMIME\r\n"));

	/* SIZE only when set. */
	start(true, 10240000);
	assert_int_equal(feed("ehlo client.example\r\n"), TP_SMTPS_MORE);
	check_ehlo(out, with_size);
	assert_string_equal(ss.helo, "ehlo client.example\r\n");
	/* An empty list is as unknown. */
	start_caps(false, 0, false, "");
	check_ehlo(ehlo_out, defaults);
}

/* The backend's keywords as learned by the probe. */
static void
test_ehlo_backend_caps(void **state)
{
	static const char caps[] = "PIPELINING\nSIZE 5000\nCHUNKING\n"
				   "AUTH PLAIN LOGIN\nAUTH=PLAIN LOGIN\n"
				   "STARTTLS\nVRFY\n8BITMIME\nDSN\nsmtputf8\n";
	static const char *const all[] = {"STARTTLS", "PIPELINING", "SIZE 5000",
	    "AUTH PLAIN LOGIN", "AUTH=PLAIN LOGIN", "VRFY", "8BITMIME", "DSN",
	    "smtputf8", NULL};
	static const char *const no_auth[] = {"STARTTLS", "PIPELINING",
	    "SIZE 5000", "VRFY", "8BITMIME", "DSN", "smtputf8", NULL};
	static const char *const own_size[] = {"STARTTLS", "PIPELINING",
	    "SIZE 1000", "VRFY", "8BITMIME", "DSN", "smtputf8", NULL};

	(void)state;
	/* STARTTLS once, CHUNKING never. */
	start_caps(false, 0, false, caps);
	check_ehlo(ehlo_out, all);
	start_caps(false, 0, true, caps);
	check_ehlo(ehlo_out, no_auth);
	/* The configured SIZE replaces the backend's. */
	start_caps(false, 1000, true, caps);
	check_ehlo(ehlo_out, own_size);
	/* Lowercase CHUNKING and STARTTLS are the same keywords. */
	{
		static const char *const want[] = {"STARTTLS", "DSN", NULL};

		start_caps(false, 0, false, "chunking\nstarttls\nDSN\n");
		check_ehlo(ehlo_out, want);
	}
	/* A keyword that would make a line over 512 octets is left out. */
	{
		static char big[600];
		static const char *const want[] = {"STARTTLS", "DSN", NULL};
		static const char *const fits[] = {
		    "STARTTLS", "DSN", big, NULL};

		memset(big, 'K', sizeof(big) - 1);
		big[sizeof(big) - 1] = '\0';
		start_caps(false, 0, false, cat(big, "\nDSN\n", NULL));
		check_ehlo(ehlo_out, want);
		big[506] = '\0'; /* "250-" + 506 + CRLF = 512 */
		start_caps(false, 0, false, cat(big, "\nDSN\n", NULL));
		check_ehlo(ehlo_out, fits);
	}
	/* Nothing left but STARTTLS: still a well-formed reply. */
	{
		const char *p = "EHLO x\r\n";
		size_t l = 8;

		start_caps(false, 0, false, "CHUNKING\nSTARTTLS\n");
		assert_int_equal(tp_smtps_input(&ss, &p, &l), TP_SMTPS_MORE);
		take();
		assert_memory_equal(
		    out, "250-mx.example\r\n250-STARTTLS\r\n", 30);
		assert_memory_equal(out + outlen - 2, "\r\n", 2);
		assert_null(strstr(out, "CHUNKING"));
		assert_non_null(strstr(out, "\r\n250 "));
	}
}

static void
test_caps_add(void **state)
{
	char caps[32] = "";

	(void)state;
	tp_smtps_caps_add(caps, sizeof(caps), "250-PIPELINING", 14);
	tp_smtps_caps_add(caps, sizeof(caps), "250 8BITMIME", 12);
	assert_string_equal(caps, "PIPELINING\n8BITMIME\n");
	/* Empty, non-printable: skipped. */
	tp_smtps_caps_add(caps, sizeof(caps), "250-", 4);
	tp_smtps_caps_add(caps, sizeof(caps), "250-A\x01", 6);
	assert_string_equal(caps, "PIPELINING\n8BITMIME\n");
	/* What does not fit is left out whole, never cut. */
	tp_smtps_caps_add(caps, sizeof(caps), "250-ENHANCEDSTATUSCODES", 23);
	assert_string_equal(caps, "PIPELINING\n8BITMIME\n");
	tp_smtps_caps_add(caps, sizeof(caps), "250-DSN", 7);
	assert_string_equal(caps, "PIPELINING\n8BITMIME\nDSN\n");
	tp_smtps_caps_add(caps, sizeof(caps), "250-SMTPUTF8", 12);
	assert_int_equal(strlen(caps), 24);
	tp_smtps_caps_add(caps, sizeof(caps), "250-ABCDEF", 10);
	assert_string_equal(caps, "PIPELINING\n8BITMIME\nDSN\nABCDEF\n");
	assert_true(strlen(caps) < sizeof(caps));
	tp_smtps_caps_add(caps, sizeof(caps), "250-X", 5);
	assert_true(strlen(caps) < sizeof(caps));
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
	assert_int_equal(
	    feed("EHLO\r\nEHLO \r\nHELO\r\nhelo   \r\n"), TP_SMTPS_MORE);
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
	assert_int_equal(
	    feed("NOOP\r\nRSET\r\nnoop x\r\nHELP\r\n"), TP_SMTPS_MORE);
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
	out_is(cat(ehlo_out, "220 2.0.0 Ready to start TLS\r\n", NULL));
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
	assert_int_equal(feed_step("STARTTLS\r\nQ", 11, 10), TP_SMTPS_STARTTLS);
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
	out_is(cat(ehlo_out,
	    "530 5.7.0 Must issue a STARTTLS command first\r\n"
	    "530 5.7.0 Must issue a STARTTLS command first\r\n"
	    "530 5.7.0 Must issue a STARTTLS command first\r\n"
	    "530 5.7.0 Must issue a STARTTLS command first\r\n",
	    NULL));
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
	out_is(cat("250 mx.example\r\n", ehlo_out, NULL));
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

/* A NUL in a command: refused, never kept (helo and pending are strings). */
static void
test_nul_in_command(void **state)
{
	static const char in[] = "EHLO a\0b\r\nMAIL FROM:<a>\0x\r\n\0\r\n"
				 "EHLO c\r\nMAIL FROM:<a>\r\n";

	(void)state;
	start(false, 0);
	assert_int_equal(feed_step(in, sizeof(in) - 1, 0), TP_SMTPS_PLAINTEXT);
	out_is(cat("500 5.5.2 Error: bad syntax\r\n"
		   "500 5.5.2 Error: bad syntax\r\n"
		   "500 5.5.2 Error: bad syntax\r\n",
	    ehlo_out, NULL));
	assert_string_equal(ss.helo, "EHLO c\r\n");
	assert_string_equal(ss.pending, "MAIL FROM:<a>\r\n");
	assert_int_equal(ss.errors, 3);
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
	out_is(LONG);
	outlen = 0;
	/* The rest of the line was discarded, the next one is read. */
	assert_int_equal(feed_step(far, strlen(far), 100), TP_SMTPS_MORE);
	out_is(LONG);
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
		out_is(LONG LONG TOO_MANY);
		/* the 421 comes at the third line's 511th octet */
		assert_int_equal(left, strlen("\r\nNOOP\r\n"));
	}

	/* A bare-LF line of 511 octets counts too (510 text octets max). */
	memset(bad, 'b', sizeof(bad));
	memcpy(bad, "NOOP ", 5);
	memcpy(bad + 511, "\n", 2);
	start(false, 0);
	assert_int_equal(feed(bad), TP_SMTPS_MORE);
	out_is(LONG);
}

/*
 * spec 5: 500 as soon as a line passes 512 octets with CRLF, not when its
 * LF comes (it may never come); the rest up to LF is dropped silently.
 */
static void
test_long_line_at_once(void **state)
{
	static char big[100 * 1024];
	char line[520];

	(void)state;
	memset(big, 'a', sizeof(big));
	start(false, 0);
	/* 510 octets: nothing to say yet, nothing consumed for nothing. */
	assert_int_equal(feed_step(big, 510, 0), TP_SMTPS_MORE);
	out_is("");
	/* The 511th: 500 at once. */
	assert_int_equal(feed_step(big, 1, 0), TP_SMTPS_MORE);
	out_is(LONG);
	assert_int_equal(ss.too_long, 1);
	/* The rest of 100 KB without LF, in pieces: no second reply. */
	assert_int_equal(
	    feed_step(big, sizeof(big) - 511, 4096), TP_SMTPS_MORE);
	out_is(LONG);
	/* Its LF, then a command: one 250, no second 500. */
	assert_int_equal(feed("aaa\r\nNOOP\r\n"), TP_SMTPS_MORE);
	out_is(LONG "250 2.0.0 Ok\r\n");
	assert_int_equal(ss.too_long, 1);
	assert_int_equal(ss.errors, 0);

	/* 100 KB whole in one feed: one 500; the second such line another. */
	start(false, 0);
	assert_int_equal(feed_step(big, sizeof(big), 0), TP_SMTPS_MORE);
	out_is(LONG);
	assert_int_equal(feed("\nNOOP\r\n"), TP_SMTPS_MORE);
	out_is(LONG "250 2.0.0 Ok\r\n");
	outlen = 0;
	assert_int_equal(feed_step(big, sizeof(big), 1000), TP_SMTPS_MORE);
	out_is(LONG);
	outlen = 0;
	assert_int_equal(feed("\n"), TP_SMTPS_MORE);
	out_is("");
	/* The third: 421 and close, before its LF. */
	assert_int_equal(feed_step(big, 600, 0), TP_SMTPS_CLOSE);
	out_is(TOO_MANY);
	assert_int_equal(left, 600 - 511);

	/* 510 octets and a CR: may still be the line's end. */
	memset(line, 'n', sizeof(line));
	memcpy(line, "NOOP ", 5);
	start(false, 0);
	line[510] = '\r';
	assert_int_equal(feed_step(line, 511, 0), TP_SMTPS_MORE);
	out_is("");
	assert_int_equal(feed("\n"), TP_SMTPS_MORE);
	out_is("250 2.0.0 Ok\r\n");
	/* ... but not when anything other than LF follows it. */
	start(false, 0);
	assert_int_equal(feed_step(line, 511, 0), TP_SMTPS_MORE);
	out_is("");
	assert_int_equal(feed("x\r\nNOOP\r\n"), TP_SMTPS_MORE);
	out_is(LONG "250 2.0.0 Ok\r\n");
	/* A good line right after a too-long one in the same input. */
	start(true, 0);
	line[510] = 'n';
	memcpy(line + 511, "\r\nRSET\r\n", 9);
	assert_int_equal(feed_step(line, 520, 0), TP_SMTPS_MORE);
	out_is(LONG "250 2.0.0 Ok\r\n");
}

/*
 * spec 5: a client must not speak for the proxy.  XCLIENT, XFORWARD and
 * PIPECONNECT never appear in our EHLO reply, whatever the backend offers
 * and however it spells them.
 */
static void
test_ehlo_no_proxy_keywords(void **state)
{
	static const char caps[] = "PIPELINING\nXCLIENT NAME ADDR PROTO HELO\n"
				   "xforward NAME ADDR PROTO HELO SOURCE\n"
				   "PIPECONNECT\nXclient\nXFORWARD=NAME\n"
				   "XCLIENTX\nDSN\n";
	static const char *const want[] = {
	    "STARTTLS", "PIPELINING", "XCLIENTX", "DSN", NULL};

	(void)state;
	start_caps(false, 0, false, caps);
	check_ehlo(ehlo_out, want);
	start_caps(true, 0, false, caps);
	check_ehlo(ehlo_out, want);
	/* The last keyword dropped: the reply still ends well. */
	{
		static const char *const only[] = {"STARTTLS", "DSN", NULL};

		start_caps(false, 0, false, "DSN\nXCLIENT ADDR\n");
		check_ehlo(ehlo_out, only);
		assert_non_null(strstr(ehlo_out, "\r\n250 DSN\r\n"));
	}
}

/*
 * XCLIENT and XFORWARD, with any arguments and in the forms a backend's
 * tokenizer would accept, get 550 5.7.0 from the proxy at every level:
 * never the command that starts a plaintext relay, never 530.
 */
static void
test_xclient_refused(void **state)
{
	static const char *const cmds[] = {"XCLIENT ADDR=1.2.3.4\r\n",
	    "xclient addr=1.2.3.4 name=spoofed.example\r\n", "XCLIENT\r\n",
	    "XFORWARD ADDR=1.2.3.4\r\n", "XForward\n",
	    "\tXCLIENT\tADDR=1.2.3.4\r\n", "  XFORWARD  NAME=x\r\n",
	    "XCLIENT\vADDR=1.2.3.4\r\n", "XCLIENT\rADDR=1.2.3.4\r\n", NULL};

	(void)state;
	for (int enc = 0; enc < 2; enc++) {
		for (int i = 0; cmds[i] != NULL; i++) {
			start(enc, 0);
			assert_int_equal(feed(cmds[i]), TP_SMTPS_MORE);
			out_is(NO_AUTHZ);
			assert_string_equal(ss.pending, "");
			assert_int_equal(ss.errors, 1);
		}
	}
	/* After EHLO, and the session goes on: at may the next command
	 * starts the relay, and it is that one, not the XCLIENT. */
	start(false, 0);
	assert_int_equal(feed("EHLO c\r\nXCLIENT ADDR=1.2.3.4\r\n"
			      "MAIL FROM:<a@example>\r\n"),
	    TP_SMTPS_PLAINTEXT);
	out_is(cat(ehlo_out, NO_AUTHZ, NULL));
	assert_string_equal(ss.pending, "MAIL FROM:<a@example>\r\n");
	assert_string_equal(ss.helo, "EHLO c\r\n");
	/* At encrypt, STARTTLS still works after it. */
	start(true, 0);
	assert_int_equal(
	    feed("XFORWARD NAME=x\r\nSTARTTLS\r\n"), TP_SMTPS_STARTTLS);
	out_is(NO_AUTHZ "220 2.0.0 Ready to start TLS\r\n");
	/* Only the verb counts: a longer word is another command. */
	start(false, 0);
	assert_int_equal(feed("XCLIENTX a\r\n"), TP_SMTPS_PLAINTEXT);
	assert_string_equal(ss.pending, "XCLIENTX a\r\n");
	/* They count as errors: the tenth ends the session. */
	{
		char in[400];
		size_t n = 0;

		for (int i = 0; i < 10; i++)
			n +=
			    (size_t)sprintf(in + n, "XCLIENT ADDR=1.2.3.4\r\n");
		start(false, 0);
		assert_int_equal(feed(in), TP_SMTPS_CLOSE);
		assert_int_equal(ss.errors, 10);
		assert_string_equal(out + outlen - strlen(TOO_MANY), TOO_MANY);
		assert_string_equal(ss.pending, "");
	}
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
	out_is(cat(ehlo_out, "250 2.0.0 Ok\r\n250 2.0.0 Ok\r\n", NULL));
	/* The same byte by byte, and in every split. */
	for (size_t step = 1; step < strlen(in); step++) {
		start(false, 0);
		assert_int_equal(
		    feed_step(in, strlen(in), step), TP_SMTPS_MORE);
		out_is(cat(ehlo_out, "250 2.0.0 Ok\r\n250 2.0.0 Ok\r\n", NULL));
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

/*
 * The biggest EHLO reply (a backend with hundreds of tiny keywords) after
 * a pipelined burst: the output never runs past its buffer.
 */
static void
test_ehlo_huge_caps(void **state)
{
	static char caps[sizeof(ss.caps)];
	static char in[8192];
	size_t n = 0;

	(void)state;
	while (n + 3 < sizeof(caps)) {
		caps[n] = (char)('A' + n % 26);
		caps[n + 1] = '\n';
		n += 2;
	}
	caps[n] = '\0';
	for (int burst = 150; burst < 230; burst++) {
		const char *p;
		size_t l = 0;

		for (int i = 0; i < burst; i++)
			l += (size_t)sprintf(in + l, "NOOP\r\n");
		for (int i = 0; i < 4; i++)
			l += (size_t)sprintf(in + l, "EHLO x\r\n");
		start_caps(false, 123, false, caps);
		p = in;
		while (l > 0) {
			assert_int_equal(
			    tp_smtps_input(&ss, &p, &l), TP_SMTPS_MORE);
			assert_true(ss.outlen <= sizeof(ss.out));
			assert_true(ss.outlen >= 2);
			assert_memory_equal(ss.out + ss.outlen - 2, "\r\n", 2);
			ss.outlen = 0;
		}
	}
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
		assert_int_equal(
		    bfeed_step("220-backend ESMTP\r\n220 hi\r\n", step),
		    TP_SMTPB_READY);
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
		assert_int_equal(
		    bfeed_step("220 backend ESMTP\r\n", step), TP_SMTPB_SEND);
		bout_is("EHLO client.example\r\n");
		assert_int_equal(bfeed_step("250-backend\r\n250-PIPELINING\r\n"
					    "250 CHUNKING\r\n",
				     step),
		    TP_SMTPB_READY);
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
	assert_int_equal(bfeed_step("554 5.3.2 busy\r\n", 0), TP_SMTPB_REFUSED);
	bout_is("554 5.3.2 busy\r\n");
	tp_smtpb_init(&sb, NULL);
	assert_int_equal(
	    bfeed_step("421-4.3.2 a\r\n421 4.3.2 b\r\n", 1), TP_SMTPB_REFUSED);
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
	/* At the octet that passes 2048, without waiting for the LF. */
	big[TP_LINE_MAX + 1] = '\0';
	tp_smtpb_init(&sb, NULL);
	assert_int_equal(bfeed_step(big, 0), TP_SMTPB_FAIL);
	assert_int_equal(left, 0);
	bout_is("backend reply line too long");
	tp_smtpb_init(&sb, NULL);
	assert_int_equal(bfeed_step(big, 1), TP_SMTPB_FAIL);
	/* 2048 octets and no LF yet: still waiting. */
	big[TP_LINE_MAX] = '\0';
	tp_smtpb_init(&sb, NULL);
	assert_int_equal(bfeed_step(big, 0), TP_SMTPB_MORE);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_greeting),
	    cmocka_unit_test(test_ehlo),
	    cmocka_unit_test(test_ehlo_backend_caps),
	    cmocka_unit_test(test_caps_add),
	    cmocka_unit_test(test_helo),
	    cmocka_unit_test(test_missing_argument),
	    cmocka_unit_test(test_own_commands),
	    cmocka_unit_test(test_starttls),
	    cmocka_unit_test(test_encrypt_mail),
	    cmocka_unit_test(test_may_plaintext),
	    cmocka_unit_test(test_nul_in_command),
	    cmocka_unit_test(test_long_lines),
	    cmocka_unit_test(test_long_line_at_once),
	    cmocka_unit_test(test_ehlo_no_proxy_keywords),
	    cmocka_unit_test(test_xclient_refused),
	    cmocka_unit_test(test_too_many_errors),
	    cmocka_unit_test(test_pipelined),
	    cmocka_unit_test(test_output_bounded),
	    cmocka_unit_test(test_ehlo_huge_caps),
	    cmocka_unit_test(test_backend_no_replay),
	    cmocka_unit_test(test_backend_replay),
	    cmocka_unit_test(test_backend_refused),
	    cmocka_unit_test(test_backend_malformed),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
