# shellcheck shell=bash
# The systemd unit built next to the daemon is sandboxed: systemd-analyze
# rates its exposure 2.0 or lower ("OK"), and it reloads by SIGHUP.

unit=$(dirname "$MTLSD_BIN")/systemd/mtlsd.service
if [ ! -f "$unit" ] && [ -f "$(dirname "$MTLSD_BIN")/Makefile" ]; then
	make -s -C "$(dirname "$MTLSD_BIN")" systemd/mtlsd.service >/dev/null 2>&1
fi
if ! command -v systemd-analyze >/dev/null; then
	echo "# skip - systemd unit checks: systemd-analyze is not installed"
elif [ ! -f "$unit" ]; then
	t_fail "systemd: unit file built" "no $unit"
else
	out=$(systemd-analyze security --offline=true "$unit" 2>&1)
	level=$(printf '%s\n' "$out" | sed -n 's/.*Overall exposure level for mtlsd.service: \([0-9.]*\).*/\1/p')
	chk_match "exposure level printed" '^[0-9]+\.[0-9]+$' "$level"
	chk_le "exposure level (systemd-analyze security)" 2.0 "${level:-99}"
	t_done "systemd: systemd-analyze security rates the unit ${level:-?} (≤ 2.0, OK)"
	chk_match "ExecReload sends SIGHUP" '^ExecReload=/bin/kill -HUP \$MAINPID' "$(grep '^ExecReload' "$unit")"
	chk_match "runs as user mtlsd" '^User=mtlsd' "$(grep '^User=' "$unit")"
	chk_match "checks the configuration before starting" '^ExecStartPre=.*mtlsd -t' "$(grep '^ExecStartPre' "$unit")"
	t_done "systemd: unit reloads with SIGHUP, runs as mtlsd, checks with -t first"
fi
