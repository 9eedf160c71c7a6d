//! Files and backups on local disk: sync, archives, manifests, verification, removal.
//!
//! All of it is blocking file I/O, so each step runs its work on a blocking thread
//! ([`blocking`]) that polls the cancellation token between files and between chunks of a
//! file: a cancelled step stops within a chunk and removes its temporary file, so no
//! half-written file is ever left under its final name.
//!
//! Two rules hold for every fs step:
//!
//! - **Temporary files.** Every file written here is first written as
//!   `.<final name>.opsplan-<8 hex digits>` ([`is_temp_name`]) and renamed into place. A
//!   name of that form is never backup content: walks leave it out, so it is never copied,
//!   archived, listed in a manifest or counted by `verify`; a step that writes into a folder
//!   removes the stale ones a killed run left there when it starts ([`remove_stale_temps`]).
//! - **Listed, then opened.** A file is listed by a walk, then opened by path; between the
//!   two it may be swapped. [`open_listed`] opens without following a symlink, without
//!   blocking on a fifo or device, and checks with `fstat` that what it opened is the
//!   regular file the walk listed (same device, inode and type): anything else is refused
//!   with the path named, never read.

pub mod archive;
pub mod facts;
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
use std::ffi::OsStr;
use std::fs::{self, File, OpenOptions};
use std::io::{self, ErrorKind, Read, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use tokio_util::sync::CancellationToken;

/// The marker a backup generation keeps at its top (`generation.begin` writes it). Here,
/// below both, because a manifest of a generation leaves it out (it changes at commit).
pub const GENERATION_MARKER: &str = "opsplan-generation.json";

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
/// never following symlinks; excluded folders are not entered, and opsplan's temporary
/// files ([`is_temp_name`]) are left out.
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
            !is_temp_name(e.file_name())
                && e.path()
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

/// SHA-256 of a listed file in chunks, watching the token. Returns (hex digest, bytes
/// read). The file is opened with [`open_listed`]: it must still be the one `listed`.
pub(crate) fn sha256_file(
    path: &Path,
    listed: &fs::Metadata,
    token: &CancellationToken,
) -> Result<(String, u64), StepError> {
    let mut file = open_listed(path, listed)?;
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

/// The marker in the name of every temporary file the fs steps write.
pub(crate) const TEMP_MARK: &str = ".opsplan-";

/// Whether a file name is one of opsplan's temporary files: `.<name>.opsplan-<8 hex>`.
/// Such a file is a write in progress or a leftover of a killed run, never content.
pub(crate) fn is_temp_name(name: &OsStr) -> bool {
    let Some(name) = name.to_str() else {
        return false;
    };
    let Some(rest) = name.strip_prefix('.') else {
        return false;
    };
    let Some(at) = rest.rfind(TEMP_MARK) else {
        return false;
    };
    let suffix = &rest[at + TEMP_MARK.len()..];
    at > 0 && suffix.len() == 8 && suffix.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Removes the temporary files a killed run left below `root` (files and symlinks whose
/// name [`is_temp_name`]; `only_for`: only those of that final name, directly in `root`).
/// Returns how many were removed. Called by a step before it writes into `root`: the step
/// owns its destination, so a temporary file there is a leftover of an earlier attempt.
pub(crate) fn remove_stale_temps(
    root: &Path,
    only_for: Option<&OsStr>,
    token: &CancellationToken,
) -> Result<u64, StepError> {
    let mut removed = 0;
    let depth = if only_for.is_some() { 1 } else { usize::MAX };
    let prefix = only_for.map(|n| format!(".{}{TEMP_MARK}", n.to_string_lossy()));
    for entry in walkdir::WalkDir::new(root)
        .min_depth(1)
        .max_depth(depth)
        .follow_links(false)
    {
        check_cancel(token)?;
        let Ok(entry) = entry else { continue };
        let name = entry.file_name();
        if entry.file_type().is_dir() || !is_temp_name(name) {
            continue;
        }
        if let Some(prefix) = &prefix {
            if !name.to_string_lossy().starts_with(prefix.as_str()) {
                continue;
            }
        }
        match fs::remove_file(entry.path()) {
            Ok(()) => removed += 1,
            Err(e) if e.kind() == ErrorKind::NotFound => {}
            Err(e) => {
                return Err(io_error(
                    "remove the stale temporary file",
                    entry.path(),
                    &e,
                ))
            }
        }
    }
    Ok(removed)
}

/// Debug builds only: runs `$OPSPLAN_TEST_FS_BEFORE_OPEN <path>` (through `sh -c`) before
/// a listed file is opened, so tests can swap the file at exactly that moment.
#[cfg(debug_assertions)]
fn before_open_hook(path: &Path) {
    if let Some(hook) = std::env::var_os("OPSPLAN_TEST_FS_BEFORE_OPEN") {
        let _ = std::process::Command::new("sh")
            .arg("-c")
            .arg(hook)
            .arg("sh")
            .arg(path)
            .status();
    }
}

fn kind_of(ft: fs::FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    if ft.is_fifo() {
        "a fifo"
    } else if ft.is_char_device() || ft.is_block_device() {
        "a device"
    } else if ft.is_socket() {
        "a socket"
    } else if ft.is_dir() {
        "a folder"
    } else if ft.is_symlink() {
        "a symlink"
    } else {
        "not a regular file"
    }
}

/// Opens for reading without following a final symlink and without blocking (a fifo or
/// device opens at once), then clears `O_NONBLOCK` so reads behave as usual.
fn open_nofollow_nonblock(path: &Path, follow: bool) -> io::Result<File> {
    use nix::fcntl::{fcntl, FcntlArg, OFlag};
    let mut flags = OFlag::O_NONBLOCK | OFlag::O_NOCTTY;
    if !follow {
        flags |= OFlag::O_NOFOLLOW;
    }
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(flags.bits())
        .open(path)?;
    let current = fcntl(&file, FcntlArg::F_GETFL).map_err(io::Error::from)?;
    let cleared = OFlag::from_bits_truncate(current) & !OFlag::O_NONBLOCK;
    fcntl(&file, FcntlArg::F_SETFL(cleared)).map_err(io::Error::from)?;
    Ok(file)
}

/// Opens a file a walk listed, refusing anything but that very regular file: a symlink
/// put in its place is not followed, a fifo or device is not read (nor waited on), and a
/// file with another device or inode (swapped, or reached through a swapped folder) is
/// refused. `listed` is the walk's `lstat` of the path.
pub(crate) fn open_listed(path: &Path, listed: &fs::Metadata) -> Result<File, StepError> {
    #[cfg(debug_assertions)]
    before_open_hook(path);
    let file = open_nofollow_nonblock(path, false).map_err(|e| {
        if e.raw_os_error() == Some(nix::libc::ELOOP) {
            StepError::fatal(format!(
                "{} was replaced by a symlink after it was listed; refusing to follow it",
                path.display()
            ))
        } else {
            io_error("read", path, &e)
        }
    })?;
    let now = file.metadata().map_err(|e| io_error("read", path, &e))?;
    if !now.is_file() {
        return Err(StepError::fatal(format!(
            "{} is {} now, not the regular file that was listed; refusing to read it",
            path.display(),
            kind_of(now.file_type())
        )));
    }
    if now.dev() != listed.dev() || now.ino() != listed.ino() {
        return Err(StepError::fatal(format!(
            "{} was replaced by another file after it was listed; refusing to read it",
            path.display()
        )));
    }
    Ok(file)
}

/// Opens a file the plan named (an archive to extract, a manifest): symlinks are followed,
/// as the author wrote the path, but it must be a regular file, and a fifo or device is
/// refused without blocking. `NotFound` is returned as is, for callers that expect it.
pub(crate) fn open_regular(path: &Path, what: &str) -> Result<File, io::Error> {
    let file = open_nofollow_nonblock(path, true)?;
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(io::Error::other(format!(
            "the {what} is {}, not a regular file",
            kind_of(meta.file_type())
        )));
    }
    Ok(file)
}

/// Bytes one `copy_file_range` call may copy between two looks at the cancellation token
/// (a few milliseconds of kernel work at page-cache speed).
const KERNEL_CHUNK: usize = 8 * 1024 * 1024;

/// Copies one file into another from their current offsets to the end of `input`,
/// watching the token; returns the bytes copied. The kernel copies (`copy_file_range`: no
/// user-space buffer, and a reflink where the file system offers one); where it cannot
/// (`EXDEV` across file systems, `ENOSYS`/`EPERM` where the call is missing or filtered,
/// `EINVAL`/`EOPNOTSUPP` for files it does not handle) the copy goes on through read and
/// write from where it stopped. A file that reads as empty at once also goes through read,
/// because some file systems (procfs, sysfs) report a size of 0 and copy nothing.
pub(crate) fn copy_file_cancellable(
    input: &mut File,
    output: &mut File,
    token: &CancellationToken,
) -> io::Result<u64> {
    use nix::errno::Errno;
    let mut total = 0u64;
    loop {
        if token.is_cancelled() {
            return Err(io::Error::new(ErrorKind::Interrupted, "cancelled"));
        }
        match nix::fcntl::copy_file_range(&*input, None, &*output, None, KERNEL_CHUNK) {
            Ok(0) if total == 0 => break,
            Ok(0) => return Ok(total),
            Ok(n) => total += n as u64,
            Err(Errno::EINTR) => {}
            Err(
                Errno::EXDEV | Errno::ENOSYS | Errno::EPERM | Errno::EINVAL | Errno::EOPNOTSUPP,
            ) => break,
            Err(e) => return Err(io::Error::from(e)),
        }
    }
    Ok(total + copy_cancellable(input, output, token)?)
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
    // Out of jiff's range (years beyond ±9999) only by a corrupt mtime: shown at the bound.
    let bound = if secs < 0 {
        jiff::Timestamp::MIN
    } else {
        jiff::Timestamp::MAX
    };
    let t = i32::try_from(nanos)
        .ok()
        .and_then(|n| jiff::Timestamp::new(secs, n).ok())
        .unwrap_or(bound);
    let format = if nanos == 0 {
        "%Y-%m-%dT%H:%M:%SZ"
    } else {
        "%Y-%m-%dT%H:%M:%S.%NZ"
    };
    t.strftime(format).to_string()
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
