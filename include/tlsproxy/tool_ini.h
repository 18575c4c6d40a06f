/*
 * tool_ini.h - comment-preserving INI rewrite for `tlsproxy tls`: set
 * keys of one section in place and keep every other byte of the file
 * (comments, blank lines, order, inline comments, CRLF line ends), then
 * replace the file atomically.  Lines are classified the way inih (r55,
 * as Debian builds it) reads them.  Pure C and POSIX: no OpenSSL, no uv.
 */
#ifndef TLSPROXY_TOOL_INI_H
#define TLSPROXY_TOOL_INI_H

#include <stddef.h>

struct stat;

/* One KEY = VALUE to set in a section. */
struct tp_ini_set {
	const char *key;
	const char *value;
};

/*
 * tp_ini_edit - TEXT (LEN bytes) with each key of SETS set in [SECTION]:
 * the value of a key line present in the section is replaced where it
 * stands (its inline comment and spacing kept); a key absent from the
 * section is added as "key = value" after the section's last key line.
 * Returns 0 with *out (malloc'd, NUL-terminated, *outlen bytes), or -1
 * with why filled (no such section, the section twice, a key twice, a
 * value that cannot be written).
 */
int tp_ini_edit(const char *text, size_t len, const char *section,
    const struct tp_ini_set *sets, size_t nsets, char **out, size_t *outlen,
    char *why, size_t whylen);

/*
 * tp_ini_value_ok - 0 if VALUE reads back unchanged as an INI value (not
 * empty, no control characters, no white space at either end, no inline
 * comment), else -1 with *why.
 */
int tp_ini_value_ok(const char *value, const char **why);

/*
 * tp_ini_read_file - the whole of PATH (a regular file) into *text
 * (malloc'd, NUL-terminated) and its status into *st, for
 * tp_ini_replace_file().  Returns 0, or -1 with why filled.
 */
int tp_ini_read_file(const char *path, char **text, size_t *len,
    struct stat *st, char *why, size_t whylen);

/*
 * tp_ini_replace_file - write TEXT to a temporary file in the directory of
 * PATH (of the file it links to, for a symbolic link), with the mode and,
 * where permitted, the owner of ORIG, sync it and rename() it over the
 * original.  Refuses when the file changed since ORIG was taken.
 * Returns 0, or -1 with why filled and the original untouched.
 */
int tp_ini_replace_file(const char *path, const char *text, size_t len,
    const struct stat *orig, char *why, size_t whylen);

#endif
