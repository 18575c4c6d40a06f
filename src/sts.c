/*
 * sts.c - MTA-STS policies for destination domains (spec 4.10, RFC 8461
 * 3.1-3.3, 5.1), on the worker loops.
 *
 * A lookup asks the DNS layer for `_mta-sts.D` TXT.  Its id, against the
 * process-wide cache: the cached policy when the id matches and it has not
 * expired (a refresh starts in the background once half of max_age is
 * gone); else a fetch of https://mta-sts.D/.well-known/mta-sts.txt -
 * mta-sts.D resolved by the DNS layer (CURLOPT_RESOLVE: no other resolver
 * is used), HTTPS only, no redirects (3.3), 60 s, 64 KB, status 200 and
 * text/plain, the certificate valid for mta-sts.D - with libcurl's multi
 * interface driven by the worker's loop (a uv_poll per socket, a
 * uv_timer; curl's docs/examples/multi-uv.c).  A failed fetch keeps the
 * cached policy (3.3, 5.1) and is not retried for the same id for five
 * minutes; no TXT record with a valid cached policy keeps it too.  New
 * policies go to the cache file (mta_sts_cache), rewritten whole through
 * a temporary file and rename(2), and read back at start.
 * Worker threads; the cache under cache_lock.
 */
#include "tlsproxy/sts.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <curl/curl.h>
#include <uv.h>

#include "tlsproxy/common.h"
#include "tlsproxy/dns.h"
#include "tlsproxy/log.h"
#include "tlsproxy/mta_sts.h"
#include "tlsproxy/wctx.h"

#define STS_BODY_MAX   65536 /* RFC 8461 3.3: 64 KB */
#define STS_TIMEOUT_MS 60000 /* RFC 8461 3.3: a minute */
#define STS_RETRY_S    300   /* a failed fetch: not again for 5 min */

/* The cache: one entry per domain seen. */
struct cache_entry {
	struct cache_entry *next;
	char domain[256];
	struct tp_sts *sts;               /* the policy in force, or NULL */
	char fail_id[TP_MTA_STS_ID_SIZE]; /* the id a fetch failed for ... */
	uint64_t fail_at;                 /* ... and when */
	bool refreshing;                  /* a fetch is under way */
};

static pthread_mutex_t cache_lock = PTHREAD_MUTEX_INITIALIZER;
static struct cache_entry *cache;
static char *cache_path;

/* One worker's curl multi handle. */
struct tp_sts_curl {
	CURLM *multi;
	uv_timer_t timer;
	struct tp_wctx *w;
	struct tp_sts_query *queries; /* every query of this worker */
	bool closing;
};

struct sts_sock {
	uv_poll_t poll;
	curl_socket_t fd;
	struct tp_sts_curl *sc;
};

struct tp_sts_query {
	struct tp_sts_query *next, *prev;
	struct tp_wctx *w;
	char domain[256];
	char host[300]; /* mta-sts.D */
	char *cafile;
	tp_sts_cb cb; /* NULL: a background refresh */
	void *arg;
	struct tp_dns_query *qtxt, *qa, *qaaaa;
	char id[TP_MTA_STS_ID_SIZE];
	struct tp_sts *cached; /* a reference, or NULL */
	struct curl_slist *resolve;
	CURL *easy;
	char *body;
	size_t len;
	bool too_big;
};

static uint64_t
now_s(void)
{
	return (uint64_t)time(NULL);
}

void
tp_sts_release(struct tp_sts *s)
{
	if (s == NULL || atomic_fetch_sub(&s->refs, 1) != 1)
		return;
	tp_mta_sts_policy_free(s->pol);
	free(s);
}

static struct tp_sts *
sts_ref(struct tp_sts *s)
{
	if (s != NULL)
		atomic_fetch_add(&s->refs, 1);
	return s;
}

static bool
sts_expired(const struct tp_sts *s, uint64_t now)
{
	return tp_mta_sts_policy_expires(s->pol) < (int64_t)now;
}

/* entry_of - the cache entry of domain (made on demand); under the lock */
static struct cache_entry *
entry_of(const char *domain)
{
	struct cache_entry *e;

	for (e = cache; e != NULL; e = e->next)
		if (strcmp(e->domain, domain) == 0)
			return e;
	if ((e = calloc(1, sizeof(*e))) == NULL)
		return NULL;
	snprintf(e->domain, sizeof(e->domain), "%s", domain);
	e->next = cache;
	cache = e;
	return e;
}

/* cache_write - the whole cache to its file, atomically (temp, rename). */
static void
cache_write(void)
{
	char tmp[4096 + 16], *buf;
	struct cache_entry *e;
	size_t len, need;
	FILE *f;
	int bad = 0;

	if (cache_path == NULL)
		return;
	snprintf(tmp, sizeof(tmp), "%s.tmp", cache_path);
	if ((f = fopen(tmp, "w")) == NULL) {
		tp_log(TP_LOG_WARNING, "mta_sts_cache %s: %s", tmp,
		    strerror(errno));
		return;
	}
	for (e = cache; e != NULL; e = e->next) {
		if (e->sts == NULL)
			continue;
		need = 0;
		tp_mta_sts_cache_format(NULL, 0, &need, e->domain, e->sts->pol);
		if ((buf = malloc(need + 1)) == NULL ||
		    tp_mta_sts_cache_format(
			buf, need + 1, &len, e->domain, e->sts->pol) < 0 ||
		    fwrite(buf, 1, len, f) != len)
			bad = 1;
		free(buf);
	}
	if (fflush(f) != 0 || fsync(fileno(f)) != 0)
		bad = 1;
	if (fclose(f) != 0 || bad || rename(tmp, cache_path) != 0) {
		tp_log(TP_LOG_WARNING, "mta_sts_cache %s: cannot write: %s",
		    cache_path, strerror(errno));
		unlink(tmp);
	}
}

/* sts_new - a policy object from its text; NULL and why when invalid. */
static struct tp_sts *
sts_new(const char *domain, const char *id, int64_t fetched, const char *text,
    size_t len, char *why, size_t wlen)
{
	struct tp_sts *s = calloc(1, sizeof(*s));

	if (s == NULL) {
		snprintf(why, wlen, "out of memory");
		return NULL;
	}
	if (tp_mta_sts_policy_parse(
		text, len, id, fetched, &s->pol, why, wlen) != 0) {
		free(s);
		return NULL;
	}
	atomic_init(&s->refs, 1);
	snprintf(s->domain, sizeof(s->domain), "%s", domain);
	return s;
}

void
tp_sts_cache_load(const char *path)
{
	struct tp_mta_sts_cache_reader r;
	struct tp_mta_sts_cache_entry ce;
	char *text = NULL, why[TP_MTA_STS_ERR_SIZE];
	unsigned loaded = 0;
	FILE *f;
	long n;
	int rc;

	pthread_mutex_lock(&cache_lock);
	free(cache_path);
	cache_path = path != NULL ? strdup(path) : NULL;
	pthread_mutex_unlock(&cache_lock);
	if (path == NULL || (f = fopen(path, "r")) == NULL)
		return;
	if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) > 0 &&
	    n < 64L * 1024 * 1024 && fseek(f, 0, SEEK_SET) == 0 &&
	    (text = malloc((size_t)n + 1)) != NULL &&
	    fread(text, 1, (size_t)n, f) == (size_t)n) {
		tp_mta_sts_cache_reader_init(&r, text, (size_t)n);
		pthread_mutex_lock(&cache_lock);
		while ((rc = tp_mta_sts_cache_next(
			    &r, &ce, why, sizeof(why))) != 0) {
			struct cache_entry *e;
			struct tp_sts *s;

			if (rc < 0) {
				tp_log(TP_LOG_WARNING, "mta_sts_cache %s: %s",
				    path, why);
				continue;
			}
			s = sts_new(ce.domain, ce.id, ce.fetched, ce.text,
			    ce.text_len, why, sizeof(why));
			if (s == NULL || (e = entry_of(ce.domain)) == NULL) {
				if (s == NULL)
					tp_log(TP_LOG_WARNING,
					    "mta_sts_cache %s: %s: %s", path,
					    ce.domain, why);
				tp_sts_release(s);
				continue;
			}
			/* the newer of two entries for a domain */
			if (e->sts != NULL &&
			    e->sts->pol->fetched > s->pol->fetched) {
				tp_sts_release(s);
				continue;
			}
			tp_sts_release(e->sts);
			e->sts = s;
			loaded++;
		}
		pthread_mutex_unlock(&cache_lock);
	}
	free(text);
	fclose(f);
	tp_log(TP_LOG_INFO, "mta_sts_cache %s: %u polic%s", path, loaded,
	    loaded == 1 ? "y" : "ies");
}

/*
 * Curl on the worker's loop.
 */

static void sts_check_done(struct tp_sts_curl *sc);

static void
sock_on_poll(uv_poll_t *p, int status, int events)
{
	struct sts_sock *s = p->data;
	int running,
	    flags = status < 0
	    ? CURL_CSELECT_ERR
	    : ((events & UV_READABLE) ? CURL_CSELECT_IN : 0) |
		((events & UV_WRITABLE) ? CURL_CSELECT_OUT : 0);

	curl_multi_socket_action(s->sc->multi, s->fd, flags, &running);
	sts_check_done(s->sc);
}

static void
sock_on_closed(uv_handle_t *h)
{
	free(h->data);
}

/* sts_on_socket - curl watches a socket, or is done with it (REMOVE
 * comes before curl closes it: the poll stops first, libuv #1495). */
static int
sts_on_socket(CURL *e, curl_socket_t fd, int what, void *arg, void *sp)
{
	struct tp_sts_curl *sc = arg;
	struct sts_sock *s = sp;

	(void)e;
	if (what == CURL_POLL_REMOVE) {
		if (s != NULL) {
			uv_poll_stop(&s->poll);
			uv_close((uv_handle_t *)&s->poll, sock_on_closed);
			curl_multi_assign(sc->multi, fd, NULL);
		}
		return 0;
	}
	if (s == NULL) {
		if ((s = calloc(1, sizeof(*s))) == NULL)
			return -1;
		s->fd = fd;
		s->sc = sc;
		uv_poll_init_socket(&sc->w->loop, &s->poll, fd);
		s->poll.data = s;
		curl_multi_assign(sc->multi, fd, s);
	}
	uv_poll_start(&s->poll,
	    (what & CURL_POLL_IN ? UV_READABLE : 0) |
		(what & CURL_POLL_OUT ? UV_WRITABLE : 0),
	    sock_on_poll);
	return 0;
}

static void
sts_on_timer(uv_timer_t *t)
{
	struct tp_sts_curl *sc = t->data;
	int running;

	curl_multi_socket_action(sc->multi, CURL_SOCKET_TIMEOUT, 0, &running);
	sts_check_done(sc);
}

static int
sts_on_timeout(CURLM *m, long ms, void *arg)
{
	struct tp_sts_curl *sc = arg;

	(void)m;
	if (ms < 0)
		uv_timer_stop(&sc->timer);
	else
		uv_timer_start(
		    &sc->timer, sts_on_timer, ms ? (uint64_t)ms : 1, 0);
	return 0;
}

static struct tp_sts_curl *
sts_curl(struct tp_wctx *w)
{
	struct tp_sts_curl *sc = w->sts;

	if (sc != NULL)
		return sc;
	if ((sc = calloc(1, sizeof(*sc))) == NULL)
		return NULL;
	if ((sc->multi = curl_multi_init()) == NULL) {
		free(sc);
		return NULL;
	}
	sc->w = w;
	curl_multi_setopt(sc->multi, CURLMOPT_SOCKETFUNCTION, sts_on_socket);
	curl_multi_setopt(sc->multi, CURLMOPT_SOCKETDATA, sc);
	curl_multi_setopt(sc->multi, CURLMOPT_TIMERFUNCTION, sts_on_timeout);
	curl_multi_setopt(sc->multi, CURLMOPT_TIMERDATA, sc);
	uv_timer_init(&w->loop, &sc->timer);
	sc->timer.data = sc;
	w->sts = sc;
	return sc;
}

static size_t
sts_on_body(char *p, size_t size, size_t n, void *arg)
{
	struct tp_sts_query *q = arg;
	size_t len = size * n;
	char *nb;

	if (q->len + len > STS_BODY_MAX) {
		q->too_big = true;
		return 0; /* aborts: CURLE_WRITE_ERROR */
	}
	if ((nb = realloc(q->body, q->len + len + 1)) == NULL)
		return 0;
	q->body = nb;
	memcpy(q->body + q->len, p, len);
	q->len += len;
	return len;
}

/*
 * Queries.
 */

static void
query_free(struct tp_sts_query *q)
{
	struct tp_sts_curl *sc = q->w->sts;

	tp_dns_cancel(q->qtxt);
	tp_dns_cancel(q->qa);
	tp_dns_cancel(q->qaaaa);
	if (q->easy != NULL) {
		curl_multi_remove_handle(sc->multi, q->easy);
		curl_easy_cleanup(q->easy);
	}
	curl_slist_free_all(q->resolve);
	tp_sts_release(q->cached);
	if (q->prev)
		q->prev->next = q->next;
	else if (sc != NULL && sc->queries == q)
		sc->queries = q->next;
	if (q->next)
		q->next->prev = q->prev;
	free(q->body);
	free(q->cafile);
	free(q);
}

/* query_done - the answer to the caller (or to nobody: a refresh). */
static void
query_done(struct tp_sts_query *q, struct tp_sts *sts, int fail)
{
	struct cache_entry *e;

	if (q->cb == NULL) {
		pthread_mutex_lock(&cache_lock);
		if ((e = entry_of(q->domain)) != NULL)
			e->refreshing = false;
		pthread_mutex_unlock(&cache_lock);
		tp_sts_release(sts);
	} else {
		q->cb(q->arg, sts, fail);
	}
	query_free(q);
}

/* query_fall_back - no new policy: the cached one if still valid. */
static void
query_fall_back(struct tp_sts_query *q, int fail)
{
	struct tp_sts *s = q->cached;

	q->cached = NULL;
	if (s != NULL && sts_expired(s, now_s())) {
		tp_sts_release(s);
		s = NULL;
	}
	query_done(q, s, fail);
}

static void
query_fetch_failed(struct tp_sts_query *q, int fail, const char *why)
{
	struct cache_entry *e;

	tp_log(TP_LOG_INFO, "MTA-STS policy fetch for %s (id %s) failed: %s%s",
	    q->domain, q->id, why,
	    q->cached ? "; keeping the cached policy" : "");
	pthread_mutex_lock(&cache_lock);
	if ((e = entry_of(q->domain)) != NULL) {
		snprintf(e->fail_id, sizeof(e->fail_id), "%s", q->id);
		e->fail_at = now_s();
	}
	pthread_mutex_unlock(&cache_lock);
	query_fall_back(q, fail);
}

/* query_fetched - the transfer ended. */
static void
query_fetched(struct tp_sts_query *q, CURLcode res)
{
	struct tp_sts *s;
	struct cache_entry *e;
	char why[300];
	long code = 0;
	char *ct = NULL;

	curl_easy_getinfo(q->easy, CURLINFO_RESPONSE_CODE, &code);
	curl_easy_getinfo(q->easy, CURLINFO_CONTENT_TYPE, &ct);
	if (res == CURLE_PEER_FAILED_VERIFICATION ||
	    res == CURLE_SSL_CERTPROBLEM) {
		snprintf(why, sizeof(why), "%s", curl_easy_strerror(res));
		query_fetch_failed(
		    q, TP_MTA_STS_RESULT_STS_WEBPKI_INVALID, why);
		return;
	}
	if (res != CURLE_OK || code != 200) {
		if (q->too_big)
			snprintf(why, sizeof(why),
			    "policy larger than %d octets", STS_BODY_MAX);
		else if (res != CURLE_OK)
			snprintf(
			    why, sizeof(why), "%s", curl_easy_strerror(res));
		else
			snprintf(why, sizeof(why), "HTTP status %ld", code);
		query_fetch_failed(
		    q, TP_MTA_STS_RESULT_STS_POLICY_FETCH_ERROR, why);
		return;
	}
	/* RFC 8461 3.2: "text/plain", parameters allowed */
	if (ct == NULL || strncasecmp(ct, "text/plain", 10) != 0 ||
	    (ct[10] != '\0' && ct[10] != ';' && ct[10] != ' ')) {
		snprintf(why, sizeof(why), "content type %s, not text/plain",
		    ct ? ct : "missing");
		query_fetch_failed(
		    q, TP_MTA_STS_RESULT_STS_POLICY_FETCH_ERROR, why);
		return;
	}
	s = sts_new(q->domain, q->id, (int64_t)now_s(), q->body ? q->body : "",
	    q->len, why, sizeof(why));
	if (s == NULL) {
		query_fetch_failed(
		    q, TP_MTA_STS_RESULT_STS_POLICY_INVALID, why);
		return;
	}
	tp_log(TP_LOG_INFO,
	    "MTA-STS policy for %s fetched: id %s, mode %s, max_age %u",
	    q->domain, q->id, tp_mta_sts_mode_name(s->pol->mode),
	    (unsigned)s->pol->max_age);
	pthread_mutex_lock(&cache_lock);
	if ((e = entry_of(q->domain)) != NULL) {
		tp_sts_release(e->sts);
		e->sts = sts_ref(s);
		e->fail_id[0] = '\0';
	}
	cache_write();
	pthread_mutex_unlock(&cache_lock);
	query_done(q, s, -1);
}

static void
sts_check_done(struct tp_sts_curl *sc)
{
	struct tp_sts_query *q;
	CURLMsg *m;
	int left;

	while ((m = curl_multi_info_read(sc->multi, &left)) != NULL) {
		if (m->msg != CURLMSG_DONE)
			continue;
		curl_easy_getinfo(
		    m->easy_handle, CURLINFO_PRIVATE, (char **)&q);
		query_fetched(q, m->data.result);
	}
}

/* query_start_fetch - the addresses of mta-sts.D are in: GET. */
static void
query_start_fetch(struct tp_sts_query *q)
{
	struct tp_sts_curl *sc = sts_curl(q->w);
	char url[400];
	CURL *e;

	if (q->resolve == NULL) {
		query_fetch_failed(q, TP_MTA_STS_RESULT_STS_POLICY_FETCH_ERROR,
		    "no address for the policy host");
		return;
	}
	if (sc == NULL || (e = q->easy = curl_easy_init()) == NULL) {
		query_fetch_failed(q, TP_MTA_STS_RESULT_STS_POLICY_FETCH_ERROR,
		    "out of memory");
		return;
	}
	snprintf(
	    url, sizeof(url), "https://%s/.well-known/mta-sts.txt", q->host);
	curl_easy_setopt(e, CURLOPT_URL, url);
	curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "https");
	curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L); /* 3.3 */
	curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)STS_TIMEOUT_MS);
	curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 2L);
	curl_easy_setopt(e, CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2);
	if (q->cafile != NULL)
		curl_easy_setopt(e, CURLOPT_CAINFO, q->cafile);
	curl_easy_setopt(e, CURLOPT_RESOLVE, q->resolve); /* our DNS */
	curl_easy_setopt(e, CURLOPT_PROXY, "");           /* no proxy */
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_USERAGENT, "tlsproxy");
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, sts_on_body);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, q);
	curl_easy_setopt(e, CURLOPT_PRIVATE, q);
	if (curl_multi_add_handle(sc->multi, e) != CURLM_OK) {
		curl_easy_cleanup(e);
		q->easy = NULL;
		query_fetch_failed(q, TP_MTA_STS_RESULT_STS_POLICY_FETCH_ERROR,
		    "cannot start the transfer");
	}
}

static void
query_on_addr(void *arg, const struct tp_dns_answer *a)
{
	struct tp_sts_query *q = arg;
	char ip[64], entry[400];
	struct curl_slist *l;

	if (a->qtype == TP_DNS_A)
		q->qa = NULL;
	else
		q->qaaaa = NULL;
	for (size_t i = 0; a->outcome == TP_DNS_OK && a->data[i] != NULL; i++) {
		if (a->qtype == TP_DNS_A && a->len[i] == 4)
			inet_ntop(AF_INET, a->data[i], ip, sizeof(ip));
		else if (a->qtype == TP_DNS_AAAA && a->len[i] == 16) {
			ip[0] = '[';
			inet_ntop(AF_INET6, a->data[i], ip + 1, sizeof(ip) - 2);
			strcat(ip, "]");
		} else
			continue;
		/* one RESOLVE entry per host: the addresses joined */
		snprintf(entry, sizeof(entry), "%s:443:%s", q->host, ip);
		if (q->resolve != NULL) {
			/* append ",ip" to the single entry */
			size_t n = strlen(q->resolve->data);
			char *d = realloc(q->resolve->data, n + strlen(ip) + 2);

			if (d == NULL)
				continue;
			q->resolve->data = d;
			snprintf(d + n, strlen(ip) + 2, ",%s", ip);
		} else if ((l = curl_slist_append(NULL, entry)) != NULL) {
			q->resolve = l;
		}
	}
	if (q->qa == NULL && q->qaaaa == NULL)
		query_start_fetch(q);
}

/* query_fetch - resolve mta-sts.D (the DNS layer), then GET. */
static void
query_fetch(struct tp_sts_query *q)
{
	snprintf(q->host, sizeof(q->host), "mta-sts.%s", q->domain);
	q->qa = tp_dns_lookup(q->w, q->host, TP_DNS_A, query_on_addr, q);
	q->qaaaa = tp_dns_lookup(q->w, q->host, TP_DNS_AAAA, query_on_addr, q);
	if (q->qa == NULL || q->qaaaa == NULL) {
		tp_dns_cancel(q->qa);
		tp_dns_cancel(q->qaaaa);
		q->qa = q->qaaaa = NULL;
		query_start_fetch(q); /* fails: no address */
	}
}

static struct tp_sts_query *query_new(struct tp_wctx *w, const char *domain,
    const char *cafile, tp_sts_cb cb, void *arg);

/* query_on_txt - the domain's TXT record is in (RFC 8461 3.1). */
static void
query_on_txt(void *arg, const struct tp_dns_answer *a)
{
	struct tp_sts_query *q = arg, *r;
	struct cache_entry *e;
	uint64_t now = now_s();
	bool have_id = false, refresh = false, retry_later = false;
	const char *why = NULL;

	q->qtxt = NULL;
	if (a->outcome == TP_DNS_OK)
		have_id = tp_mta_sts_txt_select_rdata(
			      a->data, a->len, q->id, &why) == 0;
	pthread_mutex_lock(&cache_lock);
	e = entry_of(q->domain);
	if (e != NULL && e->sts != NULL && !sts_expired(e->sts, now))
		q->cached = sts_ref(e->sts);
	if (have_id && q->cached != NULL &&
	    strcmp(q->cached->pol->id, q->id) == 0) {
		/* 5.1: refresh before it expires */
		refresh = e != NULL && !e->refreshing &&
		    (int64_t)now - q->cached->pol->fetched >
			(int64_t)q->cached->pol->max_age / 2;
		if (refresh)
			e->refreshing = true;
	} else if (have_id && e != NULL && strcmp(e->fail_id, q->id) == 0 &&
	    now - e->fail_at < STS_RETRY_S) {
		retry_later = true;
	}
	pthread_mutex_unlock(&cache_lock);
	if (!have_id) {
		/* no (valid) record: a cached policy goes on (3.1, 5.1) */
		query_fall_back(q, -1);
		return;
	}
	if (q->cached != NULL && strcmp(q->cached->pol->id, q->id) == 0) {
		if (refresh &&
		    (r = query_new(q->w, q->domain, q->cafile, NULL, NULL)) !=
			NULL) {
			snprintf(r->id, sizeof(r->id), "%s", q->id);
			query_fetch(r);
		}
		query_fall_back(q, -1);
		return;
	}
	if (retry_later) {
		query_fall_back(q, TP_MTA_STS_RESULT_STS_POLICY_FETCH_ERROR);
		return;
	}
	query_fetch(q);
}

static struct tp_sts_query *
query_new(struct tp_wctx *w, const char *domain, const char *cafile,
    tp_sts_cb cb, void *arg)
{
	struct tp_sts_curl *sc = sts_curl(w);
	struct tp_sts_query *q;

	if (sc == NULL || (q = calloc(1, sizeof(*q))) == NULL)
		return NULL;
	q->w = w;
	q->cb = cb;
	q->arg = arg;
	snprintf(q->domain, sizeof(q->domain), "%s", domain);
	if (cafile != NULL && (q->cafile = strdup(cafile)) == NULL) {
		free(q);
		return NULL;
	}
	q->next = sc->queries;
	if (sc->queries)
		sc->queries->prev = q;
	sc->queries = q;
	return q;
}

struct tp_sts_query *
tp_sts_lookup(struct tp_wctx *w, const char *domain, const char *cafile,
    tp_sts_cb cb, void *arg)
{
	struct tp_sts_query *q = query_new(w, domain, cafile, cb, arg);
	char name[300];

	if (q == NULL)
		return NULL;
	snprintf(name, sizeof(name), "_mta-sts.%s", domain);
	q->qtxt = tp_dns_lookup(w, name, TP_DNS_TXT, query_on_txt, q);
	if (q->qtxt == NULL) {
		query_free(q);
		return NULL;
	}
	return q;
}

void
tp_sts_cancel(struct tp_sts_query *q)
{
	if (q != NULL)
		query_free(q);
}

static void
sts_on_timer_closed(uv_handle_t *h)
{
	struct tp_sts_curl *sc = h->data;

	curl_multi_cleanup(sc->multi);
	free(sc);
}

void
tp_sts_worker_finish(struct tp_wctx *w)
{
	struct tp_sts_curl *sc = w->sts;

	if (sc == NULL)
		return;
	while (sc->queries != NULL)
		query_free(sc->queries); /* refreshes; sessions are gone */
	w->sts = NULL;
	uv_close((uv_handle_t *)&sc->timer, sts_on_timer_closed);
}

void
tp_sts_init(void)
{
	curl_global_init(CURL_GLOBAL_DEFAULT);
}

void
tp_sts_done(void)
{
	struct cache_entry *e;

	pthread_mutex_lock(&cache_lock);
	while ((e = cache) != NULL) {
		cache = e->next;
		tp_sts_release(e->sts);
		free(e);
	}
	free(cache_path);
	cache_path = NULL;
	pthread_mutex_unlock(&cache_lock);
	curl_global_cleanup();
}
