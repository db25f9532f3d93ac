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

#[inline(always)]
fn check(ret: libc::c_int) -> io::Result<()> {
    if ret == -1 { Err(io::Error::last_os_error()) } else { Ok(()) }
}

/// A system call's count (bytes, ready descriptors), or its error.
#[inline(always)]
fn count(n: libc::c_long) -> io::Result<usize> {
    if n < 0 { Err(io::Error::last_os_error()) } else { Ok(n as usize) }
}

/// `kill(2)` for any signal number, real-time ones included (nix's `Signal` has none of those).
/// `pid` follows kill(2): negative means a process group; `sig` 0 only checks existence.
/// Straight to the kernel: it is on the path of every forwarded signal.
#[inline(always)]
pub fn kill(pid: i32, sig: i32) -> io::Result<()> {
    // SAFETY: kill has no memory-safety preconditions.
    check(unsafe { libc::syscall(libc::SYS_kill, pid, sig) } as libc::c_int)
}

/// read(2) straight to the kernel (the signalfd is read on every wake).
pub fn read(fd: std::os::fd::BorrowedFd<'_>, buf: &mut [u8]) -> io::Result<usize> {
    use std::os::fd::AsRawFd;
    // SAFETY: `buf` is valid for writes of `buf.len()` bytes for the call.
    count(unsafe { libc::syscall(libc::SYS_read, fd.as_raw_fd(), buf.as_mut_ptr(), buf.len()) })
}

/// poll(2), through ppoll (which every architecture has), straight to the kernel: the loop
/// sleeps here on every wake, and the C library's poll is a cancellation-point wrapper. `None`
/// waits without a time limit.
#[inline(always)]
pub fn poll(fds: &mut [nix::poll::PollFd<'_>], timeout: Option<std::time::Duration>) -> io::Result<usize> {
    let mut ts = timeout.map(|d| libc::timespec {
        tv_sec: libc::time_t::try_from(d.as_secs()).unwrap_or(libc::time_t::MAX),
        tv_nsec: d.subsec_nanos().into(),
    });
    let ts_ptr = ts.as_mut().map_or(std::ptr::null_mut(), |t| t as *mut libc::timespec);
    // SAFETY: nix's PollFd is `repr(transparent)` over `libc::pollfd`, so the slice is an array
    // of `fds.len()` pollfds the kernel may write `revents` into; `ts_ptr` is null or points to
    // `ts` (which the kernel updates with the time left), alive for the call; a null sigmask
    // leaves the mask alone.
    let n = unsafe {
        libc::syscall(
            libc::SYS_ppoll,
            fds.as_mut_ptr().cast::<libc::pollfd>(),
            fds.len() as libc::nfds_t,
            ts_ptr,
            std::ptr::null::<libc::sigset_t>(),
            std::mem::size_of::<u64>(),
        )
    };
    count(n)
}

/// End the process now with `code`, skipping the runtime's clean-up (nothing reinit writes is
/// buffered).
pub fn exit(code: u8) -> ! {
    // SAFETY: _exit(2) ends the process; it has no preconditions.
    unsafe { libc::_exit(i32::from(code)) }
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

/// Everything the app's child needs, prepared by the parent. `spawn_app` starts the child with
/// `CLONE_VM | CLONE_VFORK`, as posix_spawn does: it runs in reinit's memory, on a stack of its
/// own, while reinit is suspended until it execs. So nothing is copied on write (reinit's
/// first steps after a start take no page faults), and the child may only make system calls:
/// no allocation, no lock, no unwinding. Hence every string and array is built here first.
pub struct AppExec {
    /// Where to try exec, in order (the `PATH` search done in the parent).
    paths: Vec<std::ffi::CString>,
    _argv: Vec<std::ffi::CString>,
    argv_ptrs: Vec<*const libc::c_char>,
    _env: Vec<std::ffi::CString>,
    env_ptrs: Vec<*const libc::c_char>,
    /// `LISTEN_PID=` and room for the pid, which only the child knows: filled in there.
    listen_pid: Option<Box<[u8; 32]>>,
    mask: KernelSigset,
    sigpipe_ignored: bool,
    take_terminal: bool,
    /// Sockets to place at fd 3, 4, …: first moved above `above`, into `high`.
    listen_fds: Vec<i32>,
    high: Vec<i32>,
    above: i32,
    stack: Vec<u8>,
    /// Set by the child when it could not exec (then it exits 127).
    errno: i32,
    /// The write end of a close-on-exec pipe the child also reports that errno on (-1: none):
    /// where `CLONE_VM` is not honoured (qemu-user runs the child as a plain fork), the shared
    /// `errno` never reaches the parent, and EOF on the pipe is what says the exec happened.
    report_fd: i32,
}

/// What the app's environment gets besides reinit's own.
pub struct AppEnv {
    /// `NAME=value` entries that replace reinit's `NAME` (or are added).
    pub set: Vec<(String, String)>,
    /// Whether `LISTEN_PID=<the app's pid>` is added.
    pub listen_pid: bool,
}

impl AppExec {
    /// `paths`: where to find the program; `argv`: its arguments (argv[0] included).
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        paths: Vec<std::ffi::CString>,
        argv: Vec<std::ffi::CString>,
        env: AppEnv,
        mask: KernelSigset,
        sigpipe_ignored: bool,
        take_terminal: bool,
        listen_fds: Vec<i32>,
    ) -> io::Result<AppExec> {
        use std::os::unix::ffi::OsStrExt;
        let invalid = |_| io::Error::from(io::ErrorKind::InvalidInput);
        let mut vars = Vec::new();
        for (name, value) in std::env::vars_os() {
            let replaced = env.set.iter().any(|(n, _)| n.as_bytes() == name.as_bytes())
                || (env.listen_pid && name.as_bytes() == b"LISTEN_PID");
            if !replaced {
                let mut entry = name.as_bytes().to_vec();
                entry.push(b'=');
                entry.extend_from_slice(value.as_bytes());
                vars.push(std::ffi::CString::new(entry).map_err(invalid)?);
            }
        }
        for (name, value) in &env.set {
            vars.push(std::ffi::CString::new(format!("{name}={value}")).map_err(invalid)?);
        }
        let mut listen_pid = env.listen_pid.then(|| Box::new([0u8; 32]));
        let mut env_ptrs: Vec<*const libc::c_char> = vars.iter().map(|v| v.as_ptr()).collect();
        if let Some(buf) = listen_pid.as_mut() {
            buf[..11].copy_from_slice(b"LISTEN_PID=");
            env_ptrs.push(buf.as_ptr().cast());
        }
        env_ptrs.push(std::ptr::null());
        let mut argv_ptrs: Vec<*const libc::c_char> = argv.iter().map(|a| a.as_ptr()).collect();
        argv_ptrs.push(std::ptr::null());
        let n = listen_fds.len() as i32;
        let above = listen_fds.iter().copied().max().unwrap_or(0).max(2 + n) + 1;
        Ok(AppExec {
            paths,
            _argv: argv,
            argv_ptrs,
            _env: vars,
            env_ptrs,
            listen_pid,
            mask,
            sigpipe_ignored,
            take_terminal,
            high: vec![-1; listen_fds.len()],
            listen_fds,
            above,
            stack: vec![0u8; 64 * 1024],
            errno: 0,
            report_fd: -1,
        })
    }
}

/// Start the app as `exec` says; its pid. An exec that failed is reported here with its errno
/// (the child exited 127; the loop reaps it like any child).
pub fn spawn_app(exec: &mut AppExec) -> io::Result<i32> {
    exec.errno = 0;
    let mut pipe = [-1 as libc::c_int; 2];
    // SAFETY: `pipe` is a valid out array of two ints. Without one (out of fds) the shared
    // `errno` alone reports a failed exec.
    let piped = unsafe { libc::pipe2(pipe.as_mut_ptr(), libc::O_CLOEXEC) } == 0;
    exec.report_fd = if piped { pipe[1] } else { -1 };
    let len = exec.stack.len();
    // SAFETY: the stack top is 16-byte aligned and inside the allocation; the stack and `exec`
    // outlive the child's use of them: CLONE_VFORK suspends us until it has exec'd or exited,
    // and neither is touched by us meanwhile.
    let pid = unsafe {
        let top = exec.stack.as_mut_ptr().add(len);
        let top = top.sub(top as usize % 16);
        let flags = libc::CLONE_VM | libc::CLONE_VFORK | libc::SIGCHLD;
        libc::clone(app_child, top.cast(), flags, (exec as *mut AppExec).cast())
    };
    let clone_error = io::Error::last_os_error();
    let reported = if piped { read_report(pipe) } else { 0 };
    if pid < 0 {
        return Err(clone_error);
    }
    // SAFETY: the child wrote it (or not) before it exec'd or exited; it runs no more in our
    // memory. Volatile: the compiler cannot see that write.
    let shared = unsafe { std::ptr::read_volatile(&exec.errno) };
    let errno = if shared != 0 { shared } else { reported };
    if errno != 0 {
        return Err(io::Error::from_raw_os_error(errno));
    }
    Ok(pid)
}

/// Close our write end of the report pipe and read the child's errno from it: 0 at EOF (it
/// exec'd). Under `CLONE_VFORK` the child is already past exec, so this does not wait.
fn read_report(pipe: [libc::c_int; 2]) -> i32 {
    let mut errno = [0u8; 4];
    let mut got = 0;
    // SAFETY: both fds are the pipe we created and own; the buffer is ours and in bounds.
    unsafe {
        libc::close(pipe[1]);
        while got < errno.len() {
            let n = libc::read(pipe[0], errno.as_mut_ptr().add(got).cast(), errno.len() - got);
            if n > 0 {
                got += n as usize;
            } else if n == 0 || io::Error::last_os_error().kind() != io::ErrorKind::Interrupted {
                break;
            }
        }
        libc::close(pipe[0]);
    }
    if got == errno.len() { i32::from_ne_bytes(errno) } else { 0 }
}

/// The app's child: system calls only (see `AppExec`), then exec or exit 127.
extern "C" fn app_child(arg: *mut libc::c_void) -> libc::c_int {
    // SAFETY: `arg` is the `AppExec` the parent passed, alive and untouched by anyone else
    // until we exec or exit (CLONE_VFORK). Every call below is a plain system call on values
    // prepared by the parent; nothing allocates, locks or can unwind.
    unsafe {
        let exec = &mut *arg.cast::<AppExec>();
        let errno = || *libc::__errno_location();
        let all: KernelSigset = KernelSigset::MAX;
        let fail = |exec: &mut AppExec, e: i32| -> ! {
            let e = if e == 0 { libc::EINVAL } else { e };
            exec.errno = e;
            if exec.report_fd >= 0 {
                let bytes = e.to_ne_bytes();
                libc::write(exec.report_fd, bytes.as_ptr().cast(), bytes.len());
            }
            libc::_exit(127)
        };
        // Still every signal blocked: a background group calling tcsetpgrp would get SIGTTOU.
        libc::syscall(
            libc::SYS_rt_sigprocmask,
            libc::SIG_SETMASK,
            &all,
            std::ptr::null_mut::<KernelSigset>(),
            8usize,
        );
        if libc::setpgid(0, 0) != 0 {
            fail(exec, errno());
        }
        if exec.take_terminal {
            let pid = libc::getpid();
            libc::ioctl(0, libc::TIOCSPGRP, &pid); // best effort: the terminal may be gone
        }
        let mut act: libc::sigaction = std::mem::zeroed();
        act.sa_sigaction = if exec.sigpipe_ignored { libc::SIG_IGN } else { libc::SIG_DFL };
        libc::sigaction(libc::SIGPIPE, &act, std::ptr::null_mut());
        for i in 0..exec.listen_fds.len() {
            let high = libc::fcntl(*exec.listen_fds.as_ptr().add(i), libc::F_DUPFD_CLOEXEC, exec.above);
            if high < 0 {
                fail(exec, errno());
            }
            *exec.high.as_mut_ptr().add(i) = high;
        }
        for i in 0..exec.high.len() {
            if libc::dup2(*exec.high.as_ptr().add(i), 3 + i as libc::c_int) < 0 {
                fail(exec, errno());
            }
        }
        if let Some(buf) = exec.listen_pid.as_mut() {
            write_decimal(&mut buf[11..31], libc::getpid() as u32);
        }
        libc::syscall(
            libc::SYS_rt_sigprocmask,
            libc::SIG_SETMASK,
            &exec.mask,
            std::ptr::null_mut::<KernelSigset>(),
            8usize,
        );
        let mut denied = false;
        let mut last = libc::ENOENT;
        for path in exec.paths.iter() {
            libc::execve(path.as_ptr(), exec.argv_ptrs.as_ptr(), exec.env_ptrs.as_ptr());
            last = errno();
            match last {
                libc::ENOENT | libc::ENOTDIR => {}
                libc::EACCES => denied = true,
                _ => break,
            }
        }
        fail(exec, if denied && matches!(last, libc::ENOENT | libc::ENOTDIR) { libc::EACCES } else { last })
    }
}

/// `n` in decimal into `buf`, NUL-terminated (buf holds at least 11 bytes). No allocation.
fn write_decimal(buf: &mut [u8], mut n: u32) {
    let mut digits = [0u8; 10];
    let mut len = 0;
    loop {
        digits[len] = b'0' + (n % 10) as u8;
        len += 1;
        n /= 10;
        if n == 0 || len == digits.len() {
            break;
        }
    }
    for i in 0..len.min(buf.len().saturating_sub(1)) {
        buf[i] = digits[len - 1 - i];
    }
    buf[len.min(buf.len().saturating_sub(1))] = 0;
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
    fn decimal_without_allocation() {
        let mut buf = [0xffu8; 12];
        write_decimal(&mut buf, 4_294_967_295);
        assert_eq!(&buf[..11], b"4294967295\0");
        write_decimal(&mut buf, 0);
        assert_eq!(&buf[..2], b"0\0");
    }

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
