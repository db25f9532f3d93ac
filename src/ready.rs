//! `--ready`: learning that a started app is ready, without blocking the loop.
//!
//! - `notify`: every app start gets `NOTIFY_SOCKET` (systemd's sd_notify protocol) naming a unix
//!   datagram socket reinit owns in the abstract namespace (a name the kernel picks); a `READY=1` line counts only when
//!   the kernel's `SCM_CREDENTIALS` say it comes from the awaited app (or a process of its
//!   group). Other senders and other messages are ignored.
//! - `exec:CMD`: CMD runs every 100 ms as a child (reaped by the loop) until it exits 0.
//! - `http://…`: a GET every 100 ms on a non-blocking socket until a 2xx.
//! - `delay:D`: ready D after the start.
//!
//! The supervisor decides what readiness means (and the timeout); this only observes it.

use crate::config::Ready;
use crate::http::{self, Answer, Endpoint, Exchange};
use crate::sys;
use nix::poll::PollFlags;
use nix::sys::socket::{self, AddressFamily, ControlMessageOwned, MsgFlags, SockFlag, SockType, UnixAddr};
use std::io::{self, IoSliceMut};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Between two checks of `exec:` and `http://`.
const RETRY: Duration = Duration::from_millis(100);
/// How long one `http://` check waits for an answer: a silent endpoint is asked again.
const CHECK_TIMEOUT: Duration = Duration::from_secs(1);

/// The `NOTIFY_SOCKET` reinit gives its apps.
struct NotifySocket {
    fd: OwnedFd,
    /// `@reinit-notify-PID`: the value of `NOTIFY_SOCKET`.
    name: String,
}

impl NotifySocket {
    /// Bound by the kernel to a fresh abstract name (autobind): several reinits in one
    /// network namespace (the containers of a pod, each with its own PID 1) never collide.
    fn open() -> io::Result<NotifySocket> {
        use std::os::fd::AsRawFd;
        let flags = SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK;
        let fd = socket::socket(AddressFamily::Unix, SockType::Datagram, flags, None)?;
        socket::bind(fd.as_raw_fd(), &UnixAddr::new_unnamed())?;
        socket::setsockopt(&fd, socket::sockopt::PassCred, &true)?;
        let bound: UnixAddr = socket::getsockname(fd.as_raw_fd())?;
        let name = bound.as_abstract().ok_or_else(|| io::Error::other("no abstract name was assigned"))?;
        Ok(NotifySocket { fd, name: format!("@{}", String::from_utf8_lossy(name)) })
    }

    /// Drain the datagrams; the pids that said `READY=1`.
    fn ready_senders(&self) -> Vec<i32> {
        let mut out = Vec::new();
        let mut buf = [0u8; 4096];
        for _ in 0..64 {
            let mut iov = [IoSliceMut::new(&mut buf)];
            let mut cmsg = nix::cmsg_space!(socket::UnixCredentials);
            let fd = std::os::fd::AsRawFd::as_raw_fd(&self.fd);
            let Ok(msg) = socket::recvmsg::<()>(fd, &mut iov, Some(&mut cmsg), MsgFlags::empty()) else {
                break; // EAGAIN: nothing more
            };
            let pid = msg.cmsgs().ok().into_iter().flatten().find_map(|c| match c {
                ControlMessageOwned::ScmCredentials(creds) => Some(creds.pid()),
                _ => None,
            });
            let len = msg.bytes;
            if let Some(pid) = pid
                && says_ready(&buf[..len])
            {
                out.push(pid);
            }
        }
        out
    }
}

/// Whether an sd_notify datagram holds the line `READY=1`.
pub fn says_ready(datagram: &[u8]) -> bool {
    datagram.split(|b| *b == b'\n').any(|line| line == b"READY=1")
}

/// A check in progress for the awaited app.
enum Check {
    /// An `exec:` run, by pid.
    Exec(i32),
    Http(Box<Exchange>),
}

pub struct Readiness {
    how: Ready,
    notify: Option<NotifySocket>,
    endpoint: Option<Endpoint>,
    /// The app awaited, when it started, and when to check next.
    awaited: Option<(i32, Instant)>,
    next_check: Option<Instant>,
    check: Option<Check>,
    mask: u64,
    /// Set when the awaited app turned out ready; taken by `take_ready`.
    ready: Option<i32>,
}

impl Readiness {
    /// `mask`: the signal mask `exec:` checks get (the app's).
    pub fn new(how: Ready, mask: u64) -> io::Result<Readiness> {
        let notify = match how {
            Ready::Notify => Some(NotifySocket::open()?),
            _ => None,
        };
        let endpoint = match &how {
            Ready::Http(url) => Some(http::parse_url(url).map_err(io::Error::other)?),
            _ => None,
        };
        Ok(Readiness {
            how,
            notify,
            endpoint,
            awaited: None,
            next_check: None,
            check: None,
            mask,
            ready: None,
        })
    }

    /// `NOTIFY_SOCKET` for the app's environment.
    pub fn notify_socket(&self) -> Option<&str> {
        self.notify.as_ref().map(|n| n.name.as_str())
    }

    /// Await the readiness of `pid`, started at `now` (forgetting any other).
    pub fn await_app(&mut self, now: Instant, pid: i32) {
        self.stop();
        self.awaited = Some((pid, now));
        self.next_check = Some(now);
    }

    /// Nothing is awaited any more: end a check in progress.
    pub fn stop(&mut self) {
        if let Some(Check::Exec(pid)) = self.check.take() {
            let _ = sys::kill(-pid, libc::SIGKILL);
        }
        self.awaited = None;
        self.next_check = None;
        self.ready = None;
    }

    pub fn awaited(&self) -> Option<i32> {
        self.awaited.map(|(pid, _)| pid)
    }

    /// Descriptors to poll: the notify socket, an HTTP check's socket.
    pub fn fds(&self) -> Vec<(BorrowedFd<'_>, PollFlags)> {
        let mut out = Vec::new();
        if let Some(n) = &self.notify {
            out.push((n.fd.as_fd(), PollFlags::POLLIN));
        }
        if let Some(Check::Http(x)) = &self.check {
            out.extend(x.fd());
        }
        out
    }

    pub fn next_deadline(&self) -> Option<Instant> {
        match (&self.how, self.awaited, &self.check) {
            (Ready::Delay(d), Some((_, since)), _) => Some(crate::time::after(since, *d)),
            (_, Some(_), None) => self.next_check,
            (_, Some(_), Some(Check::Http(x))) => Some(crate::time::after(x.started, CHECK_TIMEOUT)),
            _ => None,
        }
    }

    /// After a wake-up: read the notify socket, move checks along. `revents` are poll's
    /// answers for `fds()`, in order.
    pub fn step(&mut self, now: Instant, revents: &[PollFlags]) {
        let mut revents = revents.iter().copied();
        if let Some(n) = &self.notify {
            let readable = revents.next().is_some_and(|r| !r.is_empty());
            let senders = if readable { n.ready_senders() } else { Vec::new() };
            if let Some((pid, _)) = self.awaited
                && senders.iter().any(|s| {
                    *s == pid
                        || nix::unistd::getpgid(Some(nix::unistd::Pid::from_raw(*s))).ok().map(|g| g.as_raw())
                            == Some(pid)
                })
            {
                self.ready = Some(pid);
            }
        }
        let Some((pid, since)) = self.awaited.filter(|_| self.ready.is_none()) else { return };
        match &self.how {
            Ready::Delay(d) if now >= crate::time::after(since, *d) => self.ready = Some(pid),
            Ready::Exec(argv) if self.check.is_none() && self.next_check.is_some_and(|t| now >= t) => {
                match self.spawn_exec(argv) {
                    Ok(check) => self.check = Some(Check::Exec(check)),
                    Err(e) => {
                        log::debug!("readiness check {}: {e}", argv.join(" "));
                        self.next_check = Some(crate::time::after(now, RETRY));
                    }
                }
            }
            Ready::Http(_) => self.step_http(now, pid, revents.next().unwrap_or(PollFlags::empty())),
            _ => {}
        }
    }

    fn step_http(&mut self, now: Instant, pid: i32, revents: PollFlags) {
        if let Some(Check::Http(x)) = self.check.as_mut() {
            let late = now >= crate::time::after(x.started, CHECK_TIMEOUT);
            match x.step(revents) {
                None if !late => return,
                None => {
                    self.check = None; // no answer in time: ask again
                    self.next_check = Some(crate::time::after(now, RETRY));
                    return;
                }
                Some(Answer::Status { code, .. }) if (200..300).contains(&code) => {
                    self.check = None;
                    self.ready = Some(pid);
                    return;
                }
                Some(_) => {
                    self.check = None;
                    self.next_check = Some(crate::time::after(now, RETRY));
                    return;
                }
            }
        }
        if self.next_check.is_some_and(|t| now >= t)
            && let Some(ep) = &self.endpoint
        {
            self.check = Some(Check::Http(Box::new(Exchange::start(now, ep, "GET"))));
            self.next_check = None;
        }
    }

    fn spawn_exec(&self, argv: &[String]) -> io::Result<i32> {
        let Some((program, args)) = argv.split_first() else {
            return Err(io::ErrorKind::InvalidInput.into());
        };
        let mut cmd = Command::new(program);
        cmd.args(args).process_group(0).stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null());
        let mask = self.mask;
        sys::before_exec(&mut cmd, move || sys::set_signal_mask(mask));
        Ok(cmd.spawn()?.id() as i32)
    }

    /// A child was reaped: whether it was an `exec:` check (then its status counts).
    pub fn reaped(&mut self, now: Instant, pid: i32, code: u8) -> bool {
        if !matches!(self.check, Some(Check::Exec(p)) if p == pid) {
            return false;
        }
        self.check = None;
        match (code, self.awaited) {
            (0, Some((app, _))) => {
                self.ready = Some(app);
                self.next_check = None;
            }
            _ => self.next_check = Some(crate::time::after(now, RETRY)),
        }
        true
    }

    /// The app found ready since the last call.
    pub fn take_ready(&mut self) -> Option<i32> {
        let ready = self.ready.take()?;
        (self.awaited() == Some(ready)).then_some(ready)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_is_a_whole_line() {
        assert!(says_ready(b"READY=1"));
        assert!(says_ready(b"STATUS=starting\nREADY=1\n"));
        assert!(!says_ready(b"READY=0"));
        assert!(!says_ready(b"NOTREADY=1"));
        assert!(!says_ready(b"STATUS=READY=1"));
    }

    #[test]
    fn a_notify_datagram_is_credited_to_its_sender() {
        let r = Readiness::new(Ready::Notify, 0).unwrap();
        let name = r.notify_socket().unwrap().strip_prefix('@').unwrap().to_string();
        let tx = std::os::unix::net::UnixDatagram::unbound().unwrap();
        let addr =
            <std::os::unix::net::SocketAddr as std::os::linux::net::SocketAddrExt>::from_abstract_name(
                name.as_bytes(),
            )
            .unwrap();
        tx.send_to_addr(b"STATUS=x\nREADY=1\n", &addr).unwrap();
        tx.send_to_addr(b"WATCHDOG=1", &addr).unwrap();
        let senders = r.notify.as_ref().unwrap().ready_senders();
        assert_eq!(senders, [std::process::id() as i32]);
    }
}
