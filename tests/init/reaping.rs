//! Reaping as PID 1 and as a subreaper; SIGCHLD ignored at start.

use super::with_app;
use crate::util::emulation::{Case, skip_under_qemu};
use crate::util::{
    DEADLINE, Proc, as_pid1, field, line_eq, num_field, poll_until, reinit_cmd, zombies_under,
};
use std::os::unix::process::CommandExt;
use std::time::{Duration, Instant};

/// Asserts that no zombie stays below reinit (orphans were reaped).
fn assert_no_zombies(p: &mut Proc) {
    let reinit = p.pid();
    let mut left = Vec::new();
    let reaped = poll_until(DEADLINE, || {
        left = zombies_under(reinit);
        left.is_empty()
    });
    assert!(reaped, "zombies left under reinit {reinit}: {left:?}\n{}", p.dump());
}

/// Runs `fake_app --orphans n` under `p` and checks each orphan's new parent was `ppid`.
fn orphans_reaped(mut p: Proc, n: usize, ppid: i32) {
    p.wait_line("orphans spawned", DEADLINE);
    let want = ppid.to_string();
    let orphans: Vec<String> =
        p.lines_so_far().into_iter().filter(|l| l.starts_with("orphan ppid=")).collect();
    assert_eq!(orphans.len(), n, "{}", p.dump());
    assert!(
        orphans.iter().all(|l| field(l, "ppid") == Some(want.as_str())),
        "orphans must be reparented to reinit (ppid={want})\n{}",
        p.dump()
    );
    assert_no_zombies(&mut p);
    p.signal(libc::SIGTERM);
    assert_eq!(p.wait_code(DEADLINE), 0, "{}", p.dump());
}

#[test]
fn double_fork_leaves_no_zombie_as_pid1() {
    let p = Proc::spawn(as_pid1(with_app(&[], &["--orphans", "1"])));
    orphans_reaped(p, 1, 1);
}

#[test]
fn hundred_orphans_all_reaped_as_pid1() {
    let p = Proc::spawn(as_pid1(with_app(&[], &["--orphans", "100"])));
    orphans_reaped(p, 100, 1);
}

#[test]
fn subreaper_reaps_orphans_without_warning() {
    if skip_under_qemu("subreaper_reaps_orphans_without_warning", Case::Subreaper) {
        return;
    }
    let mut p = Proc::spawn(reinit_cmd(with_app(&[], &["--orphans", "5"])));
    let reinit = p.pid();
    p.wait_line("orphans spawned", DEADLINE);
    let orphans: Vec<String> =
        p.lines_so_far().into_iter().filter(|l| l.starts_with("orphan ppid=")).collect();
    assert_eq!(orphans.len(), 5, "{}", p.dump());
    assert!(
        orphans.iter().all(|l| num_field(l, "ppid") == reinit),
        "not PID 1, reinit must be the child subreaper (ppid={reinit})\n{}",
        p.dump()
    );
    assert_no_zombies(&mut p);
    p.signal(libc::SIGTERM);
    assert_eq!(p.wait_code(DEADLINE), 0, "{}", p.dump());
    assert_eq!(p.stderr_so_far(), "", "being a subreaper is silent\n{}", p.dump());
}

#[test]
fn coalesced_sigchld_race_500_runs_as_pid1() {
    // The app's child dies while the app's own exit races with an orphan's: SIGCHLDs coalesce.
    // Each run must end with 0, promptly; a lost reap hangs.
    let script = "bash -c 'sleep 0.01 & kill -9 $BASHPID'; sleep 0.0087";
    let per_run = Duration::from_secs(15);
    let started = Instant::now();
    for run in 0..500 {
        let mut p = Proc::spawn(as_pid1(["--", "bash", "-c", script]));
        let status = p.wait_exit(per_run);
        assert_eq!(status.code(), Some(0), "run {run}: {status:?}\n{}", p.dump());
    }
    eprintln!("500 runs in {:?}", started.elapsed());
}

#[test]
fn started_with_sigchld_ignored_still_works() {
    let mut cmd = reinit_cmd(with_app(&[], &["--sigmask", "--orphans", "3", "--exit", "7"]));
    // SAFETY: signal(2) is async-signal-safe.
    #[allow(unsafe_code)]
    unsafe {
        cmd.pre_exec(|| {
            libc::signal(libc::SIGCHLD, libc::SIG_IGN);
            Ok(())
        });
    }
    let mut p = Proc::spawn(cmd);
    let reinit = p.pid();
    assert_eq!(
        p.wait_code(DEADLINE),
        7,
        "SIGCHLD ignored at start must not lose the app's status\n{}",
        p.dump()
    );
    let mask = p.wait_line("sigign=", DEADLINE);
    let ign = u64::from_str_radix(field(&mask, "sigign").unwrap(), 16).unwrap();
    assert_eq!(ign & (1 << (libc::SIGCHLD - 1)), 0, "the app must get SIGCHLD at default\n{}", p.dump());
    if !skip_under_qemu("started_with_sigchld_ignored_still_works: orphans' parent", Case::Subreaper) {
        let orphans = p.count(|l: &str| l == format!("orphan ppid={reinit}"));
        assert_eq!(orphans, 3, "{}", p.dump());
    }
    assert_eq!(p.count(line_eq("orphans spawned")), 1, "{}", p.dump());
}
