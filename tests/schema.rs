//! The committed JSON Schema is what the code generates, and every shipped plan declares
//! it and conforms to it (so editors show no false errors).

use std::path::{Path, PathBuf};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn plans() -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![repo().join("plans")];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir)
            .expect("plans/ is readable")
            .flatten()
        {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|e| e == "yaml") {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

#[test]
fn committed_schema_is_current() {
    let committed =
        std::fs::read_to_string(repo().join("schemas/plan.v1.json")).expect("schema committed");
    assert_eq!(
        committed,
        opsplan_plan::schema::plan_schema_text(&opsplan_testkit::registry()),
        "run `opsplan schema > schemas/plan.v1.json`"
    );
}

#[test]
fn every_plan_declares_and_conforms_to_the_schema() {
    let schema = opsplan_plan::schema::plan_schema(&opsplan_testkit::registry());
    let validator = jsonschema::draft7::new(&schema).expect("the schema compiles");
    let plans = plans();
    assert!(!plans.is_empty());
    for path in plans {
        let text = std::fs::read_to_string(&path).expect("readable");
        let first = text.lines().next().unwrap_or_default();
        assert!(
            first.starts_with("# yaml-language-server: $schema=")
                && first.ends_with("schemas/plan.v1.json"),
            "{} must start with the yaml-language-server $schema line",
            path.display()
        );
        let value: serde_json::Value = serde_saphyr::from_str(&text).expect("plan parses");
        let errors: Vec<String> = validator
            .iter_errors(&value)
            .map(|e| format!("{} at {}", e, e.instance_path()))
            .collect();
        assert!(
            errors.is_empty(),
            "{} does not conform to the schema:\n{}",
            path.display(),
            errors.join("\n")
        );
    }
}

#[test]
fn schema_rejects_a_misspelt_argument() {
    let schema = opsplan_plan::schema::plan_schema(&opsplan_testkit::registry());
    let validator = jsonschema::draft7::new(&schema).expect("the schema compiles");
    let plan = serde_json::json!({
        "apiVersion": "opsplan/v1", "kind": "Plan", "metadata": {"name": "x"},
        "steps": [{"id": "a", "type": "exec", "with": {"args": ["true"]}}]
    });
    assert!(
        !validator.is_valid(&plan),
        "`args` is not an exec argument; the schema must say so"
    );
}
