//! The Docker engine as the tests drive it: the `docker` CLI (what an operator types, and
//! what the lab scripts use), with the same [`Ran`] as every other program a test runs.

use crate::bin::{run_tool, Ran};
use std::process::Command;
use std::time::Duration;

/// The longest one `docker` command may take (an image build from the local cache included).
pub const LIMIT: Duration = Duration::from_secs(600);

/// `docker ARGS`, whatever it exits with.
#[track_caller]
pub fn docker(args: &[&str]) -> Ran {
    run_tool(Command::new("docker").args(args), LIMIT)
}

/// `docker ARGS`, which must succeed: its stdout.
#[track_caller]
pub fn docker_ok(args: &[&str]) -> String {
    let ran = docker(args);
    assert_eq!(
        ran.code,
        0,
        "docker {args:?} failed (exit {}):\n{}",
        ran.code,
        ran.all()
    );
    ran.stdout
}

/// Whether a Docker engine answers (`docker version` reaches the daemon).
pub fn available() -> bool {
    Command::new("docker")
        .args(["version", "--format", "{{.Server.Version}}"])
        .output()
        .is_ok_and(|o| o.status.success())
}
