#!/bin/sh
# many-sessions.sh - 8,000 concurrent idle TLS sessions through one server
# route (tls = implicit, the ECDSA test certificate, workers = 2), each with
# its backend connection: about 16,000 descriptors in the proxy, under a
# 20,000 hard limit.
#
# tests/peers/many_sessions.py plays both ends: a backend that greets and
# holds every connection, and an asyncio client that opens the sessions in
# batches of 1,000 with at most 100 handshakes at a time; each session
# completes its handshake and reads the backend's 220 through the proxy.
# Asserted: every session established (the client, the route's
# tlsproxy_sessions_active on the stats endpoint, the backend's open
# connections, and the proxy's descriptor count: +2 per session); the
# proxy alive with them; once the client closes them all, the descriptor
# count back to its start value (polled for up to 60 s) and the proxy still
# alive.  Printed: the proxy's VmRSS before and with the sessions, the RSS
# per session in KB, and the time to open them.
#
# The soft descriptor limit is raised to the hard one for everything the
# script starts; the test is skipped when the hard limit cannot hold
# 2 x MANY_SESSIONS + 200 descriptors.
# Environment: TLSPROXY (default build/tlsproxy), MANY_SESSIONS (8000),
# TP_KEEP=1.  Run: TLSPROXY=build/tlsproxy sh tests/slow/many-sessions.sh
: "${MANY_SESSIONS:=8000}"
: "${TP_TIMEOUT:=400}"
. "$(dirname "$0")/../integration/lib.sh"
need_certs
require_tool curl

N=$MANY_SESSIONS
# ulimit -H/-S: not POSIX, but dash (Debian's sh) and bash have them
hard=$(ulimit -H -n)
need=$((2 * N + 200))
if [ "$hard" != unlimited ] && [ "$hard" -lt $need ]; then
	skip_all "hard descriptor limit $hard < $need (2 per session + 200)"
fi
ulimit -S -n "$hard" || bail "ulimit" "cannot raise the soft descriptor limit to $hard"
note "descriptor limit: soft $(ulimit -S -n), hard $hard; $N sessions"

fds() { ls "/proc/$1/fd" 2>/dev/null | wc -l | tr -d ' '; }
# cpu PID: user + system CPU time in clock ticks
cpu() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
rss() { sed -n 's/^VmRSS:[[:space:]]*\([0-9]*\) kB/\1/p' "/proc/$1/status"; }
# field FILE NAME: NAME=VALUE from a status file
field() { tr ' ' '\n' <"$1" 2>/dev/null | sed -n "s/^$2=//p"; }

bport=$(free_port)
spawn "$TP_TMP/backend.out" "$PY" "$TP_PEERS/many_sessions.py" backend \
    "$bport" "$TP_TMP/backend.status"
BPID=$BG_PID
wait_file "$TP_TMP/backend.out" 5 '^ready' ||
    bail "backend" "not ready: $(tr '\n' ' ' <"$TP_TMP/backend.out")"

cat >"$TP_TMP/many.ini" <<EOF
[global]
workers = 2
max_connections = $((N + 1000))
stats = 127.0.0.1:0
shutdown_grace = 5s

[many]
mode = server
tls = implicit
accept = 127.0.0.1:0
connect = 127.0.0.1:$bport
hostname = many.test
cert_file = $CERTS/ec.pem
key_file = $CERTS/ec.key
max_connections = $((N + 1000))
idle_timeout = 600s
EOF
start_proxy "$TP_TMP/many.ini"
port=$(route_port many)
sport=$(sed -n 's/.*stats: listening on .*:\([0-9][0-9]*\) (GET \/metrics)$/\1/p' "$PROXY_LOG" | tail -n 1)
[ -n "$sport" ] || bail "stats" "no 'stats: listening on' line"
note "proxy soft descriptor limit: $(sed -n 's/^Max open files *\([0-9]*\).*/\1/p' "/proc/$PROXY_PID/limits")"

# active: the route's tlsproxy_sessions_active from /metrics
active() {
	curl -s -m 10 -o "$TP_TMP/metrics" "http://127.0.0.1:$sport/metrics" || { echo none; return; }
	"$PY" "$TP_PEERS/prom.py" get "$TP_TMP/metrics" tlsproxy_sessions_active route=many
}

sleep 0.5
fd0=$(fds "$PROXY_PID")
rss0=$(rss "$PROXY_PID")
cpu0=$(cpu "$PROXY_PID")
note "before: $fd0 descriptors, VmRSS $rss0 kB"

spawn "$TP_TMP/client.out" "$PY" "$TP_PEERS/many_sessions.py" client \
    "$port" "$N" "$TP_TMP/client.status" "$TP_TMP/close" --jobs 100 --batch 1000
CPID=$BG_PID
wait_file "$TP_TMP/client.status" 240 '^established=' || {
	fail "the client opened its sessions within 240 s" "$(tail -n 3 "$TP_TMP/client.out" | tr '\n' ' ')"
	done_testing
	exit 1
}
while IFS= read -r l; do note "client: $l"; done <"$TP_TMP/client.out"
est=$(field "$TP_TMP/client.status" established)
secs=$(field "$TP_TMP/client.status" seconds)
cpu1=$(cpu "$PROXY_PID")
hz=$(getconf CLK_TCK)
note "proxy CPU time while the sessions opened: $(awk -v t=$((cpu1 - cpu0)) -v hz="$hz" 'BEGIN { printf "%.2f", t / hz }') s"
check "client: $N sessions established, handshake and greeting (got $est in $secs s)" [ "$est" = "$N" ]
# The backend's side of the last sessions may still be on its way.
i=0
while [ "$(field "$TP_TMP/backend.status" open)" != "$N" ] && [ $i -lt 50 ]; do
	sleep 0.2
	i=$((i + 1))
done
bopen=$(field "$TP_TMP/backend.status" open)
check "backend: $N connections open (got $bopen)" [ "$bopen" = "$N" ]
act=$(active)
check "metrics: tlsproxy_sessions_active{route=\"many\"} = $N (got $act)" [ "$act" = "$N" ]
fd1=$(fds "$PROXY_PID")
check "proxy: $((2 * N)) more descriptors with the sessions ($fd0 -> $fd1)" \
    [ $((fd1 - fd0)) -ge $((2 * N)) ]
rss1=$(rss "$PROXY_PID")
per=$(awk -v a="$rss0" -v b="$rss1" -v n="$N" 'BEGIN { printf "%.1f", (b - a) / n }')
note "VmRSS before $rss0 kB, with $N sessions $rss1 kB: $per kB per session; opened in $secs s"
check "proxy alive with $N sessions" alive "$PROXY_PID"

# Close them all: descriptors back to the start.
: >"$TP_TMP/close"
wait_file "$TP_TMP/client.status" 60 '^closed=' ||
    fail "the client closed its sessions within 60 s" "$(tail -n 3 "$TP_TMP/client.out" | tr '\n' ' ')"
t0=$(now_ms)
i=0
while [ "$(fds "$PROXY_PID")" -gt "$fd0" ] && [ $i -lt 600 ]; do
	sleep 0.1
	i=$((i + 1))
done
fd2=$(fds "$PROXY_PID")
note "descriptors $fd2 $(ms_to_s $(($(now_ms) - t0))) s after the client closed; VmRSS now $(rss "$PROXY_PID") kB"
check "proxy: descriptors back to $fd0 after the close (got $fd2)" [ "$fd2" = "$fd0" ]
act=$(active)
check "metrics: no active session left (got $act)" [ "$act" = 0 ]
check "proxy alive after the close" alive "$PROXY_PID"
done_testing
