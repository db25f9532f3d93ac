//! The event loop: I/O glue and nothing else. One poll over the signalfd, the inotify fd and a
//! running validator's output pipe, with the timeout set to the nearest deadline (zero while
//! content is being hashed, a slice per wake-up). Each wake-up turns what happened into inputs
//! of the two state machines — the `Supervisor` (the app) and the `ChangeTracker` (the watched
//! content) — and carries out the `Action`s and `Step`s they return.

use crate::change::{ChangePolicy, ChangeTracker, Step, Validation};
use crate::child::{self, Spawn};
use crate::config::{Config, OnChange};
use crate::content::{self, Hashing};
use crate::http_side::HttpSide;
use crate::logging::shown;
use crate::metrics::{self, ActionKind, MetricsServer};
use crate::procfs::Procfs;
use crate::ready::Readiness;
use crate::reap;
use crate::siblings;
use crate::signals::{Received, Signal, Signals};
use crate::sockets::{self, Listener, SocketsError};
use crate::supervisor::{Action, Actions, Cause, Dest, Policy, Supervisor, UpdateFailure};
use crate::sys;
use crate::time::{Human, earliest};
use crate::validate::Validator;
use crate::watch::{WatchError, Watcher};
use log::{debug, error, info, warn};
use nix::poll::{PollFd, PollFlags};
use std::collections::VecDeque;
use std::fmt;
use std::io;
use std::os::fd::AsFd;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// reinit could not start.
#[derive(Debug)]
pub enum StartError {
    Signals(io::Error),
    Watch(WatchError),
    Listen(SocketsError),
    Ready(io::Error),
}

impl StartError {
    /// 2 for what the user pointed reinit at (a usage error), 125 for the rest.
    pub fn exit_code(&self) -> u8 {
        match self {
            StartError::Watch(WatchError::Pseudo(..)) => 2,
            _ => 125,
        }
    }
}

impl fmt::Display for StartError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StartError::Signals(e) => write!(f, "cannot set up signal handling: {e}"),
            StartError::Watch(e) => write!(f, "{e}"),
            StartError::Listen(e) => write!(f, "{e}"),
            StartError::Ready(e) => write!(f, "cannot set up --ready: {e}"),
        }
    }
}

/// While waiting for a stopped app's group (or what it left) to vanish, look again this often:
/// members that are not our children die without telling us.
const GROUP_RECHECK: Duration = Duration::from_millis(20);

/// What a content read in progress is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ReadFor {
    /// The change tracker asked (after the debounce, or for the first reference).
    Tracker,
    /// The app is about to start with this content.
    Spawn(Cause),
}

/// Runtime state of `--watch`.
struct Watching {
    watcher: Watcher,
    tracker: ChangeTracker,
    reading: Option<(Hashing, ReadFor)>,
    /// Why files of the last read could not be read, for the warning.
    read_errors: Vec<(PathBuf, io::Error)>,
    validator: Option<Validator>,
}

struct Loop {
    config: Config,
    supervisor: Supervisor,
    signals: Signals,
    take_terminal: bool,
    me: i32,
    /// Whether the last reaping pass left children (app or adopted orphans) behind.
    children_left: bool,
    /// Buffers reused by every wake-up.
    received: Vec<Received>,
    reaped: Vec<reap::Reaped>,
    exit: Option<u8>,
    watch: Option<Watching>,
    /// When a restart for a change was decided: the new app's start logs how long it took.
    restart_since: Option<Instant>,
    /// A restart whose log line waits for the new app's readiness: since when, what changed.
    restart_note: Option<(Instant, String)>,
    /// What the last app start was built from, freed at the next start rather than while the
    /// new app starts (see `child::spawn`).
    last_start: Option<crate::sys::AppExec>,
    /// `--ready`: how the readiness of a started app is observed.
    ready: Option<Readiness>,
    /// What poll said about `ready`'s fds, in order.
    ready_revents: Vec<PollFlags>,
    /// When `--on-change exit` began stopping the app, and what changed: logged at the exit.
    exit_since: Option<(Instant, String)>,
    /// Sockets held for the app (`--listen` and socket activation); dropping them at exit
    /// removes the socket files reinit created.
    listeners: Vec<Listener>,
    /// `--on-change http://…` and `--metrics`.
    http: HttpSide,
}

/// Set up signals, reaping and the parent-death signal, then run until the app's end.
pub fn run(config: Config) -> Result<u8, StartError> {
    // Sockets first, before anything else opens a descriptor.
    let listeners = open_listeners(&config)?;
    let inherited = sys::block_all_signals().map_err(StartError::Signals)?;
    let fd = sys::signalfd_all().map_err(StartError::Signals)?;
    let signals = Signals::new(fd, inherited);
    // Started with SIGCHLD ignored, the kernel would reap for us and we would never see the
    // app's status (tini and catatonit hang there).
    if let Err(e) = sys::set_disposition(libc::SIGCHLD, false) {
        warn!("cannot reset SIGCHLD to its default: {e}");
    }
    let me = std::process::id() as i32;
    if me != 1 {
        match sys::set_child_subreaper() {
            Ok(()) => debug!("not PID 1: became a child subreaper"),
            Err(e) => debug!("cannot become a child subreaper: {e}"),
        }
    }
    set_parent_death_signal(&config, me);
    let watch = match config.watch.is_empty() {
        true => None,
        false => Some(start_watching(&config, signals.app_mask())?),
    };
    let http = HttpSide::new(&config, open_metrics(&config)?, None);
    let ready = open_readiness(&config, signals.app_mask())?;
    let mut lp = Loop {
        http,
        listeners,
        watch,
        supervisor: Supervisor::new(Policy::of(&config)),
        take_terminal: !config.sidecar() && child::owns_terminal(),
        config,
        signals,
        me,
        children_left: true,
        received: Vec::with_capacity(32),
        reaped: Vec::with_capacity(32),
        exit: None,
        restart_since: None,
        restart_note: None,
        last_start: None,
        ready,
        ready_revents: Vec::new(),
        exit_since: None,
    };
    if let Some(w) = lp.watch.as_mut() {
        let first = w.tracker.start();
        lp.steps(Instant::now(), first);
    }
    let first = lp.supervisor.start();
    lp.execute(first);
    let code = lp.run();
    // The socket files go now; memory and descriptors go with the process, at once (freeing
    // them piece by piece first only delays the exit the stop is waiting for).
    lp.listeners.clear();
    std::mem::forget(lp);
    Ok(code)
}

fn set_parent_death_signal(config: &Config, me: i32) {
    let parent = nix::unistd::getppid();
    if let Some(sig) = config.parent_death_signal {
        if let Err(e) = sys::set_parent_death_signal(sig.raw()) {
            warn!("cannot set the parent-death signal: {e}");
        } else if nix::unistd::getppid() != parent {
            // The parent died before prctl took effect: deliver it ourselves.
            let _ = sys::kill(me, sig.raw());
        }
    }
}

/// Create the inotify instance and warn about what will never update.
fn start_watching(config: &Config, app_mask: u64) -> Result<Watching, StartError> {
    let mut watcher = Watcher::new(config.watch.clone()).map_err(StartError::Watch)?;
    watcher.refuse_pseudo().map_err(StartError::Watch)?;
    let (plan, errors) = watcher.plan();
    for e in errors {
        match &e {
            WatchError::Add(_, io) if matches!(io.raw_os_error(), Some(libc::ENOSPC | libc::EMFILE)) => {
                return Err(StartError::Watch(e));
            }
            _ => warn!("{e}"),
        }
    }
    if let Some(OnChange::Siblings(_)) = config.on_change {
        let procfs = Procfs::system();
        if siblings::alone_in_namespace(procfs.top_ancestor(std::process::id() as i32)) {
            warn!(
                "reinit's container is PID 1 of its PID namespace, so no sibling container can be seen: \
                 set shareProcessNamespace: true in the pod spec"
            );
        }
    }
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    for (target, files) in &plan.targets {
        if files.is_none() {
            warn!("{} does not exist yet: waiting for it to appear", shown(target));
        }
        let abs = std::path::absolute(target).unwrap_or_else(|_| target.clone());
        if let Some(root) = crate::watch::subpath_mount(&mountinfo, &abs) {
            warn!(
                "{} is a subPath mount of a ConfigMap/Secret key ({root}): it will never update, the bind \
                 pins the old file; mount the whole volume and watch its directory instead",
                shown(target)
            );
        }
    }
    let on_change = config.on_change.unwrap_or(OnChange::Restart);
    let validation = match &config.validate {
        None => Validation::None,
        Some(argv) if Validator::per_file(argv) => Validation::PerFile,
        Some(_) => Validation::Once,
    };
    let policy = ChangePolicy {
        debounce: config.debounce,
        jitter: config.jitter,
        validation,
        on_change,
        dry_run: config.dry_run,
    };
    let validator = config.validate.clone().map(|argv| Validator::new(argv, app_mask, config.stop_timeout));
    Ok(Watching {
        watcher,
        tracker: ChangeTracker::new(policy),
        reading: None,
        read_errors: Vec::new(),
        validator,
    })
}

/// `--ready`: its notify socket is bound once, at start.
fn open_readiness(config: &Config, app_mask: u64) -> Result<Option<Readiness>, StartError> {
    let Some(how) = &config.ready else { return Ok(None) };
    Readiness::new(how.clone(), app_mask).map(Some).map_err(StartError::Ready)
}

/// The `--metrics` listener.
fn open_metrics(config: &Config) -> Result<Option<MetricsServer>, StartError> {
    let Some(bind) = &config.metrics else { return Ok(None) };
    let bind_error =
        |err| StartError::Listen(SocketsError::Bind { addr: format!("--metrics {}", bind.text), err });
    MetricsServer::bind(bind.addr).map(Some).map_err(bind_error)
}

/// Sockets inherited through socket activation (`LISTEN_PID` = our pid), then `--listen` ones.
fn open_listeners(config: &Config) -> Result<Vec<Listener>, StartError> {
    let var = |name: &str| std::env::var(name).ok();
    let mut out: Vec<Listener> = sockets::activation(
        var("LISTEN_PID").as_deref(),
        var("LISTEN_FDS").as_deref(),
        var("LISTEN_FDNAMES").as_deref(),
        std::process::id(),
    )
    .into_iter()
    .filter_map(|(fd, name)| match sys::adopt_fd(fd) {
        Some(owned) => Some(Listener::adopted(owned, name)),
        None => {
            warn!("LISTEN_FDS names fd {fd}, which is not open: skipped");
            None
        }
    })
    .collect();
    for spec in &config.listen {
        out.push(Listener::bind(spec).map_err(StartError::Listen)?);
    }
    Ok(out)
}

/// A uniformly random duration in [0, max].
fn random_up_to(max: Duration) -> Duration {
    if max.is_zero() {
        return max;
    }
    let mut seed = [0u8; 8];
    let random = std::fs::File::open("/dev/urandom")
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut seed))
        .map(|()| u64::from_ne_bytes(seed))
        .unwrap_or_else(|_| {
            let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
            t.subsec_nanos() as u64 ^ u64::from(std::process::id()).rotate_left(32)
        });
    max.mul_f64((random >> 11) as f64 / (1u64 << 53) as f64)
}

/// poll(2) for at most `timeout` (`None`: no limit); false when it failed (an error other than
/// EINTR is logged).
fn poll_logged(fds: &mut [PollFd<'_>], timeout: Option<Duration>) -> bool {
    match sys::poll(fds, timeout) {
        Ok(_) => true,
        Err(e) if e.kind() == std::io::ErrorKind::Interrupted => false,
        Err(e) => {
            error!("poll failed: {e}");
            false
        }
    }
}

fn readable(fd: &PollFd<'_>) -> bool {
    fd.revents().is_some_and(|r| r.intersects(PollFlags::POLLIN | PollFlags::POLLHUP | PollFlags::POLLERR))
}

/// Which of the polled fds are readable.
#[derive(Default)]
struct Readable {
    signals: bool,
    inotify: bool,
    validator: bool,
}

impl Loop {
    fn run(&mut self) -> u8 {
        loop {
            if let Some(code) = self.exit {
                return code;
            }
            self.await_readiness();
            let readable = self.wait();
            self.received.clear();
            if readable.signals
                && let Err(e) = self.signals.read(&mut self.received)
            {
                error!("{e}");
            }
            let now = Instant::now();
            // Children end only with a SIGCHLD, which the signalfd never loses (it is blocked
            // from the start): without one there is nothing to reap, and no wait4 delays the
            // app that was just signalled (with one CPU it runs once reinit sleeps again).
            let child_ended = self.received.iter().any(|r| r.signo == Signal::CHLD);
            for i in 0..self.received.len() {
                let Some(sig) = self.received.get(i).map(|r| r.signo) else { break };
                match sig {
                    Signal::TERM | Signal::INT => debug!("received SIG{sig}"),
                    _ if self.config.sidecar() => debug!("received SIG{sig} in sidecar mode: ignored"),
                    _ => debug!("received SIG{sig}"),
                }
                let actions = self.supervisor.received(now, sig);
                self.execute(actions);
            }
            if child_ended {
                self.reap(now);
            }
            let actions = self.supervisor.tick(now);
            self.execute(actions);
            if self.watch.is_some() {
                match self.final_stop_under_way() {
                    true => self.stop_watching(),
                    false => self.on_watch(now, &readable),
                }
            }
            if self.ready.is_some() {
                self.check_readiness(now);
            }
            if self.http.active() {
                self.http.service(now);
            }
            self.check_stop_over();
        }
    }

    /// Poll until something happens or the nearest deadline; with nothing but signals to wait
    /// for, sleep in the signalfd's read itself.
    fn wait(&mut self) -> Readable {
        let timeout = self.timeout();
        let w = self.watch.as_ref();
        if w.is_none() && !self.http.active() && self.ready.is_none() {
            // Only signals to wait for (the usual stop): nothing to build.
            if timeout.is_some() {
                let mut fds = [PollFd::new(self.signals.as_fd(), PollFlags::POLLIN)];
                let polled = poll_logged(&mut fds, timeout);
                return Readable { signals: polled && readable(&fds[0]), ..Readable::default() };
            }
            return Readable { signals: true, ..Readable::default() };
        }
        let mut revents = self.http.take_revents();
        let mut fds = vec![PollFd::new(self.signals.as_fd(), PollFlags::POLLIN)];
        let inotify = w.map(|w| {
            fds.push(PollFd::new(w.watcher.as_fd(), PollFlags::POLLIN));
            fds.len() - 1
        });
        let validator = w.and_then(|w| w.validator.as_ref()).and_then(|v| v.fd()).map(|fd| {
            fds.push(PollFd::new(fd, PollFlags::POLLIN));
            fds.len() - 1
        });
        let first_ready = fds.len();
        if let Some(r) = &self.ready {
            fds.extend(r.fds().into_iter().map(|(fd, events)| PollFd::new(fd, events)));
        }
        let first_http = fds.len();
        fds.extend(self.http.fds().map(|(fd, events)| PollFd::new(fd, events)));
        let readable = match poll_logged(&mut fds, timeout) {
            true => Readable {
                signals: readable(&fds[0]),
                inotify: inotify.is_some_and(|i| readable(&fds[i])),
                validator: validator.is_some_and(|i| readable(&fds[i])),
            },
            false => Readable::default(),
        };
        let flags = |fd: &PollFd<'_>| fd.revents().unwrap_or(PollFlags::empty());
        revents.extend(fds[first_http..].iter().map(flags));
        self.ready_revents.clear();
        self.ready_revents.extend(fds[first_ready..first_http].iter().map(flags));
        drop(fds);
        self.http.set_revents(revents);
        readable
    }

    /// How long the next wait may last: until the nearest deadline (`None`: no deadline). The
    /// kernel's timer never fires early, so the loop wakes at or after the deadline, never just
    /// before it to spin.
    fn timeout(&self) -> Option<Duration> {
        let now = Instant::now();
        let w = self.watch.as_ref();
        if w.is_some_and(|w| w.reading.is_some()) {
            return Some(Duration::ZERO); // the next slice of hashing
        }
        let mut deadline = self.supervisor.next_deadline();
        if let Some(w) = w {
            deadline = earliest(deadline, w.tracker.next_deadline());
            deadline = earliest(deadline, w.validator.as_ref().and_then(Validator::next_deadline));
        }
        if self.http.active() {
            deadline = earliest(deadline, self.http.next_deadline());
        }
        if let Some(r) = &self.ready {
            deadline = earliest(deadline, r.next_deadline());
        }
        let mut wait = deadline.map(|d| d.saturating_duration_since(now));
        if self.supervisor.awaiting_exit() || self.supervisor.retiring_group_to_await().is_some() {
            wait = Some(wait.map_or(GROUP_RECHECK, |w| w.min(GROUP_RECHECK)));
        }
        wait
    }

    fn final_stop_under_way(&self) -> bool {
        self.exit.is_some() || (self.supervisor.stopping() && self.supervisor.final_stop())
    }

    /// reinit is ending: a validation or a read in progress no longer matters.
    fn stop_watching(&mut self) {
        if let Some(w) = self.watch.as_mut() {
            w.reading = None;
            if let Some(v) = w.validator.as_mut() {
                v.cancel();
            }
        }
    }

    fn reap(&mut self, now: Instant) {
        let mut reaped = std::mem::take(&mut self.reaped);
        let reaping = reap::reap_all(sys::waitpid_any, &mut reaped);
        if let Some(e) = reaping.error {
            error!("{e}");
        }
        self.children_left = reaping.children_left;
        for r in reaped.drain(..) {
            let Some(code) = child::exit_code(r.status) else { continue };
            if self.ready.as_mut().is_some_and(|ready| ready.reaped(now, r.pid, code)) {
                continue; // a readiness check
            }
            if let Some(verdict) = self.validator_exited(now, r.pid, code) {
                let steps = self.watch.as_mut().map(|w| w.tracker.validated(verdict)).unwrap_or_default();
                self.steps(now, steps);
            } else if self.supervisor.is_app(r.pid) {
                debug!("app (pid {}) exited with status {code}", r.pid);
                if self.supervisor.app() == Some(r.pid) {
                    self.http.metrics.app_down();
                }
                let actions = self.supervisor.reaped(now, r.pid, code);
                self.execute(actions);
            } else {
                debug!("reaped pid {} (status {code})", r.pid);
            }
        }
        self.reaped = reaped;
    }

    /// Keep what the readiness checks await in step with the supervisor.
    fn await_readiness(&mut self) {
        let Some(r) = self.ready.as_mut() else { return };
        match self.supervisor.awaiting_ready() {
            Some(pid) if r.awaited() != Some(pid) => r.await_app(Instant::now(), pid),
            None if r.awaited().is_some() => r.stop(),
            _ => {}
        }
    }

    /// Move the readiness checks along; a ready app is news for the supervisor.
    fn check_readiness(&mut self, now: Instant) {
        self.await_readiness();
        let Some(r) = self.ready.as_mut() else { return };
        r.step(now, &self.ready_revents);
        self.ready_revents.clear();
        if let Some(pid) = r.take_ready() {
            let actions = self.supervisor.ready(now, pid);
            self.execute(actions);
        }
    }

    /// Route a reaped child to the validator if it is its run: `Some` once it has a verdict.
    fn validator_exited(&mut self, now: Instant, pid: i32, code: u8) -> Option<Result<(), String>> {
        let v = self.watch.as_mut()?.validator.as_mut()?;
        if v.pid() != Some(pid) {
            return None;
        }
        v.exited(now, code)
    }

    /// Inotify events, deadlines, the validator's output and a slice of hashing.
    fn on_watch(&mut self, now: Instant, readable: &Readable) {
        let Some(w) = self.watch.as_mut() else { return };
        if readable.inotify {
            match w.watcher.read() {
                Ok(events) => {
                    if events.overflow {
                        warn!("the inotify queue overflowed: re-reading every watched path");
                    }
                    if events.relevant {
                        w.tracker.events(now, events.commit);
                    }
                }
                Err(e) => error!("{e}"),
            }
        }
        if let Some(v) = w.validator.as_mut() {
            if readable.validator {
                v.drain();
            }
            v.tick(now);
        }
        let steps = w.tracker.tick(now);
        self.steps(now, steps);
        self.read_slice(now);
    }

    /// Hash the next slice of the read in progress; deliver it when complete.
    fn read_slice(&mut self, now: Instant) {
        let Some(w) = self.watch.as_mut() else { return };
        let Some((hashing, why)) = w.reading.as_mut() else { return };
        let Some(snapshot) = hashing.step(content::SLICE) else { return };
        let why = *why;
        let unlinked = std::mem::take(&mut hashing.unlinked);
        w.read_errors = std::mem::take(&mut hashing.errors);
        w.reading = None;
        match why {
            ReadFor::Tracker => {
                let steps = w.tracker.scanned(now, snapshot, unlinked, random_up_to(self.config.jitter));
                self.http.metrics.content(w.tracker.baseline());
                self.steps(now, steps);
            }
            ReadFor::Spawn(cause) => {
                let (changes, notes) = w.tracker.starting_app(&snapshot);
                self.http.metrics.content(w.tracker.baseline());
                self.steps(now, notes);
                if self.supervisor.may_spawn() {
                    let actions = self.spawn(cause, Some(content::describe(&changes)));
                    self.execute(actions);
                }
            }
        }
    }

    /// Start reading the watched content (dropping a read in progress).
    fn start_read(&mut self, why: ReadFor) {
        let Some(w) = self.watch.as_mut() else { return };
        if why == ReadFor::Tracker && matches!(w.reading, Some((_, ReadFor::Spawn(_)))) {
            return; // the read for the start serves the tracker too
        }
        let (plan, errors) = w.watcher.plan();
        for e in errors {
            error!("{e}");
        }
        debug!("reading the watched content ({} files)", plan.files());
        w.reading = Some((Hashing::new(plan), why));
    }

    /// Carry out what the change tracker decided.
    fn steps(&mut self, now: Instant, steps: Vec<Step>) {
        let mut queue: VecDeque<Step> = steps.into();
        while let Some(step) = queue.pop_front() {
            match step {
                Step::Scan => self.start_read(ReadFor::Tracker),
                Step::Validate(paths) => {
                    self.http.metrics.change_seen();
                    let Some(w) = self.watch.as_mut() else { continue };
                    let verdict = w.validator.as_mut().and_then(|v| v.start(now, paths));
                    if let Some(verdict) = verdict {
                        queue.extend(w.tracker.validated(verdict));
                    }
                }
                Step::Act { action, changes, dry_run } => {
                    if self.watch.as_ref().is_some_and(|w| w.validator.is_none()) {
                        self.http.metrics.change_seen();
                    }
                    self.act(now, action, content::describe(&changes), dry_run);
                    if let Some(w) = &self.watch {
                        self.http.metrics.content(w.tracker.baseline());
                    }
                }
                Step::Unchanged => debug!("no content change"),
                Step::StillRefused => debug!("still the content the validator refused"),
                Step::Jitter(delay) => debug!("content changed: acting in {} (--jitter)", Human(delay)),
                Step::Refused { changes, why } => {
                    self.http.metrics.validation_failed();
                    warn!(
                        "{}: rejected, {why}; the running app is left untouched",
                        content::describe(&changes)
                    )
                }
                Step::Unreadable(paths) => self.warn_unreadable(&paths),
                Step::LinksPending(paths) => {
                    if let Some(first) = paths.first() {
                        debug!(
                            "the kubelet's update is not complete ({} not linked yet): waiting",
                            shown(first)
                        );
                    }
                }
            }
        }
    }

    fn warn_unreadable(&self, paths: &[PathBuf]) {
        let errors = self.watch.as_ref().map(|w| w.read_errors.as_slice()).unwrap_or_default();
        let (uid, gid) = (sys::uid(), sys::gid());
        for path in paths {
            let why =
                errors.iter().find(|(p, _)| p == path).map_or(String::new(), |(_, e)| format!(" ({e})"));
            warn!(
                "cannot read {}{why} as uid {uid} gid {gid}: its changes are not seen until reinit can \
                 read it (its last content stands); make it readable to this user or group",
                shown(path)
            );
        }
    }

    /// The action for a real change (validated if asked).
    fn act(&mut self, now: Instant, action: OnChange, what: String, dry_run: bool) {
        if let OnChange::Siblings(sig) = action {
            let ok = siblings::signal_all(self.me, &self.config.siblings, sig, &what, dry_run);
            return self.http.acted(ActionKind::Siblings, ok, dry_run);
        }
        let doing = match action {
            OnChange::Restart => "restart the app".to_string(),
            OnChange::Signal(sig) => format!("send SIG{sig} to the app"),
            OnChange::Exit(code) => format!("stop the app and exit with {code}"),
            OnChange::Http(endpoint) => format!("POST to {}", endpoint.url),
            OnChange::Siblings(_) => String::new(),
        };
        if dry_run {
            return info!("{what}: would {doing} (--dry-run)");
        }
        match (action, self.supervisor.app()) {
            (OnChange::Restart, _) => {
                self.http.metrics.change_acted();
                self.restart_since.get_or_insert(now);
            }
            (OnChange::Signal(_), app) => {
                match app {
                    Some(pid) => info!("{what}: {doing} (pid {pid})"),
                    None => info!("{what}: no app running, nothing to signal"),
                }
                self.http.acted(ActionKind::Signal, app.is_some(), false);
            }
            (OnChange::Exit(code), app) => {
                match app {
                    Some(_) => drop(self.exit_since.get_or_insert((now, what.clone()))),
                    None => info!("{what}: exiting with {code}"),
                }
                self.http.acted(ActionKind::Exit, true, false);
            }
            (OnChange::Http(_), _) => {
                self.http.metrics.change_acted();
                return self.http.post(now, what);
            }
            (OnChange::Siblings(_), _) => {}
        }
        let actions = self.supervisor.change(now, action);
        self.execute(actions);
    }

    /// The app's group is gone (or never was): on a final stop, what it left behind too.
    fn check_stop_over(&mut self) {
        if let Some(pgid) = self.supervisor.retiring_group_to_await()
            && sys::kill(-pgid, 0).is_err()
        {
            let actions = self.supervisor.retired_group_gone(Instant::now());
            self.execute(actions);
        }
        if !self.supervisor.awaiting_exit() {
            return;
        }
        if let Some(pgid) = self.supervisor.group_to_await()
            && sys::kill(-pgid, 0).is_ok()
        {
            return;
        }
        let orphans = self.supervisor.final_stop() && !self.orphans().is_empty();
        let actions = self.supervisor.group_gone(Instant::now(), orphans);
        self.execute(actions);
    }

    /// Every live descendant of reinit but the app. Reads `/proc` only when waitpid said
    /// children are left (with none, as in most runs, this costs nothing).
    fn orphans(&self) -> Vec<i32> {
        if !self.children_left {
            return Vec::new();
        }
        let app = self.supervisor.app();
        Procfs::system().descendants_of(self.me).into_iter().filter(|p| Some(*p) != app).collect()
    }

    fn send(&self, dest: Dest, sig: Signal) {
        let (pid, what) = match dest {
            Dest::Process(pid) => (pid, "the app"),
            Dest::Group(pgid) => (-pgid, "the app's process group"),
            Dest::Orphans => {
                for pid in self.orphans() {
                    debug!("SIG{sig} to adopted process {pid}");
                    let _ = sys::kill(pid, sig.raw());
                }
                return;
            }
        };
        match sys::kill(pid, sig.raw()) {
            Ok(()) => debug!("SIG{sig} to {what} ({})", pid.abs()),
            Err(e) => debug!("SIG{sig} to {what} ({}): {e}", pid.abs()),
        }
    }

    /// Carry out `actions` in order; what a start answers is carried out after them.
    fn execute(&mut self, mut actions: Actions) {
        while !actions.is_empty() {
            let mut then = Actions::default();
            for i in 0..actions.len() {
                if let Some(action) = actions.get(i)
                    && !self.carry_out(action, &mut then)
                {
                    return;
                }
            }
            actions = then;
        }
    }

    /// One action; false once reinit is to exit (nothing after that is carried out).
    fn carry_out(&mut self, action: Action, then: &mut Actions) -> bool {
        match action {
            Action::Spawn(cause) if self.watch.is_some() => self.start_read(ReadFor::Spawn(cause)),
            Action::Spawn(cause) => then.extend(self.spawn(cause, None)),
            Action::Send(dest, sig) => self.send(dest, sig),
            Action::TimedOut { app_alive: true } => warn!(
                "the app did not stop within {} of the stop signal: sending SIGKILL to its process group",
                Human(self.config.stop_timeout)
            ),
            Action::TimedOut { app_alive: false } => warn!(
                "processes the app left did not stop within {} of the stop signal: sending them SIGKILL",
                Human(self.config.stop_timeout)
            ),
            Action::GaveUpWaiting => {
                warn!("processes of the app's group survived SIGKILL; going on without them")
            }
            Action::BackingOff { code, delay } => info!(
                "the app exited with status {code}: restarting it in {} (--restart-on-exit)",
                Human(delay)
            ),
            Action::Ready { pid } => self.log_ready(pid),
            Action::NotReady { pid } => warn!(
                "the app (pid {pid}) was not ready within {}: it keeps running",
                Human(self.config.ready_timeout)
            ),
            Action::UpdateFailed(why) => self.update_failed(why),
            Action::Exit(code) => {
                if let Some((since, what)) = self.exit_since.take() {
                    info!("{what}: stopped the app in {}, exiting with {code}", Human(since.elapsed()));
                }
                self.exit = Some(code);
                return false;
            }
        }
        true
    }

    /// Start the app; `what` describes the content it starts with (when watching).
    fn spawn(&mut self, cause: Cause, what: Option<String>) -> Actions {
        let listen_fds: Vec<i32> =
            self.listeners.iter().map(|l| std::os::fd::AsRawFd::as_raw_fd(&l.as_fd())).collect();
        let listen_names = sockets::fd_names(&self.listeners);
        let spec = Spawn {
            argv: &self.config.command,
            mask: self.signals.app_mask(),
            sigpipe_ignored: sys::sigpipe_was_ignored(),
            take_terminal: self.take_terminal,
            listen_fds: &listen_fds,
            listen_names: &listen_names,
            notify_socket: self.ready.as_ref().and_then(Readiness::notify_socket),
        };
        let now = Instant::now();
        self.last_start = None;
        let result = child::spawn(&spec, &mut self.last_start);
        let started = match cause {
            Cause::First => metrics::Cause::First,
            Cause::Change => metrics::Cause::Change,
            Cause::Exit => metrics::Cause::Exit,
        };
        self.http.metrics.app_spawned(started, result.is_ok());
        match result {
            Ok(pid) => {
                debug!("started the app: pid {pid}");
                match (cause, self.restart_since.take()) {
                    (Cause::Change, Some(since)) if self.ready.is_some() => {
                        self.restart_note = Some((since, what.unwrap_or_default()));
                    }
                    (Cause::Change, Some(since)) => info!(
                        "{}: restarted the app in {} (pid {pid})",
                        what.unwrap_or_default(),
                        Human(since.elapsed())
                    ),
                    (Cause::Exit, _) => info!("restarted the app (pid {pid}) after it exited"),
                    _ => {}
                }
                self.supervisor.spawned(now, pid);
                Actions::default()
            }
            Err(e) => {
                error!("{e}");
                self.supervisor.spawn_failed(now, e.exit_code())
            }
        }
    }
}

impl Loop {
    /// The app is ready: a restart for a change is complete (its line says how long it took).
    fn log_ready(&mut self, pid: i32) {
        match self.restart_note.take() {
            Some((since, what)) => {
                let old = self
                    .supervisor
                    .retiring_pid()
                    .map_or(String::new(), |old| format!("; the old app (pid {old}) is stopping"));
                info!("{what}: restarted the app in {} (pid {pid}, ready){old}", Human(since.elapsed()))
            }
            None => debug!("the app (pid {pid}) is ready"),
        }
    }

    /// A start-first update failed: the old app serves on, the new content is refused.
    fn update_failed(&mut self, why: UpdateFailure) {
        let what = self.restart_note.take().map_or_else(|| "the new content".to_string(), |(_, what)| what);
        let why = match why {
            UpdateFailure::SpawnFailed(code) => format!("the new app could not be started ({code})"),
            UpdateFailure::Exited(code) => {
                format!("the new app exited with status {code} before it was ready")
            }
            UpdateFailure::NotReady => {
                format!("the new app was not ready within {}", Human(self.config.ready_timeout))
            }
        };
        let serving = self.supervisor.app().map_or(String::new(), |pid| format!(" (pid {pid})"));
        error!(
            "{what}: {why}; the old app{serving} keeps serving, and this content counts as refused until it changes again"
        );
        self.http.metrics.action(ActionKind::Restart, false);
        if let Some(w) = self.watch.as_mut() {
            w.tracker.start_failed();
        }
    }
}
