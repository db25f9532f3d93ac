#!/usr/bin/env bash
# Failed requests and the longest request while reinit restarts an app under load: with
# --listen stop-first (the default), with --listen start-first, and without --listen.
#
#   bench/restarts.sh
#
#   -h, --help   print this help
#
# Builds what it needs (release), runs the three modes, prints a markdown table. For each mode:
# the example server (examples/config_server.rs, --start-delay 500 ms: slow to start, like a real
# app) runs under `reinit --watch VOLUME`; tests/fixtures/load.rs keeps 8 clients busy (connect,
# GET /, read the whole answer, 5 s limit per step) while RESTARTS (10) kubelet-style updates of
# the volume each trigger one restart — the next update only once the restart is visible
# (answers carry the new app's pid) and reinit has logged it done.
# Loopback only; installs nothing.
#
#   stop-first:   reinit --listen tcp:127.0.0.1:PORT --watch V -- config_server --config V/app.conf
#   start-first:  reinit --listen tcp:127.0.0.1:PORT --update-order start-first --ready notify
#                   --watch V -- config_server --config V/app.conf
#   without:      reinit --watch V -- config_server --config V/app.conf --port PORT
#
# p99 and the longest request are over the served requests (connect to the end of the answer);
# a refused connect fails at once and counts as failed, not as a long request.
#
# Environment: RESTARTS (10), THREADS (8), START_DELAY (ms, 500), INTERVAL (ms between a client's
# requests, 0 = closed loop).
set -euo pipefail
cd "$(dirname "$0")/.."

usage() { sed -n '2,/^[^#]/{/^#/s/^# \{0,1\}//p}' "$0"; }
for arg in "$@"; do
  case $arg in
    -h | --help) usage && exit 0 ;;
    *) echo "bench/restarts.sh: error: unknown argument '$arg' (see --help)" >&2 && exit 2 ;;
  esac
done

RESTARTS=${RESTARTS:-10}
THREADS=${THREADS:-8}
START_DELAY=${START_DELAY:-500}
INTERVAL=${INTERVAL:-0}

cargo build --release --quiet -p reinit -p reinit-test-fixtures --bin reinit --example config_server --bin load
R=target/release
work=$(mktemp -d)
reinit_pid=
cleanup() {
  if [ -n "$reinit_pid" ]; then kill "$reinit_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

publish() { # publish DIR CONTENT: the kubelet's atomic update (new dir, ..data_tmp, rename over ..data)
  local dir=$1 ts old
  ts="..$(date -u +%Y_%m_%d_%H_%M_%S).$RANDOM$RANDOM"
  old=$(readlink "$dir/..data" 2>/dev/null || true)
  mkdir -p "$dir/$ts" && printf '%s\n' "$2" >"$dir/$ts/app.conf"
  ln -s "$ts" "$dir/..data_tmp" && mv -T "$dir/..data_tmp" "$dir/..data"
  [ -e "$dir/app.conf" ] || ln -s ..data/app.conf "$dir/app.conf"
  [ -z "$old" ] || rm -rf "${dir:?}/$old"
}

wait_until() { # wait_until SECONDS WHAT COMMAND...: poll COMMAND every 20 ms
  local limit=$1 what=$2 i
  shift 2
  for ((i = 0; i < limit * 50; i++)); do
    "$@" && return 0
    sleep 0.02
  done
  echo "bench: timed out after ${limit}s waiting for $what" >&2
  return 1
}

pids_seen() { if [ -f "$1" ]; then grep -c '^pid ' "$1"; else echo 0; fi; }
at_least() { [ "$(pids_seen "$1")" -ge "$2" ]; }
restarts_logged() { grep -c 'restarted the app in' "$1" || true; }
restarted() { # restarted LOAD_OUT REINIT_ERR N: the Nth restart answers and reinit logged it done
  at_least "$1" $(($3 + 1)) && [ "$(restarts_logged "$2")" -ge "$3" ]
}

run() { # run MODE (stop-first|start-first|own): prints one table row
  local mode=$1 dir=$work/$1 port start end i
  mkdir -p "$dir"
  publish "$dir/volume" v0
  port=$("$R/load" --free-port)
  local app=("$R/examples/config_server" --config "$dir/volume/app.conf" --start-delay "$START_DELAY")
  case $mode in
    stop-first) "$R/reinit" --listen "tcp:127.0.0.1:$port" --watch "$dir/volume" -- "${app[@]}" 2>"$dir/reinit.err" & ;;
    start-first)
      "$R/reinit" --listen "tcp:127.0.0.1:$port" --update-order start-first --ready notify \
        --watch "$dir/volume" -- "${app[@]}" 2>"$dir/reinit.err" &
      ;;
    own) "$R/reinit" --watch "$dir/volume" -- "${app[@]}" --port "$port" 2>"$dir/reinit.err" & ;;
  esac
  reinit_pid=$!
  wait_until 20 "the first start to serve" grep -q ' serving ' "$dir/reinit.err"
  start=$(date +%s.%N)
  "$R/load" --addr "127.0.0.1:$port" --threads "$THREADS" --interval-ms "$INTERVAL" \
    --until-file "$dir/stop" >"$dir/load.out" 2>"$dir/load.err" &
  local load_pid=$!
  wait_until 20 "the first answer" at_least "$dir/load.out" 1
  for ((i = 1; i <= RESTARTS; i++)); do
    publish "$dir/volume" "v$i"
    wait_until 30 "restart $i to be visible and done" restarted "$dir/load.out" "$dir/reinit.err" "$i"
  done
  touch "$dir/stop"
  wait "$load_pid"
  end=$(date +%s.%N)
  kill -TERM "$reinit_pid"
  wait "$reinit_pid" || true
  reinit_pid=
  local counts restarts
  counts=$(tail -n 1 "$dir/load.out")
  restarts=$(restarts_logged "$dir/reinit.err")
  get() { awk -v k="$1" '{ for (i = 1; i <= NF; i++) { split($i, kv, "="); if (kv[1] == k) print kv[2] } }' <<<"$counts"; }
  local served refused reset timeout short other failed
  served=$(get served) refused=$(get refused) reset=$(get reset) timeout=$(get timeout)
  short=$(get short) other=$(get other)
  failed=$((refused + reset + timeout + short + other))
  local label
  case $mode in
    stop-first) label='`--listen`, stop-first (the default)' ;;
    start-first) label='`--listen`, start-first, `--ready notify`' ;;
    own) label='without `--listen` (the app binds the port)' ;;
  esac
  printf '| %s | %s | **%s** | %s | %s | %s | %s | %s | %.1f s | %s ms | **%s ms** |\n' "$label" "$served" "$failed" \
    "$refused" "$reset" "$timeout" "$((short + other))" "$restarts" "$(awk -v a="$start" -v b="$end" 'BEGIN { print b - a }')" \
    "$(get p99_ms)" "$(get max_ms)"
  sed "s/^/    $mode: /" "$dir/load.err" >&2
}

echo "$RESTARTS restarts (config_server --start-delay ${START_DELAY} ms), $THREADS clients, $(nproc) CPUs, loopback."
echo "p99 and longest request: of the served requests, from the connect to the end of the answer"
echo "(a refused connect fails at once: it counts as failed, not as a long request):"
echo
echo '| mode | requests served | failed | refused | reset | timeout | short/other | restarts | run time | p99 | longest request |'
echo '|---|---|---|---|---|---|---|---|---|---|---|'
run stop-first
run start-first
run own
