//! `object.sync`: make a destination prefix hold what a source prefix holds, between S3,
//! Azure Blob, GCS and local folders. (dop: back up the mimir/loki/backup buckets with
//! rclone-like excludes; restore every block file first and each block's `meta.json` last.)
//! The comparison rules and metadata keys are in the module note of `steps/object/mod.rs`.

use super::{
    format_mtime, human_bytes, local_path, parse_size, stored_from, Connection, Entry, Location,
    Nanos, Side, META_MTIME, META_SHA256, TMP_SUFFIX,
};
use crate::{Action, OutputDecl, Outputs, StepContext, StepError, StepType, Stream};
use bytes::Bytes;
use futures::stream::BoxStream;
use futures::StreamExt;
use globset::{Glob, GlobSet, GlobSetBuilder};
use object_store::{
    Attribute, AttributeValue, Attributes, ObjectStoreExt, PutMultipartOptions, PutOptions,
    PutPayload, WriteMultipart,
};
use opsplan_plan::diagnostic::{Code, Diagnostic};
use opsplan_plan::source::de::is_template;
use opsplan_plan::source::Node;
use schemars::JsonSchema;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_util::sync::CancellationToken;

pub struct ObjectSync;

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SyncSpec {
    /// Where the objects come from: `s3://bucket/prefix`, `az://container/prefix`,
    /// `gs://bucket/prefix` or a local folder.
    pub source: String,
    /// Where they go, in the same forms. A missing local folder is created.
    pub destination: String,
    /// How to reach the source when it is remote (endpoint, credentials, timeouts).
    #[serde(default)]
    pub source_options: Connection,
    /// How to reach the destination when it is remote.
    #[serde(default)]
    pub destination_options: Connection,
    /// Only keys matching one of these globs are synced (default: all). Globs match the key
    /// relative to the source prefix; `*` also crosses `/`, so `*/meta.json` matches at any depth.
    #[serde(default)]
    pub include: Vec<String>,
    /// Keys matching one of these globs are neither copied nor deleted (rclone's `--exclude`).
    #[serde(default)]
    pub exclude: Vec<String>,
    /// Skip every folder (key prefix), with everything below it, that holds an object with
    /// this name, on either side (rclone's `--exclude-if-present`, e.g. `deletion-mark.json`).
    #[serde(default)]
    pub exclude_if_present: Option<String>,
    /// Objects matching these globs are sent only after every other object arrived; if any
    /// other transfer fails they are not sent at all (a TSDB block's `meta.json` marks it
    /// complete, so it must come last).
    #[serde(default)]
    pub last: Vec<String>,
    /// Delete destination objects that the source does not have (after all copies succeeded;
    /// excluded keys are left alone). Makes the step destructive.
    #[serde(default)]
    pub delete: bool,
    /// Transfers running at once (default 8).
    #[serde(default = "default_parallel")]
    pub parallel: usize,
    /// When an object of equal size counts as unchanged: `size_mtime` (default) or `checksum`.
    #[serde(default)]
    pub compare: Compare,
    /// Objects at least this big are uploaded in parts (default `64MiB`); smaller ones are sent
    /// in one request, held in memory.
    #[serde(default = "default_threshold")]
    pub multipart_threshold: String,
    /// Size of one part of a multipart upload (default `16MiB`; S3 needs at least `5MiB`).
    #[serde(default = "default_part_size")]
    pub part_size: String,
    /// Time between progress lines (default `10s`).
    #[serde(default = "default_progress")]
    pub progress_interval: String,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Compare {
    /// Equal size and equal (recorded) source modification time.
    #[default]
    SizeMtime,
    /// Equal size and equal SHA-256.
    Checksum,
}

fn default_parallel() -> usize {
    8
}
fn default_threshold() -> String {
    "64MiB".into()
}
fn default_part_size() -> String {
    "16MiB".into()
}
fn default_progress() -> String {
    "10s".into()
}

/// Largest part S3 accepts.
const MAX_PART: u64 = 5 << 30;
/// Parts of one multipart upload in flight at once.
const PART_CONCURRENCY: usize = 2;
/// Read size for local files.
const CHUNK: usize = 1 << 20;

fn glob_set(patterns: &[String]) -> Result<Option<GlobSet>, StepError> {
    if patterns.is_empty() {
        return Ok(None);
    }
    let mut b = GlobSetBuilder::new();
    for p in patterns {
        b.add(Glob::new(p).map_err(|e| StepError::fatal(format!("bad glob `{p}`: {}", e.kind())))?);
    }
    b.build()
        .map(Some)
        .map_err(|e| StepError::fatal(format!("bad globs: {e}")))
}

/// The spec with its texts parsed.
struct Config {
    include: Option<GlobSet>,
    exclude: Option<GlobSet>,
    last: Option<GlobSet>,
    marker: Option<String>,
    parallel: usize,
    compare: Compare,
    threshold: u64,
    part_size: usize,
    progress: Duration,
}

impl Config {
    fn new(spec: &SyncSpec) -> Result<Config, StepError> {
        let size = |text: &str, field: &str| {
            parse_size(text).map_err(|e| StepError::fatal(format!("`{field}`: {e}")))
        };
        let part_size = size(&spec.part_size, "part_size")?;
        if part_size == 0 || part_size > MAX_PART {
            return Err(StepError::fatal(
                "`part_size` must be between 1 byte and 5GiB",
            ));
        }
        if spec.parallel == 0 {
            return Err(StepError::fatal("`parallel` must be at least 1"));
        }
        Ok(Config {
            include: glob_set(&spec.include)?,
            exclude: glob_set(&spec.exclude)?,
            last: glob_set(&spec.last)?,
            marker: spec.exclude_if_present.clone().filter(|m| !m.is_empty()),
            parallel: spec.parallel,
            compare: spec.compare,
            threshold: size(&spec.multipart_threshold, "multipart_threshold")?,
            part_size: part_size as usize,
            progress: humantime::parse_duration(spec.progress_interval.trim()).map_err(|e| {
                StepError::fatal(format!(
                    "bad duration `{}` in `progress_interval`: {e}",
                    spec.progress_interval
                ))
            })?,
        })
    }

    fn is_last(&self, key: &str) -> bool {
        self.last.as_ref().is_some_and(|g| g.is_match(key))
    }

    /// Applies include, exclude and exclude_if_present to one side's listing.
    fn filter(&self, listing: BTreeMap<String, Entry>) -> BTreeMap<String, Entry> {
        let marked: BTreeSet<String> = match &self.marker {
            None => BTreeSet::new(),
            Some(m) => listing
                .keys()
                .filter_map(|k| {
                    let (dir, name) = k.rsplit_once('/').unwrap_or(("", k));
                    (name == m).then(|| dir.to_string())
                })
                .collect(),
        };
        listing
            .into_iter()
            .filter(|(k, _)| {
                self.include.as_ref().is_none_or(|g| g.is_match(k))
                    && !self.exclude.as_ref().is_some_and(|g| g.is_match(k))
                    && !under_marked(k, &marked)
            })
            .collect()
    }
}

/// Whether a folder holding `key` (its parent or any ancestor, the root included) is marked.
fn under_marked(key: &str, marked: &BTreeSet<String>) -> bool {
    if marked.is_empty() {
        return false;
    }
    if marked.contains("") {
        return true;
    }
    let mut dir = key;
    while let Some((parent, _)) = dir.rsplit_once('/') {
        if marked.contains(parent) {
            return true;
        }
        dir = parent;
    }
    false
}

impl StepType for ObjectSync {
    const NAME: &'static str = "object.sync";
    const SUMMARY: &'static str = "Sync objects between S3-compatible storage, Azure Blob, GCS and local folders: globs, `last` objects, parallel multipart transfers, unchanged objects skipped.";
    type Spec = SyncSpec;

    fn outputs() -> &'static [OutputDecl] {
        &[
            OutputDecl {
                name: "copied",
                description: "objects copied",
            },
            OutputDecl {
                name: "copied_bytes",
                description: "bytes copied",
            },
            OutputDecl {
                name: "skipped",
                description: "objects already unchanged at the destination",
            },
            OutputDecl {
                name: "deleted",
                description: "destination objects deleted (`delete: true`)",
            },
            OutputDecl {
                name: "duration_seconds",
                description: "how long the sync took, in seconds",
            },
        ]
    }

    fn check(spec: &SyncSpec, with: &Node) -> Vec<Diagnostic> {
        let mut diags = Vec::new();
        let at = |field: &str| with.get(field).map_or(with.span, |n| n.span);
        for (field, text) in [("source", &spec.source), ("destination", &spec.destination)] {
            diags.extend(super::check_location(
                with,
                field,
                text,
                &format!("{field}_options"),
            ));
        }
        for field in ["include", "exclude", "last"] {
            diags.extend(opsplan_plan::fields::check_glob_field(with, field));
        }
        if let Some(marker) = &spec.exclude_if_present {
            if marker.is_empty() || marker.contains('/') {
                diags.push(
                    Diagnostic::new(
                        Code::StepArgs,
                        format!("`exclude_if_present` `{marker}` is not a file name"),
                    )
                    .label(at("exclude_if_present"), "a name without `/`")
                    .help("give the marker object's name, e.g. `deletion-mark.json`"),
                );
            }
        }
        let templated = |field: &str| {
            with.get(field)
                .and_then(|n| n.as_str())
                .is_some_and(is_template)
        };
        if spec.parallel == 0 && !templated("parallel") {
            diags.push(
                Diagnostic::new(
                    Code::StepArgs,
                    "`parallel` is 0: nothing would be transferred",
                )
                .label(at("parallel"), "must be at least 1")
                .help("use 1 for one transfer at a time, or leave it out for 8"),
            );
        }
        for field in ["multipart_threshold", "part_size"] {
            let text = if field == "part_size" {
                &spec.part_size
            } else {
                &spec.multipart_threshold
            };
            if is_template(text) {
                continue;
            }
            let problem = match parse_size(text) {
                Err(e) => Some(e),
                Ok(0) if field == "part_size" => Some("a part cannot be empty".to_string()),
                Ok(n) if field == "part_size" && n > MAX_PART => {
                    Some("parts are at most 5GiB".to_string())
                }
                Ok(_) => None,
            };
            if let Some(problem) = problem {
                diags.push(
                    Diagnostic::new(Code::StepArgs, format!("bad size in `{field}`: {problem}"))
                        .label(at(field), "not a usable size")
                        .help("write a size such as `64MiB`, `5MB` or `1048576`"),
                );
            }
        }
        if let Some(d) = opsplan_plan::fields::check_duration_field(with, "progress_interval") {
            diags.push(d);
        }
        for side in ["source_options", "destination_options"] {
            if let Some(options) = with.get(side) {
                for field in ["connect_timeout", "read_timeout"] {
                    if let Some(d) = opsplan_plan::fields::check_duration_field(options, field) {
                        diags.push(d);
                    }
                }
            }
        }
        diags
    }

    fn destructive(spec: &SyncSpec) -> bool {
        spec.delete
    }

    fn describe(spec: &SyncSpec) -> Action {
        let side = |text: &str, options: &Connection| {
            let remote = Location::parse(text).is_ok_and(|l| !l.is_local());
            match &options.endpoint {
                Some(e) if remote && options.addressing == Some(super::Addressing::Virtual) => {
                    format!("{text} (at {e}, bucket in the host name)")
                }
                Some(e) if remote => format!("{text} (at {e})"),
                _ => text.to_string(),
            }
        };
        let mut parts = vec![
            format!("{} parallel", spec.parallel),
            match spec.compare {
                Compare::SizeMtime => "unchanged = same size and mtime".to_string(),
                Compare::Checksum => "unchanged = same SHA-256".to_string(),
            },
        ];
        let list = |globs: &[String]| {
            globs
                .iter()
                .map(|g| format!("`{g}`"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        if !spec.include.is_empty() {
            parts.push(format!("include {}", list(&spec.include)));
        }
        if !spec.exclude.is_empty() {
            parts.push(format!("exclude {}", list(&spec.exclude)));
        }
        if let Some(m) = spec.exclude_if_present.as_ref().filter(|m| !m.is_empty()) {
            parts.push(format!("skip folders holding `{m}`"));
        }
        if !spec.last.is_empty() {
            parts.push(format!(
                "{} only after everything else succeeded",
                list(&spec.last)
            ));
        }
        if spec.delete {
            parts.push("DELETE destination objects missing from the source".into());
        }
        Action::new(format!(
            "sync {} -> {} ({})",
            side(&spec.source, &spec.source_options),
            side(&spec.destination, &spec.destination_options),
            parts.join("; ")
        ))
    }

    async fn run(spec: SyncSpec, ctx: StepContext) -> Result<Outputs, StepError> {
        let started = Instant::now();
        let redact = ctx.redact.clone();
        sync(spec, &ctx, started)
            .await
            .map_err(|e| super::redacted(e, &redact))
    }
}

/// Options that cannot apply to the side they are given for.
pub(super) fn check_options(
    loc: &Location,
    node: Option<&Node>,
    field: &str,
) -> Option<Diagnostic> {
    let node = node?;
    let set: Vec<&str> = match &node.value {
        opsplan_plan::source::NodeValue::Map(entries) => {
            entries.iter().filter_map(|(k, _)| k.as_str()).collect()
        }
        _ => return None,
    };
    let allowed: &[&str] = match loc {
        Location::Local(_) => &[],
        Location::Remote { kind, .. } => match kind {
            super::Kind::S3 => &[
                "endpoint",
                "region",
                "addressing",
                "allow_http",
                "access_key_id",
                "secret_access_key",
                "session_token",
                "anonymous",
                "retries",
                "connect_timeout",
                "read_timeout",
            ],
            super::Kind::Azure => &[
                "endpoint",
                "allow_http",
                "account",
                "access_key",
                "anonymous",
                "retries",
                "connect_timeout",
                "read_timeout",
            ],
            super::Kind::Gcs => &[
                "endpoint",
                "allow_http",
                "service_account_key",
                "anonymous",
                "retries",
                "connect_timeout",
                "read_timeout",
            ],
        },
    };
    let wrong: Vec<&str> = set.into_iter().filter(|k| !allowed.contains(k)).collect();
    if wrong.is_empty() {
        return None;
    }
    let what = match loc {
        Location::Local(_) => "a local folder needs no connection options".to_string(),
        Location::Remote { .. } => format!("not used for {loc}"),
    };
    let span = node.get(wrong[0]).map_or(node.span, |n| n.span);
    Some(
        Diagnostic::new(
            Code::StepArgs,
            format!(
                "`{field}` sets {}: {what}",
                wrong
                    .iter()
                    .map(|w| format!("`{w}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        )
        .label(span, "does not apply here")
        .help(match loc {
            Location::Local(_) => "remove the options or make the location a URL".to_string(),
            Location::Remote { .. } => format!("options for this location: {}", allowed.join(", ")),
        }),
    )
}

/// Shared counters for the progress lines.
#[derive(Default)]
struct Progress {
    objects: AtomicU64,
    bytes: AtomicU64,
}

/// One object to copy.
struct Job {
    key: String,
    entry: Entry,
    /// SHA-256 of the source when the comparison already computed it.
    sha256: Option<String>,
}

enum Outcome {
    Copied(u64),
    NotStarted,
}

async fn sync(spec: SyncSpec, ctx: &StepContext, started: Instant) -> Result<Outputs, StepError> {
    let cfg = Arc::new(Config::new(&spec)?);
    let src_loc =
        Location::parse(&spec.source).map_err(|e| StepError::fatal(format!("`source`: {e}")))?;
    let dst_loc = Location::parse(&spec.destination)
        .map_err(|e| StepError::fatal(format!("`destination`: {e}")))?;
    let src = Arc::new(Side::open(&src_loc, &spec.source_options)?);
    let dst = Arc::new(Side::open(&dst_loc, &spec.destination_options)?);
    if let Side::Local(root) = src.as_ref() {
        if !root.is_dir() {
            return Err(StepError::fatal(format!(
                "source folder {} does not exist",
                root.display()
            )));
        }
    }
    let log = |line: String| (ctx.log)(Stream::Stdout, &line);

    let listed = tokio::select! {
        r = futures::future::try_join(src.list(), dst.list()) => r?,
        _ = ctx.cancel.cancelled() => return Err(StepError::cancelled()),
    };
    let sources = cfg.filter(listed.0);
    let dests = cfg.filter(listed.1);
    log(format!(
        "source {}: {} objects ({}); destination {}: {} objects",
        src.describe(),
        sources.len(),
        human_bytes(sources.values().map(|e| e.size).sum()),
        dst.describe(),
        dests.len()
    ));

    // Decide what to copy; HEADs and hashes run in parallel like transfers.
    let decisions: Vec<Result<Option<Job>, StepError>> = {
        let cancel = ctx.cancel.clone();
        let work: Vec<(String, Entry, Option<Entry>)> = sources
            .iter()
            .map(|(k, e)| (k.clone(), e.clone(), dests.get(k).cloned()))
            .collect();
        futures::stream::iter(work)
            .map(|(key, entry, have)| {
                let (src, dst, cfg, cancel) =
                    (src.clone(), dst.clone(), cfg.clone(), cancel.clone());
                async move { decide(&src, &dst, &cfg, &key, &entry, have, &cancel).await }
            })
            .buffer_unordered(cfg.parallel)
            .collect()
            .await
    };
    let mut jobs = Vec::new();
    let mut skipped = 0u64;
    for d in decisions {
        match d? {
            Some(job) => jobs.push(job),
            None => skipped += 1,
        }
    }
    jobs.sort_by(|a, b| a.key.cmp(&b.key));
    let (last, first): (Vec<Job>, Vec<Job>) = jobs.into_iter().partition(|j| cfg.is_last(&j.key));
    let doomed: Vec<String> = if spec.delete {
        dests
            .keys()
            .filter(|k| !sources.contains_key(*k))
            .cloned()
            .collect()
    } else {
        Vec::new()
    };
    let total_objects = (first.len() + last.len()) as u64;
    let total_bytes: u64 = first.iter().chain(&last).map(|j| j.entry.size).sum();
    log(format!(
        "to copy: {total_objects} objects ({}){}; unchanged: {skipped}{}",
        human_bytes(total_bytes),
        if last.is_empty() {
            String::new()
        } else {
            format!(", {} of them last", last.len())
        },
        if spec.delete {
            format!("; to delete: {}", doomed.len())
        } else {
            String::new()
        }
    ));

    let progress = Arc::new(Progress::default());
    let ticker = {
        let (progress, log, every) = (progress.clone(), ctx.log.clone(), cfg.progress);
        let begun = Instant::now();
        tokio::spawn(async move {
            let mut interval = tokio::time::interval(every.max(Duration::from_millis(100)));
            interval.tick().await;
            loop {
                interval.tick().await;
                let bytes = progress.bytes.load(Ordering::Relaxed);
                let rate = bytes as f64 / begun.elapsed().as_secs_f64().max(0.001);
                log(
                    Stream::Stdout,
                    &format!(
                        "progress: {}/{total_objects} objects, {} of {}, {}/s",
                        progress.objects.load(Ordering::Relaxed),
                        human_bytes(bytes),
                        human_bytes(total_bytes),
                        human_bytes(rate as u64)
                    ),
                );
            }
        })
    };
    let _stop_ticker = AbortOnDrop(ticker);

    let mut copied = 0u64;
    let mut copied_bytes = 0u64;
    let first_count = first.len();
    let (n, b) = run_phase(first, &src, &dst, &cfg, &progress, ctx)
        .await
        .map_err(|e| {
            if last.is_empty() {
                e
            } else {
                StepError {
                    message: format!(
                        "{}; the {} `last` objects were not sent",
                        e.message,
                        last.len()
                    ),
                    retryable: e.retryable,
                    outputs: None,
                    answer: None,
                }
            }
        })?;
    copied += n;
    copied_bytes += b;
    if !last.is_empty() {
        log(format!(
            "sending {} `last` objects now that the other {first_count} are in place",
            last.len()
        ));
        let (n, b) = run_phase(last, &src, &dst, &cfg, &progress, ctx).await?;
        copied += n;
        copied_bytes += b;
    }

    let mut deleted = 0u64;
    if !doomed.is_empty() {
        let results: Vec<Result<(), StepError>> = futures::stream::iter(doomed.clone())
            .map(|key| {
                let dst = dst.clone();
                let cancel = ctx.cancel.clone();
                async move {
                    if cancel.is_cancelled() {
                        return Err(StepError::cancelled());
                    }
                    dst.delete(&key).await
                }
            })
            .buffer_unordered(cfg.parallel)
            .collect()
            .await;
        for r in results {
            r?;
            deleted += 1;
        }
    }

    let seconds = started.elapsed().as_secs_f64();
    log(format!(
        "copied {copied} objects ({}), {skipped} unchanged, {deleted} deleted in {seconds:.1}s",
        human_bytes(copied_bytes)
    ));
    let mut out = Outputs::new();
    out.insert("copied".into(), copied.into());
    out.insert("copied_bytes".into(), copied_bytes.into());
    out.insert("skipped".into(), skipped.into());
    out.insert("deleted".into(), deleted.into());
    out.insert(
        "duration_seconds".into(),
        ((seconds * 1000.0).round() / 1000.0).into(),
    );
    Ok(out)
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);
impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Transfers `jobs`, `parallel` at a time. The first failure stops new transfers (running
/// ones finish, so a rerun has less to do); the error names every failure (up to three).
async fn run_phase(
    jobs: Vec<Job>,
    src: &Arc<Side>,
    dst: &Arc<Side>,
    cfg: &Arc<Config>,
    progress: &Arc<Progress>,
    ctx: &StepContext,
) -> Result<(u64, u64), StepError> {
    let total = jobs.len();
    let stop = Arc::new(AtomicBool::new(false));
    let results: Vec<(String, Result<Outcome, StepError>)> = futures::stream::iter(jobs)
        .map(|job| {
            let (src, dst, cfg, progress, stop) = (
                src.clone(),
                dst.clone(),
                cfg.clone(),
                progress.clone(),
                stop.clone(),
            );
            let cancel = ctx.cancel.clone();
            async move {
                if stop.load(Ordering::Relaxed) || cancel.is_cancelled() {
                    return (job.key, Ok(Outcome::NotStarted));
                }
                let r = copy(&src, &dst, &job, &cfg, &progress, &cancel).await;
                if r.is_err() {
                    stop.store(true, Ordering::Relaxed);
                } else {
                    progress.objects.fetch_add(1, Ordering::Relaxed);
                }
                (job.key, r.map(Outcome::Copied))
            }
        })
        .buffer_unordered(cfg.parallel)
        .collect()
        .await;
    if ctx.cancel.is_cancelled() {
        return Err(StepError::cancelled());
    }
    let mut copied = 0;
    let mut bytes = 0;
    let mut failures = Vec::new();
    let mut not_started = 0;
    for (key, r) in results {
        match r {
            Ok(Outcome::Copied(b)) => {
                copied += 1;
                bytes += b;
            }
            Ok(Outcome::NotStarted) => not_started += 1,
            Err(e) => failures.push((key, e)),
        }
    }
    if failures.is_empty() {
        return Ok((copied, bytes));
    }
    failures.sort_by(|a, b| a.0.cmp(&b.0));
    let retryable = failures.iter().all(|(_, e)| e.retryable);
    let shown: Vec<String> = failures
        .iter()
        .take(3)
        .map(|(key, e)| format!("`{key}`: {}", e.message))
        .collect();
    let mut message = format!(
        "{} of {total} transfers failed ({} not started after the first failure): {}",
        failures.len(),
        not_started,
        shown.join("; ")
    );
    if failures.len() > 3 {
        message.push_str(&format!("; and {} more", failures.len() - 3));
    }
    Err(StepError {
        message,
        retryable,
        outputs: None,
        answer: None,
    })
}

/// Whether `key` must be copied; `None` when the destination already has it unchanged.
async fn decide(
    src: &Side,
    dst: &Side,
    cfg: &Config,
    key: &str,
    entry: &Entry,
    have: Option<Entry>,
    cancel: &CancellationToken,
) -> Result<Option<Job>, StepError> {
    let job = |sha256| {
        Some(Job {
            key: key.to_string(),
            entry: entry.clone(),
            sha256,
        })
    };
    let Some(have) = have else {
        return Ok(job(None));
    };
    if have.size != entry.size {
        return Ok(job(None));
    }
    if cancel.is_cancelled() {
        return Err(StepError::cancelled());
    }
    match cfg.compare {
        Compare::SizeMtime => {
            let source_mtime = match src {
                Side::Local(_) => entry.modified,
                Side::Remote(_) => src.stored(key).await?.mtime.unwrap_or(entry.modified),
            };
            let recorded = dst.stored(key).await?.mtime;
            Ok(match recorded {
                Some(t) if (t - source_mtime).abs() < 1_000_000 => None,
                _ => job(None),
            })
        }
        Compare::Checksum => {
            let source_sha = side_sha(src, key, cancel).await?;
            let dest_sha = side_sha(dst, key, cancel).await?;
            Ok(if source_sha == dest_sha {
                None
            } else {
                job(Some(source_sha))
            })
        }
    }
}

/// The stored `sha256` of a remote object, else the hash of its content.
async fn side_sha(side: &Side, key: &str, cancel: &CancellationToken) -> Result<String, StepError> {
    if let Side::Remote(_) = side {
        if let Some(sha) = side.stored(key).await?.sha256 {
            return Ok(sha);
        }
    }
    side.hash(key, cancel).await
}

/// A source being read chunk by chunk.
enum Reader {
    File(tokio::fs::File, PathBuf),
    Stream(BoxStream<'static, object_store::Result<Bytes>>),
}

/// What the destination records about the source.
struct SourceFacts {
    size: u64,
    mtime: Nanos,
    sha256: Option<String>,
}

/// Copies one object, streaming; returns the bytes sent.
async fn copy(
    src: &Side,
    dst: &Side,
    job: &Job,
    cfg: &Config,
    progress: &Progress,
    cancel: &CancellationToken,
) -> Result<u64, StepError> {
    let key = job.key.as_str();
    let mut sha256 = job.sha256.clone();
    // Checksum mode records the hash, so a local file is hashed before its upload starts.
    if cfg.compare == Compare::Checksum && sha256.is_none() && matches!(dst, Side::Remote(_)) {
        if let Side::Local(_) = src {
            sha256 = Some(src.hash(key, cancel).await?);
        }
    }
    let (mut reader, facts) = match src {
        Side::Local(root) => {
            let path = local_path(root, key)?;
            let file = tokio::fs::File::open(&path)
                .await
                .map_err(|e| StepError::new(format!("cannot open {}: {e}", path.display())))?;
            let meta = file
                .metadata()
                .await
                .map_err(|e| StepError::new(format!("cannot stat {}: {e}", path.display())))?;
            let mtime = meta
                .modified()
                .map(super::system_time_nanos)
                .unwrap_or(job.entry.modified);
            (
                Reader::File(file, path),
                SourceFacts {
                    size: meta.len(),
                    mtime,
                    sha256,
                },
            )
        }
        Side::Remote(r) => {
            let path = r.path(key)?;
            let got = tokio::select! {
                g = r.store.get(&path) => g.map_err(|e| r.error(&e, &format!("reading `{key}`")))?,
                _ = cancel.cancelled() => return Err(StepError::cancelled()),
            };
            let stored = stored_from(&got.attributes);
            let facts = SourceFacts {
                size: got.meta.size,
                mtime: stored
                    .mtime
                    .unwrap_or_else(|| got.meta.last_modified.timestamp_nanos_opt().unwrap_or(0)),
                sha256: sha256.or(stored.sha256),
            };
            (Reader::Stream(got.into_stream()), facts)
        }
    };
    match dst {
        Side::Local(root) => {
            write_local(root, key, &facts, &mut reader, src, progress, cancel).await
        }
        Side::Remote(r) => {
            let path = r.path(key)?;
            let mut attributes = Attributes::new();
            attributes.insert(
                Attribute::Metadata(META_MTIME.into()),
                AttributeValue::from(format_mtime(facts.mtime)),
            );
            let doing = format!("uploading `{key}`");
            if facts.size < cfg.threshold {
                // Small enough to hold: read it all, so checksum mode can record its hash.
                let mut chunks = Vec::new();
                let mut hasher =
                    (cfg.compare == Compare::Checksum && facts.sha256.is_none()).then(Sha256::new);
                let mut total = 0u64;
                while let Some(chunk) = read_chunk(&mut reader, src, key, cancel).await? {
                    total += chunk.len() as u64;
                    progress
                        .bytes
                        .fetch_add(chunk.len() as u64, Ordering::Relaxed);
                    if let Some(h) = hasher.as_mut() {
                        h.update(&chunk);
                    }
                    chunks.push(chunk);
                }
                check_size(src, key, facts.size, total)?;
                let sha = facts
                    .sha256
                    .clone()
                    .or_else(|| hasher.map(|h| hex::encode(h.finalize())));
                if let Some(sha) = sha {
                    attributes.insert(
                        Attribute::Metadata(META_SHA256.into()),
                        AttributeValue::from(sha),
                    );
                }
                let payload: PutPayload = chunks.into_iter().collect();
                let opts = PutOptions {
                    attributes,
                    ..Default::default()
                };
                tokio::select! {
                    r2 = r.store.put_opts(&path, payload, opts) => r2.map_err(|e| r.error(&e, &doing))?,
                    _ = cancel.cancelled() => return Err(StepError::cancelled()),
                };
                Ok(total)
            } else {
                if let Some(sha) = &facts.sha256 {
                    attributes.insert(
                        Attribute::Metadata(META_SHA256.into()),
                        AttributeValue::from(sha.clone()),
                    );
                }
                let opts = PutMultipartOptions {
                    attributes,
                    ..Default::default()
                };
                let upload = tokio::select! {
                    u = r.store.put_multipart_opts(&path, opts) => u.map_err(|e| r.error(&e, &doing))?,
                    _ = cancel.cancelled() => return Err(StepError::cancelled()),
                };
                let mut writer = WriteMultipart::new_with_chunk_size(upload, cfg.part_size);
                let mut total = 0u64;
                let result: Result<(), StepError> = async {
                    loop {
                        tokio::select! {
                            w = writer.wait_for_capacity(PART_CONCURRENCY) => w.map_err(|e| r.error(&e, &doing))?,
                            _ = cancel.cancelled() => return Err(StepError::cancelled()),
                        }
                        let Some(chunk) = read_chunk(&mut reader, src, key, cancel).await? else { break };
                        total += chunk.len() as u64;
                        progress.bytes.fetch_add(chunk.len() as u64, Ordering::Relaxed);
                        writer.put(chunk);
                    }
                    check_size(src, key, facts.size, total)
                }
                .await;
                if let Err(e) = result {
                    // Best effort: a pending upload only costs storage until it is aborted.
                    let _ = writer.abort().await;
                    return Err(e);
                }
                tokio::select! {
                    f = writer.finish() => f.map_err(|e| r.error(&e, &doing))?,
                    _ = cancel.cancelled() => return Err(StepError::cancelled()),
                };
                Ok(total)
            }
        }
    }
}

fn check_size(src: &Side, key: &str, expected: u64, got: u64) -> Result<(), StepError> {
    if expected == got {
        return Ok(());
    }
    let place = match src {
        Side::Local(root) => local_path(root, key)
            .map(|p| p.display().to_string())
            .unwrap_or_else(|_| key.to_string()),
        Side::Remote(r) => r.url(key),
    };
    Err(StepError::new(format!(
        "{place} changed while it was copied ({expected} bytes expected, {got} read)"
    )))
}

async fn read_chunk(
    reader: &mut Reader,
    src: &Side,
    key: &str,
    cancel: &CancellationToken,
) -> Result<Option<Bytes>, StepError> {
    if cancel.is_cancelled() {
        return Err(StepError::cancelled());
    }
    match reader {
        Reader::File(file, path) => {
            let mut buf = vec![0u8; CHUNK];
            let n = file
                .read(&mut buf)
                .await
                .map_err(|e| StepError::new(format!("cannot read {}: {e}", path.display())))?;
            if n == 0 {
                return Ok(None);
            }
            buf.truncate(n);
            Ok(Some(Bytes::from(buf)))
        }
        Reader::Stream(stream) => {
            let chunk = tokio::select! {
                c = stream.next() => c,
                _ = cancel.cancelled() => return Err(StepError::cancelled()),
            };
            match chunk {
                None => Ok(None),
                Some(Ok(b)) => Ok(Some(b)),
                Some(Err(e)) => Err(match src {
                    Side::Remote(r) => r.error(&e, &format!("reading `{key}`")),
                    Side::Local(_) => StepError::new(e.to_string()),
                }),
            }
        }
    }
}

/// Removes a temporary file unless the rename consumed it.
struct TempFile(Option<PathBuf>);
impl Drop for TempFile {
    fn drop(&mut self) {
        if let Some(p) = self.0.take() {
            let _ = std::fs::remove_file(p);
        }
    }
}

/// Writes to `.<name>.opsplan-tmp`, sets the source's mtime, then renames into place.
async fn write_local(
    root: &std::path::Path,
    key: &str,
    facts: &SourceFacts,
    reader: &mut Reader,
    src: &Side,
    progress: &Progress,
    cancel: &CancellationToken,
) -> Result<u64, StepError> {
    let target = local_path(root, key)?;
    let dir = target.parent().unwrap_or(root).to_path_buf();
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    tokio::fs::create_dir_all(&dir)
        .await
        .map_err(|e| StepError::new(format!("cannot create {}: {e}", dir.display())))?;
    let tmp_path = dir.join(format!(".{name}{TMP_SUFFIX}"));
    let tmp = TempFile(Some(tmp_path.clone()));
    let mut file = tokio::fs::File::create(&tmp_path)
        .await
        .map_err(|e| StepError::new(format!("cannot create {}: {e}", tmp_path.display())))?;
    let mut total = 0u64;
    while let Some(chunk) = read_chunk(reader, src, key, cancel).await? {
        if cancel.is_cancelled() {
            return Err(StepError::cancelled());
        }
        file.write_all(&chunk)
            .await
            .map_err(|e| StepError::new(format!("cannot write {}: {e}", tmp_path.display())))?;
        total += chunk.len() as u64;
        progress
            .bytes
            .fetch_add(chunk.len() as u64, Ordering::Relaxed);
    }
    file.flush()
        .await
        .map_err(|e| StepError::new(format!("cannot write {}: {e}", tmp_path.display())))?;
    drop(file);
    if total != facts.size {
        return Err(StepError::new(format!(
            "{key}: the source sent {total} bytes, {} expected; {} was not written",
            facts.size,
            target.display()
        )));
    }
    let mtime = filetime::FileTime::from_unix_time(
        facts.mtime.div_euclid(1_000_000_000),
        facts.mtime.rem_euclid(1_000_000_000) as u32,
    );
    filetime::set_file_mtime(&tmp_path, mtime).map_err(|e| {
        StepError::new(format!(
            "cannot set the mtime of {}: {e}",
            tmp_path.display()
        ))
    })?;
    tokio::fs::rename(&tmp_path, &target).await.map_err(|e| {
        StepError::new(format!(
            "cannot rename {} to {}: {e}",
            tmp_path.display(),
            target.display()
        ))
    })?;
    let mut tmp = tmp;
    tmp.0 = None;
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marked_folders() {
        let marked: BTreeSet<String> = ["blk1".to_string()].into();
        assert!(under_marked("blk1/chunks/000001", &marked));
        assert!(under_marked("blk1/meta.json", &marked));
        assert!(!under_marked("blk10/meta.json", &marked));
        assert!(!under_marked("top.json", &marked));
    }
}
