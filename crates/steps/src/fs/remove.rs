//! `fs.remove`: remove a file or a folder tree, the `rm -rf /var/lib/questdb/*` of restore
//! procedures, but refusing the mistakes that make such a line a disaster.
//!
//! The path is resolved first (its folder through symlinks; a symlink itself is removed,
//! never followed) and refused when it is `/`, the home folder or a folder containing it,
//! so an empty or mistyped param cannot wipe the machine.

use super::{blocking, check_cancel, io_error};
use crate::{Action, OutputDecl, Outputs, StepContext, StepError, StepType};
use opsplan_plan::diagnostic::{Code, Diagnostic};
use opsplan_plan::source::de::is_template;
use opsplan_plan::source::Node;
use schemars::JsonSchema;
use serde::Deserialize;
use std::fs;
use std::io::ErrorKind;
use std::path::{Component, Path, PathBuf};
use tokio_util::sync::CancellationToken;

pub struct FsRemove;

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FsRemoveSpec {
    /// File, symlink or folder to remove (a folder with everything in it).
    pub path: String,
    /// Fail when the path does not exist (default: nothing to do is success).
    #[serde(default)]
    pub must_exist: bool,
}

impl StepType for FsRemove {
    const NAME: &'static str = "fs.remove";
    const SUMMARY: &'static str =
        "Remove a file or folder tree (always destructive); refuses `/` and the home folder.";
    type Spec = FsRemoveSpec;

    fn outputs() -> &'static [OutputDecl] {
        &[
            OutputDecl {
                name: "removed",
                description: "files, symlinks and folders removed",
            },
            OutputDecl {
                name: "existed",
                description: "whether the path existed",
            },
        ]
    }
    fn check(spec: &FsRemoveSpec, with: &Node) -> Vec<Diagnostic> {
        let path = spec.path.trim();
        if is_template(path) {
            return Vec::new();
        }
        let span = with.get("path").map_or(with.span, |n| n.span);
        let problem = if path.is_empty() {
            Some(("`path` is empty", "give the file or folder to remove"))
        } else if path.chars().all(|c| c == '/') {
            Some((
                "refusing to remove `/`",
                "name the folder to remove, e.g. `/var/lib/questdb/db`",
            ))
        } else if path.starts_with('~') {
            Some((
                "`~` is not expanded in `path`",
                "write the absolute path; the home folder itself is never removed",
            ))
        } else {
            None
        };
        problem
            .map(|(message, help)| {
                Diagnostic::new(Code::StepArgs, message)
                    .label(span, "unsafe path")
                    .help(help)
            })
            .into_iter()
            .collect()
    }
    fn destructive(_spec: &FsRemoveSpec) -> bool {
        true
    }
    fn describe(spec: &FsRemoveSpec) -> Action {
        Action::new(format!(
            "remove {} (with everything in it){}",
            spec.path,
            if spec.must_exist {
                "; it must exist"
            } else {
                ""
            }
        ))
    }
    async fn run(spec: FsRemoveSpec, ctx: StepContext) -> Result<Outputs, StepError> {
        let (removed, existed) = blocking(&ctx, move |token| remove(&spec, token)).await?;
        let mut out = Outputs::new();
        out.insert("removed".into(), removed.into());
        out.insert("existed".into(), existed.into());
        Ok(out)
    }
}

/// Where `path` really is: its folder resolved through symlinks, the last component kept
/// (a symlink is removed, not what it points to). `..` and `.` resolve fully.
fn resolve(path: &Path) -> std::io::Result<PathBuf> {
    let absolute = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir()?.join(path)
    };
    match absolute.components().next_back() {
        Some(Component::Normal(name)) => {
            let parent = absolute.parent().unwrap_or(Path::new("/"));
            Ok(fs::canonicalize(parent)?.join(name))
        }
        _ => fs::canonicalize(&absolute),
    }
}

fn home() -> Option<PathBuf> {
    let home = std::env::var_os("HOME").filter(|h| !h.is_empty())?;
    let home = PathBuf::from(home);
    Some(fs::canonicalize(&home).unwrap_or(home))
}

/// Refuses `/`, the home folder and its ancestors.
fn refuse_unsafe(original: &str, resolved: &Path) -> Result<(), StepError> {
    if resolved == Path::new("/") {
        return Err(StepError::fatal(format!(
            "refusing to remove `{original}`: it is the root folder /"
        )));
    }
    if let Some(home) = home() {
        if home.starts_with(resolved) {
            let what = if home == resolved {
                "the home folder".to_string()
            } else {
                format!("a folder containing the home folder {}", home.display())
            };
            return Err(StepError::fatal(format!(
                "refusing to remove `{original}`: it is {what}"
            )));
        }
    }
    Ok(())
}

fn remove(spec: &FsRemoveSpec, token: &CancellationToken) -> Result<(u64, bool), StepError> {
    if spec.path.trim().is_empty() {
        return Err(StepError::fatal("refusing to remove an empty path"));
    }
    let original = PathBuf::from(&spec.path);
    let resolved = match resolve(&original) {
        Ok(p) => p,
        Err(e) if e.kind() == ErrorKind::NotFound => {
            return missing(spec, &original);
        }
        Err(e) => return Err(io_error("resolve", &original, &e)),
    };
    refuse_unsafe(&spec.path, &resolved)?;
    let meta = match fs::symlink_metadata(&resolved) {
        Ok(m) => m,
        Err(e) if e.kind() == ErrorKind::NotFound => return missing(spec, &original),
        Err(e) => return Err(io_error("read", &original, &e)),
    };
    if !meta.is_dir() {
        fs::remove_file(&resolved).map_err(|e| io_error("remove", &original, &e))?;
        return Ok((1, true));
    }
    let mut removed = 0u64;
    for entry in walkdir::WalkDir::new(&resolved)
        .contents_first(true)
        .follow_links(false)
    {
        check_cancel(token)?;
        let entry = entry.map_err(|e| {
            let path = e.path().unwrap_or(&resolved).to_path_buf();
            match e.io_error() {
                Some(io) => io_error("read", &path, io),
                None => StepError::fatal(format!("cannot read {}: {e}", path.display())),
            }
        })?;
        let result = if entry.file_type().is_dir() {
            fs::remove_dir(entry.path())
        } else {
            fs::remove_file(entry.path())
        };
        result.map_err(|e| io_error("remove", entry.path(), &e))?;
        removed += 1;
    }
    Ok((removed, true))
}

fn missing(spec: &FsRemoveSpec, path: &Path) -> Result<(u64, bool), StepError> {
    if spec.must_exist {
        Err(StepError::fatal(format!(
            "{} does not exist (`must_exist: true`)",
            path.display()
        )))
    } else {
        Ok((0, false))
    }
}
