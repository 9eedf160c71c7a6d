//! What a resumed run does, decided from the folded journal and the plan. Pure: the CLI
//! prints the decisions and hands the [`Prior`] to the executor.
//!
//! Rules (docs/design/0003-journal-and-resume.md):
//! - a step the journal shows finished is not run again (its outputs come from the journal);
//! - a step started but not finished is *in doubt*: settled by its `on_resume` (`rerun`,
//!   `compensate`, `check`), or, for `ask`, by the operator (`--rerun STEP` or a yes on a
//!   terminal); never silently;
//! - if the run had failed, been cancelled, or had begun its rollback, resume does not go
//!   forward: it finishes the rollback, skipping undo and cleanup already done (undo and
//!   cleanup left in doubt run again: they must be idempotent);
//! - `--rollback` only rolls back, whatever the state.

use super::state::RunState;
use crate::exec::events::{Phase, RunStatus, StepStatus};
use crate::exec::{InDoubt, Prior};
use opsplan_plan::compile::CompiledPlan;
use opsplan_plan::plan::ResumePolicy;
use opsplan_plan::rollback::State;

#[derive(Debug, Default)]
pub struct ResumePlan {
    pub prior: Prior,
    pub rollback_only: bool,
    /// One line per decision, for the operator.
    pub notes: Vec<String>,
    /// In-doubt steps whose `on_resume` is `ask` and that no `--rerun` settled.
    pub ask: Vec<String>,
    /// Finished steps whose outputs held a secret (masked in the journal), read by steps
    /// still to run, and not safe to run again without the operator's `--rerun`.
    pub secret_outputs: Vec<String>,
}

pub fn plan_resume(
    plan: &CompiledPlan,
    state: &RunState,
    rollback_requested: bool,
    rerun: &[String],
) -> ResumePlan {
    let n = plan.steps.len();
    let mut rp = ResumePlan::default();
    let mut prior = Prior {
        states: vec![State::NotRun; n],
        ..Prior::default()
    };
    for id in state.steps.keys() {
        if plan.index_of(id).is_none() {
            rp.notes.push(format!(
                "step `{id}` is in the journal but not in the plan any more; ignored"
            ));
        }
    }
    let failed_step = state.steps.iter().find_map(|(id, s)| {
        let f = s.forward.as_ref()?;
        (f.status == Some(StepStatus::Failed)).then(|| {
            format!(
                "step `{id}` failed: {}",
                f.error.clone().unwrap_or_default()
            )
        })
    });
    let signalled = !state.signals.is_empty();
    let rollback_only = rollback_requested
        || state.rolling_back()
        || state.status == Some(RunStatus::RollbackFailed)
        || failed_step.is_some()
        || signalled;
    prior.rollback_reason = Some(if let Some(rb) = &state.rollback {
        rb.reason.clone()
    } else if let Some(f) = failed_step {
        f
    } else if signalled {
        "cancelled by signal".into()
    } else {
        "rollback requested with `opsplan resume --rollback`".into()
    });
    prior.cancelled = signalled;

    for (i, step) in plan.steps.iter().enumerate() {
        let Some(s) = state.steps.get(&step.id) else {
            continue;
        };
        for phase in [Phase::Undo, Phase::Cleanup] {
            if s.phase(phase)
                .is_some_and(super::state::PhaseState::succeeded)
            {
                prior.rolled_back.insert((phase, i));
            } else if s
                .phase(phase)
                .is_some_and(super::state::PhaseState::in_doubt)
            {
                rp.notes.push(format!(
                    "{} of `{}` was running at the crash: it runs again",
                    phase_name(phase),
                    step.id
                ));
            }
        }
        let forward_doubt = s
            .forward
            .as_ref()
            .is_some_and(super::state::PhaseState::in_doubt)
            || s.check
                .as_ref()
                .is_some_and(super::state::PhaseState::in_doubt);
        match &s.forward {
            Some(p) if p.status.is_some() && !forward_doubt => {
                let status = p.status.unwrap_or(StepStatus::Cancelled);
                // A refused acquire took nothing: its release does not run on resume either.
                prior.states[i] = if p.refused && status == StepStatus::Failed {
                    State::Refused
                } else {
                    State::Done(status)
                };
                if status == StepStatus::Succeeded {
                    if let Some(out) = &p.outputs {
                        prior
                            .outputs
                            .insert(i, serde_json::Value::Object(out.clone()));
                    }
                }
            }
            None if !forward_doubt => {}
            _ if rollback_only => {
                // It may have taken what it acquires: count it as started, so releases run.
                prior.states[i] = State::Done(StepStatus::Cancelled);
                rp.notes.push(format!(
                    "`{}` was running at the crash; counted as cancelled (releases of what it may hold run; its undo does not)",
                    step.id
                ));
            }
            _ => {
                let how = match step.on_resume {
                    ResumePolicy::Rerun => Some(InDoubt::Rerun),
                    ResumePolicy::Compensate if step.undo.is_some() => Some(InDoubt::Compensate),
                    ResumePolicy::Check if step.probe.is_some() => Some(InDoubt::Check),
                    _ if rerun.iter().any(|r| r == &step.id) => Some(InDoubt::Rerun),
                    _ => None,
                };
                match how {
                    Some(how) => {
                        rp.notes.push(format!(
                            "`{}` was running at the crash (in doubt): {}",
                            step.id,
                            match how {
                                InDoubt::Rerun => "it runs again",
                                InDoubt::Compensate => "its undo runs, then it runs again",
                                InDoubt::Check => "its probe decides whether it runs again",
                            }
                        ));
                        prior.in_doubt.push((i, how));
                    }
                    None => rp.ask.push(step.id.clone()),
                }
            }
        }
    }
    if !rollback_only {
        rerun_for_masked_outputs(plan, &mut prior, &mut rp, rerun);
    }
    prior.completion_order = state
        .completion_order
        .iter()
        .filter_map(|id| plan.index_of(id))
        .filter(|&i| prior.states[i] == State::Done(StepStatus::Succeeded))
        .collect();
    rp.prior = prior;
    rp.rollback_only = rollback_only;
    rp
}

/// The journal keeps outputs masked: a finished step whose outputs held a secret has only
/// `********` there. When a step still to run reads them, the real values must come from
/// running that step again: at once when it is rerun-safe (or `--rerun` names it), else the
/// operator decides (`secret_outputs`); a run never goes on with a mask as a value.
fn rerun_for_masked_outputs(
    plan: &CompiledPlan,
    prior: &mut Prior,
    rp: &mut ResumePlan,
    rerun: &[String],
) {
    let n = plan.steps.len();
    let pending: Vec<usize> = (0..n)
        .filter(|&j| prior.states[j] == State::NotRun)
        .collect();
    for i in 0..n {
        let masked = prior.states[i] == State::Done(StepStatus::Succeeded)
            && prior
                .outputs
                .get(&i)
                .is_some_and(|v| v.to_string().contains(opsplan_plan::template::MASK));
        if !masked {
            continue;
        }
        let read_later = pending
            .iter()
            .any(|&j| plan.steps[j].reads.as_ref().is_none_or(|r| r.contains(&i)));
        if !read_later {
            continue;
        }
        let step = &plan.steps[i];
        if step.on_resume == ResumePolicy::Rerun || rerun.iter().any(|r| r == &step.id) {
            prior.states[i] = State::NotRun;
            prior.outputs.remove(&i);
            prior.in_doubt.push((i, InDoubt::Rerun));
            rp.notes.push(format!(
                "`{}` runs again: its outputs held a secret, which the journal does not keep, and later steps read them",
                step.id
            ));
        } else {
            rp.secret_outputs.push(step.id.clone());
        }
    }
}

fn phase_name(phase: Phase) -> &'static str {
    match phase {
        Phase::Forward => "the step",
        Phase::Check => "the probe",
        Phase::Undo => "the undo",
        Phase::Cleanup => "the cleanup",
    }
}
