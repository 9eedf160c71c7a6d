//! Backup generations in a local folder: every backup run writes a new generation, which
//! becomes the latest only once its manifest is written and verified; restores select one;
//! retention prunes old ones. The on-disk format is docs/design/0006-generations.md:
//!
//! ```text
//! <dir>/
//!   20261201T224227Z-20261201-224227-1a2b3c4d/   a generation: <UTC start>-<run id>
//!     opsplan-generation.json                    its marker: state, run, previous
//!     opsplan-manifest.json                      written last by `manifest`
//!     …backup content…
//!   latest -> 20261201T224227Z-20261201-224227-1a2b3c4d
//! ```
//!
//! A generation's state is its marker's `state` (`incomplete` from `generation.begin`,
//! `verified` or `verify-failed` from `generation.commit`), checked against the manifest
//! it names: the folder alone says which generations can be restored. The marker and the
//! manifest are never backup content (`manifest` and `verify` leave both out).
//!
//! [`list`] is the library face `opsplan generations` prints.

pub mod begin;
pub mod commit;
pub mod prune;
pub mod select;

use crate::fs::{io_error, is_temp_name, sync_dir, TempFile};
use crate::StepError;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::fs;
use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};

/// The marker's file name, at the top of each generation.
pub const MARKER: &str = crate::fs::GENERATION_MARKER;
/// The pointer to the latest verified generation: a symlink in the backup location.
pub const LATEST: &str = "latest";
pub const FORMAT: &str = "opsplan-generation";
pub const FORMAT_VERSION: u32 = 1;

/// What a generation can be used for, as its marker (checked against its manifest) says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum State {
    /// Begun and not committed: a backup in progress, or one that died.
    Incomplete,
    /// Its manifest was written and the folder verified against it: restorable.
    Verified,
    /// `generation.commit` found the folder different from its manifest.
    VerifyFailed,
}

impl State {
    /// The words people read: `complete and verified`, `incomplete`, `verify failed`.
    pub fn words(self) -> &'static str {
        match self {
            State::Incomplete => "incomplete",
            State::Verified => "complete and verified",
            State::VerifyFailed => "verify failed",
        }
    }
}

impl std::fmt::Display for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.words())
    }
}

/// The marker document (format version 1).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Marker {
    pub format: String,
    pub format_version: u32,
    /// The generation's folder name.
    pub name: String,
    pub run_id: String,
    pub plan: String,
    /// When `generation.begin` created it (UTC, RFC 3339).
    pub started: String,
    /// The latest verified generation when this one began (what a copy may reuse).
    #[serde(default)]
    pub previous: Option<String>,
    pub state: State,
    /// When `generation.commit` verified it.
    #[serde(default)]
    pub committed: Option<String>,
    /// The manifest's file name in the generation (set by commit).
    #[serde(default)]
    pub manifest: Option<String>,
    /// SHA-256 of the manifest file that was verified.
    #[serde(default)]
    pub manifest_sha256: Option<String>,
    /// Why verification failed.
    #[serde(default)]
    pub problem: Option<String>,
}

/// One generation as [`list`] finds it.
#[derive(Debug, Clone, Serialize)]
pub struct Generation {
    pub name: String,
    #[serde(skip)]
    pub path: PathBuf,
    /// Start time from the name, Unix seconds.
    #[serde(skip)]
    pub time: i64,
    /// Start time from the name, RFC 3339.
    pub started: String,
    pub run_id: String,
    pub state: State,
    /// Why it is not verified (no marker, manifest changed since commit, …).
    pub reason: Option<String>,
    /// Whether `latest` points at it.
    pub latest: bool,
    #[serde(skip)]
    pub marker: Option<Marker>,
}

impl Generation {
    pub fn usable(&self) -> bool {
        self.state == State::Verified
    }
}

/// The generations of a backup location, oldest first.
#[derive(Debug, Clone, Serialize)]
pub struct Listing {
    pub dir: PathBuf,
    pub generations: Vec<Generation>,
    /// The generation `latest` points at, when it does.
    pub latest: Option<String>,
    /// What is wrong with the `latest` pointer (dangling, not a symlink).
    pub latest_problem: Option<String>,
    /// Entries that are not generations (an old single-folder backup, other files).
    pub other: Vec<String>,
    /// Leftovers of an interrupted begin or prune (`.<name>.opsplan-<8 hex>`).
    pub leftovers: Vec<String>,
}

impl Listing {
    /// The latest verified generation: the one `latest` points at when it is verified,
    /// else (a crash between the marker and the pointer) the newest verified one.
    pub fn latest_verified(&self) -> Option<&Generation> {
        self.latest
            .as_deref()
            .and_then(|n| self.get(n))
            .filter(|g| g.usable())
            .or_else(|| self.generations.iter().rev().find(|g| g.usable()))
    }
    pub fn get(&self, name: &str) -> Option<&Generation> {
        self.generations.iter().find(|g| g.name == name)
    }
    pub fn usable_names(&self) -> Vec<String> {
        self.generations
            .iter()
            .rev()
            .filter(|g| g.usable())
            .map(|g| g.name.clone())
            .collect()
    }
}

/// Why a generation cannot be listed or used.
#[derive(Debug, thiserror::Error)]
pub enum GenerationError {
    #[error("backup location {} does not exist", .0.display())]
    NoLocation(PathBuf),
    #[error("cannot read backup location {}: {cause}", .path.display())]
    Unreadable { path: PathBuf, cause: String },
    #[error("generation `{name}` in {} cannot be restored: it is {state}{}; usable generations: {}",
        .dir.display(), .reason.as_ref().map(|r| format!(" ({r})")).unwrap_or_default(), usable_text(.usable))]
    Unusable {
        dir: PathBuf,
        name: String,
        state: State,
        reason: Option<String>,
        usable: Vec<String>,
    },
    #[error("no generation `{name}` in {}; usable generations: {}", .dir.display(), usable_text(.usable))]
    NotFound {
        dir: PathBuf,
        name: String,
        usable: Vec<String>,
    },
    #[error("no complete and verified generation in {}{}", .dir.display(), others_text(.others))]
    NoneVerified {
        dir: PathBuf,
        others: Vec<(String, State)>,
    },
}

fn usable_text(usable: &[String]) -> String {
    if usable.is_empty() {
        "none".into()
    } else {
        usable.join(", ")
    }
}

fn others_text(others: &[(String, State)]) -> String {
    if others.is_empty() {
        " (it holds no generation)".into()
    } else {
        format!(
            "; it holds {}",
            others
                .iter()
                .map(|(n, s)| format!("{n} ({s})"))
                .collect::<Vec<_>>()
                .join(", ")
        )
    }
}

impl From<GenerationError> for StepError {
    fn from(e: GenerationError) -> StepError {
        StepError::fatal(e.to_string())
    }
}

/// `20261201T224227Z-<run id>` for a start time and run id.
pub fn format_name(secs: i64, run_id: &str) -> String {
    let t: String = crate::fs::rfc3339(secs, 0)
        .chars()
        .filter(|c| *c != '-' && *c != ':')
        .collect();
    format!("{t}-{run_id}")
}

/// Whether a run id can be part of a folder name: `[A-Za-z0-9._-]`, not starting with `.`.
pub fn valid_run_id(id: &str) -> bool {
    !id.is_empty()
        && !id.starts_with('.')
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
}

/// The start time (Unix seconds) and run id of a generation name, or `None` when the name
/// is not one.
pub fn parse_name(name: &str) -> Option<(i64, &str)> {
    let (stamp, run_id) = (name.get(..16)?, name.get(17..)?);
    if name.as_bytes().get(16) != Some(&b'-') || !valid_run_id(run_id) {
        return None;
    }
    if !stamp
        .bytes()
        .all(|c| c.is_ascii_digit() || c == b'T' || c == b'Z')
    {
        return None;
    }
    let time = jiff::civil::DateTime::strptime("%Y%m%dT%H%M%SZ", stamp).ok()?;
    let secs = jiff::tz::TimeZone::UTC.to_timestamp(time).ok()?.as_second();
    Some((secs, run_id))
}

pub(crate) fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// `3d 4h`, `5m`, `12s`: an age in its two largest units.
pub fn age_text(secs: i64) -> String {
    if secs < 0 {
        return "in the future".into();
    }
    // Cut to the two largest units, then printed by jiff (`3d 4h`, `1h 2m`, `59s`).
    let unit = match secs {
        86_400.. => 3600,
        3600.. => 60,
        _ => 1,
    };
    let cut = secs - secs % unit;
    let span = jiff::Span::new()
        .days(cut / 86_400)
        .hours(cut % 86_400 / 3600)
        .minutes(cut % 3600 / 60)
        .seconds(cut % 60);
    jiff::fmt::friendly::SpanPrinter::new()
        .designator(jiff::fmt::friendly::Designator::Compact)
        .span_to_string(&span)
}

/// Reads a generation's marker; `Ok(None)` when it has none.
pub fn read_marker(gen: &Path) -> Result<Option<Marker>, String> {
    let path = gen.join(MARKER);
    let text = match fs::read(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
    };
    let v: serde_json::Value = serde_json::from_slice(&text)
        .map_err(|e| format!("{} is not valid JSON: {e}", path.display()))?;
    if v.get("format").and_then(|f| f.as_str()) != Some(FORMAT) {
        return Err(format!("{} is not a generation marker", path.display()));
    }
    let version = v.get("format_version").and_then(serde_json::Value::as_u64);
    if version != Some(u64::from(FORMAT_VERSION)) {
        return Err(format!(
            "{} has format version {}; this opsplan reads version {FORMAT_VERSION}",
            path.display(),
            version.map_or("?".into(), |v| v.to_string())
        ));
    }
    serde_json::from_value(v)
        .map(Some)
        .map_err(|e| format!("{} is malformed: {e}", path.display()))
}

/// Writes a marker atomically and durably (temporary name, fsync, rename, fsync folder).
pub(crate) fn write_marker(gen: &Path, marker: &Marker) -> Result<(), StepError> {
    let mut text = serde_json::to_vec_pretty(marker)
        .map_err(|e| StepError::fatal(format!("internal error: marker not serializable: {e}")))?;
    text.push(b'\n');
    let target = gen.join(MARKER);
    let mut temp = TempFile::create(&target, 0o644)?;
    if let Some(file) = temp.file.as_mut() {
        file.write_all(&text)
            .map_err(|e| io_error("write", &temp.path, &e))?;
    }
    temp.commit(&target, true)
}

/// Points `latest` at `name`: a new symlink under a temporary name renamed over the old
/// one (rename is atomic: readers see the old pointer or the new, never none), then the
/// folder fsynced.
pub(crate) fn set_latest(dir: &Path, name: &str) -> Result<(), StepError> {
    let temp = dir.join(format!(".{LATEST}.opsplan-{:08x}", rand::random::<u32>()));
    std::os::unix::fs::symlink(name, &temp)
        .map_err(|e| io_error("create a symlink in", dir, &e))?;
    if let Err(e) = fs::rename(&temp, dir.join(LATEST)) {
        let _ = fs::remove_file(&temp);
        return Err(io_error("move the latest pointer in", dir, &e));
    }
    sync_dir(dir)
}

/// The state of one generation folder: its marker, checked against its manifest.
fn state_of(path: &Path) -> (State, Option<String>, Option<Marker>) {
    let marker = match read_marker(path) {
        Ok(Some(m)) => m,
        Ok(None) => {
            return (
                State::Incomplete,
                Some(format!("no {MARKER}: its begin did not finish")),
                None,
            )
        }
        Err(e) => return (State::Incomplete, Some(e), None),
    };
    match marker.state {
        State::Verified => {
            let manifest = path.join(
                marker
                    .manifest
                    .as_deref()
                    .unwrap_or(crate::fs::manifest::DEFAULT_FILE),
            );
            let reason = match fs::read(&manifest) {
                Ok(text) => {
                    let sha = hex::encode(Sha256::digest(&text));
                    (marker.manifest_sha256.as_deref() != Some(sha.as_str()))
                        .then(|| "its manifest changed since it was verified".to_string())
                }
                Err(_) => Some("its manifest is gone".to_string()),
            };
            match reason {
                None => (State::Verified, None, Some(marker)),
                Some(r) => (State::VerifyFailed, Some(r), Some(marker)),
            }
        }
        State::VerifyFailed => {
            let problem = marker.problem.clone();
            (State::VerifyFailed, problem, Some(marker))
        }
        State::Incomplete => (
            State::Incomplete,
            Some("not committed: the backup is running or did not finish".into()),
            Some(marker),
        ),
    }
}

/// Reads a backup location: every generation with its state, oldest first, and the
/// `latest` pointer. Reads only; a missing folder is an error.
pub fn list(dir: &Path) -> Result<Listing, GenerationError> {
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == ErrorKind::NotFound => {
            return Err(GenerationError::NoLocation(dir.to_path_buf()))
        }
        Err(e) => {
            return Err(GenerationError::Unreadable {
                path: dir.to_path_buf(),
                cause: e.to_string(),
            })
        }
    };
    let mut listing = Listing {
        dir: dir.to_path_buf(),
        generations: Vec::new(),
        latest: None,
        latest_problem: None,
        other: Vec::new(),
        leftovers: Vec::new(),
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let text = name.to_string_lossy().into_owned();
        if text == LATEST {
            match fs::read_link(entry.path()) {
                Ok(target) => listing.latest = Some(target.to_string_lossy().into_owned()),
                Err(_) => {
                    listing.latest_problem = Some(format!("{LATEST} is not a symlink"));
                }
            }
            continue;
        }
        if is_temp_name(&name) {
            listing.leftovers.push(text);
            continue;
        }
        let is_dir = entry.file_type().is_ok_and(|t| t.is_dir());
        match parse_name(&text) {
            Some((time, run_id)) if is_dir => {
                let path = entry.path();
                let (state, reason, marker) = state_of(&path);
                listing.generations.push(Generation {
                    started: crate::fs::rfc3339(time, 0),
                    run_id: run_id.to_string(),
                    name: text,
                    path,
                    time,
                    state,
                    reason,
                    latest: false,
                    marker,
                });
            }
            _ => listing.other.push(text),
        }
    }
    listing.generations.sort_by(|a, b| a.name.cmp(&b.name));
    listing.other.sort();
    listing.leftovers.sort();
    if let Some(target) = listing.latest.clone() {
        match listing.generations.iter_mut().find(|g| g.name == target) {
            Some(g) => g.latest = true,
            None => {
                listing.latest_problem = Some(format!(
                    "{LATEST} points at {target}, which is not a generation here"
                ));
                listing.latest = None;
            }
        }
    }
    Ok(listing)
}

/// The listing as JSON: `dir`, `latest`, `generations` (newest first, each with `name`,
/// `state` (`verified`, `incomplete`, `verify-failed`), `state_text`, `started`,
/// `age_seconds`, `run_id`, `latest`, `reason`), `other`, `leftovers`.
pub fn listing_json(listing: &Listing, now: i64) -> serde_json::Value {
    let generations: Vec<serde_json::Value> = listing
        .generations
        .iter()
        .rev()
        .map(|g| {
            serde_json::json!({
                "name": g.name,
                "state": g.state,
                "state_text": g.state.words(),
                "started": g.started,
                "age_seconds": now - g.time,
                "run_id": g.run_id,
                "latest": g.latest,
                "reason": g.reason,
            })
        })
        .collect();
    serde_json::json!({
        "dir": listing.dir.display().to_string(),
        "latest": listing.latest,
        "latest_problem": listing.latest_problem,
        "generations": generations,
        "other": listing.other,
        "leftovers": listing.leftovers,
    })
}

/// The generation a path names: its location and folder name, which must be a generation
/// name.
pub(crate) fn split_generation(path: &str) -> Result<(PathBuf, String), StepError> {
    let p = Path::new(path.trim_end_matches('/'));
    let name = p
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    if parse_name(&name).is_none() {
        return Err(StepError::fatal(format!(
            "{path} is not a generation folder (its name must be <UTC time>-<run id>, as \
             generation.begin makes it)"
        )));
    }
    Ok((crate::fs::parent_of(p), name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        let n = format_name(1_700_000_000, "20231114-221320-0a0b0c0d");
        assert_eq!(n, "20231114T221320Z-20231114-221320-0a0b0c0d");
        assert_eq!(
            parse_name(&n),
            Some((1_700_000_000, "20231114-221320-0a0b0c0d"))
        );
        assert_eq!(parse_name("buckets"), None);
        assert_eq!(parse_name("20231114T221320Z-"), None);
        assert_eq!(parse_name("20231314T221320Z-x"), None);
        // No 31 February (the hand-written calendar rolled it into March).
        assert_eq!(parse_name("20230231T221320Z-x"), None);
        assert_eq!(parse_name("20231114T221320Z-a/b"), None);
    }

    #[test]
    fn ages_read_in_two_units() {
        assert_eq!(age_text(0), "0s");
        assert_eq!(age_text(59), "59s");
        assert_eq!(age_text(3 * 86_400 + 4 * 3600 + 5), "3d 4h");
        assert_eq!(age_text(3600 + 120), "1h 2m");
    }
}
