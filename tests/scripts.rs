//! The repository's scripts (`scripts/*.sh`, `bench/*.sh`) as a newcomer meets them: `-h` and
//! `--help` print the usage and exit 0, an unknown argument is one `error:` line and status 2 —
//! both before any of the script's work starts (a run that is still going after the deadline
//! is killed and fails the test) — and the README names every option the usage shows.

use crate::util::{DEADLINE, poll_until};
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Every `*.sh` under scripts/ and bench/.
fn scripts() -> Vec<PathBuf> {
    let mut found = Vec::new();
    for dir in ["scripts", "bench"] {
        for entry in std::fs::read_dir(repo().join(dir)).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "sh") {
                found.push(path);
            }
        }
    }
    found.sort();
    assert!(found.len() >= 5, "scripts found: {found:?}");
    found
}

/// `bash SCRIPT ARG` in its own process group, killed with the group if it is still running
/// at the deadline (a script that ignores ARG starts its real work).
fn run(script: &Path, arg: &str) -> Output {
    let mut child = Command::new("bash")
        .arg(script)
        .arg(arg)
        .current_dir(repo())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .unwrap();
    let pid = child.id() as i32;
    let mut done = None;
    let finished = poll_until(DEADLINE, || {
        done = child.try_wait().unwrap();
        done.is_some()
    });
    if !finished {
        let _ = killpg(Pid::from_raw(pid), Signal::SIGKILL);
    }
    let out = child.wait_with_output().unwrap();
    assert!(finished, "{} {arg}: still running after {DEADLINE:?}: it started its work", script.display());
    out
}

fn name(script: &Path) -> String {
    script.strip_prefix(repo()).unwrap().display().to_string()
}

#[test]
fn help_prints_usage_and_exits_0() {
    for script in scripts() {
        for arg in ["-h", "--help"] {
            let out = run(&script, arg);
            let text = String::from_utf8_lossy(&out.stdout);
            assert_eq!(out.status.code(), Some(0), "{} {arg}: {out:?}", name(&script));
            assert!(
                text.contains(&format!("  {}", name(&script))),
                "{} {arg}: no usage line:\n{text}",
                name(&script)
            );
            assert!(
                text.contains("-h, --help"),
                "{} {arg}: help does not list itself:\n{text}",
                name(&script)
            );
        }
    }
}

#[test]
fn unknown_argument_is_one_error_line_and_status_2() {
    for script in scripts() {
        let out = run(&script, "--no-such-option");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{}: {out:?}", name(&script));
        assert_eq!(err.lines().count(), 1, "{}: one line on stderr:\n{err}", name(&script));
        assert!(
            err.starts_with(&format!("{}: error: ", name(&script))) && err.contains("--no-such-option"),
            "{}: the error names the script and the argument:\n{err}",
            name(&script)
        );
        assert!(out.stdout.is_empty(), "{}: nothing on stdout", name(&script));
    }
}

/// Each `--option` a usage lists (in its option lines, `  --name   text`) is in the README.
#[test]
fn readme_lists_every_script_option() {
    let readme = std::fs::read_to_string(repo().join("README.md")).unwrap();
    for script in scripts() {
        let help = String::from_utf8_lossy(&run(&script, "--help").stdout).into_owned();
        assert!(readme.contains(&name(&script)), "README does not mention {}", name(&script));
        let options = help.lines().filter_map(|l| l.strip_prefix("  ")).filter(|l| l.starts_with('-'));
        for option in options.flat_map(|l| l.split_whitespace().next()).map(|o| o.trim_end_matches(',')) {
            if option != "-h" {
                assert!(
                    readme.contains(&format!("`{option}`")),
                    "README lacks {}'s `{option}`",
                    name(&script)
                );
            }
        }
    }
}
