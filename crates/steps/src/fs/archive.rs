//! `archive`: create a tar.gz / tar.zst of a folder, or extract one into a folder (Hoss's
//! single backup archive, Cosmo's "tarball of the data directory").
//!
//! Create writes to a temporary file beside the archive and renames it only when the
//! archive is complete and fsynced, so a reader never sees a truncated archive under the
//! final name. `secret: true` creates that temporary file with mode 0600 in the `open`
//! call itself: there is no moment when the archive of private keys is readable by others.
//! Entries keep mode, mtime (whole seconds, as tar stores them) and numeric owner.
//! The temporary files of this archive that a killed run left beside it are removed when
//! create starts; opsplan temporary files in the folder are never packed. Each file is
//! opened with `open_listed`, so a file swapped for a symlink, fifo or another file after
//! the walk is refused, never read.
//!
//! Extract refuses, with the entry's name, any entry that would land outside the target
//! folder: absolute paths, `..` components, hard links to outside, and writes through a
//! symlink (one already on disk or one the archive created earlier). Symlink entries
//! themselves are restored as they are, whatever they point to: they are never followed.

use super::{
    blocking, check_cancel, describe_filters, io_error, open_listed, open_regular,
    remove_stale_temps, running_as_root, selected, walk, CancelReader, Filter, TempFile,
};
use crate::{Action, LogFn, OutputDecl, Outputs, StepContext, StepError, StepType, Stream};
use opsplan_plan::diagnostic::{Code, Diagnostic};
use opsplan_plan::source::Node;
use schemars::JsonSchema;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use std::fs::{self, File};
use std::io::{self, Read, Seek, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Component, Path, PathBuf};
use tokio_util::sync::CancellationToken;

pub struct Archive;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ArchiveAction {
    /// Pack `folder` into `archive`.
    Create,
    /// Unpack `archive` into `folder`.
    Extract,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Compression {
    /// tar.gz, readable everywhere.
    Gzip,
    /// tar.zst: faster and smaller for large database files.
    Zstd,
}

impl Compression {
    fn name(self) -> &'static str {
        match self {
            Compression::Gzip => "gzip",
            Compression::Zstd => "zstd",
        }
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ArchiveSpec {
    /// `create` packs `folder` into `archive`; `extract` unpacks `archive` into `folder`.
    pub action: ArchiveAction,
    /// The archive file (`.tar.gz` or `.tar.zst`).
    pub archive: String,
    /// The folder packed (create) or unpacked into (extract; created when missing).
    pub folder: String,
    /// Create only: `gzip` (default) or `zstd`. Extract detects it from the file's content.
    #[serde(default)]
    pub compression: Option<Compression>,
    /// Create only: pack only files matching one of these globs (relative to `folder`;
    /// a pattern without `/` matches the file name at any depth).
    #[serde(default)]
    pub include: Vec<String>,
    /// Create only: leave out paths matching one of these globs.
    #[serde(default)]
    pub exclude: Vec<String>,
    /// Create only: the archive holds secrets (keys, passwords); it gets mode 0600 from its
    /// creation, so it is never readable by other users, not even while being written.
    #[serde(default)]
    pub secret: bool,
    /// Create: replace an existing archive file. Extract: unpack over a folder that is not
    /// empty, replacing files with the same names. Either makes the step destructive.
    #[serde(default)]
    pub overwrite: bool,
}

impl StepType for Archive {
    const NAME: &'static str = "archive";
    const SUMMARY: &'static str =
        "Create a tar.gz or tar.zst of a folder (atomically, optionally private), or extract one safely.";
    type Spec = ArchiveSpec;

    fn outputs() -> &'static [OutputDecl] {
        &[
            OutputDecl {
                name: "path",
                description: "the archive file",
            },
            OutputDecl {
                name: "files",
                description: "regular files packed or unpacked",
            },
            OutputDecl {
                name: "bytes",
                description: "bytes of file content packed or unpacked (before compression)",
            },
            OutputDecl {
                name: "sha256",
                description: "create: SHA-256 of the archive file",
            },
            OutputDecl {
                name: "archive_bytes",
                description: "size of the archive file",
            },
            OutputDecl {
                name: "compression",
                description: "`gzip` or `zstd`",
            },
        ]
    }
    fn check(spec: &ArchiveSpec, with: &Node) -> Vec<Diagnostic> {
        let mut diags: Vec<Diagnostic> = [
            super::check_nonempty_path(with, "archive", &spec.archive),
            super::check_nonempty_path(with, "folder", &spec.folder),
        ]
        .into_iter()
        .flatten()
        .collect();
        if spec.action == ArchiveAction::Extract {
            for field in ["compression", "include", "exclude", "secret"] {
                if let Some(node) = with.get(field) {
                    diags.push(
                        Diagnostic::new(
                            Code::StepArgs,
                            format!("`{field}` applies only to `action: create`"),
                        )
                        .label(node.span, "ignored when extracting")
                        .help(match field {
                            "compression" => "extract detects gzip or zstd from the archive itself; remove `compression`",
                            "secret" => "the mode of extracted files comes from the archive; remove `secret`",
                            _ => "extract unpacks every entry; remove the pattern or filter when creating",
                        }),
                    );
                }
            }
        }
        diags.extend(super::check_globs(with));
        diags
    }
    fn destructive(spec: &ArchiveSpec) -> bool {
        spec.overwrite
    }
    fn describe(spec: &ArchiveSpec) -> Action {
        match spec.action {
            ArchiveAction::Create => {
                let compression = spec.compression.unwrap_or(Compression::Gzip);
                let mut s = format!(
                    "create {} ({}) from {}/{}",
                    spec.archive,
                    compression.name(),
                    spec.folder.trim_end_matches('/'),
                    describe_filters(&spec.include, &spec.exclude)
                );
                if spec.secret {
                    s.push_str(", secret: mode 0600");
                }
                if spec.overwrite {
                    s.push_str(", replacing an existing archive");
                }
                Action::new(s)
            }
            ArchiveAction::Extract => Action::new(format!(
                "extract {} into {}/{}",
                spec.archive,
                spec.folder.trim_end_matches('/'),
                if spec.overwrite {
                    " (overwriting existing files)"
                } else {
                    " (must be empty)"
                }
            )),
        }
    }
    async fn run(spec: ArchiveSpec, ctx: StepContext) -> Result<Outputs, StepError> {
        let log = ctx.log.clone();
        blocking(&ctx, move |token| match spec.action {
            ArchiveAction::Create => create(&spec, token, &log),
            ArchiveAction::Extract => extract(&spec, token, &log),
        })
        .await
    }
}

/// Counts and hashes what goes into the archive file.
struct HashWriter {
    inner: File,
    hasher: Sha256,
    written: u64,
}

impl Write for HashWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.written += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

enum Encoder {
    Gzip(flate2::write::GzEncoder<HashWriter>),
    Zstd(zstd::stream::write::Encoder<'static, HashWriter>),
}

impl Write for Encoder {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Encoder::Gzip(e) => e.write(buf),
            Encoder::Zstd(e) => e.write(buf),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match self {
            Encoder::Gzip(e) => e.flush(),
            Encoder::Zstd(e) => e.flush(),
        }
    }
}

impl Encoder {
    fn finish(self) -> io::Result<HashWriter> {
        match self {
            Encoder::Gzip(e) => e.finish(),
            Encoder::Zstd(e) => e.finish(),
        }
    }
}

fn create(
    spec: &ArchiveSpec,
    token: &CancellationToken,
    log: &LogFn,
) -> Result<Outputs, StepError> {
    let folder = PathBuf::from(&spec.folder);
    let target = PathBuf::from(&spec.archive);
    let compression = spec.compression.unwrap_or(Compression::Gzip);
    super::require_dir(&folder, "folder to archive")?;
    match fs::symlink_metadata(&target) {
        Ok(m) if m.is_dir() => {
            return Err(StepError::fatal(format!(
                "archive path {} is a folder",
                target.display()
            )))
        }
        Ok(_) if !spec.overwrite => {
            return Err(StepError::fatal(format!(
                "archive {} already exists; set `overwrite: true` to replace it",
                target.display()
            )))
        }
        _ => {}
    }
    let filter = Filter::new(&spec.include, &spec.exclude)?;
    let stale = remove_stale_temps(&super::parent_of(&target), target.file_name(), token)?;
    if stale > 0 {
        log(
            Stream::Stderr,
            &format!(
                "removed {stale} temporary file(s) an interrupted run left beside {}",
                target.display()
            ),
        );
    }
    let entries = walk(&folder, &filter, token)?;
    let wanted = selected(&entries, &filter);
    let target_abs = fs::canonicalize(super::parent_of(&target))
        .ok()
        .zip(target.file_name())
        .map(|(dir, name)| dir.join(name));

    let mut temp = TempFile::create(&target, if spec.secret { 0o600 } else { 0o644 })?;
    let Some(file) = temp.file.take() else {
        return Err(StepError::fatal("internal error: temporary file closed"));
    };
    let sink = HashWriter {
        inner: file,
        hasher: Sha256::new(),
        written: 0,
    };
    let write_err = |e: io::Error| {
        if token.is_cancelled() {
            StepError::cancelled()
        } else {
            io_error("write", &target, &e)
        }
    };
    let encoder = match compression {
        Compression::Gzip => Encoder::Gzip(flate2::write::GzEncoder::new(
            sink,
            flate2::Compression::default(),
        )),
        Compression::Zstd => {
            Encoder::Zstd(zstd::stream::write::Encoder::new(sink, 3).map_err(write_err)?)
        }
    };
    let mut builder = tar::Builder::new(encoder);
    // `./` first, as `tar -C folder .` does: extract restores the folder's own mode,
    // owner and mtime from it.
    let folder_meta = fs::metadata(&folder).map_err(|e| io_error("read", &folder, &e))?;
    let mut header = tar::Header::new_gnu();
    header.set_metadata_in_mode(&folder_meta, tar::HeaderMode::Complete);
    header.set_size(0);
    builder
        .append_data(&mut header, ".", io::empty())
        .map_err(write_err)?;
    let (mut files, mut bytes) = (0u64, 0u64);
    for e in &entries {
        check_cancel(token)?;
        if !wanted.contains(&e.rel) {
            continue;
        }
        // An older archive inside the folder being archived is not part of the backup.
        if fs::canonicalize(&e.path).ok() == target_abs {
            continue;
        }
        let mut header = tar::Header::new_gnu();
        header.set_metadata_in_mode(&e.meta, tar::HeaderMode::Complete);
        let ft = e.meta.file_type();
        if ft.is_dir() {
            header.set_size(0);
            builder
                .append_data(&mut header, &e.rel, io::empty())
                .map_err(write_err)?;
        } else if ft.is_symlink() {
            let link = fs::read_link(&e.path)
                .map_err(|err| io_error("read the symlink", &e.path, &err))?;
            header.set_size(0);
            builder
                .append_link(&mut header, &e.rel, &link)
                .map_err(write_err)?;
        } else if ft.is_file() {
            let file = open_listed(&e.path, &e.meta)?;
            let size = e.meta.len();
            // tar needs the size up front: a file that shrinks while being read would
            // corrupt the stream, so read exactly `size` and check.
            let mut reader = CancelReader::new(file.take(size), token);
            builder
                .append_data(&mut header, &e.rel, &mut reader)
                .map_err(|err| {
                    if token.is_cancelled() {
                        StepError::cancelled()
                    } else {
                        io_error("archive", &e.path, &err)
                    }
                })?;
            if reader.read != size {
                return Err(StepError::new(format!(
                    "{} changed size while it was archived ({size} bytes expected, {} read); \
                     is something still writing to {}?",
                    e.path.display(),
                    reader.read,
                    folder.display()
                )));
            }
            files += 1;
            bytes += size;
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
    let encoder = builder.into_inner().map_err(write_err)?;
    let sink = encoder.finish().map_err(write_err)?;
    let sha256 = hex::encode(sink.hasher.finalize());
    let archive_bytes = sink.written;
    temp.file = Some(sink.inner);
    check_cancel(token)?;
    temp.commit(&target, true)?;

    let mut out = Outputs::new();
    out.insert("path".into(), spec.archive.clone().into());
    out.insert("files".into(), files.into());
    out.insert("bytes".into(), bytes.into());
    out.insert("sha256".into(), sha256.into());
    out.insert("archive_bytes".into(), archive_bytes.into());
    out.insert("compression".into(), compression.name().into());
    Ok(out)
}

/// Reads the first bytes: gzip starts with 1f 8b, zstd with 28 b5 2f fd.
fn detect(file: &mut File, path: &Path) -> Result<Compression, StepError> {
    let mut magic = [0u8; 4];
    let n = file
        .read(&mut magic)
        .map_err(|e| io_error("read the archive", path, &e))?;
    file.rewind()
        .map_err(|e| io_error("read the archive", path, &e))?;
    match &magic[..n] {
        [0x1f, 0x8b, ..] => Ok(Compression::Gzip),
        [0x28, 0xb5, 0x2f, 0xfd] => Ok(Compression::Zstd),
        _ => Err(StepError::fatal(format!(
            "{} is neither a gzip nor a zstd compressed archive",
            path.display()
        ))),
    }
}

/// Checks that an entry's path stays inside the target: relative, no `..`. Returns the
/// path without `.` components (empty for the root entry `./`).
fn safe_relative(raw: &Path, archive: &Path, what: &str) -> Result<PathBuf, StepError> {
    let mut rel = PathBuf::new();
    for c in raw.components() {
        match c {
            Component::CurDir => {}
            Component::Normal(p) => rel.push(p),
            Component::RootDir | Component::Prefix(_) => {
                return Err(StepError::fatal(format!(
                    "archive {} has {what} with an absolute path `{}`; refusing to extract \
                     outside the target folder",
                    archive.display(),
                    raw.display()
                )))
            }
            Component::ParentDir => {
                return Err(StepError::fatal(format!(
                    "archive {} has {what} `{}` that climbs out with `..`; refusing to \
                     extract outside the target folder",
                    archive.display(),
                    raw.display()
                )))
            }
        }
    }
    Ok(rel)
}

/// Refuses a path whose folders (below the root) include a symlink: writing there would
/// land wherever the link points.
fn no_symlink_parents(root: &Path, rel: &Path, archive: &Path) -> Result<(), StepError> {
    let mut at = root.to_path_buf();
    let parts: Vec<_> = rel.components().collect();
    for part in parts.iter().take(parts.len().saturating_sub(1)) {
        at.push(part);
        if let Ok(m) = fs::symlink_metadata(&at) {
            if m.file_type().is_symlink() {
                let to = fs::read_link(&at)
                    .map(|t| t.display().to_string())
                    .unwrap_or_else(|_| "?".into());
                return Err(StepError::fatal(format!(
                    "archive {} has an entry `{}` that would be written through the symlink \
                     `{}` (-> {to}); refusing to extract outside the target folder",
                    archive.display(),
                    rel.display(),
                    at.strip_prefix(root).unwrap_or(&at).display()
                )));
            }
        }
    }
    Ok(())
}

struct DirAttrs {
    path: PathBuf,
    mode: u32,
    mtime: u64,
    owner: Option<(u32, u32)>,
}

fn extract(
    spec: &ArchiveSpec,
    token: &CancellationToken,
    log: &LogFn,
) -> Result<Outputs, StepError> {
    let archive_path = PathBuf::from(&spec.archive);
    let folder = PathBuf::from(&spec.folder);
    let mut file = match open_regular(&archive_path, "archive") {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Err(StepError::fatal(format!(
                "archive {} does not exist",
                archive_path.display()
            )))
        }
        Err(e) => return Err(io_error("read the archive", &archive_path, &e)),
    };
    let compression = detect(&mut file, &archive_path)?;
    match fs::symlink_metadata(&folder) {
        Ok(m) if m.is_dir() => {
            let mut listing = fs::read_dir(&folder).map_err(|e| io_error("read", &folder, &e))?;
            if listing.next().is_some() && !spec.overwrite {
                return Err(StepError::fatal(format!(
                    "folder {} is not empty; set `overwrite: true` to extract over its contents",
                    folder.display()
                )));
            }
        }
        Ok(_) => {
            return Err(StepError::fatal(format!(
                "{} exists and is not a folder",
                folder.display()
            )))
        }
        Err(_) => {
            fs::create_dir_all(&folder).map_err(|e| io_error("create the folder", &folder, &e))?;
        }
    }
    let root = fs::canonicalize(&folder).map_err(|e| io_error("read", &folder, &e))?;
    let as_root = running_as_root();
    let reader = CancelReader::new(io::BufReader::new(file), token);
    let decoder: Box<dyn Read> = match compression {
        Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(reader)),
        Compression::Zstd => Box::new(
            zstd::stream::read::Decoder::new(reader)
                .map_err(|e| io_error("read the archive", &archive_path, &e))?,
        ),
    };
    let mut tar = tar::Archive::new(decoder);
    tar.set_preserve_permissions(true);
    tar.set_preserve_mtime(true);
    tar.set_preserve_ownerships(as_root);
    tar.set_overwrite(true);
    tar.set_unpack_xattrs(false);
    let read_err = |e: io::Error| {
        if token.is_cancelled() {
            StepError::cancelled()
        } else {
            StepError::fatal(format!(
                "cannot read the archive {}: {e} (is it truncated or corrupt?)",
                archive_path.display()
            ))
        }
    };
    let (mut files, mut bytes) = (0u64, 0u64);
    let mut dirs: Vec<DirAttrs> = Vec::new();
    for entry in tar.entries().map_err(read_err)? {
        check_cancel(token)?;
        let mut entry = entry.map_err(read_err)?;
        let kind = entry.header().entry_type();
        if kind.is_pax_global_extensions() {
            continue;
        }
        let raw = entry.path().map_err(read_err)?.into_owned();
        let rel = safe_relative(&raw, &archive_path, "an entry")?;
        if rel.as_os_str().is_empty() {
            // `./`: the attributes of the folder itself.
            if kind.is_dir() {
                dirs.push(dir_attrs(root.clone(), entry.header(), as_root));
            }
            continue;
        }
        no_symlink_parents(&root, &rel, &archive_path)?;
        if kind.is_hard_link() {
            let link = entry
                .link_name()
                .map_err(read_err)?
                .map(std::borrow::Cow::into_owned)
                .unwrap_or_default();
            let link_rel = safe_relative(&link, &archive_path, "a hard link")?;
            no_symlink_parents(&root, &link_rel, &archive_path)?;
        }
        let dest = root.join(&rel);
        if kind.is_dir() {
            if fs::symlink_metadata(&dest).is_ok_and(|m| m.file_type().is_symlink()) {
                return Err(StepError::fatal(format!(
                    "archive {} has a folder `{}` where a symlink already is; refusing to \
                     extract through it",
                    archive_path.display(),
                    rel.display()
                )));
            }
            fs::create_dir_all(&dest).map_err(|e| io_error("create the folder", &dest, &e))?;
            dirs.push(dir_attrs(dest, entry.header(), as_root));
            continue;
        }
        if !(kind.is_file() || kind.is_contiguous() || kind.is_symlink() || kind.is_hard_link()) {
            log(
                Stream::Stderr,
                &format!("skipping `{}`: not a file, folder or link", rel.display()),
            );
            continue;
        }
        let size = entry.size();
        let unpacked = entry.unpack_in(&root).map_err(|e| {
            if token.is_cancelled() {
                StepError::cancelled()
            } else {
                classify_unpack(&e, &dest)
            }
        })?;
        if !unpacked {
            return Err(StepError::fatal(format!(
                "archive {} has an entry `{}` outside the target folder; refusing to extract it",
                archive_path.display(),
                raw.display()
            )));
        }
        if kind.is_file() || kind.is_contiguous() {
            files += 1;
            bytes += size;
        }
    }
    // Folder attributes last, deepest first: writing into a folder changes its mtime.
    for d in dirs.iter().rev() {
        if let Some((uid, gid)) = d.owner {
            std::os::unix::fs::lchown(&d.path, Some(uid), Some(gid))
                .map_err(|e| io_error("change the owner of", &d.path, &e))?;
        }
        fs::set_permissions(&d.path, fs::Permissions::from_mode(d.mode))
            .map_err(|e| io_error("change the mode of", &d.path, &e))?;
        filetime::set_file_mtime(
            &d.path,
            filetime::FileTime::from_unix_time(d.mtime as i64, 0),
        )
        .map_err(|e| io_error("set the mtime of", &d.path, &e))?;
    }
    let archive_bytes = fs::metadata(&archive_path).map(|m| m.len()).unwrap_or(0);
    let mut out = Outputs::new();
    out.insert("path".into(), spec.archive.clone().into());
    out.insert("files".into(), files.into());
    out.insert("bytes".into(), bytes.into());
    out.insert("archive_bytes".into(), archive_bytes.into());
    out.insert("compression".into(), compression.name().into());
    Ok(out)
}

fn dir_attrs(path: PathBuf, h: &tar::Header, as_root: bool) -> DirAttrs {
    DirAttrs {
        path,
        mode: h.mode().unwrap_or(0o755) & 0o7777,
        mtime: h.mtime().unwrap_or(0),
        owner: match (h.uid(), h.gid()) {
            (Ok(u), Ok(g)) if as_root => Some((u as u32, g as u32)),
            _ => None,
        },
    }
}

/// tar wraps the OS error in its own message ("failed to unpack `…`"); keep the cause.
fn classify_unpack(e: &io::Error, dest: &Path) -> StepError {
    let mut causes = Vec::new();
    let mut source: Option<&(dyn std::error::Error + 'static)> = e.get_ref().map(|r| r as _);
    while let Some(s) = source {
        if let Some(io) = s.downcast_ref::<io::Error>() {
            if io.raw_os_error().is_some() {
                return io_error("extract", dest, io);
            }
        }
        causes.push(s.to_string());
        source = s.source();
    }
    if e.raw_os_error().is_some() {
        return io_error("extract", dest, e);
    }
    let cause = causes.last().cloned().unwrap_or_else(|| e.to_string());
    StepError::fatal(format!("cannot extract {}: {cause}", dest.display()))
}
