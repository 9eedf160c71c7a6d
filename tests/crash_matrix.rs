//! The crash matrix: the engine is SIGKILLed at every event boundary of a plan that takes a
//! checkpoint (tests/standins/checkpoint.sh: a stand-in whose create is not idempotent),
//! copies three files while it is held, releases it and writes a manifest; then `opsplan
//! resume` finishes the run. Kill points come from the test-only hook
//! `OPSPLAN_TEST_KILL_AT` (debug builds): `before:N` kills after the effect of the step whose
//! record N is, but before that record is written; `after:N` once record N is durable;
//! `torn:N` after writing half of record N; `lost:N` is a crash of the machine just before
//! record N: no record is written any more, the run's child processes finish, what the
//! journal had not synced is cut off, then the engine is killed; so the case tests which
//! records the engine syncs before which effect (a SIGKILL alone leaves every written
//! record in place). Both the success path and the
//! rollback path (`fail=true`) are covered. The same matrix runs on crash-fan-out.yaml,
//! where the copies are a run-time fan-out (`for_each` over a listing step's outputs): the
//! expanded list is journaled, and each item has its own records and undo.
//!
//! In every case: the checkpoint is released, the lock is free, the non-idempotent create
//! ran exactly once, a copy the journal shows finished was not redone, and the destination
//! is complete (success) or the run says it failed and its undo removed the copies.

// Test helpers fail the test loudly on setup errors; that is what unwrap is for here.
#![allow(clippy::unwrap_used)]

use crate::durable_common;

use durable_common::*;
use std::path::Path;
use std::time::Duration;

const FILES: [&str; 3] = ["a", "b", "c"];

fn setup() -> tempfile::TempDir {
    let work = tempfile::tempdir().expect("temp dir");
    std::fs::create_dir(work.path().join("src")).unwrap();
    for f in FILES {
        std::fs::write(
            work.path().join("src").join(f),
            format!("contents of {f}\n").repeat(100),
        )
        .unwrap();
    }
    work
}

fn run_args(plan: &str, work: &Path, fail: bool) -> Vec<String> {
    vec![
        "run".into(),
        fixture(plan).display().to_string(),
        "--set".into(),
        format!("dir={}", work.display()),
        "--set".into(),
        format!("standin={}", repo("tests/standins/checkpoint.sh").display()),
        "--set".into(),
        format!("fail={fail}"),
    ]
}

fn count_lines(path: &Path, what: &str) -> usize {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter(|l| l.trim() == what)
        .count()
}

fn records(work: &Path) -> usize {
    let run = only_run(work);
    std::fs::read_to_string(work.join(".opsplan/runs").join(run).join("events.jsonl"))
        .unwrap_or_default()
        .lines()
        .count()
}

/// Steps the journal shows as finished successfully (forward phase).
fn finished_ok(state: &serde_json::Value) -> Vec<String> {
    state["state"]["steps"]
        .as_object()
        .map(|steps| {
            steps
                .iter()
                .filter(|(_, s)| s["forward"]["status"] == "succeeded")
                .map(|(id, _)| id.clone())
                .collect()
        })
        .unwrap_or_default()
}

struct Figures {
    runs: usize,
    kill_points: usize,
    killed: usize,
    leaks: Vec<String>,
}

fn case(plan: &str, fail: bool, mode: &str, n: usize, fig: &mut Figures) {
    let work = setup();
    let w = work.path();
    let label = format!("{plan} fail={fail} {mode}:{n}");
    let args = run_args(plan, w, fail);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut cmd = opsplan(w, &args);
    cmd.env("OPSPLAN_TEST_KILL_AT", format!("{mode}:{n}"));
    let first = run(cmd);
    fig.runs += 1;
    fig.kill_points += 1;
    if first.signal == Some(9) {
        fig.killed += 1;
    }
    let run_id = only_run(w);
    let before = show(w, &run_id);
    let done_before = finished_ok(&before);

    let resumed = run(opsplan(w, &["resume", &run_id]));
    fig.runs += 1;
    let after = show(w, &run_id);
    let status = after["status"].as_str().unwrap_or_default().to_string();
    let mut problems = Vec::new();

    // The resource: released, once created, the lock free.
    let checkpoint = std::fs::read_to_string(w.join("checkpoint")).unwrap_or_default();
    if checkpoint.trim() == "held" {
        problems.push("checkpoint still held".to_string());
    }
    let creates = count_lines(&w.join("checkpoint.log"), "create");
    if creates != 1 {
        problems.push(format!("checkpoint created {creates} times"));
    }
    let lock =
        std::fs::read_to_string(w.join(".opsplan/locks/crash-matrix.lock")).unwrap_or_default();
    if !lock.trim().is_empty() {
        problems.push(format!("lock still recorded: {lock}"));
    }
    // Completed work not redone.
    for f in FILES {
        let copies = count_lines(&w.join("copies.log"), f);
        let step = format!("copy[{f}]");
        if done_before.contains(&step) && copies != 1 {
            problems.push(format!(
                "{step} finished before the crash but ran {copies} times"
            ));
        }
    }
    // Destination complete, or the run says it failed and its undo ran.
    if fail {
        if status != "failed" {
            problems.push(format!("status {status}, expected failed"));
        }
        for f in FILES {
            if w.join("dest").join(f).exists() {
                problems.push(format!("dest/{f} left behind after the undo"));
            }
        }
    } else {
        if status != "succeeded" {
            problems.push(format!("status {status}, expected succeeded"));
        }
        for f in FILES {
            let src = std::fs::read(w.join("src").join(f)).unwrap();
            if std::fs::read(w.join("dest").join(f)).ok().as_ref() != Some(&src) {
                problems.push(format!("dest/{f} missing or incomplete"));
            }
        }
        let manifest = std::fs::read_to_string(w.join("manifest")).unwrap_or_default();
        if manifest.lines().collect::<Vec<_>>() != FILES {
            problems.push(format!("manifest is {manifest:?}"));
        }
    }
    if mode == "torn" && first.signal == Some(9) && !resumed.stderr.contains("cut short by a crash")
    {
        problems.push("the torn record was not reported".into());
    }
    let expected_code = if status == "failed" { 1 } else { 0 };
    if resumed.code != expected_code && !resumed.stderr.contains("already finished") {
        problems.push(format!("resume exited {:?}", resumed.code));
    }
    if !problems.is_empty() {
        fig.leaks.push(format!(
            "{label}: {}\n--- first run:\n{}\n--- resume:\n{}",
            problems.join("; "),
            first.stderr,
            resumed.stderr
        ));
    }
}

#[test]
fn crash_at_every_event_boundary_then_resume() {
    matrix("crash.yaml");
}

#[test]
fn crash_at_every_event_boundary_of_a_run_time_fan_out_then_resume() {
    matrix("crash-fan-out.yaml");
}

fn matrix(plan: &str) {
    let mut fig = Figures {
        runs: 0,
        kill_points: 0,
        killed: 0,
        leaks: Vec::new(),
    };
    for fail in [false, true] {
        // A clean run gives the number of records, hence the kill points.
        let work = setup();
        let args = run_args(plan, work.path(), fail);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let clean = run(opsplan(work.path(), &args));
        assert_eq!(clean.code, if fail { 1 } else { 0 }, "{}", clean.all());
        let total = records(work.path());
        assert!(total >= 15, "only {total} records");
        for n in 1..=total {
            case(plan, fail, "before", n, &mut fig);
            case(plan, fail, "after", n, &mut fig);
            if n % 3 == 1 {
                case(plan, fail, "torn", n, &mut fig);
            }
            case(plan, fail, "lost", n, &mut fig);
        }
    }
    let line = format!(
        "crash matrix ({plan}): {} runs (crashed runs + resumes), {} kill points ({} killed as planned), {} leaks found",
        fig.runs,
        fig.kill_points,
        fig.killed,
        fig.leaks.len()
    );
    println!("{line}");
    // Past the test harness's capture, so the test run shows the figure.
    if let Ok(mut e) = std::fs::OpenOptions::new().write(true).open("/dev/stderr") {
        use std::io::Write;
        let _ = writeln!(e, "{line}");
    }
    assert!(
        fig.kill_points >= 50,
        "only {} kill points",
        fig.kill_points
    );
    assert!(fig.killed >= 50, "only {} runs were killed", fig.killed);
    assert!(fig.leaks.is_empty(), "{}", fig.leaks.join("\n\n"));
    let _ = Duration::ZERO;
}
