/*
 * relay.c - copy both ways between the two sides of a session.
 *
 * Plain to plain moves whole chunks (no copy); plain to TLS encrypts the
 * chunk into the TLS side's output queue; TLS to plain decrypts straight
 * into the destination queue's tail.  A source stops at the destination's
 * high water and is restarted from the destination's write callback.
 * On STARTTLS routes the bytes go through the SMTP filter (smtp_filter.c),
 * which may hold client input back until replies arrive.  EOF on one side
 * becomes close_notify/FIN on the other (half-close).  Worker thread only.
 */
#include "tlsproxy/session.h"

#include <stdlib.h>
#include <string.h>

#include "tlsproxy/common.h"
#include "tlsproxy/config.h"
#include "tlsproxy/conn.h"
#include "tlsproxy/smtp_filter.h"
#include "tlsproxy/worker.h"

static void
relay_count(struct tp_conn *c, struct side *src, size_t n)
{
	if (src->is_down)
		c->bytes_in += n;
	else
		c->bytes_out += n;
}

/*
 * relay_tls_error - a TLS record or alert failed.  In client mode, an
 * alert from the upstream before it sent a byte is the end of its
 * handshake (TLS 1.3 servers refuse a client certificate after the
 * client has finished): implicit TLS tries the next address and ends in a
 * 421 like any handshake failure; after STARTTLS the local client, which
 * has its greeting, gets the 421 as the reply to its command.
 */
static void
relay_tls_error(struct tp_conn *c, struct side *src, const char *why)
{
	tp_conn_log(c, TP_LOG_INFO, "TLS read from %s: %s",
	    src->is_down ? "client" : "server", why);
	if (src->is_down || c->r->mode != TP_MODE_CLIENT || c->bytes_out > 0) {
		tp_conn_close(c, NULL);
		return;
	}
	c->state = CS_HANDSHAKE;
	if (c->r->tls == TP_TLS_IMPLICIT) {
		tp_upstream_failed(c, TP_ETLS, why);
		return;
	}
	c->state = CS_CONNECT;
	tp_conn_fail(c, "421 4.7.5 Cannot start TLS: handshake failure");
}

static int
emit_up(void *arg, const char *data, size_t len)
{
	struct tp_conn *c = arg;

	return tp_side_send(&c->up, data, len);
}

static int
emit_down(void *arg, const char *data, size_t len)
{
	struct tp_conn *c = arg;

	return tp_side_send(&c->down, data, len);
}

/*
 * relay_plaintext - the next plaintext bytes from src into src->plain:
 * 1 some, 0 none for now, -1 the session ended.
 */
static int
relay_plaintext(struct tp_conn *c, struct side *src)
{
	struct tp_chunk *k;
	char why[160];
	ssize_t n;
	int state;

	if (src->plain != NULL)
		return 1;
	if (src->ssl == NULL) {
		src->plain = src->in;
		src->in = NULL;
		return src->plain != NULL;
	}
	if ((k = tp_chunk_get(&c->w->pool)) == NULL) {
		tp_conn_close(c, "out of memory");
		return -1;
	}
	n = tp_tls_read(
	    src->ssl, k->data, TP_CHUNK_SIZE, &state, why, sizeof(why));
	tp_side_flush(src); /* alerts, key updates */
	if (n > 0) {
		k->end = (uint32_t)n;
		src->plain = k;
		return 1;
	}
	tp_chunk_put(&c->w->pool, k);
	if (state == TP_TLS_WANT)
		return 0;
	if (state == TP_TLS_EOF) {
		tp_conn_on_eof(c, src);
		return -1;
	}
	relay_tls_error(c, src, why);
	return -1;
}

/*
 * relay_filtered - one step through the SMTP filter: 1 go on, 0 stop
 * (no input, or held), -1 the session ended.
 */
static int
relay_filtered(struct tp_conn *c, struct side *src, bool *resume_down)
{
	struct tp_chunk *k;
	size_t len, used;
	bool resume = false;
	int rc = relay_plaintext(c, src);

	if (rc <= 0)
		return rc;
	k = src->plain;
	len = k->end - k->start;
	if (src->is_down) {
		used = tp_filter_client(
		    c->filter, k->data + k->start, len, emit_up, emit_down, c);
		if (used == (size_t)-1) {
			tp_conn_close(c, "out of memory");
			return -1;
		}
		tp_side_flush(&c->down); /* our own STARTTLS answer */
	} else {
		if (tp_filter_server(c->filter, k->data + k->start, len,
			emit_down, c, &resume) < 0) {
			tp_conn_close(c, "out of memory");
			return -1;
		}
		used = len;
		if (resume && c->down.held) {
			c->down.held = false;
			*resume_down = true;
		}
	}
	relay_count(c, src, used);
	k->start += (uint32_t)used;
	if (k->start < k->end) {
		src->held = true;
		return 0;
	}
	tp_chunk_put(&c->w->pool, k);
	src->plain = NULL;
	return 1;
}

void
tp_relay_pump(struct side *src)
{
	struct tp_conn *c = src->conn;
	struct side *dst = src->peer;
	bool resume_down = false;
	char why[160];
	int state, rc;

	while (!c->closing && !src->blocked && !src->held) {
		if (dst->out.bytes >= TP_HIGH_WATER) {
			src->blocked = true;
			break;
		}
		if (c->filter != NULL) {
			if ((rc = relay_filtered(c, src, &resume_down)) < 0)
				return;
			if (rc == 0)
				break;
			continue;
		}
		if (src->ssl != NULL) {
			struct tp_chunkq *q = &dst->out;
			struct tp_chunk *t = q->tail;
			ssize_t n;

			if (t == NULL || t->end == TP_CHUNK_SIZE) {
				if ((t = tp_chunk_get(&c->w->pool)) == NULL) {
					tp_conn_close(c, "out of memory");
					return;
				}
				tp_chunkq_push(q, t);
			}
			n = tp_tls_read(src->ssl, t->data + t->end,
			    TP_CHUNK_SIZE - t->end, &state, why, sizeof(why));
			if (n > 0) {
				t->end += (uint32_t)n;
				q->bytes += (size_t)n;
				relay_count(c, src, (size_t)n);
				continue;
			}
			if (t->start == t->end && q->head == t) {
				/* an empty chunk alone: give it back now */
				q->head = q->tail = NULL;
				tp_chunk_put(&c->w->pool, t);
			}
			tp_side_flush(src); /* alerts, key updates */
			if (state == TP_TLS_WANT)
				break;
			if (state == TP_TLS_EOF) {
				tp_conn_on_eof(c, src);
				return;
			}
			relay_tls_error(c, src, why);
			return;
		}
		if (src->in == NULL)
			break;
		relay_count(c, src, src->in->end - src->in->start);
		if (dst->ssl != NULL) {
			rc = tp_tls_write(dst->ssl,
			    src->in->data + src->in->start,
			    src->in->end - src->in->start);
			tp_chunk_put(&c->w->pool, src->in);
			src->in = NULL;
			if (rc < 0) {
				tp_conn_close(c, "TLS write failed");
				return;
			}
		} else {
			tp_chunkq_push(&dst->out, src->in);
			src->in = NULL;
		}
	}
	if (c->closing)
		return;
	tp_side_flush(dst);
	tp_side_update_read(src);
	if (resume_down)
		tp_relay_pump(&c->down);
}

void
tp_relay_start(struct tp_conn *c, const char *starttls_reply)
{
	if (starttls_reply != NULL && c->filter == NULL) {
		c->filter = malloc(sizeof(*c->filter));
		if (c->filter == NULL) {
			tp_conn_close(c, "out of memory");
			return;
		}
		tp_filter_init(c->filter, starttls_reply);
	}
	tp_dialogue_free(c);
	c->state = CS_RELAY;
	c->last_active = uv_now(&c->w->loop);
	tp_conn_timer(c, c->r->v[TP_K_IDLE_TIMEOUT].n);
	/* Bytes that came with the end of the handshake or dialogue. */
	tp_relay_pump(&c->down);
	if (!c->closing)
		tp_relay_pump(&c->up);
	if (c->closing)
		return;
	tp_side_update_read(&c->down);
	tp_side_update_read(&c->up);
}
