//! Static checks of a loaded plan: everything that can be found without param values or
//! touching a system, all collected. Each check is a plain function over the plan.

use crate::diagnostic::{did_you_mean, Code, Diagnostic};
use crate::fields::{bad_duration, parse_duration};
use crate::plan::{LoadedPlan, ParamType, ScopedStep};
use crate::source::de::is_template;
use crate::source::{Node, NodeValue, Sources, Span};
use crate::template;
use std::collections::{BTreeSet, HashMap, HashSet};

pub fn check(plan: &LoadedPlan, sources: &Sources) -> Vec<Diagnostic> {
    let mut diags = Vec::new();
    let index = step_index(plan, &mut diags);
    check_types(plan, &mut diags);
    check_needs(plan, &index, &mut diags);
    let acyclic = check_cycles(plan, &index, &mut diags);
    check_durations(plan, &mut diags);
    check_params(plan, &mut diags);
    check_secrets(plan, sources, &mut diags);
    check_shell_templates(plan, sources, &mut diags);
    check_fragment_args(plan, &mut diags);
    check_uses_steps(plan, &mut diags);
    check_run_time_for_each(plan, &mut diags);
    check_undo_on_cleanup(plan, &mut diags);
    if acyclic {
        let ancestors = Ancestry::new(plan, &index);
        check_templates(plan, &index, &ancestors, sources, &mut diags);
        check_resources(plan, &index, &ancestors, &mut diags);
        check_destructive(plan, &ancestors, &mut diags);
    }
    // A fragment used twice is checked twice; report each problem in it once.
    let mut seen = HashSet::new();
    diags.retain(|d| {
        let spans: Vec<Span> = d.labels.iter().map(|l| l.span).collect();
        seen.insert((d.code, d.message.clone(), spans))
    });
    diags
}

/// The `with:` of a `uses:` step gives values only for the fragment's params, and every
/// param the fragment requires (and cannot get elsewhere) has one.
fn check_fragment_args(plan: &LoadedPlan, diags: &mut Vec<Diagnostic>) {
    for (si, scope) in plan.scopes.iter().enumerate() {
        let Some((args, _)) = &scope.args else {
            continue;
        };
        let id = plan
            .steps
            .iter()
            .find(|s| s.scope == si)
            .and_then(|s| s.id.value.rsplit_once('.'))
            .map_or_else(
                || "this fragment".to_string(),
                |(prefix, _)| format!("fragment `{prefix}`"),
            );
        let entries = args.as_map().unwrap_or_default();
        if args.as_map().is_none() && args.value != NodeValue::Null {
            diags.push(
                Diagnostic::new(
                    Code::WrongType,
                    format!(
                        "the `with:` of {id} must be a mapping, found {}",
                        args.kind_name()
                    ),
                )
                .label(args.span, "expected a mapping")
                .help("give the fragment's params as `name: value` lines"),
            );
            continue;
        }
        for (key, _) in entries {
            let name = key.scalar_text();
            if scope.params.contains_key(&name) {
                continue;
            }
            let d = Diagnostic::new(Code::ParamUnknown, format!("{id} has no param `{name}`"))
                .label(key.span, "not a param of the fragment");
            diags.push(
                match did_you_mean(&name, scope.params.keys().map(String::as_str)) {
                    Some(c) => d.help(format!("did you mean `{c}`?")),
                    None if scope.params.is_empty() => d.help("the fragment declares no params"),
                    None => d.help(format!(
                        "the fragment's params are: {}",
                        scope
                            .params
                            .keys()
                            .map(|k| format!("`{k}`"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    )),
                },
            );
        }
        for (name, decl) in &scope.params {
            let given = entries.iter().any(|(k, _)| k.scalar_text() == *name);
            let secret = decl.ty.value == ParamType::Secret;
            let elsewhere = decl.default.is_some()
                || decl.env.is_some()
                || (secret && (decl.file.is_some() || decl.command.is_some()));
            if !given && !elsewhere && (decl.required || secret) {
                diags.push(
                    Diagnostic::new(
                        Code::ParamMissing,
                        format!("{id} needs a value for its param `{name}`"),
                    )
                    .label(args.span, format!("no `{name}` here"))
                    .label(decl.ty.span, "declared here")
                    .help(format!("add `{name}: …` under this step's `with:`")),
                );
            }
        }
    }
}

/// A `for_each` over another step's outputs is expanded when the step becomes ready, in
/// the forward phase. A step that holds or gives back a resource, or runs in the rollback
/// (`always`), must be known before the run starts (which releases run is decided from
/// it), so it cannot fan out at run time. That the list's step is among its `needs` is
/// E034, as for any output read.
fn check_run_time_for_each(plan: &LoadedPlan, diags: &mut Vec<Diagnostic>) {
    for s in &plan.steps {
        let d = &s.decl;
        let Some(list) = d.for_each.as_ref() else {
            continue;
        };
        if !crate::compile::for_each_at_run_time(list) {
            continue;
        }
        let why = if !d.acquires.0.is_empty() {
            "acquires a resource"
        } else if !d.releases.0.is_empty() {
            "releases a resource"
        } else if d.always {
            "is `always`"
        } else {
            continue;
        };
        diags.push(
            Diagnostic::new(
                Code::ForEach,
                format!(
                    "`for_each` of step `{}` reads another step's outputs, and the step {why}",
                    s.id.value
                ),
            )
            .label(list.span, "a list known only at run time")
            .help("fan out over a list known before the run (a param or a literal list), or move the resource or the cleanup to a step without `for_each`"),
        );
    }
}

/// A `uses:` step stands for its fragment's steps: only `id`, `uses`, `with`, `needs` and
/// `description` apply to it. Anything else would be dropped without a word (a `when` that
/// never skips, a `for_each` that never expands), so it is refused where it is written.
fn check_uses_steps(plan: &LoadedPlan, diags: &mut Vec<Diagnostic>) {
    for s in &plan.uses_steps {
        let d = &s.decl;
        let id = &s.id.value;
        if let Some(list) = &d.for_each {
            diags.push(
                Diagnostic::new(
                    Code::ForEach,
                    format!("`for_each` on step `{id}`, which uses a fragment: fragments are not expanded per item"),
                )
                .label(list.span, "not applied to the fragment's steps")
                .help("pass the list to the fragment as a param (`with: {dirs: \"{{ params.dirs }}\"}`) and put `for_each: \"{{ params.dirs }}\"` on the fragment's steps"),
            );
        }
        let mut ignored: Vec<(&str, Span)> = Vec::new();
        if let Some(w) = &d.when {
            ignored.push(("when", w.span));
        }
        if let Some(t) = &d.timeout {
            ignored.push(("timeout", t.span));
        }
        if let Some(r) = &d.retry {
            ignored.push(("retry", r.attempts.span));
        }
        if let Some(u) = &d.undo {
            ignored.push(("undo", u.step_type.span));
        }
        if let Some(p) = &d.probe {
            ignored.push(("probe", p.step_type.span));
        }
        if let Some(p) = &d.on_resume {
            ignored.push(("on_resume", p.span));
        }
        if let Some(a) = d.acquires.0.first() {
            ignored.push(("acquires", a.span));
        }
        if let Some(r) = d.releases.0.first() {
            ignored.push(("releases", r.span));
        }
        if d.refused_when.is_some() {
            ignored.push(("refused_when", d.id.span));
        }
        if d.always {
            ignored.push(("always", d.id.span));
        }
        if d.destructive {
            ignored.push(("destructive", d.id.span));
        }
        for (field, span) in ignored {
            diags.push(
                Diagnostic::new(
                    Code::InvalidValue,
                    format!("`{field}` on step `{id}`, which uses a fragment, would not apply to the fragment's steps"),
                )
                .label(span, format!("`{field}` of a `uses:` step"))
                .help(format!("a `uses:` step takes only `id`, `uses`, `with`, `needs` and `description`; put `{field}` on the fragment's steps")),
            );
        }
    }
}

fn valid_id(id: &str) -> bool {
    let mut chars = id.chars();
    chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
}

/// An `undo` on a releasing or `always` step: rollback never undoes cleanup it runs, and
/// when the cleanup ran before a later step failed, its undo would run in reverse
/// completion order and take back what the cleanup gave back (a released checkpoint taken
/// again), with nothing left to release it.
fn check_undo_on_cleanup(plan: &LoadedPlan, diags: &mut Vec<Diagnostic>) {
    for s in &plan.steps {
        let Some(undo) = &s.decl.undo else { continue };
        let what = match s.decl.releases.0.first() {
            Some(r) => format!("releases `{}`", r.value),
            None if s.decl.always => "runs `always`".to_string(),
            None => continue,
        };
        diags.push(
            Diagnostic::new(
                Code::UnreachableUndo,
                format!("step `{}` {what} and has an `undo`: cleanup is not undone", s.id.value),
            )
            .label(undo.step_type.span, "undo of a cleanup step")
            .help("remove the `undo`: a rollback never undoes the cleanup it runs, and after a cleanup that ran before a later failure the undo would take back what it gave back, with nothing to release it again"),
        );
    }
}

fn invalid_id(local: &str, span: Span) -> Diagnostic {
    Diagnostic::new(Code::InvalidStepId, format!("invalid step id `{local}`"))
        .label(span, "not a valid id")
        .help("ids start with a lowercase letter and use only a-z, 0-9, `-` and `_`")
}

fn step_index(plan: &LoadedPlan, diags: &mut Vec<Diagnostic>) -> HashMap<String, usize> {
    let mut index: HashMap<String, usize> = HashMap::new();
    // A `uses:` step's id is the first part of its fragment's step ids.
    for s in &plan.uses_steps {
        let local = s.decl.id.value.as_str();
        if !valid_id(local) {
            diags.push(invalid_id(local, s.decl.id.span));
        }
    }
    for (i, s) in plan.steps.iter().enumerate() {
        let local = s.decl.id.value.as_str();
        if !valid_id(local) {
            diags.push(invalid_id(local, s.decl.id.span));
        }
        if let Some(&first) = index.get(&s.id.value) {
            diags.push(
                Diagnostic::new(
                    Code::DuplicateStepId,
                    format!("duplicate step id `{}`", s.id.value),
                )
                .label(s.decl.id.span, "second step with this id")
                .label(plan.steps[first].decl.id.span, "first defined here")
                .help("give every step a unique id"),
            );
        } else {
            index.insert(s.id.value.clone(), i);
        }
    }
    index
}

fn check_types(plan: &LoadedPlan, diags: &mut Vec<Diagnostic>) {
    for s in &plan.steps {
        let Some(ty) = &s.decl.step_type else {
            diags.push(
                Diagnostic::new(Code::MissingField, format!("step `{}` has no `type`", s.id.value))
                    .label(s.decl.id.span, "this step")
                    .help("set `type:` to a step type (`opsplan types` lists them) or `uses:` to a fragment"),
            );
            continue;
        };
        let Some(kind) = plan.registry.lookup(&ty.value) else {
            diags.push(plan.registry.unknown_type(&ty.value, ty.span));
            continue;
        };
        let with = s
            .decl
            .with
            .clone()
            .unwrap_or_else(|| Node::new(ty.span, NodeValue::Map(vec![])));
        diags.extend(kind.check(&with, true));
        check_resume_policy(s, diags);
        crate::refusal::check(s, kind.as_ref(), diags);
        for undo in s.decl.undo.iter().chain(s.decl.probe.iter()) {
            match plan.registry.lookup(&undo.step_type.value) {
                None => diags.push(
                    plan.registry
                        .unknown_type(&undo.step_type.value, undo.step_type.span),
                ),
                Some(k) => {
                    let with = undo
                        .with
                        .clone()
                        .unwrap_or_else(|| Node::new(undo.step_type.span, NodeValue::Map(vec![])));
                    diags.extend(k.check(&with, true));
                }
            }
        }
    }
}

/// `on_resume: check` needs a `probe` and `compensate` an `undo`; a probe alone is unused.
fn check_resume_policy(s: &crate::plan::ScopedStep, diags: &mut Vec<Diagnostic>) {
    use crate::plan::ResumePolicy;
    let policy = s.decl.on_resume.as_ref();
    match policy.map(|p| p.value) {
        Some(ResumePolicy::Check) if s.decl.probe.is_none() => diags.push(
            Diagnostic::new(
                Code::ResumePolicyIncomplete,
                format!("step `{}` has `on_resume: check` but no `probe`", s.id.value),
            )
            .label(policy.map_or(s.id.span, |p| p.span), "needs a probe")
            .help("add `probe: {type: ..., with: {...}}`: an action that succeeds when the step's work is done"),
        ),
        Some(ResumePolicy::Compensate) if s.decl.undo.is_none() => diags.push(
            Diagnostic::new(
                Code::ResumePolicyIncomplete,
                format!("step `{}` has `on_resume: compensate` but no `undo`", s.id.value),
            )
            .label(policy.map_or(s.id.span, |p| p.span), "needs an undo")
            .help("add an `undo:` action, or use `on_resume: rerun`, `check` or `ask`"),
        ),
        Some(ResumePolicy::Check) => {}
        _ => {
            if let Some(probe) = &s.decl.probe {
                diags.push(
                    Diagnostic::new(
                        Code::ResumePolicyIncomplete,
                        format!("step `{}` has a `probe` but its `on_resume` is not `check`", s.id.value),
                    )
                    .label(probe.step_type.span, "never run")
                    .help("set `on_resume: check` to use the probe when resuming, or remove it"),
                );
            }
        }
    }
}

fn check_needs(plan: &LoadedPlan, index: &HashMap<String, usize>, diags: &mut Vec<Diagnostic>) {
    for s in &plan.steps {
        for n in &s.needs {
            if n.value == s.id.value {
                diags.push(
                    Diagnostic::new(
                        Code::SelfNeeds,
                        format!("step `{}` needs itself", s.id.value),
                    )
                    .label(n.span, "a step cannot wait for itself")
                    .help("remove this entry from `needs`"),
                );
            } else if !index.contains_key(&n.value) {
                let d = Diagnostic::new(
                    Code::UnknownNeeds,
                    format!(
                        "step `{}` needs `{}`, which does not exist",
                        s.id.value, n.value
                    ),
                )
                .label(n.span, "no step has this id");
                diags.push(d.suggest(
                    &n.value,
                    index.keys().map(String::as_str),
                    "`needs` lists ids of steps in this plan",
                ));
            }
        }
    }
}

/// Reports each dependency cycle once, with its path; returns whether there is none.
fn check_cycles(
    plan: &LoadedPlan,
    index: &HashMap<String, usize>,
    diags: &mut Vec<Diagnostic>,
) -> bool {
    // Peel off, iteratively, every step whose needs are all peeled (Kahn): what is left are
    // the cycles and what depends on them. petgraph's Tarjan recurses once per step of a
    // path, which overflows the stack on a chain of 100,000 steps, so it only sees the rest.
    let n = plan.steps.len();
    let (needs, needed_by) = need_edges(plan, index);
    let mut peeled = vec![false; n];
    for j in kahn_order(&needs, &needed_by) {
        peeled[j] = true;
    }
    if peeled.iter().all(|&p| p) {
        return true;
    }
    // Then, backwards, every step that only peeled steps need: left are the cycles and the
    // paths between them.
    let mut dependents: Vec<usize> = (0..n)
        .map(|j| needed_by[j].iter().filter(|&&i| !peeled[i]).count())
        .collect();
    let mut ready: Vec<usize> = (0..n)
        .filter(|&j| !peeled[j] && dependents[j] == 0)
        .collect();
    while let Some(i) = ready.pop() {
        peeled[i] = true;
        for &j in &needs[i] {
            if !peeled[j] {
                dependents[j] -= 1;
                if dependents[j] == 0 {
                    ready.push(j);
                }
            }
        }
    }
    let mut graph = petgraph::graph::DiGraph::<usize, ()>::new();
    let mut nodes = vec![None; n];
    for i in (0..n).filter(|&i| !peeled[i]) {
        nodes[i] = Some(graph.add_node(i));
    }
    for (i, ns) in needs.iter().enumerate() {
        for &j in ns {
            if let (Some(a), Some(b)) = (nodes[j], nodes[i]) {
                graph.add_edge(a, b, ());
            }
        }
    }
    let mut acyclic = true;
    for scc in petgraph::algo::tarjan_scc(&graph) {
        if scc.len() < 2 {
            continue;
        }
        acyclic = false;
        let members: HashSet<usize> = scc.iter().map(|n| graph[*n]).collect();
        // Walk needs inside the component from its first-declared step to print a cycle.
        let start = *members.iter().min().unwrap_or(&0);
        let mut path = vec![start];
        let mut cur = start;
        loop {
            let next = plan.steps[cur]
                .needs
                .iter()
                .filter_map(|n| index.get(&n.value).copied())
                .find(|j| members.contains(j));
            match next {
                Some(j) if j == start => break,
                Some(j) if path.contains(&j) => {
                    path.push(j);
                    break;
                }
                Some(j) => {
                    path.push(j);
                    cur = j;
                }
                None => break,
            }
        }
        let names: Vec<&str> = path
            .iter()
            .map(|&i| plan.steps[i].id.value.as_str())
            .collect();
        let mut d = Diagnostic::new(
            Code::Cycle,
            format!("dependency cycle: {} -> {}", names.join(" -> "), names[0]),
        );
        for &i in &path {
            let s = &plan.steps[i];
            let edge = s
                .needs
                .iter()
                .find(|n| index.get(&n.value).is_some_and(|j| members.contains(j)));
            if let Some(edge) = edge {
                d = d.label(
                    edge.span,
                    format!("`{}` needs `{}`", s.id.value, edge.value),
                );
            }
        }
        diags.push(d.help("remove one of these `needs` entries to break the cycle"));
    }
    acyclic
}

fn check_durations(plan: &LoadedPlan, diags: &mut Vec<Diagnostic>) {
    let mut check = |text: &crate::source::de::Sp<String>, what: &str| {
        if !is_template(&text.value) && parse_duration(&text.value).is_err() {
            diags.push(bad_duration(text.span, &text.value, what));
        }
    };
    for s in &plan.steps {
        if let Some(t) = &s.decl.timeout {
            check(t, "timeout");
        }
        let retries = s
            .decl
            .retry
            .as_deref()
            .into_iter()
            .chain(s.decl.undo.iter().filter_map(|u| u.retry.as_ref()));
        for r in retries {
            if let Some(b) = &r.backoff {
                if let Some(i) = &b.initial {
                    check(i, "backoff.initial");
                }
                if let Some(m) = &b.max {
                    check(m, "backoff.max");
                }
            }
        }
        if let Some(t) = s.decl.undo.as_ref().and_then(|u| u.timeout.as_ref()) {
            check(t, "undo.timeout");
        }
    }
    for s in &plan.steps {
        let retries = s
            .decl
            .retry
            .as_deref()
            .into_iter()
            .chain(s.decl.undo.iter().filter_map(|u| u.retry.as_ref()));
        for r in retries {
            if r.attempts.value == 0 {
                diags.push(
                    Diagnostic::new(Code::BadRetry, "`retry.attempts` is 0")
                        .label(r.attempts.span, "must be at least 1")
                        .help("attempts counts the first try: 3 means one try and two retries"),
                );
            }
            if let Some(f) = r.backoff.as_ref().and_then(|b| b.factor.as_ref()) {
                if !(f.value >= 1.0 && f.value.is_finite()) {
                    diags.push(
                        Diagnostic::new(
                            Code::BadRetry,
                            format!("backoff factor {} is below 1", f.value),
                        )
                        .label(f.span, "delays would shrink")
                        .help("use a factor of 1 (constant) or more (exponential)"),
                    );
                }
            }
        }
    }
}

fn check_params(plan: &LoadedPlan, diags: &mut Vec<Diagnostic>) {
    for (si, scope) in plan.scopes.iter().enumerate() {
        for (name, decl) in &scope.params {
            let ty = decl.ty.value;
            if ty == ParamType::Secret {
                if let Some(d) = &decl.default {
                    diags.push(
                        Diagnostic::new(Code::SecretLiteral, format!("secret param `{name}` has a literal default"))
                            .label(d.span, "a secret written in the plan file")
                            .help("secrets come from `env:`, `file:` or `command:`, never from the plan itself"),
                    );
                }
            } else if decl.file.is_some() || decl.command.is_some() {
                let span = decl.file.as_ref().map_or(decl.ty.span, |f| f.span);
                diags.push(
                    Diagnostic::new(
                        Code::InvalidValue,
                        format!("param `{name}` reads a file or command but is not a secret"),
                    )
                    .label(span, "only for secrets")
                    .help("set `type: secret`, or give a `default`"),
                );
            }
            if let Some(d) = &decl.default {
                if !(d.as_str().is_some_and(is_template)) {
                    if let Err(e) = crate::params::from_node(ty, d, name) {
                        let mut e = e;
                        e.code = Code::ParamDefaultType;
                        diags.push(e);
                    }
                }
            }
            // Unused params are worth a warning; fragments' params are used by their steps.
            // A secret read by its child processes as OPSPLAN_SECRET_<NAME> (the way the
            // docs recommend) is used.
            let env_var = secret_env_name(name);
            let used = (ty == ParamType::Secret
                && plan
                    .steps
                    .iter()
                    .filter(|s| s.scope == si)
                    .any(|s| mentions_text(s, &env_var)))
                || plan
                    .steps
                    .iter()
                    .chain(&plan.uses_steps)
                    .filter(|s| s.scope == si)
                    .any(|s| mentions(s, name))
                || (si == 0
                    && (plan
                        .doc
                        .locks
                        .iter()
                        .any(|l| l.value.contains(name.as_str()))
                        || plan.scopes.iter().any(|sc| {
                            sc.args
                                .as_ref()
                                .is_some_and(|(a, p)| *p == 0 && node_mentions(a, name))
                        })));
            if !used {
                diags.push(
                    Diagnostic::new(Code::UnusedParam, format!("param `{name}` is never used"))
                        .label(decl.ty.span, "declared here")
                        .help(format!("use it as {{{{ params.{name} }}}} or remove it")),
                );
            }
        }
    }
}

/// The environment variable a secret param reaches child processes as (the same rule as
/// the engine's: upper case, `-` as `_`).
pub fn secret_env_name(name: &str) -> String {
    format!("OPSPLAN_SECRET_{}", name.to_uppercase().replace('-', "_"))
}

/// Whether any string of a step (template or not) contains `text`.
fn mentions_text(s: &ScopedStep, text: &str) -> bool {
    let mut found = false;
    let mut look = |n: &Node| n.walk_strings(&mut |_, v| found |= v.contains(text));
    if let Some(w) = &s.decl.with {
        look(w);
    }
    for a in s.decl.undo.iter().chain(s.decl.probe.iter()) {
        if let Some(w) = &a.with {
            look(w);
        }
    }
    found
}

/// Secrets the engine cannot keep secret: two whose environment variables would be the
/// same `OPSPLAN_SECRET_*` (E045), and a secret in a lock name or a `for_each` list, whose
/// values become lock file names, step ids and journal file names, which are not masked
/// (E046).
fn check_secrets(plan: &LoadedPlan, sources: &Sources, diags: &mut Vec<Diagnostic>) {
    for scope in &plan.scopes {
        let mut seen: HashMap<String, &str> = HashMap::new();
        for (name, decl) in &scope.params {
            if decl.ty.value != ParamType::Secret {
                continue;
            }
            let var = secret_env_name(name);
            if let Some(first) = seen.get(&var) {
                diags.push(
                    Diagnostic::new(
                        Code::SecretEnvCollision,
                        format!(
                            "secrets `{first}` and `{name}` would both be {var} in child processes"
                        ),
                    )
                    .label(decl.ty.span, format!("also {var}"))
                    .help("names that differ only in `-` and `_` (or in case) give the same variable; rename one of them"),
                );
            } else {
                seen.insert(var, name.as_str());
            }
        }
    }
    let secret_refs = |scope: usize, text: &str| -> Vec<String> {
        template_variables(text)
            .into_iter()
            .filter_map(|v| {
                let mut parts = v.split('.');
                (parts.next() == Some("params"))
                    .then(|| parts.next().map(str::to_string))
                    .flatten()
            })
            .filter(|n| {
                plan.scopes[scope]
                    .params
                    .get(n)
                    .is_some_and(|d| d.ty.value == ParamType::Secret)
            })
            .collect()
    };
    for lock in &plan.doc.locks {
        for name in secret_refs(0, &lock.value) {
            let node = Node::new(lock.span, NodeValue::Str(lock.value.clone()));
            diags.push(
                Diagnostic::new(
                    Code::SecretUnmaskable,
                    format!("lock name uses the secret `{name}`"),
                )
                .label(
                    var_span(&node, &lock.value, &format!("params.{name}"), sources),
                    "a lock name is a file name, shown and stored unmasked",
                )
                .help(
                    "name locks after what they protect (a host, a folder), never after a secret",
                ),
            );
        }
    }
    for s in &plan.steps {
        let Some(f) = &s.decl.for_each else { continue };
        let mut found: Vec<(Node, String, String)> = Vec::new();
        f.walk_strings(&mut |n, text| {
            if is_template(text) {
                for name in secret_refs(s.scope, text) {
                    found.push((n.clone(), text.to_string(), name));
                }
            }
        });
        for (node, text, name) in found {
            diags.push(
                Diagnostic::new(
                    Code::SecretUnmaskable,
                    format!("`for_each` of step `{}` uses the secret `{name}`", s.id.value),
                )
                .label(
                    var_span(&node, &text, &format!("params.{name}"), sources),
                    "items become step ids and journal file names, which are not masked",
                )
                .help("iterate over names or indices and read the secret inside the step, through `env:`"),
            );
        }
    }
}

/// Filters whose result is safe to splice into a shell script as it is.
const SHELL_SAFE_FILTERS: &[&str] = &["shell_quote", "int", "float", "length", "count"];

/// A template spliced into a `shell` script unquoted (W104): its value becomes shell code,
/// so `--set dest='/x$(touch PWNED)'` runs the substitution.
fn check_shell_templates(plan: &LoadedPlan, sources: &Sources, diags: &mut Vec<Diagnostic>) {
    for s in &plan.steps {
        let actions = std::iter::once((s.decl.step_type.as_ref(), s.decl.with.as_ref())).chain(
            s.decl
                .undo
                .iter()
                .chain(s.decl.probe.iter())
                .map(|a| (Some(&a.step_type), a.with.as_ref())),
        );
        for (ty, with) in actions {
            if ty.map(|t| t.value.as_str()) != Some("shell") {
                continue;
            }
            let Some(script) = with.and_then(|w| w.get("script")) else {
                continue;
            };
            let Some(text) = script.as_str() else {
                continue;
            };
            // A block scalar (`script: |`) is not the text verbatim: find each token in the
            // source slice instead, in order, so the label points at the token itself.
            let raw = sources.get(script.span.file).slice(script.span);
            let mut raw_from = 0;
            for (range, expr) in expressions(text) {
                let token = &text[range.clone()];
                let in_raw = raw[raw_from..].find(token).map(|i| i + raw_from);
                if let Some(at) = in_raw {
                    raw_from = at + token.len();
                }
                // A secret rendered into the script reaches the command lines of the
                // programs the script starts (quoted or not), where every local user can
                // read it in /proc: W105, whatever the filter.
                if let Some(name) = secret_named(expr, &plan.scopes[s.scope].params) {
                    let span = match in_raw {
                        Some(at) => script.span.sub(at, token.len()),
                        None => template::sub_span(
                            script.span,
                            text,
                            Some(range.clone()),
                            Some(sources),
                        ),
                    };
                    diags.push(
                        Diagnostic::new(
                            Code::SecretInShellScript,
                            format!("secret `{name}` is pasted into the script of step `{}`", s.id.value),
                        )
                        .label(span, "the programs the script starts may get it on their command line")
                        .help(format!(
                            "leave it out of the script text: every child has it as $OPSPLAN_SECRET_{}; hand it to a program in the environment variable it reads (PGPASSWORD, AWS_SECRET_ACCESS_KEY), a file or stdin, never as an argument",
                            name.to_uppercase().replace('-', "_")
                        )),
                    );
                    continue;
                }
                if last_filter(expr).is_some_and(|f| SHELL_SAFE_FILTERS.contains(&f)) {
                    continue;
                }
                let span = match in_raw {
                    Some(at) => script.span.sub(at, token.len()),
                    None => template::sub_span(script.span, text, Some(range), Some(sources)),
                };
                diags.push(
                    Diagnostic::new(
                        Code::UnquotedShellTemplate,
                        format!(
                            "`{{{{ {} }}}}` is pasted into the script of step `{}` as shell code",
                            expr.trim(),
                            s.id.value
                        ),
                    )
                    .label(span, "its value is run as code, not passed as data")
                    .help(format!(
                        "pass it as data: `env: {{VALUE: \"{{{{ {0} }}}}\"}}` and \"$VALUE\" in the script, or quote it with `{{{{ {0} | shell_quote }}}}`",
                        expr.trim()
                    )),
                );
            }
        }
    }
}

/// The secret param an expression reads (`params.db_password`, `params['db-password']`).
fn secret_named(
    expr: &str,
    params: &indexmap::IndexMap<String, crate::plan::ParamDecl>,
) -> Option<String> {
    params
        .iter()
        .filter(|(_, d)| d.ty.value == ParamType::Secret)
        .map(|(name, _)| name)
        .find(|name| {
            expr.contains(&format!("params['{name}']"))
                || expr.contains(&format!("params[\"{name}\"]"))
                || expr
                    .match_indices(&format!("params.{name}"))
                    .any(|(at, m)| {
                        !expr[at + m.len()..]
                            .chars()
                            .next()
                            .is_some_and(|c| c.is_alphanumeric() || c == '_')
                    })
        })
        .cloned()
}

/// Each `{{ … }}` of a template: its byte range and the expression inside.
fn expressions(text: &str) -> Vec<(std::ops::Range<usize>, &str)> {
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(open) = text[from..].find("{{").map(|i| i + from) {
        let Some(close) = text[open + 2..].find("}}").map(|i| i + open + 2) else {
            break;
        };
        let inner = text[open + 2..close].trim_matches('-');
        out.push((open..close + 2, inner));
        from = close + 2;
    }
    out
}

/// The name of the last filter an expression applies (`x | trim | shell_quote` →
/// `shell_quote`), when that filter applies to the whole expression: filters bind tighter
/// than operators, so `a ~ b | shell_quote` quotes only `b` and has no safe last filter.
fn last_filter(expr: &str) -> Option<&str> {
    let (mut depth, mut quote, mut last) = (0i32, None, None);
    let mut word = String::new();
    for (i, c) in expr.char_indices() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '\'' | '"') => quote = Some(c),
            (None, '(' | '[' | '{') => depth += 1,
            (None, ')' | ']' | '}') => depth -= 1,
            (None, '|') if depth == 0 => last = Some(i),
            (None, c)
                if depth == 0
                    && !(c.is_alphanumeric() || c == '_' || c == '.' || c.is_whitespace()) =>
            {
                return None
            }
            _ => {}
        }
        if depth == 0 && quote.is_none() && (c.is_alphanumeric() || c == '_') {
            word.push(c);
        } else {
            if matches!(
                word.as_str(),
                "and" | "or" | "not" | "if" | "else" | "in" | "is"
            ) {
                return None;
            }
            word.clear();
        }
    }
    let rest = expr[last? + 1..].trim_start();
    let end = rest
        .find(|c: char| !(c.is_alphanumeric() || c == '_'))
        .unwrap_or(rest.len());
    Some(&rest[..end])
}

fn node_mentions(node: &Node, name: &str) -> bool {
    let mut found = false;
    node.walk_strings(&mut |_, s| found |= is_template(s) && s.contains(name));
    found
}

fn mentions(s: &ScopedStep, name: &str) -> bool {
    s.decl.with.as_ref().is_some_and(|w| node_mentions(w, name))
        || s.decl
            .for_each
            .as_ref()
            .is_some_and(|w| node_mentions(w, name))
        || s.decl.when.as_ref().is_some_and(|w| w.value.contains(name))
        || s.decl
            .timeout
            .as_ref()
            .is_some_and(|w| w.value.contains(name))
        || s.decl
            .undo
            .iter()
            .chain(s.decl.probe.iter())
            .filter_map(|u| u.with.as_ref())
            .any(|w| node_mentions(w, name))
}

/// Transitive `needs`, answered per question. A stored set of ancestors per step costs
/// memory quadratic in the plan's depth (a chain of 100,000 steps would hold five billion
/// entries), so instead each question walks `needs` backwards, pruned by depth: a step's
/// ancestors all lie at a smaller depth (longest `needs` path from a root) than the step.
struct Ancestry {
    /// Resolved `needs` of each step (unknown ids and self-needs left out).
    needs: Vec<Vec<usize>>,
    depth: Vec<usize>,
}

/// Each step's needs as step indices (unknown names and self-needs left out), and the
/// reverse: for each step, the steps that need it.
fn need_edges(
    plan: &LoadedPlan,
    index: &HashMap<String, usize>,
) -> (Vec<Vec<usize>>, Vec<Vec<usize>>) {
    let needs: Vec<Vec<usize>> = plan
        .steps
        .iter()
        .enumerate()
        .map(|(i, s)| {
            s.needs
                .iter()
                .filter_map(|need| index.get(&need.value).copied())
                .filter(|&j| j != i)
                .collect()
        })
        .collect();
    let mut needed_by: Vec<Vec<usize>> = vec![Vec::new(); needs.len()];
    for (i, ns) in needs.iter().enumerate() {
        for &j in ns {
            needed_by[j].push(i);
        }
    }
    (needs, needed_by)
}

/// Kahn's order, iteratively (a recursive walk overflows the stack on long chains): every
/// step comes after all it needs. Steps on or behind a cycle are left out.
fn kahn_order(needs: &[Vec<usize>], needed_by: &[Vec<usize>]) -> Vec<usize> {
    let mut waiting: Vec<usize> = needs.iter().map(Vec::len).collect();
    let mut ready: Vec<usize> = (0..needs.len()).filter(|&i| waiting[i] == 0).collect();
    let mut order = Vec::with_capacity(needs.len());
    while let Some(j) = ready.pop() {
        order.push(j);
        for &i in &needed_by[j] {
            waiting[i] -= 1;
            if waiting[i] == 0 {
                ready.push(i);
            }
        }
    }
    order
}

impl Ancestry {
    /// Only called on an acyclic plan.
    fn new(plan: &LoadedPlan, index: &HashMap<String, usize>) -> Ancestry {
        let (needs, needed_by) = need_edges(plan, index);
        let mut depth = vec![0usize; needs.len()];
        for j in kahn_order(&needs, &needed_by) {
            for &i in &needed_by[j] {
                depth[i] = depth[i].max(depth[j] + 1);
            }
        }
        Ancestry { needs, depth }
    }

    /// Whether `step` needs `target`, directly or transitively.
    fn needs(&self, step: usize, target: usize) -> bool {
        let floor = self.depth[target];
        let mut seen = HashSet::new();
        let mut stack = vec![step];
        while let Some(i) = stack.pop() {
            for &j in &self.needs[i] {
                if j == target {
                    return true;
                }
                if self.depth[j] > floor && seen.insert(j) {
                    stack.push(j);
                }
            }
        }
        false
    }

    /// For each step, whether some step it needs (transitively) satisfies `pred`.
    fn any_upstream(&self, pred: impl Fn(usize) -> bool) -> Vec<bool> {
        let n = self.needs.len();
        let mut order: Vec<usize> = (0..n).collect();
        order.sort_by_key(|&i| self.depth[i]);
        let mut found = vec![false; n];
        for i in order {
            found[i] = self.needs[i].iter().any(|&j| pred(j) || found[j]);
        }
        found
    }
}

const ROOTS: &[&str] = &["params", "steps", "item", "item_index", "plan", "run"];

/// Every template string: syntax, and that each variable it reads exists where it is used.
fn check_templates(
    plan: &LoadedPlan,
    index: &HashMap<String, usize>,
    ancestors: &Ancestry,
    sources: &Sources,
    diags: &mut Vec<Diagnostic>,
) {
    for (i, s) in plan.steps.iter().enumerate() {
        let mut fields: Vec<(Node, String, bool)> = Vec::new();
        let mut add = |node: &Node| {
            node.walk_strings(&mut |n, text| {
                if is_template(text) {
                    fields.push((n.clone(), text.to_string(), false));
                }
            });
        };
        if let Some(w) = &s.decl.with {
            add(w);
        }
        if let Some(u) = s.decl.undo.as_ref().and_then(|u| u.with.as_ref()) {
            add(u);
        }
        if let Some(u) = s.decl.probe.as_ref().and_then(|u| u.with.as_ref()) {
            add(u);
        }
        if let Some(t) = &s.decl.timeout {
            add(&Node::new(t.span, NodeValue::Str(t.value.clone())));
        }
        if let Some(f) = &s.decl.for_each {
            add(f);
        }
        if let Some(w) = &s.decl.when {
            fields.push((
                Node::new(w.span, NodeValue::Str(w.value.clone())),
                template::condition_expression(&w.value).to_string(),
                true,
            ));
        }
        let in_undo_or_cleanup = s.decl.undo.is_some();
        for (node, text, is_expr) in fields {
            let vars = match template::variables(&node, &text, is_expr, Some(sources)) {
                Ok(v) => v,
                Err(d) => {
                    diags.push(d);
                    continue;
                }
            };
            for var in vars {
                if let Some(d) = check_variable(
                    plan,
                    i,
                    &var,
                    index,
                    ancestors,
                    &node,
                    &text,
                    sources,
                    in_undo_or_cleanup,
                ) {
                    diags.push(d);
                }
            }
        }
    }
    let root = &plan.scopes[0];
    for lock in &plan.doc.locks {
        let node = Node::new(lock.span, NodeValue::Str(lock.value.clone()));
        match template::variables(&node, &lock.value, false, Some(sources)) {
            Ok(vars) => {
                for var in vars {
                    let mut parts = var.split('.');
                    let head = parts.next().unwrap_or_default();
                    let name = parts.next();
                    if head != "params" || name.is_some_and(|n| !root.params.contains_key(n)) {
                        diags.push(
                            Diagnostic::new(
                                Code::UndefinedVariable,
                                format!("lock name uses `{var}`, which is not a param"),
                            )
                            .label(
                                var_span(&node, &lock.value, &var, sources),
                                "lock names may only use params",
                            )
                            .help(
                                "locks are taken before any step runs, so they can use only params",
                            ),
                        );
                    }
                }
            }
            Err(d) => diags.push(d),
        }
    }
}

/// The span of the first mention of `needle` in a template string (for labels).
fn var_span(node: &Node, text: &str, needle: &str, sources: &Sources) -> Span {
    match text.find(needle) {
        Some(at) => template::sub_span(node.span, text, Some(at..at + needle.len()), Some(sources)),
        None => node.span,
    }
}

#[allow(clippy::too_many_arguments)]
fn check_variable(
    plan: &LoadedPlan,
    step: usize,
    var: &str,
    index: &HashMap<String, usize>,
    ancestors: &Ancestry,
    node: &Node,
    text: &str,
    sources: &Sources,
    _in_undo: bool,
) -> Option<Diagnostic> {
    let s = &plan.steps[step];
    let scope = &plan.scopes[s.scope];
    let mut parts = var.split('.');
    let head = parts.next()?;
    let span = var_span(
        node,
        text,
        var.split('.')
            .take(2)
            .collect::<Vec<_>>()
            .join(".")
            .as_str(),
        sources,
    );
    match head {
        "params" => {
            let name = parts.next()?;
            if scope.params.contains_key(name) {
                return None;
            }
            let d = Diagnostic::new(
                Code::UnknownParam,
                format!("template uses `params.{name}`, which is not declared"),
            )
            .label(span, "undeclared param");
            Some(
                match did_you_mean(name, scope.params.keys().map(String::as_str)) {
                    Some(c) => d.help(format!("did you mean `params.{c}`?")),
                    None => d.help(format!(
                        "declare it under `params:` as `{name}: {{type: string}}`"
                    )),
                },
            )
        }
        "steps" => {
            let name = parts.next()?;
            let prefix =
                s.id.value
                    .rsplit_once('.')
                    .map_or(String::new(), |(p, _)| format!("{p}."));
            let candidates = [
                name.to_string(),
                format!("{prefix}{name}"),
                name.replace('_', "-"),
                format!("{prefix}{}", name.replace('_', "-")),
            ];
            let Some(&target) = candidates.iter().find_map(|c| index.get(c)) else {
                let d = Diagnostic::new(
                    Code::UnknownStepRef,
                    format!("template uses `steps.{name}`, but there is no such step"),
                )
                .label(span, "unknown step");
                return Some(match did_you_mean(name, index.keys().map(String::as_str)) {
                    Some(c) => d.help(format!("did you mean `steps.{c}`?")),
                    None => d.help("outputs are read as steps.<id>.outputs.<name>"),
                });
            };
            let own = target == step;
            if !own && !ancestors.needs(step, target) {
                return Some(
                    Diagnostic::new(
                        Code::StepNotUpstream,
                        format!(
                            "step `{}` reads outputs of `{}`, which it does not need",
                            s.id.value, plan.steps[target].id.value
                        ),
                    )
                    .label(span, "may not have run yet")
                    .help(format!(
                        "add `{}` to this step's `needs` (directly or through another step)",
                        plan.steps[target].id.value
                    )),
                );
            }
            if parts.next() != Some("outputs") {
                return Some(
                    Diagnostic::new(
                        Code::UndefinedVariable,
                        format!("`{var}` is not a step output"),
                    )
                    .label(span, "expected steps.<id>.outputs.<name>")
                    .help("read an output as steps.<id>.outputs.<name>; a step that was skipped or failed sets none of them, so test one with `steps.<id>.outputs.<name> is defined` or give it a `| default(…)`"),
                );
            }
            let output = parts.next()?;
            let kind = plan.steps[target]
                .decl
                .step_type
                .as_ref()
                .and_then(|t| plan.registry.lookup(&t.value))?;
            if kind.open_outputs() || kind.outputs().iter().any(|o| o.name == output) {
                return None;
            }
            let names: Vec<&str> = kind.outputs().iter().map(|o| o.name).collect();
            let d = Diagnostic::new(
                Code::UnknownOutput,
                format!("step type `{}` has no output `{output}`", kind.name()),
            )
            .label(var_span(node, text, output, sources), "unknown output");
            Some(match did_you_mean(output, names.iter().copied()) {
                Some(c) => d.help(format!("did you mean `{c}`?")),
                None if names.is_empty() => d.help(format!("`{}` sets no outputs", kind.name())),
                None => d.help(format!("its outputs are: {}", names.join(", "))),
            })
        }
        "item" | "item_index" if s.decl.for_each.is_none() => Some(
            Diagnostic::new(
                Code::UndefinedVariable,
                format!("`{head}` is only defined in a step with `for_each`"),
            )
            .label(span, "no for_each here")
            .help("add `for_each:` to this step, or use a param"),
        ),
        "run" => {
            let attr = parts.next()?;
            let known = crate::compile::RUN_ATTRIBUTES;
            if known.contains(&attr) {
                return None;
            }
            let d = Diagnostic::new(
                Code::UndefinedVariable,
                format!("template uses `run.{attr}`, which is not a run attribute"),
            )
            .label(span, "unknown run attribute");
            Some(match did_you_mean(attr, known.iter().copied()) {
                Some(c) => d.help(format!("did you mean `run.{c}`?")),
                None => d.help(format!(
                    "the run attributes are: {}",
                    known
                        .iter()
                        .map(|a| format!("`run.{a}`"))
                        .collect::<Vec<_>>()
                        .join(", ")
                )),
            })
        }
        h if ROOTS.contains(&h) => None,
        other => {
            let d = Diagnostic::new(
                Code::UndefinedVariable,
                format!("template uses `{other}`, which is not defined"),
            )
            .label(span, "undefined variable");
            Some(match did_you_mean(other, ROOTS.iter().copied()) {
                Some(c) => d.help(format!("did you mean `{c}`?")),
                None => d.help(format!("templates can read {}", ROOTS.join(", "))),
            })
        }
    }
}

/// Every acquired resource is released on every path; every release has an acquire.
fn check_resources(
    plan: &LoadedPlan,
    index: &HashMap<String, usize>,
    ancestors: &Ancestry,
    diags: &mut Vec<Diagnostic>,
) {
    let _ = index;
    let mut acquired: HashMap<&str, Vec<usize>> = HashMap::new();
    let mut released: HashMap<&str, Vec<usize>> = HashMap::new();
    for (i, s) in plan.steps.iter().enumerate() {
        for r in &s.decl.acquires.0 {
            acquired.entry(r.value.as_str()).or_default().push(i);
        }
        for r in &s.decl.releases.0 {
            released.entry(r.value.as_str()).or_default().push(i);
        }
    }
    for (i, s) in plan.steps.iter().enumerate() {
        for r in &s.decl.acquires.0 {
            let releasers = released.get(r.value.as_str()).cloned().unwrap_or_default();
            if releasers.is_empty() {
                diags.push(
                    Diagnostic::new(Code::ResourceNotReleased, format!("resource `{}` is acquired but never released", r.value))
                        .label(r.span, "acquired here")
                        .help(format!("add a step with `releases: {}` that needs `{}`; it then also runs when a later step fails or the run is cancelled", r.value, s.id.value)),
                );
                continue;
            }
            if !releasers.iter().any(|&j| ancestors.needs(j, i)) {
                let j = releasers[0];
                diags.push(
                    Diagnostic::new(
                        Code::ReleaseNotAfterAcquire,
                        format!(
                            "`{}` may release `{}` before `{}` acquires it",
                            plan.steps[j].id.value, r.value, s.id.value
                        ),
                    )
                    .label(r.span, "acquired here")
                    .label(
                        plan.steps[j]
                            .decl
                            .releases
                            .0
                            .iter()
                            .find(|x| x.value == r.value)
                            .map_or(plan.steps[j].id.span, |x| x.span),
                        "released here, with no `needs` path from the acquire",
                    )
                    .help(format!(
                        "make `{}` need `{}` (directly or through the steps between)",
                        plan.steps[j].id.value, s.id.value
                    )),
                );
            }
        }
        for r in &s.decl.releases.0 {
            if !acquired.contains_key(r.value.as_str()) {
                let d = Diagnostic::new(
                    Code::ReleaseWithoutAcquire,
                    format!(
                        "step `{}` releases `{}`, which no step acquires",
                        s.id.value, r.value
                    ),
                )
                .label(r.span, "nothing acquires this");
                diags.push(d.suggest(
                    &r.value,
                    acquired.keys().copied(),
                    "add `acquires:` to the step that takes the resource",
                ));
            }
            if let Some(when) = &s.decl.when {
                diags.push(
                    Diagnostic::new(Code::ReleaseConditional, format!("the release of `{}` is conditional", r.value))
                        .label(when.span, "the release may be skipped")
                        .help("a release must run on every path; put the condition on the acquiring step instead"),
                );
            }
        }
    }
}

/// A destructive step (or a step whose undo or probe is destructive) needs an `assert` or
/// `confirm` guard among the steps it needs. A guard with its own `when:` does not count:
/// when it is skipped, it guards nothing.
fn check_destructive(plan: &LoadedPlan, ancestors: &Ancestry, diags: &mut Vec<Diagnostic>) {
    let guarded = ancestors.any_upstream(|j| {
        let g = &plan.steps[j].decl;
        g.when.is_none()
            && matches!(
                g.step_type.as_ref().map(|t| t.value.as_str()),
                Some("assert" | "confirm")
            )
    });
    for (i, s) in plan.steps.iter().enumerate() {
        if guarded[i] {
            continue;
        }
        for (what, action) in [("undo", &s.decl.undo), ("probe", &s.decl.probe)] {
            let Some(a) = action else { continue };
            let Some(kind) = plan.registry.lookup(&a.step_type.value) else {
                continue;
            };
            let with = a
                .with
                .clone()
                .unwrap_or_else(|| Node::new(a.step_type.span, NodeValue::Map(vec![])));
            if kind.destructive(&with) {
                diags.push(
                    Diagnostic::new(
                        Code::DestructiveUnguarded,
                        format!("the {what} of step `{}` is destructive and has no guard", s.id.value),
                    )
                    .label(a.step_type.span, format!("`{}` with these arguments destroys data", kind.name()))
                    .help("make the step need an `assert` step that checks it is safe, or a `confirm` step (with no `when:` of its own)"),
                );
            }
        }
    }
    for (i, s) in plan.steps.iter().enumerate() {
        let Some(kind) = s.kind(&plan.registry) else {
            continue;
        };
        let with = s
            .decl
            .with
            .clone()
            .unwrap_or_else(|| Node::new(s.id.span, NodeValue::Map(vec![])));
        let intrinsic = kind.destructive(&with);
        if !(s.decl.destructive || intrinsic) {
            continue;
        }
        if !guarded[i] {
            let why = if intrinsic && !s.decl.destructive {
                format!("`{}` with these arguments destroys data", kind.name())
            } else {
                "marked `destructive: true`".to_string()
            };
            diags.push(
                Diagnostic::new(Code::DestructiveUnguarded, format!("destructive step `{}` has no guard", s.id.value))
                    .label(s.decl.id.span, why)
                    .help("make it need an `assert` step that checks it is safe (the backup is verified, the target is right) or a `confirm` step"),
            );
        }
    }
}

/// The set of variables a template reads, for tests and tools.
pub fn template_variables(text: &str) -> BTreeSet<String> {
    let node = Node::new(Span::default(), NodeValue::Str(text.to_string()));
    template::variables(&node, text, false, None).unwrap_or_default()
}
