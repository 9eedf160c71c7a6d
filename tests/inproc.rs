//! The engine in process, with a mock step type registered through the value registry: the
//! scheduler's order and rollback, the journal's state fold, resume planning, and locks
//! (including a lease that is lost mid-run). No child process, no service.

#![allow(clippy::unwrap_used)]

use opsplan_plan::params::ParamInputs;
use opsplan_plan::pipeline;
use opsplan_plan::step::{Action, Answer, Outputs, Registry, StepContext, StepError, StepType};
use opsplan_run::exec::events::{EventSink, Phase, RunEvent, StepStatus};
use opsplan_run::journal::{resume as decide, state, store};
use opsplan_run::lock::file::FileLocks;
use opsplan_run::lock::{Acquired, Holder, LockBackend, LockError, LockGuard};
use opsplan_run::{JournalTarget, RunBuilder, RunStatus};
use schemars::JsonSchema;
use serde::Deserialize;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// `mock`: records its name in a shared log, then succeeds or fails as told.
struct Mock;

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct MockSpec {
    log: String,
    name: String,
    #[serde(default)]
    fail: bool,
    #[serde(default)]
    sleep_ms: u64,
    /// Fail with an answer (exit code 1, this output), as a tool that refuses would.
    #[serde(default)]
    answer: Option<String>,
}

impl StepType for Mock {
    const NAME: &'static str = "mock";
    const SUMMARY: &'static str = "Test double: logs its name, then succeeds or fails.";
    type Spec = MockSpec;

    fn answers() -> &'static [opsplan_plan::step::AnswerField] {
        use opsplan_plan::step::AnswerField;
        &[AnswerField::ExitCode, AnswerField::Output]
    }
    fn describe(spec: &MockSpec) -> Action {
        Action::new(format!("mock {}", spec.name))
    }
    async fn run(spec: MockSpec, ctx: StepContext) -> Result<Outputs, StepError> {
        tokio::select! {
            () = tokio::time::sleep(Duration::from_millis(spec.sleep_ms)) => {}
            () = ctx.cancel.cancelled() => return Err(StepError::cancelled()),
        }
        let mut log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&spec.log)
            .map_err(|e| StepError::fatal(e.to_string()))?;
        std::io::Write::write_all(&mut log, format!("{}\n", spec.name).as_bytes())
            .map_err(|e| StepError::fatal(e.to_string()))?;
        if let Some(output) = spec.answer {
            return Err(
                StepError::fatal(format!("{} answered: {output}", spec.name)).with_answer(Answer {
                    exit_code: Some(1),
                    status: None,
                    output,
                }),
            );
        }
        if spec.fail {
            return Err(StepError::fatal(format!("{} failed as told", spec.name)));
        }
        let mut out = Outputs::new();
        out.insert("name".into(), spec.name.into());
        Ok(out)
    }
}

fn registry() -> Arc<Registry> {
    Arc::new(Registry::new().with::<Mock>())
}

/// Writes `body` (the steps) as a plan in `dir` and compiles it with the mock registry.
fn compile(dir: &Path, locks: &str, body: &str) -> Arc<opsplan_plan::compile::CompiledPlan> {
    let path = dir.join("plan.yaml");
    let text = format!(
        "apiVersion: opsplan/v1\nkind: Plan\nmetadata:\n  name: inproc\nlocks: {locks}\nsteps:\n{body}"
    );
    std::fs::write(&path, text).unwrap();
    let inputs = ParamInputs::default();
    match pipeline::load_compiled(&path, &inputs, Vec::new(), &registry()) {
        Ok(c) => Arc::new(c.plan),
        Err(e) => panic!("the test plan does not compile: {e:?}"),
    }
}

fn mock(id: &str, log: &Path, extra: &str) -> String {
    format!(
        "  - id: {id}\n    type: mock\n    with: {{ log: \"{}\", name: {id}{extra} }}\n",
        log.display()
    )
}

fn log_lines(log: &Path) -> Vec<String> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

/// Runs `plan` with a journal and file locks under `dir`; the outcome and the journal read back.
async fn run_journaled(
    dir: &Path,
    plan: &Arc<opsplan_plan::compile::CompiledPlan>,
) -> (opsplan_run::RunOutcome, store::Journal) {
    let outcome = RunBuilder::new(plan.clone())
        .journal(JournalTarget::New(dir.join("runs")))
        .locks(Arc::new(FileLocks::new(dir.join("locks"))))
        .run()
        .await
        .unwrap();
    let journal = store::open(outcome.journal.as_deref().unwrap()).unwrap();
    (outcome, journal)
}

#[derive(Default)]
struct Collect(Mutex<Vec<RunEvent>>);

impl EventSink for Collect {
    fn emit(&self, event: &RunEvent) {
        self.0.lock().unwrap().push(event.clone());
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_mock_registry_rejects_the_builtin_types_and_runs_its_own() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("plan.yaml");
    std::fs::write(
        &path,
        "apiVersion: opsplan/v1\nkind: Plan\nmetadata:\n  name: x\nsteps:\n  - id: a\n    type: exec\n    with: { argv: [true] }\n",
    )
    .unwrap();
    let mut sources = opsplan_plan::source::Sources::default();
    let checked = pipeline::check_file(&path, &mut sources, &registry());
    let codes: Vec<_> = checked
        .diagnostics
        .iter()
        .map(|d| d.message.clone())
        .collect();
    assert_eq!(codes, ["unknown step type `exec`"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_scheduler_follows_needs_and_the_journal_folds_to_the_same_story() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("log");
    let body = [
        mock("first", &log, ", sleep_ms: 30"),
        mock("second", &log, "").replace("    type", "    needs: [first]\n    type"),
        mock("third", &log, "").replace("    type", "    needs: [second]\n    type"),
    ]
    .concat();
    let plan = compile(dir.path(), "[]", &body);
    let outcome = RunBuilder::new(plan)
        .journal(JournalTarget::New(dir.path().join("runs")))
        .locks(Arc::new(FileLocks::new(dir.path().join("locks"))))
        .run()
        .await
        .unwrap();
    assert_eq!(outcome.status(), RunStatus::Succeeded);
    assert_eq!(log_lines(&log), ["first", "second", "third"]);
    let journal = store::open(outcome.journal.as_deref().unwrap()).unwrap();
    let st = state::fold(&journal.records);
    assert_eq!(st.status, Some(RunStatus::Succeeded));
    for id in ["first", "second", "third"] {
        let f = st.steps[id].forward.as_ref().unwrap();
        assert_eq!(f.status, Some(StepStatus::Succeeded), "{id}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn ready_steps_come_from_the_dependents_of_what_finished_or_was_skipped() {
    // A join declared before the steps it needs, a skipped step whose dependent still runs,
    // one step at a time: each step starts only after all of its needs, and every step
    // that became ready through a finished or skipped step's dependents runs.
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("log");
    let needs = |id: &str, needs: &str| {
        mock(id, &log, "").replace("    type", &format!("    needs: [{needs}]\n    type"))
    };
    let body = [
        needs("join", "left, right, after-skip"),
        mock("root", &log, ""),
        needs("right", "root"),
        needs("left", "root"),
        needs("skipped", "root").replace("    type", "    when: \"1 == 2\"\n    type"),
        needs("after-skip", "skipped"),
    ]
    .concat();
    let plan = compile(dir.path(), "[]", &body);
    let outcome = RunBuilder::new(plan).max_parallel(1).run().await.unwrap();
    assert_eq!(outcome.status(), RunStatus::Succeeded);
    let ran = log_lines(&log);
    assert_eq!(ran.first().map(String::as_str), Some("root"), "{ran:?}");
    assert_eq!(ran.last().map(String::as_str), Some("join"), "{ran:?}");
    let mut middle = ran[1..ran.len() - 1].to_vec();
    middle.sort();
    assert_eq!(middle, ["after-skip", "left", "right"], "{ran:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failure_releases_what_was_acquired_and_nothing_else() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("log");
    let body = [
        mock("take", &log, "").replace("    type", "    acquires: held\n    type"),
        mock("work", &log, ", fail: true").replace("    type", "    needs: [take]\n    type"),
        mock("give-back", &log, "").replace(
            "    type",
            "    needs: [work]\n    releases: held\n    type",
        ),
        mock("never", &log, "").replace("    type", "    needs: [give-back]\n    type"),
    ]
    .concat();
    let plan = compile(dir.path(), "[]", &body);
    let events = Arc::new(Collect::default());
    let outcome = RunBuilder::new(plan)
        .locks(Arc::new(FileLocks::new(dir.path().join("locks"))))
        .sink(events.clone())
        .run()
        .await
        .unwrap();
    assert_eq!(outcome.status(), RunStatus::Failed);
    assert_eq!(log_lines(&log), ["take", "work", "give-back"]);
    let cleanups: Vec<String> = events
        .0
        .lock()
        .unwrap()
        .iter()
        .filter_map(|e| match e {
            RunEvent::StepFinished {
                step,
                phase: Phase::Cleanup,
                status: StepStatus::Succeeded,
                ..
            } => Some(step.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(cleanups, ["give-back"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn resume_planning_reruns_a_step_left_in_doubt_and_keeps_finished_ones() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("log");
    let body = [
        mock("done", &log, ""),
        mock("in-doubt", &log, "").replace(
            "    type",
            "    needs: [done]\n    on_resume: rerun\n    type",
        ),
    ]
    .concat();
    let plan = compile(dir.path(), "[]", &body);
    let (_, journal) = run_journaled(dir.path(), &plan).await;
    // Cut the journal where `in-doubt` had started but not finished: a crash there.
    let cut = journal
        .records
        .iter()
        .position(|r| matches!(&r.event, RunEvent::StepFinished { step, .. } if step == "in-doubt"))
        .unwrap();
    let st = state::fold(&journal.records[..cut]);
    assert_eq!(st.status, None);
    let rp = decide::plan_resume(&plan, &st, false, &[]);
    assert!(!rp.rollback_only);
    assert!(rp.ask.is_empty());
    let done = plan.index_of("done").unwrap();
    let doubt = plan.index_of("in-doubt").unwrap();
    assert!(rp.prior.outputs.contains_key(&done));
    assert_eq!(
        rp.prior.in_doubt,
        vec![(doubt, opsplan_run::exec::InDoubt::Rerun)]
    );
}

#[test]
fn a_file_lock_is_exclusive_until_released() {
    let dir = tempfile::tempdir().unwrap();
    let locks = FileLocks::new(dir.path());
    let me = |run: &str| Holder {
        run_id: run.into(),
        plan: "inproc".into(),
        host: "here".into(),
        pid: std::process::id(),
        started: "now".into(),
        ended: None,
    };
    let first = locks.try_acquire("db", &me("one"), false).unwrap();
    assert!(matches!(
        locks.try_acquire("db", &me("two"), false),
        Err(LockError::Held { .. })
    ));
    first.guard.release(false).unwrap();
    let again = locks.try_acquire("db", &me("two"), false).unwrap();
    again.guard.release(false).unwrap();
}

/// A lease backend whose lease is lost at the first renewal.
struct Leases;

struct Lease(String);

impl LockGuard for Lease {
    fn name(&self) -> &str {
        &self.0
    }
    fn release(self: Box<Self>, _keep_record: bool) -> Result<(), LockError> {
        Ok(())
    }
    fn renew_every(&self) -> Option<Duration> {
        Some(Duration::from_millis(50))
    }
    fn renew(&mut self) -> Result<(), LockError> {
        Err(LockError::Io {
            name: self.0.clone(),
            detail: "the lease expired".into(),
        })
    }
}

impl LockBackend for Leases {
    fn try_acquire(&self, name: &str, _me: &Holder, _b: bool) -> Result<Acquired, LockError> {
        Ok(Acquired {
            guard: Box::new(Lease(name.into())),
            takeover: None,
        })
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_lost_lease_cancels_the_run_and_it_rolls_back() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("log");
    let body = [
        mock("take", &log, "").replace("    type", "    acquires: held\n    type"),
        mock("slow", &log, ", sleep_ms: 5000").replace("    type", "    needs: [take]\n    type"),
        mock("give-back", &log, "").replace(
            "    type",
            "    needs: [slow]\n    releases: held\n    type",
        ),
    ]
    .concat();
    let plan = compile(dir.path(), "[shared]", &body);
    let notices = Arc::new(Mutex::new(Vec::new()));
    let seen = notices.clone();
    let outcome = RunBuilder::new(plan)
        .locks(Arc::new(Leases))
        .on_notice(move |n| seen.lock().unwrap().push(n.to_string()))
        .run()
        .await
        .unwrap();
    assert_eq!(outcome.status(), RunStatus::Cancelled);
    assert_eq!(log_lines(&log), ["take", "give-back"]);
    assert!(notices
        .lock()
        .unwrap()
        .iter()
        .any(|n| n.contains("lock `shared` could not be renewed")));
}

// The journal's reader: a torn last line is the crash's, anything else is damage.

const JOURNAL_LINE: &str = r#"{"seq":1,"event":"signal","signal":"SIGINT","action":"x"}"#;

#[test]
fn journal_a_torn_last_line_is_reported_and_cut_off() {
    let text = format!("{JOURNAL_LINE}\n{}", &JOURNAL_LINE[..20]);
    let p = store::parse_events(text.as_bytes(), Path::new("e")).expect("parses");
    assert_eq!(p.records.len(), 1);
    assert_eq!(p.torn.map(|t| t.line), Some(2));
    assert_eq!(p.valid_len as usize, JOURNAL_LINE.len() + 1);
}

#[test]
fn journal_a_bad_line_before_the_end_is_an_error() {
    let text = format!("{}\n{JOURNAL_LINE}\n", &JOURNAL_LINE[..20]);
    assert!(store::parse_events(text.as_bytes(), Path::new("e")).is_err());
}

#[test]
fn journal_a_clean_journal_has_no_torn_line() {
    let text = format!("{JOURNAL_LINE}\n{JOURNAL_LINE}\n");
    let p = store::parse_events(text.as_bytes(), Path::new("e")).expect("parses");
    assert_eq!((p.records.len(), p.torn.is_none()), (2, true));
    assert_eq!(p.valid_len as usize, text.len());
}

#[test]
fn journal_a_record_of_an_unknown_kind_is_skipped_and_named() {
    let newer = r#"{"seq":2,"event":"lease_renewed","lock":"db"}"#;
    let text = format!("{JOURNAL_LINE}\n{newer}\n{JOURNAL_LINE}\n");
    let p = store::parse_events(text.as_bytes(), Path::new("e")).expect("parses");
    assert_eq!(p.records.len(), 2);
    assert_eq!(p.unknown, vec![(2, "lease_renewed".to_string())]);
    // A known kind with a broken body is still damage.
    let broken = r#"{"seq":2,"event":"signal","signal":7}"#;
    let text = format!("{JOURNAL_LINE}\n{broken}\n{JOURNAL_LINE}\n");
    assert!(store::parse_events(text.as_bytes(), Path::new("e")).is_err());
}

/// Writes `body` (the steps) as plan `name` in `dir` and compiles it with the mock, `confirm`
/// and `assert` step types.
fn compile_gated(dir: &Path, name: &str, body: &str) -> Arc<opsplan_plan::compile::CompiledPlan> {
    let path = dir.join("plan.yaml");
    std::fs::write(
        &path,
        format!("apiVersion: opsplan/v1\nkind: Plan\nmetadata:\n  name: {name}\nsteps:\n{body}"),
    )
    .unwrap();
    let registry = Arc::new(
        Registry::new()
            .with::<Mock>()
            .with::<opsplan_steps::confirm::Confirm>()
            .with::<opsplan_steps::assert::Assert>(),
    );
    match pipeline::load_compiled(&path, &ParamInputs::default(), Vec::new(), &registry) {
        Ok(c) => Arc::new(c.plan),
        Err(e) => panic!("the test plan does not compile: {e:?}"),
    }
}

/// A prompter with a terminal that answers yes to everything and records the questions.
#[derive(Debug, Default)]
struct SaysYes(Mutex<Vec<String>>);

impl opsplan_plan::step::Prompter for SaysYes {
    fn can_ask(&self) -> bool {
        true
    }
    fn ask(&self, question: &str) -> opsplan_plan::step::BoxFuture<bool> {
        self.0.lock().unwrap().push(question.to_string());
        Box::pin(async { true })
    }
}

/// Ask once: the operator's yes to a `confirm` approves the destructive steps after it
/// (the question names them); a destructive step no confirm comes before is still asked
/// about on its own (it follows an `assert`, not a confirm).
#[tokio::test(flavor = "multi_thread")]
async fn a_yes_to_a_confirm_approves_the_destructive_steps_after_it() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("log");
    let body = [
        "  - id: ask\n    type: confirm\n    with: { message: Wipe the data? }\n".to_string(),
        mock("wipe", &log, "").replace(
            "    type",
            "    needs: [ask]\n    destructive: true\n    type",
        ),
        "  - id: guard\n    type: assert\n    with: { that: true, message: never }\n".to_string(),
        mock("lone", &log, "").replace(
            "    type",
            "    needs: [guard]\n    destructive: true\n    type",
        ),
    ]
    .concat();
    let plan = compile_gated(dir.path(), "ask-once", &body);
    let prompter = Arc::new(SaysYes::default());
    let outcome = RunBuilder::new(plan)
        .locks(Arc::new(FileLocks::new(dir.path().join("locks"))))
        .prompter(prompter.clone())
        .max_parallel(1)
        .run()
        .await
        .unwrap();
    assert_eq!(outcome.status(), RunStatus::Succeeded);
    let mut ran = log_lines(&log);
    ran.sort();
    assert_eq!(ran, ["lone", "wipe"]);
    let mut questions = prompter.0.lock().unwrap().clone();
    questions.sort();
    assert_eq!(
        questions,
        [
            "Step `lone` is destructive: mock lone\n  Run it?",
            "Wipe the data?\n  A yes also runs the destructive step(s) `wipe` without asking again.",
        ]
    );
}

/// An operator who thinks for a while before each yes.
#[derive(Debug)]
struct ThinksThenYes(Duration);

impl opsplan_plan::step::Prompter for ThinksThenYes {
    fn can_ask(&self) -> bool {
        true
    }
    fn ask(&self, _question: &str) -> opsplan_plan::step::BoxFuture<bool> {
        let think = self.0;
        Box::pin(async move {
            tokio::time::sleep(think).await;
            true
        })
    }
}

/// The time an operator takes to answer is not the step's time: neither the `confirm`
/// step's nor a destructive step's that asked before it ran; the run's total time has it.
#[tokio::test(flavor = "multi_thread")]
async fn the_time_spent_answering_a_question_is_not_counted_as_the_steps_time() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("log");
    let body = [
        "  - id: ask\n    type: confirm\n    with: { message: Go on? }\n".to_string(),
        // Not after the confirm, so that the destructive step asks on its own.
        "  - id: guard\n    type: assert\n    with: { that: true, message: never }\n".to_string(),
        mock("lone", &log, ", sleep_ms: 100").replace(
            "    type",
            "    needs: [guard]\n    destructive: true\n    type",
        ),
    ]
    .concat();
    let plan = compile_gated(dir.path(), "thinking", &body);
    let think = Duration::from_millis(700);
    let outcome = RunBuilder::new(plan)
        .locks(Arc::new(FileLocks::new(dir.path().join("locks"))))
        .prompter(Arc::new(ThinksThenYes(think)))
        .run()
        .await
        .unwrap();
    assert_eq!(outcome.status(), RunStatus::Succeeded);
    let took = |id: &str| {
        outcome
            .report
            .records
            .iter()
            .find(|r| r.id == id)
            .map(|r| r.duration)
            .unwrap()
    };
    assert!(took("ask") < think / 2, "confirm took {:?}", took("ask"));
    let lone = took("lone");
    assert!(
        lone >= Duration::from_millis(100) && lone < Duration::from_millis(100) + think / 2,
        "the destructive step took {lone:?}"
    );
    assert!(outcome.report.duration >= think);
}

/// `take` acquires `held` and may be refused (`refused_when` on "busy"): a refusal releases
/// nothing, in the run and in a resume planned from its journal; another answer releases.
#[tokio::test(flavor = "multi_thread")]
async fn a_refused_acquire_is_not_released_by_the_run_nor_by_a_resume_from_its_journal() {
    for (answer, refused) in [("busy", true), ("disk full", false)] {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("log");
        let body = [
            mock("take", &log, &format!(", answer: \"{answer}\"")).replace(
                "    type",
                "    acquires: held\n    refused_when: {output_matches: busy}\n    type",
            ),
            mock("give-back", &log, "").replace(
                "    type",
                "    needs: [take]\n    releases: held\n    type",
            ),
        ]
        .concat();
        let plan = compile(dir.path(), "[]", &body);
        let (outcome, journal) = run_journaled(dir.path(), &plan).await;
        assert_eq!(outcome.status(), RunStatus::Failed, "{answer}");
        let take = &outcome.report.records[0];
        assert_eq!(
            (take.id.as_str(), take.refused),
            ("take", refused),
            "{answer}"
        );
        if refused {
            assert_eq!(
                log_lines(&log),
                ["take"],
                "{answer}: released someone else's"
            );
            assert_eq!(outcome.report.not_released, ["held"]);
        } else {
            assert_eq!(log_lines(&log), ["take", "give-back"], "{answer}");
            assert!(outcome.report.not_released.is_empty());
        }
        // A crash right after `take` finished: the resume's rollback agrees with the run.
        let cut = journal
            .records
            .iter()
            .position(|r| matches!(&r.event, RunEvent::RollbackStarted { .. }))
            .unwrap();
        let st = state::fold(&journal.records[..cut]);
        let rp = decide::plan_resume(&plan, &st, false, &[]);
        assert!(rp.rollback_only, "{answer}");
        let rb = opsplan_plan::rollback::plan_rollback(
            &plan,
            &rp.prior.completion_order,
            &rp.prior.states,
        );
        let give_back = plan.index_of("give-back").unwrap();
        if refused {
            assert_eq!(rp.prior.states[0], opsplan_plan::rollback::State::Refused);
            assert!(rb.cleanup.is_empty(), "{answer}: {rb:?}");
            assert_eq!(rb.refused, ["held"]);
        } else {
            assert_eq!(rb.cleanup, [give_back], "{answer}");
        }
    }
}
