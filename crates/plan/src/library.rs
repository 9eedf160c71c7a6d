//! The shipped plans, embedded at build time (crates/plan/build.rs embeds the repository's
//! plans/ folder), so an installed binary carries them.
//!
//! A shipped file has a name: its path below plans/ without `.yaml` (`cosmos7/backup`,
//! `dop/fragments/restore-bucket`), and a virtual path `builtin:<file>` that the loader
//! reads from here instead of the disk (so fragments a shipped plan uses resolve from the
//! embedded set too). A plan's `uses: builtin:NAME@REQ` inlines a shipped fragment when its
//! `metadata.version` meets the semver requirement REQ. [`export`] writes an editable copy
//! that records its origin; [`diff`] compares such a copy with what is shipped now.

use crate::diagnostic::{did_you_mean, Code, Diagnostic};
use crate::source::{FileId, Node, NodeValue};
use sha2::{Digest, Sha256};
use std::path::{Component, Path, PathBuf};

/// The prefix of a shipped plan's virtual path and of a `uses:` reference to one.
pub const SCHEME: &str = "builtin:";

/// `(path below plans/, text)` of every embedded file, sorted by path.
static FILES: &[(&str, &str)] = include!(concat!(env!("OUT_DIR"), "/library.rs"));

/// Every embedded file as `(path below plans/, text)`, sorted by path.
pub fn files() -> &'static [(&'static str, &'static str)] {
    FILES
}

/// One shipped plan or fragment and its metadata.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Entry {
    /// `cosmos7/backup`: the path below plans/ without its extension.
    pub name: String,
    /// `cosmos7/backup.yaml`.
    pub file: &'static str,
    /// `Plan` or `Fragment`.
    pub kind: String,
    pub system: Option<String>,
    pub version: Option<String>,
    #[serde(rename = "appliesTo")]
    pub applies_to: Option<String>,
    pub description: Option<String>,
    /// sha256 of the embedded text, hex.
    pub sha256: String,
    #[serde(skip)]
    pub text: &'static str,
}

impl Entry {
    /// The virtual path the loader reads this entry from: `builtin:cosmos7/backup.yaml`.
    pub fn path(&self) -> PathBuf {
        PathBuf::from(format!("{SCHEME}{}", self.file))
    }
    /// `metadata.version` as semver, when it is one.
    pub fn semver(&self) -> Option<semver::Version> {
        self.version
            .as_deref()
            .and_then(|v| semver::Version::parse(v).ok())
    }
}

fn name_of(file: &str) -> &str {
    file.strip_suffix(".yaml")
        .or_else(|| file.strip_suffix(".yml"))
        .unwrap_or(file)
}

fn entry(file: &'static str, text: &'static str) -> Entry {
    let root = Node::parse(FileId(0), text).ok();
    let meta = |key: &str| {
        root.as_ref()
            .and_then(|r| r.get("metadata"))
            .and_then(|m| m.get(key))
            .filter(|n| n.value != NodeValue::Null)
            .map(|n| n.scalar_text().trim().to_string())
    };
    Entry {
        name: name_of(file).to_string(),
        file,
        kind: root
            .as_ref()
            .and_then(|r| r.get("kind"))
            .map(Node::scalar_text)
            .unwrap_or_default(),
        system: meta("system"),
        version: meta("version"),
        applies_to: meta("appliesTo"),
        description: meta("description"),
        sha256: sha256(text),
        text,
    }
}

/// sha256 of a text, hex.
pub fn sha256(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))
}

/// Every shipped plan and fragment, sorted by name.
pub fn entries() -> Vec<Entry> {
    FILES.iter().map(|(f, t)| entry(f, t)).collect()
}

/// The names of every shipped plan and fragment.
pub fn names() -> Vec<String> {
    FILES.iter().map(|(f, _)| name_of(f).to_string()).collect()
}

/// A shipped plan or fragment by name (`cosmos7/backup`), file (`cosmos7/backup.yaml`) or
/// virtual path (`builtin:cosmos7/backup.yaml`).
pub fn get(name: &str) -> Option<Entry> {
    let name = name.strip_prefix(SCHEME).unwrap_or(name);
    FILES
        .iter()
        .find(|(f, _)| *f == name || name_of(f) == name)
        .map(|(f, t)| entry(f, t))
}

/// Whether a path is a shipped plan's virtual path (`builtin:…`).
pub fn is_builtin(path: &Path) -> bool {
    path.to_str().is_some_and(|s| s.starts_with(SCHEME))
}

/// A virtual path with `.` and `..` resolved (`builtin:dop/../dop/backup.yaml` →
/// `builtin:dop/backup.yaml`); `None` for a path that is not virtual.
pub fn normalize(path: &Path) -> Option<PathBuf> {
    let rest = path.to_str()?.strip_prefix(SCHEME)?;
    let mut parts: Vec<&str> = Vec::new();
    for c in Path::new(rest).components() {
        match c {
            Component::Normal(p) => parts.push(p.to_str()?),
            Component::ParentDir => {
                parts.pop();
            }
            _ => {}
        }
    }
    Some(PathBuf::from(format!("{SCHEME}{}", parts.join("/"))))
}

/// The embedded text at a virtual path.
pub fn read(path: &Path) -> Option<&'static str> {
    let norm = normalize(path)?;
    let file = norm.to_str()?.strip_prefix(SCHEME)?;
    FILES.iter().find(|(f, _)| *f == file).map(|(_, t)| *t)
}

/// The one error for a plan file that cannot be read, whichever command reads it (`run`,
/// `preview`, `graph`, `validate`, `drill`, `plans diff`): `cannot read plan file PATH:
/// REASON`, the reason in words (no such file, a folder, permission denied).
pub fn unreadable(path: &Path, e: &std::io::Error) -> Diagnostic {
    let reason = match e.kind() {
        std::io::ErrorKind::NotFound => "no such file".to_string(),
        std::io::ErrorKind::PermissionDenied => "permission denied".to_string(),
        std::io::ErrorKind::IsADirectory => "it is a folder".to_string(),
        _ => e.to_string(),
    };
    unreadable_because(path, &reason)
}

fn unreadable_because(path: &Path, reason: &str) -> Diagnostic {
    Diagnostic::new(
        Code::Io,
        format!("cannot read plan file {}: {reason}", path.display()),
    )
}

/// A plan argument of `run`, `preview`, `graph`, `validate` or `drill`: a path that exists
/// wins (it must be a file that can be opened); otherwise the name of a shipped plan (with or
/// without `builtin:`); otherwise an error that suggests the closest shipped name.
pub fn resolve_arg(arg: &Path) -> Result<PathBuf, Diagnostic> {
    if arg.is_dir() {
        return Err(unreadable_because(arg, "it is a folder")
            .help("name a plan file in it (`opsplan validate` searches folders)"));
    }
    if arg.exists() {
        return match std::fs::File::open(arg) {
            Ok(_) => Ok(arg.to_path_buf()),
            Err(e) => Err(unreadable(arg, &e)),
        };
    }
    let text = arg.to_string_lossy();
    if let Some(e) = get(&text) {
        return Ok(e.path());
    }
    let bare = text.strip_prefix(SCHEME).unwrap_or(&text);
    let bare = name_of(bare.strip_prefix("plans/").unwrap_or(bare));
    let names = names();
    Err(
        unreadable_because(arg, "no such file, and no shipped plan of that name").suggest(
            bare,
            names.iter().map(String::as_str),
            "`opsplan plans` lists the shipped plans",
        ),
    )
}

/// A parsed `uses: builtin:NAME@REQ`.
#[derive(Debug, Clone)]
pub struct UsesRef {
    pub name: String,
    /// The version requirement after `@`, when given.
    pub req: Option<semver::VersionReq>,
}

/// Parses a `uses:` value: `None` when it is a file path, else the reference or why it is
/// not one.
pub fn parse_uses(text: &str) -> Option<Result<UsesRef, String>> {
    let rest = text.trim().strip_prefix(SCHEME)?;
    let (name, req) = match rest.split_once('@') {
        Some((n, r)) => (n.trim(), Some(r.trim())),
        None => (rest.trim(), None),
    };
    if name.is_empty() {
        return Some(Err(format!(
            "`{text}` names no shipped plan: write `{SCHEME}NAME@REQUIREMENT`"
        )));
    }
    let req = match req {
        None => None,
        Some(r) => match semver::VersionReq::parse(r) {
            Ok(r) => Some(r),
            Err(e) => {
                return Some(Err(format!(
                    "`{r}` in `{text}` is not a semver requirement: {e}"
                )))
            }
        },
    };
    Some(Ok(UsesRef {
        name: name.to_string(),
        req,
    }))
}

/// Suggestion help for a `builtin:` name that is not shipped.
pub fn unknown_name(name: &str) -> String {
    let names = names();
    match did_you_mean(name, names.iter().map(String::as_str)) {
        Some(s) => format!("did you mean `{SCHEME}{s}`? (`opsplan plans` lists the shipped plans)"),
        None => "`opsplan plans` lists the shipped plans and fragments".to_string(),
    }
}

/// The first line of an exported copy starts with this.
pub const ORIGIN_MARK: &str = "# opsplan-origin: ";
const ORIGIN_NOTE: &str = "# An editable copy of a shipped plan (`opsplan plans export`). Keep the line above:\n# `opsplan plans diff FILE` reads it to show what changed upstream and what changed here.\n";

/// Where an exported copy came from, as its first line records it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Origin {
    pub name: String,
    pub version: Option<String>,
    /// sha256 of the shipped text the copy was made from.
    pub sha256: String,
}

impl Origin {
    fn line(&self) -> String {
        format!(
            "{ORIGIN_MARK}{SCHEME}{}@{} sha256:{}\n",
            self.name,
            self.version.as_deref().unwrap_or("unversioned"),
            self.sha256
        )
    }
}

/// Reads the origin line of an exported copy.
pub fn parse_origin(text: &str) -> Option<Origin> {
    let line = text.lines().next()?.strip_prefix(ORIGIN_MARK)?;
    let (reference, hash) = line.trim().split_once(" sha256:")?;
    let (name, version) = reference.strip_prefix(SCHEME)?.rsplit_once('@')?;
    Some(Origin {
        name: name.to_string(),
        version: (version != "unversioned").then(|| version.to_string()),
        sha256: hash.trim().to_string(),
    })
}

/// The text of a copy without the header [`export`] wrote.
pub fn strip_header(text: &str) -> &str {
    let Some(rest) = text
        .strip_prefix(ORIGIN_MARK)
        .and_then(|r| r.split_once('\n'))
        .map(|(_, r)| r)
    else {
        return text;
    };
    rest.strip_prefix(ORIGIN_NOTE).unwrap_or(rest)
}

/// The body of an exported copy: the shipped text with its `$schema` comment line dropped
/// (its relative path points into this repository) and every `uses:` of a shipped file by
/// path turned into `builtin:NAME@^VERSION`, so the copy still resolves outside plans/.
pub fn export_body(e: &Entry) -> String {
    let mut text = e.text.to_string();
    let Ok(root) = Node::parse(FileId(0), e.text) else {
        return text;
    };
    let mut edits: Vec<(usize, usize, String)> = Vec::new();
    let dir = Path::new(e.file).parent().unwrap_or(Path::new(""));
    if let Some(NodeValue::Seq(steps)) = root.get("steps").map(|s| &s.value) {
        for step in steps {
            let Some(uses) = step.get("uses") else {
                continue;
            };
            let Some(target) = uses.as_str().filter(|u| !u.starts_with(SCHEME)) else {
                continue;
            };
            let virt = PathBuf::from(format!("{SCHEME}{}", dir.join(target).display()));
            let Some(used) = normalize(&virt).and_then(|p| get(&p.to_string_lossy())) else {
                continue;
            };
            let req = used
                .version
                .as_deref()
                .map_or(String::new(), |v| format!("@^{v}"));
            edits.push((
                uses.span.offset,
                uses.span.len,
                format!("{SCHEME}{}{req}", used.name),
            ));
        }
    }
    edits.sort_by_key(|e| std::cmp::Reverse(e.0));
    for (offset, len, with) in edits {
        if text.is_char_boundary(offset) && text.is_char_boundary(offset + len) {
            text.replace_range(offset..offset + len, &with);
        }
    }
    if text.starts_with("# yaml-language-server:") {
        text = text.split_once('\n').map_or("", |(_, r)| r).to_string();
    }
    text
}

/// What [`export`] wrote.
#[derive(Debug, Clone)]
pub struct Exported {
    /// The editable copy.
    pub file: PathBuf,
    /// The copy as exported, without the header: the base `diff` compares both sides with.
    pub base: PathBuf,
    pub origin: Origin,
}

/// The base copy beside an exported file: `backup.yaml` → `backup.yaml.origin`.
pub fn base_path(file: &Path) -> PathBuf {
    let mut s = file.as_os_str().to_owned();
    s.push(".origin");
    PathBuf::from(s)
}

/// Writes an editable copy of a shipped plan into `dir` (as `dir/<file name>`) with its
/// origin on the first line, and the base copy beside it. Refuses to overwrite.
pub fn export(name: &str, dir: &Path) -> Result<Exported, Diagnostic> {
    let e = get(name).ok_or_else(|| {
        Diagnostic::new(Code::Io, format!("no shipped plan `{name}`")).suggest(
            name,
            names().iter().map(String::as_str),
            "`opsplan plans` lists the shipped plans",
        )
    })?;
    let file_name = Path::new(e.file)
        .file_name()
        .map_or_else(|| PathBuf::from("plan.yaml"), PathBuf::from);
    let file = dir.join(file_name);
    let base = base_path(&file);
    if file.exists() {
        return Err(Diagnostic::new(
            Code::Io,
            format!("{} exists; nothing was written", file.display()),
        )
        .help("export into another folder, or remove the file first"));
    }
    let origin = Origin {
        name: e.name.clone(),
        version: e.version.clone(),
        sha256: e.sha256.clone(),
    };
    let body = export_body(&e);
    let io = |p: &Path, err: std::io::Error| {
        Diagnostic::new(Code::Io, format!("cannot write {}: {err}", p.display()))
    };
    std::fs::create_dir_all(dir).map_err(|err| io(dir, err))?;
    std::fs::write(&file, format!("{}{ORIGIN_NOTE}{body}", origin.line()))
        .map_err(|err| io(&file, err))?;
    std::fs::write(&base, &body).map_err(|err| io(&base, err))?;
    Ok(Exported { file, base, origin })
}

/// What [`diff`] found for an exported copy.
#[derive(Debug, Clone, serde::Serialize)]
pub struct DiffReport {
    pub origin: Origin,
    /// The shipped version now and its hash.
    pub version_now: Option<String>,
    pub sha256_now: String,
    /// The shipped text changed since the export.
    pub upstream_changed: bool,
    /// Unified diff of the shipped plan from the export to now (both as exported), when
    /// the base copy is there to compare with.
    pub upstream: Option<String>,
    /// Unified diff of what the team changed in the copy since the export (or, without a
    /// base copy after an upstream change, the shipped plan now against the copy).
    pub team: String,
    /// `team` compares against the shipped plan now, because the base copy is missing.
    pub team_against_now: bool,
}

fn unified(a: &str, b: &str, a_name: &str, b_name: &str) -> String {
    similar::TextDiff::from_lines(a, b)
        .unified_diff()
        .context_radius(3)
        .header(a_name, b_name)
        .to_string()
}

/// Compares an exported copy with the shipped plan it came from.
pub fn diff(file: &Path) -> Result<DiffReport, Diagnostic> {
    let text = std::fs::read_to_string(file).map_err(|e| unreadable(file, &e))?;
    let origin = parse_origin(&text).ok_or_else(|| {
        Diagnostic::new(
            Code::Io,
            format!(
                "{} records no origin: its first line is not `{ORIGIN_MARK}…`",
                file.display()
            ),
        )
        .help("only a copy written by `opsplan plans export` can be compared")
    })?;
    let now = get(&origin.name).ok_or_else(|| {
        Diagnostic::new(
            Code::Io,
            format!(
                "{} came from `{SCHEME}{}`, which this opsplan no longer ships",
                file.display(),
                origin.name
            ),
        )
        .help(unknown_name(&origin.name))
    })?;
    let body = strip_header(&text);
    let now_body = export_body(&now);
    let base = std::fs::read_to_string(base_path(file)).ok();
    let upstream_changed = now.sha256 != origin.sha256;
    let at = |v: Option<&str>| v.unwrap_or("unversioned").to_string();
    let then_name = format!(
        "{SCHEME}{}@{} (exported)",
        origin.name,
        at(origin.version.as_deref())
    );
    let now_name = format!(
        "{SCHEME}{}@{} (shipped now)",
        now.name,
        at(now.version.as_deref())
    );
    let here = file.display().to_string();
    let (upstream, team, team_against_now) = match (upstream_changed, &base) {
        (false, Some(b)) => (None, unified(b, body, &then_name, &here), false),
        (false, None) => (None, unified(&now_body, body, &then_name, &here), false),
        (true, Some(b)) => (
            Some(unified(b, &now_body, &then_name, &now_name)),
            unified(b, body, &then_name, &here),
            false,
        ),
        (true, None) => (None, unified(&now_body, body, &now_name, &here), true),
    };
    Ok(DiffReport {
        origin,
        version_now: now.version.clone(),
        sha256_now: now.sha256.clone(),
        upstream_changed,
        upstream,
        team,
        team_against_now,
    })
}
