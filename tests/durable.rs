//! Durable runs beyond the crash matrix: locks between concurrent runs, a stale lock after
//! SIGKILL, SIGINT in the middle of a step (journaled, cleaned up, no child left), and the
//! resume refusals (changed plan, a step in doubt whose `on_resume` is `ask`).

// Test helpers fail the test loudly on setup errors; that is what unwrap is for here.
#![allow(clippy::unwrap_used)]

use crate::durable_common;

use durable_common::*;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use std::path::Path;
use std::time::{Duration, Instant};

fn locked(work: &Path, extra: &[&str]) -> std::process::Command {
    let plan = fixture("locked.yaml").display().to_string();
    let dir = format!("dir={}", work.display());
    let mut args = vec!["run", plan.as_str(), "--set", dir.as_str()];
    args.extend_from_slice(extra);
    opsplan(work, &args)
}

fn run_id_of(stderr: &str) -> Option<String> {
    stderr.lines().find_map(|l| {
        l.strip_prefix("run ")?
            .split(':')
            .next()
            .map(str::to_string)
    })
}

/// Kills a leftover shell of a killed run (its own process group), so nothing outlives the test.
fn kill_hold_shells(work: &Path) {
    for e in std::fs::read_dir(work).unwrap().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if name.starts_with("hold.") && name.ends_with(".pid") {
            if let Ok(pid) = std::fs::read_to_string(e.path())
                .unwrap_or_default()
                .trim()
                .parse::<i32>()
            {
                let _ = nix::sys::signal::killpg(Pid::from_raw(pid), Signal::SIGKILL);
            }
        }
    }
}

#[test]
fn two_concurrent_runs_with_the_same_lock_exactly_one_proceeds() {
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let mut a = Running::spawn(locked(w, &[]));
    let mut b = Running::spawn(locked(w, &[]));
    // One of them is refused at once; the other holds the lock until `go` exists.
    let deadline = Instant::now() + Duration::from_secs(20);
    while !a.finished() && !b.finished() {
        assert!(Instant::now() < deadline, "neither run was refused");
        std::thread::sleep(Duration::from_millis(10));
    }
    std::fs::write(w.join("go"), "").unwrap();
    let (ra, rb) = (
        a.wait(Duration::from_secs(30)),
        b.wait(Duration::from_secs(30)),
    );
    let (winner, loser) = if ra.code == 0 { (ra, rb) } else { (rb, ra) };
    assert_eq!(winner.code, 0, "{}", winner.all());
    assert_eq!(loser.code, 4, "{}", loser.all());
    let holder = run_id_of(&winner.stderr).expect("winner's run id");
    assert!(
        loser.stderr.contains("lock `db-main` is held by run"),
        "{}",
        loser.stderr
    );
    assert!(loser.stderr.contains(&holder), "{}", loser.stderr);
    assert!(loser.stderr.contains(" pid "), "{}", loser.stderr);
    assert!(loser.stderr.contains("on host "), "{}", loser.stderr);
    assert!(loser.stderr.contains("started 20"), "{}", loser.stderr);
    assert!(loser.stderr.contains("--wait-lock"), "{}", loser.stderr);
    let ran = std::fs::read_to_string(w.join("ran")).unwrap();
    assert_eq!(ran.lines().count(), 1, "{ran}");

    // With --wait-lock the second run waits for the first instead.
    std::fs::remove_file(w.join("go")).unwrap();
    let first = Running::spawn(locked(w, &[]));
    wait_for(
        Duration::from_secs(20),
        "the first run to hold the lock",
        || first.stderr_now().contains("> hold"),
    );
    let second = Running::spawn(locked(w, &["--wait-lock", "30s"]));
    std::thread::sleep(Duration::from_millis(500));
    std::fs::write(w.join("go"), "").unwrap();
    let (r1, r2) = (
        first.wait(Duration::from_secs(30)),
        second.wait(Duration::from_secs(40)),
    );
    assert_eq!(r1.code, 0, "{}", r1.all());
    assert_eq!(r2.code, 0, "{}", r2.all());
    let ran = std::fs::read_to_string(w.join("ran")).unwrap();
    assert_eq!(ran.lines().count(), 3, "{ran}");
}

#[test]
fn stale_lock_after_sigkill_is_reported_and_broken_only_with_the_flag() {
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let a = Running::spawn(locked(w, &[]));
    wait_for(Duration::from_secs(20), "the run to hold the lock", || {
        a.stderr_now().contains("> hold")
    });
    let a_id = run_id_of(&a.stderr_now()).expect("run id");
    let a_pid = a.pid();
    kill(a_pid, Signal::SIGKILL).unwrap();
    let ra = a.wait(Duration::from_secs(10));
    assert_eq!(ra.signal, Some(9));
    kill_hold_shells(w);

    // Another run is refused: the lock is stale, and names the run that held it.
    let b = run(locked(w, &[]));
    assert_eq!(b.code, 4, "{}", b.all());
    assert!(b.stderr.contains("lock `db-main` is stale"), "{}", b.stderr);
    assert!(b.stderr.contains(&a_id), "{}", b.stderr);
    assert!(b.stderr.contains(&format!("pid {a_pid}")), "{}", b.stderr);
    assert!(
        b.stderr.contains(&format!("opsplan resume {a_id}")),
        "{}",
        b.stderr
    );
    assert!(b.stderr.contains("--break-lock"), "{}", b.stderr);
    // Waiting does not help a stale lock: refused at once, not after the wait.
    let started = Instant::now();
    let c = run(locked(w, &["--wait-lock", "20s"]));
    assert_eq!(c.code, 4, "{}", c.all());
    assert!(started.elapsed() < Duration::from_secs(10));
    // `opsplan runs` shows the killed run as interrupted.
    let list = run(opsplan(w, &["runs"]));
    let row = list
        .stdout
        .lines()
        .find(|l| l.starts_with(&a_id))
        .expect("listed");
    assert!(row.contains("interrupted"), "{row}");

    // --break-lock takes it over, says so, and the run goes through.
    std::fs::write(w.join("go"), "").unwrap();
    let d = run(locked(w, &["--break-lock"]));
    assert_eq!(d.code, 0, "{}", d.all());
    assert!(
        d.stderr.contains("broke the stale lock of run"),
        "{}",
        d.stderr
    );
    assert!(d.stderr.contains(&a_id), "{}", d.stderr);
    let lock = std::fs::read_to_string(w.join(".opsplan/locks/db-main.lock")).unwrap();
    assert!(lock.trim().is_empty(), "lock not released: {lock}");
}

#[test]
fn sigint_mid_step_runs_cleanup_journals_it_and_leaves_no_child() {
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let plan = fixture("interrupt.yaml").display().to_string();
    let dir = format!("dir={}", w.display());
    let running = Running::spawn(opsplan(w, &["run", &plan, "--set", &dir, "--grace", "2s"]));
    let pids = w.join("long.pids");
    wait_for(Duration::from_secs(20), "the long step", || {
        std::fs::read_to_string(&pids).is_ok_and(|s| s.ends_with('\n'))
    });
    assert!(w.join("held").exists());
    kill(running.pid(), Signal::SIGINT).unwrap();
    let r = running.wait(Duration::from_secs(20));
    assert_eq!(r.code, 130, "{}", r.all());
    assert!(
        !w.join("held").exists(),
        "the release did not run:\n{}",
        r.stderr
    );
    for pid in std::fs::read_to_string(&pids).unwrap().split_whitespace() {
        let pid: i32 = pid.parse().unwrap();
        let deadline = Instant::now() + Duration::from_secs(3);
        while !process_gone(pid) {
            if Instant::now() > deadline {
                let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
                panic!("child process {pid} still runs after the run ended");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    // The journal shows the signal, the cancelled step and the cleanup.
    let run_id = only_run(w);
    let s = show(w, &run_id);
    assert_eq!(s["status"], "cancelled", "{s:#}");
    assert_eq!(s["state"]["signals"][0]["signal"], "SIGINT", "{s:#}");
    assert_eq!(
        s["state"]["steps"]["long"]["forward"]["status"],
        "cancelled"
    );
    assert_eq!(
        s["state"]["steps"]["give-back"]["cleanup"]["status"],
        "succeeded"
    );
    assert_eq!(s["state"]["rollback"]["cleanup"][0], "give-back");
    let timeline = run(opsplan(w, &["runs", "show", &run_id]));
    assert!(
        timeline.stdout.contains("signal SIGINT"),
        "{}",
        timeline.stdout
    );
    assert!(
        timeline.stdout.contains("cleanup give-back  ok"),
        "{}",
        timeline.stdout
    );
}

#[test]
fn resume_refuses_a_changed_plan_and_asks_about_steps_in_doubt() {
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let plan = w.join("ask.yaml");
    std::fs::copy(fixture("ask.yaml"), &plan).unwrap();
    let plan_s = plan.display().to_string();
    let dir = format!("dir={}", w.display());
    // Record 3 is `send`'s finish: killed after its effect, before the record.
    let mut cmd = opsplan(w, &["run", &plan_s, "--set", &dir]);
    cmd.env("OPSPLAN_TEST_KILL_AT", "before:3");
    let first = run(cmd);
    assert_eq!(first.signal, Some(9), "{}", first.all());
    let run_id = only_run(w);
    assert_eq!(std::fs::read_to_string(w.join("sent")).unwrap(), "sent\n");

    let r = run(opsplan(w, &["resume", &run_id]));
    assert_eq!(r.code, 2, "{}", r.all());
    assert!(r.stderr.contains("`send` was running"), "{}", r.stderr);
    assert!(
        r.stderr
            .contains(&format!("opsplan resume {run_id} --rerun send")),
        "{}",
        r.stderr
    );
    assert!(!w.join("after").exists());

    std::fs::write(
        &plan,
        std::fs::read_to_string(&plan).unwrap() + "# edited\n",
    )
    .unwrap();
    let r = run(opsplan(w, &["resume", &run_id, "--rerun", "send"]));
    assert_eq!(r.code, 2, "{}", r.all());
    assert!(r.stderr.contains("changed since run"), "{}", r.stderr);
    assert!(r.stderr.contains("--allow-changed-plan"), "{}", r.stderr);

    let r = run(opsplan(
        w,
        &["resume", &run_id, "--rerun", "send", "--allow-changed-plan"],
    ));
    assert_eq!(r.code, 0, "{}", r.all());
    assert_eq!(
        std::fs::read_to_string(w.join("sent")).unwrap(),
        "sent\nsent\n"
    );
    assert!(w.join("after").exists());
    let s = show(w, &run_id);
    assert_eq!(s["status"], "succeeded");
    assert_eq!(s["state"]["sessions"], 2);
}

#[test]
fn no_journal_writes_nothing() {
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let plan = fixture("ask.yaml").display().to_string();
    let dir = format!("dir={}", w.display());
    let r = run(opsplan(w, &["run", &plan, "--set", &dir, "--no-journal"]));
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(!w.join(".opsplan/runs").exists());
}

#[test]
fn a_run_is_named_by_id_prefix_or_last_and_an_ambiguous_prefix_names_its_runs() {
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let plan = fixture("ask.yaml").display().to_string();
    let dir = format!("dir={}", w.display());
    for _ in 0..2 {
        let r = run(opsplan(w, &["run", &plan, "--set", &dir]));
        assert_eq!(r.code, 0, "{}", r.all());
        // Run ids start with their start second; the next run must start later.
        std::thread::sleep(Duration::from_millis(1100));
    }
    let mut ids: Vec<String> = std::fs::read_dir(w.join(".opsplan/runs"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    ids.sort();
    assert_eq!(ids.len(), 2, "{ids:?}");

    // `last` is the run that started last.
    assert_eq!(show(w, "last")["meta"]["run_id"], ids[1].as_str());
    // A unique prefix names its run.
    let unique = &ids[1][..ids[1].len() - 2];
    assert_eq!(show(w, unique)["meta"]["run_id"], ids[1].as_str());
    // A prefix of both is refused, naming both.
    let r = run(opsplan(w, &["runs", "show", "2"]));
    assert_eq!(r.code, 2, "{}", r.all());
    let runs = w.join(".opsplan/runs");
    assert_eq!(
        r.stderr.trim_end(),
        format!(
            "error: `2` matches 2 runs in {}: {}, {}; give more of the id",
            runs.display(),
            ids[0],
            ids[1]
        )
    );
}
