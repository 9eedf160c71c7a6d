//! `docker.exec`: run a command in a running container (COSMOS partition attach: `chown -R
//! 10001:10001 …` inside `openc3-tsdb-1`), its output streamed to the log.

use super::{
    default_exit, env_list, finish_process, refuse_secret_argv, Capture, Engine, PROCESS_OUTPUTS,
};
use crate::{shell_quote, Action, OutputDecl, Outputs, StepContext, StepError, StepType};
use bollard::exec::{StartExecOptions, StartExecResults};
use bollard::models::ExecConfig;
use futures::StreamExt;
use opsplan_plan::diagnostic::Diagnostic;
use opsplan_plan::source::Node;
use schemars::JsonSchema;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::time::Duration;
use tokio::io::AsyncWriteExt;

pub struct DockerExec;

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DockerExecSpec {
    /// Name or id of the running container, e.g. `openc3-tsdb-1`.
    pub container: String,
    /// Program and arguments; no shell is involved unless you run one (`[sh, -c, "…"]`).
    pub argv: Vec<String>,
    /// User to run as (`name`, `uid` or `uid:gid`); default the container's user.
    #[serde(default)]
    pub user: Option<String>,
    /// Extra environment variables; secrets belong here, never in `argv`.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Working directory inside the container; default the container's.
    #[serde(default)]
    pub workdir: Option<String>,
    /// Text written to the command's standard input (then closed).
    #[serde(default)]
    pub stdin: Option<String>,
    /// Exit codes that count as success (default `[0]`).
    #[serde(default = "default_exit")]
    pub expect_exit: Vec<i64>,
}

impl StepType for DockerExec {
    const NAME: &'static str = "docker.exec";
    const SUMMARY: &'static str =
        "Run a command (argv) in a running container, streaming its output and checking its exit code.";
    type Spec = DockerExecSpec;

    fn outputs() -> &'static [OutputDecl] {
        PROCESS_OUTPUTS
    }
    fn check(spec: &DockerExecSpec, with: &Node) -> Vec<Diagnostic> {
        let mut diags = Vec::new();
        diags.extend(super::check_name(
            with,
            "container",
            &spec.container,
            "openc3-tsdb-1",
        ));
        if spec.argv.is_empty() && !crate::templated(with, "argv") {
            diags.push(super::field_error(
                with,
                "argv",
                "`argv` is empty".into(),
                "no program to run",
                "give the program and its arguments, e.g. `argv: [chown, -R, \"10001:10001\", /var/lib/questdb]`",
            ));
        }
        if spec.expect_exit.is_empty() {
            diags.push(super::field_error(
                with,
                "expect_exit",
                "`expect_exit` is empty".into(),
                "no exit code would count as success",
                "list the exit codes that mean success, e.g. `expect_exit: [0, 1]`",
            ));
        }
        diags
    }
    fn describe(spec: &DockerExecSpec) -> Action {
        let mut s = format!("docker exec {}", spec.container);
        if let Some(user) = &spec.user {
            s.push_str(&format!(" (as {user})"));
        }
        if let Some(dir) = &spec.workdir {
            s.push_str(&format!(" (in {dir})"));
        }
        s.push_str(&format!(": $ {}", shell_quote(&spec.argv)));
        Action::new(s)
    }
    async fn run(spec: DockerExecSpec, ctx: StepContext) -> Result<Outputs, StepError> {
        refuse_secret_argv(&spec.argv, &ctx)?;
        let engine = Engine::connect(&ctx).await?;
        let program = spec.argv.first().cloned().unwrap_or_default();
        let what = format!("`{program}` in container `{}`", spec.container);
        let config = ExecConfig {
            attach_stdin: Some(spec.stdin.is_some()),
            attach_stdout: Some(true),
            attach_stderr: Some(true),
            tty: Some(false),
            cmd: Some(spec.argv.clone()),
            env: env_list(&spec.env),
            user: spec.user.clone(),
            working_dir: spec.workdir.clone(),
            ..Default::default()
        };
        let doing = format!("starting {what}");
        let created = tokio::select! {
            r = engine.api.create_exec(&spec.container, config) => r,
            _ = ctx.cancel.cancelled() => return Err(StepError::cancelled()),
        }
        .map_err(|e| engine.error(e, &doing))?;
        let started = tokio::select! {
            r = engine.streaming.start_exec(&created.id, Some(StartExecOptions::default())) => r,
            _ = ctx.cancel.cancelled() => return Err(StepError::cancelled()),
        }
        .map_err(|e| engine.error(e, &doing))?;
        let StartExecResults::Attached { mut output, input } = started else {
            return Err(StepError::new(format!(
                "{doing}: the engine detached the command instead of attaching to it"
            )));
        };
        let mut input = input;
        if let Some(text) = spec.stdin.clone() {
            tokio::spawn(async move {
                let _ = input.write_all(text.as_bytes()).await;
                let _ = input.shutdown().await;
            });
        } else {
            drop(input);
        }
        let mut capture = Capture::new(&ctx);
        loop {
            tokio::select! {
                item = output.next() => match item {
                    Some(Ok(chunk)) => capture.push(chunk),
                    Some(Err(e)) => return Err(engine.error(e, &format!("reading the output of {what}"))),
                    None => break,
                },
                _ = ctx.cancel.cancelled() => {
                    stop_exec(&engine, &created.id, &spec.argv, &ctx).await;
                    return Err(StepError::cancelled());
                }
            }
        }
        let captured = capture.finish();
        let exit_code = exit_code(&engine, &created.id, &what, &ctx).await?;
        finish_process(&what, exit_code, &spec.expect_exit, captured)
    }
}

/// The exit code of a finished exec. The output can end a moment before the engine records
/// the exit, so a still-running answer is asked again for a short while.
async fn exit_code(
    engine: &Engine,
    id: &str,
    what: &str,
    ctx: &StepContext,
) -> Result<i64, StepError> {
    for _ in 0..100 {
        let inspected = tokio::select! {
            r = engine.api.inspect_exec(id) => r,
            _ = ctx.cancel.cancelled() => return Err(StepError::cancelled()),
        }
        .map_err(|e| engine.error(e, &format!("asking for the exit code of {what}")))?;
        if inspected.running != Some(true) {
            if let Some(code) = inspected.exit_code {
                return Ok(code);
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(50)) => {}
            _ = ctx.cancel.cancelled() => return Err(StepError::cancelled()),
        }
    }
    Err(StepError::new(format!(
        "{what} closed its output but the engine still reports it running"
    )))
}

/// The Docker API cannot stop an exec'd process. When the engine is on this machine and
/// the pid it reports is, in our process table, the command we started (not some other
/// process in another pid namespace), it gets SIGTERM, the grace period, then SIGKILL.
/// Otherwise it is left running, with a warning.
async fn stop_exec(engine: &Engine, id: &str, argv: &[String], ctx: &StepContext) {
    use nix::sys::signal::{kill, Signal};
    use nix::unistd::Pid;
    let pid = match engine.api.inspect_exec(id).await {
        Ok(i) if i.running == Some(true) => i.pid.unwrap_or(0),
        _ => return,
    };
    let expected: Vec<u8> = argv.iter().flat_map(|a| a.bytes().chain([0])).collect();
    let ours = engine.is_local()
        && pid > 0
        && std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| c == expected);
    if !ours {
        tracing::warn!(
            step = %ctx.step_id,
            "the command started by docker.exec may still run in the container: the Docker API cannot stop it"
        );
        return;
    }
    let pid = Pid::from_raw(pid as i32);
    let _ = kill(pid, Signal::SIGTERM);
    let gone = async {
        while kill(pid, None).is_ok() {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    let ended = tokio::select! {
        r = tokio::time::timeout(ctx.grace, gone) => r.is_ok(),
        _ = ctx.hurry.cancelled() => false,
    };
    if !ended {
        let _ = kill(pid, Signal::SIGKILL);
    }
}
