/*
 * fuzz_smtp_server.c - the server-mode pre-TLS dialogue against a hostile
 * client, then the backend side against a hostile backend.
 *
 * Input: byte 0 holds flags (bit 0 encrypt, bit 1 auth_only, bit 2 a
 * configured SIZE, bit 3 backend keywords follow), byte 1 the split seed;
 * with bit 3, bytes 2-3 give the keyword list's length (mod 1024) and
 * that many bytes follow (non-printable bytes become line ends).  The
 * rest is split at the first "\0\0\0\0": before it, what the client
 * sends; after it, what the backend sends.
 * Checks: the output never exceeds its buffer and is whole reply lines
 * ("[2-5]xx" then SP or '-', CRLF, at most 512 octets) and never offer
 * XCLIENT, XFORWARD or PIPECONNECT; STARTTLS leaves the bytes after its
 * line unconsumed; PLAINTEXT carries the command, never XCLIENT or
 * XFORWARD (spec 5); the backend side's SEND is the replay, REFUSED one
 * reply line.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <strings.h>

#include "fuzz_split.h"
#include "tlsproxy/smtp_server.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* word_is - s (n octets) starts with the word w, then one of `ends` or
 * its end */
static bool
word_is(const char *s, size_t n, const char *w, const char *ends)
{
	size_t l = strlen(w);

	return n >= l && strncasecmp(s, w, l) == 0 &&
	    (n == l || strchr(ends, s[l]) != NULL);
}

/* proxy_keyword - an EHLO keyword the proxy must never offer */
static bool
proxy_keyword(const char *s, size_t n)
{
	return word_is(s, n, "XCLIENT", " =") ||
	    word_is(s, n, "XFORWARD", " =") ||
	    word_is(s, n, "PIPECONNECT", " =");
}

/* proxy_command - XCLIENT or XFORWARD as Postfix's tokenizer reads it */
static bool
proxy_command(const char *s, size_t n)
{
	static const char space[] = " \t\n\v\f\r";

	while (n > 0 && strchr(space, *s) != NULL && *s != '\0') {
		s++;
		n--;
	}
	return word_is(s, n, "XCLIENT", space) ||
	    word_is(s, n, "XFORWARD", space);
}

static void
check_replies(const char *s, size_t len, size_t cap)
{
	size_t off = 0;

	FZ_CHECK(len <= cap);
	while (off < len) {
		const char *lf = memchr(s + off, '\n', len - off);
		size_t n;

		FZ_CHECK(lf != NULL);
		n = (size_t)(lf - (s + off)) + 1;
		FZ_CHECK(n <= 512);
		FZ_CHECK(n >= 2 && s[off + n - 2] == '\r');
		/* A reply line, possibly cut short only when the buffer is
		 * full (absurd keyword lists). */
		if (n >= 6) {
			FZ_CHECK(s[off] >= '2' && s[off] <= '5');
			FZ_CHECK(s[off + 3] == ' ' || s[off + 3] == '-');
			if (memcmp(s + off, "250", 3) == 0)
				FZ_CHECK(!proxy_keyword(s + off + 4, n - 6));
		}
		off += n;
	}
}

static void
backend(const char *in, size_t len, const char *replay, uint8_t seed)
{
	static struct tp_smtpb sb;
	struct fz_split sp;
	size_t off = 0;
	bool sent = false;

	tp_smtpb_init(&sb, replay);
	fz_split_init(&sp, seed);
	while (off < len) {
		size_t n = fz_split_next(&sp, len - off);
		const char *p = in + off;
		size_t left = n;
		enum tp_smtpb_action a = tp_smtpb_input(&sb, &p, &left);

		FZ_CHECK(left <= n && p == in + off + (n - left));
		switch (a) {
		case TP_SMTPB_MORE:
			FZ_CHECK(left == 0);
			off += n;
			continue;
		case TP_SMTPB_SEND:
			FZ_CHECK(!sent && replay != NULL && *replay != '\0');
			FZ_CHECK(sb.outlen == strlen(replay) &&
			    memcmp(sb.out, replay, sb.outlen) == 0);
			sent = true;
			off += n - left;
			continue;
		case TP_SMTPB_READY:
			FZ_CHECK(sent || replay == NULL || *replay == '\0');
			return;
		case TP_SMTPB_REFUSED:
			FZ_CHECK(!sent);
			FZ_CHECK(sb.outlen <= 512 && sb.outlen >= 6);
			FZ_CHECK(sb.out[sb.outlen - 1] == '\n');
			FZ_CHECK(sb.out[0] != '2');
			return;
		case TP_SMTPB_FAIL:
			FZ_CHECK(sb.outlen > 0 && sb.outlen < sizeof(sb.out));
			return;
		default:
			FZ_CHECK(0);
		}
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct tp_smtps ss;
	static char caps[sizeof(ss.caps)];
	static struct tp_smtps_conf conf;
	struct fz_split sp;
	const char *in, *sep;
	size_t len, off = 0, clen;
	const char *replay = NULL;
	bool greet;

	if (size < 2)
		return 0;
	conf.hostname = "mx.example";
	conf.banner = "mx.example ESMTP";
	conf.encrypt = data[0] & 1;
	conf.auth_only = (data[0] & 2) != 0;
	conf.size = data[0] & 4 ? 10240000 : 0;
	greet = (data[0] & 16) != 0;
	in = (const char *)data + 2;
	len = size - 2;
	caps[0] = '\0';
	if (data[0] & 8) {
		size_t n;

		if (len < 2)
			return 0;
		n = (((size_t)(uint8_t)in[0] << 8) | (uint8_t)in[1]) %
		    sizeof(caps);
		in += 2;
		len -= 2;
		if (n > len)
			n = len;
		for (size_t i = 0; i < n; i++)
			caps[i] = in[i] >= 0x20 && in[i] < 0x7f ? in[i] : '\n';
		caps[n] = '\0';
		in += n;
		len -= n;
	}
	tp_smtps_init(&ss, &conf, data[0] & 8 ? caps : NULL);
	if (greet) {
		tp_smtps_greeting(&ss);
		check_replies(ss.out, ss.outlen, sizeof(ss.out));
		ss.outlen = 0;
	}
	sep = memmem(in, len, "\0\0\0\0", 4);
	clen = sep ? (size_t)(sep - in) : len;
	fz_split_init(&sp, data[1]);
	while (off < clen) {
		size_t n = fz_split_next(&sp, clen - off);
		const char *p = in + off;
		size_t left = n;
		enum tp_smtps_action a;

		do {
			size_t before = left;

			a = tp_smtps_input(&ss, &p, &left);
			FZ_CHECK(left <= before);
			FZ_CHECK(p == in + off + (n - left));
			check_replies(ss.out, ss.outlen, sizeof(ss.out));
			ss.outlen = 0;
			if (a == TP_SMTPS_MORE && left == before)
				FZ_CHECK(0); /* no progress */
		} while (a == TP_SMTPS_MORE && left > 0);
		switch (a) {
		case TP_SMTPS_MORE:
			off += n;
			continue;
		case TP_SMTPS_STARTTLS:
			/* The rest is the caller's to discard. */
			FZ_CHECK(ss.lr.ready);
			goto backend;
		case TP_SMTPS_PLAINTEXT:
			FZ_CHECK(!conf.encrypt);
			FZ_CHECK(strlen(ss.pending) >= 3);
			FZ_CHECK(!proxy_command(ss.pending, strlen(ss.pending)));
			FZ_CHECK(memcmp(ss.pending + strlen(ss.pending) - 2,
			    "\r\n", 2) == 0);
			if (ss.helo[0] != '\0') {
				size_t hl = strlen(ss.helo);

				FZ_CHECK(hl >= 7 && memcmp(ss.helo + hl - 2,
				    "\r\n", 2) == 0);
			}
			replay = ss.helo;
			goto backend;
		case TP_SMTPS_CLOSE:
			return 0;
		default:
			FZ_CHECK(0);
		}
	}
	return 0;
backend:
	if (sep != NULL)
		backend(sep + 4, len - clen - 4, replay, data[1]);
	return 0;
}
