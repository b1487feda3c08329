# shellcheck shell=bash
# Every refusal: status, X-Mtlsd-Error code, one-line body; and the request
# never reaches an upstream it must not reach. Then each group of upstream
# faults and refusals repeated, with descriptors and heap checked after it.

main_instance || return 0

# nginx access-log lines for a server port (to prove nothing was forwarded)
ngx_lines_for_port() { grep -c " port=$1 " "$NG_DIR/access.log"; }

main_instance
req nomap -x "http://127.0.0.1:$P_PROXY" "http://unmapped.example:$NG_PORT/?t=nomap"
refusal_checks "unmapped host" 403 no_mapping
t_done "proxy: unmapped host → 403 no_mapping"

main_instance
req nomap-port -x "http://127.0.0.1:$P_PROXY" "http://localhost:1/?t=nomap-port"
refusal_checks "mapped host, other port" 403 no_mapping
req nomap-443 -x "http://127.0.0.1:$P_PROXY" "http://localhost/?t=nomap-443"
refusal_checks "mapped host, no port (443)" 403 no_mapping
t_done "proxy: a mapped host on an unmapped port → 403 no_mapping"

main_instance
req untrusted "http://127.0.0.1:$P_UNTRUST/?t=untrusted"
refusal_checks "untrusted CA" 502 upstream_tls
chk_eq "requests nginx served on that port" 0 "$(ngx_lines_for_port "$NG_UNTRUST")"
t_done "tls: server certificate from an untrusted CA → 502 upstream_tls, nothing sent"

main_instance
req wrongname "http://127.0.0.1:$P_WRONG/?t=wrongname"
refusal_checks "name mismatch" 502 upstream_tls
chk_eq "requests nginx served on that port" 0 "$(ngx_lines_for_port "$NG_WRONG")"
t_done "tls: server certificate for another name → 502 upstream_tls, nothing sent"

main_instance
req down "http://127.0.0.1:$P_DOWN/?t=down"
refusal_checks "closed port" 502 upstream_connect
chk_le "seconds" 6 "$R_TIME"
t_done "connect: upstream port closed → 502 upstream_connect"

main_instance
req nodns "http://127.0.0.1:$P_NODNS/?t=nodns"
refusal_checks "unresolvable host" 502 upstream_dns
t_done "dns: upstream name does not resolve → 502 upstream_dns"

main_instance
raw "$P_PEM" 10 < <(printf 'GET /?t=malformed HTTP/1.1\r\nHost: localhost\r\nThis is not a header\r\n\r\n')
chk_eq "status" 400 "$RAW_STATUS"
chk_eq "X-Mtlsd-Error" bad_request "$(raw_hdr X-Mtlsd-Error)"
t_done "http: malformed request → 400 bad_request"

main_instance
raw "$P_PEM" 10 < <(printf 'POST /?t=clte HTTP/1.1\r\nHost: localhost\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n')
chk_eq "status" 400 "$RAW_STATUS"
chk_eq "X-Mtlsd-Error" bad_request "$(raw_hdr X-Mtlsd-Error)"
ngx_seen=$(grep -c 't=clte' "$NG_DIR/access.log")
chk_eq "requests nginx saw" 0 "$ngx_seen"
t_done "http: Content-Length with Transfer-Encoding → 400, not forwarded"

main_instance
raw "$P_PEM" 10 < <(printf 'GET /?t=smuggle HTTP/1.1\r\nHost: localhost\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!')
chk_eq "status" 400 "$RAW_STATUS"
t_done "http: two different Content-Length headers → 400"

main_instance
raw "$P_PEM" 10 < <(printf 'GET /?t=toolarge HTTP/1.1\r\nHost: localhost\r\nX-Big: %s\r\n\r\n' "$(head -c 40000 /dev/zero | tr '\0' a)")
chk_eq "status" 431 "$RAW_STATUS"
chk_eq "X-Mtlsd-Error" header_too_large "$(raw_hdr X-Mtlsd-Error)"
t_done "http: 40 kB of headers (limit 32 kB) → 431 header_too_large"

main_instance
req disabled "http://127.0.0.1:$P_DISABLED/?t=disabled"
refusal_checks "dedicated port" 503 mapping_disabled
req disabled-proxy -x "http://127.0.0.1:$P_PROXY" "http://localhost:$NG_PORT/disabled/x?t=disabled-proxy"
refusal_checks "proxy port" 503 mapping_disabled
chk_eq "requests nginx saw" 0 "$(grep -c 't=disabled' "$NG_DIR/access.log")"
t_done "mapping: enabled: false → 503 mapping_disabled (dedicated and proxy port)"

main_instance
got200=0 got429=0 retry=""
for i in 1 2 3 4 5 6; do
	req "limited-$i" "http://127.0.0.1:$P_LIMITED/?t=limited-$i"
	case $R_STATUS in
	200) got200=$((got200 + 1)) ;;
	429)
		got429=$((got429 + 1))
		chk_eq "429 X-Mtlsd-Error" rate_limited "$(hdr X-Mtlsd-Error)"
		retry=$(hdr Retry-After)
		;;
	*) chk_fail "request $i: unexpected status $R_STATUS" ;;
	esac
done
chk_ge "200s" 1 "$got200"
chk_ge "429s" 1 "$got429"
chk_match "Retry-After" '^[1-9][0-9]*$' "$retry"
t_done "rate limit: 1/s, 6 quick requests → 429 rate_limited with Retry-After"

main_instance
raw "$P_PROXY" 10 < <(printf 'CONNECT localhost:%s HTTP/1.1\r\nHost: localhost:%s\r\n\r\n' "$NG_PORT" "$NG_PORT")
chk_eq "status" 405 "$RAW_STATUS"
chk_eq "X-Mtlsd-Error" method_not_allowed "$(raw_hdr X-Mtlsd-Error)"
t_done "proxy: CONNECT → 405 method_not_allowed (no tunnels)"

main_instance
req upgrade -H 'Connection: Upgrade' -H 'Upgrade: websocket' "http://127.0.0.1:$P_PEM/?t=upgrade"
refusal_checks "Upgrade: websocket" 501 upgrade_not_supported
t_done "http: Upgrade → 501 upgrade_not_supported"

# --- no descriptor or heap leaked by the faults and refusals (issue 5: "after
# every fault the process has no leaked file descriptors or memory"). Each
# group runs a warm-up round of its faults (LEAK_WARM times: fills bounded
# caches, see leak_mark in lib.sh), then the mark, then LEAK_REPS rounds,
# then compares descriptors and heap in use with the mark (fds exactly, heap
# within 256 KiB).
LEAK_WARM=${LEAK_WARM:-20}
LEAK_REPS=${LEAK_REPS:-50}

# leak_curl N URL-TEMPLATE... [-- CURL-ARGS...]: each URL (where @ becomes
# the repetition number) N times through one curl (keep-alive where mtlsd
# keeps the client connection); the statuses counted: "502 x200 ..."
leak_curl() {
	local n=$1 cfg=$TMP/r/leak.cfg i u urls=() args=()
	shift
	while [ $# -gt 0 ] && [ "$1" != -- ]; do urls+=("$1"); shift; done
	[ $# -gt 0 ] && shift && args=("$@")
	: >"$cfg"
	for i in $(seq 1 "$n"); do
		for u in "${urls[@]}"; do
			printf 'url = "%s"\noutput = "/dev/null"\n' "${u//@/$i}" >>"$cfg"
		done
	done
	curl -s --max-time 300 -w '%{http_code}\n' "${args[@]}" -K "$cfg" 2>/dev/null |
		sort | uniq -c | awk '{ printf "%s%s x%s", sep, $2, $1; sep = " " }'
}

# upstream faults: untrusted CA, wrong name, connection refused, no DNS
leak_upstream() {
	leak_curl "$1" "http://127.0.0.1:$P_UNTRUST/?t=leak-untrusted-@" \
		"http://127.0.0.1:$P_WRONG/?t=leak-wrongname-@" \
		"http://127.0.0.1:$P_DOWN/?t=leak-down-@" \
		"http://127.0.0.1:$P_NODNS/?t=leak-nodns-@"
}
main_instance
leak_upstream "$LEAK_WARM" >/dev/null
leak_mark main
chk_eq "statuses of the repeated upstream faults" "502 x$((LEAK_REPS * 4))" "$(leak_upstream "$LEAK_REPS")"
leak_check main "after $LEAK_REPS × (untrusted CA, wrong name, refused, no DNS)"
t_done "upstream faults ×$LEAK_REPS: no descriptor leaked, heap in use not grown"

# client refusals: disabled mapping, Upgrade, unmapped, malformed head,
# oversized head
leak_refusals() {
	local i
	leak_curl "$1" "http://127.0.0.1:$P_DISABLED/?t=leak-disabled-@"
	echo
	leak_curl "$1" "http://127.0.0.1:$P_PEM/?t=leak-upgrade-@" -- \
		-H 'Connection: Upgrade' -H 'Upgrade: websocket'
	echo
	leak_curl "$1" "http://unmapped.example:$NG_PORT/?t=leak-nomap-@" -- -x "http://127.0.0.1:$P_PROXY"
	echo
	# one connection per head, all from one python (nettool raw per head
	# would start a hundred interpreters); prints each status line's code
	python3 - "$P_PEM" "$1" <<'PY' | sort | uniq -c | awk '{ printf "%s%s x%s", sep, $2, $1; sep = " " }'
import socket, sys
heads = [b"GET /?t=leak-malformed HTTP/1.1\r\nHost: localhost\r\nThis is not a header\r\n\r\n",
         b"GET /?t=leak-toolarge HTTP/1.1\r\nHost: localhost\r\nX-Big: " + b"a" * 40000 + b"\r\n\r\n"]
for _ in range(int(sys.argv[2])):
    for h in heads:
        s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10)
        buf = b""
        try:
            s.sendall(h)
        except OSError:  # refused before all 40 kB were read: the answer is there
            pass
        try:
            while b"\r\n" not in buf:
                c = s.recv(4096)
                if not c:
                    break
                buf += c
        except OSError:
            pass
        s.close()
        f = buf.split(b" ", 2)
        print(f[1].decode() if len(f) > 1 else "000")
PY
}
main_instance
leak_refusals 5 >/dev/null
leak_mark main
chk_eq "statuses of the repeated refusals" \
	"$(printf '503 x%s\n501 x%s\n403 x%s\n400 x%s 431 x%s' "$LEAK_REPS" "$LEAK_REPS" "$LEAK_REPS" "$LEAK_REPS" "$LEAK_REPS")" \
	"$(leak_refusals "$LEAK_REPS")"
leak_check main "after $LEAK_REPS × (disabled, Upgrade, unmapped, malformed, 40 kB head)"
t_done "client refusals ×$LEAK_REPS: no descriptor leaked, heap in use not grown"

# after all those refusals the same dedicated port still serves
main_instance
req still-ok "http://127.0.0.1:$P_PEM/?t=still-ok"
chk_eq "status" 200 "$R_STATUS"
t_done "refusals leave the daemon serving"
