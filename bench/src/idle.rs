//! `idle`: wake-ups and memory of every tool wrapping `sleep`.

use crate::*;

pub(crate) fn idle(
    inits: &[Init],
    watchers: &[Watcher],
    scratch: &Path,
    c: &Counts,
    report: &mut Report,
) -> Res<()> {
    let sleep = vec!["sleep".to_string(), "1000".to_string()];
    let n_i = inits.len();
    let total = n_i + watchers.len();
    // per tool: rss, pss, vol, invol
    let mut m: Vec<[Vec<f64>; 4]> = vec![Default::default(); total];
    for round in 0..c.idle_rounds {
        progress(&format!(
            "idle: round {}/{}: {total} tools at once, {} s window",
            round + 1,
            c.idle_rounds,
            c.idle_secs
        ));
        let mut running = start_tools(inits, watchers, scratch, &sleep, round)?;
        sample_window(&running, c.idle_secs, &mut m);
        for (r, _) in &mut running {
            r.stop(libc::SIGKILL, Duration::from_secs(2));
        }
    }
    record_figures(&m, n_i, report);
    Ok(())
}

/// Starts every init and watcher wrapping `sleep`, and waits until each has exec'd its own binary.
fn start_tools(
    inits: &[Init],
    watchers: &[Watcher],
    scratch: &Path,
    sleep: &[String],
    round: usize,
) -> Res<Vec<(Running, PathBuf)>> {
    let mut running: Vec<(Running, PathBuf)> = Vec::new();
    for init in inits {
        running.push((start(&init.argv(true, sleep), true, Stdio::null(), false)?, init.path.clone()));
    }
    for w in watchers {
        let dir = scratch.join(format!("idle-{}-{round}", w.name));
        fs::create_dir_all(&dir)?;
        fs::write(dir.join("app.conf"), "v0\n")?;
        let (argv, stdin) = w.command(&dir, sleep, scratch)?;
        running.push((start(&argv, false, stdin, false)?, w.path.clone()));
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    for (r, exe) in &running {
        r.wait_exec(exe, deadline);
    }
    Ok(running)
}

/// After a settling second, each tool's context switches over a `secs` window, then its memory.
fn sample_window(running: &[(Running, PathBuf)], secs: u64, m: &mut [[Vec<f64>; 4]]) {
    // Let every tool finish starting its child and settle.
    std::thread::sleep(Duration::from_secs(1));
    let before: Vec<Option<(u64, u64)>> = running.iter().map(|(r, _)| context_switches(r.pid)).collect();
    std::thread::sleep(Duration::from_secs(secs));
    let after: Vec<Option<(u64, u64)>> = running.iter().map(|(r, _)| context_switches(r.pid)).collect();
    for (t, (r, _)) in running.iter().enumerate() {
        if let Some((rss, pss)) = memory(r.pid) {
            m[t][0].push(rss as f64);
            m[t][1].push(pss as f64);
        }
        if let (Some(b), Some(a)) = (before[t], after[t]) {
            m[t][2].push(a.0.saturating_sub(b.0) as f64);
            m[t][3].push(a.1.saturating_sub(b.1) as f64);
        }
    }
}

/// Per tool, the median memory and the most wake-ups of any round, into the inits' or watchers' row.
fn record_figures(m: &[[Vec<f64>; 4]], n_i: usize, report: &mut Report) {
    for (t, s) in m.iter().enumerate() {
        let (rss, pss, vol, invol) = (median(&s[0]), median(&s[1]), max_of(&s[2]), max_of(&s[3]));
        if t < n_i {
            let r = &mut report.inits[t];
            (r.rss_kib, r.pss_kib, r.idle_vol, r.idle_invol) = (rss, pss, vol, invol);
        } else {
            let r = &mut report.watch[t - n_i];
            (r.rss_kib, r.pss_kib, r.idle_vol, r.idle_invol) = (rss, pss, vol, invol);
        }
    }
}
