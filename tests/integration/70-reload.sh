#!/bin/sh
# 70-reload: SIGHUP swaps the certificate for new sessions while an open
# session carries on; a broken config is refused and the old one stays.
. "$(dirname "$0")/lib.sh"
require_tool openssl /usr/sbin/smtp-sink
need_certs

port=$(free_port)
sink=$(free_port)
start_sink "$sink"
cfg=$TP_TMP/reload.ini
write_cfg() { # CERTNAME [EXTRA LINE]
	cat >"$cfg.new" <<EOF
[global]
shutdown_grace = 5s

[in]
mode = server
accept = 127.0.0.1:$port
connect = 127.0.0.1:$sink
cert_file = $CERTS/$1.pem
key_file = $CERTS/$1.key
${2:-}
EOF
	mv "$cfg.new" "$cfg"
}
# subject: the CN of the certificate a new client gets
subject() {
	openssl s_client -connect "127.0.0.1:$port" </dev/null 2>/dev/null |
	    openssl x509 -noout -subject 2>/dev/null | sed 's/.*CN *= *//'
}

write_cfg rsa
start_proxy "$cfg"
check "before reload: CN localhost" [ "$(subject)" = localhost ]

# An open session through to smtp-sink; it sends NOOP once "go" exists.
spawn "$TP_TMP/chat.out" "$PY" "$TP_PEERS/smtp_chat.py" --tls --timeout 30 \
    --wait-file "$TP_TMP/go" --send NOOP --send QUIT "$port"
chat=$BG_PID
wait_file "$TP_TMP/chat.out" 5 '^greeting: 220' ||
    bail "open session" "$(cat "$TP_TMP/chat.out")"

write_cfg rsa2
kill -HUP "$PROXY_PID"
if wait_for_log 'reloaded configuration' 5; then pass "log: reloaded configuration"
else fail "log: reloaded configuration" "not logged within 5 s"; fi
got=$(subject)
check "after reload: new session gets CN reloaded.test (got '$got')" [ "$got" = reloaded.test ]

touch "$TP_TMP/go"
wait_pid "$chat" 10
if grep -q '^reply: 250' "$TP_TMP/chat.out" && grep -q '^reply: 221' "$TP_TMP/chat.out"; then
	pass "the session opened before the reload still works"
else
	fail "the session opened before the reload still works" "$(tr '\n' '|' <"$TP_TMP/chat.out")"
fi

write_cfg rsa2 "bogus_key = 1"
kill -HUP "$PROXY_PID"
if wait_for_log 'reload failed' 5; then pass "log: reload failed on a bad config"
else fail "log: reload failed on a bad config" "not logged within 5 s"; fi
check "the proxy is still running" alive "$PROXY_PID"
got=$(subject)
check "after a failed reload: still CN reloaded.test (got '$got')" [ "$got" = reloaded.test ]

done_testing
