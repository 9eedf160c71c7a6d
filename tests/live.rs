//! What an operator sees of a run: the live view and the question on a terminal (through a
//! pseudo-terminal), colour as `--color` and NO_COLOR say, the result on stdout and the
//! progress on stderr, and `--log-format json` as JSON Lines.

use opsplan_testkit::bin::{self, Ran};
use opsplan_testkit::pty::{strip, Pty};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

/// Two steps at once (one retried), then a `confirm`, then a step that prints JSON.
fn live_plan() -> PathBuf {
    opsplan_testkit::repo_root().join("tests/fixtures/run/live.yaml")
}

fn run_command(dir: &Path, extra: &[&str]) -> Command {
    let mut cmd = bin::command(dir);
    cmd.arg("run")
        .arg(live_plan())
        .arg("--set")
        .arg(format!("dir={}", dir.display()))
        .args(extra);
    cmd
}

/// The plan's question as dialoguer draws it (with colour, as on an operator's terminal),
/// before an answer.
const QUESTION: &str = "Load the dump into the scratch database?";
const ASKED: &str = "Load the dump into the scratch database? (y/n) › no";

/// `opsplan run` of the live plan on a terminal of `cols` columns, coloured as on an
/// operator's terminal (the codes are stripped to read the text).
fn on_a_terminal(dir: &Path, cols: u16) -> Pty {
    let mut cmd = run_command(dir, &[]);
    cmd.env_remove("NO_COLOR").env_remove("COLUMNS");
    Pty::spawn(cmd, cols, 30)
}

/// The duration in `(1.2s…` after `prefix` on the line that starts with it.
fn seconds_after(text: &str, prefix: &str) -> f64 {
    let line = text
        .lines()
        .flat_map(|l| l.split('\r'))
        .find(|l| l.starts_with(prefix))
        .unwrap_or_else(|| panic!("no line starts with `{prefix}`:\n{text}"));
    let rest = &line[prefix.len()..];
    let number: String = rest
        .trim_start_matches('(')
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '.')
        .collect();
    number
        .parse()
        .unwrap_or_else(|_| panic!("no duration in `{line}`"))
}

/// On a terminal: a spinner line per running step with its time, the retry on the retried
/// step's line, a count of the run's steps with its total time; the question drawn alone
/// (the view is paused and not redrawn over it while it waits); and the confirm step's time
/// without the operator's thinking time. The view fits the terminal's width.
#[test]
fn the_live_view_shows_running_steps_and_stands_still_while_a_question_waits() {
    let dir = tempfile::tempdir().unwrap();
    let mut pty = on_a_terminal(dir.path(), 56);
    pty.wait_for(ASKED, Duration::from_secs(30));
    let before = pty.text();
    // Spinners for both steps that ran at once, the retry, the step count and the total.
    for seen in [
        " warm-up ",
        " flaky ",
        "flaky (attempt 2)",
        "[0/4]",
        " total",
        "ok flaky (",
        ", 2 attempts)",
        "ok warm-up (",
    ] {
        assert!(before.contains(seen), "`{seen}` not shown:\n{before}");
    }
    // A spinner (a braille frame) before the running step's name.
    assert!(
        before.match_indices(" warm-up ").any(|(at, _)| before[..at]
            .chars()
            .next_back()
            .is_some_and(|c| ('\u{2800}'..='\u{28ff}').contains(&c))),
        "no spinner on the running step:\n{before}"
    );
    assert!(
        before.contains("[1/4]") || before.contains("[2/4]"),
        "the count of finished steps did not move:\n{before}"
    );
    // The terminal's real width: the run's line is cut to 56 columns, so the whole run id
    // after the plan's name never fits on it.
    let run_id = before
        .split(": plan run-live, 4 steps")
        .next()
        .and_then(|head| head.rsplit("run ").next())
        .unwrap_or_default()
        .to_string();
    assert!(run_id.len() > 10, "no run id shown:\n{before}");
    assert!(
        before.contains("total  plan run-live, run ")
            && !before.contains(&format!("total  plan run-live, run {run_id}")),
        "the run's line is not cut to the terminal's width:\n{before}"
    );

    // While the question waits, nothing is drawn over it: no spinner, no count, no lines.
    let thinking = Duration::from_millis(2500);
    let meanwhile = pty.read_for(thinking);
    assert!(
        meanwhile.trim().is_empty(),
        "the terminal changed while the question waited:\n{meanwhile:?}"
    );
    // On the screen, the question is the last line, and no bar is left above it.
    let screen = pty.screen();
    let lines: Vec<&str> = screen
        .lines()
        .map(str::trim_end)
        .filter(|l| !l.is_empty())
        .collect();
    assert!(
        lines.last().is_some_and(|l| l.ends_with(ASKED)),
        "the question is not the last line on the screen:\n{screen}"
    );
    assert!(
        !screen.contains(" total") && !screen.contains("   0s  "),
        "a bar is left on the screen above the question:\n{screen}"
    );

    pty.send("y");
    pty.send("\r");
    let code = pty.finish(Duration::from_secs(30));
    let after = pty.text();
    assert_eq!(code, 0, "{after}");
    assert!(after.contains(&format!("{QUESTION} · yes")), "{after}");
    assert!(after.contains("ok load ("), "{after}");
    // The confirm step's time leaves out the 2.5 s the operator took to answer.
    let asked = seconds_after(&after, "ok ask ");
    assert!(asked < 1.0, "the confirm step took {asked}s:\n{after}");
    assert!(after.contains("run succeeded in"), "{after}");
}

/// Ctrl-C at the question stops the run (exit 130, the confirm step cancelled, rolled back)
/// and what follows starts on a line of its own rather than after the open question.
#[test]
fn ctrl_c_at_the_question_stops_the_run_and_leaves_the_screen_readable() {
    let dir = tempfile::tempdir().unwrap();
    let mut pty = on_a_terminal(dir.path(), 80);
    pty.wait_for(ASKED, Duration::from_secs(30));
    pty.send("\u{3}");
    let code = pty.finish(Duration::from_secs(30));
    let text = pty.text();
    assert_eq!(code, 130, "{text}");
    assert!(text.contains("cancelled ask ("), "{text}");
    assert!(text.contains("run CANCELLED; rolled back"), "{text}");
    let at = text
        .find("SIGINT: stopping")
        .unwrap_or_else(|| panic!("no SIGINT notice:\n{text}"));
    assert!(
        text[..at].ends_with('\n') || text[..at].ends_with('\r'),
        "the notice continues the question's line:\n{text}"
    );
}

fn has_escape_codes(text: &str) -> bool {
    text.contains('\u{1b}')
}

/// NO_COLOR gives no escape codes anywhere; `--color always` gives them on a pipe (and wins
/// over NO_COLOR), `--color never` gives none; the plan diagnostics (miette) follow too.
#[test]
fn colour_follows_the_color_flag_and_no_color() {
    let dir = tempfile::tempdir().unwrap();
    let invalid =
        opsplan_testkit::repo_root().join("tests/fixtures/invalid/api-version-wrong.yaml");
    let validate = |args: &[&str], no_color: bool| {
        let mut cmd = bin::command(dir.path());
        if !no_color {
            cmd.env_remove("NO_COLOR");
        }
        cmd.arg("validate").arg(&invalid).args(args);
        bin::run(cmd)
    };
    let run = |args: &[&str], no_color: bool| {
        let _ = std::fs::remove_file(dir.path().join("count"));
        let mut cmd = run_command(dir.path(), &[&["--yes"], args].concat());
        if !no_color {
            cmd.env_remove("NO_COLOR");
        }
        bin::run(cmd)
    };
    let cases: [(&str, Ran, bool); 6] = [
        ("validate, NO_COLOR", validate(&[], true), false),
        (
            "validate --color always",
            validate(&["--color", "always"], false),
            true,
        ),
        (
            "validate --color=always over NO_COLOR",
            validate(&["--color=always"], true),
            true,
        ),
        ("run, NO_COLOR", run(&[], true), false),
        (
            "run --color always",
            run(&["--color", "always"], false),
            true,
        ),
        (
            "run --color never",
            run(&["--color", "never"], false),
            false,
        ),
    ];
    for (what, ran, coloured) in cases {
        assert_eq!(
            has_escape_codes(&ran.stderr),
            coloured,
            "{what}: stderr:\n{}",
            ran.stderr
        );
        // The summary on stdout is never coloured on a pipe.
        assert!(
            !has_escape_codes(&ran.stdout),
            "{what}: stdout:\n{}",
            ran.stdout
        );
        assert!(strip(&ran.stderr).len() > 20, "{what}: nothing said");
    }
    // CLICOLOR_FORCE colours a pipe when NO_COLOR is not set.
    let mut cmd = bin::command(dir.path());
    cmd.env_remove("NO_COLOR")
        .env("CLICOLOR_FORCE", "1")
        .arg("validate")
        .arg(&invalid);
    assert!(has_escape_codes(&bin::run(cmd).stderr));
}

/// On a terminal, diagnostics are coloured unless `CLICOLOR=0` or `TERM=dumb` says the
/// operator does not want colour there (`CLICOLOR_FORCE` still wins over `CLICOLOR=0`).
#[test]
fn clicolor_0_and_a_dumb_terminal_turn_colour_off_on_a_terminal() {
    let dir = tempfile::tempdir().unwrap();
    let invalid =
        opsplan_testkit::repo_root().join("tests/fixtures/invalid/api-version-wrong.yaml");
    let on_a_terminal = |env: &[(&str, &str)]| {
        let mut cmd = bin::command(dir.path());
        cmd.env_remove("NO_COLOR")
            .env_remove("CLICOLOR")
            .env_remove("CLICOLOR_FORCE")
            .env("TERM", "xterm-256color");
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.arg("validate").arg(&invalid);
        let mut pty = Pty::spawn(cmd, 100, 30);
        pty.wait_for("E0", Duration::from_secs(30));
        let code = pty.finish(Duration::from_secs(30));
        assert_eq!(code, 2, "validate of an invalid plan: {}", pty.text());
        has_escape_codes(&pty.raw())
    };
    assert!(on_a_terminal(&[]), "a terminal with no setting is coloured");
    assert!(!on_a_terminal(&[("CLICOLOR", "0")]), "CLICOLOR=0");
    assert!(!on_a_terminal(&[("TERM", "dumb")]), "TERM=dumb");
    assert!(on_a_terminal(&[("CLICOLOR", "1")]), "CLICOLOR=1");
    assert!(
        on_a_terminal(&[("CLICOLOR", "0"), ("CLICOLOR_FORCE", "1")]),
        "CLICOLOR_FORCE over CLICOLOR=0"
    );
}

/// On a narrow terminal the result table wraps a long note inside its column: no line is
/// wider than the terminal, and every word of the error is still there, in order.
#[test]
fn the_result_table_wraps_long_notes_to_the_terminal_width() {
    let dir = tempfile::tempdir().unwrap();
    let words: Vec<String> = (1..=30).map(|i| format!("word{i:02}")).collect();
    let message = words.join(" ");
    let plan = dir.path().join("plan.yaml");
    std::fs::write(
        &plan,
        format!(
            "apiVersion: opsplan/v1\nkind: Plan\nmetadata:\n  name: narrow\nsteps:\n  - id: fails-with-a-long-error\n    type: exec\n    with:\n      argv: [sh, -c, 'echo \"{message}\" >&2; exit 1']\n"
        ),
    )
    .unwrap();
    let cols = 60;
    let mut cmd = bin::command(dir.path());
    cmd.env_remove("NO_COLOR").env_remove("COLUMNS");
    cmd.arg("run").arg(&plan).arg("--no-journal");
    let mut pty = Pty::spawn(cmd, cols, 40);
    let code = pty.finish(Duration::from_secs(30));
    let text = pty.text();
    assert_eq!(code, 1, "{text}");
    let table: Vec<&str> = text
        .lines()
        .map(|l| l.trim_end_matches('\r'))
        .skip_while(|l| !l.starts_with("step "))
        .take_while(|l| !l.starts_with("run FAILED"))
        .collect();
    assert!(table.len() > 2, "the note was not wrapped:\n{text}");
    for line in &table {
        assert!(
            line.chars().count() <= usize::from(cols),
            "wider than {cols} columns: `{line}`\n{text}"
        );
    }
    let cells = table.join(" ");
    let mut rest = cells.as_str();
    for word in &words {
        let at = rest
            .find(word.as_str())
            .unwrap_or_else(|| panic!("`{word}` is missing or out of order:\n{text}"));
        rest = &rest[at + word.len()..];
    }
}

/// `opsplan run … >> backup.log`: the log gets the run's result (its id, plan, every step's
/// status and the verdict); progress lines stay on stderr, and the result is not there.
#[test]
fn the_result_goes_to_stdout_and_the_progress_to_stderr() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("backup.log");
    std::fs::write(&log, "an earlier line\n").unwrap();
    let file = std::fs::OpenOptions::new().append(true).open(&log).unwrap();
    let mut cmd = run_command(dir.path(), &["--yes"]);
    let out = cmd.stdout(Stdio::from(file)).output().unwrap();
    let ran = Ran {
        code: out.status.code().unwrap_or(-1),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        ..Ran::default()
    };
    ran.ok();
    let kept = std::fs::read_to_string(&log).unwrap();
    let lines: Vec<&str> = kept.lines().collect();
    assert_eq!(lines[0], "an earlier line", "{kept}");
    assert!(
        lines[1].starts_with("run ") && lines[1].contains(": plan run-live, started 20"),
        "{kept}"
    );
    for step in ["warm-up", "flaky", "ask", "load"] {
        assert!(
            lines
                .iter()
                .any(|l| l.starts_with(step) && l.contains(" ok ")),
            "{step} not in the log:\n{kept}"
        );
    }
    assert!(
        lines.last().unwrap().starts_with("run succeeded in"),
        "{kept}"
    );
    for progress in [
        "> warm-up: ",
        "ok flaky (",
        "~ flaky: attempt 1 failed",
        "load | {",
    ] {
        assert!(
            ran.stderr.contains(progress),
            "`{progress}`:\n{}",
            ran.stderr
        );
    }
    assert!(!ran.stderr.contains("run succeeded"), "{}", ran.stderr);
}

/// Every line of `stderr` as a JSON object with an `event`, none holding JSON in a string.
#[track_caller]
fn json_lines(stderr: &str) -> Vec<Value> {
    stderr
        .lines()
        .map(|line| {
            let value: Value = serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("not JSON ({e}): {line:?}\n{stderr}"));
            assert!(value["event"].is_string(), "not an event object: {line}");
            assert_eq!(json_in_a_string(&value), None, "JSON in a string: {line}");
            value
        })
        .collect()
}

fn json_in_a_string(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => match serde_json::from_str::<Value>(s) {
            Ok(Value::Object(_) | Value::Array(_)) => Some(s.clone()),
            _ => None,
        },
        Value::Array(items) => items.iter().find_map(json_in_a_string),
        Value::Object(map) => map.values().find_map(json_in_a_string),
        _ => None,
    }
}

/// `--log-format json`: stderr is JSON Lines, one event object per line and nothing else
/// (notices are `message` objects), and no string holds JSON (the line a step printed as
/// JSON is given as its value); stdout is the result as one object.
#[test]
fn log_format_json_is_json_lines_with_no_json_inside_strings() {
    let dir = tempfile::tempdir().unwrap();
    let ran = bin::run(run_command(dir.path(), &["--yes", "--log-format", "json"]));
    ran.ok();
    let events = json_lines(&ran.stderr);
    let kinds: Vec<&str> = events.iter().filter_map(|e| e["event"].as_str()).collect();
    for kind in [
        "message",
        "run_started",
        "step_started",
        "attempt_failed",
        "step_log",
        "step_finished",
        "run_finished",
    ] {
        assert!(kinds.contains(&kind), "no `{kind}` event: {kinds:?}");
    }
    assert!(
        events.iter().any(|e| e["event"] == "step_log"
            && e["step"] == "load"
            && e["line"]["tables"] == serde_json::json!(["a", "b"])),
        "the JSON line of `load` is not given as a value:\n{}",
        ran.stderr
    );
    assert_eq!(ran.run_status(), "succeeded");
    let result: Value = serde_json::from_str(ran.stdout.trim())
        .unwrap_or_else(|e| panic!("stdout is not one JSON object ({e}):\n{}", ran.stdout));
    assert_eq!(ran.stdout.trim().lines().count(), 1, "{}", ran.stdout);
    assert_eq!(result["status"], "succeeded");
    assert_eq!(
        result["steps"].as_array().map(Vec::len),
        Some(4),
        "{result}"
    );
}

/// With `--log-format json`, the diagnostics of a plan that cannot run are JSON Lines too.
#[test]
fn log_format_json_gives_plan_diagnostics_as_objects() {
    let dir = tempfile::tempdir().unwrap();
    let invalid =
        opsplan_testkit::repo_root().join("tests/fixtures/invalid/api-version-wrong.yaml");
    let mut cmd = bin::command(dir.path());
    cmd.arg("run").arg(&invalid).args(["--log-format", "json"]);
    let ran = bin::run(cmd);
    ran.expect_code(2, "an invalid plan");
    let events = json_lines(&ran.stderr);
    assert!(
        events
            .iter()
            .any(|e| e["event"] == "diagnostic" && e["severity"] == "error" && e["line"].is_u64()),
        "{}",
        ran.stderr
    );
    assert_eq!(ran.stdout, "");
}

/// With `--log-format json`, a step type's log record (`tracing`) and a plan's warnings are
/// JSON Lines events too (`log`, `diagnostic`): nothing else is ever on stderr.
#[test]
fn log_format_json_gives_log_records_and_warnings_as_events() {
    let dir = tempfile::tempdir().unwrap();
    let plan = opsplan_testkit::repo_root().join("tests/fixtures/run/background.yaml");
    let mut cmd = bin::command(dir.path());
    cmd.arg("run")
        .arg(&plan)
        .arg("--set")
        .arg(format!("dir={}", dir.path().display()))
        .args(["--log-format", "json"]);
    let ran = bin::run(cmd);
    if let Ok(pid) = std::fs::read_to_string(dir.path().join("daemon.pid")) {
        if let Ok(pid) = pid.trim().parse::<i32>() {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
    }
    ran.ok();
    let events = json_lines(&ran.stderr);
    assert!(
        events.iter().any(|e| e["event"] == "log"
            && e["level"] == "WARN"
            && e["message"]
                .as_str()
                .is_some_and(|m| m.contains("still hold its output open"))),
        "{}",
        ran.stderr
    );
    assert!(
        events
            .iter()
            .any(|e| e["event"] == "diagnostic" && e["severity"] == "warning"),
        "{}",
        ran.stderr
    );
}
