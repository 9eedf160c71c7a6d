//! Generated bucket contents in the layouts the platform writes (deterministic: a fixed-seed
//! generator, so a failing drill can be rerun on the same data).
//!
//! mimir (Mimir TSDB blocks, `<tenant>/<ULID>/...`):
//! - complete blocks: `meta.json`, `index`, `chunks/000001` (one with `chunks/000002`);
//! - a partial block: `index` and `chunks/` but no `meta.json` (an upload in progress);
//! - a corrupted block: `meta.json` and `index` but no `chunks/` ([`Seed::repair`] uploads
//!   the missing segment later);
//! - a block with `deletion-mark.json` (the compactor deletes it; not backed up);
//! - `<tenant>/markers/*` and `<tenant>/bucket-index.json.gz` (rebuilt by the platform; not
//!   backed up).
//!
//! loki: `loki_cluster_seed.json`, TSDB index shards under `index/`, chunks under
//! `fake/<fingerprint>/<from>:<through>:<checksum>` (Loki's key shape, colons included).
//!
//! backup: `postgres-backup/dop-YYYYMMDDHHMM.dump.gz`, the gzip'd plain dumps of the real
//! PostgreSQL (added by the drill).
//!
//! Each object says whether the backup must hold it; that verdict comes from how the object
//! was generated, not from the plan's globs, so it is an independent oracle.

use std::collections::BTreeMap;
use std::io::Write;

/// A fixed-seed generator (splitmix64).
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    pub fn range(&mut self, lo: usize, hi: usize) -> usize {
        lo + (self.next() % (hi - lo) as u64) as usize
    }
    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        let mut v = Vec::with_capacity(n + 8);
        while v.len() < n {
            v.extend_from_slice(&self.next().to_le_bytes());
        }
        v.truncate(n);
        v
    }
    /// A ULID (26 Crockford base32 characters) with the given millisecond timestamp.
    pub fn ulid(&mut self, millis: u64) -> String {
        const ALPHABET: &[u8] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
        let random = ((self.next() as u128) << 16) | (self.next() as u128 & 0xFFFF);
        let value = ((millis as u128 & 0xFFFF_FFFF_FFFF) << 80) | random;
        (0..26)
            .map(|i| ALPHABET[((value >> (125 - 5 * i)) & 31) as usize] as char)
            .collect()
    }
}

#[derive(Clone)]
pub struct Object {
    pub key: String,
    pub data: Vec<u8>,
    /// The backup must hold it (and a restore bring it back).
    pub backed_up: bool,
}

pub struct Seed {
    /// Bucket role (`mimir`, `loki`) -> objects.
    pub buckets: BTreeMap<&'static str, Vec<Object>>,
    /// `<tenant>/<ULID>` of the corrupted mimir block, as the plan's report names it.
    pub corrupted: String,
    /// The object whose absence makes it corrupted.
    pub missing_chunk: Object,
    /// Blocks as the plan must count them before and after [`Seed::repair`].
    pub complete: usize,
    pub partial: usize,
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(data).expect("gzip into memory");
    enc.finish().expect("gzip into memory")
}

/// 2025-04-21T00:00:00Z in milliseconds.
const T0: u64 = 1_745_193_600_000;
const HOUR: u64 = 3_600_000;

struct Block {
    ulid: String,
    files: Vec<(String, Vec<u8>)>,
}

fn block(rng: &mut Rng, tenant: &str, n: u64, segments: usize) -> Block {
    let min_time = T0 + n * 2 * HOUR;
    let ulid = rng.ulid(min_time + 2 * HOUR + 600_000);
    let mut files = Vec::new();
    let mut described = Vec::new();
    for s in 1..=segments {
        let mut chunk = vec![0x85, 0xBD, 0x40, 0xDD, 0x01, 0, 0, 0];
        let size = rng.range(200_000, 900_000);
        chunk.extend(rng.bytes(size));
        let name = format!("chunks/{s:06}");
        described.push(serde_json::json!({"rel_path": name, "size_bytes": chunk.len()}));
        files.push((name, chunk));
    }
    let mut index = vec![0xBA, 0xAA, 0xD7, 0x00, 0x02];
    let size = rng.range(30_000, 120_000);
    index.extend(rng.bytes(size));
    described.push(serde_json::json!({"rel_path": "index", "size_bytes": index.len()}));
    described.push(serde_json::json!({"rel_path": "meta.json"}));
    files.push(("index".into(), index));
    let meta = serde_json::json!({
        "ulid": ulid,
        "minTime": min_time,
        "maxTime": min_time + 2 * HOUR,
        "stats": {"numSamples": rng.range(100_000, 900_000), "numSeries": rng.range(500, 5000),
                  "numChunks": rng.range(2000, 20000)},
        "compaction": {"level": 1, "sources": [ulid]},
        "version": 1,
        "thanos": {"labels": {"__org_id__": tenant}, "downsample": {"resolution": 0},
                   "source": "ingester",
                   "segment_files": (1..=segments).map(|s| format!("{s:06}")).collect::<Vec<_>>(),
                   "files": described}
    });
    let meta = serde_json::to_vec_pretty(&meta).expect("meta.json");
    files.push(("meta.json".into(), meta));
    Block { ulid, files }
}

impl Seed {
    pub fn generate() -> Seed {
        let mut rng = Rng::new(0xD0B_5EED);
        let mut mimir = Vec::new();
        let mut n = 0u64;
        let mut complete = 0;
        let mut corrupted = String::new();
        let mut missing_chunk = None;
        for tenant in ["anonymous", "team-b"] {
            let mut index_blocks = Vec::new();
            let mut marks = Vec::new();
            let push = |mimir: &mut Vec<Object>, b: &Block, skip: &[&str], backed_up| {
                for (name, data) in &b.files {
                    if !skip.contains(&name.as_str()) {
                        mimir.push(Object {
                            key: format!("{tenant}/{}/{name}", b.ulid),
                            data: data.clone(),
                            backed_up,
                        });
                    }
                }
            };
            let kinds: &[&str] = if tenant == "anonymous" {
                &[
                    "complete",
                    "complete2",
                    "complete",
                    "partial",
                    "corrupted",
                    "deleted",
                    "complete",
                ]
            } else {
                &["complete", "deleted", "complete"]
            };
            for kind in kinds {
                n += 1;
                let segments = if *kind == "complete2" { 2 } else { 1 };
                let b = block(&mut rng, tenant, n, segments);
                match *kind {
                    "complete" | "complete2" => {
                        complete += 1;
                        push(&mut mimir, &b, &[], true);
                        index_blocks.push(b.ulid.clone());
                    }
                    "partial" => push(&mut mimir, &b, &["meta.json"], true),
                    "corrupted" => {
                        push(&mut mimir, &b, &["chunks/000001"], true);
                        corrupted = format!("{tenant}/{}", b.ulid);
                        let (_, data) = b.files[0].clone();
                        missing_chunk = Some(Object {
                            key: format!("{tenant}/{}/chunks/000001", b.ulid),
                            data,
                            backed_up: true,
                        });
                        index_blocks.push(b.ulid.clone());
                    }
                    _ => {
                        push(&mut mimir, &b, &[], false);
                        let mark = serde_json::to_vec(&serde_json::json!({
                            "id": b.ulid, "deletion_time": 1_745_280_000, "version": 1
                        }))
                        .expect("mark");
                        mimir.push(Object {
                            key: format!("{tenant}/{}/deletion-mark.json", b.ulid),
                            data: mark.clone(),
                            backed_up: false,
                        });
                        mimir.push(Object {
                            key: format!("{tenant}/markers/{}-deletion-mark.json", b.ulid),
                            data: mark,
                            backed_up: false,
                        });
                        marks.push(b.ulid.clone());
                    }
                }
            }
            let bucket_index = serde_json::to_vec(&serde_json::json!({
                "version": 1,
                "blocks": index_blocks.iter().map(|u| serde_json::json!({"block_id": u})).collect::<Vec<_>>(),
                "block_deletion_marks": marks.iter().map(|u| serde_json::json!({"block_id": u})).collect::<Vec<_>>(),
                "updated_at": 1_745_280_000
            }))
            .expect("bucket index");
            mimir.push(Object {
                key: format!("{tenant}/bucket-index.json.gz"),
                data: gzip(&bucket_index),
                backed_up: false,
            });
        }

        let mut loki = vec![Object {
            key: "loki_cluster_seed.json".into(),
            data: br#"{"UID":"5c2a1c4e-9a51-4d55-8f0e-2f7d4c1b9e01","created_at":"2025-01-10T08:00:00Z"}"#
                .to_vec(),
            backed_up: true,
        }];
        for day in [20198u32, 20199] {
            for ingester in 0..2 {
                let from = u64::from(day) * 86_400 + 3600 * ingester;
                let text = (0..400)
                    .map(|i| format!("{{app=\"svc-{}\"}} {:x}\n", i % 23, rng.next()))
                    .collect::<String>();
                loki.push(Object {
                    key: format!(
                        "index/index_{day}/fake/{from}-ingester-{ingester}-{}-{:08x}.tsdb.gz",
                        from + 3600,
                        rng.next() as u32
                    ),
                    data: gzip(text.as_bytes()),
                    backed_up: true,
                });
            }
        }
        for _ in 0..24 {
            let fp = rng.next();
            let from = (T0 + rng.next() % (48 * HOUR)) / 1000 * 1000;
            let size = rng.range(8_000, 60_000);
            loki.push(Object {
                key: format!(
                    "fake/{fp:016x}/{from:x}:{:x}:{:08x}",
                    from + 3_600_000,
                    rng.next() as u32
                ),
                data: rng.bytes(size),
                backed_up: true,
            });
        }

        let mut buckets = BTreeMap::new();
        buckets.insert("mimir", mimir);
        buckets.insert("loki", loki);
        Seed {
            buckets,
            corrupted,
            missing_chunk: missing_chunk.expect("a corrupted block was generated"),
            complete,
            partial: 1,
        }
    }

    /// What the backup folder (and a restored bucket) must hold for a bucket role: key ->
    /// content, after [`Seed::repair`] when `repaired`.
    pub fn expected(&self, role: &str, repaired: bool) -> BTreeMap<String, Vec<u8>> {
        let mut out: BTreeMap<String, Vec<u8>> = self.buckets[role]
            .iter()
            .filter(|o| o.backed_up)
            .map(|o| (o.key.clone(), o.data.clone()))
            .collect();
        if repaired && role == "mimir" {
            out.insert(
                self.missing_chunk.key.clone(),
                self.missing_chunk.data.clone(),
            );
        }
        out
    }
}
