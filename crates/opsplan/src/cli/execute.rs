//! `run`, `resume` and the drill's phases: a runtime, the console, the run builder, and the
//! mapping of its typed results to messages and exit codes.

use super::ExecOptions;
use crate::console::{Console, LogFormat};
use crate::prompt::TerminalPrompter;
use opsplan_plan::compile::CompiledPlan;
use opsplan_run::exit;
use opsplan_run::lock::file::FileLocks;
use opsplan_run::lock::{AcquireOptions, LockError};
use opsplan_run::{EventSink, JournalTarget, RunBuilder, RunError, Signals};
use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, Clone)]
pub(super) struct DurableOptions {
    pub(super) journal_dir: PathBuf,
    pub(super) lock_dir: PathBuf,
    pub(super) break_lock: bool,
    pub(super) wait_lock: Option<Duration>,
}

fn lock_failure(e: &LockError) -> String {
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
        LockError::Interrupted { .. } => return e.to_string(),
    };
    format!("{e}\n  help: {help}")
}

fn run_error_text(e: &RunError) -> String {
    match e {
        RunError::NeedsForce { .. } => {
            format!("{e}. Check `opsplan preview` and pass --force to allow them.")
        }
        RunError::NeedsAnswers { destructive, .. } => {
            let force = if destructive.is_empty() {
                ""
            } else {
                " and --force"
            };
            format!("{e}. Check `opsplan preview` and pass --yes{force} to answer them.")
        }
        RunError::Lock(l) => lock_failure(l),
        RunError::JournalCreate { .. } => {
            format!("{e} (pass --no-journal to run without one)")
        }
        _ => e.to_string(),
    }
}

/// Configures `builder` as the CLI runs plans: the terminal's prompter, file locks, the
/// standard signal policy and notices on stderr.
pub(super) fn configure(
    builder: RunBuilder,
    exec: &ExecOptions,
    durable: &DurableOptions,
) -> RunBuilder {
    if super::level() == super::Level::Verbose {
        errln!(
            "journal folder: {}\nlock folder: {}",
            opsplan_run::journal::absolute(&durable.journal_dir).display(),
            opsplan_run::journal::absolute(&durable.lock_dir).display()
        );
    }
    builder
        .answers(exec.answers)
        .prompter(Arc::new(TerminalPrompter::default()))
        .locks(Arc::new(FileLocks::new(opsplan_run::journal::absolute(
            &durable.lock_dir,
        ))))
        .lock_options(AcquireOptions {
            break_stale: durable.break_lock,
            wait: durable.wait_lock,
        })
        .signals(Signals::Standard)
        .max_parallel(exec.max_parallel)
        .grace(exec.grace)
        .on_notice(|n| errln!("{n}"))
}

/// Runs `builder` on a new runtime with the console (and `observer`) as sinks; prints the
/// summary (on stdout, unless an observer reports the result, as the drill does); returns
/// the exit code.
pub(super) fn execute(
    builder: RunBuilder,
    exec: &ExecOptions,
    observer: Option<Arc<dyn EventSink>>,
) -> i32 {
    let on_stdout = observer.is_none();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            errln!("error: cannot start the runtime: {e}");
            return exit::RUN_FAILED;
        }
    };
    let console = Arc::new(Console::new(
        exec.log_format,
        std::io::stderr().is_terminal() && super::level() != super::Level::Quiet,
    ));
    // Quiet: no progress lines, only the summary (the result) and errors. Machine formats
    // are kept whole.
    let progress = exec.log_format != LogFormat::Text || super::level() != super::Level::Quiet;
    let mut builder = if progress {
        builder.sink(console.clone())
    } else {
        builder
    };
    if let Some(o) = observer {
        builder = builder.sink(o);
    }
    runtime.block_on(async move {
        let result = builder.run().await;
        console.finish();
        match result {
            Ok(outcome) => {
                console.print_result(&outcome.run_id, &outcome.report, on_stdout);
                if let Some(reason) = &outcome.journal_lost {
                    errln!(
                        "error: {reason}: the run was stopped and rolled back, but that is not on record, so run {} cannot be resumed into a success; its locks stay marked until you check the system and break them (or `opsplan resume {} --rollback` once the disk has room)",
                        outcome.run_id, outcome.run_id
                    );
                    return exit::JOURNAL_LOST;
                }
                if outcome.locks_kept && outcome.journal.is_some() {
                    errln!(
                        "retry the failed undo and cleanup with `opsplan resume {}` once the cause is fixed",
                        outcome.run_id
                    );
                }
                exit::for_status(outcome.report.status)
            }
            Err(RunError::Interrupted) => exit::INTERRUPTED,
            Err(e) => {
                errln!("error: {}", run_error_text(&e));
                exit::for_run_error(&e)
            }
        }
    })
}

/// `opsplan run`.
pub(super) fn run_plan(
    plan: Arc<CompiledPlan>,
    exec: &ExecOptions,
    durable: &DurableOptions,
    no_journal: bool,
) -> i32 {
    let journal = if no_journal {
        JournalTarget::None
    } else {
        JournalTarget::New(durable.journal_dir.clone())
    };
    let builder = configure(RunBuilder::new(plan), exec, durable).journal(journal);
    execute(builder, exec, None)
}
