#!/usr/bin/env bash
# The whole test suite, from a fresh machine with only Rust: installs what the tests need,
# then runs unit and integration tests and checks the static musl build.
# Usage: scripts/test.sh [extra cargo test args]
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
for tool in unshare:util-linux nsenter:util-linux script:bsdutils file:file bash:bash; do
  command -v "${tool%%:*}" >/dev/null 2>&1 || need_apt+=("${tool#*:}")
done
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "== installing ${need_apt[*]}"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi
if ! rustup target list --installed 2>/dev/null | grep -qx x86_64-unknown-linux-musl; then
  echo "== adding the musl target"
  rustup target add x86_64-unknown-linux-musl
fi

echo "== unit and integration tests"
cargo test --all-targets "$@"

echo "== static musl build"
scripts/build-static.sh
