//! `object.stat`: count the objects and bytes under a bucket or prefix (S3, Azure Blob, GCS)
//! or a local folder, in total and per top-level prefix, and give them as facts for a
//! backup's manifest or a restore's `facts.compare`. (dop: the backup records what each
//! bucket's copy holds; the bucket restores read the restored bucket the same way.)
//!
//! It lists with the same client and the same rules as `object.sync` ([`Side::list`]): a
//! remote listing counts every object under the prefix as the store lists it (a folder
//! marker, a zero-byte key ending in `/`, is listed by S3 and counted, as its name without
//! the `/`); a local listing counts regular files, not symbolic links and not `object.sync`'s
//! own temporary files. Nothing is read or written but the listing.

use super::{human_bytes, Connection, Location, Side};
use crate::{Action, OutputDecl, Outputs, StepContext, StepError, StepType};
use opsplan_plan::diagnostic::{Code, Diagnostic};
use opsplan_plan::source::de::is_template;
use opsplan_plan::source::Node;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Map, Value};
use std::collections::BTreeMap;

pub struct ObjectStat;

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StatSpec {
    /// What to count: `s3://bucket/prefix`, `az://container/prefix`, `gs://bucket/prefix` or a
    /// local folder (a missing folder counts as empty).
    pub location: String,
    /// How to reach the location when it is remote (endpoint, credentials, timeouts), as
    /// `object.sync`'s `source_options`.
    #[serde(default)]
    pub options: Connection,
    /// The name in the `facts` output, `objects:<name>` and `bytes:<name>` (default: the
    /// bucket's name, or the local folder's last component).
    #[serde(default)]
    pub name: Option<String>,
    /// Facts per top-level prefix instead, `objects:<prefix>` and `bytes:<prefix>` (a folder
    /// holding one copy per bucket); objects at the top, under no prefix, get no fact.
    #[serde(default)]
    pub by_prefix: bool,
}

/// Objects and bytes of one listing, in total and per top-level prefix.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Counts {
    pub objects: u64,
    pub bytes: u64,
    /// Top-level prefix (the key's first segment) -> (objects, bytes); objects at the top
    /// are only in the totals.
    pub prefixes: BTreeMap<String, (u64, u64)>,
}

impl Counts {
    pub fn add(&mut self, key: &str, size: u64) {
        self.objects += 1;
        self.bytes += size;
        if let Some((prefix, _)) = key.split_once('/') {
            let p = self.prefixes.entry(prefix.to_string()).or_default();
            p.0 += 1;
            p.1 += size;
        }
    }
}

/// The default fact name: the bucket, or the folder's last component.
fn default_name(location: &Location) -> String {
    match location {
        Location::Remote { bucket, prefix, .. } if prefix.is_empty() => bucket.clone(),
        Location::Remote { bucket, prefix, .. } => format!("{bucket}/{prefix}"),
        Location::Local(path) => path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| path.display().to_string()),
    }
}

/// The `facts` output: one pair for the location, or one per top-level prefix.
pub fn facts(counts: &Counts, name: &str, by_prefix: bool) -> Map<String, Value> {
    let mut out = Map::new();
    if by_prefix {
        for (prefix, (objects, bytes)) in &counts.prefixes {
            out.insert(format!("objects:{prefix}"), Value::from(*objects));
            out.insert(format!("bytes:{prefix}"), Value::from(*bytes));
        }
    } else {
        out.insert(format!("objects:{name}"), Value::from(counts.objects));
        out.insert(format!("bytes:{name}"), Value::from(counts.bytes));
    }
    out
}

impl StepType for ObjectStat {
    const NAME: &'static str = "object.stat";
    const SUMMARY: &'static str = "Count the objects and bytes of an S3, Azure Blob or GCS bucket or prefix, or a local folder, in total and per top-level prefix; as facts for a manifest or facts.compare.";
    type Spec = StatSpec;

    fn outputs() -> &'static [OutputDecl] {
        &[
            OutputDecl {
                name: "objects",
                description: "objects under the location",
            },
            OutputDecl {
                name: "bytes",
                description: "their total size in bytes",
            },
            OutputDecl {
                name: "prefixes",
                description: "per top-level prefix (a key's first segment): `{objects, bytes}`",
            },
            OutputDecl {
                name: "facts",
                description: "`objects:<name>` and `bytes:<name>` (or one pair per top-level prefix with `by_prefix`), for `manifest`'s `facts` or `facts.compare`'s `actual`",
            },
        ]
    }

    fn check(spec: &StatSpec, with: &Node) -> Vec<Diagnostic> {
        let mut diags = Vec::new();
        let at = |field: &str| with.get(field).map_or(with.span, |n| n.span);
        diags.extend(super::check_location(
            with,
            "location",
            &spec.location,
            "options",
        ));
        if let Some(name) = spec.name.as_deref() {
            if !is_template(name) && name.trim().is_empty() {
                diags.push(
                    Diagnostic::new(Code::StepArgs, "`name` is empty: the facts would be `objects:`")
                        .label(at("name"), "empty")
                        .help("name the bucket the facts are about, or leave `name` out for the location's own"),
                );
            }
            if spec.by_prefix {
                diags.push(
                    Diagnostic::new(
                        Code::StepArgs,
                        "`name` and `by_prefix` both name the facts",
                    )
                    .label(at("name"), "not used with `by_prefix`")
                    .help("with `by_prefix` each top-level prefix names its facts; remove `name` or `by_prefix`"),
                );
            }
        }
        if let Some(options) = with.get("options") {
            for field in ["connect_timeout", "read_timeout"] {
                if let Some(d) = opsplan_plan::fields::check_duration_field(options, field) {
                    diags.push(d);
                }
            }
        }
        diags
    }

    fn describe(spec: &StatSpec) -> Action {
        let remote = Location::parse(&spec.location).is_ok_and(|l| !l.is_local());
        let place = match &spec.options.endpoint {
            Some(e) if remote => format!("{} (at {e})", spec.location),
            _ => spec.location.clone(),
        };
        let facts = if spec.by_prefix {
            "facts objects:<prefix>, bytes:<prefix> per top-level prefix".to_string()
        } else {
            let name = spec.name.clone().unwrap_or_else(|| {
                Location::parse(&spec.location)
                    .map(|l| default_name(&l))
                    .unwrap_or_else(|_| spec.location.clone())
            });
            format!("facts objects:{name}, bytes:{name}")
        };
        Action::new(format!(
            "count the objects and bytes under {place} (listing only; {facts})"
        ))
    }

    async fn run(spec: StatSpec, ctx: StepContext) -> Result<Outputs, StepError> {
        let redact = ctx.redact.clone();
        stat(spec, &ctx)
            .await
            .map_err(|e| super::redacted(e, &redact))
    }
}

async fn stat(spec: StatSpec, ctx: &StepContext) -> Result<Outputs, StepError> {
    let location = Location::parse(&spec.location)
        .map_err(|e| StepError::fatal(format!("`location`: {e}")))?;
    let side = Side::open(&location, &spec.options)?;
    if let Side::Local(root) = &side {
        if root.exists() && !root.is_dir() {
            return Err(StepError::fatal(format!(
                "{} is not a folder",
                root.display()
            )));
        }
    }
    let listing = tokio::select! {
        l = side.list() => l?,
        _ = ctx.cancel.cancelled() => return Err(StepError::cancelled()),
    };
    let mut counts = Counts::default();
    for (key, entry) in &listing {
        counts.add(key, entry.size);
    }
    let name = spec
        .name
        .clone()
        .filter(|n| !n.trim().is_empty())
        .unwrap_or_else(|| default_name(&location));
    (ctx.log)(
        crate::Stream::Stdout,
        &format!(
            "{}: {} objects, {} ({} bytes), {} top-level prefixes",
            side.describe(),
            counts.objects,
            human_bytes(counts.bytes),
            counts.bytes,
            counts.prefixes.len()
        ),
    );
    let mut out = Outputs::new();
    out.insert("objects".into(), Value::from(counts.objects));
    out.insert("bytes".into(), Value::from(counts.bytes));
    let prefixes: Map<String, Value> = counts
        .prefixes
        .iter()
        .map(|(p, (o, b))| (p.clone(), serde_json::json!({"objects": o, "bytes": b})))
        .collect();
    out.insert("prefixes".into(), Value::Object(prefixes));
    out.insert(
        "facts".into(),
        Value::Object(facts(&counts, &name, spec.by_prefix)),
    );
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_facts() {
        let mut c = Counts::default();
        c.add("mimir/blk/index", 10);
        c.add("mimir/blk/meta.json", 5);
        c.add("loki/index", 7);
        c.add(".opsplan-generation", 100);
        assert_eq!((c.objects, c.bytes), (4, 122));
        assert_eq!(c.prefixes["mimir"], (2, 15));
        let by_prefix = facts(&c, "x", true);
        assert_eq!(by_prefix["objects:mimir"], 2);
        assert_eq!(by_prefix["bytes:loki"], 7);
        assert_eq!(by_prefix.len(), 4, "no fact for the top-level file");
        let whole = facts(&c, "x", false);
        assert_eq!(whole["objects:x"], 4);
        assert_eq!(whole["bytes:x"], 122);
        assert_eq!(default_name(&Location::parse("s3://loki").unwrap()), "loki");
        assert_eq!(
            default_name(&Location::parse("/backup/gen/loki/").unwrap()),
            "loki"
        );
    }
}
