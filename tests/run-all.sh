#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# The whole test suite, from a fresh Debian 12 machine:
#
#   sudo bash tests/run-all.sh
#
#  1. installs the build and test dependencies (skipped when present);
#  2. autoreconf, out-of-tree build in build/ with --enable-werror,
#     `make check` (cmocka unit tests), the integration suite;
#  3. with the build in build/: the integration tests that have no timing
#     windows again with every mtlsd under valgrind memcheck (each daemon's
#     log must show 0 errors and 0 bytes definitely lost), and each libFuzzer
#     target (tests/fuzz) for FUZZ_SECONDS;
#  4. the same as 2. in build-asan/ with --enable-asan --enable-ubsan and
#     3 workers in every instance (IT_WORKERS=3; a sanitizer report in any
#     unit test or daemon log fails);
#  5. build-tsan/ with --enable-tsan: unit tests and the integration tests
#     that move work between threads, with 3 workers.
# The integration suite includes 10,000 idle connections (t_96) and a soak
# (t_97: 200,000 requests under certificate rotation and reloads; 20,000 in
# the sanitizer build).
# Ends with "N passed, M failed" summing every unit test, integration test,
# valgrind log, fuzz target and build step; exits 1 on any failure.
# Logs: build-logs/ (valgrind's in build-logs/valgrind/, the fuzzers' and
# their corpora in build-fuzz/).
#
# Environment: SKIP_ASAN=1, SKIP_TSAN=1, SKIP_VALGRIND=1,
# SKIP_FUZZ=1, FUZZ_SECONDS (per target, 60), SOAK_REQUESTS (t_97's count,
# 200000 plain, 20000 ASan), RUN_ALL_JOBS (make -j, 2).
set -uo pipefail

cd "$(dirname "$0")/.." || exit 2
SRC=$(pwd)
LOGS=$SRC/build-logs
JOBS=${RUN_ALL_JOBS:-2}
START=$(date +%s)
PASS=0
FAIL=0
FAILED=()

mkdir -p "$LOGS"

ok() { PASS=$((PASS + 1)); echo "ok - $1"; }
not_ok() {
	FAIL=$((FAIL + 1))
	FAILED+=("$1")
	echo "not ok - $1${2:+: $2}"
}
elapsed() { echo "$(($(date +%s) - START))s"; }

finish() {
	echo "# total time $(elapsed)"
	[ "$FAIL" -eq 0 ] || printf '# failed: %s\n' "${FAILED[@]}"
	echo "$PASS passed, $FAIL failed"
	[ "$FAIL" -eq 0 ]
	exit $?
}

# run_step NAME LOG TIMEOUT CMD...: one build step, counted as a check
run_step() {
	local name=$1 log=$2 limit=$3
	shift 3
	if timeout -k 10 "$limit" "$@" >"$log" 2>&1; then
		ok "$name"
		return 0
	fi
	not_ok "$name" "see $log"
	tail -n 30 "$log" | sed 's/^/#   | /'
	return 1
}

# ------------------------------------------------------------ dependencies

PKGS=(build-essential autoconf automake libtool pkg-config libevent-dev
	libwolfssl-dev libyaml-dev libcurl4-openssl-dev libhttp-parser-dev
	libcmocka-dev libsystemd-dev nginx-light libnginx-mod-http-echo curl
	openssl python3 valgrind clang libclang-rt-14-dev tcpdump iproute2)

install_deps() {
	local p missing=()
	for p in "${PKGS[@]}"; do
		[ "$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null)" = installed ] || missing+=("$p")
	done
	if [ ${#missing[@]} -eq 0 ]; then
		echo "# dependencies: all installed"
		return 0
	fi
	echo "# dependencies: installing ${missing[*]}"
	if [ "$(id -u)" != 0 ]; then
		echo "# run as root (sudo bash tests/run-all.sh) to install: ${missing[*]}" >&2
		return 1
	fi
	export DEBIAN_FRONTEND=noninteractive
	apt-get update && apt-get install -y --no-install-recommends "${missing[@]}"
}

if install_deps >"$LOGS/apt.log" 2>&1; then
	ok "setup: dependencies installed"
	grep '^# dependencies' "$LOGS/apt.log"
else
	not_ok "setup: dependencies installed" "see $LOGS/apt.log"
	tail -n 20 "$LOGS/apt.log" | sed 's/^/#   | /'
	finish
fi

if [ -f "$SRC/config.status" ]; then
	not_ok "setup: source tree is configured in-tree" "run 'make distclean' in $SRC first (out-of-tree builds need a clean source tree)"
	finish
fi
run_step "setup: autoreconf -fi" "$LOGS/autoreconf.log" 300 autoreconf -fi "$SRC" || finish

# --------------------------------------------------------------- helpers

# unit_counts BUILDDIR LABEL: add the cmocka counts of every unit test log.
# cmocka prints "[  PASSED  ] N test(s)." and "[  FAILED  ] N test(s)";
# a program that died before printing them counts as one failure.
unit_counts() {
	local b=$1 label=$2 trs log name p f any=0
	for trs in "$b"/tests/unit/*.trs; do
		[ -f "$trs" ] || continue
		any=1
		log=${trs%.trs}.log
		name=$(basename "${trs%.trs}")
		p=$(sed -n 's/.*\[  PASSED  \] \([0-9][0-9]*\) test.*/\1/p' "$log" | tail -n 1)
		f=$(sed -n 's/.*\[  FAILED  \] \([0-9][0-9]*\) test.*/\1/p' "$log" | tail -n 1)
		PASS=$((PASS + ${p:-0}))
		FAIL=$((FAIL + ${f:-0}))
		if [ -n "$f" ] && [ "$f" -gt 0 ]; then
			FAILED+=("$label $name: $f cmocka test(s) (see $log)")
			echo "not ok - $label $name: ${p:-0} passed, $f failed"
			grep -E '^\[  (FAILED|ERROR)  \]|^\[  FAILED  \] [a-z_]|error:|ERROR: |runtime error:' "$log" | head -n 15 | sed 's/^/#   | /'
		elif grep -Eq '^:test-result: (FAIL|ERROR)' "$trs"; then
			not_ok "$label $name" "exited abnormally (see $log)"
			tail -n 15 "$log" | sed 's/^/#   | /'
		elif [ -z "$p" ]; then
			not_ok "$label $name" "no cmocka summary (see $log)"
		else
			echo "ok - $label $name: $p cmocka tests"
		fi
	done
	[ "$any" = 1 ] || not_ok "$label: unit tests" "no test logs in $b/tests/unit"
}

# integration BUILDDIR LABEL [ENV...] [-- TEST...]: run the suite (or the
# tests named), add its counts
integration() {
	local b=$1 label=$2 log p f envs=() tests=()
	shift 2
	while [ $# -gt 0 ] && [ "$1" != -- ]; do envs+=("$1"); shift; done
	[ $# -gt 0 ] && shift && tests=("$@")
	log=$LOGS/$label-integration.log
	echo "# $label: integration tests${tests[*]:+ ${tests[*]}} (log: $log)"
	env "${envs[@]}" MTLSD_BIN="$b/mtlsd" timeout -k 20 3000 bash "$SRC/tests/integration/run.sh" "${tests[@]}" 2>&1 |
		tee "$log" | grep -E '^(not ok|ok) - |^# watchdog' | sed "s/^\\(not ok\\|ok\\) - /\\1 - $label: /"
	read -r p f < <(sed -n 's/^\([0-9][0-9]*\) passed, \([0-9][0-9]*\) failed$/\1 \2/p' "$log" | tail -n 1)
	if [ -z "${p:-}" ]; then
		not_ok "$label: integration suite" "no summary line (see $log)"
		tail -n 30 "$log" | sed 's/^/#   | /'
		return
	fi
	PASS=$((PASS + p))
	FAIL=$((FAIL + f))
	[ "$f" -eq 0 ] || FAILED+=("$label: $f integration test(s) (see $log)")
}

# build BUILDDIR LABEL CONFIGURE-ARGS...: configure, make, make check,
# integration
build() {
	local b=$1 label=$2
	shift 2
	rm -rf "$b"
	mkdir -p "$b"
	echo "# $label: $b ($*), $(elapsed)"
	run_step "$label: configure $*" "$LOGS/$label-configure.log" 300 env -C "$b" "$SRC/configure" "$@" || return
	run_step "$label: make" "$LOGS/$label-make.log" 1200 make -C "$b" -j"$JOBS" || return
	# unit tests: counted from their logs whether or not make check passed
	timeout -k 10 1200 make -C "$b" -j"$JOBS" check >"$LOGS/$label-check.log" 2>&1
	if ! ls "$b"/tests/unit/*.trs >/dev/null 2>&1; then
		not_ok "$label: unit tests build and run" "see $LOGS/$label-check.log"
		tail -n 30 "$LOGS/$label-check.log" | sed 's/^/#   | /'
	else
		unit_counts "$b" "$label unit"
	fi
	integration "$b" "$label" "${INTEGRATION_ENV[@]}" -- "${INTEGRATION_TESTS[@]}"
}

# suite NAME LOG CMD...: a test program ending with "N passed, M failed"
suite() {
	local name=$1 log=$2 p f
	shift 2
	timeout -k 10 "${SUITE_LIMIT:-600}" "$@" >"$log" 2>&1
	read -r p f < <(sed -n 's/^\([0-9][0-9]*\) passed, \([0-9][0-9]*\) failed.*$/\1 \2/p' "$log" | tail -n 1)
	if [ -z "${p:-}" ]; then
		not_ok "$name" "no summary line (see $log)"
		tail -n 30 "$log" | sed 's/^/#   | /'
		return
	fi
	PASS=$((PASS + p))
	FAIL=$((FAIL + f))
	if [ "$f" -eq 0 ]; then
		echo "ok - $name: $p tests"
	else
		FAILED+=("$name: $f test(s) (see $log)")
		echo "not ok - $name: $p passed, $f failed"
	fi
}

# ------------------------------------------------------------- the builds

# the Vault test server (tests/vault) against vault-api.md's examples
suite "vault test server" "$LOGS/vaultd.log" bash "$SRC/tests/vault/run.sh"

# watchdogs: each integration suite takes 11-15 min on a 2-vCPU VM (t_96
# and t_97, 10,000 idle connections and the soak, 2-3 of them); room is
# left for a slower machine
INTEGRATION_ENV=(IT_TIMEOUT=1500)
INTEGRATION_TESTS=()
build "$SRC/build" build --enable-werror

# the release tarball: builds out of tree with -Werror, its unit tests pass,
# install and uninstall leave nothing behind
if [ -f "$SRC/build/Makefile" ]; then
	run_step "build: make distcheck" "$LOGS/distcheck.log" 1800 \
		make -C "$SRC/build" -j"$JOBS" distcheck DISTCHECK_CONFIGURE_FLAGS=--enable-werror
fi

# ------------------------------------------------------ valgrind memcheck

# The integration tests run under valgrind: those whose checks hold however
# slow the daemon is (they wait for signals, bounded generously, and assert
# no upper bound on a duration that valgrind's 20-50x slowdown could break).
# Left out: t_00/t_05 (no daemon), t_16_out_of_fds (valgrind keeps
# descriptors of its own under the daemon's limit), t_40_timeouts (504 and
# client_header cut-offs within a few seconds), t_70_drain (races a 3 s
# upstream response against the drain), t_85_rotation_policy (certificates
# whose not-before is seconds away), t_88_rotation_loop (new serial within 2 s), t_95_hostile
# (slowloris cut off between 0.9 and 3 s; 2000 connections), t_96_idle
# (10,000 connections) and t_97_soak (200,000 requests): the last three are
# covered by the plain and ASan runs. Kept: forwarding, bodies (50 MB both
# ways), robustness (parallel, aborts), refusals and upstream faults (with
# their descriptor checks; t_45's stall bounds are 30 s under a wrapper),
# the TLS suites, 4 workers (t_34: its drain holds uploads half-sent rather
# than racing a timer; ~2.5 min under valgrind), -t, reloads, rotation and
# the admin endpoint.
VALGRIND_TESTS=(t_10_forward t_15_robustness t_20_bodies t_30_refusals t_32_tls_suites
	t_34_workers t_45_faulty_upstream t_50_check t_60_reload t_80_rotation t_90_admin)

# valgrind_logs DIR LABEL: one check per valgrind log (one per mtlsd run,
# daemon or -t): "ERROR SUMMARY: 0 errors" and, when there is a leak
# summary, "definitely lost: 0 bytes". A log without an error summary is a
# run that valgrind did not finish (killed, or still running).
valgrind_logs() {
	local dir=$1 label=$2 vlog cmd errs lost n=0
	for vlog in "$dir"/vg.*.log; do
		[ -f "$vlog" ] || continue
		n=$((n + 1))
		cmd=$(sed -n 's/^==[0-9]*== Command: //p' "$vlog" | head -n 1 |
			sed "s|$SRC/||g; s|/tmp/mtlsd-it\.[^/]*/||")
		errs=$(sed -n 's/^==[0-9]*== ERROR SUMMARY: \([0-9][0-9,]*\) errors.*/\1/p' "$vlog" | tail -n 1)
		lost=$(sed -n 's/^==[0-9]*==    definitely lost: \([0-9,]*\) bytes.*/\1/p' "$vlog" | tail -n 1)
		if [ -z "$errs" ]; then
			not_ok "$label: $cmd" "no ERROR SUMMARY in $vlog (valgrind did not finish)"
		elif [ "$errs" != 0 ] || [ "${lost:-0}" != 0 ]; then
			not_ok "$label: $cmd" "$errs errors, ${lost:-0} bytes definitely lost (see $vlog)"
			grep -E '^==[0-9]+== (Invalid|Conditional|Use of|Syscall param|Mismatched|Source and|[0-9,]+ bytes in [0-9,]+ blocks are definitely)|^==[0-9]+==    (at|by) ' \
				"$vlog" | head -n 20 | sed 's/^/#   | /'
		else
			ok "$label: $cmd: 0 errors, ${lost:-0} bytes definitely lost"
		fi
	done
	[ "$n" -gt 0 ] || not_ok "$label: valgrind logs" "none in $dir"
}

if [ "${SKIP_VALGRIND:-0}" != 1 ] && [ -x "$SRC/build/mtlsd" ]; then
	vg_dir=$LOGS/valgrind
	rm -rf "$vg_dir"
	mkdir -p "$vg_dir"
	echo "# build-valgrind: ${VALGRIND_TESTS[*]} under valgrind memcheck, $(elapsed)"
	# --error-exitcode: a daemon with an error or a definite leak also exits
	# non-zero, which fails its "SIGTERM exits 0" test; the logs are checked
	# on their own below. IT_TIMEOUT: the whole subset, slowdown included.
	integration "$SRC/build" build-valgrind IT_TIMEOUT=1500 \
		MTLSD_WRAPPER="valgrind --leak-check=full --errors-for-leak-kinds=definite --show-leak-kinds=definite --error-exitcode=99 --num-callers=30 --log-file=$vg_dir/vg.%p.log" \
		-- "${VALGRIND_TESTS[@]}"
	valgrind_logs "$vg_dir" "build-valgrind memcheck"
fi

# --------------------------------------------------------------- fuzzing

# each libFuzzer target for FUZZ_SECONDS (a crash, leak or timeout fails
# it); one test per target. The grown corpora stay in build-fuzz/.
if [ "${SKIP_FUZZ:-0}" != 1 ]; then
	FUZZ_SECONDS=${FUZZ_SECONDS:-60}
	echo "# fuzz: each target for ${FUZZ_SECONDS}s, $(elapsed)"
	rm -rf "$SRC/build-fuzz"
	SUITE_LIMIT=$((FUZZ_SECONDS * 3 + 600)) suite "fuzz" "$LOGS/fuzz.log" \
		env FUZZ_BUILD="$SRC/build-fuzz" bash "$SRC/tests/fuzz/run.sh" "$FUZZ_SECONDS"
	grep -E '^(ok|not ok) - ' "$LOGS/fuzz.log" | sed 's/^/#   /'
fi

if [ "${SKIP_ASAN:-0}" != 1 ]; then
	export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
	export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
	# LeakSanitizer needs ptrace-like access some containers deny; probe it
	# once rather than failing every daemon exit on "LeakSanitizer has
	# encountered a fatal error"
	probe=$(mktemp -d)
	printf 'int main(void) { return 0; }\n' >"$probe/p.c"
	if cc -fsanitize=address "$probe/p.c" -o "$probe/p" 2>/dev/null &&
		! "$probe/p" >/dev/null 2>&1; then
		echo "# LeakSanitizer unusable here: running with detect_leaks=0"
		export ASAN_OPTIONS=detect_leaks=0:abort_on_error=1
	fi
	rm -rf "$probe"
	# the whole suite again, with 3 event-loop threads in every instance
	# that does not set workers itself (the plain run above has one)
	INTEGRATION_ENV=(IT_TIMEOUT=2700 IT_SANITIZER=1 IT_WORKERS=3)
	build "$SRC/build-asan" build-asan --enable-asan --enable-ubsan
	unset ASAN_OPTIONS UBSAN_OPTIONS
fi

# ThreadSanitizer: the tests that move work between threads (reloads,
# rotation, drain, Vault, the admin endpoint, the workers test) with 3
# workers; a data race fails the daemon's exit status and its log check
if [ "${SKIP_TSAN:-0}" != 1 ]; then
	export TSAN_OPTIONS=halt_on_error=0:second_deadlock_stack=1
	INTEGRATION_ENV=(IT_TIMEOUT=1500 IT_SANITIZER=1 IT_WORKERS=3)
	INTEGRATION_TESTS=(t_10_forward t_30_refusals t_34_workers t_60_reload t_70_drain
		t_80_rotation t_90_admin t_100_vault_pki)
	build "$SRC/build-tsan" build-tsan --enable-tsan
	unset TSAN_OPTIONS
fi

finish
