//! What the event loop owns for HTTP: the `--on-change http://…` client (`http.rs`), the
//! metrics (`metrics.rs`) and their `--metrics` server, behind a few calls: `fds` /
//! `set_revents` around the loop's poll, `service` at every wake-up, `next_deadline`, and
//! one-line updates (`post`, `acted`, `metrics.…`) where the loop acts.

use crate::config::{Config, OnChange};
use crate::http::Reloader;
use crate::metrics::{ActionKind, Metrics, MetricsServer};
use crate::retry::Outcome;
use crate::watch::Snapshot;
use nix::poll::PollFlags;
use std::os::fd::BorrowedFd;
use std::time::Instant;

/// Owned by the event loop. Poll `fds()` with the loop's own fds, hand what poll returned
/// for them back in the same order (`take_revents` / `set_revents`), then call `service` at
/// every wake-up; `next_deadline` bounds the poll's timeout.
pub struct HttpSide {
    reloader: Option<Reloader>,
    pub metrics: Metrics,
    server: Option<MetricsServer>,
    /// What poll returned for `fds()`, in that order (a buffer reused from one poll to the next).
    revents: Vec<PollFlags>,
}

impl HttpSide {
    pub fn new(config: &Config, server: Option<MetricsServer>, baseline: Option<&Snapshot>) -> HttpSide {
        let kind = config.on_change.map(|c| match c {
            OnChange::Restart => ActionKind::Restart,
            OnChange::Signal(_) => ActionKind::Signal,
            OnChange::Exit(_) => ActionKind::Exit,
            OnChange::Siblings(_) => ActionKind::Siblings,
            OnChange::Http(_) => ActionKind::Http,
        });
        let reloader = match config.on_change {
            Some(OnChange::Http(endpoint)) => Some(Reloader::new(endpoint.clone())),
            _ => None,
        };
        let revents = Vec::with_capacity(2 + crate::metrics::MAX_CONNECTIONS);
        let mut metrics = Metrics::new(kind);
        if let Some(baseline) = baseline {
            metrics.content(baseline);
        }
        HttpSide { reloader, metrics, server, revents }
    }

    /// Whether there is anything to poll or serve (else the loop need not know about HTTP).
    pub fn active(&self) -> bool {
        self.reloader.is_some() || self.server.is_some()
    }

    pub fn next_deadline(&self) -> Option<Instant> {
        let reload = self.reloader.as_ref().and_then(Reloader::next_deadline);
        reload.into_iter().chain(self.server.as_ref().and_then(MetricsServer::next_deadline)).min()
    }

    /// New content is live: the reload request is owed for it.
    pub fn post(&mut self, now: Instant, what: String) {
        if let Some(r) = self.reloader.as_mut() {
            let ended = r.content_changed(now, what);
            self.reload_ended(ended);
        }
    }

    /// An action other than a restart or a request ended (`dry_run`: it was only logged).
    pub fn acted(&mut self, kind: ActionKind, ok: bool, dry_run: bool) {
        if !dry_run {
            self.metrics.change_acted();
            self.metrics.action(kind, ok);
        }
    }

    /// The reload request's socket (while one is in flight), then the metrics server's.
    pub fn fds(&self) -> impl Iterator<Item = (BorrowedFd<'_>, PollFlags)> {
        let reload = self.reloader.as_ref().and_then(Reloader::fd);
        reload.into_iter().chain(self.server.iter().flat_map(MetricsServer::fds))
    }

    /// An empty buffer for the revents of `fds()`.
    pub fn take_revents(&mut self) -> Vec<PollFlags> {
        let mut revents = std::mem::take(&mut self.revents);
        revents.clear();
        revents
    }

    /// What poll returned for `fds()`, in order.
    pub fn set_revents(&mut self, revents: Vec<PollFlags>) {
        self.revents = revents;
    }

    /// Sockets that poll found ready, then deadlines.
    pub fn service(&mut self, now: Instant) {
        let revents = std::mem::take(&mut self.revents);
        let mut rest = &revents[..];
        if let Some(r) = self.reloader.as_mut() {
            if r.fd().is_some()
                && let Some((first, tail)) = rest.split_first()
            {
                rest = tail;
                let ended = r.on_ready(now, *first);
                self.reload_ended(ended);
            }
            if let Some(r) = self.reloader.as_mut() {
                let ended = r.tick(now);
                self.reload_ended(ended);
            }
        }
        if let Some(server) = self.server.as_mut() {
            server.on_ready(now, rest, &self.metrics);
            server.tick(now);
        }
        self.revents = revents;
        self.revents.clear();
    }

    fn reload_ended(&mut self, outcome: Option<Outcome>) {
        if let Some(outcome) = outcome {
            self.metrics.action(ActionKind::Http, outcome == Outcome::Success);
        }
    }
}
