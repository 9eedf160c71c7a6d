//! `refused_when`: an acquire the other side refused (EBUSY from `fsfreeze`, "checkpoint
//! already in progress") took nothing, so its release does not run; a failure that leaves
//! the effect in doubt (a timeout, any other error) is released as before. Through the real
//! binary, on tests/fixtures/run/refused-freeze.yaml (`freeze` runs the test's `take.sh`,
//! with `timeout: 1s` and two attempts; `thaw` touches `thawed`).

// Test helpers fail the test loudly on setup errors; that is what unwrap is for here.
#![allow(clippy::unwrap_used)]

use opsplan_testkit::bin::{self, Ran};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

fn plan() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/run/refused-freeze.yaml")
}

/// `take.sh`: each attempt runs the next line of `attempts` (attempt 1 the first line).
fn setup(attempts: &[&str]) -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    for (n, body) in attempts.iter().enumerate() {
        std::fs::write(dir.join(format!("attempt{}.sh", n + 1)), body).unwrap();
    }
    std::fs::write(
        dir.join("take.sh"),
        format!(
            "n=$(($(cat {0}/count 2>/dev/null || echo 0) + 1)); echo $n > {0}/count; . {0}/attempt$n.sh\n",
            dir.display()
        ),
    )
    .unwrap();
    tmp
}

fn run_cmd(dir: &Path, verb: &[&str]) -> Command {
    let mut cmd = bin::command(dir);
    cmd.args(verb);
    cmd
}

fn run(dir: &Path) -> Ran {
    let mut cmd = run_cmd(dir, &["run"]);
    cmd.arg(plan())
        .arg("--set")
        .arg(format!("dir={}", dir.display()))
        .args(["--log-format", "json"]);
    bin::run_within(cmd, Duration::from_secs(60))
}

const BUSY: &str =
    "echo 'fsfreeze: /mnt/data: freeze failed: Device or resource busy' >&2; exit 1\n";
const DENIED: &str =
    "echo 'fsfreeze: /mnt/data: freeze failed: Operation not permitted' >&2; exit 1\n";
const HANGS: &str = "sleep 5\n";
const BUSY_EXIT_2: &str = "echo 'Device or resource busy' >&2; exit 2\n";

#[test]
fn a_refused_acquire_is_not_released_and_a_failure_in_doubt_is() {
    // (case, what each attempt does, refused: the thaw must not run)
    let cases: &[(&str, &[&str], bool)] = &[
        ("EBUSY twice", &[BUSY, BUSY], true),
        (
            "another error (exit 1, not EBUSY)",
            &[DENIED, DENIED],
            false,
        ),
        (
            "EBUSY text but exit 2: not every condition holds",
            &[BUSY_EXIT_2, BUSY_EXIT_2],
            false,
        ),
        ("timed out twice", &[HANGS, HANGS], false),
        // The first attempt may have frozen the volume itself: the EBUSY may be its own.
        ("timed out, then EBUSY", &[HANGS, BUSY], false),
    ];
    for &(case, attempts, refused) in cases {
        let tmp = setup(attempts);
        let dir = tmp.path();
        let ran = run(dir);
        ran.expect_code(1, case);
        assert_eq!(ran.status("freeze"), "failed", "{case}:\n{}", ran.all());
        let finished = &ran.finished("freeze")[0];
        let rollback = ran
            .events()
            .into_iter()
            .find(|e| e["event"] == "rollback_started")
            .unwrap_or_else(|| panic!("{case}: no rollback:\n{}", ran.all()));
        if refused {
            assert_eq!(finished["refused"], true, "{case}:\n{}", ran.all());
            assert!(
                !dir.join("thawed").exists(),
                "{case}: someone else's freeze was thawed"
            );
            assert_eq!(rollback["cleanup"], serde_json::json!([]), "{case}");
            assert_eq!(
                rollback["not_released"],
                serde_json::json!(["freeze"]),
                "{case}"
            );
        }
        // The run's timeline says it too, per step.
        let shown = bin::run_within(
            run_cmd(dir, &["runs", "show", "last"]),
            Duration::from_secs(30),
        );
        shown.expect_code(0, case);
        assert_eq!(
            shown
                .stdout
                .contains("FAILED, refused (nothing acquired; its release does not run)"),
            refused,
            "{case}:\n{}",
            shown.stdout
        );
        if !refused {
            assert!(finished.get("refused").is_none(), "{case}:\n{}", ran.all());
            assert!(
                dir.join("thawed").exists(),
                "{case}: the freeze was not released:\n{}",
                ran.all()
            );
            assert_eq!(rollback["cleanup"], serde_json::json!(["thaw"]), "{case}");
        }
    }
}

#[test]
fn a_refused_acquire_journaled_before_a_crash_is_not_released_on_resume() {
    let tmp = setup(&[BUSY, BUSY]);
    let dir = tmp.path();
    // Records: 1 run_started, then per attempt step_started, child_started, step_log (and
    // attempt_failed after the first): 9 is the refused step_finished. The engine dies once
    // it is durable, before its rollback starts.
    let mut cmd = run_cmd(dir, &["run"]);
    cmd.arg(plan())
        .arg("--set")
        .arg(format!("dir={}", dir.display()))
        .env("OPSPLAN_TEST_KILL_AT", "after:9");
    let first = bin::run_within(cmd, Duration::from_secs(60));
    assert_eq!(
        first.signal,
        Some(9),
        "precondition: killed:\n{}",
        first.all()
    );
    let runs: Vec<_> = std::fs::read_dir(dir.join("runs"))
        .unwrap()
        .flatten()
        .collect();
    assert_eq!(runs.len(), 1);
    let events = std::fs::read_to_string(runs[0].path().join("events.jsonl")).unwrap_or_default();
    assert!(
        events.contains("\"refused\":true") && !events.contains("rollback_started"),
        "precondition: the refusal is on record and the rollback did not start:\n{events}"
    );
    let id = runs[0].file_name().to_string_lossy().to_string();
    let resumed = bin::run_within(run_cmd(dir, &["resume", &id]), Duration::from_secs(60));
    assert!(
        !dir.join("thawed").exists(),
        "resume thawed someone else's freeze:\n{}",
        resumed.all()
    );
    assert!(
        resumed
            .stderr
            .contains("freeze not released: its acquire was refused"),
        "{}",
        resumed.all()
    );
    assert_ne!(resumed.code, 3, "{}", resumed.all());
}
