//! Kubernetes step types, driving the kubectl binary (context, namespace, kubeconfig per step).
//!
//! Every type goes through kubectl rather than an API client: operators already have a
//! kubeconfig that works with it (exec credential plugins, proxies, OIDC), and the vendor
//! runbooks are written as kubectl commands, so what preview prints can be pasted into a shell.
//!
//! The connection fields are declared once, in [`k8s_spec!`], and spliced into each spec.
//! (serde's `flatten` would also share them, but it buffers the mapping: an unknown field
//! then loses its position and its did-you-mean, and a wrong type loses its path.)

pub mod exec;
pub mod job;
pub mod kubectl;
pub mod scale;
pub mod wait;

use super::process::{self, ProcessResult, ProcessSpec};
use super::{shell_quote, StepContext, StepError};
use opsplan_plan::diagnostic::{Code, Diagnostic};
use opsplan_plan::source::{Node, Span};
use std::path::Path;
use std::time::Duration;

/// Declares a spec struct with the connection fields (`kubectl`, `context`, `namespace`,
/// `kubeconfig`) appended, and a `connection()` accessor.
macro_rules! k8s_spec {
    (
        $(#[$meta:meta])*
        pub struct $name:ident {
            $( $(#[$fmeta:meta])* pub $field:ident : $ty:ty, )*
        }
    ) => {
        $(#[$meta])*
        pub struct $name {
            $( $(#[$fmeta])* pub $field: $ty, )*
            /// The kubectl binary: a name looked up on PATH, or a path. A param lets a plan
            /// pin the client version that matches the cluster.
            #[serde(default = "crate::k8s::default_kubectl")]
            pub kubectl: String,
            /// kubeconfig context (`--context`); without it, the kubeconfig's current context,
            /// which is whatever the operator last switched to: plans should pass it.
            #[serde(default)]
            pub context: Option<String>,
            /// Namespace (`--namespace`); without it, the context's namespace.
            #[serde(default)]
            pub namespace: Option<String>,
            /// kubeconfig file (`--kubeconfig`); without it, `$KUBECONFIG` or `~/.kube/config`.
            #[serde(default)]
            pub kubeconfig: Option<String>,
        }

        impl $name {
            pub fn connection(&self) -> $crate::k8s::Connection {
                // An empty value (a param left at its `""` default) means "not set".
                let set = |v: &Option<String>| v.clone().filter(|s| !s.trim().is_empty());
                $crate::k8s::Connection {
                    kubectl: self.kubectl.clone(),
                    context: set(&self.context),
                    namespace: set(&self.namespace),
                    kubeconfig: set(&self.kubeconfig),
                }
            }
        }
    };
}
pub(crate) use k8s_spec;

pub fn default_kubectl() -> String {
    "kubectl".into()
}

/// Where kubectl commands go.
#[derive(Debug, Clone, Default)]
pub struct Connection {
    pub kubectl: String,
    pub context: Option<String>,
    pub namespace: Option<String>,
    pub kubeconfig: Option<String>,
}

impl Connection {
    /// The full argv: binary, connection flags, then `args`.
    pub fn argv(&self, args: &[String]) -> Vec<String> {
        let mut argv = vec![self.kubectl.clone()];
        if let Some(k) = &self.kubeconfig {
            argv.push(format!("--kubeconfig={k}"));
        }
        if let Some(c) = &self.context {
            argv.push(format!("--context={c}"));
        }
        if let Some(n) = &self.namespace {
            argv.push(format!("--namespace={n}"));
        }
        argv.extend(args.iter().cloned());
        argv
    }

    /// The command as preview prints it.
    pub fn preview(&self, args: &[String]) -> String {
        format!("$ {}", shell_quote(&self.argv(args)))
    }

    /// `namespace `x`, context `y``, for messages.
    pub fn place(&self) -> String {
        let ns = match &self.namespace {
            Some(n) => format!("namespace `{n}`"),
            None => "the context's namespace".to_string(),
        };
        format!("{ns}, {}", self.context_text())
    }

    fn context_text(&self) -> String {
        let mut s = match &self.context {
            Some(c) => format!("context `{c}`"),
            None => "current context".to_string(),
        };
        if let Some(k) = &self.kubeconfig {
            s.push_str(&format!(" of {k}"));
        }
        s
    }

    /// Fails unless the binary exists, naming where it was looked for: the spawn error alone
    /// ("No such file or directory") does not say which PATH was searched.
    fn locate(&self) -> Result<(), StepError> {
        let bin = &self.kubectl;
        if bin.contains('/') {
            return if Path::new(bin).is_file() {
                Ok(())
            } else {
                Err(StepError::fatal(format!(
                    "kubectl not found: {bin} does not exist; set `kubectl:` to the path of the kubectl binary"
                )))
            };
        }
        let path = std::env::var_os("PATH").unwrap_or_default();
        if std::env::split_paths(&path).any(|d| is_executable(&d.join(bin))) {
            return Ok(());
        }
        Err(StepError::fatal(format!(
            "kubectl not found: no executable `{bin}` in PATH ({}); install kubectl or set `kubectl:` to its path",
            path.to_string_lossy()
        )))
    }

    /// Runs kubectl; a non-zero exit is returned, not an error.
    pub async fn run(
        &self,
        ctx: &StepContext,
        args: &[String],
        stdin: Option<String>,
        echo: bool,
    ) -> Result<ProcessResult, StepError> {
        self.locate()?;
        process::run(
            &ProcessSpec {
                argv: self.argv(args),
                stdin,
                echo,
                ..Default::default()
            },
            ctx,
        )
        .await
    }

    /// Runs kubectl with a file streamed to its stdin; a non-zero exit is returned.
    pub async fn run_with_file(
        &self,
        ctx: &StepContext,
        args: &[String],
        file: process::StdinFile,
        echo: bool,
    ) -> Result<ProcessResult, StepError> {
        self.locate()?;
        process::run(
            &ProcessSpec {
                argv: self.argv(args),
                stdin_file: Some(file),
                echo,
                ..Default::default()
            },
            ctx,
        )
        .await
    }

    /// Runs kubectl and requires exit code 0; otherwise a classified error.
    pub async fn ok(
        &self,
        ctx: &StepContext,
        args: &[String],
        stdin: Option<String>,
        echo: bool,
    ) -> Result<ProcessResult, StepError> {
        let result = self.run(ctx, args, stdin, echo).await?;
        if result.exit_code == 0 {
            Ok(result)
        } else {
            Err(self.failure(ctx, args, &result))
        }
    }

    /// `kubectl <args> -o json`, parsed.
    pub async fn get_json(
        &self,
        ctx: &StepContext,
        args: &[String],
    ) -> Result<serde_json::Value, StepError> {
        let mut args = args.to_vec();
        args.extend(["-o".to_string(), "json".to_string()]);
        let result = self.ok(ctx, &args, None, false).await?;
        serde_json::from_str(&result.stdout).map_err(|e| {
            StepError::fatal(format!(
                "`{}` printed output that is not JSON ({e})",
                shell_quote(&self.argv(&args))
            ))
        })
    }

    /// The error for a failed kubectl call: the common causes as sentences that name the
    /// server, context and namespace; anything else quotes kubectl's stderr.
    pub fn failure(&self, ctx: &StepContext, args: &[String], result: &ProcessResult) -> StepError {
        let stderr = ctx.redact.redact(&result.stderr).into_owned();
        match classify(&stderr) {
            Some(Failure::Unreachable { server, reason }) => {
                let at = server.map(|s| format!(" at {s}")).unwrap_or_default();
                StepError::new(format!(
                    "cannot reach the Kubernetes API server{at} ({}): {reason}",
                    self.context_text()
                ))
            }
            Some(Failure::NotFound { kind, name }) => {
                StepError::fatal(format!("{kind} {name} not found in {}", self.place()))
            }
            Some(Failure::Forbidden(msg)) => StepError::fatal(format!(
                "permission denied by the Kubernetes API ({}): {msg}",
                self.context_text()
            )),
            Some(Failure::Unauthorized(msg)) => StepError::fatal(format!(
                "the Kubernetes API server rejected the credentials of {}: {msg}",
                self.context_text()
            )),
            Some(Failure::NoContext(name)) => StepError::fatal(format!(
                "kubeconfig{} has no context `{name}`",
                self.kubeconfig
                    .as_ref()
                    .map(|k| format!(" {k}"))
                    .unwrap_or_default()
            )),
            None => {
                let tail = tail_lines(&stderr, 20);
                let mut message = format!(
                    "`{}` exited with code {}",
                    shell_quote(&self.argv(args)),
                    result.exit_code
                );
                match tail.lines().count() {
                    0 => {}
                    1 => message = format!("{message}: {tail}"),
                    _ => message = format!("{message}; stderr:\n{tail}"),
                }
                StepError::new(message)
            }
        }
    }
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata()
        .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// The last `n` lines of a text.
pub fn tail_lines(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// A kubectl failure recognised from its stderr.
#[derive(Debug, PartialEq)]
pub enum Failure {
    Unreachable {
        server: Option<String>,
        reason: String,
    },
    NotFound {
        kind: String,
        name: String,
    },
    Forbidden(String),
    Unauthorized(String),
    NoContext(String),
}

/// Recognises kubectl's texts for the failures a plan author must tell apart.
pub fn classify(stderr: &str) -> Option<Failure> {
    for line in stderr.lines().rev() {
        let line = line.trim();
        // "The connection to the server 127.0.0.1:6443 was refused - did you specify ...?"
        if let Some(rest) = line.strip_prefix("The connection to the server ") {
            let server = rest.split_whitespace().next().map(str::to_string);
            return Some(Failure::Unreachable {
                server,
                reason: "connection refused".into(),
            });
        }
        // "Unable to connect to the server: dial tcp: lookup x on y: no such host"
        if let Some(reason) = line.strip_prefix("Unable to connect to the server: ") {
            return Some(Failure::Unreachable {
                server: server_url(stderr),
                reason: reason.to_string(),
            });
        }
        // Error from server (NotFound): deployments.apps "x" not found
        if let Some(rest) = line.strip_prefix("Error from server (NotFound): ") {
            if let Some((resource, name)) = rest
                .strip_suffix(" not found")
                .and_then(|r| r.split_once(' '))
            {
                return Some(Failure::NotFound {
                    kind: singular(resource),
                    name: name.trim_matches('"').to_string(),
                });
            }
        }
        if let Some(rest) = line.strip_prefix("Error from server (Forbidden): ") {
            return Some(Failure::Forbidden(rest.to_string()));
        }
        if line.contains("(Unauthorized)") {
            let msg = line
                .trim_start_matches("error: ")
                .trim_start_matches("Error: ");
            return Some(Failure::Unauthorized(msg.to_string()));
        }
        if let Some(name) = line
            .strip_prefix("Error in configuration: context was not found for specified context: ")
            .or_else(|| {
                line.strip_prefix("error: context \"")
                    .and_then(|r| r.strip_suffix("\" does not exist"))
            })
        {
            return Some(Failure::NoContext(name.to_string()));
        }
    }
    None
}

/// The API server URL kubectl mentions in its client-side log lines (`Get "https://…/api`).
fn server_url(stderr: &str) -> Option<String> {
    let start = stderr
        .find("Get \\\"")
        .map(|i| i + 6)
        .or_else(|| stderr.find("Get \"").map(|i| i + 5))?;
    let rest = &stderr[start..];
    let end = rest.find(['"', '\\'])?;
    let url = &rest[..end];
    Some(url.split("/api").next().unwrap_or(url).to_string())
}

/// `deployments.apps` -> `deployment`, `pods` -> `pod`.
fn singular(resource: &str) -> String {
    let plural = resource.split('.').next().unwrap_or(resource);
    plural.strip_suffix('s').unwrap_or(plural).to_string()
}

/// The workload kinds `k8s.scale` handles, by their canonical (kubectl singular) name.
pub fn scalable_kind(kind: &str) -> Option<&'static str> {
    match kind.to_ascii_lowercase().as_str() {
        "deployment" | "deployments" | "deploy" | "deployment.apps" | "deployments.apps" => {
            Some("deployment")
        }
        "statefulset" | "statefulsets" | "sts" | "statefulset.apps" | "statefulsets.apps" => {
            Some("statefulset")
        }
        _ => None,
    }
}

/// Splits `kind/name`.
pub fn split_ref(text: &str) -> Option<(&str, &str)> {
    let (kind, name) = text.split_once('/')?;
    (!kind.is_empty() && !name.is_empty() && !name.contains('/')).then_some((kind, name))
}

/// A name pattern with glob characters, which selects by listing then matching.
pub fn is_glob(name: &str) -> bool {
    name.contains(['*', '?', '['])
}

/// Parses a duration argument (already checked by `check`, so this only guards templates).
pub fn duration(field: &str, text: &str) -> Result<Duration, StepError> {
    humantime::parse_duration(text.trim())
        .map_err(|e| StepError::fatal(format!("bad duration `{text}` in `{field}`: {e}")))
}

/// kubectl's `--timeout` value for a duration (whole seconds, at least one).
pub fn timeout_arg(d: Duration) -> String {
    format!("--timeout={}s", d.as_secs().max(1))
}

/// E080 at `field` of `with` (or at `with` itself).
pub fn arg_error(with: &Node, field: &str, message: &str, label: &str, help: &str) -> Diagnostic {
    let span = with.get(field).map_or(with.span, |n| n.span);
    arg_error_at(span, message, label, help)
}

pub fn arg_error_at(span: Span, message: &str, label: &str, help: &str) -> Diagnostic {
    Diagnostic::new(Code::StepArgs, message)
        .label(span, label)
        .help(help)
}

/// Whether a string is still a template (validation) or a preview placeholder.
pub fn pending(text: &str) -> bool {
    opsplan_plan::source::de::is_template(text)
        || text.contains(opsplan_plan::template::PLACEHOLDER_OPEN)
}

/// Waits `interval`, or returns `cancelled` when the step is cancelled.
pub async fn pause(ctx: &StepContext, interval: Duration) -> Result<(), StepError> {
    tokio::select! {
        _ = tokio::time::sleep(interval) => Ok(()),
        _ = ctx.cancel.cancelled() => Err(StepError::cancelled()),
    }
}

/// A context for work that must finish even though the step was cancelled (putting replica
/// counts back, deleting a job): a fresh token, the same log and redaction.
pub fn uncancelled(ctx: &StepContext) -> StepContext {
    let mut c = ctx.clone();
    c.cancel = tokio_util::sync::CancellationToken::new();
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_real_kubectl_texts() {
        let refused = "E1121 22:03:55.924753 memcache.go:265] \"Unhandled Error\" err=\"couldn't get current server API group list: Get \\\"https://127.0.0.1:1/api?timeout=32s\\\": dial tcp 127.0.0.1:1: connect: connection refused\"\nThe connection to the server 127.0.0.1:1 was refused - did you specify the right host or port?\n";
        assert_eq!(
            classify(refused),
            Some(Failure::Unreachable {
                server: Some("127.0.0.1:1".into()),
                reason: "connection refused".into()
            })
        );
        let dns = "E1121 memcache.go:265] err=\"couldn't get current server API group list: Get \\\"https://nohost.invalid:6443/api?timeout=32s\\\": dial tcp: lookup nohost.invalid: no such host\"\nUnable to connect to the server: dial tcp: lookup nohost.invalid: no such host\n";
        assert_eq!(
            classify(dns),
            Some(Failure::Unreachable {
                server: Some("https://nohost.invalid:6443".into()),
                reason: "dial tcp: lookup nohost.invalid: no such host".into()
            })
        );
        assert_eq!(
            classify("Error from server (NotFound): deployments.apps \"web\" not found\n"),
            Some(Failure::NotFound {
                kind: "deployment".into(),
                name: "web".into()
            })
        );
        assert_eq!(
            classify("Error in configuration: context was not found for specified context: nope\n"),
            Some(Failure::NoContext("nope".into()))
        );
        assert_eq!(classify("error: something else\n"), None);
    }

    #[test]
    fn refs_and_kinds() {
        assert_eq!(split_ref("deploy/a"), Some(("deploy", "a")));
        assert_eq!(split_ref("a"), None);
        assert_eq!(split_ref("a/b/c"), None);
        assert_eq!(scalable_kind("sts"), Some("statefulset"));
        assert_eq!(scalable_kind("Deployment"), Some("deployment"));
        assert_eq!(scalable_kind("job"), None);
    }
}
