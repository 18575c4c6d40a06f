#!/bin/sh
# 40-failures: client-route failures reach the local client as a 421 greeting
# and a close (never a 5xx); failover to the next connect address.
. "$(dirname "$0")/lib.sh"
require_tool swaks /usr/sbin/smtp-sink
need_certs

refused=$(free_port)	# nothing listens here
greet=$(free_port)	# "220 hello", never TLS
silent=$(free_port)	# accepts, says nothing
hole=$(free_port)	# accept queue full: connects time out
tlsin=$(free_port)
sink=$(free_port)
start_sink "$sink"
spawn "$TP_TMP/greet.out" "$PY" "$TP_PEERS/fake_server.py" "$greet" greet
spawn "$TP_TMP/silent.out" "$PY" "$TP_PEERS/fake_server.py" "$silent" silent
spawn "$TP_TMP/hole.out" "$PY" "$TP_PEERS/fake_server.py" "$hole" blackhole
for f in greet silent hole; do
	wait_file "$TP_TMP/$f.out" 5 ready || bail "fake_server $f" "not ready"
done

route() { # NAME CONNECT [EXTRA]: a client route on a port of its own
	printf '\n[%s]\nmode = client\ntls = implicit\nsecurity = encrypt\n' "$1"
	printf 'accept = 127.0.0.1:%s\nconnect = %s\n%s\n' "$(free_port)" "$2" "${3:-}"
}
{
	printf '[global]\nshutdown_grace = 5s\n'
	route refused "127.0.0.1:$refused"
	route notls "127.0.0.1:$greet" "handshake_timeout = 3s"
	route silent "127.0.0.1:$silent" "handshake_timeout = 2s"
	route hole "127.0.0.1:$hole" "connect_timeout = 2s"
	route failover "127.0.0.1:$refused, 127.0.0.1:$tlsin"
	printf '\n[in]\nmode = server\naccept = 127.0.0.1:%s\nconnect = 127.0.0.1:%s\n' \
	    "$tlsin" "$sink"
	printf 'cert_file = %s\nkey_file = %s\n' "$CERTS/rsa.pem" "$CERTS/rsa.key"
} >"$TP_TMP/fail.ini"
start_proxy "$TP_TMP/fail.ini"

# expect_421 ROUTE CODE SECS: a plain client of ROUTE reads "421 CODE ..."
# within SECS seconds, and then the proxy closes the connection.
expect_421() {
	"$PY" "$TP_PEERS/util.py" read-line "$(route_port "$1")" "$3" \
	    >"$TP_TMP/$1.read" 2>&1 || true
	line=$(sed -n 's/^line=//p' "$TP_TMP/$1.read")
	el=$(sed -n 's/^elapsed=//p' "$TP_TMP/$1.read")
	case $line in
	421\ $2\ *) pass "$1: '$line' after ${el}s" ;;
	*) fail "$1: 421 $2 within $3 s" "got '$line' after ${el}s" ;;
	esac
	if grep -q '^EOF' "$TP_TMP/$1.read"; then pass "$1: closed after the 421"
	else fail "$1: closed after the 421" "connection still open"; fi
}

expect_421 refused 4.4.1 5
expect_421 notls 4.7.5 5
expect_421 silent 4.[0-9].[0-9] 5
expect_421 hole 4.4.2 5

swaks --server "127.0.0.1:$(route_port failover)" --to a@example.com \
    --from b@example.com --timeout 20 >"$TP_TMP/swaks.out" 2>&1 && rc=0 || rc=$?
check "failover: swaks exits 0" [ "$rc" = 0 ]
check "failover: delivered via the second address" [ "$(sink_count)" = 1 ]

done_testing
