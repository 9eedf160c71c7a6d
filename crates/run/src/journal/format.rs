//! The on-disk format of a run journal (docs/design/0003-journal-and-resume.md).
//!
//! A run directory holds `meta.json` (written once, atomically, before the first step) and
//! `events.jsonl` (one [`Record`] per line, appended). `FORMAT` versions both: readers
//! accept any format up to their own and ignore fields they do not know, so adding a field
//! keeps the number; renaming, removing or changing the meaning of one bumps it.

use crate::exec::events::RunEvent;
use indexmap::IndexMap;
use serde::{Deserialize, Serialize};

/// The journal format this binary writes and the newest it reads.
pub const FORMAT: u32 = 1;
pub const META_FILE: &str = "meta.json";
pub const EVENTS_FILE: &str = "events.jsonl";
/// Held (flock) by the process writing the journal: a run whose lock is free is not
/// running any more.
pub const OWNER_FILE: &str = "owner.lock";
/// Written (in place, into space reserved at the start) when the journal stops being
/// written: the records after that point are missing, so resume refuses to go forward.
pub const LOST_FILE: &str = "journal-lost";

/// Everything needed to resume a run besides its events: the plan, the params (secrets
/// masked: they are resolved again from their sources) and who ran it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Meta {
    pub format: u32,
    pub run_id: String,
    pub plan: PlanRef,
    pub params: IndexMap<String, MetaParam>,
    #[serde(default)]
    pub locks: Vec<String>,
    pub host: String,
    pub user: String,
    pub pid: u32,
    pub started: String,
    /// The opsplan version that started the run.
    pub opsplan: String,
    #[serde(default)]
    pub options: MetaOptions,
    /// The folder the run started in: relative paths in its params mean files there, so a
    /// resume works there too, wherever it is started from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cwd: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PlanRef {
    pub name: String,
    #[serde(default)]
    pub version: Option<String>,
    /// Absolute path of the plan file.
    pub path: String,
    /// SHA-256 of the plan file and its fragments, as `compile` computed it.
    pub content_hash: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MetaParam {
    /// The value; `********` for a secret.
    pub value: serde_json::Value,
    #[serde(default)]
    pub secret: bool,
    /// Where the value came from (`--set`, `env:NAME`, `file`, `command`, `default`).
    pub source: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct MetaOptions {
    #[serde(default)]
    pub max_parallel: usize,
    #[serde(default)]
    pub grace_ms: u64,
}

/// One line of `events.jsonl`: a sequence number and the executor's event.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Record {
    pub seq: u64,
    #[serde(flatten)]
    pub event: RunEvent,
}

impl Meta {
    /// The params as the journal keeps them: every secret masked.
    pub fn params_from(
        resolved: &opsplan_plan::params::ResolvedParams,
    ) -> IndexMap<String, MetaParam> {
        resolved
            .0
            .iter()
            .map(|(name, p)| {
                let value = if p.secret {
                    serde_json::Value::String(opsplan_plan::template::MASK.into())
                } else {
                    p.value.clone()
                };
                (
                    name.clone(),
                    MetaParam {
                        value,
                        secret: p.secret,
                        source: p.source.clone(),
                    },
                )
            })
            .collect()
    }
}

/// This machine's name, for lock holders and run metadata.
pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .ok()
        .filter(|s| !s.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "unknown-host".into())
}

pub fn username() -> String {
    use std::os::unix::fs::MetadataExt;
    std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .unwrap_or_else(|_| match std::fs::metadata("/proc/self") {
            Ok(m) => format!("uid {}", m.uid()),
            Err(_) => "unknown".into(),
        })
}
