//! A plan file that is missing, a folder, or not readable is reported the same way by every
//! command that reads one (run, preview, graph, validate, drill, plans diff): one line
//! `error[E001]: cannot read plan file PATH: REASON`, its help, exit code 2, nothing run and
//! nothing on stdout.

use opsplan_testkit::bin;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::Path;

const MISSING: &str = "error[E001]: cannot read plan file missing.yaml: no such file, and no \
                       shipped plan of that name\n  help: `opsplan plans` lists the shipped plans\n";
const FOLDER: &str = "error[E001]: cannot read plan file folder: it is a folder\n  help: name a \
                      plan file in it (`opsplan validate` searches folders)\n";
const DENIED: &str = "error[E001]: cannot read plan file secret.yaml: permission denied\n";

/// Runs `opsplan ARGS` in `dir`, as `nobody` when this test runs as root (so that a mode of
/// 000 really denies reading).
fn opsplan(dir: &Path, args: &[&str]) -> bin::Ran {
    bin::run({
        let mut c = bin::command(dir);
        c.args(args).current_dir(dir);
        // A folder this test made belongs to whoever runs it.
        if std::fs::metadata(dir).is_ok_and(|m| m.uid() == 0) {
            c.uid(65534).gid(65534);
        }
        c
    })
}

#[test]
fn every_command_reports_a_missing_a_folder_and_an_unreadable_plan_file_alike() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let dir = tmp.path();
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o777)).expect("chmod");
    std::fs::create_dir(dir.join("folder")).expect("mkdir");
    let ok = "apiVersion: opsplan/v1\nkind: Plan\nmetadata: {name: ok}\nsteps: []\n";
    std::fs::write(dir.join("ok.yaml"), ok).expect("write");
    std::fs::write(dir.join("secret.yaml"), ok).expect("write");
    std::fs::set_permissions(
        dir.join("secret.yaml"),
        std::fs::Permissions::from_mode(0o000),
    )
    .expect("chmod");

    let mut mismatches = Vec::new();
    for (file, expected) in [
        ("missing.yaml", MISSING),
        ("folder", FOLDER),
        ("secret.yaml", DENIED),
    ] {
        let cases: [(Vec<&str>, String); 7] = [
            (vec!["run", file], expected.to_string()),
            (vec!["preview", file], expected.to_string()),
            (vec!["graph", file], expected.to_string()),
            (
                vec!["drill", file, "ok.yaml", "--target-param", "x"],
                expected.to_string(),
            ),
            (
                vec!["drill", "ok.yaml", file, "--target-param", "x"],
                expected.to_string(),
            ),
            (
                vec!["validate", file],
                match file {
                    // A folder is searched by validate: its own error says none was found.
                    "folder" => "error: no opsplan files in folder; a plan file has \
                                 `apiVersion: opsplan/v1` at its top\n"
                        .to_string(),
                    _ => expected.to_string(),
                },
            ),
            (
                vec!["plans", "diff", file],
                // A copy to compare is a file, never a shipped plan's name: no help.
                expected
                    .lines()
                    .next()
                    .map(|l| format!("{}\n", l.replace(", and no shipped plan of that name", "")))
                    .unwrap_or_default(),
            ),
        ];
        for (args, want) in cases {
            let ran = opsplan(dir, &args);
            if (ran.code, ran.stdout.as_str(), ran.stderr.as_str()) != (2, "", want.as_str()) {
                mismatches.push(format!(
                    "opsplan {}: exit {}\n  stdout: {:?}\n  stderr: {:?}\n  wanted: {:?}",
                    args.join(" "),
                    ran.code,
                    ran.stdout,
                    ran.stderr,
                    want
                ));
            }
        }
    }
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
}
