//! Child processes for `exec`, `shell`, `wait` and the tool-driving steps.
//!
//! Each child runs in its own process group so a timeout or cancel reaches everything it
//! started: SIGTERM to the group, the grace period, then SIGKILL. Output is streamed line by
//! line to the run log (secrets redacted) and kept, bounded, as the step's outputs.

use super::{Stream, StepContext, StepError};
use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Stdio;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWriteExt, BufReader};
use tokio::process::Command;

/// Bytes of stdout kept as an output; more is streamed to the log but not kept.
const KEEP_BYTES: usize = 8 * 1024 * 1024;
/// Lines of stderr kept for the error message.
const STDERR_TAIL_LINES: usize = 20;

#[derive(Debug, Default, Clone)]
pub struct ProcessSpec {
    pub argv: Vec<String>,
    pub env: BTreeMap<String, String>,
    pub cwd: Option<PathBuf>,
    pub stdin: Option<String>,
    /// Stream output lines to the log (off for probes that poll).
    pub echo: bool,
}

#[derive(Debug, Clone)]
pub struct ProcessResult {
    pub exit_code: i32,
    pub stdout: String,
    pub stderr: String,
    pub truncated: bool,
}

impl ProcessResult {
    /// The last lines of stderr, for an error message (already redacted).
    pub fn stderr_tail(&self) -> String {
        let lines: Vec<&str> = self.stderr.lines().collect();
        let start = lines.len().saturating_sub(STDERR_TAIL_LINES);
        lines[start..].join("\n")
    }
}

/// Runs a process to completion, or until the context is cancelled (then kills its group).
pub async fn run(spec: &ProcessSpec, ctx: &StepContext) -> Result<ProcessResult, StepError> {
    let Some((program, args)) = spec.argv.split_first() else {
        return Err(StepError::fatal("empty command"));
    };
    for arg in &spec.argv {
        if ctx.redact.contains_secret(arg) {
            return Err(StepError::fatal(
                "a secret value is in the command line, where any local user could read it \
                 in /proc; pass it through `env` or `stdin` instead",
            ));
        }
    }
    let mut cmd = Command::new(program);
    cmd.args(args)
        .envs(&spec.env)
        .envs(ctx.secret_env.iter().cloned())
        .stdin(if spec.stdin.is_some() { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    if let Some(cwd) = &spec.cwd {
        cmd.current_dir(cwd);
    }
    let mut child = cmd.spawn().map_err(|e| {
        let hint = match e.kind() {
            std::io::ErrorKind::NotFound => match &spec.cwd {
                Some(cwd) if !cwd.is_dir() => format!("working directory {} does not exist", cwd.display()),
                _ => format!("`{program}` was not found on PATH"),
            },
            std::io::ErrorKind::PermissionDenied => format!("`{program}` is not executable"),
            _ => e.to_string(),
        };
        StepError::fatal(format!("cannot start `{program}`: {hint}"))
    })?;
    let pgid = child.id().map(|id| Pid::from_raw(id as i32));

    if let (Some(input), Some(mut stdin)) = (spec.stdin.clone(), child.stdin.take()) {
        tokio::spawn(async move {
            let _ = stdin.write_all(input.as_bytes()).await;
        });
    }
    let out = tokio::spawn(collect(child.stdout.take(), Stream::Stdout, ctx.clone(), spec.echo));
    let err = tokio::spawn(collect(child.stderr.take(), Stream::Stderr, ctx.clone(), spec.echo));

    let status = tokio::select! {
        status = child.wait() => status.map_err(|e| StepError::new(format!("waiting for `{program}`: {e}")))?,
        _ = ctx.cancel.cancelled() => {
            terminate_group(pgid, &mut child, ctx.grace).await;
            out.abort();
            err.abort();
            return Err(StepError::cancelled());
        }
    };
    // A child that left a background process holding the pipes open must not hang us.
    let (stdout, truncated) = tokio::select! {
        r = out => r.unwrap_or_default(),
        _ = ctx.cancel.cancelled() => { terminate_group(pgid, &mut child, ctx.grace).await; return Err(StepError::cancelled()); }
    };
    let (stderr, _) = tokio::select! {
        r = err => r.unwrap_or_default(),
        _ = ctx.cancel.cancelled() => { terminate_group(pgid, &mut child, ctx.grace).await; return Err(StepError::cancelled()); }
    };
    let exit_code = status.code().unwrap_or_else(|| {
        use std::os::unix::process::ExitStatusExt;
        128 + status.signal().unwrap_or(0)
    });
    Ok(ProcessResult {
        exit_code,
        stdout,
        stderr,
        truncated,
    })
}

/// SIGTERM to the whole group, SIGKILL after the grace period; reaps the child.
async fn terminate_group(pgid: Option<Pid>, child: &mut tokio::process::Child, grace: std::time::Duration) {
    let Some(pgid) = pgid else { return };
    let _ = killpg(pgid, Signal::SIGTERM);
    let exited = tokio::time::timeout(grace, child.wait()).await.is_ok();
    // Whether or not the leader exited, members of its group may remain.
    if !exited || group_alive(pgid) {
        if !exited {
            tracing::warn!(pgid = pgid.as_raw(), "process group ignored SIGTERM; sending SIGKILL");
        }
        let _ = killpg(pgid, Signal::SIGKILL);
    }
    let _ = child.wait().await;
}

fn group_alive(pgid: Pid) -> bool {
    killpg(pgid, None).is_ok()
}

async fn collect<R: AsyncRead + Unpin>(
    reader: Option<R>,
    stream: Stream,
    ctx: StepContext,
    echo: bool,
) -> (String, bool) {
    let Some(reader) = reader else {
        return (String::new(), false);
    };
    let mut reader = BufReader::new(reader);
    let mut kept = String::new();
    let mut truncated = false;
    let mut buf = Vec::new();
    loop {
        buf.clear();
        match reader.read_until(b'\n', &mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(_) => {
                let text = String::from_utf8_lossy(&buf);
                let line = ctx.redact.redact(text.trim_end_matches(['\n', '\r'])).into_owned();
                if echo {
                    (ctx.log)(stream, &line);
                }
                if kept.len() + line.len() < KEEP_BYTES {
                    kept.push_str(&line);
                    kept.push('\n');
                } else {
                    truncated = true;
                }
            }
        }
    }
    (kept, truncated)
}
