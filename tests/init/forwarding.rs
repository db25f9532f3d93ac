//! Every catchable signal reaches the app; `--forward`; `--map-signal`.

use super::{start, with_app};
use crate::util::emulation::{Case, skip_under_qemu};
use crate::util::{DEADLINE, Proc, as_pid1, fake_app, line_eq, reinit_cmd};
use std::time::Duration;

/// Every catchable signal 1–31 except CHLD, KILL, STOP (and TERM, sent last because it stops
/// the app), plus real-time signals.
const FORWARDED: [i32; 30] = [
    1, 2, 3, 4, 5, 6, 7, 8, 10, 11, 12, 13, 14, 16, 18, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 34,
    40, 64,
];

/// "Within a second" on an idle machine; five for a loaded 2-core one.
const SOON: Duration = Duration::from_secs(5);

fn signal_line(sig: i32) -> impl Fn(&str) -> bool {
    line_eq(format!("signal {sig}"))
}

/// Sends `sig` to reinit and waits until the app reports it. Because reinit handles signals in
/// order and the app prints them in order, everything reinit forwarded before `sig` has been
/// printed once this returns: use it as a barrier before asserting that a line is absent.
fn barrier(p: &mut Proc, sig: i32) {
    p.signal(sig);
    p.wait_line(signal_line(sig), SOON);
}

fn assert_forwards_everything(mut p: Proc) {
    p.wait_line("ready pid=", DEADLINE);
    for sig in FORWARDED {
        if matches!(sig, libc::SIGILL | libc::SIGFPE | libc::SIGSEGV | libc::SIGBUS)
            && skip_under_qemu(&format!("forwarding signal {sig}"), Case::FaultSignals)
        {
            continue;
        }
        p.signal(sig);
        p.wait_line(signal_line(sig), SOON);
    }
    p.signal(libc::SIGTERM);
    p.wait_line(signal_line(libc::SIGTERM), SOON);
    assert_eq!(p.wait_code(DEADLINE), 0, "{}", p.dump());
}

#[test]
fn forwards_every_catchable_signal_not_pid1() {
    assert_forwards_everything(Proc::spawn(reinit_cmd(with_app(&[], &[]))));
}

#[test]
fn forwards_every_catchable_signal_as_pid1() {
    assert_forwards_everything(Proc::spawn(as_pid1(with_app(&[], &[]))));
}

/// The app is a shell running the pipeline `yes | fake_app --exit-on 10` in its process group.
/// The shell and `yes` ignore USR1; on TERM the shell passes TERM to its whole group itself, so
/// fake_app reports `signal 15` whatever reinit's stop sequence does.
fn pipeline(forward: Option<&str>) -> Proc {
    let mut args: Vec<String> = Vec::new();
    if let Some(mode) = forward {
        args.extend(["--forward".to_string(), mode.to_string()]);
    }
    let script = "trap '' USR1; trap 'trap - TERM; kill -TERM 0' TERM; yes | \"$0\" --exit-on 10 & wait";
    args.extend(["--", "sh", "-c", script].map(String::from));
    args.push(fake_app());
    let mut p = Proc::spawn(reinit_cmd(args));
    let ready = p.wait_line("ready pid=", DEADLINE);
    let (pid, pgid) = (crate::util::num_field(&ready, "pid"), crate::util::num_field(&ready, "pgid"));
    assert_ne!(pid, pgid, "fake_app must be a member, not the leader, of the app's group: {ready}");
    p
}

#[test]
fn forward_group_reaches_pipeline_member() {
    for mode in [Some("group"), None] {
        let mut p = pipeline(mode);
        p.signal(libc::SIGUSR1);
        p.wait_line(signal_line(libc::SIGUSR1), SOON);
        assert_eq!(p.wait_code(DEADLINE), 0, "forward {mode:?}\n{}", p.dump());
    }
}

#[test]
fn forward_child_does_not_reach_pipeline_member() {
    let mut p = pipeline(Some("child"));
    p.signal(libc::SIGUSR1);
    // TERM reaches fake_app (through the shell at least); had USR1 reached it first, it would
    // have exited on it and never printed `signal 15`.
    p.signal(libc::SIGTERM);
    p.wait_line(signal_line(libc::SIGTERM), DEADLINE);
    p.wait_exit(DEADLINE);
    assert_eq!(
        p.count(signal_line(libc::SIGUSR1)),
        0,
        "--forward child leaked USR1 to the group\n{}",
        p.dump()
    );
}

#[test]
fn map_signal_term_to_int() {
    let (mut p, _) = start(&["--map-signal", "15:2"], &["--exit-on", "2"]);
    p.signal(libc::SIGTERM);
    p.wait_line(signal_line(libc::SIGINT), SOON);
    assert_eq!(p.wait_code(DEADLINE), 0, "{}", p.dump());
    assert_eq!(p.count(signal_line(libc::SIGTERM)), 0, "TERM must arrive as INT only\n{}", p.dump());
}

fn assert_swaps_usr1_usr2(mut p: Proc) {
    p.wait_line("ready pid=", DEADLINE);
    p.signal(libc::SIGUSR1);
    p.wait_line(signal_line(libc::SIGUSR2), SOON);
    p.signal(libc::SIGUSR2);
    p.wait_line(signal_line(libc::SIGUSR1), SOON);
    barrier(&mut p, libc::SIGHUP);
    let signals: Vec<String> = p.lines_so_far().into_iter().filter(|l| l.starts_with("signal ")).collect();
    assert_eq!(signals, ["signal 12", "signal 10", "signal 1"], "{}", p.dump());
}

#[test]
fn map_signal_swaps_usr1_and_usr2() {
    let p = Proc::spawn(reinit_cmd(with_app(&["--map-signal", "10:12", "--map-signal", "12:10"], &[])));
    assert_swaps_usr1_usr2(p);
}

#[test]
fn map_signal_list_from_env() {
    let mut cmd = reinit_cmd(with_app(&[], &[]));
    cmd.env("REINIT_MAP_SIGNAL", "10:12,12:10");
    assert_swaps_usr1_usr2(Proc::spawn(cmd));
}

#[test]
fn map_signal_to_zero_drops_it() {
    for spec in ["28:0", "WINCH:none"] {
        let (mut p, _) = start(&["--map-signal", spec], &[]);
        p.signal(libc::SIGWINCH);
        // Two barriers: whichever order reinit reads 28 and 10 in, 28 would be printed before
        // the app sees 12.
        barrier(&mut p, libc::SIGUSR1);
        barrier(&mut p, libc::SIGUSR2);
        assert_eq!(
            p.count(signal_line(libc::SIGWINCH)),
            0,
            "--map-signal {spec} must drop WINCH\n{}",
            p.dump()
        );
        // Other signals still flow.
        p.signal(libc::SIGTERM);
        assert_eq!(p.wait_code(DEADLINE), 0, "{}", p.dump());
    }
}
