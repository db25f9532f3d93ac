#!/usr/bin/env bash
# Build the static drop-in for x86_64 and/or aarch64 (musl), check that each binary is
# statically linked for the right machine, and print its path and size.
#
#   scripts/build-static.sh [--arch x86_64|aarch64|all] [--small] [--with-example] [--out DIR]
#
#   --arch ARCH      which machine(s): x86_64 (default), aarch64, or all (both)
#   --small          the size-optimised build (see below); goes to target/small/<triple>/release
#   --with-example   also build examples/config_server the same way
#   --out DIR        also copy the binaries to DIR (with --arch all: DIR/<arch>/)
#   -h, --help       print this help
#
# Default build: the stable toolchain and standard library as shipped, `panic = "abort"` from
# the release profile (a panic prints where and why on stderr, then aborts). Output in
# target/<triple>/release.
#
# --small rebuilds the standard library for size (-Zbuild-std=std,panic_abort with only its
# `optimize_for_size` feature: no backtrace symbolizer, a panic still prints its one-line
# location and message). -Zbuild-std is unstable: it runs on the pinned toolchain
# $REINIT_SMALL_TOOLCHAIN (default below, installed with rustup when missing) with
# RUSTC_BOOTSTRAP=1, so a toolchain update cannot change or break it unnoticed.
#
# aarch64 needs no cross C toolchain: .cargo/config.toml links it with the toolchain's rust-lld.
# Cargo's output is shown only when a build fails.
set -euo pipefail
cd "$(dirname "$0")/.."

small_toolchain=${REINIT_SMALL_TOOLCHAIN:-1.95.0}
arches=(x86_64)
small=0
out=
what=(--bin reinit)

usage() { sed -n '2,/^[^#]/{/^#/s/^# \{0,1\}//p}' "$0"; }
fail() { echo "scripts/build-static.sh: error: $1" >&2 && exit 2; }

while [ $# -gt 0 ]; do
  case "$1" in
    --arch)
      case "${2:-}" in
        x86_64 | aarch64) arches=("$2") ;;
        all) arches=(x86_64 aarch64) ;;
        *) fail "--arch: unknown architecture '${2:-}' (x86_64, aarch64, all)" ;;
      esac
      shift ;;
    --small) small=1 ;;
    --with-example) what+=(--example config_server) ;;
    --out) [ -n "${2:-}" ] || fail "--out needs a directory"; out=$2; shift ;;
    -h | --help) usage && exit 0 ;;
    *) fail "unknown argument '$1' (see --help)" ;;
  esac
  shift
done

# The `file` description each architecture's binary must have.
machine() {
  case "$1" in
    x86_64) echo "x86-64" ;;
    aarch64) echo "ARM aarch64" ;;
  esac
}

need_tools() {
  if ! command -v file >/dev/null; then
    apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq file >&2
  fi
  local tc=()
  if [ "$small" = 1 ]; then
    tc=(--toolchain "$small_toolchain")
    rustup toolchain list | grep -q "^$small_toolchain" ||
      rustup toolchain install --profile minimal "$small_toolchain" >&2
    rustup component list "${tc[@]}" --installed 2>/dev/null | grep -q '^rust-src' ||
      rustup component add "${tc[@]}" rust-src >&2
  fi
  for arch in "${arches[@]}"; do
    rustup target list "${tc[@]}" --installed 2>/dev/null | grep -qx "$arch-unknown-linux-musl" ||
      rustup target add "${tc[@]}" "$arch-unknown-linux-musl" >&2
  done
}

# cargo build for one target, its output kept in a log printed only on failure.
cargo_build() {
  local target=$1 log
  log=$(mktemp)
  local cmd=(cargo build --release --locked --target "$target" "${what[@]}")
  if [ "$small" = 1 ]; then
    # The rebuilt std would carry this machine's path to its sources in panic locations: map it
    # to the /rustc/<commit> prefix the shipped std uses (the target's own rustflags still apply).
    local src hash
    src=$(rustc "+$small_toolchain" --print sysroot)/lib/rustlib/src/rust
    hash=$(rustc "+$small_toolchain" -vV | sed -n 's/^commit-hash: //p')
    cmd=(env RUSTC_BOOTSTRAP=1 CARGO_TARGET_DIR=target/small cargo "+$small_toolchain" build --release
      --locked --target "$target" -Zbuild-std=std,panic_abort -Zbuild-std-features=optimize_for_size
      --config "target.$target.rustflags=['--remap-path-prefix=$src=/rustc/$hash']" "${what[@]}")
  fi
  if ! "${cmd[@]}" >"$log" 2>&1; then
    cat "$log" >&2
    rm -f "$log"
    echo "error: the build for $target failed: ${cmd[*]}" >&2
    exit 1
  fi
  rm -f "$log"
}

# Checks a built binary (static, right machine) and prints its size.
check() {
  local bin=$1 arch=$2 desc bytes
  desc=$(file -b "$bin")
  case "$desc" in
    *"statically linked"*) ;;
    *) echo "error: $bin is not statically linked: $desc" >&2; exit 1 ;;
  esac
  case "$desc" in
    *"$(machine "$arch")"*) ;;
    *) echo "error: $bin is not an $arch executable: $desc" >&2; exit 1 ;;
  esac
  bytes=$(stat -c %s "$bin")
  echo "static binary: $bin: $bytes bytes ($(( (bytes + 1023) / 1024 )) KiB): $desc"
}

need_tools
for arch in "${arches[@]}"; do
  target=$arch-unknown-linux-musl
  dir=target/$target/release
  [ "$small" = 1 ] && dir=target/small/$target/release
  cargo_build "$target"
  bins=("$dir/reinit")
  [ ${#what[@]} -gt 2 ] && bins+=("$dir/examples/config_server")
  for bin in "${bins[@]}"; do
    check "$bin" "$arch"
  done
  if [ -n "$out" ]; then
    dest=$out
    [ ${#arches[@]} -gt 1 ] && dest=$out/$arch
    mkdir -p "$dest"
    cp "${bins[@]}" "$dest/"
  fi
done
