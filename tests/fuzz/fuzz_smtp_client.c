/*
 * fuzz_smtp_client.c - the client-mode STARTTLS negotiator against a
 * hostile upstream.
 *
 * Input: byte 0 holds flags (bit 0 `may`, bit 1 plain_only, bit 2 end
 * with fail_timeout rather than fail_lost when undecided) and byte 1 the
 * split seed; the rest is everything the upstream sends, fed in pieces.
 * Checks: every MORE uses all of its input; SEND is one CRLF-terminated
 * command; REFUSED and FAIL are one reply line of at most 512 octets with
 * CRLF (FAIL always a 421 4.x.x); STARTTLS only right after a 220, with
 * no byte left over (response injection); the kept greeting is a
 * printable 220 line that fits 512 octets with CRLF.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "fuzz_split.h"
#include "tlsproxy/smtp_client.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check_line(const char *s, size_t len)
{
	FZ_CHECK(len >= 5 && len <= 512);
	FZ_CHECK(s[len - 2] == '\r' && s[len - 1] == '\n');
	FZ_CHECK(memchr(s, '\n', len - 1) == NULL);
	FZ_CHECK(memchr(s, '\r', len - 2) == NULL);
	FZ_CHECK(s[0] >= '2' && s[0] <= '5');
}

static void
check_fail(const struct tp_smtpc *s)
{
	check_line(s->out, s->outlen);
	FZ_CHECK(memcmp(s->out, "421 4.", 6) == 0);
	FZ_CHECK(s->state == TP_SMTPC_DONE);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct tp_smtpc sc;
	struct fz_split sp;
	const char *in;
	size_t len, off = 0;
	enum tp_smtpc_action a = TP_SMTPC_MORE;
	bool sent_starttls = false, done = false;

	if (size < 2)
		return 0;
	tp_smtpc_init(&sc, "proxy.example", data[0] & 1, "mx.example",
	    "192.0.2.1");
	sc.plain_only = (data[0] & 2) != 0;
	fz_split_init(&sp, data[1]);
	in = (const char *)data + 2;
	len = size - 2;
	while (off < len && !done) {
		size_t n = fz_split_next(&sp, len - off);
		const char *p = in + off;
		size_t left = n;

		a = tp_smtpc_input(&sc, &p, &left);
		FZ_CHECK(left <= n && p == in + off + (n - left));
		switch (a) {
		case TP_SMTPC_MORE:
			FZ_CHECK(left == 0);
			break;
		case TP_SMTPC_SEND:
			FZ_CHECK(left == 0); /* bytes after a reply: FAIL */
			FZ_CHECK(sc.outlen >= 6 && sc.outlen < sizeof(sc.out));
			FZ_CHECK(sc.out[sc.outlen - 2] == '\r' &&
			    sc.out[sc.outlen - 1] == '\n');
			FZ_CHECK(memchr(sc.out, '\n', sc.outlen - 1) == NULL);
			if (memcmp(sc.out, "STARTTLS\r\n", 10) == 0) {
				FZ_CHECK(!sc.plain_only);
				sent_starttls = true;
			} else {
				FZ_CHECK(memcmp(sc.out, "EHLO ", 5) == 0);
				FZ_CHECK(!sent_starttls);
			}
			break;
		case TP_SMTPC_STARTTLS:
			FZ_CHECK(sent_starttls && left == 0);
			FZ_CHECK(sc.state == TP_SMTPC_DONE);
			done = true;
			break;
		case TP_SMTPC_PLAINTEXT:
			FZ_CHECK(left == 0);
			FZ_CHECK(sc.may || sc.plain_only);
			done = true;
			break;
		case TP_SMTPC_REFUSED:
			FZ_CHECK(left == 0);
			check_line(sc.out, sc.outlen);
			FZ_CHECK(memcmp(sc.out, "220", 3) != 0);
			done = true;
			break;
		case TP_SMTPC_FAIL:
			check_fail(&sc);
			done = true;
			break;
		default:
			FZ_CHECK(0);
		}
		off += n;
	}
	if (sc.greeting[0] != '\0') {
		size_t gl = strlen(sc.greeting);

		FZ_CHECK(memcmp(sc.greeting, "220", 3) == 0);
		FZ_CHECK(gl + 2 <= 512);
		FZ_CHECK(tp_smtp_printable(sc.greeting, gl));
	}
	if (!done) {
		if (data[0] & 4)
			tp_smtpc_fail_timeout(&sc);
		else
			tp_smtpc_fail_lost(&sc);
		check_fail(&sc);
	} else {
		/* Whatever comes after a decision is refused. */
		const char *p = "x";
		size_t l = 1;

		FZ_CHECK(tp_smtpc_input(&sc, &p, &l) == TP_SMTPC_FAIL);
		check_fail(&sc);
	}
	return 0;
}
