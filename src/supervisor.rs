//! The supervisor: what to do about the app, as a state machine with deadlines. It owns the
//! app's pid (two during a start-first update) and decides where every signal goes. Every
//! input (a received signal, a reaped child, a group gone, readiness, a content change, a
//! deadline passing) is a method taking the current time and returning `Action`s for the event
//! loop to carry out. No I/O and no clock of its own, so every path is unit-tested with
//! made-up instants.

use crate::config::{Config, Forward, OnChange, RestartPolicy, UpdateOrder};
use crate::signals::Signal;
use crate::time::{after, earliest};
use std::mem::ManuallyDrop;
use std::time::{Duration, Instant};

/// Where a signal goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dest {
    /// One process (an app).
    Process(i32),
    /// A process group (an app's: its id is the app's pid).
    Group(i32),
    /// Every descendant reinit has left once the app's group is gone: orphans it adopted as
    /// PID 1 or subreaper, and their children, escaped sessions included.
    Orphans,
}

/// Why the app is (re)started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cause {
    First,
    /// A content change (`--on-change restart`).
    Change,
    /// It exited by itself (`--restart-on-exit`).
    Exit,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Start an app; report back with `spawned` or `spawn_failed`.
    Spawn(Cause),
    Send(Dest, Signal),
    /// Log that the grace after the stop signal passed (a SIGKILL follows); whether the app
    /// itself, or only processes it left, were still there.
    TimedOut {
        app_alive: bool,
    },
    /// Log that the group would not die after SIGKILL and we go on regardless.
    GaveUpWaiting,
    /// Log that the app exited with `code` and starts again after `delay`.
    BackingOff {
        code: u8,
        delay: Duration,
    },
    /// The app `pid` became ready (`--ready`): its start is complete.
    Ready {
        pid: i32,
    },
    /// Log that the app `pid` was not ready in time; it keeps running (nothing else could).
    NotReady {
        pid: i32,
    },
    /// A start-first update failed: the old app keeps serving, the new content counts as refused.
    UpdateFailed(UpdateFailure),
    Exit(u8),
}

/// The `Action`s of one decision, in order. Nearly always none to four, held inline: the signal
/// path never calls the allocator (a cold `malloc` and `free` were a tenth of the time from a
/// fresh instance's SIGTERM to the app's); any beyond spill to the heap. Plain indexing, no
/// iterator adapters: what runs on a signal is the code a cold CPU has to fetch.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Actions {
    inline: [Option<Action>; INLINE],
    len: usize,
    /// Dropped by hand, only when used: the drop glue of a Vec is code a wake would fetch.
    spilled: ManuallyDrop<Vec<Action>>,
}

impl Drop for Actions {
    #[inline(always)]
    fn drop(&mut self) {
        if self.len > INLINE {
            drop(ManuallyDrop::into_inner(std::mem::take(&mut self.spilled)));
        }
    }
}

const INLINE: usize = 4;

impl Actions {
    #[inline(always)]
    pub fn push(&mut self, action: Action) {
        match self.inline.get_mut(self.len) {
            Some(slot) => *slot = Some(action),
            None => self.spilled.push(action),
        }
        self.len += 1;
    }

    /// Those of `more` after these.
    pub fn extend(&mut self, more: Actions) {
        for i in 0..more.len {
            if let Some(action) = more.get(i) {
                self.push(action);
            }
        }
    }

    #[inline(always)]
    pub fn len(&self) -> usize {
        self.len
    }

    #[inline(always)]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The `i`th action.
    #[inline(always)]
    pub fn get(&self, i: usize) -> Option<Action> {
        match self.inline.get(i) {
            Some(slot) => *slot,
            None => self.spilled.get(i - INLINE).copied(),
        }
    }

    pub fn retain(&mut self, keep: impl Fn(&Action) -> bool) {
        let all = std::mem::take(self);
        for i in 0..all.len {
            if let Some(action) = all.get(i).filter(&keep) {
                self.push(action);
            }
        }
    }
}

impl From<Action> for Actions {
    #[inline(always)]
    fn from(action: Action) -> Self {
        let mut out = Actions::default();
        out.push(action);
        out
    }
}

impl<const N: usize> PartialEq<[Action; N]> for Actions {
    fn eq(&self, other: &[Action; N]) -> bool {
        self.len == N && other.iter().enumerate().all(|(i, a)| self.get(i) == Some(*a))
    }
}

/// Why a new app did not take over from the old one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpdateFailure {
    /// It could not be started (126/127).
    SpawnFailed(u8),
    /// It exited with this status before it was ready.
    Exited(u8),
    /// It was not ready within `--ready-timeout`.
    NotReady,
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
    Running {
        pid: i32,
    },
    /// A new app that is not ready yet (`--ready`), with no other app running.
    Starting {
        pid: i32,
        ready_by: Instant,
    },
    /// `--update-order start-first`: the old app serves while the new one (once spawned) starts.
    Overlap {
        old: i32,
        new: Option<i32>,
        ready_by: Instant,
    },
    /// reinit got SIGTERM; the stop signal goes out at `until` (`--pre-stop-delay`).
    Draining {
        pid: i32,
        until: Instant,
        sig: Signal,
    },
    /// The stop signal went out; SIGKILL at `kill_at`; after SIGKILL, wait until `give_up_at`.
    /// `app_alive` until the app is reaped, `group_alive` until its group is seen empty (after
    /// that its id may belong to a stranger, and is never signalled again).
    Stopping {
        pid: i32,
        app_alive: bool,
        group_alive: bool,
        kill_at: Instant,
        give_up_at: Option<Instant>,
    },
    /// Waiting to restart an app that exited by itself.
    Backoff {
        until: Instant,
    },
    Done,
}

/// An app stopped beside the current one: the old app once the new one is ready (start-first),
/// or a new one that failed to take over. It goes through the same stop sequence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Retiring {
    pid: i32,
    app_alive: bool,
    group_alive: bool,
    kill_at: Instant,
    give_up_at: Option<Instant>,
}

impl Retiring {
    /// The grace is over (or a second stop request came): SIGKILL to its group, if still there.
    fn kill(&mut self, now: Instant) -> Actions {
        self.kill_at = now;
        self.give_up_at = Some(after(now, KILL_GRACE));
        if self.group_alive {
            Actions::from(Action::Send(Dest::Group(self.pid), Signal::KILL))
        } else {
            Actions::default()
        }
    }
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
    /// FROM → TO; `None` drops FROM.
    pub signal_map: Vec<(Signal, Option<Signal>)>,
    pub sidecar: bool,
    pub update_order: UpdateOrder,
    /// `--ready-timeout` when a start waits for readiness (`--ready`).
    pub ready_timeout: Option<Duration>,
}

impl Policy {
    pub fn of(config: &Config) -> Policy {
        Policy {
            stop_signal: config.stop_signal,
            stop_timeout: config.stop_timeout,
            pre_stop_delay: config.pre_stop_delay,
            forward: config.forward,
            restart_on_exit: config.restart_on_exit,
            remap_exit: config.remap_exit.clone(),
            signal_map: config.signal_map.clone(),
            sidecar: config.sidecar(),
            update_order: config.update_order,
            ready_timeout: config.ready.as_ref().map(|_| config.ready_timeout),
        }
    }

    /// What a received `sig` becomes: itself, its `--map-signal` target, or `None` (dropped).
    fn mapped(&self, sig: Signal) -> Option<Signal> {
        match self.signal_map.iter().find(|(from, _)| *from == sig) {
            Some((_, to)) => *to,
            None => Some(sig),
        }
    }
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
    /// The app's last exit code (128+N for signals), before remapping.
    last_code: Option<u8>,
    started_at: Option<Instant>,
    backoff: Duration,
    /// The signal the current stop sent (for the rest of the group once the app is gone).
    stop_sig: Signal,
    /// What the processes left after the app's group last got, in this stop.
    orphans_got: Option<Signal>,
    retiring: Option<Retiring>,
    /// A change came while two apps overlapped: restart again once one is left.
    pending_restart: bool,
}

impl Supervisor {
    pub fn new(policy: Policy) -> Supervisor {
        Supervisor {
            policy,
            phase: Phase::Idle,
            then: Then::ExitWithApp,
            last_code: None,
            started_at: None,
            backoff: BACKOFF_FIRST,
            stop_sig: Signal::TERM,
            orphans_got: None,
            retiring: None,
            pending_restart: false,
        }
    }

    #[cfg(test)]
    pub fn phase(&self) -> Phase {
        self.phase
    }

    /// The current app's pid while it runs (not yet reaped): the one signals are forwarded to
    /// (during a start-first overlap the old one, until the new one is ready).
    pub fn app(&self) -> Option<i32> {
        match self.phase {
            Phase::Running { pid } | Phase::Starting { pid, .. } | Phase::Draining { pid, .. } => Some(pid),
            Phase::Stopping { pid, app_alive: true, .. } => Some(pid),
            Phase::Overlap { old, .. } => Some(old),
            _ => None,
        }
    }

    /// Whether `pid` is one of the apps: the current one, a new one starting beside it, or one
    /// being stopped beside it.
    pub fn is_app(&self, pid: i32) -> bool {
        let new = match self.phase {
            Phase::Overlap { new, .. } => new,
            _ => None,
        };
        self.app() == Some(pid)
            || new == Some(pid)
            || self.retiring.is_some_and(|r| r.pid == pid && r.app_alive)
    }

    /// The new app whose readiness is awaited.
    pub fn awaiting_ready(&self) -> Option<i32> {
        match self.phase {
            Phase::Starting { pid, .. } | Phase::Overlap { new: Some(pid), .. } => Some(pid),
            _ => None,
        }
    }

    /// The first actions: start the app (nothing in sidecar mode).
    pub fn start(&mut self) -> Actions {
        if self.policy.sidecar { Actions::default() } else { Actions::from(Action::Spawn(Cause::First)) }
    }

    /// Whether a `Spawn` is still wanted (a stop request may have come while it was prepared).
    pub fn may_spawn(&self) -> bool {
        matches!(self.phase, Phase::Idle | Phase::Overlap { new: None, .. }) && !self.policy.sidecar
    }

    pub fn spawned(&mut self, now: Instant, pid: i32) {
        self.started_at = Some(now);
        let ready_by = self.policy.ready_timeout.map(|t| after(now, t));
        self.phase = match (self.phase, ready_by) {
            (Phase::Overlap { old, new: None, .. }, ready_by) => {
                // start-first needs --ready (a usage rule); without it, the usual grace
                let ready_by = ready_by.unwrap_or_else(|| after(now, self.policy.stop_timeout));
                Phase::Overlap { old, new: Some(pid), ready_by }
            }
            (_, Some(ready_by)) => Phase::Starting { pid, ready_by },
            (_, None) => Phase::Running { pid },
        };
    }

    /// The exec failed with `code` (126/127). The first start ends reinit; a later one counts
    /// as the app ending by itself; a start-first one leaves the old app serving.
    pub fn spawn_failed(&mut self, now: Instant, code: u8) -> Actions {
        if let Phase::Overlap { old, new: None, .. } = self.phase {
            self.phase = Phase::Running { pid: old };
            return Actions::from(Action::UpdateFailed(UpdateFailure::SpawnFailed(code)));
        }
        self.last_code = Some(code);
        if self.started_at.is_none() {
            self.phase = Phase::Done;
            return Actions::from(Action::Exit(code));
        }
        self.started_at = Some(now);
        if self.wants_restart(code) {
            self.then = Then::RestartAfterBackoff;
            return self.back_off(now, code);
        }
        let code = self.exit_status();
        self.finish(Actions::from(Action::Exit(code)))
    }

    /// The app's group whose end is awaited: after the app was reaped, until it is seen empty.
    pub fn group_to_await(&self) -> Option<i32> {
        match self.phase {
            Phase::Stopping { pid, app_alive: false, group_alive: true, .. } => Some(pid),
            _ => None,
        }
    }

    /// Whether the loop should check whether the stop is over and call `group_gone`.
    pub fn awaiting_exit(&self) -> bool {
        matches!(self.phase, Phase::Stopping { app_alive: false, .. })
    }

    /// The app being stopped beside the current one.
    pub fn retiring_pid(&self) -> Option<i32> {
        self.retiring.map(|r| r.pid)
    }

    /// The retiring app's group whose end is awaited (after that app was reaped): the loop
    /// calls `retired_group_gone` once it is empty.
    pub fn retiring_group_to_await(&self) -> Option<i32> {
        self.retiring.filter(|r| !r.app_alive && r.group_alive).map(|r| r.pid)
    }

    /// Whether the current stop ends reinit (so processes the app left are stopped too).
    pub fn final_stop(&self) -> bool {
        matches!(self.then, Then::ExitWithApp | Then::Exit(_))
    }

    /// Whether SIGINT is a second stop request now (else it is forwarded like any signal).
    pub fn stopping(&self) -> bool {
        matches!(self.phase, Phase::Draining { .. } | Phase::Stopping { .. })
    }

    fn exit_status(&self) -> u8 {
        let code = self.last_code.unwrap_or(0);
        self.policy.remap_exit.iter().find(|(from, _)| *from == code).map_or(code, |(_, to)| *to)
    }

    /// Where the stop signal and forwarded signals go: the app's group, or the app alone
    /// (`--forward child`).
    fn app_dest(&self, pid: i32) -> Dest {
        match self.policy.forward {
            Forward::Group => Dest::Group(pid),
            Forward::Child => Dest::Process(pid),
        }
    }

    fn wants_restart(&self, code: u8) -> bool {
        match self.policy.restart_on_exit {
            RestartPolicy::Never => false,
            RestartPolicy::OnFailure => code != 0,
            RestartPolicy::Always => true,
        }
    }

    fn begin_stop(&mut self, now: Instant, pid: i32, sig: Signal, then: Then) -> Actions {
        self.then = then;
        self.stop_sig = sig;
        self.orphans_got = None;
        let kill_at = after(now, self.policy.stop_timeout);
        self.phase = Phase::Stopping { pid, app_alive: true, group_alive: true, kill_at, give_up_at: None };
        Actions::from(Action::Send(self.app_dest(pid), sig))
    }

    fn kill_now(&mut self, now: Instant) -> Actions {
        let Phase::Stopping { pid, app_alive, group_alive, .. } = self.phase else {
            return Actions::default();
        };
        let give_up_at = Some(after(now, KILL_GRACE));
        self.phase = Phase::Stopping { pid, app_alive, group_alive, kill_at: now, give_up_at };
        if group_alive {
            Actions::from(Action::Send(Dest::Group(pid), Signal::KILL))
        } else {
            Actions::default()
        }
    }

    /// Start stopping `pid` beside the current app, with the stop signal and the usual grace.
    fn retire(&mut self, now: Instant, pid: i32, app_alive: bool) -> Actions {
        let kill_at = after(now, self.policy.stop_timeout);
        self.retiring = Some(Retiring { pid, app_alive, group_alive: true, kill_at, give_up_at: None });
        let dest = if app_alive { self.app_dest(pid) } else { Dest::Group(pid) };
        Actions::from(Action::Send(dest, self.policy.stop_signal))
    }

    fn finish(&mut self, out: Actions) -> Actions {
        self.phase = Phase::Done;
        out
    }

    /// reinit received `sig`.
    pub fn received(&mut self, now: Instant, sig: Signal) -> Actions {
        match sig {
            Signal::CHLD => Actions::default(),
            Signal::TERM | Signal::INT if self.policy.sidecar => self.terminate(now, sig),
            _ if self.policy.sidecar => Actions::default(),
            Signal::TERM => {
                let explicit = self.policy.signal_map.iter().any(|(from, _)| *from == sig);
                let to = if explicit { self.policy.mapped(sig) } else { Some(self.policy.stop_signal) };
                match to {
                    Some(to) => self.terminate(now, to),
                    None => Actions::default(),
                }
            }
            Signal::INT if self.stopping() => self.force(now),
            _ => match (self.policy.mapped(sig), self.app()) {
                (Some(to), Some(pid)) => Actions::from(Action::Send(self.app_dest(pid), to)),
                _ => Actions::default(),
            },
        }
    }

    /// reinit's stop request (SIGTERM); `sig` is what the app gets. A restart in progress
    /// becomes the final stop, with the grace it has left; only a stop request during the final
    /// stop kills at once. During a start-first overlap both apps are stopped.
    pub fn terminate(&mut self, now: Instant, sig: Signal) -> Actions {
        match self.phase {
            Phase::Running { pid } | Phase::Starting { pid, .. } if !self.policy.pre_stop_delay.is_zero() => {
                self.then = Then::ExitWithApp;
                self.phase = Phase::Draining { pid, until: after(now, self.policy.pre_stop_delay), sig };
                Actions::default()
            }
            Phase::Running { pid } | Phase::Starting { pid, .. } => {
                self.begin_stop(now, pid, sig, Then::ExitWithApp)
            }
            Phase::Overlap { old, new, .. } => {
                // the new app is not serving yet: it stops at once; the old one as usual
                let mut out = new.map(|new| self.retire(now, new, true)).unwrap_or_default();
                self.phase = Phase::Running { pid: old };
                out.extend(self.terminate(now, sig));
                out
            }
            Phase::Stopping { .. } if !self.final_stop() => {
                self.then = Then::ExitWithApp;
                Actions::default()
            }
            Phase::Draining { .. } | Phase::Stopping { .. } => self.force(now),
            Phase::Idle | Phase::Backoff { .. } => {
                let code = if self.policy.sidecar { 0 } else { self.exit_status() };
                self.finish(Actions::from(Action::Exit(code)))
            }
            Phase::Done => Actions::default(),
        }
    }

    /// A second stop request (SIGTERM or SIGINT during the final stop): SIGKILL now, exit after.
    pub fn force(&mut self, now: Instant) -> Actions {
        let mut out = self.retiring.as_mut().map_or_else(Actions::default, |r| r.kill(now));
        match self.phase {
            Phase::Draining { pid, sig, .. } => {
                self.begin_stop(now, pid, sig, Then::ExitWithApp);
                out.extend(self.kill_now(now));
            }
            Phase::Stopping { .. } => {
                if !self.final_stop() {
                    self.then = Then::ExitWithApp; // shutting down wins over a restart
                }
                out.extend(self.kill_now(now));
            }
            _ => {}
        }
        out
    }

    /// A child was reaped with exit `code`; only the apps' matter here.
    pub fn reaped(&mut self, now: Instant, pid: i32, code: u8) -> Actions {
        if let Some(r) = self.retiring.as_mut().filter(|r| r.pid == pid && r.app_alive) {
            r.app_alive = false;
            return Actions::default();
        }
        if let Phase::Overlap { old, new, ready_by } = self.phase {
            return self.reaped_in_overlap(now, pid, code, old, new, ready_by);
        }
        if self.app() != Some(pid) {
            return Actions::default();
        }
        self.last_code = Some(code);
        match self.phase {
            Phase::Running { .. } | Phase::Starting { .. } | Phase::Draining { .. } => {
                let draining = matches!(self.phase, Phase::Draining { .. });
                let restart = self.wants_restart(code) && !draining;
                let then = if restart { Then::RestartAfterBackoff } else { Then::ExitWithApp };
                // Helpers left in the app's group get the same stop sequence.
                self.begin_stop(now, pid, self.policy.stop_signal, then);
                self.set_app_gone();
                Actions::from(Action::Send(Dest::Group(pid), self.policy.stop_signal))
            }
            Phase::Stopping { give_up_at, .. } => {
                self.set_app_gone();
                // Stopped with --forward child: the app is gone, now the rest of its group.
                if self.policy.forward == Forward::Child && give_up_at.is_none() {
                    Actions::from(Action::Send(Dest::Group(pid), self.stop_sig))
                } else {
                    Actions::default()
                }
            }
            _ => Actions::default(),
        }
    }

    /// One of two overlapping apps exited: the new one before it was ready (the update
    /// failed, the old one keeps serving), or the old one (the new one carries on starting).
    fn reaped_in_overlap(
        &mut self,
        now: Instant,
        pid: i32,
        code: u8,
        old: i32,
        new: Option<i32>,
        ready_by: Instant,
    ) -> Actions {
        if Some(pid) == new {
            self.phase = Phase::Running { pid: old };
            let mut out = Actions::from(Action::UpdateFailed(UpdateFailure::Exited(code)));
            out.extend(self.retire(now, pid, false));
            return out;
        }
        if pid != old {
            return Actions::default();
        }
        self.last_code = Some(code);
        match new {
            Some(new) => self.phase = Phase::Starting { pid: new, ready_by },
            None => self.phase = Phase::Idle, // the spawn being prepared goes on as a plain start
        }
        Actions::from(Action::Send(Dest::Group(old), self.policy.stop_signal))
    }

    fn set_app_gone(&mut self) {
        if let Phase::Stopping { app_alive, .. } = &mut self.phase {
            *app_alive = false;
        }
    }

    /// The new app `pid` is ready. With start-first, the old one now gets the stop signal.
    pub fn ready(&mut self, now: Instant, pid: i32) -> Actions {
        match self.phase {
            Phase::Starting { pid: p, .. } if p == pid => {
                self.phase = Phase::Running { pid };
                Actions::from(Action::Ready { pid })
            }
            Phase::Overlap { old, new: Some(new), .. } if new == pid => {
                self.phase = Phase::Running { pid };
                let mut out = Actions::from(Action::Ready { pid });
                out.extend(self.retire(now, old, true));
                out
            }
            _ => Actions::default(),
        }
    }

    /// The app is reaped and its group empty. `orphans`: on a final stop, whether processes
    /// it left behind are still there (they get the stop signal, or SIGKILL once the grace is
    /// over, and the stop goes on until they are gone).
    pub fn group_gone(&mut self, now: Instant, orphans: bool) -> Actions {
        let Phase::Stopping { group_alive, give_up_at, .. } = &mut self.phase else {
            return Actions::default();
        };
        *group_alive = false;
        let killing = give_up_at.is_some();
        if orphans && self.final_stop() {
            let sig = if killing { Signal::KILL } else { self.stop_sig };
            if self.orphans_got == Some(sig) && sig != Signal::KILL {
                return Actions::default();
            }
            self.orphans_got = Some(sig);
            return Actions::from(Action::Send(Dest::Orphans, sig));
        }
        if self.retiring.is_some() && !self.final_stop() {
            return Actions::default(); // one app at a time: the restart waits for the retiring one
        }
        self.stop_over(now)
    }

    /// The retiring app's group is empty: one app is left; a change that came meanwhile
    /// restarts it now.
    pub fn retired_group_gone(&mut self, now: Instant) -> Actions {
        if self.retiring.take().is_none() {
            return Actions::default();
        }
        self.one_app_left(now)
    }

    /// The retiring app is gone (or given up on): a change that waited restarts now.
    fn one_app_left(&mut self, now: Instant) -> Actions {
        match self.phase {
            Phase::Running { .. } if std::mem::take(&mut self.pending_restart) => {
                self.change(now, OnChange::Restart)
            }
            _ => Actions::default(),
        }
    }

    fn stop_over(&mut self, now: Instant) -> Actions {
        match self.then {
            Then::ExitWithApp => {
                let code = self.exit_status();
                self.finish(Actions::from(Action::Exit(code)))
            }
            Then::Exit(code) => self.finish(Actions::from(Action::Exit(code))),
            Then::Restart => {
                self.phase = Phase::Idle;
                Actions::from(Action::Spawn(Cause::Change))
            }
            Then::RestartAfterBackoff => self.back_off(now, self.last_code.unwrap_or(0)),
        }
    }

    fn back_off(&mut self, now: Instant, code: u8) -> Actions {
        if self.started_at.is_some_and(|t| now.saturating_duration_since(t) >= BACKOFF_RESET_AFTER) {
            self.backoff = BACKOFF_FIRST;
        }
        let delay = self.backoff;
        self.backoff = (self.backoff * 2).min(BACKOFF_MAX);
        self.phase = Phase::Backoff { until: after(now, delay) };
        Actions::from(Action::BackingOff { code, delay })
    }

    /// A watched path really changed.
    pub fn change(&mut self, now: Instant, what: OnChange) -> Actions {
        match (what, self.phase) {
            (_, Phase::Done) => Actions::default(),
            (OnChange::Restart, Phase::Overlap { .. }) => {
                self.pending_restart = true;
                Actions::default()
            }
            (OnChange::Restart, Phase::Running { .. } | Phase::Starting { .. })
                if self.retiring.is_some() =>
            {
                self.pending_restart = true;
                Actions::default()
            }
            (OnChange::Restart, Phase::Running { pid })
                if self.policy.update_order == UpdateOrder::StartFirst =>
            {
                // ready_by is set when the new app is spawned
                self.phase = Phase::Overlap { old: pid, new: None, ready_by: now };
                Actions::from(Action::Spawn(Cause::Change))
            }
            (OnChange::Restart, Phase::Running { pid } | Phase::Starting { pid, .. }) => {
                self.begin_stop(now, pid, self.policy.stop_signal, Then::Restart)
            }
            (OnChange::Restart, Phase::Backoff { .. }) => {
                self.phase = Phase::Idle;
                Actions::from(Action::Spawn(Cause::Change))
            }
            (OnChange::Restart, Phase::Stopping { .. }) if !self.final_stop() => {
                self.then = Then::Restart;
                Actions::default()
            }
            (OnChange::Signal(sig), _) => match self.app() {
                Some(pid) if !self.stopping() => Actions::from(Action::Send(Dest::Process(pid), sig)),
                _ => Actions::default(),
            },
            (OnChange::Exit(code), Phase::Overlap { .. }) => {
                let mut out = self.terminate(now, self.policy.stop_signal);
                self.then = Then::Exit(code);
                out.retain(|a| !matches!(a, Action::Exit(_)));
                out
            }
            (
                OnChange::Exit(code),
                Phase::Running { pid } | Phase::Starting { pid, .. } | Phase::Draining { pid, .. },
            ) => self.begin_stop(now, pid, self.policy.stop_signal, Then::Exit(code)),
            (OnChange::Exit(code), Phase::Idle | Phase::Backoff { .. }) => {
                self.finish(Actions::from(Action::Exit(code)))
            }
            (OnChange::Exit(code), Phase::Stopping { .. }) => {
                self.then = Then::Exit(code);
                Actions::default()
            }
            _ => Actions::default(),
        }
    }

    /// Deadlines that have passed.
    pub fn tick(&mut self, now: Instant) -> Actions {
        if self.next_deadline().is_none_or(|d| now < d) {
            return Actions::default(); // every step below waits for a deadline
        }
        let mut out = self.tick_retiring(now);
        out.extend(match self.phase {
            Phase::Draining { pid, until, sig } if now >= until => {
                self.begin_stop(now, pid, sig, Then::ExitWithApp)
            }
            Phase::Starting { pid, ready_by } if now >= ready_by => {
                self.phase = Phase::Running { pid };
                Actions::from(Action::NotReady { pid })
            }
            Phase::Overlap { old, new: Some(new), ready_by } if now >= ready_by => {
                self.phase = Phase::Running { pid: old };
                let mut out = Actions::from(Action::UpdateFailed(UpdateFailure::NotReady));
                out.extend(self.retire(now, new, true));
                out
            }
            Phase::Stopping { app_alive, kill_at, give_up_at: None, .. } if now >= kill_at => {
                let mut out = Actions::from(Action::TimedOut { app_alive });
                out.extend(self.kill_now(now));
                out
            }
            Phase::Stopping { app_alive, give_up_at: Some(t), .. } if now >= t => {
                // Going on without them: an app still not reaped counts as killed.
                if app_alive {
                    self.last_code = Some(128 + libc::SIGKILL as u8);
                }
                self.retiring = None;
                let mut out = Actions::from(Action::GaveUpWaiting);
                out.extend(self.stop_over(now));
                out
            }
            Phase::Backoff { until } if now >= until => {
                self.phase = Phase::Idle;
                Actions::from(Action::Spawn(Cause::Exit))
            }
            _ => Actions::default(),
        });
        out
    }

    fn tick_retiring(&mut self, now: Instant) -> Actions {
        let Some(r) = self.retiring.as_mut() else { return Actions::default() };
        match r.give_up_at {
            None if now >= r.kill_at => {
                let mut out = Actions::from(Action::TimedOut { app_alive: r.app_alive });
                out.extend(r.kill(now));
                out
            }
            Some(t) if now >= t => {
                self.retiring = None;
                let mut out = Actions::from(Action::GaveUpWaiting);
                out.extend(self.one_app_left(now));
                out
            }
            _ => Actions::default(),
        }
    }

    pub fn next_deadline(&self) -> Option<Instant> {
        let main = match self.phase {
            Phase::Draining { until, .. } | Phase::Backoff { until } => Some(until),
            Phase::Starting { ready_by, .. } | Phase::Overlap { new: Some(_), ready_by, .. } => {
                Some(ready_by)
            }
            Phase::Stopping { kill_at, give_up_at, .. } => Some(give_up_at.unwrap_or(kill_at)),
            _ => None,
        };
        let retiring = self.retiring.map(|r| r.give_up_at.unwrap_or(r.kill_at));
        earliest(main, retiring)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Action::*;
    use Dest::*;

    const TERM: Signal = Signal::TERM;
    const KILL: Signal = Signal::KILL;
    const HUP: Signal = Signal::HUP;
    const INT: Signal = Signal::INT;
    const APP: i32 = 42;

    fn policy() -> Policy {
        Policy {
            stop_signal: TERM,
            stop_timeout: Duration::from_secs(10),
            pre_stop_delay: Duration::ZERO,
            forward: Forward::Group,
            restart_on_exit: RestartPolicy::Never,
            remap_exit: Vec::new(),
            signal_map: Vec::new(),
            sidecar: false,
            update_order: UpdateOrder::StopFirst,
            ready_timeout: None,
        }
    }

    fn start_first() -> Policy {
        Policy { update_order: UpdateOrder::StartFirst, ready_timeout: Some(secs(60)), ..policy() }
    }

    const NEW: i32 = 43;

    fn running(p: Policy, t0: Instant) -> Supervisor {
        let mut s = Supervisor::new(p);
        assert_eq!(s.start(), [Spawn(Cause::First)]);
        assert!(s.may_spawn());
        s.spawned(t0, APP);
        if s.awaiting_ready().is_some() {
            assert_eq!(s.ready(t0, APP), [Ready { pid: APP }]);
        }
        assert_eq!(s.app(), Some(APP));
        s
    }

    fn secs(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    #[test]
    fn actions_keep_their_order_past_the_inline_ones() {
        let sends: Vec<Action> = (1..=7).map(|pid| Send(Process(pid), TERM)).collect();
        let mut out = Actions::from(sends[0]);
        for a in &sends[1..5] {
            out.push(*a);
        }
        let mut more = Actions::from(sends[5]);
        more.push(sends[6]);
        out.extend(more);
        assert_eq!(out.len(), 7);
        assert_eq!(
            (0..7).map(|i| out.get(i)).collect::<Vec<_>>(),
            sends.iter().map(|a| Some(*a)).collect::<Vec<_>>()
        );
        assert_eq!(out.get(7), None);
        out.retain(|a| !matches!(a, Send(Process(pid), _) if pid % 2 == 0));
        assert_eq!(out, [sends[0], sends[2], sends[4], sends[6]]);
        assert!(Actions::default().is_empty());
        assert_ne!(out, [sends[0], sends[2], sends[4]]);
    }

    #[test]
    fn term_stops_the_group_then_exits_with_the_apps_status() {
        let t0 = Instant::now();
        let mut s = running(policy(), t0);
        assert_eq!(s.received(t0, TERM), [Send(Group(APP), TERM)], "no scan for orphans yet");
        assert_eq!(s.next_deadline(), Some(t0 + secs(10)));
        assert!(s.tick(t0 + secs(9)).is_empty());
        assert!(s.reaped(t0 + secs(1), 7, 0).is_empty(), "not the app");
        assert!(s.reaped(t0 + secs(1), APP, 143).is_empty());
        assert!(s.awaiting_exit());
        assert_eq!(s.group_to_await(), Some(APP));
        assert_eq!(s.group_gone(t0 + secs(1), false), [Exit(143)]);
        assert_eq!(s.phase(), Phase::Done);
    }

    #[test]
    fn orphans_get_the_stop_signal_once_the_group_is_gone_then_sigkill() {
        let t0 = Instant::now();
        let mut s = running(policy(), t0);
        s.received(t0, TERM);
        s.reaped(t0, APP, 143);
        assert_eq!(s.group_gone(t0, true), [Send(Orphans, TERM)]);
        assert_eq!(s.group_to_await(), None, "the group id is never used again");
        assert!(s.group_gone(t0 + secs(1), true).is_empty(), "the stop signal once");
        assert_eq!(s.tick(t0 + secs(10)), [TimedOut { app_alive: false }], "no signal to a gone group");
        assert_eq!(s.group_gone(t0 + secs(10), true), [Send(Orphans, KILL)]);
        assert_eq!(s.group_gone(t0 + secs(10), true), [Send(Orphans, KILL)], "and to any escaped later");
        assert_eq!(s.group_gone(t0 + secs(10), false), [Exit(143)]);
    }

    #[test]
    fn ignoring_term_gets_sigkill_after_the_timeout() {
        let t0 = Instant::now();
        let mut s = running(policy(), t0);
        s.received(t0, TERM);
        assert_eq!(s.tick(t0 + secs(10)), [TimedOut { app_alive: true }, Send(Group(APP), KILL)]);
        s.reaped(t0 + secs(10), APP, 137);
        assert_eq!(s.group_gone(t0 + secs(10), false), [Exit(137)]);
    }

    #[test]
    fn a_second_term_kills_at_once() {
        let t0 = Instant::now();
        let mut s = running(policy(), t0);
        s.received(t0, TERM);
        assert_eq!(s.received(t0 + secs(1), TERM), [Send(Group(APP), KILL)]);
        assert!(s.stopping());
        let mut s = running(policy(), t0);
        s.received(t0, TERM);
        assert_eq!(s.received(t0 + secs(1), INT), [Send(Group(APP), KILL)], "SIGINT during the stop");
    }

    #[test]
    fn signals_are_forwarded_mapped_or_dropped() {
        let t0 = Instant::now();
        let p = Policy { signal_map: vec![(HUP, Some(Signal::USR1)), (Signal::WINCH, None)], ..policy() };
        let mut s = running(p, t0);
        assert_eq!(s.received(t0, HUP), [Send(Group(APP), Signal::USR1)]);
        assert!(s.received(t0, Signal::WINCH).is_empty());
        assert_eq!(s.received(t0, INT), [Send(Group(APP), INT)], "SIGINT is forwarded when not stopping");
        assert!(s.received(t0, Signal::CHLD).is_empty());
        let mut s = running(Policy { forward: Forward::Child, ..policy() }, t0);
        assert_eq!(s.received(t0, Signal::USR2), [Send(Process(APP), Signal::USR2)]);
        // TERM:X makes X the stop signal; TERM:none ignores SIGTERM
        let mut s = running(Policy { signal_map: vec![(TERM, Some(Signal::QUIT))], ..policy() }, t0);
        assert_eq!(s.received(t0, TERM), [Send(Group(APP), Signal::QUIT)]);
        let mut s = running(Policy { signal_map: vec![(TERM, None)], ..policy() }, t0);
        assert!(s.received(t0, TERM).is_empty());
        let mut s = running(Policy { stop_signal: INT, ..policy() }, t0);
        assert_eq!(s.received(t0, TERM), [Send(Group(APP), INT)]);
    }

    #[test]
    fn pre_stop_delay_holds_the_signal_back() {
        let t0 = Instant::now();
        let mut s = running(Policy { pre_stop_delay: secs(2), ..policy() }, t0);
        assert!(s.terminate(t0, INT).is_empty());
        assert_eq!(s.next_deadline(), Some(t0 + secs(2)));
        assert!(s.tick(t0 + secs(1)).is_empty());
        assert_eq!(s.tick(t0 + secs(2)), [Send(Group(APP), INT)]);
    }

    #[test]
    fn forward_child_sends_the_stop_signal_to_the_app_only() {
        let t0 = Instant::now();
        let mut s = running(Policy { forward: Forward::Child, ..policy() }, t0);
        assert_eq!(s.terminate(t0, TERM), [Send(Process(APP), TERM)]);
        // once the app is gone, the rest of its group gets the stop signal too
        assert_eq!(s.reaped(t0 + secs(1), APP, 0), [Send(Group(APP), TERM)]);
        let mut s = running(Policy { forward: Forward::Child, ..policy() }, t0);
        s.terminate(t0, TERM);
        // the SIGKILL always takes the whole group
        assert_eq!(s.tick(t0 + secs(10)).get(1), Some(Send(Group(APP), KILL)));
    }

    #[test]
    fn app_exit_stops_its_helpers_then_exits_remapped() {
        let t0 = Instant::now();
        let mut s = running(Policy { remap_exit: vec![(143, 0)], forward: Forward::Child, ..policy() }, t0);
        assert_eq!(s.reaped(t0, APP, 143), [Send(Group(APP), TERM)]);
        assert_eq!(s.app(), None);
        assert_eq!(s.group_gone(t0, false), [Exit(0)]);
    }

    #[test]
    fn restart_on_change_waits_for_the_group_then_spawns() {
        let t0 = Instant::now();
        let mut s = running(policy(), t0);
        assert_eq!(s.change(t0, OnChange::Restart), [Send(Group(APP), TERM)]);
        assert!(!s.final_stop());
        // another change during the restart is picked up by it
        assert!(s.change(t0, OnChange::Restart).is_empty());
        s.reaped(t0, APP, 143);
        assert_eq!(s.group_gone(t0, true), [Spawn(Cause::Change)], "orphans only matter on a final stop");
        s.spawned(t0, 43);
        assert_eq!(s.phase(), Phase::Running { pid: 43 });
    }

    #[test]
    fn term_during_a_restart_stops_gracefully_with_the_grace_left() {
        let t0 = Instant::now();
        let mut s = running(policy(), t0);
        s.change(t0, OnChange::Restart);
        assert!(s.received(t0 + secs(3), TERM).is_empty(), "the stop signal already went out");
        assert!(s.final_stop());
        assert_eq!(s.next_deadline(), Some(t0 + secs(10)), "the grace left, not a new one");
        s.reaped(t0 + secs(4), APP, 143);
        assert_eq!(s.group_gone(t0 + secs(4), false), [Exit(143)], "no new app");
        // a second SIGTERM then kills
        let mut s = running(policy(), t0);
        s.change(t0, OnChange::Restart);
        s.received(t0, TERM);
        assert_eq!(s.received(t0, TERM), [Send(Group(APP), KILL)]);
        // between the old app's end and the new app's start: exit with the old status
        let mut s = running(policy(), t0);
        s.change(t0, OnChange::Restart);
        s.reaped(t0, APP, 143);
        s.group_gone(t0, false);
        assert_eq!(s.received(t0, TERM), [Exit(143)]);
        assert!(!s.may_spawn());
    }

    #[test]
    fn a_second_term_during_an_exit_on_change_keeps_its_code() {
        let t0 = Instant::now();
        let mut s = running(policy(), t0);
        s.change(t0, OnChange::Exit(3));
        assert_eq!(s.received(t0, TERM), [Send(Group(APP), KILL)]);
        s.reaped(t0, APP, 137);
        assert_eq!(s.group_gone(t0, false), [Exit(3)]);
    }

    #[test]
    fn signal_and_exit_changes() {
        let t0 = Instant::now();
        let mut s = running(policy(), t0);
        assert_eq!(s.change(t0, OnChange::Signal(HUP)), [Send(Process(APP), HUP)]);
        assert_eq!(s.change(t0, OnChange::Exit(3)), [Send(Group(APP), TERM)]);
        s.reaped(t0, APP, 0);
        assert_eq!(s.group_gone(t0, false), [Exit(3)]);
    }

    #[test]
    fn on_failure_backs_off_doubling_and_resets() {
        let t0 = Instant::now();
        let mut s = running(Policy { restart_on_exit: RestartPolicy::OnFailure, ..policy() }, t0);
        let mut t = t0;
        for expect in [1, 2, 4, 8, 16, 30, 30] {
            s.reaped(t, APP, 1);
            assert!(!s.final_stop());
            assert_eq!(s.group_gone(t, false), [BackingOff { code: 1, delay: secs(expect) }]);
            assert_eq!(s.next_deadline(), Some(t + secs(expect)));
            t += secs(expect);
            assert_eq!(s.tick(t), [Spawn(Cause::Exit)]);
            s.spawned(t, APP);
        }
        // up for 10 s: back to 1 s
        t += secs(10);
        s.reaped(t, APP, 1);
        s.group_gone(t, false);
        assert_eq!(s.next_deadline(), Some(t + secs(1)));
        // a clean exit ends it
        let mut s = running(Policy { restart_on_exit: RestartPolicy::OnFailure, ..policy() }, t0);
        s.reaped(t0, APP, 0);
        assert_eq!(s.group_gone(t0, false), [Exit(0)]);
    }

    #[test]
    fn always_restarts_a_clean_exit_and_term_in_backoff_exits() {
        let t0 = Instant::now();
        let mut s = running(Policy { restart_on_exit: RestartPolicy::Always, ..policy() }, t0);
        s.reaped(t0, APP, 0);
        s.group_gone(t0, false);
        assert!(matches!(s.phase(), Phase::Backoff { .. }));
        assert_eq!(s.received(t0, TERM), [Exit(0)]);
    }

    #[test]
    fn exec_failure_first_time_exits_later_counts_as_a_crash() {
        let t0 = Instant::now();
        let mut s = Supervisor::new(policy());
        s.start();
        assert_eq!(s.spawn_failed(t0, 127), [Exit(127)]);
        let mut s = running(Policy { restart_on_exit: RestartPolicy::OnFailure, ..policy() }, t0);
        s.change(t0, OnChange::Restart);
        s.reaped(t0, APP, 143);
        assert_eq!(s.group_gone(t0, false), [Spawn(Cause::Change)]);
        assert_eq!(s.spawn_failed(t0, 126), [BackingOff { code: 126, delay: secs(1) }]);
        assert!(matches!(s.phase(), Phase::Backoff { .. }));
    }

    #[test]
    fn a_group_that_will_not_die_is_given_up_on() {
        let t0 = Instant::now();
        let mut s = running(policy(), t0);
        s.received(t0, TERM);
        s.tick(t0 + secs(10));
        assert_eq!(s.next_deadline(), Some(t0 + secs(10) + KILL_GRACE));
        assert_eq!(s.tick(t0 + secs(10) + KILL_GRACE), [GaveUpWaiting, Exit(137)]);
    }

    #[test]
    fn huge_durations_never_overflow() {
        let t0 = Instant::now();
        let p = Policy { stop_timeout: Duration::MAX, pre_stop_delay: Duration::MAX, ..policy() };
        let mut s = running(p, t0);
        assert!(s.received(t0, TERM).is_empty());
        assert!(s.next_deadline().is_some_and(|d| d > t0));
    }

    #[test]
    fn sidecar_exits_zero_on_term_and_code_on_change() {
        let mut s = Supervisor::new(Policy { sidecar: true, ..policy() });
        assert!(s.start().is_empty());
        assert!(!s.may_spawn());
        assert!(s.received(Instant::now(), HUP).is_empty(), "ignored");
        assert_eq!(s.received(Instant::now(), TERM), [Exit(0)]);
        let mut s = Supervisor::new(Policy { sidecar: true, ..policy() });
        assert!(s.change(Instant::now(), OnChange::Siblings(HUP)).is_empty(), "the loop signals siblings");
        assert_eq!(s.change(Instant::now(), OnChange::Exit(4)), [Exit(4)]);
    }

    #[test]
    fn start_first_starts_the_new_app_then_stops_the_old_once_it_is_ready() {
        let t0 = Instant::now();
        let mut s = running(start_first(), t0);
        assert_eq!(s.change(t0, OnChange::Restart), [Spawn(Cause::Change)], "no stop signal yet");
        assert!(s.may_spawn());
        s.spawned(t0, NEW);
        assert_eq!(s.awaiting_ready(), Some(NEW));
        assert_eq!(s.next_deadline(), Some(t0 + secs(60)));
        // the old app is the current one until the new one is ready
        assert_eq!(s.received(t0, HUP), [Send(Group(APP), HUP)]);
        assert!(s.ready(t0, APP).is_empty(), "only the new app's readiness counts");
        assert_eq!(s.ready(t0 + secs(1), NEW), [Ready { pid: NEW }, Send(Group(APP), TERM)]);
        assert_eq!(s.app(), Some(NEW));
        assert_eq!(s.received(t0, HUP), [Send(Group(NEW), HUP)]);
        // a change while the old app is still stopping waits for it
        assert!(s.change(t0 + secs(2), OnChange::Restart).is_empty());
        assert!(s.reaped(t0 + secs(2), APP, 0).is_empty());
        assert_eq!(s.retiring_group_to_await(), Some(APP));
        assert_eq!(s.retired_group_gone(t0 + secs(2)), [Spawn(Cause::Change)], "the change that waited");
        assert_eq!(s.phase(), Phase::Overlap { old: NEW, new: None, ready_by: t0 + secs(2) });
    }

    #[test]
    fn start_first_keeps_the_old_app_when_the_new_one_fails() {
        let t0 = Instant::now();
        // not ready in time: the new app is stopped, the old one serves on
        let mut s = running(start_first(), t0);
        s.change(t0, OnChange::Restart);
        s.spawned(t0, NEW);
        assert_eq!(s.tick(t0 + secs(60)), [UpdateFailed(UpdateFailure::NotReady), Send(Group(NEW), TERM)]);
        assert_eq!(s.app(), Some(APP));
        s.reaped(t0 + secs(61), NEW, 143);
        assert!(s.retired_group_gone(t0 + secs(61)).is_empty());
        assert_eq!(s.phase(), Phase::Running { pid: APP });
        // it exits first
        let mut s = running(start_first(), t0);
        s.change(t0, OnChange::Restart);
        s.spawned(t0, NEW);
        assert_eq!(s.reaped(t0, NEW, 1), [UpdateFailed(UpdateFailure::Exited(1)), Send(Group(NEW), TERM)]);
        assert_eq!(s.app(), Some(APP));
        // it cannot be started
        let mut s = running(start_first(), t0);
        s.change(t0, OnChange::Restart);
        assert_eq!(s.spawn_failed(t0, 127), [UpdateFailed(UpdateFailure::SpawnFailed(127))]);
        assert_eq!(s.phase(), Phase::Running { pid: APP });
    }

    #[test]
    fn term_during_a_start_first_overlap_stops_both() {
        let t0 = Instant::now();
        let mut s = running(start_first(), t0);
        s.change(t0, OnChange::Restart);
        s.spawned(t0, NEW);
        assert_eq!(s.received(t0, TERM), [Send(Group(NEW), TERM), Send(Group(APP), TERM)]);
        assert!(!s.may_spawn(), "nothing else starts");
        s.reaped(t0, APP, 143);
        assert!(
            {
                let out = s.group_gone(t0, true);
                (0..out.len()).any(|i| out.get(i) == Some(Send(Orphans, TERM)))
            },
            "the new app is still below reinit"
        );
        s.reaped(t0, NEW, 143);
        assert!(s.retired_group_gone(t0).is_empty());
        assert_eq!(s.group_gone(t0, false), [Exit(143)]);
    }

    #[test]
    fn term_during_an_overlap_keeps_the_pre_stop_delay_for_the_old_app() {
        let t0 = Instant::now();
        let mut s = running(Policy { pre_stop_delay: secs(2), ..start_first() }, t0);
        s.change(t0, OnChange::Restart);
        s.spawned(t0, NEW);
        assert_eq!(s.received(t0, TERM), [Send(Group(NEW), TERM)], "the new app stops at once");
        assert_eq!(s.tick(t0 + secs(2)), [Send(Group(APP), TERM)], "the old one after the delay");
    }

    #[test]
    fn readiness_completes_a_stop_first_start() {
        let t0 = Instant::now();
        let mut s = Supervisor::new(Policy { ready_timeout: Some(secs(5)), ..policy() });
        s.start();
        s.spawned(t0, APP);
        assert_eq!(s.awaiting_ready(), Some(APP));
        assert_eq!(s.received(t0, HUP), [Send(Group(APP), HUP)], "the only app gets signals");
        assert_eq!(s.ready(t0, APP), [Ready { pid: APP }]);
        assert_eq!(s.awaiting_ready(), None);
        let mut s = Supervisor::new(Policy { ready_timeout: Some(secs(5)), ..policy() });
        s.start();
        s.spawned(t0, APP);
        assert_eq!(s.tick(t0 + secs(5)), [NotReady { pid: APP }]);
        assert_eq!(s.phase(), Phase::Running { pid: APP }, "it keeps running");
    }
}
