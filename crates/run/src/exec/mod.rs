//! The executor: runs a compiled plan on tokio with bounded parallelism, retries and
//! timeouts; on failure or cancel it stops scheduling, cancels running steps, runs undo in
//! reverse completion order and then the cleanup of every resource that may be held.
//! It only emits [`events::RunEvent`]s; sinks print and record them.

pub mod events;
pub use opsplan_plan::rollback;

use events::{now, EventSink, Phase, RunEvent, RunStatus, StepStatus};
use futures::FutureExt;
use opsplan_plan::compile::{CompiledPlan, RetryPolicy};
use opsplan_plan::rollback::State;
use opsplan_plan::source::Node;
use opsplan_plan::step::{Answers, DynStepType, Outputs, Prompter, StepContext, StepError};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

#[derive(Debug, Clone)]
pub struct RunOptions {
    pub run_id: String,
    pub max_parallel: usize,
    pub answers: Answers,
    /// Who is asked about `confirm` and destructive steps.
    pub prompter: Arc<dyn Prompter>,
    /// SIGTERM-to-SIGKILL grace for cancelled child processes.
    pub grace: Duration,
    /// `run.started` in templates; a resumed run keeps the time it first started.
    pub started: Option<String>,
}

/// Signals the executor listens to: `cancel` stops the run (first Ctrl-C); `hurry` skips
/// the grace period of processes being stopped (second Ctrl-C). Cleanup ignores both.
#[derive(Clone, Default)]
pub struct Interrupts {
    pub cancel: CancellationToken,
    pub hurry: CancellationToken,
    /// Set by the executor when undo and cleanup start, so the signal handler can say that
    /// a signal now is ignored rather than promise to hurry anything.
    pub rolling_back: Arc<std::sync::atomic::AtomicBool>,
    /// Why `cancel` fired when it was not a signal (the journal could not be written, a
    /// lock lease was lost): the reason the rollback gives.
    pub reason: Arc<std::sync::OnceLock<String>>,
}

impl Interrupts {
    /// Cancels the run for `reason` (a signal, a lost lock lease).
    pub fn cancel_for(&self, reason: impl Into<String>) {
        let _ = self.reason.set(reason.into());
        self.cancel.cancel();
    }
    fn cancel_reason(&self) -> String {
        self.reason
            .get()
            .cloned()
            .unwrap_or_else(|| "cancelled by signal".into())
    }
}

#[derive(Debug, Clone)]
pub struct StepRecord {
    pub id: String,
    pub phase: Phase,
    pub status: StepStatus,
    pub attempts: u32,
    pub duration: Duration,
    pub error: Option<String>,
    /// Failed with a refusal (its `refused_when` matched): nothing acquired.
    pub refused: bool,
    /// What the summary says besides an error: how many items a run-time fan-out had
    /// (none: nothing ran, said so rather than silently).
    pub note: Option<String>,
}

#[derive(Debug, Clone)]
pub struct RunReport {
    pub status: RunStatus,
    pub records: Vec<StepRecord>,
    pub duration: Duration,
    /// Resources a step that started acquired and no step released (its release failed or
    /// never ran), in plan order: what the run may have left held. Empty after a success and
    /// after a rollback whose releases all succeeded.
    pub held: Vec<String>,
    /// Resources whose release did not run because their acquire was refused (someone
    /// else holds them), in plan order.
    pub not_released: Vec<String>,
}

struct Outcome {
    index: usize,
    status: StepStatus,
    attempts: u32,
    duration: Duration,
    outputs: Option<Outputs>,
    error: Option<String>,
    /// Failed, and every failed attempt matched the step's `refused_when`.
    refused: bool,
}

impl Outcome {
    /// The rollback state this outcome leaves.
    fn state(&self) -> State {
        if self.refused && self.status == StepStatus::Failed {
            State::Refused
        } else {
            State::Done(self.status)
        }
    }
}

/// Resumed state: what an earlier process of the same run did (folded from its journal).
#[derive(Debug, Clone, Default)]
pub struct Prior {
    pub states: Vec<State>,
    pub outputs: HashMap<usize, serde_json::Value>,
    pub completion_order: Vec<usize>,
    /// Undo and cleanup that already succeeded: not run again.
    pub rolled_back: HashSet<(Phase, usize)>,
    /// Forward steps a crash left started but not finished, and how to settle each before
    /// the run goes on (their state is `NotRun`).
    pub in_doubt: Vec<(usize, InDoubt)>,
    /// The reason of the rollback a resumed `rollback_only` run finishes.
    pub rollback_reason: Option<String>,
    /// The earlier process was stopped by a signal: a finished rollback ends `cancelled`.
    pub cancelled: bool,
}

/// How `resume` settles a step left in doubt (from its `on_resume`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InDoubt {
    /// Run it again.
    Rerun,
    /// Run its `undo`, then run it again.
    Compensate,
    /// Run its probe: success means the step's effect is there (the probe's outputs stand
    /// in for the step's); failure means it is not, and the step runs again.
    Check,
}

pub struct Executor {
    /// The plan as compiled, then as each run-time fan-out expands it (a new value per
    /// expansion: a step already running keeps the one it started with).
    plan: std::sync::RwLock<Arc<CompiledPlan>>,
    opts: RunOptions,
    sink: Arc<dyn EventSink>,
    interrupts: Interrupts,
    /// The `run` value of templates: how the run is going changes when a rollback starts.
    run_ctx: std::sync::RwLock<serde_json::Value>,
    /// Every secret param as `OPSPLAN_SECRET_<NAME>`, set in each child process, so a
    /// script can use a secret without it being rendered into its argv.
    secret_env: Arc<Vec<(String, String)>>,
    /// The steps that ask (`confirm`) an operator answered yes to in this process: the
    /// destructive steps that need one are approved by that answer.
    approved: Arc<std::sync::Mutex<HashSet<usize>>>,
}

impl Executor {
    pub fn new(
        plan: Arc<CompiledPlan>,
        opts: RunOptions,
        sink: Arc<dyn EventSink>,
        interrupts: Interrupts,
    ) -> Self {
        let started = opts.started.clone().unwrap_or_else(now);
        let run_ctx = std::sync::RwLock::new(opsplan_plan::compile::run_value(
            &opts.run_id,
            &started,
            "succeeded",
            "",
            "",
        ));
        let secret_env = Arc::new(secret_env(&plan));
        Executor {
            plan: std::sync::RwLock::new(plan),
            opts,
            sink,
            interrupts,
            run_ctx,
            secret_env,
            approved: Arc::default(),
        }
    }

    /// The plan now (expanded by the run-time fan-outs so far).
    fn plan(&self) -> Arc<CompiledPlan> {
        match self.plan.read() {
            Ok(p) => p.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    fn set_plan(&self, plan: Arc<CompiledPlan>) {
        match self.plan.write() {
            Ok(mut p) => *p = plan,
            Err(poisoned) => *poisoned.into_inner() = plan,
        }
    }

    /// The `run` value templates read now.
    fn run_ctx(&self) -> serde_json::Value {
        match self.run_ctx.read() {
            Ok(v) => v.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// From here on (undo, cleanup), templates read how the run went: `run.status`,
    /// `run.failed_step` and `run.error` (secrets masked).
    fn set_run_outcome(&self, cancelled: bool, reason: &str) {
        let reason = self.plan().redactor.redact(reason).into_owned();
        let (step, error) = match opsplan_plan::compile::failed_step_of(&reason) {
            Some((step, error)) => (step.to_string(), error.to_string()),
            None => (String::new(), reason.clone()),
        };
        let status = if cancelled { "cancelled" } else { "failed" };
        let mut ctx = match self.run_ctx.write() {
            Ok(v) => v,
            Err(poisoned) => poisoned.into_inner(),
        };
        ctx["status"] = status.into();
        ctx["failed_step"] = step.into();
        ctx["error"] = error.into();
    }

    /// Whether an operator's yes to a `confirm` that step `i` needs (directly or not)
    /// already approved it, in this process.
    fn approved_by_confirm(&self, i: usize) -> bool {
        let approved = match self.approved.lock() {
            Ok(a) => a,
            Err(poisoned) => poisoned.into_inner(),
        };
        !approved.is_empty()
            && self
                .plan()
                .ancestors(i)
                .iter()
                .enumerate()
                .any(|(j, &up)| up && approved.contains(&j))
    }

    /// The destructive steps after step `i` (those that need it) that a yes to it approves.
    fn approves(&self, i: usize) -> Vec<String> {
        let plan = &self.plan();
        if self.opts.answers.force || !plan.steps[i].kind.asks(&plan.steps[i].with) {
            return Vec::new();
        }
        (0..plan.steps.len())
            .filter(|&k| plan.steps[k].destructive && plan.ancestors(k)[i])
            .map(|k| plan.steps[k].id.clone())
            .collect()
    }

    pub async fn run(&self) -> RunReport {
        self.run_from(Prior::default(), false).await
    }

    /// Runs the plan, continuing from `prior`; with `rollback_only` nothing new starts and
    /// only undo and cleanup run.
    pub async fn run_from(&self, prior: Prior, rollback_only: bool) -> RunReport {
        let started = Instant::now();
        let mut plan = self.plan();
        let n = plan.steps.len();
        let mut states = if prior.states.len() == n {
            prior.states.clone()
        } else {
            vec![State::NotRun; n]
        };
        let mut outputs = prior.outputs.clone();
        for (i, state) in states.iter().enumerate() {
            if *state == State::Done(StepStatus::Skipped) {
                outputs.entry(i).or_insert_with(|| serde_json::json!({}));
            }
        }
        let mut completion_order = prior.completion_order.clone();
        let mut records = Vec::new();
        // Durable with the first record that must be (nothing has happened yet).
        self.sink.emit_unsynced(&[RunEvent::RunStarted {
            run_id: self.opts.run_id.clone(),
            plan: plan.name.clone(),
            version: plan.version.clone(),
            content_hash: plan.content_hash.clone(),
            steps: plan.steps.iter().map(|s| s.id.clone()).collect(),
            at: now(),
        }]);

        let forward_token = self.interrupts.cancel.child_token();
        let mut failure: Option<String> = if rollback_only {
            Some(
                prior
                    .rollback_reason
                    .clone()
                    .unwrap_or_else(|| "rollback requested".into()),
            )
        } else {
            None
        };
        if failure.is_none() {
            failure = self
                .settle_in_doubt(
                    &prior.in_doubt,
                    &forward_token,
                    &mut states,
                    &mut outputs,
                    &mut completion_order,
                    &mut records,
                )
                .await;
        }
        let mut running: JoinSet<Outcome> = JoinSet::new();
        let mut in_flight = vec![false; n];
        // Ready steps are found from the dependents of the step that just finished, not by
        // rescanning every step: a chain of n steps costs n, not n².
        let mut ready = Readiness::new(&plan, &states);
        // A `step_finished` of a step whose record matters (not rerun-safe, or holding
        // something) was written but is not durable yet: it must be before anything that
        // depends on it starts, and before the scheduler waits.
        let mut finish_unsynced = false;
        loop {
            let mut starts: Vec<(usize, Call)> = Vec::new();
            if failure.is_none() && !self.interrupts.cancel.is_cancelled() {
                // Start every ready step, lowest index first, up to the parallelism limit.
                while running.len() + starts.len() < self.opts.max_parallel.max(1) {
                    let Some(i) = ready.next() else { break };
                    if in_flight[i] || states[i] != State::NotRun {
                        continue;
                    }
                    let prepared = match plan.steps[i].fan_out.as_ref().map(|f| &f.items) {
                        None => self.prepare(i, &outputs),
                        Some(None) if self.skipped_before_fan_out(i, &outputs) => Prepared::Skip,
                        // Its needs are done: its list is known now.
                        Some(None) => match self.fan_out_items(i, &outputs) {
                            Ok(items) => {
                                let ids;
                                (plan, ids) = self.expand(&plan, i, &items);
                                states.resize(plan.steps.len(), State::NotRun);
                                in_flight.resize(plan.steps.len(), false);
                                ready.expanded(i, &ids);
                                continue;
                            }
                            Err(msg) => Prepared::Fail(msg),
                        },
                        // Every item succeeded or was skipped: the step is done.
                        Some(Some(items)) => {
                            let count = items.len();
                            states[i] = State::Done(StepStatus::Succeeded);
                            ready.done(i);
                            let event = self.fan_out_finished(i, count, &mut records);
                            self.sink.emit_unsynced(&[event]);
                            finish_unsynced = true;
                            continue;
                        }
                    };
                    match prepared {
                        Prepared::Skip => {
                            states[i] = State::Done(StepStatus::Skipped);
                            ready.done(i);
                            // A skipped step's outputs are empty: each one is undefined.
                            outputs.insert(i, serde_json::json!({}));
                            // Nothing happened: if the record is lost, resume evaluates
                            // `when` again.
                            let event = self.finish_record(
                                i,
                                Phase::Forward,
                                StepStatus::Skipped,
                                0,
                                Duration::ZERO,
                                None,
                                None,
                                &mut records,
                            );
                            self.sink.emit_unsynced(&[event]);
                            continue;
                        }
                        Prepared::Fail(msg) => {
                            states[i] = State::Done(StepStatus::Failed);
                            self.finish_event(
                                i,
                                Phase::Forward,
                                StepStatus::Failed,
                                0,
                                Duration::ZERO,
                                None,
                                Some(msg.clone()),
                                &mut records,
                            );
                            failure = Some(format!("step `{}` failed: {msg}", plan.steps[i].id));
                            forward_token.cancel();
                            break;
                        }
                        Prepared::Run(call) => {
                            in_flight[i] = true;
                            starts.push((i, call));
                        }
                    }
                }
            }
            // Group commit: a step that needs its `step_started` durable syncs it before its
            // effect, and that sync covers the finished records written above. Otherwise
            // they are synced here, before the steps that need them start.
            let covered = starts
                .iter()
                .any(|(i, call)| !call.destructive && needs_durable_start(&plan.steps[*i]));
            if finish_unsynced && !covered && (!starts.is_empty() || !running.is_empty()) {
                self.sink.sync();
            }
            finish_unsynced = false;
            for (i, call) in starts {
                let token = forward_token.child_token();
                let fut = self.attempt_loop(i, Phase::Forward, call, token);
                running.spawn(fut);
            }
            if running.is_empty() {
                break;
            }
            let joined = tokio::select! {
                j = running.join_next() => j,
                _ = self.interrupts.cancel.cancelled(), if !forward_token.is_cancelled() => {
                    forward_token.cancel();
                    failure.get_or_insert_with(|| self.interrupts.cancel_reason());
                    continue;
                }
            };
            let Some(joined) = joined else { break };
            // Every step that has finished by now is recorded with one journal sync before
            // anything that depends on them starts (parallel steps finish in bursts).
            let mut batch = vec![joined];
            while let Some(j) = running.try_join_next() {
                batch.push(j);
            }
            let mut finished = Vec::with_capacity(batch.len());
            for joined in batch {
                let outcome = match joined {
                    Ok(o) => o,
                    Err(e) => {
                        // A panicking step is a bug; treat it as a failure of an unknown step.
                        failure.get_or_insert_with(|| format!("a step task ended abnormally: {e}"));
                        forward_token.cancel();
                        continue;
                    }
                };
                let i = outcome.index;
                in_flight[i] = false;
                finish_unsynced |= needs_durable_start(&plan.steps[i]);
                states[i] = outcome.state();
                if outcome.status == StepStatus::Succeeded {
                    completion_order.push(i);
                    ready.done(i);
                }
                // A failed or cancelled step may leave outputs saying what it still holds.
                if let Some(out) = &outcome.outputs {
                    outputs.insert(i, serde_json::Value::Object(out.clone()));
                }
                if outcome.status == StepStatus::Failed && failure.is_none() {
                    failure = Some(format!(
                        "step `{}` failed{}: {}",
                        plan.steps[i].id,
                        if outcome.refused {
                            " (refused: nothing acquired)"
                        } else {
                            ""
                        },
                        outcome.error.clone().unwrap_or_default()
                    ));
                    forward_token.cancel();
                }
                let refused = outcome.refused;
                let mut event = self.finish_record(
                    i,
                    Phase::Forward,
                    outcome.status,
                    outcome.attempts,
                    outcome.duration,
                    outcome.outputs,
                    outcome.error,
                    &mut records,
                );
                mark_refused(&mut event, &mut records, refused);
                finished.push(event);
            }
            // Durable with the next sync: of a step started next, or before the scheduler
            // waits, or of the rollback's or the run's end.
            self.sink.emit_unsynced(&finished);
        }

        let cancelled = self.interrupts.cancel.is_cancelled() || prior.cancelled;
        let mut released = Vec::new();
        let status = if failure.is_none() && !cancelled {
            RunStatus::Succeeded
        } else {
            let reason = failure.unwrap_or_else(|| self.interrupts.cancel_reason());
            self.set_run_outcome(cancelled, &reason);
            let (ok, cleaned) = self
                .rollback(
                    &reason,
                    &states,
                    &completion_order,
                    &prior.rolled_back,
                    &mut outputs,
                    &mut records,
                )
                .await;
            released = cleaned;
            match (ok, cancelled) {
                (false, _) => RunStatus::RollbackFailed,
                (true, true) => RunStatus::Cancelled,
                (true, false) => RunStatus::Failed,
            }
        };
        let held = still_held(&plan, &states, &released);
        let not_released = if status == RunStatus::Succeeded {
            Vec::new()
        } else {
            rollback::plan_rollback(&plan, &completion_order, &states).refused
        };
        let duration = started.elapsed();
        self.sink.emit(&RunEvent::RunFinished {
            status,
            duration_ms: duration.as_millis() as u64,
            at: now(),
        });
        RunReport {
            status,
            records,
            duration,
            held,
            not_released,
        }
    }

    /// Settles the steps a crash left in doubt (resume), before anything else starts.
    /// Returns a failure when a compensation failed: the run then rolls back.
    async fn settle_in_doubt(
        &self,
        in_doubt: &[(usize, InDoubt)],
        token: &CancellationToken,
        states: &mut [State],
        outputs: &mut HashMap<usize, serde_json::Value>,
        completion_order: &mut Vec<usize>,
        records: &mut Vec<StepRecord>,
    ) -> Option<String> {
        for &(i, how) in in_doubt {
            let step = &self.plan().steps[i];
            let (phase, action) = match how {
                InDoubt::Rerun => continue,
                InDoubt::Compensate => (Phase::Undo, step.undo.clone()),
                InDoubt::Check => (Phase::Check, step.probe.clone()),
            };
            let Some(action) = action else { continue };
            let o = match self.action_call(i, &action, outputs) {
                Ok(call) => self.attempt_loop(i, phase, call, token.child_token()).await,
                Err(msg) => Outcome {
                    index: i,
                    status: StepStatus::Failed,
                    attempts: 0,
                    duration: Duration::ZERO,
                    outputs: None,
                    error: Some(msg),
                    refused: false,
                },
            };
            let status = o.status;
            let out = o.outputs.clone();
            self.finish_outcome(phase, o, records);
            match (how, status) {
                (InDoubt::Check, StepStatus::Succeeded) => {
                    // The effect is there: the step counts as done, with the probe's outputs.
                    states[i] = State::Done(StepStatus::Succeeded);
                    completion_order.push(i);
                    if let Some(out) = &out {
                        outputs.insert(i, serde_json::Value::Object(out.clone()));
                    }
                    self.finish_event(
                        i,
                        Phase::Forward,
                        StepStatus::Succeeded,
                        0,
                        Duration::ZERO,
                        out,
                        None,
                        records,
                    );
                }
                (InDoubt::Check, _) | (InDoubt::Compensate, StepStatus::Succeeded) => {}
                (InDoubt::Compensate | InDoubt::Rerun, _) => {
                    // It may still hold what it took: count it as started, so cleanup runs.
                    states[i] = State::Done(StepStatus::Cancelled);
                    return Some(format!(
                        "the undo of `{}`, left in doubt by the crash, failed",
                        step.id
                    ));
                }
            }
            if token.is_cancelled() {
                return Some("cancelled by signal".into());
            }
        }
        None
    }

    /// Undo, then cleanup, each sequentially. Signals no longer stop anything here.
    /// Returns whether all of it succeeded, and the cleanup steps that succeeded (here or
    /// in an earlier process of the run).
    async fn rollback(
        &self,
        reason: &str,
        states: &[State],
        completion_order: &[usize],
        done: &HashSet<(Phase, usize)>,
        outputs: &mut HashMap<usize, serde_json::Value>,
        records: &mut Vec<StepRecord>,
    ) -> (bool, Vec<usize>) {
        let mut released = Vec::new();
        self.interrupts
            .rolling_back
            .store(true, std::sync::atomic::Ordering::SeqCst);
        let plan = &self.plan();
        let mut rb = rollback::plan_rollback(plan, completion_order, states);
        rb.undo.retain(|&i| !done.contains(&(Phase::Undo, i)));
        rb.cleanup.retain(|&i| !done.contains(&(Phase::Cleanup, i)));
        // Cleanup an earlier process of this run finished (resume) released its resources.
        released.extend(
            done.iter()
                .filter(|(phase, _)| *phase == Phase::Cleanup)
                .map(|&(_, i)| i),
        );
        self.sink.emit(&RunEvent::RollbackStarted {
            reason: self.plan().redactor.redact(reason).into_owned(),
            undo: rb.undo.iter().map(|&i| plan.steps[i].id.clone()).collect(),
            cleanup: rb
                .cleanup
                .iter()
                .map(|&i| plan.steps[i].id.clone())
                .collect(),
            not_released: rb.refused.clone(),
        });
        let mut ok = true;
        for &i in &rb.undo {
            let Some(undo) = plan.steps[i].undo.clone() else {
                continue;
            };
            let call = match self.action_call(i, &undo, outputs) {
                Ok(call) => call,
                Err(msg) => {
                    ok = false;
                    self.finish_event(
                        i,
                        Phase::Undo,
                        StepStatus::Failed,
                        0,
                        Duration::ZERO,
                        None,
                        Some(msg),
                        records,
                    );
                    continue;
                }
            };
            // A fresh token: a Ctrl-C during rollback must not cut the rollback short.
            let o = self
                .attempt_loop(i, Phase::Undo, call, CancellationToken::new())
                .await;
            ok &= o.status == StepStatus::Succeeded;
            self.finish_outcome(Phase::Undo, o, records);
        }
        for &i in &rb.cleanup {
            // An `always` step's `when` is decided here too, with how the run went
            // (`when: "{{ run.status == 'failed' }}"`); a release has none (E053).
            let o = match self.prepare(i, outputs) {
                Prepared::Run(call) => {
                    self.attempt_loop(i, Phase::Cleanup, call, CancellationToken::new())
                        .await
                }
                Prepared::Skip => Outcome {
                    index: i,
                    status: StepStatus::Skipped,
                    attempts: 0,
                    duration: Duration::ZERO,
                    outputs: None,
                    error: None,
                    refused: false,
                },
                Prepared::Fail(msg) => Outcome {
                    index: i,
                    status: StepStatus::Failed,
                    attempts: 0,
                    duration: Duration::ZERO,
                    outputs: None,
                    error: Some(msg),
                    refused: false,
                },
            };
            ok &= matches!(o.status, StepStatus::Succeeded | StepStatus::Skipped);
            if o.status == StepStatus::Succeeded {
                released.push(i);
            }
            if let (StepStatus::Succeeded, Some(out)) = (o.status, &o.outputs) {
                outputs.insert(i, serde_json::Value::Object(out.clone()));
            }
            self.finish_outcome(Phase::Cleanup, o, records);
        }
        (ok, released)
    }

    fn finish_outcome(&self, phase: Phase, o: Outcome, records: &mut Vec<StepRecord>) {
        self.finish_event(
            o.index, phase, o.status, o.attempts, o.duration, o.outputs, o.error, records,
        );
    }

    #[allow(clippy::too_many_arguments)]
    fn finish_event(
        &self,
        i: usize,
        phase: Phase,
        status: StepStatus,
        attempts: u32,
        duration: Duration,
        outputs: Option<Outputs>,
        error: Option<String>,
        records: &mut Vec<StepRecord>,
    ) {
        let event = self.finish_record(
            i, phase, status, attempts, duration, outputs, error, records,
        );
        self.sink.emit(&event);
    }

    /// The `StepFinished` event of a step (not yet emitted), with its record added.
    #[allow(clippy::too_many_arguments)]
    fn finish_record(
        &self,
        i: usize,
        phase: Phase,
        status: StepStatus,
        attempts: u32,
        duration: Duration,
        outputs: Option<Outputs>,
        error: Option<String>,
        records: &mut Vec<StepRecord>,
    ) -> RunEvent {
        let redactor = &self.plan().redactor;
        let error = error.map(|e| redactor.redact(&e).into_owned());
        let outputs = outputs.map(|o| {
            let mut v = serde_json::Value::Object(o);
            redactor.redact_json(&mut v);
            match v {
                serde_json::Value::Object(m) => m,
                _ => Outputs::new(),
            }
        });
        records.push(StepRecord {
            id: self.plan().steps[i].id.clone(),
            phase,
            status,
            attempts,
            duration,
            error: error.clone(),
            refused: false,
            note: None,
        });
        RunEvent::StepFinished {
            step: self.plan().steps[i].id.clone(),
            phase,
            status,
            attempts,
            duration_ms: duration.as_millis() as u64,
            outputs,
            error,
            at: now(),
            refused: false,
        }
    }

    fn render(
        &self,
        i: usize,
        with: &Node,
        outputs: &HashMap<usize, serde_json::Value>,
    ) -> Result<(Node, Node), String> {
        let plan = &self.plan();
        let real_ctx = plan.context(i, outputs, true, false, &self.run_ctx());
        let masked_ctx = plan.context(i, outputs, false, false, &self.run_ctx());
        let failed = |d: opsplan_plan::diagnostic::Diagnostic| self.render_error(i, with, &d);
        let real = opsplan_plan::template::render_node(with, &real_ctx, None).map_err(failed)?;
        let masked =
            opsplan_plan::template::render_node(with, &masked_ctx, None).map_err(failed)?;
        Ok((real, masked))
    }

    /// A template of step `i` that failed to render, named by step, field and template
    /// text (as written, so no secret value is in it), with how to guard an output that a
    /// skipped or failed step did not set.
    fn render_error(
        &self,
        i: usize,
        with: &Node,
        d: &opsplan_plan::diagnostic::Diagnostic,
    ) -> String {
        let step = &self.plan().steps[i].id;
        let place = d
            .primary_span()
            .and_then(|span| opsplan_plan::template::locate(with, span));
        let mut message = match place {
            Some((path, text)) => {
                format!(
                    "`with{path}` of step `{step}`, template `{text}`: {}",
                    d.message
                )
            }
            None => format!("`with` of step `{step}`: {}", d.message),
        };
        if d.message.contains("undefined value") && d.message.contains("steps.") {
            message.push_str(
                "; a step that was skipped, failed or did not run sets no outputs: guard the read with `is defined` or `| default(…)`",
            );
        }
        message
    }

    /// Expands run-time fan-out step `i` into `items`, recorded first (durable before any
    /// item starts: a resume runs these). Returns the expanded plan, which the executor
    /// uses from now on, and the items' indices.
    fn expand(
        &self,
        plan: &CompiledPlan,
        i: usize,
        items: &[serde_json::Value],
    ) -> (Arc<CompiledPlan>, Vec<usize>) {
        let mut journaled = serde_json::Value::Array(items.to_vec());
        plan.redactor.redact_json(&mut journaled);
        let list = plan.steps[i]
            .fan_out
            .as_ref()
            .map(|f| plan.redactor.redact(&f.text()).into_owned())
            .unwrap_or_default();
        self.sink.emit(&RunEvent::FanOut {
            step: plan.steps[i].id.clone(),
            list,
            items: match journaled {
                serde_json::Value::Array(v) => v,
                _ => Vec::new(),
            },
        });
        let mut expanded = plan.clone();
        let ids = expanded.expand(i, items);
        let expanded = Arc::new(expanded);
        self.set_plan(expanded.clone());
        (expanded, ids)
    }

    /// The finish of run-time fan-out step `i` once its `count` items are done, with the
    /// summary's note (no items is said, not silent).
    fn fan_out_finished(&self, i: usize, count: usize, records: &mut Vec<StepRecord>) -> RunEvent {
        let event = self.finish_record(
            i,
            Phase::Forward,
            StepStatus::Succeeded,
            0,
            Duration::ZERO,
            None,
            None,
            records,
        );
        if let Some(last) = records.last_mut() {
            last.note = Some(if count == 0 {
                "no items: its `for_each` gave an empty list, nothing ran".to_string()
            } else {
                format!("{count} item(s)")
            });
        }
        event
    }

    /// A run-time fan-out step's `when` that does not read `item` is decided before its
    /// list is rendered: false skips the whole step (no items), so a list its producer, skipped
    /// too, never made is not read. One that reads `item` is decided per item.
    fn skipped_before_fan_out(
        &self,
        i: usize,
        outputs: &HashMap<usize, serde_json::Value>,
    ) -> bool {
        let plan = self.plan();
        let Some(when) = &plan.steps[i].when else {
            return false;
        };
        // Decided per item when it reads `item` or `item_index` (by its variables, not its
        // text: `params.itemized` does not read `item`); unreadable: per item, where the
        // error is reported.
        let expression = opsplan_plan::template::condition_expression(&when.value);
        let node = Node::new(
            when.span,
            opsplan_plan::source::NodeValue::Str(when.value.clone()),
        );
        let reads_item =
            opsplan_plan::template::variables(&node, expression, true, None).map_or(true, |vars| {
                vars.iter()
                    .any(|v| matches!(v.split('.').next(), Some("item" | "item_index")))
            });
        if reads_item {
            return false;
        }
        let ctx = plan.context(i, outputs, true, false, &self.run_ctx());
        matches!(
            opsplan_plan::template::eval_condition(when.span, &when.value, &ctx),
            Ok(false)
        )
    }

    /// The items of run-time fan-out step `i`: its `for_each` rendered now, which must give
    /// a list.
    fn fan_out_items(
        &self,
        i: usize,
        outputs: &HashMap<usize, serde_json::Value>,
    ) -> Result<Vec<serde_json::Value>, String> {
        let plan = self.plan();
        let step = &plan.steps[i];
        let Some(fan_out) = &step.fan_out else {
            return Ok(Vec::new());
        };
        let ctx = plan.context(i, outputs, true, false, &self.run_ctx());
        let text = fan_out.text();
        match opsplan_plan::template::render_node(&fan_out.list, &ctx, None) {
            Ok(Node {
                value: opsplan_plan::source::NodeValue::Seq(items),
                ..
            }) => {
                let items: Vec<serde_json::Value> = items.iter().map(Node::to_json).collect();
                // Items become step ids and journal records, which are never masked: a list
                // holding a secret would resume with the mask in place of the value (E046
                // refuses the same of a list given as params).
                let list = serde_json::Value::Array(items);
                let mut journaled = list.clone();
                plan.redactor.redact_json(&mut journaled);
                if journaled != list {
                    return Err(format!(
                        "`for_each` of step `{}`, template `{text}`, gave a list that holds a secret value; its items become step ids and journal records, which are never masked: iterate over names and read the secret inside the step through `env:`",
                        step.id
                    ));
                }
                match list {
                    serde_json::Value::Array(items) => Ok(items),
                    _ => Ok(Vec::new()),
                }
            }
            Ok(other) => Err(format!(
                "`for_each` of step `{}`, template `{text}`, gave {}, not a list",
                step.id,
                other.kind_name()
            )),
            Err(d) => Err(format!(
                "`for_each` of step `{}`, template `{text}`: {}",
                step.id, d.message
            )),
        }
    }

    fn prepare(&self, i: usize, outputs: &HashMap<usize, serde_json::Value>) -> Prepared {
        let step = &self.plan().steps[i];
        if let Some(when) = &step.when {
            let ctx = self
                .plan()
                .context(i, outputs, true, false, &self.run_ctx());
            match opsplan_plan::template::eval_condition(when.span, &when.value, &ctx) {
                Ok(false) => return Prepared::Skip,
                Ok(true) => {}
                Err(d) => {
                    return Prepared::Fail(format!("`when` could not be evaluated: {}", d.message))
                }
            }
        }
        match self.call(i, outputs) {
            Ok(call) => Prepared::Run(call),
            Err(msg) => Prepared::Fail(msg),
        }
    }

    /// An inline action of step `i` (its undo or probe), rendered in the step's context.
    fn action_call(
        &self,
        i: usize,
        action: &opsplan_plan::compile::CompiledAction,
        outputs: &HashMap<usize, serde_json::Value>,
    ) -> Result<Call, String> {
        let (real, masked) = self.render(i, &action.with, outputs)?;
        Ok(Call {
            kind: action.kind.clone(),
            real,
            masked,
            retry: action.retry.clone(),
            timeout: action.timeout,
            destructive: action.destructive,
        })
    }

    fn call(&self, i: usize, outputs: &HashMap<usize, serde_json::Value>) -> Result<Call, String> {
        let step = &self.plan().steps[i];
        let (real, masked) = self.render(i, &step.with, outputs)?;
        Ok(Call {
            kind: step.kind.clone(),
            real,
            masked,
            retry: step.retry.clone(),
            timeout: step.timeout,
            // One answer, not two: a yes to the `confirm` before it approved it.
            destructive: step.destructive && !self.approved_by_confirm(i),
        })
    }

    /// Attempts of one step with retries, backoff, timeout and cancellation.
    fn attempt_loop(
        &self,
        i: usize,
        phase: Phase,
        call: Call,
        token: CancellationToken,
    ) -> impl std::future::Future<Output = Outcome> + Send + 'static {
        let plan = self.plan();
        let sink = self.sink.clone();
        let opts = self.opts.clone();
        let hurry = self.interrupts.hurry.clone();
        let secret_env = self.secret_env.clone();
        let asks =
            phase == Phase::Forward && self.plan().steps[i].kind.asks(&self.plan().steps[i].with);
        let approves = if asks { self.approves(i) } else { Vec::new() };
        let approved = self.approved.clone();
        let attempts = async move {
            let step_id = plan.steps[i].id.clone();
            let plan_info = Arc::new(opsplan_plan::step::PlanInfo {
                name: plan.name.clone(),
                version: plan.version.clone(),
                system: plan.system.clone(),
                run_id: opts.run_id.clone(),
            });
            let started = Instant::now();
            // Time spent waiting for an operator's answer is not the step's time.
            let prompter = Arc::new(TimedPrompter::new(opts.prompter.clone()));
            let took = {
                let prompter = prompter.clone();
                move || started.elapsed().saturating_sub(prompter.waited())
            };
            let action = match call.kind.describe(&call.masked) {
                Ok(a) => a.summary,
                Err(d) => d.message,
            };
            let action = plan.redactor.redact(&action).into_owned();
            if call.destructive {
                if let Err(e) =
                    destructive_gate(&step_id, &action, opts.answers, prompter.as_ref()).await
                {
                    return Outcome {
                        index: i,
                        status: StepStatus::Failed,
                        attempts: 0,
                        duration: took(),
                        outputs: None,
                        error: Some(e),
                        refused: false,
                    };
                }
            }
            let log_sink = sink.clone();
            let log_id = step_id.clone();
            let log: opsplan_plan::step::LogFn = Arc::new(move |stream, line: &str| {
                log_sink.emit(&RunEvent::StepLog {
                    step: log_id.clone(),
                    stream,
                    line: line.to_string(),
                });
            });
            // Forward: the first attempt's record is durable before the effect when the step
            // holds something or is not rerun-safe; a later attempt changes no decision
            // (the step is in doubt from the first). Undo, cleanup and checks: every one.
            let durable_first = phase != Phase::Forward || needs_durable_start(&plan.steps[i]);
            // Only a forward step acquires; undo, cleanup and probes are never refusals.
            let refusal = if phase == Phase::Forward {
                plan.steps[i].refused_when.clone()
            } else {
                None
            };
            let mut all_refused = true;
            let mut attempt = 0;
            loop {
                attempt += 1;
                let record = RunEvent::StepStarted {
                    step: step_id.clone(),
                    phase,
                    attempt,
                    action: action.clone(),
                    at: now(),
                };
                if durable_first && (attempt == 1 || phase != Phase::Forward) {
                    sink.emit(&record);
                } else {
                    sink.emit_unsynced(&[record]);
                }
                let attempt_token = token.child_token();
                let on_child: opsplan_plan::step::ChildFn = {
                    let sink = sink.clone();
                    let step = step_id.clone();
                    // Read only to stop survivors after the engine was killed, when every
                    // written record is there (the page cache outlives the process); a crash
                    // of the machine leaves no survivors. So it is never synced.
                    Arc::new(move |pgid| {
                        sink.emit_unsynced(&[RunEvent::ChildStarted {
                            step: step.clone(),
                            phase,
                            pgid,
                            start: crate::survivors::start_time(pgid).unwrap_or(0),
                        }]);
                    })
                };
                let ctx = StepContext {
                    on_child,
                    step_id: step_id.clone(),
                    cancel: attempt_token.clone(),
                    grace: opts.grace,
                    hurry: hurry.clone(),
                    answers: opts.answers,
                    log: log.clone(),
                    redact: plan.redactor.clone(),
                    secret_env: secret_env.as_ref().clone(),
                    prompter: prompter.clone(),
                    plan: plan_info.clone(),
                    approves: approves.clone(),
                };
                panic_hook(&step_id);
                let fut = call.kind.run(&call.real, ctx);
                let result = run_with_timeout(fut, call.timeout, &attempt_token).await;
                let error = match result {
                    Ok(out) => {
                        if asks
                            && out.get("answered_by").and_then(|v| v.as_str()) == Some("operator")
                        {
                            match approved.lock() {
                                Ok(mut a) => a.insert(i),
                                Err(poisoned) => poisoned.into_inner().insert(i),
                            };
                        }
                        return Outcome {
                            index: i,
                            status: StepStatus::Succeeded,
                            attempts: attempt,
                            duration: took(),
                            outputs: Some(out),
                            error: None,
                            refused: false,
                        };
                    }
                    Err(e) => e,
                };
                if token.is_cancelled() {
                    return Outcome {
                        index: i,
                        status: StepStatus::Cancelled,
                        attempts: attempt,
                        duration: took(),
                        outputs: error.outputs,
                        error: Some("cancelled".into()),
                        refused: false,
                    };
                }
                // A refusal only while every failed attempt was one: after an attempt whose
                // effect is in doubt (a timeout), "already in progress" may be our own.
                all_refused &= refusal
                    .as_ref()
                    .zip(error.answer.as_ref())
                    .is_some_and(|(r, a)| r.matches(a));
                let error_text = plan.redactor.redact(&error.message).into_owned();
                if !error.retryable || attempt >= call.retry.attempts {
                    return Outcome {
                        index: i,
                        status: StepStatus::Failed,
                        attempts: attempt,
                        duration: took(),
                        outputs: error.outputs,
                        error: Some(error_text),
                        refused: all_refused,
                    };
                }
                let delay = backoff(&call.retry, attempt + 1);
                // Informational: no resume decision reads it.
                sink.emit_unsynced(&[RunEvent::AttemptFailed {
                    step: step_id.clone(),
                    phase,
                    attempt,
                    error: error_text,
                    retry_in_ms: Some(delay.as_millis() as u64),
                }]);
                tokio::select! {
                    _ = tokio::time::sleep(delay) => {}
                    _ = token.cancelled() => {
                        return Outcome { index: i, status: StepStatus::Cancelled, attempts: attempt, duration: took(), outputs: None, error: Some("cancelled while waiting to retry".into()), refused: false };
                    }
                }
            }
        };
        // A panic inside a step (a bug) must not lose the step: it counts as failed with
        // its effect unknown, so whatever it may hold is released like any failed step's.
        async move {
            match std::panic::AssertUnwindSafe(attempts).catch_unwind().await {
                Ok(outcome) => outcome,
                Err(payload) => Outcome {
                    index: i,
                    status: StepStatus::Failed,
                    attempts: 1,
                    duration: Duration::ZERO,
                    outputs: None,
                    error: Some(format!(
                        "the step ended abnormally (panic: {}); its effect is unknown",
                        panic_message(payload.as_ref())
                    )),
                    refused: false,
                },
            }
        }
    }
}

/// Which steps can start: a count of unmet `needs` per step, decremented through the
/// finished step's dependents, and the steps whose count reached zero, lowest index first
/// (the order the scheduler has always started them in).
struct Readiness {
    unmet: Vec<usize>,
    dependents: Vec<Vec<usize>>,
    ready: std::collections::BTreeSet<usize>,
}

impl Readiness {
    fn new(plan: &CompiledPlan, states: &[State]) -> Self {
        let n = plan.steps.len();
        let satisfied = |d: usize| {
            matches!(
                states[d],
                State::Done(StepStatus::Succeeded | StepStatus::Skipped)
            )
        };
        let mut unmet = vec![0; n];
        let mut dependents = vec![Vec::new(); n];
        for (i, step) in plan.steps.iter().enumerate() {
            for &d in &step.needs {
                dependents[d].push(i);
                if !satisfied(d) {
                    unmet[i] += 1;
                }
            }
        }
        let ready = (0..n)
            .filter(|&i| unmet[i] == 0 && states[i] == State::NotRun)
            .collect();
        Self {
            unmet,
            dependents,
            ready,
        }
    }

    fn next(&mut self) -> Option<usize> {
        self.ready.pop_first()
    }

    /// Run-time fan-out step `group` was expanded into `items` (appended to the plan, their
    /// needs done): they are ready, and the step waits for them (at once if there are none).
    fn expanded(&mut self, group: usize, items: &[usize]) {
        let n = items.iter().max().map_or(self.unmet.len(), |&m| m + 1);
        self.unmet.resize(n.max(self.unmet.len()), 0);
        self.dependents.resize(self.unmet.len(), Vec::new());
        for &item in items {
            self.dependents[item].push(group);
            self.unmet[group] += 1;
            self.ready.insert(item);
        }
        if items.is_empty() {
            self.ready.insert(group);
        }
    }

    /// Step `i` succeeded or was skipped: its dependents have one unmet need fewer.
    fn done(&mut self, i: usize) {
        for &j in &self.dependents[i] {
            self.unmet[j] = self.unmet[j].saturating_sub(1);
            if self.unmet[j] == 0 {
                self.ready.insert(j);
            }
        }
    }
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "no message".into())
}

/// Test-only fault injection (debug builds): `OPSPLAN_TEST_PANIC_STEP=ID` makes step ID's
/// attempt panic inside its task, as a bug in a step type would.
fn panic_hook(step_id: &str) {
    if cfg!(debug_assertions)
        && std::env::var("OPSPLAN_TEST_PANIC_STEP").is_ok_and(|s| s == step_id)
    {
        panic!("injected by OPSPLAN_TEST_PANIC_STEP");
    }
}

/// Whether a forward step's records must be durable: its `step_started` before its effect,
/// its `step_finished` before anything after it. Not for a step that is rerun-safe
/// (`on_resume: rerun`) and holds nothing (acquires no resource, has no undo to run): if a
/// crash of the machine loses its records, resume runs it again, which is what it would do
/// with the step in doubt anyway. docs/design/0003-journal-and-resume.md has the rules.
pub fn needs_durable_start(step: &opsplan_plan::compile::CompiledStep) -> bool {
    step.on_resume != opsplan_plan::plan::ResumePolicy::Rerun
        || !step.acquires.is_empty()
        || step.undo.is_some()
}

/// `OPSPLAN_SECRET_<NAME>` (upper case, `-` as `_`) for each secret param of the plan.
pub fn secret_env(plan: &CompiledPlan) -> Vec<(String, String)> {
    plan.params
        .0
        .iter()
        .filter(|(_, p)| p.secret)
        .filter_map(|(name, p)| {
            let value = p.value.as_str()?;
            let var: String = name
                .chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() {
                        c.to_ascii_uppercase()
                    } else {
                        '_'
                    }
                })
                .collect();
            Some((format!("OPSPLAN_SECRET_{var}"), value.to_string()))
        })
        .collect()
}

enum Prepared {
    Skip,
    Fail(String),
    Run(Call),
}

struct Call {
    kind: Arc<dyn DynStepType>,
    real: Node,
    masked: Node,
    retry: RetryPolicy,
    timeout: Option<Duration>,
    destructive: bool,
}

/// Runs one attempt; past the timeout, cancels it and waits for its processes to be killed.
async fn run_with_timeout(
    fut: opsplan_plan::step::BoxFuture<Result<Outputs, StepError>>,
    timeout: Option<Duration>,
    token: &CancellationToken,
) -> Result<Outputs, StepError> {
    let Some(limit) = timeout else {
        return fut.await;
    };
    let mut fut = fut;
    tokio::select! {
        r = &mut fut => r,
        _ = tokio::time::sleep(limit) => {
            token.cancel();
            let _ = fut.await;
            Err(StepError::new(format!("timed out after {}", humantime::format_duration(limit))))
        }
    }
}

/// The delay before attempt `next`, with jitter between half and all of it.
pub fn backoff(policy: &RetryPolicy, next: u32) -> Duration {
    let base = policy.delay(next);
    if !policy.jitter || base.is_zero() {
        return base;
    }
    let factor: f64 = 0.5 + rand::random::<f64>() * 0.5;
    base.mul_f64(factor)
}

/// One step's view of the run's prompter: it adds up the time the step waited for answers,
/// which is the operator's thinking time, not the step's (its reported duration leaves it out).
#[derive(Debug)]
struct TimedPrompter {
    inner: Arc<dyn Prompter>,
    waited_ns: Arc<std::sync::atomic::AtomicU64>,
}

impl TimedPrompter {
    fn new(inner: Arc<dyn Prompter>) -> Self {
        TimedPrompter {
            inner,
            waited_ns: Arc::default(),
        }
    }
    fn waited(&self) -> Duration {
        Duration::from_nanos(self.waited_ns.load(std::sync::atomic::Ordering::Relaxed))
    }
}

impl Prompter for TimedPrompter {
    fn can_ask(&self) -> bool {
        self.inner.can_ask()
    }
    fn ask(&self, question: &str) -> opsplan_plan::step::BoxFuture<bool> {
        let asked = self.inner.ask(question);
        let waited = self.waited_ns.clone();
        Box::pin(async move {
            let since = Instant::now();
            let answer = asked.await;
            let ns = u64::try_from(since.elapsed().as_nanos()).unwrap_or(u64::MAX);
            waited.fetch_add(ns, std::sync::atomic::Ordering::Relaxed);
            answer
        })
    }
}

/// A destructive step runs with `--force`, or after a yes from the prompter; never silently.
async fn destructive_gate(
    step: &str,
    action: &str,
    answers: Answers,
    prompter: &dyn Prompter,
) -> Result<(), String> {
    if answers.force {
        return Ok(());
    }
    if !prompter.can_ask() {
        return Err(format!(
            "step `{step}` is destructive and needs --force (no terminal to confirm on)"
        ));
    }
    let question = format!("Step `{step}` is destructive: {action}\n  Run it?");
    if prompter.ask(&question).await {
        Ok(())
    } else {
        Err(format!("destructive step `{step}` was not confirmed"))
    }
}

/// Marks a forward step's finish (its event and its record, the last one) as a refusal.
fn mark_refused(event: &mut RunEvent, records: &mut [StepRecord], refused: bool) {
    if !refused {
        return;
    }
    if let RunEvent::StepFinished { refused: r, .. } = event {
        *r = true;
    }
    if let Some(last) = records.last_mut() {
        last.refused = true;
    }
}

/// The resources a started step acquired that no step released: neither in the forward
/// phase (`states`) nor in the rollback (`released`, the cleanup steps that succeeded).
fn still_held(plan: &CompiledPlan, states: &[State], released: &[usize]) -> Vec<String> {
    let mut held: Vec<String> = Vec::new();
    for (j, s) in plan.steps.iter().enumerate() {
        if !states.get(j).is_some_and(|st| st.started()) {
            continue;
        }
        for r in &s.acquires {
            let given_back = plan.steps.iter().enumerate().any(|(k, t)| {
                t.releases.contains(r)
                    && (states.get(k) == Some(&State::Done(StepStatus::Succeeded))
                        || released.contains(&k))
            });
            if !given_back && !held.contains(r) {
                held.push(r.clone());
            }
        }
    }
    held
}
