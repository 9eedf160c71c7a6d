//! What the executor reports. The console, the JSON log and the run journal are all sinks
//! of these events; the executor itself prints nothing.

pub use opsplan_plan::step::StepStatus;
use opsplan_plan::step::{Outputs, Stream};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Phase {
    /// The plan's steps in dependency order.
    Forward,
    /// On resume: the probe of a step a crash left in doubt (`on_resume: check`).
    Check,
    /// A completed step's compensation, after a failure.
    Undo,
    /// A releasing or `always` step run after a failure or cancel.
    Cleanup,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    Succeeded,
    /// A step failed; undo and cleanup all succeeded.
    Failed,
    /// Stopped by a signal; undo and cleanup all succeeded.
    Cancelled,
    /// Undo or cleanup itself failed: something may be left behind.
    RollbackFailed,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum RunEvent {
    RunStarted {
        run_id: String,
        plan: String,
        version: Option<String>,
        content_hash: String,
        steps: Vec<String>,
        at: String,
    },
    StepStarted {
        step: String,
        phase: Phase,
        attempt: u32,
        action: String,
        at: String,
    },
    StepLog {
        step: String,
        stream: Stream,
        line: String,
    },
    /// A step started a child process in its own process group. Durable before the child
    /// does much: after a kill -9 of the engine, `resume` stops what survived of it.
    ChildStarted {
        step: String,
        phase: Phase,
        /// The process group (its leader's pid).
        pgid: i32,
        /// The leader's start time (clock ticks since boot, /proc/PID/stat field 22), which
        /// tells a survivor from a new process that reused the pid.
        start: u64,
    },
    AttemptFailed {
        step: String,
        phase: Phase,
        attempt: u32,
        error: String,
        retry_in_ms: Option<u64>,
    },
    StepFinished {
        step: String,
        phase: Phase,
        status: StepStatus,
        attempts: u32,
        duration_ms: u64,
        outputs: Option<Outputs>,
        error: Option<String>,
        at: String,
        /// Failed, and the failure matched the step's `refused_when`: nothing was acquired,
        /// so its release does not run (on resume either). Absent (false) in journals
        /// written before `refused_when` existed.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        refused: bool,
    },
    /// A `for_each` over another step's outputs was rendered: the step runs as one step per
    /// item (`step[name]`), in this order. Durable before any item starts, so a resume uses
    /// these items even if the list's producer would now answer differently.
    FanOut {
        step: String,
        /// What the list was read from, as written (`{{ steps.list.outputs.json }}`).
        list: String,
        items: Vec<serde_json::Value>,
    },
    RollbackStarted {
        reason: String,
        undo: Vec<String>,
        cleanup: Vec<String>,
        /// Resources whose release does not run because their acquire was refused.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        not_released: Vec<String>,
    },
    Signal {
        signal: String,
        action: String,
    },
    RunFinished {
        status: RunStatus,
        duration_ms: u64,
        at: String,
    },
}

pub fn now() -> String {
    humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string()
}

/// Receives every event, in order, before the executor goes on. A sink that makes events
/// durable (the journal) returns from [`EventSink::emit`] only once the event is on disk;
/// which records must be durable before which effect is the executor's business
/// (docs/design/0003-journal-and-resume.md, "Durability point"): it emits those with
/// `emit`/`emit_all` and the others with [`EventSink::emit_unsynced`].
pub trait EventSink: Send + Sync {
    fn emit(&self, event: &RunEvent);
    /// Several events in order; a journal makes them durable together (one sync), which is
    /// what the executor wants for steps that finished at the same moment.
    fn emit_all(&self, events: &[RunEvent]) {
        for e in events {
            self.emit(e);
        }
    }
    /// Events in order that need not be durable yet: a journal writes them at once (so a
    /// killed process leaves them on record) and makes them durable with the next `emit`,
    /// `emit_all` or [`EventSink::sync`]. Sinks that keep nothing treat them like `emit`.
    fn emit_unsynced(&self, events: &[RunEvent]) {
        self.emit_all(events);
    }
    /// Makes every event emitted so far durable (a journal: one `fdatasync` unless a sync
    /// since the last event already covered it).
    fn sync(&self) {}
}
/// Sends each event to several sinks (console and journal).
pub struct Fanout(pub Vec<std::sync::Arc<dyn EventSink>>);

impl EventSink for Fanout {
    fn emit(&self, event: &RunEvent) {
        for s in &self.0 {
            s.emit(event);
        }
    }
    fn emit_all(&self, events: &[RunEvent]) {
        for s in &self.0 {
            s.emit_all(events);
        }
    }
    fn emit_unsynced(&self, events: &[RunEvent]) {
        for s in &self.0 {
            s.emit_unsynced(events);
        }
    }
    fn sync(&self) {
        for s in &self.0 {
            s.sync();
        }
    }
}
