//! Issue 3 points 1–2: usage errors (exit 2, nothing started, a clear message), `-h`, `-V`,
//! strict `REINIT_*` parsing.

use crate::util::{DEADLINE, Proc, TempDir, reinit_cmd};

/// Runs `reinit ARGS -- sh -c 'touch MARKER'` with `env` added and asserts a usage error:
/// status 2, the app never started (no marker), nothing on stdout, and one stderr line that
/// names both `name` (the flag or variable) and `value` (the rejected value or list element).
fn assert_usage_error(args: &[&str], env: &[(&str, &str)], name: &str, value: &str) {
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
    let code = p.wait_code(DEADLINE);
    let dump = p.dump();
    assert_eq!(code, 2, "usage error expected for {args:?} {env:?}\n{dump}");
    assert!(!marker.exists(), "the app must not start on a usage error\n{dump}");
    assert!(p.lines_so_far().is_empty(), "stdout belongs to the app\n{dump}");
    let err = p.stderr_so_far();
    assert!(
        err.lines().any(|l| l.contains(name) && l.contains(value)),
        "one stderr line must name {name:?} and the bad value {value:?}\n{dump}"
    );
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
        ("REINIT_DRY_RUN", "", ""),
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
fn missing_command_is_usage_error() {
    // No COMMAND means sidecar mode, which needs --watch and an --on-change.
    for args in [&[][..], &["--stop-timeout", "5s"][..]] {
        let mut p = Proc::spawn(reinit_cmd(args));
        assert_eq!(p.wait_code(DEADLINE), 2, "{}", p.dump());
        assert!(!p.stderr_so_far().trim().is_empty(), "a message is expected\n{}", p.dump());
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
