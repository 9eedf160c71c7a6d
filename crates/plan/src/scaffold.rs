//! `opsplan new`: a plan, or an ops repository, to start from, that validates as written.
//!
//! Both come from the example ops repository (examples/ops-repo/), embedded at build time
//! by crates/plan/build.rs, so there is one copy: [`new_plan`] writes its starter plan
//! ([`STARTER`]: metadata, params with a secret from `env:`, a confirmed destructive step,
//! a resource released on every path, the `$schema` line) with the name and system asked
//! for; [`new_ops_repo`] writes the whole repository, with the starter plan (and its params
//! folder, and the paths naming them) renamed when a name is asked for, and
//! `schemas/plan.v1.json` written from this binary's step types. Nothing is overwritten
//! without `force`.

use crate::diagnostic::{Code, Diagnostic};
use crate::source::{FileId, Node};
use crate::step::Registry;
use std::path::{Component, Path, PathBuf};

/// `(path below examples/ops-repo/, text, executable)` of every embedded file, sorted.
static OPS_REPO: &[(&str, &str, bool)] = include!(concat!(env!("OUT_DIR"), "/ops_repo.rs"));

/// The starter plan inside the ops repository: the template of `opsplan new plan`.
pub const STARTER: &str = "plans/restore-app.yaml";
/// Its params folder (one file per environment).
const STARTER_PARAMS: &str = "params/restore-app";
/// Where an ops repository keeps the JSON Schema its plans' first lines name.
pub const SCHEMA_FILE: &str = "schemas/plan.v1.json";
const SCHEMA_MARK: &str = "# yaml-language-server: $schema=";

/// Every embedded file of the example ops repository as `(path, text, executable)`.
pub fn ops_repo_files() -> &'static [(&'static str, &'static str, bool)] {
    OPS_REPO
}

/// What to scaffold with: `--name`, `--system`, `--force`.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// `metadata.name` of the plan (for `new ops-repo`, also the starter plan's file and
    /// params folder). Default: the file's stem (`new plan`), the example's (`new ops-repo`).
    pub name: Option<String>,
    /// `metadata.system`. Default: the starter plan's.
    pub system: Option<String>,
    /// Overwrite files that exist.
    pub force: bool,
}

/// One file to write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct File {
    /// Relative to the folder written into (`new ops-repo`), or the path asked for.
    pub path: PathBuf,
    pub text: String,
    pub executable: bool,
}

/// What was written.
#[derive(Debug, Clone)]
pub struct Written {
    /// The plan (`new plan`), or the folder (`new ops-repo`).
    pub target: PathBuf,
    /// `metadata.name` and `metadata.system` of the plan written.
    pub name: String,
    pub system: String,
    /// Every file written, in order.
    pub files: Vec<PathBuf>,
    /// The schema file the plan's first line names, when it was there already.
    pub schema_found: Option<PathBuf>,
}

fn starter() -> &'static str {
    OPS_REPO
        .iter()
        .find(|(p, _, _)| *p == STARTER)
        .map_or("", |(_, t, _)| *t)
}

/// Checks a `--name` or `--system` value: it becomes a file name and a YAML scalar.
fn check_word(what: &str, value: &str) -> Result<(), Diagnostic> {
    let ok = value
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic())
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok {
        Ok(())
    } else {
        Err(Diagnostic::new(
            Code::InvalidValue,
            format!("{what} `{value}` is not a name: use letters, digits, `-`, `_` and `.`, starting with a letter"),
        ))
    }
}

/// A value as a YAML scalar: plain, or quoted where YAML would read it as another type
/// (or a YAML 1.1 reader as a boolean).
fn yaml_scalar(value: &str) -> String {
    const WORDS: &[&str] = &["true", "false", "null", "y", "n", "yes", "no", "on", "off"];
    if WORDS.contains(&value.to_ascii_lowercase().as_str()) {
        format!("\"{value}\"")
    } else {
        value.to_string()
    }
}

/// The starter plan with `metadata.name` and `metadata.system` replaced, and its first
/// line naming `schema` (a path relative to the plan, or a URL).
pub fn plan_text(name: Option<&str>, system: Option<&str>, schema: &str) -> String {
    let text = starter();
    let mut out = text.to_string();
    let Ok(root) = Node::parse(FileId(0), text) else {
        return out;
    };
    let meta = root.get("metadata");
    let mut edits: Vec<(usize, usize, String)> = Vec::new();
    for (key, value) in [("name", name), ("system", system)] {
        if let (Some(v), Some(node)) = (value, meta.and_then(|m| m.get(key))) {
            edits.push((node.span.offset, node.span.len, yaml_scalar(v)));
        }
    }
    edits.sort_by_key(|e| std::cmp::Reverse(e.0));
    for (offset, len, with) in edits {
        if out.is_char_boundary(offset) && out.is_char_boundary(offset + len) {
            out.replace_range(offset..offset + len, &with);
        }
    }
    match out.split_once('\n') {
        Some((first, rest)) if first.starts_with(SCHEMA_MARK) => {
            format!("{SCHEMA_MARK}{schema}\n{rest}")
        }
        _ => out,
    }
}

/// The `metadata` values of the starter plan (`restore-app`, `app`).
fn starter_meta(key: &str) -> String {
    Node::parse(FileId(0), starter())
        .ok()
        .and_then(|r| r.get("metadata").and_then(|m| m.get(key)).cloned())
        .map(|n| n.scalar_text())
        .unwrap_or_default()
}

/// Every file of `opsplan new ops-repo`, relative to its folder: the example's files with
/// the starter plan named `name` (its file `plans/NAME.yaml`, its params `params/NAME/`,
/// and every path naming them, as in ci/check.sh), and this binary's schema.
pub fn ops_repo(options: &Options, registry: &Registry) -> Result<Vec<File>, Diagnostic> {
    if let Some(n) = &options.name {
        check_word("--name", n)?;
    }
    if let Some(s) = &options.system {
        check_word("--system", s)?;
    }
    let old_plan = STARTER;
    let old_params = STARTER_PARAMS;
    let (new_plan, new_params) = match &options.name {
        Some(n) => (format!("plans/{n}.yaml"), format!("params/{n}")),
        None => (old_plan.to_string(), old_params.to_string()),
    };
    let rename = |text: &str| {
        text.replace(old_plan, &new_plan)
            .replace(old_params, &new_params)
    };
    let mut files: Vec<File> = OPS_REPO
        .iter()
        .map(|(path, text, executable)| {
            let (path, text) = if *path == STARTER {
                (
                    new_plan.clone(),
                    plan_text(
                        options.name.as_deref(),
                        options.system.as_deref(),
                        &format!("../{SCHEMA_FILE}"),
                    ),
                )
            } else {
                (rename(path), rename(text))
            };
            File {
                path: PathBuf::from(path),
                text,
                executable: *executable,
            }
        })
        .collect();
    files.push(File {
        path: PathBuf::from(SCHEMA_FILE),
        text: crate::schema::plan_schema_text(registry),
        executable: false,
    });
    files.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(files)
}

fn io(path: &Path, e: &std::io::Error) -> Diagnostic {
    Diagnostic::new(Code::Io, format!("cannot write {}: {e}", path.display()))
}

fn refuse(existing: &[PathBuf]) -> Diagnostic {
    let more = match existing.len() {
        0 | 1 => String::new(),
        n => format!(" (and {} more)", n - 1),
    };
    let first = existing
        .first()
        .map_or(String::new(), |p| p.display().to_string());
    Diagnostic::new(
        Code::Io,
        format!("{first} exists{more}; nothing was written"),
    )
    .help("pass --force to overwrite, or choose another path")
}

fn write(path: &Path, text: &str, executable: bool) -> Result<(), Diagnostic> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| io(dir, &e))?;
    }
    std::fs::write(path, text).map_err(|e| io(path, &e))?;
    #[cfg(unix)]
    if executable {
        use std::os::unix::fs::PermissionsExt as _;
        let mut perm = std::fs::metadata(path)
            .map_err(|e| io(path, &e))?
            .permissions();
        perm.set_mode(perm.mode() | 0o111);
        std::fs::set_permissions(path, perm).map_err(|e| io(path, &e))?;
    }
    #[cfg(not(unix))]
    let _ = executable;
    Ok(())
}

/// `opsplan new ops-repo DIR`: writes [`ops_repo`]'s files into `dir`. Refuses, before
/// writing anything, when one of them exists and `force` is not set.
pub fn new_ops_repo(
    dir: &Path,
    options: &Options,
    registry: &Registry,
) -> Result<Written, Diagnostic> {
    let files = ops_repo(options, registry)?;
    let targets: Vec<PathBuf> = files.iter().map(|f| dir.join(&f.path)).collect();
    if !options.force {
        let existing: Vec<PathBuf> = targets.iter().filter(|p| p.exists()).cloned().collect();
        if !existing.is_empty() {
            return Err(refuse(&existing));
        }
    }
    for (file, target) in files.iter().zip(&targets) {
        write(target, &file.text, file.executable)?;
    }
    Ok(Written {
        target: dir.to_path_buf(),
        name: options.name.clone().unwrap_or_else(|| starter_meta("name")),
        system: options
            .system
            .clone()
            .unwrap_or_else(|| starter_meta("system")),
        files: targets,
        schema_found: None,
    })
}

/// The path from folder `from` to `to` (both absolute, without `.` or `..`), `/`-separated.
fn relative(from: &Path, to: &Path) -> String {
    let a: Vec<Component> = from.components().collect();
    let b: Vec<Component> = to.components().collect();
    let common = a.iter().zip(&b).take_while(|(x, y)| x == y).count();
    let mut parts: Vec<String> = vec!["..".to_string(); a.len() - common];
    parts.extend(
        b[common..]
            .iter()
            .map(|c| c.as_os_str().to_string_lossy().into_owned()),
    );
    parts.join("/")
}

/// `opsplan new plan FILE`: writes the starter plan to `file`, named `options.name` (default:
/// the file's stem). Its first line names the nearest `schemas/plan.v1.json` in the plan's
/// folder or above it (an ops repository's); when there is none, this binary's schema is
/// written to `schemas/plan.v1.json` beside the plan. Refuses to overwrite `file` unless
/// `force`.
pub fn new_plan(
    file: &Path,
    options: &Options,
    registry: &Registry,
) -> Result<Written, Diagnostic> {
    let name = match &options.name {
        Some(n) => n.clone(),
        None => file
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default(),
    };
    check_word("the plan name", &name).map_err(|d| {
        if options.name.is_none() {
            d.help("name it with --name")
        } else {
            d
        }
    })?;
    if let Some(s) = &options.system {
        check_word("--system", s)?;
    }
    if file.is_dir() {
        return Err(Diagnostic::new(
            Code::Io,
            format!(
                "{} is a folder; name the plan file to write",
                file.display()
            ),
        ));
    }
    if file.exists() && !options.force {
        return Err(refuse(&[file.to_path_buf()]));
    }
    let parent = file.parent().filter(|d| !d.as_os_str().is_empty());
    let dir = parent.unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| io(dir, &e))?;
    let abs = dir.canonicalize().map_err(|e| io(dir, &e))?;
    let found = abs
        .ancestors()
        .map(|d| d.join(SCHEMA_FILE))
        .find(|p| p.is_file());
    let mut files = Vec::new();
    let schema_ref = match &found {
        Some(p) => relative(&abs, p),
        None => SCHEMA_FILE.to_string(),
    };
    let text = plan_text(Some(&name), options.system.as_deref(), &schema_ref);
    write(file, &text, false)?;
    files.push(file.to_path_buf());
    if found.is_none() {
        let schema = parent.map_or_else(|| PathBuf::from(SCHEMA_FILE), |d| d.join(SCHEMA_FILE));
        write(&schema, &crate::schema::plan_schema_text(registry), false)?;
        files.push(schema);
    }
    Ok(Written {
        target: file.to_path_buf(),
        name,
        system: options
            .system
            .clone()
            .unwrap_or_else(|| starter_meta("system")),
        files,
        schema_found: found,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_starter_plan_is_embedded_with_its_schema_line() {
        let text = starter();
        assert!(
            text.starts_with("# yaml-language-server: $schema=../schemas/plan.v1.json\n"),
            "{text}"
        );
        assert_eq!(starter_meta("name"), "restore-app");
    }

    #[test]
    fn plan_text_replaces_name_system_and_schema_only() {
        let text = plan_text(Some("restore-db"), Some("yes"), "schemas/plan.v1.json");
        let want = starter()
            .replacen("$schema=../schemas/", "$schema=schemas/", 1)
            .replacen("  name: restore-app\n", "  name: restore-db\n", 1)
            .replacen("  system: app\n", "  system: \"yes\"\n", 1);
        assert_eq!(text, want);
    }

    #[test]
    fn names_that_are_not_words_are_refused() {
        for bad in ["", "my plan", "../x", "-x", "x/y", "1x"] {
            let e = check_word("--name", bad).expect_err(bad);
            assert_eq!(
                e.message,
                format!("--name `{bad}` is not a name: use letters, digits, `-`, `_` and `.`, starting with a letter")
            );
        }
        for good in ["restore-db", "a.b_c", "X1"] {
            assert!(check_word("--name", good).is_ok(), "{good}");
        }
    }

    #[test]
    fn relative_paths_climb_to_the_common_folder() {
        let r = relative(
            Path::new("/r/plans/team"),
            Path::new("/r/schemas/plan.v1.json"),
        );
        assert_eq!(r, "../../schemas/plan.v1.json");
        let r = relative(Path::new("/r"), Path::new("/r/schemas/plan.v1.json"));
        assert_eq!(r, "schemas/plan.v1.json");
    }
}
