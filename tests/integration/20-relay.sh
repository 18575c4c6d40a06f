#!/bin/sh
# 20-relay: plaintext -> [out] client route -> TLS -> [in] server route ->
# plaintext -> smtp-sink; swaks and smtp-source deliver through it.
. "$(dirname "$0")/lib.sh"
require_tool swaks /usr/sbin/smtp-sink /usr/sbin/smtp-source
need_certs

p2=$(free_port)
p3=$(free_port)
start_sink "$p3"
cat >"$TP_TMP/relay.ini" <<EOF
[global]
shutdown_grace = 5s

[out]
mode = client
tls = implicit
security = encrypt
accept = 127.0.0.1:0
connect = 127.0.0.1:$p2

[in]
mode = server
tls = implicit
accept = 127.0.0.1:$p2
connect = 127.0.0.1:$p3
cert_file = $CERTS/rsa.pem
key_file = $CERTS/rsa.key
eccert_file = $CERTS/ec.pem
eckey_file = $CERTS/ec.key
EOF
start_proxy "$TP_TMP/relay.ini"
p1=$(route_port out)
if [ -n "$p1" ] && [ "$p1" != 0 ]; then pass "accept = 127.0.0.1:0 logs the real port ($p1)"
else bail "accept port" "no real port in 'out: listening on' line"; fi
if log_has "^tlsproxy\\[$PROXY_PID\\]: in: listening on 127\\.0\\.0\\.1:$p2\$"; then
	pass "log lines are prefixed tlsproxy[PID]:"
else fail "log lines are prefixed tlsproxy[PID]:" "$(head -n 3 "$PROXY_LOG")"; fi

# One message with swaks: 250 after the final dot.
swaks --server "127.0.0.1:$p1" --to a@example.com --from b@example.com \
    --timeout 20 >"$TP_TMP/swaks.out" 2>&1 && rc=0 || rc=$?
check "swaks exits 0" [ "$rc" = 0 ]
if awk 'dot && /^<-/ { print; exit } /^ -> \.$/ { dot = 1 }' "$TP_TMP/swaks.out" |
    grep -q '^<-  *250'; then
	pass "250 after DATA"
else
	fail "250 after DATA" "$(tail -n 6 "$TP_TMP/swaks.out" | tr '\n' '|')"
fi
check "the sink got the swaks message" [ "$(sink_count)" = 1 ]
base=$(sink_count)

# 50 messages over 5 parallel sessions with smtp-source.
/usr/sbin/smtp-source -s 5 -m 50 -l 1000 "127.0.0.1:$p1" \
    >"$TP_TMP/source.out" 2>&1 && rc=0 || rc=$?
check "smtp-source exits 0" [ "$rc" = 0 ]
n=$(($(sink_count) - base))
if [ "$n" = 50 ]; then pass "smtp-source delivered 50 messages"
else fail "smtp-source delivered 50 messages" "sink has $n; $(tail -n 3 "$TP_TMP/source.out")"; fi

# Log lines, in Postfix wording.
tls='(Anonymous|Untrusted|Trusted|Verified) TLS connection established'
proto='TLSv1\.[23] with cipher [A-Za-z0-9_-]+ \([0-9]+/[0-9]+ bits\)'
check "log: out/SID: connect from 127.0.0.1:PORT" \
    log_has '^tlsproxy\[[0-9]+\]: out/[^:]+: connect from 127\.0\.0\.1:[0-9]+$'
check "log: out: TLS connection established to HOST[IP]:PORT" \
    log_has "out/[^:]+: $tls to [^ ]*\\[127\\.0\\.0\\.1\\]:$p2: $proto"
check "log: in: TLS connection established from HOST[IP]" \
    log_has "in/[^:]+: $tls from [^ ]*\\[127\\.0\\.0\\.1\\]: $proto"
check "log: disconnect in=... out=... TIME" \
    log_has '/[^:]+: disconnect in=[0-9.]+[kMG]?B out=[0-9.]+[kMG]?B [0-9.]+s$'
wait_log_count 'out/[^:]+: disconnect in=' 51 5 || true
n=$(log_count 'out/[^:]+: disconnect in=')
check "log: 51 disconnects on the client route (got $n)" [ "$n" = 51 ]

# Two routes on 127.0.0.1:0: each gets a port of its own and its own traffic.
cat >"$TP_TMP/zero.ini" <<EOF
[global]
shutdown_grace = 5s

[z1]
mode = client
accept = 127.0.0.1:0
connect = 127.0.0.1:$p2

[z2]
mode = client
accept = 127.0.0.1:0
connect = 127.0.0.1:$p2
EOF
spawn_proxy "$TP_TMP/zero.ini"
wait_log_count ': listening on ' 2 5 || true
z1=$(route_port z1)
z2=$(route_port z2)
if [ -n "$z1" ] && [ -n "$z2" ] && [ "$z1" != "$z2" ]; then
	pass "two routes on 127.0.0.1:0 get ports of their own ($z1, $z2)"
	swaks --server "127.0.0.1:$z2" --to a@example.com --from b@example.com \
	    --timeout 20 >"$TP_TMP/swaks2.out" 2>&1 && rc=0 || rc=$?
	check "swaks through the second port-0 route exits 0" [ "$rc" = 0 ]
	check "the second port-0 route logs its own session" log_has 'z2/[^:]+: connect from'
else
	fail "two routes on 127.0.0.1:0 get ports of their own" \
	    "z1 '$z1', z2 '$z2': $(grep 'listening on' "$PROXY_LOG" | tr '\n' ' ')"
fi

done_testing
