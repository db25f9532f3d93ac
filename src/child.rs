//! Starting the app and naming how it ended: spawn it in its own process group with the signal
//! mask and dispositions reinit inherited, give it the terminal, explain a failed exec
//! (126/127), and turn a wait status into an exit code (128+N for signal N).

use crate::sys;
use std::ffi::{CString, OsStr, OsString};
use std::fmt;
use std::io::{self, Read};
use std::os::fd::AsFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// Why the app could not be started; `exit_code` is 126 or 127, as a shell would say.
#[derive(Debug)]
pub enum SpawnError {
    NotFound {
        cmd: String,
        detail: String,
    },
    NotExecutable {
        cmd: String,
        detail: String,
    },
    /// reinit itself ran out of something (file descriptors, memory, processes): not the app's
    /// fault, so not 126/127.
    Resources {
        cmd: String,
        detail: String,
    },
}

impl SpawnError {
    pub fn exit_code(&self) -> u8 {
        match self {
            SpawnError::NotFound { .. } => 127,
            SpawnError::NotExecutable { .. } => 126,
            SpawnError::Resources { .. } => 125,
        }
    }
}

impl fmt::Display for SpawnError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SpawnError::NotFound { cmd, detail }
            | SpawnError::NotExecutable { cmd, detail }
            | SpawnError::Resources { cmd, detail } => {
                // the name as typed: control characters escaped, so it cannot forge a log line
                write!(f, "cannot start {}: {detail}", crate::logging::shown(Path::new(cmd)))
            }
        }
    }
}

/// How to start the app.
pub struct Spawn<'a> {
    pub argv: &'a [OsString],
    /// The signal mask the app gets (bit n-1 = signal n).
    pub mask: u64,
    /// Restore SIGPIPE to SIG_IGN (it was ignored when reinit started).
    pub sigpipe_ignored: bool,
    /// Make the app's process group the terminal's foreground group.
    pub take_terminal: bool,
    /// Listening sockets to pass at fd 3, 4, … with `LISTEN_FDS`/`LISTEN_PID`/`LISTEN_FDNAMES`.
    pub listen_fds: &'a [i32],
    pub listen_names: &'a str,
    /// `NOTIFY_SOCKET` for the app (`--ready notify`).
    pub notify_socket: Option<&'a str>,
}

/// Whether reinit's process group owns the terminal on stdin (so the app should take it over).
pub fn owns_terminal() -> bool {
    let stdin = io::stdin();
    nix::unistd::isatty(stdin.as_fd()).unwrap_or(false)
        && nix::unistd::tcgetpgrp(stdin.as_fd()).ok() == Some(nix::unistd::getpgrp())
}

/// Start the app; returns its pid (also its process group id). `keep` receives what was built
/// for the start: freeing it right away would cost system calls (musl returns freed pages at
/// once) while the new app starts and may already be signalled; the caller drops it later.
pub fn spawn(spec: &Spawn<'_>, keep: &mut Option<sys::AppExec>) -> Result<i32, SpawnError> {
    let Some(program) = spec.argv.first().filter(|p| !p.is_empty()) else {
        return Err(SpawnError::NotFound { cmd: String::new(), detail: "empty command".into() });
    };
    let cannot =
        |detail: String| SpawnError::NotExecutable { cmd: program.to_string_lossy().into_owned(), detail };
    let cstring =
        |s: &OsStr| CString::new(s.as_bytes()).map_err(|_| cannot("an argument holds a NUL byte".into()));
    let argv = spec.argv.iter().map(|a| cstring(a)).collect::<Result<Vec<_>, _>>()?;
    let paths = candidates(program).iter().map(|p| cstring(p.as_os_str())).collect::<Result<Vec<_>, _>>()?;
    let mut env = sys::AppEnv { set: Vec::new(), listen_pid: !spec.listen_fds.is_empty() };
    if !spec.listen_fds.is_empty() {
        env.set.push(("LISTEN_FDS".into(), spec.listen_fds.len().to_string()));
        env.set.push(("LISTEN_FDNAMES".into(), spec.listen_names.to_string()));
    }
    if let Some(socket) = spec.notify_socket {
        env.set.push(("NOTIFY_SOCKET".into(), socket.to_string()));
    }
    let listen_fds = spec.listen_fds.to_vec();
    let mut exec =
        sys::AppExec::new(paths, argv, env, spec.mask, spec.sigpipe_ignored, spec.take_terminal, listen_fds)
            .map_err(|e| cannot(e.to_string()))?;
    // The child is in its own process group once this returns: it did setpgid before exec,
    // and CLONE_VFORK holds us until then.
    let started = sys::spawn_app(&mut exec);
    *keep = Some(exec);
    started.map_err(|e| explain(program, &e))
}

/// Where exec looks for `program`, in order, as execvp would: the path itself when it has a
/// `/`, else each directory of `PATH`.
fn candidates(program: &OsStr) -> Vec<PathBuf> {
    if program.as_bytes().contains(&b'/') {
        return vec![PathBuf::from(program)];
    }
    let path = std::env::var_os("PATH").unwrap_or_else(|| OsString::from("/usr/local/bin:/usr/bin:/bin"));
    std::env::split_paths(&path).map(|dir| dir.join(program)).collect()
}

/// The exit code reinit reports for a raw wait status: the code, or 128+N for signal N.
/// `None` for stop/continue reports, which are not an end.
pub fn exit_code(status: i32) -> Option<u8> {
    if libc::WIFEXITED(status) {
        Some(libc::WEXITSTATUS(status) as u8)
    } else if libc::WIFSIGNALED(status) {
        Some((128 + libc::WTERMSIG(status)).min(255) as u8)
    } else {
        None
    }
}

/// Find `program` as execvp would: as a path when it has a `/`, else along `PATH`.
fn resolve(program: &OsStr) -> Option<PathBuf> {
    let given = program.as_bytes().contains(&b'/');
    candidates(program).into_iter().find(|p| if given { p.exists() } else { p.is_file() })
}

/// The interpreter named by a `#!` line, if `head` starts with one.
fn shebang_interpreter(head: &[u8]) -> Option<String> {
    let line = head.strip_prefix(b"#!")?;
    let line = line.split(|&b| b == b'\n').next()?;
    let text = String::from_utf8_lossy(line);
    text.split_whitespace().next().map(String::from)
}

fn file_head(path: &Path) -> Vec<u8> {
    let mut head = vec![0u8; 256];
    match std::fs::File::open(path).and_then(|mut f| f.read(&mut head)) {
        Ok(n) => {
            head.truncate(n);
            head
        }
        Err(_) => Vec::new(),
    }
}

pub fn explain(program: &OsStr, err: &io::Error) -> SpawnError {
    let cmd = program.to_string_lossy().into_owned();
    let found = resolve(program);
    match err.raw_os_error() {
        Some(libc::EMFILE) => {
            let limit = sys::open_file_limit().map_or(String::new(), |n| format!(" (ulimit -n is {n})"));
            let detail = format!("reinit ran out of file descriptors{limit}: raise the open-file limit");
            SpawnError::Resources { cmd, detail }
        }
        Some(libc::ENFILE | libc::ENOMEM | libc::EAGAIN) => {
            SpawnError::Resources { cmd, detail: format!("reinit could not fork: {err}") }
        }
        Some(libc::ENOENT) | Some(libc::ENOTDIR) => match found {
            Some(path) if path.is_file() => {
                let head = file_head(&path);
                let detail = match shebang_interpreter(&head) {
                    Some(interp) => format!(
                        "its #! interpreter {interp} was not found ({} exists, the program on its first line does not)",
                        path.display()
                    ),
                    None if head.starts_with(b"\x7fELF") => format!(
                        "its ELF interpreter (dynamic loader) was not found: {} needs a libc this image lacks; use a static build",
                        path.display()
                    ),
                    None => format!("{} exists but exec reported: {err}", path.display()),
                };
                SpawnError::NotFound { cmd, detail }
            }
            _ if cmd.contains('/') => SpawnError::NotFound { cmd, detail: "no such file".into() },
            _ => SpawnError::NotFound { cmd, detail: "command not found in PATH".into() },
        },
        Some(libc::EACCES) | Some(libc::EISDIR) => {
            let detail = match found {
                Some(p) if p.is_dir() => format!("{} is a directory", p.display()),
                Some(p) if p.metadata().map(|m| m.permissions().mode() & 0o111 == 0).unwrap_or(false) => {
                    format!("{} is not executable (chmod +x it)", p.display())
                }
                _ => format!("permission denied ({err}); is it executable, on a noexec mount?"),
            };
            SpawnError::NotExecutable { cmd, detail }
        }
        Some(libc::ENOEXEC) => SpawnError::NotExecutable {
            cmd,
            detail: "exec format error: not a program for this machine, and no #! line".into(),
        },
        _ => SpawnError::NotExecutable { cmd, detail: err.to_string() },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_for_every_status() {
        for code in 0..=255u8 {
            assert_eq!(exit_code(i32::from(code) << 8), Some(code));
        }
        for sig in 1..=64 {
            assert_eq!(exit_code(sig), Some(128 + sig as u8), "killed by {sig}");
            assert_eq!(exit_code(sig | 0x80), Some(128 + sig as u8), "dumped core on {sig}");
        }
        assert_eq!(exit_code(0x137f), None, "stopped");
        assert_eq!(exit_code(0xffff), None, "continued");
    }

    #[test]
    fn reads_shebangs() {
        assert_eq!(shebang_interpreter(b"#!/bin/sh\necho"), Some("/bin/sh".into()));
        assert_eq!(shebang_interpreter(b"#! /usr/bin/env python3 -u\n"), Some("/usr/bin/env".into()));
        assert_eq!(shebang_interpreter(b"#!\n"), None);
        assert_eq!(shebang_interpreter(b"\x7fELF"), None);
    }

    #[test]
    fn explains_failures() {
        let e = io::Error::from_raw_os_error(libc::ENOENT);
        let err = explain(OsStr::new("surely-not-a-command-xyz"), &e);
        assert_eq!(err.exit_code(), 127);
        assert!(err.to_string().contains("not found"), "{err}");
        let err = explain(OsStr::new("/"), &io::Error::from_raw_os_error(libc::EACCES));
        assert_eq!(err.exit_code(), 126);
        assert!(err.to_string().contains("directory"), "{err}");
        let err =
            explain(OsStr::new("a\nreinit: error: forged"), &io::Error::from_raw_os_error(libc::ENOENT));
        assert!(!err.to_string().contains('\n'), "{err}");
        let err = explain(OsStr::new("true"), &io::Error::from_raw_os_error(libc::EMFILE));
        assert_eq!(err.exit_code(), 125, "reinit's own limit is not the app's fault");
        assert!(err.to_string().contains("file descriptors"), "{err}");
    }
}
