/*
 * side.c - one endpoint of a session: reads into pool chunks, at most one
 * uv_write_t in flight over the output queue, half-close (close_notify on
 * a TLS side, then FIN), and which states read from which side.  Reads are
 * dispatched to the session's current stage.  Small writes to a TLS side
 * are staged and encrypted together at the flush, so what the relay passes
 * on from one read leaves in one record (spec 4.6 Closing).  Worker
 * thread only.
 */
#include "tlsproxy/session.h"

#include <string.h>

#include "tlsproxy/common.h"
#include "tlsproxy/conn.h"
#include "tlsproxy/smtp_filter.h"
#include "tlsproxy/worker.h"

#define TP_MAX_WBUFS    16
/* A write this large to a TLS side is encrypted at once, not staged. */
#define TP_STAGE_DIRECT 4096

static struct tp_conn *
conn_of(uv_handle_t *h)
{
	struct tp_conn *c = h->data;

	TP_CHECK_MAGIC(c, TP_CONN_MAGIC);
	return c;
}

void
tp_side_release(struct tp_conn *c, struct side *s)
{
	if (s->ssl != NULL) {
		/* SMTP frames its own end, so a peer that resets instead of
		 * sending close_notify is no attack; without this OpenSSL
		 * would mark the session not resumable, and the client cache
		 * (sesscache.c) holds that very object. */
		if (SSL_is_init_finished(s->ssl))
			SSL_set_shutdown(s->ssl, SSL_SENT_SHUTDOWN);
		SSL_free(s->ssl);
		s->ssl = NULL;
	}
	tp_side_discard_input(c, s);
	tp_chunkq_clear(&s->out, &c->w->pool);
	tp_chunkq_clear(&s->stage, &c->w->pool);
	s->inflight = 0;
}

/* side_quiet - after the peer closed, its reset or broken pipe is news
 * to no one; nor is a client's reset after its server said goodbye (a
 * client that closes after 221 without reading our close_notify). */
static bool
side_quiet(struct tp_conn *c, struct side *s, int err)
{
	if (err != UV_ECONNRESET && err != UV_EPIPE)
		return false;
	return s->eof ||
	    (s->is_down && c->filter != NULL &&
		((tp_filter_bye(c->filter) && !tp_filter_waiting(c->filter)) ||
		    c->filter->quit));
}

void
tp_side_discard_input(struct tp_conn *c, struct side *s)
{
	if (s->in != NULL) {
		tp_chunk_put(&c->w->pool, s->in);
		s->in = NULL;
	}
	if (s->plain != NULL) {
		tp_chunk_put(&c->w->pool, s->plain);
		s->plain = NULL;
	}
}

/*
 * side_failed - a socket error (what: "read from", "write to").  The
 * client gone ends the session; the destination gone is, by stage, a lost
 * connection (a 421 to the client, spec 4.6), a failed dialogue or a
 * failed handshake (the next address).
 */
static void
side_failed(struct tp_conn *c, struct side *s, const char *what, int err)
{
	if (c->state == CS_RELAY || c->state == CS_LINGER)
		tp_conn_log(c,
		    side_quiet(c, s, err) ? TP_LOG_DEBUG : TP_LOG_INFO,
		    "%s %s: %s", what, s->is_down ? "client" : "server",
		    uv_strerror(err));
	if (c->state == CS_GW && !s->is_down) {
		if (!side_quiet(c, s, err) && !s->eof)
			tp_gateway_up_lost(c, false, uv_strerror(err));
		else
			tp_conn_close_handle(c, (uv_handle_t *)&s->tcp);
	} else if (!s->is_down && s->eof && c->state == CS_RELAY) {
		/* It went first: what we still had for it is moot, and the
		 * client may still be reading the last replies. */
		tp_chunkq_clear(&s->out, &c->w->pool);
		s->inflight = 0;
		s->shut = s->shut_sent = s->shut_done = true;
		tp_relay_settle(c);
	} else if (s->is_down && c->state == CS_RELAY && c->filter->quit &&
	    tp_filter_reuse(c->filter) == 0) {
		/* A client that said QUIT need not read the 221 (Postfix's
		 * smtp_skip_quit_response): the RSET in its place is still
		 * answered, and the connection kept (spec 4.7). */
		tp_side_discard_input(c, s);
		tp_chunkq_clear(&s->out, &c->w->pool);
		tp_chunkq_clear(&s->stage, &c->w->pool);
		s->inflight = 0;
		s->eof = s->shut = s->shut_sent = s->shut_done = true;
		s->open = false;
		tp_conn_close_handle(c, (uv_handle_t *)&s->tcp);
	} else if (s->is_down || c->state == CS_LINGER || s->eof)
		tp_conn_close(c, NULL);
	else if (c->state == CS_RELAY)
		tp_relay_lost(c, false, uv_strerror(err));
	else if (c->state == CS_SMTP_UP)
		tp_dialogue_up_lost(c, false); /* not a TLS problem */
	else
		tp_upstream_failed(c, TP_ETLS, uv_strerror(err));
}

static void
side_on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
	struct tp_conn *c = conn_of(h);
	struct tp_chunk *k = tp_chunk_get(&c->w->pool);

	(void)hint;
	*buf = k ? uv_buf_init(k->data, TP_CHUNK_SIZE) : uv_buf_init(NULL, 0);
}

static void
side_on_read(uv_stream_t *stream, ssize_t n, const uv_buf_t *buf)
{
	struct tp_conn *c = conn_of((uv_handle_t *)stream);
	struct side *s =
	    (uv_stream_t *)&c->down.tcp == stream ? &c->down : c->up;
	struct tp_chunk *k = buf->base ? tp_chunk_from_data(buf->base) : NULL;

	if (n <= 0 || c->closing) {
		if (k != NULL)
			tp_chunk_put(&c->w->pool, k);
		if (n == 0 || c->closing)
			return;
		if (n == UV_EOF) {
			tp_conn_on_eof(c, s);
			return;
		}
		side_failed(c, s, "read from", (int)n);
		return;
	}
	c->last_active = uv_now(&c->w->loop);
	k->start = 0;
	k->end = (uint32_t)n;
	assert(s->in == NULL);
	s->in = k;
	switch (c->state) {
	case CS_RELAY:
		tp_relay_pump(s);
		break;
	case CS_GW:
		tp_gateway_input(c, s);
		break;
	case CS_HANDSHAKE:
		tp_conn_advance(c);
		break;
	case CS_PROXY_IN:
		tp_dialogue_proxy_input(c);
		break;
	case CS_SMTP_DOWN:
		tp_dialogue_down_input(c);
		break;
	case CS_SMTP_UP:
		tp_dialogue_up_input(c);
		break;
	case CS_LINGER:
		tp_dialogue_linger_input(c);
		break;
	default:
		tp_side_discard_input(c, s);
		break;
	}
}

void
tp_side_update_read(struct side *s)
{
	struct tp_conn *c = s->conn;
	bool want, idle = s->in == NULL && s->plain == NULL && !s->eof;

	if (!s->open || c->closing)
		return;
	switch (c->state) {
	case CS_HANDSHAKE:
		want = s->ssl != NULL && s->in == NULL;
		break;
	case CS_PROXY_IN:
	case CS_SMTP_DOWN:
		want = s->is_down && idle;
		break;
	case CS_SMTP_UP:
		want = !s->is_down && idle;
		break;
	case CS_LINGER:
		want = s->is_down && idle;
		break;
	case CS_RELAY:
		want = idle && !s->blocked && !s->held;
		break;
	case CS_GW:
		want = idle && !s->blocked;
		break;
	default:
		want = false;
		break;
	}
	if (want && !s->reading) {
		if (uv_read_start((uv_stream_t *)&s->tcp, side_on_alloc,
			side_on_read) == 0)
			s->reading = true;
	} else if (!want && s->reading) {
		uv_read_stop((uv_stream_t *)&s->tcp);
		s->reading = false;
	}
}

static void
side_on_shutdown(uv_shutdown_t *req, int status)
{
	struct side *s = tp_container_of(req, struct side, sreq);
	struct tp_conn *c = s->conn;

	/* A request that failed before its handle was closed reports after
	 * the close began: that failure is being dealt with already. */
	if (status == UV_ECANCELED || c->closing ||
	    uv_is_closing((uv_handle_t *)&s->tcp))
		return;
	s->shut_done = true;
	if (c->state == CS_GW) {
		tp_gateway_shutdown(c, s);
		return;
	}
	/* Both directions finished (or our last word to a client that has
	 * finished too): the session is over. */
	if (c->state == CS_LINGER ? s->is_down && s->eof
				  : c->down.eof && c->up->eof &&
		    c->down.shut_done && c->up->shut_done)
		tp_conn_close(c, NULL);
}

static void side_on_write(uv_write_t *req, int status);

/* side_commit - encrypt the staged plaintext, a chunk per SSL_write. */
static int
side_commit(struct side *s)
{
	struct tp_chunk *k;
	int rc = 0;

	for (k = s->stage.head; k != NULL && rc == 0; k = k->next)
		if (k->end > k->start)
			rc = tp_tls_write(
			    s->ssl, k->data + k->start, k->end - k->start);
	tp_chunkq_clear(&s->stage, &s->conn->w->pool);
	return rc;
}

void
tp_side_flush(struct side *s)
{
	struct tp_conn *c = s->conn;
	uv_buf_t bufs[TP_MAX_WBUFS];
	struct tp_chunk *k;
	unsigned n = 0;
	size_t total = 0;
	int rc;

	if (c->closing || !s->open)
		return;
	if (s->stage.bytes > 0 && side_commit(s) < 0) {
		tp_conn_close(c, "TLS write failed");
		return;
	}
	if (s->inflight > 0)
		return;
	if (s->out.bytes == 0) {
		if (s->shut && !s->shut_sent) {
			s->shut_sent = true;
			if (uv_shutdown(&s->sreq, (uv_stream_t *)&s->tcp,
				side_on_shutdown) < 0)
				tp_conn_close(c, NULL);
		}
		return;
	}
	for (k = s->out.head; k != NULL && n < TP_MAX_WBUFS; k = k->next) {
		if (k->end == k->start)
			continue;
		bufs[n++] = uv_buf_init(k->data + k->start, k->end - k->start);
		total += k->end - k->start;
	}
	s->inflight = total;
	rc = uv_write(&s->wreq, (uv_stream_t *)&s->tcp, bufs, n, side_on_write);
	if (rc < 0) {
		s->inflight = 0;
		tp_conn_close(c, uv_strerror(rc));
	}
}

static void
side_on_write(uv_write_t *req, int status)
{
	struct side *s = tp_container_of(req, struct side, wreq);
	struct tp_conn *c = s->conn;
	struct side *src = s->peer;

	if (status == UV_ECANCELED || c->closing ||
	    uv_is_closing((uv_handle_t *)&s->tcp))
		return; /* see side_on_shutdown */
	if (status < 0) {
		side_failed(c, s, "write to", status);
		return;
	}
	tp_chunkq_consume(&s->out, &c->w->pool, s->inflight);
	s->inflight = 0;
	tp_side_flush(s);
	if (c->closing)
		return;
	/* STARTTLS: the handshake begins once our 220 has left (RFC 3207). */
	if (c->state == CS_STARTTLS_WAIT && s->is_down && s->out.bytes == 0) {
		tp_conn_advance(c);
		return;
	}
	if (src->blocked && tp_side_backlog(s) <= TP_LOW_WATER) {
		src->blocked = false;
		if (c->state == CS_GW)
			tp_gateway_resume(c);
		else
			tp_relay_pump(src);
	}
}

int
tp_side_plaintext(struct side *s, char *why, size_t len)
{
	struct tp_conn *c = s->conn;
	struct tp_chunk *k;
	ssize_t n;
	int state;

	if (s->plain != NULL)
		return 1;
	if (s->ssl == NULL) {
		s->plain = s->in;
		s->in = NULL;
		return s->plain != NULL;
	}
	if ((k = tp_chunk_get(&c->w->pool)) == NULL)
		return TP_SIDE_OOM;
	n = tp_tls_read(s->ssl, k->data, TP_CHUNK_SIZE, &state, why, len);
	tp_side_flush(s); /* alerts, key updates */
	if (n > 0) {
		k->end = (uint32_t)n;
		s->plain = k;
		return 1;
	}
	tp_chunk_put(&c->w->pool, k);
	if (state == TP_TLS_WANT)
		return 0;
	return state == TP_TLS_EOF ? TP_SIDE_EOF : TP_SIDE_TLSERR;
}

int
tp_side_send(struct side *s, const char *data, size_t len)
{
	struct tp_pool *pool = &s->conn->w->pool;

	if (s->ssl == NULL)
		return tp_chunkq_append(&s->out, pool, data, len);
	/* Bulk (a message body) is encrypted straight away; commands and
	 * replies wait for the flush and share a record. */
	if (len >= TP_STAGE_DIRECT && s->stage.bytes == 0)
		return tp_tls_write(s->ssl, data, len);
	return tp_chunkq_append(&s->stage, pool, data, len);
}

size_t
tp_side_backlog(const struct side *s)
{
	return s->out.bytes + s->stage.bytes;
}

void
tp_side_end(struct side *s)
{
	if (s->stage.bytes > 0 && side_commit(s) < 0) {
		tp_conn_close(s->conn, "TLS write failed");
		return;
	}
	if (s->ssl != NULL)
		tp_tls_shutdown(s->ssl);
	s->shut = true;
	tp_side_flush(s);
}
