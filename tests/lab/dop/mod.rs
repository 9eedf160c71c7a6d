//! The dop lab (issue 6): a miniature Deckhouse Observability Platform for the drills in
//! tests/drill_dop.rs. See tests/lab/dop/README.md for what is real and what is a stand-in.

pub mod cluster;
pub mod pg;
pub mod s3;
pub mod seed;

use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

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

/// One `opsplan run`, its exit code and output (stdout then stderr).
pub struct Ran {
    pub code: i32,
    pub out: String,
}

impl Ran {
    /// The JSON events of a `--log-format json` run.
    pub fn events(&self) -> Vec<serde_json::Value> {
        self.out
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter_map(|v| match &v["event"] {
                serde_json::Value::String(s) => serde_json::from_str(s).ok(),
                serde_json::Value::Object(_) => Some(v["event"].clone()),
                _ => None,
            })
            .collect()
    }

    /// The `step_finished` events of step `id` (forward, then cleanup phase), in order.
    pub fn finished(&self, id: &str) -> Vec<serde_json::Value> {
        self.events()
            .into_iter()
            .filter(|e| e["event"] == "step_finished" && e["step"] == id)
            .collect()
    }

    /// The status (`succeeded`, `failed`, `skipped`, …) of step `id`'s first finish, or
    /// `not run`.
    pub fn status(&self, id: &str) -> String {
        self.finished(id)
            .first()
            .and_then(|e| e["status"].as_str().map(str::to_string))
            .unwrap_or_else(|| "not run".into())
    }

    /// The run's final status from `run_finished`.
    pub fn run_status(&self) -> String {
        self.events()
            .into_iter()
            .find(|e| e["event"] == "run_finished")
            .and_then(|e| e["status"].as_str().map(str::to_string))
            .unwrap_or_else(|| "no run_finished event".into())
    }
}

/// Runs the real binary from the repository root; killed after `limit`.
pub fn opsplan(args: &[String], env: &[(String, String)], limit: Duration) -> Ran {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_opsplan"));
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
    let mut child = cmd.spawn().expect("start opsplan");
    let mut stdout = child.stdout.take().expect("stdout");
    let mut stderr = child.stderr.take().expect("stderr");
    let out_reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stdout.read_to_string(&mut s);
        s
    });
    let err_reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });
    let started = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait for opsplan") {
            break s;
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("opsplan {args:?} ran longer than {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Ran {
        code: status.code().unwrap_or(-1),
        out: format!(
            "{}{}",
            out_reader.join().unwrap_or_default(),
            err_reader.join().unwrap_or_default()
        ),
    }
}
