//! Restore drill for Hoss (issues 6 and 11): the shipped plans/hoss/backup.yaml and
//! restore.yaml run through the real binary and drive the hossadm stand-in
//! (tests/lab/hoss/hossadm, written from the vendor contract in docs/plans/hoss.md) against
//! the Hoss lab (tests/lab/hoss/lab.rs): real Docker containers and volumes, a real
//! PostgreSQL 15 holding hoss_core and hoss_auth in the `db` container, a real slapd with its
//! data and cn=config in the two LDAP volumes; stand-ins for OpenSearch, the core service's
//! /core/v1/discover, the auth service's key and the server Makefile.
//!
//! Cycle: make up, seed (both databases, LDAP entries, search documents, the auth key,
//! ~/.hoss configuration, object store data) -> hoss-backup -> check the archive on its own
//! (mode 0600, every hossadm part, the manifest next to it) -> the page's reset (make down,
//! make reset, leftovers removed, data/nas kept) -> hoss-restore -> compare every part with
//! the seed. Failure drills: hossadm fails half-way through a backup (.current and the dumps
//! must be gone, no archive); a param carrying `$(touch …)` runs nothing; a restore into a
//! dirty tree (stale data/db), against a repository of another major.minor, and of a
//! tampered archive are refused before hossadm or make runs. Prints one line:
//! `drill hoss: ...`.

/// A drill result line, written past the test harness's capture so CI shows it.
macro_rules! report {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, $($arg)*);
    }};
}

use crate::common;
#[path = "lab/hoss/lab.rs"]
mod lab;

use common::{diff_maps, entries_with_prefix, held_locks, opsplan, size_text, Ran};
use lab::HossLab;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

const ROWS: usize = 400;
const PEOPLE: usize = 30;

fn state(lab: &HossLab) -> PathBuf {
    lab.root.path().join("state")
}

fn run(lab: &HossLab, plan: &str, sets: &[(&str, String)]) -> Ran {
    let mut cmd = opsplan(&state(lab));
    cmd.arg("run")
        .arg(common::repo_root().join("plans/hoss").join(plan));
    for (k, v) in sets {
        cmd.args(["--set", &format!("{k}={v}")]);
    }
    cmd.args(["--force", "--yes"])
        .current_dir(lab.root.path())
        .env("HOME", lab.home())
        .env("HOSSADM_LAB_PROJECT", &lab.project)
        .env("HOSSADM_LAB_POLL", "1");
    let ran = common::run(cmd);
    if std::env::var_os("DRILL_SHOW_RUNS").is_some() {
        eprintln!("--- opsplan run {plan} (exit {}):\n{}", ran.code, ran.all());
    }
    ran
}

fn hossadm() -> String {
    lab::lab_dir().join("hossadm").display().to_string()
}

fn backup(lab: &HossLab, extra: &[(&str, String)]) -> Ran {
    let mut sets = vec![
        ("hoss_dir", lab.hoss().display().to_string()),
        ("endpoint", lab.endpoint()),
        ("hossadm", hossadm()),
        ("db_container", lab.container("db")),
        ("opensearch_container", lab.container("opensearch")),
    ];
    sets.extend(extra.iter().cloned());
    run(lab, "backup.yaml", &sets)
}

fn restore(lab: &HossLab, archive: &Path, extra: &[(&str, String)]) -> Ran {
    let mut sets = vec![
        ("archive", archive.display().to_string()),
        ("hoss_dir", lab.hoss().display().to_string()),
        ("server_dir", lab.server().display().to_string()),
        ("endpoint", lab.endpoint()),
        ("hossadm", hossadm()),
        ("db_container", lab.container("db")),
        ("opensearch_container", lab.container("opensearch")),
        (
            "volumes",
            format!(
                "{},{},{}",
                lab.volume("auth-secrets"),
                lab.volume("ldap-vol0"),
                lab.volume("ldap-vol1")
            ),
        ),
        ("sudo", "[]".into()),
        ("network", lab.network()),
        ("up_deadline", "3m".into()),
    ];
    sets.extend(extra.iter().cloned());
    run(lab, "restore.yaml", &sets)
}

/// The restore's scratch folders and logs (`<archive>.check-*`) left anywhere.
fn scratch_left(lab: &HossLab, archive: &Path) -> Vec<String> {
    let mut v = Vec::new();
    for dir in [archive.parent().expect("backups"), lab.root.path()] {
        v.extend(
            entries_with_prefix(dir, "")
                .into_iter()
                .filter(|n| n.contains(".check-")),
        );
    }
    v
}

fn no_locks(lab: &HossLab, wrong: &mut Vec<String>) {
    wrong.extend(
        held_locks(&state(lab))
            .into_iter()
            .map(|l| format!("lock left: {l}")),
    );
}

fn docker_names(lab: &HossLab) -> Vec<String> {
    let mut v: Vec<String> = Command::new("docker")
        .args(["ps", "-a", "--format", "{{.Names}}", "--filter"])
        .arg(format!("label=org.opsplan.lab.project={}", lab.project))
        .output()
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    v.extend(
        Command::new("docker")
            .args(["volume", "ls", "-q", "-f"])
            .arg(format!("name={}_", lab.project))
            .output()
            .map(|o| {
                String::from_utf8_lossy(&o.stdout)
                    .lines()
                    .map(str::to_string)
                    .collect::<Vec<_>>()
            })
            .unwrap_or_default(),
    );
    v
}

#[test]
fn drill_hoss() {
    let _lab = crate::common::one_at_a_time();
    let missing = lab::missing_tools();
    if !missing.is_empty() {
        report!(
            "drill hoss: cannot run here: missing {}",
            missing.join(", ")
        );
        panic!("drill hoss cannot run: missing {}", missing.join(", "));
    }

    // ------------------------------------------------------------------ lab and seed
    let lab = HossLab::new();
    lab.configure();
    lab.setup();
    lab.up();
    lab.seed(ROWS, PEOPLE);
    let seed_db = lab.db_digest();
    let seed_ldap = lab.ldap_entries().expect("LDAP entries");
    let seed_search = lab.search_digest();
    let seed_key = lab.private_key();
    let seed_config = lab.config_digest();
    let seed_nas = common::tree_digest(&lab.hoss().join("data/nas"), |_| false);
    assert!(
        seed_ldap.len() >= PEOPLE + 4,
        "seeded LDAP entries: {}",
        seed_ldap.len()
    );
    assert_eq!(
        seed_search.get("metadata-index").map(String::as_str),
        Some("12")
    );

    // ------------------------------------------------------------------ backup
    let ran = backup(&lab, &[]);
    ran.expect_code(0, "hoss-backup");
    let archives = lab.archives();
    assert_eq!(
        archives.len(),
        1,
        "one archive in backups/, found {archives:?}"
    );
    let archive = archives[0].clone();
    let mut problems = Vec::new();
    let mode = std::fs::metadata(&archive)
        .expect("archive")
        .permissions()
        .mode()
        & 0o777;
    if mode != 0o600 {
        problems.push(format!(
            "archive mode {mode:03o}, not 600 (it holds private keys)"
        ));
    }
    let sidecar = PathBuf::from(format!("{}.opsplan", archive.display()));
    for f in ["opsplan-manifest.json", "opsplan-backup.json"] {
        if !sidecar.join(f).is_file() {
            problems.push(format!("no {f} in {}", sidecar.display()));
        }
    }
    if lab.backup_root().join(".current").exists() {
        problems.push("hoss-backup left .current".into());
    }
    if !entries_with_prefix(&lab.backup_root().join(".db"), "postgres-").is_empty() {
        problems.push("dumps left in $BACKUP_ROOT/.db".into());
    }
    if !entries_with_prefix(&lab.backup_root(), ".verify-").is_empty() {
        problems.push("hoss-backup left its verify scratch folder".into());
    }
    // The archive on its own, unpacked with the system's tar: hossadm's layout.
    let unpacked = lab.root.path().join("unpacked");
    std::fs::create_dir_all(&unpacked).expect("unpacked");
    common::output_of(
        Command::new("tar")
            .arg("-xzf")
            .arg(&archive)
            .arg("-C")
            .arg(&unpacked),
    )
    .unwrap_or_else(|e| panic!("tar: {e}"));
    let files = common::tree_digest(&unpacked, |_| false);
    let bytes: u64 = files.values().map(|(_, s)| s).sum();
    for part in [
        "version.json",
        "config/.env",
        "config/traefik.yaml",
        "config/core/config.yaml",
        "config/auth/config.yaml",
        "config/sync/config.yaml",
        "config/opensearch/opensearch.yaml",
        "db/postgres-hoss_core-backup.dump",
        "db/postgres-hoss_auth-backup.dump",
        "volumes/auth/private.pem",
        "volumes/ldap-vol0/data.mdb",
        "volumes/ldap-vol1/cn=config.ldif",
    ] {
        if !files.contains_key(part) {
            problems.push(format!("the archive has no {part}"));
        }
    }
    if !files.keys().any(|k| k.starts_with("search/")) {
        problems.push("the archive has no search snapshot".into());
    }
    let not_backed_up: Vec<&String> = seed_config
        .keys()
        .filter(|k| !files.contains_key(&format!("config/{k}")))
        .collect();
    // hossadm backs up .env, traefik.yaml, core/, auth/, sync/, opensearch/ only.
    if not_backed_up.iter().any(|k| !k.starts_with("ui/")) {
        problems.push(format!(
            "configuration not in the archive: {not_backed_up:?}"
        ));
    }
    assert!(
        problems.is_empty(),
        "drill hoss: the backup is wrong:\n{}\nrun:\n{}",
        problems.join("\n"),
        ran.all()
    );

    // ------------------------------------- failure drill 1: hossadm fails half-way (backup)
    let mut failure_drills = 0;
    let sync = lab.hoss().join("sync");
    let sync_aside = lab.root.path().join("sync-aside");
    std::fs::rename(&sync, &sync_aside).expect("move sync/ aside");
    let ran = backup(&lab, &[]);
    std::fs::rename(&sync_aside, &sync).expect("sync/ back");
    ran.expect_code(1, "hoss-backup while hossadm fails");
    let mut wrong = Vec::new();
    if !ran.all().contains("hossadm-backup") {
        wrong.push("the failure does not name hossadm-backup".to_string());
    }
    if lab.backup_root().join(".current").exists() {
        wrong.push(".current left after the failed backup".into());
    }
    if lab.archives() != vec![archive.clone()] {
        wrong.push(format!("backups/ changed: {:?}", lab.archives()));
    }
    no_locks(&lab, &mut wrong);
    assert!(
        wrong.is_empty(),
        "drill hoss: failure drill 1: {}\n{}",
        wrong.join("; "),
        ran.all()
    );
    failure_drills += 1;

    // ------------------------------------- failure drill 2: a param is data, never code
    let pwned = lab.root.path().join("PWNED");
    let ran = backup(&lab, &[("hossadm", "$(touch PWNED)".into())]);
    let mut wrong = Vec::new();
    if ran.code == 0 {
        wrong.push("a backup with hossadm='$(touch PWNED)' succeeded".to_string());
    }
    if pwned.exists() {
        wrong.push("`$(touch PWNED)` in a param ran as code".into());
    }
    if lab.backup_root().join(".current").exists() {
        wrong.push(".current left".into());
    }
    no_locks(&lab, &mut wrong);
    assert!(
        wrong.is_empty(),
        "drill hoss: failure drill 2: {}\n{}",
        wrong.join("; "),
        ran.all()
    );
    failure_drills += 1;

    // ------------------------------------------------------------------ the page's reset
    lab.reset_for_restore();

    // ------------------------------------- failure drills 3-5: refused before hossadm runs
    let refused = |what: &str, ran: &Ran, step: &str| {
        let mut wrong = Vec::new();
        if ran.code != 1 {
            wrong.push(format!("exit {}, expected 1", ran.code));
        }
        if !ran.all().contains(step) {
            wrong.push(format!("the failure does not name {step}"));
        }
        if lab.hoss().join(".env").exists() {
            wrong.push("~/.hoss/.env was written".into());
        }
        if !docker_names(&lab).is_empty() {
            wrong.push(format!(
                "containers or volumes were created: {:?}",
                docker_names(&lab)
            ));
        }
        if !scratch_left(&lab, &archive).is_empty() {
            wrong.push(format!("scratch left: {:?}", scratch_left(&lab, &archive)));
        }
        no_locks(&lab, &mut wrong);
        assert!(
            wrong.is_empty(),
            "drill hoss: failure drill ({what}): {}\n{}",
            wrong.join("; "),
            ran.all()
        );
    };
    // A stale database folder: PostgreSQL would skip the restore script.
    std::fs::create_dir_all(lab.hoss().join("data/db")).expect("data/db");
    std::fs::write(lab.hoss().join("data/db/PG_VERSION"), "13\n").expect("stale");
    let ran = restore(&lab, &archive, &[]);
    std::fs::remove_dir_all(lab.hoss().join("data/db")).expect("unstale");
    refused("stale data/db", &ran, "clean-data");
    failure_drills += 1;
    // A repository at another major.minor.
    lab.set_repository_version("0.4.0");
    let ran = restore(&lab, &archive, &[]);
    lab.set_repository_version(lab::VERSION);
    refused("version gate", &ran, "version-gate");
    failure_drills += 1;
    // A tampered copy of the archive with the real manifest.
    let tampered = lab.root.path().join("tampered.tar.gz");
    let t = tampered_copy(&unpacked, &tampered);
    std::fs::create_dir_all(format!("{}.opsplan", tampered.display())).expect("sidecar");
    for f in ["opsplan-manifest.json", "opsplan-backup.json"] {
        std::fs::copy(
            sidecar.join(f),
            PathBuf::from(format!("{}.opsplan", tampered.display())).join(f),
        )
        .expect("copy sidecar");
    }
    let ran = restore(&lab, &tampered, &[]);
    refused(&format!("tampered archive ({t})"), &ran, "verify-backup");
    failure_drills += 1;

    // ---------------- failure drill 6: hossadm says "Restore Complete" on a database it never
    // loaded. An archive made by hossadm alone (no manifest), whose hoss_auth dump is not a
    // dump: the image's init script fails at it, the container starts again without init.
    let broken = lab.root.path().join("broken.tar.gz");
    let broken_tree = unpacked.with_file_name("broken-tree");
    common::output_of(
        Command::new("cp")
            .arg("-a")
            .arg(&unpacked)
            .arg(&broken_tree),
    )
    .expect("cp -a");
    std::fs::write(
        broken_tree.join("db/postgres-hoss_auth-backup.dump"),
        vec![b'x'; 4096],
    )
    .expect("garbage dump");
    common::output_of(
        Command::new("tar")
            .arg("-czf")
            .arg(&broken)
            .arg("-C")
            .arg(&broken_tree)
            .arg("."),
    )
    .expect("tar");
    let ran = restore(&lab, &broken, &[("verify_manifest", "false".into())]);
    let mut wrong = Vec::new();
    if ran.code != 1 || !ran.all().contains("FAILED db-restored") {
        wrong.push(format!("exit {}, expected 1 at db-restored", ran.code));
    }
    if !ran.all().contains("Restore Complete") {
        wrong.push("hossadm did not report Restore Complete (the point of the drill)".into());
    }
    if !scratch_left(&lab, &broken).is_empty() {
        wrong.push(format!("scratch left: {:?}", scratch_left(&lab, &broken)));
    }
    no_locks(&lab, &mut wrong);
    assert!(
        wrong.is_empty(),
        "drill hoss: failure drill 6 (database not loaded): {}\n{}",
        wrong.join("; "),
        ran.all()
    );
    failure_drills += 1;
    lab.reset_for_restore();

    // ------------------------------------------------------------------ restore
    let ran = restore(&lab, &archive, &[]);
    ran.expect_code(0, "hoss-restore");
    lab.wait_ready();
    let mut diffs = Vec::new();
    diffs.extend(diff_maps("database", &seed_db, &lab.db_digest()));
    diffs.extend(diff_maps(
        "LDAP entry",
        &seed_ldap,
        &lab.ldap_entries().expect("LDAP"),
    ));
    diffs.extend(diff_maps(
        "search index",
        &seed_search,
        &lab.search_digest(),
    ));
    let key = lab.private_key();
    if key != seed_key {
        diffs.push(format!("private key: {key}, seeded {seed_key}"));
    }
    let mut restored_config = lab.config_digest();
    restored_config.remove("core/db-init-scripts/zz-restore-db.sh");
    let mut expected_config = seed_config.clone();
    expected_config.retain(|k, _| !k.starts_with("ui/"));
    diffs.extend(diff_maps("config file", &expected_config, &restored_config));
    diffs.extend(diff_maps(
        "object store file (must be untouched)",
        &seed_nas,
        &common::tree_digest(&lab.hoss().join("data/nas"), |_| false),
    ));
    if !entries_with_prefix(&lab.backup_root().join(".db"), "postgres-").is_empty() {
        diffs.push("dumps (password hashes) left in $BACKUP_ROOT/.db".into());
    }
    if !scratch_left(&lab, &archive).is_empty() {
        diffs.push(format!(
            "hoss-restore left {:?}",
            scratch_left(&lab, &archive)
        ));
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
    let leftover_dumps_removed = ran.all().contains("removed leftover");
    let mut wrong = Vec::new();
    no_locks(&lab, &mut wrong);
    diffs.extend(wrong);
    assert!(
        diffs.is_empty(),
        "drill hoss: the restore differs from the seed:\n{}\nrun:\n{}",
        diffs.join("\n"),
        ran.all()
    );
    let rows: u64 = seed_db
        .values()
        .filter_map(|v| v.split(' ').next()?.parse::<u64>().ok())
        .sum();

    report!(
        "drill hoss: ok (real: Docker containers and volumes, PostgreSQL 15 with hoss_core and hoss_auth, OpenLDAP slapd on volumes ldap-vol0/ldap-vol1, make, busybox; \
         stand-ins: hossadm, the server Makefile, OpenSearch, core /discover, auth key generation; \
         backup {} files, {}; restore equal: {} tables {rows} rows, {} LDAP entries, {} search indices, private key, {} config files (ui/ is not in hossadm's backup){}; \
         {failure_drills} failure drills ok)",
        files.len(),
        size_text(bytes),
        seed_db.len(),
        seed_ldap.len(),
        seed_search.len(),
        expected_config.len(),
        if leftover_dumps_removed { "; the vendor restore script could not remove its dumps, the plan did" } else { "" },
    );
}

/// A gzip'd tar whose content differs from the archive's: the archive unpacked into
/// `unpacked`, one dump cut short, packed again. Returns what was changed.
fn tampered_copy(unpacked: &Path, out: &Path) -> String {
    let dump = unpacked.join("db/postgres-hoss_core-backup.dump");
    let mut b = std::fs::read(&dump).expect("dump");
    b.truncate(b.len() / 2);
    let copy = unpacked.with_file_name("tampered-tree");
    let _ = std::fs::remove_dir_all(&copy);
    common::output_of(Command::new("cp").arg("-a").arg(unpacked).arg(&copy)).expect("cp -a");
    std::fs::write(copy.join("db/postgres-hoss_core-backup.dump"), b).expect("cut dump");
    common::output_of(
        Command::new("tar")
            .arg("-czf")
            .arg(out)
            .arg("-C")
            .arg(&copy)
            .arg("."),
    )
    .expect("tar");
    "hoss_core dump cut to half".into()
}
