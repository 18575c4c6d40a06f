/*
 * session.h - the session's internals, shared by the files that make up
 * the data path: conn.c (accept, admission, states, timers, teardown),
 * upstream.c (connect with failover),
 * dialogue.c (the SMTP and PROXY exchanges before the relay), relay.c
 * (copying both ways) and sesscache.c (client TLS sessions).
 * Everything here runs on the session's worker thread.
 */
#ifndef TLSPROXY_SESSION_H
#define TLSPROXY_SESSION_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include <openssl/ssl.h>
#include <uv.h>

#include "tlsproxy/buf.h"
#include "tlsproxy/log.h"
#include "tlsproxy/parse.h"
#include "tlsproxy/side.h"
#include "tlsproxy/tls_io.h"

struct tp_conn;
struct tp_gen;
struct tp_route_rt;
struct tp_cfg_route;
struct tp_wctx;
struct tp_filter;
struct tp_dialogue;
struct tp_dest;
struct tp_dane;
struct tp_gateway;

#define TP_CONN_MAGIC 0x434f4e4eu
#define TP_HIGH_WATER (256 * 1024)
#define TP_LOW_WATER  (64 * 1024)
#define TP_LINGER_MS  10000 /* after a final reply: wait for the QUIT */

enum tp_conn_state {
	CS_PROXY_IN,      /* reading a PROXY header from a load balancer */
	CS_CONNECT,       /* connecting to the destination */
	CS_SMTP_DOWN,     /* server: our own pre-TLS dialogue with the client */
	CS_STARTTLS_WAIT, /* server: our 220 is being written */
	CS_SMTP_UP,   /* client: STARTTLS dialogue; server: backend greeting */
	CS_HANDSHAKE, /* TLS handshake on the TLS side */
	CS_RELAY,     /* copying both ways */
	CS_GW,        /* gateway: the MTA and its engine (gateway.c) */
	CS_LINGER,    /* sent a final reply or alert; waiting for EOF */
};

struct tp_conn {
	uint32_t magic;
	struct tp_wctx *w;
	struct tp_gen *gen;
	const struct tp_route_rt *rt;
	const struct tp_cfg_route *r;
	struct tp_conn *next, *prev;
	struct side down; /* the accepted side */
	struct side *up;  /* the destination: its own allocation, so that
			     a reused connection outlives the session
			     (pool.c) */
	uv_timer_t timer;
	uv_connect_t creq;
	enum tp_conn_state state;
	int nopen; /* handles not yet closed */
	bool closing;
	bool retry;       /* up is being closed to try the next address */
	bool retry_same;  /* ... or the same one again, in plaintext */
	bool plain;       /* this upstream attempt is plaintext (may) */
	bool plain_tried; /* the one plaintext retry was used */
	bool counted;     /* counted in the route's and global active */
	bool ip_counted;  /* counted in client_limit */
	bool answer_quit; /* linger: answer QUIT with 221 */
	bool go_plain;    /* server: the client went on without TLS */
	char sid[12];
	char peer_ip[64];   /* the client (after any PROXY header) */
	char peer_addr[80]; /* "ip:port" */
	struct sockaddr_storage peer_ss, local_ss;
	struct tp_dialogue *dlg;  /* SMTP/PROXY state before the relay */
	struct tp_gateway *gwy;   /* gateway sessions: engine and state */
	struct tp_filter *filter; /* in-tunnel STARTTLS rules */
	struct tp_reuse *reuse;   /* connection_reuse: what to keep */
	bool reused;              /* c->up came from the pool */
	/* the destination's TLS policy: the route's own, or on a gateway
	 * the destination domain's (policy_file, else the route's) */
	SSL_CTX *ctx;                   /* NULL: no TLS (security = none) */
	const struct tp_verify *verify; /* NULL below fingerprint */
	int security;                   /* enum tp_security */
	const char *servername;         /* set: SNI to send; "none": none */
	bool sts_wanted;        /* look up the domain's MTA-STS policy */
	int sts_mode;           /* this host: enum tp_mta_sts_mode */
	bool sts_match;         /* ... and it matches the policy's mx */
	const char *rpt_domain; /* TLS-RPT: the destination domain, or NULL */
	int rpt_policy; /* ... policy type (enum tp_mta_sts_policy_type) */
	/* destination in progress */
	const struct tp_hostport *connect; /* the route's list, or the
					      gateway's domain */
	size_t nconnect;
	size_t cidx;                /* next index in connect */
	int dest_perm;              /* TP_DEST_NULLMX, TP_DEST_NXDOMAIN */
	struct tp_dest *dest;       /* a name's hosts from DNS (dest.c) */
	const struct tp_dane *dane; /* DNS's DANE verdict for this host */
	struct sockaddr_storage up_ss;
	char up_host[TP_HOST_MAX];
	char up_ip[64];
	unsigned up_port;
	int last_err; /* last connect error, TP_ETLS or TP_EPROTO */
	struct tp_conn_text *text; /* failure texts, made on first use */
	uint64_t started, last_active;
	uint64_t hs_start; /* uv_hrtime() when the handshake began */
	unsigned long long bytes_in, bytes_out; /* from / to the client */
};

/* conn.c */
void tp_conn_log(struct tp_conn *c, enum tp_log_level level, const char *fmt,
    ...) __attribute__((format(printf, 3, 4)));
void tp_conn_timer(struct tp_conn *c, uint64_t ms);
void tp_conn_close_handle(struct tp_conn *c, uv_handle_t *h);
/* tp_conn_maybe_free - free a closing session once nothing is pending. */
void tp_conn_maybe_free(struct tp_conn *c);
/* tp_conn_fail - a final reply (without CRLF) or NULL to derive it. */
void tp_conn_fail(struct tp_conn *c, const char *reply);
/* tp_conn_fail_reply - the 421 for the last destination error. */
void tp_conn_fail_reply(struct tp_conn *c, char *out, size_t len);
/* tp_conn_linger - drop the destination, end with reply (or none). */
void tp_conn_linger(struct tp_conn *c, const char *reply);
/* tp_conn_on_eof - a side has no more input. */
void tp_conn_on_eof(struct tp_conn *c, struct side *s);
/* tp_conn_tls_begin - attach an SSL to s and start its handshake. */
int tp_conn_tls_begin(struct tp_conn *c, struct side *s);
/* tp_conn_advance - drive the handshake, then the next stage. */
void tp_conn_advance(struct tp_conn *c);
/* tp_conn_on_upstream - the destination is connected. */
void tp_conn_on_upstream(struct tp_conn *c);
/* tp_conn_set_peer - format peer_ip/peer_addr from peer_ss. */
void tp_conn_set_peer(struct tp_conn *c);
/*
 * tp_conn_tlsrpt - count a TLS outcome toward the destination domain as RFC
 * 8460 reports it (result: enum tp_mta_sts_result, or -1 for success);
 * _domain with an explicit domain and policy type.
 */
void tp_conn_tlsrpt(struct tp_conn *c, int result);
void tp_conn_tlsrpt_domain(
    struct tp_conn *c, const char *domain, int policy, int result);
/* tp_conn_level - the security level for this destination host: the
 * route's, or what DNS made of dane (may, encrypt, dane; spec 4.8). */
int tp_conn_level(const struct tp_conn *c);
/* tp_conn_admit - limits, then the route's first stage. */
void tp_conn_admit(struct tp_conn *c);

/* conn.c: the callbacks of a session's endpoints (side.h) */
extern const struct tp_side_ops tp_conn_side_ops;
/* What a failed destination said, kept only once something failed. */
#define TP_CONN_WHY_MAX   200
#define TP_CONN_REPLY_MAX 512
struct tp_conn_text {
	char why[TP_CONN_WHY_MAX];     /* the last connect error, as text */
	char reply[TP_CONN_REPLY_MAX]; /* TP_EPROTO: the 421 to send */
};
/* tp_conn_why, tp_conn_reply - those buffers ("" until written). */
char *tp_conn_why(struct tp_conn *c);
char *tp_conn_reply(struct tp_conn *c);

/* tp_side_conn - the session that owns s. */
static inline struct tp_conn *
tp_side_conn(const struct side *s)
{
	return s->owner;
}

/* upstream.c */
void tp_upstream_next(struct tp_conn *c);
/* tp_upstream_failed - this address failed: log, close, try the next. */
void tp_upstream_failed(struct tp_conn *c, int err, const char *why);
/* tp_upstream_closed - the up socket finished closing (retry logic). */
void tp_upstream_closed(struct tp_conn *c);

/* dialogue.c */
int tp_dialogue_start(struct tp_conn *c);
void tp_dialogue_free(struct tp_conn *c);
void tp_dialogue_proxy_input(struct tp_conn *c);
void tp_dialogue_down_input(struct tp_conn *c);
void tp_dialogue_up_input(struct tp_conn *c);
/* tp_dialogue_server_begin - server: our greeting, our dialogue. */
void tp_dialogue_server_begin(struct tp_conn *c);
/* tp_dialogue_tls_done - client: TLS is up; replay the greeting. */
void tp_dialogue_tls_done(struct tp_conn *c);
/* tp_dialogue_up_lost - the upstream closed or timed out mid-dialogue. */
void tp_dialogue_up_lost(struct tp_conn *c, bool timeout);
/* tp_dialogue_client_begin - client: read the upstream greeting. */
void tp_dialogue_client_begin(struct tp_conn *c);
/* tp_dialogue_backend_begin - server: consume the backend greeting. */
void tp_dialogue_backend_begin(struct tp_conn *c);
void tp_dialogue_on_timeout(struct tp_conn *c);
/* tp_dialogue_linger_input - answer QUIT after a refused greeting. */
void tp_dialogue_linger_input(struct tp_conn *c);

/* relay.c */
/* tp_relay_start - relay both ways through the SMTP tracker. */
void tp_relay_start(struct tp_conn *c);
void tp_relay_pump(struct side *src);
/* tp_relay_settle - relay a pending half-close; end when both are done. */
void tp_relay_settle(struct tp_conn *c);
/* tp_relay_eof - a side sent its last byte (spec 4.6 Closing). */
void tp_relay_eof(struct tp_conn *c, struct side *s);
/* tp_relay_lost - the upstream went away or timed out: a 421, then end. */
void tp_relay_lost(struct tp_conn *c, bool timeout, const char *why);

/* gateway.c */
#define TP_DEST_NULLMX   1 /* the domain's null MX (RFC 7505) */
#define TP_DEST_NXDOMAIN 2 /* the domain does not exist */
/* tp_gateway_begin - the engine and its greeting; 0 or -1 (memory). */
int tp_gateway_begin(struct tp_conn *c);
/* tp_gateway_input - bytes arrived on s (CS_GW). */
void tp_gateway_input(struct tp_conn *c, struct side *s);
/* tp_gateway_resume - the upstream's backlog drained. */
void tp_gateway_resume(struct tp_conn *c);
/* tp_gateway_up_ready - the destination is reached and secured. */
void tp_gateway_up_ready(struct tp_conn *c);
/* tp_gateway_up_failed - every address failed (c->last_reply says). */
void tp_gateway_up_failed(struct tp_conn *c);
/* tp_gateway_up_lost - the upstream went, or timed out. */
void tp_gateway_up_lost(struct tp_conn *c, bool timeout, const char *why);
/* tp_gateway_up_closed - its handle finished closing. */
void tp_gateway_up_closed(struct tp_conn *c);
void tp_gateway_eof(struct tp_conn *c, struct side *s);
/* tp_gateway_down_gone - the MTA went after its QUIT while the upstream
 * is being parked: its endpoint is closed, the session waits; true then. */
bool tp_gateway_down_gone(struct tp_conn *c);
/* tp_gateway_shutdown - our FIN on s went out. */
void tp_gateway_shutdown(struct tp_conn *c, struct side *s);
void tp_gateway_on_timer(struct tp_conn *c);
/* tp_gateway_domain - the destination domain, for the log, or NULL. */
const char *tp_gateway_domain(const struct tp_conn *c);
void tp_gateway_free(struct tp_conn *c);

/* dest.c */
/*
 * tp_dest_start - resolve connect entry hp (a name or mx:DOMAIN); when
 * every lookup is in, tp_upstream_next(c) runs (never from here).  0, or
 * -1 when out of memory.
 */
int tp_dest_start(struct tp_conn *c, const struct tp_hostport *hp);
/*
 * tp_dest_next - the next address into c->up_host/up_ss/up_port and
 * c->dane: 1; 0 still resolving; -1 none left (c->last_reply says why).
 */
int tp_dest_next(struct tp_conn *c);
/* tp_dest_session - a connection was made (smtp_mx_session_limit). */
void tp_dest_session(struct tp_conn *c);
/* tp_dest_free - cancel the lookups, forget the hosts. */
void tp_dest_free(struct tp_conn *c);

/* sesscache.c */
void tp_sesscache_attach(struct tp_conn *c, struct side *s);
/*
 * tp_sesscache_key - this destination (host, address, port) and the rules
 * it is verified under (the TLSA answer, the TLS policy objects).
 */
void tp_sesscache_key(const struct tp_conn *c, char *key, size_t len);

/* reuse.c - connection reuse in a session (spec 4.7) */
/* tp_reuse_begin - keep what the client sees, on a route with reuse. */
void tp_reuse_begin(struct tp_conn *c);
/*
 * tp_reuse_try - before connecting to the address in c->up_*: a kept
 * connection for it and these rules, if any, becomes c->up and the
 * client gets its greeting and the relay (true); false: connect.
 */
bool tp_reuse_try(struct tp_conn *c);
/*
 * tp_reuse_quit - the client said QUIT (sent up as RSET): its RSET got
 * 250 and the connection is idle: keep it; otherwise close it.  The
 * client gets 221 either way, then the session ends.
 */
void tp_reuse_quit(struct tp_conn *c);
/*
 * Gateways: tp_reuse_gw_take - before reaching domain under policy (its
 * tp_dest_policy): a kept connection becomes c->up (c->up_host, up_ip,
 * up_port set, *caps what it offers); tp_reuse_gw_ready - a new upstream
 * is ready: start its record; tp_reuse_gw_park - the engine's
 * TP_GW_PARK: 0 kept (c->up is a fresh endpoint), or -1.
 */
bool tp_reuse_gw_take(
    struct tp_conn *c, const char *domain, const void *policy, unsigned *caps);
void tp_reuse_gw_ready(struct tp_conn *c);
int tp_reuse_gw_park(
    struct tp_conn *c, const char *domain, const void *policy, unsigned caps);

#endif
