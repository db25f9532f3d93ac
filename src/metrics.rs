//! `--metrics [HOST]:PORT`: what reinit did, in the Prometheus text format at `GET /metrics`.
//!
//! `Metrics` is fixed-size state (counters, flags, the content hash) updated by one-line calls
//! from the event loop. `MetricsServer` answers from the loop without ever blocking it: a few
//! connection slots with buffers reused from one client to the next, a cap on the request
//! size, and a deadline per connection; a client beyond the slots is closed at once.

use crate::content::Snapshot;
use nix::poll::PollFlags;
use std::fmt::Write as _;
use std::io::{self, Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::os::fd::{AsFd, BorrowedFd};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Why the app was started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cause {
    First = 0,
    Change = 1,
    Exit = 2,
}

const CAUSES: [&str; 3] = ["first", "change", "exit"];

/// What an action on a change was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ActionKind {
    Restart = 0,
    Signal = 1,
    Exit = 2,
    Siblings = 3,
    Http = 4,
}

const ACTIONS: [&str; 5] = ["restart", "signal", "exit", "siblings", "http"];

/// Everything `/metrics` reports. Fixed-size: nothing here grows with time or traffic.
#[derive(Debug, Default)]
pub struct Metrics {
    starts: [u64; 3],
    up: bool,
    changes_seen: u64,
    changes_acted: u64,
    validation_failures: u64,
    /// Per action: [success, failure].
    actions: [[u64; 2]; 5],
    /// The configured action: its series are reported from the start, at 0.
    configured: Option<ActionKind>,
    last_failed: bool,
    /// Milliseconds since the epoch of the last action's end.
    last_at_ms: u64,
    /// Hash of the content the app runs with (or that was last acted on).
    content: Option<u64>,
}

impl Metrics {
    pub fn new(configured: Option<ActionKind>) -> Metrics {
        Metrics { configured, ..Metrics::default() }
    }

    pub fn app_started(&mut self, cause: Cause) {
        self.starts[cause as usize] += 1;
        self.up = true;
    }

    /// An app start was attempted; one for a change is the end of a `restart` action.
    pub fn app_spawned(&mut self, cause: Cause, ok: bool) {
        if ok {
            self.app_started(cause);
        }
        if cause == Cause::Change {
            self.action(ActionKind::Restart, ok);
        }
    }

    pub fn app_down(&mut self) {
        self.up = false;
    }

    /// New content was found (before validation).
    pub fn change_seen(&mut self) {
        self.changes_seen += 1;
    }

    /// A change was acted on (validated, not a dry run).
    pub fn change_acted(&mut self) {
        self.changes_acted += 1;
    }

    pub fn validation_failed(&mut self) {
        self.validation_failures += 1;
    }

    /// An action ended (for `http`: one request).
    pub fn action(&mut self, kind: ActionKind, ok: bool) {
        self.actions[kind as usize][usize::from(!ok)] += 1;
        self.last_failed = !ok;
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
        self.last_at_ms = u64::try_from(now.as_millis()).unwrap_or(u64::MAX);
    }

    pub fn content(&mut self, snapshot: &Snapshot) {
        self.content = Some(snapshot.fingerprint());
    }

    /// The text exposition format (0.0.4) into `out` (cleared first).
    pub fn render(&self, out: &mut String) {
        out.clear();
        let head = |out: &mut String, name: &str, kind: &str, help: &str| {
            let _ = write!(out, "# HELP {name} {help}\n# TYPE {name} {kind}\n");
        };
        head(out, "reinit_app_starts_total", "counter", "App starts, by cause: first, change, exit.");
        for (cause, n) in CAUSES.iter().zip(self.starts) {
            let _ = writeln!(out, "reinit_app_starts_total{{cause=\"{cause}\"}} {n}");
        }
        head(out, "reinit_app_up", "gauge", "Whether the app is running (1) or not (0).");
        let _ = writeln!(out, "reinit_app_up {}", u8::from(self.up));
        let counters = [
            ("reinit_changes_seen_total", "Real content changes found.", self.changes_seen),
            ("reinit_changes_acted_total", "Content changes acted on.", self.changes_acted),
            ("reinit_validation_failures_total", "Content refused by --validate.", self.validation_failures),
        ];
        for (name, help, n) in counters {
            head(out, name, "counter", help);
            let _ = writeln!(out, "{name} {n}");
        }
        head(out, "reinit_actions_total", "counter", "Actions on changes (http: requests), by result.");
        for (i, (action, [ok, failed])) in ACTIONS.iter().zip(self.actions).enumerate() {
            if ok + failed > 0 || self.configured.is_some_and(|c| c as usize == i) {
                let _ = writeln!(out, "reinit_actions_total{{action=\"{action}\",result=\"success\"}} {ok}");
                let _ =
                    writeln!(out, "reinit_actions_total{{action=\"{action}\",result=\"failure\"}} {failed}");
            }
        }
        head(out, "reinit_last_action_successful", "gauge", "Whether the last action succeeded.");
        let _ = writeln!(out, "reinit_last_action_successful {}", u8::from(!self.last_failed));
        head(out, "reinit_last_action_timestamp_seconds", "gauge", "When the last action ended.");
        let (secs, ms) = (self.last_at_ms / 1000, self.last_at_ms % 1000);
        let _ = writeln!(out, "reinit_last_action_timestamp_seconds {secs}.{ms:03}");
        if let Some(hash) = self.content {
            head(out, "reinit_content_info", "gauge", "Hash of the content the app runs with.");
            let _ = writeln!(out, "reinit_content_info{{hash=\"{hash:016x}\"}} 1");
        }
        head(out, "reinit_build_info", "gauge", "reinit's version.");
        let _ = writeln!(out, "reinit_build_info{{version=\"{}\"}} 1", env!("CARGO_PKG_VERSION"));
    }
}

/// `--metrics`: where to listen, and the value as given (for messages).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bind {
    pub addr: SocketAddr,
    pub text: String,
}

/// Parse `[HOST]:PORT`: an empty HOST is every IPv4 address; HOST is an IP address (`[…]` for
/// IPv6) or `localhost`.
pub fn parse_addr(text: &str) -> Result<SocketAddr, String> {
    const EXPECTED: &str = "[HOST]:PORT with HOST an IP address, [IPv6 address] or localhost, e.g. :9533";
    let (host, port) = text.trim().rsplit_once(':').ok_or(EXPECTED)?;
    let port: u16 = port.parse().map_err(|_| EXPECTED)?;
    let ip = match host {
        "" => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        h if h.eq_ignore_ascii_case("localhost") => IpAddr::V4(Ipv4Addr::LOCALHOST),
        h => match h.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
            Some(v6) => v6.parse().ok().filter(IpAddr::is_ipv6).ok_or(EXPECTED)?,
            None => IpAddr::V4(h.parse().map_err(|_| EXPECTED)?),
        },
    };
    Ok(SocketAddr::new(ip, port))
}

/// Connections served at once; more are closed as they arrive.
pub const MAX_CONNECTIONS: usize = 4;
/// A request's line and headers must fit in this.
pub const MAX_REQUEST: usize = 4096;
/// A connection must be answered and gone within this.
pub const CONNECTION_DEADLINE: Duration = Duration::from_secs(3);
/// How long to leave the listener alone after an accept error.
const ACCEPT_PAUSE: Duration = Duration::from_secs(1);

#[derive(Default)]
struct Slot {
    stream: Option<TcpStream>,
    deadline: Option<Instant>,
    /// Bytes of the response sent so far; `None` while the request is being read.
    sent: Option<usize>,
    request: Vec<u8>,
    response: Vec<u8>,
}

impl Slot {
    fn close(&mut self) {
        self.stream = None;
        self.deadline = None;
        self.sent = None;
        self.request.clear();
        self.response.clear();
    }
}

/// The `/metrics` endpoint, owned by the event loop: poll `fds()`, pass the `revents` back in
/// the same order to `on_ready`, call `tick` at every wake-up (deadlines from `next_deadline`).
pub struct MetricsServer {
    listener: TcpListener,
    slots: [Slot; MAX_CONNECTIONS],
    /// The rendered metrics, reused.
    body: String,
    /// After an accept error (e.g. out of fds) the listener is left alone until then: it would
    /// stay readable and spin the loop.
    paused_until: Option<Instant>,
}

impl MetricsServer {
    pub fn bind(addr: SocketAddr) -> io::Result<MetricsServer> {
        let listener = TcpListener::bind(addr)?;
        listener.set_nonblocking(true)?;
        Ok(MetricsServer { listener, slots: Default::default(), body: String::new(), paused_until: None })
    }

    #[cfg(test)]
    pub fn local_addr(&self) -> SocketAddr {
        self.listener.local_addr().unwrap_or_else(|e| panic!("{e}"))
    }

    /// The listener, then every open connection, with the events wanted.
    pub fn fds(&self) -> impl Iterator<Item = (BorrowedFd<'_>, PollFlags)> {
        let conns = self.slots.iter().filter_map(|s| {
            let want = if s.sent.is_some() { PollFlags::POLLOUT } else { PollFlags::POLLIN };
            s.stream.as_ref().map(|st| (st.as_fd(), want))
        });
        let listen = if self.paused_until.is_some() { PollFlags::empty() } else { PollFlags::POLLIN };
        std::iter::once((self.listener.as_fd(), listen)).chain(conns)
    }

    pub fn next_deadline(&self) -> Option<Instant> {
        self.slots.iter().filter_map(|s| s.deadline).chain(self.paused_until).min()
    }

    /// Close connections past their deadline; resume accepting after a pause.
    pub fn tick(&mut self, now: Instant) {
        if self.paused_until.is_some_and(|t| now >= t) {
            self.paused_until = None;
        }
        for slot in &mut self.slots {
            if slot.deadline.is_some_and(|d| now >= d) {
                slot.close();
            }
        }
    }

    /// `revents` in the order of `fds()`.
    pub fn on_ready(&mut self, now: Instant, revents: &[PollFlags], metrics: &Metrics) {
        let mut events = revents.iter().skip(1);
        for i in 0..MAX_CONNECTIONS {
            if self.slots[i].stream.is_none() {
                continue;
            }
            if events.next().is_some_and(|r| !r.is_empty()) {
                self.serve(i, metrics);
            }
        }
        if revents.first().is_some_and(|r| !r.is_empty()) {
            self.accept(now, metrics);
        }
    }

    fn accept(&mut self, now: Instant, metrics: &Metrics) {
        loop {
            let stream = match self.listener.accept() {
                Ok((stream, _)) => stream,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) => {
                    log::warn!("metrics: cannot accept a connection: {e}");
                    self.paused_until = Some(now + ACCEPT_PAUSE);
                    return;
                }
            };
            let Some(i) = self.slots.iter().position(|s| s.stream.is_none()) else {
                log::debug!("metrics: {MAX_CONNECTIONS} connections open: closing a new one");
                continue;
            };
            if stream.set_nonblocking(true).is_err() {
                continue;
            }
            let slot = &mut self.slots[i];
            slot.stream = Some(stream);
            slot.deadline = Some(now + CONNECTION_DEADLINE);
            // the request is often there already
            self.serve(i, metrics);
        }
    }

    /// Read the request, or write the response, as far as the socket allows now.
    fn serve(&mut self, i: usize, metrics: &Metrics) {
        if self.slots[i].sent.is_none() {
            match self.read_request(i) {
                Ok(Some(response)) => {
                    self.respond(i, response, metrics);
                    self.slots[i].sent = Some(0);
                }
                Ok(None) => return,
                Err(()) => return self.slots[i].close(),
            }
        }
        let slot = &mut self.slots[i];
        let (Some(stream), Some(sent)) = (slot.stream.as_mut(), slot.sent) else { return };
        // std writes to sockets with MSG_NOSIGNAL: a gone client raises no SIGPIPE
        match stream.write(&slot.response[sent..]) {
            Ok(n) if sent + n == slot.response.len() => slot.close(),
            Ok(n) => slot.sent = Some(sent + n),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock || e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => slot.close(),
        }
    }

    /// What to answer once the request's head is complete; `Err` to close the connection.
    fn read_request(&mut self, i: usize) -> Result<Option<Answer>, ()> {
        let slot = &mut self.slots[i];
        let Some(stream) = slot.stream.as_mut() else { return Err(()) };
        let mut buf = [0u8; 512];
        loop {
            if let Some(answer) = answer(&slot.request) {
                return Ok(Some(answer));
            }
            if slot.request.len() >= MAX_REQUEST {
                return Ok(Some(Answer::TooLarge));
            }
            let room = (MAX_REQUEST - slot.request.len()).min(buf.len());
            match stream.read(&mut buf[..room]) {
                Ok(0) => return Err(()),
                Ok(n) => slot.request.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(None),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return Err(()),
            }
        }
    }

    fn respond(&mut self, i: usize, answer: Answer, metrics: &Metrics) {
        let (status, body) = match answer {
            Answer::Metrics { .. } => {
                metrics.render(&mut self.body);
                ("200 OK", self.body.as_str())
            }
            Answer::NotFound => ("404 Not Found", "not found: metrics are at /metrics\n"),
            Answer::NotAllowed => ("405 Method Not Allowed", "only GET and HEAD\n"),
            Answer::TooLarge => ("431 Request Header Fields Too Large", "request too large\n"),
        };
        let head_only = matches!(answer, Answer::Metrics { head: true });
        let out = &mut self.slots[i].response;
        out.clear();
        let _ = write!(
            out,
            "HTTP/1.1 {status}\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        );
        if !head_only {
            out.extend_from_slice(body.as_bytes());
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Answer {
    Metrics { head: bool },
    NotFound,
    NotAllowed,
    TooLarge,
}

/// The answer to a request whose head is complete in `req`, else `None`.
fn answer(req: &[u8]) -> Option<Answer> {
    let complete = req.windows(4).any(|w| w == b"\r\n\r\n") || req.windows(2).any(|w| w == b"\n\n");
    if !complete {
        return None;
    }
    let line = req.split(|&b| b == b'\n').next().unwrap_or_default();
    let mut parts = line.split(|&b| b == b' ');
    let (method, target) = (parts.next().unwrap_or_default(), parts.next().unwrap_or_default());
    let path = target.split(|&b| b == b'?').next().unwrap_or_default();
    Some(match (method, path) {
        (b"GET", b"/metrics") => Answer::Metrics { head: false },
        (b"HEAD", b"/metrics") => Answer::Metrics { head: true },
        (_, b"/metrics") => Answer::NotAllowed,
        _ => Answer::NotFound,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses() {
        assert_eq!(parse_addr(":9533").unwrap(), "0.0.0.0:9533".parse().unwrap());
        assert_eq!(parse_addr("127.0.0.1:9533").unwrap(), "127.0.0.1:9533".parse().unwrap());
        assert_eq!(parse_addr("localhost:1").unwrap(), "127.0.0.1:1".parse().unwrap());
        assert_eq!(parse_addr("[::]:9533").unwrap(), "[::]:9533".parse().unwrap());
        for bad in ["9533", ":", ":x", ":70000", "example.com:1", "[1.2.3.4]:1", "::1:80", "[::1"] {
            assert!(parse_addr(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn requests() {
        assert_eq!(answer(b"GET /metrics HTTP/1.1\r\nHost: x"), None);
        assert_eq!(
            answer(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"),
            Some(Answer::Metrics { head: false })
        );
        assert_eq!(answer(b"GET /metrics?x=1 HTTP/1.0\n\n"), Some(Answer::Metrics { head: false }));
        assert_eq!(answer(b"HEAD /metrics HTTP/1.1\r\n\r\n"), Some(Answer::Metrics { head: true }));
        assert_eq!(answer(b"POST /metrics HTTP/1.1\r\n\r\n"), Some(Answer::NotAllowed));
        assert_eq!(answer(b"GET / HTTP/1.1\r\n\r\n"), Some(Answer::NotFound));
        assert_eq!(answer(b"GET /metricsx HTTP/1.1\r\n\r\n"), Some(Answer::NotFound));
    }

    #[test]
    fn renders_every_fixed_name() {
        let mut m = Metrics::new(Some(ActionKind::Http));
        let mut out = String::new();
        m.render(&mut out);
        assert!(out.contains("reinit_actions_total{action=\"http\",result=\"success\"} 0\n"), "{out}");
        assert!(!out.contains("action=\"restart\""));
        assert!(out.contains("reinit_last_action_successful 1\n"));
        assert!(out.contains("reinit_last_action_timestamp_seconds 0.000\n"));
        assert!(!out.contains("reinit_content_info"));
        m.app_started(Cause::First);
        m.app_started(Cause::Change);
        m.app_started(Cause::Change);
        m.change_seen();
        m.change_acted();
        m.validation_failed();
        m.action(ActionKind::Http, false);
        m.action(ActionKind::Restart, true);
        m.action(ActionKind::Http, false);
        m.content(&Snapshot::default());
        m.render(&mut out);
        for want in [
            "reinit_app_starts_total{cause=\"first\"} 1\n",
            "reinit_app_starts_total{cause=\"change\"} 2\n",
            "reinit_app_starts_total{cause=\"exit\"} 0\n",
            "reinit_app_up 1\n",
            "reinit_changes_seen_total 1\n",
            "reinit_changes_acted_total 1\n",
            "reinit_validation_failures_total 1\n",
            "reinit_actions_total{action=\"http\",result=\"failure\"} 2\n",
            "reinit_actions_total{action=\"restart\",result=\"success\"} 1\n",
            "reinit_last_action_successful 0\n",
            "reinit_content_info{hash=\"cbf29ce484222325\"} 1\n",
            "reinit_build_info{version=\"",
            "# TYPE reinit_app_starts_total counter\n",
            "# TYPE reinit_app_up gauge\n",
        ] {
            assert!(out.contains(want), "{want} not in\n{out}");
        }
        assert!(!out.contains("reinit_last_action_timestamp_seconds 0.000"));
        m.app_down();
        let len = out.len();
        m.render(&mut out);
        assert!(out.contains("reinit_app_up 0\n"));
        assert_eq!(out.len(), len, "rendering reuses and replaces the buffer");
    }
}
