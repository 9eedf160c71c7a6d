//! `opsplan new` (issue 17, item 6): a starter plan, or an ops repository, that validates as
//! written. Every case runs the binary from a temporary folder that holds only the binary
//! (in `bin/`), as an installed opsplan runs: the starter plan and the ops repository come
//! from what is built into it (examples/ops-repo/, embedded at build time).

use opsplan_testkit::bin::{self, Ran};
use opsplan_testkit::repo_root;
use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A temporary folder with only the binary in it (`bin/opsplan`).
struct Bare {
    dir: tempfile::TempDir,
    exe: PathBuf,
}

impl Bare {
    fn new() -> Bare {
        let dir = tempfile::tempdir().expect("tempdir");
        let exe = bin::install_into(dir.path());
        Bare { dir, exe }
    }
    fn path(&self) -> &Path {
        self.dir.path()
    }
    /// `opsplan ARGS` run in the folder, with no secret in its environment.
    fn opsplan(&self, args: &[&str]) -> Ran {
        let mut cmd = bin::command_of(&self.exe, &self.path().join(".state"));
        cmd.args(args)
            .current_dir(self.path())
            .env_remove("APP_API_TOKEN")
            .env_remove("OPENC3_TSDB_PASSWORD");
        bin::run(cmd)
    }
    fn read(&self, rel: &str) -> String {
        std::fs::read_to_string(self.path().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
    }
}

/// Every file below `dir` as (path relative to it with `/`, (text, executable)), but the
/// folders named in `skip` (first component).
fn tree(dir: &Path, skip: &[&str]) -> BTreeMap<String, (String, bool)> {
    let mut out = BTreeMap::new();
    for entry in walkdir::WalkDir::new(dir) {
        let entry = entry.expect("walk");
        if !entry.file_type().is_file() {
            continue;
        }
        let rel = entry
            .path()
            .strip_prefix(dir)
            .expect("below dir")
            .components()
            .map(|c| c.as_os_str().to_string_lossy().into_owned())
            .collect::<Vec<_>>();
        if rel.len() > 1 && skip.contains(&rel[0].as_str()) {
            continue;
        }
        let mode = entry.metadata().expect("metadata").permissions().mode();
        let text = std::fs::read_to_string(entry.path()).expect("a text file");
        out.insert(rel.join("/"), (text, mode & 0o111 != 0));
    }
    out
}

#[test]
fn new_plan_validates_with_deny_warnings_and_previews_from_a_bare_folder() {
    let bare = Bare::new();
    let ran = bare.opsplan(&["new", "plan", "x.yaml"]);
    ran.ok();
    assert_eq!(
        ran.stderr,
        "wrote x.yaml\n\
         wrote schemas/plan.v1.json\n\
         plan `x` for system `app`\n\
         its $schema line names the schema written beside it\n\
         next: opsplan validate x.yaml --deny-warnings; opsplan preview x.yaml\n"
    );
    let plan = bare.read("x.yaml");
    assert!(
        plan.starts_with("# yaml-language-server: $schema=schemas/plan.v1.json\n"),
        "{plan}"
    );
    // The schema it names is this binary's.
    let schema = bare.opsplan(&["schema"]);
    schema.ok();
    assert_eq!(bare.read("schemas/plan.v1.json"), schema.stdout);

    let v = bare.opsplan(&["validate", "x.yaml", "--deny-warnings"]);
    v.ok();
    assert_eq!(
        v.stderr,
        "x.yaml: ok\n1 file(s): 0 error(s), 0 warning(s)\n"
    );

    // No secret is set: the token's file source is left unread by a preview.
    let p = bare.opsplan(&["preview", "x.yaml", "--fail-at", "copy-backup"]);
    p.ok();
    insta::assert_snapshot!("new_plan_preview", p.stdout);
}

#[test]
fn new_plan_takes_name_and_system_and_finds_the_repository_schema() {
    let bare = Bare::new();
    bare.opsplan(&["new", "plan", "first.yaml"]).ok();
    let ran = bare.opsplan(&[
        "new",
        "plan",
        "plans/team/db.yaml",
        "--name",
        "acme-restore-db",
        "--system",
        "postgres",
    ]);
    ran.ok();
    let root = bare.path().canonicalize().expect("canonical tmp");
    assert_eq!(
        ran.stderr,
        format!(
            "wrote plans/team/db.yaml\n\
             plan `acme-restore-db` for system `postgres`\n\
             its $schema line names {}\n\
             next: opsplan validate plans/team/db.yaml --deny-warnings; opsplan preview plans/team/db.yaml\n",
            root.join("schemas/plan.v1.json").display()
        )
    );
    let plan = bare.read("plans/team/db.yaml");
    assert!(
        plan.starts_with("# yaml-language-server: $schema=../../schemas/plan.v1.json\n"),
        "{plan}"
    );
    assert!(plan.contains("\n  name: acme-restore-db\n"), "{plan}");
    assert!(plan.contains("\n  system: postgres\n"), "{plan}");
    assert!(!bare.path().join("plans/team/schemas").exists());
    bare.opsplan(&["validate", "plans/team/db.yaml", "--deny-warnings"])
        .ok();
    let p = bare.opsplan(&["preview", "plans/team/db.yaml"]);
    p.ok();
    assert!(
        p.stdout
            .starts_with("Plan acme-restore-db 0.1.0 for postgres >=1.0, <2"),
        "{}",
        p.stdout
    );
}

#[test]
fn new_refuses_to_overwrite_naming_the_file_and_writes_nothing() {
    let bare = Bare::new();
    bare.opsplan(&["new", "plan", "x.yaml"]).ok();
    std::fs::write(bare.path().join("x.yaml"), "edited\n").expect("edit");
    std::fs::create_dir_all(bare.path().join("repo")).expect("mkdir");
    std::fs::write(bare.path().join("repo/README.md"), "ours\n").expect("write");
    // (command, the one message, the file left as it was)
    let cases: &[(&[&str], &str, &str, &str)] = &[
        (
            &["new", "plan", "x.yaml"],
            "error[E001]: x.yaml exists; nothing was written\n  help: pass --force to overwrite, or choose another path\n",
            "x.yaml",
            "edited\n",
        ),
        (
            &["new", "ops-repo", "repo"],
            "error[E001]: repo/README.md exists; nothing was written\n  help: pass --force to overwrite, or choose another path\n",
            "repo/README.md",
            "ours\n",
        ),
    ];
    for (args, message, file, kept) in cases {
        let ran = bare.opsplan(args);
        ran.expect_code(2, &args.join(" "));
        assert_eq!(ran.stderr, *message, "{args:?}");
        assert_eq!(bare.read(file), *kept, "{args:?}");
    }
    assert!(
        !bare.path().join("repo/ci").exists(),
        "nothing else written"
    );
    // A name that cannot be a file name is refused before anything is written.
    let ran = bare.opsplan(&["new", "ops-repo", "other", "--name", "../x"]);
    ran.expect_code(2, "a bad --name");
    assert_eq!(
        ran.stderr,
        "error[E013]: --name `../x` is not a name: use letters, digits, `-`, `_` and `.`, starting with a letter\n"
    );
    assert!(!bare.path().join("other").exists());
    // --force overwrites.
    bare.opsplan(&["new", "plan", "x.yaml", "--force"]).ok();
    assert!(bare.read("x.yaml").starts_with("# yaml-language-server:"));
    bare.opsplan(&["new", "ops-repo", "repo", "--force"]).ok();
    assert_ne!(bare.read("repo/README.md"), "ours\n");
}

#[test]
fn new_ops_repo_writes_the_example_file_for_file() {
    let bare = Bare::new();
    bare.opsplan(&["new", "ops-repo", "repo"]).ok();
    let example = repo_root().join("examples/ops-repo");
    // The example's .gitignore names what a local check leaves there.
    let want = tree(&example, &["previews", ".previews"]);
    let got = tree(&bare.path().join("repo"), &[]);
    assert_eq!(
        got.keys().collect::<Vec<_>>(),
        want.keys().collect::<Vec<_>>()
    );
    for (path, (text, executable)) in &want {
        let (t, x) = &got[path];
        assert!(t == text, "{path} differs from examples/ops-repo/{path}");
        assert_eq!(x, executable, "{path}: executable bit");
    }
}

#[test]
fn new_ops_repo_with_a_name_passes_its_own_ci_check() {
    let bare = Bare::new();
    let ran = bare.opsplan(&[
        "new",
        "ops-repo",
        "repo",
        "--name",
        "acme-restore-db",
        "--system",
        "db",
    ]);
    ran.ok();
    assert!(
        ran.stderr
            .contains("wrote repo/plans/acme-restore-db.yaml\n"),
        "{}",
        ran.stderr
    );
    let repo = bare.path().join("repo");
    let files = tree(&repo, &[]);
    for (path, (text, _)) in &files {
        assert!(
            !text.contains("restore-app"),
            "{path} still names restore-app"
        );
    }
    assert!(files.contains_key("params/acme-restore-db/staging.yaml"));
    let plan = &files["plans/acme-restore-db.yaml"].0;
    assert!(
        plan.contains("\n  name: acme-restore-db\n  system: db\n"),
        "{plan}"
    );

    let o = Command::new("bash")
        .arg(repo.join("ci/check.sh"))
        .arg("previews")
        .current_dir(bare.path())
        .env("OPSPLAN", &bare.exe)
        .env("NO_COLOR", "1")
        .env_remove("APP_API_TOKEN")
        .env_remove("OPENC3_TSDB_PASSWORD")
        .output()
        .expect("run ci/check.sh");
    let (out, err) = (
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr),
    );
    assert!(o.status.success(), "{out}{err}");
    for line in [
        "plans/acme-restore-db.yaml: ok",
        "params/acme-restore-db/prod.yaml: ok",
        "params/acme-restore-db/staging.yaml: ok",
        "plans/restore-mimir.yaml: ok",
    ] {
        assert!(err.lines().any(|l| l == line), "no `{line}` in:\n{err}");
    }
    assert!(
        !err.contains("stale"),
        "the schema is this binary's:\n{err}"
    );
    for env in ["staging", "prod"] {
        let md = std::fs::read_to_string(repo.join(format!("previews/acme-restore-db-{env}.md")))
            .expect("a rendered preview");
        assert!(md.contains("### Plan `acme-restore-db`"), "{md}");
        assert!(md.contains("`api_token` | `********` | file"), "{md}");
    }
}
