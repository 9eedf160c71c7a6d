//! The dop lab (issue 6): a miniature Deckhouse Observability Platform for the drills in
//! tests/drill_dop.rs. See tests/lab/dop/README.md for what is real and what is a stand-in.

pub mod cluster;
pub mod pg;
pub mod s3;
pub mod seed;

use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

pub use opsplan_testkit::bin::{self, Ran};

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

pub fn sha256(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

/// Every regular file below `dir` (relative path with `/` -> content), skipping `skip`.
pub fn read_tree(dir: &Path, skip: &[&str]) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    for entry in walkdir::WalkDir::new(dir) {
        let entry = entry.unwrap_or_else(|e| panic!("walk {}: {e}", dir.display()));
        if !entry.file_type().is_file() {
            continue;
        }
        let rel = entry
            .path()
            .strip_prefix(dir)
            .expect("below the walked folder")
            .to_string_lossy()
            .replace('\\', "/");
        if skip.contains(&rel.as_str()) {
            continue;
        }
        let data = std::fs::read(entry.path())
            .unwrap_or_else(|e| panic!("read {}: {e}", entry.path().display()));
        out.insert(rel, data);
    }
    out
}

/// The differences between two `key -> content` maps, named (at most 10 listed), or None.
pub fn differences(
    what: &str,
    want: &BTreeMap<String, Vec<u8>>,
    have: &BTreeMap<String, Vec<u8>>,
) -> Option<String> {
    let mut diffs = Vec::new();
    for (k, v) in want {
        match have.get(k) {
            None => diffs.push(format!("missing {k}")),
            Some(h) if h != v => diffs.push(format!(
                "{k} differs (sha256 {} expected, {} found)",
                sha256(v),
                sha256(h)
            )),
            _ => {}
        }
    }
    for k in have.keys().filter(|k| !want.contains_key(*k)) {
        diffs.push(format!("unexpected {k}"));
    }
    if diffs.is_empty() {
        return None;
    }
    let n = diffs.len();
    diffs.truncate(10);
    Some(format!(
        "{what}: {n} difference(s): {}{}",
        diffs.join("; "),
        if n > 10 { "; …" } else { "" }
    ))
}

/// Runs the real binary from the repository root; killed after `limit`.
pub fn opsplan(args: &[String], env: &[(String, String)], limit: Duration) -> Ran {
    let mut cmd = Command::new(bin::path());
    cmd.args(args)
        .current_dir(repo_root())
        .env("NO_COLOR", "1")
        .env_remove("OPSPLAN_LOG")
        .env_remove("KUBECONFIG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    bin::run_within(cmd, limit)
}
