/*
 * config.h - the parsed configuration: one immutable snapshot per load.
 *
 * tp_config_load() reads the INI file through inih with a line-counting
 * reader, so every diagnostic is "FILE:LINE: message".  Parsing goes on
 * after an error, so -t prints every problem.  Values keep the line they
 * came from, for checks made later (certificates, keys).
 */
#ifndef TLSPROXY_CONFIG_H
#define TLSPROXY_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tlsproxy/parse.h"

struct tp_policy_map;

/*
 * Where a key may be written: [global] (G), or the route modes that take
 * it, one bit each (C client, S server, W gateway) or a union of them.
 */
enum tp_kscope {
	G = 1,
	C = 2,
	S = 4,
	W = 8,
	CS = C | S,
	CW = C | W,
	SW = S | W,
	R = C | S | W, /* every route */
};

enum tp_ktype {
	T_STR,
	T_PATH,
	T_BOOL,
	T_DUR,
	T_UINT,
	T_ENUM,
	T_ADDR,
	T_ADDRLIST,
	T_PROTOCOLS,
	T_LIST,
	T_WORKERS,
	T_FINGERPRINT,
	T_TLSA,
	T_SNI,
	T_DNS_RESOLVER,
	T_DNS_STUB,
};

#define F_REPEAT  1
#define F_NOTIMPL 2

enum tp_key {
#define X(id, name, scope, type, def, choices, lo, hi, flags, help) TP_K_##id,
#include "tlsproxy/config_keys.def"
#undef X
	TP_K_COUNT
};

struct tp_keydef {
	const char *name;
	enum tp_kscope scope;
	enum tp_ktype type;
	const char *def;
	const char *choices;
	unsigned long long lo, hi;
	int flags;
	const char *help;
};

extern const struct tp_keydef tp_keys[TP_K_COUNT];

/* One configured (or default) value. */
struct tp_cval {
	bool set;  /* present in the file (else the default, if any) */
	int line;  /* line in the file; 0 for a default */
	char *raw; /* the text as written (or the default text) */
	char *s;   /* string value; paths resolved against the config dir */
	unsigned long long n; /* T_UINT, T_DUR (ms), T_WORKERS, T_BOOL */
	int e;                /* T_ENUM: index into choices */
	char **list;          /* F_REPEAT: every occurrence, in order */
	int *lines;
	size_t nlist;
};

/* the order of the choices of the mode key */
enum tp_mode { TP_MODE_CLIENT = 0, TP_MODE_SERVER = 1, TP_MODE_GATEWAY = 2 };
enum tp_tls { TP_TLS_IMPLICIT = 0, TP_TLS_STARTTLS = 1 };

struct tp_cfg_route {
	char *name;
	int line; /* of the [section] header */
	struct tp_cval v[TP_K_COUNT];
	/* derived */
	enum tp_mode mode;
	enum tp_tls tls;
	int security; /* enum tp_security */
	struct tp_hostport accept;
	struct tp_hostport *connect;
	size_t nconnect;
	int proto_min, proto_max;
	unsigned max_connections;
	bool unimplemented; /* a level or mode whose behaviour is not built */
	bool mta_sts;       /* MTA-STS applies (gateway, mx: client route) */
	char *unimplemented_what;
	/* gateway: policy_file, parsed (policy_map.h); NULL without one */
	struct tp_policy_map *policy;
};

/* dns_resolver: how the DNS layer resolves (spec 4.8); always validating. */
enum tp_dns_mode {
	TP_DNS_RECURSIVE,  /* from the root, with the trust anchors */
	TP_DNS_RESOLVCONF, /* forward to /etc/resolv.conf's nameservers */
	TP_DNS_FORWARD,    /* forward to the listed servers */
};

/* One dns_stub line: queries for zone (and below) go to addrs. */
struct tp_dns_stub {
	char *zone;   /* lower case, with a trailing dot: "test.", or "." */
	char **addrs; /* "IP" or "IP@PORT", as ub_ctx_set_stub() takes */
	size_t naddrs;
	int line; /* of the dns_stub line */
};

struct tp_config {
	char *path; /* as given */
	char *dir;  /* directory of the file, for relative paths */
	struct tp_cval g[TP_K_COUNT];
	struct tp_cfg_route *routes;
	size_t nroutes;
	unsigned workers;
	/*
	 * DNS, derived from the [global] dns_* keys (g[TP_K_DNS_TIMEOUT].n
	 * is the lookup timeout in ms, g[TP_K_DNS_TRUST_ANCHOR].s the path).
	 * dns_fwd: the servers to forward to, "IP" or "IP@PORT" as
	 * ub_ctx_set_fwd() takes them: the dns_resolver list (FORWARD) or
	 * /etc/resolv.conf's nameservers read at load (RESOLVCONF); empty for
	 * RECURSIVE.  dns_ta: the trust anchor file's DS and DNSKEY records,
	 * one RR per string ("test. 3600 IN DS 12345 13 2 ABCD..."), as
	 * ub_ctx_add_ta() takes them; read when dns_needed or when
	 * dns_trust_anchor is set.  dns_needed: a client route connects to
	 * a host name or mx:DOMAIN, or a gateway route exists, so the DNS
	 * layer must run.
	 */
	enum tp_dns_mode dns_mode;
	char **dns_fwd;
	size_t ndns_fwd;
	struct tp_dns_stub *dns_stubs;
	size_t ndns_stubs;
	char **dns_ta;
	size_t ndns_ta;
	bool dns_needed;
	/* diagnostics, in order */
	char **diags;
	size_t ndiags;
	int nerrors;
	int nwarnings;
};

/*
 * tp_config_load - read and validate FILE.  Always returns a config
 * (NULL only when out of memory); check cfg->nerrors.
 */
struct tp_config *tp_config_load(const char *path);
/* tp_config_load_string - the same from memory (tests, fuzzers). */
struct tp_config *tp_config_load_string(const char *name, const char *text);
void tp_config_free(struct tp_config *cfg);
/* tp_config_diag - add "FILE:LINE: [warning: ]message" to cfg. */
void tp_config_diag(struct tp_config *cfg, int line, bool warning,
    const char *fmt, ...) __attribute__((format(printf, 4, 5)));
/*
 * tp_config_diag_at - the same about another file the config names (a
 * gateway's policy_file): "FILE:LINE: ...", FILE NULL for the INI file.
 */
void tp_config_diag_at(struct tp_config *cfg, const char *file, int line,
    bool warning, const char *fmt, ...) __attribute__((format(printf, 5, 6)));
/* tp_config_mode_name - "client", "server" or "gateway". */
const char *tp_config_mode_name(enum tp_mode mode);
/*
 * tp_config_check_nofile - warn (at the max_connections line that sets
 * the bound, global or route) when the sessions max_connections allows,
 * two descriptors each, plus listeners and a margin, do not fit in LIMIT
 * open files.  Returns the number of descriptors the config may need.
 */
unsigned long long tp_config_check_nofile(
    struct tp_config *cfg, unsigned long long limit);
/* tp_config_route - find a route by name, or NULL. */
const struct tp_cfg_route *tp_config_route(
    const struct tp_config *cfg, const char *name);
/* tp_config_resolve - path relative to the config dir, malloc'd. */
char *tp_config_resolve(const struct tp_config *cfg, const char *path);

#endif
