//! `startup`: wall time of `INIT -- true` minus that of bare `true`.

use crate::*;

/// One command timed: (label, init index or None for bare, pid1, argv).
type Variant = (String, Option<usize>, bool, Vec<String>);

pub(crate) fn startup(inits: &[Init], c: &Counts, report: &mut Report) -> Res<()> {
    let variants = variants(inits);
    let (samples, failures) = time_variants(&variants, c);
    record_overheads(&variants, &samples, &failures, report);
    Ok(())
}

/// Bare `true`, then every init wrapping it: first not as PID 1, then as PID 1.
fn variants(inits: &[Init]) -> Vec<Variant> {
    let truth = vec!["true".to_string()];
    let mut variants: Vec<Variant> = Vec::new();
    for pid1 in [false, true] {
        let mode = if pid1 { "PID 1" } else { "not PID 1" };
        let bare = if pid1 { under_unshare(&truth) } else { truth.clone() };
        variants.push((format!("`{}` ({mode})", bare.join(" ")), None, pid1, bare));
        for (i, init) in inits.iter().enumerate() {
            let argv = init.argv(pid1, &truth);
            let argv = if pid1 { under_unshare(&argv) } else { argv };
            variants.push((format!("{} ({mode})", init.name), Some(i), pid1, argv));
        }
    }
    variants
}

/// Runs every variant in blocks, round after round; per variant, its wall times (µs) and failures.
fn time_variants(variants: &[Variant], c: &Counts) -> (Vec<Vec<f64>>, Vec<usize>) {
    let mut samples: Vec<Vec<f64>> = vec![Vec::new(); variants.len()];
    let mut failures = vec![0usize; variants.len()];
    let rounds = c.startup_runs.div_ceil(c.startup_block);
    for round in 0..rounds {
        if round % 5 == 0 {
            progress(&format!(
                "startup: round {}/{rounds} ({} variants, blocks of {})",
                round + 1,
                variants.len(),
                c.startup_block
            ));
        }
        // Rotate the order each round so no variant always follows the same one.
        for k in 0..variants.len() {
            let v = (k + round) % variants.len();
            let argv = &variants[v].3;
            for _ in 0..c.startup_block {
                let t0 = Instant::now();
                let status = Command::new(&argv[0])
                    .args(&argv[1..])
                    .stdin(Stdio::null())
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .status();
                let dt = t0.elapsed();
                match status {
                    Ok(s) if s.success() => samples[v].push(dt.as_secs_f64() * 1e6),
                    _ => failures[v] += 1,
                }
            }
        }
    }
    (samples, failures)
}

/// Each variant's median wall time, and each init's overhead over bare `true` with its failures.
fn record_overheads(variants: &[Variant], samples: &[Vec<f64>], failures: &[usize], report: &mut Report) {
    let med: Vec<Option<f64>> = samples.iter().map(|s| median(s)).collect();
    for (v, (label, _, _, _)) in variants.iter().enumerate() {
        if let Some(m) = med[v] {
            report.startup_abs.push((label.clone(), m));
        }
    }
    for pid1 in [false, true] {
        let bare = variants.iter().position(|v| v.1.is_none() && v.2 == pid1).and_then(|v| med[v]);
        for (v, variant) in variants.iter().enumerate() {
            let (Some(i), true) = (variant.1, variant.2 == pid1) else { continue };
            let overhead = match (med[v], bare) {
                (Some(m), Some(b)) => Some(m - b),
                _ => None,
            };
            let r = &mut report.inits[i];
            if pid1 {
                r.start_pid1_us = overhead;
            } else {
                r.start_plain_us = overhead;
            }
            r.start_failures += failures[v];
        }
    }
}
