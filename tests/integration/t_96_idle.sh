# shellcheck shell=bash
# 10,000 idle client connections (issue 5, scope 1): they must not stop a
# normal request from succeeding; the memory each one costs is measured and
# printed ("# memory per idle connection: X KB"), and once they close the
# daemon holds as many descriptors as before.
#
# Its own instance: limits.max_connections above 10,000, client_header long
# enough that mtlsd does not cut the idle connections off while they are
# held, and an admin endpoint (mtlsd_connections). The open-file limit of
# the shell is raised for the daemon (and nettool raises its own), then put
# back.

IDLE_N=${IDLE_CONNECTIONS:-10000}
trust="trust: {ca_file: $PKI/trust/server-root.pem}"
idle_nofile_old=$(ulimit -Sn)
idle_nofile_want=$((IDLE_N + 1024))
if [ "$(ulimit -Hn)" != unlimited ] && [ "$(ulimit -Hn)" -lt "$idle_nofile_want" ]; then
	ulimit -Hn "$idle_nofile_want" 2>/dev/null # root may raise the hard limit
fi
if ! ulimit -Sn "$idle_nofile_want" 2>/dev/null; then
	t_fail "idle: raise the open-file limit to $idle_nofile_want" \
		"ulimit -n is $(ulimit -Sn) (hard $(ulimit -Hn)); run as root or raise it"
	return 0
fi

mtlsd_write_config idle "admin: {listen: \"127.0.0.1:0\"}
limits: {max_connections: $((IDLE_N + 2000))}
timeouts: {client_header: 600s, idle: 600s}
pool: {idle_timeout: 1s}"
mtlsd_mapping_file idle idle.yaml <<EOF
mappings:
  - name: plain
    url: https://localhost:$NG_PORT/
    listen: 127.0.0.1:0
    certificate: client-pem
    $trust
EOF
mtlsd_start idle
rc=$?
ulimit -Sn "$idle_nofile_old" # the daemon keeps the limit it started with
[ "$rc" -eq 0 ] || return 0

I_PID=$(mtlsd_pid idle)
I_PORT=$(mtlsd_port idle plain)
_i_no_upstream() { [ "$(upstream_conns idle)" = 0 ]; }

# warm-up: one request through (TLS context, pool, admin, log buffers), then
# the baseline once its pooled upstream connection is gone (idle_timeout 1s)
req idle-warm "http://127.0.0.1:$I_PORT/?t=idle-warm"
chk_eq "warm-up status" 200 "$R_STATUS"
mtlsd_metric idle mtlsd_connections >/dev/null
wait_until 15 _i_no_upstream || chk_fail "pooled upstream connection not closed after idle_timeout"
I_FD0=$(proc_fds "$I_PID")
I_RSS0=$(proc_rss_kb "$I_PID")
t_done "idle: instance with max_connections $((IDLE_N + 2000)) serves; baseline taken"

rm -f "$TMP/r/idle.ready" "$TMP/r/idle.release"
$NETTOOL hold 127.0.0.1 "$I_PORT" "$IDLE_N" "$TMP/r/idle.ready" "$TMP/r/idle.release" \
	>"$TMP/r/idle.out" 2>&1 &
i_holder=$!
_i_held() { [ -f "$TMP/r/idle.ready" ] || { kill -0 "$i_holder" 2>/dev/null || return 99; return 1; }; }
# positive signals that mtlsd accepted every one: its descriptors and its
# own count of client connections
_i_accepted() { [ "$(proc_fds "$I_PID")" -ge $((I_FD0 + IDLE_N)) ]; }
if wait_until 180 _i_held && wait_until 120 _i_accepted; then
	chk_eq "idle connections the client opened" "$IDLE_N" "$(head -n 1 "$TMP/r/idle.ready")"
	chk_eq "mtlsd_connections with them open" "$IDLE_N" "$(mtlsd_metric idle mtlsd_connections)"
	i_rss1=$(proc_rss_kb "$I_PID")
	# kB with one decimal: (RSS delta in kB) / N
	i_per=$(awk -v a="$I_RSS0" -v b="$i_rss1" -v n="$IDLE_N" 'BEGIN { printf "%.1f", (b - a) / n }')
	echo "# memory per idle connection: $i_per KB (RSS $I_RSS0 kB → $i_rss1 kB with $IDLE_N idle connections)"
	echo "$i_per" >"$TMP/r/idle.per-conn-kb"

	req idle-normal "http://127.0.0.1:$I_PORT/?t=idle-normal"
	chk_eq "status with $IDLE_N idle connections open" 200 "$R_STATUS"
	chk_eq "body" "hello from nginx" "$(body)"
	chk_eq "serial at nginx" "$SERIAL_PEM" "$(ngx_field "$(ngx_log 't=idle-normal')" serial)"
else
	chk_fail "could not hold $IDLE_N connections: client: $(tail -n 2 "$TMP/r/idle.out" | tr '\n' ' ') mtlsd fds: $(proc_fds "$I_PID")"
fi
t_done "idle: $IDLE_N idle connections open, a normal request still gets 200 and its body"

touch "$TMP/r/idle.release"
wait "$i_holder"
chk_eq "idle connections mtlsd closed while they were held" "closed-by-peer 0" \
	"$(tail -n 1 "$TMP/r/idle.out")"
_i_fds_back() { [ "$(proc_fds "$I_PID")" -le "$I_FD0" ]; }
wait_until 60 _i_no_upstream || chk_fail "pooled upstream connection not closed after idle_timeout"
wait_until 60 _i_fds_back
chk_eq "descriptors after they closed (baseline)" "$I_FD0" "$(proc_fds "$I_PID")"
chk_eq "mtlsd_connections after they closed" 0 "$(mtlsd_metric idle mtlsd_connections)"
req idle-after "http://127.0.0.1:$I_PORT/?t=idle-after"
chk_eq "status after they closed" 200 "$R_STATUS"
t_done "idle: after the $IDLE_N close, descriptors are back to the baseline and requests are served"
mtlsd_stop idle
