#!/bin/sh
# 220-metrics: the `stats` endpoint (spec 3 [global], 8; issue 4).
#
# Two proxies, each with stats = 127.0.0.1:0 (the port from the log):
#   S  server routes: srv (implicit, to smtp-sink), srvdead (implicit, to a
#      closed port)
#   C  client routes to srv: cli (encrypt), cli12 (TLS 1.2 only), nocache
#      (session_cache = no), fp (a wrong fingerprint), vname (verify, wrong
#      match), vuntr (verify, a CA that did not sign srv's certificate);
#      dead (to a closed port)
# Each step scrapes both endpoints with curl before and after its traffic
# and asserts how far the counters moved: sessions, handshakes by outcome
# and version, resumptions, bytes (added when a session ends), connect
# failures, 421 rejects, verification failures by reason, the latency
# histogram.  Also: the HTTP side (200 text/plain; version=0.0.4 at
# /metrics, 404 elsewhere), the exposition format (tests/peers/prom.py lint),
# sessions_active while a session is open, counters kept across SIGHUP.
. "$(dirname "$0")/lib.sh"
require_tool openssl curl /usr/sbin/smtp-sink
need_certs

if [ -n "${TP_CERTS:-}" ] && [ -d "$TP_CERTS" ] && [ -w "$TP_CERTS" ]; then
	EX=$TP_CERTS/extra
else
	EX=$TP_TMP/extra
fi
sh "$TP_ROOT/tests/certs/mkserverextra.sh" "$EX" "$CERTS" >"$TP_TMP/mkextra.out" 2>&1 ||
    bail "mkserverextra" "$(tail -n 3 "$TP_TMP/mkextra.out" | tr '\n' ' ')"

sink=$(free_port)
closed=$(free_port)	# nothing listens here
start_sink "$sink"
"$PY" "$TP_PEERS/util.py" refused "$closed" >/dev/null ||
    bail "closed port" "something listens on $closed"

CFGS=$TP_TMP/s.ini
cat >"$CFGS" <<EOF
[global]
shutdown_grace = 2s
stats = 127.0.0.1:0

[srv]
mode = server
accept = 127.0.0.1:0
connect = 127.0.0.1:$sink
cert_file = $CERTS/rsa.pem
key_file = $CERTS/rsa.key

[srvdead]
mode = server
accept = 127.0.0.1:0
connect = 127.0.0.1:$closed
cert_file = $CERTS/rsa.pem
key_file = $CERTS/rsa.key
EOF
start_proxy "$CFGS"
LOGS=$PROXY_LOG
PIDS_=$PROXY_PID
srv=$(route_port srv)

good_fp=$(openssl x509 -in "$CERTS/rsa.pem" -noout -fingerprint -sha256 | sed 's/^.*=//')
wrong_fp=$(openssl x509 -in "$CERTS/rsa2.pem" -noout -fingerprint -sha256 | sed 's/^.*=//')
CFGC=$TP_TMP/c.ini
cli() { # NAME CONNECT-PORT [KEY = VALUE lines]
	printf '\n[%s]\nmode = client\naccept = 127.0.0.1:0\nconnect = 127.0.0.1:%s\n' "$1" "$2"
	printf 'smtp_timeout = 10s\nconnect_timeout = 5s\n%s\n' "${3:-}"
}
{
	# one loop: the client session cache is per worker, and the
	# resumption counts below expect one cache for the route
	printf '[global]\nworkers = 1\nshutdown_grace = 2s\nstats = 127.0.0.1:0\n'
	cli cli "$srv"
	cli cli12 "$srv" "protocols = <=TLSv1.2"
	cli nocache "$srv" "session_cache = no"
	cli fp "$srv" "security = fingerprint
fingerprint = $wrong_fp"
	cli vname "$srv" "security = verify
ca_file = $CERTS/ca.pem
match = wrong.example"
	cli vuntr "$srv" "security = verify
ca_file = $EX/rogue.pem
match = localhost"
	cli dead "$closed"
} >"$CFGC"
start_proxy "$CFGC"
LOGC=$PROXY_LOG
PIDC=$PROXY_PID

sport() { sed -n 's/.*stats: listening on .*:\([0-9][0-9]*\) (GET \/metrics)$/\1/p' "$1" | tail -n 1; }
SPS=$(sport "$LOGS")
SPC=$(sport "$LOGC")
[ -n "$SPS" ] && [ -n "$SPC" ] ||
    bail "stats" "no 'stats: listening on ... (GET /metrics)' line: $(grep stats "$LOGS" "$LOGC" | tr '\n' ' ')"
pass "stats: both proxies log 'stats: listening on 127.0.0.1:PORT (GET /metrics)'"

# ---------------------------------------------------------------- helpers

NSCRAPE=0
# scrape S|C: the metrics of proxy S or C into a new file, path in SCRAPE
scrape() {
	NSCRAPE=$((NSCRAPE + 1))
	eval "_p=\$SP$1"
	SCRAPE=$TP_TMP/m$NSCRAPE-$1.txt
	curl -s -m 5 -o "$SCRAPE" -D "$SCRAPE.head" "http://127.0.0.1:$_p/metrics" ||
	    fail "scrape $1" "curl failed (exit $?)"
}
# snap: scrape both into OLD_S/OLD_C (before) or NEW_S/NEW_C (after)
before() { scrape S; OLD_S=$SCRAPE; scrape C; OLD_C=$SCRAPE; }
after() { scrape S; NEW_S=$SCRAPE; scrape C; NEW_C=$SCRAPE; }
prom() { "$PY" "$TP_PEERS/prom.py" "$@"; }
# delta S|C NAME LABEL=VALUE...: how far a sample moved between before/after
delta() {
	_w=$1
	shift
	eval "prom delta \"\$OLD_$_w\" \"\$NEW_$_w\" \"\$@\""
}
# expect_delta S|C EXPECTED NAME LABEL=VALUE...
expect_delta() {
	_w=$1
	_e=$2
	shift 2
	_d=$(delta "$_w" "$@")
	_lab=$(echo "$*" | sed 's/^[^ ]* //; s/ /,/g')
	if [ "$_d" = "$_e" ]; then pass "$_w: $1{$_lab} +$_e"
	else fail "$_w: $1{$_lab} +$_e" "moved by $_d"; fi
}
# expect_positive S|C NAME LABEL=VALUE...: the sample grew
expect_positive() {
	_w=$1
	shift
	_d=$(delta "$_w" "$@")
	_lab=$(echo "$*" | sed 's/^[^ ]* //; s/ /,/g')
	case $_d in
	absent | 0 | -*) fail "$_w: $1{$_lab} grew" "moved by $_d" ;;
	*) pass "$_w: $1{$_lab} grew (+$_d)" ;;
	esac
}
# value S|C NAME LABEL=VALUE...: in the "after" scrape
value() {
	_w=$1
	shift
	eval "prom get \"\$NEW_$_w\" \"\$@\""
}
# hs S|C ROUTE OUTCOME VERSION EXPECTED: handshakes_total moved
hs() { expect_delta "$1" "$5" tlsproxy_handshakes_total "route=$2" "outcome=$3" "version=$4"; }

# deliver NAME ROUTE: one message through client route ROUTE
deliver() {
	dialog "$1" "$(route_port "$2" "$LOGC")" r "s:EHLO c.test" r "s:MAIL FROM:<$1@example.org>" r \
	    "s:RCPT TO:<$1@example.com>" r s:DATA r "s:Subject: $1" s: s:hello s:. r s:QUIT r eof
	expect_reply_match "$1: delivered" "$DLG" "." '^250 '
}
# refused NAME ROUTE ERE: the client route answers with a 421 greeting
refused() {
	dialog "$1" "$(route_port "$2" "$LOGC")" r s:QUIT r eof
	expect_reply_match "$1: greeting $(reply_to "$DLG" "")" "$DLG" "" "$3"
}
# settle N ROUTE LOG: until N sessions of ROUTE have logged their disconnect
settle() {
	wait_log_count ": $2/[0-9a-f]+: disconnect" "$1" 10 "$3" ||
	    note "only $(log_count ": $2/[0-9a-f]+: disconnect" "$3") of $1 $2 sessions ended"
}

# ---------------------------------------------------------------- HTTP

scrape S
if grep -q '^HTTP/1\.[01] 200' "$SCRAPE.head"; then pass "GET /metrics: 200"
else fail "GET /metrics: 200" "$(head -n 1 "$SCRAPE.head")"; fi
if grep -qi '^Content-Type: text/plain; version=0\.0\.4' "$SCRAPE.head"; then
	pass "GET /metrics: Content-Type text/plain; version=0.0.4"
else fail "GET /metrics: Content-Type text/plain; version=0.0.4" "$(grep -i content-type "$SCRAPE.head")"; fi
for f in sessions_total:counter sessions_active:gauge handshakes_total:counter \
    verify_failures_total:counter resumptions_total:counter bytes_total:counter \
    connect_failures_total:counter rejects_total:counter handshake_seconds:histogram; do
	check "family tlsproxy_${f%%:*}: # TYPE ${f#*:} and # HELP" \
	    grep -q "^# TYPE tlsproxy_${f%%:*} ${f#*:}\$" "$SCRAPE"
done
if prom lint "$SCRAPE" >"$TP_TMP/lint.out" 2>&1; then pass "exposition format (prom.py lint)"
else fail "exposition format (prom.py lint)" "$(head -n 5 "$TP_TMP/lint.out" | tr '\n' '|')"; fi
for r in srv srvdead; do
	check "S: every route has its samples at start: tlsproxy_sessions_total{route=\"$r\"} 0" \
	    [ "$(prom get "$SCRAPE" tlsproxy_sessions_total "route=$r")" = 0 ]
done
for path in / /metricsx /metric /favicon.ico; do
	code=$(curl -s -m 5 -o /dev/null -w '%{http_code}' "http://127.0.0.1:$SPS$path" || true)
	check "GET $path: 404 (got $code)" [ "$code" = 404 ]
done
code=$(curl -s -m 5 -o /dev/null -w '%{http_code}' -X POST "http://127.0.0.1:$SPS/metrics" || true)
check "POST /metrics: not served as metrics (got $code)" [ "$code" = 404 ]
# a client that sends nothing does not block the endpoint
spawn "$TP_TMP/idle.out" "$PY" -c "import socket,time; s=socket.create_connection(('127.0.0.1',$SPS)); time.sleep(20)"
idle=$BG_PID
sleep 0.2
code=$(curl -s -m 3 -o /dev/null -w '%{http_code}' "http://127.0.0.1:$SPS/metrics" || true)
check "GET /metrics while another client is idle: 200 (got $code)" [ "$code" = 200 ]
kill_pid "$idle"

# ---------------------------------------------------------------- 3 deliveries

before
n0=$(sink_count)
for i in 1 2 3; do deliver "cli-$i" cli; done
settle 3 cli "$LOGC"
settle 3 srv "$LOGS"
after
check "3 messages in the sink" [ "$(sink_count)" = $((n0 + 3)) ]
expect_delta C 3 tlsproxy_sessions_total route=cli
expect_delta S 3 tlsproxy_sessions_total route=srv
hs C cli ok TLSv1.3 3
hs S srv ok TLSv1.3 3
hs C cli failed "" 0
hs S srv failed "" 0
expect_delta C 3 tlsproxy_handshake_seconds_count route=cli
expect_delta S 3 tlsproxy_handshake_seconds_count route=srv
expect_delta C 3 tlsproxy_handshake_seconds_bucket route=cli le=+Inf
expect_positive C tlsproxy_handshake_seconds_sum route=cli
expect_delta C 0 tlsproxy_handshake_seconds_count route=dead
# session_cache = yes: the 2nd and 3rd resume (the log says so too)
nreused=$(log_count ': cli/[0-9a-f]+: [A-Za-z]+ TLS connection reused to ' "$LOGC")
check "C: the log has 2 'TLS connection reused to' on cli (has $nreused)" [ "$nreused" = 2 ]
expect_delta C 2 tlsproxy_resumptions_total route=cli
expect_delta S 2 tlsproxy_resumptions_total route=srv
expect_positive C tlsproxy_bytes_total route=cli direction=in
expect_positive C tlsproxy_bytes_total route=cli direction=out
expect_positive S tlsproxy_bytes_total route=srv direction=in
expect_positive S tlsproxy_bytes_total route=srv direction=out
# in = from the client: C's local MTA sent the commands and the message
bin=$(delta C tlsproxy_bytes_total route=cli direction=in)
case $bin in
absent | 0) ;;
*) check "C: bytes in on cli at least the 3 sessions' commands (got $bin)" [ "$bin" -ge 300 ] ;;
esac
check "C: sessions_active{cli} back to 0" [ "$(value C tlsproxy_sessions_active route=cli)" = 0 ]
check "S: sessions_active{srv} back to 0" [ "$(value S tlsproxy_sessions_active route=srv)" = 0 ]
for r in dead fp vname; do expect_delta C 0 tlsproxy_sessions_total "route=$r"; done
expect_delta C 0 tlsproxy_connect_failures_total route=cli
expect_delta C 0 tlsproxy_rejects_total route=cli
if prom lint "$NEW_C" >"$TP_TMP/lint.out" 2>&1; then pass "exposition format after traffic (prom.py lint)"
else fail "exposition format after traffic (prom.py lint)" "$(head -n 5 "$TP_TMP/lint.out" | tr '\n' '|')"; fi

# ---------------------------------------------------------------- TLS 1.2, no cache

before
deliver cli12 cli12
deliver nocache-1 nocache
deliver nocache-2 nocache
settle 1 cli12 "$LOGC"
settle 2 nocache "$LOGC"
settle 6 srv "$LOGS"
after
hs C cli12 ok TLSv1.2 1
hs C cli12 ok TLSv1.3 0
hs S srv ok TLSv1.2 1
hs C nocache ok TLSv1.3 2
expect_delta C 0 tlsproxy_resumptions_total route=nocache
check "C: nocache logged no 'reused'" [ "$(log_count ': nocache/[0-9a-f]+: .*TLS connection reused' "$LOGC")" = 0 ]
expect_delta S 3 tlsproxy_sessions_total route=srv

# ---------------------------------------------------------------- refused upstream

before
refused dead dead '^421 4\.4\.1 '
settle 1 dead "$LOGC"
after
expect_delta C 1 tlsproxy_sessions_total route=dead
expect_delta C 1 tlsproxy_connect_failures_total route=dead
expect_delta C 1 tlsproxy_rejects_total route=dead
hs C dead ok TLSv1.3 0
hs C dead failed "" 0

# ---------------------------------------------------------------- verification failures

before
refused fp fp '^421 4\.7\.5 Server certificate not verified: fingerprint mismatch$'
refused vname vname '^421 4\.7\.5 Server certificate not verified: name mismatch'
refused vuntr vuntr '^421 4\.7\.5 Server certificate not trusted: untrusted issuer'
settle 1 fp "$LOGC"
settle 1 vname "$LOGC"
settle 1 vuntr "$LOGC"
after
expect_delta C 1 tlsproxy_verify_failures_total route=fp reason=fingerprint
expect_delta C 1 tlsproxy_verify_failures_total route=vname reason=name_mismatch
expect_delta C 1 tlsproxy_verify_failures_total route=vuntr reason=untrusted
for r in fp vname vuntr; do
	tot=$(prom sum "$NEW_C" tlsproxy_verify_failures_total "route=$r")
	check "C: $r: verify_failures_total summed over reasons is 1 (got $tot)" [ "$tot" = 1 ]
	expect_delta C 1 tlsproxy_rejects_total "route=$r"
	expect_delta C 0 tlsproxy_connect_failures_total "route=$r"
	# the handshake itself succeeded; the certificate did not pass
	hs C "$r" ok TLSv1.3 1
done
expect_delta C 0 tlsproxy_verify_failures_total route=cli reason=fingerprint

# ---------------------------------------------------------------- server side failures

before
# not TLS at all on an implicit route: a failed handshake
"$PY" - "$srv" >"$TP_TMP/garbage.out" 2>&1 <<'EOF' || true
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5)
s.sendall(b"EHLO not.tls.example\r\n")
try:
    while s.recv(4096):
        pass
except OSError:
    pass
EOF
# backend refused on a server route: 421 4.3.0 inside TLS
timeout -k 2 20 "$PY" "$TP_PEERS/tls_client.py" "$(route_port srvdead "$LOGS")" >"$TP_TMP/srvdead.tc" 2>&1 || true
if grep -q '^greeting: 421 4\.3\.0' "$TP_TMP/srvdead.tc"; then pass "srvdead: 421 4.3.0 inside TLS"
else fail "srvdead: 421 4.3.0 inside TLS" "$(oneline "$TP_TMP/srvdead.tc")"; fi
settle 7 srv "$LOGS"
settle 1 srvdead "$LOGS"
after
hs S srv failed "" 1
expect_delta S 1 tlsproxy_sessions_total route=srv
expect_delta S 0 tlsproxy_handshake_seconds_count route=srv
expect_delta S 1 tlsproxy_connect_failures_total route=srvdead
expect_delta S 1 tlsproxy_rejects_total route=srvdead
hs S srvdead ok TLSv1.3 1

# ---------------------------------------------------------------- sessions_active

spawn "$TP_TMP/hold.out" "$PY" "$TP_PEERS/smtp_chat.py" --tls --timeout 20 \
    --wait-file "$TP_TMP/go" --send QUIT "$srv"
hold=$BG_PID
wait_file "$TP_TMP/hold.out" 5 '^greeting: 220' || fail "hold a session" "$(oneline "$TP_TMP/hold.out")"
scrape S
check "S: sessions_active{srv} 1 while a session is open (got $(prom get "$SCRAPE" tlsproxy_sessions_active route=srv))" \
    [ "$(prom get "$SCRAPE" tlsproxy_sessions_active route=srv)" = 1 ]
touch "$TP_TMP/go"
wait_pid "$hold" 5
settle 8 srv "$LOGS"
scrape S
check "S: sessions_active{srv} 0 after it ended (got $(prom get "$SCRAPE" tlsproxy_sessions_active route=srv))" \
    [ "$(prom get "$SCRAPE" tlsproxy_sessions_active route=srv)" = 0 ]

# ---------------------------------------------------------------- reload

before
kill -HUP "$PIDC"
wait_for_log 'reloaded configuration' 5 "$LOGC" || fail "C: reload" "no 'reloaded configuration'"
after
expect_delta C 0 tlsproxy_sessions_total route=cli
expect_delta C 0 tlsproxy_handshakes_total route=cli outcome=ok version=TLSv1.3
expect_delta C 0 tlsproxy_verify_failures_total route=fp reason=fingerprint
check "C: counters survive SIGHUP: sessions_total{cli} still 3 (got $(value C tlsproxy_sessions_total route=cli))" \
    [ "$(value C tlsproxy_sessions_total route=cli)" = 3 ]
deliver cli-after-hup cli
settle 4 cli "$LOGC"
scrape C
check "C: after SIGHUP new sessions still count: sessions_total{cli} 4" \
    [ "$(prom get "$SCRAPE" tlsproxy_sessions_total route=cli)" = 4 ]

done_testing
