#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# build-wolfssl.sh PREFIX — build Debian's own wolfSSL source package with
# AES-NI, the Intel assembly and the single-precision (SP) maths, plus every
# feature mtlsd needs, and install it into PREFIX.
#
#   sudo contrib/build-wolfssl.sh /opt/wolfssl-fast
#   ./configure --with-wolfssl=/opt/wolfssl-fast && make
#
# Why: Debian 12's libwolfssl is built for a generic amd64 without assembly:
# AES-128-GCM runs at ~140 MB/s and ECDHE/ECDSA P-256 several times slower
# than the same source with --enable-aesni --enable-intelasm --enable-sp
# --enable-sp-asm. The source is Debian's (`apt-get source wolfssl`, with
# Debian's patches and security fixes), so the only difference from the
# packaged library is the configure line.
#
# Steps:
#  1. unless one exists, add a deb-src entry (deb822 file /etc/apt/sources.list.d/
#     mtlsd-wolfssl-src.sources) mirroring the machine's `Types: deb` entries,
#     and `apt-get update` — needs root; set WOLFSSL_SRC_DIR to an unpacked
#     source tree instead to skip steps 1-2;
#  2. `apt-get install dpkg-dev autoconf automake libtool make gcc` (what is
#     missing); `apt-get source wolfssl` into the work directory (reused when
#     it is already there);
#  3. `./autogen.sh`, `./configure` with Debian's options (read from
#     debian/rules: --enable-distro --enable-pkcs11 --disable-examples ...),
#     mtlsd's features named explicitly, and the speed options; `make`,
#     `make install` into PREFIX, plus wolfssl/options.h, which a distro build
#     does not install (Debian's libwolfssl-dev.install copies it);
#  4. check: every function mtlsd's configure probes is exported and
#     options.h defines WOLFSSL_AESNI; with BENCH=1, wolfCrypt's benchmark
#     figures for AES-GCM and P-256.
# About 5 minutes on 2 cores.
#
# Environment:
#   WORKDIR          where the source is fetched and built
#                    (default: ${TMPDIR:-/tmp}/mtlsd-wolfssl-build)
#   WOLFSSL_SRC_DIR  an already unpacked wolfSSL source tree to build instead
#   JOBS             make -j (default: nproc)
#   EXTRA_CONFIGURE  more ./configure options
#   BENCH=1          run wolfCrypt's benchmark for AES-GCM / ECC afterwards
#   NO_ASM=1         build the same feature set without the speed options
#                    (a like-for-like baseline for measurements)
set -euo pipefail

die() { echo "build-wolfssl: $*" >&2; exit 1; }
say() { echo "build-wolfssl: $*"; }

[ $# -eq 1 ] || die "usage: build-wolfssl.sh PREFIX"
PREFIX=$1
case $PREFIX in /*) ;; *) PREFIX=$(pwd)/$PREFIX ;; esac
WORKDIR=${WORKDIR:-${TMPDIR:-/tmp}/mtlsd-wolfssl-build}
JOBS=${JOBS:-$(nproc 2>/dev/null || echo 2)}

[ "$(uname -m)" = x86_64 ] || [ "${NO_ASM:-0}" = 1 ] ||
	die "the speed options (--enable-aesni --enable-intelasm) are for x86_64; set NO_ASM=1 elsewhere"

as_root() {
	if [ "$(id -u)" -eq 0 ]; then "$@"
	elif command -v sudo >/dev/null; then sudo "$@"
	else die "need root for: $*"
	fi
}

# -------------------------------------------------------------- 1. deb-src

# add_deb_src: for every deb822 stanza with "Types: deb" (and no deb-src yet),
# write the same stanza as deb-src into one file of ours. One-line
# sources.list entries ("deb URI SUITE COMPONENTS") are mirrored as well.
add_deb_src() {
	local out=/etc/apt/sources.list.d/mtlsd-wolfssl-src.sources
	if grep -Rqs '^[[:space:]]*Types:.*deb-src' /etc/apt/sources.list.d/ ||
		grep -Rqs '^[[:space:]]*deb-src[[:space:]]' /etc/apt/sources.list /etc/apt/sources.list.d/; then
		say "a deb-src entry exists already"
		return 0
	fi
	local tmp
	tmp=$(mktemp)
	{
		echo "# added by mtlsd contrib/build-wolfssl.sh: source packages for \`apt-get source wolfssl\`"
		local f
		for f in /etc/apt/sources.list.d/*.sources; do
			[ -f "$f" ] || continue
			# deb822: stanzas separated by blank lines; keep the ones whose
			# Types include deb, rewrite Types, drop comments
			awk '
				function flush() { if (st != "" && isdeb) printf "%s\n", st; st = ""; isdeb = 0 }
				/^[[:space:]]*$/ { flush(); next }
				/^#/ { next }
				/^Types:/ { if ($0 ~ /(^|[[:space:]])deb([[:space:]]|$)/) isdeb = 1; st = st "Types: deb-src\n"; next }
				{ st = st $0 "\n" }
				END { flush() }
			' "$f"
		done
		for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
			[ -f "$f" ] || continue
			awk '/^[[:space:]]*deb[[:space:]]/ {
				sub(/^[[:space:]]*deb[[:space:]]+/, "")
				n = split($0, a, /[[:space:]]+/)
				opts = ""; i = 1
				if (a[1] ~ /^\[/) { while (i <= n && a[i] !~ /\]$/) i++; i++ }
				uri = a[i]; suite = a[i + 1]; comps = ""
				for (j = i + 2; j <= n; j++) comps = comps (comps ? " " : "") a[j]
				printf "Types: deb-src\nURIs: %s\nSuites: %s\nComponents: %s\n\n", uri, suite, comps
			}' "$f"
		done
	} >"$tmp"
	grep -q '^Types: deb-src' "$tmp" || { rm -f "$tmp"; die "no deb entries found in /etc/apt to mirror as deb-src"; }
	as_root install -m 0644 "$tmp" "$out"
	rm -f "$tmp"
	say "added $out"
	as_root apt-get update -qq
}

# ---------------------------------------------------------- 2. the source

fetch_source() {
	if [ -n "${WOLFSSL_SRC_DIR:-}" ]; then
		[ -f "$WOLFSSL_SRC_DIR/configure.ac" ] || die "WOLFSSL_SRC_DIR=$WOLFSSL_SRC_DIR is not a wolfSSL source tree"
		SRC=$(cd "$WOLFSSL_SRC_DIR" && pwd)
		return 0
	fi
	local missing=() p
	for p in dpkg-dev autoconf automake libtool make gcc; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing+=("$p")
	done
	if [ ${#missing[@]} -gt 0 ]; then
		say "installing ${missing[*]}"
		as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
	fi
	add_deb_src
	mkdir -p "$WORKDIR"
	SRC=$(find "$WORKDIR" -mindepth 1 -maxdepth 1 -type d -name 'wolfssl-[0-9]*' | sort | tail -n 1)
	if [ -z "$SRC" ]; then
		say "apt-get source wolfssl (into $WORKDIR)"
		(cd "$WORKDIR" && apt-get source -qq wolfssl) || {
			say "apt-get source failed; running apt-get update once and retrying"
			as_root apt-get update -qq
			(cd "$WORKDIR" && apt-get source -qq wolfssl)
		}
		SRC=$(find "$WORKDIR" -mindepth 1 -maxdepth 1 -type d -name 'wolfssl-[0-9]*' | sort | tail -n 1)
		[ -n "$SRC" ] || die "apt-get source wolfssl did not unpack a wolfssl-* directory"
	else
		say "reusing the source in $SRC"
	fi
}

# ------------------------------------------------------------ 3. the build

# Debian's debian/rules (5.5.4-2+deb12u3) configures with
#   --enable-distro --enable-pkcs11 --disable-examples --disable-silent-rules
# (--enable-distro implies --enable-all: opensslall/opensslextra, PKCS#12, SNI,
# session tickets, TLS 1.3, ALPN, certgen/certreq/certext, keygen...). Those
# flags are read from debian/rules when the tree has one, so the tuned build
# has Debian's feature set; the features mtlsd's configure probes for are
# also named explicitly, so that a tree without debian/ (WOLFSSL_SRC_DIR
# pointing at an upstream tarball) or a future Debian revision cannot drop
# one silently.
DEBIAN_FALLBACK=(--enable-distro --enable-pkcs11 --disable-examples)
MTLSD_FEATURES=(
	--enable-opensslall --enable-opensslextra --enable-pkcs12 --enable-sni
	--enable-session-ticket --enable-tls13 --enable-alpn --enable-sys-ca-certs
	--enable-certgen --enable-certreq --enable-certext --enable-keygen
	--enable-ecc --enable-supportedcurves
)
SPEED=(--enable-aesni --enable-intelasm --enable-sp --enable-sp-asm)

# debian_flags: the options of dh_auto_configure in debian/rules
debian_flags() {
	local rules=$SRC/debian/rules
	if [ ! -f "$rules" ]; then
		echo "${DEBIAN_FALLBACK[*]}"
		return 0
	fi
	sed -e ':a' -e '/\\$/N; s/\\\n//; ta' "$rules" |
		grep -E 'dh_auto_configure' | sed -e 's/.*dh_auto_configure[^-]*--//' |
		tr ' \t' '\n\n' | grep -E '^--(enable|disable|with|without)-' | tr '\n' ' '
}

build() {
	cd "$SRC"
	local deb f flags=()
	deb=$(debian_flags)
	say "Debian's configure options: $deb"
	for f in $deb; do
		case $f in
		# never let these undo a speed option or an mtlsd feature
		--disable-aesni | --disable-intelasm | --disable-sp | --disable-sp-asm | \
			--disable-opensslall | --disable-opensslextra | --disable-pkcs12 | --disable-sni | \
			--disable-session-ticket | --disable-tls13 | --disable-alpn | --disable-sys-ca-certs) ;;
		*) flags+=("$f") ;;
		esac
	done
	flags+=("${MTLSD_FEATURES[@]}")
	[ "${NO_ASM:-0}" = 1 ] || flags+=("${SPEED[@]}")
	# shellcheck disable=SC2206 # EXTRA_CONFIGURE is a list of options
	flags+=(${EXTRA_CONFIGURE:-})
	mkdir -p "$WORKDIR"
	if [ ! -x ./configure ] || [ configure.ac -nt configure ]; then
		say "./autogen.sh"
		./autogen.sh >"$WORKDIR/autogen.log" 2>&1 || { tail -n 30 "$WORKDIR/autogen.log" >&2; die "autogen.sh failed"; }
	fi
	[ -f Makefile ] && { make distclean >/dev/null 2>&1 || true; }
	# Debian builds with dpkg-buildflags (-O2 -g, hardening); do the same
	local cflags cppflags ldflags
	cflags=$(dpkg-buildflags --get CFLAGS 2>/dev/null || echo "-g -O2")
	cppflags=$(dpkg-buildflags --get CPPFLAGS 2>/dev/null || true)
	ldflags=$(dpkg-buildflags --get LDFLAGS 2>/dev/null || true)
	say "./configure --prefix=$PREFIX ${flags[*]}"
	CFLAGS="$cflags" CPPFLAGS="$cppflags" LDFLAGS="$ldflags" \
		./configure --prefix="$PREFIX" "${flags[@]}" >"$WORKDIR/configure.log" 2>&1 ||
		{ tail -n 30 "$WORKDIR/configure.log" >&2; die "configure failed (log: $WORKDIR/configure.log)"; }
	say "make -j$JOBS (log: $WORKDIR/make.log)"
	make -j"$JOBS" >"$WORKDIR/make.log" 2>&1 || { tail -n 30 "$WORKDIR/make.log" >&2; die "make failed (log: $WORKDIR/make.log)"; }
	mkdir -p "$PREFIX" 2>/dev/null || as_root mkdir -p "$PREFIX"
	if [ -w "$PREFIX" ]; then make install >"$WORKDIR/install.log" 2>&1
	else as_root make install >"$WORKDIR/install.log" 2>&1
	fi || { tail -n 30 "$WORKDIR/install.log" >&2; die "make install failed"; }
	# a distro build does not install options.h (Debian's libwolfssl-dev.install
	# copies it): without it, programs would pick up /usr/include/wolfssl/
	# options.h, whose defines do not match this library's structures
	local h
	for h in wolfssl/options.h cyassl/options.h; do
		[ -f "$h" ] || continue
		if [ -w "$PREFIX/include" ]; then install -m 0644 "$h" "$PREFIX/include/$h"
		else as_root install -m 0644 "$h" "$PREFIX/include/$h"
		fi
	done
}

# ----------------------------------------------------------- 4. the check

check() {
	local lib fn absent="" syms
	lib=$(ls "$PREFIX"/lib/libwolfssl.so.* 2>/dev/null | head -n 1)
	[ -n "$lib" ] || die "no $PREFIX/lib/libwolfssl.so.* after make install"
	syms=$(nm -D --defined-only "$lib" | awk '{ print $NF }')
	for fn in wolfSSL_CTX_new wolfSSL_UseSNI wolfSSL_check_domain_name wolfSSL_get1_session \
		wolfSSL_d2i_PKCS12_bio wolfSSL_PKCS12_parse wolfSSL_X509_get_pubkey wolfSSL_i2d_PUBKEY \
		wolfSSL_CTX_load_system_CA_certs wolfSSL_CTX_set_verify wolfSSL_X509_get_ext_d2i; do
		grep -qx "$fn" <<<"$syms" || absent+=" $fn"
	done
	[ -z "$absent" ] || die "the built library lacks:$absent"
	grep -q 'WOLFSSL_AESNI' "$PREFIX/include/wolfssl/options.h" || [ "${NO_ASM:-0}" = 1 ] ||
		die "options.h does not define WOLFSSL_AESNI: the speed options did not take"
	say "installed $lib (all functions mtlsd probes are exported)"
	if [ "${BENCH:-0}" = 1 ] && [ -x "$SRC/wolfcrypt/benchmark/benchmark" ]; then
		say "wolfCrypt benchmark (AES-GCM, ECC):"
		"$SRC/wolfcrypt/benchmark/benchmark" -aes-gcm -ecc 2>&1 | grep -E 'AES-128-GCM|AES-256-GCM|ECDHE|ECDSA' || true
	fi
	echo
	echo "  now: ./configure --with-wolfssl=$PREFIX && make"
}

fetch_source
build
check
