/*
 * tool_ini.c - the INI rewrite behind `tlsproxy tls deploy-server-cert`
 * and `enable-*`: change the values of a few keys of one section and
 * keep every other byte of the file.
 *
 * Lines are classified as inih r55 (Debian's build: ';' and '#' start a
 * comment line, ';' after white space starts an inline comment, '=' or
 * ':' ends the key name, an indented line after a key continues it, a
 * UTF-8 BOM is skipped) reads them, so the key replaced is the key the
 * daemon reads.  A replaced value keeps the line's indentation, the text
 * around '=' and any inline comment; CRLF line ends stay CRLF.  The file
 * is replaced by writing a temporary file in the same directory and
 * rename()-ing it over the original, so a reader sees the old or the new
 * file, never half of one.  Called by tool_tls_route.c (reading) and
 * tool_tls_rewrite.c (the rewrite) on the main thread of the `tls`
 * command; no OpenSSL, no libuv.
 */
#include "tlsproxy/tool_ini.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_FILE (16u << 20) /* a config larger than this is not ours */

enum kind { L_OTHER, L_SECTION, L_KEY, L_CONT };

/* One physical line: content [start, end), line end [end, next). */
struct line {
	size_t start, end, next;
	enum kind kind;
	size_t nb, ne; /* L_SECTION: the name; L_KEY: the key name */
	size_t vb, ve; /* L_KEY: the value as inih passes it */
};

static bool
is_space(char c)
{
	return isspace((unsigned char)c) != 0;
}

/*
 * find_chars_or_comment - inih's scan: the first of CHARS, or a ';' that
 * follows white space, or E.
 */
static size_t
find_chars_or_comment(const char *t, size_t s, size_t e, const char *chars)
{
	bool was_space = false;

	while (s < e && (chars == NULL || strchr(chars, t[s]) == NULL) &&
	    !(was_space && t[s] == ';')) {
		was_space = is_space(t[s]);
		s++;
	}
	return s;
}

/*
 * classify - what inih makes of line L; prev_key says whether a key line
 * came before it in the same section (for continuation lines).
 */
static void
classify(const char *t, struct line *l, bool first, bool prev_key)
{
	size_t s = l->start, e = l->end, p;

	if (first && e - s >= 3 && memcmp(t + s, "\xEF\xBB\xBF", 3) == 0)
		s += 3;
	while (e > s && is_space(t[e - 1]))
		e--;
	while (s < e && is_space(t[s]))
		s++;
	l->kind = L_OTHER;
	if (s == e || t[s] == ';' || t[s] == '#')
		return;
	if (prev_key && s > l->start) {
		l->kind = L_CONT;
		return;
	}
	if (t[s] == '[') {
		p = find_chars_or_comment(t, s + 1, e, "]");
		if (p < e && t[p] == ']') {
			l->kind = L_SECTION;
			l->nb = s + 1;
			l->ne = p;
		}
		return;
	}
	p = find_chars_or_comment(t, s, e, "=:");
	if (p == e || (t[p] != '=' && t[p] != ':'))
		return;
	l->kind = L_KEY;
	l->nb = s;
	l->ne = p;
	while (l->ne > l->nb && is_space(t[l->ne - 1]))
		l->ne--;
	l->ve = find_chars_or_comment(t, p + 1, e, NULL);
	l->vb = p + 1;
	while (l->vb < l->ve && is_space(t[l->vb]))
		l->vb++;
	while (l->ve > l->vb && is_space(t[l->ve - 1]))
		l->ve--;
}

/* split_lines - the lines of TEXT; the last may lack a line end. */
static struct line *
split_lines(const char *t, size_t len, size_t *nlines)
{
	struct line *lines = NULL, *nl;
	size_t n = 0, cap = 0, s = 0;

	while (s < len) {
		const char *nlc = memchr(t + s, '\n', len - s);
		size_t next = nlc ? (size_t)(nlc - t) + 1 : len;
		size_t end = nlc ? (size_t)(nlc - t) : len;

		while (end > s && t[end - 1] == '\r')
			end--;
		if (n == cap) {
			cap = cap ? cap * 2 : 64;
			nl = realloc(lines, cap * sizeof(*lines));
			if (nl == NULL) {
				free(lines);
				return NULL;
			}
			lines = nl;
		}
		memset(&lines[n], 0, sizeof(lines[n]));
		lines[n].start = s;
		lines[n].end = end;
		lines[n].next = next;
		n++;
		s = next;
	}
	*nlines = n;
	if (lines == NULL)
		lines = calloc(1, sizeof(*lines));
	return lines;
}

static bool
span_is(const char *t, size_t b, size_t e, const char *s)
{
	return strlen(s) == e - b && memcmp(t + b, s, e - b) == 0;
}

int
tp_ini_value_ok(const char *value, const char **why)
{
	size_t n = strlen(value);

	if (n == 0) {
		*why = "empty value";
		return -1;
	}
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)value[i];

		if (c < 0x20 || c == 0x7f) {
			*why = "control character in the value";
			return -1;
		}
		if (c == ';' && i > 0 && is_space(value[i - 1])) {
			*why =
			    "\" ;\" in the value would start an inline comment";
			return -1;
		}
	}
	if (is_space(value[0]) || is_space(value[n - 1])) {
		*why = "white space at the start or end of the value";
		return -1;
	}
	return 0;
}

/* key_ok - a name inih reads back as the same key. */
static bool
key_ok(const char *k)
{
	if (*k == '\0' || *k == '[' || *k == ';' || *k == '#')
		return false;
	for (; *k; k++)
		if (is_space(*k) || *k == '=' || *k == ':' ||
		    (unsigned char)*k < 0x20)
			return false;
	return true;
}

/* line_end_after - the line end to give a line added after line L. */
static const char *
line_end_after(const char *t, const struct line *lines, size_t n, size_t l)
{
	if (lines[l].next > lines[l].end)
		return t[lines[l].end] == '\r' ? "\r\n" : "\n";
	/* The last line, without a line end: use the file's style. */
	for (size_t i = 0; i < n; i++)
		if (lines[i].next > lines[i].end)
			return t[lines[i].end] == '\r' ? "\r\n" : "\n";
	return "\n";
}

int
tp_ini_edit(const char *text, size_t len, const char *section,
    const struct tp_ini_set *sets, size_t nsets, char **out, size_t *outlen,
    char *why, size_t whylen)
{
	struct line *lines = NULL;
	size_t nlines = 0;
	long *found = NULL, hdr = -1, last = -1;
	bool in = false, prev_key = false;
	const char *vwhy;
	FILE *f = NULL;
	int rc = -1;

	*out = NULL;
	for (size_t i = 0; i < nsets; i++) {
		if (!key_ok(sets[i].key)) {
			snprintf(
			    why, whylen, "bad key name \"%s\"", sets[i].key);
			return -1;
		}
		if (tp_ini_value_ok(sets[i].value, &vwhy) < 0) {
			snprintf(why, whylen, "%s = %s: %s", sets[i].key,
			    sets[i].value, vwhy);
			return -1;
		}
		for (size_t j = 0; j < i; j++)
			if (strcmp(sets[i].key, sets[j].key) == 0) {
				snprintf(
				    why, whylen, "%s set twice", sets[i].key);
				return -1;
			}
	}
	if ((lines = split_lines(text, len, &nlines)) == NULL ||
	    (found = calloc(nsets + 1, sizeof(*found))) == NULL) {
		snprintf(why, whylen, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < nsets; i++)
		found[i] = -1;

	for (size_t l = 0; l < nlines; l++) {
		struct line *ln = &lines[l];

		classify(text, ln, l == 0, prev_key);
		switch (ln->kind) {
		case L_SECTION:
			prev_key = false;
			in = span_is(text, ln->nb, ln->ne, section);
			if (in && hdr >= 0) {
				snprintf(why, whylen,
				    "section [%s] appears "
				    "twice (lines %ld and %zu)",
				    section, hdr + 1, l + 1);
				goto out;
			}
			if (in)
				hdr = last = (long)l;
			break;
		case L_KEY:
			prev_key = true;
			if (!in)
				break;
			last = (long)l;
			for (size_t i = 0; i < nsets; i++) {
				if (!span_is(text, ln->nb, ln->ne, sets[i].key))
					continue;
				if (found[i] >= 0) {
					snprintf(why, whylen,
					    "%s appears "
					    "twice in [%s] (lines %ld and "
					    "%zu)",
					    sets[i].key, section, found[i] + 1,
					    l + 1);
					goto out;
				}
				found[i] = (long)l;
			}
			break;
		case L_CONT:
			if (in)
				last = (long)l;
			break;
		case L_OTHER:
			break;
		}
	}
	if (hdr < 0) {
		snprintf(why, whylen, "no section [%s]", section);
		goto out;
	}

	if ((f = open_memstream(out, outlen)) == NULL) {
		snprintf(why, whylen, "out of memory");
		goto out;
	}
	for (size_t l = 0; l < nlines; l++) {
		const struct line *ln = &lines[l];
		const char *set = NULL;

		for (size_t i = 0; i < nsets; i++)
			if (found[i] == (long)l)
				set = sets[i].value;
		if (set != NULL) {
			fwrite(text + ln->start, 1, ln->vb - ln->start, f);
			fputs(set, f);
			fwrite(text + ln->ve, 1, ln->next - ln->ve, f);
		} else {
			fwrite(text + ln->start, 1, ln->next - ln->start, f);
		}
		if ((long)l != last)
			continue;
		/* Keys the section lacks go after its last key line. */
		const char *eol = line_end_after(text, lines, nlines, l);
		bool pending = ln->next == ln->end; /* no line end yet */

		for (size_t i = 0; i < nsets; i++) {
			if (found[i] >= 0)
				continue;
			if (pending)
				fputs(eol, f);
			fprintf(f, "%s = %s", sets[i].key, sets[i].value);
			pending = ln->next == ln->end;
			if (!pending)
				fputs(eol, f);
		}
	}
	if (fclose(f) != 0) {
		f = NULL;
		snprintf(why, whylen, "out of memory");
		goto out;
	}
	f = NULL;
	rc = 0;
out:
	if (f != NULL)
		fclose(f);
	if (rc < 0) {
		free(*out);
		*out = NULL;
	}
	free(lines);
	free(found);
	return rc;
}

int
tp_ini_read_file(const char *path, char **text, size_t *len, struct stat *st,
    char *why, size_t whylen)
{
	char *buf = NULL;
	size_t n = 0;
	ssize_t r;
	int fd;

	*text = NULL;
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
		snprintf(why, whylen, "%s", strerror(errno));
		return -1;
	}
	if (fstat(fd, st) < 0) {
		snprintf(why, whylen, "%s", strerror(errno));
		goto fail;
	}
	if (!S_ISREG(st->st_mode)) {
		snprintf(why, whylen, "not a regular file");
		goto fail;
	}
	if ((size_t)st->st_size > MAX_FILE) {
		snprintf(why, whylen, "larger than %u bytes", MAX_FILE);
		goto fail;
	}
	if ((buf = malloc((size_t)st->st_size + 1)) == NULL) {
		snprintf(why, whylen, "out of memory");
		goto fail;
	}
	while (n < (size_t)st->st_size) {
		r = read(fd, buf + n, (size_t)st->st_size - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			snprintf(why, whylen, "%s", strerror(errno));
			goto fail;
		}
		if (r == 0)
			break;
		n += (size_t)r;
	}
	if (n != (size_t)st->st_size) {
		snprintf(why, whylen, "changed while being read");
		goto fail;
	}
	buf[n] = '\0';
	close(fd);
	*text = buf;
	*len = n;
	return 0;
fail:
	free(buf);
	close(fd);
	return -1;
}

/* write_all - LEN bytes of TEXT to FD. */
static int
write_all(int fd, const char *text, size_t len)
{
	while (len > 0) {
		ssize_t w = write(fd, text, len);

		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -1;
		text += w;
		len -= (size_t)w;
	}
	return 0;
}

int
tp_ini_replace_file(const char *path, const char *text, size_t len,
    const struct stat *orig, char *why, size_t whylen)
{
	char real[PATH_MAX], dirbuf[PATH_MAX], basebuf[PATH_MAX];
	char tmp[PATH_MAX + 32];
	struct stat now;
	int fd = -1, dfd;

	if (realpath(path, real) == NULL) {
		snprintf(why, whylen, "%s", strerror(errno));
		return -1;
	}
	if (stat(real, &now) < 0) {
		snprintf(why, whylen, "%s", strerror(errno));
		return -1;
	}
	if (now.st_dev != orig->st_dev || now.st_ino != orig->st_ino ||
	    now.st_size != orig->st_size ||
	    now.st_mtim.tv_sec != orig->st_mtim.tv_sec ||
	    now.st_mtim.tv_nsec != orig->st_mtim.tv_nsec) {
		snprintf(why, whylen,
		    "the file changed while tlsproxy was "
		    "working on it; nothing written, run the command again");
		return -1;
	}
	snprintf(dirbuf, sizeof(dirbuf), "%s", real);
	snprintf(basebuf, sizeof(basebuf), "%s", real);
	snprintf(tmp, sizeof(tmp), "%s/.%s.XXXXXX", dirname(dirbuf),
	    basename(basebuf));
	if ((fd = mkostemp(tmp, O_CLOEXEC)) < 0) {
		snprintf(why, whylen,
		    "cannot create a temporary file in "
		    "the configuration directory: %s",
		    strerror(errno));
		return -1;
	}
	/* mkostemp made it 0600: give it the original's mode and owner
	 * (the owner only where we may; as a non-root user it is ours). */
	if ((now.st_uid != geteuid() || now.st_gid != getegid()) &&
	    fchown(fd, now.st_uid, now.st_gid) < 0 && errno != EPERM) {
		snprintf(why, whylen, "fchown %s: %s", tmp, strerror(errno));
		goto fail;
	}
	if (fchmod(fd, now.st_mode & 07777) < 0 ||
	    write_all(fd, text, len) < 0 || fsync(fd) < 0) {
		snprintf(why, whylen, "%s: %s", tmp, strerror(errno));
		goto fail;
	}
	if (close(fd) < 0) {
		fd = -1;
		snprintf(why, whylen, "%s: %s", tmp, strerror(errno));
		goto fail;
	}
	fd = -1;
	if (rename(tmp, real) < 0) {
		snprintf(why, whylen, "rename %s to %s: %s", tmp, real,
		    strerror(errno));
		goto fail;
	}
	/* Make the rename itself durable. */
	snprintf(dirbuf, sizeof(dirbuf), "%s", real);
	if ((dfd = open(dirname(dirbuf), O_RDONLY | O_DIRECTORY | O_CLOEXEC)) >=
	    0) {
		(void)fsync(dfd);
		close(dfd);
	}
	return 0;
fail:
	if (fd >= 0)
		close(fd);
	unlink(tmp);
	return -1;
}
