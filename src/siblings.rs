//! Sibling containers of a pod with a shared PID namespace: which processes `siblings:SIG`
//! signals. Of the processes with PPid 0 (not PID 1, not kernel threads), each *other*
//! container's own top process — the oldest of its cgroup — and nothing else: a process exec'd
//! into a container later (`kubectl exec`) also has PPid 0, and a SIGHUP kills an interactive
//! shell. Then the optional filter by name, and the identity (start time) re-checked before
//! each signal, sent through a pidfd, so a reused PID is never hit. `/proc` itself is read by
//! [`crate::procfs`].

use crate::procfs::{Procfs, Stat};
use crate::signals::Signal;
use crate::sys;
use crate::time::Human;
use log::{debug, error, info, warn};
use std::fmt;
use std::io;
use std::os::fd::AsFd;
use std::time::Instant;

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

/// A sibling container's top process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sibling {
    pub pid: i32,
    pub start_time: u64,
    /// comm, for log lines.
    pub name: String,
}

/// What a scan for siblings found.
#[derive(Debug, PartialEq, Eq)]
pub enum Scan {
    /// reinit's container is PID 1 of its PID namespace: nothing else there is a container,
    /// whatever has PPid 0 (a process entered from outside, like `kubectl exec`).
    Alone,
    /// The other containers' top processes that pass the name filter, sorted by pid.
    Found(Vec<Sibling>),
}

/// Whether reinit's own container is PID 1 of its namespace: then no sibling can be seen.
pub fn alone_in_namespace(top: Option<i32>) -> bool {
    top == Some(1)
}

/// reinit's own container: its top process (the end of reinit's PPid chain) and its cgroup.
#[derive(Debug, Default)]
pub struct Own {
    pub top: Option<i32>,
    pub cgroup: Option<String>,
}

/// A process with its `/proc/PID/cgroup` (`None`: unreadable).
#[derive(Debug, Clone)]
pub struct Candidate {
    pub stat: Stat,
    pub cgroup: Option<String>,
}

/// Which container a candidate is in: its cgroup, or, when that cannot be read, one of its
/// own (the process alone).
#[derive(Debug, PartialEq, Eq)]
enum Container {
    Cgroup(String),
    Process(i32),
}

/// The top process of every container but reinit's own, sorted by pid: of the PPid-0
/// processes (not PID 1, not kernel threads) outside reinit's PPid chain and cgroup, the
/// oldest of each cgroup (smallest start time, ties by pid).
pub fn container_tops(own: &Own, candidates: Vec<Candidate>) -> Vec<Stat> {
    // a handful of containers: a list searched linearly is smaller code than a map or a sort
    let mut tops: Vec<(Container, Stat)> = Vec::new();
    for Candidate { stat, cgroup } in candidates {
        let excluded = stat.ppid != 0
            || stat.pid == 1
            || stat.is_kernel_thread()
            || Some(stat.pid) == own.top
            || (cgroup.is_some() && cgroup == own.cgroup);
        if excluded {
            continue;
        }
        let container = match cgroup {
            Some(cgroup) => Container::Cgroup(cgroup),
            None => Container::Process(stat.pid),
        };
        match tops.iter_mut().find(|(c, _)| *c == container) {
            Some((_, top)) if (stat.start_time, stat.pid) < (top.start_time, top.pid) => *top = stat,
            Some(_) => {}
            None => tops.push((container, stat)),
        }
    }
    let mut tops: Vec<Stat> = tops.into_iter().map(|(_, stat)| stat).collect();
    tops.sort_by_key(|s| s.pid);
    tops
}

/// The siblings of the container holding `me`, optionally only those whose comm or exe
/// basename is one of `names` (applied to each container's top process, never to another
/// process of it).
pub fn find(procfs: &Procfs, me: i32, names: &[String]) -> Result<Scan, SiblingsError> {
    let top = procfs.top_ancestor(me);
    if alone_in_namespace(top) {
        return Ok(Scan::Alone);
    }
    let own = Own { top, cgroup: procfs.cgroup(me) };
    let candidates = procfs
        .stats()
        .map_err(SiblingsError::Proc)?
        .into_iter()
        .filter(|s| s.ppid == 0)
        .map(|stat| Candidate { cgroup: procfs.cgroup(stat.pid), stat })
        .collect();
    let found = container_tops(&own, candidates)
        .into_iter()
        .filter(|s| {
            names.is_empty()
                || names.contains(&s.comm)
                || procfs.exe_name(s.pid).is_some_and(|exe| names.contains(&exe))
        })
        .map(|s| Sibling { pid: s.pid, start_time: s.start_time, name: s.comm })
        .collect();
    Ok(Scan::Found(found))
}

/// Whether `sibling.pid` is still the process found (same start time), so a signal through a
/// pidfd opened on it reaches the right process.
pub fn is_same(procfs: &Procfs, sibling: &Sibling) -> bool {
    procfs.stat(sibling.pid).is_some_and(|s| s.start_time == sibling.start_time)
}

/// `siblings:SIG`: signal the top processes of the pod's other containers through pidfds,
/// after checking each is still the process found by the scan.
/// Whether siblings were found and all of them signalled (or would be, with `--dry-run`).
pub fn signal_all(me: i32, names: &[String], sig: Signal, what: &str, dry_run: bool) -> bool {
    let started = Instant::now();
    let procfs = Procfs::system();
    let found = match find(&procfs, me, names) {
        Ok(Scan::Found(found)) => found,
        Ok(Scan::Alone) => {
            info!(
                "{what}: reinit's container is PID 1 of its PID namespace: no sibling container to send SIG{sig} to"
            );
            return false;
        }
        Err(e) => {
            error!("{what}: {e}");
            return false;
        }
    };
    if found.is_empty() {
        let filter = match names {
            [] => String::new(),
            names => format!(" named {}", names.join(" or ")),
        };
        warn!(
            "{what}: no sibling process{filter} found to send SIG{sig}; the pod needs \
             shareProcessNamespace: true, and --sibling must match the process's comm or executable name"
        );
        return false;
    }
    let list = |v: &[&Sibling]| {
        v.iter().map(|s| format!("{} (pid {})", s.name, s.pid)).collect::<Vec<_>>().join(", ")
    };
    if dry_run {
        info!("{what}: would send SIG{sig} to {} (--dry-run)", list(&found.iter().collect::<Vec<_>>()));
        return true;
    }
    let sent: Vec<&Sibling> = found.iter().filter(|s| send_to_sibling(&procfs, s, sig)).collect();
    if !sent.is_empty() {
        info!("{what}: sent SIG{sig} to {} in {}", list(&sent), Human(started.elapsed()));
    }
    sent.len() == found.len()
}

/// Signal one sibling through a pidfd, after checking it is still the process found; whether
/// it was sent.
fn send_to_sibling(procfs: &Procfs, s: &Sibling, sig: Signal) -> bool {
    let result = sys::pidfd_open(s.pid).and_then(|fd| {
        if is_same(procfs, s) {
            sys::pidfd_send_signal(fd.as_fd(), sig.raw()).map(|()| true)
        } else {
            Ok(false)
        }
    });
    match result {
        Ok(sent) => {
            if !sent {
                debug!("{} (pid {}) exited and its pid was reused: not signalled", s.name, s.pid);
            }
            sent
        }
        Err(e) if e.raw_os_error() == Some(libc::ESRCH) => {
            debug!("{} (pid {}) is gone", s.name, s.pid);
            false
        }
        Err(e) if e.raw_os_error() == Some(libc::EPERM) => {
            error!(
                "cannot send SIG{sig} to {} (pid {}): permission denied; it runs as another user: \
                 run reinit with the same UID, or give it the CAP_KILL capability",
                s.name, s.pid
            );
            false
        }
        Err(e) => {
            error!("cannot send SIG{sig} to {} (pid {}): {e}", s.name, s.pid);
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::procfs::PF_KTHREAD;
    use crate::procfs::fake::{Entry, FakeProc, entry, stat_line};

    /// A process whose `/proc/PID/cgroup` reads `cg`.
    fn in_cgroup<'a>(e: Entry<'a>, cg: &'a str) -> Entry<'a> {
        Entry { cgroup: Some(cg), ..e }
    }

    fn pod() -> FakeProc {
        let p = FakeProc::new("pod");
        p.add(Entry { exe: Some("/pause"), ..in_cgroup(entry(1, "pause", 0), "0::/kubepods/pod1/pause\n") });
        let nginx = "0::/kubepods/pod1/nginx\n";
        p.add(Entry { exe: Some("/usr/sbin/nginx"), ..in_cgroup(entry(7, "nginx", 0), nginx) });
        p.add(Entry { exe: Some("/usr/sbin/nginx"), ..in_cgroup(entry(8, "nginx", 7), nginx) }); // a worker
        p.add(Entry {
            exe: Some("/bin/busybox"),
            ..in_cgroup(entry(12, "sh", 0), "0::/kubepods/pod1/shell\n")
        });
        let own = "0::/kubepods/pod1/reload\n";
        p.add(Entry { exe: Some("/reinit"), ..in_cgroup(entry(20, "reinit", 0), own) }); // our top
        p.add(in_cgroup(entry(21, "validator", 20), own));
        p.add(Entry { flags: PF_KTHREAD, ..entry(30, "kthreadish", 0) });
        p.add(Entry {
            exe: Some("/app/prometheus (deleted)"),
            ..in_cgroup(entry(40, "srv", 0), "0::/kubepods/pod1/prom\n")
        });
        p
    }

    fn pids(scan: Scan) -> Vec<i32> {
        match scan {
            Scan::Found(found) => found.iter().map(|s| s.pid).collect(),
            Scan::Alone => panic!("alone"),
        }
    }

    fn find_pids(p: &FakeProc, me: i32, names: &[&str]) -> Vec<i32> {
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        pids(find(&Procfs::new(p.path()), me, &names).unwrap())
    }

    #[test]
    fn selects_top_processes_of_other_containers() {
        let p = pod();
        assert_eq!(find_pids(&p, 21, &[]), [7, 12, 40], "not PID 1, ours, a worker or a kernel thread");
        assert_eq!(find_pids(&p, 20, &["nginx"]), [7]);
        assert_eq!(find_pids(&p, 20, &["busybox", "prometheus"]), [12, 40], "by exe basename");
        assert!(find_pids(&p, 20, &["nothing"]).is_empty());
    }

    #[test]
    fn processes_execd_into_a_container_are_not_its_top() {
        let p = pod();
        // `kubectl exec` into nginx's container: PPid 0, its cgroup, started later
        p.add(Entry {
            exe: Some("/bin/bash"),
            ..in_cgroup(entry(50, "bash", 0), "0::/kubepods/pod1/nginx\n")
        });
        // … and into reinit's own container: same cgroup as reinit, not in its PPid chain
        p.add(in_cgroup(entry(51, "sh", 0), "0::/kubepods/pod1/reload\n"));
        assert_eq!(find_pids(&p, 21, &[]), [7, 12, 40]);
        // the filter applies to each container's top, so no other process stands in for it
        assert!(find_pids(&p, 21, &["bash"]).is_empty(), "an exec'd bash is never a target");
        // an exec'd process that got a smaller pid (pid wrap) but started later is still not it
        p.add(Entry { start: 5000, ..in_cgroup(entry(3, "sh", 0), "0::/kubepods/pod1/prom\n") });
        assert_eq!(find_pids(&p, 21, &[]), [7, 12, 40]);
    }

    #[test]
    fn the_oldest_of_a_cgroup_is_its_top_and_ties_go_to_the_smaller_pid() {
        let cg = |pid, start| Candidate {
            stat: crate::procfs::parse_stat(&stat_line(pid, "x", 0, 0, start)).unwrap(),
            cgroup: Some("0::/c\n".into()),
        };
        let tops =
            |c: Vec<Candidate>| container_tops(&Own::default(), c).iter().map(|s| s.pid).collect::<Vec<_>>();
        assert_eq!(tops(vec![cg(9, 100), cg(5, 200), cg(7, 100)]), [7]);
        assert_eq!(tops(vec![cg(5, 200), cg(9, 50)]), [9]);
        let mut unreadable = cg(6, 300);
        unreadable.cgroup = None;
        assert_eq!(tops(vec![cg(5, 200), unreadable.clone(), cg(4, 100)]), [4, 6], "unreadable: its own");
        let own = Own { top: Some(20), cgroup: Some("0::/c\n".into()) };
        assert_eq!(
            container_tops(&own, vec![cg(5, 200), unreadable]).iter().map(|s| s.pid).collect::<Vec<_>>(),
            [6],
            "reinit's cgroup is never a sibling"
        );
    }

    #[test]
    fn unreadable_cgroups_make_each_process_its_own_container() {
        let p = FakeProc::new("nocgroup");
        p.add(entry(1, "pause", 0));
        p.add(entry(7, "nginx", 0));
        p.add(entry(12, "sh", 0));
        p.add(entry(20, "reinit", 0));
        p.add(entry(21, "validator", 20));
        assert_eq!(find_pids(&p, 21, &[]), [7, 12]);
        // reinit's own cgroup unreadable, the others readable: only its PPid chain is its own
        p.add(in_cgroup(entry(13, "sh", 0), "0::/x\n"));
        assert_eq!(find_pids(&p, 21, &[]), [7, 12, 13]);
    }

    #[test]
    fn identity_catches_a_reused_pid() {
        let p = pod();
        let procfs = Procfs::new(p.path());
        let Scan::Found(mut found) = find(&procfs, 20, &["nginx".into()]).unwrap() else { panic!("alone") };
        let nginx = found.remove(0);
        assert!(is_same(&procfs, &nginx));
        std::fs::write(p.path().join("7/stat"), stat_line(7, "stranger", 0, 0, 99999)).unwrap();
        assert!(!is_same(&procfs, &nginx));
        std::fs::remove_dir_all(p.path().join("7")).unwrap();
        assert!(!is_same(&procfs, &nginx));
    }

    #[test]
    fn a_container_that_is_pid_1_has_no_siblings() {
        let p = FakeProc::new("alone");
        p.add(in_cgroup(entry(1, "reinit", 0), "0::/\n"));
        p.add(in_cgroup(entry(5, "app", 1), "0::/\n"));
        // entered from outside (nsenter, `kubectl exec`): PPid 0, even in another cgroup
        p.add(in_cgroup(entry(9, "sh", 0), "0::/other\n"));
        let procfs = Procfs::new(p.path());
        assert!(alone_in_namespace(procfs.top_ancestor(5)));
        assert_eq!(find(&procfs, 5, &[]).unwrap(), Scan::Alone);
        assert_eq!(find(&procfs, 1, &[]).unwrap(), Scan::Alone);
    }

    #[test]
    fn no_proc_is_an_error() {
        let p = FakeProc::new("gone");
        let procfs = Procfs::new(p.path().join("absent"));
        assert!(matches!(find(&procfs, 5, &[]), Err(SiblingsError::Proc(_))));
    }
}
