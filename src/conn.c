/*
 * conn.c - the session, in data-path order: accept -> PROXY header (when
 * accept_proxy) -> admission (max_connections, client_limit) -> the
 * route's first stage (server: TLS handshake or our SMTP dialogue;
 * client: connect) -> TLS handshake -> relay; plus the timer, failure
 * replies and teardown.  A failure before the relay is answered with a
 * 421 (client mode: mail is deferred, never lost).
 *
 * Closing is asynchronous and idempotent: tp_conn_close() closes every
 * open handle; the session is freed in the last close callback (libuv
 * runs cancelled write/connect callbacks first) and never synchronously,
 * so callers check c->closing after any call that can fail.
 * Worker thread only, except the client_limit table (mutex).
 */
#include "tlsproxy/conn.h"

#include <arpa/inet.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "tlsproxy/common.h"
#include "tlsproxy/config.h"
#include "tlsproxy/connpool.h"
#include "tlsproxy/gen.h"
#include "tlsproxy/log.h"
#include "tlsproxy/metrics.h"
#include "tlsproxy/mta_sts.h"
#include "tlsproxy/proxy_proto.h"
#include "tlsproxy/session.h"
#include "tlsproxy/smtp_filter.h"
#include "tlsproxy/tls_io.h"
#include "tlsproxy/tls_policy.h"
#include "tlsproxy/tls_verify.h"
#include "tlsproxy/wctx.h"

atomic_uint tp_conn_active_total;

void
tp_conn_log(struct tp_conn *c, enum tp_log_level level, const char *fmt, ...)
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

/*
 * client_limit: sessions per route and client IP, across workers.
 */

#define IP_BUCKETS 1024

struct ip_count {
	struct ip_count *next;
	unsigned n;
	char key[TP_HOST_MAX + 64];
};

static pthread_mutex_t ip_lock = PTHREAD_MUTEX_INITIALIZER;
static struct ip_count *ip_table[IP_BUCKETS];

static unsigned
ip_hash(const char *s)
{
	unsigned h = 2166136261u;

	while (*s)
		h = (h ^ (unsigned char)*s++) * 16777619u;
	return h % IP_BUCKETS;
}

/* ip_change - add delta to the route+IP count; returns the new count. */
static unsigned
ip_change(struct tp_conn *c, int delta)
{
	struct ip_count **pp, *e;
	char key[sizeof(e->key)];
	unsigned n = 0;

	snprintf(key, sizeof(key), "%s/%s", c->r->name, c->peer_ip);
	pthread_mutex_lock(&ip_lock);
	for (pp = &ip_table[ip_hash(key)]; (e = *pp) != NULL; pp = &e->next)
		if (strcmp(e->key, key) == 0)
			break;
	if (e == NULL && delta > 0 && (e = calloc(1, sizeof(*e))) != NULL) {
		snprintf(e->key, sizeof(e->key), "%s", key);
		e->next = *pp;
		*pp = e;
	}
	if (e != NULL) {
		e->n += (unsigned)delta;
		n = e->n;
		if (e->n == 0) {
			*pp = e->next;
			free(e);
		}
	}
	pthread_mutex_unlock(&ip_lock);
	return n;
}

/*
 * Failure texts: most sessions never need them, so they are allocated
 * on first use (a thread's spare when memory is short).
 */

static struct tp_conn_text *
conn_text(struct tp_conn *c)
{
	static _Thread_local struct tp_conn_text spare;

	if (c->text == NULL && (c->text = calloc(1, sizeof(*c->text))) == NULL)
		return &spare;
	return c->text;
}

char *
tp_conn_why(struct tp_conn *c)
{
	return conn_text(c)->why;
}

char *
tp_conn_reply(struct tp_conn *c)
{
	return conn_text(c)->reply;
}

/*
 * Teardown.
 */

static void
conn_free(struct tp_conn *c)
{
	struct tp_wctx *w = c->w;

	tp_side_release(&c->down);
	tp_side_release(c->up);
	free(c->up);
	free(c->text);
	tp_dialogue_free(c);
	tp_gateway_free(c);
	if (c->filter != NULL)
		tp_filter_free(c->filter);
	free(c->filter);
	tp_reuse_free(c->reuse);
	tp_dest_free(c);
	tp_metrics_add(&c->rt->stats->bytes_in, c->bytes_in);
	tp_metrics_add(&c->rt->stats->bytes_out, c->bytes_out);
	if (c->counted) {
		atomic_fetch_sub(&c->rt->stats->active, 1);
		atomic_fetch_sub(&tp_conn_active_total, 1);
	}
	if (c->ip_counted)
		ip_change(c, -1);
	if (c->prev)
		c->prev->next = c->next;
	else
		w->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	tp_gen_unref(c->gen);
	c->magic = 0;
	free(c);
	w->session_done(w);
}

void
tp_conn_maybe_free(struct tp_conn *c)
{
	if (c->closing && c->nopen == 0)
		conn_free(c);
}

static void
conn_on_handle_closed(uv_handle_t *h)
{
	struct tp_conn *c = conn_of(h);

	c->nopen--;
	if ((uv_handle_t *)&c->up->tcp == h)
		tp_upstream_closed(c);
	tp_conn_maybe_free(c);
}

void
tp_conn_close_handle(struct tp_conn *c, uv_handle_t *h)
{
	(void)c;
	if (!uv_is_closing(h))
		uv_close(h, conn_on_handle_closed);
}

void
tp_conn_close(struct tp_conn *c, const char *reason)
{
	char in[16], out[16];

	if (c->closing)
		return;
	c->closing = true;
	c->down.closing = c->up->closing = true;
	tp_log_bytes(in, sizeof(in), c->bytes_in);
	tp_log_bytes(out, sizeof(out), c->bytes_out);
	tp_conn_log(c, TP_LOG_INFO, "disconnect in=%s out=%s %.2fs%s%s", in,
	    out, (uv_now(&c->w->loop) - c->started) / 1000.0, reason ? " " : "",
	    reason ? reason : "");
	tp_dest_free(c); /* no DNS answer comes after this */
	tp_conn_close_handle(c, (uv_handle_t *)&c->timer);
	tp_conn_close_handle(c, (uv_handle_t *)&c->down.tcp);
	if (c->up->open)
		tp_conn_close_handle(c, (uv_handle_t *)&c->up->tcp);
}

void
tp_conn_on_eof(struct tp_conn *c, struct side *s)
{
	s->eof = true;
	tp_side_update_read(s);
	switch (c->state) {
	case CS_LINGER:
		/* Our last words go out first: the shutdown callback (side.c)
		 * ends the session once they have. */
		if (s->is_down && !s->shut_done) {
			if (!s->shut)
				tp_side_end(s);
			return;
		}
		tp_conn_close(c, NULL);
		return;
	case CS_RELAY:
		tp_relay_eof(c, s);
		return;
	case CS_GW:
		tp_gateway_eof(c, s);
		return;
	case CS_SMTP_UP:
		if (!s->is_down) {
			tp_dialogue_up_lost(c, false);
			return;
		}
		tp_conn_close(c, "client went away");
		return;
	default:
		if (!s->is_down) {
			tp_upstream_failed(c, TP_ETLS,
			    "connection closed by "
			    "server");
			return;
		}
		tp_conn_close(c, "client went away");
		return;
	}
}

/*
 * Timer: connect, handshake, SMTP dialogue, idle (checked lazily against
 * last_active), linger.
 */

static void
conn_on_timer(uv_timer_t *t)
{
	struct tp_conn *c = conn_of((uv_handle_t *)t);
	uint64_t idle, now = uv_now(&c->w->loop);

	switch (c->state) {
	case CS_CONNECT:
		tp_upstream_failed(c, UV_ETIMEDOUT, "Connection timed out");
		break;
	case CS_HANDSHAKE:
	case CS_STARTTLS_WAIT:
		tp_metrics_handshake(c->rt->stats, 0, false, 0);
		if (c->r->mode != TP_MODE_SERVER) {
			tp_upstream_failed(c, TP_ETLS, "handshake timed out");
		} else {
			tp_conn_log(c, TP_LOG_INFO,
			    "SSL_accept error from %s: "
			    "handshake timed out",
			    c->peer_addr);
			tp_conn_close(c, NULL);
		}
		break;
	case CS_PROXY_IN:
	case CS_SMTP_DOWN:
	case CS_SMTP_UP:
		tp_dialogue_on_timeout(c);
		break;
	case CS_RELAY:
		idle = c->r->v[TP_K_IDLE_TIMEOUT].n;
		/* Postfix's smtp_data_done_timeout: a server may think long
		 * about a message, and cutting it short makes the MTA send
		 * the message again. */
		if (tp_filter_end_of_data(c->filter) &&
		    idle < c->r->v[TP_K_DATA_DONE_TIMEOUT].n)
			idle = c->r->v[TP_K_DATA_DONE_TIMEOUT].n;
		if (now - c->last_active >= idle) {
			tp_relay_lost(c, true, "idle timeout");
			return;
		}
		uv_timer_start(
		    t, conn_on_timer, idle - (now - c->last_active), 0);
		break;
	case CS_GW:
		tp_gateway_on_timer(c);
		break;
	case CS_LINGER:
		tp_conn_close(c, NULL);
		break;
	}
}

void
tp_conn_timer(struct tp_conn *c, uint64_t ms)
{
	uv_timer_start(&c->timer, conn_on_timer, ms, 0);
}

/*
 * Failure: a final reply to the client, then linger until it hangs up.
 */

/* conn_can_reply - can the client still read an SMTP reply from us? */
static bool
conn_can_reply(struct tp_conn *c)
{
	if (c->r->mode != TP_MODE_SERVER)
		return true;
	if (c->down.ssl != NULL)
		return SSL_is_init_finished(c->down.ssl);
	return c->r->tls == TP_TLS_STARTTLS && c->rt->ctx != NULL;
}

/*
 * tp_conn_fail - the session cannot go on.  reply is the final line to
 * send (no CRLF), or NULL to derive it from the last destination error:
 * client mode answers the local MTA with Postfix's 421s, server mode says
 * 421 4.3.0 when the client can still read a reply.  A client that has
 * finished sending still reads it: the session ends once it is out.
 */
void
tp_conn_fail(struct tp_conn *c, const char *reply)
{
	char line[510]; /* with CRLF within RFC 5321's 512 octets */

	if (c->closing || c->state == CS_LINGER)
		return;
	if (c->state == CS_RELAY && reply == NULL) {
		tp_conn_close(c, NULL);
		return;
	}
	if (reply == NULL && c->gwy != NULL) {
		/* a gateway's destination failed: the RCPT's reply, and the
		 * MTA's session goes on */
		tp_gateway_up_failed(c);
		return;
	}
	if (reply == NULL && c->r->mode != TP_MODE_SERVER) {
		tp_conn_fail_reply(c, line, sizeof(line));
		reply = line;
	} else if (reply == NULL) {
		reply = "421 4.3.0 Server unavailable, try again later";
	}
	tp_conn_linger(c, reply);
}

/* tp_conn_fail_reply - Postfix's 421 for the last destination error. */
void
tp_conn_fail_reply(struct tp_conn *c, char *line, size_t len)
{
	if (c->last_err == TP_EPROTO)
		snprintf(line, len, "%s", tp_conn_reply(c));
	else if (c->last_err == TP_ETLS)
		snprintf(
		    line, len, "421 4.7.5 Cannot start TLS: handshake failure");
	else if (c->last_err == UV_ETIMEDOUT)
		snprintf(line, len, "421 4.4.2 Connection timed out: %s[%s]:%u",
		    c->up_host, c->up_ip, c->up_port);
	else if (c->last_err == UV_ECONNREFUSED)
		snprintf(line, len, "421 4.4.1 Connection refused by %s[%s]:%u",
		    c->up_host, c->up_ip, c->up_port);
	else
		snprintf(line, len,
		    "421 4.4.1 Connection failed: %s[%s]:%u: %s", c->up_host,
		    c->up_ip, c->up_port, tp_conn_why(c));
}

/*
 * tp_conn_linger - the destination is done with: what the client is owed
 * goes out, then our reply (NULL: none), then close_notify/FIN; read on
 * until the client hangs up or TP_LINGER_MS pass.
 */
void
tp_conn_linger(struct tp_conn *c, const char *reply)
{
	if (c->up->open)
		tp_conn_close_handle(c, (uv_handle_t *)&c->up->tcp);
	c->retry = c->retry_same = false;
	c->state = CS_LINGER;
	tp_dialogue_free(c);
	/* whatever the client sent is moot now; read on to see its EOF */
	tp_side_discard_input(&c->down);
	if (!conn_can_reply(c) && tp_side_backlog(&c->down) == 0) {
		tp_conn_close(c, NULL);
		return;
	}
	if (reply != NULL && conn_can_reply(c)) {
		tp_conn_log(c, TP_LOG_INFO, "reject: %s", reply);
		tp_metrics_add(&c->rt->stats->rejects, 1);
		if (tp_side_send(&c->down, reply, strlen(reply)) < 0 ||
		    tp_side_send(&c->down, "\r\n", 2) < 0) {
			tp_conn_close(c, NULL);
			return;
		}
	}
	tp_side_end(&c->down);
	tp_conn_timer(c, TP_LINGER_MS);
	tp_side_update_read(&c->down);
}

/*
 * TLS.
 */

static void
conn_log_established(struct tp_conn *c, struct side *s, const char *trust)
{
	char summary[200];
	const char *how = SSL_session_reused(s->ssl) ? "reused" : "established";

	if (c->gen->cfg->g[TP_K_TLS_LOGLEVEL].n < 1)
		return;
	tp_tls_summary(s->ssl, summary, sizeof(summary));
	if (s->is_down)
		tp_conn_log(c, TP_LOG_INFO,
		    "%s TLS connection %s from "
		    "unknown[%s]: %s",
		    trust, how, c->peer_ip, summary);
	else
		tp_conn_log(c, TP_LOG_INFO,
		    "%s TLS connection %s to "
		    "%s[%s]:%u: %s%s%s",
		    trust, how, c->up_host, c->up_ip, c->up_port, summary,
		    tp_gateway_domain(c) ? " for " : "",
		    tp_gateway_domain(c) ? tp_gateway_domain(c) : "");
	/* tls_loglevel 1: the peer's names; 2: its digest too (Postfix) */
	tp_verify_describe(s->ssl, c->gen->cfg->g[TP_K_TLS_LOGLEVEL].n >= 2,
	    summary, sizeof(summary));
	if (summary[0] != '\0')
		tp_conn_log(c, TP_LOG_INFO, "%s certificate: %s",
		    s->is_down ? "client" : "server", summary);
}

/*
 * conn_verified - the peer passes the route's level; else the 421 that
 * Postfix would give ("not trusted" for the chain, "not verified" for
 * names, fingerprints and TLSA), and the next address is tried.
 */
void
tp_conn_tlsrpt_domain(
    struct tp_conn *c, const char *domain, int policy, int result)
{
	if (domain != NULL)
		tp_metrics_tlsrpt(
		    c->rt->stats, domain, policy, result < 0 ? 0 : result + 1);
}

void
tp_conn_tlsrpt(struct tp_conn *c, int result)
{
	const char *domain = tp_gateway_domain(c);

	tp_conn_tlsrpt_domain(
	    c, domain ? domain : c->rpt_domain, c->rpt_policy, result);
}

/* rpt_result - the RFC 8460 result type of a failed check (tls_verify's
 * reasons). */
static int
rpt_result(const char *why)
{
	if (strstr(why, "name mismatch"))
		return TP_MTA_STS_RESULT_CERTIFICATE_HOST_MISMATCH;
	if (strstr(why, "expired") || strstr(why, "not yet valid"))
		return TP_MTA_STS_RESULT_CERTIFICATE_EXPIRED;
	if (strstr(why, "untrusted") || strstr(why, "issuer"))
		return TP_MTA_STS_RESULT_CERTIFICATE_NOT_TRUSTED;
	return TP_MTA_STS_RESULT_VALIDATION_FAILURE;
}

/* sts_testing - a testing policy: what would have failed (RFC 8461 5). */
static void
sts_testing(struct tp_conn *c, SSL *ssl)
{
	long res = SSL_get_verify_result(ssl);
	int fail = -1;

	if (!c->sts_match)
		fail = TP_MTA_STS_RESULT_VALIDATION_FAILURE;
	else if (SSL_version(ssl) < TLS1_2_VERSION)
		fail = TP_MTA_STS_RESULT_VALIDATION_FAILURE;
	else if (res == X509_V_ERR_HOSTNAME_MISMATCH)
		fail = TP_MTA_STS_RESULT_CERTIFICATE_HOST_MISMATCH;
	else if (res == X509_V_ERR_CERT_HAS_EXPIRED)
		fail = TP_MTA_STS_RESULT_CERTIFICATE_EXPIRED;
	else if (res != X509_V_OK)
		fail = TP_MTA_STS_RESULT_CERTIFICATE_NOT_TRUSTED;
	if (fail >= 0)
		tp_conn_log(c, TP_LOG_INFO,
		    "MTA-STS testing: would fail: %s (%s[%s]:%u)",
		    tp_mta_sts_result_name(fail), c->up_host, c->up_ip,
		    c->up_port);
	tp_conn_tlsrpt(c, fail);
}

int
tp_conn_level(const struct tp_conn *c)
{
	return c->dane != NULL ? c->dane->level : c->security;
}

static bool
conn_verified(struct tp_conn *c, struct side *s)
{
	const struct tp_verify *v = s->is_down ? NULL : c->verify;
	const char *trust;
	char why[300];
	int rc = tp_verify_check(
	    s->ssl, v, s->is_down ? NULL : c->dane, &trust, why, sizeof(why));

	conn_log_established(c, s, trust);
	if (!s->is_down) {
		if (c->sts_mode == TP_MTA_STS_MODE_TESTING)
			sts_testing(c, s->ssl);
		else
			tp_conn_tlsrpt(c, rc == 0 ? -1 : rpt_result(why));
	}
	/* a failure is counted once, when every MX host has failed */
	if (!s->is_down && tp_gateway_domain(c) != NULL && rc == 0)
		tp_metrics_domain(c->rt->stats, tp_gateway_domain(c),
		    strcmp(trust, "Verified") == 0        ? TP_DR_VERIFIED
			: strcmp(trust, "Trusted") == 0   ? TP_DR_TRUSTED
			: strcmp(trust, "Untrusted") == 0 ? TP_DR_UNTRUSTED
							  : TP_DR_ANONYMOUS);
	tp_metrics_handshake(c->rt->stats, SSL_version(s->ssl),
	    SSL_session_reused(s->ssl), (uv_hrtime() - c->hs_start) / 1000);
	if (!s->is_down && c->dane != NULL)
		tp_metrics_dane(c->rt->stats,
		    c->dane->level == TP_SEC_MAY           ? TP_DANE_NO_TLSA
			: c->dane->level == TP_SEC_ENCRYPT ? TP_DANE_UNUSABLE
			: rc < 0                           ? TP_DANE_MISMATCH
			: c->dane->trusted_only            ? TP_DANE_TRUSTED
							   : TP_DANE_VERIFIED);
	if (rc == 0)
		return true;
	tp_metrics_verify_failure(c->rt->stats, why);
	tp_conn_log(c, TP_LOG_WARNING,
	    "server certificate verification "
	    "failed for %s[%s]:%u: %s",
	    c->up_host, c->up_ip, c->up_port, why);
	/* Postfix (TLS_MUST_TRUST, TLS_MUST_MATCH): "not trusted" when the
	 * level needs trust - DANE, or a chain at verify/secure - and it is
	 * missing; "not verified" for names and fingerprints. */
	snprintf(tp_conn_reply(c), TP_CONN_REPLY_MAX,
	    "421 4.7.5 Server "
	    "certificate not %s: %s",
	    v->security == TP_SEC_DANE || v->security == TP_SEC_DANE_ONLY ||
		    ((v->security == TP_SEC_VERIFY ||
			 v->security == TP_SEC_SECURE) &&
			strcmp(trust, "Untrusted") == 0)
		? "trusted"
		: "verified",
	    why);
	tp_upstream_failed(c, TP_EPROTO, tp_conn_reply(c));
	return false;
}

static void
conn_tls_info(const SSL *ssl, int where, int ret)
{
	struct tp_conn *c = SSL_get_app_data(ssl);

	(void)ret;
	if (where & SSL_CB_LOOP)
		tp_conn_log(c, TP_LOG_INFO, "%s:%s",
		    SSL_is_server((SSL *)ssl) ? "SSL_accept" : "SSL_connect",
		    SSL_state_string_long(ssl));
}

/*
 * conn_sni - the name sent: servername when set ("none": none), else the
 * TLSA base domain under DANE (RFC 7672 8.1), else the host's name.
 */
static const char *
conn_sni(const struct tp_conn *c)
{
	unsigned char a[16];

	if (c->servername != NULL && strcmp(c->servername, "none") == 0)
		return NULL;
	if (c->servername != NULL && strcmp(c->servername, "nexthop") == 0)
		return tp_gateway_domain(c) ? tp_gateway_domain(c) : c->up_host;
	if (c->servername != NULL && strcmp(c->servername, "hostname") != 0)
		return c->servername;
	if (c->dane != NULL && c->dane->level == TP_SEC_DANE)
		return c->dane->base;
	if (inet_pton(AF_INET, c->up_host, a) == 1 ||
	    inet_pton(AF_INET6, c->up_host, a) == 1)
		return NULL;
	return c->up_host;
}

int
tp_conn_tls_begin(struct tp_conn *c, struct side *s)
{
	s->bio.in = &s->in;
	s->bio.out = &s->out;
	s->bio.pool = &c->w->pool;
	s->bio.oom = false;
	s->ssl = tp_tls_new(s->is_down ? c->rt->ctx : c->ctx, &s->bio,
	    s->is_down, s->is_down ? NULL : conn_sni(c));
	if (s->ssl == NULL)
		return -1;
	SSL_set_app_data(s->ssl, c);
	if (!s->is_down) {
		tp_sesscache_attach(c, s);
		if (tp_verify_prepare_dest(s->ssl, c->verify, c->dane,
			c->up_host, tp_gateway_domain(c)) < 0)
			return -1;
		/* RFC 8461 4.2: TLS 1.2 or later under an enforce policy;
		 * testing: the MX name checked, for what would fail */
		if (c->sts_mode == TP_MTA_STS_MODE_ENFORCE &&
		    !SSL_set_min_proto_version(s->ssl, TLS1_2_VERSION))
			return -1;
		if (c->sts_mode == TP_MTA_STS_MODE_TESTING &&
		    c->security != TP_SEC_VERIFY &&
		    c->security != TP_SEC_SECURE &&
		    !SSL_add1_host(s->ssl, c->up_host))
			return -1;
	}
	if (c->gen->cfg->g[TP_K_TLS_LOGLEVEL].n >= 2) {
		SSL_set_info_callback(s->ssl, conn_tls_info);
		if (s->is_down)
			tp_conn_log(c, TP_LOG_INFO,
			    "setting up TLS connection "
			    "from %s",
			    c->peer_addr);
		else
			tp_conn_log(c, TP_LOG_INFO,
			    "setting up TLS connection "
			    "to %s[%s]:%u",
			    c->up_host, c->up_ip, c->up_port);
	}
	c->state = CS_HANDSHAKE;
	c->hs_start = uv_hrtime();
	tp_conn_timer(c, c->r->v[TP_K_HANDSHAKE_TIMEOUT].n);
	return 0;
}

/*
 * tp_conn_advance - server STARTTLS: start TLS once our 220 is out; then
 * drive the handshake; when it is done go on to the backend (server) or
 * the relay (client).
 */
void
tp_conn_advance(struct tp_conn *c)
{
	struct side *s = c->r->mode == TP_MODE_SERVER ? &c->down : c->up;
	char why[160];
	int rc;

	if (c->state == CS_STARTTLS_WAIT) {
		tp_side_discard_input(&c->down);
		if (tp_conn_tls_begin(c, &c->down) < 0) {
			tp_conn_close(c, "out of memory");
			return;
		}
	}
	if (c->state != CS_HANDSHAKE)
		return;
	rc = tp_tls_handshake(s->ssl, why, sizeof(why));
	tp_side_flush(s);
	if (c->closing)
		return;
	if (rc == 0) {
		tp_side_update_read(s);
		return;
	}
	if (rc < 0) {
		tp_metrics_handshake(c->rt->stats, 0, false, 0);
		if (s->is_down) {
			tp_conn_log(c, TP_LOG_INFO,
			    "SSL_accept error from %s: "
			    "%s",
			    c->peer_addr, why);
			tp_conn_fail(c, NULL);
		} else {
			tp_upstream_failed(c, TP_ETLS, why);
		}
		return;
	}
	if (!conn_verified(c, s))
		return;
	if (s->is_down) {
		c->state = CS_CONNECT;
		tp_side_update_read(&c->down);
		tp_upstream_next(c);
	} else if (c->r->tls == TP_TLS_STARTTLS) {
		tp_dialogue_tls_done(c);
	} else {
		tp_relay_start(c);
	}
}

/*
 * The destination is connected.
 */

static void
conn_send_proxy_header(struct tp_conn *c)
{
	char hdr[TP_PROXY_HDR_MAX], cn[128] = "";
	int n, version = c->r->v[TP_K_PROXY_PROTOCOL].e; /* none, v1, v2 */
	struct tp_proxy_tls tls = {0};
	SSL *ssl = c->down.ssl;
	X509 *peer;

	if (version == 0)
		return;
	/* v2 tells the backend about the client's TLS, when there is some */
	if (ssl != NULL && SSL_is_init_finished(ssl)) {
		tls.version = SSL_get_version(ssl);
		tls.cipher = SSL_get_cipher_name(ssl);
		tls.sni = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
		if ((peer = SSL_get0_peer_certificate(ssl)) != NULL) {
			tls.cert = true;
			X509_NAME_get_text_by_NID(X509_get_subject_name(peer),
			    NID_commonName, cn, sizeof(cn));
			tls.cn = cn[0] ? cn : NULL;
			tls.verify = (uint32_t)SSL_get_verify_result(ssl);
		}
	}
	n = tp_proxy_encode(version, &c->peer_ss, &c->local_ss,
	    ssl != NULL && SSL_is_init_finished(ssl) ? &tls : NULL, hdr,
	    sizeof(hdr));
	if (n > 0 && tp_side_send(c->up, hdr, (size_t)n) < 0)
		tp_conn_close(c, "out of memory");
}

void
tp_conn_on_upstream(struct tp_conn *c)
{
	if (c->r->mode == TP_MODE_SERVER) {
		conn_send_proxy_header(c);
		if (c->closing)
			return;
		if (c->r->tls == TP_TLS_STARTTLS && c->rt->ctx != NULL)
			tp_dialogue_backend_begin(c);
		else
			tp_relay_start(c);
		tp_side_flush(c->up);
		return;
	}
	if (c->r->mode == TP_MODE_GATEWAY) {
		/* MX hosts speak STARTTLS; none: the greeting only */
		c->plain = c->ctx == NULL;
		tp_dialogue_client_begin(c);
	} else if (c->ctx == NULL) {
		tp_relay_start(c); /* security = none */
	} else if (c->r->tls == TP_TLS_STARTTLS) {
		tp_dialogue_client_begin(c);
	} else if (tp_conn_tls_begin(c, c->up) < 0) {
		tp_conn_close(c, "out of memory");
	} else {
		tp_conn_advance(c);
	}
}

/*
 * Accept and admission.
 */

void
tp_conn_set_peer(struct tp_conn *c)
{
	unsigned port = 0;

	snprintf(c->peer_ip, sizeof(c->peer_ip), "unknown");
	if (c->peer_ss.ss_family == AF_INET6) {
		uv_ip6_name((struct sockaddr_in6 *)&c->peer_ss, c->peer_ip,
		    sizeof(c->peer_ip));
		port = ntohs(((struct sockaddr_in6 *)&c->peer_ss)->sin6_port);
	} else if (c->peer_ss.ss_family == AF_INET) {
		uv_ip4_name((struct sockaddr_in *)&c->peer_ss, c->peer_ip,
		    sizeof(c->peer_ip));
		port = ntohs(((struct sockaddr_in *)&c->peer_ss)->sin_port);
	}
	snprintf(c->peer_addr, sizeof(c->peer_addr),
	    c->peer_ss.ss_family == AF_INET6 ? "[%s]:%u" : "%s:%u", c->peer_ip,
	    port);
}

/* conn_refuse - over a limit: a 421 where the client reads plaintext. */
static void
conn_refuse(struct tp_conn *c, const char *reply)
{
	c->state = CS_CONNECT;
	if (c->r->mode == TP_MODE_SERVER && c->r->tls == TP_TLS_IMPLICIT &&
	    c->rt->ctx != NULL)
		tp_conn_close(c, "over the connection limit");
	else
		tp_conn_fail(c, reply);
}

void
tp_conn_admit(struct tp_conn *c)
{
	unsigned total, active, limit, from_ip;
	char line[200];

	total = atomic_fetch_add(&tp_conn_active_total, 1) + 1;
	active = atomic_fetch_add(&c->rt->stats->active, 1) + 1;
	atomic_fetch_add(&c->rt->stats->total, 1);
	c->counted = true;
	if (total > c->gen->cfg->g[TP_K_MAX_CONNECTIONS_G].n ||
	    active > c->r->max_connections) {
		tp_conn_log(c, TP_LOG_WARNING,
		    "too many connections (%u of %u "
		    "on this route, %u in all)",
		    active, c->r->max_connections, total);
		conn_refuse(c, "421 4.3.2 All server ports are busy");
		return;
	}
	limit = (unsigned)c->r->v[TP_K_CLIENT_LIMIT].n;
	if (limit > 0) {
		from_ip = ip_change(c, 1);
		c->ip_counted = from_ip > 0;
		if (from_ip > limit) {
			tp_conn_log(c, TP_LOG_WARNING,
			    "too many connections "
			    "from %s (%u, client_limit %u)",
			    c->peer_ip, from_ip, limit);
			snprintf(line, sizeof(line),
			    "421 4.7.0 Too many "
			    "connections from %s",
			    c->peer_ip);
			conn_refuse(c, line);
			return;
		}
	}
	if (c->r->unimplemented) {
		c->state = CS_CONNECT;
		tp_conn_fail(c,
		    "421 4.7.0 TLS policy of this route is not "
		    "available yet, try again later");
		return;
	}
	if (c->r->mode == TP_MODE_GATEWAY) {
		if (tp_gateway_begin(c) < 0)
			tp_conn_close(c, "out of memory");
	} else if (c->r->mode == TP_MODE_CLIENT || c->rt->ctx == NULL) {
		c->state = CS_CONNECT;
		tp_upstream_next(c);
	} else if (c->r->tls == TP_TLS_STARTTLS) {
		tp_dialogue_server_begin(c);
	} else if (tp_conn_tls_begin(c, &c->down) < 0) {
		tp_conn_close(c, "out of memory");
	} else if (c->down.in != NULL) {
		tp_conn_advance(
		    c); /* a ClientHello came with the PROXY header */
	} else {
		tp_side_update_read(&c->down);
	}
}

void
tp_conn_accept(struct tp_wctx *w, uv_stream_t *server, size_t route)
{
	struct tp_conn *c = calloc(1, sizeof(*c));
	int len;

	if (c == NULL || (c->up = calloc(1, sizeof(*c->up))) == NULL) {
		tp_log(TP_LOG_WARNING, "accept: out of memory");
		free(c);
		return;
	}
	c->magic = TP_CONN_MAGIC;
	c->w = w;
	c->gen = w->gen;
	tp_gen_ref(c->gen);
	c->rt = &c->gen->routes[route];
	c->r = c->rt->cfg;
	c->connect = c->r->connect;
	c->nconnect = c->r->nconnect;
	c->ctx = c->rt->ctx;
	c->verify = c->rt->verify;
	c->security = c->r->security;
	c->sts_wanted = c->r->mta_sts && c->r->mode == TP_MODE_CLIENT;
	if (c->r->v[TP_K_SERVERNAME].set)
		c->servername = c->r->v[TP_K_SERVERNAME].raw;
	tp_side_init(&c->down, &tp_conn_side_ops, c, &w->pool);
	tp_side_init(c->up, &tp_conn_side_ops, c, &w->pool);
	c->down.peer = c->up;
	c->up->peer = &c->down;
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
		/* nothing to log: never connected */
		c->closing = c->down.closing = c->up->closing = true;
		tp_conn_close_handle(c, (uv_handle_t *)&c->timer);
		tp_conn_close_handle(c, (uv_handle_t *)&c->down.tcp);
		return;
	}
	uv_tcp_nodelay(&c->down.tcp, 1);
	len = sizeof(c->peer_ss);
	uv_tcp_getpeername(&c->down.tcp, (struct sockaddr *)&c->peer_ss, &len);
	len = sizeof(c->local_ss);
	uv_tcp_getsockname(&c->down.tcp, (struct sockaddr *)&c->local_ss, &len);
	tp_conn_set_peer(c);
	tp_conn_log(c, TP_LOG_INFO, "connect from %s", c->peer_addr);
	if (c->r->mode == TP_MODE_SERVER && c->r->v[TP_K_ACCEPT_PROXY].n) {
		if (tp_dialogue_start(c) < 0) {
			tp_conn_close(c, "out of memory");
			return;
		}
		c->state = CS_PROXY_IN;
		tp_conn_timer(c, c->r->v[TP_K_HANDSHAKE_TIMEOUT].n);
		tp_side_update_read(&c->down);
		return;
	}
	tp_conn_admit(c);
}
