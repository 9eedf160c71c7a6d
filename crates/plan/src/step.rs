//! The step seam. A step type implements [`StepType`] in its own file (the built-ins are in
//! the `opsplan-steps` crate) and is added to a [`Registry`] with one line.
//!
//! A type sees only its typed, rendered arguments: templates, retries, timeouts and rollback
//! are the engine's. `describe` feeds preview and the journal from the same spec `run` gets,
//! so what is shown is what runs.

use crate::diagnostic::de_diagnostic;
use crate::diagnostic::{Code, Diagnostic};
use crate::source::de::from_node;
use crate::source::Node;
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

pub type Outputs = serde_json::Map<String, serde_json::Value>;

/// An output a step type sets, for template checks and the reference docs.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct OutputDecl {
    pub name: &'static str,
    pub description: &'static str,
}

/// What preview prints for a step: one line a person reads (`$ tar czf …`, `POST …`).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Action {
    pub summary: String,
}

impl Action {
    pub fn new(summary: impl Into<String>) -> Self {
        Action {
            summary: summary.into(),
        }
    }
}

/// Why an attempt failed.
#[derive(Debug, Clone)]
pub struct StepError {
    pub message: String,
    /// False when another attempt cannot help (bad arguments, a refused confirmation).
    pub retryable: bool,
    /// What a failed step still leaves behind, for its cleanup's templates: a scale-down
    /// that failed halfway records which workloads it changed (`previous`), so the release
    /// restores exactly those and nothing else.
    pub outputs: Option<Outputs>,
    /// What the other side answered (an exit code, an HTTP status, the output), when it
    /// answered at all: what `refused_when` is matched against. `None` for a timeout, a
    /// cancel or a lost connection, whose effect is in doubt.
    pub answer: Option<Answer>,
}

/// A part of an [`Answer`] a step type sets when it fails (see [`StepType::answers`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AnswerField {
    ExitCode,
    Status,
    Output,
}

/// What a process or a server answered when a step failed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Answer {
    pub exit_code: Option<i32>,
    pub status: Option<u16>,
    /// A process's stdout and stderr, or an HTTP response's body.
    pub output: String,
}

impl StepError {
    pub fn new(message: impl Into<String>) -> Self {
        StepError {
            message: message.into(),
            retryable: true,
            outputs: None,
            answer: None,
        }
    }
    pub fn fatal(message: impl Into<String>) -> Self {
        StepError {
            message: message.into(),
            retryable: false,
            outputs: None,
            answer: None,
        }
    }
    pub fn cancelled() -> Self {
        StepError::fatal("cancelled")
    }
    pub fn retryable(mut self, retryable: bool) -> Self {
        self.retryable = retryable;
        self
    }
    /// Attaches what the other side answered (see [`StepError::answer`]).
    pub fn with_answer(mut self, answer: Answer) -> Self {
        self.answer = Some(answer);
        self
    }
    /// Attaches what the failed step leaves behind (see [`StepError::outputs`]).
    pub fn with_outputs(mut self, outputs: Outputs) -> Self {
        self.outputs = Some(outputs);
        self
    }
}

impl std::fmt::Display for StepError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

/// How one step ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StepStatus {
    Succeeded,
    Failed,
    Skipped,
    Cancelled,
}

/// Which stream a line of step output came from.
#[derive(Debug, Clone, Copy, Serialize, serde::Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Stream {
    Stdout,
    Stderr,
}

/// How the run answers gates (`confirm`, destructive steps).
#[derive(Debug, Clone, Copy, Default)]
pub struct Answers {
    /// `--yes`: answer every `confirm` with yes.
    pub yes: bool,
    /// `--force`: run destructive steps without asking.
    pub force: bool,
}

/// Receives each line a step's processes print (already redacted).
pub type LogFn = Arc<dyn Fn(Stream, &str) + Send + Sync>;

/// Told the process group of every child a step starts, so that the journal can record it.
pub type ChildFn = Arc<dyn Fn(i32) + Send + Sync>;

/// What a running step may use from the engine.
#[derive(Clone)]
pub struct StepContext {
    pub step_id: String,
    /// Cancelled on timeout, failure elsewhere or a signal; long work must watch it.
    pub cancel: CancellationToken,
    /// Time between SIGTERM and SIGKILL when a child process is cancelled.
    pub grace: std::time::Duration,
    /// Cancelled on a second Ctrl-C: processes being stopped get SIGKILL without `grace`.
    pub hurry: CancellationToken,
    pub answers: Answers,
    pub log: LogFn,
    /// Call with each child's process group right after it started.
    pub on_child: ChildFn,
    /// Removes secret values from anything a step reports (stderr, HTTP bodies).
    pub redact: Arc<crate::template::Redactor>,
    /// Secret values by env var name, set in child processes instead of their argv.
    pub secret_env: Vec<(String, String)>,
    /// Asks the operator (`confirm`, destructive steps): the terminal in the CLI, a script
    /// in tests and embedders.
    pub prompter: Arc<dyn Prompter>,
    /// For a step that [asks](StepType::asks): the destructive steps after it that an
    /// operator's yes also approves (they are not asked about again), to say in the question.
    pub approves: Vec<String>,
    /// The running plan's metadata, for steps that record provenance (`manifest`).
    pub plan: Arc<PlanInfo>,
}

/// Asks the operator yes/no questions. One prompter serves a whole run; it serializes
/// questions from parallel steps itself.
pub trait Prompter: Send + Sync + std::fmt::Debug {
    /// Whether anyone can be asked (a terminal); when not, a question that needs an answer
    /// is refused before it is asked.
    fn can_ask(&self) -> bool;
    /// Asks and waits for the answer; false on a no, an error or end of input.
    fn ask(&self, question: &str) -> BoxFuture<bool>;
}

/// A prompter with no one to ask: every question is refused (CI, embedders, tests).
#[derive(Debug, Default, Clone, Copy)]
pub struct NoPrompter;

impl Prompter for NoPrompter {
    fn can_ask(&self) -> bool {
        false
    }
    fn ask(&self, _question: &str) -> BoxFuture<bool> {
        Box::pin(async { false })
    }
}

/// The plan's `metadata` as the template context shows it (`plan.name`, …).
#[derive(Debug, Clone, Default)]
pub struct PlanInfo {
    pub name: String,
    pub version: Option<String>,
    pub system: Option<String>,
    /// The run's id (`run.id`), for steps that name what they create after the run
    /// (`generation.begin`); empty when an embedder runs a step outside a run.
    pub run_id: String,
}

pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// A step type: typed arguments (`with:`), checks, a preview line and the real run.
pub trait StepType: Send + Sync + 'static {
    const NAME: &'static str;
    /// One sentence for `opsplan types` and the plan reference.
    const SUMMARY: &'static str;
    type Spec: DeserializeOwned + schemars::JsonSchema + Send + Sync + 'static;

    fn outputs() -> &'static [OutputDecl] {
        &[]
    }
    /// Whether any output key may appear (e.g. parsed JSON).
    fn open_outputs() -> bool {
        false
    }
    /// The outputs a failed attempt still sets ([`StepError::outputs`]), for the templates
    /// of cleanup that runs after it; the reference lists them per type. Default: none.
    fn outputs_on_failure() -> &'static [&'static str] {
        &[]
    }
    /// What a failed attempt's [`Answer`] can hold, so which `refused_when` conditions can
    /// ever hold for this type: `exit_code` (a process's), `status` (an HTTP status),
    /// `output`. Default: none (its failures carry no answer, so none is a refusal).
    fn answers() -> &'static [AnswerField] {
        &[]
    }
    /// Checks beyond types (globs, ranges), pointing into `with`.
    fn check(_spec: &Self::Spec, _with: &Node) -> Vec<Diagnostic> {
        Vec::new()
    }
    /// True when running this spec destroys or overwrites data.
    fn destructive(_spec: &Self::Spec) -> bool {
        false
    }
    /// True when the step asks the operator (a `confirm`): `--yes` answers it, and with no
    /// terminal and no `--yes` a run is refused before its first step. An operator's yes
    /// also approves the destructive steps that need this step, which are then not asked
    /// about again.
    fn asks(_spec: &Self::Spec) -> bool {
        false
    }
    /// True when running this spec twice has the effect of running it once: `resume` then
    /// reruns it when a crash left it in doubt (the default `on_resume` becomes `rerun`).
    fn idempotent(_spec: &Self::Spec) -> bool {
        false
    }
    fn describe(spec: &Self::Spec) -> Action;
    fn run(
        spec: Self::Spec,
        ctx: StepContext,
    ) -> impl Future<Output = Result<Outputs, StepError>> + Send;
}

/// The object-safe face of a [`StepType`] that a [`Registry`] holds.
pub trait DynStepType: Send + Sync {
    fn name(&self) -> &'static str;
    fn summary(&self) -> &'static str;
    fn outputs(&self) -> &'static [OutputDecl];
    fn open_outputs(&self) -> bool;
    fn outputs_on_failure(&self) -> &'static [&'static str];
    /// See [`StepType::answers`].
    fn answers(&self) -> &'static [AnswerField];
    fn schema(&self, generator: &mut schemars::SchemaGenerator) -> schemars::Schema;
    /// Decodes and checks arguments; `templates_pending` before rendering.
    fn check(&self, with: &Node, templates_pending: bool) -> Vec<Diagnostic>;
    /// Whether the step may destroy data before rendering: templated flags count as set.
    fn destructive(&self, with: &Node) -> bool;
    /// Whether the step destroys data, from arguments rendered with known values.
    fn destructive_rendered(&self, with: &Node) -> bool;
    fn idempotent(&self, with: &Node) -> bool;
    /// See [`StepType::asks`].
    fn asks(&self, with: &Node) -> bool;
    fn describe(&self, with: &Node) -> Result<Action, Diagnostic>;
    fn run(&self, with: &Node, ctx: StepContext) -> BoxFuture<Result<Outputs, StepError>>;
}

struct Registered<T>(std::marker::PhantomData<fn() -> T>);

fn decode<T: StepType>(with: &Node, pending: bool) -> Result<T::Spec, Diagnostic> {
    from_node::<T::Spec>(with, pending)
        .map_err(|e| de_diagnostic(&e, &format!("arguments of `{}`", T::NAME), with.span))
}

impl<T: StepType> DynStepType for Registered<T> {
    fn name(&self) -> &'static str {
        T::NAME
    }
    fn summary(&self) -> &'static str {
        T::SUMMARY
    }
    fn outputs(&self) -> &'static [OutputDecl] {
        T::outputs()
    }
    fn open_outputs(&self) -> bool {
        T::open_outputs()
    }
    fn outputs_on_failure(&self) -> &'static [&'static str] {
        T::outputs_on_failure()
    }
    fn answers(&self) -> &'static [AnswerField] {
        T::answers()
    }
    fn schema(&self, generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        generator.subschema_for::<T::Spec>()
    }
    fn check(&self, with: &Node, templates_pending: bool) -> Vec<Diagnostic> {
        match decode::<T>(with, templates_pending) {
            Ok(spec) => T::check(&spec, with),
            Err(d) => vec![d],
        }
    }
    fn destructive(&self, with: &Node) -> bool {
        crate::source::de::from_node_flags_set::<T::Spec>(with).is_ok_and(|s| T::destructive(&s))
    }
    fn destructive_rendered(&self, with: &Node) -> bool {
        decode::<T>(with, false).is_ok_and(|s| T::destructive(&s))
    }
    fn idempotent(&self, with: &Node) -> bool {
        decode::<T>(with, true).is_ok_and(|s| T::idempotent(&s))
    }
    fn asks(&self, with: &Node) -> bool {
        decode::<T>(with, true).is_ok_and(|s| T::asks(&s))
    }
    fn describe(&self, with: &Node) -> Result<Action, Diagnostic> {
        decode::<T>(with, true).map(|s| T::describe(&s))
    }
    fn run(&self, with: &Node, ctx: StepContext) -> BoxFuture<Result<Outputs, StepError>> {
        match decode::<T>(with, false) {
            Ok(spec) => Box::pin(T::run(spec, ctx)),
            Err(d) => {
                let message = d.message;
                Box::pin(async move { Err(StepError::fatal(message)) })
            }
        }
    }
}

/// True when `with.<field>` is a template string that renders to the list or map the field
/// wants (`args: "{{ ['get'] + params.names }}"`): emptiness is judged after rendering.
pub fn templated(with: &Node, field: &str) -> bool {
    with.get(field)
        .and_then(Node::as_str)
        .is_some_and(crate::source::de::is_template)
}

/// Shell-style quoting of an argv for previews (`$ tar czf '/my dir' …`).
pub fn shell_quote(argv: &[String]) -> String {
    argv.iter()
        .map(|a| {
            if !a.is_empty()
                && a.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_./=:,@%+".contains(c))
            {
                a.clone()
            } else {
                format!("'{}'", a.replace('\'', r"'\''"))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// The step types a plan may name: a value, built once and passed through load, validate
/// and compile, so tests register mock types and embedders add their own.
#[derive(Clone, Default)]
pub struct Registry {
    types: Vec<Arc<dyn DynStepType>>,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.types.iter().map(|t| t.name()))
            .finish()
    }
}

impl Registry {
    /// An empty registry; [`Registry::with`] adds types.
    pub fn new() -> Self {
        Registry::default()
    }

    /// Adds step type `T`; a later type of the same name replaces the earlier one, so an
    /// embedder can swap a built-in (a mock `exec` in a plan test).
    pub fn with<T: StepType>(mut self) -> Self {
        self.register::<T>();
        self
    }

    /// [`Registry::with`] on a registry being built in place.
    pub fn register<T: StepType>(&mut self) -> &mut Self {
        let t: Arc<dyn DynStepType> = Arc::new(Registered::<T>(std::marker::PhantomData));
        match self.types.iter_mut().find(|e| e.name() == T::NAME) {
            Some(slot) => *slot = t,
            None => self.types.push(t),
        }
        self
    }

    /// Every type, in registration order (the order the reference lists them).
    pub fn iter(&self) -> impl Iterator<Item = &Arc<dyn DynStepType>> {
        self.types.iter()
    }

    pub fn lookup(&self, name: &str) -> Option<&Arc<dyn DynStepType>> {
        self.types.iter().find(|t| t.name() == name)
    }

    /// Diagnostic for an unknown `type:` with the closest registered name.
    pub fn unknown_type(&self, name: &str, span: crate::source::Span) -> Diagnostic {
        let d = Diagnostic::new(Code::UnknownStepType, format!("unknown step type `{name}`"))
            .label(span, "no step type has this name");
        match crate::diagnostic::did_you_mean(name, self.types.iter().map(|t| t.name())) {
            Some(s) => d.help(format!("did you mean `{s}`?")),
            None => d.help("`opsplan types` lists the step types"),
        }
    }
}
