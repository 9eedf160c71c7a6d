//! `docker.volume`: inspect, create or remove a named volume (the COSMOS data lives in
//! `openc3-tsdb-v` and `openc3-object-v`). `remove` destroys the data and needs a guard.

use super::{check_name, Engine};
use crate::{Action, OutputDecl, Outputs, StepContext, StepError, StepType};
use bollard::errors::Error as DockerError;
use bollard::models::{Volume, VolumeCreateRequest};
use bollard::query_parameters::RemoveVolumeOptionsBuilder;
use opsplan_plan::diagnostic::Diagnostic;
use opsplan_plan::source::Node;
use schemars::JsonSchema;
use serde::Deserialize;
use std::collections::BTreeMap;

pub struct DockerVolume;

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DockerVolumeSpec {
    /// `inspect` (default), `create` (nothing happens when it exists) or `remove` (destroys
    /// its data; nothing happens when it does not exist).
    #[serde(default)]
    pub action: VolumeAction,
    /// Volume name, e.g. `openc3-tsdb-v`.
    pub name: String,
    /// With `create`: labels of the new volume.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// With `create`: volume driver (default `local`).
    #[serde(default)]
    pub driver: Option<String>,
}

/// What `docker.volume` does.
#[derive(Debug, Clone, Copy, Default, Deserialize, JsonSchema, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum VolumeAction {
    #[default]
    Inspect,
    Create,
    Remove,
}

impl StepType for DockerVolume {
    const NAME: &'static str = "docker.volume";
    const SUMMARY: &'static str =
        "Inspect, create or remove a named Docker volume; `remove` is destructive.";
    type Spec = DockerVolumeSpec;

    fn outputs() -> &'static [OutputDecl] {
        &[
            OutputDecl {
                name: "exists",
                description: "whether the volume exists after the step",
            },
            OutputDecl {
                name: "mountpoint",
                description:
                    "where its data is on the engine's host (empty when it does not exist)",
            },
            OutputDecl {
                name: "driver",
                description: "its driver (empty when it does not exist)",
            },
            OutputDecl {
                name: "labels",
                description: "its labels, a mapping",
            },
            OutputDecl {
                name: "created",
                description: "with `create`: whether this step created it",
            },
            OutputDecl {
                name: "removed",
                description: "with `remove`: whether this step removed it",
            },
        ]
    }
    fn check(spec: &DockerVolumeSpec, with: &Node) -> Vec<Diagnostic> {
        let mut diags: Vec<Diagnostic> = check_name(with, "name", &spec.name, "openc3-tsdb-v")
            .into_iter()
            .collect();
        if spec.action != VolumeAction::Create {
            for field in ["labels", "driver"] {
                if with.get(field).is_some() {
                    diags.push(super::field_error(
                        with,
                        field,
                        format!("`{field}` applies only to `action: create`"),
                        "ignored by this action",
                        &format!("remove `{field}`, or set `action: create`"),
                    ));
                }
            }
        }
        diags
    }
    fn destructive(spec: &DockerVolumeSpec) -> bool {
        spec.action == VolumeAction::Remove
    }
    fn describe(spec: &DockerVolumeSpec) -> Action {
        Action::new(match spec.action {
            VolumeAction::Inspect => format!("docker volume inspect {}", spec.name),
            VolumeAction::Create => {
                let mut s = "docker volume create".to_string();
                if let Some(driver) = &spec.driver {
                    s.push_str(&format!(" --driver {driver}"));
                }
                for (k, v) in &spec.labels {
                    s.push_str(&format!(" --label {k}={v}"));
                }
                format!("{s} {} (unless it exists)", spec.name)
            }
            VolumeAction::Remove => format!(
                "docker volume rm {} (deletes the volume and all its data)",
                spec.name
            ),
        })
    }
    async fn run(spec: DockerVolumeSpec, ctx: StepContext) -> Result<Outputs, StepError> {
        let engine = Engine::connect(&ctx).await?;
        let name = &spec.name;
        let existing = inspect(&engine, name, &ctx).await?;
        let mut created = false;
        let mut removed = false;
        let now = match (spec.action, existing) {
            (VolumeAction::Inspect, v) => v,
            (VolumeAction::Create, Some(v)) => Some(v),
            (VolumeAction::Create, None) => {
                let request = VolumeCreateRequest {
                    name: Some(name.clone()),
                    driver: spec.driver.clone(),
                    labels: Some(spec.labels.clone().into_iter().collect()),
                    ..Default::default()
                };
                let v = tokio::select! {
                    r = engine.api.create_volume(request) => r,
                    _ = ctx.cancel.cancelled() => return Err(StepError::cancelled()),
                }
                .map_err(|e| engine.error(e, &format!("creating volume `{name}`")))?;
                created = true;
                Some(v)
            }
            (VolumeAction::Remove, None) => None,
            (VolumeAction::Remove, Some(_)) => {
                let options = RemoveVolumeOptionsBuilder::default().force(false).build();
                let r = tokio::select! {
                    r = engine.api.remove_volume(name, Some(options)) => r,
                    _ = ctx.cancel.cancelled() => return Err(StepError::cancelled()),
                };
                match r {
                    Ok(()) => {}
                    Err(DockerError::DockerResponseServerError {
                        status_code: 409,
                        message,
                    }) => {
                        return Err(StepError::fatal(format!(
                            "volume `{name}` is in use, so it was not removed: stop and remove \
                             the containers that use it first ({})",
                            ctx.redact.redact(&message)
                        )))
                    }
                    Err(e) => return Err(engine.error(e, &format!("removing volume `{name}`"))),
                }
                removed = true;
                None
            }
        };
        let mut out = Outputs::new();
        out.insert("exists".into(), now.is_some().into());
        let (mountpoint, driver, labels) = match now {
            Some(v) => (
                v.mountpoint,
                v.driver,
                v.labels.into_iter().collect::<BTreeMap<_, _>>(),
            ),
            None => Default::default(),
        };
        out.insert("mountpoint".into(), mountpoint.into());
        out.insert("driver".into(), driver.into());
        out.insert(
            "labels".into(),
            serde_json::to_value(labels).unwrap_or_default(),
        );
        out.insert("created".into(), created.into());
        out.insert("removed".into(), removed.into());
        Ok(out)
    }
}

async fn inspect(
    engine: &Engine,
    name: &str,
    ctx: &StepContext,
) -> Result<Option<Volume>, StepError> {
    let r = tokio::select! {
        r = engine.api.inspect_volume(name) => r,
        _ = ctx.cancel.cancelled() => return Err(StepError::cancelled()),
    };
    match r {
        Ok(v) => Ok(Some(v)),
        Err(DockerError::DockerResponseServerError {
            status_code: 404, ..
        }) => Ok(None),
        Err(e) => Err(engine.error(e, &format!("inspecting volume `{name}`"))),
    }
}
