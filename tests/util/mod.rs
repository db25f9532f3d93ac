//! Test harness shared by every integration test: find the binaries, run `reinit` (directly or
//! as PID 1 of a fresh PID namespace), read its output line by line, wait with deadlines.
//!
//! Rules the API enforces: no fixed sleeps for synchronisation — wait for a line
//! ([`Proc::wait_line`]) or a condition ([`poll_until`]); every wait has a deadline and, on
//! timeout, panics with everything seen so far.
//!
//! Summary:
//! - [`reinit_bin`], [`fake_app`], [`fixture`], [`example`]: the binaries under test (`cargo
//!   test` builds reinit; the first call of the others builds the fixtures crate, tests/fixtures,
//!   and the examples, which stay host binaries;
//!   `REINIT_BIN` overrides reinit, see [`emulation`] for another architecture's build).
//! - [`reinit_cmd`]`(args)`: a `Command` for reinit with stdin null, stdout/stderr piped, no
//!   `REINIT_*` variable inherited and no inherited fd above 2 (see [`close_inherited_fds`]).
//! - [`as_pid1`]`(args)`: the same under `unshare --pid --fork --mount-proc --kill-child`.
//!   `--kill-child` makes reinit die with unshare, which tears the whole namespace down.
//!   [`Proc::pid`] / [`Proc::signal`] then target reinit inside (unshare's only child), found
//!   by scanning `/proc/*/stat` (the kernel here has no `/proc/PID/task/TID/children`).
//! - [`Proc`]: a spawned child whose stdout and stderr are read by background threads.
//! - [`LineReader`]: the line collector behind `Proc`, usable on any `Read` (e.g. a pty master).
//! - [`KillOnDrop`], [`TempDir`], [`line_eq`], [`signal_pid`], [`prepare`] (the I/O defaults of
//!   `reinit_cmd` for any command).
//! - `/proc` helpers: [`descendants`], [`zombies_under`], [`proc_state`], [`status_field`],
//!   and [`field`] to pick `key=value` out of a fake_app line.
#![allow(dead_code)] // each test module uses a different part of the harness

pub mod emulation;
pub mod http_server;
pub mod kubelet;
pub mod podman;

use std::ffi::OsStr;
use std::io::{BufRead, BufReader, Read};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::OnceLock;
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::time::{Duration, Instant};

/// A generous deadline for anything that should take well under a second on an idle machine.
pub const DEADLINE: Duration = Duration::from_secs(20);

/// The reinit binary under test: `$REINIT_BIN` if set (e.g. the static aarch64 build, run by
/// qemu-user through binfmt_misc), else the one `cargo test` built.
pub fn reinit_bin() -> PathBuf {
    match std::env::var_os("REINIT_BIN") {
        Some(bin) => PathBuf::from(bin),
        None => PathBuf::from(env!("CARGO_BIN_EXE_reinit")),
    }
}

/// Path of the `fake_app` fixture (tests/fixtures/fake_app.rs), the app run under reinit.
pub fn fake_app() -> String {
    fixture("fake_app")
}

/// Path of a program of the test fixtures crate (tests/fixtures: `fake_app`, `load`).
pub fn fixture(name: &str) -> String {
    program(name)
}

/// Path of an example of reinit's (`config_server`).
pub fn example(name: &str) -> String {
    program(name)
}

/// Path of a program the tests run besides reinit. `cargo test` builds no binary of another
/// package, nor any example when given a test name filter, so the first call builds them all
/// with the cargo running the tests (a no-op when they are up to date): whichever packages or
/// tests `cargo test` was asked for, they are there and never stale.
fn program(name: &str) -> String {
    static BUILT: OnceLock<Result<Vec<PathBuf>, String>> = OnceLock::new();
    // A failed build is kept too: every test then fails at once with its message.
    let built = BUILT.get_or_init(build_programs).as_ref().unwrap_or_else(|e| panic!("{e}"));
    let path = built.iter().find(|p| p.file_name() == Some(OsStr::new(name)));
    let path = path.unwrap_or_else(|| panic!("no program {name:?} among {built:?}"));
    path.to_string_lossy().into_owned()
}

/// `cargo build` of the fixtures and the examples: the paths of the executables it reports.
fn build_programs() -> Result<Vec<PathBuf>, String> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| env!("CARGO").into());
    let out = Command::new(cargo)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["build", "--quiet", "-p", "reinit-test-fixtures", "--bins", "-p", "reinit", "--examples"])
        .arg("--message-format=json-render-diagnostics")
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run cargo to build the test programs: {e}"))?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() {
        return Err(format!("building the test fixtures and examples failed:\n{stderr}"));
    }
    let key = "\"executable\":\"";
    let stdout = String::from_utf8_lossy(&out.stdout);
    let built: Vec<PathBuf> = stdout
        .lines()
        .filter_map(|line| line.split_once(key))
        .filter_map(|(_, rest)| rest.split_once('"'))
        .map(|(path, _)| PathBuf::from(path))
        .collect();
    if built.is_empty() {
        return Err(format!("cargo reported no executable:\n{stdout}{stderr}"));
    }
    Ok(built)
}

/// `REINIT_ARGS -- <fake_app> APP_ARGS`: reinit's arguments around the fixture app's.
pub fn with_app(reinit_args: &[&str], app_args: &[&str]) -> Vec<String> {
    let mut args: Vec<String> = reinit_args.iter().map(|a| a.to_string()).collect();
    args.push("--".into());
    args.push(fake_app());
    args.extend(app_args.iter().map(|a| a.to_string()));
    args
}

/// A `Command` running reinit with `args`: stdin null, stdout/stderr piped, every `REINIT_*`
/// variable of the test environment removed, inherited fds above 2 closed.
pub fn reinit_cmd<I, S>(args: I) -> Command
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let mut cmd = Command::new(reinit_bin());
    cmd.args(args);
    prepare(&mut cmd);
    cmd
}

/// Like [`reinit_cmd`], but reinit runs as PID 1 of a new PID (and mount, for /proc) namespace:
/// `unshare --pid --fork --mount-proc --kill-child -- reinit ARGS`. Needs root.
/// Exit status: unshare exits with reinit's status.
pub fn as_pid1<I, S>(args: I) -> Command
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let mut cmd = Command::new("unshare");
    cmd.args(["--pid", "--fork", "--mount-proc", "--kill-child", "--"]).arg(reinit_bin()).args(args);
    prepare(&mut cmd);
    cmd
}

/// The defaults of [`reinit_cmd`] for any other command: stdin null, stdout/stderr piped, no
/// `REINIT_*` variable, no inherited fd above 2.
pub fn prepare(cmd: &mut Command) -> &mut Command {
    cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("REINIT_") {
            cmd.env_remove(name);
        }
    }
    close_inherited_fds(cmd)
}

/// Adds a `pre_exec` step closing every fd >= 3 that lacks close-on-exec, so the child starts
/// with exactly what the test gives it (a test runner or CI shell may leak fds). Later
/// `pre_exec` steps run after this one, so a test can still place an fd on purpose.
#[allow(unsafe_code)]
pub fn close_inherited_fds(cmd: &mut Command) -> &mut Command {
    // SAFETY: the closure only calls fcntl/close, which are async-signal-safe, and allocates
    // nothing.
    unsafe {
        cmd.pre_exec(|| {
            for fd in 3..4096 {
                let flags = libc::fcntl(fd, libc::F_GETFD);
                if flags >= 0 && flags & libc::FD_CLOEXEC == 0 {
                    libc::close(fd);
                }
            }
            Ok(())
        })
    }
}

/// A path as a string, for command lines.
pub fn path_str(path: &std::path::Path) -> String {
    path.to_string_lossy().into_owned()
}

/// Whether `line` is the fixture app's `ready pid=…` line (one per start).
pub fn is_ready(line: &str) -> bool {
    line.starts_with("ready pid=")
}

/// Calls `cond` every 10 ms until it returns true (→ true) or `deadline` has passed (→ false).
pub fn poll_until(deadline: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + deadline;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= end {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The value of `key=` in a line of space-separated `key=value` words, e.g.
/// `field("ready pid=7 pgid=7 ppid=1", "pid") == Some("7")`.
pub fn field<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    line.split_whitespace().find_map(|word| word.strip_prefix(key)?.strip_prefix('='))
}

/// A predicate matching a line exactly (`"signal 1"` must not match `signal 14`).
pub fn line_eq(want: impl Into<String>) -> impl Fn(&str) -> bool {
    let want = want.into();
    move |line: &str| line == want
}

/// Sends `sig` to `pid`, panicking if kill(2) fails.
pub fn signal_pid(pid: i32, sig: i32) {
    // SAFETY: kill(2) has no memory-safety preconditions.
    #[allow(unsafe_code)]
    let rc = unsafe { libc::kill(pid, sig) };
    assert_eq!(rc, 0, "kill({pid}, {sig}): {}", std::io::Error::last_os_error());
}

/// On drop, SIGKILLs the pid and everything below it ([`kill_tree`]) if it is still alive:
/// for processes a test expects to be gone but that would outlive the test on failure.
pub struct KillOnDrop(pub i32);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if alive(self.0) {
            kill_tree(self.0);
        }
    }
}

/// A fresh directory under the system temp dir, removed on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        static COUNTER: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("reinit-test-{}-{n}-{tag}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("mkdir {}: {e}", dir.display()));
        TempDir(dir)
    }

    pub fn path(&self) -> &std::path::Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Like [`field`], parsed as a number; panics naming the line if absent.
pub fn num_field(line: &str, key: &str) -> i32 {
    field(line, key).and_then(|v| v.parse().ok()).unwrap_or_else(|| panic!("no numeric {key}= in {line:?}"))
}

// ---------------------------------------------------------------------------------------------
// Matching lines

/// What [`Proc::wait_line`] looks for: a substring (`&str`, `String`) or a predicate.
pub trait LineMatch {
    fn matches(&self, line: &str) -> bool;
    fn describe(&self) -> String;
}

impl LineMatch for &str {
    fn matches(&self, line: &str) -> bool {
        line.contains(*self)
    }
    fn describe(&self) -> String {
        format!("a line containing {self:?}")
    }
}

impl LineMatch for String {
    fn matches(&self, line: &str) -> bool {
        line.contains(self.as_str())
    }
    fn describe(&self) -> String {
        format!("a line containing {self:?}")
    }
}

impl<F: Fn(&str) -> bool> LineMatch for F {
    fn matches(&self, line: &str) -> bool {
        self(line)
    }
    fn describe(&self) -> String {
        "a line matching the predicate".to_string()
    }
}

/// Collects the lines of a byte stream, read by a background thread, with read timestamps.
///
/// `\n` and a trailing `\r` are stripped; invalid UTF-8 is replaced. A line returned by
/// [`LineReader::take`] is consumed: later calls never return it again, so waiting twice for
/// `ready` finds the first, then the second `ready` line. Lines are never consumed by
/// [`LineReader::lines`] or [`LineReader::count`].
pub struct LineReader {
    rx: Receiver<(Instant, String)>,
    lines: Vec<(Instant, String)>,
    taken: Vec<bool>,
    eof: bool,
}

impl LineReader {
    /// Starts the reading thread.
    pub fn spawn(reader: impl Read + Send + 'static) -> LineReader {
        let (tx, rx) = channel();
        std::thread::spawn(move || {
            let mut reader = BufReader::new(reader);
            let mut buf = Vec::new();
            loop {
                buf.clear();
                match reader.read_until(b'\n', &mut buf) {
                    Ok(0) | Err(_) => break, // EOF, or EIO on a pty master whose slave closed
                    Ok(_) => {
                        let text = String::from_utf8_lossy(&buf);
                        let text = text.trim_end_matches('\n').trim_end_matches('\r');
                        if tx.send((Instant::now(), text.to_string())).is_err() {
                            break;
                        }
                    }
                }
            }
        });
        LineReader { rx, lines: Vec::new(), taken: Vec::new(), eof: false }
    }

    /// Moves what the thread has read so far into `lines`; waits at most until `until` for at
    /// least one new line (`None`: do not wait).
    fn pump(&mut self, until: Option<Instant>) {
        if let Some(until) = until {
            if self.eof {
                return;
            }
            let left = until.saturating_duration_since(Instant::now());
            match self.rx.recv_timeout(left) {
                Ok(line) => self.push(line),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => self.eof = true,
            }
        }
        loop {
            match self.rx.try_recv() {
                Ok(line) => self.push(line),
                Err(std::sync::mpsc::TryRecvError::Empty) => break,
                Err(std::sync::mpsc::TryRecvError::Disconnected) => {
                    self.eof = true;
                    break;
                }
            }
        }
    }

    fn push(&mut self, line: (Instant, String)) {
        self.lines.push(line);
        self.taken.push(false);
    }

    /// The earliest line not yet taken that matches, with the instant it was read; waits for
    /// it until `deadline` from now. `None` on timeout or end of stream.
    pub fn take(&mut self, pat: &impl LineMatch, deadline: Duration) -> Option<(String, Instant)> {
        let end = Instant::now() + deadline;
        let mut scanned = 0;
        loop {
            self.pump(None);
            for i in scanned..self.lines.len() {
                if !self.taken[i] && pat.matches(&self.lines[i].1) {
                    self.taken[i] = true;
                    return Some((self.lines[i].1.clone(), self.lines[i].0));
                }
            }
            scanned = self.lines.len();
            if self.eof || Instant::now() >= end {
                return None;
            }
            self.pump(Some(end));
        }
    }

    /// Every line read so far.
    pub fn lines(&mut self) -> Vec<String> {
        self.pump(None);
        self.lines.iter().map(|(_, l)| l.clone()).collect()
    }

    /// How many lines read so far match.
    pub fn count(&mut self, pat: &impl LineMatch) -> usize {
        self.pump(None);
        self.lines.iter().filter(|(_, l)| pat.matches(l)).count()
    }

    /// Waits until the writer side is closed, at most `deadline`; true if it was.
    pub fn wait_eof(&mut self, deadline: Duration) -> bool {
        let end = Instant::now() + deadline;
        while !self.eof && Instant::now() < end {
            self.pump(Some(end));
        }
        self.eof
    }
}

// ---------------------------------------------------------------------------------------------
// Processes

/// A spawned child (normally reinit) with its stdout and stderr collected line by line.
///
/// Dropping it stops the child and SIGKILLs every process below it (found through `/proc`),
/// so a failing test leaves nothing running.
pub struct Proc {
    child: Child,
    /// The command line, for failure messages.
    label: String,
    /// Spawned through `unshare` (see [`as_pid1`]): the interesting pid is its child.
    unshared: bool,
    inner: std::cell::OnceCell<i32>,
    out: LineReader,
    err: LineReader,
    status: Option<ExitStatus>,
}

impl Proc {
    /// Spawns `cmd`. Piped stdout/stderr (as [`reinit_cmd`] sets them) are collected; if not
    /// piped (e.g. a pty), the stream reads as empty. A piped stdin is kept for
    /// [`Proc::take_stdin`].
    pub fn spawn(mut cmd: Command) -> Proc {
        let label = format!(
            "{} {}",
            cmd.get_program().to_string_lossy(),
            cmd.get_args().map(|a| format!("{:?}", a.to_string_lossy())).collect::<Vec<_>>().join(" ")
        );
        let unshared = cmd.get_program() == "unshare";
        let mut child = cmd.spawn().unwrap_or_else(|e| panic!("spawning {label}: {e}"));
        let out = match child.stdout.take() {
            Some(stdout) => LineReader::spawn(stdout),
            None => LineReader::spawn(std::io::empty()),
        };
        let err = match child.stderr.take() {
            Some(stderr) => LineReader::spawn(stderr),
            None => LineReader::spawn(std::io::empty()),
        };
        Proc { child, label, unshared, inner: std::cell::OnceCell::new(), out, err, status: None }
    }

    /// The pid to signal: reinit's pid, also when it runs inside `unshare` (then the pid as
    /// seen from the test, not the 1 it sees itself).
    pub fn pid(&self) -> i32 {
        let outer = self.child.id() as i32;
        if !self.unshared {
            return outer;
        }
        *self.inner.get_or_init(|| {
            let mut found = None;
            poll_until(DEADLINE, || {
                found = children_of(outer).first().copied();
                found.is_some()
            });
            found.unwrap_or_else(|| panic!("unshare {outer} never forked: {}", self.label))
        })
    }

    /// Sends `sig` to [`Proc::pid`]. Panics if the process was already waited for (its pid may
    /// belong to someone else by now).
    pub fn signal(&self, sig: i32) {
        assert!(self.status.is_none(), "signal {sig} after exit: {}", self.label);
        signal_pid(self.pid(), sig);
    }

    /// Waits for a stdout line matching `pat` that no earlier `wait_line` returned, and returns
    /// it. On timeout or end of output, panics showing all output so far.
    pub fn wait_line(&mut self, pat: impl LineMatch, deadline: Duration) -> String {
        self.wait_line_at(pat, deadline).0
    }

    /// [`Proc::wait_line`], also returning the instant the reader thread read the line (more
    /// accurate than `Instant::now()` after the call on a loaded machine).
    pub fn wait_line_at(&mut self, pat: impl LineMatch, deadline: Duration) -> (String, Instant) {
        match self.out.take(&pat, deadline) {
            Some(found) => found,
            None => {
                let why = if self.out.eof { "stdout closed" } else { "timed out" };
                panic!("{why} after {deadline:?} waiting for {}\n{}", pat.describe(), self.dump())
            }
        }
    }

    /// Every stdout line so far.
    pub fn lines_so_far(&mut self) -> Vec<String> {
        self.out.lines()
    }

    /// How many stdout lines so far match `pat`.
    pub fn count(&mut self, pat: impl LineMatch) -> usize {
        self.out.count(&pat)
    }

    /// Waits until stderr has a line containing `pat`, and returns the first such line; on
    /// timeout, panics showing all output so far.
    pub fn wait_stderr(&mut self, pat: &str) -> String {
        let mut found = None;
        poll_until(DEADLINE, || {
            found = self.err.lines().into_iter().find(|l| l.contains(pat));
            found.is_some()
        });
        found.unwrap_or_else(|| panic!("no stderr line containing {pat:?}\n{}", self.dump()))
    }

    /// Stderr so far, lines joined with `\n`.
    pub fn stderr_so_far(&mut self) -> String {
        self.err.lines().join("\n")
    }

    /// The child's stdin, if the command had `Stdio::piped()` for it.
    pub fn take_stdin(&mut self) -> ChildStdin {
        self.child.stdin.take().expect("stdin was not piped")
    }

    /// The exit status if the child has exited, without waiting.
    pub fn try_exit(&mut self) -> Option<ExitStatus> {
        if self.status.is_none() {
            self.status = self.child.try_wait().expect("try_wait");
        }
        self.status
    }

    /// Waits for the child to exit (panics with all output after `deadline`), then for its
    /// stdout/stderr to close (at most 5 s more: a leaked grandchild may hold them).
    pub fn wait_exit(&mut self, deadline: Duration) -> ExitStatus {
        if !poll_until(deadline, || self.try_exit().is_some()) {
            panic!("still running after {deadline:?} (expected it to exit)\n{}", self.dump());
        }
        self.out.wait_eof(Duration::from_secs(5));
        self.err.wait_eof(Duration::from_secs(5));
        self.status.expect("exited")
    }

    /// [`Proc::wait_exit`] and its exit code; panics (with all output) if killed by a signal.
    pub fn wait_code(&mut self, deadline: Duration) -> i32 {
        let status = self.wait_exit(deadline);
        match status.code() {
            Some(code) => code,
            None => panic!("killed by signal {:?}, expected an exit code\n{}", status.signal(), self.dump()),
        }
    }

    /// Everything seen so far, for assertion messages.
    pub fn dump(&mut self) -> String {
        let out = self.out.lines();
        let err = self.err.lines();
        format!(
            "command: {}\nstatus: {:?}\n--- stdout ({} lines)\n{}\n--- stderr\n{}\n---",
            self.label,
            self.status,
            out.len(),
            out.join("\n"),
            err.join("\n")
        )
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if self.try_exit().is_some() {
            return;
        }
        kill_tree(self.child.id() as i32);
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// SIGKILLs `root` and everything below it. The root is stopped first so it can neither start
/// new processes (an app restart) nor lose track of orphans while its descendants die.
pub fn kill_tree(root: i32) {
    kill(root, libc::SIGSTOP);
    for _ in 0..100 {
        let alive: Vec<i32> = descendants(root).into_iter().filter(|&p| alive(p)).collect();
        if alive.is_empty() {
            break;
        }
        for pid in alive {
            kill(pid, libc::SIGKILL);
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    kill(root, libc::SIGKILL);
}

fn kill(pid: i32, sig: i32) {
    // SAFETY: kill(2) has no memory-safety preconditions.
    #[allow(unsafe_code)]
    unsafe {
        libc::kill(pid, sig);
    }
}

// ---------------------------------------------------------------------------------------------
// /proc

/// `(pid, state, ppid)` of every process, from `/proc/*/stat` (the comm field is skipped by
/// splitting at the last `)`, so any comm is safe).
fn all_processes() -> Vec<(i32, char, i32)> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter_map(|pid| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            let mut rest = stat[stat.rfind(')')? + 1..].split_whitespace();
            let state = rest.next()?.chars().next()?;
            let ppid = rest.next()?.parse().ok()?;
            Some((pid, state, ppid))
        })
        .collect()
}

/// Direct children of `pid` (pids as the test sees them).
pub fn children_of(pid: i32) -> Vec<i32> {
    let mut kids: Vec<i32> =
        all_processes().into_iter().filter(|&(_, _, ppid)| ppid == pid).map(|(p, _, _)| p).collect();
    kids.sort_unstable();
    kids
}

/// Every process below `pid`, zombies included.
pub fn descendants(pid: i32) -> Vec<i32> {
    let procs = all_processes();
    let mut found = Vec::new();
    let mut queue = vec![pid];
    while let Some(parent) = queue.pop() {
        for &(p, _, ppid) in &procs {
            if ppid == parent && !found.contains(&p) {
                found.push(p);
                queue.push(p);
            }
        }
    }
    found
}

/// Zombies below `pid`.
pub fn zombies_under(pid: i32) -> Vec<i32> {
    descendants(pid).into_iter().filter(|&p| proc_state(p) == Some('Z')).collect()
}

/// The state letter of `pid` (`R`, `S`, `Z`, ...), `None` if it does not exist.
pub fn proc_state(pid: i32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat[stat.rfind(')')? + 1..].split_whitespace().next()?.chars().next()
}

/// True if `pid` exists and is not a zombie.
pub fn alive(pid: i32) -> bool {
    proc_state(pid).is_some_and(|s| s != 'Z')
}

/// A field of `/proc/PID/status` (e.g. `"voluntary_ctxt_switches"`), trimmed.
pub fn status_field(pid: i32, name: &str) -> Option<String> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status.lines().find_map(|l| {
        let (key, value) = l.split_once(':')?;
        (key == name).then(|| value.trim().to_string())
    })
}

/// Status of a process the test got from `Command::output()`-like runs: exit code or 128+N.
pub fn shell_code(status: ExitStatus) -> i32 {
    status.code().unwrap_or_else(|| 128 + status.signal().unwrap_or(0))
}
