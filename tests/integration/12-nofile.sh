#!/bin/sh
# 12-nofile: the open files limit.  At start the daemon raises its soft
# RLIMIT_NOFILE to the hard limit, before the listeners and workers, and
# logs the figure ("open files limit N (raised from M)").  -t raises
# nothing; it warns (exit 0) when max_connections, two descriptors per
# session plus the listeners and a margin, does not fit in the hard limit,
# as "FILE:LINE: warning: ..." at the max_connections line (global or
# route), and says nothing when it fits.
. "$(dirname "$0")/lib.sh"
require_tool prlimit

hard=$(ulimit -H -n)
[ "$hard" = unlimited ] && hard=1048576
# the limits used here must be within the hard limit (raising it needs root)
lim=4096
[ "$hard" -lt "$lim" ] && lim=$hard
[ "$lim" -ge 1024 ] || skip_all "hard open files limit $hard is below 1024"
soft=256

# cfg FILE GLOBAL-LINES ROUTE-LINES: one client route; the route's own
# lines start at line 8 when GLOBAL-LINES is one line
cfg() {
	cat >"$1" <<EOF
[global]
shutdown_grace = 1s
$2

[r]
mode = client
accept = 127.0.0.1:0
$3
connect = 127.0.0.1:$(free_port)
EOF
}

# ---- the daemon: soft limit raised to the hard one, and logged
cfg "$TP_TMP/run.ini" "max_connections = 100" ""
REAL=$TLSPROXY
cat >"$TP_TMP/limited.sh" <<EOF
#!/bin/sh
exec prlimit --nofile=$soft:$lim -- "$REAL" "\$@"
EOF
chmod +x "$TP_TMP/limited.sh"
TLSPROXY=$TP_TMP/limited.sh
start_proxy "$TP_TMP/run.ini"
TLSPROXY=$REAL
check "started under a soft limit of $soft (hard $lim): logs 'open files limit $lim (raised from $soft)'" \
    log_has ": open files limit $lim \\(raised from $soft\\)\$"
got=$(awk '/^Max open files/ { print $4 " " $5 }' "/proc/$PROXY_PID/limits")
check "the running daemon's soft limit is $lim (/proc/PID/limits: $got)" [ "$got" = "$lim $lim" ]
n1=$(grep -n ': open files limit ' "$PROXY_LOG" | head -n 1 | cut -d: -f1)
n2=$(grep -n ': listening on ' "$PROXY_LOG" | head -n 1 | cut -d: -f1)
n3=$(grep -n ': started: ' "$PROXY_LOG" | head -n 1 | cut -d: -f1)
if [ "${n1:-999}" -lt "${n2:-0}" ] && [ "${n2:-999}" -lt "${n3:-0}" ]; then
	pass "the limit is raised before the listeners and workers (log lines $n1 < $n2 < $n3)"
else fail "the limit is raised before the listeners and workers" "log lines '$n1' '$n2' '$n3'"; fi
expect_no_match "max_connections = 100 fits: no warning at start" "$PROXY_LOG" 'warning: max_connections'
# one session still works
dialog one "$(route_port r)" r eof
expect_reply_match "a session is served" "$DLG" "" '^421 4\.4\.1 '
stop_proxy
check "it stops cleanly" [ "$STOP_RC" = 0 ]

# ---- at start, max_connections that does not fit is a warning, not a stop
cfg "$TP_TMP/big.ini" "max_connections = $lim" ""
TLSPROXY=$TP_TMP/limited.sh
start_proxy "$TP_TMP/big.ini"
TLSPROXY=$REAL
check "max_connections = $lim over a limit of $lim: warned at start (big.ini:3)" \
    log_has "big\\.ini:3: warning: max_connections = $lim: .*open files limit $lim"
check "... and it runs" log_has ': started: '
stop_proxy

# ---- -t under a 20000 limit
if prlimit --nofile=1024:20000 true 2>/dev/null; then
	# tcheck NAME FILE: -t under soft 1024, hard 20000; OUT, RC
	tcheck() {
		OUT=$(prlimit --nofile=1024:20000 -- "$TLSPROXY" -t -c "$2" 2>&1) && RC=0 || RC=$?
		check "$1: -t exits 0" [ "$RC" = 0 ]
	}
	cfg "$TP_TMP/t.ini" "max_connections = 100000" ""
	tcheck "global max_connections = 100000" "$TP_TMP/t.ini"
	if echo "$OUT" | grep -Eq '^[^ ]*t\.ini:3: warning: max_connections = 100000: .*open files limit 20000'; then
		pass "global max_connections = 100000: 't.ini:3: warning: ... open files limit 20000'"
	else fail "global max_connections = 100000: 't.ini:3: warning: ...'" "output: $OUT"; fi
	check "... and the configuration is valid" eval 'echo "$OUT" | grep -q "configuration is valid"'

	cfg "$TP_TMP/t.ini" "max_connections = 200000" "max_connections = 100000"
	tcheck "route max_connections = 100000" "$TP_TMP/t.ini"
	if echo "$OUT" | grep -Eq '^[^ ]*t\.ini:8: warning: max_connections = 100000: .*open files limit 20000'; then
		pass "route max_connections = 100000: 't.ini:8: warning: ...' (the route's line)"
	else fail "route max_connections = 100000: 't.ini:8: warning: ...'" "output: $OUT"; fi
	check "... one warning about it, not two" [ "$(echo "$OUT" | grep -c 'warning: max_connections')" = 1 ]

	# the soft limit of 1024 does not matter: the daemon raises it
	cfg "$TP_TMP/t.ini" "max_connections = 5000" ""
	tcheck "max_connections = 5000 (over the soft 1024, within the hard 20000)" "$TP_TMP/t.ini"
	if echo "$OUT" | grep -q 'warning'; then fail "max_connections = 5000: no warning" "output: $OUT"
	else pass "max_connections = 5000: no warning"; fi

	cfg "$TP_TMP/t.ini" "max_connections = 100" "max_connections = 50"
	tcheck "small max_connections" "$TP_TMP/t.ini"
	if echo "$OUT" | grep -q 'warning'; then fail "small max_connections: no warning" "output: $OUT"
	else pass "small max_connections: no warning"; fi
else
	note "cannot set a hard limit of 20000 here: -t checks skipped"
fi

done_testing
