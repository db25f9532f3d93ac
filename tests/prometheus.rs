//! Against a real Prometheus (Debian's `prometheus` package: `prometheus` and `promtool`), on
//! 127.0.0.1 with a temporary storage path and `--web.enable-lifecycle` for `POST /-/reload`;
//! its configuration lives in a kubelet-style volume updated by `tests/util/kubelet.rs`.
//!
//! "Applied exactly once" is read from Prometheus itself: its `/api/v1/status/config` shows the
//! new YAML, its log has one more "Loading configuration file" line, and
//! `prometheus_config_last_reload_success_timestamp_seconds` (sub-second) moved once: it stays
//! put over a quiet window after the reload (a measurement window, not synchronisation).

use crate::util::http_server::{free_port, get, sample};
use crate::util::kubelet::{Kubelet, Options};
use crate::util::podman::{self, Cleanup, podman_ok};
use crate::util::{DEADLINE, Proc, TempDir, children_of, poll_until, prepare, reinit_cmd};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

const QUIET: Duration = Duration::from_millis(1500);
/// Prometheus may take a while to open its storage on a loaded machine.
const START: Duration = Duration::from_secs(60);

/// The path of a tool from Debian's prometheus package, installing the package when missing.
pub fn tool(name: &str) -> PathBuf {
    let path = PathBuf::from("/usr/bin").join(name);
    if !path.exists() {
        crate::util::podman::apt_install(&["prometheus"]);
    }
    assert!(path.exists(), "{} missing after installing prometheus", path.display());
    path
}

/// A Prometheus configuration: scrape reinit's metrics every second, `version` as an external
/// label so each version shows in `/api/v1/status/config`.
fn config(version: &str, reinit_metrics: impl std::fmt::Display) -> String {
    format!(
        "global:\n  scrape_interval: 1s\n  external_labels:\n    version: {version}\n\
         scrape_configs:\n  - job_name: reinit\n    static_configs:\n      - targets: ['{reinit_metrics}']\n"
    )
}

struct Prometheus {
    p: Proc,
    addr: SocketAddr,
    _data: TempDir,
}

impl Prometheus {
    fn command(config_file: &Path, addr: SocketAddr, data: &Path) -> Command {
        let mut cmd = Command::new(tool("prometheus"));
        cmd.arg(format!("--config.file={}", config_file.display()))
            .arg(format!("--storage.tsdb.path={}", data.display()))
            .arg(format!("--web.listen-address={addr}"))
            .arg("--web.enable-lifecycle");
        cmd
    }

    fn start(config_file: &Path, addr: SocketAddr) -> Prometheus {
        let data = TempDir::new("prometheus-data");
        let mut cmd = Prometheus::command(config_file, addr, data.path());
        prepare(&mut cmd);
        let p = Proc::spawn(cmd);
        let mut prom = Prometheus { p, addr, _data: data };
        prom.wait_ready();
        prom
    }

    fn wait_ready(&mut self) {
        if !poll_until(START, || get(self.addr, "/-/ready").is_ok_and(|(code, _)| code == 200)) {
            panic!("Prometheus never became ready\n{}", self.p.dump());
        }
    }

    fn loaded_config(&self) -> String {
        get(self.addr, "/api/v1/status/config").unwrap().1
    }

    fn last_reload(&self) -> f64 {
        let (_, body) = get(self.addr, "/metrics").unwrap();
        sample(&body, "prometheus_config_last_reload_success_timestamp_seconds").unwrap()
    }

    fn loads(&mut self) -> usize {
        self.p.stderr_so_far().matches("Loading configuration file").count()
    }

    fn query(&self, q: &str) -> Option<String> {
        query(self.addr, q)
    }
}

/// The value of an instant query's first result, if any, from the Prometheus at `addr`.
fn query(addr: SocketAddr, q: &str) -> Option<String> {
    let (_, body) = get(addr, &format!("/api/v1/query?query={q}")).ok()?;
    let value = body.split("\"value\":[").nth(1)?;
    Some(value.split(",\"").nth(1)?.split('"').next()?.to_string())
}

/// A kubelet volume holding `prometheus.yml`.
fn volume(tmp: &TempDir, content: &str) -> (Kubelet, PathBuf) {
    let dir = tmp.path().join("config");
    let mut k = Kubelet::new(&dir, Options::default());
    assert!(k.write(&[("prometheus.yml", content.as_bytes())]));
    (k, dir)
}

fn reinit_args(dir: &Path, prom: SocketAddr, metrics: SocketAddr) -> Vec<String> {
    [
        "--watch",
        dir.to_str().unwrap(),
        "--validate",
        &format!("{} check config {{}}", tool("promtool").display()),
        "--on-change",
        &format!("http://{prom}/-/reload"),
        "--metrics",
        &metrics.to_string(),
    ]
    .map(String::from)
    .to_vec()
}

fn wait_metrics(p: &mut Proc, metrics: SocketAddr) {
    if !poll_until(DEADLINE, || get(metrics, "/metrics").is_ok()) {
        panic!("/metrics never answered\n{}", p.dump());
    }
}

fn local(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

#[test]
fn sidecar_reloads_prometheus_once_per_real_change() {
    let tmp = TempDir::new("prom-sidecar");
    let (prom_addr, metrics) = (local(free_port()), local(free_port()));
    let (mut k, dir) = volume(&tmp, &config("v0", metrics));
    let mut prom = Prometheus::start(&dir.join("prometheus.yml"), prom_addr);
    let mut r = Proc::spawn(reinit_cmd(reinit_args(&dir, prom_addr, metrics)));
    wait_metrics(&mut r, metrics);
    let (loads, before) = (prom.loads(), prom.last_reload());

    // a real change: applied once
    assert!(k.write(&[("prometheus.yml", config("v1", metrics).as_bytes())]));
    assert!(poll_until(DEADLINE, || prom.loaded_config().contains("version: v1")), "{}", r.dump());
    std::thread::sleep(QUIET);
    let after = prom.last_reload();
    assert!(after > before, "the reload timestamp moved");
    assert_eq!(prom.loads(), loads + 1, "one reload\n{}", prom.p.dump());

    // an invalid config: refused by promtool, never posted
    assert!(k.write(&[("prometheus.yml", b"global: [broken\n")]));
    assert!(poll_until(DEADLINE, || r.stderr_so_far().contains("rejected")), "{}", r.dump());
    std::thread::sleep(QUIET);
    assert_eq!((prom.loads(), prom.last_reload()), (loads + 1, after), "{}", r.dump());
    assert!(prom.loaded_config().contains("version: v1"));

    // fixed: applied once; then a no-op update and a resync: nothing
    assert!(k.write(&[("prometheus.yml", config("v2", metrics).as_bytes())]));
    assert!(poll_until(DEADLINE, || prom.loaded_config().contains("version: v2")), "{}", r.dump());
    std::thread::sleep(QUIET);
    let (loads, after) = (prom.loads(), prom.last_reload());
    assert!(!k.write(&[("prometheus.yml", config("v2", metrics).as_bytes())]));
    k.resync_read();
    std::thread::sleep(QUIET);
    assert_eq!((prom.loads(), prom.last_reload()), (loads, after), "{}", r.dump());

    // Prometheus scrapes reinit's metrics
    let ingested = poll_until(DEADLINE, || {
        prom.query("reinit_actions_total{action=\"http\",result=\"success\"}").as_deref() == Some("2")
            && prom.query("reinit_validation_failures_total").as_deref() == Some("1")
            && prom.query("reinit_build_info").as_deref() == Some("1")
    });
    assert!(ingested, "reinit_* series not in Prometheus: {:?}", prom.query("reinit_actions_total"));
    let err = r.stderr_so_far();
    assert_eq!(err.matches("200 OK in").count(), 2, "{err}");
}

#[test]
fn prometheus_started_after_the_change_still_gets_the_reload() {
    let tmp = TempDir::new("prom-later");
    let (prom_addr, metrics) = (local(free_port()), local(free_port()));
    let (mut k, dir) = volume(&tmp, &config("v0", metrics));
    let mut r = Proc::spawn(reinit_cmd(reinit_args(&dir, prom_addr, metrics)));
    wait_metrics(&mut r, metrics);
    assert!(k.write(&[("prometheus.yml", config("v1", metrics).as_bytes())]));
    assert!(
        poll_until(DEADLINE, || r.stderr_so_far().contains("Connection refused; retrying")),
        "{}",
        r.dump()
    );
    let mut prom = Prometheus::start(&dir.join("prometheus.yml"), prom_addr);
    // backoff at most 30 s after Prometheus is up
    assert!(poll_until(Duration::from_secs(40), || r.stderr_so_far().contains("200 OK in")), "{}", r.dump());
    std::thread::sleep(QUIET);
    assert_eq!(prom.loads(), 2, "start-up, then the reload once\n{}", prom.p.dump());
    assert_eq!(r.stderr_so_far().matches("200 OK in").count(), 1, "{}", r.dump());
    assert!(prom.loaded_config().contains("version: v1"));
}

#[test]
fn wrapping_prometheus_keeps_its_pid() {
    let tmp = TempDir::new("prom-wrap");
    let (prom_addr, metrics) = (local(free_port()), local(free_port()));
    let (mut k, dir) = volume(&tmp, &config("v0", metrics));
    let data = TempDir::new("prometheus-data");
    let app = Prometheus::command(&dir.join("prometheus.yml"), prom_addr, data.path());
    let mut args = reinit_args(&dir, prom_addr, metrics);
    args.push("--".into());
    args.push(app.get_program().to_str().unwrap().into());
    args.extend(app.get_args().map(|a| a.to_str().unwrap().to_string()));
    let r = Proc::spawn(reinit_cmd(args));
    let reinit_pid = r.pid();
    let mut prom = Prometheus { p: r, addr: prom_addr, _data: data };
    prom.wait_ready();
    let pids = children_of(reinit_pid);
    assert_eq!(pids.len(), 1, "{pids:?}");
    for v in ["v1", "v2"] {
        assert!(k.write(&[("prometheus.yml", config(v, metrics).as_bytes())]));
        let want = format!("version: {v}");
        assert!(poll_until(DEADLINE, || prom.loaded_config().contains(&want)), "{}", prom.p.dump());
    }
    assert_eq!(children_of(reinit_pid), pids, "the same Prometheus process");
    let (_, body) = get(metrics, "/metrics").unwrap();
    assert_eq!(sample(&body, "reinit_app_starts_total{cause=\"first\"}"), Some(1.0), "{body}");
    assert_eq!(sample(&body, "reinit_app_starts_total{cause=\"change\"}"), Some(0.0), "{body}");
    assert_eq!(sample(&body, "reinit_app_up"), Some(1.0));
    prom.p.signal(libc::SIGTERM);
    assert_eq!(prom.p.wait_code(DEADLINE), 0, "Prometheus stops cleanly on SIGTERM");
}

// ---------------------------------------------------------------------------------------------
// k8s/prometheus.yaml with podman kube play

/// An image built from local files standing in for both images of the manifest: Debian's
/// `prometheus` and `promtool` (with the two glibc files they load) at `/bin`, as in
/// Prometheus's own image, plus the static reinit at `/bin/reinit`. Removed on drop.
struct LocalImage(String);

impl LocalImage {
    fn build() -> LocalImage {
        let name = format!("localhost/{}:test", podman::name("prometheus"));
        let dir = TempDir::new("prometheus-rootfs");
        let root = dir.path();
        let files = [
            (tool("prometheus"), "bin/prometheus"),
            (tool("promtool"), "bin/promtool"),
            (podman::static_bins().reinit.clone(), "bin/reinit"),
            (PathBuf::from("/lib/x86_64-linux-gnu/libc.so.6"), "lib/x86_64-linux-gnu/libc.so.6"),
            (PathBuf::from("/lib64/ld-linux-x86-64.so.2"), "lib64/ld-linux-x86-64.so.2"),
        ];
        for (from, to) in files {
            std::fs::create_dir_all(root.join(to).parent().unwrap()).unwrap();
            std::fs::copy(&from, root.join(to)).unwrap_or_else(|e| panic!("{}: {e}", from.display()));
        }
        for d in ["etc", "tmp", "proc", "sys", "dev", "prometheus"] {
            std::fs::create_dir_all(root.join(d)).unwrap();
        }
        // owned by nobody, as in Prometheus's image: podman copies it up into the emptyDir
        std::os::unix::fs::chown(root.join("prometheus"), Some(65534), Some(65534)).unwrap();
        let script = format!(
            "tar -C {} -c . | podman import --quiet --change 'ENTRYPOINT [\"/bin/prometheus\"]' - {name}",
            root.display()
        );
        let out = Command::new("sh").args(["-c", &script]).output().unwrap();
        assert!(out.status.success(), "{script}: {}", String::from_utf8_lossy(&out.stderr));
        LocalImage(name)
    }
}

impl Drop for LocalImage {
    fn drop(&mut self) {
        let _ = podman::podman(&["rmi", "-f", "-i", &self.0]);
    }
}

fn subst(text: &str, from: &str, to: &str) -> String {
    assert!(text.contains(from), "{from:?} not in the manifest");
    text.replace(from, to)
}

#[test]
fn kube_play_prometheus_with_reinit_as_its_reload_sidecar() {
    let _lock = podman::lock();
    let image = LocalImage::build();
    let mut cleanup = Cleanup::new();
    let tmp = TempDir::new("kube-prometheus");
    let (mut k, dir) = volume(&tmp, &config("v0", "localhost:9533"));
    let name = podman::name("prometheus");
    let (web, metrics) = (local(free_port()), local(free_port()));
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut yaml = std::fs::read_to_string(repo.join("k8s/prometheus.yaml")).unwrap();
    yaml = subst(
        &yaml,
        "configMap: {name: prometheus-demo}",
        &format!("hostPath: {{path: {}, type: Directory}}", dir.display()),
    );
    yaml = subst(&yaml, "name: prometheus-demo\n", &format!("name: {name}\n"));
    yaml = subst(&yaml, "docker.io/prom/prometheus:v2.53.2", &image.0);
    yaml = subst(&yaml, "localhost/reinit-prometheus:0.1.0", &image.0);
    for (port_name, port, host) in [("web", 9090, web), ("metrics", 9533, metrics)] {
        let from = format!("- {{name: {port_name}, containerPort: {port}}}");
        let to = format!("- {{name: {port_name}, containerPort: {port}, hostPort: {}}}", host.port());
        yaml = subst(&yaml, &from, &to);
    }
    let path = tmp.path().join("prometheus.yaml");
    std::fs::write(&path, &yaml).unwrap();
    let pod = format!("{name}-pod-0");
    cleanup.kube(&yaml, &pod);
    podman_ok(&["kube", "play", path.to_str().unwrap()]);
    let reload = format!("{pod}-reload");
    let logs = || podman::logs(&reload);
    let ready = |addr, path| get(addr, path).is_ok_and(|(code, _)| code == 200);
    assert!(poll_until(START, || ready(web, "/-/ready")), "{}", podman::logs(&format!("{pod}-prometheus")));
    assert!(poll_until(DEADLINE, || ready(metrics, "/metrics")), "{}", logs());

    assert!(k.write(&[("prometheus.yml", config("v1", "localhost:9533").as_bytes())]));
    let applied = || get(web, "/api/v1/status/config").is_ok_and(|(_, b)| b.contains("version: v1"));
    assert!(poll_until(DEADLINE, applied), "{}", logs());
    assert!(poll_until(DEADLINE, || logs().contains("200 OK in")), "{}", logs());
    let ingested = poll_until(DEADLINE, || {
        query(web, "reinit_actions_total{action=\"http\",result=\"success\"}").as_deref() == Some("1")
    });
    assert!(ingested, "Prometheus in the pod scrapes the sidecar's metrics\n{}", logs());
    assert_eq!(logs().matches("200 OK in").count(), 1, "{}", logs());
}
