# shellcheck shell=bash
# A certificate directory that goes away is one mapping's problem, not the
# whole reload's: the mapping keeps presenting the certificate it had, the
# other changes apply. A disabled mapping may name a certificate that does
# not exist (yet), even at start.

trust="trust: {ca_file: $PKI/trust/server-root.pem}"
d=$TMP/inst/mdir
mtlsd_write_config mdir
mkdir -p "$d/certs.d"
cp -a "$PKI/certs.d/client-pem" "$d/certs.d/own"
sed -i "s|^certs_dir: .*|certs_dir: $d/certs.d|" "$d/mtlsd.yaml"
mtlsd_mapping_file mdir m.yaml <<EOF
mappings:
  - name: keeps
    url: https://localhost:$NG_PORT/
    listen: 127.0.0.1:0
    certificate: own
    $trust
  - name: later
    url: https://localhost:$NG_PORT/later/
    listen: 127.0.0.1:0
    certificate: not-there-yet
    enabled: false
    $trust
EOF
mtlsd_start mdir || return 0
pid=$(mtlsd_pid mdir)
p=$(mtlsd_port mdir keeps)
req md-1 "http://127.0.0.1:$p/x?t=md-1"
chk_eq "status" 200 "$R_STATUS"
chk_eq "serial at nginx" "$SERIAL_PEM" "$(ngx_field "$(ngx_log 't=md-1')" serial)"
pl=$(mtlsd_port mdir later)
req md-later "http://127.0.0.1:${pl:-1}/x"
chk_eq "disabled mapping status" 503 "$R_STATUS"
chk_eq "disabled mapping error" mapping_disabled "$(hdr X-Mtlsd-Error)"
t_done "missing dir: a disabled mapping naming a missing certificate does not stop the start"

# the directory goes away, and another mapping is added in the same reload
off=$(mtlsd_log_offset mdir)
mv "$d/certs.d/own" "$d/own.moved"
mtlsd_mapping_file mdir n.yaml <<EOF
mappings:
  - name: added
    url: https://localhost:$NG_PORT/added/
    listen: 127.0.0.1:0
    certificate: client-p12
    $trust
EOF
cp -a "$PKI/certs.d/client-p12" "$d/certs.d/client-p12"
kill -HUP "$pid"
mtlsd_wait_log mdir "$off" 'reload: generation [0-9]+ applied' 15 ||
	chk_fail "no 'reload: generation N applied' within 15 s"
since=$(mtlsd_log_since mdir "$off")
chk_nomatch "log" 'reload failed' "$since"
chk_match "log" "cannot read certificate directory: No such file or directory" "$since"
chk_match "log" "mapping 'keeps': certificate 'own' has no usable files any more; keeping serial" "$since"
req md-2 "http://127.0.0.1:$p/x?t=md-2"
chk_eq "status after the directory went away" 200 "$R_STATUS"
chk_eq "serial at nginx" "$SERIAL_PEM" "$(ngx_field "$(ngx_log 't=md-2')" serial)"
pa=$(mtlsd_port mdir added)
req md-3 "http://127.0.0.1:${pa:-1}/x?t=md-3"
chk_eq "the mapping added in the same reload" 200 "$R_STATUS"
t_done "missing dir: a vanished certificate directory keeps its mapping's certificate; the rest of the reload applies"

mtlsd_stop mdir
