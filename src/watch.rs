//! Watching configuration with raw inotify, the Kubernetes way: directories, never only file
//! inodes; an event predicate that lets through `IN_MOVED_TO ..data` and changes to watched
//! names but not the kubelet's own `..` entries; re-arming after deletes and renames; and
//! content hashing through the user-visible paths, which alone decides whether anything changed.
//! Also detects `subPath` mounts, which never update.

use crate::content::{Plan, PlanFile, TargetPlan, pseudo_fs_name};
use crate::logging::shown;
use inotify::{EventMask, Inotify, WatchDescriptor, WatchMask};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ffi::{OsStr, OsString};
use std::fmt;
use std::fs;
use std::io;
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

#[derive(Debug)]
pub enum WatchError {
    /// `inotify_init` failed (EMFILE: too many instances).
    Init(io::Error),
    /// `inotify_add_watch` failed on a directory.
    Add(PathBuf, io::Error),
    Read(io::Error),
    /// A watched path on a kernel pseudo-filesystem (its files never settle, some never end).
    Pseudo(PathBuf, &'static str),
}

/// The pseudo-filesystem `path` is on, if any (see `content::pseudo_fs_name`).
pub fn pseudo_fs_at(path: &Path) -> Option<&'static str> {
    let fs_type = nix::sys::statfs::statfs(path).ok()?.filesystem_type().0 as i64;
    pseudo_fs_name(fs_type)
}

fn limit_hint(e: &io::Error) -> String {
    match e.raw_os_error() {
        Some(libc::ENOSPC) => {
            " (the inotify watch limit is reached: raise fs.inotify.max_user_watches, e.g. \
             sysctl -w fs.inotify.max_user_watches=524288)"
                .into()
        }
        Some(libc::EMFILE) if own_fds_exhausted() => {
            let limit =
                crate::sys::open_file_limit().map_or(String::new(), |n| format!(" (ulimit -n is {n})"));
            format!(" (reinit's open-file limit is reached{limit}: raise it, e.g. ulimit -n 1024)")
        }
        Some(libc::EMFILE) => " (too many inotify instances: raise fs.inotify.max_user_instances, e.g. \
             sysctl -w fs.inotify.max_user_instances=1024)"
            .into(),
        _ => String::new(),
    }
}

/// Whether reinit has as many fds open as its soft limit allows (EMFILE then means that, not
/// the inotify instance limit, which also reports EMFILE).
fn own_fds_exhausted() -> bool {
    let open = fs::read_dir("/proc/self/fd").map_or(0, |d| d.count().saturating_sub(1));
    crate::sys::open_file_limit().is_some_and(|limit| open as u64 + 1 >= limit)
}

impl fmt::Display for WatchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WatchError::Init(e) => write!(f, "cannot create an inotify instance: {e}{}", limit_hint(e)),
            WatchError::Add(p, e) => write!(f, "cannot watch {}: {e}{}", shown(p), limit_hint(e)),
            WatchError::Read(e) => write!(f, "reading inotify events failed: {e}"),
            WatchError::Pseudo(p, fs) => write!(
                f,
                "cannot watch {}: it is on {fs}, a kernel pseudo-filesystem whose files are not \
                 configuration (their size is 0 and some never end when read); watch real files",
                shown(p)
            ),
        }
    }
}

/// The kubelet's symlink whose replacement (`rename(..data_tmp, ..data)`) makes new content live.
pub const DATA_LINK: &str = "..data";

/// Events that can mean new content. Reads (IN_OPEN/IN_ACCESS: kubelet resyncs) are not here;
/// IN_Q_OVERFLOW is always delivered.
pub fn watch_mask() -> WatchMask {
    WatchMask::CREATE
        | WatchMask::MOVED_TO
        | WatchMask::MOVED_FROM
        | WatchMask::DELETE
        | WatchMask::CLOSE_WRITE
        | WatchMask::DELETE_SELF
        | WatchMask::MOVE_SELF
        | WatchMask::ATTRIB
}

/// Why a directory is watched, which decides which names in it matter.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    /// The directory holding a watched file (or its resolved target): these names matter.
    Holds(BTreeSet<OsString>),
    /// A watched directory or one inside it: every name that is content matters.
    Tree,
    /// The nearest existing ancestor of a missing path: the next component matters.
    Ancestor(OsString),
}

/// Names inside a watched directory that are not content: the kubelet's `..` entries (its
/// timestamped dirs, `..data_tmp`, crash leftovers) and editors' swap, backup and lock files.
pub fn is_noise(name: &OsStr) -> bool {
    let b = name.as_bytes();
    b.starts_with(b"..")
        || b.ends_with(b".swp")
        || b.ends_with(b".swx")
        || b.ends_with(b"~")
        || b == b"4913"
        || b.starts_with(b".#")
        || (b.starts_with(b"#") && b.ends_with(b"#"))
}

/// The event predicate: does this event in a directory with these roles warrant a re-read?
pub fn relevant(roles: &[Role], mask: EventMask, name: Option<&OsStr>) -> bool {
    if mask.contains(EventMask::Q_OVERFLOW) {
        return true;
    }
    let Some(name) = name.filter(|n| !n.is_empty()) else {
        // Something happened to the watched directory itself: deleted, moved, re-permissioned.
        return true;
    };
    if name == DATA_LINK {
        // Only its replacement publishes content; `..data` is never deleted or written.
        return mask.intersects(EventMask::MOVED_TO | EventMask::CREATE);
    }
    roles.iter().any(|role| match role {
        Role::Holds(names) => names.contains(name),
        Role::Tree => !is_noise(name),
        Role::Ancestor(next) => next == name,
    })
}

/// Reads watched paths and tells which directories must be watched for them.
#[derive(Debug, Default)]
struct Scan {
    content: TargetPlan,
    dirs: BTreeMap<PathBuf, BTreeSet<Role>>,
    /// Keys of a kubelet volume without their user-visible link yet.
    unlinked: Vec<PathBuf>,
}

impl Scan {
    fn watch(&mut self, dir: PathBuf, role: Role) {
        // several `Holds` roles of one directory are fine: `relevant` asks whether any matches
        self.dirs.entry(dir).or_default().insert(role);
    }

    /// Watch the directory holding `path`'s resolved target, for in-place edits of the target.
    fn watch_target_dir(&mut self, path: &Path) {
        if let Ok(real) = fs::canonicalize(path)
            && let (Some(dir), Some(name)) = (real.parent(), real.file_name())
        {
            self.watch(dir.to_path_buf(), Role::Holds([name.to_os_string()].into()));
        }
    }

    /// The nearest existing ancestor of a missing `path`, watched for the next component.
    fn watch_ancestor(&mut self, path: &Path) {
        let mut cur = path;
        while let Some(parent) = cur.parent() {
            let parent = if parent.as_os_str().is_empty() { Path::new(".") } else { parent };
            if parent.is_dir() {
                if let Some(next) = cur.file_name() {
                    self.watch(parent.to_path_buf(), Role::Ancestor(next.to_os_string()));
                }
                return;
            }
            cur = parent;
        }
    }

    fn scan_target(path: &Path) -> Scan {
        let mut scan = Scan::default();
        match fs::metadata(path) {
            Ok(m) if m.is_dir() => {
                let mut files = Vec::new();
                let mut seen = BTreeSet::new();
                scan.watch(path.to_path_buf(), Role::Tree);
                // A kubelet volume: its keys are what `..data` holds now. At the `..data` swap
                // the top-level symlinks of added keys do not exist yet, and those of removed
                // keys are still there: reading through `..data` sees the update as a whole.
                let data = path.join(DATA_LINK);
                let kubelet = fs::symlink_metadata(&data).is_ok_and(|m| m.file_type().is_symlink());
                match kubelet && data.is_dir() {
                    true => {
                        scan.walk(&data, path, &mut files, &mut seen);
                        scan.unlinked = unlinked_keys(&data, path);
                    }
                    false => scan.walk(path, path, &mut files, &mut seen),
                }
                scan.content = Some(files);
            }
            Ok(m) => {
                // Never open a FIFO or a device: opening could block or have effects.
                scan.content = Some(vec![PlanFile::new(path.to_path_buf(), m.is_file())]);
                scan.watch_holder(path);
                scan.watch_target_dir(path);
            }
            Err(_) => {
                // Missing (or a dangling symlink): watch where it will appear.
                if fs::symlink_metadata(path).is_ok() {
                    scan.watch_holder(path);
                }
                scan.watch_ancestor(path);
            }
        }
        scan
    }

    fn watch_holder(&mut self, path: &Path) {
        let parent = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        if let Some(name) = path.file_name() {
            self.watch(parent, Role::Holds([name.to_os_string()].into()));
        }
    }

    /// List every content file under `dir` (following symlinks, skipping noise) as the app
    /// sees it under `shown`, watching each directory reached and the directories that
    /// symlinked files point into.
    fn walk(&mut self, dir: &Path, shown: &Path, files: &mut Vec<PlanFile>, seen: &mut BTreeSet<PathBuf>) {
        let Ok(real) = fs::canonicalize(dir) else { return };
        if !seen.insert(real.clone()) {
            return; // a symlink loop
        }
        if pseudo_fs_at(&real).is_some() {
            return; // a pseudo-filesystem mounted inside a watched tree holds no configuration
        }
        if real != dir {
            self.watch(real, Role::Tree);
        }
        let Ok(entries) = fs::read_dir(dir) else { return };
        let mut names: Vec<OsString> = entries.filter_map(|e| e.ok()).map(|e| e.file_name()).collect();
        names.sort();
        for name in names.into_iter().filter(|n| !is_noise(n)) {
            let path = dir.join(&name);
            let Ok(meta) = fs::metadata(&path) else { continue }; // dangling: not content (yet)
            let is_link = fs::symlink_metadata(&path).is_ok_and(|m| m.file_type().is_symlink());
            if meta.is_dir() {
                self.watch(path.clone(), Role::Tree);
                self.walk(&path, &shown.join(&name), files, seen);
            } else if meta.is_file() {
                files.push(PlanFile { path: shown.join(&name), read: path.clone(), regular: true });
                if is_link {
                    self.watch_target_dir(&path);
                }
            }
        }
    }
}

/// The inotify instance and what it watches.
pub struct Watcher {
    inotify: Inotify,
    targets: Vec<PathBuf>,
    watched: HashMap<WatchDescriptor, (PathBuf, Vec<Role>)>,
    buf: Vec<u8>,
}

/// What one read of the inotify fd found.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Events {
    /// Something that may have changed content.
    pub relevant: bool,
    /// The queue overflowed: events were lost, rescan.
    pub overflow: bool,
    /// A kubelet commit: `..data` was replaced, the one moment an update goes live as a whole.
    pub commit: bool,
}

impl Watcher {
    pub fn new(targets: Vec<PathBuf>) -> Result<Watcher, WatchError> {
        let inotify = Inotify::init().map_err(WatchError::Init)?;
        Ok(Watcher { inotify, targets, watched: HashMap::new(), buf: vec![0u8; 64 * 1024] })
    }

    /// Refuse watched paths on pseudo-filesystems (checked once, at start).
    pub fn refuse_pseudo(&self) -> Result<(), WatchError> {
        for target in &self.targets {
            if let Some(fs) = pseudo_fs_at(target) {
                return Err(WatchError::Pseudo(target.clone(), fs));
            }
        }
        Ok(())
    }

    /// List the files of every watched path now, and bring the set of watched directories up
    /// to date (re-arming after deletes, renames and paths that appeared). Errors adding a watch
    /// are returned after the rest is done; the plan is complete regardless.
    pub fn plan(&mut self) -> (Plan, Vec<WatchError>) {
        let mut plan = Plan::default();
        let mut dirs: BTreeMap<PathBuf, BTreeSet<Role>> = BTreeMap::new();
        for target in &self.targets {
            let scan = Scan::scan_target(target);
            plan.targets.push((target.clone(), scan.content));
            plan.unlinked.extend(scan.unlinked);
            for (dir, roles) in scan.dirs {
                dirs.entry(dir).or_default().extend(roles);
            }
        }
        let errors = self.sync_watches(dirs);
        (plan, errors)
    }

    fn sync_watches(&mut self, dirs: BTreeMap<PathBuf, BTreeSet<Role>>) -> Vec<WatchError> {
        let mut errors = Vec::new();
        let mut now: HashMap<WatchDescriptor, (PathBuf, Vec<Role>)> = HashMap::new();
        for (dir, roles) in dirs {
            match self.inotify.watches().add(&dir, watch_mask() | WatchMask::ONLYDIR) {
                Ok(wd) => {
                    let entry = now.entry(wd).or_insert_with(|| (dir.clone(), Vec::new()));
                    entry.1.extend(roles);
                }
                // gone since the scan: the next event or scan catches up
                Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {}
                Err(e) => errors.push(WatchError::Add(dir, e)),
            }
        }
        for wd in self.watched.keys() {
            if !now.contains_key(wd) {
                let _ = self.inotify.watches().remove(wd.clone());
            }
        }
        self.watched = now;
        errors
    }

    /// Drain pending events (non-blocking).
    pub fn read(&mut self) -> Result<Events, WatchError> {
        let mut out = Events::default();
        loop {
            let events = match self.inotify.read_events(&mut self.buf) {
                Ok(events) => events,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(out),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(WatchError::Read(e)),
            };
            let mut any = false;
            for e in events {
                any = true;
                if e.mask.contains(EventMask::Q_OVERFLOW) {
                    out.overflow = true;
                    out.relevant = true;
                    continue;
                }
                let roles = self.watched.get(&e.wd).map(|(_, r)| r.as_slice()).unwrap_or(&[]);
                if e.mask.contains(EventMask::IGNORED) {
                    // the directory is gone: re-arm on the next scan
                    out.relevant = true;
                } else if relevant(roles, e.mask, e.name) {
                    out.commit |= e.name.is_some_and(|n| n == DATA_LINK);
                    log::trace!(
                        "event {:?} {:?} in {:?}",
                        e.mask,
                        e.name,
                        self.watched.get(&e.wd).map(|w| &w.0)
                    );
                    out.relevant = true;
                }
            }
            if !any {
                return Ok(out);
            }
        }
    }
}

impl AsFd for Watcher {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.inotify.as_fd()
    }
}

/// Decode the `\NNN` octal escapes of a mountinfo field.
/// The keys in a kubelet volume's `data` (its `..data`) that have no user-visible entry in
/// `volume` yet, as the paths the app would open. Right after the `..data` swap the kubelet
/// links each new key's first path component; until then the app cannot see it.
fn unlinked_keys(data: &Path, volume: &Path) -> Vec<PathBuf> {
    let Ok(entries) = fs::read_dir(data) else { return Vec::new() };
    entries
        .flatten()
        .map(|e| volume.join(e.file_name()))
        .filter(|shown| fs::symlink_metadata(shown).is_err())
        .collect()
}

fn unescape(field: &str) -> String {
    let b = field.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 4 <= b.len() && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c)) {
            out.push((b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0'));
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Whether a `/proc/self/mountinfo` text shows `path` as a subPath bind of a ConfigMap/Secret
/// key: mounted on exactly `path`, with a root inside a kubelet `..<timestamp>` directory, or
/// marked `//deleted` because the key was already replaced. Returns the mount's root.
pub fn subpath_mount(mountinfo: &str, path: &Path) -> Option<String> {
    mountinfo.lines().rev().find_map(|line| {
        let mut f = line.split(' ');
        let (_id, _parent, _dev) = (f.next()?, f.next()?, f.next()?);
        let root = unescape(f.next()?);
        let point = unescape(f.next()?);
        if Path::new(&point) != path {
            return None;
        }
        let kubelet_dir = Path::new(&root).components().any(|c| match c {
            Component::Normal(n) => {
                let n = n.as_bytes();
                n.len() > 6 && n.starts_with(b"..") && n[2..6].iter().all(u8::is_ascii_digit)
            }
            _ => false,
        });
        (kubelet_dir || root.ends_with("//deleted")).then_some(root)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn os(s: &str) -> Option<&OsStr> {
        Some(OsStr::new(s))
    }

    fn holds(names: &[&str]) -> Role {
        Role::Holds(names.iter().map(OsString::from).collect())
    }

    #[test]
    fn data_swap_is_relevant_its_steps_are_not() {
        let tree = [Role::Tree];
        // steps 4-7 and 11: the kubelet's own entries
        assert!(!relevant(&tree, EventMask::CREATE | EventMask::ISDIR, os("..2026_11_25_10_00_00.1")));
        assert!(!relevant(&tree, EventMask::CREATE, os("..data_tmp")));
        assert!(!relevant(&tree, EventMask::MOVED_FROM, os("..data_tmp")));
        assert!(!relevant(&tree, EventMask::DELETE | EventMask::ISDIR, os("..2026_11_25_09_00_00.7")));
        assert!(!relevant(&tree, EventMask::ATTRIB, os("..data")));
        // step 8
        assert!(relevant(&tree, EventMask::MOVED_TO, os("..data")));
        assert!(relevant(&[holds(&["app.yaml"])], EventMask::MOVED_TO, os("..data")));
        // steps 9-10: keys added and removed
        assert!(relevant(&tree, EventMask::CREATE, os("new.yaml")));
        assert!(relevant(&tree, EventMask::DELETE, os("old.yaml")));
    }

    #[test]
    fn only_watched_names_matter_in_a_holding_dir() {
        let roles = [holds(&["app.yaml"])];
        assert!(relevant(&roles, EventMask::CLOSE_WRITE, os("app.yaml")));
        assert!(relevant(&roles, EventMask::MOVED_TO, os("app.yaml")));
        assert!(relevant(&roles, EventMask::DELETE, os("app.yaml")));
        assert!(!relevant(&roles, EventMask::CLOSE_WRITE, os("other.yaml")));
        assert!(!relevant(&roles, EventMask::CREATE, os(".app.yaml.swp")));
        let roles = [Role::Ancestor("etc".into())];
        assert!(relevant(&roles, EventMask::CREATE | EventMask::ISDIR, os("etc")));
        assert!(!relevant(&roles, EventMask::CREATE, os("tmp")));
    }

    #[test]
    fn the_directory_itself_and_overflow_are_relevant() {
        assert!(relevant(&[], EventMask::DELETE_SELF, None));
        assert!(relevant(&[], EventMask::MOVE_SELF, None));
        assert!(relevant(&[], EventMask::Q_OVERFLOW, None));
    }

    #[test]
    fn noise_names() {
        for n in ["..data", "..data_tmp", "..2026_01_01", ".x.swp", ".x.swx", "x~", "4913", ".#x", "#x#"] {
            assert!(is_noise(OsStr::new(n)), "{n}");
        }
        for n in ["app.yaml", ".env", "a.b", "conf.d", "#x"] {
            assert!(!is_noise(OsStr::new(n)), "{n}");
        }
    }

    const MOUNTINFO: &str = "\
22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw
1310 1290 8:1 /var/lib/kubelet/pods/0f/volumes/kubernetes.io~configmap/cfg/..2026_11_25_10_00_00.123456789/app.yaml /etc/app/app.yaml ro,relatime - ext4 /dev/sda1 rw
1311 1290 0:52 /..2026_11_25_10_00_00.3240668228/key//deleted /etc/secret/key ro,relatime - tmpfs tmpfs rw
1312 1290 8:1 /var/lib/kubelet/pods/0f/volumes/kubernetes.io~configmap/cfg /etc/cfg ro,relatime - ext4 /dev/sda1 rw
1313 1290 8:1 /srv/my\\040dir/..2026_01_01_00_00_00.1/x /etc/my\\040x ro - ext4 /dev/sda1 rw
";

    #[test]
    fn detects_subpath_mounts() {
        assert!(subpath_mount(MOUNTINFO, Path::new("/etc/app/app.yaml")).unwrap().contains("..2026_11_25"));
        assert!(subpath_mount(MOUNTINFO, Path::new("/etc/secret/key")).unwrap().ends_with("//deleted"));
        assert_eq!(subpath_mount(MOUNTINFO, Path::new("/etc/cfg")), None, "a whole volume updates");
        assert_eq!(subpath_mount(MOUNTINFO, Path::new("/etc/app")), None);
        assert!(subpath_mount(MOUNTINFO, Path::new("/etc/my x")).is_some(), "octal escapes");
        assert_eq!(unescape("a\\040b\\134"), "a b\\");
    }

    #[test]
    fn pseudo_filesystems_are_refused() {
        let w = Watcher::new(vec![PathBuf::from("/proc/self")]).unwrap();
        let err = w.refuse_pseudo().unwrap_err().to_string();
        assert!(err.contains("/proc/self") && err.contains("procfs"), "{err}");
        let w = Watcher::new(vec![std::env::temp_dir(), PathBuf::from("/no/such/path")]).unwrap();
        assert!(w.refuse_pseudo().is_ok());
    }

    #[test]
    fn scans_a_kubelet_style_dir() {
        let dir = std::env::temp_dir().join(format!("reinit-watch-unit-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        let ts = dir.join("..2026_01_01_00_00_00.1");
        fs::create_dir_all(ts.join("conf.d")).unwrap();
        fs::write(ts.join("app.yaml"), "a: 1").unwrap();
        fs::write(ts.join("conf.d/x.conf"), "x").unwrap();
        std::os::unix::fs::symlink("..2026_01_01_00_00_00.1", dir.join("..data")).unwrap();
        std::os::unix::fs::symlink("..data/app.yaml", dir.join("app.yaml")).unwrap();
        std::os::unix::fs::symlink("..data/conf.d", dir.join("conf.d")).unwrap();
        std::os::unix::fs::symlink("..data/gone", dir.join("dangling")).unwrap();
        let mut w = Watcher::new(vec![dir.clone(), dir.join("app.yaml")]).unwrap();
        let (plan, errors) = w.plan();
        assert!(errors.is_empty());
        let files: Vec<_> = plan.targets[0].1.as_ref().unwrap().iter().map(|f| f.path.clone()).collect();
        assert_eq!(files, [dir.join("app.yaml"), dir.join("conf.d/x.conf")]);
        assert_eq!(plan.targets[1].1.as_ref().unwrap().len(), 1);
        assert!(plan.unlinked.is_empty(), "every key is linked");
        let watched: BTreeSet<_> = w.watched.values().map(|(p, _)| p.clone()).collect();
        assert!(watched.contains(&dir) && watched.contains(&ts.join("conf.d")) && watched.contains(&ts));
        // a key the swap brought whose link the kubelet has not made yet
        fs::write(ts.join("new.yaml"), "n").unwrap();
        let (plan, _) = w.plan();
        assert_eq!(plan.unlinked, [dir.join("new.yaml")]);
        std::os::unix::fs::symlink("..data/new.yaml", dir.join("new.yaml")).unwrap();
        assert!(w.plan().0.unlinked.is_empty());
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_fifo_is_never_opened() {
        let dir = std::env::temp_dir().join(format!("reinit-watch-fifo-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        let fifo = dir.join("pipe");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        let mut w = Watcher::new(vec![fifo.clone()]).unwrap();
        let (plan, _) = w.plan();
        assert_eq!(
            plan.targets[0].1,
            Some(vec![PlanFile::new(fifo.clone(), false)]),
            "listed, not a regular file"
        );
        let mut hashing = crate::content::Hashing::new(plan);
        let snap = hashing.step(crate::content::SLICE).unwrap(); // would block if the FIFO were opened
        assert!(snap.0[&fifo].is_some());
        fs::remove_dir_all(&dir).unwrap();
    }
}
