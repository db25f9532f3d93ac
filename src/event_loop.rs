//! The only owner of runtime state: one poll over the signalfd (and the inotify fd), with the
//! timeout set to the nearest deadline and no timer otherwise. Each wake-up reaps, turns what
//! happened into supervisor inputs, and carries out the `Action`s they return.

use crate::actions::{Action, Policy, Supervisor, Target};
use crate::child::{self, Spawn};
use crate::config::{self, Config, Forward, OnChange};
use crate::http_side::HttpSide;
use crate::metrics::{ActionKind, Cause, MetricsServer};
use crate::reap;
use crate::siblings::{Procfs, Sibling};
use crate::signals::{Received, Signals};
use crate::sockets::{self, Listener, SocketsError};
use crate::sys;
use crate::watch::{Changed, Snapshot, WatchError, Watcher};
use log::{debug, error, info, warn};
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use std::collections::VecDeque;
use std::fmt;
use std::os::fd::AsFd;
use std::time::{Duration, Instant};

/// reinit could not start (exit status 125).
#[derive(Debug)]
pub enum StartError {
    Signals(std::io::Error),
    Watch(WatchError),
    Listen(SocketsError),
}

impl fmt::Display for StartError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StartError::Signals(e) => write!(f, "cannot set up signal handling: {e}"),
            StartError::Watch(e) => write!(f, "{e}"),
            StartError::Listen(e) => write!(f, "{e}"),
        }
    }
}

/// Create the inotify instance, take the first snapshot and warn about what will never update.
fn start_watching(config: &Config) -> Result<Watching, StartError> {
    let mut watcher = Watcher::new(config.watch.clone()).map_err(StartError::Watch)?;
    let (baseline, errors) = watcher.scan();
    for e in errors {
        match &e {
            WatchError::Add(_, io)
                if matches!(io.raw_os_error(), Some(libc::ENOSPC) | Some(libc::EMFILE)) =>
            {
                return Err(StartError::Watch(e));
            }
            _ => warn!("{e}"),
        }
    }
    if let Some(OnChange::Siblings(_)) = config.on_change {
        let procfs = Procfs::new("/proc");
        if crate::siblings::alone_in_namespace(procfs.top_ancestor(std::process::id() as i32)) {
            warn!(
                "reinit's container is PID 1 of its PID namespace, so no sibling container can be seen: \
                 set shareProcessNamespace: true in the pod spec"
            );
        }
    }
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    for target in watcher.targets() {
        if baseline.0.get(target).is_some_and(Option::is_none) {
            warn!("{} does not exist yet: waiting for it to appear", target.display());
        }
        let abs = std::path::absolute(target).unwrap_or_else(|_| target.clone());
        if let Some(root) = crate::watch::subpath_mount(&mountinfo, &abs) {
            warn!(
                "{} is a subPath mount of a ConfigMap/Secret key ({root}): it will never update, the bind \
                 pins the old file; mount the whole volume and watch its directory instead",
                target.display()
            );
        }
    }
    Ok(Watching { watcher, baseline, rejected: None, settle_at: None, act_at: None, restarting: None })
}

/// `path (old→new)` for up to three changed files.
fn describe(changes: &[Changed]) -> String {
    let short =
        |h: Option<u64>| h.map_or_else(|| "none".to_string(), |h| format!("{:012x}", h & 0xffff_ffff_ffff));
    let mut parts: Vec<String> = changes
        .iter()
        .take(3)
        .map(|c| format!("{} ({}→{})", c.path.display(), short(c.old), short(c.new)))
        .collect();
    if changes.len() > 3 {
        parts.push(format!("and {} more", changes.len() - 3));
    }
    format!("{} changed", parts.join(", "))
}

/// What `on_change` does, for log lines.
fn action_text(on_change: OnChange) -> String {
    match on_change {
        OnChange::Restart => "restart the app".to_string(),
        OnChange::Signal(sig) => format!("send SIG{} to the app", config::signal_name(sig)),
        OnChange::Exit(code) => format!("stop the app and exit with {code}"),
        OnChange::Siblings(sig) => format!("send SIG{} to the sibling containers", config::signal_name(sig)),
        OnChange::Http(endpoint) => format!("POST to {}", endpoint.url),
    }
}

/// A uniformly random duration in [0, max].
fn random_up_to(max: Duration) -> Duration {
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

/// Whether poll found the signalfd readable (the read that follows must not block).
fn readable(fd: &PollFd<'_>) -> bool {
    fd.revents().is_some_and(|r| r.contains(PollFlags::POLLIN))
}

/// While waiting for a stopped app's group to vanish, look again this often: members that are
/// not our children die without telling us.
const GROUP_RECHECK: Duration = Duration::from_millis(20);

struct Loop {
    config: Config,
    supervisor: Supervisor,
    signals: Signals,
    take_terminal: bool,
    me: i32,
    /// The current (or last) app's pid, which is also its process group id.
    app: Option<i32>,
    /// Whether the last reaping pass left children (app or adopted orphans) behind.
    children_left: bool,
    /// Buffers reused by every wake-up.
    received: Vec<Received>,
    reaped: Vec<reap::Reaped>,
    exit: Option<u8>,
    watch: Option<Watching>,
    /// Sockets held for the app (`--listen` and socket activation); dropping them at exit
    /// removes the socket files reinit created.
    listeners: Vec<Listener>,
    /// `--on-change http://…`, `--metrics`.
    http: HttpSide,
}

/// Runtime state of `--watch`.
struct Watching {
    watcher: Watcher,
    /// What the running app started with (or what was last acted on): the reference for
    /// "changed".
    baseline: Snapshot,
    /// Content the validator refused: not retried until the content changes again.
    rejected: Option<Snapshot>,
    /// Re-read and compare when this passes (the debounce after the last relevant event).
    settle_at: Option<Instant>,
    /// Act when this passes (`--jitter`).
    act_at: Option<Instant>,
    /// When a restart for a change was decided; the new app's start logs what it started with.
    restarting: Option<Instant>,
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
    let parent = nix::unistd::getppid();
    if let Some(sig) = config.parent_death_signal {
        if let Err(e) = sys::set_parent_death_signal(sig) {
            warn!("cannot set the parent-death signal: {e}");
        } else if nix::unistd::getppid() != parent {
            // The parent died before prctl took effect: deliver it ourselves.
            let _ = sys::kill(me, sig);
        }
    }
    let policy = Policy {
        stop_signal: config.stop_signal,
        stop_timeout: config.stop_timeout,
        pre_stop_delay: config.pre_stop_delay,
        forward: config.forward,
        restart_on_exit: config.restart_on_exit,
        remap_exit: config.remap_exit.clone(),
        sidecar: config.sidecar(),
    };
    let watch = match config.watch.is_empty() {
        true => None,
        false => Some(start_watching(&config)?),
    };
    let http = HttpSide::new(&config, open_metrics(&config)?, watch.as_ref().map(|w| &w.baseline));
    let mut lp = Loop {
        http,
        listeners,
        watch,
        supervisor: Supervisor::new(policy),
        take_terminal: !config.sidecar() && child::owns_terminal(),
        config,
        signals,
        me,
        app: None,
        children_left: true,
        received: Vec::with_capacity(32),
        reaped: Vec::with_capacity(32),
        exit: None,
    };
    let first = lp.supervisor.start();
    lp.execute(first);
    Ok(lp.run())
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

impl Loop {
    fn run(&mut self) -> u8 {
        loop {
            if let Some(code) = self.exit {
                return code;
            }
            let timeout = self.timeout();
            // With nothing but signals to wait for, sleep in the signalfd's read itself.
            let signalled = if self.watch.is_none() && timeout == PollTimeout::NONE && !self.http.active() {
                true
            } else if self.http.active() {
                self.poll_all(timeout)
            } else {
                let signals = PollFd::new(self.signals.as_fd(), PollFlags::POLLIN);
                let polled = match &self.watch {
                    Some(w) => {
                        let mut fds = [signals, PollFd::new(w.watcher.as_fd(), PollFlags::POLLIN)];
                        poll(&mut fds, timeout).map(|_| readable(&fds[0]))
                    }
                    None => {
                        let mut fds = [signals];
                        poll(&mut fds, timeout).map(|_| readable(&fds[0]))
                    }
                };
                match polled {
                    Ok(readable) => readable,
                    Err(nix::errno::Errno::EINTR) => false,
                    Err(e) => {
                        error!("poll failed: {e}");
                        false
                    }
                }
            };
            let mut actions = Vec::new();
            let mut received = std::mem::take(&mut self.received);
            if signalled && let Err(e) = self.signals.read(&mut received) {
                error!("{e}");
            }
            let now = Instant::now();
            for r in received.drain(..) {
                actions.extend(self.on_signal(now, r));
            }
            self.received = received;
            actions.extend(self.reap(now));
            actions.extend(self.supervisor.tick(now));
            actions.extend(self.on_watch(now));
            self.http.service(now);
            self.execute(actions);
            if self.supervisor.awaiting_group() && self.group_empty() {
                let more = self.supervisor.group_gone(Instant::now());
                self.execute(more);
            }
        }
    }

    /// One poll over every fd, the HTTP ones included (their revents go back to `HttpSide`).
    /// Returns whether the signalfd is readable.
    fn poll_all(&mut self, timeout: PollTimeout) -> bool {
        let mut revents = self.http.take_revents();
        let mut fds = Vec::with_capacity(4 + crate::metrics::MAX_CONNECTIONS);
        fds.push(PollFd::new(self.signals.as_fd(), PollFlags::POLLIN));
        if let Some(w) = &self.watch {
            fds.push(PollFd::new(w.watcher.as_fd(), PollFlags::POLLIN));
        }
        let first_http = fds.len();
        fds.extend(self.http.fds().map(|(fd, events)| PollFd::new(fd, events)));
        let signalled = match poll(&mut fds, timeout) {
            Ok(_) => readable(&fds[0]),
            Err(nix::errno::Errno::EINTR) => false,
            Err(e) => {
                error!("poll failed: {e}");
                false
            }
        };
        revents.extend(fds[first_http..].iter().map(|fd| fd.revents().unwrap_or(PollFlags::empty())));
        drop(fds);
        self.http.set_revents(revents);
        signalled
    }

    fn timeout(&self) -> PollTimeout {
        let now = Instant::now();
        let watch_deadlines = self.watch.iter().flat_map(|w| [w.settle_at, w.act_at]).flatten();
        let deadline = self
            .supervisor
            .next_deadline()
            .into_iter()
            .chain(watch_deadlines)
            .chain(self.http.next_deadline())
            .min();
        let mut wait = deadline.map(|d| d.saturating_duration_since(now));
        if self.supervisor.awaiting_group() {
            wait = Some(wait.map_or(GROUP_RECHECK, |w| w.min(GROUP_RECHECK)));
        }
        match wait {
            None => PollTimeout::NONE,
            // round up, so we never wake just before a deadline and spin
            Some(w) => {
                let ms = w.as_micros().div_ceil(1000).min(i32::MAX as u128) as i32;
                PollTimeout::try_from(ms).unwrap_or(PollTimeout::MAX)
            }
        }
    }

    fn on_signal(&mut self, now: Instant, r: Received) -> Vec<Action> {
        let sig = r.signo;
        let name = config::signal_name(sig);
        match sig {
            libc::SIGCHLD => Vec::new(),
            libc::SIGTERM | libc::SIGINT if self.config.sidecar() => {
                debug!("received SIG{name}: exiting");
                self.supervisor.terminate(now, sig)
            }
            _ if self.config.sidecar() => {
                debug!("received SIG{name} in sidecar mode: ignored");
                Vec::new()
            }
            libc::SIGTERM => {
                let to = if self.config.is_mapped(sig) {
                    self.config.map_signal(sig)
                } else {
                    Some(self.config.stop_signal)
                };
                match to {
                    Some(to) => {
                        debug!("received SIGTERM: stopping the app with SIG{}", config::signal_name(to));
                        self.supervisor.terminate(now, to)
                    }
                    None => {
                        debug!("received SIGTERM: dropped by --map-signal");
                        Vec::new()
                    }
                }
            }
            libc::SIGINT if self.supervisor.stopping() => {
                debug!("received SIGINT during the stop: killing now");
                self.supervisor.force(now)
            }
            _ => {
                match self.config.map_signal(sig) {
                    None => debug!("received SIG{name}: dropped by --map-signal"),
                    Some(to) => {
                        let target = match self.config.forward {
                            Forward::Group => Target::Group,
                            Forward::Child => Target::App,
                        };
                        debug!("forwarding SIG{name} as SIG{}", config::signal_name(to));
                        self.send(target, to);
                    }
                }
                Vec::new()
            }
        }
    }

    /// Inotify events, the debounce and the jitter; a real change becomes a supervisor input.
    fn on_watch(&mut self, now: Instant) -> Vec<Action> {
        let Some(w) = self.watch.as_mut() else { return Vec::new() };
        match w.watcher.read() {
            Ok(events) => {
                if events.overflow {
                    warn!("the inotify queue overflowed: re-reading every watched path");
                }
                if events.relevant {
                    w.settle_at = Some(now + self.config.debounce);
                }
            }
            Err(e) => error!("{e}"),
        }
        let settled = w.settle_at.is_some_and(|t| now >= t);
        let jittered = w.act_at.is_some_and(|t| now >= t);
        if !settled && !jittered {
            return Vec::new();
        }
        if settled {
            w.settle_at = None;
        }
        let (snapshot, errors) = w.watcher.scan();
        for e in errors {
            error!("{e}");
        }
        let changes = snapshot.changes_from(&w.baseline);
        if changes.is_empty() {
            debug!("no content change");
            w.act_at = None;
            return Vec::new();
        }
        if w.rejected.as_ref().is_some_and(|r| snapshot.changes_from(r).is_empty()) {
            debug!("still the content the validator refused");
            return Vec::new();
        }
        if !self.config.jitter.is_zero() && !jittered {
            if w.act_at.is_none() {
                let delay = random_up_to(self.config.jitter);
                debug!("content changed: acting in {delay:?} (--jitter)");
                w.act_at = Some(now + delay);
            }
            return Vec::new();
        }
        w.act_at = None;
        self.http.metrics.change_seen();
        let actions = self.act_on_change(now, snapshot, &changes);
        if let Some(w) = &self.watch {
            self.http.metrics.content(&w.baseline);
        }
        actions
    }

    fn act_on_change(&mut self, now: Instant, snapshot: Snapshot, changes: &[Changed]) -> Vec<Action> {
        let Some(on_change) = self.config.on_change else { return Vec::new() };
        let Some(w) = self.watch.as_mut() else { return Vec::new() };
        let what = describe(changes);
        if let Some(argv) = &self.config.validate {
            let path = changes.iter().find(|c| c.new.is_some()).unwrap_or(&changes[0]).path.clone();
            if let Err(why) = child::validate(argv, &path, self.signals.app_mask(), self.config.stop_timeout)
            {
                warn!("{what}: rejected, {why}; the running app is left untouched");
                w.rejected = Some(snapshot);
                self.http.metrics.validation_failed();
                return Vec::new();
            }
        }
        w.rejected = None;
        if let OnChange::Siblings(sig) = on_change {
            w.baseline = w.baseline.merged(&snapshot);
            let ok = self.signal_siblings(now, sig, &what);
            self.http.acted(ActionKind::Siblings, ok, self.config.dry_run);
            return Vec::new();
        }
        let action = action_text(on_change);
        if self.config.dry_run {
            info!("{what}: would {action} (--dry-run)");
            w.baseline = w.baseline.merged(&snapshot);
            return Vec::new();
        }
        self.http.metrics.change_acted();
        match on_change {
            OnChange::Restart => {
                w.restarting.get_or_insert(now);
            }
            OnChange::Signal(_) => {
                w.baseline = w.baseline.merged(&snapshot);
                let pid = self.app.filter(|_| self.supervisor.app_running());
                match pid {
                    Some(pid) => {
                        info!("{what}: {action} (pid {pid}), {:?} after the change settled", now.elapsed())
                    }
                    None => info!("{what}: no app running, nothing to signal"),
                }
                self.http.metrics.action(ActionKind::Signal, pid.is_some());
            }
            OnChange::Exit(_) => {
                info!("{what}: going to {action}");
                self.http.metrics.action(ActionKind::Exit, true);
            }
            OnChange::Siblings(_) => {}
            OnChange::Http(_) => {
                w.baseline = w.baseline.merged(&snapshot);
                self.http.post(now, what);
                return Vec::new();
            }
        }
        self.supervisor.change(now, on_change)
    }

    /// `siblings:SIG`: signal the top processes of the pod's other containers through pidfds,
    /// after checking each is still the process found by the scan.
    /// Returns whether siblings were found and all of them signalled.
    fn signal_siblings(&self, now: Instant, sig: i32, what: &str) -> bool {
        let name = config::signal_name(sig);
        let procfs = Procfs::new("/proc");
        let found = match procfs.siblings(self.me, &self.config.siblings) {
            Ok(found) => found,
            Err(e) => {
                error!("{what}: {e}");
                return false;
            }
        };
        if found.is_empty() {
            let filter = match self.config.siblings.as_slice() {
                [] => String::new(),
                names => format!(" named {}", names.join(" or ")),
            };
            warn!(
                "{what}: no sibling process{filter} found to send SIG{name}; the pod needs \
                 shareProcessNamespace: true, and --sibling must match the process's comm or executable name"
            );
            return false;
        }
        let list = |v: &[&Sibling]| {
            v.iter().map(|s| format!("{} (pid {})", s.name, s.pid)).collect::<Vec<_>>().join(", ")
        };
        if self.config.dry_run {
            info!("{what}: would send SIG{name} to {} (--dry-run)", list(&found.iter().collect::<Vec<_>>()));
            return true;
        }
        let mut sent = Vec::new();
        for s in &found {
            let result = sys::pidfd_open(s.pid).and_then(|fd| {
                if procfs.is_same(s) {
                    sys::pidfd_send_signal(fd.as_fd(), sig).map(|()| true)
                } else {
                    Ok(false)
                }
            });
            match result {
                Ok(true) => sent.push(s),
                Ok(false) => {
                    debug!("{} (pid {}) exited and its pid was reused: not signalled", s.name, s.pid)
                }
                Err(e) if e.raw_os_error() == Some(libc::ESRCH) => {
                    debug!("{} (pid {}) is gone", s.name, s.pid)
                }
                Err(e) if e.raw_os_error() == Some(libc::EPERM) => error!(
                    "cannot send SIG{name} to {} (pid {}): permission denied; it runs as another user: \
                     run reinit with the same UID, or give it the CAP_KILL capability",
                    s.name, s.pid
                ),
                Err(e) => error!("cannot send SIG{name} to {} (pid {}): {e}", s.name, s.pid),
            }
        }
        if !sent.is_empty() {
            info!("{what}: sent SIG{name} to {} in {} ms", list(&sent), now.elapsed().as_millis());
        }
        sent.len() == found.len()
    }

    fn reap(&mut self, now: Instant) -> Vec<Action> {
        let mut reaped = std::mem::take(&mut self.reaped);
        let reaping = reap::reap_all(sys::waitpid_any, &mut reaped);
        if let Some(e) = reaping.error {
            error!("{e}");
        }
        self.children_left = reaping.children_left;
        let mut actions = Vec::new();
        for r in reaped.drain(..) {
            let Some(code) = child::exit_code(r.status) else { continue };
            if Some(r.pid) == self.app && self.supervisor.app_running() {
                debug!("app (pid {}) exited with status {code}", r.pid);
                self.http.metrics.app_down();
                actions.extend(self.supervisor.app_exited(now, code));
            } else {
                debug!("reaped pid {} (status {code})", r.pid);
            }
        }
        self.reaped = reaped;
        actions
    }

    /// The app is reaped and its process group empty; on a final stop our other children too.
    fn group_empty(&self) -> bool {
        let group_alive = match self.app {
            Some(pgid) => sys::kill(-pgid, 0).is_ok(),
            None => false,
        };
        if group_alive {
            return false;
        }
        !self.supervisor.final_stop() || self.orphans().is_empty()
    }

    /// reinit's children other than the app. Only scans `/proc` when waitpid said children are
    /// left (with none, as in most runs, this costs nothing).
    fn orphans(&self) -> Vec<i32> {
        if !self.children_left {
            return Vec::new();
        }
        let app = self.app.filter(|_| self.supervisor.app_running());
        reap::children_of(self.me).into_iter().filter(|p| Some(*p) != app).collect()
    }

    fn send(&self, target: Target, sig: i32) {
        let name = config::signal_name(sig);
        match target {
            Target::App if self.supervisor.app_running() => {
                if let Some(pid) = self.app
                    && let Err(e) = sys::kill(pid, sig)
                {
                    debug!("SIG{name} to the app (pid {pid}): {e}");
                }
            }
            Target::App => debug!("no app running: SIG{name} not sent"),
            // The group id is the app's pid: once the app is reaped and the group has been seen
            // empty, that number may belong to a stranger.
            Target::Group if self.supervisor.app_running() || self.supervisor.awaiting_group() => {
                if let Some(pgid) = self.app
                    && let Err(e) = sys::kill(-pgid, sig)
                {
                    debug!("SIG{name} to process group {pgid}: {e}");
                }
            }
            Target::Group => debug!("no app running: SIG{name} not sent"),
            Target::Orphans => {
                for pid in self.orphans() {
                    debug!("SIG{name} to adopted process {pid}");
                    let _ = sys::kill(pid, sig);
                }
            }
        }
    }

    fn execute(&mut self, actions: Vec<Action>) {
        let mut queue: VecDeque<Action> = actions.into();
        while let Some(action) = queue.pop_front() {
            match action {
                Action::Spawn => queue.extend(self.spawn()),
                Action::Signal(target, sig) => self.send(target, sig),
                Action::TimedOut => warn!(
                    "the app did not stop within {:?} of the stop signal: sending SIGKILL to its process group",
                    self.config.stop_timeout
                ),
                Action::GaveUpWaiting => {
                    warn!("processes of the app's group survived SIGKILL; going on without them")
                }
                Action::Exit(code) => {
                    self.exit = Some(code);
                    return;
                }
            }
        }
    }

    fn spawn(&mut self) -> Vec<Action> {
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
        };
        let mut restart_log = None;
        if let Some(w) = self.watch.as_mut() {
            // The content this app starts with: later changes are measured against it, and
            // changes made so far (also those that landed during the stop) are taken by this start.
            let (snapshot, errors) = w.watcher.scan();
            for e in errors {
                error!("{e}");
            }
            let changes = snapshot.changes_from(&w.baseline);
            w.baseline = w.baseline.merged(&snapshot);
            self.http.metrics.content(&w.baseline);
            if let Some(since) = w.restarting.take() {
                let what =
                    if changes.is_empty() { "content back as before".into() } else { describe(&changes) };
                restart_log = Some((what, since));
            }
        }
        let now = Instant::now();
        let cause = match (&restart_log, self.app) {
            (Some(_), _) => Cause::Change,
            (None, None) => Cause::First,
            (None, Some(_)) => Cause::Exit,
        };
        let result = child::spawn(&spec);
        self.http.metrics.app_spawned(cause, result.is_ok());
        match result {
            Ok(pid) => {
                debug!("started the app: pid {pid}");
                if let Some((what, since)) = restart_log {
                    info!("{what}: restarted the app in {} ms (pid {pid})", since.elapsed().as_millis());
                }
                self.app = Some(pid);
                self.supervisor.spawned(now);
                Vec::new()
            }
            Err(e) => {
                error!("{e}");
                self.supervisor.spawn_failed(now, e.exit_code())
            }
        }
    }
}
