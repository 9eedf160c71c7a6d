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

fn committed_validator() -> jsonschema::Validator {
    let text =
        std::fs::read_to_string(repo().join("schemas/plan.v1.json")).expect("schema committed");
    let schema: serde_json::Value = serde_json::from_str(&text).expect("the schema is JSON");
    jsonschema::validator_for(&schema).expect("the committed schema compiles")
}

/// What editors load: the committed file, checked with a standard validator against every
/// plan file under plans/ (fragments and examples too).
#[test]
fn every_plan_conforms_to_the_committed_schema_file() {
    let validator = committed_validator();
    let plans = plans();
    assert!(plans.len() > 10, "plans/ holds the shipped plans");
    for path in plans {
        let text = std::fs::read_to_string(&path).expect("readable");
        let value: serde_json::Value = serde_saphyr::from_str(&text).expect("plan parses");
        let errors: Vec<String> = validator
            .iter_errors(&value)
            .map(|e| format!("{} at {}", e, e.instance_path()))
            .collect();
        assert!(
            errors.is_empty(),
            "{} does not conform to schemas/plan.v1.json:\n{}",
            path.display(),
            errors.join("\n")
        );
    }
}

/// The schema says what validate says where a schema can: the apiVersion of this format,
/// the step id grammar (E022) and the duration grammar (E070), templates allowed.
#[test]
fn schema_rejects_a_wrong_api_version_id_or_duration() {
    let validator = committed_validator();
    let plan = |api: &str, id: &str, timeout: &str| {
        serde_json::json!({
            "apiVersion": api, "kind": "Plan", "metadata": {"name": "x"},
            "steps": [{"id": id, "type": "exec", "with": {"argv": ["true"]}, "timeout": timeout,
                       "retry": {"attempts": 2, "backoff": {"initial": "1s", "max": "1m 30s"}}}]
        })
    };
    assert!(validator.is_valid(&plan("opsplan/v1", "copy-db_2", "1h 30m")));
    assert!(validator.is_valid(&plan("opsplan/v1", "a", "{{ params.deadline }}")));
    assert!(
        !validator.is_valid(&plan("opsplan/v2", "a", "30s")),
        "apiVersion other than opsplan/v1"
    );
    for id in ["Copy", "2nd", "copy db", "copy.db", ""] {
        assert!(
            !validator.is_valid(&plan("opsplan/v1", id, "30s")),
            "id `{id}`"
        );
    }
    for timeout in ["forever", "30", "5 parsecs", ""] {
        assert!(
            !validator.is_valid(&plan("opsplan/v1", "a", timeout)),
            "timeout `{timeout}`"
        );
    }
}

/// Every property an author writes has hover text in an editor: a `description` on the
/// property itself (not only inside an `anyOf` branch, where most editors show none).
#[test]
fn every_property_has_a_description_for_hover_text() {
    fn walk(node: &serde_json::Value, path: &str, missing: &mut Vec<String>) {
        match node {
            serde_json::Value::Object(map) => {
                // The per-type `if`/`then` branches only narrow `type` and `with`.
                let conditional = path.ends_with("/if") || path.ends_with("/then");
                if let Some(props) = map.get("properties").and_then(|p| p.as_object()) {
                    for (name, prop) in props {
                        if !conditional && prop.get("description").is_none() {
                            missing.push(format!("{path}.{name}"));
                        }
                    }
                }
                for (key, value) in map {
                    walk(value, &format!("{path}/{key}"), missing);
                }
            }
            serde_json::Value::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    walk(item, &format!("{path}[{i}]"), missing);
                }
            }
            _ => {}
        }
    }
    let text = std::fs::read_to_string(repo().join("schemas/plan.v1.json")).unwrap();
    let schema: serde_json::Value = serde_json::from_str(&text).unwrap();
    let mut missing = Vec::new();
    walk(&schema, "", &mut missing);
    assert!(missing.is_empty(), "no description: {missing:#?}");
}
