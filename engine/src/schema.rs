//! The JSON Schema of plan files (schemas/plan.v1.json), generated from the Rust types so
//! it cannot drift; each step's `with:` is constrained by its type's spec.

use crate::plan::PlanDoc;
use crate::steps::REGISTRY;
use serde_json::{json, Value};

pub fn plan_schema() -> Value {
    let mut generator = schemars::generate::SchemaSettings::draft07().into_generator();
    let mut root = generator.root_schema_for::<PlanDoc>().to_value();
    let mut branches = Vec::new();
    let mut names = Vec::new();
    for t in REGISTRY {
        let spec = t.schema(&mut generator).to_value();
        names.push(t.name());
        branches.push(json!({
            "if": { "properties": { "type": { "const": t.name() } }, "required": ["type"] },
            "then": { "properties": { "with": spec } }
        }));
    }
    let defs = generator.take_definitions(true);
    if let Some(obj) = root.as_object_mut() {
        let root_defs = obj.entry("definitions").or_insert_with(|| json!({}));
        if let Some(d) = root_defs.as_object_mut() {
            for (k, v) in defs {
                d.entry(k).or_insert(v);
            }
        }
        if let Some(step) = obj.get_mut("definitions").and_then(|d| d.get_mut("StepDecl")) {
            step["allOf"] = Value::Array(branches);
            if let Some(t) = step.pointer_mut("/properties/type") {
                *t = json!({ "description": "The step type.", "enum": names });
            }
        }
    }
    root
}

pub fn plan_schema_text() -> String {
    let mut s = serde_json::to_string_pretty(&plan_schema()).unwrap_or_default();
    s.push('\n');
    s
}
