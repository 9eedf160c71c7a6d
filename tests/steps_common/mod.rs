//! Helpers shared by the step-type tests (tests/steps_*.rs).

use std::process::Command;

/// The binary, with its run journals and locks in the system temp folder rather than in the
/// repository the tests run from.
pub fn opsplan_command() -> Command {
    let state = std::env::temp_dir().join("opsplan-tests-state");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_opsplan"));
    cmd.env("OPSPLAN_JOURNAL_DIR", state.join("runs"))
        .env("OPSPLAN_LOCK_DIR", state.join("locks"));
    cmd
}
