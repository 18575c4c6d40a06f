#!/bin/sh
# 185-gateway-reuse: connection_reuse on a gateway (spec 4.7, 4.9) against
# the offline DNSSEC lab of 240/250 (tests/dns/mkzones.sh).  A gateway
# route with connection_reuse = yes ends an upstream it is done with by
# RSET, not QUIT, and keeps it per destination domain and policy when the
# answer is 250; the next transaction to that domain on the worker (in
# the same MTA session or a later one) takes it: no DNS, TCP, TLS nor EHLO.
#
# Upstreams (tests/peers/smtp_server.py): up1 on 127.0.0.1:UP (lab1: the
# MX of good.test, DANE, and of insecure.test), x1 on 127.0.0.1:XP (closes
# an idle connection 0.5 s after its RSET), y1 on 127.0.0.1:YP (answers
# RSET with 500).  Routes (workers = 1, one pool): gwr (port UP, reuse on),
# gwx (port XP, reuse on), gwy (port YP, reuse on), gwn (port UP, reuse
# off: the old behaviour, QUIT).
# Checked, each from the upstream's own log (which connection got which
# MAIL, and what else it saw):
#   two MTA sessions to good.test in a row share one upstream connection:
#     one EHLO on it, RSET between the transactions, no QUIT; the second
#     transaction inside TLS and delivered; "reusing connection" logged;
#   one MTA session to good.test, insecure.test, good.test: the first and
#     third transactions on the same connection (parked at the switch),
#     the second on another;
#   an MTA that drops the connection right after QUIT (as Postfix does,
#     not reading the 221): the connection is still kept and reused;
#   two concurrent MTA sessions never share a connection;
#   an upstream that closes a kept connection: the next session gets a
#     new one, delivered; RSET refused: QUIT, then a new one;
#   reuse off: QUIT at the end, a new connection each time;
#   reload: a kept connection is never reused under the new generation;
#   metrics tlsproxy_reuse_total.  Run with the ASan build too.
TP_TIMEOUT=${TP_TIMEOUT:-90}
. "$(dirname "$0")/lib.sh"
require_tool openssl ldns-keygen ldns-signzone ldns-key2ds unbound-host
command -v nsd >/dev/null 2>&1 || [ -x /usr/sbin/nsd ] || skip_all "nsd not installed"
need_certs

start_lab
XP=$(free_port)
YP=$(free_port)

start_smtpd up1 "$UP" --addr 127.0.0.1 --cert "$LAB/lab1.pem" --key "$LAB/lab1.key"
start_smtpd x1 "$XP" --addr 127.0.0.1 --cert "$LAB/lab1.pem" --key "$LAB/lab1.key" \
    --after-rset close:0.5
start_smtpd y1 "$YP" --addr 127.0.0.1 --cert "$LAB/lab1.pem" --key "$LAB/lab1.key" \
    --rset-reply '500 5.5.1 no\r\n'
U1=$TP_TMP/up1.log X1=$TP_TMP/x1.log Y1=$TP_TMP/y1.log

gw_route() { # NAME PORT REUSE
	cat <<EOF2

[$1]
mode = gateway
accept = 127.0.0.1:0
port = $2
hostname = gw.test
helo_name = gw.proxy.test
ca_file = $CERTS/ca.pem
connect_timeout = 3s
smtp_timeout = 10s
connection_reuse = $3
connection_cache_time = 5s
EOF2
}
{
	cat <<EOF2
[global]
workers = 1
shutdown_grace = 2s
stats = 127.0.0.1:0
dns_stub = test. 127.0.0.1@$DNSPORT
dns_trust_anchor = $LAB/test.ds
dns_timeout = 3s
EOF2
	gw_route gwr "$UP" yes
	gw_route gwx "$XP" yes
	gw_route gwy "$YP" yes
	gw_route gwn "$UP" no
} >"$TP_TMP/gw.ini"
start_proxy "$TP_TMP/gw.ini"

STATS() { sed -n 's/.*stats: listening on .*:\([0-9][0-9]*\) (GET \/metrics)$/\1/p' "$PROXY_LOG" | tail -n 1; }
metric() { # NAME ROUTE
	curl -s -m 5 -o "$TP_TMP/m.txt" "http://127.0.0.1:$(STATS)/metrics" || { echo none; return; }
	"$PY" "$TP_PEERS/prom.py" get "$TP_TMP/m.txt" "$1" "route=$2"
}

QUEUED='250 2.0.0 Ok: queued as TEST'

# txn SENDER DOMAIN: the dialog steps of one transaction (Subject:
# SENDER), separated by "|" (run them with IFS='|')
txn() {
	TXN="s:MAIL FROM:<$1@mta.test>|r|s:RCPT TO:<u@$2>|r|s:DATA|r|s:Subject: $1|s:|s:.|r"
}
# session NAME ROUTE SENDER:DOMAIN...: one MTA session, QUIT read
session() {
	_n=$1 _p=$(route_port "$2")
	shift 2
	_steps=""
	for _t in "$@"; do
		txn "${_t%%:*}" "${_t#*:}"
		_steps="$_steps${_steps:+|}$TXN"
	done
	IFS='|'
	# shellcheck disable=SC2086 # the steps are words
	dialog "$_n" "$_p" --timeout 15 r "s:EHLO mta.test" r $_steps s:QUIT r eof
	IFS=$OIFS
}
OIFS=$IFS
# uconn LOG SENDER: the upstream connection that got MAIL FROM:<SENDER>
uconn() {
	awk -v m="MAIL FROM:<$2@mta.test>" '
		($2 == "T:" || $2 == "C:") { l = $0; sub(/^[0-9]+ [TC]: /, "", l)
		    if (l == m) { print $1; exit } }' "$1"
}
# ulines LOG N: connection N's events, in order
ulines() { awk -v n="$2" '$1 == n { sub(/^[0-9]+ /, ""); print }' "$1"; }
# queued NAME N: the Nth '.' of dialog NAME was answered 250 queued
queued() {
	_got=$(reply_to "$TP_TMP/$1.dlg" "." "${2:-1}")
	if [ "$_got" = "$QUEUED" ]; then pass "$1: message ${2:-1} queued"
	else fail "$1: message ${2:-1} queued" "got '$_got' [$(oneline "$TP_TMP/$1.dlg")]"; fi
}
# conns LOG: upstream connections opened
conns() { grep -c ' connect from ' "$1" || true; }
# same NAME LOG A B: senders A and B went over one upstream connection
same() {
	_a=$(uconn "$2" "$3") _b=$(uconn "$2" "$4")
	if [ -n "$_a" ] && [ "$_a" = "$_b" ]; then pass "$1: $3 and $4 on one upstream connection ($_a)"
	else fail "$1: $3 and $4 on one upstream connection" "connections '$_a' and '$_b'"; fi
}
differ() {
	_a=$(uconn "$2" "$3") _b=$(uconn "$2" "$4")
	if [ -n "$_a" ] && [ -n "$_b" ] && [ "$_a" != "$_b" ]; then pass "$1: $3 and $4 on different connections"
	else fail "$1: $3 and $4 on different connections" "connections '$_a' and '$_b'"; fi
}

# ---------------------------------------------------------------- two sessions, one connection

session a1 gwr a1:good.test
queued a1
session a2 gwr a2:good.test
queued a2
same "two sessions" "$U1" a1 a2
C=$(uconn "$U1" a1)
ulines "$U1" "${C:-none}" >"$TP_TMP/a.conn"
n=$(grep -c 'EHLO' "$TP_TMP/a.conn" || true)
check "two sessions: one EHLO (and one STARTTLS) on the connection (got $n)" [ "$n" = 2 ]
check "two sessions: RSET between the transactions" grep -q '^T: RSET$' "$TP_TMP/a.conn"
check "two sessions: no QUIT while kept" sh -c "! grep -q 'QUIT' '$TP_TMP/a.conn'"
check "two sessions: the second transaction inside TLS" grep -q '^T: MAIL FROM:<a2@mta.test>' "$TP_TMP/a.conn"
check "two sessions: the body arrived" grep -Fxq 'body: Subject: a2' "$TP_TMP/a.conn"
check "two sessions: 'reusing connection to mx.good.test[127.0.0.1]:$UP (session 2' logged" \
    log_has "gwr/[0-9a-f]+: reusing connection to mx\\.good\\.test\\[127\\.0\\.0\\.1\\]:$UP \\(session 2,"
expect_reply "two sessions: the MTA gets the gateway's own 221" "$TP_TMP/a2.dlg" "QUIT" "221 2.0.0 Bye"
expect_line "two sessions: the gateway closes after QUIT" "$TP_TMP/a2.dlg" "EOF"

# ---------------------------------------------------------------- parked at a domain switch

session b gwr b1:good.test b2:insecure.test b3:good.test
queued b 1
queued b 2
queued b 3
same "switch" "$U1" a1 b1
same "switch" "$U1" b1 b3
differ "switch" "$U1" b1 b2
C=$(uconn "$U1" b2)
ulines "$U1" "${C:-none}" >"$TP_TMP/b2.conn"
check "switch: insecure.test's connection got RSET at the end, not QUIT" \
    grep -q '^T: RSET$' "$TP_TMP/b2.conn"

# ---------------------------------------------------------------- the MTA drops after QUIT

txn c1 good.test
_p=$(route_port gwr)
IFS='|'
# shellcheck disable=SC2086
dialog c1 "$_p" --timeout 15 r "s:EHLO mta.test" r $TXN s:QUIT close
IFS=$OIFS
queued c1
sleep 0.3
session c2 gwr c2:good.test
queued c2
same "MTA gone after QUIT" "$U1" c1 c2
same "MTA gone after QUIT" "$U1" a1 c2

# ---------------------------------------------------------------- concurrent sessions never share

_p=$(route_port gwr)
IFS='|'
txn d1 good.test
# shellcheck disable=SC2086
spawn_dialog d1 "$_p" --timeout 15 r "s:EHLO mta.test" r $TXN sleep:1 s:QUIT r eof
D1=$BG_PID
txn d2 good.test
# shellcheck disable=SC2086
spawn_dialog d2 "$_p" --timeout 15 r "s:EHLO mta.test" r $TXN sleep:1 s:QUIT r eof
D2=$BG_PID
IFS=$OIFS
wait "$D1" "$D2" 2>/dev/null || true
queued d1
queued d2
differ "concurrent" "$U1" d1 d2

# ---------------------------------------------------------------- the upstream closes a kept one

session x1 gwx x1:good.test
queued x1
sleep 1.2
check "closed while kept: the upstream closed it" grep -q '^1 close' "$X1"
session x2 gwx x2:good.test
queued x2
differ "closed while kept" "$X1" x1 x2
check "closed while kept: two connections" [ "$(conns "$X1")" = 2 ]

# ---------------------------------------------------------------- RSET refused

session y1 gwy y1:good.test
queued y1
ulines "$Y1" 1 >"$TP_TMP/y.conn"
check "RSET refused: then QUIT" sh -c "grep -A1 '^T: RSET\$' '$TP_TMP/y.conn' | grep -q '^T: QUIT\$'"
session y2 gwy y2:good.test
queued y2
differ "RSET refused" "$Y1" y1 y2

# ---------------------------------------------------------------- reuse off

n0=$(conns "$U1")
session n1 gwn n1:good.test
session n2 gwn n2:good.test
queued n1
queued n2
differ "reuse off" "$U1" n1 n2
C=$(uconn "$U1" n1)
ulines "$U1" "${C:-none}" >"$TP_TMP/n.conn"
check "reuse off: QUIT at the end" grep -q '^T: QUIT$' "$TP_TMP/n.conn"
check "reuse off: two new connections" [ "$(conns "$U1")" = $((n0 + 2)) ]

# ---------------------------------------------------------------- metrics, reload

r=$(metric tlsproxy_reuse_total gwr)
check "metrics: tlsproxy_reuse_total{route=gwr} >= 5 (got $r)" [ "$r" -ge 5 ]
check "metrics: nothing reused on gwn" [ "$(metric tlsproxy_reuse_total gwn)" = 0 ]
session r1 gwr r1:good.test
queued r1
n0=$(log_count 'reloaded configuration')
kill -HUP "$PROXY_PID"
wait_log_count 'reloaded configuration' $((n0 + 1)) 5 || fail "reload" "no 'reloaded configuration' line"
sleep 0.3
session r2 gwr r2:good.test
queued r2
differ "reload" "$U1" r1 r2

stop_proxy
done_testing
