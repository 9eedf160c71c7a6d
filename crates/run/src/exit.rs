//! Exit codes, in one place; docs/reference/exit-codes.md explains each.

use crate::exec::events::RunStatus;
use crate::lock::LockError;
use crate::resume::ResumeRefusal;
use crate::run::RunError;

pub const OK: i32 = 0;
pub const RUN_FAILED: i32 = 1;
pub const INVALID: i32 = 2;
pub const ROLLBACK_FAILED: i32 = 3;
/// A lock is held by another run, or stale; nothing was run.
pub const LOCKED: i32 = 4;
/// The run journal could not be written: the run was stopped and rolled back, off the
/// record; it cannot be resumed into a success.
pub const JOURNAL_LOST: i32 = 5;
pub const INTERRUPTED: i32 = 130;

pub fn for_status(status: RunStatus) -> i32 {
    match status {
        RunStatus::Succeeded => OK,
        RunStatus::Failed => RUN_FAILED,
        RunStatus::RollbackFailed => ROLLBACK_FAILED,
        RunStatus::Cancelled => INTERRUPTED,
    }
}

pub fn for_run_error(e: &RunError) -> i32 {
    match e {
        RunError::NeedsForce { .. }
        | RunError::NeedsAnswers { .. }
        | RunError::PreviewOnly { .. } => INVALID,
        RunError::Lock(LockError::Interrupted { .. }) | RunError::Interrupted => INTERRUPTED,
        RunError::Lock(_) => LOCKED,
        RunError::JournalCreate { .. } | RunError::JournalReopen { .. } | RunError::LockTask(_) => {
            RUN_FAILED
        }
    }
}

pub fn for_resume_refusal(r: &ResumeRefusal) -> i32 {
    match r {
        ResumeRefusal::Finished { .. } => OK,
        ResumeRefusal::StillRunning(_) => LOCKED,
        ResumeRefusal::OwnerLock { .. } => RUN_FAILED,
        _ => INVALID,
    }
}
