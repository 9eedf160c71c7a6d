//! The durable side of the command line: `run` and `resume` share [`execute`] (locks, the
//! journal, signals, the executor); `runs` lists and shows journals.

use super::{exit, spawn_signal_handler, ParamArgs};
use crate::compile::CompiledPlan;
use crate::exec::events::{EventSink, Fanout, RunEvent, RunStatus};
use crate::exec::{Executor, Interrupts, Prior, RunOptions};
use crate::journal::format::{self, Meta, MetaOptions, PlanRef};
use crate::journal::recorder::{self, Recorder};
use crate::journal::{resume, state, store};
use crate::lock::file::FileLocks;
use crate::lock::{self, AcquireOptions, Holder, LockError, Takeover};
use crate::report::console::{self, Console, LogFormat};
use crate::report::runs::{self as runs_report, Liveness};
use crate::source::{Node, NodeValue, Span};
use crate::steps::Answers;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct ExecOptions {
    pub max_parallel: usize,
    pub answers: Answers,
    pub grace: Duration,
    pub log_format: LogFormat,
}

#[derive(Debug, Clone)]
pub struct DurableOptions {
    pub journal_dir: PathBuf,
    pub lock_dir: PathBuf,
    pub break_lock: bool,
    pub wait_lock: Option<Duration>,
}

pub enum JournalTarget {
    /// `--no-journal`.
    None,
    /// A new run under this folder.
    New(PathBuf),
    /// A resumed run: its folder, its owner lock (already taken) and where its records end.
    Resume {
        dir: PathBuf,
        owner: nix::fcntl::Flock<std::fs::File>,
        last_seq: u64,
        valid_len: u64,
    },
}

pub struct Execution {
    pub plan: Arc<CompiledPlan>,
    pub run_id: String,
    pub started: String,
    pub journal: JournalTarget,
    pub exec: ExecOptions,
    pub durable: DurableOptions,
    pub prior: Prior,
    pub rollback_only: bool,
}

/// The signal handler exists before the journal does (a signal while waiting for a lock);
/// it reports to whatever sink is installed by then.
#[derive(Default)]
struct SinkSlot(OnceLock<Arc<dyn EventSink>>);

impl EventSink for SinkSlot {
    fn emit(&self, event: &RunEvent) {
        match self.0.get() {
            Some(s) => s.emit(event),
            None => {
                if let RunEvent::Signal { signal, .. } = event {
                    eprintln!("{signal}: stopping before the run started");
                }
            }
        }
    }
    fn emit_all(&self, events: &[RunEvent]) {
        match self.0.get() {
            Some(s) => s.emit_all(events),
            None => events.iter().for_each(|e| self.emit(e)),
        }
    }
}

fn lock_failure(e: &LockError) -> (String, i32) {
    let help = match e {
        LockError::Held { .. } => {
            "nothing was run; wait for that run, or pass --wait-lock DURATION to wait for it"
                .to_string()
        }
        LockError::Stale { holder, .. } => format!(
            "nothing was run; what that run held may still be held: finish it with `opsplan resume {}` \
             (or `--rollback`), or, once you checked nothing of it is left, take the lock with --break-lock",
            holder.run_id
        ),
        LockError::Io { .. } => "nothing was run".into(),
        LockError::Interrupted { .. } => return (e.to_string(), exit::INTERRUPTED),
    };
    (format!("{e}\n  help: {help}"), exit::LOCKED)
}

/// Runs (or resumes) a compiled plan: destructive gate, locks, journal, executor, release.
pub fn execute(x: Execution) -> i32 {
    execute_observed(x, None)
}

/// [`execute`], also telling `observer` every event (after the journal and the console):
/// `opsplan drill` reads the steps' outputs and errors from it.
pub fn execute_observed(x: Execution, observer: Option<Arc<dyn EventSink>>) -> i32 {
    let plan = x.plan.clone();
    let destructive: Vec<&str> = plan
        .steps
        .iter()
        .filter(|s| s.destructive)
        .map(|s| s.id.as_str())
        .collect();
    if !x.rollback_only
        && !destructive.is_empty()
        && !x.exec.answers.force
        && !std::io::stdin().is_terminal()
    {
        eprintln!(
            "error: this plan has destructive steps ({}) and there is no terminal to confirm them on; \
             nothing was run. Check `opsplan preview` and pass --force to allow them.",
            destructive.join(", ")
        );
        return exit::INVALID;
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return exit::RUN_FAILED;
        }
    };
    runtime.block_on(async move {
        let interrupts = Interrupts::default();
        let slot = Arc::new(SinkSlot::default());
        spawn_signal_handler(interrupts.clone(), slot.clone());

        // Locks, before anything is written or run.
        let me = Holder {
            run_id: x.run_id.clone(),
            plan: plan.name.clone(),
            host: format::hostname(),
            pid: std::process::id(),
            started: x.started.clone(),
        };
        let backend = FileLocks::new(crate::journal::absolute(&x.durable.lock_dir));
        let opts = AcquireOptions {
            break_stale: x.durable.break_lock,
            wait: x.durable.wait_lock,
        };
        let names = plan.locks.clone();
        let cancel = interrupts.cancel.clone();
        let acquired = tokio::task::spawn_blocking(move || {
            let cancelled = || cancel.is_cancelled();
            lock::acquire_all(&backend, &names, &me, &opts, &cancelled)
        })
        .await;
        let locks = match acquired {
            Ok(Ok(l)) => l,
            Ok(Err(e)) => {
                let (text, code) = lock_failure(&e);
                eprintln!("error: {text}");
                return code;
            }
            Err(e) => {
                eprintln!("error: taking the locks failed: {e}");
                return exit::RUN_FAILED;
            }
        };
        for a in &locks {
            match &a.takeover {
                Some(Takeover::SameRun(_)) => eprintln!(
                    "lock `{}`: taken back (this run held it when it was interrupted)",
                    a.guard.name()
                ),
                Some(Takeover::Broken(h)) => eprintln!(
                    "warning: lock `{}`: broke the stale lock of {h} (--break-lock)",
                    a.guard.name()
                ),
                None => {}
            }
        }
        let release = |locks: Vec<lock::Acquired>, keep: bool| {
            for a in locks {
                let name = a.guard.name().to_string();
                if let Err(e) = a.guard.release(keep) {
                    eprintln!("warning: releasing lock `{name}`: {e}");
                }
            }
        };

        // The journal.
        let recorder = match x.journal {
            JournalTarget::None => None,
            JournalTarget::New(root) => {
                let meta = Meta {
                    format: format::FORMAT,
                    run_id: x.run_id.clone(),
                    plan: PlanRef {
                        name: plan.name.clone(),
                        version: plan.version.clone(),
                        path: crate::journal::absolute(&plan.path).display().to_string(),
                        content_hash: plan.content_hash.clone(),
                    },
                    params: Meta::params_from(&plan.params),
                    locks: plan.locks.clone(),
                    host: format::hostname(),
                    user: format::username(),
                    pid: std::process::id(),
                    started: x.started.clone(),
                    opsplan: env!("CARGO_PKG_VERSION").into(),
                    options: MetaOptions {
                        max_parallel: x.exec.max_parallel,
                        grace_ms: x.exec.grace.as_millis() as u64,
                    },
                };
                let root = crate::journal::absolute(&root);
                match Recorder::create(&root, &meta, interrupts.cancel.clone()) {
                    Ok(r) => Some(Arc::new(r)),
                    Err(e) => {
                        eprintln!(
                            "error: cannot create the run journal in {}: {e}; nothing was run \
                             (pass --no-journal to run without one)",
                            root.display()
                        );
                        release(locks, false);
                        return exit::RUN_FAILED;
                    }
                }
            }
            JournalTarget::Resume {
                dir,
                owner,
                last_seq,
                valid_len,
            } => match Recorder::reopen(&dir, owner, last_seq, valid_len, interrupts.cancel.clone())
            {
                Ok(r) => Some(Arc::new(r)),
                Err(e) => {
                    eprintln!("error: cannot append to the run journal in {}: {e}", dir.display());
                    release(locks, true);
                    return exit::RUN_FAILED;
                }
            },
        };
        if let Some(r) = &recorder {
            eprintln!("journal: {}", r.dir().display());
        }

        let console = Arc::new(Console::new(
            x.exec.log_format,
            std::io::stderr().is_terminal(),
        ));
        let mut sinks: Vec<Arc<dyn EventSink>> = Vec::new();
        // The journal first: an event is on disk before anyone is told about it.
        if let Some(r) = &recorder {
            sinks.push(r.clone());
        }
        sinks.push(console.clone());
        sinks.extend(observer);
        let sink: Arc<dyn EventSink> = Arc::new(Fanout(sinks));
        let _ = slot.0.set(sink.clone());
        if interrupts.cancel.is_cancelled() {
            release(locks, false);
            return exit::INTERRUPTED;
        }
        let ticker = {
            let console = console.clone();
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    console.tick();
                }
            })
        };
        let opts = RunOptions {
            run_id: x.run_id.clone(),
            max_parallel: x.exec.max_parallel,
            answers: x.exec.answers,
            grace: x.exec.grace,
            started: Some(x.started.clone()),
        };
        let report = Executor::new(plan, opts, sink, interrupts)
            .run_from(x.prior, x.rollback_only)
            .await;
        ticker.abort();
        // A failed rollback may leave resources held: the locks stay marked (stale) so no
        // other run starts on top of them before this one is resumed or the lock broken.
        let keep = report.status == RunStatus::RollbackFailed;
        release(locks, keep);
        if x.exec.log_format == LogFormat::Text {
            eprint!("{}", console::summary(&report));
        }
        if keep && recorder.is_some() {
            eprintln!(
                "retry the failed undo and cleanup with `opsplan resume {}` once the cause is fixed",
                x.run_id
            );
        }
        report.status.exit_code()
    })
}

pub struct ResumeArgs {
    pub run: String,
    pub rollback: bool,
    pub allow_changed_plan: bool,
    pub rerun: Vec<String>,
    pub set: Vec<(String, String)>,
    pub exec: ExecOptions,
    pub durable: DurableOptions,
}

pub fn cmd_resume(a: ResumeArgs) -> i32 {
    super::init_tracing(a.exec.log_format);
    let root = crate::journal::absolute(&a.durable.journal_dir);
    let dir = match store::find(&root, &a.run) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("error: {e}; `opsplan runs` lists the runs");
            return exit::INVALID;
        }
    };
    let owner = match recorder::take_owner(&dir) {
        Ok(o) => o,
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
            eprintln!(
                "error: run {} is still running (another opsplan process holds its journal); nothing was done",
                a.run
            );
            return exit::LOCKED;
        }
        Err(e) => {
            eprintln!("error: cannot lock the journal in {}: {e}", dir.display());
            return exit::RUN_FAILED;
        }
    };
    let journal = match store::open(&dir) {
        Ok(j) => j,
        Err(e) => {
            eprintln!("error: {e}");
            return exit::INVALID;
        }
    };
    let meta = &journal.meta;
    if let Some(t) = &journal.torn {
        eprintln!("journal: {t}");
    }
    let st = state::fold(&journal.records);
    match st.status {
        Some(RunStatus::RollbackFailed) | None => {}
        Some(s) => {
            eprintln!(
                "run {} already finished ({}); nothing to resume",
                meta.run_id,
                Liveness::Finished(s).label()
            );
            release_leftover_locks(meta, &a.durable);
            return exit::OK;
        }
    }

    // The plan, with the run's params; secrets come from their sources again.
    let mut missing = Vec::new();
    for (name, p) in &meta.params {
        if !p.secret || a.set.iter().any(|(k, _)| k == name) {
            continue;
        }
        if let Some(var) = p.source.strip_prefix("env:") {
            if std::env::var_os(var).is_none() {
                missing.push(format!(
                    "secret `{name}` came from the environment variable {var}, which is not set now"
                ));
            }
        } else if p.source == "--set" || p.source.starts_with("--params") {
            missing.push(format!(
                "secret `{name}` was given with {} and secrets are not kept in the journal: give it again with `--set {name}=…` (or its env variable)",
                p.source
            ));
        }
    }
    if !missing.is_empty() {
        for m in &missing {
            eprintln!("error: {m}");
        }
        eprintln!("nothing was run");
        return exit::INVALID;
    }
    for (name, _) in &a.set {
        if !meta.params.get(name).is_some_and(|p| p.secret) {
            eprintln!(
                "error: --set {name}: resume takes only secrets; the other params are the run's own (from its journal)"
            );
            return exit::INVALID;
        }
    }
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
    let args = ParamArgs {
        set: a.set.clone(),
        file: None,
    };
    let plan_path = PathBuf::from(&meta.plan.path);
    let plan = match super::load_compiled_with(&plan_path, &args, given, true) {
        Ok(p) => p,
        Err(code) => {
            eprintln!(
                "error: the plan of run {} could not be loaded again; nothing was run",
                meta.run_id
            );
            return code;
        }
    };
    if plan.content_hash != meta.plan.content_hash {
        if !a.allow_changed_plan {
            eprintln!(
                "error: {} changed since run {} started (content hash {} then, {} now); nothing was run\n  help: check what changed; resume anyway with --allow-changed-plan",
                plan_path.display(),
                meta.run_id,
                short(&meta.plan.content_hash),
                short(&plan.content_hash)
            );
            return exit::INVALID;
        }
        eprintln!(
            "warning: {} changed since the run started; resuming anyway (--allow-changed-plan)",
            plan_path.display()
        );
    }
    let mut rp = resume::plan_resume(&plan, &st, a.rollback, &a.rerun);
    for r in &a.rerun {
        if plan.index_of(r).is_none() {
            eprintln!("error: --rerun {r}: the plan has no such step");
            return exit::INVALID;
        }
    }
    if !rp.ask.is_empty() && std::io::stdin().is_terminal() {
        let mut still = Vec::new();
        for id in std::mem::take(&mut rp.ask) {
            let q = format!(
                "Step `{id}` was running when run {} stopped; it may or may not have done its work. Run it again?",
                meta.run_id
            );
            if crate::steps::confirm::ask(&q) {
                if let Some(i) = plan.index_of(&id) {
                    rp.prior.in_doubt.push((i, crate::exec::InDoubt::Rerun));
                }
            } else {
                still.push(id);
            }
        }
        rp.ask = still;
    }
    if !rp.ask.is_empty() {
        eprintln!(
            "error: run {} stopped while {} running; {} may or may not have done {} work, and on_resume is `ask`. Nothing was run.\n  help: check by hand, then `opsplan resume {} --rerun {}` to run it again, or `opsplan resume {} --rollback` to undo and clean up",
            meta.run_id,
            rp.ask.iter().map(|s| format!("`{s}` was")).collect::<Vec<_>>().join(" and "),
            if rp.ask.len() == 1 { "it" } else { "they" },
            if rp.ask.len() == 1 { "its" } else { "their" },
            meta.run_id,
            rp.ask.join(" --rerun "),
            meta.run_id
        );
        return exit::INVALID;
    }
    for n in &rp.notes {
        eprintln!("resume: {n}");
    }
    if rp.rollback_only {
        eprintln!(
            "resume: rolling back ({})",
            rp.prior.rollback_reason.clone().unwrap_or_default()
        );
    }
    let last_seq = journal.records.last().map_or(0, |r| r.seq);
    execute(Execution {
        plan: Arc::new(plan),
        run_id: meta.run_id.clone(),
        started: meta.started.clone(),
        journal: JournalTarget::Resume {
            dir: dir.clone(),
            owner,
            last_seq,
            valid_len: journal.valid_len,
        },
        exec: a.exec,
        durable: a.durable,
        prior: rp.prior,
        rollback_only: rp.rollback_only,
    })
}

/// A crash between a run's last record and the release of its locks leaves them marked as
/// held by it; the run is over, so they are given back.
fn release_leftover_locks(meta: &Meta, durable: &DurableOptions) {
    let backend = FileLocks::new(crate::journal::absolute(&durable.lock_dir));
    let me = Holder {
        run_id: meta.run_id.clone(),
        plan: meta.plan.name.clone(),
        host: format::hostname(),
        pid: std::process::id(),
        started: meta.started.clone(),
    };
    for name in &meta.locks {
        use crate::lock::LockBackend;
        // Only our own record is taken over (never another run's, never without a record).
        if let Ok(a) = backend.try_acquire(name, &me, false) {
            let ours = matches!(a.takeover, Some(Takeover::SameRun(_)));
            let _ = a.guard.release(false);
            if ours {
                eprintln!("lock `{name}`: released (the run ended before it could give it back)");
            }
        }
    }
}

fn short(hash: &str) -> &str {
    &hash[..hash.len().min(12)]
}

/// Finished, running (someone holds the journal) or interrupted.
fn liveness(dir: &Path, st: &state::RunState) -> Liveness {
    if let Some(s) = st.status {
        return Liveness::Finished(s);
    }
    match recorder::take_owner(dir) {
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => Liveness::Running,
        _ => Liveness::Interrupted,
    }
}

pub fn cmd_runs_list(root: &Path, json: bool) -> i32 {
    let mut rows = Vec::new();
    for dir in store::list_dirs(root) {
        match store::open(&dir) {
            Ok(j) => {
                let st = state::fold(&j.records);
                rows.push(runs_report::row(&j.meta, &st, liveness(&dir, &st)));
            }
            Err(e) => eprintln!("warning: {e}"),
        }
    }
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&rows).unwrap_or_default()
        );
    } else if rows.is_empty() {
        eprintln!("no runs in {}", root.display());
    } else {
        print!("{}", runs_report::list_text(&rows));
    }
    exit::OK
}

pub fn cmd_runs_show(root: &Path, run: &str, json: bool) -> i32 {
    let journal = match store::find(root, run).and_then(|d| store::open(&d)) {
        Ok(j) => j,
        Err(e) => {
            eprintln!("error: {e}");
            return exit::INVALID;
        }
    };
    let st = state::fold(&journal.records);
    let live = liveness(&journal.dir, &st);
    let notes: Vec<String> = journal.torn.iter().map(|t| t.to_string()).collect();
    if json {
        let v = serde_json::json!({
            "meta": journal.meta, "status": live.label(), "state": st, "notes": notes,
        });
        println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
    } else {
        print!(
            "{}",
            runs_report::timeline_text(&journal.meta, &st, live, &notes)
        );
    }
    exit::OK
}
