//! Docker step types, talking to the engine API through bollard (`DOCKER_HOST` honoured).
//!
//! What the types share lives here: the connection with its error sentences (an engine that
//! is not there, a socket we may not open, a container or image that does not exist), the
//! line-by-line capture of a container's output, exit-code checks and the wait for a
//! container to be running, healthy or stopped.

pub mod copy;
pub mod exec;
pub mod restart;
pub mod run;
pub mod start;
pub mod stop;
pub mod volume;

use super::{OutputDecl, StepContext, StepError, Stream};
use bollard::container::LogOutput;
use bollard::errors::Error as DockerError;
use bollard::Docker;
use futures::StreamExt;
use opsplan_plan::diagnostic::{Code, Diagnostic};
use opsplan_plan::source::Node;
use schemars::JsonSchema;
use serde::Deserialize;
use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Where Docker listens when `DOCKER_HOST` is not set.
const DEFAULT_HOST: &str = "unix:///var/run/docker.sock";
/// Calls that answer at once (inspect, create, start) fail after this long without an
/// answer, so a hung engine is reported instead of waited on forever.
const API_TIMEOUT: Duration = Duration::from_secs(120);
/// Calls whose answer comes only when the work is done (an upload's reply, a log stream)
/// are bounded by the step's own `timeout` and by cancel, not by the client.
const STREAM_TIMEOUT: Duration = Duration::from_secs(7 * 24 * 3600);
/// Bytes of stdout kept as an output; more is streamed to the log but not kept.
const KEEP_STDOUT: usize = 8 * 1024 * 1024;
/// Bytes of stderr kept (the last ones: the end of stderr explains a failure).
const KEEP_STDERR: usize = 1024 * 1024;
/// Lines of stderr (or of a container's log) quoted in an error message.
const TAIL_LINES: usize = 20;

/// A connection to one Docker engine, with what is needed to explain its failures.
#[derive(Clone)]
pub struct Engine {
    /// For calls that answer at once.
    pub api: Docker,
    /// For calls that last as long as the work (logs, wait, archive up- and downloads).
    pub streaming: Docker,
    /// The address, as the error messages name it.
    pub address: String,
    redact: Arc<opsplan_plan::template::Redactor>,
}

/// The engine address and whether it came from `DOCKER_HOST`.
pub fn engine_address() -> (String, bool) {
    match std::env::var("DOCKER_HOST") {
        Ok(h) if !h.trim().is_empty() => (h.trim().to_string(), true),
        _ => (DEFAULT_HOST.to_string(), false),
    }
}

impl Engine {
    /// Connects and agrees on an API version (the engine may be older than bollard), which
    /// also proves the engine is there before any work starts.
    pub async fn connect(ctx: &StepContext) -> Result<Engine, StepError> {
        let (host, from_env) = engine_address();
        let address = if from_env {
            format!("{host} (from DOCKER_HOST)")
        } else {
            host.clone()
        };
        let docker = Docker::connect_with_host(&host).map_err(|e| match e {
            DockerError::UnsupportedURISchemeError { .. } => StepError::fatal(format!(
                "DOCKER_HOST `{host}` is not an address this engine client speaks: use \
                 unix:///path/to/docker.sock, tcp://host:port or http://host:port"
            )),
            DockerError::SocketNotFoundError(_) => no_socket(&address),
            other => StepError::fatal(format!(
                "cannot use the Docker engine address {address}: {}",
                deepest(&other)
            )),
        })?;
        let engine = Engine {
            api: docker.clone().with_timeout(API_TIMEOUT),
            streaming: docker.with_timeout(STREAM_TIMEOUT),
            address,
            redact: ctx.redact.clone(),
        };
        let negotiated = tokio::select! {
            r = engine.api.clone().negotiate_version() => r,
            _ = ctx.cancel.cancelled() => return Err(StepError::cancelled()),
        };
        negotiated.map_err(|e| engine.error(e, "asking the Docker engine for its version"))?;
        Ok(engine)
    }

    /// Whether the engine is on this machine, so that pids it reports are ours to signal.
    pub fn is_local(&self) -> bool {
        engine_address().0.starts_with("unix://")
    }

    /// Turns a bollard error into a sentence naming the cause and the place. `doing` says
    /// what was being attempted ("starting container `x`").
    pub fn error(&self, e: DockerError, doing: &str) -> StepError {
        if let Some(kind) = io_kind(&e) {
            use std::io::ErrorKind;
            let address = &self.address;
            match kind {
                ErrorKind::NotFound => return no_socket(address),
                ErrorKind::ConnectionRefused => {
                    return StepError::new(format!(
                        "no Docker engine reachable at {address}: connection refused \
                         (is Docker running?)"
                    ))
                }
                ErrorKind::PermissionDenied => {
                    return StepError::fatal(format!(
                        "permission denied on the Docker socket {address}: run as root or as \
                         a member of the `docker` group"
                    ))
                }
                _ => {}
            }
        }
        match e {
            DockerError::RequestTimeoutError => StepError::new(format!(
                "{doing}: the Docker engine at {} did not answer within {}",
                self.address,
                humantime::format_duration(API_TIMEOUT)
            )),
            DockerError::DockerResponseServerError {
                status_code,
                message,
            } => self.server_error(status_code, &message, doing),
            other => StepError::new(format!(
                "{doing}: {} (Docker engine at {})",
                self.redact.redact(&deepest(&other)),
                self.address
            )),
        }
    }

    /// An error the engine answered with: not-found cases become their own sentences.
    fn server_error(&self, status: u16, message: &str, doing: &str) -> StepError {
        let message = self.redact.redact(message.trim()).into_owned();
        let lower = message.to_lowercase();
        if status == 404 {
            if let Some(name) = after(&message, "No such container:") {
                return StepError::fatal(format!(
                    "container `{name}` not found on the Docker engine at {} ({doing})",
                    self.address
                ));
            }
            if let Some(name) = after(&message, "No such image:") {
                return StepError::fatal(format!(
                    "image `{name}` not found on the Docker engine at {}: there is no registry \
                     to pull it from, so build it there (`docker build -t {name} …`) or load it \
                     (`docker load -i …`) first",
                    self.address
                ));
            }
            if lower.contains("no such volume") {
                return StepError::fatal(format!(
                    "{doing}: volume not found on the Docker engine at {} ({message})",
                    self.address
                ));
            }
            return StepError::fatal(format!("{doing}: not found: {message}"));
        }
        let retryable = status >= 500 && !lower.contains("permission denied");
        StepError {
            message: format!("{doing}: {message}"),
            retryable,
            outputs: None,
            answer: None,
        }
    }
}

fn no_socket(address: &str) -> StepError {
    StepError::new(format!(
        "no Docker engine reachable at {address}: the socket does not exist \
         (is Docker running, and does DOCKER_HOST name the right socket?)"
    ))
}

/// The text after `marker` in a Docker message ("No such container: x" -> "x").
fn after(message: &str, marker: &str) -> Option<String> {
    let lower = message.to_lowercase();
    let at = lower.find(&marker.to_lowercase())?;
    let rest = message[at + marker.len()..].trim();
    Some(rest.to_string()).filter(|r| !r.is_empty())
}

/// The innermost cause of an error chain: hyper's own message ("client error (Connect)")
/// says nothing, the OS error under it does.
fn deepest(e: &(dyn std::error::Error + 'static)) -> String {
    let mut current: &(dyn std::error::Error + 'static) = e;
    while let Some(next) = current.source() {
        current = next;
    }
    current.to_string()
}

fn io_kind(e: &(dyn std::error::Error + 'static)) -> Option<std::io::ErrorKind> {
    let mut current: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = current {
        if let Some(io) = err.downcast_ref::<std::io::Error>() {
            return Some(io.kind());
        }
        current = err.source();
    }
    None
}

/// Output of a process in a container, streamed line by line to the log (redacted) and
/// kept, bounded, for the step's outputs.
pub struct Capture {
    ctx: StepContext,
    partial: [Vec<u8>; 2],
    stdout: String,
    stdout_truncated: bool,
    stderr: VecDeque<String>,
    stderr_bytes: usize,
}

/// What a finished capture kept.
#[derive(Debug, Default)]
pub struct Captured {
    pub stdout: String,
    pub stderr: String,
    pub truncated: bool,
}

impl Captured {
    /// The last lines of stderr, for an error message (as printed: the engine masks error
    /// texts before it shows or stores them).
    pub fn stderr_tail(&self) -> String {
        let lines: Vec<&str> = self.stderr.lines().collect();
        lines[lines.len().saturating_sub(TAIL_LINES)..].join("\n")
    }
}

impl Capture {
    pub fn new(ctx: &StepContext) -> Self {
        Capture {
            ctx: ctx.clone(),
            partial: [Vec::new(), Vec::new()],
            stdout: String::new(),
            stdout_truncated: false,
            stderr: VecDeque::new(),
            stderr_bytes: 0,
        }
    }

    pub fn push(&mut self, output: LogOutput) {
        let (stream, bytes) = match output {
            LogOutput::StdErr { message } => (Stream::Stderr, message),
            LogOutput::StdOut { message } | LogOutput::Console { message } => {
                (Stream::Stdout, message)
            }
            LogOutput::StdIn { .. } => return,
        };
        let index = stream as usize;
        let mut pending = std::mem::take(&mut self.partial[index]);
        pending.extend_from_slice(&bytes);
        let mut start = 0;
        while let Some(pos) = pending[start..].iter().position(|b| *b == b'\n') {
            let end = start + pos;
            self.line(stream, &pending[start..end]);
            start = end + 1;
        }
        pending.drain(..start);
        self.partial[index] = pending;
    }

    fn line(&mut self, stream: Stream, bytes: &[u8]) {
        let text = String::from_utf8_lossy(bytes);
        // Logged masked, kept as printed: outputs feed later steps; the engine masks them
        // where it shows or stores them.
        let line = text.trim_end_matches('\r').to_string();
        (self.ctx.log)(stream, &self.ctx.redact.redact(&line));
        match stream {
            Stream::Stdout => {
                if !self.stdout_truncated && self.stdout.len() + line.len() < KEEP_STDOUT {
                    self.stdout.push_str(&line);
                    self.stdout.push('\n');
                } else {
                    self.stdout_truncated = true;
                }
            }
            Stream::Stderr => {
                self.stderr_bytes += line.len() + 1;
                self.stderr.push_back(line);
                while self.stderr_bytes > KEEP_STDERR {
                    match self.stderr.pop_front() {
                        Some(old) => self.stderr_bytes -= old.len() + 1,
                        None => break,
                    }
                }
            }
        }
    }

    pub fn finish(mut self) -> Captured {
        for stream in [Stream::Stdout, Stream::Stderr] {
            let rest = std::mem::take(&mut self.partial[stream as usize]);
            if !rest.is_empty() {
                self.line(stream, &rest);
            }
        }
        let mut stderr = String::new();
        for line in &self.stderr {
            stderr.push_str(line);
            stderr.push('\n');
        }
        Captured {
            stdout: self.stdout,
            stderr,
            truncated: self.stdout_truncated,
        }
    }
}

/// Outputs of a process that ran in a container.
pub const PROCESS_OUTPUTS: &[OutputDecl] = &[
    OutputDecl {
        name: "exit_code",
        description: "the exit code",
    },
    OutputDecl {
        name: "stdout",
        description: "standard output, trailing newline removed (first 8 MiB)",
    },
    OutputDecl {
        name: "stderr",
        description: "standard error, trailing newline removed (last 1 MiB)",
    },
];

/// Checks the exit code against the expected ones and builds the process outputs.
pub fn finish_process(
    what: &str,
    exit_code: i64,
    expect: &[i64],
    captured: Captured,
) -> Result<super::Outputs, StepError> {
    if !expect.contains(&exit_code) {
        let tail = captured.stderr_tail();
        let expected = expect
            .iter()
            .map(std::string::ToString::to_string)
            .collect::<Vec<_>>()
            .join(" or ");
        let mut message = format!("{what} exited with code {exit_code} (expected {expected})");
        match tail.lines().count() {
            0 => {}
            1 => message = format!("{message}: {tail}"),
            _ => message = format!("{message}; stderr:\n{tail}"),
        }
        return Err(StepError::new(message));
    }
    let mut outputs = super::Outputs::new();
    outputs.insert("exit_code".into(), exit_code.into());
    outputs.insert(
        "stdout".into(),
        captured.stdout.trim_end_matches('\n').into(),
    );
    outputs.insert(
        "stderr".into(),
        captured.stderr.trim_end_matches('\n').into(),
    );
    Ok(outputs)
}

pub fn default_exit() -> Vec<i64> {
    vec![0]
}

/// `KEY=value` pairs as the Docker API takes environment variables.
pub fn env_list(env: &BTreeMap<String, String>) -> Option<Vec<String>> {
    (!env.is_empty()).then(|| env.iter().map(|(k, v)| format!("{k}={v}")).collect())
}

/// Refuses a secret in a command line: it would show in `docker inspect` and in the
/// process table of the container and of the host.
pub fn refuse_secret_argv(argv: &[String], ctx: &StepContext) -> Result<(), StepError> {
    if argv.iter().any(|a| ctx.redact.holds_secret(a)) {
        return Err(StepError::fatal(
            "a secret value is in the command line, where `docker inspect` and the process \
             table show it; pass it through `env` instead",
        ));
    }
    Ok(())
}

pub fn parse_duration(s: &str, field: &str) -> Result<Duration, StepError> {
    humantime::parse_duration(s.trim())
        .map_err(|e| StepError::fatal(format!("bad duration `{s}` in `{field}`: {e}")))
}

/// A positioned E080 diagnostic on one field of `with`.
pub fn field_error(
    with: &Node,
    field: &str,
    message: String,
    label: &str,
    help: &str,
) -> Diagnostic {
    Diagnostic::new(Code::StepArgs, message)
        .label(with.get(field).map_or(with.span, |n| n.span), label)
        .help(help.to_string())
}

/// An empty-string check for a required name (container, image, volume).
pub fn check_name(with: &Node, field: &str, value: &str, example: &str) -> Option<Diagnostic> {
    value.trim().is_empty().then(|| {
        field_error(
            with,
            field,
            format!("`{field}` is empty"),
            "a name is needed here",
            &format!("give the {field} name, e.g. `{field}: {example}`"),
        )
    })
}

/// What `docker.start` and `docker.restart` wait for once the container was started:
/// `healthy` when it has a healthcheck (else running), `running`, or nothing.
#[derive(Debug, Clone, Copy, Default, Deserialize, JsonSchema, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum WaitFor {
    #[default]
    Healthy,
    Running,
    None,
}

impl WaitFor {
    pub fn describe(self, deadline: &str) -> String {
        match self {
            WaitFor::Healthy => format!(
                ", wait until healthy (or running without a healthcheck) for at most {deadline}"
            ),
            WaitFor::Running => format!(", wait until running for at most {deadline}"),
            WaitFor::None => String::new(),
        }
    }
}

/// The state a container was found in.
#[derive(Debug, Clone)]
pub struct Observed {
    pub running: bool,
    pub status: String,
    /// `None` without a healthcheck.
    pub health: Option<String>,
    pub exit_code: Option<i64>,
}

pub async fn observe(
    engine: &Engine,
    container: &str,
    ctx: &StepContext,
) -> Result<Observed, StepError> {
    let inspected = tokio::select! {
        r = engine.api.inspect_container(container, None) => r,
        _ = ctx.cancel.cancelled() => return Err(StepError::cancelled()),
    }
    .map_err(|e| engine.error(e, &format!("inspecting container `{container}`")))?;
    let state = inspected.state.unwrap_or_default();
    let health = state
        .health
        .and_then(|h| h.status)
        .map(|s| s.to_string())
        .filter(|s| !s.is_empty() && s != "none");
    Ok(Observed {
        running: state.running.unwrap_or(false),
        status: state.status.map(|s| s.to_string()).unwrap_or_default(),
        health,
        exit_code: state.exit_code,
    })
}

/// Polls the container until it is running (and healthy, when asked and it has a
/// healthcheck) or, with `stopped`, until it is not running; fails at the deadline or as
/// soon as a container that should come up has exited.
pub async fn wait_for_state(
    engine: &Engine,
    container: &str,
    want: WaitFor,
    stopped: bool,
    deadline: Duration,
    ctx: &StepContext,
) -> Result<Observed, StepError> {
    let started = Instant::now();
    let mut interval = Duration::from_millis(100);
    // Without a healthcheck, "up" means running across polls for STABLE_FOR: a process that
    // dies at once (bad config, missing volume) is then reported instead of passing.
    let mut running_since: Option<Instant> = None;
    loop {
        let seen = observe(engine, container, ctx).await?;
        if seen.running {
            running_since.get_or_insert_with(Instant::now);
        } else {
            running_since = None;
        }
        let stable = running_since.is_some_and(|t| t.elapsed() >= STABLE_FOR);
        let done = if stopped {
            !seen.running
        } else {
            match want {
                WaitFor::None => true,
                WaitFor::Running => seen.running && stable,
                WaitFor::Healthy => {
                    seen.running
                        && match seen.health.as_deref() {
                            Some(health) => health == "healthy",
                            None => stable,
                        }
                }
            }
        };
        if done {
            return Ok(seen);
        }
        if !stopped && matches!(seen.status.as_str(), "exited" | "dead") {
            let logs = log_tail(engine, container).await;
            let code = seen
                .exit_code
                .map(|c| format!(" with code {c}"))
                .unwrap_or_default();
            let mut message = format!("container `{container}` exited{code} instead of coming up");
            if !logs.is_empty() {
                message = format!("{message}; its last output:\n{logs}");
            }
            return Err(StepError::fatal(message));
        }
        if started.elapsed() >= deadline {
            let what = if stopped {
                "stopped".to_string()
            } else if want == WaitFor::Healthy && seen.health.is_some() {
                "healthy".to_string()
            } else {
                "running".to_string()
            };
            let health = seen
                .health
                .map(|h| format!(", health {h}"))
                .unwrap_or_default();
            return Err(StepError::fatal(format!(
                "container `{container}` is not {what} after {} (state {}{health})",
                humantime::format_duration(deadline),
                seen.status
            )));
        }
        tokio::select! {
            _ = tokio::time::sleep(interval.min(deadline.saturating_sub(started.elapsed()))) => {}
            _ = ctx.cancel.cancelled() => return Err(StepError::cancelled()),
        }
        interval = (interval * 2).min(STABLE_FOR / 2);
    }
}

/// How long a container without a healthcheck must stay running to count as up.
const STABLE_FOR: Duration = Duration::from_secs(1);

/// The last lines a container printed (for "exited instead of coming up"); empty when
/// they cannot be read.
async fn log_tail(engine: &Engine, container: &str) -> String {
    let options = bollard::query_parameters::LogsOptionsBuilder::default()
        .stdout(true)
        .stderr(true)
        .tail(&TAIL_LINES.to_string())
        .build();
    let mut stream = engine.api.logs(container, Some(options));
    let mut text = String::new();
    let read = async {
        while let Some(Ok(chunk)) = stream.next().await {
            text.push_str(&String::from_utf8_lossy(chunk.as_ref()));
        }
    };
    let _ = tokio::time::timeout(Duration::from_secs(5), read).await;
    engine.redact.redact(text.trim_end()).into_owned()
}

/// Output keys of `docker.start` and `docker.restart`.
pub const STATE_OUTPUTS: &[OutputDecl] = &[
    OutputDecl {
        name: "state",
        description: "the container's state at the end (`running`, …)",
    },
    OutputDecl {
        name: "health",
        description: "its health (`healthy`, `starting`, …) or `none` without a healthcheck",
    },
    OutputDecl {
        name: "waited_seconds",
        description: "seconds spent waiting for the state",
    },
];

pub fn state_outputs(seen: &Observed, waited: Duration) -> super::Outputs {
    let mut out = super::Outputs::new();
    out.insert("state".into(), seen.status.clone().into());
    out.insert(
        "health".into(),
        seen.health.clone().unwrap_or_else(|| "none".into()).into(),
    );
    out.insert("waited_seconds".into(), waited.as_secs().into());
    out
}
