//! The markdown report: header, reinit against its bars, every figure with its ratio.

use crate::*;

pub(crate) struct Header {
    pub(crate) date: String,
    pub(crate) kernel: String,
    pub(crate) cpu: String,
    pub(crate) cores: usize,
    pub(crate) load_before: String,
    pub(crate) load_after: String,
    pub(crate) duration: Duration,
    pub(crate) versions: Vec<(String, String)>,
}

pub(crate) fn first_line(cmd: &str, args: &[&str]) -> String {
    Command::new(cmd)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .ok()
        .map(|o| {
            let text = if o.stdout.is_empty() { o.stderr } else { o.stdout };
            String::from_utf8_lossy(&text).lines().next().unwrap_or("").trim().to_string()
        })
        .unwrap_or_default()
}

pub(crate) fn deb_version(pkg: &str) -> String {
    let v = first_line("dpkg-query", &["-W", "-f", "${Version}", pkg]);
    if v.is_empty() { "?".into() } else { format!("Debian {v}") }
}

pub(crate) fn header(
    o: &Opts,
    inits: &[Init],
    watchers: &[Watcher],
    load_before: &str,
    load_after: &str,
    duration: Duration,
) -> Header {
    let secs = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let (y, mo, d) = civil_from_days((secs / 86_400) as i64);
    let rem = secs % 86_400;
    let cpu = fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
        })
        .unwrap_or_else(|| "?".into());
    let kernel = fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default().trim().to_string();
    let mut reinit = first_line(&o.reinit.display().to_string(), &["--version"]);
    let commit = first_line("git", &["rev-parse", "--short", "HEAD"]);
    if !commit.is_empty() && !commit.contains(' ') {
        let dirty = !first_line("git", &["status", "--porcelain", "--", "src", "Cargo.toml", "Cargo.lock"])
            .is_empty();
        reinit = format!(
            "{reinit} (commit {commit}{})",
            if dirty { ", src/ with uncommitted changes" } else { "" }
        );
    }
    // Which binary exactly: the tree may change while a run goes on.
    let desc = first_line("file", &["-b", &o.reinit.display().to_string()]);
    if let Some(id) = desc.split(", ").find_map(|f| f.strip_prefix("BuildID[sha1]=")) {
        reinit = format!("{reinit} [BuildID {}]", &id[..id.len().min(12)]);
    }
    let mut versions = vec![("reinit".to_string(), reinit)];
    for init in inits.iter().skip(1) {
        let pkg = if init.name.starts_with("tini") { "tini" } else { init.name };
        versions.push((init.name.to_string(), deb_version(pkg)));
    }
    for w in watchers.iter().skip(1) {
        let v = match w.kind {
            WatcherKind::Watchexec => first_line(&w.path.display().to_string(), &["--version"]),
            _ => deb_version(w.name),
        };
        versions.push((w.name.to_string(), v));
    }
    Header {
        date: format!("{y:04}-{mo:02}-{d:02} {:02}:{:02} UTC", rem / 3600, rem % 3600 / 60),
        kernel: format!("Linux {kernel}"),
        cpu,
        cores: std::thread::available_parallelism().map_or(0, |n| n.get()),
        load_before: load_before.split_whitespace().take(3).collect::<Vec<_>>().join(" "),
        load_after: load_after.split_whitespace().take(3).collect::<Vec<_>>().join(" "),
        duration,
        versions,
    }
}

pub(crate) fn ratio(v: Option<f64>, base: Option<f64>) -> Option<f64> {
    match (v, base) {
        (Some(v), Some(b)) if b > 0.0 && v >= 0.0 => Some(v / b),
        _ => None,
    }
}

pub(crate) fn fmt_ratio(r: Option<f64>) -> String {
    match r {
        Some(r) if r >= 10.0 => format!("{r:.0}×"),
        Some(r) => format!("{r:.2}×"),
        None => "—".into(),
    }
}

pub(crate) fn cell(v: Option<f64>, base: Option<f64>, fmt: &dyn Fn(f64) -> String) -> String {
    match v {
        Some(x) => format!("{} ({})", fmt(x), fmt_ratio(ratio(v, base))),
        None => "n/a".into(),
    }
}

pub(crate) fn kib(x: f64) -> String {
    format!("{x:.0} KiB")
}
pub(crate) fn us(x: f64) -> String {
    format!("{x:.0} µs")
}
pub(crate) fn ms(x: f64) -> String {
    if x.abs() >= 100.0 { format!("{x:.0} ms") } else { format!("{x:.1} ms") }
}
pub(crate) fn count(x: f64) -> String {
    format!("{x:.0}")
}
pub(crate) fn size(x: f64) -> String {
    format!("{:.1} KiB", x / 1024.0)
}

/// One table row: the figure, then each tool's value with its ratio to the tool at `base`.
pub(crate) fn row(
    out: &mut String,
    label: &str,
    values: &[Option<f64>],
    base: usize,
    fmt: &dyn Fn(f64) -> String,
) {
    let b = values.get(base).copied().flatten();
    let cells: Vec<String> = values.iter().map(|v| cell(*v, b, fmt)).collect();
    let _ = writeln!(out, "| {label} | {} |", cells.join(" | "));
}

/// A bar reinit is held to: (figure, reinit's value, what it is held against, met?).
pub(crate) struct Bar {
    pub(crate) figure: String,
    pub(crate) value: String,
    pub(crate) bar: String,
    pub(crate) met: Option<bool>,
}

pub(crate) fn bars(r: &Report) -> Vec<Bar> {
    let mut out = Vec::new();
    let (Some(me), tini) = (r.inits.first(), r.inits.iter().find(|i| i.name == "tini-static")) else {
        return out;
    };
    init_bars(&mut out, me, tini);
    term_bars(&mut out, me, tini);
    storm_bars(&mut out, me, tini);
    idle_bar(&mut out, me);
    if let Some(w) = r.watch.first() {
        watch_bars(&mut out, w);
    }
    restarts_bars(&mut out, &r.restarts);
    out
}

/// One bar against tini-static: reinit's `v` below (`strict`) or at most `factor` × tini's `t`.
fn cmp_bar(
    out: &mut Vec<Bar>,
    figure: &str,
    v: Option<f64>,
    t: Option<f64>,
    factor: f64,
    strict: bool,
    fmt: &dyn Fn(f64) -> String,
) {
    let met = match (v, t) {
        (Some(v), Some(t)) => Some(if strict { v < t * factor } else { v <= t * factor }),
        _ => None,
    };
    let op = if strict { "<" } else { "≤" };
    let scale = if factor == 1.0 { String::new() } else { format!("{factor} × ") };
    out.push(Bar {
        figure: figure.into(),
        value: v.map_or("n/a".into(), fmt),
        bar: format!("{op} {scale}tini-static ({})", t.map_or("n/a".into(), fmt)),
        met,
    });
}

/// Size, idle memory, start-up overhead and signal forwarding against tini-static.
fn init_bars(out: &mut Vec<Bar>, me: &InitResult, tini: Option<&InitResult>) {
    let mut cmp = |figure: &str, v, t, factor, strict, fmt: &dyn Fn(f64) -> String| {
        cmp_bar(out, figure, v, t, factor, strict, fmt)
    };
    let t = |f: fn(&InitResult) -> Option<f64>| tini.and_then(f);
    cmp("static binary size", me.bytes, t(|i| i.bytes), 1.0, true, &size);
    cmp("idle VmRSS", me.rss_kib, t(|i| i.rss_kib), 1.0, false, &kib);
    cmp("idle Pss", me.pss_kib, t(|i| i.pss_kib), 1.0, false, &kib);
    cmp("start-up overhead, not PID 1", me.start_plain_us, t(|i| i.start_plain_us), 1.0, false, &us);
    cmp("start-up overhead, PID 1", me.start_pid1_us, t(|i| i.start_pid1_us), 1.0, false, &us);
    cmp("signal forward p50, one CPU", me.sig_p50_us, t(|i| i.sig_p50_us), 1.1, false, &us);
    cmp("signal forward p99, one CPU", me.sig_p99_us, t(|i| i.sig_p99_us), 1.1, false, &us);
    cmp("signal forward p50, cross-CPU", me.sig_cross_p50_us, t(|i| i.sig_cross_p50_us), 1.1, false, &us);
    cmp("signal forward p99, cross-CPU", me.sig_cross_p99_us, t(|i| i.sig_cross_p99_us), 1.1, false, &us);
}

/// SIGTERM to a fresh instance: when the app gets it and when the init exits, against tini-static.
fn term_bars(out: &mut Vec<Bar>, me: &InitResult, tini: Option<&InitResult>) {
    let fresh = "SIGTERM to a fresh instance";
    let t = |f: fn(&InitResult) -> Option<f64>| tini.and_then(f);
    for (what, v, base) in [
        ("the app gets it, p50", me.term_app_p50_us, t(|i| i.term_app_p50_us)),
        ("the app gets it, p99", me.term_app_p99_us, t(|i| i.term_app_p99_us)),
        ("the init exits, p50", me.term_exit_p50_us, t(|i| i.term_exit_p50_us)),
        ("the init exits, p99", me.term_exit_p99_us, t(|i| i.term_exit_p99_us)),
    ] {
        cmp_bar(out, &format!("{fresh} → {what}"), v, base, 1.1, false, &us);
    }
}

/// The SIGCHLD storm: the init's CPU and the peak of zombies, against tini-static.
fn storm_bars(out: &mut Vec<Bar>, me: &InitResult, tini: Option<&InitResult>) {
    let mut cmp = |figure: &str, v, t, factor, strict, fmt: &dyn Fn(f64) -> String| {
        cmp_bar(out, figure, v, t, factor, strict, fmt)
    };
    let t = |f: fn(&InitResult) -> Option<f64>| tini.and_then(f);
    cmp("storm: init CPU (utime+stime)", me.storm_cpu_ms, t(|i| i.storm_cpu_ms), 1.0, false, &ms);
    cmp("storm: peak zombies", me.storm_peak_zombies, t(|i| i.storm_peak_zombies), 1.0, false, &count);
}

/// Idle: no voluntary wake-up at all while the app sleeps.
fn idle_bar(out: &mut Vec<Bar>, me: &InitResult) {
    out.push(Bar {
        figure: "idle wake-ups (voluntary ctx switches / window)".into(),
        value: me.idle_vol.map_or("n/a".into(), count),
        bar: "= 0".into(),
        met: me.idle_vol.map(|v| v == 0.0),
    });
}

/// Change → action: a `..data` swap is acted on at the kubelet's commit, a rename save after
/// the debounce.
fn watch_bars(out: &mut Vec<Bar>, w: &WatchResult) {
    let debounced = DEBOUNCE_MS + WATCH_SLACK_MS;
    for (name, s, limit, why) in [
        ("kubelet `..data` swap", &w.kube, KUBE_SWAP_MS, "read at the swap, no debounce"),
        ("rename save", &w.save, debounced, "debounce + 10 ms"),
    ] {
        for (what, v) in [("median", median(&s.latencies_ms)), ("p99", percentile(&s.latencies_ms, 0.99))] {
            out.push(Bar {
                figure: format!("change → action, {name}, {what}"),
                value: v.map_or("n/a".into(), ms),
                bar: format!("≤ {limit:.0} ms ({why})"),
                met: v.map(|v| v <= limit),
            });
        }
        out.push(Bar {
            figure: format!("change → action, {name}: double / early / missed"),
            value: format!("{} / {} / {} of {}", s.doubles, s.stale, s.missed, s.updates),
            bar: "0 / 0 / 0".into(),
            met: (s.updates > 0)
                .then_some(s.doubles == 0 && s.stale == 0 && s.missed == 0 && s.error.is_none()),
        });
    }
}

/// Restarts under load (bench/restarts.sh): no failed request with `--listen`, and start-first
/// keeps every request short while the new app starts.
fn restarts_bars(out: &mut Vec<Bar>, r: &Restarts) {
    for (mode, row) in [("`--listen` stop-first", r.stop_first), ("`--listen` start-first", r.start_first)] {
        if let Some(row) = row {
            out.push(Bar {
                figure: format!("restarts under load, {mode}: failed requests"),
                value: count(row.failed),
                bar: "= 0".into(),
                met: Some(row.failed == 0.0),
            });
        }
    }
    if let Some(row) = r.start_first {
        let contrast = r.stop_first.map_or(String::new(), |s| format!(" (stop-first: {})", ms(s.longest_ms)));
        out.push(Bar {
            figure: "restarts under load, `--listen` start-first: longest request".into(),
            value: ms(row.longest_ms),
            bar: format!("≤ {START_FIRST_LONGEST_MS:.0} ms{contrast}"),
            met: Some(row.longest_ms <= START_FIRST_LONGEST_MS),
        });
    }
}

pub(crate) fn render(h: &Header, r: &Report, quick: bool) -> String {
    let mut md = String::new();
    header_md(&mut md, h, quick);
    bars_md(&mut md, r);
    inits_md(&mut md, r);
    problems_md(&mut md, r);
    watchers_md(&mut md, r);
    startup_md(&mut md, r);
    how_md(&mut md, r);
    md
}

/// Title, machine, versions.
fn header_md(md: &mut String, h: &Header, quick: bool) {
    let _ = writeln!(md, "# reinit benchmarks\n");
    if quick {
        let _ = writeln!(md, "**QUICK RUN (`--quick`): small counts, figures not meaningful.**\n");
    }
    let _ = writeln!(
        md,
        "{} · {} · {} ({} cores) · load average {} before, {} after · {:.0} s\n",
        h.date,
        h.kernel,
        h.cpu,
        h.cores,
        h.load_before,
        h.load_after,
        h.duration.as_secs_f64()
    );
    let versions: Vec<String> = h.versions.iter().map(|(n, v)| format!("{n} {v}")).collect();
    let _ = writeln!(md, "Versions: {}.\n", versions.join(" · "));
    let _ = writeln!(
        md,
        "Produced by `bench/run.sh` (driver: `bench/src/main.rs`, whose header documents each method).\n"
    );
}

/// reinit against its bars.
fn bars_md(md: &mut String, r: &Report) {
    let _ = writeln!(md, "## reinit against its bars\n");
    let _ = writeln!(md, "| figure | reinit | bar | met |\n|---|---|---|---|");
    for b in bars(r) {
        let met = match b.met {
            Some(true) => "yes",
            Some(false) => "**no**",
            None => "n/a",
        };
        let _ = writeln!(md, "| {} | {} | {} | {met} |", b.figure, b.value, b.bar);
    }
}

/// Every init figure, as a ratio to tini-static.
fn inits_md(md: &mut String, r: &Report) {
    let base = r.inits.iter().position(|i| i.name == "tini-static").unwrap_or(0);
    let _ = writeln!(md, "\n## As an init (ratio to tini-static; lower is better)\n");
    let names: Vec<&str> = r.inits.iter().map(|i| i.name.as_str()).collect();
    let _ = writeln!(md, "| figure | {} |", names.join(" | "));
    let _ = writeln!(md, "|---|{}", "---|".repeat(names.len()));
    let col = |f: fn(&InitResult) -> Option<f64>| -> Vec<Option<f64>> { r.inits.iter().map(f).collect() };
    let links: Vec<String> =
        r.inits.iter().map(|i| if i.linkage.is_empty() { "?".into() } else { i.linkage.clone() }).collect();
    let _ = writeln!(md, "| linkage (`file`) | {} |", links.join(" | "));
    row(md, "binary size", &col(|i| i.bytes), base, &size);
    row(md, "idle VmRSS (PID 1, wrapping `sleep`)", &col(|i| i.rss_kib), base, &kib);
    row(md, "idle Pss", &col(|i| i.pss_kib), base, &kib);
    row(md, "start-up overhead, not PID 1 (median)", &col(|i| i.start_plain_us), base, &us);
    row(md, "start-up overhead, PID 1 (median)", &col(|i| i.start_pid1_us), base, &us);
    row(md, "signal forward latency p50, one CPU", &col(|i| i.sig_p50_us), base, &us);
    row(md, "signal forward latency p99, one CPU", &col(|i| i.sig_p99_us), base, &us);
    row(md, "signal forward latency p50, cross-CPU", &col(|i| i.sig_cross_p50_us), base, &us);
    row(md, "signal forward latency p99, cross-CPU", &col(|i| i.sig_cross_p99_us), base, &us);
    row(md, "SIGTERM to a fresh instance → the app gets it, p50", &col(|i| i.term_app_p50_us), base, &us);
    row(md, "SIGTERM to a fresh instance → the app gets it, p99", &col(|i| i.term_app_p99_us), base, &us);
    row(md, "SIGTERM to a fresh instance → the init exits, p50", &col(|i| i.term_exit_p50_us), base, &us);
    row(md, "SIGTERM to a fresh instance → the init exits, p99", &col(|i| i.term_exit_p99_us), base, &us);
    row(md, "SIGCHLD storm: wall time", &col(|i| i.storm_wall_ms), base, &ms);
    row(md, "SIGCHLD storm: init CPU, utime+stime", &col(|i| i.storm_cpu_ms), base, &ms);
    row(
        md,
        "SIGCHLD storm: init CPU, schedstat",
        &col(|i| i.storm_sched_ms.filter(|v| v.is_finite())),
        base,
        &ms,
    );
    row(md, "SIGCHLD storm: peak zombies", &col(|i| i.storm_peak_zombies), base, &count);
    row(md, "idle wake-ups: voluntary ctx switches / window", &col(|i| i.idle_vol), base, &count);
    row(md, "idle wake-ups: involuntary ctx switches / window", &col(|i| i.idle_invol), base, &count);
}

/// What went wrong while measuring the inits, if anything.
fn problems_md(md: &mut String, r: &Report) {
    let problems: Vec<String> = r
        .inits
        .iter()
        .filter(|i| {
            i.start_failures + i.sig_lost + i.term_lost + i.storm_failures > 0
                || i.storm_retries.is_some_and(|v| v > 0.0)
        })
        .map(|i| {
            format!(
                "{}: {} failed start-up runs, {} lost signals, {} lost fresh SIGTERMs, {} failed storms, {} fork retries",
                i.name,
                i.start_failures,
                i.sig_lost,
                i.term_lost,
                i.storm_failures,
                i.storm_retries.unwrap_or(0.0)
            )
        })
        .collect();
    if !problems.is_empty() {
        let _ = writeln!(md, "\nProblems: {}.", problems.join("; "));
    }
}

/// Every watcher figure, as a ratio to watchexec.
fn watchers_md(md: &mut String, r: &Report) {
    if r.watch.is_empty() {
        return;
    }
    let wbase = r.watch.iter().position(|w| w.name == "watchexec");
    let _ = writeln!(md, "\n## As a config watcher (ratio to watchexec; lower is better)\n");
    let names: Vec<&str> = r.watch.iter().map(|w| w.name.as_str()).collect();
    let _ = writeln!(md, "| figure | {} |", names.join(" | "));
    let _ = writeln!(md, "|---|{}", "---|".repeat(names.len()));
    let wb = wbase.unwrap_or(usize::MAX);
    let col =
        |f: &dyn Fn(&WatchResult) -> Option<f64>| -> Vec<Option<f64>> { r.watch.iter().map(f).collect() };
    let links: Vec<String> =
        r.watch.iter().map(|w| if w.linkage.is_empty() { "?".into() } else { w.linkage.clone() }).collect();
    let _ = writeln!(md, "| linkage (`file`) | {} |", links.join(" | "));
    row(md, "binary size", &col(&|w| w.bytes), wb, &size);
    watch_rows(md, r, wb);
    row(md, "idle VmRSS (wrapping `sleep`)", &col(&|w| w.rss_kib), wb, &kib);
    row(md, "idle Pss", &col(&|w| w.pss_kib), wb, &kib);
    row(md, "idle wake-ups: voluntary ctx switches / window", &col(&|w| w.idle_vol), wb, &count);
    row(md, "idle wake-ups: involuntary ctx switches / window", &col(&|w| w.idle_invol), wb, &count);
}

/// Latency and double / missed / stale rows of both watch scenarios.
fn watch_rows(md: &mut String, r: &Report, wb: usize) {
    let col =
        |f: &dyn Fn(&WatchResult) -> Option<f64>| -> Vec<Option<f64>> { r.watch.iter().map(f).collect() };
    for (name, pick) in [
        ("kubelet `..data` swap", (|w: &WatchResult| &w.kube) as fn(&WatchResult) -> &WatchStats),
        ("rename save", |w: &WatchResult| &w.save),
    ] {
        row(md, &format!("{name} → new app: median"), &col(&|w| median(&pick(w).latencies_ms)), wb, &ms);
        row(
            md,
            &format!("{name} → new app: p99"),
            &col(&|w| percentile(&pick(w).latencies_ms, 0.99)),
            wb,
            &ms,
        );
        let cells: Vec<String> = r
            .watch
            .iter()
            .map(|w| {
                let s = pick(w);
                let mut c = format!("{} / {} / {} of {}", s.doubles, s.missed, s.stale, s.updates);
                if s.late > 0 {
                    c.push_str(&format!(" ({} late)", s.late));
                }
                if let Some(e) = &s.error {
                    c.push_str(&format!(" (error: {e})"));
                }
                c
            })
            .collect();
        let _ = writeln!(md, "| {name}: double / missed / early restarts | {} |", cells.join(" | "));
    }
}

/// The absolute start-up times behind the overheads.
fn startup_md(md: &mut String, r: &Report) {
    if !r.startup_abs.is_empty() {
        let _ = writeln!(md, "\n<details><summary>Start-up: median wall time of each variant</summary>\n");
        let _ = writeln!(md, "| variant | median |\n|---|---|");
        for (label, v) in &r.startup_abs {
            let _ = writeln!(md, "| {label} | {v:.0} µs |");
        }
        let _ = writeln!(md, "\n</details>");
    }
}

/// How each figure is measured, and the run's notes.
fn how_md(md: &mut String, r: &Report) {
    let _ = writeln!(md, "\n## How\n");
    let _ = writeln!(
        md,
        "- Inits run as their docs recommend: `reinit -- CMD`, `tini -- CMD` (`tini -s -- CMD` when not PID 1), \
         `dumb-init CMD`, `catatonit -- CMD`. PID 1 = under `unshare --pid --fork --mount-proc`.\n\
         - Interleaved: start-up runs round robin in blocks of 10; signal samples one per tool per round; \
         storms one per tool per round (order rotated); idle figures from all tools at once over the same window; \
         watch updates one per instance per round.\n\
         - Start-up: median wall time of `INIT … true` minus that of bare `true` (same mode).\n\
         - Signal latency: from just before `kill(init, SIGUSR1)` to the time fake_app reads on \
         `CLOCK_MONOTONIC` as it handles the signal (the `at=` of its `signal 10` line: not when the driver gets \
         the CPU to read it), the init as PID 1; once with the driver, the inits and the apps on \
         one CPU, once with the inits and apps on one CPU and the driver on another (cross-CPU: each signal wakes \
         another vCPU there and back). Placement is fixed because, left free, it changes the figures more than \
         the inits do.\n\
         - SIGTERM to a fresh instance: a new instance per sample (the init as PID 1 wrapping fake_app); once the \
         app says `ready`, `kill(init, SIGTERM)`, the init's first signal; → the app gets it: until the app handles it \
         (its own time, as for signal latency); → the init exits: until the init's pidfd turns readable (the app exits 0 on \
         SIGTERM, the init reaps it and exits). 1000 instances per init after 5 warm-up rounds, round robin, the \
         driver, the inits and the apps on one CPU.\n\
         - Storm: 20 000 double-forked orphans under the init as PID 1; wall time from first fork until all are \
         reaped; the init's own utime+stime (`/proc/PID/stat`, 10 ms ticks) and run time (`/proc/PID/schedstat`); \
         zombies counted in the namespace's `/proc` every 20 forks. Median of 3 (peak: largest).\n\
         - Idle: after 1 s to settle, context switches over the window (threads summed); memory read after it. \
         Dynamic binaries (tini, dumb-init, entr) also map glibc, whose shared pages Pss splits with other processes.\n\
         - Change → action: from just before the `rename` that makes the new content live (for the kubelet \
         update: the `rename(..data_tmp, ..data)`, as the simulator records it) to the new app's `ready` line; \
         missed = no `ready` within 3 s; double = another `ready` before 500 ms of quiet; \
         early = the new app read the old content (started before the update went live). watchexec: `--restart --watch DIR`; entr: `echo DIR/app.conf | entr -rn APP`; \
         reinit: `--watch DIR`.",
    );
    if !r.notes.is_empty() {
        let _ = writeln!(md, "\nNotes: {}.", r.notes.join("; "));
    }
}
