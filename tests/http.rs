//! `--on-change http://…` and `--metrics` against a scripted local server
//! (`tests/util/http_server.rs`): every status-code path (2xx, 4xx, 5xx then 2xx, a slow
//! answer, a reset connection), sidecar and wrapping modes, IPv6, the usage errors, and the
//! metrics endpoint's limits (idle clients, too many clients, oversized requests).
//!
//! Readiness: reinit prints nothing at start; it answers `/metrics` only from its event loop,
//! which runs after the watched paths were scanned, so an answer means updates will be seen.
//! "Exactly N requests" is checked by waiting for the Nth, then watching a quiet window (a
//! measurement window, several debounce periods) in which no further one may arrive.

use crate::util::http_server::{Reply, Server, free_port, get, sample};
use crate::util::kubelet::{Kubelet, Options};
use crate::util::{DEADLINE, Proc, TempDir, num_field, poll_until, reinit_cmd, with_app};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

const QUIET: Duration = Duration::from_millis(600);

/// reinit watching a kubelet volume (`app.yaml`), with `--metrics` on a free port.
struct Reinit {
    p: Proc,
    metrics: SocketAddr,
    k: Kubelet,
    _tmp: TempDir,
}

impl Reinit {
    /// `reinit --watch VOLUME --metrics … ARGS` (ARGS may end with `-- COMMAND`).
    fn start(args: impl Fn(&str) -> Vec<String>) -> Reinit {
        let tmp = TempDir::new("http");
        let dir = tmp.path().join("volume");
        let mut k = Kubelet::new(&dir, Options::default());
        assert!(k.write(&[("app.yaml", b"v0")]));
        let metrics = SocketAddr::from(([127, 0, 0, 1], free_port()));
        let mut all = vec!["--watch".to_string(), dir.to_str().unwrap().to_string()];
        all.extend(["--metrics".to_string(), metrics.to_string()]);
        all.extend(args(dir.join("app.yaml").to_str().unwrap()));
        let mut p = Proc::spawn(reinit_cmd(&all));
        if !poll_until(DEADLINE, || get(metrics, "/metrics").is_ok()) {
            panic!("/metrics never answered\n{}", p.dump());
        }
        Reinit { p, metrics, k, _tmp: tmp }
    }

    fn update(&mut self, content: &str) {
        assert!(self.k.write(&[("app.yaml", content.as_bytes())]), "kubelet published nothing");
    }

    fn metric(&self, series: &str) -> f64 {
        let (code, body) = get(self.metrics, "/metrics").unwrap();
        assert_eq!(code, 200);
        sample(&body, series).unwrap_or_else(|| panic!("no {series} in\n{body}"))
    }

    fn http_actions(&self, result: &str) -> f64 {
        self.metric(&format!("reinit_actions_total{{action=\"http\",result=\"{result}\"}}"))
    }
}

/// Waits until `server` got `n` requests, then a quiet window in which no more arrive.
fn expect_requests(r: &mut Reinit, server: &Server, n: usize, quiet: Duration) {
    if !poll_until(DEADLINE, || server.count() >= n) {
        panic!("{} requests, expected {n}\n{}", server.count(), r.p.dump());
    }
    std::thread::sleep(quiet); // a measurement window, not synchronisation
    assert_eq!(server.count(), n, "more requests than expected\n{}", r.p.dump());
}

fn sidecar(url: &str) -> impl Fn(&str) -> Vec<String> + '_ {
    move |_| vec!["--on-change".into(), url.into()]
}

#[test]
fn one_post_per_kubelet_update_and_none_for_a_resync() {
    let server = Server::start("127.0.0.1", vec![Reply::Status(200, "OK", "")]);
    let url = server.url("/-/reload");
    let mut r = Reinit::start(sidecar(&url));
    for i in 1..=3 {
        r.update(&format!("v{i}"));
        expect_requests(&mut r, &server, i, QUIET);
    }
    // a resync and a no-op rewrite: no request
    r.k.resync_read();
    assert!(!r.k.write(&[("app.yaml", b"v3")]));
    std::thread::sleep(QUIET);
    assert_eq!(server.count(), 3, "{}", r.p.dump());
    let head = &server.requests()[0].head;
    assert!(head.starts_with("POST /-/reload HTTP/1.1\r\n"), "{head}");
    let host = format!("\r\nHost: {}\r\n", server.addr);
    for want in [host.as_str(), "\r\nContent-Length: 0\r\n", "\r\nConnection: close\r\n"] {
        assert!(head.contains(want), "{want:?} not in {head}");
    }
    assert_eq!(r.http_actions("success"), 3.0);
    assert_eq!(r.http_actions("failure"), 0.0);
    assert_eq!(r.metric("reinit_changes_acted_total"), 3.0);
    assert_eq!(r.metric("reinit_last_action_successful"), 1.0);
    let info = r.p.stderr_so_far();
    assert_eq!(info.matches("200 OK in").count(), 3, "one log line per reload:\n{info}");
}

#[test]
fn a_client_error_is_logged_with_its_body_and_not_retried() {
    let bad = Reply::Status(400, "Bad Request", "unknown field \"scrape_intervall\"\nsecond line\n");
    let server = Server::start("127.0.0.1", vec![bad]);
    let url = server.url("/-/reload");
    let mut r = Reinit::start(sidecar(&url));
    r.update("v1");
    // the first retry would come within 1 s
    expect_requests(&mut r, &server, 1, Duration::from_millis(1500));
    let err = r.p.stderr_so_far();
    assert!(
        err.contains("HTTP/1.1 400 Bad Request: unknown field \"scrape_intervall\"; not retried"),
        "{err}"
    );
    assert!(!err.contains("second line"), "{err}");
    assert_eq!(r.http_actions("failure"), 1.0);
    assert_eq!(r.metric("reinit_last_action_successful"), 0.0);
    // the next change is sent
    r.update("v2");
    expect_requests(&mut r, &server, 2, QUIET);
}

#[test]
fn server_errors_are_retried_with_backoff_until_success() {
    let busy = Reply::Status(503, "Service Unavailable", "");
    let server = Server::start("127.0.0.1", vec![busy.clone(), busy, Reply::Status(200, "OK", "")]);
    let url = server.url("/-/reload");
    let mut r = Reinit::start(sidecar(&url));
    r.update("v1");
    expect_requests(&mut r, &server, 3, Duration::from_millis(1500));
    let at: Vec<Instant> = server.requests().iter().map(|q| q.at).collect();
    let (first, second) = (at[1] - at[0], at[2] - at[1]);
    assert!(first >= Duration::from_millis(900) && first < Duration::from_millis(1500), "{first:?}");
    assert!(second >= Duration::from_millis(1900) && second < Duration::from_millis(2600), "{second:?}");
    assert_eq!(r.http_actions("failure"), 2.0);
    assert_eq!(r.http_actions("success"), 1.0);
    let err = r.p.stderr_so_far();
    assert!(err.contains("503 Service Unavailable; retrying in 1s"), "{err}");
    assert!(err.contains("503 Service Unavailable; retrying in 2s"), "{err}");
}

#[test]
fn a_reset_connection_is_retried() {
    let server = Server::start("127.0.0.1", vec![Reply::Reset, Reply::Status(204, "No Content", "")]);
    let url = server.url("/-/reload");
    let mut r = Reinit::start(sidecar(&url));
    r.update("v1");
    expect_requests(&mut r, &server, 2, Duration::from_millis(1500));
    assert_eq!((r.http_actions("failure"), r.http_actions("success")), (1.0, 1.0));
    assert!(r.p.stderr_so_far().contains("204 No Content in"), "{}", r.p.dump());
}

#[test]
fn a_slow_answer_does_not_block_the_loop() {
    let server = Server::start("127.0.0.1", vec![Reply::Slow(Duration::from_secs(3), 200)]);
    let url = server.url("/-/reload");
    let mut r = Reinit::start(sidecar(&url));
    r.update("v1");
    assert!(poll_until(DEADLINE, || server.count() == 1));
    // while the request waits for its answer, /metrics is served at once
    let t = Instant::now();
    let (code, _) = get(r.metrics, "/metrics").unwrap();
    assert_eq!(code, 200);
    assert!(t.elapsed() < Duration::from_millis(500), "{:?}", t.elapsed());
    assert_eq!(r.http_actions("success"), 0.0, "still in flight");
    assert!(poll_until(DEADLINE, || r.http_actions("success") == 1.0), "{}", r.p.dump());
    assert_eq!(server.count(), 1);
}

#[test]
fn an_endpoint_that_comes_up_later_gets_the_reload_once() {
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}/-/reload");
    let mut r = Reinit::start(sidecar(&url));
    r.update("v1");
    assert!(poll_until(DEADLINE, || r.p.stderr_so_far().contains("retrying in 2s")), "{}", r.p.dump());
    let server = Server::start_on("127.0.0.1", port, vec![Reply::Status(200, "OK", "")]);
    expect_requests(&mut r, &server, 1, Duration::from_millis(1500));
    assert_eq!(r.http_actions("success"), 1.0);
}

#[test]
fn ipv6_literals_work() {
    let server = Server::start("::1", vec![Reply::Status(200, "OK", "")]);
    let url = server.url("/-/reload");
    assert!(url.starts_with("http://[::1]:"), "{url}");
    let mut r = Reinit::start(sidecar(&url));
    r.update("v1");
    expect_requests(&mut r, &server, 1, QUIET);
}

#[test]
fn wrapping_the_app_posts_instead_of_restarting() {
    let server = Server::start("127.0.0.1", vec![Reply::Status(200, "OK", "")]);
    let url = server.url("/-/reload");
    let mut r = Reinit::start(|file| with_app(&["--on-change", &url], &["--config", file]));
    let pid = num_field(&r.p.wait_line("ready pid=", DEADLINE), "pid");
    r.update("v1");
    expect_requests(&mut r, &server, 1, QUIET);
    r.update("v2");
    expect_requests(&mut r, &server, 2, QUIET);
    assert_eq!(r.p.count("ready pid="), 1, "the app was not restarted\n{}", r.p.dump());
    assert!(crate::util::alive(pid));
    assert_eq!(r.metric("reinit_app_up"), 1.0);
    assert_eq!(r.metric("reinit_app_starts_total{cause=\"first\"}"), 1.0);
    assert_eq!(r.metric("reinit_app_starts_total{cause=\"change\"}"), 0.0);
    r.p.signal(libc::SIGTERM);
    assert_eq!(r.p.wait_code(DEADLINE), 0, "fake_app exits 0 on SIGTERM");
}

#[test]
fn usage_errors() {
    for (args, want) in [
        (&["-w", "/tmp", "--on-change", "https://127.0.0.1:9090/-/reload"][..], "only plain HTTP"),
        (&["-w", "/tmp", "--on-change", "http://prometheus:9090/-/reload"][..], "not looked up"),
        (&["-w", "/tmp", "--on-change", "exit", "--metrics", "9533"][..], "[HOST]:PORT"),
    ] {
        let out = reinit_cmd(args).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.starts_with("reinit: error: ") && err.contains(want), "{err}");
        assert!(err.contains(args[3]) || err.contains(args[5]), "names the value: {err}");
    }
}

/// Reads until the peer closes (true) or `deadline` passes (false).
fn closed_within(stream: &mut TcpStream, deadline: Duration) -> bool {
    stream.set_read_timeout(Some(deadline)).unwrap();
    let mut buf = [0u8; 64];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return true,
            Err(_) => return false,
        }
    }
}

#[test]
fn metrics_endpoint_limits() {
    let r = Reinit::start(|_| vec!["--on-change".into(), "exit".into()]);
    let (code, body) = get(r.metrics, "/").unwrap();
    assert_eq!(code, 404, "{body}");
    // four idle clients take every slot; a fifth is closed at once, the four after 3 s
    let t = Instant::now();
    let mut idle: Vec<TcpStream> = (0..4).map(|_| TcpStream::connect(r.metrics).unwrap()).collect();
    let mut fifth = TcpStream::connect(r.metrics).unwrap();
    assert!(closed_within(&mut fifth, Duration::from_secs(1)), "over the cap: closed at once");
    for s in &mut idle {
        assert!(closed_within(s, Duration::from_secs(6)), "an idle client is closed");
    }
    let waited = t.elapsed();
    assert!(waited >= Duration::from_millis(2900) && waited < Duration::from_secs(5), "{waited:?}");
    // a request larger than 4 KiB
    let mut big = TcpStream::connect(r.metrics).unwrap();
    let _ = write!(big, "GET /metrics HTTP/1.1\r\nX: {}\r\n\r\n", "a".repeat(8192));
    let mut answer = String::new();
    let _ = big.read_to_string(&mut answer);
    assert!(answer.starts_with("HTTP/1.1 431 "), "{answer}");
    assert_eq!(get(r.metrics, "/metrics").unwrap().0, 200);
}

#[test]
fn the_exposition_passes_promtool() {
    let server = Server::start("127.0.0.1", vec![Reply::Status(200, "OK", "")]);
    let url = server.url("/-/reload");
    let mut r = Reinit::start(sidecar(&url));
    r.update("v1");
    expect_requests(&mut r, &server, 1, Duration::ZERO);
    let (_, body) = get(r.metrics, "/metrics").unwrap();
    let mut promtool = std::process::Command::new(crate::prometheus::tool("promtool"))
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    promtool.stdin.take().unwrap().write_all(body.as_bytes()).unwrap();
    let out = promtool.wait_with_output().unwrap();
    let said = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success() && said.trim().is_empty(), "promtool check metrics:\n{said}\n{body}");
    for name in [
        "reinit_app_starts_total{cause=\"first\"}",
        "reinit_app_up",
        "reinit_changes_seen_total",
        "reinit_changes_acted_total",
        "reinit_validation_failures_total",
        "reinit_actions_total{action=\"http\",result=\"success\"}",
        "reinit_last_action_successful",
        "reinit_last_action_timestamp_seconds",
        "reinit_build_info{version=\"",
        "reinit_content_info{hash=\"",
    ] {
        assert!(body.contains(name), "{name} missing:\n{body}");
    }
}
