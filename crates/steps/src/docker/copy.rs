//! `docker.copy`: copy a folder or file out of a container to this machine, or from this
//! machine into a container, through the engine's archive API: no helper image, so it works
//! on stopped containers and where nothing can be pulled. The tar stream is extracted (or
//! built) as it flows, never held whole in memory; modes and mtimes are kept.
//!
//! Copying out, the tree is first extracted next to the destination under a temporary name
//! and moved into place only when complete, so a cancelled or failed copy never leaves a
//! half-written file under its final name.

use super::Engine;
use crate::{Action, OutputDecl, Outputs, StepContext, StepError, StepType};
use bollard::errors::Error as DockerError;
use bollard::query_parameters::{
    ContainerArchiveInfoOptionsBuilder, DownloadFromContainerOptionsBuilder,
    UploadToContainerOptionsBuilder,
};
use bytes::Bytes;
use futures::StreamExt;
use opsplan_plan::diagnostic::Diagnostic;
use opsplan_plan::source::de::is_template;
use opsplan_plan::source::Node;
use schemars::JsonSchema;
use serde::Deserialize;
use std::io::{Read, Write};
use std::path::{Component, Path, PathBuf};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

pub struct DockerCopy;

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DockerCopySpec {
    /// Name or id of the container; it may be stopped.
    pub container: String,
    /// `out`: from the container to this machine; `in`: from this machine into the container.
    pub direction: Direction,
    /// Absolute path in the container. With `out`, the folder (or file) to copy; with `in`,
    /// the folder the copy goes into (created when missing; its parent must exist).
    pub container_path: String,
    /// Path on this machine. With `out`, the folder the copy goes into (created when
    /// missing); with `in`, the folder (or file) to copy. A folder's contents are copied,
    /// as `cp -a from/. into/` does.
    pub host_path: String,
    /// With `out`: give the copied files the owners they have in the container (needs
    /// root). Copying in, the engine always makes root the owner: fix ownership afterwards
    /// with `docker.exec` (`chown -R …`).
    #[serde(default)]
    pub preserve_owner: bool,
    /// With `out`: replace files that already exist in `host_path`. Off by default, so a
    /// copy out into a folder that holds an older copy fails instead of mixing the two.
    /// Copying in always replaces files of the same name (the engine's rule).
    #[serde(default)]
    pub overwrite: bool,
}

/// Which way `docker.copy` copies.
#[derive(Debug, Clone, Copy, Deserialize, JsonSchema, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    Out,
    In,
}

/// Bytes per chunk sent to the engine; the channel holds a few, which bounds memory.
const CHUNK: usize = 256 * 1024;
const CHANNEL_CHUNKS: usize = 8;
/// Go's `os.ModeDir` bit, as the engine reports a path's mode.
const GO_MODE_DIR: u32 = 1 << 31;

impl StepType for DockerCopy {
    const NAME: &'static str = "docker.copy";
    const SUMMARY: &'static str =
        "Copy a folder or file out of a container or into it, streaming through the archive API; keeps modes and mtimes.";
    type Spec = DockerCopySpec;

    fn outputs() -> &'static [OutputDecl] {
        &[
            OutputDecl {
                name: "files",
                description: "files copied (everything but folders: regular files, links, …)",
            },
            OutputDecl {
                name: "bytes",
                description: "bytes of regular files copied",
            },
        ]
    }
    fn check(spec: &DockerCopySpec, with: &Node) -> Vec<Diagnostic> {
        let mut diags: Vec<Diagnostic> =
            super::check_name(with, "container", &spec.container, "openc3-tsdb-1")
                .into_iter()
                .collect();
        if !spec.container_path.starts_with('/') && !is_template(&spec.container_path) {
            diags.push(super::field_error(
                with,
                "container_path",
                format!("container path `{}` is not absolute", spec.container_path),
                "relative path",
                "write the absolute path inside the container, e.g. `/var/lib/questdb`",
            ));
        }
        if spec.host_path.trim().is_empty() {
            diags.push(super::field_error(
                with,
                "host_path",
                "`host_path` is empty".into(),
                "a path is needed here",
                "give a folder on this machine, e.g. `host_path: /mnt/backup/questdb`",
            ));
        }
        if spec.overwrite && spec.direction == Direction::In {
            diags.push(super::field_error(
                with,
                "overwrite",
                "`overwrite` applies only to `direction: out`".into(),
                "copying in always replaces files of the same name",
                "remove `overwrite`",
            ));
        }
        if spec.preserve_owner && spec.direction == Direction::In {
            diags.push(super::field_error(
                with,
                "preserve_owner",
                "`preserve_owner` applies only to `direction: out`".into(),
                "the engine makes root the owner of what is copied in",
                "remove it and fix ownership with a `docker.exec` step running `chown -R`",
            ));
        }
        diags
    }
    fn destructive(spec: &DockerCopySpec) -> bool {
        // Copying in replaces files of the same name in the container (a restore); copying
        // out does only when told to.
        spec.direction == Direction::In || spec.overwrite
    }
    fn describe(spec: &DockerCopySpec) -> Action {
        let mut owner = String::new();
        if spec.preserve_owner {
            owner.push_str(" (keeping owners)");
        }
        if spec.overwrite {
            owner.push_str(" (replacing existing files)");
        }
        Action::new(match spec.direction {
            Direction::Out => format!(
                "docker copy out: {}:{} -> {}{owner}",
                spec.container, spec.container_path, spec.host_path
            ),
            Direction::In => format!(
                "docker copy in: {} -> {}:{} (files of the same name are replaced)",
                spec.host_path, spec.container, spec.container_path
            ),
        })
    }
    async fn run(spec: DockerCopySpec, ctx: StepContext) -> Result<Outputs, StepError> {
        let engine = Engine::connect(&ctx).await?;
        let (files, bytes) = match spec.direction {
            Direction::Out => {
                let is_dir = stat(&engine, &spec.container, &spec.container_path, &ctx)
                    .await?
                    .ok_or_else(|| {
                        StepError::fatal(format!(
                            "`{}` not found in container `{}`",
                            spec.container_path, spec.container
                        ))
                    })?;
                copy_out(&engine, &spec, is_dir, &ctx).await?
            }
            Direction::In => copy_in(&engine, &spec, &ctx).await?,
        };
        let mut out = Outputs::new();
        out.insert("files".into(), files.into());
        out.insert("bytes".into(), bytes.into());
        Ok(out)
    }
}

/// Whether a container path is a folder, `None` when it does not exist. A missing
/// container is an error of its own.
async fn stat(
    engine: &Engine,
    container: &str,
    path: &str,
    ctx: &StepContext,
) -> Result<Option<bool>, StepError> {
    let options = ContainerArchiveInfoOptionsBuilder::default()
        .path(path)
        .build();
    let r = tokio::select! {
        r = engine.api.get_container_archive_info(container, Some(options)) => r,
        _ = ctx.cancel.cancelled() => return Err(StepError::cancelled()),
    };
    match r {
        Ok(info) => Ok(Some(info.file_mode & GO_MODE_DIR != 0)),
        // A HEAD request has no body: a 404 does not say whether the container or the
        // path is missing, so ask about the container.
        Err(DockerError::DockerResponseServerError {
            status_code: 404, ..
        }) => {
            super::observe(engine, container, ctx).await?;
            Ok(None)
        }
        Err(e) => Err(engine.error(
            e,
            &format!("looking at `{path}` in container `{container}`"),
        )),
    }
}

/// One piece of the tar stream between the async side and the blocking tar code.
enum Piece {
    Data(Bytes),
    /// The stream ended as it should; anything else (a closed channel) is a failure, so a
    /// cut stream cannot pass for a short archive.
    End,
    Fail(String),
}

async fn copy_out(
    engine: &Engine,
    spec: &DockerCopySpec,
    is_dir: bool,
    ctx: &StepContext,
) -> Result<(u64, u64), StepError> {
    let dest = PathBuf::from(&spec.host_path);
    let name = dest
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "copy".into());
    let parent = match dest.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    std::fs::create_dir_all(&parent)
        .map_err(|e| StepError::fatal(format!("cannot create folder {}: {e}", parent.display())))?;
    let staging = parent.join(format!(".{name}.opsplan-partial-{}", std::process::id()));
    if staging.exists() {
        let _ = std::fs::remove_dir_all(&staging);
    }

    let (tx, rx) = mpsc::channel::<Piece>(CHANNEL_CHUNKS);
    let stop = CancellationToken::new();
    let extract = {
        let staging = staging.clone();
        let stop = stop.clone();
        let preserve_owner = spec.preserve_owner;
        let overwrite = spec.overwrite;
        tokio::task::spawn_blocking(move || {
            let reader = PieceReader {
                rx,
                current: Bytes::new(),
                ended: false,
            };
            let result = extract(reader, &staging, is_dir, preserve_owner, &stop);
            result.and_then(|stats| {
                place(&staging, &dest, overwrite)
                    .map(|()| stats)
                    .map_err(|e| format!("moving the copy into {}: {e}", dest.display()))
            })
        })
    };
    let options = DownloadFromContainerOptionsBuilder::default()
        .path(&spec.container_path)
        .build();
    let mut download = engine
        .streaming
        .download_from_container(&spec.container, Some(options));
    let doing = format!(
        "copying `{}` out of container `{}`",
        spec.container_path, spec.container
    );
    let pump = async {
        loop {
            let item = tokio::select! {
                item = download.next() => item,
                _ = ctx.cancel.cancelled() => return Err(StepError::cancelled()),
            };
            let piece = match item {
                Some(Ok(bytes)) => Piece::Data(bytes),
                None => Piece::End,
                Some(Err(e)) => {
                    let error = engine.error(e, &doing);
                    let _ = tx.send(Piece::Fail(error.message.clone())).await;
                    return Err(error);
                }
            };
            let end = matches!(piece, Piece::End);
            // The extractor stopped early; its own result says why.
            if tx.send(piece).await.is_err() || end {
                return Ok(());
            }
        }
    };
    let pumped = pump.await;
    if pumped.is_err() {
        stop.cancel();
    }
    drop(tx);
    let extracted = extract
        .await
        .unwrap_or_else(|e| Err(format!("the extraction stopped: {e}")));
    match (pumped, extracted) {
        (Ok(()), Ok(stats)) => Ok(stats),
        (pumped, extracted) => {
            let _ = tokio::task::spawn_blocking(move || std::fs::remove_dir_all(&staging)).await;
            match (pumped, extracted) {
                (Err(e), _) => Err(e),
                (_, Err(e)) => Err(StepError::new(format!("{doing}: {e}"))),
                _ => Err(StepError::new(doing)),
            }
        }
    }
}

/// A `Read` over the pieces the async side sends.
struct PieceReader {
    rx: mpsc::Receiver<Piece>,
    current: Bytes,
    ended: bool,
}

impl Read for PieceReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        loop {
            if !self.current.is_empty() {
                let n = buf.len().min(self.current.len());
                buf[..n].copy_from_slice(&self.current.split_to(n));
                return Ok(n);
            }
            if self.ended {
                return Ok(0);
            }
            match self.rx.blocking_recv() {
                Some(Piece::Data(bytes)) => self.current = bytes,
                Some(Piece::End) => self.ended = true,
                Some(Piece::Fail(message)) => return Err(std::io::Error::other(message)),
                None => return Err(std::io::Error::other("the copy was interrupted")),
            }
        }
    }
}

/// A tar path as a relative path of plain names; `strip` drops the folder name the engine
/// puts first. `None` for the root itself; an error for `..`, which could escape.
fn relative(path: &Path, strip: bool) -> Result<PathBuf, String> {
    let mut parts = Vec::new();
    for c in path.components() {
        match c {
            Component::Normal(p) => parts.push(p),
            Component::CurDir | Component::RootDir | Component::Prefix(_) => {}
            Component::ParentDir => {
                return Err(format!(
                    "the archive holds a path with `..`: {}",
                    path.display()
                ))
            }
        }
    }
    Ok(parts.into_iter().skip(usize::from(strip)).collect())
}

/// Refuses to write through a symbolic link the archive created earlier (a path such as
/// `link/file` where `link` points elsewhere would write outside the destination).
fn through_symlink(root: &Path, rel: &Path) -> bool {
    let mut at = root.to_path_buf();
    let mut parts = rel.components().peekable();
    while let Some(part) = parts.next() {
        if parts.peek().is_none() {
            break;
        }
        at.push(part);
        if at
            .symlink_metadata()
            .is_ok_and(|m| m.file_type().is_symlink())
        {
            return true;
        }
    }
    false
}

/// A folder whose attributes are applied after its contents were written.
struct Folder {
    path: PathBuf,
    mode: u32,
    mtime: u64,
    owner: Option<(u64, u64)>,
}

/// Extracts the tar stream into `staging`; returns (files, bytes). Folder modes and mtimes
/// are set last, deepest first, so a read-only folder does not block its own contents and
/// writing a file does not bump its folder's mtime afterwards.
fn extract(
    reader: impl Read,
    staging: &Path,
    strip: bool,
    preserve_owner: bool,
    stop: &CancellationToken,
) -> Result<(u64, u64), String> {
    std::fs::create_dir_all(staging)
        .map_err(|e| format!("cannot create {}: {e}", staging.display()))?;
    let mut archive = tar::Archive::new(reader);
    archive.set_preserve_permissions(true);
    archive.set_preserve_mtime(true);
    archive.set_preserve_ownerships(preserve_owner);
    archive.set_unpack_xattrs(false);
    archive.set_overwrite(true);
    let mut folders: Vec<Folder> = Vec::new();
    let (mut files, mut bytes) = (0u64, 0u64);
    let entries = archive
        .entries()
        .map_err(|e| format!("reading the archive: {e}"))?;
    for entry in entries {
        if stop.is_cancelled() {
            return Err("cancelled".into());
        }
        let mut entry = entry.map_err(|e| format!("reading the archive: {e}"))?;
        let raw = entry
            .path()
            .map_err(|e| format!("bad path in the archive: {e}"))?
            .into_owned();
        let rel = relative(&raw, strip)?;
        if through_symlink(staging, &rel) {
            return Err(format!(
                "the archive writes {} through a symbolic link",
                raw.display()
            ));
        }
        let dst = staging.join(&rel);
        let header = entry.header();
        let kind = header.entry_type();
        if kind.is_dir() {
            std::fs::create_dir_all(&dst)
                .map_err(|e| format!("cannot create {}: {e}", dst.display()))?;
            let owner = match (header.uid(), header.gid()) {
                (Ok(u), Ok(g)) if preserve_owner => Some((u, g)),
                _ => None,
            };
            folders.push(Folder {
                path: dst,
                mode: header.mode().unwrap_or(0o755),
                mtime: header.mtime().unwrap_or(0),
                owner,
            });
            continue;
        }
        if rel.as_os_str().is_empty() {
            return Err(format!("unexpected entry {} in the archive", raw.display()));
        }
        if let Some(parent) = dst.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
        }
        if dst.symlink_metadata().is_ok_and(|m| m.is_dir()) {
            let _ = std::fs::remove_dir_all(&dst);
        }
        if kind.is_hard_link() {
            let target = entry
                .link_name()
                .map_err(|e| format!("bad link in the archive: {e}"))?
                .ok_or_else(|| format!("hard link {} without a target", raw.display()))?;
            let target = staging.join(relative(&target, strip)?);
            let _ = std::fs::remove_file(&dst);
            std::fs::hard_link(&target, &dst)
                .map_err(|e| format!("cannot link {}: {e}", dst.display()))?;
            files += 1;
            continue;
        }
        let size = if kind.is_file() {
            header.size().unwrap_or(0)
        } else {
            0
        };
        entry
            .unpack(&dst)
            .map_err(|e| format!("cannot write {}: {e}", dst.display()))?;
        files += 1;
        bytes += size;
    }
    folders.sort_by(|a, b| b.path.cmp(&a.path));
    for Folder {
        path: dir,
        mode,
        mtime,
        owner,
    } in folders
    {
        if let Some((uid, gid)) = owner {
            std::os::unix::fs::chown(&dir, Some(uid as u32), Some(gid as u32))
                .map_err(|e| format!("cannot set the owner of {}: {e}", dir.display()))?;
        }
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(mode & 0o7777))
            .map_err(|e| format!("cannot set the mode of {}: {e}", dir.display()))?;
        let time = filetime::FileTime::from_unix_time(mtime as i64, 0);
        filetime::set_file_mtime(&dir, time)
            .map_err(|e| format!("cannot set the mtime of {}: {e}", dir.display()))?;
    }
    Ok((files, bytes))
}

/// Moves a complete staging tree to its destination: a rename when the destination does
/// not exist, else a merge in which each file replaces its namesake in one rename. Without
/// `overwrite`, an existing namesake fails the copy before anything is moved.
fn place(staging: &Path, dest: &Path, overwrite: bool) -> std::io::Result<()> {
    match std::fs::symlink_metadata(dest) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => std::fs::rename(staging, dest),
        Err(e) => Err(e),
        Ok(m) if m.is_dir() => {
            if !overwrite {
                if let Some(clash) = first_clash(staging, dest)? {
                    return Err(std::io::Error::other(format!(
                        "{} already exists; set `overwrite: true` to replace it",
                        clash.display()
                    )));
                }
            }
            merge(staging, dest)?;
            std::fs::remove_dir_all(staging)
        }
        Ok(_) => Err(std::io::Error::other(format!(
            "{} exists and is not a folder",
            dest.display()
        ))),
    }
}

/// The first destination path that a merge would replace.
fn first_clash(from: &Path, into: &Path) -> std::io::Result<Option<PathBuf>> {
    let mut entries = std::fs::read_dir(from)?.collect::<std::io::Result<Vec<_>>>()?;
    entries.sort_by_key(std::fs::DirEntry::file_name);
    for entry in entries {
        let target = into.join(entry.file_name());
        match std::fs::symlink_metadata(&target) {
            Ok(t) if t.is_dir() && entry.file_type()?.is_dir() => {
                if let Some(clash) = first_clash(&entry.path(), &target)? {
                    return Ok(Some(clash));
                }
            }
            Ok(_) => return Ok(Some(target)),
            Err(_) => {}
        }
    }
    Ok(None)
}

fn merge(from: &Path, into: &Path) -> std::io::Result<()> {
    let meta = std::fs::symlink_metadata(from)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let source = entry.path();
        let target = into.join(entry.file_name());
        let source_dir = entry.file_type()?.is_dir();
        match std::fs::symlink_metadata(&target) {
            Ok(t) if t.is_dir() && source_dir => merge(&source, &target)?,
            Ok(t) if t.is_dir() => {
                std::fs::remove_dir_all(&target)?;
                std::fs::rename(&source, &target)?;
            }
            _ => std::fs::rename(&source, &target)?,
        }
    }
    std::fs::set_permissions(into, meta.permissions())?;
    filetime::set_file_mtime(into, filetime::FileTime::from_last_modification_time(&meta))
}

async fn copy_in(
    engine: &Engine,
    spec: &DockerCopySpec,
    ctx: &StepContext,
) -> Result<(u64, u64), StepError> {
    let source = PathBuf::from(&spec.host_path);
    let meta = std::fs::symlink_metadata(&source)
        .map_err(|e| StepError::fatal(format!("cannot read {}: {e}", source.display())))?;
    // The engine unpacks into an existing folder; the destination folder itself travels
    // as the archive's top entry, so it is created when missing.
    let target = Path::new(&spec.container_path);
    let (parent, top) = match (target.parent(), target.file_name()) {
        (Some(parent), Some(name)) => (parent.to_string_lossy().into_owned(), PathBuf::from(name)),
        _ => (spec.container_path.clone(), PathBuf::new()),
    };
    let not_a_folder = |path: &str| {
        StepError::fatal(format!(
            "`{path}` in container `{}` is not a folder, so nothing can be copied into it",
            spec.container
        ))
    };
    match stat(engine, &spec.container, &spec.container_path, ctx).await? {
        Some(true) => {}
        Some(false) => return Err(not_a_folder(&spec.container_path)),
        None => match stat(engine, &spec.container, &parent, ctx).await? {
            Some(true) => {}
            Some(false) => return Err(not_a_folder(&parent)),
            None => {
                return Err(StepError::fatal(format!(
                    "`{parent}` not found in container `{}`: the folder that receives the copy \
                     is created, but not its parents",
                    spec.container
                )))
            }
        },
    }
    let (tx, rx) = mpsc::channel::<std::io::Result<Bytes>>(CHANNEL_CHUNKS);
    let stop = ctx.cancel.clone();
    let build = tokio::task::spawn_blocking(move || {
        let writer = PieceWriter {
            tx: tx.clone(),
            buffer: Vec::with_capacity(CHUNK),
        };
        let result = build_tar(writer, &source, meta.is_dir(), &top, &stop);
        if let Err(message) = &result {
            // An error in the body aborts the upload; a plain end would let the engine
            // unpack a cut archive as if it were whole.
            let _ = tx.blocking_send(Err(std::io::Error::other(message.clone())));
        }
        result
    });
    let body = futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    });
    let options = UploadToContainerOptionsBuilder::default()
        .path(&parent)
        .no_overwrite_dir_non_dir("true")
        .build();
    let doing = format!(
        "copying {} into container `{}` at `{}`",
        spec.host_path, spec.container, spec.container_path
    );
    let uploaded = tokio::select! {
        r = engine.streaming.upload_to_container(
            &spec.container,
            Some(options),
            bollard::body_try_stream(body),
        ) => Some(r),
        _ = ctx.cancel.cancelled() => None,
    };
    let built = build
        .await
        .unwrap_or_else(|e| Err(format!("building the archive stopped: {e}")));
    match (uploaded, built) {
        (None, _) => Err(StepError::cancelled()),
        (Some(_), Err(e)) => Err(StepError::new(format!("{doing}: {e}"))),
        (Some(Err(e)), Ok(_)) => Err(engine.error(e, &doing)),
        (Some(Ok(())), Ok(stats)) => Ok(stats),
    }
}

/// A `Write` that hands the tar stream to the upload in chunks; blocks while the engine
/// is behind, which bounds memory.
struct PieceWriter {
    tx: mpsc::Sender<std::io::Result<Bytes>>,
    buffer: Vec<u8>,
}

impl PieceWriter {
    fn send(&mut self) -> std::io::Result<()> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        let chunk = Bytes::from(std::mem::replace(
            &mut self.buffer,
            Vec::with_capacity(CHUNK),
        ));
        self.tx
            .blocking_send(Ok(chunk))
            .map_err(|_| std::io::Error::other("the engine stopped reading the upload"))
    }
}

impl Write for PieceWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.buffer.extend_from_slice(buf);
        if self.buffer.len() >= CHUNK {
            self.send()?;
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.send()
    }
}

/// Writes the tar stream of `source` under the folder name `top`: a folder's contents (the
/// folder's own mode and mtime go to `top`), or one file under its name. Returns (files,
/// bytes).
fn build_tar(
    writer: PieceWriter,
    source: &Path,
    is_dir: bool,
    top: &Path,
    stop: &CancellationToken,
) -> Result<(u64, u64), String> {
    let mut builder = tar::Builder::new(writer);
    builder.mode(tar::HeaderMode::Complete);
    builder.follow_symlinks(false);
    let (mut files, mut bytes) = (0u64, 0u64);
    let mut add =
        |builder: &mut tar::Builder<PieceWriter>, path: &Path, name: &Path| -> Result<(), String> {
            if stop.is_cancelled() {
                return Err("cancelled".into());
            }
            let meta = std::fs::symlink_metadata(path)
                .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
            builder
                .append_path_with_name(path, name)
                .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
            if !meta.is_dir() {
                files += 1;
            }
            if meta.is_file() {
                bytes += meta.len();
            }
            Ok(())
        };
    if !top.as_os_str().is_empty() {
        let folder = if is_dir {
            source
        } else {
            source.parent().unwrap_or(Path::new("."))
        };
        add(&mut builder, folder, top)?;
    }
    if is_dir {
        for entry in walkdir::WalkDir::new(source)
            .min_depth(1)
            .follow_links(false)
            .sort_by_file_name()
        {
            let entry = entry.map_err(|e| format!("cannot read {}: {e}", source.display()))?;
            let name = top.join(
                entry
                    .path()
                    .strip_prefix(source)
                    .map_err(|e| e.to_string())?,
            );
            add(&mut builder, entry.path(), &name)?;
        }
    } else {
        let name = source
            .file_name()
            .map(|n| top.join(n))
            .ok_or_else(|| format!("{} has no file name", source.display()))?;
        add(&mut builder, source, &name)?;
    }
    let mut writer = builder
        .into_inner()
        .map_err(|e| format!("finishing the archive: {e}"))?;
    writer
        .flush()
        .map_err(|e| format!("finishing the archive: {e}"))?;
    Ok((files, bytes))
}
