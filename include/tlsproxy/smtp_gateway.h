/*
 * smtp_gateway.h - the outbound gateway's SMTP engine (spec 4.9), sans
 * I/O: the local MTA's commands in, the gateway's replies and the
 * upstream's commands out, every reply to the MTA in the order of its
 * commands (pipelining), whether it is the gateway's own or the
 * upstream's.  One per gateway session; the event layer (gateway.c) owns
 * the sockets, DNS, TLS and timers and drives this through the calls
 * below.  Pure: no I/O, no allocation.
 *
 * The engine answers greeting, EHLO/HELO, MAIL (after a syntax check),
 * RSET, NOOP, HELP, VRFY, QUIT and everything it does not offer itself.
 * The first RCPT of a transaction asks for an upstream session to the
 * recipient's domain (TP_GW_CONNECT) unless an idle one to that domain is
 * open; once it is up and has answered EHLO (tp_gw_up_ready), the engine
 * sends the transaction's MAIL (parameters the upstream did not offer
 * dropped, as Postfix does) and this RCPT, and the upstream's RCPT reply
 * is the MTA's.  While a destination is being reached, no further MTA
 * input is taken.  Later RCPTs to the same domain are relayed; to any
 * other domain: 452 4.5.3, never sent.  DATA is relayed; after its 354
 * the body passes through untouched (TP_GW_BODY spans, no copy) up to
 * its end line, whose reply is relayed.  After the transaction ('.'
 * reply, RSET) the upstream stays open, idle, for another transaction to
 * the same domain; a transaction to another domain first closes it
 * (QUIT, TP_GW_DISCONNECT).
 */
#ifndef TLSPROXY_SMTP_GATEWAY_H
#define TLSPROXY_SMTP_GATEWAY_H

#include <stdbool.h>
#include <stddef.h>

#include "tlsproxy/smtp_line.h"

#define TP_GW_LINE_MAX  2048 /* a command line, without CRLF (Postfix) */
#define TP_GW_QUEUE     64   /* commands awaiting their replies */
#define TP_GW_OUT       8192 /* each output buffer */
#define TP_GW_LOCAL     200  /* one reply of the gateway's own */
#define TP_GW_REPLY_MAX 4096 /* an upstream reply relayed, at most */

struct tp_gw_conf {
	const char *hostname;    /* greeting and EHLO name */
	unsigned long long size; /* SIZE advertised; 0: none */
	const char *helo;        /* the name in our EHLO to upstreams */
};

/* What the engine needs the event layer to do next. */
enum tp_gw_event {
	TP_GW_NONE = 0,   /* send down_out and up_out; feed more input */
	TP_GW_CONNECT,    /* open an upstream session to g->domain, then
			     tp_gw_up_ready() or tp_gw_up_failed() */
	TP_GW_DISCONNECT, /* close the upstream session once up_out (a
			     QUIT, if it was up) is written; then go on */
	TP_GW_CLOSE,      /* send down_out, then end the session (QUIT,
			     too many errors); the upstream goes too */
};

/* Upstream extensions the engine adapts MAIL/RCPT parameters to. */
#define TP_GW_UP_8BITMIME 0x01
#define TP_GW_UP_SMTPUTF8 0x02
#define TP_GW_UP_SIZE     0x04
#define TP_GW_UP_DSN      0x08
#define TP_GW_UP_PIPE     0x10

/*
 * One MTA command awaiting its reply.  A reply of the gateway's own waits
 * here behind earlier commands; an upstream reply never needs to: when it
 * comes, every earlier command has its reply (upstream replies come in
 * order, and no MTA input is taken while a destination is being reached),
 * so it goes straight out.
 */
struct tp_gw_slot {
	unsigned char kind; /* what the MTA sent (engine's own codes) */
	bool ready;         /* the reply is in text */
	char text[TP_GW_LOCAL]; /* "250 2.0.0 Ok\r\n" */
};

struct tp_gw {
	const struct tp_gw_conf *conf;
	/* output: bytes for the MTA and for the upstream; the caller
	 * takes them (and sets the lengths to 0) after every call, and
	 * calls tp_gw_client again with the rest of its input as long as
	 * the last call took something (the engine stops taking input
	 * when down_out or up_out is half full) */
	char down_out[TP_GW_OUT];
	size_t down_len;
	char up_out[TP_GW_OUT];
	size_t up_len;
	/* TP_GW_CONNECT: the destination domain (lower case) */
	char domain[256];
	/* the engine's state: private to smtp_gateway.c */
	struct tp_linereader lr; /* MTA commands */
	struct tp_linereader ur; /* upstream replies */
	struct tp_reply ureply;
	struct tp_gw_slot q[TP_GW_QUEUE]; /* MTA commands, oldest first */
	unsigned qhead, qlen;
	unsigned char expect[TP_GW_QUEUE]; /* upstream replies awaited */
	unsigned short expect_slot[TP_GW_QUEUE];
	unsigned ehead, elen;
	int state;          /* greeting, session, waiting, body, closed */
	bool helo_done;
	bool have_mail;     /* a MAIL was accepted (locally) */
	bool mail_sent;     /* ... and sent upstream */
	char mail[TP_GW_LINE_MAX + 3]; /* MAIL FROM command as the MTA wrote */
	char rcpt[TP_GW_LINE_MAX + 3]; /* the RCPT waiting for CONNECT */
	char mail_refusal[512]; /* upstream's non-2xx to MAIL, one line */
	char fixed[256];    /* the transaction's domain, "" if none */
	char up_domain[256]; /* the domain of the open upstream, or "" */
	bool up_open;       /* an upstream session is open and greeted */
	char up_peer[300];  /* its "host[ip]" */
	unsigned up_caps;   /* TP_GW_UP_* of the open upstream */
	unsigned rcpt_ok;   /* RCPTs the upstream accepted (2xx) */
	unsigned errors;    /* bad commands; 10 cost the session */
	unsigned too_long;  /* over-long lines; 3 cost the session */
	int bstate;         /* end-of-data detector in the body */
	bool body_discard;  /* the upstream is gone: eat the body */
};

void tp_gw_init(struct tp_gw *g, const struct tp_gw_conf *conf);
/* tp_gw_greeting - our 220 into down_out. */
void tp_gw_greeting(struct tp_gw *g);
/*
 * tp_gw_client - MTA bytes.  Returns how many it took (fewer than len
 * when it waits for the upstream: a destination being reached, or a
 * DATA whose 354 has not come); *ev says what to do.  In a message body
 * it returns *body > 0: the first *body bytes taken are body bytes the
 * caller passes to the upstream as they are, after up_out (or drops,
 * when the upstream is gone: they still count as taken).
 */
size_t tp_gw_client(struct tp_gw *g, const char *data, size_t len,
    size_t *body, enum tp_gw_event *ev);
/*
 * tp_gw_upstream - upstream bytes (replies); all taken.  A reply goes to
 * the MTA as it comes (at most TP_GW_REPLY_MAX octets of it: later lines
 * are dropped, the last kept one made final).  Returns 0, or -1 when the
 * upstream broke SMTP (a malformed reply, a reply line over 2048 octets,
 * a reply nobody asked for that is not 421; caller: tp_gw_up_lost).
 */
int tp_gw_upstream(
    struct tp_gw *g, const char *data, size_t len, enum tp_gw_event *ev);
/*
 * tp_gw_up_ready - the upstream session to g->domain is connected and
 * secured as its policy wants (peer: "mx.example.com[192.0.2.1]", for
 * replies that name it); the engine sends EHLO (conf->helo; HELO if EHLO
 * is refused) and, once answered, MAIL and the waiting RCPT.  An
 * upstream 421 reaches the MTA as 451 with the same text: it is the
 * upstream that is closing, not the gateway's session with the MTA.
 */
void tp_gw_up_ready(struct tp_gw *g, const char *peer, enum tp_gw_event *ev);
/*
 * tp_gw_up_failed - the destination could not be reached or secured:
 * reply (no CRLF, e.g. "451 4.4.1 Connection refused by ...", or the
 * permanent 556/550 for null MX and a nonexistent domain) answers the
 * waiting RCPT; the domain is not fixed; MTA input goes on.
 */
void tp_gw_up_failed(
    struct tp_gw *g, const char *reply, enum tp_gw_event *ev);
/*
 * tp_gw_up_lost - the open upstream session ended (EOF, reset, timeout,
 * broken SMTP): every command waiting for it gets reply (no CRLF, "451
 * 4.4.2 mx[ip]: Lost connection while sending RCPT TO"; tp_gw_phase says
 * what was in progress), a body in progress is eaten up to its end and
 * its '.' gets reply too; the transaction is over, the MTA's session
 * goes on without an upstream.  An upstream that closes with no command
 * waiting is just gone.
 */
void tp_gw_up_lost(struct tp_gw *g, const char *reply, enum tp_gw_event *ev);
/* tp_gw_phase - what the upstream was doing, Postfix's words, or NULL. */
const char *tp_gw_phase(const struct tp_gw *g);
/* tp_gw_idle - no command waits for anything (a safe point to close). */
bool tp_gw_idle(const struct tp_gw *g);

#endif
