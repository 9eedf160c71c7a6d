//! `manifest`: record what a finished backup folder holds, as its very last write.
//!
//! A backup taken from a live system can be torn (the Cosmo operator's complaint); a backup
//! without proof of completeness cannot be trusted for a restore. The manifest is that
//! proof: written last, atomically, it says "everything listed here was there, with these
//! checksums, when the backup ended". `verify` checks a folder against it; a folder without
//! one is *incomplete* by definition.
//!
//! # Format `opsplan-backup-manifest`, version 1
//!
//! One UTF-8 JSON object, pretty-printed, in the backup folder (default name
//! `opsplan-manifest.json`; see docs/design/0002-backup-manifest.md):
//!
//! ```json
//! {
//!   "format": "opsplan-backup-manifest",
//!   "format_version": 1,
//!   "created": "2026-04-15T02:00:00Z",
//!   "plan": { "name": "cosmos7-backup", "version": "1.0.0", "system": "cosmos7" },
//!   "system_version": "7.1.0",
//!   "exclude": ["*.tmp"],
//!   "totals": { "files": 1, "bytes": 1029 },
//!   "files": [
//!     { "path": "questdb/db/t/_meta", "type": "file", "size": 1029,
//!       "sha256": "9f86d0…", "mode": "0644", "uid": 10001, "gid": 10001,
//!       "mtime": "2026-04-15T01:59:58.123456789Z" },
//!     { "path": "buckets/current", "type": "symlink", "target": "2026-04-15",
//!       "mode": "0777", "uid": 0, "gid": 0, "mtime": "2026-04-15T01:00:00Z" }
//!   ]
//! }
//! ```
//!
//! - `format` is always `opsplan-backup-manifest`; `format_version` is an integer raised on
//!   any change a version-1 reader would misread (readers refuse a newer version). Adding
//!   an optional field does not raise it; readers ignore fields they do not know.
//! - `created`: UTC, RFC 3339, when the manifest was written. `plan`: the plan's metadata
//!   (`name` always; `version`, `system` may be null). `system_version`: the backed-up
//!   system's version as the plan determined it, or null.
//! - `exclude`: globs whose paths were not recorded; `verify` ignores them too.
//! - `files`: every regular file and symlink below the folder, sorted by `path` (relative,
//!   `/`-separated, UTF-8), except the manifest itself. Folders are not listed (an empty
//!   folder is not recorded), nor a generation's marker `opsplan-generation.json` at the
//!   top (docs/design/0006-generations.md), and except opsplan's temporary files
//!   (`.<name>.opsplan-<8 hex>`, a write in progress or a leftover of a killed run), which
//!   are never content. `type` is `file` (with `size` in bytes and `sha256` in lower
//!   hex) or `symlink` (with `target`, never followed). `mode` is the permission bits in
//!   octal; `uid`/`gid` numeric; `mtime` UTC RFC 3339 with nanoseconds when non-zero.
//! - `totals`: count and bytes of the `file` entries.
//! - `facts` (optional, only when the step is given `facts:`): `{"format_version": 1,
//!   "values": {name: value}}`, what the backed-up system held, compared after a restore by
//!   `facts.compare` (super::facts). It has its own format version; the manifest's stays 1,
//!   and readers that do not know the section ignore it.
//!
//! Written to a temporary name, fsynced, renamed, then the folder fsynced: the manifest
//! exists completely or not at all, and it is the last thing the backup writes. A file that
//! changes while it is hashed fails the step (something is still writing into the backup).

use super::{
    blocking, check_cancel, io_error, rel_text, require_dir, rfc3339, sha256_file, walk, Filter,
    TempFile,
};
use crate::{Action, OutputDecl, Outputs, StepContext, StepError, StepType};
use opsplan_plan::diagnostic::{Code, Diagnostic};
use opsplan_plan::source::Node;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use tokio_util::sync::CancellationToken;

pub const FORMAT: &str = "opsplan-backup-manifest";
pub const FORMAT_VERSION: u32 = 1;
pub const DEFAULT_FILE: &str = "opsplan-manifest.json";

pub struct Manifest;

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ManifestSpec {
    /// The backup folder to describe; run this step after every step that writes into it.
    pub folder: String,
    /// File name of the manifest inside `folder` (default `opsplan-manifest.json`);
    /// `verify` must be given the same name.
    #[serde(default = "default_file")]
    pub file: String,
    /// Version of the backed-up system (e.g. the output of a step that asked it), recorded
    /// so a restore can check it is compatible.
    #[serde(default)]
    pub system_version: Option<String>,
    /// Globs of paths not to record (logs, lock files); stored in the manifest so `verify`
    /// ignores them too.
    #[serde(default)]
    pub exclude: Vec<String>,
    /// Overrides the recorded plan name (default: the running plan's `metadata.name`).
    #[serde(default)]
    pub plan_name: Option<String>,
    /// Overrides the recorded plan version (default: `metadata.version`).
    #[serde(default)]
    pub plan_version: Option<String>,
    /// Overrides the recorded system name (default: `metadata.system`).
    #[serde(default)]
    pub system: Option<String>,
    /// Facts about the backed-up system read at the backup's consistency point (rows per
    /// table, the tables, objects per bucket, its version), typically previous steps'
    /// outputs: names to scalars, lists of scalars or maps of scalars. Recorded in the
    /// manifest's versioned `facts` section; a restore compares them with `facts.compare`.
    #[serde(default)]
    pub facts: Option<BTreeMap<String, serde_json::Value>>,
}

pub fn default_file() -> String {
    DEFAULT_FILE.into()
}

/// The manifest document (format version 1), shared with `verify`.
#[derive(Debug, Serialize, Deserialize)]
pub struct Document {
    pub format: String,
    pub format_version: u32,
    pub created: String,
    pub plan: PlanRecord,
    pub system_version: Option<String>,
    #[serde(default)]
    pub exclude: Vec<String>,
    pub totals: Totals,
    pub files: Vec<FileRecord>,
    /// The `facts` section (its own `format_version`, read by `facts.compare`), absent in
    /// manifests of backups that recorded none. Kept as JSON here: `verify` does not need
    /// it, and must not refuse a manifest whose facts are of a newer version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub facts: Option<serde_json::Value>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct PlanRecord {
    pub name: String,
    pub version: Option<String>,
    pub system: Option<String>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct Totals {
    pub files: u64,
    pub bytes: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EntryType {
    File,
    Symlink,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct FileRecord {
    pub path: String,
    #[serde(rename = "type")]
    pub kind: EntryType,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    pub mode: String,
    pub uid: u32,
    pub gid: u32,
    pub mtime: String,
}

/// Whether a top-level name is the manifest, a generation's marker
/// (`opsplan-generation.json`, rewritten when the generation is committed), or one of
/// their temporary files, which neither `manifest` nor `verify` count as backup content.
pub fn is_manifest_name(rel: &Path, file: &str) -> bool {
    let Some(name) = rel.to_str() else {
        return false;
    };
    let marker = super::GENERATION_MARKER;
    name == file
        || name.starts_with(&format!(".{file}.opsplan-"))
        || name == marker
        || name.starts_with(&format!(".{marker}.opsplan-"))
}

/// The manifest's name must be a plain name: it lives at the top of the backup folder,
/// where `verify` looks for it and where both leave it out of the content.
pub fn check_manifest_file(with: &Node, file: &str) -> Vec<Diagnostic> {
    if !(file.trim().is_empty() || file.contains('/') || file == "." || file == "..") {
        return Vec::new();
    }
    vec![Diagnostic::new(
        Code::StepArgs,
        format!("`file` must be a plain file name, not `{file}`"),
    )
    .label(
        with.get("file").map_or(with.span, |n| n.span),
        "a name inside `folder`",
    )
    .help("the manifest lives at the top of the backup folder, e.g. `file: opsplan-manifest.json`")]
}

impl StepType for Manifest {
    const NAME: &'static str = "manifest";
    const SUMMARY: &'static str =
        "Write a backup folder's manifest (every file's size and SHA-256, plan and system versions) as its last file.";
    type Spec = ManifestSpec;

    fn outputs() -> &'static [OutputDecl] {
        &[
            OutputDecl {
                name: "path",
                description: "the manifest file",
            },
            OutputDecl {
                name: "files",
                description: "regular files recorded",
            },
            OutputDecl {
                name: "bytes",
                description: "total size of the recorded files",
            },
            OutputDecl {
                name: "sha256",
                description: "SHA-256 of the manifest file itself",
            },
        ]
    }
    fn check(spec: &ManifestSpec, with: &Node) -> Vec<Diagnostic> {
        let mut diags: Vec<Diagnostic> = super::check_nonempty_path(with, "folder", &spec.folder)
            .into_iter()
            .collect();
        diags.extend(check_manifest_file(with, &spec.file));
        diags.extend(opsplan_plan::fields::check_glob_field(with, "exclude"));
        diags.extend(super::facts::check_facts_node(with, "facts"));
        diags
    }
    fn describe(spec: &ManifestSpec) -> Action {
        let mut s = format!(
            "write manifest {}/{} (size and sha256 of every file in {}",
            spec.folder.trim_end_matches('/'),
            spec.file,
            spec.folder
        );
        if !spec.exclude.is_empty() {
            s.push_str(&format!(" except {}", spec.exclude.join(", ")));
        }
        s.push(')');
        if let Some(v) = &spec.system_version {
            s.push_str(&format!("; system version {v}"));
        }
        if let Some(facts) = spec.facts.as_ref().filter(|f| !f.is_empty()) {
            let facts: Vec<String> = facts
                .iter()
                .map(|(name, value)| match value {
                    serde_json::Value::String(s) => format!("{name} = {s}"),
                    other => format!("{name} = {other}"),
                })
                .collect();
            s.push_str(&format!("; facts {}", facts.join(", ")));
        }
        Action::new(s)
    }
    async fn run(spec: ManifestSpec, ctx: StepContext) -> Result<Outputs, StepError> {
        let plan = PlanRecord {
            name: spec
                .plan_name
                .clone()
                .unwrap_or_else(|| ctx.plan.name.clone()),
            version: spec
                .plan_version
                .clone()
                .or_else(|| ctx.plan.version.clone()),
            system: spec.system.clone().or_else(|| ctx.plan.system.clone()),
        };
        blocking(&ctx, move |token| write(&spec, plan, token)).await
    }
}

fn write(
    spec: &ManifestSpec,
    plan: PlanRecord,
    token: &CancellationToken,
) -> Result<Outputs, StepError> {
    let folder = PathBuf::from(&spec.folder);
    require_dir(&folder, "backup folder")?;
    if let Some(facts) = &spec.facts {
        for (name, value) in facts {
            super::facts::check_value(name, value)
                .map_err(|e| StepError::fatal(format!("fact {name} cannot be recorded: it {e}")))?;
        }
    }
    let filter = Filter::new(&[], &spec.exclude)?;
    super::remove_stale_temps(&folder, Some(std::ffi::OsStr::new(&spec.file)), token)?;
    let mut files = Vec::new();
    let (mut count, mut bytes) = (0u64, 0u64);
    for e in walk(&folder, &filter, token)? {
        check_cancel(token)?;
        if e.meta.is_dir() || is_manifest_name(&e.rel, &spec.file) {
            continue;
        }
        let path = rel_text(&e.rel)?;
        let common = |kind| FileRecord {
            path: path.clone(),
            kind,
            size: None,
            sha256: None,
            target: None,
            mode: format!("{:04o}", e.meta.mode() & 0o7777),
            uid: e.meta.uid(),
            gid: e.meta.gid(),
            mtime: rfc3339(e.meta.mtime(), e.meta.mtime_nsec() as u32),
        };
        if e.meta.file_type().is_symlink() {
            let target = fs::read_link(&e.path)
                .map_err(|err| io_error("read the symlink", &e.path, &err))?;
            files.push(FileRecord {
                target: Some(rel_text(&target)?),
                ..common(EntryType::Symlink)
            });
        } else if e.meta.is_file() {
            let (sha256, read) = sha256_file(&e.path, &e.meta, token)?;
            let after =
                fs::symlink_metadata(&e.path).map_err(|err| io_error("read", &e.path, &err))?;
            if read != e.meta.len()
                || after.len() != e.meta.len()
                || after.mtime() != e.meta.mtime()
                || after.mtime_nsec() != e.meta.mtime_nsec()
            {
                return Err(StepError::new(format!(
                    "{} changed while the manifest was being written; is something still \
                     writing into {}? The manifest must be the backup's last write",
                    e.path.display(),
                    folder.display()
                )));
            }
            count += 1;
            bytes += read;
            files.push(FileRecord {
                size: Some(read),
                sha256: Some(sha256),
                ..common(EntryType::File)
            });
        }
        // Fifos, sockets and devices have no content to check.
    }
    let doc = Document {
        format: FORMAT.into(),
        format_version: FORMAT_VERSION,
        created: super::now_rfc3339(),
        plan,
        system_version: spec.system_version.clone(),
        exclude: spec.exclude.clone(),
        totals: Totals {
            files: count,
            bytes,
        },
        files,
        facts: spec.facts.as_ref().map(super::facts::section),
    };
    let mut text = serde_json::to_vec_pretty(&doc)
        .map_err(|e| StepError::fatal(format!("internal error: manifest not serializable: {e}")))?;
    text.push(b'\n');
    let target = folder.join(&spec.file);
    let mut temp = TempFile::create(&target, 0o644)?;
    if let Some(file) = temp.file.as_mut() {
        file.write_all(&text)
            .map_err(|e| io_error("write", &temp.path, &e))?;
    }
    check_cancel(token)?;
    temp.commit(&target, true)?;

    let mut out = Outputs::new();
    out.insert("path".into(), target.display().to_string().into());
    out.insert("files".into(), count.into());
    out.insert("bytes".into(), bytes.into());
    out.insert("sha256".into(), hex::encode(Sha256::digest(&text)).into());
    Ok(out)
}
