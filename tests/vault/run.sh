#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# Runs vaultd's own test suite (tests/vault/test_vaultd.py) with a time bound.
# Prints the suite's closing "N passed, M failed" line; exits non-zero on any
# failure or on timeout. Needs python3 (stdlib only) and openssl.
#
# Environment: VAULTD_TEST_TIMEOUT (seconds, default 300).
set -uo pipefail
cd "$(dirname "$0")" || exit 2
command -v python3 >/dev/null || { echo "0 passed, 1 failed (python3 missing)"; exit 1; }
command -v openssl >/dev/null || { echo "0 passed, 1 failed (openssl missing)"; exit 1; }
timeout --kill-after=10 "${VAULTD_TEST_TIMEOUT:-300}" python3 -u test_vaultd.py
rc=$?
if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
    echo "vaultd tests timed out"
    echo "0 passed, 1 failed"
fi
exit "$rc"
