#!/bin/sh
# 80-shutdown: SIGTERM stops accepting at once, lets open sessions go on for
# shutdown_grace, then exits 0; without sessions it exits 0 at once.
. "$(dirname "$0")/lib.sh"
require_tool /usr/sbin/smtp-sink
need_certs

GRACE=3
port=$(free_port)
sink=$(free_port)
start_sink "$sink"
cat >"$TP_TMP/sd.ini" <<EOF
[global]
shutdown_grace = ${GRACE}s

[in]
mode = server
accept = 127.0.0.1:$port
connect = 127.0.0.1:$sink
cert_file = $CERTS/rsa.pem
key_file = $CERTS/rsa.key
EOF

# 1. With an open session that never ends by itself.
start_proxy "$TP_TMP/sd.ini"
spawn "$TP_TMP/chat.out" "$PY" "$TP_PEERS/smtp_chat.py" --tls --timeout 20 \
    --wait-file "$TP_TMP/go" --send NOOP --hold "$port"
wait_file "$TP_TMP/chat.out" 5 '^greeting: 220' ||
    bail "open session" "$(cat "$TP_TMP/chat.out")"
pid=$PROXY_PID
t0=$(now_ms)
kill -TERM "$pid"
if wait_for_log 'stopping' 2; then pass "log: stopping"
else fail "log: stopping" "not logged within 2 s"; fi
if "$PY" "$TP_PEERS/util.py" refused "$port" >"$TP_TMP/refused.out" 2>&1; then
	pass "new connections are refused while stopping"
else
	fail "new connections are refused while stopping" "$(cat "$TP_TMP/refused.out")"
fi
touch "$TP_TMP/go"
if wait_file "$TP_TMP/chat.out" 2 '^reply: 250'; then
	pass "the open session is still served during the grace period"
else
	fail "the open session is still served during the grace period" "$(tr '\n' '|' <"$TP_TMP/chat.out")"
fi
reap_proxy "$pid" $((GRACE + 5 + TP_SLACK))
el=$(($(now_ms) - t0))
check "exit status 0 with a session open (got $STOP_RC)" [ "$STOP_RC" = 0 ]
if [ $el -le $(((GRACE + 2 + TP_SLACK) * 1000)) ]; then
	pass "exited $(ms_to_s $el)s after SIGTERM (shutdown_grace = ${GRACE}s)"
else
	fail "exits within shutdown_grace" "$(ms_to_s $el)s after SIGTERM"
fi
if wait_file "$TP_TMP/chat.out" 2 '^closed'; then pass "the session was closed by the shutdown"
else fail "the session was closed by the shutdown" "$(tr '\n' '|' <"$TP_TMP/chat.out")"; fi

# 2. Without sessions: exit 0 quickly.
start_proxy "$TP_TMP/sd.ini"
stop_proxy "$PROXY_PID" 10
check "no sessions: exit status 0 (got $STOP_RC)" [ "$STOP_RC" = 0 ]
if [ "$STOP_MS" -lt $(((2 + TP_SLACK) * 1000)) ]; then
	pass "no sessions: exited $(ms_to_s "$STOP_MS")s after SIGTERM"
else
	fail "no sessions: exits within 2 s" "$(ms_to_s "$STOP_MS")s"
fi

done_testing
