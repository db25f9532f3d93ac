#!/usr/bin/env bash
# The whole test suite, from a fresh Debian 12 machine with only Rust, as root: installs what
# the tests need, builds and checks the static musl binaries for x86_64 and aarch64, then runs
# `cargo test` (unit, integration and container tests) and, in a full run, the init tests again
# against the aarch64 binary under qemu-user.
#
#   scripts/test.sh [--no-policy-lint] [--] [CARGO_TEST_ARGS...]
#
#   --no-policy-lint   skip the policy lint of the k8s/ manifests (checkov): checkov and its
#                      ~90 Python packages (~260 MB) are not installed, and the test that runs
#                      it says it was skipped. Same as REINIT_SKIP_POLICY_LINT=1.
#   -h, --help         print this help.
#   CARGO_TEST_ARGS    go to `cargo test`, from the first argument that is not an option of this
#                      script, or everything after `--`: `scripts/test.sh init::`,
#                      `scripts/test.sh -- --release watch:: -- --nocapture`.
#
# What it installs when missing, saying what and why as it goes: Debian packages (apt-get; the
# list, with a reason for each, is in this script), podman's configuration for machines without
# systemd (/etc/containers/containers.conf), the manifest validators in a venv at
# $REINIT_PY_VENV (default ~/.cache/reinit-tools/venv), the musl targets, and qemu-user for
# aarch64 (scripts/qemu-binfmt.sh).
set -euo pipefail
cd "$(dirname "$0")/.."

usage() { sed -n '2,/^[^#]/{/^#/s/^# \{0,1\}//p}' "$0"; }
fail_usage() {
  echo "scripts/test.sh: error: $* (see --help)" >&2
  exit 2
}

skip_lint=${REINIT_SKIP_POLICY_LINT:-0}
case $skip_lint in
  0 | 1) ;;
  *) fail_usage "REINIT_SKIP_POLICY_LINT must be 0 or 1, not '$skip_lint'" ;;
esac
while [ $# -gt 0 ]; do
  case $1 in
    -h | --help) usage && exit 0 ;;
    --no-policy-lint) skip_lint=1 ;;
    --) shift && break ;;
    -*) fail_usage "unknown option '$1'; options for cargo test go after --" ;;
    *) break ;;
  esac
  shift
done
export REINIT_SKIP_POLICY_LINT=$skip_lint

# --- Debian packages ------------------------------------------------------------------------
# One line per need: "CHECK | PACKAGES | WHY". CHECK is a shell command that succeeds when the
# need is met; PACKAGES are installed with apt-get when it fails.
apt_needs=(
  "command -v unshare | util-linux | reinit as PID 1 of a new PID namespace (unshare --pid --fork --mount-proc)"
  "command -v nsenter | util-linux | the pod the sidecar tests simulate (shared PID namespace)"
  "command -v setpriv | util-linux | a sidecar under another UID, for the permission test"
  "command -v bash | bash | the pty test (bash -m job control) and shell apps"
  "command -v file | file | scripts/build-static.sh checks that the drop-in is static"
  "command -v podman | podman | the container tests (images, podman kube play)"
  "command -v runc | runc | podman's OCI runtime on these machines"
  "command -v catatonit | catatonit | podman's --init and the pause process of its pods"
  "test -x /bin/busybox | busybox-static | the rootfs of the busybox test image"
  "command -v python3 | python3 | the offline manifest validators"
  "python3 -c 'import ensurepip, venv' | python3-venv python3-pip | the venv the validators live in"
  "command -v prometheus && command -v promtool | prometheus | a real Prometheus for the reload-over-HTTP tests (its service is not started; the tests run their own)"
)
apt_install=() apt_why=()
for need in "${apt_needs[@]}"; do
  IFS='|' read -r check packages why <<<"$need"
  if ! eval "$check" >/dev/null 2>&1; then
    read -ra pkgs <<<"$packages"
    apt_install+=("${pkgs[@]}")
    apt_why+=("  ${pkgs[*]}: ${why# }")
  fi
done
if [ ${#apt_install[@]} -gt 0 ]; then
  echo "== installing Debian packages (apt-get):"
  printf '%s\n' "${apt_why[@]}"
  apt-get update -q
  mapfile -t apt_install < <(printf '%s\n' "${apt_install[@]}" | sort -u)
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${apt_install[@]}"
fi

# --- podman's configuration -----------------------------------------------------------------
if [ ! -e /etc/containers/containers.conf ]; then
  # No systemd on these machines: runc, cgroupfs, and no default ulimits.
  echo "== writing /etc/containers/containers.conf (podman without systemd: runc, cgroupfs, no default ulimits)"
  mkdir -p /etc/containers
  printf '[containers]\ndefault_ulimits = []\n\n[engine]\nruntime = "runc"\ncgroup_manager = "cgroupfs"\n' \
    >/etc/containers/containers.conf
fi

# --- the manifest validators (tests/containers.rs pins the same versions) --------------------
# In their own venv: Debian's python refuses system-wide pip installs, and checkov's
# dependencies would clash with other tools.
venv=${REINIT_PY_VENV:-$HOME/.cache/reinit-tools/venv}
py_needs=("kubernetes-validate==1.37.0 | schema check of k8s/*.yaml (strict, offline): ~10 packages, ~140 MB of schemas")
if [ "$skip_lint" = 1 ]; then
  echo "== policy lint skipped by request (--no-policy-lint / REINIT_SKIP_POLICY_LINT=1): checkov is not installed"
else
  py_needs+=("checkov==3.3.30 | policy lint of k8s/*.yaml: ~90 packages, ~260 MB, from 30 s to minutes (skip: --no-policy-lint)")
fi
pip_install=()
for need in "${py_needs[@]}"; do
  IFS='|' read -r spec why <<<"$need"
  spec=${spec% }
  if [ ! -x "$venv/bin/${spec%%==*}" ]; then
    [ ${#pip_install[@]} -gt 0 ] || echo "== installing Python packages into $venv (pip):"
    echo "  $spec: ${why# }"
    pip_install+=("$spec")
  fi
done
if [ ${#pip_install[@]} -gt 0 ]; then
  [ -x "$venv/bin/pip" ] || python3 -m venv "$venv"
  log=$(mktemp -t reinit-pip.XXXXXX)
  # pip's own output goes to a log; one line per package as pip collects it shows progress.
  if ! "$venv/bin/pip" install --progress-bar off "${pip_install[@]}" 2>&1 | tee "$log" |
    awk '/^Collecting /{ printf "  [%3d] %s\n", ++n, $2; fflush() }'; then
    echo "pip install failed; the end of its output (all of it: $log):" >&2
    tail -n 30 "$log" >&2
    exit 1
  fi
  awk '/^Successfully installed/{ printf "  installed %d packages\n", NF - 2 }' "$log"
  rm -f "$log"
fi

# --- Rust -----------------------------------------------------------------------------------
for target in x86_64-unknown-linux-musl aarch64-unknown-linux-musl; do
  if ! rustup target list --installed 2>/dev/null | grep -qx "$target"; then
    echo "== adding the $target target (the static drop-in)"
    rustup target add "$target"
  fi
done
scripts/qemu-binfmt.sh

echo "== static musl builds, x86_64 and aarch64 (the drop-in, and the example server for the container tests)"
scripts/build-static.sh --arch all --with-example
export REINIT_STATIC_DIR="$PWD/target/x86_64-unknown-linux-musl/release"
export REINIT_STATIC_DIR_AARCH64="$PWD/target/aarch64-unknown-linux-musl/release"

echo "== unit and integration tests"
status=0
cargo test "$@" || status=$?

# The init tests again, against the aarch64 binary run by qemu-user (what it cannot emulate is
# skipped with "skipped under qemu-user: ..."). Only in the full run: extra arguments select
# what to test on this machine.
if [ $# -eq 0 ] && [ "$status" = 0 ]; then
  echo "== init tests against the aarch64 binary under qemu-user"
  REINIT_BIN="$REINIT_STATIC_DIR_AARCH64/reinit" cargo test -q --test tests init:: || status=$?
fi
if [ "$skip_lint" = 1 ]; then
  echo "== note: the policy lint (checkov) was skipped by request; run without --no-policy-lint for it"
fi
exit "$status"
