//! The typed plan model (format `opsplan/v1`). These types are also the source of the JSON
//! Schema in schemas/plan.v1.json, so doc comments here are what editors show.

use crate::source::de::Sp;
use crate::source::Node;
use indexmap::IndexMap;
use schemars::JsonSchema;
use serde::Deserialize;

pub const API_VERSION: &str = "opsplan/v1";

/// A plan file: metadata, typed params, locks and a DAG of steps.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "opsplan plan (opsplan/v1)")]
pub struct PlanDoc {
    /// Always `opsplan/v1` for this format.
    #[serde(rename = "apiVersion")]
    pub api_version: Sp<String>,
    /// `Plan` for a runnable plan, `Fragment` for a file included with `uses:`.
    pub kind: Sp<Kind>,
    /// Name, system, version and description of the plan.
    pub metadata: Metadata,
    /// Typed inputs. Values come from `--set`, `--params FILE`, the environment, or the default.
    #[serde(default)]
    pub params: IndexMap<String, ParamDecl>,
    /// Named locks taken before the first step and held for the whole run (templated).
    #[serde(default)]
    pub locks: Vec<Sp<String>>,
    /// The steps, a DAG through `needs`; the file order does not matter.
    pub steps: Vec<StepDecl>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
pub enum Kind {
    Plan,
    Fragment,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Metadata {
    /// Unique name of the plan, e.g. `cosmos7-backup`.
    pub name: Sp<String>,
    /// The system the plan operates, e.g. `cosmos7`.
    #[serde(default)]
    pub system: Option<Sp<String>>,
    /// The plan's own version (semantic versioning).
    #[serde(default)]
    pub version: Option<Sp<String>>,
    /// Versions of the system the plan was written for, e.g. `">=7.0, <8"`.
    #[serde(default, rename = "appliesTo")]
    pub applies_to: Option<Sp<String>>,
    /// What the plan does, for `opsplan plans`, previews and change tickets.
    #[serde(default)]
    pub description: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ParamType {
    String,
    Int,
    Bool,
    Path,
    Url,
    Duration,
    Secret,
    /// A list of strings (buckets, partitions, deployments) for `for_each`.
    List,
}

impl ParamType {
    pub fn name(self) -> &'static str {
        match self {
            ParamType::String => "string",
            ParamType::Int => "int",
            ParamType::Bool => "bool",
            ParamType::Path => "path",
            ParamType::Url => "url",
            ParamType::Duration => "duration",
            ParamType::Secret => "secret",
            ParamType::List => "list",
        }
    }
}

/// A typed parameter.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ParamDecl {
    /// `string`, `int`, `bool`, `path`, `url`, `duration`, `secret` or `list`.
    #[serde(rename = "type")]
    pub ty: Sp<ParamType>,
    /// What the param is for (shown in previews and by `opsplan validate --params`).
    #[serde(default)]
    pub description: Option<String>,
    /// Used when no other source gives a value. Not allowed for secrets.
    #[serde(default)]
    pub default: Option<Node>,
    /// Environment variable read when neither `--set` nor `--params` gives a value.
    #[serde(default)]
    pub env: Option<Sp<String>>,
    /// A run or preview without a value for this param is refused.
    #[serde(default)]
    pub required: bool,
    /// The only values accepted.
    #[serde(default)]
    pub choices: Option<Vec<Node>>,
    /// Secrets only: read the value from this file (trailing newline removed).
    #[serde(default)]
    pub file: Option<Sp<String>>,
    /// Secrets only: run this argv (no shell) and use its stdout, e.g. `[pass, show, db]`.
    #[serde(default)]
    pub command: Option<Vec<String>>,
}

/// One or several names (`acquires: x` or `acquires: [x, y]`).
#[derive(Debug, Clone, Default)]
pub struct Names(pub Vec<Sp<String>>);

impl<'de> Deserialize<'de> for Names {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use crate::source::NodeValue;
        use serde::de::Error;
        let node = Node::deserialize(d)?;
        let one = |n: &Node| match &n.value {
            NodeValue::Str(s) => Ok(Sp::new(s.clone(), n.span)),
            _ => Err(D::Error::custom(format!(
                "expected a name or a list of names, found {}",
                n.kind_name()
            ))),
        };
        match &node.value {
            NodeValue::Seq(items) => items.iter().map(one).collect::<Result<_, _>>().map(Names),
            _ => one(&node).map(|n| Names(vec![n])),
        }
    }
}

impl JsonSchema for Names {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Names".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "anyOf": [
                {"type": "string"},
                {"type": "array", "items": {"type": "string"}}
            ]
        })
    }
}

// A plan may hold 100,000 steps, so the fields most steps leave out (`retry`, `undo`,
// `refused_when`, `probe`: a few hundred bytes each) are boxed: absent, they cost a pointer.
// (A comment, not a doc comment: doc comments here are the schema's descriptions.)
/// A step of the plan.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StepDecl {
    /// Unique id: lowercase letters, digits, `-` and `_`, starting with a letter.
    pub id: Sp<String>,
    /// The step type (`exec`, `http`, `docker.run`, ...). Exactly one of `type` and `uses`.
    #[serde(default, rename = "type")]
    pub step_type: Option<Sp<String>>,
    /// A fragment file (relative to this file) whose steps are inlined here, or a shipped
    /// fragment by name and semver requirement (`builtin:dop/fragments/restore-bucket@^2`);
    /// `with` gives the fragment's params. A `uses:` step takes only `id`, `uses`, `with`,
    /// `needs` and `description`.
    #[serde(default)]
    pub uses: Option<Sp<String>>,
    /// Why the step is there (shown in previews and the Markdown change ticket).
    #[serde(default)]
    pub description: Option<String>,
    /// Arguments of the step type; strings are templates.
    #[serde(default)]
    pub with: Option<Node>,
    /// Steps that must succeed (or be skipped) before this one starts.
    #[serde(default)]
    pub needs: Vec<Sp<String>>,
    /// A template expression; the step is skipped when it is false.
    #[serde(default)]
    pub when: Option<Sp<String>>,
    /// Retries of a failed attempt: `attempts` and a `backoff`.
    #[serde(default)]
    pub retry: Option<Box<RetryDecl>>,
    /// Longest time one attempt may take (`30s`, `2h`); the step's processes are then killed.
    #[serde(default)]
    pub timeout: Option<Sp<String>>,
    /// Compensation run when a later step fails, in reverse completion order.
    #[serde(default)]
    pub undo: Option<Box<ActionDecl>>,
    /// Resources this step takes; each must be released by a later step on every path.
    #[serde(default)]
    pub acquires: Names,
    /// Resources this step gives back. A releasing step also runs when the run fails or is
    /// cancelled after the resource was (or may have been) acquired.
    #[serde(default)]
    pub releases: Names,
    /// On a step that `acquires:`: the failures that mean the resource was refused, so
    /// nothing was acquired and its release must not run (it would free someone else's
    /// checkpoint or thaw someone else's freeze). Any other failure (a timeout, a cancel, a
    /// lost connection) leaves the effect in doubt, and the release runs.
    #[serde(default)]
    pub refused_when: Option<Box<RefusedWhenDecl>>,
    /// Cleanup that runs at the end on every path (success, failure, cancel).
    #[serde(default)]
    pub always: bool,
    /// Expand this step once per item (a list, or a template giving a list); `item` and
    /// `item_index` are set in its templates.
    #[serde(default)]
    pub for_each: Option<Node>,
    /// The step destroys or overwrites data. It must be guarded by an `assert` or `confirm`
    /// step it needs, and runs only with `--force` or an interactive yes.
    #[serde(default)]
    pub destructive: bool,
    /// What `resume` does when a crash left this step started but not finished. Default:
    /// `rerun` for releasing, `always` and idempotent steps (`wait`, `assert`, `confirm`,
    /// `http` GET/HEAD), else `ask`.
    #[serde(default)]
    pub on_resume: Option<Sp<ResumePolicy>>,
    /// With `on_resume: check`: an action whose success means the step's effect is there
    /// (e.g. an `http` GET of the checkpoint status); its outputs stand in for the step's.
    #[serde(default)]
    pub probe: Option<Box<ActionDecl>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ResumePolicy {
    /// Run the step again (it is idempotent).
    Rerun,
    /// Run its `undo`, then run it again.
    Compensate,
    /// Run the step's `probe`: success means the step is done, failure that it runs again.
    Check,
    /// Stop and ask the operator (the safe default).
    Ask,
}

/// Which failures of an acquiring step mean "refused, nothing acquired". Every condition
/// given must hold (`exit_code: [1]` and `output_matches: "Device or resource busy"`).
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RefusedWhenDecl {
    /// The process exited with one of these codes (`exec`, `shell`, `k8s.exec`, ...).
    #[serde(default)]
    pub exit_code: Option<Sp<Vec<i32>>>,
    /// The HTTP response had one of these statuses (`http`).
    #[serde(default)]
    pub status: Option<Sp<Vec<u16>>>,
    /// A regular expression found in what the step got back: a process's stdout or stderr,
    /// an HTTP response's body.
    #[serde(default)]
    pub output_matches: Option<Sp<String>>,
}

/// An inline action (`undo:`): a step type and its arguments.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ActionDecl {
    /// The action's step type (`exec`, `http`, `k8s.scale`, ...).
    #[serde(rename = "type")]
    pub step_type: Sp<String>,
    /// Arguments of the action's step type; strings are templates.
    #[serde(default)]
    pub with: Option<Node>,
    /// Longest time one attempt may take (`30s`, `2h`).
    #[serde(default)]
    pub timeout: Option<Sp<String>>,
    /// Retries of a failed attempt: `attempts` and a `backoff`.
    #[serde(default)]
    pub retry: Option<RetryDecl>,
}

/// Retries after a failed attempt, with exponential backoff.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RetryDecl {
    /// Total attempts, including the first (at least 1).
    pub attempts: Sp<u32>,
    /// Delays between attempts: `initial`, `factor`, `max`, `jitter`.
    #[serde(default)]
    pub backoff: Option<BackoffDecl>,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BackoffDecl {
    /// Delay before the second attempt (default `1s`).
    #[serde(default)]
    pub initial: Option<Sp<String>>,
    /// Multiplier per attempt (default 2).
    #[serde(default)]
    pub factor: Option<Sp<f64>>,
    /// Upper bound of one delay (default `60s`).
    #[serde(default)]
    pub max: Option<Sp<String>>,
    /// Randomize each delay between half and all of it (default true).
    #[serde(default)]
    pub jitter: Option<bool>,
}
