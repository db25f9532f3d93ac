//! Argv, environment, stdio, cwd, signal mask/dispositions and fds pass
//! through reinit untouched; stdout carries only the app's output.

use super::{start, with_app};
use crate::util::emulation::{Case, skip_under_qemu};
use crate::util::{DEADLINE, Proc, TempDir, fake_app, field, line_eq, prepare, reinit_cmd};
use std::io::Write;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};

#[test]
fn argv_passes_through_untouched() {
    let mut p = Proc::spawn(reinit_cmd(["--", "printf", "[%s]\\n", "a b", "", "c  d"]));
    assert_eq!(p.wait_code(DEADLINE), 0, "{}", p.dump());
    assert_eq!(p.lines_so_far(), ["[a b]", "[]", "[c  d]"], "{}", p.dump());
    assert_eq!(p.stderr_so_far(), "", "{}", p.dump());
}

#[test]
fn app_flags_are_not_parsed_by_reinit() {
    let app = ["--args", "--", "-h", "--stop-timeout", "abc", "--", "-V"];
    let mut p = Proc::spawn(reinit_cmd(with_app(&[], &app)));
    p.wait_line("ready pid=", DEADLINE);
    let args: Vec<String> = p.lines_so_far().into_iter().filter(|l| l.starts_with("arg ")).collect();
    assert_eq!(
        args,
        ["arg [-h]", "arg [--stop-timeout]", "arg [abc]", "arg [--]", "arg [-V]"],
        "{}",
        p.dump()
    );
}

#[test]
fn environment_passes_through_untouched() {
    let mut cmd = reinit_cmd(["--", "env"]);
    let path = std::env::var("PATH").unwrap_or_else(|_| "/usr/bin:/bin".into());
    cmd.env_clear().env("PATH", &path).env("FAKE_APP_VAR", "x y=z\tw");
    let mut p = Proc::spawn(cmd);
    assert_eq!(p.wait_code(DEADLINE), 0, "{}", p.dump());
    let mut got = p.lines_so_far();
    got.sort();
    let mut want = vec![format!("PATH={path}"), "FAKE_APP_VAR=x y=z\tw".to_string()];
    want.sort();
    assert_eq!(got, want, "the app's environment must be exactly reinit's\n{}", p.dump());
}

#[test]
fn stdin_passes_through() {
    let mut cmd = reinit_cmd(with_app(&[], &["--stdin-echo"]));
    cmd.stdin(Stdio::piped());
    let mut p = Proc::spawn(cmd);
    p.wait_line("ready pid=", DEADLINE);
    let mut stdin = p.take_stdin();
    stdin.write_all(b"hello\nsecond line\n").unwrap();
    drop(stdin);
    p.wait_line(line_eq("in:hello"), DEADLINE);
    p.wait_line(line_eq("in:second line"), DEADLINE);
    p.wait_line(line_eq("stdin eof"), DEADLINE);
    p.signal(libc::SIGTERM);
    assert_eq!(p.wait_code(DEADLINE), 0, "{}", p.dump());
}

#[test]
fn cwd_passes_through() {
    let dir = TempDir::new("cwd");
    let mut cmd = reinit_cmd(with_app(&[], &["--cwd", "--exit", "0"]));
    cmd.current_dir(dir.path());
    let mut p = Proc::spawn(cmd);
    let want = format!("cwd={}", dir.path().canonicalize().unwrap().display());
    p.wait_line(line_eq(want), DEADLINE);
    assert_eq!(p.wait_code(DEADLINE), 0, "{}", p.dump());
}

#[test]
fn clean_run_prints_only_the_apps_output() {
    let (mut p, ready) = start(&[], &[]);
    p.signal(libc::SIGUSR1);
    p.wait_line(line_eq("signal 10"), DEADLINE);
    p.signal(libc::SIGTERM);
    assert_eq!(p.wait_code(DEADLINE), 0, "{}", p.dump());
    assert_eq!(p.lines_so_far(), [ready.as_str(), "signal 10", "signal 15"], "{}", p.dump());
    assert_eq!(p.stderr_so_far(), "", "a run where nothing goes wrong is silent\n{}", p.dump());
}

fn bits(sigs: &[i32]) -> u64 {
    sigs.iter().fold(0, |mask, sig| mask | 1 << (sig - 1))
}

/// The kernel's `struct sigaction` (generic layout, used by x86_64 and aarch64).
#[repr(C)]
struct KernelSigaction {
    handler: libc::sighandler_t,
    flags: libc::c_ulong,
    restorer: usize,
    mask: u64,
}

/// Makes `cmd` start with exactly `blocked` blocked and `ignored` ignored, every other signal
/// at its default disposition — including glibc's reserved 32 and 33, which the test runner
/// may have inherited ignored and which only the raw syscall can reset.
fn with_signal_state(cmd: &mut Command, blocked: &'static [i32], ignored: &'static [i32]) {
    // SAFETY: only rt_sigaction/sigprocmask syscalls with pointers to locals, all
    // async-signal-safe; no allocation.
    #[allow(unsafe_code)]
    unsafe {
        cmd.pre_exec(move || {
            for sig in 1..=64 {
                if matches!(sig, libc::SIGKILL | libc::SIGSTOP) {
                    continue;
                }
                let handler = if ignored.contains(&sig) { libc::SIG_IGN } else { libc::SIG_DFL };
                let action = KernelSigaction { handler, flags: 0, restorer: 0, mask: 0 };
                let rc = libc::syscall(
                    libc::SYS_rt_sigaction,
                    sig,
                    &raw const action,
                    std::ptr::null_mut::<KernelSigaction>(),
                    8usize,
                );
                if rc != 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            for &sig in blocked {
                libc::sigaddset(&mut set, sig);
            }
            libc::sigprocmask(libc::SIG_SETMASK, &set, std::ptr::null_mut());
            Ok(())
        });
    }
}

/// (SigBlk, SigIgn) as fake_app reports them at start.
fn reported_mask(cmd: Command) -> (u64, u64) {
    let mut p = Proc::spawn(cmd);
    let line = p.wait_line("sigblk=", DEADLINE);
    assert_eq!(p.wait_code(DEADLINE), 0, "{}", p.dump());
    let hex = |key| u64::from_str_radix(field(&line, key).unwrap(), 16).unwrap();
    (hex("sigblk"), hex("sigign"))
}

fn assert_mask_passes_through(blocked: &'static [i32], ignored: &'static [i32]) {
    let app_args = ["--sigmask", "--exit", "0"];
    // The fixture itself must report exactly what it was given.
    let mut direct = Command::new(fake_app());
    direct.args(app_args);
    prepare(&mut direct);
    with_signal_state(&mut direct, blocked, ignored);
    assert_eq!(
        reported_mask(direct),
        (bits(blocked), bits(ignored)),
        "fake_app must report its inherited state"
    );

    let mut cmd = reinit_cmd(with_app(&[], &app_args));
    with_signal_state(&mut cmd, blocked, ignored);
    let want_ignored = bits(ignored) & !bits(&[libc::SIGCHLD]);
    let (blk, ign) = reported_mask(cmd);
    assert_eq!(
        (format!("{blk:016x}"), format!("{ign:016x}")),
        (format!("{:016x}", bits(blocked)), format!("{want_ignored:016x}")),
        "(SigBlk, SigIgn) of the app vs what reinit was given (minus SIGCHLD)"
    );
}

#[test]
fn signal_mask_and_ignored_signals_pass_through() {
    if skip_under_qemu("signal_mask_and_ignored_signals_pass_through", Case::InheritedIgnore) {
        return;
    }
    assert_mask_passes_through(&[libc::SIGUSR2], &[libc::SIGUSR1, libc::SIGPIPE, libc::SIGCHLD]);
}

#[test]
fn default_signal_state_passes_through() {
    // Nothing blocked or ignored given: the app must not see reinit's own blocked mask, nor the
    // Rust runtime's ignored SIGPIPE.
    assert_mask_passes_through(&[], &[]);
}

#[test]
fn app_gets_no_extra_fd() {
    let mut p = Proc::spawn(reinit_cmd(with_app(&[], &["--fds", "--exit", "0"])));
    p.wait_line(line_eq("fds=0,1,2"), DEADLINE);
    assert_eq!(p.wait_code(DEADLINE), 0, "{}", p.dump());
}

#[test]
fn inherited_fd_stays_open_for_app() {
    let mut cmd = reinit_cmd(with_app(&[], &["--fds", "--exit", "0"]));
    // SAFETY: dup2 is async-signal-safe; it runs after the harness closed inherited fds.
    #[allow(unsafe_code)]
    unsafe {
        cmd.pre_exec(|| {
            libc::dup2(2, 7);
            Ok(())
        });
    }
    let mut p = Proc::spawn(cmd);
    p.wait_line(line_eq("fds=0,1,2,7"), DEADLINE);
    assert_eq!(p.wait_code(DEADLINE), 0, "{}", p.dump());
}
