# shellcheck shell=bash
# Faulty upstreams (issue 5, scope 2): an upstream that resets, closes early,
# garbles its response, stalls, refuses the handshake with an alert, or keeps
# a connection open after "Connection: close". tests/integration/faultyd.py
# plays that upstream (it requires our client certificate, as nginx does);
# the request path picks the fault. Each fault is checked as a client sees
# it (status, X-Mtlsd-Error, body, curl's verdict on the transfer), then a
# normal request must succeed; at the end all faults are repeated and
# descriptors and heap in use compared with a mark (leak_mark/leak_check).
#
# Instance "faulty": upstream_response 1s (the stall timeouts), pool idle
# 2s; mappings
#   faulty    https://localhost:FD_PORT/                        (faultyd)
#   alert     the same, SNI alert-unrecognized-name.test        (handshake alert)
#   denied    the same, SNI alert-access-denied.test            (handshake alert)

FD_DIR=$TMP/faultyd

# faultyd_start: start faultyd, wait (bounded) for its port. Sets FD_PORT,
# FD_PID, FD_LOG. Returns 1 (after a failed test line) when it does not start.
faultyd_start() {
	mkdir -p "$FD_DIR"
	FD_LOG=$FD_DIR/faultyd.log
	rm -f "$FD_DIR/port"
	python3 "$IT_DIR/faultyd.py" --cert "$PKI/server/localhost.crt" \
		--key "$PKI/server/localhost.key" --client-ca "$PKI/trust/client-ca-bundle.pem" \
		--port-file "$FD_DIR/port" --log "$FD_LOG" --exit-with-parent \
		>>"$FD_DIR/stderr.log" 2>&1 &
	FD_PID=$!
	_faultyd_ready() {
		[ -s "$FD_DIR/port" ] && return 0
		_not_running "$FD_PID" && return 99
		return 1
	}
	if ! wait_until 20 _faultyd_ready; then
		t_fail "faultyd starts" "no port file within 20 s: $(tail -n 3 "$FD_DIR/stderr.log" | tr '\n' ' ')"
		faultyd_stop
		return 1
	fi
	FD_PORT=$(cat "$FD_DIR/port")
}

# faultyd_stop: SIGTERM by PID, wait (bounded), SIGKILL if needed
faultyd_stop() {
	[ -n "${FD_PID:-}" ] || return 0
	pid_stop TERM "$FD_PID"
	FD_PID=
}

# fd_requests TAG: how many requests tagged t=TAG faultyd received
fd_requests() { grep -c -- " request [A-Z]* [^ ]*[?&]t=$1 HTTP/" "$FD_LOG"; }

# fd_conn TAG: faultyd's number of the connection that carried t=TAG (last)
fd_conn() {
	sed -n "s/.* conn \\([0-9][0-9]*\\) request [A-Z]* [^ ]*[?&]t=$1 HTTP\\/.*/\\1/p" "$FD_LOG" |
		tail -n 1
}

# fd_closed_by_peer N: faultyd saw its connection N closed by mtlsd
fd_closed_by_peer() { grep -Eq " conn $1 closed by peer( |\$)" "$FD_LOG"; }

# fd_open: connections faultyd holds open, not counting the one asking
fd_open() {
	local s
	s=$(curl -sS --max-time 10 --cacert "$PKI/trust/server-root.pem" \
		--cert "$PKI/certs.d/client-pem/client.crt" --key "$PKI/certs.d/client-pem/client.key" \
		"https://localhost:$FD_PORT/stats" 2>/dev/null)
	s=${s##*open=}
	[ -n "$s" ] && echo $((s - 1))
}

# fd_wait_closed TAG WHAT: chk that faultyd's connection for TAG gets closed
# by mtlsd (bounded wait: mtlsd must not keep a broken connection)
fd_wait_closed() {
	local n
	n=$(fd_conn "$1")
	if [ -z "$n" ]; then
		chk_fail "$2: faultyd got no request tagged $1"
	elif ! wait_until 10 fd_closed_by_peer "$n"; then
		chk_fail "$2: mtlsd still holds faultyd's connection $n 10 s later"
	fi
}

# ok_after WHAT: a normal request through the faulty mapping succeeds
ok_after() {
	req "ok-after-$1" "http://127.0.0.1:$P_FAULTY/ok?t=ok-after-$1"
	chk_eq "then /ok: status" 200 "$R_STATUS"
	chk_match "then /ok: body" "^ok conn=[0-9]+ serial=$SERIAL_PEM\$" "$(body)"
}

# body_bytes: bytes of the last req's body
body_bytes() { wc -c <"$R_B" 2>/dev/null || echo 0; }

# seconds a stalled request may take at most: upstream_response is 1s; the
# rest is slack for a busy machine (a bound against hanging, not a timing)
STALL_MAX=10
[ -n "${MTLSD_WRAPPER:-}" ] && STALL_MAX=30

faultyd_start || return 0
echo "# faultyd: port $FD_PORT, log $FD_LOG"

mtlsd_write_config faulty 'timeouts: {connect: 5s, handshake: 5s, upstream_response: 1s, client_header: 5s, idle: 10s}
pool: {idle_timeout: 2s}
admin: {listen: "127.0.0.1:0"}'
# validate: false: the alert mappings must fail at request time (502), not
# hold the certificate back as pending
{
	echo "mappings:"
	mapping_yaml faulty "https://localhost:$FD_PORT/" client-pem "validate: false"
	mapping_yaml alert "https://localhost:$FD_PORT/" client-pem "validate: false" \
		"server_name: alert-unrecognized-name.test"
	mapping_yaml denied "https://localhost:$FD_PORT/" client-pem "validate: false" \
		"server_name: alert-access-denied.test"
} | mtlsd_mapping_file faulty faulty.yaml
if ! mtlsd_start faulty; then
	faultyd_stop
	return 0
fi
P_FAULTY=$(mtlsd_port faulty faulty)
P_ALERT=$(mtlsd_port faulty alert)
P_DENIED=$(mtlsd_port faulty denied)

# ------------------------------------------------------------ the fixture
req fx-ok "http://127.0.0.1:$P_FAULTY/ok?t=fx-ok"
chk_eq "status" 200 "$R_STATUS"
chk_match "body names the client certificate faultyd saw" "^ok conn=[0-9]+ serial=$SERIAL_PEM\$" "$(body)"
t_done "faultyd: /ok through mtlsd, with our client certificate"

# ------------------------------------------------- before / within headers
off=$(mtlsd_log_offset faulty)
req rbh "http://127.0.0.1:$P_FAULTY/reset-before-headers?t=rbh"
refusal_checks "reset before headers" 502 upstream_reset
chk_match "body names the reason" '(reset|closed)' "$(body)"
chk_match "mtlsd log names the mapping" "mapping faulty: .*(reset|closed)" "$(mtlsd_log_since faulty "$off")"
ok_after rbh
t_done "reset before the response head → 502 upstream_reset; then /ok works"

# on a pooled connection the reset looks like a stale connection: one retry
# on a new connection is allowed, never more, and the answer is still 502
req rbh-warm "http://127.0.0.1:$P_FAULTY/ok?t=rbh-warm"
req rbh-pooled "http://127.0.0.1:$P_FAULTY/reset-before-headers?t=rbh-pooled"
refusal_checks "reset before headers (pooled)" 502 upstream_reset
chk_le "requests faultyd received for it (first try + at most one retry)" 2 "$(fd_requests rbh-pooled)"
ok_after rbh-pooled
t_done "reset before the response head on a pooled connection → 502, retried at most once"

req rih "http://127.0.0.1:$P_FAULTY/reset-in-headers?t=rih"
refusal_checks "reset within headers" 502 upstream_reset
chk_match "body names the reason" '(reset|closed)' "$(body)"
ok_after rih
t_done "reset within the response head → 502 upstream_reset; then /ok works"

# ------------------------------------------------------------ mid-body
# The head (Content-Length: 100000) has reached the client; what is left is
# closing the client connection, so that the client knows the body is short:
# curl exit 18 ("transfer closed with N bytes remaining to read").
for f in reset-mid-body close-mid-body; do
	off=$(mtlsd_log_offset faulty)
	req "$f" "http://127.0.0.1:$P_FAULTY/$f?t=$f"
	chk_eq "$f: curl exit status (18: partial transfer)" 18 "$R_RC"
	chk_eq "$f: status relayed before the fault" 200 "$R_STATUS"
	chk_le "$f: body bytes received (of 100000 announced)" 99999 "$(body_bytes)"
	chk_match "$f: what the client was told to expect" '^(100000|)$' "$(hdr Content-Length)"
	chk_match "$f: mtlsd log names the mapping" "mapping faulty: " "$(mtlsd_log_since faulty "$off")"
	ok_after "$f"
	t_done "$f: client connection closed, curl sees a partial transfer (exit 18); then /ok works"
done

# the head, part of the body and the reset may arrive in one read: nothing
# may then look complete either (partial, empty reply, reset, or a 502)
req rmbn "http://127.0.0.1:$P_FAULTY/reset-mid-body-now?t=rmbn"
if [ "$R_STATUS" != 502 ]; then
	chk_match "curl exit status (18 partial, 52 empty reply, 56 reset)" '^(18|52|56)$' "$R_RC"
	chk_le "body bytes received (of 100000 announced)" 99999 "$(body_bytes)"
fi
ok_after rmbn
t_done "reset-mid-body-now: head, body part and reset at once → never a complete-looking response"

req cmc "http://127.0.0.1:$P_FAULTY/close-mid-chunked?t=cmc"
chk_eq "curl exit status (18: partial transfer)" 18 "$R_RC"
chk_eq "status relayed before the fault" 200 "$R_STATUS"
chk_eq "body received so far" "first chunk only" "$(body)"
ok_after cmc
t_done "chunked body cut before its last chunk → no last chunk relayed, curl exit 18"

# control: a close-delimited body (no length, no chunking) ended by a clean
# close is complete, and must be relayed whole
req eof "http://127.0.0.1:$P_FAULTY/eof-body?t=eof"
chk_eq "curl exit status" 0 "$R_RC"
chk_eq "status" 200 "$R_STATUS"
chk_eq "body bytes" 3031 "$(body_bytes)"
chk_eq "body's last line" "end of a close-delimited body" "$(tail -n 1 "$R_B" 2>/dev/null)"
ok_after eof
t_done "control: a close-delimited body ended by close_notify + FIN is relayed whole"

# the same body cut by a reset: a TCP reset is never the end of a body, so
# the client must not get the end of one (HTTP/1.1: the last chunk; else a
# clean close) — curl exit 18 (no last chunk) or 56 (reset), never 0
req reof "http://127.0.0.1:$P_FAULTY/reset-eof-body?t=reof"
chk_match "curl exit status (18 partial, 56 reset)" '^(18|56)$' "$R_RC"
chk_eq "status relayed before the fault" 200 "$R_STATUS"
ok_after reof
t_done "close-delimited body cut by a reset → the client does not see a complete body"

# the same body ended by a bare FIN, without close_notify: a cut cannot be
# told from the end, so it is not complete (RFC 9112 9.8) — everything up to
# the FIN is relayed, then no last chunk, and the log says why
off=$(mtlsd_log_offset faulty)
req feof "http://127.0.0.1:$P_FAULTY/fin-eof-body?t=feof"
chk_eq "curl exit status (18: no last chunk)" 18 "$R_RC"
chk_eq "status relayed before the fault" 200 "$R_STATUS"
chk_eq "body bytes relayed up to the FIN" 3031 "$(body_bytes)"
chk_match "mtlsd log says why" \
	"mapping faulty: upstream closed the connection without TLS close_notify" \
	"$(mtlsd_log_since faulty "$off")"
ok_after feof
t_done "close-delimited body ended by a FIN without close_notify → not relayed as complete"

# a bare FIN after a body whose length was announced is a harmless (and
# common) way to close: the body is complete
req fcl "http://127.0.0.1:$P_FAULTY/fin-cl-body?t=fcl"
chk_eq "curl exit status" 0 "$R_RC"
chk_eq "status" 200 "$R_STATUS"
chk_eq "body bytes" 3000 "$(body_bytes)"
ok_after fcl
t_done "control: Content-Length body, then a FIN without close_notify → relayed whole"

# an HTTP/1.0 client cannot take chunks: a close-delimited body goes to it
# close-delimited too, so the close is its end, and a cut must reach it as
# a reset instead (curl exit 56), never as a clean close (exit 0)
req eof10 --http1.0 "http://127.0.0.1:$P_FAULTY/eof-body?t=eof10"
chk_eq "control, HTTP/1.0 client: curl exit status" 0 "$R_RC"
chk_eq "control, HTTP/1.0 client: body bytes" 3031 "$(body_bytes)"
for f in fin-eof-body reset-eof-body slow-eof-body; do
	req "$f-10" --http1.0 "http://127.0.0.1:$P_FAULTY/$f?t=$f-10"
	chk_eq "$f, HTTP/1.0 client: curl exit status (56: reset)" 56 "$R_RC"
	chk_eq "$f, HTTP/1.0 client: status relayed before the fault" 200 "$R_STATUS"
	ok_after "$f-10"
done
t_done "HTTP/1.0 client, close-delimited body cut (FIN without close_notify, reset, stall) → a reset, not a clean close"

# ------------------------------------------------- garbled response heads
for f in bad-status bad-header-nocolon bad-header-nul bad-header-space bad-cl bad-huge-header; do
	req "$f" "http://127.0.0.1:$P_FAULTY/$f?t=$f"
	refusal_checks "$f" 502 upstream_protocol
	chk_nomatch "$f: faultyd's body not relayed" 'bad' "$(body)"
	fd_wait_closed "$f" "$f"
	ok_after "$f"
	t_done "$f: invalid response head → 502 upstream_protocol, connection dropped; then /ok works"
done

# invalid chunk framing after the head was relayed: as for a reset
# mid-body, the client connection is closed without a last chunk
req bad-chunk "http://127.0.0.1:$P_FAULTY/bad-chunk?t=bad-chunk"
chk_eq "curl exit status (18: partial transfer)" 18 "$R_RC"
chk_eq "status relayed before the fault" 200 "$R_STATUS"
chk_eq "body received: the good chunk only" hello "$(body)"
fd_wait_closed bad-chunk "bad-chunk"
ok_after bad-chunk
t_done "bad-chunk: invalid chunk size mid-body → client connection closed without a last chunk"

# the same fault in the same write as the head: nothing has reached the
# client yet, so it gets a 502 naming the fault instead of an empty reply
req bad-chunk-now "http://127.0.0.1:$P_FAULTY/bad-chunk-now?t=bad-chunk-now"
refusal_checks "bad-chunk-now" 502 upstream_protocol
chk_nomatch "bad-chunk-now: faultyd's body not relayed" 'hello' "$(body)"
fd_wait_closed bad-chunk-now "bad-chunk-now"
ok_after bad-chunk-now
t_done "bad-chunk-now: head and invalid chunk in one read → 502 upstream_protocol, not an empty reply"

# ------------------------------------------------------------ stalls
req silence "http://127.0.0.1:$P_FAULTY/silence?t=silence"
refusal_checks "silence" 504 upstream_timeout
chk_le "seconds until the 504 (upstream_response 1s)" "$STALL_MAX" "$R_TIME"
fd_wait_closed silence "silence"
ok_after silence
t_done "silent upstream → 504 upstream_timeout after upstream_response; connection dropped"

off=$(mtlsd_log_offset faulty)
REQ_TIMEOUT=60 req slow-body "http://127.0.0.1:$P_FAULTY/slow-body?t=slow-body"
chk_eq "curl exit status (18: partial transfer, not 28: our own timeout)" 18 "$R_RC"
chk_eq "status relayed before the stall" 200 "$R_STATUS"
chk_eq "body received before the stall" 0123456789 "$(body)"
chk_le "seconds until mtlsd closed the client connection" "$STALL_MAX" "$R_TIME"
chk_match "mtlsd log" "mapping faulty: upstream stalled mid-response" "$(mtlsd_log_since faulty "$off")"
fd_wait_closed slow-body "slow-body"
ok_after slow-body
t_done "body that stops mid-way → client connection closed after the timeout, curl exit 18"

# ---------------------------------------------- Connection: close, kept open
req cbk "http://127.0.0.1:$P_FAULTY/close-but-keep?t=cbk"
chk_eq "status" 200 "$R_STATUS"
chk_match "body" '^close-but-keep conn=[0-9]+$' "$(body)"
cbk_conn=$(fd_conn cbk)
for i in 1 2; do
	req "cbk-next-$i" "http://127.0.0.1:$P_FAULTY/ok?t=cbk-next-$i"
	chk_eq "next request $i: status" 200 "$R_STATUS"
	chk_match "next request $i: its own answer" '^ok conn=[0-9]+ ' "$(body)"
	chk_ne "next request $i: upstream connection (faultyd's number)" "$cbk_conn" "$(fd_conn "cbk-next-$i")"
done
chk_eq "requests faultyd got on a connection after Connection: close" 0 \
	"$(grep -c 'REUSED after Connection: close' "$FD_LOG")"
fd_wait_closed cbk "close-but-keep"
t_done "Connection: close kept open by the upstream → not reused, closed by mtlsd"

# ------------------------------------------------------------ TLS alerts
req alert "http://127.0.0.1:$P_ALERT/ok?t=alert"
refusal_checks "alert unrecognized_name" 502 upstream_tls
chk_match "body names the alert" 'alert.*unrecognized.name' "$(body)"
req denied "http://127.0.0.1:$P_DENIED/ok?t=denied"
refusal_checks "alert access_denied" 502 upstream_tls
chk_match "body names the alert" 'alert.*access.denied' "$(body)"
chk_eq "requests faultyd received on those" 0 "$(($(fd_requests alert) + $(fd_requests denied)))"
ok_after alert
t_done "TLS handshake alert → 502 upstream_tls naming the alert"

# ------------------------------------------------------------ leaks
# Every fault again (LEAK_WARM warm-up rounds: fill bounded caches, see
# leak_mark in lib.sh; then the mark; then LEAK_REPS rounds), 8 at a time,
# then descriptors and heap in use compared with the mark. Pooled
# connections are gone before both (pool idle 2s), so the descriptor
# comparison covers every upstream connection, and faultyd must hold none.
FLEAK_WARM=${FLEAK_WARM:-3}
FLEAK_REPS=${FLEAK_REPS:-10}

# leak_faults N: N rounds of 22 faults; prints the statuses counted ("200 xA 502 xB 504 xC")
leak_faults() {
	local cfg=$TMP/r/fleak.cfg i f
	: >"$cfg"
	for i in $(seq 1 "$1"); do
		for f in reset-before-headers reset-in-headers bad-status bad-header-nocolon \
			bad-header-nul bad-header-space bad-cl bad-huge-header reset-mid-body \
			close-mid-body close-mid-chunked bad-chunk bad-chunk-now reset-eof-body slow-body silence \
			eof-body fin-eof-body fin-cl-body close-but-keep ok; do
			printf 'url = "http://127.0.0.1:%s/%s?t=leak-%s-%s"\noutput = "/dev/null"\n' \
				"$P_FAULTY" "$f" "$f" "$i" >>"$cfg"
		done
		printf 'url = "http://127.0.0.1:%s/ok?t=leak-alert-%s"\noutput = "/dev/null"\n' \
			"$P_ALERT" "$i" >>"$cfg"
	done
	curl -s --max-time 300 --parallel --parallel-max 8 -w '%{http_code}\n' -K "$cfg" 2>/dev/null |
		sort | uniq -c | awk '{ printf "%s%s x%s", sep, $2, $1; sep = " " }'
}
_no_faulty_upstream() { [ "$($NETTOOL established "$(mtlsd_pid faulty)" "$FD_PORT")" = 0 ]; }

leak_faults "$FLEAK_WARM" >/dev/null
wait_until 20 _no_faulty_upstream || chk_fail "upstream connections still open 20 s after the warm-up"
leak_mark faulty
chk_eq "statuses of the repeated faults" \
	"200 x$((FLEAK_REPS * 11)) 502 x$((FLEAK_REPS * 10)) 504 x$FLEAK_REPS" "$(leak_faults "$FLEAK_REPS")"
wait_until 20 _no_faulty_upstream || chk_fail "upstream connections still open 20 s after the faults"
leak_check faulty "after $FLEAK_REPS × 22 upstream faults"
_fd_none_open() { [ "$(fd_open)" = 0 ]; }
wait_until 20 _fd_none_open || chk_fail "faultyd still holds $(fd_open) connections from mtlsd"
t_done "faults ×$FLEAK_REPS: no descriptor leaked, heap in use not grown, no upstream connection left"

ok_after leak
t_done "after all the faults the mapping still serves"

mtlsd_stop faulty
faultyd_stop
