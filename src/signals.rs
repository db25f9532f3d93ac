//! Signals: the `Signal` type (parsing, names) and receiving them: every signal is blocked and
//! read from one signalfd in the poll loop. Keeps the mask reinit inherited, which the app gets
//! back (minus SIGCHLD) before exec.

use crate::sys;
use std::fmt;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

/// A signal number in 1..=64, real-time signals included (nix's `Signal` has none of those).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Signal(i32);

impl Signal {
    pub const HUP: Signal = Signal(libc::SIGHUP);
    pub const INT: Signal = Signal(libc::SIGINT);
    pub const QUIT: Signal = Signal(libc::SIGQUIT);
    pub const ILL: Signal = Signal(libc::SIGILL);
    pub const TRAP: Signal = Signal(libc::SIGTRAP);
    pub const ABRT: Signal = Signal(libc::SIGABRT);
    pub const BUS: Signal = Signal(libc::SIGBUS);
    pub const FPE: Signal = Signal(libc::SIGFPE);
    pub const KILL: Signal = Signal(libc::SIGKILL);
    pub const USR1: Signal = Signal(libc::SIGUSR1);
    pub const SEGV: Signal = Signal(libc::SIGSEGV);
    pub const USR2: Signal = Signal(libc::SIGUSR2);
    pub const PIPE: Signal = Signal(libc::SIGPIPE);
    pub const ALRM: Signal = Signal(libc::SIGALRM);
    pub const TERM: Signal = Signal(libc::SIGTERM);
    pub const STKFLT: Signal = Signal(libc::SIGSTKFLT);
    pub const CHLD: Signal = Signal(libc::SIGCHLD);
    pub const CONT: Signal = Signal(libc::SIGCONT);
    pub const STOP: Signal = Signal(libc::SIGSTOP);
    pub const TSTP: Signal = Signal(libc::SIGTSTP);
    pub const TTIN: Signal = Signal(libc::SIGTTIN);
    pub const TTOU: Signal = Signal(libc::SIGTTOU);
    pub const URG: Signal = Signal(libc::SIGURG);
    pub const XCPU: Signal = Signal(libc::SIGXCPU);
    pub const XFSZ: Signal = Signal(libc::SIGXFSZ);
    pub const VTALRM: Signal = Signal(libc::SIGVTALRM);
    pub const PROF: Signal = Signal(libc::SIGPROF);
    pub const WINCH: Signal = Signal(libc::SIGWINCH);
    pub const IO: Signal = Signal(libc::SIGIO);
    pub const PWR: Signal = Signal(libc::SIGPWR);
    pub const SYS: Signal = Signal(libc::SIGSYS);

    /// The number, for syscalls.
    pub const fn raw(self) -> i32 {
        self.0
    }

    /// Parse `TERM`, `SIGTERM`, `15`, `RTMIN+3`, `SIGRTMAX-1` (case-insensitive).
    pub fn parse(s: &str) -> Option<Signal> {
        let up = s.trim().to_ascii_uppercase();
        let name = up.strip_prefix("SIG").unwrap_or(&up);
        if let Ok(n) = name.parse::<i32>() {
            return (1..=RTMAX).contains(&n).then_some(Signal(n));
        }
        if let Some(rest) = name.strip_prefix("RTMIN") {
            return realtime(RTMIN, rest, '+');
        }
        if let Some(rest) = name.strip_prefix("RTMAX") {
            return realtime(RTMAX, rest, '-');
        }
        SIGNAL_NAMES.iter().find(|(n, _)| *n == name).map(|(_, sig)| *sig)
    }
}

/// `RTMIN`, `RTMIN+N` (`sign` '+') or `RTMAX`, `RTMAX-N` (`sign` '-'), `rest` being what follows
/// the name; the result must be a real-time signal.
fn realtime(origin: i32, rest: &str, sign: char) -> Option<Signal> {
    let offset: i32 = match rest {
        "" => 0,
        _ => rest.strip_prefix(sign)?.parse().ok()?,
    };
    let n = if sign == '+' { origin + offset } else { origin - offset };
    (RTMIN..=RTMAX).contains(&n).then_some(Signal(n))
}

/// Signal names as `kill -l` prints them (without `SIG`), with their numbers on this platform;
/// the first name of a number is the one displayed.
pub const SIGNAL_NAMES: &[(&str, Signal)] = &[
    ("HUP", Signal::HUP),
    ("INT", Signal::INT),
    ("QUIT", Signal::QUIT),
    ("ILL", Signal::ILL),
    ("TRAP", Signal::TRAP),
    ("ABRT", Signal::ABRT),
    ("IOT", Signal::ABRT),
    ("BUS", Signal::BUS),
    ("FPE", Signal::FPE),
    ("KILL", Signal::KILL),
    ("USR1", Signal::USR1),
    ("SEGV", Signal::SEGV),
    ("USR2", Signal::USR2),
    ("PIPE", Signal::PIPE),
    ("ALRM", Signal::ALRM),
    ("TERM", Signal::TERM),
    ("STKFLT", Signal::STKFLT),
    ("CHLD", Signal::CHLD),
    ("CLD", Signal::CHLD),
    ("CONT", Signal::CONT),
    ("STOP", Signal::STOP),
    ("TSTP", Signal::TSTP),
    ("TTIN", Signal::TTIN),
    ("TTOU", Signal::TTOU),
    ("URG", Signal::URG),
    ("XCPU", Signal::XCPU),
    ("XFSZ", Signal::XFSZ),
    ("VTALRM", Signal::VTALRM),
    ("PROF", Signal::PROF),
    ("WINCH", Signal::WINCH),
    ("IO", Signal::IO),
    ("POLL", Signal::IO),
    ("PWR", Signal::PWR),
    ("SYS", Signal::SYS),
];

/// `RTMIN` as `kill -l` and glibc programs see it (glibc reserves 32 and 33), whatever the libc
/// reinit is built with.
pub const RTMIN: i32 = 34;
pub const RTMAX: i32 = 64;

/// The name without `SIG` (`TERM`, `RTMIN+6`), or the number when it has none.
impl fmt::Display for Signal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some((name, _)) = SIGNAL_NAMES.iter().find(|(_, sig)| sig == self) {
            return f.write_str(name);
        }
        match self.0 {
            RTMIN => f.write_str("RTMIN"),
            n if (RTMIN..=RTMAX).contains(&n) => write!(f, "RTMIN+{}", n - RTMIN),
            n => write!(f, "{n}"),
        }
    }
}

#[derive(Debug)]
pub enum SignalsError {
    Read(io::Error),
}

impl fmt::Display for SignalsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SignalsError::Read(e) => write!(f, "reading the signalfd failed: {e}"),
        }
    }
}

/// One received signal, from a `signalfd_siginfo` record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Received {
    pub signo: Signal,
    /// `si_code`: <= 0 when sent by a process (kill, sigqueue, tgkill), > 0 from the kernel.
    pub code: i32,
    /// The sender's pid, when a process sent it.
    pub pid: u32,
}

/// Size of `struct signalfd_siginfo` (linux/signalfd.h).
const SIGINFO_SIZE: usize = 128;

/// Decode the records of one read from a signalfd (its first `n` bytes) into `out`.
fn parse(buf: &[u8], n: usize, out: &mut Vec<Received>) {
    for r in buf.chunks_exact(SIGINFO_SIZE).take(n / SIGINFO_SIZE) {
        out.push(Received {
            signo: Signal(u32::from_ne_bytes(word(r, 0)) as i32),
            code: i32::from_ne_bytes(word(r, 8)),
            pid: u32::from_ne_bytes(word(r, 12)),
        });
    }
}

/// The 4 bytes at `at` of a record.
#[inline(always)]
fn word(r: &[u8], at: usize) -> [u8; 4] {
    [r[at], r[at + 1], r[at + 2], r[at + 3]]
}

/// The signalfd and the mask reinit inherited.
pub struct Signals {
    fd: OwnedFd,
    inherited_mask: u64,
    /// Read buffer, kept so no wake-up zeroes 4 KiB again.
    buf: Vec<u8>,
}

impl Signals {
    /// `fd`: a (blocking) signalfd for every signal, all of them blocked;
    /// `inherited_mask`: the mask before blocking (bit n-1 = signal n).
    pub fn new(fd: OwnedFd, inherited_mask: u64) -> Signals {
        Signals { fd, inherited_mask, buf: vec![0; SIGINFO_SIZE * 32] }
    }

    /// The mask the app gets: what reinit inherited, except that SIGCHLD is never blocked.
    pub fn app_mask(&self) -> u64 {
        self.inherited_mask & !(1u64 << (Signal::CHLD.raw() - 1))
    }

    /// Read pending signals into `out` (cleared first). The signalfd is blocking: call this when
    /// poll said it is readable, or to sleep until a signal comes. One read takes up to 32
    /// signals; a full read is followed by non-blocking checks for more.
    pub fn read(&mut self, out: &mut Vec<Received>) -> Result<(), SignalsError> {
        out.clear();
        loop {
            match sys::read(self.fd.as_fd(), &mut self.buf) {
                Ok(n) => {
                    parse(&self.buf, n, out);
                    if n < self.buf.len() || !self.pending() {
                        return Ok(());
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(SignalsError::Read(e)),
            }
        }
    }

    /// Whether a signal is waiting, without blocking.
    fn pending(&self) -> bool {
        let mut fds = [nix::poll::PollFd::new(self.fd.as_fd(), nix::poll::PollFlags::POLLIN)];
        sys::poll(&mut fds, Some(std::time::Duration::ZERO)).is_ok_and(|n| n > 0)
    }
}

impl AsFd for Signals {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(signo: u32, code: i32, pid: u32) -> Vec<u8> {
        let mut r = vec![0u8; SIGINFO_SIZE];
        r[0..4].copy_from_slice(&signo.to_ne_bytes());
        r[8..12].copy_from_slice(&code.to_ne_bytes());
        r[12..16].copy_from_slice(&pid.to_ne_bytes());
        r
    }

    #[test]
    fn parses_records() {
        let mut buf = record(15, 0, 42);
        buf.extend(record(40, -1, 7));
        buf.extend([1, 2, 3]); // a torn tail is ignored
        let mut out = Vec::new();
        parse(&buf, buf.len(), &mut out);
        assert_eq!(
            out,
            [
                Received { signo: Signal::TERM, code: 0, pid: 42 },
                Received { signo: Signal(40), code: -1, pid: 7 }
            ]
        );
    }

    #[test]
    fn signals_parse_every_spelling() {
        let parse = |s: &str| Signal::parse(s).map(Signal::raw);
        assert_eq!(parse("TERM"), Some(15));
        assert_eq!(parse("sigterm"), Some(15));
        assert_eq!(parse("Hup"), Some(1));
        assert_eq!(parse("15"), Some(15));
        assert_eq!(parse("64"), Some(64));
        assert_eq!(parse("RTMIN"), Some(34));
        assert_eq!(parse("rtmin+3"), Some(37));
        assert_eq!(parse("SIGRTMAX-1"), Some(63));
        assert_eq!(parse("RTMAX"), Some(64));
        assert_eq!(parse("RTMIN+30"), Some(64));
        for bad in ["", "0", "65", "-1", "FOO", "RTMIN+31", "RTMIN-1", "RTMAX+1", "RTMAX-31", "RTMIN+", "SIG"]
        {
            assert_eq!(parse(bad), None, "{bad}");
        }
        for bad in ["1.5", "RTMIN+-1", "RTMAX--1", "RTMIN3", "SIGSIGTERM", "TERM2"] {
            assert_eq!(parse(bad), None, "{bad}");
        }
        for (name, sig) in SIGNAL_NAMES {
            assert_eq!(Signal::parse(name), Some(*sig));
        }
    }

    #[test]
    fn signals_display_their_names() {
        assert_eq!(Signal::TERM.to_string(), "TERM");
        assert_eq!(Signal::ABRT.to_string(), "ABRT");
        assert_eq!(Signal::CHLD.to_string(), "CHLD");
        assert_eq!(Signal(40).to_string(), "RTMIN+6");
        assert_eq!(Signal(34).to_string(), "RTMIN");
        assert_eq!(Signal(33).to_string(), "33");
        assert_eq!(Signal(99).to_string(), "99");
        // every displayed name parses back to the same signal
        for n in 1..=RTMAX {
            let sig = Signal(n);
            assert_eq!(Signal::parse(&sig.to_string()), Some(sig), "{n}");
        }
    }
}
