#!/bin/sh
# bench.sh TLSPROXY_BINARY - tlsproxy, stunnel4 and HAProxy side by side (make bench).
#
# Topology, the same for every proxy (one process each, two routes/services):
#   smtp-source -> client route (plaintext in, implicit TLS out)
#               -> server route (implicit TLS in, plaintext out) -> backend
# The proxies:
#   tlsproxy  its defaults (workers = auto: one thread per CPU), client route
#             security = encrypt (no certificate verification)
#   stunnel   one process, client = yes without verify (no verification)
#   haproxy   one process, nbthread = CPUs (as tlsproxy's workers), two
#             "mode tcp" listeners: the first's server line is "ssl verify
#             none" (as stunnel and tlsproxy: encrypt, do not verify), reusing
#             TLS sessions as HAProxy does by default; the second binds "ssl
#             crt" with the same certificate and key.  No SMTP STARTTLS in
#             HAProxy: it runs figures 1-4 and 8 ("—" in 5-7).
#   TCP pair  the same HAProxy pair without ssl: the ceiling of any proxy
#             pair on the machine (figures 1, 2, 3 and 8)
# Figures:
#   1. msg/s, one message per connection  (smtp-source -s 20 -m 3000 -l 1000)
#   2. msg/s, persistent connections      (smtp-source -d -s 20 -m 20000)
#   3. bulk MB/s (10^6 bytes/s) of raw bytes through the pair into a raw TCP sink
#   4. resident memory (VmRSS) per idle TLS session on the server route, KB
#   5. msg/s, one message per connection, through the STARTTLS pair
#      (tlsproxy: tls = starttls both routes; stunnel: protocol = smtp)
#   6. msg/s, persistent connections, through the STARTTLS pair
#   7. MB/s of message bodies (1 MB messages) through the STARTTLS pair: with
#      figure 8, the same through the implicit pair, it prices the in-tunnel
#      SMTP filter (DATA/BDAT tracking, STARTTLS removal)
#      Caveat for 5: stunnel's "protocol = smtp" server side waits 200 ms on
#      every connection to see whether the client speaks first (protocol.c,
#      smtp_server), so with smtp-source -s 20 its figure 5 cannot exceed
#      20 / 0.2 s = 100 msg/s: that figure measures the wait, not TLS.
# Figures 1, 2, 5-8 also run smtp-source straight at smtp-sink (the no-TLS
# ceiling), figure 3 the Python sender straight at the Python sink (the
# harness ceiling).  With BENCH_REUSE=1 figures 1 and 5 also run tlsproxy with
# connection_reuse = yes on its client route (an extra table row).
# The proxies alternate run by run (tlsproxy, stunnel, haproxy, TCP pair,
# tlsproxy, ...); each run starts fresh processes on fresh ports.  Ends with a
# markdown table, also written to build/bench.md.
#
# Environment:
#   BENCH_RUNS=3             runs per proxy and figure
#   BENCH_FIGURES="1 2 3 4 5 6 7 8"  which figures
#   BENCH_PROXIES="tlsproxy stunnel haproxy"  any of these, e.g. "stunnel"
#                            while there is no binary
#   BENCH_TCP_PAIR=1         also run the plain TCP HAProxy pair (0: not; it
#                            needs haproxy even when haproxy is not in
#                            BENCH_PROXIES)
#   BENCH_REUSE=1            0: skip; 1: also tlsproxy with connection_reuse = yes on the
#                            client route, figures 1 and 5
#   BENCH_BULK_MB=1074       figure 3 volume in 10^6 bytes (1074 = 1 GiB)
#   BENCH_SESSIONS=1000      figure 4 idle sessions
#   BENCH_OUT=build/bench.md where the table goes
#   BENCH_KEEP=1             keep the work directory (configs, logs)
#   BENCH_WAIT_IDLE=0        before each run wait up to this many seconds for
#                            a second with the CPUs >= 95% idle (shared machines)
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
set -u

# --- settings -----------------------------------------------------------------
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
RUNS=${BENCH_RUNS:-3}
FIGURES=${BENCH_FIGURES:-"1 2 3 4 5 6 7 8"}
PAIR=implicit                    # implicit or starttls, set per figure
PROXIES=${BENCH_PROXIES:-"tlsproxy stunnel haproxy"}
TCP_PAIR=${BENCH_TCP_PAIR:-1}
REUSE=${BENCH_REUSE:-1}
BULK_MB=${BENCH_BULK_MB:-1074}
SESSIONS=${BENCH_SESSIONS:-1000}
WAIT_IDLE=${BENCH_WAIT_IDLE:-0}
OUT=${BENCH_OUT:-$ROOT/build/bench.md}
PEERS="$HERE/benchpeers.py"
PATH=$PATH:/usr/sbin:/sbin
STUNNEL=$(command -v stunnel4 || command -v stunnel || true)
HAPROXY=$(command -v haproxy || true)
SMTP_SOURCE=$(command -v smtp-source || true)
SMTP_SINK=$(command -v smtp-sink || true)

SRC1="-s 20 -m 3000 -l 1000"     # figure 1 smtp-source arguments
SRC2="-d -s 20 -m 20000"         # figure 2 (no -l: smtp-source's small
                                 # default message, headers only)
T_SMTP=120                       # seconds allowed for one smtp-source run
SRC7="-d -s 4 -m 150 -l 1000000" # figures 7 and 8: 150 MB of bodies on 4
                                 # persistent sessions, so that 7 - 8 is the
                                 # filter's cost (and not stunnel's 200 ms
                                 # STARTTLS wait per connection, see 5)
T_PEER=120                       # ... for one bulk or idle-sessions run

die() { echo "bench: $*" >&2; exit 1; }

TLSPROXY=${1:-}
case " $PROXIES " in *" tlsproxy "*)
	[ -n "$TLSPROXY" ] || die "usage: bench.sh TLSPROXY_BINARY"
	[ -x "$TLSPROXY" ] || die "$TLSPROXY: no such executable (BENCH_PROXIES=stunnel to bench stunnel alone)"
	TLSPROXY=$(cd "$(dirname "$TLSPROXY")" && pwd)/$(basename "$TLSPROXY")
esac
for p in $PROXIES; do
	case $p in tlsproxy|stunnel|haproxy) ;; *) die "BENCH_PROXIES: unknown proxy $p (tlsproxy, stunnel, haproxy)" ;; esac
done
case " $PROXIES " in *" stunnel "*)
	[ -n "$STUNNEL" ] || die "stunnel4 not installed (make deps)"
esac
case " $PROXIES " in *" haproxy "*)
	[ -n "$HAPROXY" ] || die "haproxy not installed (make deps)"
esac
[ "$TCP_PAIR" = 1 ] && [ -z "$HAPROXY" ] && die "haproxy not installed (make deps; BENCH_TCP_PAIR=0 to skip the TCP pair)"
[ "$REUSE" = 1 ] && case " $PROXIES " in *" tlsproxy "*) ;; *) REUSE=0 ;; esac
[ -n "$SMTP_SOURCE" ] && [ -n "$SMTP_SINK" ] || die "smtp-source/smtp-sink not found (postfix)"
command -v python3 >/dev/null || die "python3 not found"
command -v openssl >/dev/null || die "openssl not found"
command -v ss >/dev/null || die "ss not found (iproute2)"

# 1000 TLS sessions need ~2000 descriptors in a proxy and 1000 in the client.
hard=$(ulimit -Hn)
[ "$hard" = unlimited ] && hard=65536
[ "$hard" -gt 65536 ] && hard=65536
ulimit -n "$hard" 2>/dev/null
[ "$(ulimit -n)" -ge $((SESSIONS * 2 + 100)) ] ||
	echo "bench: warning: ulimit -n is $(ulimit -n), figure 4 may fail" >&2

SINK_USER=
[ "$(id -u)" = 0 ] && SINK_USER="-u nobody"    # smtp-sink refuses root

# --- processes ----------------------------------------------------------------
WORK=$(mktemp -d "${TMPDIR:-/tmp}/tlsproxy-bench.XXXXXX") || die "mktemp failed"
PIDS=""                 # every process still running that we started
NOTES="$WORK/notes"     # anomalies, printed at the end
: >"$NOTES"

cleanup() {
	trap - EXIT INT TERM
	for p in $PIDS; do kill -TERM "$p" 2>/dev/null; done
	for _ in $(seq 50); do
		left=
		for p in $PIDS; do alive "$p" && left="$left $p"; done
		[ -z "$left" ] && break
		sleep 0.1
	done
	for p in ${left:-}; do kill -KILL "$p" 2>/dev/null; done
	if [ "${BENCH_KEEP:-0}" = 1 ]; then
		echo "bench: work directory kept: $WORK"
	else
		rm -rf "$WORK"
	fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# bench a copy, so that a rebuild during the bench changes nothing
case " $PROXIES " in *" tlsproxy "*)
	cp "$TLSPROXY" "$WORK/tlsproxy" || die "cannot copy $TLSPROXY"
	TLSPROXY=$WORK/tlsproxy
esac

note() { echo "  ! $*"; echo "$*" >>"$NOTES"; }

alive() {       # alive PID: running and not a zombie
	kill -0 "$1" 2>/dev/null || return 1
	! grep -q '^[^)]*) Z' "/proc/$1/stat" 2>/dev/null
}

spawn() {       # spawn LOG CMD...: start CMD in the background, pid in SPAWNED
	local log=$1; shift
	"$@" >"$log" 2>&1 </dev/null &
	SPAWNED=$!
	PIDS="$PIDS $SPAWNED"
}

stop() {        # stop PID NAME [SIG]: SIG (TERM), up to 10 s, then SIGKILL; status in STOP_RC
	local pid=$1 name=$2 sig=${3:-TERM} i
	kill -"$sig" "$pid" 2>/dev/null
	for i in $(seq 100); do alive "$pid" || break; sleep 0.1; done
	if alive "$pid"; then
		note "$name (pid $pid) still running 10 s after SIG$sig: killed"
		kill -KILL "$pid" 2>/dev/null
	fi
	wait "$pid" 2>/dev/null
	STOP_RC=$?
	PIDS=$(echo "$PIDS" | tr ' ' '\n' | grep -vx "$pid" | tr '\n' ' ')
}

wait_listen() { # wait_listen PID PORT...: up to 10 s for listeners on PORTs
	local pid=$1 i p missing; shift
	for i in $(seq 100); do
		alive "$pid" || return 1
		missing=
		for p in "$@"; do
			[ -n "$(ss -Hltn "sport = :$p" 2>/dev/null)" ] || missing=1
		done
		[ -z "$missing" ] && return 0
		sleep 0.1
	done
	return 1
}

threads() {     # threads PID: its number of threads (0 when gone)
	local n
	n=$(awk '/^Threads:/ { print $2 }' "/proc/$1/status" 2>/dev/null)
	echo "${n:-0}"
}

cpu_secs() {    # cpu_secs PID: user+system CPU seconds used so far
	awk -v hz="$(getconf CLK_TCK)" '{ sub(/^.*\) /, ""); printf "%.2f", ($12 + $13) / hz }' \
	    "/proc/$1/stat" 2>/dev/null || echo "?"
}

free_ports() {  # free_ports N: sets P1..PN
	local i=1 p
	for p in $(python3 "$PEERS" ports "$1"); do eval "P$i=$p"; i=$((i + 1)); done
}

# --- certificate and configurations -------------------------------------------
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
    -subj /CN=localhost -keyout "$WORK/key.pem" -out "$WORK/cert.pem" \
    >"$WORK/openssl.log" 2>&1 || { cat "$WORK/openssl.log"; die "openssl req failed"; }
chmod 600 "$WORK/key.pem"
# HAProxy wants the certificate and its key in one file
cat "$WORK/cert.pem" "$WORK/key.pem" >"$WORK/haproxy.pem"
chmod 600 "$WORK/haproxy.pem"

RUN=0           # run counter, names config and log files

# tlsproxy on the defaults a user gets (workers = auto: one per CPU), logging
# only warnings; REUSE=yes adds connection_reuse = yes to the client route
write_tlsproxy_conf() { # FILE P1 P2 P3 [REUSE]
	cat >"$1" <<EOF
[global]
tls_loglevel = 0
log_level = warning
[pair-client]
mode = client
accept = 127.0.0.1:$2
connect = 127.0.0.1:$3
tls = $PAIR
security = encrypt
$([ "${5:-}" = yes ] && echo "connection_reuse = yes")
[pair-server]
mode = server
accept = 127.0.0.1:$3
connect = 127.0.0.1:$4
tls = $PAIR
cert_file = $WORK/cert.pem
key_file = $WORK/key.pem
EOF
}

write_stunnel_conf() { # FILE LOG P1 P2 P3
	cat >"$1" <<EOF
foreground = yes
syslog = no
output = $2
debug = 3
pid =
[c]
client = yes
accept = 127.0.0.1:$3
connect = 127.0.0.1:$4
$([ "$PAIR" = starttls ] && echo "protocol = smtp")
[s]
accept = 127.0.0.1:$4
connect = 127.0.0.1:$5
cert = $WORK/cert.pem
key = $WORK/key.pem
$([ "$PAIR" = starttls ] && echo "protocol = smtp")
EOF
}

# HAProxy: one process, two "mode tcp" listeners like the others' two routes.
# KIND haproxy: TLS between them, the client side without verification like
# stunnel's (no verify) and tlsproxy's (security = encrypt), resuming TLS
# sessions as HAProxy does by default; KIND tcppair: the same in plain TCP.
# maxconn covers figure 4's idle sessions (one stream each on the server
# listener) with room to spare; HAProxy raises its own descriptor limit.
write_haproxy_conf() { # FILE KIND P1 P2 P3
	local ssl_out='' ssl_in='' maxconn=$((SESSIONS * 2 + 1000))
	if [ "$2" = haproxy ]; then
		ssl_out=" ssl verify none"
		ssl_in=" ssl crt $WORK/haproxy.pem"
	fi
	cat >"$1" <<EOF
global
	nbthread $(nproc)
	maxconn $maxconn
defaults
	mode tcp
	maxconn $maxconn
	timeout connect 5s
	timeout client 300s
	timeout server 300s
listen pair-client
	bind 127.0.0.1:$3
	server pair-server 127.0.0.1:$4$ssl_out
listen pair-server
	bind 127.0.0.1:$4$ssl_in
	server backend 127.0.0.1:$5
EOF
}

# start_proxy NAME P1 P2 P3: PROXY_PID; client route on P1, server route on P2
# to a backend on P3.  Its log is $WORK/NAME-$RUN.log.
start_proxy() {
	local name=$1 conf=$WORK/$1-$RUN.conf log=$WORK/$1-$RUN.log
	case $name in
	tlsproxy)
		write_tlsproxy_conf "$conf" "$2" "$3" "$4"
		spawn "$log" "$TLSPROXY" -c "$conf" ;;
	tlsproxy-reuse)
		write_tlsproxy_conf "$conf" "$2" "$3" "$4" yes
		spawn "$log" "$TLSPROXY" -c "$conf" ;;
	haproxy|tcppair)
		write_haproxy_conf "$conf" "$name" "$2" "$3" "$4"
		spawn "$log" "$HAPROXY" -db -f "$conf" ;;
	stunnel)
		write_stunnel_conf "$conf" "$log" "$2" "$3" "$4"
		spawn "$WORK/stunnel-$RUN.out" "$STUNNEL" "$conf" ;;
	esac
	PROXY_PID=$SPAWNED
	PROXY_LOG=$log
	if ! wait_listen "$PROXY_PID" "$2" "$3"; then
		note "$name did not start listening on $2 and $3 within 10 s (run $RUN); log:"
		sed 's/^/      /' "$log" "$WORK/stunnel-$RUN.out" 2>/dev/null | head -20
		stop "$PROXY_PID" "$name"
		return 1
	fi
	PROXY_THREADS=$(threads "$PROXY_PID")
}

# open_conns PORT...: TCP connections to or from these ports that are still up
# (established, or half closed and not yet closed by the proxy)
open_conns() {
	local p f=
	for p in "$@"; do f="$f${f:+ or }sport = :$p or dport = :$p"; done
	ss -Htn state established state close-wait state fin-wait-1 state fin-wait-2 \
	    "( $f )" 2>/dev/null | wc -l
}

# stop_proxy NAME: wait (up to 10 s) until the proxy has closed every session
# of the run, stop it, check its exit status; PROXY_CPU = CPU seconds used
stop_proxy() {
	local i n sig
	for i in $(seq 100); do
		n=$(open_conns "$P1" "$P2" "$P3")
		[ "$n" = 0 ] && break
		sleep 0.1
	done
	# stunnel's per-session threads outlive their sockets for a moment, and it
	# may crash or hang when SIGTERM arrives before they are gone
	for i in $(seq 100); do
		[ "$(threads "$PROXY_PID")" -le "$PROXY_THREADS" ] && break
		sleep 0.1
	done
	[ "$n" = 0 ] || note "$1: $n TCP connections on its ports still open 10 s after the run ended (run $RUN): $(ss -Htn "( sport = :$P2 or dport = :$P3 )" | awk '{ print $1 }' | sort | uniq -c | tr '\n' ' ')"
	PROXY_CPU=$(cpu_secs "$PROXY_PID")
	if ! alive "$PROXY_PID"; then
		wait "$PROXY_PID" 2>/dev/null
		local rc=$? how
		how="exit status $rc"
		[ "$rc" -gt 128 ] && how="killed by signal $((rc - 128)) ($(kill -l $((rc - 128)) 2>/dev/null))"
		note "$1 (pid $PROXY_PID) died during run $RUN: $how; last lines of $PROXY_LOG:"
		tail -20 "$PROXY_LOG" | sed 's/^/      /'
		PIDS=$(echo "$PIDS" | tr ' ' '\n' | grep -vx "$PROXY_PID" | tr '\n' ' ')
		return
	fi
	# HAProxy's SIGTERM is a hard stop that exits 143; SIGUSR1, its soft
	# stop, exits 0 once its sessions are gone (they are by now)
	sig=TERM
	case $1 in haproxy|tcppair) sig=USR1 ;; esac
	stop "$PROXY_PID" "$1" "$sig"
	# stunnel exits 0 on SIGTERM too; anything else is worth a note
	[ "$STOP_RC" = 0 ] || note "$1 exited with status $STOP_RC after SIG$sig (run $RUN)"
}

start_smtp_sink() {     # start_smtp_sink PORT: SINK_PID
	spawn "$WORK/smtp-sink-$RUN.log" "$SMTP_SINK" $SINK_USER "127.0.0.1:$1" 1000
	SINK_PID=$SPAWNED
	wait_listen "$SINK_PID" "$1" || { note "smtp-sink did not start"; return 1; }
}

# --- one measurement each: sets VAL to the figure, or "FAIL" ---------------------

smtp_rate() {   # smtp_rate PORT MESSAGES ARGS...: msg/s of one smtp-source run
	local port=$1 msgs=$2 t0 t1 rc why; shift 2
	t0=$EPOCHREALTIME
	timeout "$T_SMTP" "$SMTP_SOURCE" "$@" "127.0.0.1:$port" >"$WORK/src-$RUN.log" 2>&1
	rc=$?
	t1=$EPOCHREALTIME
	if [ "$rc" != 0 ]; then
		why="status $rc"
		[ "$rc" = 124 ] && why="timed out after ${T_SMTP}s"
		note "smtp-source $* failed ($why, run $RUN): $(head -3 "$WORK/src-$RUN.log" | tr '\n' ' ')"
		return 1
	fi
	VAL=$(awk -v m="$msgs" -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", m / (b - a) }')
}

peer_run() {    # peer_run NAME KEY CMD...: run a benchpeers.py command, VAL = its KEY=
	local name=$1 key=$2 out; shift 2
	out=$(timeout $((T_PEER + 20)) python3 "$PEERS" "$@" 2>&1) || {
		note "$name failed (run $RUN): $(echo "$out" | tail -3 | tr '\n' ' ')"; return 1; }
	PEER_OUT=$out
	VAL=$(echo "$out" | sed -n "s/.*$key=\([-0-9.]*\).*/\1/p")
	[ -n "$VAL" ]
}

# run_one FIGURE WHO: one run of FIGURE for WHO (a proxy, tlsproxy-reuse, tcppair
# or none).
# Sets VAL (the figure or FAIL), PROXY_CPU (the proxy's CPU seconds) and INFO.
run_one() {
	local fig=$1 who=$2 ok=0 port backend msgs args
	RUN=$((RUN + 1))
	VAL=FAIL PROXY_CPU='' INFO=''
	free_ports 3
	port=$P1
	[ "$who" = none ] && port=$P3
	PAIR=implicit
	case $fig in 5|6|7) PAIR=starttls ;; esac
	case $fig in
	1|2|5|6|7|8)
		msgs=3000 args=$SRC1
		case $fig in
		2|6) msgs=20000 args=$SRC2 ;;
		7|8) msgs=150 args=$SRC7 ;; # 10^6-byte messages: msg/s = MB/s
		esac
		if start_smtp_sink "$P3"; then
			if [ "$who" = none ] || start_proxy "$who" "$P1" "$P2" "$P3"; then
				smtp_rate "$port" "$msgs" $args && ok=1
				[ "$who" = none ] || stop_proxy "$who"
			fi
			stop "$SINK_PID" smtp-sink
		fi ;;
	3)
		if [ "$who" = none ] || start_proxy "$who" "$P1" "$P2" "$P3"; then
			peer_run "bulk through $who" mbps bulk "$port" "$P3" "$BULK_MB" "$T_PEER" && ok=1
			[ "$who" = none ] || stop_proxy "$who"
		fi ;;
	4)
		spawn "$WORK/idle-backend-$RUN.log" python3 "$PEERS" idle-backend "$P3"
		backend=$SPAWNED
		if ! wait_listen "$backend" "$P3"; then
			note "idle backend did not start (run $RUN)"
		elif start_proxy "$who" "$P1" "$P2" "$P3"; then
			if peer_run "$SESSIONS idle sessions through $who" kb_per_session \
			    idle-clients "$P2" "$SESSIONS" "$PROXY_PID" "$T_PEER"; then
				ok=1
				INFO=$(echo "$PEER_OUT" | grep -o 'rss_before_kb=.*' | sed 's/ kb_per_session=[^ ]*//')
			fi
			stop_proxy "$who"
		fi
		stop "$backend" idle-backend ;;
	esac
	[ "$ok" = 1 ] || { VAL=FAIL; FAILED=$((FAILED + 1)); }
}
FAILED=0        # runs that produced no figure

# --- statistics -----------------------------------------------------------------
median() {      # median VALUE...: of the numeric ones, "-" when none
	printf '%s\n' "$@" | grep -E '^-?[0-9.]+$' | sort -g |
	    awk '{ v[NR] = $1 } END { if (NR == 0) print "-";
	        else if (NR % 2) print v[(NR + 1) / 2];
	        else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

ratio() {       # ratio A B: A/B to two decimals, "-" when either is missing
	awk -v a="$1" -v b="$2" 'BEGIN { if (a == "-" || b == "-" || b == 0) print "-";
	    else printf "%.2f", a / b }'
}

fmt() {         # fmt VALUE DECIMALS: rounded, thousands separated
	[ "$1" = "-" ] && { echo "-"; return; }
	LC_ALL=C awk -v v="$1" -v d="$2" 'BEGIN { s = sprintf("%." d "f", v);
	    split(s, p, "."); i = p[1]; o = "";
	    while (length(i) > 3 && i ~ /[0-9][0-9][0-9][0-9]$/) {
	        o = "," substr(i, length(i) - 2) o; i = substr(i, 1, length(i) - 3) }
	    o = i o; if (d > 0) o = o "." p[2]; print o }'
}

# Foreign load: CPU time the machine spent (user, nice, system, irq, softirq)
# minus the CPU time of the bench's own processes (bash's "times": every
# child is waited for by the end of a run).  Loopback traffic is charged to
# the processes, so with nothing else running the two agree within ~1%.
cpu_snap() {    # cpu_snap: sets SNAP="machine_secs ours_secs wall_secs"
	times >"$WORK/times"
	SNAP="$(awk -v hz="$(getconf CLK_TCK)" '/^cpu / { printf "%.2f", ($2 + $3 + $4 + $7 + $8) / hz }' /proc/stat) $(tail -1 "$WORK/times" | awk '{ split($1, u, /[ms]/); split($2, s, /[ms]/);
	    printf "%.2f", u[1] * 60 + u[2] + s[1] * 60 + s[2] }') $EPOCHREALTIME"
}

other_load() {  # other_load SNAP_BEFORE SNAP_AFTER: "S s = P%" of the machine used by others
	echo "$1 $2" | awk -v n="$(nproc)" '{ o = ($4 - $1) - ($5 - $2); if (o < 0) o = 0;
	    w = ($6 - $3) * n; printf "%.1f s = %d%%", o, (w > 0 ? 100 * o / w : 0) }'
}

cpu_idle_pct() { # percent of CPU time idle over one second
	local a b
	a=$(awk '/^cpu /{ print $2+$3+$4+$5+$6+$7+$8+$9, $5 }' /proc/stat)
	sleep 1
	b=$(awk '/^cpu /{ print $2+$3+$4+$5+$6+$7+$8+$9, $5 }' /proc/stat)
	echo "$a $b" | awk '{ t = $3 - $1; printf "%d", t ? 100 * ($4 - $2) / t : 100 }'
}

wait_quiet() {  # up to WAIT_IDLE seconds for one second with the CPUs >= 95% idle
	local t0=$EPOCHSECONDS
	[ "$WAIT_IDLE" -gt 0 ] || return 0
	while [ $((EPOCHSECONDS - t0)) -lt "$WAIT_IDLE" ]; do
		[ "$(cpu_idle_pct)" -ge 95 ] && return 0
	done
	echo "  (machine still busy after waiting ${WAIT_IDLE}s)"
}

DISTURBED=0     # runs during which other processes used > 5% of the machine
check_other() { # check_other SNAP_BEFORE SNAP_AFTER: sets OTHER, counts DISTURBED
	local pct
	OTHER=$(other_load "$1" "$2")
	pct=${OTHER##*= }
	[ "${pct%\%}" -gt 5 ] && DISTURBED=$((DISTURBED + 1))
	NRUNS=$((NRUNS + 1))
}
NRUNS=0

# --- the bench ------------------------------------------------------------------
declare -A TITLE CMD DEC MED V LABEL
TITLE[1]="msg/s, one message per connection"
TITLE[2]="msg/s, persistent connections"
TITLE[3]="bulk MB/s (10^6 bytes/s)"
TITLE[4]="RSS per idle TLS session, KB"
TITLE[5]="STARTTLS pair: msg/s, one message per connection"
TITLE[6]="STARTTLS pair: msg/s, persistent connections"
TITLE[7]="STARTTLS pair: MB/s of 1 MB messages, persistent"
TITLE[8]="implicit pair: MB/s of 1 MB messages, persistent"
CMD[1]="smtp-source $SRC1"
CMD[2]="smtp-source $SRC2"
CMD[3]="$BULK_MB MB of raw bytes: Python sender -> pair -> Python TCP sink"
CMD[4]="$SESSIONS TLS sessions to the server route, each with its backend connection"
CMD[5]="smtp-source $SRC1"
CMD[6]="smtp-source $SRC2"
CMD[7]="smtp-source $SRC7"
CMD[8]="smtp-source $SRC7"
DEC[1]=0 DEC[2]=0 DEC[3]=0 DEC[4]=1 DEC[5]=0 DEC[6]=0 DEC[7]=0 DEC[8]=0

STUNNEL_VERSION=$([ -n "$STUNNEL" ] && "$STUNNEL" -version 2>&1 | sed -n 's/^stunnel \([0-9.]*\) .*/\1/p' | head -1)
HAPROXY_VERSION=$([ -n "$HAPROXY" ] && "$HAPROXY" -v 2>&1 | sed -n 's/^HAProxy version \([0-9.]*\).*/\1/p' | head -1)
TLSPROXY_VERSION=$(case " $PROXIES " in *" tlsproxy "*) "$TLSPROXY" -V 2>&1 | head -1;; esac)
LABEL[none]="no TLS" LABEL[tcppair]="TCP pair" LABEL[stunnel]="stunnel"
LABEL[haproxy]="HAProxy TLS" LABEL[tlsproxy]="tlsproxy" LABEL[tlsproxy-reuse]="tlsproxy reuse"

has_proxy() { case " $PROXIES " in *" $1 "*) return 0 ;; esac; return 1; }

applies() {     # applies FIGURE WHO: WHO runs FIGURE
	case $2 in
	none) [ "$1" != 4 ] ;;
	tcppair) case $1 in 1|2|3|8) return 0 ;; esac; return 1 ;;
	haproxy) case $1 in 1|2|3|4|8) return 0 ;; esac; return 1 ;;
	tlsproxy-reuse) case $1 in 1|5) return 0 ;; esac; return 1 ;;
	*) return 0 ;;
	esac
}

runners() {     # runners FIGURE: who runs FIGURE (besides none), in run order
	local who list=
	for who in $PROXIES; do applies "$1" "$who" && list="$list $who"; done
	[ "$TCP_PAIR" = 1 ] && applies "$1" tcppair && list="$list tcppair"
	[ "$REUSE" = 1 ] && applies "$1" tlsproxy-reuse && list="$list tlsproxy-reuse"
	echo "${list# }"
}

# vs FIGURE WHO OTHER: WHO/OTHER for rates, OTHER/WHO for memory (figure 4),
# so that > 1 always favours WHO; "—" when OTHER does not run FIGURE
vs() {
	applies "$1" "$3" || { echo "—"; return; }
	if [ "$1" = 4 ]; then
		ratio "${MED[$1/$3]:--}" "${MED[$1/$2]:--}"
	else
		ratio "${MED[$1/$2]:--}" "${MED[$1/$3]:--}"
	fi
}

# what tlsproxy is compared with, in table order
OTHERS=
has_proxy stunnel && OTHERS="$OTHERS stunnel"
has_proxy haproxy && OTHERS="$OTHERS haproxy"
[ "$TCP_PAIR" = 1 ] && OTHERS="$OTHERS tcppair"

CPU_MODEL=$(sed -n 's/^model name[^:]*: //p' /proc/cpuinfo | head -1)
IDLE=$(cpu_idle_pct)
echo "tlsproxy bench: $(nproc) CPUs ($CPU_MODEL), $RUNS runs per proxy and figure"
echo "  ${TLSPROXY_VERSION:-tlsproxy not run}; stunnel ${STUNNEL_VERSION:-not run}; HAProxy ${HAPROXY_VERSION:-not run}; $(openssl version)"
echo "  work directory $WORK; CPU idle before start: $IDLE%"
[ "$IDLE" -ge 90 ] || note "the machine was busy before the bench started (CPU ${IDLE}% idle): figures are unreliable"
START=$EPOCHSECONDS

for fig in $FIGURES; do
	echo
	echo "== $fig. ${TITLE[$fig]}  [${CMD[$fig]}]"
	V=()
	if applies "$fig" none; then
		for r in $(seq "$RUNS"); do
			wait_quiet; cpu_snap; s0=$SNAP
			run_one "$fig" none
			cpu_snap; check_other "$s0" "$SNAP"
			V[none]="${V[none]:-} $VAL"
			printf '  run %d  %-14s %-8s (other load %s)\n' "$r" "no TLS" "$VAL" "$OTHER"
		done
	fi
	for r in $(seq "$RUNS"); do
		for who in $(runners "$fig"); do
			wait_quiet; cpu_snap; s0=$SNAP
			run_one "$fig" "$who"
			cpu_snap; check_other "$s0" "$SNAP"
			V[$who]="${V[$who]:-} $VAL"
			printf '  run %d  %-14s %-8s (proxy CPU %s s; other load %s%s)\n' "$r" "${LABEL[$who]}" "$VAL" \
			    "${PROXY_CPU:-?}" "$OTHER" "${INFO:+; $INFO}"
		done
	done
	line=
	for who in none $(runners "$fig"); do
		applies "$fig" "$who" || continue
		MED[$fig/$who]=$(median ${V[$who]:-})
		line="$line${line:+ | }${LABEL[$who]} $(fmt "${MED[$fig/$who]}" "${DEC[$fig]}")"
	done
	[ "$fig" = 5 ] && has_proxy stunnel &&
		echo "  (stunnel waits 200 ms per connection in protocol = smtp server mode: <= 100 msg/s at -s 20)"
	echo "  median   $line"
	for who in tlsproxy tlsproxy-reuse; do
		[ -n "${MED[$fig/$who]:-}" ] || continue
		line=
		for o in $OTHERS; do
			applies "$fig" "$o" || continue
			line="$line${line:+,} vs ${LABEL[$o]} $(vs "$fig" "$who" "$o")"
		done
		[ -n "$line" ] && echo "  ${LABEL[$who]}:$line (>1: tlsproxy $([ "$fig" = 4 ] && echo smaller || echo faster))"
	done
done

# --- what went wrong, and the table ---------------------------------------------
echo
# tlsproxy runs at log_level = warning: everything it logged is worth a look.
logs=$(ls "$WORK"/tlsproxy-*.log 2>/dev/null)
if [ -n "$logs" ]; then
	n=$(cat $logs | wc -l)
	if [ "$n" -gt 0 ]; then
		echo "tlsproxy logged $n lines at log_level = warning; the most frequent (session ids masked):"
		cat $logs | sed -E "s#^$WORK/[a-z-]+[0-9]+\\.conf:#CONF:#" |
		    sed -E 's/tlsproxy\[[0-9]+\]/tlsproxy[PID]/; s#/[0-9a-f]{4,}:#/ID:#; s/:[0-9]{4,5}\b/:PORT/g' |
		    sort | uniq -c | sort -rn | head -15 | sed 's/^/  /'
	fi
fi
logs=$(ls "$WORK"/stunnel-*.log 2>/dev/null)
if [ -n "$logs" ]; then
	n=$(cat $logs | grep -v 'No trusted certificates found' | wc -l)
	[ "$n" -gt 0 ] && {
		echo "stunnel logged $n lines at debug = 3 (besides 'No trusted certificates found'):"
		cat $logs | grep -v 'No trusted certificates found' | sed -E 's/^[0-9. :]+//' |
		    sort | uniq -c | sort -rn | head -5 | sed 's/^/  /'
	}
fi
# HAProxy in the foreground (-db) without a log section prints only alerts
# and warnings on stderr, and a "Proxy ... stopped" line per proxy on SIGUSR1
logs=$(ls "$WORK"/haproxy-*.log "$WORK"/tcppair-*.log 2>/dev/null)
if [ -n "$logs" ]; then
	n=$(cat $logs | grep -cv ' : Proxy [^ ]* stopped (cumulated conns')
	[ "$n" -gt 0 ] && {
		echo "haproxy printed $n lines (alerts and warnings, besides its stop lines); the most frequent:"
		cat $logs | grep -v ' : Proxy [^ ]* stopped (cumulated conns' |
		    sed -E 's/\([0-9]+\)/(PID)/g; s/:[0-9]{4,5}\b/:PORT/g' |
		    sort | uniq -c | sort -rn | head -5 | sed 's/^/  /'
	}
fi
[ "$DISTURBED" = 0 ] ||
	note "in $DISTURBED of $NRUNS runs other processes used more than 5% of the machine (see 'other load'): those figures are unreliable, rerun on a quiet machine"
if [ -s "$NOTES" ]; then
	echo "Anomalies:"
	sed 's/^/  - /' "$NOTES"
fi

# the table's columns: the baselines, the proxies run, then tlsproxy's ratios
COLS=none
[ "$TCP_PAIR" = 1 ] && COLS="$COLS tcppair"
for who in stunnel haproxy tlsproxy; do has_proxy "$who" && COLS="$COLS $who"; done
declare -A HEAD
HEAD[none]="no TLS" HEAD[tcppair]="TCP pair (HAProxy, no TLS)"
HEAD[stunnel]="stunnel $STUNNEL_VERSION" HEAD[haproxy]="HAProxy $HAPROXY_VERSION TLS"
HEAD[tlsproxy]="tlsproxy"
RCOLS=
has_proxy tlsproxy && RCOLS=$OTHERS
declare -A RHEAD
RHEAD[stunnel]="vs stunnel" RHEAD[haproxy]="vs HAProxy" RHEAD[tcppair]="vs TCP pair"

row() {         # row FIGURE LABEL WHO...: one table row; tlsproxy's cell is WHO's
	local fig=$1 label=$2 subject=$3 c v out
	out="| $label |"
	for c in $COLS; do
		if [ "$c" = tlsproxy ]; then
			v=$(fmt "${MED[$fig/$subject]:--}" "${DEC[$fig]}")
		elif [ "$subject" != tlsproxy ]; then
			v=      # the extra tlsproxy rows leave the others' cells empty
		elif applies "$fig" "$c"; then
			v=$(fmt "${MED[$fig/$c]:--}" "${DEC[$fig]}")
			[ "$fig/$c" = 3/none ] && v="$v (harness ceiling)"
		else
			v="—"
		fi
		out="$out $v |"
	done
	for c in $RCOLS; do out="$out $(vs "$fig" "$subject" "$c") |"; done
	echo "$out"
}

mkdir -p "$(dirname "$OUT")"
{
	line="| figure |" sep="|---|"
	for c in $COLS; do line="$line ${HEAD[$c]} |" sep="$sep---:|"; done
	for c in $RCOLS; do line="$line ${RHEAD[$c]} |" sep="$sep---:|"; done
	echo "$line"
	echo "$sep"
	for fig in $FIGURES; do
		row "$fig" "$fig. ${TITLE[$fig]}" tlsproxy
		[ "$REUSE" = 1 ] && applies "$fig" tlsproxy-reuse &&
			row "$fig" "$fig. … tlsproxy with \`connection_reuse = yes\`" tlsproxy-reuse
	done
	echo
	echo "Medians of $RUNS runs each, proxies alternating, on $(nproc) CPUs ($CPU_MODEL), $(openssl version | cut -d' ' -f1-2);"
	who='' verify=''
	has_proxy tlsproxy && who="$who, tlsproxy on its defaults (\`workers = auto\`: $(nproc) threads here)" \
	    verify="$verify, tlsproxy \`security = encrypt\`"
	has_proxy stunnel && who="$who, stunnel (a thread per session)" verify="$verify, stunnel without \`verify\`"
	{ has_proxy haproxy || [ "$TCP_PAIR" = 1 ]; } && who="$who, HAProxy \`nbthread $(nproc)\`, \`mode tcp\`"
	has_proxy haproxy && verify="$verify, HAProxy \`verify none\`"
	echo "client route → TLS 1.3 → server route on loopback, both in one process per proxy: ${who#, }."
	[ -n "$verify" ] && echo "No client side verifies the server certificate (${verify#, })$(has_proxy haproxy && echo "; HAProxy resumes TLS sessions on its server line (its default)")."
	[ -n "$RCOLS" ] &&
		echo "vs columns: tlsproxy/other for rates (>1 = tlsproxy faster), other/tlsproxy for memory (>1 = tlsproxy smaller)."
	[ "$TCP_PAIR" = 1 ] && echo "TCP pair: the same HAProxy pair without TLS, the ceiling of any proxy pair here."
	{ has_proxy haproxy || [ "$TCP_PAIR" = 1 ]; } &&
		echo "— = not applicable: HAProxy has no SMTP STARTTLS (5-7); the TCP pair has no TLS session (4) and no STARTTLS (5-7)."
	case " $FIGURES " in *" 5 "*)
		has_proxy stunnel &&
			echo "STARTTLS one message per connection: stunnel's smtp server side waits 200 ms per connection (protocol detection), capping it at 100 msg/s with 20 sessions."
	esac
	[ "$DISTURBED" = 0 ] || echo "Warning: in $DISTURBED of $NRUNS runs other processes used more than 5% of the machine."
	[ "$FAILED" = 0 ] || echo "Warning: $FAILED runs failed and are left out of the medians."
} >"$OUT"
echo
cat "$OUT"
echo
echo "(table written to $OUT; bench took $((EPOCHSECONDS - START)) s)"
[ "$FAILED" = 0 ] || { echo "bench: $FAILED runs failed (see Anomalies)" >&2; exit 1; }
exit 0
