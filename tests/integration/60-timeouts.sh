#!/bin/sh
# 60-timeouts: idle_timeout ends a silent TLS session with Postfix's 421
# (spec 4.6: never a silent close); handshake_timeout ends a connection
# that never starts TLS.
. "$(dirname "$0")/lib.sh"
require_tool /usr/sbin/smtp-sink
need_certs

sink=$(free_port)
start_sink "$sink"
cat >"$TP_TMP/to.ini" <<EOF
[global]
shutdown_grace = 5s

[in]
mode = server
accept = 127.0.0.1:0
connect = 127.0.0.1:$sink
cert_file = $CERTS/rsa.pem
key_file = $CERTS/rsa.key
idle_timeout = 2s
handshake_timeout = 2s
EOF
start_proxy "$TP_TMP/to.ini"
port=$(route_port in)

# in_range VALUE LO HI: LO <= VALUE <= HI (decimals allowed)
in_range() { awk -v v="$1" -v lo="$2" -v hi="$3" 'BEGIN { exit !(v >= lo && v <= hi) }'; }

# A TLS client that completes the handshake, reads the greeting, then idles:
# after idle_timeout it hears why (Postfix smtpd's words), then the close.
"$PY" "$TP_PEERS/tls_idle.py" "$port" 10 >"$TP_TMP/idle.out" 2>&1 || true
el=$(sed -n 's/^elapsed=//p' "$TP_TMP/idle.out")
if grep -q '^closed' "$TP_TMP/idle.out" && in_range "$el" 1.5 $((5 + TP_SLACK)); then
	pass "idle TLS session closed after ${el}s of silence (idle_timeout = 2s)"
else
	fail "idle TLS session closed within 2-5 s" "$(tr '\n' ' ' <"$TP_TMP/idle.out")"
fi
expect_line "idle client told: 421 4.4.2 HOST Error: timeout exceeded" \
    "$TP_TMP/idle.out" "last=421 4.4.2 $(hostname) Error: timeout exceeded"
if wait_for_log 'in/[^:]+: disconnect' 3; then pass "log: disconnect after the idle timeout"
else fail "log: disconnect after the idle timeout" "no disconnect line"; fi

# A plain TCP client that never sends a ClientHello.
"$PY" "$TP_PEERS/util.py" wait-close "$port" 10 >"$TP_TMP/hs.out" 2>&1 || true
el=$(sed -n 's/^elapsed=//p' "$TP_TMP/hs.out")
if grep -q '^closed' "$TP_TMP/hs.out" && in_range "$el" 1.5 $((5 + TP_SLACK)); then
	pass "no ClientHello: closed after ${el}s (handshake_timeout = 2s)"
else
	fail "no ClientHello: closed within 2-5 s" "$(tr '\n' ' ' <"$TP_TMP/hs.out")"
fi

done_testing
