//! `k8s.wait`: wait for a rollout to finish (`kubectl rollout status`) or for a condition
//! (`kubectl wait --for=condition=…`), with a deadline: "verify that all components are
//! running" after a restore, as a check that fails rather than a line to eyeball.

use super::k8s_spec;
use crate::{Action, OutputDecl, Outputs, StepContext, StepError, StepType};
use opsplan_plan::diagnostic::Diagnostic;
use opsplan_plan::source::Node;
use schemars::JsonSchema;
use serde::Deserialize;
use std::time::Instant;

pub struct K8sWait;

k8s_spec! {
    #[derive(Debug, Deserialize, JsonSchema)]
    #[serde(deny_unknown_fields)]
    pub struct K8sWaitSpec {
        /// What to wait for: `kind/name` (`deployment/backend`, `job/restore`), or with
        /// `selector` a kind (`pods`).
        pub resource: String,
        /// Label selector, with a `condition`: every matching object must meet it.
        #[serde(default)]
        pub selector: Option<String>,
        /// A condition such as `Available`, `Ready` or `Complete`
        /// (`kubectl wait --for=condition=…`). Without it: the rollout of a deployment,
        /// statefulset or daemonset (`kubectl rollout status`).
        #[serde(default)]
        pub condition: Option<String>,
        /// Give up after this long (default `5m`).
        #[serde(default = "default_deadline")]
        pub deadline: String,
    }
}

fn default_deadline() -> String {
    "5m".into()
}

const ROLLOUT_KINDS: &[&str] = &[
    "deployment",
    "deployments",
    "deploy",
    "statefulset",
    "statefulsets",
    "sts",
    "daemonset",
    "daemonsets",
    "ds",
];

impl K8sWaitSpec {
    fn args(&self) -> Vec<String> {
        let timeout = super::duration("deadline", &self.deadline)
            .map(super::timeout_arg)
            .unwrap_or_else(|_| format!("--timeout={}", self.deadline));
        match &self.condition {
            Some(c) => {
                let mut args = vec![
                    "wait".to_string(),
                    format!("--for=condition={c}"),
                    self.resource.clone(),
                ];
                if let Some(sel) = &self.selector {
                    args.extend(["-l".to_string(), sel.clone()]);
                }
                args.push(timeout);
                args
            }
            None => vec![
                "rollout".to_string(),
                "status".to_string(),
                self.resource.clone(),
                timeout,
            ],
        }
    }
}

impl StepType for K8sWait {
    const NAME: &'static str = "k8s.wait";
    const SUMMARY: &'static str =
        "Wait for a rollout (kubectl rollout status) or a condition (kubectl wait), with a deadline.";
    type Spec = K8sWaitSpec;

    fn outputs() -> &'static [OutputDecl] {
        &[
            OutputDecl {
                name: "message",
                description: "what kubectl printed when the wait ended",
            },
            OutputDecl {
                name: "waited_seconds",
                description: "time until the rollout or condition was done",
            },
        ]
    }
    fn check(spec: &K8sWaitSpec, with: &Node) -> Vec<Diagnostic> {
        let mut diags = Vec::new();
        let pending = super::pending(&spec.resource);
        let split = super::split_ref(&spec.resource);
        match (&spec.condition, &spec.selector) {
            (None, Some(_)) => diags.push(super::arg_error(
                with,
                "selector",
                "`selector` without `condition`",
                "rollouts are waited for by name",
                "add a condition (`condition: Ready` for pods), or name the workload in `resource`",
            )),
            (None, None) if !pending => match split {
                Some((kind, _)) if ROLLOUT_KINDS.contains(&kind.to_ascii_lowercase().as_str()) => {}
                Some((kind, _)) => diags.push(super::arg_error(
                    with,
                    "resource",
                    &format!("a `{kind}` has no rollout"),
                    "not a deployment, statefulset or daemonset",
                    "add `condition:` (e.g. `condition: Complete` for a job)",
                )),
                None => diags.push(super::arg_error(
                    with,
                    "resource",
                    &format!("`{}` is not `kind/name`", spec.resource),
                    "expected kind/name",
                    "write e.g. `deployment/backend`",
                )),
            },
            (Some(_), Some(_)) if !pending && split.is_some() => diags.push(super::arg_error(
                with,
                "resource",
                "`resource` names one object and `selector` chooses others",
                "a name and a selector",
                "with `selector`, give only the kind: `resource: pods`",
            )),
            (Some(_), None) if !pending && split.is_none() => diags.push(super::arg_error(
                with,
                "resource",
                &format!("`{}` is not `kind/name`", spec.resource),
                "which object?",
                "write e.g. `job/restore`, or add `selector:` to wait for every matching object",
            )),
            _ => {}
        }
        if let Some(c) = &spec.condition {
            if c.trim().is_empty()
                || c.contains('=') && !c.contains("=True") && !c.contains("=False")
            {
                diags.push(super::arg_error(
                    with,
                    "condition",
                    &format!("`{c}` is not a condition name"),
                    "expected e.g. Ready",
                    "give the condition type only, e.g. `Available`, `Ready` or `Complete`",
                ));
            }
        }
        if let Some(d) = opsplan_plan::fields::check_duration_field(with, "deadline") {
            diags.push(d);
        }
        diags
    }
    fn describe(spec: &K8sWaitSpec) -> Action {
        Action::new(spec.connection().preview(&spec.args()))
    }
    async fn run(spec: K8sWaitSpec, ctx: StepContext) -> Result<Outputs, StepError> {
        let conn = spec.connection();
        let deadline = super::duration("deadline", &spec.deadline)?;
        let args = spec.args();
        let started = Instant::now();
        let result = conn.run(&ctx, &args, None, true).await?;
        if result.exit_code != 0 {
            if result
                .stderr
                .contains("timed out waiting for the condition")
            {
                let what = match &spec.condition {
                    Some(c) => format!("condition {c}"),
                    None => "the rollout".to_string(),
                };
                let of = match &spec.selector {
                    Some(sel) => format!("{} with labels `{sel}`", spec.resource),
                    None => spec.resource.clone(),
                };
                let progress = super::tail_lines(result.stdout.trim_end(), 1);
                let progress = if progress.is_empty() {
                    String::new()
                } else {
                    format!("; last status: {progress}")
                };
                return Err(StepError::fatal(format!(
                    "{what} of {of} not reached within {} in {}{progress}",
                    humantime::format_duration(deadline),
                    conn.place()
                )));
            }
            return Err(conn.failure(&ctx, &args, &result));
        }
        let mut out = Outputs::new();
        out.insert(
            "message".into(),
            result.stdout.trim_end_matches('\n').into(),
        );
        out.insert("waited_seconds".into(), started.elapsed().as_secs().into());
        Ok(out)
    }
}
