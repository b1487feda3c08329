# shellcheck shell=bash
# SIGTERM drains: a request in flight completes, then mtlsd exits 0.

trust="trust: {ca_file: $PKI/trust/server-root.pem}"
mtlsd_write_config drain
mtlsd_mapping_file drain drain.yaml <<EOF
mappings:
  - name: drain
    url: https://localhost:$NG_PORT/
    listen: 127.0.0.1:0
    certificate: client-pem
    $trust
EOF
mtlsd_start drain || return 0
pid=$(mtlsd_pid drain)
port=$(mtlsd_port drain drain)

REQ_TIMEOUT=20 req drain-slow "http://127.0.0.1:$port/slow?t=drain-slow" &
client=$!
# positive signal that the request is in flight: this fresh instance has
# opened its (first) connection to nginx
_drain_upstream() { [ "$(upstream_conns drain)" -ge 1 ]; }
wait_until 10 _drain_upstream || chk_fail "mtlsd opened no upstream connection within 10 s"
mtlsd_term drain
wait "$client"
chk_eq "status" 200 "$(cat "$TMP/r/drain-slow.s")"
chk_eq "body" "slow done" "$(cat "$TMP/r/drain-slow.b" 2>/dev/null)"
t_done "drain: request in flight at SIGTERM completes with 200"

if wait_until 15 _not_running "$pid"; then
	wait "$pid" 2>/dev/null
	rc=$?
else
	kill -KILL "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
	rc="still running 15 s after SIGTERM"
fi
rm -f "$TMP/inst/drain/pid"
chk_eq "exit status" 0 "$rc"
grep -Eq "$SAN_ERE" "$TMP/inst/drain/mtlsd.log" &&
	chk_fail "sanitizer report: $(grep -Em1 "$SAN_ERE" "$TMP/inst/drain/mtlsd.log")"
t_done "drain: mtlsd exits 0 after draining, log free of sanitizer reports"

