/*
 * test_config.c - the config contract (spec sections 2, 3 and 5):
 * typed values and defaults, every diagnostic as "NAME:LINE: message",
 * warnings for keys not implemented yet, repeatable keys and relative
 * paths; the DNS keys, mx: destinations and the trust anchor file.  Each
 * test leaves its config in `cfg`; the teardown frees it, so an ASan run
 * checks that tp_config_free() releases everything.  A route that
 * connects to a name, and a gateway, needs a trust anchor file: those
 * tests name one of their own (ta_path), so they do not depend on
 * dns-root-data.  The gateway tests write their policy files next to it.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <limits.h>
#include <sched.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tlsproxy/config.h"
#include "tlsproxy/config_dns.h"
#include "tlsproxy/policy_map.h"
#include "tlsproxy/tls_policy.h"

static struct tp_config *cfg;

/* Minimal valid routes; CLIENT is lines 1-4, SERVER lines 1-5. */
#define CLIENT                                                                 \
	"[c]\n"                                                                \
	"mode = client\n"                                                      \
	"accept = 127.0.0.1:2525\n"                                            \
	"connect = 192.0.2.1:465\n"
#define SERVER                                                                 \
	"[s]\n"                                                                \
	"mode = server\n"                                                      \
	"accept = 127.0.0.1:2465\n"                                            \
	"connect = 127.0.0.1:25\n"                                             \
	"cert_file = /etc/tlsproxy/s.pem\n"

/* A minimal gateway route; lines 1-3. */
#define GATEWAY                                                                \
	"[gw]\n"                                                               \
	"mode = gateway\n"                                                     \
	"accept = 127.0.0.1:10025\n"

#define FP_A "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
#define FP_B "FEDCBA9876543210FEDCBA9876543210FEDCBA9876543210FEDCBA9876543210"
#define FP_C                                                                   \
	"aa:bb:cc:dd:ee:ff:00:11:22:33:44:55:66:77:88:99:"                     \
	"aa:bb:cc:dd:ee:ff:00:11:22:33:44:55:66:77:88:99"

/* ncpu - what workers = auto means here: the CPUs nproc(1) counts. */
static unsigned
ncpu(void)
{
	cpu_set_t set;
	long n = -1;

	if (sched_getaffinity(0, sizeof(set), &set) == 0)
		n = CPU_COUNT(&set);
	if (n < 1)
		n = sysconf(_SC_NPROCESSORS_ONLN);
	return n < 1 ? 1 : n > 64 ? 64 : (unsigned)n;
}

static int
teardown(void **state)
{
	(void)state;
	tp_config_free(cfg);
	cfg = NULL;
	return 0;
}

static void
dump_diags(void)
{
	if (cfg == NULL)
		return;
	print_message("--- %zu diagnostics (%d errors, %d warnings):\n",
	    cfg->ndiags, cfg->nerrors, cfg->nwarnings);
	for (size_t i = 0; i < cfg->ndiags; i++)
		print_message("    %s\n", cfg->diags[i]);
}

static struct tp_config *
load(const char *text)
{
	tp_config_free(cfg);
	cfg = tp_config_load_string("t.ini", text);
	assert_non_null(cfg);
	return cfg;
}

/* The trust anchor files the DNS tests use, made by group_setup. */
static char ta_dir[64];
static char ta_path[128]; /* ta_dir/ok.key: good records */
#define TA_DS_TEST                                                             \
	"test.\t3600\tIN\tDS\t12345 13 2 "                                     \
	"0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF"
#define TA_ROOT_KEY                                                             \
	". IN DNSKEY 257 3 8 AwEAAaz/tAm8yTn4Mfeh5eyI96WSVexTBAvkMgJzkKTOiW1vk" \
	"Ibzxe F3+/4RgWOq7HrxRixHlFlExOLAJr5emLvN7SWXgnLh4+B5xQlNVz8Og8kvArMtN" \
	"ROxVQuCaSnIDdD5LKyWbRd2n9WGe2R8PzgCmr3EgVLrjyBxWezF0jLHwVN8efS3rCj/E"  \
	"WgvIWgb9tarpVUDK/b58Da+sqqls3eNbuv7pr+eoZG+SrDK6nWeL3c6H5Apxz7LjVc1u"  \
	"TIdsIXxuOLYA4/ilBmSVIzuDWfdRUfhHdY6+cn8HFRm+2hM8AnXGXws9555KrUB5qihy"  \
	"lGa8subX2Nn6UwNR1AkUTV74bU="

static void
write_text(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	assert_int_equal(fputs(text, f) >= 0, 1);
	assert_int_equal(fclose(f), 0);
}

static int
group_setup(void **state)
{
	(void)state;
	strcpy(ta_dir, "/tmp/tp_test_config_ta.XXXXXX");
	if (mkdtemp(ta_dir) == NULL)
		return -1;
	snprintf(ta_path, sizeof(ta_path), "%s/ok.key", ta_dir);
	write_text(ta_path, TA_DS_TEST "\n");
	return 0;
}

static int
group_teardown(void **state)
{
	char cmd[128];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", ta_dir);
	return system(cmd) == 0 ? 0 : -1;
}

/*
 * load_ta - load TEXT with dns_trust_anchor = ta_path: in its [global]
 * section, right after the header (one line more below it), else in a
 * [global] section added at the end (no line moves).
 */
static struct tp_config *
load_ta(const char *text)
{
	const char *g = strstr(text, "[global]\n");
	char *t;
	int n;

	if (g != NULL)
		n = asprintf(&t, "%.*sdns_trust_anchor = %s\n%s",
		    (int)(g - text) + 9, text, ta_path, g + 9);
	else
		n = asprintf(
		    &t, "%s[global]\ndns_trust_anchor = %s\n", text, ta_path);
	assert_true(n > 0);
	load(t);
	free(t);
	return cfg;
}

/* load3 - load the three texts one after the other. */
static struct tp_config *
load3(const char *a, const char *b, const char *c)
{
	char *t;

	assert_true(asprintf(&t, "%s%s%s", a, b, c) > 0);
	load(t);
	free(t);
	return cfg;
}

/* find_diag - index of the diagnostic equal to (or starting with) s. */
static int
find_diag(const char *s, bool prefix)
{
	for (size_t i = 0; i < cfg->ndiags; i++)
		if (prefix ? strncmp(cfg->diags[i], s, strlen(s)) == 0
			   : strcmp(cfg->diags[i], s) == 0)
			return (int)i;
	return -1;
}

static void
expect_diag(const char *exact)
{
	if (find_diag(exact, false) < 0) {
		dump_diags();
		fail_msg("no diagnostic \"%s\"", exact);
	}
}

/* expect_diag2 - a diagnostic starting with prefix and containing sub. */
static void
expect_diag2(const char *prefix, const char *sub)
{
	for (size_t i = 0; i < cfg->ndiags; i++)
		if (strncmp(cfg->diags[i], prefix, strlen(prefix)) == 0 &&
		    (sub == NULL || strstr(cfg->diags[i], sub) != NULL))
			return;
	dump_diags();
	fail_msg("no diagnostic \"%s...%s\"", prefix, sub ? sub : "");
}

static void
expect_no_diag_with(const char *sub)
{
	for (size_t i = 0; i < cfg->ndiags; i++)
		if (strstr(cfg->diags[i], sub) != NULL) {
			dump_diags();
			fail_msg("unexpected diagnostic \"%s\"", cfg->diags[i]);
		}
}

static void
expect_errors(int n)
{
	if (cfg->nerrors != n) {
		dump_diags();
		fail_msg("%d errors, want %d", cfg->nerrors, n);
	}
}

static void
expect_clean(void)
{
	expect_errors(0);
	if (cfg->nwarnings != 0) {
		dump_diags();
		fail_msg("%d warnings, want 0", cfg->nwarnings);
	}
}

static const struct tp_cfg_route *
route(const char *name)
{
	const struct tp_cfg_route *r = tp_config_route(cfg, name);

	if (r == NULL) {
		dump_diags();
		fail_msg("no route %s", name);
	}
	return r;
}

/*
 * One error case: TEXT gives exactly one error, DIAG (exact, or a prefix
 * when SUB is given: the message must also contain SUB).
 */
struct ecase {
	const char *text;
	const char *diag;
	const char *sub;
};

static void
run_cases(const struct ecase *c, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		load(c[i].text);
		if (c[i].sub != NULL)
			expect_diag2(c[i].diag, c[i].sub);
		else
			expect_diag(c[i].diag);
		if (cfg->nerrors < 1)
			fail_msg("case %zu: no error counted", i);
		tp_config_free(cfg);
		cfg = NULL;
	}
}

/* ---- valid configurations ---- */

static void
test_client_route(void **state)
{
	const struct tp_cfg_route *r;
	char text[256];

	(void)state;
	/* line 6: the route connects to a name, which needs trust anchors */
	snprintf(text, sizeof(text), "dns_trust_anchor = %s\n", ta_path);
	load3("; outbound relay\n"       /* 1 */
	      "[global]\n"               /* 2 */
	      "workers = 3\n"            /* 3 */
	      "max_connections = 500\n"  /* 4 */
	      "shutdown_grace = 5m\n",   /* 5 */
	    text,                        /* 6 */
	    "[relay-out]\n"              /* 7 */
	    "mode = client\n"            /* 8 */
	    "accept = 127.0.0.1:10025\n" /* 9 */
	    "connect = mx1.example.com:465, 192.0.2.7:465 "
	    "[2001:db8::25]:465\n"             /* 10 */
	    "connect_timeout = 500ms\n"        /* 11 */
	    "handshake_timeout = 30s\n"        /* 12 */
	    "idle_timeout = 300\n"             /* 13 */
	    "servername = none\n"              /* 14 */
	    "exclude_ciphers = aNULL, RC4\n"); /* 15 */
	expect_clean();
	assert_true(cfg->dns_needed);
	assert_int_equal(cfg->nroutes, 1);
	assert_string_equal(cfg->path, "t.ini");
	assert_int_equal(cfg->workers, 3);
	assert_true(cfg->g[TP_K_SHUTDOWN_GRACE].n == 300000);
	assert_true(cfg->g[TP_K_MAX_CONNECTIONS_G].n == 500);

	r = route("relay-out");
	assert_string_equal(r->name, "relay-out");
	assert_int_equal(r->mode, TP_MODE_CLIENT);
	assert_int_equal(r->tls, TP_TLS_IMPLICIT);
	assert_int_equal(r->security, TP_SEC_ENCRYPT);
	assert_false(r->v[TP_K_SECURITY].set);
	assert_false(r->unimplemented);
	assert_string_equal(r->accept.host, "127.0.0.1");
	assert_int_equal(r->accept.port, 10025);
	assert_true(r->accept.is_ip);
	/* connect: failover in the order written */
	assert_int_equal(r->nconnect, 3);
	assert_string_equal(r->connect[0].host, "mx1.example.com");
	assert_int_equal(r->connect[0].port, 465);
	assert_false(r->connect[0].is_ip);
	assert_string_equal(r->connect[1].host, "192.0.2.7");
	assert_true(r->connect[1].is_ip);
	assert_false(r->connect[1].is_v6);
	assert_string_equal(r->connect[2].host, "2001:db8::25");
	assert_true(r->connect[2].is_v6);
	/* durations in ms */
	assert_true(r->v[TP_K_CONNECT_TIMEOUT].n == 500);
	assert_true(r->v[TP_K_HANDSHAKE_TIMEOUT].n == 30000);
	assert_true(r->v[TP_K_IDLE_TIMEOUT].n == 300000);
	/* values remember where they came from */
	assert_true(r->v[TP_K_CONNECT].set);
	assert_int_equal(r->v[TP_K_CONNECT].line, 10);
	assert_string_equal(r->v[TP_K_CONNECT].raw,
	    "mx1.example.com:465, 192.0.2.7:465 [2001:db8::25]:465");
	assert_int_equal(r->v[TP_K_MODE].line, 8);
	assert_int_equal(r->v[TP_K_SERVERNAME].line, 14);
	assert_string_equal(r->v[TP_K_SERVERNAME].s, "none");
	assert_string_equal(r->v[TP_K_EXCLUDE_CIPHERS].raw, "aNULL, RC4");
	/* max_connections comes from [global] */
	assert_false(r->v[TP_K_MAX_CONNECTIONS].set);
	assert_int_equal(r->max_connections, 500);
	/* defaults */
	assert_int_equal(r->proto_min, TP_PROTO_TLS12);
	assert_int_equal(r->proto_max, TP_PROTO_TLS13);
	assert_int_equal(r->v[TP_K_CIPHERS].e, TP_GRADE_MEDIUM);
	assert_true(r->v[TP_K_SESSION_CACHE].n == 1);
	assert_true(r->v[TP_K_SMTP_TIMEOUT].n == 300000);

	assert_null(tp_config_route(cfg, "nope"));
	assert_null(tp_config_route(cfg, "global"));
}

static void
test_server_route(void **state)
{
	const struct tp_cfg_route *r;

	(void)state;
	load("[smtps-in]\n"                    /* 1 */
	     "mode = server\n"                 /* 2 */
	     "accept = [::1]:465\n"            /* 3 */
	     "connect = 127.0.0.1:25\n"        /* 4 */
	     "cert_file = /etc/ssl/mail.pem\n" /* 5 */
	     "key_file = /etc/ssl/mail.key\n"  /* 6 */
	     "session_tickets = no\n"          /* 7 */
	     "max_connections = 20\n"          /* 8 */
	     "protocols = >=TLSv1 <=TLSv1.2\n" /* 9 */
	     "ciphers = high\n");              /* 10 */
	expect_clean();
	r = route("smtps-in");
	assert_int_equal(r->mode, TP_MODE_SERVER);
	assert_int_equal(r->tls, TP_TLS_IMPLICIT);
	assert_int_equal(r->security, TP_SEC_MAY); /* server default */
	assert_string_equal(r->accept.host, "::1");
	assert_int_equal(r->accept.port, 465);
	assert_true(r->accept.is_v6);
	assert_int_equal(r->nconnect, 1);
	assert_string_equal(r->connect[0].host, "127.0.0.1");
	assert_int_equal(r->connect[0].port, 25);
	assert_string_equal(r->v[TP_K_CERT_FILE].s, "/etc/ssl/mail.pem");
	assert_string_equal(r->v[TP_K_KEY_FILE].s, "/etc/ssl/mail.key");
	assert_int_equal(r->v[TP_K_KEY_FILE].line, 6);
	assert_true(r->v[TP_K_SESSION_TICKETS].set);
	assert_true(r->v[TP_K_SESSION_TICKETS].n == 0);
	assert_int_equal(r->max_connections, 20);
	assert_true(r->v[TP_K_MAX_CONNECTIONS].set);
	assert_int_equal(r->proto_min, TP_PROTO_TLS1);
	assert_int_equal(r->proto_max, TP_PROTO_TLS12);
	assert_int_equal(r->v[TP_K_CIPHERS].e, TP_GRADE_HIGH);
	/* global defaults: workers = auto */
	assert_int_equal(cfg->workers, ncpu());
	assert_true(cfg->g[TP_K_MAX_CONNECTIONS_G].n == 10000);
}

static void
test_two_routes_and_security(void **state)
{
	const struct tp_cfg_route *c, *s;

	(void)state;
	load_ta("[global]\n"
		"max_connections = 77\n"
		"[out]\n"
		"mode = client\n"
		"accept = *:2525\n"
		"connect = mx.example.com:465\n"
		"security = none\n"
		"[in]\n"
		"mode = server\n"
		"accept = 127.0.0.1:2465\n"
		"connect = 127.0.0.1:25\n"
		"cert_file = s.pem\n"
		"security = encrypt\n"
		"max_connections = 5\n");
	expect_errors(0);
	assert_int_equal(cfg->nroutes, 2);
	c = route("out");
	s = route("in");
	assert_int_equal(c->mode, TP_MODE_CLIENT);
	assert_int_equal(c->security, TP_SEC_NONE);
	assert_true(c->accept.wildcard);
	assert_string_equal(c->accept.host, "*");
	assert_int_equal(c->accept.port, 2525);
	assert_int_equal(c->max_connections, 77);
	assert_int_equal(s->mode, TP_MODE_SERVER);
	assert_int_equal(s->security, TP_SEC_ENCRYPT);
	assert_int_equal(s->max_connections, 5);
	/* routes keep the file's order */
	assert_string_equal(cfg->routes[0].name, "out");
	assert_string_equal(cfg->routes[1].name, "in");
}

static void
test_durations(void **state)
{
	static const struct {
		const char *text;
		unsigned long long ms;
	} d[] = {
	    {"30s", 30000},
	    {"5m", 300000},
	    {"300", 300000},
	    {"500ms", 500},
	    {"1h", 3600000},
	    {"2d", 172800000},
	};
	char text[512];

	(void)state;
	for (size_t i = 0; i < sizeof(d) / sizeof(d[0]); i++) {
		snprintf(text, sizeof(text),
		    "[global]\nshutdown_grace = %s\n" CLIENT
		    "connect_timeout = %s\nidle_timeout = %s\n",
		    d[i].text, d[i].text, d[i].text);
		load(text);
		expect_clean();
		assert_true(cfg->g[TP_K_SHUTDOWN_GRACE].n == d[i].ms);
		assert_true(route("c")->v[TP_K_CONNECT_TIMEOUT].n == d[i].ms);
		assert_true(route("c")->v[TP_K_IDLE_TIMEOUT].n == d[i].ms);
		assert_string_equal(
		    route("c")->v[TP_K_IDLE_TIMEOUT].raw, d[i].text);
	}
}

static void
test_booleans(void **state)
{
	(void)state;
	load(SERVER "session_tickets = yes\n");
	expect_clean();
	assert_true(route("s")->v[TP_K_SESSION_TICKETS].n == 1);
	load(SERVER "session_tickets = no\n");
	expect_clean();
	assert_true(route("s")->v[TP_K_SESSION_TICKETS].n == 0);
	/* default */
	load(SERVER);
	expect_clean();
	assert_true(route("s")->v[TP_K_SESSION_TICKETS].n == 1);
	assert_false(route("s")->v[TP_K_SESSION_TICKETS].set);
}

static void
test_workers(void **state)
{
	unsigned want = ncpu();

	(void)state;
	load("[global]\nworkers = auto\n" CLIENT);
	expect_clean();
	assert_int_equal(cfg->workers, want);
	assert_string_equal(cfg->g[TP_K_WORKERS].raw, "auto");
	load("[global]\nworkers = 1\n" CLIENT);
	expect_clean();
	assert_int_equal(cfg->workers, 1);
	load("[global]\nworkers = 64\n" CLIENT);
	expect_clean();
	assert_int_equal(cfg->workers, 64);
	load(CLIENT);
	assert_int_equal(cfg->workers, want); /* the default is auto */
	assert_string_equal(cfg->g[TP_K_WORKERS].raw, "auto");

	load("[global]\nworkers = 0\n" CLIENT);
	expect_diag("t.ini:2: workers = 0: out of range");
	load("[global]\nworkers = 65\n" CLIENT);
	expect_diag("t.ini:2: workers = 65: out of range");
	load("[global]\nworkers = two\n" CLIENT);
	expect_diag("t.ini:2: workers = two: not a number");
	load("[global]\nworkers = Auto\n" CLIENT);
	expect_errors(1);
}

static void
test_max_connections(void **state)
{
	(void)state;
	load(CLIENT);
	expect_clean();
	assert_int_equal(route("c")->max_connections, 10000);
	load("[global]\nmax_connections = 1000000\n" CLIENT
	     "max_connections = 1\n");
	expect_clean();
	assert_int_equal(route("c")->max_connections, 1);
	load("[global]\nmax_connections = 1000001\n" CLIENT);
	expect_diag("t.ini:2: max_connections = 1000001: out of range");
	load(CLIENT "max_connections = 0\n");
	expect_diag("t.ini:5: max_connections = 0: out of range");
}

/*
 * test_nofile - max_connections against the open files limit: a warning
 * (never an error) at the max_connections line that sets the bound.
 */
static void
test_nofile(void **state)
{
	unsigned long long need;

	(void)state;
	/* the global value, 2 per session: over a 20000 limit */
	load("[global]\nworkers = 2\nmax_connections = 100000\n" CLIENT);
	expect_clean();
	need = tp_config_check_nofile(cfg, 20000);
	assert_true(need > 200000 && need < 200200);
	expect_diag2("t.ini:3: warning: max_connections = 100000: ",
	    "open files limit 20000");
	expect_errors(0);
	assert_int_equal(cfg->nwarnings, 1);
	/* no limit known: nothing to say */
	load("[global]\nmax_connections = 100000\n" CLIENT);
	tp_config_check_nofile(cfg, 0);
	expect_clean();
	/* a small value fits */
	load("[global]\nmax_connections = 1000\n" CLIENT);
	tp_config_check_nofile(cfg, 20000);
	expect_clean();
	/* the default, 10000, does not quite fit in 20000: no line */
	load(CLIENT);
	tp_config_check_nofile(cfg, 20000);
	expect_diag2(
	    "t.ini: warning: max_connections = 10000 (the default): ", NULL);
	assert_int_equal(cfg->nwarnings, 1);
	tp_config_check_nofile(cfg, 30000);
	assert_int_equal(cfg->nwarnings, 1);
	/* a route's own value, within the global bound: its line */
	load("[global]\nmax_connections = 200000\n" SERVER
	     "max_connections = 50000\n");
	tp_config_check_nofile(cfg, 20000);
	expect_diag2("t.ini:8: warning: max_connections = 50000: ",
	    "up to 50000 sessions");
	assert_int_equal(cfg->nwarnings, 1);
	/* two routes that fit alone but not together: the larger one */
	load("[global]\nmax_connections = 100000\n" SERVER
	     "max_connections = 6000\n" CLIENT "max_connections = 7000\n");
	tp_config_check_nofile(cfg, 20000);
	expect_diag2("t.ini:13: warning: max_connections = 7000: ",
	    "up to 13000 sessions");
	assert_int_equal(cfg->nwarnings, 1);
	/* together bounded by a global value that does not fit: global */
	load("[global]\nmax_connections = 12000\n" SERVER
	     "max_connections = 9000\n" CLIENT "max_connections = 9000\n");
	tp_config_check_nofile(cfg, 20000);
	expect_diag2("t.ini:2: warning: max_connections = 12000: ",
	    "up to 12000 sessions");
	assert_int_equal(cfg->nwarnings, 1);
}

static void
test_addresses(void **state)
{
	const struct tp_cfg_route *r;

	(void)state;
	load_ta(
	    "[a]\nmode = client\naccept = [::1]:25\nconnect = 192.0.2.1:465\n"
	    "[b]\nmode = client\naccept = *:26\nconnect = [::1]:465\n"
	    "[c]\nmode = client\naccept = localhost:27\n"
	    "connect = a.example:465,b.example:465\n");
	expect_clean();
	r = route("a");
	assert_true(r->accept.is_v6);
	assert_string_equal(r->accept.host, "::1");
	assert_int_equal(r->accept.port, 25);
	r = route("b");
	assert_true(r->accept.wildcard);
	assert_int_equal(r->accept.port, 26);
	assert_true(r->connect[0].is_v6);
	r = route("c");
	assert_string_equal(r->accept.host, "localhost");
	assert_int_equal(r->nconnect, 2);
	assert_string_equal(r->connect[0].host, "a.example");
	assert_string_equal(r->connect[1].host, "b.example");
}

static void
test_syntax_variants(void **state)
{
	const struct tp_cfg_route *r;

	(void)state;
	/* CRLF line ends, inline comments, blank lines, # comments */
	load("# comment\r\n"
	     "[c]\r\n"
	     "mode = client ; outbound\r\n"
	     "\r\n"
	     "accept=127.0.0.1:2525\r\n"
	     "   \r\n"
	     "connect   =   192.0.2.1:465   \r\n");
	expect_clean();
	r = route("c");
	assert_int_equal(r->mode, TP_MODE_CLIENT);
	assert_string_equal(r->v[TP_K_MODE].raw, "client");
	assert_string_equal(r->v[TP_K_CONNECT].raw, "192.0.2.1:465");
	assert_int_equal(r->v[TP_K_CONNECT].line, 7);
	assert_int_equal(r->connect[0].port, 465);
	/* a line of 198 characters is fine */
	{
		char text[512];

		snprintf(text, sizeof(text), CLIENT "; %0196d\n", 0);
		assert_int_equal(strcspn(strchr(text, ';'), "\n"), 198);
		load(text);
		expect_clean();
	}
}

static void
test_shipped_config(void **state)
{
	char exe[PATH_MAX], path[PATH_MAX + 32], *slash;
	ssize_t n;

	(void)state;
	/* etc/tlsproxy.ini of this tree, found from the binary's path */
	n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n <= 0)
		skip();
	exe[n] = '\0';
	for (int up = 0; up < 5 && (slash = strrchr(exe, '/')) != NULL; up++) {
		*slash = '\0';
		snprintf(path, sizeof(path), "%s/etc/tlsproxy.ini", exe);
		if (access(path, R_OK) == 0) {
			tp_config_free(cfg);
			cfg = tp_config_load(path);
			assert_non_null(cfg);
			expect_errors(0);
			assert_true(cfg->nroutes >= 1);
			return;
		}
	}
	skip();
}

/* ---- defaults from the key table ---- */

static void
check_defaults(const struct tp_cval *vals, bool global, const char *where)
{
	for (int k = 0; k < TP_K_COUNT; k++) {
		const struct tp_keydef *d = &tp_keys[k];

		if ((d->scope == G) != global || d->def == NULL)
			continue;
		if (vals[k].set)
			fail_msg(
			    "%s: %s set in a minimal config", where, d->name);
		if (vals[k].raw == NULL || strcmp(vals[k].raw, d->def) != 0)
			fail_msg("%s: %s raw \"%s\", want default \"%s\"",
			    where, d->name,
			    vals[k].raw ? vals[k].raw : "(null)", d->def);
		if (vals[k].line != 0)
			fail_msg("%s: %s default has line %d", where, d->name,
			    vals[k].line);
		if (vals[k].s == NULL)
			fail_msg("%s: %s default has no s", where, d->name);
	}
}

static void
test_defaults_table(void **state)
{
	int ndef = 0;

	(void)state;
	for (int k = 0; k < TP_K_COUNT; k++) {
		assert_non_null(tp_keys[k].name);
		assert_non_null(tp_keys[k].help);
		if (tp_keys[k].type == T_ENUM)
			assert_non_null(tp_keys[k].choices);
		if (tp_keys[k].def != NULL)
			ndef++;
	}
	assert_true(ndef >= 20);
	/* a client and a server route: every default parses (or abort()) */
	load(CLIENT SERVER);
	expect_clean();
	check_defaults(cfg->g, true, "[global]");
	check_defaults(route("c")->v, false, "[c]");
	check_defaults(route("s")->v, false, "[s]");
	/* and the typed values of a few */
	assert_true(cfg->g[TP_K_SHUTDOWN_GRACE].n == 30000);
	assert_true(cfg->g[TP_K_TLS_LOGLEVEL].n == 1);
	assert_true(cfg->g[TP_K_MAX_CONNECTIONS_G].n == 10000);
	assert_int_equal(cfg->g[TP_K_LOG].e, 0);       /* stderr */
	assert_int_equal(cfg->g[TP_K_LOG_LEVEL].e, 2); /* info */
	assert_true(route("c")->v[TP_K_CONNECT_TIMEOUT].n == 30000);
	assert_true(route("c")->v[TP_K_HANDSHAKE_TIMEOUT].n == 30000);
	assert_true(route("c")->v[TP_K_IDLE_TIMEOUT].n == 300000);
	assert_true(route("c")->v[TP_K_VERIFY_DEPTH].n == 9);
	assert_true(route("c")->v[TP_K_CONNECTION_REUSE].n == 0);
	assert_int_equal(route("c")->v[TP_K_TLS].e, TP_TLS_IMPLICIT);
	assert_true(route("s")->v[TP_K_CLIENT_LIMIT].n == 0);
	assert_true(route("s")->v[TP_K_AUTH_ONLY].n == 0);
	assert_int_equal(route("s")->v[TP_K_PROXY_PROTOCOL].e, 0);
	/* keys without a default stay unset and empty */
	assert_null(cfg->g[TP_K_PID_FILE].raw);
	assert_null(route("c")->v[TP_K_SERVERNAME].raw);
	assert_int_equal(route("c")->v[TP_K_FINGERPRINT].nlist, 0);
}

/* ---- errors, each with its line ---- */

static void
test_err_unknown_keys(void **state)
{
	static const struct ecase c[] = {
	    {CLIENT "bogus = 1\n", "t.ini:5: unknown key bogus", NULL},
	    {"[global]\nbogus = 1\n" CLIENT, "t.ini:2: unknown key bogus",
		NULL},
	    {"[global]\nconnect_timeout = 5s\n" CLIENT,
		"t.ini:2: connect_timeout is a route key, not allowed in "
		"[global]",
		NULL},
	    {"[global]\nmode = client\n" CLIENT,
		"t.ini:2: mode is a route key, not allowed in [global]", NULL},
	    {CLIENT "log_level = debug\n",
		"t.ini:5: log_level is a [global] key, not allowed in [c]",
		NULL},
	    {CLIENT "workers = 2\n",
		"t.ini:5: workers is a [global] key, not allowed in [c]", NULL},
	    {"workers = 2\n" CLIENT,
		"t.ini:1: workers: key outside a section (put it under "
		"[global] or a route)",
		NULL},
	    {"; x\n\nmode = client\n" CLIENT,
		"t.ini:3: mode: key outside a "
		"section",
		""},
	    /* keys are case-sensitive */
	    {CLIENT "Mode = client\n", "t.ini:5: unknown key Mode", NULL},
	};

	(void)state;
	run_cases(c, sizeof(c) / sizeof(c[0]));
	/* the route-key-in-global error is not also "unknown key" */
	load("[global]\nconnect_timeout = 5s\n" CLIENT);
	expect_errors(1);
	expect_no_diag_with("unknown key");
}

static void
test_err_duplicates(void **state)
{
	static const struct ecase c[] = {
	    {CLIENT "mode = server\n",
		"t.ini:5: duplicate key mode (first at line 2)", ""},
	    {CLIENT "\nconnect = 192.0.2.9:465\n",
		"t.ini:6: duplicate key connect (first at line 4)", ""},
	    {"[global]\nworkers = 1\nworkers = 2\n" CLIENT,
		"t.ini:3: duplicate key workers (first at line 2)", ""},
	    /* an indented line continues the previous key: a duplicate */
	    {"[c]\n"
	     "mode = client\n"
	     "accept = 127.0.0.1:2525\n"
	     "connect = 192.0.2.1:465,\n"
	     "    192.0.2.2:465\n",
		"t.ini:5: duplicate key connect (first at line 4)", ""},
	    {"[c]\n"
	     "  mode = client\n"
	     "  accept = 127.0.0.1:2525\n"
	     "  connect = 192.0.2.1:465\n",
		"t.ini:3: duplicate key mode (first at line 2)", "indented"},
	};

	(void)state;
	run_cases(c, sizeof(c) / sizeof(c[0]));
	/* the first value stays */
	load(CLIENT "mode = server\n");
	assert_int_equal(route("c")->mode, TP_MODE_CLIENT);
	assert_string_equal(route("c")->v[TP_K_MODE].raw, "client");
	assert_int_equal(route("c")->v[TP_K_MODE].line, 2);
}

static void
test_err_values(void **state)
{
	static const struct ecase c[] = {
	    /* booleans */
	    {CLIENT "session_cache = true\n",
		"t.ini:5: session_cache = true: must be yes or no", NULL},
	    {SERVER "session_tickets = 1\n",
		"t.ini:6: session_tickets = 1: must be yes or no", NULL},
	    /* durations */
	    {CLIENT "idle_timeout = 5 minutes\n",
		"t.ini:5: idle_timeout = 5 minutes: not a duration (like 30s, "
		"5m, 300)",
		NULL},
	    {CLIENT "connect_timeout = 10x\n",
		"t.ini:5: connect_timeout = 10x: not a duration", ""},
	    {CLIENT "handshake_timeout = 0\n",
		"t.ini:5: handshake_timeout = 0: out of range", ""},
	    {"[global]\nshutdown_grace = 31d\n" CLIENT,
		"t.ini:2: shutdown_grace = 31d: out of range", ""},
	    /* numbers */
	    {"[global]\ntls_loglevel = 5\n" CLIENT,
		"t.ini:2: tls_loglevel = 5: out of range", NULL},
	    {"[global]\ntls_loglevel = -1\n" CLIENT,
		"t.ini:2: tls_loglevel = -1: not a number", NULL},
	    {CLIENT "verify_depth = 0\n",
		"t.ini:5: verify_depth = 0: out of range", NULL},
	    {CLIENT "verify_depth = 101\n",
		"t.ini:5: verify_depth = 101: out of range", NULL},
	    /* enums */
	    {CLIENT "tls = ssl\n",
		"t.ini:5: tls = ssl: not one of the allowed values", NULL},
	    {CLIENT "security = strict\n",
		"t.ini:5: security = strict: not one of the allowed values",
		NULL},
	    {"[global]\nlog_level = verbose\n" CLIENT,
		"t.ini:2: log_level = verbose: not one of the allowed values",
		NULL},
	    {"[global]\nlog = file\n" CLIENT,
		"t.ini:2: log = file: not one of the allowed values", NULL},
	    {"[c]\nmode = proxy\naccept = 127.0.0.1:2525\n"
	     "connect = 192.0.2.1:465\n",
		"t.ini:2: mode = proxy: not one of the allowed values", NULL},
	    {CLIENT "ciphers = low\n", "t.ini:5: ciphers = low: ", "obsolete"},
	    {CLIENT "ciphers = export\n",
		"t.ini:5: ciphers = export: ", "obsolete"},
	    /* protocols */
	    {CLIENT "protocols = >=TLSv1.4\n",
		"t.ini:5: protocols = >=TLSv1.4: ", "unknown protocol"},
	    {CLIENT "protocols = >=TLSv1.3 <=TLSv1.2\n",
		"t.ini:5: protocols = >=TLSv1.3 <=TLSv1.2: ",
		"no protocol left"},
	    {CLIENT "protocols = >=TLSv1.1 !TLSv1.2\n",
		"t.ini:5: protocols = >=TLSv1.1 !TLSv1.2: ", "contiguous"},
	    /* empty values */
	    {CLIENT "idle_timeout =\n", "t.ini:5: idle_timeout = : empty value",
		NULL},
	    {CLIENT "cert_file = \n", "t.ini:5: cert_file = : empty value",
		NULL},
	};

	(void)state;
	run_cases(c, sizeof(c) / sizeof(c[0]));
	/* ciphers = low: the message says what to use */
	load(CLIENT "ciphers = low\n");
	expect_diag2("t.ini:5: ciphers = low: ", "use medium");
}

static void
test_err_addresses(void **state)
{
	static const struct ecase c[] = {
	    {"[c]\nmode = client\naccept = ::1:2525\nconnect = 192.0.2.1:465\n",
		"t.ini:3: accept = ::1:2525: IPv6 addresses need brackets: "
		"[IPv6]:PORT",
		NULL},
	    {"[c]\nmode = client\naccept = 127.0.0.1\nconnect = 192.0.2.1:465\n",
		"t.ini:3: accept = 127.0.0.1: expected HOST:PORT", NULL},
	    {"[c]\nmode = client\naccept = 127.0.0.1:70000\n"
	     "connect = 192.0.2.1:465\n",
		"t.ini:3: accept = 127.0.0.1:70000: bad port (0-65535)", NULL},
	    {"[c]\nmode = client\naccept = [::1]2525\n"
	     "connect = 192.0.2.1:465\n",
		"t.ini:3: accept = [::1]2525: expected [IPv6]:PORT", NULL},
	    {"[c]\nmode = client\naccept = 127.0.0.1:2525\n"
	     "connect = 192.0.2.1:465, 2001:db8::1:465\n",
		"t.ini:4: connect = 192.0.2.1:465, 2001:db8::1:465: IPv6 "
		"addresses need brackets",
		""},
	    {"[c]\nmode = client\naccept = 127.0.0.1:2525\n"
	     "connect = 192.0.2.1:465, 192.0.2.2\n",
		"t.ini:4: connect = 192.0.2.1:465, 192.0.2.2: expected "
		"HOST:PORT",
		NULL},
	    {"[c]\nmode = client\naccept = 127.0.0.1:2525\n"
	     "connect = mx.example.com:99999\n",
		"t.ini:4: connect = mx.example.com:99999: bad port (0-65535)",
		NULL},
	    /* parse fine, but not usable there */
	    {"[c]\nmode = client\naccept = mail.example.com:25\n"
	     "connect = 192.0.2.1:465\n",
		"t.ini:3: accept mail.example.com:25: listen on an IP address, "
		"* or localhost",
		NULL},
	    {"[c]\nmode = client\naccept = 127.0.0.1:2525\n"
	     "connect = *:465\n",
		"t.ini:4: connect *:465: needs a host and a port", NULL},
	    {"[c]\nmode = client\naccept = 127.0.0.1:2525\n"
	     "connect = 192.0.2.1:465 192.0.2.2:0\n",
		"t.ini:4: connect 192.0.2.2:0: needs a host and a port", NULL},
	    {"[global]\nstats = localhost\n" CLIENT,
		"t.ini:2: stats = localhost: expected HOST:PORT", NULL},
	};

	(void)state;
	run_cases(c, sizeof(c) / sizeof(c[0]));
}

/*
 * BUG (src/config.c, route_get() called from config_on_key()): struct
 * tp_cfg_route.line is documented as the line of the [section] header,
 * but route_get() is given the line of the route's first KEY, so "route X:
 * missing ..." (and the "has no cert_file" warning) point at that key.
 * For "[c]\naccept = ..." tlsproxy says "t.ini:2: route c: missing mode";
 * for the fourth case (header line 3, first key line 6) "t.ini:6: ...".
 * Fix: pass rd->sections[rd->cur_section].line to route_get().
 */
static void
test_err_missing_required(void **state)
{
	static const struct ecase c[] = {
	    {"[c]\naccept = 127.0.0.1:2525\nconnect = 192.0.2.1:465\n",
		"t.ini:1: route c: missing mode (client, server or gateway)",
		NULL},
	    {"[c]\nmode = client\nconnect = 192.0.2.1:465\n",
		"t.ini:1: route c: missing accept (HOST:PORT to listen on)",
		NULL},
	    {"[c]\nmode = client\naccept = 127.0.0.1:2525\n",
		"t.ini:1: route c: missing connect (HOST:PORT destination)",
		NULL},
	    {"; a comment\n\n[c]\n; what it does\n\nmode = client\n"
	     "accept = 127.0.0.1:2525\n",
		"t.ini:3: route c: missing connect (HOST:PORT destination)",
		NULL},
	    {CLIENT "\n[d]\n\nconnect = 192.0.2.1:465\n",
		"t.ini:6: route d: missing mode", ""},
	};

	(void)state;
	run_cases(c, sizeof(c) / sizeof(c[0]));
}

static void
test_route_header_line(void **state)
{
	(void)state;
	/* BUG (see test_err_missing_required): line of the first key */
	load("[global]\n\n[c]\n\n; comment\nmode = client\n"
	     "accept = 127.0.0.1:2525\nconnect = 192.0.2.1:465\n");
	expect_clean();
	assert_int_equal(route("c")->line, 3);
	/* the cert_file warning of a server route points at its header */
	load("[s]\n; no cert_file\nmode = server\naccept = 127.0.0.1:2465\n"
	     "connect = 127.0.0.1:25\n");
	expect_errors(0);
	expect_diag2("t.ini:1: warning: route s has no cert_file", NULL);
}

static void
test_err_sections(void **state)
{
	char longline[512];
	static const struct ecase c[] = {
	    {CLIENT "[empty]\n; nothing here\n",
		"t.ini:5: route empty has no keys", NULL},
	    {"[empty]\n\n" CLIENT, "t.ini:1: route empty has no keys", NULL},
	    {CLIENT "[c]\nidle_timeout = 5m\n",
		"t.ini:5: duplicate section [c] (first at line 1)", NULL},
	    {"[global]\nworkers = 2\n" CLIENT "[global]\nlog = syslog\n",
		"t.ini:7: duplicate section [global] (first at line 1)", NULL},
	    {CLIENT "mode client\n", "t.ini:5: expected KEY = VALUE", NULL},
	    {CLIENT "\n   just words\n", "t.ini:6: expected KEY = VALUE", NULL},
	    {CLIENT "[unterminated\n", "t.ini:5: section header without ']'",
		NULL},
	    {CLIENT "[bad name]\nmode = client\n",
		"t.ini:5: section name [bad name]: ", "letters"},
	    {CLIENT "[]\n",
		"t.ini:5: section name must be 1 to 49 "
		"characters",
		NULL},
	    {CLIENT "[aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa]\n",
		"t.ini:5: section name must be 1 to 49 characters", NULL},
	    {"[global]\n", "t.ini: no routes configured", NULL},
	    {"", "t.ini: no routes configured", NULL},
	};

	(void)state;
	run_cases(c, sizeof(c) / sizeof(c[0]));

	/* a 199-character comment is fine: inih's 200-byte lines are lifted */
	snprintf(longline, sizeof(longline), CLIENT "; %0197d\nbogus = 1\n", 0);
	assert_int_equal(strcspn(strstr(longline, "; "), "\n"), 199);
	load(longline);
	expect_diag("t.ini:6: unknown key bogus");
	expect_errors(1);
	/* a long value on a key line is kept whole (a TLSA record of an
	 * RSA key is 600 characters) */
	snprintf(longline, sizeof(longline), CLIENT "servername = %0190d\n", 0);
	load(longline);
	expect_errors(0);
	assert_int_equal(strlen(route("c")->v[TP_K_SERVERNAME].raw), 190);
	/* beyond 8192 characters a line is refused */
	{
		static char huge[9000 + 200];

		snprintf(
		    huge, sizeof(huge), CLIENT "servername = %09000d\n", 0);
		load(huge);
		expect_diag("t.ini:5: line too long (at most 8192 characters)");
		expect_errors(1);
	}
	/* 49 characters is the longest section name */
	load("[aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa]\n"
	     "mode = client\naccept = 127.0.0.1:2525\n"
	     "connect = 192.0.2.1:465\n");
	expect_clean();
	assert_int_equal(strlen(cfg->routes[0].name), 49);
}

static void
test_err_mode_keys(void **state)
{
	static const struct ecase c[] = {
	    {SERVER "servername = mx.example.com\n",
		"t.ini:6: servername applies to client routes only", NULL},
	    {SERVER "fingerprint = " FP_A "\n",
		"t.ini:6: fingerprint applies to client routes only", NULL},
	    {CLIENT "session_tickets = no\n",
		"t.ini:5: session_tickets applies to server routes only", NULL},
	    {CLIENT "\nhostname = mx.example.com\n",
		"t.ini:6: hostname applies to server and gateway routes only",
		NULL},
	    {SERVER "security = verify\n",
		"t.ini:6: security = verify: server routes take none, may or "
		"encrypt",
		NULL},
	    {SERVER "security = secure\n",
		"t.ini:6: security = secure: server routes take none, may or "
		"encrypt",
		NULL},
	    {SERVER "security = fingerprint\n",
		"t.ini:6: security = fingerprint: server routes take ", ""},
	    {SERVER "security = dane-only\n",
		"t.ini:6: security = dane-only: server routes take ", ""},
	};

	(void)state;
	run_cases(c, sizeof(c) / sizeof(c[0]));
	load(SERVER "servername = mx.example.com\n");
	expect_errors(1);
	/* none, may and encrypt are fine on a server route */
	load(SERVER "security = none\n");
	expect_clean();
	assert_int_equal(route("s")->security, TP_SEC_NONE);
	load(SERVER "security = may\n");
	expect_clean();
	load(SERVER "security = encrypt\n");
	expect_clean();
	assert_int_equal(route("s")->security, TP_SEC_ENCRYPT);
}

static void
test_err_accept_conflicts(void **state)
{
	static const struct ecase c[] = {
	    {CLIENT "[d]\nmode = client\naccept = 127.0.0.1:2525\n"
		    "connect = 192.0.2.1:465\n",
		"t.ini:7: accept 127.0.0.1:2525: already used by route c "
		"(line 3)",
		NULL},
	    {CLIENT "[d]\nmode = client\naccept = *:2525\n"
		    "connect = 192.0.2.1:465\n",
		"t.ini:7: accept *:2525: already used by route c (line 3)",
		NULL},
	    {"[w]\nmode = client\naccept = *:2525\nconnect = 192.0.2.1:465\n"
	     "[d]\nmode = client\naccept = 127.0.0.1:2525\n"
	     "connect = 192.0.2.1:465\n",
		"t.ini:7: accept 127.0.0.1:2525: already used by route w "
		"(line 3)",
		NULL},
	    {"[w]\nmode = client\naccept = *:2525\nconnect = 192.0.2.1:465\n"
	     "[d]\nmode = client\naccept = [::1]:2525\n"
	     "connect = 192.0.2.1:465\n",
		"t.ini:7: accept [::1]:2525: already used by route w (line 3)",
		NULL},
	    /* a client and a server route may not share it either */
	    {CLIENT "[s]\nmode = server\naccept = 127.0.0.1:2525\n"
		    "connect = 127.0.0.1:25\ncert_file = /x.pem\n",
		"t.ini:7: accept 127.0.0.1:2525: already used by route c "
		"(line 3)",
		NULL},
	};

	(void)state;
	run_cases(c, sizeof(c) / sizeof(c[0]));

	/* three routes on one address: each later one is reported once */
	load(CLIENT "[d]\nmode = client\naccept = 127.0.0.1:2525\n"
		    "connect = 192.0.2.1:465\n"
		    "[e]\nmode = client\naccept = 127.0.0.1:2525\n"
		    "connect = 192.0.2.1:465\n");
	expect_errors(2);
	expect_diag2("t.ini:7: accept 127.0.0.1:2525: already used", NULL);
	expect_diag2("t.ini:11: accept 127.0.0.1:2525: already used", NULL);

	/* port 0 never conflicts */
	load(
	    "[a]\nmode = client\naccept = 127.0.0.1:0\nconnect = 192.0.2.1:465\n"
	    "[b]\nmode = client\naccept = 127.0.0.1:0\nconnect = 192.0.2.1:465\n"
	    "[c]\nmode = client\naccept = *:0\nconnect = 192.0.2.1:465\n");
	expect_clean();
	/* other ports or other addresses are fine */
	load(CLIENT "[d]\nmode = client\naccept = 127.0.0.1:2526\n"
		    "connect = 192.0.2.1:465\n"
		    "[e]\nmode = client\naccept = 127.0.0.2:2525\n"
		    "connect = 192.0.2.1:465\n"
		    "[f]\nmode = client\naccept = [::1]:2525\n"
		    "connect = 192.0.2.1:465\n");
	expect_clean();
}

static void
test_err_key_files(void **state)
{
	static const struct ecase c[] = {
	    {SERVER "eckey_file = /x.key\n",
		"t.ini:6: eckey_file without eccert_file", NULL},
	    {"[s]\nmode = server\naccept = 127.0.0.1:2465\n"
	     "connect = 127.0.0.1:25\nkey_file = /k.pem\n",
		"t.ini:5: key_file without cert_file", NULL},
	    {CLIENT "key_file = k.pem\n", "t.ini:5: key_file without cert_file",
		NULL},
	};

	(void)state;
	run_cases(c, sizeof(c) / sizeof(c[0]));
	/* key_file with cert_file, or cert_file alone, is fine */
	load(SERVER "key_file = /etc/tlsproxy/s.key\n");
	expect_clean();
	load(SERVER "eccert_file = /e.pem\n");
	expect_clean();
}

static void
test_err_fingerprint_tlsa(void **state)
{
	static const struct ecase c[] = {
	    {CLIENT "fingerprint = 00\n",
		"t.ini:5: fingerprint = 00: expected a sha256 digest: 64 hex "
		"digits, colons allowed",
		NULL},
	    /* 63 and 65 digits */
	    {CLIENT "fingerprint = "
		    "0123456789abcdef0123456789abcdef0123456789abcdef0123456789"
		    "abcde\n",
		"t.ini:5: fingerprint = ", "sha256"},
	    {CLIENT "fingerprint = " FP_A "0\n",
		"t.ini:5: fingerprint = ", "sha256"},
	    {CLIENT "fingerprint = "
		    "0123456789abcdef0123456789abcdef0123456789abcdef0123456789"
		    "abcdeg\n",
		"t.ini:5: fingerprint = ", "sha256"},
	    {CLIENT "tlsa = 3 1 1 00\n",
		"t.ini:5: tlsa = 3 1 1 00: TLSA data is not hex of the right "
		"length",
		NULL},
	    {CLIENT "tlsa = 1 1 1 " FP_A "\n", "t.ini:5: tlsa = 1 1 1 ",
		"expected USAGE SELECTOR MTYPE HEX"},
	    {CLIENT "tlsa = 3 2 1 " FP_A "\n", "t.ini:5: tlsa = 3 2 1 ",
		"expected USAGE SELECTOR MTYPE HEX"},
	    {CLIENT "tlsa = 3 1 3 " FP_A "\n", "t.ini:5: tlsa = 3 1 3 ",
		"expected USAGE SELECTOR MTYPE HEX"},
	    {CLIENT "tlsa = 3 1 1\n", "t.ini:5: tlsa = 3 1 1: ", ""},
	    {CLIENT "tlsa = 3 1 2 " FP_A "\n", "t.ini:5: tlsa = 3 1 2 ",
		"not hex of the right length"},
	    {CLIENT "tlsa = 2 0 0 abc\n",
		"t.ini:5: tlsa = 2 0 0 abc: ", "not hex"},
	    {CLIENT "tlsa = x\n", "t.ini:5: tlsa = x: ", "expected USAGE"},
	};

	(void)state;
	run_cases(c, sizeof(c) / sizeof(c[0]));
	/* valid forms: errors 0 (the keys are not implemented: warnings) */
	load(CLIENT "fingerprint = " FP_A "\nfingerprint = " FP_C "\n"
		    "tlsa = 3 1 1 " FP_A "\ntlsa = 2 0 2 " FP_A FP_B "\n"
		    "tlsa = 3 0 0 3082abcd\n");
	expect_errors(0);
}

static void
test_err_security_needs(void **state)
{
	static const struct ecase c[] = {
	    {CLIENT "security = fingerprint\n",
		"t.ini:5: security = fingerprint needs at least one "
		"fingerprint",
		NULL},
	    {CLIENT "security = dane-only\n",
		"t.ini:5: security = dane-only needs at least one tlsa record",
		NULL},
	    {CLIENT "security = verify\n",
		"t.ini:5: security = verify with an IP-literal connect needs "
		"match or nexthop",
		NULL},
	    {CLIENT "security = secure\n",
		"t.ini:5: security = secure with an IP-literal connect needs "
		"match or nexthop",
		NULL},
	    {"[c]\nmode = client\naccept = 127.0.0.1:2525\n"
	     "connect = [2001:db8::1]:465\nsecurity = verify\n",
		"t.ini:5: security = verify with an IP-literal connect", ""},
	};

	(void)state;
	run_cases(c, sizeof(c) / sizeof(c[0]));

	/* a destination by name gets its TLSA records from DNS (spec 4.8) */
	load_ta("[c]\nmode = client\naccept = 127.0.0.1:2525\n"
		"connect = mx:example.com\nsecurity = dane-only\n");
	expect_clean();
	load_ta("[c]\nmode = client\naccept = 127.0.0.1:2525\n"
		"connect = 192.0.2.1:25 mx.example.com:25\n"
		"security = dane-only\n");
	expect_clean();
	/* a fingerprint satisfies security = fingerprint */
	load(CLIENT "security = fingerprint\nfingerprint = " FP_A "\n");
	expect_errors(0);
	expect_no_diag_with("needs at least one");
	/* match or nexthop satisfies verify with an IP literal */
	load(CLIENT "security = verify\nmatch = hostname\n");
	expect_errors(0);
	load(CLIENT "security = secure\nnexthop = example.com\n");
	expect_errors(0);
	/* a host name connect needs neither */
	load_ta("[c]\nmode = client\naccept = 127.0.0.1:2525\n"
		"connect = mx.example.com:465\nsecurity = verify\n");
	expect_errors(0);
	expect_no_diag_with("IP-literal");
}

static void
test_errors_all_reported(void **state)
{
	(void)state;
	/* parsing goes on after an error; diagnostics come in file order */
	load("[global]\n"                 /* 1 */
	     "bogus = 1\n"                /* 2 */
	     "workers = 0\n"              /* 3 */
	     "[c]\n"                      /* 4 */
	     "mode = client\n"            /* 5 */
	     "accept = 127.0.0.1:2525\n"  /* 6 */
	     "connect = 192.0.2.1:465\n"  /* 7 */
	     "session_cache = maybe\n"    /* 8 */
	     "idle_timeout = forever\n"); /* 9 */
	expect_errors(4);
	assert_int_equal(find_diag("t.ini:2: unknown key bogus", false), 0);
	assert_int_equal(find_diag("t.ini:3: workers = 0", true), 1);
	assert_int_equal(find_diag("t.ini:8: session_cache = maybe", true), 2);
	assert_int_equal(find_diag("t.ini:9: idle_timeout = forever", true), 3);
	/* every diagnostic is "NAME:LINE: ..." */
	for (size_t i = 0; i < cfg->ndiags; i++)
		assert_true(strncmp(cfg->diags[i], "t.ini:", 6) == 0);
	assert_int_equal(cfg->ndiags, (size_t)(cfg->nerrors + cfg->nwarnings));
}

/* ---- warnings ---- */

static void
test_warn_not_implemented(void **state)
{
	(void)state;
	/* connection_reuse works on client routes (spec 4.7) ... */
	load(CLIENT "connection_reuse = yes\nconnection_cache_time = 5s\n"
		    "connection_reuse_time = 60s\nconnection_reuse_count = 10\n"
		    "connection_cache_size = 4\n");
	expect_clean();
	assert_true(route("c")->v[TP_K_CONNECTION_CACHE_TIME].n == 5000);
	assert_true(route("c")->v[TP_K_CONNECTION_REUSE_TIME].n == 60000);
	assert_true(route("c")->v[TP_K_CONNECTION_REUSE_COUNT].n == 10);
	assert_true(route("c")->v[TP_K_CONNECTION_CACHE_SIZE].n == 4);
	/* ... with Postfix's defaults */
	load(CLIENT "connection_reuse = yes\n");
	expect_clean();
	assert_true(route("c")->v[TP_K_CONNECTION_CACHE_TIME].n == 2000);
	assert_true(route("c")->v[TP_K_CONNECTION_REUSE_TIME].n == 300000);
	assert_true(route("c")->v[TP_K_CONNECTION_REUSE_COUNT].n == 0);
	load(CLIENT "connection_cache_size = 0\n");
	expect_errors(1);
	load(SERVER "connection_reuse = yes\n");
	expect_errors(1);

	/* the value is still parsed and validated */
	load(CLIENT "connection_reuse = maybe\n");
	expect_errors(1);
	expect_diag("t.ini:5: connection_reuse = maybe: must be yes or no");

	/* implemented keys do not */
	load(SERVER "session_tickets = yes\n");
	expect_clean();
}

/* valid_value - a value of key K's type that parses. */
static const char *
valid_value(int k, char *buf, size_t len)
{
	const struct tp_keydef *d = &tp_keys[k];

	switch (d->type) {
	case T_STR:
	case T_LIST:
		return "x.example";
	case T_PATH:
		return "/tmp/x";
	case T_BOOL:
		return "yes";
	case T_DUR:
		return "30s";
	case T_UINT:
	case T_WORKERS:
		snprintf(buf, len, "%llu", d->lo > 0 ? d->lo : 1);
		return buf;
	case T_ENUM:
		snprintf(buf, len, "%.*s", (int)strcspn(d->choices, "|"),
		    d->choices);
		return buf;
	case T_ADDR:
		return "127.0.0.1:9100";
	case T_ADDRLIST:
		return "192.0.2.9:25";
	case T_PROTOCOLS:
		return ">=TLSv1.2";
	case T_FINGERPRINT:
		return FP_A;
	case T_TLSA:
		return "3 1 1 " FP_A;
	case T_SNI:
		return "x.example /tmp/x.pem";
	case T_DNS_RESOLVER:
		return "192.0.2.53@5353";
	case T_DNS_STUB:
		return "test 127.0.0.1@5353";
	}
	return "x";
}

static void
test_warn_every_notimpl_key(void **state)
{
	char text[1024], val[64], want[160];
	int n = 0, m = 0;

	(void)state;
	for (int k = 0; k < TP_K_COUNT; k++) {
		const struct tp_keydef *d = &tp_keys[k];
		const char *v;

		if (!(d->flags & F_NOTIMPL))
			continue;
		v = valid_value(k, val, sizeof(val));
		if (d->scope == G)
			snprintf(text, sizeof(text),
			    "[global]\n%s = %s\n" CLIENT, d->name, v);
		else if (d->scope == S)
			snprintf(
			    text, sizeof(text), SERVER "%s = %s\n", d->name, v);
		else
			snprintf(
			    text, sizeof(text), CLIENT "%s = %s\n", d->name, v);
		load(text);
		snprintf(want, sizeof(want),
		    "t.ini:%d: warning: %s is not implemented yet",
		    d->scope == G       ? 2
			: d->scope == S ? 6
					: 5,
		    d->name);
		if (cfg->nerrors != 0) {
			dump_diags();
			fail_msg(
			    "%s = %s: %d errors", d->name, v, cfg->nerrors);
		}
		assert_true(cfg->nwarnings >= 1);
		expect_diag(want);
		n++;
	}
	/* every key is implemented now (connection_reuse was the last) */
	assert_int_equal(n, 0);
	/* and no implemented key warns */
	for (int k = 0; k < TP_K_COUNT; k++) {
		const struct tp_keydef *d = &tp_keys[k];
		const char *v;

		if ((d->flags & F_NOTIMPL) || k == TP_K_MODE ||
		    k == TP_K_ACCEPT || k == TP_K_CONNECT)
			continue;
		v = valid_value(k, val, sizeof(val));
		if (d->scope == G)
			snprintf(text, sizeof(text),
			    "[global]\n%s = %s\n" CLIENT, d->name, v);
		else if (d->scope == S)
			snprintf(
			    text, sizeof(text), SERVER "%s = %s\n", d->name, v);
		else
			snprintf(
			    text, sizeof(text), CLIENT "%s = %s\n", d->name, v);
		load(text);
		expect_no_diag_with("is not implemented yet");
		m++;
	}
	assert_true(m >= 10);
}

static void
test_warn_levels(void **state)
{
	(void)state;
	/* verification levels are implemented: no warning, not marked */
	load_ta("[c]\nmode = client\naccept = 127.0.0.1:2525\n"
		"connect = mx.example.com:465\nsecurity = verify\n");
	expect_errors(0);
	assert_int_equal(cfg->nwarnings, 0);
	assert_false(route("c")->unimplemented);
	assert_int_equal(route("c")->security, TP_SEC_VERIFY);
	/* starttls is implemented: no warning, not marked */
	load(CLIENT "tls = starttls\n");
	expect_errors(0);
	assert_int_equal(cfg->nwarnings, 0);
	assert_int_equal(route("c")->tls, TP_TLS_STARTTLS);
	assert_false(route("c")->unimplemented);
	/* may with implicit acts as encrypt */
	load(CLIENT "security = may\n");
	expect_errors(0);
	expect_diag2(
	    "t.ini:5: warning: security = may with tls = implicit", NULL);
	assert_false(route("c")->unimplemented);
	/* a server route without a certificate */
	load("[s]\nmode = server\naccept = 127.0.0.1:2465\n"
	     "connect = 127.0.0.1:25\n");
	expect_errors(0);
	assert_int_equal(cfg->nwarnings, 1);
	expect_diag2("t.ini:", "route s has no cert_file");
	load("[s]\nmode = server\naccept = 127.0.0.1:2465\n"
	     "connect = 127.0.0.1:25\nsecurity = none\n");
	expect_clean();
}

/* ---- repeatable keys ---- */

static void
test_repeatable(void **state)
{
	const struct tp_cval *v;

	(void)state;
	load(CLIENT                     /* 1-4 */
	    "security = fingerprint\n"  /* 5 */
	    "fingerprint = " FP_A "\n"  /* 6 */
	    "; the next one\n"          /* 7 */
	    "fingerprint = " FP_B "\n"  /* 8 */
	    "fingerprint = " FP_C "\n"  /* 9 */
	    "tlsa = 3 1 1 " FP_A "\n"); /* 10 */
	expect_errors(0);
	v = &route("c")->v[TP_K_FINGERPRINT];
	assert_true(v->set);
	assert_int_equal(v->nlist, 3);
	assert_string_equal(v->list[0], FP_A);
	assert_string_equal(v->list[1], FP_B);
	assert_string_equal(v->list[2], FP_C);
	assert_int_equal(v->lines[0], 6);
	assert_int_equal(v->lines[1], 8);
	assert_int_equal(v->lines[2], 9);
	assert_int_equal(v->line, 6);
	assert_string_equal(v->raw, FP_A);
	v = &route("c")->v[TP_K_TLSA];
	assert_int_equal(v->nlist, 1);
	assert_int_equal(v->lines[0], 10);
	/* a bad occurrence is reported and not collected */
	load(CLIENT "fingerprint = " FP_A "\nfingerprint = 12\n"
		    "fingerprint = " FP_B "\n");
	expect_errors(1);
	expect_diag2("t.ini:6: fingerprint = 12: ", NULL);
	v = &route("c")->v[TP_K_FINGERPRINT];
	assert_int_equal(v->nlist, 2);
	assert_int_equal(v->lines[0], 5);
	assert_int_equal(v->lines[1], 7);
	/* non-repeatable keys are not collected */
	assert_int_equal(route("c")->v[TP_K_CONNECT].nlist, 0);
}

/* ---- paths ---- */

static char tmpdir[64];

static void
write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	assert_int_equal(fputs(text, f) >= 0, 1);
	assert_int_equal(fclose(f), 0);
}

static void
test_relative_paths(void **state)
{
	char ini[128], want[256], cwd[PATH_MAX];
	const struct tp_cfg_route *r;

	(void)state;
	strcpy(tmpdir, "/tmp/tp_test_config.XXXXXX");
	assert_non_null(mkdtemp(tmpdir));
	snprintf(ini, sizeof(ini), "%s/tlsproxy.ini", tmpdir);
	write_file(ini,
	    "[global]\n"
	    "pid_file = run/tlsproxy.pid\n"
	    "[s]\n"
	    "mode = server\n"
	    "accept = 127.0.0.1:2465\n"
	    "connect = 127.0.0.1:25\n"
	    "cert_file = certs/mail.pem\n"
	    "key_file = /etc/ssl/private/mail.key\n"
	    "eccert_file = ./ec.pem\n");
	cfg = tp_config_load(ini);
	assert_non_null(cfg);
	expect_errors(0);
	assert_string_equal(cfg->path, ini);
	assert_string_equal(cfg->dir, tmpdir);
	r = route("s");
	snprintf(want, sizeof(want), "%s/certs/mail.pem", tmpdir);
	assert_string_equal(r->v[TP_K_CERT_FILE].s, want);
	assert_string_equal(r->v[TP_K_CERT_FILE].raw, "certs/mail.pem");
	assert_string_equal(r->v[TP_K_KEY_FILE].s, "/etc/ssl/private/mail.key");
	snprintf(want, sizeof(want), "%s/./ec.pem", tmpdir);
	assert_string_equal(r->v[TP_K_ECCERT_FILE].s, want);
	snprintf(want, sizeof(want), "%s/run/tlsproxy.pid", tmpdir);
	assert_string_equal(cfg->g[TP_K_PID_FILE].s, want);
	/* diagnostics name the file as given */
	write_file(ini, "[c]\nmode = client\nbogus = 1\n");
	tp_config_free(cfg);
	cfg = tp_config_load(ini);
	snprintf(want, sizeof(want), "%s:3: unknown key bogus", ini);
	expect_diag(want);
	tp_config_free(cfg);
	cfg = NULL;

	/* a config path relative to the working directory */
	assert_non_null(getcwd(cwd, sizeof(cwd)));
	snprintf(want, sizeof(want), "%s/conf", tmpdir);
	assert_int_equal(mkdir(want, 0700), 0);
	snprintf(ini, sizeof(ini), "%s/conf/t.ini", tmpdir);
	write_file(ini, CLIENT "cert_file = c.pem\n");
	assert_int_equal(chdir(tmpdir), 0);
	cfg = tp_config_load("conf/t.ini");
	assert_int_equal(chdir(cwd), 0);
	expect_errors(0);
	assert_string_equal(cfg->dir, "conf");
	assert_string_equal(route("c")->v[TP_K_CERT_FILE].s, "conf/c.pem");
	unlink(ini);
	rmdir(want);
	snprintf(ini, sizeof(ini), "%s/tlsproxy.ini", tmpdir);
	unlink(ini);
	assert_int_equal(rmdir(tmpdir), 0);
}

static void
test_resolve(void **state)
{
	char *p;

	(void)state;
	load(CLIENT);
	/* from memory: the directory is "." */
	assert_string_equal(cfg->dir, ".");
	p = tp_config_resolve(cfg, "a/b.pem");
	assert_string_equal(p, "./a/b.pem");
	free(p);
	p = tp_config_resolve(cfg, "/etc/x.pem");
	assert_string_equal(p, "/etc/x.pem");
	free(p);
	tp_config_free(cfg);
	cfg = tp_config_load_string("/etc/tlsproxy/tlsproxy.ini", CLIENT);
	assert_string_equal(cfg->dir, "/etc/tlsproxy");
	p = tp_config_resolve(cfg, "k.pem");
	assert_string_equal(p, "/etc/tlsproxy/k.pem");
	free(p);
}

static void
test_missing_file(void **state)
{
	(void)state;
	cfg = tp_config_load("/nonexistent/dir/tlsproxy.ini");
	assert_non_null(cfg);
	assert_int_equal(cfg->nerrors, 1);
	expect_diag("/nonexistent/dir/tlsproxy.ini: cannot open: No such file "
		    "or directory");
	assert_int_equal(cfg->nroutes, 0);
}

static void
test_diag_api(void **state)
{
	(void)state;
	load(CLIENT);
	expect_clean();
	tp_config_diag(cfg, 12, false, "key_file %s: %s", "/x/key.pem",
	    "mode 0644 is readable by others");
	tp_config_diag(cfg, 3, true, "something %d", 42);
	tp_config_diag(cfg, 0, false, "global problem");
	assert_int_equal(cfg->nerrors, 2);
	assert_int_equal(cfg->nwarnings, 1);
	assert_int_equal(cfg->ndiags, 3);
	assert_string_equal(cfg->diags[0],
	    "t.ini:12: key_file /x/key.pem: mode "
	    "0644 is readable by others");
	assert_string_equal(cfg->diags[1], "t.ini:3: warning: something 42");
	assert_string_equal(cfg->diags[2], "t.ini: global problem");
	/* freeing NULL is fine */
	tp_config_free(NULL);
}

/* ---- DNS: [global] dns_* keys, mx: destinations, trust anchors ---- */

#define WHY_DOMAIN                                                             \
	"bad domain name (letters, digits, '-' and '_'; labels of 1 to 63 "    \
	"characters, 253 in all; not all digits at the end)"
#define WHY_RESOLVER                                                           \
	"expected recursive, resolv.conf or a list of IP[@PORT] forwarders"
#define WHY_IP "expected an IP address (IP or IP@PORT)"
#define WHY_MX_ADDR                                                             \
	"mx: takes a domain name, not an address (leave out mx: to connect to " \
	"an address)"

static void
test_dns_defaults(void **state)
{
	(void)state;
	load(CLIENT SERVER);
	expect_clean();
	assert_int_equal(cfg->dns_mode, TP_DNS_RECURSIVE);
	assert_string_equal(cfg->g[TP_K_DNS_RESOLVER].raw, "recursive");
	assert_int_equal(cfg->ndns_fwd, 0);
	assert_null(cfg->dns_fwd);
	assert_int_equal(cfg->ndns_stubs, 0);
	assert_null(cfg->dns_stubs);
	assert_true(cfg->g[TP_K_DNS_TIMEOUT].n == 10000);
	assert_string_equal(
	    cfg->g[TP_K_DNS_TRUST_ANCHOR].s, "/usr/share/dns/root.key");
	assert_false(cfg->g[TP_K_DNS_TRUST_ANCHOR].set);
	assert_int_equal(cfg->g[TP_K_DNS_TRUST_ANCHOR].line, 0);
	/* IP literals only: no DNS, the anchor file is not even read */
	assert_false(cfg->dns_needed);
	assert_int_equal(cfg->ndns_ta, 0);
	assert_null(cfg->dns_ta);
}

static void
test_dns_resolver(void **state)
{
	char text[1024];
	size_t n;

	(void)state;
	load("[global]\ndns_resolver = recursive\n" CLIENT);
	expect_clean();
	assert_int_equal(cfg->dns_mode, TP_DNS_RECURSIVE);
	assert_int_equal(cfg->ndns_fwd, 0);
	assert_int_equal(cfg->g[TP_K_DNS_RESOLVER].line, 2);
	load("[global]\ndns_resolver = 192.0.2.53\n" CLIENT);
	expect_clean();
	assert_int_equal(cfg->dns_mode, TP_DNS_FORWARD);
	assert_int_equal(cfg->ndns_fwd, 1);
	assert_string_equal(cfg->dns_fwd[0], "192.0.2.53");
	/* commas and spaces; ports in plain decimal; IPv6 without brackets */
	load("[global]\ndns_resolver = 192.0.2.53@5353, 2001:db8::53 "
	     "::1@053,127.0.0.1@65535\n" CLIENT);
	expect_clean();
	assert_int_equal(cfg->dns_mode, TP_DNS_FORWARD);
	assert_int_equal(cfg->ndns_fwd, 4);
	assert_string_equal(cfg->dns_fwd[0], "192.0.2.53@5353");
	assert_string_equal(cfg->dns_fwd[1], "2001:db8::53");
	assert_string_equal(cfg->dns_fwd[2], "::1@53");
	assert_string_equal(cfg->dns_fwd[3], "127.0.0.1@65535");
	/* 16 forwarders fit, 17 do not */
	n = (size_t)snprintf(text, sizeof(text), "[global]\ndns_resolver =");
	for (int i = 1; i <= 16; i++)
		n += (size_t)snprintf(
		    text + n, sizeof(text) - n, " 192.0.2.%d", i);
	snprintf(text + n, sizeof(text) - n, "\n" CLIENT);
	load(text);
	expect_clean();
	assert_int_equal(cfg->ndns_fwd, 16);
	assert_string_equal(cfg->dns_fwd[15], "192.0.2.16");
	snprintf(text + n, sizeof(text) - n, " 192.0.2.17\n" CLIENT);
	load(text);
	expect_diag2("t.ini:2: dns_resolver = 192.0.2.1 ",
	    "192.0.2.17: at most 16 forwarders");
	expect_errors(1);
	/* after an error, the default (and nothing half-parsed) */
	assert_int_equal(cfg->dns_mode, TP_DNS_RECURSIVE);
	assert_int_equal(cfg->ndns_fwd, 0);
}

static void
test_err_dns_resolver(void **state)
{
	static const struct ecase c[] = {
	    {"[global]\ndns_resolver = recursive 192.0.2.1\n" CLIENT,
		"t.ini:2: dns_resolver = recursive 192.0.2.1: recursive and "
		"resolv.conf stand alone, not in a list",
		NULL},
	    {"[global]\ndns_resolver = 192.0.2.1, resolv.conf\n" CLIENT,
		"t.ini:2: dns_resolver = 192.0.2.1, resolv.conf: recursive and "
		"resolv.conf stand alone, not in a list",
		NULL},
	    {"[global]\ndns_resolver = recursiv\n" CLIENT,
		"t.ini:2: dns_resolver = recursiv: " WHY_RESOLVER, NULL},
	    {"[global]\ndns_resolver = Recursive\n" CLIENT,
		"t.ini:2: dns_resolver = Recursive: " WHY_RESOLVER, NULL},
	    {"[global]\ndns_resolver = dns.example\n" CLIENT,
		"t.ini:2: dns_resolver = dns.example: " WHY_RESOLVER, NULL},
	    {"[global]\ndns_resolver = 192.0.2.300\n" CLIENT,
		"t.ini:2: dns_resolver = 192.0.2.300: " WHY_RESOLVER, NULL},
	    {"[global]\ndns_resolver = ,\n" CLIENT,
		"t.ini:2: dns_resolver = ,: " WHY_RESOLVER, NULL},
	    {"[global]\ndns_resolver = 192.0.2.1:53\n" CLIENT,
		"t.ini:2: dns_resolver = 192.0.2.1:53: write a port as IP@PORT",
		NULL},
	    {"[global]\ndns_resolver = 192.0.2.1@0\n" CLIENT,
		"t.ini:2: dns_resolver = 192.0.2.1@0: bad port (1-65535)",
		NULL},
	    {"[global]\ndns_resolver = 192.0.2.1 ::1@65536\n" CLIENT,
		"t.ini:2: dns_resolver = 192.0.2.1 ::1@65536: bad port "
		"(1-65535)",
		NULL},
	    {"[global]\ndns_resolver = 192.0.2.1@dns\n" CLIENT,
		"t.ini:2: dns_resolver = 192.0.2.1@dns: bad port (1-65535)",
		NULL},
	    {"[global]\ndns_resolver = [::1]@53\n" CLIENT,
		"t.ini:2: dns_resolver = [::1]@53: write the address without "
		"brackets: IP or IP@PORT",
		NULL},
	    {"[global]\ndns_resolver = 2001:db8::zz\n" CLIENT,
		"t.ini:2: dns_resolver = 2001:db8::zz: " WHY_IP, NULL},
	    {"[global]\ndns_resolver =\n" CLIENT,
		"t.ini:2: dns_resolver = : empty value", NULL},
	    {"[global]\ndns_resolver = recursive\ndns_resolver = recursive\n" CLIENT,
		"t.ini:3: duplicate key dns_resolver (first at line 2)", NULL},
	    {CLIENT "dns_resolver = recursive\n",
		"t.ini:5: dns_resolver is a [global] key, not allowed in [c]",
		NULL},
	};

	(void)state;
	run_cases(c, sizeof(c) / sizeof(c[0]));
}

static void
test_dns_resolvconf_file(void **state)
{
	char path[160], why[300], **a;
	int n;

	(void)state;
	snprintf(path, sizeof(path), "%s/resolv.conf", ta_dir);
	write_text(path,
	    "# generated\n"
	    "search example.com\n"
	    "nameserver 192.0.2.53\n"
	    "  nameserver\t2001:db8::53 # trailing comment\n"
	    "nameserver fe80::1%eth0\n"
	    "nameserver dns.example\n" /* not an address: skipped */
	    "nameserver\n"
	    "nameservers 192.0.2.99\n"
	    "; nameserver 192.0.2.98\n"
	    "nameserver 192.0.2.54;x\n"
	    "options edns0 trust-ad\n");
	n = tp_config_dns_read_resolvconf(path, &a, why, sizeof(why));
	assert_int_equal(n, 4);
	assert_string_equal(a[0], "192.0.2.53");
	assert_string_equal(a[1], "2001:db8::53");
	assert_string_equal(a[2], "fe80::1%eth0");
	assert_string_equal(a[3], "192.0.2.54");
	tp_config_dns_strv_free(a, (size_t)n);
	/* at most 16 */
	{
		char text[1024];
		size_t o = 0;

		for (int i = 1; i <= 20; i++)
			o += (size_t)snprintf(text + o, sizeof(text) - o,
			    "nameserver 192.0.2.%d\n", i);
		write_text(path, text);
	}
	n = tp_config_dns_read_resolvconf(path, &a, why, sizeof(why));
	assert_int_equal(n, 16);
	assert_string_equal(a[15], "192.0.2.16");
	tp_config_dns_strv_free(a, (size_t)n);
	/* none */
	write_text(path, "search example.com\nnameserver localhost\n");
	assert_int_equal(
	    tp_config_dns_read_resolvconf(path, &a, why, sizeof(why)), -1);
	assert_null(a);
	{
		char want[300];

		snprintf(
		    want, sizeof(want), "no nameserver address in %s", path);
		assert_string_equal(why, want);
	}
	unlink(path);
	assert_int_equal(
	    tp_config_dns_read_resolvconf(path, &a, why, sizeof(why)), -1);
	assert_non_null(
	    strstr(why, ": cannot read: No such file or directory"));
}

static void
test_dns_resolvconf(void **state)
{
	char why[300], want[400], **a;
	int n;

	(void)state;
	/* what this host's /etc/resolv.conf gives, whatever it holds */
	n = tp_config_dns_read_resolvconf(TP_RESOLV_CONF, &a, why, sizeof(why));
	load("[global]\ndns_resolver = resolv.conf\n" CLIENT);
	assert_int_equal(cfg->dns_mode, TP_DNS_RESOLVCONF);
	if (n > 0) {
		expect_clean();
		assert_int_equal(cfg->ndns_fwd, (size_t)n);
		for (int i = 0; i < n; i++)
			assert_string_equal(cfg->dns_fwd[i], a[i]);
		tp_config_dns_strv_free(a, (size_t)n);
	} else {
		snprintf(want, sizeof(want),
		    "t.ini:2: dns_resolver = resolv.conf: %s", why);
		expect_diag(want);
		expect_errors(1);
		assert_int_equal(cfg->ndns_fwd, 0);
	}
}

static void
test_dns_stub(void **state)
{
	const struct tp_dns_stub *st;

	(void)state;
	load("[global]\n"                                       /* 1 */
	     "dns_stub = Test 127.0.0.1@25353 ::1\n"            /* 2 */
	     "dns_stub = example.COM. 192.0.2.1,192.0.2.2@53\n" /* 3 */
	     "; the root, for a lab\n"                          /* 4 */
	     "dns_stub = . 192.0.2.9\n"                         /* 5 */
	     "dns_stub = 2.0.192.in-addr.arpa 192.0.2.9\n"      /* 6 */
	    CLIENT);
	expect_clean();
	assert_int_equal(cfg->ndns_stubs, 4);
	st = &cfg->dns_stubs[0];
	assert_string_equal(st->zone, "test.");
	assert_int_equal(st->line, 2);
	assert_int_equal(st->naddrs, 2);
	assert_string_equal(st->addrs[0], "127.0.0.1@25353");
	assert_string_equal(st->addrs[1], "::1");
	st = &cfg->dns_stubs[1];
	assert_string_equal(st->zone, "example.com.");
	assert_int_equal(st->line, 3);
	assert_int_equal(st->naddrs, 2);
	assert_string_equal(st->addrs[0], "192.0.2.1");
	assert_string_equal(st->addrs[1], "192.0.2.2@53");
	st = &cfg->dns_stubs[2];
	assert_string_equal(st->zone, ".");
	assert_int_equal(st->line, 5);
	assert_int_equal(st->naddrs, 1);
	assert_string_equal(cfg->dns_stubs[3].zone, "2.0.192.in-addr.arpa.");
	/* the raw lines stay in the key's list too */
	assert_int_equal(cfg->g[TP_K_DNS_STUB].nlist, 4);
	assert_int_equal(cfg->g[TP_K_DNS_STUB].lines[3], 6);
	/* stubs go with any resolver mode */
	load("[global]\ndns_resolver = 192.0.2.53\n"
	     "dns_stub = test 127.0.0.1@5353\n" CLIENT);
	expect_clean();
	assert_int_equal(cfg->dns_mode, TP_DNS_FORWARD);
	assert_int_equal(cfg->ndns_stubs, 1);
}

static void
test_err_dns_stub(void **state)
{
	char text[1024];
	size_t n;
	static const struct ecase c[] = {
	    {"[global]\ndns_stub = test\n" CLIENT,
		"t.ini:2: dns_stub = test: expected ZONE IP[@PORT] "
		"[IP[@PORT]...]",
		NULL},
	    {"[global]\ndns_stub = 127.0.0.1@5353\n" CLIENT,
		"t.ini:2: dns_stub = 127.0.0.1@5353: expected ZONE IP[@PORT] "
		"[IP[@PORT]...]",
		NULL},
	    {"[global]\ndns_stub = te$t 127.0.0.1\n" CLIENT,
		"t.ini:2: dns_stub = te$t 127.0.0.1: " WHY_DOMAIN, NULL},
	    {"[global]\ndns_stub = 192.0.2.1 127.0.0.1\n" CLIENT,
		"t.ini:2: dns_stub = 192.0.2.1 127.0.0.1: " WHY_DOMAIN, NULL},
	    {"[global]\ndns_stub = a..test 127.0.0.1\n" CLIENT,
		"t.ini:2: dns_stub = a..test 127.0.0.1: " WHY_DOMAIN, NULL},
	    {"[global]\ndns_stub = test ns.test\n" CLIENT,
		"t.ini:2: dns_stub = test ns.test: " WHY_IP, NULL},
	    {"[global]\ndns_stub = test 127.0.0.1:5353\n" CLIENT,
		"t.ini:2: dns_stub = test 127.0.0.1:5353: write a port as "
		"IP@PORT",
		NULL},
	    {"[global]\ndns_stub = test 127.0.0.1@0\n" CLIENT,
		"t.ini:2: dns_stub = test 127.0.0.1@0: bad port (1-65535)",
		NULL},
	    {"[global]\ndns_stub = test [::1]@53\n" CLIENT,
		"t.ini:2: dns_stub = test [::1]@53: write the address without "
		"brackets: IP or IP@PORT",
		NULL},
	    {"[global]\ndns_stub =\n" CLIENT,
		"t.ini:2: dns_stub = : empty value", NULL},
	    /* one zone, one line */
	    {"[global]\ndns_stub = test 127.0.0.1\n"
	     "dns_stub = TEST. 192.0.2.2\n" CLIENT,
		"t.ini:3: dns_stub TEST. 192.0.2.2: zone test. already has "
		"servers (line 2)",
		NULL},
	    {CLIENT "dns_stub = test 127.0.0.1\n",
		"t.ini:5: dns_stub is a [global] key, not allowed in [c]",
		NULL},
	};

	(void)state;
	run_cases(c, sizeof(c) / sizeof(c[0]));
	/* the repeated zone is dropped, the first kept */
	load("[global]\ndns_stub = test 127.0.0.1\n"
	     "dns_stub = test. 192.0.2.2\n" CLIENT);
	expect_errors(1);
	assert_int_equal(cfg->ndns_stubs, 1);
	assert_string_equal(cfg->dns_stubs[0].addrs[0], "127.0.0.1");
	/* 16 servers fit, 17 do not */
	n = (size_t)snprintf(text, sizeof(text), "[global]\ndns_stub = test");
	for (int i = 1; i <= 16; i++)
		n += (size_t)snprintf(
		    text + n, sizeof(text) - n, " 192.0.2.%d", i);
	snprintf(text + n, sizeof(text) - n, "\n" CLIENT);
	load(text);
	expect_clean();
	assert_int_equal(cfg->dns_stubs[0].naddrs, 16);
	snprintf(text + n, sizeof(text) - n, ",192.0.2.17\n" CLIENT);
	load(text);
	expect_diag2("t.ini:2: dns_stub = test 192.0.2.1 ",
	    ",192.0.2.17: at most 16 servers");
	assert_int_equal(cfg->ndns_stubs, 0);
}

static void
test_dns_timeout(void **state)
{
	static const struct ecase c[] = {
	    {"[global]\ndns_timeout = 0\n" CLIENT,
		"t.ini:2: dns_timeout = 0: out of range (1ms to 30d)", NULL},
	    {"[global]\ndns_timeout = 0ms\n" CLIENT,
		"t.ini:2: dns_timeout = 0ms: out of range (1ms to 30d)", NULL},
	    {"[global]\ndns_timeout = soon\n" CLIENT,
		"t.ini:2: dns_timeout = soon: not a duration (like 30s, 5m, "
		"300)",
		NULL},
	    {CLIENT "dns_timeout = 5s\n",
		"t.ini:5: dns_timeout is a [global] key, not allowed in [c]",
		NULL},
	};

	(void)state;
	load("[global]\ndns_timeout = 2500ms\n" CLIENT);
	expect_clean();
	assert_true(cfg->g[TP_K_DNS_TIMEOUT].n == 2500);
	load("[global]\ndns_timeout = 1m\n" CLIENT);
	expect_clean();
	assert_true(cfg->g[TP_K_DNS_TIMEOUT].n == 60000);
	run_cases(c, sizeof(c) / sizeof(c[0]));
}

static void
test_connect_mx(void **state)
{
	const struct tp_cfg_route *r;
	char out[300];

	(void)state;
	load_ta("[c]\n"
		"mode = client\n"
		"accept = 127.0.0.1:2525\n"
		"connect = mx:Example.COM., mx:example.net:2525 "
		"smtp.example.org:587, 192.0.2.1:25 [2001:db8::1]:25\n"
		"tls = starttls\n");
	expect_clean();
	r = route("c");
	assert_int_equal(r->nconnect, 5);
	/* failover in the order written, mx: and hosts mixed */
	assert_true(r->connect[0].mx);
	assert_string_equal(r->connect[0].host, "example.com");
	assert_int_equal(r->connect[0].port, 25);
	assert_false(r->connect[0].is_ip);
	assert_true(r->connect[1].mx);
	assert_string_equal(r->connect[1].host, "example.net");
	assert_int_equal(r->connect[1].port, 2525);
	assert_false(r->connect[2].mx);
	assert_string_equal(r->connect[2].host, "smtp.example.org");
	assert_int_equal(r->connect[2].port, 587);
	assert_false(r->connect[3].mx);
	assert_true(r->connect[3].is_ip);
	assert_false(r->connect[4].mx);
	assert_true(r->connect[4].is_v6);
	tp_hostport_format(&r->connect[0], out, sizeof(out));
	assert_string_equal(out, "mx:example.com:25");
	assert_true(cfg->dns_needed);
	/* mx: alone; verify needs no match or nexthop (it is a name) */
	load_ta("[c]\nmode = client\naccept = 127.0.0.1:2525\n"
		"connect = mx:example.com\nsecurity = verify\n");
	expect_clean();
	assert_int_equal(route("c")->nconnect, 1);
	assert_true(route("c")->connect[0].mx);
	assert_true(cfg->dns_needed);
}

static void
test_err_connect_mx(void **state)
{
	static const struct ecase c[] = {
	    {"[s]\nmode = server\naccept = 127.0.0.1:2465\n"
	     "connect = mx:example.com\nsecurity = none\n",
		"t.ini:4: connect mx:example.com: mx: is for client routes (a "
		"server route connects to its backend)",
		NULL},
	    {"[s]\nmode = server\naccept = 127.0.0.1:2465\n"
	     "connect = 127.0.0.1:25 mx:example.com:26\nsecurity = none\n",
		"t.ini:4: connect mx:example.com:26: mx: is for client routes",
		""},
	    {"[c]\nmode = client\naccept = 127.0.0.1:2525\n"
	     "connect = mx:[x]\n",
		"t.ini:4: connect = mx:[x]: " WHY_MX_ADDR, NULL},
	    {"[c]\nmode = client\naccept = 127.0.0.1:2525\n"
	     "connect = mx:[mx.example.com]:25\n",
		"t.ini:4: connect = mx:[mx.example.com]:25: " WHY_MX_ADDR,
		NULL},
	    {"[c]\nmode = client\naccept = 127.0.0.1:2525\n"
	     "connect = mx:192.0.2.1\n",
		"t.ini:4: connect = mx:192.0.2.1: " WHY_MX_ADDR, NULL},
	    {"[c]\nmode = client\naccept = 127.0.0.1:2525\n"
	     "connect = mx:2001:db8::1\n",
		"t.ini:4: connect = mx:2001:db8::1: " WHY_MX_ADDR, NULL},
	    {"[c]\nmode = client\naccept = 127.0.0.1:2525\n"
	     "connect = mx:\n",
		"t.ini:4: connect = mx:: expected mx:DOMAIN[:PORT]", NULL},
	    {"[c]\nmode = client\naccept = 127.0.0.1:2525\n"
	     "connect = 192.0.2.1:25, mx:\n",
		"t.ini:4: connect = 192.0.2.1:25, mx:: expected "
		"mx:DOMAIN[:PORT]",
		NULL},
	    {"[c]\nmode = client\naccept = 127.0.0.1:2525\n"
	     "connect = mx:exa!mple.com\n",
		"t.ini:4: connect = mx:exa!mple.com: " WHY_DOMAIN, NULL},
	    {"[c]\nmode = client\naccept = 127.0.0.1:2525\n"
	     "connect = mx:-example.com\n",
		"t.ini:4: connect = mx:-example.com: " WHY_DOMAIN, NULL},
	    {"[c]\nmode = client\naccept = 127.0.0.1:2525\n"
	     "connect = mx:example..com\n",
		"t.ini:4: connect = mx:example..com: " WHY_DOMAIN, NULL},
	    {"[c]\nmode = client\naccept = 127.0.0.1:2525\n"
	     "connect = mx:example.com:0\n",
		"t.ini:4: connect = mx:example.com:0: bad port (1-65535)",
		NULL},
	    {"[c]\nmode = client\naccept = 127.0.0.1:2525\n"
	     "connect = mx:25\n",
		"t.ini:4: connect = mx:25: expected mx:DOMAIN[:PORT] (for a "
		"host named mx, write its full name)",
		NULL},
	};

	(void)state;
	run_cases(c, sizeof(c) / sizeof(c[0]));
	/* a server route's mx: is one error; the route is not a DNS user */
	load("[s]\nmode = server\naccept = 127.0.0.1:2465\n"
	     "connect = mx:example.com\nsecurity = none\n");
	expect_errors(1);
	assert_false(cfg->dns_needed);
}

static void
test_dns_needed(void **state)
{
	static const struct {
		const char *connect;
		bool needed;
	} c[] = {
	    {"192.0.2.1:25", false},
	    {"[2001:db8::1]:25, 127.0.0.1:26", false},
	    {"192.0.2.1:25, mail.example.com:25", true},
	    {"localhost:25", true},
	    {"mx:example.com", true},
	    {"192.0.2.1:25 mx:example.com:2525", true},
	};
	char text[512];

	(void)state;
	for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
		snprintf(text, sizeof(text),
		    "[c]\nmode = client\naccept = 127.0.0.1:2525\n"
		    "connect = %s\n",
		    c[i].connect);
		load_ta(text);
		expect_clean();
		if (cfg->dns_needed != c[i].needed)
			fail_msg("connect = %s: dns_needed %d", c[i].connect,
			    cfg->dns_needed);
		/* the named anchor file is read either way */
		assert_int_equal(cfg->ndns_ta, 1);
	}
	/* a server route's backend by name does not use the DNS layer */
	load("[s]\nmode = server\naccept = 127.0.0.1:2465\n"
	     "connect = localhost:25\nsecurity = none\n");
	expect_clean();
	assert_false(cfg->dns_needed);
	assert_int_equal(cfg->ndns_ta, 0);
	/* nor a client route that has errors and no connect */
	load("[c]\nmode = client\naccept = 127.0.0.1:2525\n");
	assert_false(cfg->dns_needed);
}

/* anchor - write TEXT to ta_dir/NAME and load a config naming it. */
static void
anchor(const char *name, const char *text, const char *route)
{
	char path[160], ini[512];

	snprintf(path, sizeof(path), "%s/%s", ta_dir, name);
	write_text(path, text);
	snprintf(ini, sizeof(ini), "[global]\ndns_trust_anchor = %s\n%s", path,
	    route);
	load(ini);
}

static void
test_trust_anchor(void **state)
{
	static const char ds_root[] =
	    ". IN DS 20326 8 2 "
	    "E06D44B80B8F1D39A95C0B0D7C65D08458E880409BBC683457104237C7F8EC8D";

	(void)state;
	/* dns-root-data's root.key: DNSKEY, a comment after the record */
	anchor("root.key", TA_ROOT_KEY " ; keytag 20326\n", CLIENT);
	expect_clean();
	assert_int_equal(cfg->ndns_ta, 1);
	assert_string_equal(cfg->dns_ta[0],
	    ". IN DNSKEY 257 3 8 AwEAAaz/tAm8yTn4Mfeh5eyI96WSVexTBAvkMgJzkKTOiW1vk"
	    "IbzxeF3+/4RgWOq7HrxRixHlFlExOLAJr5emLvN7SWXgnLh4+B5xQlNVz8Og8kvArMtN"
	    "ROxVQuCaSnIDdD5LKyWbRd2n9WGe2R8PzgCmr3EgVLrjyBxWezF0jLHwVN8efS3rCj/E"
	    "WgvIWgb9tarpVUDK/b58Da+sqqls3eNbuv7pr+eoZG+SrDK6nWeL3c6H5Apxz7LjVc1u"
	    "TIdsIXxuOLYA4/ilBmSVIzuDWfdRUfhHdY6+cn8HFRm+2hM8AnXGXws9555KrUB5qihy"
	    "lGa8subX2Nn6UwNR1AkUTV74bU=");
	/* root.ds */
	anchor("root.ds",
	    "; DS\n" /**/ ".\tIN DS 20326 8 2 "
	    "E06D44B80B8F1D39A95C0B0D7C65D08458E880409BBC683457104"
	    "237C7F8EC8D\r\n",
	    CLIENT);
	expect_clean();
	assert_int_equal(cfg->ndns_ta, 1);
	assert_string_equal(cfg->dns_ta[0], ds_root);
	/* ldns-key2ds -n -2 output, tabs and a TTL */
	anchor("key2ds", TA_DS_TEST "\n", CLIENT);
	expect_clean();
	assert_int_equal(cfg->ndns_ta, 1);
	assert_string_equal(cfg->dns_ta[0],
	    "test. 3600 IN DS 12345 13 2 "
	    "0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF");
	/* zone-file forms: directives, comments, ( ) over lines, class and
	   TTL in either order or absent, an inherited owner, other types */
	anchor("zone",
	    "; anchors for the lab\n"                       /* 1 */
	    "$TTL 3600\n"                                   /* 2 */
	    "$ORIGIN test.\n"                               /* 3 */
	    "\n"                                            /* 4 */
	    "Example.ORG. IN 7200 ds 2371 13 4 (\n"         /* 5 */
	    "    0123456789abcdef0123456789abcdef\n"        /* 6 */
	    "    0123456789abcdef0123456789abcdef ; half\n" /* 7 */
	    "    0123456789abcdef0123456789abcdef )\n"      /* 8 */
	    "example.net 86400 in DNSKEY ( 257 3 13\n"      /* 9 */
	    "\tmdsswUyr3DPW132mOi8V9xESWE8jTo0dxCjjnopKl+GqJxpVXckHAeF+\n"
	    "\tKkxLbxILfDLUT0rAK9iUzy1L53eKGQ== ) ; KSK\n" /* 11 */
	    "\tIN NS ns.example.net.\n"                    /* 12 */
	    "\t3600 DS 1 13 2 "
	    "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\n"
	    "example.com. 3600 IN NS ns.example.com.\n"
	    "example.com. 3600 CH DS 1 13 2 00\n" /* not IN: skipped */
	    "example.com. 3600 IN TXT \"a ( b\" \n"
	    "\n",
	    CLIENT);
	expect_clean();
	assert_int_equal(cfg->ndns_ta, 3);
	assert_string_equal(cfg->dns_ta[0],
	    "example.org. 7200 IN DS 2371 13 4 "
	    "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	    "0123456789abcdef0123456789abcdef");
	assert_string_equal(cfg->dns_ta[1],
	    "example.net. 86400 IN DNSKEY 257 3 13 "
	    "mdsswUyr3DPW132mOi8V9xESWE8jTo0dxCjjnopKl+GqJxpVXckHAeF+"
	    "KkxLbxILfDLUT0rAK9iUzy1L53eKGQ==");
	assert_string_equal(cfg->dns_ta[2],
	    "example.net. 3600 IN DS 1 13 2 "
	    "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff");
	/* BIND's TTL units, in seconds */
	anchor("units",
	    "test. 1h30m IN DS 1 13 2 "
	    "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\n"
	    "test. IN 2D DS 2 13 2 "
	    "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\n"
	    "test. 1w DS 3 13 2 "
	    "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\n",
	    CLIENT);
	expect_clean();
	assert_int_equal(cfg->ndns_ta, 3);
	assert_true(strncmp(cfg->dns_ta[0], "test. 5400 IN DS 1 ", 19) == 0);
	assert_true(strncmp(cfg->dns_ta[1], "test. 172800 IN DS 2 ", 21) == 0);
	assert_true(strncmp(cfg->dns_ta[2], "test. 604800 IN DS 3 ", 21) == 0);
	/* DS and DNSKEY together, as unbound-anchor keeps them */
	anchor("both", TA_ROOT_KEY "\n" TA_DS_TEST "\n", CLIENT);
	expect_clean();
	assert_int_equal(cfg->ndns_ta, 2);
}

static void
test_trust_anchor_relative(void **state)
{
	char ini[160], key[160];
	const char *text = "[global]\n"
			   "dns_trust_anchor = keys/ta.key\n"
			   "[c]\nmode = client\naccept = 127.0.0.1:2525\n"
			   "connect = mx:example.com\n";

	(void)state;
	snprintf(key, sizeof(key), "%s/keys", ta_dir);
	assert_int_equal(mkdir(key, 0700), 0);
	snprintf(key, sizeof(key), "%s/keys/ta.key", ta_dir);
	write_text(key, TA_DS_TEST "\n");
	snprintf(ini, sizeof(ini), "%s/t.ini", ta_dir);
	write_text(ini, text);
	tp_config_free(cfg);
	cfg = tp_config_load(ini);
	expect_clean();
	assert_string_equal(cfg->g[TP_K_DNS_TRUST_ANCHOR].s, key);
	assert_string_equal(cfg->g[TP_K_DNS_TRUST_ANCHOR].raw, "keys/ta.key");
	assert_int_equal(cfg->ndns_ta, 1);
	assert_true(cfg->dns_needed);
	unlink(key);
	unlink(ini);
	snprintf(key, sizeof(key), "%s/keys", ta_dir);
	rmdir(key);
}

#define WHY_DS     "bad DS record (expected KEYTAG ALGORITHM DIGESTTYPE HEX)"
#define WHY_DNSKEY "bad DNSKEY record (expected FLAGS 3 ALGORITHM BASE64-KEY)"

static void
test_err_trust_anchor(void **state)
{
	static const struct {
		const char *text;
		int line;
		const char *why;
	} c[] = {
	    {"", 0, "no DS or DNSKEY record"},
	    {"; nothing\n\n$TTL 60\n", 0, "no DS or DNSKEY record"},
	    {"example.com. IN NS ns.example.com.\n", 0,
		"no DS or DNSKEY record"},
	    {". CH DS 20326 8 2 00\n", 0, "no DS or DNSKEY record"},
	    {"\n. IN DS 20326 8 2 E06D\n", 2, WHY_DS}, /* too short */
	    {". IN DS 20326 8 2 XYZ0\n", 1, WHY_DS},
	    {". IN DS 20326 8 1 E06D4\n", 1, WHY_DS}, /* odd */
	    {". IN DS 65536 8 2 "
	     "E06D44B80B8F1D39A95C0B0D7C65D08458E880409BBC683457104237C7F8EC8D\n",
		1, WHY_DS},
	    {". IN DS 20326 256 2 "
	     "E06D44B80B8F1D39A95C0B0D7C65D08458E880409BBC683457104237C7F8EC8D\n",
		1, WHY_DS},
	    {". IN DS 20326 8 2\n", 1, WHY_DS},
	    {". IN DS\n", 1, WHY_DS},
	    {". IN DNSKEY 257 4 8 AwEAAaz/\n", 1, WHY_DNSKEY}, /* protocol */
	    {". IN DNSKEY 257 3 8 AwEAAaz\n", 1, WHY_DNSKEY},  /* length */
	    {". IN DNSKEY 257 3 8 AwEA!az/\n", 1, WHY_DNSKEY},
	    {". IN DNSKEY 257 3 8\n", 1, WHY_DNSKEY},
	    {"; x\n-bad. IN DS 1 8 2 "
	     "E06D44B80B8F1D39A95C0B0D7C65D08458E880409BBC683457104237C7F8EC8D\n",
		2, "bad owner name -bad.: " WHY_DOMAIN},
	    {"@ IN DS 1 8 2 "
	     "E06D44B80B8F1D39A95C0B0D7C65D08458E880409BBC683457104237C7F8EC8D\n",
		1, "bad owner name @: " WHY_DOMAIN},
	    {"\tIN DS 1 8 2 00\n", 1, "expected OWNER [TTL] [IN] TYPE DATA"},
	    {"example.com.\n", 1, "expected OWNER [TTL] [IN] TYPE DATA"},
	    {"example.com. 3600 IN\n", 1,
		"expected OWNER [TTL] [IN] TYPE DATA"},
	    {"test. 4294967296 IN DS 1 8 2 00\n", 1, "bad TTL 4294967296"},
	    {"test. 2147483648 IN DS 1 8 2 00\n", 1, "bad TTL 2147483648"},
	    {"test. 24856d IN DS 1 8 2 00\n", 1, "bad TTL 24856d"},
	    {"\n\ntest. IN DS ( 1 8 2\n 00\n", 3, "'(' without ')'"},
	    {"test. IN DS 1 8 2 00 )\n", 1, "')' without '('"},
	};
	char path[160], want[512];

	(void)state;
	snprintf(path, sizeof(path), "%s/bad.key", ta_dir);
	for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
		anchor("bad.key", c[i].text, CLIENT);
		if (c[i].line > 0)
			snprintf(want, sizeof(want),
			    "t.ini:2: dns_trust_anchor %s:%d: %s", path,
			    c[i].line, c[i].why);
		else
			snprintf(want, sizeof(want),
			    "t.ini:2: dns_trust_anchor %s: %s", path, c[i].why);
		if (find_diag(want, false) < 0) {
			dump_diags();
			fail_msg("case %zu: no \"%s\"", i, want);
		}
		expect_errors(1);
		assert_int_equal(cfg->ndns_ta, 0);
		assert_null(cfg->dns_ta);
	}
	/* a file that cannot be read, named explicitly: an error even when
	   no route needs DNS (a typo shows at once) */
	load("[global]\ndns_trust_anchor = /nonexistent/root.key\n" CLIENT);
	expect_diag("t.ini:2: dns_trust_anchor /nonexistent/root.key: cannot "
		    "read: No such file or directory");
	expect_errors(1);
	assert_false(cfg->dns_needed);
	snprintf(want, sizeof(want), "[global]\ndns_trust_anchor = %s\n" CLIENT,
	    ta_dir);
	load(want);
	snprintf(want, sizeof(want),
	    "t.ini:2: dns_trust_anchor %s: cannot read: Is a directory",
	    ta_dir);
	expect_diag(want);
}

static void
test_err_trust_anchor_limits(void **state)
{
	char path[160], want[300], *big;
	size_t n = 0;

	(void)state;
	snprintf(path, sizeof(path), "%s/big.key", ta_dir);
	/* 256 records fit, 257 do not */
	big = malloc(300 * 120);
	assert_non_null(big);
	for (int i = 0; i < 257; i++)
		n += (size_t)sprintf(big + n, "t%d.test. IN DS %d 13 2 %s\n", i,
		    i,
		    "0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789"
		    "ABCDEF");
	anchor("big.key", big, CLIENT);
	snprintf(want, sizeof(want),
	    "t.ini:2: dns_trust_anchor %s:257: more than 256 DS or DNSKEY "
	    "records",
	    path);
	expect_diag(want);
	*strstr(big, "t256.test.") = '\0';
	anchor("big.key", big, CLIENT);
	expect_clean();
	assert_int_equal(cfg->ndns_ta, 256);
	assert_string_equal(cfg->dns_ta[255],
	    "t255.test. IN DS 255 13 2 "
	    "0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF");
	free(big);
	/* at most 1 MB */
	big = malloc(TP_DNS_MAX_TA_SIZE + 2);
	assert_non_null(big);
	memset(big, ';', TP_DNS_MAX_TA_SIZE + 1);
	big[TP_DNS_MAX_TA_SIZE + 1] = '\0';
	anchor("big.key", big, CLIENT);
	snprintf(want, sizeof(want),
	    "t.ini:2: dns_trust_anchor %s: larger than 1048576 bytes", path);
	expect_diag(want);
	free(big);
	/* NUL bytes */
	{
		FILE *f = fopen(path, "w");

		assert_non_null(f);
		assert_int_equal(fwrite(". IN DS\0x\n", 1, 10, f), 10);
		assert_int_equal(fclose(f), 0);
		snprintf(want, sizeof(want),
		    "[global]\ndns_trust_anchor = %s\n" CLIENT, path);
		load(want);
		snprintf(want, sizeof(want),
		    "t.ini:2: dns_trust_anchor %s: not a text file (NUL byte)",
		    path);
		expect_diag(want);
	}
}

/*
 * test_trust_anchor_default - the default file is read only when a route
 * needs DNS; its problems have no line (no line set it) and say why.
 */
static void
test_trust_anchor_default(void **state)
{
	const char *def = "/usr/share/dns/root.key";

	(void)state;
	load("[c]\nmode = client\naccept = 127.0.0.1:2525\n"
	     "connect = mx.example.com:465\n");
	assert_true(cfg->dns_needed);
	if (access(def, R_OK) == 0) {
		/* dns-root-data is installed here */
		expect_clean();
		assert_true(cfg->ndns_ta >= 1);
	} else {
		char want[400];

		/* (a file that exists but cannot be read says so instead) */
		snprintf(want, sizeof(want),
		    "t.ini: dns_trust_anchor %s (the default): cannot read: "
		    "No such file or directory (route c connects to a DNS "
		    "name at line 4: install dns-root-data or set "
		    "dns_trust_anchor)",
		    def);
		expect_diag(want);
		expect_errors(1);
	}
	/* without a DNS name the default file does not matter */
	load(CLIENT);
	expect_clean();
	assert_int_equal(cfg->ndns_ta, 0);
}

static void
test_dns_all_reported(void **state)
{
	char text[512];

	(void)state;
	/* -t prints every DNS problem, in file order, then the cross-key ones
	 */
	snprintf(text, sizeof(text),
	    "[global]\n"                               /* 1 */
	    "dns_resolver = 192.0.2.1:53\n"            /* 2 */
	    "dns_stub = test\n"                        /* 3 */
	    "dns_stub = test 127.0.0.1\n"              /* 4 */
	    "dns_stub = test. ::1\n"                   /* 5 */
	    "dns_timeout = 0\n"                        /* 6 */
	    "dns_trust_anchor = %s/none.key\n"         /* 7 */
	    "[c]\n"                                    /* 8 */
	    "mode = client\n"                          /* 9 */
	    "accept = 127.0.0.1:2525\n"                /* 10 */
	    "connect = mx:example.com, 192.0.2.1:25\n" /* 11 */
	    "[s]\n"                                    /* 12 */
	    "mode = server\n"                          /* 13 */
	    "accept = 127.0.0.1:2465\n"                /* 14 */
	    "connect = mx:example.com\n"               /* 15 */
	    "security = none\n",                       /* 16 */
	    ta_dir);
	load(text);
	expect_errors(6);
	assert_int_equal(find_diag("t.ini:2: dns_resolver = ", true), 0);
	assert_int_equal(find_diag("t.ini:3: dns_stub = test: ", true), 1);
	assert_int_equal(find_diag("t.ini:6: dns_timeout = 0: ", true), 2);
	assert_int_equal(
	    find_diag("t.ini:15: connect mx:example.com: ", true), 3);
	assert_int_equal(
	    find_diag("t.ini:5: dns_stub test. ::1: zone test. already", true),
	    4);
	assert_int_equal(find_diag("t.ini:7: dns_trust_anchor ", true), 5);
	assert_true(cfg->dns_needed);
	assert_int_equal(cfg->ndns_stubs, 1);
}

/* ---- gateway routes (spec 3, 4.9) ---- */

static void
test_gateway_route(void **state)
{
	const struct tp_cfg_route *r;

	(void)state;
	load_ta(GATEWAY);
	expect_errors(0);
	assert_int_equal(cfg->nwarnings, 0);
	r = route("gw");
	assert_int_equal(r->mode, TP_MODE_GATEWAY);
	/* opportunistic DANE by default, STARTTLS to MX hosts on port 25 */
	assert_int_equal(r->security, TP_SEC_DANE);
	assert_false(r->v[TP_K_SECURITY].set);
	assert_int_equal(r->tls, TP_TLS_STARTTLS);
	assert_true(r->v[TP_K_PORT].n == 25);
	assert_false(r->v[TP_K_PORT].set);
	assert_int_equal(r->nconnect, 0);
	assert_null(r->policy);
	/* no SIZE advertised unless set */
	assert_false(r->v[TP_K_MESSAGE_SIZE_LIMIT].set);
	assert_true(r->v[TP_K_MESSAGE_SIZE_LIMIT].n == 0);
	assert_false(r->unimplemented);
	/* a gateway resolves MX hosts: the DNS layer runs */
	assert_true(cfg->dns_needed);
	assert_int_equal(cfg->ndns_ta, 1);
	assert_true(tp_config_dns_route(r));
	assert_string_equal(tp_config_mode_name(r->mode), "gateway");
	assert_string_equal(tp_config_mode_name(TP_MODE_CLIENT), "client");
	assert_string_equal(tp_config_mode_name(TP_MODE_SERVER), "server");
}

static void
test_gateway_keys(void **state)
{
	const struct tp_cfg_route *r;

	(void)state;
	/* every key a gateway takes */
	load_ta(GATEWAY                              /* 1-3 */
	    "security = secure\n"                    /* 4 */
	    "protocols = >=TLSv1.3\n"                /* 5 */
	    "ciphers = high\n"                       /* 6 */
	    "exclude_ciphers = aNULL\n"              /* 7 */
	    "cert_file = /etc/tlsproxy/client.pem\n" /* 8 */
	    "key_file = /etc/tlsproxy/client.key\n"  /* 9 */
	    "ca_file = /etc/ssl/certs/ca.pem\n"      /* 10 */
	    "ca_path = /etc/ssl/certs\n"             /* 11 */
	    "connect_timeout = 10s\n"                /* 12 */
	    "handshake_timeout = 20s\n"              /* 13 */
	    "idle_timeout = 5m\n"                    /* 14 */
	    "smtp_timeout = 2m\n"                    /* 15 */
	    "data_done_timeout = 10m\n"              /* 16 */
	    "max_connections = 50\n"                 /* 17 */
	    "helo_name = gw.example.com\n"           /* 18 */
	    "session_cache = no\n"                   /* 19 */
	    "verify_depth = 5\n"                     /* 20 */
	    "hostname = relay.example.com\n"         /* 21 */
	    "message_size_limit = 52428800\n"        /* 22 */
	    "port = 2525\n");                        /* 23 */
	expect_errors(0);
	r = route("gw");
	assert_int_equal(r->security, TP_SEC_SECURE);
	assert_int_equal(r->proto_min, TP_PROTO_TLS13);
	assert_int_equal(r->v[TP_K_CIPHERS].e, TP_GRADE_HIGH);
	assert_true(r->v[TP_K_SMTP_TIMEOUT].n == 120000);
	assert_int_equal(r->max_connections, 50);
	assert_string_equal(r->v[TP_K_HELO_NAME].raw, "gw.example.com");
	assert_true(r->v[TP_K_SESSION_CACHE].n == 0);
	assert_true(r->v[TP_K_VERIFY_DEPTH].n == 5);
	assert_string_equal(r->v[TP_K_HOSTNAME].raw, "relay.example.com");
	assert_true(r->v[TP_K_MESSAGE_SIZE_LIMIT].n == 52428800);
	assert_true(r->v[TP_K_PORT].n == 2525);
	assert_int_equal(r->v[TP_K_PORT].line, 23);
	/* connection_reuse: gateways keep upstreams per domain too */
	load_ta(GATEWAY "connection_reuse = yes\n");
	expect_errors(0);
	expect_no_diag_with("connection_reuse");
	assert_true(route("gw")->v[TP_K_CONNECTION_REUSE].n == 1);
	/* the levels: none is a plain relay; dane-only takes its TLSA
	 * records from DNS */
	load_ta(GATEWAY "security = none\n");
	expect_errors(0);
	assert_int_equal(route("gw")->security, TP_SEC_NONE);
	load_ta(GATEWAY "security = dane-only\n");
	expect_errors(0);
	assert_int_equal(route("gw")->security, TP_SEC_DANE_ONLY);
	load_ta(GATEWAY "security = may\nmessage_size_limit = 0\n");
	expect_errors(0);
	/* port */
	load_ta(GATEWAY "port = 0\n");
	expect_diag2("t.ini:4: port = 0: ", NULL);
	expect_errors(1);
	load_ta(GATEWAY "port = 65536\n");
	expect_diag2("t.ini:4: port = 65536: ", NULL);
	expect_errors(1);
	/* gateway and other routes side by side; keys stay in their route */
	load_ta(CLIENT SERVER GATEWAY);
	expect_errors(0);
	assert_int_equal(route("c")->security, TP_SEC_ENCRYPT);
	assert_int_equal(route("s")->security, TP_SEC_MAY);
	assert_int_equal(route("gw")->security, TP_SEC_DANE);
	assert_false(route("c")->unimplemented);
	assert_true(cfg->dns_needed);
}

static void
test_err_gateway_keys(void **state)
{
	static const struct ecase c[] = {
	    {GATEWAY "connect = 192.0.2.1:25\n",
		"t.ini:4: connect applies to client and server routes only (a "
		"gateway delivers to each recipient domain's MX hosts; port "
		"sets their port)",
		NULL},
	    {GATEWAY "tls = starttls\n",
		"t.ini:4: tls applies to client and server routes only (a "
		"gateway always speaks STARTTLS to the MX hosts, on port)",
		NULL},
	    {GATEWAY "servername = mx.example.com\n",
		"t.ini:4: servername applies to client routes only (on a "
		"gateway, set it per destination in policy_file)",
		NULL},
	    {GATEWAY "nexthop = example.com\n",
		"t.ini:4: nexthop applies to client routes only (a gateway's "
		"nexthop is each recipient's domain)",
		NULL},
	    {GATEWAY "match = hostname\n",
		"t.ini:4: match applies to client routes only (on a gateway, "
		"set it per destination in policy_file)",
		NULL},
	    {GATEWAY "fingerprint = " FP_A "\n",
		"t.ini:4: fingerprint applies to client routes only (on a "
		"gateway, set it per destination in policy_file)",
		NULL},
	    {GATEWAY "tlsa = 3 1 1 " FP_A "\n",
		"t.ini:4: tlsa applies to client routes only (on a gateway, "
		"set it per destination in policy_file)",
		NULL},
	    {GATEWAY "eccert_file = ec.pem\n",
		"t.ini:4: eccert_file applies to client and server routes only "
		"(a gateway's client certificate is cert_file and key_file)",
		NULL},
	    {GATEWAY "banner = hi\n",
		"t.ini:4: banner applies to server routes only", NULL},
	    {GATEWAY "auth_only = yes\n",
		"t.ini:4: auth_only applies to server routes only", NULL},
	    {GATEWAY "ask_ccert = yes\n",
		"t.ini:4: ask_ccert applies to server routes only", NULL},
	    {GATEWAY "req_ccert = yes\n",
		"t.ini:4: req_ccert applies to server routes only", NULL},
	    {GATEWAY "proxy_protocol = v2\n",
		"t.ini:4: proxy_protocol applies to server routes only", NULL},
	    {GATEWAY "accept_proxy = yes\n",
		"t.ini:4: accept_proxy applies to server routes only", NULL},
	    {GATEWAY "session_tickets = no\n",
		"t.ini:4: session_tickets applies to server routes only", NULL},
	    {GATEWAY "ticket_key_file = t.key\n",
		"t.ini:4: ticket_key_file applies to server routes only", NULL},
	    {GATEWAY "client_limit = 5\n",
		"t.ini:4: client_limit applies to server routes only", NULL},
	    {GATEWAY "sni = a.example a.pem\n",
		"t.ini:4: sni applies to server routes only", NULL},
	    {GATEWAY "security = fingerprint\n",
		"t.ini:4: security = fingerprint: a gateway's fingerprints "
		"are per destination (in policy_file: DOMAIN fingerprint "
		"match=DIGEST)",
		NULL},
	    /* the gateway's own keys on other routes */
	    {CLIENT "policy_file = tls_policy\n",
		"t.ini:5: policy_file applies to gateway routes only", NULL},
	    {SERVER "port = 25\n",
		"t.ini:6: port applies to gateway routes only", NULL},
	    {CLIENT "message_size_limit = 10\n",
		"t.ini:5: message_size_limit applies to server and gateway "
		"routes only",
		NULL},
	    {CLIENT "\nhostname = a.example\n",
		"t.ini:6: hostname applies to server and gateway routes only",
		NULL},
	    {SERVER "helo_name = a.example\n",
		"t.ini:6: helo_name applies to client and gateway routes only",
		NULL},
	    {SERVER "session_cache = no\n",
		"t.ini:6: session_cache applies to client and gateway routes "
		"only",
		NULL},
	    /* a gateway still needs accept, but no connect */
	    {"[gw]\nmode = gateway\n",
		"t.ini:1: route gw: missing accept (HOST:PORT to listen on)",
		NULL},
	    {"[gw]\naccept = 127.0.0.1:10025\n",
		"t.ini:1: route gw: missing mode (client, server or gateway)",
		NULL},
	};
	char text[1024];

	(void)state;
	for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
		/* each with a trust anchor, so only the key is wrong */
		snprintf(text, sizeof(text),
		    "%s[global]\ndns_trust_anchor = %s\n", c[i].text, ta_path);
		load(text);
		expect_diag(c[i].diag);
		if (cfg->nerrors != 1) {
			dump_diags();
			fail_msg(
			    "case %zu: %d errors, want 1", i, cfg->nerrors);
		}
	}
	/* every problem of a gateway is reported */
	load_ta(GATEWAY "connect = 192.0.2.1:25\ntls = implicit\n"
			"banner = x\nport = 0\n");
	expect_errors(4);
}

/* write_policy - a policy file in ta_dir; its path into path. */
static void
write_policy(char *path, size_t len, const char *name, const char *text)
{
	snprintf(path, len, "%s/%s", ta_dir, name);
	write_text(path, text);
}

static void
test_gateway_policy_file(void **state)
{
	const struct tp_cfg_route *r;
	const struct tp_pm_entry *e;
	char path[256], text[1024], want[512];

	(void)state;
	write_policy(path, sizeof(path), "good_policy",
	    "# partners\n"
	    "partner.example secure match=mx.partner.example\n"
	    ".partner.example encrypt\n"
	    "[relay.example.net]:587 verify\n"
	    "legacy.example none\n");
	snprintf(text, sizeof(text), GATEWAY "policy_file = %s\n", path);
	load_ta(text);
	expect_errors(0);
	r = route("gw");
	assert_non_null(r->policy);
	assert_int_equal(r->policy->n, 4);
	assert_string_equal(r->v[TP_K_POLICY_FILE].s, path);
	e = tp_policy_lookup(r->policy, "mail.partner.example");
	assert_non_null(e);
	assert_int_equal(e->level, TP_SEC_ENCRYPT);
	assert_int_equal(tp_policy_lookup(r->policy, "partner.example")->level,
	    TP_SEC_SECURE);

	/* errors: POLICYFILE:LINE, each one, and the load fails */
	write_policy(path, sizeof(path), "bad_policy",
	    "partner.example secure\n"
	    "  match=mx.partner.example\n"
	    "  cipherz=high\n"
	    "partner.example may\n"
	    "new.example MUST\n");
	snprintf(text, sizeof(text), GATEWAY "policy_file = %s\n", path);
	load_ta(text);
	expect_errors(2);
	snprintf(want, sizeof(want),
	    "%s:3: partner.example: unknown attribute \"cipherz\"", path);
	expect_diag(want);
	snprintf(want, sizeof(want),
	    "%s:4: duplicate key partner.example (first at line 1)", path);
	expect_diag(want);
	snprintf(want, sizeof(want),
	    "%s:5: warning: new.example: MUST is a word of the obsolete "
	    "smtp_tls_per_site table, ",
	    path);
	expect_diag2(want, "read as verify");

	/* an unreadable file: at the line of policy_file */
	snprintf(text, sizeof(text),
	    GATEWAY "security = may\npolicy_file = %s/nope\n", ta_dir);
	load_ta(text);
	expect_errors(1);
	snprintf(want, sizeof(want),
	    "t.ini:5: policy_file %s/nope: cannot read: No such file or "
	    "directory",
	    ta_dir);
	expect_diag(want);
	assert_null(route("gw")->policy);
}

static void
test_gateway_policy_relative(void **state)
{
	char path[256], ini[256], text[512], want[512];

	(void)state;
	/* relative to the INI file's directory, as every path */
	write_policy(path, sizeof(path), "tls_policy",
	    "example.com secure\nexample.com may\n");
	snprintf(ini, sizeof(ini), "%s/gw.ini", ta_dir);
	snprintf(text, sizeof(text),
	    GATEWAY "policy_file = tls_policy\n"
		    "[global]\ndns_trust_anchor = ok.key\n");
	write_text(ini, text);
	tp_config_free(cfg);
	cfg = tp_config_load(ini);
	expect_errors(1);
	snprintf(want, sizeof(want),
	    "%s/tls_policy:2: duplicate key example.com (first at line 1)",
	    ta_dir);
	expect_diag(want);
	/* fixed, and loaded again (what a reload does) */
	write_text(path, "example.com secure\n.example.com may\n");
	tp_config_free(cfg);
	cfg = tp_config_load(ini);
	expect_errors(0);
	assert_int_equal(route("gw")->policy->n, 2);
	unlink(ini);
}

int
main(void)
{
#define T(f) cmocka_unit_test_teardown(f, teardown)
	const struct CMUnitTest tests[] = {
	    T(test_client_route),
	    T(test_server_route),
	    T(test_two_routes_and_security),
	    T(test_durations),
	    T(test_booleans),
	    T(test_workers),
	    T(test_max_connections),
	    T(test_nofile),
	    T(test_addresses),
	    T(test_syntax_variants),
	    T(test_shipped_config),
	    T(test_defaults_table),
	    T(test_err_unknown_keys),
	    T(test_err_duplicates),
	    T(test_err_values),
	    T(test_err_addresses),
	    T(test_err_missing_required),
	    T(test_route_header_line),
	    T(test_err_sections),
	    T(test_err_mode_keys),
	    T(test_err_accept_conflicts),
	    T(test_err_key_files),
	    T(test_err_fingerprint_tlsa),
	    T(test_err_security_needs),
	    T(test_errors_all_reported),
	    T(test_warn_not_implemented),
	    T(test_warn_every_notimpl_key),
	    T(test_warn_levels),
	    T(test_repeatable),
	    T(test_relative_paths),
	    T(test_resolve),
	    T(test_missing_file),
	    T(test_diag_api),
	    T(test_dns_defaults),
	    T(test_dns_resolver),
	    T(test_err_dns_resolver),
	    T(test_dns_resolvconf_file),
	    T(test_dns_resolvconf),
	    T(test_dns_stub),
	    T(test_err_dns_stub),
	    T(test_dns_timeout),
	    T(test_connect_mx),
	    T(test_err_connect_mx),
	    T(test_dns_needed),
	    T(test_trust_anchor),
	    T(test_trust_anchor_relative),
	    T(test_err_trust_anchor),
	    T(test_err_trust_anchor_limits),
	    T(test_trust_anchor_default),
	    T(test_dns_all_reported),
	    T(test_gateway_route),
	    T(test_gateway_keys),
	    T(test_err_gateway_keys),
	    T(test_gateway_policy_file),
	    T(test_gateway_policy_relative),
	};
#undef T

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
