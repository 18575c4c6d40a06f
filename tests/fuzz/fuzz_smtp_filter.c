/*
 * fuzz_smtp_filter.c - the in-tunnel filter with both peers hostile.
 *
 * Input: byte 0 is the split seed; then operations, each a control byte
 * c and up to 1 + (c >> 1) payload bytes: c & 1 says the payload is
 * server bytes, else client bytes.  The session is played twice - each
 * payload whole, and each payload in pieces - and both runs must give
 * the same bytes on both sides whenever no EHLO reply is too big to
 * rewrite (the only split-dependent path).  Server bytes are always cut
 * after each LF as well: held client bytes go on after the reply line
 * that frees them, as with a real server, which cannot answer a command
 * before the filter has passed it on (a hostile one that does only
 * confuses the reply count, and differently for different splits).
 * Checks on every run: the client side never takes more than offered,
 * never forwards more than it took, the server side never emits more
 * than it got plus the proxy's own STARTTLS answers, and held client
 * bytes stay bounded.
 * And the point of it all: when there can be no message content (the
 * server never says 354, the client never says BDAT), no line the
 * server gets has STARTTLS for its first word, however spaced or cased.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "fuzz_split.h"
#include "tlsproxy/smtp_filter.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define ANSWER "554 5.5.1 Error: TLS already active"

struct out {
	char *buf;
	size_t len, cap;
};

struct run {
	struct tp_filter f;
	struct out ts, tc;
	char *pend; /* client bytes offered, not yet taken */
	size_t pendl;
	size_t client_in, client_taken, server_in;
	unsigned answers;
	bool dead; /* the server broke SMTP (TP_FILTER_EPROTO) */
};

static int
put(struct out *o, const char *d, size_t n)
{
	if (n == 0)
		return 0;
	if (o->len + n > o->cap) {
		size_t cap = o->cap ? o->cap : 4096;
		char *nb;

		while (cap < o->len + n)
			cap *= 2;
		if ((nb = realloc(o->buf, cap)) == NULL)
			return -1;
		o->buf = nb;
		o->cap = cap;
	}
	memcpy(o->buf + o->len, d, n);
	o->len += n;
	return 0;
}

static int
to_server(void *arg, const char *d, size_t n)
{
	return put(&((struct run *)arg)->ts, d, n);
}

static int
to_client(void *arg, const char *d, size_t n)
{
	struct run *r = arg;

	if (n == strlen(ANSWER) && memcmp(d, ANSWER, n) == 0)
		r->answers++;
	return put(&r->tc, d, n);
}

static void
pump(struct run *r)
{
	size_t used, before = r->ts.len;

	if (r->pendl == 0)
		return;
	used = tp_filter_client(&r->f, r->pend, r->pendl, to_server,
	    to_client, r);
	FZ_CHECK(used != (size_t)-1);
	FZ_CHECK(used <= r->pendl);
	r->client_taken += used;
	FZ_CHECK(r->ts.len - before <= used + r->f.clen + 128);
	memmove(r->pend, r->pend + used, r->pendl - used);
	r->pendl -= used;
}

static void
play(struct run *r, const uint8_t *data, size_t size, uint8_t seed)
{
	struct fz_split sp;
	size_t i = 0;

	memset(r, 0, sizeof(*r));
	tp_filter_init(&r->f, ANSWER, 0);
	fz_split_init(&sp, seed);
	r->pend = malloc(size + 1);
	FZ_CHECK(r->pend != NULL);
	while (i < size) {
		uint8_t c = data[i++];
		size_t n = 1 + (c >> 1), off = 0;

		if (n > size - i)
			n = size - i;
		while (off < n) {
			size_t k = fz_split_next(&sp, n - off);
			const char *p = (const char *)data + i + off;

			if (c & 1) {
				bool resume = false;
				const char *lf = memchr(p, '\n', k);
				int rc;

				if (lf != NULL)
					k = (size_t)(lf - p) + 1;

				r->server_in += k;
				rc = tp_filter_server(&r->f, p, k, to_client, r,
				    &resume);
				FZ_CHECK(rc == 0 || rc == TP_FILTER_EPROTO);
				if (rc != 0) {
					/* the session ends here */
					r->dead = true;
					return;
				}
				if (resume)
					pump(r);
			} else {
				memcpy(r->pend + r->pendl, p, k);
				r->pendl += k;
				r->client_in += k;
				pump(r);
			}
			off += k;
		}
		i += n;
		FZ_CHECK(r->f.qlen <= TP_FILTER_QUEUE);
		FZ_CHECK(r->f.clen <= sizeof(r->f.cbuf));
		FZ_CHECK(r->f.elen <= TP_FILTER_EHLO_MAX);
	}
	/* Forwarded: what was taken, minus dropped STARTTLS lines. */
	FZ_CHECK(r->ts.len <= r->client_taken);
	FZ_CHECK(r->client_taken + r->pendl == r->client_in);
	FZ_CHECK(r->tc.len <= r->server_in + r->answers *
	    (strlen(ANSWER) + 2));
}

static bool
space(char c)
{
	return c == ' ' || c == '\t' || c == '\v' || c == '\f' || c == '\r';
}

/* has_word - does data contain word (any case)? */
static bool
has_word(const uint8_t *data, size_t len, const char *word)
{
	size_t wl = strlen(word);

	for (size_t i = 0; i + wl <= len; i++)
		if (strncasecmp((const char *)data + i, word, wl) == 0)
			return true;
	return false;
}

/* no_starttls - no line of to_server starts with the STARTTLS verb. */
static void
no_starttls(const struct run *r)
{
	const char *p = r->ts.buf, *end;

	if (r->ts.len == 0)
		return;
	end = p + r->ts.len;
	while (p < end) {
		const char *lf = memchr(p, '\n', (size_t)(end - p));
		const char *e = lf ? lf : end;
		const char *w = p;

		while (w < e && space(*w))
			w++;
		if (e - w >= 8 && strncasecmp(w, "STARTTLS", 8) == 0)
			FZ_CHECK(e - w > 8 && !space(w[8]));
		p = lf ? lf + 1 : end;
	}
}

static void
done(struct run *r)
{
	tp_filter_free(&r->f);
	free(r->ts.buf);
	free(r->tc.buf);
	free(r->pend);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct run a, b;

	if (size < 1)
		return 0;
	play(&a, data + 1, size - 1, 0);
	play(&b, data + 1, size - 1, data[0]);
	if (!has_word(data + 1, size - 1, "354") &&
	    !has_word(data + 1, size - 1, "BDAT")) {
		no_starttls(&a);
		no_starttls(&b);
	}
	if (a.server_in + 8 < TP_FILTER_EHLO_MAX && !a.dead && !b.dead) {
		FZ_CHECK(a.ts.len == b.ts.len);
		FZ_CHECK(a.ts.len == 0 ||
		    memcmp(a.ts.buf, b.ts.buf, a.ts.len) == 0);
		FZ_CHECK(a.tc.len == b.tc.len);
		FZ_CHECK(a.tc.len == 0 ||
		    memcmp(a.tc.buf, b.tc.buf, a.tc.len) == 0);
	}
	done(&a);
	done(&b);
	return 0;
}
