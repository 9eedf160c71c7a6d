//! Reading run journals back: one run's metadata and records, and the list of runs.

use super::format::{Meta, Record, EVENTS_FILE, FORMAT, META_FILE};
use crate::exec::events::RunStatus;
use serde::Serialize;
use std::path::{Path, PathBuf};

/// A run journal as read from disk.
#[derive(Debug)]
pub struct Journal {
    pub dir: PathBuf,
    pub meta: Meta,
    pub records: Vec<Record>,
    /// Set when the last line was cut short by a crash; it is ignored.
    pub torn: Option<Torn>,
    /// Bytes of `events.jsonl` up to the end of the last complete record.
    pub valid_len: u64,
    /// Records of kinds this version does not know (a newer opsplan wrote them): skipped,
    /// as (line, kind), and said so, rather than refusing the whole journal.
    pub unknown: Vec<(usize, String)>,
}

/// The event kinds this version writes and reads (`event` of a record).
const KNOWN_KINDS: &[&str] = &[
    "run_started",
    "step_started",
    "step_log",
    "child_started",
    "attempt_failed",
    "step_finished",
    "rollback_started",
    "signal",
    "run_finished",
];

/// A complete line that is a record of a kind this version does not know.
fn unknown_kind(line: &[u8]) -> Option<String> {
    let v: serde_json::Value = serde_json::from_slice(line).ok()?;
    v.get("seq")?.as_u64()?;
    let kind = v.get("event")?.as_str()?;
    (!KNOWN_KINDS.contains(&kind)).then(|| kind.to_string())
}

#[derive(Debug, Clone)]
pub struct Torn {
    pub line: usize,
    pub bytes: usize,
}

impl std::fmt::Display for Torn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "the last record (line {}, {} bytes) was cut short by a crash and is ignored",
            self.line, self.bytes
        )
    }
}

#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    #[error("no run `{run}` in {dir}")]
    NotFound { run: String, dir: String },
    #[error("`{run}` matches {} runs in {dir}: {}; give more of the id", matches.len(), matches.join(", "))]
    Ambiguous {
        run: String,
        dir: String,
        matches: Vec<String>,
    },
    #[error("cannot read {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("{path} is not a run journal this opsplan understands: {detail}")]
    Invalid { path: String, detail: String },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> JournalError + '_ {
    move |source| JournalError::Io {
        path: path.display().to_string(),
        source,
    }
}

pub fn read_meta(dir: &Path) -> Result<Meta, JournalError> {
    let path = dir.join(META_FILE);
    let text = std::fs::read_to_string(&path).map_err(io(&path))?;
    let meta: Meta = serde_json::from_str(&text).map_err(|e| JournalError::Invalid {
        path: path.display().to_string(),
        detail: e.to_string(),
    })?;
    if meta.format > FORMAT {
        return Err(JournalError::Invalid {
            path: path.display().to_string(),
            detail: format!(
                "it has format {}, this opsplan reads formats up to {FORMAT}; use a newer opsplan",
                meta.format
            ),
        });
    }
    Ok(meta)
}

/// What [`parse_events`] read.
pub struct Parsed {
    pub records: Vec<Record>,
    pub torn: Option<Torn>,
    pub valid_len: u64,
    pub unknown: Vec<(usize, String)>,
}

/// Parses `events.jsonl`. Only the last line may be incomplete (a crash mid-write); a bad
/// line anywhere else means the journal was damaged and is an error. A well-formed record of
/// an unknown kind is skipped and reported (the version policy: kinds are added, never
/// changed, so an older reader can still fold what it knows).
pub fn parse_events(text: &[u8], path: &Path) -> Result<Parsed, JournalError> {
    let mut records = Vec::new();
    let mut unknown = Vec::new();
    let mut offset = 0usize;
    let mut line_no = 0usize;
    while offset < text.len() {
        line_no += 1;
        let end = text[offset..].iter().position(|&b| b == b'\n');
        let (line, next) = match end {
            Some(e) => (&text[offset..offset + e], offset + e + 1),
            None => (&text[offset..], text.len()),
        };
        let last = next == text.len();
        match (serde_json::from_slice::<Record>(line), end.is_some()) {
            (Ok(r), true) => records.push(r),
            (Err(_), true) if unknown_kind(line).is_some() => {
                unknown.push((line_no, unknown_kind(line).unwrap_or_default()));
            }
            (Err(e), true) if !last => {
                return Err(JournalError::Invalid {
                    path: path.display().to_string(),
                    detail: format!("line {line_no} is not a record ({e})"),
                })
            }
            // The last line: half a record, or one without its newline (a crash mid-write).
            _ => {
                let torn = Torn {
                    line: line_no,
                    bytes: line.len(),
                };
                return Ok(Parsed {
                    records,
                    torn: Some(torn),
                    valid_len: offset as u64,
                    unknown,
                });
            }
        }
        offset = next;
    }
    Ok(Parsed {
        records,
        torn: None,
        valid_len: offset as u64,
        unknown,
    })
}

pub fn open(dir: &Path) -> Result<Journal, JournalError> {
    let meta = read_meta(dir)?;
    let path = dir.join(EVENTS_FILE);
    let bytes = std::fs::read(&path).map_err(io(&path))?;
    let Parsed {
        records,
        torn,
        valid_len,
        unknown,
    } = parse_events(&bytes, &path)?;
    Ok(Journal {
        dir: dir.to_path_buf(),
        meta,
        records,
        torn,
        valid_len,
        unknown,
    })
}

/// The word that names the newest run (`opsplan resume last`, `opsplan runs show last`).
pub const LAST: &str = "last";

/// The journal of run `run` under `root`: a run id, a unique prefix of one, or [`LAST`] (the
/// run that started last; run ids start with their start time).
pub fn find(root: &Path, run: &str) -> Result<PathBuf, JournalError> {
    if run == LAST {
        return list_dirs(root).pop().ok_or_else(|| JournalError::NotFound {
            run: run.into(),
            dir: root.display().to_string(),
        });
    }
    let exact = root.join(run);
    if !run.is_empty() && !run.contains('/') && exact.join(META_FILE).exists() {
        return Ok(exact);
    }
    let matches: Vec<PathBuf> = list_dirs(root)
        .into_iter()
        .filter(|d| {
            d.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(run))
        })
        .collect();
    match matches.as_slice() {
        [one] if !run.is_empty() => Ok(one.clone()),
        [_, _, ..] if !run.is_empty() => Err(JournalError::Ambiguous {
            run: run.into(),
            dir: root.display().to_string(),
            matches: matches
                .iter()
                .filter_map(|d| d.file_name().map(|n| n.to_string_lossy().into_owned()))
                .collect(),
        }),
        _ => Err(JournalError::NotFound {
            run: run.into(),
            dir: root.display().to_string(),
        }),
    }
}

/// Run directories under `root`, oldest first (run ids start with their start time).
pub fn list_dirs(root: &Path) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(root)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.path())
                .filter(|p| p.join(META_FILE).exists())
                .collect()
        })
        .unwrap_or_default();
    dirs.sort();
    dirs
}

/// What a run is, as far as the journal and the owner lock can tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Liveness {
    Finished(RunStatus),
    /// A process holds the run's journal open.
    Running,
    /// No process works on it and it did not finish: it crashed (resume it).
    Interrupted,
}

impl Liveness {
    pub fn label(self) -> &'static str {
        match self {
            Liveness::Finished(RunStatus::Succeeded) => "succeeded",
            Liveness::Finished(RunStatus::Failed) => "failed",
            Liveness::Finished(RunStatus::Cancelled) => "cancelled",
            Liveness::Finished(RunStatus::RollbackFailed) => "rollback-failed",
            Liveness::Running => "running",
            Liveness::Interrupted => "interrupted",
        }
    }
}

/// Finished, running (someone holds the journal) or interrupted.
pub fn liveness(dir: &Path, st: &super::state::RunState) -> Liveness {
    if let Some(s) = st.status {
        return Liveness::Finished(s);
    }
    match super::recorder::take_owner(dir) {
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => Liveness::Running,
        _ => Liveness::Interrupted,
    }
}
