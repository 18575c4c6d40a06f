/*
 * fuzz_smtp_gateway.c - the gateway engine with a hostile MTA and a
 * hostile upstream, its events answered by a simulated event layer.
 *
 * Input: byte 0 is the split seed, byte 1 flags (bit 0: a SIZE limit;
 * bit 1: conf.reuse, RSET and TP_GW_PARK, a kept upstream every other time);
 * then operations, each a control byte c: c & 3 says what happens -
 * 0 MTA bytes, 1 upstream bytes (1 + (c >> 2) payload bytes each), 2 the
 * upstream is lost, 3 how the next CONNECTs are answered ((c >> 2) % 3:
 * up_ready, up_failed with a 451, up_failed with the 556 for null MX).
 * The simulated caller answers CONNECT at once, calls again after
 * DISCONNECT, drops body bytes and upstream bytes while it has no
 * upstream, and answers -1 from tp_gw_upstream with tp_gw_up_lost.
 * Upstream bytes are always cut after each LF, with the MTA's pending
 * input offered between lines, as with a real upstream, which cannot
 * answer a command before the gateway has sent it.
 * The session is played twice - each payload whole, and each payload in
 * pieces - and both runs must give the same bytes and events unless a
 * reply was cut for room in down_out (the only split-dependent path).
 * A third run feeds consecutive upstream payloads in one call, many
 * replies at once, which is what makes replies compete for room in
 * down_out; it is held to the checks below, not to the others' bytes.
 * Checks on every call: no output past its buffer; the engine never
 * takes more than offered, nor reports more body than it took; every
 * line to the MTA is a well-formed reply line (tp_reply_line), and the
 * MTA never gets more replies than the greeting plus its lines (one per
 * LF taken, one more for an over-long line still open); every command
 * to the upstream is a whole CRLF line without control octets (nothing
 * smuggled from the MTA); and at the end, input left over means the
 * engine waits for an open upstream that owes a reply (no stall).
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_split.h"
#include "tlsproxy/smtp_gateway.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define PEER "mx.dst.example[192.0.2.1]"

struct out {
	char *buf;
	size_t len, cap;
};

struct run {
	struct tp_gw_conf conf;
	struct tp_gw g;
	struct out mta, up, ev;
	struct tp_reply reply; /* checks the MTA's stream */
	char line[TP_GW_OUT + 1];
	size_t linelen;
	unsigned replies, lfs;
	char *pend; /* MTA bytes not yet taken */
	size_t pendl;
	int answer; /* how CONNECT is answered */
	bool linked, ended;
	bool closed_seen; /* TP_GW_CLOSE was noted */
};

static void
put(struct out *o, const char *d, size_t n)
{
	if (n == 0)
		return;
	if (o->len + n > o->cap) {
		size_t cap = o->cap ? o->cap : 4096;
		char *nb;

		while (cap < o->len + n)
			cap *= 2;
		nb = realloc(o->buf, cap);
		FZ_CHECK(nb != NULL);
		o->buf = nb;
		o->cap = cap;
	}
	memcpy(o->buf + o->len, d, n);
	o->len += n;
}

/* mta_got - bytes for the MTA: whole, well-formed reply lines. */
static void
mta_got(struct run *r, const char *d, size_t n)
{
	const char *why;

	put(&r->mta, d, n);
	for (size_t i = 0; i < n; i++) {
		FZ_CHECK(r->linelen < sizeof(r->line));
		r->line[r->linelen++] = d[i];
		if (d[i] != '\n')
			continue;
		FZ_CHECK(r->linelen >= 2 && r->line[r->linelen - 2] == '\r');
		FZ_CHECK(tp_reply_line(
			     &r->reply, r->line, r->linelen - 2, &why) >= 0);
		if (r->reply.done)
			r->replies++;
		r->linelen = 0;
	}
}

/* up_got - commands for the upstream: CRLF lines, no control octets. */
static void
up_got(struct run *r, const char *d, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)d[i];

		if (c == '\r') {
			FZ_CHECK(i + 1 < n && d[i + 1] == '\n');
			i++;
			continue;
		}
		FZ_CHECK(c >= 0x20 && c != 0x7f);
	}
	FZ_CHECK(n == 0 || d[n - 1] == '\n');
	if (r->linked)
		put(&r->up, d, n);
}

static void
take(struct run *r)
{
	FZ_CHECK(r->g.down_len <= TP_GW_OUT);
	FZ_CHECK(r->g.up_len <= TP_GW_OUT);
	mta_got(r, r->g.down_out, r->g.down_len);
	up_got(r, r->g.up_out, r->g.up_len);
	r->g.down_len = r->g.up_len = 0;
}

static void
on_event(struct run *r, enum tp_gw_event ev)
{
	static const char names[] = "-CDXP";

	FZ_CHECK(ev >= TP_GW_NONE && ev <= TP_GW_PARK);
	FZ_CHECK(r->conf.reuse || (ev != TP_GW_PARK && !tp_gw_parking(&r->g)));
	if (ev == TP_GW_NONE)
		return;
	/* CLOSE repeats while a parking upstream answers: noted once */
	if (ev != TP_GW_CLOSE || !r->closed_seen)
		put(&r->ev, &names[ev], 1);
	if (ev == TP_GW_CLOSE)
		r->closed_seen = true;
	/* a parking upstream stays until its RSET is answered */
	if (ev == TP_GW_DISCONNECT || ev == TP_GW_PARK ||
	    (ev == TP_GW_CLOSE && !tp_gw_parking(&r->g)))
		r->linked = false;
	if ((ev == TP_GW_CLOSE && !tp_gw_parking(&r->g)) ||
	    (ev == TP_GW_PARK && r->g.closed))
		r->ended = true;
}

static void
connect_answer(struct run *r)
{
	enum tp_gw_event ev;

	if (r->answer == 0 && r->conf.reuse && (r->ev.len & 1)) {
		/* a kept upstream: no EHLO */
		r->linked = true;
		tp_gw_up_reused(&r->g, PEER, TP_GW_UP_PIPE, &ev);
	} else if (r->answer == 0) {
		r->linked = true;
		tp_gw_up_ready(&r->g, PEER, &ev);
	} else if (r->answer == 1) {
		tp_gw_up_failed(
		    &r->g, "451 4.4.1 Connection refused by " PEER ":25", &ev);
	} else {
		tp_gw_up_failed(&r->g,
		    "556 5.1.10 Recipient address rejected: Domain "
		    "dst.example does not accept mail (nullMX)",
		    &ev);
	}
	take(r);
	on_event(r, ev);
}

/* pump - offer the MTA's pending bytes, as the event layer does. */
static void
pump(struct run *r)
{
	while (!r->ended) {
		enum tp_gw_event ev;
		size_t body, n;

		n = tp_gw_client(&r->g, r->pend, r->pendl, &body, &ev);
		FZ_CHECK(n <= r->pendl);
		FZ_CHECK(body <= n);
		for (size_t i = 0; i < n; i++)
			if (r->pend[i] == '\n')
				r->lfs++;
		take(r);
		if (body > 0 && r->linked)
			put(&r->up, r->pend, body);
		memmove(r->pend, r->pend + n, r->pendl - n);
		r->pendl -= n;
		on_event(r, ev);
		/* one for the greeting, one for a long line without LF yet */
		FZ_CHECK(r->replies <= r->lfs + 2);
		if (ev == TP_GW_CONNECT) {
			connect_answer(r);
			continue;
		}
		if (ev == TP_GW_CLOSE || (ev != TP_GW_DISCONNECT && n == 0))
			return;
	}
}

static void
lost(struct run *r)
{
	enum tp_gw_event ev;

	r->linked = false;
	tp_gw_up_lost(&r->g, "451 4.4.2 " PEER ": Lost connection", &ev);
	take(r);
	on_event(r, ev);
	pump(r);
}

static void
upstream(struct run *r, const char *p, size_t k)
{
	enum tp_gw_event ev;
	int rc;

	if (!r->linked)
		return; /* nobody reads a closed upstream */
	rc = tp_gw_upstream(&r->g, p, k, &ev);
	FZ_CHECK(rc == 0 || rc == -1);
	take(r);
	on_event(r, ev);
	if (rc < 0) {
		put(&r->ev, "E", 1);
		lost(r);
		return;
	}
	pump(r);
}

static void
play(struct run *r, const uint8_t *data, size_t size, uint8_t seed,
    uint8_t flags, bool lines)
{
	struct fz_split sp;
	size_t i = 0;
	char *ubuf = NULL; /* !lines: upstream bytes of consecutive ops */
	size_t ulen = 0;

	memset(r, 0, sizeof(*r));
	r->conf.hostname = "gw.example";
	r->conf.helo = "gw.example.net";
	r->conf.size = flags & 1 ? 1000 : 0;
	r->conf.reuse = (flags & 2) != 0;
	tp_gw_init(&r->g, &r->conf);
	tp_reply_init(&r->reply);
	fz_split_init(&sp, seed);
	r->pend = malloc(size + 1);
	FZ_CHECK(r->pend != NULL);
	if (!lines) {
		ubuf = malloc(size + 1);
		FZ_CHECK(ubuf != NULL);
	}
	tp_gw_greeting(&r->g);
	take(r);
	while (i < size && !r->ended) {
		uint8_t c = data[i++];
		size_t n = 1 + (c >> 2), off = 0;

		if (ulen > 0 && (c & 3) != 1) {
			upstream(r, ubuf, ulen);
			ulen = 0;
		}
		if ((c & 3) == 2) {
			if (r->linked)
				lost(r);
			continue;
		}
		if ((c & 3) == 3) {
			r->answer = (c >> 2) % 3;
			continue;
		}
		if (n > size - i)
			n = size - i;
		if (!lines && (c & 1)) {
			memcpy(ubuf + ulen, data + i, n);
			ulen += n;
			i += n;
			continue;
		}
		while (off < n && !r->ended) {
			size_t k = fz_split_next(&sp, n - off);
			const char *p = (const char *)data + i + off;

			if (c & 1) {
				const char *lf = memchr(p, '\n', k);

				if (lf != NULL)
					k = (size_t)(lf - p) + 1;
				upstream(r, p, k);
			} else {
				memcpy(r->pend + r->pendl, p, k);
				r->pendl += k;
				pump(r);
			}
			off += k;
		}
		i += n;
		FZ_CHECK(r->g.qlen <= TP_GW_QUEUE);
		FZ_CHECK(r->g.elen <= TP_GW_EXPECT);
		(void)tp_gw_phase(&r->g);
	}
	if (ulen > 0 && !r->ended)
		upstream(r, ubuf, ulen);
	free(ubuf);
	/* left-over input: only ever waiting for an upstream that owes */
	if (r->pendl > 0 && !r->ended)
		FZ_CHECK(r->g.up_open && r->g.elen > 0);
	if (tp_gw_idle(&r->g))
		FZ_CHECK(r->g.qlen == 0);
}

static bool
same(const struct out *a, const struct out *b)
{
	return a->len == b->len &&
	    (a->len == 0 || memcmp(a->buf, b->buf, a->len) == 0);
}

static void
done(struct run *r)
{
	free(r->mta.buf);
	free(r->up.buf);
	free(r->ev.buf);
	free(r->pend);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct run a, b, c;

	if (size < 2)
		return 0;
	play(&a, data + 2, size - 2, 0, data[1], true);
	play(&b, data + 2, size - 2, data[0], data[1], true);
	play(&c, data + 2, size - 2, data[0], data[1], false);
	if (a.g.cut == 0 && b.g.cut == 0) {
		FZ_CHECK(same(&a.mta, &b.mta));
		FZ_CHECK(same(&a.up, &b.up));
		FZ_CHECK(same(&a.ev, &b.ev));
	}
	done(&a);
	done(&b);
	done(&c);
	return 0;
}
