/*
 * smtp_server.h - server-mode pre-TLS dialogue, postscreen-style (spec
 * 4.4): the proxy's own greeting and EHLO reply, HELO/NOOP/RSET/HELP/QUIT,
 * STARTTLS, 530 at encrypt, 550 to XCLIENT/XFORWARD (spec 5), the switch
 * to a plaintext relay at may; and the backend's side: consume its
 * greeting, replay the client's HELO/EHLO.  Sans-I/O; pure.
 */
#ifndef TLSPROXY_SMTP_SERVER_H
#define TLSPROXY_SMTP_SERVER_H

#include <stdbool.h>
#include <stddef.h>

#include "tlsproxy/smtp_line.h"

#define TP_SMTPS_LINE_MAX 512 /* RFC 5321 4.5.3.1.4, with CRLF: 510 + 2 */

struct tp_smtps_conf {
	const char *hostname;
	const char *banner;      /* text after "220 " */
	unsigned long long size; /* configured SIZE, 0 = the backend's */
	bool encrypt;            /* TLS required before anything else */
	bool auth_only;          /* no AUTH before TLS */
};

enum tp_smtps_action {
	TP_SMTPS_MORE = 0,  /* send s->out (if any); feed more input */
	TP_SMTPS_STARTTLS,  /* send s->out (220); then discard all input, TLS */
	TP_SMTPS_PLAINTEXT, /* send s->out; go plaintext: see s->helo, pending
			     */
	TP_SMTPS_CLOSE,     /* send s->out, then close */
};

struct tp_smtps {
	const struct tp_smtps_conf *conf;
	struct tp_linereader lr;
	unsigned too_long;
	unsigned errors;
	char helo[TP_SMTPS_LINE_MAX + 2];    /* last HELO/EHLO line, CRLF */
	char pending[TP_SMTPS_LINE_MAX + 2]; /* the command that went plain */
	char caps[1024]; /* the backend's EHLO keywords, one per line, or "" */
	char out[8192];
	size_t outlen;
};

/*
 * tp_smtps_init - caps: the backend's EHLO keyword lines ("PIPELINING\n
 * SIZE 10240000\n..."), or NULL when unknown.
 */
void tp_smtps_init(
    struct tp_smtps *s, const struct tp_smtps_conf *conf, const char *caps);
/*
 * tp_smtps_caps_from_reply - keyword lines of an EHLO reply (without the
 * first line) into caps; "" on a non-250 reply.
 */
void tp_smtps_caps_add(
    char *caps, size_t len, const char *line, size_t linelen);
/* tp_smtps_greeting - put the 220 greeting in s->out. */
void tp_smtps_greeting(struct tp_smtps *s);
/*
 * tp_smtps_input - consume client bytes, answering each command into
 * s->out.  Returns with input left over when s->out is nearly full: send
 * it and call again.
 */
enum tp_smtps_action tp_smtps_input(
    struct tp_smtps *s, const char **data, size_t *len);

/* Backend side: greeting, then the optional HELO/EHLO replay. */
enum tp_smtpb_action {
	TP_SMTPB_MORE = 0,
	TP_SMTPB_SEND,    /* send b->out to the backend, wait for its reply */
	TP_SMTPB_READY,   /* start relaying */
	TP_SMTPB_REFUSED, /* backend greeting not 2xx: b->out to the client */
	TP_SMTPB_FAIL,    /* protocol error (why in b->out) */
};

struct tp_smtpb {
	int state;          /* 0 greeting, 1 replay reply */
	const char *replay; /* HELO/EHLO line with CRLF, or NULL */
	struct tp_linereader lr;
	struct tp_reply reply;
	char out[600];
	size_t outlen;
};

void tp_smtpb_init(struct tp_smtpb *b, const char *replay);
enum tp_smtpb_action tp_smtpb_input(
    struct tp_smtpb *b, const char **data, size_t *len);

#endif
