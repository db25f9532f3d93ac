//! reinit's exit status (the table in `reinit --help` and the README).

use super::start;
use crate::util::{DEADLINE, Proc, TempDir, num_field, reinit_cmd, signal_pid};
use std::ffi::OsStr;
use std::os::unix::fs::PermissionsExt;

#[test]
fn every_exit_code_0_to_255_passes_through() {
    for code in 0..=255 {
        let mut p = Proc::spawn(reinit_cmd(["--", "sh", "-c", &format!("exit {code}")]));
        let got = p.wait_code(DEADLINE);
        assert_eq!(got, code, "app exited {code}\n{}", p.dump());
    }
}

#[test]
fn app_killed_from_outside_gives_128_plus_signal() {
    for sig in [libc::SIGTERM, libc::SIGHUP, libc::SIGQUIT, libc::SIGKILL, libc::SIGUSR2] {
        let (mut p, ready) = start(&[], &["--no-catch"]);
        signal_pid(num_field(&ready, "pid"), sig);
        let got = p.wait_code(DEADLINE);
        assert_eq!(got, 128 + sig, "app killed by signal {sig}\n{}", p.dump());
    }
}

#[test]
fn remap_exit_143_to_0() {
    let (mut p, ready) = start(&["-e", "143"], &["--no-catch"]);
    signal_pid(num_field(&ready, "pid"), libc::SIGTERM);
    assert_eq!(p.wait_code(DEADLINE), 0, "-e 143 must turn a TERM death into 0\n{}", p.dump());
}

#[test]
fn remap_exit_with_explicit_target() {
    let mut p = Proc::spawn(reinit_cmd(["--remap-exit", "3:4", "--", "sh", "-c", "exit 3"]));
    assert_eq!(p.wait_code(DEADLINE), 4, "--remap-exit 3:4\n{}", p.dump());
    // Codes that are not mapped stay as they are.
    let mut p = Proc::spawn(reinit_cmd(["-e", "3:4", "--", "sh", "-c", "exit 5"]));
    assert_eq!(p.wait_code(DEADLINE), 5, "-e 3:4 must leave 5 alone\n{}", p.dump());
}

#[test]
fn missing_command_is_127_and_named() {
    for cmd in ["/nonexistent-dir/reinit-no-such-cmd", "reinit-no-such-cmd-on-path"] {
        let mut p = Proc::spawn(reinit_cmd(["--", cmd]));
        assert_eq!(p.wait_code(DEADLINE), 127, "{}", p.dump());
        let err = p.stderr_so_far();
        assert!(err.contains(cmd), "stderr must name the missing command {cmd:?}\n{}", p.dump());
    }
}

#[test]
fn missing_script_interpreter_is_127_and_named() {
    let dir = TempDir::new("interp");
    let script = dir.path().join("script.sh");
    std::fs::write(&script, "#!/nonexistent-dir/reinit-no-such-interpreter\necho hi\n").unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let mut p = Proc::spawn(reinit_cmd([OsStr::new("--"), script.as_os_str()]));
    assert_eq!(p.wait_code(DEADLINE), 127, "{}", p.dump());
    let err = p.stderr_so_far();
    assert!(
        err.contains("/nonexistent-dir/reinit-no-such-interpreter"),
        "stderr must name the missing interpreter, not just the script\n{}",
        p.dump()
    );
}

#[test]
fn directory_as_command_is_126() {
    let dir = TempDir::new("dir-cmd");
    let mut p = Proc::spawn(reinit_cmd([OsStr::new("--"), dir.path().as_os_str()]));
    assert_eq!(p.wait_code(DEADLINE), 126, "{}", p.dump());
}

#[test]
fn file_without_x_bit_is_126() {
    let dir = TempDir::new("nox");
    let script = dir.path().join("not-executable.sh");
    std::fs::write(&script, "#!/bin/sh\necho should-not-run\n").unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o644)).unwrap();
    let mut p = Proc::spawn(reinit_cmd([OsStr::new("--"), script.as_os_str()]));
    assert_eq!(p.wait_code(DEADLINE), 126, "{}", p.dump());
    assert!(p.lines_so_far().is_empty(), "nothing may run\n{}", p.dump());
}
