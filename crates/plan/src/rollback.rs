//! What runs after a failure or cancel. One pure function serves the executor (with the
//! real state) and `preview --fail-at` (with a simulated one), so the preview of a failure
//! path is the path the engine takes.

use crate::compile::CompiledPlan;
use crate::step::StepStatus;
use std::collections::HashMap;

/// State of a step when the forward phase stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    NotRun,
    Done(StepStatus),
    /// Failed, and its failure matched its `refused_when`: the resource was refused, so
    /// nothing was acquired and its release does not run (it would free what someone else
    /// holds). Any other failure leaves the effect in doubt: `Done(Failed)`.
    Refused,
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
    /// Resources whose release does not run because their acquire was refused (and no
    /// other step that started acquires them), in plan order.
    pub refused: Vec<String>,
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
            // An expanded fan-out step has no undo of its own: its items have theirs.
            let expanded = plan.steps[i]
                .fan_out
                .as_ref()
                .is_some_and(|f| f.items.is_some());
            states[i] == State::Done(StepStatus::Succeeded)
                && plan.steps[i].undo.is_some()
                && !expanded
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
    let mut refused: Vec<String> = Vec::new();
    for (i, s) in plan.steps.iter().enumerate() {
        if states[i] != State::Refused {
            continue;
        }
        for r in &s.acquires {
            let has_release = plan.steps.iter().any(|t| t.releases.contains(r));
            if has_release && !maybe_acquired(r) && !released_ok(r) && !refused.contains(r) {
                refused.push(r.clone());
            }
        }
    }
    RollbackPlan {
        undo,
        cleanup,
        refused,
    }
}

/// For each stage (as `plan.stages()` gives them), what runs when a step of that stage
/// fails: for every non-skipped step of the stage, the same answer as
/// `plan_rollback(simulate_failure(step))`, because the failing step and its cancelled
/// stage-mates look alike to `plan_rollback` (started, not succeeded). Computed in one pass
/// over the stages, so the preview's rollback map of N steps costs O(N + its size) instead
/// of one O(N) simulation per step.
pub fn rollback_by_stage(
    plan: &CompiledPlan,
    stages: &[Vec<usize>],
    skipped: &[bool],
) -> Vec<RollbackPlan> {
    let mut stage_of = vec![0; plan.steps.len()];
    for (k, stage) in stages.iter().enumerate() {
        for &i in stage {
            stage_of[i] = k;
        }
    }
    // Per resource, the first stage where a step that runs acquires (releases) it: a failure
    // in stage k finds it maybe acquired when that is <= k, released when < k.
    let mut first_acquire: HashMap<&str, usize> = HashMap::new();
    let mut first_release: HashMap<&str, usize> = HashMap::new();
    for (i, s) in plan.steps.iter().enumerate() {
        if skipped[i] {
            continue;
        }
        for (resources, first) in [
            (&s.acquires, &mut first_acquire),
            (&s.releases, &mut first_release),
        ] {
            for r in resources {
                let k = first.entry(r.as_str()).or_insert(stage_of[i]);
                *k = (*k).min(stage_of[i]);
            }
        }
    }
    let cleanup_steps: Vec<usize> = (0..plan.steps.len())
        .filter(|&i| plan.steps[i].is_cleanup())
        .collect();
    let mut with_undo_done = Vec::new();
    let mut out = Vec::with_capacity(stages.len());
    for (k, stage) in stages.iter().enumerate() {
        let cleanup = cleanup_steps
            .iter()
            .copied()
            .filter(|&i| {
                let s = &plan.steps[i];
                let succeeded = stage_of[i] < k && !skipped[i];
                !succeeded
                    && (s.always
                        || s.releases.iter().any(|r| {
                            first_acquire.get(r.as_str()).is_some_and(|&a| a <= k)
                                && first_release.get(r.as_str()).is_none_or(|&f| f >= k)
                        }))
            })
            .collect();
        out.push(RollbackPlan {
            undo: with_undo_done.iter().rev().copied().collect(),
            cleanup,
            refused: Vec::new(),
        });
        with_undo_done.extend(
            stage
                .iter()
                .copied()
                .filter(|&i| !skipped[i] && plan.steps[i].undo.is_some()),
        );
    }
    out
}

/// The forward state `preview --fail-at STEP` assumes: every stage before the failing step's
/// stage completed, the other steps of its stage were in flight and got cancelled. With
/// `refused` (`--fail-at STEP:refused`) the failing step's failure matched its
/// `refused_when`.
pub fn simulate_failure(
    plan: &CompiledPlan,
    failing: usize,
    skipped: &[bool],
    refused: bool,
) -> (Vec<usize>, Vec<State>) {
    let stages = plan.stages();
    let mut states = vec![State::NotRun; plan.steps.len()];
    let mut order = Vec::new();
    for stage in &stages {
        if stage.contains(&failing) {
            for &i in stage {
                states[i] = if i == failing && refused {
                    State::Refused
                } else if i == failing {
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
