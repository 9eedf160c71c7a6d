//! Helpers shared by the durable-run tests (crash matrix, locks, signals, secrets): the real
//! binary run in a temp folder whose journal and lock folders are private to the test.

#![allow(dead_code)]

pub use opsplan_testkit::bin::{self, process_gone, run, wait_for, Running};
use std::path::{Path, PathBuf};
use std::process::Command;

pub const BIN: &str = env!("CARGO_BIN_EXE_opsplan");

pub fn repo(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(rel)
}

pub fn fixture(name: &str) -> PathBuf {
    repo("tests/fixtures/durable").join(name)
}

/// `opsplan ARGS` in `work`, with the journal and locks under `work/.opsplan`.
pub fn opsplan(work: &Path, args: &[&str]) -> Command {
    let mut cmd = bin::command(&work.join(".opsplan"));
    cmd.args(args).current_dir(work);
    cmd
}

/// The single run id in `work`'s journal folder.
pub fn only_run(work: &Path) -> String {
    let mut ids: Vec<String> = std::fs::read_dir(work.join(".opsplan/runs"))
        .expect("journal folder")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(ids.len(), 1, "expected one run: {ids:?}");
    ids.remove(0)
}

/// `opsplan runs show RUN --format json`.
pub fn show(work: &Path, run: &str) -> serde_json::Value {
    let r = self::run(opsplan(work, &["runs", "show", run, "--format", "json"]));
    assert_eq!(r.code, 0, "{}", r.all());
    serde_json::from_str(&r.stdout).unwrap_or_else(|e| panic!("{e}: {}", r.stdout))
}
