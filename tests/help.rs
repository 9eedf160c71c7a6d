//! `--help`: every command shows examples, every argument has a description, the common
//! flags have short forms, and `-q`/`-v` are global. `opsplan --help` and `opsplan run --help`
//! are snapshots.

use opsplan_testkit::bin;
use std::path::Path;

fn help(state: &Path, path: &[String], flag: &str) -> String {
    let ran = bin::run({
        let mut c = bin::command(state);
        c.args(path).arg(flag);
        c
    });
    ran.expect_code(0, &format!("{} {flag}", path.join(" ")));
    ran.stdout
}

/// The lines of one section (`Commands:`, `Arguments:`, `Options:`) of a help text.
fn section<'a>(text: &'a str, title: &str) -> Vec<&'a str> {
    text.lines()
        .skip_while(|l| *l != title)
        .skip(1)
        .take_while(|l| !l.is_empty())
        .collect()
}

/// Every command path: `[]`, `["run"]`, `["plans", "export"]`, … from the help texts
/// themselves, so a new command is covered without a change here.
fn command_paths(state: &Path) -> Vec<Vec<String>> {
    let mut paths = vec![Vec::new()];
    let mut i = 0;
    while i < paths.len() {
        let text = help(state, &paths[i], "-h");
        for line in section(&text, "Commands:") {
            let name = line.split_whitespace().next().unwrap_or_default();
            if name != "help" {
                let mut p = paths[i].clone();
                p.push(name.to_string());
                paths.push(p);
            }
        }
        i += 1;
    }
    paths
}

#[test]
fn every_command_shows_examples_and_describes_every_argument() {
    let state = tempfile::tempdir().expect("temp dir");
    let paths = command_paths(state.path());
    assert!(paths.len() > 20, "{paths:?}");
    let mut problems = Vec::new();
    for path in &paths {
        let name = format!("opsplan {}", path.join(" "));
        let text = help(state.path(), path, "-h");
        if !text.contains("\nExamples:\n") {
            problems.push(format!("{name}: no Examples section"));
        } else {
            let examples = section(&text, "Examples:");
            let mine = format!("  {}", name.trim_end());
            if !examples.iter().any(|l| l.starts_with(&mine)) {
                problems.push(format!("{name}: no example runs it: {examples:?}"));
            }
        }
        for lines in [section(&text, "Arguments:"), section(&text, "Options:")] {
            for (i, line) in lines.iter().enumerate() {
                // `  -s, --set <NAME=VALUE>  Set a param …`: the description follows two
                // spaces, or is on the next, further indented line when the flags are long.
                let rest = line.trim_start();
                let indent = line.len() - rest.len();
                if indent > 6 {
                    continue; // a description on a line of its own
                }
                let inline = rest.split_once("  ").map(|(_, d)| d.trim()).unwrap_or("");
                let next = lines
                    .get(i + 1)
                    .filter(|n| n.len() - n.trim_start().len() > 6);
                let described = !inline.is_empty() && !inline.starts_with('[')
                    || next.is_some_and(|n| !n.trim().starts_with('['));
                if !described {
                    problems.push(format!("{name}: `{rest}` has no description"));
                }
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn common_flags_have_short_forms_and_quiet_and_verbose_are_global() {
    let state = tempfile::tempdir().expect("temp dir");
    for (path, flags) in [
        (
            vec!["run"],
            &[
                "-s, --set",
                "-p, --params",
                "-y, --yes",
                "-f, --force",
                "-j, --max-parallel",
            ][..],
        ),
        (
            vec!["preview"],
            &["-s, --set", "-p, --params", "-o, --format"],
        ),
        (
            vec!["graph"],
            &["-s, --set", "-p, --params", "-o, --format"],
        ),
        (vec!["validate"], &["-W, --deny-warnings", "-o, --format"]),
        (vec!["resume"], &["-s, --set", "-y, --yes", "-f, --force"]),
        (vec!["runs"], &["-o, --format"]),
    ] {
        let path: Vec<String> = path.into_iter().map(String::from).collect();
        let text = help(state.path(), &path, "-h");
        for flag in flags.iter().chain(&["-q, --quiet", "-v, --verbose"]) {
            assert!(
                text.contains(&format!("  {flag}")),
                "opsplan {} -h lacks {flag}:\n{text}",
                path.join(" ")
            );
        }
    }
}

#[test]
fn help_of_opsplan_and_of_run() {
    let state = tempfile::tempdir().expect("temp dir");
    insta::assert_snapshot!("help_opsplan", help(state.path(), &[], "--help"));
    insta::assert_snapshot!(
        "help_run",
        help(state.path(), &["run".to_string()], "--help")
    );
}
