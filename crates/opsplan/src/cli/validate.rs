//! `opsplan validate` for CI: which files in a folder are plans (by `apiVersion:
//! opsplan/…`), and the machine formats besides text and JSON: SARIF 2.1.0 (code scanning)
//! and GitHub workflow annotations.

use clap::ValueEnum;
use opsplan_plan::diagnostic::{self, Code, Diagnostic, Severity};
use opsplan_plan::source::Sources;
use std::path::{Path, PathBuf};

#[derive(Clone, Copy, ValueEnum, PartialEq, Eq)]
pub(super) enum ValidateFormat {
    /// Diagnostics with source excerpts on stderr.
    Text,
    /// One JSON object on stdout: counts and every diagnostic.
    Json,
    /// SARIF 2.1.0 on stdout, for code scanning (GitHub, GitLab, Azure DevOps).
    Sarif,
    /// GitHub workflow commands on stdout: `::error file=…,line=…,col=…::message`.
    Github,
}

/// The plan files under the given paths, and what a folder held besides them.
pub(super) struct Found {
    pub(super) files: Vec<PathBuf>,
    /// YAML files in folders that are not opsplan files (no `apiVersion: opsplan/…`).
    pub(super) other_yaml: usize,
    /// Files and folders whose name starts with `.`, not searched.
    pub(super) hidden: usize,
}

/// Whether a YAML text is an opsplan file: a top-level `apiVersion: opsplan/…` line.
pub(super) fn is_opsplan_text(text: &str) -> bool {
    text.lines().any(|line| {
        line.strip_prefix("apiVersion:")
            .is_some_and(|v| v.trim().trim_matches(['"', '\'']).starts_with("opsplan/"))
    })
}

/// Files named on the command line are always checked; folders are searched recursively
/// for `*.yaml` and `*.yml` files that are opsplan files, leaving out other YAML (Kubernetes
/// manifests, CI files) and anything hidden (a name starting with `.`), both counted.
pub(super) fn find_plans(paths: &[PathBuf]) -> Result<Found, Diagnostic> {
    let mut found = Found {
        files: Vec::new(),
        other_yaml: 0,
        hidden: 0,
    };
    for p in paths {
        if p.is_dir() {
            let mut stack = vec![p.clone()];
            while let Some(dir) = stack.pop() {
                let entries = std::fs::read_dir(&dir).map_err(|e| {
                    Diagnostic::new(
                        Code::Io,
                        format!("cannot read folder {}: {e}", dir.display()),
                    )
                })?;
                for entry in entries.flatten() {
                    let path = entry.path();
                    if entry.file_name().to_string_lossy().starts_with('.') {
                        found.hidden += 1;
                    } else if path.is_dir() {
                        stack.push(path);
                    } else if matches!(
                        path.extension().and_then(|e| e.to_str()),
                        Some("yaml" | "yml")
                    ) {
                        // An unreadable file is checked, so that its error is reported.
                        match std::fs::read(&path) {
                            Ok(bytes) if !is_opsplan_text(&String::from_utf8_lossy(&bytes)) => {
                                found.other_yaml += 1;
                            }
                            _ => found.files.push(path),
                        }
                    }
                }
            }
        } else {
            // A file, or a shipped plan's name (an error suggests the closest one).
            found.files.push(opsplan_plan::library::resolve_arg(p)?);
        }
    }
    found.files.sort();
    Ok(found)
}

/// What was left out of the search, for the summary line (empty when nothing was).
pub(super) fn skipped_text(found: &Found) -> String {
    let mut parts = Vec::new();
    if found.other_yaml > 0 {
        parts.push(format!(
            "{} YAML file(s) that are not opsplan files",
            found.other_yaml
        ));
    }
    if found.hidden > 0 {
        parts.push(format!("{} hidden file(s) or folder(s)", found.hidden));
    }
    if parts.is_empty() {
        String::new()
    } else {
        format!("; skipped {}", parts.join(" and "))
    }
}

/// The error when the paths hold no plan at all: a wrong path must not pass.
pub(super) fn nothing_found(paths: &[PathBuf], found: &Found) -> String {
    let shown: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
    format!(
        "error: no opsplan files in {}{}; a plan file has `apiVersion: opsplan/v1` at its top",
        shown.join(", "),
        skipped_text(found)
    )
}

/// One diagnostic's place, from [`diagnostic::to_json`]: file, line, column and the end of
/// the primary label; a diagnostic without a place points at line 1 of `file`.
struct Place {
    file: String,
    line: u64,
    column: u64,
    end_line: u64,
    end_column: u64,
}

fn place(d: &Diagnostic, sources: &Sources, file: &Path) -> Place {
    let json = diagnostic::to_json(d, sources);
    let label = &json["labels"][0];
    let num = |v: &serde_json::Value, default: u64| v.as_u64().unwrap_or(default);
    match json["file"].as_str() {
        Some(name) => {
            let line = num(&json["line"], 1);
            let column = num(&json["column"], 1);
            Place {
                file: name.to_string(),
                line,
                column,
                end_line: num(&label["end_line"], line),
                end_column: num(&label["end_column"], column),
            }
        }
        None => Place {
            file: file.display().to_string(),
            line: 1,
            column: 1,
            end_line: 1,
            end_column: 1,
        },
    }
}

fn full_message(d: &Diagnostic) -> String {
    match &d.help {
        Some(help) => format!("{}\nhelp: {help}", d.message),
        None => d.message.clone(),
    }
}

/// The diagnostics of one file, ready for a machine format.
pub(super) struct FileReport {
    pub(super) file: PathBuf,
    pub(super) sources: Sources,
    pub(super) diagnostics: Vec<Diagnostic>,
}

/// SARIF 2.1.0: one run of the `opsplan` tool, a rule per code used, a result per
/// diagnostic with its region (1-based lines and columns).
pub(super) fn sarif(reports: &[FileReport]) -> serde_json::Value {
    let mut rules: Vec<Code> = Vec::new();
    let mut results = Vec::new();
    for r in reports {
        for d in &r.diagnostics {
            if !rules.contains(&d.code) {
                rules.push(d.code);
            }
            let p = place(d, &r.sources, &r.file);
            results.push(serde_json::json!({
                "ruleId": d.code.as_str(),
                "level": match d.severity { Severity::Error => "error", Severity::Warning => "warning" },
                "message": { "text": full_message(d) },
                "locations": [{
                    "physicalLocation": {
                        "artifactLocation": { "uri": p.file },
                        "region": {
                            "startLine": p.line, "startColumn": p.column,
                            "endLine": p.end_line, "endColumn": p.end_column,
                        }
                    }
                }],
            }));
        }
    }
    rules.sort_by_key(|c| c.as_str());
    let rules: Vec<serde_json::Value> = rules
        .iter()
        .map(|c| {
            serde_json::json!({
                "id": c.as_str(),
                "name": c.name(),
                "shortDescription": { "text": format!("{} {}", c.as_str(), c.name()) },
                "defaultConfiguration": {
                    "level": match c.severity() { Severity::Error => "error", Severity::Warning => "warning" }
                },
            })
        })
        .collect();
    serde_json::json!({
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": { "driver": {
                "name": "opsplan",
                "rules": rules,
            }},
            "results": results,
        }],
    })
}

/// GitHub workflow commands escape `%`, CR and LF in the message, and also `:` and `,` in
/// property values.
fn escape_data(s: &str) -> String {
    s.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

fn escape_property(s: &str) -> String {
    escape_data(s).replace(':', "%3A").replace(',', "%2C")
}

/// One `::error …::message` (or `::warning`) line per diagnostic.
pub(super) fn github(reports: &[FileReport]) -> String {
    let mut out = String::new();
    for r in reports {
        for d in &r.diagnostics {
            let p = place(d, &r.sources, &r.file);
            let level = match d.severity {
                Severity::Error => "error",
                Severity::Warning => "warning",
            };
            out.push_str(&format!(
                "::{level} file={},line={},col={},endLine={},endColumn={},title={}::{}\n",
                escape_property(&p.file),
                p.line,
                p.column,
                p.end_line,
                p.end_column,
                escape_property(&format!("{} {}", d.code.as_str(), d.code.name())),
                escape_data(&full_message(d)),
            ));
        }
    }
    out
}
