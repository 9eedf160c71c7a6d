//! Restore drill of the Deckhouse Observability Platform plans (issue 6), end to end through
//! the real binary and the shipped plans under plans/dop/.
//!
//! The lab (tests/lab/dop/, README there): a real moto_server with the buckets `lab-mimir`,
//! `lab-loki` and `lab-backup` holding generated TSDB blocks, Loki objects and gzip'd dumps;
//! a real PostgreSQL 15 with a generated `dop` database; the kubectl stand-in with the
//! platform's namespace. Everything starts on loopback and free ports and stops in Drop
//! guards.
//!
//! The cycle: back up with a corrupted block in the metrics bucket (the block report counts
//! complete/partial/corrupted, the plan re-syncs once and fails naming the block, and the
//! restore plans refuse that unfinished backup); complete the block and back up again (clean
//! report, manifest, verify); check the folder against the seed and the manifest; wipe the
//! metrics and logs buckets and restore them (every key and sha256 compared, and moto's
//! ordered access log proves each meta.json PUT came after every other PUT); damage the
//! database and restore it (row counts and a content hash per table, sequences, views;
//! replica counts back, cronjobs deleted). Then the failure drills of restore-postgres,
//! each a real injected failure (stand-in `deny` entries, a broken and a truncated dump)
//! with every deployment proven back at its count.
//!
//! It prints one line, `drill dop: …`, straight to stderr (past the test harness's capture).

#[path = "lab/dop/mod.rs"]
mod lab;

use lab::cluster::{Cluster, COMPONENTS, CONTEXT, CRONJOBS, MASTER, NAMESPACE};
use lab::pg::Postgres;
use lab::s3::{Moto, KEY_ID};
use lab::seed::Seed;
use lab::{differences, opsplan, read_tree, Ran};
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

const SECRET: &str = "lab-S3-secret-4b7e0d";
const MIMIR: &str = "lab-mimir";
const LOKI: &str = "lab-loki";
const BACKUP: &str = "lab-backup";
const OLD_DUMP: &str = "postgres-backup/dop-202504201200.dump.gz";
const DUMP: &str = "postgres-backup/dop-202504211200.dump.gz";
const MANIFEST: &str = "opsplan-manifest.json";

struct Lab {
    moto: Moto,
    pg: Postgres,
    cluster: Cluster,
    seed: Seed,
    dir: tempfile::TempDir,
    /// Uploaded dumps: key -> content.
    dumps: BTreeMap<String, Vec<u8>>,
    /// The database as dumped in DUMP.
    db_digest: BTreeMap<String, String>,
}

impl Lab {
    fn start() -> Lab {
        let python = std::process::Command::new("python3")
            .arg("--version")
            .output();
        assert!(
            python.is_ok_and(|o| o.status.success()),
            "drill dop: cannot run here: the kubectl stand-in needs python3, which is missing"
        );
        let moto = Moto::start().unwrap_or_else(|e| panic!("drill dop: cannot run here: {e}"));
        let pg = Postgres::start().unwrap_or_else(|e| panic!("drill dop: cannot run here: {e}"));
        let cluster = Cluster::new();
        let seed = Seed::generate();
        let dir = tempfile::tempdir().expect("temp dir");
        for bucket in [MIMIR, LOKI, BACKUP] {
            moto.create_bucket(bucket);
        }
        for (bucket, role) in [(MIMIR, "mimir"), (LOKI, "loki")] {
            for o in &seed.buckets[role] {
                moto.put(bucket, &o.key, &o.data);
            }
        }
        // The postgres-backup cronjob's work: yesterday's dump, more alerts, today's dump.
        pg.seed();
        let mut dumps = BTreeMap::new();
        let old = dir.path().join("old.dump.gz");
        pg.dump_gz(&old);
        pg.add_alerts(24_000, 1_500);
        let db_digest = pg.digest();
        let new = dir.path().join("new.dump.gz");
        pg.dump_gz(&new);
        for (key, file) in [(OLD_DUMP, &old), (DUMP, &new)] {
            let data = std::fs::read(file).expect("read dump");
            moto.put(BACKUP, key, &data);
            dumps.insert(key.to_string(), data);
        }
        Lab {
            moto,
            pg,
            cluster,
            seed,
            dir,
            dumps,
            db_digest,
        }
    }

    fn backup_dir(&self) -> PathBuf {
        self.dir.path().join("backup")
    }

    fn env(&self) -> Vec<(String, String)> {
        let state = self.dir.path().join("opsplan-state");
        let mut env = vec![
            (
                "OPSPLAN_JOURNAL_DIR".into(),
                state.join("runs").display().to_string(),
            ),
            (
                "OPSPLAN_LOCK_DIR".into(),
                state.join("locks").display().to_string(),
            ),
            ("AWS_ACCESS_KEY_ID".into(), KEY_ID.into()),
            ("AWS_SECRET_ACCESS_KEY".into(), SECRET.into()),
            ("PATH".into(), self.cluster.path_env()),
            (
                "KUBECTL_STANDIN_STATE".into(),
                self.cluster.state_path().display().to_string(),
            ),
        ];
        env.extend(self.pg.client_env());
        env
    }

    /// `opsplan run plans/dop/PLAN.yaml --force --yes --log-format json --set …`.
    fn run(&self, plan: &str, sets: &[(&str, String)]) -> Ran {
        let mut args: Vec<String> = ["run", &format!("plans/dop/{plan}.yaml")]
            .iter()
            .map(std::string::ToString::to_string)
            .collect();
        for (k, v) in sets {
            args.push("--set".into());
            args.push(format!("{k}={v}"));
        }
        args.extend(["--force", "--yes", "--log-format", "json"].map(String::from));
        let ran = opsplan(&args, &self.env(), Duration::from_secs(300));
        assert!(
            !ran.all().contains(SECRET) && !ran.all().contains(lab::pg::DOP_PASSWORD),
            "drill dop: a secret appears in the output of {plan}:\n{}",
            ran.all()
        );
        ran
    }

    fn s3_sets(&self) -> Vec<(&'static str, String)> {
        vec![
            ("backup_dir", self.backup_dir().display().to_string()),
            ("s3_endpoint", self.moto.endpoint()),
            ("s3_allow_http", "true".into()),
        ]
    }

    fn backup(&self) -> Ran {
        let mut sets = self.s3_sets();
        sets.extend([
            ("mimir_bucket", MIMIR.to_string()),
            ("loki_bucket", LOKI.to_string()),
            ("backup_bucket", BACKUP.to_string()),
        ]);
        self.run("backup", &sets)
    }

    fn restore_bucket(&self, plan: &str, bucket: &str) -> Ran {
        let mut sets = self.s3_sets();
        sets.extend([
            ("bucket", bucket.to_string()),
            ("source_folder", bucket.to_string()),
        ]);
        self.run(plan, &sets)
    }

    /// restore-postgres of `dump` from the backup folder `backup` with the module's
    /// reconciliation modelled (the deleted cronjobs come back once the components run).
    fn restore_postgres(&self, backup: &Path, dump: &Path) -> Ran {
        let module = Reconciler::start(&self.cluster);
        let ran = self.restore_postgres_with(backup, dump, &[]);
        module.stop();
        ran
    }

    /// restore-postgres without anything recreating the cronjobs. `dump` is a path on disk;
    /// the plan takes it relative to the generation it selects (the latest verified one),
    /// so a dump outside the generation is given as `../…`, as an operator could type it.
    fn restore_postgres_with(&self, backup: &Path, dump: &Path, extra: &[(&str, String)]) -> Ran {
        let generation = latest_generation(backup);
        let dump = std::fs::canonicalize(dump).unwrap_or_else(|_| dump.to_path_buf());
        let dump_rel = match dump.strip_prefix(&generation) {
            Ok(rel) => rel.display().to_string(),
            Err(_) => format!(
                "{}{}",
                "../".repeat(generation.components().count() - 1),
                dump.display().to_string().trim_start_matches('/')
            ),
        };
        let mut sets = vec![
            ("backup_dir", backup.display().to_string()),
            ("dump_file", dump_rel),
            ("namespace", NAMESPACE.to_string()),
            ("context", CONTEXT.to_string()),
        ];
        sets.extend(extra.iter().cloned());
        self.run("restore-postgres", &sets)
    }
}

/// Models the module's reconciliation of its cronjobs, which the page's procedure relies on
/// (it deletes them and never recreates them): once the components were stopped and run
/// again, the deleted cronjobs reappear, as a lab-side actor writing the stand-in's state
/// under the stand-in's own lock. Not a vendor fact: the plan waits for it and fails
/// without it (failure drill "cronjobs not back").
struct Reconciler {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    handle: std::thread::JoinHandle<bool>,
}

impl Reconciler {
    fn start(cluster: &Cluster) -> Reconciler {
        use std::sync::atomic::Ordering;
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let state = cluster.state_path();
        let flag = stop.clone();
        let handle = std::thread::spawn(move || {
            let mut seen_stopped = false;
            while !flag.load(Ordering::SeqCst) {
                std::thread::sleep(Duration::from_millis(200));
                let Ok(text) = std::fs::read_to_string(&state) else {
                    continue;
                };
                let Ok(v) = serde_json::from_str::<serde_json::Value>(&text) else {
                    continue;
                };
                let ns = &v["namespaces"][NAMESPACE];
                let backend = ns["deployments"]["backend"]["replicas"]
                    .as_u64()
                    .unwrap_or(0);
                if backend == 0 {
                    seen_stopped = true;
                    continue;
                }
                let missing = CRONJOBS.iter().any(|c| ns["cronjobs"].get(c).is_none());
                if seen_stopped && missing {
                    let script = format!(
                        "import json,sys\np=sys.argv[1]\ns=json.load(open(p))\nc=s['namespaces']['{NAMESPACE}'].setdefault('cronjobs',{{}})\nfor n in {CRONJOBS:?}:\n    c.setdefault(n,{{'schedule':'*/30 * * * *'}})\njson.dump(s,open(p,'w'))\n"
                    );
                    let lock = format!("{}.lock", state.display());
                    let ok = std::process::Command::new("flock")
                        .args([lock.as_str(), "python3", "-c", &script])
                        .arg(&state)
                        .status()
                        .is_ok_and(|s| s.success());
                    return ok;
                }
            }
            false
        });
        Reconciler { stop, handle }
    }

    /// Stops watching; true when it recreated the cronjobs.
    fn stop(self) -> bool {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        self.handle.join().unwrap_or(false)
    }
}

/// The generation `latest` points at in a backup location (resolved).
fn latest_generation(location: &Path) -> PathBuf {
    std::fs::canonicalize(location.join("latest")).unwrap_or_else(|e| {
        panic!(
            "drill dop: no latest generation in {}: {e}",
            location.display()
        )
    })
}

/// A backup location with one verified generation (in opsplan's documented formats,
/// docs/design/0006-generations.md and 0002-backup-manifest.md) holding `dump` under the
/// backup bucket's folder and a manifest that lists it: a dump the backup really holds but
/// that fails in psql, e.g. one made by a newer server. `facts`: the manifest's `facts`
/// section, when the generation should record some. Returns the dump's path.
fn backup_with_dump(location: &Path, dump: &Path, facts: Option<&serde_json::Value>) -> PathBuf {
    let name = "20261201T000000Z-20261201-000000-0d0d0d0d";
    let dir = location.join(name);
    let rel = format!("{BACKUP}/{DUMP}");
    let path = dir.join(&rel);
    std::fs::create_dir_all(path.parent().expect("dump folder")).expect("create backup folder");
    std::fs::copy(dump, &path).expect("copy dump");
    let data = std::fs::read(&path).expect("read dump");
    let sha = {
        use sha2::Digest;
        hex::encode(sha2::Sha256::digest(&data))
    };
    let mut manifest = serde_json::json!({
        "format": "opsplan-backup-manifest", "format_version": 1,
        "created": "2026-12-01T00:00:00Z", "plan": {"name": "dop-backup"},
        "system_version": null, "exclude": [],
        "totals": {"files": 1, "bytes": data.len()},
        "files": [{"path": rel, "type": "file", "size": data.len(), "sha256": sha,
                   "mode": "0644", "uid": 0, "gid": 0, "mtime": "2026-12-01T00:00:00Z"}]
    });
    if let Some(facts) = facts {
        manifest["facts"] = facts.clone();
    }
    let manifest = manifest.to_string();
    std::fs::write(dir.join(MANIFEST), &manifest).expect("write manifest");
    let manifest_sha = {
        use sha2::Digest;
        hex::encode(sha2::Sha256::digest(manifest.as_bytes()))
    };
    let marker = serde_json::json!({
        "format": "opsplan-generation", "format_version": 1, "name": name,
        "run_id": "20261201-000000-0d0d0d0d", "plan": "dop-backup",
        "started": "2026-12-01T00:00:00Z", "previous": null, "state": "verified",
        "committed": "2026-12-01T00:10:00Z", "manifest": MANIFEST,
        "manifest_sha256": manifest_sha,
    });
    std::fs::write(dir.join("opsplan-generation.json"), marker.to_string()).expect("write marker");
    std::os::unix::fs::symlink(name, location.join("latest")).expect("latest pointer");
    path
}

fn block_report(ran: &Ran, id: &str) -> serde_json::Value {
    ran.finished(id)
        .first()
        .map(|e| e["outputs"]["json"].clone())
        .unwrap_or_else(|| panic!("drill dop: step {id} did not finish:\n{}", ran.all()))
}

/// Request lines of moto's log from index `from` on.
fn requests_since(moto: &Moto, from: usize) -> Vec<String> {
    moto.requests().into_iter().skip(from).collect()
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = s
            .get(i + 1..i + 3)
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (c, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The object keys PUT into `bucket`, in the order moto handled them.
fn puts(lines: &[String], bucket: &str) -> Vec<String> {
    let prefix = format!("PUT /{bucket}/");
    lines
        .iter()
        .filter_map(|l| l.strip_prefix(&prefix))
        .map(|rest| {
            let path = rest.split(' ').next().unwrap_or("");
            percent_decode(path.split('?').next().unwrap_or(""))
        })
        .collect()
}

/// Proves that the restore PUT exactly the expected keys, once each, and every meta.json
/// only after every other object. Returns the number of meta.json PUTs.
fn check_put_order(lines: &[String], bucket: &str, want: &BTreeMap<String, Vec<u8>>) -> usize {
    let keys = puts(lines, bucket);
    let mut seen = BTreeMap::new();
    for k in &keys {
        *seen.entry(k.clone()).or_insert(0) += 1;
    }
    let sent: Vec<&String> = seen.keys().collect();
    let wanted: Vec<&String> = want.keys().collect();
    assert_eq!(
        sent, wanted,
        "drill dop: the restore of {bucket} did not PUT exactly the backed-up keys"
    );
    if let Some((k, n)) = seen.iter().find(|(_, n)| **n != 1) {
        panic!("drill dop: the restore of {bucket} sent {k} {n} times");
    }
    let is_meta = |k: &String| k.ends_with("/meta.json");
    let last_other = keys.iter().rposition(|k| !is_meta(k));
    let first_meta = keys.iter().position(is_meta);
    if let (Some(o), Some(m)) = (last_other, first_meta) {
        assert!(
            o < m,
            "drill dop: in {bucket}, {} was PUT before {} (moto's log order: {keys:#?})",
            keys[m],
            keys[o]
        );
    }
    keys.iter().filter(|k| is_meta(k)).count()
}

fn check_backup_folder(lab: &Lab) -> (usize, u64) {
    let root = latest_generation(&lab.backup_dir());
    let mut want = BTreeMap::new();
    for (bucket, role) in [(MIMIR, "mimir"), (LOKI, "loki")] {
        for (k, v) in lab.seed.expected(role, true) {
            want.insert(format!("{bucket}/{k}"), v);
        }
    }
    for (k, v) in &lab.dumps {
        want.insert(format!("{BACKUP}/{k}"), v.clone());
    }
    let have = read_tree(&root, &[MANIFEST, "opsplan-generation.json"]);
    if let Some(d) = differences("backup folder against the seed", &want, &have) {
        panic!("drill dop: {d}");
    }
    // The manifest, read independently of the verify step: every file, its size and sha256.
    let text = std::fs::read_to_string(root.join(MANIFEST))
        .unwrap_or_else(|e| panic!("drill dop: no manifest after a clean backup: {e}"));
    let manifest: serde_json::Value = serde_json::from_str(&text).expect("manifest is JSON");
    let mut listed = BTreeMap::new();
    for f in manifest["files"].as_array().expect("manifest files") {
        if f["type"] != "file" {
            continue;
        }
        let path = f["path"].as_str().expect("path").to_string();
        listed.insert(path, f["sha256"].as_str().unwrap_or("").to_string());
    }
    let want_sums: BTreeMap<String, String> = want
        .iter()
        .map(|(k, v)| (k.clone(), lab::sha256(v)))
        .collect();
    if listed != want_sums {
        let missing: Vec<_> = want_sums
            .iter()
            .filter(|(k, v)| listed.get(*k) != Some(v))
            .map(|(k, _)| k)
            .collect();
        let extra: Vec<_> = listed
            .keys()
            .filter(|k| !want_sums.contains_key(*k))
            .collect();
        panic!("drill dop: manifest differs from the backup: wrong or missing {missing:?}, unexpected {extra:?}");
    }
    let bytes = want.values().map(|v| v.len() as u64).sum();
    (want.len(), bytes)
}

fn check_components(lab: &Lab, drill: &str) {
    let have = lab.cluster.replicas();
    assert_eq!(
        have,
        Cluster::original(),
        "drill dop: {drill}: deployments are not back at their replica counts"
    );
}

fn check_db_untouched(lab: &Lab, drill: &str, before: &BTreeMap<String, String>) {
    let now = lab.pg.digest();
    assert_eq!(
        &now, before,
        "drill dop: {drill}: the database changed although the failure came before the drop"
    );
}

fn scaled_down(lab: &Lab) -> Vec<String> {
    lab.cluster
        .calls()
        .into_iter()
        .filter(|c| c.contains(" scale ") && c.contains("--replicas=0"))
        .collect()
}

fn failed_step(ran: &Ran, id: &str, drill: &str) -> String {
    assert_ne!(
        ran.code,
        0,
        "drill dop: {drill}: the run did not fail:\n{}",
        ran.all()
    );
    assert_eq!(
        ran.status(id),
        "failed",
        "drill dop: {drill}: step {id} did not fail:\n{}",
        ran.all()
    );
    assert_eq!(
        ran.run_status(),
        "failed",
        "drill dop: {drill}: the run did not end `failed` (its cleanup must succeed):\n{}",
        ran.all()
    );
    ran.finished(id)[0]["error"]
        .as_str()
        .unwrap_or("")
        .to_string()
}

#[test]
fn drill_dop() {
    let _lab = crate::common::one_at_a_time();
    let lab = Lab::start();
    let seed = &lab.seed;

    // ---- Backup 1: the metrics bucket holds a corrupted block.
    let mark = lab.moto.requests().len();
    let ran = lab.backup();
    let report = block_report(&ran, "blocks");
    let want = serde_json::json!({"complete": seed.complete, "partial": seed.partial,
        "corrupted": 1, "corrupted_blocks": [seed.corrupted]});
    assert_eq!(report, want, "drill dop: block report of the first backup");
    assert_eq!(
        ran.status("resync"),
        "succeeded",
        "drill dop: corrupted block, but no re-sync:\n{}",
        ran.all()
    );
    assert_eq!(block_report(&ran, "blocks-after-resync"), want);
    let error = failed_step(&ran, "no-corrupted-blocks", "corrupted block");
    assert!(
        error.contains(&seed.corrupted),
        "drill dop: the failure does not name the corrupted block {}: {error}",
        seed.corrupted
    );
    let lists = requests_since(&lab.moto, mark)
        .iter()
        .filter(|l| l.starts_with(&format!("GET /{MIMIR}")) && l.contains("list-type=2"))
        .count();
    assert_eq!(
        lists, 2,
        "drill dop: the metrics bucket was not synced exactly twice (sync + one re-sync)"
    );
    let listing = opsplan_steps::generation::list(&lab.backup_dir()).expect("list generations");
    assert!(
        listing.generations.len() == 1
            && listing.generations[0].state == opsplan_steps::generation::State::Incomplete
            && !listing.generations[0].path.join(MANIFEST).exists()
            && listing.latest.is_none(),
        "drill dop: a failed backup left a manifest or a verified generation: {listing:?}"
    );
    for step in ["manifest", "commit", "report"] {
        assert_eq!(
            ran.status(step),
            "not run",
            "drill dop: {step} ran after the failure"
        );
    }
    // A restore refuses the unfinished backup and sends nothing.
    let mark = lab.moto.requests().len();
    let ran = lab.restore_bucket("restore-metrics", MIMIR);
    failed_step(&ran, "select", "restore from an unfinished backup");
    let sent = puts(&requests_since(&lab.moto, mark), MIMIR);
    assert!(
        sent.is_empty(),
        "drill dop: a refused restore sent {sent:?}"
    );

    // ---- Backup 2: the block is whole again (its missing chunk segment arrived).
    lab.moto
        .put(MIMIR, &seed.missing_chunk.key, &seed.missing_chunk.data);
    let ran = lab.backup();
    assert_eq!(
        ran.code,
        0,
        "drill dop: the clean backup failed:\n{}",
        ran.all()
    );
    let clean = serde_json::json!({"complete": seed.complete + 1, "partial": seed.partial,
        "corrupted": 0, "corrupted_blocks": []});
    assert_eq!(
        block_report(&ran, "blocks"),
        clean,
        "drill dop: block report of the clean backup"
    );
    assert_eq!(
        ran.status("resync"),
        "skipped",
        "drill dop: re-sync without a corrupted block"
    );
    assert_eq!(ran.status("commit"), "succeeded");
    let line = format!(
        "TSDB blocks: {} complete, {} partial, 0 corrupted",
        seed.complete + 1,
        seed.partial
    );
    assert!(
        ran.all().contains(&line),
        "drill dop: no `{line}` in:\n{}",
        ran.all()
    );
    let (files, bytes) = check_backup_folder(&lab);
    let facts = check_recorded_facts(&lab);

    // ---- Wipe the metrics and logs buckets, restore them.
    let mut restored = Vec::new();
    for (plan, bucket, role) in [
        ("restore-metrics", MIMIR, "mimir"),
        ("restore-logs", LOKI, "loki"),
    ] {
        lab.moto.wipe(bucket);
        assert!(
            lab.moto.keys(bucket).is_empty(),
            "drill dop: {bucket} not wiped"
        );
        let mark = lab.moto.requests().len();
        let ran = lab.restore_bucket(plan, bucket);
        assert_eq!(ran.code, 0, "drill dop: {plan} failed:\n{}", ran.all());
        let want = seed.expected(role, true);
        if let Some(d) = differences(
            &format!("{bucket} after {plan}"),
            &want,
            &lab.moto.objects(bucket),
        ) {
            panic!("drill dop: {d}");
        }
        let compared = ran.outputs("restore.facts-match");
        assert_eq!(
            (&compared["compared"], &compared["differences"]),
            (
                &serde_json::json!([format!("bytes:{bucket}"), format!("objects:{bucket}")]),
                &serde_json::json!([])
            ),
            "drill dop: {plan} did not compare the bucket's facts:\n{}",
            ran.all()
        );
        let metas = check_put_order(&requests_since(&lab.moto, mark), bucket, &want);
        restored.push(match metas {
            0 => format!("{role} {} objects", want.len()),
            n => format!("{role} {} objects ({n} meta.json last)", want.len()),
        });
    }

    // ---- A restore that loses an object is caught by the facts. A lab-side actor deletes
    // one log object from the bucket as soon as the upload has written it (an object lost
    // between upload and check: a lifecycle rule, a compactor, a store dropping writes); the
    // upload succeeds, and facts-match fails naming objects:<bucket> and bytes:<bucket> with
    // both counts. One transfer at a time, so the rest of the upload outlasts the actor's poll.
    let lost = lab_lost_object(&lab);

    // ---- PostgreSQL: damage the live database, restore it from the backed-up dump.
    lab.pg.dop(
        "DROP VIEW firing_alerts; DROP TABLE alerts; TRUNCATE users, hosts, dashboards, silences;",
    );
    assert_ne!(
        lab.pg.digest(),
        lab.db_digest,
        "drill dop: the damage changed nothing"
    );
    let dump = latest_generation(&lab.backup_dir()).join(BACKUP).join(DUMP);
    let backup = lab.backup_dir();
    let ran = lab.restore_postgres(&backup, &dump);
    assert_eq!(
        ran.code,
        0,
        "drill dop: restore-postgres failed:\n{}",
        ran.all()
    );
    let now = lab.pg.digest();
    if now != lab.db_digest {
        let diffs: Vec<String> = lab
            .db_digest
            .iter()
            .filter(|(k, v)| now.get(*k) != Some(v))
            .map(|(k, v)| {
                format!(
                    "{k}: {v} expected, {} found",
                    now.get(k).map_or("nothing", |s| s)
                )
            })
            .collect();
        panic!(
            "drill dop: database after restore-postgres differs: {}",
            diffs.join("; ")
        );
    }
    check_components(&lab, "restore-postgres");
    let compared = ran.outputs("facts-match");
    assert_eq!(
        compared["compared"],
        serde_json::json!([
            format!("pg_rows:{BACKUP}/{DUMP}"),
            format!("pg_tables:{BACKUP}/{DUMP}")
        ]),
        "drill dop: facts-match did not compare the dump's facts:\n{}",
        ran.all()
    );
    assert_eq!(compared["differences"], serde_json::json!([]));
    assert_eq!(ran.status("cronjobs-back"), "succeeded", "{}", ran.all());
    let mut left = lab.cluster.cronjobs();
    left.sort();
    let mut want_cj: Vec<String> = CRONJOBS
        .iter()
        .map(std::string::ToString::to_string)
        .chain(["unrelated-report".to_string()])
        .collect();
    want_cj.sort();
    assert_eq!(
        left, want_cj,
        "drill dop: cronjobs after the restore (deleted, then recreated by the module)"
    );
    let deleted = lab
        .cluster
        .calls()
        .iter()
        .any(|c| c.contains("delete cronjob") && c.contains("postgres-backup"));
    assert!(deleted, "drill dop: the cronjobs were never deleted");
    let saved = ran.finished("save-cronjobs")[0]["outputs"]["stdout"]
        .as_str()
        .unwrap_or("")
        .to_string();
    for c in CRONJOBS {
        assert!(
            saved.contains(&format!("name: {c}")),
            "drill dop: the manifest of cronjob {c} was not saved before its deletion:\n{saved}"
        );
    }
    let downs = scaled_down(&lab);
    assert_eq!(
        downs.len(),
        COMPONENTS.len(),
        "drill dop: scale-downs: {downs:#?}"
    );
    assert!(
        lab.cluster
            .calls()
            .iter()
            .any(|c| c.contains(&format!("exec -i {MASTER} --"))),
        "drill dop: the dump was not loaded through the master pod"
    );
    let tables = lab
        .db_digest
        .keys()
        .filter(|k| k.starts_with("table "))
        .count();
    let rows = Postgres::row_count(&lab.db_digest);

    // ---- Failure drills of restore-postgres: a real failure right after each risky step.
    let mut drills = Vec::new();
    let before = lab.pg.digest();

    // 1. scale-down itself fails halfway (one component may not be scaled).
    lab.cluster.reset(&["scale deployment/alertgate-sender"]);
    let ran = lab.restore_postgres(&backup, &dump);
    failed_step(&ran, "scale-down", "scale-down refused");
    assert!(
        !scaled_down(&lab).is_empty(),
        "drill dop: nothing was scaled down before the refusal"
    );
    check_components(&lab, "scale-down refused");
    assert_eq!(
        lab.cluster.cronjobs().len(),
        4,
        "drill dop: cronjobs deleted after a failed scale-down"
    );
    check_db_untouched(&lab, "scale-down refused", &before);
    drills.push("scale-down");

    // 2. the step right after scale-down (the cronjobs' deletion) is refused: the database
    // is intact, so the cleanup scales the components back up.
    lab.cluster.reset(&["delete cronjob/host-load"]);
    let ran = lab.restore_postgres(&backup, &dump);
    failed_step(&ran, "delete-cronjobs", "cronjob deletion refused");
    assert_eq!(
        scaled_down(&lab).len(),
        COMPONENTS.len(),
        "drill dop: components were not stopped"
    );
    check_components(&lab, "cronjob deletion refused");
    check_db_untouched(&lab, "cronjob deletion refused", &before);
    drills.push("delete-cronjobs");

    // 3. exec into the master pod is refused: the failure comes after the point of no
    // return, so the components stay stopped (the plan cannot know the drop did not run);
    // the database is unchanged.
    lab.cluster.reset(&[&format!("exec pod/{MASTER}")]);
    let ran = lab.restore_postgres(&backup, &dump);
    failed_step(&ran, "drop-database", "exec refused");
    check_stopped(&lab, "exec refused");
    check_db_untouched(&lab, "exec refused", &before);
    drills.push("drop-database (stay stopped)");

    // 4. a dump the backup does not hold (a valid gzip of a real dump with one statement
    // more, outside the backup folder): refused by dump-in-manifest before anything stops.
    let broken = lab.dir.path().join("broken.dump.gz");
    write_broken_dump(&dump, &broken);
    lab.cluster.reset(&[]);
    let ran = lab.restore_postgres(&backup, &broken);
    failed_step(&ran, "dump-in-manifest", "dump not in the manifest");
    assert!(
        scaled_down(&lab).is_empty(),
        "drill dop: a dump outside the backup still stopped components"
    );
    check_db_untouched(&lab, "dump not in the manifest", &before);
    // The same bytes substituted inside the backup folder: the SHA-256 differs.
    let swapped_dir = lab.dir.path().join("swapped");
    let swapped = backup_with_dump(&swapped_dir, &dump, None);
    std::fs::copy(&broken, &swapped).expect("swap the dump");
    let ran = lab.restore_postgres(&swapped_dir, &swapped);
    failed_step(&ran, "dump-in-manifest", "dump changed after the backup");
    assert!(scaled_down(&lab).is_empty());
    check_db_untouched(&lab, "dump changed after the backup", &before);
    drills.push("dump-in-manifest");

    // 5. a dump the backup's manifest lists but that fails in psql partway: loaded after
    // the drop. The components stay stopped on the half-loaded database.
    let listed_dir = lab.dir.path().join("listed-broken");
    let listed = backup_with_dump(&listed_dir, &broken, None);
    lab.cluster.reset(&[]);
    let ran = lab.restore_postgres(&listed_dir, &listed);
    let error = failed_step(&ran, "load-dump", "broken dump");
    assert!(
        error.contains("exited with code") && error.contains("drill_injected_failure"),
        "drill dop: load-dump error does not name psql's failure: {error}"
    );
    assert_eq!(ran.status("drop-database"), "succeeded");
    check_stopped(&lab, "broken dump");
    assert_ne!(
        lab.pg.digest(),
        lab.db_digest,
        "drill dop: the broken dump loaded completely"
    );
    drills.push("load-dump (stay stopped)");
    // The operator's next step (docs/plans/dop.md): fix the cause, scale the components back
    // to the counts in the failed run's scale-down outputs, re-run with the good dump.
    lab.cluster.reset(&[]);
    let ran = lab.restore_postgres(&backup, &dump);
    assert_eq!(
        ran.code,
        0,
        "drill dop: restore after the broken dump failed:\n{}",
        ran.all()
    );
    assert_eq!(
        lab.pg.digest(),
        lab.db_digest,
        "drill dop: database after the second restore"
    );
    check_components(&lab, "restore after the broken dump");

    // 5b. a dump that loads without error but lost the rows of one table (its COPY block
    // emptied) in a generation whose manifest records the facts of the real dump: the
    // restored database lacks rows the backup recorded, and facts-match fails naming the
    // table and both counts. The database is loaded, so the components are scaled back.
    let alerts = lab
        .db_digest
        .get("table alerts")
        .and_then(|v| v.split(' ').next())
        .and_then(|n| n.parse::<u64>().ok())
        .expect("drill dop: the dumped database has alerts");
    assert!(
        alerts > 0,
        "drill dop: the dumped database has no alert rows"
    );
    let short = lab.dir.path().join("short.dump.gz");
    write_gz(&short, &without_rows(&read_gz(&dump), "public.alerts"));
    let short_dir = lab.dir.path().join("short");
    let short = backup_with_dump(&short_dir, &short, Some(&facts));
    lab.cluster.reset(&[]);
    let ran = lab.restore_postgres(&short_dir, &short);
    let error = failed_step(&ran, "facts-match", "rows lost in the restore");
    assert!(
        error.contains(&format!(
            "pg_rows:{BACKUP}/{DUMP} public.alerts: {alerts} recorded, 0 restored"
        )),
        "drill dop: facts-match does not name the lost rows: {error}"
    );
    assert_eq!(
        error.matches(" recorded, ").count(),
        1,
        "drill dop: facts-match names more than the lost rows: {error}"
    );
    check_components(&lab, "rows lost in the restore");
    drills.push("facts-match");
    lab.cluster.reset(&[]);
    let ran = lab.restore_postgres(&backup, &dump);
    assert_eq!(
        ran.code,
        0,
        "drill dop: restore after the lost rows failed:\n{}",
        ran.all()
    );
    assert_eq!(lab.pg.digest(), lab.db_digest);

    // 6. a truncated dump: refused before anything is stopped.
    let truncated = lab.dir.path().join("truncated.dump.gz");
    let data = std::fs::read(&dump).expect("read dump");
    std::fs::write(&truncated, &data[..data.len() / 2]).expect("write truncated dump");
    lab.cluster.reset(&[]);
    let ran = lab.restore_postgres(&backup, &truncated);
    failed_step(&ran, "dump-readable", "truncated dump");
    assert!(
        scaled_down(&lab).is_empty(),
        "drill dop: a truncated dump still stopped components"
    );
    assert_eq!(lab.cluster.cronjobs().len(), 4);
    check_components(&lab, "truncated dump");
    check_db_untouched(&lab, "truncated dump", &lab.db_digest);
    drills.push("dump-readable");

    // 7. a dump too small to be one (valid gzip of almost nothing): refused by dump-size.
    let tiny = lab.dir.path().join("tiny.dump.gz");
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(b"-- empty\n").expect("gzip");
    std::fs::write(&tiny, enc.finish().expect("gzip")).expect("write tiny dump");
    lab.cluster.reset(&[]);
    let ran = lab.restore_postgres(&backup, &tiny);
    let error = failed_step(&ran, "dump-size", "tiny dump");
    assert!(
        error.contains(tiny.display().to_string().trim_start_matches('/')),
        "drill dop: dump-size does not name the dump: {error}"
    );
    assert!(
        lab.cluster.calls().is_empty(),
        "drill dop: a tiny dump still reached the cluster"
    );
    check_components(&lab, "tiny dump");
    drills.push("dump-size");

    // 8. nothing recreates the cronjobs: the restore succeeds but the run fails at
    // cronjobs-back, naming the wait (scheduled dumps would otherwise stop silently).
    lab.cluster.reset(&[]);
    let ran = lab.restore_postgres_with(&backup, &dump, &[("cronjobs_deadline", "3s".into())]);
    let error = failed_step(&ran, "cronjobs-back", "cronjobs not back");
    check_components(&lab, "cronjobs not back");
    assert_eq!(lab.pg.digest(), lab.db_digest);
    assert_eq!(
        lab.cluster.cronjobs(),
        vec!["unrelated-report".to_string()],
        "drill dop: cronjobs not back"
    );
    drills.push("cronjobs-back");
    let cronjob_error = error;

    // The cost of a second backup of unchanged data against the first (issue 12): two
    // backups back to back; the S3 sync cannot reuse the previous generation.
    let second_backup = crate::common::second_backup_cost(|what| {
        let ran = lab.backup();
        assert_eq!(ran.code, 0, "drill dop: {what} failed:\n{}", ran.all());
        latest_generation(&lab.backup_dir())
    });

    let line = format!(
        "drill dop: ok (backup {files} files, {:.1} MiB checked; {second_backup}; block report {}/{}/1 then {}/{}/0 complete/partial/corrupted, corrupted block named after one re-sync; restore equal: {}, postgres {rows} rows in {tables} tables, cronjobs back; {} failure drills ok: {}) [real: moto_server S3, PostgreSQL 15, psql, gzip; stand-ins: kubectl and the cluster (tests/standins/kubectl), the module's cronjob reconciliation (the drill), Ceph RGW (moto)]",
        bytes as f64 / (1024.0 * 1024.0),
        seed.complete,
        seed.partial,
        seed.complete + 1,
        seed.partial,
        restored.join(", "),
        drills.len(),
        drills.join(", ")
    );
    let _ = writeln!(std::io::stderr().lock(), "{line}");
    let bucket_facts: Vec<String> = [MIMIR, LOKI, BACKUP]
        .iter()
        .map(|b| {
            format!(
                "{b} {} objects {} bytes",
                facts["values"][format!("objects:{b}")],
                facts["values"][format!("bytes:{b}")]
            )
        })
        .collect();
    let _ = writeln!(
        std::io::stderr().lock(),
        "  facts recorded per bucket (compared at least after each bucket restore): {}",
        bucket_facts.join(", ")
    );
    let _ = writeln!(std::io::stderr().lock(), "{lost}");
    let _ = writeln!(
        std::io::stderr().lock(),
        "  failure drill dop/restore-postgres, cronjobs not back: {cronjob_error}"
    );
}

/// Restore the logs bucket with one object deleted behind the upload's back; returns the
/// failure drill's report line.
fn lab_lost_object(lab: &Lab) -> String {
    let want = lab.seed.expected("loki", true);
    let (victim, data) = want
        .iter()
        .find(|(k, _)| !k.ends_with("meta.json"))
        .map(|(k, v)| (k.clone(), v.len()))
        .expect("drill dop: the seed has a log object");
    lab.moto.wipe(LOKI);
    let stop = std::sync::atomic::AtomicBool::new(false);
    let (ran, deleted) = std::thread::scope(|scope| {
        let actor = scope.spawn(|| {
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                if lab.moto.keys(LOKI).contains(&victim) {
                    lab.moto.delete(LOKI, &victim);
                    return true;
                }
                std::thread::sleep(Duration::from_millis(2));
            }
            false
        });
        let mut sets = lab.s3_sets();
        sets.extend([
            ("bucket", LOKI.to_string()),
            ("source_folder", LOKI.to_string()),
            ("parallel", "1".to_string()),
        ]);
        let ran = lab.run("restore-logs", &sets);
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        (ran, actor.join().expect("actor thread"))
    });
    assert!(deleted, "drill dop: the actor never saw {victim} uploaded");
    assert_eq!(
        ran.status("restore.upload"),
        "succeeded",
        "drill dop: lost object: the upload itself failed:\n{}",
        ran.all()
    );
    let error = failed_step(&ran, "restore.facts-match", "a restore that lost an object");
    let n = want.len();
    let bytes: usize = want.values().map(Vec::len).sum();
    for named in [
        format!("objects:{LOKI}"),
        format!("bytes:{LOKI}"),
        n.to_string(),
        (n - 1).to_string(),
        bytes.to_string(),
        (bytes - data).to_string(),
    ] {
        assert!(
            error.contains(&named),
            "drill dop: lost object: facts-match does not name `{named}`: {error}"
        );
    }
    format!("  failure drill dop/restore-logs, an object lost after the upload ({victim}): {error}")
}

/// The facts section of the latest generation's manifest: for each dump, its tables and the
/// rows per table, equal to what the lab database held when DUMP was made (`db_digest`); for
/// each bucket, the objects and bytes of its copy (objects:<bucket>, bytes:<bucket>).
fn check_recorded_facts(lab: &Lab) -> serde_json::Value {
    let root = latest_generation(&lab.backup_dir());
    let text = std::fs::read_to_string(root.join(MANIFEST)).expect("manifest");
    let manifest: serde_json::Value = serde_json::from_str(&text).expect("manifest is JSON");
    let facts = manifest["facts"].clone();
    assert_eq!(
        facts["format_version"], 1,
        "drill dop: manifest facts: {facts}"
    );
    let values = facts["values"]
        .as_object()
        .expect("drill dop: no facts recorded");
    let mut want_keys: Vec<String> = [OLD_DUMP, DUMP]
        .iter()
        .flat_map(|d| {
            [
                format!("pg_rows:{BACKUP}/{d}"),
                format!("pg_tables:{BACKUP}/{d}"),
            ]
        })
        .chain(
            [MIMIR, LOKI, BACKUP]
                .iter()
                .flat_map(|b| [format!("objects:{b}"), format!("bytes:{b}")]),
        )
        .collect();
    let mut copies: Vec<(&str, BTreeMap<String, Vec<u8>>)> = vec![
        (MIMIR, lab.seed.expected("mimir", true)),
        (LOKI, lab.seed.expected("loki", true)),
    ];
    copies.push((BACKUP, lab.dumps.clone()));
    for (bucket, objects) in &copies {
        let bytes: usize = objects.values().map(Vec::len).sum();
        assert_eq!(
            (
                &values[&format!("objects:{bucket}")],
                &values[&format!("bytes:{bucket}")]
            ),
            (&serde_json::json!(objects.len()), &serde_json::json!(bytes)),
            "drill dop: recorded objects and bytes of {bucket} (its copy in the generation)"
        );
    }
    want_keys.sort();
    assert_eq!(
        values.keys().cloned().collect::<Vec<_>>(),
        want_keys,
        "drill dop: facts recorded"
    );
    let rows = &values[&format!("pg_rows:{BACKUP}/{DUMP}")];
    for (k, v) in &lab.db_digest {
        let Some(table) = k.strip_prefix("table ") else {
            continue;
        };
        let n: u64 = v
            .split(' ')
            .next()
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
        assert_eq!(
            rows[format!("public.{table}")],
            n,
            "drill dop: recorded rows of {table} ({v} in the dumped database)"
        );
    }
    facts
}

fn read_gz(path: &Path) -> String {
    let mut text = String::new();
    std::io::Read::read_to_string(
        &mut flate2::read::GzDecoder::new(std::fs::File::open(path).expect("open dump")),
        &mut text,
    )
    .expect("gunzip dump");
    text
}

fn write_gz(path: &Path, text: &str) {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(text.as_bytes()).expect("gzip");
    std::fs::write(path, enc.finish().expect("gzip")).expect("write dump");
}

/// A plain dump with the data lines of `table`'s COPY block removed (the block stays, empty).
fn without_rows(dump: &str, table: &str) -> String {
    let start = format!("COPY {table} ");
    let mut out = String::new();
    let mut inside = false;
    for line in dump.split_inclusive('\n') {
        if inside {
            if line.trim_end_matches('\n') == "\\." {
                inside = false;
            } else {
                continue;
            }
        } else if line.starts_with(&start) {
            inside = true;
        }
        out.push_str(line);
    }
    assert!(
        out.len() < dump.len(),
        "drill dop: no COPY block of {table} in the dump"
    );
    out
}

/// The four components are at 0 (left stopped by a failed restore), `ui` untouched.
fn check_stopped(lab: &Lab, drill: &str) {
    let mut want = Cluster::original();
    for (c, _) in COMPONENTS {
        want.insert(c.to_string(), 0);
    }
    assert_eq!(
        lab.cluster.replicas(),
        want,
        "drill dop: {drill}: the components must stay stopped after a failure from the drop on"
    );
}

/// The dump with a failing statement before the silences' data: valid gzip, plausible size,
/// so only psql (ON_ERROR_STOP) can notice.
fn write_broken_dump(good: &Path, out: &Path) {
    let mut sql = String::new();
    flate2::read::GzDecoder::new(std::fs::File::open(good).expect("open dump"))
        .read_to_string(&mut sql)
        .expect("gunzip dump");
    let at = sql
        .find("COPY public.silences")
        .expect("the dump loads the silences table");
    sql.insert_str(at, "SELECT drill_injected_failure();\n");
    let mut enc = flate2::write::GzEncoder::new(
        std::fs::File::create(out).expect("create broken dump"),
        flate2::Compression::default(),
    );
    enc.write_all(sql.as_bytes()).expect("write broken dump");
    enc.finish().expect("finish broken dump");
}

/// The dop recipes of docs/reference/drill.md (logs and metrics), run end to end exactly as
/// written there, with its params files as written there pointed at the lab: moto is both
/// the live and the staging endpoint, the staging buckets are `lab-loki-drill` and
/// `lab-mimir-drill`. Each drill backs up the live buckets into a generation of its own
/// location, verifies it, restores the store into the staging bucket and passes; the
/// staging bucket then holds every object the backup keeps of the live one (the seed's
/// expectation, byte for byte), and the live bucket is untouched.
#[test]
fn drill_dop_recipes() {
    let _lab = crate::common::one_at_a_time();
    let lab = Lab::start();
    // The seed's corrupted block made whole: the recipe drills a healthy system.
    lab.moto.put(
        MIMIR,
        &lab.seed.missing_chunk.key,
        &lab.seed.missing_chunk.data,
    );
    let etc = lab.dir.path().join("etc");
    let log = lab.dir.path().join("log");
    for d in [&etc, &log] {
        std::fs::create_dir_all(d).expect("mkdir");
    }
    let location = lab.dir.path().join("dop-drill");
    let endpoint = lab.moto.endpoint();
    // The recipe's params files, pointed at the lab; its endpoint is plain http.
    let s3 = |k: &'static str, v: String| (k, v);
    let lab_s3 = [
        s3("backup_dir", location.display().to_string()),
        s3("s3_endpoint", endpoint.clone()),
        s3("s3_allow_http", "true".into()),
    ];
    let mut backup_params = lab_s3.to_vec();
    backup_params.extend([
        s3("mimir_bucket", MIMIR.into()),
        s3("loki_bucket", LOKI.into()),
        s3("backup_bucket", BACKUP.into()),
    ]);
    std::fs::write(
        etc.join("dop-backup.yaml"),
        crate::common::recipe_params("dop-backup.yaml", &backup_params),
    )
    .expect("write params");
    let mut lines = Vec::new();
    for (recipe, store, live, role) in [
        ("dop-logs", "logs", LOKI, "loki"),
        ("dop-metrics", "metrics", MIMIR, "mimir"),
    ] {
        let staging = format!("{live}-drill");
        lab.moto.create_bucket(&staging);
        let file = format!("dop-restore-{store}.yaml");
        let mut restore_params = lab_s3.to_vec();
        restore_params.extend([
            s3("bucket", staging.clone()),
            s3("source_folder", live.into()),
        ]);
        std::fs::write(
            etc.join(&file),
            crate::common::recipe_params(&file, &restore_params),
        )
        .expect("write params");
        let live_before = lab.moto.objects(live);
        let args = crate::common::recipe(recipe, &etc, &log);
        let ran = opsplan(&args, &lab.env(), Duration::from_secs(600));
        assert_eq!(
            ran.code,
            0,
            "drill {recipe}: the recipe failed (exit {}):\n{}",
            ran.code,
            ran.all()
        );
        let result = ran.stdout.trim();
        assert!(
            result.starts_with("drill ok: plans/dop/backup.yaml -> plans/dop/"),
            "drill {recipe}: no `drill ok` line: {result}"
        );
        let report: serde_json::Value = serde_json::from_slice(
            &std::fs::read(log.join(format!("drill-{recipe}.json"))).expect("read the report"),
        )
        .expect("parse the report");
        assert_eq!(report["result"], "ok", "drill {recipe}: report {report:#}");
        let phases: Vec<(String, String)> = report["phases"]
            .as_array()
            .expect("phases")
            .iter()
            .map(|p| {
                (
                    p["phase"].as_str().unwrap_or_default().to_string(),
                    p["status"].as_str().unwrap_or_default().to_string(),
                )
            })
            .collect();
        let want: Vec<(String, String)> = ["backup", "verify", "restore"]
            .iter()
            .map(|p| (p.to_string(), "succeeded".to_string()))
            .collect();
        assert_eq!(phases, want, "drill {recipe}: phases");
        assert_eq!(
            report["target"][1]["restore_value"], staging,
            "drill {recipe}: target {report:#}"
        );
        let restored = lab.moto.objects(&staging);
        // What the backup keeps of the live bucket (the page's excludes: blocks marked for
        // deletion, markers, the bucket index), the seed made whole.
        let want = lab.seed.expected(role, true);
        if let Some(diff) = differences(&format!("{staging} after the drill"), &want, &restored) {
            panic!("drill {recipe}: the staging bucket is not the backed-up live one: {diff}");
        }
        assert_eq!(
            lab.moto.objects(live),
            live_before,
            "drill {recipe}: the drill changed the live bucket {live}"
        );
        lines.push(format!(
            "{recipe} {} objects in {:.1}s",
            restored.len(),
            ran.elapsed.as_secs_f64()
        ));
    }
    let line = format!(
        "drill recipes: dop logs and metrics ok, run end to end as written in docs/reference/drill.md ({}) [real: moto_server S3; stand-ins: Ceph RGW (moto)]",
        lines.join(", ")
    );
    // Past the harness's capture, as the drill's own line.
    let _ = writeln!(std::io::stderr().lock(), "{line}");
}
