//! `docker.start`: start a container and wait until it is healthy (or running, without a
//! healthcheck): COSMOS restore starts the services again and waits for them.

use super::{check_name, state_outputs, wait_for_state, Engine, WaitFor, STATE_OUTPUTS};
use crate::{Action, OutputDecl, Outputs, StepContext, StepError, StepType};
use opsplan_plan::diagnostic::Diagnostic;
use opsplan_plan::source::Node;
use schemars::JsonSchema;
use serde::Deserialize;
use std::time::Instant;

pub struct DockerStart;

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DockerStartSpec {
    /// Name or id of the container, e.g. `openc3-tsdb-1`.
    pub container: String,
    /// What to wait for: `healthy` (default; running is enough when the container has no
    /// healthcheck), `running` or `none`.
    #[serde(default)]
    pub wait: WaitFor,
    /// Give up waiting after this long (default `5m`).
    #[serde(default = "default_deadline")]
    pub deadline: String,
}

pub fn default_deadline() -> String {
    "5m".into()
}

impl StepType for DockerStart {
    const NAME: &'static str = "docker.start";
    const SUMMARY: &'static str =
        "Start a container and wait until it is healthy (or running), with a deadline.";
    type Spec = DockerStartSpec;

    fn outputs() -> &'static [OutputDecl] {
        STATE_OUTPUTS
    }
    fn check(spec: &DockerStartSpec, with: &Node) -> Vec<Diagnostic> {
        let mut diags: Vec<Diagnostic> =
            check_name(with, "container", &spec.container, "openc3-tsdb-1")
                .into_iter()
                .collect();
        diags.extend(opsplan_plan::fields::check_duration_field(with, "deadline"));
        diags
    }
    fn describe(spec: &DockerStartSpec) -> Action {
        Action::new(format!(
            "docker start {}{}",
            spec.container,
            spec.wait.describe(&spec.deadline)
        ))
    }
    async fn run(spec: DockerStartSpec, ctx: StepContext) -> Result<Outputs, StepError> {
        let deadline = super::parse_duration(&spec.deadline, "deadline")?;
        let engine = Engine::connect(&ctx).await?;
        tokio::select! {
            r = engine.api.start_container(&spec.container, None) => r,
            _ = ctx.cancel.cancelled() => return Err(StepError::cancelled()),
        }
        .map_err(|e| engine.error(e, &format!("starting container `{}`", spec.container)))?;
        let waiting = Instant::now();
        let seen =
            wait_for_state(&engine, &spec.container, spec.wait, false, deadline, &ctx).await?;
        Ok(state_outputs(&seen, waiting.elapsed()))
    }
}
