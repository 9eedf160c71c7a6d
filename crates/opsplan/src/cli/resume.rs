//! `opsplan resume`: [`opsplan_run::resume::prepare`] decides, this prints and runs.

use super::execute::{self, DurableOptions};
use super::{print_diagnostics, ExecOptions};
use crate::prompt::TerminalPrompter;
use opsplan_plan::pipeline::LoadError;
use opsplan_plan::step::Registry;
use opsplan_run::exit;
use opsplan_run::lock::file::FileLocks;
use opsplan_run::resume::{self, ResumeRefusal, ResumeRequest};
use opsplan_run::RunBuilder;
use std::sync::Arc;

pub(super) fn cmd_resume(
    mut req: ResumeRequest,
    exec: ExecOptions,
    mut durable: DurableOptions,
    registry: &Arc<Registry>,
) -> i32 {
    super::init_tracing(exec.log_format);
    // The run's relative paths mean files where it started: work there, with the journal
    // and lock folders fixed first.
    req.journal_root = opsplan_run::journal::absolute(&req.journal_root);
    durable.journal_dir = req.journal_root.clone();
    durable.lock_dir = opsplan_run::journal::absolute(&durable.lock_dir);
    if let Some(dir) = resume::original_dir(&req) {
        let here = std::env::current_dir().ok();
        if here.as_deref() != Some(dir.as_path()) {
            if let Err(e) = std::env::set_current_dir(&dir) {
                errln!(
                    "error: the run started in {}, where its relative paths point, and that folder cannot be entered: {e}; nothing was run",
                    dir.display()
                );
                return exit::INVALID;
            }
            errln!(
                "resume: working in {}, where the run started",
                dir.display()
            );
        }
    }
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            errln!("error: cannot start the runtime: {e}");
            return exit::RUN_FAILED;
        }
    };
    let locks = FileLocks::new(opsplan_run::journal::absolute(&durable.lock_dir));
    let prompter = TerminalPrompter::default();
    let prepared = runtime.block_on(resume::prepare(&req, registry, &prompter, &locks));
    drop(runtime);
    let ticket = match prepared {
        Ok(t) => t,
        Err(refusal) => {
            report_refusal(&refusal);
            return exit::for_resume_refusal(&refusal);
        }
    };
    print_diagnostics(&ticket.warnings, &ticket.sources);
    for n in &ticket.notes {
        errln!("{n}");
    }
    let builder = execute::configure(RunBuilder::resume(ticket), &exec, &durable);
    execute::execute(builder, &exec, None)
}

fn report_refusal(refusal: &ResumeRefusal) {
    match refusal {
        ResumeRefusal::Finished { released_locks, .. } => {
            errln!("{refusal}");
            for name in released_locks {
                errln!("lock `{name}`: released (the run ended before it could give it back)");
            }
        }
        ResumeRefusal::SecretsMissing(_) => errln!("{refusal}"),
        ResumeRefusal::PlanInvalid { error, .. } => {
            match error {
                LoadError::Invalid {
                    diagnostics,
                    sources,
                } => print_diagnostics(diagnostics, sources),
                LoadError::Fragment { path } => errln!(
                    "{}: a fragment cannot run alone; use it from a plan with `uses:`",
                    path.display()
                ),
            }
            errln!("error: {refusal}");
        }
        _ => errln!("error: {refusal}"),
    }
}
