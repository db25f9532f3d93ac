//! `Raw` command line → validated `Config`: signals, durations and actions resolved, every rule
//! of the command line checked. Pure (no I/O), so every rule is unit-tested here.

use crate::cli::{Given, Raw};
use crate::signals::Signal;
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
    Signal(Signal),
    Exit(u8),
    /// Signal the top processes of the pod's other containers.
    Siblings(Signal),
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
    pub stop_signal: Signal,
    pub stop_timeout: Duration,
    pub pre_stop_delay: Duration,
    pub forward: Forward,
    /// FROM → TO; `None` drops FROM.
    pub signal_map: Vec<(Signal, Option<Signal>)>,
    pub restart_on_exit: RestartPolicy,
    pub remap_exit: Vec<(u8, u8)>,
    pub parent_death_signal: Option<Signal>,
    /// `--listen` sockets, in order (fd 3, 4, … in the app).
    pub listen: Vec<ListenSpec>,
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

const SIGNAL_EXPECTED: &str = "a signal name or number such as TERM, SIGHUP, 10 or RTMIN+3";
const DURATION_EXPECTED: &str = "a duration such as 250ms, 10s, 2m or a number of seconds";

fn signal(given: &Given<String>) -> Result<Signal> {
    Signal::parse(&given.value).map_or_else(|| invalid(given, SIGNAL_EXPECTED), Ok)
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
    const EXPECTED: &str = "restart, signal:SIG, exit[:CODE] or siblings:SIG";
    let v = g.value.trim();
    let (kind, arg) = match v.split_once(':') {
        Some((k, a)) => (k.to_ascii_lowercase(), Some(a)),
        None => (v.to_ascii_lowercase(), None),
    };
    match (kind.as_str(), arg) {
        ("restart", None) => Ok(OnChange::Restart),
        ("signal", Some(sig)) => match Signal::parse(sig) {
            Some(s) => Ok(OnChange::Signal(s)),
            None => invalid(g, "signal:SIG with SIG a signal name or number, e.g. signal:HUP"),
        },
        ("siblings", Some(sig)) => match Signal::parse(sig) {
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

fn signal_map(g: &Given<String>) -> Result<(Signal, Option<Signal>)> {
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
        None => Signal::TERM,
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
                "no COMMAND given (sidecar mode): add --on-change exit[:CODE], or give a COMMAND to run"
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
                     give one, or use --on-change siblings:SIG or exit[:CODE]"
                        .into(),
                ));
            }
            Some(OnChange::Exit(_)) | Some(OnChange::Siblings(_)) => {}
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
