//! Snapshots of `opsplan preview` and `opsplan graph` on the shipped example plan, run from
//! the repository root so the plan path in the output is stable.

use std::path::Path;
use std::process::Command;

const PLAN: &str = "plans/examples/archive-folder.yaml";

/// Runs the binary from the repository root; returns stdout, asserting exit 0.
fn opsplan(args: &[&str]) -> String {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let out = Command::new(env!("CARGO_BIN_EXE_opsplan"))
        .args(args)
        .current_dir(&root)
        .env("NO_COLOR", "1")
        .output()
        .expect("run opsplan");
    let stdout = String::from_utf8(out.stdout).expect("utf-8 stdout");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "opsplan {args:?} failed ({}):\n{stderr}",
        out.status
    );
    assert!(
        stderr.is_empty(),
        "opsplan {args:?} printed to stderr:\n{stderr}"
    );
    stdout
}

fn json(args: &[&str]) -> serde_json::Value {
    serde_json::from_str(&opsplan(args)).expect("preview --format json prints JSON")
}

#[test]
fn preview_text() {
    insta::assert_snapshot!(opsplan(&["preview", PLAN]));
}

#[test]
fn preview_json() {
    insta::assert_json_snapshot!(json(&["preview", PLAN, "--format", "json"]));
}

#[test]
fn preview_fail_at_checksum_text() {
    insta::assert_snapshot!(opsplan(&["preview", PLAN, "--fail-at", "checksum"]));
}

#[test]
fn preview_fail_at_checksum_json() {
    let v = json(&["preview", PLAN, "--fail-at", "checksum", "--format", "json"]);
    insta::assert_json_snapshot!(v["fail_at"]);
}

#[test]
fn preview_fail_at_flaky_check_text() {
    insta::assert_snapshot!(opsplan(&["preview", PLAN, "--fail-at", "flaky-check"]));
}

#[test]
fn preview_fail_at_flaky_check_json() {
    let v = json(&[
        "preview",
        PLAN,
        "--fail-at",
        "flaky-check",
        "--format",
        "json",
    ]);
    insta::assert_json_snapshot!(v["fail_at"]);
}

#[test]
fn preview_markdown() {
    insta::assert_snapshot!(opsplan(&["preview", PLAN, "--format", "markdown"]));
}

#[test]
fn preview_markdown_fail_at_checksum() {
    insta::assert_snapshot!(opsplan(&[
        "preview",
        PLAN,
        "--fail-at",
        "checksum",
        "--format",
        "markdown"
    ]));
}

#[test]
fn graph_dot() {
    insta::assert_snapshot!(opsplan(&["graph", PLAN, "--format", "dot"]));
}

#[test]
fn graph_mermaid() {
    insta::assert_snapshot!(opsplan(&["graph", PLAN, "--format", "mermaid"]));
}

/// The failure path in the JSON is the same as the rollback map's entry for that step, and
/// the text shows it in order.
#[test]
fn fail_at_agrees_with_the_rollback_map() {
    for step in [
        "prepare",
        "mark-in-progress",
        "flaky-check",
        "archive",
        "checksum",
        "fail-on-purpose",
        "clear-marker",
        "report",
    ] {
        let v = json(&["preview", PLAN, "--fail-at", step, "--format", "json"]);
        let entry = v["rollback_map"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["step"] == step)
            .unwrap_or_else(|| panic!("{step} not in the rollback map"));
        assert_eq!(v["fail_at"]["undo"], entry["undo"], "{step}");
        assert_eq!(v["fail_at"]["cleanup"], entry["cleanup"], "{step}");
    }
}

#[test]
fn fail_at_unknown_step_suggests_the_closest() {
    let stderr = refused_usage(&["preview", PLAN, "--fail-at", "checksun"]);
    assert!(stderr.contains("did you mean `checksum`?"), "{stderr}");
}

/// Runs the binary from the repository root; returns stderr, asserting exit 2 (usage).
fn refused_usage(args: &[&str]) -> String {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let out = Command::new(env!("CARGO_BIN_EXE_opsplan"))
        .args(args)
        .current_dir(&root)
        .output()
        .expect("run opsplan");
    assert_eq!(out.status.code(), Some(2), "opsplan {args:?}");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

mod rollback_map_property {
    //! The preview's rollback map is computed in one pass over the stages
    //! (`rollback::rollback_by_stage`); `--fail-at` simulates one failure directly, as the
    //! executor decides. On random DAGs with undo, resources, `always` and skipped steps,
    //! both must give the same undo and cleanup for every step.

    use opsplan_plan::source::Sources;
    use proptest::prelude::*;
    use std::fmt::Write;
    use std::sync::Arc;

    #[derive(Debug, Clone)]
    struct StepSpec {
        needs: u16,
        undo: bool,
        acquires: Option<u8>,
        releases: Option<u8>,
        always: bool,
        skipped: bool,
    }

    fn step_spec() -> impl Strategy<Value = StepSpec> {
        (
            any::<u16>(),
            any::<bool>(),
            proptest::option::of(0u8..3),
            proptest::option::of(0u8..3),
            proptest::bool::weighted(0.2),
            proptest::bool::weighted(0.2),
        )
            .prop_map(
                |(needs, undo, acquires, releases, always, skipped)| StepSpec {
                    needs,
                    undo,
                    acquires,
                    releases,
                    always,
                    skipped,
                },
            )
    }

    fn plan_text(specs: &[StepSpec]) -> String {
        let mut y =
            String::from("apiVersion: opsplan/v1\nkind: Plan\nmetadata: {name: random}\nsteps:\n");
        for (i, s) in specs.iter().enumerate() {
            let _ = writeln!(
                y,
                "  - id: s{i}\n    type: exec\n    with: {{argv: [/bin/true]}}"
            );
            // Sparse needs on earlier steps, so that stages hold several steps.
            let needs: Vec<String> = (0..i)
                .filter(|j| s.needs & (1 << (j % 16)) != 0 && (i + j) % 3 == 0)
                .map(|j| format!("s{j}"))
                .collect();
            if !needs.is_empty() {
                let _ = writeln!(y, "    needs: [{}]", needs.join(", "));
            }
            if s.undo {
                let _ = writeln!(y, "    undo: {{type: exec, with: {{argv: [/bin/true]}}}}");
            }
            if let Some(r) = s.acquires {
                let _ = writeln!(y, "    acquires: r{r}");
            }
            if let Some(r) = s.releases {
                let _ = writeln!(y, "    releases: r{r}");
            }
            if s.always {
                let _ = writeln!(y, "    always: true");
            }
            if s.skipped {
                let _ = writeln!(y, "    when: \"false\"");
            }
        }
        y
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 200, failure_persistence: None, ..ProptestConfig::default() })]
        #[test]
        fn rollback_map_equals_simulated_failures(specs in proptest::collection::vec(step_spec(), 1..14)) {
            let dir = tempfile::tempdir().expect("temp dir");
            let path = dir.path().join("plan.yaml");
            std::fs::write(&path, plan_text(&specs)).expect("write the plan");
            let mut sources = Sources::default();
            // Validation findings (an unreleased resource, a conditional release) do not
            // matter here: both computations must agree on whatever plan compiles.
            let (loaded, _diags, _) = opsplan_testkit::check_file(&path, &mut sources);
            let loaded = loaded.expect("the generated plan loads");
            let inputs = opsplan_plan::params::ParamInputs::default();
            let plan = opsplan_plan::compile::compile(&loaded, Arc::new(sources), &inputs, &[])
                .map_err(|d| format!("{d:?}"))
                .expect("the generated plan compiles");
            let map = opsplan_plan::preview::build(&plan, None).rollback_map;
            let skipped = specs.iter().filter(|s| s.skipped).count();
            prop_assert_eq!(map.len(), specs.len() - skipped);
            for entry in &map {
                let i = plan.index_of(&entry.step).expect("a step of the plan");
                let direct = opsplan_plan::preview::build(&plan, Some(i))
                    .fail_at
                    .expect("a failure path");
                prop_assert_eq!(&direct.undo, &entry.undo, "undo when {} fails", entry.step);
                prop_assert_eq!(&direct.cleanup, &entry.cleanup, "cleanup when {} fails", entry.step);
            }
        }
    }
}

/// An exit handler reads how the run went: preview shows `run.*` as decided at run time,
/// on the success path and on the failure path (`--fail-at`).
#[test]
fn preview_of_run_status_is_decided_at_run_time() {
    let plan = "tests/fixtures/run/exit-handler.yaml";
    let text = opsplan(&["preview", plan, "--set", "dir=/srv/backup"]);
    assert!(
        text.contains("⟨run status⟩|⟨run failed_step⟩|⟨run error⟩"),
        "{text}"
    );
    insta::assert_snapshot!(opsplan(&[
        "preview",
        plan,
        "--set",
        "dir=/srv/backup",
        "--fail-at",
        "work"
    ]));
}

/// A shipped plan with guards, a destructive step and conditional steps, as it goes into a
/// change ticket: the plan's and each step's description, a summary, no empty rollback rows;
/// both graphs with a legend and those steps marked.
#[test]
fn a_shipped_plan_for_a_change_ticket() {
    let set = [
        "hoss/restore",
        "--set",
        "archive=/srv/backups/hoss/hoss-backup.tar.gz",
        "--set",
        "hoss_dir=/home/hoss/.hoss",
        "--set",
        "server_dir=/home/hoss/server",
    ];
    let markdown = opsplan(&[&["preview"][..], &set, &["-o", "markdown"]].concat());
    assert!(markdown.contains("\nRestore a Hoss server from a hossadm archive"));
    assert!(
        markdown.contains("Destructive: `hossadm-restore`. Locks: `hoss-_home_hoss_.hoss`."),
        "{markdown}"
    );
    let rollback = markdown
        .split("**Rollback map**")
        .nth(1)
        .expect("a rollback map");
    assert!(
        rollback.lines().all(|l| !l.ends_with("|  |  |")),
        "an empty rollback row:\n{rollback}"
    );
    insta::assert_snapshot!("hoss_restore_markdown", markdown);

    let mermaid = opsplan(&[&["graph"][..], &set, &["-o", "mermaid"]].concat());
    let dot = opsplan(&[&["graph"][..], &set, &["-o", "dot"]].concat());
    for (graph, marks) in [
        (
            &mermaid,
            [
                "subgraph legend",
                "{{\"confirm-restore<br>(confirm)<br>[guard]\"}}",
                "[\"hossadm-restore<br>(shell)<br>[DESTRUCTIVE]\"]",
                "<br>[when]\"]",
            ],
        ),
        (
            &dot,
            [
                "subgraph cluster_legend",
                "label=\"confirm-restore\\n(confirm)\\n[guard]\", shape=hexagon",
                "[DESTRUCTIVE]\", color=red, penwidth=2",
                "\\n[when]\", style=dashed",
            ],
        ),
    ] {
        for mark in marks {
            assert!(graph.contains(mark), "no {mark}:\n{graph}");
        }
    }
    insta::assert_snapshot!("hoss_restore_mermaid", mermaid);
    insta::assert_snapshot!("hoss_restore_dot", dot);
}

const REFUSABLE: &str = "tests/fixtures/plans/refused-checkpoint.yaml";

/// A step with `refused_when` shows both rollback paths: a refusal releases nothing, any
/// other failure releases the checkpoint.
#[test]
fn preview_of_a_refusable_acquire_shows_both_paths() {
    insta::assert_snapshot!(opsplan(&["preview", REFUSABLE]));
}

#[test]
fn preview_fail_at_refused_text() {
    insta::assert_snapshot!(opsplan(&[
        "preview",
        REFUSABLE,
        "--fail-at",
        "checkpoint-create:refused"
    ]));
}

#[test]
fn fail_at_refused_releases_nothing_and_fail_at_otherwise_releases() {
    let refused = json(&[
        "preview",
        REFUSABLE,
        "--fail-at",
        "checkpoint-create:refused",
        "--format",
        "json",
    ]);
    assert_eq!(refused["fail_at"]["refused"], true);
    assert_eq!(refused["fail_at"]["cleanup"], serde_json::json!(["notify"]));
    assert_eq!(
        refused["fail_at"]["not_released"],
        serde_json::json!(["checkpoint"])
    );
    let entry = &refused["rollback_map"][0];
    assert_eq!(entry["step"], "checkpoint-create");
    assert_eq!(
        entry["if_refused"]["cleanup"],
        refused["fail_at"]["cleanup"]
    );
    let otherwise = json(&[
        "preview",
        REFUSABLE,
        "--fail-at",
        "checkpoint-create",
        "--format",
        "json",
    ]);
    assert_eq!(
        otherwise["fail_at"]["cleanup"],
        serde_json::json!(["checkpoint-release", "notify"])
    );
    assert!(otherwise["fail_at"].get("not_released").is_none());
    assert_eq!(entry["cleanup"], otherwise["fail_at"]["cleanup"]);
}

#[test]
fn fail_at_refused_on_a_step_without_refused_when_is_an_error() {
    let stderr = refused_usage(&["preview", REFUSABLE, "--fail-at", "copy:refused"]);
    assert!(
        stderr.contains("step `copy` has no `refused_when`"),
        "{stderr}"
    );
}

/// A run-time fan-out (`for_each` over a step's outputs) is one step in preview and graph,
/// "one step per item of ⟨steps.x.outputs.y⟩" with `⟨item⟩` in its arguments; `--fail-at`
/// on it means one of its items fails: the items that succeeded before it are undone.
#[test]
fn preview_of_a_run_time_fan_out() {
    let plan = "tests/fixtures/run/fan-out.yaml";
    let text = opsplan(&[
        "preview",
        plan,
        "--set",
        "dir=/srv/backup",
        "--fail-at",
        "backup",
    ]);
    assert!(
        text.contains("one step per item of ⟨steps.list_dbs.outputs.json.databases⟩"),
        "{text}"
    );
    assert!(
        text.contains("undo backup (each of its items that succeeded)"),
        "{text}"
    );
    insta::assert_snapshot!(text);
    let mermaid = opsplan(&[
        "graph",
        plan,
        "--set",
        "dir=/srv/backup",
        "--format",
        "mermaid",
    ]);
    assert!(
        mermaid.contains(
            "backup<br>(shell)<br>one step per item of ⟨steps.list_dbs.outputs.json.databases⟩"
        ),
        "{mermaid}"
    );
}
