#!/bin/sh
# 95-privileges: as root, tlsproxy binds and reads its keys, then runs as
# `user`/`group`; mail still flows; a reload that can read its files works,
# one that cannot (a root-only key) keeps the old configuration; -t refuses
# an unknown user.
. "$(dirname "$0")/lib.sh"
require_root
require_tool /usr/sbin/smtp-sink
need_certs

sink=$(free_port)
in_port=$(free_port)
start_sink "$sink"
mkdir -p "$TP_TMP/keys"
cp "$CERTS/rsa.pem" "$CERTS/rsa.key" "$TP_TMP/keys/"
chgrp nogroup "$TP_TMP/keys/rsa.key"
chmod 0640 "$TP_TMP/keys/rsa.key"
cat >"$TP_TMP/p.ini" <<EOF
[global]
user = nobody
group = nogroup
shutdown_grace = 3s

[out]
mode = client
accept = 127.0.0.1:0
connect = 127.0.0.1:$in_port
security = encrypt

[in]
mode = server
accept = 127.0.0.1:$in_port
connect = 127.0.0.1:$sink
cert_file = keys/rsa.pem
key_file = keys/rsa.key
EOF
start_proxy "$TP_TMP/p.ini"
out_port=$(route_port out)

uid=$(awk '/^Uid:/ {print $2}' "/proc/$PROXY_PID/status")
gid=$(awk '/^Gid:/ {print $2}' "/proc/$PROXY_PID/status")
groups=$(awk '/^Groups:/ {$1=""; print}' "/proc/$PROXY_PID/status" | tr -d ' ')
check "runs as nobody (uid $uid)" [ "$uid" = "$(id -u nobody)" ]
check "runs as group nogroup (gid $gid)" [ "$gid" = "$(getent group nogroup | cut -d: -f3)" ]
check "no supplementary root group (groups: $groups)" [ "$groups" = "$gid" ]
if log_has 'running as user nobody'; then pass "log: running as user nobody"
else fail "log: running as user nobody" "$(cat "$PROXY_LOG")"; fi

swaks --server "127.0.0.1:$out_port" --to a@example.com --from b@example.com \
    >"$TP_TMP/swaks1.out" 2>&1 && rc=0 || rc=$?
check "mail flows after the privilege drop (swaks exit $rc)" [ "$rc" = 0 ]

# A reload whose key the service group can read: applied.
kill -HUP "$PROXY_PID"
if wait_for_log 'reloaded configuration' 5; then pass "reload as nobody works"
else fail "reload as nobody works" "$(tail -n 3 "$PROXY_LOG")"; fi

# A reload whose key only root can read: refused, the old one serves.
cp "$CERTS/rsa.key" "$TP_TMP/keys/root.key"
chmod 0600 "$TP_TMP/keys/root.key"
sed -i 's|key_file = keys/rsa.key|key_file = keys/root.key|' "$TP_TMP/p.ini"
kill -HUP "$PROXY_PID"
if wait_for_log 'reload failed, keeping the old configuration' 5; then
	pass "an unreadable key after the drop: reload refused"
else
	fail "an unreadable key after the drop: reload refused" "$(tail -n 3 "$PROXY_LOG")"
fi
swaks --server "127.0.0.1:$out_port" --to a@example.com --from b@example.com \
    >"$TP_TMP/swaks2.out" 2>&1 && rc=0 || rc=$?
check "the old configuration still serves (swaks exit $rc)" [ "$rc" = 0 ]

# -t: an unknown user is a FILE:LINE error.
printf '[global]\nuser = no-such-user-tp\n[r]\nmode = client\naccept = 127.0.0.1:0\nconnect = 127.0.0.1:25\n' >"$TP_TMP/bad.ini"
out=$("$TLSPROXY" -t -c "$TP_TMP/bad.ini" 2>&1) && rc=0 || rc=$?
check "-t: unknown user exits 1" [ "$rc" = 1 ]
if echo "$out" | grep -q 'bad.ini:2: user no-such-user-tp: no such user'; then
	pass "-t: unknown user reported at its line"
else fail "-t: unknown user reported at its line" "$out"; fi

done_testing
