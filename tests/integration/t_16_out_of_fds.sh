# shellcheck shell=bash
# Out of descriptors: more clients than the open-file limit lets mtlsd
# accept. It says so in its log, pauses accepting instead of spinning on a
# queue it cannot empty, and once clients leave it accepts again, serves,
# and holds the descriptors it held before.
#
# Its own instance, started with a soft open-file limit of 64 (the daemon
# keeps the limit it started with), client_header long enough that the
# held connections are not cut off by mtlsd, and an admin endpoint (leak
# marks).

FD_LIMIT=64
FD_HOLD=120
fd_nofile_old=$(ulimit -Sn)
mtlsd_write_config nofd "admin: {listen: \"127.0.0.1:0\"}
timeouts: {client_header: 600s, idle: 600s}"
mtlsd_mapping_file nofd nofd.yaml <<EOF
mappings:
  - name: plain
    url: https://localhost:$NG_PORT/
    listen: 127.0.0.1:0
    certificate: client-pem
    trust: {ca_file: $PKI/trust/server-root.pem}
EOF
ulimit -Sn "$FD_LIMIT"
mtlsd_start nofd
rc=$?
ulimit -Sn "$fd_nofile_old"
[ "$rc" -eq 0 ] || return 0

F_PID=$(mtlsd_pid nofd)
F_PORT=$(mtlsd_port nofd plain)
chk_eq "the daemon's open-file limit" "$FD_LIMIT" \
	"$(awk '/^Max open files/ { print $4 }' "/proc/$F_PID/limits")"
req nofd-warm "http://127.0.0.1:$F_PORT/?t=nofd-warm"
chk_eq "warm-up status" 200 "$R_STATUS"
leak_mark nofd
t_done "out of fds: instance with an open-file limit of $FD_LIMIT serves"

off=$(mtlsd_log_offset nofd)
rm -f "$TMP/r/nofd.ready" "$TMP/r/nofd.release"
$NETTOOL hold 127.0.0.1 "$F_PORT" "$FD_HOLD" "$TMP/r/nofd.ready" "$TMP/r/nofd.release" \
	>"$TMP/r/nofd.out" 2>&1 &
f_holder=$!
wait_until 30 test -f "$TMP/r/nofd.ready" || chk_fail "the $FD_HOLD connections were not all opened"
mtlsd_wait_log nofd "$off" "accept on 127\.0\.0\.1:$F_PORT: Too many open files" 15 ||
	chk_fail "no 'accept on 127.0.0.1:$F_PORT: Too many open files' in the log"
chk_ge "descriptors in use, at the limit" "$FD_LIMIT" "$(proc_fds "$F_PID")"
off=$(mtlsd_log_offset nofd)
t0=$(proc_cpu_ticks "$F_PID")
sleep 2
t1=$(proc_cpu_ticks "$F_PID")
# a listener left in epoll would report the waiting clients on every pass
chk_le "CPU ticks over 2 s out of descriptors" 50 "$((t1 - t0))"
# one try per 100 ms pause and worker (3 in the sanitizer runs)
chk_le "'Too many open files' lines in 2 s" 80 \
	"$(mtlsd_log_since nofd "$off" | grep -c 'Too many open files')"
t_done "out of fds: logged, and accepting pauses instead of spinning ($((t1 - t0)) ticks in 2 s)"

touch "$TMP/r/nofd.release"
wait "$f_holder"
req nofd-after "http://127.0.0.1:$F_PORT/?t=nofd-after"
chk_eq "status once the clients left" 200 "$R_STATUS"
chk_eq "body once the clients left" "hello from nginx" "$(body)"
leak_check nofd "out of fds"
mtlsd_stop nofd
t_done "out of fds: once the clients leave it accepts again, serves, and holds what it held"
