# shellcheck shell=bash
# SIGHUP reload: a changed mapping and a new listener take effect; a broken
# file changes nothing; in-flight requests finish across a reload.
#
# mtlsd also reloads by itself on inotify events, so the generation number
# after an edit is not asserted exactly; files are replaced atomically and
# the wait is for the first successful reload logged after the edit.

trust="trust: {ca_file: $PKI/trust/server-root.pem}"
mtlsd_write_config reload
mtlsd_mapping_file reload r1.yaml <<EOF
mappings:
  - name: r1
    url: https://localhost:$NG_PORT/
    listen: 127.0.0.1:0
    certificate: client-pem
    $trust
EOF
mtlsd_start reload || return 0
pid=$(mtlsd_pid reload)
p1=$(mtlsd_port reload r1)
req r1-before "http://127.0.0.1:$p1/x?t=r1-before"
chk_eq "status" 200 "$R_STATUS"
chk_eq "URI at nginx" "/x?t=r1-before" "$(ngx_field "$(ngx_log 't=r1-before')" uri)"
t_done "reload: generation 1 serves r1"

# --- edit r1's url, add r2 with its own listener, SIGHUP
off=$(mtlsd_log_offset reload)
mtlsd_mapping_file reload r1.yaml <<EOF
mappings:
  - name: r1
    url: https://localhost:$NG_PORT/v2/
    listen: 127.0.0.1:0
    certificate: client-pem
    $trust
EOF
mtlsd_mapping_file reload r2.yaml <<EOF
mappings:
  - name: r2
    url: https://localhost:$NG_PORT/r2/
    listen: 127.0.0.1:0
    certificate: client-p12
    $trust
EOF
kill -HUP "$pid"
_r2_listening() { _log_has_since reload "$off" 'listening on 127\.0\.0\.1:[0-9]+ \(mapping r2\)'; }
mtlsd_wait_log reload "$off" 'reload: generation [0-9]+ applied' 15 ||
	chk_fail "no 'reload: generation N applied' within 15 s"
wait_until 5 _r2_listening || chk_fail "no 'listening on ... (mapping r2)' after the reload"
chk_nomatch "log after the edit" 'reload failed' "$(mtlsd_log_since reload "$off")"
p2=$(mtlsd_port reload r2)
req r2 "http://127.0.0.1:${p2:-1}/y?t=r2-new"
chk_eq "r2 status" 200 "$R_STATUS"
line=$(ngx_log 't=r2-new')
chk_eq "r2 URI at nginx" "/r2/y?t=r2-new" "$(ngx_field "$line" uri)"
chk_eq "r2 serial at nginx" "$SERIAL_P12" "$(ngx_field "$line" serial)"
t_done "reload: SIGHUP adds a mapping with a new listener (served with its certificate)"

p1=$(mtlsd_port reload r1)
req r1-after "http://127.0.0.1:$p1/x?t=r1-after"
chk_eq "status" 200 "$R_STATUS"
chk_eq "URI at nginx" "/v2/x?t=r1-after" "$(ngx_field "$(ngx_log 't=r1-after')" uri)"
t_done "reload: SIGHUP applies a changed mapping url"
chk_eq "pid" "$pid" "$(mtlsd_pid reload)"
chk_eq "still running" yes "$(mtlsd_running reload && echo yes)"
t_done "reload: same process keeps running"

# --- a broken mapping file is isolated: its mappings keep their last good
# version, the error is logged with file:line:col, the rest applies
off=$(mtlsd_log_offset reload)
printf 'mappings:\n  - name: r2\n    url: [unclosed\n' | mtlsd_mapping_file reload r2.yaml
kill -HUP "$pid"
mtlsd_wait_log reload "$off" 'reload: generation [0-9]+ applied .*problem' 15 ||
	chk_fail "no 'generation N applied ... problem(s) kept out' within 15 s"
chk_match "error names the file, line and column" 'r2\.yaml:[0-9]+:[0-9]+: ' \
	"$(mtlsd_log_since reload "$off")"
chk_match "the file is kept at its last good version" \
	'r2\.yaml: not applied; its mappings keep their last good version' \
	"$(mtlsd_log_since reload "$off")"
t_done "reload: broken mapping file → error with file:line:col, its mappings keep their last good version"

req r1-broken "http://127.0.0.1:$p1/x?t=r1-broken"
chk_eq "r1 status" 200 "$R_STATUS"
chk_eq "r1 URI at nginx" "/v2/x?t=r1-broken" "$(ngx_field "$(ngx_log 't=r1-broken')" uri)"
req r2-broken "http://127.0.0.1:${p2:-1}/y?t=r2-broken"
chk_eq "r2 status" 200 "$R_STATUS"
chk_eq "r2 serial at nginx" "$SERIAL_P12" "$(ngx_field "$(ngx_log 't=r2-broken')" serial)"
t_done "reload: after a broken mapping file every mapping keeps serving"

# --- while r2.yaml is still broken, a change to r1.yaml applies
off=$(mtlsd_log_offset reload)
mtlsd_mapping_file reload r1.yaml <<MAP
mappings:
  - name: r1
    url: https://localhost:$NG_PORT/v2b/
    listen: 127.0.0.1:0
    certificate: client-pem
    $trust
MAP
kill -HUP "$pid"
mtlsd_wait_log reload "$off" 'reload: generation [0-9]+ applied' 15 || chk_fail "no reload applied"
p1=$(mtlsd_port reload r1)
req r1-isolated "http://127.0.0.1:$p1/x?t=r1-isolated"
chk_eq "r1 status" 200 "$R_STATUS"
chk_eq "r1 URI at nginx (new version)" "/v2b/x?t=r1-isolated" \
	"$(ngx_field "$(ngx_log 't=r1-isolated')" uri)"
req r2-isolated "http://127.0.0.1:${p2:-1}/y?t=r2-isolated"
chk_eq "r2 status (last good version)" 200 "$R_STATUS"
t_done "reload: other files apply while one mapping file is broken"

# --- a broken main file: nothing changes, one line says why
gen=$(mtlsd_log_since reload 0 | sed -n 's/.*reload: generation \([0-9]*\) applied.*/\1/p' | tail -n 1)
cp "$TMP/inst/reload/mtlsd.yaml" "$TMP/mtlsd.yaml.good"
off=$(mtlsd_log_offset reload)
echo 'timeouts: {connect: soon}' >>"$TMP/inst/reload/mtlsd.yaml"
kill -HUP "$pid"
mtlsd_wait_log reload "$off" 'reload failed' 15 || chk_fail "no 'reload failed' within 15 s"
chk_match "failure line" "reload failed: .*still serving generation ${gen:-[0-9]+}" "$(mtlsd_log_since reload "$off" | grep 'reload failed' | tail -n 1)"
chk_match "error names the main file" 'mtlsd\.yaml:[0-9]+:[0-9]+: ' "$(mtlsd_log_since reload "$off")"
req r1-mainbroken "http://127.0.0.1:$p1/x?t=r1-mainbroken"
chk_eq "r1 status" 200 "$R_STATUS"
t_done "reload: broken main file → 'reload failed: ...; still serving generation N'"
off=$(mtlsd_log_offset reload)
cp "$TMP/mtlsd.yaml.good" "$TMP/inst/reload/.mtlsd.yaml.tmp"
mv "$TMP/inst/reload/.mtlsd.yaml.tmp" "$TMP/inst/reload/mtlsd.yaml"
mtlsd_wait_log reload "$off" 'reload: generation [0-9]+ applied' 15 ||
	chk_fail "the restored main file was not applied"
t_done "reload: the restored main file applies by itself"

# --- fix it again, with a request in flight across the reload
off=$(mtlsd_log_offset reload)
REQ_TIMEOUT=20 req inflight -v "http://127.0.0.1:$p1/slow?t=inflight" &
inflight=$!
_inflight_sent() { grep -q '^> GET /slow' "$TMP/r/inflight.e" 2>/dev/null; }
wait_until 10 _inflight_sent || chk_fail "the /slow request was not sent within 10 s"
mtlsd_mapping_file reload r2.yaml <<EOF
mappings:
  - name: r2
    url: https://localhost:$NG_PORT/r2b/
    listen: 127.0.0.1:0
    certificate: client-p12
    $trust
EOF
kill -HUP "$pid"
mtlsd_wait_log reload "$off" 'reload: generation [0-9]+ applied' 15 ||
	chk_fail "no 'reload: generation N applied' within 15 s"
wait "$inflight"
chk_eq "in-flight status" 200 "$(cat "$TMP/r/inflight.s" 2>/dev/null)"
chk_eq "in-flight body" "slow done" "$(cat "$TMP/r/inflight.b" 2>/dev/null)"
t_done "reload: a request in flight during a reload completes"
p2=$(mtlsd_port reload r2)
req r2-fixed "http://127.0.0.1:${p2:-1}/z?t=r2-fixed"
chk_eq "r2 status" 200 "$R_STATUS"
chk_eq "r2 URI at nginx" "/r2b/z?t=r2-fixed" "$(ngx_field "$(ngx_log 't=r2-fixed')" uri)"
t_done "reload: a good file after a failed reload is applied"

# --- a removed mapping: its listener goes away
off=$(mtlsd_log_offset reload)
rm -f "$TMP/inst/reload/mappings.d/r2.yaml"
kill -HUP "$pid"
mtlsd_wait_log reload "$off" 'reload: generation [0-9]+ applied' 15 ||
	chk_fail "no 'reload: generation N applied' within 15 s"
_r2_closed() { ! $NETTOOL listening "${p2:-1}"; }
wait_until 5 _r2_closed || chk_fail "r2's port ${p2:-?} still accepts connections"
req r1-after-rm "http://127.0.0.1:$p1/x?t=r1-after-rm"
chk_eq "r1 status" 200 "$R_STATUS"
t_done "reload: a removed mapping's listener is closed, the others keep serving"

# --- no SIGHUP: mtlsd watches its files (inotify)
off=$(mtlsd_log_offset reload)
mtlsd_mapping_file reload r1.yaml <<EOF
mappings:
  - name: r1
    url: https://localhost:$NG_PORT/v3/
    listen: 127.0.0.1:0
    certificate: client-pem
    $trust
EOF
mtlsd_wait_log reload "$off" 'reload: generation [0-9]+ applied' 10 ||
	chk_fail "no 'reload: generation N applied' within 10 s of the edit"
p1=$(mtlsd_port reload r1)
req r1-inotify "http://127.0.0.1:$p1/x?t=r1-inotify"
chk_eq "status" 200 "$R_STATUS"
chk_eq "URI at nginx" "/v3/x?t=r1-inotify" "$(ngx_field "$(ngx_log 't=r1-inotify')" uri)"
t_done "reload: a changed mapping file is applied without SIGHUP (inotify)"

mtlsd_stop reload
