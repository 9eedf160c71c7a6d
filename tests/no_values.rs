//! Preview and graph need no values: every shipped plan previews (text, JSON, Markdown) and
//! graphs (DOT, Mermaid) with no param given and no secret in the environment; a value not
//! given shows as `⟨params.NAME⟩` wherever it is rendered, and the output names the values
//! not given. `run` still refuses without them. A condition (`when`, assert `that`) that
//! reads step outputs, `run.*` or a value not given is shown as decided at run time.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The binary from the repository root with an empty environment (no param `env:`
/// variable, no secret), so only the plan's defaults are known.
fn bare(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_opsplan"))
        .args(args)
        .current_dir(repo_root())
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("NO_COLOR", "1")
        .output()
        .expect("run opsplan")
}

fn ok(args: &[&str]) -> String {
    let out = bare(args);
    let stdout = String::from_utf8(out.stdout).expect("utf-8 stdout");
    assert!(
        out.status.success(),
        "opsplan {args:?} failed ({}):\n{stdout}{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// Every plan file under plans/ (examples too), fragments left out (they cannot run alone).
fn plan_files() -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![repo_root().join("plans")];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir)
            .expect("plans/ is readable")
            .flatten()
        {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|e| e == "yaml") {
                let text = std::fs::read_to_string(&p).expect("readable plan");
                if !text.contains("\nkind: Fragment") {
                    let rel = p.strip_prefix(repo_root()).expect("under the repo");
                    out.push(rel.to_string_lossy().into_owned());
                }
            }
        }
    }
    out.sort();
    out
}

#[test]
fn every_shipped_plan_previews_and_graphs_without_values() {
    let plans = plan_files();
    assert!(plans.len() > 10, "the shipped plans are missing: {plans:?}");
    let mut with_placeholders = 0;
    for plan in &plans {
        let json: serde_json::Value =
            serde_json::from_str(&ok(&["preview", plan, "--format", "json"]))
                .unwrap_or_else(|e| panic!("{plan}: preview --format json: {e}"));
        let not_given: Vec<String> = json["not_given"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default();
        let text = ok(&["preview", plan]);
        let markdown = ok(&["preview", plan, "--format", "markdown"]);
        let dot = ok(&["graph", plan, "--format", "dot"]);
        let mermaid = ok(&["graph", plan, "--format", "mermaid"]);
        if not_given.is_empty() {
            continue;
        }
        with_placeholders += 1;
        for name in &not_given {
            let shown = format!("⟨params.{name}⟩");
            for (format, out) in [("text", &text), ("markdown", &markdown)] {
                assert!(
                    out.contains("Values not given") && out.contains(&shown),
                    "{plan}: the {format} preview does not name {shown} as not given:\n{out}"
                );
            }
            assert!(
                json["params"]
                    .as_array()
                    .expect("params")
                    .iter()
                    .any(|p| p["name"] == name.as_str()
                        && p["value"] == shown.as_str()
                        && p["source"] == "not given"),
                "{plan}: the JSON params do not show {name} as {shown} (not given)"
            );
        }
        assert!(dot.contains("// Values not given"), "{plan}: DOT:\n{dot}");
        assert!(
            mermaid.contains("%% Values not given"),
            "{plan}: Mermaid:\n{mermaid}"
        );
    }
    assert!(
        with_placeholders > 10,
        "most shipped plans have required params; only {with_placeholders} showed placeholders"
    );
}

/// A small shipped plan with a required path, a required URL, a required value from the
/// environment and a secret: each shows as a placeholder where it is rendered.
const PLAN: &str = "plans/dop/restore-logs.yaml";

#[test]
fn placeholders_in_the_text_preview() {
    insta::assert_snapshot!(ok(&["preview", PLAN]));
}

#[test]
fn placeholders_in_the_json_preview() {
    let json: serde_json::Value =
        serde_json::from_str(&ok(&["preview", PLAN, "--format", "json"])).expect("JSON");
    insta::assert_json_snapshot!(json);
}

#[test]
fn placeholders_in_the_markdown_preview() {
    insta::assert_snapshot!(ok(&["preview", PLAN, "--format", "markdown"]));
}

#[test]
fn placeholders_in_the_dot_graph() {
    insta::assert_snapshot!(ok(&["graph", PLAN, "--format", "dot"]));
}

#[test]
fn placeholders_in_the_mermaid_graph() {
    insta::assert_snapshot!(ok(&["graph", PLAN, "--format", "mermaid"]));
}

#[test]
fn graph_names_the_values_not_given_on_stderr() {
    let out = bare(&["graph", PLAN]);
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.starts_with(
            "note: Values not given (shown as placeholders; `opsplan run` needs them): ⟨params.backup_dir⟩"
        ),
        "{stderr}"
    );
}

#[test]
fn run_still_requires_every_value() {
    let journal = tempfile::tempdir().expect("tempdir");
    let marker = journal.path().join("ran");
    let out = bare(&[
        "run",
        PLAN,
        "--journal-dir",
        &journal.path().display().to_string(),
        "--lock-dir",
        &journal.path().display().to_string(),
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    for name in [
        "backup_dir",
        "s3_endpoint",
        "s3_access_key",
        "s3_secret_key",
    ] {
        assert!(
            stderr.contains(&format!("missing value for required param `{name}`")),
            "run without `{name}` must say so:\n{stderr}"
        );
    }
    assert!(
        !stderr.contains('⟨'),
        "a run shows no placeholder:\n{stderr}"
    );
    assert!(!marker.exists());
}

fn write_plan(dir: &Path, body: &str) -> String {
    let path = dir.join("plan.yaml");
    std::fs::write(&path, body).expect("write plan");
    path.display().to_string()
}

const RUNTIME_CONDITIONS: &str = r#"apiVersion: opsplan/v1
kind: Plan
metadata: {name: runtime-conditions}
params:
  known: {type: int, default: 1}
  count: {type: int, required: true}
steps:
  - id: size
    type: exec
    with: {argv: [echo, "42"]}
  - id: big-enough
    needs: [size]
    type: assert
    with:
      that: "{{ steps.size.outputs.stdout | trim | int > 1024 }}"
      message: the dump is too small
  - id: first-run
    type: assert
    with:
      that: "{{ run.id == 'x' }}"
      message: not the first run
  - id: enough-items
    type: assert
    with:
      that: "{{ params.count > 3 }}"
      message: too few items
  - id: known-value
    type: assert
    with:
      that: "{{ params.known == 1 }}"
      message: known is not 1
  - id: only-when-many
    type: exec
    when: "{{ params.count > 3 }}"
    with: {argv: [echo, many]}
"#;

#[test]
fn conditions_on_run_time_values_are_decided_at_run_time_in_every_format() {
    let dir = tempfile::tempdir().expect("tempdir");
    let plan = write_plan(dir.path(), RUNTIME_CONDITIONS);
    let text = ok(&["preview", &plan]);
    let markdown = ok(&["preview", &plan, "--format", "markdown"]);
    let json: serde_json::Value =
        serde_json::from_str(&ok(&["preview", &plan, "--format", "json"])).expect("JSON");
    let steps: Vec<&serde_json::Value> = json["stages"]
        .as_array()
        .expect("stages")
        .iter()
        .flat_map(|s| s.as_array().expect("a stage"))
        .collect();
    let action = |id: &str| {
        steps
            .iter()
            .find(|s| s["id"] == id)
            .and_then(|s| s["action"].as_str())
            .unwrap_or_else(|| panic!("no step {id}"))
            .to_string()
    };
    for (id, expr) in [
        (
            "big-enough",
            "⟨steps.size.outputs.stdout | trim | int > 1024⟩",
        ),
        ("first-run", "⟨run.id == 'x'⟩"),
        ("enough-items", "⟨params.count > 3⟩"),
    ] {
        let want = format!("assert condition {expr} (decided at run time)");
        assert!(action(id).starts_with(&want), "{id}: {}", action(id));
        assert!(text.contains(&want), "text preview of {id}:\n{text}");
        assert!(
            markdown.contains(&format!(
                "`assert condition {} (decided at run time)",
                expr.replace('|', "\\|")
            )),
            "Markdown preview of {id}:\n{markdown}"
        );
    }
    // A condition on known values is decided in the preview.
    assert!(action("known-value").starts_with("assert condition is true"));
    let when = steps
        .iter()
        .find(|s| s["id"] == "only-when-many")
        .and_then(|s| s["when"].as_str())
        .expect("when shown");
    assert_eq!(when, "params.count > 3 (decided at run time)");
    assert!(
        !text.contains("condition is false") && !text.contains("(skipped)"),
        "nothing is decided on missing values:\n{text}"
    );
}
