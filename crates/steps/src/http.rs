//! `http`: one HTTP request with reqwest; the QuestDB `/exec` calls, health checks, APIs.
//!
//! Every request has a connect timeout and a total timeout (defaults
//! [`DEFAULT_CONNECT_TIMEOUT`] and [`DEFAULT_REQUEST_TIMEOUT`], per step `connect_timeout` and
//! `request_timeout`), so a server that accepts and never answers fails the attempt (which
//! `retry` may repeat) instead of hanging the run until the step's own `timeout`, if any.

use super::{Action, Answer, OutputDecl, Outputs, StepContext, StepError, StepType};
use schemars::JsonSchema;
use serde::Deserialize;
use std::collections::BTreeMap;

pub struct Http;

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HttpSpec {
    /// GET, POST, PUT, DELETE, PATCH or HEAD (default GET).
    #[serde(default = "default_method")]
    pub method: String,
    /// The URL, `http://` or `https://`.
    pub url: String,
    /// Query parameters, encoded for you.
    #[serde(default)]
    pub query: BTreeMap<String, String>,
    /// Request headers (a secret value is masked in previews and logs).
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// HTTP basic authentication (use a secret param for the password).
    #[serde(default)]
    pub basic_auth: Option<BasicAuth>,
    /// Bearer token (use a secret param).
    #[serde(default)]
    pub bearer: Option<String>,
    /// A text body.
    #[serde(default)]
    pub body: Option<String>,
    /// A JSON body (sets `Content-Type: application/json`).
    #[serde(default)]
    pub json: Option<serde_json::Value>,
    /// Status codes that count as success (default: any 2xx).
    #[serde(default)]
    pub expect_status: Vec<u16>,
    /// How long to wait for the TCP (and TLS) connection, e.g. `5s` (default 10s).
    #[serde(default)]
    pub connect_timeout: Option<String>,
    /// How long the whole request may take, from connecting to the last byte of the
    /// response, e.g. `30s` or `20m` for a slow admin call (default 5m). A request past it
    /// fails the attempt; `retry` may repeat it.
    #[serde(default)]
    pub request_timeout: Option<String>,
}

/// The connect timeout of a request without `connect_timeout`.
pub const DEFAULT_CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);
/// The total timeout of a request without `request_timeout`.
pub const DEFAULT_REQUEST_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(300);

impl HttpSpec {
    /// (connect, total) timeouts of the request: the step's, else the defaults.
    pub fn timeouts(&self) -> Result<(std::time::Duration, std::time::Duration), String> {
        let parse = |field: &str, text: &Option<String>, default| match text {
            None => Ok(default),
            Some(t) => opsplan_plan::fields::parse_duration(t)
                .map_err(|e| format!("bad `{field}` `{t}`: {e}")),
        };
        Ok((
            parse(
                "connect_timeout",
                &self.connect_timeout,
                DEFAULT_CONNECT_TIMEOUT,
            )?,
            parse(
                "request_timeout",
                &self.request_timeout,
                DEFAULT_REQUEST_TIMEOUT,
            )?,
        ))
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BasicAuth {
    /// The user name.
    pub username: String,
    /// The password (use a secret param).
    #[serde(default)]
    pub password: Option<String>,
}

fn default_method() -> String {
    "GET".into()
}

const METHODS: &[&str] = &["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD"];
const BODY_KEEP: usize = 1024 * 1024;

impl StepType for Http {
    const NAME: &'static str = "http";
    const SUMMARY: &'static str =
        "Send one HTTP request and check its status; the JSON response becomes an output.";
    type Spec = HttpSpec;

    fn outputs() -> &'static [OutputDecl] {
        &[
            OutputDecl {
                name: "status",
                description: "the response status code",
            },
            OutputDecl {
                name: "body",
                description: "the response body as text (first 1 MiB)",
            },
            OutputDecl {
                name: "json",
                description: "the body parsed as JSON, when it is JSON",
            },
        ]
    }
    fn check(
        spec: &HttpSpec,
        with: &opsplan_plan::source::Node,
    ) -> Vec<opsplan_plan::diagnostic::Diagnostic> {
        use opsplan_plan::diagnostic::{Code, Diagnostic};
        let mut diags = Vec::new();
        if !METHODS.contains(&spec.method.to_uppercase().as_str()) {
            diags.push(
                Diagnostic::new(
                    Code::StepArgs,
                    format!("unknown HTTP method `{}`", spec.method),
                )
                .label(
                    with.get("method").map_or(with.span, |n| n.span),
                    "not an HTTP method",
                )
                .help(format!("use one of {}", METHODS.join(", "))),
            );
        }
        let url_problem = match reqwest::Url::parse(&spec.url) {
            _ if opsplan_plan::source::de::is_template(&spec.url) => None,
            Ok(u) if matches!(u.scheme(), "http" | "https") => None,
            Ok(u) => Some(format!("scheme `{}` is not http or https", u.scheme())),
            Err(e) => Some(e.to_string()),
        };
        if let Some(problem) = url_problem {
            diags.push(
                Diagnostic::new(
                    Code::StepArgs,
                    format!("`{}` is not a valid URL: {problem}", spec.url),
                )
                .label(with.get("url").map_or(with.span, |n| n.span), "invalid URL")
                .help("write an absolute URL such as `http://localhost:9000/exec`"),
            );
        }
        for field in ["connect_timeout", "request_timeout"] {
            diags.extend(opsplan_plan::fields::check_duration_field(with, field));
        }
        if spec.body.is_some() && spec.json.is_some() {
            diags.push(
                Diagnostic::new(Code::StepArgs, "both `body` and `json` are set")
                    .label(
                        with.get("json").map_or(with.span, |n| n.span),
                        "second body",
                    )
                    .help("send either a text `body` or a `json` body"),
            );
        }
        diags
    }
    /// Rerun on resume: GET and HEAD change nothing on a well-behaved server.
    fn idempotent(spec: &HttpSpec) -> bool {
        matches!(spec.method.to_uppercase().as_str(), "GET" | "HEAD")
    }
    fn answers() -> &'static [opsplan_plan::step::AnswerField] {
        use opsplan_plan::step::AnswerField;
        &[AnswerField::Status, AnswerField::Output]
    }
    fn describe(spec: &HttpSpec) -> Action {
        let mut url = spec.url.clone();
        if !spec.query.is_empty() {
            let query: Vec<String> = spec.query.iter().map(|(k, v)| format!("{k}={v}")).collect();
            url = format!("{url}?{}", query.join("&"));
        }
        let mut s = format!("{} {url}", spec.method.to_uppercase());
        if let Some(auth) = &spec.basic_auth {
            s.push_str(&format!(" (basic auth as {})", auth.username));
        }
        if spec.bearer.is_some() {
            s.push_str(" (bearer token)");
        }
        Action::new(s)
    }
    async fn run(spec: HttpSpec, ctx: StepContext) -> Result<Outputs, StepError> {
        let method = reqwest::Method::from_bytes(spec.method.to_uppercase().as_bytes())
            .map_err(|_| StepError::fatal(format!("unknown HTTP method `{}`", spec.method)))?;
        let url = reqwest::Url::parse(&spec.url)
            .map_err(|e| StepError::fatal(format!("`{}` is not a valid URL: {e}", spec.url)))?;
        let (connect, total) = spec.timeouts().map_err(StepError::fatal)?;
        let client = reqwest::Client::builder()
            .connect_timeout(connect)
            .timeout(total)
            .build()
            .map_err(|e| StepError::fatal(format!("cannot set up the HTTP client: {e}")))?;
        let mut req = client.request(method, url.clone());
        if !spec.query.is_empty() {
            req = req.query(&spec.query);
        }
        for (k, v) in &spec.headers {
            req = req.header(k, v);
        }
        if let Some(auth) = &spec.basic_auth {
            req = req.basic_auth(&auth.username, auth.password.as_ref());
        }
        if let Some(token) = &spec.bearer {
            req = req.bearer_auth(token);
        }
        if let Some(body) = spec.body {
            req = req.body(body);
        }
        if let Some(json) = &spec.json {
            req = req.json(json);
        }
        let target = ctx.redact.redact(url.as_str()).into_owned();
        let response = tokio::select! {
            r = req.send() => r.map_err(|e| StepError::new(failed(&target, &e, connect, total)))?,
            _ = ctx.cancel.cancelled() => return Err(StepError::cancelled()),
        };
        let status = response.status().as_u16();
        let bytes = tokio::select! {
            r = response.bytes() => r.map_err(|e| StepError::new(if e.is_timeout() {
                failed(&target, &e, connect, total)
            } else {
                format!("reading the response of {target}: {e}")
            }))?,
            _ = ctx.cancel.cancelled() => return Err(StepError::cancelled()),
        };
        let text = String::from_utf8_lossy(&bytes[..bytes.len().min(BODY_KEEP)]).into_owned();
        let ok = if spec.expect_status.is_empty() {
            (200..300).contains(&status)
        } else {
            spec.expect_status.contains(&status)
        };
        if !ok {
            let body = ctx.redact.redact(text.trim()).into_owned();
            let body: String = body.chars().take(2000).collect();
            let retryable = status >= 500 || status == 429 || status == 408;
            return Err(StepError {
                message: format!("{target} answered {status}: {body}"),
                retryable,
                outputs: None,
                answer: Some(Answer {
                    exit_code: None,
                    status: Some(status),
                    output: text,
                }),
            });
        }
        let mut outputs = Outputs::new();
        outputs.insert("status".into(), status.into());
        if let Ok(json) = serde_json::from_slice::<serde_json::Value>(&bytes) {
            outputs.insert("json".into(), json);
        }
        outputs.insert("body".into(), text.into());
        Ok(outputs)
    }
}

/// Why a request failed, naming the timeout that ended it.
fn failed(
    target: &str,
    e: &reqwest::Error,
    connect: std::time::Duration,
    total: std::time::Duration,
) -> String {
    let show = |d| humantime::format_duration(d).to_string();
    if e.is_connect() && e.is_timeout() {
        format!(
            "cannot reach {target}: no connection within {} (connect_timeout)",
            show(connect)
        )
    } else if e.is_timeout() {
        format!(
            "no complete answer from {target} within {} (request_timeout)",
            show(total)
        )
    } else {
        format!("cannot reach {target}: {}", describe_error(e))
    }
}

/// reqwest's top-level message hides the cause (refused, DNS, TLS); name it.
fn describe_error(e: &reqwest::Error) -> String {
    let mut source: Option<&dyn std::error::Error> = Some(e);
    let mut last = e.to_string();
    while let Some(s) = source {
        last = s.to_string();
        source = s.source();
    }
    if e.is_timeout() {
        "timed out".into()
    } else {
        last
    }
}
