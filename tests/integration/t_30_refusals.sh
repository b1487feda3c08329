# shellcheck shell=bash
# Every refusal: status, X-Mtlsd-Error code, one-line body; and the request
# never reaches an upstream it must not reach.

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

# after all those refusals the same dedicated port still serves
main_instance
req still-ok "http://127.0.0.1:$P_PEM/?t=still-ok"
chk_eq "status" 200 "$R_STATUS"
t_done "refusals leave the daemon serving"
