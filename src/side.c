/*
 * side.c - one endpoint (side.h): reads into pool chunks and hands them to
 * the owner, at most one uv_write_t in flight over the output queue,
 * half-close (close_notify on a TLS side, then FIN).  Small writes to a
 * TLS side are staged and encrypted together at the flush, so what the
 * relay passes on from one read leaves in one record (spec 4.6 Closing).
 * Everything that happens goes to the owner's callbacks; nothing here
 * knows what a session is.  Worker thread only.
 */
#include "tlsproxy/side.h"

#include <string.h>

#include "tlsproxy/common.h"

#define TP_MAX_WBUFS    16
/* A write this large to a TLS side is encrypted at once, not staged. */
#define TP_STAGE_DIRECT 4096

void
tp_side_init(struct side *s, const struct tp_side_ops *ops, void *owner,
    struct tp_pool *chunks)
{
	memset(s, 0, sizeof(*s));
	s->ops = ops;
	s->owner = owner;
	s->chunks = chunks;
}

void
tp_side_discard_input(struct side *s)
{
	if (s->in != NULL) {
		tp_chunk_put(s->chunks, s->in);
		s->in = NULL;
	}
	if (s->plain != NULL) {
		tp_chunk_put(s->chunks, s->plain);
		s->plain = NULL;
	}
}

void
tp_side_release(struct side *s)
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
	tp_side_discard_input(s);
	tp_chunkq_clear(&s->out, s->chunks);
	tp_chunkq_clear(&s->stage, s->chunks);
	s->inflight = 0;
}

void
tp_side_abandon(struct side *s)
{
	tp_chunkq_clear(&s->out, s->chunks);
	tp_chunkq_clear(&s->stage, s->chunks);
	s->inflight = 0;
	s->shut = s->shut_sent = s->shut_done = true;
}

const char *
tp_side_op_name(enum tp_side_op op)
{
	switch (op) {
	case TP_SIDE_READ:
		return "read from";
	case TP_SIDE_WRITE:
	case TP_SIDE_WRITE_START:
		return "write to";
	case TP_SIDE_TLS_WRITE:
		return "TLS write to";
	case TP_SIDE_SHUTDOWN:
		return "shutdown of";
	}
	return "?";
}

static struct side *
side_of(uv_handle_t *h)
{
	return tp_container_of(h, struct side, tcp);
}

static void
side_on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
	struct tp_chunk *k = tp_chunk_get(side_of(h)->chunks);

	(void)hint;
	*buf = k ? uv_buf_init(k->data, TP_CHUNK_SIZE) : uv_buf_init(NULL, 0);
}

static void
side_on_read(uv_stream_t *stream, ssize_t n, const uv_buf_t *buf)
{
	struct side *s = side_of((uv_handle_t *)stream);
	struct tp_chunk *k = buf->base ? tp_chunk_from_data(buf->base) : NULL;

	if (n <= 0 || s->closing) {
		if (k != NULL)
			tp_chunk_put(s->chunks, k);
		if (n == 0 || s->closing)
			return;
		if (n == UV_EOF)
			s->ops->on_eof(s);
		else
			s->ops->on_error(s, TP_SIDE_READ, (int)n);
		return;
	}
	k->start = 0;
	k->end = (uint32_t)n;
	assert(s->in == NULL);
	s->in = k;
	s->ops->on_input(s);
}

void
tp_side_update_read(struct side *s)
{
	bool want;

	if (!s->open || s->closing)
		return;
	want = s->ops->want_read(s);
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

	/* A request that failed before its handle was closed reports after
	 * the close began: that failure is being dealt with already. */
	if (status == UV_ECANCELED || s->closing ||
	    uv_is_closing((uv_handle_t *)&s->tcp))
		return;
	s->shut_done = true;
	s->ops->on_shutdown(s);
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
	tp_chunkq_clear(&s->stage, s->chunks);
	return rc;
}

/* side_bufs - the queued output as iovecs; their total length. */
static size_t
side_bufs(struct side *s, uv_buf_t *bufs, unsigned *n)
{
	struct tp_chunk *k;
	size_t total = 0;

	*n = 0;
	for (k = s->out.head; k != NULL && *n < TP_MAX_WBUFS; k = k->next) {
		if (k->end == k->start)
			continue;
		bufs[(*n)++] =
		    uv_buf_init(k->data + k->start, k->end - k->start);
		total += k->end - k->start;
	}
	return total;
}

void
tp_side_flush(struct side *s)
{
	uv_buf_t bufs[TP_MAX_WBUFS];
	unsigned n;
	size_t total;
	int rc;

	if (s->closing || !s->open)
		return;
	if (s->stage.bytes > 0 && side_commit(s) < 0) {
		s->ops->on_error(s, TP_SIDE_TLS_WRITE, TP_ETLS);
		return;
	}
	if (s->inflight > 0)
		return;
	for (;;) {
		if (s->out.bytes == 0) {
			if (s->shut && !s->shut_sent) {
				s->shut_sent = true;
				if ((rc = uv_shutdown(&s->sreq,
					 (uv_stream_t *)&s->tcp,
					 side_on_shutdown)) < 0)
					s->ops->on_error(
					    s, TP_SIDE_SHUTDOWN, rc);
			}
			return;
		}
		total = side_bufs(s, bufs, &n);
		if (s->ops->want_drain != NULL && s->ops->want_drain(s))
			break;
		/* What the socket takes now is done with; errors and the
		 * rest go through uv_write, which reports them. */
		rc = uv_try_write((uv_stream_t *)&s->tcp, bufs, n);
		if (rc <= 0)
			break;
		tp_chunkq_consume(&s->out, s->chunks, (size_t)rc);
		if ((size_t)rc < total) {
			total = side_bufs(s, bufs, &n);
			break;
		}
	}
	s->inflight = total;
	rc = uv_write(&s->wreq, (uv_stream_t *)&s->tcp, bufs, n, side_on_write);
	if (rc < 0) {
		s->inflight = 0;
		s->ops->on_error(s, TP_SIDE_WRITE_START, rc);
	}
}

static void
side_on_write(uv_write_t *req, int status)
{
	struct side *s = tp_container_of(req, struct side, wreq);

	if (status == UV_ECANCELED || s->closing ||
	    uv_is_closing((uv_handle_t *)&s->tcp))
		return; /* see side_on_shutdown */
	if (status < 0) {
		s->ops->on_error(s, TP_SIDE_WRITE, status);
		return;
	}
	tp_chunkq_consume(&s->out, s->chunks, s->inflight);
	s->inflight = 0;
	tp_side_flush(s);
	if (!s->closing)
		s->ops->on_drain(s);
}

int
tp_side_plaintext(struct side *s, char *why, size_t len)
{
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
	if ((k = tp_chunk_get(s->chunks)) == NULL)
		return TP_SIDE_OOM;
	n = tp_tls_read(s->ssl, k->data, TP_CHUNK_SIZE, &state, why, len);
	tp_side_flush(s); /* alerts, key updates */
	if (n > 0) {
		k->end = (uint32_t)n;
		s->plain = k;
		return 1;
	}
	tp_chunk_put(s->chunks, k);
	if (state == TP_TLS_WANT)
		return 0;
	return state == TP_TLS_EOF ? TP_SIDE_EOF : TP_SIDE_TLSERR;
}

int
tp_side_send(struct side *s, const char *data, size_t len)
{
	if (s->ssl == NULL)
		return tp_chunkq_append(&s->out, s->chunks, data, len);
	/* Bulk (a message body) is encrypted straight away; commands and
	 * replies wait for the flush and share a record. */
	if (len >= TP_STAGE_DIRECT && s->stage.bytes == 0)
		return tp_tls_write(s->ssl, data, len);
	return tp_chunkq_append(&s->stage, s->chunks, data, len);
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
		s->ops->on_error(s, TP_SIDE_TLS_WRITE, TP_ETLS);
		return;
	}
	if (s->ssl != NULL)
		tp_tls_shutdown(s->ssl);
	s->shut = true;
	tp_side_flush(s);
}
