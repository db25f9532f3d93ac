//! Reading `/proc`: the one place that parses `/proc/PID/stat`, lists pids, follows parent
//! links (children, descendants, a container's top process) and reads `/proc/PID/cgroup` and
//! `/proc/PID/exe`. Rooted at a path, so tests can use a fake tree.

use std::fs;
use std::io;
use std::path::PathBuf;

/// The fields of `/proc/PID/stat` reinit uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stat {
    pub pid: i32,
    pub comm: String,
    pub ppid: i32,
    /// `flags` (field 9): `PF_KTHREAD` marks kernel threads.
    pub flags: u64,
    /// `starttime` (field 22), in clock ticks since boot: with the pid, the process's identity.
    pub start_time: u64,
}

/// `flags` bit of a kernel thread.
pub const PF_KTHREAD: u64 = 0x0020_0000;

impl Stat {
    pub fn is_kernel_thread(&self) -> bool {
        self.flags & PF_KTHREAD != 0
    }
}

/// Parse `/proc/PID/stat`. The comm field may contain spaces and parentheses (`a) (b`), so it
/// runs from the first `(` to the **last** `)`.
pub fn parse_stat(text: &str) -> Option<Stat> {
    let open = text.find('(')?;
    let close = text.rfind(')')?;
    if close < open {
        return None;
    }
    let pid = text[..open].trim().parse().ok()?;
    // fields after comm, numbered from 3 (state)
    let mut rest = text[close + 1..].split_whitespace();
    let ppid = rest.nth(4 - 3)?.parse().ok()?;
    let flags = rest.nth(9 - 5)?.parse().ok()?;
    let start_time = rest.nth(22 - 10)?.parse().ok()?;
    Some(Stat { pid, comm: text[open + 1..close].to_string(), ppid, flags, start_time })
}

/// Every pid below `root`, given `(pid, ppid)` of every process (each pid once), `root`
/// itself excluded, sorted.
pub fn descendants(mut parents: Vec<(i32, i32)>, root: i32) -> Vec<i32> {
    parents.sort_unstable_by_key(|&(pid, ppid)| (ppid, pid));
    let mut found = Vec::new();
    let mut queue = vec![root];
    while let Some(parent) = queue.pop() {
        let first = parents.partition_point(|&(_, ppid)| ppid < parent);
        for &(pid, _) in parents[first..].iter().take_while(|&&(_, ppid)| ppid == parent) {
            // each pid has one parent, so only `root` can come round again (a corrupt tree)
            if pid != root {
                found.push(pid);
                queue.push(pid);
            }
        }
    }
    found.sort_unstable();
    found
}

/// A `/proc` tree: the real one ([`Procfs::system`]) or a fake one in tests.
pub struct Procfs {
    root: PathBuf,
}

impl Procfs {
    pub fn new(root: impl Into<PathBuf>) -> Procfs {
        Procfs { root: root.into() }
    }

    /// The machine's (or the PID namespace's) `/proc`.
    pub fn system() -> Procfs {
        Procfs::new("/proc")
    }

    fn file(&self, pid: i32, name: &str) -> PathBuf {
        self.root.join(pid.to_string()).join(name)
    }

    /// `/proc/PID/stat`; `None` if the process is gone or the file is malformed.
    pub fn stat(&self, pid: i32) -> Option<Stat> {
        parse_stat(&fs::read_to_string(self.file(pid, "stat")).ok()?)
    }

    /// Every pid in the tree (unsorted).
    pub fn pids(&self) -> io::Result<Vec<i32>> {
        Ok(fs::read_dir(&self.root)?
            .filter_map(|e| e.ok())
            .filter_map(|e| e.file_name().to_str().and_then(|n| n.parse::<i32>().ok()))
            .collect())
    }

    /// The stat of every process that could be read (processes exit during the scan).
    pub fn stats(&self) -> io::Result<Vec<Stat>> {
        Ok(self.pids()?.into_iter().filter_map(|pid| self.stat(pid)).collect())
    }

    /// `(pid, ppid)` of every process, in one pass.
    fn parents(&self) -> Vec<(i32, i32)> {
        self.stats().unwrap_or_default().into_iter().map(|s| (s.pid, s.ppid)).collect()
    }

    /// Every process below `pid` (children, their children, …), sorted, from one pass over
    /// `/proc`: also those that left its process group or session.
    pub fn descendants_of(&self, pid: i32) -> Vec<i32> {
        descendants(self.parents(), pid)
    }

    /// The top process of the container `pid` is in: walk the PPid chain up to the process
    /// whose parent is outside the PID namespace (PPid 0).
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

    /// The content of `/proc/PID/cgroup`: the same text for two processes means the same
    /// cgroups, so the same container. `None` if it cannot be read, or is empty (a kernel
    /// without cgroups, where it tells nothing apart).
    pub fn cgroup(&self, pid: i32) -> Option<String> {
        fs::read_to_string(self.file(pid, "cgroup")).ok().filter(|c| !c.trim().is_empty())
    }

    /// The basename of `/proc/PID/exe` (comm truncates names to 15 bytes), without the
    /// ` (deleted)` a replaced binary gets.
    pub fn exe_name(&self, pid: i32) -> Option<String> {
        let target = fs::read_link(self.file(pid, "exe")).ok()?;
        let name = target.file_name()?.to_string_lossy().into_owned();
        Some(name.strip_suffix(" (deleted)").map(String::from).unwrap_or(name))
    }
}

/// A fake `/proc` tree in a temporary directory, for tests here and in the modules using
/// [`Procfs`].
#[cfg(test)]
pub mod fake {
    use std::fs;
    use std::path::{Path, PathBuf};

    /// A `/proc/PID/stat` line.
    pub fn stat_line(pid: i32, comm: &str, ppid: i32, flags: u64, start: u64) -> String {
        // pid (comm) state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt
        // utime stime cutime cstime priority nice threads itrealvalue starttime ...
        format!("{pid} ({comm}) S {ppid} {pid} {pid} 0 -1 {flags} 0 0 0 0 0 0 0 0 20 0 1 0 {start} 100 200")
    }

    /// Removed on drop.
    pub struct FakeProc(PathBuf);

    /// What one fake process has.
    pub struct Entry<'a> {
        pub pid: i32,
        pub comm: &'a str,
        pub ppid: i32,
        pub flags: u64,
        pub start: u64,
        pub exe: Option<&'a str>,
        pub cgroup: Option<&'a str>,
    }

    /// A user process with default flags, started at tick 1000 + pid, no exe link, no cgroup.
    pub fn entry(pid: i32, comm: &str, ppid: i32) -> Entry<'_> {
        Entry { pid, comm, ppid, flags: 0x400100, start: 1000 + pid as u64, exe: None, cgroup: None }
    }

    impl FakeProc {
        pub fn new(tag: &str) -> FakeProc {
            static COUNTER: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
            let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let root = std::env::temp_dir().join(format!("reinit-proc-{tag}-{}-{n}", std::process::id()));
            let _ = fs::remove_dir_all(&root);
            fs::create_dir_all(&root).unwrap();
            FakeProc(root)
        }

        pub fn path(&self) -> &Path {
            &self.0
        }

        pub fn add(&self, e: Entry<'_>) {
            let dir = self.0.join(e.pid.to_string());
            fs::create_dir_all(&dir).unwrap();
            fs::write(dir.join("stat"), stat_line(e.pid, e.comm, e.ppid, e.flags, e.start)).unwrap();
            if let Some(exe) = e.exe {
                std::os::unix::fs::symlink(exe, dir.join("exe")).unwrap();
            }
            if let Some(cgroup) = e.cgroup {
                fs::write(dir.join("cgroup"), cgroup).unwrap();
            }
        }
    }

    impl Drop for FakeProc {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::fake::{FakeProc, entry, stat_line};
    use super::*;

    #[test]
    fn parses_stat_with_nasty_comm() {
        for comm in ["nginx", "a) (b", "x)", ") ", "sp ace", "((", "a) S 9 1 1", " ", ""] {
            let s = parse_stat(&stat_line(42, comm, 7, 0x400100, 12345)).unwrap();
            assert_eq!(s, Stat { pid: 42, comm: comm.into(), ppid: 7, flags: 0x400100, start_time: 12345 });
        }
        assert_eq!(parse_stat("42 (x) S"), None);
        assert_eq!(parse_stat("42 (x) S 7 42 42 0"), None, "too short for the start time");
        assert_eq!(parse_stat("garbage"), None);
        assert_eq!(parse_stat("1 (x)"), None);
        assert_eq!(parse_stat(") 1 (x"), None);
    }

    #[test]
    fn descendants_follow_every_generation() {
        let parents = vec![(2, 1), (3, 2), (4, 3), (5, 1), (6, 9), (7, 4), (1, 0)];
        assert_eq!(descendants(parents.clone(), 2), [3, 4, 7]);
        assert_eq!(descendants(parents.clone(), 1), [2, 3, 4, 5, 7]);
        assert!(descendants(parents, 7).is_empty());
        assert_eq!(descendants(vec![(2, 3), (3, 2)], 2), [3], "a corrupt tree ends");
    }

    #[test]
    fn walks_a_fake_tree() {
        let p = FakeProc::new("tree");
        p.add(entry(1, "init", 0));
        p.add(entry(10, "app", 1));
        p.add(entry(11, "worker", 10));
        p.add(entry(12, "daemon", 11)); // left the app's group: still a descendant
        p.add(entry(13, "other", 1));
        p.add(super::fake::Entry {
            cgroup: Some("0::/pod/app\n"),
            exe: Some("/usr/bin/app (deleted)"),
            ..entry(14, "app", 0)
        });
        std::fs::create_dir_all(p.path().join("self")).unwrap(); // not a pid
        let procfs = Procfs::new(p.path());
        let mut pids = procfs.pids().unwrap();
        pids.sort_unstable();
        assert_eq!(pids, [1, 10, 11, 12, 13, 14]);
        assert_eq!(procfs.descendants_of(10), [11, 12]);
        assert_eq!(procfs.descendants_of(1), [10, 11, 12, 13]);
        assert_eq!(procfs.top_ancestor(12), Some(1));
        assert_eq!(procfs.top_ancestor(14), Some(14));
        assert_eq!(procfs.top_ancestor(99), None);
        assert_eq!(procfs.cgroup(14).as_deref(), Some("0::/pod/app\n"));
        assert_eq!(procfs.cgroup(13), None);
        assert_eq!(procfs.exe_name(14).as_deref(), Some("app"));
        assert_eq!(procfs.exe_name(13), None);
        assert!(Procfs::new(p.path().join("absent")).pids().is_err());
        assert!(Procfs::new(p.path().join("absent")).descendants_of(1).is_empty());
    }

    #[test]
    fn finds_our_descendants_in_the_real_proc() {
        let mut child = std::process::Command::new("sleep").arg("5").spawn().unwrap();
        let me = std::process::id() as i32;
        let below = Procfs::system().descendants_of(me);
        let stat = Procfs::system().stat(child.id() as i32);
        child.kill().unwrap();
        child.wait().unwrap();
        assert!(below.contains(&(child.id() as i32)), "{below:?}");
        assert_eq!(stat.map(|s| (s.comm, s.ppid)), Some(("sleep".to_string(), me)));
        assert!(Procfs::system().cgroup(me).is_some_and(|c| !c.is_empty()));
    }
}
