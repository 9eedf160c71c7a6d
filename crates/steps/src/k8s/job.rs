//! `k8s.job`: run a Job to completion (StackState's restore scripts create a Job, wait for
//! it, show its logs and delete it). The step owns the Job's whole life: it creates it,
//! waits for `Complete` or `Failed`, fetches its logs into the run log and the `logs`
//! output, and deletes it according to `delete`.

use super::{k8s_spec, Connection};
use crate::{Action, OutputDecl, Outputs, StepContext, StepError, StepType, Stream};
use opsplan_plan::diagnostic::{Code, Diagnostic};
use opsplan_plan::source::{FileId, Node};
use schemars::JsonSchema;
use serde::Deserialize;
use std::time::{Duration, Instant};

pub struct Job;

/// When the Job is deleted after it ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum DeletePolicy {
    /// Always, also after a failure or cancel.
    Always,
    /// After success; a failed Job stays for `kubectl describe` (a cancel still deletes it,
    /// so nothing keeps running after the run stopped).
    OnSuccess,
    /// Never; the Job stays.
    Never,
}

/// By hand rather than derived: a policy from a param (`delete: "{{ params.keep }}"`) is
/// still a template when the plan is validated.
impl<'de> Deserialize<'de> for DeletePolicy {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        const NAMES: &[&str] = &["always", "on_success", "never"];
        let s = String::deserialize(d)?;
        match s.as_str() {
            "always" => Ok(DeletePolicy::Always),
            "on_success" => Ok(DeletePolicy::OnSuccess),
            "never" => Ok(DeletePolicy::Never),
            other if super::pending(other) => Ok(DeletePolicy::OnSuccess),
            other => Err(serde::de::Error::unknown_variant(other, NAMES)),
        }
    }
}

k8s_spec! {
    #[derive(Debug, Deserialize, JsonSchema)]
    #[serde(deny_unknown_fields)]
    pub struct JobSpec {
        /// The Job manifest as a mapping (`apiVersion: batch/v1`, `kind: Job`, …) or as YAML
        /// text (e.g. a chart's job template read from a configmap); its strings
        /// are templates like every argument…
        #[serde(default)]
        pub manifest: Option<serde_json::Value>,
        /// …or a YAML/JSON file holding it.
        #[serde(default)]
        pub manifest_file: Option<String>,
        /// How long the Job may run (default `30m`).
        #[serde(default = "default_deadline")]
        pub deadline: String,
        /// Time between status polls (default `2s`).
        #[serde(default = "default_interval")]
        pub interval: String,
        /// When to delete the Job: `always`, `on_success` (default) or `never`.
        #[serde(default = "default_delete")]
        pub delete: DeletePolicy,
        /// How many of the last log lines a failure quotes (default 20).
        #[serde(default = "default_log_lines")]
        pub log_lines: usize,
    }
}

fn default_deadline() -> String {
    "30m".into()
}
fn default_interval() -> String {
    "2s".into()
}
fn default_delete() -> DeletePolicy {
    DeletePolicy::OnSuccess
}
fn default_log_lines() -> usize {
    20
}

impl StepType for Job {
    const NAME: &'static str = "k8s.job";
    const SUMMARY: &'static str = "Create a Job from a manifest, wait for it with a deadline, fetch its logs and delete it (always, on success or never).";
    type Spec = JobSpec;

    fn outputs() -> &'static [OutputDecl] {
        &[
            OutputDecl {
                name: "name",
                description: "the Job's name (also when the manifest used `generateName`)",
            },
            OutputDecl {
                name: "logs",
                description: "the Job's logs (`kubectl logs job/<name>`)",
            },
            OutputDecl {
                name: "waited_seconds",
                description: "time from creation to completion",
            },
        ]
    }

    fn check(spec: &JobSpec, with: &Node) -> Vec<Diagnostic> {
        let mut diags = Vec::new();
        if spec.manifest.is_some() == spec.manifest_file.is_some() {
            diags.push(
                Diagnostic::new(
                    Code::StepArgs,
                    "`k8s.job` needs exactly one of `manifest` and `manifest_file`",
                )
                .label(with.span, "which Job?")
                .help("give the Job inline (`manifest: {apiVersion: batch/v1, kind: Job, …}`) or `manifest_file: restore-job.yaml`"),
            );
        }
        if let Some(m) = with.get("manifest") {
            if m.as_map().is_none() && m.as_str().is_none() {
                diags.push(super::arg_error_at(
                    m.span,
                    "`manifest` is not a mapping",
                    "expected the Job as a mapping or YAML text",
                    "write the Job manifest inline, or use `manifest_file:` for a file",
                ));
            }
            if let Some(text) = m.as_str().filter(|t| !super::pending(t)) {
                if let Err(e) = Node::parse(FileId(0), text) {
                    diags.push(super::arg_error_at(
                        m.span,
                        &format!("`manifest` text is not valid YAML: {}", e.message),
                        "not YAML",
                        "write the Job manifest as a mapping, or give YAML text",
                    ));
                }
            }
            if let Some(kind) = m.get("kind") {
                if kind
                    .as_str()
                    .is_some_and(|k| k != "Job" && !super::pending(k))
                {
                    diags.push(super::arg_error_at(
                        kind.span,
                        "`k8s.job` runs a `kind: Job`",
                        "not a Job",
                        "other objects are applied with the `kubectl` step (`args: [apply, -f, -]`)",
                    ));
                }
            } else if m.as_map().is_some() {
                diags.push(super::arg_error_at(
                    m.span,
                    "the manifest has no `kind`",
                    "no `kind: Job`",
                    "add `apiVersion: batch/v1` and `kind: Job`",
                ));
            }
            if m.as_map().is_some()
                && m.at_path("metadata.name").is_none()
                && m.at_path("metadata.generateName").is_none()
            {
                diags.push(super::arg_error_at(
                    m.span,
                    "the Job has no `metadata.name` or `metadata.generateName`",
                    "unnamed Job",
                    "add `metadata: {generateName: restore-}` for a fresh name per run",
                ));
            }
        }
        for field in ["deadline", "interval"] {
            if let Some(d) = opsplan_plan::fields::check_duration_field(with, field) {
                diags.push(d);
            }
        }
        diags
    }

    fn describe(spec: &JobSpec) -> Action {
        let conn = spec.connection();
        let job = match (&spec.manifest, &spec.manifest_file) {
            (Some(m), _) => {
                let name = m
                    .pointer("/metadata/name")
                    .and_then(|v| v.as_str())
                    .map(str::to_string)
                    .or_else(|| {
                        m.pointer("/metadata/generateName")
                            .and_then(|v| v.as_str())
                            .map(|g| format!("{g}*"))
                    })
                    .unwrap_or_default();
                format!("job {name}")
            }
            (None, Some(f)) => format!("the job in {f}"),
            (None, None) => "a job".into(),
        };
        let delete = match spec.delete {
            DeletePolicy::Always => "delete it",
            DeletePolicy::OnSuccess => "delete it if it succeeded",
            DeletePolicy::Never => "keep it",
        };
        Action::new(format!(
            "create {job} in {} (kubectl create -f -), wait for it (at most {}), fetch its logs, {delete}",
            conn.place(),
            spec.deadline
        ))
    }

    async fn run(spec: JobSpec, ctx: StepContext) -> Result<Outputs, StepError> {
        let conn = spec.connection();
        let deadline = super::duration("deadline", &spec.deadline)?;
        let interval = super::duration("interval", &spec.interval)?;
        let manifest = load_manifest(&spec)?;
        let text = serde_json::to_string(&manifest)
            .map_err(|e| StepError::fatal(format!("cannot encode the Job manifest: {e}")))?;

        let create = ["create", "-f", "-", "-o", "json"].map(String::from);
        let created = conn.ok(&ctx, &create, Some(text), false).await?;
        let name = serde_json::from_str::<serde_json::Value>(&created.stdout)
            .ok()
            .and_then(|v| v.pointer("/metadata/name")?.as_str().map(str::to_string))
            .ok_or_else(|| {
                StepError::fatal(format!(
                    "`kubectl create` did not print the created Job: {}",
                    super::tail_lines(&created.stdout, 3)
                ))
            })?;
        (ctx.log)(Stream::Stdout, &format!("job.batch/{name} created"));
        let started = Instant::now();

        let outcome = watch(&conn, &ctx, &name, deadline, interval).await;
        // Logs are fetched whatever the outcome (not after a cancel: the run is stopping).
        let logs = match &outcome {
            Err(e) if e.message == "cancelled" => String::new(),
            _ => logs(&conn, &ctx, &name).await,
        };
        let succeeded = matches!(outcome, Ok(Ended::Complete));
        let delete = match spec.delete {
            DeletePolicy::Always => true,
            DeletePolicy::OnSuccess => {
                succeeded || matches!(&outcome, Err(e) if e.message == "cancelled")
            }
            DeletePolicy::Never => false,
        };
        let deleted = if delete {
            Some(delete_job(&conn, &ctx, &name).await)
        } else {
            None
        };
        let after = match &deleted {
            Some(Ok(())) => "; the job was deleted".to_string(),
            Some(Err(e)) => format!("; deleting the job failed: {e}"),
            None => format!(
                "; the job was kept: kubectl{} describe job {name}",
                conn.namespace
                    .as_ref()
                    .map(|n| format!(" -n {n}"))
                    .unwrap_or_default()
            ),
        };
        let quoted = || {
            let tail = super::tail_lines(&logs, spec.log_lines);
            if tail.is_empty() {
                "; it printed no logs".to_string()
            } else {
                format!("; last log lines:\n{tail}")
            }
        };
        match outcome {
            Ok(Ended::Complete) => {
                if let Some(Err(e)) = deleted {
                    return Err(StepError::new(format!(
                        "job {name} succeeded, but deleting it failed: {e}"
                    )));
                }
                let mut out = Outputs::new();
                out.insert("name".into(), name.into());
                out.insert("logs".into(), logs.trim_end_matches('\n').into());
                out.insert("waited_seconds".into(), started.elapsed().as_secs().into());
                Ok(out)
            }
            Ok(Ended::Failed(why)) => Err(StepError::new(format!(
                "job {name} failed in {} ({why}){after}{}",
                conn.place(),
                quoted()
            ))),
            Err(e) if e.message == "cancelled" => Err(StepError {
                message: format!("cancelled{after}"),
                retryable: false,
                outputs: None,
                answer: None,
            }),
            Err(e) => Err(StepError {
                message: format!("{}{after}{}", e.message, quoted()),
                retryable: e.retryable,
                outputs: None,
                answer: None,
            }),
        }
    }
}

fn load_manifest(spec: &JobSpec) -> Result<serde_json::Value, StepError> {
    let manifest = match (&spec.manifest, &spec.manifest_file) {
        // Text, as charts ship their job templates in configmaps (StackState's restore jobs).
        (Some(serde_json::Value::String(text)), _) => Node::parse(FileId(0), text)
            .map_err(|e| {
                StepError::fatal(format!(
                    "the Job manifest text is not valid YAML: {}",
                    e.message
                ))
            })?
            .to_json(),
        (Some(m), _) => m.clone(),
        (None, Some(path)) => {
            let text = std::fs::read_to_string(path).map_err(|e| {
                StepError::fatal(format!("cannot read the Job manifest {path}: {e}"))
            })?;
            Node::parse(FileId(0), &text)
                .map_err(|e| {
                    StepError::fatal(format!(
                        "the Job manifest {path} is not valid YAML: {}",
                        e.message
                    ))
                })?
                .to_json()
        }
        (None, None) => {
            return Err(StepError::fatal(
                "`k8s.job` needs `manifest` or `manifest_file`",
            ))
        }
    };
    match manifest.get("kind").and_then(|k| k.as_str()) {
        Some("Job") => Ok(manifest),
        other => Err(StepError::fatal(format!(
            "the manifest is a {}, not a Job",
            other.unwrap_or("document without `kind`")
        ))),
    }
}

enum Ended {
    Complete,
    Failed(String),
}

/// Polls the Job until a `Complete` or `Failed` condition is true.
async fn watch(
    conn: &Connection,
    ctx: &StepContext,
    name: &str,
    deadline: Duration,
    interval: Duration,
) -> Result<Ended, StepError> {
    let started = Instant::now();
    let args = ["get".to_string(), "job".to_string(), name.to_string()];
    loop {
        let job = conn.get_json(ctx, &args).await?;
        let conditions = job
            .pointer("/status/conditions")
            .and_then(|v| v.as_array())
            .cloned()
            .unwrap_or_default();
        for c in &conditions {
            let is_true = c.get("status").and_then(|v| v.as_str()) == Some("True");
            match c.get("type").and_then(|v| v.as_str()) {
                Some("Complete") if is_true => return Ok(Ended::Complete),
                Some("Failed") if is_true => {
                    let field = |k: &str| c.get(k).and_then(|v| v.as_str()).unwrap_or("");
                    let why = match (field("reason"), field("message")) {
                        ("", "") => "condition Failed".to_string(),
                        (r, "") => r.to_string(),
                        ("", m) => m.to_string(),
                        (r, m) => format!("{r}: {m}"),
                    };
                    return Ok(Ended::Failed(why));
                }
                _ => {}
            }
        }
        if started.elapsed() + interval > deadline {
            let active = job
                .pointer("/status/active")
                .and_then(serde_json::Value::as_u64)
                .unwrap_or(0);
            return Err(StepError::fatal(format!(
                "job {name} did not finish within {} in {} ({active} pods active)",
                humantime::format_duration(deadline),
                conn.place()
            )));
        }
        super::pause(ctx, interval).await?;
    }
}

/// The Job's logs, streamed into the run log; a failure to fetch them is reported in place.
async fn logs(conn: &Connection, ctx: &StepContext, name: &str) -> String {
    let args = ["logs".to_string(), format!("job/{name}")];
    match conn.run(ctx, &args, None, true).await {
        Ok(r) if r.exit_code == 0 => r.stdout,
        Ok(r) => format!(
            "(logs unavailable: {})\n",
            conn.failure(ctx, &args, &r).message
        ),
        Err(e) => format!("(logs unavailable: {})\n", e.message),
    }
}

async fn delete_job(conn: &Connection, ctx: &StepContext, name: &str) -> Result<(), StepError> {
    let ctx = super::uncancelled(ctx);
    let args = ["delete", "job", name].map(String::from);
    conn.ok(&ctx, &args, None, true).await.map(|_| ())
}
