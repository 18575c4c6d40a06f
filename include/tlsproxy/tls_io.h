/*
 * tls_io.h - one SSL per TLS endpoint over a custom BIO that reads
 * ciphertext from the endpoint's input chunk and appends ciphertext to its
 * output queue (no BIO_s_mem growth, one copy fewer).  The only module
 * that calls SSL_* I/O.  No libuv; runs on the session's worker thread.
 */
#ifndef TLSPROXY_TLS_IO_H
#define TLSPROXY_TLS_IO_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include <openssl/ssl.h>

struct tp_chunk;
struct tp_chunkq;
struct tp_pool;

/* A client session to keep for resumption; returns 1 if it kept it. */
typedef int (*tp_tls_session_cb)(void *arg, SSL_SESSION *sess);

/* Where the BIO finds its bytes: owned by the endpoint (side). */
struct tp_tls_bio {
	struct tp_chunk **in;  /* ciphertext received, not yet read */
	struct tp_chunkq *out; /* ciphertext to send */
	struct tp_pool *pool;
	bool oom;
	tp_tls_session_cb on_session; /* client session cache, or NULL */
	void *arg;
};

enum tp_tls_state {
	TP_TLS_WANT = 0, /* needs more input */
	TP_TLS_EOF = 1,  /* close_notify received */
	TP_TLS_ERROR = -1,
};

/* tp_tls_io_init - once on the main thread before any worker starts. */
void tp_tls_io_init(void);
/*
 * tp_tls_io_client_cache - make ctx hand new client sessions (TLS 1.3
 * tickets arrive after the handshake) to the endpoint's on_session.
 */
void tp_tls_io_client_cache(SSL_CTX *ctx);
/* tp_tls_new - SSL in the given role over b; sni may be NULL. */
SSL *tp_tls_new(
    SSL_CTX *ctx, struct tp_tls_bio *b, bool server, const char *sni);
/*
 * tp_tls_handshake - drive the handshake: 1 done, 0 wants input, -1
 * failed with a short reason in why ("wrong version number").
 */
int tp_tls_handshake(SSL *ssl, char *why, size_t len);
/*
 * tp_tls_read - up to len plaintext bytes: >0, or 0 with *state WANT or
 * EOF, or -1 on error (reason in why).
 */
ssize_t tp_tls_read(
    SSL *ssl, char *buf, size_t len, int *state, char *why, size_t whylen);
/* tp_tls_write - encrypt all of buf into the output queue; 0 or -1. */
int tp_tls_write(SSL *ssl, const char *buf, size_t len);
/* tp_tls_shutdown - queue a close_notify. */
void tp_tls_shutdown(SSL *ssl);
/* tp_tls_summary - "TLSv1.3 with cipher X (256/256 bits)". */
void tp_tls_summary(SSL *ssl, char *buf, size_t len);
/*
 * tp_tls_trust - Postfix's trust word: Anonymous (no peer certificate),
 * Untrusted (chain not trusted), Trusted (chain trusted, name unchecked),
 * Verified (matched).
 */
const char *tp_tls_trust(SSL *ssl, bool matched);

#endif
