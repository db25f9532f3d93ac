//! Usage errors (exit 2, nothing started, one `reinit: error:` line naming the option and the
//! value), `-h`, `-V`, strict `REINIT_*` parsing.

use crate::util::{DEADLINE, Proc, TempDir, reinit_cmd};

/// `reinit ARGS -- sh -c 'touch MARKER'` with `env` added, run to its end; the marker says
/// whether the app started. Returns the process and the marker's path (and its directory).
fn run_touching(args: &[&str], env: &[(&str, &str)]) -> (Proc, std::path::PathBuf, TempDir) {
    let dir = TempDir::new("usage");
    let marker = dir.path().join("app-started");
    let mut all: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    all.extend(["--", "sh", "-c", "touch \"$0\""].map(String::from));
    all.push(marker.to_string_lossy().into_owned());
    let mut cmd = reinit_cmd(&all);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut p = Proc::spawn(cmd);
    p.wait_exit(DEADLINE);
    (p, marker, dir)
}

/// Asserts a usage error for `reinit ARGS` with `env`: status 2, the app never started,
/// nothing on stdout, and stderr exactly one line starting `reinit: error:` that names both
/// `name` (the flag or variable) and `value` (the rejected value or list element). Returns
/// that line.
fn assert_usage_error(args: &[&str], env: &[(&str, &str)], name: &str, value: &str) -> String {
    let (mut p, marker, _dir) = run_touching(args, env);
    let code = p.wait_code(DEADLINE);
    let dump = p.dump();
    assert_eq!(code, 2, "usage error expected for {args:?} {env:?}\n{dump}");
    assert!(!marker.exists(), "the app must not start on a usage error\n{dump}");
    assert!(p.lines_so_far().is_empty(), "stdout belongs to the app\n{dump}");
    let err = p.stderr_so_far();
    let lines: Vec<&str> = err.lines().collect();
    assert!(
        lines.len() == 1 && lines[0].starts_with("reinit: error: "),
        "stderr must be one `reinit: error:` line\n{dump}"
    );
    assert!(
        lines[0].contains(name) && lines[0].contains(value),
        "the error line must name {name:?} and the bad value {value:?}\n{dump}"
    );
    lines[0].to_string()
}

/// Asserts the app ran under `reinit ARGS` with `env` and reinit exited with its status, 0.
fn assert_app_runs(args: &[&str], env: &[(&str, &str)]) {
    let (mut p, marker, _dir) = run_touching(args, env);
    assert_eq!(p.wait_code(DEADLINE), 0, "{args:?} {env:?}\n{}", p.dump());
    assert!(marker.exists(), "the app must have run with {args:?} {env:?}\n{}", p.dump());
}

#[test]
fn malformed_map_signal_is_usage_error() {
    assert_usage_error(&["--map-signal", "x:y"], &[], "--map-signal", "x:y");
}

#[test]
fn malformed_stop_timeout_is_usage_error() {
    assert_usage_error(&["--stop-timeout", "abc"], &[], "--stop-timeout", "abc");
}

#[test]
fn malformed_dry_run_env_is_usage_error() {
    assert_usage_error(&[], &[("REINIT_DRY_RUN", "maybe")], "REINIT_DRY_RUN", "maybe");
}

#[test]
fn other_malformed_flags_are_usage_errors() {
    for (flag, value) in [
        ("--map-signal", "15"),
        ("--map-signal", "TERM:NOSUCHSIG"),
        ("--pre-stop-delay", "soon"),
        ("--forward", "sideways"),
        ("--restart-on-exit", "sometimes"),
        ("--stop-signal", "NOSUCHSIG"),
        ("--remap-exit", "abc"),
        ("--parent-death-signal", "NOSUCHSIG"),
    ] {
        assert_usage_error(&[flag, value], &[], flag, value);
    }
}

#[test]
fn other_malformed_env_values_are_usage_errors() {
    // (variable, value, the part of it the message must show)
    for (var, value, bad) in [
        ("REINIT_DRY_RUN", "2", "2"),
        ("REINIT_STOP_TIMEOUT", "abc", "abc"),
        ("REINIT_FORWARD", "sideways", "sideways"),
        ("REINIT_MAP_SIGNAL", "10:12,x:y", "x:y"),
    ] {
        assert_usage_error(&[], &[(var, value)], var, bad);
    }
}

#[test]
fn strict_booleans_accept_exactly_the_documented_values() {
    for value in ["1", "0", "true", "false", "yes", "no"] {
        let dir = TempDir::new("bool");
        let marker = dir.path().join("app-started");
        let mut cmd = reinit_cmd(["--", "sh", "-c", "touch \"$0\"", &marker.to_string_lossy()]);
        cmd.env("REINIT_DRY_RUN", value);
        let mut p = Proc::spawn(cmd);
        assert_eq!(p.wait_code(DEADLINE), 0, "REINIT_DRY_RUN={value} is valid\n{}", p.dump());
        assert!(marker.exists(), "the app must have run with REINIT_DRY_RUN={value}\n{}", p.dump());
    }
}

#[test]
fn unknown_flag_is_usage_error() {
    assert_usage_error(&["--no-such-flag"], &[], "--no-such-flag", "--no-such-flag");
}

#[test]
fn durations_longer_than_a_year_are_usage_errors() {
    // The largest value used to panic at the first stop (deadline overflow), after the app ran.
    for (flag, value) in [
        ("--stop-timeout", "9223372036854775807"),
        ("--stop-timeout", "8761h"),
        ("--pre-stop-delay", "31536001s"),
        ("--debounce", "600000m"),
        ("--jitter", "99999999999999999999999"),
    ] {
        let line = assert_usage_error(&[flag, value], &[], flag, value);
        assert!(line.contains("at most a year"), "{line}");
    }
    assert_usage_error(&[], &[("REINIT_STOP_TIMEOUT", "9000h")], "REINIT_STOP_TIMEOUT", "9000h");
    assert_app_runs(&["--stop-timeout", "8760h"], &[]);
}

#[test]
fn negative_values_are_values_not_flags() {
    for (args, flag, value) in [
        (&["--stop-timeout", "-1s"][..], "--stop-timeout", "-1s"),
        (&["--jitter", "-5"], "--jitter", "-5"),
        (&["--debounce", "-100ms"], "--debounce", "-100ms"),
        (&["--pre-stop-delay=-1"], "--pre-stop-delay", "-1"),
        (&["--remap-exit", "-1"], "--remap-exit", "-1"),
        (&["-e", "-1:0"], "--remap-exit", "-1:0"),
        (&["--stop-signal", "-9"], "--stop-signal", "-9"),
        (&["--map-signal", "-1:2"], "--map-signal", "-1:2"),
        (&["--forward", "-1"], "--forward", "-1"),
        (&["--restart-on-exit", "-1"], "--restart-on-exit", "-1"),
    ] {
        let line = assert_usage_error(args, &[], flag, value);
        assert!(line.starts_with(&format!("reinit: error: invalid value '{value}' for {flag}: ")), "{line}");
    }
}

#[test]
fn clap_errors_are_one_line_too() {
    assert_usage_error(&["--watch"], &[], "--watch", "--watch");
    assert_usage_error(&["--jitter", "1s", "--jitter", "2s"], &[], "--jitter", "--jitter");
    assert_usage_error(&["--dry-run=maybe"], &[], "--dry-run", "maybe");
    assert_usage_error(&["-Z"], &[], "-Z", "-Z");
}

#[test]
fn signals_that_cannot_do_the_job_are_refused() {
    let dir = TempDir::new("refused");
    let watched = dir.path().to_string_lossy().into_owned();
    for (action, why) in [
        ("signal:STOP", "SIGSTOP would freeze the app"),
        ("signal:SIGCHLD", "SIGCHLD"),
        ("signal:KILL", "SIGKILL kills the app"),
        ("signal:9", "SIGKILL kills the app"),
        ("siblings:KILL", "SIGKILL kills the other containers"),
        ("siblings:stop", "SIGSTOP would freeze the other containers"),
        ("siblings:CLD", "SIGCHLD"),
    ] {
        let line = assert_usage_error(&["-w", &watched, "--on-change", action], &[], "--on-change", action);
        assert!(line.contains(why), "{line}");
    }
    for (value, why) in [("STOP", "SIGSTOP would freeze the app"), ("CHLD", "SIGCHLD")] {
        let line = assert_usage_error(&["--stop-signal", value], &[], "--stop-signal", value);
        assert!(line.contains(why), "{line}");
        let line = assert_usage_error(&[], &[("REINIT_STOP_SIGNAL", value)], "REINIT_STOP_SIGNAL", value);
        assert!(line.contains(why), "{line}");
    }
    // the same signals where they do mean what they say
    assert_app_runs(&["--stop-signal", "KILL"], &[]);
    assert_app_runs(&["-w", &watched, "--on-change", "siblings:TERM", "--dry-run"], &[]);
}

#[test]
fn empty_variables_are_unset_ones() {
    let vars = [
        ("REINIT_WATCH", ""),
        ("REINIT_ON_CHANGE", ""),
        ("REINIT_VALIDATE", ""),
        ("REINIT_STOP_TIMEOUT", ""),
        ("REINIT_STOP_SIGNAL", ""),
        ("REINIT_FORWARD", ""),
        ("REINIT_DRY_RUN", ""),
        ("REINIT_VERBOSE", ""),
        ("REINIT_QUIET", " "),
        ("REINIT_MAP_SIGNAL", ""),
        ("REINIT_LISTEN", ""),
    ];
    for var in vars {
        assert_app_runs(&[], &[var]);
    }
    assert_app_runs(&[], &vars);
    // a flag given an empty value is still refused
    assert_usage_error(&["--watch", ""], &[], "--watch", "''");
    assert_usage_error(&["--stop-timeout="], &[], "--stop-timeout", "''");
}

#[test]
fn the_same_listen_address_twice_is_usage_error() {
    let line = assert_usage_error(
        &["--listen", "tcp:127.0.0.1:39117", "--listen", "tcp:127.0.0.1:39117"],
        &[],
        "--listen",
        "tcp:127.0.0.1:39117",
    );
    assert!(line.contains("given twice"), "{line}");
    let line = assert_usage_error(
        &[],
        &[("REINIT_LISTEN", "tcp::39118,admin=tcp:0.0.0.0:39118")],
        "REINIT_LISTEN",
        "admin=tcp:0.0.0.0:39118",
    );
    assert!(line.contains("given twice"), "{line}");
}

#[test]
fn missing_command_is_usage_error() {
    // No COMMAND means sidecar mode, which needs --watch and an --on-change.
    for args in [&[][..], &["--stop-timeout", "5s"][..]] {
        let mut p = Proc::spawn(reinit_cmd(args));
        assert_eq!(p.wait_code(DEADLINE), 2, "{}", p.dump());
        let err = p.stderr_so_far();
        assert!(
            err.lines().count() == 1 && err.starts_with("reinit: error: no COMMAND given"),
            "one line saying the COMMAND is missing\n{}",
            p.dump()
        );
    }
}

#[test]
fn help_shows_exit_status_table() {
    for flag in ["-h", "--help"] {
        let mut p = Proc::spawn(reinit_cmd([flag]));
        assert_eq!(p.wait_code(DEADLINE), 0, "{}", p.dump());
        let help = p.lines_so_far().join("\n");
        for needle in ["125", "126", "127", "128"] {
            assert!(
                help.contains(needle),
                "`reinit {flag}` must show the exit status table ({needle})\n{help}"
            );
        }
    }
}

#[test]
fn version_flag_prints_version() {
    let mut p = Proc::spawn(reinit_cmd(["-V"]));
    assert_eq!(p.wait_code(DEADLINE), 0, "{}", p.dump());
    let out = p.lines_so_far().join("\n");
    assert!(out.contains(env!("CARGO_PKG_VERSION")), "{}", p.dump());
}

#[test]
fn logs_go_to_stderr_prefixed_and_follow_the_level() {
    let run = |flags: &[&str], env: Option<&str>| {
        let mut args: Vec<&str> = flags.to_vec();
        args.extend(["--", "sh", "-c", "echo app-output; exit 3"]);
        let mut cmd = reinit_cmd(args);
        if let Some(filter) = env {
            cmd.env("REINIT_LOG", filter);
        }
        let mut p = Proc::spawn(cmd);
        assert_eq!(p.wait_code(DEADLINE), 3, "{}", p.dump());
        assert_eq!(p.lines_so_far(), ["app-output"], "stdout belongs to the app\n{}", p.dump());
        p.stderr_so_far()
    };
    let quiet = run(&["-q"], None);
    assert_eq!(quiet, "", "-q on a run without problems");
    for (flags, env) in [(&["-v"][..], None), (&[][..], Some("debug"))] {
        let err = run(flags, env);
        assert!(!err.is_empty(), "{flags:?} REINIT_LOG={env:?} must log something (the app's exit at least)");
        assert!(
            err.lines().all(|l| l.starts_with("reinit:")),
            "every log line is prefixed `reinit:` ({flags:?} {env:?}):\n{err}"
        );
    }
}
