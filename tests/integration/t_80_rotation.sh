# shellcheck shell=bash
# Certificate rotation by dropping files into certs.d/NAME: the newer
# certificate is presented, and pooled connections that presented the old
# one are not used any more.

trust="trust: {ca_file: $PKI/trust/server-root.pem}"
mtlsd_write_config rotate
d=$TMP/inst/rotate
mkdir -p "$d/certs.d"
cp -a "$PKI/certs.d/client-pem" "$d/certs.d/"
sed -i "s|^certs_dir: .*|certs_dir: certs.d|" "$d/mtlsd.yaml"
mtlsd_mapping_file rotate rot.yaml <<EOF
mappings:
  - name: rot
    url: https://localhost:$NG_PORT/
    listen: 127.0.0.1:0
    certificate: client-pem
    $trust
EOF
mtlsd_start rotate || return 0
port=$(mtlsd_port rotate rot)

req rot-before "http://127.0.0.1:$port/?t=rot-before"
chk_eq "status" 200 "$R_STATUS"
chk_eq "serial" "$SERIAL_PEM" "$(hdr X-Client-Serial)"
t_done "rotation: the original certificate is presented first"

# a newer certificate for the same name, from the same client root; its
# not-before (now) is later than the original's (PKI creation)
new_serial=$(client_cert_drop "$TMP/rotate-work" "$d/certs.d/client-pem" client-pem-rotated)

# the observable signal: real requests, until one shows the new serial
_rot_new_seen() {
	ROT_N=$((ROT_N + 1))
	req "rot-poll-$ROT_N" "http://127.0.0.1:$port/?t=rot-poll-$ROT_N-"
	[ "$(hdr X-Client-Serial)" = "$new_serial" ]
}
ROT_N=0
name="rotation: a newer certificate dropped into certs.d is presented (no SIGHUP)"
if wait_until 15 _rot_new_seen; then
	t_pass "$name"
else
	kill -HUP "$(mtlsd_pid rotate)" 2>/dev/null
	if wait_until 10 _rot_new_seen; then
		t_fail "$name" "presented only after SIGHUP (the new files were not noticed within 15 s)"
	else
		t_fail "$name" "still serial $(hdr X-Client-Serial), not $new_serial, 15 s after the drop and 10 s after SIGHUP"
	fi
fi

old_seen=0
for i in 1 2 3 4 5 6; do
	req "rot-after-$i" "http://127.0.0.1:$port/?t=rot-after-$i-"
	[ "$(hdr X-Client-Serial)" = "$new_serial" ] || old_seen=$((old_seen + 1))
done
chk_eq "later requests presenting another certificate" 0 "$old_seen"
t_done "rotation: after the switch no request goes out with the old certificate (pool follows)"

mtlsd_stop rotate
