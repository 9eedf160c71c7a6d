//! Preparing a resume: find the run's journal, take its owner lock, fold it, load the plan
//! again with the run's params, and decide what happens ([`crate::journal::resume`]).
//! The result is a [`ResumeTicket`] for [`crate::RunBuilder::resume`], or a typed refusal
//! saying why nothing may run.

use crate::exec::events::RunStatus;
use crate::exec::InDoubt;
use crate::journal::format;
use crate::journal::format::Meta;
use crate::journal::store::{self, Liveness};
use crate::journal::{recorder, resume as decide, state};
use crate::lock::{Holder, LockBackend, Takeover};
use opsplan_plan::compile::CompiledPlan;
use opsplan_plan::diagnostic::Diagnostic;
use opsplan_plan::params::ParamInputs;
use opsplan_plan::pipeline::{self, LoadError};
use opsplan_plan::source::{Node, NodeValue, Sources, Span};
use opsplan_plan::step::{Prompter, Registry};
use std::path::PathBuf;
use std::sync::Arc;

/// How long a survivor of the interrupted run gets between SIGTERM and SIGKILL.
const SURVIVOR_GRACE: std::time::Duration = std::time::Duration::from_secs(10);

/// What the caller asks for (`opsplan resume RUN ...`).
#[derive(Debug, Clone, Default)]
pub struct ResumeRequest {
    pub journal_root: PathBuf,
    /// The run id or a unique prefix of it.
    pub run: String,
    /// Only undo and clean up.
    pub rollback: bool,
    pub allow_changed_plan: bool,
    /// Steps left in doubt to run again although their `on_resume` is `ask`.
    pub rerun: Vec<String>,
    /// Secrets given again (NAME, VALUE).
    pub set: Vec<(String, String)>,
}

/// The journal a resumed run appends to: its folder, its owner lock (already taken) and
/// where its records end.
pub struct ResumeJournal {
    pub dir: PathBuf,
    pub owner: nix::fcntl::Flock<std::fs::File>,
    pub last_seq: u64,
    pub valid_len: u64,
}

/// Everything a resumed run needs; hand it to [`crate::RunBuilder::resume`].
pub struct ResumeTicket {
    pub plan: Arc<CompiledPlan>,
    pub run_id: String,
    pub started: String,
    pub journal: ResumeJournal,
    pub prior: crate::exec::Prior,
    pub rollback_only: bool,
    /// Lines for the operator, in order (a torn journal, a changed plan, each decision).
    pub notes: Vec<String>,
    /// Warnings found when the plan was checked again, in `sources`.
    pub warnings: Vec<Diagnostic>,
    pub sources: Arc<Sources>,
}

/// Why a resume did not go ahead. Nothing was run.
#[derive(Debug, thiserror::Error)]
pub enum ResumeRefusal {
    #[error("{0}; `opsplan runs` lists the runs")]
    NotFound(String),
    #[error(
        "run {0} is still running (another opsplan process holds its journal); nothing was done"
    )]
    StillRunning(String),
    #[error("cannot lock the journal in {}: {source}", .dir.display())]
    OwnerLock {
        dir: PathBuf,
        source: std::io::Error,
    },
    #[error("{0}")]
    Unreadable(String),
    #[error("run {run_id} cannot be resumed: its journal was lost while it ran ({reason}), so what it did after that is not on record; nothing was run\n  help: check the system by hand; `opsplan resume {run_id} --rollback` runs its undo and cleanup again")]
    JournalLost { run_id: String, reason: String },
    /// Not an error: the run already ended; leftover locks it held were given back.
    #[error("run {run_id} already finished ({label}); nothing to resume")]
    Finished {
        run_id: String,
        label: &'static str,
        released_locks: Vec<String>,
    },
    #[error("{}\nnothing was run", .0.join("\n"))]
    SecretsMissing(Vec<String>),
    #[error("--set {0}: resume takes only secrets; the other params are the run's own (from its journal)")]
    NotASecret(String),
    #[error("the plan of run {run_id} could not be loaded again; nothing was run")]
    PlanInvalid { run_id: String, error: LoadError },
    #[error("{} changed since run {run_id} started (content hash {then} then, {now} now); nothing was run\n  help: check what changed; resume anyway with --allow-changed-plan", .path.display())]
    PlanChanged {
        path: PathBuf,
        run_id: String,
        then: String,
        now: String,
    },
    #[error("--rerun {0}: the plan has no such step")]
    UnknownStep(String),
    #[error("run {run_id} stopped while {} running; {} may or may not have done {} work, and on_resume is `ask`. Nothing was run.\n  help: check by hand, then `opsplan resume {run_id} --rerun {}` to run it again, or `opsplan resume {run_id} --rollback` to undo and clean up",
        .steps.iter().map(|s| format!("`{s}` was")).collect::<Vec<_>>().join(" and "),
        if .steps.len() == 1 { "it" } else { "they" },
        if .steps.len() == 1 { "its" } else { "their" },
        .steps.join(" --rerun "))]
    InDoubt { run_id: String, steps: Vec<String> },
    #[error("run {run_id} cannot go on: the outputs of {} held a secret, which the journal does not keep, and steps still to run read them. Nothing was run.\n  help: `opsplan resume {run_id} --rerun {}` runs them again for their outputs, or `opsplan resume {run_id} --rollback` undoes and cleans up",
        .steps.iter().map(|s| format!("`{s}`")).collect::<Vec<_>>().join(", "),
        .steps.join(" --rerun "))]
    SecretOutputs { run_id: String, steps: Vec<String> },
}

/// The folder run `req.run` started in, as its journal records it. A resume must work
/// there (relative paths in the run's params name files there): the caller changes to it
/// before [`prepare`], having made its journal and lock folders absolute first.
pub fn original_dir(req: &ResumeRequest) -> Option<PathBuf> {
    let root = crate::journal::absolute(&req.journal_root);
    let dir = store::find(&root, &req.run).ok()?;
    let meta = store::read_meta(&dir).ok()?;
    meta.cwd.map(PathBuf::from).filter(|d| d.is_dir())
}

/// Decides how run `req.run` goes on. `prompter` settles steps in doubt whose `on_resume`
/// is `ask` when it can ask; `locks` is where leftover locks of a finished run are freed.
pub async fn prepare(
    req: &ResumeRequest,
    registry: &Arc<Registry>,
    prompter: &dyn Prompter,
    locks: &dyn LockBackend,
) -> Result<ResumeTicket, ResumeRefusal> {
    let root = crate::journal::absolute(&req.journal_root);
    let dir = store::find(&root, &req.run).map_err(|e| ResumeRefusal::NotFound(e.to_string()))?;
    let mut notes = Vec::new();
    let owner = match recorder::take_owner(&dir) {
        Ok(o) => o,
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
            return Err(ResumeRefusal::StillRunning(req.run.clone()))
        }
        Err(source) => return Err(ResumeRefusal::OwnerLock { dir, source }),
    };
    let journal = store::open(&dir).map_err(|e| ResumeRefusal::Unreadable(e.to_string()))?;
    if let Some(reason) = recorder::lost_reason(&dir) {
        if !req.rollback {
            return Err(ResumeRefusal::JournalLost {
                run_id: journal.meta.run_id.clone(),
                reason,
            });
        }
        notes.push(format!(
            "journal: it was lost ({reason}); only undo and cleanup run (--rollback)"
        ));
    }
    let meta = &journal.meta;
    for (line, kind) in &journal.unknown {
        notes.push(format!(
            "journal: line {line} is a `{kind}` record, which this opsplan does not know (a newer one wrote it); skipped"
        ));
    }
    if let Some(t) = &journal.torn {
        notes.push(format!("journal: {t}"));
    }
    let st = state::fold(&journal.records);
    match st.status {
        Some(RunStatus::RollbackFailed) | None => {}
        Some(s) => {
            return Err(ResumeRefusal::Finished {
                run_id: meta.run_id.clone(),
                label: Liveness::Finished(s).label(),
                released_locks: release_leftover_locks(locks, meta),
            })
        }
    }
    secrets_given_again(meta, &req.set)?;

    // The plan, with the run's params; secrets come from their sources again.
    let given: Vec<(Node, Node)> = meta
        .params
        .iter()
        .filter(|(_, p)| !p.secret && p.source != "unset")
        .map(|(k, p)| {
            (
                Node::new(Span::default(), NodeValue::Str(k.clone())),
                Node::from_json(&p.value, Span::default()),
            )
        })
        .collect();
    let inputs = ParamInputs {
        set: req.set.clone(),
        file: None,
        read_secrets: true,
    };
    let plan_path = PathBuf::from(&meta.plan.path);
    let compiled =
        pipeline::load_compiled(&plan_path, &inputs, given, registry).map_err(|error| {
            ResumeRefusal::PlanInvalid {
                run_id: meta.run_id.clone(),
                error,
            }
        })?;
    let mut plan = compiled.plan;
    // Run-time fan-outs get the items the run recorded, not a list rendered again.
    for (id, items) in &st.fan_outs {
        match plan.index_of(id) {
            Some(i) if plan.steps[i].fan_out.is_some() => {
                plan.expand(i, items);
            }
            _ => notes.push(format!(
                "journal: step `{id}` fanned out, but the plan has no such `for_each` over a step's outputs now; its items are ignored"
            )),
        }
    }
    if plan.content_hash != meta.plan.content_hash {
        if !req.allow_changed_plan {
            return Err(ResumeRefusal::PlanChanged {
                path: plan_path,
                run_id: meta.run_id.clone(),
                then: short(&meta.plan.content_hash).into(),
                now: short(&plan.content_hash).into(),
            });
        }
        notes.push(format!(
            "warning: {} changed since the run started; resuming anyway (--allow-changed-plan)",
            plan_path.display()
        ));
    }
    let mut rp = decide::plan_resume(&plan, &st, req.rollback, &req.rerun);
    if let Some(r) = req.rerun.iter().find(|r| plan.index_of(r).is_none()) {
        return Err(ResumeRefusal::UnknownStep(r.clone()));
    }
    if !rp.ask.is_empty() && prompter.can_ask() {
        let mut still = Vec::new();
        for id in std::mem::take(&mut rp.ask) {
            let q = format!(
                "Step `{id}` was running when run {} stopped; it may or may not have done its work. Run it again?",
                meta.run_id
            );
            if prompter.ask(&q).await {
                if let Some(i) = plan.index_of(&id) {
                    rp.prior.in_doubt.push((i, InDoubt::Rerun));
                }
            } else {
                still.push(id);
            }
        }
        rp.ask = still;
    }
    if !rp.secret_outputs.is_empty() {
        return Err(ResumeRefusal::SecretOutputs {
            run_id: meta.run_id.clone(),
            steps: rp.secret_outputs,
        });
    }
    if !rp.ask.is_empty() {
        return Err(ResumeRefusal::InDoubt {
            run_id: meta.run_id.clone(),
            steps: rp.ask,
        });
    }
    notes.extend(rp.notes.iter().map(|n| format!("resume: {n}")));
    if rp.rollback_only {
        notes.push(format!(
            "resume: rolling back ({})",
            rp.prior.rollback_reason.clone().unwrap_or_default()
        ));
    }
    // Whatever the interrupted process left running is stopped before anything reruns or
    // is released.
    for (id, step) in &st.steps {
        for &(pgid, start) in &step.children {
            let n = crate::survivors::stop(pgid, start, SURVIVOR_GRACE).await;
            if n > 0 {
                notes.push(format!(
                    "resume: stopped {n} process(es) of step `{id}` (process group {pgid}) that outlived run {}",
                    meta.run_id
                ));
            }
        }
    }
    let last_seq = journal.records.last().map_or(0, |r| r.seq);
    Ok(ResumeTicket {
        plan: Arc::new(plan),
        run_id: meta.run_id.clone(),
        started: meta.started.clone(),
        journal: ResumeJournal {
            dir: dir.clone(),
            owner,
            last_seq,
            valid_len: journal.valid_len,
        },
        prior: rp.prior,
        rollback_only: rp.rollback_only,
        notes,
        warnings: compiled.warnings,
        sources: compiled.sources,
    })
}

/// Secrets are not kept in the journal: each must come from its source again.
fn secrets_given_again(meta: &Meta, set: &[(String, String)]) -> Result<(), ResumeRefusal> {
    let mut missing = Vec::new();
    for (name, p) in &meta.params {
        if !p.secret || set.iter().any(|(k, _)| k == name) {
            continue;
        }
        if let Some(var) = p.source.strip_prefix("env:") {
            if std::env::var_os(var).is_none() {
                missing.push(format!(
                    "error: secret `{name}` came from the environment variable {var}, which is not set now"
                ));
            }
        } else if p.source == "--set" || p.source.starts_with("--params") {
            missing.push(format!(
                "error: secret `{name}` was given with {} and secrets are not kept in the journal: give it again with `--set {name}=…` (or its env variable)",
                p.source
            ));
        }
    }
    if !missing.is_empty() {
        return Err(ResumeRefusal::SecretsMissing(missing));
    }
    if let Some((name, _)) = set
        .iter()
        .find(|(name, _)| !meta.params.get(name).is_some_and(|p| p.secret))
    {
        return Err(ResumeRefusal::NotASecret(name.clone()));
    }
    Ok(())
}

fn short(hash: &str) -> &str {
    &hash[..hash.len().min(12)]
}

/// A crash between a run's last record and the release of its locks leaves them marked as
/// held by it; the run is over, so they are given back. Returns the names released.
fn release_leftover_locks(backend: &dyn LockBackend, meta: &Meta) -> Vec<String> {
    let me = Holder {
        run_id: meta.run_id.clone(),
        plan: meta.plan.name.clone(),
        host: format::hostname(),
        pid: std::process::id(),
        started: meta.started.clone(),
        ended: None,
    };
    let mut released = Vec::new();
    for name in &meta.locks {
        // Only our own record is taken over (never another run's, never without a record).
        if let Ok(a) = backend.try_acquire(name, &me, false) {
            let ours = matches!(a.takeover, Some(Takeover::SameRun(_)));
            let _ = a.guard.release(false);
            if ours {
                released.push(name.clone());
            }
        }
    }
    released
}
