#!/usr/bin/env bash
# The benchmarks in one command, from a clean clone, as root.
#
#   bench/run.sh [--quick]
#
#   --quick      every section with tiny counts, to check the set-up (the figures are meaningless)
#   -h, --help   print this help
#
# Takes ~6 min of measuring after the builds; < 15 min in all on 2 cores. It:
# 1. installs the peers that are missing: Debian `tini` (with `tini-static`), `dumb-init`,
#    `catatonit`, `entr` (apt-get), and `watchexec` (`cargo install watchexec-cli --locked`, in
#    the background while reinit builds, nice'd, killed after a time limit: then the watch
#    figures go without it, with a note);
# 2. builds the static reinit (scripts/build-static.sh, which prints its size) and the driver
#    bench/src/main.rs with the fixture app tests/fixtures/fake_app.rs;
# 3. runs bench/restarts.sh (failed requests and the longest request during restarts under load:
#    --listen stop-first and start-first, and without --listen);
# 4. runs the driver: every measurement side by side, interleaved (see the header of
#    bench/src/main.rs for each method), and writes bench/results.md (also printed) and
#    bench/chart.svg.
#
# Loopback and local files only; every step has a time limit. The measurements are only as
# quiet as the machine: the load average before and after is in the report.
#
# Environment: BENCH_BUDGET (s, 840): the whole run's time budget, from which the watchexec
# install gets what the rest does not need; BENCH_WATCHEXEC_LIMIT (s) overrides that;
# BENCH_SKIP_WATCHEXEC=1 does not try to install it; BENCH_DEBUG=1 shows the tools' stderr.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

usage() { sed -n '2,/^[^#]/{/^#/s/^# \{0,1\}//p}' "$0"; }
quick=()
while [ $# -gt 0 ]; do
  case $1 in
    --quick) quick=(--quick) ;;
    -h | --help) usage && exit 0 ;;
    *) echo "bench/run.sh: error: unknown argument '$1' (see --help)" >&2 && exit 2 ;;
  esac
  shift
done
budget=${BENCH_BUDGET:-840}
# What the measurements and restarts.sh need after the builds, with a margin.
reserve=$([ ${#quick[@]} -gt 0 ] && echo 120 || echo 330)
mkdir -p target/bench
note() { echo "bench: $*" >&2; }

# --- 1. peers ------------------------------------------------------------------------------
missing=()
for tool in tini-static:tini tini:tini dumb-init:dumb-init catatonit:catatonit entr:entr \
  unshare:util-linux file:file dpkg-query:dpkg; do
  command -v "${tool%%:*}" >/dev/null 2>&1 || missing+=("${tool#*:}")
done
if [ ${#missing[@]} -gt 0 ]; then
  mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u)
  note "installing ${missing[*]} (apt-get)"
  if ! { timeout 300 apt-get update -qq &&
    DEBIAN_FRONTEND=noninteractive timeout 300 apt-get install -y -qq "${missing[@]}" >/dev/null; }; then
    note "apt-get failed: the tools still missing are left out of the report"
  fi
fi

export PATH="$HOME/.cargo/bin:$PATH"
watchexec_job=
if command -v watchexec >/dev/null 2>&1; then
  note "watchexec: $(command -v watchexec)"
elif [ "${BENCH_SKIP_WATCHEXEC:-0}" = 1 ]; then
  note "watchexec: not installed, BENCH_SKIP_WATCHEXEC=1: left out"
else
  limit=${BENCH_WATCHEXEC_LIMIT:-$((budget - reserve - SECONDS))}
  if [ "$limit" -lt 60 ]; then
    note "watchexec: not installed and no time left to build it: left out"
  else
    # Its own target dir under target/, so a run cut short resumes where it stopped.
    note "watchexec: building it in the background (cargo install watchexec-cli --locked), at most ${limit}s; log: target/bench/watchexec-install.log"
    timeout -k 10 "$limit" nice -n 10 cargo install --locked --target-dir target/bench/watchexec-build \
      watchexec-cli >target/bench/watchexec-install.log 2>&1 &
    watchexec_job=$!
  fi
fi

# --- 2. builds -----------------------------------------------------------------------------
note "building the static reinit"
timeout 600 scripts/build-static.sh
reinit=$root/target/x86_64-unknown-linux-musl/release/reinit
note "building the driver and the fixture app"
timeout 600 cargo build --release --locked --quiet -p reinit-bench -p reinit-test-fixtures --bin bench --bin fake_app
if [ -n "$watchexec_job" ]; then
  note "waiting for the watchexec install to finish"
  if wait "$watchexec_job" && command -v watchexec >/dev/null 2>&1; then
    note "watchexec: installed"
  else
    note "watchexec: install failed or took too long (see target/bench/watchexec-install.log): left out"
  fi
fi
watchexec_args=()
if command -v watchexec >/dev/null 2>&1; then watchexec_args=(--watchexec "$(command -v watchexec)"); fi

# --- 3. restarts under load ----------------------------------------------------------------
restarts_md=target/bench/restarts.md
if [ -f bench/restarts.sh ]; then
  note "restarts under load: bench/restarts.sh"
  restarts_env=()
  [ ${#quick[@]} -gt 0 ] && restarts_env=(RESTARTS=2)
  if out=$(env "${restarts_env[@]}" timeout 300 bash bench/restarts.sh); then
    printf '\n## Restarts under load (`bench/restarts.sh`, reinit built by it: dynamic release)\n\n%s\n' "$out" >"$restarts_md"
  else
    printf '\n## Restarts under load\n\n**bench/restarts.sh failed (status %s)**; its output:\n\n```\n%s\n```\n' "$?" "$out" >"$restarts_md"
  fi
else
  # HOOK: bench/restarts.sh (failed requests during 10 config restarts, with --listen
  # stop-first and start-first, and without) is not in this checkout; once it is, the branch
  # above runs it.
  note "HOOK: bench/restarts.sh is missing: restarts under load are not measured"
  printf '\n## Restarts under load\n\n**Not measured**: `bench/restarts.sh` is missing (hook in bench/run.sh).\n' >"$restarts_md"
fi

# --- 4. the measurements -------------------------------------------------------------------
note "measuring (the driver prints its progress)"
timeout 900 target/release/bench run --reinit "$reinit" "${watchexec_args[@]}" \
  --out bench/results.md --svg bench/chart.svg --append "$restarts_md" "${quick[@]}"
note "done in ${SECONDS}s: bench/results.md, bench/chart.svg"
