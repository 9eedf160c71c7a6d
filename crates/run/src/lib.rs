//! opsplan-run: runs a compiled plan, for the CLI and for any program that embeds opsplan.
//!
//! [`RunBuilder`] is the entry: a compiled plan (from `opsplan_plan::pipeline`), a journal
//! ([`JournalTarget`]), a lock backend ([`lock::LockBackend`]; [`lock::file::FileLocks`]
//! is the local one), the answers and a [`opsplan_plan::step::Prompter`], event sinks and
//! cancellation ([`Interrupts`]); `run().await` returns a [`RunOutcome`] or a [`RunError`].
//! [`resume::prepare`] turns an interrupted run's journal into a [`resume::ResumeTicket`]
//! or a typed refusal. [`exec`] is the scheduler, [`journal`] the run journal and the state
//! fold, [`signals`] the optional standard signal policy, [`drill`] the restore drill.

/// Printing that never panics: a closed or broken stdout or stderr (`opsplan schema |
/// head -1`, an SSH session that dropped) must not turn a run into a panic or change its
/// outcome, so write errors are ignored.
#[allow(unused_macros)]
macro_rules! outln {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($t)*);
    }};
}
#[allow(unused_macros)]
macro_rules! out {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        let _ = write!(std::io::stdout(), $($t)*);
    }};
}
macro_rules! errln {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($t)*);
    }};
}
macro_rules! err {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        let _ = write!(std::io::stderr(), $($t)*);
    }};
}

pub mod drill;
pub mod exec;
pub mod exit;
pub mod journal;
pub mod lock;
pub mod prompt;
pub mod resume;
pub mod run;
pub mod signals;
pub mod survivors;

pub use exec::events::{EventSink, RunEvent, RunStatus};
pub use exec::Interrupts;
pub use run::{JournalTarget, Notice, RunBuilder, RunError, RunOutcome, Signals};
