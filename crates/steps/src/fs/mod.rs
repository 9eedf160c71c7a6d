//! Files and backups on local disk: sync, archives, manifests, verification, removal.
//!
//! All of it is blocking file I/O, so each step runs its work on a blocking thread
//! ([`blocking`]) that polls the cancellation token between files and between chunks of a
//! file: a cancelled step stops within a chunk and removes its temporary file, so no
//! half-written file is ever left under its final name.

pub mod archive;
pub mod manifest;
pub mod remove;
pub mod sync;
pub mod verify;

use super::{StepContext, StepError};
use globset::{GlobBuilder, GlobSet, GlobSetBuilder};
use opsplan_plan::diagnostic::{Code, Diagnostic};
use opsplan_plan::source::de::is_template;
use opsplan_plan::source::Node;
use sha2::{Digest, Sha256};
use std::collections::HashSet;
use std::fs::{self, File, OpenOptions};
use std::io::{self, ErrorKind, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use tokio_util::sync::CancellationToken;

/// Size of the reads and writes between two looks at the cancellation token.
const CHUNK: usize = 1024 * 1024;

/// Runs blocking work on tokio's blocking pool. The work gets the step's token and must
/// return [`StepError::cancelled`] soon after it fires; this future waits for that, so a
/// timeout or a failure elsewhere finds the temporary files already cleaned up.
pub(crate) async fn blocking<T: Send + 'static>(
    ctx: &StepContext,
    work: impl FnOnce(&CancellationToken) -> Result<T, StepError> + Send + 'static,
) -> Result<T, StepError> {
    let token = ctx.cancel.clone();
    match tokio::task::spawn_blocking(move || work(&token)).await {
        Ok(result) => result,
        Err(e) => Err(StepError::fatal(format!(
            "internal error: the file work stopped unexpectedly ({e})"
        ))),
    }
}

pub(crate) fn check_cancel(token: &CancellationToken) -> Result<(), StepError> {
    if token.is_cancelled() {
        Err(StepError::cancelled())
    } else {
        Ok(())
    }
}

/// An I/O failure as a sentence naming what was done, where, and the cause in words.
/// Causes that another attempt cannot cure (missing, forbidden, wrong kind) are fatal.
pub(crate) fn io_error(action: &str, path: &Path, e: &io::Error) -> StepError {
    let (cause, fatal) = match e.kind() {
        ErrorKind::NotFound => ("no such file or folder".to_string(), true),
        ErrorKind::PermissionDenied => ("permission denied".to_string(), true),
        ErrorKind::NotADirectory => ("a parent in the path is not a folder".to_string(), true),
        ErrorKind::IsADirectory => ("it is a folder".to_string(), true),
        ErrorKind::DirectoryNotEmpty => ("the folder is not empty".to_string(), true),
        ErrorKind::ReadOnlyFilesystem => ("the file system is read-only".to_string(), true),
        ErrorKind::StorageFull => ("no space left on the device".to_string(), false),
        ErrorKind::AlreadyExists => ("it already exists".to_string(), true),
        _ => (
            e.to_string()
                .split(" (os error")
                .next()
                .unwrap_or_default()
                .to_lowercase(),
            false,
        ),
    };
    let message = format!("cannot {action} {}: {cause}", path.display());
    if fatal {
        StepError::fatal(message)
    } else {
        StepError::new(message)
    }
}

/// Whether the process runs with effective uid 0, the only case where ownership can be
/// given away (read from /proc so the engine needs no extra libc feature).
pub(crate) fn running_as_root() -> bool {
    static ROOT: OnceLock<bool> = OnceLock::new();
    *ROOT.get_or_init(|| {
        fs::read_to_string("/proc/self/status")
            .ok()
            .and_then(|s| {
                s.lines()
                    .find_map(|l| l.strip_prefix("Uid:"))
                    .and_then(|l| l.split_whitespace().nth(1).map(|e| e == "0"))
            })
            .unwrap_or(false)
    })
}

/// A path's text with `/` separators, as manifests and globs see it.
pub(crate) fn rel_text(rel: &Path) -> Result<String, StepError> {
    rel.to_str().map(str::to_string).ok_or_else(|| {
        StepError::fatal(format!(
            "file name {} is not valid UTF-8, which a manifest cannot record",
            rel.display()
        ))
    })
}

/// Include and exclude globs over paths relative to the walked folder. A pattern with a
/// `/` matches the whole relative path (`db/**`); one without matches the file name at
/// any depth (`*.log`), as in rsync and .gitignore.
#[derive(Debug, Default)]
pub(crate) struct Filter {
    include: Option<(GlobSet, GlobSet)>,
    exclude: (GlobSet, GlobSet),
}

impl Filter {
    pub(crate) fn new(include: &[String], exclude: &[String]) -> Result<Filter, StepError> {
        let include = if include.is_empty() {
            None
        } else {
            Some(build_sets(include, "include")?)
        };
        Ok(Filter {
            include,
            exclude: build_sets(exclude, "exclude")?,
        })
    }

    fn hit(sets: &(GlobSet, GlobSet), rel: &Path) -> bool {
        sets.0.is_match(rel) || rel.file_name().is_some_and(|n| sets.1.is_match(n))
    }

    /// Excluded entries are skipped; an excluded folder with everything below it.
    pub(crate) fn excluded(&self, rel: &Path) -> bool {
        Self::hit(&self.exclude, rel)
    }

    /// Whether a file (not a folder) is selected by the include patterns.
    pub(crate) fn included(&self, rel: &Path) -> bool {
        self.include
            .as_ref()
            .is_none_or(|sets| Self::hit(sets, rel))
    }

    pub(crate) fn has_includes(&self) -> bool {
        self.include.is_some()
    }
}

fn build_sets(patterns: &[String], field: &str) -> Result<(GlobSet, GlobSet), StepError> {
    let mut full = GlobSetBuilder::new();
    let mut name = GlobSetBuilder::new();
    for p in patterns {
        let glob = GlobBuilder::new(p.trim_start_matches('/'))
            .literal_separator(true)
            .build()
            .map_err(|e| StepError::fatal(format!("bad glob `{p}` in `{field}`: {}", e.kind())))?;
        if p.contains('/') {
            full.add(glob);
        } else {
            name.add(glob);
        }
    }
    let build = |b: GlobSetBuilder| {
        b.build()
            .map_err(|e| StepError::fatal(format!("bad globs in `{field}`: {e}")))
    };
    Ok((build(full)?, build(name)?))
}

/// One entry under a walked root.
pub(crate) struct Walked {
    pub rel: PathBuf,
    pub path: PathBuf,
    pub meta: fs::Metadata,
}

/// Every entry below `root` (not `root` itself), sorted by name, parents before children,
/// never following symlinks; excluded folders are not entered.
pub(crate) fn walk(
    root: &Path,
    filter: &Filter,
    token: &CancellationToken,
) -> Result<Vec<Walked>, StepError> {
    let mut out = Vec::new();
    let iter = walkdir::WalkDir::new(root)
        .min_depth(1)
        .follow_links(false)
        .sort_by_file_name()
        .into_iter()
        .filter_entry(|e| {
            e.path()
                .strip_prefix(root)
                .map_or(true, |rel| !filter.excluded(rel))
        });
    for entry in iter {
        check_cancel(token)?;
        let entry = entry.map_err(|e| {
            let path = e.path().unwrap_or(root).to_path_buf();
            match e.io_error() {
                Some(io) => io_error("read", &path, io),
                None => StepError::fatal(format!("cannot read {}: {e}", path.display())),
            }
        })?;
        let meta = entry.metadata().map_err(|e| {
            StepError::fatal(format!("cannot read {}: {e}", entry.path().display()))
        })?;
        let rel = entry
            .path()
            .strip_prefix(root)
            .unwrap_or(entry.path())
            .to_path_buf();
        out.push(Walked {
            rel,
            path: entry.path().to_path_buf(),
            meta,
        });
    }
    Ok(out)
}

/// The relative paths a copy of `entries` holds: every file the filter includes, and
/// the folders on the way to them (all folders when there are no include patterns).
pub(crate) fn selected(entries: &[Walked], filter: &Filter) -> HashSet<PathBuf> {
    let mut wanted = HashSet::new();
    for e in entries {
        if !e.meta.is_dir() && filter.included(&e.rel) {
            wanted.insert(e.rel.clone());
            for a in e.rel.ancestors().skip(1) {
                if !a.as_os_str().is_empty() {
                    wanted.insert(a.to_path_buf());
                }
            }
        } else if e.meta.is_dir() && (!filter.has_includes() || filter.included(&e.rel)) {
            wanted.insert(e.rel.clone());
        }
    }
    wanted
}

/// Fails clearly unless `path` is an existing folder (`what` names its role).
pub fn require_dir(path: &Path, what: &str) -> Result<(), StepError> {
    match fs::metadata(path) {
        Ok(m) if m.is_dir() => Ok(()),
        Ok(_) => Err(StepError::fatal(format!(
            "{what} {} is not a folder",
            path.display()
        ))),
        Err(e) if e.kind() == ErrorKind::NotFound => Err(StepError::fatal(format!(
            "{what} {} does not exist",
            path.display()
        ))),
        Err(e) => Err(io_error(&format!("read the {what}"), path, &e)),
    }
}

/// SHA-256 of a file in chunks, watching the token. Returns (hex digest, bytes read).
pub(crate) fn sha256_file(
    path: &Path,
    token: &CancellationToken,
) -> Result<(String, u64), StepError> {
    let mut file = File::open(path).map_err(|e| io_error("read", path, &e))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; CHUNK];
    let mut total = 0u64;
    loop {
        check_cancel(token)?;
        let n = file
            .read(&mut buf)
            .map_err(|e| io_error("read", path, &e))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        total += n as u64;
    }
    Ok((hex::encode(hasher.finalize()), total))
}

/// Copies a reader into a writer in chunks, watching the token; returns the bytes copied.
pub(crate) fn copy_cancellable(
    reader: &mut impl Read,
    writer: &mut impl Write,
    token: &CancellationToken,
) -> io::Result<u64> {
    let mut buf = vec![0u8; CHUNK];
    let mut total = 0u64;
    loop {
        if token.is_cancelled() {
            return Err(io::Error::new(ErrorKind::Interrupted, "cancelled"));
        }
        let n = match reader.read(&mut buf) {
            Ok(0) => return Ok(total),
            Ok(n) => n,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        writer.write_all(&buf[..n])?;
        total += n as u64;
    }
}

/// A reader that fails with `Interrupted` once the token fires, so a copy inside a
/// library (tar) stops within a chunk; it counts what it read.
pub(crate) struct CancelReader<'a, R> {
    pub inner: R,
    pub token: &'a CancellationToken,
    pub read: u64,
}

impl<'a, R> CancelReader<'a, R> {
    pub(crate) fn new(inner: R, token: &'a CancellationToken) -> Self {
        CancelReader {
            inner,
            token,
            read: 0,
        }
    }
}

impl<R: Read> Read for CancelReader<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.token.is_cancelled() {
            return Err(io::Error::other("cancelled"));
        }
        let n = self.inner.read(buf)?;
        self.read += n as u64;
        Ok(n)
    }
}

/// A temporary file beside its final name, removed on drop unless [`TempFile::commit`]
/// renamed it into place; so an error or a cancel never leaves it behind.
pub(crate) struct TempFile {
    pub path: PathBuf,
    pub file: Option<File>,
    committed: bool,
}

impl TempFile {
    /// Creates `.<name>.opsplan-<random>` in the final file's folder with `mode` from the
    /// start (umask may only narrow it), so a secret file is never readable by others.
    pub(crate) fn create(final_path: &Path, mode: u32) -> Result<TempFile, StepError> {
        let dir = parent_of(final_path);
        let name = final_path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "file".into());
        for _ in 0..16 {
            let path = dir.join(format!(".{name}.opsplan-{:08x}", rand::random::<u32>()));
            match OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(mode)
                .open(&path)
            {
                Ok(file) => {
                    return Ok(TempFile {
                        path,
                        file: Some(file),
                        committed: false,
                    })
                }
                Err(e) if e.kind() == ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(io_error("create a file in", &dir, &e)),
            }
        }
        Err(StepError::new(format!(
            "cannot create a temporary file in {}",
            dir.display()
        )))
    }

    /// Renames the file over `final_path`. `durable`: fsync the file before and the folder
    /// after, so the file is on disk under its final name even if the machine loses power.
    pub(crate) fn commit(mut self, final_path: &Path, durable: bool) -> Result<(), StepError> {
        if let Some(file) = self.file.take() {
            if durable {
                file.sync_all()
                    .map_err(|e| io_error("write", &self.path, &e))?;
            }
        }
        fs::rename(&self.path, final_path).map_err(|e| io_error("write", final_path, &e))?;
        self.committed = true;
        if durable {
            sync_dir(&parent_of(final_path))?;
        }
        Ok(())
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if !self.committed {
            self.file.take();
            let _ = fs::remove_file(&self.path);
        }
    }
}

pub(crate) fn parent_of(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// Makes a rename in `dir` durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<(), StepError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| io_error("flush the folder", dir, &e))
}

/// A path field that must not be empty, checked at validation time.
pub(crate) fn check_nonempty_path(with: &Node, field: &str, value: &str) -> Option<Diagnostic> {
    if !value.trim().is_empty() || is_template(value) {
        return None;
    }
    Some(
        Diagnostic::new(Code::StepArgs, format!("`{field}` is empty"))
            .label(
                with.get(field).map_or(with.span, |n| n.span),
                "an empty path",
            )
            .help(format!("give `{field}` a file or folder path")),
    )
}

/// Glob diagnostics (E071) for the usual `include` and `exclude` fields.
pub(crate) fn check_globs(with: &Node) -> Vec<Diagnostic> {
    let mut diags = opsplan_plan::fields::check_glob_field(with, "include");
    diags.extend(opsplan_plan::fields::check_glob_field(with, "exclude"));
    diags
}

/// `include a, b` and `exclude c` for preview lines.
pub(crate) fn filter_parts(include: &[String], exclude: &[String]) -> Vec<String> {
    let mut parts = Vec::new();
    if !include.is_empty() {
        parts.push(format!("include {}", include.join(", ")));
    }
    if !exclude.is_empty() {
        parts.push(format!("exclude {}", exclude.join(", ")));
    }
    parts
}

/// ` (include a, b; exclude c)` for preview lines, or nothing.
pub(crate) fn describe_filters(include: &[String], exclude: &[String]) -> String {
    let parts = filter_parts(include, exclude);
    if parts.is_empty() {
        String::new()
    } else {
        format!(" ({})", parts.join("; "))
    }
}

/// A UTC RFC 3339 time with nanoseconds from Unix seconds, for any time (humantime
/// panics before 1970, and file mtimes can be anything).
pub(crate) fn rfc3339(secs: i64, nanos: u32) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let frac = if nanos == 0 {
        String::new()
    } else {
        format!(".{nanos:09}")
    };
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}{frac}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// The current time as RFC 3339.
pub(crate) fn now_rfc3339() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    rfc3339(now.as_secs() as i64, 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_matches_known_dates() {
        assert_eq!(rfc3339(0, 0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400, 5), "2000-02-29T00:00:00.000000005Z");
        assert_eq!(rfc3339(-1, 0), "1969-12-31T23:59:59Z");
        assert_eq!(rfc3339(1_700_000_000, 0), "2023-11-14T22:13:20Z");
    }

    #[test]
    fn filter_matches_names_and_paths() {
        let f = Filter::new(&[], &["*.log".into(), "db/tmp/**".into()]).unwrap();
        assert!(f.excluded(Path::new("a/b/x.log")));
        assert!(f.excluded(Path::new("db/tmp/x")));
        assert!(!f.excluded(Path::new("db/x")));
        let f = Filter::new(&["*.dat".into()], &[]).unwrap();
        assert!(f.included(Path::new("a/x.dat")));
        assert!(!f.included(Path::new("a/x.txt")));
    }
}
