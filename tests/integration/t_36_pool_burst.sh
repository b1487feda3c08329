# shellcheck shell=bash
# A burst of more concurrent requests than pool.max_idle_per_destination
# (what a user sees):
#  - the connections the burst opened beyond the cap stay pooled for
#    pool.surplus_timeout, so the next burst reuses every one of them: no
#    new TLS handshake, no new connection at the upstream;
#  - once the burst is over the pool shrinks back to the cap;
#  - surplus_timeout: 0 (after a reload) closes them at once, so each burst
#    opens all but the cap anew.
# Instance: pb (max_idle_per_destination 2, surplus_timeout 4s, workers 1:
# each worker has a pool of its own, and which worker a connection lands on
# is the kernel's choice). Each request is /slow (the upstream answers after
# 3 s), so the 6 of a burst overlap.

trust="trust: {ca_file: $PKI/trust/server-root.pem}"
PB_N=6
mtlsd_write_config pb "admin: {listen: \"127.0.0.1:0\"}
workers: 1
pool: {max_idle_per_destination: 2, surplus_timeout: 4s}"
mtlsd_mapping_file pb pb.yaml <<EOF
mappings:
  - name: pb
    url: https://localhost:$NG_PORT/
    listen: 127.0.0.1:0
    certificate: client-pem
    $trust
EOF
mtlsd_start pb || return 0
PB_PORT=$(mtlsd_port pb pb)

# pb_burst TAG: PB_N concurrent requests; prints their status codes
pb_burst() {
	local i pids=()
	for i in $(seq 1 "$PB_N"); do
		curl -sS --max-time 30 -o /dev/null -w '%{http_code}' \
			"http://127.0.0.1:$PB_PORT/slow?t=pb-$1-$i-" >"$TMP/r/pb-$1-$i.s" 2>&1 &
		pids+=($!)
	done
	wait "${pids[@]}"
	for i in $(seq 1 "$PB_N"); do printf '%s ' "$(cat "$TMP/r/pb-$1-$i.s")"; done
}
# pb_conns TAG: the upstream's connection numbers of a burst, one per line
pb_conns() {
	ngx_log "t=pb-$1-$PB_N-" >/dev/null
	grep -E "uri=[^ ]*t=pb-$1-[0-9]+-" "$NG_DIR/access.log" |
		sed 's/^conn=\([0-9]*\).*/\1/' | sort -u
}
pb_idle() { mtlsd_metric pb 'mtlsd_pool_idle_connections{mapping="pb"}'; }
pb_handshakes() { mtlsd_metric pb 'mtlsd_upstream_handshakes_total{mapping="pb"}'; }
_pb_idle_is() { [ "$(pb_idle)" = "$1" ]; }

ok6=$(printf '200 %.0s' $(seq 1 "$PB_N"))
chk_eq "statuses" "$ok6" "$(pb_burst a)"
pb_conns a >"$TMP/r/pb-a.conns"
chk_eq "upstream connections of the first burst" "$PB_N" "$(wc -l <"$TMP/r/pb-a.conns")"
chk_eq "idle after the burst (2 kept, 4 surplus)" "$PB_N" "$(pb_idle)"
chk_eq "statuses of the second burst" "$ok6" "$(pb_burst b)"
pb_conns b >"$TMP/r/pb-b.conns"
chk_eq "connections the second burst opened" 0 \
	"$(comm -13 "$TMP/r/pb-a.conns" "$TMP/r/pb-b.conns" | wc -l)"
chk_eq "upstream handshakes" "$PB_N" "$(pb_handshakes)"
t_done "pool burst: 6 concurrent requests with max_idle_per_destination 2 reuse all 6 connections in the next burst"

wait_until 20 _pb_idle_is 2 || chk_fail "idle connections $(pb_idle), not 2, after surplus_timeout"
chk_eq "established upstream connections" 2 "$(upstream_conns pb)"
t_done "pool burst: the pool shrinks back to max_idle_per_destination after surplus_timeout"

mtlsd_write_config pb "admin: {listen: \"127.0.0.1:0\"}
workers: 1
pool: {max_idle_per_destination: 2, surplus_timeout: 0s}"
pb_off=$(mtlsd_log_offset pb)
kill -HUP "$(mtlsd_pid pb)"
mtlsd_wait_log pb "$pb_off" 'reload: generation 2 applied' 15 || chk_fail "no reload to generation 2"
chk_eq "statuses" "$ok6" "$(pb_burst c)"
chk_eq "idle after the burst" 2 "$(pb_idle)"
pb_hs0=$(pb_handshakes)
chk_eq "statuses of the next burst" "$ok6" "$(pb_burst d)"
chk_eq "handshakes of that burst" "$((PB_N - 2))" "$(($(pb_handshakes) - pb_hs0))"
t_done "pool burst: surplus_timeout 0 closes the connections beyond the cap at once"

mtlsd_stop pb
