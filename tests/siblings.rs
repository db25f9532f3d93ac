//! Sidecar mode in a simulated pod, no container runtime.
//!
//! The pod: a PID namespace from `unshare --pid --fork --mount-proc` whose PID 1 is fake_app
//! itself (standing in for the pause process, and reporting any signal it gets). "Containers"
//! are entered with `nsenter -t <PID 1> --pid --mount -- …`: nsenter forks and stays outside
//! the namespace, so each container's top process has PPid 0 inside it — exactly what a
//! runtime produces for a pod with `shareProcessNamespace: true`. reinit runs as one of these
//! containers, with no COMMAND.
//!
//! As a runtime does, each container gets its own cgroup (a directory in the cgroup v2
//! hierarchy, [`Cgroup`]), entered before nsenter starts so that everything the container runs
//! is in it; reinit tells containers apart by `/proc/PID/cgroup`. A process "exec'd into" a
//! container (what `kubectl exec` does) is entered the same way into that container's cgroup:
//! it too has PPid 0, but started later than the container's top process.
//!
//! "Exactly N signals" is proved with a fence: after the updates (and a quiet window of
//! several debounce periods, a measurement window in which a late duplicate would land), the
//! test sends SIGUSR1 to each process and waits for it to report `signal 10`. A SIGHUP reinit
//! sent earlier was pending before the fence and is delivered first (lower number, sent
//! earlier), so once the fence is seen the count of `signal 1` lines is final.
//!
//! Readiness: reinit prints nothing at start, so before the first update the test waits until
//! it is blocked in its poll loop with an inotify watch armed ([`wait_idle`], from /proc).

use crate::util::kubelet::{Kubelet, Options};
use crate::util::{
    DEADLINE, Proc, TempDir, alive, as_pid1, children_of, fake_app, line_eq, num_field, poll_until, prepare,
    signal_pid,
};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::mpsc::{Receiver, Sender, channel};
use std::thread::JoinHandle;
use std::time::Duration;

/// After the last expected signal: how long nothing more may arrive (debounce is 100 ms).
const QUIET: Duration = Duration::from_millis(500);

fn s(path: &Path) -> String {
    path.to_str().expect("UTF-8 test path").to_string()
}

/// A simulated pod with a shared PID namespace and a ConfigMap-like volume.
struct Pod {
    /// `unshare … -- fake_app`: PID 1 of the namespace.
    init: Proc,
    /// PID 1 as the test (the initial namespace) sees it: the target of every nsenter.
    host_pid1: i32,
    dir: TempDir,
    kubelet: Kubelet,
    updates: usize,
}

impl Pod {
    fn new(tag: &str) -> Pod {
        let mut cmd = Command::new("unshare");
        cmd.args(["--pid", "--fork", "--mount-proc", "--kill-child", "--"]).arg(fake_app());
        prepare(&mut cmd);
        let mut init = Proc::spawn(cmd);
        let ready = init.wait_line("ready pid=", DEADLINE);
        assert_eq!(num_field(&ready, "pid"), 1, "the pod's init must be PID 1: {ready}");
        // Proc::pid of an `unshare` command is its child: the namespace's PID 1.
        let host_pid1 = init.pid();
        let dir = TempDir::new(tag);
        let mut kubelet = Kubelet::new(dir.path().join("volume"), Options::default());
        assert!(kubelet.write(&[("app.conf", b"version=0\n")]));
        Pod { init, host_pid1, dir, kubelet, updates: 0 }
    }

    /// The mounted volume reinit watches.
    fn volume(&self) -> String {
        s(self.kubelet.dir())
    }

    /// A scratch dir for test binaries (copies of fake_app under other names).
    fn scratch(&self) -> &Path {
        self.dir.path()
    }

    /// `nsenter … -- argv` in a new cgroup: a new container of the pod.
    fn container(&self, argv: &[&str]) -> Container {
        let cgroup = Cgroup::new("container");
        let mut c = enter(self.host_pid1, Some(cgroup.dir()), argv);
        c.cgroup = Some(cgroup);
        c
    }

    /// Runs a short-lived command in the pod to its end; panics unless it succeeds.
    fn exec(&self, argv: &[&str]) {
        let mut cmd = Command::new("nsenter");
        cmd.args(["-t", &self.host_pid1.to_string(), "--pid", "--mount", "--"]).args(argv);
        prepare(&mut cmd);
        let out = cmd.output().unwrap();
        assert!(out.status.success(), "{argv:?}: {:?} {}", out.status, String::from_utf8_lossy(&out.stderr));
    }

    /// A container whose top process is fake_app (or a copy of it), started and ready.
    fn app(&self, bin: &str, args: &[&str]) -> Container {
        let argv: Vec<&str> = std::iter::once(bin).chain(args.iter().copied()).collect();
        let mut c = self.container(&argv);
        c.ready();
        c
    }

    /// fake_app (or a copy) exec'd into `container` as `kubectl exec` does: into its cgroup,
    /// with PPid 0, after its top process. Started and ready.
    fn exec_into(&self, container: &Container, bin: &str) -> Container {
        let mut c = enter(self.host_pid1, Some(&container.cgroup_dir), &[bin]);
        c.ready();
        c
    }

    /// A container running `reinit ARGS` (no COMMAND), idle and watching.
    fn reinit(&self, args: &[&str]) -> Container {
        let bin = s(&crate::util::reinit_bin());
        let argv: Vec<&str> = std::iter::once(bin.as_str()).chain(args.iter().copied()).collect();
        let mut c = self.container(&argv);
        wait_idle(&mut c.p, c.host_pid);
        c
    }

    /// One kubelet update of app.conf.
    fn update(&mut self) {
        self.updates += 1;
        let content = format!("version={}\n", self.updates);
        assert!(self.kubelet.write(&[("app.conf", content.as_bytes())]), "kubelet published nothing");
    }

    /// A copy of fake_app named `name` (its comm and exe basename), for siblings that must not
    /// match `--sibling fake_app` but still report signals.
    fn renamed_app(&self, name: &str) -> String {
        let path = self.scratch().join(name);
        if !path.exists() {
            std::fs::copy(fake_app(), &path).unwrap();
        }
        s(&path)
    }

    /// Fence on PID 1, then its number of SIGHUPs.
    fn init_hups(&mut self) -> usize {
        fence(&mut self.init, self.host_pid1)
    }
}

/// `argv` entered into the PID (and mount) namespace of `target` (a pid as the test sees it),
/// in the cgroup `cgroup` when given: nsenter is moved there before it starts, so its child is
/// in it from its first instruction.
fn enter(target: i32, cgroup: Option<&Path>, argv: &[&str]) -> Container {
    let target = target.to_string();
    let nsenter = ["nsenter", "-t", &target, "--pid", "--mount", "--"];
    let mut cmd = match cgroup {
        Some(dir) => {
            let mut sh = Command::new("sh");
            sh.args(["-c", r#"echo $$ > "$0/cgroup.procs" && exec "$@""#]).arg(dir).args(nsenter);
            sh
        }
        None => {
            let mut cmd = Command::new(nsenter[0]);
            cmd.args(&nsenter[1..]);
            cmd
        }
    };
    cmd.args(argv);
    prepare(&mut cmd);
    let p = Proc::spawn(cmd);
    let nsenter = p.pid();
    let mut host_pid = 0;
    assert!(
        poll_until(DEADLINE, || {
            host_pid = children_of(nsenter).first().copied().unwrap_or(0);
            host_pid != 0
        }),
        "nsenter {nsenter} never forked: {argv:?}"
    );
    let cgroup_dir = cgroup.map_or_else(own_cgroup_dir, Path::to_path_buf);
    Container { p, host_pid, ns_pid: 0, cgroup_dir, cgroup: None }
}

/// One container of the pod (or one process exec'd into a container).
struct Container {
    /// The nsenter process (outside the namespace); its stdout/stderr are the container's.
    p: Proc,
    /// The container's top process as the test sees it.
    host_pid: i32,
    /// The top process's pid inside the pod (from fake_app's `ready` line; 0 otherwise).
    ns_pid: i32,
    /// The cgroup it runs in.
    cgroup_dir: PathBuf,
    /// The cgroup made for it, removed after `p` (declared after it, so dropped after it).
    cgroup: Option<Cgroup>,
}

impl Container {
    /// Waits for fake_app's `ready` line: PPid 0 inside the pod, and its pid there.
    fn ready(&mut self) {
        let ready = self.p.wait_line("ready pid=", DEADLINE);
        assert_eq!(num_field(&ready, "ppid"), 0, "a process entered into the pod has PPid 0: {ready}");
        self.ns_pid = num_field(&ready, "pid");
    }

    /// Waits for the next SIGHUP report.
    fn wait_hup(&mut self) {
        self.p.wait_line(line_eq("signal 1"), DEADLINE);
    }

    /// Fence (see the module docs), then the number of SIGHUPs reported so far.
    fn hups(&mut self) -> usize {
        fence(&mut self.p, self.host_pid)
    }

    /// reinit's stderr (for a reinit container).
    fn log(&mut self) -> String {
        self.p.stderr_so_far()
    }

    /// Waits until reinit's stderr has `n` lines containing `pat`; returns the last of them.
    fn wait_log(&mut self, pat: &str, n: usize) -> String {
        let mut last = String::new();
        let ok = poll_until(DEADLINE, || {
            let log = self.p.stderr_so_far();
            let hits: Vec<&str> = log.lines().filter(|l| l.contains(pat)).collect();
            if let Some(l) = hits.last() {
                last = l.to_string();
            }
            hits.len() >= n
        });
        assert!(ok, "expected {n} log lines containing {pat:?}\n{}", self.p.dump());
        last
    }

    fn log_count(&mut self, pat: &str) -> usize {
        self.log().lines().filter(|l| l.contains(pat)).count()
    }
}

/// A cgroup standing for one container: a new directory in the test's own cgroup of the
/// cgroup v2 hierarchy. Removed on drop, after moving what is still in it back to the test's
/// cgroup.
struct Cgroup {
    dir: PathBuf,
    parent: PathBuf,
}

impl Cgroup {
    fn new(tag: &str) -> Cgroup {
        static COUNTER: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let parent = own_cgroup_dir();
        let dir = parent.join(format!("reinit-test-{}-{n}-{tag}", std::process::id()));
        std::fs::create_dir(&dir).unwrap_or_else(|e| {
            panic!("mkdir {}: {e} (the sidecar tests need a writable cgroup v2 hierarchy)", dir.display())
        });
        Cgroup { dir, parent }
    }

    fn dir(&self) -> &Path {
        &self.dir
    }
}

impl Drop for Cgroup {
    fn drop(&mut self) {
        poll_until(DEADLINE, || {
            let procs = std::fs::read_to_string(self.dir.join("cgroup.procs")).unwrap_or_default();
            for pid in procs.lines() {
                let _ = std::fs::write(self.parent.join("cgroup.procs"), pid);
            }
            std::fs::remove_dir(&self.dir).is_ok() || !self.dir.exists()
        });
    }
}

/// The test's own cgroup in the cgroup v2 hierarchy: where that hierarchy is mounted (from
/// `/proc/self/mountinfo`, `/sys/fs/cgroup` or `/sys/fs/cgroup/unified` on a hybrid set-up)
/// joined with the `0::PATH` line of `/proc/self/cgroup`.
fn own_cgroup_dir() -> PathBuf {
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let mount = mountinfo
        .lines()
        .find_map(|l| {
            let (mount, fs) = l.split_once(" - ")?;
            (fs.split_whitespace().next()? == "cgroup2").then(|| mount.split_whitespace().nth(4))?
        })
        .expect("a cgroup2 mount: each simulated container gets its own cgroup");
    let own = std::fs::read_to_string("/proc/self/cgroup").unwrap();
    let path =
        own.lines().find_map(|l| l.strip_prefix("0::")).expect("a cgroup v2 line in /proc/self/cgroup");
    Path::new(mount).join(path.trim_start_matches('/'))
}

/// Sends SIGUSR1 to a fake_app and waits for its report; returns how many SIGHUPs it reported
/// before (see the module docs).
fn fence(p: &mut Proc, host_pid: i32) -> usize {
    signal_pid(host_pid, libc::SIGUSR1);
    p.wait_line(line_eq("signal 10"), DEADLINE);
    p.count(line_eq("signal 1"))
}

/// Waits until `pid` (reinit, as the test sees it) is idle and watching (see
/// [`idle_and_watching`]).
fn wait_idle(p: &mut Proc, pid: i32) {
    let ok = poll_until(DEADLINE, || idle_and_watching(pid));
    assert!(ok, "reinit (pid {pid}) never became idle with an inotify watch\n{}", p.dump());
}

/// Whether `pid` is blocked in poll(2) and has at least one inotify watch: reinit's start-up is
/// over and its baseline hashed, so an update from now on will be seen.
pub(crate) fn idle_and_watching(pid: i32) -> bool {
    let syscall = std::fs::read_to_string(format!("/proc/{pid}/syscall")).unwrap_or_default();
    let nr: i64 = syscall.split_whitespace().next().and_then(|n| n.parse().ok()).unwrap_or(-1);
    if nr != libc::SYS_poll && nr != libc::SYS_ppoll {
        return false;
    }
    let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fdinfo")) else { return false };
    fds.filter_map(Result::ok)
        .any(|e| std::fs::read_to_string(e.path()).is_ok_and(|info| info.contains("inotify wd:")))
}

/// `--watch VOLUME --on-change siblings:HUP EXTRA…`
fn sidecar_args<'a>(volume: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec!["--watch", volume, "--on-change", "siblings:HUP"];
    args.extend_from_slice(extra);
    args
}

// ---------------------------------------------------------------------------------------------

/// The named sibling gets exactly one SIGHUP per kubelet update; a sibling with another name,
/// PID 1 (also named fake_app) and reinit itself get none.
#[test]
fn named_sibling_gets_exactly_one_signal_per_update() {
    let mut pod = Pod::new("sib-named");
    let volume = pod.volume();
    let other_bin = pod.renamed_app("other_app");
    let mut app = pod.app(&fake_app(), &[]);
    let mut other = pod.app(&other_bin, &[]);
    let mut reinit = pod.reinit(&sidecar_args(&volume, &["--sibling", "fake_app"]));

    let sent = format!("sent SIGHUP to fake_app (pid {})", app.ns_pid);
    for n in 1..=3 {
        pod.update();
        app.wait_hup();
        let line = reinit.wait_log(&sent, n);
        assert!(line.contains("app.conf"), "the log line says what changed: {line}");
    }
    std::thread::sleep(QUIET); // measurement window for a late duplicate, not synchronisation
    assert_eq!(app.hups(), 3, "one SIGHUP per update\n{}", reinit.p.dump());
    assert_eq!(other.hups(), 0, "a sibling with another name is not signalled");
    assert_eq!(pod.init_hups(), 0, "PID 1 (the pause process) is never signalled");
    assert_eq!(reinit.log_count("sent SIGHUP"), 3, "{}", reinit.log());
    assert!(
        !reinit.log().contains("no sibling container can be seen"),
        "a shared namespace must not trigger the start warning: {}",
        reinit.log()
    );
    assert!(alive(reinit.host_pid));
}

/// `--sibling NAME` also matches the executable's basename, which comm truncates to 15 bytes.
#[test]
fn sibling_matches_the_full_executable_name() {
    let mut pod = Pod::new("sib-exe");
    let volume = pod.volume();
    let long = "fake_app_with_a_long_name";
    let long_bin = pod.renamed_app(long);
    let mut long_app = pod.app(&long_bin, &[]);
    let mut app = pod.app(&fake_app(), &[]);
    let comm = std::fs::read_to_string(format!("/proc/{}/comm", long_app.host_pid)).unwrap();
    assert_eq!(comm.trim_end(), &long[..15], "the kernel truncates comm");
    let mut reinit = pod.reinit(&sidecar_args(&volume, &["--sibling", long]));

    pod.update();
    long_app.wait_hup();
    reinit.wait_log(&format!("(pid {})", long_app.ns_pid), 1);
    std::thread::sleep(QUIET);
    assert_eq!(long_app.hups(), 1);
    assert_eq!(app.hups(), 0);
}

/// Without `--sibling`, every other container's top process gets the signal — not PID 1, not
/// the top process of reinit's own container (a shell that would report a HUP), and not a
/// worker below a sibling's top process (fake_app's helper, which dies of a SIGHUP).
#[test]
fn without_a_name_every_sibling_but_pid1_and_our_own_container() {
    let mut pod = Pod::new("sib-all");
    let volume = pod.volume();
    let other_bin = pod.renamed_app("other_app");
    let mut app = pod.app(&fake_app(), &["--helper"]);
    let helper_ns = num_field(&app.p.wait_line("helper pid=", DEADLINE), "pid");
    let helper = children_of(app.host_pid).first().copied().expect("the helper, as the host sees it");
    let mut other = pod.app(&other_bin, &[]);

    // reinit's container: a shell on top (PPid 0) that reports HUP and USR1, reinit below it.
    let script = format!(
        "trap 'echo TOP-GOT-HUP' HUP; trap 'echo TOP-GOT-USR1' USR1; \
         {} --watch {volume} --on-change siblings:HUP & pid=$!; \
         while :; do wait $pid; rc=$?; kill -0 $pid 2>/dev/null || exit $rc; done",
        s(&crate::util::reinit_bin())
    );
    let mut top = pod.container(&["sh", "-c", &script]);
    let mut reinit_pid = 0;
    assert!(poll_until(DEADLINE, || {
        reinit_pid = children_of(top.host_pid).first().copied().unwrap_or(0);
        reinit_pid != 0
    }));
    wait_idle(&mut top.p, reinit_pid);

    for n in 1..=2 {
        pod.update();
        app.wait_hup();
        other.wait_hup();
        let line = top.wait_log("sent SIGHUP to", n);
        assert!(
            line.contains(&format!("fake_app (pid {})", app.ns_pid))
                && line.contains(&format!("other_app (pid {})", other.ns_pid)),
            "both siblings in one log line: {line}"
        );
        assert!(!line.contains(&format!("(pid {helper_ns})")), "{line}");
    }
    std::thread::sleep(QUIET);
    assert_eq!(app.hups(), 2, "{}", top.p.dump());
    assert_eq!(other.hups(), 2);
    assert_eq!(pod.init_hups(), 0, "PID 1 is never signalled");
    signal_pid(top.host_pid, libc::SIGUSR1);
    top.p.wait_line("TOP-GOT-USR1", DEADLINE);
    assert_eq!(top.p.count("TOP-GOT-HUP"), 0, "reinit signalled its own container's top process");
    assert!(alive(helper), "a sibling's worker process (not a top process) got the signal");
    assert!(alive(reinit_pid));
}

/// `--dry-run` logs whom it would signal and signals nobody.
#[test]
fn dry_run_signals_nobody_but_says_whom() {
    let mut pod = Pod::new("sib-dry");
    let volume = pod.volume();
    let mut app = pod.app(&fake_app(), &[]);
    let mut reinit = pod.reinit(&sidecar_args(&volume, &["--sibling", "fake_app", "--dry-run"]));

    let would = format!("would send SIGHUP to fake_app (pid {}) (--dry-run)", app.ns_pid);
    for n in 1..=2 {
        pod.update();
        reinit.wait_log(&would, n);
    }
    std::thread::sleep(QUIET);
    assert_eq!(app.hups(), 0, "--dry-run sent a signal\n{}", reinit.log());
    assert_eq!(reinit.log_count("would send"), 2, "{}", reinit.log());
    assert_eq!(reinit.log_count("sent SIG"), 0);
}

/// A sibling that exited between updates is not signalled (nor reported), and reinit goes on
/// signalling the others.
#[test]
fn a_sibling_that_exited_is_skipped() {
    let mut pod = Pod::new("sib-exited");
    let volume = pod.volume();
    let mut a = pod.app(&fake_app(), &[]);
    let mut b = pod.app(&fake_app(), &[]);
    let mut reinit = pod.reinit(&sidecar_args(&volume, &["--sibling", "fake_app"]));

    pod.update();
    a.wait_hup();
    b.wait_hup();
    reinit.wait_log("sent SIGHUP", 1);

    signal_pid(a.host_pid, libc::SIGTERM);
    assert_eq!(a.p.wait_code(DEADLINE), 0);

    pod.update();
    b.wait_hup();
    let line = reinit.wait_log("sent SIGHUP", 2);
    assert!(line.contains(&format!("(pid {})", b.ns_pid)), "{line}");
    assert!(
        !line.contains(&format!("(pid {})", a.ns_pid)),
        "the exited sibling is reported as signalled: {line}"
    );
    std::thread::sleep(QUIET);
    assert_eq!(b.hups(), 2);
    assert!(alive(reinit.host_pid), "{}", reinit.p.dump());
    assert!(!reinit.log().contains("reinit: error:"), "{}", reinit.log());
}

/// The identity check: reinit is held by ptrace right at its `pidfd_open` for a
/// sibling found by the scan. (1) The sibling exits in that window: reinit goes on ("is gone").
/// (2) The sibling exits and its pid is given to a new process (`ns_last_pid` set inside the
/// namespace): that process — a fake_app with the same name and pid but another start time —
/// must not get the signal meant for the old one. (3) At the next update the new process is a
/// legitimate sibling (reinit scans /proc afresh at every change) and gets exactly one.
///
/// This proves the start-time re-check between the scan and the signal; without it, step 2
/// hits the new process.
#[test]
fn a_pid_reused_between_scan_and_signal_is_not_hit() {
    let mut pod = Pod::new("sib-reuse");
    let volume = pod.volume();
    let mut a = pod.app(&fake_app(), &[]);
    let mut reinit = pod.reinit(&sidecar_args(&volume, &["--sibling", "fake_app", "-v"]));

    // (1) exits while reinit holds the scan result
    let gate = SyscallGate::arm(reinit.host_pid, libc::SYS_pidfd_open);
    pod.update();
    let args = gate.wait_entered(&mut reinit.p);
    assert_eq!(args[0] as i32, a.ns_pid, "stopped at pidfd_open of the sibling");
    signal_pid(a.host_pid, libc::SIGKILL);
    a.p.wait_exit(DEADLINE); // reaped by its nsenter: the pid is free
    gate.release();
    reinit.wait_log(&format!("fake_app (pid {}) is gone", a.ns_pid), 1);
    assert_eq!(a.p.count(line_eq("signal 1")), 0);

    // (2) exits and its pid is reused by a new process before the signal
    let mut b = pod.app(&fake_app(), &[]);
    wait_idle(&mut reinit.p, reinit.host_pid);
    let gate = SyscallGate::arm(reinit.host_pid, libc::SYS_pidfd_open);
    pod.update();
    let args = gate.wait_entered(&mut reinit.p);
    assert_eq!(args[0] as i32, b.ns_pid, "stopped at pidfd_open of the sibling");
    signal_pid(b.host_pid, libc::SIGKILL);
    b.p.wait_exit(DEADLINE);
    let set_last = format!("echo {} > /proc/sys/kernel/ns_last_pid", b.ns_pid - 1);
    pod.exec(&["sh", "-c", &set_last]);
    let mut c = pod.app(&fake_app(), &[]);
    assert_eq!(c.ns_pid, b.ns_pid, "the new process did not get the old sibling's pid");
    gate.release();
    reinit.wait_log(&format!("fake_app (pid {}) exited and its pid was reused: not signalled", c.ns_pid), 1);
    assert_eq!(c.hups(), 0, "the signal meant for the exited sibling hit the process now holding its pid");

    // (3) a fresh scan: the new process is a sibling like any other
    pod.update();
    c.wait_hup();
    reinit.wait_log(&format!("sent SIGHUP to fake_app (pid {})", c.ns_pid), 1);
    std::thread::sleep(QUIET);
    assert_eq!(c.hups(), 1);
    assert_eq!(reinit.log_count("sent SIGHUP"), 1, "{}", reinit.log());
    assert_eq!(pod.init_hups(), 0);
}

/// No sibling: a warning with the `shareProcessNamespace` hint at each change, and reinit keeps
/// watching: a sibling that appears later gets the next update.
#[test]
fn no_sibling_found_warns_and_keeps_watching() {
    let mut pod = Pod::new("sib-none");
    let volume = pod.volume();
    let mut reinit = pod.reinit(&sidecar_args(&volume, &["--sibling", "fake_app"]));

    pod.update();
    let warning = reinit.wait_log("no sibling process named fake_app found", 1);
    assert!(warning.contains("shareProcessNamespace: true"), "{warning}");
    assert!(warning.starts_with("reinit: warning: "), "a warning: {warning}");
    assert!(alive(reinit.host_pid));

    let mut app = pod.app(&fake_app(), &[]);
    pod.update();
    app.wait_hup();
    reinit.wait_log(&format!("sent SIGHUP to fake_app (pid {})", app.ns_pid), 1);
    std::thread::sleep(QUIET);
    assert_eq!(app.hups(), 1);
    assert_eq!(reinit.log_count("no sibling process"), 1, "{}", reinit.log());
}

/// A sibling running as another UID, reinit without CAP_KILL: a clear error naming the fix,
/// nothing sent, reinit goes on.
#[test]
fn permission_denied_names_the_fix() {
    let mut pod = Pod::new("sib-eperm");
    let volume = pod.volume();
    let mut app = pod.app(&fake_app(), &[]);
    let bin = s(&crate::util::reinit_bin());
    let mut reinit = pod.container(&[
        "setpriv",
        "--reuid=12345",
        "--regid=12345",
        "--clear-groups",
        "--inh-caps=-all",
        "--bounding-set=-all",
        "--",
        &bin,
        "--watch",
        &volume,
        "--on-change",
        "siblings:HUP",
        "--sibling",
        "fake_app",
    ]);
    wait_idle(&mut reinit.p, reinit.host_pid);
    assert_eq!(
        crate::util::status_field(reinit.host_pid, "Uid").unwrap().split_whitespace().next(),
        Some("12345")
    );

    pod.update();
    let line = reinit.wait_log("permission denied", 1);
    assert!(line.starts_with("reinit: error: "), "an error: {line}");
    assert!(line.contains(&format!("fake_app (pid {})", app.ns_pid)), "{line}");
    assert!(line.contains("same UID") && line.contains("CAP_KILL"), "the fix is named: {line}");
    assert_eq!(app.hups(), 0);
    assert!(alive(reinit.host_pid));
}

/// SIGTERM and SIGINT end the sidecar with 0; other signals are ignored.
#[test]
fn sigterm_and_sigint_end_the_sidecar_with_0() {
    let pod = Pod::new("sib-term");
    let volume = pod.volume();
    for (sig, name) in [(libc::SIGTERM, "SIGTERM"), (libc::SIGINT, "SIGINT")] {
        let mut reinit = pod.reinit(&sidecar_args(&volume, &["-v"]));
        for (other, other_name) in
            [(libc::SIGHUP, "SIGHUP"), (libc::SIGUSR1, "SIGUSR1"), (libc::SIGQUIT, "SIGQUIT")]
        {
            signal_pid(reinit.host_pid, other);
            reinit.wait_log(&format!("received {other_name} in sidecar mode: ignored"), 1);
            assert!(alive(reinit.host_pid), "{other_name} ended the sidecar\n{}", reinit.p.dump());
        }
        signal_pid(reinit.host_pid, sig);
        let code = reinit.p.wait_code(Duration::from_secs(5));
        assert_eq!(code, 0, "{name} → exit 0\n{}", reinit.p.dump());
    }
}

/// reinit as PID 1 of its own namespace (a pod without shareProcessNamespace): one warning at
/// start that no sibling can be seen, with the fix; it keeps running, and a change signals
/// nobody — not even a process entered into its namespace from outside (PPid 0 inside, in
/// another cgroup: what `kubectl exec` into reinit's container looks like).
#[test]
fn alone_in_its_own_namespace_warns_at_start_and_signals_nobody() {
    let dir = TempDir::new("sib-alone");
    let mut kubelet = Kubelet::new(dir.path().join("volume"), Options::default());
    assert!(kubelet.write(&[("app.conf", b"v0\n")]));
    let volume = s(kubelet.dir());
    let mut p = Proc::spawn(as_pid1(["--watch", &volume, "--on-change", "siblings:HUP"]));
    let pid = p.pid();
    let mut warning = String::new();
    let ok = poll_until(DEADLINE, || {
        warning = p.stderr_so_far();
        warning.contains("no sibling container can be seen")
    });
    assert!(ok, "no start warning\n{}", p.dump());
    assert!(warning.contains("shareProcessNamespace: true"), "{warning}");
    wait_idle(&mut p, pid);
    let cgroup = Cgroup::new("exec");
    let mut exec = enter(pid, Some(cgroup.dir()), &[&fake_app()]);
    exec.ready();

    assert!(kubelet.write(&[("app.conf", b"v1\n")]));
    let mut line = String::new();
    let ok = poll_until(DEADLINE, || {
        line = p.stderr_so_far().lines().filter(|l| l.contains("app.conf")).collect();
        !line.is_empty()
    });
    assert!(ok, "the change is still handled\n{}", p.dump());
    assert!(line.contains("no sibling container to send SIGHUP to"), "{line}");
    std::thread::sleep(QUIET); // measurement window for a late signal, not synchronisation
    assert_eq!(exec.hups(), 0, "a process entered into reinit's namespace got the signal\n{}", p.dump());
    assert_eq!(p.stderr_so_far().matches("warning").count(), 1, "one warning, at start\n{}", p.dump());
    p.signal(libc::SIGTERM);
    assert_eq!(p.wait_code(Duration::from_secs(5)), 0);
}

/// Processes exec'd into a container later (as `kubectl exec` does: PPid 0, the container's
/// cgroup, started after its top process) are never signalled: of each other container only
/// its top process is, and `--sibling NAME` is applied to that top process. A process exec'd
/// into reinit's own container is not signalled either.
#[test]
fn processes_execd_into_a_container_are_never_signalled() {
    let mut pod = Pod::new("sib-exec");
    let volume = pod.volume();
    let other_bin = pod.renamed_app("other_app");
    let mut app = pod.app(&fake_app(), &[]);
    let mut into_app = pod.exec_into(&app, &fake_app());
    let mut other = pod.app(&other_bin, &[]);
    let mut into_other = pod.exec_into(&other, &fake_app()); // named fake_app, but not a top
    let mut reinit = pod.reinit(&sidecar_args(&volume, &["--sibling", "fake_app"]));
    let mut into_reinit = pod.exec_into(&reinit, &fake_app());

    let sent = format!("sent SIGHUP to fake_app (pid {})", app.ns_pid);
    for n in 1..=2 {
        pod.update();
        app.wait_hup();
        let line = reinit.wait_log(&sent, n);
        assert_eq!(line.matches("(pid ").count(), 1, "one process signalled: {line}");
    }
    std::thread::sleep(QUIET); // measurement window for a late signal, not synchronisation
    assert_eq!(app.hups(), 2, "the container's top process gets one SIGHUP per update");
    assert_eq!(into_app.hups(), 0, "a process exec'd into the app's container got the signal");
    assert_eq!(other.hups(), 0, "a top process with another name got the signal");
    assert_eq!(into_other.hups(), 0, "a process exec'd into another container got the signal");
    assert_eq!(into_reinit.hups(), 0, "a process exec'd into reinit's own container got the signal");
    assert_eq!(pod.init_hups(), 0);
    assert_eq!(reinit.log_count("sent SIGHUP"), 2, "{}", reinit.log());
}

// ---------------------------------------------------------------------------------------------
// ptrace: hold a process at the entry of a syscall

/// Holds a process at the entry of its next `nr` syscall, by ptrace from a dedicated thread
/// (ptrace requests must come from the thread that attached). Released (detached, the syscall
/// then runs) by [`SyscallGate::release`] or on drop.
struct SyscallGate {
    entered: Receiver<Result<[u64; 6], String>>,
    release: Option<Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl SyscallGate {
    fn arm(pid: i32, nr: libc::c_long) -> SyscallGate {
        let (entered_tx, entered) = channel();
        let (release, release_rx) = channel();
        let thread = std::thread::spawn(move || trace_until(pid, nr as u64, &entered_tx, &release_rx));
        SyscallGate { entered, release: Some(release), thread: Some(thread) }
    }

    /// Waits until the process is held at the syscall; returns its arguments.
    fn wait_entered(&self, p: &mut Proc) -> [u64; 6] {
        match self.entered.recv_timeout(DEADLINE) {
            Ok(Ok(args)) => args,
            Ok(Err(e)) => panic!("ptrace: {e}\n{}", p.dump()),
            Err(_) => panic!("the syscall never came\n{}", p.dump()),
        }
    }

    fn release(mut self) {
        self.finish();
    }

    fn finish(&mut self) {
        drop(self.release.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for SyscallGate {
    fn drop(&mut self) {
        self.finish();
    }
}

#[allow(unsafe_code)]
fn trace_until(pid: i32, nr: u64, entered: &Sender<Result<[u64; 6], String>>, release: &Receiver<()>) {
    let pt = |req: libc::c_uint, addr: usize, data: usize| -> libc::c_long {
        // SAFETY: ptrace requests on a traced process; `data` is either a plain value or a
        // pointer to a buffer of at least `addr` bytes (PTRACE_GET_SYSCALL_INFO).
        unsafe { libc::ptrace(req, pid, addr as *mut libc::c_void, data as *mut libc::c_void) }
    };
    let fail = |what: &str| {
        let _ = entered.send(Err(format!("{what}: {}", std::io::Error::last_os_error())));
    };
    if pt(libc::PTRACE_SEIZE, 0, libc::PTRACE_O_TRACESYSGOOD as usize) != 0 {
        return fail("PTRACE_SEIZE");
    }
    if pt(libc::PTRACE_INTERRUPT, 0, 0) != 0 {
        return fail("PTRACE_INTERRUPT");
    }
    loop {
        let mut status = 0;
        // SAFETY: waitpid with a valid pointer to a local.
        if unsafe { libc::waitpid(pid, &mut status, libc::__WALL) } != pid {
            return fail("waitpid");
        }
        if !libc::WIFSTOPPED(status) {
            let _ = entered.send(Err(format!("the process ended (status {status:#x})")));
            return;
        }
        let stop = libc::WSTOPSIG(status);
        let mut deliver = 0;
        if stop == libc::SIGTRAP | 0x80 {
            // struct ptrace_syscall_info: op (u8) at byte 0, entry.nr at byte 24, args after.
            let mut info = [0u64; 11];
            let size = std::mem::size_of_val(&info);
            let n = pt(libc::PTRACE_GET_SYSCALL_INFO, size, info.as_mut_ptr() as usize);
            const PTRACE_SYSCALL_INFO_ENTRY: u8 = 1;
            if n > 0 && info[0].to_ne_bytes()[0] == PTRACE_SYSCALL_INFO_ENTRY && info[3] == nr {
                let mut args = [0u64; 6];
                args.copy_from_slice(&info[4..10]);
                let _ = entered.send(Ok(args));
                let _ = release.recv(); // a value or the gate dropped: either way, let go
                pt(libc::PTRACE_DETACH, 0, 0);
                return;
            }
        } else if status >> 16 != libc::PTRACE_EVENT_STOP {
            deliver = stop; // a signal-delivery stop: pass the signal on
        }
        if pt(libc::PTRACE_SYSCALL, 0, deliver as usize) != 0 {
            return fail("PTRACE_SYSCALL");
        }
    }
}
