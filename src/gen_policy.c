/*
 * gen_policy.c - a gateway route's runtime TLS policies: the route's
 * default and one per policy_file entry (gen_policy.h).  Built by
 * tp_gen_build() with the rest of the generation, so a reload re-reads
 * the policy file (config.c) and rebuilds them all, or keeps the old
 * generation; freed with it.  Main thread for building and freeing;
 * lookups from any worker.
 */
#include "tlsproxy/common.h"
#include "tlsproxy/gen_policy.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tlsproxy/config.h"
#include "tlsproxy/gen.h"
#include "tlsproxy/policy_map.h"
#include "tlsproxy/tls_ctx.h"
#include "tlsproxy/tls_io.h"
#include "tlsproxy/tls_policy.h"
#include "tlsproxy/tls_verify.h"

/* One shared context and the settings it was built with. */
struct gw_ctx {
	SSL_CTX *ctx;
	int proto_min, proto_max;
	char ciphers[1024]; /* OpenSSL's cipher string, grade + exclude */
};

struct tp_gw_policies {
	const struct tp_policy_map *map; /* the route's; the config owns it */
	struct tp_dest_policy def;
	struct tp_dest_policy *pols; /* one per map entry, in its order */
	struct tp_verify **verifies; /* owned: def's and the entries' */
	size_t nverifies;
	struct gw_ctx *ctxs; /* owned, shared by the policies */
	size_t nctxs;
};

/*
 * gw_ctx_get - the context for settings P: one already built with the
 * same protocol range and cipher string, or a new one with the route's
 * client certificate, trust anchors, DANE and session cache.  NULL after
 * reporting.
 */
static SSL_CTX *
gw_ctx_get(struct tp_config *cfg, const struct tp_cfg_route *r,
    struct tp_gw_policies *gp, const struct tp_tls_params *p)
{
	char ciphers[sizeof(gp->ctxs[0].ciphers)];
	struct gw_ctx *c;
	SSL_CTX *ctx;
	int errs = cfg->nerrors;

	if (tp_policy_cipherlist((enum tp_grade)p->grade, p->exclude, ciphers,
		sizeof(ciphers)) == 0) {
		for (size_t i = 0; i < gp->nctxs; i++) {
			c = &gp->ctxs[i];
			if (c->proto_min == p->proto_min &&
			    c->proto_max == p->proto_max &&
			    strcmp(c->ciphers, ciphers) == 0)
				return c->ctx;
		}
	} else {
		ciphers[0] = '\0'; /* tp_tls_ctx_client says why */
	}
	if ((ctx = tp_tls_ctx_client(cfg, r, p)) == NULL)
		return NULL;
	/* Postfix loads the CAfile at every level; DANE on every context
	 * (a dane entry may share it, and it costs nothing until a session
	 * enables it) */
	tp_verify_ctx_trust(cfg, r, ctx);
	tp_verify_ctx_dane(cfg, r, ctx);
	if (cfg->nerrors != errs) {
		SSL_CTX_free(ctx);
		return NULL;
	}
	if (r->v[TP_K_SESSION_CACHE].n)
		tp_tls_io_client_cache(ctx);
	gp->ctxs = tp_xrealloc(gp->ctxs, gp->nctxs + 1, sizeof(*gp->ctxs));
	c = &gp->ctxs[gp->nctxs++];
	c->ctx = ctx;
	c->proto_min = p->proto_min;
	c->proto_max = p->proto_max;
	snprintf(c->ciphers, sizeof(c->ciphers), "%s", ciphers);
	return ctx;
}

/*
 * gw_verify - what a policy at LEVEL checks: the match list (NULL: the
 * level's default, Postfix's smtp_tls_verify_cert_match = hostname and
 * smtp_tls_secure_cert_match = nexthop, dot-nexthop), fingerprints and
 * static TLSA records of entry E (may be NULL).  NULL below fingerprint.
 */
static const struct tp_verify *
gw_verify(struct tp_gw_policies *gp, int level, const struct tp_pm_entry *e)
{
	struct tp_verify *v;

	if (level < TP_SEC_FINGERPRINT)
		return NULL;
	v = tp_verify_new(level, NULL); /* nexthop: per session */
	if (level == TP_SEC_VERIFY || level == TP_SEC_SECURE) {
		if (e != NULL && e->nmatch > 0) {
			for (size_t i = 0; i < e->nmatch; i++)
				tp_verify_add_match(v, e->match[i]);
		} else if (level == TP_SEC_VERIFY) {
			tp_verify_add_match(v, "hostname");
		} else {
			tp_verify_add_match(v, "nexthop");
			tp_verify_add_match(v, "dot-nexthop");
		}
	}
	for (size_t i = 0; e != NULL && i < e->nfps; i++)
		tp_verify_add_fp(v, e->fps[i].md, e->fps[i].len);
	for (size_t i = 0; e != NULL && i < e->ntlsa; i++)
		tp_verify_add_tlsa(v, e->tlsa[i].usage, e->tlsa[i].selector,
		    e->tlsa[i].mtype, e->tlsa[i].data, e->tlsa[i].len);
	gp->verifies =
	    tp_xrealloc(gp->verifies, gp->nverifies + 1, sizeof(*gp->verifies));
	gp->verifies[gp->nverifies++] = v;
	return v;
}

/* entry_params - the route's settings with entry E's over them. */
static void
entry_params(const struct tp_cfg_route *r, const struct tp_pm_entry *e,
    const char *prefix, struct tp_tls_params *p)
{
	tp_tls_params_route(r, p);
	if (e->protocols != NULL) {
		p->proto_min = e->proto_min;
		p->proto_max = e->proto_max;
		p->protocols = e->protocols;
	}
	if (e->grade >= 0)
		p->grade = e->grade;
	if (e->exclude != NULL)
		p->exclude = e->exclude;
	/* a context problem of the entry's own settings is at its lines */
	if (e->protocols != NULL || e->grade >= 0 || e->exclude != NULL) {
		p->file = r->v[TP_K_POLICY_FILE].s;
		p->prefix = prefix;
		p->proto_line = e->protocols ? e->proto_line : e->line;
		p->cipher_line = e->cipher_line ? e->cipher_line : e->line;
	}
}

struct tp_gw_policies *
tp_gen_policy_build(struct tp_config *cfg, const struct tp_cfg_route *r)
{
	struct tp_gw_policies *gp = tp_xrealloc(NULL, 1, sizeof(*gp));
	const struct tp_policy_map *m = r->policy;
	struct tp_tls_params p;
	char prefix[300];

	memset(gp, 0, sizeof(*gp));
	gp->map = m;
	/* the route's default, for the domains the file does not list */
	gp->def.security = r->security;
	tp_tls_params_route(r, &p);
	if (r->security != TP_SEC_NONE &&
	    (gp->def.ctx = gw_ctx_get(cfg, r, gp, &p)) == NULL)
		goto fail;
	gp->def.verify = gw_verify(gp, r->security, NULL);
	if (m == NULL || m->n == 0)
		return gp;
	gp->pols = tp_xrealloc(NULL, m->n, sizeof(*gp->pols));
	memset(gp->pols, 0, m->n * sizeof(*gp->pols));
	for (size_t i = 0; i < m->n; i++) {
		const struct tp_pm_entry *e = &m->e[i];
		struct tp_dest_policy *d = &gp->pols[i];

		d->security = e->level;
		d->key = e->key;
		d->line = e->line;
		d->servername = e->servername;
		if (e->level == TP_SEC_NONE)
			continue; /* a plain relay: nothing else applies */
		snprintf(prefix, sizeof(prefix), "%s: ", e->key);
		entry_params(r, e, prefix, &p);
		if ((d->ctx = gw_ctx_get(cfg, r, gp, &p)) == NULL)
			goto fail;
		d->verify = gw_verify(gp, e->level, e);
	}
	return gp;
fail:
	tp_gen_policy_free(gp);
	return NULL;
}

void
tp_gen_policy_free(struct tp_gw_policies *gp)
{
	if (gp == NULL)
		return;
	for (size_t i = 0; i < gp->nctxs; i++)
		SSL_CTX_free(gp->ctxs[i].ctx);
	free(gp->ctxs);
	for (size_t i = 0; i < gp->nverifies; i++)
		tp_verify_free(gp->verifies[i]);
	free(gp->verifies);
	free(gp->pols);
	free(gp);
}

const struct tp_dest_policy *
tp_gen_policy(const struct tp_route_rt *rt, const char *domain)
{
	const struct tp_gw_policies *gp = rt->gw;
	const struct tp_pm_entry *e;

	if (gp == NULL)
		return NULL;
	e = tp_policy_lookup(gp->map, domain);
	return e != NULL ? &gp->pols[e - gp->map->e] : &gp->def;
}

const struct tp_dest_policy *
tp_gen_policy_default(const struct tp_route_rt *rt)
{
	return rt->gw != NULL ? &rt->gw->def : NULL;
}
