# shellcheck shell=bash
# Upstream timeouts and stale pooled connections (their own instances: the
# timeout is global, and the stale test counts upstream connections).

trust="trust: {ca_file: $PKI/trust/server-root.pem}"

# --- upstream_response: 1s against a location that answers after 3 s
mtlsd_write_config timeout 'timeouts: {connect: 5s, handshake: 5s, upstream_response: 1s, client_header: 1s}
admin: {listen: "127.0.0.1:0"}
pool: {idle_timeout: 1s}'
mtlsd_mapping_file timeout slow.yaml <<EOF
mappings:
  - name: slowpoke
    url: https://localhost:$NG_PORT/
    listen: 127.0.0.1:0
    certificate: client-pem
    $trust
EOF
if mtlsd_start timeout; then
	port=$(mtlsd_port timeout slowpoke)
	req slow "http://127.0.0.1:$port/slow?t=timeout-slow"
	refusal_checks "/slow" 504 upstream_timeout
	chk_le "seconds" 2.8 "$R_TIME"
	t_done "timeout: upstream slower than upstream_response → 504 upstream_timeout"

	# the connection that timed out still has "slow done" coming: it must not
	# be pooled, or the next client would read it as its own answer
	for i in 1 2 3; do
		req "after-timeout-$i" "http://127.0.0.1:$port/?t=after-timeout-$i-"
		chk_eq "request $i status" 200 "$R_STATUS"
		chk_eq "request $i body" "hello from nginx" "$(body)"
	done
	REQ_TIMEOUT=10 req after-timeout-late "http://127.0.0.1:$port/teapot?t=after-timeout-late"
	chk_eq "later request status" 418 "$R_STATUS"
	t_done "timeout: later requests get their own responses (timed-out connection not reused)"

	# a client that never finishes its request head is cut off (client_header)
	t0=$(date +%s%N)
	RAW_EOF=1 raw "$port" 8 < <(printf 'GET /?t=slowloris HTTP/1.1\r\nHost: localhost\r\n')
	ms=$((($(date +%s%N) - t0) / 1000000))
	chk_nomatch "connection closed by mtlsd" 'timed out' "$(cat "$TMP/r/raw.e" 2>/dev/null)"
	chk_le "milliseconds until closed" 4000 "$ms"
	[ -z "$RAW" ] || chk_match "response, if any" '^HTTP/1\.1 (400|408)' "$RAW"
	t_done "timeout: an unfinished request head is cut off after client_header (1s)"

	# no descriptor or heap leaked by timeouts (leak_mark/leak_check in
	# lib.sh): a warm-up round (fills bounded caches: each timed-out
	# connection is a new handshake), the mark, the same again, the check.
	# A round: 20 timed-out upstream requests (10 at a time) and 20 cut-off
	# request heads; prints the statuses counted.
	leak_timeouts() {
		local i pids=() p
		: >"$TMP/r/leak-504.cfg"
		for i in $(seq 1 20); do
			printf 'url = "http://127.0.0.1:%s/slow?t=leak-504-%s"\noutput = "/dev/null"\n' "$port" "$i" \
				>>"$TMP/r/leak-504.cfg"
		done
		for i in $(seq 1 20); do
			(RAW_EOF=1 $NETTOOL raw 127.0.0.1 "$port" 8 < <(printf 'GET /?t=leak-head HTTP/1.1\r\nHost: localhost\r\n') \
				>/dev/null 2>&1) &
			pids+=($!)
		done
		curl -s --max-time 60 --parallel --parallel-max 10 -w '%{http_code}\n' -K "$TMP/r/leak-504.cfg" |
			sort | uniq -c | awk '{ printf "%s%s x%s", sep, $2, $1; sep = " " }'
		for p in "${pids[@]}"; do wait "$p"; done
	}
	_t_no_upstream() { [ "$(upstream_conns timeout)" = 0 ]; }
	leak_timeouts >/dev/null
	wait_until 20 _t_no_upstream
	leak_mark timeout
	chk_eq "statuses of the repeated slow requests" "504 x20" "$(leak_timeouts)"
	# every upstream connection gone (timed out, or idle 1s): the descriptor
	# comparison then covers them too
	wait_until 20 _t_no_upstream || chk_fail "upstream connections still open 20 s after the timeouts"
	leak_check timeout "after 20 upstream timeouts and 20 client_header cut-offs"
	t_done "timeout: no descriptor leaked, heap in use not grown after repeated timeouts"
	mtlsd_stop timeout
fi

# --- nginx closes an idle pooled connection (keepalive_timeout 1s for
# /short-keepalive); the next request must not fail on it
mtlsd_write_config stale
mtlsd_mapping_file stale stale.yaml <<EOF
mappings:
  - name: stale
    url: https://localhost:$NG_PORT/
    listen: 127.0.0.1:0
    certificate: client-pem
    $trust
EOF
if mtlsd_start stale; then
	port=$(mtlsd_port stale stale)
	req short-ka "http://127.0.0.1:$port/short-keepalive?t=short-ka"
	chk_eq "first status" 200 "$R_STATUS"
	# positive signal: mtlsd's connection to nginx is no longer ESTABLISHED
	# (nginx closed it; mtlsd closed it or holds it in CLOSE_WAIT)
	_no_upstream_conn() { [ "$(upstream_conns stale)" = 0 ]; }
	wait_until 10 _no_upstream_conn || chk_fail "nginx did not close the idle connection within 10 s (fixture)"
	for i in 1 2; do
		req "after-stale-$i" "http://127.0.0.1:$port/?t=after-stale-$i-"
		chk_eq "request $i status" 200 "$R_STATUS"
		chk_eq "request $i body" "hello from nginx" "$(body)"
	done
	t_done "pool: a pooled connection the upstream closed is not used for the next request"
	mtlsd_stop stale
fi
