//! `--validate`: the command that checks new content before reinit acts on it, run as a child
//! in the poll set. Its output comes through a non-blocking pipe (kept up to a cap), its exit
//! through the loop's reaping, its timeout is a deadline like the others: signals, reaping and
//! stops go on while it runs. With `{}` it runs once per changed file, one after the other, and
//! every run must succeed.

use crate::sys;
use std::collections::VecDeque;
use std::ffi::OsString;
use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Output kept per run, for the log line.
const OUTPUT_CAP: usize = 4096;

/// One run of the validator.
struct Run {
    pid: i32,
    out: File,
    output: Vec<u8>,
    deadline: Instant,
    killed: bool,
}

pub struct Validator {
    argv: Vec<String>,
    mask: u64,
    timeout: Duration,
    /// Paths still to check after the current run.
    queue: VecDeque<PathBuf>,
    run: Option<Run>,
}

impl Validator {
    /// `argv` with `{}` placeholders; `mask` is the signal mask it gets (the app's);
    /// `timeout` bounds each run.
    pub fn new(argv: Vec<String>, mask: u64, timeout: Duration) -> Validator {
        Validator { argv, mask, timeout, queue: VecDeque::new(), run: None }
    }

    /// Whether the command takes the changed file (`{}`), so it runs once per file.
    pub fn per_file(argv: &[String]) -> bool {
        argv.iter().any(|a| a.contains("{}"))
    }

    /// Start checking `paths` (none: run once without a path). `Some` when it is already
    /// decided (the command could not be started).
    pub fn start(&mut self, now: Instant, paths: Vec<PathBuf>) -> Option<Result<(), String>> {
        self.cancel();
        self.queue = paths.into();
        let first = self.queue.pop_front();
        self.spawn(now, first.as_deref()).err().map(Err)
    }

    fn spawn(&mut self, now: Instant, path: Option<&Path>) -> Result<(), String> {
        let argv: Vec<OsString> = match path {
            Some(p) => self.argv.iter().map(|a| substitute(a, p)).collect(),
            None => self.argv.iter().map(OsString::from).collect(),
        };
        let Some((program, args)) = argv.split_first() else { return Ok(()) };
        let (reader, writer) = io::pipe().map_err(|e| format!("cannot create a pipe: {e}"))?;
        let writer2 = writer.try_clone().map_err(|e| format!("cannot create a pipe: {e}"))?;
        let reader = OwnedFd::from(reader);
        sys::set_nonblocking(reader.as_fd()).map_err(|e| format!("cannot set up a pipe: {e}"))?;
        let mut cmd = Command::new(program);
        cmd.args(args).process_group(0).stdin(Stdio::null()).stdout(writer).stderr(writer2);
        let mask = self.mask;
        sys::before_exec(&mut cmd, move || sys::set_signal_mask(mask));
        let child = cmd.spawn().map_err(|e| crate::child::explain(program, &e).to_string())?;
        drop(cmd); // our copies of the write end: EOF comes when the validator is done
        self.run = Some(Run {
            pid: child.id() as i32,
            out: File::from(reader),
            output: Vec::new(),
            deadline: crate::time::after(now, self.timeout),
            killed: false,
        });
        Ok(())
    }

    /// The running validator's pid, so the loop can route its exit here.
    pub fn pid(&self) -> Option<i32> {
        self.run.as_ref().map(|r| r.pid)
    }

    /// The pipe carrying its output, for the poll set.
    pub fn fd(&self) -> Option<BorrowedFd<'_>> {
        self.run.as_ref().map(|r| r.out.as_fd())
    }

    pub fn next_deadline(&self) -> Option<Instant> {
        self.run.as_ref().filter(|r| !r.killed).map(|r| r.deadline)
    }

    /// Take what the pipe holds now (never blocks; beyond the cap it is read and dropped).
    pub fn drain(&mut self) {
        let Some(run) = self.run.as_mut() else { return };
        let mut buf = [0u8; 4096];
        for _ in 0..16 {
            match run.out.read(&mut buf) {
                Ok(0) => return,
                Ok(n) => {
                    let room = OUTPUT_CAP.saturating_sub(run.output.len());
                    run.output.extend_from_slice(&buf[..n.min(room)]);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return, // WouldBlock: nothing more for now
            }
        }
    }

    /// The deadline passed: kill the run's whole group; its exit is reaped as usual.
    pub fn tick(&mut self, now: Instant) {
        if let Some(run) = self.run.as_mut()
            && !run.killed
            && now >= run.deadline
        {
            run.killed = true;
            let _ = sys::kill(-run.pid, libc::SIGKILL);
        }
    }

    /// The run exited with `code`: the verdict once every path passed or one failed.
    pub fn exited(&mut self, now: Instant, code: u8) -> Option<Result<(), String>> {
        self.drain();
        let run = self.run.take()?;
        let text = String::from_utf8_lossy(&run.output);
        let text = text.trim();
        let said = if text.is_empty() { String::new() } else { format!(": {}", text.replace('\n', " | ")) };
        if run.killed {
            let limit = crate::time::Human(self.timeout);
            return Some(Err(format!("the validator did not finish within {limit} and was killed{said}")));
        }
        if code != 0 {
            self.queue.clear();
            return Some(Err(format!("the validator exited with {code}{said}")));
        }
        let Some(next) = self.queue.pop_front() else { return Some(Ok(())) };
        match self.spawn(now, Some(&next)) {
            Ok(()) => None, // the next run is under way
            Err(e) => Some(Err(e)),
        }
    }

    /// Stop checking: kill a run in progress (reaped as usual, its verdict dropped).
    pub fn cancel(&mut self) {
        if let Some(run) = self.run.take() {
            let _ = sys::kill(-run.pid, libc::SIGKILL);
        }
        self.queue.clear();
    }
}

/// `arg` with every `{}` replaced by `path`.
fn substitute(arg: &str, path: &Path) -> OsString {
    let mut out = Vec::new();
    let mut rest = arg;
    while let Some(i) = rest.find("{}") {
        out.extend_from_slice(&rest.as_bytes()[..i]);
        out.extend_from_slice(path.as_os_str().as_bytes());
        rest = &rest[i + 2..];
    }
    out.extend_from_slice(rest.as_bytes());
    OsString::from_vec(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn substitutes_the_path() {
        let p = Path::new("/etc/app/a b.conf");
        assert_eq!(substitute("-c{}", p), "-c/etc/app/a b.conf");
        assert_eq!(substitute("{}:{}", p), "/etc/app/a b.conf:/etc/app/a b.conf");
        assert_eq!(substitute("plain", p), "plain");
        assert!(Validator::per_file(&["check".into(), "-c{}".into()]));
        assert!(!Validator::per_file(&["check".into()]));
    }
}
