//! What the event loop owns for HTTP: the `--on-change http://…` client (`http.rs`), the
//! metrics (`metrics.rs`) and their `--metrics` server, behind a few calls: `fds` /
//! `set_revents` around the loop's poll, `service` at every wake-up, `next_deadline`, and
//! one-line updates (`post`, `acted`, `metrics.…`) where the loop acts.

use crate::config::{Config, OnChange};
use crate::content::Snapshot;
use crate::http::Reloader;
use crate::metrics::{ActionKind, Metrics, MetricsServer};
use crate::retry::Outcome;
use crate::time::earliest;
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
    /// Whether `revents` starts with the reload request's socket: a change between the poll and
    /// `service` may start a request whose socket was not polled.
    reloader_polled: bool,
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
        HttpSide { reloader, metrics, server, revents, reloader_polled: false }
    }

    /// Whether there is anything to poll or serve (else the loop need not know about HTTP).
    pub fn active(&self) -> bool {
        self.reloader.is_some() || self.server.is_some()
    }

    pub fn next_deadline(&self) -> Option<Instant> {
        let reload = self.reloader.as_ref().and_then(Reloader::next_deadline);
        earliest(reload, self.server.as_ref().and_then(MetricsServer::next_deadline))
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
        self.reloader_polled = self.reloader.as_ref().is_some_and(|r| r.fd().is_some());
        self.revents = revents;
    }

    /// Sockets that poll found ready, then deadlines.
    pub fn service(&mut self, now: Instant) {
        let revents = std::mem::take(&mut self.revents);
        let mut rest = &revents[..];
        if let Some(r) = self.reloader.as_mut() {
            if std::mem::take(&mut self.reloader_polled)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::Args;
    use clap::Parser;
    use std::io::{Read, Write};
    use std::net::{TcpListener, TcpStream};
    use std::time::Duration;

    /// A change between the poll and `service` starts a request whose socket was not polled:
    /// the revents of the metrics listener must still reach the metrics server.
    #[test]
    fn a_request_started_after_the_poll_leaves_the_servers_events_alone() {
        let endpoint = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/-/reload", endpoint.local_addr().unwrap());
        let args = Args::try_parse_from(["reinit", "-w", "/nonexistent", "--on-change", &url]).unwrap();
        let config = crate::config::build(args.resolve(&|_| None), None).unwrap();
        let server = MetricsServer::bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let mut client = TcpStream::connect(server.local_addr()).unwrap();
        client.write_all(b"GET /metrics HTTP/1.0\r\n\r\n").unwrap();
        let mut side = HttpSide::new(&config, Some(server), None);

        // the loop polled: only the metrics listener, which is readable
        let mut revents = side.take_revents();
        assert_eq!(side.fds().count(), 1);
        revents.push(PollFlags::POLLIN);
        side.set_revents(revents);
        // then the change: a request starts
        let now = Instant::now();
        side.post(now, "x changed".into());
        assert_eq!(side.fds().count(), 2, "the request's socket, then the listener");
        side.service(now);

        client.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut answer = String::new();
        client.read_to_string(&mut answer).unwrap();
        assert!(answer.starts_with("HTTP/1.1 200 OK"), "{answer:?}");
    }
}
