# shellcheck shell=bash
# Hostile clients and security: request smuggling, slowloris, thousands of
# idle connections, max_connections, open-proxy tricks on the proxy port,
# SPKI pins, unix-socket listeners (mode, allowed_uids), and no leaked
# descriptors afterwards. Three instances of their own:
#   hostile  client_header 1s, pool idle 1s; mapping "api" for
#            https://localhost:NG_PORT/api/ (dedicated port and proxy port),
#            two unix-socket mappings (not reachable through the proxy port)
#   aux      default timeouts; pinned mappings and a plain one
#   maxconn  limits.max_connections: 5
# (A non-loopback listener without allow_remote is covered in t_50_check.)

trust="trust: {ca_file: $PKI/trust/server-root.pem}"

# nginx access-log lines whose URI carries TAG (0 when none). nginx logs
# after its response, so callers first wait for a later request's line.
ngx_count() { grep -c -- "uri=[^ ]*$1" "$NG_DIR/access.log"; }

# ngx_settle TAG: send one request through the api port and wait for its
# log line: every earlier request nginx served is logged by then.
ngx_settle() {
	req "settle-$1" "http://127.0.0.1:$P_API/?t=settle-$1"
	ngx_log "t=settle-$1" >/dev/null || chk_fail "nginx did not log the settle request $1"
}

fd_count() { ls "/proc/$1/fd" 2>/dev/null | wc -l; }

# seconds a normal request may take while the daemon is under attack
# (a TLS handshake included; more under valgrind)
SLOW=2
[ -n "${MTLSD_WRAPPER:-}" ] && SLOW=10

# ============================================================ hostile
H_DIR=$TMP/inst/hostile
H_SOCK=$H_DIR/ok.sock
H_DENY=$H_DIR/deny.sock
mtlsd_write_config hostile 'timeouts: {client_header: 1s, idle: 5s}
pool: {idle_timeout: 1s}
admin: {listen: "127.0.0.1:0"}'
mtlsd_mapping_file hostile hostile.yaml <<EOF
mappings:
  - name: api
    url: https://localhost:$NG_PORT/api/
    listen: 127.0.0.1:0
    certificate: client-pem
    $trust
  - name: sock
    url: https://localhost:$NG_PORT/
    listen: {address: "unix:$H_SOCK", mode: 0600}
    certificate: client-pem
    $trust
  - name: sockdeny
    url: https://localhost:$NG_PORT/
    listen: {address: "unix:$H_DENY", allowed_uids: [12345]}
    certificate: client-pem
    $trust
EOF
if mtlsd_start hostile; then
	H_PID=$(mtlsd_pid hostile)
	P_API=$(mtlsd_port hostile api)
	P_HPROXY=$(mtlsd_proxy_port hostile)
	_h_no_upstream() { [ "$(upstream_conns hostile)" = 0 ]; }

	req h-first "http://127.0.0.1:$P_API/x?t=h-first"
	chk_eq "status" 200 "$R_STATUS"
	chk_eq "URI at nginx" "/api/x?t=h-first" "$(ngx_field "$(ngx_log 't=h-first')" uri)"
	# the descriptor baseline: a warmed-up daemon whose pooled connection has
	# gone (pool.idle_timeout 1s)
	wait_until 10 _h_no_upstream || chk_fail "pooled upstream connection not closed after idle_timeout"
	H_FD0=$(fd_count "$H_PID")
	# warm-up for the heap comparison at the end of the section (leak_mark in
	# lib.sh): 20 concurrent requests, so 20 new upstream handshakes, fill
	# wolfSSL's bounded ECC cache; then the mark, once they are pooled and gone
	pids=()
	for i in $(seq 1 20); do
		(req "h-warm-$i" "http://127.0.0.1:$P_API/slow?t=h-warm-$i") &
		pids+=($!)
	done
	for p in "${pids[@]}"; do wait "$p"; done
	chk_eq "warm-up statuses" "$(printf '200 %.0s' $(seq 1 20))" \
		"$(for i in $(seq 1 20); do printf '%s ' "$(cat "$TMP/r/h-warm-$i.s")"; done)"
	wait_until 15 _h_no_upstream || chk_fail "pooled upstream connections not closed after idle_timeout"
	leak_mark hostile
	t_done "hostile: dedicated port serves, pooled connection closed after idle_timeout"

	# --- request smuggling: each variant is refused with 400 and the
	# connection closed; the bytes after it are never read as a request
	# smuggle NAME PORT < BYTES
	smuggle() {
		local name=$1
		RAW_EOF=1 raw "$2" 5
		chk_eq "status" 400 "$RAW_STATUS"
		chk_eq "X-Mtlsd-Error" bad_request "$(raw_hdr X-Mtlsd-Error)"
		chk_nomatch "connection closed by mtlsd" 'timed out' "$(cat "$TMP/r/raw.e" 2>/dev/null)"
		chk_eq "responses on the connection" 1 "$(grep -c '^HTTP/1' <<<"$RAW")"
		t_done "smuggling: $name → 400, connection closed"
	}
	inner='GET /?t=smug-inner HTTP/1.1\r\nHost: localhost\r\n\r\n'
	h='Host: localhost\r\n'

	smuggle "Content-Length + Transfer-Encoding: chunked" "$P_API" < <(printf \
		"POST /?t=smug-clte HTTP/1.1\r\n${h}Content-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nX$inner")
	smuggle "Transfer-Encoding: chunked + Content-Length" "$P_API" < <(printf \
		"POST /?t=smug-tecl HTTP/1.1\r\n${h}Transfer-Encoding: chunked\r\nContent-Length: 40\r\n\r\n0\r\n\r\n$inner")
	smuggle "two different Content-Length" "$P_API" < <(printf \
		"POST /?t=smug-cl2 HTTP/1.1\r\n${h}Content-Length: 5\r\nContent-Length: 45\r\n\r\nhello$inner")
	smuggle "Content-Length: 5, 45" "$P_API" < <(printf \
		"POST /?t=smug-cllist HTTP/1.1\r\n${h}Content-Length: 5, 45\r\n\r\nhello$inner")
	smuggle "'Transfer-Encoding: chunked ' (trailing space)" "$P_API" < <(printf \
		"POST /?t=smug-tesp HTTP/1.1\r\n${h}Transfer-Encoding: chunked \r\nContent-Length: 5\r\n\r\n0\r\n\r\n$inner")
	smuggle "Transfer-Encoding: xchunked" "$P_API" < <(printf \
		"POST /?t=smug-tex HTTP/1.1\r\n${h}Transfer-Encoding: xchunked\r\n\r\n0\r\n\r\n$inner")
	smuggle "Transfer-Encoding: chunked, gzip" "$P_API" < <(printf \
		"POST /?t=smug-telist HTTP/1.1\r\n${h}Transfer-Encoding: chunked, gzip\r\n\r\n0\r\n\r\n$inner")
	smuggle "Transfer-Encoding: gzip, chunked" "$P_API" < <(printf \
		"POST /?t=smug-telist2 HTTP/1.1\r\n${h}Transfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n$inner")
	smuggle "HTTP/1.0 with Transfer-Encoding: chunked" "$P_API" < <(printf \
		"POST /?t=smug-10te HTTP/1.0\r\n${h}Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n$inner")
	smuggle "Transfer-Encoding twice" "$P_API" < <(printf \
		"POST /?t=smug-te2 HTTP/1.1\r\n${h}Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n$inner")
	smuggle "folded Transfer-Encoding (obs-fold)" "$P_API" < <(printf \
		"POST /?t=smug-fold HTTP/1.1\r\n${h}Content-Length: 5\r\nTransfer-Encoding:\r\n chunked\r\n\r\n0\r\n\r\n$inner")
	smuggle "folded header value" "$P_API" < <(printf \
		"GET /?t=smug-fold2 HTTP/1.1\r\n${h}X-Pad: a\r\n\tb\r\n\r\n$inner")
	smuggle "bad chunk size (zz)" "$P_API" < <(printf \
		"POST /?t=smug-zz HTTP/1.1\r\n${h}Transfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n$inner")
	smuggle "chunk size overflowing 64 bits" "$P_API" < <(printf \
		"POST /?t=smug-big HTTP/1.1\r\n${h}Transfer-Encoding: chunked\r\n\r\n1ffffffffffffffff\r\nhello\r\n0\r\n\r\n$inner")
	smuggle "chunk extension ended by a bare LF" "$P_API" < <(printf \
		"POST /?t=smug-ext HTTP/1.1\r\n${h}Transfer-Encoding: chunked\r\n\r\n5;x\nhello\r\n0\r\n\r\n$inner")
	smuggle "control byte in a chunk extension" "$P_API" < <(printf \
		"POST /?t=smug-extctl HTTP/1.1\r\n${h}Transfer-Encoding: chunked\r\n\r\n5;x=\001\r\nhello\r\n0\r\n\r\n$inner")
	smuggle "chunk size with a 0x prefix" "$P_API" < <(printf \
		"POST /?t=smug-0x HTTP/1.1\r\n${h}Transfer-Encoding: chunked\r\n\r\n0x5\r\nhello\r\n0\r\n\r\n$inner")
	smuggle "negative chunk size" "$P_API" < <(printf \
		"POST /?t=smug-neg HTTP/1.1\r\n${h}Transfer-Encoding: chunked\r\n\r\n-5\r\nhello\r\n0\r\n\r\n$inner")
	smuggle "Content-Length: +5" "$P_API" < <(printf \
		"POST /?t=smug-clplus HTTP/1.1\r\n${h}Content-Length: +5\r\n\r\nhello$inner")
	smuggle "Transfer-Encoding: <VT>chunked (vertical tab)" "$P_API" < <(printf \
		"POST /?t=smug-vt HTTP/1.1\r\n${h}Transfer-Encoding: \013chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n$inner")
	smuggle "bare LF line endings" "$P_API" < <(printf \
		'GET /?t=smug-lf HTTP/1.1\nHost: localhost\n\n')
	smuggle "bare CR line ending" "$P_API" < <(printf \
		"GET /?t=smug-cr HTTP/1.1\r${h}\r\n")
	smuggle "whitespace before the colon" "$P_API" < <(printf \
		"POST /?t=smug-wscolon HTTP/1.1\r\n${h}Transfer-Encoding : chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n$inner")
	smuggle "NUL in a header value" "$P_API" < <(printf \
		"GET /?t=smug-nul HTTP/1.1\r\n${h}X-A: a\0b\r\n\r\n")
	smuggle "control byte in a header value" "$P_API" < <(printf \
		"GET /?t=smug-ctl HTTP/1.1\r\n${h}X-A: a\001b\r\n\r\n")
	smuggle "two Host headers" "$P_API" < <(printf \
		"GET /?t=smug-host2 HTTP/1.1\r\n${h}Host: evil.example\r\n\r\n")
	smuggle "absolute-form host differing from Host (proxy port)" "$P_HPROXY" < <(printf \
		"GET http://localhost:$NG_PORT/api/?t=smug-abs HTTP/1.1\r\nHost: evil.example\r\n\r\n")
	smuggle "absolute-form host differing from Host (dedicated port)" "$P_API" < <(printf \
		"GET http://localhost:$NG_PORT/?t=smug-abs2 HTTP/1.1\r\nHost: localhost:1\r\n\r\n")

	ngx_settle smug
	leaked=$(grep -o 'uri=[^ ]*t=smug-[a-z0-9]*' "$NG_DIR/access.log" | sed 's/.*t=//' | sort -u | tr '\n' ' ')
	chk_eq "smuggling requests nginx saw" "" "$leaked"
	t_done "smuggling: none of the refused requests (nor the bytes after them) reached nginx"

	# --- slowloris: an unfinished head is cut off after client_header (1s),
	# whether it stalls or trickles; a normal request meanwhile succeeds
	$NETTOOL slowloris 127.0.0.1 "$P_API" stall 8 >"$TMP/r/slow-stall.out" 2>&1 &
	sl1=$!
	$NETTOOL slowloris 127.0.0.1 "$P_API" trickle 8 >"$TMP/r/slow-trickle.out" 2>&1 &
	sl2=$!
	req slow-meanwhile "http://127.0.0.1:$P_API/?t=slow-meanwhile"
	chk_eq "normal request meanwhile" 200 "$R_STATUS"
	chk_le "its seconds" "$SLOW" "$R_TIME"
	wait "$sl1"
	wait "$sl2"
	for m in stall trickle; do
		out=$(cat "$TMP/r/slow-$m.out")
		chk_match "$m: closed by mtlsd" '^closed after' "$out"
		s=$(sed -n 's/^closed after \([0-9.]*\) s.*/\1/p' <<<"$out")
		chk_ge "$m: seconds until closed" 0.9 "$s"
		chk_le "$m: seconds until closed" 3 "$s"
		chk_match "$m: response, if any" '^closed after [0-9.]+ s: ?(HTTP/1\.1 (400|408) .*)?$' "$out"
	done
	t_done "slowloris: stalled and trickling heads closed after client_header (1s), others served"

	# --- open-proxy tricks on the proxy port (mapping: localhost:NG_PORT/api/)
	px=(-x "http://127.0.0.1:$P_HPROXY")
	raw "$P_HPROXY" 5 < <(printf "GET http://localhost:$NG_PORT@evil.example/api/?t=op-userinfo HTTP/1.1\r\nHost: evil.example\r\n\r\n")
	chk_match "userinfo (mapped host as userinfo): status" '^(400|403)$' "$RAW_STATUS"
	raw "$P_HPROXY" 5 < <(printf "GET http://evil.example@localhost:$NG_PORT/api/?t=op-userinfo2 HTTP/1.1\r\nHost: localhost:$NG_PORT\r\n\r\n")
	chk_match "userinfo (mapped host after @): status" '^(400|403)$' "$RAW_STATUS"
	t_done "open proxy: userinfo in the request-target is refused (http://localhost:PORT@evil.example/)"

	req op-ip "${px[@]}" "http://127.0.0.1:$NG_PORT/api/?t=op-ip"
	refusal_checks "IPv4 literal of the mapped name" 403 no_mapping
	req op-ip6 "${px[@]}" "http://[::1]:$NG_PORT/api/?t=op-ip6"
	refusal_checks "IPv6 literal" 403 no_mapping
	t_done "open proxy: an IP literal does not match a mapping made with a name → 403"

	raw "$P_HPROXY" 5 < <(printf "GET http://%%6cocalhost:$NG_PORT/api/?t=op-pct HTTP/1.1\r\nHost: %%6cocalhost:$NG_PORT\r\nConnection: close\r\n\r\n")
	chk_match "percent-encoded host: status" '^(400|403)$' "$RAW_STATUS"
	t_done "open proxy: a percent-encoded host is not decoded into a mapped one"

	raw "$P_HPROXY" 5 < <(printf "GET http://LocalHOST:$NG_PORT/api/?t=op-case HTTP/1.1\r\nHost: LocalHOST:$NG_PORT\r\nConnection: close\r\n\r\n")
	chk_eq "upper-case host: status" 200 "$RAW_STATUS"
	req op-dot "${px[@]}" "http://localhost.:$NG_PORT/api/?t=op-dot"
	chk_eq "trailing dot: status" 200 "$R_STATUS"
	t_done "open proxy: host match is case-insensitive and ignores one trailing dot (→ 200)"

	for p in '/api/../admin' '/api/%2e%2e/admin' '/api/%2E%2E/admin' '/api/./../admin' \
		'/api/..%2fadmin' '/api/..%2Fadmin' '/api//../admin'; do
		req op-dotdot "${px[@]}" --path-as-is "http://localhost:$NG_PORT$p?t=op-dotdot"
		chk_eq "$p status" 403 "$R_STATUS"
		chk_eq "$p X-Mtlsd-Error" no_mapping "$(hdr X-Mtlsd-Error)"
	done
	req op-dotdot-in "${px[@]}" --path-as-is "http://localhost:$NG_PORT/admin/../api/x?t=op-dotdot-in"
	chk_eq "/admin/../api/x (inside after normalisation) status" 200 "$R_STATUS"
	t_done "open proxy: '..' (plain, %2e, %2f, //) cannot escape a prefix mapping (/api/../admin → 403)"

	ngx_settle op
	leaked=$(grep -Eo 'uri=[^ ]*t=(op-userinfo2?|op-ip6?|op-pct|op-dotdot) ' "$NG_DIR/access.log" |
		sort | uniq -c | tr -s ' \n' ' ')
	chk_eq "refused requests nginx saw" "" "$leaked"
	t_done "open proxy: none of the refused requests reached nginx"

	# the dedicated port prepends the prefix: '..' must not climb out of it
	for p in '/../admin' '/%2e%2e/admin' '/..%2fadmin' '//../admin'; do
		raw "$P_API" 5 < <(printf 'GET %s?t=ded-dotdot HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n' "$p")
		chk_match "$p on the dedicated port: status" '^4[0-9][0-9]$' "$RAW_STATUS"
	done
	ngx_settle ded
	leaked=$(grep -Eo 'uri=[^ ]*t=ded-dotdot ' "$NG_DIR/access.log" | tr -s ' \n' ' ')
	chk_eq "refused requests nginx saw" "" "$leaked"
	t_done "dedicated port: '..' in the path cannot leave the mapping's prefix (/api/)"

	# --- unix-socket listeners
	chk_eq "socket mode" 600 "$(stat -c %a "$H_SOCK" 2>/dev/null)"
	req unix-ok --unix-socket "$H_SOCK" "http://localhost/?t=unix-ok"
	chk_eq "status" 200 "$R_STATUS"
	chk_eq "body" "hello from nginx" "$(body)"
	t_done "unix socket: mode 0600 applied, curl --unix-socket gets the upstream's 200"

	off=$(mtlsd_log_offset hostile)
	req unix-deny --unix-socket "$H_DENY" "http://localhost/?t=unix-deny"
	chk_eq "status" 000 "$R_STATUS"
	# closed at once: curl may see that while connecting (7), or as an
	# empty reply (52) or a reset (56)
	chk_match "curl exit status" '^(7|52|56)$' "$R_RC"
	mtlsd_wait_log hostile "$off" "refused a connection from uid $(id -u)" 5 ||
		chk_fail "no 'refused a connection from uid $(id -u)' log line"
	chk_eq "requests nginx saw" 0 "$(ngx_count t=unix-deny)"
	t_done "unix socket: a uid not in allowed_uids is closed without a response"

	req unix-proxy "${px[@]}" "http://localhost:$NG_PORT/?t=unix-proxy"
	refusal_checks "the unix mappings' URL on the proxy port" 403 no_mapping
	t_done "unix socket: its mappings are not reachable through the proxy port"

	# --- no descriptor leaked by all of the above (pooled upstream
	# connections close after 1s idle; client connections are all closed)
	_h_fds_back() { [ "$(fd_count "$H_PID")" -le "$H_FD0" ]; }
	wait_until 15 _h_no_upstream || chk_fail "upstream connections still open after 15 s"
	wait_until 15 _h_fds_back
	chk_le "open descriptors after the hostile section (before: $H_FD0)" "$H_FD0" "$(fd_count "$H_PID")"
	t_done "fds: mtlsd holds as many descriptors as before the hostile section"
	leak_check hostile "after the hostile section"
	t_done "leaks: descriptors and heap in use back to the mark after the hostile section"
	mtlsd_stop hostile
fi

# ============================================================ aux
# the server certificate's SPKI pin, and a wrong one (the client root's)
spki_pin() { openssl x509 -in "$1" -pubkey -noout | openssl pkey -pubin -outform der |
	openssl dgst -sha256 -binary | base64; }
PIN_OK=$(spki_pin "$PKI/server/localhost.crt")
PIN_BAD=$(spki_pin "$PKI/trust/client-ca-bundle.pem")
mtlsd_write_config aux 'pool: {idle_timeout: 1s}
timeouts: {client_header: 60s}'
mtlsd_mapping_file aux aux.yaml <<EOF
mappings:
  - name: pin-ok
    url: https://localhost:$NG_PORT/
    listen: 127.0.0.1:0
    certificate: client-pem
    trust: {ca_file: $PKI/trust/server-root.pem, pin_sha256: ["$PIN_OK"]}
  - name: pin-bad
    url: https://localhost:$NG_PORT/
    listen: 127.0.0.1:0
    certificate: client-pem
    trust: {ca_file: $PKI/trust/server-root.pem, pin_sha256: ["$PIN_BAD"]}
    validate: false
  - name: plain
    url: https://localhost:$NG_PORT/
    listen: 127.0.0.1:0
    certificate: client-pem
    $trust
EOF
if mtlsd_start aux; then
	A_PID=$(mtlsd_pid aux)
	_a_no_upstream() { [ "$(upstream_conns aux)" = 0 ]; }

	req pin-ok "http://127.0.0.1:$(mtlsd_port aux pin-ok)/?t=pin-ok"
	chk_eq "right pin: status" 200 "$R_STATUS"
	# a new connection after the pooled one is gone: session resumption must
	# not skip the pin check, nor fail it
	wait_until 10 _a_no_upstream || chk_fail "pooled connection not closed after idle_timeout"
	req pin-ok2 "http://127.0.0.1:$(mtlsd_port aux pin-ok)/?t=pin-ok2"
	chk_eq "right pin, second connection: status" 200 "$R_STATUS"
	t_done "pin: the server's SPKI pin → 200 (also on a second, resumable connection)"

	req pin-bad "http://127.0.0.1:$(mtlsd_port aux pin-bad)/?t=pin-bad"
	refusal_checks "wrong pin" 502 upstream_tls
	chk_match "body names the pin" 'pin' "$(body)"
	chk_eq "requests nginx served" 0 "$(ngx_count t=pin-bad)"
	t_done "pin: a wrong pin → 502 upstream_tls naming the pin, nothing sent"

	# --- 2000 idle connections do not stop a normal request
	P_PLAIN=$(mtlsd_port aux plain)
	rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }
	rss0=$(rss_kb "$A_PID")
	rm -f "$TMP/r/hold.ready" "$TMP/r/hold.release"
	$NETTOOL hold 127.0.0.1 "$P_PLAIN" 2000 "$TMP/r/hold.ready" "$TMP/r/hold.release" \
		>"$TMP/r/hold.out" 2>&1 &
	holder=$!
	_held() { [ -f "$TMP/r/hold.ready" ] || { kill -0 "$holder" 2>/dev/null || return 99; return 1; }; }
	if wait_until 60 _held; then
		# positive signal that mtlsd accepted them all: its descriptor count
		_accepted() { [ "$(fd_count "$A_PID")" -ge 2000 ]; }
		wait_until 20 _accepted || chk_fail "mtlsd holds fewer than 2000 descriptors"
		rss1=$(rss_kb "$A_PID")
		echo "# 2000 idle connections: RSS ${rss0} kB → ${rss1} kB, $(((rss1 - rss0) * 1024 / 2000)) bytes per connection"
		req idle-normal "http://127.0.0.1:$P_PLAIN/?t=idle-normal"
		chk_eq "status with 2000 idle connections open" 200 "$R_STATUS"
		chk_le "its seconds" "$SLOW" "$R_TIME"
	else
		chk_fail "could not open 2000 connections: $(tail -n 2 "$TMP/r/hold.out")"
	fi
	touch "$TMP/r/hold.release"
	wait "$holder"
	chk_eq "idle connections closed by mtlsd before release (client_header 60s)" "closed-by-peer 0" \
		"$(tail -n 1 "$TMP/r/hold.out")"
	_a_fds_low() { [ "$(fd_count "$A_PID")" -lt 100 ]; }
	wait_until 20 _a_fds_low || chk_fail "descriptors not released after the clients closed: $(fd_count "$A_PID")"
	req idle-after "http://127.0.0.1:$P_PLAIN/?t=idle-after"
	chk_eq "status after they closed" 200 "$R_STATUS"
	t_done "idle: 2000 idle connections open, a normal request still succeeds promptly"
	mtlsd_stop aux
fi

# ============================================================ maxconn
mtlsd_write_config maxconn 'limits: {max_connections: 5}
pool: {idle_timeout: 1s}'
mtlsd_mapping_file maxconn maxconn.yaml <<EOF
mappings:
  - name: plain
    url: https://localhost:$NG_PORT/
    listen: 127.0.0.1:0
    certificate: client-pem
    $trust
EOF
if mtlsd_start maxconn; then
	M_PID=$(mtlsd_pid maxconn)
	P_M=$(mtlsd_port maxconn plain)
	_m_no_upstream() { [ "$(upstream_conns maxconn)" = 0 ]; }
	wait_until 10 _m_no_upstream # validation connection, if any, gone
	M_FD0=$(fd_count "$M_PID")
	rm -f "$TMP/r/hold5.ready" "$TMP/r/hold5.release"
	$NETTOOL hold 127.0.0.1 "$P_M" 5 "$TMP/r/hold5.ready" "$TMP/r/hold5.release" \
		>"$TMP/r/hold5.out" 2>&1 &
	holder=$!
	_held5() { [ -f "$TMP/r/hold5.ready" ] || { kill -0 "$holder" 2>/dev/null || return 99; return 1; }; }
	_accepted5() { [ "$(fd_count "$M_PID")" -ge $((M_FD0 + 5)) ]; }
	wait_until 20 _held5 || chk_fail "could not open 5 connections"
	wait_until 10 _accepted5 || chk_fail "mtlsd did not accept the 5 connections"
	RAW_EOF=1 raw "$P_M" 5 < <(printf 'GET /?t=maxconn-6th HTTP/1.1\r\nHost: localhost\r\n\r\n')
	chk_eq "6th connection: status" 503 "$RAW_STATUS"
	chk_eq "6th connection: X-Mtlsd-Error" overloaded "$(raw_hdr X-Mtlsd-Error)"
	chk_nomatch "6th connection closed" 'timed out' "$(cat "$TMP/r/raw.e" 2>/dev/null)"
	touch "$TMP/r/hold5.release"
	wait "$holder"
	chk_eq "held connections kept until released" "closed-by-peer 0" "$(tail -n 1 "$TMP/r/hold5.out")"
	# positive signal that mtlsd saw them close: its descriptor count is back
	_m_fds_back() { [ "$(fd_count "$M_PID")" -le "$M_FD0" ]; }
	wait_until 10 _m_fds_back || chk_fail "descriptors not back to $M_FD0"
	req maxconn-after "http://127.0.0.1:$P_M/?t=maxconn-after"
	chk_eq "after they closed: status" 200 "$R_STATUS"
	chk_eq "requests nginx saw from the 6th" 0 "$(ngx_count t=maxconn-6th)"
	t_done "max_connections 5: the 6th gets 503 overloaded, the daemon serves once they close"
	mtlsd_stop maxconn
fi
