#!/bin/sh
# run.sh [PLAIN [ASAN]] - every slow test (make check-slow), in this order:
#
#   testssl.sh        against PLAIN (default build): Debian's testssl.sh on
#                     the default server routes (about 2.5 min)
#   soak.sh           against ASAN (default build/asan; PLAIN when it has no
#                     tlsproxy): the fault soak, so that the sanitizers see
#                     every failure path (SOAK_SECONDS, default 60)
#   many-sessions.sh  against PLAIN: 8,000 idle TLS sessions, RSS per
#                     session (its RSS figures mean nothing under ASan)
#
# Each test's own output is shown, then one summary line per test, then the
# total "N passed, N failed"; exit status 1 if anything failed.  A test that
# dies without a result line counts as one failure.
set -u
root=$(cd "$(dirname "$0")/../.." && pwd)
plain=$(cd "${1:-$root/build}" 2>/dev/null && pwd) || plain=${1:-build}
asan=$(cd "${2:-$root/build/asan}" 2>/dev/null && pwd) || asan=
[ -n "$asan" ] && [ -x "$asan/tlsproxy" ] || asan=$plain

total_pass=0
total_fail=0
summary=
tmp=$(mktemp -d "${TMPDIR:-/tmp}/tlsproxy-slow-run.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
trap 'exit 130' INT TERM

# add NAME PASSED FAILED SECONDS NOTE
add() {
	total_pass=$((total_pass + $2))
	total_fail=$((total_fail + $3))
	summary="$summary$(printf '%-16s %s passed, %s failed (%ss)%s' "$1" "$2" "$3" "$4" "$5")
"
}

# testssl.sh has its own per-build wrapper ending in "N passed, N failed".
t0=$(date +%s)
sh "$root/tests/slow/testssl.sh" "$plain" 2>&1 | tee "$tmp/out"
el=$(($(date +%s) - t0))
res=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$tmp/out" | tail -n 1)
if [ -n "$res" ]; then
	add testssl "${res%% *}" "$(echo "$res" | sed 's/.*, \([0-9]*\) failed/\1/')" "$el" " [$plain]"
else
	add testssl 0 1 "$el" " [$plain]: no result line"
fi

# run_lib NAME BUILD SCRIPT: a lib.sh-style script ("RESULT passed=N failed=M")
run_lib() {
	echo "== $1 [$2]"
	t0=$(date +%s)
	TLSPROXY=$2/tlsproxy TP_BUILD=$2 sh "$3" >"$tmp/out" 2>&1
	rc=$?
	el=$(($(date +%s) - t0))
	cat "$tmp/out"
	res=$(grep '^RESULT passed=' "$tmp/out" | tail -n 1)
	if [ -z "$res" ]; then
		add "$1" 0 1 "$el" " [$2]: died without a RESULT line (exit status $rc)"
		return
	fi
	if echo "$res" | grep -q 'skipped='; then
		add "$1" 0 0 "$el" " [$2]: skipped: $(sed -n 's/^# SKIP [^:]*: //p' "$tmp/out")"
		return
	fi
	p=$(echo "$res" | sed 's/.*passed=\([0-9]*\).*/\1/')
	f=$(echo "$res" | sed 's/.*failed=\([0-9]*\).*/\1/')
	[ "$rc" != 0 ] && [ "$f" = 0 ] && f=1
	add "$1" "$p" "$f" "$el" " [$2]"
}

run_lib soak "$asan" "$root/tests/slow/soak.sh"
run_lib many-sessions "$plain" "$root/tests/slow/many-sessions.sh"

echo "== check-slow"
printf '%s' "$summary"
echo "$total_pass passed, $total_fail failed"
[ "$total_fail" = 0 ]
