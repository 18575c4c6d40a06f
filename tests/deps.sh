#!/bin/sh
# deps.sh PKG... - install the Debian packages that are missing, when root.
# A no-op when everything is there; prints what is missing otherwise.
missing=
for p in "$@"; do
	dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q 'ok installed' ||
	    missing="$missing $p"
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
	echo "deps: missing Debian packages:$missing (run as root to install)" >&2
	exit 0
fi
echo "deps: installing$missing"
echo "postfix postfix/main_mailer_type select No configuration" |
    debconf-set-selections 2>/dev/null || true
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null 2>&1 || true
apt-get install -y -qq --no-install-recommends $missing >/dev/null ||
    { echo "deps: apt-get install failed" >&2; exit 1; }
# Debian starts postfix when it installs it; tests run their own instances.
if echo "$missing" | grep -q postfix; then
	postfix stop >/dev/null 2>&1 || true
fi
# Debian may also start and enable nsd on port 53; the DNS tests run their
# own nsd on a high port (tests/dns/mkzones.sh), so stop and disable it.
if echo "$missing" | grep -qw nsd; then
	if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
		systemctl disable --now nsd >/dev/null 2>&1 || true
	fi
	if [ -x /etc/init.d/nsd ]; then
		/etc/init.d/nsd stop >/dev/null 2>&1 || true
		update-rc.d nsd disable >/dev/null 2>&1 || true
	fi
fi
exit 0
