//! PostgreSQL: `sql` through tokio-postgres, `pg.dump` / `pg.restore` through the real client
//! binaries. The three share one `connection:` block, resolved here into a [`Target`] that
//! both the driver ([`Target::pg_config`]) and the binaries ([`Target::env`]) use, so a plan's
//! connection means the same server, user and database for all of them.
//!
//! The connection is a nested mapping rather than fields flattened into each spec: serde's
//! `flatten` buffers its input, which loses positions and `deny_unknown_fields`.

pub mod dump;
pub mod restore;
pub mod sql;

use super::process::ProcessResult;
use super::{StepContext, StepError};
use opsplan_plan::diagnostic::{Code, Diagnostic};
use opsplan_plan::source::de::is_template;
use opsplan_plan::source::Node;
use schemars::JsonSchema;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Where and as whom to connect. Either the separate fields or a `dsn`; fields given next to a
/// `dsn` override its parts.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Connection {
    /// Server host name or IP address, or a Unix socket directory (a path starting with `/`).
    /// Default `localhost`.
    #[serde(default)]
    pub host: Option<String>,
    /// Server port (default 5432).
    #[serde(default)]
    pub port: Option<u16>,
    /// Role to connect as. Required unless the `dsn` names it.
    #[serde(default)]
    pub user: Option<String>,
    /// Database to connect to (default: the user name, as libpq does).
    #[serde(default)]
    pub database: Option<String>,
    /// The role's password: a secret param (`"{{ params.db_password }}"`), never a literal.
    /// It reaches the server through the protocol and the client binaries through
    /// `PGPASSWORD`, never a command line.
    #[serde(default)]
    pub password: Option<String>,
    /// `disable`, `prefer` (default) or `require`. The `sql` step has no TLS: with `prefer`
    /// it connects without, `require` is refused. `pg.dump`/`pg.restore` pass it to libpq
    /// (`PGSSLMODE`), which honours all three.
    #[serde(default)]
    pub sslmode: Option<SslMode>,
    /// How long to wait for the server to accept the connection (default `10s`).
    #[serde(default)]
    pub connect_timeout: Option<String>,
    /// A libpq connection string or URI without a password, e.g.
    /// `postgres://dop@db.internal:5432/dop` or `host=db user=dop dbname=dop`.
    #[serde(default)]
    pub dsn: Option<String>,
}

#[derive(Debug, Clone, Copy, Deserialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum SslMode {
    Disable,
    Prefer,
    Require,
}

impl SslMode {
    fn as_str(self) -> &'static str {
        match self {
            SslMode::Disable => "disable",
            SslMode::Prefer => "prefer",
            SslMode::Require => "require",
        }
    }
}

const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// A connection with every default applied: what the step actually connects to.
#[derive(Debug, Clone)]
pub struct Target {
    pub host: String,
    pub port: u16,
    pub user: String,
    pub database: String,
    pub password: Option<String>,
    pub sslmode: SslMode,
    pub connect_timeout: Duration,
}

impl Connection {
    /// Applies the `dsn` and the defaults; fails (fatally) on what validation could not see
    /// because it was a template.
    pub fn resolve(&self) -> Result<Target, StepError> {
        let mut host = None;
        let mut port = None;
        let mut user = None;
        let mut database = None;
        let mut sslmode = None;
        let mut timeout = None;
        if let Some(dsn) = &self.dsn {
            let config: tokio_postgres::Config = dsn.parse().map_err(|e| {
                StepError::fatal(format!("`connection.dsn` is not a connection string: {e}"))
            })?;
            if config.get_password().is_some() {
                return Err(StepError::fatal(
                    "`connection.dsn` contains a password; give it in `connection.password` \
                     from a secret param instead",
                ));
            }
            match config.get_hosts() {
                [] => {}
                [one] => {
                    host = Some(match one {
                        tokio_postgres::config::Host::Tcp(h) => h.clone(),
                        tokio_postgres::config::Host::Unix(p) => p.display().to_string(),
                    });
                }
                _ => {
                    return Err(StepError::fatal(
                        "`connection.dsn` lists several hosts; give exactly one",
                    ))
                }
            }
            port = config.get_ports().first().copied();
            user = config.get_user().map(str::to_string);
            database = config.get_dbname().map(str::to_string);
            timeout = config.get_connect_timeout().copied();
            sslmode = match config.get_ssl_mode() {
                tokio_postgres::config::SslMode::Disable => Some(SslMode::Disable),
                tokio_postgres::config::SslMode::Require => Some(SslMode::Require),
                _ => None,
            };
        }
        let user = self.user.clone().or(user).ok_or_else(|| {
            StepError::fatal("the connection names no user; set `connection.user`")
        })?;
        let connect_timeout = match &self.connect_timeout {
            Some(t) => humantime::parse_duration(t.trim()).map_err(|e| {
                StepError::fatal(format!(
                    "bad duration `{t}` in `connection.connect_timeout`: {e}"
                ))
            })?,
            None => timeout.unwrap_or(DEFAULT_TIMEOUT),
        };
        Ok(Target {
            host: self
                .host
                .clone()
                .or(host)
                .unwrap_or_else(|| "localhost".into()),
            port: self.port.or(port).unwrap_or(5432),
            database: self.database.clone().or(database).unwrap_or(user.clone()),
            user,
            password: self.password.clone().filter(|p| !p.is_empty()),
            sslmode: self.sslmode.or(sslmode).unwrap_or(SslMode::Prefer),
            connect_timeout,
        })
    }

    /// `user@host:port/database` for previews, from what is known before the run; never the
    /// password.
    pub fn display(&self) -> String {
        match self.resolve() {
            Ok(t) => {
                let tls = match t.sslmode {
                    SslMode::Prefer => String::new(),
                    mode => format!("?sslmode={}", mode.as_str()),
                };
                format!("{}@{}/{}{tls}", t.user, t.place(), t.database)
            }
            Err(_) => match &self.dsn {
                Some(dsn) => dsn.clone(),
                None => format!(
                    "{}@{}:{}/{}",
                    self.user.as_deref().unwrap_or("?"),
                    self.host.as_deref().unwrap_or("localhost"),
                    self.port.unwrap_or(5432),
                    self.database.as_deref().unwrap_or("?")
                ),
            },
        }
    }

    /// Positioned checks of the `connection` block (`with.connection`).
    pub fn check(&self, with: &Node) -> Vec<Diagnostic> {
        let mut diags = Vec::new();
        let Some(node) = with.get("connection") else {
            return diags;
        };
        let at = |field: &str| node.get(field).map_or(node.span, |n| n.span);
        if let Some(d) = opsplan_plan::fields::check_duration_field(node, "connect_timeout") {
            diags.push(d);
        } else if let Some(t) = node.get("connect_timeout").filter(|n| n.as_str().is_none()) {
            // A bare number is read as a string by serde but is no duration.
            diags.push(
                Diagnostic::new(
                    Code::BadDuration,
                    format!("bad duration `{}` in `connect_timeout`", t.scalar_text()),
                )
                .label(t.span, "not a duration")
                .help(format!(
                    "a duration needs a unit, e.g. `{}s`",
                    t.scalar_text()
                )),
            );
        }
        if let Some(pw) = &self.password {
            if !pw.is_empty() && !is_template(pw) && !pw.contains('⟨') && !pw.contains("****") {
                diags.push(
                    Diagnostic::new(Code::StepArgs, "the password is written into the plan")
                        .label(at("password"), "a literal password")
                        .help(
                            "declare a secret param (`db_password: {type: secret, env: \
                             DB_PASSWORD}`) and write `password: \"{{ params.db_password }}\"`",
                        ),
                );
            }
        }
        match &self.dsn {
            Some(dsn) if !is_template(dsn) => match dsn.parse::<tokio_postgres::Config>() {
                Err(e) => diags.push(
                    Diagnostic::new(
                        Code::StepArgs,
                        format!("`dsn` is not a connection string: {e}"),
                    )
                    .label(at("dsn"), "cannot be parsed")
                    .help("write a URI `postgres://user@host:5432/db` or `host=h user=u dbname=d`"),
                ),
                Ok(c) if c.get_password().is_some() => diags.push(
                    Diagnostic::new(Code::StepArgs, "the `dsn` contains a password")
                        .label(at("dsn"), "password inside the connection string")
                        .help(
                            "remove it from the dsn and set `password:` from a secret param, \
                             so it is masked and kept out of command lines",
                        ),
                ),
                Ok(c) if c.get_user().is_none() && self.user.is_none() => {
                    diags.push(no_user(node.span));
                }
                Ok(_) => {}
            },
            Some(_) => {}
            None if self.user.is_none() => diags.push(no_user(node.span)),
            None => {}
        }
        diags
    }
}

fn no_user(span: opsplan_plan::source::Span) -> Diagnostic {
    Diagnostic::new(Code::StepArgs, "the connection names no user")
        .label(span, "as whom to connect?")
        .help("set `user:` (or name it in the `dsn`)")
}

impl Target {
    /// `host:port`, or the socket path for a Unix socket directory: where errors say it failed.
    pub fn place(&self) -> String {
        if self.host.starts_with('/') {
            format!("{}/.s.PGSQL.{}", self.host.trim_end_matches('/'), self.port)
        } else if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }

    pub fn pg_config(&self) -> tokio_postgres::Config {
        let mut c = tokio_postgres::Config::new();
        c.host(&self.host)
            .port(self.port)
            .user(&self.user)
            .dbname(&self.database)
            .application_name("opsplan")
            .connect_timeout(self.connect_timeout)
            .ssl_mode(match self.sslmode {
                SslMode::Disable => tokio_postgres::config::SslMode::Disable,
                SslMode::Prefer => tokio_postgres::config::SslMode::Prefer,
                SslMode::Require => tokio_postgres::config::SslMode::Require,
            });
        if let Some(pw) = &self.password {
            c.password(pw);
        }
        c
    }

    /// The libpq environment for pg_dump, pg_restore and psql. Everything is set explicitly
    /// so a `PG*` variable inherited by opsplan cannot point a child at another server.
    pub fn env(&self) -> BTreeMap<String, String> {
        let mut env = BTreeMap::new();
        env.insert("PGHOST".into(), self.host.clone());
        env.insert("PGPORT".into(), self.port.to_string());
        env.insert("PGUSER".into(), self.user.clone());
        env.insert("PGDATABASE".into(), self.database.clone());
        env.insert("PGSSLMODE".into(), self.sslmode.as_str().into());
        env.insert(
            "PGCONNECT_TIMEOUT".into(),
            self.connect_timeout.as_secs().max(2).to_string(),
        );
        env.insert("PGAPPNAME".into(), "opsplan".into());
        // An empty PGPASSWORD hides a ~/.pgpass entry; only set it when there is one.
        if let Some(pw) = &self.password {
            env.insert("PGPASSWORD".into(), pw.clone());
        }
        env
    }

    /// Turns a driver error into a sentence naming the cause and the server; never the
    /// password (server texts are redacted too).
    pub fn error(&self, e: &tokio_postgres::Error, ctx: &StepContext) -> StepError {
        let place = self.place();
        if let Some(db) = e.as_db_error() {
            let msg = ctx.redact.redact(db.message()).into_owned();
            return match db.code().code() {
                "28P01" => StepError::fatal(format!(
                    "password authentication failed for user {} at {place}",
                    self.user
                )),
                "28000" => StepError::fatal(format!(
                    "PostgreSQL at {place} refused user {}: {msg}",
                    self.user
                )),
                "3D000" => StepError::fatal(format!(
                    "database \"{}\" does not exist at {place}",
                    self.database
                )),
                "57P03" | "53300" => StepError::new(format!(
                    "PostgreSQL at {place} cannot take the connection now: {msg}"
                )),
                code => StepError::fatal(format!(
                    "PostgreSQL at {place} refused the connection: {msg} (SQLSTATE {code})"
                )),
            };
        }
        let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
        while let Some(s) = source {
            if let Some(io) = s.downcast_ref::<std::io::Error>() {
                let why = match io.kind() {
                    std::io::ErrorKind::ConnectionRefused => "connection refused".to_string(),
                    std::io::ErrorKind::TimedOut => format!(
                        "no answer within {}",
                        humantime::format_duration(self.connect_timeout)
                    ),
                    std::io::ErrorKind::NotFound if self.host.starts_with('/') => {
                        "no server socket there".to_string()
                    }
                    _ => io.to_string(),
                };
                return StepError::new(format!("cannot reach PostgreSQL at {place}: {why}"));
            }
            source = s.source();
        }
        let text = ctx.redact.redact(&e.to_string()).into_owned();
        if text.contains("password missing") {
            return StepError::fatal(format!(
                "PostgreSQL at {place} asks for a password for user {}, but \
                 `connection.password` is not set",
                self.user
            ));
        }
        if text.contains("error connecting") || text.contains("error performing TLS") {
            return StepError::new(format!("cannot connect to PostgreSQL at {place}: {text}"));
        }
        StepError::new(format!("PostgreSQL at {place}: {text}"))
    }

    /// Classifies a failed pg_dump / pg_restore / psql from its stderr (libpq's messages),
    /// keeping the program's own words after the sentence.
    pub fn tool_error(&self, program: &str, result: &ProcessResult) -> StepError {
        let place = self.place();
        let tail = result.stderr_tail();
        let detail = if tail.is_empty() {
            format!("`{program}` exited with code {}", result.exit_code)
        } else {
            format!("`{program}` exited with code {}: {tail}", result.exit_code)
        };
        let lower = tail.to_lowercase();
        if lower.contains("password authentication failed") {
            StepError::fatal(format!(
                "password authentication failed for user {} at {place} ({detail})",
                self.user
            ))
        } else if lower.contains("no password supplied") {
            StepError::fatal(format!(
                "PostgreSQL at {place} asks for a password for user {}, but \
                 `connection.password` is not set ({detail})",
                self.user
            ))
        } else if lower.contains("connection refused")
            || lower.contains("could not connect")
            || lower.contains("timeout expired")
            || lower.contains("could not translate host name")
        {
            StepError::new(format!("cannot reach PostgreSQL at {place} ({detail})"))
        } else if lower.contains(&format!("database \"{}\" does not exist", self.database)) {
            StepError::fatal(format!(
                "database \"{}\" does not exist at {place} ({detail})",
                self.database
            ))
        } else {
            StepError::new(detail)
        }
    }
}

/// The path of a client binary: `bin_dir/name`, or the name for a PATH lookup.
pub fn program(bin_dir: Option<&str>, name: &str) -> String {
    match bin_dir {
        Some(dir) if !dir.is_empty() => Path::new(dir).join(name).display().to_string(),
        _ => name.to_string(),
    }
}

const JOBS_HELP: &str = "give the number of parallel jobs, at least 1, or leave `jobs` out";

/// Positioned check that `jobs` is at least 1. A templated `jobs` has no value yet (it
/// decodes as 0 before rendering): [`rendered_jobs`] checks it before the tool starts.
pub fn check_jobs(jobs: Option<u32>, with: &Node) -> Option<Diagnostic> {
    (jobs == Some(0) && !jobs_templated(with)).then(|| {
        Diagnostic::new(Code::StepArgs, "`jobs` is 0")
            .label(with.get("jobs").map_or(with.span, |n| n.span), "no workers")
            .help(JOBS_HELP)
    })
}

/// `jobs: "{{ … }}"`: judged after rendering.
pub fn jobs_templated(with: &Node) -> bool {
    opsplan_plan::step::templated(with, "jobs")
}

/// The rules of [`check_jobs`] on the rendered value, for a templated `jobs`.
pub fn rendered_jobs(jobs: Option<u32>) -> Result<(), StepError> {
    if jobs == Some(0) {
        return Err(StepError::fatal(format!("`jobs` is 0: {JOBS_HELP}")));
    }
    Ok(())
}

/// Positioned check of `extra_args`: options only, so the target cannot be changed behind
/// the typed fields' back.
pub fn check_extra_args(args: &[String], with: &Node) -> Vec<Diagnostic> {
    let node = with.get("extra_args");
    args.iter()
        .enumerate()
        .filter(|(_, a)| !a.starts_with('-') && !is_template(a))
        .map(|(i, a)| {
            let span = node
                .and_then(|n| n.at_path(&i.to_string()))
                .or(node)
                .map_or(with.span, |n| n.span);
            Diagnostic::new(Code::StepArgs, format!("`{a}` in `extra_args` is not an option"))
                .label(span, "not starting with `-`")
                .help("`extra_args` takes options such as `--no-privileges`; the database and files have their own fields")
        })
        .collect()
}

/// A sibling of `path` to write into before the rename that publishes it, so a cancelled or
/// failed run never leaves a half-written file under the final name.
pub fn temp_sibling(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "dump".into());
    let suffix: u32 = rand::random();
    path.with_file_name(format!(".{name}.opsplan-{suffix:08x}.partial"))
}

/// Total size of a file, or of every file under a directory.
pub fn size_of(path: &Path) -> std::io::Result<u64> {
    let meta = std::fs::metadata(path)?;
    if !meta.is_dir() {
        return Ok(meta.len());
    }
    let mut total = 0;
    for entry in walkdir::WalkDir::new(path) {
        let entry = entry.map_err(std::io::Error::other)?;
        if entry.file_type().is_file() {
            total += entry.metadata().map_err(std::io::Error::other)?.len();
        }
    }
    Ok(total)
}

/// Removes a file or directory, ignoring "already gone".
pub fn remove_any(path: &Path) {
    let _ = if path.is_dir() {
        std::fs::remove_dir_all(path)
    } else {
        std::fs::remove_file(path)
    };
}
