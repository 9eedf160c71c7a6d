//! `assert`: a condition that must hold before the plan goes on; the guard of destructive
//! steps ("the dump is not empty", "the target is empty", "the checkpoint is released").

use super::{Action, Outputs, StepContext, StepError, StepType};
use schemars::JsonSchema;
use serde::Deserialize;
use std::path::Path;

pub struct Assert;

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AssertSpec {
    /// A template expression that must be true, e.g. `"{{ steps.dump_size.outputs.stdout | int > 1024 }}"`.
    #[serde(default)]
    #[schemars(with = "Option<bool>")]
    pub that: Option<Condition>,
    /// Paths that must exist.
    #[serde(default)]
    pub exists: Vec<String>,
    /// Paths that must not exist.
    #[serde(default)]
    pub absent: Vec<String>,
    /// Directories that must be empty (or missing).
    #[serde(default)]
    pub empty_dirs: Vec<String>,
    /// Files that must be at least this many bytes, as `{path: min_bytes}`.
    #[serde(default)]
    pub min_size: std::collections::BTreeMap<String, u64>,
    /// What the failure says, e.g. "the dump is empty; refusing to drop the database".
    pub message: String,
}

/// `that:` once rendered: a boolean, or (in a preview) an expression that reads what only
/// the run knows (step outputs, `run.*`, a param without a value), shown as `⟨expression⟩`
/// and described as decided at run time instead of as true or false.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(untagged)]
pub enum Condition {
    Known(bool),
    Pending(String),
}

impl<'de> Deserialize<'de> for Condition {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = Condition;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a boolean")
            }
            fn visit_bool<E: serde::de::Error>(self, b: bool) -> Result<Condition, E> {
                Ok(Condition::Known(b))
            }
            fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<Condition, E> {
                if opsplan_plan::source::de::is_template(s)
                    || s.contains(opsplan_plan::template::PLACEHOLDER_OPEN)
                {
                    Ok(Condition::Pending(s.to_string()))
                } else {
                    Err(E::invalid_type(serde::de::Unexpected::Str(s), &self))
                }
            }
        }
        d.deserialize_any(V)
    }
}

impl StepType for Assert {
    const NAME: &'static str = "assert";
    const SUMMARY: &'static str =
        "Check a condition on params, outputs or files; the guard of destructive steps.";
    type Spec = AssertSpec;

    /// Rerun on resume: a check changes nothing.
    fn idempotent(_spec: &AssertSpec) -> bool {
        true
    }
    fn describe(spec: &AssertSpec) -> Action {
        let mut parts = Vec::new();
        match &spec.that {
            Some(Condition::Known(that)) => parts.push(format!("condition is {that}")),
            Some(Condition::Pending(text)) => {
                let shown = opsplan_plan::template::whole_expression(text).map_or_else(
                    || text.clone(),
                    |e| format!("{}{e}⟩", opsplan_plan::template::PLACEHOLDER_OPEN),
                );
                parts.push(format!("condition {shown} (decided at run time)"));
            }
            None => {}
        }
        parts.extend(spec.exists.iter().map(|p| format!("{p} exists")));
        parts.extend(spec.absent.iter().map(|p| format!("{p} is absent")));
        parts.extend(spec.empty_dirs.iter().map(|p| format!("{p} is empty")));
        parts.extend(
            spec.min_size
                .iter()
                .map(|(p, n)| format!("{p} has at least {n} bytes")),
        );
        Action::new(format!(
            "assert {} — else: {}",
            parts.join(", "),
            spec.message
        ))
    }
    async fn run(spec: AssertSpec, _ctx: StepContext) -> Result<Outputs, StepError> {
        let mut failures = Vec::new();
        match &spec.that {
            Some(Condition::Known(false)) => failures.push("the condition is false".to_string()),
            Some(Condition::Pending(text)) => {
                failures.push(format!(
                    "the condition rendered to {text:?}, not true or false"
                ));
            }
            _ => {}
        }
        for p in &spec.exists {
            if !Path::new(p).exists() {
                failures.push(format!("{p} does not exist"));
            }
        }
        for p in &spec.absent {
            if Path::new(p).exists() {
                failures.push(format!("{p} exists"));
            }
        }
        for p in &spec.empty_dirs {
            if let Ok(mut entries) = std::fs::read_dir(p) {
                if entries.next().is_some() {
                    failures.push(format!("{p} is not empty"));
                }
            }
        }
        for (p, min) in &spec.min_size {
            match std::fs::metadata(p) {
                Ok(m) if m.len() >= *min => {}
                Ok(m) => failures.push(format!("{p} has {} bytes, less than {min}", m.len())),
                Err(e) => failures.push(format!("{p}: {e}")),
            }
        }
        if failures.is_empty() {
            Ok(Outputs::new())
        } else {
            Err(StepError::fatal(format!(
                "{} ({})",
                spec.message,
                failures.join("; ")
            )))
        }
    }
}
