//! Helpers shared by the step-type tests (tests/steps_*.rs).

use std::process::Command;

/// The binary, with its run journals and locks in the system temp folder rather than in the
/// repository the tests run from.
pub fn opsplan_command() -> Command {
    opsplan_testkit::bin::command(&std::env::temp_dir().join("opsplan-tests-state"))
}
