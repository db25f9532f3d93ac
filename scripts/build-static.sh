#!/usr/bin/env bash
# Build the static drop-in for x86_64-unknown-linux-musl and check that it is statically linked;
# prints its path and size.
#
#   scripts/build-static.sh [--with-example]
#
#   --with-example   also build examples/config_server the same way (for the example image)
#   -h, --help       print this help
#
# By default the standard library is rebuilt with panics that abort at once
# (-Zbuild-std, -Cpanic=immediate-abort, enabled on the stable toolchain by RUSTC_BOOTSTRAP=1):
# this drops ~200 KiB of backtrace printing that a program without panicking paths never uses.
# REINIT_PLAIN_BUILD=1 builds with the stable standard library as shipped instead (larger).
set -euo pipefail
cd "$(dirname "$0")/.."
target=x86_64-unknown-linux-musl
what=(--bin reinit)

usage() { sed -n '2,/^[^#]/{/^#/s/^# \{0,1\}//p}' "$0"; }
for arg in "$@"; do
  case $arg in
    --with-example) what+=(--example config_server) ;;
    -h | --help) usage && exit 0 ;;
    *) echo "scripts/build-static.sh: error: unknown argument '$arg' (see --help)" >&2 && exit 2 ;;
  esac
done

rustup target list --installed 2>/dev/null | grep -qx "$target" || rustup target add "$target" >&2
if ! command -v file >/dev/null; then
  apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq file >&2
fi

flags="-C relocation-model=static -C target-feature=+crt-static"
if [ "${REINIT_PLAIN_BUILD:-0}" = 1 ]; then
  RUSTFLAGS="$flags" cargo build --release --locked --target "$target" "${what[@]}" >&2
else
  rustup component list --installed 2>/dev/null | grep -q '^rust-src' || rustup component add rust-src >&2
  RUSTC_BOOTSTRAP=1 RUSTFLAGS="$flags -Zunstable-options -Cpanic=immediate-abort" \
    cargo build --release --locked --target "$target" -Zbuild-std=std,panic_abort "${what[@]}" >&2
fi

bin="target/$target/release/reinit"
desc=$(file -b "$bin")
case "$desc" in
  *"statically linked"*) ;;
  *) echo "error: $bin is not statically linked: $desc" >&2; exit 1 ;;
esac
bytes=$(stat -c %s "$bin")
echo "static binary: $bin: $bytes bytes ($(( (bytes + 1023) / 1024 )) KiB): $desc"
