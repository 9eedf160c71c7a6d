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
    pub that: Option<bool>,
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
        if let Some(that) = spec.that {
            parts.push(format!("condition is {that}"));
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
        if spec.that == Some(false) {
            failures.push("the condition is false".to_string());
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
