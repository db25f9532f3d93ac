//! The command line exactly as typed: clap derive `Args` (doc comments are the help text) and
//! the `REINIT_<NAME>` environment fallbacks. Values stay strings here, tagged with where they
//! came from, so `config.rs` can name the flag or the variable in its error messages.
//!
//! Options whose value may be a mistyped negative number (durations, signals, exit codes) take
//! whatever follows them, `-1s` included, so `config.rs` can say what is wrong with it; the
//! others take negative numbers but no other `-…` word, so a value forgotten before the next
//! option is still reported as missing.

use clap::{ArgAction, Parser};
use std::ffi::OsString;

const EXIT_STATUS_HELP: &str = "\
Exit status:
  the app's status   the app exited (after --remap-exit)
  128+N              the app was killed by signal N (137 after the stop-timeout SIGKILL)
  126                COMMAND found but not executable (permission, format, a directory)
  127                COMMAND not found, or its #! interpreter is missing
  2                  usage error: a malformed flag or REINIT_* value, or a missing COMMAND;
                     nothing was started
  125                reinit itself could not start (inotify, socket bind, ...)
  CODE               --on-change exit:CODE fired

Every option also reads REINIT_<NAME> (--stop-timeout: REINIT_STOP_TIMEOUT); a flag beats
the variable; an empty variable counts as unset; repeatable options take a comma-separated
list. Booleans: 1/0/true/false/yes/no. Durations: 250ms, 10s, 2m, 1h, 1.5s or a bare number
of seconds, at most a year. Signals: TERM, SIGTERM, 15, RTMIN+3.
Logs go to stderr only; REINIT_LOG takes an env_logger filter (e.g. REINIT_LOG=debug).";

/// reinit: a tiny init for containers. Runs COMMAND as the app, forwards signals, reaps
/// zombies, and restarts or signals the app when a watched configuration really changes.
#[derive(Parser, Debug, Default)]
#[command(
    name = "reinit",
    version,
    after_help = EXIT_STATUS_HELP,
    override_usage = "reinit [OPTIONS] [--] [COMMAND [ARGS...]]",
    max_term_width = 100
)]
pub struct Args {
    /// File or directory to watch (repeatable). Missing at start: warn and wait for it.
    #[arg(short = 'w', long = "watch", allow_negative_numbers = true, value_name = "PATH")]
    pub watch: Vec<OsString>,

    /// On a real content change: restart | signal:SIG | exit[:CODE] | siblings:SIG |
    /// http://HOST[:PORT]/PATH (POST) [default: restart with a COMMAND, else required]
    #[arg(long = "on-change", allow_negative_numbers = true, value_name = "ACTION")]
    pub on_change: Option<String>,

    /// Restrict siblings:SIG to processes whose comm or exe basename is NAME (repeatable)
    /// [default: every sibling]
    #[arg(long = "sibling", allow_negative_numbers = true, value_name = "NAME")]
    pub sibling: Vec<String>,

    /// Quiet period after the last relevant event before content is compared [default: 100ms]
    #[arg(long = "debounce", allow_hyphen_values = true, value_name = "DURATION")]
    pub debounce: Option<String>,

    /// Random extra delay, uniform in [0, DURATION], before acting on a change [default: 0]
    #[arg(long = "jitter", allow_hyphen_values = true, value_name = "DURATION")]
    pub jitter: Option<String>,

    /// Command run before acting on new content ("CMD ARGS", no shell; {} is the changed
    /// path); non-zero keeps the running app untouched
    #[arg(long = "validate", allow_negative_numbers = true, value_name = "CMD")]
    pub validate: Option<String>,

    /// Signal that asks the app to stop [default: TERM]
    #[arg(long = "stop-signal", allow_hyphen_values = true, value_name = "SIG")]
    pub stop_signal: Option<String>,

    /// Grace after the stop signal before SIGKILL to the app's process group [default: 10s]
    #[arg(long = "stop-timeout", allow_hyphen_values = true, value_name = "DURATION")]
    pub stop_timeout: Option<String>,

    /// On SIGTERM, wait this long before stopping the app (endpoint draining) [default: 0]
    #[arg(long = "pre-stop-delay", allow_hyphen_values = true, value_name = "DURATION")]
    pub pre_stop_delay: Option<String>,

    /// On a change, stop the old app before starting the new one, or start the new one first
    /// and stop the old one once the new one is ready [default: stop-first]
    #[arg(long = "update-order", value_name = "stop-first|start-first")]
    pub update_order: Option<String>,

    /// When a started app is ready: notify (sd_notify READY=1 on $NOTIFY_SOCKET) | exec:CMD
    /// (until it exits 0) | http://HOST:PORT/PATH (until a 2xx) | delay:DURATION
    #[arg(long = "ready", value_name = "HOW")]
    pub ready: Option<String>,

    /// How long a started app may take to be ready [default: 60s]
    #[arg(long = "ready-timeout", allow_hyphen_values = true, value_name = "DURATION")]
    pub ready_timeout: Option<String>,

    /// Forward signals to the app's process group or to the app process only [default: group]
    #[arg(long = "forward", allow_negative_numbers = true, value_name = "group|child")]
    pub forward: Option<String>,

    /// Rewrite a forwarded signal, FROM:TO; TO = 0 or none drops it (repeatable)
    #[arg(long = "map-signal", allow_hyphen_values = true, value_name = "FROM:TO")]
    pub map_signal: Vec<String>,

    /// When the app exits by itself: never | on-failure | always restart it, with backoff
    /// 1s doubling to 30s, reset after 10s up [default: never]
    #[arg(long = "restart-on-exit", allow_negative_numbers = true, value_name = "POLICY")]
    pub restart_on_exit: Option<String>,

    /// Map the app's exit status CODE to TO (default 0), e.g. -e 143 (repeatable)
    #[arg(short = 'e', long = "remap-exit", allow_hyphen_values = true, value_name = "CODE[:TO]")]
    pub remap_exit: Vec<String>,

    /// Hold a listening socket and pass it to every app start (fd 3, 4, … with LISTEN_FDS):
    /// [NAME=]tcp:HOST:PORT, [NAME=]tcp6:[HOST]:PORT or [NAME=]unix:PATH (repeatable)
    #[arg(long = "listen", allow_negative_numbers = true, value_name = "ADDR")]
    pub listen: Vec<String>,

    /// Serve Prometheus metrics at http://[HOST]:PORT/metrics (empty HOST: every IPv4 address)
    #[arg(long = "metrics", value_name = "[HOST]:PORT")]
    pub metrics: Option<String>,

    /// Signal reinit receives when its parent dies, handled like any received signal
    #[arg(long = "parent-death-signal", allow_hyphen_values = true, value_name = "SIG")]
    pub parent_death_signal: Option<String>,

    /// Log the action a change would cause, do not perform it
    #[arg(long = "dry-run", action = ArgAction::SetTrue)]
    pub dry_run: bool,

    /// More logging (stackable: -v debug, -vv trace)
    #[arg(short = 'v', long = "verbose", action = ArgAction::Count)]
    pub verbose: u8,

    /// Less logging (stackable: -q warnings only, -qq errors only, -qqq nothing)
    #[arg(short = 'q', long = "quiet", action = ArgAction::Count)]
    pub quiet: u8,

    /// The app and its arguments; none means sidecar mode
    #[arg(
        value_name = "COMMAND",
        trailing_var_arg = true,
        num_args = 0..
    )]
    pub command: Vec<OsString>,
}

/// A value with the name of where it came from (`--stop-timeout` or `REINIT_STOP_TIMEOUT`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Given<T> {
    pub value: T,
    pub source: String,
}

/// Every option after the environment fallbacks are applied: still unparsed strings.
#[derive(Debug, Default)]
pub struct Raw {
    pub watch: Vec<Given<OsString>>,
    pub on_change: Option<Given<String>>,
    pub sibling: Vec<Given<String>>,
    pub debounce: Option<Given<String>>,
    pub jitter: Option<Given<String>>,
    pub validate: Option<Given<String>>,
    pub stop_signal: Option<Given<String>>,
    pub stop_timeout: Option<Given<String>>,
    pub pre_stop_delay: Option<Given<String>>,
    pub update_order: Option<Given<String>>,
    pub ready: Option<Given<String>>,
    pub ready_timeout: Option<Given<String>>,
    pub forward: Option<Given<String>>,
    pub map_signal: Vec<Given<String>>,
    pub restart_on_exit: Option<Given<String>>,
    pub remap_exit: Vec<Given<String>>,
    pub listen: Vec<Given<String>>,
    pub parent_death_signal: Option<Given<String>>,
    pub metrics: Option<Given<String>>,
    pub dry_run: Option<Given<String>>,
    pub verbose: Option<Given<String>>,
    pub quiet: Option<Given<String>>,
    pub command: Vec<OsString>,
}

fn flag(name: &str) -> String {
    format!("--{name}")
}

/// `stop-timeout` -> `REINIT_STOP_TIMEOUT` (one allocation: this runs for every option at start).
fn var_name(name: &str) -> String {
    let mut var = String::with_capacity("REINIT_".len() + name.len());
    var.push_str("REINIT_");
    var.extend(name.chars().map(|c| if c == '-' { '_' } else { c.to_ascii_uppercase() }));
    var
}

impl Args {
    /// Apply the `REINIT_*` fallbacks, reading variables through `env`.
    pub fn resolve(self, env: &dyn Fn(&str) -> Option<OsString>) -> Raw {
        let single = |name: &str, v: Option<String>| -> Option<Given<String>> {
            match v {
                Some(value) => Some(Given { value, source: flag(name) }),
                None => {
                    let var = var_name(name);
                    env_value(env, &var).map(|value| Given { value, source: var })
                }
            }
        };
        let list = |name: &str, v: Vec<String>| -> Vec<Given<String>> {
            if !v.is_empty() {
                let source = flag(name);
                return v.into_iter().map(|value| Given { value, source: source.clone() }).collect();
            }
            let var = var_name(name);
            let values = env_value(env, &var).unwrap_or_default();
            split_list(&values).map(|value| Given { value, source: var.clone() }).collect()
        };
        let watch = if !self.watch.is_empty() {
            self.watch.into_iter().map(|value| Given { value, source: flag("watch") }).collect()
        } else {
            list("watch", Vec::new())
                .into_iter()
                .map(|g| Given { value: OsString::from(g.value), source: g.source })
                .collect()
        };
        let count = |name: &str, n: u8| -> Option<Given<String>> {
            if n > 0 { Some(Given { value: n.to_string(), source: flag(name) }) } else { single(name, None) }
        };
        let dry_run = if self.dry_run {
            Some(Given { value: "true".into(), source: flag("dry-run") })
        } else {
            single("dry-run", None)
        };
        Raw {
            watch,
            on_change: single("on-change", self.on_change),
            sibling: list("sibling", self.sibling),
            debounce: single("debounce", self.debounce),
            jitter: single("jitter", self.jitter),
            validate: single("validate", self.validate),
            stop_signal: single("stop-signal", self.stop_signal),
            stop_timeout: single("stop-timeout", self.stop_timeout),
            pre_stop_delay: single("pre-stop-delay", self.pre_stop_delay),
            update_order: single("update-order", self.update_order),
            ready: single("ready", self.ready),
            ready_timeout: single("ready-timeout", self.ready_timeout),
            forward: single("forward", self.forward),
            map_signal: list("map-signal", self.map_signal),
            restart_on_exit: single("restart-on-exit", self.restart_on_exit),
            remap_exit: list("remap-exit", self.remap_exit),
            listen: list("listen", self.listen),
            parent_death_signal: single("parent-death-signal", self.parent_death_signal),
            metrics: single("metrics", self.metrics),
            dry_run,
            verbose: count("verbose", self.verbose),
            quiet: count("quiet", self.quiet),
            command: self.command,
        }
    }
}

/// The variable `var`, or `None` when it is unset or blank: `VAR=` (what an empty value in a
/// container spec or a template gives) means the same as no `VAR`.
fn env_value(env: &dyn Fn(&str) -> Option<OsString>, var: &str) -> Option<String> {
    env(var).map(|v| v.to_string_lossy().into_owned()).filter(|v| !v.trim().is_empty())
}

/// A command-line error clap found, as one line (without the `reinit: error: ` prefix): the
/// first line of clap's message, which names the option (and the value when there is one),
/// without its tips and usage lines.
pub fn clap_error_line(e: &clap::Error) -> String {
    use clap::error::{ContextKind, ContextValue, ErrorKind};
    if e.kind() == ErrorKind::UnknownArgument
        && let Some(ContextValue::String(arg)) = e.get(ContextKind::InvalidArg)
    {
        return format!("unknown option '{arg}' (options go before the COMMAND; see --help)");
    }
    let rendered = e.render().to_string();
    let first = rendered.lines().map(str::trim).find(|l| !l.is_empty()).unwrap_or("invalid command line");
    first.strip_prefix("error: ").unwrap_or(first).to_string()
}

fn split_list(s: &str) -> impl Iterator<Item = String> + '_ {
    s.split(',').map(str::trim).filter(|p| !p.is_empty()).map(String::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(argv: &[&str], vars: &[(&str, &str)]) -> Raw {
        let args = Args::try_parse_from(argv).unwrap();
        let vars: Vec<(String, String)> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        args.resolve(&|name| vars.iter().find(|(k, _)| k == name).map(|(_, v)| OsString::from(v)))
    }

    #[test]
    fn flag_beats_variable() {
        let raw = parse(&["reinit", "--stop-timeout", "3s", "--", "true"], &[("REINIT_STOP_TIMEOUT", "1s")]);
        assert_eq!(raw.stop_timeout.unwrap(), Given { value: "3s".into(), source: "--stop-timeout".into() });
        let raw = parse(&["reinit", "true"], &[("REINIT_STOP_TIMEOUT", "1s")]);
        assert_eq!(raw.stop_timeout.unwrap().source, "REINIT_STOP_TIMEOUT");
    }

    #[test]
    fn variable_lists_split_on_commas() {
        let raw =
            parse(&["reinit", "true"], &[("REINIT_MAP_SIGNAL", "15:2, 28:0"), ("REINIT_WATCH", "/a,/b")]);
        let maps: Vec<_> = raw.map_signal.iter().map(|g| g.value.as_str()).collect();
        assert_eq!(maps, ["15:2", "28:0"]);
        assert_eq!(raw.watch.len(), 2);
        assert_eq!(raw.watch[0].source, "REINIT_WATCH");
        // a flag value is never split
        let raw = parse(&["reinit", "--watch", "/a,b", "true"], &[]);
        assert_eq!(raw.watch.len(), 1);
    }

    #[test]
    fn command_keeps_its_own_flags() {
        let raw = parse(&["reinit", "-v", "sleep", "-v", "--", "x"], &[]);
        assert_eq!(raw.command, ["sleep", "-v", "--", "x"]);
        assert_eq!(raw.verbose.unwrap().value, "1");
        let raw = parse(&["reinit", "--", "-weird"], &[]);
        assert_eq!(raw.command, ["-weird"]);
    }

    #[test]
    fn an_unknown_option_is_an_error_not_a_command() {
        assert!(Args::try_parse_from(["reinit", "--bogus", "--", "app"]).is_err());
        assert!(Args::try_parse_from(["reinit", "--bogus"]).is_err());
    }

    #[test]
    fn booleans_come_from_flag_or_variable() {
        assert_eq!(parse(&["reinit", "--dry-run"], &[]).dry_run.unwrap().value, "true");
        let raw = parse(&["reinit"], &[("REINIT_DRY_RUN", "maybe")]);
        assert_eq!(raw.dry_run.unwrap(), Given { value: "maybe".into(), source: "REINIT_DRY_RUN".into() });
    }

    #[test]
    fn an_empty_variable_is_an_unset_one() {
        let vars = [
            ("REINIT_STOP_TIMEOUT", ""),
            ("REINIT_DRY_RUN", " "),
            ("REINIT_WATCH", ""),
            ("REINIT_MAP_SIGNAL", ""),
            ("REINIT_VERBOSE", ""),
        ];
        let raw = parse(&["reinit", "true"], &vars);
        assert!(raw.stop_timeout.is_none() && raw.dry_run.is_none() && raw.verbose.is_none());
        assert!(raw.watch.is_empty() && raw.map_signal.is_empty());
        // a flag's empty value is still a value (and config.rs refuses it)
        let raw = parse(&["reinit", "--stop-timeout", "", "true"], &[]);
        assert_eq!(raw.stop_timeout.unwrap().value, "");
    }

    #[test]
    fn values_may_start_with_a_hyphen() {
        let raw = parse(&["reinit", "--stop-timeout", "-1s", "--jitter", "-5", "-e", "-1", "true"], &[]);
        assert_eq!(raw.stop_timeout.unwrap().value, "-1s");
        assert_eq!(raw.jitter.unwrap().value, "-5");
        assert_eq!(raw.remap_exit[0].value, "-1");
        assert_eq!(raw.command, ["true"]);
        let raw = parse(&["reinit", "--forward", "-1", "--stop-signal", "-9", "true"], &[]);
        assert_eq!(raw.forward.unwrap().value, "-1");
        assert_eq!(raw.stop_signal.unwrap().value, "-9");
        // a forgotten value before the next option is missing, not that option
        assert!(Args::try_parse_from(["reinit", "--watch", "-v", "true"]).is_err());
    }

    #[test]
    fn clap_errors_are_one_line_naming_the_option() {
        let line = |argv: &[&str]| clap_error_line(&Args::try_parse_from(argv).unwrap_err());
        assert_eq!(
            line(&["reinit", "--bogus", "true"]),
            "unknown option '--bogus' (options go before the COMMAND; see --help)"
        );
        let missing = line(&["reinit", "--watch"]);
        assert!(missing.contains("'--watch <PATH>'") && !missing.contains('\n'), "{missing}");
        let twice = line(&["reinit", "--jitter", "1", "--jitter", "2"]);
        assert!(twice.contains("--jitter") && !twice.starts_with("error"), "{twice}");
    }
}
