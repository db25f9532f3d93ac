//! The README's options table and exit-status table against `reinit --help`, so neither can
//! drift from what the binary does.

use crate::util::reinit_cmd;
use std::collections::BTreeSet;

fn readme() -> String {
    std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap()
}

fn help() -> String {
    let out = reinit_cmd(["--help"]).output().unwrap();
    assert!(out.status.success(), "--help failed");
    String::from_utf8(out.stdout).unwrap()
}

/// The rows of the first table after `heading`.
fn table_rows(text: &str, heading: &str) -> Vec<Vec<String>> {
    let section = &text[text.find(heading).unwrap_or_else(|| panic!("README has no {heading}"))..];
    section
        .lines()
        .skip_while(|l| !l.starts_with('|'))
        .take_while(|l| l.starts_with('|'))
        .skip(2)
        .map(|l| l.trim_matches('|').split(" | ").map(|c| c.trim().to_string()).collect())
        .collect()
}

/// Every `--long` flag named in `text`.
fn long_flags(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut rest = text;
    while let Some(i) = rest.find("--") {
        let name: String =
            rest[i + 2..].chars().take_while(|c| c.is_ascii_lowercase() || *c == '-').collect();
        if name.len() > 1 {
            out.insert(name);
        }
        rest = &rest[i + 2..];
    }
    out
}

#[test]
fn options_table_matches_help() {
    let help = help();
    let options = &help[help.find("Options:").unwrap()..help.find("Exit status:").unwrap()];
    let in_help: BTreeSet<String> = options
        .lines()
        .filter_map(|l| l.split_whitespace().find(|w| w.starts_with("--")))
        .map(|w| w.trim_start_matches("--").trim_end_matches(['.', ',']).to_string())
        .collect();
    let rows = table_rows(&readme(), "## Options");
    let in_readme: BTreeSet<String> = rows.iter().flat_map(|r| long_flags(&r[0])).collect();
    assert_eq!(in_readme, in_help, "README options table vs --help");
    for row in &rows {
        for flag in long_flags(&row[0]) {
            if matches!(flag.as_str(), "help" | "version") {
                continue;
            }
            let var = format!("REINIT_{}", flag.to_uppercase().replace('-', "_"));
            assert!(row[1].contains(&var), "README row for --{flag} does not name {var}: {row:?}");
        }
    }
    // defaults shown by --help are the README's
    for row in &rows {
        let Some(flag) = long_flags(&row[0]).into_iter().next() else { continue };
        let Some(line) = options.lines().find(|l| l.contains(&format!("--{flag} "))) else { continue };
        if let Some(d) = line.split("[default: ").nth(1) {
            let default = d.trim_end_matches(']').trim();
            assert!(
                row[2].replace('`', "").contains(default),
                "--{flag}: help says default {default}, README says {}",
                row[2]
            );
        }
    }
}

#[test]
fn exit_status_table_matches_help() {
    let help = help();
    let exit = &help[help.find("Exit status:").unwrap()..];
    let rows = table_rows(&readme(), "## Exit status");
    for code in ["128+N", "126", "127", "2", "125", "CODE"] {
        assert!(rows.iter().any(|r| r[0].contains(code)), "README exit table lacks {code}");
        assert!(exit.lines().any(|l| l.trim_start().starts_with(code)), "--help exit table lacks {code}");
    }
    assert_eq!(rows.len(), 7, "README exit table: {rows:?}");
}
