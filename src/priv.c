/*
 * priv.c - chroot and drop root after binding and key loading.  Once dropped, a
 * reload re-reads certificates and keys as the service user: keys must be
 * readable by its group (mode 0640, group of the service), which the key
 * permission check allows; new listeners on ports below 1024 need
 * CAP_NET_BIND_SERVICE (the systemd unit grants it).  Main thread only.
 */
#include "tlsproxy/priv.h"

#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <string.h>
#include <unistd.h>

#include "tlsproxy/config.h"
#include "tlsproxy/log.h"

int
tp_priv_drop(const struct tp_config *cfg)
{
	const struct tp_cval *u = &cfg->g[TP_K_USER], *g = &cfg->g[TP_K_GROUP];
	struct passwd *pw;
	struct group *gr;
	uid_t uid;
	gid_t gid;

	const struct tp_cval *ch = &cfg->g[TP_K_CHROOT];

	/* Keys are loaded and listeners bound: the jail can close now.  A
	 * reload then reads the same paths inside it. */
	if (ch->set) {
		if (chroot(ch->s) < 0 || chdir("/") < 0) {
			tp_log(TP_LOG_ERROR, "chroot %s: %s", ch->s,
			    strerror(errno));
			return -1;
		}
		tp_log(TP_LOG_INFO,
		    "chroot %s: done (reloads read paths "
		    "inside it)",
		    ch->s);
	}
	if (!u->set)
		return 0;
	if ((pw = getpwnam(u->raw)) == NULL) {
		tp_log(TP_LOG_ERROR, "user %s: no such user", u->raw);
		return -1;
	}
	uid = pw->pw_uid;
	gid = pw->pw_gid;
	if (g->set) {
		if ((gr = getgrnam(g->raw)) == NULL) {
			tp_log(TP_LOG_ERROR, "group %s: no such group", g->raw);
			return -1;
		}
		gid = gr->gr_gid;
	}
	if (geteuid() != 0) {
		if (geteuid() == uid)
			return 0;
		tp_log(TP_LOG_ERROR, "user %s: only root can switch users",
		    u->raw);
		return -1;
	}
	if (setgroups(1, &gid) < 0 || setresgid(gid, gid, gid) < 0 ||
	    setresuid(uid, uid, uid) < 0) {
		tp_log(TP_LOG_ERROR, "cannot become %s: %s", u->raw,
		    strerror(errno));
		return -1;
	}
	/* Never able to get root back. */
	if (setuid(0) == 0 || geteuid() == 0) {
		tp_log(TP_LOG_ERROR, "privileges were not dropped");
		return -1;
	}
	tp_log(TP_LOG_INFO, "running as user %s (uid %u, gid %u)", u->raw,
	    (unsigned)uid, (unsigned)gid);
	return 0;
}
