//! A faithful simulator of the kubelet's `AtomicWriter` (Kubernetes
//! `pkg/volume/util/atomic_writer.go`), which updates configMap, secret, downwardAPI and
//! projected volumes, plus the naive ways a file changes outside Kubernetes (editors, `echo >`,
//! `ln -sfn`, `rm` + re-create).
//!
//! A volume written by [`Kubelet`] looks exactly like one on a node:
//!
//! ```text
//! dir/
//!   ..2026_11_25_10_00_00.3215718745/   real dir holding the data (mode 0755, files 0644)
//!   ..data -> ..2026_11_25_10_00_00.3215718745
//!   app.yaml -> ..data/app.yaml         one symlink per top-level key
//!   conf.d -> ..data/conf.d             nested keys live in real subdirs of the data dir
//! ```
//!
//! [`Kubelet::write`] performs the same system calls in the same order as the real writer.
//! Go iterates its payload map in random order; so does this simulator (shuffled key order).
//! Current kubelets (the order since the reorder that answered kubernetes/kubernetes#93686,
//! 2021):
//!
//! 1. `readlink ..data` (ENOENT: first write, go to 4);
//! 2. walk the old data dir: the paths the payload no longer has are to be removed;
//! 3. `lstat` + read each key in the old data dir until one differs. Nothing differs and nothing
//!    to remove: only `readlink` each top-level key's symlink (re-creating a missing one, the
//!    fix of kubernetes/kubernetes#121472) and stop — no write, no event but reads;
//! 4. `mkdir ..<UTC %Y_%m_%d_%H_%M_%S>.<random u32>` 0700, `chmod` 0755;
//! 5. for each key: `mkdir -p` its subdirs, `open(O_WRONLY|O_CREAT|O_TRUNC, 0644)`, `write`,
//!    `close`, `chmod 0644`;
//! 6. with `fs_group`: over the whole volume dir, children before parents, `lchown(-1, gid)`
//!    each entry and `chmod(mode | 0440)` each non-symlink (dirs also `| 02110`);
//! 7. `symlink(<new dir name>, ..data_tmp)` — EEXIST (a stale `..data_tmp`): `rm -r` the new
//!    dir and fail;
//! 8. `rename(..data_tmp, ..data)` — the only moment new content is live;
//! 9. for each key: `readlink <top-level name>`; ENOENT: `symlink(..data/<top>, <top>)`;
//! 10. `unlink` the symlinks of removed top-level keys;
//! 11. `rm -r` the old data dir.
//!
//! Pre-2021 kubelets ([`Options::legacy_order`]) created the user-visible symlinks (9) between
//! 5 and 7, returned at 3 without touching the symlinks, and applied `fs_group` after the whole
//! write (after 11, on every successful write, no-op included), walking parents first.

#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, DirBuilder, OpenOptions, Permissions};
use std::io::{self, ErrorKind, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt, chown, lchown, symlink};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The symlink that points at the live data dir.
pub const DATA_LINK: &str = "..data";
/// The name a new `..data` is created under before it is renamed over `..data`.
pub const DATA_TMP_LINK: &str = "..data_tmp";
/// Mode of every key's file: the default `defaultMode` of configMap and secret volumes.
pub const FILE_MODE: u32 = 0o644;

/// How the simulated kubelet behaves.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// Pre-2021 step order: user-visible symlinks are created before the `..data` swap (new
    /// keys' symlinks dangle until the rename), a no-op write returns before reading them, and
    /// the `fs_group` pass runs after the whole write.
    pub legacy_order: bool,
    /// Pod `fsGroup`: the ownership pass (step 6) chowns every entry to this group and adds
    /// group-read bits (IN_ATTRIB noise). A group the process may not use is ignored, as the
    /// kubelet only logs the failed `lchown`.
    pub fs_group: Option<u32>,
    /// [`Kubelet::new`] plants what a kubelet that crashed while writing leaves behind: a stray,
    /// half-written `..<timestamp>` dir that nothing points at. The kubelet never removes it
    /// (step 11 removes only the dir `..data` pointed at) and later writes work.
    pub crash_leftovers: bool,
    /// Also plant `..data_tmp -> <stray dir>`: a crash between steps 7 and 8. The real kubelet
    /// never cleans it up, so every later write that has something to publish fails at step 7
    /// (`symlink`: EEXIST) after creating and removing its new dir, and the volume stays stale
    /// until someone removes `..data_tmp`. [`Kubelet::write`] does the same and returns false.
    pub stale_data_tmp: bool,
    /// A pause between the `..data` swap (step 8) and creating the user-visible symlinks of new
    /// keys (step 9): a kubelet descheduled there, as on a loaded node.
    pub links_delay: Duration,
}

/// The simulated kubelet writing one volume directory.
pub struct Kubelet {
    dir: PathBuf,
    opts: Options,
    rng: Rng,
    /// When the last `rename(..data_tmp, ..data)` was made (taken just before it).
    last_swap: Option<Instant>,
}

/// The desired content: key (a relative path, `a` or `conf.d/a.conf`) to bytes.
type Payload = BTreeMap<String, Vec<u8>>;

impl Kubelet {
    /// A kubelet for the volume `dir`. The dir may not exist yet: the first [`write`] creates it
    /// (the emptyDir the kubelet writes into), unless leftovers are planted, which happens here,
    /// at once: they are what an earlier, crashed kubelet left.
    ///
    /// [`write`]: Kubelet::write
    pub fn new(dir: impl Into<PathBuf>, opts: Options) -> Kubelet {
        let mut kubelet = Kubelet { dir: dir.into(), opts, rng: Rng::new(), last_swap: None };
        if kubelet.opts.crash_leftovers || kubelet.opts.stale_data_tmp {
            kubelet.plant_leftovers();
        }
        kubelet
    }

    /// The volume directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Project `payload` — the full desired key set; keys missing from it are removed — into
    /// the volume, following the kubelet's steps (see the module docs). Returns whether new
    /// content was published (`..data` swapped); false for a no-op write and for a write that
    /// failed as the real kubelet's would (the reason is printed on stderr).
    ///
    /// Panics on a key the kubelet rejects: empty, absolute, not clean, or starting with `..`.
    /// Calling it again with an unchanged payload is the kubelet's periodic resync.
    pub fn write(&mut self, payload: &[(&str, &[u8])]) -> bool {
        let payload = validate(payload);
        fs::create_dir_all(&self.dir).expect("create the volume dir");
        let result = self.atomic_write(&payload);
        if self.opts.legacy_order && result.is_ok() {
            // Old SetUpAt: writer.Write(payload), then SetVolumeOwnership over the volume.
            if let Some(gid) = self.opts.fs_group {
                set_volume_ownership(&self.dir, gid, true);
            }
        }
        result.unwrap_or_else(|err| {
            eprintln!("kubelet: write to {} failed: {err}", self.dir.display());
            false
        })
    }

    /// The kubelet's periodic resync, as reads only: what a `write` of the unchanged payload
    /// does (readlink `..data`, walk and read every file of the data dir, readlink each
    /// top-level symlink), then a consumer's read of every file through its user-visible path
    /// (IN_OPEN/IN_ACCESS/IN_CLOSE_NOWRITE on plain files in the dir). Changes nothing.
    pub fn resync_read(&self) {
        if let Ok(target) = fs::read_link(self.dir.join(DATA_LINK)) {
            let data = self.dir.join(target);
            let paths = walk_tree(&data);
            for rel in &paths {
                let path = data.join(rel);
                if fs::symlink_metadata(&path).is_ok_and(|m| m.is_file()) {
                    let _ = fs::read(&path);
                }
            }
            let tops: BTreeSet<&str> = paths.iter().map(|p| top_level(p)).collect();
            for top in tops {
                let _ = fs::read_link(self.dir.join(top));
            }
        }
        read_visible_tree(&self.dir, 0);
    }

    /// The live data dir: where `..data` points. Panics if there is no `..data`.
    /// When the last update went live: just before its `rename(..data_tmp, ..data)`.
    pub fn last_swap(&self) -> Option<Instant> {
        self.last_swap
    }

    pub fn data_dir(&self) -> PathBuf {
        let target = fs::read_link(self.dir.join(DATA_LINK))
            .unwrap_or_else(|err| panic!("no {DATA_LINK} in {}: {err}", self.dir.display()));
        self.dir.join(target)
    }

    /// The kubelet's `Write`, steps 1–11 of the module docs (Go's steps 2–12).
    fn atomic_write(&mut self, payload: &Payload) -> io::Result<bool> {
        let legacy = self.opts.legacy_order;
        let data_link = self.dir.join(DATA_LINK);

        // (1) the current data dir
        let mut old = match fs::read_link(&data_link) {
            Ok(target) => Some(self.dir.join(target)),
            Err(err) if err.kind() == ErrorKind::NotFound => None,
            Err(err) => return Err(err),
        };
        let mut to_remove = BTreeSet::new();
        let mut publish = true;
        if let Some(old_dir) = &old {
            // (2) what the old version has that the payload no longer does
            to_remove = paths_to_remove(payload, old_dir);
            // (3) does any key differ from the old version?
            if !self.payload_differs(payload, old_dir)? && to_remove.is_empty() {
                if legacy {
                    return Ok(false);
                }
                publish = false;
                old = None; // keep the live dir
            }
        }

        if publish {
            // (4)
            let new_dir = self.new_timestamp_dir()?;
            let new_name = new_dir.file_name().expect("timestamp dir name").to_owned();
            // (5)
            self.write_payload_to_dir(payload, &new_dir)?;
            // (6)
            if !legacy && let Some(gid) = self.opts.fs_group {
                set_volume_ownership(&self.dir, gid, false);
            }
            // (9), where pre-2021 kubelets did it
            if legacy {
                self.create_user_visible_files(payload)?;
            }
            // (7)
            let tmp_link = self.dir.join(DATA_TMP_LINK);
            if let Err(err) = symlink(&new_name, &tmp_link) {
                let _ = fs::remove_dir_all(&new_dir);
                return Err(err);
            }
            // (8) the new content is live
            self.last_swap = Some(Instant::now());
            if let Err(err) = fs::rename(&tmp_link, &data_link) {
                let _ = fs::remove_file(&tmp_link);
                let _ = fs::remove_dir_all(&new_dir);
                return Err(err);
            }
        }

        // (9)
        if !legacy {
            std::thread::sleep(self.opts.links_delay);
            self.create_user_visible_files(payload)?;
        }
        // (10) Like Go: try every path, and on an error skip step 11.
        if let Some(err) = self.remove_user_visible_paths(&to_remove) {
            eprintln!("kubelet: pruning old symlinks in {}: {err}", self.dir.display());
            return Ok(publish);
        }
        // (11)
        if let Some(old_dir) = old {
            fs::remove_dir_all(old_dir)?;
        }
        Ok(publish)
    }

    /// Step 3: compare each key, in random order, with the old version; stop at the first
    /// difference. A key the old version lacks differs.
    fn payload_differs(&mut self, payload: &Payload, old_dir: &Path) -> io::Result<bool> {
        for (key, data) in self.rng.shuffled(payload) {
            let path = old_dir.join(key);
            if let Err(err) = fs::symlink_metadata(&path)
                && err.kind() == ErrorKind::NotFound
            {
                return Ok(true);
            }
            if fs::read(&path)? != *data {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Step 4 (Go's `os.MkdirTemp(dir, "..2006_01_02_15_04_05.")` then `chmod 0755`).
    fn new_timestamp_dir(&mut self) -> io::Result<PathBuf> {
        let prefix = format!("..{}.", utc_stamp(SystemTime::now()));
        for _ in 0..10_000 {
            let random = self.rng.next_u32();
            // Go >= 1.17 appends a random u32; the ioutil.TempDir of older kubelets 9 digits.
            let suffix = if self.opts.legacy_order {
                format!("{:09}", random % 1_000_000_000)
            } else {
                random.to_string()
            };
            let path = self.dir.join(format!("{prefix}{suffix}"));
            match DirBuilder::new().mode(0o700).create(&path) {
                Ok(()) => {
                    fs::set_permissions(&path, Permissions::from_mode(0o755))?;
                    return Ok(path);
                }
                Err(err) if err.kind() == ErrorKind::AlreadyExists => continue,
                Err(err) => return Err(err),
            }
        }
        Err(io::Error::new(ErrorKind::AlreadyExists, "no free timestamp dir name"))
    }

    /// Step 5: every key, in random order, as a file in `dir` (nested keys in real subdirs).
    fn write_payload_to_dir(&mut self, payload: &Payload, dir: &Path) -> io::Result<()> {
        for (key, data) in self.rng.shuffled(payload) {
            let path = dir.join(key);
            if let Some(parent) = path.parent() {
                DirBuilder::new().recursive(true).mode(0o777).create(parent)?;
            }
            create_file(&path, data, FILE_MODE, false)?;
            // Go chmods after WriteFile so that the umask does not matter.
            fs::set_permissions(&path, Permissions::from_mode(FILE_MODE))?;
        }
        Ok(())
    }

    /// Step 9: a `<top> -> ..data/<top>` symlink for each top-level name that has none.
    fn create_user_visible_files(&mut self, payload: &Payload) -> io::Result<()> {
        for (key, _) in self.rng.shuffled(payload) {
            let top = top_level(key);
            let link = self.dir.join(top);
            if let Err(err) = fs::read_link(&link)
                && err.kind() == ErrorKind::NotFound
            {
                symlink(Path::new(DATA_LINK).join(top), &link)?;
            }
        }
        Ok(())
    }

    /// Step 10: remove the top-level entries of removed keys (Go's `os.Remove`: unlink, else
    /// rmdir). Returns the last error.
    fn remove_user_visible_paths(&mut self, paths: &BTreeSet<String>) -> Option<io::Error> {
        let mut last_err = None;
        for path in self.rng.shuffled(paths) {
            if path.contains('/') {
                continue;
            }
            let path = self.dir.join(path);
            if let Err(err) = fs::remove_file(&path).or_else(|err| fs::remove_dir(&path).map_err(|_| err)) {
                last_err = Some(err);
            }
        }
        last_err
    }

    /// The leftovers of a kubelet that crashed during step 5 (and, with `stale_data_tmp`,
    /// between steps 7 and 8).
    fn plant_leftovers(&mut self) {
        fs::create_dir_all(&self.dir).expect("create the volume dir");
        let stray = self.new_timestamp_dir().expect("create a stray timestamp dir");
        create_file(&stray.join("half-written"), b"written by a kubelet that crashed", FILE_MODE, false)
            .expect("write into the stray timestamp dir");
        if self.opts.stale_data_tmp {
            let name = stray.file_name().expect("timestamp dir name");
            symlink(name, self.dir.join(DATA_TMP_LINK)).expect("plant a stale ..data_tmp");
        }
    }
}

/// Writes `content` into `path` in place: `open(O_WRONLY|O_CREAT|O_TRUNC)`, `write`, `close`
/// (IN_MODIFY, IN_CLOSE_WRITE; IN_CREATE if it did not exist). Follows symlinks: on a kubelet
/// volume this writes into the live data dir.
pub fn write_in_place(path: &Path, content: &[u8]) {
    create_file(path, content, FILE_MODE, false)
        .unwrap_or_else(|err| panic!("write {} in place: {err}", path.display()));
}

/// Saves like most editors and `sed -i`: writes a temporary `.<name>.<random>.tmp` in the same
/// dir (with the old file's mode) and renames it over `path` (IN_CREATE/IN_CLOSE_WRITE of the
/// temp, IN_MOVED_FROM temp + IN_MOVED_TO name). Over a symlink, the link is replaced by a file.
pub fn write_via_rename(path: &Path, content: &[u8]) {
    let mode = fs::metadata(path).map_or(FILE_MODE, |m| m.mode() & 0o7777);
    let tmp = sibling(path, &format!(".{}.{}.tmp", file_name(path), Rng::new().next_u32()));
    create_file(&tmp, content, mode, true).unwrap_or_else(|err| panic!("write {}: {err}", tmp.display()));
    fs::set_permissions(&tmp, Permissions::from_mode(mode)).expect("chmod the temp file");
    fs::rename(&tmp, path)
        .unwrap_or_else(|err| panic!("rename {} over {}: {err}", tmp.display(), path.display()));
}

/// Saves like vim with `writebackup` and `backupcopy=no`: renames the original to `<name>~`,
/// writes a new file under the name, restores the mode, deletes the backup (IN_MOVED_FROM name,
/// IN_MOVED_TO name~, IN_CREATE name, IN_CLOSE_WRITE name, IN_ATTRIB name, IN_DELETE name~).
pub fn write_vim_backup(path: &Path, content: &[u8]) {
    let mode = fs::metadata(path).map_or(FILE_MODE, |m| m.mode() & 0o7777);
    let backup = sibling(path, &format!("{}~", file_name(path)));
    fs::rename(path, &backup).unwrap_or_else(|err| panic!("rename {} to its backup: {err}", path.display()));
    create_file(path, content, mode, true).unwrap_or_else(|err| panic!("write {}: {err}", path.display()));
    fs::set_permissions(path, Permissions::from_mode(mode)).expect("restore the mode");
    fs::remove_file(&backup).expect("delete the backup");
}

/// Deletes `path` (IN_DELETE), then creates it anew with `content` (IN_CREATE, IN_CLOSE_WRITE).
/// Use [`delete_file`] and [`create_new_file`] to act in the gap.
pub fn delete_then_recreate(path: &Path, content: &[u8]) {
    delete_file(path);
    create_new_file(path, content);
}

/// Unlinks `path` (IN_DELETE).
pub fn delete_file(path: &Path) {
    fs::remove_file(path).unwrap_or_else(|err| panic!("delete {}: {err}", path.display()));
}

/// Creates `path`, which must not exist, with `content` and mode 0644 (IN_CREATE, IN_MODIFY,
/// IN_CLOSE_WRITE).
pub fn create_new_file(path: &Path, content: &[u8]) {
    create_file(path, content, FILE_MODE, true)
        .unwrap_or_else(|err| panic!("create {}: {err}", path.display()));
}

/// `ln -sfn new_target link`, as GNU coreutils does it: `symlink(new_target, link)`; if `link`
/// exists, `symlink(new_target, CuXXXXXX)` in the same dir and rename that over `link`
/// (IN_CREATE CuXXXXXX, IN_MOVED_FROM CuXXXXXX, IN_MOVED_TO link). `new_target` is stored
/// verbatim (relative to the link's dir, or absolute).
pub fn retarget_symlink(link: &Path, new_target: &Path) {
    match symlink(new_target, link) {
        Ok(()) => return,
        Err(err) if err.kind() == ErrorKind::AlreadyExists => {}
        Err(err) => panic!("symlink {}: {err}", link.display()),
    }
    let mut rng = Rng::new();
    loop {
        let tmp = sibling(link, &format!("Cu{}", rng.alphanumeric(6)));
        match symlink(new_target, &tmp) {
            Ok(()) => {
                fs::rename(&tmp, link).unwrap_or_else(|err| panic!("rename over {}: {err}", link.display()));
                return;
            }
            Err(err) if err.kind() == ErrorKind::AlreadyExists => continue,
            Err(err) => panic!("symlink {}: {err}", tmp.display()),
        }
    }
}

/// Go's `os.WriteFile`: open (O_CREAT|O_TRUNC, or O_EXCL with `new`), write, close.
fn create_file(path: &Path, content: &[u8], mode: u32, new: bool) -> io::Result<()> {
    let mut options = OpenOptions::new();
    options.write(true).mode(mode);
    if new {
        options.create_new(true);
    } else {
        options.create(true).truncate(true);
    }
    options.open(path)?.write_all(content)
}

/// The kubelet's key validation (`validatePath`), requiring already clean paths.
fn validate(payload: &[(&str, &[u8])]) -> Payload {
    payload
        .iter()
        .map(|&(key, data)| {
            let clean = !key.is_empty()
                && key.len() <= 4096
                && !key.starts_with("..")
                && key
                    .split('/')
                    .all(|part| !part.is_empty() && part != "." && part != ".." && part.len() <= 255);
            assert!(clean, "the kubelet rejects the key {key:?}");
            (key.to_owned(), data.to_vec())
        })
        .collect()
}

/// Step 2 (Go's `pathsToRemove`): every path under `old_dir` (files and dirs) that is neither a
/// key nor an ancestor dir of a key. A missing or unreadable old dir has nothing to remove.
fn paths_to_remove(payload: &Payload, old_dir: &Path) -> BTreeSet<String> {
    let mut wanted = BTreeSet::new();
    for key in payload.keys() {
        let mut path = key.as_str();
        wanted.insert(path);
        while let Some(slash) = path.rfind('/') {
            path = &path[..slash];
            wanted.insert(path);
        }
    }
    walk_tree(old_dir).into_iter().filter(|path| !wanted.contains(path.as_str())).collect()
}

/// Every path under `root`, relative to it, without following symlinks.
fn walk_tree(root: &Path) -> BTreeSet<String> {
    let mut paths = BTreeSet::new();
    let mut dirs = vec![String::new()];
    while let Some(rel) = dirs.pop() {
        let Ok(entries) = fs::read_dir(root.join(&rel)) else {
            continue;
        };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let child = if rel.is_empty() { name } else { format!("{rel}/{name}") };
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                dirs.push(child.clone());
            }
            paths.insert(child);
        }
    }
    paths
}

/// Reads every file under `dir` through its user-visible path, following symlinks, skipping
/// the kubelet's own `..` entries.
fn read_visible_tree(dir: &Path, depth: usize) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        if entry.file_name().to_string_lossy().starts_with("..") {
            continue;
        }
        let path = entry.path();
        match fs::metadata(&path) {
            Ok(meta) if meta.is_file() => {
                let _ = fs::read(&path);
            }
            Ok(meta) if meta.is_dir() && depth < 8 => read_visible_tree(&path, depth + 1),
            _ => {}
        }
    }
}

/// The fsGroup ownership pass (`SetVolumeOwnership` over the whole volume dir). Current
/// kubelets walk children before their dir, `lchown(-1, gid)` every entry and skip only the
/// chmod of symlinks; pre-2021 ones walked parents first, skipped symlinks entirely and
/// `chown`ed with the entry's own uid. Errors are ignored: the kubelet only logs them.
fn set_volume_ownership(dir: &Path, gid: u32, legacy: bool) {
    let Ok(meta) = fs::symlink_metadata(dir) else {
        return;
    };
    let is_symlink = meta.file_type().is_symlink();
    if legacy && !is_symlink {
        change_permission(dir, &meta, gid, true);
    }
    if meta.is_dir()
        && let Ok(entries) = fs::read_dir(dir)
    {
        for entry in entries.flatten() {
            set_volume_ownership(&entry.path(), gid, legacy);
        }
    }
    if !legacy {
        let _ = lchown(dir, None, Some(gid));
        if !is_symlink {
            change_permission(dir, &meta, gid, false);
        }
    }
}

/// `chmod` to the mode plus read-only volume bits (`roMask` 0440; dirs also setgid and, in
/// current kubelets, `execMask` 0110); legacy also `chown(uid, gid)` first.
fn change_permission(path: &Path, meta: &fs::Metadata, gid: u32, legacy: bool) {
    let mut mask = 0o440;
    if meta.is_dir() {
        mask |= if legacy { 0o2000 } else { 0o2110 };
    }
    if legacy {
        let _ = chown(path, Some(meta.uid()), Some(gid));
    }
    let _ = fs::set_permissions(path, Permissions::from_mode((meta.mode() & 0o7777) | mask));
}

/// The first component of a key: the name of its user-visible symlink.
fn top_level(key: &str) -> &str {
    key.split('/').next().unwrap_or(key)
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .unwrap_or_else(|| panic!("{} has no file name", path.display()))
        .to_string_lossy()
        .into_owned()
}

fn sibling(path: &Path, name: &str) -> PathBuf {
    path.with_file_name(name)
}

/// `time.Now().UTC().Format("2006_01_02_15_04_05")`.
fn utc_stamp(time: SystemTime) -> String {
    let secs = time.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let (year, month, day) = civil_from_days((secs / 86_400) as i64);
    let rem = secs % 86_400;
    format!("{year:04}_{month:02}_{day:02}_{:02}_{:02}_{:02}", rem / 3600, rem % 3600 / 60, rem % 60)
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian (H. Hinnant's algorithm).
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// xorshift64* seeded from the clock, the pid and a per-process counter: random names and
/// Go's random map iteration order, without the `rand` crate.
pub struct Rng(u64);

impl Rng {
    pub fn new() -> Rng {
        static INSTANCES: AtomicU64 = AtomicU64::new(0);
        let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64);
        let instance = INSTANCES.fetch_add(1, Ordering::Relaxed);
        let seed =
            nanos ^ (u64::from(std::process::id()) << 32) ^ instance.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        let mut rng = Rng(seed | 1);
        rng.next_u64();
        rng
    }

    fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    pub fn next_u32(&mut self) -> u32 {
        (self.next_u64() >> 32) as u32
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    fn alphanumeric(&mut self, len: usize) -> String {
        const CHARS: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
        (0..len).map(|_| char::from(CHARS[self.below(CHARS.len())])).collect()
    }

    /// The items in random order (Fisher–Yates).
    fn shuffled<T>(&mut self, items: impl IntoIterator<Item = T>) -> Vec<T> {
        let mut items: Vec<T> = items.into_iter().collect();
        for i in (1..items.len()).rev() {
            let j = self.below(i + 1);
            items.swap(i, j);
        }
        items
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fresh directory under the system temp dir, removed on drop.
    struct Scratch(PathBuf);

    impl Scratch {
        fn new(tag: &str) -> Scratch {
            let path = std::env::temp_dir().join(format!(
                "reinit-kubelet-{tag}-{}-{:x}",
                std::process::id(),
                Rng::new().next_u64()
            ));
            fs::create_dir_all(&path).unwrap();
            Scratch(path)
        }

        fn join(&self, name: &str) -> PathBuf {
            self.0.join(name)
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    fn legacy() -> Options {
        Options { legacy_order: true, ..Options::default() }
    }

    /// Names in `dir` starting with `..` other than `..data`: the timestamp dirs.
    fn timestamp_dirs(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with("..") && n != DATA_LINK && n != DATA_TMP_LINK)
            .collect();
        names.sort();
        names
    }

    /// `..YYYY_MM_DD_HH_MM_SS.<digits>`.
    fn is_timestamp_name(name: &str) -> bool {
        let Some(rest) = name.strip_prefix("..") else {
            return false;
        };
        let Some((stamp, random)) = rest.split_once('.') else {
            return false;
        };
        let parts: Vec<&str> = stamp.split('_').collect();
        parts.len() == 6
            && parts[0].len() == 4
            && parts[1..].iter().all(|p| p.len() == 2)
            && parts.iter().all(|p| p.bytes().all(|b| b.is_ascii_digit()))
            && !random.is_empty()
            && random.bytes().all(|b| b.is_ascii_digit())
    }

    /// What a consumer sees: each non-`..` entry with its link target, and every file's
    /// content through the user-visible paths; plus the number of timestamp dirs.
    fn visible_layout(dir: &Path) -> Vec<String> {
        let mut out = Vec::new();
        let mut names: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| !n.starts_with(".."))
            .collect();
        names.sort();
        for name in names {
            let path = dir.join(&name);
            let target = fs::read_link(&path).map(|t| t.display().to_string());
            out.push(format!("{name} -> {target:?}"));
            if path.is_dir() {
                for rel in walk_tree(&path) {
                    let file = path.join(&rel);
                    if file.is_file() {
                        out.push(format!("{name}/{rel} = {:?}", fs::read(&file).unwrap()));
                    }
                }
            } else {
                out.push(format!("{name} = {:?}", fs::read(&path).unwrap()));
            }
        }
        out.push(format!("timestamp dirs: {}", timestamp_dirs(dir).len()));
        out
    }

    fn mode(path: &Path) -> u32 {
        fs::symlink_metadata(path).unwrap().mode() & 0o7777
    }

    #[test]
    fn first_write_creates_the_kubelet_layout() {
        for opts in [Options::default(), legacy()] {
            let scratch = Scratch::new("first");
            let dir = scratch.join("volume"); // does not exist yet
            let mut kubelet = Kubelet::new(&dir, opts.clone());
            assert!(kubelet.write(&[("app.yaml", b"v1"), ("other", b"x")]));

            let target = fs::read_link(dir.join(DATA_LINK)).unwrap();
            let name = target.to_str().unwrap();
            assert!(is_timestamp_name(name), "{name}");
            if opts.legacy_order {
                assert_eq!(name.rsplit('.').next().unwrap().len(), 9, "{name}");
            }
            assert_eq!(kubelet.data_dir(), dir.join(name));
            assert_eq!(mode(&kubelet.data_dir()), 0o755);
            assert_eq!(mode(&kubelet.data_dir().join("app.yaml")), FILE_MODE);
            assert_eq!(fs::read_link(dir.join("app.yaml")).unwrap(), Path::new("..data/app.yaml"));
            assert_eq!(fs::read(dir.join("app.yaml")).unwrap(), b"v1");
            assert_eq!(fs::read(dir.join("other")).unwrap(), b"x");
            assert!(fs::symlink_metadata(dir.join(DATA_TMP_LINK)).is_err());
            assert_eq!(timestamp_dirs(&dir), [name]);
        }
    }

    #[test]
    fn update_swaps_data_and_deletes_the_old_dir() {
        for opts in [Options::default(), legacy()] {
            let scratch = Scratch::new("update");
            let dir = scratch.join("volume");
            let mut kubelet = Kubelet::new(&dir, opts);
            assert!(kubelet.write(&[("app.yaml", b"v1"), ("other", b"x")]));
            let old = kubelet.data_dir();
            assert!(kubelet.write(&[("app.yaml", b"v2"), ("other", b"x")]));
            let new = kubelet.data_dir();
            assert_ne!(old, new);
            assert!(!old.exists(), "old data dir still there");
            assert_eq!(fs::read(dir.join("app.yaml")).unwrap(), b"v2");
            assert_eq!(timestamp_dirs(&dir).len(), 1);
        }
    }

    #[test]
    fn unchanged_payload_is_a_no_op() {
        for opts in [Options::default(), legacy()] {
            let scratch = Scratch::new("noop");
            let dir = scratch.join("volume");
            let mut kubelet = Kubelet::new(&dir, opts);
            let payload: &[(&str, &[u8])] = &[("app.yaml", b"v1"), ("conf.d/a.conf", b"a")];
            assert!(kubelet.write(payload));
            let data = kubelet.data_dir();
            let dir_mtime = fs::metadata(&dir).unwrap().modified().unwrap();
            let data_mtime = fs::metadata(&data).unwrap().modified().unwrap();

            assert!(!kubelet.write(payload));
            kubelet.resync_read();
            assert!(!kubelet.write(payload));

            assert_eq!(kubelet.data_dir(), data);
            assert_eq!(fs::metadata(&dir).unwrap().modified().unwrap(), dir_mtime);
            assert_eq!(fs::metadata(&data).unwrap().modified().unwrap(), data_mtime);
            assert_eq!(timestamp_dirs(&dir).len(), 1);
        }
    }

    #[test]
    fn removed_keys_lose_their_symlinks() {
        for opts in [Options::default(), legacy()] {
            let scratch = Scratch::new("remove");
            let dir = scratch.join("volume");
            let mut kubelet = Kubelet::new(&dir, opts);
            assert!(kubelet.write(&[("a", b"1"), ("b", b"2")]));
            // Same bytes for the remaining key: the removal alone is a change.
            assert!(kubelet.write(&[("a", b"1")]));
            assert!(fs::symlink_metadata(dir.join("b")).is_err());
            assert_eq!(fs::read(dir.join("a")).unwrap(), b"1");
            assert!(!kubelet.data_dir().join("b").exists());
            // A key added back with the rest unchanged is a change too.
            assert!(kubelet.write(&[("a", b"1"), ("b", b"2")]));
            assert_eq!(fs::read(dir.join("b")).unwrap(), b"2");
        }
    }

    #[test]
    fn nested_keys_live_in_real_subdirs() {
        for opts in [Options::default(), legacy()] {
            let scratch = Scratch::new("nested");
            let dir = scratch.join("volume");
            let mut kubelet = Kubelet::new(&dir, opts);
            assert!(kubelet.write(&[
                ("conf.d/a.conf", b"a1"),
                ("conf.d/b.conf", b"b1"),
                ("conf.d/deep/c.conf", b"c1"),
                ("top", b"t"),
            ]));
            assert_eq!(fs::read_link(dir.join("conf.d")).unwrap(), Path::new("..data/conf.d"));
            let real = kubelet.data_dir().join("conf.d");
            assert!(fs::symlink_metadata(&real).unwrap().is_dir());
            assert_eq!(fs::read(dir.join("conf.d/deep/c.conf")).unwrap(), b"c1");

            assert!(kubelet.write(&[("conf.d/a.conf", b"a2"), ("top", b"t")]));
            assert_eq!(fs::read(dir.join("conf.d/a.conf")).unwrap(), b"a2");
            assert!(!dir.join("conf.d/b.conf").exists());
            assert!(!dir.join("conf.d/deep").exists());

            assert!(kubelet.write(&[("top", b"t")]));
            assert!(fs::symlink_metadata(dir.join("conf.d")).is_err());
        }
    }

    #[test]
    fn empty_payload_still_gets_a_data_link() {
        let scratch = Scratch::new("empty");
        let dir = scratch.join("volume");
        let mut kubelet = Kubelet::new(&dir, Options::default());
        assert!(kubelet.write(&[]));
        assert_eq!(fs::read_dir(kubelet.data_dir()).unwrap().count(), 0);
        assert!(!kubelet.write(&[]));
    }

    #[test]
    fn legacy_order_ends_in_the_same_layout() {
        let scratch = Scratch::new("legacy");
        let steps: [&[(&str, &[u8])]; 4] = [
            &[("app.yaml", b"v1"), ("conf.d/a.conf", b"a")],
            &[("app.yaml", b"v2"), ("conf.d/a.conf", b"a"), ("new", b"n")],
            &[("app.yaml", b"v2"), ("new", b"n")],
            &[("app.yaml", b"v2"), ("new", b"n")],
        ];
        let mut current = Kubelet::new(scratch.join("current"), Options::default());
        let mut old = Kubelet::new(scratch.join("legacy"), legacy());
        for payload in steps {
            assert_eq!(current.write(payload), old.write(payload));
            assert_eq!(visible_layout(current.dir()), visible_layout(old.dir()), "after {payload:?}");
        }
    }

    #[test]
    fn crash_leftovers_are_ignored_and_kept() {
        let scratch = Scratch::new("crash");
        let dir = scratch.join("volume");
        let mut kubelet = Kubelet::new(&dir, Options { crash_leftovers: true, ..Options::default() });
        let stray = timestamp_dirs(&dir);
        assert_eq!(stray.len(), 1, "stray dir planted before any write");
        assert!(fs::symlink_metadata(dir.join(DATA_LINK)).is_err());

        assert!(kubelet.write(&[("app.yaml", b"v1")]));
        assert!(kubelet.write(&[("app.yaml", b"v2")]));
        assert_eq!(fs::read(dir.join("app.yaml")).unwrap(), b"v2");
        let live = kubelet.data_dir();
        assert_ne!(live, dir.join(&stray[0]));
        let left = timestamp_dirs(&dir);
        assert_eq!(left.len(), 2, "the stray dir is never removed: {left:?}");
        assert!(left.contains(&stray[0]));
    }

    #[test]
    fn stale_data_tmp_blocks_every_write_like_the_real_kubelet() {
        for legacy_order in [false, true] {
            let scratch = Scratch::new("stale");
            let dir = scratch.join("volume");
            let mut first = Kubelet::new(&dir, Options { legacy_order, ..Options::default() });
            assert!(first.write(&[("app.yaml", b"v1")]));
            let live = first.data_dir();

            // A restarted kubelet finds what its crashed predecessor left.
            let mut kubelet =
                Kubelet::new(&dir, Options { legacy_order, stale_data_tmp: true, ..Options::default() });
            let before = timestamp_dirs(&dir);
            assert_eq!(before.len(), 2);
            assert!(!kubelet.write(&[("app.yaml", b"v2"), ("new", b"n")]));
            assert_eq!(kubelet.data_dir(), live);
            assert_eq!(fs::read(dir.join("app.yaml")).unwrap(), b"v1");
            assert_eq!(timestamp_dirs(&dir), before, "the failed write removes its dir");
            assert!(fs::symlink_metadata(dir.join(DATA_TMP_LINK)).is_ok());
            // Only pre-2021 kubelets had created the new key's symlink (dangling) by then.
            assert_eq!(fs::symlink_metadata(dir.join("new")).is_ok(), legacy_order);
            assert!(!dir.join("new").exists());

            // Removing the stale link by hand unblocks the volume.
            fs::remove_file(dir.join(DATA_TMP_LINK)).unwrap();
            assert!(kubelet.write(&[("app.yaml", b"v2"), ("new", b"n")]));
            assert_eq!(fs::read(dir.join("app.yaml")).unwrap(), b"v2");
            assert_eq!(fs::read(dir.join("new")).unwrap(), b"n");
        }
    }

    #[test]
    fn fs_group_pass_sets_group_bits() {
        for legacy_order in [false, true] {
            let scratch = Scratch::new("fsgroup");
            let gid = fs::metadata(&scratch.0).unwrap().gid(); // a group we may chown to
            let dir = scratch.join("volume");
            let mut kubelet =
                Kubelet::new(&dir, Options { legacy_order, fs_group: Some(gid), ..Options::default() });
            assert!(kubelet.write(&[("app.yaml", b"v1"), ("conf.d/a.conf", b"a")]));
            let data = kubelet.data_dir();
            assert_eq!(mode(&data) & 0o2000, 0o2000, "setgid on the data dir");
            assert_eq!(mode(&data.join("conf.d")) & 0o2000, 0o2000);
            assert_eq!(mode(&dir) & 0o2000, 0o2000, "the volume dir itself is included");
            assert_eq!(mode(&data.join("app.yaml")), FILE_MODE | 0o440);
            assert_eq!(fs::metadata(data.join("app.yaml")).unwrap().gid(), gid);
            assert_eq!(fs::read(dir.join("conf.d/a.conf")).unwrap(), b"a");
        }
    }

    #[test]
    fn resync_read_changes_nothing() {
        let scratch = Scratch::new("resync");
        let dir = scratch.join("volume");
        let mut kubelet = Kubelet::new(&dir, Options::default());
        assert!(kubelet.write(&[("app.yaml", b"v1"), ("conf.d/a.conf", b"a")]));
        let before = visible_layout(&dir);
        let data = kubelet.data_dir();
        let mtime = fs::metadata(&dir).unwrap().modified().unwrap();
        kubelet.resync_read();
        assert_eq!(visible_layout(&dir), before);
        assert_eq!(kubelet.data_dir(), data);
        assert_eq!(fs::metadata(&dir).unwrap().modified().unwrap(), mtime);
    }

    #[test]
    #[should_panic(expected = "rejects")]
    fn reserved_keys_are_rejected() {
        let scratch = Scratch::new("reject");
        Kubelet::new(scratch.join("volume"), Options::default()).write(&[("..data", b"x")]);
    }

    #[test]
    fn naive_writers_change_content_as_described() {
        let scratch = Scratch::new("naive");
        let file = scratch.join("app.yaml");

        create_new_file(&file, b"v1");
        let inode = fs::metadata(&file).unwrap().ino();
        write_in_place(&file, b"v2");
        assert_eq!(fs::read(&file).unwrap(), b"v2");
        assert_eq!(fs::metadata(&file).unwrap().ino(), inode, "in place keeps the inode");

        fs::set_permissions(&file, Permissions::from_mode(0o600)).unwrap();
        write_via_rename(&file, b"v3");
        assert_eq!(fs::read(&file).unwrap(), b"v3");
        assert_ne!(fs::metadata(&file).unwrap().ino(), inode, "rename brings a new inode");
        assert_eq!(mode(&file), 0o600, "the mode is kept");

        write_vim_backup(&file, b"v4");
        assert_eq!(fs::read(&file).unwrap(), b"v4");
        assert_eq!(mode(&file), 0o600);

        delete_then_recreate(&file, b"v5");
        assert_eq!(fs::read(&file).unwrap(), b"v5");

        let names: Vec<String> = fs::read_dir(&scratch.0)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["app.yaml"], "no temp or backup left behind");
    }

    #[test]
    fn retarget_symlink_replaces_the_link_atomically() {
        let scratch = Scratch::new("retarget");
        create_new_file(&scratch.join("one"), b"1");
        create_new_file(&scratch.join("two"), b"2");
        let link = scratch.join("current");
        retarget_symlink(&link, Path::new("one"));
        assert_eq!(fs::read(&link).unwrap(), b"1");
        retarget_symlink(&link, Path::new("two"));
        assert_eq!(fs::read_link(&link).unwrap(), Path::new("two"));
        assert_eq!(fs::read(&link).unwrap(), b"2");
        assert_eq!(fs::read_dir(&scratch.0).unwrap().count(), 3, "no temp link left");
    }

    #[test]
    fn timestamps_are_utc_calendar_dates() {
        let at = |secs| utc_stamp(UNIX_EPOCH + std::time::Duration::from_secs(secs));
        assert_eq!(at(0), "1970_01_01_00_00_00");
        assert_eq!(at(1_000_000_000), "2001_09_09_01_46_40");
        assert_eq!(at(1_709_251_199), "2024_02_29_23_59_59");
        assert_eq!(at(1_795_600_800), "2026_11_25_10_00_00");
    }
}
