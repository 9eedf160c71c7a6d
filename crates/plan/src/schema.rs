//! The JSON Schema of plan files (schemas/plan.v1.json), generated from the Rust types so
//! it cannot drift; each step's `with:` is constrained by its type's spec.

use crate::plan::PlanDoc;
use crate::step::Registry;
use serde_json::{json, Value};

pub fn plan_schema(registry: &Registry) -> Value {
    let mut generator = schemars::generate::SchemaSettings::draft07().into_generator();
    let mut root = generator.root_schema_for::<PlanDoc>().to_value();
    let mut branches = Vec::new();
    let mut names = Vec::new();
    for t in registry.iter() {
        let spec = t.schema(&mut generator).to_value();
        names.push(t.name());
        branches.push(json!({
            "if": { "properties": { "type": { "const": t.name() } }, "required": ["type"] },
            "then": { "properties": { "with": spec } }
        }));
    }
    let mut defs = generator.take_definitions(true);
    // Step arguments are templates: a `{{ … }}` string may stand where a number, boolean or
    // list is expected (`replicas: "{{ params.n }}"`).
    let mut pending: Vec<String> = branches
        .iter()
        .filter_map(|b| {
            b.pointer("/then/properties/with/$ref")
                .and_then(Value::as_str)
        })
        .map(|r| r.rsplit('/').next().unwrap_or(r).to_string())
        .collect();
    let mut seen = std::collections::HashSet::new();
    while let Some(name) = pending.pop() {
        if !seen.insert(name.clone()) {
            continue;
        }
        if let Some(def) = defs.get_mut(&name) {
            collect_refs(def, &mut pending);
            allow_templates(def);
        }
    }
    if let Some(obj) = root.as_object_mut() {
        let root_defs = obj.entry("definitions").or_insert_with(|| json!({}));
        if let Some(d) = root_defs.as_object_mut() {
            for (k, v) in defs {
                d.entry(k).or_insert(v);
            }
        }
        if let Some(step) = obj
            .get_mut("definitions")
            .and_then(|d| d.get_mut("StepDecl"))
        {
            step["allOf"] = Value::Array(branches);
            if let Some(t) = step.pointer_mut("/properties/type") {
                *t = json!({ "description": "The step type.", "enum": names });
            }
        }
    }
    tighten(&mut root);
    root
}

/// A step id as validate accepts it (E022).
pub const STEP_ID_PATTERN: &str = "^[a-z][a-z0-9_-]*$";

/// A duration as validate accepts it (E070): humantime's numbers and units (`30s`, `1h 30m`,
/// `500ms`), or a template that renders to one.
pub const DURATION_PATTERN: &str = "^\\s*([0-9]+\\s*(nsec|ns|usec|us|µs|msec|ms|seconds|second|secs|sec|s|minutes|minute|mins|min|m|hours|hour|hrs|hr|h|days|day|d|weeks|week|w|months|month|M|years|year|y)\\s*)+$|\\{\\{[\\s\\S]*\\}\\}|\\{%[\\s\\S]*%\\}";

/// What validate checks that a schema can say too: the `apiVersion` of this format, the
/// step id grammar and the duration grammar of `timeout` and `backoff`, so an editor flags
/// them as the file is typed.
fn tighten(root: &mut Value) {
    if let Some(api) = root.pointer_mut("/properties/apiVersion") {
        api["const"] = json!(crate::plan::API_VERSION);
    }
    if let Some(id) = root.pointer_mut("/definitions/StepDecl/properties/id") {
        id["pattern"] = json!(STEP_ID_PATTERN);
    }
    for pointer in [
        "/definitions/StepDecl/properties/timeout",
        "/definitions/ActionDecl/properties/timeout",
        "/definitions/BackoffDecl/properties/initial",
        "/definitions/BackoffDecl/properties/max",
    ] {
        if let Some(d) = root.pointer_mut(pointer) {
            d["pattern"] = json!(DURATION_PATTERN);
        }
    }
}

pub fn plan_schema_text(registry: &Registry) -> String {
    let mut s = serde_json::to_string_pretty(&plan_schema(registry)).unwrap_or_default();
    s.push('\n');
    s
}

fn collect_refs(schema: &Value, out: &mut Vec<String>) {
    match schema {
        Value::Object(map) => {
            if let Some(Value::String(r)) = map.get("$ref") {
                out.push(r.rsplit('/').next().unwrap_or(r).to_string());
            }
            map.values().for_each(|v| collect_refs(v, out));
        }
        Value::Array(items) => items.iter().for_each(|v| collect_refs(v, out)),
        _ => {}
    }
}

/// Lets every non-string property of a step spec also be a template string.
fn allow_templates(schema: &mut Value) {
    let Some(props) = schema.get_mut("properties").and_then(Value::as_object_mut) else {
        return;
    };
    for prop in props.values_mut() {
        let is_string = matches!(prop.get("type"), Some(Value::String(t)) if t == "string");
        let is_ref_only = prop.get("type").is_none() && prop.get("anyOf").is_none();
        if is_string || is_ref_only && prop.get("$ref").is_none() {
            continue;
        }
        allow_templates_within(prop);
        let mut original = prop.take();
        // The description stays on the property itself, where editors read hover text
        // (inside `anyOf` most show none).
        let description = original
            .as_object_mut()
            .and_then(|o| o.remove("description"));
        *prop = json!({ "anyOf": [original, template_string()] });
        if let Some(d) = description {
            prop["description"] = d;
        }
    }
}

fn template_string() -> Value {
    json!({ "type": "string", "pattern": "\\{\\{[\\s\\S]*\\}\\}" })
}

/// Values of maps and items of lists may be templates too (`min_size: {path: "{{ … }}"}`).
fn allow_templates_within(prop: &mut Value) {
    for key in ["additionalProperties", "items"] {
        if let Some(inner) = prop.get_mut(key) {
            let non_string = inner.is_object()
                && !matches!(inner.get("type"), Some(Value::String(t)) if t == "string");
            if non_string {
                let original = inner.take();
                *inner = json!({ "anyOf": [original, template_string()] });
            }
        }
    }
}
