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
//! `signal`, `storm`, `idle`, `watch`. `BENCH_DEBUG=1` lets the tools' stderr through.
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
//! - `signal`: every init wraps a fake_app as PID 1, all at once; round robin, one sample per
//!   tool per round: `kill(init, SIGUSR1)` → fake_app's handler runs and prints `signal 10` →
//!   the driver reads that line from the pipe. 20 warm-up rounds, then 300 samples; p50/p99.
//!   Placement is fixed, as it decides the cost of each wake-up: first the driver and every
//!   init and app on one CPU, then the inits and apps on one CPU and the driver on another
//!   (each signal crosses CPUs there and back). Left free, one run differs from the next by
//!   where each process happens to land.
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
//!   reading the new app's `ready` line. Missed: no `ready` within 3 s. Double: another `ready`
//!   before the instance went 500 ms quiet. Stale: the new app read the old content. Watchers:
//!   `reinit --watch DIR -- APP`, `watchexec --restart --watch DIR -- APP`,
//!   `entr -rn APP` fed `DIR/app.conf` on stdin (its man page's way to reload a server).
#![allow(unsafe_code)]

/// The kubelet `AtomicWriter` simulator of the integration tests, shared rather than ported.
/// Included by path: it is one std-only file that the tests own and use as a module, so a
/// crate of its own would add a manifest for nothing.
#[path = "../../tests/util/kubelet.rs"]
#[allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed step is a panic there
mod kubelet;

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
            storm_orphans: 2_000,
            storm_rounds: 1,
            idle_secs: 1,
            idle_rounds: 1,
            watch_updates: 4,
        }
    }
}

/// reinit's debounce (its default) and the slack allowed on top of it.
const DEBOUNCE_MS: f64 = 100.0;
const WATCH_SLACK_MS: f64 = 10.0;
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
// Tools

/// An init and how it is invoked.
#[derive(Clone)]
struct Init {
    name: &'static str,
    path: PathBuf,
    /// Options before the command when not PID 1.
    plain: Vec<&'static str>,
    /// Options before the command as PID 1.
    pid1: Vec<&'static str>,
}

impl Init {
    fn argv(&self, pid1: bool, cmd: &[String]) -> Vec<String> {
        let mut v = vec![self.path.display().to_string()];
        v.extend(if pid1 { &self.pid1 } else { &self.plain }.iter().map(|s| s.to_string()));
        v.extend(cmd.iter().cloned());
        v
    }
}

/// `argv` as PID 1 of a new PID namespace (with its own /proc).
fn under_unshare(argv: &[String]) -> Vec<String> {
    let mut v: Vec<String> = ["unshare", "--pid", "--fork", "--mount-proc"].map(String::from).to_vec();
    v.extend(argv.iter().cloned());
    v
}

fn which(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0))
}

fn inits(o: &Opts, notes: &mut Vec<String>) -> Vec<Init> {
    let mut out = vec![Init { name: "reinit", path: o.reinit.clone(), plain: vec!["--"], pid1: vec!["--"] }];
    let peers: [(&'static str, Vec<&'static str>, Vec<&'static str>); 4] = [
        ("tini-static", vec!["-s", "--"], vec!["--"]),
        ("tini", vec!["-s", "--"], vec!["--"]),
        ("dumb-init", vec![], vec![]),
        ("catatonit", vec!["--"], vec!["--"]),
    ];
    for (name, plain, pid1) in peers {
        match which(name) {
            Some(path) => out.push(Init { name, path, plain, pid1 }),
            None => notes.push(format!("{name} is not installed: left out")),
        }
    }
    out
}

/// A config watcher wrapping an app.
#[derive(Clone, Copy, PartialEq, Eq)]
enum WatcherKind {
    Reinit,
    Watchexec,
    Entr,
}

#[derive(Clone)]
struct Watcher {
    name: &'static str,
    kind: WatcherKind,
    path: PathBuf,
}

impl Watcher {
    /// The command line and the stdin to give it, watching `dir` (whose `app.conf` is the file
    /// of interest) and running `cmd`.
    fn command(&self, dir: &Path, cmd: &[String], scratch: &Path) -> Res<(Vec<String>, Stdio)> {
        let mut v = vec![self.path.display().to_string()];
        let dir_s = dir.display().to_string();
        let stdin = match self.kind {
            WatcherKind::Reinit => {
                v.extend(["--watch".to_string(), dir_s, "--".to_string()]);
                Stdio::null()
            }
            WatcherKind::Watchexec => {
                v.extend(["--restart".to_string(), "--watch".to_string(), dir_s, "--".to_string()]);
                Stdio::null()
            }
            WatcherKind::Entr => {
                // `echo DIR/app.conf | entr -rn APP`: the file list comes on stdin.
                v.push("-rn".to_string());
                let list = scratch.join(format!("entr-list-{}", unique()));
                fs::write(&list, format!("{}\n", dir.join("app.conf").display()))?;
                Stdio::from(fs::File::open(&list)?)
            }
        };
        v.extend(cmd.iter().cloned());
        Ok((v, stdin))
    }
}

fn watchers(o: &Opts, notes: &mut Vec<String>) -> Vec<Watcher> {
    let mut out = vec![Watcher { name: "reinit", kind: WatcherKind::Reinit, path: o.reinit.clone() }];
    let watchexec = o.watchexec.clone().filter(|p| p.is_file()).or_else(|| which("watchexec"));
    match watchexec {
        Some(path) => out.push(Watcher { name: "watchexec", kind: WatcherKind::Watchexec, path }),
        None => notes.push("watchexec is not installed: left out of the watch figures".into()),
    }
    match which("entr") {
        Some(path) => out.push(Watcher { name: "entr", kind: WatcherKind::Entr, path }),
        None => notes.push("entr is not installed: left out of the watch figures".into()),
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Processes

fn unique() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}

fn debug() -> bool {
    std::env::var_os("BENCH_DEBUG").is_some_and(|v| v == "1")
}

fn send(pid: i32, sig: i32) -> bool {
    // SAFETY: kill(2) with a pid we started (or found among its descendants) and a valid signal.
    unsafe { libc::kill(pid, sig) == 0 }
}

/// The children of `pid` (all its threads'), from `/proc/PID/task/*/children`.
fn children(pid: i32) -> Vec<i32> {
    let Ok(tasks) = fs::read_dir(format!("/proc/{pid}/task")) else { return Vec::new() };
    let mut out = Vec::new();
    for t in tasks.flatten() {
        if let Ok(s) = fs::read_to_string(t.path().join("children")) {
            out.extend(s.split_whitespace().filter_map(|p| p.parse::<i32>().ok()));
        }
    }
    out
}

fn descendants(pid: i32) -> Vec<i32> {
    let mut out = Vec::new();
    let mut todo = vec![pid];
    while let Some(p) = todo.pop() {
        for c in children(p) {
            if !out.contains(&c) {
                out.push(c);
                todo.push(c);
            }
        }
    }
    out
}

/// A started tool: `pid` is the process measured (the init as seen from the host, when run
/// under unshare). Killed, with everything it started, when dropped.
struct Running {
    child: Child,
    pid: i32,
    in_namespace: bool,
    out: Option<Lines>,
}

fn start(argv: &[String], pid1: bool, stdin: Stdio, capture: bool) -> Res<Running> {
    let full = if pid1 { under_unshare(argv) } else { argv.to_vec() };
    let mut cmd = Command::new(&full[0]);
    cmd.args(&full[1..])
        .stdin(stdin)
        .stdout(if capture { Stdio::piped() } else { Stdio::null() })
        .stderr(if debug() { Stdio::inherit() } else { Stdio::null() });
    let mut child = cmd.spawn().map_err(|e| fail(format!("cannot start {}: {e}", full[0])))?;
    let out = child.stdout.take().map(Lines::new);
    let unshare = child.id() as i32;
    let mut running = Running { child, pid: unshare, in_namespace: pid1, out };
    if pid1 {
        // unshare --fork: its child becomes the namespace's PID 1 and execs the init.
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            if let Some(&c) = children(unshare).first() {
                running.pid = c;
                break;
            }
            if Instant::now() > deadline {
                return Err(fail(format!("{}: unshare started no child", argv[0])));
            }
            std::thread::sleep(Duration::from_micros(500));
        }
    }
    Ok(running)
}

impl Running {
    fn lines(&mut self) -> Res<&mut Lines> {
        self.out.as_mut().ok_or_else(|| fail("no stdout captured"))
    }

    /// Waits until the measured process has exec'd `exe` (so its stats are the tool's own).
    fn wait_exec(&self, exe: &Path, deadline: Instant) -> bool {
        let want = fs::canonicalize(exe).unwrap_or_else(|_| exe.to_path_buf());
        while Instant::now() < deadline {
            if fs::read_link(format!("/proc/{}/exe", self.pid)).is_ok_and(|p| p == want) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        false
    }

    /// Asks the tool to stop with `sig` and waits up to `grace`; then kills what is left.
    fn stop(&mut self, sig: i32, grace: Duration) {
        if matches!(self.child.try_wait(), Ok(Some(_))) {
            return;
        }
        let tree = descendants(self.pid);
        send(self.pid, sig);
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                break;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        self.kill(tree);
    }

    fn kill(&mut self, mut tree: Vec<i32>) {
        tree.extend(descendants(self.pid));
        // The init dying ends its whole PID namespace; outside one, kill what it started too.
        send(self.pid, libc::SIGKILL);
        if !self.in_namespace {
            for p in tree {
                send(p, libc::SIGKILL);
            }
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if !matches!(self.child.try_wait(), Ok(Some(_))) {
            self.kill(Vec::new());
        }
    }
}

/// Lines from a child's stdout, each with the time the read that completed it returned.
struct Lines {
    out: ChildStdout,
    buf: Vec<u8>,
    ready: VecDeque<(String, Instant)>,
    eof: bool,
}

impl Lines {
    fn new(out: ChildStdout) -> Lines {
        Lines { out, buf: Vec::new(), ready: VecDeque::new(), eof: false }
    }

    /// The next line, waiting until `deadline` at most (`None`: nothing by then, or EOF).
    fn next_until(&mut self, deadline: Instant) -> Option<(String, Instant)> {
        loop {
            if let Some(line) = self.ready.pop_front() {
                return Some(line);
            }
            if self.eof {
                return None;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            let ms = u16::try_from(left.as_micros().div_ceil(1000)).unwrap_or(u16::MAX);
            let mut fds = [PollFd::new(self.out.as_fd(), PollFlags::POLLIN)];
            match poll(&mut fds, PollTimeout::from(ms)) {
                Ok(0) if left.is_zero() => return None,
                Ok(0) | Err(nix::errno::Errno::EINTR) => continue,
                Ok(_) => {}
                Err(_) => return None,
            }
            let mut chunk = [0u8; 8192];
            match self.out.read(&mut chunk) {
                Ok(0) => self.eof = true,
                Ok(n) => {
                    let at = Instant::now();
                    self.buf.extend_from_slice(&chunk[..n]);
                    while let Some(i) = self.buf.iter().position(|&b| b == b'\n') {
                        let line: Vec<u8> = self.buf.drain(..=i).collect();
                        let text = String::from_utf8_lossy(&line[..line.len() - 1]).into_owned();
                        self.ready.push_back((text, at));
                    }
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => self.eof = true,
            }
        }
    }

    /// Skips lines until one starts with `prefix`.
    fn expect(&mut self, prefix: &str, deadline: Instant) -> Option<(String, Instant)> {
        while let Some((line, at)) = self.next_until(deadline) {
            if line.starts_with(prefix) {
                return Some((line, at));
            }
        }
        None
    }
}

// ---------------------------------------------------------------------------------------------
// /proc

fn proc_field(path: &str, key: &str) -> Option<u64> {
    let text = fs::read_to_string(path).ok()?;
    let line = text.lines().find(|l| l.starts_with(key))?;
    line[key.len()..].split_whitespace().next()?.parse().ok()
}

/// VmRSS and Pss, KiB.
fn memory(pid: i32) -> Option<(u64, u64)> {
    Some((
        proc_field(&format!("/proc/{pid}/status"), "VmRSS:")?,
        proc_field(&format!("/proc/{pid}/smaps_rollup"), "Pss:")?,
    ))
}

/// Voluntary and involuntary context switches, summed over every thread.
fn context_switches(pid: i32) -> Option<(u64, u64)> {
    let tasks = fs::read_dir(format!("/proc/{pid}/task")).ok()?;
    let (mut vol, mut invol) = (0, 0);
    for t in tasks.flatten() {
        let status = t.path().join("status").display().to_string();
        vol += proc_field(&status, "voluntary_ctxt_switches:")?;
        invol += proc_field(&status, "nonvoluntary_ctxt_switches:")?;
    }
    Some((vol, invol))
}

/// The fields of `/proc/PID/stat` after the comm (index 0 = state).
fn stat_fields(pid: i32) -> Option<Vec<String>> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 1..];
    Some(rest.split_whitespace().map(str::to_string).collect())
}

/// utime+stime of the process itself, ms.
fn cpu_ms(pid: i32) -> Option<f64> {
    let f = stat_fields(pid)?;
    let ticks: u64 = f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?;
    // SAFETY: sysconf only reads a system constant.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1);
    Some(ticks as f64 * 1000.0 / hz as f64)
}

/// Time on CPU from `/proc/PID/schedstat`, ms (ns resolution).
fn sched_ms(pid: i32) -> Option<f64> {
    let s = fs::read_to_string(format!("/proc/{pid}/schedstat")).ok()?;
    Some(s.split_whitespace().next()?.parse::<u64>().ok()? as f64 / 1e6)
}

// ---------------------------------------------------------------------------------------------
// Statistics

fn sorted(v: &[f64]) -> Vec<f64> {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    s
}

fn median(v: &[f64]) -> Option<f64> {
    let s = sorted(v);
    let n = s.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(s[n / 2]),
        _ => Some((s[n / 2 - 1] + s[n / 2]) / 2.0),
    }
}

/// Nearest-rank percentile, `p` in (0, 1].
fn percentile(v: &[f64], p: f64) -> Option<f64> {
    let s = sorted(v);
    if s.is_empty() {
        return None;
    }
    let rank = ((p * s.len() as f64).ceil() as usize).clamp(1, s.len());
    Some(s[rank - 1])
}

fn max_of(v: &[f64]) -> Option<f64> {
    v.iter().copied().reduce(f64::max)
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
    /// Failed requests during restarts with `--listen`, from bench/restarts.sh's table.
    listen_failed: Option<f64>,
}

/// The `failed` cell of the `--listen` row of bench/restarts.sh's table (`| mode | served |
/// failed | ...`), if there is one.
fn listen_failed(md: &str) -> Option<f64> {
    let line = md.lines().find(|l| l.starts_with("| `--listen`"))?;
    let cells: Vec<&str> = line.split('|').map(str::trim).collect();
    cells.get(3)?.trim_matches('*').parse().ok()
}

// ---------------------------------------------------------------------------------------------
// run

fn run_main(args: &[String]) -> Res<()> {
    let o = parse_opts(args)?;
    let counts = if o.quick { Counts::quick() } else { Counts::full() };
    let wants = |s: &str| o.only.as_ref().is_none_or(|v| v.iter().any(|x| x == s));
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
        listen_failed: None,
    };

    let result = (|| -> Res<()> {
        if wants("size") {
            progress("size");
            sizes(&inits, &watchers, &mut report);
        }
        if wants("startup") {
            startup(&inits, &counts, &mut report)?;
        }
        if wants("signal") {
            signal_latency(&inits, &o, &counts, &mut report)?;
        }
        if wants("storm") {
            storm(&inits, &counts, &mut report)?;
        }
        if wants("idle") {
            idle(&inits, &watchers, &scratch, &counts, &mut report)?;
        }
        if wants("watch") {
            watch(&watchers, &o, &scratch, &counts, &mut report)?;
        }
        Ok(())
    })();
    let _ = fs::remove_dir_all(&scratch);
    result?;

    let load_after = fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let header = header(&o, &inits, &watchers, &load_before, &load_after, started.elapsed());
    let mut appended = String::new();
    for extra in &o.append {
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
    report.listen_failed = listen_failed(&appended);
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

fn progress(what: &str) {
    eprintln!("bench: == {what}");
}

// ------------------------------------------------------------------------------------- size

fn linkage(path: &Path) -> String {
    let out = Command::new("file").arg("-L").arg("-b").arg(path).output();
    let desc = out.map(|o| String::from_utf8_lossy(&o.stdout).into_owned()).unwrap_or_default();
    let pie = if desc.contains("pie executable") { ", PIE" } else { "" };
    if desc.contains("statically linked") || desc.contains("static-pie linked") {
        format!("static{pie}")
    } else if desc.contains("dynamically linked") {
        format!("dynamic{pie}: + libc.so.6")
    } else if desc.is_empty() {
        "?".into()
    } else {
        desc.split(',').next().unwrap_or("?").trim().to_string()
    }
}

fn file_bytes(path: &Path) -> Option<f64> {
    fs::metadata(path).ok().map(|m| m.len() as f64)
}

fn sizes(inits: &[Init], watchers: &[Watcher], report: &mut Report) {
    for (i, init) in inits.iter().enumerate() {
        report.inits[i].bytes = file_bytes(&init.path);
        report.inits[i].linkage = linkage(&init.path);
    }
    for (i, w) in watchers.iter().enumerate() {
        report.watch[i].bytes = file_bytes(&w.path);
        report.watch[i].linkage = linkage(&w.path);
    }
}

// ---------------------------------------------------------------------------------- startup

fn startup(inits: &[Init], c: &Counts, report: &mut Report) -> Res<()> {
    let truth = vec!["true".to_string()];
    // variant: (label, init index or None for bare, pid1, argv)
    let mut variants: Vec<(String, Option<usize>, bool, Vec<String>)> = Vec::new();
    for pid1 in [false, true] {
        let mode = if pid1 { "PID 1" } else { "not PID 1" };
        let bare = if pid1 { under_unshare(&truth) } else { truth.clone() };
        variants.push((format!("`{}` ({mode})", bare.join(" ")), None, pid1, bare));
        for (i, init) in inits.iter().enumerate() {
            let argv = init.argv(pid1, &truth);
            let argv = if pid1 { under_unshare(&argv) } else { argv };
            variants.push((format!("{} ({mode})", init.name), Some(i), pid1, argv));
        }
    }
    let mut samples: Vec<Vec<f64>> = vec![Vec::new(); variants.len()];
    let mut failures = vec![0usize; variants.len()];
    let rounds = c.startup_runs.div_ceil(c.startup_block);
    for round in 0..rounds {
        if round % 5 == 0 {
            progress(&format!(
                "startup: round {}/{rounds} ({} variants, blocks of {})",
                round + 1,
                variants.len(),
                c.startup_block
            ));
        }
        // Rotate the order each round so no variant always follows the same one.
        for k in 0..variants.len() {
            let v = (k + round) % variants.len();
            let argv = &variants[v].3;
            for _ in 0..c.startup_block {
                let t0 = Instant::now();
                let status = Command::new(&argv[0])
                    .args(&argv[1..])
                    .stdin(Stdio::null())
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .status();
                let dt = t0.elapsed();
                match status {
                    Ok(s) if s.success() => samples[v].push(dt.as_secs_f64() * 1e6),
                    _ => failures[v] += 1,
                }
            }
        }
    }
    let med: Vec<Option<f64>> = samples.iter().map(|s| median(s)).collect();
    for (v, (label, _, _, _)) in variants.iter().enumerate() {
        if let Some(m) = med[v] {
            report.startup_abs.push((label.clone(), m));
        }
    }
    for pid1 in [false, true] {
        let bare = variants.iter().position(|v| v.1.is_none() && v.2 == pid1).and_then(|v| med[v]);
        for (v, variant) in variants.iter().enumerate() {
            let (Some(i), true) = (variant.1, variant.2 == pid1) else { continue };
            let overhead = match (med[v], bare) {
                (Some(m), Some(b)) => Some(m - b),
                _ => None,
            };
            let r = &mut report.inits[i];
            if pid1 {
                r.start_pid1_us = overhead;
            } else {
                r.start_plain_us = overhead;
            }
            r.start_failures += failures[v];
        }
    }
    Ok(())
}

// ----------------------------------------------------------------------------------- signal

fn signal_latency(inits: &[Init], o: &Opts, c: &Counts, report: &mut Report) -> Res<()> {
    // Placement decides the cost of a wake-up (on an idle VM, waking another vCPU costs more
    // than the inits' own work), so it is fixed, not left to chance: pass 1 runs the driver,
    // every init and every app on one CPU; pass 2 runs the inits and apps on one CPU and the
    // driver on another (each signal crosses CPUs there and back).
    let cpus = allowed_cpus();
    let (Some(&first), Some(&last)) = (cpus.first(), cpus.last()) else {
        return Err(fail("cannot read this process's CPU affinity"));
    };
    let old = pin_to(last)?;
    let mut result = signal_pass(inits, o, c, last, false, report);
    if result.is_ok() {
        if first != last {
            result = signal_pass(inits, o, c, first, true, report);
        } else {
            report.notes.push("one CPU only: no cross-CPU signal figures".into());
        }
    }
    restore_affinity(&old);
    result
}

/// One pass; on entry this process runs on the CPU the tools get, and it moves to
/// `driver_cpu` once they are started.
fn signal_pass(
    inits: &[Init],
    o: &Opts,
    c: &Counts,
    driver_cpu: usize,
    cross: bool,
    report: &mut Report,
) -> Res<()> {
    progress(&format!(
        "signal: {} inits as PID 1, {} samples each, round robin, {}",
        inits.len(),
        c.signal_samples,
        if cross { "driver and tools on different CPUs" } else { "all on one CPU" }
    ));
    let app = vec![o.fake_app.display().to_string()];
    let mut running = Vec::new();
    for init in inits {
        let mut r = start(&init.argv(true, &app), true, Stdio::null(), true)?;
        let deadline = Instant::now() + Duration::from_secs(10);
        if r.lines()?.expect("ready", deadline).is_none() {
            return Err(fail(format!("{}: fake_app never became ready", init.name)));
        }
        running.push(r);
    }
    let _tools_cpu = pin_to(driver_cpu)?;
    let mut samples: Vec<Vec<f64>> = vec![Vec::new(); inits.len()];
    let mut lost = vec![0usize; inits.len()];
    for round in 0..(c.signal_warmup + c.signal_samples) {
        for k in 0..running.len() {
            let i = (k + round) % running.len();
            let r = &mut running[i];
            let t0 = Instant::now();
            send(r.pid, libc::SIGUSR1);
            match r.lines()?.expect("signal 10", t0 + Duration::from_secs(2)) {
                Some((_, at)) if round >= c.signal_warmup => {
                    samples[i].push(at.duration_since(t0).as_secs_f64() * 1e6)
                }
                Some(_) => {}
                None => lost[i] += 1,
            }
        }
    }
    for (i, r) in running.iter_mut().enumerate() {
        r.stop(libc::SIGTERM, Duration::from_secs(3));
        let res = &mut report.inits[i];
        let (p50, p99) = (percentile(&samples[i], 0.50), percentile(&samples[i], 0.99));
        if cross {
            (res.sig_cross_p50_us, res.sig_cross_p99_us) = (p50, p99);
        } else {
            (res.sig_p50_us, res.sig_p99_us) = (p50, p99);
        }
        res.sig_lost += lost[i];
    }
    Ok(())
}

/// The CPUs this process may run on.
fn allowed_cpus() -> Vec<usize> {
    // SAFETY: a zeroed cpu_set_t is an empty set; sched_getaffinity fills it.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: a valid pointer to a cpu_set_t of the size passed.
    let rc = unsafe { libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) };
    if rc != 0 {
        return Vec::new();
    }
    // SAFETY: CPU_ISSET only reads the set.
    (0..libc::CPU_SETSIZE as usize).filter(|&c| unsafe { libc::CPU_ISSET(c, &set) }).collect()
}

/// Runs this process (and what it starts from now on) on `cpu` only; returns the old mask.
fn pin_to(cpu: usize) -> Res<libc::cpu_set_t> {
    // SAFETY: zeroed sets are empty; the calls get valid pointers of the size passed.
    unsafe {
        let mut old: libc::cpu_set_t = std::mem::zeroed();
        if libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut old) != 0 {
            return Err(std::io::Error::last_os_error().into());
        }
        let mut one: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut one);
        if libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &one) != 0 {
            return Err(std::io::Error::last_os_error().into());
        }
        Ok(old)
    }
}

fn restore_affinity(mask: &libc::cpu_set_t) {
    // SAFETY: a valid cpu_set_t of the size passed.
    unsafe { libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), mask) };
}

// ------------------------------------------------------------------------------------ storm

fn storm(inits: &[Init], c: &Counts, report: &mut Report) -> Res<()> {
    let me = std::env::current_exe()?.display().to_string();
    let app = vec![me, "storm".to_string(), c.storm_orphans.to_string()];
    let n = inits.len();
    // per init: wall, cpu, sched, peak, retries
    let mut m: Vec<[Vec<f64>; 5]> = vec![Default::default(); n];
    for round in 0..c.storm_rounds {
        for k in 0..n {
            let i = (k + round) % n;
            progress(&format!(
                "storm: round {}/{}: {} ({} orphans)",
                round + 1,
                c.storm_rounds,
                inits[i].name,
                c.storm_orphans
            ));
            match storm_once(&inits[i], &app) {
                Ok(s) => {
                    for (slot, value) in m[i].iter_mut().zip(s) {
                        slot.push(value);
                    }
                }
                Err(e) => {
                    eprintln!("bench: storm under {}: {e}", inits[i].name);
                    report.inits[i].storm_failures += 1;
                }
            }
        }
    }
    for (i, s) in m.iter().enumerate() {
        let r = &mut report.inits[i];
        r.storm_wall_ms = median(&s[0]);
        r.storm_cpu_ms = median(&s[1]);
        r.storm_sched_ms = median(&s[2]);
        r.storm_peak_zombies = max_of(&s[3]);
        r.storm_retries = max_of(&s[4]);
    }
    Ok(())
}

fn storm_once(init: &Init, app: &[String]) -> Res<[f64; 5]> {
    let mut r = start(&init.argv(true, app), true, Stdio::null(), true)?;
    let (line, _) = r
        .lines()?
        .expect("storm ", Instant::now() + Duration::from_secs(150))
        .ok_or_else(|| fail("the storm app said nothing"))?;
    // Read the init's CPU now: every orphan is reaped, the init has not begun to exit.
    let cpu = cpu_ms(r.pid).ok_or_else(|| fail("cannot read the init's /proc/PID/stat"))?;
    let sched = sched_ms(r.pid).unwrap_or(f64::NAN);
    r.stop(libc::SIGTERM, Duration::from_secs(5));
    if !line.starts_with("storm done") {
        return Err(fail(line));
    }
    let field = |key: &str| -> Res<f64> {
        line.split_whitespace()
            .find_map(|kv| kv.strip_prefix(key))
            .and_then(|v| v.parse::<f64>().ok())
            .ok_or_else(|| fail(format!("no {key} in {line:?}")))
    };
    Ok([field("wall_us=")? / 1000.0, cpu, sched, field("peak_zombies=")?, field("retries=")?])
}

/// The storm app: `n` orphans, then wait until the init has reaped them all.
fn storm_main(args: &[String]) -> Res<()> {
    let n: u32 = args.first().and_then(|s| s.parse().ok()).ok_or_else(|| fail("usage: bench storm N"))?;
    let me = std::process::id() as i32;
    let start = Instant::now();
    let mut peak = 0usize;
    let mut retries = 0u64;
    let mut i = 0;
    while i < n {
        // SAFETY: this process is single-threaded; the child only forks again and _exits, both
        // async-signal-safe.
        let pid = unsafe { libc::fork() };
        if pid == 0 {
            // SAFETY: as above. Both the child and the grandchild leave at once; the grandchild
            // is the orphan. A failed inner fork is reported through the exit status.
            unsafe {
                let grandchild = libc::fork();
                libc::_exit(i32::from(grandchild < 0));
            }
        }
        if pid < 0 {
            // EAGAIN: the pid space is full of zombies the init has not reaped yet.
            retries += 1;
            std::thread::sleep(Duration::from_millis(1));
            continue;
        }
        let mut status = 0;
        // SAFETY: waiting for our own child with a valid status pointer.
        unsafe { libc::waitpid(pid, &mut status, 0) };
        if !(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0) {
            retries += 1;
            continue;
        }
        if i % STORM_SAMPLE_EVERY == 0 {
            peak = peak.max(census(me).1);
        }
        i += 1;
    }
    let forked = start.elapsed();
    let deadline = start + Duration::from_secs(120);
    let mut left;
    loop {
        let (others, zombies) = census(me);
        peak = peak.max(zombies);
        left = others;
        if others == 0 || Instant::now() > deadline {
            break;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    let wall = start.elapsed();
    let mut out = std::io::stdout().lock();
    if left == 0 {
        writeln!(
            out,
            "storm done wall_us={} fork_us={} peak_zombies={peak} retries={retries}",
            wall.as_micros(),
            forked.as_micros()
        )?;
    } else {
        writeln!(out, "storm timeout: {left} processes still not reaped after {} s", wall.as_secs())?;
    }
    out.flush()?;
    drop(out);
    // Wait to be stopped (the init forwards the driver's SIGTERM); a safety net ends it anyway.
    std::thread::sleep(Duration::from_secs(60));
    Ok(())
}

/// Processes in our PID namespace other than PID 1 and us, and how many of them are zombies.
fn census(me: i32) -> (usize, usize) {
    let Ok(dir) = fs::read_dir("/proc") else { return (0, 0) };
    let (mut others, mut zombies) = (0, 0);
    for e in dir.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else { continue };
        if pid == 1 || pid == me {
            continue;
        }
        others += 1;
        if stat_fields(pid).is_some_and(|f| f.first().is_some_and(|s| s == "Z")) {
            zombies += 1;
        }
    }
    (others, zombies)
}

// ------------------------------------------------------------------------------------- idle

fn idle(inits: &[Init], watchers: &[Watcher], scratch: &Path, c: &Counts, report: &mut Report) -> Res<()> {
    let sleep = vec!["sleep".to_string(), "1000".to_string()];
    let n_i = inits.len();
    let total = n_i + watchers.len();
    // per tool: rss, pss, vol, invol
    let mut m: Vec<[Vec<f64>; 4]> = vec![Default::default(); total];
    for round in 0..c.idle_rounds {
        progress(&format!(
            "idle: round {}/{}: {total} tools at once, {} s window",
            round + 1,
            c.idle_rounds,
            c.idle_secs
        ));
        let mut running: Vec<(Running, PathBuf)> = Vec::new();
        for init in inits {
            running.push((start(&init.argv(true, &sleep), true, Stdio::null(), false)?, init.path.clone()));
        }
        for w in watchers {
            let dir = scratch.join(format!("idle-{}-{round}", w.name));
            fs::create_dir_all(&dir)?;
            fs::write(dir.join("app.conf"), "v0\n")?;
            let (argv, stdin) = w.command(&dir, &sleep, scratch)?;
            running.push((start(&argv, false, stdin, false)?, w.path.clone()));
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        for (r, exe) in &running {
            r.wait_exec(exe, deadline);
        }
        // Let every tool finish starting its child and settle.
        std::thread::sleep(Duration::from_secs(1));
        let before: Vec<Option<(u64, u64)>> = running.iter().map(|(r, _)| context_switches(r.pid)).collect();
        std::thread::sleep(Duration::from_secs(c.idle_secs));
        let after: Vec<Option<(u64, u64)>> = running.iter().map(|(r, _)| context_switches(r.pid)).collect();
        for (t, (r, _)) in running.iter().enumerate() {
            if let Some((rss, pss)) = memory(r.pid) {
                m[t][0].push(rss as f64);
                m[t][1].push(pss as f64);
            }
            if let (Some(b), Some(a)) = (before[t], after[t]) {
                m[t][2].push(a.0.saturating_sub(b.0) as f64);
                m[t][3].push(a.1.saturating_sub(b.1) as f64);
            }
        }
        for (r, _) in &mut running {
            r.stop(libc::SIGKILL, Duration::from_secs(2));
        }
    }
    for (t, s) in m.iter().enumerate() {
        let (rss, pss, vol, invol) = (median(&s[0]), median(&s[1]), max_of(&s[2]), max_of(&s[3]));
        if t < n_i {
            let r = &mut report.inits[t];
            (r.rss_kib, r.pss_kib, r.idle_vol, r.idle_invol) = (rss, pss, vol, invol);
        } else {
            let r = &mut report.watch[t - n_i];
            (r.rss_kib, r.pss_kib, r.idle_vol, r.idle_invol) = (rss, pss, vol, invol);
        }
    }
    Ok(())
}

// ------------------------------------------------------------------------------------ watch

#[derive(Clone, Copy, PartialEq, Eq)]
enum Scenario {
    Kube,
    Save,
}

struct Instance {
    watcher: usize,
    scenario: Scenario,
    dir: PathBuf,
    kube: Option<Kubelet>,
    running: Running,
    version: u32,
    stats: WatchStats,
    last_ready: Instant,
    /// Whether the last update was answered (so a further `ready` is a double, not late).
    answered: bool,
}

fn payload(version: u32) -> Vec<(&'static str, Vec<u8>)> {
    vec![("app.conf", format!("v{version}\n").into_bytes()), ("other.conf", b"unchanged\n".to_vec())]
}

impl Instance {
    fn publish(&mut self) -> Res<Instant> {
        self.version += 1;
        let p = payload(self.version);
        match &mut self.kube {
            Some(k) => {
                let payload: Vec<(&str, &[u8])> =
                    p.iter().map(|(key, data)| (*key, data.as_slice())).collect();
                if !k.write(&payload) {
                    return Err(fail("kubelet: nothing to publish"));
                }
                k.last_swap().ok_or_else(|| fail("kubelet: no swap"))
            }
            None => save_via_rename(&self.dir.join("app.conf"), &p[0].1),
        }
    }

    /// Waits until the instance has been quiet for [`QUIET`] since its last `ready`, counting
    /// every further `ready` as a double (or late, after a miss).
    fn settle(&mut self) -> Res<()> {
        loop {
            let until = (self.last_ready + QUIET).max(Instant::now());
            let Some((line, at)) = self.running.lines()?.next_until(until) else { return Ok(()) };
            if line.starts_with("ready") {
                if self.answered {
                    self.stats.doubles += 1;
                } else {
                    self.stats.late += 1;
                }
                self.last_ready = at;
            }
        }
    }

    /// One update and its answer.
    fn update(&mut self) -> Res<()> {
        self.settle()?;
        let t0 = self.publish()?;
        let want = format!("=v{}\\n", self.version);
        let mut config_ok = false;
        self.stats.updates += 1;
        loop {
            match self.running.lines()?.next_until(t0 + MISS_AFTER) {
                Some((line, _)) if line.starts_with("config ") => config_ok = line.ends_with(&want),
                Some((line, at)) if line.starts_with("ready") => {
                    self.stats.latencies_ms.push(at.duration_since(t0).as_secs_f64() * 1e3);
                    if !config_ok {
                        self.stats.stale += 1;
                    }
                    self.last_ready = at;
                    self.answered = true;
                    return Ok(());
                }
                Some(_) => {}
                None => {
                    self.stats.missed += 1;
                    self.answered = false;
                    return Ok(());
                }
            }
        }
    }
}

fn watch(watchers: &[Watcher], o: &Opts, scratch: &Path, c: &Counts, report: &mut Report) -> Res<()> {
    progress(&format!(
        "watch: {} watchers x 2 scenarios, {} updates each, round robin",
        watchers.len(),
        c.watch_updates
    ));
    let mut instances = Vec::new();
    for (w, watcher) in watchers.iter().enumerate() {
        for scenario in [Scenario::Kube, Scenario::Save] {
            let tag = if scenario == Scenario::Kube { "kube" } else { "save" };
            let dir = scratch.join(format!("watch-{}-{tag}", watcher.name));
            fs::create_dir_all(&dir)?;
            let mut kube = None;
            match scenario {
                Scenario::Kube => {
                    let mut k = Kubelet::new(&dir, kubelet::Options::default());
                    let p0 = payload(0);
                    let first: Vec<(&str, &[u8])> =
                        p0.iter().map(|(key, data)| (*key, data.as_slice())).collect();
                    if !k.write(&first) {
                        return Err(fail("kubelet: the first write published nothing"));
                    }
                    kube = Some(k);
                }
                Scenario::Save => {
                    for (key, data) in payload(0) {
                        fs::write(dir.join(key), data)?;
                    }
                }
            }
            let app = vec![
                o.fake_app.display().to_string(),
                "--config".into(),
                dir.join("app.conf").display().to_string(),
            ];
            let (argv, stdin) = watcher.command(&dir, &app, scratch)?;
            let mut running = start(&argv, false, stdin, true)?;
            let first = running.lines()?.expect("ready", Instant::now() + Duration::from_secs(10));
            let Some((_, at)) = first else {
                let stats = WatchStats { error: Some("never started the app".into()), ..Default::default() };
                set_watch(report, w, scenario, stats);
                continue;
            };
            instances.push(Instance {
                watcher: w,
                scenario,
                dir,
                kube,
                running,
                version: 0,
                stats: WatchStats::default(),
                last_ready: at,
                answered: true,
            });
        }
    }
    for round in 0..c.watch_updates {
        if round % 10 == 0 {
            progress(&format!("watch: update {}/{}", round + 1, c.watch_updates));
        }
        let n = instances.len();
        for k in 0..n {
            let i = (k + round) % n;
            if let Err(e) = instances[i].update() {
                instances[i].stats.error = Some(e.to_string());
            }
        }
    }
    for inst in &mut instances {
        let _ = inst.settle();
        if debug() {
            let tag = if inst.scenario == Scenario::Kube { "kube" } else { "save" };
            let lat: Vec<String> = inst.stats.latencies_ms.iter().map(|v| format!("{v:.1}")).collect();
            eprintln!("bench: {} {tag}: {}", watchers[inst.watcher].name, lat.join(" "));
        }
        inst.running.stop(libc::SIGTERM, Duration::from_secs(3));
        set_watch(report, inst.watcher, inst.scenario, inst.stats.clone());
    }
    Ok(())
}

fn set_watch(report: &mut Report, w: usize, scenario: Scenario, stats: WatchStats) {
    match scenario {
        Scenario::Kube => report.watch[w].kube = stats,
        Scenario::Save => report.watch[w].save = stats,
    }
}

/// An editor's save: write `.NAME.RANDOM.tmp` next to `path`, rename it over `path`. Returns
/// the time just before the rename.
fn save_via_rename(path: &Path, content: &[u8]) -> Res<Instant> {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let tmp = path.with_file_name(format!(".{name}.{}.tmp", Rng::new().next_u32()));
    fs::OpenOptions::new().write(true).create_new(true).mode(0o644).open(&tmp)?.write_all(content)?;
    let t0 = Instant::now();
    fs::rename(&tmp, path)?;
    Ok(t0)
}

// ----------------------------------------------------------------------------------- report

struct Header {
    date: String,
    kernel: String,
    cpu: String,
    cores: usize,
    load_before: String,
    load_after: String,
    duration: Duration,
    versions: Vec<(String, String)>,
}

fn first_line(cmd: &str, args: &[&str]) -> String {
    Command::new(cmd)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .ok()
        .map(|o| {
            let text = if o.stdout.is_empty() { o.stderr } else { o.stdout };
            String::from_utf8_lossy(&text).lines().next().unwrap_or("").trim().to_string()
        })
        .unwrap_or_default()
}

fn deb_version(pkg: &str) -> String {
    let v = first_line("dpkg-query", &["-W", "-f", "${Version}", pkg]);
    if v.is_empty() { "?".into() } else { format!("Debian {v}") }
}

fn header(
    o: &Opts,
    inits: &[Init],
    watchers: &[Watcher],
    load_before: &str,
    load_after: &str,
    duration: Duration,
) -> Header {
    let secs = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let (y, mo, d) = civil_from_days((secs / 86_400) as i64);
    let rem = secs % 86_400;
    let cpu = fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
        })
        .unwrap_or_else(|| "?".into());
    let kernel = fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default().trim().to_string();
    let mut reinit = first_line(&o.reinit.display().to_string(), &["--version"]);
    let commit = first_line("git", &["rev-parse", "--short", "HEAD"]);
    if !commit.is_empty() && !commit.contains(' ') {
        let dirty = !first_line("git", &["status", "--porcelain", "--", "src", "Cargo.toml", "Cargo.lock"])
            .is_empty();
        reinit = format!(
            "{reinit} (commit {commit}{})",
            if dirty { ", src/ with uncommitted changes" } else { "" }
        );
    }
    // Which binary exactly: the tree may change while a run goes on.
    let desc = first_line("file", &["-b", &o.reinit.display().to_string()]);
    if let Some(id) = desc.split(", ").find_map(|f| f.strip_prefix("BuildID[sha1]=")) {
        reinit = format!("{reinit} [BuildID {}]", &id[..id.len().min(12)]);
    }
    let mut versions = vec![("reinit".to_string(), reinit)];
    for init in inits.iter().skip(1) {
        let pkg = if init.name.starts_with("tini") { "tini" } else { init.name };
        versions.push((init.name.to_string(), deb_version(pkg)));
    }
    for w in watchers.iter().skip(1) {
        let v = match w.kind {
            WatcherKind::Watchexec => first_line(&w.path.display().to_string(), &["--version"]),
            _ => deb_version(w.name),
        };
        versions.push((w.name.to_string(), v));
    }
    Header {
        date: format!("{y:04}-{mo:02}-{d:02} {:02}:{:02} UTC", rem / 3600, rem % 3600 / 60),
        kernel: format!("Linux {kernel}"),
        cpu,
        cores: std::thread::available_parallelism().map_or(0, |n| n.get()),
        load_before: load_before.split_whitespace().take(3).collect::<Vec<_>>().join(" "),
        load_after: load_after.split_whitespace().take(3).collect::<Vec<_>>().join(" "),
        duration,
        versions,
    }
}

fn ratio(v: Option<f64>, base: Option<f64>) -> Option<f64> {
    match (v, base) {
        (Some(v), Some(b)) if b > 0.0 && v >= 0.0 => Some(v / b),
        _ => None,
    }
}

fn fmt_ratio(r: Option<f64>) -> String {
    match r {
        Some(r) if r >= 10.0 => format!("{r:.0}×"),
        Some(r) => format!("{r:.2}×"),
        None => "—".into(),
    }
}

fn cell(v: Option<f64>, base: Option<f64>, fmt: &dyn Fn(f64) -> String) -> String {
    match v {
        Some(x) => format!("{} ({})", fmt(x), fmt_ratio(ratio(v, base))),
        None => "n/a".into(),
    }
}

fn kib(x: f64) -> String {
    format!("{x:.0} KiB")
}
fn us(x: f64) -> String {
    format!("{x:.0} µs")
}
fn ms(x: f64) -> String {
    if x.abs() >= 100.0 { format!("{x:.0} ms") } else { format!("{x:.1} ms") }
}
fn count(x: f64) -> String {
    format!("{x:.0}")
}
fn size(x: f64) -> String {
    format!("{:.1} KiB", x / 1024.0)
}

/// One table row: the figure, then each tool's value with its ratio to the tool at `base`.
fn row(out: &mut String, label: &str, values: &[Option<f64>], base: usize, fmt: &dyn Fn(f64) -> String) {
    let b = values.get(base).copied().flatten();
    let cells: Vec<String> = values.iter().map(|v| cell(*v, b, fmt)).collect();
    let _ = writeln!(out, "| {label} | {} |", cells.join(" | "));
}

/// A bar reinit is held to: (figure, reinit's value, what it is held against, met?).
struct Bar {
    figure: String,
    value: String,
    bar: String,
    met: Option<bool>,
}

fn bars(r: &Report) -> Vec<Bar> {
    let mut out = Vec::new();
    let (Some(me), tini) = (r.inits.first(), r.inits.iter().find(|i| i.name == "tini-static")) else {
        return out;
    };
    let mut cmp = |figure: &str,
                   v: Option<f64>,
                   t: Option<f64>,
                   factor: f64,
                   strict: bool,
                   fmt: &dyn Fn(f64) -> String| {
        let met = match (v, t) {
            (Some(v), Some(t)) => Some(if strict { v < t * factor } else { v <= t * factor }),
            _ => None,
        };
        let op = if strict { "<" } else { "≤" };
        let scale = if factor == 1.0 { String::new() } else { format!("{factor} × ") };
        out.push(Bar {
            figure: figure.into(),
            value: v.map_or("n/a".into(), fmt),
            bar: format!("{op} {scale}tini-static ({})", t.map_or("n/a".into(), fmt)),
            met,
        });
    };
    let t = |f: fn(&InitResult) -> Option<f64>| tini.and_then(f);
    cmp("static binary size", me.bytes, t(|i| i.bytes), 1.0, true, &size);
    cmp("idle VmRSS", me.rss_kib, t(|i| i.rss_kib), 1.0, false, &kib);
    cmp("idle Pss", me.pss_kib, t(|i| i.pss_kib), 1.0, false, &kib);
    cmp("start-up overhead, not PID 1", me.start_plain_us, t(|i| i.start_plain_us), 1.0, false, &us);
    cmp("start-up overhead, PID 1", me.start_pid1_us, t(|i| i.start_pid1_us), 1.0, false, &us);
    cmp("signal forward p50, one CPU", me.sig_p50_us, t(|i| i.sig_p50_us), 1.1, false, &us);
    cmp("signal forward p99, one CPU", me.sig_p99_us, t(|i| i.sig_p99_us), 1.1, false, &us);
    cmp("signal forward p50, cross-CPU", me.sig_cross_p50_us, t(|i| i.sig_cross_p50_us), 1.1, false, &us);
    cmp("signal forward p99, cross-CPU", me.sig_cross_p99_us, t(|i| i.sig_cross_p99_us), 1.1, false, &us);
    cmp("storm: init CPU (utime+stime)", me.storm_cpu_ms, t(|i| i.storm_cpu_ms), 1.0, false, &ms);
    cmp("storm: peak zombies", me.storm_peak_zombies, t(|i| i.storm_peak_zombies), 1.0, false, &count);
    out.push(Bar {
        figure: "idle wake-ups (voluntary ctx switches / window)".into(),
        value: me.idle_vol.map_or("n/a".into(), count),
        bar: "= 0".into(),
        met: me.idle_vol.map(|v| v == 0.0),
    });
    if let Some(w) = r.watch.first() {
        let limit = DEBOUNCE_MS + WATCH_SLACK_MS;
        for (name, s) in [("kubelet `..data` swap", &w.kube), ("rename save", &w.save)] {
            for (what, v) in [("median", median(&s.latencies_ms)), ("p99", percentile(&s.latencies_ms, 0.99))]
            {
                out.push(Bar {
                    figure: format!("change → action, {name}, {what}"),
                    value: v.map_or("n/a".into(), ms),
                    bar: format!("≤ {limit:.0} ms (debounce + 10 ms)"),
                    met: v.map(|v| v <= limit),
                });
            }
            out.push(Bar {
                figure: format!("change → action, {name}: double / missed"),
                value: format!("{} / {}", s.doubles, s.missed),
                bar: "0 / 0".into(),
                met: (s.updates > 0).then_some(s.doubles == 0 && s.missed == 0 && s.error.is_none()),
            });
        }
    }
    if let Some(failed) = r.listen_failed {
        out.push(Bar {
            figure: "restarts under load: failed requests with `--listen`".into(),
            value: count(failed),
            bar: "= 0".into(),
            met: Some(failed == 0.0),
        });
    }
    out
}

fn render(h: &Header, r: &Report, quick: bool) -> String {
    let mut md = String::new();
    let _ = writeln!(md, "# reinit benchmarks\n");
    if quick {
        let _ = writeln!(md, "**QUICK RUN (`--quick`): small counts, figures not meaningful.**\n");
    }
    let _ = writeln!(
        md,
        "{} · {} · {} ({} cores) · load average {} before, {} after · {:.0} s\n",
        h.date,
        h.kernel,
        h.cpu,
        h.cores,
        h.load_before,
        h.load_after,
        h.duration.as_secs_f64()
    );
    let versions: Vec<String> = h.versions.iter().map(|(n, v)| format!("{n} {v}")).collect();
    let _ = writeln!(md, "Versions: {}.\n", versions.join(" · "));
    let _ = writeln!(
        md,
        "Produced by `bench/run.sh` (driver: `bench/src/main.rs`, whose header documents each method).\n"
    );

    // The bars.
    let _ = writeln!(md, "## reinit against its bars\n");
    let _ = writeln!(md, "| figure | reinit | bar | met |\n|---|---|---|---|");
    for b in bars(r) {
        let met = match b.met {
            Some(true) => "yes",
            Some(false) => "**no**",
            None => "n/a",
        };
        let _ = writeln!(md, "| {} | {} | {} | {met} |", b.figure, b.value, b.bar);
    }

    // Inits.
    let base = r.inits.iter().position(|i| i.name == "tini-static").unwrap_or(0);
    let _ = writeln!(md, "\n## As an init (ratio to tini-static; lower is better)\n");
    let names: Vec<&str> = r.inits.iter().map(|i| i.name.as_str()).collect();
    let _ = writeln!(md, "| figure | {} |", names.join(" | "));
    let _ = writeln!(md, "|---|{}", "---|".repeat(names.len()));
    let col = |f: fn(&InitResult) -> Option<f64>| -> Vec<Option<f64>> { r.inits.iter().map(f).collect() };
    let links: Vec<String> =
        r.inits.iter().map(|i| if i.linkage.is_empty() { "?".into() } else { i.linkage.clone() }).collect();
    let _ = writeln!(md, "| linkage (`file`) | {} |", links.join(" | "));
    row(&mut md, "binary size", &col(|i| i.bytes), base, &size);
    row(&mut md, "idle VmRSS (PID 1, wrapping `sleep`)", &col(|i| i.rss_kib), base, &kib);
    row(&mut md, "idle Pss", &col(|i| i.pss_kib), base, &kib);
    row(&mut md, "start-up overhead, not PID 1 (median)", &col(|i| i.start_plain_us), base, &us);
    row(&mut md, "start-up overhead, PID 1 (median)", &col(|i| i.start_pid1_us), base, &us);
    row(&mut md, "signal forward latency p50, one CPU", &col(|i| i.sig_p50_us), base, &us);
    row(&mut md, "signal forward latency p99, one CPU", &col(|i| i.sig_p99_us), base, &us);
    row(&mut md, "signal forward latency p50, cross-CPU", &col(|i| i.sig_cross_p50_us), base, &us);
    row(&mut md, "signal forward latency p99, cross-CPU", &col(|i| i.sig_cross_p99_us), base, &us);
    row(&mut md, "SIGCHLD storm: wall time", &col(|i| i.storm_wall_ms), base, &ms);
    row(&mut md, "SIGCHLD storm: init CPU, utime+stime", &col(|i| i.storm_cpu_ms), base, &ms);
    row(
        &mut md,
        "SIGCHLD storm: init CPU, schedstat",
        &col(|i| i.storm_sched_ms.filter(|v| v.is_finite())),
        base,
        &ms,
    );
    row(&mut md, "SIGCHLD storm: peak zombies", &col(|i| i.storm_peak_zombies), base, &count);
    row(&mut md, "idle wake-ups: voluntary ctx switches / window", &col(|i| i.idle_vol), base, &count);
    row(&mut md, "idle wake-ups: involuntary ctx switches / window", &col(|i| i.idle_invol), base, &count);
    let problems: Vec<String> = r
        .inits
        .iter()
        .filter(|i| {
            i.start_failures + i.sig_lost + i.storm_failures > 0 || i.storm_retries.is_some_and(|v| v > 0.0)
        })
        .map(|i| {
            format!(
                "{}: {} failed start-up runs, {} lost signals, {} failed storms, {} fork retries",
                i.name,
                i.start_failures,
                i.sig_lost,
                i.storm_failures,
                i.storm_retries.unwrap_or(0.0)
            )
        })
        .collect();
    if !problems.is_empty() {
        let _ = writeln!(md, "\nProblems: {}.", problems.join("; "));
    }

    // Watchers.
    if !r.watch.is_empty() {
        let wbase = r.watch.iter().position(|w| w.name == "watchexec");
        let _ = writeln!(md, "\n## As a config watcher (ratio to watchexec; lower is better)\n");
        let names: Vec<&str> = r.watch.iter().map(|w| w.name.as_str()).collect();
        let _ = writeln!(md, "| figure | {} |", names.join(" | "));
        let _ = writeln!(md, "|---|{}", "---|".repeat(names.len()));
        let wb = wbase.unwrap_or(usize::MAX);
        let col =
            |f: &dyn Fn(&WatchResult) -> Option<f64>| -> Vec<Option<f64>> { r.watch.iter().map(f).collect() };
        let links: Vec<String> = r
            .watch
            .iter()
            .map(|w| if w.linkage.is_empty() { "?".into() } else { w.linkage.clone() })
            .collect();
        let _ = writeln!(md, "| linkage (`file`) | {} |", links.join(" | "));
        row(&mut md, "binary size", &col(&|w| w.bytes), wb, &size);
        for (name, pick) in [
            ("kubelet `..data` swap", (|w: &WatchResult| &w.kube) as fn(&WatchResult) -> &WatchStats),
            ("rename save", |w: &WatchResult| &w.save),
        ] {
            row(
                &mut md,
                &format!("{name} → new app: median"),
                &col(&|w| median(&pick(w).latencies_ms)),
                wb,
                &ms,
            );
            row(
                &mut md,
                &format!("{name} → new app: p99"),
                &col(&|w| percentile(&pick(w).latencies_ms, 0.99)),
                wb,
                &ms,
            );
            let cells: Vec<String> = r
                .watch
                .iter()
                .map(|w| {
                    let s = pick(w);
                    let mut c = format!("{} / {} / {} of {}", s.doubles, s.missed, s.stale, s.updates);
                    if s.late > 0 {
                        c.push_str(&format!(" ({} late)", s.late));
                    }
                    if let Some(e) = &s.error {
                        c.push_str(&format!(" (error: {e})"));
                    }
                    c
                })
                .collect();
            let _ = writeln!(md, "| {name}: double / missed / stale restarts | {} |", cells.join(" | "));
        }
        row(&mut md, "idle VmRSS (wrapping `sleep`)", &col(&|w| w.rss_kib), wb, &kib);
        row(&mut md, "idle Pss", &col(&|w| w.pss_kib), wb, &kib);
        row(&mut md, "idle wake-ups: voluntary ctx switches / window", &col(&|w| w.idle_vol), wb, &count);
        row(&mut md, "idle wake-ups: involuntary ctx switches / window", &col(&|w| w.idle_invol), wb, &count);
    }

    if !r.startup_abs.is_empty() {
        let _ = writeln!(md, "\n<details><summary>Start-up: median wall time of each variant</summary>\n");
        let _ = writeln!(md, "| variant | median |\n|---|---|");
        for (label, v) in &r.startup_abs {
            let _ = writeln!(md, "| {label} | {v:.0} µs |");
        }
        let _ = writeln!(md, "\n</details>");
    }

    let _ = writeln!(md, "\n## How\n");
    let _ = writeln!(
        md,
        "- Inits run as their docs recommend: `reinit -- CMD`, `tini -- CMD` (`tini -s -- CMD` when not PID 1), \
         `dumb-init CMD`, `catatonit -- CMD`. PID 1 = under `unshare --pid --fork --mount-proc`.\n\
         - Interleaved: start-up runs round robin in blocks of 10; signal samples one per tool per round; \
         storms one per tool per round (order rotated); idle figures from all tools at once over the same window; \
         watch updates one per instance per round.\n\
         - Start-up: median wall time of `INIT … true` minus that of bare `true` (same mode).\n\
         - Signal latency: `kill(init, SIGUSR1)` → fake_app's handler → its `signal 10` line read by the driver \
         (same pipe path for every tool), the init as PID 1; once with the driver, the inits and the apps on \
         one CPU, once with the inits and apps on one CPU and the driver on another (cross-CPU: each signal wakes \
         another vCPU there and back). Placement is fixed because, left free, it changes the figures more than \
         the inits do.\n\
         - Storm: 20 000 double-forked orphans under the init as PID 1; wall time from first fork until all are \
         reaped; the init's own utime+stime (`/proc/PID/stat`, 10 ms ticks) and run time (`/proc/PID/schedstat`); \
         zombies counted in the namespace's `/proc` every 20 forks. Median of 3 (peak: largest).\n\
         - Idle: after 1 s to settle, context switches over the window (threads summed); memory read after it. \
         Dynamic binaries (tini, dumb-init, entr) also map glibc, whose shared pages Pss splits with other processes.\n\
         - Change → action: from just before the `rename` that makes the new content live to the new app's \
         `ready` line; missed = no `ready` within 3 s; double = another `ready` before 500 ms of quiet; \
         stale = the new app read the old content. watchexec: `--restart --watch DIR`; entr: `echo DIR/app.conf | entr -rn APP`; \
         reinit: `--watch DIR`.",
    );
    if !r.notes.is_empty() {
        let _ = writeln!(md, "\nNotes: {}.", r.notes.join("; "));
    }
    md
}

// ------------------------------------------------------------------------------------ chart

fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('`', "")
}

/// Grouped horizontal bars on a log2 scale around 1× (the reference tool): left of the line is
/// smaller (better) than the reference.
fn chart(h: &Header, r: &Report) -> String {
    type Group = (String, Vec<(String, Option<f64>)>);
    let base = r.inits.iter().position(|i| i.name == "tini-static");
    let init_groups: Vec<Group> = {
        let pick = |f: fn(&InitResult) -> Option<f64>| -> Vec<(String, Option<f64>)> {
            let b = base.and_then(|b| f(&r.inits[b]));
            r.inits.iter().map(|i| (i.name.clone(), ratio(f(i), b))).collect()
        };
        vec![
            ("binary size".into(), pick(|i| i.bytes)),
            ("idle Pss".into(), pick(|i| i.pss_kib)),
            ("start-up, not PID 1".into(), pick(|i| i.start_plain_us)),
            ("start-up, PID 1".into(), pick(|i| i.start_pid1_us)),
            ("signal p50 (one CPU)".into(), pick(|i| i.sig_p50_us)),
            ("signal p99 (one CPU)".into(), pick(|i| i.sig_p99_us)),
            ("signal p50 (cross-CPU)".into(), pick(|i| i.sig_cross_p50_us)),
            ("storm: init CPU".into(), pick(|i| i.storm_cpu_ms)),
            ("storm: peak zombies".into(), pick(|i| i.storm_peak_zombies)),
        ]
    };
    let wbase = r.watch.iter().position(|w| w.name == "watchexec");
    let watch_groups: Vec<Group> = {
        let pick = |f: &dyn Fn(&WatchResult) -> Option<f64>| -> Vec<(String, Option<f64>)> {
            let b = wbase.and_then(|b| f(&r.watch[b]));
            r.watch.iter().map(|w| (w.name.clone(), ratio(f(w), b))).collect()
        };
        vec![
            ("..data swap: median".into(), pick(&|w| median(&w.kube.latencies_ms))),
            ("..data swap: p99".into(), pick(&|w| percentile(&w.kube.latencies_ms, 0.99))),
            ("rename save: median".into(), pick(&|w| median(&w.save.latencies_ms))),
            ("idle Pss".into(), pick(&|w| w.pss_kib)),
        ]
    };
    let colors = ["#d6336c", "#1c7ed6", "#74c0fc", "#f59f00", "#37b24d"];
    let color_of = |name: &str, names: &[String]| -> &str {
        let i = names.iter().position(|n| n == name).unwrap_or(0);
        colors[i % colors.len()]
    };
    let init_names: Vec<String> = r.inits.iter().map(|i| i.name.clone()).collect();
    let watch_names: Vec<String> = r.watch.iter().map(|w| w.name.clone()).collect();

    // Group labels right-aligned at `label_w`; a margin for the value labels of bars that reach
    // the left end; the plot; a margin on the right.
    let (width, label_w, right) = (880.0_f64, 170.0_f64, 50.0_f64);
    let plot_left = label_w + 45.0;
    let (bar_h, gap, group_gap) = (9.0_f64, 2.0_f64, 10.0_f64);
    let span = 5.0; // log2 range each side: 1/32× .. 32×
    let plot_w = width - plot_left - right;
    let center = plot_left + plot_w / 2.0;
    let x_of = |ratio: f64| center + (ratio.max(1e-9).log2().clamp(-span, span) / span) * (plot_w / 2.0);

    let mut body = String::new();
    let mut y = 58.0;
    let section = |title: &str, groups: &[Group], names: &[String], y: &mut f64, body: &mut String| {
        let _ = writeln!(body, r#"<text x="10" y="{:.1}" class="h">{}</text>"#, *y, esc(title));
        *y += 8.0;
        let top = *y;
        for (label, bars) in groups {
            let n = bars.len() as f64;
            let gh = n * (bar_h + gap);
            let _ = writeln!(
                body,
                r#"<text x="{:.1}" y="{:.1}" class="l" text-anchor="end">{}</text>"#,
                label_w - 8.0,
                *y + gh / 2.0 + 4.0,
                esc(label)
            );
            for (k, (name, value)) in bars.iter().enumerate() {
                let by = *y + k as f64 * (bar_h + gap);
                let color = color_of(name, names);
                match value {
                    Some(v) => {
                        let x = x_of(*v);
                        let (x0, w) = if x < center { (x, center - x) } else { (center, x - center) };
                        // The reference tool (1×) gets a thin mark in its colour.
                        let (x0, w) = if w < 2.0 { (center - 1.0, 2.0) } else { (x0, w) };
                        let _ = writeln!(
                            body,
                            r#"<rect x="{x0:.1}" y="{by:.1}" width="{w:.1}" height="{bar_h}" fill="{color}"><title>{}: {}</title></rect>"#,
                            esc(name),
                            fmt_ratio(Some(*v))
                        );
                        let (tx, anchor) = if x < center { (x - 3.0, "end") } else { (x + 3.0, "start") };
                        let _ = writeln!(
                            body,
                            r#"<text x="{tx:.1}" y="{:.1}" class="v" text-anchor="{anchor}">{}</text>"#,
                            by + bar_h - 2.0,
                            fmt_ratio(Some(*v))
                        );
                    }
                    None => {
                        let _ = writeln!(
                            body,
                            r#"<text x="{:.1}" y="{:.1}" class="v">{} n/a</text>"#,
                            center + 3.0,
                            by + bar_h - 2.0,
                            esc(name)
                        );
                    }
                }
            }
            *y += gh + group_gap;
        }
        // grid and the 1× line
        for p in -span as i32..=span as i32 {
            let x = x_of(2f64.powi(p));
            let label = if p >= 0 { format!("{}×", 1u64 << p) } else { format!("1/{}×", 1u64 << -p) };
            let class = if p == 0 { "one" } else { "grid" };
            let _ = writeln!(
                body,
                r#"<line x1="{x:.1}" y1="{:.1}" x2="{x:.1}" y2="{:.1}" class="{class}"/>"#,
                top - 4.0,
                *y - group_gap + 2.0
            );
            if p % 2 == 0 || p == -1 || p == 1 {
                let _ = writeln!(
                    body,
                    r#"<text x="{x:.1}" y="{:.1}" class="t" text-anchor="middle">{label}</text>"#,
                    *y - group_gap + 14.0
                );
            }
        }
        *y += 26.0;
        // legend
        let mut lx = plot_left;
        for name in names {
            let _ = writeln!(
                body,
                r#"<rect x="{lx:.1}" y="{:.1}" width="10" height="10" fill="{}"/><text x="{:.1}" y="{:.1}" class="l">{}</text>"#,
                *y - 9.0,
                color_of(name, names),
                lx + 14.0,
                *y,
                esc(name)
            );
            lx += 14.0 + 8.0 * name.len() as f64 + 18.0;
        }
        *y += 26.0;
    };
    section(
        "As an init: ratio to tini-static (log scale; left of 1× = smaller/faster = better)",
        &init_groups,
        &init_names,
        &mut y,
        &mut body,
    );
    if !r.watch.is_empty() {
        section("As a config watcher: ratio to watchexec", &watch_groups, &watch_names, &mut y, &mut body);
    }
    let height = y + 4.0;
    let mut svg = String::new();
    let _ = writeln!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0}" height="{height:.0}" viewBox="0 0 {width:.0} {height:.0}" font-family="sans-serif">"#
    );
    let _ = writeln!(
        svg,
        "<style>.h{{font-size:14px;font-weight:bold}} .l{{font-size:12px}} .v{{font-size:10px;fill:#333}} .t{{font-size:10px;fill:#666}} .s{{font-size:11px;fill:#555}} .grid{{stroke:#ddd;stroke-width:1}} .one{{stroke:#000;stroke-width:1.5}}</style>"
    );
    let _ = writeln!(svg, r##"<rect width="100%" height="100%" fill="#fff"/>"##);
    let _ = writeln!(svg, r#"<text x="10" y="20" class="h">reinit benchmarks (bench/run.sh)</text>"#);
    let _ = writeln!(
        svg,
        r#"<text x="10" y="36" class="s">{}</text>"#,
        esc(&format!("{} · {} · {} ({} cores)", h.date, h.kernel, h.cpu, h.cores))
    );
    svg.push_str(&body);
    svg.push_str("</svg>\n");
    svg
}
