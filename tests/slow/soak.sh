#!/bin/sh
# soak.sh - fault soak: mail is never lost, every transaction gets a reply
# (spec 4.6 "Failures never lose mail" and its "Closing" paragraph).
#
#   soak client --> [cst] client route, tls = starttls, security = encrypt
#   (python,        --> reset_forwarder.py --> [sst] server route, starttls --+
#    MTA-like)  --> [cim] client route, tls = implicit                        |--> fault_backend.py
#                   --> reset_forwarder.py --> [sim] server route, implicit --+
#
# Two tlsproxy processes, as in production: one holds the client routes,
# the other the server routes (workers = 2 each).  For SOAK_SECONDS
# (default 60) SOAK_CLIENTS (default 120) concurrent clients
# (tests/peers/soak_client.py), half on each client route, send messages
# like an MTA: unique Message-IDs, 1-3 messages per connection, PIPELINING
# half of the time, every reply read, deferred messages retried.  Faults:
#  - the backend (tests/peers/fault_backend.py) hangs up (FIN, or RST via
#    SO_LINGER 0) at every SMTP stage, from before its greeting to before
#    its 221, answers 4xx, now and then stalls (the routes' 6 s idle
#    timeout); it records each message it accepts before it writes the 250;
#  - the forwarder on the TLS hop (tests/peers/reset_forwarder.py) resets
#    3% of the connections at a random point;
#  - the backend is killed (SIGKILL) and restarted every 10-15 s.
# Asserted: no message acknowledged with 250 to the client is missing at the
# backend; no 5xx; no transaction ended without a reply; no malformed
# reply; no corrupted message; both proxies alive all along; each proxy's
# descriptor count back to its value before the soak once the clients have
# stopped (polled for up to 30 s); clean exit on SIGTERM and no sanitizer
# report in the proxy logs (meaningful with the ASan build).  The figures
# (attempted, delivered, deferred, lost, without reply, 5xx, duplicates at
# the backend - inherent when a fault hits after the backend's 250, shown,
# not judged) are printed per route and in total, with a few traced
# examples of transactions that got no reply.
#
# Environment: TLSPROXY (binary, default build/tlsproxy), SOAK_SECONDS,
# SOAK_CLIENTS, SOAK_SEED (default: from the clock; printed), SOAK_FAULTS=0
# (no fault at all: a check of the harness itself, which must then pass on
# any proxy that relays), TP_KEEP=1.
# Run: TLSPROXY=build/tlsproxy sh tests/slow/soak.sh
#      SOAK_SECONDS=15 SOAK_CLIENTS=40 sh tests/slow/soak.sh   (quick)
: "${SOAK_SECONDS:=60}"
: "${SOAK_CLIENTS:=120}"
: "${SOAK_SEED:=$(($(date +%s) % 100000))}"
: "${SOAK_FAULTS:=1}"
: "${TP_TIMEOUT:=$((SOAK_SECONDS + 200))}"
. "$(dirname "$0")/../integration/lib.sh"
need_certs
require_tool shuf

note "seed $SOAK_SEED, $SOAK_CLIENTS clients, $SOAK_SECONDS s, $TLSPROXY"
faults=
abort=0.03
if [ "$SOAK_FAULTS" = 0 ]; then
	note "SOAK_FAULTS=0: no backend fault, no reset, no restart"
	faults=--no-faults
	abort=0
fi
bport=$(free_port)
fst=$(free_port)
fim=$(free_port)
sst=$(free_port)
sim=$(free_port)
ACCEPTED=$TP_TMP/accepted
BLOG=$TP_TMP/backend.log
: >"$ACCEPTED"
: >"$BLOG"
NRESTART=0

# start_backend [OPTION...]: fault_backend.py on $bport (pid BPID)
start_backend() {
	NRESTART=$((NRESTART + 1))
	"$PY" "$TP_PEERS/fault_backend.py" "$bport" --accepted "$ACCEPTED" \
	    --log "$BLOG" --seed $((SOAK_SEED * 100 + NRESTART)) "$@" \
	    >"$TP_TMP/backend$NRESTART.out" 2>&1 &
	BPID=$!
	TP_PIDS="$TP_PIDS $BPID"
	wait_file "$TP_TMP/backend$NRESTART.out" 5 '^ready' ||
	    bail "backend" "not ready: $(tr '\n' ' ' <"$TP_TMP/backend$NRESTART.out")"
}

# kill_backend: SIGKILL, as a crash; forget its pid
kill_backend() {
	kill -9 "$BPID" 2>/dev/null || true
	wait "$BPID" 2>/dev/null || true
	TP_PIDS=$(echo " $TP_PIDS " | sed "s/ $BPID / /")
}

fds() { ls "/proc/$1/fd" 2>/dev/null | wc -l | tr -d ' '; }

start_backend --no-faults
spawn "$TP_TMP/forwarder.out" "$PY" "$TP_PEERS/reset_forwarder.py" \
    --map "$fst:$sst" --map "$fim:$sim" --log "$TP_TMP/forwarder.log" \
    --seed "$SOAK_SEED" --abort-rate "$abort"
FPID=$BG_PID
wait_file "$TP_TMP/forwarder.out" 5 '^ready' || bail "forwarder" "not ready"

timeouts='connect_timeout = 5s
handshake_timeout = 10s
smtp_timeout = 10s
idle_timeout = 6s
data_done_timeout = 6s'
cat >"$TP_TMP/server.ini" <<EOF
[global]
workers = 2
shutdown_grace = 2s

[sst]
mode = server
tls = starttls
accept = 127.0.0.1:$sst
connect = 127.0.0.1:$bport
hostname = sst.soak.test
cert_file = $CERTS/rsa.pem
key_file = $CERTS/rsa.key
eccert_file = $CERTS/ec.pem
eckey_file = $CERTS/ec.key
$timeouts

[sim]
mode = server
tls = implicit
accept = 127.0.0.1:$sim
connect = 127.0.0.1:$bport
hostname = sim.soak.test
cert_file = $CERTS/rsa.pem
key_file = $CERTS/rsa.key
eccert_file = $CERTS/ec.pem
eckey_file = $CERTS/ec.key
$timeouts
EOF
cat >"$TP_TMP/client.ini" <<EOF
[global]
workers = 2
shutdown_grace = 2s

[cst]
mode = client
tls = starttls
security = encrypt
accept = 127.0.0.1:0
connect = 127.0.0.1:$fst
helo_name = cst.soak.test
$timeouts

[cim]
mode = client
tls = implicit
security = encrypt
accept = 127.0.0.1:0
connect = 127.0.0.1:$fim
$timeouts
EOF
start_proxy "$TP_TMP/server.ini"
SPID=$PROXY_PID
SLOG=$PROXY_LOG
start_proxy "$TP_TMP/client.ini"
CPID=$PROXY_PID
CLOG=$PROXY_LOG
pst=$(route_port cst "$CLOG")
pim=$(route_port cim "$CLOG")

# The server proxy probes the backend (EHLO) at start: wait until that is
# over and both descriptor counts hold still for a second.
i=0
prev=
while [ $i -lt 50 ]; do
	cur="$(fds "$CPID") $(fds "$SPID")"
	[ "$cur" = "$prev" ] && break
	prev=$cur
	sleep 0.5
	i=$((i + 1))
done
fd_c0=$(fds "$CPID")
fd_s0=$(fds "$SPID")
note "descriptors before the soak: client proxy $fd_c0, server proxy $fd_s0"

# Faults from now on: the backend restarts with its fault plan.
kill_backend
start_backend $faults
T0=$(date +%s)
"$PY" "$TP_PEERS/soak_client.py" run --route "cst=$pst" --route "cim=$pim" \
    --clients "$SOAK_CLIENTS" --seconds "$SOAK_SECONDS" --seed "$SOAK_SEED" \
    --events "$TP_TMP/events" --timeout 20 --grace 30 \
    >"$TP_TMP/client.out" 2>&1 &
KPID=$!
TP_PIDS="$TP_PIDS $KPID"

# Watch the proxies; kill and restart the backend every 10-15 s.
next=$(($(date +%s) + $(shuf -i 10-15 -n 1)))
died=
limit=$((T0 + SOAK_SECONDS + 60))
while alive "$KPID" && [ "$(date +%s)" -lt $limit ]; do
	for p in "$CPID" "$SPID"; do
		if [ -z "$died" ] && ! alive "$p"; then
			died="pid $p gone at $(($(date +%s) - T0)) s"
		fi
	done
	if [ -z "$faults" ] && [ "$(date +%s)" -ge $next ] &&
	    [ "$(date +%s)" -lt $((T0 + SOAK_SECONDS)) ]; then
		kill_backend
		start_backend
		next=$(($(date +%s) + $(shuf -i 10-15 -n 1)))
	fi
	sleep 0.5
done
if alive "$KPID"; then
	fail "the soak client finished" "still running $((SOAK_SECONDS + 60)) s after the start"
	kill_pid "$KPID"
fi
wait "$KPID" 2>/dev/null || true
TP_PIDS=$(echo " $TP_PIDS " | sed "s/ $KPID / /")
el=$(($(date +%s) - T0))
while IFS= read -r l; do note "client: $l"; done <"$TP_TMP/client.out"
note "soak ran $el s, backend restarted $((NRESTART - 2)) times during it"
note "forwarder: $(grep -c ' abort ' "$TP_TMP/forwarder.log" || true) connections reset"

if [ -z "$died" ]; then
	for p in "$CPID" "$SPID"; do alive "$p" || died="pid $p gone after the soak"; done
fi
# the peers themselves (a dead peer would make the figures meaningless)
alive "$FPID" || fail "the forwarder ran all along" "exited: $(tail -n 3 "$TP_TMP/forwarder.out" | tr '\n' ' ')"
alive "$BPID" || fail "the backend ran all along" "exited: $(tail -n 3 "$TP_TMP/backend$NRESTART.out" | tr '\n' ' ')"
if [ -z "$died" ]; then pass "both tlsproxy processes alive all along"
else fail "both tlsproxy processes alive all along" "$died"; fi

# Sessions drain once the clients are gone: descriptors back to the start.
i=0
while [ $i -lt 60 ]; do
	fd_c=$(fds "$CPID")
	fd_s=$(fds "$SPID")
	[ "$fd_c" -le "$fd_c0" ] && [ "$fd_s" -le "$fd_s0" ] && break
	sleep 0.5
	i=$((i + 1))
done
note "descriptors after the soak: client proxy $fd_c, server proxy $fd_s ($((i / 2)) s after the clients stopped)"
check "client proxy: descriptors back to $fd_c0 after the soak (now $fd_c)" [ "$fd_c" = "$fd_c0" ]
check "server proxy: descriptors back to $fd_s0 after the soak (now $fd_s)" [ "$fd_s" = "$fd_s0" ]

"$PY" "$TP_PEERS/soak_client.py" report --events "$TP_TMP/events" \
    --accepted "$ACCEPTED" --backend-log "$BLOG" --proxy-log "$CLOG" \
    --examples 10 >"$TP_TMP/report" 2>&1 || true
while IFS= read -r l; do note "$l"; done <"$TP_TMP/report"
total=$(grep '^TOTAL ' "$TP_TMP/report" | tail -n 1)
[ -n "$total" ] || bail "soak report" "no TOTAL line: $(tail -n 5 "$TP_TMP/report" | tr '\n' ' ')"
fig() { echo "$total" | tr ' ' '\n' | sed -n "s/^$1=//p"; }

n=$(fig delivered)
check "messages were delivered through both routes ($n)" [ "${n:-0}" -gt 0 ]
for r in cst cim; do
	d=$(sed -n "s/^route $r: .* delivered=\([0-9]*\) .*/\1/p" "$TP_TMP/report")
	[ "${d:-0}" -gt 0 ] || fail "route $r delivered messages" "none"
done
n=$(fig lost)
check "0 messages acknowledged with 250 and missing at the backend (got $n)" [ "$n" = 0 ]
n=$(fig 5xx)
check "0 transactions with a 5xx (got $n)" [ "$n" = 0 ]
n=$(fig noreply)
t=$(fig transactions)
check "0 transactions ended without a reply (got $n of $t)" [ "$n" = 0 ]
n=$(fig malformed)
check "0 malformed or out-of-sequence replies (got $n)" [ "$n" = 0 ]
n=$(fig corrupt)
check "0 messages corrupted on the way (got $n)" [ "$n" = 0 ]
note "duplicates at the backend: $(fig duplicates) (a fault after the backend's 250; not judged)"

# Clean exit, then the sanitizers' verdict (LeakSanitizer reports at exit).
san=plain
grep -q __asan_init "$TLSPROXY" 2>/dev/null && san=ASan
for p in "$CPID:$CLOG:client" "$SPID:$SLOG:server"; do
	pid=${p%%:*}
	log=${p#*:}
	name=${log#*:}
	log=${log%:*}
	stop_proxy "$pid" 15
	check "$name proxy exits 0 on SIGTERM (got $STOP_RC)" [ "$STOP_RC" = 0 ]
	hit=$(grep -E -m 1 'ERROR: AddressSanitizer|runtime error:|LeakSanitizer' "$log" || true)
	if [ -z "$hit" ]; then pass "$name proxy: no sanitizer report ($san build)"
	else fail "$name proxy: no sanitizer report ($san build)" "$hit"; fi
	grep -vxF "$log" "$TP_TMP/.logs" >"$TP_TMP/.logs.new" || true
	mv "$TP_TMP/.logs.new" "$TP_TMP/.logs"
done
if [ "$TP_FAILED" -gt 0 ]; then
	for l in "client:$CLOG" "server:$SLOG"; do
		note "--- ${l%%:*} proxy ($(basename "${l#*:}")): disconnect reasons"
		l=${l#*:}
		sed -n 's/.*: disconnect in=[^ ]* out=[^ ]* [0-9.]*s *//p' "$l" |
		    sed 's/[0-9][0-9.]*/N/g; s/^$/(no reason logged)/' | sort | uniq -c | sort -rn | head -n 12 |
		    while IFS= read -r x; do note "  $x"; done
	done
fi
done_testing
