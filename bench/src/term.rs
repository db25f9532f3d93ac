//! `term`: SIGTERM to a fresh instance → the app gets it, and → the init exits.

use crate::*;
use std::os::fd::{FromRawFd, OwnedFd};

/// What each init did with the SIGTERM of one fresh instance, µs after the `kill`.
struct Term {
    to_app: f64,
    to_exit: f64,
}

pub(crate) fn term(inits: &[Init], o: &Opts, c: &Counts, report: &mut Report) -> Res<()> {
    progress(&format!(
        "term: SIGTERM to {} fresh instances of each of {} inits as PID 1, round robin, all on one CPU",
        c.term_instances,
        inits.len()
    ));
    // One CPU for the driver, the inits and the apps, as in the signal section's first pass:
    // where each process lands otherwise decides more than the inits do.
    let Some(&cpu) = allowed_cpus().last() else {
        return Err(fail("cannot read this process's CPU affinity"));
    };
    let old = pin_to(cpu)?;
    let result = term_rounds(inits, o, c, report);
    restore_affinity(&old);
    result
}

fn term_rounds(inits: &[Init], o: &Opts, c: &Counts, report: &mut Report) -> Res<()> {
    let app = vec![o.fake_app.display().to_string(), "--stamp".to_string()];
    let n = inits.len();
    let (mut to_app, mut to_exit) = (vec![Vec::new(); n], vec![Vec::new(); n]);
    let mut lost = vec![0usize; n];
    let rounds = c.term_warmup + c.term_instances;
    for round in 0..rounds {
        if round % 50 == 0 {
            progress(&format!("term: round {}/{rounds}", round + 1));
        }
        for k in 0..n {
            let i = (k + round) % n;
            match fresh_term(&inits[i], &app) {
                Ok(t) if round >= c.term_warmup => {
                    to_app[i].push(t.to_app);
                    to_exit[i].push(t.to_exit);
                }
                Ok(_) => {}
                Err(e) => {
                    lost[i] += 1;
                    if debug() {
                        eprintln!("bench: term: {}: {e}", inits[i].name);
                    }
                }
            }
        }
    }
    for (i, res) in report.inits.iter_mut().enumerate().take(n) {
        res.term_app_p50_us = percentile(&to_app[i], 0.50);
        res.term_app_p99_us = percentile(&to_app[i], 0.99);
        res.term_exit_p50_us = percentile(&to_exit[i], 0.50);
        res.term_exit_p99_us = percentile(&to_exit[i], 0.99);
        res.term_lost += lost[i];
    }
    Ok(())
}

/// One fresh instance: the init as PID 1 wrapping `fake_app --stamp`; once the app says
/// `ready`, SIGTERM to the init (its first signal), then the time the app handled it (the
/// `at=` of its `signal 15` line: the same clock, read by the app itself, so the figure does not
/// depend on when the driver next gets the CPU) and the time of the init's exit (its pidfd
/// turning readable, seen by the driver).
fn fresh_term(init: &Init, app: &[String]) -> Res<Term> {
    let mut r = start(&init.argv(true, app), true, Stdio::null(), true)?;
    let pidfd = pidfd_open(r.pid)?;
    if r.lines()?.expect("ready", Instant::now() + Duration::from_secs(10)).is_none() {
        return Err(fail("the app never became ready"));
    }
    let t0 = Instant::now();
    let t0_ns = monotonic_ns();
    send(r.pid, libc::SIGTERM);
    let (line, exited) = until_term_done(r.lines()?, &pidfd, t0 + Duration::from_secs(3))?;
    reap(&mut r, Instant::now() + Duration::from_secs(3));
    let to_app = app_us(t0_ns, &line).ok_or_else(|| fail(format!("no time in `{line}`")))?;
    Ok(Term { to_app, to_exit: exited.duration_since(t0).as_secs_f64() * 1e6 })
}

/// Waits for both the app's `signal 15` line (it carries the app's own time of the signal) and
/// the init's exit, whichever comes first; returns the line and when the driver saw the exit.
fn until_term_done(lines: &mut Lines, pidfd: &OwnedFd, deadline: Instant) -> Res<(String, Instant)> {
    let (mut got, mut exited) = (None, None);
    loop {
        while got.is_none() {
            let Some((line, _)) = lines.ready.pop_front() else { break };
            if line.starts_with("signal 15") {
                got = Some(line);
            }
        }
        if let (Some(line), Some(e)) = (&got, exited) {
            return Ok((line.clone(), e));
        }
        if got.is_none() && lines.eof {
            return Err(fail("the app's output ended without `signal 15`"));
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(fail(format!(
                "no {} within 3 s",
                if got.is_none() { "`signal 15` from the app" } else { "exit of the init" }
            )));
        }
        let ms = u16::try_from(left.as_micros().div_ceil(1000)).unwrap_or(u16::MAX);
        let (out_ready, pid_ready) = {
            let mut fds = vec![PollFd::new(pidfd.as_fd(), PollFlags::POLLIN)];
            if got.is_none() {
                fds.push(PollFd::new(lines.out.as_fd(), PollFlags::POLLIN));
            }
            match poll(&mut fds, PollTimeout::from(ms)) {
                Ok(0) | Err(nix::errno::Errno::EINTR) => continue,
                Ok(_) => {}
                Err(e) => return Err(fail(format!("poll: {e}"))),
            }
            let ready = |f: &PollFd| f.revents().is_some_and(|r| !r.is_empty());
            (fds.get(1).is_some_and(ready), ready(&fds[0]))
        };
        if pid_ready && exited.is_none() {
            exited = Some(Instant::now());
        }
        if out_ready {
            // Reads what is there (the deadline is now) into `lines.ready`.
            if let Some(first) = lines.next_until(Instant::now()) {
                lines.ready.push_front(first);
            }
        }
    }
}

/// Waits for `unshare` to follow its child out; kills what is left at the deadline.
fn reap(r: &mut Running, deadline: Instant) {
    while Instant::now() < deadline {
        if matches!(r.child.try_wait(), Ok(Some(_))) {
            return;
        }
        std::thread::sleep(Duration::from_micros(500));
    }
    r.kill(Vec::new());
}

/// A pidfd for `pid`: it turns readable when the process exits (the measure of "the init
/// exits", taken on the init itself rather than on `unshare`, which still has to reap it).
fn pidfd_open(pid: i32) -> Res<OwnedFd> {
    // SAFETY: pidfd_open(2) takes a pid and flags, and returns a new fd or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        return Err(fail(format!("pidfd_open({pid}): {}", std::io::Error::last_os_error())));
    }
    let fd = i32::try_from(fd).map_err(|_| fail("pidfd_open: fd out of range"))?;
    // SAFETY: a fresh fd that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}
