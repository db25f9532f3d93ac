//! `size`: bytes and linkage of each binary.

use crate::*;

pub(crate) fn linkage(path: &Path) -> String {
    let out = Command::new("file").arg("-L").arg("-b").arg(path).output();
    let desc = out.map(|o| String::from_utf8_lossy(&o.stdout).into_owned()).unwrap_or_default();
    let pie = if desc.contains("pie executable") { ", PIE" } else { "" };
    if desc.contains("statically linked") || desc.contains("static-pie linked") {
        format!("static{pie}")
    } else if desc.contains("dynamically linked") {
        format!("dynamic{pie}: + libc.so.6")
    } else if desc.is_empty() {
        "?".into()
    } else {
        desc.split(',').next().unwrap_or("?").trim().to_string()
    }
}

pub(crate) fn file_bytes(path: &Path) -> Option<f64> {
    fs::metadata(path).ok().map(|m| m.len() as f64)
}

pub(crate) fn sizes(inits: &[Init], watchers: &[Watcher], report: &mut Report) {
    for (i, init) in inits.iter().enumerate() {
        report.inits[i].bytes = file_bytes(&init.path);
        report.inits[i].linkage = linkage(&init.path);
    }
    for (i, w) in watchers.iter().enumerate() {
        report.watch[i].bytes = file_bytes(&w.path);
        report.watch[i].linkage = linkage(&w.path);
    }
}
