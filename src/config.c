/*
 * config.c - INI reader, key table, value parsers, FILE:LINE diagnostics
 * and the cross-key checks.
 *
 * inih (Debian r55) gives the handler no line number, splits lines over
 * 200 bytes, cuts section names at 50 bytes and takes indented lines as
 * continuations.  So the file goes through ini_parse_stream() with our own
 * reader, which counts physical lines, rejects over-long lines, records
 * every [section] header (inih never reports a section without keys) and
 * reports lines that are neither a section nor KEY = VALUE.  Continuation
 * lines reach the handler as a repeated key and are refused as duplicates.
 * The handler records errors and carries on, so -t prints every problem.
 * Pure: no libuv, no OpenSSL.  Runs on the main thread only.
 */
#include "tlsproxy/config.h"
#include "tlsproxy/config_dns.h"
#include "tlsproxy/parse.h"

#include <ctype.h>
#include <grp.h>
#include <pwd.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <ini.h>

#include "tlsproxy/common.h"
#include "tlsproxy/policy_map.h"
#include "tlsproxy/tls_policy.h"

const struct tp_keydef tp_keys[TP_K_COUNT] = {
#define X(id, name, scope, type, def, choices, lo, hi, flags, help)            \
	[TP_K_##id] = {name, scope, type, def, choices, lo, hi, flags, help},
#include "tlsproxy/config_keys.def"
#undef X
};

#define MAX_SECTION_NAME 49     /* inih cuts section names at 50 bytes */
#define MAX_LINE         8192   /* longest line (inih itself takes 198) */
#define LONG_MARK        "\x01" /* stands for rd->longval in inih's copy */
#define MAX_ROUTES       1000

struct section_seen {
	char *name;
	int line;
	bool has_keys;
};

struct reader {
	struct tp_config *cfg;
	FILE *f;
	int line;
	char *buf;
	size_t cap;
	struct section_seen *sections;
	size_t nsections;
	int cur_section; /* index in sections, -1 before the first */
	bool indented;   /* the current line starts with white space */
	char *longval;   /* the value of a line too long for inih */
};

static void *
xcalloc(size_t n, size_t sz)
{
	void *p = calloc(n ? n : 1, sz);

	if (p == NULL) {
		fprintf(stderr, "tlsproxy: out of memory\n");
		exit(1);
	}
	return p;
}

/* vdiag - record "FILE:LINE: [warning: ]message" (FILE NULL: the INI). */
static void
vdiag(struct tp_config *cfg, const char *file, int line, bool warning,
    const char *fmt, va_list ap)
{
	char msg[1024], *out;
	int n;

	vsnprintf(msg, sizeof(msg), fmt, ap);
	if (file == NULL)
		file = cfg->path;
	if (line > 0)
		n = asprintf(&out, "%s:%d: %s%s", file, line,
		    warning ? "warning: " : "", msg);
	else
		n = asprintf(
		    &out, "%s: %s%s", file, warning ? "warning: " : "", msg);
	if (n < 0) {
		fprintf(stderr, "tlsproxy: out of memory\n");
		exit(1);
	}
	cfg->diags = tp_xrealloc(cfg->diags, cfg->ndiags + 1, sizeof(char *));
	cfg->diags[cfg->ndiags++] = out;
	if (warning)
		cfg->nwarnings++;
	else
		cfg->nerrors++;
}

void
tp_config_diag(
    struct tp_config *cfg, int line, bool warning, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vdiag(cfg, NULL, line, warning, fmt, ap);
	va_end(ap);
}

void
tp_config_diag_at(struct tp_config *cfg, const char *file, int line,
    bool warning, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vdiag(cfg, file, line, warning, fmt, ap);
	va_end(ap);
}

const char *
tp_config_mode_name(enum tp_mode mode)
{
	return mode == TP_MODE_CLIENT ? "client"
	    : mode == TP_MODE_SERVER  ? "server"
				      : "gateway";
}

char *
tp_config_resolve(const struct tp_config *cfg, const char *path)
{
	char *out;

	if (path[0] == '/' || cfg->dir == NULL)
		return tp_xstrdup(path);
	if (asprintf(&out, "%s/%s", cfg->dir, path) < 0) {
		fprintf(stderr, "tlsproxy: out of memory\n");
		exit(1);
	}
	return out;
}

/* enum_index - position of word in "a|b|c", or -1. */
static int
enum_index(const char *choices, const char *word)
{
	size_t wl = strlen(word);
	const char *p = choices;
	int i = 0;

	while (p && *p) {
		const char *bar = strchr(p, '|');
		size_t n = bar ? (size_t)(bar - p) : strlen(p);

		if (n == wl && strncmp(p, word, n) == 0)
			return i;
		i++;
		p = bar ? bar + 1 : NULL;
	}
	return -1;
}

static bool
is_hex_digest(const char *s, size_t want_len)
{
	size_t n = 0;

	for (; *s; s++) {
		if (*s == ':')
			continue;
		if (!isxdigit((unsigned char)*s))
			return false;
		n++;
	}
	return n == want_len;
}

/*
 * ncpu - workers = auto: the CPUs this process may run on (as nproc(1)
 * counts them: a cpuset or taskset leaves fewer than are online), else
 * the online CPUs; clamped to lo..hi.
 */
static unsigned long long
ncpu(unsigned long long lo, unsigned long long hi)
{
	cpu_set_t set;
	long n = -1;

	if (sched_getaffinity(0, sizeof(set), &set) == 0)
		n = CPU_COUNT(&set);
	if (n < 1)
		n = sysconf(_SC_NPROCESSORS_ONLN);
	if (n < (long)lo)
		return lo;
	return (unsigned long long)n > hi ? hi : (unsigned long long)n;
}

/*
 * parse_value - check VALUE against key K's type and store it in v.
 * Returns 0, or -1 with *why set.
 */
static int
parse_value(struct tp_config *cfg, enum tp_key k, const char *value,
    struct tp_cval *v, const char **why)
{
	const struct tp_keydef *d = &tp_keys[k];
	struct tp_hostport hp;
	uint64_t ms;
	bool b;
	int lo, hi;
	char item[300];
	const char *p;
	unsigned u1, u2, u3;
	int off = 0, rc;

	if (*value == '\0') {
		*why = "empty value";
		return -1;
	}
	switch (d->type) {
	case T_STR:
	case T_LIST:
		break;
	case T_PATH:
		free(v->s);
		v->s = tp_config_resolve(cfg, value);
		return 0;
	case T_BOOL:
		if (tp_parse_bool(value, &b, why) < 0)
			return -1;
		v->n = b;
		return 0;
	case T_DUR:
		if (tp_parse_duration_ms(value, &ms, why) < 0)
			return -1;
		v->n = ms;
		return 0;
	case T_UINT:
		return tp_parse_uint(value, d->lo, d->hi, &v->n, why);
	case T_WORKERS:
		if (strcmp(value, "auto") == 0) {
			v->n = ncpu(d->lo, d->hi);
			return 0;
		}
		return tp_parse_uint(value, d->lo, d->hi, &v->n, why);
	case T_ENUM:
		v->e = enum_index(d->choices, value);
		if (v->e < 0) {
			if (k == TP_K_CIPHERS &&
			    (strcmp(value, "low") == 0 ||
				strcmp(value, "export") == 0))
				*why = "low and export are obsolete (Postfix "
				       "3.8 treats them as medium): use medium";
			else
				*why = "not one of the allowed values";
			return -1;
		}
		return 0;
	case T_ADDR:
		return tp_parse_hostport(value, &hp, why);
	case T_ADDRLIST:
		p = value;
		while ((rc = tp_list_next(&p, item, sizeof(item))) != 0) {
			if (rc < 0) {
				*why = "address too long";
				return -1;
			}
			if (tp_parse_dest(item, &hp, why) < 0)
				return -1;
		}
		return 0;
	case T_PROTOCOLS:
		return tp_policy_protocols(value, &lo, &hi, why);
	case T_FINGERPRINT:
		if (!is_hex_digest(value, 64)) {
			*why = "expected a sha256 digest: 64 hex digits, "
			       "colons allowed";
			return -1;
		}
		return 0;
	case T_TLSA:
		if (sscanf(value, "%u %u %u %n", &u1, &u2, &u3, &off) != 3 ||
		    off == 0 || u1 < 2 || u1 > 3 || u2 > 1 || u3 > 2) {
			*why = "expected USAGE SELECTOR MTYPE HEX with usage 2 "
			       "or 3, selector 0 or 1, matching type 0, 1 or 2";
			return -1;
		}
		if ((u3 == 1 && !is_hex_digest(value + off, 64)) ||
		    (u3 == 2 && !is_hex_digest(value + off, 128)) ||
		    (u3 == 0 &&
			(value[off] == '\0' ||
			    !is_hex_digest(value + off,
				strlen(value + off) & ~(size_t)1)))) {
			*why = "TLSA data is not hex of the right length";
			return -1;
		}
		return 0;
	case T_SNI:
		p = value;
		if (tp_list_next(&p, item, sizeof(item)) <= 0 ||
		    tp_list_next(&p, item, sizeof(item)) <= 0) {
			*why = "expected NAME CERTFILE [KEYFILE]";
			return -1;
		}
		return 0;
	case T_DNS_RESOLVER:
		return tp_config_dns_resolver(value, why);
	case T_DNS_STUB:
		return tp_config_dns_stub(value, why);
	}
	return 0;
}

static struct tp_cfg_route *
route_get(struct tp_config *cfg, const char *name, int line)
{
	struct tp_cfg_route *r;

	for (size_t i = 0; i < cfg->nroutes; i++)
		if (strcmp(cfg->routes[i].name, name) == 0)
			return &cfg->routes[i];
	if (cfg->nroutes >= MAX_ROUTES)
		return NULL;
	cfg->routes = tp_xrealloc(cfg->routes, cfg->nroutes + 1, sizeof(*r));
	r = &cfg->routes[cfg->nroutes++];
	memset(r, 0, sizeof(*r));
	r->name = tp_xstrdup(name);
	r->line = line;
	return r;
}

static int
find_key(const char *name, bool global)
{
	for (int k = 0; k < TP_K_COUNT; k++) {
		if (strcmp(tp_keys[k].name, name) != 0)
			continue;
		if (((tp_keys[k].scope & G) != 0) == global)
			return k;
	}
	return -1;
}

static int
find_key_any(const char *name)
{
	for (int k = 0; k < TP_K_COUNT; k++)
		if (strcmp(tp_keys[k].name, name) == 0)
			return k;
	return -1;
}

static void
cval_add(struct tp_cval *v, const char *value, int line)
{
	v->list = tp_xrealloc(v->list, v->nlist + 1, sizeof(char *));
	v->lines = tp_xrealloc(v->lines, v->nlist + 1, sizeof(int));
	v->list[v->nlist] = tp_xstrdup(value);
	v->lines[v->nlist] = line;
	v->nlist++;
}

/* config_on_key - the inih handler: one KEY = VALUE line. */
static int
config_on_key(
    void *user, const char *section, const char *name, const char *value)
{
	struct reader *rd = user;
	struct tp_config *cfg = rd->cfg;
	int line = rd->line;
	bool global = strcmp(section, "global") == 0;
	struct tp_cfg_route *r = NULL;
	struct tp_cval *vals, *v;
	const char *why = NULL;
	int k;

	if (rd->cur_section >= 0)
		rd->sections[rd->cur_section].has_keys = true;
	if (strcmp(value, LONG_MARK) == 0 && rd->longval != NULL)
		value = rd->longval;
	if (*section == '\0') {
		tp_config_diag(cfg, line, false,
		    "%s: key outside a section (put it under [global] or a "
		    "route)",
		    name);
		return 1;
	}
	if (!global) {
		r = route_get(cfg, section,
		    rd->cur_section >= 0 ? rd->sections[rd->cur_section].line
					 : line);
		if (r == NULL) {
			tp_config_diag(cfg, line, false, "too many routes");
			return 1;
		}
	}
	k = find_key(name, global);
	if (k < 0) {
		if (find_key_any(name) >= 0)
			tp_config_diag(cfg, line, false,
			    "%s is a %s key, not "
			    "allowed in [%s]",
			    name, global ? "route" : "[global]", section);
		else
			tp_config_diag(
			    cfg, line, false, "unknown key %s", name);
		return 1;
	}
	vals = global ? cfg->g : r->v;
	v = &vals[k];
	if (v->set && !(tp_keys[k].flags & F_REPEAT)) {
		tp_config_diag(cfg, line, false,
		    "duplicate key %s (first at line %d)%s", name, v->line,
		    rd->indented ? ": an indented line continues the previous "
				   "key"
				 : "");
		return 1;
	}
	if (parse_value(cfg, k, value, v, &why) < 0) {
		tp_config_diag(
		    cfg, line, false, "%s = %s: %s", name, value, why);
		return 1;
	}
	if (!v->set) {
		v->line = line;
		free(v->raw);
		v->raw = tp_xstrdup(value);
		if (v->s == NULL)
			v->s = tp_xstrdup(value);
	}
	v->set = true;
	if (tp_keys[k].flags & F_REPEAT)
		cval_add(v, value, line);
	if (tp_keys[k].flags & F_NOTIMPL)
		tp_config_diag(
		    cfg, line, true, "%s is not implemented yet", name);
	return 1;
}

/*
 * config_long_line - a line longer than inih's buffer (a TLSA record of
 * a whole RSA key is 600 characters): KEY = VALUE is split here, inih
 * gets "KEY = <mark>" and the handler takes the value from rd->longval.
 */
static char *
config_long_line(struct reader *rd, char *str, int num, size_t n)
{
	char *s = rd->buf, *eq, *k, *v, *e;

	str[0] = '\0';
	while (isspace((unsigned char)*s))
		s++;
	if (*s == ';' || *s == '#')
		return str; /* a long comment */
	eq = *s == '[' ? NULL : strchr(s, '=');
	if (n > MAX_LINE || eq == NULL) {
		tp_config_diag(rd->cfg, rd->line, false,
		    "line too long (at most %d characters)",
		    eq == NULL ? num - 2 : MAX_LINE);
		return str;
	}
	for (k = eq; k > s && isspace((unsigned char)k[-1]); k--)
		;
	*k = '\0';
	for (v = eq + 1; isspace((unsigned char)*v); v++)
		;
	/* inline comments, as inih strips them: " ;..." */
	for (e = v; *e; e++)
		if (*e == ';' && e > v && isspace((unsigned char)e[-1]))
			break;
	*e = '\0';
	while (e > v && isspace((unsigned char)e[-1]))
		*--e = '\0';
	if (strlen(s) + 8 >= (size_t)num) {
		tp_config_diag(rd->cfg, rd->line, false, "key too long");
		return str;
	}
	free(rd->longval);
	rd->longval = tp_xstrdup(v);
	snprintf(str, (size_t)num, "%s = %s", s, LONG_MARK);
	return str;
}

/*
 * config_read_line - inih reader: one physical line, counted.  Lines too
 * long for inih are split by config_long_line.
 */
static char *
config_read_line(char *str, int num, void *stream)
{
	struct reader *rd = stream;
	ssize_t n;
	char *s, *e;

	n = getline(&rd->buf, &rd->cap, rd->f);
	if (n < 0)
		return NULL;
	rd->line++;
	while (n > 0 && (rd->buf[n - 1] == '\n' || rd->buf[n - 1] == '\r'))
		rd->buf[--n] = '\0';
	if (memchr(rd->buf, '\0', (size_t)n) != NULL) {
		tp_config_diag(rd->cfg, rd->line, false, "NUL byte in line");
		str[0] = '\0';
		return str;
	}
	if (n >= num - 1)
		return config_long_line(rd, str, num, (size_t)n);
	memcpy(str, rd->buf, (size_t)n + 1);
	/* Classify the line the way inih will, to report what it hides. */
	for (s = rd->buf; isspace((unsigned char)*s); s++)
		;
	rd->indented = s != rd->buf;
	if (*s == '\0' || *s == ';' || *s == '#')
		return str;
	if (*s == '[') {
		e = strchr(s, ']');
		if (e == NULL) {
			tp_config_diag(rd->cfg, rd->line, false,
			    "section header without ']'");
			return str;
		}
		*e = '\0';
		s++;
		if (e - s == 0 || e - s > MAX_SECTION_NAME) {
			tp_config_diag(rd->cfg, rd->line, false,
			    "section name must be 1 to %d characters",
			    MAX_SECTION_NAME);
			str[0] = '\0';
			return str;
		}
		for (size_t i = 0; i < rd->nsections; i++) {
			if (strcmp(rd->sections[i].name, s) == 0) {
				tp_config_diag(rd->cfg, rd->line, false,
				    "duplicate section [%s] (first at line "
				    "%d)",
				    s, rd->sections[i].line);
			}
		}
		for (const char *c = s; *c; c++) {
			if (!isalnum((unsigned char)*c) && *c != '-' &&
			    *c != '_' && *c != '.') {
				tp_config_diag(rd->cfg, rd->line, false,
				    "section name [%s]: use letters, digits, "
				    "'-', '_' and '.'",
				    s);
				break;
			}
		}
		rd->sections = tp_xrealloc(
		    rd->sections, rd->nsections + 1, sizeof(*rd->sections));
		rd->sections[rd->nsections].name = tp_xstrdup(s);
		rd->sections[rd->nsections].line = rd->line;
		rd->sections[rd->nsections].has_keys = false;
		rd->cur_section = (int)rd->nsections++;
		return str;
	}
	if (strchr(s, '=') == NULL && strchr(s, ':') == NULL) {
		tp_config_diag(
		    rd->cfg, rd->line, false, "expected KEY = VALUE");
		str[0] = '\0';
	}
	return str;
}

/* apply_defaults - fill every unset key from the table. */
static void
apply_defaults(struct tp_config *cfg, struct tp_cval *vals, bool global)
{
	const char *why;

	for (int k = 0; k < TP_K_COUNT; k++) {
		if (((tp_keys[k].scope & G) != 0) != global || vals[k].set ||
		    tp_keys[k].def == NULL)
			continue;
		if (parse_value(cfg, k, tp_keys[k].def, &vals[k], &why) < 0)
			abort(); /* our own table is wrong */
		vals[k].raw = tp_xstrdup(tp_keys[k].def);
		if (vals[k].s == NULL)
			vals[k].s = tp_xstrdup(tp_keys[k].def);
	}
}

static bool
addr_is_any(const struct tp_hostport *a)
{
	return a->wildcard || strcmp(a->host, "0.0.0.0") == 0 ||
	    strcmp(a->host, "::") == 0;
}

static bool
addr_overlaps(const struct tp_hostport *a, const struct tp_hostport *b)
{
	if (a->port == 0 || b->port == 0 || a->port != b->port)
		return false;
	if (addr_is_any(a) || addr_is_any(b))
		return a->is_v6 == b->is_v6 || a->wildcard || b->wildcard;
	return strcmp(a->host, b->host) == 0;
}

/* mode_scope - the key-table bit of a route mode. */
static enum tp_kscope
mode_scope(enum tp_mode m)
{
	return m == TP_MODE_CLIENT ? C : m == TP_MODE_SERVER ? S : W;
}

/* scope_words - the modes of a route key's scope, for messages. */
static const char *
scope_words(enum tp_kscope sc)
{
	switch ((int)sc) {
	case C:
		return "client";
	case S:
		return "server";
	case W:
		return "gateway";
	case CS:
		return "client and server";
	case CW:
		return "client and gateway";
	case SW:
		return "server and gateway";
	default:
		return "all";
	}
}

/* gateway_hint - where a key a gateway refuses goes instead. */
static const char *
gateway_hint(enum tp_key k)
{
	switch (k) {
	case TP_K_CONNECT:
		return " (a gateway delivers to each recipient domain's MX "
		       "hosts; port sets their port)";
	case TP_K_TLS:
		return " (a gateway always speaks STARTTLS to the MX hosts, "
		       "on port)";
	case TP_K_NEXTHOP:
		return " (a gateway's nexthop is each recipient's domain)";
	case TP_K_SERVERNAME:
	case TP_K_MATCH:
	case TP_K_FINGERPRINT:
	case TP_K_TLSA:
		return " (on a gateway, set it per destination in "
		       "policy_file)";
	case TP_K_ECCERT_FILE:
	case TP_K_ECKEY_FILE:
		return " (a gateway's client certificate is cert_file and "
		       "key_file)";
	default:
		return "";
	}
}

/* pm_diag - a policy_file diagnostic, as POLICYFILE:LINE: message. */
struct pm_where {
	struct tp_config *cfg;
	const char *file;
};

static void
pm_diag(void *arg, int line, bool warning, const char *msg)
{
	struct pm_where *w = arg;

	tp_config_diag_at(w->cfg, w->file, line, warning, "%s", msg);
}

/*
 * load_policy - a gateway's policy_file, read and parsed now: a reload
 * reads it again, and a broken file fails the load like any config
 * error (the old generation keeps serving).
 */
static void
load_policy(struct tp_config *cfg, struct tp_cfg_route *r)
{
	const struct tp_cval *v = &r->v[TP_K_POLICY_FILE];
	struct pm_where w = {cfg, v->s};
	char why[300];

	if (!v->set)
		return;
	r->policy = tp_policy_map_load(v->s, pm_diag, &w, why, sizeof(why));
	if (r->policy == NULL)
		tp_config_diag(
		    cfg, v->line, false, "policy_file %s: %s", v->raw, why);
}

static void
check_route(struct tp_config *cfg, struct tp_cfg_route *r)
{
	struct tp_cval *v = r->v;
	const char *why, *p;
	char item[300];
	bool gw;

	if (!v[TP_K_MODE].set || !v[TP_K_ACCEPT].set ||
	    (!v[TP_K_CONNECT].set && v[TP_K_MODE].e != TP_MODE_GATEWAY)) {
		tp_config_diag(cfg, r->line, false, "route %s: missing %s",
		    r->name,
		    !v[TP_K_MODE].set ? "mode (client, server or gateway)"
			: !v[TP_K_ACCEPT].set
			? "accept (HOST:PORT to listen on)"
			: "connect (HOST:PORT destination)");
		return;
	}
	r->mode = (enum tp_mode)v[TP_K_MODE].e;
	gw = r->mode == TP_MODE_GATEWAY;
	/* a gateway speaks STARTTLS to every MX host (spec 4.9) */
	r->tls = gw ? TP_TLS_STARTTLS : (enum tp_tls)v[TP_K_TLS].e;
	tp_parse_hostport(v[TP_K_ACCEPT].raw, &r->accept, &why);
	if (!r->accept.is_ip && !r->accept.wildcard &&
	    strcmp(r->accept.host, "localhost") != 0)
		tp_config_diag(cfg, v[TP_K_ACCEPT].line, false,
		    "accept %s: listen on an IP address, * or localhost",
		    v[TP_K_ACCEPT].raw);
	p = gw ? "" : v[TP_K_CONNECT].raw;
	while (tp_list_next(&p, item, sizeof(item)) > 0) {
		r->connect = tp_xrealloc(
		    r->connect, r->nconnect + 1, sizeof(*r->connect));
		tp_parse_dest(item, &r->connect[r->nconnect], &why);
		if (r->connect[r->nconnect].mx && r->mode != TP_MODE_CLIENT)
			tp_config_diag(cfg, v[TP_K_CONNECT].line, false,
			    "connect %s: mx: is for client routes (a server "
			    "route connects to its backend)",
			    item);
		else if (r->connect[r->nconnect].wildcard ||
		    r->connect[r->nconnect].port == 0)
			tp_config_diag(cfg, v[TP_K_CONNECT].line, false,
			    "connect %s: needs a host and a port", item);
		r->nconnect++;
	}

	/* Keys of the other modes. */
	for (int k = 0; k < TP_K_COUNT; k++) {
		enum tp_kscope sc = tp_keys[k].scope;

		if (!v[k].set || (sc & mode_scope(r->mode)) != 0)
			continue;
		tp_config_diag(cfg, v[k].line, false,
		    "%s applies to %s routes only%s", tp_keys[k].name,
		    scope_words(sc), gw ? gateway_hint((enum tp_key)k) : "");
	}

	if (!v[TP_K_SECURITY].set)
		v[TP_K_SECURITY].e = r->mode == TP_MODE_CLIENT ? TP_SEC_ENCRYPT
		    : r->mode == TP_MODE_SERVER                ? TP_SEC_MAY
							       : TP_SEC_DANE;
	r->security = v[TP_K_SECURITY].e;
	/* MTA-STS: gateways by default; a client route only by a domain */
	r->mta_sts = v[TP_K_MTA_STS].set ? v[TP_K_MTA_STS].n != 0 : gw;
	if (r->mta_sts && r->mode == TP_MODE_CLIENT) {
		bool mx = false;

		for (size_t i = 0; i < r->nconnect; i++)
			mx |= r->connect[i].mx;
		if (!mx)
			tp_config_diag(cfg, v[TP_K_MTA_STS].line, false,
			    "mta_sts = yes needs connect = mx:DOMAIN (a "
			    "policy is a domain's)");
	}
	if (r->mode == TP_MODE_SERVER && r->security > TP_SEC_ENCRYPT)
		tp_config_diag(cfg, v[TP_K_SECURITY].line, false,
		    "security = %s: server routes take none, may or encrypt",
		    v[TP_K_SECURITY].raw);
	if (r->mode == TP_MODE_CLIENT && r->tls == TP_TLS_IMPLICIT &&
	    r->security == TP_SEC_MAY)
		tp_config_diag(cfg, v[TP_K_SECURITY].line, true,
		    "security = may with tls = implicit acts as encrypt: an "
		    "implicit-TLS port has no plaintext to fall back to");
	if (gw && r->security == TP_SEC_FINGERPRINT)
		tp_config_diag(cfg, v[TP_K_SECURITY].line, false,
		    "security = fingerprint: a gateway's fingerprints are "
		    "per destination (in policy_file: DOMAIN fingerprint "
		    "match=DIGEST)");
	else if (r->security == TP_SEC_FINGERPRINT && !v[TP_K_FINGERPRINT].set)
		tp_config_diag(cfg, v[TP_K_SECURITY].line, false,
		    "security = fingerprint needs at least one fingerprint");
	/* TLSA records come from DNS for a destination by name (spec 4.8) */
	if (r->security == TP_SEC_DANE_ONLY && !v[TP_K_TLSA].set &&
	    !tp_config_dns_route(r))
		tp_config_diag(cfg, v[TP_K_SECURITY].line, false,
		    "security = dane-only needs at least one tlsa record");
	if (r->mode == TP_MODE_CLIENT &&
	    (r->security == TP_SEC_VERIFY || r->security == TP_SEC_SECURE) &&
	    r->nconnect > 0 && r->connect[0].is_ip && !v[TP_K_MATCH].set &&
	    !v[TP_K_NEXTHOP].set)
		tp_config_diag(cfg, v[TP_K_SECURITY].line, false,
		    "security = %s with an IP-literal connect needs match or "
		    "nexthop",
		    v[TP_K_SECURITY].raw);
	if (gw)
		load_policy(cfg, r);

	tp_policy_protocols(
	    v[TP_K_PROTOCOLS].raw, &r->proto_min, &r->proto_max, &why);

	/* Keys default to the certificate file (PEM with both). */
	if (v[TP_K_KEY_FILE].set && !v[TP_K_CERT_FILE].set)
		tp_config_diag(cfg, v[TP_K_KEY_FILE].line, false,
		    "key_file without cert_file");
	if (v[TP_K_ECKEY_FILE].set && !v[TP_K_ECCERT_FILE].set)
		tp_config_diag(cfg, v[TP_K_ECKEY_FILE].line, false,
		    "eckey_file without eccert_file");
	if (r->mode == TP_MODE_SERVER && r->security != TP_SEC_NONE &&
	    !v[TP_K_CERT_FILE].set && !v[TP_K_ECCERT_FILE].set)
		tp_config_diag(cfg, r->line, true,
		    "route %s has no cert_file: it serves a self-signed "
		    "certificate made at start (clients see it as Untrusted)",
		    r->name);

	r->max_connections = v[TP_K_MAX_CONNECTIONS].set
	    ? (unsigned)v[TP_K_MAX_CONNECTIONS].n
	    : (unsigned)cfg->g[TP_K_MAX_CONNECTIONS_G].n;
}

/* check_user - user and group exist (they are looked up again at start). */
static void
check_user(struct tp_config *cfg)
{
	const struct tp_cval *u = &cfg->g[TP_K_USER], *g = &cfg->g[TP_K_GROUP];

	if (u->set && getpwnam(u->raw) == NULL)
		tp_config_diag(
		    cfg, u->line, false, "user %s: no such user", u->raw);
	if (g->set && getgrnam(g->raw) == NULL)
		tp_config_diag(
		    cfg, g->line, false, "group %s: no such group", g->raw);
	if (g->set && !u->set)
		tp_config_diag(cfg, g->line, false, "group without user");
}

static void
check_config(struct tp_config *cfg, struct reader *rd)
{
	for (size_t i = 0; i < rd->nsections; i++)
		if (!rd->sections[i].has_keys &&
		    strcmp(rd->sections[i].name, "global") != 0 &&
		    tp_config_route(cfg, rd->sections[i].name) == NULL)
			tp_config_diag(cfg, rd->sections[i].line, false,
			    "route %s has no keys", rd->sections[i].name);
	apply_defaults(cfg, cfg->g, true);
	check_user(cfg);
	cfg->workers = (unsigned)cfg->g[TP_K_WORKERS].n;
	for (size_t i = 0; i < cfg->nroutes; i++) {
		apply_defaults(cfg, cfg->routes[i].v, false);
		check_route(cfg, &cfg->routes[i]);
	}
	for (size_t i = 0; i < cfg->nroutes; i++) {
		struct tp_cfg_route *a = &cfg->routes[i];

		for (size_t j = 0; j < i; j++) {
			struct tp_cfg_route *b = &cfg->routes[j];

			if (a->v[TP_K_ACCEPT].set && b->v[TP_K_ACCEPT].set &&
			    addr_overlaps(&a->accept, &b->accept)) {
				tp_config_diag(cfg, a->v[TP_K_ACCEPT].line,
				    false,
				    "accept %s: already used by route "
				    "%s (line %d)",
				    a->v[TP_K_ACCEPT].raw, b->name,
				    b->v[TP_K_ACCEPT].line);
				break;
			}
		}
	}
	tp_config_dns(cfg);
	if (cfg->nroutes == 0 && cfg->nerrors == 0)
		tp_config_diag(cfg, 0, false, "no routes configured");
}

static struct tp_config *
config_parse(const char *name, FILE *f)
{
	struct tp_config *cfg = xcalloc(1, sizeof(*cfg));
	struct reader rd = {.cfg = cfg, .f = f, .cur_section = -1};
	const char *slash;

	cfg->path = tp_xstrdup(name);
	slash = strrchr(name, '/');
	cfg->dir = slash
	    ? strndup(name, (size_t)(slash - name ? slash - name : 1))
	    : tp_xstrdup(".");
	if (cfg->dir == NULL)
		exit(1);
	if (f == NULL) {
		tp_config_diag(cfg, 0, false, "cannot open: %m");
		return cfg;
	}
	if (ini_parse_stream(config_read_line, &rd, config_on_key, &rd) == -2)
		tp_config_diag(cfg, 0, false, "out of memory");
	if (ferror(f))
		tp_config_diag(cfg, rd.line, false, "read error: %m");
	check_config(cfg, &rd);
	for (size_t i = 0; i < rd.nsections; i++)
		free(rd.sections[i].name);
	free(rd.sections);
	free(rd.buf);
	free(rd.longval);
	return cfg;
}

struct tp_config *
tp_config_load(const char *path)
{
	FILE *f = fopen(path, "r");
	struct tp_config *cfg = config_parse(path, f);

	if (f != NULL)
		fclose(f);
	return cfg;
}

struct tp_config *
tp_config_load_string(const char *name, const char *text)
{
	FILE *f = fmemopen((void *)text, strlen(text), "r");
	struct tp_config *cfg = config_parse(name, f);

	if (f != NULL)
		fclose(f);
	return cfg;
}

/* nofile_warn - the warning of tp_config_check_nofile for one value. */
static void
nofile_warn(struct tp_config *cfg, const struct tp_cval *v,
    unsigned long long sessions, unsigned long long need,
    unsigned long long limit)
{
	tp_config_diag(cfg, v->line, true,
	    "max_connections = %llu%s: up to %llu sessions need %llu open "
	    "files (2 per session, the listeners and a margin), more than "
	    "the open files limit %llu: raise the hard limit (ulimit -Hn, "
	    "systemd LimitNOFILE=) or lower max_connections",
	    v->n, v->set ? "" : " (the default)", sessions, need, limit);
}

unsigned long long
tp_config_check_nofile(struct tp_config *cfg, unsigned long long limit)
{
	const struct tp_cval *gv = &cfg->g[TP_K_MAX_CONNECTIONS_G], *top = NULL;
	unsigned long long base, sum = 0, sessions, need;
	unsigned workers = cfg->workers ? cfg->workers : 1;
	bool warned = false;

	/*
	 * One listening socket per route and worker, the stats listener,
	 * the backend probes, and a margin for stdio, each loop's epoll and
	 * wakeup descriptors, log and key files and DNS.
	 */
	base = (unsigned long long)cfg->nroutes * (workers + 1) +
	    (cfg->g[TP_K_STATS].set ? 1 : 0) + 64 + 4ULL * workers;
	for (size_t i = 0; i < cfg->nroutes; i++) {
		const struct tp_cfg_route *r = &cfg->routes[i];
		const struct tp_cval *v = &r->v[TP_K_MAX_CONNECTIONS];

		sum += r->max_connections;
		if (!v->set)
			continue;
		if (top == NULL || v->n > top->n)
			top = v;
		/* a route alone (within the global bound) that cannot fit */
		sessions = v->n < gv->n ? v->n : gv->n;
		need = 2 * sessions + base;
		if (limit > 0 && need > limit) {
			nofile_warn(cfg, v, sessions, need, limit);
			warned = true;
		}
	}
	/* all routes together, bounded by the global value */
	sessions = sum < gv->n ? sum : gv->n;
	need = 2 * sessions + base;
	if (limit > 0 && need > limit && !warned)
		nofile_warn(cfg, sum < gv->n && top != NULL ? top : gv,
		    sessions, need, limit);
	return need;
}

const struct tp_cfg_route *
tp_config_route(const struct tp_config *cfg, const char *name)
{
	for (size_t i = 0; i < cfg->nroutes; i++)
		if (strcmp(cfg->routes[i].name, name) == 0)
			return &cfg->routes[i];
	return NULL;
}

static void
cvals_free(struct tp_cval *vals)
{
	for (int k = 0; k < TP_K_COUNT; k++) {
		free(vals[k].raw);
		free(vals[k].s);
		for (size_t i = 0; i < vals[k].nlist; i++)
			free(vals[k].list[i]);
		free(vals[k].list);
		free(vals[k].lines);
	}
}

void
tp_config_free(struct tp_config *cfg)
{
	if (cfg == NULL)
		return;
	cvals_free(cfg->g);
	tp_config_dns_free(cfg);
	for (size_t i = 0; i < cfg->nroutes; i++) {
		cvals_free(cfg->routes[i].v);
		tp_policy_map_free(cfg->routes[i].policy);
		free(cfg->routes[i].name);
		free(cfg->routes[i].connect);
	}
	free(cfg->routes);
	for (size_t i = 0; i < cfg->ndiags; i++)
		free(cfg->diags[i]);
	free(cfg->diags);
	free(cfg->path);
	free(cfg->dir);
	free(cfg);
}
