//! Sibling containers of a pod with a shared PID namespace: the `/proc` scan that finds their
//! top processes (PPid 0, not PID 1, not our own container, no kernel threads), the optional
//! filter by name, and the identity (start time) that is re-checked before each signal so a
//! reused PID is never hit.

use std::fmt;
use std::fs;
use std::io;
use std::path::PathBuf;

#[derive(Debug)]
pub enum SiblingsError {
    /// `/proc` cannot be read (not mounted?).
    Proc(io::Error),
}

impl fmt::Display for SiblingsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SiblingsError::Proc(e) => write!(f, "cannot read /proc: {e}"),
        }
    }
}

/// The fields of `/proc/PID/stat` we use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stat {
    pub pid: i32,
    pub comm: String,
    pub ppid: i32,
    /// `flags` (field 9): PF_KTHREAD marks kernel threads.
    pub flags: u64,
    /// `starttime` (field 22), in clock ticks since boot: with the pid, the process's identity.
    pub start_time: u64,
}

const PF_KTHREAD: u64 = 0x0020_0000;

/// Parse `/proc/PID/stat`. The comm field may contain spaces and parentheses (`a) (b`), so it
/// runs from the first `(` to the **last** `)`.
pub fn parse_stat(text: &str) -> Option<Stat> {
    let open = text.find('(')?;
    let close = text.rfind(')')?;
    if close < open {
        return None;
    }
    let pid = text[..open].trim().parse().ok()?;
    let comm = text[open + 1..close].to_string();
    // fields after comm, numbered from 3 (state)
    let rest: Vec<&str> = text[close + 1..].split_whitespace().collect();
    let field = |n: usize| rest.get(n - 3).copied();
    Some(Stat {
        pid,
        comm,
        ppid: field(4)?.parse().ok()?,
        flags: field(9)?.parse().ok()?,
        start_time: field(22)?.parse().ok()?,
    })
}

/// A sibling container's top process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sibling {
    pub pid: i32,
    pub start_time: u64,
    /// comm, for log lines.
    pub name: String,
}

/// Reads a `/proc` tree (the real one, or a fake one in tests).
pub struct Procfs {
    root: PathBuf,
}

impl Procfs {
    pub fn new(root: impl Into<PathBuf>) -> Procfs {
        Procfs { root: root.into() }
    }

    pub fn stat(&self, pid: i32) -> Option<Stat> {
        parse_stat(&fs::read_to_string(self.root.join(pid.to_string()).join("stat")).ok()?)
    }

    fn exe_name(&self, pid: i32) -> Option<String> {
        let target = fs::read_link(self.root.join(pid.to_string()).join("exe")).ok()?;
        let name = target.file_name()?.to_string_lossy().into_owned();
        // a replaced binary reads "name (deleted)"
        Some(name.strip_suffix(" (deleted)").map(String::from).unwrap_or(name))
    }

    /// The top process of the container `pid` is in: walk the PPid chain up to the process
    /// whose parent is outside the namespace (PPid 0).
    pub fn top_ancestor(&self, pid: i32) -> Option<i32> {
        let mut cur = pid;
        for _ in 0..4096 {
            let stat = self.stat(cur)?;
            if stat.ppid == 0 {
                return Some(cur);
            }
            cur = stat.ppid;
        }
        None
    }

    fn pids(&self) -> Result<Vec<i32>, SiblingsError> {
        let dir = fs::read_dir(&self.root).map_err(SiblingsError::Proc)?;
        Ok(dir
            .filter_map(|e| e.ok())
            .filter_map(|e| e.file_name().to_str().and_then(|n| n.parse::<i32>().ok()))
            .collect())
    }

    /// Siblings of the container holding `me`, optionally only those whose comm or exe basename
    /// is one of `names`. Sorted by pid.
    pub fn siblings(&self, me: i32, names: &[String]) -> Result<Vec<Sibling>, SiblingsError> {
        let own = self.top_ancestor(me);
        let mut out: Vec<Sibling> = self
            .pids()?
            .into_iter()
            .filter_map(|pid| self.stat(pid))
            .filter(|s| s.ppid == 0 && s.pid != 1 && Some(s.pid) != own && s.flags & PF_KTHREAD == 0)
            .filter(|s| {
                names.is_empty()
                    || names.contains(&s.comm)
                    || self.exe_name(s.pid).is_some_and(|exe| names.contains(&exe))
            })
            .map(|s| Sibling { pid: s.pid, start_time: s.start_time, name: s.comm })
            .collect();
        out.sort_by_key(|s| s.pid);
        Ok(out)
    }

    /// Whether `pid` is still the process we found (same start time), so a signal through a
    /// pidfd opened on it reaches the right process.
    pub fn is_same(&self, sibling: &Sibling) -> bool {
        self.stat(sibling.pid).is_some_and(|s| s.start_time == sibling.start_time)
    }
}

/// Whether reinit's own container is PID 1 of its namespace: then no sibling can be seen.
pub fn alone_in_namespace(top: Option<i32>) -> bool {
    top == Some(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stat_line(pid: i32, comm: &str, ppid: i32, flags: u64, start: u64) -> String {
        // pid (comm) state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt
        // utime stime cutime cstime priority nice threads itrealvalue starttime ...
        format!("{pid} ({comm}) S {ppid} {pid} {pid} 0 -1 {flags} 0 0 0 0 0 0 0 0 20 0 1 0 {start} 100 200")
    }

    #[test]
    fn parses_stat_with_nasty_comm() {
        for comm in ["nginx", "a) (b", "x)", ") ", "sp ace", "(("] {
            let s = parse_stat(&stat_line(42, comm, 7, 0x400100, 12345)).unwrap();
            assert_eq!(s, Stat { pid: 42, comm: comm.into(), ppid: 7, flags: 0x400100, start_time: 12345 });
        }
        assert_eq!(parse_stat("42 (x) S"), None);
        assert_eq!(parse_stat("garbage"), None);
    }

    struct FakeProc(PathBuf);

    impl FakeProc {
        fn new(tag: &str) -> FakeProc {
            let root = std::env::temp_dir().join(format!("reinit-proc-{tag}-{}", std::process::id()));
            let _ = fs::remove_dir_all(&root);
            fs::create_dir_all(&root).unwrap();
            FakeProc(root)
        }
        fn add(&self, pid: i32, comm: &str, ppid: i32, flags: u64, exe: Option<&str>) {
            let dir = self.0.join(pid.to_string());
            fs::create_dir_all(&dir).unwrap();
            fs::write(dir.join("stat"), stat_line(pid, comm, ppid, flags, 1000 + pid as u64)).unwrap();
            if let Some(exe) = exe {
                std::os::unix::fs::symlink(exe, dir.join("exe")).unwrap();
            }
        }
    }

    impl Drop for FakeProc {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    fn pod() -> FakeProc {
        let p = FakeProc::new("pod");
        p.add(1, "pause", 0, 0x400100, Some("/pause"));
        p.add(7, "nginx", 0, 0x400100, Some("/usr/sbin/nginx"));
        p.add(8, "nginx", 7, 0x400040, Some("/usr/sbin/nginx")); // a worker: not a top process
        p.add(12, "sh", 0, 0x400100, Some("/bin/busybox"));
        p.add(20, "reinit", 0, 0x400100, Some("/reinit")); // our container's top
        p.add(21, "validator", 20, 0x400100, None);
        p.add(30, "kthreadish", 0, PF_KTHREAD, None);
        p.add(40, "srv", 0, 0x400100, Some("/app/prometheus (deleted)"));
        p
    }

    #[test]
    fn selects_top_processes_of_other_containers() {
        let p = pod();
        let procfs = Procfs::new(&p.0);
        assert_eq!(procfs.top_ancestor(21), Some(20));
        let all: Vec<i32> = procfs.siblings(21, &[]).unwrap().iter().map(|s| s.pid).collect();
        assert_eq!(all, [7, 12, 40], "not PID 1, not our container, not a worker, not a kernel thread");
        let named: Vec<i32> = procfs.siblings(20, &["nginx".into()]).unwrap().iter().map(|s| s.pid).collect();
        assert_eq!(named, [7]);
        let by_exe: Vec<i32> = procfs
            .siblings(20, &["busybox".into(), "prometheus".into()])
            .unwrap()
            .iter()
            .map(|s| s.pid)
            .collect();
        assert_eq!(by_exe, [12, 40]);
        assert!(procfs.siblings(20, &["nothing".into()]).unwrap().is_empty());
    }

    #[test]
    fn identity_catches_a_reused_pid() {
        let p = pod();
        let procfs = Procfs::new(&p.0);
        let nginx = procfs.siblings(20, &["nginx".into()]).unwrap().remove(0);
        assert!(procfs.is_same(&nginx));
        fs::write(p.0.join("7/stat"), stat_line(7, "stranger", 0, 0, 99999)).unwrap();
        assert!(!procfs.is_same(&nginx));
        fs::remove_dir_all(p.0.join("7")).unwrap();
        assert!(!procfs.is_same(&nginx));
    }

    #[test]
    fn a_container_that_is_pid_1_has_no_siblings() {
        let p = FakeProc::new("alone");
        p.add(1, "reinit", 0, 0x400100, None);
        p.add(5, "app", 1, 0x400100, None);
        let procfs = Procfs::new(&p.0);
        assert!(alone_in_namespace(procfs.top_ancestor(5)));
        assert!(procfs.siblings(5, &[]).unwrap().is_empty());
    }
}
