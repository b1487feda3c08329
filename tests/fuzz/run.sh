#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# Build the libFuzzer targets and run each for a bounded time.
#
#   bash tests/fuzz/run.sh [SECONDS] [TARGET ...]
#
# TARGET is config, http or cert (default: all three); SECONDS per target
# (default 60). Needs clang with libFuzzer (Debian: clang, libclang-rt-14-dev).
# The targets are compiled with -fsanitize=fuzzer,address,undefined straight
# from the src/*.c files they exercise; autoconf.h comes from running
# configure in the build directory.
#
# Environment:
#   FUZZ_BUILD   build directory (default: a temp dir, removed afterwards)
#   FUZZ_KEEP=1  keep FUZZ_BUILD and the grown corpora
#   FUZZ_JOBS    parallel fuzzing jobs per target (default 1)
#   CC           compiler (default clang)
#
# Each run starts from a copy of the seed corpus in tests/fuzz/corpus/NAME
# (the seeds are never modified), prints "ok - fuzz NAME: ..." or
# "not ok - fuzz NAME: ..." with the crash file and the first lines of the
# report, and the whole run ends with "N passed, M failed"; exits 1 when a
# target crashed, leaked, timed out or did not build.
set -uo pipefail

FUZZ_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SRC=$(cd "$FUZZ_DIR/../.." && pwd)
SECONDS_EACH=${1:-60}
shift 2>/dev/null || true
TARGETS=("$@")
[ ${#TARGETS[@]} -gt 0 ] || TARGETS=(config http cert)
CC=${CC:-clang}
PASS=0
FAIL=0
FAILED=()

ok() { PASS=$((PASS + 1)); echo "ok - $1"; }
not_ok() { FAIL=$((FAIL + 1)); FAILED+=("$1"); echo "not ok - $1${2:+: $2}"; }

finish() {
	[ "$FAIL" -eq 0 ] || printf '# failed: %s\n' "${FAILED[@]}"
	echo "$PASS passed, $FAIL failed"
	[ "$FAIL" -eq 0 ]
	exit $?
}

case $SECONDS_EACH in
'' | *[!0-9]*) echo "usage: $0 [SECONDS] [config|http|cert ...]" >&2; exit 2 ;;
esac

if ! command -v "$CC" >/dev/null; then
	not_ok "fuzz: compiler" "$CC not found (apt-get install clang libclang-rt-14-dev)"
	finish
fi

if [ -n "${FUZZ_BUILD:-}" ]; then
	BUILD=$FUZZ_BUILD
	mkdir -p "$BUILD" || exit 2
else
	BUILD=$(mktemp -d "${TMPDIR:-/tmp}/mtlsd-fuzz.XXXXXX")
	[ "${FUZZ_KEEP:-0}" = 1 ] || trap 'rm -rf "$BUILD"' EXIT
fi
BUILD=$(cd "$BUILD" && pwd)
echo "# build dir: $BUILD"

# autoconf.h (and the libraries configure found): configure once per build dir
if [ ! -f "$BUILD/cfg/autoconf.h" ]; then
	mkdir -p "$BUILD/cfg"
	if ! (cd "$BUILD/cfg" && CC=$CC "$SRC/configure" -q --without-systemd \
		>"$BUILD/configure.log" 2>&1); then
		# --without-systemd may be unknown to an older configure: retry plain
		if ! (cd "$BUILD/cfg" && CC=$CC "$SRC/configure" -q >"$BUILD/configure.log" 2>&1); then
			tail -n 20 "$BUILD/configure.log" >&2
			not_ok "fuzz: configure" "see $BUILD/configure.log"
			finish
		fi
	fi
fi
mkvar() { sed -n "s/^$1 = //p" "$BUILD/cfg/Makefile" | head -n 1; }
CPPFLAGS_ALL="-I$BUILD/cfg -I$SRC/src $(mkvar WOLFSSL_CFLAGS) $(mkvar LIBEVENT_CFLAGS) $(mkvar YAML_CFLAGS)"
LIBS_ALL="$(mkvar WOLFSSL_LIBS) $(mkvar LIBEVENT_LIBS) $(mkvar YAML_LIBS) $(mkvar HTTP_PARSER_LIBS) -lm -pthread"
FUZZ_CFLAGS="-g -O1 -fno-omit-frame-pointer -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined"

# sources each target is built from (beyond its own file; log.c writes JSON
# lines with json.c)
sources_of() {
	case $1 in
	config) echo "src/config.c src/router.c src/ratelimit.c src/util.c src/log.c src/json.c" ;;
	http) echo "src/http.c src/util.c src/log.c src/json.c" ;;
	# der.c: the DER reader x509.c uses for certificate extensions (listed
	# only where the tree has it, so that this script builds either way)
	cert) echo "src/x509.c src/util.c src/log.c src/json.c$([ -f "$SRC/src/der.c" ] && echo " src/der.c")" ;;
	esac
}

build() { # build NAME: $BUILD/fuzz_NAME
	local name=$1 s srcs=()
	for s in $(sources_of "$name"); do srcs+=("$SRC/$s"); done
	# shellcheck disable=SC2086 # flag lists
	$CC $FUZZ_CFLAGS $CPPFLAGS_ALL -o "$BUILD/fuzz_$name" \
		"$FUZZ_DIR/fuzz_$name.c" "${srcs[@]}" $LIBS_ALL >"$BUILD/build_$name.log" 2>&1
}

# run NAME: fuzz for SECONDS_EACH from a copy of the seeds
run() {
	local name=$1
	local corpus=$BUILD/corpus_$name art=$BUILD/artifacts_$name/ log=$BUILD/fuzz_$name.log
	local rc stats dict=()
	mkdir -p "$corpus" "$art"
	cp -r "$FUZZ_DIR/corpus/$name/." "$corpus/" 2>/dev/null
	[ -f "$FUZZ_DIR/$name.dict" ] && dict=(-dict="$FUZZ_DIR/$name.dict")
	# detect_leaks: a leak is a finding like a crash
	(cd "$BUILD" && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
		UBSAN_OPTIONS=print_stacktrace=1 \
		"$BUILD/fuzz_$name" -max_total_time="$SECONDS_EACH" -timeout=10 -rss_limit_mb=2048 \
		-max_len=65536 -print_final_stats=1 -jobs="${FUZZ_JOBS:-1}" \
		-workers="${FUZZ_JOBS:-1}" -artifact_prefix="$art" "${dict[@]}" "$corpus" \
		>"$log" 2>&1)
	rc=$?
	# with -jobs the output of each job goes to fuzz-N.log in the cwd
	cat "$BUILD"/fuzz-*.log >>"$log" 2>/dev/null && rm -f "$BUILD"/fuzz-*.log
	stats=$(grep -E '^stat::number_of_executed_units' "$log" | awk '{ s += $2 } END { print s + 0 }')
	if [ "$rc" -eq 0 ] && ! ls "$art" | grep -q .; then
		ok "fuzz $name: ${SECONDS_EACH}s, $stats execs, corpus $(ls "$corpus" | wc -l) files"
	else
		not_ok "fuzz $name" "exit $rc after $stats execs; artifacts: $(ls "$art" | tr '\n' ' ')"
		# the report and the frames in our code (not libFuzzer's or libc's)
		grep -a -E 'ERROR|runtime error|SUMMARY|slicing|whole:|sliced:|reparse|does not|#[0-9]+ 0x.* in .*(src|tests/fuzz)/' "$log" |
			head -n 16 | cut -c 1-240 | sed 's/^/#   | /'
		echo "#   full log: $log (reproduce: $BUILD/fuzz_$name $art<file>)"
		[ -n "${FUZZ_BUILD:-}" ] || [ "${FUZZ_KEEP:-0}" = 1 ] || {
			# keep the evidence when the build dir is a throwaway
			trap - EXIT
			echo "#   kept $BUILD"
		}
	fi
}

for t in "${TARGETS[@]}"; do
	case $t in
	config | http | cert) ;;
	*) not_ok "fuzz $t" "unknown target"; continue ;;
	esac
	if ! build "$t"; then
		not_ok "fuzz $t: build" "$(head -c 2000 "$BUILD/build_$t.log")"
		continue
	fi
	run "$t"
done
finish
