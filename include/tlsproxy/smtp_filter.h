/*
 * smtp_filter.h - the SMTP tracker every relay runs (spec 4.2.5, 4.4.3,
 * 4.6, 5).  It follows the command/reply state - DATA after its 354, BDAT
 * chunks - so message content is never taken for a command, and from it:
 * STARTTLS is removed from every EHLO reply the client sees and a STARTTLS
 * command is answered by the proxy, never forwarded; on server routes
 * XCLIENT/XFORWARD/PIPECONNECT likewise; and the relay learns what is
 * outstanding (may a half-close go on?), whether the client stands at a
 * reply boundary (may a reply of the proxy's own go in?) and what was in
 * progress, in Postfix's words, for a 421 when the server is lost.  Pure.
 */
#ifndef TLSPROXY_SMTP_FILTER_H
#define TLSPROXY_SMTP_FILTER_H

#include <stdbool.h>
#include <stddef.h>

/* Output: returns 0, or -1 to stop (out of memory). */
typedef int (*tp_filter_emit)(void *arg, const char *data, size_t len);

#define TP_FILTER_QUEUE    64   /* commands awaiting replies */
#define TP_FILTER_EHLO_MAX 1024 /* an EHLO reply line kept for rewriting */

/* tp_filter_init flags */
#define TP_FILTER_GREETING 0x1 /* the server's greeting comes through */
#define TP_FILTER_SERVER   0x2 /* a server route: the client is untrusted */
/*
 * Connection reuse (spec 4.7): the client's QUIT goes to the server as
 * RSET, whose reply the client never sees (tp_filter_reuse says what it
 * was); whatever the client sends after its QUIT is dropped.
 */
#define TP_FILTER_REUSE    0x4

/* tp_filter_server: the server broke SMTP (f->why). */
#define TP_FILTER_EPROTO (-2)

struct tp_filter {
	const char *starttls_reply; /* e.g. "454 4.7.0 TLS not available" */
	unsigned flags;
	const char *why; /* TP_FILTER_EPROTO: what the server did */
	/* client -> server */
	int cstate;
	char cbuf[128];
	size_t clen;
	bool cpass; /* rest of this command line passes through */
	int bstate; /* end-of-data detector */
	unsigned long long bdat_left;
	const char *answer; /* our reply, once earlier replies are in */
	/* commands awaiting replies, oldest first */
	unsigned char q[TP_FILTER_QUEUE];
	unsigned qhead, qlen;
	/* server -> client */
	char rbuf[4];
	size_t rlen;
	size_t rlinelen; /* octets of the current reply line */
	unsigned rlines; /* lines of the current reply */
	bool rmid;       /* inside a reply line, passing through */
	bool rfinal;     /* the current line ends its reply */
	bool rcont;      /* the last whole line did not end its reply */
	bool bye;        /* the last reply was a 221 or a 421 */
	int rcode;
	/* An EHLO reply is rewritten line by line: the current line (ebuf)
	 * and the last kept one (hbuf), held back in case the next, final
	 * line is a keyword to remove, which makes it the last. */
	char *ebuf; /* TP_FILTER_EHLO_MAX octets, only while an EHLO */
	size_t elen;
	char *hbuf; /* reply is rewritten: one allocation for both */
	size_t hlen;
	bool held;
	bool ebuffering; /* inside an EHLO reply */
	bool efirst;     /* the current line is the reply's first */
	bool epass;      /* the current line is too long to keep */
	bool chunking;   /* the last EHLO reply offered CHUNKING */
	/* connection reuse */
	bool swallow;            /* the current reply is the RSET's: dropped */
	bool quit;               /* the client sent QUIT (TP_FILTER_REUSE) */
	bool personal;           /* AUTH, XCLIENT or XFORWARD: never reused */
	int reuse;               /* tp_filter_reuse */
	bool replay;             /* tp_filter_replay: the first command */
	const char *replay_ehlo; /* ... is answered: our EHLO reply */
	const char *replay_helo; /* ... and HELO reply */
	bool replay_chunking;    /* the replayed EHLO reply has CHUNKING */
};

/* tp_filter_init - a filter that is new (or freed). */
void tp_filter_init(
    struct tp_filter *f, const char *starttls_reply, unsigned flags);
/* tp_filter_free - what the filter holds (an EHLO reply being rewritten). */
void tp_filter_free(struct tp_filter *f);
/*
 * tp_filter_client - filter client bytes: forwards with to_server, answers
 * STARTTLS (and on server routes XCLIENT, XFORWARD) with to_client.
 * Returns the bytes consumed; fewer than len means the filter waits for
 * server replies (tp_filter_server resumes it).  Returns (size_t)-1 when
 * an emit failed.
 */
size_t tp_filter_client(struct tp_filter *f, const char *data, size_t len,
    tp_filter_emit to_server, tp_filter_emit to_client, void *arg);
/*
 * tp_filter_server - filter server bytes (all consumed); sets *resume when
 * client input held back may go on.  Returns 0, -1 when an emit failed, or
 * TP_FILTER_EPROTO when a reply line passed 2048 octets or a reply 100
 * lines (spec 4.2.4): the session cannot go on.
 */
int tp_filter_server(struct tp_filter *f, const char *data, size_t len,
    tp_filter_emit to_client, void *arg, bool *resume);
/* tp_filter_waiting - the client waits for a reply from the server. */
bool tp_filter_waiting(const struct tp_filter *f);
/*
 * tp_filter_boundary - no reply stands half relayed to the client, so a
 * whole reply of the proxy's own may go in.
 */
bool tp_filter_boundary(const struct tp_filter *f);
/*
 * tp_filter_phase - what the session was doing, in Postfix's words
 * ("sending RCPT TO", "sending message body"), or NULL when it was idle.
 */
const char *tp_filter_phase(const struct tp_filter *f);
/* tp_filter_end_of_data - the client waits for the reply to a message. */
bool tp_filter_end_of_data(const struct tp_filter *f);
/* tp_filter_bye - the server's last reply said it closes (221, 421). */
bool tp_filter_bye(const struct tp_filter *f);
/*
 * tp_filter_reuse - under TP_FILTER_REUSE, after the client's QUIT: 0 the
 * RSET's reply is not in yet (or there was no QUIT), 1 it was 250 and the
 * server said nothing more (the connection may be reused), -1 anything
 * else, or the client sent AUTH, XCLIENT or XFORWARD (RSET keeps what
 * they set: never for another client).  The client is owed its 221, which the
 * filter does not write.
 */
int tp_filter_reuse(const struct tp_filter *f);
/*
 * tp_filter_replay - a reused connection (spec 4.7): the server has had
 * its greeting and EHLO, so the client's first EHLO is answered with
 * ehlo and a first HELO with helo (each whole replies without the last
 * CRLF, as the client of the connection's first session saw them;
 * chunking: ehlo offers CHUNKING); any other first command goes through.
 * The strings must outlive the filter's use of them.
 */
void tp_filter_replay(
    struct tp_filter *f, const char *ehlo, const char *helo, bool chunking);
/*
 * tp_filter_replying - what the reply now being passed to the client
 * answers: TP_FILTER_R_GREETING, TP_FILTER_R_EHLO (a 250 to EHLO, as
 * rewritten), TP_FILTER_R_HELO, or 0; for keeping them (connection
 * reuse).
 */
#define TP_FILTER_R_GREETING 1
#define TP_FILTER_R_EHLO     2
#define TP_FILTER_R_HELO     3 /* a 250 to HELO */
int tp_filter_replying(const struct tp_filter *f);

#endif
