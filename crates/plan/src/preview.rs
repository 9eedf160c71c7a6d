//! Preview: what a run would do, computed from the same compiled plan the run uses, with
//! every template rendered (outputs not yet known shown as ⟨placeholders⟩) and secrets
//! masked. Touches nothing.

use crate::compile::CompiledPlan;
use crate::rollback::{self, RollbackPlan, State};
use crate::source::{Node, NodeValue};
use crate::step::StepStatus;
use crate::template;
use serde::Serialize;
use std::collections::HashMap;
use std::fmt::Write;

#[derive(Debug, Serialize)]
pub struct Preview {
    pub plan: String,
    /// The plan's `metadata.description` (Markdown and text; JSON is unchanged).
    #[serde(skip)]
    pub description: Option<String>,
    pub version: Option<String>,
    pub system: Option<String>,
    pub applies_to: Option<String>,
    pub file: String,
    pub params: Vec<ParamLine>,
    /// Params without a value, shown as `⟨params.NAME⟩` wherever they are rendered; a run
    /// needs them all.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub not_given: Vec<String>,
    pub locks: Vec<String>,
    pub stages: Vec<Vec<StepPreview>>,
    pub rollback_map: Vec<RollbackEntry>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fail_at: Option<FailurePath>,
}

#[derive(Debug, Serialize)]
pub struct ParamLine {
    pub name: String,
    pub value: serde_json::Value,
    pub source: String,
}

#[derive(Debug, Serialize)]
pub struct StepPreview {
    pub id: String,
    #[serde(rename = "type")]
    pub step_type: String,
    pub description: Option<String>,
    pub action: String,
    pub with: serde_json::Value,
    pub needs: Vec<String>,
    /// `true`, `false` (skipped), or the condition when it needs run-time outputs.
    pub when: Option<String>,
    pub destructive: bool,
    pub acquires: Vec<String>,
    pub releases: Vec<String>,
    pub always: bool,
    /// Its `refused_when`, as a person reads it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refused_when: Option<String>,
    pub retry: Option<String>,
    pub timeout: Option<String>,
    pub undo: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct RollbackEntry {
    pub step: String,
    pub undo: Vec<String>,
    pub cleanup: Vec<String>,
    /// A step with `refused_when`: what runs when its failure is a refusal (nothing
    /// acquired), where `undo` and `cleanup` above are for any other failure.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub if_refused: Option<RefusedPath>,
}

#[derive(Debug, Serialize)]
pub struct RefusedPath {
    pub undo: Vec<String>,
    pub cleanup: Vec<String>,
    /// Resources whose release does not run: their acquire was refused.
    pub not_released: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct FailurePath {
    pub step: String,
    /// `--fail-at STEP:refused`: the failure matched the step's `refused_when`.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub refused: bool,
    /// The step's `refused_when`, as a person reads it (with `refused`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refused_when: Option<String>,
    /// Resources whose release does not run: their acquire was refused.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub not_released: Vec<String>,
    pub completed: Vec<String>,
    pub cancelled: Vec<String>,
    pub undo: Vec<String>,
    pub cleanup: Vec<String>,
}

/// Skipped-by-`when` per step, where the condition can be decided from params alone.
fn static_skips(plan: &CompiledPlan) -> (Vec<bool>, Vec<Option<String>>) {
    let mut skipped = vec![false; plan.steps.len()];
    let mut shown = vec![None; plan.steps.len()];
    let run = serde_json::json!({"id": "preview"});
    for (i, s) in plan.steps.iter().enumerate() {
        let Some(when) = &s.when else { continue };
        // A condition that reads step outputs, the run's state or a param without a value
        // cannot be decided before the run: evaluating it on the missing values would show a
        // guess (`is defined` → false) as a decision.
        if runtime_dependent(&when.value) || reads_not_given(plan, i, &when.value) {
            shown[i] = Some(format!(
                "{} (decided at run time)",
                template::condition_expression(&when.value)
            ));
            continue;
        }
        let ctx = plan.context(i, &HashMap::new(), false, false, &run);
        shown[i] = Some(
            match template::eval_condition(when.span, &when.value, &ctx) {
                Ok(true) => "true".to_string(),
                Ok(false) => {
                    skipped[i] = true;
                    "false (skipped)".to_string()
                }
                Err(_) => format!(
                    "{} (decided at run time)",
                    template::condition_expression(&when.value)
                ),
            },
        );
    }
    (skipped, shown)
}

/// Whether a template reads what only the run knows: step outputs or `run.*`.
pub fn runtime_dependent(text: &str) -> bool {
    let vars = crate::validate::template_variables(text);
    vars.iter()
        .any(|v| v == "steps" || v.starts_with("steps.") || v == "run" || v.starts_with("run."))
}

/// Whether a template reads a param of the step's scope that has no value (a placeholder).
fn reads_not_given(plan: &CompiledPlan, step: usize, text: &str) -> bool {
    let missing = &plan.scopes[plan.steps[step].scope].placeholders;
    if missing.is_empty() {
        return false;
    }
    crate::validate::template_variables(text).iter().any(|v| {
        v == "params"
            || v.strip_prefix("params.")
                .is_some_and(|rest| missing.iter().any(|m| rest.split('.').next() == Some(m)))
    })
}

/// A decision computed from placeholders is a guess: where a template that is one
/// expression reads run-time values (or a param without a value) and rendered to anything
/// but text (`that: "{{ steps.size.outputs.stdout | int > 1024 }}"` → `false`), the preview
/// shows `⟨expression⟩` instead, which step types describe as decided at run time.
fn undecided(plan: &CompiledPlan, step: usize, written: &Node, rendered: Node) -> Node {
    match (&written.value, rendered.value) {
        // A list or map built from placeholders shows its shape (an argv with
        // ⟨steps.x.outputs.y⟩ in it), which says more than the expression would; a scalar
        // (a condition, a count) would be a guess.
        (NodeValue::Str(s), value)
            if !matches!(
                value,
                NodeValue::Str(_) | NodeValue::Seq(_) | NodeValue::Map(_)
            ) =>
        {
            match template::whole_expression(s) {
                Some(expr) if runtime_dependent(s) || reads_not_given(plan, step, s) => Node::new(
                    rendered.span,
                    NodeValue::Str(format!("{}{expr}⟩", template::PLACEHOLDER_OPEN)),
                ),
                _ => Node::new(rendered.span, value),
            }
        }
        (NodeValue::Seq(written), NodeValue::Seq(items)) if written.len() == items.len() => {
            Node::new(
                rendered.span,
                NodeValue::Seq(
                    written
                        .iter()
                        .zip(items)
                        .map(|(w, r)| undecided(plan, step, w, r))
                        .collect(),
                ),
            )
        }
        (NodeValue::Map(written), NodeValue::Map(entries)) if written.len() == entries.len() => {
            Node::new(
                rendered.span,
                NodeValue::Map(
                    written
                        .iter()
                        .zip(entries)
                        .map(|((_, w), (k, r))| (k, undecided(plan, step, w, r)))
                        .collect(),
                ),
            )
        }
        (_, value) => Node::new(rendered.span, value),
    }
}

/// Renders a step's (or its undo's) arguments for the preview.
fn render_for_preview(
    plan: &CompiledPlan,
    step: usize,
    with: &Node,
    ctx: &minijinja::Value,
) -> Result<Node, crate::diagnostic::Diagnostic> {
    template::render_node(with, ctx, Some(&plan.sources)).map(|r| undecided(plan, step, with, r))
}

pub fn build(plan: &CompiledPlan, fail_at: Option<usize>) -> Preview {
    build_failing(plan, fail_at, false)
}

/// [`build`], with the `--fail-at` step's failure a refusal when `refused`
/// (`--fail-at STEP:refused`).
pub fn build_failing(plan: &CompiledPlan, fail_at: Option<usize>, refused: bool) -> Preview {
    let (skipped, when_shown) = static_skips(plan);
    let run = crate::compile::run_placeholders();
    let step_preview = |i: usize| {
        let s = &plan.steps[i];
        let ctx = plan.context(i, &HashMap::new(), false, true, &run);
        let (action, with) = match render_for_preview(plan, i, &s.with, &ctx) {
            Ok(rendered) => {
                let action = s
                    .kind
                    .describe(&rendered)
                    .map(|a| a.summary)
                    .unwrap_or_else(|d| d.message);
                (action, rendered.to_json())
            }
            // Only run-time values can make rendering fail here (validation passed): show
            // the template as written.
            Err(_) => {
                let action = s
                    .kind
                    .describe(&s.with)
                    .map(|a| a.summary)
                    .unwrap_or_else(|d| d.message);
                (
                    format!("{action}  (rendered at run time)"),
                    s.with.to_json(),
                )
            }
        };
        let undo = s
            .undo
            .as_ref()
            .map(|u| match render_for_preview(plan, i, &u.with, &ctx) {
                Ok(r) => u
                    .kind
                    .describe(&r)
                    .map(|a| a.summary)
                    .unwrap_or_else(|d| d.message),
                Err(d) => format!("cannot render: {}", d.message),
            });
        let mut action = plan.redactor.redact(&action).into_owned();
        // A run-time fan-out is one step here, as a `for_each` over a param without a value.
        if let Some(f) = &s.fan_out {
            action = format!("one step per item of {}: {action}", f.label);
        }
        let undo = match (&s.fan_out, undo) {
            (Some(_), Some(u)) => Some(format!("each item that succeeded, in reverse: {u}")),
            (_, u) => u,
        };
        if skipped[i] {
            action = format!("(skipped) {action}");
        }
        let mut with = with;
        plan.redactor.redact_json(&mut with);
        StepPreview {
            id: s.id.clone(),
            step_type: s.kind.name().to_string(),
            description: s.description.clone(),
            action,
            with,
            needs: s.needs.iter().map(|&n| plan.steps[n].id.clone()).collect(),
            when: when_shown[i].clone(),
            destructive: s.destructive,
            acquires: s.acquires.clone(),
            releases: s.releases.clone(),
            always: s.always,
            refused_when: s
                .refused_when
                .as_ref()
                .map(crate::refusal::Refusal::describe),
            retry: (s.retry.attempts > 1).then(|| {
                format!(
                    "{} attempts, backoff {} ×{} up to {}{}",
                    s.retry.attempts,
                    humantime::format_duration(s.retry.initial),
                    s.retry.factor,
                    humantime::format_duration(s.retry.max),
                    if s.retry.jitter { ", jitter" } else { "" }
                )
            }),
            timeout: s
                .timeout
                .map(|t| humantime::format_duration(t).to_string())
                .or_else(|| s.timeout_pending.clone()),
            undo,
        }
    };
    let stage_list = plan.stages();
    let ids = |v: &[usize]| {
        v.iter()
            .map(|&i| plan.steps[i].id.clone())
            .collect::<Vec<_>>()
    };
    let by_stage = rollback::rollback_by_stage(plan, &stage_list, &skipped);
    let mut stage_of = vec![0; plan.steps.len()];
    for (k, stage) in stage_list.iter().enumerate() {
        for &i in stage {
            stage_of[i] = k;
        }
    }
    let rollback_map = (0..plan.steps.len())
        .filter(|&i| !skipped[i])
        .map(|i| {
            let RollbackPlan { undo, cleanup, .. } = &by_stage[stage_of[i]];
            // Only steps with `refused_when` get the second path: one simulation each.
            let if_refused = plan.steps[i].refused_when.as_ref().map(|_| {
                let (order, states) = rollback::simulate_failure(plan, i, &skipped, true);
                let rb = rollback::plan_rollback(plan, &order, &states);
                RefusedPath {
                    undo: ids(&rb.undo),
                    cleanup: ids(&rb.cleanup),
                    not_released: rb.refused,
                }
            });
            let mut undo = ids(undo);
            if let Some(own) = fan_out_items_undo(plan, i) {
                undo.insert(0, own);
            }
            RollbackEntry {
                step: plan.steps[i].id.clone(),
                undo,
                cleanup: ids(cleanup),
                if_refused,
            }
        })
        .collect();
    let stages = stage_list
        .into_iter()
        .map(|stage| stage.into_iter().map(step_preview).collect())
        .collect();
    let fail_at = fail_at.map(|f| {
        let (order, states) = rollback::simulate_failure(plan, f, &skipped, refused);
        let rb = rollback::plan_rollback(plan, &order, &states);
        let mut undo = ids(&rb.undo);
        if let Some(own) = fan_out_items_undo(plan, f) {
            undo.insert(0, own);
        }
        let cancelled: Vec<usize> = (0..plan.steps.len())
            .filter(|&i| states[i] == State::Done(StepStatus::Cancelled))
            .collect();
        FailurePath {
            step: plan.steps[f].id.clone(),
            refused,
            refused_when: plan.steps[f]
                .refused_when
                .as_ref()
                .filter(|_| refused)
                .map(crate::refusal::Refusal::describe),
            not_released: rb.refused,
            completed: ids(&order),
            cancelled: ids(&cancelled),
            undo,
            cleanup: ids(&rb.cleanup),
        }
    });
    Preview {
        plan: plan.name.clone(),
        description: plan.description.clone(),
        version: plan.version.clone(),
        system: plan.system.clone(),
        applies_to: plan.applies_to.clone(),
        file: plan.path.display().to_string(),
        params: plan
            .params
            .0
            .iter()
            .map(|(k, v)| ParamLine {
                name: k.clone(),
                value: if v.secret && v.source != crate::params::NOT_GIVEN {
                    template::MASK.into()
                } else {
                    v.value.clone()
                },
                source: v.source.clone(),
            })
            .collect(),
        not_given: plan.not_given.clone(),
        locks: plan.locks.clone(),
        stages,
        rollback_map,
        fail_at,
    }
}

/// A run-time fan-out step fails when one of its items fails: the items that succeeded
/// before it are undone first (`--fail-at STEP` on it means that).
fn fan_out_items_undo(plan: &CompiledPlan, step: usize) -> Option<String> {
    let s = &plan.steps[step];
    (s.fan_out.is_some() && s.undo.is_some())
        .then(|| format!("{} (each of its items that succeeded)", s.id))
}

fn flags(s: &StepPreview) -> String {
    let mut f = Vec::new();
    if s.destructive {
        f.push("DESTRUCTIVE".to_string());
    }
    if !s.acquires.is_empty() {
        f.push(format!("acquires {}", s.acquires.join(", ")));
    }
    if !s.releases.is_empty() {
        f.push(format!("releases {}", s.releases.join(", ")));
    }
    if let Some(r) = &s.refused_when {
        f.push(format!("refused when {r}"));
    }
    if s.always {
        f.push("always runs".into());
    }
    if f.is_empty() {
        String::new()
    } else {
        format!("  [{}]", f.join("; "))
    }
}

fn value_text(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

pub fn text(p: &Preview) -> String {
    let mut o = String::new();
    let _ = write!(o, "Plan {}", p.plan);
    if let Some(v) = &p.version {
        let _ = write!(o, " {v}");
    }
    if let Some(s) = &p.system {
        let _ = write!(o, " for {s}");
        if let Some(a) = &p.applies_to {
            let _ = write!(o, " {a}");
        }
    }
    let _ = writeln!(o, "  ({})", p.file);
    if !p.params.is_empty() {
        let _ = writeln!(o, "\nParams:");
        let w = p.params.iter().map(|l| l.name.len()).max().unwrap_or(0);
        for l in &p.params {
            let _ = writeln!(
                o,
                "  {:w$}  {}  ({})",
                l.name,
                value_text(&l.value),
                l.source
            );
        }
    }
    if !p.not_given.is_empty() {
        let _ = writeln!(
            o,
            "\n{}",
            not_given_note(&p.not_given, |n| format!("⟨params.{n}⟩"))
        );
    }
    if !p.locks.is_empty() {
        let _ = writeln!(o, "\nLocks: {}", p.locks.join(", "));
    }
    let _ = writeln!(o, "\nSteps (a stage's steps may run in parallel):");
    for (n, stage) in p.stages.iter().enumerate() {
        let par = if stage.len() > 1 {
            format!(", {} in parallel", stage.len())
        } else {
            String::new()
        };
        let _ = writeln!(o, "\n  Stage {}{par}", n + 1);
        for s in stage {
            let mark = if s.destructive { "!" } else { "-" };
            let _ = writeln!(o, "  {mark} {} ({}){}", s.id, s.step_type, flags(s));
            for (k, line) in s.action.lines().enumerate() {
                let _ = writeln!(o, "      {}{line}", if k == 0 { "" } else { "  " });
            }
            if let Some(w) = &s.when {
                let _ = writeln!(o, "      when: {w}");
            }
            if let Some(r) = &s.retry {
                let _ = writeln!(o, "      retry: {r}");
            }
            if let Some(t) = &s.timeout {
                let _ = writeln!(o, "      timeout: {t}");
            }
            if let Some(u) = &s.undo {
                let _ = writeln!(o, "      undo: {u}");
            }
        }
    }
    let _ = writeln!(
        o,
        "\nIf a step fails (then: undo in reverse order, then cleanup):"
    );
    let w = p
        .rollback_map
        .iter()
        .map(|r| r.step.len())
        .max()
        .unwrap_or(0);
    for r in &p.rollback_map {
        let mut parts = Vec::new();
        if !r.undo.is_empty() {
            parts.push(format!("undo {}", r.undo.join(", ")));
        }
        if !r.cleanup.is_empty() {
            parts.push(format!("cleanup {}", r.cleanup.join(", ")));
        }
        let then = if parts.is_empty() {
            "nothing to roll back".to_string()
        } else {
            parts.join("; then ")
        };
        let _ = writeln!(o, "  {:w$}  -> {then}", r.step);
        if let Some(refused) = &r.if_refused {
            let _ = writeln!(o, "  {:w$}     if refused: {}", "", refused_text(refused));
        }
    }
    if let Some(f) = &p.fail_at {
        let how = if f.refused { " (refused)" } else { "" };
        let _ = writeln!(o, "\nIf `{}` fails{how}:", f.step);
        for (n, line) in failure_lines(f).iter().enumerate() {
            let _ = writeln!(o, "  {}. {line}", n + 1);
        }
    }
    o
}

/// The sentence that says which params had no value (text, Markdown, graph comments).
pub fn not_given_note(names: &[String], shown: impl Fn(&str) -> String) -> String {
    format!(
        "Values not given (shown as placeholders; `opsplan run` needs them): {}",
        names
            .iter()
            .map(|n| shown(n))
            .collect::<Vec<_>>()
            .join(", ")
    )
}

/// The rollback of a refused failure, on one line.
fn refused_text(r: &RefusedPath) -> String {
    let mut parts = Vec::new();
    if !r.undo.is_empty() {
        parts.push(format!("undo {}", r.undo.join(", ")));
    }
    if !r.cleanup.is_empty() {
        parts.push(format!("cleanup {}", r.cleanup.join(", ")));
    }
    let mut text = if parts.is_empty() {
        "nothing to roll back".to_string()
    } else {
        parts.join("; then ")
    };
    if !r.not_released.is_empty() {
        let _ = write!(text, " ({} not released)", r.not_released.join(", "));
    }
    text
}

/// What happens when the `--fail-at` step fails, one line per event, in order.
fn failure_lines(f: &FailurePath) -> Vec<String> {
    let mut lines = Vec::new();
    if !f.completed.is_empty() {
        lines.push(format!("completed before it: {}", f.completed.join(", ")));
    }
    match &f.refused_when {
        Some(when) => lines.push(format!(
            "{} fails, refused ({when}): nothing acquired; no new step starts",
            f.step
        )),
        None => lines.push(format!("{} fails; no new step starts", f.step)),
    }
    lines.extend(
        f.cancelled
            .iter()
            .map(|c| format!("cancel {c} (running in parallel)")),
    );
    lines.extend(f.undo.iter().map(|u| format!("undo {u}")));
    lines.extend(f.cleanup.iter().map(|c| format!("cleanup {c}")));
    lines.extend(
        f.not_released
            .iter()
            .map(|r| format!("{r} not released: its acquire was refused")),
    );
    lines.push("the run ends failed (exit 1), or exit 3 if any undo or cleanup fails".into());
    lines
}

/// Text as code in a Markdown table cell: a code span cannot hold a line break (and HTML
/// in it is shown literally), so each line gets its own span, joined by `<br>`; a span
/// holding backticks is fenced with a longer run; pipes are escaped for the table.
fn md_code(text: &str) -> String {
    text.lines()
        .map(|line| {
            if line.trim().is_empty() {
                return String::new();
            }
            let mut longest = 0;
            let mut run = 0;
            for c in line.chars() {
                run = if c == '`' { run + 1 } else { 0 };
                longest = longest.max(run);
            }
            let fence = "`".repeat(longest + 1);
            let pad = if line.starts_with('`') || line.ends_with('`') {
                " "
            } else {
                ""
            };
            format!("{fence}{pad}{}{pad}{fence}", line.replace('|', "\\|"))
        })
        .collect::<Vec<_>>()
        .join("<br>")
}

/// Plain text in a Markdown table cell.
fn md_cell(text: &str) -> String {
    text.replace('|', "\\|").replace('\n', "<br>")
}

/// A description folded onto one line (YAML `>` keeps a trailing newline; `|` keeps lines).
fn one_paragraph(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// What is decided only at run time in a step: its condition, its arguments.
fn decided_at_run_time(s: &StepPreview) -> Vec<&'static str> {
    let mut parts = Vec::new();
    if s.when.as_deref().is_some_and(|w| w.contains("at run time")) {
        parts.push("condition");
    }
    let runtime_placeholder = s
        .action
        .match_indices('⟨')
        .any(|(i, _)| !s.action[i..].starts_with("⟨params."));
    if s.action.contains("at run time") || runtime_placeholder {
        parts.push("arguments");
    }
    parts
}

/// The summary line of a Markdown preview: steps and stages, destructive steps, locks, and
/// what only the run decides.
fn md_summary(p: &Preview) -> String {
    let steps: Vec<&StepPreview> = p.stages.iter().flatten().collect();
    let names = |v: Vec<&str>| {
        if v.is_empty() {
            "none".to_string()
        } else {
            v.iter()
                .map(|n| format!("`{n}`"))
                .collect::<Vec<_>>()
                .join(", ")
        }
    };
    let destructive = names(
        steps
            .iter()
            .filter(|s| s.destructive)
            .map(|s| s.id.as_str())
            .collect(),
    );
    let locks = if p.locks.is_empty() {
        "none".to_string()
    } else {
        p.locks
            .iter()
            .map(|l| md_code(l))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let runtime: Vec<String> = steps
        .iter()
        .filter_map(|s| {
            let parts = decided_at_run_time(s);
            (!parts.is_empty()).then(|| format!("`{}` ({})", s.id, parts.join(", ")))
        })
        .collect();
    let runtime = if runtime.is_empty() {
        "nothing".to_string()
    } else {
        runtime.join(", ")
    };
    format!(
        "**Summary:** {} step(s) in {} stage(s). Destructive: {destructive}. Locks: {locks}. \
         Decided at run time: {runtime}.",
        steps.len(),
        p.stages.len()
    )
}

pub fn markdown(p: &Preview) -> String {
    let mut o = String::new();
    let version = p
        .version
        .as_deref()
        .map(|v| format!(" {v}"))
        .unwrap_or_default();
    let _ = writeln!(o, "### Plan `{}`{version}", p.plan);
    if let Some(s) = &p.system {
        let applies = p
            .applies_to
            .as_deref()
            .map(|a| format!(" {a}"))
            .unwrap_or_default();
        let _ = writeln!(o, "\nSystem: {s}{applies}");
    }
    if let Some(d) = p
        .description
        .as_deref()
        .map(str::trim)
        .filter(|d| !d.is_empty())
    {
        let _ = writeln!(o, "\n{}", one_paragraph(d));
    }
    let _ = writeln!(o, "\n{}", md_summary(p));
    if !p.params.is_empty() {
        let _ = writeln!(o, "\n| param | value | from |\n|---|---|---|");
        for l in &p.params {
            let _ = writeln!(
                o,
                "| `{}` | `{}` | {} |",
                l.name,
                value_text(&l.value).replace('|', "\\|"),
                l.source
            );
        }
    }
    if !p.not_given.is_empty() {
        let _ = writeln!(
            o,
            "\n> **{}**",
            not_given_note(&p.not_given, |n| format!("`⟨params.{n}⟩`"))
        );
    }
    let _ = writeln!(
        o,
        "\n| stage | step | description | type | action | notes |\n|---|---|---|---|---|---|"
    );
    for (n, stage) in p.stages.iter().enumerate() {
        for s in stage {
            let flags = flags(s);
            let mut notes: Vec<String> = Vec::new();
            if !flags.is_empty() {
                notes.push(md_cell(flags.trim().trim_matches(['[', ']'])));
            }
            if let Some(w) = &s.when {
                notes.push(format!("when: {}", md_cell(w)));
            }
            if let Some(r) = &s.retry {
                notes.push(format!("retry: {}", md_cell(r)));
            }
            if let Some(t) = &s.timeout {
                notes.push(format!("timeout: {t}"));
            }
            if let Some(u) = &s.undo {
                notes.push(format!("undo: {}", md_code(u)));
            }
            let _ = writeln!(
                o,
                "| {} | `{}` | {} | {} | {} | {} |",
                n + 1,
                s.id,
                s.description
                    .as_deref()
                    .map(|d| md_cell(&one_paragraph(d.trim())))
                    .unwrap_or_default(),
                s.step_type,
                md_code(&s.action),
                notes.join("<br>")
            );
        }
    }
    // Only the steps whose failure rolls something back: a row with nothing in it says
    // nothing a reader needs.
    let rows: Vec<&RollbackEntry> = p
        .rollback_map
        .iter()
        .filter(|r| !r.undo.is_empty() || !r.cleanup.is_empty())
        .collect();
    if rows.is_empty() {
        let _ = writeln!(
            o,
            "\n**Rollback map**: a failure at any step has nothing to undo or clean up."
        );
    } else {
        let _ = writeln!(
            o,
            "\n**Rollback map** (a step not listed has nothing to undo or clean up)\n\n\
             | if this fails | undo | cleanup |\n|---|---|---|"
        );
    }
    for r in rows {
        let _ = writeln!(
            o,
            "| `{}` | {} | {} |",
            r.step,
            r.undo.join(", "),
            r.cleanup.join(", ")
        );
        if let Some(refused) = &r.if_refused {
            let _ = writeln!(
                o,
                "| `{}` refused | {} | {}{} |",
                r.step,
                refused.undo.join(", "),
                refused.cleanup.join(", "),
                if refused.not_released.is_empty() {
                    String::new()
                } else {
                    format!(" (not released: {})", refused.not_released.join(", "))
                }
            );
        }
    }
    if let Some(f) = &p.fail_at {
        let how = if f.refused { " (refused)" } else { "" };
        let _ = writeln!(o, "\n**If `{}` fails{how}:**\n", f.step);
        for (n, line) in failure_lines(f).iter().enumerate() {
            let _ = writeln!(o, "{}. {line}", n + 1);
        }
    }
    o
}
