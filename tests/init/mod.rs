//! The init contract, one test per behaviour, driving the real binary against the `fake_app`
//! fixture. Grouped by what an init must do:
//!
//! - [`exit_status`] — exit statuses; [`usage`] — usage errors, help, version, env fallbacks
//! - [`forwarding`] — signal forwarding, `--forward`, `--map-signal`
//! - [`stop`] — the stop sequence
//! - [`reaping`] — zombies, orphans, subreaper, SIGCHLD ignored
//! - [`transparency`], [`pty`] — argv/env/cwd/stdio/mask/fds, job control
//! - [`idle`] — no wake-ups
//! - [`restart`] — `--restart-on-exit`
//!
//! `REINIT_BIN=PATH` runs them against another build, e.g. the static aarch64 one under
//! qemu-user; what emulation cannot do is skipped visibly ([`crate::util::emulation`]).

mod exit_status;
mod forwarding;
mod idle;
mod pty;
mod reaping;
mod restart;
mod stop;
mod transparency;
mod usage;

pub use crate::util::with_app;
use crate::util::{DEADLINE, Proc, reinit_cmd};

/// Starts `reinit REINIT_ARGS -- fake_app APP_ARGS` (not PID 1) and waits for the app's
/// `ready` line; returns the process and that line.
fn start(reinit_args: &[&str], app_args: &[&str]) -> (Proc, String) {
    let mut p = Proc::spawn(reinit_cmd(with_app(reinit_args, app_args)));
    let ready = p.wait_line("ready pid=", DEADLINE);
    (p, ready)
}
