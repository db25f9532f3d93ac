//! The tools measured: the inits and the config watchers found on `PATH`, and how each is run.

use crate::*;

// Tools

/// An init and how it is invoked.
#[derive(Clone)]
pub(crate) struct Init {
    pub(crate) name: &'static str,
    pub(crate) path: PathBuf,
    /// Options before the command when not PID 1.
    pub(crate) plain: Vec<&'static str>,
    /// Options before the command as PID 1.
    pub(crate) pid1: Vec<&'static str>,
}

impl Init {
    pub(crate) fn argv(&self, pid1: bool, cmd: &[String]) -> Vec<String> {
        let mut v = vec![self.path.display().to_string()];
        v.extend(if pid1 { &self.pid1 } else { &self.plain }.iter().map(|s| s.to_string()));
        v.extend(cmd.iter().cloned());
        v
    }
}

/// `argv` as PID 1 of a new PID namespace (with its own /proc).
pub(crate) fn under_unshare(argv: &[String]) -> Vec<String> {
    let mut v: Vec<String> = ["unshare", "--pid", "--fork", "--mount-proc"].map(String::from).to_vec();
    v.extend(argv.iter().cloned());
    v
}

pub(crate) fn which(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0))
}

pub(crate) fn inits(o: &Opts, notes: &mut Vec<String>) -> Vec<Init> {
    let mut out = vec![Init { name: "reinit", path: o.reinit.clone(), plain: vec!["--"], pid1: vec!["--"] }];
    let peers: [(&'static str, Vec<&'static str>, Vec<&'static str>); 4] = [
        ("tini-static", vec!["-s", "--"], vec!["--"]),
        ("tini", vec!["-s", "--"], vec!["--"]),
        ("dumb-init", vec![], vec![]),
        ("catatonit", vec!["--"], vec!["--"]),
    ];
    for (name, plain, pid1) in peers {
        match which(name) {
            Some(path) => out.push(Init { name, path, plain, pid1 }),
            None => notes.push(format!("{name} is not installed: left out")),
        }
    }
    out
}

/// A config watcher wrapping an app.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum WatcherKind {
    Reinit,
    Watchexec,
    Entr,
}

#[derive(Clone)]
pub(crate) struct Watcher {
    pub(crate) name: &'static str,
    pub(crate) kind: WatcherKind,
    pub(crate) path: PathBuf,
}

impl Watcher {
    /// The command line and the stdin to give it, watching `dir` (whose `app.conf` is the file
    /// of interest) and running `cmd`.
    pub(crate) fn command(&self, dir: &Path, cmd: &[String], scratch: &Path) -> Res<(Vec<String>, Stdio)> {
        let mut v = vec![self.path.display().to_string()];
        let dir_s = dir.display().to_string();
        let stdin = match self.kind {
            WatcherKind::Reinit => {
                v.extend(["--watch".to_string(), dir_s, "--".to_string()]);
                Stdio::null()
            }
            WatcherKind::Watchexec => {
                v.extend(["--restart".to_string(), "--watch".to_string(), dir_s, "--".to_string()]);
                Stdio::null()
            }
            WatcherKind::Entr => {
                // `echo DIR/app.conf | entr -rn APP`: the file list comes on stdin.
                v.push("-rn".to_string());
                let list = scratch.join(format!("entr-list-{}", unique()));
                fs::write(&list, format!("{}\n", dir.join("app.conf").display()))?;
                Stdio::from(fs::File::open(&list)?)
            }
        };
        v.extend(cmd.iter().cloned());
        Ok((v, stdin))
    }
}

pub(crate) fn watchers(o: &Opts, notes: &mut Vec<String>) -> Vec<Watcher> {
    let mut out = vec![Watcher { name: "reinit", kind: WatcherKind::Reinit, path: o.reinit.clone() }];
    let watchexec = o.watchexec.clone().filter(|p| p.is_file()).or_else(|| which("watchexec"));
    match watchexec {
        Some(path) => out.push(Watcher { name: "watchexec", kind: WatcherKind::Watchexec, path }),
        None => notes.push("watchexec is not installed: left out of the watch figures".into()),
    }
    match which("entr") {
        Some(path) => out.push(Watcher { name: "entr", kind: WatcherKind::Entr, path }),
        None => notes.push("entr is not installed: left out of the watch figures".into()),
    }
    out
}
