//! `facts.compare`: after a restore, compare what the restored system holds with the facts
//! the backup recorded in its manifest (row counts per table, the list of tables and
//! partitions, objects and bytes per bucket, the system's version), failing with every
//! difference named.
//!
//! A manifest proves a backup's files are unchanged since they were written; the facts
//! prove the *restored system* holds what the backed-up system held. A backup plan reads
//! them from the live system at its consistency point and passes them to `manifest`
//! (`facts:`); the restore plan reads the same facts from the restored system with the same
//! interface and gives them to this step as `actual:`.
//!
//! # Facts
//! A fact is a name and a value of one of three shapes ([`check_value`]): a scalar
//! (string, number, boolean, null), a list of scalars (compared as a set: the tables), or a
//! map of scalars (compared key by key: rows per table). The manifest keeps them in its
//! `facts` section, which has a format version of its own ([`FACTS_FORMAT_VERSION`];
//! docs/design/0002-backup-manifest.md):
//!
//! ```json
//! "facts": { "format_version": 1, "values": { "tables": { "trades": 120 } } }
//! ```
//!
//! # Comparison
//! Each fact is compared `exactly` (the default) or `at least` (named in `at_least`: a live
//! system may have grown since the restore). A number equals a string of the same number
//! (`120` recorded by a `sql` step, `"120"` read back through `psql -tA`); with `at_least`
//! a number may be larger, a list or a map may hold more. A fact read after the restore but
//! not recorded (a backup older than the fact) is listed in `unrecorded` and not compared;
//! when no fact at all could be compared, the step fails, since it would prove nothing.

use super::manifest::{self, DEFAULT_FILE};
use super::verify::read_manifest;
use crate::{Action, OutputDecl, Outputs, StepContext, StepError, StepType};
use opsplan_plan::diagnostic::{Code, Diagnostic};
use opsplan_plan::source::de::is_template;
use opsplan_plan::source::{Node, NodeValue};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Map, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

/// The version of the manifest's `facts` section this opsplan writes and reads.
pub const FACTS_FORMAT_VERSION: u64 = 1;

/// Differences named in the failure message; the `differences` output holds them all.
const FIRST: usize = 20;

pub struct FactsCompare;

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FactsCompareSpec {
    /// The backup folder or generation whose manifest holds the recorded facts (the `path`
    /// output of `generation.select`); give this or `manifest`.
    #[serde(default)]
    pub folder: Option<String>,
    /// File name of the manifest inside `folder` (default `opsplan-manifest.json`).
    #[serde(default = "manifest::default_file")]
    pub file: String,
    /// The manifest file itself, when it is not at the top of a backup folder; give this or
    /// `folder`.
    #[serde(default)]
    pub manifest: Option<String>,
    /// The same facts read from the restored system: names to scalars, lists of scalars or
    /// maps of scalars, in the shape the backup recorded them; or one `{{ expression }}`
    /// that renders to such a map (a step's parsed JSON output, when the names depend on
    /// the system, e.g. one fact per table).
    pub actual: FactsArg,
    /// How facts are compared: `exact` (default: equal to what was recorded) or `at_least`
    /// (a larger number, a list or map with more entries: a live system that kept running
    /// after the restore, or facts read just before a consistency point).
    #[serde(default)]
    pub mode: Mode,
    /// With `mode: exact`, the facts compared `at least` all the same.
    #[serde(default)]
    pub at_least: Vec<String>,
    /// Only report: succeed whatever the outcome, for plans that branch on
    /// `steps.<id>.outputs.status`. By default any difference fails the step.
    #[serde(default)]
    pub report_only: bool,
}

/// `actual:`, a map of facts, or an expression that renders to one (kept as text until
/// it is rendered, so preview can say what it reads).
#[derive(Debug)]
pub enum FactsArg {
    Facts(BTreeMap<String, Value>),
    Expression(String),
}

impl<'de> Deserialize<'de> for FactsArg {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = FactsArg;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a map of facts, or one `{{ expression }}` that renders to one")
            }
            fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<FactsArg, E> {
                Ok(FactsArg::Expression(s.to_string()))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<FactsArg, A::Error> {
                let mut out = BTreeMap::new();
                while let Some((k, v)) = map.next_entry::<String, Value>()? {
                    out.insert(k, v);
                }
                Ok(FactsArg::Facts(out))
            }
        }
        d.deserialize_any(V)
    }
}

impl JsonSchema for FactsArg {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Facts".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "Facts by name (a scalar, a list of scalars or a map of scalars each), or one `{{ expression }}` that renders to such a map.",
            "anyOf": [{"type": "object"}, {"type": "string"}]
        })
    }
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    #[default]
    Exact,
    AtLeast,
}

impl FactsCompareSpec {
    fn is_at_least(&self, name: &str) -> bool {
        self.mode == Mode::AtLeast || self.at_least.iter().any(|n| n == name)
    }

    fn manifest_path(&self) -> String {
        match (&self.manifest, &self.folder) {
            (Some(m), _) => m.clone(),
            (None, Some(f)) => format!("{}/{}", f.trim_end_matches('/'), self.file),
            (None, None) => DEFAULT_FILE.into(),
        }
    }
}

impl StepType for FactsCompare {
    const NAME: &'static str = "facts.compare";
    const SUMMARY: &'static str =
        "Compare the facts a backup recorded in its manifest (rows per table, tables, objects per bucket, version) with the restored system's; fails naming every difference.";
    type Spec = FactsCompareSpec;

    fn outputs() -> &'static [OutputDecl] {
        &[
            OutputDecl {
                name: "status",
                description: "`match` or `differ`",
            },
            OutputDecl {
                name: "differences",
                description: "one `{fact, key, recorded, restored, message}` per difference (`key`: the table or item, null for a scalar fact; `recorded`/`restored`: null where absent)",
            },
            OutputDecl {
                name: "compared",
                description: "names of the facts compared",
            },
            OutputDecl {
                name: "unrecorded",
                description: "names of facts read after the restore that the manifest does not record (not compared)",
            },
            OutputDecl {
                name: "recorded",
                description: "the manifest's facts, as recorded",
            },
        ]
    }

    fn check(spec: &FactsCompareSpec, with: &Node) -> Vec<Diagnostic> {
        let mut diags = Vec::new();
        match (&spec.folder, &spec.manifest) {
            (Some(_), Some(_)) => diags.push(
                Diagnostic::new(
                    Code::StepArgs,
                    "`folder` and `manifest` both name the manifest to read",
                )
                .label(
                    with.entry("manifest").map_or(with.span, |(k, _)| k.span),
                    "the second source",
                )
                .help("give the backup folder (`folder`, with `file`) or the manifest file (`manifest`), not both"),
            ),
            (None, None) => diags.push(
                Diagnostic::new(Code::StepArgs, "no manifest to read the recorded facts from")
                    .label(with.span, "neither `folder` nor `manifest`")
                    .help("give `folder: \"{{ steps.select.outputs.path }}\"` (a generation) or `manifest: <path of opsplan-manifest.json>`"),
            ),
            _ => {}
        }
        if let Some(f) = &spec.folder {
            diags.extend(super::check_nonempty_path(with, "folder", f));
        }
        if let Some(m) = &spec.manifest {
            diags.extend(super::check_nonempty_path(with, "manifest", m));
        }
        diags.extend(manifest::check_manifest_file(with, &spec.file));
        diags.extend(check_facts_node(with, "actual"));
        let named = match &spec.actual {
            FactsArg::Facts(facts) => Some(facts),
            FactsArg::Expression(text) => {
                if !is_template(text) && !text.contains(opsplan_plan::template::PLACEHOLDER_OPEN) {
                    diags.push(
                        Diagnostic::new(
                            Code::StepArgs,
                            format!("`actual` is the text `{text}`, not facts"),
                        )
                        .label(with.get("actual").map_or(with.span, |n| n.span), "not a map")
                        .help("give facts by name (`actual: {tables: \"{{ steps.read.outputs.json.tables }}\"}`) or one `{{ expression }}` that renders to a map"),
                    );
                }
                None
            }
        };
        for (i, name) in spec.at_least.iter().enumerate() {
            let Some(facts) = named else { break };
            if facts.contains_key(name) || is_template(name) {
                continue;
            }
            let span = with
                .get("at_least")
                .and_then(|n| n.at_path(&i.to_string()))
                .map_or(with.span, |n| n.span);
            diags.push(
                Diagnostic::new(
                    Code::StepArgs,
                    format!("`at_least` names `{name}`, which `actual` does not read"),
                )
                .label(span, "not a fact of `actual`")
                .suggest(
                    name,
                    facts.keys().map(String::as_str),
                    "`at_least` lists names of `actual`'s facts",
                ),
            );
        }
        diags
    }

    fn describe(spec: &FactsCompareSpec) -> Action {
        let facts = match &spec.actual {
            FactsArg::Facts(facts) => facts
                .iter()
                .map(|(name, value)| {
                    let how = if spec.is_at_least(name) {
                        "at least"
                    } else {
                        "exactly"
                    };
                    format!("{name} {how} ({})", preview_value(value))
                })
                .collect::<Vec<_>>()
                .join(", "),
            FactsArg::Expression(text) => format!(
                "every fact of {text}, {}",
                if spec.mode == Mode::AtLeast {
                    "at least"
                } else if spec.at_least.is_empty() {
                    "exactly"
                } else {
                    "exactly except at least for those `at_least` names"
                }
            ),
        };
        Action::new(format!(
            "compare the facts recorded in {} with the restored system's: {facts}{}",
            spec.manifest_path(),
            if spec.report_only {
                "; report only"
            } else {
                "; fail on any difference"
            }
        ))
    }

    async fn run(spec: FactsCompareSpec, ctx: StepContext) -> Result<Outputs, StepError> {
        let path = PathBuf::from(spec.manifest_path());
        let actual = match &spec.actual {
            FactsArg::Facts(facts) => facts,
            FactsArg::Expression(text) => {
                return Err(StepError::fatal(format!(
                    "`actual` rendered to the text `{text}`, not a map of facts"
                )))
            }
        };
        let recorded = super::blocking(&ctx, move |_| read_facts(&path)).await?;
        for (name, value) in actual {
            check_value(name, value).map_err(|e| {
                StepError::fatal(format!("`actual` fact {name} cannot be compared: it {e}"))
            })?;
        }
        let at_least: BTreeSet<&str> = actual
            .keys()
            .filter(|n| spec.is_at_least(n))
            .map(String::as_str)
            .collect();
        let (compared, unrecorded, differences) = compare(&recorded.values, actual, &at_least);
        if compared.is_empty() {
            return Err(StepError::fatal(format!(
                "no fact to compare: the manifest {} records {}, and `actual` reads {}",
                recorded.path,
                names_or_none(recorded.values.keys()),
                names_or_none(actual.keys())
            )));
        }
        if !differences.is_empty() && !spec.report_only {
            let mut text: Vec<String> = differences
                .iter()
                .take(FIRST)
                .map(|d| d.message.clone())
                .collect();
            if differences.len() > FIRST {
                text.push(format!("and {} more", differences.len() - FIRST));
            }
            return Err(StepError::fatal(format!(
                "the restored system differs from the facts recorded in {}: {}",
                recorded.path,
                text.join("; ")
            )));
        }
        let mut out = Outputs::new();
        out.insert(
            "status".into(),
            if differences.is_empty() {
                "match"
            } else {
                "differ"
            }
            .into(),
        );
        out.insert(
            "differences".into(),
            Value::Array(differences.iter().map(Difference::to_json).collect()),
        );
        out.insert("compared".into(), Value::from(compared));
        out.insert("unrecorded".into(), Value::from(unrecorded));
        out.insert("recorded".into(), Value::Object(recorded.values));
        Ok(out)
    }
}

fn names_or_none<'a>(names: impl Iterator<Item = &'a String>) -> String {
    let names: Vec<&str> = names.map(String::as_str).collect();
    if names.is_empty() {
        "no facts".into()
    } else {
        names.join(", ")
    }
}

/// A fact's value in a preview line: a placeholder or template as is, else compact JSON.
fn preview_value(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

struct Recorded {
    path: String,
    values: Map<String, Value>,
}

/// The manifest's facts; an error names the manifest and why they cannot be read.
fn read_facts(path: &std::path::Path) -> Result<Recorded, StepError> {
    let shown = path.display().to_string();
    let doc = read_manifest(path)?.ok_or_else(|| {
        StepError::fatal(format!(
            "manifest {shown} does not exist: the backup did not finish, or the path is wrong"
        ))
    })?;
    let Some(section) = doc.facts else {
        return Err(StepError::fatal(format!(
            "manifest {shown} records no facts (written by {} {}, which did not record any); \
             nothing to compare the restored system with",
            doc.plan.name,
            doc.plan.version.as_deref().unwrap_or("(no version)")
        )));
    };
    let version = section.get("format_version").and_then(Value::as_u64);
    if version != Some(FACTS_FORMAT_VERSION) {
        return Err(StepError::fatal(format!(
            "manifest {shown} has facts of format version {}; this opsplan reads facts version \
             {FACTS_FORMAT_VERSION}",
            version.map_or("?".into(), |v| v.to_string())
        )));
    }
    let Some(Value::Object(values)) = section.get("values") else {
        return Err(StepError::fatal(format!(
            "manifest {shown} is malformed: its `facts` section has no `values` map"
        )));
    };
    for (name, value) in values {
        check_value(name, value).map_err(|e| {
            StepError::fatal(format!("manifest {shown} is malformed: fact {name} {e}"))
        })?;
    }
    Ok(Recorded {
        path: shown,
        values: values.clone(),
    })
}

/// The manifest's `facts` section for recorded values (checked with [`check_value`]).
pub fn section(values: &BTreeMap<String, Value>) -> Value {
    serde_json::json!({
        "format_version": FACTS_FORMAT_VERSION,
        "values": values,
    })
}

fn is_scalar(v: &Value) -> bool {
    !matches!(v, Value::Array(_) | Value::Object(_))
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a map",
    }
}

/// A fact's value must be a scalar, a list of scalars or a map of scalars; the error says
/// what it holds instead ("is a list holding a map at item 2").
pub fn check_value(_name: &str, value: &Value) -> Result<(), String> {
    match value {
        Value::Array(items) => match items.iter().position(|v| !is_scalar(v)) {
            Some(i) => Err(format!(
                "is a list holding {} at item {}; a fact is a scalar, a list of scalars or a map of scalars",
                kind(&items[i]),
                i + 1
            )),
            None => Ok(()),
        },
        Value::Object(map) => match map.iter().find(|(_, v)| !is_scalar(v)) {
            Some((k, v)) => Err(format!(
                "is a map holding {} at key {k}; a fact is a scalar, a list of scalars or a map of scalars",
                kind(v)
            )),
            None => Ok(()),
        },
        _ => Ok(()),
    }
}

/// Validation-time checks of a facts map (`manifest`'s `facts`, `facts.compare`'s
/// `actual`): fact names are not empty, values have one of the three shapes. Templates are
/// judged after rendering.
pub fn check_facts_node(with: &Node, field: &str) -> Vec<Diagnostic> {
    let mut diags = Vec::new();
    let Some(node) = with.get(field) else {
        return diags;
    };
    let Some(entries) = node.as_map() else {
        return diags; // a whole-map template, or a type error decoding already reported
    };
    if entries.is_empty() {
        diags.push(
            Diagnostic::new(Code::StepArgs, format!("`{field}` names no facts"))
                .label(node.span, "an empty map")
                .help(format!(
                    "name at least one fact in `{field}`, e.g. `tables: \"{{{{ steps.count.outputs.rows[0].tables }}}}\"`, or leave `{field}` out"
                )),
        );
    }
    let help = "a fact is a scalar (`version: 7.1`), a list of scalars (`tables: [trades, audit]`) or a map of scalars (`rows: {trades: 120}`)";
    for (key, value) in entries {
        if key.scalar_text().trim().is_empty() {
            diags.push(
                Diagnostic::new(
                    Code::StepArgs,
                    format!("a fact of `{field}` has an empty name"),
                )
                .label(key.span, "an empty name")
                .help("name each fact, e.g. `tables` or `version`"),
            );
        }
        let name = key.scalar_text();
        let inner: &[Node] = match &value.value {
            NodeValue::Seq(items) => items,
            NodeValue::Map(entries) => {
                for (_, v) in entries {
                    if let Some(d) = nested(field, &name, v, "mapping", help) {
                        diags.push(d);
                    }
                }
                continue;
            }
            _ => continue,
        };
        for v in inner {
            if let Some(d) = nested(field, &name, v, "list", help) {
                diags.push(d);
            }
        }
    }
    diags
}

fn nested(field: &str, name: &str, v: &Node, outer: &str, help: &str) -> Option<Diagnostic> {
    matches!(v.value, NodeValue::Seq(_) | NodeValue::Map(_)).then(|| {
        Diagnostic::new(
            Code::StepArgs,
            format!(
                "fact `{name}` of `{field}` holds {} inside a {outer}",
                v.kind_name()
            ),
        )
        .label(v.span, "a scalar is wanted here")
        .help(help)
    })
}

/// One difference between the recorded and the restored facts.
#[derive(Debug)]
struct Difference {
    fact: String,
    key: Option<String>,
    recorded: Option<Value>,
    restored: Option<Value>,
    message: String,
}

impl Difference {
    fn to_json(&self) -> Value {
        serde_json::json!({
            "fact": self.fact,
            "key": self.key,
            "recorded": self.recorded,
            "restored": self.restored,
            "message": self.message,
        })
    }
}

/// A scalar as a person reads it: strings without quotes.
fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// A number, or a string that holds one.
fn number(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse::<f64>().ok(),
        _ => None,
    }
}

/// Scalars equal: same JSON value, or a number and a string of that number.
fn same(a: &Value, b: &Value) -> bool {
    if a == b {
        return true;
    }
    match (a, b) {
        (Value::Number(_), Value::String(_)) | (Value::String(_), Value::Number(_)) => {
            matches!((number(a), number(b)), (Some(x), Some(y)) if x == y)
        }
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        _ => false,
    }
}

/// Whether `restored` satisfies `recorded`: equal, or with `at_least` a number not smaller.
fn satisfies(recorded: &Value, restored: &Value, at_least: bool) -> bool {
    if same(recorded, restored) {
        return true;
    }
    at_least
        && matches!(
            (number(recorded), number(restored)),
            (Some(r), Some(a)) if a >= r
        )
}

/// Compares every fact `actual` reads that the manifest records. Returns the names
/// compared, the names not recorded, and the differences in fact and key order.
fn compare(
    recorded: &Map<String, Value>,
    actual: &BTreeMap<String, Value>,
    at_least: &BTreeSet<&str>,
) -> (Vec<String>, Vec<String>, Vec<Difference>) {
    let mut compared = Vec::new();
    let mut unrecorded = Vec::new();
    let mut diffs = Vec::new();
    for (name, act) in actual {
        let Some(rec) = recorded.get(name) else {
            unrecorded.push(name.clone());
            continue;
        };
        compared.push(name.clone());
        compare_fact(name, rec, act, at_least.contains(name.as_str()), &mut diffs);
    }
    // A recorded fact the restore plan does not read is not a difference of the system:
    // the plan chose not to check it (or is older than the backup).
    (compared, unrecorded, diffs)
}

fn compare_fact(name: &str, rec: &Value, act: &Value, at_least: bool, diffs: &mut Vec<Difference>) {
    let diff =
        |key: Option<&str>, r: Option<&Value>, a: Option<&Value>, message: String| Difference {
            fact: name.to_string(),
            key: key.map(str::to_string),
            recorded: r.cloned(),
            restored: a.cloned(),
            message,
        };
    match (rec, act) {
        (Value::Object(r), Value::Object(a)) => {
            for (key, rv) in r {
                match a.get(key) {
                    None => diffs.push(diff(
                        Some(key),
                        Some(rv),
                        None,
                        format!("{name} {key}: {} recorded, missing after restore", text(rv)),
                    )),
                    Some(av) if !satisfies(rv, av, at_least) => diffs.push(diff(
                        Some(key),
                        Some(rv),
                        Some(av),
                        format!(
                            "{name} {key}: {} recorded, {}{} restored",
                            text(rv),
                            if at_least { "only " } else { "" },
                            text(av)
                        ),
                    )),
                    Some(_) => {}
                }
            }
            if !at_least {
                for (key, av) in a.iter().filter(|(k, _)| !r.contains_key(*k)) {
                    diffs.push(diff(
                        Some(key),
                        None,
                        Some(av),
                        format!("{name} {key}: not recorded, {} after restore", text(av)),
                    ));
                }
            }
        }
        (Value::Array(r), Value::Array(a)) => {
            let has = |list: &[Value], v: &Value| list.iter().any(|x| same(x, v));
            for rv in r {
                if !has(a, rv) {
                    let key = text(rv);
                    diffs.push(diff(
                        Some(&key),
                        Some(rv),
                        None,
                        format!("{name} {key}: recorded, missing after restore"),
                    ));
                }
            }
            if !at_least {
                for av in a {
                    if !has(r, av) {
                        let key = text(av);
                        diffs.push(diff(
                            Some(&key),
                            None,
                            Some(av),
                            format!("{name} {key}: not recorded, present after restore"),
                        ));
                    }
                }
            }
        }
        (r, a) if is_scalar(r) && is_scalar(a) => {
            if !satisfies(r, a, at_least) {
                diffs.push(diff(
                    None,
                    Some(r),
                    Some(a),
                    format!(
                        "{name}: {} recorded, {}{} restored",
                        text(r),
                        if at_least { "only " } else { "" },
                        text(a)
                    ),
                ));
            }
        }
        (r, a) => diffs.push(diff(
            None,
            Some(r),
            Some(a),
            format!(
                "{name}: {} recorded, {} restored (not comparable)",
                kind(r),
                kind(a)
            ),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn run(rec: Value, act: Value, at_least: &[&str]) -> Vec<String> {
        let rec = rec.as_object().cloned().unwrap_or_default();
        let act: BTreeMap<String, Value> = act
            .as_object()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .collect();
        let at: BTreeSet<&str> = at_least.iter().copied().collect();
        compare(&rec, &act, &at)
            .2
            .into_iter()
            .map(|d| d.message)
            .collect()
    }

    #[test]
    fn maps_lists_and_scalars_name_each_difference() {
        let rec = json!({
            "rows": {"trades": 120, "audit": 5, "quotes": 7},
            "tables": ["audit", "quotes", "trades"],
            "version": "16.2",
        });
        let act = json!({
            "rows": {"trades": "0", "quotes": 7, "fresh": 1},
            "tables": ["quotes", "trades", "fresh"],
            "version": "16.3",
        });
        assert_eq!(
            run(rec, act, &[]),
            [
                "rows audit: 5 recorded, missing after restore",
                "rows trades: 120 recorded, 0 restored",
                "rows fresh: not recorded, 1 after restore",
                "tables audit: recorded, missing after restore",
                "tables fresh: not recorded, present after restore",
                "version: 16.2 recorded, 16.3 restored",
            ]
        );
    }

    #[test]
    fn at_least_accepts_growth_and_refuses_loss() {
        let rec = json!({"objects": {"loki": 10, "mimir": 4}, "tables": ["a"]});
        let act = json!({"objects": {"loki": 12, "mimir": 3, "new": 1}, "tables": ["a", "b"]});
        assert_eq!(
            run(rec, act, &["objects", "tables"]),
            ["objects mimir: 4 recorded, only 3 restored"]
        );
    }

    #[test]
    fn numbers_equal_their_text_and_shapes_must_agree() {
        let rec = json!({"n": 120, "m": 1.5, "t": ["a"]});
        let act = json!({"n": "120", "m": 1.5, "t": "a"});
        assert_eq!(
            run(rec, act, &[]),
            ["t: a list recorded, a string restored (not comparable)"]
        );
    }

    #[test]
    fn nested_values_are_refused() {
        assert!(check_value("x", &json!([1, "a", null])).is_ok());
        assert_eq!(
            check_value("x", &json!([1, [2]])).unwrap_err(),
            "is a list holding a list at item 2; a fact is a scalar, a list of scalars or a map of scalars"
        );
        assert!(check_value("x", &json!({"a": {"b": 1}})).is_err());
    }
}
