#!/bin/sh
# 50-backpressure: a 100 MB message through client route -> server route ->
# a backend that reads nothing of its body for 5 s.  The proxy must stop
# reading from the sender meanwhile (bounded memory), and every byte must
# arrive intact.
. "$(dirname "$0")/lib.sh"
need_certs

MB=100
STALL=5
LIMIT_KB=65536
p2=$(free_port)
p3=$(free_port)
mkdir "$TP_TMP/rx"
spawn "$TP_TMP/stall.out" "$PY" "$TP_PEERS/stall_sink.py" "$p3" "$STALL" "$TP_TMP/rx"
rx_pid=$BG_PID
wait_file "$TP_TMP/stall.out" 5 ready || bail "stall_sink" "not ready"
cat >"$TP_TMP/bp.ini" <<EOF
[global]
shutdown_grace = 5s

[out]
mode = client
accept = 127.0.0.1:0
connect = 127.0.0.1:$p2

[in]
mode = server
accept = 127.0.0.1:$p2
connect = 127.0.0.1:$p3
cert_file = $CERTS/rsa.pem
key_file = $CERTS/rsa.key
EOF
start_proxy "$TP_TMP/bp.ini"

rss() { awk '/^VmRSS:/ { print $2 }' "/proc/$PROXY_PID/status" 2>/dev/null || echo 0; }
base=$(rss)
spawn "$TP_TMP/send.out" "$PY" "$TP_PEERS/bulk_send.py" "$(route_port out)" "$MB"
tx_pid=$BG_PID

# Sample the proxy's RSS while the backend stalls.
wait_file "$TP_TMP/rx/accepted" 10 || bail "backend" "no connection reached the backend"
max=$base
n=0
while [ ! -e "$TP_TMP/rx/reading" ] && alive "$rx_pid"; do
	alive "$PROXY_PID" || bail "proxy" "died during the transfer"
	r=$(rss)
	[ "$r" -gt "$max" ] && max=$r
	n=$((n + 1))
	sleep 0.25
done
note "VmRSS: ${base} kB at start, max ${max} kB over $n samples during the stall"
if [ "$TP_SLACK" -gt 0 ]; then
	# Sanitizer builds: judge the growth, ASan's own overhead is not ours.
	if [ $((max - base)) -lt $LIMIT_KB ]; then
		pass "RSS grew by $(((max - base) / 1024)) MB (< 64 MB) during the stall"
	else fail "RSS bounded during the stall" "grew by $(((max - base) / 1024)) MB"; fi
else
	if [ "$max" -lt $LIMIT_KB ]; then
		pass "max RSS $((max / 1024)) MB (< 64 MB) during the stall"
	else fail "max RSS below 64 MB during the stall" "$((max / 1024)) MB"; fi
fi

wait_pid "$tx_pid" 40
check "sender finished (status $WAIT_RC)" [ "$WAIT_RC" = 0 ]
wait_pid "$rx_pid" 10
check "backend finished (status $WAIT_RC)" [ "$WAIT_RC" = 0 ]
sent=$(sed -n 's/^sent=\([0-9]*\) .*/\1/p' "$TP_TMP/send.out")
recv=$(sed -n 's/^received=\([0-9]*\) .*/\1/p' "$TP_TMP/rx/result" 2>/dev/null || true)
if [ -n "$sent" ] && [ "$sent" = "$recv" ]; then pass "byte counts equal ($sent)"
else fail "byte counts equal" "sent '$sent', received '$recv'"; fi
s1=$(sed -n 's/.*sha256=//p' "$TP_TMP/send.out")
s2=$(sed -n 's/.*sha256=//p' "$TP_TMP/rx/result" 2>/dev/null || true)
if [ -n "$s1" ] && [ "$s1" = "$s2" ]; then pass "sha256 matches"
else fail "sha256 matches" "sent $s1, received $s2"; fi
expect_line "the sender got the backend's 250 for the message" \
    "$TP_TMP/send.out" "reply=250 2.0.0 Ok: queued"

done_testing
