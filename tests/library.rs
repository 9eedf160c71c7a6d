//! The shipped plans as a library (issue 17): the binary embeds plans/ file for file,
//! `opsplan plans` lists, shows, exports and diffs them, every command takes a shipped plan
//! by name (a path that exists wins), a team plan uses a shipped fragment by name with a
//! semver requirement, and params files are checked against their plan, positioned in the
//! params file. Commands run through the real binary, from a temporary folder when the
//! point is that the repository is not needed.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn opsplan_in(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_opsplan"))
        .args(args)
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .env_remove("PARAMS_CHECK_DB_PASSWORD")
        .output()
        .expect("run opsplan")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn code(o: &Output) -> i32 {
    o.status.code().unwrap_or(-1)
}

/// Every `*.yaml`/`*.yml` file below `dir`, as (path relative to it with `/`, text).
fn tree(dir: &Path) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).expect("read a plans folder") {
            let path = entry.expect("a folder entry").path();
            if path.is_dir() {
                stack.push(path);
            } else if matches!(
                path.extension().and_then(|e| e.to_str()),
                Some("yaml" | "yml")
            ) {
                let rel = path
                    .strip_prefix(dir)
                    .expect("below plans/")
                    .components()
                    .map(|c| c.as_os_str().to_string_lossy().into_owned())
                    .collect::<Vec<_>>()
                    .join("/");
                out.push((rel, std::fs::read_to_string(&path).expect("utf-8 plan")));
            }
        }
    }
    out.sort();
    out
}

#[test]
fn embedded_equals_plans_folder() {
    let on_disk = tree(&repo_root().join("plans"));
    let embedded: Vec<(String, String)> = opsplan_plan::library::files()
        .iter()
        .map(|(f, t)| (f.to_string(), t.to_string()))
        .collect();
    let names = |v: &[(String, String)]| v.iter().map(|(f, _)| f.clone()).collect::<Vec<_>>();
    assert_eq!(names(&embedded), names(&on_disk), "embedded file list");
    for ((f, a), (_, b)) in embedded.iter().zip(&on_disk) {
        assert!(a == b, "embedded {f} differs from plans/{f}");
    }
    assert!(!embedded.is_empty());
}

#[test]
fn plans_lists_every_shipped_plan_as_a_table_and_json() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let o = opsplan_in(tmp.path(), &["plans"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let out = stdout(&o);
    let mut lines = out.lines();
    let head = lines.next().expect("a header");
    for col in [
        "NAME",
        "KIND",
        "SYSTEM",
        "VERSION",
        "APPLIES TO",
        "DESCRIPTION",
    ] {
        assert!(head.contains(col), "header {head:?} lacks {col}");
    }
    let rows: Vec<&str> = lines.collect();
    let entries = opsplan_plan::library::entries();
    assert_eq!(rows.len(), entries.len(), "{out}");
    for (row, e) in rows.iter().zip(&entries) {
        let cells: Vec<&str> = row.split("  ").filter(|c| !c.trim().is_empty()).collect();
        assert_eq!(cells[0].trim(), e.name, "{row}");
        assert!(
            row.contains(e.version.as_deref().unwrap_or("?")),
            "{row} lacks the version"
        );
    }
    let backup = rows
        .iter()
        .find(|r| r.starts_with("cosmos7/backup "))
        .expect("cosmos7/backup is listed");
    assert!(
        backup.contains("plan") && backup.contains(">=7.0, <8"),
        "{backup}"
    );

    let o = opsplan_in(tmp.path(), &["plans", "--format", "json"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let json: serde_json::Value = serde_json::from_str(&stdout(&o)).expect("json");
    let list = json.as_array().expect("a list");
    assert_eq!(list.len(), entries.len());
    let b = list
        .iter()
        .find(|e| e["name"] == "cosmos7/backup")
        .expect("cosmos7/backup in the json");
    assert_eq!(b["system"], "cosmos7");
    assert_eq!(b["kind"], "Plan");
    assert_eq!(b["appliesTo"], ">=7.0, <8");
    assert!(
        b["version"].is_string() && b["description"].is_string(),
        "{b}"
    );
}

#[test]
fn plans_show_prints_the_shipped_text_and_suggests_on_a_typo() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let o = opsplan_in(tmp.path(), &["plans", "show", "cosmos7/backup"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let shipped =
        std::fs::read_to_string(repo_root().join("plans/cosmos7/backup.yaml")).expect("plan");
    assert_eq!(stdout(&o), shipped);

    let o = opsplan_in(tmp.path(), &["plans", "show", "cosmos7/backpu"]);
    assert_eq!(code(&o), 2);
    assert!(
        stderr(&o).contains("did you mean `builtin:cosmos7/backup`?"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn commands_take_a_shipped_plan_by_name_outside_the_repository() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = repo_root();
    let params = root.join("tests/fixtures/plans/dop/restore-logs.params.yaml");
    let params = params.to_str().expect("utf-8 path");

    let o = opsplan_in(tmp.path(), &["validate", "dop/restore-logs"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(
        stderr(&o).contains("builtin:dop/restore-logs.yaml: ok"),
        "{}",
        stderr(&o)
    );

    for (cmd, fmt) in [
        ("preview", "text"),
        ("preview", "json"),
        ("graph", "mermaid"),
    ] {
        let by_name = opsplan_in(
            tmp.path(),
            &[cmd, "dop/restore-logs", "--params", params, "--format", fmt],
        );
        assert_eq!(code(&by_name), 0, "{cmd}: {}", stderr(&by_name));
        let by_path = opsplan_in(
            &root,
            &[
                cmd,
                "plans/dop/restore-logs.yaml",
                "--params",
                params,
                "--format",
                fmt,
            ],
        );
        assert_eq!(code(&by_path), 0, "{cmd}: {}", stderr(&by_path));
        assert_eq!(
            stdout(&by_name).replace(
                "builtin:dop/restore-logs.yaml",
                "plans/dop/restore-logs.yaml"
            ),
            stdout(&by_path),
            "{cmd} --format {fmt} by name and by path differ"
        );
    }

    let o = opsplan_in(tmp.path(), &["preview", "cosmos7/backpu"]);
    assert_eq!(code(&o), 2);
    let err = stderr(&o);
    assert!(
        err.contains("cosmos7/backpu: no such file, and no shipped plan of that name")
            && err.contains("did you mean `cosmos7/backup`?"),
        "{err}"
    );
    let o = opsplan_in(tmp.path(), &["validate", "cosmos7/backpu"]);
    assert_eq!(code(&o), 2);
    assert!(
        stderr(&o).contains("did you mean `cosmos7/backup`?"),
        "{}",
        stderr(&o)
    );
    let o = opsplan_in(
        tmp.path(),
        &[
            "drill",
            "dop/bakup",
            "dop/restore-logs",
            "--target-param",
            "bucket",
        ],
    );
    assert_eq!(code(&o), 2);
    assert!(
        stderr(&o).contains("did you mean `dop/backup`?"),
        "{}",
        stderr(&o)
    );
    let o = opsplan_in(tmp.path(), &["run", "dop/restore-log"]);
    assert_eq!(code(&o), 2);
    assert!(
        stderr(&o).contains("did you mean `dop/restore-logs`?"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn a_path_that_exists_wins_over_a_shipped_name() {
    let tmp = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir_all(tmp.path().join("cosmos7")).expect("mkdir");
    std::fs::copy(
        repo_root().join("plans/examples/archive-folder.yaml"),
        tmp.path().join("cosmos7/backup"),
    )
    .expect("copy a plan");
    let o = opsplan_in(tmp.path(), &["graph", "cosmos7/backup"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(stdout(&o).contains("mark-in-progress"), "{}", stdout(&o));
}

/// Validates a fixture of tests/fixtures/library from the repository root.
fn validate_fixture(name: &str, extra: &[&str]) -> Output {
    let path = format!("tests/fixtures/library/{name}.yaml");
    let mut args = vec!["validate", path.as_str()];
    args.extend_from_slice(extra);
    opsplan_in(&repo_root(), &args)
}

#[test]
fn a_team_plan_uses_a_shipped_fragment_by_name_and_version() {
    let o = validate_fixture("team-restore", &["--deny-warnings"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let o = opsplan_in(
        &repo_root(),
        &[
            "preview",
            "tests/fixtures/library/team-restore.yaml",
            "--set",
            "backup_dir=/backups/mimir",
            "--set",
            "s3_endpoint=http://localhost:9000",
            "--set",
            "s3_access_key=restore",
        ],
    );
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(stdout(&o).contains("restore.upload"), "{}", stdout(&o));

    let mut shown = String::new();
    for (name, want) in [
        ("team-restore-too-new", 2),
        ("team-restore-unknown", 2),
        ("team-restore-unpinned", 0),
    ] {
        let o = validate_fixture(name, &[]);
        assert_eq!(code(&o), want, "{name}: {}", stderr(&o));
        shown.push_str(&format!("== {name} (exit {want})\n{}\n", stderr(&o)));
    }
    assert_eq!(
        code(&validate_fixture(
            "team-restore-unpinned",
            &["--deny-warnings"]
        )),
        2
    );
    assert!(shown.contains("E095") && shown.contains("E094") && shown.contains("W107"));
    insta::assert_snapshot!("uses_builtin_diagnostics", shown);
}

#[test]
fn export_records_the_origin_and_diff_separates_upstream_from_local_changes() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let o = opsplan_in(tmp.path(), &["plans", "export", "dop/restore-logs", "team"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let copy = tmp.path().join("team/restore-logs.yaml");
    let base = tmp.path().join("team/restore-logs.yaml.origin");
    let text = std::fs::read_to_string(&copy).expect("the copy");
    let entry = opsplan_plan::library::get("dop/restore-logs").expect("shipped");
    let version = entry.version.clone().expect("a version");
    assert_eq!(
        text.lines().next(),
        Some(
            format!(
                "# opsplan-origin: builtin:dop/restore-logs@{version} sha256:{}",
                entry.sha256
            )
            .as_str()
        )
    );
    let fragment = opsplan_plan::library::get("dop/fragments/restore-bucket").expect("shipped");
    let uses = format!(
        "uses: builtin:dop/fragments/restore-bucket@^{}",
        fragment.version.expect("a version")
    );
    assert!(text.contains(&uses), "{text}");
    assert!(!text.contains("yaml-language-server"), "{text}");
    assert!(base.is_file());

    // The copy validates where only it is.
    let o = opsplan_in(tmp.path(), &["validate", "team", "--deny-warnings"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));

    let o = opsplan_in(tmp.path(), &["plans", "diff", "team/restore-logs.yaml"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let out = stdout(&o);
    assert!(
        out.contains("upstream: unchanged since the export"),
        "{out}"
    );
    assert!(out.contains("here: unchanged since the export"), "{out}");

    // The team changes a default.
    let edited = text.replacen("default: 8", "default: 2", 1);
    assert_ne!(edited, text, "the plan has a `default: 8` to change");
    std::fs::write(&copy, &edited).expect("edit");
    let out = stdout(&opsplan_in(
        tmp.path(),
        &["plans", "diff", "team/restore-logs.yaml"],
    ));
    assert!(out.contains("here: changed since the export"), "{out}");
    assert!(
        out.contains("\n-") && out.contains("default: 8") && out.contains("+"),
        "{out}"
    );
    assert!(
        out.contains("upstream: unchanged since the export"),
        "{out}"
    );

    // Upstream moved on: the copy was exported from an older text (another hash, and a
    // base in which one line differs).
    let old_base =
        std::fs::read_to_string(&base)
            .expect("base")
            .replacen("restore", "restore (old)", 1);
    std::fs::write(&base, &old_base).expect("write base");
    std::fs::write(&copy, edited.replacen(&entry.sha256, &"0".repeat(64), 1))
        .expect("rewrite origin");
    let out = stdout(&opsplan_in(
        tmp.path(),
        &["plans", "diff", "team/restore-logs.yaml"],
    ));
    assert!(out.contains("upstream: changed since the export"), "{out}");
    assert!(out.contains("restore (old)"), "{out}");
    assert!(out.contains("here: changed since the export"), "{out}");

    let o = opsplan_in(tmp.path(), &["plans", "export", "dop/restore-logs", "team"]);
    assert_eq!(code(&o), 2);
    assert!(
        stderr(&o).contains("exists; nothing was written"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn params_files_are_checked_against_their_plan_positioned_in_the_file() {
    let args = [
        "validate",
        "tests/fixtures/library/params-plan.yaml",
        "--params",
        "tests/fixtures/library/envs",
    ];
    let o = opsplan_in(&repo_root(), &args);
    assert_eq!(code(&o), 2);
    let err = stderr(&o);
    assert!(!err.contains("hunter2"), "the secret is shown:\n{err}");
    assert!(
        err.contains("tests/fixtures/library/envs/staging.yaml: ok"),
        "{err}"
    );
    insta::assert_snapshot!("params_file_diagnostics", err);

    let mut json_args = args.to_vec();
    json_args.extend(["--format", "json"]);
    let o = opsplan_in(&repo_root(), &json_args);
    assert_eq!(code(&o), 2);
    let json: serde_json::Value = serde_json::from_str(&stdout(&o)).expect("json");
    let codes: BTreeSet<String> = json["diagnostics"]
        .as_array()
        .expect("diagnostics")
        .iter()
        .filter_map(|d| d["code"].as_str().map(str::to_string))
        .collect();
    let want: BTreeSet<String> = ["E040", "E041", "E042", "E048"]
        .into_iter()
        .map(String::from)
        .collect();
    assert_eq!(codes, want);
    assert!(!stdout(&o).contains("hunter2"));

    let o = opsplan_in(
        &repo_root(),
        &[
            "validate",
            "tests/fixtures/library/params-plan.yaml",
            "--params",
            "tests/fixtures/library/envs/staging.yaml",
        ],
    );
    assert_eq!(code(&o), 0, "{}", stderr(&o));
}

#[test]
fn the_example_ops_repository_checks_from_a_temporary_folder() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let src = repo_root().join("examples/ops-repo");
    let o = Command::new("cp")
        .arg("-a")
        .arg(src.join("."))
        .arg(tmp.path())
        .output()
        .expect("cp");
    assert!(o.status.success(), "{}", stderr(&o));
    let o = Command::new("bash")
        .arg(tmp.path().join("ci/check.sh"))
        .arg("previews")
        .env("OPSPLAN", env!("CARGO_BIN_EXE_opsplan"))
        .env("NO_COLOR", "1")
        .env_remove("OPENC3_TSDB_PASSWORD")
        .output()
        .expect("run ci/check.sh");
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    let err = stderr(&o);
    for line in [
        "plans/restore-app.yaml: ok",
        "params/restore-app/prod.yaml: ok",
        "params/restore-app/staging.yaml: ok",
        "plans/restore-mimir.yaml: ok",
        "params/restore-mimir/prod.yaml: ok",
        "params/restore-mimir/staging.yaml: ok",
        "builtin:cosmos7/backup.yaml: ok",
        "params/cosmos7-backup/prod.yaml: ok",
        "params/cosmos7-backup/staging.yaml: ok",
    ] {
        assert!(err.lines().any(|l| l == line), "no `{line}` in:\n{err}");
    }
    for env in ["staging", "prod"] {
        let md =
            std::fs::read_to_string(tmp.path().join(format!("previews/restore-mimir-{env}.md")))
                .expect("a rendered preview");
        assert!(md.contains("### Plan `acme-restore-mimir`"), "{md}");
        assert!(md.contains("`restore.upload`"), "{md}");
        assert!(md.contains("`s3_secret_key` | `********` | file"), "{md}");
    }
}
