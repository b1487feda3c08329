#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# bench/run.sh — mtlsd beside HAProxy, nginx and stunnel in the same role, on
# one machine, in one run (issue 6). Not part of CI. See bench/README.md.
#
#   bash bench/run.sh                        full run (~15 min on 2 cores)
#   QUICK=1 bash bench/run.sh                smoke run (~3 min)
#   WOLFSSL_PREFIX=/opt/wolfssl-fast bash bench/run.sh
#                                            also mtlsd linked against a tuned
#                                            wolfSSL (contrib/build-wolfssl.sh)
#
# The role, for every contender: plaintext HTTP/1.1 in on 127.0.0.1, mutual
# TLS out to an nginx upstream that requires a client certificate
# (ssl_verify_client on), the upstream's certificate verified against the
# test server root with the name "localhost", keep-alive pooling of upstream
# connections where the contender has it. Each contender runs pinned to CPU
# $CPU_PROXY; wrk and the upstream share CPU $CPU_LOAD.
#
# Environment (defaults in brackets; QUICK=1 changes the starred ones):
#   REPS [3*1]        A/B repetitions of every contender x workload
#   DURATION [8*3]    seconds per measured wrk run; WARMUP [1] before each
#   CONNS [32]        wrk connections (every workload)
#   WORKLOADS         [ka-small close-small ka-64k upload-1m]
#   CONTENDERS        [mtlsd haproxy nginx stunnel]
#   EXTRAS            [callgrind idle certdrop]
#   IDLE_COUNTS       [1000 10000*1000]   IDLE_MODES [open ka*ka]
#   DROPS [10*5]      CG_REQUESTS [2000*500]   CG_PEERS [haproxy]
#   CG_MODES          [ka close*ka]  (callgrind: keep-alive, connection per request)
#   MTLSD_BIN         an mtlsd binary to use instead of building one
#   WOLFSSL_PREFIX    a tuned wolfSSL: adds the contender "mtlsd-tuned"
#   MTLSD_TUNED_BIN   an mtlsd binary linked against the tuned wolfSSL
#   BENCH_BUILD       build directories [/tmp/mtlsd-bench-build]
#   RESULTS           where the report goes [bench/results]
#   BENCH_TIMEOUT     bound on the whole run, seconds [2400*900]
#   BENCH_KEEP=1      keep the temporary directory (configs, logs, raw data)
#   CPU_PROXY [0]  CPU_LOAD [1]
#   CPU_QUOTA         percent of one CPU each contender may use in the
#                     workloads (a cgroup CPU bandwidth limit, 10 ms period;
#                     e.g. 50): the contender, not wrk and the upstream, is
#                     then the limit, so req/s compares what each contender
#                     makes of the same CPU [none]
#   NO_INSTALL=1      do not apt-get install missing tools
#   THREADS [1]       each contender's event loops: mtlsd workers, HAProxy
#                     nbthread, nginx worker_processes (stunnel has a thread per
#                     connection); with more than 1, give them as many CPUs
#                     (e.g. THREADS=4 CPU_PROXY=0-3 CPU_LOAD=4-7)
#   MTLSD_ENV         VAR=value words put in mtlsd's environment (experiments,
#                     e.g. MTLSD_ENV=GLIBC_TUNABLES=glibc.malloc.trim_threshold=67108864)
#   MTLSD_YAML, MTLSD_TUNED_YAML
#                     top-level mtlsd.yaml lines for the "mtlsd" / "mtlsd-tuned"
#                     rows (A/B experiments: with MTLSD_TUNED_BIN=$MTLSD_BIN,
#                     e.g. MTLSD_TUNED_YAML="busy_poll: 50us"); in the report
#
# Everything listens on 127.0.0.1 ports that were free at the start.
set -uo pipefail

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SRC_DIR=$(cd "$BENCH_DIR/.." && pwd)
BT="python3 $BENCH_DIR/benchtool.py"

QUICK=${QUICK:-0}
if [ "$QUICK" = 1 ]; then
	REPS=${REPS:-1} DURATION=${DURATION:-3} IDLE_COUNTS=${IDLE_COUNTS:-1000} IDLE_MODES=${IDLE_MODES:-ka}
	CG_MODES=${CG_MODES:-ka}
	DROPS=${DROPS:-5} CG_REQUESTS=${CG_REQUESTS:-500} BENCH_TIMEOUT=${BENCH_TIMEOUT:-900}
else
	REPS=${REPS:-3} DURATION=${DURATION:-8} IDLE_COUNTS=${IDLE_COUNTS:-1000 10000} IDLE_MODES=${IDLE_MODES:-open ka}
	CG_MODES=${CG_MODES:-ka close}
	DROPS=${DROPS:-10} CG_REQUESTS=${CG_REQUESTS:-2000} BENCH_TIMEOUT=${BENCH_TIMEOUT:-2400}
fi
WARMUP=${WARMUP:-1}
CONNS=${CONNS:-32}
WORKLOADS=${WORKLOADS:-ka-small close-small ka-64k upload-1m}
CONTENDERS=${CONTENDERS:-mtlsd haproxy nginx stunnel}
EXTRAS=${EXTRAS-callgrind idle certdrop}
CPU_PROXY=${CPU_PROXY:-0}
CPU_LOAD=${CPU_LOAD:-1}
CPU_QUOTA=${CPU_QUOTA:-}
BENCH_BUILD=${BENCH_BUILD:-/tmp/mtlsd-bench-build}
RESULTS=${RESULTS:-$BENCH_DIR/results}

ECHO_MOD=/usr/lib/nginx/modules/ngx_http_echo_module.so
MTLSD_ENV=${MTLSD_ENV:-}
THREADS=${THREADS:-1}

say() { printf '%s %s\n' "$(date +%H:%M:%S)" "$*"; }
die() { echo "bench: $*" >&2; exit 1; }

NOTES=()
note() { NOTES+=("$*"); say "NOTE: $*"; }

# ------------------------------------------------------------ tools

need_tools() {
	local missing=() t
	for t in haproxy:haproxy stunnel:stunnel4 wrk:wrk nginx:nginx-light valgrind:valgrind \
		taskset:util-linux python3:python3 openssl:openssl; do
		command -v "${t%%:*}" >/dev/null || missing+=("${t#*:}")
	done
	# the upstream reads an upload completely before it answers (echo module)
	[ -f "$ECHO_MOD" ] || missing+=(libnginx-mod-http-echo)
	if [ ${#missing[@]} -gt 0 ]; then
		[ "${NO_INSTALL:-0}" = 1 ] && die "missing: ${missing[*]} (NO_INSTALL=1)"
		say "apt-get install ${missing[*]}"
		local sudo=""
		[ "$(id -u)" -eq 0 ] || sudo=sudo
		$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null ||
			die "apt-get install ${missing[*]} failed"
	fi
	for t in haproxy stunnel wrk nginx taskset python3 openssl; do
		command -v "$t" >/dev/null || die "missing tool: $t"
	done
	[ "$(nproc)" -ge 2 ] || note "fewer than 2 CPUs: contender and load share a CPU"
}

# ------------------------------------------------------------ state

RUN=$(mktemp -d "${TMPDIR:-/tmp}/mtlsd-bench.XXXXXX")
chmod 0755 "$RUN"
declare -A PID=()     # contender -> main PID (the process tree is measured)
declare -A PORT=()    # contender -> plaintext port (upstream: the good server)
declare -A NEGPORT=() # contender -> port mapped to the untrusted upstream
declare -A BIN=()     # mtlsd variant -> binary
declare -A TLSINFO=() # contender -> upstream TLS as the upstream saw it
ACTIVE=()             # contenders that passed the sanity checks
STARTED=()            # every daemon PID we started (cleanup)
CGROUPS=()            # CPU_QUOTA cgroups we made (cleanup)

cleanup() {
	local rc=$? p
	trap - EXIT INT TERM ALRM
	for p in "${STARTED[@]}"; do
		kill -TERM "$p" 2>/dev/null
	done
	for p in "${STARTED[@]}"; do
		for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
		kill -KILL "$p" 2>/dev/null
	done
	for p in "${CGROUPS[@]}"; do
		wait_for 5 rmdir "$p" 2>/dev/null || echo "bench: could not remove cgroup $p" >&2
	done
	[ -n "${WATCHDOG:-}" ] && kill "$WATCHDOG" 2>/dev/null
	if [ "${BENCH_KEEP:-0}" = 1 ] || [ "$rc" -ne 0 ]; then
		rm -f "$RUN"/up/www/* 2>/dev/null
		echo "bench: temporary files kept in $RUN"
	else
		rm -rf "$RUN"
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'echo "bench: interrupted" >&2; exit 130' INT TERM
trap 'echo "bench: whole run exceeded ${BENCH_TIMEOUT}s (BENCH_TIMEOUT), aborting" >&2; exit 124' ALRM

watchdog() {
	local main=$$ n=0
	(
		exec >/dev/null 2>&1
		while kill -0 "$main" 2>/dev/null; do
			[ "$n" -ge "$BENCH_TIMEOUT" ] && { kill -ALRM "$main"; exit 0; }
			sleep 1
			n=$((n + 1))
		done
	) &
	WATCHDOG=$!
}

# wait_for TIMEOUT CMD...: poll until CMD succeeds
wait_for() {
	local t=$1 end
	shift
	end=$(($(date +%s%N) + t * 1000000000))
	until "$@"; do
		[ "$(date +%s%N)" -lt "$end" ] || return 1
		sleep 0.05
	done
}
alive() { kill -0 "$1" 2>/dev/null; }
listening() { $BT listening "$1"; }

# bg NAME CPU LOG CMD...: start CMD pinned to CPU; sets BGPID
bg() {
	local cpu=$2 log=$3
	shift 3
	taskset -c "$cpu" "$@" >"$log" 2>&1 &
	BGPID=$!
	STARTED+=("$BGPID")
}

# stop PID: TERM, bounded wait, KILL
stop() {
	local p=$1
	kill -TERM "$p" 2>/dev/null
	for _ in $(seq 100); do alive "$p" || break; sleep 0.05; done
	kill -KILL "$p" 2>/dev/null
	wait "$p" 2>/dev/null
	return 0
}

# quota_cgroup NAME: make a cgroup whose processes may use CPU_QUOTA % of one
# CPU (cgroup v2 cpu.max, or v1 cpu.cfs_quota_us); sets QUOTA_DIR
quota_cgroup() {
	local d period=10000 quota=$((CPU_QUOTA * 100))
	if [ -f /sys/fs/cgroup/cgroup.controllers ]; then
		d=/sys/fs/cgroup/mtlsd-bench-$$-$1
		grep -qw cpu /sys/fs/cgroup/cgroup.subtree_control ||
			echo +cpu >/sys/fs/cgroup/cgroup.subtree_control || return 1
		mkdir "$d" || return 1
		CGROUPS+=("$d")
		echo "$quota $period" >"$d/cpu.max" || return 1
	elif [ -d /sys/fs/cgroup/cpu ]; then
		d=/sys/fs/cgroup/cpu/mtlsd-bench-$$-$1
		mkdir "$d" || return 1
		CGROUPS+=("$d")
		echo "$period" >"$d/cpu.cfs_period_us" && echo "$quota" >"$d/cpu.cfs_quota_us" || return 1
	else
		echo "no cgroup CPU controller (CPU_QUOTA)"
		return 1
	fi
	QUOTA_DIR=$d
}

# limit_cpu PID NAME: PID and its child processes (nginx's workers) into a
# CPU_QUOTA cgroup of their own
limit_cpu() {
	local p
	quota_cgroup "$2" || return 1
	for p in $($BT pids "$1"); do
		echo "$p" >"$QUOTA_DIR/cgroup.procs" || return 1
	done
}

# ------------------------------------------------------------ mtlsd builds

build_mtlsd() { # build_mtlsd DIR [WOLFSSL-PREFIX]
	local dir=$1 prefix=${2:-} args=(-q)
	[ -n "$prefix" ] && args+=("--with-wolfssl=$prefix")
	mkdir -p "$dir"
	(
		cd "$dir" || exit 1
		if [ ! -f Makefile ] || [ "$SRC_DIR/configure" -nt Makefile ] ||
			[ "$(cat .bench-configure 2>/dev/null)" != "${args[*]}" ]; then
			"$SRC_DIR/configure" "${args[@]}" >configure.out 2>&1 || { tail -n 20 configure.out; exit 1; }
			echo "${args[*]}" >.bench-configure
		fi
		make -j"$(nproc)" mtlsd >make.out 2>&1 || { tail -n 30 make.out; exit 1; }
	) || return 1
	[ -x "$dir/mtlsd" ]
}

prepare_mtlsd() {
	if [ -n "${MTLSD_BIN:-}" ]; then
		BIN[mtlsd]=$(readlink -f "$MTLSD_BIN")
	else
		say "building mtlsd (Debian libwolfssl) in $BENCH_BUILD/debian"
		build_mtlsd "$BENCH_BUILD/debian" || die "mtlsd build failed"
		BIN[mtlsd]=$BENCH_BUILD/debian/mtlsd
	fi
	if [ -n "${MTLSD_TUNED_BIN:-}" ]; then
		BIN[mtlsd-tuned]=$(readlink -f "$MTLSD_TUNED_BIN")
	elif [ -n "${WOLFSSL_PREFIX:-}" ]; then
		[ -f "$WOLFSSL_PREFIX/include/wolfssl/options.h" ] ||
			die "WOLFSSL_PREFIX=$WOLFSSL_PREFIX holds no wolfSSL (run contrib/build-wolfssl.sh $WOLFSSL_PREFIX)"
		say "building mtlsd (tuned wolfSSL in $WOLFSSL_PREFIX) in $BENCH_BUILD/tuned"
		build_mtlsd "$BENCH_BUILD/tuned" "$WOLFSSL_PREFIX" || die "mtlsd build against $WOLFSSL_PREFIX failed"
		BIN[mtlsd-tuned]=$BENCH_BUILD/tuned/mtlsd
	fi
	local v
	for v in "${!BIN[@]}"; do
		say "$v: ${BIN[$v]} -> $(ldd "${BIN[$v]}" | awk '/libwolfssl/ { print $3 }')"
	done
}

# ------------------------------------------------------------ PKI, upstream

make_pki() {
	PKI=$RUN/pki
	bash "$SRC_DIR/contrib/mkpki.sh" "$PKI" >"$RUN/mkpki.log" 2>&1 || { cat "$RUN/mkpki.log"; die "mkpki failed"; }
	CLIENT_CRT=$PKI/certs.d/client-pem/client.crt
	CLIENT_KEY=$PKI/certs.d/client-pem/client.key
	SERVER_CA=$PKI/trust/server-root.pem
	SERIAL=$(cat "$PKI/info/client-pem.serial")
	cat "$CLIENT_CRT" "$CLIENT_KEY" >"$PKI/client-combined.pem"
	chmod 0600 "$PKI/client-combined.pem"
}

start_upstream() {
	local d=$RUN/up
	mkdir -p "$d"/{www,tmp}
	read -r UP UP_UNTRUST <<<"$($BT freeport 2)"
	head -c 65536 /dev/urandom >"$d/www/64k"
	local upload='return 200 "upload received\n";' load=""
	if [ -f "$ECHO_MOD" ]; then
		load="load_module $ECHO_MOD;"
		upload='client_body_buffer_size 2m; echo_read_request_body; echo "upload received";'
	else
		note "no nginx echo module: the upstream answers uploads before reading them (nginx as a proxy then closes client connections)"
	fi
	cat >"$d/nginx.conf" <<EOF
# the mTLS upstream of the benchmark: one worker, pinned with wrk
$load
worker_processes 1;
worker_rlimit_nofile $FDLIM;
pid $d/nginx.pid;
error_log $d/error.log warn;
events { worker_connections $((FDLIM - 100)); }
http {
    access_log off;
    client_body_temp_path $d/tmp/body;
    proxy_temp_path $d/tmp/proxy;
    fastcgi_temp_path $d/tmp/fastcgi;
    uwsgi_temp_path $d/tmp/uwsgi;
    scgi_temp_path $d/tmp/scgi;
    keepalive_requests 100000000;
    keepalive_timeout 600s;
    ssl_protocols TLSv1.2 TLSv1.3;
    ssl_session_cache shared:UP:20m;
    ssl_session_tickets on;
    ssl_client_certificate $PKI/trust/client-ca-bundle.pem;
    ssl_verify_client on;
    ssl_verify_depth 3;

    server {
        listen 127.0.0.1:$UP ssl backlog=4096;
        ssl_certificate $PKI/server/localhost.crt;
        ssl_certificate_key $PKI/server/localhost.key;
        root $d/www;
        add_header X-Client-Serial \$ssl_client_serial always;
        add_header X-TLS "\$ssl_protocol \$ssl_cipher reused=\$ssl_session_reused" always;
        location = / { return 200 "hello from the upstream\n"; }
        location = /64k { default_type application/octet-stream; }
        location = /upload { client_max_body_size 2m; $upload }
    }
    server {
        listen 127.0.0.1:$UP_UNTRUST ssl;
        ssl_certificate $PKI/server/untrusted.crt;
        ssl_certificate_key $PKI/server/untrusted.key;
        location / { return 200 "untrusted upstream: the contender did not verify the server\n"; }
    }
}
EOF
	nginx -t -q -p "$d/" -c "$d/nginx.conf" -e "$d/error.log" 2>"$d/t.log" || { cat "$d/t.log"; die "upstream nginx config"; }
	bg upstream "$CPU_LOAD" "$d/stdout.log" nginx -p "$d/" -c "$d/nginx.conf" -e "$d/error.log" -g 'daemon off;'
	UP_PID=$BGPID
	wait_for 15 listening "$UP" || die "upstream nginx did not start: $(tail -n 5 "$d/error.log")"
	say "upstream nginx (pid $UP_PID, CPU $CPU_LOAD) on 127.0.0.1:$UP, untrusted-CA server on $UP_UNTRUST"
}

# ------------------------------------------------------------ contenders
# start_X INST PORT NEGPORT: start one instance; sets BGPID, returns 1 when it
# does not come up (with the reason on stdout)

# variant_yaml VARIANT: the mtlsd.yaml lines of MTLSD_YAML / MTLSD_TUNED_YAML
variant_yaml() {
	case $1 in
	mtlsd) echo "${MTLSD_YAML:-}" ;;
	mtlsd-tuned) echo "${MTLSD_TUNED_YAML:-}" ;;
	esac
}

start_mtlsd() { # start_mtlsd VARIANT INST PORT NEGPORT [EXTRA-YAML]
	local v=$1 inst=$2 port=$3 neg=$4 extra=${5:-} d=$RUN/$2 variant
	variant=$(variant_yaml "$v")
	mkdir -p "$d/mappings.d" "$d/certs.d/client" "$d/state"
	chmod 0700 "$d/state"
	cp "$CLIENT_CRT" "$CLIENT_KEY" "$d/certs.d/client/"
	cat >"$d/mtlsd.yaml" <<EOF
proxy:
  listen: []
mappings_dir: mappings.d
certs_dir: certs.d
state_dir: state
log: {level: info, access_log: false}
limits: {max_connections: 40000}
workers: $THREADS
$variant
$extra
EOF
	cat >"$d/mappings.d/bench.yaml" <<EOF
mappings:
  - name: bench
    url: https://localhost:$UP/
    listen: 127.0.0.1:$port
    certificate: client
    trust: {ca_file: $SERVER_CA}
  - name: untrusted
    url: https://localhost:$UP_UNTRUST/
    listen: 127.0.0.1:$neg
    certificate: client
    trust: {ca_file: $SERVER_CA}
    validate: false
EOF
	# shellcheck disable=SC2086 # MTLSD_ENV: VAR=value words for env(1)
	bg "$inst" "$CPU_PROXY" "$d/mtlsd.log" env $MTLSD_ENV "${BIN[$v]}" -c "$d/mtlsd.yaml"
	if ! wait_for 30 grep -q 'ready: generation 1' "$d/mtlsd.log"; then
		echo "mtlsd did not log 'ready: generation 1': $(tail -n 3 "$d/mtlsd.log" | tr '\n' ' ')"
		return 1
	fi
	wait_for 10 listening "$port"
}

start_haproxy() { # start_haproxy INST PORT NEGPORT
	local inst=$1 port=$2 neg=$3 d=$RUN/$1
	mkdir -p "$d"
	cat >"$d/haproxy.cfg" <<EOF
global
    maxconn $HAPROXY_MAXCONN
    nbthread $THREADS
    ssl-server-verify required
defaults
    mode http
    maxconn $HAPROXY_MAXCONN
    timeout connect 5s
    timeout client 60s
    timeout server 60s
    timeout http-keep-alive 60s
    http-reuse always
frontend bench
    bind 127.0.0.1:$port
    default_backend up
backend up
    server up 127.0.0.1:$UP ssl crt $PKI/client-combined.pem ca-file $SERVER_CA verify required verifyhost localhost sni str(localhost)
frontend untrusted
    bind 127.0.0.1:$neg
    default_backend untrusted
backend untrusted
    server up 127.0.0.1:$UP_UNTRUST ssl crt $PKI/client-combined.pem ca-file $SERVER_CA verify required verifyhost localhost sni str(localhost)
EOF
	haproxy -c -q -f "$d/haproxy.cfg" >"$d/check.log" 2>&1 || { echo "haproxy -c: $(head -n 3 "$d/check.log")"; return 1; }
	# shellcheck disable=SC2086 # HAPROXY_WRAP: a command line (valgrind)
	bg "$inst" "$CPU_PROXY" "$d/haproxy.log" ${HAPROXY_WRAP:-} haproxy -db -f "$d/haproxy.cfg"
	wait_for "${START_TIMEOUT:-15}" listening "$port" || { echo "haproxy: $(tail -n 3 "$d/haproxy.log")"; return 1; }
}

start_nginx() { # start_nginx INST PORT NEGPORT
	local inst=$1 port=$2 neg=$3 d=$RUN/$1
	mkdir -p "$d/tmp"
	cat >"$d/nginx.conf" <<EOF
worker_processes $THREADS;
worker_rlimit_nofile $FDLIM;
pid $d/nginx.pid;
error_log $d/error.log warn;
events { worker_connections $((FDLIM - 100)); }
http {
    access_log off;
    client_body_temp_path $d/tmp/body;
    proxy_temp_path $d/tmp/proxy;
    fastcgi_temp_path $d/tmp/fastcgi;
    uwsgi_temp_path $d/tmp/uwsgi;
    scgi_temp_path $d/tmp/scgi;
    keepalive_requests 100000000;
    keepalive_timeout 60s;
    client_max_body_size 2m;
    upstream up {
        server 127.0.0.1:$UP;
        keepalive 64;
        keepalive_requests 100000000;
        keepalive_timeout 60s;
    }
    upstream untrusted {
        server 127.0.0.1:$UP_UNTRUST;
        keepalive 8;
    }
    proxy_http_version 1.1;
    proxy_set_header Connection "";
    proxy_ssl_certificate $CLIENT_CRT;
    proxy_ssl_certificate_key $CLIENT_KEY;
    proxy_ssl_trusted_certificate $SERVER_CA;
    proxy_ssl_verify on;
    proxy_ssl_verify_depth 2;
    proxy_ssl_name localhost;
    proxy_ssl_server_name on;
    proxy_ssl_session_reuse on;
    proxy_ssl_protocols TLSv1.2 TLSv1.3;    # 1.22's default stops at TLS 1.2
    proxy_request_buffering off;
    proxy_max_temp_file_size 0;
    server {
        listen 127.0.0.1:$port backlog=4096;
        location / { proxy_pass https://up; }
    }
    server {
        listen 127.0.0.1:$neg;
        location / { proxy_pass https://untrusted; }
    }
}
EOF
	nginx -t -q -p "$d/" -c "$d/nginx.conf" -e "$d/error.log" >"$d/check.log" 2>&1 || { echo "nginx -t: $(head -n 3 "$d/check.log")"; return 1; }
	bg "$inst" "$CPU_PROXY" "$d/stdout.log" nginx -p "$d/" -c "$d/nginx.conf" -e "$d/error.log" -g 'daemon off;'
	wait_for 15 listening "$port" || { echo "nginx: $(tail -n 3 "$d/error.log")"; return 1; }
}

start_stunnel() { # start_stunnel INST PORT NEGPORT
	local inst=$1 port=$2 neg=$3 d=$RUN/$1
	mkdir -p "$d"
	cat >"$d/stunnel.conf" <<EOF
; stunnel in client mode: a TCP-level tunnel, one upstream TLS connection per
; client connection (no pooling); session resumption on
foreground = yes
pid =
debug = 3
socket = l:TCP_NODELAY=1
socket = r:TCP_NODELAY=1
[bench]
client = yes
accept = 127.0.0.1:$port
connect = 127.0.0.1:$UP
cert = $CLIENT_CRT
key = $CLIENT_KEY
CAfile = $SERVER_CA
verifyChain = yes
checkHost = localhost
sni = localhost
[untrusted]
client = yes
accept = 127.0.0.1:$neg
connect = 127.0.0.1:$UP_UNTRUST
cert = $CLIENT_CRT
key = $CLIENT_KEY
CAfile = $SERVER_CA
verifyChain = yes
checkHost = localhost
sni = localhost
EOF
	bg "$inst" "$CPU_PROXY" "$d/stunnel.log" stunnel "$d/stunnel.conf"
	wait_for 15 listening "$port" || { echo "stunnel: $(tail -n 3 "$d/stunnel.log")"; return 1; }
}

# try VAR CMD...: run CMD in this shell (it starts daemons: BGPID, STARTED
# must survive), its stdout (the reason of a failure) into VAR
try() {
	local __var=$1 __rc
	shift
	"$@" >"$RUN/.why" 2>&1
	__rc=$?
	printf -v "$__var" '%s' "$(cat "$RUN/.why")"
	return $__rc
}

# start_contender C INST PORT NEG [EXTRA]: dispatch
start_contender() {
	case $1 in
	mtlsd*) start_mtlsd "$@" ;;
	haproxy) start_haproxy "${@:2}" ;;
	nginx) start_nginx "${@:2}" ;;
	stunnel) start_stunnel "${@:2}" ;;
	*) echo "unknown contender $1"; return 1 ;;
	esac
}

# sanity C: the contender answers through the upstream, presents our client
# certificate, and refuses an upstream whose certificate it cannot verify
sanity() {
	local c=$1 r status serial tls neg
	r=$($BT probe "${PORT[$c]}" /)
	IFS='|' read -r status serial tls _ <<<"$r"
	if [ "$status" != 200 ] || [ "$serial" != "$SERIAL" ]; then
		echo "probe through it: status $status, client serial '$serial' (want 200 and $SERIAL): $r"
		return 1
	fi
	neg=$($BT probe "${NEGPORT[$c]}" /)
	if [ "${neg%%|*}" = 200 ]; then
		echo "it forwarded to an upstream whose certificate does not verify: $neg"
		return 1
	fi
	TLSINFO[$c]="$tls; untrusted upstream -> ${neg%%|*}"
	return 0
}

start_all() {
	local c v inst why
	local list=()
	for c in $CONTENDERS; do
		if [ "$c" = mtlsd ]; then
			list+=(mtlsd)
			[ -n "${BIN[mtlsd-tuned]:-}" ] && list+=(mtlsd-tuned)
		else
			list+=("$c")
		fi
	done
	for c in "${list[@]}"; do
		read -r p n <<<"$($BT freeport 2)"
		PORT[$c]=$p NEGPORT[$c]=$n
		if ! try why start_contender "$c" "$c" "$p" "$n"; then
			note "$c left out: it did not start: $why"
			continue
		fi
		PID[$c]=$BGPID
		if ! try why sanity "$c"; then
			note "$c left out: sanity check failed: $why"
			stop "${PID[$c]}"
			continue
		fi
		if [ -n "$CPU_QUOTA" ] && ! try why limit_cpu "${PID[$c]}" "$c"; then
			note "$c left out: could not limit its CPU to $CPU_QUOTA %: $why"
			stop "${PID[$c]}"
			continue
		fi
		ACTIVE+=("$c")
		say "$c (pid ${PID[$c]}, CPU $CPU_PROXY${CPU_QUOTA:+, at most $CPU_QUOTA % of it}) on 127.0.0.1:$p — upstream TLS: ${TLSINFO[$c]}"
	done
	[ ${#ACTIVE[@]} -gt 0 ] || die "no contender started"
}

# ------------------------------------------------------------ workloads

wrk_script() { # wrk_script WORKLOAD -> path of its Lua script
	local wl=$1 f=$RUN/wrk-$1.lua
	{
		case $wl in
		ka-small) echo 'wrk.path = "/"' ;;
		close-small) printf 'wrk.path = "/"\nwrk.headers["Connection"] = "close"\n' ;;
		ka-64k) echo 'wrk.path = "/64k"' ;;
		upload-1m)
			printf 'wrk.path = "/upload"\nwrk.method = "POST"\n'
			printf 'wrk.headers["Content-Type"] = "application/octet-stream"\n'
			printf 'wrk.body = string.rep("0123456789abcdef", 65536)\n'
			;;
		*) die "unknown workload $wl" ;;
		esac
		cat <<'EOF'
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('WRKJSON {"requests":%d,"duration_us":%d,"bytes":%d,"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d,"p50":%d,"p90":%d,"p99":%d,"max":%d}\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max))
end
EOF
	} >"$f"
	echo "$f"
}

req_bytes() { case $1 in upload-1m) echo 1048576 ;; *) echo 0 ;; esac; }

run_workloads() {
	local wl rep c order lua url
	for wl in $WORKLOADS; do
		lua=$(wrk_script "$wl")
		say "workload $wl: ${#ACTIVE[@]} contenders x $REPS reps x ${DURATION}s, $CONNS connections"
		for rep in $(seq "$REPS"); do
			# A/B order alternates between repetitions
			if [ $((rep % 2)) -eq 1 ]; then order=("${ACTIVE[@]}"); else
				order=()
				for ((i = ${#ACTIVE[@]} - 1; i >= 0; i--)); do order+=("${ACTIVE[$i]}"); done
			fi
			for c in "${order[@]}"; do
				alive "${PID[$c]}" || { note "$c died during $wl (rep $rep)"; continue; }
				url=http://127.0.0.1:${PORT[$c]}
				taskset -c "$CPU_LOAD" wrk -t1 -c"$CONNS" -d"${WARMUP}s" --timeout 10s -s "$lua" "$url" >/dev/null 2>&1
				$BT measure "$RUN/runs.jsonl" contender="$c" workload="$wl" rep="$rep" req_bytes="$(req_bytes "$wl")" \
					--pids "${PID[$c]}" --aux-pids "$UP_PID" -- \
					taskset -c "$CPU_LOAD" wrk -t1 -c"$CONNS" -d"${DURATION}s" --timeout 10s --latency -s "$lua" "$url"
			done
		done
	done
}

# ------------------------------------------------------------ extras

extra() { echo "$1" >>"$RUN/extra.json"; }

# callgrind: Ir per request, steady state (counters zeroed after a warm-up,
# dumped after CG_REQUESTS requests), on one keep-alive connection (ka) and
# with a new connection per request (close). The mtlsd builds, and HAProxy as
# the reference (CG_PEERS).
run_callgrind() {
	command -v valgrind >/dev/null || { note "callgrind skipped: no valgrind"; return; }
	local v inst d p n pid f r
	local targets=(mtlsd mtlsd-tuned) c
	for c in ${CG_PEERS-haproxy}; do
		[[ " ${ACTIVE[*]} " == *" $c "* ]] && targets+=("$c")
	done
	for v in "${targets[@]}"; do
		[[ $v == mtlsd* ]] && [ -z "${BIN[$v]:-}" ] && continue
		inst=cg-$v d=$RUN/$inst
		read -r p n <<<"$($BT freeport 2)"
		mkdir -p "$d"
		local vg="valgrind --tool=callgrind --callgrind-out-file=$d/callgrind.out --dump-instr=no"
		say "callgrind: $v, $CG_REQUESTS requests"
		local ok=1
		case $v in
		mtlsd*)
			local save=${BIN[$v]}
			# the valgrind wrapper: start_mtlsd runs BIN[v] -c FILE
			printf '#!/bin/sh\nexec %s "%s" "$@"\n' "$vg" "$save" >"$d/wrap.sh"
			chmod +x "$d/wrap.sh"
			BIN[$v]=$d/wrap.sh
			# instructions of the work, not of the busy polling between the
			# serial client's requests (unless the variant sets busy_poll)
			local cgyaml="timeouts: {idle: 600s, client_header: 600s, upstream_response: 120s}"
			case $(variant_yaml "$v") in
			*busy_poll*) ;;
			*) cgyaml+=$'\nbusy_poll: 0' ;;
			esac
			try r start_mtlsd "$v" "$inst" "$p" "$n" "$cgyaml" || ok=0
			BIN[$v]=$save
			;;
		haproxy)
			HAPROXY_WRAP=$vg START_TIMEOUT=120 try r start_haproxy "$inst" "$p" "$n" || ok=0
			;;
		*) continue ;;
		esac
		pid=$BGPID
		if [ "$ok" = 0 ]; then
			extra "$(python3 -c 'import json,sys; print(json.dumps({"kind": "callgrind", "contender": sys.argv[1], "error": "did not start under valgrind: " + sys.argv[2]}))' "$v" "$r")"
			stop "$pid"
			continue
		fi
		local mode
		for mode in $CG_MODES; do
			cg_phase "$v" "$mode" "$pid" "$p" "$d"
		done
		stop "$pid"
	done
}

# cg_phase NAME MODE PID PORT DIR: one measured phase on a running instance
# under callgrind: 200 warm-up requests, zero, CG_REQUESTS requests, dump
cg_phase() {
	local v=$1 mode=$2 pid=$3 p=$4 d=$5 f=$5/pause-$2 flag=""
	[ "$mode" = close ] && flag=--close
	# shellcheck disable=SC2086
	$BT seq "$p" "$CG_REQUESTS" $flag --pause-after 200 --pause-file "$f" >"$d/seq-$mode.json" 2>"$d/seq-$mode.err" &
	local cpid=$!
	rm -f "$d"/callgrind.out.*
	if wait_for 300 test -e "$f.ready"; then
		callgrind_control -z "$pid" >"$d/ctl-$mode.log" 2>&1
		touch "$f.go"
		wait_for 600 test -e "$f.done"
		callgrind_control -d "$pid" >>"$d/ctl-$mode.log" 2>&1
		touch "$f.end"
	else
		touch "$f.go" "$f.end"
	fi
	wait "$cpid"
	local dump
	dump=$(ls -t "$d"/callgrind.out.* 2>/dev/null | head -n 1)
	if [ -z "$dump" ] || ! grep -q '"non200": 0' "$d/seq-$mode.json"; then
		extra "$(python3 -c 'import json,sys; print(json.dumps({"kind": "callgrind", "contender": sys.argv[1], "mode": sys.argv[2], "error": "no dump or failed requests: " + sys.argv[3][:300]}))' "$v" "$mode" "$(cat "$d/seq-$mode.json" "$d/seq-$mode.err" "$d/ctl-$mode.log" 2>/dev/null)")"
		return
	fi
	local line
	line=$($BT cgresult "$v" "$CG_REQUESTS" "$dump" "$RUN/callgrind-$v-$mode.txt" "$mode")
	extra "$line"
	say "callgrind: $v ($mode): $(python3 -c 'import json,sys; print(json.loads(sys.argv[1]).get("ir_per_req"))' "$line") Ir/request"
}

# idle: memory per idle client connection, on fresh instances
run_idle() {
	local c n mode p neg r why
	local list=()
	for c in "${ACTIVE[@]}"; do list+=("$c"); done
	for c in "${list[@]}"; do
		for n in $IDLE_COUNTS; do
			if [ "$c" = stunnel ] && [ "$n" -gt 1000 ]; then
				extra "{\"kind\":\"idle\",\"contender\":\"stunnel\",\"n\":$n,\"mode\":\"-\",\"error\":\"skipped: a thread and an upstream TLS connection per client connection\"}"
				continue
			fi
			if [ "$c" = haproxy ] && [ "$n" -gt "$HAPROXY_MAXCONN" ]; then
				extra "{\"kind\":\"idle\",\"contender\":\"haproxy\",\"n\":$n,\"mode\":\"-\",\"error\":\"skipped: maxconn $HAPROXY_MAXCONN (open-file limit $FDLIM, two descriptors per connection)\"}"
				continue
			fi
			for mode in $IDLE_MODES; do
				read -r p neg <<<"$($BT freeport 2)"
				local ex=""
				[[ $c == mtlsd* ]] && ex="timeouts: {client_header: 120s, idle: 120s}"
				if ! try why start_contender "$c" "idle-$c-$n-$mode" "$p" "$neg" "$ex"; then
					extra "{\"kind\":\"idle\",\"contender\":\"$c\",\"n\":$n,\"mode\":\"$mode\",\"error\":\"did not start\"}"
					stop "$BGPID"
					continue
				fi
				local pid=$BGPID
				r=$($BT idle "$p" "$n" "$mode" --pids "$pid" --settle 1)
				stop "$pid"
				extra "$(python3 -c 'import json,sys; d=json.loads(sys.argv[1]); d.update(kind="idle",contender=sys.argv[2]); print(json.dumps(d))' "$r" "$c")"
				say "idle: $c n=$n $mode: $r"
			done
		done
	done
}

# certdrop: a newer certificate renamed into certs.d/client -> first response
# that shows its serial
run_certdrop() {
	local v p neg r d
	for v in mtlsd mtlsd-tuned; do
		[ -n "${BIN[$v]:-}" ] || continue
		read -r p neg <<<"$($BT freeport 2)"
		if ! try r start_mtlsd "$v" "drop-$v" "$p" "$neg"; then
			extra "{\"kind\":\"certdrop\",\"contender\":\"$v\",\"error\":\"did not start\"}"
			stop "$BGPID"
			continue
		fi
		local pid=$BGPID
		d=$RUN/drop-$v
		say "certdrop: $v, $DROPS drops"
		r=$($BT certdrop "$p" "$d/certs.d/client" "$PKI/ca/client-root.crt" "$PKI/ca/client-root.key" "$DROPS")
		stop "$pid"
		extra "$(python3 -c 'import json,sys; d=json.loads(sys.argv[1]); d.update(kind="certdrop",contender=sys.argv[2]); print(json.dumps(d))' "$r" "$v")"
		say "certdrop: $v: $r"
	done
}

# ------------------------------------------------------------ report

write_meta() {
	local ver wolf
	ver="mtlsd $(git -C "$SRC_DIR" describe --always --dirty 2>/dev/null || echo '?')"
	ver+=", $(haproxy -v 2>/dev/null | head -n 1 | awk '{ print "HAProxy " $3 }')"
	ver+=", $(nginx -v 2>&1 | sed 's/.*nginx\//nginx /')"
	ver+=", $(stunnel -version 2>&1 | awk '/^stunnel/ { print "stunnel " $2; exit }')"
	ver+=", $(wrk --version 2>&1 | head -n 1 | awk '{ print "wrk " $2 }')"
	wolf="mtlsd: $(ldd "${BIN[mtlsd]}" | awk '/libwolfssl/ { print $3 }')"
	[ -n "${BIN[mtlsd-tuned]:-}" ] && wolf+="; mtlsd-tuned: $(ldd "${BIN[mtlsd-tuned]}" | awk '/libwolfssl/ { print $3 }')"
	local tls=""
	for c in "${ACTIVE[@]}"; do tls+="$c: ${TLSINFO[$c]}; "; done
	python3 - "$RUN/meta.json" "$ver" "$wolf" "$tls" "${NOTES[@]}" <<EOF
import json, os, platform, sys, time
out, ver, wolf, tls, notes = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5:]
cpu = "?"
for l in open("/proc/cpuinfo"):
    if l.startswith("model name"):
        cpu = l.split(":", 1)[1].strip(); break
json.dump({
    "date": time.strftime("%Y-%m-%d %H:%M %Z"),
    "host": "%s, %d CPUs (contender on CPU $CPU_PROXY${CPU_QUOTA:+ limited to ${CPU_QUOTA}%% of one CPU}; wrk -t1 + upstream nginx on CPU $CPU_LOAD)" % (platform.node(), os.cpu_count()),
    "cpu": cpu,
    "kernel": platform.release(),
    "versions": ver + "; wolfSSL " + wolf,
    "settings": "REPS=$REPS DURATION=${DURATION}s WARMUP=${WARMUP}s CONNS=$CONNS QUICK=$QUICK THREADS=$THREADS${CPU_QUOTA:+ CPU_QUOTA=$CPU_QUOTA}${MTLSD_YAML:+ MTLSD_YAML=[$MTLSD_YAML]}${MTLSD_TUNED_YAML:+ MTLSD_TUNED_YAML=[$MTLSD_TUNED_YAML]}",
    "notes": ["upstream TLS as seen by nginx: " + tls] + notes,
}, open(out, "w"))
EOF
}

report() {
	mkdir -p "$RESULTS"
	local stamp
	stamp=$(date +%Y-%m-%d-%H%M)
	$BT report "$RUN" >"$RUN/report.txt" || die "report failed"
	echo
	cat "$RUN/report.txt"
	cp "$RUN/report.txt" "$RESULTS/latest.txt"
	{
		echo "# mtlsd benchmark, $stamp"
		echo
		echo '```'
		cat "$RUN/report.txt"
		echo '```'
	} >"$RESULTS/$stamp.md"
	echo
	echo "bench: written $RESULTS/latest.txt and $RESULTS/$stamp.md"
}

# ------------------------------------------------------------ main

main() {
	local t0=$SECONDS
	# as root, lift the hard open-file limit (10,000 idle connections; HAProxy
	# sizes its descriptor table from maxconn); otherwise use the hard limit
	ulimit -Hn 1048576 2>/dev/null || ulimit -Hn 262144 2>/dev/null || true
	ulimit -n "$(ulimit -Hn)" 2>/dev/null
	# every idle client connection is a descriptor in the client and in the
	# contender (two per connection in one process nowhere)
	local n keep=""
	for n in $IDLE_COUNTS; do
		if [ $((n + 500)) -le "$(ulimit -n)" ]; then keep+="$n "; else
			note "idle test with $n connections skipped: open-file limit $(ulimit -n) (raise the hard limit)"
		fi
	done
	IDLE_COUNTS=$keep
	FDLIM=$(ulimit -n)
	# HAProxy reserves two descriptors per connection (client + server side)
	HAPROXY_MAXCONN=$(((FDLIM - 200) / 2))
	[ "$HAPROXY_MAXCONN" -le 40000 ] || HAPROXY_MAXCONN=40000
	case $CPU_QUOTA in
	'' | [1-9] | [1-9][0-9] | 100) ;;
	*) die "CPU_QUOTA=$CPU_QUOTA: a percentage of one CPU, 1-100" ;;
	esac
	watchdog
	need_tools
	prepare_mtlsd
	make_pki
	start_upstream
	start_all
	: >"$RUN/runs.jsonl"
	: >"$RUN/extra.json"
	run_workloads
	local e
	for e in $EXTRAS; do
		case $e in
		callgrind) run_callgrind ;;
		idle) run_idle ;;
		certdrop) run_certdrop ;;
		*) note "unknown extra '$e'" ;;
		esac
	done
	say "measurements done in $((SECONDS - t0)) s"
	write_meta
	report
	mkdir -p "$RESULTS"
	cp "$RUN/runs.jsonl" "$RESULTS/latest-runs.jsonl"
	cp "$RUN/extra.json" "$RESULTS/latest-extra.jsonl"
}

main "$@"
