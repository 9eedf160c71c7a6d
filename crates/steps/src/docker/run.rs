//! `docker.run`: run a container to completion, like `docker run --rm`: the vendor's
//! "temporary container that mounts the volume and the backup folder" (COSMOS 7 restore,
//! COSMOS 6 `mc mirror --preserve` with `--volumes-from`). Output is streamed to the log,
//! the exit code checked, and on cancel the container is stopped (killed on a second
//! Ctrl-C) and removed.

use super::{default_exit, env_list, finish_process, refuse_secret_argv, Capture, Engine};
use crate::{shell_quote, Action, OutputDecl, Outputs, StepContext, StepError, StepType};
use bollard::errors::Error as DockerError;
use bollard::models::{ContainerCreateBody, HostConfig, Mount, MountType};
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, KillContainerOptionsBuilder, LogsOptionsBuilder,
    RemoveContainerOptionsBuilder, StopContainerOptionsBuilder, WaitContainerOptionsBuilder,
};
use futures::StreamExt;
use opsplan_plan::diagnostic::Diagnostic;
use opsplan_plan::source::de::is_template;
use opsplan_plan::source::Node;
use schemars::JsonSchema;
use serde::Deserialize;
use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

pub struct DockerRun;

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DockerRunSpec {
    /// Image to run. It must already be on the engine: nothing is pulled.
    pub image: String,
    /// Command (argv) instead of the image's default, e.g. `[rsync, -a, /data/, /backup/]`;
    /// empty for the image's.
    #[serde(default)]
    pub command: Vec<String>,
    /// Entrypoint (argv) instead of the image's; empty for the image's.
    #[serde(default)]
    pub entrypoint: Vec<String>,
    /// Named volumes and host folders to mount (`-v`).
    #[serde(default)]
    pub mounts: Vec<MountSpec>,
    /// Containers whose volumes are mounted at the same paths (`--volumes-from`); append
    /// `:ro` for read-only. The usual way to reach a service's data without knowing its
    /// volume names.
    #[serde(default)]
    pub volumes_from: Vec<String>,
    /// User to run as (`name`, `uid` or `uid:gid`); default the image's user.
    #[serde(default)]
    pub user: Option<String>,
    /// Environment variables; secrets belong here, never in `command`.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Working directory inside the container; default the image's.
    #[serde(default)]
    pub workdir: Option<String>,
    /// Container name; default a generated one. A name still in use makes the step fail.
    #[serde(default)]
    pub name: Option<String>,
    /// Network to join (`--network`), e.g. the service's network to reach it by name.
    #[serde(default)]
    pub network: Option<String>,
    /// Remove the container when it ended, also on failure and cancel (default true).
    #[serde(default = "yes")]
    pub remove: bool,
    /// Exit codes that count as success (default `[0]`).
    #[serde(default = "default_exit")]
    pub expect_exit: Vec<i64>,
}

/// One mount: exactly one of `volume` and `host`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MountSpec {
    /// A named Docker volume, e.g. `openc3-tsdb-v`…
    #[serde(default)]
    pub volume: Option<String>,
    /// …or an absolute folder (or file) on the engine's host (a bind mount).
    #[serde(default)]
    pub host: Option<String>,
    /// Absolute path where it appears in the container.
    pub target: String,
    /// Mount read-only: what a backup reads should be safe from the tool that reads it.
    #[serde(default)]
    pub read_only: bool,
    /// With `volume`: create it when missing. Off by default, so that a misspelt name
    /// fails instead of backing up, or restoring into, a new empty volume.
    #[serde(default)]
    pub create: bool,
}

fn yes() -> bool {
    true
}

impl StepType for DockerRun {
    const NAME: &'static str = "docker.run";
    const SUMMARY: &'static str =
        "Run a container to completion (mounts, volumes_from, user, env), streaming its output; removed when done.";
    type Spec = DockerRunSpec;

    fn outputs() -> &'static [OutputDecl] {
        &[
            OutputDecl {
                name: "exit_code",
                description: "the container's exit code",
            },
            OutputDecl {
                name: "stdout",
                description: "standard output, trailing newline removed (first 8 MiB)",
            },
            OutputDecl {
                name: "stderr",
                description: "standard error, trailing newline removed (last 1 MiB)",
            },
            OutputDecl {
                name: "container_id",
                description: "the id of the container that ran",
            },
        ]
    }
    fn check(spec: &DockerRunSpec, with: &Node) -> Vec<Diagnostic> {
        let mut diags = Vec::new();
        diags.extend(super::check_name(with, "image", &spec.image, "alpine:3.20"));
        let mount_nodes = with.get("mounts");
        for (i, mount) in spec.mounts.iter().enumerate() {
            let node = mount_nodes.and_then(|m| m.at_path(&i.to_string()));
            let at = |field: &str| {
                node.and_then(|n| n.get(field))
                    .or(node)
                    .map_or(with.span, |n| n.span)
            };
            match (&mount.volume, &mount.host) {
                (Some(_), Some(_)) | (None, None) => diags.push(
                    Diagnostic::new(
                        opsplan_plan::diagnostic::Code::StepArgs,
                        format!("mount {} needs exactly one of `volume` and `host`", i + 1),
                    )
                    .label(at("target"), "what is mounted here?")
                    .help("e.g. `{volume: openc3-tsdb-v, target: /var/lib/questdb}` or `{host: /mnt/backup, target: /backup}`"),
                ),
                (None, Some(host)) if !host.starts_with('/') && !is_template(host) => diags.push(
                    Diagnostic::new(
                        opsplan_plan::diagnostic::Code::StepArgs,
                        format!("host path `{host}` is not absolute"),
                    )
                    .label(at("host"), "relative path")
                    .help("bind mounts need an absolute path on the engine's host, e.g. `/mnt/backup`"),
                ),
                (None, Some(_)) if mount.create => diags.push(
                    Diagnostic::new(
                        opsplan_plan::diagnostic::Code::StepArgs,
                        "`create` applies to volumes, not host paths",
                    )
                    .label(at("create"), "only for `volume` mounts")
                    .help("remove `create`, or mount a named `volume`"),
                ),
                _ => {}
            }
            if !mount.target.starts_with('/') && !is_template(&mount.target) {
                diags.push(
                    Diagnostic::new(
                        opsplan_plan::diagnostic::Code::StepArgs,
                        format!("mount target `{}` is not absolute", mount.target),
                    )
                    .label(at("target"), "relative path")
                    .help("write the absolute path inside the container, e.g. `/data`"),
                );
            }
        }
        if let Some(from) = with.get("volumes_from") {
            for (i, entry) in spec.volumes_from.iter().enumerate() {
                let (name, mode) = entry.split_once(':').unwrap_or((entry, "rw"));
                if name.trim().is_empty() || !matches!(mode, "ro" | "rw") {
                    diags.push(
                        Diagnostic::new(
                            opsplan_plan::diagnostic::Code::StepArgs,
                            format!(
                                "`{entry}` is not a container name with an optional `:ro` or `:rw`"
                            ),
                        )
                        .label(
                            from.at_path(&i.to_string()).map_or(from.span, |n| n.span),
                            "bad entry",
                        )
                        .help("write `openc3-tsdb-1` or `openc3-tsdb-1:ro`"),
                    );
                }
            }
        }
        if spec.expect_exit.is_empty() {
            diags.push(super::field_error(
                with,
                "expect_exit",
                "`expect_exit` is empty".into(),
                "no exit code would count as success",
                "list the exit codes that mean success, e.g. `expect_exit: [0]`",
            ));
        }
        diags
    }
    fn describe(spec: &DockerRunSpec) -> Action {
        let mut args: Vec<String> = vec!["docker".into(), "run".into()];
        if spec.remove {
            args.push("--rm".into());
        }
        if let Some(name) = &spec.name {
            args.extend(["--name".into(), name.clone()]);
        }
        if let Some(user) = &spec.user {
            args.extend(["--user".into(), user.clone()]);
        }
        if let Some(dir) = &spec.workdir {
            args.extend(["-w".into(), dir.clone()]);
        }
        if let Some(network) = &spec.network {
            args.extend(["--network".into(), network.clone()]);
        }
        for (k, v) in &spec.env {
            args.extend(["-e".into(), format!("{k}={v}")]);
        }
        for m in &spec.mounts {
            let source = m
                .volume
                .as_ref()
                .or(m.host.as_ref())
                .cloned()
                .unwrap_or_default();
            let ro = if m.read_only { ":ro" } else { "" };
            args.extend(["-v".into(), format!("{source}:{}{ro}", m.target)]);
        }
        for from in &spec.volumes_from {
            args.extend(["--volumes-from".into(), from.clone()]);
        }
        if !spec.entrypoint.is_empty() {
            args.extend(["--entrypoint".into(), shell_quote(&spec.entrypoint)]);
        }
        args.push(spec.image.clone());
        args.extend(spec.command.iter().cloned());
        Action::new(format!("$ {}", shell_quote(&args)))
    }
    async fn run(spec: DockerRunSpec, ctx: StepContext) -> Result<Outputs, StepError> {
        refuse_secret_argv(&spec.command, &ctx)?;
        refuse_secret_argv(&spec.entrypoint, &ctx)?;
        let engine = Engine::connect(&ctx).await?;
        check_volumes(&engine, &spec, &ctx).await?;
        let what = match spec.command.first() {
            Some(program) => format!("`{program}` in a container of `{}`", spec.image),
            None => format!("the container of `{}`", spec.image),
        };

        let mut options = CreateContainerOptionsBuilder::default();
        if let Some(name) = &spec.name {
            options = options.name(name);
        }
        let created = tokio::select! {
            r = engine.api.create_container(Some(options.build()), create_body(&spec, &ctx)) => r,
            _ = ctx.cancel.cancelled() => return Err(StepError::cancelled()),
        }
        .map_err(|e| engine.error(e, &format!("creating a container of `{}`", spec.image)))?;
        let id = created.id;
        for warning in created.warnings {
            tracing::warn!(step = %ctx.step_id, "Docker: {warning}");
        }

        let result = tokio::select! {
            r = run_to_end(&engine, &id, &what, &ctx) => r,
            _ = ctx.cancel.cancelled() => {
                stop(&engine, &id, &ctx).await;
                Err(StepError::cancelled())
            }
        };
        if spec.remove {
            remove(&engine, &id, &ctx).await;
        }
        let (exit_code, captured) = result?;
        let mut outputs = finish_process(&what, exit_code, &spec.expect_exit, captured)?;
        outputs.insert("container_id".into(), id.into());
        Ok(outputs)
    }
}

fn create_body(spec: &DockerRunSpec, ctx: &StepContext) -> ContainerCreateBody {
    let mounts: Vec<Mount> = spec
        .mounts
        .iter()
        .map(|m| Mount {
            target: Some(m.target.clone()),
            source: m.volume.clone().or_else(|| m.host.clone()),
            typ: Some(if m.volume.is_some() {
                MountType::VOLUME
            } else {
                MountType::BIND
            }),
            read_only: Some(m.read_only),
            ..Default::default()
        })
        .collect();
    ContainerCreateBody {
        image: Some(spec.image.clone()),
        cmd: (!spec.command.is_empty()).then(|| spec.command.clone()),
        entrypoint: (!spec.entrypoint.is_empty()).then(|| spec.entrypoint.clone()),
        env: env_list(&spec.env),
        user: spec.user.clone(),
        working_dir: spec.workdir.clone(),
        attach_stdout: Some(true),
        attach_stderr: Some(true),
        tty: Some(false),
        labels: Some(HashMap::from([(
            "opsplan.step".to_string(),
            ctx.step_id.clone(),
        )])),
        host_config: Some(HostConfig {
            mounts: (!mounts.is_empty()).then_some(mounts),
            volumes_from: (!spec.volumes_from.is_empty()).then(|| spec.volumes_from.clone()),
            network_mode: spec.network.clone(),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// Docker creates a missing named volume silently; a backup of it would be empty and a
/// restore would land where nothing reads it, so a volume must exist unless `create`.
async fn check_volumes(
    engine: &Engine,
    spec: &DockerRunSpec,
    ctx: &StepContext,
) -> Result<(), StepError> {
    for m in spec.mounts.iter().filter(|m| !m.create) {
        let Some(volume) = &m.volume else { continue };
        let found = tokio::select! {
            r = engine.api.inspect_volume(volume) => r,
            _ = ctx.cancel.cancelled() => return Err(StepError::cancelled()),
        };
        match found {
            Ok(_) => {}
            Err(DockerError::DockerResponseServerError {
                status_code: 404, ..
            }) => {
                return Err(StepError::fatal(format!(
                    "volume `{volume}` (to mount at {}) does not exist on the Docker engine at {}; \
                     create it first (docker.volume with `action: create`) or set `create: true` on the mount",
                    m.target, engine.address
                )))
            }
            Err(e) => return Err(engine.error(e, &format!("inspecting volume `{volume}`"))),
        }
    }
    Ok(())
}

/// Starts the container, streams its output until it ends and returns its exit code.
async fn run_to_end(
    engine: &Engine,
    id: &str,
    what: &str,
    ctx: &StepContext,
) -> Result<(i64, super::Captured), StepError> {
    engine
        .api
        .start_container(id, None)
        .await
        .map_err(|e| engine.error(e, &format!("starting {what}")))?;
    let options = LogsOptionsBuilder::default()
        .follow(true)
        .stdout(true)
        .stderr(true)
        .build();
    let mut logs = engine.streaming.logs(id, Some(options));
    let mut capture = Capture::new(ctx);
    while let Some(item) = logs.next().await {
        match item {
            Ok(chunk) => capture.push(chunk),
            Err(e) => return Err(engine.error(e, &format!("reading the output of {what}"))),
        }
    }
    let captured = capture.finish();
    let options = WaitContainerOptionsBuilder::default()
        .condition("not-running")
        .build();
    let mut wait = engine.streaming.wait_container(id, Some(options));
    let exit_code = match wait.next().await {
        Some(Ok(r)) => r.status_code,
        Some(Err(DockerError::DockerContainerWaitError { code, .. })) => code,
        Some(Err(e)) => return Err(engine.error(e, &format!("waiting for {what}"))),
        None => {
            return Err(StepError::new(format!(
                "waiting for {what}: the engine closed the wait without an exit code"
            )))
        }
    };
    Ok((exit_code, captured))
}

/// Stops a cancelled container: SIGTERM, the grace period, SIGKILL (at once on `hurry`).
async fn stop(engine: &Engine, id: &str, ctx: &StepContext) {
    let kill = || async {
        let options = KillContainerOptionsBuilder::default()
            .signal("KILL")
            .build();
        let _ = engine.api.kill_container(id, Some(options)).await;
    };
    if ctx.hurry.is_cancelled() {
        kill().await;
        return;
    }
    let grace = ctx.grace.as_secs_f64().ceil() as i32;
    let options = StopContainerOptionsBuilder::default().t(grace).build();
    tokio::select! {
        _ = engine.streaming.stop_container(id, Some(options)) => {}
        _ = ctx.hurry.cancelled() => kill().await,
    }
}

/// Removes the container with its anonymous volumes, like `docker run --rm`; this is
/// cleanup, so cancel does not interrupt it.
async fn remove(engine: &Engine, id: &str, ctx: &StepContext) {
    let options = RemoveContainerOptionsBuilder::default()
        .force(true)
        .v(true)
        .build();
    match tokio::time::timeout(
        Duration::from_secs(60),
        engine.api.remove_container(id, Some(options)),
    )
    .await
    {
        Ok(Ok(())) => {}
        Ok(Err(DockerError::DockerResponseServerError {
            status_code: 404, ..
        })) => {}
        Ok(Err(e)) => tracing::warn!(
            step = %ctx.step_id,
            "container {id} was not removed: {}",
            engine.error(e, "removing it")
        ),
        Err(_) => {
            tracing::warn!(step = %ctx.step_id, "container {id} was not removed: the engine did not answer");
        }
    }
}
