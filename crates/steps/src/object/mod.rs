//! Object storage: `object.sync` between S3-compatible storage, Azure Blob, GCS and local
//! folders, and `object.stat` (objects and bytes under a location), on the `object_store` crate.
//!
//! # Design note: what "unchanged" means
//!
//! A sync lists both sides, then decides per key (the path relative to the source and
//! destination prefixes). An object whose key is missing at the destination, or whose size
//! differs, is always copied. When the sizes are equal:
//!
//! * `compare: size_mtime` (default): the object is skipped when the source's modification
//!   time equals the destination's *recorded source* modification time (within 1 ms, so
//!   stores that round are not re-sent forever). S3, Azure and GCS set their own
//!   Last-Modified at upload, so the source's time travels as user metadata:
//!   - a local source's time is the file's mtime; a remote source's time is its `mtime`
//!     metadata when present (it was written by opsplan or rclone), else its Last-Modified;
//!   - a remote destination's recorded time is its `mtime` metadata (read with one HEAD per
//!     same-size object); an object without it counts as changed and is sent again;
//!   - a local destination's recorded time is the file's mtime, which the sync sets to the
//!     source's time after writing.
//! * `compare: checksum`: the object is skipped when the SHA-256 of both sides is equal. A
//!   remote side's SHA-256 is its `sha256` metadata when present; otherwise, and for local
//!   files, it is computed by reading the content (so checksum mode reads every same-size
//!   object in full, on both sides).
//!
//! Metadata keys (user metadata: `x-amz-meta-*`, `x-ms-meta-*`, `x-goog-meta-*`):
//!
//! | key | value | written |
//! |---|---|---|
//! | `mtime` | the source's modification time as Unix seconds with a fraction, `1700000000.123456789` (rclone's format, so both tools understand each other) | on every upload |
//! | `sha256` | lowercase hex SHA-256 of the content | when it is known before the upload starts: checksum mode with a local source or a single-request upload, or carried over from a source object that has it |
//!
//! The keys are single lowercase words because Azure metadata names must be identifiers
//! and some proxies drop header names with `_`.
//!
//! # Crash safety
//!
//! Object stores publish an object only when its upload (single or multipart) completes, so
//! an interrupted sync never leaves a truncated object; local files are written to
//! `.<name>.opsplan-tmp` next to the target and renamed when complete, with the mtime set
//! before the rename. A rerun therefore finds every finished object unchanged and sends only
//! the rest. A killed multipart upload stays pending on the server until its lifecycle rule
//! removes it (a cancelled one is aborted).

pub mod stat;
pub mod sync;

use super::StepError;
use futures::StreamExt;
use object_store::path::Path as ObjPath;
use object_store::{
    Attribute, Attributes, BackoffConfig, ClientOptions, GetOptions, ObjectStore, ObjectStoreExt,
    RetryConfig,
};
use schemars::JsonSchema;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::io::AsyncReadExt;
use tokio_util::sync::CancellationToken;

/// User metadata key holding the source's modification time.
pub const META_MTIME: &str = "mtime";
/// User metadata key holding the content's SHA-256 (hex).
pub const META_SHA256: &str = "sha256";
/// Suffix of the temporary name a local file is written under before its rename.
pub const TMP_SUFFIX: &str = ".opsplan-tmp";

/// How to reach one side of a transfer. Every field is optional: the standard environment
/// variables (`AWS_*`, `AZURE_*`, `GOOGLE_*`) fill what is not given here.
#[derive(Debug, Default, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Connection {
    /// Service URL for S3-compatible storage (Ceph, MinIO, garage), Azurite or a GCS
    /// emulator, e.g. `https://s3.example.com`. Without it, the public cloud endpoint is used.
    #[serde(default)]
    pub endpoint: Option<String>,
    /// S3 region (default `AWS_REGION` or `us-east-1`); many S3-compatible stores ignore it.
    #[serde(default)]
    pub region: Option<String>,
    /// S3 addressing: `path` puts the bucket in the URL path (what most S3-compatible stores
    /// expect, the default), `virtual` in the host name (`bucket.endpoint-host`).
    #[serde(default)]
    pub addressing: Option<Addressing>,
    /// Allow plain `http://` endpoints (refused by default so credentials are not sent in
    /// clear by accident).
    #[serde(default)]
    pub allow_http: Option<bool>,
    /// S3 access key id (default `AWS_ACCESS_KEY_ID`).
    #[serde(default)]
    pub access_key_id: Option<String>,
    /// S3 secret access key (default `AWS_SECRET_ACCESS_KEY`); use a secret param.
    #[serde(default)]
    pub secret_access_key: Option<String>,
    /// S3 session token for temporary credentials (default `AWS_SESSION_TOKEN`).
    #[serde(default)]
    pub session_token: Option<String>,
    /// Azure storage account name (default `AZURE_STORAGE_ACCOUNT_NAME`).
    #[serde(default)]
    pub account: Option<String>,
    /// Azure storage account key (default `AZURE_STORAGE_ACCOUNT_KEY`); use a secret param.
    #[serde(default)]
    pub access_key: Option<String>,
    /// GCS service account key as JSON text (default `GOOGLE_SERVICE_ACCOUNT_KEY`); use a
    /// secret param.
    #[serde(default)]
    pub service_account_key: Option<String>,
    /// Send unsigned requests (public buckets).
    #[serde(default)]
    pub anonymous: bool,
    /// Retries of one failed request inside the client (default 3). Kept small so a dead
    /// endpoint fails in seconds; use the step's `retry:` for longer patience.
    #[serde(default)]
    pub retries: Option<usize>,
    /// Time allowed to open a connection (default `5s`).
    #[serde(default)]
    pub connect_timeout: Option<String>,
    /// Longest silence while reading a response before the request fails (default `60s`).
    /// There is no total request timeout, so large objects may take as long as they need.
    #[serde(default)]
    pub read_timeout: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Addressing {
    Path,
    Virtual,
}

/// Which cloud service a URL names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    S3,
    Azure,
    Gcs,
}

impl Kind {
    fn scheme(self) -> &'static str {
        match self {
            Kind::S3 => "s3",
            Kind::Azure => "az",
            Kind::Gcs => "gs",
        }
    }
    fn service(self) -> &'static str {
        match self {
            Kind::S3 => "S3",
            Kind::Azure => "Azure Blob",
            Kind::Gcs => "GCS",
        }
    }
    /// What the service calls the top-level namespace.
    fn bucket_word(self) -> &'static str {
        match self {
            Kind::Azure => "container",
            _ => "bucket",
        }
    }
}

/// A source or destination as written in the plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    Local(PathBuf),
    Remote {
        kind: Kind,
        bucket: String,
        /// Without leading or trailing `/`; empty for the whole bucket.
        prefix: String,
    },
}

impl Location {
    /// `s3://bucket/prefix`, `az://container/prefix`, `gs://bucket/prefix`, `file:///path` or
    /// a plain local path.
    pub fn parse(text: &str) -> Result<Location, String> {
        let text = text.trim();
        if text.is_empty() {
            return Err("the location is empty".into());
        }
        let Some((scheme, rest)) = text.split_once("://") else {
            return Ok(Location::Local(PathBuf::from(text)));
        };
        let kind = match scheme.to_ascii_lowercase().as_str() {
            "s3" | "s3a" => Kind::S3,
            "az" | "azure" | "abfs" => Kind::Azure,
            "gs" | "gcs" => Kind::Gcs,
            "file" => {
                if rest.is_empty() {
                    return Err("`file://` names no path".into());
                }
                return Ok(Location::Local(PathBuf::from(rest)));
            }
            other => {
                return Err(format!(
                    "scheme `{other}://` is not supported (use s3://, az://, gs:// or a local path)"
                ))
            }
        };
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            return Err(format!("`{text}` names no {}", kind.bucket_word()));
        }
        let prefix = prefix.trim_matches('/').to_string();
        if prefix.split('/').any(|p| p == "." || p == "..") {
            return Err(format!(
                "`{text}`: `.` and `..` are not allowed in a prefix"
            ));
        }
        if prefix.contains("//") {
            return Err(format!("`{text}`: the prefix has an empty segment (`//`)"));
        }
        Ok(Location::Remote {
            kind,
            bucket: bucket.to_string(),
            prefix,
        })
    }

    pub fn is_local(&self) -> bool {
        matches!(self, Location::Local(_))
    }
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Location::Local(p) => write!(f, "{}", p.display()),
            Location::Remote {
                kind,
                bucket,
                prefix,
            } if prefix.is_empty() => write!(f, "{}://{bucket}/", kind.scheme()),
            Location::Remote {
                kind,
                bucket,
                prefix,
            } => write!(f, "{}://{bucket}/{prefix}/", kind.scheme()),
        }
    }
}

/// Parses `64MiB`, `5MB`, `512KiB`, `1048576`.
pub fn parse_size(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let split = t
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let number: f64 = number
        .parse()
        .map_err(|_| format!("`{text}` is not a size"))?;
    let factor: f64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "k" | "kb" => 1e3,
        "kib" => 1024.0,
        "m" | "mb" => 1e6,
        "mib" => 1024.0 * 1024.0,
        "g" | "gb" => 1e9,
        "gib" => 1024.0 * 1024.0 * 1024.0,
        _ => {
            return Err(format!(
                "`{text}` has an unknown unit (use B, KiB, MiB, GiB, KB, MB or GB)"
            ))
        }
    };
    Ok((number * factor).round() as u64)
}

/// A step's error with every secret the run knows masked (an endpoint URL or a provider's
/// message may echo a credential).
pub(crate) fn redacted(e: StepError, redact: &opsplan_plan::template::Redactor) -> StepError {
    StepError {
        message: redact.redact(&e.message).into_owned(),
        retryable: e.retryable,
        outputs: None,
        answer: None,
    }
}

/// The diagnostic for a location field that does not parse, or for its connection options
/// (`options_field`) set where they cannot apply; nothing for a template.
pub(crate) fn check_location(
    with: &opsplan_plan::source::Node,
    field: &str,
    text: &str,
    options_field: &str,
) -> Option<opsplan_plan::diagnostic::Diagnostic> {
    use opsplan_plan::diagnostic::{Code, Diagnostic};
    if opsplan_plan::source::de::is_template(text) {
        return None;
    }
    match Location::parse(text) {
        Err(problem) => Some(
            Diagnostic::new(Code::StepArgs, format!("`{field}` `{text}`: {problem}"))
                .label(
                    with.get(field).map_or(with.span, |n| n.span),
                    "not a storage location",
                )
                .help("write `s3://bucket/prefix`, `az://container/prefix`, `gs://bucket/prefix` or a local folder"),
        ),
        Ok(loc) => sync::check_options(&loc, with.get(options_field), options_field),
    }
}

/// `1.5 MiB` for logs.
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// Nanoseconds since the Unix epoch.
pub type Nanos = i64;

/// `1700000000.123456789`, rclone's `mtime` metadata format.
pub fn format_mtime(t: Nanos) -> String {
    let secs = t.div_euclid(1_000_000_000);
    let nanos = t.rem_euclid(1_000_000_000);
    format!("{secs}.{nanos:09}")
}

/// Reads `format_mtime` output and rclone's shorter fractions; RFC 3339 is not accepted.
pub fn parse_mtime(text: &str) -> Option<Nanos> {
    let t = text.trim();
    let (secs, frac) = t.split_once('.').unwrap_or((t, ""));
    let secs: i64 = secs.parse().ok()?;
    if !frac.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let mut digits: String = frac.chars().take(9).collect();
    while digits.len() < 9 {
        digits.push('0');
    }
    let nanos: i64 = digits.parse().ok()?;
    secs.checked_mul(1_000_000_000)?.checked_add(nanos)
}

pub(crate) fn system_time_nanos(t: SystemTime) -> Nanos {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_nanos().min(i64::MAX as u128) as i64,
        Err(e) => -(e.duration().as_nanos().min(i64::MAX as u128) as i64),
    }
}

/// One object found by a listing.
#[derive(Debug, Clone)]
pub struct Entry {
    pub size: u64,
    /// Local: the file's mtime. Remote: Last-Modified (the upload time).
    pub modified: Nanos,
}

/// What a HEAD (remote) or stat (local) tells about one object beyond the listing.
#[derive(Debug, Clone, Default)]
pub struct Stored {
    /// The recorded source modification time (remote: `mtime` metadata; local: file mtime).
    pub mtime: Option<Nanos>,
    /// The `sha256` metadata (remote only).
    pub sha256: Option<String>,
}

/// A remote side opened for the sync.
pub struct Remote {
    pub store: Arc<dyn ObjectStore>,
    pub kind: Kind,
    pub bucket: String,
    pub prefix: String,
    /// The service URL, for messages.
    pub endpoint: String,
}

/// One side of a sync, ready to use.
pub enum Side {
    Local(PathBuf),
    Remote(Remote),
}

fn duration_option(
    value: &Option<String>,
    default: Duration,
    field: &str,
) -> Result<Duration, StepError> {
    match value {
        None => Ok(default),
        Some(text) => humantime::parse_duration(text.trim())
            .map_err(|e| StepError::fatal(format!("bad duration `{text}` in `{field}`: {e}"))),
    }
}

fn client_setup(conn: &Connection) -> Result<(ClientOptions, RetryConfig), StepError> {
    let connect = duration_option(
        &conn.connect_timeout,
        Duration::from_secs(5),
        "connect_timeout",
    )?;
    let read = duration_option(&conn.read_timeout, Duration::from_secs(60), "read_timeout")?;
    let mut options = ClientOptions::new()
        .with_timeout_disabled()
        .with_connect_timeout(connect)
        .with_read_timeout(read);
    if let Some(allow) = conn.allow_http {
        options = options.with_allow_http(allow);
    }
    let retry = RetryConfig {
        backoff: BackoffConfig {
            init_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(2),
            base: 2.0,
        },
        max_retries: conn.retries.unwrap_or(3),
        retry_timeout: Duration::from_secs(30),
    };
    Ok((options, retry))
}

/// `https://bucket.host` from `https://host` for virtual-hosted S3 addressing.
fn virtual_host(endpoint: &str, bucket: &str) -> Result<String, StepError> {
    let mut url = reqwest::Url::parse(endpoint)
        .map_err(|e| StepError::fatal(format!("endpoint `{endpoint}` is not a URL: {e}")))?;
    let host = url
        .host_str()
        .ok_or_else(|| StepError::fatal(format!("endpoint `{endpoint}` has no host")))?
        .to_string();
    url.set_host(Some(&format!("{bucket}.{host}")))
        .map_err(|e| StepError::fatal(format!("endpoint `{endpoint}`: {e}")))?;
    Ok(url.as_str().trim_end_matches('/').to_string())
}

impl Side {
    pub fn open(location: &Location, conn: &Connection) -> Result<Side, StepError> {
        let (kind, bucket, prefix) = match location {
            Location::Local(path) => return Ok(Side::Local(path.clone())),
            Location::Remote {
                kind,
                bucket,
                prefix,
            } => (*kind, bucket.clone(), prefix.clone()),
        };
        let (options, retry) = client_setup(conn)?;
        let built: Result<(Arc<dyn ObjectStore>, String), object_store::Error> = match kind {
            Kind::S3 => {
                use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
                let mut b = AmazonS3Builder::from_env()
                    .with_bucket_name(&bucket)
                    .with_client_options(options)
                    .with_retry(retry);
                if let Some(region) = &conn.region {
                    b = b.with_region(region);
                }
                let virtual_hosted = conn.addressing == Some(Addressing::Virtual);
                if let Some(endpoint) = &conn.endpoint {
                    let endpoint = endpoint.trim_end_matches('/');
                    if virtual_hosted {
                        b = b.with_endpoint(virtual_host(endpoint, &bucket)?);
                    } else {
                        b = b.with_endpoint(endpoint);
                    }
                }
                b = b.with_virtual_hosted_style_request(virtual_hosted);
                if let Some(allow) = conn.allow_http {
                    b = b.with_allow_http(allow);
                }
                if let Some(id) = &conn.access_key_id {
                    b = b.with_access_key_id(id);
                }
                if let Some(key) = &conn.secret_access_key {
                    b = b.with_secret_access_key(key);
                }
                if let Some(token) = &conn.session_token {
                    b = b.with_token(token);
                }
                if conn.anonymous {
                    b = b.with_skip_signature(true);
                }
                let region = b
                    .get_config_value(&AmazonS3ConfigKey::Region)
                    .unwrap_or_else(|| "us-east-1".into());
                let endpoint = match (
                    &conn.endpoint,
                    b.get_config_value(&AmazonS3ConfigKey::Endpoint),
                ) {
                    (Some(e), _) => e.trim_end_matches('/').to_string(),
                    (None, Some(e)) => e.trim_end_matches('/').to_string(),
                    (None, None) => format!("https://s3.{region}.amazonaws.com"),
                };
                b.build()
                    .map(|s| (Arc::new(s) as Arc<dyn ObjectStore>, endpoint))
            }
            Kind::Azure => {
                use object_store::azure::{AzureConfigKey, MicrosoftAzureBuilder};
                let mut b = MicrosoftAzureBuilder::from_env()
                    .with_container_name(&bucket)
                    .with_client_options(options)
                    .with_retry(retry);
                if let Some(account) = &conn.account {
                    b = b.with_account(account);
                }
                if let Some(key) = &conn.access_key {
                    b = b.with_access_key(key);
                }
                if let Some(endpoint) = &conn.endpoint {
                    b = b.with_endpoint(endpoint.trim_end_matches('/').to_string());
                }
                if let Some(allow) = conn.allow_http {
                    b = b.with_allow_http(allow);
                }
                if conn.anonymous {
                    b = b.with_skip_signature(true);
                }
                let account = b
                    .get_config_value(&AzureConfigKey::AccountName)
                    .unwrap_or_default();
                let endpoint = conn
                    .endpoint
                    .clone()
                    .unwrap_or_else(|| format!("https://{account}.blob.core.windows.net"));
                b.build()
                    .map(|s| (Arc::new(s) as Arc<dyn ObjectStore>, endpoint))
            }
            Kind::Gcs => {
                use object_store::gcp::GoogleCloudStorageBuilder;
                let mut b = GoogleCloudStorageBuilder::from_env()
                    .with_bucket_name(&bucket)
                    .with_client_options(options)
                    .with_retry(retry);
                if let Some(key) = &conn.service_account_key {
                    b = b.with_service_account_key(key);
                }
                if let Some(endpoint) = &conn.endpoint {
                    b = b.with_base_url(endpoint.trim_end_matches('/'));
                }
                if conn.anonymous {
                    b = b.with_skip_signature(true);
                }
                let endpoint = conn
                    .endpoint
                    .clone()
                    .unwrap_or_else(|| "https://storage.googleapis.com".into());
                b.build()
                    .map(|s| (Arc::new(s) as Arc<dyn ObjectStore>, endpoint))
            }
        };
        let url = location.to_string();
        let (store, endpoint) = built.map_err(|e| {
            StepError::fatal(format!(
                "cannot set up the connection for {url}: {}",
                innermost(&e)
            ))
        })?;
        Ok(Side::Remote(Remote {
            store,
            kind,
            bucket,
            prefix,
            endpoint,
        }))
    }

    /// For messages: the folder, or `s3://bucket/prefix/ at endpoint`.
    pub fn describe(&self) -> String {
        match self {
            Side::Local(p) => p.display().to_string(),
            Side::Remote(r) => format!("{} at {}", r.url(""), r.endpoint),
        }
    }

    /// Every object under the side's root, by key relative to it.
    pub async fn list(&self) -> Result<BTreeMap<String, Entry>, StepError> {
        match self {
            Side::Local(root) => {
                let root = root.clone();
                tokio::task::spawn_blocking(move || list_local(&root))
                    .await
                    .map_err(|e| StepError::new(format!("listing stopped: {e}")))?
            }
            Side::Remote(r) => r.list().await,
        }
    }

    /// The recorded source mtime (and hash) of a destination object, or the metadata of a
    /// remote source object.
    pub async fn stored(&self, key: &str) -> Result<Stored, StepError> {
        match self {
            Side::Local(root) => {
                let path = local_path(root, key)?;
                let meta = tokio::fs::metadata(&path)
                    .await
                    .map_err(|e| StepError::new(format!("cannot stat {}: {e}", path.display())))?;
                Ok(Stored {
                    mtime: meta.modified().ok().map(system_time_nanos),
                    sha256: None,
                })
            }
            Side::Remote(r) => {
                let path = r.path(key)?;
                let opts = GetOptions::new().with_head(true);
                let got = r
                    .store
                    .get_opts(&path, opts)
                    .await
                    .map_err(|e| r.error(&e, &format!("reading the metadata of `{key}`")))?;
                Ok(stored_from(&got.attributes))
            }
        }
    }

    /// SHA-256 of the content, read in full.
    pub async fn hash(&self, key: &str, cancel: &CancellationToken) -> Result<String, StepError> {
        let mut hasher = Sha256::new();
        match self {
            Side::Local(root) => {
                let path = local_path(root, key)?;
                let mut file = tokio::fs::File::open(&path)
                    .await
                    .map_err(|e| StepError::new(format!("cannot open {}: {e}", path.display())))?;
                let mut buf = vec![0u8; 256 * 1024];
                loop {
                    if cancel.is_cancelled() {
                        return Err(StepError::cancelled());
                    }
                    let n = file.read(&mut buf).await.map_err(|e| {
                        StepError::new(format!("cannot read {}: {e}", path.display()))
                    })?;
                    if n == 0 {
                        break;
                    }
                    hasher.update(&buf[..n]);
                }
            }
            Side::Remote(r) => {
                let path = r.path(key)?;
                let got = r
                    .store
                    .get(&path)
                    .await
                    .map_err(|e| r.error(&e, &format!("reading `{key}`")))?;
                let mut stream = got.into_stream();
                loop {
                    let chunk = tokio::select! {
                        c = stream.next() => c,
                        _ = cancel.cancelled() => return Err(StepError::cancelled()),
                    };
                    match chunk {
                        None => break,
                        Some(Ok(bytes)) => hasher.update(&bytes),
                        Some(Err(e)) => return Err(r.error(&e, &format!("reading `{key}`"))),
                    }
                }
            }
        }
        Ok(hex::encode(hasher.finalize()))
    }

    pub async fn delete(&self, key: &str) -> Result<(), StepError> {
        match self {
            Side::Local(root) => {
                let path = local_path(root, key)?;
                tokio::fs::remove_file(&path).await.map_err(|e| {
                    StepError::new(format!("cannot delete {}: {e}", path.display()))
                })?;
                remove_empty_parents(root, &path).await;
                Ok(())
            }
            Side::Remote(r) => {
                let path = r.path(key)?;
                r.store
                    .delete(&path)
                    .await
                    .map_err(|e| r.error(&e, &format!("deleting `{key}`")))
            }
        }
    }
}

/// Folders a delete emptied go too, as a sync from a store (which has no folders) implies.
async fn remove_empty_parents(root: &Path, file: &Path) {
    let mut dir = file.parent();
    while let Some(d) = dir {
        if d == root || !d.starts_with(root) {
            break;
        }
        if tokio::fs::remove_dir(d).await.is_err() {
            break;
        }
        dir = d.parent();
    }
}

pub fn stored_from(attributes: &Attributes) -> Stored {
    let mut stored = Stored::default();
    for (attr, value) in attributes {
        if let Attribute::Metadata(name) = attr {
            if name.eq_ignore_ascii_case(META_MTIME) {
                stored.mtime = parse_mtime(value);
            } else if name.eq_ignore_ascii_case(META_SHA256) {
                let v = value.trim().to_ascii_lowercase();
                if v.len() == 64 && v.chars().all(|c| c.is_ascii_hexdigit()) {
                    stored.sha256 = Some(v);
                }
            }
        }
    }
    stored
}

/// The file a key maps to under a local root; keys that would leave the root are refused.
pub fn local_path(root: &Path, key: &str) -> Result<PathBuf, StepError> {
    let mut path = root.to_path_buf();
    for part in key.split('/') {
        if part.is_empty() || part == "." || part == ".." {
            return Err(StepError::fatal(format!(
                "key `{key}` cannot be a local file name (empty, `.` or `..` segment)"
            )));
        }
        path.push(part);
    }
    Ok(path)
}

/// Regular files under `root`; symbolic links and our own temporary files are left out.
fn list_local(root: &Path) -> Result<BTreeMap<String, Entry>, StepError> {
    let mut out = BTreeMap::new();
    match std::fs::metadata(root) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => {
            return Err(StepError::fatal(format!(
                "{} is not a folder",
                root.display()
            )))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(e) => {
            return Err(StepError::new(format!(
                "cannot read {}: {e}",
                root.display()
            )))
        }
    }
    for item in walkdir::WalkDir::new(root).follow_links(false) {
        let item = item.map_err(|e| StepError::new(format!("listing {}: {e}", root.display())))?;
        if !item.file_type().is_file() {
            continue;
        }
        let name = item.file_name().to_string_lossy();
        if name.starts_with('.') && name.ends_with(TMP_SUFFIX) {
            continue;
        }
        let rel = item.path().strip_prefix(root).unwrap_or(item.path());
        let mut parts = Vec::new();
        for c in rel.components() {
            match c.as_os_str().to_str() {
                Some(s) => parts.push(s),
                None => {
                    return Err(StepError::fatal(format!(
                        "{} has a name that is not UTF-8; object keys must be UTF-8",
                        item.path().display()
                    )))
                }
            }
        }
        let meta = item
            .metadata()
            .map_err(|e| StepError::new(format!("cannot stat {}: {e}", item.path().display())))?;
        out.insert(
            parts.join("/"),
            Entry {
                size: meta.len(),
                modified: meta.modified().map(system_time_nanos).unwrap_or(0),
            },
        );
    }
    Ok(out)
}

impl Remote {
    /// `s3://bucket/prefix/key`.
    pub fn url(&self, key: &str) -> String {
        let mut s = format!("{}://{}/", self.kind.scheme(), self.bucket);
        if !self.prefix.is_empty() {
            s.push_str(&self.prefix);
            s.push('/');
        }
        s.push_str(key);
        s
    }

    pub fn path(&self, key: &str) -> Result<ObjPath, StepError> {
        let full = if self.prefix.is_empty() {
            key.to_string()
        } else {
            format!("{}/{key}", self.prefix)
        };
        ObjPath::parse(&full)
            .map_err(|e| StepError::fatal(format!("`{full}` is not a valid object key: {e}")))
    }

    async fn list(&self) -> Result<BTreeMap<String, Entry>, StepError> {
        let prefix = if self.prefix.is_empty() {
            None
        } else {
            Some(self.path("")?)
        };
        let strip = if self.prefix.is_empty() {
            String::new()
        } else {
            format!("{}/", self.prefix)
        };
        let mut stream = self.store.list(prefix.as_ref());
        let mut out = BTreeMap::new();
        while let Some(item) = stream.next().await {
            let meta = item.map_err(|e| self.error(&e, "listing"))?;
            let full = meta.location.as_ref();
            let Some(key) = full.strip_prefix(&strip) else {
                continue;
            };
            if key.is_empty() || key.ends_with('/') {
                continue;
            }
            out.insert(
                key.to_string(),
                Entry {
                    size: meta.size,
                    modified: meta.last_modified.timestamp_nanos_opt().unwrap_or(0),
                },
            );
        }
        Ok(out)
    }

    /// `host:port` of the endpoint, for "cannot reach" messages.
    fn host_port(&self) -> String {
        match reqwest::Url::parse(&self.endpoint) {
            Ok(u) => match (u.host_str(), u.port_or_known_default()) {
                (Some(h), Some(p)) => format!("{h}:{p}"),
                (Some(h), None) => h.to_string(),
                _ => self.endpoint.clone(),
            },
            Err(_) => self.endpoint.clone(),
        }
    }

    /// One sentence for a failed call: the cause class, the bucket and the endpoint.
    pub fn error(&self, e: &object_store::Error, doing: &str) -> StepError {
        classify(e, self, doing)
    }
}

/// The innermost message of an error chain (object_store wraps the useful part deep down).
pub fn innermost(e: &(dyn std::error::Error + 'static)) -> String {
    let mut last = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !text.trim().is_empty() {
            last = text;
        }
        source = s.source();
    }
    last
}

fn chain_text(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(" | ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// Text between `<Code>` and `</Code>` of an S3/Azure XML error body.
fn xml_code(text: &str) -> Option<String> {
    let start = text.find("<Code>")? + "<Code>".len();
    let end = text[start..].find("</Code>")? + start;
    Some(text[start..end].to_string())
}

/// The HTTP status object_store reports (`... status code: 404 Not Found ...`).
fn http_status(text: &str) -> Option<u16> {
    let at = text.find("status code: ")? + "status code: ".len();
    text.get(at..at + 3)?.parse().ok()
}

fn classify(e: &object_store::Error, r: &Remote, doing: &str) -> StepError {
    let text = chain_text(e);
    let lower = text.to_ascii_lowercase();
    let word = r.kind.bucket_word();
    let place = format!("{word} `{}` at {}", r.bucket, r.endpoint);
    let code = xml_code(&text);
    let status = http_status(&text);
    let bad_credentials =
        |why: &str| StepError::fatal(format!("bad credentials for {place}: {why}"));
    match code.as_deref() {
        Some("InvalidAccessKeyId") => {
            return bad_credentials(
                "the server does not know the access key id (InvalidAccessKeyId)",
            )
        }
        Some("SignatureDoesNotMatch") => {
            return bad_credentials(
                "the secret access key does not match the access key id (SignatureDoesNotMatch)",
            )
        }
        Some(
            c @ ("AuthenticationFailed" | "InvalidToken" | "ExpiredToken"
            | "InvalidAuthenticationInfo" | "NoAuthenticationInformation"),
        ) => return bad_credentials(&format!("the server refused them ({c})")),
        Some("NoSuchBucket" | "ContainerNotFound") => {
            return StepError::fatal(format!("{word} `{}` does not exist at {}", r.bucket, r.endpoint))
        }
        Some("EntityTooSmall") => {
            return StepError::fatal(format!(
                "{} refused the multipart upload while {doing} (EntityTooSmall): a part is smaller than the server's minimum; raise `part_size` (S3 needs at least 5MiB)",
                r.endpoint
            ))
        }
        _ => {}
    }
    let denied = matches!(
        e,
        object_store::Error::PermissionDenied { .. } | object_store::Error::Unauthenticated { .. }
    );
    if denied || matches!(status, Some(401 | 403)) {
        let why = code.unwrap_or_else(|| format!("{}", status.unwrap_or(403)));
        return StepError::fatal(format!(
            "access denied ({why}) to {place} while {doing}: check the credentials and the {word}'s permissions"
        ));
    }
    if let object_store::Error::NotFound { .. } = e {
        if doing == "listing" {
            return StepError::fatal(format!(
                "{} answered 404 Not Found for {word} `{}`: the {word} does not exist or the endpoint does not speak the {} API",
                r.endpoint,
                r.bucket,
                r.kind.service()
            ));
        }
        return StepError::new(format!(
            "not found while {doing} in {place} (it may have been deleted during the sync)"
        ));
    }
    if status == Some(404) {
        return StepError::fatal(format!(
            "{} answered 404 Not Found for {word} `{}` while {doing}: the {word} does not exist or the endpoint does not speak the {} API",
            r.endpoint,
            r.bucket,
            r.kind.service()
        ));
    }
    if status.is_none() {
        let cause = if lower.contains("connection refused") {
            Some("connection refused")
        } else if lower.contains("dns error") || lower.contains("failed to lookup") {
            Some("the host name does not resolve")
        } else if lower.contains("timed out") || lower.contains("timeout") {
            Some("timed out")
        } else if lower.contains("connection reset") {
            Some("connection reset")
        } else if lower.contains("error sending request") || lower.contains("connect") {
            Some("connection failed")
        } else {
            None
        };
        if let Some(cause) = cause {
            return StepError::new(format!(
                "cannot reach {} ({}) for {word} `{}` while {doing}: {cause}",
                r.endpoint,
                r.host_port(),
                r.bucket
            ));
        }
    }
    let detail = match (status, code) {
        (Some(s), Some(c)) => format!("HTTP {s} {c}"),
        (Some(s), None) => format!("HTTP {s}"),
        (None, Some(c)) => c,
        (None, None) => innermost(e),
    };
    let detail: String = detail.chars().take(500).collect();
    StepError::new(format!(
        "{} failed while {doing} in {place}: {detail}",
        r.url("")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations() {
        assert_eq!(
            Location::parse("s3://mimir/backups/2024/").unwrap(),
            Location::Remote {
                kind: Kind::S3,
                bucket: "mimir".into(),
                prefix: "backups/2024".into()
            }
        );
        assert_eq!(
            Location::parse("/backup/prod").unwrap(),
            Location::Local("/backup/prod".into())
        );
        assert!(Location::parse("ftp://x/y").unwrap_err().contains("ftp://"));
        assert!(Location::parse("s3:///x").is_err());
        assert_eq!(Location::parse("gs://b").unwrap().to_string(), "gs://b/");
    }

    #[test]
    fn sizes_and_times() {
        assert_eq!(parse_size("64MiB").unwrap(), 64 << 20);
        assert_eq!(parse_size("5 MB").unwrap(), 5_000_000);
        assert_eq!(parse_size("1048576").unwrap(), 1 << 20);
        assert!(parse_size("5 parsecs").is_err());
        let t = 1_700_000_000_123_456_789;
        assert_eq!(parse_mtime(&format_mtime(t)), Some(t));
        assert_eq!(parse_mtime("1700000000.5"), Some(1_700_000_000_500_000_000));
        assert_eq!(parse_mtime("1700000000"), Some(1_700_000_000_000_000_000));
        assert_eq!(parse_mtime("yesterday"), None);
    }
}
