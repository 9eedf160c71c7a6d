//! A run started from a shipped plan by name (`opsplan run examples/archive-folder`, no file
//! on disk) journals the plan as `builtin:examples/archive-folder.yaml`, and `resume` after a
//! kill reads the embedded plan again and finishes the run.

use crate::durable_common;

use durable_common::*;

#[test]
fn a_run_of_a_shipped_plan_by_name_resumes_from_the_embedded_plan() {
    let work = tempfile::tempdir().expect("tempdir");
    let w = work.path();
    let dest = format!("dest={}", w.join("out").display());
    let source = format!("source={}", repo("docs").display());
    // Killed before record 3 (`prepare`'s finish), so `prepare` is in doubt.
    let mut cmd = opsplan(
        w,
        &[
            "run",
            "examples/archive-folder",
            "--set",
            &dest,
            "--set",
            &source,
        ],
    );
    cmd.env("OPSPLAN_TEST_KILL_AT", "before:3");
    let first = run(cmd);
    assert_eq!(first.signal, Some(9), "{}", first.all());
    let run_id = only_run(w);
    let s = show(w, &run_id);
    assert_eq!(
        s["meta"]["plan"]["path"], "builtin:examples/archive-folder.yaml",
        "{s}"
    );

    let r = run(opsplan(w, &["resume", &run_id, "--rerun", "prepare"]));
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(r.stdout.contains("run succeeded"), "{}", r.stdout);
    assert_eq!(show(w, &run_id)["status"], "succeeded");
    assert!(
        !w.join("out/IN-PROGRESS").exists(),
        "the marker is released"
    );
}
