//! `storm`: 20 000 orphans reparented to the init (and the storm app, `bench storm N`).

use crate::*;

pub(crate) fn storm(inits: &[Init], c: &Counts, report: &mut Report) -> Res<()> {
    let me = std::env::current_exe()?.display().to_string();
    let app = vec![me, "storm".to_string(), c.storm_orphans.to_string()];
    let n = inits.len();
    // per init: wall, cpu, sched, peak, retries
    let mut m: Vec<[Vec<f64>; 5]> = vec![Default::default(); n];
    for round in 0..c.storm_rounds {
        for k in 0..n {
            let i = (k + round) % n;
            progress(&format!(
                "storm: round {}/{}: {} ({} orphans)",
                round + 1,
                c.storm_rounds,
                inits[i].name,
                c.storm_orphans
            ));
            match storm_once(&inits[i], &app) {
                Ok(s) => {
                    for (slot, value) in m[i].iter_mut().zip(s) {
                        slot.push(value);
                    }
                }
                Err(e) => {
                    eprintln!("bench: storm under {}: {e}", inits[i].name);
                    report.inits[i].storm_failures += 1;
                }
            }
        }
    }
    for (i, s) in m.iter().enumerate() {
        let r = &mut report.inits[i];
        r.storm_wall_ms = median(&s[0]);
        r.storm_cpu_ms = median(&s[1]);
        r.storm_sched_ms = median(&s[2]);
        r.storm_peak_zombies = max_of(&s[3]);
        r.storm_retries = max_of(&s[4]);
    }
    Ok(())
}

pub(crate) fn storm_once(init: &Init, app: &[String]) -> Res<[f64; 5]> {
    let mut r = start(&init.argv(true, app), true, Stdio::null(), true)?;
    let (line, _) = r
        .lines()?
        .expect("storm ", Instant::now() + Duration::from_secs(150))
        .ok_or_else(|| fail("the storm app said nothing"))?;
    // Read the init's CPU now: every orphan is reaped, the init has not begun to exit.
    let cpu = cpu_ms(r.pid).ok_or_else(|| fail("cannot read the init's /proc/PID/stat"))?;
    let sched = sched_ms(r.pid).unwrap_or(f64::NAN);
    r.stop(libc::SIGTERM, Duration::from_secs(5));
    if !line.starts_with("storm done") {
        return Err(fail(line));
    }
    let field = |key: &str| -> Res<f64> {
        line.split_whitespace()
            .find_map(|kv| kv.strip_prefix(key))
            .and_then(|v| v.parse::<f64>().ok())
            .ok_or_else(|| fail(format!("no {key} in {line:?}")))
    };
    Ok([field("wall_us=")? / 1000.0, cpu, sched, field("peak_zombies=")?, field("retries=")?])
}

/// The storm app: `n` orphans, then wait until the init has reaped them all.
pub(crate) fn storm_main(args: &[String]) -> Res<()> {
    let n: u32 = args.first().and_then(|s| s.parse().ok()).ok_or_else(|| fail("usage: bench storm N"))?;
    let me = std::process::id() as i32;
    let start = Instant::now();
    let (peak, retries) = fork_orphans(n, me);
    let forked = start.elapsed();
    let (left, peak) = wait_until_reaped(me, start + Duration::from_secs(120), peak);
    let wall = start.elapsed();
    let mut out = std::io::stdout().lock();
    if left == 0 {
        writeln!(
            out,
            "storm done wall_us={} fork_us={} peak_zombies={peak} retries={retries}",
            wall.as_micros(),
            forked.as_micros()
        )?;
    } else {
        writeln!(out, "storm timeout: {left} processes still not reaped after {} s", wall.as_secs())?;
    }
    out.flush()?;
    drop(out);
    // Wait to be stopped (the init forwards the driver's SIGTERM); a safety net ends it anyway.
    std::thread::sleep(Duration::from_secs(60));
    Ok(())
}

/// Leaves `n` orphans to the init; returns the peak of zombies sampled meanwhile and the fork retries.
fn fork_orphans(n: u32, me: i32) -> (usize, u64) {
    let mut peak = 0usize;
    let mut retries = 0u64;
    let mut i = 0;
    while i < n {
        // SAFETY: this process is single-threaded; the child only forks again and _exits, both
        // async-signal-safe.
        let pid = unsafe { libc::fork() };
        if pid == 0 {
            // SAFETY: as above. Both the child and the grandchild leave at once; the grandchild
            // is the orphan. A failed inner fork is reported through the exit status.
            unsafe {
                let grandchild = libc::fork();
                libc::_exit(i32::from(grandchild < 0));
            }
        }
        if pid < 0 {
            // EAGAIN: the pid space is full of zombies the init has not reaped yet.
            retries += 1;
            std::thread::sleep(Duration::from_millis(1));
            continue;
        }
        let mut status = 0;
        // SAFETY: waiting for our own child with a valid status pointer.
        unsafe { libc::waitpid(pid, &mut status, 0) };
        if !(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0) {
            retries += 1;
            continue;
        }
        if i % STORM_SAMPLE_EVERY == 0 {
            peak = peak.max(census(me).1);
        }
        i += 1;
    }
    (peak, retries)
}

/// Polls until no other process is left or `deadline` passes: (processes left, peak of zombies).
fn wait_until_reaped(me: i32, deadline: Instant, mut peak: usize) -> (usize, usize) {
    loop {
        let (others, zombies) = census(me);
        peak = peak.max(zombies);
        if others == 0 || Instant::now() > deadline {
            return (others, peak);
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// Processes in our PID namespace other than PID 1 and us, and how many of them are zombies.
pub(crate) fn census(me: i32) -> (usize, usize) {
    let Ok(dir) = fs::read_dir("/proc") else { return (0, 0) };
    let (mut others, mut zombies) = (0, 0);
    for e in dir.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else { continue };
        if pid == 1 || pid == me {
            continue;
        }
        others += 1;
        if stat_fields(pid).is_some_and(|f| f.first().is_some_and(|s| s == "Z")) {
            zombies += 1;
        }
    }
    (others, zombies)
}
