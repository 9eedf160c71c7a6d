//! The shipped plans, as specifications: every plan under plans/<system>/ previews with the
//! params in tests/fixtures/plans/<system>/<plan>.params.yaml, and its golden previews (text
//! and JSON) are snapshots. For every step that acquires a resource or is destructive, a
//! `--fail-at` snapshot shows the cleanup that runs. Each plan names a version and the
//! system versions it applies to, and its docs/plans/<system>.md table mentions every step.

use std::path::{Path, PathBuf};
use std::process::Command;

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Every shipped plan (not fragments, not examples), as `(system, plan name)`.
fn shipped_plans() -> Vec<(String, String)> {
    let mut plans = Vec::new();
    let root = repo_root().join("plans");
    for system in std::fs::read_dir(&root).expect("plans/ exists") {
        let system = system.expect("read plans/");
        let name = system.file_name().to_string_lossy().into_owned();
        if !system.path().is_dir() || name == "examples" {
            continue;
        }
        for plan in std::fs::read_dir(system.path()).expect("read a system folder") {
            let path = plan.expect("read a plan").path();
            if path.extension().is_some_and(|e| e == "yaml") {
                let stem = path.file_stem().expect("a file name").to_string_lossy();
                plans.push((name.clone(), stem.into_owned()));
            }
        }
    }
    plans.sort();
    plans
}

/// Runs the binary from the repository root (stable paths in the output).
fn opsplan(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_opsplan"))
        .args(args)
        .current_dir(repo_root())
        .env("NO_COLOR", "1")
        .env_remove("OPENC3_TSDB_USERNAME")
        .output()
        .expect("run opsplan");
    let stdout = String::from_utf8(out.stdout).expect("utf-8 stdout");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "opsplan {args:?} failed ({}):\n{stdout}{stderr}",
        out.status
    );
    stdout
}

fn plan_args(system: &str, plan: &str) -> (String, String) {
    let file = format!("plans/{system}/{plan}.yaml");
    let params = format!("tests/fixtures/plans/{system}/{plan}.params.yaml");
    assert!(
        repo_root().join(&params).exists(),
        "{file} has no preview params: add {params}"
    );
    (file, params)
}

#[test]
fn there_are_plans_for_every_system() {
    let systems: std::collections::BTreeSet<String> =
        shipped_plans().into_iter().map(|(s, _)| s).collect();
    for system in ["cosmos7", "cosmos6", "dop", "stackstate", "hoss"] {
        assert!(systems.contains(system), "no plans for {system}");
    }
}

#[test]
fn golden_previews() {
    for (system, plan) in shipped_plans() {
        let (file, params) = plan_args(&system, &plan);
        let name = format!("{system}-{plan}");
        let text = opsplan(&["preview", &file, "--params", &params]);
        insta::assert_snapshot!(format!("{name}-preview"), text);
        let json: serde_json::Value = serde_json::from_str(&opsplan(&[
            "preview", &file, "--params", &params, "--format", "json",
        ]))
        .expect("preview --format json prints JSON");
        insta::assert_json_snapshot!(format!("{name}-preview-json"), json);
    }
}

/// Steps that take a resource or destroy data: their failure path is what operators most
/// need to see before the run.
fn risky_steps(preview: &serde_json::Value) -> Vec<String> {
    let mut ids = Vec::new();
    for stage in preview["stages"].as_array().expect("stages") {
        for step in stage.as_array().expect("a stage") {
            let acquires = step["acquires"].as_array().is_some_and(|a| !a.is_empty());
            let destructive = step["destructive"].as_bool().unwrap_or(false);
            if acquires || destructive {
                ids.push(step["id"].as_str().expect("an id").to_string());
            }
        }
    }
    ids
}

#[test]
fn failure_paths_of_risky_steps() {
    let mut shown = 0;
    for (system, plan) in shipped_plans() {
        let (file, params) = plan_args(&system, &plan);
        let preview: serde_json::Value = serde_json::from_str(&opsplan(&[
            "preview", &file, "--params", &params, "--format", "json",
        ]))
        .expect("JSON preview");
        for step in risky_steps(&preview) {
            let text = opsplan(&["preview", &file, "--params", &params, "--fail-at", &step]);
            let slug: String = step
                .chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() || c == '-' {
                        c
                    } else {
                        '_'
                    }
                })
                .collect();
            insta::assert_snapshot!(format!("{system}-{plan}-fail-at-{slug}"), text);
            shown += 1;
        }
    }
    assert!(shown > 0, "no plan has a step that acquires or destroys");
}

#[test]
fn every_plan_is_versioned_and_says_what_it_applies_to() {
    for (system, plan) in shipped_plans() {
        let text = std::fs::read_to_string(repo_root().join(format!("plans/{system}/{plan}.yaml")))
            .expect("read plan");
        assert!(
            text.contains("\n  version: "),
            "{system}/{plan} has no metadata.version"
        );
        assert!(
            text.contains("\n  appliesTo: "),
            "{system}/{plan} has no metadata.appliesTo"
        );
        assert!(
            text.contains(&format!("\n  system: {system}\n")),
            "{system}/{plan}: metadata.system is not {system}"
        );
    }
}

/// The docs table maps the vendor page to plan steps; a step missing from it is a step
/// nobody traced back to the page.
#[test]
fn docs_tables_mention_every_step() {
    for (system, plan) in shipped_plans() {
        let doc = std::fs::read_to_string(repo_root().join(format!("docs/plans/{system}.md")))
            .unwrap_or_else(|_| panic!("docs/plans/{system}.md is missing"));
        let (file, params) = plan_args(&system, &plan);
        let preview: serde_json::Value = serde_json::from_str(&opsplan(&[
            "preview", &file, "--params", &params, "--format", "json",
        ]))
        .expect("JSON preview");
        for stage in preview["stages"].as_array().expect("stages") {
            for step in stage.as_array().expect("a stage") {
                let id = step["id"].as_str().expect("an id");
                // `stage[2026-04-15]` is documented as `stage`; fragment steps as `use.step`.
                let base = id.split('[').next().unwrap_or(id);
                assert!(
                    doc.contains(&format!("`{base}`")),
                    "docs/plans/{system}.md does not mention step `{base}` of {plan}"
                );
            }
        }
    }
}
