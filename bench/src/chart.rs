//! The SVG chart: grouped bars on a log2 scale around the reference tool.

use crate::*;

pub(crate) fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('`', "")
}

/// Grouped horizontal bars on a log2 scale around 1× (the reference tool): left of the line is
/// smaller (better) than the reference.
pub(crate) fn chart(h: &Header, r: &Report) -> String {
    type Group = (String, Vec<(String, Option<f64>)>);
    let base = r.inits.iter().position(|i| i.name == "tini-static");
    let init_groups: Vec<Group> = {
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
            ("storm: init CPU".into(), pick(|i| i.storm_cpu_ms)),
            ("storm: peak zombies".into(), pick(|i| i.storm_peak_zombies)),
        ]
    };
    let wbase = r.watch.iter().position(|w| w.name == "watchexec");
    let watch_groups: Vec<Group> = {
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
    };
    let colors = ["#d6336c", "#1c7ed6", "#74c0fc", "#f59f00", "#37b24d"];
    let color_of = |name: &str, names: &[String]| -> &str {
        let i = names.iter().position(|n| n == name).unwrap_or(0);
        colors[i % colors.len()]
    };
    let init_names: Vec<String> = r.inits.iter().map(|i| i.name.clone()).collect();
    let watch_names: Vec<String> = r.watch.iter().map(|w| w.name.clone()).collect();

    // Group labels right-aligned at `label_w`; a margin for the value labels of bars that reach
    // the left end; the plot; a margin on the right.
    let (width, label_w, right) = (880.0_f64, 170.0_f64, 50.0_f64);
    let plot_left = label_w + 45.0;
    let (bar_h, gap, group_gap) = (9.0_f64, 2.0_f64, 10.0_f64);
    let span = 5.0; // log2 range each side: 1/32× .. 32×
    let plot_w = width - plot_left - right;
    let center = plot_left + plot_w / 2.0;
    let x_of = |ratio: f64| center + (ratio.max(1e-9).log2().clamp(-span, span) / span) * (plot_w / 2.0);

    let mut body = String::new();
    let mut y = 58.0;
    let section = |title: &str, groups: &[Group], names: &[String], y: &mut f64, body: &mut String| {
        let _ = writeln!(body, r#"<text x="10" y="{:.1}" class="h">{}</text>"#, *y, esc(title));
        *y += 8.0;
        let top = *y;
        for (label, bars) in groups {
            let n = bars.len() as f64;
            let gh = n * (bar_h + gap);
            let _ = writeln!(
                body,
                r#"<text x="{:.1}" y="{:.1}" class="l" text-anchor="end">{}</text>"#,
                label_w - 8.0,
                *y + gh / 2.0 + 4.0,
                esc(label)
            );
            for (k, (name, value)) in bars.iter().enumerate() {
                let by = *y + k as f64 * (bar_h + gap);
                let color = color_of(name, names);
                match value {
                    Some(v) => {
                        let x = x_of(*v);
                        let (x0, w) = if x < center { (x, center - x) } else { (center, x - center) };
                        // The reference tool (1×) gets a thin mark in its colour.
                        let (x0, w) = if w < 2.0 { (center - 1.0, 2.0) } else { (x0, w) };
                        let _ = writeln!(
                            body,
                            r#"<rect x="{x0:.1}" y="{by:.1}" width="{w:.1}" height="{bar_h}" fill="{color}"><title>{}: {}</title></rect>"#,
                            esc(name),
                            fmt_ratio(Some(*v))
                        );
                        let (tx, anchor) = if x < center { (x - 3.0, "end") } else { (x + 3.0, "start") };
                        let _ = writeln!(
                            body,
                            r#"<text x="{tx:.1}" y="{:.1}" class="v" text-anchor="{anchor}">{}</text>"#,
                            by + bar_h - 2.0,
                            fmt_ratio(Some(*v))
                        );
                    }
                    None => {
                        let _ = writeln!(
                            body,
                            r#"<text x="{:.1}" y="{:.1}" class="v">{} n/a</text>"#,
                            center + 3.0,
                            by + bar_h - 2.0,
                            esc(name)
                        );
                    }
                }
            }
            *y += gh + group_gap;
        }
        // grid and the 1× line
        for p in -span as i32..=span as i32 {
            let x = x_of(2f64.powi(p));
            let label = if p >= 0 { format!("{}×", 1u64 << p) } else { format!("1/{}×", 1u64 << -p) };
            let class = if p == 0 { "one" } else { "grid" };
            let _ = writeln!(
                body,
                r#"<line x1="{x:.1}" y1="{:.1}" x2="{x:.1}" y2="{:.1}" class="{class}"/>"#,
                top - 4.0,
                *y - group_gap + 2.0
            );
            if p % 2 == 0 || p == -1 || p == 1 {
                let _ = writeln!(
                    body,
                    r#"<text x="{x:.1}" y="{:.1}" class="t" text-anchor="middle">{label}</text>"#,
                    *y - group_gap + 14.0
                );
            }
        }
        *y += 26.0;
        // legend
        let mut lx = plot_left;
        for name in names {
            let _ = writeln!(
                body,
                r#"<rect x="{lx:.1}" y="{:.1}" width="10" height="10" fill="{}"/><text x="{:.1}" y="{:.1}" class="l">{}</text>"#,
                *y - 9.0,
                color_of(name, names),
                lx + 14.0,
                *y,
                esc(name)
            );
            lx += 14.0 + 8.0 * name.len() as f64 + 18.0;
        }
        *y += 26.0;
    };
    section(
        "As an init: ratio to tini-static (log scale; left of 1× = smaller/faster = better)",
        &init_groups,
        &init_names,
        &mut y,
        &mut body,
    );
    if !r.watch.is_empty() {
        section("As a config watcher: ratio to watchexec", &watch_groups, &watch_names, &mut y, &mut body);
    }
    let height = y + 4.0;
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
    svg.push_str(&body);
    svg.push_str("</svg>\n");
    svg
}
