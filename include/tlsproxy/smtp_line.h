/*
 * smtp_line.h - bounded CRLF line reader and strict SMTP reply parser.
 * Pure (no I/O, no allocation): the SMTP dialogues and filters build on it
 * and the unit tests and fuzzers drive it directly.
 */
#ifndef TLSPROXY_SMTP_LINE_H
#define TLSPROXY_SMTP_LINE_H

#include <stdbool.h>
#include <stddef.h>

#define TP_LINE_MAX 2048 /* longest line any reader keeps */

enum tp_line_rc {
	TP_LINE_MORE = 0,    /* all input used, no complete line yet */
	TP_LINE_OK = 1,      /* a line is ready in lr->buf (no CRLF) */
	TP_LINE_TOOLONG = 2, /* a line passed max; the rest up to LF goes */
};

struct tp_linereader {
	size_t max;    /* longest line kept, without CRLF (<= TP_LINE_MAX) */
	size_t len;    /* bytes in buf */
	bool skipping; /* discarding an over-long line up to its LF */
	bool ready;    /* buf holds a complete line not yet taken */
	char buf[TP_LINE_MAX + 2]; /* the line, its CR, a NUL */
};

void tp_line_init(struct tp_linereader *lr, size_t max);
/*
 * tp_line_feed - consume input bytes (data, len) until a line is complete
 * or one passes max.  The line (without CR LF, NUL-terminated) stays in
 * lr->buf / lr->len until the next call.  Bare LF ends a line too.  A
 * line is too long once it has max + 1 octets before its CR LF (or bare
 * LF): TP_LINE_TOOLONG comes right after the octet that shows it, not at
 * the line's end; later calls drop the rest of that line up to and
 * including its LF without reporting it again, then read on.
 */
enum tp_line_rc tp_line_feed(
    struct tp_linereader *lr, const char **data, size_t *len);

/* One SMTP reply, possibly multi-line. */
struct tp_reply {
	int code; /* 200..599, 0 before the first line */
	unsigned nlines;
	bool done;                   /* the last line has been seen */
	bool starttls;               /* an EHLO keyword line says STARTTLS */
	char first[TP_LINE_MAX + 1]; /* the first line's text after the code */
};

#define TP_REPLY_MAX_LINES 100

void tp_reply_init(struct tp_reply *r);
/*
 * tp_reply_line - add one reply line.  Returns 1 when the reply is
 * complete, 0 when more lines follow, -1 on a protocol error (*why).
 */
int tp_reply_line(
    struct tp_reply *r, const char *line, size_t len, const char **why);
/* tp_smtp_printable - every byte is printable ASCII or TAB. */
bool tp_smtp_printable(const char *s, size_t len);
/*
 * tp_smtp_verb - is line the command verb (case-insensitive), alone or
 * followed by a space?  *arg points after the verb's spaces (or at "").
 */
bool tp_smtp_verb(const char *line, const char *verb, const char **arg);

/* End-of-data detector states (RFC 5321 4.1.1.4); a body starts at a line. */
enum tp_body_state {
	TP_BODY_LINESTART = 0,
	TP_BODY_DOT,   /* "." at the start of a line */
	TP_BODY_DOTCR, /* ".\r" at the start of a line */
	TP_BODY_MID,   /* inside a line */
};
/*
 * tp_body_scan - look for the end-of-data line ("." alone, ended by CR LF
 * or a bare LF) in the next bytes of a message body; *state carries the
 * scan across calls.  Returns the length up to and including that line's
 * LF, or 0 when data does not hold it.
 */
size_t tp_body_scan(int *state, const char *data, size_t len);

#endif
