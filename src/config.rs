//! `Raw` command line → validated `Config`: signals, durations and actions resolved, every rule
//! of the command line checked. Pure (no I/O), so every rule is unit-tested here.

use crate::cli::{Given, Raw};
use crate::sockets::{self, ListenSpec};
use std::ffi::OsString;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

/// A usage error: the message names the flag or variable and what to do; exit status 2.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigError {
    Invalid { source: String, value: String, expected: String },
    Usage(String),
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::Invalid { source, value, expected } => {
                write!(f, "invalid value '{value}' for {source}: expected {expected}")
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
    Signal(i32),
    Exit(u8),
    /// Signal the top processes of the pod's other containers.
    Siblings(i32),
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
    pub stop_signal: i32,
    pub stop_timeout: Duration,
    pub pre_stop_delay: Duration,
    pub forward: Forward,
    /// FROM → TO; `None` drops FROM.
    pub signal_map: Vec<(i32, Option<i32>)>,
    pub restart_on_exit: RestartPolicy,
    pub remap_exit: Vec<(u8, u8)>,
    pub parent_death_signal: Option<i32>,
    /// `--listen` sockets, in order (fd 3, 4, … in the app).
    pub listen: Vec<ListenSpec>,
    /// `--metrics`: where to serve `/metrics`.
    pub metrics: Option<crate::metrics::Bind>,
    pub dry_run: bool,
    /// env_logger filter: from -v/-q when given, else `REINIT_LOG`, else `info`.
    pub log_filter: String,
}

impl Config {
    /// The signal actually sent for a received `sig`: `None` when it is dropped.
    pub fn map_signal(&self, sig: i32) -> Option<i32> {
        match self.signal_map.iter().find(|(from, _)| *from == sig) {
            Some((_, to)) => *to,
            None => Some(sig),
        }
    }

    /// Whether `--map-signal` names `sig` explicitly.
    pub fn is_mapped(&self, sig: i32) -> bool {
        self.signal_map.iter().any(|(from, _)| *from == sig)
    }

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

const SIGNAL_EXPECTED: &str = "a signal name or number such as TERM, SIGHUP, 10 or RTMIN+3";
const DURATION_EXPECTED: &str = "a duration such as 250ms, 10s, 2m or a number of seconds";

/// Signal names as `kill -l` prints them (without `SIG`), with their numbers on this platform.
pub const SIGNAL_NAMES: &[(&str, i32)] = &[
    ("HUP", libc::SIGHUP),
    ("INT", libc::SIGINT),
    ("QUIT", libc::SIGQUIT),
    ("ILL", libc::SIGILL),
    ("TRAP", libc::SIGTRAP),
    ("ABRT", libc::SIGABRT),
    ("IOT", libc::SIGIOT),
    ("BUS", libc::SIGBUS),
    ("FPE", libc::SIGFPE),
    ("KILL", libc::SIGKILL),
    ("USR1", libc::SIGUSR1),
    ("SEGV", libc::SIGSEGV),
    ("USR2", libc::SIGUSR2),
    ("PIPE", libc::SIGPIPE),
    ("ALRM", libc::SIGALRM),
    ("TERM", libc::SIGTERM),
    ("STKFLT", libc::SIGSTKFLT),
    ("CHLD", libc::SIGCHLD),
    ("CLD", libc::SIGCHLD),
    ("CONT", libc::SIGCONT),
    ("STOP", libc::SIGSTOP),
    ("TSTP", libc::SIGTSTP),
    ("TTIN", libc::SIGTTIN),
    ("TTOU", libc::SIGTTOU),
    ("URG", libc::SIGURG),
    ("XCPU", libc::SIGXCPU),
    ("XFSZ", libc::SIGXFSZ),
    ("VTALRM", libc::SIGVTALRM),
    ("PROF", libc::SIGPROF),
    ("WINCH", libc::SIGWINCH),
    ("IO", libc::SIGIO),
    ("POLL", libc::SIGPOLL),
    ("PWR", libc::SIGPWR),
    ("SYS", libc::SIGSYS),
];

/// `RTMIN` as `kill -l` and glibc programs see it (glibc reserves 32 and 33).
pub const RTMIN: i32 = 34;
pub const RTMAX: i32 = 64;

/// Parse `TERM`, `SIGTERM`, `15`, `RTMIN+3`, `SIGRTMAX-1` (case-insensitive) to 1..=64.
pub fn parse_signal(s: &str) -> Option<i32> {
    let up = s.trim().to_ascii_uppercase();
    let name = up.strip_prefix("SIG").unwrap_or(&up);
    if let Ok(n) = name.parse::<i32>() {
        return (1..=RTMAX).contains(&n).then_some(n);
    }
    let rt = |base: &str, rest: &str, sign: i32, origin: i32| -> Option<i32> {
        let off: i32 = if rest.is_empty() {
            0
        } else {
            let digits = rest.strip_prefix(if sign > 0 { '+' } else { '-' })?;
            digits.parse().ok()?
        };
        let _ = base;
        let n = origin + sign * off;
        (RTMIN..=RTMAX).contains(&n).then_some(n)
    };
    if let Some(rest) = name.strip_prefix("RTMIN") {
        return rt("RTMIN", rest, 1, RTMIN);
    }
    if let Some(rest) = name.strip_prefix("RTMAX") {
        return rt("RTMAX", rest, -1, RTMAX);
    }
    SIGNAL_NAMES.iter().find(|(n, _)| *n == name).map(|(_, num)| *num)
}

/// A signal's name for log lines (`TERM`, `RTMIN+6`, or the number), formatted only when a
/// line is actually written.
#[derive(Debug, Clone, Copy)]
pub struct SignalName(i32);

impl fmt::Display for SignalName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sig = self.0;
        if let Some((name, _)) = SIGNAL_NAMES.iter().find(|(_, n)| *n == sig) {
            return f.write_str(name);
        }
        match sig {
            RTMIN => f.write_str("RTMIN"),
            s if (RTMIN..=RTMAX).contains(&s) => write!(f, "RTMIN+{}", s - RTMIN),
            s => write!(f, "{s}"),
        }
    }
}

pub fn signal_name(sig: i32) -> SignalName {
    SignalName(sig)
}

fn signal(given: &Given<String>) -> Result<i32> {
    parse_signal(&given.value).map_or_else(|| invalid(given, SIGNAL_EXPECTED), Ok)
}

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

fn duration(given: &Option<Given<String>>, default: Duration) -> Result<Duration> {
    match given {
        None => Ok(default),
        Some(g) => parse_duration(&g.value).map_or_else(|| invalid(g, DURATION_EXPECTED), Ok),
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

/// A verbosity count: a small number, or a strict boolean (true = 1).
fn level_count(given: &Option<Given<String>>) -> Result<u8> {
    match given {
        None => Ok(0),
        Some(g) => match g.value.trim().parse::<u8>() {
            Ok(n) => Ok(n),
            Err(_) => match parse_bool(&g.value) {
                Some(b) => Ok(u8::from(b)),
                None => invalid(g, "a count such as 1 or 2, or one of 1/0/true/false/yes/no"),
            },
        },
    }
}

fn on_change(g: &Given<String>) -> Result<OnChange> {
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
    match (kind.as_str(), arg) {
        ("restart", None) => Ok(OnChange::Restart),
        ("signal", Some(sig)) => match parse_signal(sig) {
            Some(s) => Ok(OnChange::Signal(s)),
            None => invalid(g, "signal:SIG with SIG a signal name or number, e.g. signal:HUP"),
        },
        ("siblings", Some(sig)) => match parse_signal(sig) {
            Some(s) => Ok(OnChange::Siblings(s)),
            None => invalid(g, "siblings:SIG with SIG a signal name or number, e.g. siblings:HUP"),
        },
        ("exit", None) => Ok(OnChange::Exit(0)),
        ("exit", Some(code)) => match code.trim().parse::<u8>() {
            Ok(c) => Ok(OnChange::Exit(c)),
            Err(_) => invalid(g, "exit:CODE with CODE in 0..=255"),
        },
        _ => invalid(g, EXPECTED),
    }
}

fn signal_map(g: &Given<String>) -> Result<(i32, Option<i32>)> {
    const EXPECTED: &str = "FROM:TO with signal names or numbers, TO = 0 or none to drop";
    let Some((from, to)) = g.value.split_once(':') else {
        return invalid(g, EXPECTED);
    };
    let from = match parse_signal(from) {
        Some(s) if s == libc::SIGKILL || s == libc::SIGSTOP || s == libc::SIGCHLD => {
            return invalid(g, "a FROM signal reinit can receive and forward (not KILL, STOP or CHLD)");
        }
        Some(s) => s,
        None => return invalid(g, EXPECTED),
    };
    let to = match to.trim() {
        "0" => None,
        t if t.eq_ignore_ascii_case("none") => None,
        t => match parse_signal(t) {
            Some(s) => Some(s),
            None => return invalid(g, EXPECTED),
        },
    };
    Ok((from, to))
}

fn remap_exit(g: &Given<String>) -> Result<(u8, u8)> {
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

fn keyword<T: Copy>(given: &Option<Given<String>>, default: T, words: &[(&str, T)]) -> Result<T> {
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

/// Validate everything; the first problem found is returned.
pub fn build(raw: Raw, reinit_log: Option<String>) -> Result<Config> {
    let stop_signal = match &raw.stop_signal {
        Some(g) => signal(g)?,
        None => libc::SIGTERM,
    };
    let parent_death_signal = raw.parent_death_signal.as_ref().map(signal).transpose()?;
    let stop_timeout = duration(&raw.stop_timeout, Duration::from_secs(10))?;
    let pre_stop_delay = duration(&raw.pre_stop_delay, Duration::ZERO)?;
    let debounce = duration(&raw.debounce, Duration::from_millis(100))?;
    let jitter = duration(&raw.jitter, Duration::ZERO)?;
    let forward =
        keyword(&raw.forward, Forward::Group, &[("group", Forward::Group), ("child", Forward::Child)])?;
    let restart_on_exit = keyword(
        &raw.restart_on_exit,
        RestartPolicy::Never,
        &[
            ("never", RestartPolicy::Never),
            ("on-failure", RestartPolicy::OnFailure),
            ("always", RestartPolicy::Always),
        ],
    )?;
    let signal_map = raw.map_signal.iter().map(signal_map).collect::<Result<Vec<_>>>()?;
    let remap_exit = raw.remap_exit.iter().map(remap_exit).collect::<Result<Vec<_>>>()?;
    let listen = raw
        .listen
        .iter()
        .map(|g| sockets::parse(&g.value).or_else(|why| invalid(g, &why)))
        .collect::<Result<Vec<_>>>()?;
    if let Some(g) = raw.listen.first()
        && raw.command.is_empty()
    {
        return Err(ConfigError::Usage(format!(
            "{} passes sockets to the app, but no COMMAND was given",
            g.source
        )));
    }
    let metrics = match &raw.metrics {
        None => None,
        Some(g) => {
            let addr = crate::metrics::parse_addr(&g.value).or_else(|why| invalid(g, &why))?;
            Some(crate::metrics::Bind { addr, text: g.value.trim().to_string() })
        }
    };
    let dry_run = match &raw.dry_run {
        None => false,
        Some(g) => match parse_bool(&g.value) {
            Some(b) => b,
            None => return invalid(g, "one of 1/0/true/false/yes/no"),
        },
    };
    let verbose = level_count(&raw.verbose)?;
    let quiet = level_count(&raw.quiet)?;
    let log_filter = if verbose > 0 || quiet > 0 {
        const LEVELS: [&str; 6] = ["off", "error", "warn", "info", "debug", "trace"];
        let level = (3 + i32::from(verbose) - i32::from(quiet)).clamp(0, 5);
        LEVELS[level as usize].to_string()
    } else {
        reinit_log.filter(|s| !s.trim().is_empty()).unwrap_or_else(|| "info".into())
    };

    let validate = match &raw.validate {
        None => None,
        Some(g) => {
            let argv: Vec<String> = g.value.split_whitespace().map(String::from).collect();
            if argv.is_empty() {
                return invalid(g, "a command such as \"nginx -t -c {}\"");
            }
            Some(argv)
        }
    };
    let watch: Vec<PathBuf> = raw.watch.iter().map(|g| PathBuf::from(&g.value)).collect();
    if let Some(g) = raw.watch.iter().find(|g| g.value.is_empty()) {
        return Err(ConfigError::Invalid {
            source: g.source.clone(),
            value: String::new(),
            expected: "a file or directory path".into(),
        });
    }
    let sidecar = raw.command.is_empty();
    let on_change = match (&raw.on_change, watch.is_empty()) {
        (Some(g), true) => {
            return Err(ConfigError::Usage(format!(
                "{} '{}' needs something to watch: add --watch PATH",
                g.source, g.value
            )));
        }
        (None, true) => None,
        (Some(g), false) => Some(on_change(g)?),
        (None, false) if sidecar => {
            return Err(ConfigError::Usage(
                "no COMMAND given (sidecar mode): add --on-change exit[:CODE] or http://…, or give a COMMAND to run"
                    .into(),
            ));
        }
        (None, false) => Some(OnChange::Restart),
    };
    if let Some(g) = raw.sibling.first()
        && !matches!(on_change, Some(OnChange::Siblings(_)))
    {
        return Err(ConfigError::Usage(format!("{} only applies to --on-change siblings:SIG", g.source)));
    }
    if let Some(g) = raw.sibling.iter().find(|g| g.value.trim().is_empty() || g.value.contains('/')) {
        return invalid(g, "a process name (comm or executable basename, without a path)");
    }
    if let (Some(g), true) = (&raw.validate, watch.is_empty()) {
        return Err(ConfigError::Usage(format!("{} needs something to watch: add --watch PATH", g.source)));
    }
    if sidecar {
        match on_change {
            None => {
                return Err(ConfigError::Usage(
                    "no COMMAND given: give the app to run, e.g. reinit -- myserver --port 8080".into(),
                ));
            }
            Some(OnChange::Restart) | Some(OnChange::Signal(_)) => {
                return Err(ConfigError::Usage(
                    "--on-change restart and signal:SIG act on the app, but no COMMAND was given: \
                     give one, or use --on-change siblings:SIG, exit[:CODE] or http://…"
                        .into(),
                ));
            }
            Some(OnChange::Exit(_)) | Some(OnChange::Siblings(_)) | Some(OnChange::Http(_)) => {}
        }
        if raw.restart_on_exit.is_some() {
            return Err(ConfigError::Usage("--restart-on-exit needs a COMMAND to restart".into()));
        }
    }
    Ok(Config {
        command: raw.command,
        watch,
        on_change,
        siblings: raw.sibling.into_iter().map(|g| g.value.trim().to_string()).collect(),
        debounce,
        jitter,
        validate,
        stop_signal,
        stop_timeout,
        pre_stop_delay,
        forward,
        signal_map,
        restart_on_exit,
        remap_exit,
        parent_death_signal,
        listen,
        metrics,
        dry_run,
        log_filter,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::Args;
    use clap::Parser;

    fn cfg(argv: &[&str], vars: &[(&str, &str)]) -> Result<Config> {
        let mut full = vec!["reinit"];
        full.extend_from_slice(argv);
        let args = Args::try_parse_from(full).unwrap();
        let vars: Vec<(String, String)> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let raw = args.resolve(&|name| vars.iter().find(|(k, _)| k == name).map(|(_, v)| OsString::from(v)));
        build(raw, None)
    }

    #[test]
    fn signals_parse_every_spelling() {
        assert_eq!(parse_signal("TERM"), Some(15));
        assert_eq!(parse_signal("sigterm"), Some(15));
        assert_eq!(parse_signal("Hup"), Some(1));
        assert_eq!(parse_signal("15"), Some(15));
        assert_eq!(parse_signal("64"), Some(64));
        assert_eq!(parse_signal("RTMIN"), Some(34));
        assert_eq!(parse_signal("rtmin+3"), Some(37));
        assert_eq!(parse_signal("SIGRTMAX-1"), Some(63));
        assert_eq!(parse_signal("RTMAX"), Some(64));
        for bad in ["", "0", "65", "-1", "FOO", "RTMIN+31", "RTMIN-1", "RTMAX+1", "RTMIN+", "SIG", "1.5"] {
            assert_eq!(parse_signal(bad), None, "{bad}");
        }
        for (name, num) in SIGNAL_NAMES {
            assert_eq!(parse_signal(name), Some(*num));
        }
        assert_eq!(signal_name(15).to_string(), "TERM");
        assert_eq!(signal_name(40).to_string(), "RTMIN+6");
        assert_eq!(signal_name(34).to_string(), "RTMIN");
        assert_eq!(signal_name(99).to_string(), "99");
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
        assert_eq!(c.stop_signal, 15);
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
        assert_eq!(c.on_change, Some(OnChange::Siblings(1)));
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
        assert_eq!(c.on_change, Some(OnChange::Signal(1)));
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
        assert_eq!(c.map_signal(15), Some(2));
        assert_eq!(c.map_signal(28), None);
        assert_eq!(c.map_signal(10), Some(10));
        assert!(c.is_mapped(15) && !c.is_mapped(10));
        assert_eq!(c.remap_exit, [(143, 0), (1, 7)]);
        let c = cfg(&["app"], &[("REINIT_MAP_SIGNAL", "10:12,12:10"), ("REINIT_REMAP_EXIT", "143")]).unwrap();
        assert_eq!(c.map_signal(10), Some(12));
        assert_eq!(c.map_signal(12), Some(10));
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
