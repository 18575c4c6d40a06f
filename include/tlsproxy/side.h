/*
 * side.h - one endpoint: a TCP socket, its input chunk, a bounded output
 * queue with at most one uv_write_t in flight, optional TLS (an SSL over
 * tls_io's chunk BIO, with small writes staged so that what is written
 * together leaves in one record), and half-close (close_notify, then
 * FIN).  An endpoint knows nothing of sessions: it reports to its owner
 * through the callback table given to tp_side_init, and reads only while
 * the owner's want_read says so.  Owners: a session (conn.c) for its two
 * endpoints, the connection pool (connpool.c) for idle upstreams, which
 * reads with callbacks of its own.  Worker thread only.
 */
#ifndef TLSPROXY_SIDE_H
#define TLSPROXY_SIDE_H

#include <stdbool.h>
#include <stddef.h>

#include <openssl/ssl.h>
#include <uv.h>

#include "tlsproxy/buf.h"
#include "tlsproxy/tls_io.h"

struct side;

/* What failed, for on_error. */
enum tp_side_op {
	TP_SIDE_READ,        /* a read (err from libuv) */
	TP_SIDE_WRITE,       /* a write, in its callback */
	TP_SIDE_WRITE_START, /* a write that could not even start */
	TP_SIDE_TLS_WRITE,   /* encrypting (err is TP_ETLS) */
	TP_SIDE_SHUTDOWN,    /* a FIN that could not be requested */
};

/* tp_side_op_name - "read from", "write to", ... for a log line. */
const char *tp_side_op_name(enum tp_side_op op);

/* What an endpoint tells its owner. */
struct tp_side_ops {
	/* s->in holds bytes just read */
	void (*on_input)(struct side *s);
	/* the peer closed its direction (FIN) */
	void (*on_eof)(struct side *s);
	/* a socket error, or a failed write or shutdown request */
	void (*on_error)(struct side *s, enum tp_side_op op, int err);
	/* a write completed (the backlog may be below the low water) */
	void (*on_drain)(struct side *s);
	/* our FIN went out */
	void (*on_shutdown)(struct side *s);
	/* should s read now? */
	bool (*want_read)(struct side *s);
	/* does the owner wait for on_drain (NULL: never)?  When it does
	 * not, a write the socket takes at once completes right there,
	 * with no callback (and no epoll change in libuv) */
	bool (*want_drain)(struct side *s);
};

struct side {
	uv_tcp_t tcp;
	const struct tp_side_ops *ops;
	void *owner;
	struct tp_pool *chunks; /* the worker's chunk pool */
	struct side *peer;      /* the owner's other endpoint, if any */
	SSL *ssl;
	struct tp_tls_bio bio;
	struct tp_chunk *in;    /* received, not yet consumed */
	struct tp_chunk *plain; /* decrypted, held back by the SMTP filter */
	struct tp_chunkq out;   /* to send; head bytes may be in flight */
	struct tp_chunkq stage; /* TLS: plaintext to encrypt at the flush */
	size_t inflight;
	uv_write_t wreq;
	uv_shutdown_t sreq;
	bool open;    /* tcp initialised and not yet closed */
	bool closing; /* the owner is ending: no more I/O nor callbacks */
	bool reading;
	bool blocked;   /* reading stopped by the peer's high water */
	bool held;      /* the SMTP filter waits for replies */
	bool eof;       /* no more input (EOF or close_notify) */
	bool shut;      /* FIN wanted once the output drains */
	bool shut_sent; /* uv_shutdown issued */
	bool shut_done; /* FIN sent */
	bool is_down;   /* the accepted (client) side */
};

/* tp_side_init - an endpoint of owner, not yet open (tcp not set up). */
void tp_side_init(struct side *s, const struct tp_side_ops *ops, void *owner,
    struct tp_pool *chunks);
/* tp_side_update_read - start or stop reading, as want_read says. */
void tp_side_update_read(struct side *s);
/* tp_side_flush - encrypt what is staged, write what is queued, FIN. */
void tp_side_flush(struct side *s);
/*
 * tp_side_plaintext - the next plaintext bytes of s into s->plain (a TLS
 * side decrypts): 1 some, 0 none for now, or TP_SIDE_EOF (close_notify),
 * TP_SIDE_TLSERR (why says what), TP_SIDE_OOM.
 */
#define TP_SIDE_EOF    (-1)
#define TP_SIDE_TLSERR (-2)
#define TP_SIDE_OOM    (-3)
int tp_side_plaintext(struct side *s, char *why, size_t len);
/* tp_side_send - queue bytes; a TLS side encrypts them at the flush. */
int tp_side_send(struct side *s, const char *data, size_t len);
/* tp_side_backlog - bytes queued toward s and not yet written. */
size_t tp_side_backlog(const struct side *s);
/* tp_side_end - what is queued goes out, then close_notify and FIN. */
void tp_side_end(struct side *s);
/* tp_side_release - free the SSL and every buffer (the handle closed). */
void tp_side_release(struct side *s);
/* tp_side_discard_input - drop what s received and has not consumed. */
void tp_side_discard_input(struct side *s);
/* tp_side_abandon - forget what s was to send; its FIN counts as sent. */
void tp_side_abandon(struct side *s);

#endif
