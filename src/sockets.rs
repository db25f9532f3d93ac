//! `--listen`: the listening sockets reinit opens once and holds for its whole life, so that
//! connections arriving while the app restarts wait in the kernel's backlog instead of being
//! refused; the `LISTEN_FDS`/`LISTEN_FDNAMES` protocol (systemd socket activation) both ways.

use std::fmt;
use std::io;
use std::net::{SocketAddr, TcpListener, ToSocketAddrs};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};

#[derive(Debug)]
pub enum SocketsError {
    /// Binding failed: reinit cannot start (exit 125).
    Bind { addr: String, err: io::Error },
}

impl fmt::Display for SocketsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SocketsError::Bind { addr, err } => {
                let hint = match err.kind() {
                    io::ErrorKind::AddrInUse if addr.contains("unix:") => {
                        ": the path exists (a file, or a socket in use); remove it or choose another"
                    }
                    io::ErrorKind::AddrInUse => ": something else is listening there",
                    io::ErrorKind::PermissionDenied => ": ports below 1024 need root or CAP_NET_BIND_SERVICE",
                    _ => "",
                };
                write!(f, "cannot listen on {addr}: {err}{hint}")
            }
        }
    }
}

/// Where to listen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Addr {
    /// `tcp:HOST:PORT` / `tcp6:[HOST]:PORT` (HOST may be empty: every address).
    Tcp { host: String, port: u16, v6: bool },
    /// `unix:PATH`; `unix:@NAME` is the abstract namespace.
    Unix(PathBuf),
}

/// One `--listen` value: an optional `NAME=` and the address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenSpec {
    /// The `NAME=` given; else a default is made from the bound address.
    pub name: Option<String>,
    pub addr: Addr,
    /// As typed, for messages.
    pub text: String,
}

const EXPECTED: &str = "tcp:HOST:PORT, tcp6:[HOST]:PORT or unix:PATH, optionally prefixed by NAME=";

/// Parse `[NAME=]tcp:HOST:PORT | [NAME=]tcp6:[HOST]:PORT | [NAME=]unix:PATH`.
pub fn parse(text: &str) -> Result<ListenSpec, String> {
    let (name, spec) = match text.split_once('=') {
        Some((n, s)) if !n.contains(':') => (Some(n.to_string()), s),
        _ => (None, text),
    };
    let (kind, rest) = spec.split_once(':').ok_or_else(|| EXPECTED.to_string())?;
    let addr = match kind {
        "tcp" => {
            let (host, port) = rest.rsplit_once(':').ok_or_else(|| EXPECTED.to_string())?;
            if host.contains(':') {
                return Err(format!("{EXPECTED} (an IPv6 host goes in tcp6:[HOST]:PORT)"));
            }
            Addr::Tcp { host: host.to_string(), port: parse_port(port)?, v6: false }
        }
        "tcp6" => {
            let inner = rest.strip_prefix('[').ok_or_else(|| EXPECTED.to_string())?;
            let (host, port) = inner.split_once("]:").ok_or_else(|| EXPECTED.to_string())?;
            Addr::Tcp { host: host.to_string(), port: parse_port(port)?, v6: true }
        }
        "unix" if !rest.is_empty() => Addr::Unix(PathBuf::from(rest)),
        _ => return Err(EXPECTED.to_string()),
    };
    if let Some(name) = &name
        && (name.is_empty() || name.len() > 255)
    {
        return Err("a socket NAME must be 1 to 255 characters without ':'".into());
    }
    Ok(ListenSpec { name, addr, text: text.to_string() })
}

fn parse_port(port: &str) -> Result<u16, String> {
    port.parse().map_err(|_| format!("{EXPECTED}; PORT is a number 0..=65535"))
}

/// The `LISTEN_FDNAMES` entry when none is given: `tcp-8080`-like (the port actually bound),
/// never containing `:`.
fn default_name(addr: &Addr, bound_port: u16) -> String {
    match addr {
        Addr::Tcp { v6: false, .. } => format!("tcp-{bound_port}"),
        Addr::Tcp { v6: true, .. } => format!("tcp6-{bound_port}"),
        Addr::Unix(path) => {
            let base = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            format!("unix-{}", base.replace(':', "_").trim_start_matches('@'))
        }
    }
}

/// A held listening socket.
#[derive(Debug)]
pub struct Listener {
    fd: OwnedFd,
    pub name: String,
    /// The socket file reinit created (removed on exit while it is still that file).
    created: Option<SocketFile>,
}

/// A socket file reinit created: its path, and the device and inode it had right after the
/// bind, which tell it apart from whatever is put at that path later.
#[derive(Debug)]
struct SocketFile {
    path: PathBuf,
    dev: u64,
    ino: u64,
}

impl SocketFile {
    /// The file just bound at `path`; `None` if it cannot be examined (then it is never
    /// removed: better a leftover than someone else's file gone).
    fn bound(path: &Path) -> Option<SocketFile> {
        let meta = std::fs::symlink_metadata(path).ok()?;
        Some(SocketFile { path: path.to_path_buf(), dev: meta.dev(), ino: meta.ino() })
    }

    /// Whether `meta` (an `lstat` of the path) is still this file.
    fn is(&self, meta: &std::fs::Metadata) -> bool {
        meta.dev() == self.dev && meta.ino() == self.ino
    }

    /// Unlink the path if it is still this file: removed and replaced while reinit ran (by a
    /// regular file, another program's socket), the path is someone else's.
    fn remove(&self) {
        if std::fs::symlink_metadata(&self.path).is_ok_and(|meta| self.is(&meta)) {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

impl AsFd for Listener {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

fn bind_error(spec: &ListenSpec, err: io::Error) -> SocketsError {
    SocketsError::Bind { addr: spec.text.clone(), err }
}

/// Deepen the accept queue: connections that arrive during a restart wait there.
fn deepen_backlog(fd: &impl AsFd) -> io::Result<()> {
    nix::sys::socket::listen(fd, nix::sys::socket::Backlog::MAXCONN).map_err(io::Error::from)
}

impl Listener {
    /// Open and bind the socket (close-on-exec; the app gets a copy at fd 3, 4, …).
    pub fn bind(spec: &ListenSpec) -> Result<Listener, SocketsError> {
        let mut bound_port = 0;
        let (fd, created): (OwnedFd, Option<SocketFile>) = match &spec.addr {
            Addr::Tcp { host, port, v6 } => {
                let host = match (host.as_str(), v6) {
                    ("", false) => "0.0.0.0",
                    ("", true) => "::",
                    (h, _) => h,
                };
                let addrs: Vec<SocketAddr> = (host, *port)
                    .to_socket_addrs()
                    .map_err(|e| bind_error(spec, e))?
                    .filter(|a| a.is_ipv6() == *v6)
                    .collect();
                let first = addrs.first().ok_or_else(|| {
                    bind_error(spec, io::Error::new(io::ErrorKind::NotFound, "no address of that family"))
                })?;
                let l = TcpListener::bind(first).map_err(|e| bind_error(spec, e))?;
                bound_port = l.local_addr().map_or(0, |a| a.port());
                (OwnedFd::from(l), None)
            }
            Addr::Unix(path) => {
                let bytes = path.as_os_str().as_encoded_bytes();
                if let Some(abstract_name) = bytes.strip_prefix(b"@") {
                    use std::os::linux::net::SocketAddrExt;
                    let addr = std::os::unix::net::SocketAddr::from_abstract_name(abstract_name)
                        .map_err(|e| bind_error(spec, e))?;
                    (OwnedFd::from(UnixListener::bind_addr(&addr).map_err(|e| bind_error(spec, e))?), None)
                } else {
                    remove_stale(path);
                    let l = UnixListener::bind(path).map_err(|e| bind_error(spec, e))?;
                    (OwnedFd::from(l), SocketFile::bound(path))
                }
            }
        };
        let listener = Listener {
            fd,
            name: spec.name.clone().unwrap_or_else(|| default_name(&spec.addr, bound_port)),
            created,
        };
        deepen_backlog(&listener.fd).map_err(|e| bind_error(spec, e))?;
        Ok(listener)
    }

    /// A socket inherited through socket activation.
    pub fn adopted(fd: OwnedFd, name: String) -> Listener {
        Listener { fd, name, created: None }
    }
}

impl Drop for Listener {
    /// Remove the socket file if reinit created it and it is still there (at exit, or when
    /// start-up fails).
    fn drop(&mut self) {
        if let Some(file) = &self.created {
            file.remove();
        }
    }
}

/// A unix socket file nobody listens on any more (left by a crash) is replaced; one in use,
/// or any other file, is left alone (the bind then fails with a clear error).
fn remove_stale(path: &std::path::Path) {
    use std::os::unix::fs::FileTypeExt;
    let is_socket = std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_socket());
    if is_socket
        && let Err(e) = std::os::unix::net::UnixStream::connect(path)
        && e.kind() == io::ErrorKind::ConnectionRefused
    {
        let _ = std::fs::remove_file(path);
    }
}

/// Socket activation of reinit itself: `LISTEN_FDS` fds from 3 when `LISTEN_PID` is our pid.
/// Returns the fd numbers and their names (from `LISTEN_FDNAMES`, else `unknown`).
pub fn activation(
    listen_pid: Option<&str>,
    listen_fds: Option<&str>,
    names: Option<&str>,
    me: u32,
) -> Vec<(i32, String)> {
    let (Some(pid), Some(count)) = (listen_pid, listen_fds) else { return Vec::new() };
    if pid.trim().parse::<u32>().ok() != Some(me) {
        return Vec::new();
    }
    let Ok(count) = count.trim().parse::<i32>() else { return Vec::new() };
    let names: Vec<&str> = names.map(|n| n.split(':').collect()).unwrap_or_default();
    (0..count.clamp(0, 1024))
        .map(|i| (3 + i, names.get(i as usize).filter(|n| !n.is_empty()).unwrap_or(&"unknown").to_string()))
        .collect()
}

/// The `LISTEN_FDNAMES` value.
pub fn fd_names(listeners: &[Listener]) -> String {
    listeners.iter().map(|l| l.name.as_str()).collect::<Vec<_>>().join(":")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_addresses() {
        let s = parse("tcp:127.0.0.1:8080").unwrap();
        assert_eq!(s.addr, Addr::Tcp { host: "127.0.0.1".into(), port: 8080, v6: false });
        assert_eq!(s.name, None);
        assert_eq!(parse("tcp::80").unwrap().addr, Addr::Tcp { host: "".into(), port: 80, v6: false });
        let s = parse("tcp6:[::1]:9000").unwrap();
        assert_eq!(s.addr, Addr::Tcp { host: "::1".into(), port: 9000, v6: true });
        let s = parse("http=unix:/run/app.sock").unwrap();
        assert_eq!((s.name.as_deref(), s.addr), (Some("http"), Addr::Unix("/run/app.sock".into())));
        assert_eq!(default_name(&parse("tcp6:[]:0").unwrap().addr, 9000), "tcp6-9000");
        assert_eq!(default_name(&parse("unix:@abstract").unwrap().addr, 0), "unix-abstract");
        assert_eq!(default_name(&parse("unix:/run/a:b").unwrap().addr, 0), "unix-a_b");
        for bad in [
            "",
            "tcp",
            "tcp:8080",
            "tcp:host:port",
            "tcp:h:70000",
            "tcp6:::1:80",
            "udp:x:1",
            "unix:",
            "a:b=tcp::1",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn reads_activation_env() {
        assert_eq!(
            activation(Some("42"), Some("2"), Some("http:grpc"), 42),
            [(3, "http".into()), (4, "grpc".into())]
        );
        assert_eq!(activation(Some("42"), Some("1"), None, 42), [(3, "unknown".into())]);
        assert!(activation(Some("41"), Some("1"), None, 42).is_empty(), "meant for another process");
        assert!(activation(None, Some("1"), None, 42).is_empty());
        assert!(activation(Some("42"), Some("x"), None, 42).is_empty());
    }

    #[test]
    fn binds_and_reports_errors() {
        let l = Listener::bind(&parse("tcp:127.0.0.1:0").unwrap()).unwrap();
        let port = TcpListener::from(l.fd.try_clone().unwrap()).local_addr().unwrap().port();
        let taken = Listener::bind(&parse(&format!("tcp:127.0.0.1:{port}")).unwrap()).unwrap_err();
        assert!(taken.to_string().contains(&format!("tcp:127.0.0.1:{port}")), "{taken}");
        let dir = std::env::temp_dir().join(format!("reinit-sock-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("s.sock");
        let spec = parse(&format!("unix:{}", path.display())).unwrap();
        let l = Listener::bind(&spec).unwrap();
        assert!(Listener::bind(&spec).is_err(), "in use: not replaced");
        drop(l);
        // a crashed holder leaves the file behind with nobody listening: stale
        drop(UnixListener::bind(&path).unwrap());
        assert!(path.exists());
        // stale (nobody listening): replaced
        let l = Listener::bind(&spec).unwrap();
        drop(l);
        assert!(!path.exists(), "removed when dropped, since reinit created it");
        // replaced while held (by a regular file, another socket): left alone
        let l = Listener::bind(&spec).unwrap();
        std::fs::remove_file(&path).unwrap();
        std::fs::write(&path, "someone else's").unwrap();
        drop(l);
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "someone else's");
        std::fs::remove_file(&path).unwrap();
        let l = Listener::bind(&spec).unwrap();
        std::fs::remove_file(&path).unwrap();
        let other = UnixListener::bind(&path).unwrap();
        drop(l);
        std::os::unix::net::UnixStream::connect(&path).expect("the other socket is still there");
        drop(other);
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(fd_names(&[Listener::bind(&parse("a=tcp:127.0.0.1:0").unwrap()).unwrap()]), "a");
    }
}
