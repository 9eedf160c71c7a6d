//! `opsplan plans` (the shipped plans: list, show, export, diff), the plan argument every
//! command shares (a path, or a shipped plan's name), and `validate PLAN --params FILE…`.
//! The work is in `opsplan_plan::library` and `opsplan_plan::params_file`; this prints.

use super::{print_diagnostics, OutputFormat};
use clap::{Args, Subcommand};
use opsplan_plan::diagnostic::{self, Diagnostic, Severity};
use opsplan_plan::library::{self, Entry};
use opsplan_plan::source::Sources;
use opsplan_plan::step::Registry;
use opsplan_plan::{params_file, pipeline};
use opsplan_run::exit;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// `opsplan plans`: the plans this binary ships.
#[derive(Args)]
#[command(after_help = super::examples::PLANS)]
pub(super) struct PlansCli {
    #[command(subcommand)]
    action: Option<PlansAction>,
    /// text (a table) or json.
    #[arg(short = 'o', long, global = true, value_enum, default_value_t = OutputFormat::Text)]
    format: OutputFormat,
}

#[derive(Subcommand)]
enum PlansAction {
    /// Print a shipped plan or fragment as shipped.
    #[command(after_help = super::examples::PLANS_SHOW)]
    Show {
        /// The shipped plan's name (`cosmos7/backup`).
        name: String,
    },
    /// Write an editable copy of a shipped plan into DIR (DIR/<file>, and <file>.origin, the
    /// base `plans diff` compares with); the copy's first line records its origin.
    #[command(after_help = super::examples::PLANS_EXPORT)]
    Export {
        /// The shipped plan's name (`cosmos7/backup`).
        name: String,
        /// The folder the copy is written into (made when missing).
        dir: PathBuf,
    },
    /// What changed in the shipped plan since FILE was exported, and what changed in FILE.
    #[command(after_help = super::examples::PLANS_DIFF)]
    Diff {
        /// A copy written by `opsplan plans export`.
        file: PathBuf,
    },
}

pub(super) fn cmd(p: PlansCli) -> i32 {
    let json = p.format == OutputFormat::Json;
    match p.action {
        None => list(json),
        Some(PlansAction::Show { name }) => match library::get(&name) {
            Some(e) => {
                if json {
                    let mut v = serde_json::to_value(&e).unwrap_or_default();
                    v["text"] = e.text.into();
                    outln!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
                } else {
                    out!("{}", e.text);
                }
                exit::OK
            }
            None => {
                errln!(
                    "error: this opsplan ships no plan `{name}`; {}",
                    library::unknown_name(&name)
                );
                exit::INVALID
            }
        },
        Some(PlansAction::Export { name, dir }) => match library::export(&name, &dir) {
            Ok(x) => {
                if json {
                    outln!(
                        "{}",
                        serde_json::to_string_pretty(&serde_json::json!({
                            "file": x.file, "base": x.base, "origin": x.origin,
                        }))
                        .unwrap_or_default()
                    );
                } else {
                    errln!(
                        "wrote {} ({}{}@{}) and its base copy {}; commit both",
                        x.file.display(),
                        library::SCHEME,
                        x.origin.name,
                        x.origin.version.as_deref().unwrap_or("unversioned"),
                        x.base.display()
                    );
                }
                exit::OK
            }
            Err(d) => fail(&d),
        },
        Some(PlansAction::Diff { file }) => match library::diff(&file) {
            Ok(r) => {
                if json {
                    outln!("{}", serde_json::to_string_pretty(&r).unwrap_or_default());
                    return exit::OK;
                }
                let v = |v: &Option<String>| v.clone().unwrap_or_else(|| "unversioned".into());
                outln!(
                    "origin: {}{} {} (sha256 {})",
                    library::SCHEME,
                    r.origin.name,
                    v(&r.origin.version),
                    short(&r.origin.sha256)
                );
                if r.upstream_changed {
                    outln!(
                        "upstream: changed since the export: {} (sha256 {}) is now {} (sha256 {})",
                        v(&r.origin.version),
                        short(&r.origin.sha256),
                        v(&r.version_now),
                        short(&r.sha256_now)
                    );
                    match &r.upstream {
                        Some(d) => out!("{d}"),
                        None => outln!(
                            "  (the base copy {} is missing: upstream and local changes are shown together below)",
                            library::base_path(&file).display()
                        ),
                    }
                } else {
                    outln!("upstream: unchanged since the export");
                }
                if r.team.is_empty() {
                    outln!("here: unchanged since the export");
                } else {
                    outln!(
                        "{}",
                        if r.team_against_now {
                            "here: the shipped plan now against this copy"
                        } else {
                            "here: changed since the export"
                        }
                    );
                    out!("{}", r.team);
                }
                exit::OK
            }
            Err(d) => fail(&d),
        },
    }
}

fn short(hash: &str) -> &str {
    hash.get(..12).unwrap_or(hash)
}

/// Prints an error that has no place in a file (code, message, help); exit 2.
pub(super) fn fail(d: &Diagnostic) -> i32 {
    print_placeless(d);
    exit::INVALID
}

/// `error[CODE]: message` and its help, for an error that has no place in a file.
pub(super) fn print_placeless(d: &Diagnostic) {
    let severity = match d.severity {
        Severity::Error => "error",
        Severity::Warning => "warning",
    };
    errln!("{severity}[{}]: {}", d.code.as_str(), d.message);
    if let Some(h) = &d.help {
        errln!("  help: {h}");
    }
}

/// The first sentence of a description, on one line.
fn summary(e: &Entry) -> String {
    let text = e
        .description
        .as_deref()
        .unwrap_or("")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    let first = match text.find(". ") {
        Some(i) => &text[..=i],
        None => &text,
    };
    if first.chars().count() > MAX_SUMMARY {
        let cut: String = first.chars().take(MAX_SUMMARY - 1).collect();
        format!("{}…", cut.trim_end())
    } else {
        first.to_string()
    }
}

/// The longest description shown in the table (`--format json` has all of it).
const MAX_SUMMARY: usize = 72;

fn list(json: bool) -> i32 {
    let entries = library::entries();
    if json {
        outln!(
            "{}",
            serde_json::to_string_pretty(&entries).unwrap_or_default()
        );
        return exit::OK;
    }
    let rows = entries
        .iter()
        .map(|e| {
            vec![
                e.name.clone(),
                e.kind.to_lowercase(),
                e.system.clone().unwrap_or_default(),
                e.version.clone().unwrap_or_default(),
                e.applies_to.clone().unwrap_or_default(),
                summary(e),
            ]
        })
        .collect();
    out!(
        "{}",
        crate::tables::table(
            crate::tables::Stream::Stdout,
            &[
                "NAME",
                "KIND",
                "SYSTEM",
                "VERSION",
                "APPLIES TO",
                "DESCRIPTION",
            ],
            &[],
            rows
        )
    );
    exit::OK
}

/// A plan argument: a path that exists, else a shipped plan's name (`cosmos7/backup`);
/// an unknown name is an error that suggests the closest shipped one.
pub(super) fn resolve(plan: &Path) -> Result<PathBuf, i32> {
    library::resolve_arg(plan).map_err(|d| fail(&d))
}

/// `validate PLAN --params FILE|DIR…`: the plan, then each params file against it.
pub(super) fn cmd_validate_params(
    plans: &[PathBuf],
    params: &[PathBuf],
    deny_warnings: bool,
    format: OutputFormat,
    registry: &Arc<Registry>,
) -> i32 {
    let [plan] = plans else {
        errln!("error: --params checks params files against one plan; name exactly one plan");
        return exit::INVALID;
    };
    let plan = match resolve(plan) {
        Ok(p) => p,
        Err(code) => return code,
    };
    let files = match params_file::files(params) {
        Ok(f) => f,
        Err(d) => return fail(&d),
    };
    let mut sources = Sources::default();
    let checked = pipeline::check_file(&plan, &mut sources, registry);
    let diags = checked.diagnostics;
    let mut per_file = Vec::new();
    match &checked.plan {
        Some(loaded) => {
            for f in &files {
                per_file.push((f.clone(), params_file::check(loaded, f, &mut sources)));
            }
        }
        None if checked.fragment => {
            errln!(
                "{}: a fragment has no params file of its own; check the plan that uses it",
                plan.display()
            );
            return exit::INVALID;
        }
        None => {}
    }
    let count = |ds: &[Diagnostic], s: Severity| ds.iter().filter(|d| d.severity == s).count();
    let mut errors = count(&diags, Severity::Error);
    let mut warnings = count(&diags, Severity::Warning);
    for (_, ds) in &per_file {
        errors += count(ds, Severity::Error);
        warnings += count(ds, Severity::Warning);
    }
    if format == OutputFormat::Json {
        let mut json: Vec<serde_json::Value> = diags
            .iter()
            .map(|d| diagnostic::to_json(d, &sources))
            .collect();
        for (_, ds) in &per_file {
            json.extend(ds.iter().map(|d| diagnostic::to_json(d, &sources)));
        }
        outln!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "plan": plan, "params_files": files, "errors": errors, "warnings": warnings,
                "diagnostics": json,
            }))
            .unwrap_or_default()
        );
    } else {
        let quiet = super::level() == super::Level::Quiet;
        print_diagnostics(&diags, &sources);
        if diags.is_empty() && !quiet {
            errln!("{}: ok", plan.display());
        }
        for (f, ds) in &per_file {
            print_diagnostics(ds, &sources);
            if ds.is_empty() && !quiet {
                errln!("{}: ok", f.display());
            }
        }
        errln!(
            "1 plan, {} params file(s): {errors} error(s), {warnings} warning(s)",
            files.len()
        );
    }
    if errors > 0 || (deny_warnings && warnings > 0) {
        exit::INVALID
    } else {
        exit::OK
    }
}
