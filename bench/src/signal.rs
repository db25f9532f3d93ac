//! `signal`: signal forwarding latency, with a fixed CPU placement.

use crate::*;

pub(crate) fn signal_latency(inits: &[Init], o: &Opts, c: &Counts, report: &mut Report) -> Res<()> {
    // Placement decides the cost of a wake-up (on an idle VM, waking another vCPU costs more
    // than the inits' own work), so it is fixed, not left to chance: pass 1 runs the driver,
    // every init and every app on one CPU; pass 2 runs the inits and apps on one CPU and the
    // driver on another (each signal crosses CPUs there and back).
    let cpus = allowed_cpus();
    let (Some(&first), Some(&last)) = (cpus.first(), cpus.last()) else {
        return Err(fail("cannot read this process's CPU affinity"));
    };
    let old = pin_to(last)?;
    let mut result = signal_pass(inits, o, c, last, false, report);
    if result.is_ok() {
        if first != last {
            result = signal_pass(inits, o, c, first, true, report);
        } else {
            report.notes.push("one CPU only: no cross-CPU signal figures".into());
        }
    }
    restore_affinity(&old);
    result
}

/// One pass; on entry this process runs on the CPU the tools get, and it moves to
/// `driver_cpu` once they are started.
pub(crate) fn signal_pass(
    inits: &[Init],
    o: &Opts,
    c: &Counts,
    driver_cpu: usize,
    cross: bool,
    report: &mut Report,
) -> Res<()> {
    progress(&format!(
        "signal: {} inits as PID 1, {} samples each, round robin, {}",
        inits.len(),
        c.signal_samples,
        if cross { "driver and tools on different CPUs" } else { "all on one CPU" }
    ));
    let app = vec![o.fake_app.display().to_string(), "--stamp".to_string()];
    let mut running = Vec::new();
    for init in inits {
        let mut r = start(&init.argv(true, &app), true, Stdio::null(), true)?;
        let deadline = Instant::now() + Duration::from_secs(10);
        if r.lines()?.expect("ready", deadline).is_none() {
            return Err(fail(format!("{}: fake_app never became ready", init.name)));
        }
        running.push(r);
    }
    let _tools_cpu = pin_to(driver_cpu)?;
    let mut samples: Vec<Vec<f64>> = vec![Vec::new(); inits.len()];
    let mut lost = vec![0usize; inits.len()];
    for round in 0..(c.signal_warmup + c.signal_samples) {
        for k in 0..running.len() {
            let i = (k + round) % running.len();
            let r = &mut running[i];
            let t0 = Instant::now();
            let t0_ns = monotonic_ns();
            send(r.pid, libc::SIGUSR1);
            let line = r.lines()?.expect("signal 10", t0 + Duration::from_secs(2));
            match line.and_then(|(line, _)| app_us(t0_ns, &line)) {
                Some(us) if round >= c.signal_warmup => samples[i].push(us),
                Some(_) => {}
                None => lost[i] += 1,
            }
        }
    }
    for (i, r) in running.iter_mut().enumerate() {
        r.stop(libc::SIGTERM, Duration::from_secs(3));
        let res = &mut report.inits[i];
        let (p50, p99) = (percentile(&samples[i], 0.50), percentile(&samples[i], 0.99));
        if cross {
            (res.sig_cross_p50_us, res.sig_cross_p99_us) = (p50, p99);
        } else {
            (res.sig_p50_us, res.sig_p99_us) = (p50, p99);
        }
        res.sig_lost += lost[i];
    }
    Ok(())
}

/// The CPUs this process may run on.
pub(crate) fn allowed_cpus() -> Vec<usize> {
    // SAFETY: a zeroed cpu_set_t is an empty set; sched_getaffinity fills it.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: a valid pointer to a cpu_set_t of the size passed.
    let rc = unsafe { libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) };
    if rc != 0 {
        return Vec::new();
    }
    // SAFETY: CPU_ISSET only reads the set.
    (0..libc::CPU_SETSIZE as usize).filter(|&c| unsafe { libc::CPU_ISSET(c, &set) }).collect()
}

/// Runs this process (and what it starts from now on) on `cpu` only; returns the old mask.
pub(crate) fn pin_to(cpu: usize) -> Res<libc::cpu_set_t> {
    // SAFETY: zeroed sets are empty; the calls get valid pointers of the size passed.
    unsafe {
        let mut old: libc::cpu_set_t = std::mem::zeroed();
        if libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut old) != 0 {
            return Err(std::io::Error::last_os_error().into());
        }
        let mut one: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut one);
        if libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &one) != 0 {
            return Err(std::io::Error::last_os_error().into());
        }
        Ok(old)
    }
}

pub(crate) fn restore_affinity(mask: &libc::cpu_set_t) {
    // SAFETY: a valid cpu_set_t of the size passed.
    unsafe { libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), mask) };
}
