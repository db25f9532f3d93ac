#!/usr/bin/env bash
# The whole test suite, from a fresh machine with only Rust: installs what the tests need
# (util-linux tools, podman + runc + busybox-static, the musl target, checkov and
# kubernetes-validate in a venv, qemu-user-static), builds and checks the static musl binaries
# for x86_64 and aarch64, then runs the unit and integration tests (the container tests
# included), and the init tests again against the aarch64 binary under qemu-user.
# Usage: scripts/test.sh [extra cargo test args]
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
for tool in unshare:util-linux nsenter:util-linux setpriv:util-linux script:bsdutils file:file bash:bash \
  podman:podman runc:runc catatonit:catatonit python3:python3; do
  command -v "${tool%%:*}" >/dev/null 2>&1 || need_apt+=("${tool#*:}")
done
[ -x /bin/busybox ] || need_apt+=(busybox-static)   # the rootfs of the container tests' image
python3 -c 'import ensurepip, venv' 2>/dev/null || need_apt+=(python3-venv python3-pip)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "== installing ${need_apt[*]}"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi
if [ ! -e /etc/containers/containers.conf ]; then
  # podman on these machines (no systemd, DESIGN.md §8): runc, cgroupfs, no default ulimits
  echo "== writing /etc/containers/containers.conf"
  mkdir -p /etc/containers
  printf '[containers]\ndefault_ulimits = []\n\n[engine]\nruntime = "runc"\ncgroup_manager = "cgroupfs"\n' \
    > /etc/containers/containers.conf
fi
# Offline manifest validators (tests/containers.rs), pinned, in their own venv (Debian's python
# refuses system-wide pip installs, and checkov's dependencies would clash with other tools).
venv=${REINIT_PY_VENV:-$HOME/.cache/reinit-tools/venv}
if [ ! -x "$venv/bin/checkov" ] || [ ! -x "$venv/bin/kubernetes-validate" ]; then
  echo "== installing checkov and kubernetes-validate into $venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet kubernetes-validate==1.37.0 checkov==3.3.30
fi
for target in x86_64-unknown-linux-musl aarch64-unknown-linux-musl; do
  if ! rustup target list --installed 2>/dev/null | grep -qx "$target"; then
    echo "== adding the $target target"
    rustup target add "$target"
  fi
done
scripts/qemu-binfmt.sh

echo "== static musl builds, x86_64 and aarch64 (the drop-in, and the example server for the container tests)"
scripts/build-static.sh --arch all --with-example
export REINIT_STATIC_DIR="$PWD/target/x86_64-unknown-linux-musl/release"
export REINIT_STATIC_DIR_AARCH64="$PWD/target/aarch64-unknown-linux-musl/release"

echo "== unit and integration tests"
cargo test "$@"

# The init tests again, against the aarch64 binary run by qemu-user (what it cannot emulate is
# skipped with "skipped under qemu-user: ..."). Only in the full run: extra arguments select
# what to test on this machine.
if [ $# -eq 0 ]; then
  echo "== init tests against the aarch64 binary under qemu-user"
  REINIT_BIN="$REINIT_STATIC_DIR_AARCH64/reinit" cargo test -q --test tests init::
fi
