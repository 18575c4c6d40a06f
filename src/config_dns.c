/*
 * config_dns.c - the DNS part of the configuration (spec section 3, the
 * [global] dns_* keys, and 4.8): dns_resolver and dns_stub values, the
 * derived fields of struct tp_config that the DNS layer reads, and the
 * two files read at load time: the trust anchor file (when a client route
 * connects to a name, a gateway route exists, or dns_trust_anchor is set)
 * and /etc/resolv.conf (dns_resolver = resolv.conf).  Every load reads
 * them, so a reload re-reads them, inside the chroot once it is closed.
 * The trust anchor records are checked here, field by field, so that a
 * bad file is a FILE:LINE error of -t rather than a failure of the DNS
 * layer's first lookup (libunbound parses anchors only then).
 * Pure: no libuv, no OpenSSL, no libunbound.  Main thread only; config.c
 * calls it.
 */
#include "tlsproxy/common.h"
#include "tlsproxy/config_dns.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "tlsproxy/config.h"
#include "tlsproxy/parse.h"

#define RESOLVER_WHY                                                           \
	"expected recursive, resolv.conf or a list of IP[@PORT] forwarders"
#define STUB_WHY   "expected ZONE IP[@PORT] [IP[@PORT]...]"
#define DS_WHY     "bad DS record (expected KEYTAG ALGORITHM DIGESTTYPE HEX)"
#define DNSKEY_WHY "bad DNSKEY record (expected FLAGS 3 ALGORITHM BASE64-KEY)"
#define MAX_TOKENS 512 /* fields of one anchor record */

static void
strv_add(char ***v, size_t *n, const char *s)
{
	*v = tp_xrealloc(*v, *n + 1, sizeof(char *));
	(*v)[(*n)++] = tp_xstrdup(s);
}

void
tp_config_dns_strv_free(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

/* ---- values ---- */

/*
 * resolver_parse - a dns_resolver value: recursive, resolv.conf, or up to
 * TP_DNS_MAX_ADDRS forwarders written to addrs (*n of them).
 */
static int
resolver_parse(const char *value, enum tp_dns_mode *mode,
    char addrs[][TP_IPPORT_MAX], size_t *n, const char **why)
{
	const char *p = value;
	char item[300];
	int rc;

	*n = 0;
	if (strcmp(value, "recursive") == 0) {
		*mode = TP_DNS_RECURSIVE;
		return 0;
	}
	if (strcmp(value, "resolv.conf") == 0) {
		*mode = TP_DNS_RESOLVCONF;
		return 0;
	}
	*mode = TP_DNS_FORWARD;
	while ((rc = tp_list_next(&p, item, sizeof(item))) != 0) {
		if (rc < 0) {
			*why = RESOLVER_WHY;
			return -1;
		}
		if (strcmp(item, "recursive") == 0 ||
		    strcmp(item, "resolv.conf") == 0) {
			*why =
			    "recursive and resolv.conf stand alone, not in a "
			    "list";
			return -1;
		}
		if (*n == TP_DNS_MAX_ADDRS) {
			*why = "at most 16 forwarders";
			return -1;
		}
		if (tp_parse_ipport(item, addrs[*n], TP_IPPORT_MAX, why) < 0) {
			/* a word (a misspelt keyword, a name): the forms */
			if (strpbrk(item, "@[:") == NULL)
				*why = RESOLVER_WHY;
			return -1;
		}
		(*n)++;
	}
	if (*n == 0) {
		*why = RESOLVER_WHY;
		return -1;
	}
	return 0;
}

int
tp_config_dns_resolver(const char *value, const char **why)
{
	char addrs[TP_DNS_MAX_ADDRS][TP_IPPORT_MAX];
	enum tp_dns_mode mode;
	size_t n;

	return resolver_parse(value, &mode, addrs, &n, why);
}

/* stub_parse - a dns_stub value: ZONE IP[@PORT] [IP[@PORT]...]. */
static int
stub_parse(const char *value, char *zone, size_t zlen,
    char addrs[][TP_IPPORT_MAX], size_t *n, const char **why)
{
	const char *p = value, *peek;
	char item[300];
	int rc;

	*n = 0;
	if (tp_list_next(&p, item, sizeof(item)) <= 0) {
		*why = STUB_WHY;
		return -1;
	}
	peek = p;
	if (tp_list_next(&peek, zone, zlen) == 0) {
		*why = STUB_WHY; /* a zone and no server */
		return -1;
	}
	if (tp_parse_domain(item, true, true, zone, zlen, why) < 0)
		return -1;
	while ((rc = tp_list_next(&p, item, sizeof(item))) != 0) {
		if (rc < 0) {
			*why = "expected an IP address (IP or IP@PORT)";
			return -1;
		}
		if (*n == TP_DNS_MAX_ADDRS) {
			*why = "at most 16 servers";
			return -1;
		}
		if (tp_parse_ipport(item, addrs[*n], TP_IPPORT_MAX, why) < 0)
			return -1;
		(*n)++;
	}
	return 0;
}

int
tp_config_dns_stub(const char *value, const char **why)
{
	char addrs[TP_DNS_MAX_ADDRS][TP_IPPORT_MAX], zone[TP_HOST_MAX + 1];
	size_t n;

	return stub_parse(value, zone, sizeof(zone), addrs, &n, why);
}

/* ---- /etc/resolv.conf ---- */

/* nameserver_ok - an IPv4 or IPv6 address, the latter with a %scope. */
static bool
nameserver_ok(const char *s)
{
	unsigned char tmp[16];
	char ip[INET6_ADDRSTRLEN];
	size_t n = strcspn(s, "%");

	if (n == 0 || n >= sizeof(ip))
		return false;
	memcpy(ip, s, n);
	ip[n] = '\0';
	if (inet_pton(AF_INET, ip, tmp) == 1)
		return s[n] == '\0';
	return inet_pton(AF_INET6, ip, tmp) == 1 &&
	    (s[n] == '\0' || s[n + 1] != '\0');
}

int
tp_config_dns_read_resolvconf(
    const char *path, char ***addrs, char *why, size_t len)
{
	FILE *f = fopen(path, "r");
	char *line = NULL, *s, addr[80];
	size_t cap = 0, n = 0, al;
	int err;

	*addrs = NULL;
	if (f == NULL) {
		snprintf(
		    why, len, "%s: cannot read: %s", path, strerror(errno));
		return -1;
	}
	while (getline(&line, &cap, f) >= 0) {
		for (s = line; *s == ' ' || *s == '\t'; s++)
			;
		if (strncmp(s, "nameserver", 10) != 0 ||
		    (s[10] != ' ' && s[10] != '\t'))
			continue;
		for (s += 10; *s == ' ' || *s == '\t'; s++)
			;
		al = strcspn(s, " \t\r\n#;");
		if (al == 0 || al >= sizeof(addr))
			continue;
		memcpy(addr, s, al);
		addr[al] = '\0';
		/* as the C library does: skip what it cannot use */
		if (nameserver_ok(addr) && n < TP_DNS_MAX_ADDRS)
			strv_add(addrs, &n, addr);
	}
	err = ferror(f) ? errno : 0;
	free(line);
	fclose(f);
	if (err != 0) {
		snprintf(why, len, "%s: cannot read: %s", path, strerror(err));
		tp_config_dns_strv_free(*addrs, n);
		*addrs = NULL;
		return -1;
	}
	if (n == 0) {
		snprintf(why, len, "no nameserver address in %s", path);
		return -1;
	}
	return (int)n;
}

/* ---- the trust anchor file ---- */

struct anchor {
	char **rrs;
	size_t n;
	char owner[TP_HOST_MAX + 8]; /* the last owner name, as written */
	bool have_owner;
	char *why;
	size_t len;
};

static bool
all_digits(const char *s)
{
	return *s != '\0' && strspn(s, "0123456789") == strlen(s);
}

/*
 * ttl_word - a TTL: seconds, or BIND's units (1h30m, 2d, 1W); -1 when S
 * is not one (it starts with a digit), -2 when it is out of range.
 */
static long long
ttl_word(const char *s)
{
	static const char units[] = "wdhms";
	static const unsigned long long mult[] = {604800, 86400, 3600, 60, 1};
	unsigned long long total = 0, v;
	const char *u;
	char *end;

	if (*s < '0' || *s > '9')
		return -1;
	while (*s != '\0') {
		if (*s < '0' || *s > '9')
			return -1;
		errno = 0;
		v = strtoull(s, &end, 10);
		if (errno != 0 || v > 2147483647ULL)
			return -2;
		if (*end != '\0') {
			u = strchr(units, tolower((unsigned char)*end));
			if (u == NULL)
				return -1;
			v *= mult[u - units];
			end++;
		}
		total += v;
		if (total > 2147483647ULL)
			return -2;
		s = end;
	}
	return (long long)total;
}

/* class_word - IN, CH, HS, CS, NONE, ANY or CLASSnn. */
static bool
class_word(const char *s)
{
	return strcasecmp(s, "IN") == 0 || strcasecmp(s, "CH") == 0 ||
	    strcasecmp(s, "HS") == 0 || strcasecmp(s, "CS") == 0 ||
	    strcasecmp(s, "NONE") == 0 || strcasecmp(s, "ANY") == 0 ||
	    (strncasecmp(s, "CLASS", 5) == 0 && all_digits(s + 5));
}

/*
 * join - the tokens from i on, concatenated (zone files may split a
 * digest or a key over several fields and lines); NULL when there are
 * none or one has a byte outside ok.
 */
static char *
join(char **tok, int i, int ntok, const char *ok)
{
	size_t n = 0;
	char *out;

	if (i >= ntok)
		return NULL;
	for (int j = i; j < ntok; j++) {
		if (strspn(tok[j], ok) != strlen(tok[j]))
			return NULL;
		n += strlen(tok[j]);
	}
	out = tp_xrealloc(NULL, n + 1, 1);
	out[0] = '\0';
	for (int j = i; j < ntok; j++)
		strcat(out, tok[j]);
	return out;
}

static bool
num(const char *s, unsigned long long max, unsigned long long *out)
{
	const char *why;

	return tp_parse_uint(s, 0, max, out, &why) == 0;
}

/*
 * anchor_rr - one DS or DNSKEY record (TYPE at tok[i]) of OWNER: checked
 * and added to a->rrs in one-line form.  0 or -1 with a->why.
 */
static int
anchor_rr(struct anchor *a, const char *owner, const char *ttl, char **tok,
    int i, int ntok)
{
	static const char hex[] = "0123456789abcdefABCDEF";
	static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
				  "abcdefghijklmnopqrstuvwxyz0123456789+/=";
	bool ds = strcasecmp(tok[i], "DS") == 0;
	unsigned long long f1, f2, f3;
	char name[TP_HOST_MAX + 2], *data, *rr;
	const char *why;
	size_t dl;

	if (tp_parse_domain(owner, true, true, name, sizeof(name), &why) < 0) {
		snprintf(
		    a->why, a->len, "bad owner name %.100s: %s", owner, why);
		return -1;
	}
	i++;
	if (ntok - i < 4 || !num(tok[i], 65535, &f1) ||
	    !num(tok[i + 1], 255, &f2) || !num(tok[i + 2], 255, &f3) ||
	    (data = join(tok, i + 3, ntok, ds ? hex : b64)) == NULL) {
		snprintf(a->why, a->len, "%s", ds ? DS_WHY : DNSKEY_WHY);
		return -1;
	}
	dl = strlen(data);
	if (ds ? dl % 2 != 0 || (f3 == 1 && dl != 40) ||
		    (f3 == 2 && dl != 64) || (f3 == 4 && dl != 96)
	       : f2 != 3 || dl % 4 != 0) {
		snprintf(a->why, a->len, "%s", ds ? DS_WHY : DNSKEY_WHY);
		free(data);
		return -1;
	}
	if (a->n == TP_DNS_MAX_TA) {
		snprintf(a->why, a->len, "more than %d DS or DNSKEY records",
		    TP_DNS_MAX_TA);
		free(data);
		return -1;
	}
	if (asprintf(&rr, "%s%s%s IN %s %llu %llu %llu %s", name,
		ttl ? " " : "", ttl ? ttl : "", ds ? "DS" : "DNSKEY", f1, f2,
		f3, data) < 0) {
		fprintf(stderr, "tlsproxy: out of memory\n");
		exit(1);
	}
	free(data);
	a->rrs = tp_xrealloc(a->rrs, a->n + 1, sizeof(char *));
	a->rrs[a->n++] = rr;
	return 0;
}

/*
 * anchor_record - one zone-file record (parentheses already joined):
 * [OWNER] [TTL] [CLASS] TYPE DATA, TTL and CLASS in either order; a
 * record that starts with white space has the previous owner.  DS and
 * DNSKEY records of class IN are kept, others skipped.
 */
static int
anchor_record(struct anchor *a, char *rec)
{
	char *tok[MAX_TOKENS], *save = NULL, *t, ttlbuf[16];
	const char *owner, *ttl = NULL;
	long long v;
	bool inherit = rec[0] == ' ' || rec[0] == '\t';
	int ntok = 0, i = 0;

	for (char *c = rec; *c; c++)
		if (*c == '(' || *c == ')')
			*c = ' ';
	for (t = strtok_r(rec, " \t\r", &save); t != NULL;
	     t = strtok_r(NULL, " \t\r", &save)) {
		if (ntok == MAX_TOKENS) {
			snprintf(a->why, a->len, "record too long");
			return -1;
		}
		tok[ntok++] = t;
	}
	if (ntok == 0)
		return 0;
	if (!inherit) {
		snprintf(a->owner, sizeof(a->owner), "%s", tok[i++]);
		a->have_owner = true;
	}
	owner = a->owner;
	for (int k = 0; k < 2 && i < ntok; k++) {
		if (ttl == NULL && (v = ttl_word(tok[i])) != -1) {
			if (v < 0) {
				snprintf(
				    a->why, a->len, "bad TTL %.20s", tok[i]);
				return -1;
			}
			snprintf(ttlbuf, sizeof(ttlbuf), "%lld", v);
			ttl = ttlbuf;
			i++;
		} else if (class_word(tok[i])) {
			if (strcasecmp(tok[i], "IN") != 0)
				return 0; /* not the Internet */
			i++;
		}
	}
	if (i >= ntok || !a->have_owner) {
		snprintf(a->why, a->len, "expected OWNER [TTL] [IN] TYPE DATA");
		return -1;
	}
	if (strcasecmp(tok[i], "DS") != 0 && strcasecmp(tok[i], "DNSKEY") != 0)
		return 0;
	return anchor_rr(a, owner, ttl, tok, i, ntok);
}

/*
 * anchor_parse - the records of TEXT (NUL-terminated, modified): ';'
 * comments, blank lines and $-directives skipped, ( ) joining lines;
 * quoted text (a TXT record's) hides ';' and parentheses.  On error *line
 * is the line the record starts on.
 */
static int
anchor_parse(struct anchor *a, char *text, int *line)
{
	char *p = text, *nl, *rec = NULL, *c;
	size_t rlen = 0, ll;
	int ln = 0, depth = 0, was;
	bool quoted;

	for (; *p != '\0'; p = nl ? nl + 1 : p + strlen(p)) {
		nl = strchr(p, '\n');
		if (nl != NULL)
			*nl = '\0';
		ln++;
		was = depth;
		if (was == 0 && p[0] == '$')
			continue; /* $TTL, $ORIGIN, $INCLUDE: not read */
		/* a comment starts at ';', parentheses count, outside "" */
		quoted = false;
		for (c = p; *c; c++) {
			if (*c == '\\' && c[1] != '\0')
				c++;
			else if (*c == '"')
				quoted = !quoted;
			else if (!quoted && *c == ';') {
				*c = '\0';
				break;
			} else if (!quoted && *c == '(')
				depth++;
			else if (!quoted && *c == ')' && --depth < 0) {
				*line = ln;
				snprintf(a->why, a->len, "')' without '('");
				goto fail;
			}
		}
		if (was == 0) {
			if (p[strspn(p, " \t\r")] == '\0')
				continue;
			*line = ln;
			rlen = 0;
		}
		ll = strlen(p);
		rec = tp_xrealloc(rec, rlen + ll + 2, 1);
		if (rlen > 0)
			rec[rlen++] = ' ';
		memcpy(rec + rlen, p, ll + 1);
		rlen += ll;
		if (depth == 0 && anchor_record(a, rec) < 0)
			goto fail;
		if (nl == NULL)
			break;
	}
	if (depth > 0) {
		snprintf(a->why, a->len, "'(' without ')'");
		goto fail;
	}
	free(rec);
	return 0;
fail:
	free(rec);
	return -1;
}

int
tp_config_dns_read_anchor(
    const char *path, char ***rrs, int *line, char *why, size_t len)
{
	struct anchor a = {.why = why, .len = len};
	FILE *f = fopen(path, "r");
	char *text;
	size_t n;
	int err;

	*rrs = NULL;
	*line = 0;
	if (f == NULL) {
		snprintf(why, len, "cannot read: %s", strerror(errno));
		return -1;
	}
	text = tp_xrealloc(NULL, TP_DNS_MAX_TA_SIZE + 1, 1);
	n = fread(text, 1, TP_DNS_MAX_TA_SIZE + 1, f);
	err = ferror(f) ? errno : 0;
	fclose(f);
	if (err != 0 || n > TP_DNS_MAX_TA_SIZE || memchr(text, '\0', n)) {
		if (err != 0)
			snprintf(why, len, "cannot read: %s", strerror(err));
		else if (n > TP_DNS_MAX_TA_SIZE)
			snprintf(why, len, "larger than %d bytes",
			    TP_DNS_MAX_TA_SIZE);
		else
			snprintf(why, len, "not a text file (NUL byte)");
		free(text);
		return -1;
	}
	text[n] = '\0';
	if (anchor_parse(&a, text, line) < 0) {
		free(text);
		tp_config_dns_strv_free(a.rrs, a.n);
		return -1;
	}
	free(text);
	*line = 0;
	if (a.n == 0) {
		snprintf(why, len, "no DS or DNSKEY record");
		return -1;
	}
	*rrs = a.rrs;
	return (int)a.n;
}

/* ---- the cross-key pass ---- */

static void
dns_resolver(struct tp_config *cfg)
{
	const struct tp_cval *v = &cfg->g[TP_K_DNS_RESOLVER];
	char addrs[TP_DNS_MAX_ADDRS][TP_IPPORT_MAX], why[400];
	const char *w;
	size_t n;
	int rc;

	if (v->raw == NULL ||
	    resolver_parse(v->raw, &cfg->dns_mode, addrs, &n, &w) < 0)
		return; /* reported at its line */
	for (size_t i = 0; i < n; i++)
		strv_add(&cfg->dns_fwd, &cfg->ndns_fwd, addrs[i]);
	if (cfg->dns_mode != TP_DNS_RESOLVCONF)
		return;
	rc = tp_config_dns_read_resolvconf(
	    TP_RESOLV_CONF, &cfg->dns_fwd, why, sizeof(why));
	if (rc < 0)
		tp_config_diag(
		    cfg, v->line, false, "dns_resolver = %s: %s", v->raw, why);
	else
		cfg->ndns_fwd = (size_t)rc;
}

static void
dns_stubs(struct tp_config *cfg)
{
	const struct tp_cval *v = &cfg->g[TP_K_DNS_STUB];
	char addrs[TP_DNS_MAX_ADDRS][TP_IPPORT_MAX], zone[TP_HOST_MAX + 1];
	struct tp_dns_stub *s;
	const char *why;
	size_t n, j;

	for (size_t i = 0; i < v->nlist; i++) {
		if (stub_parse(
			v->list[i], zone, sizeof(zone), addrs, &n, &why) < 0)
			continue; /* cannot happen: checked at its line */
		for (j = 0; j < cfg->ndns_stubs; j++)
			if (strcmp(cfg->dns_stubs[j].zone, zone) == 0)
				break;
		if (j < cfg->ndns_stubs) {
			tp_config_diag(cfg, v->lines[i], false,
			    "dns_stub %s: zone %s already has servers (line "
			    "%d)",
			    v->list[i], zone, cfg->dns_stubs[j].line);
			continue;
		}
		if (cfg->ndns_stubs == TP_DNS_MAX_STUBS) {
			tp_config_diag(cfg, v->lines[i], false,
			    "dns_stub: at most %d zones", TP_DNS_MAX_STUBS);
			return;
		}
		cfg->dns_stubs = tp_xrealloc(
		    cfg->dns_stubs, cfg->ndns_stubs + 1, sizeof(*s));
		s = &cfg->dns_stubs[cfg->ndns_stubs++];
		memset(s, 0, sizeof(*s));
		s->zone = tp_xstrdup(zone);
		s->line = v->lines[i];
		for (j = 0; j < n; j++)
			strv_add(&s->addrs, &s->naddrs, addrs[j]);
	}
}

/*
 * dns_anchor - read the trust anchors when the DNS layer will run, or
 * when the file is named explicitly (a typo shows at once).  A missing
 * default file is an error only when a route needs DNS.
 */
static void
dns_anchor(struct tp_config *cfg, const struct tp_cfg_route *needs)
{
	const struct tp_cval *v = &cfg->g[TP_K_DNS_TRUST_ANCHOR];
	char why[400];
	int rc, line;

	if ((!cfg->dns_needed && !v->set) || v->s == NULL)
		return;
	rc = tp_config_dns_read_anchor(
	    v->s, &cfg->dns_ta, &line, why, sizeof(why));
	if (rc >= 0) {
		cfg->ndns_ta = (size_t)rc;
		return;
	}
	if (line > 0)
		tp_config_diag(cfg, v->line, false,
		    "dns_trust_anchor %s:%d: %s", v->s, line, why);
	else if (v->set || needs == NULL)
		tp_config_diag(
		    cfg, v->line, false, "dns_trust_anchor %s: %s", v->s, why);
	else if (needs->mode == TP_MODE_GATEWAY)
		tp_config_diag(cfg, 0, false,
		    "dns_trust_anchor %s (the default): %s (route %s is a "
		    "gateway, line %d, which looks up MX hosts with DNSSEC: "
		    "install dns-root-data or set dns_trust_anchor)",
		    v->s, why, needs->name, needs->v[TP_K_MODE].line);
	else
		tp_config_diag(cfg, 0, false,
		    "dns_trust_anchor %s (the default): %s (route %s connects "
		    "to a DNS name at line %d: install dns-root-data or set "
		    "dns_trust_anchor)",
		    v->s, why, needs->name, needs->v[TP_K_CONNECT].line);
}

bool
tp_config_dns_route(const struct tp_cfg_route *r)
{
	if (!r->v[TP_K_MODE].set)
		return false;
	/* a gateway resolves every recipient domain's MX hosts */
	if (r->mode == TP_MODE_GATEWAY)
		return true;
	if (r->mode != TP_MODE_CLIENT)
		return false;
	for (size_t j = 0; j < r->nconnect; j++) {
		const struct tp_hostport *c = &r->connect[j];

		if (c->mx || (!c->is_ip && !c->wildcard))
			return true;
	}
	return false;
}

void
tp_config_dns(struct tp_config *cfg)
{
	const struct tp_cfg_route *needs = NULL;

	dns_resolver(cfg);
	dns_stubs(cfg);
	for (size_t i = 0; i < cfg->nroutes && needs == NULL; i++)
		if (tp_config_dns_route(&cfg->routes[i]))
			needs = &cfg->routes[i];
	cfg->dns_needed = needs != NULL;
	dns_anchor(cfg, needs);
}

void
tp_config_dns_free(struct tp_config *cfg)
{
	tp_config_dns_strv_free(cfg->dns_fwd, cfg->ndns_fwd);
	for (size_t i = 0; i < cfg->ndns_stubs; i++) {
		free(cfg->dns_stubs[i].zone);
		tp_config_dns_strv_free(
		    cfg->dns_stubs[i].addrs, cfg->dns_stubs[i].naddrs);
	}
	free(cfg->dns_stubs);
	tp_config_dns_strv_free(cfg->dns_ta, cfg->ndns_ta);
}
