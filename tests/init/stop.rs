//! The stop sequence: on SIGTERM, and when the app exits by itself.

use super::{start, with_app};
use crate::util::{
    DEADLINE, KillOnDrop, Proc, alive, line_eq, num_field, poll_until, proc_state, reinit_cmd,
};
use std::time::{Duration, Instant};

/// Well below the 10 s default stop timeout, well above 1 s: tells "the 1 s timeout was used"
/// from "the default was used" even on a loaded machine.
const WELL_BEFORE_DEFAULT: Duration = Duration::from_secs(8);

#[test]
fn term_stops_app_that_handles_it_with_0() {
    let (mut p, _) = start(&[], &[]);
    p.signal(libc::SIGTERM);
    p.wait_line(line_eq("signal 15"), DEADLINE);
    assert_eq!(p.wait_code(DEADLINE), 0, "{}", p.dump());
}

/// Sends TERM to reinit running an app that ignores it; returns (exit code, time to exit).
fn stop_ignoring_app(mut p: Proc) -> (i32, Duration, Proc) {
    p.wait_line("ready pid=", DEADLINE);
    let sent = Instant::now();
    p.signal(libc::SIGTERM);
    p.wait_line(line_eq("signal 15"), DEADLINE);
    let code = p.wait_code(DEADLINE);
    (code, sent.elapsed(), p)
}

#[test]
fn app_ignoring_term_is_killed_after_stop_timeout() {
    let p = Proc::spawn(reinit_cmd(with_app(&["--stop-timeout", "1s"], &["--ignore-term"])));
    let (code, took, mut p) = stop_ignoring_app(p);
    assert_eq!(code, 137, "{}", p.dump());
    assert!(took >= Duration::from_secs(1), "KILL came before the 1 s grace: {took:?}\n{}", p.dump());
    assert!(took < WELL_BEFORE_DEFAULT, "--stop-timeout 1s not honoured: {took:?}\n{}", p.dump());
}

#[test]
fn stop_timeout_from_env() {
    let mut cmd = reinit_cmd(with_app(&[], &["--ignore-term"]));
    cmd.env("REINIT_STOP_TIMEOUT", "1s");
    let (code, took, mut p) = stop_ignoring_app(Proc::spawn(cmd));
    assert_eq!(code, 137, "{}", p.dump());
    assert!(took >= Duration::from_secs(1), "{took:?}\n{}", p.dump());
    assert!(took < WELL_BEFORE_DEFAULT, "REINIT_STOP_TIMEOUT=1s not honoured: {took:?}\n{}", p.dump());
}

#[test]
fn stop_timeout_flag_beats_env() {
    let mut cmd = reinit_cmd(with_app(&["--stop-timeout", "1s"], &["--ignore-term"]));
    cmd.env("REINIT_STOP_TIMEOUT", "60s");
    let (code, took, mut p) = stop_ignoring_app(Proc::spawn(cmd));
    assert_eq!(code, 137, "{}", p.dump());
    assert!(took < WELL_BEFORE_DEFAULT, "the flag must beat REINIT_STOP_TIMEOUT: {took:?}\n{}", p.dump());
}

#[test]
fn stop_signal_flag_is_used() {
    let (mut p, _) = start(&["--stop-signal", "USR1"], &["--exit-on", "10"]);
    p.signal(libc::SIGTERM);
    p.wait_line(line_eq("signal 10"), DEADLINE);
    assert_eq!(p.wait_code(DEADLINE), 0, "{}", p.dump());
    assert_eq!(p.count(line_eq("signal 15")), 0, "the app must get the stop signal, not TERM\n{}", p.dump());
}

#[test]
fn second_term_or_int_kills_at_once() {
    for second in [libc::SIGTERM, libc::SIGINT] {
        let (mut p, _) = start(&["--stop-timeout", "60s"], &["--ignore-term"]);
        let sent = Instant::now();
        p.signal(libc::SIGTERM);
        p.wait_line(line_eq("signal 15"), DEADLINE);
        p.signal(second);
        let code = p.wait_code(DEADLINE);
        assert_eq!(code, 137, "second signal {second}\n{}", p.dump());
        assert!(sent.elapsed() < Duration::from_secs(30), "{}", p.dump());
    }
}

#[test]
fn stop_signal_reaches_rest_of_group_with_forward_child() {
    // The app, a shell, takes 2 s to exit after TERM (a slow shutdown: part of the fixture, not
    // synchronisation). fake_app, a member of its process group, must get the stop signal —
    // from reinit's group stop, or at the latest when the app has exited and its
    // leftovers are stopped — not only SIGKILL when the 30 s stop timeout ends.
    let script = "trap 'sleep 2; exit 0' TERM; \"$0\" & wait";
    let mut p = Proc::spawn(reinit_cmd([
        "--forward",
        "child",
        "--stop-timeout",
        "30s",
        "--",
        "sh",
        "-c",
        script,
        &crate::util::fake_app(),
    ]));
    let ready = p.wait_line("ready pid=", DEADLINE);
    assert_ne!(num_field(&ready, "pid"), num_field(&ready, "pgid"), "fake_app must be a group member");
    p.signal(libc::SIGTERM);
    p.wait_line(line_eq("signal 15"), DEADLINE);
    assert_eq!(p.wait_code(DEADLINE), 0, "{}", p.dump());
}

#[test]
fn pre_stop_delay_delays_the_stop_signal() {
    let (mut p, _) = start(&["--pre-stop-delay", "2s"], &[]);
    let sent = Instant::now();
    p.signal(libc::SIGTERM);
    let (_, seen) = p.wait_line_at(line_eq("signal 15"), DEADLINE);
    let delay = seen.duration_since(sent);
    assert!(
        delay >= Duration::from_secs(2),
        "TERM reached the app after {delay:?}, before the 2 s delay\n{}",
        p.dump()
    );
    assert_eq!(p.wait_code(DEADLINE), 0, "{}", p.dump());
}

/// The app exits by itself (code 3) leaving a helper in its process group.
fn app_exits_leaving_helper(stop_timeout: &str, helper_args: &[&str]) -> (Proc, KillOnDrop, Instant) {
    let mut app_args = vec!["--helper", "--exit", "3"];
    app_args.extend_from_slice(helper_args);
    let mut p = Proc::spawn(reinit_cmd(with_app(&["--stop-timeout", stop_timeout], &app_args)));
    let line = p.wait_line("helper pid=", DEADLINE);
    let exited_at = Instant::now();
    (p, KillOnDrop(num_field(&line, "pid")), exited_at)
}

#[test]
fn helper_left_in_group_is_terminated_before_exit() {
    let (mut p, helper, _) = app_exits_leaving_helper("60s", &[]);
    assert_eq!(p.wait_code(DEADLINE), 3, "the app's own status\n{}", p.dump());
    assert!(!alive(helper.0), "helper {} still running after reinit exited\n{}", helper.0, p.dump());
}

#[test]
fn helper_ignoring_term_is_killed_after_stop_timeout_before_exit() {
    let (mut p, helper, exited_at) = app_exits_leaving_helper("1s", &["--helper-ignore-term"]);
    assert_eq!(p.wait_code(DEADLINE), 3, "the app's own status\n{}", p.dump());
    let took = exited_at.elapsed();
    assert!(!alive(helper.0), "helper {} still running after reinit exited\n{}", helper.0, p.dump());
    assert!(took < WELL_BEFORE_DEFAULT, "--stop-timeout 1s not honoured: {took:?}\n{}", p.dump());
}

#[test]
fn signal_after_app_died_is_harmless() {
    // The app exits at once; its helper ignores TERM, so reinit sits in the 5 s grace period
    // with the app already reaped. Signals arriving then must neither crash nor hang it.
    let mut p = Proc::spawn(reinit_cmd(with_app(
        &["--stop-timeout", "5s"],
        &["--helper", "--helper-ignore-term", "--exit", "4"],
    )));
    let app = num_field(&p.wait_line("ready pid=", DEADLINE), "pid");
    let helper = KillOnDrop(num_field(&p.wait_line("helper pid=", DEADLINE), "pid"));
    assert!(poll_until(DEADLINE, || proc_state(app).is_none()), "app {app} never reaped\n{}", p.dump());
    for sig in [libc::SIGWINCH, libc::SIGHUP, libc::SIGUSR1, 40] {
        if p.try_exit().is_some() {
            break;
        }
        p.signal(sig);
    }
    assert_eq!(p.wait_code(DEADLINE), 4, "{}", p.dump());
    assert!(!alive(helper.0), "{}", p.dump());
    assert!(!p.stderr_so_far().contains("panic"), "{}", p.dump());
}

#[test]
fn parent_death_signal_stops_the_app() {
    // reinit's parent is a shell; when the test kills it, the kernel sends reinit
    // --parent-death-signal TERM, which it handles like a received TERM: the app is stopped.
    let mut cmd = std::process::Command::new("sh");
    cmd.args(["-c", "\"$0\" --parent-death-signal TERM -- \"$1\" & wait"])
        .arg(crate::util::reinit_bin())
        .arg(crate::util::fake_app());
    crate::util::prepare(&mut cmd);
    let mut sh = Proc::spawn(cmd);
    sh.wait_line("ready pid=", DEADLINE);
    let reinit = *crate::util::children_of(sh.pid()).first().expect("reinit under sh");
    let reinit = KillOnDrop(reinit);
    sh.signal(libc::SIGKILL);
    sh.wait_line(line_eq("signal 15"), DEADLINE);
    assert!(poll_until(DEADLINE, || !alive(reinit.0)), "reinit must exit after its stop\n{}", sh.dump());
}
