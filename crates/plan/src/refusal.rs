//! `refused_when`: which failures of an acquiring step mean the resource was refused (the
//! other side said no, so nothing was acquired). The executor matches a failed attempt's
//! [`Answer`] against it; a refused acquire's release does not run, because it would free
//! what someone else holds (their checkpoint, their freeze). A failure without an answer (a
//! timeout, a cancel, a lost connection) never matches: its effect is in doubt.

use crate::diagnostic::{Code, Diagnostic};
use crate::plan::{RefusedWhenDecl, ScopedStep};
use crate::step::{Answer, AnswerField, DynStepType};

/// A compiled `refused_when`: every condition given must hold.
#[derive(Debug, Clone)]
pub struct Refusal {
    /// Empty: any exit code (or none).
    pub exit_code: Vec<i32>,
    /// Empty: any status (or none).
    pub status: Vec<u16>,
    pub output: Option<regex::Regex>,
}

impl Refusal {
    /// Compiles a declaration; validation reports what this refuses, with positions.
    pub fn compile(decl: &RefusedWhenDecl) -> Option<Refusal> {
        let output = match &decl.output_matches {
            Some(re) => Some(regex::Regex::new(&re.value).ok()?),
            None => None,
        };
        Some(Refusal {
            exit_code: decl
                .exit_code
                .as_ref()
                .map(|c| c.value.clone())
                .unwrap_or_default(),
            status: decl
                .status
                .as_ref()
                .map(|c| c.value.clone())
                .unwrap_or_default(),
            output,
        })
    }

    /// The failure this answer describes is a refusal.
    pub fn matches(&self, answer: &Answer) -> bool {
        let code = self.exit_code.is_empty()
            || answer
                .exit_code
                .is_some_and(|c| self.exit_code.contains(&c));
        let status =
            self.status.is_empty() || answer.status.is_some_and(|s| self.status.contains(&s));
        let output = self
            .output
            .as_ref()
            .is_none_or(|re| re.is_match(&answer.output));
        code && status && output
    }

    /// The conditions as a person reads them (`exit code 1 and output matching "busy"`).
    pub fn describe(&self) -> String {
        let list = |v: Vec<String>| v.join(" or ");
        let mut parts = Vec::new();
        if !self.exit_code.is_empty() {
            parts.push(format!(
                "exit code {}",
                list(self.exit_code.iter().map(ToString::to_string).collect())
            ));
        }
        if !self.status.is_empty() {
            parts.push(format!(
                "status {}",
                list(self.status.iter().map(ToString::to_string).collect())
            ));
        }
        if let Some(re) = &self.output {
            parts.push(format!("output matching {:?}", re.as_str()));
        }
        parts.join(" and ")
    }
}

/// E055: `refused_when` only on a step that acquires something, with at least one
/// condition, no empty list, and a regular expression that compiles.
pub fn check(s: &ScopedStep, kind: &dyn DynStepType, diags: &mut Vec<Diagnostic>) {
    let Some(decl) = &s.decl.refused_when else {
        return;
    };
    let id = &s.id.value;
    // A condition on what the step type never answers with never holds.
    let answers = kind.answers();
    let can = |f: AnswerField| answers.contains(&f);
    for (field, span, needed, what) in [
        (
            "exit_code",
            decl.exit_code.as_ref().map(|c| c.span),
            AnswerField::ExitCode,
            "an exit code",
        ),
        (
            "status",
            decl.status.as_ref().map(|c| c.span),
            AnswerField::Status,
            "an HTTP status",
        ),
        (
            "output_matches",
            decl.output_matches.as_ref().map(|c| c.span),
            AnswerField::Output,
            "an output",
        ),
    ] {
        let Some(span) = span else { continue };
        if can(needed) {
            continue;
        }
        let name = kind.name();
        let help = if answers.is_empty() {
            format!("`{name}` reports no answer when it fails, so none of its failures is a refusal: remove `refused_when`, or run the tool that can refuse with `exec` or `shell` (exit code, output) or `http` (status, output)")
        } else {
            let has: Vec<&str> = answers
                .iter()
                .map(|a| match a {
                    AnswerField::ExitCode => "`exit_code`",
                    AnswerField::Status => "`status`",
                    AnswerField::Output => "`output_matches`",
                })
                .collect();
            format!(
                "a failure of `{name}` can be matched on {}",
                has.join(" and ")
            )
        };
        diags.push(
            Diagnostic::new(
                Code::RefusedWhen,
                format!("`refused_when.{field}` of step `{id}`: step type `{name}` never fails with {what}, so this condition never holds"),
            )
            .label(span, format!("never set by `{name}`"))
            .help(help),
        );
    }
    let first_span = decl
        .exit_code
        .as_ref()
        .map(|c| c.span)
        .or(decl.status.as_ref().map(|c| c.span))
        .or(decl.output_matches.as_ref().map(|c| c.span))
        .unwrap_or(s.id.span);
    if s.decl.acquires.0.is_empty() {
        diags.push(
            Diagnostic::new(
                Code::RefusedWhen,
                format!("step `{id}` has `refused_when` but acquires nothing"),
            )
            .label(first_span, "only an acquire can be refused")
            .help("add `acquires: <resource>` to this step, or remove `refused_when`"),
        );
    }
    if decl.exit_code.is_none() && decl.status.is_none() && decl.output_matches.is_none() {
        diags.push(
            Diagnostic::new(
                Code::RefusedWhen,
                format!("`refused_when` of step `{id}` gives no condition"),
            )
            .label(s.id.span, "this step")
            .help("give `exit_code: [..]`, `status: [..]` or `output_matches: \"regex\"` (all given must hold)"),
        );
    }
    for (field, empty, span) in [
        (
            "exit_code",
            decl.exit_code.as_ref().is_some_and(|c| c.value.is_empty()),
            decl.exit_code.as_ref().map(|c| c.span),
        ),
        (
            "status",
            decl.status.as_ref().is_some_and(|c| c.value.is_empty()),
            decl.status.as_ref().map(|c| c.span),
        ),
    ] {
        if let (true, Some(span)) = (empty, span) {
            diags.push(
                Diagnostic::new(
                    Code::RefusedWhen,
                    format!("`refused_when.{field}` of step `{id}` is empty, so no failure is ever a refusal"),
                )
                .label(span, "an empty list")
                .help(format!("list the {field} values that mean the resource was refused, or remove `{field}`")),
            );
        }
    }
    if let Some(re) = &decl.output_matches {
        if let Err(e) = regex::Regex::new(&re.value) {
            let why = e.to_string();
            let why = why.lines().last().unwrap_or("invalid").trim();
            let why = why.strip_prefix("error: ").unwrap_or(why).to_string();
            diags.push(
                Diagnostic::new(
                    Code::RefusedWhen,
                    format!("`refused_when.output_matches` of step `{id}` is not a valid regular expression: {why}"),
                )
                .label(re.span, "not a regular expression")
                .help("write the pattern in Rust `regex` syntax, e.g. \"Device or resource busy\" or \"(?i)already in progress\""),
            );
        }
    }
}
