//! `--restart-on-exit` with exponential backoff (1 s, doubling).

use super::with_app;
use crate::util::{DEADLINE, Proc, num_field, reinit_cmd};
use std::time::Duration;

/// Waiting for a restart may take the backoff on top of the usual deadline.
const RESTART_DEADLINE: Duration = Duration::from_secs(40);

#[test]
fn on_failure_restarts_failing_app_with_backoff() {
    let mut p = Proc::spawn(reinit_cmd(with_app(&["--restart-on-exit", "on-failure"], &["--exit", "3"])));
    let (first, t1) = p.wait_line_at("ready pid=", DEADLINE);
    let (second, t2) = p.wait_line_at("ready pid=", RESTART_DEADLINE);
    let (_, t3) = p.wait_line_at("ready pid=", RESTART_DEADLINE);
    assert_ne!(num_field(&first, "pid"), num_field(&second, "pid"), "a restart is a new process");
    let (gap1, gap2) = (t2 - t1, t3 - t2);
    // Lower bounds only, with a little slack for when the reader thread saw each line.
    assert!(gap1 >= Duration::from_millis(900), "first backoff {gap1:?} < 1 s\n{}", p.dump());
    assert!(gap2 >= Duration::from_millis(1800), "second backoff {gap2:?} < 2 s (doubling)\n{}", p.dump());
}

#[test]
fn on_failure_restarts_crashed_app() {
    let mut p =
        Proc::spawn(reinit_cmd(with_app(&["--restart-on-exit", "on-failure"], &["--kill-self", "6"])));
    p.wait_line("ready pid=", DEADLINE);
    p.wait_line("ready pid=", RESTART_DEADLINE);
}

#[test]
fn on_failure_clean_exit_ends_with_0() {
    let mut p = Proc::spawn(reinit_cmd(with_app(&["--restart-on-exit", "on-failure"], &["--exit", "0"])));
    assert_eq!(p.wait_code(DEADLINE), 0, "{}", p.dump());
    assert_eq!(p.count("ready pid="), 1, "a clean exit is not restarted\n{}", p.dump());
}

#[test]
fn always_restarts_after_clean_exit() {
    let mut p = Proc::spawn(reinit_cmd(with_app(&["--restart-on-exit", "always"], &["--exit", "0"])));
    p.wait_line("ready pid=", DEADLINE);
    p.wait_line("ready pid=", RESTART_DEADLINE);
}

#[test]
fn never_is_the_default() {
    let mut p = Proc::spawn(reinit_cmd(with_app(&[], &["--exit", "3"])));
    assert_eq!(p.wait_code(DEADLINE), 3, "{}", p.dump());
    assert_eq!(p.count("ready pid="), 1, "{}", p.dump());
}
