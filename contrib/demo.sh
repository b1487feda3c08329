#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# See mtlsd work in one command (Debian 12, as root):
#
#   sudo bash contrib/demo.sh          install deps, build, start the demo
#   sudo bash contrib/demo.sh stop     stop what the demo started
#
# It builds mtlsd in build/, makes a throw-away PKI in demo-run/pki
# (contrib/mkpki.sh), copies the shipped etc/ configuration to demo-run/,
# starts nginx on https://localhost:8443 demanding a client certificate
# (ssl_verify_client on), starts mtlsd with the shipped "demo" mapping
# (127.0.0.1:9001 -> https://localhost:8443/, certificate "demo") and
# sends a plain-HTTP request through it with curl. Safe to rerun: it stops
# the previous demo first and keeps the PKI it already made.
set -euo pipefail

cd "$(dirname "$0")/.."
SRC=$(pwd)
RUN=$SRC/demo-run
NGX=$RUN/nginx
UPSTREAM_PORT=8443
DEMO_PORT=9001

say() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }
die() { echo "demo: $*" >&2; exit 1; }

# pid_alive PIDFILE NAME: the pid in PIDFILE runs a program called NAME
pid_alive() {
	local pid
	pid=$(cat "$1" 2>/dev/null) || return 1
	[ -n "$pid" ] && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$2" ]
}

stop_demo() {
	local pid
	if pid_alive "$RUN/mtlsd.pid" mtlsd; then
		pid=$(cat "$RUN/mtlsd.pid")
		echo "stopping mtlsd (pid $pid)"
		kill -TERM "$pid"
		for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
	fi
	rm -f "$RUN/mtlsd.pid"
	if pid_alive "$NGX/nginx.pid" nginx; then
		echo "stopping nginx (pid $(cat "$NGX/nginx.pid"))"
		nginx -p "$NGX/" -c "$NGX/nginx.conf" -e "$NGX/error.log" -s quit || true
		for _ in $(seq 1 100); do pid_alive "$NGX/nginx.pid" nginx || break; sleep 0.1; done
	fi
}

if [ "${1:-}" = stop ]; then
	stop_demo
	exit 0
fi
[ $# -eq 0 ] || die "usage: demo.sh [stop]"

# --------------------------------------------------------------- packages
PKGS=(build-essential autoconf automake libtool pkg-config libevent-dev
	libwolfssl-dev libyaml-dev libcurl4-openssl-dev libhttp-parser-dev
	libsystemd-dev nginx-light curl openssl)
missing=()
for p in "${PKGS[@]}"; do
	[ "$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null)" = installed ] || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
	say "installing ${missing[*]}"
	[ "$(id -u)" = 0 ] || die "run as root (sudo bash contrib/demo.sh) to install packages"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update
	apt-get install -y --no-install-recommends "${missing[@]}"
fi

# ------------------------------------------------------------------ build
say "building mtlsd in build/"
if [ ! -x configure ] || [ configure.ac -nt configure ]; then
	autoreconf -fi
fi
mkdir -p build
if [ ! -f build/Makefile ]; then
	(cd build && ../configure -q)
fi
make -C build -j"$(nproc)" mtlsd >/dev/null
MTLSD=$SRC/build/mtlsd

stop_demo

# -------------------------------------------------- PKI and configuration
say "configuration in demo-run/"
mkdir -p "$RUN"
chmod 0755 "$RUN"
if [ ! -f "$RUN/pki/info/client-pem.serial" ]; then
	rm -rf "$RUN/pki"
	bash contrib/mkpki.sh "$RUN/pki"
fi
[ -s etc/mtlsd.yaml ] || die "etc/mtlsd.yaml is missing or empty"
[ -f etc/mappings.d/demo.yaml ] || die "etc/mappings.d/demo.yaml is missing"
rm -rf "$RUN/mappings.d" "$RUN/certs.d" "$RUN/trust"
cp -a etc/. "$RUN/"
# the shipped file names system paths; the demo keeps everything in demo-run/
sed -i -E \
	-e 's|^(mappings_dir:).*|\1 mappings.d|' \
	-e 's|^(certs_dir:).*|\1 certs.d|' \
	-e "s|^(state_dir:).*|\\1 $RUN/state|" \
	"$RUN/mtlsd.yaml"
grep -Eq '^state_dir:' "$RUN/mtlsd.yaml" || printf '\n# demo: state under demo-run/\nstate_dir: %s\n' "$RUN/state" >>"$RUN/mtlsd.yaml"
mkdir -p "$RUN/certs.d/demo" "$RUN/trust" "$RUN/state"
chmod 0700 "$RUN/state"
cp -p "$RUN/pki/certs.d/client-pem/client.crt" "$RUN/pki/certs.d/client-pem/client.key" "$RUN/certs.d/demo/"
chmod 0600 "$RUN/certs.d/demo/client.key"
cp "$RUN/pki/trust/server-root.pem" "$RUN/trust/demo-server-root.pem"
# an admin socket under /run/mtlsd needs its directory
if grep -Eq 'unix:/run/mtlsd/' "$RUN/mtlsd.yaml"; then mkdir -p /run/mtlsd; fi
echo "mtlsd config:   $RUN/mtlsd.yaml"
echo "demo mapping:   $RUN/mappings.d/demo.yaml"
echo "client cert:    $RUN/certs.d/demo/ (serial $(cat "$RUN/pki/info/client-pem.serial"))"

if ! "$MTLSD" -t -c "$RUN/mtlsd.yaml"; then
	die "mtlsd -t rejected the demo configuration (see above)"
fi

# ------------------------------------------------------------------ nginx
say "starting nginx on https://localhost:$UPSTREAM_PORT (client certificate required)"
mkdir -p "$NGX"/{body,proxy,fastcgi,uwsgi,scgi}
cat >"$NGX/nginx.conf" <<EOF
worker_processes 1;
pid $NGX/nginx.pid;
error_log $NGX/error.log;
events { worker_connections 256; }
http {
    access_log $NGX/access.log;
    client_body_temp_path $NGX/body;
    proxy_temp_path $NGX/proxy;
    fastcgi_temp_path $NGX/fastcgi;
    uwsgi_temp_path $NGX/uwsgi;
    scgi_temp_path $NGX/scgi;
    default_type text/plain;
    server {
        listen 127.0.0.1:$UPSTREAM_PORT ssl;
        server_name localhost;
        ssl_certificate $RUN/pki/server/localhost.crt;
        ssl_certificate_key $RUN/pki/server/localhost.key;
        ssl_verify_client on;
        ssl_client_certificate $RUN/pki/trust/client-ca-bundle.pem;
        ssl_verify_depth 3;
        location / {
            return 200 "hello from nginx on localhost:$UPSTREAM_PORT: you presented client certificate subject=\"\$ssl_client_s_dn\" serial=\$ssl_client_serial (verify: \$ssl_client_verify)\n";
        }
    }
}
EOF
nginx -t -q -p "$NGX/" -c "$NGX/nginx.conf" -e "$NGX/error.log"
nginx -p "$NGX/" -c "$NGX/nginx.conf" -e "$NGX/error.log" ||
	die "nginx did not start (is port $UPSTREAM_PORT taken?): $(tail -n 3 "$NGX/error.log")"

echo "without a client certificate nginx says:"
curl -s --cacert "$RUN/pki/trust/server-root.pem" "https://localhost:$UPSTREAM_PORT/" |
	grep -o '<title>.*</title>' || true

# ------------------------------------------------------------------ mtlsd
say "starting mtlsd"
: >"$RUN/mtlsd.log"
setsid "$MTLSD" -c "$RUN/mtlsd.yaml" >>"$RUN/mtlsd.log" 2>&1 </dev/null &
echo $! >"$RUN/mtlsd.pid"
ready=0
for _ in $(seq 1 200); do # up to 20 s for "ready: generation 1"
	if grep -q 'ready: generation' "$RUN/mtlsd.log"; then ready=1; break; fi
	pid_alive "$RUN/mtlsd.pid" mtlsd || break
	sleep 0.1
done
sed 's/^/  | /' "$RUN/mtlsd.log"
[ "$ready" = 1 ] || die "mtlsd did not get ready (log above)"

say "curl -sv http://127.0.0.1:$DEMO_PORT/   (plain HTTP in, mutual TLS out)"
curl -sv --max-time 10 "http://127.0.0.1:$DEMO_PORT/" || die "the request through mtlsd failed"

cat <<EOF

The request above went to mtlsd as plain HTTP on 127.0.0.1:$DEMO_PORT; mtlsd
forwarded it to https://localhost:$UPSTREAM_PORT presenting the "demo" client
certificate, and nginx answered with what it verified.

  logs:      $RUN/mtlsd.log, $NGX/error.log, $NGX/access.log
  reload:    edit $RUN/mappings.d/demo.yaml, then kill -HUP \$(cat $RUN/mtlsd.pid)
  stop:      sudo bash contrib/demo.sh stop
EOF
