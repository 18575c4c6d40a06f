/*
 * tls_io.c - SSL over the endpoint's own bounded buffers.
 *
 * The BIO reads from the endpoint's current input chunk and returns the
 * chunk to the pool once it is consumed; it appends output to the
 * endpoint's output queue, which the event layer writes to the socket
 * after every call here (handshake records and alerts appear as side
 * effects of reads too).  FLUSH answers 1; retry flags are explicit.
 * An empty error queue before each SSL call (err_clear), SSL_get_error()
 * right after.
 */
#include "tlsproxy/tls_io.h"

#include <stdio.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/x509.h>

#include "tlsproxy/buf.h"

static BIO_METHOD *bio_method;

static int
bio_on_write(BIO *bio, const char *data, int len)
{
	struct tp_tls_bio *b = BIO_get_data(bio);

	BIO_clear_retry_flags(bio);
	if (tp_chunkq_append(b->out, b->pool, data, (size_t)len) < 0) {
		b->oom = true;
		return -1;
	}
	return len;
}

static int
bio_on_read(BIO *bio, char *data, int len)
{
	struct tp_tls_bio *b = BIO_get_data(bio);
	struct tp_chunk *c = *b->in;
	size_t n;

	BIO_clear_retry_flags(bio);
	if (c == NULL) {
		BIO_set_retry_read(bio);
		return -1;
	}
	n = c->end - c->start;
	if (n > (size_t)len)
		n = (size_t)len;
	memcpy(data, c->data + c->start, n);
	c->start += (uint32_t)n;
	if (c->start == c->end) {
		tp_chunk_put(b->pool, c);
		*b->in = NULL;
	}
	return (int)n;
}

static long
bio_on_ctrl(BIO *bio, int cmd, long num, void *ptr)
{
	struct tp_tls_bio *b = BIO_get_data(bio);

	(void)num;
	(void)ptr;
	switch (cmd) {
	case BIO_CTRL_FLUSH:
		return 1;
	case BIO_CTRL_PENDING:
		return *b->in ? (long)((*b->in)->end - (*b->in)->start) : 0;
	case BIO_CTRL_WPENDING:
		return 0;
	default:
		return 0;
	}
}

static int
bio_on_create(BIO *bio)
{
	BIO_set_init(bio, 1);
	return 1;
}

static BIO_METHOD *
bio_get_method(void)
{
	/* Created by tp_tls_io_init() on the main thread before workers. */
	if (bio_method == NULL) {
		bio_method =
		    BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK,
			"tlsproxy side");
		BIO_meth_set_write(bio_method, bio_on_write);
		BIO_meth_set_read(bio_method, bio_on_read);
		BIO_meth_set_ctrl(bio_method, bio_on_ctrl);
		BIO_meth_set_create(bio_method, bio_on_create);
	}
	return bio_method;
}

static int
tls_on_new_session(SSL *ssl, SSL_SESSION *sess)
{
	struct tp_tls_bio *b = BIO_get_data(SSL_get_rbio(ssl));

	if (b == NULL || b->on_session == NULL)
		return 0;
	return b->on_session(b->arg, sess);
}

void
tp_tls_io_client_cache(SSL_CTX *ctx)
{
	SSL_CTX_set_session_cache_mode(
	    ctx, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
	SSL_CTX_sess_set_new_cb(ctx, tls_on_new_session);
}

void
tp_tls_io_init(void)
{
	bio_get_method();
}

SSL *
tp_tls_new(SSL_CTX *ctx, struct tp_tls_bio *b, bool server, const char *sni)
{
	SSL *ssl;
	BIO *bio;

	ERR_clear_error();
	if ((ssl = SSL_new(ctx)) == NULL)
		return NULL;
	if ((bio = BIO_new(bio_get_method())) == NULL) {
		SSL_free(ssl);
		return NULL;
	}
	BIO_set_data(bio, b);
	SSL_set_bio(ssl, bio, bio);
	if (server) {
		SSL_set_accept_state(ssl);
	} else {
		SSL_set_connect_state(ssl);
		if (sni != NULL)
			SSL_set_tlsext_host_name(ssl, sni);
	}
	return ssl;
}

/*
 * err_clear - an empty error queue before an SSL call.  Every failure
 * here clears what it read, so the queue is almost always empty already;
 * ERR_clear_error() itself costs 2 % of a relay's CPU in OpenSSL 3.0.
 */
static void
err_clear(void)
{
	if (ERR_peek_error() != 0)
		ERR_clear_error();
}

/* error_reason - a short reason from the OpenSSL error queue. */
static void
error_reason(int err, char *why, size_t len)
{
	unsigned long e = ERR_peek_last_error();
	const char *r;

	if (e != 0 && (r = ERR_reason_error_string(e)) != NULL)
		snprintf(why, len, "%s", r);
	else if (err == SSL_ERROR_SYSCALL || err == SSL_ERROR_ZERO_RETURN)
		snprintf(why, len, "connection closed by peer");
	else
		snprintf(why, len, "SSL error %d", err);
	ERR_clear_error();
}

int
tp_tls_handshake(SSL *ssl, char *why, size_t len)
{
	int rc, err;

	err_clear();
	rc = SSL_do_handshake(ssl);
	if (rc == 1)
		return 1;
	err = SSL_get_error(ssl, rc);
	if (err == SSL_ERROR_WANT_READ)
		return 0;
	error_reason(err, why, len);
	return -1;
}

ssize_t
tp_tls_read(
    SSL *ssl, char *buf, size_t len, int *state, char *why, size_t whylen)
{
	int rc, err;

	err_clear();
	rc = SSL_read(ssl, buf, (int)len);
	if (rc > 0)
		return rc;
	err = SSL_get_error(ssl, rc);
	switch (err) {
	case SSL_ERROR_WANT_READ:
		*state = TP_TLS_WANT;
		return 0;
	case SSL_ERROR_ZERO_RETURN:
		*state = TP_TLS_EOF;
		return 0;
	default:
		*state = TP_TLS_ERROR;
		error_reason(err, why, whylen);
		return -1;
	}
}

int
tp_tls_write(SSL *ssl, const char *buf, size_t len)
{
	int rc;

	while (len > 0) {
		err_clear();
		rc = SSL_write(ssl, buf, len > 1 << 30 ? 1 << 30 : (int)len);
		if (rc <= 0) {
			ERR_clear_error();
			return -1;
		}
		buf += rc;
		len -= (size_t)rc;
	}
	return 0;
}

void
tp_tls_shutdown(SSL *ssl)
{
	err_clear();
	if (SSL_is_init_finished(ssl))
		SSL_shutdown(ssl);
	ERR_clear_error();
}

void
tp_tls_summary(SSL *ssl, char *buf, size_t len)
{
	const SSL_CIPHER *c = SSL_get_current_cipher(ssl);
	int alg = 0, bits = SSL_CIPHER_get_bits(c, &alg);

	snprintf(buf, len, "%s with cipher %s (%d/%d bits)",
	    SSL_get_version(ssl), SSL_CIPHER_get_name(c), bits, alg);
}

const char *
tp_tls_trust(SSL *ssl, bool matched)
{
	X509 *peer = SSL_get0_peer_certificate(ssl);

	if (peer == NULL)
		return "Anonymous";
	if (SSL_get_verify_result(ssl) != X509_V_OK)
		return "Untrusted";
	return matched ? "Verified" : "Trusted";
}
