#!/usr/bin/env bash
# Makes aarch64 binaries run on this machine through qemu-user: installs qemu-user-static (and
# binfmt-support) when missing, mounts binfmt_misc if needed and registers Debian's handler for
# aarch64 when it is not active. The handler's F flag loads the emulator at registration, so it
# also works inside containers (podman --platform linux/arm64). Needs root.
#
#   scripts/qemu-binfmt.sh
#
#   -h, --help   print this help
set -euo pipefail
usage() { sed -n '2,/^[^#]/{/^#/s/^# \{0,1\}//p}' "$0"; }
for arg in "$@"; do
  case $arg in
    -h | --help) usage && exit 0 ;;
    *) echo "scripts/qemu-binfmt.sh: error: unknown argument '$arg' (see --help)" >&2 && exit 2 ;;
  esac
done
conf=/usr/lib/binfmt.d/qemu-aarch64.conf
if [ ! -e "$conf" ]; then
  echo "== installing qemu-user-static"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq qemu-user-static binfmt-support >/dev/null
fi
binfmt=/proc/sys/fs/binfmt_misc
[ -e "$binfmt/register" ] || mount -t binfmt_misc binfmt_misc "$binfmt"
if [ ! -e "$binfmt/qemu-aarch64" ]; then
  echo "== registering the aarch64 binfmt_misc handler"
  grep -v '^#' "$conf" > "$binfmt/register"
fi
grep -qx enabled "$binfmt/qemu-aarch64" || { echo "error: $binfmt/qemu-aarch64 is not enabled" >&2; exit 1; }
