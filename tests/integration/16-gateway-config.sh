#!/bin/sh
# 16-gateway-config: a gateway route's configuration (spec 3, 4.9): -t
# checks its policy_file (a Postfix smtp_tls_policy_maps source) and
# prints each problem as POLICYFILE:LINE, an unreadable file at the INI
# line that names it; keys of other modes are refused at their line; the
# daemon reads the file again on SIGHUP, and a broken file keeps the
# running configuration.
. "$(dirname "$0")/lib.sh"

dir=$TP_TMP/etc
mkdir -p "$dir"
cfg=$dir/gw.ini
pol=$dir/tls_policy
out=$TP_TMP/t.out
# a trust anchor of our own, and a forwarder nothing asks (no mail is
# sent here)
printf 'test. 3600 IN DS 12345 13 2 %s\n' \
    0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF \
    >"$dir/root.key"
port=$(free_port)
write_cfg() { # [EXTRA LINES]
	cat >"$cfg" <<EOF
[global]
shutdown_grace = 2s
dns_trust_anchor = root.key
dns_resolver = 127.0.0.1@9

[outbound]
mode = gateway
accept = 127.0.0.1:$port
policy_file = tls_policy
${1:-}
EOF
}
# tcheck NAME WANT: tlsproxy -t exits WANT, its output in $out
tcheck() {
	_rc=0
	"$TLSPROXY" -t -c "$cfg" >"$out" 2>&1 || _rc=$?
	if [ "$_rc" = "$2" ]; then pass "$1: -t exits $2"
	else fail "$1: -t exits $2" "exit $_rc: $(oneline "$out")"; fi
	check_sanitizers "$out"
}

write_cfg
cat >"$pol" <<'EOF'
# partners
partner.example   secure
    match=nexthop:dot-nexthop:mx.provider.example
.partner.example  verify
[relay.example.net]:587 encrypt
legacy.example    may connection_reuse=yes
EOF
tcheck "good policy file" 0
expect_line "a harmless Postfix attribute is a warning" "$out" \
    "$pol:6: warning: legacy.example: attribute \"connection_reuse\" is ignored (the route's connection_reuse applies)"
expect_match "valid" "$out" "configuration is valid \\(1 route"

cat >"$pol" <<'EOF'
partner.example   secure
    match=nexthop
    ciphers=strong
# comment
partner.example   may
other.example     sure
EOF
tcheck "broken policy file" 1
expect_line "an attribute on a continuation line: its line" "$out" \
    "$pol:3: partner.example: ciphers=strong: expected high, medium or null"
expect_line "a duplicate key: at the later line" "$out" \
    "$pol:5: duplicate key partner.example (first at line 1)"
expect_line "an unknown level" "$out" \
    "$pol:6: other.example: unknown security level \"sure\" (none, may, encrypt, fingerprint, verify, secure, dane or dane-only)"

rm -f "$pol"
tcheck "missing policy file" 1
expect_line "at the line of policy_file" "$out" \
    "$cfg:9: policy_file tls_policy: cannot read: No such file or directory"

printf 'example.com secure\n' >"$pol"
write_cfg "connect = 192.0.2.1:25
servername = mx.example.com"
tcheck "keys of other modes" 1
expect_line "connect" "$out" \
    "$cfg:10: connect applies to client and server routes only (a gateway delivers to each recipient domain's MX hosts; port sets their port)"
expect_line "servername" "$out" \
    "$cfg:11: servername applies to client routes only (on a gateway, set it per destination in policy_file)"

# SIGHUP re-reads the policy file; a broken one keeps the running config
write_cfg
start_proxy "$cfg"
printf 'example.com secure\nexample.com may\n' >"$pol"
kill -HUP "$PROXY_PID"
if wait_for_log 'reload failed' 5; then pass "reload refused with a broken policy file"
else fail "reload refused with a broken policy file" "$(tail -n 3 "$PROXY_LOG" | tr '\n' '|')"; fi
if log_has "tls_policy:2: duplicate key example.com \\(first at line 1\\)"; then
	pass "the log names the policy file's line"
else fail "the log names the policy file's line" "$(tail -n 3 "$PROXY_LOG" | tr '\n' '|')"; fi
check "still running" alive "$PROXY_PID"
printf 'example.com secure\n.example.com may\n' >"$pol"
kill -HUP "$PROXY_PID"
if wait_for_log 'reloaded configuration' 5; then pass "reload with the fixed policy file"
else fail "reload with the fixed policy file" "$(tail -n 3 "$PROXY_LOG" | tr '\n' '|')"; fi
stop_proxy
check "stops cleanly (exit $STOP_RC)" [ "$STOP_RC" = 0 ]
check_sanitizers "$PROXY_LOG"

done_testing
