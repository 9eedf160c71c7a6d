//! The standard signal policy, an optional helper of the run builder (embedders with their
//! own handling pass [`crate::Signals::None`] and cancel through [`crate::Interrupts`]).
//!
//! SIGINT, SIGTERM, SIGHUP (the operator's SSH session dropped) and SIGQUIT all mean "stop":
//! the first stops and rolls back, the second skips grace periods. Cleanup itself is never
//! interrupted: a signal once undo and cleanup started, and any third one, is reported (and
//! journaled) and ignored. SIGPIPE is ignored (Rust's default): a closed output stream makes
//! writes fail, never the run. SIGKILL cannot be caught: `opsplan resume` finishes the job.
//! docs/reference/exit-codes.md lists the behaviour of every signal.

use crate::exec::events::{EventSink, RunEvent};
use crate::exec::Interrupts;
use crate::notice::{Notice, NoticeFn};
use std::sync::{Arc, OnceLock};

/// The signal handler exists before the journal does (a signal while waiting for a lock);
/// it reports to whatever sink is installed by then.
pub(crate) struct SinkSlot {
    pub(crate) sink: OnceLock<Arc<dyn EventSink>>,
    /// Told of a signal that arrives before any sink is installed.
    pub(crate) early: NoticeFn,
}

impl EventSink for SinkSlot {
    fn emit(&self, event: &RunEvent) {
        match self.sink.get() {
            Some(s) => s.emit(event),
            None => {
                if let RunEvent::Signal { signal, .. } = event {
                    (self.early)(&Notice::SignalBeforeStart {
                        signal: signal.clone(),
                    });
                }
            }
        }
    }
    fn emit_all(&self, events: &[RunEvent]) {
        match self.sink.get() {
            Some(s) => s.emit_all(events),
            None => events.iter().for_each(|e| self.emit(e)),
        }
    }
    fn emit_unsynced(&self, events: &[RunEvent]) {
        match self.sink.get() {
            Some(s) => s.emit_unsynced(events),
            None => events.iter().for_each(|e| self.emit(e)),
        }
    }
    fn sync(&self) {
        if let Some(s) = self.sink.get() {
            s.sync();
        }
    }
}

pub(crate) fn spawn_handler(interrupts: Interrupts, sink: Arc<dyn EventSink>) {
    use tokio::signal::unix::{signal, SignalKind};
    tokio::spawn(async move {
        let (Ok(mut int), Ok(mut term), Ok(mut hup), Ok(mut quit)) = (
            signal(SignalKind::interrupt()),
            signal(SignalKind::terminate()),
            signal(SignalKind::hangup()),
            signal(SignalKind::quit()),
        ) else {
            return;
        };
        let mut count = 0;
        loop {
            let name = tokio::select! {
                _ = int.recv() => "SIGINT",
                _ = term.recv() => "SIGTERM",
                _ = hup.recv() => "SIGHUP",
                _ = quit.recv() => "SIGQUIT",
            };
            count += 1;
            let rolling_back = interrupts
                .rolling_back
                .load(std::sync::atomic::Ordering::SeqCst);
            let action = match count {
                _ if rolling_back => {
                    "ignored: undo and cleanup are running and will not be interrupted"
                }
                1 => {
                    // The reason names the signal: rollback and `run.error` say what stopped it.
                    interrupts.cancel_for(format!("cancelled by {name}"));
                    "stopping: no new steps; cancelling running steps, then undo and cleanup"
                }
                2 => {
                    interrupts.hurry.cancel();
                    "killing running steps now (no grace period); undo and cleanup still run"
                }
                _ => "ignored: undo and cleanup are running and will not be interrupted",
            };
            sink.emit(&RunEvent::Signal {
                signal: name.into(),
                action: action.into(),
            });
        }
    });
}
