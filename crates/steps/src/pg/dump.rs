//! `pg.dump`: one database through the real `pg_dump`, so the archive is exactly what
//! `pg_restore` and psql expect, whatever the server version's details.
//!
//! pg_dump writes to a hidden sibling of the destination that is renamed into place only
//! after it exited 0: a failed or cancelled dump never leaves a file that looks like a
//! backup.

use super::{
    check_extra_args, check_jobs, program, remove_any, rendered_jobs, size_of, temp_sibling,
    Connection,
};
use crate::process::{self, ProcessSpec};
use crate::{shell_quote, Action, OutputDecl, Outputs, StepContext, StepError, StepType};
use opsplan_plan::diagnostic::{Code, Diagnostic};
use opsplan_plan::source::Node;
use schemars::JsonSchema;
use serde::Deserialize;
use std::path::{Path, PathBuf};

pub struct PgDump;

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PgDumpSpec {
    /// The server, database and role; the database is the one dumped.
    pub connection: Connection,
    /// The dump file, or the directory for `format: directory`.
    pub output: String,
    /// `custom` (default; compressed, for pg_restore), `plain` (SQL for psql), `directory`
    /// (one file per table, allows `jobs`) or `tar`.
    #[serde(default)]
    pub format: DumpFormat,
    /// Dump only these schemas (`--schema`, patterns as pg_dump takes them).
    #[serde(default)]
    pub schemas: Vec<String>,
    /// Leave these schemas out (`--exclude-schema`).
    #[serde(default)]
    pub exclude_schemas: Vec<String>,
    /// Dump only these tables (`--table`).
    #[serde(default)]
    pub tables: Vec<String>,
    /// Leave these tables out (`--exclude-table`).
    #[serde(default)]
    pub exclude_tables: Vec<String>,
    /// Parallel workers, `directory` format only (`--jobs`).
    #[serde(default)]
    pub jobs: Option<u32>,
    /// Replace an existing dump at `output` (after the new one is complete). Off by default:
    /// a dump that would overwrite an older one fails instead, and with it on the step is
    /// destructive.
    #[serde(default)]
    pub overwrite: bool,
    /// Directory holding `pg_dump` (e.g. `/usr/lib/postgresql/15/bin`); default: from PATH.
    /// pg_dump must be at least as new as the server.
    #[serde(default)]
    pub bin_dir: Option<String>,
    /// Further pg_dump options, e.g. `[--no-owner, --no-privileges]`.
    #[serde(default)]
    pub extra_args: Vec<String>,
}

#[derive(Debug, Clone, Copy, Default, Deserialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum DumpFormat {
    #[default]
    Custom,
    Plain,
    Directory,
    Tar,
}

impl DumpFormat {
    pub fn as_str(self) -> &'static str {
        match self {
            DumpFormat::Custom => "custom",
            DumpFormat::Plain => "plain",
            DumpFormat::Directory => "directory",
            DumpFormat::Tar => "tar",
        }
    }
}

impl PgDumpSpec {
    /// pg_dump's argv, writing to `file`.
    fn argv(&self, file: &Path) -> Vec<String> {
        let mut argv = vec![
            program(self.bin_dir.as_deref(), "pg_dump"),
            format!("--format={}", self.format.as_str()),
            format!("--file={}", file.display()),
        ];
        if let Some(jobs) = self.jobs {
            argv.push(format!("--jobs={jobs}"));
        }
        let lists = [
            ("--schema", &self.schemas),
            ("--exclude-schema", &self.exclude_schemas),
            ("--table", &self.tables),
            ("--exclude-table", &self.exclude_tables),
        ];
        for (flag, values) in lists {
            argv.extend(values.iter().map(|v| format!("{flag}={v}")));
        }
        argv.push("--no-password".into());
        argv.extend(self.extra_args.iter().cloned());
        argv
    }
}

impl StepType for PgDump {
    const NAME: &'static str = "pg.dump";
    const SUMMARY: &'static str =
        "Dump a PostgreSQL database with pg_dump (custom, plain, directory or tar format) to a file or directory.";
    type Spec = PgDumpSpec;

    fn outputs() -> &'static [OutputDecl] {
        &[
            OutputDecl {
                name: "path",
                description: "the dump file or directory",
            },
            OutputDecl {
                name: "bytes",
                description: "size of the dump (all files, for `directory`)",
            },
            OutputDecl {
                name: "format",
                description: "the dump format",
            },
        ]
    }

    fn check(spec: &PgDumpSpec, with: &Node) -> Vec<Diagnostic> {
        let mut diags = spec.connection.check(with);
        diags.extend(check_jobs(spec.jobs, with));
        if spec.jobs.is_some_and(|j| j > 1) && spec.format != DumpFormat::Directory {
            diags.push(
                Diagnostic::new(
                    Code::StepArgs,
                    format!(
                        "`jobs` needs `format: directory` (format is {})",
                        spec.format.as_str()
                    ),
                )
                .label(with.get("jobs").map_or(with.span, |n| n.span), "parallel dump")
                .help("pg_dump dumps in parallel only into a directory; set `format: directory` or drop `jobs`"),
            );
        }
        if spec.output.trim().is_empty() {
            diags.push(
                Diagnostic::new(Code::StepArgs, "`output` is empty")
                    .label(
                        with.get("output").map_or(with.span, |n| n.span),
                        "where to?",
                    )
                    .help("give the dump file (or directory), e.g. `/backup/dop.dump`"),
            );
        }
        diags.extend(check_extra_args(&spec.extra_args, with));
        diags
    }

    fn destructive(spec: &PgDumpSpec) -> bool {
        spec.overwrite
    }

    fn describe(spec: &PgDumpSpec) -> Action {
        let argv = spec.argv(Path::new(&spec.output));
        let mut s = format!(
            "$ {}  (from {}{})",
            shell_quote(&argv),
            spec.connection.display(),
            if spec.connection.password.is_some() {
                ", password via PGPASSWORD"
            } else {
                ""
            }
        );
        if spec.overwrite {
            s.push_str(", replacing an existing dump");
        }
        Action::new(s)
    }

    async fn run(spec: PgDumpSpec, ctx: StepContext) -> Result<Outputs, StepError> {
        // A templated `jobs` has its value only now.
        rendered_jobs(spec.jobs)?;
        if spec.jobs.is_some_and(|j| j > 1) && spec.format != DumpFormat::Directory {
            return Err(StepError::fatal(format!(
                "`jobs` is {} but pg_dump dumps in parallel only into a directory (format is {}): set `format: directory` or drop `jobs`",
                spec.jobs.unwrap_or_default(),
                spec.format.as_str()
            )));
        }
        let target = spec.connection.resolve()?;
        let output = PathBuf::from(&spec.output);
        if output.exists() && !spec.overwrite {
            return Err(StepError::fatal(format!(
                "{} already exists; refusing to overwrite a dump (set `overwrite: true` to replace it)",
                output.display()
            )));
        }
        if let Some(parent) = output.parent().filter(|p| !p.as_os_str().is_empty()) {
            if !parent.is_dir() {
                return Err(StepError::fatal(format!(
                    "cannot write {}: directory {} does not exist",
                    output.display(),
                    parent.display()
                )));
            }
        }
        let temp = temp_sibling(&output);
        let argv = spec.argv(&temp);
        let program = argv[0].clone();
        let result = process::run(
            &ProcessSpec {
                argv,
                env: target.env(),
                echo: true,
                ..Default::default()
            },
            &ctx,
        )
        .await;
        let result = match result {
            Ok(r) => r,
            Err(e) => {
                remove_any(&temp);
                return Err(e);
            }
        };
        if result.exit_code != 0 {
            remove_any(&temp);
            return Err(target.tool_error(&program, &result));
        }
        let publish = || -> std::io::Result<u64> {
            let bytes = size_of(&temp)?;
            if spec.overwrite && output.is_dir() {
                std::fs::remove_dir_all(&output)?;
            }
            std::fs::rename(&temp, &output)?;
            Ok(bytes)
        };
        let bytes = publish().map_err(|e| {
            remove_any(&temp);
            StepError::fatal(format!(
                "pg_dump finished but {} could not be put in place: {e}",
                output.display()
            ))
        })?;
        let mut out = Outputs::new();
        out.insert("path".into(), output.display().to_string().into());
        out.insert("bytes".into(), bytes.into());
        out.insert("format".into(), spec.format.as_str().into());
        Ok(out)
    }
}
