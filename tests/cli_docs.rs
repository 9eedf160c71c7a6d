//! The command line's own documents: the committed shell completions (docs/completions) and
//! man pages (docs/man) are what the binary generates, and `--check` names a stale, missing
//! or left-over file (CI runs the same check, .ci/test).

use opsplan_testkit::{bin, repo_root};
use std::path::Path;

fn opsplan(state: &Path, args: &[&str]) -> bin::Ran {
    bin::run({
        let mut c = bin::command(state);
        c.args(args);
        c
    })
}

#[test]
fn the_committed_completions_and_man_pages_are_current() {
    let state = tempfile::tempdir().expect("temp dir");
    let root = repo_root();
    for (cmd, dir, regenerate) in [
        (
            "completions",
            "docs/completions",
            "opsplan completions --dir docs/completions",
        ),
        ("man", "docs/man", "opsplan man --dir docs/man"),
    ] {
        let dir = root.join(dir);
        let dir = dir.to_str().expect("a UTF-8 path");
        let ran = opsplan(state.path(), &[cmd, "--dir", dir, "--check"]);
        assert_eq!(
            (ran.code, ran.stderr.as_str()),
            (0, ""),
            "{dir} is stale: regenerate it with `cargo run -- {}`",
            regenerate.trim_start_matches("opsplan ")
        );
    }
}

#[test]
fn each_committed_completion_script_is_the_one_its_shell_gets_on_stdout() {
    let state = tempfile::tempdir().expect("temp dir");
    for (shell, file, marker) in [
        ("bash", "opsplan.bash", "complete -F _opsplan"),
        ("zsh", "_opsplan", "#compdef opsplan"),
        ("fish", "opsplan.fish", "complete -c opsplan"),
    ] {
        let ran = opsplan(state.path(), &["completions", shell]);
        ran.expect_code(0, shell);
        let committed = std::fs::read_to_string(repo_root().join("docs/completions").join(file))
            .expect("a committed completion script");
        assert_eq!(ran.stdout, committed, "{shell}");
        assert!(ran.stdout.contains(marker), "{shell}: {}", ran.stdout);
        // Every command is offered.
        for command in [
            "validate", "preview", "graph", "run", "resume", "runs", "drill",
        ] {
            assert!(ran.stdout.contains(command), "{shell} lacks {command}");
        }
    }
}

#[test]
fn check_names_a_changed_a_missing_and_a_left_over_file() {
    let state = tempfile::tempdir().expect("temp dir");
    let copy = tempfile::tempdir().expect("temp dir");
    let dir = copy.path().join("man");
    let d = dir.to_str().expect("a UTF-8 path");
    opsplan(state.path(), &["man", "--dir", d]).ok();
    std::fs::write(dir.join("opsplan-run.1"), "old text\n").expect("write");
    std::fs::remove_file(dir.join("opsplan-preview.1")).expect("remove");
    std::fs::write(dir.join("opsplan-old.1"), "a removed command\n").expect("write");
    std::fs::write(dir.join("README.md"), "not generated: left alone\n").expect("write");
    let ran = opsplan(state.path(), &["man", "--dir", d, "--check"]);
    ran.expect_code(1, "man --check of a stale folder");
    assert_eq!(
        ran.stderr,
        format!(
            "{d}/opsplan-preview.1 cannot be read (No such file or directory (os error 2)); generate it with `opsplan man --dir {d}`\n\
             {d}/opsplan-run.1 is stale; regenerate it with `opsplan man --dir {d}`\n\
             {d}/opsplan-old.1 is not generated any more (its command is gone); remove it\n"
        )
    );

    let dir = copy.path().join("completions");
    let d = dir.to_str().expect("a UTF-8 path");
    opsplan(state.path(), &["completions", "--dir", d]).ok();
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .expect("read")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["_opsplan", "opsplan.bash", "opsplan.fish"]);
    std::fs::write(dir.join("_opsplan"), "#compdef opsplan\n").expect("write");
    let ran = opsplan(state.path(), &["completions", "--dir", d, "--check"]);
    ran.expect_code(1, "completions --check of a stale folder");
    assert_eq!(
        ran.stderr,
        format!("{d}/_opsplan is stale; regenerate it with `opsplan completions --dir {d}`\n")
    );
}
