//! `--on-change http://HOST[:PORT]/PATH`: tell the app over HTTP, the way reload sidecars do
//! (`POST /-/reload`). The `Reloader` sends one `POST` with an empty body per attempt on a
//! non-blocking socket the event loop polls, keeps only the status line and the first line of
//! the body, and asks `retry.rs` when to try again.
//!
//! Only IP literals and `localhost` are accepted as HOST: a name lookup would block the loop
//! (or need a resolver thread), and the endpoint is local (the app, or a container of the same
//! pod) anyway.

#[cfg(test)]
use crate::retry::Step;
use crate::retry::{Outcome, Retry};
use log::{error, info, warn};
use nix::errno::Errno;
use nix::poll::PollFlags;
use nix::sys::socket::{
    self, AddressFamily, MsgFlags, SockFlag, SockType, SockaddrStorage, sockopt::SocketError,
};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::time::{Duration, Instant};

/// Where the reload request goes: parsed from `http://HOST[:PORT]/PATH`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub addr: SocketAddr,
    /// The `Host` header: the authority as given.
    pub host: String,
    /// Path and query, starting with `/`.
    pub path: String,
    /// The URL as given, for messages.
    pub url: String,
}

/// `text` without its `prefix`, compared ignoring ASCII case.
fn strip_prefix_ci<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
    let head = text.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix).then(|| &text[prefix.len()..])
}

/// Whether `text` is meant as a URL (`http://` or `https://`).
pub fn is_url(text: &str) -> bool {
    strip_prefix_ci(text, "http://").is_some() || strip_prefix_ci(text, "https://").is_some()
}

/// Parse `http://HOST[:PORT][/PATH]` with HOST an IPv4 literal, `[IPv6]` or `localhost`.
pub fn parse_url(text: &str) -> Result<Endpoint, String> {
    let url = text.trim();
    if strip_prefix_ci(url, "https://").is_some() {
        return Err(concat!(
            "plain http:// (only plain HTTP to a local endpoint is supported, not https://), ",
            "e.g. http://127.0.0.1:9090/-/reload"
        )
        .into());
    }
    let rest = strip_prefix_ci(url, "http://")
        .ok_or(concat!("an http:// URL such as ", "http://127.0.0.1:9090/-/reload"))?;
    let (authority, path) = match rest.find(['/', '?']) {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let path = if path.starts_with('?') { format!("/{path}") } else { path.to_string() };
    if path.contains('#') || path.bytes().any(|b| b <= b' ' || b == 0x7f) {
        return Err("a URL path without spaces, control characters or a #fragment".into());
    }
    let addr = parse_authority(authority)?;
    Ok(Endpoint { addr, host: authority.to_string(), path, url: url.to_string() })
}

/// `HOST[:PORT]` or `[V6][:PORT]`, port 80 by default.
fn parse_authority(authority: &str) -> Result<SocketAddr, String> {
    const HOST: &str = "an IP address, [IPv6 address] or localhost as the URL's host (names are not \
                        looked up: the endpoint is local)";
    if authority.contains('@') {
        return Err("a URL without user:password@".into());
    }
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let (ip, after) = v6.split_once(']').ok_or_else(|| HOST.to_string())?;
        let port = match after {
            "" => None,
            p => Some(p.strip_prefix(':').ok_or_else(|| HOST.to_string())?),
        };
        let ip: IpAddr = ip.parse().map_err(|_| HOST.to_string())?;
        (Some(ip).filter(IpAddr::is_ipv6), port)
    } else {
        let (host, port) = match authority.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        };
        let ip = if host.eq_ignore_ascii_case("localhost") {
            Some(IpAddr::V4(Ipv4Addr::LOCALHOST))
        } else {
            host.parse::<Ipv4Addr>().ok().map(IpAddr::V4)
        };
        (ip, port)
    };
    let ip = host.ok_or_else(|| HOST.to_string())?;
    let port = match port {
        None => 80,
        Some(p) => p.parse::<u16>().ok().filter(|p| *p != 0).ok_or("a port in 1..=65535")?,
    };
    Ok(SocketAddr::new(ip, port))
}

/// What a (possibly partial) response says so far.
#[derive(Debug, PartialEq, Eq)]
pub enum Response<'a> {
    /// Not enough yet to decide.
    Incomplete,
    /// Not an HTTP/1.x response.
    Malformed,
    /// The status code, the status line, and the first line of the body (empty when there is
    /// none, or not all of it was kept).
    Status { code: u16, line: &'a str, body: &'a str },
}

fn line_end(buf: &[u8]) -> Option<usize> {
    buf.iter().position(|&b| b == b'\n')
}

fn text(bytes: &[u8]) -> &str {
    let bytes = bytes.strip_suffix(b"\r").unwrap_or(bytes);
    std::str::from_utf8(bytes).unwrap_or("(not UTF-8)")
}

/// Read `buf` (what was received, capped), `done` when nothing more will come (end of stream,
/// or the cap was reached). A status other than 4xx is decided on the status line alone; for
/// a 4xx the first body line is waited for, for the log.
pub fn parse_response(buf: &[u8], done: bool) -> Response<'_> {
    let Some(end) = line_end(buf) else {
        return if done { Response::Malformed } else { Response::Incomplete };
    };
    let line = text(&buf[..end]);
    let mut parts = line.splitn(3, ' ');
    let (version, code) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let code = match code.parse::<u16>() {
        Ok(c) if version.starts_with("HTTP/1.") && code.len() == 3 && (100..600).contains(&c) => c,
        _ => return Response::Malformed,
    };
    if !(400..500).contains(&code) {
        return Response::Status { code, line, body: "" };
    }
    let rest = &buf[end + 1..];
    let headers_end = rest
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|i| i + 4)
        .or_else(|| rest.windows(2).position(|w| w == b"\n\n").map(|i| i + 2));
    let body = match headers_end {
        Some(h) => match line_end(&rest[h..]) {
            Some(e) => text(&rest[h..h + e]),
            None if done => text(&rest[h..]),
            None => return Response::Incomplete,
        },
        None if done => "",
        None => return Response::Incomplete,
    };
    Response::Status { code, line, body: body.trim() }
}

/// What is kept of a response: the status line and the first body line fit in this.
const KEEP: usize = 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Connecting,
    Writing(usize),
    Reading,
}

/// How one exchange ended: the status (2xx…5xx) with its line and first body line, or why
/// there was no answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    Status { code: u16, message: String },
    Failed(String),
}

/// One request and its response on a non-blocking socket the loop polls: connect, write,
/// read (keeping only the status line and the first body line). The caller owns the timeout.
pub struct Exchange {
    fd: Option<OwnedFd>,
    phase: Phase,
    pub started: Instant,
    request: Vec<u8>,
    response: [u8; KEEP],
    kept: usize,
    /// The connect failed at once: reported by the first `step`.
    failed: Option<String>,
}

/// The request: `METHOD PATH` with an empty body, one request per connection.
pub fn request(ep: &Endpoint, method: &str) -> Vec<u8> {
    let length = if method == "POST" { "Content-Length: 0\r\n" } else { "" };
    format!(
        "{method} {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: reinit/{}\r\n{length}Connection: close\r\n\r\n",
        ep.path,
        ep.host,
        env!("CARGO_PKG_VERSION")
    )
    .into_bytes()
}

impl Exchange {
    pub fn start(now: Instant, ep: &Endpoint, method: &str) -> Exchange {
        let (fd, phase, failed) = match connect(ep.addr) {
            Ok((fd, true)) => (Some(fd), Phase::Writing(0), None),
            Ok((fd, false)) => (Some(fd), Phase::Connecting, None),
            Err(e) => (None, Phase::Connecting, Some(format!("cannot connect: {}", e.desc()))),
        };
        let request = request(ep, method);
        Exchange { fd, phase, started: now, request, response: [0; KEEP], kept: 0, failed }
    }

    /// The socket, and what to poll it for.
    pub fn fd(&self) -> Option<(BorrowedFd<'_>, PollFlags)> {
        let want = if self.phase == Phase::Reading { PollFlags::POLLIN } else { PollFlags::POLLOUT };
        self.fd.as_ref().map(|fd| (fd.as_fd(), want))
    }

    /// Move on after poll reported `revents` (or a wake-up); `Some` once it is over.
    pub fn step(&mut self, revents: PollFlags) -> Option<Answer> {
        if let Some(why) = self.failed.take() {
            return Some(Answer::Failed(why));
        }
        let fd = self.fd.as_ref()?;
        if revents.is_empty() && self.phase != Phase::Writing(0) {
            return None;
        }
        if self.phase == Phase::Connecting {
            match socket::getsockopt(fd, SocketError) {
                Ok(0) => self.phase = Phase::Writing(0),
                Ok(errno) => {
                    return Some(Answer::Failed(format!(
                        "cannot connect: {}",
                        Errno::from_raw(errno).desc()
                    )));
                }
                Err(e) => return Some(Answer::Failed(format!("cannot connect: {e}"))),
            }
        }
        if let Phase::Writing(sent) = self.phase {
            match write_some(fd.as_raw_fd(), &self.request[sent..]) {
                Ok(n) if sent + n == self.request.len() => self.phase = Phase::Reading,
                Ok(n) => self.phase = Phase::Writing(sent + n),
                Err(e) => return Some(Answer::Failed(format!("cannot send: {e}"))),
            }
        }
        if self.phase == Phase::Reading { self.read() } else { None }
    }

    /// Read what is there; decide once the response says enough.
    fn read(&mut self) -> Option<Answer> {
        let fd = self.fd.as_ref()?.as_raw_fd();
        let mut eof = false;
        while self.kept < KEEP {
            match socket::recv(fd, &mut self.response[self.kept..], MsgFlags::empty()) {
                Ok(0) => {
                    eof = true;
                    break;
                }
                Ok(n) => self.kept += n,
                Err(Errno::EAGAIN) => break,
                Err(Errno::EINTR) => continue,
                Err(e) if self.kept == 0 => return Some(Answer::Failed(format!("no response: {e}"))),
                // a reset after the response: judge what arrived
                Err(_) => {
                    eof = true;
                    break;
                }
            }
        }
        let done = eof || self.kept == KEEP;
        Some(match parse_response(&self.response[..self.kept], done) {
            Response::Incomplete => return None,
            Response::Malformed if self.kept == 0 => {
                Answer::Failed("the connection was closed without a response".into())
            }
            Response::Malformed => Answer::Failed("the response is not HTTP/1.x".into()),
            Response::Status { code, line, body } => {
                let message = if body.is_empty() { line.to_string() } else { format!("{line}: {body}") };
                Answer::Status { code, message }
            }
        })
    }
}

/// `--on-change http://…`: owned by the event loop, which polls `fd()`, calls `on_ready` with
/// what poll returned, `tick` at every wake-up (and by `next_deadline`), and `content_changed`
/// when new content has been validated. Each returns the outcome of an attempt that ended.
pub struct Reloader {
    endpoint: Endpoint,
    retry: Retry,
    attempt: Option<Exchange>,
    /// What changed (for the log line of the attempt that succeeds), and since when.
    what: String,
    since: Option<Instant>,
}

impl Reloader {
    pub fn new(endpoint: Endpoint) -> Reloader {
        Reloader { endpoint, retry: Retry::new(), attempt: None, what: String::new(), since: None }
    }

    /// The socket to poll, and for what, while an attempt is in flight.
    pub fn fd(&self) -> Option<(BorrowedFd<'_>, PollFlags)> {
        self.attempt.as_ref().and_then(Exchange::fd)
    }

    pub fn next_deadline(&self) -> Option<Instant> {
        self.retry.next_deadline()
    }

    /// New content is live (validated): send for it. `what` describes the change for the log.
    pub fn content_changed(&mut self, now: Instant, what: String) -> Option<Outcome> {
        self.what = what;
        self.since.get_or_insert(now);
        self.retry.changed();
        self.tick(now)
    }

    /// Deadlines: abandon an attempt that took too long, start one that is due.
    pub fn tick(&mut self, now: Instant) -> Option<Outcome> {
        if self.retry.timed_out(now) {
            let secs = crate::retry::ATTEMPT_TIMEOUT.as_secs();
            return Some(self.end(now, Outcome::Retryable, format_args!("no response within {secs} s")));
        }
        if !self.retry.due(now) {
            return None;
        }
        self.retry.started(now);
        self.attempt = Some(Exchange::start(now, &self.endpoint, "POST"));
        self.on_ready(now, PollFlags::empty())
    }

    /// Poll reported `revents` on `fd()`.
    pub fn on_ready(&mut self, now: Instant, revents: PollFlags) -> Option<Outcome> {
        let (outcome, message) = match self.attempt.as_mut()?.step(revents)? {
            Answer::Failed(why) => (Outcome::Retryable, why),
            Answer::Status { code, message } => {
                let outcome = match code {
                    200..=299 => Outcome::Success,
                    500..=599 => Outcome::Retryable,
                    _ => Outcome::Final,
                };
                (outcome, message)
            }
        };
        Some(self.end(now, outcome, format_args!("{message}")))
    }

    /// Close the attempt, log how it ended, and tell the retry machine.
    fn end(&mut self, now: Instant, outcome: Outcome, message: std::fmt::Arguments<'_>) -> Outcome {
        let took = self.attempt.take().map_or(Duration::ZERO, |a| now.duration_since(a.started));
        let url = &self.endpoint.url;
        let ms = took.as_millis();
        let again = self.retry.finished(now, outcome);
        match (outcome, again) {
            (_, Some(Duration::ZERO)) => {
                info!("POST {url}: {message}; the content changed meanwhile: sending again")
            }
            (Outcome::Success, _) => {
                let since = self.since.take().map_or(0, |t| now.duration_since(t).as_millis());
                info!("{}: POST {url}: {message} in {ms} ms ({since} ms after the change)", self.what);
            }
            (Outcome::Retryable, Some(delay)) => warn!("POST {url}: {message}; retrying in {delay:?}"),
            (_, _) => {
                self.since = None;
                error!("POST {url}: {message}; not retried until the content changes again");
            }
        }
        outcome
    }

    #[cfg(test)]
    fn step(&self) -> Step {
        self.retry.step()
    }
}

/// A non-blocking, close-on-exec TCP socket with its connect started; `true` when the
/// connection is already established.
fn connect(addr: SocketAddr) -> nix::Result<(OwnedFd, bool)> {
    let family = if addr.is_ipv4() { AddressFamily::Inet } else { AddressFamily::Inet6 };
    let flags = SockFlag::SOCK_NONBLOCK | SockFlag::SOCK_CLOEXEC;
    let fd = socket::socket(family, SockType::Stream, flags, None)?;
    match socket::connect(fd.as_raw_fd(), &SockaddrStorage::from(addr)) {
        Ok(()) => Ok((fd, true)),
        Err(Errno::EINPROGRESS) => Ok((fd, false)),
        Err(e) => Err(e),
    }
}

/// Write what the socket takes now. MSG_NOSIGNAL: a peer that closed must not raise SIGPIPE,
/// which reinit would read from its signalfd and forward to the app.
fn write_some(fd: std::os::fd::RawFd, buf: &[u8]) -> nix::Result<usize> {
    let mut sent = 0;
    while sent < buf.len() {
        match socket::send(fd, &buf[sent..], MsgFlags::MSG_NOSIGNAL) {
            Ok(n) => sent += n,
            Err(Errno::EAGAIN) => break,
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(sent)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::net::TcpListener;

    #[test]
    fn urls() {
        let ep = parse_url("http://127.0.0.1:9090/-/reload").unwrap();
        assert_eq!(ep.addr, "127.0.0.1:9090".parse().unwrap());
        assert_eq!((ep.host.as_str(), ep.path.as_str()), ("127.0.0.1:9090", "/-/reload"));
        let ep = parse_url("HTTP://[::1]:9090/-/reload?x=1").unwrap();
        assert_eq!(ep.addr, "[::1]:9090".parse().unwrap());
        assert_eq!((ep.host.as_str(), ep.path.as_str()), ("[::1]:9090", "/-/reload?x=1"));
        let ep = parse_url("http://localhost").unwrap();
        assert_eq!(ep.addr, "127.0.0.1:80".parse().unwrap());
        assert_eq!(ep.path, "/");
        assert_eq!(parse_url("http://[::1]/r").unwrap().addr, "[::1]:80".parse().unwrap());
        assert_eq!(parse_url("http://10.0.0.1?a").unwrap().path, "/?a");
        let https = parse_url("https://127.0.0.1/-/reload").unwrap_err();
        assert!(https.contains("only plain HTTP to a local endpoint"), "{https}");
        for bad in [
            "ftp://x/",
            "http://",
            "http://example.com/",
            "http://127.0.0.1:0/",
            "http://127.0.0.1:99999/",
            "http://127.0.0.1:x/",
            "http://[::1/",
            "http://[127.0.0.1]/",
            "http://::1/",
            "http://u:p@127.0.0.1/",
            "http://127.0.0.1/a b",
            "http://127.0.0.1/a#frag",
            "127.0.0.1:9090",
        ] {
            assert!(parse_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_request_is_an_empty_post() {
        let ep = parse_url("http://[::1]:9090/-/reload").unwrap();
        let req = String::from_utf8(request(&ep, "POST")).unwrap();
        assert!(req.starts_with("POST /-/reload HTTP/1.1\r\nHost: [::1]:9090\r\n"), "{req}");
        assert!(req.contains("\r\nContent-Length: 0\r\n") && req.contains("\r\nConnection: close\r\n"));
        assert!(req.ends_with("\r\n\r\n"));
        let req = String::from_utf8(request(&ep, "GET")).unwrap();
        assert!(req.starts_with("GET /-/reload HTTP/1.1\r\n") && !req.contains("Content-Length"), "{req}");
    }

    #[test]
    fn responses() {
        use Response::*;
        assert_eq!(parse_response(b"", false), Incomplete);
        assert_eq!(parse_response(b"", true), Malformed);
        assert_eq!(parse_response(b"HTTP/1.1 200 O", false), Incomplete);
        let ok = parse_response(b"HTTP/1.1 200 OK\r\n", false);
        assert_eq!(ok, Status { code: 200, line: "HTTP/1.1 200 OK", body: "" });
        assert!(matches!(parse_response(b"HTTP/1.0 503 Busy\n", false), Status { code: 503, .. }));
        assert_eq!(parse_response(b"SSH-2.0-OpenSSH\r\n", false), Malformed);
        assert_eq!(parse_response(b"HTTP/1.1 2000 OK\r\n", false), Malformed);
        // a 4xx waits for the first body line
        let head = b"HTTP/1.1 403 Forbidden\r\nContent-Length: 40\r\n\r\n";
        assert_eq!(parse_response(head, false), Incomplete);
        let full = [&head[..], b"Lifecycle API is not enabled.\nmore\n"].concat();
        assert_eq!(
            parse_response(&full, false),
            Status { code: 403, line: "HTTP/1.1 403 Forbidden", body: "Lifecycle API is not enabled." }
        );
        let unterminated = [&head[..], b"no newline"].concat();
        assert_eq!(parse_response(&unterminated, false), Incomplete);
        assert!(matches!(parse_response(&unterminated, true), Status { body: "no newline", .. }));
        assert!(matches!(parse_response(b"HTTP/1.1 404 x\r\nA: b\r\n", true), Status { body: "", .. }));
    }

    /// One connection to a listener on loopback, answered with `reply`; returns what was asked.
    fn serve_once(listener: TcpListener, reply: &'static [u8]) -> std::thread::JoinHandle<Vec<u8>> {
        std::thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            let mut got = Vec::new();
            let mut buf = [0u8; 512];
            while !got.windows(4).any(|w| w == b"\r\n\r\n") {
                let n = s.read(&mut buf).unwrap();
                got.extend_from_slice(&buf[..n]);
            }
            s.write_all(reply).unwrap();
            got
        })
    }

    /// Drive `r` with poll until an attempt ends.
    fn drive(r: &mut Reloader, first: Option<Outcome>) -> Outcome {
        if let Some(o) = first {
            return o;
        }
        loop {
            let (fd, events) = r.fd().unwrap();
            let mut fds = [nix::poll::PollFd::new(fd, events)];
            nix::poll::poll(&mut fds, nix::poll::PollTimeout::from(5000u16)).unwrap();
            let revents = fds[0].revents().unwrap();
            if let Some(o) = r.on_ready(Instant::now(), revents) {
                return o;
            }
        }
    }

    #[test]
    fn posts_and_reads_the_status() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/-/reload", listener.local_addr().unwrap());
        let server = serve_once(listener, b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
        let mut r = Reloader::new(parse_url(&url).unwrap());
        let first = r.content_changed(Instant::now(), "x changed".into());
        assert_eq!(drive(&mut r, first), Outcome::Success);
        assert_eq!(r.step(), Step::Idle);
        assert!(r.fd().is_none());
        let got = String::from_utf8(server.join().unwrap()).unwrap();
        assert!(got.starts_with("POST /-/reload HTTP/1.1\r\n"), "{got}");
    }

    #[test]
    fn refused_and_server_errors_are_retried_client_errors_not() {
        // bound but not listening: refused, and the port stays ours meanwhile
        let flags = SockFlag::SOCK_CLOEXEC;
        let bound = socket::socket(AddressFamily::Inet, SockType::Stream, flags, None).unwrap();
        let any: SocketAddr = "127.0.0.1:0".parse().unwrap();
        socket::bind(bound.as_raw_fd(), &SockaddrStorage::from(any)).unwrap();
        let addr: SockaddrStorage = socket::getsockname(bound.as_raw_fd()).unwrap();
        let port = addr.as_sockaddr_in().unwrap().port();
        let mut r = Reloader::new(parse_url(&format!("http://127.0.0.1:{port}/")).unwrap());
        let first = r.content_changed(Instant::now(), "x".into());
        assert_eq!(drive(&mut r, first), Outcome::Retryable);
        assert!(matches!(r.step(), Step::Waiting { .. }));

        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/", listener.local_addr().unwrap());
        serve_once(listener, b"HTTP/1.1 503 Service Unavailable\r\n\r\n");
        let mut r = Reloader::new(parse_url(&url).unwrap());
        let first = r.content_changed(Instant::now(), "x".into());
        assert_eq!(drive(&mut r, first), Outcome::Retryable);

        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/", listener.local_addr().unwrap());
        serve_once(listener, b"HTTP/1.1 400 Bad Request\r\nContent-Length: 5\r\n\r\nnope\n");
        let mut r = Reloader::new(parse_url(&url).unwrap());
        let first = r.content_changed(Instant::now(), "x".into());
        assert_eq!(drive(&mut r, first), Outcome::Final);
        assert_eq!(r.step(), Step::Idle);
    }
}
