#!/bin/sh
# 10-cli: -V, -t on the shipped config, and FILE:LINE diagnostics for bad
# configurations (nothing is bound or started by -t).
. "$(dirname "$0")/lib.sh"
need_certs

# -V: the version line names tlsproxy, OpenSSL and libuv with versions.
out=$("$TLSPROXY" -V 2>&1) && rc=0 || rc=$?
check "-V exits 0" [ "$rc" = 0 ]
if echo "$out" | grep -qi 'tlsproxy'; then pass "-V names tlsproxy"
else fail "-V names tlsproxy" "output: $out"; fi
if echo "$out" | grep -Eqi 'openssl[^0-9]*[0-9]+\.[0-9]+'; then
	pass "-V shows the OpenSSL version"
else fail "-V shows the OpenSSL version" "output: $out"; fi
if echo "$out" | grep -Eqi 'libuv[^0-9]*[0-9]+\.[0-9]+'; then
	pass "-V shows the libuv version"
else fail "-V shows the libuv version" "output: $out"; fi
uvver=$(pkg-config --modversion libuv 2>/dev/null || true)
if [ -n "$uvver" ]; then
	if echo "$out" | grep -qF "$uvver"; then pass "-V libuv version is $uvver"
	else fail "-V libuv version is $uvver" "output: $out"; fi
fi

# -t on the shipped configuration.
out=$("$TLSPROXY" -t -c "$TP_ROOT/etc/tlsproxy.ini" 2>&1) && rc=0 || rc=$?
if [ "$rc" = 0 ]; then pass "-t accepts etc/tlsproxy.ini"
else fail "-t accepts etc/tlsproxy.ini" "exit $rc: $out"; fi

# base FILE: a valid 9-line config with one server route; PORT is in use by a
# listener below, which -t must not mind (it binds nothing).
busy=$(free_port)
spawn "$TP_TMP/busy.out" "$PY" -c "
import socket, time
s = socket.socket(); s.bind(('127.0.0.1', $busy)); s.listen(1)
time.sleep(120)"
base() {
	cat >"$1" <<EOF
[global]
shutdown_grace = 5s

[r1]
mode = server
accept = 127.0.0.1:$busy
connect = 127.0.0.1:$(free_port)
cert_file = $CERTS/rsa.pem
key_file = $CERTS/rsa.key
EOF
}
cfg=$TP_TMP/t.ini
base "$cfg"
wait_port "$busy" || true
out=$("$TLSPROXY" -t -c "$cfg" 2>&1) && rc=0 || rc=$?
if [ "$rc" = 0 ]; then pass "-t accepts the base config (its port is busy)"
else fail "-t accepts the base config (its port is busy)" "exit $rc: $out"; fi

# expect_error NAME LINE [WORD]: -t on $cfg exits 1 and reports t.ini:LINE:
# (with WORD on that line, when given).  LINE may be "A|B" for either.
expect_error() {
	out=$("$TLSPROXY" -t -c "$cfg" 2>&1) && rc=0 || rc=$?
	if [ "$rc" != 1 ]; then
		fail "$1" "-t exit status $rc, want 1; output: $out"
	elif ! echo "$out" | grep -Eq "t\\.ini:($2): .*${3:-}"; then
		fail "$1" "want 't.ini:$2: ...${3:+$3...}', got: $out"
	else
		pass "$1"
	fi
}

base "$cfg"; echo "frobnicate = yes" >>"$cfg"
expect_error "unknown key" 10 frobnicate

base "$cfg"; printf '[bad/route]\nmode = server\n' >>"$cfg"
expect_error "bad section name (not a usable route name)" 10

base "$cfg"; sed -i '1i shutdown_grace = 5s' "$cfg"
expect_error "key outside any section" 1

base "$cfg"; sed -i '2a workers = abc' "$cfg"
expect_error "bad value workers = abc" 3 workers

base "$cfg"; printf '\n[r2]\nmode = client\naccept = 127.0.0.1:%s\n' \
    "$(free_port)" >>"$cfg"
expect_error "missing connect, reported at the section header" 11 connect

base "$cfg"; printf '\n[r2]\nmode = client\naccept = 127.0.0.1:%s\nconnect = 127.0.0.1:1\n' \
    "$busy" >>"$cfg"
expect_error "duplicate listen address" 13

cp "$CERTS/rsa.key" "$TP_TMP/open.key"
chmod 644 "$TP_TMP/open.key"
base "$cfg"; sed -i "s|^key_file = .*|key_file = $TP_TMP/open.key|" "$cfg"
expect_error "key file mode 0644" 9 0644

base "$cfg"; sed -i "s|^key_file = .*|key_file = $CERTS/rsa2.key|" "$cfg"
expect_error "key does not match the certificate" "8|9"

# Several problems: every one is reported.
base "$cfg"; sed -i '2a workers = abc' "$cfg"; echo "frobnicate = 1" >>"$cfg"
expect_error "two problems: the first" 3
expect_error "two problems: the second" 11

# DNS destinations (spec 3 and 4.8): the [global] dns_* keys, connect =
# mx:DOMAIN and the trust anchor file, each problem at its line.
base "$cfg"; sed -i '2a dns_resolver = 192.0.2.53:53' "$cfg"
expect_error "dns_resolver with IP:PORT" 3 "IP@PORT"
base "$cfg"; sed -i '2a dns_stub = test' "$cfg"
expect_error "dns_stub without a server" 3 "expected ZONE"
base "$cfg"; sed -i '2a dns_timeout = 0' "$cfg"
expect_error "dns_timeout = 0" 3 "out of range"
base "$cfg"; sed -i '2a dns_trust_anchor = /nonexistent/root.key' "$cfg"
expect_error "dns_trust_anchor that cannot be read" 3 "cannot read"
base "$cfg"; sed -i 's/^connect = .*/connect = mx:example.com/' "$cfg"
expect_error "mx: on a server route" 7 "client routes"
ta=$TP_TMP/ta.key
mx_route() {
	base "$cfg"
	printf '
[c1]
mode = client
accept = 127.0.0.1:%s
connect = %s
' \
	    "$(free_port)" "$1" >>"$cfg"
	sed -i "2a dns_trust_anchor = $ta" "$cfg"
}
printf '; none\nexample. IN NS ns.example.\n' >"$ta"
mx_route "mx:example.com"
expect_error "a trust anchor file without DS or DNSKEY" 3 "no DS or DNSKEY record"
printf 'test.\t3600\tIN\tDS\t12345 13 2 %s\n' \
    0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF >"$ta"
mx_route "mx:[192.0.2.1]:25"
expect_error "an address after mx:" 15 "not an address"
mx_route "mx:example.com, mx:example.net:2525 smtp.example.org:25"
sed -i '2a dns_resolver = 192.0.2.53@5353, 2001:db8::53\ndns_stub = test 127.0.0.1@25353\ndns_timeout = 5s' "$cfg"
out=$("$TLSPROXY" -t -c "$cfg" 2>&1) && rc=0 || rc=$?
if [ "$rc" = 0 ]; then pass "-t accepts mx: destinations and the dns_* keys"
else fail "-t accepts mx: destinations and the dns_* keys" "exit $rc: $out"; fi

# Every key is implemented now: the ones that were last (PROXY protocol,
# session cache, connection reuse) draw no "not implemented" warning, and
# -t exits 0; connection_reuse on a gateway is taken without a warning.
base "$cfg"
sed -i '9a proxy_protocol = v1\naccept_proxy = yes' "$cfg"
printf '\n[c1]\nmode = client\naccept = 127.0.0.1:%s\nconnect = 127.0.0.1:1\n' \
    "$(free_port)" >>"$cfg"
printf 'session_cache = yes\nconnection_reuse = yes\nconnection_cache_time = 3s\n' >>"$cfg"
printf '\n[g1]\nmode = gateway\naccept = 127.0.0.1:%s\nconnection_reuse = yes\n' \
    "$(free_port)" >>"$cfg"
out=$("$TLSPROXY" -t -c "$cfg" 2>&1) && rc=0 || rc=$?
if [ "$rc" = 0 ]; then pass "-t exits 0 with proxy_protocol, session_cache, connection_reuse"
else fail "-t exits 0 with proxy_protocol, session_cache, connection_reuse" "exit $rc: $out"; fi
if echo "$out" | grep -q "is not implemented yet\$"; then
	fail "no key is 'not implemented yet'" "$out"
else
	pass "no key is 'not implemented yet'"
fi
if echo "$out" | grep -q "connection_reuse"; then
	fail "connection_reuse on a gateway: no warning" "$out"
else
	pass "connection_reuse on a gateway: no warning"
fi

done_testing
