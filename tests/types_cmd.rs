//! `opsplan types TYPE`: one type's arguments and outputs, the same text as its section of the
//! generated docs/reference/step-types.md; an unknown type is refused with a did-you-mean.

use opsplan_testkit::{bin, repo_root};

#[test]
fn types_prints_the_section_of_the_reference_page_for_every_type() {
    let page = std::fs::read_to_string(repo_root().join("docs/reference/step-types.md"))
        .expect("the generated step types page");
    let state = tempfile::tempdir().expect("temp dir");
    let listed = bin::run({
        let mut c = bin::command(state.path());
        c.arg("types");
        c
    });
    listed.ok();
    let names: Vec<&str> = listed
        .stdout
        .lines()
        .filter(|l| !l.starts_with(' '))
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert!(names.len() > 20, "{}", listed.stdout);
    for name in names {
        let ran = bin::run({
            let mut c = bin::command(state.path());
            c.args(["types", name]);
            c
        });
        ran.expect_code(0, name);
        assert!(
            ran.stdout.starts_with(&format!("## `{name}`\n")),
            "{name}: {}",
            ran.stdout
        );
        assert!(
            page.contains(ran.stdout.trim_end()),
            "{name}: `opsplan types {name}` differs from its section of step-types.md:\n{}",
            ran.stdout
        );
    }
}

#[test]
fn an_unknown_type_is_refused_with_the_closest_name() {
    let state = tempfile::tempdir().expect("temp dir");
    let ran = bin::run({
        let mut c = bin::command(state.path());
        c.args(["types", "fs.snyc"]);
        c
    });
    ran.expect_code(2, "types fs.snyc");
    assert_eq!(
        ran.stderr,
        "error: no step type `fs.snyc`; did you mean `fs.sync`? (`opsplan types` lists them)\n"
    );
    assert_eq!(ran.stdout, "");
}
