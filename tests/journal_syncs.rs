//! How many `fdatasync` calls the journal makes for a chain of `/bin/true` steps, in
//! process, counted by the recorder (`RunOutcome::journal_syncs`): the durability rules of
//! docs/design/0003-journal-and-resume.md as numbers. A step that holds something or is not
//! rerun-safe pays one sync, shared between its `step_started` and the `step_finished` of
//! the step before it; a rerun-safe step that holds nothing pays none; the run's end pays
//! one. The journal still has every record (they are written at once, synced or not).

#![allow(clippy::unwrap_used)]

use opsplan_plan::params::ParamInputs;
use opsplan_plan::pipeline;
use opsplan_run::exec::events::{Phase, RunEvent, StepStatus};
use opsplan_run::journal::{state, store};
use opsplan_run::lock::file::FileLocks;
use opsplan_run::{JournalTarget, RunBuilder, RunStatus};
use std::sync::Arc;

const STEPS: usize = 40;

/// A chain of `STEPS` `/bin/true` steps; `extra(i)` adds lines to step `i` (1-based).
fn chain(extra: impl Fn(usize) -> String) -> String {
    let mut text =
        String::from("apiVersion: opsplan/v1\nkind: Plan\nmetadata: {name: syncs}\nsteps:\n");
    for i in 1..=STEPS {
        text.push_str(&format!(
            "  - id: t{i}\n    type: exec\n    with: {{argv: [/bin/true]}}\n"
        ));
        if i > 1 {
            text.push_str(&format!("    needs: [t{}]\n", i - 1));
        }
        text.push_str(&extra(i));
    }
    text
}

async fn syncs_of(plan_text: &str) -> u64 {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("plan.yaml");
    std::fs::write(&path, plan_text).unwrap();
    let registry = Arc::new(opsplan_steps::builtin());
    let plan = match pipeline::load_compiled(&path, &ParamInputs::default(), Vec::new(), &registry)
    {
        Ok(c) => Arc::new(c.plan),
        Err(e) => panic!("the test plan does not compile: {e:?}"),
    };
    let outcome = RunBuilder::new(plan)
        .journal(JournalTarget::New(dir.path().join("runs")))
        .locks(Arc::new(FileLocks::new(dir.path().join("locks"))))
        .signals(opsplan_run::Signals::None)
        .run()
        .await
        .unwrap();
    assert_eq!(outcome.status(), RunStatus::Succeeded);
    // Fewer syncs, not fewer records: each step started and finished on record.
    let journal = store::open(outcome.journal.as_deref().unwrap()).unwrap();
    let started = journal
        .records
        .iter()
        .filter(|r| {
            matches!(
                r.event,
                RunEvent::StepStarted {
                    phase: Phase::Forward,
                    ..
                }
            )
        })
        .count();
    assert_eq!(started, STEPS);
    let st = state::fold(&journal.records);
    assert_eq!(st.status, Some(RunStatus::Succeeded));
    for i in 1..=STEPS {
        let f = st.steps[&format!("t{i}")].forward.as_ref().unwrap();
        assert_eq!(f.status, Some(StepStatus::Succeeded), "t{i}");
    }
    outcome.journal_syncs.unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_chain_syncs_once_per_step_that_needs_it_and_once_at_the_end() {
    let n = STEPS as u64;
    let cases: [(&str, String, u64); 5] = [
        // exec's default is `ask`: every step's start is durable, with its predecessor's
        // finish in the same sync. Before: two per step (2n + 1).
        (
            "exec, on_resume ask (the default)",
            chain(|_| String::new()),
            n + 1,
        ),
        (
            "on_resume: rerun, holding nothing",
            chain(|_| "    on_resume: rerun\n".into()),
            1,
        ),
        (
            "on_resume: rerun with an undo (its finish must be known for the undo to run)",
            chain(|_| {
                "    on_resume: rerun\n    undo: {type: exec, with: {argv: [/bin/true]}}\n".into()
            }),
            n + 1,
        ),
        (
            "on_resume: check",
            chain(|_| {
                "    on_resume: check\n    probe: {type: exec, with: {argv: [/bin/true]}}\n".into()
            }),
            n + 1,
        ),
        (
            // t1 holds the resource: its start is durable, and its finish is synced before
            // t2 starts; the rest (t40 releases it, rerun by default) need nothing.
            "rerun-safe chain whose first step acquires",
            chain(|i| match i {
                1 => "    on_resume: rerun\n    acquires: res\n".into(),
                STEPS => "    releases: res\n".into(),
                _ => "    on_resume: rerun\n".into(),
            }),
            3,
        ),
    ];
    let mut wrong = Vec::new();
    for (what, plan, expected) in cases {
        let got = syncs_of(&plan).await;
        if got != expected {
            wrong.push(format!(
                "{what}: {got} syncs for {n} steps, expected {expected}"
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}
