/*
 * fuzz_smtp_line.c - the line reader and the reply parser.
 *
 * Input: byte 0 picks the line maximum (bits 0-1: 1, 64, 510, 2048) and
 * byte 1 the split seed; the rest is the byte stream.  The stream is fed
 * whole and in pieces: both must give the same lines and report them at
 * the same offsets (split-invariance), and both must match a byte-at-a-
 * time model of the bound (spec 5: a line is reported too long at the
 * first octet that makes it longer than max whatever follows, then
 * nothing until after its LF); every line must respect the maximum and
 * be NUL-terminated, and every line goes through the reply parser and
 * tp_smtp_verb.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "fuzz_split.h"
#include "tlsproxy/smtp_line.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* digest - FNV-1a over everything the reader reported. */
static void
mix(uint64_t *h, const void *p, size_t n)
{
	const unsigned char *c = p;

	for (size_t i = 0; i < n; i++)
		*h = (*h ^ c[i]) * 1099511628211ull;
}

/* event - what the reader reported and where, into the digest */
static void
event(uint64_t *h, enum tp_line_rc rc, size_t at, const char *line,
    size_t len)
{
	mix(h, &rc, sizeof(rc));
	mix(h, &at, sizeof(at));
	if (rc == TP_LINE_OK) {
		mix(h, &len, sizeof(len));
		mix(h, line, len);
	}
}

/*
 * model - the reader's contract, one octet at a time: a line's text (the
 * octets before LF, minus one CR right before it) longer than max is
 * reported at the octet that shows it: the (max+1)th unless that is a
 * CR, else the one after that CR.
 */
static uint64_t
model(const char *s, size_t len, size_t max, unsigned *nlines)
{
	static char line[TP_LINE_MAX + 2];
	uint64_t h = 14695981039346656037ull;
	size_t n = 0;
	bool skip = false;

	*nlines = 0;
	for (size_t i = 0; i < len; i++) {
		char c = s[i];

		if (skip) {
			skip = c != '\n';
			continue;
		}
		if (c == '\n') {
			if (n > 0 && line[n - 1] == '\r')
				n--;
			event(&h, TP_LINE_OK, i + 1, line, n);
			(*nlines)++;
			n = 0;
		} else if (n == max + 1 || (n == max && c != '\r')) {
			event(&h, TP_LINE_TOOLONG, i + 1, NULL, 0);
			(*nlines)++;
			skip = true;
			n = 0;
		} else {
			line[n++] = c;
		}
	}
	return h;
}

static uint64_t
run(const char *s, size_t len, size_t max, uint8_t seed, unsigned *nlines)
{
	struct tp_linereader lr;
	struct tp_reply r;
	struct fz_split sp;
	uint64_t h = 14695981039346656037ull;
	size_t off = 0;

	tp_line_init(&lr, max);
	tp_reply_init(&r);
	fz_split_init(&sp, seed);
	*nlines = 0;
	while (off < len) {
		size_t n = fz_split_next(&sp, len - off);
		const char *p = s + off;
		size_t left = n;

		while (left > 0) {
			size_t before = left;
			enum tp_line_rc rc = tp_line_feed(&lr, &p, &left);
			const char *why = NULL, *arg;
			int rr;

			FZ_CHECK(left < before);
			FZ_CHECK(p == s + off + (n - left));
			if (rc == TP_LINE_MORE) {
				FZ_CHECK(left == 0);
				break;
			}
			(*nlines)++;
			if (rc == TP_LINE_TOOLONG) {
				FZ_CHECK(lr.len == 0 && lr.buf[0] == '\0');
				event(&h, rc, (size_t)(p - s), NULL, 0);
				continue;
			}
			FZ_CHECK(rc == TP_LINE_OK);
			FZ_CHECK(lr.len <= lr.max && lr.len <= TP_LINE_MAX);
			FZ_CHECK(lr.buf[lr.len] == '\0');
			FZ_CHECK(memchr(lr.buf, '\n', lr.len) == NULL);
			event(&h, rc, (size_t)(p - s), lr.buf, lr.len);
			rr = tp_reply_line(&r, lr.buf, lr.len, &why);
			FZ_CHECK(rr >= -1 && rr <= 1);
			if (rr < 0) {
				FZ_CHECK(why != NULL);
				tp_reply_init(&r);
			} else {
				FZ_CHECK(r.code >= 200 && r.code <= 599);
				FZ_CHECK(r.nlines >= 1 &&
				    r.nlines <= TP_REPLY_MAX_LINES);
				FZ_CHECK(strlen(r.first) <= TP_LINE_MAX);
				FZ_CHECK(tp_smtp_printable(r.first,
				    strlen(r.first)));
				FZ_CHECK(r.done == (rr == 1));
			}
			if (tp_smtp_verb(lr.buf, "STARTTLS", &arg))
				FZ_CHECK(arg >= lr.buf &&
				    arg <= lr.buf + strlen(lr.buf));
			(void)tp_smtp_verb(lr.buf, "EHLO", &arg);
		}
		off += n;
	}
	return h;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const size_t maxes[4] = {1, 64, 510, TP_LINE_MAX};
	unsigned n1, n2, n3;
	uint64_t whole;
	size_t max;

	if (size < 2)
		return 0;
	max = maxes[data[0] & 3];
	whole = run((const char *)data + 2, size - 2, max, 0, &n1);
	FZ_CHECK(whole ==
	    run((const char *)data + 2, size - 2, max, data[1], &n2));
	FZ_CHECK(n1 == n2);
	FZ_CHECK(whole == model((const char *)data + 2, size - 2, max, &n3));
	FZ_CHECK(n1 == n3);
	return 0;
}
