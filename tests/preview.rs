//! Snapshots of `opsplan preview` and `opsplan graph` on the shipped example plan, run from
//! the repository root so the plan path in the output is stable.

use std::path::Path;
use std::process::Command;

const PLAN: &str = "plans/examples/archive-folder.yaml";

/// Runs the binary from the repository root; returns stdout, asserting exit 0.
fn opsplan(args: &[&str]) -> String {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let out = Command::new(env!("CARGO_BIN_EXE_opsplan"))
        .args(args)
        .current_dir(&root)
        .env("NO_COLOR", "1")
        .output()
        .expect("run opsplan");
    let stdout = String::from_utf8(out.stdout).expect("utf-8 stdout");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "opsplan {args:?} failed ({}):\n{stderr}",
        out.status
    );
    assert!(
        stderr.is_empty(),
        "opsplan {args:?} printed to stderr:\n{stderr}"
    );
    stdout
}

fn json(args: &[&str]) -> serde_json::Value {
    serde_json::from_str(&opsplan(args)).expect("preview --format json prints JSON")
}

#[test]
fn preview_text() {
    insta::assert_snapshot!(opsplan(&["preview", PLAN]));
}

#[test]
fn preview_json() {
    insta::assert_json_snapshot!(json(&["preview", PLAN, "--format", "json"]));
}

#[test]
fn preview_fail_at_checksum_text() {
    insta::assert_snapshot!(opsplan(&["preview", PLAN, "--fail-at", "checksum"]));
}

#[test]
fn preview_fail_at_checksum_json() {
    let v = json(&["preview", PLAN, "--fail-at", "checksum", "--format", "json"]);
    insta::assert_json_snapshot!(v["fail_at"]);
}

#[test]
fn preview_fail_at_flaky_check_text() {
    insta::assert_snapshot!(opsplan(&["preview", PLAN, "--fail-at", "flaky-check"]));
}

#[test]
fn preview_fail_at_flaky_check_json() {
    let v = json(&[
        "preview",
        PLAN,
        "--fail-at",
        "flaky-check",
        "--format",
        "json",
    ]);
    insta::assert_json_snapshot!(v["fail_at"]);
}

#[test]
fn preview_markdown() {
    insta::assert_snapshot!(opsplan(&["preview", PLAN, "--format", "markdown"]));
}

#[test]
fn preview_markdown_fail_at_checksum() {
    insta::assert_snapshot!(opsplan(&[
        "preview",
        PLAN,
        "--fail-at",
        "checksum",
        "--format",
        "markdown"
    ]));
}

#[test]
fn graph_dot() {
    insta::assert_snapshot!(opsplan(&["graph", PLAN, "--format", "dot"]));
}

#[test]
fn graph_mermaid() {
    insta::assert_snapshot!(opsplan(&["graph", PLAN, "--format", "mermaid"]));
}

/// The failure path in the JSON is the same as the rollback map's entry for that step, and
/// the text shows it in order.
#[test]
fn fail_at_agrees_with_the_rollback_map() {
    for step in [
        "prepare",
        "mark-in-progress",
        "flaky-check",
        "archive",
        "checksum",
        "fail-on-purpose",
        "clear-marker",
        "report",
    ] {
        let v = json(&["preview", PLAN, "--fail-at", step, "--format", "json"]);
        let entry = v["rollback_map"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["step"] == step)
            .unwrap_or_else(|| panic!("{step} not in the rollback map"));
        assert_eq!(v["fail_at"]["undo"], entry["undo"], "{step}");
        assert_eq!(v["fail_at"]["cleanup"], entry["cleanup"], "{step}");
    }
}

#[test]
fn fail_at_unknown_step_suggests_the_closest() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let out = Command::new(env!("CARGO_BIN_EXE_opsplan"))
        .args(["preview", PLAN, "--fail-at", "checksun"])
        .current_dir(&root)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("did you mean `checksum`?"), "{stderr}");
}
