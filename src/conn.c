/*
 * conn.c - the session, in data-path order: accept and admission ->
 * connect (with failover along the connect list) -> TLS handshake ->
 * relay both ways -> teardown.  A failure before the relay is answered
 * with a 421 (client mode: mail is deferred, never lost).
 *
 * Each session has two sides.  A side owns its socket, at most one input
 * chunk not yet consumed, an output queue of chunks and at most one
 * uv_write_t in flight; a TLS side also owns an SSL whose BIO works on
 * those same buffers (tls_io.c).  Back-pressure: a source stops reading
 * while its destination has TP_HIGH_WATER bytes queued and starts again
 * from the destination's write callback at TP_LOW_WATER, so a session
 * holds a bounded amount of memory whatever its peers do.
 *
 * Closing is asynchronous and idempotent: tp_conn_close() closes every
 * open handle; the session is freed in the last close callback (libuv
 * runs cancelled write/connect callbacks first).  Runs on one worker
 * thread; touches only that worker's loop.
 */
#include "tlsproxy/conn.h"

#include <arpa/inet.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/ssl.h>

#include "tlsproxy/buf.h"
#include "tlsproxy/common.h"
#include "tlsproxy/config.h"
#include "tlsproxy/gen.h"
#include "tlsproxy/log.h"
#include "tlsproxy/tls_io.h"
#include "tlsproxy/tls_policy.h"
#include "tlsproxy/worker.h"

#define TP_CONN_MAGIC 0x434f4e4eu
#define TP_HIGH_WATER (256 * 1024)
#define TP_LOW_WATER  (64 * 1024)
#define TP_LINGER_MS  10000 /* after a 421: wait this long for the QUIT */
#define TP_MAX_WBUFS  16

atomic_uint tp_conn_active_total;

enum conn_state {
	CS_CONNECT,   /* connecting to the destination */
	CS_HANDSHAKE, /* TLS handshake on the TLS side */
	CS_RELAY,     /* copying both ways */
	CS_LINGER,    /* sent a final reply or alert; waiting for EOF */
};

struct side {
	uv_tcp_t tcp;
	struct tp_conn *conn;
	struct side *peer;
	SSL *ssl;
	struct tp_tls_bio bio;
	struct tp_chunk *in; /* received, not yet consumed */
	struct tp_chunkq out; /* to send; head bytes may be in flight */
	size_t inflight;
	uv_write_t wreq;
	uv_shutdown_t sreq;
	bool open;     /* tcp initialised and not yet closed */
	bool reading;
	bool blocked;  /* reading stopped by the peer's high water */
	bool eof;      /* no more input (EOF or close_notify) */
	bool shut;     /* FIN wanted once the output drains */
	bool shut_sent; /* uv_shutdown issued */
	bool shut_done; /* FIN sent */
	bool is_down;
};

struct tp_conn {
	uint32_t magic;
	struct tp_worker *w;
	struct tp_gen *gen;
	const struct tp_route_rt *rt;
	const struct tp_cfg_route *r;
	struct tp_conn *next, *prev;
	struct side down, up;
	uv_timer_t timer;
	uv_connect_t creq;
	uv_getaddrinfo_t gai;
	enum conn_state state;
	int nopen;        /* handles not yet closed */
	bool gai_pending;
	bool closing;
	bool retry;       /* up is being closed to try the next address */
	bool counted;     /* counted in the route's and global active */
	char sid[12];
	char peer_addr[64];  /* the local client, "ip:port" */
	/* destination in progress */
	size_t cidx;         /* index in the connect list */
	struct addrinfo *ai, *ai_cur;
	char up_host[TP_HOST_MAX];
	char up_ip[64];
	unsigned up_port;
	int last_err;        /* last connect error, or TP_ETLS */
	char last_why[200];
	uint64_t started, last_active;
	unsigned long long bytes_in, bytes_out; /* from / to the client */
};

static void conn_start_relay(struct tp_conn *c);
static void conn_connect_next(struct tp_conn *c);
static void conn_fail(struct tp_conn *c, const char *reply);
static void side_flush(struct side *s);
static void side_update_read(struct side *s);
static void conn_pump(struct side *src);
static void conn_up_failed(struct tp_conn *c, int err, const char *why);

/*
 * Client session cache: per worker, one session per route, for the
 * destination it was made with (session_cache = yes).  Emptied when the
 * worker moves to a new generation.
 */
struct sess_slot {
	SSL_SESSION *sess;
	char key[TP_HOST_MAX + 80];
};

struct tp_sesscache {
	unsigned long serial;
	size_t n;
	struct sess_slot *slots;
};

static void
sesscache_flush(struct tp_sesscache *sc)
{
	for (size_t i = 0; i < sc->n; i++)
		if (sc->slots[i].sess != NULL)
			SSL_SESSION_free(sc->slots[i].sess);
	free(sc->slots);
	sc->slots = NULL;
	sc->n = 0;
}

void
tp_conn_worker_done(struct tp_worker *w)
{
	if (w->sesscache != NULL) {
		sesscache_flush(w->sesscache);
		free(w->sesscache);
		w->sesscache = NULL;
	}
}

/* sess_slot - this session's slot, or NULL (old generation, no memory). */
static struct sess_slot *
sess_slot(struct tp_conn *c)
{
	struct tp_worker *w = c->w;
	struct tp_sesscache *sc = w->sesscache;

	if (sc == NULL && (sc = w->sesscache = calloc(1, sizeof(*sc))) == NULL)
		return NULL;
	if (w->gen->serial != sc->serial) {
		sesscache_flush(sc);
		sc->slots = calloc(w->gen->nroutes, sizeof(*sc->slots));
		if (sc->slots == NULL)
			return NULL;
		sc->n = w->gen->nroutes;
		sc->serial = w->gen->serial;
	}
	if (c->gen->serial != sc->serial || c->rt->index >= sc->n)
		return NULL;
	return &sc->slots[c->rt->index];
}

static void
sess_key(struct tp_conn *c, char *key, size_t len)
{
	snprintf(key, len, "%s[%s]:%u", c->up_host, c->up_ip, c->up_port);
}

static int
conn_on_new_session(void *arg, SSL_SESSION *sess)
{
	struct tp_conn *c = arg;
	struct sess_slot *slot = sess_slot(c);

	if (slot == NULL)
		return 0;
	if (slot->sess != NULL)
		SSL_SESSION_free(slot->sess);
	slot->sess = sess;
	sess_key(c, slot->key, sizeof(slot->key));
	return 1;
}

/* conn_log - one log line with the route/sid: prefix. */
__attribute__((format(printf, 3, 4))) static void
conn_log(struct tp_conn *c, enum tp_log_level level, const char *fmt, ...)
{
	char msg[1536];
	va_list ap;

	if (!tp_log_enabled(level))
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	tp_log(level, "%s/%s: %s", c->r->name, c->sid, msg);
}

struct tp_conn *
tp_conn_next(struct tp_conn *c)
{
	return c->next;
}

static struct tp_conn *
conn_of(uv_handle_t *h)
{
	struct tp_conn *c = h->data;

	TP_CHECK_MAGIC(c, TP_CONN_MAGIC);
	return c;
}

static uint64_t
conn_now(struct tp_conn *c)
{
	return uv_now(&c->w->loop);
}

/*
 * Teardown.
 */

static void
side_release(struct tp_conn *c, struct side *s)
{
	if (s->ssl != NULL) {
		SSL_free(s->ssl);
		s->ssl = NULL;
	}
	if (s->in != NULL) {
		tp_chunk_put(&c->w->pool, s->in);
		s->in = NULL;
	}
	tp_chunkq_clear(&s->out, &c->w->pool);
	s->inflight = 0;
}

static void
conn_free(struct tp_conn *c)
{
	struct tp_worker *w = c->w;

	side_release(c, &c->down);
	side_release(c, &c->up);
	if (c->ai != NULL)
		uv_freeaddrinfo(c->ai);
	if (c->counted) {
		atomic_fetch_sub(&c->rt->stats->active, 1);
		atomic_fetch_sub(&tp_conn_active_total, 1);
	}
	if (c->prev)
		c->prev->next = c->next;
	else
		w->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	tp_gen_unref(c->gen);
	c->magic = 0;
	free(c);
	tp_worker_session_done(w);
}

static void
conn_maybe_free(struct tp_conn *c)
{
	if (c->closing && c->nopen == 0 && !c->gai_pending)
		conn_free(c);
}

static void
conn_on_handle_closed(uv_handle_t *h)
{
	struct tp_conn *c = conn_of(h);

	c->nopen--;
	if ((uv_handle_t *)&c->up.tcp == h) {
		c->up.open = false;
		side_release(c, &c->up);
		c->up.reading = c->up.eof = c->up.shut = false;
		c->up.shut_sent = c->up.shut_done = c->up.blocked = false;
		if (c->retry && !c->closing) {
			c->retry = false;
			conn_connect_next(c);
			return;
		}
	}
	conn_maybe_free(c);
}

static void
conn_close_handle(struct tp_conn *c, uv_handle_t *h)
{
	if (!uv_is_closing(h))
		uv_close(h, conn_on_handle_closed);
	(void)c;
}

void
tp_conn_close(struct tp_conn *c, const char *reason)
{
	char in[16], out[16];

	if (c->closing)
		return;
	c->closing = true;
	tp_log_bytes(in, sizeof(in), c->bytes_in);
	tp_log_bytes(out, sizeof(out), c->bytes_out);
	conn_log(c, TP_LOG_INFO, "disconnect in=%s out=%s %.2fs%s%s", in, out,
	    (conn_now(c) - c->started) / 1000.0, reason ? " " : "",
	    reason ? reason : "");
	if (c->gai_pending)
		uv_cancel((uv_req_t *)&c->gai);
	conn_close_handle(c, (uv_handle_t *)&c->timer);
	conn_close_handle(c, (uv_handle_t *)&c->down.tcp);
	if (c->up.open)
		conn_close_handle(c, (uv_handle_t *)&c->up.tcp);
}

/*
 * Side I/O: reads into pool chunks, one write in flight, half-close.
 */

static void
side_on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
	struct tp_conn *c = conn_of(h);
	struct tp_chunk *k = tp_chunk_get(&c->w->pool);

	(void)hint;
	*buf = k ? uv_buf_init(k->data, TP_CHUNK_SIZE) : uv_buf_init(NULL, 0);
}

static struct side *
side_of(struct tp_conn *c, uv_stream_t *stream)
{
	return (uv_stream_t *)&c->down.tcp == stream ? &c->down : &c->up;
}

static void side_on_read(uv_stream_t *stream, ssize_t n, const uv_buf_t *buf);

static void
side_update_read(struct side *s)
{
	struct tp_conn *c = s->conn;
	bool want;

	if (!s->open || c->closing)
		return;
	switch (c->state) {
	case CS_CONNECT:
		want = false;
		break;
	case CS_HANDSHAKE:
		want = s->ssl != NULL && s->in == NULL;
		break;
	case CS_LINGER:
		want = s->is_down && !s->eof;
		break;
	default:
		want = !s->eof && !s->blocked && s->in == NULL;
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

	if (status == UV_ECANCELED || c->closing)
		return;
	s->shut_done = true;
	if (c->state == CS_LINGER)
		return;
	/* Both directions finished: the session is over. */
	if (c->down.eof && c->up.eof && c->down.shut_done && c->up.shut_done)
		tp_conn_close(c, NULL);
}

static void side_on_write(uv_write_t *req, int status);

static void
side_flush(struct side *s)
{
	struct tp_conn *c = s->conn;
	uv_buf_t bufs[TP_MAX_WBUFS];
	struct tp_chunk *k;
	unsigned n = 0;
	size_t total = 0;
	int rc;

	if (c->closing || !s->open || s->inflight > 0)
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
	rc = uv_write(&s->wreq, (uv_stream_t *)&s->tcp, bufs, n,
	    side_on_write);
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

	if (status == UV_ECANCELED || c->closing)
		return;
	if (status < 0) {
		conn_log(c, TP_LOG_INFO, "write to %s: %s",
		    s->is_down ? "client" : "server", uv_strerror(status));
		tp_conn_close(c, NULL);
		return;
	}
	tp_chunkq_consume(&s->out, &c->w->pool, s->inflight);
	s->inflight = 0;
	side_flush(s);
	if (c->closing)
		return;
	if (src->blocked && s->out.bytes <= TP_LOW_WATER) {
		src->blocked = false;
		conn_pump(src);
	}
}

/* side_send - queue plaintext for s, encrypting when s is a TLS side. */
static int
side_send(struct side *s, const char *data, size_t len)
{
	if (s->ssl != NULL)
		return tp_tls_write(s->ssl, data, len);
	return tp_chunkq_append(&s->out, &s->conn->w->pool, data, len);
}

/* side_end - no more data for s: close_notify (TLS), then FIN. */
static void
side_end(struct side *s)
{
	if (s->ssl != NULL)
		tp_tls_shutdown(s->ssl);
	s->shut = true;
	side_flush(s);
}

/*
 * Relay.
 */

static void
conn_count(struct tp_conn *c, struct side *src, size_t n)
{
	if (src->is_down)
		c->bytes_in += n;
	else
		c->bytes_out += n;
}

static void
conn_on_eof(struct tp_conn *c, struct side *s)
{
	s->eof = true;
	side_update_read(s);
	if (c->state == CS_LINGER) {
		tp_conn_close(c, NULL);
		return;
	}
	if (c->state != CS_RELAY) {
		if (!s->is_down) {
			conn_up_failed(c, TP_ETLS, "connection closed by "
			    "server");
			return;
		}
		tp_conn_close(c, "client went away");
		return;
	}
	side_end(s->peer);
	if (c->down.eof && c->up.eof && c->down.shut_done && c->up.shut_done)
		tp_conn_close(c, NULL);
}

/*
 * conn_pump - move what src has received to its peer: decrypt or encrypt
 * as needed, stop at the peer's high water, flush both sides.
 */
static void
conn_pump(struct side *src)
{
	struct tp_conn *c = src->conn;
	struct side *dst = src->peer;
	char why[160];
	int state;

	while (!c->closing && !src->blocked) {
		if (dst->out.bytes >= TP_HIGH_WATER) {
			src->blocked = true;
			break;
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
				conn_count(c, src, (size_t)n);
				continue;
			}
			if (t->start == t->end && q->head == t) {
				/* an empty chunk alone: give it back now */
				q->head = q->tail = NULL;
				tp_chunk_put(&c->w->pool, t);
			}
			side_flush(src); /* alerts, key updates */
			if (state == TP_TLS_WANT)
				break;
			if (state == TP_TLS_EOF) {
				conn_on_eof(c, src);
				break;
			}
			conn_log(c, TP_LOG_INFO, "TLS read from %s: %s",
			    src->is_down ? "client" : "server", why);
			tp_conn_close(c, NULL);
			return;
		}
		if (src->in == NULL)
			break;
		conn_count(c, src, src->in->end - src->in->start);
		if (dst->ssl != NULL) {
			int rc = tp_tls_write(dst->ssl,
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
	side_flush(dst);
	side_update_read(src);
}

static void
side_on_read(uv_stream_t *stream, ssize_t n, const uv_buf_t *buf)
{
	struct tp_conn *c = conn_of((uv_handle_t *)stream);
	struct side *s = side_of(c, stream);
	struct tp_chunk *k = buf->base ? tp_chunk_from_data(buf->base) : NULL;

	if (n <= 0 || c->closing) {
		if (k != NULL)
			tp_chunk_put(&c->w->pool, k);
		if (n == 0 || c->closing)
			return;
		if (n == UV_EOF) {
			conn_on_eof(c, s);
			return;
		}
		if (c->state == CS_RELAY || c->state == CS_LINGER)
			conn_log(c, TP_LOG_INFO, "read from %s: %s",
			    s->is_down ? "client" : "server",
			    uv_strerror((int)n));
		if (c->state == CS_RELAY || c->state == CS_LINGER ||
		    s->is_down) {
			tp_conn_close(c, NULL);
			return;
		}
		conn_up_failed(c, TP_ETLS, uv_strerror((int)n));
		return;
	}
	c->last_active = conn_now(c);
	k->start = 0;
	k->end = (uint32_t)n;
	assert(s->in == NULL);
	s->in = k;
	switch (c->state) {
	case CS_RELAY:
		conn_pump(s);
		break;
	case CS_HANDSHAKE:
		conn_start_relay(c); /* drives the handshake */
		break;
	default: /* CS_LINGER: discard what the client says */
		tp_chunk_put(&c->w->pool, s->in);
		s->in = NULL;
		break;
	}
}

/*
 * Timers: connect, handshake, idle (checked lazily against last_active),
 * linger.
 */

static void
conn_on_timer(uv_timer_t *t)
{
	struct tp_conn *c = conn_of((uv_handle_t *)t);
	uint64_t idle, now = conn_now(c);

	switch (c->state) {
	case CS_CONNECT:
		conn_up_failed(c, UV_ETIMEDOUT, "Connection timed out");
		break;
	case CS_HANDSHAKE:
		if (c->r->mode == TP_MODE_CLIENT) {
			conn_up_failed(c, TP_ETLS, "handshake timed out");
		} else {
			conn_log(c, TP_LOG_INFO, "SSL_accept error from %s: "
			    "handshake timed out", c->peer_addr);
			tp_conn_close(c, NULL);
		}
		break;
	case CS_RELAY:
		idle = c->r->v[TP_K_IDLE_TIMEOUT].n;
		if (now - c->last_active >= idle) {
			tp_conn_close(c, "idle timeout");
			return;
		}
		uv_timer_start(t, conn_on_timer,
		    idle - (now - c->last_active), 0);
		break;
	case CS_LINGER:
		tp_conn_close(c, NULL);
		break;
	}
}

static void
conn_timer(struct tp_conn *c, uint64_t ms)
{
	uv_timer_start(&c->timer, conn_on_timer, ms, 0);
}

/*
 * Failure: a final reply to the client, then linger until it hangs up.
 */

/*
 * conn_fail - the session cannot go on.  reply is the 421 line to send,
 * or NULL to derive it from the last connect/TLS error.  Client mode
 * answers the local MTA in plaintext; server mode answers inside TLS
 * when the handshake is done, else just closes.
 */
static void
conn_fail(struct tp_conn *c, const char *reply)
{
	char line[510]; /* with CRLF within the 512 octets of RFC 5321 */
	bool client = c->r->mode == TP_MODE_CLIENT;
	bool tls_up = c->down.ssl != NULL && SSL_is_init_finished(c->down.ssl);

	if (c->closing || c->state == CS_LINGER)
		return;
	if (c->state == CS_RELAY) {
		tp_conn_close(c, NULL);
		return;
	}
	if (reply == NULL && client) {
		if (c->last_err == TP_ETLS)
			snprintf(line, sizeof(line), "421 4.7.5 Cannot start "
			    "TLS: handshake failure");
		else if (c->last_err == UV_ETIMEDOUT)
			snprintf(line, sizeof(line), "421 4.4.2 Connection "
			    "timed out: %s[%s]:%u", c->up_host, c->up_ip,
			    c->up_port);
		else if (c->last_err == UV_ECONNREFUSED)
			snprintf(line, sizeof(line), "421 4.4.1 Connection "
			    "refused by %s[%s]:%u", c->up_host, c->up_ip,
			    c->up_port);
		else if (c->last_err == UV_EAI_NONAME ||
		    c->last_err == UV_EAI_AGAIN || c->last_err == UV_EAI_FAIL)
			snprintf(line, sizeof(line), "421 4.4.3 Host or "
			    "domain name not found. Name service error for "
			    "name=%s: %s", c->up_host, c->last_why);
		else
			snprintf(line, sizeof(line), "421 4.4.1 Connection "
			    "failed: %s[%s]:%u: %s", c->up_host, c->up_ip,
			    c->up_port, c->last_why);
		reply = line;
	} else if (reply == NULL && tls_up) {
		reply = "421 4.3.0 Server unavailable, try again later";
	}
	if (c->up.open)
		conn_close_handle(c, (uv_handle_t *)&c->up.tcp);
	c->retry = false;
	c->state = CS_LINGER;
	if (c->down.eof || (reply == NULL && c->down.out.bytes == 0)) {
		tp_conn_close(c, NULL);
		return;
	}
	if (reply != NULL && (client || tls_up)) {
		conn_log(c, TP_LOG_INFO, "reject: %s", reply);
		if (side_send(&c->down, reply, strlen(reply)) < 0 ||
		    side_send(&c->down, "\r\n", 2) < 0) {
			tp_conn_close(c, NULL);
			return;
		}
	}
	side_end(&c->down);
	conn_timer(c, TP_LINGER_MS);
	side_update_read(&c->down);
}

/*
 * conn_up_failed - this destination address failed (connect error,
 * timeout, TLS handshake): log it, close the socket and, from its close
 * callback, try the next address (failover).
 */
static void
conn_up_failed(struct tp_conn *c, int err, const char *why)
{
	if (err == TP_ETLS)
		conn_log(c, TP_LOG_INFO, "%s[%s]:%u: Cannot start TLS: "
		    "handshake failure: %s", c->up_host, c->up_ip, c->up_port,
		    why);
	else
		conn_log(c, TP_LOG_INFO, "connect to %s[%s]:%u: %s",
		    c->up_host, c->up_ip, c->up_port, why);
	c->last_err = err;
	snprintf(c->last_why, sizeof(c->last_why), "%s", why);
	c->state = CS_CONNECT;
	uv_timer_stop(&c->timer);
	if (!c->up.open) {
		/* Timed out while resolving: its callback goes on. */
		if (c->gai_pending)
			uv_cancel((uv_req_t *)&c->gai);
		else
			conn_connect_next(c);
		return;
	}
	c->retry = true;
	conn_close_handle(c, (uv_handle_t *)&c->up.tcp);
}

/*
 * Handshake and relay start.
 */

static void
conn_log_established(struct tp_conn *c, struct side *s)
{
	char summary[200];
	const char *how = SSL_session_reused(s->ssl) ? "reused" : "established";

	if (c->gen->cfg->g[TP_K_TLS_LOGLEVEL].n < 1)
		return;
	tp_tls_summary(s->ssl, summary, sizeof(summary));
	if (s->is_down)
		conn_log(c, TP_LOG_INFO, "%s TLS connection %s from "
		    "unknown[%.*s]: %s", tp_tls_trust(s->ssl, false), how,
		    (int)(strrchr(c->peer_addr, ':') - c->peer_addr),
		    c->peer_addr, summary);
	else
		conn_log(c, TP_LOG_INFO, "%s TLS connection %s to "
		    "%s[%s]:%u: %s", tp_tls_trust(s->ssl, false), how,
		    c->up_host, c->up_ip, c->up_port, summary);
}

static void
conn_tls_info(const SSL *ssl, int where, int ret)
{
	struct tp_conn *c = SSL_get_app_data(ssl);

	(void)ret;
	if (where & SSL_CB_LOOP)
		conn_log(c, TP_LOG_INFO, "%s:%s",
		    SSL_is_server((SSL *)ssl) ? "SSL_accept" : "SSL_connect",
		    SSL_state_string_long(ssl));
}

/* side_tls_begin - attach an SSL to s for the route's role. */
static int
side_tls_begin(struct tp_conn *c, struct side *s)
{
	s->bio.in = &s->in;
	s->bio.out = &s->out;
	s->bio.pool = &c->w->pool;
	s->bio.oom = false;
	s->ssl = tp_tls_new(c->rt->ctx, &s->bio, s->is_down,
	    s->is_down ? NULL : c->rt->sni);
	if (s->ssl == NULL)
		return -1;
	if (!s->is_down && c->r->v[TP_K_SESSION_CACHE].n) {
		struct sess_slot *slot = sess_slot(c);
		char key[sizeof(slot->key)];

		s->bio.on_session = conn_on_new_session;
		s->bio.arg = c;
		sess_key(c, key, sizeof(key));
		if (slot != NULL && slot->sess != NULL &&
		    strcmp(slot->key, key) == 0)
			SSL_set_session(s->ssl, slot->sess);
	}
	SSL_set_app_data(s->ssl, c);
	if (c->gen->cfg->g[TP_K_TLS_LOGLEVEL].n >= 2) {
		SSL_set_info_callback(s->ssl, conn_tls_info);
		if (s->is_down)
			conn_log(c, TP_LOG_INFO, "setting up TLS connection "
			    "from %s", c->peer_addr);
		else
			conn_log(c, TP_LOG_INFO, "setting up TLS connection "
			    "to %s[%s]:%u", c->up_host, c->up_ip, c->up_port);
	}
	c->state = CS_HANDSHAKE;
	conn_timer(c, c->r->v[TP_K_HANDSHAKE_TIMEOUT].n);
	return 0;
}

/*
 * conn_start_relay - advance the session as far as it can go: finish the
 * TLS handshake when one is under way, then connect the backend (server
 * mode) or start relaying.
 */
static void
conn_start_relay(struct tp_conn *c)
{
	struct side *s = c->r->mode == TP_MODE_SERVER ? &c->down : &c->up;
	char why[160];
	int rc;

	if (c->state == CS_HANDSHAKE) {
		rc = tp_tls_handshake(s->ssl, why, sizeof(why));
		side_flush(s);
		if (c->closing)
			return;
		if (rc == 0) {
			side_update_read(s);
			return;
		}
		if (rc < 0) {
			snprintf(c->last_why, sizeof(c->last_why), "%s", why);
			c->last_err = TP_ETLS;
			if (s->is_down) {
				conn_log(c, TP_LOG_INFO, "SSL_accept error "
				    "from %s: %s", c->peer_addr, why);
				conn_fail(c, NULL);
			} else {
				conn_up_failed(c, TP_ETLS, why);
			}
			return;
		}
		conn_log_established(c, s);
		if (s->is_down) {
			/* Server mode: now the backend. */
			c->state = CS_CONNECT;
			side_update_read(&c->down);
			conn_connect_next(c);
			return;
		}
	}
	c->state = CS_RELAY;
	c->last_active = conn_now(c);
	conn_timer(c, c->r->v[TP_K_IDLE_TIMEOUT].n);
	/* Bytes that came with the end of the handshake. */
	if (c->down.in != NULL || c->down.ssl != NULL)
		conn_pump(&c->down);
	if (!c->closing && (c->up.in != NULL || c->up.ssl != NULL))
		conn_pump(&c->up);
	if (c->closing)
		return;
	side_update_read(&c->down);
	side_update_read(&c->up);
}

/*
 * Destination: resolve and connect, next address on failure.
 */

static void
conn_on_connect(uv_connect_t *req, int status)
{
	struct tp_conn *c = tp_container_of(req, struct tp_conn, creq);

	if (status == UV_ECANCELED || c->closing)
		return;
	if (status < 0) {
		conn_up_failed(c, status, uv_strerror(status));
		return;
	}
	uv_timer_stop(&c->timer);
	uv_tcp_nodelay(&c->up.tcp, 1);
	if (c->r->mode == TP_MODE_CLIENT && c->rt->ctx != NULL) {
		if (side_tls_begin(c, &c->up) < 0) {
			tp_conn_close(c, "out of memory");
			return;
		}
		c->state = CS_HANDSHAKE;
	}
	conn_start_relay(c);
}

static void
conn_try_addr(struct tp_conn *c, const struct sockaddr *sa)
{
	int rc;

	if (sa->sa_family == AF_INET6)
		uv_ip6_name((const struct sockaddr_in6 *)sa, c->up_ip,
		    sizeof(c->up_ip));
	else
		uv_ip4_name((const struct sockaddr_in *)sa, c->up_ip,
		    sizeof(c->up_ip));
	uv_tcp_init(&c->w->loop, &c->up.tcp);
	c->up.tcp.data = c;
	c->up.open = true;
	c->nopen++;
	c->state = CS_CONNECT;
	conn_timer(c, c->r->v[TP_K_CONNECT_TIMEOUT].n);
	rc = uv_tcp_connect(&c->creq, &c->up.tcp, sa, conn_on_connect);
	if (rc < 0)
		conn_up_failed(c, rc, uv_strerror(rc));
}

static void
conn_on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *ai)
{
	struct tp_conn *c = tp_container_of(req, struct tp_conn, gai);

	c->gai_pending = false;
	if (c->closing) {
		uv_freeaddrinfo(ai);
		conn_maybe_free(c);
		return;
	}
	if (status < 0 || ai == NULL) {
		if (status != UV_EAI_CANCELED) {
			conn_log(c, TP_LOG_INFO, "resolve %s: %s", c->up_host,
			    uv_strerror(status));
			c->last_err = status;
			snprintf(c->last_why, sizeof(c->last_why), "%s",
			    uv_strerror(status));
		}
		snprintf(c->up_ip, sizeof(c->up_ip), "unknown");
		uv_freeaddrinfo(ai);
		conn_connect_next(c);
		return;
	}
	c->ai = c->ai_cur = ai;
	conn_try_addr(c, ai->ai_addr);
}

/*
 * conn_connect_next - try the next resolved address, else the next entry
 * of the connect list; after the last one, fail with the last error.
 */
static void
conn_connect_next(struct tp_conn *c)
{
	const struct tp_hostport *hp;
	struct sockaddr_storage ss;
	struct addrinfo hints;
	char port[8];
	int rc;

	if (c->ai_cur != NULL && (c->ai_cur = c->ai_cur->ai_next) != NULL) {
		conn_try_addr(c, c->ai_cur->ai_addr);
		return;
	}
	if (c->ai != NULL) {
		uv_freeaddrinfo(c->ai);
		c->ai = NULL;
	}
	if (c->cidx >= c->r->nconnect) {
		conn_fail(c, NULL);
		return;
	}
	hp = &c->r->connect[c->cidx++];
	snprintf(c->up_host, sizeof(c->up_host), "%s", hp->host);
	c->up_port = hp->port;
	c->state = CS_CONNECT;
	if (hp->is_ip) {
		memset(&ss, 0, sizeof(ss));
		if (hp->is_v6)
			uv_ip6_addr(hp->host, hp->port,
			    (struct sockaddr_in6 *)&ss);
		else
			uv_ip4_addr(hp->host, hp->port,
			    (struct sockaddr_in *)&ss);
		conn_try_addr(c, (struct sockaddr *)&ss);
		return;
	}
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	snprintf(port, sizeof(port), "%u", hp->port);
	conn_timer(c, c->r->v[TP_K_CONNECT_TIMEOUT].n);
	rc = uv_getaddrinfo(&c->w->loop, &c->gai, conn_on_resolved, hp->host,
	    port, &hints);
	if (rc < 0) {
		c->last_err = rc;
		snprintf(c->last_why, sizeof(c->last_why), "%s",
		    uv_strerror(rc));
		conn_connect_next(c);
		return;
	}
	c->gai_pending = true;
}

/*
 * Accept and admission.
 */

static void
conn_format_peer(struct tp_conn *c)
{
	struct sockaddr_storage ss;
	int len = sizeof(ss);
	char ip[64] = "unknown";
	unsigned port = 0;

	if (uv_tcp_getpeername(&c->down.tcp, (struct sockaddr *)&ss, &len) ==
	    0) {
		if (ss.ss_family == AF_INET6) {
			uv_ip6_name((struct sockaddr_in6 *)&ss, ip, sizeof(ip));
			port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
		} else {
			uv_ip4_name((struct sockaddr_in *)&ss, ip, sizeof(ip));
			port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
		}
	}
	snprintf(c->peer_addr, sizeof(c->peer_addr), "%s:%u", ip, port);
}

void
tp_conn_accept(struct tp_worker *w, uv_stream_t *server, size_t route)
{
	struct tp_conn *c = calloc(1, sizeof(*c));
	unsigned total, active;
	bool over;

	if (c == NULL) {
		tp_log(TP_LOG_WARNING, "accept: out of memory");
		return;
	}
	c->magic = TP_CONN_MAGIC;
	c->w = w;
	c->gen = w->gen;
	tp_gen_ref(c->gen);
	c->rt = &c->gen->routes[route];
	c->r = c->rt->cfg;
	c->down.conn = c->up.conn = c;
	c->down.peer = &c->up;
	c->up.peer = &c->down;
	c->down.is_down = true;
	c->started = c->last_active = uv_now(&w->loop);
	snprintf(c->sid, sizeof(c->sid), "%02x%06x", (unsigned)w->index & 0xff,
	    (unsigned)(++w->next_sid & 0xffffff));
	uv_tcp_init(&w->loop, &c->down.tcp);
	uv_timer_init(&w->loop, &c->timer);
	c->down.tcp.data = c->timer.data = c;
	c->down.open = true;
	c->nopen = 2;
	c->next = w->conns;
	if (w->conns)
		w->conns->prev = c;
	w->conns = c;
	w->nconns++;
	if (uv_accept(server, (uv_stream_t *)&c->down.tcp) < 0) {
		c->closing = true; /* nothing to log: never connected */
		conn_close_handle(c, (uv_handle_t *)&c->timer);
		conn_close_handle(c, (uv_handle_t *)&c->down.tcp);
		return;
	}
	uv_tcp_nodelay(&c->down.tcp, 1);
	conn_format_peer(c);
	total = atomic_fetch_add(&tp_conn_active_total, 1) + 1;
	active = atomic_fetch_add(&c->rt->stats->active, 1) + 1;
	atomic_fetch_add(&c->rt->stats->total, 1);
	c->counted = true;
	conn_log(c, TP_LOG_INFO, "connect from %s", c->peer_addr);
	over = total > c->gen->cfg->g[TP_K_MAX_CONNECTIONS_G].n ||
	    active > c->r->max_connections;
	if (over) {
		conn_log(c, TP_LOG_WARNING, "too many connections (%u of %u "
		    "on this route, %u in all)", active, c->r->max_connections,
		    total);
		c->state = CS_CONNECT;
		/* Implicit-TLS servers cannot say anything before TLS. */
		if (c->r->mode == TP_MODE_SERVER && c->r->tls ==
		    TP_TLS_IMPLICIT && c->rt->ctx != NULL)
			tp_conn_close(c, "over the connection limit");
		else
			conn_fail(c, "421 4.3.2 All server ports are busy");
		return;
	}
	if (c->r->unimplemented) {
		c->state = CS_CONNECT;
		conn_fail(c, c->r->mode == TP_MODE_CLIENT ?
		    "421 4.7.0 TLS policy of this route is not available "
		    "yet, try again later" :
		    "421 4.3.0 STARTTLS is not available yet");
		return;
	}
	if (c->r->mode == TP_MODE_SERVER && c->rt->ctx != NULL) {
		if (side_tls_begin(c, &c->down) < 0) {
			tp_conn_close(c, "out of memory");
			return;
		}
		side_update_read(&c->down);
		return;
	}
	c->state = CS_CONNECT;
	conn_connect_next(c);
}
