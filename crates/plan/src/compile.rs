//! Compiling: a loaded plan plus param values becomes the [`CompiledPlan`]: `for_each`
//! expanded, params resolved per scope, durations parsed, and a petgraph DAG with the
//! `needs` edges plus undo and cleanup edges. Preview, graph and run all read this one value.

use crate::diagnostic::{Code, Diagnostic};
use crate::params::{self, MissingValues, ParamInputs, ResolvedParams};
use crate::plan::{LoadedPlan, ResumePolicy, RetryDecl};
use crate::source::de::Sp;
use crate::source::{Node, NodeValue, Sources, Span};
use crate::step::DynStepType;
use crate::template::{self, Redactor};
use minijinja::Value;
use petgraph::graph::{DiGraph, NodeIndex};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum EdgeKind {
    /// `needs`: the target starts after the source succeeded.
    Needs,
    /// A step to its compensation.
    Undo,
    /// An acquiring step to the step that releases the resource on every path.
    Cleanup,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GraphNode {
    Step(usize),
    Undo(usize),
}

#[derive(Debug, Clone)]
pub struct RetryPolicy {
    pub attempts: u32,
    pub initial: Duration,
    pub factor: f64,
    pub max: Duration,
    pub jitter: bool,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            attempts: 1,
            initial: Duration::from_secs(1),
            factor: 2.0,
            max: Duration::from_secs(60),
            jitter: true,
        }
    }
}

impl RetryPolicy {
    /// Delay before attempt `next` (2 = first retry), without jitter.
    pub fn delay(&self, next: u32) -> Duration {
        let exp = self.factor.powi(next.saturating_sub(2) as i32);
        let secs = (self.initial.as_secs_f64() * exp).min(self.max.as_secs_f64());
        // Never a panic: NaN or a value past Duration's range falls back to `max`.
        Duration::try_from_secs_f64(secs.max(0.0)).unwrap_or(self.max)
    }
}

/// An inline action (`undo:`) ready to render and run.
#[derive(Clone)]
pub struct CompiledAction {
    pub kind: Arc<dyn DynStepType>,
    pub with: Node,
    /// The worst case of its arguments destroys data: it gets the same gate as a
    /// destructive step (`--force` or a yes), in rollback and resume too.
    pub destructive: bool,
    pub timeout: Option<Duration>,
    pub retry: RetryPolicy,
}

#[derive(Clone)]
pub struct CompiledStep {
    pub id: String,
    pub span: Span,
    pub description: Option<String>,
    pub kind: Arc<dyn DynStepType>,
    pub with: Node,
    pub scope: usize,
    pub item: Option<(serde_json::Value, usize)>,
    pub needs: Vec<usize>,
    pub when: Option<Sp<String>>,
    pub retry: RetryPolicy,
    pub timeout: Option<Duration>,
    pub undo: Option<CompiledAction>,
    pub acquires: Vec<String>,
    pub releases: Vec<String>,
    /// The failures that mean its acquire was refused (nothing acquired): its release
    /// does not run after one.
    pub refused_when: Option<crate::refusal::Refusal>,
    pub always: bool,
    pub destructive: bool,
    pub on_resume: ResumePolicy,
    /// What `on_resume: check` runs.
    pub probe: Option<CompiledAction>,
    /// The `timeout:` as written when it reads a param without a value (a preview with
    /// placeholders); `timeout` is then `None`.
    pub timeout_pending: Option<String>,
    /// The steps whose outputs this step's templates may read (ascending), so its template
    /// context holds only those instead of every step of the plan (which made each render
    /// cost O(plan size), and a run or preview of N steps O(N²)). `None` when a template
    /// reaches `steps` other than as `steps.<name>` (e.g. `steps[name]`): then it holds all.
    pub reads: Option<Vec<usize>>,
    /// A `for_each` over a list a step before it produces (run-time fan-out): this step
    /// stands for its items until the executor expands it (see [`CompiledPlan::expand`]).
    pub fan_out: Option<FanOut>,
}

/// A `for_each` rendered at run time, when the step becomes ready (all its `needs` done).
#[derive(Clone, Debug)]
pub struct FanOut {
    /// The `for_each` node as written.
    pub list: Node,
    /// What it reads, for people: `⟨steps.list.outputs.json.dbs⟩`.
    pub label: String,
    /// The item steps, once expanded (`None` before): the step itself then needs them all,
    /// so it finishes (and what needs it starts) once every item succeeded or was skipped.
    pub items: Option<Vec<usize>>,
}

impl FanOut {
    /// The `for_each` as written, for messages and the journal.
    pub fn text(&self) -> String {
        match &self.list.value {
            NodeValue::Str(t) => t.clone(),
            _ => self.label.clone(),
        }
    }
}

/// Whether a `for_each` reads other steps' outputs, so its list is known only at run time.
pub fn for_each_at_run_time(node: &Node) -> bool {
    let mut found = false;
    node.walk_strings(&mut |_, text| {
        if crate::source::de::is_template(text) {
            let mut names = Vec::new();
            found |= step_refs(text, &mut names).is_none_or(|()| !names.is_empty());
        }
    });
    found
}

/// `⟨steps.x.outputs.y⟩` for a `for_each: "{{ steps.x.outputs.y }}"`: the expression
/// between the braces, trimmed, as a placeholder.
fn fan_out_label(node: &Node) -> String {
    let text = match &node.value {
        NodeValue::Str(t) => t.clone(),
        _ => return format!("{}for_each⟩", template::PLACEHOLDER_OPEN),
    };
    let inner = text
        .trim()
        .strip_prefix("{{")
        .and_then(|t| t.strip_suffix("}}"))
        .map_or(text.as_str(), str::trim);
    format!("{}{inner}⟩", template::PLACEHOLDER_OPEN)
}

impl CompiledStep {
    /// Runs in the rollback phase too: releases a resource, or `always`.
    pub fn is_cleanup(&self) -> bool {
        self.always || !self.releases.is_empty()
    }
}

/// Param values of one scope (the plan, or one fragment instance), real and masked.
#[derive(Debug, Clone)]
pub struct ScopeParams {
    pub real: serde_json::Map<String, serde_json::Value>,
    pub masked: serde_json::Map<String, serde_json::Value>,
    /// Qualified-id prefix of the fragment's steps (`tsdb.`), empty for the plan.
    pub prefix: String,
    /// The params of this scope whose value is a placeholder (`⟨params.x⟩`), which
    /// templates see as a placeholder object: a preview renders `{{ params.x }}/dump` as
    /// `⟨params.x⟩/dump` and `params.x.y` as `⟨params.x.y⟩`.
    pub placeholders: Vec<String>,
}

#[derive(Clone)]
pub struct CompiledPlan {
    pub name: String,
    pub system: Option<String>,
    pub version: Option<String>,
    pub applies_to: Option<String>,
    pub description: Option<String>,
    pub path: std::path::PathBuf,
    pub content_hash: String,
    pub sources: Arc<Sources>,
    pub params: ResolvedParams,
    pub scopes: Vec<ScopeParams>,
    pub steps: Vec<CompiledStep>,
    pub graph: DiGraph<GraphNode, EdgeKind>,
    pub locks: Vec<String>,
    pub redactor: Arc<Redactor>,
    /// The plan's params that had no value and were compiled as placeholders (empty unless
    /// compiled with [`MissingValues::Placeholder`]).
    pub not_given: Vec<String>,
    /// Compiled with [`MissingValues::Placeholder`]: for preview and graph only, never run.
    pub preview_only: bool,
}

impl CompiledPlan {
    pub fn index_of(&self, id: &str) -> Option<usize> {
        self.steps.iter().position(|s| s.id == id)
    }

    /// Steps grouped in stages: each stage's steps need only steps of earlier stages, so a
    /// stage's steps may run in parallel.
    pub fn stages(&self) -> Vec<Vec<usize>> {
        let mut level = vec![0usize; self.steps.len()];
        // Steps are kept in a topological order by `compile`.
        for (i, s) in self.steps.iter().enumerate() {
            level[i] = s.needs.iter().map(|&n| level[n] + 1).max().unwrap_or(0);
        }
        let depth = level.iter().copied().max().map_or(0, |m| m + 1);
        let mut stages = vec![Vec::new(); depth];
        for (i, l) in level.iter().enumerate() {
            stages[*l].push(i);
        }
        stages
    }

    /// Expands run-time fan-out step `group` into one step per item, appended to the plan:
    /// each is the group's step with its `item`, an id as a static `for_each` gives
    /// (`id[name]`, else `id[index]`), the group's `needs`, and no `fan_out`. The group then
    /// needs its items. Returns their indices. The executor calls it when the group becomes
    /// ready; resume calls it with the items the journal recorded.
    pub fn expand(&mut self, group: usize, items: &[serde_json::Value]) -> Vec<usize> {
        let base = self.steps[group].clone();
        let count = items.len();
        let mut ids = Vec::with_capacity(count);
        for (i, v) in items.iter().enumerate() {
            let mut step = base.clone();
            step.id = format!("{}[{}]", base.id, item_label(v, i, count));
            step.item = Some((v.clone(), i));
            step.fan_out = None;
            ids.push(self.steps.len());
            self.steps.push(step);
        }
        let g = &mut self.steps[group];
        g.needs.extend(ids.iter().copied());
        if let Some(f) = &mut g.fan_out {
            f.items = Some(ids.clone());
        }
        build_graph(self);
        ids
    }

    /// Every step that `step` transitively needs.
    pub fn ancestors(&self, step: usize) -> Vec<bool> {
        let mut seen = vec![false; self.steps.len()];
        let mut stack = self.steps[step].needs.clone();
        while let Some(n) = stack.pop() {
            if !seen[n] {
                seen[n] = true;
                stack.extend(self.steps[n].needs.iter().copied());
            }
        }
        seen
    }

    /// The template context of a step: params of its scope, outputs known so far, its item.
    pub fn context(
        &self,
        step: usize,
        outputs: &HashMap<usize, serde_json::Value>,
        real: bool,
        placeholders: bool,
        run: &serde_json::Value,
    ) -> Value {
        let s = &self.steps[step];
        context_for(
            self,
            s.scope,
            s.item.as_ref(),
            outputs,
            real,
            placeholders,
            run,
            s.reads.as_deref(),
        )
    }
}

/// The `run.*` attributes a template can read (validation refuses any other):
/// `id`, `started` (RFC 3339, UTC, to the second), and how the run is going, which
/// cleanup, `always` steps and undo read: `status` (`succeeded` until a step fails or the
/// run is cancelled, then `failed` or `cancelled`), `failed_step` (the id of the step whose
/// failure started the rollback, else empty) and `error` (that step's error, or what
/// cancelled the run, secrets masked; else empty).
pub const RUN_ATTRIBUTES: &[&str] = &["id", "started", "status", "failed_step", "error"];

/// The `run` value of templates. `status` is `succeeded`, `failed` or `cancelled`.
pub fn run_value(
    id: &str,
    started: &str,
    status: &str,
    failed_step: &str,
    error: &str,
) -> serde_json::Value {
    serde_json::json!({
        "id": id,
        "started": started,
        "status": status,
        "failed_step": failed_step,
        "error": error,
    })
}

/// The `run` value preview shows: every attribute decided at run time (`⟨run status⟩`).
pub fn run_placeholders() -> serde_json::Value {
    serde_json::Value::Object(
        RUN_ATTRIBUTES
            .iter()
            .map(|a| (a.to_string(), format!("⟨run {a}⟩").into()))
            .collect(),
    )
}

/// The step id and error of a rollback reason `step `ID` failed: ERROR` (the form the
/// executor gives it, also kept in the journal for a resumed rollback).
pub fn failed_step_of(reason: &str) -> Option<(&str, &str)> {
    let rest = reason.strip_prefix("step `")?;
    let (id, error) = rest.split_once("` failed: ")?;
    Some((id, error))
}

/// The `steps.<name>` references in one template text, or `None` when the text uses
/// `steps` in any other way (then the template may read any step). Conservative: an
/// occurrence in a string literal or in plain text also counts.
fn step_refs(text: &str, names: &mut Vec<String>) -> Option<()> {
    let ident = |c: char| c.is_ascii_alphanumeric() || c == '_';
    for (at, _) in text.match_indices("steps") {
        let before = text[..at].chars().next_back();
        if before.is_some_and(|c| ident(c) || c == '.') {
            continue; // part of another name (`my_steps`) or an attribute (`x.steps`)
        }
        let rest = &text[at + "steps".len()..];
        if rest.chars().next().is_some_and(ident) {
            continue; // a longer name (`steps2`)
        }
        let rest = rest.trim_start().strip_prefix('.')?.trim_start();
        let len = rest.find(|c: char| !ident(c)).unwrap_or(rest.len());
        if len == 0 {
            return None;
        }
        names.push(rest[..len].to_string());
    }
    Some(())
}

/// Fills `reads` of every step: the steps that may be reached under the names the step's
/// templates use, in every way `context_for` names a step (its id, its id with `_` for `-`,
/// and its id without the reading scope's prefix, also with `_`).
fn resolve_reads(plan: &mut CompiledPlan) {
    let norm = |s: &str| s.replace('-', "_");
    let mut by_name: HashMap<String, Vec<usize>> = HashMap::new();
    for (i, s) in plan.steps.iter().enumerate() {
        by_name.entry(norm(&s.id)).or_default().push(i);
    }
    let mut all_reads = Vec::with_capacity(plan.steps.len());
    for s in &plan.steps {
        let mut texts: Vec<&str> = Vec::new();
        let nodes =
            std::iter::once(&s.with).chain(s.undo.iter().chain(s.probe.iter()).map(|a| &a.with));
        for node in nodes {
            node.walk_strings(&mut |_, text| {
                if crate::source::de::is_template(text) {
                    texts.push(text);
                }
            });
        }
        if let Some(w) = &s.when {
            texts.push(&w.value);
        }
        if let Some(f) = &s.fan_out {
            f.list.walk_strings(&mut |_, text| texts.push(text));
        }
        let mut names = Vec::new();
        let dynamic = texts.iter().any(|t| step_refs(t, &mut names).is_none());
        all_reads.push(if dynamic {
            None
        } else {
            let prefix = norm(&plan.scopes[s.scope].prefix);
            let mut reads: Vec<usize> = names
                .iter()
                .flat_map(|n| {
                    let n = norm(n);
                    let local = format!("{prefix}{n}");
                    let found = by_name.get(&n).into_iter().flatten();
                    found.chain(by_name.get(&local).into_iter().flatten())
                })
                .copied()
                .collect();
            reads.sort_unstable();
            reads.dedup();
            Some(reads)
        });
    }
    for (s, reads) in plan.steps.iter_mut().zip(all_reads) {
        s.reads = reads;
    }
}

#[allow(clippy::too_many_arguments)]
fn context_for(
    plan: &CompiledPlan,
    scope: usize,
    item: Option<&(serde_json::Value, usize)>,
    outputs: &HashMap<usize, serde_json::Value>,
    real: bool,
    placeholders: bool,
    run: &serde_json::Value,
    reads: Option<&[usize]>,
) -> Value {
    let scope_params = &plan.scopes[scope];
    let mut steps_map: std::collections::BTreeMap<String, Value> = Default::default();
    let candidates: Box<dyn Iterator<Item = usize>> = match reads {
        Some(reads) => Box::new(reads.iter().copied()),
        // A template that reads steps dynamically, before any output exists (compile):
        // no step has an entry, without a walk over every step.
        None if outputs.is_empty() && !placeholders => Box::new(std::iter::empty()),
        None => Box::new(0..plan.steps.len()),
    };
    for i in candidates {
        let s = &plan.steps[i];
        let v = match outputs.get(&i) {
            Some(out) => template::json_to_value(&serde_json::json!({ "outputs": out })),
            None if placeholders => {
                let mut m = std::collections::BTreeMap::new();
                m.insert(
                    "outputs",
                    Value::from_object(template::Placeholder(format!("steps.{}.outputs", s.id))),
                );
                Value::from(m)
            }
            // A step that has not run, or failed without outputs, has no entry: plans test
            // `steps['x'] is defined` to learn whether x ran (dop-restore-postgres decides
            // from it whether a cleanup may scale up on a dropped database). A skipped step
            // has an empty `outputs` (the executor records `{}`), so `steps.x.outputs.y is
            // defined` is false and `| default(…)` applies.
            None => continue,
        };
        // Ids are reachable as written, with `_` for `-`, and unqualified inside a fragment.
        let mut names = vec![s.id.clone()];
        if let Some(local) = s.id.strip_prefix(&scope_params.prefix) {
            names.push(local.to_string());
        }
        for n in names {
            steps_map.insert(n.replace('-', "_"), v.clone());
            steps_map.insert(n, v.clone());
        }
    }
    let params = if real {
        &scope_params.real
    } else {
        &scope_params.masked
    };
    let mut ctx = serde_json::json!({
        "params": {},
        "plan": {
            "name": plan.name, "version": plan.version, "system": plan.system,
        },
        "run": run,
    });
    if let Some((value, index)) = item {
        ctx["item"] = value.clone();
        ctx["item_index"] = (*index).into();
    }
    let mut value: std::collections::BTreeMap<String, Value> = ctx
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), template::json_to_value(v)))
                .collect()
        })
        .unwrap_or_default();
    value.insert("steps".into(), Value::from(steps_map));
    let params: std::collections::BTreeMap<String, Value> = params
        .iter()
        .map(|(k, v)| {
            let v = match v.as_str().and_then(placeholder_inner) {
                Some(inner) if scope_params.placeholders.contains(k) => {
                    Value::from_object(template::Placeholder(inner.to_string()))
                }
                _ => template::json_to_value(v),
            };
            (k.clone(), v)
        })
        .collect();
    value.insert("params".into(), Value::from(params));
    if plan.preview_only {
        if let Some(inner) = item
            .and_then(|(v, _)| v.as_str())
            .and_then(placeholder_inner)
        {
            value.insert(
                "item".into(),
                Value::from_object(template::Placeholder(inner.to_string())),
            );
        }
    }
    Value::from(value)
}

/// `x` of a string that is exactly one placeholder `⟨x⟩`.
fn placeholder_inner(s: &str) -> Option<&str> {
    s.strip_prefix(template::PLACEHOLDER_OPEN)?
        .strip_suffix('⟩')
        .filter(|inner| !inner.contains(template::PLACEHOLDER_OPEN))
}

/// Whether any string in a node holds a placeholder.
fn holds_placeholder(node: &Node) -> bool {
    let mut found = false;
    node.walk_strings(&mut |_, s| found |= s.contains(template::PLACEHOLDER_OPEN));
    found
}

fn parse_duration(text: &Sp<String>, what: &str) -> Result<Duration, Diagnostic> {
    crate::fields::parse_duration(&text.value).map_err(|e| {
        Diagnostic::new(
            Code::BadDuration,
            format!("bad {what} `{}`: {e}", text.value),
        )
        .label(text.span, "not a duration")
        .help("write a duration such as 500ms, 30s, 5m, 2h or 1h 30m")
    })
}

/// Renders a param-only template field (timeouts, durations) in a scope.
fn render_static(
    text: &Sp<String>,
    ctx: &Value,
    sources: &Sources,
) -> Result<Sp<String>, Diagnostic> {
    let node = Node::new(text.span, NodeValue::Str(text.value.clone()));
    let out = template::render_node(&node, ctx, Some(sources))?;
    Ok(Sp::new(out.scalar_text(), text.span))
}

pub fn retry_policy(
    decl: Option<&RetryDecl>,
    ctx: &Value,
    sources: &Sources,
) -> Result<RetryPolicy, Diagnostic> {
    let mut policy = RetryPolicy::default();
    let Some(decl) = decl else { return Ok(policy) };
    policy.attempts = (decl.attempts.value).max(1);
    if let Some(b) = &decl.backoff {
        if let Some(i) = &b.initial {
            policy.initial = parse_duration(&render_static(i, ctx, sources)?, "backoff")?;
        }
        if let Some(m) = &b.max {
            policy.max = parse_duration(&render_static(m, ctx, sources)?, "backoff")?;
        }
        if let Some(f) = &b.factor {
            policy.factor = f.value;
        }
        if let Some(j) = b.jitter {
            policy.jitter = j;
        }
    }
    Ok(policy)
}

/// Compiles a validated plan with param values. Errors here are the ones that need values:
/// missing or mistyped params, `for_each` lists, templated durations and lock names.
pub fn compile(
    plan: &LoadedPlan,
    sources: Arc<Sources>,
    inputs: &ParamInputs,
    given: &[(Node, Node)],
) -> Result<CompiledPlan, Vec<Diagnostic>> {
    compile_with(plan, sources, inputs, given, MissingValues::Refuse)
}

/// [`compile`], with `missing` saying what a param without a value becomes. With
/// [`MissingValues::Placeholder`] (preview, graph) a missing value is `⟨params.NAME⟩`
/// wherever it is rendered, a `for_each` over it is one step `id[⟨params.NAME⟩]` whose
/// `item` is `⟨item⟩`, and a timeout that reads it is shown as written; the plan is marked
/// [`CompiledPlan::preview_only`].
pub fn compile_with(
    plan: &LoadedPlan,
    sources: Arc<Sources>,
    inputs: &ParamInputs,
    given: &[(Node, Node)],
    missing: MissingValues,
) -> Result<CompiledPlan, Vec<Diagnostic>> {
    let doc = &plan.doc;
    let placeholder_mode = missing == MissingValues::Placeholder;
    let resolved = params::resolve_with(
        &doc.params,
        given,
        &inputs.set,
        inputs.read_secrets,
        "--params",
        missing,
    )?;
    let not_given = resolved.not_given();
    let mut secrets: Vec<String> = resolved.secret_values().collect();
    let mut diags = Vec::new();
    let run_stub = run_value("preview", "1970-01-01T00:00:00Z", "succeeded", "", "");

    // Scope params: the plan's, then each fragment's from its rendered `with:`.
    let mut scopes = vec![ScopeParams {
        real: resolved.to_json(true),
        masked: resolved.to_json(false),
        prefix: String::new(),
        placeholders: not_given.clone(),
    }];
    let mut compiled = CompiledPlan {
        name: doc.metadata.name.value.clone(),
        system: doc.metadata.system.as_ref().map(|s| s.value.clone()),
        version: doc.metadata.version.as_ref().map(|s| s.value.clone()),
        applies_to: doc.metadata.applies_to.as_ref().map(|s| s.value.clone()),
        description: doc.metadata.description.clone(),
        path: plan.path.clone(),
        content_hash: plan.content_hash.clone(),
        sources: sources.clone(),
        params: resolved,
        scopes: Vec::new(),
        steps: Vec::new(),
        graph: DiGraph::new(),
        locks: Vec::new(),
        redactor: Arc::new(Redactor::default()),
        not_given,
        preview_only: placeholder_mode,
    };
    for (i, scope) in plan.scopes.iter().enumerate().skip(1) {
        let Some((args, parent)) = &scope.args else {
            continue;
        };
        compiled.scopes = scopes.clone();
        let render = |real: bool| {
            let ctx = context_for(
                &compiled,
                *parent,
                None,
                &HashMap::new(),
                real,
                false,
                &run_stub,
                None,
            );
            template::render_node(args, &ctx, Some(&sources))
        };
        let prefix = plan
            .steps
            .iter()
            .find(|s| s.scope == i)
            .map(|s| {
                s.id.value
                    .rsplit_once('.')
                    .map_or(String::new(), |(p, _)| format!("{p}."))
            })
            .unwrap_or_default();
        match (render(true), render(false)) {
            (Ok(real), Ok(masked)) => {
                let entries = |n: &Node| n.as_map().map(<[_]>::to_vec).unwrap_or_default();
                let what = format!("the `with:` of fragment {}", prefix.trim_end_matches('.'));
                match (
                    params::resolve_with(
                        &scope.params,
                        &entries(&real),
                        &[],
                        inputs.read_secrets,
                        &what,
                        missing,
                    ),
                    params::resolve_with(
                        &scope.params,
                        &entries(&masked),
                        &[],
                        false,
                        &what,
                        missing,
                    ),
                ) {
                    (Ok(r), Ok(m)) => {
                        secrets.extend(r.secret_values());
                        // A value passed from a parent param without a value is one too.
                        let placeholders = r
                            .0
                            .iter()
                            .filter(|(_, v)| v.value.as_str().and_then(placeholder_inner).is_some())
                            .map(|(k, _)| k.clone())
                            .collect();
                        // A value passed from a secret of the parent stays masked.
                        scopes.push(ScopeParams {
                            real: r.to_json(true),
                            masked: m.to_json(false),
                            prefix,
                            placeholders,
                        });
                    }
                    (Err(e), _) | (_, Err(e)) => {
                        diags.extend(e);
                        scopes.push(ScopeParams {
                            real: Default::default(),
                            masked: Default::default(),
                            prefix,
                            placeholders: Vec::new(),
                        });
                    }
                }
            }
            (Err(e), _) | (_, Err(e)) => {
                diags.push(e);
                scopes.push(ScopeParams {
                    real: Default::default(),
                    masked: Default::default(),
                    prefix,
                    placeholders: Vec::new(),
                });
            }
        }
    }
    compiled.scopes = scopes;
    compiled.redactor = Arc::new(Redactor::new(secrets));
    if !diags.is_empty() {
        return Err(diags);
    }

    // Expand for_each and resolve needs to indices; steps stay in topological order.
    let order = topo_order(plan);
    compiled.steps.reserve_exact(plan.steps.len());
    let mut expanded: HashMap<String, Vec<usize>> = HashMap::new();
    for &si in &order {
        let step = &plan.steps[si];
        let ctx = context_for(
            &compiled,
            step.scope,
            None,
            &HashMap::new(),
            true,
            false,
            &run_stub,
            None,
        );
        let mut placeholder_label = None;
        let mut fan_out = None;
        let items: Vec<Option<(serde_json::Value, usize)>> = match &step.decl.for_each {
            None => vec![None],
            // Over another step's outputs: one step now, its items when it becomes ready.
            Some(node) if for_each_at_run_time(node) => {
                fan_out = Some(FanOut {
                    list: node.clone(),
                    label: fan_out_label(node),
                    items: None,
                });
                vec![Some((
                    serde_json::Value::String(format!("{}item⟩", template::PLACEHOLDER_OPEN)),
                    0,
                ))]
            }
            Some(node) => match template::render_node(node, &ctx, Some(&sources)) {
                // A list not given: one step stands for all of its items.
                Ok(Node {
                    value: NodeValue::Str(text),
                    ..
                }) if placeholder_mode && text.contains(template::PLACEHOLDER_OPEN) => {
                    placeholder_label = Some(text);
                    vec![Some((
                        serde_json::Value::String(format!("{}item⟩", template::PLACEHOLDER_OPEN)),
                        0,
                    ))]
                }
                Ok(Node {
                    value: NodeValue::Seq(items),
                    ..
                }) => items
                    .iter()
                    .enumerate()
                    .map(|(i, n)| Some((n.to_json(), i)))
                    .collect(),
                Ok(other) => {
                    diags.push(
                        Diagnostic::new(Code::ForEach, format!("`for_each` must give a list, it gave {}", other.kind_name()))
                            .label(node.span, "not a list")
                            .help("give a YAML list or a template that is a list param, e.g. \"{{ params.buckets }}\""),
                    );
                    continue;
                }
                Err(d) => {
                    diags.push(d);
                    continue;
                }
            },
        };
        let Some(kind) = step.kind(&plan.registry).cloned() else {
            continue;
        };
        let needs: Vec<usize> = step
            .needs
            .iter()
            .flat_map(|n| expanded.get(&n.value).cloned().unwrap_or_default())
            .collect();
        let mut timeout_pending = None;
        let timeout = match &step.decl.timeout {
            Some(t) => match render_static(t, &ctx, &sources) {
                Ok(r) if placeholder_mode && r.value.contains(template::PLACEHOLDER_OPEN) => {
                    timeout_pending = Some(r.value);
                    None
                }
                r => match r.and_then(|t| parse_duration(&t, "timeout")) {
                    Ok(d) => Some(d),
                    Err(d) => {
                        diags.push(d);
                        None
                    }
                },
            },
            None => None,
        };
        let retry = retry_policy(step.decl.retry.as_deref(), &ctx, &sources).unwrap_or_else(|d| {
            // A backoff that reads a param without a value: the default is shown.
            if !placeholder_mode {
                diags.push(d);
            }
            RetryPolicy::default()
        });
        let action = |u: &crate::plan::ActionDecl| {
            let kind = plan.registry.lookup(&u.step_type.value)?.clone();
            let with = u
                .with
                .clone()
                .unwrap_or_else(|| Node::new(u.step_type.span, NodeValue::Map(vec![])));
            Some(CompiledAction {
                destructive: kind.destructive(&with),
                kind: kind.clone(),
                with,
                timeout: u.timeout.as_ref().and_then(|t| {
                    render_static(t, &ctx, &sources)
                        .and_then(|t| parse_duration(&t, "timeout"))
                        .ok()
                }),
                retry: retry_policy(u.retry.as_ref(), &ctx, &sources).unwrap_or_default(),
            })
        };
        let undo = step.decl.undo.as_deref().and_then(action);
        let probe = step.decl.probe.as_deref().and_then(action);
        let with = step
            .decl
            .with
            .clone()
            .unwrap_or_else(|| Node::new(step.id.span, NodeValue::Map(vec![])));
        // Decided from the arguments rendered with the params where they need nothing else
        // (`delete: "{{ params.prune }}"`); otherwise a templated flag counts as set.
        // Rendering is needed only when the worst case says the step may destroy data.
        // A flag that reads a param without a value counts as set (the worst case).
        let destructive = kind.destructive(&with)
            && match template::render_node(&with, &ctx, None) {
                Ok(rendered) if placeholder_mode && holds_placeholder(&rendered) => true,
                Ok(rendered) => kind.destructive_rendered(&rendered),
                Err(_) => true,
            };
        let count = items.len();
        let mut ids = Vec::new();
        for item in items {
            let id = match (&item, &placeholder_label) {
                (None, _) => step.id.value.clone(),
                (Some(_), _) if fan_out.is_some() => step.id.value.clone(),
                (Some(_), Some(label)) => format!("{}[{label}]", step.id.value),
                (Some((v, i)), None) => {
                    format!("{}[{}]", step.id.value, item_label(v, *i, count))
                }
            };
            ids.push(compiled.steps.len());
            compiled.steps.push(CompiledStep {
                id,
                span: step.id.span,
                description: step.decl.description.clone(),
                kind: kind.clone(),
                destructive: step.decl.destructive || destructive,
                with: with.clone(),
                scope: step.scope,
                item,
                needs: needs.clone(),
                when: step.decl.when.clone(),
                retry: retry.clone(),
                timeout,
                undo: undo.clone(),
                acquires: step
                    .decl
                    .acquires
                    .0
                    .iter()
                    .map(|s| s.value.clone())
                    .collect(),
                releases: step
                    .decl
                    .releases
                    .0
                    .iter()
                    .map(|s| s.value.clone())
                    .collect(),
                refused_when: step
                    .decl
                    .refused_when
                    .as_deref()
                    .and_then(crate::refusal::Refusal::compile),
                always: step.decl.always,
                on_resume: step
                    .decl
                    .on_resume
                    .as_ref()
                    .map_or_else(|| default_resume(&kind, &with, &step.decl), |p| p.value),
                probe: probe.clone(),
                reads: None,
                timeout_pending: timeout_pending.clone(),
                fan_out: fan_out.clone(),
            });
        }
        expanded.insert(step.id.value.clone(), ids);
    }
    // Locks are rendered with the plan's params.
    let ctx = context_for(
        &compiled,
        0,
        None,
        &HashMap::new(),
        true,
        false,
        &run_stub,
        None,
    );
    for lock in &doc.locks {
        match render_static(lock, &ctx, &sources) {
            Ok(l) => compiled.locks.push(l.value),
            Err(d) => diags.push(d),
        }
    }
    if !diags.is_empty() {
        return Err(diags);
    }
    resolve_reads(&mut compiled);
    build_graph(&mut compiled);
    Ok(compiled)
}

/// The safe `on_resume` when the plan does not say: a release or `always` step reruns
/// (cleanup must be idempotent anyway), so does an idempotent step type; anything else asks.
fn default_resume(
    kind: &Arc<dyn DynStepType>,
    with: &Node,
    decl: &crate::plan::StepDecl,
) -> ResumePolicy {
    if decl.always || !decl.releases.0.is_empty() || kind.idempotent(with) {
        ResumePolicy::Rerun
    } else {
        ResumePolicy::Ask
    }
}

/// A readable suffix for an expanded step: the item when it is a short name, else its index.
fn item_label(v: &serde_json::Value, i: usize, _count: usize) -> String {
    let s = match v {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Number(n) => n.to_string(),
        _ => return i.to_string(),
    };
    if !s.is_empty()
        && s.len() <= 40
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.:/".contains(c))
    {
        s
    } else {
        i.to_string()
    }
}

/// Indices of `plan.steps` in an order where every step follows what it needs (validation
/// has rejected cycles; any left are broken arbitrarily).
fn topo_order(plan: &LoadedPlan) -> Vec<usize> {
    let index: HashMap<&str, usize> = plan
        .steps
        .iter()
        .enumerate()
        .map(|(i, s)| (s.id.value.as_str(), i))
        .collect();
    let mut graph = DiGraph::<usize, ()>::new();
    let nodes: Vec<NodeIndex> = (0..plan.steps.len()).map(|i| graph.add_node(i)).collect();
    for (i, s) in plan.steps.iter().enumerate() {
        for n in &s.needs {
            if let Some(&j) = index.get(n.value.as_str()) {
                graph.add_edge(nodes[j], nodes[i], ());
            }
        }
    }
    match petgraph::algo::toposort(&graph, None) {
        Ok(order) => order.into_iter().map(|n| graph[n]).collect(),
        Err(_) => (0..plan.steps.len()).collect(),
    }
}

fn build_graph(plan: &mut CompiledPlan) {
    let mut g = DiGraph::new();
    let nodes: Vec<NodeIndex> = (0..plan.steps.len())
        .map(|i| g.add_node(GraphNode::Step(i)))
        .collect();
    for (i, s) in plan.steps.iter().enumerate() {
        for &n in &s.needs {
            g.add_edge(nodes[n], nodes[i], EdgeKind::Needs);
        }
        if s.undo.is_some() {
            let u = g.add_node(GraphNode::Undo(i));
            g.add_edge(nodes[i], u, EdgeKind::Undo);
        }
    }
    for (i, s) in plan.steps.iter().enumerate() {
        for r in &s.releases {
            for (j, a) in plan.steps.iter().enumerate() {
                if a.acquires.contains(r) {
                    g.add_edge(nodes[j], nodes[i], EdgeKind::Cleanup);
                }
            }
        }
    }
    plan.graph = g;
}
