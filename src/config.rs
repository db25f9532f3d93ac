//! `Raw` command line → validated `Config`: signals, durations and actions resolved, every rule
//! of the command line checked. Pure (no I/O), so every rule is unit-tested here.

use crate::cli::{Given, Raw};
use crate::signals::Signal;
use crate::sockets::{self, Addr, ListenSpec};
use std::ffi::OsString;
use std::fmt;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

/// A usage error: the message names the flag or variable and what to do; exit status 2.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigError {
    Invalid {
        source: String,
        value: String,
        expected: String,
    },
    /// A well-formed value that cannot mean what the option says.
    Refused {
        source: String,
        value: String,
        why: String,
    },
    Usage(String),
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::Invalid { source, value, expected } => {
                write!(f, "invalid value '{value}' for {source}: expected {expected}")
            }
            ConfigError::Refused { source, value, why } => {
                write!(f, "invalid value '{value}' for {source}: {why}")
            }
            ConfigError::Usage(msg) => f.write_str(msg),
        }
    }
}

type Result<T> = std::result::Result<T, ConfigError>;

/// What a real content change of a watched path causes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnChange {
    Restart,
    Signal(Signal),
    Exit(u8),
    /// Signal the top processes of the pod's other containers.
    Siblings(Signal),
    /// `POST` to this endpoint. Parsed once and kept for the whole run (hence `'static`, which
    /// keeps `OnChange` `Copy`).
    Http(&'static crate::http::Endpoint),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Forward {
    Group,
    Child,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RestartPolicy {
    Never,
    OnFailure,
    Always,
}

/// `--update-order`: which comes first on a restart for a change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpdateOrder {
    StopFirst,
    StartFirst,
}

/// `--ready`: how reinit learns that a started app is ready.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ready {
    /// `READY=1` from the app on the `NOTIFY_SOCKET` reinit gives it (systemd's sd_notify).
    Notify,
    /// Run this command every 100 ms until it exits 0.
    Exec(Vec<String>),
    /// GET this URL until it answers 2xx.
    Http(String),
    /// Ready this long after the start.
    Delay(Duration),
}

#[derive(Debug, Clone)]
pub struct Config {
    /// The app's argv; empty in sidecar mode.
    pub command: Vec<OsString>,
    pub watch: Vec<PathBuf>,
    /// `Some` exactly when something is watched.
    pub on_change: Option<OnChange>,
    /// `--sibling` names: restrict `siblings:SIG` to processes with this comm or exe basename.
    pub siblings: Vec<String>,
    pub debounce: Duration,
    pub jitter: Duration,
    pub validate: Option<Vec<String>>,
    pub stop_signal: Signal,
    pub stop_timeout: Duration,
    pub pre_stop_delay: Duration,
    pub update_order: UpdateOrder,
    pub ready: Option<Ready>,
    pub ready_timeout: Duration,
    pub forward: Forward,
    /// FROM → TO; `None` drops FROM.
    pub signal_map: Vec<(Signal, Option<Signal>)>,
    pub restart_on_exit: RestartPolicy,
    pub remap_exit: Vec<(u8, u8)>,
    pub parent_death_signal: Option<Signal>,
    /// `--listen` sockets, in order (fd 3, 4, … in the app).
    pub listen: Vec<ListenSpec>,
    /// `--metrics`: where to serve `/metrics`.
    pub metrics: Option<crate::metrics::Bind>,
    pub dry_run: bool,
    /// env_logger filter: from -v/-q when given, else `REINIT_LOG`, else `info`.
    pub log_filter: String,
}

impl Config {
    pub fn sidecar(&self) -> bool {
        self.command.is_empty()
    }
}

fn invalid<T>(given: &Given<String>, expected: &str) -> Result<T> {
    Err(ConfigError::Invalid {
        source: given.source.clone(),
        value: given.value.clone(),
        expected: expected.to_string(),
    })
}

fn refused<T>(given: &Given<String>, why: &str) -> Result<T> {
    Err(ConfigError::Refused { source: given.source.clone(), value: given.value.clone(), why: why.into() })
}

const SIGNAL_EXPECTED: &str = "a signal name or number such as TERM, SIGHUP, 10 or RTMIN+3";
const DURATION_EXPECTED: &str =
    "a duration such as 250ms, 10s, 2m, 1h or a number of seconds, at most a year (8760h)";

/// The longest duration any option takes: longer is a typo, and would overflow a deadline.
pub const MAX_DURATION: Duration = Duration::from_secs(365 * 24 * 3600);

// ---- Parsing: each given string to a typed value, on its own.

/// Parse `250ms`, `10s`, `2m`, `1h`, `1.5s` or a bare number of seconds.
pub fn parse_duration(s: &str) -> Option<Duration> {
    let s = s.trim();
    let split = s.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    if num.is_empty() || num.starts_with('.') || num.ends_with('.') {
        return None;
    }
    let n: f64 = num.parse().ok()?;
    let secs = match unit.trim() {
        "" | "s" => n,
        "ms" => n / 1000.0,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        _ => return None,
    };
    Duration::try_from_secs_f64(secs).ok()
}

/// A duration option: its default when not given; at most `MAX_DURATION`.
fn parse_duration_option(given: &Option<Given<String>>, default: Duration) -> Result<Duration> {
    let Some(g) = given else { return Ok(default) };
    match parse_duration(&g.value) {
        Some(d) if d <= MAX_DURATION => Ok(d),
        _ => invalid(g, DURATION_EXPECTED),
    }
}

/// Strict booleans: exactly 1/0/true/false/yes/no (any case).
pub fn parse_bool(s: &str) -> Option<bool> {
    match s.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" => Some(true),
        "0" | "false" | "no" => Some(false),
        _ => None,
    }
}

fn parse_bool_option(given: &Option<Given<String>>) -> Result<bool> {
    let Some(g) = given else { return Ok(false) };
    parse_bool(&g.value).map_or_else(|| invalid(g, "one of 1/0/true/false/yes/no"), Ok)
}

fn parse_signal(given: &Given<String>) -> Result<Signal> {
    Signal::parse(&given.value).map_or_else(|| invalid(given, SIGNAL_EXPECTED), Ok)
}

fn parse_stop_signal(given: &Option<Given<String>>) -> Result<Signal> {
    given.as_ref().map_or(Ok(Signal::TERM), |g| parse_signal_for(g, SignalUse::Stop))
}

/// A signal name or number, refused if it cannot do what `usage` means.
fn parse_signal_for(given: &Given<String>, usage: SignalUse) -> Result<Signal> {
    let sig = parse_signal(given)?;
    match check_signal_use(sig, usage) {
        Ok(()) => Ok(sig),
        Err(why) => refused(given, why),
    }
}

/// What a configured signal is meant to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SignalUse {
    /// `--on-change signal:SIG`: ask the app to reload.
    Reload,
    /// `--on-change siblings:SIG`: ask the pod's other containers to reload (or stop).
    Siblings,
    /// `--stop-signal`: ask the app to stop.
    Stop,
    /// `--parent-death-signal`: what reinit gets when its parent dies, to stop as on SIGTERM.
    ParentDeath,
}

/// Refuse a signal that cannot do what `usage` means, saying why.
fn check_signal_use(sig: Signal, usage: SignalUse) -> std::result::Result<(), &'static str> {
    match (sig, usage) {
        (Signal::STOP, SignalUse::ParentDeath) => {
            Err("SIGSTOP would freeze reinit when its parent dies, and the app with no one to stop it")
        }
        (Signal::CHLD, SignalUse::ParentDeath) => {
            Err("reinit would take SIGCHLD for a child's exit and go on as if its parent were alive")
        }
        (Signal::KILL, SignalUse::ParentDeath) => {
            Err("SIGKILL would end reinit at once, before the app gets its stop signal; use TERM")
        }
        (Signal::STOP, SignalUse::Siblings) => {
            Err("SIGSTOP would freeze the other containers until they are killed")
        }
        (Signal::STOP, _) => Err("SIGSTOP would freeze the app until it is killed"),
        (Signal::CHLD, SignalUse::Stop) => {
            Err("SIGCHLD is ignored by default: the app would only end by the SIGKILL after --stop-timeout")
        }
        (Signal::CHLD, _) => Err("SIGCHLD only says a child process changed state; it is ignored by default"),
        (Signal::KILL, SignalUse::Reload) => {
            Err("SIGKILL kills the app instead of reloading it; use --on-change restart")
        }
        (Signal::KILL, SignalUse::Siblings) => {
            Err("SIGKILL kills the other containers without a chance to stop cleanly; use siblings:TERM")
        }
        _ => Ok(()),
    }
}

/// A verbosity count: a small number, or a strict boolean (true = 1).
fn level_count(given: &Option<Given<String>>) -> Result<u8> {
    let Some(g) = given else { return Ok(0) };
    match (g.value.trim().parse::<u8>(), parse_bool(&g.value)) {
        (Ok(n), _) => Ok(n),
        (_, Some(b)) => Ok(u8::from(b)),
        _ => invalid(g, "a count such as 1 or 2, or one of 1/0/true/false/yes/no"),
    }
}

/// env_logger filter: from -v/-q when given, else `REINIT_LOG`, else `info`.
fn parse_log_filter(raw: &Raw, reinit_log: Option<String>) -> Result<String> {
    let verbose = level_count(&raw.verbose)?;
    let quiet = level_count(&raw.quiet)?;
    if verbose == 0 && quiet == 0 {
        return Ok(reinit_log.filter(|s| !s.trim().is_empty()).unwrap_or_else(|| "info".into()));
    }
    const LEVELS: [&str; 6] = ["off", "error", "warn", "info", "debug", "trace"];
    let level = (3 + i32::from(verbose) - i32::from(quiet)).clamp(0, 5);
    Ok(LEVELS[level as usize].to_string())
}

fn parse_on_change(g: &Given<String>) -> Result<OnChange> {
    const EXPECTED: &str = "restart, signal:SIG, exit[:CODE], siblings:SIG or http://HOST[:PORT]/PATH";
    let v = g.value.trim();
    if crate::http::is_url(v) {
        return match crate::http::parse_url(v) {
            Ok(endpoint) => Ok(OnChange::Http(Box::leak(Box::new(endpoint)))),
            Err(why) => invalid(g, &why),
        };
    }
    let (kind, arg) = match v.split_once(':') {
        Some((k, a)) => (k.to_ascii_lowercase(), Some(a)),
        None => (v.to_ascii_lowercase(), None),
    };
    let signal = |sig: &str, usage, expected: &str| match Signal::parse(sig) {
        Some(sig) => check_signal_use(sig, usage).map_or_else(|why| refused(g, why), |()| Ok(sig)),
        None => invalid(g, expected),
    };
    match (kind.as_str(), arg) {
        ("restart", None) => Ok(OnChange::Restart),
        ("signal", Some(sig)) => {
            signal(sig, SignalUse::Reload, "signal:SIG with SIG a signal name or number, e.g. signal:HUP")
                .map(OnChange::Signal)
        }
        ("siblings", Some(sig)) => signal(
            sig,
            SignalUse::Siblings,
            "siblings:SIG with SIG a signal name or number, e.g. siblings:HUP",
        )
        .map(OnChange::Siblings),
        ("exit", None) => Ok(OnChange::Exit(0)),
        ("exit", Some(code)) => match code.trim().parse::<u8>() {
            Ok(c) => Ok(OnChange::Exit(c)),
            Err(_) => invalid(g, "exit:CODE with CODE in 0..=255"),
        },
        _ => invalid(g, EXPECTED),
    }
}

fn parse_signal_map(g: &Given<String>) -> Result<(Signal, Option<Signal>)> {
    const EXPECTED: &str = "FROM:TO with signal names or numbers, TO = 0 or none to drop";
    let Some((from, to)) = g.value.split_once(':') else {
        return invalid(g, EXPECTED);
    };
    let from = match Signal::parse(from) {
        Some(s) if s == Signal::KILL || s == Signal::STOP || s == Signal::CHLD => {
            return invalid(g, "a FROM signal reinit can receive and forward (not KILL, STOP or CHLD)");
        }
        Some(s) => s,
        None => return invalid(g, EXPECTED),
    };
    let to = match to.trim() {
        "0" => None,
        t if t.eq_ignore_ascii_case("none") => None,
        t => match Signal::parse(t) {
            Some(s) => Some(s),
            None => return invalid(g, EXPECTED),
        },
    };
    Ok((from, to))
}

fn parse_remap_exit(g: &Given<String>) -> Result<(u8, u8)> {
    const EXPECTED: &str = "CODE[:TO] with CODE and TO in 0..=255";
    let (code, to) = match g.value.split_once(':') {
        Some((c, t)) => (c, t),
        None => (g.value.as_str(), "0"),
    };
    match (code.trim().parse::<u8>(), to.trim().parse::<u8>()) {
        (Ok(c), Ok(t)) => Ok((c, t)),
        _ => invalid(g, EXPECTED),
    }
}

fn parse_keyword<T: Copy>(given: &Option<Given<String>>, default: T, words: &[(&str, T)]) -> Result<T> {
    let Some(g) = given else { return Ok(default) };
    let v = g.value.trim().to_ascii_lowercase();
    match words.iter().find(|(w, _)| *w == v) {
        Some((_, t)) => Ok(*t),
        None => {
            let names: Vec<&str> = words.iter().map(|(w, _)| *w).collect();
            invalid(g, &format!("one of {}", names.join(", ")))
        }
    }
}

fn parse_forward(given: &Option<Given<String>>) -> Result<Forward> {
    parse_keyword(given, Forward::Group, &[("group", Forward::Group), ("child", Forward::Child)])
}

fn parse_restart_policy(given: &Option<Given<String>>) -> Result<RestartPolicy> {
    use RestartPolicy::*;
    parse_keyword(given, Never, &[("never", Never), ("on-failure", OnFailure), ("always", Always)])
}

fn parse_update_order(given: &Option<Given<String>>) -> Result<UpdateOrder> {
    use UpdateOrder::*;
    parse_keyword(given, StopFirst, &[("stop-first", StopFirst), ("start-first", StartFirst)])
}

fn parse_ready(g: &Given<String>) -> Result<Ready> {
    const EXPECTED: &str = "notify, exec:CMD, http://HOST:PORT/PATH or delay:DURATION";
    let v = g.value.trim();
    if v.eq_ignore_ascii_case("notify") {
        return Ok(Ready::Notify);
    }
    if let Some(cmd) = v.strip_prefix("exec:") {
        let argv: Vec<String> = cmd.split_whitespace().map(String::from).collect();
        return if argv.is_empty() {
            invalid(g, "exec:CMD with a command, e.g. exec:pg_isready")
        } else {
            Ok(Ready::Exec(argv))
        };
    }
    if let Some(d) = v.strip_prefix("delay:") {
        return match parse_duration(d) {
            Some(d) if d <= MAX_DURATION => Ok(Ready::Delay(d)),
            _ => invalid(g, &format!("delay:DURATION with {DURATION_EXPECTED}")),
        };
    }
    if v.starts_with("http://") || v.starts_with("https://") {
        return crate::http::parse_url(v).map(|_| Ready::Http(v.to_string())).or_else(|why| invalid(g, &why));
    }
    invalid(g, EXPECTED)
}

fn parse_validate(given: &Option<Given<String>>) -> Result<Option<Vec<String>>> {
    let Some(g) = given else { return Ok(None) };
    let argv: Vec<String> = g.value.split_whitespace().map(String::from).collect();
    if argv.is_empty() {
        return invalid(g, "a command such as \"nginx -t -c {}\"");
    }
    Ok(Some(argv))
}

fn parse_watch(given: &[Given<OsString>]) -> Result<Vec<PathBuf>> {
    if let Some(g) = given.iter().find(|g| g.value.is_empty()) {
        return invalid(
            &Given { value: String::new(), source: g.source.clone() },
            "a file or directory path",
        );
    }
    Ok(given.iter().map(|g| PathBuf::from(&g.value)).collect())
}

fn parse_sibling(g: &Given<String>) -> Result<String> {
    let name = g.value.trim();
    if name.is_empty() || name.contains('/') {
        return invalid(g, "a process name (comm or executable basename, without a path)");
    }
    Ok(name.to_string())
}

fn parse_listen(g: &Given<String>) -> Result<ListenSpec> {
    sockets::parse(&g.value).or_else(|why| invalid(g, &why))
}

fn parse_metrics(g: &Given<String>) -> Result<crate::metrics::Bind> {
    let addr = crate::metrics::parse_addr(&g.value).or_else(|why| invalid(g, &why))?;
    Ok(crate::metrics::Bind { addr, text: g.value.trim().to_string() })
}

fn each<T>(given: &[Given<String>], parse: fn(&Given<String>) -> Result<T>) -> Result<Vec<T>> {
    given.iter().map(parse).collect()
}

/// Every value parsed on its own; the rules between options are checked after.
fn parse(raw: &mut Raw, reinit_log: Option<String>) -> Result<Config> {
    Ok(Config {
        command: std::mem::take(&mut raw.command),
        watch: parse_watch(&raw.watch)?,
        on_change: raw.on_change.as_ref().map(parse_on_change).transpose()?,
        siblings: each(&raw.sibling, parse_sibling)?,
        debounce: parse_duration_option(&raw.debounce, Duration::from_millis(100))?,
        jitter: parse_duration_option(&raw.jitter, Duration::ZERO)?,
        validate: parse_validate(&raw.validate)?,
        stop_signal: parse_stop_signal(&raw.stop_signal)?,
        stop_timeout: parse_duration_option(&raw.stop_timeout, Duration::from_secs(10))?,
        pre_stop_delay: parse_duration_option(&raw.pre_stop_delay, Duration::ZERO)?,
        update_order: parse_update_order(&raw.update_order)?,
        ready: raw.ready.as_ref().map(parse_ready).transpose()?,
        ready_timeout: parse_duration_option(&raw.ready_timeout, Duration::from_secs(60))?,
        forward: parse_forward(&raw.forward)?,
        signal_map: each(&raw.map_signal, parse_signal_map)?,
        restart_on_exit: parse_restart_policy(&raw.restart_on_exit)?,
        remap_exit: each(&raw.remap_exit, parse_remap_exit)?,
        parent_death_signal: raw
            .parent_death_signal
            .as_ref()
            .map(|g| parse_signal_for(g, SignalUse::ParentDeath))
            .transpose()?,
        listen: each(&raw.listen, parse_listen)?,
        metrics: raw.metrics.as_ref().map(parse_metrics).transpose()?,
        dry_run: parse_bool_option(&raw.dry_run)?,
        log_filter: parse_log_filter(raw, reinit_log)?,
    })
}

// ---- Rules between options. Each takes what was given (for the names in its messages) and
// ---- the parsed values.

/// `--on-change` and `--validate` act on changes: they need something to watch.
fn check_watch_rules(raw: &Raw, config: &Config) -> Result<()> {
    if !config.watch.is_empty() {
        return Ok(());
    }
    if let Some(g) = &raw.on_change {
        return Err(ConfigError::Usage(format!(
            "{} '{}' needs something to watch: add --watch PATH",
            g.source, g.value
        )));
    }
    if let Some(g) = &raw.validate {
        return Err(ConfigError::Usage(format!("{} needs something to watch: add --watch PATH", g.source)));
    }
    Ok(())
}

/// Without a COMMAND (sidecar mode) there is no app: something must be watched with an action
/// that does not act on an app, and the options about the app make no sense.
fn check_sidecar_rules(raw: &Raw, config: &Config) -> Result<()> {
    if !config.sidecar() {
        return Ok(());
    }
    let usage = |msg: String| Err(ConfigError::Usage(msg));
    match config.on_change {
        None if config.watch.is_empty() => {
            return usage(
                "no COMMAND given: give the app to run, e.g. reinit -- myserver --port 8080".into(),
            );
        }
        None => {
            return usage(
                "no COMMAND given (sidecar mode): add --on-change exit[:CODE], siblings:SIG or \
                 http://HOST:PORT/PATH, or give a COMMAND to run"
                    .into(),
            );
        }
        Some(OnChange::Restart | OnChange::Signal(_)) => {
            return usage(
                "--on-change restart and signal:SIG act on the app, but no COMMAND was given: \
                 give one, or use --on-change siblings:SIG, exit[:CODE] or http://HOST:PORT/PATH"
                    .into(),
            );
        }
        Some(OnChange::Exit(_) | OnChange::Siblings(_) | OnChange::Http(_)) => {}
    }
    if let Some(g) = &raw.restart_on_exit {
        return usage(format!("{} needs a COMMAND to restart", g.source));
    }
    if let Some(g) = raw.listen.first() {
        return usage(format!("{} passes sockets to the app, but no COMMAND was given", g.source));
    }
    Ok(())
}

/// `--sibling` narrows down `siblings:SIG`, and means nothing without it.
fn check_sibling_rules(raw: &Raw, config: &Config) -> Result<()> {
    match raw.sibling.first() {
        Some(g) if !matches!(config.on_change, Some(OnChange::Siblings(_))) => {
            Err(ConfigError::Usage(format!("{} only applies to --on-change siblings:SIG", g.source)))
        }
        _ => Ok(()),
    }
}

/// One socket per address: the second bind of the same address would fail.
fn check_listen_rules(raw: &Raw, config: &Config) -> Result<()> {
    for (i, spec) in config.listen.iter().enumerate() {
        if let Some(first) = config.listen[..i].iter().find(|s| same_address(&s.addr, &spec.addr)) {
            let as_first =
                if first.text == spec.text { String::new() } else { format!(" (first as '{}')", first.text) };
            let source = raw.listen.get(i).map_or("--listen", |g| g.source.as_str());
            return Err(ConfigError::Usage(format!(
                "{source} '{}' is given twice{as_first}: one socket per address",
                spec.text
            )));
        }
    }
    Ok(())
}

/// Readiness and the update order concern an app that is started, and start-first a restart.
fn check_update_rules(raw: &Raw, config: &Config) -> Result<()> {
    let usage = |msg: String| Err(ConfigError::Usage(msg));
    if let (Some(g), true) = (&raw.ready_timeout, config.ready.is_none()) {
        return usage(format!("{} only applies with --ready", g.source));
    }
    if let (Some(g), true) = (&raw.ready, config.sidecar()) {
        return usage(format!("{} '{}' waits for an app, but no COMMAND was given", g.source, g.value));
    }
    let Some(g) = raw.update_order.as_ref().filter(|_| config.update_order == UpdateOrder::StartFirst) else {
        return Ok(());
    };
    if config.on_change != Some(OnChange::Restart) {
        return usage(format!(
            "{} start-first applies to restarts for a change: it needs --watch and --on-change restart",
            g.source
        ));
    }
    if config.ready.is_none() {
        return usage(format!(
            "{} start-first needs --ready to know when the new app can take over: add --ready \
             notify, exec:CMD, http://HOST:PORT/PATH or delay:DURATION",
            g.source
        ));
    }
    Ok(())
}

/// Whether two addresses are the same socket address (port 0 asks for a new port each time).
fn same_address(a: &Addr, b: &Addr) -> bool {
    let host = |h: &str, v6: bool| -> String {
        let h = match (h, v6) {
            ("", false) => "0.0.0.0",
            ("", true) => "::",
            (h, _) => h,
        };
        h.parse::<IpAddr>().map_or_else(|_| h.to_ascii_lowercase(), |ip| ip.to_string())
    };
    match (a, b) {
        (Addr::Tcp { host: h1, port: p1, v6: v1 }, Addr::Tcp { host: h2, port: p2, v6: v2 }) => {
            *p1 != 0 && p1 == p2 && v1 == v2 && host(h1, *v1) == host(h2, *v2)
        }
        (Addr::Unix(p1), Addr::Unix(p2)) => p1 == p2,
        _ => false,
    }
}

/// Validate everything; the first problem found is returned.
pub fn build(mut raw: Raw, reinit_log: Option<String>) -> Result<Config> {
    let mut config = parse(&mut raw, reinit_log)?;
    check_watch_rules(&raw, &config)?;
    if config.on_change.is_none() && !config.watch.is_empty() && !config.sidecar() {
        config.on_change = Some(OnChange::Restart);
    }
    check_sidecar_rules(&raw, &config)?;
    check_sibling_rules(&raw, &config)?;
    check_listen_rules(&raw, &config)?;
    check_update_rules(&raw, &config)?;
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::Args;
    use clap::Parser;

    fn raw(argv: &[&str], vars: &[(&str, &str)]) -> Raw {
        let mut full = vec!["reinit"];
        full.extend_from_slice(argv);
        let args = Args::try_parse_from(full).unwrap();
        let vars: Vec<(String, String)> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        args.resolve(&|name| vars.iter().find(|(k, _)| k == name).map(|(_, v)| OsString::from(v)))
    }

    fn cfg(argv: &[&str], vars: &[(&str, &str)]) -> Result<Config> {
        build(raw(argv, vars), None)
    }

    /// Runs one rule on the parsed `argv` (whose values must all parse).
    fn rule(check: fn(&Raw, &Config) -> Result<()>, argv: &[&str]) -> Result<()> {
        let mut raw = raw(argv, &[]);
        let config = parse(&mut raw, None).unwrap();
        check(&raw, &config)
    }

    fn usage_error(r: Result<()>) -> String {
        match r {
            Err(ConfigError::Usage(msg)) => msg,
            other => panic!("a usage error expected, got {other:?}"),
        }
    }

    #[test]
    fn watch_rules() {
        assert!(rule(check_watch_rules, &["app"]).is_ok());
        assert!(
            rule(check_watch_rules, &["-w", "/x", "--on-change", "exit", "--validate", "t {}", "app"])
                .is_ok()
        );
        let msg = usage_error(rule(check_watch_rules, &["--on-change", "signal:HUP", "app"]));
        assert!(msg.contains("--on-change 'signal:HUP'") && msg.contains("--watch"), "{msg}");
        let msg = usage_error(rule(check_watch_rules, &["--validate", "check {}", "app"]));
        assert!(msg.starts_with("--validate") && msg.contains("--watch"), "{msg}");
        assert!(cfg(&["-w", "/x", "app"], &[]).is_ok());
        assert_eq!(
            cfg(&["-w", ""], &[]).unwrap_err().to_string(),
            "invalid value '' for --watch: expected a file or directory path"
        );
    }

    #[test]
    fn sidecar_rules() {
        let ok = |argv: &[&str]| assert!(rule(check_sidecar_rules, argv).is_ok(), "{argv:?}");
        ok(&["--restart-on-exit", "always", "--listen", "tcp::80", "app"]);
        ok(&["-w", "/x", "--on-change", "exit:3"]);
        ok(&["-w", "/x", "--on-change", "siblings:HUP"]);
        let fails = |argv: &[&str], needle: &str| {
            let msg = usage_error(rule(check_sidecar_rules, argv));
            assert!(msg.contains(needle), "{argv:?}: {msg}");
        };
        fails(&[], "no COMMAND given: give the app to run");
        fails(&["-w", "/x"], "sidecar mode");
        fails(&["-w", "/x", "--on-change", "restart"], "act on the app");
        fails(&["-w", "/x", "--on-change", "signal:HUP"], "act on the app");
        fails(&["-w", "/x", "--on-change", "exit", "--restart-on-exit", "always"], "--restart-on-exit needs");
        fails(&["-w", "/x", "--on-change", "exit", "--listen", "tcp::80"], "--listen passes sockets");
    }

    #[test]
    fn sibling_rules() {
        assert!(
            rule(check_sibling_rules, &["-w", "/x", "--on-change", "siblings:HUP", "--sibling", "a"]).is_ok()
        );
        assert!(rule(check_sibling_rules, &["-w", "/x", "--on-change", "siblings:TERM", "app"]).is_ok());
        let msg =
            usage_error(rule(check_sibling_rules, &["-w", "/x", "--on-change", "exit", "--sibling", "a"]));
        assert_eq!(msg, "--sibling only applies to --on-change siblings:SIG");
        assert!(usage_error(rule(check_sibling_rules, &["--sibling", "a", "app"])).starts_with("--sibling"));
        for bad in ["", " ", "/usr/sbin/nginx"] {
            let err = cfg(&["-w", "/x", "--on-change", "siblings:HUP", "--sibling", bad], &[]).unwrap_err();
            assert!(matches!(err, ConfigError::Invalid { .. }), "{bad:?}: {err}");
        }
    }

    #[test]
    fn update_rules() {
        assert!(rule(check_update_rules, &["--ready-timeout", "5s", "app"]).is_err());
        assert!(rule(check_update_rules, &["--ready", "notify", "-w", "/x", "--on-change", "exit"]).is_err());
        let start_first = ["--update-order", "start-first"];
        let restart = ["-w", "/x", "--on-change", "restart", "app"];
        let err = usage_error(rule(check_update_rules, &[&start_first[..], &restart[..]].concat()));
        assert!(err.contains("--ready"), "{err}");
        let err = usage_error(rule(
            check_update_rules,
            &[&start_first[..], &["--ready", "notify", "app"]].concat(),
        ));
        assert!(err.contains("--on-change restart"), "{err}");
        let ok = [&start_first[..], &["--ready", "delay:1s"], &restart[..]].concat();
        assert!(rule(check_update_rules, &ok).is_ok());
        let c = cfg(&ok, &[]).unwrap();
        assert_eq!(
            (c.update_order, c.ready, c.ready_timeout),
            (UpdateOrder::StartFirst, Some(Ready::Delay(Duration::from_secs(1))), Duration::from_secs(60))
        );
        for (v, want) in [
            ("notify", Ready::Notify),
            ("exec:pg_isready -q", Ready::Exec(vec!["pg_isready".into(), "-q".into()])),
            ("http://127.0.0.1:8081/healthz", Ready::Http("http://127.0.0.1:8081/healthz".into())),
        ] {
            assert_eq!(cfg(&["--ready", v, "app"], &[]).unwrap().ready, Some(want));
        }
        for bad in ["", "exec:", "delay:soon", "tcp:80", "https://x/"] {
            assert!(cfg(&["--ready", bad, "app"], &[]).is_err(), "{bad}");
        }
    }

    #[test]
    fn listen_rules() {
        let ok = |argv: &[&str]| assert!(rule(check_listen_rules, argv).is_ok(), "{argv:?}");
        ok(&["--listen", "tcp::8080", "--listen", "tcp::8081", "app"]);
        ok(&["--listen", "tcp::8080", "--listen", "tcp6:[::]:8080", "app"]);
        ok(&["--listen", "tcp:127.0.0.1:8080", "--listen", "tcp:127.0.0.2:8080", "app"]);
        ok(&["--listen", "tcp::0", "--listen", "tcp::0", "app"]);
        ok(&["--listen", "unix:/run/a.sock", "--listen", "unix:@a.sock", "app"]);
        let msg =
            usage_error(rule(check_listen_rules, &["--listen", "tcp::8080", "--listen", "tcp::8080", "app"]));
        assert_eq!(msg, "--listen 'tcp::8080' is given twice: one socket per address");
        let msg = usage_error(rule(
            check_listen_rules,
            &["--listen", "tcp::80", "--listen", "b=tcp:0.0.0.0:80", "a"],
        ));
        assert_eq!(
            msg,
            "--listen 'b=tcp:0.0.0.0:80' is given twice (first as 'tcp::80'): one socket per address"
        );
        for (a, b) in [
            ("tcp6:[::]:9", "tcp6:[]:9"),
            ("tcp6:[::1]:9", "tcp6:[0:0::1]:9"),
            ("tcp:LocalHost:9", "tcp:localhost:9"),
            ("unix:/run/a.sock", "x=unix:/run//a.sock"),
            ("unix:@a", "unix:@a"),
        ] {
            assert!(rule(check_listen_rules, &["--listen", a, "--listen", b, "app"]).is_err(), "{a} {b}");
        }
        let err = cfg(&["app"], &[("REINIT_LISTEN", "tcp::8080,tcp::8080")]).unwrap_err().to_string();
        assert!(err.starts_with("REINIT_LISTEN 'tcp::8080' is given twice"), "{err}");
    }

    #[test]
    fn signals_that_cannot_mean_what_they_say_are_refused() {
        use SignalUse::*;
        for usage in [Reload, Siblings, Stop, ParentDeath] {
            assert!(check_signal_use(Signal::STOP, usage).unwrap_err().contains("SIGSTOP would freeze"));
            assert!(check_signal_use(Signal::CHLD, usage).unwrap_err().contains("SIGCHLD"));
            for fine in [Signal::HUP, Signal::TERM, Signal::USR1, Signal::INT] {
                assert_eq!(check_signal_use(fine, usage), Ok(()));
            }
        }
        assert!(check_signal_use(Signal::KILL, Reload).unwrap_err().contains("restart"));
        assert!(check_signal_use(Signal::KILL, Siblings).unwrap_err().contains("siblings:TERM"));
        assert_eq!(check_signal_use(Signal::KILL, Stop), Ok(()));
        assert!(check_signal_use(Signal::KILL, ParentDeath).unwrap_err().contains("use TERM"));
        // and through the options that take them
        for (argv, value) in [
            (&["-w", "/x", "--on-change", "signal:STOP", "app"][..], "signal:STOP"),
            (&["-w", "/x", "--on-change", "signal:sigkill", "app"], "signal:sigkill"),
            (&["-w", "/x", "--on-change", "signal:17", "app"], "signal:17"),
            (&["-w", "/x", "--on-change", "siblings:KILL"], "siblings:KILL"),
            (&["-w", "/x", "--on-change", "siblings:CHLD"], "siblings:CHLD"),
            (&["--stop-signal", "STOP", "app"], "STOP"),
            (&["--stop-signal", "SIGCHLD", "app"], "SIGCHLD"),
            (&["--parent-death-signal", "STOP", "app"], "STOP"),
            (&["--parent-death-signal", "CHLD", "app"], "CHLD"),
            (&["--parent-death-signal", "9", "app"], "9"),
        ] {
            let err = cfg(argv, &[]).unwrap_err();
            assert!(matches!(err, ConfigError::Refused { .. }), "{argv:?}: {err}");
            assert!(err.to_string().starts_with(&format!("invalid value '{value}' for --")), "{err}");
        }
        assert_eq!(cfg(&["--stop-signal", "KILL", "app"], &[]).unwrap().stop_signal, Signal::KILL);
        let c = cfg(&["-w", "/x", "--on-change", "siblings:TERM"], &[]).unwrap();
        assert_eq!(c.on_change, Some(OnChange::Siblings(Signal::TERM)));
    }

    #[test]
    fn durations_are_at_most_a_year() {
        assert_eq!(cfg(&["--stop-timeout", "8760h", "app"], &[]).unwrap().stop_timeout, MAX_DURATION);
        assert_eq!(cfg(&["--jitter", "31536000", "app"], &[]).unwrap().jitter, MAX_DURATION);
        for (flag, value) in [
            ("--stop-timeout", "9223372036854775807"),
            ("--stop-timeout", "8761h"),
            ("--pre-stop-delay", "31536001"),
            ("--debounce", "1e30"),
            ("--jitter", "99999999999999999999999999999h"),
        ] {
            let err = cfg(&[flag, value, "app"], &[]).unwrap_err().to_string();
            assert!(err.contains(flag) && err.contains(value) && err.contains("at most a year"), "{err}");
        }
    }

    #[test]
    fn durations_parse() {
        assert_eq!(parse_duration("250ms"), Some(Duration::from_millis(250)));
        assert_eq!(parse_duration("10s"), Some(Duration::from_secs(10)));
        assert_eq!(parse_duration("2m"), Some(Duration::from_secs(120)));
        assert_eq!(parse_duration("1h"), Some(Duration::from_secs(3600)));
        assert_eq!(parse_duration("3"), Some(Duration::from_secs(3)));
        assert_eq!(parse_duration("0"), Some(Duration::ZERO));
        assert_eq!(parse_duration("1.5s"), Some(Duration::from_millis(1500)));
        for bad in ["", "abc", "-1", "10x", "ms", ".5", "5.", "1e3", "1 2"] {
            assert_eq!(parse_duration(bad), None, "{bad}");
        }
    }

    #[test]
    fn booleans_are_strict() {
        for t in ["1", "true", "YES", "True"] {
            assert_eq!(parse_bool(t), Some(true));
        }
        for f in ["0", "false", "no", "NO"] {
            assert_eq!(parse_bool(f), Some(false));
        }
        for bad in ["", "2", "on", "off", "y", "maybe"] {
            assert_eq!(parse_bool(bad), None);
        }
        assert!(!cfg(&["true"], &[("REINIT_DRY_RUN", "0")]).unwrap().dry_run);
        let err = cfg(&["true"], &[("REINIT_DRY_RUN", "maybe")]).unwrap_err().to_string();
        assert!(err.contains("REINIT_DRY_RUN") && err.contains("maybe"), "{err}");
    }

    #[test]
    fn defaults() {
        let c = cfg(&["--", "app"], &[]).unwrap();
        assert_eq!(c.stop_signal, Signal::TERM);
        assert_eq!(c.stop_timeout, Duration::from_secs(10));
        assert_eq!(c.pre_stop_delay, Duration::ZERO);
        assert_eq!(c.debounce, Duration::from_millis(100));
        assert_eq!(c.forward, Forward::Group);
        assert_eq!(c.restart_on_exit, RestartPolicy::Never);
        assert_eq!(c.on_change, None);
        assert_eq!(c.log_filter, "info");
        assert!(!c.dry_run && !c.sidecar());
        let c = cfg(&["-w", "/etc/app", "app"], &[]).unwrap();
        assert_eq!(c.on_change, Some(OnChange::Restart));
    }

    #[test]
    fn errors_name_the_source() {
        let err = cfg(&["--stop-timeout", "abc", "app"], &[]).unwrap_err().to_string();
        assert!(err.contains("--stop-timeout") && err.contains("abc"), "{err}");
        let err = cfg(&["app"], &[("REINIT_STOP_TIMEOUT", "soon")]).unwrap_err().to_string();
        assert!(err.contains("REINIT_STOP_TIMEOUT"), "{err}");
        let err = cfg(&["--map-signal", "x:y", "app"], &[]).unwrap_err().to_string();
        assert!(err.contains("--map-signal") && err.contains("x:y"), "{err}");
        assert!(cfg(&["--map-signal", "15", "app"], &[]).is_err());
        assert!(cfg(&["--map-signal", "KILL:TERM", "app"], &[]).is_err());
        assert!(cfg(&["--forward", "all", "app"], &[]).is_err());
        assert!(cfg(&["--restart-on-exit", "sometimes", "app"], &[]).is_err());
        assert!(cfg(&["-e", "256", "app"], &[]).is_err());
        assert!(cfg(&["--stop-signal", "NOPE", "app"], &[]).is_err());
        assert!(cfg(&["--parent-death-signal", "99", "app"], &[]).is_err());
        assert!(cfg(&["-w", "/x", "--on-change", "reload", "app"], &[]).is_err());
        assert!(cfg(&["-w", "/x", "--on-change", "exit:300", "app"], &[]).is_err());
        assert!(cfg(&["-w", "/x", "--on-change", "signal:BOGUS", "app"], &[]).is_err());
        assert!(cfg(&["-w", "/x", "--validate", "  ", "app"], &[]).is_err());
        assert!(cfg(&["-v"], &[("REINIT_QUIET", "lots")]).is_err());
        let err = cfg(&["--listen", "tcp:nope", "app"], &[]).unwrap_err().to_string();
        assert!(err.contains("--listen") && err.contains("tcp:nope"), "{err}");
        assert!(cfg(&["--listen", "tcp::80", "-w", "/x", "--on-change", "exit"], &[]).is_err());
        let c = cfg(&["app"], &[("REINIT_LISTEN", "tcp::8080,unix:/run/a.sock")]).unwrap();
        assert_eq!(c.listen.len(), 2);
    }

    #[test]
    fn mode_rules() {
        // nothing to run, nothing to watch
        assert!(matches!(cfg(&[], &[]), Err(ConfigError::Usage(_))));
        // sidecar mode needs an on-change that does not act on an app
        assert!(cfg(&["-w", "/x"], &[]).is_err());
        assert!(cfg(&["-w", "/x", "--on-change", "restart"], &[]).is_err());
        assert!(cfg(&["-w", "/x", "--on-change", "signal:HUP"], &[]).is_err());
        let c = cfg(&["-w", "/x", "--on-change", "siblings:HUP", "--sibling", "nginx"], &[]).unwrap();
        assert_eq!(c.on_change, Some(OnChange::Siblings(Signal::HUP)));
        assert_eq!(c.siblings, ["nginx"]);
        assert!(cfg(&["-w", "/x", "--on-change", "exit", "--sibling", "nginx"], &[]).is_err());
        assert!(
            cfg(&["-w", "/x", "--on-change", "siblings:HUP", "--sibling", "/usr/sbin/nginx"], &[]).is_err()
        );
        assert!(cfg(&["-w", "/x", "--on-change", "siblings:BOGUS"], &[]).is_err());
        let c = cfg(&["-w", "/x", "--on-change", "exit:3"], &[]).unwrap();
        assert!(c.sidecar());
        assert_eq!(c.on_change, Some(OnChange::Exit(3)));
        // on-change and validate need a watch
        assert!(cfg(&["--on-change", "restart", "app"], &[]).is_err());
        assert!(cfg(&["--validate", "check {}", "app"], &[]).is_err());
        let c =
            cfg(&["-w", "/x", "--on-change", "SIGNAL:hup", "--validate", "check -c {}", "app"], &[]).unwrap();
        assert_eq!(c.on_change, Some(OnChange::Signal(Signal::HUP)));
        assert_eq!(c.validate.unwrap(), ["check", "-c", "{}"]);
    }

    #[test]
    fn http_and_metrics() {
        let c = cfg(&["-w", "/x", "--on-change", "http://127.0.0.1:9090/-/reload"], &[]).unwrap();
        assert!(c.sidecar());
        let Some(OnChange::Http(ep)) = c.on_change else { panic!("{:?}", c.on_change) };
        assert_eq!(ep.path, "/-/reload");
        assert!(cfg(&["-w", "/x", "--on-change", "http://[::1]:9090/-/reload", "app"], &[]).is_ok());
        let err =
            cfg(&["-w", "/x", "--on-change", "https://127.0.0.1/-/reload"], &[]).unwrap_err().to_string();
        assert!(err.contains("--on-change") && err.contains("only plain HTTP to a local endpoint"), "{err}");
        let err = cfg(&["-w", "/x", "--on-change", "http://prometheus:9090/"], &[]).unwrap_err().to_string();
        assert!(err.contains("http://prometheus:9090/") && err.contains("not looked up"), "{err}");
        let c = cfg(&["--metrics", ":9533", "app"], &[]).unwrap();
        assert_eq!(c.metrics.unwrap().addr, "0.0.0.0:9533".parse().unwrap());
        let c = cfg(&["app"], &[("REINIT_METRICS", "127.0.0.1:1")]).unwrap();
        assert_eq!(c.metrics.unwrap().text, "127.0.0.1:1");
        let err = cfg(&["--metrics", "9533", "app"], &[]).unwrap_err().to_string();
        assert!(err.contains("--metrics") && err.contains("'9533'"), "{err}");
    }

    #[test]
    fn maps_and_remaps() {
        let c = cfg(
            &["--map-signal", "15:2", "--map-signal", "WINCH:none", "-e", "143", "-e", "1:7", "app"],
            &[],
        )
        .unwrap();
        use Signal as S;
        assert_eq!(c.signal_map, [(S::TERM, Some(S::INT)), (S::WINCH, None)]);
        assert_eq!(c.remap_exit, [(143, 0), (1, 7)]);
        let c = cfg(&["app"], &[("REINIT_MAP_SIGNAL", "10:12,12:10"), ("REINIT_REMAP_EXIT", "143")]).unwrap();
        assert_eq!(c.signal_map, [(S::USR1, Some(S::USR2)), (S::USR2, Some(S::USR1))]);
        assert_eq!(c.remap_exit, [(143, 0)]);
    }

    #[test]
    fn log_levels() {
        assert_eq!(cfg(&["-v", "app"], &[]).unwrap().log_filter, "debug");
        assert_eq!(cfg(&["-vv", "app"], &[]).unwrap().log_filter, "trace");
        assert_eq!(cfg(&["-q", "app"], &[]).unwrap().log_filter, "warn");
        assert_eq!(cfg(&["-qqqq", "app"], &[]).unwrap().log_filter, "off");
        let args = Args::try_parse_from(["reinit", "app"]).unwrap();
        let c = build(args.resolve(&|_| None), Some("reinit=debug".into())).unwrap();
        assert_eq!(c.log_filter, "reinit=debug");
        let args = Args::try_parse_from(["reinit", "-q", "app"]).unwrap();
        let c = build(args.resolve(&|_| None), Some("debug".into())).unwrap();
        assert_eq!(c.log_filter, "warn");
    }
}
