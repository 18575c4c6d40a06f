/*
 * smtp_client.h - client-mode STARTTLS negotiator (spec 4.2): read the
 * upstream's greeting, send EHLO, find STARTTLS, send it, expect 220, and
 * decide what the session does next.  Sans-I/O: bytes in, commands and
 * decisions out.  Pure; one per session while it negotiates.
 */
#ifndef TLSPROXY_SMTP_CLIENT_H
#define TLSPROXY_SMTP_CLIENT_H

#include <stdbool.h>
#include <stddef.h>

#include "tlsproxy/smtp_line.h"

enum tp_smtpc_action {
	TP_SMTPC_MORE = 0,  /* all input used; wait for more */
	TP_SMTPC_SEND,      /* send s->out upstream, then wait for more */
	TP_SMTPC_STARTTLS,  /* 220 to STARTTLS: begin the TLS handshake */
	TP_SMTPC_PLAINTEXT, /* no TLS and the level allows it: relay */
	TP_SMTPC_REFUSED, /* greeting was not 220: s->out goes to the client */
	TP_SMTPC_FAIL,    /* s->out is the 421 line for the local client */
};

enum tp_smtpc_state {
	TP_SMTPC_GREETING = 0,
	TP_SMTPC_EHLO,
	TP_SMTPC_STARTTLS_SENT,
	TP_SMTPC_DONE,
};

struct tp_smtpc {
	enum tp_smtpc_state state;
	bool may;        /* plaintext allowed (security = may) */
	bool plain_only; /* the retry in plaintext: greeting only */
	char helo[256];
	char peer[320]; /* "host[ip]" for messages */
	struct tp_linereader lr;
	struct tp_reply reply;
	char greeting[512]; /* "220 text" to replay, no CRLF */
	char out[600];      /* the command or reply to send, with CRLF */
	size_t outlen;
};

void tp_smtpc_init(struct tp_smtpc *s, const char *helo, bool may,
    const char *host, const char *ip);
/* tp_smtpc_input - consume upstream bytes; see enum tp_smtpc_action. */
enum tp_smtpc_action tp_smtpc_input(
    struct tp_smtpc *s, const char **data, size_t *len);
/* tp_smtpc_phase - "receiving the initial server greeting" etc. */
const char *tp_smtpc_phase(const struct tp_smtpc *s);
/* tp_smtpc_fail_lost / _timeout - the 421 for a lost or silent server. */
void tp_smtpc_fail_lost(struct tp_smtpc *s);
void tp_smtpc_fail_timeout(struct tp_smtpc *s);

#endif
