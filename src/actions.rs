//! The supervisor: what to do about the app, as a state machine with deadlines. Every input
//! (a stop request, the app's exit, its group gone, a content change, a deadline passing) is a
//! method taking the current time and returning `Action`s for the event loop to carry out.
//! No I/O and no clock of its own, so every path is unit-tested with made-up instants.

use crate::config::{Forward, OnChange, RestartPolicy};
use crate::signals::Signal;
use std::time::{Duration, Instant};

/// Where a signal goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// The app process only.
    App,
    /// The app's whole process group.
    Group,
    /// reinit's other children: orphans it adopted as PID 1 or subreaper.
    Orphans,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Start the app; report back with `spawned` or `spawn_failed`.
    Spawn,
    Signal(Target, Signal),
    /// Log that the stop timeout passed (a SIGKILL follows).
    TimedOut,
    /// Log that the group would not die after SIGKILL and we go on regardless.
    GaveUpWaiting,
    Exit(u8),
}

/// What happens once the app and the rest of its group are gone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Then {
    /// Exit with the app's (remapped) status.
    ExitWithApp,
    Exit(u8),
    Restart,
    RestartAfterBackoff,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// No app: sidecar mode, or between `Spawn` and its report.
    Idle,
    Running,
    /// reinit got SIGTERM; the stop signal goes out at `until` (`--pre-stop-delay`).
    Draining {
        until: Instant,
        sig: Signal,
    },
    /// The stop signal went out; SIGKILL at `kill_at`; after SIGKILL, wait until `give_up_at`.
    Stopping {
        kill_at: Instant,
        give_up_at: Option<Instant>,
    },
    /// Waiting to restart an app that exited by itself.
    Backoff {
        until: Instant,
    },
    Done,
}

/// The parts of `Config` the supervisor decides with.
#[derive(Debug, Clone)]
pub struct Policy {
    pub stop_signal: Signal,
    pub stop_timeout: Duration,
    pub pre_stop_delay: Duration,
    pub forward: Forward,
    pub restart_on_exit: RestartPolicy,
    pub remap_exit: Vec<(u8, u8)>,
    pub sidecar: bool,
}

pub const BACKOFF_FIRST: Duration = Duration::from_secs(1);
pub const BACKOFF_MAX: Duration = Duration::from_secs(30);
/// An app up this long before exiting restarts with the first backoff again.
pub const BACKOFF_RESET_AFTER: Duration = Duration::from_secs(10);
/// After SIGKILL, how long to wait for the group to vanish (a process stuck in the kernel, or
/// a zombie held by a stranger) before going on without it.
pub const KILL_GRACE: Duration = Duration::from_secs(5);

pub struct Supervisor {
    policy: Policy,
    phase: Phase,
    then: Then,
    app_running: bool,
    /// The app's last exit code (128+N for signals), before remapping.
    last_code: Option<u8>,
    started_at: Option<Instant>,
    backoff: Duration,
    /// The signal the current stop sent (for the rest of the group once the app is gone).
    stop_sig: Signal,
}

impl Supervisor {
    pub fn new(policy: Policy) -> Supervisor {
        Supervisor {
            policy,
            phase: Phase::Idle,
            then: Then::ExitWithApp,
            app_running: false,
            last_code: None,
            started_at: None,
            backoff: BACKOFF_FIRST,
            stop_sig: Signal::TERM,
        }
    }

    #[cfg(test)]
    pub fn phase(&self) -> Phase {
        self.phase
    }

    pub fn app_running(&self) -> bool {
        self.app_running
    }

    /// The first actions: start the app (nothing in sidecar mode).
    pub fn start(&mut self) -> Vec<Action> {
        if self.policy.sidecar { Vec::new() } else { vec![Action::Spawn] }
    }

    pub fn spawned(&mut self, now: Instant) {
        self.app_running = true;
        self.started_at = Some(now);
        if !matches!(self.phase, Phase::Done) {
            self.phase = Phase::Running;
        }
    }

    /// The exec failed with `code` (126/127). The first start ends reinit; a later one counts
    /// as the app ending by itself.
    pub fn spawn_failed(&mut self, now: Instant, code: u8) -> Vec<Action> {
        self.last_code = Some(code);
        if self.started_at.is_none() {
            self.phase = Phase::Done;
            return vec![Action::Exit(code)];
        }
        self.phase = Phase::Running;
        self.started_at = Some(now);
        self.app_exited(now, code)
    }

    /// Whether the loop should watch for the app's group (and, on a final stop, our other
    /// children) to be gone, and call `group_gone`.
    pub fn awaiting_group(&self) -> bool {
        matches!(self.phase, Phase::Stopping { .. }) && !self.app_running
    }

    /// Whether the current stop ends reinit (so adopted orphans are stopped too).
    pub fn final_stop(&self) -> bool {
        matches!(self.then, Then::ExitWithApp | Then::Exit(_))
    }

    fn exit_status(&self) -> u8 {
        let code = self.last_code.unwrap_or(0);
        self.policy.remap_exit.iter().find(|(from, _)| *from == code).map_or(code, |(_, to)| *to)
    }

    fn stop_target(&self) -> Target {
        match self.policy.forward {
            Forward::Group => Target::Group,
            Forward::Child => Target::App,
        }
    }

    fn begin_stop(&mut self, now: Instant, sig: Signal, then: Then) -> Vec<Action> {
        self.then = then;
        self.stop_sig = sig;
        self.phase = Phase::Stopping { kill_at: now + self.policy.stop_timeout, give_up_at: None };
        let mut out = vec![Action::Signal(self.stop_target(), sig)];
        if self.final_stop() {
            out.push(Action::Signal(Target::Orphans, sig));
        }
        out
    }

    fn kill_now(&mut self, now: Instant) -> Vec<Action> {
        self.phase = Phase::Stopping { kill_at: now, give_up_at: Some(now + KILL_GRACE) };
        let mut out = vec![Action::Signal(Target::Group, Signal::KILL)];
        if self.final_stop() {
            out.push(Action::Signal(Target::Orphans, Signal::KILL));
        }
        out
    }

    fn finish(&mut self, out: Vec<Action>) -> Vec<Action> {
        self.phase = Phase::Done;
        out
    }

    /// reinit received its stop request (SIGTERM); `sig` is what the app gets.
    pub fn terminate(&mut self, now: Instant, sig: Signal) -> Vec<Action> {
        match self.phase {
            Phase::Running if !self.policy.pre_stop_delay.is_zero() => {
                self.then = Then::ExitWithApp;
                self.phase = Phase::Draining { until: now + self.policy.pre_stop_delay, sig };
                Vec::new()
            }
            Phase::Running => self.begin_stop(now, sig, Then::ExitWithApp),
            Phase::Draining { .. } | Phase::Stopping { .. } => self.force(now),
            Phase::Idle | Phase::Backoff { .. } => {
                let code = if self.policy.sidecar { 0 } else { self.exit_status() };
                self.finish(vec![Action::Exit(code)])
            }
            Phase::Done => Vec::new(),
        }
    }

    /// A second stop request (SIGTERM or SIGINT during a stop): SIGKILL now, and exit after.
    pub fn force(&mut self, now: Instant) -> Vec<Action> {
        match self.phase {
            Phase::Draining { .. } | Phase::Stopping { .. } => {
                if !self.final_stop() {
                    // shutting down wins over a restart in progress
                    self.then = Then::ExitWithApp;
                }
                self.kill_now(now)
            }
            _ => Vec::new(),
        }
    }

    /// Whether SIGINT is a second stop request now (else it is forwarded like any signal).
    pub fn stopping(&self) -> bool {
        matches!(self.phase, Phase::Draining { .. } | Phase::Stopping { .. })
    }

    /// The app process was reaped with exit `code`.
    pub fn app_exited(&mut self, now: Instant, code: u8) -> Vec<Action> {
        self.app_running = false;
        self.last_code = Some(code);
        match self.phase {
            Phase::Running | Phase::Draining { .. } => {
                let failed = code != 0;
                let restart = match self.policy.restart_on_exit {
                    RestartPolicy::Never => false,
                    RestartPolicy::OnFailure => failed,
                    RestartPolicy::Always => true,
                };
                let draining = matches!(self.phase, Phase::Draining { .. });
                let then = if restart && !draining { Then::RestartAfterBackoff } else { Then::ExitWithApp };
                // Helpers left in the app's group get the same stop sequence.
                self.begin_stop(now, self.policy.stop_signal, then)
                    .into_iter()
                    .map(|a| match a {
                        Action::Signal(Target::App, sig) => Action::Signal(Target::Group, sig),
                        a => a,
                    })
                    .collect()
            }
            // Stopped with --forward child: the app is gone, now the rest of its group.
            Phase::Stopping { give_up_at: None, .. } if self.policy.forward == Forward::Child => {
                vec![Action::Signal(Target::Group, self.stop_sig)]
            }
            _ => Vec::new(),
        }
    }

    /// The app is reaped and its group (plus, on a final stop, our other children) is empty.
    pub fn group_gone(&mut self, now: Instant) -> Vec<Action> {
        if !self.awaiting_group() {
            return Vec::new();
        }
        match self.then {
            Then::ExitWithApp => {
                let code = self.exit_status();
                self.finish(vec![Action::Exit(code)])
            }
            Then::Exit(code) => self.finish(vec![Action::Exit(code)]),
            Then::Restart => {
                self.phase = Phase::Idle;
                vec![Action::Spawn]
            }
            Then::RestartAfterBackoff => {
                if self.started_at.is_some_and(|t| now.duration_since(t) >= BACKOFF_RESET_AFTER) {
                    self.backoff = BACKOFF_FIRST;
                }
                let delay = self.backoff;
                self.backoff = (self.backoff * 2).min(BACKOFF_MAX);
                self.phase = Phase::Backoff { until: now + delay };
                Vec::new()
            }
        }
    }

    /// A watched path really changed.
    pub fn change(&mut self, now: Instant, what: OnChange) -> Vec<Action> {
        match (what, self.phase) {
            (_, Phase::Done) => Vec::new(),
            (OnChange::Restart, Phase::Running) => {
                self.begin_stop(now, self.policy.stop_signal, Then::Restart)
            }
            (OnChange::Restart, Phase::Backoff { .. }) => {
                self.phase = Phase::Idle;
                vec![Action::Spawn]
            }
            (OnChange::Restart, Phase::Stopping { .. }) if !self.final_stop() => {
                self.then = Then::Restart;
                Vec::new()
            }
            (OnChange::Signal(sig), Phase::Running) => vec![Action::Signal(Target::App, sig)],
            (OnChange::Exit(code), Phase::Running) => {
                self.begin_stop(now, self.policy.stop_signal, Then::Exit(code))
            }
            (OnChange::Exit(code), Phase::Idle | Phase::Backoff { .. }) if !self.app_running => {
                self.finish(vec![Action::Exit(code)])
            }
            (OnChange::Exit(code), Phase::Stopping { .. } | Phase::Draining { .. }) => {
                if matches!(self.phase, Phase::Draining { .. }) {
                    return self.begin_stop(now, self.policy.stop_signal, Then::Exit(code));
                }
                self.then = Then::Exit(code);
                Vec::new()
            }
            _ => Vec::new(),
        }
    }

    /// Deadlines that have passed.
    pub fn tick(&mut self, now: Instant) -> Vec<Action> {
        match self.phase {
            Phase::Draining { until, sig } if now >= until => self.begin_stop(now, sig, Then::ExitWithApp),
            Phase::Stopping { kill_at, give_up_at: None } if now >= kill_at => {
                let mut out = vec![Action::TimedOut];
                out.extend(self.kill_now(now));
                out
            }
            Phase::Stopping { give_up_at: Some(t), .. } if now >= t => {
                // Going on without them: an app still not reaped counts as killed.
                if self.app_running {
                    self.app_running = false;
                    self.last_code = Some(128 + libc::SIGKILL as u8);
                }
                let mut out = vec![Action::GaveUpWaiting];
                out.extend(self.group_gone(now));
                out
            }
            Phase::Backoff { until } if now >= until => {
                self.phase = Phase::Idle;
                vec![Action::Spawn]
            }
            _ => Vec::new(),
        }
    }

    pub fn next_deadline(&self) -> Option<Instant> {
        match self.phase {
            Phase::Draining { until, .. } | Phase::Backoff { until } => Some(until),
            Phase::Stopping { kill_at, give_up_at } => Some(give_up_at.unwrap_or(kill_at)),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Action::*;
    use Target::*;
    // the variant, not the type `Signal` that `super::*` brings in too
    use Action::Signal;

    const TERM: crate::signals::Signal = crate::signals::Signal::TERM;
    const KILL: crate::signals::Signal = crate::signals::Signal::KILL;
    const INT: crate::signals::Signal = crate::signals::Signal::INT;
    const HUP: crate::signals::Signal = crate::signals::Signal::HUP;

    fn policy() -> Policy {
        Policy {
            stop_signal: TERM,
            stop_timeout: Duration::from_secs(10),
            pre_stop_delay: Duration::ZERO,
            forward: Forward::Group,
            restart_on_exit: RestartPolicy::Never,
            remap_exit: Vec::new(),
            sidecar: false,
        }
    }

    fn running(p: Policy, t0: Instant) -> Supervisor {
        let mut s = Supervisor::new(p);
        assert_eq!(s.start(), [Spawn]);
        s.spawned(t0);
        s
    }

    fn secs(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    #[test]
    fn term_stops_the_group_then_exits_with_the_apps_status() {
        let t0 = Instant::now();
        let mut s = running(policy(), t0);
        assert_eq!(s.terminate(t0, TERM), [Signal(Group, TERM), Signal(Orphans, TERM)]);
        assert_eq!(s.next_deadline(), Some(t0 + secs(10)));
        assert!(s.tick(t0 + secs(9)).is_empty());
        assert!(s.app_exited(t0 + secs(1), 143).is_empty());
        assert!(s.awaiting_group());
        assert_eq!(s.group_gone(t0 + secs(1)), [Exit(143)]);
        assert_eq!(s.phase(), Phase::Done);
    }

    #[test]
    fn ignoring_term_gets_sigkill_after_the_timeout() {
        let t0 = Instant::now();
        let mut s = running(policy(), t0);
        s.terminate(t0, TERM);
        assert_eq!(s.tick(t0 + secs(10)), [TimedOut, Signal(Group, KILL), Signal(Orphans, KILL)]);
        s.app_exited(t0 + secs(10), 137);
        assert_eq!(s.group_gone(t0 + secs(10)), [Exit(137)]);
    }

    #[test]
    fn a_second_term_kills_at_once() {
        let t0 = Instant::now();
        let mut s = running(policy(), t0);
        s.terminate(t0, TERM);
        assert_eq!(s.terminate(t0 + secs(1), TERM), [Signal(Group, KILL), Signal(Orphans, KILL)]);
        assert!(s.stopping());
    }

    #[test]
    fn pre_stop_delay_holds_the_signal_back() {
        let t0 = Instant::now();
        let mut s = running(Policy { pre_stop_delay: secs(2), ..policy() }, t0);
        assert!(s.terminate(t0, INT).is_empty());
        assert_eq!(s.next_deadline(), Some(t0 + secs(2)));
        assert!(s.tick(t0 + secs(1)).is_empty());
        assert_eq!(s.tick(t0 + secs(2)), [Signal(Group, INT), Signal(Orphans, INT)]);
    }

    #[test]
    fn forward_child_sends_the_stop_signal_to_the_app_only() {
        let t0 = Instant::now();
        let mut s = running(Policy { forward: Forward::Child, ..policy() }, t0);
        assert_eq!(s.terminate(t0, TERM)[0], Signal(App, TERM));
        // once the app is gone, the rest of its group gets the stop signal too
        assert_eq!(s.app_exited(t0 + secs(1), 0), [Signal(Group, TERM)]);
        let mut s = running(Policy { forward: Forward::Child, ..policy() }, t0);
        s.terminate(t0, TERM);
        // the SIGKILL always takes the whole group
        assert_eq!(s.tick(t0 + secs(10))[1], Signal(Group, KILL));
    }

    #[test]
    fn app_exit_stops_its_helpers_then_exits_remapped() {
        let t0 = Instant::now();
        let mut s = running(Policy { remap_exit: vec![(143, 0)], forward: Forward::Child, ..policy() }, t0);
        assert_eq!(s.app_exited(t0, 143), [Signal(Group, TERM), Signal(Orphans, TERM)]);
        assert_eq!(s.group_gone(t0), [Exit(0)]);
    }

    #[test]
    fn restart_on_change_waits_for_the_group_then_spawns() {
        let t0 = Instant::now();
        let mut s = running(policy(), t0);
        assert_eq!(s.change(t0, OnChange::Restart), [Signal(Group, TERM)]);
        assert!(!s.final_stop());
        // another change during the restart is picked up by it
        assert!(s.change(t0, OnChange::Restart).is_empty());
        s.app_exited(t0, 143);
        assert_eq!(s.group_gone(t0), [Spawn]);
        s.spawned(t0);
        assert_eq!(s.phase(), Phase::Running);
    }

    #[test]
    fn term_during_a_restart_exits() {
        let t0 = Instant::now();
        let mut s = running(policy(), t0);
        s.change(t0, OnChange::Restart);
        assert_eq!(s.terminate(t0, TERM), [Signal(Group, KILL), Signal(Orphans, KILL)]);
        s.app_exited(t0, 137);
        assert_eq!(s.group_gone(t0), [Exit(137)]);
    }

    #[test]
    fn signal_and_exit_changes() {
        let t0 = Instant::now();
        let mut s = running(policy(), t0);
        assert_eq!(s.change(t0, OnChange::Signal(HUP)), [Signal(App, HUP)]);
        assert_eq!(s.change(t0, OnChange::Exit(3)), [Signal(Group, TERM), Signal(Orphans, TERM)]);
        s.app_exited(t0, 0);
        assert_eq!(s.group_gone(t0), [Exit(3)]);
    }

    #[test]
    fn on_failure_backs_off_doubling_and_resets() {
        let t0 = Instant::now();
        let mut s = running(Policy { restart_on_exit: RestartPolicy::OnFailure, ..policy() }, t0);
        let mut t = t0;
        for expect in [1, 2, 4, 8, 16, 30, 30] {
            s.app_exited(t, 1);
            assert!(!s.final_stop());
            assert!(s.group_gone(t).is_empty());
            assert_eq!(s.next_deadline(), Some(t + secs(expect)));
            t += secs(expect);
            assert_eq!(s.tick(t), [Spawn]);
            s.spawned(t);
        }
        // up for 10 s: back to 1 s
        t += secs(10);
        s.app_exited(t, 1);
        s.group_gone(t);
        assert_eq!(s.next_deadline(), Some(t + secs(1)));
        // a clean exit ends it
        let mut s = running(Policy { restart_on_exit: RestartPolicy::OnFailure, ..policy() }, t0);
        s.app_exited(t0, 0);
        assert_eq!(s.group_gone(t0), [Exit(0)]);
    }

    #[test]
    fn always_restarts_a_clean_exit_and_term_in_backoff_exits() {
        let t0 = Instant::now();
        let mut s = running(Policy { restart_on_exit: RestartPolicy::Always, ..policy() }, t0);
        s.app_exited(t0, 0);
        s.group_gone(t0);
        assert!(matches!(s.phase(), Phase::Backoff { .. }));
        assert_eq!(s.terminate(t0, TERM), [Exit(0)]);
    }

    #[test]
    fn exec_failure_first_time_exits_later_counts_as_a_crash() {
        let t0 = Instant::now();
        let mut s = Supervisor::new(policy());
        s.start();
        assert_eq!(s.spawn_failed(t0, 127), [Exit(127)]);
        let mut s = running(Policy { restart_on_exit: RestartPolicy::OnFailure, ..policy() }, t0);
        s.change(t0, OnChange::Restart);
        s.app_exited(t0, 143);
        assert_eq!(s.group_gone(t0), [Spawn]);
        s.spawn_failed(t0, 126);
        s.group_gone(t0);
        assert!(matches!(s.phase(), Phase::Backoff { .. }));
    }

    #[test]
    fn a_group_that_will_not_die_is_given_up_on() {
        let t0 = Instant::now();
        let mut s = running(policy(), t0);
        s.terminate(t0, TERM);
        s.tick(t0 + secs(10));
        assert_eq!(s.next_deadline(), Some(t0 + secs(10) + KILL_GRACE));
        assert_eq!(s.tick(t0 + secs(10) + KILL_GRACE), [GaveUpWaiting, Exit(137)]);
    }

    #[test]
    fn sidecar_exits_zero_on_term_and_code_on_change() {
        let mut s = Supervisor::new(Policy { sidecar: true, ..policy() });
        assert!(s.start().is_empty());
        assert_eq!(s.terminate(Instant::now(), TERM), [Exit(0)]);
        let mut s = Supervisor::new(Policy { sidecar: true, ..policy() });
        assert!(s.change(Instant::now(), OnChange::Siblings(HUP)).is_empty(), "the loop signals siblings");
        assert_eq!(s.change(Instant::now(), OnChange::Exit(4)), [Exit(4)]);
    }
}
