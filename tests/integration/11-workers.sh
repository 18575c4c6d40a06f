#!/bin/sh
# 11-workers: workers defaults to auto (spec 3): one event loop per CPU the
# process may use, the figure nproc(1) prints.  -t and the "started" log
# line say how many; sessions are spread over the loops; workers = 1 and a
# narrower CPU affinity (taskset) give one.
. "$(dirname "$0")/lib.sh"
require_tool nproc

ncpu=$(nproc)
[ "$ncpu" -gt 64 ] && ncpu=64	# the key's maximum
if [ "$ncpu" = 1 ]; then plural=; else plural=s; fi

# cfg FILE [GLOBAL LINE]: one client route to a closed port (each session
# gets its 421 and ends)
closed=$(free_port)
cfg() {
	cat >"$1" <<EOF
[global]
shutdown_grace = 1s
${2:-}

[r]
mode = client
accept = 127.0.0.1:0
connect = 127.0.0.1:$closed
EOF
}

cfg "$TP_TMP/auto.ini"
out=$("$TLSPROXY" -t -c "$TP_TMP/auto.ini" 2>&1) && rc=0 || rc=$?
check "-t accepts a config without workers" [ "$rc" = 0 ]
if echo "$out" | grep -Fq "configuration is valid (1 route, $ncpu worker$plural)"; then
	pass "-t: $ncpu worker$plural by default (nproc says $ncpu)"
else fail "-t: $ncpu worker$plural by default (nproc says $ncpu)" "output: $out"; fi

start_proxy "$TP_TMP/auto.ini"
# ("started" comes right after the last "listening on")
if wait_for_log ": started: 1 route, $ncpu worker$plural, " 5; then
	pass "started with $ncpu worker$plural by default"
else fail "started with $ncpu worker$plural by default" "$(grep 'started' "$PROXY_LOG")"; fi

# The kernel spreads connections over the loops' SO_REUSEPORT sockets by
# their addresses: 24 connections all on one of two loops is a 2^-23 event.
# The session id starts with the worker's index (conn.c).
if [ "$ncpu" -gt 1 ]; then
	port=$(route_port r)
	i=0
	while [ $i -lt 24 ]; do
		dialog "c$i" "$port" r eof
		i=$((i + 1))
	done
	wait_log_count ': r/[0-9a-f]+: disconnect' 24 5 || true
	loops=$(sed -n 's/.*: r\/\([0-9a-f][0-9a-f]\)[0-9a-f]*: connect from .*/\1/p' "$PROXY_LOG" | sort -u | wc -l)
	check "24 sessions were served by more than one loop ($loops)" [ "$loops" -gt 1 ]
	check "every session got its 421 (connection refused upstream)" \
	    [ "$(grep -l '^S: 421 4\.4\.1 ' "$TP_TMP"/c*.dlg | wc -l)" = 24 ]
else
	note "one CPU: sessions on one loop"
fi
stop_proxy

cfg "$TP_TMP/one.ini" "workers = 1"
out=$("$TLSPROXY" -t -c "$TP_TMP/one.ini" 2>&1) || true
if echo "$out" | grep -Fq "configuration is valid (1 route, 1 worker)"; then pass "-t: workers = 1 is one worker"
else fail "-t: workers = 1 is one worker" "output: $out"; fi

# auto counts the CPUs the process may run on, as nproc does
if [ "$ncpu" -gt 1 ] && command -v taskset >/dev/null 2>&1; then
	out=$(taskset -c 0 "$TLSPROXY" -t -c "$TP_TMP/auto.ini" 2>&1) || true
	if echo "$out" | grep -Fq "configuration is valid (1 route, 1 worker)"; then
		pass "-t under taskset -c 0: auto is one worker (nproc says $(taskset -c 0 nproc))"
	else fail "-t under taskset -c 0: auto is one worker" "output: $out"; fi
fi

done_testing
