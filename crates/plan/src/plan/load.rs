use super::model::*;
use crate::diagnostic::{de_diagnostic, did_you_mean, Code, Diagnostic};
use crate::library;
use crate::source::de::{from_node, quote_list, Sp};
use crate::source::{FileId, Node, NodeValue, SourceFile, Sources, Span};
use crate::step::{DynStepType, Registry};
use indexmap::IndexMap;
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Where a step's templates take their `params` from: the plan, or a fragment instance.
#[derive(Debug, Clone)]
pub struct Scope {
    pub params: IndexMap<String, ParamDecl>,
    /// For a fragment: the `uses` step's `with:` (fragment param values, templated in the
    /// parent scope) and the parent scope.
    pub args: Option<(Node, usize)>,
    pub file: FileId,
}

/// A step after fragment inlining: its qualified id and the scope of its templates.
#[derive(Debug, Clone)]
pub struct ScopedStep {
    /// `copy` in the plan, `tsdb.copy` for step `copy` of a fragment used by step `tsdb`.
    pub id: Sp<String>,
    pub decl: StepDecl,
    pub needs: Vec<Sp<String>>,
    pub scope: usize,
}

impl ScopedStep {
    /// The registered step type, when `type:` names one.
    pub fn kind<'r>(&self, registry: &'r Registry) -> Option<&'r Arc<dyn DynStepType>> {
        self.decl
            .step_type
            .as_ref()
            .and_then(|t| registry.lookup(&t.value))
    }
}

#[derive(Debug)]
pub struct LoadedPlan {
    /// The step types the plan was read against; validate and compile use the same.
    pub registry: Arc<Registry>,
    pub path: PathBuf,
    /// The plan file's document without its steps (`doc.steps` is empty): they moved,
    /// inlined, to `steps`, so a large plan holds each step once.
    pub doc: PlanDoc,
    pub steps: Vec<ScopedStep>,
    /// The `uses:` steps, each in the scope it is written in: they are replaced by their
    /// fragment's steps, and kept here for the checks of the step itself (its id, the
    /// fields a fragment step cannot take).
    pub uses_steps: Vec<ScopedStep>,
    pub scopes: Vec<Scope>,
    /// sha256 of the plan file and every fragment, for resume's "plan changed" check.
    pub content_hash: String,
    /// Some part of the plan (a step, a param, a field of one) could not be read and is
    /// left out: its errors are reported, and checks that relate parts (needs, template
    /// references, resources, guards) would report what is missing, so they are not run.
    pub incomplete: bool,
}

const TOP_FIELDS: &[&str] = &["apiVersion", "kind", "metadata", "params", "locks", "steps"];

/// Reads a plan and its fragments. Returns the plan when it could be built (possibly with
/// diagnostics still to report) and every problem found.
pub fn load_plan(
    path: &Path,
    sources: &mut Sources,
    registry: &Arc<Registry>,
) -> (Option<LoadedPlan>, Vec<Diagnostic>) {
    let mut diags = Vec::new();
    let mut incomplete = false;
    let Some((file, mut doc)) = read_doc(path, sources, &mut diags, None, &mut incomplete) else {
        return (None, diags);
    };
    if doc.kind.value != Kind::Plan {
        diags.push(
            Diagnostic::new(Code::InvalidValue, "this file is a fragment, not a plan")
                .label(doc.kind.span, "kind: Fragment")
                .help("fragments are used from a plan step with `uses:`; they cannot run alone"),
        );
    }
    // The steps move into `LoadedPlan::steps` (one copy of each, not two).
    let steps = std::mem::take(&mut doc.steps);
    let mut loaded = LoadedPlan {
        registry: registry.clone(),
        path: path.to_path_buf(),
        steps: Vec::with_capacity(steps.len()),
        uses_steps: Vec::new(),
        scopes: vec![Scope {
            params: doc.params.clone(),
            args: None,
            file,
        }],
        content_hash: String::new(),
        doc,
        incomplete,
    };
    let mut stack = vec![path.to_path_buf()];
    inline_steps(
        steps,
        "",
        0,
        &mut loaded,
        sources,
        &mut stack,
        &mut diags,
        &[],
    );
    let mut hasher = Sha256::new();
    for (_, f) in sources.files() {
        hasher.update(f.text.as_bytes());
    }
    loaded.content_hash = hex::encode(hasher.finalize());
    (Some(loaded), diags)
}

#[allow(clippy::too_many_arguments)]
fn inline_steps(
    steps: Vec<StepDecl>,
    prefix: &str,
    scope: usize,
    plan: &mut LoadedPlan,
    sources: &mut Sources,
    stack: &mut Vec<PathBuf>,
    diags: &mut Vec<Diagnostic>,
    outer_needs: &[Sp<String>],
) {
    let qualify = |id: &Sp<String>| Sp::new(format!("{prefix}{}", id.value), id.span);
    // A `uses` step's id stands for every step of its fragment in `needs`.
    let mut groups: IndexMap<String, Vec<Sp<String>>> = IndexMap::new();
    for step in steps {
        let id = qualify(&step.id);
        let mut needs: Vec<Sp<String>> = step.needs.iter().map(qualify).collect();
        if needs.is_empty() {
            needs = outer_needs.to_vec();
        }
        // Expand references to fragment groups declared earlier in this list.
        needs = needs
            .into_iter()
            .flat_map(|n| match groups.get(&n.value) {
                Some(members) => members
                    .iter()
                    .map(|m| Sp::new(m.value.clone(), n.span))
                    .collect(),
                None => vec![n],
            })
            .collect();
        match &step.uses {
            Some(uses) => {
                // A `uses:` step is rare: its copy here costs nothing.
                plan.uses_steps.push(ScopedStep {
                    id: id.clone(),
                    decl: step.clone(),
                    needs: needs.clone(),
                    scope,
                });
                let before = plan.steps.len();
                inline_fragment(&step, uses, &id, needs, scope, plan, sources, stack, diags);
                let members = plan.steps[before..].iter().map(|s| s.id.clone()).collect();
                groups.insert(id.value.clone(), members);
            }
            None => plan.steps.push(ScopedStep {
                id,
                decl: step,
                needs,
                scope,
            }),
        }
    }
    // A group referenced before its declaration is expanded now.
    for step in &mut plan.steps {
        if step.id.value.starts_with(prefix) {
            step.needs = std::mem::take(&mut step.needs)
                .into_iter()
                .flat_map(|n| match groups.get(&n.value) {
                    Some(members) => members
                        .iter()
                        .map(|m| Sp::new(m.value.clone(), n.span))
                        .collect(),
                    None => vec![n],
                })
                .collect();
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn inline_fragment(
    step: &StepDecl,
    uses: &Sp<String>,
    id: &Sp<String>,
    needs: Vec<Sp<String>>,
    scope: usize,
    plan: &mut LoadedPlan,
    sources: &mut Sources,
    stack: &mut Vec<PathBuf>,
    diags: &mut Vec<Diagnostic>,
) {
    if step.step_type.is_some() {
        diags.push(
            Diagnostic::new(Code::InvalidValue, "a step has both `type` and `uses`")
                .label(uses.span, "uses a fragment")
                .help("a step either runs a step type or inlines a fragment; remove one"),
        );
    }
    let base = stack
        .last()
        .and_then(|p| p.parent())
        .unwrap_or(Path::new("."));
    let (path, shipped) = match library::parse_uses(&uses.value) {
        None => (base.join(&uses.value), None),
        Some(Err(message)) => {
            diags.push(
                Diagnostic::new(Code::BuiltinName, message)
                    .label(uses.span, "not a shipped plan reference")
                    .help(format!("write `{}NAME@REQUIREMENT`, e.g. `builtin:dop/fragments/restore-bucket@^2`", library::SCHEME)),
            );
            return;
        }
        Some(Ok(r)) => match library::get(&r.name) {
            Some(e) => (e.path(), Some((r, e))),
            None => {
                diags.push(
                    Diagnostic::new(
                        Code::BuiltinName,
                        format!(
                            "`{}`: this opsplan ships no plan or fragment `{}`",
                            uses.value, r.name
                        ),
                    )
                    .label(uses.span, "unknown shipped name")
                    .help(library::unknown_name(&r.name)),
                );
                return;
            }
        },
    };
    let here = canonical(&path).unwrap_or(path.clone());
    if stack.iter().any(|p| canonical(p).as_ref() == Some(&here)) {
        let chain: Vec<String> = stack
            .iter()
            .chain(std::iter::once(&path))
            .map(|p| p.display().to_string())
            .collect();
        diags.push(
            Diagnostic::new(Code::FragmentCycle, "fragments use each other in a cycle")
                .label(uses.span, "this fragment is already being inlined")
                .help(format!("cycle: {}", chain.join(" -> "))),
        );
        return;
    }
    let mut incomplete = false;
    let read = read_doc(&path, sources, diags, Some(uses.span), &mut incomplete);
    plan.incomplete |= incomplete;
    let Some((file, mut doc)) = read else {
        plan.incomplete = true;
        return;
    };
    if doc.kind.value != Kind::Fragment {
        diags.push(
            Diagnostic::new(Code::FragmentLoad, "`uses:` names a plan, not a fragment")
                .label(uses.span, "this file has `kind: Plan`")
                .help(if shipped.is_some() {
                    "`uses:` inlines fragments; a shipped plan runs by name (`opsplan run NAME`), or `opsplan plans export NAME DIR` gives a copy to edit"
                } else {
                    "set `kind: Fragment` in the used file"
                }),
        );
    }
    if let Some((r, e)) = &shipped {
        if let Some(d) = shipped_version(r, e, uses) {
            diags.push(d);
        }
    }
    plan.scopes.push(Scope {
        params: std::mem::take(&mut doc.params),
        args: Some((
            step.with
                .clone()
                .unwrap_or_else(|| Node::new(uses.span, NodeValue::Map(vec![]))),
            scope,
        )),
        file,
    });
    let inner = plan.scopes.len() - 1;
    stack.push(path);
    inline_steps(
        doc.steps,
        &format!("{}.", id.value),
        inner,
        plan,
        sources,
        stack,
        diags,
        &needs,
    );
    stack.pop();
}

/// The shipped version against a `uses: builtin:NAME@REQ` requirement: a diagnostic when
/// it does not meet it (E095), or when no requirement pins it (W107).
fn shipped_version(
    r: &library::UsesRef,
    e: &library::Entry,
    uses: &Sp<String>,
) -> Option<Diagnostic> {
    let shipped = e.version.as_deref().unwrap_or("no version");
    let Some(req) = &r.req else {
        return Some(
            Diagnostic::new(
                Code::BuiltinUnversioned,
                format!("`{}` has no version requirement; this opsplan ships {shipped}", uses.value),
            )
            .label(uses.span, "any version")
            .help(format!(
                "pin the major version, e.g. `{}{}@^{}`, so an upgrade that changes it incompatibly is refused",
                library::SCHEME,
                r.name,
                e.semver().map_or(1, |v| v.major)
            )),
        );
    };
    if e.semver().is_some_and(|v| req.matches(&v)) {
        return None;
    }
    Some(
        Diagnostic::new(
            Code::BuiltinVersion,
            format!(
                "`{}` requires version {req} of `{}`, but this opsplan ships {shipped}",
                uses.value, r.name
            ),
        )
        .label(uses.span, format!("requires {req}, shipped {shipped}"))
        .help(format!(
            "this opsplan ships another version than the plan was written for (a new major version is a breaking change, docs/plans/README.md): read it with `opsplan plans show {}`, adapt this plan and change the requirement, or run an opsplan release that ships a matching version",
            r.name
        )),
    )
}

fn canonical(path: &Path) -> Option<PathBuf> {
    library::normalize(path).or_else(|| path.canonicalize().ok())
}

/// A file's bytes: a shipped plan's virtual path (`builtin:…`) reads the embedded text.
fn read_bytes(path: &Path) -> std::io::Result<Vec<u8>> {
    if library::is_builtin(path) {
        return library::read(path)
            .map(|t| t.as_bytes().to_vec())
            .ok_or_else(|| {
                std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    "this opsplan ships no such plan or fragment",
                )
            });
    }
    std::fs::read(path)
}

/// Reads, parses and decodes one file; every decodable part is kept, every problem reported.
fn read_doc(
    path: &Path,
    sources: &mut Sources,
    diags: &mut Vec<Diagnostic>,
    used_at: Option<Span>,
    incomplete: &mut bool,
) -> Option<(FileId, PlanDoc)> {
    let text = match read_bytes(path).and_then(|bytes| {
        String::from_utf8(bytes)
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))
    }) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::InvalidData => {
            // Not UTF-8: keep the text (bad bytes shown as U+FFFD, the valid prefix exactly
            // as read) so the error points at the first bad byte by line and column.
            let utf8 = e
                .get_ref()
                .and_then(|inner| inner.downcast_ref::<std::string::FromUtf8Error>());
            let (at, lossy, byte) = match utf8 {
                Some(u) => {
                    let at = u.utf8_error().valid_up_to();
                    let bytes = u.as_bytes();
                    (
                        at,
                        String::from_utf8_lossy(bytes).into_owned(),
                        bytes.get(at).copied().unwrap_or(0),
                    )
                }
                None => (0, String::new(), 0),
            };
            let file = sources.add(SourceFile::new(path, lossy));
            let at = at.saturating_sub(if sources.get(file).bom { 3 } else { 0 });
            diags.push(
                Diagnostic::new(
                    if used_at.is_some() { Code::FragmentLoad } else { Code::YamlSyntax },
                    format!("{} is not UTF-8 text: byte 0x{byte:02x} is not valid here", path.display()),
                )
                .label(Span::new(file, at, 3), "not UTF-8")
                .help("plans are UTF-8 text; save the file as UTF-8 (e.g. `iconv -f latin1 -t utf-8`)"),
            );
            return None;
        }
        Err(e) => {
            let mut d = if used_at.is_some() {
                Diagnostic::new(
                    Code::FragmentLoad,
                    format!("cannot read {}: {e}", path.display()),
                )
            } else {
                crate::library::unreadable(path, &e)
            };
            if let Some(span) = used_at {
                let base = path
                    .parent()
                    .map_or(String::new(), |p| p.display().to_string());
                d = d.label(span, "used here").help(format!(
                    "a `uses:` path is relative to the file that contains it ({base}/)"
                ));
            }
            diags.push(d);
            return None;
        }
    };
    let file = sources.add(SourceFile::new(path, text));
    let text = sources.get(file).text.clone();
    let root = match Node::parse(file, &text) {
        Ok(root) => root,
        Err(e) => {
            let help = match &e.help {
                Some(h) => format!("{h}. Nothing else in this file was checked"),
                None => "fix the YAML syntax; nothing else in this file was checked".to_string(),
            };
            diags.push(e.to_diagnostic(file, "").help(help));
            return None;
        }
    };
    diags.extend(yaml11_booleans(&root, &text));
    decode_doc(root, file, diags, incomplete).map(|doc| (file, doc))
}

/// Plain scalars a YAML 1.1 reader (PyYAML, Ansible, older tools) takes for booleans: plans
/// are read as YAML 1.2, where they stay strings (W106), so a file two tools read differently
/// is pointed out.
fn yaml11_booleans(root: &Node, text: &str) -> Vec<Diagnostic> {
    const WORDS: &[&str] = &[
        "y", "Y", "yes", "Yes", "YES", "n", "N", "no", "No", "NO", "on", "On", "ON", "off", "Off",
        "OFF",
    ];
    let mut out = Vec::new();
    let mut visit = |n: &Node| {
        let NodeValue::Str(s) = &n.value else { return };
        let raw = text.get(n.span.offset..n.span.offset + n.span.len);
        if WORDS.contains(&s.as_str()) && raw == Some(s.as_str()) {
            let as_bool = matches!(s.to_lowercase().as_str(), "y" | "yes" | "on");
            out.push(
                Diagnostic::new(
                    Code::Yaml11Boolean,
                    format!("`{s}` is the string \"{s}\" here; a YAML 1.1 reader takes it for `{as_bool}`"),
                )
                .label(n.span, "read as a string (YAML 1.2)")
                .help(format!(
                    "quote it (\"{s}\") if you mean the text, or write `{as_bool}` if you mean a boolean"
                )),
            );
        }
    };
    walk_all(root, &mut visit);
    out
}

fn walk_all<'a>(n: &'a Node, f: &mut dyn FnMut(&'a Node)) {
    f(n);
    match &n.value {
        NodeValue::Seq(items) => items.iter().for_each(|i| walk_all(i, f)),
        NodeValue::Map(entries) => entries.iter().for_each(|(k, v)| {
            walk_all(k, f);
            walk_all(v, f);
        }),
        _ => {}
    }
}

/// Decodes the document, keeping every part that can be read: a step, param or metadata
/// with unknown fields is read without them (each reported), one with a wrong value is
/// left out (`incomplete`), so one pass reports the problems of every layer. The tree is
/// consumed: each step's nodes are freed once the step is decoded, so a large plan's tree
/// and its typed steps are not held in full at the same time.
fn decode_doc(
    mut root: Node,
    file: FileId,
    diags: &mut Vec<Diagnostic>,
    incomplete: &mut bool,
) -> Option<PlanDoc> {
    if root.as_map().is_none() {
        if root.value == NodeValue::Null {
            diags.push(
                Diagnostic::new(Code::WrongType, "the file is empty")
                    .label(Span::new(file, 0, 0), "no plan here")
                    .help("a plan starts with `apiVersion: opsplan/v1`, `kind: Plan`, `metadata:` and `steps:`"),
            );
            return None;
        }
        diags.push(
            Diagnostic::new(
                Code::WrongType,
                format!("a plan must be a mapping, found {}", root.kind_name()),
            )
            .label(
                Span::new(file, root.span.offset, root.span.len.max(1)),
                "not a mapping",
            )
            .help("start the file with `apiVersion: opsplan/v1`"),
        );
        return None;
    }
    let NodeValue::Map(entries) = &mut root.value else {
        return None;
    };
    let start = Span::new(file, 0, 1);
    let mut api_version = None;
    let mut kind = None;
    let mut metadata = None;
    let mut params = IndexMap::new();
    let mut locks = Vec::new();
    let mut steps = None;
    let mut ok = true;
    for (key, value) in entries {
        let name = key.scalar_text();
        match name.as_str() {
            "apiVersion" => match value.as_str() {
                Some(API_VERSION) => {
                    api_version = Some(Sp::new(API_VERSION.to_string(), value.span));
                }
                _ => {
                    diags.push(
                        Diagnostic::new(
                            Code::ApiVersion,
                            format!("unsupported apiVersion `{}`", value.scalar_text()),
                        )
                        .label(value.span, "unknown format version")
                        .help(format!("this opsplan reads `{API_VERSION}`")),
                    );
                    ok = false;
                }
            },
            "kind" => kind = decode(value, "kind", diags),
            "metadata" => {
                metadata = decode_repairing(value.clone(), "metadata", diags, incomplete);
            }
            "params" => match value.as_map() {
                Some(entries) => {
                    for (k, v) in entries {
                        let what = format!("param `{}`", k.scalar_text());
                        if let Some(p) =
                            decode_repairing::<ParamDecl>(v.clone(), &what, diags, incomplete)
                        {
                            params.insert(k.scalar_text(), p);
                        }
                    }
                }
                None if value.value == NodeValue::Null => {}
                None => {
                    diags.push(wrong_kind(
                        value,
                        "params",
                        "a mapping of param names to declarations",
                        "write one `name:` per param, with `type:` under it",
                    ));
                    ok = false;
                }
            },
            "locks" => {
                locks = decode(value, "locks", diags).unwrap_or_else(|| {
                    ok = false;
                    Vec::new()
                });
            }
            "steps" => match &mut value.value {
                NodeValue::Seq(items) => {
                    let items = std::mem::take(items);
                    let mut decoded = Vec::with_capacity(items.len());
                    for item in items {
                        let what = match item.get("id").map(Node::scalar_text) {
                            Some(id) => format!("step `{id}`"),
                            None => "step".to_string(),
                        };
                        if let Some(step) =
                            decode_repairing::<StepDecl>(item, &what, diags, incomplete)
                        {
                            decoded.push(step);
                        }
                    }
                    steps = Some(decoded);
                }
                _ => {
                    diags.push(wrong_kind(
                        value,
                        "steps",
                        "a list of steps",
                        "write each step as a list item starting with `- id: …`",
                    ));
                    ok = false;
                }
            },
            other => {
                let mut d = Diagnostic::new(
                    Code::UnknownField,
                    format!("unknown field `{other}` at the top of the plan"),
                )
                .label(key.span, "unknown field");
                d = match did_you_mean(other, TOP_FIELDS.iter().copied()) {
                    Some(s) => d.help(format!("did you mean `{s}`?")),
                    None => d.help(format!("expected one of {}", quote_list(TOP_FIELDS))),
                };
                diags.push(d);
            }
        }
    }
    for (field, present) in [
        ("apiVersion", api_version.is_some() || !ok),
        ("kind", kind.is_some()),
        ("metadata", metadata.is_some()),
        ("steps", steps.is_some()),
    ] {
        if !present && root.get(field).is_none() {
            diags.push(
                Diagnostic::new(Code::MissingField, format!("missing field `{field}`"))
                    .label(start, "the plan starts here")
                    .help(match field {
                        "apiVersion" => "add `apiVersion: opsplan/v1`",
                        "kind" => {
                            "add `kind: Plan` (or `kind: Fragment` for a file used with `uses:`)"
                        }
                        "metadata" => "add `metadata:` with at least `name:`",
                        _ => "add `steps:` with at least one step",
                    }),
            );
        }
    }
    if !ok {
        return None;
    }
    Some(PlanDoc {
        api_version: api_version?,
        kind: kind?,
        metadata: metadata?,
        params,
        locks,
        steps: steps?,
    })
}

/// [`decode`], going on past an error: the entry it is in is dropped and the rest decoded
/// again, so every unknown field of a step is reported, not only the first. Dropping an
/// unknown field loses nothing; dropping a known one (its value is wrong) marks the plan
/// `incomplete`, and the part is left out when a required field had to go.
fn decode_repairing<T: serde::de::DeserializeOwned>(
    mut node: Node,
    what: &str,
    diags: &mut Vec<Diagnostic>,
    incomplete: &mut bool,
) -> Option<T> {
    let mut dropped: Vec<String> = Vec::new();
    // Each round drops one entry, so there are at most as many rounds as entries.
    let rounds = node.as_map().map_or(1, <[_]>::len) + 1;
    for _ in 0..rounds {
        let e = match from_node::<T>(&node, false) {
            Ok(v) => return Some(v),
            Err(e) => e,
        };
        if let crate::source::de::DeErrorKind::MissingField(field) = &e.kind {
            if e.path.is_empty() && dropped.iter().any(|d| d == field) {
                // A consequence of dropping a wrong value, already reported.
                *incomplete = true;
                return None;
            }
        }
        diags.push(de_diagnostic(&e, what, node.span));
        let key = match (e.path.first(), &e.kind) {
            (Some(key), _) => {
                *incomplete = true;
                key.clone()
            }
            (None, crate::source::de::DeErrorKind::UnknownField { field, .. }) => field.clone(),
            (None, _) => {
                *incomplete = true;
                return None;
            }
        };
        let NodeValue::Map(entries) = &mut node.value else {
            *incomplete = true;
            return None;
        };
        let before = entries.len();
        entries.retain(|(k, _)| k.scalar_text() != key);
        if entries.len() == before {
            *incomplete = true;
            return None;
        }
        dropped.push(key);
    }
    *incomplete = true;
    None
}

fn wrong_kind(node: &Node, field: &str, expected: &str, help: &str) -> Diagnostic {
    Diagnostic::new(
        Code::WrongType,
        format!("`{field}` must be {expected}, found {}", node.kind_name()),
    )
    .label(node.span, format!("expected {expected}"))
    .help(help.to_string())
}

fn decode<T: serde::de::DeserializeOwned>(
    node: &Node,
    what: &str,
    diags: &mut Vec<Diagnostic>,
) -> Option<T> {
    // Plan-level typed fields (`retry.attempts`, `destructive`) are never rendered, so a
    // template there is a wrong type, not a value to come; step arguments stay `Node`s.
    match from_node::<T>(node, false) {
        Ok(v) => Some(v),
        Err(e) => {
            diags.push(de_diagnostic(&e, what, node.span));
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A plan may hold 100,000 steps, most of them without `retry`, `undo`, `probe` or
    /// `refused_when`: those are boxed, so a step that leaves them out does not pay for
    /// them (a step was 1,544 bytes before they were, not counting its strings and nodes).
    #[test]
    fn a_step_without_its_rare_fields_stays_small() {
        assert!(
            std::mem::size_of::<ScopedStep>() <= 640,
            "ScopedStep is {} bytes",
            std::mem::size_of::<ScopedStep>()
        );
    }
}
