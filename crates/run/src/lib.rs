//! opsplan-run: runs a compiled plan, for the CLI and for any program that embeds opsplan.
//!
//! [`RunBuilder`] is the entry: a compiled plan (from `opsplan_plan::pipeline`), a journal
//! ([`JournalTarget`]), a lock backend ([`lock::LockBackend`]; [`lock::file::FileLocks`]
//! is the local one), the answers and a [`opsplan_plan::step::Prompter`], event sinks and
//! cancellation ([`Interrupts`]); `run().await` returns a [`RunOutcome`] or a [`RunError`].
//! [`resume::prepare`] turns an interrupted run's journal into a [`resume::ResumeTicket`]
//! or a typed refusal. [`exec`] is the scheduler, [`journal`] the run journal and the state
//! fold, [`signals`] the optional standard signal policy, [`drill`] the restore drill.

// The library prints nothing itself: it tells the host through notices, events and
// the prompter (the terminal's own prompter is the binary's, beside its live view).

pub mod drill;
pub mod exec;
pub mod exit;
pub mod journal;
pub mod lock;
pub mod notice;
pub mod resume;
pub mod run;
pub mod signals;
pub mod survivors;

pub use drill::{DrillHost, DrillNotice};
pub use exec::events::{EventSink, RunEvent, RunStatus};
pub use exec::Interrupts;
pub use run::{JournalTarget, Notice, RunBuilder, RunError, RunOutcome, Signals};
