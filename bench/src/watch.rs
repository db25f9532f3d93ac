//! `watch`: change → new app, for a kubelet `..data` swap and a rename save.

use crate::*;

#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scenario {
    Kube,
    Save,
}

pub(crate) struct Instance {
    pub(crate) watcher: usize,
    pub(crate) scenario: Scenario,
    pub(crate) dir: PathBuf,
    pub(crate) kube: Option<Kubelet>,
    pub(crate) running: Running,
    pub(crate) version: u32,
    pub(crate) stats: WatchStats,
    pub(crate) last_ready: Instant,
    /// Whether the last update was answered (so a further `ready` is a double, not late).
    pub(crate) answered: bool,
}

pub(crate) fn payload(version: u32) -> Vec<(&'static str, Vec<u8>)> {
    vec![("app.conf", format!("v{version}\n").into_bytes()), ("other.conf", b"unchanged\n".to_vec())]
}

impl Instance {
    pub(crate) fn publish(&mut self) -> Res<Instant> {
        self.version += 1;
        let p = payload(self.version);
        match &mut self.kube {
            Some(k) => {
                let payload: Vec<(&str, &[u8])> =
                    p.iter().map(|(key, data)| (*key, data.as_slice())).collect();
                if !k.write(&payload) {
                    return Err(fail("kubelet: nothing to publish"));
                }
                k.last_swap().ok_or_else(|| fail("kubelet: no swap"))
            }
            None => save_via_rename(&self.dir.join("app.conf"), &p[0].1),
        }
    }

    /// Waits until the instance has been quiet for [`QUIET`] since its last `ready`, counting
    /// every further `ready` as a double (or late, after a miss).
    pub(crate) fn settle(&mut self) -> Res<()> {
        loop {
            let until = (self.last_ready + QUIET).max(Instant::now());
            let Some((line, at)) = self.running.lines()?.next_until(until) else { return Ok(()) };
            if line.starts_with("ready") {
                if self.answered {
                    self.stats.doubles += 1;
                } else {
                    self.stats.late += 1;
                }
                self.last_ready = at;
            }
        }
    }

    /// One update and its answer.
    pub(crate) fn update(&mut self) -> Res<()> {
        self.settle()?;
        let t0 = self.publish()?;
        let want = format!("=v{}\\n", self.version);
        let mut config_ok = false;
        self.stats.updates += 1;
        loop {
            match self.running.lines()?.next_until(t0 + MISS_AFTER) {
                Some((line, _)) if line.starts_with("config ") => config_ok = line.ends_with(&want),
                Some((line, at)) if line.starts_with("ready") => {
                    self.stats.latencies_ms.push(at.duration_since(t0).as_secs_f64() * 1e3);
                    if !config_ok {
                        self.stats.stale += 1;
                    }
                    self.last_ready = at;
                    self.answered = true;
                    return Ok(());
                }
                Some(_) => {}
                None => {
                    self.stats.missed += 1;
                    self.answered = false;
                    return Ok(());
                }
            }
        }
    }
}

pub(crate) fn watch(
    watchers: &[Watcher],
    o: &Opts,
    scratch: &Path,
    c: &Counts,
    report: &mut Report,
) -> Res<()> {
    progress(&format!(
        "watch: {} watchers x 2 scenarios, {} updates each, round robin",
        watchers.len(),
        c.watch_updates
    ));
    let mut instances = Vec::new();
    for (w, watcher) in watchers.iter().enumerate() {
        for scenario in [Scenario::Kube, Scenario::Save] {
            let tag = if scenario == Scenario::Kube { "kube" } else { "save" };
            let dir = scratch.join(format!("watch-{}-{tag}", watcher.name));
            fs::create_dir_all(&dir)?;
            let kube = first_content(&dir, scenario)?;
            let app = vec![
                o.fake_app.display().to_string(),
                "--config".into(),
                dir.join("app.conf").display().to_string(),
            ];
            let (argv, stdin) = watcher.command(&dir, &app, scratch)?;
            let mut running = start(&argv, false, stdin, true)?;
            let first = running.lines()?.expect("ready", Instant::now() + Duration::from_secs(10));
            let Some((_, at)) = first else {
                let stats = WatchStats { error: Some("never started the app".into()), ..Default::default() };
                set_watch(report, w, scenario, stats);
                continue;
            };
            instances.push(Instance {
                watcher: w,
                scenario,
                dir,
                kube,
                running,
                version: 0,
                stats: WatchStats::default(),
                last_ready: at,
                answered: true,
            });
        }
    }
    for round in 0..c.watch_updates {
        if round % 10 == 0 {
            progress(&format!("watch: update {}/{}", round + 1, c.watch_updates));
        }
        let n = instances.len();
        for k in 0..n {
            let i = (k + round) % n;
            if let Err(e) = instances[i].update() {
                instances[i].stats.error = Some(e.to_string());
            }
        }
    }
    finish(&mut instances, watchers, report);
    Ok(())
}

/// The volume of one instance, with the first content: written by the kubelet simulator (which
/// is returned, for the updates) or as plain files.
fn first_content(dir: &Path, scenario: Scenario) -> Res<Option<Kubelet>> {
    match scenario {
        Scenario::Kube => {
            let mut k = Kubelet::new(dir, kubelet::Options::default());
            let p0 = payload(0);
            let first: Vec<(&str, &[u8])> = p0.iter().map(|(key, data)| (*key, data.as_slice())).collect();
            if !k.write(&first) {
                return Err(fail("kubelet: the first write published nothing"));
            }
            Ok(Some(k))
        }
        Scenario::Save => {
            for (key, data) in payload(0) {
                fs::write(dir.join(key), data)?;
            }
            Ok(None)
        }
    }
}

/// Waits out each instance's last update, stops it, and records its figures.
fn finish(instances: &mut [Instance], watchers: &[Watcher], report: &mut Report) {
    for inst in instances.iter_mut() {
        let _ = inst.settle();
        if debug() {
            let tag = if inst.scenario == Scenario::Kube { "kube" } else { "save" };
            let lat: Vec<String> = inst.stats.latencies_ms.iter().map(|v| format!("{v:.1}")).collect();
            eprintln!("bench: {} {tag}: {}", watchers[inst.watcher].name, lat.join(" "));
        }
        inst.running.stop(libc::SIGTERM, Duration::from_secs(3));
        set_watch(report, inst.watcher, inst.scenario, inst.stats.clone());
    }
}

pub(crate) fn set_watch(report: &mut Report, w: usize, scenario: Scenario, stats: WatchStats) {
    match scenario {
        Scenario::Kube => report.watch[w].kube = stats,
        Scenario::Save => report.watch[w].save = stats,
    }
}

/// An editor's save: write `.NAME.RANDOM.tmp` next to `path`, rename it over `path`. Returns
/// the time just before the rename.
pub(crate) fn save_via_rename(path: &Path, content: &[u8]) -> Res<Instant> {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let tmp = path.with_file_name(format!(".{name}.{}.tmp", Rng::new().next_u32()));
    fs::OpenOptions::new().write(true).create_new(true).mode(0o644).open(&tmp)?.write_all(content)?;
    let t0 = Instant::now();
    fs::rename(&tmp, path)?;
    Ok(t0)
}
