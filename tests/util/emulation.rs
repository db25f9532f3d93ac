//! Running the init tests against another architecture's reinit under qemu-user.
//!
//! `REINIT_BIN=target/aarch64-unknown-linux-musl/release/reinit cargo test init::` runs the
//! `init` tests against the static aarch64 binary; binfmt_misc hands it to
//! `qemu-aarch64-static`. The fixture app (`examples/fake_app`) stays a host binary.
//!
//! qemu-user emulates one process's user space on the host kernel; a few things an init relies
//! on are not faithfully emulated. Each such case is listed in [`Case`] with its reason, and a
//! test (or the part of it) that needs one is skipped with [`skip_under_qemu`], which prints
//! `skipped under qemu-user: ...` to the terminal (past the test harness's output capture)
//! so the skip is never silent. Nothing is skipped when reinit is a host binary.

use std::io::Write;
use std::path::Path;

/// What qemu-user cannot emulate for reinit. The README's "Supported architectures" lists the
/// same cases.
#[derive(Clone, Copy, Debug)]
pub enum Case {
    /// SIGILL, SIGFPE, SIGSEGV and SIGBUS sent with kill(2).
    FaultSignals,
    /// prctl(PR_SET_CHILD_SUBREAPER).
    Subreaper,
    /// SIG_IGN inherited by reinit passing on to the app across exec.
    InheritedIgnore,
}

impl Case {
    pub fn reason(self) -> &'static str {
        match self {
            Case::FaultSignals => {
                "qemu-user treats a host SIGILL, SIGFPE, SIGSEGV or SIGBUS as a possible fault \
                 of the code it translates: SIGILL and SIGFPE kill it, SIGSEGV and SIGBUS are \
                 lost or kill it when another signal was delivered shortly before"
            }
            Case::Subreaper => {
                "qemu-user does not pass prctl(PR_SET_CHILD_SUBREAPER) to the kernel, so orphans \
                 go to the namespace's init, not to reinit"
            }
            Case::InheritedIgnore => {
                "qemu-user installs its own host handler for an inherited SIG_IGN of a signal \
                 that is fatal by default (the emulated process still sees SIG_IGN), so the \
                 exec'd app gets the signal at its default action"
            }
        }
    }
}

/// The ELF `e_machine` of the host the tests run on.
fn host_machine() -> u16 {
    match std::env::consts::ARCH {
        "x86_64" => 62,
        "aarch64" => 183,
        "arm" => 40,
        other => panic!("no ELF machine number known for host architecture {other}"),
    }
}

/// The ELF `e_machine` field of `path` (little-endian ELF files only).
fn elf_machine(path: &Path) -> u16 {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    assert!(bytes.len() > 20 && &bytes[..4] == b"\x7fELF", "{} is not an ELF file", path.display());
    u16::from_le_bytes([bytes[18], bytes[19]])
}

/// Whether the reinit under test is for another machine than the host (run by qemu-user).
pub fn emulated() -> bool {
    static EMULATED: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *EMULATED.get_or_init(|| elf_machine(&super::reinit_bin()) != host_machine())
}

/// If reinit runs under emulation: prints `skipped under qemu-user: WHAT: reason` and returns
/// true (the caller then skips WHAT). Otherwise false, silently.
pub fn skip_under_qemu(what: &str, case: Case) -> bool {
    if !emulated() {
        return false;
    }
    // Straight to the process's stderr: `eprintln!` inside a test is captured and shown only
    // when the test fails.
    let _ = writeln!(std::io::stderr(), "skipped under qemu-user: {what}: {}", case.reason());
    true
}
