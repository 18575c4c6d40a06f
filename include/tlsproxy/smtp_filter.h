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
	char ebuf[TP_FILTER_EHLO_MAX];
	size_t elen;
	char hbuf[TP_FILTER_EHLO_MAX];
	size_t hlen;
	bool held;
	bool ebuffering; /* inside an EHLO reply */
	bool efirst;     /* the current line is the reply's first */
	bool epass;      /* the current line is too long to keep */
	bool chunking;   /* the last EHLO reply offered CHUNKING */
};

void tp_filter_init(
    struct tp_filter *f, const char *starttls_reply, unsigned flags);
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

#endif
