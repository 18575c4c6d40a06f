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
 * the body passes through untouched (body spans, no copy) up to its end
 * line, whose reply is relayed.  After the transaction ('.' reply, RSET)
 * the upstream stays open, idle, for another transaction to the same
 * domain; a transaction to another domain first closes it (QUIT,
 * TP_GW_DISCONNECT), once it has answered everything sent to it.
 *
 * MTA input also waits while the upstream owes a reply and no domain is
 * fixed (after '.', RSET: the next RCPT may need another upstream), and
 * for each reply of an upstream without PIPELINING.  Failures are never
 * permanent by accident (spec 4.6): an upstream lost (or saying 421) in a
 * transaction it took part in answers the transaction's later RCPTs and
 * DATA with the lost reply, a 4xx, until the transaction ends (RSET,
 * HELO/EHLO).
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
	bool reuse; /* an upstream done with gets RSET, then TP_GW_PARK */
};

/* What the engine needs the event layer to do next. */
enum tp_gw_event {
	TP_GW_NONE = 0,   /* send down_out and up_out; feed more input */
	TP_GW_CONNECT,    /* open an upstream session to g->domain, then
			     tp_gw_up_ready() or tp_gw_up_failed() */
	TP_GW_DISCONNECT, /* close the upstream session once up_out (a
			     QUIT, if it was up) is written; then go on:
			     from tp_gw_client, call it again even with
			     no input left (it may hold the RCPT) */
	TP_GW_CLOSE,      /* send down_out, then end the session (QUIT,
			     too many errors); the upstream goes too,
			     unless tp_gw_parking() */
	TP_GW_PARK,       /* conf->reuse: the upstream answered the RSET
			     that ended its use with 250: keep it idle
			     for a later session to the same domain
			     (g->parked_caps: what it offers; see
			     tp_gw_up_reused); the engine counts it gone.
			     Then go on as after DISCONNECT, and end the
			     session if g->closed */
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
	unsigned char kind;     /* what the MTA sent (engine's own codes) */
	bool ready;             /* the reply is in text */
	unsigned short len;     /* down_out room kept for it */
	char text[TP_GW_LOCAL]; /* "250 2.0.0 Ok\r\n" */
};

#define TP_GW_EXPECT (TP_GW_QUEUE + 4) /* upstream replies awaited */

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
	int state;   /* commands, connect, EHLO, DATA, body, closed */
	int ev;      /* the event this call returns */
	bool closed; /* the session's last reply is in down_out */
	bool held;   /* lr.buf holds a command for the next call */
	bool helo_done;
	unsigned errors;         /* bad commands; 10 cost the session */
	unsigned too_long;       /* over-long lines; 3 cost the session */
	struct tp_linereader lr; /* MTA commands */
	struct tp_gw_slot q[TP_GW_QUEUE]; /* MTA commands, oldest first */
	unsigned qhead, qlen;
	size_t reserved; /* down_out room kept for the queued replies */
	/* the MTA's transaction */
	bool have_mail;                /* a MAIL was accepted (locally) */
	bool mail_sent;                /* ... and sent upstream */
	bool mail_utf8;                /* it has SMTPUTF8 */
	bool mail_8bit;                /* its sender has a non-ASCII octet */
	unsigned short txn;            /* counts MAILs accepted */
	unsigned rcpt_ok;              /* RCPTs the upstream accepted (2xx) */
	char mail[TP_GW_LINE_MAX + 1]; /* MAIL FROM as the MTA wrote it */
	char rcpt[TP_GW_LINE_MAX + 1]; /* the RCPT waiting for CONNECT */
	bool rcpt_8bit;                /* ... has a non-ASCII octet */
	bool rcpt_held; /* ... goes after MAIL's reply (no PIPELINING) */
	char mail_refusal[TP_GW_LOCAL]; /* the reply to every later RCPT */
	char fixed[256];   /* the transaction's domain, "" if none */
	int bstate;        /* end-of-data detector in the body */
	bool body_discard; /* the upstream is gone: eat the body */
	/* the upstream */
	bool up_open;            /* an upstream session is open and greeted */
	bool parking;            /* its RSET before TP_GW_PARK is out */
	unsigned parked_caps;    /* TP_GW_PARK: the parked one's TP_GW_UP_* */
	char up_domain[256];     /* the domain of the open upstream, or "" */
	char up_peer[300];       /* its "host[ip]" */
	unsigned up_caps;        /* TP_GW_UP_* of the open upstream */
	struct tp_linereader ur; /* upstream replies */
	struct tp_reply ureply;
	unsigned char expect[TP_GW_EXPECT]; /* upstream replies awaited */
	unsigned short etxn[TP_GW_EXPECT];  /* ... for which transaction */
	unsigned ehead, elen;
	char up_refusal[TP_GW_LOCAL]; /* upstream's non-2xx to its MAIL */
	char rbuf[TP_GW_REPLY_MAX];   /* the upstream reply being read */
	size_t rlen, rlast;           /* its length, its last line */
	bool rfull;                   /* later lines are dropped */
	unsigned cut; /* replies cut short for room in down_out */
};

void tp_gw_init(struct tp_gw *g, const struct tp_gw_conf *conf);
/* tp_gw_greeting - our 220 into down_out. */
void tp_gw_greeting(struct tp_gw *g);
/*
 * tp_gw_client - MTA bytes.  Returns how many it took (fewer than len
 * when it waits for the upstream: a destination being reached, a DATA
 * whose 354 has not come, a reply owed as above; or for room in
 * down_out/up_out; or after TP_GW_DISCONNECT, whose RCPT is not taken
 * when it began in this call); *ev says what to do.  In a message body
 * it returns *body > 0: the first *body bytes taken are body bytes the
 * caller passes to the upstream as they are, after up_out (or drops,
 * when the upstream is gone: they still count as taken).  A call that
 * ends a body takes nothing after its end line.  Call again after any
 * upstream event that may have freed it (tp_gw_upstream, up_ready,
 * up_failed, up_lost) while MTA input is left.
 */
size_t tp_gw_client(struct tp_gw *g, const char *data, size_t len, size_t *body,
    enum tp_gw_event *ev);
/*
 * tp_gw_upstream - upstream bytes (replies); all taken.  A reply goes to
 * the MTA as it comes (at most TP_GW_REPLY_MAX octets of it: later lines
 * are dropped, the last kept one made final; less when many replies
 * come in one call and down_out is short of room).  Returns 0, or -1
 * when the upstream broke SMTP (a malformed reply, a reply line over 2048
 * octets, a reply nobody asked for that is not 421; caller:
 * tp_gw_up_lost).  *ev: TP_GW_DISCONNECT when the upstream said 421 or
 * refused HELO (the engine already counts it gone; bytes from it are
 * ignored from then on), TP_GW_CLOSE when the MTA's last reply (221,
 * 421) went out with this call.
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
 * tp_gw_up_reused - the destination's session is one kept after
 * TP_GW_PARK (caps: its parked_caps then): no EHLO; MAIL and the waiting
 * RCPT go at once.
 */
void tp_gw_up_reused(
    struct tp_gw *g, const char *peer, unsigned caps, enum tp_gw_event *ev);
/* tp_gw_parking - the upstream's last RSET awaits its reply. */
bool tp_gw_parking(const struct tp_gw *g);
/*
 * tp_gw_up_failed - the destination could not be reached or secured:
 * reply (no CRLF, e.g. "451 4.4.1 Connection refused by ...", or the
 * permanent 556/550 for null MX and a nonexistent domain) answers the
 * waiting RCPT; the domain is not fixed; MTA input goes on.
 */
void tp_gw_up_failed(struct tp_gw *g, const char *reply, enum tp_gw_event *ev);
/*
 * tp_gw_up_lost - the open upstream session ended (EOF, reset, timeout,
 * broken SMTP): every command waiting for it gets reply (no CRLF, "451
 * 4.4.2 mx[ip]: Lost connection while sending RCPT TO"; tp_gw_phase says
 * what was in progress), a body in progress is eaten up to its end and
 * its '.' gets reply too; a transaction that reached the upstream is
 * over for it: its later RCPTs and DATA get reply as well (a 503 or 554
 * there would bounce what the upstream had accepted); the MTA's session
 * goes on without an upstream.  An upstream that closes with no command
 * waiting is just gone.  Nothing happens when the engine already counts
 * it gone (after TP_GW_DISCONNECT).
 */
void tp_gw_up_lost(struct tp_gw *g, const char *reply, enum tp_gw_event *ev);
/* tp_gw_phase - what the upstream was doing, Postfix's words, or NULL. */
const char *tp_gw_phase(const struct tp_gw *g);
/* tp_gw_idle - no command waits for anything (a safe point to close). */
bool tp_gw_idle(const struct tp_gw *g);

#endif
