//! Config watching, one test per behaviour, driving the real
//! binary against `tests/fixtures/fake_app.rs` while `tests/util/kubelet.rs` (or a naive writer)
//! changes the watched paths.
//!
//! Every test counts the app's starts through fake_app's output (`config <PATH>=<content>` then
//! `ready pid=…`, once per start). "Exactly one restart per update" is checked as: wait for the
//! next start, check it printed the new content, then watch the count for a further quiet window
//! ([`QUIET`], several debounce periods) in which it must not grow — a measurement window, not
//! synchronisation. Zero-action cases are checked the same way and then followed by a real
//! change (a sentinel) that must cost exactly one action, so a late spurious action shows up as
//! an extra one.

use crate::util::kubelet::{self, Kubelet, Options};
use crate::util::{
    DEADLINE, Proc, TempDir, alive, fake_app, num_field, poll_until, prepare, reinit_cmd, signal_pid,
    with_app,
};
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant, SystemTime};

/// How long the start count must stay put after an expected start (the default debounce is
/// 100 ms: a spurious second action would come one debounce after the last event).
const QUIET: Duration = Duration::from_millis(500);

/// Consecutive updates per "exactly one per update" test.
const UPDATES: usize = 3;

/// The path as a `String` (test paths are UTF-8 without spaces).
fn s(path: &Path) -> String {
    path.to_str().expect("UTF-8 test path").to_string()
}

fn is_ready(line: &str) -> bool {
    line.starts_with("ready pid=")
}

/// A kubelet update of the payload `app.yaml=<app>`, `other=x` (`other` never changes).
fn write_app(k: &mut Kubelet, app: &str) {
    assert!(k.write(&[("app.yaml", app.as_bytes()), ("other", b"x")]), "kubelet published nothing");
}

/// A kubelet-managed volume `TMP/volume` holding `app.yaml=v0` (and `other`): the temp dir (keep
/// it alive), the volume, its kubelet and the `app.yaml` path.
fn app_volume(tag: &str) -> (TempDir, PathBuf, Kubelet, String) {
    let tmp = TempDir::new(tag);
    let dir = tmp.path().join("volume");
    let mut k = Kubelet::new(&dir, Options::default());
    write_app(&mut k, "v0");
    let file = s(&dir.join("app.yaml"));
    (tmp, dir, k, file)
}

/// `UPDATES` kubelet updates of `app.yaml` (v1, v2, …), each costing exactly one restart.
fn expect_restart_per_update(w: &mut Watch, k: &mut Kubelet, file: &str, what: &str) {
    for i in 1..=UPDATES {
        let v = format!("v{i}");
        write_app(k, &v);
        w.expect_restart(file, &v, &format!("{what} {i}"));
    }
}

/// `touch PATH` without writing: a read-only open (IN_CLOSE_NOWRITE, not watched) and
/// `futimens` of both times (IN_ATTRIB only; setting only the mtime would report IN_MODIFY).
/// Follows symlinks.
fn touch(path: &Path) {
    let now = SystemTime::now();
    let times = fs::FileTimes::new().set_accessed(now).set_modified(now);
    fs::File::open(path).unwrap().set_times(times).unwrap();
}

/// `reinit REINIT_ARGS -- fake_app APP_ARGS`, with the app's starts tracked.
struct Watch {
    p: Proc,
    /// Starts seen and accounted for (their `ready` lines taken, in order).
    starts: usize,
    /// The pid of the current app.
    pid: i32,
    /// The measurement window after each expected start or non-event.
    quiet: Duration,
}

impl Watch {
    /// Spawns reinit and waits for the first start.
    fn spawn(reinit_args: &[&str], app_args: &[&str]) -> Watch {
        Watch::spawn_cmd(reinit_cmd(with_app(reinit_args, app_args)))
    }

    fn spawn_cmd(cmd: Command) -> Watch {
        let mut p = Proc::spawn(cmd);
        let ready = p.wait_line(is_ready, DEADLINE);
        Watch { p, starts: 1, pid: num_field(&ready, "pid"), quiet: QUIET }
    }

    /// Starts so far, by `ready` lines.
    fn ready_count(&mut self) -> usize {
        self.p.count(is_ready)
    }

    /// The content start number `k` (1-based) printed for `path`: its `config` line, found
    /// between the previous start's `ready` and its own.
    fn config_of(&mut self, k: usize, path: &str) -> Option<String> {
        let prefix = format!("config {path}=");
        let mut start = 1;
        for line in self.p.lines_so_far() {
            if start == k
                && let Some(content) = line.strip_prefix(&prefix)
            {
                return Some(content.to_string());
            }
            if is_ready(&line) {
                start += 1;
            }
        }
        None
    }

    /// Asserts the current app printed `content` for `path`.
    fn assert_config(&mut self, path: &str, content: &str) {
        let got = self.config_of(self.starts, path);
        assert_eq!(
            got.as_deref(),
            Some(content),
            "start #{} read the wrong content\n{}",
            self.starts,
            self.p.dump()
        );
    }

    /// Asserts that no start beyond the ones accounted for happens during the quiet window.
    fn assert_quiet(&mut self, after: &str) {
        let want = self.starts;
        let extra = poll_until(self.quiet, || self.p.count(is_ready) > want);
        let got = self.ready_count();
        assert!(
            !extra && got == want,
            "after {after}: expected exactly {want} app start(s), saw {got}\n{}",
            self.p.dump()
        );
    }

    /// Expects exactly one more start, which printed `content` for `path`; returns the instant
    /// its `ready` line was read.
    fn expect_restart(&mut self, path: &str, content: &str, after: &str) -> Instant {
        let (ready, at) = self.p.wait_line_at(is_ready, DEADLINE);
        self.starts += 1;
        self.pid = num_field(&ready, "pid");
        self.assert_config(path, content);
        self.assert_quiet(after);
        at
    }

    /// Expects no start at all for a quiet window.
    fn expect_no_restart(&mut self, after: &str) {
        self.assert_quiet(after);
    }

    /// reinit's stderr lines.
    fn stderr_lines(&mut self) -> Vec<String> {
        self.p.stderr_so_far().lines().map(str::to_string).collect()
    }

    /// How many stderr lines contain `pat`.
    fn stderr_count(&mut self, pat: &str) -> usize {
        self.stderr_lines().iter().filter(|l| l.contains(pat)).count()
    }

    /// Waits until at least `n` stderr lines contain `pat`.
    fn wait_stderr(&mut self, pat: &str, n: usize) {
        if !poll_until(DEADLINE, || self.stderr_count(pat) >= n) {
            panic!("expected {n} stderr line(s) containing {pat:?}\n{}", self.p.dump());
        }
    }

    /// How many stdout lines are exactly `line`.
    fn stdout_count(&mut self, line: &str) -> usize {
        self.p.count(|l: &str| l == line)
    }
}

// ---------------------------------------------------------------------------------------------
// The kubelet's AtomicWriter

#[test]
fn kubelet_update_restarts_exactly_once_per_update() {
    let (_tmp, _dir, mut k, file) = app_volume("kubelet-current");
    let mut w = Watch::spawn(&["-w", &file], &["--config", &file]);
    w.assert_config(&file, "v0");
    w.expect_no_restart("the start");
    expect_restart_per_update(&mut w, &mut k, &file, "kubelet update");
}

#[test]
fn kubelet_legacy_order_update_restarts_exactly_once_per_update() {
    // Pre-2021: the user-visible symlinks (a new key's dangling one) exist before the swap.
    let tmp = TempDir::new("kubelet-legacy");
    let dir = tmp.path().join("volume");
    let mut k = Kubelet::new(&dir, Options { legacy_order: true, ..Options::default() });
    assert!(k.write(&[("app.yaml", b"v0")]));
    let (file, extra) = (s(&dir.join("app.yaml")), s(&dir.join("extra")));
    let mut w = Watch::spawn(&["-w", &s(&dir)], &["--config", &file, "--config", &extra]);
    w.expect_no_restart("the start");
    assert!(k.write(&[("app.yaml", b"v1")]));
    w.expect_restart(&file, "v1", "update 1");
    assert!(k.write(&[("app.yaml", b"v1"), ("extra", b"e1")]));
    w.expect_restart(&extra, "e1", "update 2 (a new key)");
    assert!(k.write(&[("app.yaml", b"v3"), ("extra", b"e1")]));
    w.expect_restart(&file, "v3", "update 3");
    assert!(k.write(&[("app.yaml", b"v4"), ("extra", b"e4")]));
    w.expect_restart(&extra, "e4", "update 4");
    w.assert_config(&file, "v4");
}

/// reinit watching an empty `TMP/volume` the kubelet has not written yet, its app started
/// without `app.yaml`: the temp dir (keep it alive), the volume, the `app.yaml` path and the
/// watch.
fn empty_volume(tag: &str) -> (TempDir, PathBuf, String, Watch) {
    let tmp = TempDir::new(tag);
    let dir = tmp.path().join("volume");
    fs::create_dir(&dir).unwrap();
    let file = s(&dir.join("app.yaml"));
    let mut w = Watch::spawn(&["-w", &s(&dir)], &["--config", &file]);
    w.assert_config(&file, "MISSING");
    w.expect_no_restart("the start");
    (tmp, dir, file, w)
}

#[test]
fn kubelet_first_write_into_an_empty_dir_restarts_once() {
    let (_tmp, dir, file, mut w) = empty_volume("kubelet-first-empty");
    let mut k = Kubelet::new(&dir, Options::default());
    expect_restart_per_update(&mut w, &mut k, &file, "kubelet write");
    assert_eq!(w.stderr_count("does not exist"), 0, "the dir exists\n{}", w.p.dump());
}

/// At the `..data` swap the keys of a first write are live in `..data` but not yet where the app
/// opens them: the kubelet links them just after. A kubelet descheduled in between (300 ms
/// here) must not get the app restarted without its file.
#[test]
fn kubelet_slow_to_link_new_keys_still_starts_the_app_with_them() {
    let (_tmp, dir, file, mut w) = empty_volume("kubelet-slow-links");
    let links_delay = Duration::from_millis(300);
    let mut k = Kubelet::new(&dir, Options { links_delay, ..Options::default() });
    write_app(&mut k, "v1");
    w.expect_restart(&file, "v1", "the first write, linked 300 ms after the swap");
    write_app(&mut k, "v2");
    w.expect_restart(&file, "v2", "an update of linked keys");
}

#[test]
fn kubelet_first_write_into_a_missing_dir_restarts_once() {
    let tmp = TempDir::new("kubelet-first-missing");
    let dir = tmp.path().join("volume"); // created by the kubelet's first write
    let file = s(&dir.join("app.yaml"));
    let mut w = Watch::spawn(&["-w", &file], &["--config", &file]);
    w.assert_config(&file, "MISSING");
    w.wait_stderr(&format!("{file} does not exist yet: waiting for it to appear"), 1);
    w.expect_no_restart("the start");
    let mut k = Kubelet::new(&dir, Options::default());
    expect_restart_per_update(&mut w, &mut k, &file, "kubelet write");
}

#[test]
fn kubelet_keys_added_and_removed_in_a_watched_dir_restart_once() {
    let tmp = TempDir::new("kubelet-keys");
    let dir = tmp.path().join("volume");
    let mut k = Kubelet::new(&dir, Options::default());
    assert!(k.write(&[("a", b"1")]));
    let (a, b) = (s(&dir.join("a")), s(&dir.join("b")));
    let mut w = Watch::spawn(&["-w", &s(&dir)], &["--config", &a, "--config", &b]);
    w.assert_config(&b, "MISSING");
    w.expect_no_restart("the start");
    assert!(k.write(&[("a", b"1"), ("b", b"2")]));
    w.expect_restart(&b, "2", "key b added");
    assert!(k.write(&[("a", b"1")]));
    w.expect_restart(&b, "MISSING", "key b removed");
    assert!(k.write(&[("a", b"1"), ("c", b"3")]));
    w.expect_restart(&a, "1", "key c added");
    assert!(k.write(&[("a", b"1"), ("b", b"4")]));
    w.expect_restart(&b, "4", "key c removed, b added");
}

#[test]
fn kubelet_nested_keys_restart_once() {
    // Two reinits on the same volume: one watching the volume, one watching a nested key's dir
    // (`conf.d -> ..data/conf.d`, whose real dir is replaced by every update).
    let tmp = TempDir::new("kubelet-nested");
    let dir = tmp.path().join("volume");
    let mut k = Kubelet::new(&dir, Options::default());
    let payload = |a: &str, c: &str| {
        vec![
            ("conf.d/a.conf", a.as_bytes().to_vec()),
            ("conf.d/deep/c.conf", c.as_bytes().to_vec()),
            ("top", b"t".to_vec()),
        ]
    };
    let write = |k: &mut Kubelet, a: &str, c: &str| {
        let owned = payload(a, c);
        let refs: Vec<(&str, &[u8])> = owned.iter().map(|(key, v)| (*key, v.as_slice())).collect();
        assert!(k.write(&refs));
    };
    write(&mut k, "a0", "c0");
    let (a, c) = (s(&dir.join("conf.d/a.conf")), s(&dir.join("conf.d/deep/c.conf")));
    let app = ["--config", &a, "--config", &c];
    let mut whole = Watch::spawn(&["-w", &s(&dir)], &app);
    let mut nested = Watch::spawn(&["-w", &s(&dir.join("conf.d"))], &app);
    whole.expect_no_restart("the start");
    nested.expect_no_restart("the start");
    let steps = [("a0", "c1"), ("a2", "c1"), ("a3", "c3")];
    for (i, (va, vc)) in steps.into_iter().enumerate() {
        write(&mut k, va, vc);
        for w in [&mut whole, &mut nested] {
            w.expect_restart(&c, vc, &format!("nested update {}", i + 1));
            w.assert_config(&a, va);
        }
    }
}

#[test]
fn kubelet_crash_leftovers_are_not_content() {
    let tmp = TempDir::new("kubelet-crash");
    let dir = tmp.path().join("volume");
    let mut k = Kubelet::new(&dir, Options { crash_leftovers: true, ..Options::default() });
    write_app(&mut k, "v0");
    let stray: Vec<PathBuf> = fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            name.starts_with("..") && name != kubelet::DATA_LINK && *p != k.data_dir()
        })
        .collect();
    assert_eq!(stray.len(), 1, "one stray timestamp dir planted: {stray:?}");
    let file = s(&dir.join("app.yaml"));
    let mut w = Watch::spawn(&["-w", &s(&dir)], &["--config", &file]);
    w.expect_no_restart("the start");
    expect_restart_per_update(&mut w, &mut k, &file, "kubelet update");
    // An admin cleaning the leftovers up changes no content.
    fs::remove_dir_all(&stray[0]).unwrap();
    w.expect_no_restart("removing the stray timestamp dir");
    write_app(&mut k, "v9");
    w.expect_restart(&file, "v9", "the update after the clean-up");
}

#[test]
fn kubelet_fs_group_pass_restarts_once_and_alone_changes_nothing() {
    let tmp = TempDir::new("kubelet-fsgroup");
    let gid = fs::metadata(tmp.path()).unwrap().gid(); // a group we may chown to
    let dir = tmp.path().join("volume");
    let current = Options { fs_group: Some(gid), ..Options::default() };
    let legacy = Options { legacy_order: true, fs_group: Some(gid), ..Options::default() };
    write_app(&mut Kubelet::new(&dir, current.clone()), "v0");
    let file = s(&dir.join("app.yaml"));
    let mut w = Watch::spawn(&["-w", &s(&dir)], &["--config", &file]);
    w.expect_no_restart("the start");
    for i in 1..=4 {
        let v = format!("v{i}");
        let opts = if i % 2 == 1 { current.clone() } else { legacy.clone() };
        write_app(&mut Kubelet::new(&dir, opts), &v);
        w.expect_restart(&file, &v, &format!("fsGroup update {i}"));
    }
    // A pre-2021 kubelet runs the ownership pass even when nothing changed: IN_ATTRIB only.
    for _ in 0..UPDATES {
        assert!(!Kubelet::new(&dir, legacy.clone()).write(&[("app.yaml", b"v4"), ("other", b"x")]));
        w.expect_no_restart("a no-op write with its fsGroup pass");
    }
    write_app(&mut Kubelet::new(&dir, current), "v5");
    w.expect_restart(&file, "v5", "the sentinel update");
}

#[test]
fn kubelet_resync_reads_change_nothing() {
    let (_tmp, dir, mut k, file) = app_volume("kubelet-resync");
    let mut w = Watch::spawn(&["-w", &s(&dir)], &["--config", &file]);
    w.expect_no_restart("the start");
    for _ in 0..UPDATES {
        k.resync_read();
        assert!(!k.write(&[("app.yaml", b"v0"), ("other", b"x")]), "a resync publishes nothing");
        w.expect_no_restart("a kubelet resync");
    }
    write_app(&mut k, "v1");
    w.expect_restart(&file, "v1", "the sentinel update");
}

#[test]
fn data_swap_caused_only_by_other_keys_changes_nothing() {
    // A projected volume rotating its token: `..data` is swapped, the watched key is the same.
    let tmp = TempDir::new("kubelet-other-keys");
    let dir = tmp.path().join("volume");
    let mut k = Kubelet::new(&dir, Options::default());
    assert!(k.write(&[("app.yaml", b"v0"), ("token", b"t0")]));
    let file = s(&dir.join("app.yaml"));
    let mut w = Watch::spawn(&["-w", &file], &["--config", &file]);
    w.expect_no_restart("the start");
    for i in 1..=UPDATES {
        let data = k.data_dir();
        assert!(k.write(&[("app.yaml", b"v0"), ("token", format!("t{i}").as_bytes())]));
        assert_ne!(k.data_dir(), data, "..data was swapped");
        w.expect_no_restart(&format!("token rotation {i}"));
    }
    assert!(k.write(&[("app.yaml", b"v1"), ("token", b"t9")]));
    w.expect_restart(&file, "v1", "the sentinel update");
}

#[test]
fn data_swap_alone_restarts_once() {
    // Steps 4-8 without 9-11, as a kubelet whose pruning failed (an error at step 10 skips
    // step 11): the old data dir stays, so the `..data` rename is the only sign of new content.
    let (_tmp, dir, _k, file) = app_volume("swap-alone");
    let mut w = Watch::spawn(&["-w", &file], &["--config", &file]);
    w.expect_no_restart("the start");
    for i in 1..=UPDATES {
        let name = format!("..2026_11_25_10_00_0{i}.{i}");
        let data = dir.join(&name);
        fs::create_dir(&data).unwrap();
        fs::write(data.join("app.yaml"), format!("v{i}")).unwrap();
        fs::write(data.join("other"), "x").unwrap();
        std::os::unix::fs::symlink(&name, dir.join(kubelet::DATA_TMP_LINK)).unwrap();
        fs::rename(dir.join(kubelet::DATA_TMP_LINK), dir.join(kubelet::DATA_LINK)).unwrap();
        w.expect_restart(&file, &format!("v{i}"), &format!("..data swap {i}"));
    }
}

// ---------------------------------------------------------------------------------------------
// Plain files: editors, shells, deploy tools

/// A dir with `app.yaml` = `content`; returns (dir, file).
fn plain(tmp: &TempDir, content: &str) -> (PathBuf, PathBuf) {
    let dir = tmp.path().join("etc");
    fs::create_dir(&dir).unwrap();
    let file = dir.join("app.yaml");
    fs::write(&file, content).unwrap();
    (dir, file)
}

/// reinit watching `file` (plain, content `v0`), `UPDATES` updates by `writer`, each exactly
/// one restart.
fn plain_updates(tag: &str, writer: fn(&Path, &[u8])) {
    let tmp = TempDir::new(tag);
    let (_, file) = plain(&tmp, "v0");
    let f = s(&file);
    let mut w = Watch::spawn(&["-w", &f], &["--config", &f]);
    w.assert_config(&f, "v0");
    w.expect_no_restart("the start");
    for i in 1..=UPDATES {
        let v = format!("v{i}");
        writer(&file, v.as_bytes());
        w.expect_restart(&f, &v, &format!("{tag} {i}"));
    }
}

#[test]
fn in_place_write_restarts_once() {
    plain_updates("in-place", kubelet::write_in_place);
}

#[test]
fn editor_save_by_rename_restarts_once() {
    plain_updates("rename", kubelet::write_via_rename);
}

#[test]
fn vim_save_with_backup_restarts_once() {
    plain_updates("vim-backup", kubelet::write_vim_backup);
}

#[test]
fn editor_junk_in_a_watched_dir_is_not_content() {
    // vim's swap file and `4913` write test, backup files, emacs' lock: not keys of the dir.
    let tmp = TempDir::new("editor-junk");
    let (dir, file) = plain(&tmp, "v0");
    let f = s(&file);
    let mut w = Watch::spawn(&["-w", &s(&dir)], &["--config", &f]);
    w.expect_no_restart("the start");
    let junk = [".app.yaml.swp", ".app.yaml.swx", "4913", "other.yaml~", ".#app.yaml"];
    for name in junk {
        kubelet::create_new_file(&dir.join(name), b"junk");
    }
    w.expect_no_restart("editor junk created");
    kubelet::write_vim_backup(&file, b"v1");
    w.expect_restart(&f, "v1", "a vim save among the junk");
    for name in junk {
        kubelet::delete_file(&dir.join(name));
    }
    w.expect_no_restart("editor junk deleted");
    kubelet::write_in_place(&file, b"v2");
    w.expect_restart(&f, "v2", "the sentinel write");
}

#[test]
fn no_op_rewrite_with_the_same_bytes_changes_nothing() {
    let tmp = TempDir::new("noop-rewrite");
    let (_, file) = plain(&tmp, "v0");
    let f = s(&file);
    let mut w = Watch::spawn(&["-w", &f], &["--config", &f]);
    w.expect_no_restart("the start");
    kubelet::write_in_place(&file, b"v0");
    w.expect_no_restart("an in-place rewrite with the same bytes");
    kubelet::write_via_rename(&file, b"v0");
    w.expect_no_restart("a rename-over with the same bytes");
    kubelet::write_vim_backup(&file, b"v0");
    w.expect_no_restart("a vim save with the same bytes");
    kubelet::write_in_place(&file, b"v1");
    w.expect_restart(&f, "v1", "the sentinel write");
    // After a restart too: the reference is what the new app started with.
    kubelet::write_via_rename(&file, b"v1");
    w.expect_no_restart("a rename-over with the same bytes after the restart");
    kubelet::write_in_place(&file, b"v2");
    w.expect_restart(&f, "v2", "the second sentinel write");
}

#[test]
fn change_to_a_key_not_watched_changes_nothing() {
    let tmp = TempDir::new("unwatched-key");
    let (dir, file) = plain(&tmp, "v0");
    let other = dir.join("other.yaml");
    fs::write(&other, "o0").unwrap();
    let f = s(&file);
    let mut w = Watch::spawn(&["-w", &f], &["--config", &f]);
    w.expect_no_restart("the start");
    kubelet::write_in_place(&other, b"o1");
    w.expect_no_restart("an in-place write of another file");
    kubelet::write_via_rename(&other, b"o2");
    w.expect_no_restart("a rename over another file");
    kubelet::delete_then_recreate(&other, b"o3");
    w.expect_no_restart("another file deleted and re-created");
    kubelet::create_new_file(&dir.join("new.yaml"), b"n");
    w.expect_no_restart("a new file next to the watched one");
    kubelet::write_in_place(&file, b"v1");
    w.expect_restart(&f, "v1", "the sentinel write");
}

#[test]
fn attribute_only_change_changes_nothing() {
    let tmp = TempDir::new("attrib");
    let (dir, file) = plain(&tmp, "v0");
    let f = s(&file);
    let mut w = Watch::spawn(&["-w", &f], &["--config", &f]);
    w.expect_no_restart("the start");
    fs::set_permissions(&file, fs::Permissions::from_mode(0o600)).unwrap();
    w.expect_no_restart("chmod 600");
    fs::set_permissions(&file, fs::Permissions::from_mode(0o644)).unwrap();
    w.expect_no_restart("chmod 644");
    touch(&file);
    w.expect_no_restart("touch");
    touch(&dir);
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o750)).unwrap();
    w.expect_no_restart("touch and chmod of the watched file's dir");
    kubelet::write_in_place(&file, b"v1");
    w.expect_restart(&f, "v1", "the sentinel write");
    fs::set_permissions(&file, fs::Permissions::from_mode(0o600)).unwrap();
    touch(&file);
    w.expect_no_restart("chmod and touch after the restart");
    kubelet::write_in_place(&file, b"v2");
    w.expect_restart(&f, "v2", "the second sentinel write");
}

#[test]
fn symlink_retarget_restarts_once() {
    // `ln -sfn releases/rN current`, reinit watching `current`; then an in-place edit of the
    // current target (its dir is watched through the resolved link).
    let tmp = TempDir::new("retarget");
    let releases = tmp.path().join("releases");
    fs::create_dir(&releases).unwrap();
    for i in 0..=UPDATES {
        fs::write(releases.join(format!("r{i}")), format!("release {i}")).unwrap();
    }
    let link = tmp.path().join("current");
    kubelet::retarget_symlink(&link, Path::new("releases/r0"));
    let l = s(&link);
    let mut w = Watch::spawn(&["-w", &l], &["--config", &l]);
    w.assert_config(&l, "release 0");
    w.expect_no_restart("the start");
    for i in 1..=UPDATES {
        kubelet::retarget_symlink(&link, Path::new(&format!("releases/r{i}")));
        w.expect_restart(&l, &format!("release {i}"), &format!("retarget {i}"));
    }
    kubelet::write_in_place(&releases.join(format!("r{UPDATES}")), b"edited");
    w.expect_restart(&l, "edited", "an in-place edit of the link's target");
    kubelet::write_in_place(&releases.join("r0"), b"old release edited");
    w.expect_no_restart("an edit of a former target");
}

#[test]
fn delete_then_recreate_with_new_content_restarts_once() {
    let tmp = TempDir::new("recreate-new");
    let (_, file) = plain(&tmp, "v0");
    let f = s(&file);
    let mut w = Watch::spawn(&["-w", &f], &["--config", &f]);
    w.expect_no_restart("the start");
    kubelet::delete_then_recreate(&file, b"v1");
    w.expect_restart(&f, "v1", "delete + create at once");
    // Missing for a while is no change; back with new content it is.
    kubelet::delete_file(&file);
    w.expect_no_restart("the watched file deleted");
    kubelet::create_new_file(&file, b"v2");
    w.expect_restart(&f, "v2", "the file re-created after a gap");
    kubelet::delete_then_recreate(&file, b"v3");
    w.expect_restart(&f, "v3", "delete + create at once, again");
}

#[test]
fn delete_then_recreate_with_the_same_content_changes_nothing() {
    let tmp = TempDir::new("recreate-same");
    let (_, file) = plain(&tmp, "v0");
    let f = s(&file);
    let mut w = Watch::spawn(&["-w", &f], &["--config", &f]);
    w.expect_no_restart("the start");
    kubelet::delete_then_recreate(&file, b"v0");
    w.expect_no_restart("delete + create with the same bytes");
    kubelet::delete_file(&file);
    w.expect_no_restart("the watched file deleted");
    kubelet::create_new_file(&file, b"v0");
    w.expect_no_restart("the file re-created after a gap with the same bytes");
    kubelet::write_in_place(&file, b"v1");
    w.expect_restart(&f, "v1", "the sentinel write");
}

#[test]
fn path_missing_at_start_is_acted_on_when_it_appears() {
    let tmp = TempDir::new("missing-at-start");
    let dir = tmp.path().join("etc");
    fs::create_dir(&dir).unwrap();
    let file = dir.join("app.yaml");
    let f = s(&file);
    let mut w = Watch::spawn(&["-w", &f], &["--config", &f]);
    w.assert_config(&f, "MISSING");
    w.wait_stderr(&format!("reinit: warning: {f} does not exist yet: waiting for it to appear"), 1);
    w.expect_no_restart("the start without the file");
    kubelet::create_new_file(&file, b"v1");
    w.expect_restart(&f, "v1", "the file appearing");
    for i in 2..=UPDATES {
        let v = format!("v{i}");
        kubelet::write_in_place(&file, v.as_bytes());
        w.expect_restart(&f, &v, &format!("in-place write {i}"));
    }
    assert_eq!(w.stderr_count("does not exist"), 1, "warned once\n{}", w.p.dump());
}

#[test]
fn watched_dir_deleted_and_recreated_restarts_once() {
    let tmp = TempDir::new("dir-recreated");
    let (dir, file) = plain(&tmp, "v0");
    let f = s(&file);
    let mut w = Watch::spawn(&["-w", &s(&dir)], &["--config", &f]);
    w.expect_no_restart("the start");
    let recreate = |content: &str| {
        fs::remove_dir_all(&dir).unwrap();
        fs::create_dir(&dir).unwrap();
        fs::write(&file, content).unwrap();
    };
    recreate("v1");
    w.expect_restart(&f, "v1", "rm -r + mkdir + write");
    // Gone for a while is no change; a prepared dir renamed into place is.
    fs::remove_dir_all(&dir).unwrap();
    w.expect_no_restart("the watched dir deleted");
    let prepared = tmp.path().join("etc.new");
    fs::create_dir(&prepared).unwrap();
    fs::write(prepared.join("app.yaml"), "v2").unwrap();
    fs::rename(&prepared, &dir).unwrap();
    w.expect_restart(&f, "v2", "a prepared dir renamed into place");
    recreate("v3");
    w.expect_restart(&f, "v3", "rm -r + mkdir + write, again");
}

// ---------------------------------------------------------------------------------------------
// --on-change, --validate, --dry-run, --jitter

#[test]
fn on_change_signal_hup_signals_the_app_without_restarting_it() {
    let (_tmp, dir, mut k, file) = app_volume("signal-hup");
    let mut w = Watch::spawn(&["-w", &s(&dir), "--on-change", "signal:HUP"], &["--config", &file]);
    w.expect_no_restart("the start");
    for i in 1..=UPDATES {
        write_app(&mut k, &format!("v{i}"));
        w.p.wait_line(|l: &str| l == "signal 1", DEADLINE);
        w.expect_no_restart(&format!("update {i}"));
        assert_eq!(w.stdout_count("signal 1"), i, "one SIGHUP per update\n{}", w.p.dump());
        assert_eq!(w.p.count("signal "), i, "no other signal\n{}", w.p.dump());
        let pid = w.pid;
        assert_eq!(
            w.stderr_count(&format!("changed: send SIGHUP to the app (pid {pid})")),
            i,
            "{}",
            w.p.dump()
        );
        // The signalled content is the new reference: a later event without a change is nothing.
        touch(Path::new(&file));
        w.expect_no_restart(&format!("a touch after update {i}"));
        assert_eq!(w.p.count("signal "), i, "signalled again without a change\n{}", w.p.dump());
    }
}

#[test]
fn on_change_exit_stops_the_app_and_exits_with_the_code() {
    let (_tmp, _dir, mut k, file) = app_volume("exit-3");
    let mut w = Watch::spawn(&["-w", &file, "--on-change", "exit:3"], &["--config", &file]);
    w.expect_no_restart("the start");
    write_app(&mut k, "v1");
    w.p.wait_line(|l: &str| l == "signal 15", DEADLINE);
    assert_eq!(w.p.wait_code(DEADLINE), 3, "{}", w.p.dump());
    assert_eq!(w.ready_count(), 1, "not restarted\n{}", w.p.dump());
    assert_eq!(w.stderr_count(&format!("{file} (")), 1, "{}", w.p.dump());
}

/// A validator script (run as `/bin/sh SCRIPT {}`, so nothing is exec'ed while a test may still
/// hold it open for writing) that appends its argument to `record` and accepts a file starting
/// with `ok`; otherwise it says why on stderr and exits 1.
fn validator(tmp: &TempDir) -> (String, PathBuf) {
    let record = tmp.path().join("validated");
    let script = tmp.path().join("check.sh");
    fs::write(
        &script,
        format!(
            "echo \"$1\" >> {record}\ncase \"$(cat \"$1\")\" in ok*) exit 0 ;; esac\n\
             echo \"refusing $1: $(cat \"$1\")\" >&2\nexit 1\n",
            record = s(&record)
        ),
    )
    .unwrap();
    (format!("/bin/sh {} {{}}", s(&script)), record)
}

fn record_lines(record: &Path) -> Vec<String> {
    fs::read_to_string(record).unwrap_or_default().lines().map(str::to_string).collect()
}

#[test]
fn validate_failure_leaves_the_app_untouched_until_the_content_changes() {
    let tmp = TempDir::new("validate-fail");
    let (check, record) = validator(&tmp);
    let (_, file) = plain(&tmp, "ok 0");
    let f = s(&file);
    let mut w = Watch::spawn(&["-w", &f, "--validate", &check], &["--config", &f]);
    w.expect_no_restart("the start");
    let rejected = "rejected, the validator exited with 1: refusing";
    let untouched = "; the running app is left untouched";

    kubelet::write_in_place(&file, b"bad 1");
    w.wait_stderr(rejected, 1);
    w.expect_no_restart("refused content");
    let line = w.stderr_lines().into_iter().find(|l| l.contains(rejected)).unwrap();
    assert!(line.starts_with(&format!("reinit: warning: {f} (")), "{line}");
    assert!(line.contains(&format!("{rejected} {f}: bad 1{untouched}")), "{line}");
    assert_eq!(record_lines(&record).len(), 1);

    // The same refused bytes again: not re-validated, still untouched.
    kubelet::write_via_rename(&file, b"bad 1");
    w.expect_no_restart("the refused content written again");
    assert_eq!(record_lines(&record).len(), 1, "re-validated the refused content");

    kubelet::write_in_place(&file, b"bad 2");
    w.wait_stderr(rejected, 2);
    w.expect_no_restart("other refused content");
    assert!(w.stderr_lines().iter().any(|l| l.contains(&format!("{rejected} {f}: bad 2{untouched}"))));

    kubelet::write_in_place(&file, b"ok 3");
    w.expect_restart(&f, "ok 3", "accepted content");
    assert_eq!(record_lines(&record), [f.as_str(); 3], "validated: bad 1, bad 2, ok 3");
    assert_eq!(w.stdout_count("signal 15"), 1, "only the restart stopped the app\n{}", w.p.dump());
    assert_eq!(w.stderr_count(rejected), 2, "{}", w.p.dump());
}

#[test]
fn validate_gets_the_changed_path() {
    let tmp = TempDir::new("validate-path");
    let (check, record) = validator(&tmp);
    let dir = tmp.path().join("etc");
    fs::create_dir(&dir).unwrap();
    let (a, b) = (dir.join("a.yaml"), dir.join("b.yaml"));
    fs::write(&a, "ok a0").unwrap();
    fs::write(&b, "ok b0").unwrap();
    let (fa, fb) = (s(&a), s(&b));
    let mut w =
        Watch::spawn(&["-w", &fa, "-w", &fb, "--validate", &check], &["--config", &fa, "--config", &fb]);
    w.expect_no_restart("the start");
    kubelet::write_in_place(&b, b"ok b1");
    w.expect_restart(&fb, "ok b1", "b changed");
    kubelet::write_in_place(&a, b"ok a2");
    w.expect_restart(&fa, "ok a2", "a changed");
    kubelet::write_in_place(&b, b"ok b3");
    w.expect_restart(&fb, "ok b3", "b changed again");
    assert_eq!(record_lines(&record), [fb.clone(), fa, fb]);
}

/// A kubelet volume (`app.yaml=v0`) and reinit watching it with an app that ignores SIGTERM
/// and a grace far longer than any test: a stop ends only when the test kills the old app.
fn stubborn_app(tag: &str) -> (TempDir, Kubelet, String, Watch) {
    let tmp = TempDir::new(tag);
    let dir = tmp.path().join("volume");
    let mut k = Kubelet::new(&dir, Options::default());
    write_app(&mut k, "v0");
    let file = s(&dir.join("app.yaml"));
    let w = Watch::spawn(&["-w", &s(&dir), "--stop-timeout", "60s"], &["--config", &file, "--ignore-term"]);
    (tmp, k, file, w)
}

/// Update `first`; once the old app got the stop signal, update `second` while it is still
/// there; let the quiet window pass (no start may happen while the old app lives); kill the old
/// app: exactly one start must follow, with `second`.
fn absorbed_update(w: &mut Watch, k: &mut Kubelet, file: &str, first: &str, second: &str) {
    write_app(k, first);
    w.p.wait_line(|l: &str| l == "signal 15", DEADLINE);
    write_app(k, second);
    w.expect_no_restart(&format!("{second} written while the old app is stopping"));
    assert!(alive(w.pid), "the old app ignores SIGTERM and only the test kills it");
    signal_pid(w.pid, libc::SIGKILL);
    w.expect_restart(file, second, &format!("the stop that absorbed {second}"));
    // The new app's content (`second`) is the reference now: an event without a change is nothing.
    touch(Path::new(file));
    w.expect_no_restart(&format!("a touch after the restart with {second}"));
}

#[test]
fn change_while_the_old_app_is_stopping_is_absorbed_into_the_restart() {
    let (_tmp, mut k, file, mut w) = stubborn_app("during-stop");
    w.expect_no_restart("the start");
    for i in 1..=UPDATES {
        absorbed_update(&mut w, &mut k, &file, &format!("v{i}a"), &format!("v{i}b"));
    }
    assert_eq!(w.stderr_count("changed: restarted the app in"), UPDATES, "{}", w.p.dump());
}

/// `(old, new)` short hashes of each `… changed: restarted the app …` line.
fn restart_hashes(w: &mut Watch) -> Vec<(String, String)> {
    w.stderr_lines()
        .iter()
        .filter(|l| l.contains(") changed: restarted the app in "))
        .map(|l| {
            let inner = &l[l.find(" (").unwrap() + 2..l.find(") changed: ").unwrap()];
            let (old, new) = inner.split_once('→').unwrap_or_else(|| panic!("{l}"));
            (old.to_string(), new.to_string())
        })
        .collect()
}

#[test]
fn restart_line_names_the_content_the_new_app_started_with() {
    // After a restart that absorbed a second update, the line must not name the first
    // update's hash as the new content: the next line's old hash (the content the app ran)
    // must be the previous line's new one.
    let (_tmp, mut k, file, mut w) = stubborn_app("absorbed-line");
    w.expect_no_restart("the start");
    absorbed_update(&mut w, &mut k, &file, "v1a", "v1b");
    write_app(&mut k, "v2");
    w.p.wait_line(|l: &str| l == "signal 15", DEADLINE);
    signal_pid(w.pid, libc::SIGKILL);
    w.expect_restart(&file, "v2", "a plain update");
    let lines = restart_hashes(&mut w);
    assert_eq!(lines.len(), 2, "{}", w.p.dump());
    assert_eq!(
        lines[0].1,
        lines[1].0,
        "the first restart's line names content the app never started with\n{}",
        w.p.dump()
    );
}

#[test]
fn change_after_the_new_apps_hash_costs_exactly_one_more_restart() {
    let (_tmp, dir, mut k, file) = app_volume("after-hash");
    // A slow start: the second update lands while the new app is still starting, after reinit
    // hashed the content that app got.
    let mut p =
        Proc::spawn(reinit_cmd(with_app(&["-w", &s(&dir)], &["--config", &file, "--start-delay", "500"])));
    let config = |v: &str| format!("config {file}={v}");
    let starts = |p: &mut Proc| p.count(|l: &str| l.starts_with("config "));
    p.wait_line(is_ready, DEADLINE);
    for i in 1..=2 {
        let (first, second) = (format!("v{i}a"), format!("v{i}b"));
        write_app(&mut k, &first);
        p.wait_line(config(&first), DEADLINE); // the new app runs: its content was hashed
        write_app(&mut k, &second);
        p.wait_line(config(&second), DEADLINE);
        let want = 1 + 2 * i;
        let extra = poll_until(QUIET, || starts(&mut p) > want);
        assert!(!extra && starts(&mut p) == want, "expected {want} starts\n{}", p.dump());
    }
    let lines = p.lines_so_far();
    let configs: Vec<&String> = lines.iter().filter(|l| l.starts_with("config ")).collect();
    let want: Vec<String> = ["v0", "v1a", "v1b", "v2a", "v2b"].iter().map(|v| config(v)).collect();
    assert_eq!(configs, want.iter().collect::<Vec<_>>(), "{}", p.dump());
}

#[test]
fn dry_run_logs_the_action_once_and_does_nothing() {
    let (_tmp, dir, mut k, file) = app_volume("dry-run");
    let mut w = Watch::spawn(&["-w", &s(&dir), "--dry-run"], &["--config", &file]);
    w.expect_no_restart("the start");
    let would = "changed: would restart the app (--dry-run)";
    for i in 1..=UPDATES {
        write_app(&mut k, &format!("v{i}"));
        w.wait_stderr(would, i);
        w.expect_no_restart(&format!("dry-run update {i}"));
        // The logged content is the new reference: a later event without a change is nothing.
        touch(Path::new(&file));
        w.expect_no_restart(&format!("a touch after dry-run update {i}"));
        assert_eq!(w.stderr_count(would), i, "logged once per update\n{}", w.p.dump());
        assert!(w.stderr_lines().iter().all(|l| !l.contains("restarted")), "{}", w.p.dump());
    }
    assert_eq!(w.p.count("signal "), 0, "the app was not signalled\n{}", w.p.dump());
    assert_eq!(w.stderr_lines().len(), UPDATES, "nothing else logged\n{}", w.p.dump());
}

#[test]
fn jitter_still_acts_exactly_once() {
    let (_tmp, dir, mut k, file) = app_volume("jitter");
    let mut w = Watch::spawn(&["-w", &s(&dir), "--jitter", "1s"], &["--config", &file]);
    // A second action would come up to a whole jitter later.
    w.quiet = Duration::from_millis(1500);
    w.expect_no_restart("the start");
    expect_restart_per_update(&mut w, &mut k, &file, "jittered update");
}

#[test]
fn restart_waits_for_the_old_apps_whole_group_to_be_gone() {
    let (_tmp, dir, mut k, file) = app_volume("group");
    // The app exits on TERM at once; its helper (same group) ignores TERM, so only the SIGKILL
    // after the 1 s grace ends the old group.
    let mut w = Watch::spawn(
        &["-w", &s(&dir), "--stop-timeout", "1s"],
        &["--config", &file, "--helper", "--helper-ignore-term"],
    );
    let mut helper = num_field(&w.p.wait_line("helper pid=", DEADLINE), "pid");
    w.expect_no_restart("the start");
    for i in 1..=UPDATES {
        let (old_app, old_helper) = (w.pid, helper);
        let v = format!("v{i}");
        write_app(&mut k, &v);
        let (ready, _) = w.p.wait_line_at(is_ready, DEADLINE);
        // At the new start, nothing of the old group may be left.
        let (app_alive, helper_alive) = (alive(old_app), alive(old_helper));
        assert!(
            !app_alive && !helper_alive,
            "update {i}: new app started while the old group lived (app {old_app}: {app_alive}, \
             helper {old_helper}: {helper_alive})\n{}",
            w.p.dump()
        );
        w.starts += 1;
        w.pid = num_field(&ready, "pid");
        w.assert_config(&file, &v);
        helper = num_field(&w.p.wait_line("helper pid=", DEADLINE), "pid");
        w.assert_quiet(&format!("update {i}"));
    }
    assert_eq!(w.stderr_count("did not stop within"), UPDATES, "{}", w.p.dump());
}

#[test]
fn each_action_logs_exactly_one_info_line() {
    let (_tmp, _dir, mut k, file) = app_volume("info-line");
    let mut w = Watch::spawn(&["-w", &file], &["--config", &file]);
    w.expect_no_restart("the start");
    let mut last_new: Option<String> = None;
    for i in 1..=UPDATES {
        let v = format!("v{i}");
        write_app(&mut k, &v);
        w.expect_restart(&file, &v, &format!("update {i}"));
        let lines = w.stderr_lines();
        assert_eq!(lines.len(), i, "one line per action, nothing else\n{}", w.p.dump());
        // reinit: <path> (<old>→<new>) changed: restarted the app in <N> ms (pid <pid>)
        let line = &lines[i - 1];
        let rest = line.strip_prefix(&format!("reinit: {file} (")).unwrap_or_else(|| panic!("{line}"));
        let (hashes, rest) =
            rest.split_once(") changed: restarted the app in ").unwrap_or_else(|| panic!("{line}"));
        let (old, new) = hashes.split_once('→').unwrap_or_else(|| panic!("{line}"));
        assert_ne!(old, new, "{line}");
        if let Some(prev) = &last_new {
            assert_eq!(old, prev, "the old hash is the previous update's new one: {line}");
        }
        last_new = Some(new.to_string());
        let (ms, pid) = rest.split_once(" ms (pid ").unwrap_or_else(|| panic!("{line}"));
        assert!(ms.parse::<u64>().is_ok(), "{line}");
        assert_eq!(pid, format!("{})", w.pid), "names the new app's pid: {line}");
    }
}

#[test]
fn rename_of_data_to_new_app_start_latency() {
    const N: usize = 20;
    let (_tmp, dir, mut k, file) = app_volume("latency");
    let mut w = Watch::spawn(&["-w", &s(&dir)], &["--config", &file]);
    w.quiet = Duration::from_millis(300);
    w.expect_no_restart("the start");
    let (mut delays, mut writes) = (Vec::new(), Vec::new());
    for i in 1..=N {
        let v = format!("v{i}");
        let before = Instant::now();
        write_app(&mut k, &v); // rename(..data_tmp, ..data) happens inside, near the end
        let after = Instant::now();
        let ready = w.expect_restart(&file, &v, &format!("update {i}"));
        delays.push(ready.duration_since(after));
        writes.push(after.duration_since(before));
    }
    let mut sorted = delays.clone();
    sorted.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    eprintln!(
        "rename(..data) -> new app ready, default debounce, {N} updates: p50 {:.1} ms, p90 {:.1} ms, \
         max {:.1} ms, min {:.1} ms (kubelet write itself: max {:.2} ms); all: {:?}",
        ms(sorted[N / 2]),
        ms(sorted[N * 9 / 10]),
        ms(sorted[N - 1]),
        ms(sorted[0]),
        ms(*writes.iter().max().unwrap()),
        delays.iter().map(|d| ms(*d).round() as u64).collect::<Vec<_>>()
    );
    assert!(sorted[N / 2] < Duration::from_secs(2), "median {:?}", sorted[N / 2]);
}

// ---------------------------------------------------------------------------------------------
// Queue overflow, inotify limits, subPath

#[test]
fn queue_overflow_rescans_and_catches_a_lost_change() {
    // reinit is frozen (SIGSTOP) while a flood of events overflows the inotify queue (16384 by
    // default); the change made after it is lost as an event: only the overflow's rescan can
    // find it.
    let max: usize =
        fs::read_to_string("/proc/sys/fs/inotify/max_queued_events").unwrap().trim().parse().unwrap();
    let tmp = TempDir::new("overflow");
    let dir = tmp.path().join("etc");
    fs::create_dir(&dir).unwrap();
    let file = dir.join("app.yaml");
    let noise = [dir.join("noise1"), dir.join("noise2")];
    fs::write(&file, "v0").unwrap();
    for n in &noise {
        fs::write(n, "n").unwrap();
    }
    let f = s(&file);
    let mut w = Watch::spawn(&["-w", &f, "--on-change", "signal:HUP"], &["--config", &f]);
    w.expect_no_restart("the start");
    kubelet::write_in_place(&file, b"v1");
    w.wait_stderr("changed: send SIGHUP to the app", 1);
    let reinit = w.p.pid();
    signal_pid(reinit, libc::SIGSTOP);
    // Events on names reinit does not watch (so only the overflow can make it look again),
    // alternating between two files so the kernel cannot merge consecutive identical events.
    for i in 0..=max {
        let mode = if i % 4 < 2 { 0o644 } else { 0o640 };
        fs::set_permissions(&noise[i % 2], fs::Permissions::from_mode(mode)).unwrap();
    }
    kubelet::write_in_place(&file, b"v2");
    signal_pid(reinit, libc::SIGCONT);
    w.wait_stderr("the inotify queue overflowed", 1);
    w.wait_stderr("changed: send SIGHUP to the app", 2);
    w.expect_no_restart("the overflow");
    assert_eq!(w.stdout_count("signal 1"), 2, "v1, then v2 found by the rescan\n{}", w.p.dump());
}

/// Runs reinit in a new user namespace whose inotify `limit` (a `/proc/sys/user` file) is 0.
fn under_inotify_limit(limit: &str, tmp: &TempDir) -> Proc {
    let mut cmd = Command::new("unshare");
    cmd.args(["--user", "--map-root-user", "--", "/bin/sh", "-c"]).arg(format!(
        "echo 0 > /proc/sys/user/{limit} && exec \"$0\" -w {} -- {}",
        s(tmp.path()),
        fake_app()
    ));
    cmd.arg(crate::util::reinit_bin());
    prepare(&mut cmd);
    Proc::spawn(cmd)
}

#[test]
fn out_of_inotify_instances_is_a_clear_error() {
    let tmp = TempDir::new("max-instances");
    let mut p = under_inotify_limit("max_inotify_instances", &tmp);
    assert_eq!(p.wait_code(DEADLINE), 125, "{}", p.dump());
    let err = p.stderr_so_far();
    assert!(err.contains("reinit: error: ") && err.contains("fs.inotify.max_user_instances"), "{err}");
    assert_eq!(p.count("ready"), 0, "nothing started\n{}", p.dump());
}

#[test]
fn out_of_inotify_watches_is_a_clear_error() {
    let tmp = TempDir::new("max-watches");
    let mut p = under_inotify_limit("max_inotify_watches", &tmp);
    assert_eq!(p.wait_code(DEADLINE), 125, "{}", p.dump());
    let err = p.stderr_so_far();
    assert!(err.contains("reinit: error: ") && err.contains("fs.inotify.max_user_watches"), "{err}");
    assert_eq!(p.count("ready"), 0, "nothing started\n{}", p.dump());
}

#[test]
fn subpath_mount_is_warned_about_once() {
    // What a `subPath: app.yaml` mount looks like: a bind of the key's file inside the kubelet's
    // timestamp dir, onto the path the app reads.
    let tmp = TempDir::new("subpath");
    let volume = tmp.path().join("volume");
    let mut k = Kubelet::new(&volume, Options::default());
    write_app(&mut k, "v0");
    let source = k.data_dir().join("app.yaml");
    let target = tmp.path().join("app.yaml");
    fs::write(&target, "").unwrap();
    let t = s(&target);
    let mut cmd = Command::new("unshare");
    cmd.args(["--mount", "--propagation", "private", "--", "/bin/sh", "-c"])
        .arg(format!("mount --bind {} {t} && exec \"$0\" -w {t} -- {} --config {t}", s(&source), fake_app()))
        .arg(crate::util::reinit_bin());
    prepare(&mut cmd);
    let mut w = Watch::spawn_cmd(cmd);
    w.assert_config(&t, "v0");
    w.wait_stderr(&format!("reinit: warning: {t} is a subPath mount"), 1);
    w.expect_no_restart("the start");
    let lines = w.stderr_lines();
    assert_eq!(lines.len(), 1, "warned once, nothing else\n{}", w.p.dump());
    assert!(lines[0].contains("never update"), "says why: {}", lines[0]);
}

// ---------------------------------------------------------------------------------------------
// Acting at the kubelet's commit

#[test]
fn the_data_swap_acts_at_once_and_an_editor_save_waits_for_the_debounce() {
    // A debounce far longer than the deadline: only the commit can explain a prompt restart.
    let (_tmp, dir, mut k, file) = app_volume("commit");
    let mut w = Watch::spawn(&["-w", &s(&dir), "--debounce", "60s"], &["--config", &file]);
    for i in 1..=3 {
        let v = format!("v{i}");
        write_app(&mut k, &v);
        w.p.wait_line(is_ready, DEADLINE);
        w.starts += 1;
        w.assert_config(&file, &v);
    }
    // Keys added and removed in one update: one restart, at the commit, with the whole update.
    let extra = dir.join("extra.yaml");
    k.write(&[("app.yaml", b"v4"), ("extra.yaml", b"x")]);
    w.p.wait_line(is_ready, DEADLINE);
    w.starts += 1;
    w.assert_config(&file, "v4");
    assert!(extra.exists());
    k.write(&[("app.yaml", b"v4")]);
    w.p.wait_line(is_ready, DEADLINE);
    w.starts += 1;
    assert_eq!(w.stderr_count("extra.yaml ("), 2, "added, then removed\n{}", w.p.dump());
    // A plain file next to it, saved by an editor, waits for the debounce.
    let tmp = TempDir::new("commit-plain");
    let plain = tmp.path().join("app.conf");
    fs::write(&plain, "p0").unwrap();
    let f = s(&plain);
    let mut w2 = Watch::spawn(&["-w", &f, "--debounce", "2s"], &["--config", &f]);
    kubelet::write_via_rename(&plain, b"p1");
    let early = poll_until(Duration::from_millis(1000), || w2.ready_count() > 1);
    assert!(!early, "acted before the debounce\n{}", w2.p.dump());
    w2.expect_restart(&f, "p1", "the editor save");
}
