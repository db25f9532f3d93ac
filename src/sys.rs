//! The only module with `unsafe`: raw libc calls that `nix` does not cover for every signal
//! number (real-time signals included), the pre-exec hook, prctl, and the record of SIGPIPE's
//! disposition taken before the Rust runtime changes it. Each block says why it is sound.
#![allow(unsafe_code)]

use std::io;
use std::os::unix::process::CommandExt;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};

/// Whether SIGPIPE was ignored when the process started. The Rust runtime sets SIGPIPE to
/// SIG_IGN before `main`; the app must get what reinit inherited, so we look first.
static SIGPIPE_WAS_IGNORED: AtomicBool = AtomicBool::new(false);

extern "C" fn record_sigpipe() {
    // SAFETY: sigaction with a null new action only reads the current disposition into a
    // zeroed, properly sized struct we own.
    unsafe {
        let mut old: libc::sigaction = std::mem::zeroed();
        if libc::sigaction(libc::SIGPIPE, std::ptr::null(), &mut old) == 0 {
            SIGPIPE_WAS_IGNORED.store(old.sa_sigaction == libc::SIG_IGN, Ordering::Relaxed);
        }
    }
}

// The C runtime (glibc and musl alike) runs `.init_array` entries before `main`, hence before
// the Rust runtime's own start-up touches SIGPIPE.
// SAFETY: a plain `extern "C" fn()` pointer is exactly what `.init_array` holds; the function
// only reads a disposition and stores an atomic.
#[used]
#[unsafe(link_section = ".init_array")]
static RECORD_SIGPIPE: extern "C" fn() = record_sigpipe;

pub fn sigpipe_was_ignored() -> bool {
    SIGPIPE_WAS_IGNORED.load(Ordering::Relaxed)
}

fn check(ret: libc::c_int) -> io::Result<()> {
    if ret == -1 { Err(io::Error::last_os_error()) } else { Ok(()) }
}

/// `kill(2)` for any signal number, real-time ones included (nix's `Signal` has none of those).
/// `pid` follows kill(2): negative means a process group; `sig` 0 only checks existence.
pub fn kill(pid: i32, sig: i32) -> io::Result<()> {
    // SAFETY: kill has no memory-safety preconditions.
    check(unsafe { libc::kill(pid, sig) })
}

/// Set `sig`'s disposition to SIG_DFL or SIG_IGN.
pub fn set_disposition(sig: i32, ignore: bool) -> io::Result<()> {
    // SAFETY: we install no handler function, only one of the two constant dispositions,
    // through a zeroed sigaction struct we own.
    unsafe {
        let mut act: libc::sigaction = std::mem::zeroed();
        act.sa_sigaction = if ignore { libc::SIG_IGN } else { libc::SIG_DFL };
        libc::sigemptyset(&mut act.sa_mask);
        check(libc::sigaction(sig, &act, std::ptr::null_mut()))
    }
}

/// One `waitpid(-1, WNOHANG)`: `Ok(None)` when children exist but none has changed state,
/// `Err(ECHILD)` when there is no child at all, else the pid and its raw wait status. Raw
/// because nix refuses statuses of real-time signals, and a reaped status must never be lost.
pub fn waitpid_any() -> io::Result<Option<(i32, i32)>> {
    let mut status: libc::c_int = 0;
    // SAFETY: status is a valid out pointer for the duration of the call.
    let pid = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) };
    match pid {
        0 => Ok(None),
        -1 => Err(io::Error::last_os_error()),
        pid => Ok(Some((pid, status))),
    }
}

/// A signal set as the kernel sees it: bit `n - 1` is signal `n`, for 1..=64. Raw, because
/// libc's `sigfillset`/`sigaddset` leave out the signals glibc and musl reserve (32–34), and a
/// signal reinit does not block would kill it instead of being forwarded.
pub type KernelSigset = u64;

fn rt_sigprocmask(how: libc::c_int, set: Option<KernelSigset>) -> io::Result<KernelSigset> {
    let mut old: KernelSigset = 0;
    let new = set.unwrap_or(0);
    let new_ptr: *const KernelSigset = if set.is_some() { &new } else { std::ptr::null() };
    // SAFETY: both pointers refer to 8-byte locals alive for the call; 8 is the kernel's
    // sigset size on every 64-bit and 32-bit Linux ABI with 64 signals.
    let ret = unsafe {
        libc::syscall(libc::SYS_rt_sigprocmask, how, new_ptr, &mut old as *mut KernelSigset, 8usize)
    };
    if ret == -1 { Err(io::Error::last_os_error()) } else { Ok(old) }
}

/// Block every signal; returns the mask we had before.
pub fn block_all_signals() -> io::Result<KernelSigset> {
    rt_sigprocmask(libc::SIG_BLOCK, Some(KernelSigset::MAX))
}

/// Replace the signal mask (used in the child before exec, and by tests).
pub fn set_signal_mask(mask: KernelSigset) -> io::Result<()> {
    rt_sigprocmask(libc::SIG_SETMASK, Some(mask)).map(|_| ())
}

/// A close-on-exec signalfd for every signal (blocking: reinit sleeps in its read when there is
/// nothing else to wait for).
pub fn signalfd_all() -> io::Result<std::os::fd::OwnedFd> {
    use std::os::fd::FromRawFd;
    let mask: KernelSigset = KernelSigset::MAX;
    // SAFETY: the mask pointer refers to an 8-byte local alive for the call.
    let fd = unsafe {
        libc::syscall(libc::SYS_signalfd4, -1, &mask as *const KernelSigset, 8usize, libc::SFD_CLOEXEC)
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the kernel just returned this descriptor to us; nothing else owns it.
    Ok(unsafe { std::os::fd::OwnedFd::from_raw_fd(fd as libc::c_int) })
}

/// `PR_SET_CHILD_SUBREAPER`: orphans of our descendants are reparented to us.
pub fn set_child_subreaper() -> io::Result<()> {
    // SAFETY: prctl with integer arguments only.
    check(unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1 as libc::c_ulong, 0, 0, 0) })
}

/// `PR_SET_PDEATHSIG`: the kernel sends us `sig` when our parent dies.
pub fn set_parent_death_signal(sig: i32) -> io::Result<()> {
    // SAFETY: prctl with integer arguments only.
    check(unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, sig as libc::c_ulong, 0, 0, 0) })
}

/// `pidfd_open(2)`: a descriptor that keeps referring to this very process, even after its pid
/// is reused.
pub fn pidfd_open(pid: i32) -> io::Result<std::os::fd::OwnedFd> {
    use std::os::fd::FromRawFd;
    // SAFETY: integer arguments only.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the kernel just returned this descriptor (close-on-exec by default); we own it.
    Ok(unsafe { std::os::fd::OwnedFd::from_raw_fd(fd as libc::c_int) })
}

/// `pidfd_send_signal(2)`: signal the process a pidfd refers to.
pub fn pidfd_send_signal(fd: std::os::fd::BorrowedFd<'_>, sig: i32) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    // SAFETY: a valid borrowed fd, no siginfo (null), no flags.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            fd.as_raw_fd(),
            sig,
            std::ptr::null::<libc::siginfo_t>(),
            0,
        )
    };
    if ret < 0 { Err(io::Error::last_os_error()) } else { Ok(()) }
}

/// `fcntl(F_DUPFD_CLOEXEC)`: a close-on-exec copy of `fd` at the lowest free number >= `min`.
pub fn dup_at_least(fd: i32, min: i32) -> io::Result<i32> {
    // SAFETY: integer arguments only; an invalid fd is reported as EBADF.
    let new = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, min) };
    if new < 0 { Err(io::Error::last_os_error()) } else { Ok(new) }
}

/// `dup2(2)`: the copy at `new` is not close-on-exec.
pub fn dup2(old: i32, new: i32) -> io::Result<()> {
    // SAFETY: integer arguments only. Used between fork and exec, where replacing whatever sat
    // at `new` is the point.
    check(unsafe { libc::dup2(old, new) })
}

/// `setenv(3)` in the forked child, before exec (the environment `execvp` passes on).
pub fn setenv(name: &str, value: &str) -> io::Result<()> {
    let name = std::ffi::CString::new(name).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    let value = std::ffi::CString::new(value).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    // SAFETY: valid NUL-terminated strings; called only in the single-threaded child between fork
    // and exec, so no other thread reads the environment concurrently.
    check(unsafe { libc::setenv(name.as_ptr(), value.as_ptr(), 1) })
}

/// Take ownership of an inherited descriptor (socket activation), making it close-on-exec.
/// `None` if `fd` is not open.
pub fn adopt_fd(fd: i32) -> Option<std::os::fd::OwnedFd> {
    use std::os::fd::FromRawFd;
    // SAFETY: integer arguments only.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFD) };
    if flags < 0 {
        return None;
    }
    // SAFETY: as above.
    unsafe { libc::fcntl(fd, libc::F_SETFD, flags | libc::FD_CLOEXEC) };
    // SAFETY: the fd is open, was passed to us by our parent for our use (LISTEN_PID is our
    // pid), and nothing else in reinit owns it.
    Some(unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) })
}

/// Make `fd` non-blocking.
pub fn set_nonblocking(fd: std::os::fd::BorrowedFd<'_>) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    // SAFETY: integer arguments only, on a descriptor the caller keeps open for the call.
    let flags = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GETFL) };
    check(flags)?;
    // SAFETY: as above.
    check(unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_SETFL, flags | libc::O_NONBLOCK) })
}

/// reinit's real user id.
pub fn uid() -> u32 {
    // SAFETY: getuid cannot fail and has no arguments.
    unsafe { libc::getuid() }
}

/// reinit's real group id.
pub fn gid() -> u32 {
    // SAFETY: getgid cannot fail and has no arguments.
    unsafe { libc::getgid() }
}

/// The soft limit on open files (`ulimit -n`), if it is finite.
#[allow(clippy::unnecessary_cast)] // rlim_t is 32-bit on some targets
pub fn open_file_limit() -> Option<u64> {
    let mut lim = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: `lim` is a valid out pointer for the call.
    let ret = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) };
    (ret == 0 && lim.rlim_cur != libc::RLIM_INFINITY).then_some(lim.rlim_cur as u64)
}

/// Run `hook` in the forked child just before exec.
///
/// The hook runs between fork and exec of a single-threaded parent: reinit never starts a
/// thread, so the child holds no lock another thread could own, and the hook may use the
/// plain syscall wrappers of nix and this module.
pub fn before_exec<F>(cmd: &mut Command, hook: F)
where
    F: FnMut() -> io::Result<()> + Send + Sync + 'static,
{
    // SAFETY: see above; the hook only makes syscalls (sigprocmask, sigaction, tcsetpgrp)
    // and touches no shared state.
    unsafe {
        cmd.pre_exec(hook);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mask_round_trips() {
        let before = block_all_signals().unwrap();
        let all = rt_sigprocmask(libc::SIG_BLOCK, None).unwrap();
        // SIGKILL and SIGSTOP can never be blocked; everything else, 32-34 included, is.
        assert_eq!(all, KernelSigset::MAX & !(1 << 8) & !(1 << 18));
        set_signal_mask(before).unwrap();
        assert_eq!(rt_sigprocmask(libc::SIG_BLOCK, None).unwrap(), before);
    }
}
