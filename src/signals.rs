//! Receiving signals: every signal is blocked and read from one signalfd in the poll loop.
//! Keeps the mask reinit inherited, which the app gets back (minus SIGCHLD) before exec.

use std::fmt;
use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

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
    pub signo: i32,
    /// `si_code`: <= 0 when sent by a process (kill, sigqueue, tgkill), > 0 from the kernel.
    pub code: i32,
    /// The sender's pid, when a process sent it.
    pub pid: u32,
}

/// Size of `struct signalfd_siginfo` (linux/signalfd.h).
const SIGINFO_SIZE: usize = 128;

/// Decode the records of one read from a signalfd.
pub fn parse(buf: &[u8]) -> impl Iterator<Item = Received> + '_ {
    buf.chunks_exact(SIGINFO_SIZE).map(|r| {
        let word = |at: usize| [r[at], r[at + 1], r[at + 2], r[at + 3]];
        Received {
            signo: u32::from_ne_bytes(word(0)) as i32,
            code: i32::from_ne_bytes(word(8)),
            pid: u32::from_ne_bytes(word(12)),
        }
    })
}

/// The signalfd and the mask reinit inherited.
pub struct Signals {
    fd: File,
    inherited_mask: u64,
    /// Read buffer, kept so no wake-up zeroes 4 KiB again.
    buf: Vec<u8>,
}

impl Signals {
    /// `fd`: a (blocking) signalfd for every signal, all of them blocked;
    /// `inherited_mask`: the mask before blocking (bit n-1 = signal n).
    pub fn new(fd: OwnedFd, inherited_mask: u64) -> Signals {
        Signals { fd: File::from(fd), inherited_mask, buf: vec![0; SIGINFO_SIZE * 32] }
    }

    /// The mask the app gets: what reinit inherited, except that SIGCHLD is never blocked.
    pub fn app_mask(&self) -> u64 {
        self.inherited_mask & !(1u64 << (libc::SIGCHLD - 1))
    }

    /// Read pending signals into `out` (cleared first). The signalfd is blocking: call this when
    /// poll said it is readable, or to sleep until a signal comes. One read takes up to 32
    /// signals; a full read is followed by non-blocking checks for more.
    pub fn read(&mut self, out: &mut Vec<Received>) -> Result<(), SignalsError> {
        out.clear();
        loop {
            match self.fd.read(&mut self.buf) {
                Ok(n) => {
                    out.extend(parse(&self.buf[..n]));
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
        nix::poll::poll(&mut fds, nix::poll::PollTimeout::ZERO).is_ok_and(|n| n > 0)
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
        assert_eq!(
            parse(&buf).collect::<Vec<_>>(),
            [Received { signo: 15, code: 0, pid: 42 }, Received { signo: 40, code: -1, pid: 7 }]
        );
    }
}
