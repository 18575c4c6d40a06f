/*
 * connpool.c - idle upstream connections kept for reuse (spec 4.7), per
 * worker; see connpool.h.  The pool owns an entry's endpoint (side.h)
 * and hears from it through callbacks of its own: anything at all
 * (bytes, EOF, an error) ends it, as Postfix's connection cache does with
 * a server that speaks while idle.  One timer, armed for the earliest idle
 * deadline.
 */
#include "tlsproxy/connpool.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/ssl.h>

#include "tlsproxy/common.h"
#include "tlsproxy/config.h"
#include "tlsproxy/gen.h"
#include "tlsproxy/log.h"
#include "tlsproxy/metrics.h"
#include "tlsproxy/side.h"
#include "tlsproxy/smtp_filter.h"
#include "tlsproxy/tls_io.h"

#define TP_POOLED_MAGIC 0x504f4f4cu

struct tp_pooled {
	uint32_t magic;
	struct tp_pooled *next, *prev;
	struct tp_connpool *cp;
	struct side *side;
	struct tp_reuse *r;
	struct tp_gen *gen; /* a reference: the SSL_CTX and the stats */
	size_t route;
	uint64_t expires; /* uv_now() deadline while idle */
};

/*
 * The record.
 */

struct tp_reuse *
tp_reuse_new(uint64_t now)
{
	struct tp_reuse *r = calloc(1, sizeof(*r));

	if (r != NULL)
		r->born = now;
	return r;
}

void
tp_reuse_free(struct tp_reuse *r)
{
	if (r == NULL)
		return;
	free(r->greeting);
	free(r->ehlo);
	free(r->helo);
	free(r);
}

/* text_add - append to a kept reply; spoiled when too long. */
static void
text_add(
    struct tp_reuse *r, char **buf, size_t *len, const char *data, size_t n)
{
	char *nb;

	if (r->spoiled)
		return;
	if (*len + n > TP_REUSE_TEXT_MAX ||
	    (nb = realloc(*buf, *len + n + 1)) == NULL) {
		r->spoiled = true;
		return;
	}
	memcpy(nb + *len, data, n);
	*len += n;
	nb[*len] = '\0';
	*buf = nb;
}

/* ehlo_finish - the EHLO reply is whole: its HELO answer, its CHUNKING. */
static void
ehlo_finish(struct tp_reuse *r)
{
	const char *p, *eol;
	size_t n;

	/* kept without the last CRLF: the filter's answer adds one */
	while (r->elen > 0 &&
	    (r->ehlo[r->elen - 1] == '\n' || r->ehlo[r->elen - 1] == '\r'))
		r->ehlo[--r->elen] = '\0';
	if (r->elen < 4) {
		r->spoiled = true;
		return;
	}
	/* "250-name text" -> "250 name text" */
	eol = strchr(r->ehlo, '\r');
	n = eol ? (size_t)(eol - r->ehlo) : r->elen;
	if ((r->helo = malloc(n + 1)) == NULL) {
		r->spoiled = true;
		return;
	}
	memcpy(r->helo, r->ehlo, n);
	r->helo[n] = '\0';
	r->helo[3] = ' ';
	for (p = r->ehlo; p != NULL; p = eol ? eol + 1 : NULL) {
		eol = strchr(p, '\n');
		n = eol ? (size_t)(eol - p) : strlen(p);
		if (n > 0 && p[n - 1] == '\r')
			n--;
		if (n >= 12 && strncasecmp(p + 4, "CHUNKING", 8) == 0 &&
		    (n == 12 || p[12] == ' '))
			r->chunking = true;
	}
	r->ehlo_done = true;
}

void
tp_reuse_keep(struct tp_reuse *r, int which, const char *data, size_t len)
{
	if (which == TP_FILTER_R_GREETING) {
		text_add(r, &r->greeting, &r->glen, data, len);
		return;
	}
	/* after HELO the server offers nothing: later clients' EHLO gets
	 * the one line, no extensions, and they use none */
	if ((which != TP_FILTER_R_EHLO && which != TP_FILTER_R_HELO) ||
	    r->ehlo_done)
		return;
	text_add(r, &r->ehlo, &r->elen, data, len);
	/* the reply's last line: "250 " at a line start, ending in LF */
	if (!r->spoiled && r->elen >= 2 && r->ehlo[r->elen - 1] == '\n') {
		const char *last = r->ehlo + r->elen - 1;

		while (last > r->ehlo && last[-1] != '\n')
			last--;
		if (strlen(last) >= 4 && last[3] == ' ')
			ehlo_finish(r);
	}
}

void
tp_reuse_greeting(struct tp_reuse *r, const char *line)
{
	free(r->greeting);
	r->greeting = NULL;
	r->glen = 0;
	text_add(r, &r->greeting, &r->glen, line, strlen(line));
	text_add(r, &r->greeting, &r->glen, "\r\n", 2);
}

bool
tp_reuse_ready(struct tp_reuse *r)
{
	return !r->spoiled && r->glen > 0 && r->ehlo_done;
}

/*
 * The pool.
 */

static void pool_arm(struct tp_connpool *cp);

static struct tp_route_stats *
pooled_stats(struct tp_pooled *e)
{
	return e->gen->routes[e->route].stats;
}

static void
pooled_on_closed(uv_handle_t *h)
{
	struct tp_pooled *e = h->data;
	struct side *s = e->side;

	TP_CHECK_MAGIC(e, TP_POOLED_MAGIC);
	tp_side_release(s);
	free(s);
	tp_reuse_free(e->r);
	tp_gen_unref(e->gen);
	e->magic = 0;
	free(e);
}

static void
pool_unlink(struct tp_connpool *cp, struct tp_pooled *e)
{
	if (e->prev)
		e->prev->next = e->next;
	else
		cp->head = e->next;
	if (e->next)
		e->next->prev = e->prev;
	e->next = e->prev = NULL;
	cp->n--;
	atomic_fetch_sub(&pooled_stats(e)->pooled, 1);
}

/*
 * pooled_quit - a polite end for a connection the server still keeps
 * open: QUIT (and close_notify), written at once if the socket takes it
 * (a few dozen bytes always fit an idle socket's buffer), so the server
 * logs a QUIT rather than a lost connection.
 */
static void
pooled_quit(struct tp_pooled *e)
{
	struct side *s = e->side;
	struct tp_chunk *k;
	uv_buf_t b;

	if (s->ssl != NULL) {
		if (tp_tls_write(s->ssl, "QUIT\r\n", 6) < 0)
			return;
		tp_tls_shutdown(s->ssl);
	} else if (tp_chunkq_append(&s->out, e->cp->chunks, "QUIT\r\n", 6) <
	    0) {
		return;
	}
	for (k = s->out.head; k != NULL; k = k->next) {
		b = uv_buf_init(k->data + k->start, k->end - k->start);
		if (b.len > 0 &&
		    uv_try_write((uv_stream_t *)&s->tcp, &b, 1) != (int)b.len)
			break;
	}
}

/*
 * pooled_close - an idle connection ends (why: for the debug log); polite:
 * the server is still there, say QUIT.
 */
static void
pooled_close(struct tp_pooled *e, const char *why, bool polite)
{
	struct tp_connpool *cp = e->cp;

	tp_log(TP_LOG_DEBUG, "%s: closing an idle connection (%s)",
	    e->gen->routes[e->route].cfg->name, why);
	tp_metrics_add(&pooled_stats(e)->pool_closed, 1);
	pool_unlink(cp, e);
	if (polite)
		pooled_quit(e);
	uv_close((uv_handle_t *)&e->side->tcp, pooled_on_closed);
}

/*
 * While pooled, the endpoint reports here: anything at all ends it.
 */

static struct tp_pooled *
pooled_of(struct side *s)
{
	struct tp_pooled *e = s->owner;

	TP_CHECK_MAGIC(e, TP_POOLED_MAGIC);
	return e;
}

static void
pooled_gone(struct side *s, const char *why)
{
	struct tp_pooled *e = pooled_of(s);
	struct tp_connpool *cp = e->cp;

	tp_side_discard_input(s);
	pooled_close(e, why, false);
	pool_arm(cp);
}

static void
pooled_on_input(struct side *s)
{
	pooled_gone(s, "the server spoke");
}

static void
pooled_on_eof(struct side *s)
{
	pooled_gone(s, "closed by the server");
}

static void
pooled_on_error(struct side *s, enum tp_side_op op, int err)
{
	(void)op;
	pooled_gone(s, uv_strerror(err));
}

static void
pooled_on_nothing(struct side *s)
{
	(void)s;
}

static bool
pooled_want_read(struct side *s)
{
	return s->in == NULL;
}

static const struct tp_side_ops pooled_ops = {
    .on_input = pooled_on_input,
    .on_eof = pooled_on_eof,
    .on_error = pooled_on_error,
    .on_drain = pooled_on_nothing,
    .on_shutdown = pooled_on_nothing,
    .want_read = pooled_want_read,
};

static void
pool_on_timer(uv_timer_t *t)
{
	struct tp_connpool *cp = t->data;
	uint64_t now = uv_now(cp->loop);
	struct tp_pooled *e, *next;

	for (e = cp->head; e != NULL; e = next) {
		next = e->next;
		if (e->expires <= now)
			pooled_close(e, "idle time over", true);
	}
	pool_arm(cp);
}

/* pool_arm - the timer for the earliest deadline, or stopped. */
static void
pool_arm(struct tp_connpool *cp)
{
	uint64_t first = UINT64_MAX, now = uv_now(cp->loop);
	struct tp_pooled *e;

	for (e = cp->head; e != NULL; e = e->next)
		if (e->expires < first)
			first = e->expires;
	if (first == UINT64_MAX) {
		uv_timer_stop(&cp->timer);
		return;
	}
	uv_timer_start(
	    &cp->timer, pool_on_timer, first > now ? first - now : 0, 0);
}

void
tp_connpool_init(
    struct tp_connpool *cp, uv_loop_t *loop, struct tp_pool *chunks)
{
	memset(cp, 0, sizeof(*cp));
	cp->loop = loop;
	cp->chunks = chunks;
	uv_timer_init(loop, &cp->timer);
	cp->timer.data = cp;
}

void
tp_connpool_shutdown(struct tp_connpool *cp)
{
	if (cp->closing)
		return;
	cp->closing = true;
	while (cp->head != NULL)
		pooled_close(cp->head, "shutdown", true);
	uv_close((uv_handle_t *)&cp->timer, NULL);
}

void
tp_connpool_drain(struct tp_connpool *cp, const struct tp_gen *gen)
{
	struct tp_pooled *e, *next;

	for (e = cp->head; e != NULL; e = next) {
		next = e->next;
		if (e->gen != gen)
			pooled_close(e, "reload", true);
	}
	if (!cp->closing)
		pool_arm(cp);
}

unsigned
tp_connpool_count(
    const struct tp_connpool *cp, const struct tp_gen *gen, size_t route)
{
	unsigned n = 0;

	for (const struct tp_pooled *e = cp->head; e != NULL; e = e->next)
		if (e->gen == gen && e->route == route)
			n++;
	return n;
}

int
tp_connpool_put(struct tp_connpool *cp, struct side *s, struct tp_reuse *r,
    struct tp_gen *gen, size_t route, uint64_t idle_ms, unsigned max)
{
	const struct tp_side_ops *prev_ops;
	struct tp_pooled *e, *last;
	void *prev_owner;

	if (cp->closing || s->closing || s->in != NULL || idle_ms == 0 ||
	    max == 0 || tp_connpool_count(cp, gen, route) >= max ||
	    (e = calloc(1, sizeof(*e))) == NULL)
		return -1;
	e->magic = TP_POOLED_MAGIC;
	e->cp = cp;
	e->side = s;
	e->r = r;
	e->gen = gen;
	tp_gen_ref(gen);
	e->route = route;
	e->expires = uv_now(cp->loop) + idle_ms;
	prev_ops = s->ops;
	prev_owner = s->owner;
	s->ops = &pooled_ops;
	s->owner = e;
	tp_side_update_read(s);
	if (!s->reading) {
		s->ops = prev_ops;
		s->owner = prev_owner;
		tp_gen_unref(gen);
		free(e);
		return -1;
	}
	s->peer = NULL;
	s->tcp.data = e;
	if (s->ssl != NULL)
		SSL_set_app_data(s->ssl, NULL);
	s->bio.arg = NULL;
	s->bio.on_session = NULL;
	/* appended: the list stays oldest first */
	for (last = cp->head; last != NULL && last->next != NULL;
	     last = last->next)
		;
	e->prev = last;
	if (last != NULL)
		last->next = e;
	else
		cp->head = e;
	cp->n++;
	atomic_fetch_add(&pooled_stats(e)->pooled, 1);
	pool_arm(cp);
	return 0;
}

struct side *
tp_connpool_take(struct tp_connpool *cp, const char *key, uint64_t max_age_ms,
    struct tp_reuse **r)
{
	uint64_t now = uv_now(cp->loop);
	struct tp_pooled *e, *prev;
	struct side *s;

	/* the newest first: it has the most idle time left */
	for (e = cp->head; e != NULL && e->next != NULL; e = e->next)
		;
	for (; e != NULL; e = prev) {
		prev = e->prev;
		if (strcmp(e->r->key, key) != 0)
			continue;
		if (now - e->r->born >= max_age_ms) {
			pooled_close(e, "reuse time over", true);
			continue;
		}
		pool_unlink(cp, e);
		s = e->side;
		if (s->reading)
			uv_read_stop((uv_stream_t *)&s->tcp);
		s->reading = false;
		s->ops = NULL;
		s->owner = NULL;
		*r = e->r;
		tp_gen_unref(e->gen);
		e->magic = 0;
		free(e);
		pool_arm(cp);
		return s;
	}
	pool_arm(cp);
	return NULL;
}
