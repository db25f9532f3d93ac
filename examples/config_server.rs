//! `config_server`: a small HTTP server that shows the configuration it loaded at start.
//!
//! ```text
//! config_server [--config PATH] [--port PORT] [--start-delay MS]
//! ```
//!
//! - Reads `--config PATH` at start, and again on SIGHUP (so it can be reloaded by a restart,
//!   by `--on-change signal:HUP`, or from a sidecar with `--on-change siblings:HUP`).
//! - Serves on the socket it inherits when `LISTEN_FDS`/`LISTEN_PID` say so (systemd socket
//!   activation, as `reinit --listen` passes it: fd 3), else binds `0.0.0.0:PORT` itself
//!   (default 8080).
//! - `--start-delay MS`: sleeps before serving, like an app that is slow to start.
//! - Answers every request with `200 OK` and a body of `pid=<pid>` and `config=<content>`;
//!   `GET /healthz` answers `ok`.
//! - Once it serves, it says so with `READY=1` on `$NOTIFY_SOCKET` when there is one (the
//!   systemd sd_notify protocol, as `reinit --ready notify` sets it), so a restart completes,
//!   and a start-first update hands over, only when it can answer.
//! - On SIGTERM or SIGINT it stops accepting, finishes the requests in flight, and exits 0 (what
//!   is still queued in the listening socket stays there for the next app under `--listen`).
//! - Logs one line on stderr when it serves, on each reload and when it stops.
#![allow(unsafe_code)]

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::os::fd::FromRawFd;
use std::sync::{Arc, RwLock};
use std::time::Duration;

fn arg_value(args: &[String], name: &str) -> Option<String> {
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).cloned()
}

/// The listening socket passed by socket activation, if it is meant for this process.
fn inherited_listener() -> Option<TcpListener> {
    let fds: u32 = std::env::var("LISTEN_FDS").ok()?.parse().ok()?;
    let pid: u32 = std::env::var("LISTEN_PID").ok()?.parse().ok()?;
    if fds < 1 || pid != std::process::id() {
        return None;
    }
    // SAFETY: LISTEN_FDS/LISTEN_PID say fd 3 was passed to this very process, and nothing
    // else in this program owns it.
    Some(unsafe { TcpListener::from_raw_fd(3) })
}

/// Tell the supervisor (`$NOTIFY_SOCKET`: a path, or `@name` in the abstract namespace) that
/// this process is ready. Without one, nothing to do.
fn notify_ready() {
    use std::os::linux::net::SocketAddrExt;
    use std::os::unix::net::{SocketAddr, UnixDatagram};
    let Some(target) = std::env::var_os("NOTIFY_SOCKET") else { return };
    let target = target.to_string_lossy().into_owned();
    let addr = match target.strip_prefix('@') {
        Some(name) => SocketAddr::from_abstract_name(name.as_bytes()),
        None => SocketAddr::from_pathname(&target),
    };
    let sent = UnixDatagram::unbound().and_then(|sock| sock.send_to_addr(b"READY=1\n", &addr?));
    if let Err(e) = sent {
        eprintln!("config_server: cannot notify {target}: {e}");
    }
}

fn serve(mut stream: TcpStream, body: &str) {
    let mut reader = BufReader::new(match stream.try_clone() {
        Ok(s) => s,
        Err(_) => return,
    });
    let mut request_line = String::new();
    if reader.read_line(&mut request_line).is_err() {
        return;
    }
    // drain the headers
    let mut line = String::new();
    while reader.read_line(&mut line).map(|n| n > 2).unwrap_or(false) {
        line.clear();
    }
    let body = if request_line.starts_with("GET /healthz ") { "ok\n" } else { body };
    let _ = write!(
        stream,
        "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
}

/// What the server answers: its pid and the config it loaded.
type Body = Arc<RwLock<String>>;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let config = arg_value(&args, "--config");
    let port = arg_value(&args, "--port").unwrap_or_else(|| "8080".into());
    let delay: u64 = arg_value(&args, "--start-delay").and_then(|d| d.parse().ok()).unwrap_or(0);

    let load = move || -> String {
        let content = match &config {
            Some(path) => {
                std::fs::read_to_string(path).unwrap_or_else(|e| format!("(cannot read {path}: {e})"))
            }
            None => "(none)".into(),
        };
        format!("pid={}\nconfig={}\n", std::process::id(), content.trim_end())
    };
    let body: Body = Arc::new(RwLock::new(load()));
    let (stop_rx, stop_tx) = match std::io::pipe() {
        Ok(pipe) => pipe,
        Err(e) => {
            eprintln!("config_server: cannot create a pipe: {e}");
            std::process::exit(1);
        }
    };
    handle_signals(Arc::clone(&body), load, stop_tx);
    std::thread::sleep(Duration::from_millis(delay));

    let (listener, how) = match inherited_listener() {
        Some(l) => (l, "inherited socket (LISTEN_FDS)"),
        None => match TcpListener::bind(format!("0.0.0.0:{port}")) {
            Ok(l) => (l, "own socket"),
            Err(e) => {
                eprintln!("config_server: cannot bind port {port}: {e}");
                std::process::exit(1);
            }
        },
    };
    let addr = listener.local_addr().map(|a| a.to_string()).unwrap_or_default();
    eprintln!("config_server: pid {} serving {addr} on its {how}", std::process::id());
    notify_ready();
    serve_until_stopped(&listener, &stop_rx, &body);
    eprintln!("config_server: pid {} done", std::process::id());
}

/// SIGHUP reloads the config; SIGTERM or SIGINT writes to `stop` (waking the accept loop).
fn handle_signals(body: Body, load: impl Fn() -> String + Send + 'static, mut stop: std::io::PipeWriter) {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
    let mut signals = match signal_hook::iterator::Signals::new([SIGTERM, SIGINT, SIGHUP]) {
        Ok(signals) => signals,
        Err(e) => return eprintln!("config_server: cannot handle signals: {e}"),
    };
    std::thread::spawn(move || {
        for sig in signals.forever() {
            if sig == SIGHUP {
                let fresh = load();
                eprintln!("config_server: pid {} reloaded its config", std::process::id());
                if let Ok(mut b) = body.write() {
                    *b = fresh;
                }
                continue;
            }
            eprintln!("config_server: pid {} got signal {sig}, finishing its requests", std::process::id());
            let _ = stop.write_all(b"x");
            return;
        }
    });
}

/// Accept until `stop` is readable; then wait for every request in flight.
fn serve_until_stopped(listener: &TcpListener, stop: &std::io::PipeReader, body: &Body) {
    use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
    use std::os::fd::AsFd;
    std::thread::scope(|scope| {
        loop {
            let mut fds = [
                PollFd::new(stop.as_fd(), PollFlags::POLLIN),
                PollFd::new(listener.as_fd(), PollFlags::POLLIN),
            ];
            if poll(&mut fds, PollTimeout::NONE).is_err() {
                continue;
            }
            if fds[0].any() != Some(false) {
                break;
            }
            match listener.accept() {
                Ok((stream, _)) => {
                    let body = body.read().map(|b| b.clone()).unwrap_or_default();
                    scope.spawn(move || serve(stream, &body));
                }
                Err(e) => eprintln!("config_server: accept: {e}"),
            }
        }
    });
}
