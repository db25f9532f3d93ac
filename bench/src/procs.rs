//! Starting the measured processes (optionally as PID 1), reading their output lines, and
//! what `/proc` says about them.

use crate::*;

// Processes

pub(crate) fn unique() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}

pub(crate) fn debug() -> bool {
    std::env::var_os("BENCH_DEBUG").is_some_and(|v| v == "1")
}

pub(crate) fn send(pid: i32, sig: i32) -> bool {
    // SAFETY: kill(2) with a pid we started (or found among its descendants) and a valid signal.
    unsafe { libc::kill(pid, sig) == 0 }
}

/// The children of `pid` (all its threads'), from `/proc/PID/task/*/children`.
pub(crate) fn children(pid: i32) -> Vec<i32> {
    let Ok(tasks) = fs::read_dir(format!("/proc/{pid}/task")) else { return Vec::new() };
    let mut out = Vec::new();
    for t in tasks.flatten() {
        if let Ok(s) = fs::read_to_string(t.path().join("children")) {
            out.extend(s.split_whitespace().filter_map(|p| p.parse::<i32>().ok()));
        }
    }
    out
}

pub(crate) fn descendants(pid: i32) -> Vec<i32> {
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
pub(crate) struct Running {
    pub(crate) child: Child,
    pub(crate) pid: i32,
    pub(crate) in_namespace: bool,
    pub(crate) out: Option<Lines>,
}

pub(crate) fn start(argv: &[String], pid1: bool, stdin: Stdio, capture: bool) -> Res<Running> {
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
    pub(crate) fn lines(&mut self) -> Res<&mut Lines> {
        self.out.as_mut().ok_or_else(|| fail("no stdout captured"))
    }

    /// Waits until the measured process has exec'd `exe` (so its stats are the tool's own).
    pub(crate) fn wait_exec(&self, exe: &Path, deadline: Instant) -> bool {
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
    pub(crate) fn stop(&mut self, sig: i32, grace: Duration) {
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

    pub(crate) fn kill(&mut self, mut tree: Vec<i32>) {
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
pub(crate) struct Lines {
    pub(crate) out: ChildStdout,
    pub(crate) buf: Vec<u8>,
    pub(crate) ready: VecDeque<(String, Instant)>,
    pub(crate) eof: bool,
}

impl Lines {
    pub(crate) fn new(out: ChildStdout) -> Lines {
        Lines { out, buf: Vec::new(), ready: VecDeque::new(), eof: false }
    }

    /// The next line, waiting until `deadline` at most (`None`: nothing by then, or EOF).
    pub(crate) fn next_until(&mut self, deadline: Instant) -> Option<(String, Instant)> {
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
    pub(crate) fn expect(&mut self, prefix: &str, deadline: Instant) -> Option<(String, Instant)> {
        while let Some((line, at)) = self.next_until(deadline) {
            if line.starts_with(prefix) {
                return Some((line, at));
            }
        }
        None
    }
}

/// `CLOCK_MONOTONIC` in nanoseconds: the clock of `fake_app --stamp`'s `at=`.
pub(crate) fn monotonic_ns() -> u128 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: clock_gettime writes one timespec into `ts`.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u128 * 1_000_000_000 + ts.tv_nsec as u128
}

/// The `at=<ns>` ending a `fake_app --stamp` line: when the app itself handled the signal.
pub(crate) fn app_stamp(line: &str) -> Option<u128> {
    line.rsplit_once(" at=")?.1.trim().parse().ok()
}

/// Microseconds from `t0_ns` (taken just before the signal was sent) to the app's `at=`.
pub(crate) fn app_us(t0_ns: u128, line: &str) -> Option<f64> {
    app_stamp(line).map(|at| at.saturating_sub(t0_ns) as f64 / 1e3)
}

// /proc

pub(crate) fn proc_field(path: &str, key: &str) -> Option<u64> {
    let text = fs::read_to_string(path).ok()?;
    let line = text.lines().find(|l| l.starts_with(key))?;
    line[key.len()..].split_whitespace().next()?.parse().ok()
}

/// VmRSS and Pss, KiB.
pub(crate) fn memory(pid: i32) -> Option<(u64, u64)> {
    Some((
        proc_field(&format!("/proc/{pid}/status"), "VmRSS:")?,
        proc_field(&format!("/proc/{pid}/smaps_rollup"), "Pss:")?,
    ))
}

/// Voluntary and involuntary context switches, summed over every thread.
pub(crate) fn context_switches(pid: i32) -> Option<(u64, u64)> {
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
pub(crate) fn stat_fields(pid: i32) -> Option<Vec<String>> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 1..];
    Some(rest.split_whitespace().map(str::to_string).collect())
}

/// utime+stime of the process itself, ms.
pub(crate) fn cpu_ms(pid: i32) -> Option<f64> {
    let f = stat_fields(pid)?;
    let ticks: u64 = f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?;
    // SAFETY: sysconf only reads a system constant.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1);
    Some(ticks as f64 * 1000.0 / hz as f64)
}

/// Time on CPU from `/proc/PID/schedstat`, ms (ns resolution).
pub(crate) fn sched_ms(pid: i32) -> Option<f64> {
    let s = fs::read_to_string(format!("/proc/{pid}/schedstat")).ok()?;
    Some(s.split_whitespace().next()?.parse::<u64>().ok()? as f64 / 1e6)
}
