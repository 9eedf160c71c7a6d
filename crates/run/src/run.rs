//! The run builder: what `opsplan run` and `resume` do, for any caller. A run is the
//! destructive gate, the locks, the journal, the executor and the release of the locks;
//! [`RunBuilder::run`] returns a typed result and prints nothing (it reports through the
//! event sinks and the notice callback it is given).

use crate::exec::events::{EventSink, Fanout, RunStatus};
use crate::exec::{Executor, Interrupts, Prior, RunOptions, RunReport};
use crate::journal::format::{self, Meta, MetaOptions, PlanRef};
use crate::journal::recorder::Recorder;
use crate::lock::file::FileLocks;
use crate::lock::{self, AcquireOptions, Holder, LockBackend, LockError, Takeover};
pub use crate::notice::Notice;
use crate::notice::NoticeFn;
use crate::signals::{self, SinkSlot};
use opsplan_plan::compile::CompiledPlan;
use opsplan_plan::step::{Answers, NoPrompter, Prompter};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// Where the run is recorded.
pub enum JournalTarget {
    /// No journal: the run cannot be resumed after a crash.
    None,
    /// A new run under this folder.
    New(PathBuf),
    /// A resumed run (see [`crate::resume::prepare`]).
    Resume(crate::resume::ResumeJournal),
}

/// Whether the run installs the standard signal policy ([`crate::signals`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Signals {
    /// SIGINT/SIGTERM: first stops and rolls back, second skips grace periods.
    Standard,
    /// The caller cancels through [`Interrupts`] itself (embedders, tests).
    #[default]
    None,
}

/// Why a run did not run (nothing was started, or only rolled back what it took).
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("this plan has destructive steps ({}) and there is no terminal to confirm them on; nothing was run", .steps.join(", "))]
    NeedsForce { steps: Vec<String> },
    /// `confirm` steps (and maybe destructive ones) that would need an answer nobody can give.
    #[error("{}", needs_answers_text(.confirm, .destructive))]
    NeedsAnswers {
        confirm: Vec<String>,
        destructive: Vec<String>,
    },
    #[error("this plan was compiled for a preview, with placeholders for {}; a run needs every value; nothing was run", .not_given.join(", "))]
    PreviewOnly { not_given: Vec<String> },
    #[error(transparent)]
    Lock(#[from] LockError),
    #[error("cannot create the run journal in {}: {source}; nothing was run", .dir.display())]
    JournalCreate {
        dir: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot append to the run journal in {}: {source}", .dir.display())]
    JournalReopen {
        dir: PathBuf,
        source: std::io::Error,
    },
    #[error("stopped by a signal before the run started")]
    Interrupted,
    #[error("taking the locks failed: {0}")]
    LockTask(String),
}

fn needs_answers_text(confirm: &[String], destructive: &[String]) -> String {
    let mut text = format!(
        "this plan has confirm steps ({}) and there is no terminal to answer them on",
        confirm.join(", ")
    );
    if !destructive.is_empty() {
        text.push_str(&format!(
            ", and destructive steps ({}) that need --force",
            destructive.join(", ")
        ));
    }
    text.push_str("; nothing was run");
    text
}

/// What a run that ran came to.
#[derive(Debug)]
pub struct RunOutcome {
    pub run_id: String,
    pub report: RunReport,
    /// The journal folder, when the run was journaled.
    pub journal: Option<PathBuf>,
    /// The run's rollback failed: its locks stay marked (stale) so that no other run starts
    /// on top of what may still be held, until it is resumed or the lock broken.
    pub locks_kept: bool,
    /// The journal could not be written (a full disk): the run was stopped and rolled back,
    /// but that is not on record, and the run cannot be resumed into a success.
    pub journal_lost: Option<String>,
    /// The `fdatasync` calls the journal made for the run's records (creating the journal is
    /// not counted); `None` without a journal. docs/design/0003 says which records need one.
    pub journal_syncs: Option<u64>,
}

impl RunOutcome {
    pub fn status(&self) -> RunStatus {
        self.report.status
    }
}

/// Runs a compiled plan: `RunBuilder::new(plan).journal(..).locks(..).sink(..).run().await`.
pub struct RunBuilder {
    plan: Arc<CompiledPlan>,
    run_id: String,
    started: String,
    journal: JournalTarget,
    locks: Arc<dyn LockBackend>,
    lock_options: AcquireOptions,
    answers: Answers,
    prompter: Arc<dyn Prompter>,
    sinks: Vec<Arc<dyn EventSink>>,
    interrupts: Interrupts,
    signals: Signals,
    max_parallel: usize,
    grace: Duration,
    prior: Prior,
    rollback_only: bool,
    notice: NoticeFn,
}

impl RunBuilder {
    /// A new run of `plan`, with no journal, local file locks under
    /// [`crate::journal::default_lock_dir`], no prompter (destructive steps need
    /// [`RunBuilder::force`]) and no signal handling.
    pub fn new(plan: Arc<CompiledPlan>) -> Self {
        RunBuilder {
            plan,
            run_id: new_run_id(),
            started: crate::exec::events::now(),
            journal: JournalTarget::None,
            locks: Arc::new(FileLocks::new(crate::journal::absolute(
                &crate::journal::default_lock_dir(),
            ))),
            lock_options: AcquireOptions::default(),
            answers: Answers::default(),
            prompter: Arc::new(NoPrompter),
            sinks: Vec::new(),
            interrupts: Interrupts::default(),
            signals: Signals::None,
            max_parallel: 4,
            grace: Duration::from_secs(10),
            prior: Prior::default(),
            rollback_only: false,
            notice: Arc::new(|_| {}),
        }
    }

    /// Continues a run a crash interrupted, as [`crate::resume::prepare`] decided.
    pub fn resume(ticket: crate::resume::ResumeTicket) -> Self {
        let mut b = RunBuilder::new(ticket.plan);
        b.run_id = ticket.run_id;
        b.started = ticket.started;
        b.journal = JournalTarget::Resume(ticket.journal);
        b.prior = ticket.prior;
        b.rollback_only = ticket.rollback_only;
        b
    }

    pub fn run_id(&self) -> &str {
        &self.run_id
    }
    /// Sets the run id (a new run gets a fresh one from [`new_run_id`]).
    pub fn with_run_id(mut self, run_id: String) -> Self {
        self.run_id = run_id;
        self
    }
    pub fn journal(mut self, journal: JournalTarget) -> Self {
        if !matches!(self.journal, JournalTarget::Resume(_)) {
            self.journal = journal;
        }
        self
    }
    /// Where the locks live: [`FileLocks`] by default; any [`LockBackend`].
    pub fn locks(mut self, backend: Arc<dyn LockBackend>) -> Self {
        self.locks = backend;
        self
    }
    pub fn lock_options(mut self, options: AcquireOptions) -> Self {
        self.lock_options = options;
        self
    }
    /// `yes` answers every `confirm`; `force` runs destructive steps without asking.
    pub fn answers(mut self, answers: Answers) -> Self {
        self.answers = answers;
        self
    }
    pub fn prompter(mut self, prompter: Arc<dyn Prompter>) -> Self {
        self.prompter = prompter;
        self
    }
    /// Adds an event sink (after the journal, which always comes first).
    pub fn sink(mut self, sink: Arc<dyn EventSink>) -> Self {
        self.sinks.push(sink);
        self
    }
    /// The cancellation tokens the run obeys; cancel them to stop the run.
    pub fn interrupts(mut self, interrupts: Interrupts) -> Self {
        self.interrupts = interrupts;
        self
    }
    pub fn signals(mut self, signals: Signals) -> Self {
        self.signals = signals;
        self
    }
    pub fn max_parallel(mut self, n: usize) -> Self {
        self.max_parallel = n.max(1);
        self
    }
    /// SIGTERM-to-SIGKILL grace for cancelled child processes.
    pub fn grace(mut self, grace: Duration) -> Self {
        self.grace = grace;
        self
    }
    pub fn on_notice(mut self, f: impl Fn(&Notice) + Send + Sync + 'static) -> Self {
        self.notice = Arc::new(f);
        self
    }

    /// The `confirm` and destructive steps that would need an answer nobody can give:
    /// checked before anything is taken or run, so a run that would certainly be refused
    /// later runs nothing. A `confirm` with a `when` may be skipped, so it is left to ask (or
    /// refuse) when it comes; one a resumed run finished already is not asked again.
    fn refuse_unanswerable(&self) -> Result<(), RunError> {
        if self.plan.preview_only {
            return Err(RunError::PreviewOnly {
                not_given: self.plan.not_given.clone(),
            });
        }
        let mut steps = Vec::new();
        for s in &self.plan.steps {
            if s.destructive {
                steps.push(s.id.clone());
            }
            if s.undo.as_ref().is_some_and(|u| u.destructive) {
                steps.push(format!("the undo of {}", s.id));
            }
            if s.probe.as_ref().is_some_and(|p| p.destructive) {
                steps.push(format!("the probe of {}", s.id));
            }
        }
        let can_ask = self.prompter.can_ask();
        let confirm: Vec<String> = self
            .plan
            .steps
            .iter()
            .enumerate()
            .filter(|(i, s)| {
                s.when.is_none()
                    && s.kind.asks(&s.with)
                    && !matches!(
                        self.prior.states.get(*i),
                        Some(opsplan_plan::rollback::State::Done(_))
                    )
            })
            .map(|(_, s)| s.id.clone())
            .collect();
        if self.rollback_only || can_ask {
            return Ok(());
        }
        let destructive = if self.answers.force {
            Vec::new()
        } else {
            steps
        };
        if !confirm.is_empty() && !self.answers.yes {
            return Err(RunError::NeedsAnswers {
                confirm,
                destructive,
            });
        }
        if !destructive.is_empty() {
            return Err(RunError::NeedsForce { steps: destructive });
        }
        Ok(())
    }

    /// Runs (or resumes) the plan. Must be awaited on a multi-threaded tokio runtime.
    pub async fn run(self) -> Result<RunOutcome, RunError> {
        self.refuse_unanswerable()?;
        let RunBuilder {
            plan,
            run_id,
            started,
            journal,
            locks: backend,
            lock_options,
            answers,
            prompter,
            sinks: extra_sinks,
            interrupts,
            signals: signal_policy,
            max_parallel,
            grace,
            prior,
            rollback_only,
            notice,
        } = self;
        let slot = Arc::new(SinkSlot {
            sink: std::sync::OnceLock::new(),
            early: notice.clone(),
        });
        if signal_policy == Signals::Standard {
            signals::spawn_handler(interrupts.clone(), slot.clone());
        }

        // Locks, before anything is written or run.
        let me = Holder {
            run_id: run_id.clone(),
            plan: plan.name.clone(),
            host: format::hostname(),
            pid: std::process::id(),
            started: started.clone(),
            ended: None,
        };
        let names = plan.locks.clone();
        let cancel = interrupts.cancel.clone();
        let lock_backend = backend.clone();
        let acquired = tokio::task::spawn_blocking(move || {
            let cancelled = || cancel.is_cancelled();
            lock::acquire_all(
                lock_backend.as_ref(),
                &names,
                &me,
                &lock_options,
                &cancelled,
            )
        })
        .await
        .map_err(|e| RunError::LockTask(e.to_string()))??;
        for a in &acquired {
            match &a.takeover {
                Some(Takeover::SameRun(_)) => {
                    notice(&Notice::LockTakenBack(a.guard.name().to_string()));
                }
                Some(Takeover::Broken(h)) => notice(&Notice::LockBroken {
                    name: a.guard.name().to_string(),
                    holder: Box::new(h.clone()),
                }),
                None => {}
            }
        }
        let held = Arc::new(std::sync::Mutex::new(acquired));
        let release = {
            let held = held.clone();
            let notice = notice.clone();
            move |keep: bool, ended: Option<lock::Ended>| {
                let taken = std::mem::take(
                    &mut *held
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner),
                );
                for mut a in taken {
                    let name = a.guard.name().to_string();
                    if let Some(ended) = ended {
                        if let Err(e) = a.guard.mark_ended(ended) {
                            notice(&Notice::LockReleaseFailed {
                                name: name.clone(),
                                error: e.to_string(),
                            });
                        }
                    }
                    if let Err(e) = a.guard.release(keep) {
                        notice(&Notice::LockReleaseFailed {
                            name,
                            error: e.to_string(),
                        });
                    }
                }
            }
        };

        // The journal.
        let recorder = match journal {
            JournalTarget::None => None,
            JournalTarget::New(root) => {
                let meta = Meta {
                    format: format::FORMAT,
                    run_id: run_id.clone(),
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
                    started: started.clone(),
                    opsplan: env!("CARGO_PKG_VERSION").into(),
                    options: MetaOptions {
                        max_parallel,
                        grace_ms: grace.as_millis() as u64,
                    },
                    cwd: std::env::current_dir()
                        .ok()
                        .map(|d| d.display().to_string()),
                };
                let root = crate::journal::absolute(&root);
                match Recorder::create(&root, &meta, interrupts.clone(), notice.clone()) {
                    Ok(r) => Some(Arc::new(r)),
                    Err(source) => {
                        release(false, None);
                        return Err(RunError::JournalCreate { dir: root, source });
                    }
                }
            }
            JournalTarget::Resume(j) => {
                let dir = j.dir.clone();
                match Recorder::reopen(
                    &j.dir,
                    j.owner,
                    j.last_seq,
                    j.valid_len,
                    interrupts.clone(),
                    notice.clone(),
                ) {
                    Ok(r) => Some(Arc::new(r)),
                    Err(source) => {
                        release(true, None);
                        return Err(RunError::JournalReopen { dir, source });
                    }
                }
            }
        };
        let journal_dir = recorder.as_ref().map(|r| r.dir().to_path_buf());
        if let Some(dir) = &journal_dir {
            notice(&Notice::Journal(dir.clone()));
        }

        let mut sinks: Vec<Arc<dyn EventSink>> = Vec::new();
        // The journal first: an event is on disk before anyone is told about it.
        if let Some(r) = &recorder {
            sinks.push(r.clone());
        }
        sinks.extend(extra_sinks);
        let sink: Arc<dyn EventSink> = Arc::new(Fanout(sinks));
        let _ = slot.sink.set(sink.clone());
        if interrupts.cancel.is_cancelled() {
            release(false, None);
            return Err(RunError::Interrupted);
        }
        let renewal = spawn_renewal(held.clone(), interrupts.clone(), notice.clone());
        let opts = RunOptions {
            run_id: run_id.clone(),
            max_parallel,
            answers,
            prompter,
            grace,
            started: Some(started),
        };
        let executor = Executor::new(plan, opts, sink, interrupts);
        // The scheduler runs as a task on the runtime's workers, like the steps it starts:
        // a step's task then starts, and its result comes back, on the worker that scheduled
        // it (tokio's LIFO slot) instead of a wake-up of the thread awaiting the run.
        let started_at = std::time::Instant::now();
        let report = match tokio::spawn(
            async move { executor.run_from(prior, rollback_only).await },
        )
        .await
        {
            Ok(report) => report,
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            // Only a runtime shutting down cancels it; what ran is unknown, so the locks
            // stay marked, as after a failed rollback.
            Err(_) => RunReport {
                status: RunStatus::RollbackFailed,
                records: Vec::new(),
                duration: started_at.elapsed(),
                held: Vec::new(),
                not_released: Vec::new(),
            },
        };
        if let Some(r) = renewal {
            r.abort();
        }
        let journal_lost = recorder.as_ref().and_then(|r| r.lost());
        let journal_syncs = recorder.as_ref().map(|r| r.syncs());
        // A run whose journal was lost keeps its locks marked too: what it did is not all on
        // record, so no other run should start on top of it unchecked.
        let ended = if journal_lost.is_some() {
            Some(lock::Ended::JournalLost)
        } else if report.status == RunStatus::RollbackFailed {
            Some(lock::Ended::RollbackFailed)
        } else {
            None
        };
        let keep = ended.is_some();
        release(keep, ended);
        Ok(RunOutcome {
            run_id,
            report,
            journal: journal_dir,
            locks_kept: keep,
            journal_lost,
            journal_syncs,
        })
    }
}

/// Renews lease-backed locks while the run lasts; a lease that cannot be renewed cancels
/// the run, which then rolls back (someone else may hold the lock now).
fn spawn_renewal(
    held: Arc<std::sync::Mutex<Vec<lock::Acquired>>>,
    interrupts: Interrupts,
    notice: NoticeFn,
) -> Option<tokio::task::JoinHandle<()>> {
    let every = held
        .lock()
        .ok()?
        .iter()
        .filter_map(|a| a.guard.renew_every())
        .min()?;
    Some(tokio::spawn(async move {
        loop {
            tokio::time::sleep(every).await;
            let lost: Vec<(String, String)> = {
                let mut guards = held
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                guards
                    .iter_mut()
                    .filter(|a| a.guard.renew_every().is_some())
                    .filter_map(|a| {
                        let name = a.guard.name().to_string();
                        a.guard.renew().err().map(|e| (name, e.to_string()))
                    })
                    .collect()
            };
            for (name, error) in lost {
                notice(&Notice::LockLost { name, error });
                interrupts.cancel.cancel();
            }
        }
    }))
}

/// A new run id: the time to the second and 32 random bits (runs started in the same
/// second, by a scheduler or a test suite, must not collide; the journal refuses to reuse a
/// run's folder).
pub fn new_run_id() -> String {
    let now = humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string();
    let stamp: String = now.chars().filter(char::is_ascii_digit).take(14).collect();
    format!(
        "{}-{}-{:08x}",
        &stamp[..8.min(stamp.len())],
        &stamp[8.min(stamp.len())..],
        rand::random::<u32>()
    )
}
