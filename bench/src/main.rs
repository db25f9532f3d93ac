//! `bench`: the benchmark driver behind `bench/run.sh`. It measures
//! reinit side by side with tini (Debian's static `tini-static` and dynamic `tini`), `dumb-init`
//! and `catatonit`, and as a config watcher with `watchexec` and `entr`, **interleaved** (round
//! robin over the tools in small blocks, or all tools at once over the same window), then writes
//! a markdown report and an SVG chart. std + libc + nix only; loopback and local files only;
//! every wait has a deadline.
//!
//! ```text
//! bench run --reinit PATH [--fake-app PATH] [--watchexec PATH] [--out FILE] [--svg FILE]
//!           [--append FILE] [--quick] [--only SECTION,...]
//! bench storm N          (the SIGCHLD storm app; run by `bench run` under each init)
//! ```
//!
//! `run` finds the peers on `PATH` (a missing one is left out with a note), runs fake_app
//! (`tests/fixtures/fake_app.rs`, next to this binary unless `--fake-app`) as the wrapped app, prints
//! the report on stdout and writes it to `--out` (default `bench/results.md`), the chart to
//! `--svg` (default `bench/chart.svg`); `--append FILE` adds a markdown file (the restarts table
//! of `bench/restarts.sh`) to the report. `--quick` runs every section with small counts (for
//! development: the figures are not meaningful); `--only` runs some sections: `size`, `startup`,
//! `signal`, `term`, `storm`, `idle`, `watch`. `BENCH_DEBUG=1` lets the tools' stderr through.
//!
//! How each init is run — the options their docs recommend, the same workload for all:
//! `reinit -- CMD`, `tini -- CMD` (`tini -s -- CMD` when not PID 1: its docs ask for the
//! subreaper flag there), `dumb-init CMD`, `catatonit -- CMD`. "As PID 1" means under
//! `unshare --pid --fork --mount-proc`; the measured process is then the init itself (the child
//! of `unshare`), seen from the host.
//!
//! The sections (counts for the full run):
//!
//! - `size`: bytes of each binary (symlinks resolved) and what `file` says (static or dynamic).
//! - `startup`: wall time of `INIT -- true` minus that of bare `true` (spawn to exit, stdio on
//!   /dev/null), median of 250 runs each, as PID 1 (both under `unshare ... `, so unshare's own
//!   cost cancels) and not; all 12 variants round robin in blocks of 10.
//! - `signal`: every init wraps a `fake_app --stamp` as PID 1, all at once; round robin, one
//!   sample per tool per round: from just before `kill(init, SIGUSR1)` to the `CLOCK_MONOTONIC`
//!   time fake_app itself reads when it handles the signal (the `at=` of its `signal 10` line),
//!   so the figure does not depend on when the driver next gets the CPU to read the line (on a
//!   shared CPU the scheduler may run the app and the init to their exit first, which made
//!   some samples 10× the others). 20 warm-up rounds, then 300 samples; p50/p99.
//!   Placement is fixed, as it decides the cost of each wake-up: first the driver and every
//!   init and app on one CPU, then the inits and apps on one CPU and the driver on another
//!   (each signal crosses CPUs there and back). Left free, one run differs from the next by
//!   where each process happens to land.
//! - `term`: SIGTERM to a fresh instance. Each init as PID 1 wraps a fake_app; once the app
//!   says `ready`, `kill(init, SIGTERM)` — the first signal that init gets — and two times from
//!   just before the `kill`: until the app handles it (its own time, as in `signal`: "the app
//!   gets it"), and until the driver sees the init's pidfd turn readable ("the init exits": the
//!   app exits 0 on SIGTERM, the init reaps it and exits). A new instance per sample: 5 warm-up
//!   rounds, then 1000 instances per init, round robin, one per init per round; the driver, the
//!   inits and the apps on one CPU (as in the signal section's first pass); p50/p99. An
//!   instance with no `signal 15` or no exit within 3 s is counted as lost.
//! - `storm`: as PID 1, the wrapped app is `bench storm 20000`: it forks 20 000 children, each
//!   forks a grandchild and exits at once, so 20 000 orphans are reparented to the init and
//!   must be reaped by it. The app counts zombies (state `Z` in its namespace's `/proc`) every
//!   20 forks and while waiting, and reports the wall time from its first fork until no other
//!   process than the init and itself is left. The driver then reads the init's utime+stime
//!   (`/proc/PID/stat`) and its run time (`/proc/PID/schedstat`, ns) before stopping it.
//!   3 rounds, tool order rotated per round; medians (peak zombies: the largest).
//! - `idle`: every init as PID 1 wrapping `sleep 1000`, and every watcher wrapping `sleep 1000`
//!   on a watched dir, all started at once; after 1 s to settle, voluntary and involuntary
//!   context switches (summed over threads) over the same 5 s window; then VmRSS
//!   (`/proc/PID/status`) and Pss (`/proc/PID/smaps_rollup`). 3 rounds: memory medians,
//!   context switches the largest.
//! - `watch`: change → action. Each watcher runs fake_app `--config DIR/app.conf` in its own dir
//!   in two scenarios — a kubelet `AtomicWriter` update (`..<ts>` dir, `..data_tmp` symlink,
//!   rename over `..data`, delete the old dir: the tests' `tests/util/kubelet.rs` itself; `DIR/app.conf ->
//!   ..data/app.conf`, plus an unchanged `other.conf` key) and a plain rename save (write a temp
//!   file, rename it over the regular file `DIR/app.conf`). 60 updates per instance, instances
//!   round robin. Latency: from just before the `rename` that makes the content live to
//!   reading the new app's `ready` line (for the kubelet update that moment is recorded by the
//!   simulator itself, just before its `rename(..data_tmp, ..data)`). Missed: no `ready` within
//!   3 s. Double: another `ready` before the instance went 500 ms quiet. Early: the new app read
//!   the old content (it was started before the update went live). Bars: a `..data` swap is
//!   acted on at the kubelet's commit, so p99 ≤ 10 ms; a rename save waits for the debounce, so
//!   ≤ debounce + 10 ms. Watchers:
//!   `reinit --watch DIR -- APP`, `watchexec --restart --watch DIR -- APP`,
//!   `entr -rn APP` fed `DIR/app.conf` on stdin (its man page's way to reload a server).
//!
//! Files: `main.rs` (options, the run, the results), `tools.rs` (which tools, how each is run),
//! `procs.rs` (the measured processes and their `/proc`), `stats.rs`, one file per section
//! (`size.rs`, `startup.rs`, `signal.rs`, `term.rs`, `storm.rs`, `idle.rs`, `watch.rs`), `report.rs` (the
//! markdown) and `chart.rs` (the SVG).
#![allow(unsafe_code)]

/// The kubelet `AtomicWriter` simulator of the integration tests, shared rather than ported.
/// Included by path: it is one std-only file that the tests own and use as a module, so a
/// crate of its own would add a manifest for nothing.
#[path = "../../tests/util/kubelet.rs"]
#[allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed step is a panic there
mod kubelet;

mod chart;
mod idle;
mod procs;
mod report;
mod signal;
mod size;
mod startup;
mod stats;
mod storm;
mod term;
mod tools;
mod watch;

use kubelet::{Kubelet, Rng, civil_from_days};
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use std::collections::VecDeque;
use std::fmt::Write as _;
use std::fs;
use std::io::{ErrorKind, Read, Write};
use std::os::fd::AsFd;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, ExitCode, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

// The modules are the parts of one program: their items form one namespace.
use chart::*;
use idle::*;
use procs::*;
use report::*;
use signal::*;
use size::*;
use startup::*;
use stats::*;
use storm::*;
use term::*;
use tools::*;
use watch::*;

type Res<T> = Result<T, Box<dyn std::error::Error>>;

fn fail(msg: impl Into<String>) -> Box<dyn std::error::Error> {
    msg.into().into()
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let result = match args.get(1).map(String::as_str) {
        Some("storm") => storm_main(&args[2..]),
        Some("run") => run_main(&args[2..]),
        _ => Err(fail("usage: bench run --reinit PATH [options] | bench storm N (see bench/src/main.rs)")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench: error: {e}");
            ExitCode::FAILURE
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Settings

struct Counts {
    startup_runs: usize,
    startup_block: usize,
    signal_warmup: usize,
    signal_samples: usize,
    term_warmup: usize,
    term_instances: usize,
    storm_orphans: u32,
    storm_rounds: usize,
    idle_secs: u64,
    idle_rounds: usize,
    watch_updates: usize,
}

impl Counts {
    fn full() -> Counts {
        Counts {
            startup_runs: 250,
            startup_block: 10,
            signal_warmup: 20,
            signal_samples: 300,
            term_warmup: 5,
            term_instances: 1000,
            storm_orphans: 20_000,
            storm_rounds: 3,
            idle_secs: 5,
            idle_rounds: 3,
            watch_updates: 60,
        }
    }

    fn quick() -> Counts {
        Counts {
            startup_runs: 20,
            startup_block: 10,
            signal_warmup: 5,
            signal_samples: 30,
            term_warmup: 1,
            term_instances: 10,
            storm_orphans: 2_000,
            storm_rounds: 1,
            idle_secs: 1,
            idle_rounds: 1,
            watch_updates: 4,
        }
    }
}

/// reinit's debounce (its default) and the slack allowed on top of it, the bar of a change that
/// waits for the debounce (a rename save).
const DEBOUNCE_MS: f64 = 100.0;
const WATCH_SLACK_MS: f64 = 10.0;
/// The bar of a kubelet `..data` swap, which reinit acts on at once (no debounce).
const KUBE_SWAP_MS: f64 = 10.0;
/// The bar of the longest request while reinit restarts the app start-first under load.
const START_FIRST_LONGEST_MS: f64 = 100.0;
/// A watcher that shows no new app start within this is counted as having missed the update.
const MISS_AFTER: Duration = Duration::from_secs(3);
/// An instance must stay this long without a `ready` line before the next update; a `ready`
/// seen in that window is a double restart.
const QUIET: Duration = Duration::from_millis(500);
/// How often the storm app counts zombies.
const STORM_SAMPLE_EVERY: u32 = 20;

struct Opts {
    reinit: PathBuf,
    fake_app: PathBuf,
    watchexec: Option<PathBuf>,
    out: PathBuf,
    svg: PathBuf,
    append: Vec<PathBuf>,
    quick: bool,
    only: Option<Vec<String>>,
}

fn parse_opts(args: &[String]) -> Res<Opts> {
    let exe = std::env::current_exe()?;
    let mut o = Opts {
        reinit: PathBuf::new(),
        fake_app: exe.with_file_name("fake_app"),
        watchexec: None,
        out: PathBuf::from("bench/results.md"),
        svg: PathBuf::from("bench/chart.svg"),
        append: Vec::new(),
        quick: false,
        only: None,
    };
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let mut value = || it.next().cloned().ok_or_else(|| fail(format!("{arg} needs a value")));
        match arg.as_str() {
            "--reinit" => o.reinit = PathBuf::from(value()?),
            "--fake-app" => o.fake_app = PathBuf::from(value()?),
            "--watchexec" => o.watchexec = Some(PathBuf::from(value()?)),
            "--out" => o.out = PathBuf::from(value()?),
            "--svg" => o.svg = PathBuf::from(value()?),
            "--append" => o.append.push(PathBuf::from(value()?)),
            "--quick" => o.quick = true,
            "--only" => o.only = Some(value()?.split(',').map(str::to_string).collect()),
            other => return Err(fail(format!("unknown option {other:?}"))),
        }
    }
    if o.reinit.as_os_str().is_empty() {
        return Err(fail("--reinit PATH is required"));
    }
    for p in [&o.reinit, &o.fake_app] {
        if !p.is_file() {
            return Err(fail(format!("{} does not exist", p.display())));
        }
    }
    Ok(o)
}

// ---------------------------------------------------------------------------------------------
// Results

#[derive(Default, Clone)]
struct InitResult {
    name: String,
    bytes: Option<f64>,
    linkage: String,
    rss_kib: Option<f64>,
    pss_kib: Option<f64>,
    start_plain_us: Option<f64>,
    start_pid1_us: Option<f64>,
    start_failures: usize,
    sig_p50_us: Option<f64>,
    sig_p99_us: Option<f64>,
    sig_cross_p50_us: Option<f64>,
    sig_cross_p99_us: Option<f64>,
    sig_lost: usize,
    term_app_p50_us: Option<f64>,
    term_app_p99_us: Option<f64>,
    term_exit_p50_us: Option<f64>,
    term_exit_p99_us: Option<f64>,
    term_lost: usize,
    storm_wall_ms: Option<f64>,
    storm_cpu_ms: Option<f64>,
    storm_sched_ms: Option<f64>,
    storm_peak_zombies: Option<f64>,
    storm_retries: Option<f64>,
    storm_failures: usize,
    idle_vol: Option<f64>,
    idle_invol: Option<f64>,
}

#[derive(Default, Clone)]
struct WatchStats {
    latencies_ms: Vec<f64>,
    doubles: usize,
    missed: usize,
    late: usize,
    stale: usize,
    updates: usize,
    error: Option<String>,
}

#[derive(Default, Clone)]
struct WatchResult {
    name: String,
    bytes: Option<f64>,
    linkage: String,
    kube: WatchStats,
    save: WatchStats,
    rss_kib: Option<f64>,
    pss_kib: Option<f64>,
    idle_vol: Option<f64>,
    idle_invol: Option<f64>,
}

struct Report {
    inits: Vec<InitResult>,
    watch: Vec<WatchResult>,
    /// (variant, median wall time µs) of the start-up runs, bare `true` included.
    startup_abs: Vec<(String, f64)>,
    notes: Vec<String>,
    /// Rows of bench/restarts.sh's table.
    restarts: Restarts,
}

/// What reinit's bars need from bench/restarts.sh's table.
#[derive(Default)]
struct Restarts {
    stop_first: Option<RestartsRow>,
    start_first: Option<RestartsRow>,
}

#[derive(Clone, Copy)]
struct RestartsRow {
    failed: f64,
    longest_ms: f64,
}

impl Restarts {
    fn parse(md: &str) -> Restarts {
        Restarts {
            stop_first: restarts_row(md, "| `--listen`, stop-first"),
            start_first: restarts_row(md, "| `--listen`, start-first"),
        }
    }
}

/// The row of bench/restarts.sh's table (`| mode | served | failed | refused | reset | timeout
/// | short/other | restarts | run time | p99 | longest request |`) that starts with `prefix`.
fn restarts_row(md: &str, prefix: &str) -> Option<RestartsRow> {
    let line = md.lines().find(|l| l.starts_with(prefix))?;
    let cells: Vec<&str> = line.split('|').map(|c| c.trim().trim_matches('*')).collect();
    let failed = cells.get(3)?.parse().ok()?;
    let longest_ms = cells.get(11)?.strip_suffix(" ms")?.parse().ok()?;
    Some(RestartsRow { failed, longest_ms })
}

// ---------------------------------------------------------------------------------------------
// run

fn run_main(args: &[String]) -> Res<()> {
    let o = parse_opts(args)?;
    let counts = if o.quick { Counts::quick() } else { Counts::full() };
    let started = Instant::now();
    let load_before = fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let mut notes = Vec::new();
    let inits = inits(&o, &mut notes);
    let watchers = watchers(&o, &mut notes);
    let scratch = std::env::temp_dir().join(format!("reinit-bench-{}", std::process::id()));
    fs::create_dir_all(&scratch)?;

    let mut report = Report {
        inits: inits.iter().map(|i| InitResult { name: i.name.into(), ..Default::default() }).collect(),
        watch: watchers.iter().map(|w| WatchResult { name: w.name.into(), ..Default::default() }).collect(),
        startup_abs: Vec::new(),
        notes,
        restarts: Restarts::default(),
    };

    let result = measure(&o, &inits, &watchers, &counts, &scratch, &mut report);
    let _ = fs::remove_dir_all(&scratch);
    result?;

    let load_after = fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let header = header(&o, &inits, &watchers, &load_before, &load_after, started.elapsed());
    let appended = appended(&o.append);
    report.restarts = Restarts::parse(&appended);
    let mut md = render(&header, &report, o.quick);
    md.push_str(&appended);
    print!("{md}");
    if let Some(dir) = o.out.parent().filter(|d| !d.as_os_str().is_empty()) {
        fs::create_dir_all(dir)?;
    }
    fs::write(&o.out, &md)?;
    fs::write(&o.svg, chart(&header, &report))?;
    eprintln!(
        "bench: wrote {} and {} in {:.0} s",
        o.out.display(),
        o.svg.display(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// The sections `--only` asks for (all by default), in order.
fn measure(
    o: &Opts,
    inits: &[Init],
    watchers: &[Watcher],
    counts: &Counts,
    scratch: &Path,
    report: &mut Report,
) -> Res<()> {
    let wants = |s: &str| o.only.as_ref().is_none_or(|v| v.iter().any(|x| x == s));
    if wants("size") {
        progress("size");
        sizes(inits, watchers, report);
    }
    if wants("startup") {
        startup(inits, counts, report)?;
    }
    if wants("signal") {
        signal_latency(inits, o, counts, report)?;
    }
    if wants("term") {
        term(inits, o, counts, report)?;
    }
    if wants("storm") {
        storm(inits, counts, report)?;
    }
    if wants("idle") {
        idle(inits, watchers, scratch, counts, report)?;
    }
    if wants("watch") {
        watch(watchers, o, scratch, counts, report)?;
    }
    Ok(())
}

/// The `--append` files, each after a blank line (a note in place of one that cannot be read).
fn appended(files: &[PathBuf]) -> String {
    let mut appended = String::new();
    for extra in files {
        match fs::read_to_string(extra) {
            Ok(text) => {
                appended.push('\n');
                appended.push_str(&text);
            }
            Err(e) => {
                let _ = writeln!(appended, "\n(could not read {}: {e})", extra.display());
            }
        }
    }
    appended
}

fn progress(what: &str) {
    eprintln!("bench: == {what}");
}
