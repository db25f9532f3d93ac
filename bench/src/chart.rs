//! The SVG chart: grouped bars on a log2 scale around the reference tool.

use crate::*;

pub(crate) fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('`', "")
}

/// A figure and each tool's value for it, as a ratio to the reference tool.
type Group = (String, Vec<(String, Option<f64>)>);

// Geometry: group labels right-aligned at LABEL_W; a margin for the value labels of bars that
// reach the left end; the plot; a margin on the right.
const WIDTH: f64 = 880.0;
const LABEL_W: f64 = 170.0;
const RIGHT: f64 = 50.0;
const PLOT_LEFT: f64 = LABEL_W + 45.0;
const BAR_H: f64 = 9.0;
const GAP: f64 = 2.0;
const GROUP_GAP: f64 = 10.0;
/// log2 range each side: 1/32× .. 32×.
const SPAN: f64 = 5.0;
const PLOT_W: f64 = WIDTH - PLOT_LEFT - RIGHT;
const CENTER: f64 = PLOT_LEFT + PLOT_W / 2.0;
const COLORS: [&str; 5] = ["#d6336c", "#1c7ed6", "#74c0fc", "#f59f00", "#37b24d"];

fn x_of(ratio: f64) -> f64 {
    CENTER + (ratio.max(1e-9).log2().clamp(-SPAN, SPAN) / SPAN) * (PLOT_W / 2.0)
}

fn color_of(name: &str, names: &[String]) -> &'static str {
    let i = names.iter().position(|n| n == name).unwrap_or(0);
    COLORS[i % COLORS.len()]
}

/// Grouped horizontal bars on a log2 scale around 1× (the reference tool): left of the line is
/// smaller (better) than the reference.
pub(crate) fn chart(h: &Header, r: &Report) -> String {
    let init_names: Vec<String> = r.inits.iter().map(|i| i.name.clone()).collect();
    let watch_names: Vec<String> = r.watch.iter().map(|w| w.name.clone()).collect();
    let mut body = String::new();
    let mut y = 58.0;
    let title = "As an init: ratio to tini-static (log scale; left of 1× = smaller/faster = better)";
    section(&mut body, &mut y, title, &init_groups(r), &init_names);
    if !r.watch.is_empty() {
        let title = "As a config watcher: ratio to watchexec";
        section(&mut body, &mut y, title, &watch_groups(r), &watch_names);
    }
    document(h, &body, y + 4.0)
}

fn init_groups(r: &Report) -> Vec<Group> {
    let base = r.inits.iter().position(|i| i.name == "tini-static");
    let pick = |f: fn(&InitResult) -> Option<f64>| -> Vec<(String, Option<f64>)> {
        let b = base.and_then(|b| f(&r.inits[b]));
        r.inits.iter().map(|i| (i.name.clone(), ratio(f(i), b))).collect()
    };
    vec![
        ("binary size".into(), pick(|i| i.bytes)),
        ("idle Pss".into(), pick(|i| i.pss_kib)),
        ("start-up, not PID 1".into(), pick(|i| i.start_plain_us)),
        ("start-up, PID 1".into(), pick(|i| i.start_pid1_us)),
        ("signal p50 (one CPU)".into(), pick(|i| i.sig_p50_us)),
        ("signal p99 (one CPU)".into(), pick(|i| i.sig_p99_us)),
        ("signal p50 (cross-CPU)".into(), pick(|i| i.sig_cross_p50_us)),
        ("fresh SIGTERM → app p50".into(), pick(|i| i.term_app_p50_us)),
        ("fresh SIGTERM → init exits p50".into(), pick(|i| i.term_exit_p50_us)),
        ("storm: init CPU".into(), pick(|i| i.storm_cpu_ms)),
        ("storm: peak zombies".into(), pick(|i| i.storm_peak_zombies)),
    ]
}

fn watch_groups(r: &Report) -> Vec<Group> {
    let wbase = r.watch.iter().position(|w| w.name == "watchexec");
    let pick = |f: &dyn Fn(&WatchResult) -> Option<f64>| -> Vec<(String, Option<f64>)> {
        let b = wbase.and_then(|b| f(&r.watch[b]));
        r.watch.iter().map(|w| (w.name.clone(), ratio(f(w), b))).collect()
    };
    vec![
        ("..data swap: median".into(), pick(&|w| median(&w.kube.latencies_ms))),
        ("..data swap: p99".into(), pick(&|w| percentile(&w.kube.latencies_ms, 0.99))),
        ("rename save: median".into(), pick(&|w| median(&w.save.latencies_ms))),
        ("idle Pss".into(), pick(&|w| w.pss_kib)),
    ]
}

/// A titled block of groups with its grid and legend, from `*y` down; `*y` ends below it.
fn section(body: &mut String, y: &mut f64, title: &str, groups: &[Group], names: &[String]) {
    let _ = writeln!(body, r#"<text x="10" y="{:.1}" class="h">{}</text>"#, *y, esc(title));
    *y += 8.0;
    let top = *y;
    for (label, bars) in groups {
        let gh = bars.len() as f64 * (BAR_H + GAP);
        let _ = writeln!(
            body,
            r#"<text x="{:.1}" y="{:.1}" class="l" text-anchor="end">{}</text>"#,
            LABEL_W - 8.0,
            *y + gh / 2.0 + 4.0,
            esc(label)
        );
        for (k, (name, value)) in bars.iter().enumerate() {
            bar(body, *y + k as f64 * (BAR_H + GAP), name, *value, color_of(name, names));
        }
        *y += gh + GROUP_GAP;
    }
    grid(body, top, *y);
    *y += 26.0;
    legend(body, *y, names);
    *y += 26.0;
}

/// One tool's bar at height `by`, from the 1× line to its ratio, with the ratio beside it.
fn bar(body: &mut String, by: f64, name: &str, value: Option<f64>, color: &str) {
    let Some(v) = value else {
        let _ = writeln!(
            body,
            r#"<text x="{:.1}" y="{:.1}" class="v">{} n/a</text>"#,
            CENTER + 3.0,
            by + BAR_H - 2.0,
            esc(name)
        );
        return;
    };
    let bar_h = BAR_H;
    let x = x_of(v);
    let (x0, w) = if x < CENTER { (x, CENTER - x) } else { (CENTER, x - CENTER) };
    // The reference tool (1×) gets a thin mark in its colour.
    let (x0, w) = if w < 2.0 { (CENTER - 1.0, 2.0) } else { (x0, w) };
    let _ = writeln!(
        body,
        r#"<rect x="{x0:.1}" y="{by:.1}" width="{w:.1}" height="{bar_h}" fill="{color}"><title>{}: {}</title></rect>"#,
        esc(name),
        fmt_ratio(Some(v))
    );
    let (tx, anchor) = if x < CENTER { (x - 3.0, "end") } else { (x + 3.0, "start") };
    let _ = writeln!(
        body,
        r#"<text x="{tx:.1}" y="{:.1}" class="v" text-anchor="{anchor}">{}</text>"#,
        by + BAR_H - 2.0,
        fmt_ratio(Some(v))
    );
}

/// The grid lines of the groups from `top` to `y`, the 1× line, and their labels.
fn grid(body: &mut String, top: f64, y: f64) {
    for p in -SPAN as i32..=SPAN as i32 {
        let x = x_of(2f64.powi(p));
        let label = if p >= 0 { format!("{}×", 1u64 << p) } else { format!("1/{}×", 1u64 << -p) };
        let class = if p == 0 { "one" } else { "grid" };
        let _ = writeln!(
            body,
            r#"<line x1="{x:.1}" y1="{:.1}" x2="{x:.1}" y2="{:.1}" class="{class}"/>"#,
            top - 4.0,
            y - GROUP_GAP + 2.0
        );
        if p % 2 == 0 || p == -1 || p == 1 {
            let _ = writeln!(
                body,
                r#"<text x="{x:.1}" y="{:.1}" class="t" text-anchor="middle">{label}</text>"#,
                y - GROUP_GAP + 14.0
            );
        }
    }
}

fn legend(body: &mut String, y: f64, names: &[String]) {
    let mut lx = PLOT_LEFT;
    for name in names {
        let _ = writeln!(
            body,
            r#"<rect x="{lx:.1}" y="{:.1}" width="10" height="10" fill="{}"/><text x="{:.1}" y="{:.1}" class="l">{}</text>"#,
            y - 9.0,
            color_of(name, names),
            lx + 14.0,
            y,
            esc(name)
        );
        lx += 14.0 + 8.0 * name.len() as f64 + 18.0;
    }
}

/// The SVG document around `body`: style, background, title and the machine.
fn document(h: &Header, body: &str, height: f64) -> String {
    let width = WIDTH;
    let mut svg = String::new();
    let _ = writeln!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0}" height="{height:.0}" viewBox="0 0 {width:.0} {height:.0}" font-family="sans-serif">"#
    );
    let _ = writeln!(
        svg,
        "<style>.h{{font-size:14px;font-weight:bold}} .l{{font-size:12px}} .v{{font-size:10px;fill:#333}} .t{{font-size:10px;fill:#666}} .s{{font-size:11px;fill:#555}} .grid{{stroke:#ddd;stroke-width:1}} .one{{stroke:#000;stroke-width:1.5}}</style>"
    );
    let _ = writeln!(svg, r##"<rect width="100%" height="100%" fill="#fff"/>"##);
    let _ = writeln!(svg, r#"<text x="10" y="20" class="h">reinit benchmarks (bench/run.sh)</text>"#);
    let _ = writeln!(
        svg,
        r#"<text x="10" y="36" class="s">{}</text>"#,
        esc(&format!("{} · {} · {} ({} cores)", h.date, h.kernel, h.cpu, h.cores))
    );
    svg.push_str(body);
    svg.push_str("</svg>\n");
    svg
}
