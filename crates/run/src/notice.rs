//! What a run tells its caller outside the event stream (before the journal exists or
//! after it is closed), in a module of its own so the journal and the signal handler can
//! send it without depending on the run builder.

use crate::lock::Holder;
use std::path::PathBuf;
use std::sync::Arc;

/// Something the run did that an operator should know, outside the event stream (it
/// happens before the journal exists or after it is closed).
#[derive(Debug, Clone)]
pub enum Notice {
    /// The run's journal folder.
    Journal(PathBuf),
    /// A lock this run held when it was interrupted was taken back.
    LockTakenBack(String),
    /// A stale lock of another run was broken (`break_stale`).
    LockBroken { name: String, holder: Box<Holder> },
    /// A lock could not be given back.
    LockReleaseFailed { name: String, error: String },
    /// A lease-backed lock could not be renewed: the run was cancelled.
    LockLost { name: String, error: String },
    /// The journal could not be written: the run stops (a crash now could not be resumed).
    JournalLost { reason: String },
    /// A signal arrived before the run started (while waiting for a lock): nothing ran.
    SignalBeforeStart { signal: String },
}

impl std::fmt::Display for Notice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Notice::Journal(dir) => write!(f, "journal: {}", dir.display()),
            Notice::LockTakenBack(name) => write!(
                f,
                "lock `{name}`: taken back (this run held it when it was interrupted)"
            ),
            Notice::LockBroken { name, holder } => write!(
                f,
                "warning: lock `{name}`: broke the stale lock of {holder} (--break-lock)"
            ),
            Notice::LockReleaseFailed { name, error } => {
                write!(f, "warning: releasing lock `{name}`: {error}")
            }
            Notice::JournalLost { reason } => write!(
                f,
                "error: {reason}; stopping the run (a crash now could not be resumed)"
            ),
            Notice::SignalBeforeStart { signal } => {
                write!(f, "{signal}: stopping before the run started")
            }
            Notice::LockLost { name, error } => write!(
                f,
                "error: lock `{name}` could not be renewed ({error}): stopping the run"
            ),
        }
    }
}

pub(crate) type NoticeFn = Arc<dyn Fn(&Notice) + Send + Sync>;
