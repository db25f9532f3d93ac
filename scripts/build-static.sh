#!/usr/bin/env bash
# Build the static drop-in (x86_64-unknown-linux-musl, release profile) and check that it is
# statically linked; prints its path and size.
set -euo pipefail
cd "$(dirname "$0")/.."
target=x86_64-unknown-linux-musl
rustup target list --installed 2>/dev/null | grep -qx "$target" || rustup target add "$target"
cargo build --release --locked --target "$target" >&2
bin="target/$target/release/reinit"
desc=$(file -b "$bin")
case "$desc" in
  *"statically linked"*|*"static-pie linked"*) ;;
  *) echo "error: $bin is not static: $desc" >&2; exit 1 ;;
esac
bytes=$(stat -c %s "$bin")
echo "static binary: $bin: $bytes bytes ($(( (bytes + 1023) / 1024 )) KiB), $desc"
