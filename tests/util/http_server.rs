//! A scripted HTTP/1.1 server for the reload tests (`tests/http.rs`): it records every request
//! (its head, and when it arrived) and answers each with the next [`Reply`] of its script (the
//! last one repeats). Runs on a background thread, one connection at a time, like the small
//! endpoints reload sidecars talk to.
//!
//! Also [`get`]: a blocking `GET` for reinit's `/metrics` and Prometheus's API.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How the server answers one request.
#[derive(Clone, Debug)]
pub enum Reply {
    /// `HTTP/1.1 CODE REASON` with `body`.
    Status(u16, &'static str, &'static str),
    /// Wait, then answer like `Status`.
    Slow(Duration, u16),
    /// Close the connection with a TCP reset, no answer.
    Reset,
}

/// One request as received.
#[derive(Clone, Debug)]
pub struct Request {
    pub head: String,
    pub at: Instant,
}

pub struct Server {
    pub addr: SocketAddr,
    requests: Arc<Mutex<Vec<Request>>>,
}

impl Server {
    /// Listen on `ip`:0 (`"127.0.0.1"` or `"::1"`) and answer with `script`.
    pub fn start(ip: &str, script: Vec<Reply>) -> Server {
        Server::start_on(ip, 0, script)
    }

    /// Listen on `ip`:`port` and answer with `script`.
    pub fn start_on(ip: &str, port: u16, script: Vec<Reply>) -> Server {
        assert!(!script.is_empty());
        let listener = TcpListener::bind((ip, port)).unwrap();
        let addr = listener.local_addr().unwrap();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let seen = requests.clone();
        std::thread::spawn(move || {
            for (n, stream) in listener.incoming().enumerate() {
                let Ok(stream) = stream else { continue };
                let reply = script[n.min(script.len() - 1)].clone();
                serve(stream, reply, &seen);
            }
        });
        Server { addr, requests }
    }

    /// `http://ADDR/PATH`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn requests(&self) -> Vec<Request> {
        self.requests.lock().unwrap().clone()
    }

    pub fn count(&self) -> usize {
        self.requests.lock().unwrap().len()
    }
}

fn serve(mut stream: TcpStream, reply: Reply, seen: &Mutex<Vec<Request>>) {
    stream.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    }
    let head = String::from_utf8_lossy(&head).into_owned();
    seen.lock().unwrap().push(Request { head, at: Instant::now() });
    let (code, reason, body) = match reply {
        Reply::Status(code, reason, body) => (code, reason, body),
        Reply::Slow(delay, code) => {
            std::thread::sleep(delay);
            (code, "Slow", "")
        }
        Reply::Reset => {
            // SO_LINGER with a zero timeout: close() sends RST instead of FIN
            let linger = libc::linger { l_onoff: 1, l_linger: 0 };
            nix::sys::socket::setsockopt(&stream, nix::sys::socket::sockopt::Linger, &linger).unwrap();
            return;
        }
    };
    let _ = write!(
        stream,
        "HTTP/1.1 {code} {reason}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = stream.shutdown(Shutdown::Write);
}

/// `GET PATH` on `addr` (HTTP/1.0, so never chunked): the status code and the body.
pub fn get(addr: SocketAddr, path: &str) -> Result<(u16, String), String> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).map_err(|e| e.to_string())?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).map_err(|e| e.to_string())?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").map_err(|e| e.to_string())?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer).map_err(|e| e.to_string())?;
    let (head, body) = answer.split_once("\r\n\r\n").ok_or_else(|| format!("no HTTP answer: {answer:?}"))?;
    let code =
        head.split(' ').nth(1).and_then(|c| c.parse().ok()).ok_or_else(|| format!("status? {head}"))?;
    Ok((code, body.to_string()))
}

/// The value of the series `name` (with its labels exactly as written, e.g.
/// `reinit_actions_total{action="http",result="success"}`) in a text exposition.
pub fn sample(exposition: &str, series: &str) -> Option<f64> {
    exposition.lines().find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.trim().parse().ok())
}

/// A free TCP port on 127.0.0.1 (bound and released: good enough for tests).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}
