/*
 * daemon.c - process lifecycle on the main thread: build the first
 * generation, raise the open-files soft limit to the hard limit (and warn
 * when max_connections does not fit in it; -t only warns), bind its
 * listeners, write the pid file, start the workers, then serve signals.
 * SIGHUP builds a complete new generation (config, certificates, keys,
 * new listeners) or keeps the old one; SIGTERM and SIGINT stop accepting
 * and give sessions shutdown_grace to finish.
 *
 * Owns the only mutable process-wide state: the listening-socket table
 * (accept key -> one fd per worker), the workers and the current
 * generation.
 */
#include "tlsproxy/daemon.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include <uv.h>

#include "tlsproxy/config.h"
#include "tlsproxy/gen.h"
#include "tlsproxy/listener.h"
#include "tlsproxy/log.h"
#include "tlsproxy/priv.h"
#include "tlsproxy/probe.h"
#include "tlsproxy/stats.h"
#include "tlsproxy/sts.h"
#include "tlsproxy/tls_ctx.h"
#include "tlsproxy/tls_io.h"
#include "tlsproxy/worker.h"

struct lsock {
	char *key;
	int *fds; /* one per worker; owned by the workers once adopted */
	unsigned port;
	bool used;
};

static struct {
	const char *path;
	uv_loop_t *loop;
	uv_signal_t sighup, sigterm, sigint;
	struct tp_gen *gen;
	struct tp_worker *workers;
	unsigned nworkers;
	struct lsock *socks;
	size_t nsocks;
	bool stopping;
} d;

static void
print_diags(const struct tp_config *cfg, bool to_log)
{
	for (size_t i = 0; i < cfg->ndiags; i++) {
		if (to_log)
			tp_log(TP_LOG_WARNING, "%s", cfg->diags[i]);
		else
			fprintf(stderr, "%s\n", cfg->diags[i]);
	}
}

static void
configure_log(const struct tp_config *cfg)
{
	tp_log_configure((enum tp_log_sink)cfg->g[TP_K_LOG].e,
	    (enum tp_log_level)cfg->g[TP_K_LOG_LEVEL].e);
}

/*
 * nofile_limit - the open files limit the daemon runs with: the hard
 * limit, to which the soft one is raised at start (the soft default of
 * 1024 is far below what max_connections asks for).  With raise, raise it
 * now; *was is the soft limit before, *err an errno when raising failed.
 * 0 means no limit.
 */
static unsigned long long
nofile_limit(bool raise, unsigned long long *was, int *err)
{
	struct rlimit rl;
	rlim_t want;

	*was = 0;
	*err = 0;
	if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
		return 0;
	*was = rl.rlim_cur == RLIM_INFINITY ? 0 : rl.rlim_cur;
	/* an unlimited hard limit: keep the soft one */
	want = rl.rlim_max == RLIM_INFINITY ? rl.rlim_cur : rl.rlim_max;
	if (raise && rl.rlim_cur != want) {
		rl.rlim_cur = want;
		if (setrlimit(RLIMIT_NOFILE, &rl) < 0) {
			*err = errno;
			return *was;
		}
	}
	return want == RLIM_INFINITY ? 0 : want;
}

int
tp_daemon_check(const char *path)
{
	unsigned long long was;
	struct tp_gen *g;
	int rc, err;

	tp_tls_init();
	g = tp_gen_build(path, NULL);
	if (g == NULL) {
		fprintf(stderr, "tlsproxy: out of memory\n");
		return 1;
	}
	tp_config_check_nofile(g->cfg, nofile_limit(false, &was, &err));
	print_diags(g->cfg, false);
	rc = g->cfg->nerrors > 0 ? 1 : 0;
	if (rc == 0)
		fprintf(stderr,
		    "%s: configuration is valid (%zu route%s, %u worker%s)\n",
		    path, g->cfg->nroutes, g->cfg->nroutes == 1 ? "" : "s",
		    g->cfg->workers, g->cfg->workers == 1 ? "" : "s");
	tp_gen_unref(g);
	return rc;
}

/*
 * bind_listeners - give every route of g its sockets: the existing ones
 * for an accept key already bound, new ones otherwise.  On failure the
 * new sockets are closed and the table is unchanged.
 */
static int
bind_listeners(struct tp_gen *g, unsigned nworkers)
{
	size_t nold = d.nsocks;
	char why[200], addr[300];
	struct lsock *s;

	for (size_t i = 0; i < d.nsocks; i++)
		d.socks[i].used = false;
	for (size_t i = 0; i < g->nroutes; i++) {
		struct tp_route_rt *rt = &g->routes[i];
		size_t j;

		for (j = 0; j < d.nsocks; j++)
			if (strcmp(d.socks[j].key, rt->listen_key) == 0)
				break;
		if (j == d.nsocks) {
			s = realloc(d.socks, (d.nsocks + 1) * sizeof(*s));
			if (s == NULL)
				goto fail;
			d.socks = s;
			s = &d.socks[d.nsocks];
			memset(s, 0, sizeof(*s));
			s->key = strdup(rt->listen_key);
			s->fds = calloc(nworkers, sizeof(int));
			if (s->key == NULL || s->fds == NULL) {
				free(s->key);
				free(s->fds);
				goto fail;
			}
			if (tp_listener_bind(&rt->cfg->accept, nworkers, s->fds,
				&s->port, why, sizeof(why)) < 0) {
				tp_log(TP_LOG_ERROR,
				    "%s: cannot listen on %s: "
				    "%s",
				    rt->cfg->name, rt->listen_key, why);
				free(s->key);
				free(s->fds);
				goto fail;
			}
			d.nsocks++;
			{
				struct tp_hostport hp = rt->cfg->accept;

				hp.port = (uint16_t)s->port;
				tp_hostport_format(&hp, addr, sizeof(addr));
				tp_log(TP_LOG_INFO, "%s: listening on %s",
				    rt->cfg->name, addr);
			}
		}
		d.socks[j].used = true;
		rt->fds = malloc(nworkers * sizeof(int));
		if (rt->fds == NULL)
			goto fail;
		memcpy(rt->fds, d.socks[j].fds, nworkers * sizeof(int));
	}
	/* Sockets no route uses any more: the workers close them. */
	for (size_t i = 0; i < d.nsocks;) {
		if (d.socks[i].used) {
			i++;
			continue;
		}
		free(d.socks[i].key);
		free(d.socks[i].fds);
		d.socks[i] = d.socks[--d.nsocks];
	}
	return 0;
fail:
	for (size_t i = nold; i < d.nsocks; i++) {
		for (unsigned k = 0; k < nworkers; k++)
			close(d.socks[i].fds[k]);
		free(d.socks[i].key);
		free(d.socks[i].fds);
	}
	d.nsocks = nold;
	return -1;
}

static void
write_pid_file(const struct tp_config *cfg)
{
	const struct tp_cval *v = &cfg->g[TP_K_PID_FILE];
	FILE *f;

	if (!v->set)
		return;
	if ((f = fopen(v->s, "w")) == NULL) {
		tp_log(TP_LOG_WARNING, "pid_file %s: %m", v->s);
		return;
	}
	fprintf(f, "%ld\n", (long)getpid());
	fclose(f);
}

static void
daemon_reload(void)
{
	struct tp_gen *g = tp_gen_build(d.path, d.gen);

	if (g == NULL) {
		tp_log(TP_LOG_WARNING,
		    "reload failed, keeping the old "
		    "configuration: out of memory");
		return;
	}
	if (g->cfg->nerrors > 0) {
		tp_log(TP_LOG_WARNING,
		    "reload failed, keeping the old "
		    "configuration: %s",
		    g->cfg->diags[0]);
		print_diags(g->cfg, true);
		tp_gen_unref(g);
		return;
	}
	if (g->cfg->workers != d.nworkers)
		tp_log(TP_LOG_WARNING,
		    "workers: a new value takes effect at "
		    "the next restart");
	if (bind_listeners(g, d.nworkers) < 0) {
		tp_log(TP_LOG_WARNING,
		    "reload failed, keeping the old "
		    "configuration: cannot bind a new listener");
		tp_gen_unref(g);
		return;
	}
	{
		unsigned long long was;
		int err;

		/* the limit raised at start: nothing raises it now */
		(void)nofile_limit(false, &was, &err);
		tp_config_check_nofile(g->cfg, was);
	}
	for (size_t i = 0; i < g->cfg->ndiags; i++)
		tp_log(TP_LOG_WARNING, "%s", g->cfg->diags[i]);
	/* the cache file may have moved; its entries merge by fetch time */
	tp_sts_cache_load(g->cfg->g[TP_K_MTA_STS_CACHE].set
		? g->cfg->g[TP_K_MTA_STS_CACHE].s
		: NULL);
	configure_log(g->cfg);
	for (unsigned i = 0; i < d.nworkers; i++)
		tp_worker_publish(&d.workers[i], g);
	tp_gen_unref(d.gen);
	d.gen = g;
	tp_probe_start(d.loop, g);
	tp_stats_set_gen(g);
	tp_log(TP_LOG_INFO, "reloaded configuration %s", d.path);
}

static void
daemon_on_signal(uv_signal_t *h, int signum)
{
	uint64_t grace;

	if (signum == SIGHUP) {
		if (!d.stopping)
			daemon_reload();
		return;
	}
	(void)h;
	if (d.stopping)
		return;
	d.stopping = true;
	grace = d.gen->cfg->g[TP_K_SHUTDOWN_GRACE].n;
	tp_log(TP_LOG_INFO,
	    "stopping on %s: draining sessions for up to "
	    "%.0fs",
	    strsignal(signum), grace / 1000.0);
	for (unsigned i = 0; i < d.nworkers; i++)
		tp_worker_stop(&d.workers[i], grace);
	tp_probe_stop();
	tp_stats_stop();
	/* The main loop ends once its signal handles are closed. */
	uv_close((uv_handle_t *)&d.sighup, NULL);
	uv_close((uv_handle_t *)&d.sigterm, NULL);
	uv_close((uv_handle_t *)&d.sigint, NULL);
}

int
tp_daemon_run(const char *path)
{
	const struct tp_config *cfg;
	unsigned long long nofile, was;
	int err;

	tp_tls_init();
	tp_tls_io_init();
	tp_sts_init();
	signal(SIGPIPE, SIG_IGN);
	d.path = path;
	d.gen = tp_gen_build(path, NULL);
	if (d.gen == NULL) {
		fprintf(stderr, "tlsproxy: out of memory\n");
		return 1;
	}
	cfg = d.gen->cfg;
	/* before the listeners and workers take descriptors */
	nofile = nofile_limit(true, &was, &err);
	tp_config_check_nofile(d.gen->cfg, nofile);
	print_diags(cfg, false);
	if (cfg->nerrors > 0)
		return 1;
	configure_log(cfg);
	if (err != 0)
		tp_log(TP_LOG_WARNING,
		    "open files limit %llu: cannot raise it to the hard "
		    "limit: %s",
		    nofile, strerror(err));
	else if (nofile == 0)
		tp_log(TP_LOG_INFO, "open files limit: unlimited");
	else if (was != nofile)
		tp_log(TP_LOG_INFO, "open files limit %llu (raised from %llu)",
		    nofile, was);
	else
		tp_log(TP_LOG_INFO, "open files limit %llu", nofile);
	tp_sts_cache_load(cfg->g[TP_K_MTA_STS_CACHE].set
		? cfg->g[TP_K_MTA_STS_CACHE].s
		: NULL);
	d.nworkers = cfg->workers;
	if (bind_listeners(d.gen, d.nworkers) < 0)
		return 1;
	write_pid_file(cfg);
	d.loop = uv_default_loop();
	uv_signal_init(d.loop, &d.sighup);
	uv_signal_init(d.loop, &d.sigterm);
	uv_signal_init(d.loop, &d.sigint);
	uv_signal_start(&d.sighup, daemon_on_signal, SIGHUP);
	uv_signal_start(&d.sigterm, daemon_on_signal, SIGTERM);
	uv_signal_start(&d.sigint, daemon_on_signal, SIGINT);
	if (cfg->g[TP_K_STATS].set) {
		struct tp_hostport hp;
		const char *why;

		tp_parse_hostport(cfg->g[TP_K_STATS].raw, &hp, &why);
		if (tp_stats_start(d.loop, &hp) < 0)
			return 1;
	}
	if (tp_priv_drop(cfg) < 0)
		return 1;
	d.workers = calloc(d.nworkers, sizeof(*d.workers));
	if (d.workers == NULL)
		return 1;
	for (unsigned i = 0; i < d.nworkers; i++) {
		if (tp_worker_start(&d.workers[i], (int)i, d.gen) < 0) {
			tp_log(TP_LOG_ERROR, "cannot start worker %u", i);
			return 1;
		}
	}
	tp_log(TP_LOG_INFO, "started: %zu route%s, %u worker%s, %s, libuv %s",
	    cfg->nroutes, cfg->nroutes == 1 ? "" : "s", d.nworkers,
	    d.nworkers == 1 ? "" : "s", OpenSSL_version(OPENSSL_VERSION),
	    uv_version_string());
	tp_probe_start(d.loop, d.gen);
	tp_stats_set_gen(d.gen);
	uv_run(d.loop, UV_RUN_DEFAULT);
	for (unsigned i = 0; i < d.nworkers; i++)
		tp_worker_join(&d.workers[i]);
	free(d.workers);
	if (d.gen->cfg->g[TP_K_PID_FILE].set)
		unlink(d.gen->cfg->g[TP_K_PID_FILE].s);
	for (size_t i = 0; i < d.nsocks; i++) {
		free(d.socks[i].key);
		free(d.socks[i].fds);
	}
	free(d.socks);
	tp_gen_unref(d.gen);
	uv_loop_close(d.loop);
	tp_sts_done();
	tp_log(TP_LOG_INFO, "stopped");
	return 0;
}
