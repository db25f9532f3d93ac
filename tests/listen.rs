//! Socket handoff: `--listen` sockets held by reinit and passed to every app start at fd 3, 4,
//! … with `LISTEN_FDS`, `LISTEN_PID` (the app's own pid) and `LISTEN_FDNAMES`; socket activation
//! of reinit itself; no connection refused or dropped while the app restarts; a unix socket file
//! removed at exit only while it is still the one reinit created.
//!
//! The app is `tests/fixtures/fake_app.rs` (`--listen-report`, `--fds`) for what a start sees, and
//! `examples/config_server.rs` (HTTP, `pid=` in every answer) for connections. Restarts are
//! triggered the real way: `--watch` on a volume the kubelet simulator updates. Which socket an
//! fd is, is read from `/proc/PID/fd` and `/proc/net/{tcp,tcp6,unix}` (inode numbers), so the
//! tests can tell that every start gets the very socket reinit bound at the beginning.
//!
//! The load test drives `tests/fixtures/load.rs` (also used by `bench/restarts.sh`).

use crate::util::kubelet::{Kubelet, Options};
use crate::util::{
    DEADLINE, Proc, TempDir, alive, close_inherited_fds, example, field, fixture, num_field, poll_until,
    prepare, reinit_bin, reinit_cmd, with_app,
};
use std::ffi::CString;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::os::unix::fs::FileTypeExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Restarts after the first start in the "every start" tests.
const RESTARTS: usize = 2;

/// Config updates (so restarts) in the load test.
const LOAD_RESTARTS: usize = 10;

fn s(path: &Path) -> String {
    path.to_str().expect("UTF-8 test path").to_string()
}

// ---------------------------------------------------------------------------------------------
// Sockets as /proc shows them

/// The inode of the socket at `fd` of `pid`, `None` if that fd is not a socket (or not open).
fn socket_inode(pid: i32, fd: i32) -> Option<u64> {
    let link = std::fs::read_link(format!("/proc/{pid}/fd/{fd}")).ok()?;
    link.to_str()?.strip_prefix("socket:[")?.strip_suffix(']')?.parse().ok()
}

/// The inodes of every socket `pid` has open.
fn socket_inodes(pid: i32) -> Vec<u64> {
    let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/fd")) else { return Vec::new() };
    dir.filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter_map(|fd| socket_inode(pid, fd))
        .collect()
}

/// A listening TCP socket of this network namespace, from `/proc/net/tcp` or `tcp6`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct TcpListening {
    inode: u64,
    port: u16,
    v6: bool,
}

fn tcp_listening() -> Vec<TcpListening> {
    let mut out = Vec::new();
    for (file, v6) in [("/proc/net/tcp", false), ("/proc/net/tcp6", true)] {
        let Ok(text) = std::fs::read_to_string(file) else { continue };
        for line in text.lines().skip(1) {
            // sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode ...
            let f: Vec<&str> = line.split_whitespace().collect();
            if f.len() < 10 || f[3] != "0A" {
                continue; // 0A = TCP_LISTEN
            }
            let port = f[1].rsplit_once(':').and_then(|(_, p)| u16::from_str_radix(p, 16).ok());
            if let (Some(port), Ok(inode)) = (port, f[9].parse()) {
                out.push(TcpListening { inode, port, v6 });
            }
        }
    }
    out
}

/// The listening TCP socket with this inode, if it is one.
fn tcp_listening_by_inode(inode: u64) -> Option<TcpListening> {
    tcp_listening().into_iter().find(|l| l.inode == inode)
}

/// The path of the listening unix socket with this inode (from `/proc/net/unix`), if it is one.
fn unix_listening_path(inode: u64) -> Option<String> {
    let text = std::fs::read_to_string("/proc/net/unix").ok()?;
    text.lines().skip(1).find_map(|line| {
        // Num RefCount Protocol Flags Type St Inode [Path]
        let f: Vec<&str> = line.split_whitespace().collect();
        let flags = u32::from_str_radix(f.get(3)?, 16).ok()?;
        let listening = flags & 0x10000 != 0; // __SO_ACCEPTCON
        (listening && f.get(6)?.parse::<u64>().ok()? == inode).then(|| f.get(7).unwrap_or(&"").to_string())
    })
}

/// Waits until `pid` (reinit) holds a listening TCP socket and returns it (the first found).
fn wait_tcp_listener(p: &mut Proc) -> TcpListening {
    let pid = p.pid();
    let mut found = None;
    poll_until(DEADLINE, || {
        let mine = socket_inodes(pid);
        found = tcp_listening().into_iter().find(|l| mine.contains(&l.inode));
        found.is_some()
    });
    found.unwrap_or_else(|| panic!("reinit never held a listening TCP socket\n{}", p.dump()))
}

/// The inode of a socket this test holds.
fn own_inode(fd: &impl AsRawFd) -> u64 {
    socket_inode(std::process::id() as i32, fd.as_raw_fd()).expect("a socket of the test")
}

// ---------------------------------------------------------------------------------------------
// What one start of fake_app saw

/// The `fds=…` and `listen …` lines of one start of `fake_app --fds --listen-report`.
#[derive(Debug)]
struct Start {
    /// The app's pid (`self=`, equal to the `ready pid=`).
    pid: i32,
    /// `LISTEN_FDS`, `LISTEN_PID`, `LISTEN_FDNAMES` as seen (`-` when unset).
    listen_fds: String,
    listen_pid: String,
    names: String,
    /// `tcp-listening`, `unix-listening`, `none-not`, …
    fd3: String,
    /// The open fds, `0,1,2,3`.
    open: String,
    /// The lines, for messages.
    text: String,
}

impl Start {
    /// Asserts the `LISTEN_*` protocol for `n` sockets named `names`, `fd3` at fd 3, and
    /// exactly fds 0..3+n open.
    fn assert_sockets(&self, n: usize, names: &str, fd3: &str, p: &mut Proc) {
        let open: Vec<String> = (0..3 + n).map(|fd| fd.to_string()).collect();
        let ok = self.listen_fds == n.to_string()
            && self.listen_pid == self.pid.to_string()
            && self.names == names
            && self.fd3 == fd3
            && self.open == open.join(",");
        assert!(
            ok,
            "expected LISTEN_FDS={n} LISTEN_PID=<the app's own pid> LISTEN_FDNAMES={names}, a {fd3} \
             socket at fd 3 and exactly fds {}; the app saw:\n{}\n{}",
            open.join(","),
            self.text,
            p.dump()
        );
    }
}

/// Waits for the next start of `fake_app --fds --listen-report` and parses what it saw.
fn next_start(p: &mut Proc) -> Start {
    let fds = p.wait_line(|l: &str| l.starts_with("fds="), DEADLINE);
    let listen = p.wait_line(|l: &str| l.starts_with("listen "), DEADLINE);
    let ready = p.wait_line(|l: &str| l.starts_with("ready pid="), DEADLINE);
    let get = |key: &str| field(&listen, key).unwrap_or("?").to_string();
    let start = Start {
        pid: num_field(&listen, "self"),
        listen_fds: get("fds"),
        listen_pid: get("pid"),
        names: get("names"),
        fd3: get("fd3"),
        open: field(&fds, "fds").unwrap_or("?").to_string(),
        text: format!("{fds}\n{listen}\n{ready}"),
    };
    assert_eq!(start.pid, num_field(&ready, "pid"), "{}", start.text);
    start
}

/// The app arguments of every fake_app start here.
const REPORT: [&str; 2] = ["--fds", "--listen-report"];

/// `reinit REINIT_ARGS -- fake_app --fds --listen-report`.
fn fake_app_argv(reinit_args: &[&str]) -> Vec<String> {
    with_app(reinit_args, &REPORT)
}

/// A kubelet-managed volume `tmp/volume` holding `app.conf=v0`.
fn volume(tmp: &TempDir) -> (Kubelet, PathBuf) {
    let dir = tmp.path().join("volume");
    let mut k = Kubelet::new(&dir, Options::default());
    assert!(k.write(&[("app.conf", b"v0")]), "kubelet published nothing");
    (k, dir)
}

/// A kubelet update of `app.conf` to `content`: one restart under `--watch`.
fn update(k: &mut Kubelet, content: &str) {
    assert!(k.write(&[("app.conf", content.as_bytes())]), "kubelet published nothing");
}

/// Runs `reinit LISTEN_ARGS --watch VOLUME -- fake_app --fds --listen-report`, then `RESTARTS`
/// kubelet updates; calls `check` on every start (the first and each restart) with reinit's
/// `Proc`, and asserts every start is a new process.
fn every_start(tag: &str, listen_args: &[&str], mut check: impl FnMut(&Start, &mut Proc)) {
    let tmp = TempDir::new(tag);
    let (mut k, dir) = volume(&tmp);
    let dir = s(&dir);
    let mut args: Vec<&str> = listen_args.to_vec();
    args.extend(["--watch", &dir]);
    let mut p = Proc::spawn(reinit_cmd(fake_app_argv(&args)));
    let mut pids = Vec::new();
    for i in 0..=RESTARTS {
        if i > 0 {
            update(&mut k, &format!("v{i}"));
        }
        let start = next_start(&mut p);
        assert!(!pids.contains(&start.pid), "start {i} is not a new process: {}\n{}", start.text, p.dump());
        pids.push(start.pid);
        check(&start, &mut p);
    }
}

// ---------------------------------------------------------------------------------------------
// What every start sees

#[test]
fn tcp_socket_at_fd3_on_first_start_and_after_restarts() {
    let mut held = None;
    every_start("listen-tcp", &["--listen", "tcp:127.0.0.1:0"], |start, p| {
        // The very socket reinit bound at the beginning, every time, listening on loopback.
        let inode = socket_inode(start.pid, 3).expect("fd 3 of the app is a socket");
        let l = tcp_listening_by_inode(inode).unwrap_or_else(|| panic!("fd 3 is not a listening TCP socket"));
        // the default name carries the port actually bound
        start.assert_sockets(1, &format!("tcp-{}", l.port), "tcp-listening", p);
        assert!(!l.v6, "{l:?}");
        assert_eq!(*held.get_or_insert(l), l, "a restart got another socket than the first start");
        assert!(socket_inodes(p.pid()).contains(&inode), "reinit does not hold the app's socket itself");
        TcpStream::connect(("127.0.0.1", l.port)).expect("connect to the held port");
    });
}

#[test]
fn tcp6_gives_a_tcp6_socket() {
    every_start("listen-tcp6", &["--listen", "tcp6:[::1]:0"], |start, p| {
        let inode = socket_inode(start.pid, 3).expect("fd 3 of the app is a socket");
        let l = tcp_listening_by_inode(inode).expect("a listening socket");
        start.assert_sockets(1, &format!("tcp6-{}", l.port), "tcp6-listening", p);
        assert!(l.v6, "{l:?}");
        TcpStream::connect(("::1", l.port)).expect("connect to [::1]");
    });
}

#[test]
fn unix_gives_a_unix_socket_removed_at_exit() {
    let tmp = TempDir::new("listen-unix");
    let path = tmp.path().join("app.sock");
    let spec = format!("unix:{}", s(&path));
    let (mut k, dir) = volume(&tmp);
    let mut p = Proc::spawn(reinit_cmd(fake_app_argv(&["--listen", &spec, "--watch", &s(&dir)])));
    for i in 0..=RESTARTS {
        if i > 0 {
            update(&mut k, &format!("v{i}"));
        }
        let start = next_start(&mut p);
        start.assert_sockets(1, "unix-app.sock", "unix-listening", &mut p);
        let inode = socket_inode(start.pid, 3).expect("fd 3 of the app is a socket");
        assert_eq!(unix_listening_path(inode).as_deref(), Some(s(&path).as_str()));
        UnixStream::connect(&path).expect("connect to the socket file");
    }
    p.signal(libc::SIGTERM);
    assert_eq!(p.wait_code(DEADLINE), 0, "{}", p.dump());
    assert!(!path.exists(), "reinit created {} and left it behind at exit", path.display());
}

#[test]
fn several_sockets_in_order_with_names_and_no_other_fd() {
    let tmp = TempDir::new("listen-several");
    let path = tmp.path().join("b.sock");
    let b = format!("b=unix:{}", s(&path));
    every_start("listen-several", &["--listen", "a=tcp:127.0.0.1:0", "--listen", &b], |start, p| {
        start.assert_sockets(2, "a:b", "tcp-listening", p);
        let fd4 = socket_inode(start.pid, 4).expect("fd 4 of the app is a socket");
        assert_eq!(
            unix_listening_path(fd4).as_deref(),
            Some(s(&path).as_str()),
            "fd 4 is b, the unix socket"
        );
    });
}

#[test]
fn default_names_follow_the_addresses() {
    // `tcp-PORT` needs a known port: take a free one and give it back (another process may grab
    // it in between: then reinit fails with 125 and we try another).
    for _ in 0..5 {
        let tmp = TempDir::new("listen-names");
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let port6 = TcpListener::bind("[::1]:0").unwrap().local_addr().unwrap().port();
        let tcp = format!("tcp:127.0.0.1:{port}");
        let tcp6 = format!("tcp6:[::1]:{port6}");
        let unix = format!("unix:{}", s(&tmp.path().join("c.sock")));
        let argv = fake_app_argv(&["--listen", &tcp, "--listen", &tcp6, "--listen", &unix]);
        let mut p = Proc::spawn(reinit_cmd(argv));
        if !poll_until(DEADLINE, || p.count("listen ") > 0 || p.try_exit().is_some())
            || p.try_exit().is_some()
        {
            let err = p.stderr_so_far();
            assert!(err.contains("Address already in use"), "{}", p.dump());
            continue; // the port was taken meanwhile
        }
        let start = next_start(&mut p);
        start.assert_sockets(3, &format!("tcp-{port}:tcp6-{port6}:unix-c.sock"), "tcp-listening", &mut p);
        return;
    }
    panic!("no free port found in 5 tries");
}

#[test]
fn without_listen_no_listen_env_and_no_fd3() {
    let mut cmd = reinit_cmd(fake_app_argv(&[]));
    for name in ["LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES"] {
        cmd.env_remove(name);
    }
    let mut p = Proc::spawn(cmd);
    let start = next_start(&mut p);
    let ok = (start.listen_fds.as_str(), start.listen_pid.as_str(), start.names.as_str(), start.fd3.as_str())
        == ("-", "-", "-", "none-not")
        && start.open == "0,1,2";
    assert!(ok, "without --listen the app must see no LISTEN_* and only fds 0,1,2:\n{}", start.text);
}

// ---------------------------------------------------------------------------------------------
// Bind failures

/// Runs reinit with `reinit_args` (the app would be fake_app) and expects exit 125 with a
/// message naming `addr`, and no app started.
fn expect_bind_failure(reinit_args: &[&str], addr: &str) {
    let mut p = Proc::spawn(reinit_cmd(fake_app_argv(reinit_args)));
    assert_eq!(p.wait_code(DEADLINE), 125, "{}", p.dump());
    let err = p.stderr_so_far();
    assert!(err.contains(addr), "the message must name {addr}\n{}", p.dump());
    assert!(p.lines_so_far().is_empty(), "no app may start\n{}", p.dump());
}

#[test]
fn bind_failure_exits_125_naming_the_address_and_starts_nothing() {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = format!("tcp:127.0.0.1:{}", taken.local_addr().unwrap().port());
    expect_bind_failure(&["--listen", &addr], &addr);
    // Also when it is not the first socket.
    expect_bind_failure(&["--listen", "tcp:127.0.0.1:0", "--listen", &addr], &addr);
}

#[test]
fn bind_failure_removes_the_unix_socket_file_reinit_created() {
    let tmp = TempDir::new("listen-fail-unix");
    let path = tmp.path().join("first.sock");
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = format!("tcp:127.0.0.1:{}", taken.local_addr().unwrap().port());
    expect_bind_failure(&["--listen", &format!("unix:{}", s(&path)), "--listen", &addr], &addr);
    assert!(!path.exists(), "reinit created {} and left it behind when it could not start", path.display());
}

#[test]
fn unix_path_that_is_a_regular_file_is_not_deleted() {
    let tmp = TempDir::new("listen-regular");
    let path = tmp.path().join("data.sock");
    std::fs::write(&path, "keep me").unwrap();
    let spec = format!("unix:{}", s(&path));
    expect_bind_failure(&["--listen", &spec], &spec);
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "keep me");
}

#[test]
fn unix_socket_in_use_is_left_alone() {
    let tmp = TempDir::new("listen-busy");
    let path = tmp.path().join("busy.sock");
    let busy = UnixListener::bind(&path).unwrap();
    let spec = format!("unix:{}", s(&path));
    expect_bind_failure(&["--listen", &spec], &spec);
    assert!(std::fs::symlink_metadata(&path).unwrap().file_type().is_socket(), "the socket file is gone");
    UnixStream::connect(&path).expect("the test's listener still gets connections");
    drop(busy);
}

#[test]
fn stale_unix_socket_file_is_replaced_and_removed_at_exit() {
    let tmp = TempDir::new("listen-stale");
    let path = tmp.path().join("stale.sock");
    drop(UnixListener::bind(&path).unwrap()); // the file stays, nobody listens: a crash leftover
    assert!(path.exists());
    let spec = format!("unix:{}", s(&path));
    let mut p = Proc::spawn(reinit_cmd(fake_app_argv(&["--listen", &spec])));
    let start = next_start(&mut p);
    start.assert_sockets(1, "unix-stale.sock", "unix-listening", &mut p);
    UnixStream::connect(&path).expect("connect to the new socket");
    p.signal(libc::SIGTERM);
    assert_eq!(p.wait_code(DEADLINE), 0, "{}", p.dump());
    assert!(!path.exists(), "reinit re-created {} and left it behind at exit", path.display());
}

/// What stands at a unix socket's path after reinit's own socket file was taken away.
enum Replacement {
    RegularFile,
    /// Another program's socket, still listening.
    Socket(UnixListener),
}

/// The socket file is removed at exit only while it is still the one reinit created: whatever
/// was put at its path meanwhile (a regular file, another program's socket) is left alone.
#[test]
fn a_replaced_unix_socket_file_is_left_alone_at_exit() {
    let tmp = TempDir::new("listen-replaced");
    for kind in ["regular", "socket"] {
        let path = tmp.path().join(format!("{kind}.sock"));
        let spec = format!("unix:{}", s(&path));
        let mut p = Proc::spawn(reinit_cmd(fake_app_argv(&["--listen", &spec])));
        next_start(&mut p).assert_sockets(1, &format!("unix-{kind}.sock"), "unix-listening", &mut p);
        std::fs::remove_file(&path).unwrap();
        let replacement = match kind {
            "regular" => {
                std::fs::write(&path, "not reinit's").unwrap();
                Replacement::RegularFile
            }
            _ => Replacement::Socket(UnixListener::bind(&path).unwrap()),
        };
        p.signal(libc::SIGTERM);
        assert_eq!(p.wait_code(DEADLINE), 0, "{}", p.dump());
        match replacement {
            Replacement::RegularFile => assert_eq!(
                std::fs::read_to_string(&path).ok().as_deref(),
                Some("not reinit's"),
                "reinit removed a regular file that replaced its socket"
            ),
            Replacement::Socket(other) => {
                assert!(path.exists(), "reinit removed another program's socket at its path");
                UnixStream::connect(&path).expect("the other program's socket still gets connections");
                drop(other);
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Socket activation of reinit itself

/// `n` in decimal into `buf` (no allocation: used between fork and exec).
fn decimal(mut n: u32, buf: &mut [u8; 12]) -> &[u8] {
    let mut i = buf.len() - 1;
    buf[i] = 0;
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            return &buf[i..];
        }
    }
}

/// `reinit ARGS` started the way systemd socket-activates a service: `sock` at fd 3,
/// `LISTEN_FDS=1`, `LISTEN_FDNAMES=names` and `LISTEN_PID` = reinit's own pid, set in the child
/// between fork and exec (the pid is not known before the fork). The environment is left to
/// `environ` (no `Command::env*`, which would freeze it before the fork), so `REINIT_*`
/// variables of the test environment are unset there too.
#[allow(unsafe_code)]
fn socket_activated(sock: &impl AsRawFd, names: &str, args: &[String]) -> Command {
    use std::os::unix::process::CommandExt;
    let mut cmd = Command::new(reinit_bin());
    cmd.args(args).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    close_inherited_fds(&mut cmd);
    let unset: Vec<CString> = std::env::vars_os()
        .filter_map(|(k, _)| {
            k.to_str().filter(|k| k.starts_with("REINIT_")).map(|k| CString::new(k).unwrap())
        })
        .collect();
    let names = CString::new(names).unwrap();
    let fd = sock.as_raw_fd();
    // SAFETY: between fork and exec the closure only makes libc calls on valid NUL-terminated
    // strings it owns (setenv/unsetenv allocate, which glibc's fork makes safe in the child).
    unsafe {
        cmd.pre_exec(move || {
            // dup2 onto itself would keep close-on-exec: clear the flag in every case.
            if (fd != 3 && libc::dup2(fd, 3) < 0) || libc::fcntl(3, libc::F_SETFD, 0) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            let mut buf = [0u8; 12];
            let pid = decimal(libc::getpid() as u32, &mut buf);
            for name in &unset {
                libc::unsetenv(name.as_ptr());
            }
            libc::setenv(c"LISTEN_FDS".as_ptr(), c"1".as_ptr(), 1);
            libc::setenv(c"LISTEN_FDNAMES".as_ptr(), names.as_ptr(), 1);
            libc::setenv(c"LISTEN_PID".as_ptr(), pid.as_ptr().cast(), 1);
            Ok(())
        });
    }
    cmd
}

#[test]
fn socket_activated_reinit_passes_the_socket_on() {
    let tmp = TempDir::new("listen-activated");
    let (mut k, dir) = volume(&tmp);
    let sock = TcpListener::bind("127.0.0.1:0").unwrap();
    let inode = own_inode(&sock);
    let path = tmp.path().join("b.sock");
    // The adopted socket comes first (fd 3), then reinit's own --listen (fd 4).
    let args = fake_app_argv(&["--listen", &format!("b=unix:{}", s(&path)), "--watch", &s(&dir)]);
    let mut p = Proc::spawn(socket_activated(&sock, "web", &args));
    for i in 0..=RESTARTS {
        if i > 0 {
            update(&mut k, &format!("v{i}"));
        }
        let start = next_start(&mut p);
        start.assert_sockets(2, "web:b", "tcp-listening", &mut p);
        assert_eq!(socket_inode(start.pid, 3), Some(inode), "fd 3 is not the socket the parent passed");
        let fd4 = socket_inode(start.pid, 4).expect("fd 4 of the app is a socket");
        assert_eq!(unix_listening_path(fd4).as_deref(), Some(s(&path).as_str()));
    }
    // reinit itself holds the adopted socket, so it outlives every app start.
    assert!(socket_inodes(p.pid()).contains(&inode), "reinit does not hold the adopted socket");
}

#[test]
fn socket_activation_for_another_process_is_not_adopted() {
    // LISTEN_PID names someone else: reinit adopts nothing and passes the environment (and the
    // inherited fd, like any inherited fd) through untouched.
    let sock = TcpListener::bind("127.0.0.1:0").unwrap();
    let mut cmd = socket_activated(&sock, "web", &fake_app_argv(&[]));
    // SAFETY: only setenv on static strings, between fork and exec.
    #[allow(unsafe_code)]
    unsafe {
        std::os::unix::process::CommandExt::pre_exec(&mut cmd, || {
            libc::setenv(c"LISTEN_PID".as_ptr(), c"1".as_ptr(), 1);
            Ok(())
        });
    }
    let mut p = Proc::spawn(cmd);
    let start = next_start(&mut p);
    assert_eq!(
        (start.listen_fds.as_str(), start.listen_pid.as_str(), start.names.as_str()),
        ("1", "1", "web"),
        "{}",
        start.text
    );
}

// ---------------------------------------------------------------------------------------------
// Connections across restarts (config_server)

/// `reinit --listen tcp:127.0.0.1:0 --watch DIR -- config_server --config DIR/app.conf
/// --start-delay MS` and the port reinit holds.
fn config_server_under_reinit(dir: &Path, start_delay_ms: u32) -> (Proc, u16) {
    let conf = s(&dir.join("app.conf"));
    let delay = start_delay_ms.to_string();
    let args = [
        "--listen".to_string(),
        "tcp:127.0.0.1:0".into(),
        "--watch".into(),
        s(dir),
        "--".into(),
        example("config_server"),
        "--config".into(),
        conf,
        "--start-delay".into(),
        delay,
    ];
    let mut p = Proc::spawn(reinit_cmd(args));
    let l = wait_tcp_listener(&mut p);
    (p, l.port)
}

/// Sends `GET /` on a connected stream and returns the answer's `(pid, config)`.
fn get(mut stream: TcpStream) -> std::io::Result<(i32, String)> {
    stream.set_read_timeout(Some(DEADLINE))?;
    stream.write_all(b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer)?;
    let body = answer.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
    let pid = body.lines().find_map(|l| l.strip_prefix("pid=")?.parse().ok());
    let config = body.lines().find_map(|l| l.strip_prefix("config=")).unwrap_or("").to_string();
    pid.map(|pid| (pid, config)).ok_or_else(|| std::io::Error::other(format!("no pid= in {answer:?}")))
}

fn connect(port: u16) -> std::io::Result<TcpStream> {
    TcpStream::connect_timeout(&SocketAddr::from(([127, 0, 0, 1], port)), DEADLINE)
}

#[test]
fn connection_during_a_restart_waits_and_reaches_the_new_app() {
    let tmp = TempDir::new("listen-window");
    let (mut k, dir) = volume(&tmp);
    let (mut p, port) = config_server_under_reinit(&dir, 1500);
    // Waits in the backlog until the slow first start serves.
    let (mut old, config) = connect(port).and_then(get).unwrap_or_else(|e| panic!("{e}\n{}", p.dump()));
    assert_eq!(config, "v0");
    // The new app sleeps 1.5 s before it serves: a connection made once the old one is gone
    // lands in that window. Should the machine stall so long that the new app already served,
    // the attempt did not test the window: try again.
    for attempt in 1..=3 {
        let v = format!("v{attempt}");
        let serving = p.stderr_so_far().matches(" serving ").count();
        update(&mut k, &v);
        assert!(poll_until(DEADLINE, || !alive(old)), "the old app {old} never stopped\n{}", p.dump());
        let stream =
            connect(port).unwrap_or_else(|e| panic!("connect during the restart: {e}\n{}", p.dump()));
        let in_window = p.stderr_so_far().matches(" serving ").count() == serving;
        let (pid, config) =
            get(stream).unwrap_or_else(|e| panic!("request during the restart: {e}\n{}", p.dump()));
        assert_ne!(pid, old, "answered by the old app");
        assert_eq!(config, v, "answered with the old config\n{}", p.dump());
        if in_window {
            return;
        }
        eprintln!("attempt {attempt}: the new app was serving before the connection; again");
        old = pid;
    }
    panic!("never connected while the app was restarting\n{}", p.dump());
}

/// The counts `load` prints at the end.
#[derive(Debug)]
struct LoadCounts {
    served: u64,
    refused: u64,
    reset: u64,
    timeout: u64,
    short: u64,
    other: u64,
    line: String,
}

impl LoadCounts {
    fn parse(line: &str) -> LoadCounts {
        let n = |k: &str| -> u64 {
            field(line, k).and_then(|v| v.parse().ok()).unwrap_or_else(|| panic!("no {k}= in {line:?}"))
        };
        LoadCounts {
            served: n("served"),
            refused: n("refused"),
            reset: n("reset"),
            timeout: n("timeout"),
            short: n("short"),
            other: n("other"),
            line: line.to_string(),
        }
    }

    fn failed(&self) -> u64 {
        self.refused + self.reset + self.timeout + self.short + self.other
    }
}

#[test]
fn load_no_request_fails_across_10_restarts() {
    let tmp = TempDir::new("listen-load");
    let (mut k, dir) = volume(&tmp);
    let (mut p, port) = config_server_under_reinit(&dir, 300);
    let stop = tmp.path().join("stop");
    let mut cmd = Command::new(fixture("load"));
    cmd.args(["--addr", &format!("127.0.0.1:{port}"), "--threads", "8", "--timeout-ms", "5000"]);
    cmd.args(["--until-file", &s(&stop), "--max-ms", "120000"]);
    prepare(&mut cmd);
    let mut load = Proc::spawn(cmd);
    let is_pid = |l: &str| l.starts_with("pid ");
    let mut pids = vec![load.wait_line(is_pid, DEADLINE)];
    for i in 1..=LOAD_RESTARTS {
        update(&mut k, &format!("v{i}"));
        // The restart is visible when answers carry a new pid.
        let pid = load.wait_line(is_pid, DEADLINE);
        assert!(!pids.contains(&pid), "{pid} twice");
        pids.push(pid);
    }
    std::fs::write(&stop, "").unwrap();
    assert_eq!(load.wait_code(DEADLINE), 0, "{}", load.dump());
    let last = load.lines_so_far().pop().unwrap_or_default();
    let counts = LoadCounts::parse(&last);
    let restarted = |p: &mut Proc| p.stderr_so_far().matches("restarted the app").count();
    poll_until(DEADLINE, || restarted(&mut p) >= LOAD_RESTARTS);
    let restarts = restarted(&mut p);
    eprintln!(
        "load with --listen: {} (failed={}, restarts={restarts}, app pids seen={})",
        counts.line,
        counts.failed(),
        pids.len()
    );
    assert_eq!(restarts, LOAD_RESTARTS, "{}", p.dump());
    assert!(counts.served > 0, "nothing served: {counts:?}");
    assert_eq!(
        counts.failed(),
        0,
        "requests failed across restarts: {counts:?}\n{}\n{}",
        load.dump(),
        p.dump()
    );
}
