//! `opsplan validate` for CI: a folder is searched for opsplan files only (other YAML and
//! hidden files are skipped and counted), no plan found is an error, and the machine
//! formats (SARIF 2.1.0, GitHub annotations) carry every diagnostic with its place.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Runs the binary from the repository root (stable paths in the output).
fn validate(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_opsplan"))
        .arg("validate")
        .args(args)
        .current_dir(repo_root())
        .env("NO_COLOR", "1")
        .output()
        .expect("run opsplan")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8(bytes.to_vec()).expect("utf-8")
}

const REPO: &str = "tests/fixtures/validate/repo";

#[test]
fn a_folder_is_searched_for_opsplan_files_only() {
    let out = validate(&[REPO, "--format", "json"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    // ops/backup.yaml and ops/ok.yml; not k8s/deployment.yaml, not the hidden files.
    assert_eq!(json["files"], 2);
    assert_eq!(
        json["skipped"],
        serde_json::json!({"other_yaml": 1, "hidden": 2})
    );
    let files: std::collections::BTreeSet<&str> = json["diagnostics"]
        .as_array()
        .expect("diagnostics")
        .iter()
        .filter_map(|d| d["file"].as_str())
        .collect();
    assert_eq!(
        files.into_iter().collect::<Vec<_>>(),
        ["tests/fixtures/validate/repo/ops/backup.yaml"]
    );
    assert_eq!(
        text(&out.stderr),
        "2 file(s): 2 error(s), 1 warning(s); skipped 1 YAML file(s) that are not opsplan \
         files and 2 hidden file(s) or folder(s)\n"
    );
}

#[test]
fn a_file_named_on_the_command_line_is_always_checked() {
    let out = validate(&[&format!("{REPO}/k8s/deployment.yaml")]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("unsupported apiVersion `apps/v1`"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn no_plan_found_is_an_error() {
    let out = validate(&["tests/fixtures/validate/empty"]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        text(&out.stderr),
        "error: no opsplan files in tests/fixtures/validate/empty; skipped 1 YAML file(s) that \
         are not opsplan files; a plan file has `apiVersion: opsplan/v1` at its top\n"
    );
    assert!(out.stdout.is_empty());
}

#[test]
fn sarif() {
    let out = validate(&[REPO, "--format", "sarif"]);
    assert_eq!(out.status.code(), Some(2));
    let sarif: serde_json::Value = serde_json::from_slice(&out.stdout).expect("SARIF is JSON");
    assert_eq!(sarif["version"], "2.1.0");
    insta::assert_json_snapshot!(sarif);
}

#[test]
fn github_annotations() {
    let out = validate(&[REPO, "--format", "github"]);
    assert_eq!(out.status.code(), Some(2));
    let lines = text(&out.stdout);
    assert!(lines
        .lines()
        .all(|l| l.starts_with("::error file=") || l.starts_with("::warning file=")));
    insta::assert_snapshot!(lines);
}

#[test]
fn the_pre_commit_hook_runs_validate() {
    let hooks = std::fs::read_to_string(repo_root().join(".pre-commit-hooks.yaml"))
        .expect(".pre-commit-hooks.yaml at the repository root");
    let hooks: serde_json::Value = serde_saphyr::from_str(&hooks).expect("YAML");
    let hook = hooks
        .as_array()
        .and_then(|h| h.iter().find(|h| h["id"] == "opsplan-validate"))
        .expect("an opsplan-validate hook");
    assert_eq!(hook["entry"], "opsplan validate");
    assert_eq!(hook["language"], "rust");
    assert_eq!(hook["types"], serde_json::json!(["yaml"]));
}

#[test]
fn quiet_leaves_out_the_ok_lines_and_keeps_the_summary() {
    let normal = validate(&["plans/examples/archive-folder.yaml", "plans/hoss"]);
    assert_eq!(normal.status.code(), Some(0), "{}", text(&normal.stderr));
    assert_eq!(
        text(&normal.stderr),
        "plans/examples/archive-folder.yaml: ok\nplans/hoss/backup.yaml: ok\n\
         plans/hoss/restore.yaml: ok\n3 file(s): 0 error(s), 0 warning(s)\n"
    );
    for flag in ["-q", "--quiet"] {
        let quiet = validate(&[flag, "plans/examples/archive-folder.yaml", "plans/hoss"]);
        assert_eq!(quiet.status.code(), Some(0), "{}", text(&quiet.stderr));
        assert_eq!(text(&quiet.stderr), "3 file(s): 0 error(s), 0 warning(s)\n");
    }
    // Errors are results: quiet shows them.
    let quiet = validate(&["-q", &format!("{REPO}/k8s/deployment.yaml")]);
    assert_eq!(quiet.status.code(), Some(2));
    assert!(
        text(&quiet.stderr).contains("unsupported apiVersion `apps/v1`"),
        "{}",
        text(&quiet.stderr)
    );
}

/// The plans of the plan reference's "Common patterns" (each ```yaml block there is a whole
/// plan) validate without errors or warnings: the documented examples are ones that work.
#[test]
fn the_plan_references_pattern_examples_validate() {
    let doc = std::fs::read_to_string(repo_root().join("docs/reference/plan.md")).expect("plan.md");
    let (_, patterns) = doc
        .split_once("\n## Common patterns\n")
        .expect("a Common patterns section");
    let patterns = patterns.split("\n## ").next().unwrap_or(patterns);
    let blocks: Vec<&str> = patterns
        .split("```yaml\n")
        .skip(1)
        .filter_map(|b| b.split_once("\n```").map(|(code, _)| code))
        .collect();
    assert_eq!(blocks.len(), 4, "one example per pattern");
    let dir = tempfile::tempdir().expect("temp dir");
    for (n, code) in blocks.iter().enumerate() {
        assert!(
            code.starts_with("apiVersion: opsplan/v1"),
            "block {n}:\n{code}"
        );
        let path = dir.path().join(format!("pattern-{n}.yaml"));
        std::fs::write(&path, code).expect("write the example");
        let out = validate(&[path.to_str().expect("UTF-8 path"), "--deny-warnings"]);
        assert_eq!(
            out.status.code(),
            Some(0),
            "example {n} of the patterns:\n{code}\n{}{}",
            text(&out.stdout),
            text(&out.stderr)
        );
    }
}
