//! No periodic timer — reinit does not wake up while nothing happens.

use super::start;
use crate::util::{DEADLINE, poll_until};
use std::time::Duration;

/// Voluntary context switches of all of `pid`'s threads: each is one sleep → wake-up.
fn wakeups(pid: i32) -> u64 {
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).expect("reinit's /proc entry");
    tasks
        .filter_map(Result::ok)
        .filter_map(|t| std::fs::read_to_string(t.path().join("status")).ok())
        .filter_map(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("voluntary_ctxt_switches:"))
                .and_then(|v| v.trim().parse::<u64>().ok())
        })
        .sum()
}

#[test]
fn no_wakeups_while_idle() {
    let (mut p, _) = start(&[], &[]);
    let reinit = p.pid();
    // Let start-up settle: two readings 200 ms apart agree.
    let mut last = wakeups(reinit);
    let settled = poll_until(DEADLINE, || {
        std::thread::sleep(Duration::from_millis(200));
        let now = wakeups(reinit);
        std::mem::replace(&mut last, now) == now
    });
    assert!(settled, "reinit never stopped waking up\n{}", p.dump());
    // The measurement window (a measurement, not synchronisation).
    let before = wakeups(reinit);
    std::thread::sleep(Duration::from_secs(2));
    let after = wakeups(reinit);
    assert_eq!(after - before, 0, "reinit woke up {} times in 2 s of idle\n{}", after - before, p.dump());
    p.signal(libc::SIGTERM);
    assert_eq!(p.wait_code(DEADLINE), 0, "{}", p.dump());
}
