//! `verify`: check a backup folder against the manifest `manifest` wrote as the backup's
//! last file (the consistency check the Cosmo operator asked for).
//!
//! Three outcomes: `complete` (every listed file is there with its size and SHA-256, and
//! nothing else), `mismatch` (files missing, changed or extra), `incomplete` (no manifest:
//! the backup never finished, since the manifest is its last write). Mode, owner and mtime
//! are recorded but not compared: a copy of a backup may legitimately change them, its
//! content may not.

use super::manifest::{self, Document, EntryType, FORMAT, FORMAT_VERSION};
use super::{blocking, check_cancel, io_error, require_dir, sha256_file, walk, Filter};
use crate::{Action, OutputDecl, Outputs, StepContext, StepError, StepType};
use opsplan_plan::diagnostic::Diagnostic;
use opsplan_plan::source::Node;
use schemars::JsonSchema;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::fs;
use std::io::{ErrorKind, Read};
use std::path::{Path, PathBuf};
use tokio_util::sync::CancellationToken;

/// Names quoted per kind of difference in the error message.
const FIRST: usize = 5;

pub struct Verify;

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct VerifySpec {
    /// The backup folder to check.
    pub folder: String,
    /// File name of the manifest inside `folder` (default `opsplan-manifest.json`).
    #[serde(default = "manifest::default_file")]
    pub file: String,
    /// Compare SHA-256 checksums (default); `false` compares sizes only, which is fast but
    /// misses changed bytes.
    #[serde(default = "yes")]
    pub checksum: bool,
    /// Only report: succeed whatever the status, for plans that branch on
    /// `steps.<id>.outputs.status`. By default the step fails unless the backup is complete.
    #[serde(default)]
    pub report_only: bool,
}

fn yes() -> bool {
    true
}

/// The outcome of comparing a folder with a manifest (also used by `opsplan drill`).
#[derive(Debug, Default)]
pub struct Report {
    pub status: &'static str,
    pub missing: Vec<String>,
    pub extra: Vec<String>,
    /// Path and what differs.
    pub changed: Vec<(String, String)>,
    pub files: u64,
    pub bytes: u64,
    pub doc: Option<Document>,
}

impl StepType for Verify {
    const NAME: &'static str = "verify";
    const SUMMARY: &'static str =
        "Check a backup folder against its manifest: complete, mismatch (missing, changed, extra files) or incomplete.";
    type Spec = VerifySpec;

    fn outputs() -> &'static [OutputDecl] {
        &[
            OutputDecl {
                name: "status",
                description: "`complete`, `mismatch` or `incomplete` (no manifest)",
            },
            OutputDecl {
                name: "missing",
                description: "paths listed in the manifest but absent",
            },
            OutputDecl {
                name: "extra",
                description: "paths present but not in the manifest",
            },
            OutputDecl {
                name: "changed",
                description: "paths whose type, size, checksum or symlink target differ",
            },
            OutputDecl {
                name: "files",
                description: "listed entries found and checked",
            },
            OutputDecl {
                name: "bytes",
                description: "bytes checked",
            },
            OutputDecl {
                name: "plan_name",
                description: "the plan that wrote the backup (empty when incomplete)",
            },
            OutputDecl {
                name: "system_version",
                description: "the system version recorded in the manifest (empty when unknown)",
            },
            OutputDecl {
                name: "created",
                description: "when the manifest was written (empty when incomplete)",
            },
        ]
    }
    fn check(spec: &VerifySpec, with: &Node) -> Vec<Diagnostic> {
        let mut diags: Vec<Diagnostic> = super::check_nonempty_path(with, "folder", &spec.folder)
            .into_iter()
            .collect();
        diags.extend(manifest::check_manifest_file(with, &spec.file));
        diags
    }
    fn describe(spec: &VerifySpec) -> Action {
        Action::new(format!(
            "verify {}/ against {}/{} ({}{})",
            spec.folder.trim_end_matches('/'),
            spec.folder.trim_end_matches('/'),
            spec.file,
            if spec.checksum {
                "sizes and sha256"
            } else {
                "sizes only"
            },
            if spec.report_only {
                "; report only"
            } else {
                "; fail unless complete"
            }
        ))
    }
    async fn run(spec: VerifySpec, ctx: StepContext) -> Result<Outputs, StepError> {
        let report_only = spec.report_only;
        let folder = spec.folder.clone();
        let file = spec.file.clone();
        let report = blocking(&ctx, move |token| check(&spec, token)).await?;
        if !report_only && report.status != "complete" {
            return Err(StepError::fatal(failure_text(&folder, &file, &report)));
        }
        let list = |v: &[String]| serde_json::Value::from(v.to_vec());
        let changed: Vec<String> = report.changed.iter().map(|(p, _)| p.clone()).collect();
        let mut out = Outputs::new();
        out.insert("status".into(), report.status.into());
        out.insert("missing".into(), list(&report.missing));
        out.insert("extra".into(), list(&report.extra));
        out.insert("changed".into(), list(&changed));
        out.insert("files".into(), report.files.into());
        out.insert("bytes".into(), report.bytes.into());
        let doc = report.doc.as_ref();
        out.insert(
            "plan_name".into(),
            doc.map(|d| d.plan.name.clone()).unwrap_or_default().into(),
        );
        out.insert(
            "system_version".into(),
            doc.and_then(|d| d.system_version.clone())
                .unwrap_or_default()
                .into(),
        );
        out.insert(
            "created".into(),
            doc.map(|d| d.created.clone()).unwrap_or_default().into(),
        );
        Ok(out)
    }
}

fn check(spec: &VerifySpec, token: &CancellationToken) -> Result<Report, StepError> {
    let folder = PathBuf::from(&spec.folder);
    require_dir(&folder, "backup folder")?;
    let Some(doc) = read_manifest(&folder.join(&spec.file))? else {
        return Ok(Report {
            status: "incomplete",
            ..Report::default()
        });
    };
    compare(&folder, doc, &spec.file, None, spec.checksum, token)
}

/// Reads and checks a manifest file; `None` when there is none (an incomplete backup).
pub fn read_manifest(path: &Path) -> Result<Option<Document>, StepError> {
    let read = super::open_regular(path, "manifest").and_then(|mut f| {
        let mut text = Vec::new();
        f.read_to_end(&mut text).map(|_| text)
    });
    let text = match read {
        Ok(t) => t,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_error("read the manifest", path, &e)),
    };
    let header: serde_json::Value = serde_json::from_slice(&text).map_err(|e| {
        StepError::fatal(format!(
            "manifest {} is not valid JSON: {e}",
            path.display()
        ))
    })?;
    if header.get("format").and_then(|f| f.as_str()) != Some(FORMAT) {
        return Err(StepError::fatal(format!(
            "{} is not an opsplan backup manifest (its `format` is not `{FORMAT}`)",
            path.display()
        )));
    }
    let version = header
        .get("format_version")
        .and_then(serde_json::Value::as_u64);
    if version != Some(u64::from(FORMAT_VERSION)) {
        return Err(StepError::fatal(format!(
            "manifest {} has format version {}; this opsplan reads version {FORMAT_VERSION}",
            path.display(),
            version.map_or("?".into(), |v| v.to_string())
        )));
    }
    let doc: Document = serde_json::from_value(header)
        .map_err(|e| StepError::fatal(format!("manifest {} is malformed: {e}", path.display())))?;
    Ok(Some(doc))
}

/// Compares `folder` with the manifest's entries. With a `prefix`, only the entries below
/// that manifest path are compared, and `folder` stands for it: a restore copies one part
/// of a backup (`data/`) into a folder of its own. `manifest_file` at the top of `folder`
/// is not content (a restore may copy the manifest along).
pub fn compare(
    folder: &Path,
    doc: Document,
    manifest_file: &str,
    prefix: Option<&str>,
    checksum: bool,
    token: &CancellationToken,
) -> Result<Report, StepError> {
    let prefix = prefix
        .map(|p| p.trim_matches('/'))
        .filter(|p| !p.is_empty() && *p != ".");
    let filter = Filter::new(&[], &doc.exclude)?;
    let mut on_disk: BTreeMap<String, super::Walked> = BTreeMap::new();
    for e in walk(folder, &filter, token)? {
        if e.meta.is_dir() || manifest::is_manifest_name(&e.rel, manifest_file) {
            continue;
        }
        let rel = e.rel.to_string_lossy().into_owned();
        let key = match prefix {
            Some(p) => format!("{p}/{rel}"),
            None => rel,
        };
        on_disk.insert(key, e);
    }
    let mut report = Report::default();
    for rec in &doc.files {
        check_cancel(token)?;
        if prefix.is_some_and(|p| !rec.path.starts_with(&format!("{p}/"))) {
            continue;
        }
        // A manifest written before temporary files were left out may list one: it is a
        // leftover of an interrupted write, never part of a backup.
        if Path::new(&rec.path)
            .file_name()
            .is_some_and(super::is_temp_name)
        {
            report.changed.push((
                rec.path.clone(),
                "a temporary file of an interrupted write, not backup content".into(),
            ));
            continue;
        }
        let Some(e) = on_disk.remove(&rec.path) else {
            report.missing.push(rec.path.clone());
            continue;
        };
        report.files += 1;
        let ft = e.meta.file_type();
        let difference = match rec.kind {
            EntryType::Symlink if !ft.is_symlink() => Some("was a symlink".to_string()),
            EntryType::File if !ft.is_file() => Some("was a regular file".to_string()),
            EntryType::Symlink => {
                let now = fs::read_link(&e.path)
                    .map_err(|err| io_error("read the symlink", &e.path, &err))?;
                let now = now.to_string_lossy();
                (Some(now.as_ref()) != rec.target.as_deref()).then(|| {
                    format!(
                        "symlink target {} instead of {}",
                        now,
                        rec.target.as_deref().unwrap_or("?")
                    )
                })
            }
            EntryType::File => {
                let want = rec.size.unwrap_or(0);
                if e.meta.len() != want {
                    Some(format!("size {} instead of {want}", e.meta.len()))
                } else if checksum {
                    let (sha, read) = sha256_file(&e.path, &e.meta, token)?;
                    report.bytes += read;
                    (Some(sha.as_str()) != rec.sha256.as_deref())
                        .then(|| "sha256 differs".to_string())
                } else {
                    report.bytes += want;
                    None
                }
            }
        };
        if let Some(d) = difference {
            report.changed.push((rec.path.clone(), d));
        }
    }
    report.extra = on_disk.into_keys().collect();
    report.status =
        if report.missing.is_empty() && report.changed.is_empty() && report.extra.is_empty() {
            "complete"
        } else {
            "mismatch"
        };
    report.doc = Some(doc);
    Ok(report)
}

/// "backup /b does not match its manifest: 1 changed (a: sha256 differs), …".
fn failure_text(folder: &str, file: &str, r: &Report) -> String {
    if r.status == "incomplete" {
        return format!(
            "backup {folder} is incomplete: it has no manifest {}/{file} (the backup did not \
             finish, or was not written by an opsplan plan)",
            folder.trim_end_matches('/')
        );
    }
    format!(
        "backup {folder} does not match its manifest: {}",
        differences(r)
    )
}

/// "1 changed (a: sha256 differs); 2 missing (b, c)": the differences, a few named per kind.
pub fn differences(r: &Report) -> String {
    fn first(items: Vec<String>) -> String {
        let more = items.len().saturating_sub(FIRST);
        let mut s = items.into_iter().take(FIRST).collect::<Vec<_>>().join(", ");
        if more > 0 {
            s.push_str(&format!(", and {more} more"));
        }
        s
    }
    let mut parts = Vec::new();
    if !r.changed.is_empty() {
        parts.push(format!(
            "{} changed ({})",
            r.changed.len(),
            first(r.changed.iter().map(|(p, d)| format!("{p}: {d}")).collect())
        ));
    }
    if !r.missing.is_empty() {
        parts.push(format!(
            "{} missing ({})",
            r.missing.len(),
            first(r.missing.clone())
        ));
    }
    if !r.extra.is_empty() {
        parts.push(format!(
            "{} extra ({})",
            r.extra.len(),
            first(r.extra.clone())
        ));
    }
    parts.join("; ")
}
