//! `pg.restore`: load a dump into PostgreSQL: archives (custom, directory, tar) through the
//! real `pg_restore`, plain SQL through `psql -f` with `ON_ERROR_STOP=1`.
//!
//! Before anything reaches the server the dump must exist and not be empty (the dop
//! procedure's "ensure that you have a database dump of the correct size"), because the
//! steps before a restore usually dropped the database it replaces. A gzip-compressed dump
//! (`dop-….dump.gz`) is decompressed to a temporary file first, as the procedure's `zcat`.

use super::{check_extra_args, check_jobs, program, rendered_jobs, size_of, Connection, Target};
use crate::process::{self, ProcessSpec};
use crate::{shell_quote, Action, OutputDecl, Outputs, StepContext, StepError, StepType};
use opsplan_plan::diagnostic::{Code, Diagnostic};
use opsplan_plan::source::Node;
use schemars::JsonSchema;
use serde::Deserialize;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

pub struct PgRestore;

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PgRestoreSpec {
    /// The server, database and role. With `create`, the database to connect to first
    /// (e.g. `postgres`): the archive's database is created and restored into.
    pub connection: Connection,
    /// The dump file, or directory for the `directory` format.
    pub input: String,
    /// `auto` (default: a directory is `directory`; a file is recognised by its header as
    /// custom, tar or plain SQL, also inside gzip), or `custom`, `directory`, `tar`, `plain`.
    #[serde(default)]
    pub format: RestoreFormat,
    /// Refuse a dump smaller than this many bytes (an empty dump is always refused).
    #[serde(default)]
    pub min_bytes: Option<u64>,
    /// Drop the archive's objects before recreating them (`--clean`). Destructive.
    #[serde(default)]
    pub clean: bool,
    /// Create the database named in the archive before restoring into it (`--create`);
    /// with `clean`, drop and recreate it. Destructive.
    #[serde(default)]
    pub create: bool,
    /// With `clean`: `DROP … IF EXISTS`, so missing objects are no error (`--if-exists`).
    #[serde(default)]
    pub if_exists: bool,
    /// Do not set object owners from the dump (`--no-owner`): the connecting role owns all.
    #[serde(default)]
    pub no_owner: bool,
    /// Parallel workers for custom and directory archives (`--jobs`).
    #[serde(default)]
    pub jobs: Option<u32>,
    /// Restore in one transaction: all or nothing (`--single-transaction`, for psql too).
    #[serde(default)]
    pub single_transaction: bool,
    /// Stop at the first error (default true; pg_restore's own default goes on and reports
    /// the errors at the end). Plain dumps always stop (`ON_ERROR_STOP=1`).
    #[serde(default = "yes")]
    pub exit_on_error: bool,
    /// Directory holding `pg_restore` and `psql`; default: from PATH.
    #[serde(default)]
    pub bin_dir: Option<String>,
    /// Further pg_restore (or psql, for plain dumps) options.
    #[serde(default)]
    pub extra_args: Vec<String>,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Clone, Copy, Default, Deserialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum RestoreFormat {
    #[default]
    Auto,
    Custom,
    Directory,
    Tar,
    Plain,
}

impl RestoreFormat {
    fn as_str(self) -> &'static str {
        match self {
            RestoreFormat::Auto => "auto",
            RestoreFormat::Custom => "custom",
            RestoreFormat::Directory => "directory",
            RestoreFormat::Tar => "tar",
            RestoreFormat::Plain => "plain",
        }
    }
}

impl PgRestoreSpec {
    /// Options that only pg_restore has, set in this spec.
    fn archive_only_options(&self) -> Vec<&'static str> {
        let mut v = Vec::new();
        for (on, name) in [
            (self.clean, "clean"),
            (self.create, "create"),
            (self.if_exists, "if_exists"),
            (self.no_owner, "no_owner"),
            (self.jobs.is_some(), "jobs"),
        ] {
            if on {
                v.push(name);
            }
        }
        v
    }

    fn pg_restore_argv(&self, database: &str, file: &Path, format: RestoreFormat) -> Vec<String> {
        let mut argv = vec![program(self.bin_dir.as_deref(), "pg_restore")];
        if format != RestoreFormat::Auto {
            argv.push(format!("--format={}", format.as_str()));
        }
        for (on, flag) in [
            (self.clean, "--clean"),
            (self.if_exists, "--if-exists"),
            (self.create, "--create"),
            (self.no_owner, "--no-owner"),
            (self.single_transaction, "--single-transaction"),
            (self.exit_on_error, "--exit-on-error"),
        ] {
            if on {
                argv.push(flag.into());
            }
        }
        if let Some(jobs) = self.jobs {
            argv.push(format!("--jobs={jobs}"));
        }
        argv.push("--no-password".into());
        argv.extend(self.extra_args.iter().cloned());
        argv.push(format!("--dbname={database}"));
        argv.push(file.display().to_string());
        argv
    }

    fn psql_argv(&self, file: &Path) -> Vec<String> {
        let mut argv = vec![
            program(self.bin_dir.as_deref(), "psql"),
            "--no-psqlrc".into(),
            "--quiet".into(),
            "--set=ON_ERROR_STOP=1".into(),
        ];
        if self.single_transaction {
            argv.push("--single-transaction".into());
        }
        argv.push("--no-password".into());
        argv.extend(self.extra_args.iter().cloned());
        argv.push(format!("--file={}", file.display()));
        argv
    }
}

impl StepType for PgRestore {
    const NAME: &'static str = "pg.restore";
    const SUMMARY: &'static str = "Restore a PostgreSQL dump: pg_restore for custom, directory and tar archives, psql for plain SQL; refuses a missing or empty dump.";
    type Spec = PgRestoreSpec;

    fn outputs() -> &'static [OutputDecl] {
        &[
            OutputDecl {
                name: "format",
                description: "the dump's format (detected with `format: auto`)",
            },
            OutputDecl {
                name: "bytes",
                description: "size of the dump read",
            },
            OutputDecl {
                name: "program",
                description: "`pg_restore` or `psql`",
            },
        ]
    }

    fn check(spec: &PgRestoreSpec, with: &Node) -> Vec<Diagnostic> {
        let mut diags = spec.connection.check(with);
        let at = |field: &str| with.get(field).map_or(with.span, |n| n.span);
        diags.extend(check_jobs(spec.jobs, with));
        if spec.format == RestoreFormat::Plain {
            for name in spec.archive_only_options() {
                diags.push(
                    Diagnostic::new(
                        Code::StepArgs,
                        format!("`{name}` does not apply to a plain SQL dump"),
                    )
                    .label(at(name), "a pg_restore option")
                    .help("a plain dump is run by psql as written; choose such options when dumping (pg_dump --clean / --create / --no-owner)"),
                );
            }
        }
        if spec.if_exists && !spec.clean {
            diags.push(
                Diagnostic::new(Code::StepArgs, "`if_exists` without `clean`")
                    .label(at("if_exists"), "only changes the DROPs of `clean`")
                    .help("set `clean: true` too, or drop `if_exists`"),
            );
        }
        if spec.single_transaction && spec.jobs.is_some_and(|j| j > 1) {
            diags.push(
                Diagnostic::new(
                    Code::StepArgs,
                    "`single_transaction` and parallel `jobs` exclude each other",
                )
                .label(at("jobs"), "parallel workers use their own transactions")
                .help("drop `jobs` or `single_transaction`"),
            );
        }
        if spec.input.trim().is_empty() {
            diags.push(
                Diagnostic::new(Code::StepArgs, "`input` is empty")
                    .label(at("input"), "which dump?")
                    .help("give the dump file (or directory), e.g. `/backup/dop.dump`"),
            );
        }
        diags.extend(check_extra_args(&spec.extra_args, with));
        diags
    }

    fn destructive(spec: &PgRestoreSpec) -> bool {
        spec.clean || spec.create
    }

    fn describe(spec: &PgRestoreSpec) -> Action {
        let input = Path::new(&spec.input);
        let target = spec.connection.display();
        let database = spec
            .connection
            .resolve()
            .map_or_else(|_| "?".into(), |t| t.database);
        let restore = format!(
            "$ {}",
            shell_quote(&spec.pg_restore_argv(&database, input, spec.format))
        );
        let psql = format!("$ {}", shell_quote(&spec.psql_argv(input)));
        let command = match spec.format {
            RestoreFormat::Plain => psql,
            RestoreFormat::Auto if spec.archive_only_options().is_empty() => {
                format!("{restore}, or for a plain SQL dump {psql}")
            }
            _ => restore,
        };
        let size = match spec.min_bytes {
            Some(n) => format!("at least {n} bytes"),
            None => "not empty".into(),
        };
        Action::new(format!(
            "restore into {target} after checking {} exists and is {size}: {command}",
            spec.input
        ))
    }

    async fn run(spec: PgRestoreSpec, ctx: StepContext) -> Result<Outputs, StepError> {
        // A templated `jobs` has its value only now.
        rendered_jobs(spec.jobs)?;
        if spec.single_transaction && spec.jobs.is_some_and(|j| j > 1) {
            return Err(StepError::fatal(
                "`single_transaction` and parallel `jobs` exclude each other (parallel workers use their own transactions): drop `jobs` or `single_transaction`",
            ));
        }
        let target = spec.connection.resolve()?;
        let input = PathBuf::from(&spec.input);
        let bytes = check_dump(&input, spec.min_bytes)?;
        let mut format = spec.format;
        let mut decompressed: Option<tempfile::TempPath> = None;
        if !input.is_dir() && is_gzip(&input)? {
            let temp = gunzip(&input, &ctx).await?;
            decompressed = Some(temp);
        }
        let file: PathBuf = decompressed
            .as_ref()
            .map_or_else(|| input.clone(), |t| t.to_path_buf());
        if format == RestoreFormat::Auto {
            format = detect(&file)?;
        }
        let (argv, program_name) = if format == RestoreFormat::Plain {
            let archive_only = spec.archive_only_options();
            if !archive_only.is_empty() {
                return Err(StepError::fatal(format!(
                    "{} is a plain SQL dump, which psql runs as written; {} only apply to \
                     archives (choose them when dumping instead)",
                    input.display(),
                    archive_only
                        .iter()
                        .map(|o| format!("`{o}`"))
                        .collect::<Vec<_>>()
                        .join(", ")
                )));
            }
            (spec.psql_argv(&file), "psql")
        } else {
            if format == RestoreFormat::Tar && spec.jobs.is_some_and(|j| j > 1) {
                return Err(StepError::fatal(format!(
                    "{} is a tar archive; pg_restore restores in parallel (`jobs`) only from \
                     custom and directory archives",
                    input.display()
                )));
            }
            (
                spec.pg_restore_argv(&target.database, &file, format),
                "pg_restore",
            )
        };
        let result = run_tool(&target, argv, &ctx).await;
        drop(decompressed);
        let result = result?;
        if result.exit_code != 0 {
            return Err(target.tool_error(program_name, &result));
        }
        let mut out = Outputs::new();
        out.insert("format".into(), format.as_str().into());
        out.insert("bytes".into(), bytes.into());
        out.insert("program".into(), program_name.into());
        Ok(out)
    }
}

async fn run_tool(
    target: &Target,
    argv: Vec<String>,
    ctx: &StepContext,
) -> Result<process::ProcessResult, StepError> {
    process::run(
        &ProcessSpec {
            argv,
            env: target.env(),
            echo: true,
            ..Default::default()
        },
        ctx,
    )
    .await
}

/// The dump's size, or why it must not be restored from.
fn check_dump(input: &Path, min_bytes: Option<u64>) -> Result<u64, StepError> {
    let shown = input.display();
    let meta = std::fs::metadata(input).map_err(|e| {
        StepError::fatal(match e.kind() {
            std::io::ErrorKind::NotFound => {
                format!("dump {shown} does not exist; refusing to restore")
            }
            std::io::ErrorKind::PermissionDenied => {
                format!("dump {shown} cannot be read: permission denied")
            }
            _ => format!("dump {shown}: {e}"),
        })
    })?;
    if meta.is_dir() {
        let toc = input.join("toc.dat");
        if std::fs::metadata(&toc).map_or(true, |m| m.len() == 0) {
            return Err(StepError::fatal(format!(
                "{shown} is a directory without a non-empty toc.dat: not a complete \
                 directory-format dump; refusing to restore"
            )));
        }
    }
    let bytes = size_of(input).map_err(|e| StepError::fatal(format!("dump {shown}: {e}")))?;
    if bytes == 0 {
        return Err(StepError::fatal(format!(
            "dump {shown} is empty (0 bytes); refusing to restore"
        )));
    }
    if let Some(min) = min_bytes {
        if bytes < min {
            return Err(StepError::fatal(format!(
                "dump {shown} has {bytes} bytes, less than the {min} expected (`min_bytes`); \
                 refusing to restore"
            )));
        }
    }
    Ok(bytes)
}

fn head(path: &Path, n: usize) -> Result<Vec<u8>, StepError> {
    let mut f = std::fs::File::open(path)
        .map_err(|e| StepError::fatal(format!("cannot read dump {}: {e}", path.display())))?;
    let mut buf = Vec::with_capacity(n);
    f.by_ref()
        .take(n as u64)
        .read_to_end(&mut buf)
        .map_err(|e| StepError::fatal(format!("cannot read dump {}: {e}", path.display())))?;
    Ok(buf)
}

fn is_gzip(path: &Path) -> Result<bool, StepError> {
    Ok(head(path, 2)?.starts_with(&[0x1f, 0x8b]))
}

/// The format from the header: `PGDMP` starts a custom archive, `ustar` at 257 marks tar.
fn detect(path: &Path) -> Result<RestoreFormat, StepError> {
    if path.is_dir() {
        return Ok(RestoreFormat::Directory);
    }
    let h = head(path, 512)?;
    Ok(if h.starts_with(b"PGDMP") {
        RestoreFormat::Custom
    } else if h.get(257..262) == Some(b"ustar") {
        RestoreFormat::Tar
    } else {
        RestoreFormat::Plain
    })
}

/// Decompresses a gzip dump to a temporary file (removed when dropped) next to it, or in
/// the system temp directory when that is not writable; stops when the step is cancelled.
async fn gunzip(input: &Path, ctx: &StepContext) -> Result<tempfile::TempPath, StepError> {
    let stop = Arc::new(AtomicBool::new(false));
    let shown = input.display().to_string();
    let input = input.to_path_buf();
    let flag = stop.clone();
    let work = tokio::task::spawn_blocking(move || -> Result<tempfile::TempPath, String> {
        let dir = input.parent().filter(|p| !p.as_os_str().is_empty());
        let temp = dir
            .and_then(|d| {
                tempfile::Builder::new()
                    .prefix(".opsplan-gunzip-")
                    .tempfile_in(d)
                    .ok()
            })
            .map_or_else(
                || {
                    tempfile::Builder::new()
                        .prefix("opsplan-gunzip-")
                        .tempfile()
                },
                Ok,
            )
            .map_err(|e| format!("cannot create a temporary file: {e}"))?;
        let (mut file, path) = temp.into_parts();
        let src = std::fs::File::open(&input).map_err(|e| e.to_string())?;
        let mut gz = flate2::read::MultiGzDecoder::new(std::io::BufReader::new(src));
        let mut buf = vec![0u8; 1 << 16];
        loop {
            if flag.load(Ordering::Relaxed) {
                return Err("cancelled".into());
            }
            let n = gz
                .read(&mut buf)
                .map_err(|e| format!("not valid gzip: {e}"))?;
            if n == 0 {
                break;
            }
            std::io::Write::write_all(&mut file, &buf[..n]).map_err(|e| e.to_string())?;
        }
        Ok(path)
    });
    tokio::select! {
        r = work => match r {
            Ok(Ok(path)) => Ok(path),
            Ok(Err(e)) => Err(StepError::fatal(format!("decompressing dump {shown}: {e}"))),
            Err(e) => Err(StepError::fatal(format!("decompressing dump {shown}: {e}"))),
        },
        _ = ctx.cancel.cancelled() => {
            stop.store(true, Ordering::Relaxed);
            Err(StepError::cancelled())
        }
    }
}
