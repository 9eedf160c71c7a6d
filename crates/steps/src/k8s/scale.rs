//! `k8s.scale`: scale deployments and statefulsets to a count, or back to counts recorded by
//! an earlier scale (dop PostgreSQL restore: stop backend and alertgate, restore, start them
//! again with the counts they had; StackState: stop the `*2es` deployments around an
//! Elasticsearch restore). The counts found before scaling are the `previous` output, so the
//! step that releases the workloads restores exactly what was there, not a guess.
//! A scale-down with `wait` counts as done only when the workloads' pods are gone too
//! (`wait_for_pods`): Deployment and StatefulSet status stop counting a pod as soon as it is
//! Terminating, while it may still hold connections and volumes.

use super::{k8s_spec, Connection};
use crate::{Action, OutputDecl, Outputs, StepContext, StepError, StepType};
use opsplan_plan::diagnostic::{Code, Diagnostic};
use opsplan_plan::source::{Node, NodeValue};
use schemars::JsonSchema;
use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::time::Instant;

pub struct Scale;

k8s_spec! {
    #[derive(Debug, Deserialize, JsonSchema)]
    #[serde(deny_unknown_fields)]
    pub struct ScaleSpec {
        /// Workloads as `kind/name` (`deployment/backend`, `statefulset/db`, also `deploy/`,
        /// `sts/`). A name with `*`, `?` or `[...]` is a glob matched against the workloads of
        /// that kind in the namespace (`deployment/*2es`), since runbooks name groups that way.
        #[serde(default)]
        pub resources: Vec<String>,
        /// Label selector choosing deployments and statefulsets as well
        /// (`app in (backend, alertgate-api)`).
        #[serde(default)]
        pub selector: Option<String>,
        /// The replica count to set on every selected workload.
        #[serde(default)]
        pub replicas: Option<u32>,
        /// Counts to put back, by `kind/name`: usually
        /// `"{{ steps.<scale-down>.outputs.previous }}"`. Instead of `replicas`, `resources`
        /// and `selector`.
        #[serde(default)]
        pub restore: Option<Counts>,
        /// Wait until every workload reports the new count as its observed and ready
        /// replicas (and, on a scale-down, until its pods are gone: `wait_for_pods`), so the
        /// next step does not race pods that are still stopping.
        #[serde(default = "yes")]
        pub wait: bool,
        /// With `wait`, a scale-down also waits until the pods of each workload (those its
        /// `spec.selector` matches, Terminating ones included) are no more than the new count
        /// (default: yes). A Deployment or StatefulSet stops counting a pod in its status as
        /// soon as the pod is Terminating, while the pod may still run, hold connections and
        /// keep its volume attached; runbooks wait for this ("allowing pods to terminate").
        #[serde(default = "yes")]
        pub wait_for_pods: bool,
        /// How long `wait` may take (default `5m`).
        #[serde(default = "default_deadline")]
        pub deadline: String,
        /// Time between status polls while waiting (default `2s`).
        #[serde(default = "default_interval")]
        pub interval: String,
        /// Whether a failed step (a refused scale, the wait deadline, a cancel) first puts the
        /// workloads it changed back to their previous counts. Default: yes with `replicas`
        /// (a half-done scale-down is undone), no with `restore` (a slow scale-up is not
        /// turned into a scale-down).
        #[serde(default)]
        pub revert_on_failure: Option<bool>,
        /// Succeed when a glob or selector matches no workload (default: an error, so a
        /// typo in a selector cannot leave the real workloads running).
        #[serde(default)]
        pub allow_empty: bool,
    }
}

fn yes() -> bool {
    true
}
fn default_deadline() -> String {
    "5m".into()
}
fn default_interval() -> String {
    "2s".into()
}

/// Replica counts by `kind/name`; at validation and in preview, the template or placeholder
/// that will produce them.
#[derive(Debug, Clone, PartialEq)]
pub enum Counts {
    Known(BTreeMap<String, u32>),
    Pending(String),
}

impl<'de> Deserialize<'de> for Counts {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Counts;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a mapping of `kind/name` to a replica count")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Counts, E> {
                Ok(Counts::Pending(s.to_string()))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Counts, A::Error> {
                let mut out = BTreeMap::new();
                while let Some((k, v)) = map.next_entry::<String, u32>()? {
                    out.insert(k, v);
                }
                Ok(Counts::Known(out))
            }
        }
        d.deserialize_any(V)
    }
}

impl JsonSchema for Counts {
    fn inline_schema() -> bool {
        true
    }
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "ReplicaCounts".into()
    }
    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        <BTreeMap<String, u32>>::json_schema(generator)
    }
}

/// A workload to scale.
#[derive(Debug, Clone)]
struct Target {
    kind: &'static str,
    name: String,
}

impl Target {
    fn key(&self) -> String {
        format!("{}/{}", self.kind, self.name)
    }
}

impl ScaleSpec {
    fn revert(&self) -> bool {
        self.revert_on_failure.unwrap_or(self.restore.is_none())
    }
}

impl StepType for Scale {
    const NAME: &'static str = "k8s.scale";
    const SUMMARY: &'static str = "Scale deployments/statefulsets (by name, glob or label selector) to a count or back to recorded counts, recording the previous counts.";
    type Spec = ScaleSpec;

    fn outputs() -> &'static [OutputDecl] {
        &[
            OutputDecl {
                name: "previous",
                description:
                    "replica counts found before scaling, by `kind/name` (give it to `restore`)",
            },
            OutputDecl {
                name: "replicas",
                description: "replica counts set, by `kind/name`",
            },
            OutputDecl {
                name: "resources",
                description: "the workloads scaled, as `kind/name`",
            },
        ]
    }

    /// A scale-down that fails halfway records what it changed, so its release restores
    /// exactly that (see `scale_outputs` on the error path of `run`).
    fn outputs_on_failure() -> &'static [&'static str] {
        &["previous", "replicas", "resources"]
    }

    fn check(spec: &ScaleSpec, with: &Node) -> Vec<Diagnostic> {
        let mut diags = Vec::new();
        match (&spec.replicas, &spec.restore) {
            (Some(_), Some(_)) | (None, None) => diags.push(
                Diagnostic::new(Code::StepArgs, "`k8s.scale` needs exactly one of `replicas` and `restore`")
                    .label(with.span, "scale to what?")
                    .help("e.g. `replicas: 0`, or `restore: \"{{ steps.scale_down.outputs.previous }}\"` to put back recorded counts"),
            ),
            _ => {}
        }
        if spec.restore.is_some() {
            for field in ["resources", "selector"] {
                if with.get(field).is_some() {
                    diags.push(super::arg_error(
                        with,
                        field,
                        &format!("`{field}` with `restore`"),
                        "not used with `restore`",
                        "`restore` names the workloads itself (its keys); remove this field",
                    ));
                }
            }
        } else if spec.replicas.is_some()
            && spec.resources.is_empty()
            && !crate::templated(with, "resources")
            && spec.selector.is_none()
        {
            diags.push(
                Diagnostic::new(Code::StepArgs, "`k8s.scale` selects no workload")
                    .label(with.span, "which workloads?")
                    .help("add `resources: [deployment/name]` and/or `selector: app=name`"),
            );
        }
        if let Some(NodeValue::Seq(items)) = with.get("resources").map(|n| &n.value) {
            for item in items {
                if let Some(text) = item.as_str() {
                    if let Some(d) = check_ref(text, item.span) {
                        diags.push(d);
                    }
                }
            }
        }
        if let Some(sel) = &spec.selector {
            if sel.trim().is_empty() {
                diags.push(super::arg_error(
                    with,
                    "selector",
                    "`selector` is empty",
                    "selects nothing",
                    "write a label selector such as `app=backend` or `app in (a, b)`",
                ));
            }
        }
        if let Some(restore) = with.get("restore") {
            match &restore.value {
                NodeValue::Map(entries) => {
                    for (k, _) in entries {
                        if let Some(text) = k.as_str() {
                            if let Some(d) = check_ref(text, k.span) {
                                diags.push(d);
                            } else if super::is_glob(text) {
                                diags.push(super::arg_error_at(
                                    k.span,
                                    &format!("glob `{text}` in `restore`"),
                                    "a recorded count names one workload",
                                    "write the workload's full name, e.g. `deployment/backend: 2`",
                                ));
                            }
                        }
                    }
                }
                NodeValue::Str(s) if !super::pending(s) => diags.push(super::arg_error_at(
                    restore.span,
                    "`restore` is a string",
                    "not a mapping",
                    "give a mapping such as `{deployment/backend: 2}` or the `previous` output of a scale step as one whole template",
                )),
                _ => {}
            }
        }
        for field in ["deadline", "interval"] {
            if let Some(d) = opsplan_plan::fields::check_duration_field(with, field) {
                diags.push(d);
            }
        }
        diags
    }

    fn describe(spec: &ScaleSpec) -> Action {
        let conn = spec.connection();
        let mut s = match (&spec.restore, spec.replicas) {
            (Some(Counts::Known(counts)), _) => format!(
                "in {}, scale back to the recorded counts: {}",
                conn.place(),
                counts
                    .iter()
                    .map(|(k, n)| format!("{k} to {n}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            (Some(Counts::Pending(text)), _) => format!(
                "in {}, scale back to the recorded counts {text}",
                conn.place()
            ),
            (None, replicas) => {
                let mut what: Vec<String> = spec.resources.clone();
                if let Some(sel) = &spec.selector {
                    what.push(format!("deployments/statefulsets with labels `{sel}`"));
                }
                format!(
                    "in {}, scale {} to {} replicas (recording the current counts)",
                    conn.place(),
                    what.join(", "),
                    replicas.unwrap_or_default()
                )
            }
        };
        if spec.wait {
            s.push_str(&format!("; wait until settled (at most {})", spec.deadline));
            if spec.wait_for_pods && spec.restore.is_none() {
                s.push_str(", and on a scale-down until the pods are gone");
            }
        }
        if spec.revert() {
            s.push_str("; on failure put back the previous counts");
        }
        Action::new(s)
    }

    async fn run(spec: ScaleSpec, ctx: StepContext) -> Result<Outputs, StepError> {
        let conn = spec.connection();
        let deadline = super::duration("deadline", &spec.deadline)?;
        let interval = super::duration("interval", &spec.interval)?;

        // Desired count per workload, and the count each has now.
        let (desired, previous) = match &spec.restore {
            Some(Counts::Pending(text)) => {
                return Err(StepError::fatal(format!(
                    "`restore` is the string {text:?}, not a mapping of `kind/name` to a count"
                )))
            }
            Some(Counts::Known(counts)) => {
                let mut desired = BTreeMap::new();
                let mut previous = BTreeMap::new();
                for (key, n) in counts {
                    let target = parse_ref(key)?;
                    let current = replicas_of(&get(&conn, &ctx, &target).await?);
                    previous.insert(target.key(), current);
                    desired.insert(target.key(), (target, *n));
                }
                (desired, previous)
            }
            None => {
                let n = spec.replicas.unwrap_or_default();
                let found = select(&spec, &conn, &ctx).await?;
                let mut desired = BTreeMap::new();
                let mut previous = BTreeMap::new();
                for (target, current) in found {
                    previous.insert(target.key(), current);
                    desired.insert(target.key(), (target, n));
                }
                (desired, previous)
            }
        };

        // Scale, remembering what changed so a failure can put it back.
        let mut changed: Vec<(Target, u32)> = Vec::new();
        let mut result = Ok(());
        for (key, (target, n)) in &desired {
            let current = previous.get(key).copied().unwrap_or_default();
            if current == *n {
                continue;
            }
            let args = vec![
                "scale".to_string(),
                target.key(),
                format!("--replicas={n}"),
                format!("--current-replicas={current}"),
            ];
            match conn.ok(&ctx, &args, None, true).await {
                Ok(_) => changed.push((target.clone(), current)),
                Err(e) => {
                    result = Err(e);
                    break;
                }
            }
        }
        if result.is_ok() && spec.wait {
            let shrinking: BTreeMap<String, u32> = if spec.wait_for_pods {
                desired
                    .iter()
                    .filter(|(k, (_, n))| previous.get(*k).is_some_and(|p| *p > *n))
                    .map(|(k, (_, n))| (k.clone(), *n))
                    .collect()
            } else {
                BTreeMap::new()
            };
            result = settle(&conn, &ctx, &desired, &shrinking, deadline, interval).await;
        }
        if let Err(e) = result {
            // `previous` then lists only the workloads still changed, so a cleanup that
            // restores it puts back exactly what this step left behind.
            let (e, left) = if spec.revert() && !changed.is_empty() {
                revert(&conn, &ctx, &changed, e).await
            } else {
                (e, changed)
            };
            let left: BTreeMap<String, u32> = left.iter().map(|(t, n)| (t.key(), *n)).collect();
            return Err(e.with_outputs(scale_outputs(&left, &desired)));
        }

        Ok(scale_outputs(&previous, &desired))
    }
}

/// `previous` (the counts to restore), `replicas` (the counts asked for), `resources`.
fn scale_outputs(
    previous: &BTreeMap<String, u32>,
    desired: &BTreeMap<String, (Target, u32)>,
) -> Outputs {
    let mut out = Outputs::new();
    out.insert("previous".into(), counts_json(previous));
    out.insert(
        "replicas".into(),
        counts_json(&desired.iter().map(|(k, (_, n))| (k.clone(), *n)).collect()),
    );
    out.insert(
        "resources".into(),
        desired.keys().cloned().collect::<Vec<_>>().into(),
    );
    out
}

fn check_ref(text: &str, span: opsplan_plan::source::Span) -> Option<Diagnostic> {
    if super::pending(text) {
        return None;
    }
    let Some((kind, name)) = super::split_ref(text) else {
        return Some(super::arg_error_at(
            span,
            &format!("`{text}` is not `kind/name`"),
            "expected kind/name",
            "write e.g. `deployment/backend` or `statefulset/db`",
        ));
    };
    if super::scalable_kind(kind).is_none() {
        return Some(super::arg_error_at(
            span,
            &format!("`k8s.scale` cannot scale a `{kind}`"),
            "not a deployment or statefulset",
            "`k8s.scale` handles `deployment/…` and `statefulset/…` (also `deploy/`, `sts/`)",
        ));
    }
    if super::is_glob(name) {
        if let Err(e) = globset::Glob::new(name) {
            return Some(
                Diagnostic::new(
                    Code::BadGlob,
                    format!("bad glob `{name}` in `{text}`: {}", e.kind()),
                )
                .label(span, "invalid pattern")
                .help("globs use *, ? and [abc]; close every bracket"),
            );
        }
    }
    None
}

fn parse_ref(text: &str) -> Result<Target, StepError> {
    super::split_ref(text)
        .and_then(|(kind, name)| {
            Some(Target {
                kind: super::scalable_kind(kind)?,
                name: name.to_string(),
            })
        })
        .ok_or_else(|| {
            StepError::fatal(format!(
                "`{text}` is not a deployment or statefulset as `kind/name`"
            ))
        })
}

async fn get(
    conn: &Connection,
    ctx: &StepContext,
    target: &Target,
) -> Result<serde_json::Value, StepError> {
    conn.get_json(ctx, &["get".to_string(), target.key()]).await
}

/// `spec.replicas`; the API server defaults an absent one to 1.
fn replicas_of(obj: &serde_json::Value) -> u32 {
    obj.pointer("/spec/replicas")
        .and_then(serde_json::Value::as_u64)
        .map_or(1, |n| n.min(u32::MAX as u64) as u32)
}

/// The workloads named, matched by glob or chosen by the selector, with their current counts.
async fn select(
    spec: &ScaleSpec,
    conn: &Connection,
    ctx: &StepContext,
) -> Result<Vec<(Target, u32)>, StepError> {
    let mut found: BTreeMap<String, (Target, u32)> = BTreeMap::new();
    let mut lists: BTreeMap<&'static str, Vec<serde_json::Value>> = BTreeMap::new();
    for text in &spec.resources {
        let target = parse_ref(text)?;
        if !super::is_glob(&target.name) {
            let current = replicas_of(&get(conn, ctx, &target).await?);
            found.insert(target.key(), (target, current));
            continue;
        }
        let matcher = globset::Glob::new(&target.name)
            .map_err(|e| StepError::fatal(format!("bad glob `{text}`: {e}")))?
            .compile_matcher();
        if !lists.contains_key(target.kind) {
            let list = conn
                .get_json(ctx, &["get".to_string(), format!("{}s", target.kind)])
                .await?;
            lists.insert(target.kind, items(&list));
        }
        let mut matched = 0;
        for item in lists.get(target.kind).into_iter().flatten() {
            let Some(name) = item.pointer("/metadata/name").and_then(|v| v.as_str()) else {
                continue;
            };
            if matcher.is_match(name) {
                matched += 1;
                let t = Target {
                    kind: target.kind,
                    name: name.to_string(),
                };
                found.insert(t.key(), (t, replicas_of(item)));
            }
        }
        if matched == 0 && !spec.allow_empty {
            return Err(StepError::fatal(format!(
                "no {} matches `{}` in {}",
                target.kind,
                target.name,
                conn.place()
            )));
        }
    }
    if let Some(sel) = &spec.selector {
        let list = conn
            .get_json(
                ctx,
                &[
                    "get".to_string(),
                    "deployments,statefulsets".to_string(),
                    "-l".to_string(),
                    sel.clone(),
                ],
            )
            .await?;
        let items = items(&list);
        if items.is_empty() && !spec.allow_empty {
            return Err(StepError::fatal(format!(
                "no deployment or statefulset has labels `{sel}` in {}",
                conn.place()
            )));
        }
        for item in items {
            let kind = item
                .get("kind")
                .and_then(|v| v.as_str())
                .and_then(super::scalable_kind);
            let name = item.pointer("/metadata/name").and_then(|v| v.as_str());
            if let (Some(kind), Some(name)) = (kind, name) {
                let t = Target {
                    kind,
                    name: name.to_string(),
                };
                found.insert(t.key(), (t, replicas_of(&item)));
            }
        }
    }
    Ok(found.into_values().collect())
}

fn items(list: &serde_json::Value) -> Vec<serde_json::Value> {
    list.get("items")
        .and_then(|v| v.as_array())
        .cloned()
        .unwrap_or_default()
}

/// Why a workload has not settled at `want`, or None when it has.
fn unsettled(obj: &serde_json::Value, want: u32) -> Option<String> {
    let num = |p: &str| {
        obj.pointer(p)
            .and_then(serde_json::Value::as_u64)
            .unwrap_or(0)
    };
    let generation = num("/metadata/generation");
    let observed = num("/status/observedGeneration");
    if observed < generation {
        return Some("the controller has not seen the change yet".into());
    }
    let (have, ready) = (num("/status/replicas"), num("/status/readyReplicas"));
    if have == want as u64 && ready == want as u64 {
        None
    } else {
        Some(format!("{have} replicas, {ready} ready (want {want})"))
    }
}

/// The workload's `spec.selector` as a `-l` argument, or None when it has none to use.
fn pod_selector(obj: &serde_json::Value) -> Option<String> {
    let mut parts: Vec<String> = Vec::new();
    if let Some(labels) = obj
        .pointer("/spec/selector/matchLabels")
        .and_then(|v| v.as_object())
    {
        for (k, v) in labels {
            parts.push(format!("{k}={}", v.as_str().unwrap_or_default()));
        }
    }
    for expr in obj
        .pointer("/spec/selector/matchExpressions")
        .and_then(|v| v.as_array())
        .into_iter()
        .flatten()
    {
        let key = expr.get("key").and_then(|v| v.as_str())?;
        let values: Vec<&str> = expr
            .get("values")
            .and_then(|v| v.as_array())
            .map(|a| a.iter().filter_map(|x| x.as_str()).collect())
            .unwrap_or_default();
        match expr.get("operator").and_then(|v| v.as_str())? {
            "In" => parts.push(format!("{key} in ({})", values.join(","))),
            "NotIn" => parts.push(format!("{key} notin ({})", values.join(","))),
            "Exists" => parts.push(key.to_string()),
            "DoesNotExist" => parts.push(format!("!{key}")),
            _ => return None,
        }
    }
    (!parts.is_empty()).then(|| parts.join(","))
}

/// Why the pods of a scaled-down workload are not gone yet, or None when at most `want` remain.
async fn pods_left(
    conn: &Connection,
    ctx: &StepContext,
    obj: &serde_json::Value,
    want: u32,
) -> Result<Option<String>, StepError> {
    let Some(selector) = pod_selector(obj) else {
        return Ok(None);
    };
    let list = conn
        .get_json(
            ctx,
            &[
                "get".to_string(),
                "pods".to_string(),
                "-l".to_string(),
                selector,
            ],
        )
        .await?;
    let pods = items(&list);
    if pods.len() <= want as usize {
        return Ok(None);
    }
    let terminating: Vec<&str> = pods
        .iter()
        .filter(|p| p.pointer("/metadata/deletionTimestamp").is_some())
        .filter_map(|p| p.pointer("/metadata/name").and_then(|v| v.as_str()))
        .collect();
    Ok(Some(format!(
        "{} pods left (want {want}){}",
        pods.len(),
        if terminating.is_empty() {
            String::new()
        } else {
            format!(", terminating: {}", terminating.join(", "))
        }
    )))
}

async fn settle(
    conn: &Connection,
    ctx: &StepContext,
    desired: &BTreeMap<String, (Target, u32)>,
    shrinking: &BTreeMap<String, u32>,
    deadline: std::time::Duration,
    interval: std::time::Duration,
) -> Result<(), StepError> {
    let started = Instant::now();
    loop {
        let mut waiting = Vec::new();
        for (target, n) in desired.values() {
            let obj = get(conn, ctx, target).await?;
            if let Some(why) = unsettled(&obj, *n) {
                waiting.push(format!("{}: {why}", target.key()));
            } else if shrinking.contains_key(&target.key()) {
                if let Some(why) = pods_left(conn, ctx, &obj, *n).await? {
                    waiting.push(format!("{}: {why}", target.key()));
                }
            }
        }
        if waiting.is_empty() {
            return Ok(());
        }
        if started.elapsed() + interval > deadline {
            return Err(StepError::fatal(format!(
                "replicas did not settle within {} in {}: {}",
                humantime::format_duration(deadline),
                conn.place(),
                waiting.join("; ")
            )));
        }
        super::pause(ctx, interval).await?;
    }
}

/// Puts changed workloads back (even when cancelled) and says so in the error; returns the
/// workloads that could not be put back, with their original counts.
async fn revert(
    conn: &Connection,
    ctx: &StepContext,
    changed: &[(Target, u32)],
    cause: StepError,
) -> (StepError, Vec<(Target, u32)>) {
    let ctx = super::uncancelled(ctx);
    let mut back = Vec::new();
    let mut failed = Vec::new();
    let mut left = Vec::new();
    for (target, n) in changed.iter().rev() {
        let args = vec!["scale".to_string(), target.key(), format!("--replicas={n}")];
        match conn.ok(&ctx, &args, None, true).await {
            Ok(_) => back.push(format!("{} to {n}", target.key())),
            Err(e) => {
                failed.push(format!("{} to {n} ({e})", target.key()));
                left.push((target.clone(), *n));
            }
        }
    }
    let mut message = cause.message;
    if !back.is_empty() {
        message.push_str(&format!("; put back {}", back.join(", ")));
    }
    if !failed.is_empty() {
        message.push_str(&format!("; COULD NOT put back {}", failed.join(", ")));
    }
    (StepError::new(message).retryable(cause.retryable), left)
}

fn counts_json(counts: &BTreeMap<String, u32>) -> serde_json::Value {
    serde_json::Value::Object(
        counts
            .iter()
            .map(|(k, n)| (k.clone(), (*n).into()))
            .collect(),
    )
}
