//! Hostile inputs and bad moments: whatever it is pointed at and whenever a signal comes, reinit
//! never blocks, never skips a step of the stop sequence, and leaves nothing behind.

use crate::util::kubelet::{self, Kubelet, Options};
use crate::util::{
    DEADLINE, KillOnDrop, Proc, TempDir, alive, is_ready, num_field, path_str as s, poll_until, reinit_bin,
    reinit_cmd, signal_pid, with_app,
};
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::process::Command;
use std::time::Duration;

/// Pids of live processes whose command line contains `needle`.
fn processes_with(needle: &str) -> Vec<i32> {
    let Ok(dir) = fs::read_dir("/proc") else { return Vec::new() };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            let cmdline = fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            let state = fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            String::from_utf8_lossy(&cmdline).replace('\0', " ").contains(needle) && !state.contains(") Z ")
        })
        .collect()
}

#[test]
fn pseudo_files_are_refused_at_start() {
    for path in ["/proc/self", "/proc/self/pagemap", "/sys"] {
        let mut p = Proc::spawn(reinit_cmd(["-w", path, "--", "echo", "started"]));
        assert_eq!(p.wait_code(DEADLINE), 2, "{}", p.dump());
        let err = p.stderr_so_far();
        assert!(err.starts_with("reinit: error: ") && !err.contains('\n'), "one line: {err}");
        assert!(err.contains(path) && err.contains("pseudo-filesystem"), "{err}");
        assert_eq!(p.count("started"), 0, "the app must not start\n{}", p.dump());
    }
}

#[test]
fn signals_are_handled_while_a_huge_file_is_hashed() {
    let tmp = TempDir::new("huge");
    let dir = tmp.path().join("etc");
    fs::create_dir(&dir).unwrap();
    let conf = dir.join("app.yaml");
    fs::write(&conf, "v0").unwrap();
    let mut p = Proc::spawn(reinit_cmd(with_app(&["-v", "-w", &s(&dir)], &["--config", &s(&conf)])));
    p.wait_line(is_ready, DEADLINE);
    // 64 GiB (sparse): reading and hashing it takes minutes, far past every deadline here.
    fs::File::create(dir.join("huge.bin")).unwrap().set_len(64 << 30).unwrap();
    p.wait_stderr("reading the watched content");
    p.signal(libc::SIGUSR1);
    p.wait_line(|l: &str| l == "signal 10", DEADLINE);
    p.signal(libc::SIGTERM);
    p.wait_line(|l: &str| l == "signal 15", DEADLINE);
    assert_eq!(p.wait_code(DEADLINE), 0, "{}", p.dump());
    assert_eq!(p.count(is_ready), 1, "no restart\n{}", p.dump());
}

/// A validator (`/bin/sh SCRIPT {}`) that records its pid and waits until `go` exists.
fn gate(tmp: &TempDir) -> (String, std::path::PathBuf, std::path::PathBuf) {
    let (script, pidfile, go) = (tmp.path().join("gate.sh"), tmp.path().join("pid"), tmp.path().join("go"));
    fs::write(
        &script,
        format!("echo $$ > {}\nwhile [ ! -e {} ]; do sleep 0.01; done\n", s(&pidfile), s(&go)),
    )
    .unwrap();
    (format!("/bin/sh {} {{}}", s(&script)), pidfile, go)
}

#[test]
fn the_validator_runs_beside_the_loop_and_a_stop_kills_it() {
    let tmp = TempDir::new("validator-async");
    let file = tmp.path().join("app.yaml");
    fs::write(&file, "v0").unwrap();
    let (check, pidfile, _go) = gate(&tmp);
    let f = s(&file);
    // A validator timeout (the stop timeout) far beyond every deadline here.
    let args = ["--stop-timeout", "5m", "-w", &f, "--validate", &check];
    let mut p = Proc::spawn(reinit_cmd(with_app(&args, &["--config", &f])));
    p.wait_line(is_ready, DEADLINE);
    kubelet::write_in_place(&file, b"v1");
    assert!(poll_until(DEADLINE, || fs::read_to_string(&pidfile).is_ok_and(|t| t.ends_with('\n'))));
    let validator: i32 = fs::read_to_string(&pidfile).unwrap().trim().parse().unwrap();
    let _guard = KillOnDrop(validator);
    // While it runs: signals are forwarded, and a stop is a normal stop.
    p.signal(libc::SIGUSR1);
    p.wait_line(|l: &str| l == "signal 10", DEADLINE);
    p.signal(libc::SIGTERM);
    p.wait_line(|l: &str| l == "signal 15", DEADLINE);
    assert_eq!(p.wait_code(DEADLINE), 0, "{}", p.dump());
    assert!(poll_until(DEADLINE, || !alive(validator)), "the validator was left running");
    assert_eq!(p.count(is_ready), 1, "no restart\n{}", p.dump());
}

#[test]
fn term_during_a_config_restart_is_a_graceful_stop() {
    let tmp = TempDir::new("term-in-restart");
    let file = tmp.path().join("app.yaml");
    fs::write(&file, "v0").unwrap();
    let f = s(&file);
    let args = ["--stop-timeout", "2s", "-w", &f];
    let mut p = Proc::spawn(reinit_cmd(with_app(&args, &["--config", &f, "--ignore-term"])));
    p.wait_line(is_ready, DEADLINE);
    kubelet::write_in_place(&file, b"v1");
    p.wait_line(|l: &str| l == "signal 15", DEADLINE); // the restart's stop signal
    p.signal(libc::SIGTERM);
    // The stop goes on with the grace it has left, then SIGKILL: not an immediate SIGKILL.
    assert_eq!(p.wait_code(DEADLINE), 137, "{}", p.dump());
    let err = p.stderr_so_far();
    assert!(err.contains("did not stop within 2 s"), "the grace was skipped:\n{}", p.dump());
    assert_eq!(p.count(is_ready), 1, "a new app was started during the stop\n{}", p.dump());
}

#[test]
fn every_changed_file_is_validated_and_removed_ones_are_not() {
    let tmp = TempDir::new("validate-each");
    let dir = tmp.path().join("volume");
    let mut k = Kubelet::new(&dir, Options::default());
    k.write(&[("a.json", b"ok a0"), ("b.json", b"ok b0")]);
    let script = tmp.path().join("check.sh");
    fs::write(&script, "case \"$(cat \"$1\")\" in ok*) ;; *) echo \"bad: $1\"; exit 1;; esac\n").unwrap();
    let check = format!("/bin/sh {} {{}}", s(&script));
    let (a, b) = (s(&dir.join("a.json")), s(&dir.join("b.json")));
    let args = ["-w", &s(&dir), "--validate", &check];
    let mut p = Proc::spawn(reinit_cmd(with_app(&args, &["--config", &a, "--config", &b])));
    p.wait_line(is_ready, DEADLINE);
    // One update: a valid a.json, a broken b.json: refused as a whole.
    k.write(&[("a.json", b"ok a1"), ("b.json", b"broken")]);
    let line = p.wait_stderr("rejected");
    assert!(line.contains(&format!("bad: {b}")), "{line}");
    // Both valid: acted on.
    k.write(&[("a.json", b"ok a2"), ("b.json", b"ok b2")]);
    p.wait_line(is_ready, DEADLINE);
    // A key removed: nothing to validate, the validator never sees the deleted path.
    k.write(&[("a.json", b"ok a2")]);
    p.wait_line(is_ready, DEADLINE);
    let err = p.stderr_so_far();
    assert_eq!(err.matches("rejected").count(), 1, "{}", p.dump());
    assert_eq!(p.count(is_ready), 3, "{}", p.dump());
}

#[test]
fn an_unreadable_file_is_warned_about_and_is_no_change() {
    let tmp = TempDir::new("unreadable");
    fs::set_permissions(tmp.path(), fs::Permissions::from_mode(0o755)).unwrap();
    let file = tmp.path().join("app.yaml");
    fs::write(&file, "v0").unwrap();
    fs::set_permissions(&file, fs::Permissions::from_mode(0o600)).unwrap();
    let f = s(&file);
    let mut cmd = Command::new("setpriv");
    cmd.args(["--reuid", "65534", "--regid", "65534", "--clear-groups", "--"]).arg(reinit_bin());
    cmd.args(with_app(&["-w", &f], &["--config", &f]));
    crate::util::prepare(&mut cmd);
    let mut p = Proc::spawn(cmd);
    p.wait_line(is_ready, DEADLINE);
    let warning = p.wait_stderr("cannot read");
    assert!(warning.contains(&f) && warning.contains("uid 65534 gid 65534"), "{warning}");
    // Readable: its content is what the app is measured against from now on.
    fs::set_permissions(&file, fs::Permissions::from_mode(0o644)).unwrap();
    kubelet::write_in_place(&file, b"v1");
    p.wait_line(is_ready, DEADLINE);
    // Unreadable again: warned about, and no restart, even when the content changes meanwhile.
    fs::set_permissions(&file, fs::Permissions::from_mode(0o600)).unwrap();
    assert!(poll_until(DEADLINE, || p.stderr_so_far().matches("cannot read").count() == 2), "{}", p.dump());
    kubelet::write_in_place(&file, b"v2");
    fs::set_permissions(&file, fs::Permissions::from_mode(0o640)).unwrap();
    let extra = poll_until(Duration::from_millis(600), || p.count(is_ready) > 2);
    assert!(!extra, "a permission change restarted the app\n{}", p.dump());
    p.signal(libc::SIGTERM);
    assert_eq!(p.wait_code(DEADLINE), 0, "{}", p.dump());
}

#[test]
fn escaped_descendants_are_killed_at_exit() {
    let tag = format!("1003.{}", std::process::id());
    let script = format!("setsid sh -c 'trap \"\" TERM; sleep {tag}' & sleep 0.2; exit 5");
    let mut p = Proc::spawn(reinit_cmd(["--stop-timeout", "1s", "--", "sh", "-c", &script]));
    assert_eq!(p.wait_code(DEADLINE), 5, "{}", p.dump());
    let left = processes_with(&format!("sleep {tag}"));
    for pid in &left {
        signal_pid(*pid, libc::SIGKILL);
    }
    assert!(left.is_empty(), "left running: {left:?}\n{}", p.dump());
    assert!(!p.stderr_so_far().contains("survived SIGKILL"), "{}", p.dump());
}

#[test]
fn a_year_long_timeout_is_fine_at_run_time() {
    let mut p = Proc::spawn(reinit_cmd(with_app(&["--stop-timeout", "8760h", "--pre-stop-delay", "0"], &[])));
    p.wait_line(is_ready, DEADLINE);
    p.signal(libc::SIGTERM);
    assert_eq!(p.wait_code(DEADLINE), 0, "{}", p.dump());
}

#[test]
fn a_crash_loop_is_visible_at_the_default_level() {
    let args = ["--restart-on-exit", "on-failure"];
    let mut p = Proc::spawn(reinit_cmd(with_app(&args, &["--exit", "3"])));
    let crash = p.wait_stderr("exited with status 3");
    assert!(crash.contains("restarting it in 1 s"), "{crash}");
    let restart = p.wait_stderr("restarted the app");
    let pid = num_field(&p.wait_line(is_ready, DEADLINE), "pid");
    let pid2 = num_field(&p.wait_line(is_ready, DEADLINE), "pid");
    assert_ne!(pid, pid2);
    assert!(restart.contains("after it exited"), "{restart}");
    p.signal(libc::SIGTERM);
    p.wait_exit(DEADLINE);
}

#[test]
fn a_file_name_cannot_forge_a_log_line() {
    let tmp = TempDir::new("forge");
    let dir = tmp.path().join("etc");
    fs::create_dir(&dir).unwrap();
    fs::write(dir.join("app.yaml"), "v0").unwrap();
    let mut p = Proc::spawn(reinit_cmd(with_app(&["-w", &s(&dir)], &[])));
    p.wait_line(is_ready, DEADLINE);
    fs::write(dir.join("x\nreinit: error: forged"), "boo").unwrap();
    p.wait_line(is_ready, DEADLINE);
    let line = p.wait_stderr("restarted the app");
    assert!(line.contains("x\\nreinit: error: forged"), "{line}");
    assert!(!p.stderr_so_far().lines().any(|l| l.starts_with("reinit: error: forged")), "{}", p.dump());
}

/// `sh -c 'ulimit -n N; exec reinit ARGS'`.
fn under_fd_limit(n: u32, args: &[&str]) -> Proc {
    let mut cmd = Command::new("sh");
    cmd.args(["-c", &format!("ulimit -n {n} && exec \"$0\" \"$@\""), &s(&reinit_bin())]).args(args);
    crate::util::prepare(&mut cmd);
    Proc::spawn(cmd)
}

#[test]
fn running_out_of_fds_is_reinits_error_not_the_apps() {
    let tmp = TempDir::new("fds");
    let f = s(&tmp.path().join("app.yaml"));
    fs::write(&f, "v0").unwrap();
    // Too few for the inotify instance: the message names the open-file limit.
    let mut p = under_fd_limit(4, &["-w", &f, "--", "true"]);
    assert_eq!(p.wait_code(DEADLINE), 125, "{}", p.dump());
    let err = p.stderr_so_far();
    assert!(err.contains("ulimit -n is 4") && !err.contains("max_user_instances"), "{err}");
    // From just enough to watch upwards: the app starts (reinit's spawn needs no extra fd), or
    // reinit says it is out of fds (125); never the app's 126.
    for n in 5..12 {
        let mut p = under_fd_limit(n, &["-w", &f, "--", "true"]);
        let code = p.wait_code(DEADLINE);
        assert!(code == 0 || code == 125, "ulimit -n {n}: exit {code}\n{}", p.dump());
        if code == 125 {
            assert!(p.stderr_so_far().contains("ulimit -n is"), "ulimit -n {n}:\n{}", p.dump());
        }
    }
}

#[test]
fn a_command_name_cannot_forge_a_log_line_and_an_empty_one_is_not_found() {
    let mut p = Proc::spawn(reinit_cmd(["--", "x\nreinit: error: forged"]));
    assert_eq!(p.wait_code(DEADLINE), 127, "{}", p.dump());
    let err = p.stderr_so_far();
    assert!(err.contains("x\\nreinit: error: forged") && err.lines().count() == 1, "{err}");
    let mut p = Proc::spawn(reinit_cmd(["--", ""]));
    assert_eq!(p.wait_code(DEADLINE), 127, "{}", p.dump());
    assert!(p.stderr_so_far().contains("empty command"), "{}", p.dump());
}
