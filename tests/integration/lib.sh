# lib.sh - shared harness for the tlsproxy integration tests (POSIX sh).
#
# Sourced by each tests/integration/NN-name.sh.  Environment:
#   TLSPROXY     the binary under test (default: build/tlsproxy)
#   TP_BUILD     its build directory (default: dirname of TLSPROXY)
#   TP_CERTS     a directory made by tests/certs/mkcerts.sh (default: made
#                in the test's own tmpdir)
#   TP_TIMEOUT   seconds the whole script may take (default 60)
#   TP_KEEP=1    keep the tmpdir for post-mortem
#   PY           the python3 for the peers (default /usr/bin/python3)
#
# Output: "ok - NAME" / "not ok - NAME: reason" per assertion, then
# "RESULT passed=N failed=M"; exit status 1 if anything failed.

set -eu

TP_ROOT=$(cd "$(dirname "$0")/../.." && pwd)
TP_PEERS=$TP_ROOT/tests/peers
TP_NAME=$(basename "$0" .sh)
: "${TP_TIMEOUT:=60}"

# Per-test timeout: re-run this script under timeout(1), which signals the
# whole process group (the shell and everything it started) when time is up.
if [ -z "${TP_WATCHDOG:-}" ] && command -v timeout >/dev/null 2>&1; then
	TP_WATCHDOG=1 exec timeout -k 20 "$TP_TIMEOUT" sh "$0" "$@"
fi

# The system python starts in 30 ms; a pyenv shim takes ten times that.
if [ -z "${PY:-}" ]; then
	PY=python3
	[ -x /usr/bin/python3 ] && PY=/usr/bin/python3
fi

: "${TLSPROXY:=$TP_ROOT/build/tlsproxy}"
: "${TP_BUILD:=$(dirname "$TLSPROXY")}"
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"

TP_PASSED=0
TP_FAILED=0
TP_DONE=0
TP_PIDS=
TP_NPROXY=0
TP_T0=$(date +%s)
TP_TMP=$(mktemp -d "${TMPDIR:-/tmp}/tlsproxy-$TP_NAME.XXXXXX")
chmod 755 "$TP_TMP"		# smtp-sink runs as nobody and writes below it
: >"$TP_TMP/.proxies"		# "PID LOG" of every proxy not yet stopped
: >"$TP_TMP/.logs"		# every proxy log, for the sanitizer check

# Slower sanitizer builds get a little more slack in timing assertions.
TP_SLACK=0
if grep -q __asan_init "$TLSPROXY" 2>/dev/null; then TP_SLACK=2; fi

# ---------------------------------------------------------------- results

pass() {
	TP_PASSED=$((TP_PASSED + 1))
	printf 'ok - %s\n' "$1"
}

fail() {
	TP_FAILED=$((TP_FAILED + 1))
	printf 'not ok - %s: %s\n' "$1" "$2"
}

# check NAME CMD...: pass if CMD succeeds
check() {
	_n=$1
	shift
	if "$@"; then pass "$_n"; else fail "$_n" "failed: $*"; fi
}

# bail NAME MESSAGE: record a failure and end the test now
bail() {
	fail "$1" "$2"
	exit 1
}

note() { printf '# %s\n' "$*"; }

# skip_all REASON: this test cannot run here (a tool is missing)
skip_all() {
	echo "# SKIP $TP_NAME: $1"
	echo "RESULT passed=0 failed=0 skipped=1"
	TP_DONE=skip
	exit 0
}

# require_tool TOOL...: skip the test unless every tool is installed
require_tool() {
	for _t in "$@"; do
		command -v "$_t" >/dev/null 2>&1 || skip_all "$_t not installed"
	done
}

# done_testing: the last line of every test script
done_testing() { TP_DONE=1; }

# ---------------------------------------------------------------- time

now_ms() { echo $(($(date +%s%N) / 1000000)); }

# ms_to_s MS: "1.234"
ms_to_s() { printf '%d.%03d' $(($1 / 1000)) $(($1 % 1000)); }

# ---------------------------------------------------------------- processes

# alive PID: the process exists and is not a zombie
alive() {
	[ -r "/proc/$1/stat" ] || return 1
	_st=$(sed 's/^.*) //' "/proc/$1/stat" 2>/dev/null | cut -c1) || return 1
	[ -n "$_st" ] && [ "$_st" != Z ] && [ "$_st" != X ]
}

# wait_pid PID SECS: wait for a child to exit; WAIT_RC is its status,
# or 124 (and the child is still running) after SECS seconds.
wait_pid() {
	_i=0
	while alive "$1" && [ $_i -lt $(($2 * 10)) ]; do
		sleep 0.1
		_i=$((_i + 1))
	done
	if alive "$1"; then
		WAIT_RC=124
		return 0
	fi
	WAIT_RC=0
	wait "$1" 2>/dev/null || WAIT_RC=$?
}

# spawn OUTFILE CMD...: run CMD in the background (stdout+stderr to OUTFILE);
# the cleanup kills it.  Sets BG_PID.
spawn() {
	_out=$1
	shift
	"$@" >"$_out" 2>&1 &
	BG_PID=$!
	TP_PIDS="$TP_PIDS $BG_PID"
}

# kill_pid PID: TERM, wait up to 3 s, then KILL
kill_pid() {
	kill "$1" 2>/dev/null || true
	wait_pid "$1" 3
	if [ "$WAIT_RC" = 124 ]; then
		kill -9 "$1" 2>/dev/null || true
		wait "$1" 2>/dev/null || true
	fi
}

# ---------------------------------------------------------------- ports, files

free_port() { "$PY" "$TP_PEERS/util.py" free-port; }

# wait_port PORT [SECS]: until 127.0.0.1:PORT accepts connections
wait_port() { "$PY" "$TP_PEERS/util.py" wait-port "$1" "${2:-5}"; }

# wait_file FILE SECS [PATTERN]: until FILE exists (and contains PATTERN, ERE)
wait_file() {
	_i=0
	while [ $_i -lt $(($2 * 10)) ]; do
		if [ -e "$1" ] && { [ -z "${3:-}" ] || grep -Eq -e "$3" "$1"; }; then
			return 0
		fi
		sleep 0.1
		_i=$((_i + 1))
	done
	return 1
}

# need_certs: sets CERTS to a directory of test certificates
need_certs() {
	if [ -n "${TP_CERTS:-}" ] && [ -s "$TP_CERTS/rsa2.key" ]; then
		CERTS=$TP_CERTS
	else
		require_tool openssl
		CERTS=$TP_TMP/certs
		sh "$TP_ROOT/tests/certs/mkcerts.sh" "$CERTS" ||
		    bail "mkcerts" "could not make test certificates"
	fi
}

# ---------------------------------------------------------------- peers

# start_sink PORT: smtp-sink on 127.0.0.1:PORT that dumps every message into
# its own file in SINK_DIR (count them with sink_count).
start_sink() {
	SINK_DIR=$TP_TMP/sink-$1
	mkdir -p "$SINK_DIR"
	_user=
	if [ "$(id -u)" = 0 ]; then
		chown nobody "$SINK_DIR"
		_user="-u nobody"
	fi
	# shellcheck disable=SC2086
	spawn "$TP_TMP/sink-$1.log" /usr/sbin/smtp-sink $_user \
	    -d "$SINK_DIR/%M." "127.0.0.1:$1" 100
	wait_port "$1" || bail "start_sink" "smtp-sink did not listen on port $1"
}

# sink_count [DIR]: number of messages the sink received
sink_count() { find "${1:-$SINK_DIR}" -type f | wc -l | tr -d ' '; }

# ---------------------------------------------------------------- DNS lab

# start_dns DIR: serve the offline DNSSEC lab that tests/dns/mkzones.sh made
# in DIR (nsd on 127.0.0.1, the port from DIR/lab.env) until the cleanup;
# the test ends unless nsd answers within 5 s.  Sets DNS_PID.
start_dns() {
	_port=$(sed -n 's/^LAB_DNSPORT=//p' "$1/lab.env")
	_nsd=$(command -v nsd || echo /usr/sbin/nsd)
	spawn "$1/run/nsd.out" "$_nsd" -c "$1/nsd.conf" -d
	DNS_PID=$BG_PID
	"$PY" "$TP_ROOT/tests/dns/dnsprobe.py" "$_port" 5 >"$1/run/probe.out" 2>&1 ||
	    bail "start_dns" "nsd does not answer on 127.0.0.1:$_port: $(cat "$1/run/probe.out" "$1/run/nsd.out" | tr '\n' ' ')"
}

# start_lab: the offline DNSSEC lab (tests/dns/mkzones.sh, signed by the
# test CA's keys) served by nsd; sets DNSPORT, UP (the port its TLSA records
# name: the upstreams listen there), LAB and the lab.env variables (LAB_*).
start_lab() {
	DNSPORT=$(free_port)
	UP=$(free_port)
	LAB=$TP_TMP/lab
	sh "$TP_ROOT/tests/dns/mkzones.sh" "$LAB" "$DNSPORT" "$UP" \
	    "$CERTS/ca.key" "$CERTS/ca.pem" >"$TP_TMP/mkzones.out" 2>&1 ||
	    bail "mkzones" "$(tail -n 5 "$TP_TMP/mkzones.out" | tr '\n' ' ')"
	. "$LAB/lab.env"
	start_dns "$LAB"
}

# ---------------------------------------------------------------- the proxy

# spawn_proxy CONFIG [ARGS...]: start the proxy (log in PROXY_LOG, pid in
# PROXY_PID) without waiting for it; the cleanup stops it.
spawn_proxy() {
	_cfg=$1
	shift
	TP_NPROXY=$((TP_NPROXY + 1))
	PROXY_LOG=$TP_TMP/proxy$TP_NPROXY.log
	"$TLSPROXY" -c "$_cfg" "$@" >"$PROXY_LOG" 2>&1 &
	PROXY_PID=$!
	echo "$PROXY_PID $PROXY_LOG" >>"$TP_TMP/.proxies"
	echo "$PROXY_LOG" >>"$TP_TMP/.logs"
}

# start_proxy CONFIG [ARGS...]: spawn_proxy, then wait up to 5 s until every
# route logged "listening on"; the test ends if one does not.
start_proxy() {
	spawn_proxy "$@"
	_cfg=$1
	_routes=$(sed -n 's/^[[:space:]]*\[\([^]]*\)\].*/\1/p' "$_cfg" |
	    grep -v '^global$' || true)
	_i=0
	while :; do
		_missing=
		for _r in $_routes; do
			grep -q ": $_r: listening on " "$PROXY_LOG" ||
			    _missing="$_missing $_r"
		done
		[ -z "$_missing" ] && return 0
		if ! alive "$PROXY_PID"; then
			bail "start_proxy" "proxy exited at start: $(tail -n 3 "$PROXY_LOG" | tr '\n' ' ')"
		fi
		if [ $_i -ge 50 ]; then
			bail "start_proxy" "no 'listening on' within 5 s for:$_missing"
		fi
		sleep 0.1
		_i=$((_i + 1))
	done
}

# route_port ROUTE [LOG]: the port ROUTE listens on, from the log
route_port() {
	sed -n "s/.*: $1: listening on .*:\([0-9][0-9]*\)\$/\1/p" \
	    "${2:-$PROXY_LOG}" | tail -n 1
}

# wait_for_log PATTERN SECS [LOG]: until LOG (default PROXY_LOG) has a line
# matching the extended regular expression PATTERN
wait_for_log() { wait_file "${3:-$PROXY_LOG}" "$2" "$1"; }

# log_has PATTERN [LOG]: LOG has a line matching PATTERN (ERE)
log_has() { grep -Eq -e "$1" "${2:-$PROXY_LOG}"; }

# log_count PATTERN [LOG]: number of lines matching PATTERN (ERE)
log_count() { grep -Ec -e "$1" "${2:-$PROXY_LOG}" || true; }

# wait_log_count PATTERN N SECS [LOG]: until at least N lines match
wait_log_count() {
	_i=0
	while [ "$(log_count "$1" "${4:-}")" -lt "$2" ] && [ $_i -lt $(($3 * 10)) ]; do
		sleep 0.1
		_i=$((_i + 1))
	done
	[ "$(log_count "$1" "${4:-}")" -ge "$2" ]
}

# stop_proxy [PID [SECS]]: SIGTERM, then reap_proxy
stop_proxy() {
	_t=$(now_ms)
	kill -TERM "${1:-$PROXY_PID}" 2>/dev/null || true
	reap_proxy "${1:-$PROXY_PID}" "${2:-15}"
	STOP_MS=$(($(now_ms) - _t))
}

# reap_proxy PID SECS: wait up to SECS for the proxy to exit (KILL after).
# Sets STOP_RC: its exit status, or 124 if it had to be killed.
reap_proxy() {
	wait_pid "$1" "$2"
	STOP_RC=$WAIT_RC
	if [ "$STOP_RC" = 124 ]; then
		kill -9 "$1" 2>/dev/null || true
		wait "$1" 2>/dev/null || true
	fi
	grep -v "^$1 " "$TP_TMP/.proxies" >"$TP_TMP/.proxies.new" || true
	mv "$TP_TMP/.proxies.new" "$TP_TMP/.proxies"
}

# check_sanitizers LOG: fail if the log has an ASan/UBSan/LSan report
check_sanitizers() {
	_hit=$(grep -E -m 1 'ERROR: AddressSanitizer|runtime error:|LeakSanitizer' "$1" || true)
	if [ -n "$_hit" ]; then
		fail "sanitizers ($(basename "$1"))" "$_hit"
	fi
}

# ---------------------------------------------------------------- SMTP dialogues

# start_smtpd NAME PORT [OPTION...]: tests/peers/smtp_server.py, a scriptable
# SMTP server, on 127.0.0.1:PORT; its event log is $TP_TMP/NAME.log (format
# in the script: "N C: LINE", "N T: LINE", "N body: LINE", "N tls ok ...").
start_smtpd() {
	_n=$1
	_p=$2
	shift 2
	: >"$TP_TMP/$_n.log"
	spawn "$TP_TMP/$_n.out" "$PY" "$TP_PEERS/smtp_server.py" "$_p" \
	    "$TP_TMP/$_n.log" "$@"
	wait_file "$TP_TMP/$_n.out" 5 '^ready' ||
	    bail "start_smtpd $_n" "not ready: $(tr '\n' ' ' <"$TP_TMP/$_n.out")"
}

# dialog NAME PORT [OPTION...] STEP...: one scripted SMTP client session
# (tests/peers/smtp_dialog.py); the transcript is in DLG=$TP_TMP/NAME.dlg.
dialog() {
	_n=$1
	shift
	DLG=$TP_TMP/$_n.dlg
	timeout -k 2 40 "$PY" "$TP_PEERS/smtp_dialog.py" "$@" >"$DLG" 2>&1 || true
}

# spawn_dialog NAME PORT [OPTION...] STEP...: the same in the background
# (BG_PID; the cleanup kills it); the transcript is in $TP_TMP/NAME.dlg.
spawn_dialog() {
	_n=$1
	shift
	spawn "$TP_TMP/$_n.dlg" "$PY" "$TP_PEERS/smtp_dialog.py" "$@"
}

# oneline FILE: FILE on one line ("|" between lines), at most 700 characters
oneline() { tr '\n' '|' <"$1" | cut -c 1-700; }

# reply_to FILE CMD [N]: the reply (its "S:" lines without the prefix, joined
# with "|") that follows the Nth (default first) "C: CMD" line of a dialog
# transcript.  CMD "" means the greeting (the first reply, after any TLS
# handshake or PROXY header the client started with).
reply_to() {
	TP_CMD=$2 awk -v nth="${3:-1}" '
		BEGIN { cmd = ENVIRON["TP_CMD"] }
		cmd == "" && /^local: / { on = 1; next }
		cmd == "" && on && out == "" && /^(TLS: |C: <PROXY )/ { next }
		!on && cmd != "" && $0 == "C: " cmd { if (++seen == nth) on = 1; next }
		on && /^S: / { out = out (out == "" ? "" : "|") substr($0, 4); next }
		on { exit }
		END { print out }' "$1"
}

# expect_reply NAME FILE CMD REPLY: the reply to CMD is exactly REPLY
# (lines joined with "|"; CMD "" is the greeting)
expect_reply() {
	_got=$(reply_to "$2" "$3")
	if [ "$_got" = "$4" ]; then pass "$1"
	else fail "$1" "expected '$4', got '$_got' [$(oneline "$2")]"; fi
}

# expect_reply_match NAME FILE CMD ERE: the reply to CMD matches ERE
expect_reply_match() {
	_got=$(reply_to "$2" "$3")
	if printf '%s\n' "$_got" | grep -Eq -e "$4"; then pass "$1"
	else fail "$1" "expected /$4/, got '$_got' [$(oneline "$2")]"; fi
}

# expect_line NAME FILE LINE: FILE has exactly this line
expect_line() {
	if grep -Fxq -e "$3" "$2"; then pass "$1"
	else fail "$1" "no line '$3' in [$(oneline "$2")]"; fi
}

# expect_match NAME FILE ERE / expect_no_match NAME FILE ERE
expect_match() {
	if grep -Eq -e "$3" "$2"; then pass "$1"
	else fail "$1" "no line matching /$3/ in [$(oneline "$2")]"; fi
}
expect_no_match() {
	_hit=$(grep -E -m 1 -e "$3" "$2" || true)
	if [ -z "$_hit" ]; then pass "$1"
	else fail "$1" "unexpected line '$_hit'"; fi
}

# ---------------------------------------------------------------- Postfix

TP_POSTFIX=

# require_root: skip the test unless it runs as root (Postfix needs it)
require_root() {
	[ "$(id -u)" = 0 ] || skip_all "needs root (private Postfix instances)"
}

# pf_init NAME: write a private Postfix instance below $TP_TMP/NAME: config
# directory PF_DIR=$TP_TMP/NAME/conf, its own queue and data directories, log
# file $TP_TMP/NAME/maillog (postlogd), loopback only, every message that is
# not relayed discarded.  master.cf has the internal services only; add
# listeners with pf_master and settings with pf_main before pf_start.
pf_init() {
	_d=$TP_TMP/$1
	PF_DIR=$_d/conf
	mkdir -p "$PF_DIR" "$_d/queue" "$_d/data"
	chown postfix "$_d/data"
	cat >"$PF_DIR/main.cf" <<EOF
compatibility_level = 3.6
queue_directory = $_d/queue
data_directory = $_d/data
mail_owner = postfix
setgid_group = postdrop
myhostname = $1.test
mydomain = test
myorigin = \$myhostname
mydestination =
inet_interfaces = loopback-only
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
relay_domains = example.com
smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination
default_transport = discard
relay_transport = discard
local_transport = discard
maillog_file = $_d/maillog
maillog_file_prefixes = $TP_TMP
syslog_name = tp-$1
smtpd_client_port_logging = yes
smtpd_peername_lookup = no
alias_maps =
alias_database =
biff = no
smtp_tls_security_level = none
EOF
	cat >"$PF_DIR/master.cf" <<EOF
pickup    unix n - n 60 1 pickup
cleanup   unix n - n - 0 cleanup
qmgr      unix n - n 300 1 qmgr
rewrite   unix - - n - - trivial-rewrite
bounce    unix - - n - 0 bounce
defer     unix - - n - 0 bounce
trace     unix - - n - 0 bounce
error     unix - - n - - error
retry     unix - - n - - error
discard   unix - - n - - discard
smtp      unix - - n - - smtp
anvil     unix - - n - 1 anvil
scache    unix - - n - 1 scache
proxymap  unix - - n - - proxymap
postlog   unix-dgram n - n - 1 postlogd
tlsmgr    unix - - n 1000? 1 tlsmgr
EOF
}

# pf_main DIR NAME=VALUE...: set main.cf parameters
pf_main() {
	_d=$1
	shift
	postconf -c "$_d" -e "$@"
}

# pf_master DIR LINE: append a master.cf line (e.g. an smtpd listener)
pf_master() { printf '%s\n' "$2" >>"$1/master.cf"; }

# pf_log DIR: the instance's log file
pf_log() { echo "$(dirname "$1")/maillog"; }

# pf_start DIR: start the instance (the cleanup stops it)
pf_start() {
	TP_POSTFIX="$TP_POSTFIX $1"
	postfix -c "$1" start >"$(dirname "$1")/start.out" 2>&1 ||
	    bail "pf_start" "postfix -c $1 start: $(tail -n 5 "$(dirname "$1")/start.out" | tr '\n' ' ')"
}

# pf_stop DIR: stop the instance and wait until its master has exited
pf_stop() {
	_pf=$(tr -d ' \n' <"$(dirname "$1")/queue/pid/master.pid" 2>/dev/null || true)
	postfix -c "$1" stop >/dev/null 2>&1 || true
	if [ -n "$_pf" ]; then
		_i=0
		while kill -0 "$_pf" 2>/dev/null && [ $_i -lt 50 ]; do
			sleep 0.1
			_i=$((_i + 1))
		done
		if kill -0 "$_pf" 2>/dev/null; then kill -9 "$_pf" 2>/dev/null || true; fi
	fi
	_left=
	for _x in $TP_POSTFIX; do [ "$_x" = "$1" ] || _left="$_left $_x"; done
	TP_POSTFIX=$_left
}

# ---------------------------------------------------------------- cleanup

tp_cleanup() {
	_rc=$?
	set +e
	trap - EXIT INT TERM HUP
	for _d in $TP_POSTFIX; do pf_stop "$_d"; done
	if [ "$TP_DONE" = skip ]; then
		rm -rf "$TP_TMP"
		exit 0
	fi
	# Peers first, so that the proxies have no sessions left to drain.
	for _p in $TP_PIDS; do kill "$_p" 2>/dev/null; done
	for _p in $TP_PIDS; do kill_pid "$_p"; done
	while read -r _p _log; do
		stop_proxy "$_p" 15
		case $STOP_RC in
		0) ;;
		124) fail "proxy stops on SIGTERM" "pid $_p still running 15 s after SIGTERM" ;;
		*) fail "proxy stops on SIGTERM" "exit status $STOP_RC ($(basename "$_log"))" ;;
		esac
	done <"$TP_TMP/.proxies"
	while read -r _log; do check_sanitizers "$_log"; done <"$TP_TMP/.logs"
	[ "$TP_DONE" = 0 ] && fail "$TP_NAME" "script ended early (status $_rc)"
	if [ "$TP_FAILED" -gt 0 ]; then
		while read -r _log; do
			echo "# --- last lines of $(basename "$_log"):"
			tail -n 25 "$_log" | sed 's/^/#   /'
		done <"$TP_TMP/.logs"
	fi
	if [ "${TP_KEEP:-0}" = 1 ]; then
		echo "# kept $TP_TMP"
	else
		rm -rf "$TP_TMP"
	fi
	echo "# $TP_NAME took $(($(date +%s) - TP_T0)) s"
	echo "RESULT passed=$TP_PASSED failed=$TP_FAILED"
	[ "$TP_FAILED" = 0 ] && exit 0
	exit 1
}

tp_signal() {
	fail "$TP_NAME" "interrupted (timeout after ${TP_TIMEOUT}s?)"
	TP_DONE=signal
	exit 1
}

trap tp_cleanup EXIT
trap tp_signal INT TERM HUP

command -v "$PY" >/dev/null 2>&1 || skip_all "python3 not installed"
if [ ! -x "$TLSPROXY" ]; then
	bail "$TP_NAME" "$TLSPROXY is not an executable (build it first)"
fi
