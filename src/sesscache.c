/*
 * sesscache.c - client-mode TLS session cache (session_cache = yes): per
 * worker, one session per route, for the destination address it was made
 * with; TLS 1.3 tickets arrive after the handshake through the SSL_CTX's
 * new-session callback (tls_io.c).  Emptied when the worker moves to a
 * new generation, so a resumed session never outlives the policy and
 * certificates it was verified under.  Worker thread only.
 */
#include "tlsproxy/session.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tlsproxy/config.h"
#include "tlsproxy/conn.h"
#include "tlsproxy/gen.h"
#include "tlsproxy/tls_verify.h"
#include "tlsproxy/wctx.h"

struct sess_slot {
	SSL_SESSION *sess;
	char key[TP_HOST_MAX + 128];
};

struct tp_sesscache {
	unsigned long serial;
	size_t n;
	struct sess_slot *slots;
};

static void
sesscache_flush(struct tp_sesscache *sc)
{
	for (size_t i = 0; i < sc->n; i++)
		if (sc->slots[i].sess != NULL)
			SSL_SESSION_free(sc->slots[i].sess);
	free(sc->slots);
	sc->slots = NULL;
	sc->n = 0;
}

void
tp_conn_worker_done(struct tp_wctx *w)
{
	if (w->sesscache != NULL) {
		sesscache_flush(w->sesscache);
		free(w->sesscache);
		w->sesscache = NULL;
	}
}

/* sess_slot - this session's slot, or NULL (old generation, no memory). */
static struct sess_slot *
sess_slot(struct tp_conn *c)
{
	struct tp_wctx *w = c->w;
	struct tp_sesscache *sc = w->sesscache;

	if (sc == NULL && (sc = w->sesscache = calloc(1, sizeof(*sc))) == NULL)
		return NULL;
	if (w->gen->serial != sc->serial) {
		sesscache_flush(sc);
		sc->slots = calloc(w->gen->nroutes, sizeof(*sc->slots));
		if (sc->slots == NULL)
			return NULL;
		sc->n = w->gen->nroutes;
		sc->serial = w->gen->serial;
	}
	if (c->gen->serial != sc->serial || c->rt->index >= sc->n)
		return NULL;
	return &sc->slots[c->rt->index];
}

/*
 * tp_sesscache_key - the destination and the rules it was verified under: a
 * session verified against one TLSA answer is never resumed under
 * another (a resumed session keeps its old verification result).
 */
void
tp_sesscache_key(const struct tp_conn *c, char *key, size_t len)
{
	const struct tp_dane *d = c->dane;
	uint32_t h = 0;

	/* A sum of the records' hashes: DNS gives an RRset in any order. */
	for (size_t i = 0; d != NULL && i < d->ntlsa; i++) {
		const struct tp_tlsa *t = &d->tlsa[i];
		uint32_t r = 2166136261u;

		r = (r ^
			(uint32_t)(t->usage << 16 | t->selector << 8 |
			    t->mtype)) *
		    16777619u;
		for (size_t j = 0; j < t->len; j++)
			r = (r ^ t->data[j]) * 16777619u;
		h += r;
	}
	/* ... nor under another policy (a gateway's destinations) */
	snprintf(key, len, "%s[%s]:%u/%d/%d/%08x/%p/%p", c->up_host, c->up_ip,
	    c->up_port, d != NULL ? d->level : -1, d != NULL && d->trusted_only,
	    (unsigned)h, (const void *)c->ctx, (const void *)c->verify);
}

static int
sesscache_on_new_session(void *arg, SSL_SESSION *sess)
{
	struct tp_conn *c = arg;
	struct sess_slot *slot = sess_slot(c);

	if (slot == NULL)
		return 0;
	if (slot->sess != NULL)
		SSL_SESSION_free(slot->sess);
	slot->sess = sess;
	tp_sesscache_key(c, slot->key, sizeof(slot->key));
	return 1;
}

void
tp_sesscache_attach(struct tp_conn *c, struct side *s)
{
	struct sess_slot *slot;
	char key[sizeof(slot->key)];
	SSL_SESSION *copy;

	if (!c->r->v[TP_K_SESSION_CACHE].n)
		return;
	slot = sess_slot(c);
	s->bio.on_session = sesscache_on_new_session;
	s->bio.arg = c;
	tp_sesscache_key(c, key, sizeof(key));
	if (slot == NULL || slot->sess == NULL || strcmp(slot->key, key) != 0)
		return;
	if (!SSL_SESSION_is_resumable(slot->sess)) {
		SSL_SESSION_free(slot->sess);
		slot->sess = NULL;
		return;
	}
	/*
	 * A copy per connection: OpenSSL marks the session of a connection
	 * that sends a fatal alert (a peer gone without close_notify, a
	 * timeout) not resumable, and the slot's own would go with it,
	 * costing every later connection a full handshake until a new
	 * ticket came.
	 */
	if ((copy = SSL_SESSION_dup(slot->sess)) == NULL)
		return;
	SSL_set_session(s->ssl, copy);
	SSL_SESSION_free(copy);
}
