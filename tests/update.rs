//! Restarts nobody notices: `--update-order start-first` (the new app starts beside the old one,
//! which is stopped once the new one is ready) and `--ready` (notify, exec:, http://, delay:),
//! driving the real binary against the `fake_app` fixture and the example server under load.

use crate::util::http_server::free_port;
use crate::util::kubelet;
use crate::util::{
    DEADLINE, KillOnDrop, Proc, TempDir, alive, example, field, fixture, is_ready, num_field, path_str as s,
    poll_until, prepare, reinit_cmd, with_app,
};
use std::fs;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// A config file `app.yaml` = v0 in a fresh directory, and a readiness gate file next to it.
fn setup(tag: &str) -> (TempDir, PathBuf, PathBuf) {
    let tmp = TempDir::new(tag);
    let file = tmp.path().join("app.yaml");
    fs::write(&file, "v0").unwrap();
    let gate = tmp.path().join("gate");
    (tmp, file, gate)
}

/// Index of the first stdout line matching `pat` at or after `from`.
fn line_index(p: &mut Proc, from: usize, pat: impl Fn(&str) -> bool) -> Option<usize> {
    p.lines_so_far().iter().enumerate().skip(from).find(|(_, l)| pat(l)).map(|(i, _)| i)
}

#[test]
fn start_first_stops_the_old_app_only_once_the_new_one_is_ready() {
    let (_tmp, file, _) = setup("start-first-notify");
    let f = s(&file);
    let args = ["-v", "--update-order", "start-first", "--ready", "notify", "-w", &f];
    let mut p =
        Proc::spawn(reinit_cmd(with_app(&args, &["--config", &f, "--notify", "--start-delay", "300"])));
    let old = num_field(&p.wait_line(is_ready, DEADLINE), "pid");
    p.wait_line("notified", DEADLINE);
    p.wait_stderr("is ready");
    let before = p.lines_so_far().len();
    kubelet::write_in_place(&file, b"v1");
    let new = num_field(&p.wait_line(is_ready, DEADLINE), "pid");
    assert_ne!(old, new);
    p.wait_line(|l: &str| l == "signal 15", DEADLINE); // the old app's stop
    let ready_at = line_index(&mut p, before, is_ready).unwrap();
    let stop_at = line_index(&mut p, before, |l| l == "signal 15").unwrap();
    let notified_at = line_index(&mut p, ready_at, |l| l == "notified").unwrap();
    assert!(stop_at > notified_at, "the old app was stopped before the new one was ready\n{}", p.dump());
    let line = p.wait_stderr("restarted the app in");
    assert!(line.contains(&format!("(pid {new}, ready); the old app (pid {old}) is stopping")), "{line}");
    assert!(poll_until(DEADLINE, || !alive(old)), "{}", p.dump());
    assert!(alive(new));
    p.signal(libc::SIGTERM);
    assert_eq!(p.wait_code(DEADLINE), 0, "{}", p.dump());
}

/// reinit with start-first and `--ready exec:test -e GATE`: the first app started and ready,
/// then the gate removed, so a new app is not ready until the test creates it again. Returns
/// the directory, the watched file, the gate, reinit and the first app's pid.
fn gated(tag: &str, extra: &[&str]) -> (TempDir, PathBuf, PathBuf, Proc, i32) {
    let (tmp, file, gate) = setup(tag);
    fs::write(&gate, "").unwrap();
    let f = s(&file);
    let ready = format!("exec:test -e {}", s(&gate));
    let mut args = vec!["-v", "--update-order", "start-first", "--ready", &ready, "-w", &f];
    args.extend_from_slice(extra);
    let mut p = Proc::spawn(reinit_cmd(with_app(&args, &["--config", &f])));
    let old = num_field(&p.wait_line(is_ready, DEADLINE), "pid");
    p.wait_stderr("is ready");
    fs::remove_file(&gate).unwrap();
    (tmp, file, gate, p, old)
}

#[test]
fn a_new_app_never_ready_leaves_the_old_one_serving_and_the_content_refused() {
    let (_tmp, file, gate, mut p, old) = gated("start-first-timeout", &["--ready-timeout", "1s"]);
    kubelet::write_in_place(&file, b"v1");
    let new = num_field(&p.wait_line(is_ready, DEADLINE), "pid");
    let line = p.wait_stderr("was not ready within 1 s");
    assert!(line.contains(&format!("the old app (pid {old}) keeps serving")), "{line}");
    assert!(poll_until(DEADLINE, || !alive(new)), "the new app was not stopped\n{}", p.dump());
    assert!(alive(old), "{}", p.dump());
    // The same content again is not retried; new content is, and this time it takes over.
    kubelet::write_in_place(&file, b"v1");
    let retried = poll_until(Duration::from_millis(600), || p.count(is_ready) > 2);
    assert!(!retried, "the refused content was tried again\n{}", p.dump());
    fs::write(&gate, "").unwrap();
    kubelet::write_in_place(&file, b"v2");
    let newest = num_field(&p.wait_line(is_ready, DEADLINE), "pid");
    p.wait_stderr(&format!("(pid {newest}, ready); the old app (pid {old}) is stopping"));
    assert!(poll_until(DEADLINE, || !alive(old)), "{}", p.dump());
    p.signal(libc::SIGTERM);
    p.wait_exit(DEADLINE);
}

#[test]
fn a_new_app_that_exits_first_leaves_the_old_one_serving() {
    let (_tmp, file, _) = setup("start-first-exit");
    let f = s(&file);
    // The app refuses to run with a config that says "crash".
    let script = format!("grep -q crash {f} && exit 3; exec {} --config {f}", crate::util::fake_app());
    let args = [
        "-v",
        "--update-order",
        "start-first",
        "--ready",
        "delay:200ms",
        "-w",
        &f,
        "--",
        "sh",
        "-c",
        &script,
    ];
    let mut p = Proc::spawn(reinit_cmd(args));
    let old = num_field(&p.wait_line(is_ready, DEADLINE), "pid");
    p.wait_stderr("is ready");
    kubelet::write_in_place(&file, b"crash");
    let line = p.wait_stderr("exited with status 3 before it was ready");
    assert!(line.contains(&format!("the old app (pid {old}) keeps serving")), "{line}");
    assert!(alive(old));
    assert_eq!(p.count(|l: &str| l == "signal 15"), 0, "the old app was signalled\n{}", p.dump());
    p.signal(libc::SIGTERM);
    assert_eq!(p.wait_code(DEADLINE), 0, "{}", p.dump());
}

#[test]
fn sigterm_during_the_overlap_stops_both_apps() {
    let (_tmp, file, _gate, mut p, old) = gated("start-first-term", &[]);
    kubelet::write_in_place(&file, b"v1");
    let new = num_field(&p.wait_line(is_ready, DEADLINE), "pid");
    let _guards = (KillOnDrop(old), KillOnDrop(new));
    p.signal(libc::SIGTERM);
    assert_eq!(p.wait_code(DEADLINE), 0, "{}", p.dump());
    assert_eq!(p.count(|l: &str| l == "signal 15"), 2, "both got the stop signal\n{}", p.dump());
    assert!(!alive(old) && !alive(new));
    assert_eq!(p.count(is_ready), 2, "nothing else started\n{}", p.dump());
}

#[test]
fn notify_messages_from_another_process_are_ignored() {
    let (_tmp, file, _) = setup("notify-forged");
    let f = s(&file);
    let args = ["-v", "--ready", "notify", "--ready-timeout", "2s", "-w", &f];
    let mut p = Proc::spawn(reinit_cmd(with_app(&args, &["--config", &f, "--env", "NOTIFY_SOCKET"])));
    let env = p.wait_line("env NOTIFY_SOCKET=@", DEADLINE);
    p.wait_line(is_ready, DEADLINE);
    // READY=1 from the test process itself, not the app: must not count.
    use std::os::linux::net::SocketAddrExt;
    let name = env.strip_prefix("env NOTIFY_SOCKET=@").unwrap();
    let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
    let sock = std::os::unix::net::UnixDatagram::unbound().unwrap();
    sock.send_to_addr(b"READY=1", &addr).unwrap();
    let line = p.wait_stderr("was not ready within 2 s");
    assert!(!p.stderr_so_far().contains("is ready"), "a forged READY=1 counted\n{}", p.dump());
    assert!(line.contains("it keeps running"), "{line}");
    p.signal(libc::SIGTERM);
    p.wait_exit(DEADLINE);
}

#[test]
fn readiness_completes_a_stop_first_restart_and_the_line_says_how_long() {
    let (_tmp, file, _) = setup("ready-delay");
    let f = s(&file);
    let args = ["--ready", "delay:400ms", "-w", &f];
    let mut p = Proc::spawn(reinit_cmd(with_app(&args, &["--config", &f])));
    p.wait_line(is_ready, DEADLINE);
    kubelet::write_in_place(&file, b"v1");
    let new = num_field(&p.wait_line(is_ready, DEADLINE), "pid");
    let line = p.wait_stderr("restarted the app in");
    assert!(line.contains(&format!("(pid {new}, ready)")), "{line}");
    let took = line.split("restarted the app in ").nth(1).and_then(|r| r.split(" ms").next()).unwrap();
    assert!(took.parse::<u64>().is_ok_and(|ms| ms >= 400), "not after the delay: {line}");
    p.signal(libc::SIGTERM);
    p.wait_exit(DEADLINE);
}

/// A health endpoint on a free port answering 503 until `healthy` is set, then 200.
fn health_endpoint(healthy: Arc<AtomicBool>) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for mut stream in listener.incoming().flatten() {
            let mut buf = [0u8; 1024];
            let _ = stream.read(&mut buf);
            let status = if healthy.load(Ordering::SeqCst) { "200 OK" } else { "503 Service Unavailable" };
            let _ = write!(stream, "HTTP/1.1 {status}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
        }
    });
    port
}

#[test]
fn http_readiness_waits_for_a_2xx() {
    let (_tmp, file, _) = setup("ready-http");
    let healthy = Arc::new(AtomicBool::new(true));
    let port = health_endpoint(Arc::clone(&healthy));
    let f = s(&file);
    let url = format!("http://127.0.0.1:{port}/healthz");
    let args = ["-v", "--update-order", "start-first", "--ready", &url, "-w", &f];
    let mut p = Proc::spawn(reinit_cmd(with_app(&args, &["--config", &f])));
    let old = num_field(&p.wait_line(is_ready, DEADLINE), "pid");
    p.wait_stderr("is ready");
    healthy.store(false, Ordering::SeqCst);
    kubelet::write_in_place(&file, b"v1");
    let new = num_field(&p.wait_line(is_ready, DEADLINE), "pid");
    let early = poll_until(Duration::from_millis(500), || p.count(|l: &str| l == "signal 15") > 0);
    assert!(!early, "the old app was stopped while the endpoint said 503\n{}", p.dump());
    healthy.store(true, Ordering::SeqCst);
    p.wait_stderr(&format!("(pid {new}, ready); the old app (pid {old}) is stopping"));
    assert!(poll_until(DEADLINE, || !alive(old)));
    p.signal(libc::SIGTERM);
    p.wait_exit(DEADLINE);
}

/// The example server under reinit with `--listen` and start-first, a load client against it,
/// and `updates` config changes; returns the load's final counts line and reinit.
fn start_first_under_load(tag: &str, extra: &[&str], first: &str, updates: &[&str]) -> (String, Proc) {
    let tmp = TempDir::new(tag);
    let file = tmp.path().join("app.conf");
    fs::write(&file, "v0").unwrap();
    let port = free_port();
    let listen = format!("tcp:127.0.0.1:{port}");
    let f = s(&file);
    let mut args = vec!["-v", "--listen", &listen, "--update-order", "start-first", "-w", &f];
    args.extend_from_slice(extra);
    let server = example("config_server");
    args.extend_from_slice(&["--", &server, "--config", &f, "--start-delay", "500"]);
    let mut p = Proc::spawn(reinit_cmd(&args));
    p.wait_stderr(first); // the first app's readiness is settled
    let stop = tmp.path().join("stop");
    let mut cmd = Command::new(fixture("load"));
    cmd.args(["--addr", &format!("127.0.0.1:{port}"), "--threads", "4", "--timeout-ms", "5000"]);
    cmd.args(["--until-file", &s(&stop), "--max-ms", "120000"]);
    prepare(&mut cmd);
    let mut load = Proc::spawn(cmd);
    load.wait_line(|l: &str| l.starts_with("pid "), DEADLINE);
    for (i, content) in updates.iter().enumerate() {
        kubelet::write_in_place(&file, content.as_bytes());
        let n = i + 1;
        let outcome = |p: &mut Proc| {
            let err = p.stderr_so_far();
            err.matches("restarted the app in").count() + err.matches("keeps serving").count()
        };
        assert!(poll_until(DEADLINE, || outcome(&mut p) >= n), "update {n} never ended\n{}", p.dump());
    }
    fs::write(&stop, "").unwrap();
    assert_eq!(load.wait_code(DEADLINE), 0, "{}", load.dump());
    let counts = load.lines_so_far().pop().unwrap_or_default();
    (counts, p)
}

#[test]
fn start_first_under_load_fails_no_request_and_waits_for_no_start_up() {
    let updates = ["v1", "v2", "v3"];
    let (counts, mut p) =
        start_first_under_load("start-first-load", &["--ready", "notify"], "is ready", &updates);
    for key in ["refused", "reset", "timeout", "short", "other"] {
        assert_eq!(field(&counts, key), Some("0"), "{key}: {counts}\n{}", p.dump());
    }
    let max_ms: u64 = field(&counts, "max_ms").and_then(|v| v.parse().ok()).unwrap();
    // The new app takes 500 ms to start; with start-first nobody waits for that.
    assert!(max_ms < 500, "a request waited for a start-up: {counts}\n{}", p.dump());
    p.signal(libc::SIGTERM);
    assert_eq!(p.wait_code(DEADLINE), 0, "{}", p.dump());
}

#[test]
fn a_failed_start_first_update_under_load_fails_no_request() {
    let extra = ["--ready", "exec:false", "--ready-timeout", "1s"];
    let (counts, mut p) = start_first_under_load("start-first-fail-load", &extra, "was not ready", &["v1"]);
    for key in ["refused", "reset", "timeout", "short", "other"] {
        assert_eq!(field(&counts, key), Some("0"), "{key}: {counts}\n{}", p.dump());
    }
    assert!(p.stderr_so_far().contains("keeps serving"), "{}", p.dump());
    p.signal(libc::SIGTERM);
    p.wait_exit(DEADLINE);
}

#[test]
fn two_pid_1s_in_one_network_namespace_each_get_their_own_notify_socket() {
    // The containers of a pod share their network namespace, where abstract socket names live,
    // and each may run reinit as its PID 1.
    let (_tmp, file, _) = setup("notify-two-pid1");
    let f = s(&file);
    let args = with_app(&["-v", "--ready", "notify", "-w", &f], &["--config", &f, "--notify"]);
    let mut a = Proc::spawn(crate::util::as_pid1(&args));
    let mut b = Proc::spawn(crate::util::as_pid1(&args));
    for p in [&mut a, &mut b] {
        p.wait_line("notified", DEADLINE);
        p.wait_stderr("is ready");
        p.signal(libc::SIGTERM);
        assert_eq!(p.wait_code(DEADLINE), 0, "{}", p.dump());
    }
}

#[test]
fn a_silent_health_endpoint_is_asked_again_and_never_spins_the_loop() {
    // Accepts connections and never answers: each check must end (and a new one start) without
    // reinit polling a deadline that has passed, over and over.
    let (_tmp, file, _) = setup("ready-silent");
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let held = std::thread::spawn(move || listener.incoming().take(64).flatten().collect::<Vec<_>>());
    let f = s(&file);
    let url = format!("http://127.0.0.1:{port}/healthz");
    let args = ["--ready", &url, "--ready-timeout", "12s", "-w", &f];
    let mut p = Proc::spawn(reinit_cmd(with_app(&args, &["--config", &f])));
    p.wait_line(is_ready, DEADLINE);
    let cpu = |pid: i32| -> u64 {
        let stat = fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
        let rest = &stat[stat.rfind(')').unwrap() + 2..];
        let f: Vec<&str> = rest.split_whitespace().collect();
        f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap() // utime + stime, ticks
    };
    let before = cpu(p.pid());
    p.wait_stderr("was not ready within 12 s"); // past one 10 s HTTP attempt
    let used = cpu(p.pid()) - before;
    assert!(used < 50, "reinit used {used} ticks of CPU while the endpoint was silent\n{}", p.dump());
    p.signal(libc::SIGTERM);
    p.wait_exit(DEADLINE);
    drop(held);
}
