/*
 * test_tool_ini.c - the comment-preserving INI rewrite (tool_ini.h) that
 * `tlsproxy tls deploy-server-cert` and `enable-*` use: only the values
 * of the keys set change, in the right section; comments, blank lines,
 * inline comments, order, CRLF line ends and a missing final newline
 * stay; a missing key goes after the section's last key line; lines are
 * read as inih reads them; what cannot be written is refused.  The file
 * half: the mode and a symbolic link survive, a file changed since it was
 * read is not overwritten.  Each rewrite is also read back through
 * tp_config_load_string() so the daemon sees the value where it was put.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <fcntl.h>
#include <ftw.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "tlsproxy/config.h"
#include "tlsproxy/tool_ini.h"

static char *out;
static size_t outlen;
static char why[300];

static int
teardown(void **state)
{
	(void)state;
	free(out);
	out = NULL;
	return 0;
}

/* edit - TEXT with one KEY = VALUE in [SECTION]; must succeed. */
static const char *
edit(const char *text, const char *section, const char *key, const char *value)
{
	struct tp_ini_set s = {key, value};

	free(out);
	out = NULL;
	if (tp_ini_edit(text, strlen(text), section, &s, 1, &out, &outlen, why,
		sizeof(why)) < 0)
		fail_msg("tp_ini_edit: %s", why);
	assert_int_equal(strlen(out), outlen);
	return out;
}

/* edit_fails - the edit is refused with a message containing SUB. */
static void
edit_fails(const char *text, const char *section, const struct tp_ini_set *sets,
    size_t n, const char *sub)
{
	char *o = (char *)"untouched";
	size_t ol = 0;

	if (tp_ini_edit(text, strlen(text), section, sets, n, &o, &ol, why,
		sizeof(why)) == 0) {
		free(o);
		fail_msg("edit accepted, wanted \"%s\"", sub);
	}
	assert_null(o);
	if (strstr(why, sub) == NULL)
		fail_msg("why \"%s\" lacks \"%s\"", why, sub);
}

/* The routes around the keys tested; [s] is lines 7-13. */
#define CONF                                                                   \
	"; tlsproxy test config\r\n"                  /* 1 */                  \
	"[global]\n"                                  /* 2 */                  \
	"shutdown_grace = 5s   ; short\n"             /* 3 */                  \
	"\n"                                          /* 4 */                  \
	"# the server route\n"                        /* 5 */                  \
	"\n"                                          /* 6 */                  \
	"[s]\n"                                       /* 7 */                  \
	"mode = server\n"                             /* 8 */                  \
	"accept = 127.0.0.1:2465\n"                   /* 9 */                  \
	"connect = 127.0.0.1:25\n"                    /* 10 */                 \
	"cert_file   =   old.pem   ; the RSA chain\n" /* 11 */                 \
	"; key_file = commented.pem\n"                /* 12 */                 \
	"\n"                                          /* 13 */                 \
	"[c]\n"                                       /* 14 */                 \
	"mode = client\n"                             /* 15 */                 \
	"accept = 127.0.0.1:2525\n"                   /* 16 */                 \
	"connect = 192.0.2.1:465\n"                   /* 17 */                 \
	"cert_file = client.pem\n"                    /* 18 */                 \
	"key_file = client.key\n"                     /* 19 */                 \
	"; end\n"                                     /* 20 */

/* same_but - A and B are equal but for line N (1-based) of B, which is
 * L (A and B have the same number of lines). */
static void
same_but(const char *a, const char *b, int n, const char *l)
{
	char *ca = strdup(a), *cb = strdup(b), *sa, *sb, *pa, *pb;
	int i = 1;

	assert_non_null(ca);
	assert_non_null(cb);
	sa = ca;
	sb = cb;
	for (;;) {
		pa = strsep(&sa, "\n");
		pb = strsep(&sb, "\n");
		if (pa == NULL && pb == NULL)
			break;
		assert_non_null(pa);
		assert_non_null(pb);
		if (i == n)
			assert_string_equal(pb, l);
		else
			assert_string_equal(pb, pa);
		i++;
	}
	free(ca);
	free(cb);
}

/* value_at - the route's value of KEY read back by the config loader. */
static void
value_at(const char *text, const char *route, enum tp_key k, const char *raw,
    int line)
{
	struct tp_config *cfg = tp_config_load_string("t.ini", text);
	const struct tp_cfg_route *r;

	assert_non_null(cfg);
	r = tp_config_route(cfg, route);
	assert_non_null(r);
	if (!r->v[k].set || strcmp(r->v[k].raw, raw) != 0 ||
	    r->v[k].line != line)
		fail_msg("%s: %s = %s at line %d, want %s at line %d", route,
		    tp_keys[k].name, r->v[k].set ? r->v[k].raw : "(unset)",
		    r->v[k].line, raw, line);
	tp_config_free(cfg);
}

/* ---- replacing a value ---- */

static void
test_replace_keeps_everything_else(void **state)
{
	(void)state;
	edit(CONF, "s", "cert_file", "cert-20250101-000000.pem");
	same_but(CONF, out, 11,
	    "cert_file   =   cert-20250101-000000.pem   ; the RSA chain");
	/* CRLF of line 1, the inline comment of line 3, the commented key
	 * of line 12 and the other route's cert_file are all untouched. */
	assert_non_null(strstr(out, "; tlsproxy test config\r\n[global]\n"));
	assert_non_null(strstr(out, "shutdown_grace = 5s   ; short\n"));
	assert_non_null(strstr(out, "; key_file = commented.pem\n"));
	assert_non_null(strstr(out, "[c]\nmode = client\n"));
	assert_non_null(strstr(out, "cert_file = client.pem\n"));
	assert_int_equal(outlen,
	    strlen(CONF) - strlen("old.pem") +
		strlen("cert-20250101-000000.pem"));
	value_at(out, "s", TP_K_CERT_FILE, "cert-20250101-000000.pem", 11);
	value_at(out, "c", TP_K_CERT_FILE, "client.pem", 18);
}

static void
test_same_key_other_section(void **state)
{
	(void)state;
	/* [c] has cert_file too: only [c]'s changes. */
	edit(CONF, "c", "cert_file", "new-client.pem");
	same_but(CONF, out, 18, "cert_file = new-client.pem");
	value_at(out, "s", TP_K_CERT_FILE, "old.pem", 11);
	value_at(out, "c", TP_K_CERT_FILE, "new-client.pem", 18);
	/* A key named like a longer one does not match. */
	edit("[s]\ncert_file_x = a\ncert_file = b\n", "s", "cert_file", "c");
	assert_string_equal(out, "[s]\ncert_file_x = a\ncert_file = c\n");
}

static void
test_delimiters_and_spacing(void **state)
{
	(void)state;
	edit("[s]\ncert_file=a.pem\n", "s", "cert_file", "b.pem");
	assert_string_equal(out, "[s]\ncert_file=b.pem\n");
	edit("[s]\ncert_file: a.pem\n", "s", "cert_file", "b.pem");
	assert_string_equal(out, "[s]\ncert_file: b.pem\n");
	edit("[s]\ncert_file\t=\ta.pem\t\n", "s", "cert_file", "b.pem");
	assert_string_equal(out, "[s]\ncert_file\t=\tb.pem\t\n");
	/* ';' without white space before it is part of the value (inih). */
	edit("[s]\ncert_file = a;b.pem ; note\n", "s", "cert_file", "c.pem");
	assert_string_equal(out, "[s]\ncert_file = c.pem ; note\n");
	/* An empty value is replaced in place. */
	edit("[s]\ncert_file =\nx = 1\n", "s", "cert_file", "c.pem");
	assert_string_equal(out, "[s]\ncert_file =c.pem\nx = 1\n");
	/* A section header with a comment after it. */
	edit("[s] ; the route\ncert_file = a\n", "s", "cert_file", "b");
	assert_string_equal(out, "[s] ; the route\ncert_file = b\n");
}

/* ---- adding a key ---- */

static void
test_add_missing_key(void **state)
{
	(void)state;
	/* [s] has no key_file (line 12 is a comment): it goes after the
	 * last key line, line 11, before the comment and the blank line. */
	edit(CONF, "s", "key_file", "key-20250101-000000.pem");
	assert_non_null(strstr(out,
	    "cert_file   =   old.pem   ; the RSA chain\n"
	    "key_file = key-20250101-000000.pem\n"
	    "; key_file = commented.pem\n\n[c]\n"));
	assert_int_equal(outlen,
	    strlen(CONF) + strlen("key_file = key-20250101-000000.pem\n"));
	value_at(out, "s", TP_K_KEY_FILE, "key-20250101-000000.pem", 12);
	value_at(out, "c", TP_K_KEY_FILE, "client.key", 20);
}

static void
test_add_and_replace_together(void **state)
{
	struct tp_ini_set sets[] = {
	    {"eccert_file", "eccert.pem"},
	    {"cert_file", "cert.pem"},
	    {"eckey_file", "eckey.pem"},
	};

	(void)state;
	assert_int_equal(tp_ini_edit(CONF, strlen(CONF), "s", sets, 3, &out,
			     &outlen, why, sizeof(why)),
	    0);
	assert_non_null(strstr(out,
	    "connect = 127.0.0.1:25\n"
	    "cert_file   =   cert.pem   ; the RSA chain\n"
	    "eccert_file = eccert.pem\n"
	    "eckey_file = eckey.pem\n"
	    "; key_file = commented.pem\n"));
	value_at(out, "s", TP_K_ECCERT_FILE, "eccert.pem", 12);
	value_at(out, "s", TP_K_ECKEY_FILE, "eckey.pem", 13);
	value_at(out, "s", TP_K_CERT_FILE, "cert.pem", 11);
}

static void
test_add_to_last_section(void **state)
{
	(void)state;
	/* [c] ends the file with a comment line after its keys. */
	edit(CONF, "c", "security", "encrypt");
	assert_non_null(
	    strstr(out, "key_file = client.key\nsecurity = encrypt\n; end\n"));
	value_at(out, "c", TP_K_SECURITY, "encrypt", 20);
	/* A section without keys gets the key right after its header. */
	edit("[a]\n\n[b]\nx = 1\n", "a", "k", "v");
	assert_string_equal(out, "[a]\nk = v\n\n[b]\nx = 1\n");
}

/* ---- line ends ---- */

static void
test_no_final_newline(void **state)
{
	(void)state;
	edit(
	    "[s]\nmode = server\ncert_file = a.pem", "s", "cert_file", "b.pem");
	assert_string_equal(out, "[s]\nmode = server\ncert_file = b.pem");
	/* The added line becomes the last one, still without a newline. */
	edit("[s]\nmode = server\ncert_file = a.pem", "s", "key_file", "k.pem");
	assert_string_equal(
	    out, "[s]\nmode = server\ncert_file = a.pem\nkey_file = k.pem");
	edit("[s]\r\nmode = server", "s", "key_file", "k.pem");
	assert_string_equal(out, "[s]\r\nmode = server\r\nkey_file = k.pem");
	/* An empty file has no section. */
	edit_fails(
	    "", "s", &(struct tp_ini_set){"a", "b"}, 1, "no section [s]");
}

static void
test_crlf(void **state)
{
	const char *crlf = "; comment\r\n"
			   "[s]\r\n"
			   "mode = server\r\n"
			   "cert_file = a.pem ; inline\r\n"
			   "\r\n"
			   "[t]\r\n"
			   "mode = client\r\n";

	(void)state;
	edit(crlf, "s", "cert_file", "b.pem");
	assert_string_equal(out,
	    "; comment\r\n[s]\r\nmode = server\r\n"
	    "cert_file = b.pem ; inline\r\n\r\n[t]\r\n"
	    "mode = client\r\n");
	edit(crlf, "s", "key_file", "k.pem");
	assert_string_equal(out,
	    "; comment\r\n[s]\r\nmode = server\r\n"
	    "cert_file = a.pem ; inline\r\n"
	    "key_file = k.pem\r\n\r\n[t]\r\n"
	    "mode = client\r\n");
}

/* ---- inih's reading of lines ---- */

static void
test_inih_line_rules(void **state)
{
	(void)state;
	/* '#' and ';' comment lines, even indented, are not keys. */
	edit("[s]\nmode = x\n  # cert_file = a\n#cert_file = b\n", "s",
	    "cert_file", "c");
	assert_string_equal(out,
	    "[s]\nmode = x\ncert_file = c\n"
	    "  # cert_file = a\n#cert_file = b\n");
	/* An indented line after a key continues it (inih): the new key
	 * goes after the continuation, and an indented "key = v" there is
	 * not a key of its own. */
	edit("[s]\nmode = x\n   cert_file = a\n[t]\n", "s", "cert_file", "c");
	assert_string_equal(
	    out, "[s]\nmode = x\n   cert_file = a\ncert_file = c\n[t]\n");
	/* A UTF-8 byte order mark before the first header. */
	edit("\xEF\xBB\xBF[s]\ncert_file = a\n", "s", "cert_file", "b");
	assert_string_equal(out, "\xEF\xBB\xBF[s]\ncert_file = b\n");
	/* Section names are compared exactly. */
	edit("[S]\ncert_file = a\n[s]\nx = 1\n", "s", "cert_file", "b");
	assert_string_equal(out,
	    "[S]\ncert_file = a\n[s]\nx = 1\n"
	    "cert_file = b\n");
}

/* ---- refusals ---- */

static void
test_refusals(void **state)
{
	struct tp_ini_set two[] = {{"cert_file", "a"}, {"cert_file", "b"}};

	(void)state;
	edit_fails(CONF, "nope", &(struct tp_ini_set){"cert_file", "a"}, 1,
	    "no section [nope]");
	edit_fails("[s]\nx = 1\n[s]\ny = 2\n", "s",
	    &(struct tp_ini_set){"x", "a"}, 1,
	    "section [s] appears twice (lines 1 and 3)");
	edit_fails("[s]\ncert_file = a\ncert_file = b\n", "s",
	    &(struct tp_ini_set){"cert_file", "c"}, 1,
	    "cert_file appears twice in [s] (lines 2 and 3)");
	edit_fails(CONF, "s", two, 2, "cert_file set twice");
	edit_fails(CONF, "s", &(struct tp_ini_set){"cert file", "a"}, 1,
	    "bad key name");
	edit_fails(CONF, "s", &(struct tp_ini_set){"cert_file", "a ;b"}, 1,
	    "inline comment");
	edit_fails(CONF, "s", &(struct tp_ini_set){"cert_file", "a\nb"}, 1,
	    "control character");
	edit_fails(CONF, "s", &(struct tp_ini_set){"cert_file", " a"}, 1,
	    "white space");
	edit_fails(
	    CONF, "s", &(struct tp_ini_set){"cert_file", ""}, 1, "empty value");
}

static void
test_value_ok(void **state)
{
	const char *w;

	(void)state;
	assert_int_equal(tp_ini_value_ok("/etc/tlsproxy/cert 1.pem", &w), 0);
	assert_int_equal(tp_ini_value_ok("a;b#c", &w), 0);
	assert_int_equal(tp_ini_value_ok("a\t;b", &w), -1);
	assert_int_equal(tp_ini_value_ok("a\r", &w), -1);
	assert_int_equal(tp_ini_value_ok("a ", &w), -1);
	assert_int_equal(tp_ini_value_ok("", &w), -1);
}

/* ---- the file ---- */

static char dir[64];

static int
rm_one(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(p);
}

static int
file_setup(void **state)
{
	(void)state;
	snprintf(dir, sizeof(dir), "/tmp/test_tool_ini.XXXXXX");
	assert_non_null(mkdtemp(dir));
	return 0;
}

static int
file_teardown(void **state)
{
	teardown(state);
	nftw(dir, rm_one, 8, FTW_DEPTH | FTW_PHYS);
	return 0;
}

static void
put_file(const char *path, const char *text, mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	assert_int_equal(fchmod(fd, mode), 0);
	close(fd);
}

static char *
get_file(const char *path)
{
	char *text = NULL;
	size_t len;
	struct stat st;

	if (tp_ini_read_file(path, &text, &len, &st, why, sizeof(why)) < 0)
		fail_msg("read %s: %s", path, why);
	return text;
}

static void
test_file_replace(void **state)
{
	char path[128], link[128], *text, *after;
	size_t len;
	struct stat st, st2;

	(void)state;
	snprintf(path, sizeof(path), "%s/t.ini", dir);
	snprintf(link, sizeof(link), "%s/link.ini", dir);
	put_file(path, CONF, 0640);
	assert_int_equal(symlink("t.ini", link), 0);

	/* Through the symbolic link: the file it names is replaced, the
	 * link stays a link, the mode stays 0640. */
	assert_int_equal(
	    tp_ini_read_file(link, &text, &len, &st, why, sizeof(why)), 0);
	assert_int_equal(len, strlen(CONF));
	edit(text, "s", "cert_file", "new.pem");
	if (tp_ini_replace_file(link, out, outlen, &st, why, sizeof(why)) < 0)
		fail_msg("replace: %s", why);
	free(text);
	assert_int_equal(lstat(link, &st2), 0);
	assert_true(S_ISLNK(st2.st_mode));
	assert_int_equal(stat(path, &st2), 0);
	assert_int_equal(st2.st_mode & 07777, 0640);
	after = get_file(path);
	assert_string_equal(after, out);
	free(after);

	/* No temporary file is left behind. */
	{
		char cmd[200];

		snprintf(cmd, sizeof(cmd), "test $(ls -A %s | wc -l) = 2", dir);
		assert_int_equal(system(cmd), 0);
	}
}

static void
test_file_changed_meanwhile(void **state)
{
	char path[128], *text;
	size_t len;
	struct stat st;

	(void)state;
	snprintf(path, sizeof(path), "%s/t.ini", dir);
	put_file(path, CONF, 0600);
	assert_int_equal(
	    tp_ini_read_file(path, &text, &len, &st, why, sizeof(why)), 0);
	edit(text, "s", "cert_file", "new.pem");
	free(text);
	/* Someone else edits the file after it was read. */
	put_file(path, CONF "x = 1\n", 0600);
	assert_int_equal(
	    tp_ini_replace_file(path, out, outlen, &st, why, sizeof(why)), -1);
	assert_non_null(strstr(why, "changed"));
	text = get_file(path);
	assert_string_equal(text, CONF "x = 1\n");
	free(text);

	/* Not a regular file; no such file. */
	assert_int_equal(
	    tp_ini_read_file(dir, &text, &len, &st, why, sizeof(why)), -1);
	assert_string_equal(why, "not a regular file");
	snprintf(path, sizeof(path), "%s/none.ini", dir);
	assert_int_equal(
	    tp_ini_read_file(path, &text, &len, &st, why, sizeof(why)), -1);
	assert_string_equal(why, "No such file or directory");
}

int
main(void)
{
#define T(f)  cmocka_unit_test_teardown(f, teardown)
#define TF(f) cmocka_unit_test_setup_teardown(f, file_setup, file_teardown)
	const struct CMUnitTest tests[] = {
	    T(test_replace_keeps_everything_else),
	    T(test_same_key_other_section),
	    T(test_delimiters_and_spacing),
	    T(test_add_missing_key),
	    T(test_add_and_replace_together),
	    T(test_add_to_last_section),
	    T(test_no_final_newline),
	    T(test_crlf),
	    T(test_inih_line_rules),
	    T(test_refusals),
	    T(test_value_ok),
	    TF(test_file_replace),
	    TF(test_file_changed_meanwhile),
	};
#undef T
#undef TF

	return cmocka_run_group_tests(tests, NULL, NULL);
}
