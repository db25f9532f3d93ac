#!/usr/bin/env bash
# See reinit work: wrap the example server (reinit holds its port with --listen), update its
# config the way the kubelet updates a ConfigMap volume, watch exactly one restart, then stop it
# like `docker stop` does.
#
#   scripts/demo.sh
#
#   -h, --help   print this help
#
# Builds reinit and the example (release) first. Environment: PORT (18080), the port on
# 127.0.0.1 the example server listens on.
set -euo pipefail
cd "$(dirname "$0")/.."

usage() { sed -n '2,/^[^#]/{/^#/s/^# \{0,1\}//p}' "$0"; }
for arg in "$@"; do
  case $arg in
    -h | --help) usage && exit 0 ;;
    *) echo "scripts/demo.sh: error: unknown argument '$arg' (see --help)" >&2 && exit 2 ;;
  esac
done

cargo build --release --quiet --bin reinit --example config_server
port=${PORT:-18080}
dir=$(mktemp -d)
trap 'kill $pid 2>/dev/null || true; rm -rf "$dir"' EXIT

# A ConfigMap volume as the kubelet lays it out: ..data -> ..<timestamp>/, app.conf -> ..data/app.conf
publish() { # publish CONTENT: the kubelet's atomic update (new dir, ..data_tmp, rename over ..data)
  local ts="..$(date -u +%Y_%m_%d_%H_%M_%S).$RANDOM" old
  old=$(readlink "$dir/..data" 2>/dev/null || true)
  mkdir "$dir/$ts" && printf '%s\n' "$1" > "$dir/$ts/app.conf"
  ln -s "$ts" "$dir/..data_tmp" && mv -T "$dir/..data_tmp" "$dir/..data"
  [ -e "$dir/app.conf" ] || ln -s ..data/app.conf "$dir/app.conf"
  [ -z "$old" ] || rm -rf "${dir:?}/$old"
}
get() { # HTTP GET / on the server, printing the body
  exec 3<>"/dev/tcp/127.0.0.1/$port" && printf 'GET / HTTP/1.0\r\n\r\n' >&3 && sed '1,/^\r$/d' <&3; exec 3<&-
}
wait_for() { # wait_for TEXT: until the server answers with TEXT (10 s at most)
  for _ in $(seq 100); do get 2>/dev/null | grep -q "$1" && return 0; sleep 0.1; done
  echo "timed out waiting for '$1'" >&2; return 1
}

publish "greeting=hello"
echo "\$ reinit --watch $dir --listen tcp:127.0.0.1:$port -- config_server --config $dir/app.conf"
target/release/reinit --watch "$dir" --listen "tcp:127.0.0.1:$port" -- \
  target/release/examples/config_server --config "$dir/app.conf" &
pid=$!
wait_for "greeting=hello" && get
echo "--- kubelet-style update of the ConfigMap volume"
publish "greeting=bonjour"
wait_for "greeting=bonjour" && get
echo "--- SIGTERM to reinit (what docker stop / the kubelet send)"
kill -TERM $pid
status=0; wait $pid || status=$?
echo "reinit exited with status $status"
