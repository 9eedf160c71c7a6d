//! The run's state, folded from its records by one pure function. `opsplan runs`,
//! `opsplan runs show` and `opsplan resume` all read this value, never the raw events.

use super::format::Record;
use crate::exec::events::{Phase, RunEvent, RunStatus, StepStatus};
use indexmap::IndexMap;
use opsplan_plan::step::Outputs;
use serde::Serialize;

#[derive(Debug, Clone, Default, Serialize)]
pub struct RunState {
    pub run_id: String,
    pub plan: String,
    pub content_hash: String,
    /// When the first session started.
    pub started: Option<String>,
    /// The time of the last record with a time.
    pub last_at: Option<String>,
    /// `Some` once a `run_finished` record was written.
    pub status: Option<RunStatus>,
    pub finished: Option<String>,
    /// Processes that worked on the run: 1, plus one per resume.
    pub sessions: u32,
    pub steps: IndexMap<String, StepState>,
    /// Forward steps in the order they succeeded (the undo order is its reverse).
    pub completion_order: Vec<String>,
    /// The last rollback started, if any.
    pub rollback: Option<RollbackInfo>,
    pub signals: Vec<SignalInfo>,
    /// Run-time fan-outs: each step's items as the run rendered them (resume expands the
    /// plan with these, not with a list rendered again).
    #[serde(skip_serializing_if = "IndexMap::is_empty")]
    pub fan_outs: IndexMap<String, Vec<serde_json::Value>>,
    /// Time spent, summed over sessions that finished; the open one counts up to `last_at`.
    pub duration_ms: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct RollbackInfo {
    pub reason: String,
    pub undo: Vec<String>,
    pub cleanup: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct SignalInfo {
    pub signal: String,
    pub action: String,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct StepState {
    pub forward: Option<PhaseState>,
    pub check: Option<PhaseState>,
    pub undo: Option<PhaseState>,
    pub cleanup: Option<PhaseState>,
    /// Process groups the step started (pgid, leader start time), in any phase.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub children: Vec<(i32, u64)>,
}

impl StepState {
    pub fn phase(&self, phase: Phase) -> Option<&PhaseState> {
        match phase {
            Phase::Forward => self.forward.as_ref(),
            Phase::Check => self.check.as_ref(),
            Phase::Undo => self.undo.as_ref(),
            Phase::Cleanup => self.cleanup.as_ref(),
        }
    }
    fn phase_mut(&mut self, phase: Phase) -> &mut Option<PhaseState> {
        match phase {
            Phase::Forward => &mut self.forward,
            Phase::Check => &mut self.check,
            Phase::Undo => &mut self.undo,
            Phase::Cleanup => &mut self.cleanup,
        }
    }
}

/// A step in one phase: running (in doubt after a crash) or finished.
#[derive(Debug, Clone, Default, Serialize)]
pub struct PhaseState {
    /// `None` while started but not finished.
    pub status: Option<StepStatus>,
    pub attempts: Vec<Attempt>,
    pub outputs: Option<Outputs>,
    pub error: Option<String>,
    pub duration_ms: u64,
    pub finished_at: Option<String>,
    /// Failed with a refusal (`refused_when` matched): nothing acquired, nothing to release.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub refused: bool,
}

impl PhaseState {
    /// Started and never finished: what the crash left undecided.
    pub fn in_doubt(&self) -> bool {
        self.status.is_none()
    }
    pub fn succeeded(&self) -> bool {
        self.status == Some(StepStatus::Succeeded)
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Attempt {
    pub number: u32,
    pub at: String,
    pub action: String,
    pub error: Option<String>,
}

impl RunState {
    /// Steps (with their phase) that started and have no finish record.
    pub fn in_doubt(&self) -> Vec<(String, Phase)> {
        let mut out = Vec::new();
        for (id, s) in &self.steps {
            for phase in [Phase::Forward, Phase::Check, Phase::Undo, Phase::Cleanup] {
                if s.phase(phase).is_some_and(PhaseState::in_doubt) {
                    out.push((id.clone(), phase));
                }
            }
        }
        out
    }
    /// The run stopped inside its rollback (it started one and did not finish).
    pub fn rolling_back(&self) -> bool {
        self.status.is_none() && self.rollback.is_some()
    }
}

fn ms_between(from: &str, to: &str) -> u64 {
    match (
        humantime::parse_rfc3339_weak(from),
        humantime::parse_rfc3339_weak(to),
    ) {
        (Ok(a), Ok(b)) => b.duration_since(a).map_or(0, |d| d.as_millis() as u64),
        _ => 0,
    }
}

/// Folds records, in order, into the run's state. Pure: the same records give the same state.
pub fn fold(records: &[Record]) -> RunState {
    let mut st = RunState::default();
    let mut session_start: Option<String> = None;
    let mut closed_ms = 0u64;
    for r in records {
        match &r.event {
            RunEvent::RunStarted {
                run_id,
                plan,
                content_hash,
                steps,
                at,
                ..
            } => {
                st.run_id = run_id.clone();
                st.plan = plan.clone();
                st.content_hash = content_hash.clone();
                st.sessions += 1;
                st.started.get_or_insert_with(|| at.clone());
                st.status = None;
                st.finished = None;
                session_start = Some(at.clone());
                for id in steps {
                    st.steps.entry(id.clone()).or_default();
                }
                st.last_at = Some(at.clone());
            }
            RunEvent::StepStarted {
                step,
                phase,
                attempt,
                action,
                at,
            } => {
                let slot = st.steps.entry(step.clone()).or_default().phase_mut(*phase);
                // A new first attempt starts the phase over (a step run again on resume).
                if *attempt == 1 || slot.is_none() {
                    *slot = Some(PhaseState::default());
                }
                if let Some(p) = slot {
                    p.status = None;
                    p.attempts.push(Attempt {
                        number: *attempt,
                        at: at.clone(),
                        action: action.clone(),
                        error: None,
                    });
                }
                if *phase == Phase::Forward {
                    st.completion_order.retain(|s| s != step);
                }
                st.last_at = Some(at.clone());
            }
            RunEvent::StepLog { .. } => {}
            RunEvent::ChildStarted {
                step, pgid, start, ..
            } => st
                .steps
                .entry(step.clone())
                .or_default()
                .children
                .push((*pgid, *start)),
            RunEvent::AttemptFailed {
                step,
                phase,
                attempt,
                error,
                ..
            } => {
                if let Some(p) = st
                    .steps
                    .get_mut(step)
                    .and_then(|s| s.phase_mut(*phase).as_mut())
                {
                    if let Some(a) = p.attempts.iter_mut().rev().find(|a| a.number == *attempt) {
                        a.error = Some(error.clone());
                    }
                }
            }
            RunEvent::StepFinished {
                step,
                phase,
                status,
                duration_ms,
                outputs,
                error,
                at,
                refused,
                ..
            } => {
                let slot = st.steps.entry(step.clone()).or_default().phase_mut(*phase);
                let p = slot.get_or_insert_with(PhaseState::default);
                p.status = Some(*status);
                p.refused = *refused;
                p.outputs = outputs.clone();
                p.error = error.clone();
                p.duration_ms = *duration_ms;
                p.finished_at = Some(at.clone());
                if let (Some(e), Some(a)) = (error, p.attempts.last_mut()) {
                    a.error.get_or_insert_with(|| e.clone());
                }
                if *phase == Phase::Forward && *status == StepStatus::Succeeded {
                    st.completion_order.retain(|s| s != step);
                    st.completion_order.push(step.clone());
                }
                st.last_at = Some(at.clone());
            }
            RunEvent::RollbackStarted {
                reason,
                undo,
                cleanup,
                ..
            } => {
                st.rollback = Some(RollbackInfo {
                    reason: reason.clone(),
                    undo: undo.clone(),
                    cleanup: cleanup.clone(),
                });
            }
            RunEvent::FanOut { step, items, .. } => {
                st.fan_outs.insert(step.clone(), items.clone());
            }
            RunEvent::Signal { signal, action } => st.signals.push(SignalInfo {
                signal: signal.clone(),
                action: action.clone(),
            }),
            RunEvent::RunFinished {
                status,
                duration_ms,
                at,
            } => {
                st.status = Some(*status);
                st.finished = Some(at.clone());
                st.last_at = Some(at.clone());
                closed_ms += duration_ms;
                session_start = None;
            }
        }
    }
    st.duration_ms = closed_ms
        + match (&session_start, &st.last_at) {
            (Some(from), Some(to)) => ms_between(from, to),
            _ => 0,
        };
    st
}
