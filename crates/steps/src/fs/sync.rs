//! `fs.sync`: an incremental copy of a folder's contents into another, like
//! `rsync -a SOURCE/ DESTINATION/` (COSMOS 7 bucket and QuestDB copies).
//!
//! Semantics follow rsync where a plan author would expect them: modes, mtimes and
//! symlinks (as links) are preserved, ownership only as root; a file is skipped when size
//! and mtime match (or, with `checksum`, size and SHA-256); the destination folder itself
//! takes the source folder's mode and mtime; excluded paths are neither copied nor deleted.
//! Each file is written under a temporary name and renamed, so a cancelled sync leaves
//! whole old or whole new files, never a torn one. Hard links are copied as separate files
//! and special files (fifos, devices, sockets) are skipped with a log line.
//!
//! With `link_dest` (rsync's `--link-dest`), a file whose copy in that folder (a backup's
//! previous generation) has the same size, mtime and mode (owner as root) is hard-linked
//! instead of copied; a file shared by several links is never changed in place.
//!
//! A source file is opened with `open_listed`: one swapped for a symlink, a fifo or
//! another file after the walk listed it fails the step instead of being read. The
//! temporary files a killed sync left in the destination are removed when it starts.
//!
//! Order of work: the walk lists the source; every folder is made (parents first); then
//! files and symlinks are compared and copied by a few threads at once ([`workers`]), the
//! contents by the kernel (`copy_file_range`, read and write where it cannot); then
//! `delete`; then the folders' modes and mtimes, deepest first. The first failure stops
//! the other threads, each of which removes its temporary file before the step returns.

use super::{
    blocking, check_cancel, copy_file_cancellable, io_error, open_listed, parent_of,
    remove_stale_temps, require_dir, running_as_root, selected, sha256_file, walk, Filter,
    TempFile, Walked,
};
use crate::{Action, LogFn, OutputDecl, Outputs, StepContext, StepError, StepType, Stream};
use opsplan_plan::diagnostic::{Code, Diagnostic};
use opsplan_plan::source::Node;
use schemars::JsonSchema;
use serde::Deserialize;
use std::collections::HashSet;
use std::fs::{self, File, Metadata};
use std::io::ErrorKind;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, PoisonError};
use tokio_util::sync::CancellationToken;

pub struct FsSync;

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FsSyncSpec {
    /// Folder whose contents are copied (like `rsync -a SOURCE/`: the contents, not the
    /// folder itself).
    pub source: String,
    /// Folder that receives them; created (with its parents) when missing, and given the
    /// source folder's mode and mtime.
    pub destination: String,
    /// Only files matching one of these globs are copied (folders are created as needed).
    /// A pattern with `/` matches the path relative to `source`; one without matches the
    /// file name at any depth. Default: everything.
    #[serde(default)]
    pub include: Vec<String>,
    /// Paths matching one of these globs are neither copied nor deleted; an excluded folder
    /// is skipped with its contents.
    #[serde(default)]
    pub exclude: Vec<String>,
    /// Compare SHA-256 instead of size and mtime to decide whether a file changed: slower,
    /// but catches changes that kept size and mtime (rsync's `--checksum`).
    #[serde(default)]
    pub checksum: bool,
    /// Remove destination entries that are not in the source (rsync's `--delete`), which
    /// makes the step destructive.
    #[serde(default)]
    pub delete: bool,
    /// A previous copy of the same source (a backup's previous generation), like rsync's
    /// `--link-dest`: a file missing from `destination` whose copy there has the same size,
    /// mtime and mode (and owner, as root; and SHA-256 with `checksum`) is hard-linked
    /// instead of copied. Nothing in it is ever written. Must be on the same file system as
    /// `destination` (else files are copied). Empty: copy everything.
    #[serde(default)]
    pub link_dest: String,
}

#[derive(Default)]
struct Stats {
    copied: u64,
    copied_bytes: u64,
    skipped: u64,
    deleted: u64,
    linked: u64,
    linked_bytes: u64,
}

impl Stats {
    fn add(&mut self, other: &Stats) {
        self.copied += other.copied;
        self.copied_bytes += other.copied_bytes;
        self.skipped += other.skipped;
        self.deleted += other.deleted;
        self.linked += other.linked;
        self.linked_bytes += other.linked_bytes;
    }
}

/// At most this many files are compared and copied at once.
const MAX_WORKERS: usize = 8;

impl StepType for FsSync {
    const NAME: &'static str = "fs.sync";
    const SUMMARY: &'static str =
        "Copy a folder's contents incrementally, like `rsync -a` (modes, mtimes, symlinks, owners as root).";
    type Spec = FsSyncSpec;

    fn outputs() -> &'static [OutputDecl] {
        &[
            OutputDecl {
                name: "copied",
                description: "files and symlinks written (new or changed)",
            },
            OutputDecl {
                name: "copied_bytes",
                description: "bytes of file content written",
            },
            OutputDecl {
                name: "skipped",
                description: "files and symlinks already up to date",
            },
            OutputDecl {
                name: "deleted",
                description: "destination entries removed with `delete: true`",
            },
            OutputDecl {
                name: "linked",
                description: "files hard-linked from `link_dest` instead of copied",
            },
            OutputDecl {
                name: "linked_bytes",
                description: "bytes of the files hard-linked (not written)",
            },
        ]
    }
    fn check(spec: &FsSyncSpec, with: &Node) -> Vec<Diagnostic> {
        let mut diags: Vec<Diagnostic> = [
            super::check_nonempty_path(with, "source", &spec.source),
            super::check_nonempty_path(with, "destination", &spec.destination),
        ]
        .into_iter()
        .flatten()
        .collect();
        if !spec.source.trim().is_empty()
            && spec.source.trim_end_matches('/') == spec.destination.trim_end_matches('/')
        {
            diags.push(
                Diagnostic::new(
                    Code::StepArgs,
                    "`source` and `destination` are the same folder",
                )
                .label(
                    with.get("destination").map_or(with.span, |n| n.span),
                    "same as `source`",
                )
                .help("sync into another folder, e.g. `{{ params.backup_dir }}/buckets`"),
            );
        }
        diags.extend(super::check_globs(with));
        diags
    }
    fn destructive(spec: &FsSyncSpec) -> bool {
        spec.delete
    }
    fn describe(spec: &FsSyncSpec) -> Action {
        let mut how = vec!["like rsync -a".to_string()];
        if spec.checksum {
            how.push("compare sha256".into());
        }
        if spec.delete {
            how.push("delete extraneous files".into());
        }
        how.extend(super::filter_parts(&spec.include, &spec.exclude));
        if !spec.link_dest.trim().is_empty() {
            how.push(format!(
                "hard-link unchanged files from {}/",
                spec.link_dest.trim_end_matches('/')
            ));
        }
        Action::new(format!(
            "sync {}/ -> {}/ ({})",
            spec.source.trim_end_matches('/'),
            spec.destination.trim_end_matches('/'),
            how.join("; ")
        ))
    }
    async fn run(spec: FsSyncSpec, ctx: StepContext) -> Result<Outputs, StepError> {
        let log = ctx.log.clone();
        let stats = blocking(&ctx, move |token| sync(&spec, token, &log)).await?;
        let mut out = Outputs::new();
        out.insert("copied".into(), stats.copied.into());
        out.insert("copied_bytes".into(), stats.copied_bytes.into());
        out.insert("skipped".into(), stats.skipped.into());
        out.insert("deleted".into(), stats.deleted.into());
        out.insert("linked".into(), stats.linked.into());
        out.insert("linked_bytes".into(), stats.linked_bytes.into());
        Ok(out)
    }
}

fn sync(spec: &FsSyncSpec, token: &CancellationToken, log: &LogFn) -> Result<Stats, StepError> {
    let source = PathBuf::from(&spec.source);
    let dest = PathBuf::from(&spec.destination);
    require_dir(&source, "source folder")?;
    match fs::symlink_metadata(&dest) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => {
            return Err(StepError::fatal(format!(
                "destination {} exists and is not a folder",
                dest.display()
            )))
        }
        Err(_) => fs::create_dir_all(&dest)
            .map_err(|e| io_error("create the destination folder", &dest, &e))?,
    }
    let filter = Filter::new(&spec.include, &spec.exclude)?;
    let stale = remove_stale_temps(&dest, None, token)?;
    if stale > 0 {
        log(
            Stream::Stderr,
            &format!(
                "removed {stale} temporary file(s) an interrupted run left in {}",
                dest.display()
            ),
        );
    }
    if let (Ok(s), Ok(d)) = (source.canonicalize(), dest.canonicalize()) {
        // A destination inside the source is fine when an exclude keeps the walk out of it
        // (Hoss: ~/.hoss is copied into ~/.hoss/backup/.current, with `backup/**` excluded).
        let inside = d.strip_prefix(&s).ok().filter(|rel| {
            !rel.ancestors()
                .filter(|a| !a.as_os_str().is_empty())
                .any(|a| filter.excluded(a))
        });
        if let Some(rel) = inside {
            return Err(StepError::fatal(format!(
                "destination {} is inside the source folder {}; the copy would copy itself \
                 (exclude it, e.g. `exclude: [\"{}/**\"]`, or choose another destination)",
                dest.display(),
                source.display(),
                rel.display()
            )));
        }
    }
    let root = running_as_root();
    let link_dest = Some(spec.link_dest.trim())
        .filter(|l| !l.is_empty())
        .map(PathBuf::from)
        .filter(|l| l.is_dir());
    let entries = walk(&source, &filter, token)?;

    let wanted = selected(&entries, &filter);

    let mut stats = Stats::default();
    let mut dirs: Vec<(PathBuf, Metadata)> = Vec::new();
    // Folders first, parents before children (the walk's order), so that every file's
    // folder exists when the copies start.
    let mut jobs: Vec<&Walked> = Vec::new();
    for e in &entries {
        check_cancel(token)?;
        if !wanted.contains(&e.rel) {
            continue;
        }
        let ft = e.meta.file_type();
        if ft.is_dir() {
            let target = dest.join(&e.rel);
            make_dir(&target, &mut stats, root)?;
            dirs.push((target, e.meta.clone()));
        } else if ft.is_file() || ft.is_symlink() {
            jobs.push(e);
        } else {
            log(
                Stream::Stderr,
                &format!(
                    "skipping {}: not a file, folder or symlink",
                    e.path.display()
                ),
            );
        }
    }
    let files = sync_all(&jobs, &dest, link_dest.as_deref(), spec, token, root)?;
    stats.add(&files);
    if spec.delete {
        delete_extraneous(&dest, &wanted, &filter, token, &mut stats)?;
    }
    // Folder attributes last (deepest first): writing into a folder changes its mtime,
    // and a read-only mode would have stopped the writes.
    dirs.insert(
        0,
        (
            dest.clone(),
            fs::metadata(&source).map_err(|e| io_error("read", &source, &e))?,
        ),
    );
    for (target, meta) in dirs.iter().rev() {
        apply_attrs(target, meta, root, false)?;
    }
    Ok(stats)
}

/// How many threads compare and copy `jobs` files: twice the cores, at least 2, at most
/// [`MAX_WORKERS`], never more than the files. The copies are kernel work and waits on the
/// disk (open, create, rename, writeback), so a second one per core runs while the first
/// waits; beyond 8 one disk gains nothing, and each copy in flight holds two descriptors
/// and a temporary file, which a cancel must wait for and remove.
fn workers(jobs: usize) -> usize {
    let cores = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    (cores * 2).clamp(2, MAX_WORKERS).min(jobs)
}

/// Syncs every file and symlink of `jobs` (walk order) on [`workers`] threads, this one
/// included; each thread takes the next entry when it is done with one. The first error
/// stops the others (they stop within a chunk and remove their temporary files), and is
/// the one returned once every thread has finished; a cancelled step returns cancelled.
fn sync_all(
    jobs: &[&Walked],
    dest: &Path,
    link_dest: Option<&Path>,
    spec: &FsSyncSpec,
    token: &CancellationToken,
    root: bool,
) -> Result<Stats, StepError> {
    let stop = token.child_token();
    let next = AtomicUsize::new(0);
    let first_error: Mutex<Option<StepError>> = Mutex::new(None);
    let work = || {
        let mut stats = Stats::default();
        while !stop.is_cancelled() {
            let Some(e) = jobs.get(next.fetch_add(1, Ordering::Relaxed)) else {
                break;
            };
            if let Err(err) = sync_entry(e, dest, link_dest, spec, &stop, &mut stats, root) {
                let mut first = first_error.lock().unwrap_or_else(PoisonError::into_inner);
                // An error after the stop is that stop's echo (or the step's cancel).
                if first.is_none() && !stop.is_cancelled() {
                    *first = Some(err);
                }
                stop.cancel();
                break;
            }
        }
        stats
    };
    let mut stats = Stats::default();
    let mut lost = false;
    std::thread::scope(|scope| {
        // Threads that cannot be started are simply not there: this one works anyway.
        let helpers: Vec<_> = (1..workers(jobs.len()))
            .map_while(|i| {
                std::thread::Builder::new()
                    .name(format!("fs.sync-{i}"))
                    .spawn_scoped(scope, work)
                    .ok()
            })
            .collect();
        stats.add(&work());
        for helper in helpers {
            match helper.join() {
                Ok(s) => stats.add(&s),
                Err(_) => lost = true,
            }
        }
    });
    if token.is_cancelled() {
        return Err(StepError::cancelled());
    }
    if let Some(err) = first_error
        .into_inner()
        .unwrap_or_else(PoisonError::into_inner)
    {
        return Err(err);
    }
    if lost {
        return Err(StepError::fatal(
            "internal error: a copy thread of fs.sync stopped unexpectedly",
        ));
    }
    Ok(stats)
}

/// One file or symlink of the source into the destination.
fn sync_entry(
    e: &Walked,
    dest: &Path,
    link_dest: Option<&Path>,
    spec: &FsSyncSpec,
    token: &CancellationToken,
    stats: &mut Stats,
    root: bool,
) -> Result<(), StepError> {
    check_cancel(token)?;
    let target = dest.join(&e.rel);
    if e.meta.file_type().is_symlink() {
        return sync_symlink(&e.path, &e.meta, &target, spec.delete, stats, root);
    }
    let link = link_dest.map(|l| l.join(&e.rel));
    sync_file(&e.path, &e.meta, &target, link, spec, token, stats, root)
}

/// Makes `target` a folder we can write into, replacing a file or symlink there.
fn make_dir(target: &Path, stats: &mut Stats, root: bool) -> Result<(), StepError> {
    match fs::symlink_metadata(target) {
        Ok(m) if m.is_dir() => {
            if !root && m.mode() & 0o700 != 0o700 {
                fs::set_permissions(target, fs::Permissions::from_mode(m.mode() | 0o700))
                    .map_err(|e| io_error("change the mode of", target, &e))?;
            }
            return Ok(());
        }
        Ok(_) => {
            replace_non_dir(target, stats)?;
        }
        Err(_) => {}
    }
    fs::create_dir(target).map_err(|e| io_error("create the folder", target, &e))
}

/// A file or symlink in the destination where the source has a folder. rsync replaces
/// it too; it is a single entry, so no `delete` is needed.
fn replace_non_dir(target: &Path, stats: &mut Stats) -> Result<(), StepError> {
    fs::remove_file(target).map_err(|e| io_error("replace", target, &e))?;
    stats.deleted += 1;
    Ok(())
}

/// A folder in the destination where the source has a file or symlink: removing a whole
/// tree is only done with `delete: true`.
fn clear_dir_for(target: &Path, delete: bool, stats: &mut Stats) -> Result<(), StepError> {
    if !delete {
        return Err(StepError::fatal(format!(
            "destination {} is a folder where the source has a file; set `delete: true` to \
             replace it",
            target.display()
        )));
    }
    stats.deleted += walkdir::WalkDir::new(target).into_iter().count() as u64;
    fs::remove_dir_all(target).map_err(|e| io_error("remove the folder", target, &e))
}

#[allow(clippy::too_many_arguments)]
fn sync_file(
    src: &Path,
    meta: &Metadata,
    target: &Path,
    link: Option<PathBuf>,
    spec: &FsSyncSpec,
    token: &CancellationToken,
    stats: &mut Stats,
    root: bool,
) -> Result<(), StepError> {
    match fs::symlink_metadata(target) {
        Ok(d) if d.is_file() => {
            let same = if spec.checksum {
                d.len() == meta.len()
                    && sha256_file(src, meta, token)?.0 == sha256_file(target, &d, token)?.0
            } else {
                d.len() == meta.len()
                    && d.mtime() == meta.mtime()
                    && d.mtime_nsec() == meta.mtime_nsec()
            };
            // A file shared with another copy (hard-linked from `link_dest`) is never
            // changed in place: new attributes get a new file.
            let shared_and_differs = d.nlink() > 1 && !same_attrs(&d, meta, root);
            if same && !shared_and_differs {
                stats.skipped += 1;
                return apply_attrs_over(target, &d, meta, root, false);
            }
        }
        Ok(d) if d.is_dir() => clear_dir_for(target, spec.delete, stats)?,
        _ => {}
    }
    if let Some(link) = link {
        if try_link(src, meta, &link, target, spec.checksum, token, root)? {
            stats.linked += 1;
            stats.linked_bytes += meta.len();
            return Ok(());
        }
    }
    let mut input = open_listed(src, meta)?;
    let mut temp = TempFile::create(target, 0o600)?;
    let Some(file) = temp.file.as_mut() else {
        return Err(StepError::fatal("internal error: temporary file closed"));
    };
    let n = copy_file_cancellable(&mut input, file, token).map_err(|e| {
        if token.is_cancelled() {
            StepError::cancelled()
        } else {
            io_error("write", target, &e)
        }
    })?;
    apply_attrs_fd(file, &temp.path, meta, root)?;
    temp.file.take();
    temp.commit(target, false)?;
    stats.copied += 1;
    stats.copied_bytes += n;
    Ok(())
}

/// Mode, mtime and (as root) owner equal: a hard link to `d` is a faithful copy of `meta`.
fn same_attrs(d: &Metadata, meta: &Metadata, root: bool) -> bool {
    d.mode() & 0o7777 == meta.mode() & 0o7777
        && d.mtime() == meta.mtime()
        && d.mtime_nsec() == meta.mtime_nsec()
        && (!root || (d.uid() == meta.uid() && d.gid() == meta.gid()))
}

/// Hard-links `link` (the previous copy of this file) to `target` when it is a regular
/// file with the source's size and attributes (and checksum), through a temporary name
/// and a rename. False when it is not, or the link cannot be made (another file system):
/// the caller copies.
fn try_link(
    src: &Path,
    meta: &Metadata,
    link: &Path,
    target: &Path,
    checksum: bool,
    token: &CancellationToken,
    root: bool,
) -> Result<bool, StepError> {
    let Ok(old) = fs::symlink_metadata(link) else {
        return Ok(false);
    };
    if !old.is_file() || old.len() != meta.len() || !same_attrs(&old, meta, root) {
        return Ok(false);
    }
    if checksum && sha256_file(src, meta, token)?.0 != sha256_file(link, &old, token)?.0 {
        return Ok(false);
    }
    let temp = parent_of(target).join(format!(
        ".{}.opsplan-{:08x}",
        target
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        rand::random::<u32>()
    ));
    if fs::hard_link(link, &temp).is_err() {
        return Ok(false);
    }
    if let Err(e) = fs::rename(&temp, target) {
        let _ = fs::remove_file(&temp);
        return Err(io_error("write", target, &e));
    }
    Ok(true)
}

fn sync_symlink(
    src: &Path,
    meta: &Metadata,
    target: &Path,
    delete: bool,
    stats: &mut Stats,
    root: bool,
) -> Result<(), StepError> {
    let link = fs::read_link(src).map_err(|e| io_error("read the symlink", src, &e))?;
    match fs::symlink_metadata(target) {
        Ok(d)
            if d.file_type().is_symlink()
                && fs::read_link(target).ok().as_deref() == Some(link.as_path()) =>
        {
            stats.skipped += 1;
            return apply_attrs_over(target, &d, meta, root, true);
        }
        Ok(d) if d.is_dir() => clear_dir_for(target, delete, stats)?,
        _ => {}
    }
    let dir = parent_of(target);
    let temp = dir.join(format!(
        ".{}.opsplan-{:08x}",
        target
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        rand::random::<u32>()
    ));
    std::os::unix::fs::symlink(&link, &temp)
        .map_err(|e| io_error("create a symlink in", &dir, &e))?;
    let placed = apply_attrs(&temp, meta, root, true)
        .and_then(|()| fs::rename(&temp, target).map_err(|e| io_error("write", target, &e)));
    if placed.is_err() {
        let _ = fs::remove_file(&temp);
    }
    placed?;
    stats.copied += 1;
    Ok(())
}

/// Owner (as root), mode (not for symlinks, whose mode Linux ignores) and mtime of `meta`
/// onto `path`, each only where it differs (an unchanged re-sync writes nothing).
fn apply_attrs(path: &Path, meta: &Metadata, root: bool, symlink: bool) -> Result<(), StepError> {
    let current = fs::symlink_metadata(path).map_err(|e| io_error("read", path, &e))?;
    apply_attrs_over(path, &current, meta, root, symlink)
}

/// [`apply_attrs`] with `path`'s `lstat` already at hand. The owner goes first: chown
/// clears setuid bits, so the mode is set again after one.
fn apply_attrs_over(
    path: &Path,
    current: &Metadata,
    meta: &Metadata,
    root: bool,
    symlink: bool,
) -> Result<(), StepError> {
    let mut chowned = false;
    if root && (current.uid() != meta.uid() || current.gid() != meta.gid()) {
        std::os::unix::fs::lchown(path, Some(meta.uid()), Some(meta.gid()))
            .map_err(|e| io_error("change the owner of", path, &e))?;
        chowned = true;
    }
    let mtime = filetime::FileTime::from_last_modification_time(meta);
    let same_mtime = current.mtime() == meta.mtime() && current.mtime_nsec() == meta.mtime_nsec();
    if symlink {
        if !same_mtime {
            let atime = filetime::FileTime::from_last_access_time(meta);
            filetime::set_symlink_file_times(path, atime, mtime)
                .map_err(|e| io_error("set the mtime of", path, &e))?;
        }
        return Ok(());
    }
    let mode = meta.mode() & 0o7777;
    if chowned || current.mode() & 0o7777 != mode {
        fs::set_permissions(path, fs::Permissions::from_mode(mode))
            .map_err(|e| io_error("change the mode of", path, &e))?;
    }
    if !same_mtime {
        filetime::set_file_mtime(path, mtime)
            .map_err(|e| io_error("set the mtime of", path, &e))?;
    }
    Ok(())
}

/// Owner (as root), mode and mtime of `meta` onto a file just written, through its open
/// descriptor (`path` names it in errors); the owner first, as chown clears setuid bits.
fn apply_attrs_fd(file: &File, path: &Path, meta: &Metadata, root: bool) -> Result<(), StepError> {
    if root {
        std::os::unix::fs::fchown(file, Some(meta.uid()), Some(meta.gid()))
            .map_err(|e| io_error("change the owner of", path, &e))?;
    }
    file.set_permissions(fs::Permissions::from_mode(meta.mode() & 0o7777))
        .map_err(|e| io_error("change the mode of", path, &e))?;
    let mtime = filetime::FileTime::from_last_modification_time(meta);
    filetime::set_file_handle_times(file, None, Some(mtime))
        .map_err(|e| io_error("set the mtime of", path, &e))
}

/// Removes destination entries that the source does not have, children before their
/// folder; excluded (or, with includes, not included) entries are protected, as in rsync.
fn delete_extraneous(
    dest: &Path,
    wanted: &HashSet<PathBuf>,
    filter: &Filter,
    token: &CancellationToken,
    stats: &mut Stats,
) -> Result<(), StepError> {
    let iter = walkdir::WalkDir::new(dest)
        .min_depth(1)
        .contents_first(true)
        .follow_links(false)
        .into_iter()
        .filter_entry(|e| {
            e.path()
                .strip_prefix(dest)
                .map_or(true, |rel| !filter.excluded(rel))
        });
    for entry in iter {
        check_cancel(token)?;
        let entry = entry.map_err(|e| {
            let path = e.path().unwrap_or(dest).to_path_buf();
            match e.io_error() {
                Some(io) => io_error("read", &path, io),
                None => StepError::fatal(format!("cannot read {}: {e}", path.display())),
            }
        })?;
        let Ok(rel) = entry.path().strip_prefix(dest) else {
            continue;
        };
        if wanted.contains(rel) {
            continue;
        }
        if entry.file_type().is_dir() {
            match fs::remove_dir(entry.path()) {
                Ok(()) => stats.deleted += 1,
                // Protected (excluded) files are still inside.
                Err(e) if e.kind() == ErrorKind::DirectoryNotEmpty => {}
                Err(e) => return Err(io_error("remove", entry.path(), &e)),
            }
        } else if filter.included(rel) {
            fs::remove_file(entry.path()).map_err(|e| io_error("remove", entry.path(), &e))?;
            stats.deleted += 1;
        }
    }
    Ok(())
}
