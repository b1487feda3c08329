# SPDX-License-Identifier: GPL-2.0-or-later
# shellcheck shell=bash
#
# Integration harness for mtlsd: sourced by run.sh (and the t_*.sh files it
# sources in turn). Real peers only: nginx (Debian nginx-light + the echo
# module) as the mTLS upstream, curl and raw sockets as the client, a PKI made
# fresh by contrib/mkpki.sh for every run.
#
# Rules the harness keeps (STYLE.md, "Two test tiers"):
#  - mtlsd listens on port 0; its ports are learnt from its log
#    ("listening on 127.0.0.1:PORT (proxy|mapping NAME)");
#  - every wait polls for a positive signal (log line, TCP state, file) and is
#    bounded; nothing waits with a bare sleep;
#  - a watchdog bounds the whole run (IT_TIMEOUT seconds);
#  - a failed test dumps the tails of the logs that explain it.
#
# Environment: MTLSD_BIN (required), MTLSD_WRAPPER (e.g. "valgrind -q"),
# IT_TIMEOUT (whole run, default 900 s), IT_KEEP=1 (keep the temp dir),
# IT_LOGLEVEL (mtlsd log level, default info), IT_SANITIZER=1 (expect a
# sanitizer build: reports in a daemon log fail that daemon's exit test).

IT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SRC_DIR=$(cd "$IT_DIR/../.." && pwd)
NETTOOL="python3 $IT_DIR/nettool.py"

T_PASS=0
T_FAIL=0
T_FAILED=()
_t_errs=()

# ---------------------------------------------------------------- reporting

# t_pass NAME / t_fail NAME REASON: count and print one TAP-like line.
t_pass() {
	T_PASS=$((T_PASS + 1))
	echo "ok - $1"
}

t_fail() {
	T_FAIL=$((T_FAIL + 1))
	T_FAILED+=("$1")
	echo "not ok - $1: $2"
	it_dump_logs
}

_trunc() {
	local s=${1//$'\r'/}
	s=${s//$'\n'/\\n}
	[ ${#s} -gt 160 ] && s="${s:0:160}..."
	printf '%s' "$s"
}

# A test is a set of checks ended by t_done NAME: it passes when every check
# held, and otherwise fails naming each check that did not.
chk_eq() { # chk_eq WHAT EXPECTED ACTUAL
	[[ "$3" == "$2" ]] || _t_errs+=("$1: expected '$(_trunc "$2")', got '$(_trunc "$3")'")
}
chk_ne() { # chk_ne WHAT UNEXPECTED ACTUAL
	[[ "$3" != "$2" ]] || _t_errs+=("$1: got '$(_trunc "$3")'")
}
chk_match() { # chk_match WHAT ERE ACTUAL
	[[ "$3" =~ $2 ]] || _t_errs+=("$1: '$(_trunc "$3")' does not match /$2/")
}
chk_nomatch() { # chk_nomatch WHAT ERE ACTUAL
	[[ ! "$3" =~ $2 ]] || _t_errs+=("$1: '$(_trunc "$3")' matches /$2/")
}
chk_le() { # chk_le WHAT MAX ACTUAL (numbers, may be fractional)
	awk -v a="$3" -v m="$2" 'BEGIN { exit !(a != "" && a + 0 <= m + 0) }' ||
		_t_errs+=("$1: $3 > $2")
}
chk_ge() { # chk_ge WHAT MIN ACTUAL
	awk -v a="$3" -v m="$2" 'BEGIN { exit !(a != "" && a + 0 >= m + 0) }' ||
		_t_errs+=("$1: $3 < $2")
}
chk_fail() { _t_errs+=("$1"); }

t_done() { # t_done NAME
	if [ ${#_t_errs[@]} -eq 0 ]; then
		t_pass "$1"
	else
		local IFS=';'
		t_fail "$1" "${_t_errs[*]}"
	fi
	_t_errs=()
}

# Logs shown when a test fails: the output of the last `mtlsd -t`, or the
# daemon instance under test, nginx, and the last client's stderr.
it_dump_logs() {
	local f
	if [ -n "${CHK_OUT:-}" ]; then
		echo "#   --- mtlsd -t output:"
		head -n 15 <<<"$CHK_OUT" | sed 's/^/#   | /'
		return
	fi
	if [ -n "${CUR_INST:-}" ] && [ -f "$TMP/inst/$CUR_INST/mtlsd.log" ]; then
		if [ ! -f "$TMP/inst/$CUR_INST/term-sent" ] &&
			grep -q 'shutdown (signal' "$TMP/inst/$CUR_INST/mtlsd.log"; then
			echo "#   NOTE: mtlsd ($CUR_INST) got a stop signal the harness did not send (someone else's kill?)"
		fi
		echo "#   --- mtlsd ($CUR_INST) log, last lines (access lines: last 3):"
		grep -v 'mtlsd\[access\]' "$TMP/inst/$CUR_INST/mtlsd.log" | tail -n 12 | sed 's/^/#   | /'
		grep 'mtlsd\[access\]' "$TMP/inst/$CUR_INST/mtlsd.log" | tail -n 3 | sed 's/^/#   | /'
	fi
	if [ -n "${NG_DIR:-}" ]; then
		if [ -s "$NG_DIR/error.log" ]; then
			echo "#   --- nginx error.log, last lines:"
			grep -v 'closed keepalive connection' "$NG_DIR/error.log" | tail -n 4 | sed 's/^/#   | /'
		fi
		if [ -s "$NG_DIR/access.log" ]; then
			echo "#   --- nginx access.log, last lines:"
			tail -n 3 "$NG_DIR/access.log" | sed 's/^/#   | /'
		fi
	fi
	if [ -n "${R_E:-}" ] && [ -s "$R_E" ]; then
		echo "#   --- curl stderr:"
		tail -n 5 "$R_E" | sed 's/^/#   | /'
	fi
}

# -------------------------------------------------------- waiting, watchdog

# wait_until TIMEOUT CMD...: poll CMD until it succeeds; 1 after TIMEOUT s,
# 99 at once when CMD returns 99 ("cannot happen any more", e.g. the process
# died). The pause between polls is a poll interval, not a wait for an event.
wait_until() {
	local timeout=$1 deadline rc
	shift
	deadline=$(($(date +%s%N) + timeout * 1000000000))
	while :; do
		"$@"
		rc=$?
		[ "$rc" -eq 0 ] && return 0
		[ "$rc" -eq 99 ] && return 99
		[ "$(date +%s%N)" -lt "$deadline" ] || return 1
		sleep 0.05
	done
}

# The watchdog bounds the whole run: on expiry it signals the run (whose trap
# reports and cleans up) and ends the run's direct children (a hung client).
# It ticks once a second so that it also ends when the run has gone, never
# holding the run's output open.
_watchdog_start() {
	local main=$$ limit=${IT_TIMEOUT:-900}
	(
		exec >/dev/null
		n=0
		while kill -0 "$main" 2>/dev/null; do
			if [ "$n" -ge "$limit" ]; then
				echo "# watchdog: run exceeded ${limit}s, aborting" >&2
				touch "$TMP/watchdog-fired"
				kill -ALRM "$main" 2>/dev/null
				pkill -TERM -P "$main" -x curl 2>/dev/null
				pkill -TERM -P "$main" -x python3 2>/dev/null
				exit 0
			fi
			sleep 1
			n=$((n + 1))
		done
	) &
	WATCHDOG_PID=$!
}

_on_alarm() {
	t_fail "watchdog" "whole run exceeded ${IT_TIMEOUT:-900}s"
	it_finish
}

# ------------------------------------------------------------ setup/cleanup

it_init() {
	: "${MTLSD_BIN:?set MTLSD_BIN to the mtlsd binary}"
	[ -x "$MTLSD_BIN" ] || { echo "MTLSD_BIN=$MTLSD_BIN is not executable" >&2; exit 2; }
	MTLSD_BIN=$(cd "$(dirname "$MTLSD_BIN")" && pwd)/$(basename "$MTLSD_BIN")
	local t
	for t in nginx curl openssl python3; do
		command -v "$t" >/dev/null || { echo "missing tool: $t" >&2; exit 2; }
	done
	TMP=$(mktemp -d "${TMPDIR:-/tmp}/mtlsd-it.XXXXXX")
	chmod 0755 "$TMP"
	mkdir -p "$TMP/r" "$TMP/inst"
	PKI=$TMP/pki
	trap _on_alarm ALRM
	trap it_cleanup EXIT
	trap 'echo "# interrupted" >&2; exit 130' INT TERM
	_watchdog_start
	echo "# temp dir: $TMP"
	echo "# mtlsd: $MTLSD_BIN${MTLSD_WRAPPER:+ (under $MTLSD_WRAPPER)}"
}

it_cleanup() {
	local rc=$? d
	trap - EXIT ALRM
	for d in "$TMP"/inst/*/; do
		[ -f "$d/pid" ] || continue
		_mtlsd_kill "$(basename "$d")"
	done
	nginx_stop
	vault_cleanup
	[ -n "${WATCHDOG_PID:-}" ] && kill "$WATCHDOG_PID" 2>/dev/null
	if [ "${IT_KEEP:-0}" = 1 ]; then
		echo "# kept $TMP"
	elif [ "$T_FAIL" -gt 0 ]; then
		# keep the logs for a post-mortem, not the large payloads
		rm -f "$TMP"/www/big "$TMP"/www/upload/* "$TMP"/payload.* 2>/dev/null
		echo "# logs kept in $TMP"
	else
		rm -rf "$TMP"
	fi
	exit "$rc"
}

# it_finish: summary line, exit status.
it_finish() {
	trap - ALRM
	echo "$T_PASS passed, $T_FAIL failed"
	if [ "$T_FAIL" -gt 0 ]; then
		printf '# failed: %s\n' "${T_FAILED[@]}"
		exit 1
	fi
	exit 0
}

# ----------------------------------------------------------------- the PKI

pki_make() {
	bash "$SRC_DIR/contrib/mkpki.sh" "$PKI" >"$TMP/mkpki.log" 2>&1 || {
		cat "$TMP/mkpki.log" >&2
		return 1
	}
	SERIAL_PEM=$(cat "$PKI/info/client-pem.serial")
	SERIAL_P12=$(cat "$PKI/info/client-p12.serial")
	SERIAL_CHAIN=$(cat "$PKI/info/client-chain.serial")
}

# ------------------------------------------------------------------- nginx

# nginx_start: the mTLS upstream. Three TLS servers:
#   NG_PORT    localhost cert from server-root; the test locations
#   NG_WRONG   certificate for wrong.example (name mismatch)
#   NG_UNTRUST certificate from a CA mtlsd does not trust
# and NG_CLOSED, a port nothing listens on. All require a client certificate
# chaining to the client root (intermediates sent by the client are used).
nginx_start() {
	local ports echo_mod user_line=""
	NG_DIR=$TMP/nginx
	WWW=$TMP/www
	mkdir -p "$NG_DIR"/{body,proxy,fastcgi,uwsgi,scgi} "$WWW/upload"
	ports=$($NETTOOL freeport 4) || return 1
	read -r NG_PORT NG_WRONG NG_UNTRUST NG_CLOSED <<<"$ports"
	head -c 52428800 /dev/urandom >"$WWW/big"
	BIG_SHA=$(sha256sum "$WWW/big" | cut -d' ' -f1)
	echo_mod=/usr/lib/nginx/modules/ngx_http_echo_module.so
	[ -f "$echo_mod" ] || { echo "nginx echo module missing ($echo_mod): install libnginx-mod-http-echo" >&2; return 1; }
	# as root the workers must read the 0700 temp dir and write uploads
	[ "$(id -u)" = 0 ] && user_line="user root root;"
	cat >"$NG_DIR/nginx.conf" <<EOF
load_module $echo_mod;
$user_line
worker_processes 1;
pid $NG_DIR/nginx.pid;
error_log $NG_DIR/error.log info;
events { worker_connections 1024; }
http {
    log_format mt 'conn=\$connection reqs=\$connection_requests serial=\$ssl_client_serial '
                  'verify=\$ssl_client_verify len=\$request_length status=\$status '
                  'method=\$request_method uri=\$request_uri port=\$server_port '
                  'host=\$http_host proto=\$ssl_protocol cipher=\$ssl_cipher curve=\$ssl_curve '
                  'dn="\$ssl_client_s_dn"';
    access_log $NG_DIR/access.log mt;
    client_body_temp_path $NG_DIR/body;
    proxy_temp_path $NG_DIR/proxy;
    fastcgi_temp_path $NG_DIR/fastcgi;
    uwsgi_temp_path $NG_DIR/uwsgi;
    scgi_temp_path $NG_DIR/scgi;
    default_type text/plain;
    keepalive_timeout 75s;
    keepalive_requests 10000;
    client_max_body_size 200m;
    ssl_protocols TLSv1.2 TLSv1.3;
    ssl_verify_client on;
    ssl_client_certificate $PKI/trust/client-ca-bundle.pem;
    ssl_verify_depth 3;

    server {
        listen 127.0.0.1:$NG_PORT ssl;
        server_name localhost;
        ssl_certificate $PKI/server/localhost.crt;
        ssl_certificate_key $PKI/server/localhost.key;
        root $WWW;
        add_header X-Client-Serial \$ssl_client_serial always;
        add_header X-Client-DN \$ssl_client_s_dn always;
        add_header X-Upstream-Conn \$connection always;
        add_header X-Upstream-Test "passed-through" always;
        add_header X-Multi "one" always;
        add_header X-Multi "two" always;

        location / { return 200 "hello from nginx\n"; }
        location = /big { default_type application/octet-stream; }
        location /upload/ {
            dav_methods PUT;
            create_full_put_path on;
            client_body_buffer_size 1m;
        }
        location = /slow { echo_sleep 3; echo "slow done"; }
        location ~ ^/.+/slow$ { echo_sleep 3; echo "slow done"; }
        location = /chunked {
            echo "part one"; echo_flush;
            echo "part two"; echo_flush;
            echo "part three";
        }
        location = /headers {
            return 200 "x_custom=[\$http_x_custom] keep_alive=[\$http_keep_alive] proxy_connection=[\$http_proxy_connection] proxy_authorization=[\$http_proxy_authorization] x_drop_me=[\$http_x_drop_me] te=[\$http_te] host=[\$http_host]\n";
        }
        location = /teapot { return 418 "short and stout\n"; }
        # nginx closes the connection 1s after this response (stale pool test)
        location = /short-keepalive { keepalive_timeout 1s; return 200 "short keepalive\n"; }
    }
    server {
        listen 127.0.0.1:$NG_WRONG ssl;
        ssl_certificate $PKI/server/wrong-name.crt;
        ssl_certificate_key $PKI/server/wrong-name.key;
        location / { return 200 "wrong-name server\n"; }
    }
    server {
        listen 127.0.0.1:$NG_UNTRUST ssl;
        ssl_certificate $PKI/server/untrusted.crt;
        ssl_certificate_key $PKI/server/untrusted.key;
        location / { return 200 "untrusted server\n"; }
    }
}
EOF
	if ! nginx -t -q -p "$NG_DIR/" -c "$NG_DIR/nginx.conf" -e "$NG_DIR/error.log" 2>"$NG_DIR/t.log"; then
		cat "$NG_DIR/t.log" >&2
		return 1
	fi
	nginx -p "$NG_DIR/" -c "$NG_DIR/nginx.conf" -e "$NG_DIR/error.log" -g 'daemon off;' \
		>"$NG_DIR/stdout.log" 2>&1 &
	NG_PID=$!
	if ! wait_until 15 _nginx_ready; then
		echo "nginx did not become ready on 127.0.0.1:$NG_PORT" >&2
		tail -n 20 "$NG_DIR/error.log" >&2
		return 1
	fi
}

_nginx_ready() {
	kill -0 "$NG_PID" 2>/dev/null || return 99
	local p
	for p in "$NG_PORT" "$NG_WRONG" "$NG_UNTRUST"; do
		$NETTOOL listening "$p" || return 1
	done
}

nginx_stop() {
	[ -n "${NG_PID:-}" ] || return 0
	pid_stop QUIT "$NG_PID"
	NG_PID=
}

_not_running() { ! kill -0 "$1" 2>/dev/null; }

# pid_stop SIGNAL PID: send SIGNAL, wait (bounded) for the process to end,
# SIGKILL it if it does not, reap it
pid_stop() {
	kill -"$1" "$2" 2>/dev/null
	wait_until 10 _not_running "$2" || kill -KILL "$2" 2>/dev/null
	wait "$2" 2>/dev/null
}

# curl straight to nginx with a client certificate (fixture checks)
nginx_curl() {
	curl -sS --max-time 10 --cacert "$PKI/trust/server-root.pem" "$@"
}

# ngx_log TAG: the access-log line of the request whose URI contains TAG
# (nginx logs after the response: wait for it, bounded).
ngx_log() {
	wait_until 5 grep -q -- "uri=[^ ]*$1" "$NG_DIR/access.log" || return 1
	grep -- "uri=[^ ]*$1" "$NG_DIR/access.log" | tail -n 1
}

# ngx_field LINE NAME: value of NAME=... in an access-log line
ngx_field() {
	sed -n "s/.* $2=\\([^ ]*\\).*/\\1/p; s/^$2=\\([^ ]*\\).*/\\1/p" <<<"$1" | head -n 1
}

# ------------------------------------------------------------------- mtlsd

# mtlsd_write_config INST [EXTRA-YAML]: a main config for instance INST with
# one proxy listener on port 0, its own mappings.d, the PKI's certs.d.
# EXTRA-YAML (e.g. a timeouts: line) is appended. Mapping files go into
# $TMP/inst/INST/mappings.d (see mtlsd_mapping_file).
mtlsd_write_config() {
	local inst=$1 extra=${2:-} d=$TMP/inst/$1
	mkdir -p "$d/mappings.d" "$d/state"
	chmod 0700 "$d/state"
	cat >"$d/mtlsd.yaml" <<EOF
# mtlsd integration test instance "$inst"
proxy:
  listen: ["127.0.0.1:0"]
mappings_dir: mappings.d
certs_dir: $PKI/certs.d
state_dir: $d/state
log: {level: ${IT_LOGLEVEL:-info}, access_log: true}
$extra
EOF
	# IT_WORKERS=N runs every instance with N event-loop threads (unless
	# the test sets workers itself)
	case $extra in *workers:*) ;; *)
		[ -n "${IT_WORKERS:-}" ] && echo "workers: $IT_WORKERS" >>"$d/mtlsd.yaml" ;;
	esac
}

# mtlsd_mapping_file INST FILE < YAML: write a mapping file atomically
# (a temp name not ending in .yaml, then rename: inotify sees whole files).
mtlsd_mapping_file() {
	local d=$TMP/inst/$1/mappings.d
	cat >"$d/.$2.tmp" && mv -f "$d/.$2.tmp" "$d/$2"
}

# mtlsd_start INST: start it in the background, wait for "ready: generation 1".
# Returns 1 (after a failed test line) when it does not get ready.
mtlsd_start() {
	local inst=$1 d=$TMP/inst/$1 limit=30
	CUR_INST=$inst
	[ -n "${MTLSD_WRAPPER:-}" ] && limit=120
	CHK_OUT=
	rm -f "$d/term-sent"
	: >"$d/mtlsd.log"
	# shellcheck disable=SC2086
	${MTLSD_WRAPPER:-} "$MTLSD_BIN" -c "$d/mtlsd.yaml" >>"$d/mtlsd.log" 2>&1 &
	echo $! >"$d/pid"
	if ! wait_until "$limit" _mtlsd_ready "$inst"; then
		if _not_running "$(cat "$d/pid")"; then
			t_fail "$inst: mtlsd starts" "exited before 'ready: generation 1'"
			rm -f "$d/pid"
		else
			t_fail "$inst: mtlsd starts" "no 'ready: generation 1' within ${limit}s"
			_mtlsd_kill "$inst"
		fi
		return 1
	fi
}

_mtlsd_ready() {
	local d=$TMP/inst/$1
	grep -Eq 'ready: generation 1([^0-9]|$)' "$d/mtlsd.log" && return 0
	_not_running "$(cat "$d/pid")" && return 99
	return 1
}

# mtlsd_port INST NAME: dedicated port of mapping NAME (the latest one logged)
mtlsd_port() {
	sed -n "s/.*listening on 127\\.0\\.0\\.1:\\([0-9][0-9]*\\) (mapping $2).*/\\1/p" \
		"$TMP/inst/$1/mtlsd.log" | tail -n 1
}

# mtlsd_proxy_port INST
mtlsd_proxy_port() {
	sed -n 's/.*listening on 127\.0\.0\.1:\([0-9][0-9]*\) (proxy).*/\1/p' \
		"$TMP/inst/$1/mtlsd.log" | tail -n 1
}

mtlsd_pid() { cat "$TMP/inst/$1/pid" 2>/dev/null; }
mtlsd_running() { [ -f "$TMP/inst/$1/pid" ] && kill -0 "$(mtlsd_pid "$1")" 2>/dev/null; }

# mtlsd_log_offset INST: current size of the log (for "after this point")
mtlsd_log_offset() { stat -c %s "$TMP/inst/$1/mtlsd.log"; }

# mtlsd_log_since INST OFFSET: log text written after OFFSET
mtlsd_log_since() { tail -c +"$(($2 + 1))" "$TMP/inst/$1/mtlsd.log"; }

# mtlsd_wait_log INST OFFSET ERE TIMEOUT: wait for ERE after OFFSET
mtlsd_wait_log() {
	wait_until "$4" _log_has_since "$1" "$2" "$3"
}
# (grep reads to the end: with -q it would exit at the first match, tail
# would die of SIGPIPE on a large log, and pipefail would make it a miss)
_log_has_since() { mtlsd_log_since "$1" "$2" | grep -E -- "$3" >/dev/null; }

# mtlsd_term INST: SIGTERM, remembered (a stop the harness did not send is
# pointed out when a test fails)
mtlsd_term() {
	touch "$TMP/inst/$1/term-sent"
	kill -TERM "$(mtlsd_pid "$1")" 2>/dev/null
}

# Sanitizer reports in a daemon log (ASan, LSan, UBSan).
SAN_ERE='ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:|SUMMARY: (Address|Undefined|Leak|Thread)Sanitizer|WARNING: ThreadSanitizer'

# mtlsd_stop INST: SIGTERM, wait (bounded) for the exit, and test that it
# exited 0 with no sanitizer report in its log.
mtlsd_stop() {
	local inst=$1 d=$TMP/inst/$1 pid rc limit=30
	CUR_INST=$inst
	pid=$(mtlsd_pid "$inst") || return 0
	[ -n "$pid" ] || return 0
	# under valgrind the exit includes its leak check
	[ -n "${MTLSD_WRAPPER:-}" ] && limit=120
	mtlsd_term "$inst"
	if wait_until "$limit" _not_running "$pid"; then
		wait "$pid" 2>/dev/null
		rc=$?
	else
		kill -KILL "$pid" 2>/dev/null
		wait "$pid" 2>/dev/null
		rc=timeout
	fi
	rm -f "$d/pid"
	chk_eq "exit status after SIGTERM" 0 "$rc"
	if grep -Eq "$SAN_ERE" "$d/mtlsd.log"; then
		chk_fail "sanitizer report: $(grep -Em1 "$SAN_ERE" "$d/mtlsd.log")"
	fi
	t_done "$inst: SIGTERM exits 0, log free of sanitizer reports"
	MTLSD_LAST_RC=$rc
}

# _mtlsd_kill INST: cleanup path, no test
_mtlsd_kill() {
	local d=$TMP/inst/$1 pid
	pid=$(cat "$d/pid" 2>/dev/null) || return 0
	mtlsd_term "$1"
	wait_until 10 _not_running "$pid" || kill -KILL "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
	rm -f "$d/pid"
	if grep -Eq "$SAN_ERE" "$d/mtlsd.log"; then
		echo "# sanitizer report in $1's log:" >&2
		grep -EA5 "$SAN_ERE" "$d/mtlsd.log" | head -n 20 | sed 's/^/#   | /' >&2
	fi
}

# mtlsd_check CONFIG: run `mtlsd -t -c CONFIG`; sets CHK_RC and CHK_OUT
mtlsd_check() {
	# shellcheck disable=SC2086 # the wrapper is a command line
	CHK_OUT=$(timeout 60 ${MTLSD_WRAPPER:-} "$MTLSD_BIN" -t -c "$1" 2>&1)
	CHK_RC=$?
}

# ------------------------------------------------------------ HTTP clients

# req NAME CURL-ARGS...: one curl run. Sets R_STATUS (http code, 000 when
# none), R_RC (curl exit), R_TIME (total seconds), R_H/R_B/R_E (headers,
# body, stderr files); the status is also written to $TMP/r/NAME.s.
req() {
	local n=$1 out
	shift
	R_H=$TMP/r/$n.h R_B=$TMP/r/$n.b R_E=$TMP/r/$n.e
	out=$(curl -sS --max-time "${REQ_TIMEOUT:-30}" -D "$R_H" -o "$R_B" \
		-w '%{http_code} %{time_total}' "$@" 2>"$R_E")
	R_RC=$?
	R_STATUS=${out%% *}
	R_TIME=${out#* }
	[ -n "$R_STATUS" ] || R_STATUS=000
	echo "$R_STATUS" >"$TMP/r/$n.s" # for requests run in the background
}

# hdr NAME [FILE]: value of the last header NAME in FILE (default R_H)
hdr() {
	tr -d '\r' <"${2:-$R_H}" | awk -v n="$1" '
		BEGIN { n = tolower(n) }
		{ i = index($0, ":"); if (i && tolower(substr($0, 1, i - 1)) == n) { v = substr($0, i + 1); sub(/^[ \t]+/, "", v) } }
		END { print v }'
}

# hdr_all NAME [FILE]: every value of NAME, comma-joined, in order
hdr_all() {
	tr -d '\r' <"${2:-$R_H}" | awk -v n="$1" '
		BEGIN { n = tolower(n); sep = "" }
		/^HTTP\// { out = ""; sep = "" }
		{ i = index($0, ":"); if (i && tolower(substr($0, 1, i - 1)) == n) { v = substr($0, i + 1); sub(/^[ \t]+/, "", v); out = out sep v; sep = "," } }
		END { print out }'
}

body() { cat "$R_B" 2>/dev/null; }

# raw PORT TIMEOUT < BYTES: send raw bytes to 127.0.0.1:PORT. Sets RAW (the
# response as text, CRs removed), RAW_STATUS (status code or 000).
raw() {
	RAW=$($NETTOOL raw 127.0.0.1 "$1" "$2" 2>"$TMP/r/raw.e" | tr -d '\r')
	RAW_STATUS=$(head -n 1 <<<"$RAW" | awk '/^HTTP\/1\.[01] [0-9][0-9][0-9]/ { print $2 }')
	[ -n "$RAW_STATUS" ] || RAW_STATUS=000
}

# raw_hdr NAME: header NAME of the last raw response
raw_hdr() {
	awk -v n="$1" 'BEGIN { n = tolower(n) } /^$/ { exit }
		{ i = index($0, ":"); if (i && tolower(substr($0, 1, i - 1)) == n) { v = substr($0, i + 1); sub(/^[ \t]+/, "", v) } }
		END { print v }' <<<"$RAW"
}

# refusal_checks WHAT STATUS CODE: the refusal contract on the last req:
# STATUS, X-Mtlsd-Error: CODE, and a one-line text body.
refusal_checks() {
	chk_eq "$1 status" "$2" "$R_STATUS"
	chk_eq "$1 X-Mtlsd-Error" "$3" "$(hdr X-Mtlsd-Error)"
	local lines
	lines=$(wc -l <"$R_B" 2>/dev/null)
	[ -s "$R_B" ] && [ "${lines:-0}" -le 1 ] ||
		chk_fail "$1 body is not one line of text ($(wc -c <"$R_B" 2>/dev/null || echo no) bytes, ${lines:-no} lines)"
}

sha() { sha256sum "$1" | cut -d' ' -f1; }

# client_cert_drop WORKDIR DEST_DIR CN: a new client certificate from the
# test client root (EC P-256, valid from now for a year) made in WORKDIR,
# then moved into DEST_DIR as client2.key/client2.crt (key first, each by
# rename: a watcher never sees half a file). Prints its serial.
client_cert_drop() {
	local w=$1 dest=$2 cn=$3
	mkdir -p "$w"
	(umask 077 && openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$w/client2.key" 2>/dev/null)
	openssl req -new -key "$w/client2.key" -subj "/O=mtlsd test/CN=$cn" -out "$w/client2.csr"
	printf 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth\n' >"$w/ext"
	openssl x509 -req -sha256 -days 365 -in "$w/client2.csr" -CA "$PKI/ca/client-root.crt" \
		-CAkey "$PKI/ca/client-root.key" -set_serial "0x$(openssl rand -hex 12)" \
		-extfile "$w/ext" -out "$w/client2.crt" 2>/dev/null
	openssl x509 -in "$w/client2.crt" -noout -serial | sed 's/^serial=//'
	mv "$w/client2.key" "$dest/client2.key"
	mv "$w/client2.crt" "$dest/client2.crt"
}

# upstream_conns INST: ESTABLISHED connections from mtlsd INST to NG_PORT
upstream_conns() { $NETTOOL established "$(mtlsd_pid "$1")" "$NG_PORT"; }

# -------------------------------------------------------- the main instance

# main_instance: start (once) the instance most tests share: a proxy port
# and one dedicated port per mapping, in two mapping files.
#   pem        https://localhost:NG_PORT/          client-pem (.crt/.key)
#   p12        https://localhost:NG_PORT/p12/      client-p12 (PKCS#12)
#   chain      https://localhost:NG_PORT/chain/    client-chain (leaf+int+key)
#   limited    https://localhost:NG_PORT/limited/  rate_limit 1/s
#   disabled   https://localhost:NG_PORT/disabled/ enabled: false
#   wrongname  https://localhost:NG_WRONG/         server cert for wrong.example
#   untrusted  https://localhost:NG_UNTRUST/       server cert from another CA
#   down       https://localhost:NG_CLOSED/        nothing listens
#   nodns      https://mtlsd-it.invalid/           does not resolve (RFC 6761)
# Sets P_PROXY, P_PEM, P_P12, P_CHAIN, P_LIMITED, P_DISABLED, P_WRONG,
# P_UNTRUST, P_DOWN, P_NODNS. Returns 1 when it cannot start.
main_instance() {
	local d=$TMP/inst/main pid rc n
	CUR_INST=main
	if [ -f "$d/pid" ] && ! mtlsd_running main; then
		# it died during an earlier test: say so once (with its log), then
		# start a fresh one so that the remaining tests still mean something
		pid=$(mtlsd_pid main)
		wait "$pid" 2>/dev/null
		rc=$?
		rm -f "$d/pid"
		t_fail "main: mtlsd still alive after the previous test" "it died (exit status $rc)"
		n=1
		while [ -f "$d/mtlsd.log.$n" ]; do n=$((n + 1)); done
		mv "$d/mtlsd.log" "$d/mtlsd.log.$n"
		echo "# restarting main (old log: $d/mtlsd.log.$n)"
		mtlsd_start main || return 1
	elif ! mtlsd_running main; then
		[ -f "$d/started" ] && return 1 # could not start before
		_main_instance_config
		touch "$d/started"
		mtlsd_start main || return 1
		local n missing=""
		for n in proxy pem p12 chain limited disabled wrongname untrusted down nodns; do
			if [ "$n" = proxy ]; then
				[ -n "$(mtlsd_proxy_port main)" ] || missing+=" proxy"
			else
				[ -n "$(mtlsd_port main "$n")" ] || missing+=" $n"
			fi
		done
		[ -z "$missing" ] || chk_fail "no 'listening on 127.0.0.1:PORT (...)' line for:$missing"
		chk_match "ready line" "ready: generation 1, 9 mappings" "$(grep -m1 'ready: generation' "$TMP/inst/main/mtlsd.log")"
		t_done "main: ready, logs its proxy port and each mapping's port"
	fi
	P_PROXY=$(mtlsd_proxy_port main)
	P_PEM=$(mtlsd_port main pem)
	P_P12=$(mtlsd_port main p12)
	P_CHAIN=$(mtlsd_port main chain)
	P_LIMITED=$(mtlsd_port main limited)
	P_DISABLED=$(mtlsd_port main disabled)
	P_WRONG=$(mtlsd_port main wrongname)
	P_UNTRUST=$(mtlsd_port main untrusted)
	P_DOWN=$(mtlsd_port main down)
	P_NODNS=$(mtlsd_port main nodns)
}

_main_instance_config() {
	local trust="trust: {ca_file: $PKI/trust/server-root.pem}"
	# the admin endpoint: leak checks read mtlsd_heap_in_use_bytes from it
	mtlsd_write_config main 'admin: {listen: "127.0.0.1:0"}'
	mtlsd_mapping_file main 10-good.yaml <<EOF
# mappings that reach the real upstream
mappings:
  - name: pem
    url: https://localhost:$NG_PORT/
    listen: 127.0.0.1:0
    certificate: client-pem
    $trust
  - name: p12
    url: https://localhost:$NG_PORT/p12/
    listen: 127.0.0.1:0
    certificate: client-p12
    $trust
  - name: chain
    url: https://localhost:$NG_PORT/chain/
    listen: "127.0.0.1:0"
    certificate: client-chain
    $trust
  - name: limited
    url: https://localhost:$NG_PORT/limited/
    listen: 127.0.0.1:0
    certificate: client-pem
    $trust
    rate_limit: 1/s
  - name: disabled
    url: https://localhost:$NG_PORT/disabled/
    listen: 127.0.0.1:0
    certificate: client-pem
    $trust
    enabled: false
EOF
	# validate: false — these endpoints must fail at request time (502), not
	# hold the certificate back as pending
	mtlsd_mapping_file main 20-broken-upstreams.yaml <<EOF
mappings:
  - name: wrongname
    url: https://localhost:$NG_WRONG/
    listen: 127.0.0.1:0
    certificate: client-pem
    $trust
    validate: false
  - name: untrusted
    url: https://localhost:$NG_UNTRUST/
    listen: 127.0.0.1:0
    certificate: client-pem
    $trust
    validate: false
  - name: down
    url: https://localhost:$NG_CLOSED/
    listen: 127.0.0.1:0
    certificate: client-pem
    $trust
    validate: false
  - name: nodns
    url: https://mtlsd-it.invalid/
    listen: 127.0.0.1:0
    certificate: client-pem
    $trust
    validate: false
EOF
}

# --------------------------------------------- process figures, leak checks

# proc_fds PID: open descriptors of PID
proc_fds() { ls "/proc/$1/fd" 2>/dev/null | wc -l; }

# proc_cpu_ticks PID: CPU time of PID (utime + stime) in clock ticks
proc_cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }

# proc_rss_kb PID: resident set size of PID in kB
proc_rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status" 2>/dev/null; }

# mtlsd_admin_port INST: the admin endpoint's TCP port, from the log
# (admin.listen "127.0.0.1:0")
mtlsd_admin_port() {
	sed -n 's/.*admin endpoint listening on 127\.0\.0\.1:\([0-9][0-9]*\)$/\1/p' \
		"$TMP/inst/$1/mtlsd.log" | tail -n 1
}

# mtlsd_metric INST SERIES: the value of the /metrics sample named exactly
# SERIES (name{labels}); empty when the endpoint or the sample is missing
mtlsd_metric() {
	local port
	port=$(mtlsd_admin_port "$1")
	[ -n "$port" ] || return 1
	curl -sS --max-time 30 "http://127.0.0.1:$port/metrics" 2>/dev/null |
		awk -v s="$2" 'index($0, s " ") == 1 { print substr($0, length(s) + 2) }'
}

# Leak checks after faults (issue: "after every fault the process has no
# leaked file descriptors or memory"). leak_mark INST remembers, once the
# instance is warmed up, its descriptors that are not pooled upstream
# connections (those come and go with pool.idle_timeout and are not leaks)
# and its heap in use (mtlsd_heap_in_use_bytes, glibc mallinfo2). leak_check
# INST WHAT, after the faults, tests that the descriptors are back to the
# mark exactly (waiting, bounded, for closes in flight) and that the heap
# grew by at most LEAK_HEAP_SLACK bytes (default 256 KiB).
#
# Warm-up matters: some allocations legitimately outlive a request and are
# bounded caches, so callers run a round of the same faults before the mark.
# The big one is wolfSSL's fixed-point ECC cache (Debian builds it with
# FP_ECC): up to 15 precomputed tables of ~800 KiB, one per curve point
# used in a scalar multiplication (our keys, the CA keys, and each new
# handshake's ephemeral server point, replacing the least used entry once
# full): about 12 MiB once 15 or so handshakes have been made, then flat.
# The rest fits in the slack: TLS session cache per destination, libevent's
# and the log's buffers, tcache/fastbin chunks that mallinfo2 counts as in
# use. A leak per fault times the repetitions the callers make exceeds it.
# Under valgrind and ASan the allocator statistics read 0 (their malloc
# replaces glibc's; they check leaks themselves): the heap part is skipped.
LEAK_HEAP_SLACK=${LEAK_HEAP_SLACK:-262144}

_fds_outside_pool() {
	local n u
	n=$(proc_fds "$(mtlsd_pid "$1")")
	u=$(upstream_conns "$1")
	echo $((n - ${u:-0}))
}

leak_mark() {
	LEAK_FD0=$(_fds_outside_pool "$1")
	LEAK_HEAP0=$(mtlsd_metric "$1" mtlsd_heap_in_use_bytes)
}

leak_check() {
	local inst=$1 what=$2 fds heap
	_leak_fds_back() { [ "$(_fds_outside_pool "$1")" -le "$LEAK_FD0" ]; }
	wait_until 20 _leak_fds_back "$inst"
	fds=$(_fds_outside_pool "$inst")
	if [ "$fds" != "$LEAK_FD0" ]; then
		echo "# $what: mtlsd's descriptors now (the mark had $LEAK_FD0 outside the pool):"
		$NETTOOL fds "$(mtlsd_pid "$inst")" | sed 's/^/#   /'
	fi
	chk_eq "$what: descriptors (not counting pooled upstream connections) vs before" \
		"$LEAK_FD0" "$fds"
	heap=$(mtlsd_metric "$inst" mtlsd_heap_in_use_bytes)
	if [ -z "$heap" ] || [ -z "$LEAK_HEAP0" ]; then
		chk_fail "$what: no mtlsd_heap_in_use_bytes in /metrics (admin endpoint?)"
	elif [ "$LEAK_HEAP0" = 0 ]; then
		echo "# $what: heap in use not measurable in this build (valgrind/ASan malloc); fds only"
	else
		echo "# $what: heap in use $LEAK_HEAP0 → $heap bytes ($((heap - LEAK_HEAP0)) bytes), fds $LEAK_FD0 → $fds"
		chk_le "$what: heap growth in bytes (slack $LEAK_HEAP_SLACK)" "$LEAK_HEAP_SLACK" \
			"$((heap - LEAK_HEAP0))"
	fi
}

# ------------------------------------------------------------- Vault (vaultd)

# The Vault tests (t_10x_vault*.sh) talk to tests/vault/vaultd.py, the Vault
# HTTP API test double (tests/vault/README.md), and to their own nginx
# ("vnginx") that requires a client certificate from vaultd's PKI (or from
# the run's client root, for material made by hand).
#
# Every vaultd of a run issues from the same PKI: the first one makes the CA
# files, later ones get a copy in their own --dir before they start (vaultd
# reuses existing CA files), so the one vnginx trusts them all.

VAULTD_PY=$SRC_DIR/tests/vault/vaultd.py

# vaultd_start NAME [VAULTD-ARGS...]: start vaultd (--exit-with-parent,
# --dir $TMP/vaultd/NAME/dir) and wait (bounded) for its ports file. Sets
# VD_ADDR (https://127.0.0.1:PORT), VD_PORT, VD_CTL (control URL),
# VD_CA (vault.ca_file), VD_CHAIN (the PKI chain). Returns 1 (after
# a failed test line) when it does not start.
vaultd_start() {
	local name=$1 d=$TMP/vaultd/$1
	shift
	mkdir -p "$d/dir"
	[ -d "$TMP/vaultd-ca" ] && cp -p "$TMP/vaultd-ca"/* "$d/dir/"
	rm -f "$d/ports.json"
	python3 "$VAULTD_PY" --dir "$d/dir" --ports-file "$d/ports.json" --env-file "$d/env" \
		--exit-with-parent "$@" >>"$d/vaultd.log" 2>&1 &
	echo $! >"$d/pid"
	if ! wait_until 30 _vaultd_ready "$name"; then
		t_fail "vaultd $name starts" "no ports file within 30 s: $(tail -n 3 "$d/vaultd.log" | tr '\n' ' ')"
		vaultd_stop "$name"
		return 1
	fi
	eval "$(python3 -c '
import json, sys
p = json.load(open(sys.argv[1]))
for k, v in (("VD_ADDR", "address"), ("VD_PORT", "port"), ("VD_CTL", "control"),
             ("VD_CA", "ca_file"), ("VD_CHAIN", "pki_chain_file")):
    print("%s=%s" % (k, p[v]))' "$d/ports.json")"
	if [ ! -d "$TMP/vaultd-ca" ]; then
		mkdir -p "$TMP/vaultd-ca.tmp"
		cp -p "$d/dir"/* "$TMP/vaultd-ca.tmp/" && mv "$TMP/vaultd-ca.tmp" "$TMP/vaultd-ca"
	fi
}

_vaultd_ready() {
	[ -s "$TMP/vaultd/$1/ports.json" ] && return 0
	_not_running "$(cat "$TMP/vaultd/$1/pid")" && return 99
	return 1
}

# vaultd_stop NAME: SIGTERM by PID, wait (bounded), SIGKILL if needed
vaultd_stop() {
	local pid
	pid=$(cat "$TMP/vaultd/$1/pid" 2>/dev/null) || return 0
	[ -n "$pid" ] || return 0
	pid_stop TERM "$pid"
	rm -f "$TMP/vaultd/$1/pid"
}

# vault_cleanup: it_cleanup's part: every vaultd and the vnginx
vault_cleanup() {
	local d
	for d in "$TMP"/vaultd/*/; do
		[ -f "$d/pid" ] && vaultd_stop "$(basename "$d")"
	done
	vnginx_stop
}

# vctl PATH [JSON]: the current vaultd's control API (/_test/PATH): GET, or
# POST with JSON; prints the answer's body
vctl() {
	if [ $# -gt 1 ]; then
		curl -sS --max-time 20 -H 'Content-Type: application/json' -d "$2" "$VD_CTL/_test/$1"
	else
		curl -sS --max-time 20 "$VD_CTL/_test/$1"
	fi
}

# vapi METHOD PATH [JSON]: a Vault API call with the root token (test setup:
# material made by hand)
vapi() {
	curl -sS --max-time 20 --cacert "$VD_CA" -H 'X-Vault-Token: root' -X "$1" \
		${3:+-d "$3"} "$VD_ADDR/v1/$2"
}

# vjson FILE EXPR...: each Python expression EXPR over the JSON document d
# read from FILE ("-": stdin), one result a line: dicts, lists, booleans and
# None as JSON, strings as they are (newlines as \n); "JSON-ERROR ..." /
# "EXPR-ERROR ..." when it cannot. One python3 run for all (they are slow
# to start on a busy machine).
vjson() {
	python3 -c '
import json, sys
try:
    d = json.load(sys.stdin if sys.argv[1] == "-" else open(sys.argv[1]))
except Exception as e:
    d = None
    err = "JSON-ERROR %s" % e
for x in sys.argv[2:]:
    if d is None:
        print(err)
        continue
    try:
        v = eval(x)
        v = json.dumps(v) if v is None or isinstance(v, (dict, list, bool)) else str(v)
    except Exception as e:
        v = "EXPR-ERROR %r" % e
    print(v.replace("\n", "\\n"))' "$@" 2>&1
}

# vaultd_issued CN: the serials (mtlsd's form) vaultd issued for CN without an
# injected fault, oldest first, one a line
vaultd_issued() {
	vctl pki/issued | python3 -c '
import json, sys
for e in json.load(sys.stdin)["issued"]:
    if e["common_name"] == sys.argv[1] and not e.get("fault"):
        print(e["serial_number"].replace(":", "").upper())' "$1"
}

# ------------------------------------------------- vnginx: the Vault upstream

# vnginx_start: once per run, an nginx on VNG_PORT (TLS, localhost
# certificate from the run's server root) that requires a client certificate
# chaining to vaultd's PKI or to the run's client root, answers
# "vault upstream" with X-Client-Serial, and logs each request's client
# serial ($VNG_DIR/access.log, the ngx_log format). Needs a vaultd started
# before (for its PKI).
vnginx_start() {
	local user_line=""
	[ -n "${VNG_PID:-}" ] && kill -0 "$VNG_PID" 2>/dev/null && return 0
	[ -f "$TMP/vaultd-ca/pki-chain.pem" ] || { echo "vnginx_start: start a vaultd first" >&2; return 1; }
	VNG_DIR=$TMP/vnginx
	mkdir -p "$VNG_DIR"/{body,proxy,fastcgi,uwsgi,scgi}
	VNG_PORT=$($NETTOOL freeport 1) || return 1
	cat "$TMP/vaultd-ca/pki-chain.pem" "$PKI/trust/client-ca-bundle.pem" >"$VNG_DIR/clients.pem"
	[ "$(id -u)" = 0 ] && user_line="user root root;"
	cat >"$VNG_DIR/nginx.conf" <<EOF
$user_line
worker_processes 1;
pid $VNG_DIR/nginx.pid;
error_log $VNG_DIR/error.log info;
events { worker_connections 1024; }
http {
    log_format mt 'conn=\$connection reqs=\$connection_requests serial=\$ssl_client_serial '
                  'verify=\$ssl_client_verify status=\$status uri=\$request_uri '
                  'dn="\$ssl_client_s_dn"';
    access_log $VNG_DIR/access.log mt;
    client_body_temp_path $VNG_DIR/body;
    proxy_temp_path $VNG_DIR/proxy;
    fastcgi_temp_path $VNG_DIR/fastcgi;
    uwsgi_temp_path $VNG_DIR/uwsgi;
    scgi_temp_path $VNG_DIR/scgi;
    default_type text/plain;
    keepalive_timeout 75s;
    keepalive_requests 100000;
    ssl_protocols TLSv1.2 TLSv1.3;
    ssl_verify_client on;
    ssl_client_certificate $VNG_DIR/clients.pem;
    ssl_verify_depth 3;
    server {
        listen 127.0.0.1:$VNG_PORT ssl;
        server_name localhost;
        ssl_certificate $PKI/server/localhost.crt;
        ssl_certificate_key $PKI/server/localhost.key;
        add_header X-Client-Serial \$ssl_client_serial always;
        location / { return 200 "vault upstream\n"; }
    }
}
EOF
	if ! nginx -t -q -p "$VNG_DIR/" -c "$VNG_DIR/nginx.conf" -e "$VNG_DIR/error.log" 2>"$VNG_DIR/t.log"; then
		cat "$VNG_DIR/t.log" >&2
		return 1
	fi
	nginx -p "$VNG_DIR/" -c "$VNG_DIR/nginx.conf" -e "$VNG_DIR/error.log" -g 'daemon off;' \
		>"$VNG_DIR/stdout.log" 2>&1 &
	VNG_PID=$!
	if ! wait_until 15 _vnginx_ready; then
		echo "vnginx did not become ready on 127.0.0.1:$VNG_PORT" >&2
		tail -n 20 "$VNG_DIR/error.log" >&2
		return 1
	fi
}

_vnginx_ready() {
	kill -0 "$VNG_PID" 2>/dev/null || return 99
	$NETTOOL listening "$VNG_PORT"
}

vnginx_stop() {
	[ -n "${VNG_PID:-}" ] || return 0
	pid_stop QUIT "$VNG_PID"
	VNG_PID=
}

# ------------------------------------------------- mtlsd instances with Vault

# mtlsd_vault_config INST AUTH-YAML [EXTRA-YAML]: a main config for INST with
# the admin endpoint on a loopback port, its own certs.d ($TMP/inst/INST/
# certs.d), state_dir $TMP/inst/INST/state and a vault: section for the
# current vaultd; AUTH-YAML is the value of vault.auth, e.g.
# "{token_file: /x}". mtlsd_vault_approle INST writes role_id/secret_id files
# for vaultd's default AppRole and prints the matching AUTH-YAML.
mtlsd_vault_config() {
	local d=$TMP/inst/$1
	mtlsd_write_config "$1" "admin: {listen: \"127.0.0.1:0\"}
vault:
  address: $VD_ADDR
  ca_file: $VD_CA
  auth: $2
${3:-}"
	mkdir -p "$d/certs.d"
	sed -i "s|^certs_dir: .*|certs_dir: $d/certs.d|" "$d/mtlsd.yaml"
}

mtlsd_vault_approle() {
	local d=$TMP/inst/$1
	mkdir -p "$d"
	(umask 077 && echo sidecar-role-id >"$d/role_id" && echo "${2:-sidecar-secret-id}" >"$d/secret_id")
	echo "{approle: {role_id_file: $d/role_id, secret_id_file: $d/secret_id}}"
}

# vault_cert_yaml INST NAME < YAML: certs.d/NAME/certificate.yaml, written
# atomically (a temp name, then rename)
vault_cert_yaml() {
	local d=$TMP/inst/$1/certs.d/$2
	mkdir -p "$d"
	cat >"$d/.certificate.yaml.tmp" && mv -f "$d/.certificate.yaml.tmp" "$d/certificate.yaml"
}

# vault_mapping_yaml NAME CERT: a mapping NAME to vnginx (own port) with
# certificate CERT, as YAML list items for mtlsd_mapping_file
vault_mapping_yaml() { mapping_yaml "$1" "https://localhost:$VNG_PORT/" "$2"; }

# mapping_yaml NAME URL CERTIFICATE [LINE...]: one entry of a mappings: list
# on its own port (127.0.0.1:0), trusting the test server root; each LINE
# (e.g. "validate: false") is added to it
mapping_yaml() {
	local l
	printf '  - name: %s\n    url: %s\n    listen: 127.0.0.1:0\n    certificate: %s\n' "$1" "$2" "$3"
	printf '    trust: {ca_file: %s}\n' "$PKI/trust/server-root.pem"
	shift 3
	for l in "$@"; do printf '    %s\n' "$l"; done
}

# mtlsd_admin INST PATH [CURL-ARGS...]: the admin endpoint's answer body
mtlsd_admin() {
	local port inst=$1 path=$2
	shift 2
	port=$(mtlsd_admin_port "$inst")
	[ -n "$port" ] || return 1
	curl -sS --max-time 30 "$@" "http://127.0.0.1:$port$path"
}

# vstatus INST EXPR...: each EXPR over INST's /status document (d), one a
# line; in EXPR, vc(NAME) is the certificates[] entry NAME
vstatus() {
	local inst=$1 x args=()
	shift
	mtlsd_admin "$inst" /status >"$TMP/r/vstatus.json" 2>/dev/null
	for x in "$@"; do
		args+=("(lambda vc: $x)(lambda n: [c for c in d['certificates'] if c['name'] == n][0])")
	done
	vjson "$TMP/r/vstatus.json" "${args[@]}"
}

# vstatus_chk INST [WHAT EXPECTED EXPR]...: chk_eq WHAT EXPECTED for each EXPR
# over one /status document
vstatus_chk() {
	local inst=$1 i whats=() exps=() exprs=() out=()
	shift
	while [ $# -ge 3 ]; do
		whats+=("$1") exps+=("$2") exprs+=("$3")
		shift 3
	done
	mapfile -t out < <(vstatus "$inst" "${exprs[@]}")
	for i in "${!whats[@]}"; do
		chk_eq "/status ${whats[$i]}" "${exps[$i]}" "${out[$i]:-}"
	done
}

# vault_obtained INST NAME [OFFSET]: serial of the last "certificate 'NAME':
# obtained serial S" line after OFFSET (default: the whole log)
vault_obtained() {
	mtlsd_log_since "$1" "${3:-0}" |
		sed -n "s/.*vault: certificate '$2': obtained serial \\([0-9A-F]*\\) from.*/\\1/p" | tail -n 1
}

# vault_no_secrets WHAT SECRETS FILE...: no FILE (logs, /status dumps)
# holds key material or a Vault secret: "PRIVATE KEY", any line of the
# base64 body of a private key in the Vault caches of every instance, or one
# of the words in SECRETS (secret_ids, tokens, passwords; space-separated)
vault_no_secrets() {
	local what=$1 secrets=$2 f w hits=""
	shift 2
	local keys=$TMP/r/vault-keylines
	: >"$keys"
	for f in "$TMP"/inst/*/state/vault/*/*.pem; do
		[ -f "$f" ] || continue
		awk '/-----BEGIN .*PRIVATE KEY-----/ { k = 1; next } /-----END/ { k = 0 }
			k && length($0) >= 40 { print }' "$f" >>"$keys" 2>/dev/null
	done
	for f in "$@"; do
		[ -f "$f" ] || { hits+=" (missing $f)"; continue; }
		grep -q 'PRIVATE KEY' "$f" && hits+=" 'PRIVATE KEY' in $(basename "$f");"
		[ -s "$keys" ] && grep -qFf "$keys" "$f" && hits+=" key material in $(basename "$f");"
		for w in $secrets; do
			grep -qF -- "$w" "$f" && hits+=" secret '${w:0:6}...' in $(basename "$f");"
		done
	done
	[ -s "$keys" ] || hits+=" (no cached key found to look for)"
	chk_eq "$what: secrets found" "" "$hits"
}

# vtraffic_start NAME PORT: sequential requests to 127.0.0.1:PORT/?t=NAME-I-
# in the background (a 20 ms pause between them) until vtraffic_stop NAME;
# "I STATUS" lines in $TMP/r/NAME.traffic
vtraffic_start() {
	local name=$1 port=$2 tfile=$TMP/r/$1.traffic main=$$
	: >"$tfile"
	rm -f "$TMP/r/$name.stop"
	(
		i=0
		while [ ! -f "$TMP/r/$name.stop" ] && [ "$i" -lt 20000 ] && kill -0 "$main" 2>/dev/null; do
			i=$((i + 1))
			c=$(curl -s -o /dev/null -w '%{http_code}' --max-time 15 "http://127.0.0.1:$port/?t=$name-$i-")
			echo "$i ${c:-000}" >>"$tfile"
			sleep 0.02
		done
	) &
	eval "VT_PID_$name=$!"
}

# vtraffic_stop NAME: sets VT_TOTAL (requests sent) and VT_FAILED (the first
# five "I STATUS" that were not 200, space-separated; empty when none)
vtraffic_stop() {
	local pid
	eval "pid=\${VT_PID_$1:-}"
	touch "$TMP/r/$1.stop"
	if [ -n "$pid" ]; then
		wait_until 30 _not_running "$pid" || kill "$pid" 2>/dev/null
		wait "$pid" 2>/dev/null
	fi
	# shellcheck disable=SC2034 # for the caller
	VT_TOTAL=$(wc -l <"$TMP/r/$1.traffic")
	VT_FAILED=$(awk '$2 != 200' "$TMP/r/$1.traffic" | head -n 5 | tr '\n' ' ')
	VT_FAILED=${VT_FAILED% }
}

# vng_seen SERIAL: vnginx has seen a client certificate with SERIAL
vng_seen() { grep -q "serial=$1 " "$VNG_DIR/access.log"; }

# vault_obtained_other INST NAME SERIAL [OFFSET]: a "certificate 'NAME':
# obtained serial" line after OFFSET names a serial other than SERIAL
vault_obtained_other() {
	local s
	s=$(vault_obtained "$1" "$2" "${4:-0}")
	[ -n "$s" ] && [ "$s" != "$3" ]
}
