//! `fake_app`: the fixture app that reinit's integration tests run under reinit.
//!
//! It reports what it sees and every signal it receives on **stdout, one line per event,
//! flushed at once** (if stdout is gone it exits with 74). Nothing is printed on stderr except
//! usage errors (exit 64).
//!
//! ```text
//! fake_app [FLAGS] [-- ARGS...]
//! ```
//!
//! Start-up, in this order (each line only when its flag is given):
//!
//! | flag | line |
//! |---|---|
//! | `--sigmask` | `sigblk=<hex> sigign=<hex>`, the `SigBlk`/`SigIgn` of `/proc/self/status`, read before the program touches any signal (it has no Rust runtime `main`, so even `SIGPIPE` is as inherited) |
//! | `--fds` | `fds=<n,n,...>`: the fds open at start (from `/proc/self/fd`) |
//! | `--listen-report` | `listen fds=<LISTEN_FDS or -> pid=<LISTEN_PID or -> self=<getpid> names=<LISTEN_FDNAMES or -> fd3=<tcp\|tcp6\|unix\|none>-<listening\|not>` |
//! | `--env NAME` (repeatable) | `env NAME=<value or ->` |
//! | `--cwd` | `cwd=<path>` |
//! | `--args` | `arg [<value>]` for each argument after the `--` separator |
//! | `--config PATH` (repeatable) | `config <PATH>=<content, each newline written as \n, or MISSING>` |
//! | `--start-delay MS` | (sleeps MS milliseconds: a slow start) |
//! | | `ready pid=<pid> pgid=<pgid> ppid=<ppid>`: signal handlers are installed from here on |
//!
//! After `ready`, in this order:
//!
//! - `--orphans N`: double-forks N grandchildren; each waits until its parent has died, prints
//!   `orphan ppid=<its new parent>` and exits; when all have exited, `orphans spawned`.
//! - `--helper`: starts a helper process (fake_app itself) in the same process group that sleeps
//!   until killed; with `--helper-ignore-term` it has SIGTERM ignored (set before it execs, no
//!   race). Prints `helper pid=<pid>`.
//! - `--kill-self SIG`: resets SIG to its default disposition, unblocks it, sends it to itself.
//! - `--exit N`: exits with N, unless `--exit-after MS` is also given: then exits with N
//!   (default 0) once MS milliseconds have passed.
//! - `--stdin-echo`: copies stdin lines as `in:<line>` until EOF, then prints `stdin eof`.
//!
//! Signals: every signal 1..=64 except SIGKILL, SIGCHLD, SIGSTOP and glibc's reserved 32 and 33
//! is caught (fault signals 4, 7, 8, 11 once: the handler resets itself) and reported as
//! `signal <num>`. Signals blocked at start stay blocked. On SIGTERM: print and exit 0; with
//! `--ignore-term` print and go on; with `--term-exit N` print and exit N. `--exit-on SIG`: print
//! and exit 0 when SIG arrives (wins over the TERM flags). `--no-catch`: install no handler at all
//! (default dispositions, so a signal from outside kills the app).
//!
//! Core dumps are disabled (`RLIMIT_CORE` 0) so killed runs leave no `core` files behind.
#![no_main]
#![allow(unsafe_code)]
#![allow(clippy::expect_used)]

use std::ffi::{CStr, c_char, c_int};
use std::io::{BufRead, Write};
use std::os::unix::process::CommandExt;
use std::process::Command;
use std::sync::atomic::{AtomicI32, Ordering};
use std::time::{Duration, Instant};

/// Exit code for a bad command line.
const USAGE: i32 = 64;
/// Exit code when stdout cannot be written any more.
const STDOUT_GONE: i32 = 74;

#[derive(Default)]
struct Opts {
    sigmask: bool,
    fds: bool,
    listen_report: bool,
    envs: Vec<String>,
    cwd: bool,
    args: bool,
    configs: Vec<String>,
    start_delay_ms: u64,
    no_catch: bool,
    ignore_term: bool,
    term_exit: Option<i32>,
    exit_on: Option<i32>,
    exit: Option<i32>,
    exit_after_ms: Option<u64>,
    kill_self: Option<i32>,
    orphans: u32,
    helper: bool,
    helper_ignore_term: bool,
    stdin_echo: bool,
    /// Internal: run as the `--helper` process.
    as_helper: bool,
    rest: Vec<String>,
}

fn usage(msg: &str) -> ! {
    eprintln!("fake_app: {msg} (see the doc at the top of examples/fake_app.rs)");
    std::process::exit(USAGE)
}

fn parse(argv: Vec<String>) -> Opts {
    fn num<T: std::str::FromStr>(flag: &str, value: Option<String>) -> T {
        let Some(value) = value else { usage(&format!("{flag} needs a value")) };
        value.parse().unwrap_or_else(|_| usage(&format!("{flag}: bad number {value:?}")))
    }
    fn text(flag: &str, value: Option<String>) -> String {
        value.unwrap_or_else(|| usage(&format!("{flag} needs a value")))
    }
    let mut o = Opts::default();
    let mut it = argv.into_iter().skip(1);
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--sigmask" => o.sigmask = true,
            "--fds" => o.fds = true,
            "--listen-report" => o.listen_report = true,
            "--env" => o.envs.push(text(&arg, it.next())),
            "--cwd" => o.cwd = true,
            "--args" => o.args = true,
            "--config" => o.configs.push(text(&arg, it.next())),
            "--start-delay" => o.start_delay_ms = num(&arg, it.next()),
            "--no-catch" => o.no_catch = true,
            "--ignore-term" => o.ignore_term = true,
            "--term-exit" => o.term_exit = Some(num(&arg, it.next())),
            "--exit-on" => o.exit_on = Some(num(&arg, it.next())),
            "--exit" => o.exit = Some(num(&arg, it.next())),
            "--exit-after" => o.exit_after_ms = Some(num(&arg, it.next())),
            "--kill-self" => o.kill_self = Some(num(&arg, it.next())),
            "--orphans" => o.orphans = num(&arg, it.next()),
            "--helper" => o.helper = true,
            "--helper-ignore-term" => o.helper_ignore_term = true,
            "--stdin-echo" => o.stdin_echo = true,
            "--as-helper" => o.as_helper = true,
            "--" => {
                o.rest = it.by_ref().collect();
            }
            other => usage(&format!("unknown flag {other:?}")),
        }
    }
    o
}

/// Prints one line and flushes it; exits if stdout is gone.
fn emit(line: &str) {
    let mut out = std::io::stdout().lock();
    if writeln!(out, "{line}").and_then(|()| out.flush()).is_err() {
        std::process::exit(STDOUT_GONE);
    }
}

fn pid() -> i32 {
    std::process::id() as i32
}

/// Entry point without the Rust runtime's `main` wrapper, which would set SIGPIPE to ignored
/// before `--sigmask` could report the inherited disposition.
#[unsafe(no_mangle)]
extern "C" fn main(argc: c_int, argv: *const *const c_char) -> c_int {
    let args = (0..usize::try_from(argc).unwrap_or(0))
        // SAFETY: the C runtime passes `argc` valid NUL-terminated strings in `argv`.
        .map(|i| unsafe { CStr::from_ptr(*argv.add(i)) })
        .map(|s| s.to_string_lossy().into_owned())
        .collect();
    let opts = parse(args);
    if opts.as_helper {
        helper_main();
    }
    run(&opts);
    0
}

fn run(o: &Opts) {
    if o.sigmask {
        emit(&sigmask_line());
    }
    disable_core_dumps();
    if o.fds {
        emit(&format!("fds={}", open_fds().join(",")));
    }
    if o.listen_report {
        emit(&listen_line());
    }
    for name in &o.envs {
        let value = std::env::var_os(name).map_or("-".into(), |v| v.to_string_lossy().into_owned());
        emit(&format!("env {name}={value}"));
    }
    if o.cwd {
        let cwd = std::env::current_dir().map_or("?".into(), |p| p.display().to_string());
        emit(&format!("cwd={cwd}"));
    }
    if o.args {
        for arg in &o.rest {
            emit(&format!("arg [{arg}]"));
        }
    }
    for path in &o.configs {
        let content =
            std::fs::read_to_string(path).map_or_else(|_| "MISSING".to_string(), |c| c.replace('\n', "\\n"));
        emit(&format!("config {path}={content}"));
    }
    if o.start_delay_ms > 0 {
        std::thread::sleep(Duration::from_millis(o.start_delay_ms));
    }
    let signals = if o.no_catch { None } else { Some(catch_signals()) };
    emit(&format!("ready pid={} pgid={} ppid={}", pid(), nix::unistd::getpgrp(), nix::unistd::getppid()));

    if o.orphans > 0 {
        spawn_orphans(o.orphans);
        emit("orphans spawned");
    }
    if o.helper {
        match spawn_helper(o.helper_ignore_term) {
            Ok(helper) => emit(&format!("helper pid={helper}")),
            Err(e) => emit(&format!("helper failed: {e}")),
        }
    }
    if let Some(sig) = o.kill_self {
        kill_self(sig);
        emit(&format!("kill-self {sig} survived"));
    }
    let exit_at = o.exit_after_ms.map(|ms| Instant::now() + Duration::from_millis(ms));
    if let (Some(code), None) = (o.exit, exit_at) {
        std::process::exit(code);
    }
    if o.stdin_echo {
        std::thread::spawn(echo_stdin);
    }
    event_loop(o, signals, exit_at);
}

/// Waits for signals (and the `--exit-after` deadline) until one of them ends the process.
fn event_loop(o: &Opts, signals: Option<std::fs::File>, exit_at: Option<Instant>) -> ! {
    use std::io::Read;
    use std::os::fd::AsFd;
    let exit_code = o.exit.unwrap_or(0);
    loop {
        let timeout = match exit_at {
            Some(at) => {
                let left = at.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    std::process::exit(exit_code);
                }
                // Round up so we never spin on a sub-millisecond remainder.
                let ms = left.as_millis().saturating_add(1).min(i32::MAX as u128);
                nix::poll::PollTimeout::try_from(ms as i32).unwrap_or(nix::poll::PollTimeout::MAX)
            }
            None => nix::poll::PollTimeout::NONE,
        };
        let Some(mut pipe) = signals.as_ref() else {
            // No handlers: only the deadline (or a signal's default action) can end us.
            match exit_at {
                Some(at) => std::thread::sleep(at.saturating_duration_since(Instant::now())),
                None => loop {
                    nix::unistd::pause();
                },
            }
            continue;
        };
        let mut fds = [nix::poll::PollFd::new(pipe.as_fd(), nix::poll::PollFlags::POLLIN)];
        match nix::poll::poll(&mut fds, timeout) {
            Ok(0) | Err(nix::errno::Errno::EINTR) => continue,
            Ok(_) => {}
            Err(e) => {
                emit(&format!("poll failed: {e}"));
                std::process::exit(1);
            }
        }
        let mut buf = [0u8; 64];
        let n = match pipe.read(&mut buf) {
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => {
                emit(&format!("signal pipe read failed: {e}"));
                std::process::exit(1);
            }
        };
        for &sig in &buf[..n] {
            let sig = i32::from(sig);
            emit(&format!("signal {sig}"));
            if o.exit_on == Some(sig) {
                std::process::exit(0);
            }
            if sig == libc::SIGTERM {
                if let Some(code) = o.term_exit {
                    std::process::exit(code);
                }
                if !o.ignore_term {
                    std::process::exit(0);
                }
            }
        }
    }
}

fn sigmask_line() -> String {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status.lines().find_map(|l| l.strip_prefix(name)).map_or("?".to_string(), |v| v.trim().to_string())
    };
    format!("sigblk={} sigign={}", field("SigBlk:"), field("SigIgn:"))
}

fn disable_core_dumps() {
    let zero = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: plain syscall with a valid pointer to a local struct.
    unsafe { libc::setrlimit(libc::RLIMIT_CORE, &zero) };
}

/// Open fds, in numeric order, without the one `read_dir` used.
fn open_fds() -> Vec<String> {
    let mut fds: Vec<i32> = match std::fs::read_dir("/proc/self/fd") {
        Ok(dir) => dir.filter_map(Result::ok).filter_map(|e| e.file_name().to_str()?.parse().ok()).collect(),
        Err(_) => Vec::new(),
    };
    // The directory's own fd is closed by now: keep only the fds still open.
    // SAFETY: F_GETFD only queries the fd table.
    fds.retain(|&fd| unsafe { libc::fcntl(fd, libc::F_GETFD) } >= 0);
    fds.sort_unstable();
    fds.iter().map(i32::to_string).collect()
}

fn listen_line() -> String {
    let var = |name: &str| std::env::var(name).unwrap_or_else(|_| "-".into());
    let sockopt = |opt: c_int| -> Option<c_int> {
        let mut value: c_int = 0;
        let mut len = std::mem::size_of::<c_int>() as libc::socklen_t;
        // SAFETY: value/len point to a c_int-sized buffer and its size.
        let rc = unsafe { libc::getsockopt(3, libc::SOL_SOCKET, opt, (&raw mut value).cast(), &mut len) };
        (rc == 0).then_some(value)
    };
    let kind = match sockopt(libc::SO_DOMAIN) {
        Some(libc::AF_INET) => "tcp",
        Some(libc::AF_INET6) => "tcp6",
        Some(libc::AF_UNIX) => "unix",
        _ => "none",
    };
    let listening = if sockopt(libc::SO_ACCEPTCONN) == Some(1) { "listening" } else { "not" };
    format!(
        "listen fds={} pid={} self={} names={} fd3={kind}-{listening}",
        var("LISTEN_FDS"),
        var("LISTEN_PID"),
        pid(),
        var("LISTEN_FDNAMES"),
    )
}

/// Write end of the self-pipe the signal handler reports to.
static SIGNAL_PIPE: AtomicI32 = AtomicI32::new(-1);

extern "C" fn on_signal(sig: c_int) {
    // Only async-signal-safe calls here: save errno, write one byte, restore errno.
    // SAFETY: __errno_location returns this thread's errno slot; write gets a 1-byte buffer.
    unsafe {
        let errno = *libc::__errno_location();
        let byte = sig as u8;
        libc::write(SIGNAL_PIPE.load(Ordering::Relaxed), (&raw const byte).cast(), 1);
        *libc::__errno_location() = errno;
    }
}

/// Installs `on_signal` for every catchable signal; returns the read end of its pipe.
fn catch_signals() -> std::fs::File {
    use nix::fcntl::OFlag;
    let (read, write) = nix::unistd::pipe2(OFlag::O_CLOEXEC).expect("signal pipe");
    nix::fcntl::fcntl(&write, nix::fcntl::FcntlArg::F_SETFL(OFlag::O_NONBLOCK))
        .expect("non-blocking signal pipe");
    SIGNAL_PIPE.store(std::os::fd::IntoRawFd::into_raw_fd(write), Ordering::Relaxed);
    for sig in 1..=64 {
        if matches!(sig, libc::SIGKILL | libc::SIGSTOP | libc::SIGCHLD | 32 | 33) {
            continue;
        }
        let fault = matches!(sig, libc::SIGILL | libc::SIGBUS | libc::SIGFPE | libc::SIGSEGV);
        // SAFETY: a zeroed sigaction is a valid "no flags, empty mask" value; the handler is
        // an extern "C" fn doing only async-signal-safe work.
        unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = on_signal as extern "C" fn(c_int) as libc::sighandler_t;
            action.sa_flags = libc::SA_RESTART | if fault { libc::SA_RESETHAND } else { 0 };
            libc::sigemptyset(&mut action.sa_mask);
            libc::sigaction(sig, &action, std::ptr::null_mut());
        }
    }
    std::fs::File::from(read)
}

fn kill_self(sig: i32) {
    // SAFETY: plain signal syscalls on our own process with valid local sets.
    unsafe {
        libc::signal(sig, libc::SIG_DFL);
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, sig);
        libc::sigprocmask(libc::SIG_UNBLOCK, &set, std::ptr::null_mut());
        libc::kill(libc::getpid(), sig);
    }
}

/// Double-forks `n` grandchildren that outlive their parent, then waits until all are gone.
fn spawn_orphans(n: u32) {
    use nix::unistd::{ForkResult, fork};
    let (done_read, done_write) = match nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC) {
        Ok(pair) => pair,
        Err(e) => {
            emit(&format!("orphans failed: pipe: {e}"));
            return;
        }
    };
    for _ in 0..n {
        // SAFETY: this process is single-threaded here (the stdin thread starts later); the
        // children only call async-signal-safe functions and `_exit`.
        match unsafe { fork() } {
            Ok(ForkResult::Child) => {
                let parent = nix::unistd::getpid();
                // SAFETY: as above.
                if let Ok(ForkResult::Child) = unsafe { fork() } {
                    orphan(parent);
                }
                // SAFETY: leave without running any exit handler of the parent's copy.
                unsafe { libc::_exit(0) };
            }
            Ok(ForkResult::Parent { child }) => {
                // ECHILD (if SIGCHLD is ignored) is fine: the kernel reaped it.
                let _ = nix::sys::wait::waitpid(child, None);
            }
            Err(e) => emit(&format!("orphans failed: fork: {e}")),
        }
    }
    // Every grandchild holds a copy of the write end: EOF means all of them have exited.
    drop(done_write);
    let mut pipe = std::fs::File::from(done_read);
    let mut buf = [0u8; 16];
    loop {
        match std::io::Read::read(&mut pipe, &mut buf) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => {
                emit(&format!("orphans: waiting failed: {e}"));
                break;
            }
        }
    }
}

/// Body of an orphan: wait until reparented, report the new parent, exit.
fn orphan(parent: nix::unistd::Pid) -> ! {
    let deadline = Instant::now() + Duration::from_secs(30);
    while nix::unistd::getppid() == parent && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(1));
    }
    let line = format!("orphan ppid={}\n", nix::unistd::getppid());
    // SAFETY: one write(2) of a valid buffer (atomic for a short line on a pipe), then _exit.
    unsafe {
        libc::write(1, line.as_ptr().cast(), line.len());
        libc::_exit(0)
    }
}

/// Starts the `--helper` process in our process group; returns its pid.
fn spawn_helper(ignore_term: bool) -> std::io::Result<u32> {
    let mut cmd = Command::new("/proc/self/exe");
    cmd.arg("--as-helper");
    if ignore_term {
        // SAFETY: signal(2) is async-signal-safe; an ignored disposition survives exec, so
        // the helper ignores TERM from its very first instruction.
        unsafe {
            cmd.pre_exec(|| {
                libc::signal(libc::SIGTERM, libc::SIG_IGN);
                Ok(())
            });
        }
    }
    Ok(cmd.spawn()?.id())
}

fn helper_main() -> ! {
    loop {
        nix::unistd::pause();
    }
}

fn echo_stdin() {
    let stdin = std::io::stdin();
    let mut line = String::new();
    let mut input = stdin.lock();
    loop {
        line.clear();
        match input.read_line(&mut line) {
            Ok(0) | Err(_) => break,
            Ok(_) => emit(&format!("in:{}", line.trim_end_matches('\n'))),
        }
    }
    emit("stdin eof");
}
