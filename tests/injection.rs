//! Params reach `shell` scripts as data, never as code: a value full of shell syntax
//! (`$(…)`, backticks, quotes, `;`, newlines) of every param type goes through `env:` and
//! through the `shell_quote` filter intact and runs nothing; the shipped example plan
//! does not run a substitution given in `--set dest=…`; and `validate` warns (W104) where
//! a plan pastes a template into a script unquoted.

// Test helpers fail the test loudly on setup errors; that is what unwrap is for here.
#![allow(clippy::unwrap_used)]

use crate::durable_common;

use durable_common::*;
use std::path::Path;

/// A value that runs `touch <dir>/PWNED-<tag>` if a shell ever parses it as code.
fn payload(dir: &Path, tag: &str) -> String {
    let t = dir.join(format!("PWNED-{tag}"));
    let t = t.display();
    format!("a$(touch {t})b`touch {t}`c'd\"e;touch {t};\\$HOME")
}

fn pwned(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("PWNED"))
        .collect()
}

#[test]
fn every_param_type_reaches_a_script_as_data() {
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let plan = repo("tests/fixtures/injection/every-param-type.yaml")
        .display()
        .to_string();
    let s = payload(w, "s");
    let p = format!("/tmp/{}", payload(w, "p"));
    let u = format!(
        "http://h/{}",
        payload(w, "u").replace(['"', '`', ' ', '\\'], "")
    );
    let l = format!("x$(touch {0}/PWNED-l), y`touch {0}/PWNED-l2`", w.display());
    let secret = format!("{}-long-enough", payload(w, "k"));
    let sets = [
        format!("dir={}", w.display()),
        format!("text={s}"),
        format!("where={p}"),
        format!("link={u}"),
        format!("items={l}"),
    ];
    let mut args = vec!["run", plan.as_str()];
    for kv in &sets {
        args.extend(["--set", kv.as_str()]);
    }
    let mut cmd = opsplan(w, &args);
    cmd.env("OPSPLAN_TEST_INJECT_SECRET", &secret);
    let r = run(cmd);
    assert_eq!(r.code, 0, "{}", r.all());
    assert_eq!(pwned(w), Vec::<String>::new(), "{}", r.all());
    let items: Vec<String> = l.split(',').map(|x| x.trim().to_string()).collect();
    let env = std::fs::read_to_string(w.join("env.txt")).unwrap();
    assert_eq!(
        env,
        format!("{s}\n{p}\n{u}\n{}\n7\ntrue\n90s\n", items.join(","))
    );
    assert_eq!(
        std::fs::read_to_string(w.join("secret-env.txt")).unwrap(),
        secret
    );
    let quoted = std::fs::read_to_string(w.join("quote.txt")).unwrap();
    assert_eq!(
        quoted,
        format!("{s}\n{p}\n{u}\n{}\n7\ntrue\n90s\n", items.join("\n"))
    );
    // The fixture passes everything as data: no warning.
    let v = run(opsplan(w, &["validate", &plan, "--deny-warnings"]));
    assert_eq!(v.code, 0, "{}", v.all());
}

#[test]
fn the_example_plan_does_not_run_a_substitution_in_dest() {
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let source = w.join("src");
    std::fs::create_dir(&source).unwrap();
    std::fs::write(source.join("a.txt"), "a").unwrap();
    let dest = format!("{}/x$(touch {}/PWNED)", w.display(), w.display());
    let plan = repo("plans/examples/archive-folder.yaml")
        .display()
        .to_string();
    let r = run(opsplan(
        w,
        &[
            "run",
            &plan,
            "--set",
            &format!("source={}", source.display()),
            "--set",
            &format!("dest={dest}"),
        ],
    ));
    assert_eq!(r.code, 0, "{}", r.all());
    assert_eq!(pwned(w), Vec::<String>::new(), "{}", r.all());
    assert!(Path::new(&dest).join("archive.tar.gz").is_file());
}

#[test]
fn validate_flags_templates_pasted_into_scripts() {
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let plan = w.join("plan.yaml");
    std::fs::write(
        &plan,
        "apiVersion: opsplan/v1\nkind: Plan\nmetadata:\n  name: x\nparams:\n  dest: {type: path, default: /tmp/x}\nsteps:\n  - id: a\n    type: shell\n    with:\n      script: |\n        mkdir -p \"{{ params.dest }}\"\n        echo {{ params.dest | shell_quote }} {{ params.dest | length }}\n    undo:\n      type: shell\n      with:\n        script: rm -rf '{{ params.dest | trim }}'\n",
    )
    .unwrap();
    let r = run(opsplan(
        w,
        &["validate", plan.to_str().unwrap(), "--format", "json"],
    ));
    let json: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    let w104: Vec<&serde_json::Value> = json["diagnostics"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["code"] == "W104")
        .collect();
    assert_eq!(w104.len(), 2, "{}", r.stdout);
    assert_eq!(w104[0]["line"], 12);
    assert_eq!(w104[1]["line"], 17);
}
