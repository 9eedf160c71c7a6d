//! `opsplan drill`: the real binary on the small plans in tests/fixtures/drill/, which back
//! up a folder with fs.sync + manifest and restore it into a scratch folder. Each test
//! works in its own temporary folder (source, backup, scratch target, journals, locks,
//! report), removed when the test ends. Stdin is never a terminal, so the destructive gate
//! is what `run` does without one.

use opsplan_testkit::bin::{self, Ran};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_opsplan");

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/drill")
        .join(name)
}

struct Lab {
    dir: tempfile::TempDir,
}

impl Lab {
    /// A source folder with a small file, a binary one in a sub-folder, and one that the
    /// wrong restore leaves out.
    fn new() -> Lab {
        let dir = tempfile::tempdir().expect("temp dir");
        let src = dir.path().join("src");
        std::fs::create_dir_all(src.join("nested")).expect("mkdir");
        std::fs::write(src.join("hello.txt"), "hello world\n").expect("write");
        let bin: Vec<u8> = (0..5000u32).map(|i| (i * 7 % 251) as u8).collect();
        std::fs::write(src.join("nested/deep.bin"), bin).expect("write");
        std::fs::write(src.join("skipped.txt"), "skip me\n").expect("write");
        Lab { dir }
    }
    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
    fn p(&self, name: &str) -> String {
        self.path(name).display().to_string()
    }
    /// Bytes of the source's files: what one full copy of it weighs.
    fn source_bytes(&self) -> u64 {
        ["hello.txt", "nested/deep.bin", "skipped.txt"]
            .iter()
            .map(|f| {
                std::fs::metadata(self.path("src").join(f))
                    .expect("stat")
                    .len()
            })
            .sum()
    }
    /// `opsplan drill BACKUP RESTORE` with the usual params: source -> backup -> scratch.
    fn drill(&self, backup: &str, restore: &str, extra: &[&str]) -> Ran {
        let mut cmd = self.drill_command(backup, restore);
        cmd.args(["--set-backup", &format!("source={}", self.p("src"))])
            .args(["--set-backup", &format!("backup={}", self.p("backup"))])
            .args(["--set-restore", &format!("backup={}", self.p("backup"))])
            .args(extra);
        bin::run_within(cmd, Duration::from_secs(120))
    }
    /// `opsplan drill BACKUP RESTORE` with the journals and locks in the lab, no terminal.
    fn drill_command(&self, backup: &str, restore: &str) -> Command {
        let mut cmd = Command::new(BIN);
        cmd.arg("drill")
            .arg(fixture(backup))
            .arg(fixture(restore))
            .env_remove("OPSPLAN_LOG")
            .env("OPSPLAN_JOURNAL_DIR", self.path("journal"))
            .env("OPSPLAN_LOCK_DIR", self.path("locks"))
            .env("NO_COLOR", "1")
            .stdin(Stdio::null());
        cmd
    }
    fn report(&self) -> Value {
        let text = std::fs::read_to_string(self.path("report.json")).expect("report written");
        serde_json::from_str(&text).expect("report is JSON")
    }
    fn journal_runs(&self) -> Vec<String> {
        match std::fs::read_dir(self.path("journal")) {
            Ok(entries) => {
                let mut v: Vec<String> = entries
                    .flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect();
                v.sort();
                v
            }
            Err(_) => Vec::new(),
        }
    }
}

fn phase<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["phases"]
        .as_array()
        .expect("phases")
        .iter()
        .find(|p| p["phase"] == name)
        .unwrap_or_else(|| panic!("no phase {name} in {report:#}"))
}

fn one_line(ran: &Ran) -> &str {
    let lines: Vec<&str> = ran.stdout.lines().collect();
    assert_eq!(
        lines.len(),
        1,
        "stdout is the one-line result:\n{}\nstderr:\n{}",
        ran.stdout,
        ran.stderr
    );
    lines[0]
}

#[test]
fn drill_passes_restores_real_data_and_reports_each_run() {
    let lab = Lab::new();
    let scratch = lab.p("scratch");
    let ran = lab.drill(
        "backup.yaml",
        "restore.yaml",
        &[
            "--set-restore",
            &format!("target={scratch}"),
            "--target-param",
            "source=target",
            "--compare",
            &format!("{scratch}=data"),
            "--check",
            &fixture("check.yaml").display().to_string(),
            "--set-check",
            &format!("source={}", lab.p("src")),
            "--set-check",
            &format!("target={scratch}"),
            "--report",
            &lab.p("report.json"),
            "--force",
        ],
    );
    assert_eq!(
        ran.code, 0,
        "stdout:\n{}\nstderr:\n{}",
        ran.stdout, ran.stderr
    );
    let line = one_line(&ran);
    let bytes = lab.source_bytes();
    assert!(line.starts_with("drill ok: "), "{line}");
    assert!(
        line.contains(&format!(
            "6 files, 9.8 KiB ({} bytes) checked, check passed",
            2 * bytes
        )),
        "{line}"
    );

    // The restore really happened: the scratch folder holds the source's files.
    for f in ["hello.txt", "nested/deep.bin", "skipped.txt"] {
        assert_eq!(
            std::fs::read(lab.path("scratch").join(f)).expect("restored file"),
            std::fs::read(lab.path("src").join(f)).expect("source file"),
            "{f}"
        );
    }

    let report = lab.report();
    assert_eq!(report["format"], "opsplan-drill-report");
    assert_eq!(report["format_version"], 1);
    assert_eq!(report["result"], "ok");
    assert_eq!(report["exit_code"], 0);
    assert_eq!(report["failed_phase"], Value::Null);
    assert_eq!(report["summary"], line);
    assert_eq!(report["bytes_checked"], 2 * bytes);
    assert_eq!(report["files_checked"], 6);
    assert_eq!(report["target"][0]["backup_param"], "source");
    assert_eq!(report["target"][0]["restore_param"], "target");
    assert_eq!(report["target"][0]["restore_value"], scratch.as_str());
    let names: Vec<&str> = report["phases"]
        .as_array()
        .expect("phases")
        .iter()
        .map(|p| p["phase"].as_str().expect("name"))
        .collect();
    assert_eq!(names, ["backup", "verify", "restore", "compare", "check"]);
    for p in report["phases"].as_array().expect("phases") {
        assert_eq!(p["status"], "succeeded", "{p:#}");
        assert!(p["duration_ms"].is_u64(), "{p:#}");
    }
    // Each plan's run is journaled under the id the report gives.
    let mut ids: Vec<String> = ["backup", "restore", "check"]
        .iter()
        .map(|n| {
            let id = phase(&report, n)["run_id"].as_str().expect("run id");
            assert!(line.contains(&format!("{n} {id}")), "{line}");
            id.to_string()
        })
        .collect();
    ids.sort();
    assert_eq!(lab.journal_runs(), ids);
    assert_eq!(phase(&report, "backup")["plan_name"], "drill-backup");
    let verify = &phase(&report, "verify")["checked"][0];
    assert_eq!(verify["status"], "complete");
    assert_eq!(verify["bytes"], bytes);
    assert_eq!(verify["folder"], lab.p("backup").as_str());
    let compare = &phase(&report, "compare")["checked"][0];
    assert_eq!(compare["status"], "complete");
    assert_eq!(compare["files"], 3);
    assert_eq!(compare["manifest_path"], "data");
}

#[test]
fn failing_restore_fails_the_drill_naming_the_step() {
    let lab = Lab::new();
    let scratch = lab.p("scratch");
    let ran = lab.drill(
        "backup.yaml",
        "restore-fails.yaml",
        &[
            "--set-restore",
            &format!("target={scratch}"),
            "--target-param",
            "source=target",
            "--compare",
            &format!("{scratch}=data"),
            "--report",
            &lab.p("report.json"),
        ],
    );
    assert_eq!(
        ran.code, 1,
        "stdout:\n{}\nstderr:\n{}",
        ran.stdout, ran.stderr
    );
    let report = lab.report();
    let restore_id = phase(&report, "restore")["run_id"]
        .as_str()
        .expect("run id")
        .to_string();
    let backup_id = phase(&report, "backup")["run_id"].as_str().expect("run id");
    assert_eq!(
        one_line(&ran),
        format!(
            "drill FAILED at restore after {}: restore run {restore_id} failed: step `start-service`: \
             `sh` exited with code 3 (expected 0): service did not start; 3 files, 4.9 KiB ({} bytes) \
             checked; runs: backup {backup_id}, restore {restore_id}",
            one_line(&ran)
                .split(" after ")
                .nth(1)
                .and_then(|s| s.split(':').next())
                .expect("duration"),
            lab.source_bytes()
        )
    );
    assert_eq!(report["result"], "failed");
    assert_eq!(report["exit_code"], 1);
    assert_eq!(report["failed_phase"], "restore");
    assert_eq!(phase(&report, "backup")["status"], "succeeded");
    assert_eq!(phase(&report, "verify")["status"], "succeeded");
    assert_eq!(phase(&report, "restore")["status"], "failed");
    assert_eq!(phase(&report, "restore")["exit_code"], 1);
    assert_eq!(phase(&report, "compare")["status"], "not_run");
    assert_eq!(lab.journal_runs().len(), 2);
}

#[test]
fn restore_with_different_data_fails_naming_the_difference() {
    let lab = Lab::new();
    let scratch = lab.p("scratch");
    let ran = lab.drill(
        "backup.yaml",
        "restore-wrong.yaml",
        &[
            "--set-restore",
            &format!("target={scratch}"),
            "--target-param",
            "source=target",
            "--compare",
            &format!("{scratch}=data"),
            "--report",
            &lab.p("report.json"),
        ],
    );
    assert_eq!(
        ran.code, 1,
        "stdout:\n{}\nstderr:\n{}",
        ran.stdout, ran.stderr
    );
    let line = one_line(&ran);
    let expected = format!(
        "the restored folder {scratch} does not match the backup's data/ ({}/opsplan-manifest.json): \
         1 changed (data/hello.txt: size 5 instead of 12); 1 missing (data/skipped.txt)",
        lab.p("backup")
    );
    assert!(line.starts_with("drill FAILED at compare after "), "{line}");
    assert!(line.contains(&expected), "{line}\nwanted: {expected}");
    // The restore itself succeeded: only the comparison can tell.
    let report = lab.report();
    assert_eq!(phase(&report, "restore")["status"], "succeeded");
    let compare = phase(&report, "compare");
    assert_eq!(compare["status"], "failed");
    assert_eq!(compare["checked"][0]["status"], "mismatch");
    assert_eq!(
        compare["checked"][0]["changed"],
        serde_json::json!(["data/hello.txt: size 5 instead of 12"])
    );
    assert_eq!(
        compare["checked"][0]["missing"],
        serde_json::json!(["data/skipped.txt"])
    );
    assert_eq!(report["failed_phase"], "compare");
}

#[test]
fn failing_check_plan_fails_the_drill() {
    let lab = Lab::new();
    let scratch = lab.p("scratch");
    // The check compares with another "source" whose hello.txt differs.
    std::fs::create_dir_all(lab.path("other")).expect("mkdir");
    std::fs::write(lab.path("other/hello.txt"), "HELLO WORLD\n").expect("write");
    let ran = lab.drill(
        "backup.yaml",
        "restore.yaml",
        &[
            "--set-restore",
            &format!("target={scratch}"),
            "--target-param",
            "source=target",
            "--check",
            &fixture("check.yaml").display().to_string(),
            "--set-check",
            &format!("source={}", lab.p("other")),
            "--set-check",
            &format!("target={scratch}"),
            "--report",
            &lab.p("report.json"),
            "--force",
        ],
    );
    assert_eq!(
        ran.code, 1,
        "stdout:\n{}\nstderr:\n{}",
        ran.stdout, ran.stderr
    );
    let line = one_line(&ran);
    assert!(line.starts_with("drill FAILED at check after "), "{line}");
    assert!(
        line.contains("failed: step `same-hello`: restored hello.txt differs from the source's"),
        "{line}"
    );
    let report = lab.report();
    assert_eq!(report["failed_phase"], "check");
    assert_eq!(phase(&report, "restore")["status"], "succeeded");
    assert_eq!(phase(&report, "check")["status"], "failed");
    // Without --compare there is no compare phase in the report.
    assert!(report["phases"]
        .as_array()
        .expect("phases")
        .iter()
        .all(|p| p["phase"] != "compare"));
}

#[test]
fn torn_backup_fails_at_verify_before_any_restore() {
    let lab = Lab::new();
    let scratch = lab.p("scratch");
    let ran = lab.drill(
        "backup-torn.yaml",
        "restore.yaml",
        &[
            "--set-restore",
            &format!("target={scratch}"),
            "--target-param",
            "source=target",
            "--report",
            &lab.p("report.json"),
            "--force",
        ],
    );
    assert_eq!(
        ran.code, 1,
        "stdout:\n{}\nstderr:\n{}",
        ran.stdout, ran.stderr
    );
    let line = one_line(&ran);
    assert!(
        line.contains(&format!(
            "backup {} does not match its manifest: 1 extra (data/late.txt)",
            lab.p("backup")
        )),
        "{line}"
    );
    assert!(!lab.path("scratch").exists(), "the restore must not run");
    let report = lab.report();
    assert_eq!(report["failed_phase"], "verify");
    assert_eq!(phase(&report, "restore")["status"], "not_run");
}

#[test]
fn restore_target_equal_to_backup_source_is_refused() {
    let lab = Lab::new();
    // The same folder (with a trailing slash), and a folder inside the source.
    for target in [format!("{}/", lab.p("src")), lab.p("src/restored")] {
        let ran = lab.drill(
            "backup.yaml",
            "restore.yaml",
            &[
                "--set-restore",
                &format!("target={target}"),
                "--target-param",
                "source=target",
                "--report",
                &lab.p("report.json"),
                "--force",
            ],
        );
        assert_eq!(
            ran.code, 2,
            "stdout:\n{}\nstderr:\n{}",
            ran.stdout, ran.stderr
        );
        let how = if target.ends_with('/') {
            "name the same place"
        } else {
            "name places one inside the other"
        };
        assert_eq!(
            one_line(&ran),
            format!(
                "drill REFUSED (target): the restore target is the backup source: backup param \
                 `source` and restore param `target` {how} ({} and {target}); a drill restores \
                 into a scratch target, never over what it backed up; nothing was run",
                lab.p("src")
            )
        );
        assert!(
            ran.stderr
                .contains("help: give the restore plan a scratch target"),
            "{}",
            ran.stderr
        );
        assert!(!lab.path("backup").exists(), "nothing may run");
        assert!(lab.journal_runs().is_empty());
        let report = lab.report();
        assert_eq!(report["result"], "refused");
        assert_eq!(report["exit_code"], 2);
        assert_eq!(phase(&report, "backup")["status"], "not_run");
    }
}

#[test]
fn target_param_must_exist_in_both_plans() {
    let lab = Lab::new();
    let ran = lab.drill(
        "backup.yaml",
        "restore.yaml",
        &[
            "--set-restore",
            &format!("target={}", lab.p("scratch")),
            "--target-param",
            "target",
            "--force",
        ],
    );
    assert_eq!(ran.code, 2, "{}{}", ran.stdout, ran.stderr);
    assert!(
        ran.stderr.contains(&format!(
            "error: --target-param: the backup plan {} has no param `target` (its params: source, backup); nothing was run",
            fixture("backup.yaml").display()
        )),
        "{}",
        ran.stderr
    );
    // And the flag itself is required: a drill that cannot tell its target is not run.
    let ran = lab.drill(
        "backup.yaml",
        "restore.yaml",
        &["--set-restore", &format!("target={}", lab.p("scratch"))],
    );
    assert_eq!(ran.code, 2);
    assert!(ran.stderr.contains("--target-param"), "{}", ran.stderr);
    assert!(!lab.path("backup").exists());
}

#[test]
fn destructive_restore_needs_force_and_nothing_runs_without_it() {
    let lab = Lab::new();
    let ran = lab.drill(
        "backup.yaml",
        "restore.yaml",
        &[
            "--set-restore",
            &format!("target={}", lab.p("scratch")),
            "--target-param",
            "source=target",
        ],
    );
    assert_eq!(ran.code, 2, "{}{}", ran.stdout, ran.stderr);
    assert_eq!(
        one_line(&ran),
        "drill REFUSED (gate): the drill's plans have destructive steps (restore: restore) and \
         there is no terminal to confirm them on; nothing was run. Check `opsplan preview` and \
         pass --force to allow them."
    );
    // Refused before the backup, not after it.
    assert!(!lab.path("backup").exists());
    assert!(lab.journal_runs().is_empty());
}

#[test]
fn invalid_restore_params_are_found_before_the_backup_runs() {
    let lab = Lab::new();
    // No `target` for the restore plan: a required param is missing.
    let ran = lab.drill(
        "backup.yaml",
        "restore.yaml",
        &["--target-param", "source=target", "--force"],
    );
    assert_eq!(ran.code, 2, "{}{}", ran.stdout, ran.stderr);
    assert!(
        ran.stdout
            .starts_with("drill REFUSED (load): the restore plan "),
        "{}",
        ran.stdout
    );
    assert!(ran.stderr.contains("target"), "{}", ran.stderr);
    assert!(!lab.path("backup").exists());
}

/// `opsplan drill backup-named.yaml restore.yaml` with `--restore-from-backup` and
/// `--verified-by` as given (the backup's folder is named at run time, as hossadm names
/// its archive): source -> ROOT/backup-<run id> -> scratch.
fn drill_named(lab: &Lab, extra: &[&str]) -> Ran {
    let mut cmd = lab.drill_command("backup-named.yaml", "restore.yaml");
    cmd.args(["--set-backup", &format!("source={}", lab.p("src"))])
        .args(["--set-backup", &format!("root={}", lab.p("root"))])
        .args(["--set-restore", &format!("target={}", lab.p("scratch"))])
        .args(["--target-param", "source=target", "--force"])
        .args(["--report", &lab.p("report.json")])
        .args(extra);
    bin::run_within(cmd, Duration::from_secs(120))
}

/// The drill ended with `code` and a result line starting with `start`.
fn ends(ran: &Ran, code: i32, start: &str) {
    assert!(
        ran.code == code && one_line(ran).starts_with(start),
        "expected exit {code} and `{start}…`:\n{}",
        ran.all()
    );
}

#[test]
fn backup_named_at_run_time_is_restored_from_its_output_and_verified_by_the_restore() {
    let lab = Lab::new();
    // Without the backup's output the restore's required `backup` param is missing: the
    // drill is refused before the backup runs.
    let ran = drill_named(&lab, &["--verified-by", "verify"]);
    ends(&ran, 2, "drill REFUSED (load):");
    assert!(
        lab.journal_runs().is_empty(),
        "a refused drill ran something"
    );

    // With it but without --verified-by, the drill's own verify reads the manifest step's
    // folder, which the backup renamed: it fails there, before any restore.
    let ran = drill_named(&lab, &["--restore-from-backup", "backup=publish.stdout"]);
    ends(&ran, 1, "drill FAILED at verify");
    assert!(
        !lab.path("scratch").exists(),
        "restored after a failed verify"
    );

    let ran = drill_named(
        &lab,
        &[
            "--restore-from-backup",
            "backup=publish.stdout",
            "--verified-by",
            "verify",
        ],
    );
    assert_eq!(ran.code, 0, "{}", ran.all());
    let line = one_line(&ran);
    let bytes = lab.source_bytes();
    assert!(
        line.starts_with("drill ok: ")
            && line.contains(&format!("3 files, {} checked", {
                format!("{:.1} KiB ({bytes} bytes)", bytes as f64 / 1024.0)
            })),
        "{line}"
    );
    for f in ["hello.txt", "nested/deep.bin", "skipped.txt"] {
        assert_eq!(
            std::fs::read(lab.path("scratch").join(f)).ok(),
            std::fs::read(lab.path("src").join(f)).ok(),
            "{f} restored from the backup the backup's output named"
        );
    }
    let report = lab.report();
    let verify = phase(&report, "verify");
    assert_eq!(verify["status"], "succeeded", "{report:#}");
    assert_eq!(verify["verified_by_step"], "verify", "{report:#}");
    assert_eq!(report["files_checked"], 3, "{report:#}");
    assert_eq!(report["bytes_checked"], bytes, "{report:#}");
}

#[test]
fn restore_from_backup_and_verified_by_must_name_steps_of_the_plans() {
    let lab = Lab::new();
    for (args, says) in [
        (
            [
                "--restore-from-backup",
                "backup=pubish.stdout",
                "--verified-by",
                "verify",
            ],
            "the backup plan",
        ),
        (
            [
                "--restore-from-backup",
                "backup=publish.stdout",
                "--verified-by",
                "guard",
            ],
            "has no `verify` step `guard` (its verify steps: verify)",
        ),
        (
            ["--restore-from-backup", "backup", "--verified-by", "verify"],
            "expected PARAM=STEP.OUTPUT",
        ),
    ] {
        let ran = drill_named(&lab, &args);
        assert_eq!(ran.code, 2, "{args:?}: {}", ran.all());
        assert!(
            one_line(&ran).starts_with("drill REFUSED (arguments):") && ran.all().contains(says),
            "{args:?}: expected a refusal saying `{says}`:\n{}",
            ran.all()
        );
    }
    assert!(
        lab.journal_runs().is_empty(),
        "a refused drill ran something"
    );
}
