/*
 * smtp_line.c - bounded line reader and strict reply parser (RFC 5321
 * 4.2, 4.5.3.1).  A line never grows past its maximum: an over-long line
 * is reported once, as soon as it passes the maximum, and the rest of it
 * is discarded up to its LF.  Replies must be [2-5][0-9][0-9] followed by
 * SP, '-' or the end of the line, with printable text, one code for every
 * line of a multi-line reply, and at most TP_REPLY_MAX_LINES lines
 * (OpenSMTPD's rules).  The end-of-data detector for message bodies is
 * here too, shared by the tunnel filter and the gateway engine.  Pure.
 */
#include "tlsproxy/smtp_line.h"

#include <ctype.h>
#include <string.h>

void
tp_line_init(struct tp_linereader *lr, size_t max)
{
	lr->max = max > TP_LINE_MAX ? TP_LINE_MAX : max;
	lr->len = 0;
	lr->skipping = false;
	lr->ready = false;
	lr->buf[0] = '\0';
}

/*
 * tp_line_feed - see smtp_line.h.  The buffer holds at most max octets
 * and one CR that may still turn out to end the line.  The first octet
 * that makes the line longer than max whatever follows (position max
 * unless that is a CR, then position max + 1) is consumed and reported
 * at once (spec 5: act as soon as the limit is passed, never wait for
 * the end of a line that may never come); the rest up to and including
 * its LF is then dropped silently.
 */
enum tp_line_rc
tp_line_feed(struct tp_linereader *lr, const char **data, size_t *len)
{
	const char *lf;
	size_t n, at;

	if (lr->ready) {
		lr->ready = false;
		lr->len = 0;
	}
	while (*len > 0) {
		lf = memchr(*data, '\n', *len);
		if (lr->skipping) {
			n = lf ? (size_t)(lf - *data) + 1 : *len;
			*data += n;
			*len -= n;
			if (lf != NULL)
				lr->skipping = false;
			continue;
		}
		n = lf ? (size_t)(lf - *data) : *len;
		if (lr->len <= lr->max) {
			at = lr->max - lr->len;
			if (at < n && (*data)[at] == '\r')
				at++;
		} else {
			at = 0; /* max octets and a CR are kept: no more fit */
		}
		if (at < n) {
			*data += at + 1;
			*len -= at + 1;
			lr->skipping = true;
			lr->len = 0;
			lr->buf[0] = '\0';
			return TP_LINE_TOOLONG;
		}
		memcpy(lr->buf + lr->len, *data, n);
		lr->len += n;
		*data += lf ? n + 1 : n;
		*len -= lf ? n + 1 : n;
		if (lf == NULL)
			break;
		if (lr->len > 0 && lr->buf[lr->len - 1] == '\r')
			lr->len--;
		lr->buf[lr->len] = '\0';
		lr->ready = true;
		return TP_LINE_OK;
	}
	return TP_LINE_MORE;
}

bool
tp_smtp_printable(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if ((c < 0x20 && c != '\t') || c >= 0x7f)
			return false;
	}
	return true;
}

void
tp_reply_init(struct tp_reply *r)
{
	memset(r, 0, sizeof(*r));
}

int
tp_reply_line(
    struct tp_reply *r, const char *line, size_t len, const char **why)
{
	const char *text;
	size_t tl;
	int code;

	if (r->done)
		tp_reply_init(r);
	if (len < 3 || line[0] < '2' || line[0] > '5' ||
	    !isdigit((unsigned char)line[1]) ||
	    !isdigit((unsigned char)line[2]) ||
	    (len > 3 && line[3] != ' ' && line[3] != '-')) {
		*why = "malformed reply";
		return -1;
	}
	if (!tp_smtp_printable(line, len)) {
		*why = "non-printable text in reply";
		return -1;
	}
	code = (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0');
	if (r->nlines > 0 && code != r->code) {
		*why = "reply code changes within a multi-line reply";
		return -1;
	}
	if (++r->nlines > TP_REPLY_MAX_LINES) {
		*why = "too many reply lines";
		return -1;
	}
	r->code = code;
	text = len > 4 ? line + 4 : "";
	tl = len > 4 ? len - 4 : 0;
	if (r->nlines == 1) {
		memcpy(r->first, text, tl);
		r->first[tl] = '\0';
	} else if (tl >= 8 && strncasecmp(text, "STARTTLS", 8) == 0 &&
	    (tl == 8 || text[8] == ' ')) {
		r->starttls = true;
	}
	r->done = len == 3 || line[3] == ' ';
	return r->done ? 1 : 0;
}

bool
tp_smtp_verb(const char *line, const char *verb, const char **arg)
{
	size_t n = strlen(verb);

	if (strncasecmp(line, verb, n) != 0 ||
	    (line[n] != '\0' && line[n] != ' '))
		return false;
	line += n;
	while (*line == ' ')
		line++;
	*arg = line;
	return true;
}

size_t
tp_body_scan(int *state, const char *data, size_t len)
{
	size_t i = 0;
	const char *lf;

	while (i < len) {
		switch (*state) {
		case TP_BODY_MID:
			lf = memchr(data + i, '\n', len - i);
			if (lf == NULL)
				return 0;
			i = (size_t)(lf - data) + 1;
			*state = TP_BODY_LINESTART;
			break;
		case TP_BODY_LINESTART:
			*state = data[i] == '.' ? TP_BODY_DOT
			    : data[i] == '\n'   ? TP_BODY_LINESTART
						: TP_BODY_MID;
			i++;
			break;
		case TP_BODY_DOT:
			if (data[i] == '\n')
				return i + 1;
			*state = data[i] == '\r' ? TP_BODY_DOTCR : TP_BODY_MID;
			i++;
			break;
		case TP_BODY_DOTCR:
			if (data[i] == '\n')
				return i + 1;
			*state = TP_BODY_MID;
			break;
		default:
			*state = TP_BODY_MID;
			break;
		}
	}
	return 0;
}
