//! Under a terminal, the app takes the foreground, so an interactive
//! `bash` under reinit has job control and Ctrl-C reaches the job.

use crate::util::{DEADLINE, LineReader, Proc, fake_app, num_field, reinit_bin};
use std::io::Write;
use std::os::fd::OwnedFd;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};

/// Output of the terminal, as lines; panics with everything seen on timeout.
fn expect(term: &mut LineReader, what: &str, pred: impl Fn(&str) -> bool) -> String {
    match term.take(&pred, DEADLINE) {
        Some((line, _)) => line,
        None => panic!("terminal: no line {what}; seen:\n{}", term.lines().join("\n")),
    }
}

#[test]
fn bash_under_reinit_has_job_control_and_ctrl_c_reaches_the_job() {
    let pty = nix::pty::openpty(None, None).expect("openpty");
    let master: OwnedFd = pty.master;
    let slave: OwnedFd = pty.slave;
    nix::fcntl::fcntl(&master, nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC)).unwrap();

    let mut cmd = Command::new(reinit_bin());
    cmd.args(["--", "bash", "--norc", "--noprofile", "-i", "-m"])
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_else(|_| "/usr/bin:/bin".into()))
        .env("TERM", "dumb")
        .env("PS1", "$ ")
        .env("HISTFILE", "/dev/null")
        .stdin(Stdio::from(slave.try_clone().unwrap()))
        .stdout(Stdio::from(slave.try_clone().unwrap()))
        .stderr(Stdio::from(slave));
    crate::util::close_inherited_fds(&mut cmd);
    // SAFETY: setsid and ioctl are async-signal-safe; fd 0 is the pty slave by now.
    #[allow(unsafe_code)]
    unsafe {
        cmd.pre_exec(|| {
            if libc::setsid() < 0 || libc::ioctl(0, libc::TIOCSCTTY, 0) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    // Spawning consumes `cmd`, closing our copies of the slave: the master then reads EOF once
    // reinit and bash are gone.
    let mut reinit = Proc::spawn(cmd);

    let mut writer = std::fs::File::from(master.try_clone().unwrap());
    let mut term = LineReader::spawn(std::fs::File::from(master.try_clone().unwrap()));

    writeln!(writer, "{} --exit-on 2", fake_app()).unwrap();
    let ready = expect(&mut term, "ready pid=", |l| l.contains("ready pid="));
    let ready = &ready[ready.find("ready pid=").unwrap()..];
    let (pid, pgid) = (num_field(ready, "pid"), num_field(ready, "pgid"));
    assert_eq!(pid, pgid, "bash has no job control: the job is not in its own process group ({ready})");
    let foreground = nix::unistd::tcgetpgrp(&master).expect("tcgetpgrp").as_raw();
    assert_eq!(foreground, pgid, "the job must be the terminal's foreground group");

    writer.write_all(b"\x03").unwrap();
    expect(&mut term, "signal 2 (Ctrl-C)", |l| l.trim_end().ends_with("signal 2"));

    writeln!(writer, "exit").unwrap();
    assert_eq!(reinit.wait_code(DEADLINE), 0, "terminal:\n{}", term.lines().join("\n"));
}
