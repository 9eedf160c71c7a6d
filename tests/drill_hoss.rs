//! Restore drill for Hoss (issue 6): the shipped plans/hoss/backup.yaml and restore.yaml run
//! through the real binary against a real PostgreSQL 15 and a real OpenLDAP slapd, with a
//! ~/.hoss folder (configuration, private keys, object store data, search index snapshots)
//! in a temp dir. The Hoss server itself is a stand-in (tests/lab/hoss/Makefile for
//! `make up`/`make restart`, tests/lab/hoss/health-server.py for the health URL).
//!
//! Cycle: seed -> backup -> check the archive (mode 0600, every file against the manifest,
//! contents against the seed) -> wipe (clean working dir, tables dropped, LDAP entries
//! deleted) -> restore -> compare tables (rows and checksums), LDAP entries (normalised
//! ldapsearch output) and configuration files (sha256 and modes) with the seed. Failure
//! drills: slapd stopped while a backup runs (fails after `staging` acquired .current:
//! .current must be gone, no archive added); PostgreSQL stopped while a restore runs (fails
//! after `unpack` acquired the scratch folder: it must be gone). Prints one line:
//! `drill hoss: ...`.

/// A drill result line, written past the test harness's capture so CI shows it.
macro_rules! report {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, $($arg)*);
    }};
}

#[path = "lab/common.rs"]
mod common;
#[path = "lab/hoss/lab.rs"]
mod lab;

use common::{diff_maps, entries_with_prefix, held_locks, opsplan, repo_root, size_text, Ran};
use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

const DB_PASSWORD: &str = "hoss-db-pw-5e1f";
const LDAP_PASSWORD: &str = "hoss-ldap-pw-77ad";
const SUFFIX: &str = "dc=hoss,dc=local";
const ROWS: usize = 500;
const PEOPLE: usize = 40;

struct Lab {
    root: tempfile::TempDir,
    pg: lab::Pg,
    ldap: lab::Slapd,
    health_port: u16,
    _server: lab::ServerGuard,
}

impl Lab {
    fn state(&self) -> PathBuf {
        self.root.path().join("state")
    }
    fn hoss(&self) -> PathBuf {
        self.root.path().join("home/.hoss")
    }
    fn backup_root(&self) -> PathBuf {
        self.hoss().join("backup")
    }
    fn server(&self) -> PathBuf {
        self.root.path().join("hoss/server")
    }

    fn run(&self, plan: &str, sets: &[(&str, String)]) -> Ran {
        let mut cmd = opsplan(&self.state());
        cmd.arg("run")
            .arg(repo_root().join("plans/hoss").join(plan));
        for (k, v) in sets {
            cmd.args(["--set", &format!("{k}={v}")]);
        }
        cmd.args(["--force", "--yes"])
            .env("HOSS_DB_PASSWORD", DB_PASSWORD)
            .env("HOSS_LDAP_PASSWORD", LDAP_PASSWORD);
        let ran = Ran::from(cmd.output().expect("run opsplan"));
        if std::env::var_os("DRILL_SHOW_RUNS").is_some() {
            eprintln!("--- opsplan run {plan} (exit {}):\n{}", ran.code, ran.out);
        }
        ran
    }

    fn common_sets(&self) -> Vec<(&'static str, String)> {
        vec![
            ("hoss_dir", self.hoss().display().to_string()),
            ("db_host", "127.0.0.1".into()),
            ("db_port", self.pg.port.to_string()),
            ("ldap_uri", self.ldap.uri()),
            ("ldap_bind_dn", self.ldap.admin_dn.clone()),
        ]
    }

    fn backup(&self) -> Ran {
        let mut sets = self.common_sets();
        sets.push(("backup_root", self.backup_root().display().to_string()));
        sets.push(("ldap_base", SUFFIX.into()));
        sets.push((
            "search_index_dir",
            self.backup_root().join(".opensearch").display().to_string(),
        ));
        self.run("backup.yaml", &sets)
    }

    fn restore(&self, archive: &Path) -> Ran {
        let mut sets = self.common_sets();
        sets.push(("archive", archive.display().to_string()));
        sets.push(("server_dir", self.server().display().to_string()));
        sets.push((
            "health_url",
            format!("http://127.0.0.1:{}/core/v1/health", self.health_port),
        ));
        sets.push(("up_deadline", "60s".into()));
        sets.push((
            "search_index_dir",
            self.backup_root().join(".opensearch").display().to_string(),
        ));
        self.run("restore.yaml", &sets)
    }

    fn archives(&self) -> Vec<PathBuf> {
        let mut v: Vec<PathBuf> = entries_with_prefix(&self.backup_root().join("backups"), "")
            .into_iter()
            .map(|n| self.backup_root().join("backups").join(n))
            .collect();
        v.sort();
        v
    }

    /// Configuration files of ~/.hoss (what the backup takes): sha256, size and mode.
    fn config(&self) -> BTreeMap<String, String> {
        let hoss = self.hoss();
        common::tree_digest(&hoss, |rel| {
            rel.starts_with("backup") || rel.starts_with("data") || rel.starts_with(".restore-")
        })
        .into_iter()
        .map(|(k, (sha, size))| {
            let mode = std::fs::metadata(hoss.join(&k))
                .map(|m| m.permissions().mode() & 0o7777)
                .unwrap_or(0);
            (k, format!("sha256 {sha}, {size} bytes, mode {mode:04o}"))
        })
        .collect()
    }

    fn tree(&self, rel: &str) -> BTreeMap<String, (String, u64)> {
        common::tree_digest(&self.hoss().join(rel), |_| false)
    }

    /// The working directory made "clean" as the page asks: only backup/ and data/ stay.
    fn clean_working_dir(&self) {
        for e in std::fs::read_dir(self.hoss())
            .expect("read ~/.hoss")
            .flatten()
        {
            let n = e.file_name();
            if n == "backup" || n == "data" {
                continue;
            }
            let p = e.path();
            if p.is_dir() {
                std::fs::remove_dir_all(&p).expect("remove");
            } else {
                std::fs::remove_file(&p).expect("remove");
            }
        }
    }
}

/// Extracts the archive with the system's tar and checks every file against the manifest
/// inside it (sha256, size; nothing unlisted). Returns (files, bytes) and the folder.
fn check_archive(archive: &Path, into: &Path) -> Result<(u64, u64), String> {
    std::fs::create_dir_all(into).map_err(|e| e.to_string())?;
    common::output_of(
        Command::new("tar")
            .arg("-xzf")
            .arg(archive)
            .arg("-C")
            .arg(into),
    )?;
    let manifest: serde_json::Value = serde_json::from_slice(
        &std::fs::read(into.join("opsplan-manifest.json"))
            .map_err(|e| format!("the archive has no opsplan-manifest.json at its top: {e}"))?,
    )
    .map_err(|e| format!("manifest is not JSON: {e}"))?;
    let mut listed = BTreeMap::new();
    for f in manifest["files"]
        .as_array()
        .ok_or("manifest has no files")?
    {
        if f["type"] == "file" {
            listed.insert(
                f["path"].as_str().unwrap_or_default().to_string(),
                (
                    f["sha256"].as_str().unwrap_or_default().to_string(),
                    f["size"].as_u64().unwrap_or(u64::MAX),
                ),
            );
        }
    }
    let on_disk = common::tree_digest(into, |rel| rel == Path::new("opsplan-manifest.json"));
    let diffs = diff_maps("archive file", &listed, &on_disk);
    if !diffs.is_empty() {
        return Err(diffs.join("\n"));
    }
    let bytes = on_disk.values().map(|(_, s)| s).sum();
    Ok((on_disk.len() as u64, bytes))
}

#[test]
fn drill_hoss() {
    let missing = lab::missing_tools();
    if !missing.is_empty() {
        report!(
            "drill hoss: cannot run here: missing {}",
            missing.join(", ")
        );
        panic!("drill hoss cannot run: missing {}", missing.join(", "));
    }

    // ------------------------------------------------------------------ lab and seed
    let root = tempfile::tempdir().expect("temp dir");
    let pg = lab::Pg::start();
    let ldap = lab::Slapd::start(SUFFIX, LDAP_PASSWORD);
    let health_port = common::free_port();
    let server_dir = root.path().join("hoss/server");
    lab::server_dir(&server_dir, health_port);
    let mut lab = Lab {
        root,
        pg,
        ldap,
        health_port,
        _server: lab::ServerGuard(server_dir),
    };
    lab::seed_hoss_dir(&lab.hoss(), DB_PASSWORD);
    lab::seed_db(&lab.pg, DB_PASSWORD, ROWS);
    lab.ldap.add(&lab::seed_ldif(SUFFIX, PEOPLE));

    let seed_db = lab::db_digest(&lab.pg, DB_PASSWORD);
    let seed_ldap = lab.ldap.entries();
    let seed_config = lab.config();
    let seed_nas = lab.tree("data");
    let seed_search = lab.tree("backup/.opensearch");
    assert_eq!(seed_ldap.len(), 4 + PEOPLE + 2, "seeded LDAP entries");

    // ------------------------------------------------------------------ backup
    let ran = lab.backup();
    ran.expect_code(0, "hoss-backup");
    let archives = lab.archives();
    assert_eq!(
        archives.len(),
        1,
        "one archive in backups/ after the backup, found {archives:?}"
    );
    let archive = archives[0].clone();
    let mode = std::fs::metadata(&archive)
        .expect("archive")
        .permissions()
        .mode()
        & 0o7777;
    assert_eq!(
        mode, 0o600,
        "the archive holds private keys: mode must be 0600, is {mode:04o}"
    );
    assert!(
        !lab.backup_root().join(".current").exists(),
        "hoss-backup left {}/.current behind",
        lab.backup_root().display()
    );
    assert!(
        entries_with_prefix(&lab.backup_root(), ".verify-").is_empty(),
        "hoss-backup left its verify scratch folder"
    );

    // The archive on its own: manifest, then contents against the seed.
    let unpacked = lab.root.path().join("unpacked");
    let (files, bytes) = check_archive(&archive, &unpacked)
        .unwrap_or_else(|e| panic!("archive {}: {e}", archive.display()));
    let mut problems = Vec::new();
    let archived_config: BTreeMap<_, _> = common::tree_digest(&unpacked.join("config"), |_| false)
        .into_iter()
        .collect();
    let seed_config_files: BTreeMap<_, _> = common::tree_digest(&lab.hoss(), |rel| {
        rel.starts_with("backup") || rel.starts_with("data")
    });
    problems.extend(diff_maps(
        "archived config",
        &seed_config_files,
        &archived_config,
    ));
    problems.extend(diff_maps(
        "archived search index",
        &seed_search,
        &common::tree_digest(&unpacked.join("search"), |_| false),
    ));
    let archived_ldap = lab::normalise_ldif(
        &std::fs::read_to_string(unpacked.join("ldap/data.ldif")).unwrap_or_default(),
    );
    problems.extend(diff_maps("archived LDAP entry", &seed_ldap, &archived_ldap));
    let toc = common::output_of(
        Command::new("pg_restore")
            .arg("--list")
            .arg(unpacked.join("db/hoss.dump")),
    )
    .unwrap_or_else(|e| panic!("the archived dump is not readable by pg_restore: {e}"));
    for t in lab::TABLES {
        if !toc.contains(&format!("TABLE DATA public {t} ")) {
            problems.push(format!("archived dump: no data for table {t}"));
        }
    }
    for excluded in ["config/data", "config/backup"] {
        let inside = common::tree_digest(&unpacked.join(excluded), |_| false);
        if !inside.is_empty() {
            problems.push(format!(
                "the archive holds {} files under {excluded} (object store data or backups)",
                inside.len()
            ));
        }
    }
    assert!(
        problems.is_empty(),
        "drill hoss: the backup differs from the seed:\n{}",
        problems.join("\n")
    );

    // ------------------------------------------------------------------ wipe
    lab.clean_working_dir();
    // The page has the operator remove ~/.hoss/backup/.opensearch too before a restore.
    std::fs::remove_dir_all(lab.backup_root().join(".opensearch")).expect("wipe .opensearch");
    lab::wipe_db(&lab.pg, DB_PASSWORD);
    lab.ldap.delete_below_suffix();
    assert_ne!(
        lab::db_digest(&lab.pg, DB_PASSWORD),
        seed_db,
        "the wipe changed the database"
    );
    assert_eq!(
        lab.ldap.entries().len(),
        1,
        "only the suffix entry is left after the wipe"
    );

    // ------------------------------------------------------------------ restore
    let ran = lab.restore(&archive);
    ran.expect_code(0, "hoss-restore");
    let mut diffs = Vec::new();
    diffs.extend(diff_maps(
        "database",
        &seed_db,
        &lab::db_digest(&lab.pg, DB_PASSWORD),
    ));
    diffs.extend(diff_maps("LDAP entry", &seed_ldap, &lab.ldap.entries()));
    diffs.extend(diff_maps("config file", &seed_config, &lab.config()));
    diffs.extend(diff_maps(
        "object store file (must be untouched)",
        &seed_nas,
        &lab.tree("data"),
    ));
    diffs.extend(diff_maps(
        "search index snapshot",
        &seed_search,
        &lab.tree("backup/.opensearch"),
    ));
    if !entries_with_prefix(&lab.hoss(), ".restore-").is_empty() {
        diffs.push("hoss-restore left its scratch folder .restore-* in ~/.hoss".into());
    }
    let mut restarts: Vec<String> = std::fs::read_to_string(lab.server().join("restarts.log"))
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect();
    restarts.sort();
    if restarts != ["core", "sync"] {
        diffs.push(format!(
            "services restarted: {restarts:?}, expected core and sync"
        ));
    }
    assert!(
        diffs.is_empty(),
        "drill hoss: the restore differs from the seed:\n{}",
        diffs.join("\n")
    );
    let restored_rows: u64 = seed_db
        .iter()
        .filter(|(k, _)| k.starts_with("table "))
        .filter_map(|(_, v)| v.split(' ').next()?.parse::<u64>().ok())
        .sum();
    lab::stop_server(&lab.server());

    // ------------------------------------------------- failure drill 1: backup, after `staging`
    let mut failure_drills = 0;
    lab.ldap.stop();
    let ran = lab.backup();
    ran.expect_code(1, "hoss-backup with slapd stopped");
    let mut wrong = Vec::new();
    if !ran.out.contains("ldap") {
        wrong.push("the failure does not name the ldap step".to_string());
    }
    if lab.backup_root().join(".current").exists() {
        wrong
            .push(".current was not removed after the failed backup (staging not released)".into());
    }
    if lab.archives() != vec![archive.clone()] {
        wrong.push(format!(
            "backups/ changed after the failed backup: {:?}",
            lab.archives()
        ));
    }
    if !entries_with_prefix(&lab.backup_root(), ".verify-").is_empty() {
        wrong.push("a .verify-* scratch folder is left".into());
    }
    wrong.extend(
        held_locks(&lab.state())
            .into_iter()
            .map(|l| format!("lock left: {l}")),
    );
    assert!(
        wrong.is_empty(),
        "drill hoss: failure drill (backup fails after staging): {}\nrun output:\n{}",
        wrong.join("; "),
        ran.out
    );
    failure_drills += 1;
    lab.ldap.start_again();
    // The next backup is not refused by a leftover .current.
    lab.backup()
        .expect_code(0, "hoss-backup after the failure drill");
    failure_drills += 0;

    // ------------------------------------------------- failure drill 2: restore, after `unpack`
    lab.clean_working_dir();
    lab.pg.stop();
    let ran = lab.restore(&archive);
    lab.pg.start_again();
    lab::stop_server(&lab.server());
    ran.expect_code(1, "hoss-restore with PostgreSQL stopped");
    let mut wrong = Vec::new();
    if !ran.out.contains("database") {
        wrong.push("the failure does not name the database step".to_string());
    }
    let left = entries_with_prefix(&lab.hoss(), ".restore-");
    if !left.is_empty() {
        wrong.push(format!(
            "scratch folder left after the failed restore: {left:?}"
        ));
    }
    wrong.extend(
        held_locks(&lab.state())
            .into_iter()
            .map(|l| format!("lock left: {l}")),
    );
    assert!(
        wrong.is_empty(),
        "drill hoss: failure drill (restore fails after unpack): {}\nrun output:\n{}",
        wrong.join("; "),
        ran.out
    );
    failure_drills += 1;

    report!(
        "drill hoss: ok (backup {files} files, {} checked; restore equal: {} tables {restored_rows} rows, {} LDAP entries, {} config files; {failure_drills} failure drills ok)",
        size_text(bytes),
        lab::TABLES.len(),
        seed_ldap.len(),
        seed_config.len(),
    );
}
