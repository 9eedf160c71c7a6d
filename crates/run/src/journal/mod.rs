//! Run journals: every run's events on disk, durable before a step's effect counts as done,
//! so that `opsplan resume` can finish what a crash interrupted.
//!
//! [`format`] is the on-disk layout and its version; [`recorder::Recorder`] is the one
//! writer (an event sink); [`store`] reads journals back; [`state::fold`] turns records
//! into the run's state; [`resume`] decides, from that state and the plan, what a resumed
//! run does. docs/design/0003-journal-and-resume.md describes all of it.

pub mod format;
pub mod recorder;
pub mod resume;
pub mod state;
pub mod store;

use std::path::PathBuf;

/// Where run journals go unless `--journal-dir` or `OPSPLAN_JOURNAL_DIR` says otherwise.
pub const DEFAULT_DIR: &str = ".opsplan/runs";
/// Where local locks live unless `--lock-dir` or `OPSPLAN_LOCK_DIR` says otherwise.
pub const DEFAULT_LOCK_DIR: &str = ".opsplan/locks";

/// `path` made absolute against the current directory (a journal outlives the shell's cwd).
pub fn absolute(path: &std::path::Path) -> PathBuf {
    // A shipped plan's virtual path (`builtin:cosmos7/backup.yaml`) names no file here.
    if opsplan_plan::library::is_builtin(path) {
        return path.to_path_buf();
    }
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}
