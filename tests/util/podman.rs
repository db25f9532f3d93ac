//! podman for the container end-to-end tests (`tests/containers.rs`): set-up, the static
//! binaries and images, unique names, cleanup, and one-at-a-time execution.
//!
//! - [`lock`]: every podman test holds it (podman tests of this binary run one at a time, so
//!   timings stay meaningful on 2 cores). The first call installs and configures podman
//!   ([`ensure_podman`]) and removes leftovers of earlier runs that were killed
//!   ([`sweep_stale`]).
//! - [`static_bins`]: the static musl `reinit` and `examples/config_server`, from
//!   `REINIT_STATIC_DIR` (a dir holding `reinit` and `examples/config_server`) or built once per
//!   test run with `scripts/build-static.sh --with-example` (cargo's own lock serialises
//!   concurrent builds in one target dir). [`static_bins_aarch64`]: the same for aarch64
//!   (`REINIT_STATIC_DIR_AARCH64`, `--arch aarch64`).
//! - [`images`]: the images, built once per test run: the repo's `Dockerfile` stages `example`
//!   and `reinit` (with `--build-arg BIN=local`, from a context holding only the two static
//!   binaries), and a busybox-static image imported from a local rootfs. They are removed when
//!   the test process exits (`atexit`). [`arm64_example_image`]: the `example` stage built with
//!   `--platform linux/arm64` from the aarch64 binaries.
//! - [`name`]: `reinit-e2e-<test pid>-<what>`, for every pod, container and image, so parallel
//!   runs (other worktrees) never collide, and [`sweep_stale`] can tell a dead run's leftovers.
//! - [`Cleanup`]: removes the pods (`podman kube down`, then by name) and containers it was
//!   given, on drop: also when the test fails.
//! - [`podman`], [`podman_ok`], [`podman_stdin`], [`logs`], [`inspect`], [`top`], [`http_get`], [`free_port`].

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::Duration;

/// Prefix of every name this module hands out.
pub const PREFIX: &str = "reinit-e2e";

/// The podman configuration for machines without systemd: runc, cgroupfs, no default ulimits.
const CONTAINERS_CONF: &str =
    "[containers]\ndefault_ulimits = []\n\n[engine]\nruntime = \"runc\"\ncgroup_manager = \"cgroupfs\"\n";
const CONTAINERS_CONF_PATH: &str = "/etc/containers/containers.conf";

/// `reinit-e2e-<pid>-<what>`: unique to this test process.
pub fn name(what: &str) -> String {
    format!("{PREFIX}-{}-{what}", std::process::id())
}

/// Serialises the podman tests of this binary; the first call sets podman up.
pub fn lock() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    let guard = LOCK.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    static SETUP: OnceLock<()> = OnceLock::new();
    SETUP.get_or_init(|| {
        ensure_podman();
        sweep_stale();
    });
    guard
}

// ---------------------------------------------------------------------------------------------
// Set-up

fn have(tool: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// `apt-get install` of `packages` (after an `apt-get update`); panics on failure.
pub fn apt_install(packages: &[&str]) {
    eprintln!("installing {packages:?} with apt-get");
    let script = format!(
        "apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq {} >/dev/null",
        packages.join(" ")
    );
    let out = Command::new("sh").args(["-c", &script]).output().expect("running apt-get");
    assert!(
        out.status.success(),
        "apt-get install {packages:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Installs podman, runc, catatonit (podman's pause and `--init`) and busybox-static when
/// missing, and writes `/etc/containers/containers.conf` when there is none.
pub fn ensure_podman() {
    let mut missing = Vec::new();
    for (tool, package) in [("podman", "podman"), ("runc", "runc"), ("catatonit", "catatonit")] {
        if !have(tool) {
            missing.push(package);
        }
    }
    if !Path::new("/bin/busybox").exists() {
        missing.push("busybox-static");
    }
    if !missing.is_empty() {
        apt_install(&missing);
    }
    if !Path::new(CONTAINERS_CONF_PATH).exists() {
        std::fs::create_dir_all("/etc/containers").expect("mkdir /etc/containers");
        std::fs::write(CONTAINERS_CONF_PATH, CONTAINERS_CONF).expect("writing containers.conf");
        eprintln!("wrote {CONTAINERS_CONF_PATH}");
    }
}

/// Removes pods, containers and images named by [`name`] in a test process that is gone (a
/// run that was killed before it could clean up).
pub fn sweep_stale() {
    let stale = |n: &str| -> bool {
        let n = n.trim_start_matches("localhost/");
        let Some(rest) = n.strip_prefix(&format!("{PREFIX}-")) else { return false };
        let Some(pid) = rest.split('-').next().and_then(|p| p.parse::<u32>().ok()) else { return false };
        pid != std::process::id() && !Path::new(&format!("/proc/{pid}")).exists()
    };
    let list = |args: &[&str]| -> Vec<String> {
        String::from_utf8_lossy(&podman(args).stdout)
            .lines()
            .map(str::to_string)
            .filter(|n| stale(n))
            .collect()
    };
    for pod in list(&["pod", "ls", "--format", "{{.Name}}"]) {
        let _ = podman(&["pod", "rm", "-f", "-t", "0", &pod]);
    }
    for ctr in list(&["ps", "-a", "--format", "{{.Names}}"]) {
        let _ = podman(&["rm", "-f", "-t", "0", &ctr]);
    }
    for image in list(&["images", "--format", "{{.Repository}}:{{.Tag}}"]) {
        let _ = podman(&["rmi", "-f", &image]);
    }
}

// ---------------------------------------------------------------------------------------------
// Running podman

/// Runs `podman ARGS` to its end.
pub fn podman(args: &[&str]) -> Output {
    Command::new("podman")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("running podman {args:?}: {e}"))
}

/// Runs `podman ARGS` with `input` on its stdin.
pub fn podman_stdin(args: &[&str], input: &str) -> Output {
    let mut child = Command::new("podman")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("running podman {args:?}: {e}"));
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(input.as_bytes());
    }
    child.wait_with_output().unwrap_or_else(|e| panic!("podman {args:?}: {e}"))
}

/// Runs `podman ARGS`, panics (with its stderr) unless it succeeds; returns stdout.
pub fn podman_ok(args: &[&str]) -> String {
    let out = podman(args);
    assert!(
        out.status.success(),
        "podman {args:?} failed ({:?}):\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `podman logs CONTAINER`: the container's stdout then its stderr.
pub fn logs(container: &str) -> String {
    let out = podman(&["logs", container]);
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

/// `podman inspect --format FORMAT OBJECT`, trimmed.
pub fn inspect(object: &str, format: &str) -> String {
    podman_ok(&["inspect", "--format", format, object]).trim().to_string()
}

/// `podman top CONTAINER pid ppid user args`, as rows of (pid, ppid, user, args).
pub fn top(container: &str) -> Vec<(i32, i32, String, String)> {
    podman_ok(&["top", container, "pid", "ppid", "user", "args"])
        .lines()
        .skip(1)
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            let pid = words.next()?.parse().ok()?;
            let ppid = words.next()?.parse().ok()?;
            let user = words.next()?.to_string();
            Some((pid, ppid, user, words.collect::<Vec<_>>().join(" ")))
        })
        .collect()
}

/// Removes pods (by their kube YAML, then by name) and containers on drop.
#[derive(Default)]
pub struct Cleanup {
    /// Kube YAML documents, kept in memory: the file may be gone by the time of the drop.
    kube: Vec<String>,
    pods: Vec<String>,
    containers: Vec<String>,
}

impl Cleanup {
    pub fn new() -> Cleanup {
        Cleanup::default()
    }

    /// A container to `podman rm -f` at the end.
    pub fn container(&mut self, name: &str) {
        self.containers.push(name.to_string());
    }

    /// A played kube YAML to `podman kube down` at the end, and the pod it makes.
    pub fn kube(&mut self, yaml: &str, pod: &str) {
        self.kube.push(yaml.to_string());
        self.pods.push(pod.to_string());
    }
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        for yaml in &self.kube {
            let _ = podman_stdin(&["kube", "down", "-"], yaml);
        }
        for pod in &self.pods {
            if podman(&["pod", "exists", pod]).status.success() {
                let _ = podman(&["pod", "rm", "-f", "-t", "0", pod]);
            }
        }
        for ctr in &self.containers {
            let _ = podman(&["rm", "-f", "-i", "-t", "0", ctr]);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Binaries and images

/// The static musl binaries.
pub struct StaticBins {
    pub reinit: PathBuf,
    pub config_server: PathBuf,
}

/// See the module docs.
pub fn static_bins() -> &'static StaticBins {
    static BINS: OnceLock<StaticBins> = OnceLock::new();
    BINS.get_or_init(|| static_bins_for("x86_64", "REINIT_STATIC_DIR"))
}

/// The static aarch64 binaries: from `REINIT_STATIC_DIR_AARCH64`, or built once per test run
/// with `scripts/build-static.sh --arch aarch64 --with-example`.
pub fn static_bins_aarch64() -> &'static StaticBins {
    static BINS: OnceLock<StaticBins> = OnceLock::new();
    BINS.get_or_init(|| static_bins_for("aarch64", "REINIT_STATIC_DIR_AARCH64"))
}

fn static_bins_for(arch: &str, env_dir: &str) -> StaticBins {
    let dir = match std::env::var_os(env_dir) {
        Some(dir) => PathBuf::from(dir),
        None => {
            let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
            eprintln!("building the static binaries (scripts/build-static.sh --arch {arch} --with-example)");
            let out = Command::new(repo.join("scripts/build-static.sh"))
                .args(["--arch", arch, "--with-example"])
                .current_dir(repo)
                .stdin(Stdio::null())
                .output()
                .expect("running scripts/build-static.sh");
            assert!(
                out.status.success(),
                "scripts/build-static.sh --arch {arch} --with-example failed:\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
            eprint!("{}", String::from_utf8_lossy(&out.stdout));
            repo.join(format!("target/{arch}-unknown-linux-musl/release"))
        }
    };
    let bins = StaticBins { reinit: dir.join("reinit"), config_server: dir.join("examples/config_server") };
    for bin in [&bins.reinit, &bins.config_server] {
        assert!(bin.is_file(), "{} missing ({env_dir}={:?})", bin.display(), std::env::var_os(env_dir));
    }
    bins
}

/// The test images.
pub struct Images {
    /// Dockerfile `--target example`: `/reinit` + `/config_server`, FROM scratch.
    pub example: String,
    /// Dockerfile `--target reinit`: `/reinit` only, FROM scratch.
    pub reinit: String,
    /// busybox-static's `/bin/busybox` with every applet linked, plus `/reinit`.
    pub busybox: String,
}

/// Image names to remove when the process exits.
static TO_REMOVE: Mutex<Vec<String>> = Mutex::new(Vec::new());

extern "C" fn remove_images() {
    let images = std::mem::take(&mut *TO_REMOVE.lock().unwrap_or_else(|p| p.into_inner()));
    if !images.is_empty() {
        let mut args = vec!["rmi", "-f", "-i"];
        args.extend(images.iter().map(String::as_str));
        let _ = Command::new("podman").args(&args).stdout(Stdio::null()).stderr(Stdio::null()).status();
    }
}

/// See the module docs. Call with [`lock`] held.
pub fn images() -> &'static Images {
    static IMAGES: OnceLock<Images> = OnceLock::new();
    IMAGES.get_or_init(|| {
        let bins = static_bins();
        let images = Images {
            example: format!("localhost/{}:test", name("example")),
            reinit: format!("localhost/{}:test", name("reinit")),
            busybox: format!("localhost/{}:test", name("busybox")),
        };
        for image in [&images.example, &images.reinit, &images.busybox] {
            remove_at_exit(image);
        }

        let ctx_dir = super::TempDir::new("image-context");
        let ctx = ctx_dir.path();
        for (target, tag) in [("example", &images.example), ("reinit", &images.reinit)] {
            build_local_image(ctx, "amd64", bins, target, tag);
        }

        // busybox rootfs: tar -C rootfs -c . | podman import - IMAGE
        let rootfs = ctx.join("rootfs");
        for dir in ["bin", "proc", "sys", "dev", "etc", "tmp", "run"] {
            std::fs::create_dir_all(rootfs.join(dir)).unwrap();
        }
        std::fs::copy("/bin/busybox", rootfs.join("bin/busybox")).unwrap();
        let applets = Command::new("/bin/busybox").arg("--list").output().expect("busybox --list");
        for applet in String::from_utf8_lossy(&applets.stdout).lines().filter(|a| *a != "busybox") {
            std::os::unix::fs::symlink("busybox", rootfs.join("bin").join(applet)).unwrap();
        }
        std::fs::copy(&bins.reinit, rootfs.join("reinit")).unwrap();
        let script =
            format!("tar -C {} -c . | podman import --quiet - {}", rootfs.to_string_lossy(), images.busybox);
        let out = Command::new("sh").args(["-c", &script]).output().expect("podman import");
        assert!(out.status.success(), "{script}: {}", String::from_utf8_lossy(&out.stderr));
        images
    })
}

/// `podman build --platform linux/ARCH --build-arg BIN=local --target TARGET --tag TAG` of
/// the repo's Dockerfile, from a context `ctx` holding just `bins` where the Dockerfile's
/// `local-ARCH` stage copies them from (`target/<x86_64|aarch64>-unknown-linux-musl/release`).
fn build_local_image(ctx: &Path, arch: &str, bins: &StaticBins, target: &str, tag: &str) {
    let triple = match arch {
        "amd64" => "x86_64-unknown-linux-musl",
        "arm64" => "aarch64-unknown-linux-musl",
        other => panic!("no static build for {other}"),
    };
    let release = ctx.join("target").join(triple).join("release");
    std::fs::create_dir_all(release.join("examples")).unwrap();
    std::fs::copy(&bins.reinit, release.join("reinit")).unwrap();
    std::fs::copy(&bins.config_server, release.join("examples/config_server")).unwrap();
    let dockerfile = Path::new(env!("CARGO_MANIFEST_DIR")).join("Dockerfile");
    podman_ok(&[
        "build",
        "--quiet",
        "--layers=false",
        "--pull=never",
        "--platform",
        &format!("linux/{arch}"),
        "--build-arg",
        "BIN=local",
        "--target",
        target,
        "--tag",
        tag,
        "--file",
        &dockerfile.to_string_lossy(),
        &ctx.to_string_lossy(),
    ]);
}

/// The Dockerfile's `example` stage for linux/arm64, from the static aarch64 binaries, built
/// once per test run (removed at exit like [`images`]). Call with [`lock`] held.
pub fn arm64_example_image() -> &'static str {
    static IMAGE: OnceLock<String> = OnceLock::new();
    IMAGE.get_or_init(|| {
        let bins = static_bins_aarch64();
        let image = format!("localhost/{}:test", name("example-arm64"));
        remove_at_exit(&image);
        let ctx_dir = super::TempDir::new("image-context-arm64");
        build_local_image(ctx_dir.path(), "arm64", bins, "example", &image);
        image
    })
}

/// Registers `image` for removal when the test process exits.
fn remove_at_exit(image: &str) {
    static REGISTERED: OnceLock<()> = OnceLock::new();
    TO_REMOVE.lock().unwrap_or_else(|p| p.into_inner()).push(image.to_string());
    REGISTERED.get_or_init(|| {
        #[allow(unsafe_code)]
        // SAFETY: registers a plain extern "C" function without arguments.
        let rc = unsafe { libc::atexit(remove_images) };
        assert_eq!(rc, 0, "atexit");
    });
}

/// Whether `path` is a statically linked ELF executable: no `PT_INTERP` (no dynamic loader)
/// and no `PT_DYNAMIC` program header.
pub fn is_static_elf(path: &Path) -> bool {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    assert!(
        bytes.len() > 64 && &bytes[..4] == b"\x7fELF" && bytes[4] == 2,
        "{} is not an ELF64 file",
        path.display()
    );
    let u16_at = |o: usize| u16::from_le_bytes([bytes[o], bytes[o + 1]]) as usize;
    let u32_at = |o: usize| u32::from_le_bytes(bytes[o..o + 4].try_into().unwrap());
    let u64_at = |o: usize| u64::from_le_bytes(bytes[o..o + 8].try_into().unwrap()) as usize;
    let (phoff, phentsize, phnum) = (u64_at(0x20), u16_at(0x36), u16_at(0x38));
    const PT_DYNAMIC: u32 = 2;
    const PT_INTERP: u32 = 3;
    (0..phnum).all(|i| !matches!(u32_at(phoff + i * phentsize), PT_DYNAMIC | PT_INTERP))
}

// ---------------------------------------------------------------------------------------------
// Network

/// A TCP port that was free a moment ago.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// `GET PATH` on 127.0.0.1:PORT; the body of a 200 answer.
pub fn http_get(port: u16, path: &str) -> Result<String, String> {
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let mut stream =
        std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(2)).map_err(|e| e.to_string())?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).map_err(|e| e.to_string())?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n").map_err(|e| e.to_string())?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer).map_err(|e| e.to_string())?;
    let (head, body) = answer.split_once("\r\n\r\n").ok_or_else(|| format!("no HTTP answer: {answer:?}"))?;
    if !head.starts_with("HTTP/1.1 200") {
        return Err(format!("not 200: {head}"));
    }
    Ok(body.to_string())
}
