//! Runs of the real `opsplan` binary on the plans in tests/fixtures/run/, each in its own
//! temporary folder (given as `--set dir=...`). Stdin is never a terminal here, which is
//! what the destructive and confirm gates are checked against.

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use opsplan_testkit::bin::{self, process_gone, wait_for, Ran, Running};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_opsplan");

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/run")
        .join(name)
}

fn command(plan: &str, dir: &Path, extra: &[&str]) -> Command {
    let mut cmd = in_dir(dir);
    cmd.arg("run")
        .arg(fixture(plan))
        .arg("--set")
        .arg(format!("dir={}", dir.display()))
        .args(extra);
    cmd
}

/// The binary with `dir`'s journal and locks, no colour, no terminal.
fn in_dir(dir: &Path) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.env_remove("OPSPLAN_LOG")
        .env("OPSPLAN_JOURNAL_DIR", dir.join(".opsplan/runs"))
        .env("OPSPLAN_LOCK_DIR", dir.join(".opsplan/locks"))
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

fn run_cmd(cmd: Command, limit: Duration) -> Ran {
    bin::run_within(cmd, limit)
}

fn run(plan: &str, dir: &Path, extra: &[&str]) -> Ran {
    run_cmd(command(plan, dir, extra), Duration::from_secs(60))
}

/// Fails unless `pid` is gone within 3 s.
fn assert_gone_soon(pid: i32, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(3);
    while !process_gone(pid) {
        if Instant::now() > deadline {
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
            panic!("{what} (pid {pid}) is still running after the run ended");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn read_pid(path: &Path) -> i32 {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .trim()
        .parse()
        .unwrap_or_else(|e| panic!("{}: not a pid: {e}", path.display()))
}

fn tempdir() -> tempfile::TempDir {
    tempfile::tempdir().expect("temp dir")
}

// a. Retries: the step fails twice and succeeds on its third attempt.
#[test]
fn quiet_prints_the_summary_without_progress_and_verbose_names_the_folders() {
    let dir = tempdir();
    let normal = run("outputs.yaml", dir.path(), &[]);
    normal.ok();
    assert!(
        normal.stderr.contains("> first-step: $ echo one\n"),
        "{}",
        normal.stderr
    );
    assert!(
        !normal.stderr.contains("journal folder:"),
        "{}",
        normal.stderr
    );

    let quiet = run("outputs.yaml", dir.path(), &["-q"]);
    quiet.ok();
    assert!(!quiet.stderr.contains("> first-step"), "{}", quiet.stderr);
    assert!(
        !quiet.stderr.contains("ok first-step ("),
        "{}",
        quiet.stderr
    );
    // The summary is the result, on stdout.
    assert!(
        quiet.stdout.contains("run succeeded in"),
        "{}",
        quiet.stdout
    );
    assert!(
        quiet.stdout.contains("first-step"),
        "the summary names every step"
    );

    let verbose = run("outputs.yaml", dir.path(), &["--verbose"]);
    verbose.ok();
    assert!(
        verbose.stderr.contains(&format!(
            "journal folder: {}\nlock folder: {}\n",
            dir.path().join(".opsplan/runs").display(),
            dir.path().join(".opsplan/locks").display()
        )),
        "{}",
        verbose.stderr
    );
    assert!(verbose.stderr.contains("> first-step: $ echo one\n"));
}

#[test]
fn the_run_summary_and_the_runs_list_are_tables_with_dates_for_people() {
    let dir = tempdir();
    let ran = run("outputs.yaml", dir.path(), &["-q"]);
    ran.ok();
    let summary: Vec<&str> = ran
        .stdout
        .lines()
        .skip_while(|l| !l.starts_with("step "))
        .collect();
    // Columns fitted to their cells (the longest id is `by-computed-name`), numbers and
    // durations right-aligned, no trailing blanks.
    assert_eq!(
        summary.first().copied(),
        Some("step              status  attempts  time  note"),
        "{}",
        ran.stdout
    );
    // Rows in the order the steps finished (parallel ones in either order).
    let mut ids = Vec::new();
    for line in &summary[1..7] {
        let cells: Vec<&str> = line.split_whitespace().collect();
        ids.push(cells[0]);
        assert_eq!(&cells[1..3], ["ok", "1"], "{line}");
        let time = cells[3];
        assert!(
            time.ends_with('s') && time.trim_end_matches('s').parse::<f64>().is_ok(),
            "{line}"
        );
        assert_eq!(line.len(), line.trim_end().len());
    }
    ids.sort_unstable();
    assert_eq!(
        ids,
        [
            "by-computed-name",
            "by-id",
            "by-underscores",
            "first-step",
            "other",
            "report"
        ]
    );
    assert!(
        summary[8].starts_with("run succeeded in "),
        "{}",
        ran.stdout
    );

    let runs = |args: &[&str]| {
        let mut c = Command::new(BIN);
        c.arg("runs")
            .args(args)
            .env("OPSPLAN_JOURNAL_DIR", dir.path().join(".opsplan/runs"))
            .env("TZ", "UTC");
        bin::run(c)
    };
    let json: serde_json::Value =
        serde_json::from_str(&runs(&["-o", "json"]).stdout).expect("runs JSON");
    // JSON keeps the journal's RFC 3339 time; the table shows it for people.
    let started = json[0]["started"].as_str().expect("started");
    assert!(started.ends_with('Z') && started.contains('T'), "{started}");
    // `2026-12-07T13:20:38.397Z` is shown as `2026-12-07 13:20:38 UTC` (TZ=UTC here).
    let people = format!("{} {} UTC", &started[..10], &started[11..19]);
    let list = runs(&[]);
    let lines: Vec<&str> = list.stdout.lines().collect();
    assert_eq!(
        lines[0].split_whitespace().collect::<Vec<_>>(),
        ["run", "status", "plan", "started", "duration"]
    );
    let row = lines[1];
    assert!(
        row.starts_with(json[0]["run_id"].as_str().expect("id")),
        "{row}"
    );
    assert!(
        row.contains(&format!("  succeeded  run-outputs  {people}  ")),
        "{row}"
    );
}

#[test]
fn retry_succeeds_on_third_attempt() {
    let dir = tempdir();
    let r = run("retry.yaml", dir.path(), &[]);
    assert_eq!(r.code, 0, "{}", r.all());
    let count = std::fs::read_to_string(dir.path().join("count")).unwrap();
    assert_eq!(count.trim(), "3");
    let out = r.all();
    assert!(out.contains("attempt 1 failed"), "{out}");
    assert!(out.contains("attempt 2 failed"), "{out}");
    assert!(out.contains("flaky (attempt 3)"), "{out}");
    assert!(out.contains("ready after 3 attempts"), "{out}");
    assert!(!out.contains("attempt 3 failed"), "{out}");
    // The summary table: `flaky  ok  3  ...`.
    let row = out
        .lines()
        .find(|l| l.starts_with("flaky ") && l.contains(" ok "))
        .unwrap_or_else(|| panic!("{out}"));
    assert_eq!(row.split_whitespace().nth(2), Some("3"), "{row}");
}

// b. A timeout kills the step's whole process group: the shell and its background child.
#[test]
fn timeout_kills_the_shell_and_its_child() {
    let dir = tempdir();
    let r = run("timeout.yaml", dir.path(), &["--grace", "1s"]);
    assert_eq!(r.code, 1, "{}", r.all());
    assert!(r.elapsed < Duration::from_secs(6), "took {:?}", r.elapsed);
    assert!(r.stderr.contains("timed out after 1s"), "{}", r.stderr);
    let shell = read_pid(&dir.path().join("shell.pid"));
    let child = read_pid(&dir.path().join("child.pid"));
    assert_gone_soon(shell, "the step's shell");
    assert_gone_soon(child, "the shell's background child");
}

// c. After a failure: undo of the completed steps in reverse completion order, then the
// cleanup that releases the held resource; exit 1.
#[test]
fn failure_runs_undo_in_reverse_then_cleanup() {
    let dir = tempdir();
    let r = run("rollback.yaml", dir.path(), &[]);
    assert_eq!(r.code, 1, "{}", r.all());
    let log = std::fs::read_to_string(dir.path().join("log")).unwrap();
    assert_eq!(log, "undo-three\nundo-two\nundo-one\ncleanup-give-back\n");
    assert!(
        r.stderr
            .contains("undo [three, two, one], cleanup [give-back]"),
        "{}",
        r.stderr
    );
    assert!(r.stdout.contains("FAILED; rolled back"), "{}", r.stdout);
}

// c2. A rollback that fails only in an `always` step released everything, and the
// summary says so; a release that fails names what is still held. A failure whose error
// ends in several stderr lines shows its last one in the summary, not a bare "stderr:".
// The lock the exit-3 run kept is refused later as kept by a finished run.
#[test]
fn failed_rollback_names_what_is_still_held_and_its_lock_says_the_run_finished() {
    let dir = tempdir();
    let r = run("rollback-failed.yaml", dir.path(), &[]);
    assert_eq!(r.code, 3, "{}", r.all());
    assert!(!dir.path().join("held").exists(), "{}", r.all());
    // The summary is the run's result, on stdout.
    assert!(
        r.stdout.contains(
            "run FAILED and the ROLLBACK FAILED: check the steps marked FAILED above; \
             every resource was released"
        ),
        "{}",
        r.stdout
    );
    assert!(!r.all().contains("may still be held"), "{}", r.all());
    let note = r
        .stdout
        .lines()
        .find(|l| l.starts_with("boom "))
        .unwrap_or_else(|| panic!("no summary row of boom:\n{}", r.stdout));
    assert!(
        note.ends_with("stderr: … cp: /backup: No space left on device"),
        "{note}"
    );
    assert!(
        r.stderr.contains(
            "rolling back (step `boom` failed: `/bin/sh` exited with code 7 (expected 0); \
             stderr: … cp: /backup: No space left on device): undo [], cleanup [give-back, notify]"
        ),
        "{}",
        r.stderr
    );

    // Its timeline (`runs show`) quotes the same note, not a bare "stderr:".
    let mut show = Command::new(BIN);
    show.args(["runs", "show", "last"])
        .env("OPSPLAN_JOURNAL_DIR", dir.path().join(".opsplan/runs"))
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let timeline = run_cmd(show, Duration::from_secs(30));
    assert_eq!(timeline.code, 0, "{}", timeline.all());
    assert!(
        timeline.stdout.contains(
            "error: `/bin/sh` exited with code 7 (expected 0); stderr: … cp: /backup: No space left on device"
        ),
        "{}",
        timeline.stdout
    );

    // The lock it kept: the next run is refused, naming how that run ended.
    let again = run("rollback-failed.yaml", dir.path(), &[]);
    assert_eq!(again.code, 4, "{}", again.all());
    assert!(
        again
            .stderr
            .contains("finished with a failed rollback (exit 3) and kept it"),
        "{}",
        again.stderr
    );
    assert!(
        !again.stderr.contains("without finishing the run"),
        "{}",
        again.stderr
    );

    // A release that fails leaves its resource held, and the summary names it.
    let other = tempdir();
    let r = run(
        "rollback-failed.yaml",
        other.path(),
        &["--set", "release_fails=true", "--break-lock"],
    );
    assert_eq!(r.code, 3, "{}", r.all());
    assert!(
        r.stdout
            .contains("check the steps marked FAILED above; still held: `held`"),
        "{}",
        r.stdout
    );
}

fn spawn_run(plan: &str, dir: &Path, extra: &[&str]) -> Running {
    Running::spawn(command(plan, dir, extra))
}

// c4. A step skipped by its `when` sets no outputs: a guarded read gets its default or a
// false `is defined`; a bare read fails the step naming the step, field and template.
#[test]
fn skipped_step_outputs_are_undefined_and_a_bare_read_names_its_template() {
    let skipped = tempdir();
    let r = run("skipped-outputs.yaml", skipped.path(), &[]);
    assert_eq!(r.code, 0, "{}", r.all());
    let report = std::fs::read_to_string(skipped.path().join("report")).unwrap();
    assert_eq!(report, "skipped not-run\n");

    let ran = tempdir();
    let r = run("skipped-outputs.yaml", ran.path(), &["--set", "full=true"]);
    assert_eq!(r.code, 0, "{}", r.all());
    let report = std::fs::read_to_string(ran.path().join("report")).unwrap();
    assert_eq!(report, "hello ran\n");

    let bare = tempdir();
    let r = run(
        "skipped-outputs.yaml",
        bare.path(),
        &["--set", "read_bare=true"],
    );
    assert_eq!(r.code, 1, "{}", r.all());
    assert!(
        r.stderr.contains(
            "FAILED bare (0.0s): `with.argv[1]` of step `bare`, template \
             `{{ steps.maybe.outputs.stdout }}`: template error: undefined value \
             (`steps.maybe.outputs.stdout` is undefined); a step that was skipped, failed or \
             did not run sets no outputs: guard the read with `is defined` or `| default(…)`"
        ),
        "{}",
        r.stderr
    );
}

// c3. An exit handler (`always`) reads how the run went: `run.status`, `run.failed_step`
// and `run.error`, on success (in its place in the DAG), after a failure and after SIGTERM
// (in the cleanup phase).
#[test]
fn exit_handler_reads_run_status_on_success_failure_and_cancel() {
    let said = |dir: &Path| {
        std::fs::read_to_string(dir.join("notified"))
            .unwrap_or_else(|e| panic!("the exit handler did not run: {e}"))
    };
    let ok = tempdir();
    let r = run("exit-handler.yaml", ok.path(), &[]);
    assert_eq!(r.code, 0, "{}", r.all());
    assert_eq!(said(ok.path()), "succeeded||\n");
    // `page` (`when: run.status != 'succeeded'`) is skipped on success, runs otherwise.
    assert!(!ok.path().join("paged").exists(), "{}", r.all());

    let failed = tempdir();
    let r = run("exit-handler.yaml", failed.path(), &["--set", "mode=fail"]);
    assert_eq!(r.code, 1, "{}", r.all());
    assert_eq!(
        said(failed.path()),
        "failed|work|`/bin/sh` exited with code 4 (expected 0): disk full\n"
    );
    assert_eq!(
        std::fs::read_to_string(failed.path().join("paged")).unwrap(),
        "failed\n"
    );

    let cancelled = tempdir();
    let running = spawn_run(
        "exit-handler.yaml",
        cancelled.path(),
        &["--set", "mode=hang"],
    );
    let pid_file = cancelled.path().join("work.pid");
    wait_for(Duration::from_secs(20), "the work step to start", || {
        pid_file.exists()
    });
    running.signal(Signal::SIGTERM);
    let r = running.wait(Duration::from_secs(30));
    assert_eq!(r.code, 130, "{}", r.all());
    let line = said(cancelled.path());
    assert!(line.starts_with("cancelled||"), "{line}");
    assert!(line.contains("SIGTERM"), "{line}");
    assert_eq!(
        std::fs::read_to_string(cancelled.path().join("paged")).unwrap(),
        "cancelled\n"
    );
}

// d. SIGINT during a long step: the step's processes are stopped, cleanup runs, exit 130.
#[test]
fn sigint_runs_cleanup_and_exits_130() {
    let dir = tempdir();
    let pid_file = dir.path().join("long.pid");
    let running = spawn_run("interrupt.yaml", dir.path(), &["--grace", "1s"]);
    wait_for(Duration::from_secs(20), "the long step to start", || {
        std::fs::read_to_string(&pid_file).is_ok_and(|s| s.ends_with('\n'))
    });
    let started = Instant::now();
    kill(running.pid(), Signal::SIGINT).unwrap();
    let ran = running.wait(Duration::from_secs(20));
    let stopped_in = started.elapsed();
    let stderr = ran.stderr;
    assert_eq!(ran.code, 130, "{stderr}");
    assert!(stopped_in < Duration::from_secs(5), "took {stopped_in:?}");
    assert!(stderr.contains("SIGINT: stopping"), "{stderr}");
    assert!(stderr.contains("cancelled long"), "{stderr}");
    assert!(dir.path().join("cleanup.marker").exists(), "{stderr}");
    assert_gone_soon(read_pid(&pid_file), "the long step's shell");
}

// d'. A second SIGINT skips the grace period of a step that ignores SIGTERM.
#[test]
fn second_sigint_skips_the_grace_period() {
    let dir = tempdir();
    let pid_file = dir.path().join("stubborn.pid");
    let mut running = spawn_run("hurry.yaml", dir.path(), &["--grace", "60s"]);
    wait_for(
        Duration::from_secs(20),
        "the stubborn step to start",
        || std::fs::read_to_string(&pid_file).is_ok_and(|s| s.ends_with('\n')),
    );
    let started = Instant::now();
    kill(running.pid(), Signal::SIGINT).unwrap();
    // The second signal must reach the handler after the first was handled.
    wait_for(
        Duration::from_secs(10),
        "the first SIGINT to be handled",
        || running.stderr_now().contains("SIGINT: stopping"),
    );
    std::thread::sleep(Duration::from_millis(200));
    assert!(
        !running.finished(),
        "the stubborn step should still be in its grace period"
    );
    kill(running.pid(), Signal::SIGINT).unwrap();
    let ran = running.wait(Duration::from_secs(20));
    let stopped_in = started.elapsed();
    let stderr = ran.stderr;
    assert_eq!(ran.code, 130, "{stderr}");
    assert!(
        stopped_in < Duration::from_secs(10),
        "the 60s grace period was not skipped: {stopped_in:?}"
    );
    assert!(stderr.contains("killing running steps now"), "{stderr}");
    assert!(dir.path().join("cleanup.marker").exists(), "{stderr}");
    assert_gone_soon(read_pid(&pid_file), "the stubborn step's shell");
}

/// Nanosecond timestamp written by `date +%s%N` in a marker file.
fn stamp(path: &Path) -> u128 {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    text.split_whitespace()
        .nth(1)
        .and_then(|t| t.parse().ok())
        .unwrap_or_else(|| panic!("{}: {text}", path.display()))
}

// e. --max-parallel 2: independent steps run two at a time, never three.
#[test]
fn max_parallel_two_never_runs_three() {
    let dir = tempdir();
    let r = run("parallel.yaml", dir.path(), &["--max-parallel", "2"]);
    assert_eq!(r.code, 0, "{}", r.all());
    let spans: Vec<(u128, u128)> = (1..=8)
        .map(|i| {
            (
                stamp(&dir.path().join(format!("w{i}.start"))),
                stamp(&dir.path().join(format!("w{i}.end"))),
            )
        })
        .collect();
    let max = spans
        .iter()
        .map(|&(t, _)| spans.iter().filter(|&&(s, e)| s <= t && t < e).count())
        .max()
        .unwrap();
    assert_eq!(max, 2, "steps overlapped {max} at a time: {spans:?}");
}

// Every way a template names another step reaches its outputs (the context of a step holds
// only the steps its templates name, or all of them for `steps[...]`).
#[test]
fn templates_reach_outputs_by_every_name() {
    let dir = tempdir();
    let r = run("outputs.yaml", dir.path(), &[]);
    assert_eq!(r.code, 0, "{}", r.all());
    let report = std::fs::read_to_string(dir.path().join("report")).expect("report written");
    assert_eq!(report, "one-two one one\n");
}

// f. A plan with a destructive step and no terminal: refused before anything runs (exit 2,
// the step named); with --force it runs.
#[test]
fn destructive_needs_force_without_a_terminal() {
    let dir = tempdir();
    let r = run("destructive.yaml", dir.path(), &[]);
    assert_eq!(r.code, 2, "{}", r.all());
    assert!(r.stderr.contains("wipe-data"), "{}", r.stderr);
    assert!(r.stderr.contains("--force"), "{}", r.stderr);
    assert!(
        !dir.path().join("before-ran").exists(),
        "a step ran before the refusal"
    );
    assert!(!dir.path().join("wiped").exists());

    // --yes answers confirm steps, not destructive ones.
    let r = run("destructive.yaml", dir.path(), &["--yes"]);
    assert_eq!(r.code, 2, "{}", r.all());
    assert!(!dir.path().join("before-ran").exists());

    let r = run("destructive.yaml", dir.path(), &["--force"]);
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(dir.path().join("before-ran").exists());
    assert!(dir.path().join("wiped").exists());
}

// g. A confirm step with no terminal and no --yes: refused before the first step runs
// (exit 2, the step named, --yes suggested); with --yes it runs.
#[test]
fn confirm_needs_yes_without_a_terminal() {
    let dir = tempdir();
    let r = run("confirm.yaml", dir.path(), &[]);
    assert_eq!(r.code, 2, "{}", r.all());
    assert_eq!(
        r.stderr.trim_end(),
        "error: this plan has confirm steps (ask) and there is no terminal to answer them on; \
         nothing was run. Check `opsplan preview` and pass --yes to answer them.",
        "{}",
        r.all()
    );
    assert!(
        !dir.path().join("before-ran").exists(),
        "a step ran before the refusal"
    );
    assert!(!dir.path().join("after-ran").exists());

    let r = run("confirm.yaml", dir.path(), &["--yes"]);
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(dir.path().join("before-ran").exists());
    assert!(dir.path().join("after-ran").exists());
}

// g2. A confirm before a destructive step, no terminal: one refusal names both and what
// answers each (--yes, --force); --yes alone is still refused before anything runs.
#[test]
fn confirm_and_destructive_are_refused_together_without_a_terminal() {
    let dir = tempdir();
    let r = run("confirm-destructive.yaml", dir.path(), &[]);
    assert_eq!(r.code, 2, "{}", r.all());
    assert_eq!(
        r.stderr.trim_end(),
        "error: this plan has confirm steps (ask) and there is no terminal to answer them on, \
         and destructive steps (wipe-data) that need --force; nothing was run. Check \
         `opsplan preview` and pass --yes and --force to answer them.",
        "{}",
        r.all()
    );
    assert!(!dir.path().join("before-ran").exists());

    let r = run("confirm-destructive.yaml", dir.path(), &["--yes"]);
    assert_eq!(r.code, 2, "{}", r.all());
    assert!(r.stderr.contains("wipe-data"), "{}", r.stderr);
    assert!(!dir.path().join("before-ran").exists());

    let r = run(
        "confirm-destructive.yaml",
        dir.path(),
        &["--yes", "--force"],
    );
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(dir.path().join("wiped").exists());
}

// h. A secret from the environment reaches the child, but never the binary's output, even
// when the child prints it and fails with it in its stderr.
#[test]
fn secret_is_masked_in_all_output() {
    const SECRET: &str = "hunter2-XyZzY-9f3e1c";
    for format in ["text", "json"] {
        let dir = tempdir();
        let mut cmd = command("secret.yaml", dir.path(), &["--log-format", format]);
        cmd.env("OPSPLAN_TEST_TOKEN", SECRET);
        let r = run_cmd(cmd, Duration::from_secs(60));
        assert_eq!(r.code, 1, "{}", r.all());
        let seen = std::fs::read_to_string(dir.path().join("seen")).unwrap();
        assert_eq!(seen, SECRET, "the child did not get the secret");
        assert!(
            !r.stdout.contains(SECRET),
            "secret in stdout ({format}):\n{}",
            r.stdout
        );
        assert!(
            !r.stderr.contains(SECRET),
            "secret in stderr ({format}):\n{}",
            r.stderr
        );
        assert!(r.stderr.contains("token is ********"), "{}", r.stderr);
    }
}

// b'. The grace period is for the whole group: the shell dies at once on SIGTERM, but the
// child it started still gets its time to shut down cleanly before any SIGKILL.
#[test]
fn grace_period_covers_the_whole_process_group() {
    let dir = tempdir();
    let r = run("grace.yaml", dir.path(), &["--grace", "5s"]);
    assert_eq!(r.code, 1, "{}", r.all());
    assert!(r.stderr.contains("timed out after 1s"), "{}", r.stderr);
    let graceful = std::fs::read_to_string(dir.path().join("graceful"));
    assert_eq!(
        graceful.ok().as_deref(),
        Some("graceful\n"),
        "the child was killed before its grace period ended"
    );
    // It did not wait the whole grace period either.
    assert!(r.elapsed < Duration::from_secs(5), "took {:?}", r.elapsed);
    assert_gone_soon(read_pid(&dir.path().join("child.pid")), "the child");
}

// A step whose script exits but leaves a background process holding its output open
// finishes (its output kept) instead of hanging until its timeout.
#[test]
fn background_process_holding_the_pipes_does_not_hang_the_step() {
    let dir = tempdir();
    let r = run("background.yaml", dir.path(), &[]);
    let daemon = read_pid(&dir.path().join("daemon.pid"));
    let _ = kill(Pid::from_raw(daemon), Signal::SIGKILL);
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(r.elapsed < Duration::from_secs(10), "took {:?}", r.elapsed);
    assert!(r.stderr.contains("after | saw started"), "{}", r.stderr);
}

// i. An HTTP step against a server that accepts the connection and never answers fails on
// its request timeout (per step here; 5m by default), naming it, instead of hanging.
#[test]
fn http_step_times_out_on_a_server_that_never_answers() {
    let dir = tempdir();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}/exec", listener.local_addr().expect("addr"));
    // Accepts and holds every connection, reading nothing and answering nothing.
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming().flatten() {
            held.push(stream);
        }
    });
    let started = Instant::now();
    let r = run(
        "http-silent.yaml",
        dir.path(),
        &["--set", &format!("url={url}")],
    );
    assert_eq!(r.code, 1, "{}", r.all());
    assert!(
        r.stderr.contains(&format!(
            "no complete answer from {url} within 1s (request_timeout)"
        )),
        "{}",
        r.all()
    );
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "the step hung: {:?}",
        started.elapsed()
    );
    assert!(!dir.path().join("after-ran").exists());
}

#[test]
fn the_example_plan_runs_from_any_folder() {
    let dir = tempdir();
    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).expect("mkdir");
    let dest = dir.path().join("out");
    let ran = bin::run({
        let mut c = bin::command(&dir.path().join("state"));
        c.args(["run", "examples/archive-folder", "--set"])
            .arg(format!("dest={}", dest.display()))
            .current_dir(&empty)
            .stdin(Stdio::null());
        c
    });
    ran.expect_code(0, "the example from an empty folder");
    // With no `source`, the sample folder written into dest is what is archived.
    let listed = Command::new("tar")
        .arg("-tzf")
        .arg(dest.join("archive.tar.gz"))
        .output()
        .expect("tar");
    assert_eq!(String::from_utf8_lossy(&listed.stdout), "./\n./README\n");
    assert_eq!(
        std::fs::read_dir(&empty).expect("read").count(),
        0,
        "the run wrote into the folder it was started in"
    );
}

// c5. Run-time fan-out (issue 16 point 1): `for_each` over a list a step before produced is
// expanded when the step becomes ready; each item is its own step (`backup[NAME]`) with its
// own records and undo; what needs the step waits for every item.
fn fan_out_dir(dbs: &str) -> tempfile::TempDir {
    let dir = tempdir();
    std::fs::write(dir.path().join("dbs.json"), dbs).expect("write dbs.json");
    dir
}

fn lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn fan_out_runs_one_step_per_listed_item_and_what_needs_it_waits_for_all() {
    let dir = fan_out_dir(r#"{"databases": ["app", "auth", "billing"]}"#);
    let r = run("fan-out.yaml", dir.path(), &[]);
    assert_eq!(r.code, 0, "{}", r.all());
    let mut done = lines(&dir.path().join("backed-up"));
    done.sort();
    assert_eq!(done, ["app", "auth", "billing"]);
    // `report` ran after every item.
    assert_eq!(lines(&dir.path().join("report")), ["3"]);
    for id in ["backup[app]", "backup[auth]", "backup[billing]"] {
        assert!(r.stdout.contains(id), "{id} missing:\n{}", r.all());
    }
    assert!(
        r.stderr.contains(
            "backup: one step per item of {{ steps.list_dbs.outputs.json.databases }}: 3 item(s)"
        ),
        "{}",
        r.stderr
    );
    assert!(r.stdout.contains("3 item(s)"), "{}", r.stdout);
}

#[test]
fn fan_out_item_failing_undoes_the_items_that_succeeded_in_reverse() {
    let dir = fan_out_dir(r#"{"databases": ["app", "auth", "billing"]}"#);
    let r = run(
        "fan-out.yaml",
        dir.path(),
        &["--set", "fail_item=billing", "-j", "1"],
    );
    assert_eq!(r.code, 1, "{}", r.all());
    assert_eq!(lines(&dir.path().join("backed-up")), ["app", "auth"]);
    assert_eq!(lines(&dir.path().join("undone")), ["auth", "app"]);
    assert!(!dir.path().join("dump-app").exists());
    assert!(!dir.path().join("report").exists(), "{}", r.all());
    assert!(r.stderr.contains("cannot dump billing"), "{}", r.stderr);
}

#[test]
fn fan_out_over_an_empty_list_runs_nothing_and_says_so() {
    let dir = fan_out_dir(r#"{"databases": []}"#);
    let r = run("fan-out.yaml", dir.path(), &[]);
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(!dir.path().join("backed-up").exists());
    assert_eq!(lines(&dir.path().join("report")), ["0"]);
    assert!(
        r.stdout
            .contains("no items: its `for_each` gave an empty list, nothing ran"),
        "{}",
        r.stdout
    );
}

/// A `when` that does not read `item` is decided before the list is read: false skips the
/// whole step, even when the list's producer was skipped too (so there is no list).
#[test]
fn fan_out_skipped_by_its_when_reads_no_list() {
    let dir = fan_out_dir(r#"{"databases": ["app"]}"#);
    let r = run("fan-out.yaml", dir.path(), &["--set", "skip_items=true"]);
    assert_eq!(r.code, 0, "{}", r.all());
    assert!(!dir.path().join("backed-up").exists());
    assert_eq!(lines(&dir.path().join("report")), ["0"]);
    assert!(r.stdout.contains("skipped"), "{}", r.stdout);
}

#[test]
fn fan_out_over_a_value_that_is_not_a_list_fails_naming_the_step_and_template() {
    let dir = fan_out_dir(r#"{"databases": "app"}"#);
    let r = run("fan-out.yaml", dir.path(), &[]);
    assert_eq!(r.code, 1, "{}", r.all());
    assert!(
        r.stderr.contains(
            "`for_each` of step `backup`, template `{{ steps.list_dbs.outputs.json.databases }}`, gave a string, not a list"
        ),
        "{}",
        r.stderr
    );
    assert!(!dir.path().join("report").exists());
}

/// A listing that leaks a secret: the fan-out fails before any item runs, naming the step
/// and saying why, and the secret is in no output.
#[test]
fn fan_out_over_a_list_holding_a_secret_fails_before_any_item() {
    let dir = tempdir();
    let token = "tok-9f8e7d6c5b4a";
    let r = run(
        "fan-out-secret.yaml",
        dir.path(),
        &["--set", &format!("token={token}")],
    );
    assert_eq!(r.code, 1, "{}", r.all());
    assert!(
        r.stderr.contains(
            "`for_each` of step `each`, template `{{ steps.list.outputs.json.names }}`, gave a list that holds a secret value"
        ),
        "{}",
        r.stderr
    );
    assert!(!dir.path().join("ran").exists(), "an item ran");
    assert!(!r.all().contains(token), "{}", r.all());
}

/// A fan-out run killed (SIGKILL) while its second item runs; the list then changes, as
/// the server's answer could. Returns the run id.
fn fan_out_killed_mid_way(dir: &Path) -> String {
    std::fs::write(dir.join("hang-auth"), "").expect("write hang-auth");
    let running = spawn_run("fan-out.yaml", dir, &["-j", "1"]);
    let pid_file = dir.join("hang.pid");
    wait_for(Duration::from_secs(30), "backup[auth] to start", || {
        pid_file.exists()
    });
    running.signal(Signal::SIGKILL);
    let _ = running.wait(Duration::from_secs(10));
    std::fs::remove_file(dir.join("hang-auth")).expect("remove hang-auth");
    std::fs::write(dir.join("dbs.json"), r#"{"databases": ["other"]}"#).expect("write dbs.json");
    let runs: Vec<String> = std::fs::read_dir(dir.join(".opsplan/runs"))
        .expect("the journal folder")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(runs.len(), 1, "{runs:?}");
    runs[0].clone()
}

fn resume(dir: &Path, args: &[&str]) -> Ran {
    let mut cmd = in_dir(dir);
    cmd.arg("resume").args(args);
    run_cmd(cmd, Duration::from_secs(60))
}

#[test]
fn fan_out_resumed_after_a_kill_uses_the_journaled_items_and_their_own_records() {
    let dir = fan_out_dir(r#"{"databases": ["app", "auth", "billing"]}"#);
    let d = dir.path();
    let run_id = fan_out_killed_mid_way(d);
    // backup[auth] was in doubt (a shell step asks): the operator says to run it again.
    let r = resume(d, &[&run_id, "--rerun", "backup[auth]"]);
    assert_eq!(r.code, 0, "{}", r.all());
    // The journaled list, not the producer's new answer; app finished before: not redone.
    let mut done = lines(&d.join("backed-up"));
    done.sort();
    assert_eq!(done, ["app", "auth", "billing"]);
    assert!(!d.join("dump-other").exists());
    assert_eq!(lines(&d.join("report")), ["3"]);
}

#[test]
fn fan_out_rolled_back_on_resume_undoes_the_items_that_had_succeeded() {
    let dir = fan_out_dir(r#"{"databases": ["app", "auth", "billing"]}"#);
    let d = dir.path();
    let run_id = fan_out_killed_mid_way(d);
    let r = resume(d, &[&run_id, "--rollback"]);
    assert_eq!(r.code, 1, "{}", r.all());
    assert_eq!(lines(&d.join("undone")), ["app"]);
    assert!(!d.join("dump-app").exists());
    assert!(!d.join("report").exists());
}
