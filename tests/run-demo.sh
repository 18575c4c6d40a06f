#!/bin/sh
# run-demo.sh BINARY CONFIG - `make run`: tlsproxy on its default config,
# in the foreground, with smtp-sink on 127.0.0.1:10026 as the demo backend
# that the default [smtps-in] route relays to.  Ctrl-C stops both.
set -u
bin=$1
cfg=$2
sink_pid=
if command -v smtp-sink >/dev/null 2>&1 || [ -x /usr/sbin/smtp-sink ]; then
	sink=$(command -v smtp-sink || echo /usr/sbin/smtp-sink)
	user=
	[ "$(id -u)" = 0 ] && user="-u nobody"
	$sink $user 127.0.0.1:10026 100 &
	sink_pid=$!
	echo "run: smtp-sink (pid $sink_pid) is the demo backend on 127.0.0.1:10026"
else
	echo "run: smtp-sink not found (Debian package postfix): start a" \
	    "backend on 127.0.0.1:10026 yourself" >&2
fi
cleanup() {
	[ -n "$sink_pid" ] && kill "$sink_pid" 2>/dev/null
}
trap cleanup EXIT INT TERM
echo "run: try  swaks --server 127.0.0.1:10025 --to user@example.com"
"$bin" -c "$cfg"
