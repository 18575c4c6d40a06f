#!/bin/sh
# 90-limits: per-route and global max_connections; a client over the limit
# reads "421 4.3.2" (client routes are plaintext-first), and a freed slot is
# usable again.
. "$(dirname "$0")/lib.sh"
require_tool /usr/sbin/smtp-sink
need_certs

tlsin=$(free_port)
sink=$(free_port)
start_sink "$sink"
# The TLS end lives in its own process so it does not count against the
# global limit of the process under test.
cat >"$TP_TMP/backend.ini" <<EOF
[global]
shutdown_grace = 5s

[in]
mode = server
accept = 127.0.0.1:$tlsin
connect = 127.0.0.1:$sink
cert_file = $CERTS/rsa.pem
key_file = $CERTS/rsa.key
EOF
start_proxy "$TP_TMP/backend.ini"

cat >"$TP_TMP/limits.ini" <<EOF
[global]
shutdown_grace = 5s
max_connections = 3

[limited]
mode = client
accept = 127.0.0.1:$(free_port)
connect = 127.0.0.1:$tlsin
max_connections = 2

[other]
mode = client
accept = 127.0.0.1:$(free_port)
connect = 127.0.0.1:$tlsin
EOF
start_proxy "$TP_TMP/limits.ini"
limited=$(route_port limited)
other=$(route_port other)

# hold NAME PORT: a session that got its 220 through the tunnel and stays open
hold() {
	spawn "$TP_TMP/$1.out" "$PY" "$TP_PEERS/smtp_chat.py" --timeout 40 \
	    --wait-file "$TP_TMP/never" "$2"
	if wait_file "$TP_TMP/$1.out" 5 '^greeting: 220'; then pass "$1 is served"
	else fail "$1 is served" "$(tr '\n' '|' <"$TP_TMP/$1.out")"; fi
}
# refused_432 NAME PORT: this client reads 421 4.3.2 and is closed
refused_432() {
	"$PY" "$TP_PEERS/util.py" read-line "$2" 5 >"$TP_TMP/$1.out" 2>&1 || true
	line=$(sed -n 's/^line=//p' "$TP_TMP/$1.out")
	case $line in
	"421 4.3.2 "*) pass "$1 over the limit: '$line'" ;;
	*) fail "$1 over the limit gets 421 4.3.2" "got '$line'" ;;
	esac
	if grep -q '^EOF' "$TP_TMP/$1.out"; then pass "$1 closed after the 421"
	else fail "$1 closed after the 421" "still open"; fi
}

hold a1 "$limited"
a1=$BG_PID
hold a2 "$limited"
refused_432 "a3 (route limit 2)" "$limited"
sleep 0.3	# let the proxy finish closing a3
hold b1 "$other"
refused_432 "b2 (global limit 3)" "$other"

# Free one slot of the limited route: the next client is served again.
n=$(log_count 'limited/[^:]+: disconnect')
kill_pid "$a1"
wait_log_count 'limited/[^:]+: disconnect' $((n + 1)) 5 || true
hold a4 "$limited"

done_testing
