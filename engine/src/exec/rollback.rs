//! What runs after a failure or cancel. One pure function serves the executor (with the
//! real state) and `preview --fail-at` (with a simulated one), so the preview of a failure
//! path is the path the engine takes.

use crate::compile::CompiledPlan;
use crate::exec::events::StepStatus;

/// State of a step when the forward phase stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    NotRun,
    Done(StepStatus),
}

impl State {
    /// The step started, so its effects (a resource taken) may exist.
    pub fn started(self) -> bool {
        matches!(
            self,
            State::Done(StepStatus::Succeeded | StepStatus::Failed | StepStatus::Cancelled)
        )
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RollbackPlan {
    /// Completed steps whose `undo` runs, in this order (reverse completion).
    pub undo: Vec<usize>,
    /// Releasing and `always` steps that run, in dependency order.
    pub cleanup: Vec<usize>,
}

pub fn plan_rollback(
    plan: &CompiledPlan,
    completion_order: &[usize],
    states: &[State],
) -> RollbackPlan {
    let undo = completion_order
        .iter()
        .rev()
        .copied()
        .filter(|&i| {
            states[i] == State::Done(StepStatus::Succeeded) && plan.steps[i].undo.is_some()
        })
        .collect();
    let released_ok = |r: &String| {
        plan.steps
            .iter()
            .enumerate()
            .any(|(j, s)| s.releases.contains(r) && states[j] == State::Done(StepStatus::Succeeded))
    };
    let maybe_acquired = |r: &String| {
        plan.steps
            .iter()
            .enumerate()
            .any(|(j, s)| s.acquires.contains(r) && states[j].started())
    };
    let cleanup = plan
        .steps
        .iter()
        .enumerate()
        .filter(|(i, s)| {
            if states[*i] == State::Done(StepStatus::Succeeded) || !s.is_cleanup() {
                return false;
            }
            s.always
                || s.releases
                    .iter()
                    .any(|r| maybe_acquired(r) && !released_ok(r))
        })
        .map(|(i, _)| i)
        .collect();
    RollbackPlan { undo, cleanup }
}

/// The forward state `preview --fail-at STEP` assumes: every stage before the failing step's
/// stage completed, the other steps of its stage were in flight and got cancelled.
pub fn simulate_failure(
    plan: &CompiledPlan,
    failing: usize,
    skipped: &[bool],
) -> (Vec<usize>, Vec<State>) {
    let stages = plan.stages();
    let mut states = vec![State::NotRun; plan.steps.len()];
    let mut order = Vec::new();
    for stage in &stages {
        if stage.contains(&failing) {
            for &i in stage {
                states[i] = if i == failing {
                    State::Done(StepStatus::Failed)
                } else if skipped[i] {
                    State::Done(StepStatus::Skipped)
                } else {
                    State::Done(StepStatus::Cancelled)
                };
            }
            break;
        }
        for &i in stage {
            states[i] = State::Done(if skipped[i] {
                StepStatus::Skipped
            } else {
                StepStatus::Succeeded
            });
            if !skipped[i] {
                order.push(i);
            }
        }
    }
    (order, states)
}
