//! Child processes for `exec`, `shell`, `wait` and the tool-driving steps.
//!
//! Each child runs in its own process group so a timeout or cancel reaches everything it
//! started: SIGTERM to the group, the grace period, then SIGKILL. Output is streamed line by
//! line to the run log (secrets redacted) and kept, bounded and as printed, as the step's
//! outputs (the engine masks outputs where it shows or stores them, never where later
//! steps consume them).

use super::{StepContext, StepError, Stream};
use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Stdio;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWriteExt, BufReader};
use tokio::process::Command;

/// Bytes of stdout kept as an output; more is streamed to the log but not kept.
const KEEP_BYTES: usize = 8 * 1024 * 1024;
/// How long output is still read after the process exited, for what its background
/// processes may hold open.
const PIPE_DRAIN: std::time::Duration = std::time::Duration::from_secs(1);
/// Lines of stderr kept for the error message.
const STDERR_TAIL_LINES: usize = 20;

#[derive(Debug, Default, Clone)]
pub struct ProcessSpec {
    pub argv: Vec<String>,
    pub env: BTreeMap<String, String>,
    pub cwd: Option<PathBuf>,
    pub stdin: Option<String>,
    /// A file streamed to standard input instead of `stdin` (a database dump), never held
    /// in memory.
    pub stdin_file: Option<StdinFile>,
    /// Stream output lines to the log (off for probes that poll).
    pub echo: bool,
}

#[derive(Debug, Clone)]
pub struct StdinFile {
    pub path: PathBuf,
    /// Decompress gzip on the way (`zcat dump.gz | psql`).
    pub gunzip: bool,
}

/// Streams a file (optionally gunzipped) into a child's stdin on a blocking thread. A read
/// or decompression error is returned so the step fails even when the child, having seen
/// an early end of input, exits 0: a truncated dump must not pass as a restore.
fn feed_file(
    file: std::fs::File,
    input: &StdinFile,
    mut sink: std::io::PipeWriter,
) -> tokio::task::JoinHandle<Result<u64, String>> {
    let input = input.clone();
    tokio::task::spawn_blocking(move || {
        let reader = std::io::BufReader::with_capacity(1 << 20, file);
        let copied = if input.gunzip {
            std::io::copy(&mut flate2::read::MultiGzDecoder::new(reader), &mut sink)
        } else {
            std::io::copy(&mut { reader }, &mut sink)
        };
        copied.map_err(|e| {
            if e.kind() == std::io::ErrorKind::BrokenPipe {
                "the command stopped reading its input".to_string()
            } else if input.gunzip {
                format!(
                    "{} is not a complete gzip stream ({e})",
                    input.path.display()
                )
            } else {
                format!("reading {}: {e}", input.path.display())
            }
        })
    })
}

#[derive(Debug, Clone)]
pub struct ProcessResult {
    pub exit_code: i32,
    pub stdout: String,
    pub stderr: String,
    pub truncated: bool,
}

impl ProcessResult {
    /// The last lines of stderr, for an error message (as printed: the engine masks error
    /// texts before it shows or stores them).
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
        if ctx.redact.holds_secret(arg) {
            return Err(StepError::fatal(
                "a secret value is in the command line, where any local user could read it \
                 in /proc; pass it through `env` or `stdin` instead",
            ));
        }
    }
    let input_file = match &spec.stdin_file {
        Some(f) => Some(std::fs::File::open(&f.path).map_err(|e| {
            StepError::fatal(format!(
                "cannot read {} for `{program}`'s input: {e}",
                f.path.display()
            ))
        })?),
        None => None,
    };
    // A blocking pipe of our own for a streamed file: the writer end goes to a blocking
    // thread, the reader end is the child's stdin.
    let (stdin, pipe_writer) = match input_file.is_some() {
        true => {
            let (reader, writer) = std::io::pipe().map_err(|e| {
                StepError::new(format!("cannot create a pipe for `{program}`: {e}"))
            })?;
            (Stdio::from(reader), Some(writer))
        }
        false if spec.stdin.is_some() => (Stdio::piped(), None),
        false => (Stdio::null(), None),
    };
    let mut cmd = Command::new(program);
    cmd.args(args)
        .envs(&spec.env)
        .envs(ctx.secret_env.iter().cloned())
        .stdin(stdin)
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
                Some(cwd) if !cwd.is_dir() => {
                    format!("working directory {} does not exist", cwd.display())
                }
                _ => format!("`{program}` was not found on PATH"),
            },
            std::io::ErrorKind::PermissionDenied => format!("`{program}` is not executable"),
            _ => e.to_string(),
        };
        StepError::fatal(format!("cannot start `{program}`: {hint}"))
    })?;
    // The command holds our copy of a streamed file's pipe reader; without dropping it, a
    // child that exits early would leave the feeding thread blocked on a full pipe.
    drop(cmd);
    let pgid = child.id().map(|id| Pid::from_raw(id as i32));
    if let Some(id) = child.id() {
        (ctx.on_child)(id as i32);
    }

    let mut feeder = None;
    if let (Some(input), Some(mut stdin)) = (spec.stdin.clone(), child.stdin.take()) {
        tokio::spawn(async move {
            let _ = stdin.write_all(input.as_bytes()).await;
        });
    } else if let (Some(file), Some(f), Some(writer)) = (input_file, &spec.stdin_file, pipe_writer)
    {
        feeder = Some(feed_file(file, f, writer));
    }
    // Readers stop when the pipes close, or when told to (see below).
    let stop_reading = tokio_util::sync::CancellationToken::new();
    let out = tokio::spawn(collect(
        child.stdout.take(),
        Stream::Stdout,
        ctx.clone(),
        spec.echo,
        stop_reading.clone(),
    ));
    let err = tokio::spawn(collect(
        child.stderr.take(),
        Stream::Stderr,
        ctx.clone(),
        spec.echo,
        stop_reading.clone(),
    ));

    let status = tokio::select! {
        status = child.wait() => status.map_err(|e| StepError::new(format!("waiting for `{program}`: {e}")))?,
        _ = ctx.cancel.cancelled() => {
            terminate_group(pgid, &mut child, ctx.grace, &ctx.hurry).await;
            out.abort();
            err.abort();
            return Err(StepError::cancelled());
        }
    };
    // A child that left a background process holding the pipes open must not hang us: once
    // it exited, what it wrote is read within PIPE_DRAIN; then reading stops.
    let drained = async { (out.await.unwrap_or_default(), err.await.unwrap_or_default()) };
    tokio::pin!(drained);
    let drain_deadline = tokio::time::sleep(PIPE_DRAIN);
    tokio::pin!(drain_deadline);
    let mut stopped = false;
    let ((stdout, truncated), (stderr, _)) = loop {
        tokio::select! {
            r = &mut drained => break r,
            _ = &mut drain_deadline, if !stopped => {
                tracing::warn!(
                    step = %ctx.step_id,
                    "`{program}` exited, but processes it started still hold its output open; not waiting for them"
                );
                stopped = true;
                stop_reading.cancel();
            }
            _ = ctx.cancel.cancelled() => {
                stop_reading.cancel();
                terminate_group(pgid, &mut child, ctx.grace, &ctx.hurry).await;
                return Err(StepError::cancelled());
            }
        }
    };
    let exit_code = status.code().unwrap_or_else(|| {
        use std::os::unix::process::ExitStatusExt;
        128 + status.signal().unwrap_or(0)
    });
    if let Some(feeder) = feeder {
        match feeder.await {
            Ok(Ok(_)) => {}
            // The child's own failure explains a closed pipe better; it is reported as such.
            Ok(Err(_)) if exit_code != 0 => {}
            Ok(Err(e)) => {
                return Err(StepError::new(format!(
                    "`{program}` exited with {exit_code}, but its input was not fully sent: {e}"
                )))
            }
            Err(e) => return Err(StepError::new(format!("feeding `{program}`'s input: {e}"))),
        }
    }
    Ok(ProcessResult {
        exit_code,
        stdout,
        stderr,
        truncated,
    })
}

/// SIGTERM to the whole group, SIGKILL to whatever of it is left after the grace period
/// (at once when `hurry` is cancelled, before or during the wait); reaps the child.
async fn terminate_group(
    pgid: Option<Pid>,
    child: &mut tokio::process::Child,
    grace: std::time::Duration,
    hurry: &tokio_util::sync::CancellationToken,
) {
    let Some(pgid) = pgid else { return };
    let _ = killpg(pgid, Signal::SIGTERM);
    let deadline = tokio::time::Instant::now() + grace;
    // The grace period is for the whole group: a leader that exits at once (a shell) must
    // not cut short the clean shutdown of what it started.
    let ended = !hurry.is_cancelled() && {
        let settled = async {
            let _ = child.wait().await;
            while group_alive(pgid) {
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
        };
        tokio::select! {
            r = tokio::time::timeout_at(deadline, settled) => r.is_ok(),
            _ = hurry.cancelled() => false,
        }
    };
    if !ended {
        if !hurry.is_cancelled() {
            tracing::warn!(
                pgid = pgid.as_raw(),
                "process group still running after SIGTERM and the grace period; sending SIGKILL"
            );
        }
        let _ = killpg(pgid, Signal::SIGKILL);
    }
    let _ = child.wait().await;
}

/// Whether any process of the group still runs. Members that already exited but wait to be
/// reaped by their new parent (zombies, often under a container's init) do not count.
fn group_alive(pgid: Pid) -> bool {
    if killpg(pgid, None).is_err() {
        return false;
    }
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return true;
    };
    entries.flatten().any(|e| {
        let name = e.file_name();
        if !name
            .to_str()
            .is_some_and(|n| n.bytes().all(|b| b.is_ascii_digit()))
        {
            return false;
        }
        let Ok(stat) = std::fs::read_to_string(e.path().join("stat")) else {
            return false;
        };
        // `pid (comm) state ppid pgrp ...`; comm may hold spaces and parentheses.
        let Some((_, rest)) = stat.rsplit_once(')') else {
            return false;
        };
        let mut fields = rest.split_whitespace();
        let state = fields.next();
        let pgrp = fields.nth(1).and_then(|p| p.parse::<i32>().ok());
        pgrp == Some(pgid.as_raw()) && !matches!(state, Some("Z" | "X"))
    })
}

async fn collect<R: AsyncRead + Unpin>(
    reader: Option<R>,
    stream: Stream,
    ctx: StepContext,
    echo: bool,
    stop: tokio_util::sync::CancellationToken,
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
        let read = tokio::select! {
            r = reader.read_until(b'\n', &mut buf) => r,
            _ = stop.cancelled() => break,
        };
        match read {
            Ok(0) | Err(_) => break,
            Ok(_) => {
                let text = String::from_utf8_lossy(&buf);
                // The log shows the line masked; the output keeps it as printed, because
                // later steps consume outputs (a checksum must not be rewritten by masking).
                // The engine masks outputs where it shows or stores them.
                let line = text.trim_end_matches(['\n', '\r']).to_string();
                if echo {
                    (ctx.log)(stream, &ctx.redact.redact(&line));
                }
                // Once something was dropped, nothing more is kept: the output stays a prefix.
                if !truncated && kept.len() + line.len() < KEEP_BYTES {
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
