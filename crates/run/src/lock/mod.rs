//! Run locks: the plan's `locks`, taken before the first step and held until the run ends.
//!
//! A lock has a holder record (run id, host, pid, start time) beside the mutual exclusion
//! itself. A lock whose exclusion is free but whose record is still there was held by a
//! process that died without finishing its run: it is *stale*. It keeps protecting what
//! that run may have left held (a checkpoint), so only a resume of the same run takes it
//! over silently; anyone else needs `--break-lock`.
//!
//! [`LockBackend`] is the seam for other backends (docs/design/0003-journal-and-resume.md
//! sketches S3 conditional writes and Kubernetes Leases); [`file::FileLocks`] is the local
//! one, on flock(2).

pub mod file;

use serde::{Deserialize, Serialize};
use std::time::{Duration, Instant};

/// Who holds a lock.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Holder {
    pub run_id: String,
    pub plan: String,
    pub host: String,
    pub pid: u32,
    /// When the run started.
    pub started: String,
    /// Set when the run finished but kept the lock marked (its record stays): why.
    /// Absent while the run holds it, and when its process died without finishing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended: Option<Ended>,
}

/// Why a finished run kept its locks marked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Ended {
    /// It failed and an undo or cleanup failed too (exit 3): what it held may still be held.
    RollbackFailed,
    /// Its journal could not be written (exit 5): what it did is not all on record.
    JournalLost,
}

impl Holder {
    /// How the holder left a stale lock, for the refusal.
    pub fn how_it_ended(&self) -> &'static str {
        match self.ended {
            None => "held it and its process is gone without finishing the run",
            Some(Ended::RollbackFailed) => {
                "finished with a failed rollback (exit 3) and kept it: what that run held may still be held"
            }
            Some(Ended::JournalLost) => {
                "finished without a complete journal (exit 5) and kept it: what that run did is not all on record"
            }
        }
    }
}

impl std::fmt::Display for Holder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "run {} (plan {}) on host {}, pid {}, started {}",
            self.run_id, self.plan, self.host, self.pid, self.started
        )
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("lock `{name}` is held by {}", holder.as_ref().map_or("another run".to_string(), std::string::ToString::to_string))]
    Held {
        name: String,
        holder: Option<Box<Holder>>,
    },
    #[error("lock `{name}` is stale: {holder} {}", holder.how_it_ended())]
    Stale { name: String, holder: Box<Holder> },
    #[error("lock `{name}`: {detail}")]
    Io { name: String, detail: String },
    #[error("stopped by a signal while waiting for lock `{name}`")]
    Interrupted { name: String },
}

/// How a lock that was not free came to be ours.
#[derive(Debug, Clone)]
pub enum Takeover {
    /// Our own run held it before a crash (resume).
    SameRun(Holder),
    /// A stale lock broken with `--break-lock`.
    Broken(Holder),
}

pub struct Acquired {
    pub guard: Box<dyn LockGuard>,
    pub takeover: Option<Takeover>,
}

/// A place where named locks live.
pub trait LockBackend: Send + Sync {
    /// One attempt, without waiting. `break_stale` takes over a stale lock of another run.
    fn try_acquire(
        &self,
        name: &str,
        me: &Holder,
        break_stale: bool,
    ) -> Result<Acquired, LockError>;
}

/// A held lock.
pub trait LockGuard: Send {
    fn name(&self) -> &str;
    /// Gives the lock back. With `keep_record` the holder record stays, so the lock reads
    /// as stale: the run ended with resources possibly still held (its rollback failed).
    fn release(self: Box<Self>, keep_record: bool) -> Result<(), LockError>;
    /// Records in the holder record that the run finished and why it keeps the lock
    /// marked, before `release(true)`, so the refusal says so instead of "gone without
    /// finishing". A backend without a record to amend does nothing (the default).
    fn mark_ended(&mut self, _ended: Ended) -> Result<(), LockError> {
        Ok(())
    }
    /// For a lease that expires unless renewed (a lock in S3 or a Kubernetes Lease): how
    /// often the run renews it. Local locks never expire (the default, `None`).
    fn renew_every(&self) -> Option<Duration> {
        None
    }
    /// Renews the lease. An error means the lock may be lost: the run is cancelled and
    /// rolls back, since another run may now hold it.
    fn renew(&mut self) -> Result<(), LockError> {
        Ok(())
    }
}

#[derive(Debug, Clone, Default)]
pub struct AcquireOptions {
    pub break_stale: bool,
    /// Wait up to this long for a held lock (`--wait-lock`); refuse at once without it.
    pub wait: Option<Duration>,
}

/// Takes every lock (sorted, so two runs needing the same locks cannot deadlock), or none:
/// on an error the ones already taken are given back. `cancelled` stops a wait.
pub fn acquire_all(
    backend: &dyn LockBackend,
    names: &[String],
    me: &Holder,
    opts: &AcquireOptions,
    cancelled: &dyn Fn() -> bool,
) -> Result<Vec<Acquired>, LockError> {
    let mut names: Vec<&String> = names.iter().collect();
    names.sort();
    names.dedup();
    let mut taken: Vec<Acquired> = Vec::new();
    let deadline = opts.wait.map(|w| Instant::now() + w);
    for name in names {
        loop {
            match backend.try_acquire(name, me, opts.break_stale) {
                Ok(a) => {
                    taken.push(a);
                    break;
                }
                Err(LockError::Held { .. })
                    if deadline.is_some_and(|d| Instant::now() < d) && !cancelled() =>
                {
                    std::thread::sleep(Duration::from_millis(100));
                }
                Err(e) => {
                    let e = if cancelled() {
                        LockError::Interrupted { name: name.clone() }
                    } else {
                        e
                    };
                    for a in taken {
                        let _ = a.guard.release(false);
                    }
                    return Err(e);
                }
            }
        }
    }
    Ok(taken)
}
