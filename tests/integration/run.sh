#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# mtlsd integration tests against real peers (see lib.sh).
#
#   MTLSD_BIN=build/mtlsd bash tests/integration/run.sh [t_NAME ...]
#
# Runs every tests/integration/t_*.sh in name order (or the ones named),
# prints "ok - NAME" / "not ok - NAME: reason" per test and ends with
# "N passed, M failed"; exits 1 when anything failed.
set -uo pipefail

. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

it_init

if ! pki_make; then
	t_fail "setup: PKI (contrib/mkpki.sh)" "see output above"
	it_finish
fi
if ! nginx_start; then
	t_fail "setup: nginx upstream" "see output above"
	it_finish
fi
echo "# nginx: main=$NG_PORT wrong-name=$NG_WRONG untrusted-ca=$NG_UNTRUST closed=$NG_CLOSED"

if [ $# -gt 0 ]; then
	files=()
	for a in "$@"; do
		a=${a%.sh}
		files+=("$IT_DIR/${a#"$IT_DIR/"}.sh")
	done
else
	files=("$IT_DIR"/t_*.sh)
fi
for f in "${files[@]}"; do
	[ -f "$f" ] || { t_fail "$(basename "$f")" "no such test file"; continue; }
	echo "# --- $(basename "$f" .sh)"
	CUR_INST="" CHK_OUT=""
	# shellcheck disable=SC1090
	. "$f"
done

# instances a test file left running are stopped (and their exit checked) here
for d in "$TMP"/inst/*/; do
	[ -f "$d/pid" ] && mtlsd_stop "$(basename "$d")"
done
it_finish
