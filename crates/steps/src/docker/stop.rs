//! `docker.stop`: stop a container and wait until it no longer runs (COSMOS restore: the
//! services must be down before their volumes are replaced).

use super::{check_name, wait_for_state, Engine, WaitFor};
use crate::{Action, OutputDecl, Outputs, StepContext, StepError, StepType};
use bollard::query_parameters::StopContainerOptionsBuilder;
use opsplan_plan::diagnostic::Diagnostic;
use opsplan_plan::source::Node;
use schemars::JsonSchema;
use serde::Deserialize;
use std::time::{Duration, Instant};

pub struct DockerStop;

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DockerStopSpec {
    /// Name or id of the container, e.g. `openc3-tsdb-1`.
    pub container: String,
    /// Time the container's main process gets between SIGTERM and SIGKILL (default `10s`,
    /// Docker's own default); databases may need more to shut down cleanly.
    #[serde(default = "default_timeout")]
    pub timeout: String,
    /// How long to wait in all until the container no longer runs (default `1m`).
    #[serde(default = "default_deadline")]
    pub deadline: String,
}

pub fn default_timeout() -> String {
    "10s".into()
}
fn default_deadline() -> String {
    "1m".into()
}

/// Seconds as the stop API takes them (whole, at least the duration asked for).
pub fn stop_seconds(timeout: Duration) -> i32 {
    timeout.as_secs_f64().ceil().min(i32::MAX as f64) as i32
}

impl StepType for DockerStop {
    const NAME: &'static str = "docker.stop";
    const SUMMARY: &'static str =
        "Stop a container (SIGTERM, then SIGKILL after `timeout`) and wait until it no longer runs.";
    type Spec = DockerStopSpec;

    fn outputs() -> &'static [OutputDecl] {
        &[
            OutputDecl {
                name: "was_running",
                description: "whether the container was running before the step",
            },
            OutputDecl {
                name: "state",
                description: "the container's state at the end (`exited`, …)",
            },
        ]
    }
    fn check(spec: &DockerStopSpec, with: &Node) -> Vec<Diagnostic> {
        let mut diags: Vec<Diagnostic> =
            check_name(with, "container", &spec.container, "openc3-tsdb-1")
                .into_iter()
                .collect();
        for field in ["timeout", "deadline"] {
            diags.extend(opsplan_plan::fields::check_duration_field(with, field));
        }
        diags
    }
    fn describe(spec: &DockerStopSpec) -> Action {
        Action::new(format!(
            "docker stop --time {} {}, wait until stopped for at most {}",
            spec.timeout, spec.container, spec.deadline
        ))
    }
    async fn run(spec: DockerStopSpec, ctx: StepContext) -> Result<Outputs, StepError> {
        let timeout = super::parse_duration(&spec.timeout, "timeout")?;
        let deadline = super::parse_duration(&spec.deadline, "deadline")?;
        let started = Instant::now();
        let engine = Engine::connect(&ctx).await?;
        let before = super::observe(&engine, &spec.container, &ctx).await?;
        if before.running {
            let options = StopContainerOptionsBuilder::default()
                .t(stop_seconds(timeout))
                .build();
            tokio::select! {
                r = engine.streaming.stop_container(&spec.container, Some(options)) => r,
                _ = ctx.cancel.cancelled() => return Err(StepError::cancelled()),
            }
            .map_err(|e| engine.error(e, &format!("stopping container `{}`", spec.container)))?;
        }
        let left = deadline.saturating_sub(started.elapsed());
        let seen =
            wait_for_state(&engine, &spec.container, WaitFor::None, true, left, &ctx).await?;
        let mut out = Outputs::new();
        out.insert("was_running".into(), before.running.into());
        out.insert("state".into(), seen.status.into());
        Ok(out)
    }
}
