//! The default journal and lock folders do not depend on the current folder (cron and systemd
//! start opsplan wherever they like): `$STATE_DIRECTORY`, else `$XDG_STATE_HOME/opsplan`, else
//! `~/.local/state/opsplan`, else `/var/lib/opsplan` for root, with `runs/` and `locks/` in
//! it. A run started in one folder is listed from another, and two runs of one plan started
//! in different folders take the same lock.

use opsplan_testkit::bin::{self, wait_for, Running};
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_opsplan");

const PLAN: &str = "apiVersion: opsplan/v1
kind: Plan
metadata: {name: state-dir}
params:
  dir: {type: path, required: true}
  work: {type: string, default: 'true'}
locks: [state-dir-test]
steps:
  - id: work
    type: shell
    with:
      env: {DIR: '{{ params.dir }}', WORK: '{{ params.work }}'}
      script: 'touch \"$DIR/started\"; eval \"$WORK\"'
";

/// `opsplan ARGS` in `cwd` with only `env` deciding where state goes (no OPSPLAN_*_DIR).
fn opsplan(cwd: &Path, env: &[(&str, &Path)], args: &[&str]) -> Command {
    let mut c = Command::new(BIN);
    c.args(args)
        .current_dir(cwd)
        .env_remove("OPSPLAN_JOURNAL_DIR")
        .env_remove("OPSPLAN_LOCK_DIR")
        .env_remove("OPSPLAN_LOG")
        .env_remove("STATE_DIRECTORY")
        .env_remove("XDG_STATE_HOME")
        .env_remove("HOME")
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        c.env(k, v);
    }
    c
}

#[test]
fn runs_and_locks_go_to_the_state_folder_whatever_the_current_folder() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let t = tmp.path();
    for d in ["a", "b", "home", "xdg", "systemd", "other", "work"] {
        std::fs::create_dir(t.join(d)).expect("mkdir");
    }
    std::fs::write(t.join("plan.yaml"), PLAN).expect("write plan");
    let plan = t.join("plan.yaml");
    let plan = plan.to_str().expect("UTF-8");
    let dir = format!("dir={}", t.join("work").display());
    let systemd = format!(
        "{}:{}",
        t.join("systemd").display(),
        t.join("other").display()
    );
    for (env, state) in [
        (
            vec![("HOME", t.join("home"))],
            t.join("home/.local/state/opsplan"),
        ),
        (
            vec![("HOME", t.join("home")), ("XDG_STATE_HOME", t.join("xdg"))],
            t.join("xdg/opsplan"),
        ),
        (
            vec![
                ("HOME", t.join("home")),
                ("XDG_STATE_HOME", t.join("xdg")),
                ("STATE_DIRECTORY", systemd.clone().into()),
            ],
            t.join("systemd"),
        ),
    ] {
        let env: Vec<(&str, &Path)> = env.iter().map(|(k, v)| (*k, v.as_path())).collect();
        let ran = bin::run(opsplan(&t.join("a"), &env, &["run", plan, "--set", &dir]));
        ran.expect_code(0, &format!("run with {env:?}"));
        assert!(
            !t.join("a/.opsplan").exists(),
            "state left in the current folder"
        );
        let runs: Vec<String> = std::fs::read_dir(state.join("runs"))
            .unwrap_or_else(|e| panic!("{}: {e}\n{}", state.display(), ran.all()))
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(runs.len(), 1, "{env:?}: {runs:?}");
        assert!(
            state.join("locks").is_dir(),
            "{env:?}: no locks/ beside runs/"
        );
        // Listed, shown and found by `last` from another folder.
        let listed = bin::run(opsplan(&t.join("b"), &env, &["runs", "-o", "json"]));
        listed.expect_code(0, "runs");
        assert!(listed.stdout.contains(&runs[0]), "{}", listed.stdout);
        let shown = bin::run(opsplan(&t.join("b"), &env, &["runs", "show", "last"]));
        shown.expect_code(0, "runs show last");
        for d in ["runs", "locks"] {
            std::fs::remove_dir_all(state.join(d)).expect("clean");
        }
    }

    // Two runs of one plan from two folders take the same lock: the second is refused.
    let env = [("HOME", t.join("home"))];
    let env: Vec<(&str, &Path)> = env.iter().map(|(k, v)| (*k, v.as_path())).collect();
    // The runs above left `started`: wait for this run's own.
    let _ = std::fs::remove_file(t.join("work/started"));
    let first = Running::spawn(opsplan(
        &t.join("a"),
        &env,
        &["run", plan, "--set", &dir, "--set", "work=exec sleep 30"],
    ));
    wait_for(Duration::from_secs(20), "the first run's step", || {
        t.join("work/started").exists()
    });
    let second = bin::run(opsplan(&t.join("b"), &env, &["run", plan, "--set", &dir]));
    second.expect_code(4, "a second run from another folder");
    assert!(
        second.stderr.contains("state-dir-test"),
        "{}",
        second.stderr
    );
    drop(first);
}

#[test]
fn root_without_a_home_keeps_state_in_var_lib() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let ran = bin::run(opsplan(tmp.path(), &[], &["runs", "-v"]));
    ran.expect_code(0, "runs -v");
    let first = ran.stderr.lines().next().unwrap_or_default().to_string();
    // A folder this test made belongs to whoever runs it.
    let root = std::fs::metadata(tmp.path()).is_ok_and(|m| m.uid() == 0);
    let expected = if root {
        "journal folder: /var/lib/opsplan/runs".to_string()
    } else {
        format!("journal folder: {}/.opsplan/runs", tmp.path().display())
    };
    assert_eq!(first, expected, "{}", ran.stderr);
}
