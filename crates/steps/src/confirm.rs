//! `confirm`: an interactive gate. `--yes` answers it; with no terminal and no `--yes` the
//! run is refused before its first step (and, should it get here, stops rather than guess).
//! An operator's yes also approves the destructive steps that need this one: the question
//! names them, and they are not asked about again.

use super::{Action, Outputs, StepContext, StepError, StepType};
use schemars::JsonSchema;
use serde::Deserialize;

pub struct Confirm;

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ConfirmSpec {
    /// The question, e.g. "Drop database dop and load the dump from 2026-11-20?".
    pub message: String,
}

impl StepType for Confirm {
    const NAME: &'static str = "confirm";
    const SUMMARY: &'static str =
        "Ask the operator to confirm before going on (`--yes` answers it).";
    type Spec = ConfirmSpec;

    fn asks(_spec: &ConfirmSpec) -> bool {
        true
    }
    /// Rerun on resume: asking again is harmless.
    fn idempotent(_spec: &ConfirmSpec) -> bool {
        true
    }
    fn describe(spec: &ConfirmSpec) -> Action {
        Action::new(format!("ask: {} [y/N]", spec.message))
    }
    async fn run(spec: ConfirmSpec, ctx: StepContext) -> Result<Outputs, StepError> {
        let mut out = Outputs::new();
        if ctx.answers.yes {
            out.insert("answered_by".into(), "--yes".into());
            return Ok(out);
        }
        if !ctx.prompter.can_ask() {
            return Err(StepError::fatal(format!(
                "confirmation needed and no terminal to ask on: \"{}\"; run with --yes to answer it",
                spec.message
            )));
        }
        let question = if ctx.approves.is_empty() {
            spec.message.clone()
        } else {
            format!(
                "{}\n  A yes also runs the destructive step(s) {} without asking again.",
                spec.message,
                ctx.approves
                    .iter()
                    .map(|s| format!("`{s}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        };
        if ctx.prompter.ask(&question).await {
            out.insert("answered_by".into(), "operator".into());
            Ok(out)
        } else {
            Err(StepError::fatal(format!("not confirmed: {}", spec.message)))
        }
    }
}
