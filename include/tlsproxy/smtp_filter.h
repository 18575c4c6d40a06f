/*
 * smtp_filter.h - in-tunnel SMTP rules for STARTTLS routes (spec 4.2.5,
 * 4.4.3): STARTTLS is removed from every EHLO reply the client sees and a
 * STARTTLS command from the client is answered by the proxy, never
 * forwarded.  It follows the command/reply state - DATA after its 354,
 * BDAT chunks - so message content is never taken for a command.  Pure.
 */
#ifndef TLSPROXY_SMTP_FILTER_H
#define TLSPROXY_SMTP_FILTER_H

#include <stdbool.h>
#include <stddef.h>

/* Output: returns 0, or -1 to stop (out of memory). */
typedef int (*tp_filter_emit)(void *arg, const char *data, size_t len);

#define TP_FILTER_QUEUE    64   /* commands awaiting replies */
#define TP_FILTER_EHLO_MAX 1024 /* an EHLO reply line kept for rewriting */

struct tp_filter {
	const char *starttls_reply; /* e.g. "454 4.7.0 TLS not available" */
	/* client -> server */
	int cstate;
	char cbuf[128];
	size_t clen;
	bool cpass; /* rest of this command line passes through */
	int bstate; /* end-of-data detector */
	unsigned long long bdat_left;
	bool hold_starttls; /* answer STARTTLS once replies are in */
	/* commands awaiting replies, oldest first */
	unsigned char q[TP_FILTER_QUEUE];
	unsigned qhead, qlen;
	/* server -> client */
	char rbuf[4];
	size_t rlen;
	bool rmid;   /* inside a reply line, passing through */
	bool rfinal; /* the current line ends its reply */
	int rcode;
	/* An EHLO reply is rewritten line by line: the current line (ebuf)
	 * and the last kept one (hbuf), held back in case the next, final
	 * line is a STARTTLS line to remove, which makes it the last. */
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

void tp_filter_init(struct tp_filter *f, const char *starttls_reply);
/*
 * tp_filter_client - filter client bytes: forwards with to_server, answers
 * STARTTLS with to_client.  Returns the bytes consumed; fewer than len
 * means the filter waits for server replies (tp_filter_server resumes it).
 * Returns (size_t)-1 when an emit failed.
 */
size_t tp_filter_client(struct tp_filter *f, const char *data, size_t len,
    tp_filter_emit to_server, tp_filter_emit to_client, void *arg);
/*
 * tp_filter_server - filter server bytes (all consumed); sets *resume when
 * client input held back may go on.  Returns 0, or -1 when an emit failed.
 */
int tp_filter_server(struct tp_filter *f, const char *data, size_t len,
    tp_filter_emit to_client, void *arg, bool *resume);

#endif
