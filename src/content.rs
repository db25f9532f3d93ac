//! What the watched paths hold: a snapshot of a hash per file, the comparison that alone decides
//! whether anything changed, and the hashing itself, done in bounded slices so that the event
//! loop handles signals and reaps between two slices even while a multi-GiB file is read.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fs;
use std::io::{self, Read};
use std::os::fd::AsFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// A file's content: its hash, or `None` when it exists but cannot be read (its last readable
/// content stands: becoming unreadable is not a change).
pub type FileContent = Option<u64>;

/// Content of one watched path: `None` when it does not exist right now, else the content of
/// each file (keyed by its path as the app sees it). A directory maps every content file under it.
pub type TargetContent = Option<BTreeMap<PathBuf, FileContent>>;

/// Content of every watched path.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Snapshot(pub BTreeMap<PathBuf, TargetContent>);

/// One file whose content differs: `None` on a side means absent (or unknown) there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Changed {
    pub path: PathBuf,
    pub old: Option<u64>,
    pub new: Option<u64>,
}

impl Snapshot {
    /// What differs from `base`. A watched path that is absent now is not a change (it may be
    /// in the middle of being replaced); it counts when it comes back with other content. A file
    /// that cannot be read is not a change either. A key added to or removed from a watched
    /// directory is a change.
    pub fn changes_from(&self, base: &Snapshot) -> Vec<Changed> {
        let mut out = Vec::new();
        for (target, now) in &self.0 {
            let Some(now) = now else { continue };
            let empty = BTreeMap::new();
            let before = base.0.get(target).and_then(Option::as_ref).unwrap_or(&empty);
            let paths: BTreeSet<&PathBuf> = now.keys().chain(before.keys()).collect();
            for path in paths {
                let old = before.get(path).copied().flatten();
                let new = match now.get(path) {
                    Some(None) => continue, // unreadable now: the last content stands
                    Some(Some(h)) => Some(*h),
                    None => None,
                };
                if old != new {
                    out.push(Changed { path: path.clone(), old, new });
                }
            }
        }
        out
    }

    /// `self` updated with `newer`: paths absent in `newer` and files it could not read keep
    /// their content here.
    pub fn merged(&self, newer: &Snapshot) -> Snapshot {
        let mut out = self.clone();
        for (target, content) in &newer.0 {
            let Some(files) = content else {
                out.0.entry(target.clone()).or_insert(None);
                continue;
            };
            let old = self.0.get(target).and_then(Option::as_ref);
            let files = files
                .iter()
                .map(|(path, h)| {
                    let kept = h.or_else(|| old.and_then(|o| o.get(path).copied().flatten()));
                    (path.clone(), kept)
                })
                .collect();
            out.0.insert(target.clone(), Some(files));
        }
        out
    }

    /// One hash over every watched path, file path and content (for the metrics' label).
    pub fn fingerprint(&self) -> u64 {
        let mut h = FNV_OFFSET;
        for (target, content) in &self.0 {
            h = fnv1a(target.as_os_str().as_encoded_bytes(), h);
            for (path, file) in content.iter().flatten() {
                h = fnv1a(path.as_os_str().as_encoded_bytes(), h);
                h = fnv1a(&file.unwrap_or(0).to_le_bytes(), h);
            }
        }
        h
    }

    /// Files that exist but could not be read.
    pub fn unreadable(&self) -> BTreeSet<PathBuf> {
        let files = self.0.values().flatten().flat_map(|files| files.iter());
        files.filter(|(_, h)| h.is_none()).map(|(p, _)| p.clone()).collect()
    }
}

/// `path (old→new), …` for up to three changed files, then `changed`.
pub fn describe(changes: &[Changed]) -> String {
    if changes.is_empty() {
        return "content back as before".into();
    }
    let short =
        |h: Option<u64>| h.map_or_else(|| "none".to_string(), |h| format!("{:012x}", h & 0xffff_ffff_ffff));
    let mut parts: Vec<String> = changes
        .iter()
        .take(3)
        .map(|c| format!("{} ({}→{})", crate::logging::shown(&c.path), short(c.old), short(c.new)))
        .collect();
    if changes.len() > 3 {
        parts.push(format!("and {} more", changes.len() - 3));
    }
    format!("{} changed", parts.join(", "))
}

/// FNV-1a, 64 bit: a stable content fingerprint (also printed, shortened, in log lines).
pub fn fnv1a(data: &[u8], mut h: u64) -> u64 {
    for b in data {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}
pub const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;

/// The content of something that is not a regular file (a FIFO, a device): never opened, since
/// opening could block or have effects.
pub const NOT_A_REGULAR_FILE: u64 = 0x6e6f_745f_6669_6c65;

/// One file to read: the path the app knows it by, where to read it now, and whether it is a
/// regular file (anything else is never opened).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanFile {
    pub path: PathBuf,
    pub read: PathBuf,
    pub regular: bool,
}

impl PlanFile {
    pub fn new(path: PathBuf, regular: bool) -> PlanFile {
        PlanFile { read: path.clone(), path, regular }
    }
}

/// What to read for one watched path, as found by the watcher's walk: `None` when the path
/// does not exist, else its files.
pub type TargetPlan = Option<Vec<PlanFile>>;

/// The files of every watched path, to be hashed.
#[derive(Debug, Default)]
pub struct Plan {
    pub targets: Vec<(PathBuf, TargetPlan)>,
    /// Keys of a kubelet volume whose user-visible link is not there yet (the paths the app
    /// would open): the kubelet makes them just after the `..data` swap.
    pub unlinked: Vec<PathBuf>,
}

impl Plan {
    pub fn files(&self) -> usize {
        self.targets.iter().map(|(_, files)| files.as_ref().map_or(0, Vec::len)).sum()
    }
}

/// Bytes hashed per slice: about a millisecond of work, so a signal waits at most that long.
pub const SLICE: usize = 256 * 1024;

/// A file being read.
struct Open {
    target: PathBuf,
    path: PathBuf,
    file: fs::File,
    hash: u64,
}

/// A file waiting to be read, under its watched path.
struct Queued {
    target: PathBuf,
    file: PlanFile,
}

/// Hashing a `Plan` a slice at a time.
pub struct Hashing {
    snapshot: Snapshot,
    queue: VecDeque<Queued>,
    open: Option<Open>,
    /// Files that could not be read, with why.
    pub errors: Vec<(PathBuf, io::Error)>,
    /// The plan's keys without their user-visible link yet.
    pub unlinked: Vec<PathBuf>,
    buf: Vec<u8>,
}

impl Hashing {
    pub fn new(plan: Plan) -> Hashing {
        let mut snapshot = Snapshot::default();
        let mut queue = VecDeque::new();
        for (target, files) in plan.targets {
            match files {
                None => {
                    snapshot.0.insert(target, None);
                }
                Some(files) => {
                    snapshot.0.insert(target.clone(), Some(BTreeMap::new()));
                    queue.extend(files.into_iter().map(|file| Queued { target: target.clone(), file }));
                }
            }
        }
        Hashing {
            snapshot,
            queue,
            open: None,
            errors: Vec::new(),
            unlinked: plan.unlinked,
            buf: vec![0; 64 * 1024],
        }
    }

    /// Hash at most about `budget` bytes; the snapshot once every file is done.
    pub fn step(&mut self, budget: usize) -> Option<Snapshot> {
        let mut left = budget;
        loop {
            if self.open.is_none() {
                let Some(Queued { target, file }) = self.queue.pop_front() else {
                    return Some(std::mem::take(&mut self.snapshot));
                };
                let path = file.path;
                if !file.regular {
                    self.record(&target, path, Some(NOT_A_REGULAR_FILE));
                    continue;
                }
                match open_regular(&file.read) {
                    Ok(Some(file)) => self.open = Some(Open { target, path, file, hash: FNV_OFFSET }),
                    Ok(None) => self.record(&target, path, Some(NOT_A_REGULAR_FILE)),
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {} // gone since the walk
                    Err(e) => {
                        self.errors.push((path.clone(), e));
                        self.record(&target, path, None);
                    }
                }
                continue;
            }
            if left == 0 {
                return None;
            }
            let Some(open) = self.open.as_mut() else { continue };
            let want = left.min(self.buf.len());
            match open.file.read(&mut self.buf[..want]) {
                Ok(0) => {
                    if let Some(done) = self.open.take() {
                        self.record(&done.target, done.path, Some(done.hash));
                    }
                }
                Ok(n) => {
                    open.hash = fnv1a(&self.buf[..n], open.hash);
                    left -= n;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    if let Some(done) = self.open.take() {
                        self.errors.push((done.path.clone(), e));
                        self.record(&done.target, done.path, None);
                    }
                }
            }
        }
    }

    fn record(&mut self, target: &Path, path: PathBuf, content: FileContent) {
        if let Some(Some(files)) = self.snapshot.0.get_mut(target) {
            files.insert(path, content);
        }
    }
}

/// Open `path` for reading if it is (still) a regular file on a real filesystem: `Ok(None)`
/// when it is something else. Non-blocking, so a FIFO swapped in since the walk cannot hang us.
fn open_regular(path: &Path) -> io::Result<Option<fs::File>> {
    let file =
        fs::OpenOptions::new().read(true).custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY).open(path)?;
    let regular = file.metadata()?.is_file();
    if !regular || pseudo_fs(&file).is_some() {
        return Ok(None);
    }
    Ok(Some(file))
}

/// The name of the kernel pseudo-filesystem `file` is on (procfs, sysfs, cgroupfs, debugfs and
/// the like): their files report size 0, and some never end when read.
pub fn pseudo_fs(file: &impl AsFd) -> Option<&'static str> {
    let fs_type = nix::sys::statfs::fstatfs(file).ok()?.filesystem_type().0 as i64;
    pseudo_fs_name(fs_type)
}

/// `statfs` magic numbers (linux/magic.h) of filesystems whose files are not configuration.
pub fn pseudo_fs_name(magic: i64) -> Option<&'static str> {
    const PSEUDO: &[(i64, &str)] = &[
        (0x9fa0, "procfs"),
        (0x6265_6572, "sysfs"),
        (0x0027_e0eb, "cgroupfs"),
        (0x6367_7270, "cgroup2fs"),
        (0x6462_6720, "debugfs"),
        (0x7472_6163, "tracefs"),
        (0x7363_6673, "securityfs"),
        (0xcafe_4a11, "bpffs"),
        (0x6165_676c, "pstorefs"),
        (0x6265_6570, "configfs"),
        (0xde5e_81e4, "efivarfs"),
        (0x6573_5543, "fusectl"),
        (0x4249_4e4d, "binfmt_misc"),
        (0x1cd1, "devpts"),
    ];
    PSEUDO.iter().find(|(m, _)| *m == magic).map(|(_, name)| *name)
}

#[cfg(test)]
mod tests {
    use super::*;

    type Files<'a> = Option<&'a [(&'a str, Option<u64>)]>;

    fn snap(entries: &[(&str, Files<'_>)]) -> Snapshot {
        Snapshot(
            entries
                .iter()
                .map(|(t, files)| {
                    (
                        PathBuf::from(t),
                        files.map(|fs| fs.iter().map(|(p, h)| (PathBuf::from(p), *h)).collect()),
                    )
                })
                .collect(),
        )
    }

    #[test]
    fn change_rules() {
        let base =
            snap(&[("/d", Some(&[("/d/a", Some(1)), ("/d/b", Some(2))])), ("/f", Some(&[("/f", Some(9))]))]);
        assert!(base.changes_from(&base).is_empty());
        // content of one key
        let now =
            snap(&[("/d", Some(&[("/d/a", Some(1)), ("/d/b", Some(3))])), ("/f", Some(&[("/f", Some(9))]))]);
        assert_eq!(now.changes_from(&base), [Changed { path: "/d/b".into(), old: Some(2), new: Some(3) }]);
        // a key removed, a key added
        let now =
            snap(&[("/d", Some(&[("/d/a", Some(1)), ("/d/c", Some(2))])), ("/f", Some(&[("/f", Some(9))]))]);
        assert_eq!(now.changes_from(&base).len(), 2);
        // a watched path gone for now is no change; back with the same content neither
        let gone = snap(&[("/d", None), ("/f", None)]);
        assert!(gone.changes_from(&base).is_empty());
        assert_eq!(base.merged(&gone), base);
        // missing at start, then appearing
        let start = snap(&[("/f", None)]);
        let now = snap(&[("/f", Some(&[("/f", Some(1))]))]);
        assert_eq!(now.changes_from(&start), [Changed { path: "/f".into(), old: None, new: Some(1) }]);
        assert_eq!(start.merged(&now), now);
    }

    #[test]
    fn becoming_unreadable_is_no_change_and_keeps_the_last_content() {
        let base = snap(&[("/f", Some(&[("/f", Some(9))]))]);
        let locked = snap(&[("/f", Some(&[("/f", None)]))]);
        assert!(locked.changes_from(&base).is_empty());
        assert_eq!(base.merged(&locked), base);
        assert_eq!(locked.unreadable(), BTreeSet::from([PathBuf::from("/f")]));
        // readable again with other content: a change from the last content read
        let now = snap(&[("/f", Some(&[("/f", Some(5))]))]);
        assert_eq!(now.changes_from(&base.merged(&locked)).len(), 1);
        // unreadable from the start, then readable: a change
        assert_eq!(now.changes_from(&locked), [Changed { path: "/f".into(), old: None, new: Some(5) }]);
    }

    #[test]
    fn the_fingerprint_follows_the_content() {
        let one = snap(&[("/d", Some(&[("/d/a", Some(1))]))]);
        assert_eq!(one.fingerprint(), one.clone().fingerprint());
        assert_ne!(one.fingerprint(), snap(&[("/d", Some(&[("/d/a", Some(2))]))]).fingerprint());
        assert_ne!(one.fingerprint(), snap(&[("/d", Some(&[("/d/b", Some(1))]))]).fingerprint());
    }

    #[test]
    fn fnv_is_stable() {
        assert_eq!(fnv1a(b"", FNV_OFFSET), FNV_OFFSET);
        assert_eq!(fnv1a(b"a", FNV_OFFSET), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a(b"ab", FNV_OFFSET), fnv1a(b"b", fnv1a(b"a", FNV_OFFSET)));
    }

    #[test]
    fn hashes_in_bounded_slices() {
        let dir = std::env::temp_dir().join(format!("reinit-content-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        let (big, small) = (dir.join("big"), dir.join("small"));
        let data: Vec<u8> = (0..1_000_000u32).map(|i| (i % 251) as u8).collect();
        fs::write(&big, &data).unwrap();
        fs::write(&small, b"x").unwrap();
        let plan = Plan {
            targets: vec![
                (
                    dir.clone(),
                    Some(vec![PlanFile::new(big.clone(), true), PlanFile::new(small.clone(), true)]),
                ),
                (dir.join("missing"), None),
            ],
            unlinked: Vec::new(),
        };
        let mut h = Hashing::new(plan);
        let mut slices = 1;
        let snapshot = loop {
            if let Some(s) = h.step(SLICE) {
                break s;
            }
            slices += 1;
        };
        assert_eq!(slices, 4, "1 MB in 256 KiB slices, then the end of the file");
        let files = snapshot.0[&dir].as_ref().unwrap();
        assert_eq!(files[&big], Some(fnv1a(&data, FNV_OFFSET)));
        assert_eq!(files[&small], Some(fnv1a(b"x", FNV_OFFSET)));
        assert_eq!(snapshot.0[&dir.join("missing")], None);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn procfs_is_a_pseudo_filesystem() {
        let f = fs::File::open("/proc/self/stat").unwrap();
        assert_eq!(pseudo_fs(&f), Some("procfs"));
        let f = fs::File::open(std::env::temp_dir()).unwrap();
        assert_eq!(pseudo_fs(&f), None);
    }
}
