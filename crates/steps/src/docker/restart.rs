//! `docker.restart`: stop and start a container in one call, then wait as `docker.start`
//! does (a service that must reread restored data).

use super::stop::{default_timeout, stop_seconds};
use super::{check_name, state_outputs, wait_for_state, Engine, WaitFor, STATE_OUTPUTS};
use crate::{Action, OutputDecl, Outputs, StepContext, StepError, StepType};
use bollard::query_parameters::RestartContainerOptionsBuilder;
use opsplan_plan::diagnostic::Diagnostic;
use opsplan_plan::source::Node;
use schemars::JsonSchema;
use serde::Deserialize;
use std::time::Instant;

pub struct DockerRestart;

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DockerRestartSpec {
    /// Name or id of the container, e.g. `openc3-tsdb-1`.
    pub container: String,
    /// Time the container's main process gets between SIGTERM and SIGKILL (default `10s`).
    #[serde(default = "default_timeout")]
    pub timeout: String,
    /// What to wait for after the restart: `healthy` (default; running is enough when the
    /// container has no healthcheck), `running` or `none`.
    #[serde(default)]
    pub wait: WaitFor,
    /// Give up waiting after this long, counted from when it started again (default `5m`).
    #[serde(default = "super::start::default_deadline")]
    pub deadline: String,
}

impl StepType for DockerRestart {
    const NAME: &'static str = "docker.restart";
    const SUMMARY: &'static str =
        "Restart a container and wait until it is healthy (or running), with a deadline.";
    type Spec = DockerRestartSpec;

    fn outputs() -> &'static [OutputDecl] {
        STATE_OUTPUTS
    }
    fn check(spec: &DockerRestartSpec, with: &Node) -> Vec<Diagnostic> {
        let mut diags: Vec<Diagnostic> =
            check_name(with, "container", &spec.container, "openc3-tsdb-1")
                .into_iter()
                .collect();
        for field in ["timeout", "deadline"] {
            diags.extend(opsplan_plan::fields::check_duration_field(with, field));
        }
        diags
    }
    fn describe(spec: &DockerRestartSpec) -> Action {
        Action::new(format!(
            "docker restart --time {} {}{}",
            spec.timeout,
            spec.container,
            spec.wait.describe(&spec.deadline)
        ))
    }
    async fn run(spec: DockerRestartSpec, ctx: StepContext) -> Result<Outputs, StepError> {
        let timeout = super::parse_duration(&spec.timeout, "timeout")?;
        let deadline = super::parse_duration(&spec.deadline, "deadline")?;
        let engine = Engine::connect(&ctx).await?;
        let options = RestartContainerOptionsBuilder::default()
            .t(stop_seconds(timeout))
            .build();
        tokio::select! {
            r = engine.streaming.restart_container(&spec.container, Some(options)) => r,
            _ = ctx.cancel.cancelled() => return Err(StepError::cancelled()),
        }
        .map_err(|e| engine.error(e, &format!("restarting container `{}`", spec.container)))?;
        let waiting = Instant::now();
        let seen =
            wait_for_state(&engine, &spec.container, spec.wait, false, deadline, &ctx).await?;
        Ok(state_outputs(&seen, waiting.elapsed()))
    }
}
