/*
 * gen.c - build and free runtime generations.  A generation is immutable
 * once published; reload builds a whole new one or nothing (hitch's
 * commit/rollback): a broken config never replaces a working one.  A
 * gateway route's policies (its default and its policy_file's) are built
 * by gen_policy.c.
 */
#include "tlsproxy/gen.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/err.h>

#include "tlsproxy/config.h"
#include "tlsproxy/gen_policy.h"
#include "tlsproxy/parse.h"
#include "tlsproxy/tls_ctx.h"
#include "tlsproxy/tls_io.h"
#include "tlsproxy/tls_policy.h"
#include "tlsproxy/tls_verify.h"

static unsigned long gen_serial;
static pthread_mutex_t caps_lock = PTHREAD_MUTEX_INITIALIZER;

void
tp_caps_set(struct tp_route_stats *st, const char *caps)
{
	pthread_mutex_lock(&caps_lock);
	snprintf(st->caps, sizeof(st->caps), "%s", caps);
	st->caps_known = true;
	pthread_mutex_unlock(&caps_lock);
}

bool
tp_caps_get(struct tp_route_stats *st, char *buf, size_t len)
{
	bool known;

	pthread_mutex_lock(&caps_lock);
	known = st->caps_known;
	snprintf(buf, len, "%s", known ? st->caps : "");
	pthread_mutex_unlock(&caps_lock);
	return known;
}

static struct tp_route_stats *
stats_find_or_new(const struct tp_gen *old, const char *name)
{
	struct tp_route_stats *st;

	for (size_t i = 0; old && i < old->nroutes; i++) {
		st = old->routes[i].stats;
		if (strcmp(st->name, name) == 0) {
			atomic_fetch_add(&st->refs, 1);
			return st;
		}
	}
	st = calloc(1, sizeof(*st));
	if (st == NULL || (st->name = strdup(name)) == NULL) {
		fprintf(stderr, "tlsproxy: out of memory\n");
		exit(1);
	}
	atomic_init(&st->refs, 1);
	return st;
}

/* gen_trust_anchors - ca_file/ca_path, else the system's, into ctx. */
static void
gen_trust_anchors(
    struct tp_config *cfg, const struct tp_cfg_route *r, SSL_CTX *ctx)
{
	const struct tp_cval *cf = &r->v[TP_K_CA_FILE],
			     *cp = &r->v[TP_K_CA_PATH];

	if (!cf->set && !cp->set) {
		SSL_CTX_set_default_verify_paths(ctx);
		return;
	}
	if (!SSL_CTX_load_verify_locations(
		ctx, cf->set ? cf->s : NULL, cp->set ? cp->s : NULL)) {
		tp_config_diag(cfg, cf->set ? cf->line : cp->line, false,
		    "cannot load trust anchors from %s",
		    cf->set ? cf->raw : cp->raw);
		ERR_clear_error();
	}
}

/* gen_smtp_names - hostname, banner ($hostname expanded), EHLO name. */
static void
gen_smtp_names(struct tp_route_rt *rt, const struct tp_cfg_route *r)
{
	const struct tp_cval *hn = &r->v[TP_K_HOSTNAME],
			     *bn = &r->v[TP_K_BANNER];
	const struct tp_cval *helo = &r->v[TP_K_HELO_NAME];
	char host[256] = "localhost", buf[1024];
	const char *p;
	size_t o = 0;

	if (gethostname(host, sizeof(host) - 1) < 0 || host[0] == '\0')
		strcpy(host, "localhost");
	host[sizeof(host) - 1] = '\0';
	rt->hostname = tp_xstrdup(hn->set ? hn->raw : host);
	rt->helo = tp_xstrdup(helo->set ? helo->raw : host);
	p = bn->set ? bn->raw : "$hostname ESMTP";
	while (*p && o < sizeof(buf) - 1) {
		if (strncmp(p, "$hostname", 9) == 0) {
			o += (size_t)snprintf(
			    buf + o, sizeof(buf) - o, "%s", rt->hostname);
			if (o >= sizeof(buf))
				o = sizeof(buf) - 1;
			p += 9;
		} else {
			buf[o++] = *p++;
		}
	}
	buf[o] = '\0';
	rt->banner = tp_xstrdup(buf);
	rt->smtps.hostname = rt->hostname;
	rt->smtps.banner = rt->banner;
	rt->smtps.size = r->v[TP_K_MESSAGE_SIZE_LIMIT].set
	    ? r->v[TP_K_MESSAGE_SIZE_LIMIT].n
	    : 0;
	rt->smtps.encrypt = r->security >= TP_SEC_ENCRYPT;
	rt->smtps.auth_only = r->v[TP_K_AUTH_ONLY].n;
}

struct tp_gen *
tp_gen_build(const char *path, const struct tp_gen *old)
{
	struct tp_gen *g = calloc(1, sizeof(*g));
	struct tp_config *cfg;
	int failed;

	if (g == NULL)
		return NULL;
	atomic_init(&g->refs, 1);
	g->serial = ++gen_serial;
	g->cfg = cfg = tp_config_load(path);
	if (cfg->nerrors > 0)
		return g;
	g->routes = calloc(cfg->nroutes, sizeof(*g->routes));
	if (g->routes == NULL) {
		tp_config_diag(cfg, 0, false, "out of memory");
		return g;
	}
	g->nroutes = cfg->nroutes;
	for (size_t i = 0; i < cfg->nroutes; i++) {
		struct tp_route_rt *rt = &g->routes[i];
		const struct tp_cfg_route *r = &cfg->routes[i];

		rt->cfg = r;
		rt->index = i;
		gen_smtp_names(rt, r);
		if (r->mode == TP_MODE_GATEWAY) {
			/* its policies: tp_gen_policy() (gen_policy.c) */
			rt->gw = tp_gen_policy_build(cfg, r);
		} else {
			rt->ctx = tp_tls_ctx_new(cfg, r, &failed);
			if (rt->ctx != NULL && r->mode == TP_MODE_CLIENT &&
			    r->v[TP_K_SESSION_CACHE].n)
				tp_tls_io_client_cache(rt->ctx);
			if (rt->ctx != NULL)
				rt->verify = tp_verify_build(cfg, r, rt->ctx);
			/* MTA-STS checks the WebPKI chain whatever the level */
			if (rt->ctx != NULL && r->mta_sts &&
			    r->security < TP_SEC_VERIFY)
				gen_trust_anchors(cfg, r, rt->ctx);
		}
		rt->stats = stats_find_or_new(old, r->name);
		/* Port 0 (the OS picks): one socket per route, kept by name. */
		if (r->accept.port == 0) {
			if (asprintf(&rt->listen_key, "%s/%s", r->name,
				r->v[TP_K_ACCEPT].raw) < 0)
				rt->listen_key = NULL;
		} else {
			rt->listen_key = strdup(r->v[TP_K_ACCEPT].raw);
		}
		if (rt->listen_key == NULL) {
			fprintf(stderr, "tlsproxy: out of memory\n");
			exit(1);
		}
	}
	return g;
}

void
tp_gen_ref(struct tp_gen *g)
{
	atomic_fetch_add(&g->refs, 1);
}

void
tp_gen_unref(struct tp_gen *g)
{
	if (g == NULL || atomic_fetch_sub(&g->refs, 1) != 1)
		return;
	for (size_t i = 0; i < g->nroutes; i++) {
		struct tp_route_rt *rt = &g->routes[i];

		SSL_CTX_free(rt->ctx);
		tp_verify_free(rt->verify);
		tp_gen_policy_free(rt->gw);
		free(rt->hostname);
		free(rt->banner);
		free(rt->helo);
		free(rt->listen_key);
		free(rt->fds);
		if (rt->stats && atomic_fetch_sub(&rt->stats->refs, 1) == 1) {
			free(rt->stats->name);
			free(rt->stats->domains);
			free(rt->stats);
		}
	}
	free(g->routes);
	tp_config_free(g->cfg);
	free(g);
}
