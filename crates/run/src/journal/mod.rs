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

use std::ffi::OsString;
use std::path::PathBuf;

/// The folder of opsplan's state (run journals in `runs/`, local locks in `locks/`) when
/// `--journal-dir`/`OPSPLAN_JOURNAL_DIR` and `--lock-dir`/`OPSPLAN_LOCK_DIR` do not name
/// one. It never depends on the current folder, so cron, systemd and a shell in another
/// folder find the same runs and take the same locks:
///
/// 1. `$STATE_DIRECTORY` (systemd's `StateDirectory=opsplan`; the first of several),
/// 2. `$XDG_STATE_HOME/opsplan`,
/// 3. `$HOME/.local/state/opsplan`,
/// 4. `/var/lib/opsplan` for root without a `$HOME`,
/// 5. `.opsplan` in the current folder, for another user without a `$HOME` (nowhere else
///    is known to be theirs).
pub fn default_state_dir() -> PathBuf {
    state_dir_from(|k| std::env::var_os(k), nix::unistd::geteuid().is_root())
}

/// [`default_state_dir`] from an environment and whether the process is root.
pub fn state_dir_from(env: impl Fn(&str) -> Option<OsString>, root: bool) -> PathBuf {
    // Only absolute paths count: a relative one would depend on the current folder again.
    let var = |k: &str| env(k).map(PathBuf::from).filter(|p| p.is_absolute());
    if let Some(dirs) = env("STATE_DIRECTORY") {
        // systemd joins several StateDirectory= entries with `:`.
        let first = dirs.to_string_lossy().split(':').next().map(PathBuf::from);
        if let Some(first) = first.filter(|p| p.is_absolute()) {
            return first;
        }
    }
    if let Some(xdg) = var("XDG_STATE_HOME") {
        return xdg.join("opsplan");
    }
    if let Some(home) = var("HOME") {
        return home.join(".local/state/opsplan");
    }
    if root {
        PathBuf::from("/var/lib/opsplan")
    } else {
        PathBuf::from(".opsplan")
    }
}

/// Where run journals go unless `--journal-dir` or `OPSPLAN_JOURNAL_DIR` says otherwise:
/// `runs/` in [`default_state_dir`].
pub fn default_dir() -> PathBuf {
    default_state_dir().join("runs")
}

/// Where local locks live unless `--lock-dir` or `OPSPLAN_LOCK_DIR` says otherwise: `locks/`
/// in [`default_state_dir`], so that two runs of one user collide whichever folder each
/// started in.
pub fn default_lock_dir() -> PathBuf {
    default_state_dir().join("locks")
}

/// `path` made absolute against the current directory (a journal outlives the shell's cwd).
pub fn absolute(path: &std::path::Path) -> PathBuf {
    // A shipped plan's virtual path (`builtin:cosmos7/backup.yaml`) names no file here.
    if opsplan_plan::library::is_builtin(path) {
        return path.to_path_buf();
    }
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}
