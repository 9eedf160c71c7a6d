//! `wait`: poll a URL or a command until a condition holds, or fail at the deadline.
//! (COSMOS 7 restore: wait until QuestDB has consumed the `_restore` trigger file.)

use super::process::{self, ProcessSpec};
use super::{Action, OutputDecl, Outputs, StepContext, StepError, StepType};
use opsplan_plan::diagnostic::{Code, Diagnostic};
use schemars::JsonSchema;
use serde::Deserialize;
use std::time::{Duration, Instant};

pub struct Wait;

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WaitSpec {
    /// Poll this URL with GET…
    #[serde(default)]
    pub url: Option<String>,
    /// …or run this argv (no shell).
    #[serde(default)]
    pub command: Option<Vec<String>>,
    /// …or wait until this path exists (`exists: true`) or is gone (`exists: false`).
    #[serde(default)]
    pub path: Option<String>,
    /// With `path`: whether to wait for it to exist (default) or to disappear.
    #[serde(default = "yes")]
    pub exists: bool,
    /// With `url`: the status that ends the wait (default any 2xx).
    #[serde(default)]
    pub status: Option<u16>,
    /// With `command`: the exit code that ends the wait (default 0).
    #[serde(default)]
    pub exit_code: Option<i32>,
    /// The response or stdout must also contain this text.
    #[serde(default)]
    pub contains: Option<String>,
    /// Time between polls (default `2s`).
    #[serde(default = "default_interval")]
    pub interval: String,
    /// Give up after this long (default `5m`).
    #[serde(default = "default_deadline")]
    pub deadline: String,
}

fn yes() -> bool {
    true
}
fn default_interval() -> String {
    "2s".into()
}
fn default_deadline() -> String {
    "5m".into()
}

impl WaitSpec {
    fn probes(&self) -> usize {
        [
            self.url.is_some(),
            self.command.is_some(),
            self.path.is_some(),
        ]
        .iter()
        .filter(|b| **b)
        .count()
    }
}

impl StepType for Wait {
    const NAME: &'static str = "wait";
    const SUMMARY: &'static str =
        "Poll a URL, a command or a path until a condition holds, with an interval and a deadline.";
    type Spec = WaitSpec;

    fn outputs() -> &'static [OutputDecl] {
        &[
            OutputDecl {
                name: "polls",
                description: "how many probes were made",
            },
            OutputDecl {
                name: "waited_seconds",
                description: "time until the condition held",
            },
        ]
    }
    fn check(spec: &WaitSpec, with: &opsplan_plan::source::Node) -> Vec<Diagnostic> {
        let mut diags = Vec::new();
        if spec.probes() != 1 {
            diags.push(
                Diagnostic::new(Code::StepArgs, "`wait` needs exactly one of `url`, `command` and `path`")
                    .label(with.span, "what to poll?")
                    .help("e.g. `url: http://localhost:9000/status` or `path: /data/_restore` with `exists: false`"),
            );
        }
        for field in ["interval", "deadline"] {
            if let Some(d) = opsplan_plan::fields::check_duration_field(with, field) {
                diags.push(d);
            }
        }
        diags
    }
    /// Rerun on resume: a poll changes nothing.
    fn idempotent(_spec: &WaitSpec) -> bool {
        true
    }
    fn describe(spec: &WaitSpec) -> Action {
        let what = if let Some(url) = &spec.url {
            format!(
                "GET {url} answers {}",
                spec.status.map_or("2xx".into(), |s| s.to_string())
            )
        } else if let Some(cmd) = &spec.command {
            format!(
                "`{}` exits {}",
                super::shell_quote(cmd),
                spec.exit_code.unwrap_or(0)
            )
        } else {
            let path = spec.path.clone().unwrap_or_default();
            if spec.exists {
                format!("{path} exists")
            } else {
                format!("{path} is gone")
            }
        };
        let contains = spec
            .contains
            .as_ref()
            .map(|c| format!(" and contains {c:?}"))
            .unwrap_or_default();
        Action::new(format!(
            "wait until {what}{contains} (every {}, at most {})",
            spec.interval, spec.deadline
        ))
    }
    async fn run(spec: WaitSpec, ctx: StepContext) -> Result<Outputs, StepError> {
        let interval = parse(&spec.interval)?;
        let deadline = parse(&spec.deadline)?;
        let started = Instant::now();
        let client = reqwest::Client::new();
        let mut polls = 0u64;
        loop {
            polls += 1;
            match probe(&spec, &client, &ctx).await? {
                Ok(()) => {
                    let mut out = Outputs::new();
                    out.insert("polls".into(), polls.into());
                    out.insert("waited_seconds".into(), started.elapsed().as_secs().into());
                    return Ok(out);
                }
                Err(why) => {
                    if started.elapsed() + interval > deadline {
                        return Err(StepError::fatal(format!(
                            "condition not met after {} ({polls} polls); last: {why}",
                            humantime::format_duration(Duration::from_secs(
                                started.elapsed().as_secs()
                            ))
                        )));
                    }
                }
            }
            tokio::select! {
                _ = tokio::time::sleep(interval) => {}
                _ = ctx.cancel.cancelled() => return Err(StepError::cancelled()),
            }
        }
    }
}

fn parse(s: &str) -> Result<Duration, StepError> {
    humantime::parse_duration(s).map_err(|e| StepError::fatal(format!("bad duration `{s}`: {e}")))
}

/// One probe: Ok(Ok) when the condition holds, Ok(Err(why)) to poll again.
async fn probe(
    spec: &WaitSpec,
    client: &reqwest::Client,
    ctx: &StepContext,
) -> Result<Result<(), String>, StepError> {
    let contains = |text: &str| match &spec.contains {
        Some(c) if !text.contains(c.as_str()) => Err(format!("output does not contain {c:?}")),
        _ => Ok(()),
    };
    if let Some(url) = &spec.url {
        let resp = tokio::select! {
            r = client.get(url).timeout(Duration::from_secs(30)).send() => r,
            _ = ctx.cancel.cancelled() => return Err(StepError::cancelled()),
        };
        return Ok(match resp {
            Err(e) => Err(format!("{url}: {e}")),
            Ok(r) => {
                let status = r.status().as_u16();
                let ok = spec
                    .status
                    .map_or((200..300).contains(&status), |s| s == status);
                let body = r.text().await.unwrap_or_default();
                if ok {
                    contains(&body)
                } else {
                    Err(format!("{url} answered {status}"))
                }
            }
        });
    }
    if let Some(argv) = &spec.command {
        let result = process::run(
            &ProcessSpec {
                argv: argv.clone(),
                echo: false,
                ..Default::default()
            },
            ctx,
        )
        .await?;
        let want = spec.exit_code.unwrap_or(0);
        return Ok(if result.exit_code == want {
            contains(&result.stdout)
        } else {
            Err(format!(
                "exit code {} (waiting for {want}) {}",
                result.exit_code,
                result.stderr_tail()
            ))
        });
    }
    let path = spec.path.as_deref().unwrap_or_default();
    let exists = std::path::Path::new(path).exists();
    Ok(match (exists, spec.exists) {
        (true, true) | (false, false) => Ok(()),
        (false, true) => Err(format!("{path} does not exist yet")),
        (true, false) => Err(format!("{path} still exists")),
    })
}
