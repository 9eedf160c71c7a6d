//! Helpers shared by the step-type tests (tests/steps_*.rs).

use std::process::Command;

/// The binary, with its run journals and locks in the system temp folder rather than in the
/// repository the tests run from.
pub fn opsplan_command() -> Command {
    opsplan_testkit::bin::command(&std::env::temp_dir().join("opsplan-tests-state"))
}

/// What the binary printed (stdout then stderr) for `args`, run from the repository root
/// without colour: previews and diagnostics for snapshots, whatever the exit code.
// The lab binary includes this module too and uses only `opsplan_command`.
#[allow(dead_code)]
pub fn opsplan_text(args: &[&str]) -> String {
    let out = opsplan_command()
        .args(args)
        .current_dir(opsplan_testkit::repo_root())
        .env("NO_COLOR", "1")
        .output()
        .expect("run opsplan");
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}
