//! Reaping: the `waitpid(-1, WNOHANG)` loop run after every wake-up, and the list of our live
//! children (orphans adopted as PID 1 or subreaper) read from `/proc`.

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

/// The parent pid in the text of `/proc/PID/stat`; the comm field may hold spaces and
/// parentheses, so split at the last `)`.
pub fn stat_ppid(stat: &str) -> Option<i32> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace();
    let _state = fields.next()?;
    fields.next()?.parse().ok()
}

/// Pids of every live (or zombie) descendant of `ancestor`, from one pass over `/proc`.
pub fn descendants_of(ancestor: i32) -> Vec<i32> {
    let Ok(dir) = std::fs::read_dir("/proc") else { return Vec::new() };
    let parents: Vec<(i32, i32)> = dir
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().to_str().and_then(|n| n.parse::<i32>().ok()))
        .filter_map(|pid| {
            let ppid =
                std::fs::read_to_string(format!("/proc/{pid}/stat")).ok().and_then(|s| stat_ppid(&s))?;
            Some((pid, ppid))
        })
        .collect();
    let mut found = vec![ancestor];
    let mut i = 0;
    while i < found.len() {
        let parent = found[i];
        found.extend(parents.iter().filter(|(_, pp)| *pp == parent).map(|(p, _)| *p));
        i += 1;
    }
    found.remove(0);
    found
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

    #[test]
    fn parses_ppid_with_nasty_comm() {
        assert_eq!(stat_ppid("42 (sleep) S 7 42 42 0"), Some(7));
        assert_eq!(stat_ppid("42 (a) (b) S 9 1 1"), Some(9));
        assert_eq!(stat_ppid("42 (a) S) R 11 1 1"), Some(11));
        assert_eq!(stat_ppid("42 ( ) Z 0 0 0"), Some(0));
        assert_eq!(stat_ppid("garbage"), None);
        assert_eq!(stat_ppid("1 (x)"), None);
    }

    #[test]
    fn finds_our_descendants() {
        let mut child = std::process::Command::new("sleep").arg("5").spawn().unwrap();
        let kids = descendants_of(std::process::id() as i32);
        child.kill().unwrap();
        child.wait().unwrap();
        assert!(kids.contains(&(child.id() as i32)), "{kids:?}");
    }
}
