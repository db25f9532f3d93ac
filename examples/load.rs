//! `load`: a small HTTP load generator for measuring failed requests while an app restarts
//! (std only). Used by the load test in `tests/listen.rs` and by `bench/restarts.sh`.
//!
//! ```text
//! load --addr HOST:PORT [--threads N] [--timeout-ms MS] [--interval-ms MS]
//!      (--until-file PATH | --duration-ms MS) [--max-ms MS]
//! load --free-port
//! ```
//!
//! Each of `--threads` (default 8) client threads loops: connect, send `GET / HTTP/1.1` with
//! `Connection: close`, read the whole answer until the server closes, check it — every step
//! with a `--timeout-ms` (default 5000) limit. With `--interval-ms MS` a thread starts a request
//! at most every MS milliseconds (paced load); 0 (the default) is a closed loop. The run ends when
//! `--until-file PATH` exists, after `--duration-ms`, or at the latest after `--max-ms` (default
//! 120000, a safety net so a forgotten run ends).
//!
//! Output on stdout, one line per event, flushed at once:
//!
//! - `pid N` the first time an answer carries `pid=N` (config_server's body): one line per app
//!   start seen, so a driver can wait for a restart to be visible;
//! - at the end: `served=N refused=N reset=N timeout=N short=N other=N max_ms=N`, where
//!   `served` counts complete `200` answers with a body of `Content-Length` bytes holding
//!   `pid=`; `refused` failed connects (ECONNREFUSED); `reset` connections reset or broken
//!   (ECONNRESET, EPIPE, ECONNABORTED) at any step; `timeout` any step over the limit; `short`
//!   an answer that ended early or is not a `200` with the full body; `other` anything else;
//!   `max_ms` the slowest served request.
//!
//! The first failure of each kind is also described on stderr.
//!
//! `load --free-port` prints a TCP port that is free on 127.0.0.1 right now (bound to port 0,
//! then released), for scripts that must give a server a port.

use std::collections::HashSet;
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How one request ended.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Outcome {
    Served,
    Refused,
    Reset,
    Timeout,
    Short,
    Other,
}

const KINDS: [Outcome; 6] =
    [Outcome::Served, Outcome::Refused, Outcome::Reset, Outcome::Timeout, Outcome::Short, Outcome::Other];

impl Outcome {
    fn name(self) -> &'static str {
        match self {
            Outcome::Served => "served",
            Outcome::Refused => "refused",
            Outcome::Reset => "reset",
            Outcome::Timeout => "timeout",
            Outcome::Short => "short",
            Outcome::Other => "other",
        }
    }

    fn from_io(e: &std::io::Error) -> Outcome {
        match e.kind() {
            ErrorKind::ConnectionRefused => Outcome::Refused,
            ErrorKind::ConnectionReset | ErrorKind::BrokenPipe | ErrorKind::ConnectionAborted => {
                Outcome::Reset
            }
            ErrorKind::TimedOut | ErrorKind::WouldBlock => Outcome::Timeout,
            ErrorKind::UnexpectedEof => Outcome::Short,
            _ => Outcome::Other,
        }
    }
}

struct Options {
    addr: SocketAddr,
    threads: usize,
    timeout: Duration,
    interval: Duration,
    until_file: Option<PathBuf>,
    duration: Option<Duration>,
    max: Duration,
}

fn usage(msg: &str) -> ExitCode {
    eprintln!("load: {msg}");
    eprintln!(
        "usage: load --addr HOST:PORT [--threads N] [--timeout-ms MS] [--interval-ms MS] \
         (--until-file PATH | --duration-ms MS) [--max-ms MS]\n       load --free-port"
    );
    ExitCode::from(64)
}

fn parse(args: &[String]) -> Result<Options, String> {
    let mut addr = None;
    let mut o = Options {
        addr: SocketAddr::from(([127, 0, 0, 1], 0)),
        threads: 8,
        timeout: Duration::from_secs(5),
        interval: Duration::ZERO,
        until_file: None,
        duration: None,
        max: Duration::from_secs(120),
    };
    let ms =
        |v: &str| v.parse::<u64>().map(Duration::from_millis).map_err(|_| format!("not milliseconds: {v}"));
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let value = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--addr" => {
                let a = value.to_socket_addrs().map_err(|e| format!("--addr {value}: {e}"))?.next();
                addr = Some(a.ok_or_else(|| format!("--addr {value}: no address"))?);
            }
            "--threads" => o.threads = value.parse().map_err(|_| format!("--threads {value}"))?,
            "--timeout-ms" => o.timeout = ms(value)?,
            "--interval-ms" => o.interval = ms(value)?,
            "--until-file" => o.until_file = Some(PathBuf::from(value)),
            "--duration-ms" => o.duration = Some(ms(value)?),
            "--max-ms" => o.max = ms(value)?,
            _ => return Err(format!("unknown option {flag}")),
        }
    }
    o.addr = addr.ok_or("--addr is required")?;
    if o.threads == 0 || o.timeout.is_zero() {
        return Err("--threads and --timeout-ms must be positive".into());
    }
    if o.until_file.is_none() && o.duration.is_none() {
        return Err("give --until-file or --duration-ms".into());
    }
    Ok(o)
}

/// The value of a `Content-Length` header in `head` (the bytes before the blank line).
fn content_length(head: &str) -> Option<usize> {
    head.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.trim().eq_ignore_ascii_case("content-length").then(|| v.trim().parse().ok())?
    })
}

/// One request; on success, the `pid=` of the answer.
fn request(o: &Options) -> Result<u32, (Outcome, String)> {
    let io = |step: &'static str| move |e: std::io::Error| (Outcome::from_io(&e), format!("{step}: {e}"));
    let mut s = TcpStream::connect_timeout(&o.addr, o.timeout).map_err(io("connect"))?;
    s.set_read_timeout(Some(o.timeout)).map_err(io("set_read_timeout"))?;
    s.set_write_timeout(Some(o.timeout)).map_err(io("set_write_timeout"))?;
    s.write_all(b"GET / HTTP/1.1\r\nHost: load\r\nConnection: close\r\n\r\n").map_err(io("write"))?;
    let mut answer = Vec::new();
    let deadline = Instant::now() + o.timeout;
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => answer.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(io("read")(e)),
        }
        if Instant::now() > deadline {
            return Err((Outcome::Timeout, "read: the whole answer took too long".into()));
        }
    }
    let text = String::from_utf8_lossy(&answer);
    let short =
        |why: &str| Err((Outcome::Short, format!("{why}: {:?}", text.chars().take(200).collect::<String>())));
    let Some((head, body)) = text.split_once("\r\n\r\n") else {
        return short("no complete header");
    };
    if !head.starts_with("HTTP/1.1 200 ") && !head.starts_with("HTTP/1.0 200 ") {
        return short("not a 200 answer");
    }
    if content_length(head) != Some(body.len()) {
        return short("body length differs from Content-Length");
    }
    match body.lines().find_map(|l| l.strip_prefix("pid=")).and_then(|p| p.trim().parse().ok()) {
        Some(pid) => Ok(pid),
        None => short("no pid= in the body"),
    }
}

struct Shared {
    stop: AtomicBool,
    counts: [AtomicU64; KINDS.len()],
    max_ms: AtomicU64,
    pids: Mutex<HashSet<u32>>,
    /// Kinds of failure already described on stderr.
    described: Mutex<HashSet<&'static str>>,
}

fn client(o: &Options, shared: &Shared) {
    while !shared.stop.load(Ordering::Relaxed) {
        let start = Instant::now();
        let outcome = match request(o) {
            Ok(pid) => {
                let ms = start.elapsed().as_millis() as u64;
                shared.max_ms.fetch_max(ms, Ordering::Relaxed);
                let mut pids = shared.pids.lock().unwrap_or_else(|e| e.into_inner());
                if pids.insert(pid) {
                    // Printed under the lock, so the lines come in the order pids were seen.
                    let mut out = std::io::stdout().lock();
                    let _ = writeln!(out, "pid {pid}");
                    let _ = out.flush();
                }
                Outcome::Served
            }
            Err((outcome, why)) => {
                let mut described = shared.described.lock().unwrap_or_else(|e| e.into_inner());
                if described.insert(outcome.name()) {
                    eprintln!("load: first {} failure after {:?}: {why}", outcome.name(), start.elapsed());
                }
                outcome
            }
        };
        if let Some(i) = KINDS.iter().position(|&k| k == outcome) {
            shared.counts[i].fetch_add(1, Ordering::Relaxed);
        }
        // Paced load: the next request starts `interval` after this one started.
        let left = o.interval.saturating_sub(start.elapsed());
        if !left.is_zero() {
            std::thread::sleep(left);
        }
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--free-port") {
        return match TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()) {
            Ok(a) => {
                println!("{}", a.port());
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("load: cannot bind 127.0.0.1:0: {e}");
                ExitCode::FAILURE
            }
        };
    }
    let o = match parse(&args) {
        Ok(o) => Arc::new(o),
        Err(msg) => return usage(&msg),
    };
    let shared = Arc::new(Shared {
        stop: AtomicBool::new(false),
        counts: Default::default(),
        max_ms: AtomicU64::new(0),
        pids: Mutex::new(HashSet::new()),
        described: Mutex::new(HashSet::new()),
    });
    let threads: Vec<_> = (0..o.threads)
        .map(|_| {
            let (o, shared) = (Arc::clone(&o), Arc::clone(&shared));
            std::thread::spawn(move || client(&o, &shared))
        })
        .collect();
    let start = Instant::now();
    loop {
        let elapsed = start.elapsed();
        let done = o.until_file.as_ref().is_some_and(|p| p.exists())
            || o.duration.is_some_and(|d| elapsed >= d)
            || elapsed >= o.max;
        if done {
            break;
        }
        // Checking the end condition 50 times a second is plenty.
        std::thread::sleep(Duration::from_millis(20));
    }
    shared.stop.store(true, Ordering::Relaxed);
    for t in threads {
        let _ = t.join();
    }
    let mut line: Vec<String> = KINDS
        .iter()
        .zip(&shared.counts)
        .map(|(k, c)| format!("{}={}", k.name(), c.load(Ordering::Relaxed)))
        .collect();
    line.push(format!("max_ms={}", shared.max_ms.load(Ordering::Relaxed)));
    println!("{}", line.join(" "));
    ExitCode::SUCCESS
}
