//! Reaping: the `waitpid(-1, WNOHANG)` loop run after every wake-up.

use std::fmt;
use std::io;

#[derive(Debug)]
pub enum ReapError {
    Wait(io::Error),
}

impl fmt::Display for ReapError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReapError::Wait(e) => write!(f, "waitpid failed: {e}"),
        }
    }
}

/// A reaped child: its pid and raw wait status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reaped {
    pub pid: i32,
    pub status: i32,
}

/// What one reaping pass found besides the reaped children.
#[derive(Debug, Default)]
pub struct Reaping {
    /// Whether children (running, stopped) remain after the pass.
    pub children_left: bool,
    pub error: Option<ReapError>,
}

/// Call `wait` (one `waitpid(-1, WNOHANG)`: `Ok(None)` while children run, `Err(ECHILD)` when
/// there are none) until it reports nothing left to reap, collecting into `reaped` (cleared
/// first). Collects everything, so one coalesced SIGCHLD for many exits loses none of them.
pub fn reap_all(
    mut wait: impl FnMut() -> io::Result<Option<(i32, i32)>>,
    reaped: &mut Vec<Reaped>,
) -> Reaping {
    reaped.clear();
    loop {
        match wait() {
            Ok(Some((pid, status))) => reaped.push(Reaped { pid, status }),
            Ok(None) => return Reaping { children_left: true, error: None },
            Err(e) if e.raw_os_error() == Some(libc::ECHILD) => return Reaping::default(),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            // unknown: assume children are left
            Err(e) => return Reaping { children_left: true, error: Some(ReapError::Wait(e)) },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reaps_until_nothing_is_left() {
        let mut reaped = vec![Reaped { pid: 1, status: 1 }];
        let mut script = vec![Ok(Some((5, 0))), Ok(Some((6, 9))), Ok(None)].into_iter();
        let r = reap_all(|| script.next().unwrap(), &mut reaped);
        assert_eq!(reaped, [Reaped { pid: 5, status: 0 }, Reaped { pid: 6, status: 9 }]);
        assert!(r.error.is_none() && r.children_left);
        let mut script = vec![Ok(Some((5, 0))), Err(io::Error::from_raw_os_error(libc::ECHILD))].into_iter();
        let r = reap_all(|| script.next().unwrap(), &mut reaped);
        assert_eq!(reaped.len(), 1);
        assert!(r.error.is_none() && !r.children_left, "ECHILD: no child left at all");
    }

    #[test]
    fn an_error_keeps_what_was_reaped() {
        let mut script = vec![
            Ok(Some((5, 0))),
            Err(io::Error::from(io::ErrorKind::Interrupted)),
            Ok(Some((6, 0))),
            Err(io::Error::other("boom")),
        ]
        .into_iter();
        let mut reaped = Vec::new();
        let r = reap_all(|| script.next().unwrap(), &mut reaped);
        assert_eq!(reaped.len(), 2);
        assert!(r.error.is_some());
    }
}
