#!/bin/sh
# run.sh BUILDDIR... - every unit and integration test against each build.
#
# For each BUILDDIR: the cmocka binaries BUILDDIR/tests/test_*, then every
# tests/integration/[0-9]*.sh with TLSPROXY=BUILDDIR/tlsproxy.  One line per
# binary or script; the outputs of failures are shown.  Ends with the line
# "N passed, N failed"; exit status 1 if anything failed.
set -u
root=$(cd "$(dirname "$0")/.." && pwd)
[ $# -gt 0 ] || set -- build

total_pass=0
total_fail=0
tmp=$(mktemp -d "${TMPDIR:-/tmp}/tlsproxy-run.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
trap 'exit 130' INT TERM

# Certificates are made once and shared by every test.
if sh "$root/tests/certs/mkcerts.sh" "$tmp/certs"; then
	export TP_CERTS="$tmp/certs"
fi

sanitized() { grep -q __asan_init "$1" 2>/dev/null; }

# show FILE: the output of a failed test, indented
show() { sed 's/^/    /' "$1"; }

run_unit() { # BIN
	name=$(basename "$1")
	out=$tmp/unit.out
	timeout -k 5 120 "$1" >"$out" 2>&1
	rc=$?
	p=$(sed -n 's/^\[  PASSED  \] \([0-9]*\) test.*/\1/p' "$out" | awk '{ s += $1 } END { print s + 0 }')
	f=$(sed -n 's/^\[  FAILED  \] \([0-9]*\) test.*/\1/p' "$out" | awk '{ s += $1 } END { print s + 0 }')
	why=
	if [ "$rc" != 0 ] && [ "$f" = 0 ]; then
		f=1
		why=" (exit status $rc)"
	elif grep -Eq 'ERROR: AddressSanitizer|runtime error:|LeakSanitizer' "$out" && [ "$f" = 0 ]; then
		f=1
		why=" (sanitizer report)"
	fi
	echo "unit        $name: $p passed, $f failed$why"
	[ "$f" = 0 ] || show "$out"
	total_pass=$((total_pass + p))
	total_fail=$((total_fail + f))
}

run_integration() { # SCRIPT
	name=$(basename "$1" .sh)
	out=$tmp/int.out
	t0=$(date +%s)
	timeout -k 10 150 sh "$1" >"$out" 2>&1
	rc=$?
	el=$(($(date +%s) - t0))
	res=$(grep '^RESULT passed=' "$out" | tail -n 1)
	if [ -z "$res" ]; then
		echo "integration $name: died without a RESULT line (exit status $rc, ${el}s)"
		show "$out"
		total_fail=$((total_fail + 1))
		return
	fi
	if echo "$res" | grep -q 'skipped='; then
		echo "integration $name: skipped: $(sed -n 's/^# SKIP [^:]*: //p' "$out")"
		return
	fi
	p=$(echo "$res" | sed 's/.*passed=\([0-9]*\).*/\1/')
	f=$(echo "$res" | sed 's/.*failed=\([0-9]*\).*/\1/')
	if [ "$rc" != 0 ] && [ "$f" = 0 ]; then
		f=1
	fi
	echo "integration $name: $p passed, $f failed (${el}s)"
	[ "$f" = 0 ] || show "$out"
	total_pass=$((total_pass + p))
	total_fail=$((total_fail + f))
}

for b in "$@"; do
	if ! bdir=$(cd "$b" 2>/dev/null && pwd); then
		echo "== $b: no such build directory"
		total_fail=$((total_fail + 1))
		continue
	fi
	echo "== $b"
	san=no
	for x in "$bdir/tlsproxy" "$bdir"/tests/test_*; do
		sanitized "$x" && san=yes && break
	done
	if [ $san = yes ]; then
		export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0
		export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
	else
		unset ASAN_OPTIONS UBSAN_OPTIONS
	fi
	for t in "$bdir"/tests/test_*; do
		case $t in *.*) continue ;; esac	# test_x.d and the like
		[ -f "$t" ] && [ -x "$t" ] || continue
		run_unit "$t"
	done
	# The fuzz targets replay their committed corpus (tests/fuzz).
	for t in "$bdir"/fuzz/fuzz_*; do
		[ -f "$t" ] && [ -x "$t" ] || continue
		n=$(basename "$t")
		c=$root/tests/fuzz/corpus/${n#fuzz_}
		if timeout -k 5 120 "$t" "$c" >"$tmp/fuzz.out" 2>&1; then
			echo "fuzz        $n: $(ls "$c" | wc -l) inputs replayed clean"
			total_pass=$((total_pass + 1))
		else
			echo "fuzz        $n: failed"
			show "$tmp/fuzz.out"
			total_fail=$((total_fail + 1))
		fi
	done
	export TLSPROXY="$bdir/tlsproxy" TP_BUILD="$bdir"
	for t in "$root"/tests/integration/[0-9]*.sh; do
		[ -f "$t" ] || continue
		run_integration "$t"
	done
done

echo "$total_pass passed, $total_fail failed"
[ "$total_fail" = 0 ]
