//! Files generated from the command line's own definition: shell completions (clap_complete)
//! and man pages (clap_mangen), committed under docs/ and checked current in CI the way the
//! schema and the reference pages are.

use clap::CommandFactory;
use clap_complete::Shell;
use opsplan_run::exit;
use std::path::Path;

/// The shells whose completion scripts are committed, and the file each one reads.
pub(super) const COMMITTED_SHELLS: [(Shell, &str); 3] = [
    (Shell::Bash, "opsplan.bash"),
    (Shell::Zsh, "_opsplan"),
    (Shell::Fish, "opsplan.fish"),
];

fn command() -> clap::Command {
    let mut cmd = super::Cli::command();
    cmd.build();
    cmd
}

/// The completion script of one shell.
pub(super) fn completion(shell: Shell) -> String {
    let mut cmd = command();
    let mut buf = Vec::new();
    clap_complete::generate(shell, &mut cmd, "opsplan", &mut buf);
    String::from_utf8_lossy(&buf).into_owned()
}

/// Every committed completion script: (file name, text).
pub(super) fn completions() -> Vec<(String, String)> {
    COMMITTED_SHELLS
        .iter()
        .map(|(shell, file)| ((*file).to_string(), completion(*shell)))
        .collect()
}

/// The man pages: `opsplan.1` and one `opsplan-COMMAND.1` per (visible) subcommand, at any
/// depth (`opsplan-plans-export.1`).
pub(super) fn man_pages() -> Result<Vec<(String, String)>, std::io::Error> {
    fn walk(cmd: clap::Command, out: &mut Vec<(String, String)>) -> Result<(), std::io::Error> {
        // clap's own `help` subcommands get no page: `opsplan help run` is `opsplan run --help`.
        let subs = cmd
            .get_subcommands()
            .filter(|s| !s.is_hide_set() && s.get_name() != "help");
        for sub in subs.cloned().collect::<Vec<_>>() {
            walk(sub, out)?;
        }
        let man = clap_mangen::Man::new(cmd);
        let mut buf = Vec::new();
        man.render(&mut buf)?;
        out.push((
            man.get_filename(),
            String::from_utf8_lossy(&buf).into_owned(),
        ));
        Ok(())
    }
    let mut pages = Vec::new();
    walk(command(), &mut pages)?;
    pages.sort();
    Ok(pages)
}

/// The man page of `opsplan` itself, for `opsplan man` without --dir.
pub(super) fn main_man_page() -> Result<String, std::io::Error> {
    let mut buf = Vec::new();
    clap_mangen::Man::new(command()).render(&mut buf)?;
    Ok(String::from_utf8_lossy(&buf).into_owned())
}

/// Writes `files` into `dir`, or with `check` compares them with what is there: a file that
/// differs or is missing is stale, and so is a file in `dir` that would not be generated
/// (`owned` says which names in `dir` are generated ones, so a README beside them is left
/// alone). `regenerate` is the command that rewrites them, named in the message.
pub(super) fn write_or_check(
    dir: &Path,
    files: &[(String, String)],
    check: bool,
    owned: impl Fn(&str) -> bool,
    regenerate: &str,
) -> i32 {
    if !check {
        for (name, text) in files {
            let path = dir.join(name);
            if let Err(e) = std::fs::create_dir_all(dir).and_then(|_| std::fs::write(&path, text)) {
                errln!("error: cannot write {}: {e}", path.display());
                return exit::RUN_FAILED;
            }
        }
        return exit::OK;
    }
    let mut stale = false;
    for (name, text) in files {
        let path = dir.join(name);
        match std::fs::read_to_string(&path) {
            Ok(existing) if existing == *text => {}
            Ok(_) => {
                errln!(
                    "{} is stale; regenerate it with `{regenerate}`",
                    path.display()
                );
                stale = true;
            }
            Err(e) => {
                errln!(
                    "{} cannot be read ({e}); generate it with `{regenerate}`",
                    path.display()
                );
                stale = true;
            }
        }
    }
    if let Ok(entries) = std::fs::read_dir(dir) {
        let mut extra: Vec<String> = entries
            .filter_map(Result::ok)
            .filter_map(|e| e.file_name().to_str().map(str::to_string))
            .filter(|n| owned(n) && !files.iter().any(|(f, _)| f == n))
            .collect();
        extra.sort();
        for name in extra {
            errln!(
                "{} is not generated any more (its command is gone); remove it",
                dir.join(name).display()
            );
            stale = true;
        }
    }
    if stale {
        exit::RUN_FAILED
    } else {
        exit::OK
    }
}

/// `opsplan completions [SHELL] [--dir DIR [--check]]`.
pub(super) fn cmd_completions(shell: Option<Shell>, dir: Option<&Path>, check: bool) -> i32 {
    match (shell, dir) {
        (Some(shell), _) => {
            out!("{}", completion(shell));
            exit::OK
        }
        (None, Some(dir)) => write_or_check(
            dir,
            &completions(),
            check,
            |n| COMMITTED_SHELLS.iter().any(|(_, f)| *f == n),
            &format!("opsplan completions --dir {}", dir.display()),
        ),
        (None, None) => {
            errln!("error: name a shell (bash, zsh, fish, elvish, powershell), or --dir DIR to write the committed scripts");
            exit::INVALID
        }
    }
}

/// `opsplan man [--dir DIR [--check]]`.
pub(super) fn cmd_man(dir: Option<&Path>, check: bool) -> i32 {
    let Some(dir) = dir else {
        return match main_man_page() {
            Ok(page) => {
                out!("{page}");
                exit::OK
            }
            Err(e) => {
                errln!("error: cannot render the man page: {e}");
                exit::RUN_FAILED
            }
        };
    };
    match man_pages() {
        Ok(pages) => write_or_check(
            dir,
            &pages,
            check,
            |n| n.starts_with("opsplan") && n.ends_with(".1"),
            &format!("opsplan man --dir {}", dir.display()),
        ),
        Err(e) => {
            errln!("error: cannot render the man pages: {e}");
            exit::RUN_FAILED
        }
    }
}
