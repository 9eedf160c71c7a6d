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
//! tampered archive are refused before hossadm or make runs. Issue 12: the facts the manifest
//! records are the seed's (tables and rows per table of both dumps, indices, LDAP entries,
//! major.minor); two backups in a row leave two archives that verify against their manifests;
//! a backup killed after hossadm wrote its archive leaves both untouched and its own archive
//! without a manifest, which a restore refuses; a restore that loses a table's rows fails at
//! facts-match naming the table and both counts. Prints one line:
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
    let ran = common::run(command(lab, plan, sets));
    if std::env::var_os("DRILL_SHOW_RUNS").is_some() {
        eprintln!("--- opsplan run {plan} (exit {}):\n{}", ran.code, ran.all());
    }
    ran
}

/// `opsplan run plans/hoss/<plan>` with `sets`, as the drill runs it.
fn command(lab: &HossLab, plan: &str, sets: &[(&str, String)]) -> Command {
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
    cmd
}

fn hossadm() -> String {
    lab::lab_dir().join("hossadm").display().to_string()
}

fn backup(lab: &HossLab, extra: &[(&str, String)]) -> Ran {
    run(lab, "backup.yaml", &backup_sets(lab, extra))
}

fn backup_sets<'a>(lab: &HossLab, extra: &[(&'a str, String)]) -> Vec<(&'a str, String)> {
    let mut sets = vec![
        ("hoss_dir", lab.hoss().display().to_string()),
        ("endpoint", lab.endpoint()),
        ("hossadm", hossadm()),
        ("db_container", lab.container("db")),
        ("opensearch_container", lab.container("opensearch")),
        ("ldap_container", lab.container("ldap")),
    ];
    sets.extend(extra.iter().map(|(k, v)| (*k, v.clone())));
    sets
}

fn restore(lab: &HossLab, archive: &Path, extra: &[(&str, String)]) -> Ran {
    run(lab, "restore.yaml", &restore_sets(lab, archive, extra))
}

fn restore_sets<'a>(
    lab: &HossLab,
    archive: &Path,
    extra: &[(&'a str, String)],
) -> Vec<(&'a str, String)> {
    let mut sets = vec![
        ("archive", archive.display().to_string()),
        ("hoss_dir", lab.hoss().display().to_string()),
        ("server_dir", lab.server().display().to_string()),
        ("endpoint", lab.endpoint()),
        ("hossadm", hossadm()),
        ("db_container", lab.container("db")),
        ("opensearch_container", lab.container("opensearch")),
        ("ldap_container", lab.container("ldap")),
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
    sets.extend(extra.iter().map(|(k, v)| (*k, v.clone())));
    sets
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
    let started = std::time::Instant::now();
    let ran = backup(&lab, &[]);
    let first_time = started.elapsed();
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
    let facts = check_recorded_facts(&sidecar, &seed_db, &seed_search, seed_ldap.len());

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

    // ------------- two backups in a row, and one killed halfway (issue 12). hossadm names its
    // archives by the second and never touches an earlier one; each verified backup is an
    // archive with hoss-backup's manifest next to it (<archive>.opsplan/).
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let started = std::time::Instant::now();
    backup(&lab, &[]).expect_code(0, "the second hoss-backup");
    let second_time = started.elapsed();
    let two = lab.archives();
    assert_eq!(two.len(), 2, "drill hoss: two backups in a row: {two:?}");
    for a in &two {
        if let Err(e) = archive_verifies(a) {
            panic!("drill hoss: two backups in a row: {}: {e}", a.display());
        }
    }
    let before: Vec<String> = two.iter().map(|a| sealed_digest(a)).collect();
    // Killed after hossadm wrote its archive, before the manifest: a hossadm wrapper runs the
    // stand-in, then holds (its pid in a file) until the drill has killed the engine.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let hold = lab.root.path().join("hossadm-hold");
    let hold_pid = lab.root.path().join("hossadm-hold.pid");
    std::fs::write(
        &hold,
        format!(
            "#!/bin/sh\n'{}' \"$@\" || exit $?\necho $$ > '{}'\nexec sleep 600\n",
            hossadm(),
            hold_pid.display()
        ),
    )
    .expect("hold wrapper");
    std::fs::set_permissions(&hold, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let running = opsplan_testkit::bin::Running::spawn(command(
        &lab,
        "backup.yaml",
        &backup_sets(&lab, &[("hossadm", hold.display().to_string())]),
    ));
    opsplan_testkit::bin::wait_for(
        std::time::Duration::from_secs(120),
        "hossadm's archive (the hold wrapper's pid)",
        || std::fs::read_to_string(&hold_pid).is_ok_and(|p| p.ends_with('\n')),
    );
    let _ = nix::sys::signal::kill(running.pid(), nix::sys::signal::Signal::SIGKILL);
    if let Ok(p) = std::fs::read_to_string(&hold_pid)
        .unwrap_or_default()
        .trim()
        .parse::<i32>()
    {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(p),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
    let killed = running.wait(std::time::Duration::from_secs(20));
    let mut wrong = Vec::new();
    if killed.signal != Some(9) {
        wrong.push(format!("the backup was not killed ({:?})", killed.signal));
    }
    let after = lab.archives();
    let unsealed: Vec<&PathBuf> = after.iter().filter(|a| !two.contains(a)).collect();
    if unsealed.len() != 1 {
        wrong.push(format!("expected one new archive, found {after:?}"));
    }
    for a in &unsealed {
        if PathBuf::from(format!("{}.opsplan", a.display())).exists() {
            wrong.push(format!(
                "{} has a manifest, it was never verified",
                a.display()
            ));
        }
    }
    let now: Vec<String> = two.iter().map(|a| sealed_digest(a)).collect();
    if now != before {
        wrong.push("the killed backup changed a verified archive or its manifest".into());
    }
    for a in &two {
        if let Err(e) = archive_verifies(a) {
            wrong.push(format!("{} after the kill: {e}", a.display()));
        }
    }
    assert!(
        wrong.is_empty(),
        "drill hoss: a backup killed halfway: {}\n{}",
        wrong.join("; "),
        killed.all()
    );
    // The unverified archive is refused by a restore (past the killed run's stale lock),
    // before anything is written; the verified one is what the restore below uses.
    let unsealed = unsealed[0].clone();
    let mut cmd = command(&lab, "restore.yaml", &restore_sets(&lab, &unsealed, &[]));
    cmd.arg("--break-lock");
    let ran = common::run(cmd);
    let mut wrong = Vec::new();
    if ran.code != 1 || !ran.all().contains("FAILED add-manifest") {
        wrong.push(format!("exit {}, expected 1 at add-manifest", ran.code));
    }
    failed_cleanly(
        &lab,
        &unsealed,
        "the restore of the killed backup's archive",
        wrong,
        &ran,
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
    failed_cleanly(
        &lab,
        &broken,
        "failure drill 6 (database not loaded)",
        wrong,
        &ran,
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
    assert!(
        ran.all().contains("facts-match") && !ran.all().contains("FAILED facts-match"),
        "drill hoss: the restore did not compare its facts:\n{}",
        ran.all()
    );

    // ------------- failure drill 7: a restore that loses a table's rows is caught by the facts.
    // An archive whose hoss_core dump holds every table but none of dataset's rows (made by
    // the server's pg_dump with --exclude-table-data), with hoss-backup's manifest patched
    // for the new dump's size and checksum and its facts unchanged: every file verifies,
    // hossadm loads the dump, every table is there, and facts-match fails naming the table
    // and both counts, alone.
    let dataset_rows = facts["rows:hoss_core"]["public.dataset"]
        .as_u64()
        .expect("recorded dataset rows");
    let damaged = lab.root.path().join("damaged.tar.gz");
    damaged_copy(&lab, &unpacked, &sidecar, &damaged);
    lab.reset_for_restore();
    let ran = restore(&lab, &damaged, &[]);
    let mut wrong = Vec::new();
    if ran.code != 1 || !ran.all().contains("FAILED facts-match") {
        wrong.push(format!("exit {}, expected 1 at facts-match", ran.code));
    } else {
        let failure = ran.failure("facts-match");
        let named = format!("rows:hoss_core public.dataset: {dataset_rows} recorded, 0 restored");
        if !failure.contains(&named) {
            wrong.push(format!("facts-match does not name `{named}`: {failure}"));
        }
        if failure.matches(" recorded, ").count() != 1 {
            wrong.push(format!(
                "facts-match names more than the lost rows: {failure}"
            ));
        }
    }
    failed_cleanly(
        &lab,
        &damaged,
        "failure drill 7 (rows lost in the restore)",
        wrong,
        &ran,
    );
    failure_drills += 1;

    let rows: u64 = seed_db
        .values()
        .filter_map(|v| v.split(' ').next()?.parse::<u64>().ok())
        .sum();

    report!(
        "drill hoss: ok (real: Docker containers and volumes, PostgreSQL 15 with hoss_core and hoss_auth, OpenLDAP slapd on volumes ldap-vol0/ldap-vol1, make, busybox; \
         stand-ins: hossadm, the server Makefile, OpenSearch, core /discover, auth key generation; \
         backup {} files, {}, facts: {}; a second, unchanged backup {} (the first {}; hossadm writes a whole new archive each time); restore equal: {} tables {rows} rows, {} LDAP entries, {} search indices, private key, {} config files (ui/ is not in hossadm's backup){}; \
         {failure_drills} failure drills ok)",
        files.len(),
        size_text(bytes),
        facts_text(&facts),
        sealed_cost(&two[1], second_time),
        sealed_cost(&two[0], first_time),
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

/// The facts hoss-backup recorded in the manifest next to the archive: both databases'
/// tables and rows per table as the seed holds them (the dumps' own counts), the snapshot's
/// indices, the LDAP entries, the server's major.minor. Returns the facts' `values`.
fn check_recorded_facts(
    sidecar: &Path,
    seed_db: &std::collections::BTreeMap<String, String>,
    seed_search: &std::collections::BTreeMap<String, String>,
    ldap_entries: usize,
) -> serde_json::Value {
    let text = std::fs::read_to_string(sidecar.join("opsplan-manifest.json")).expect("manifest");
    let manifest: serde_json::Value = serde_json::from_str(&text).expect("manifest JSON");
    assert_eq!(
        manifest["facts"]["format_version"], 1,
        "drill hoss: manifest facts: {}",
        manifest["facts"]
    );
    let values = manifest["facts"]["values"].clone();
    let mut expected = serde_json::json!({
        "search_indices": seed_search.keys().collect::<Vec<_>>(),
        "server_major_minor": lab::VERSION.rsplit_once('.').map_or(lab::VERSION, |(mm, _)| mm),
        "ldap_entries": ldap_entries,
    });
    for (key, digest) in seed_db {
        let (db, table) = key.split_once('.').expect("db.table");
        let rows: u64 = digest
            .split(' ')
            .next()
            .and_then(|n| n.parse().ok())
            .expect("seeded rows");
        let tables = expected[format!("tables:{db}")]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let mut tables = tables;
        tables.push(format!("public.{table}").into());
        tables.sort_by(|a, b| a.as_str().cmp(&b.as_str()));
        expected[format!("tables:{db}")] = tables.into();
        expected[format!("rows:{db}")][format!("public.{table}")] = rows.into();
    }
    assert_eq!(
        values, expected,
        "drill hoss: the facts recorded are not the seed's"
    );
    values
}

/// The facts in one line for the report: tables, rows, indices, LDAP entries, version.
fn facts_text(facts: &serde_json::Value) -> String {
    let count = |prefix: &str| -> (usize, u64) {
        facts
            .as_object()
            .into_iter()
            .flatten()
            .filter(|(k, _)| k.starts_with(prefix))
            .fold((0, 0), |(t, r), (_, v)| {
                let rows: u64 = v
                    .as_object()
                    .into_iter()
                    .flatten()
                    .filter_map(|(_, n)| n.as_u64())
                    .sum();
                (t + v.as_object().map_or(0, serde_json::Map::len), r + rows)
            })
    };
    let (tables, rows) = count("rows:");
    format!(
        "{tables} tables {rows} rows in 2 databases, {} search index(es), {} LDAP entries, version {}",
        facts["search_indices"].as_array().map_or(0, Vec::len),
        facts["ldap_entries"],
        facts["server_major_minor"].as_str().unwrap_or("?")
    )
}

/// An archive like `unpacked` whose hoss_core dump holds no rows of `dataset` (the running
/// lab server's pg_dump with `--exclude-table-data`; the database is the seed's), with
/// hoss-backup's manifest (the dump's size and checksum patched, its facts unchanged) and
/// opsplan-backup.json next to it.
fn damaged_copy(lab: &HossLab, unpacked: &Path, sidecar: &Path, out: &Path) {
    let tree = unpacked.with_file_name("damaged-tree");
    common::output_of(Command::new("cp").arg("-a").arg(unpacked).arg(&tree)).expect("cp -a");
    let rel = "db/postgres-hoss_core-backup.dump";
    let dump = Command::new("docker")
        .args(["exec", "-e", &format!("PGPASSWORD={}", lab::PG_PASSWORD)])
        .arg(lab.container("db"))
        .args(["/usr/local/bin/pg_dump", "-Fc", "-U", "postgres"])
        .args(["--exclude-table-data=public.dataset", "hoss_core"])
        .output()
        .expect("docker exec pg_dump");
    assert!(
        dump.status.success() && dump.stdout.len() > 64,
        "drill hoss: pg_dump without dataset's rows: {}",
        String::from_utf8_lossy(&dump.stderr)
    );
    std::fs::write(tree.join(rel), &dump.stdout).expect("write the damaged dump");
    common::output_of(
        Command::new("tar")
            .arg("-czf")
            .arg(out)
            .arg("-C")
            .arg(&tree)
            .arg("."),
    )
    .expect("tar");
    let text = std::fs::read_to_string(sidecar.join("opsplan-manifest.json")).expect("manifest");
    let mut manifest: serde_json::Value = serde_json::from_str(&text).expect("manifest JSON");
    let sha = common::sha256_file(&tree.join(rel));
    let size = dump.stdout.len() as u64;
    let mut total = 0;
    for entry in manifest["files"].as_array_mut().expect("files") {
        if entry["path"] == rel {
            entry["size"] = size.into();
            entry["sha256"] = sha.clone().into();
        }
        total += entry["size"].as_u64().unwrap_or(0);
    }
    manifest["totals"]["bytes"] = total.into();
    let side = PathBuf::from(format!("{}.opsplan", out.display()));
    std::fs::create_dir_all(&side).expect("sidecar");
    std::fs::write(side.join("opsplan-manifest.json"), manifest.to_string()).expect("manifest");
    std::fs::copy(
        sidecar.join("opsplan-backup.json"),
        side.join("opsplan-backup.json"),
    )
    .expect("opsplan-backup.json");
}

/// The archive and the manifest next to it, as one digest: what a later run must not change.
fn sealed_digest(archive: &Path) -> String {
    format!(
        "{} {}",
        common::sha256_file(archive),
        common::sha256_file(
            &PathBuf::from(format!("{}.opsplan", archive.display())).join("opsplan-manifest.json")
        )
    )
}

/// Whether the archive matches the manifest hoss-backup keeps next to it: every file of the
/// archive (and opsplan-backup.json, kept next to it) listed with its size and checksum,
/// nothing more, nothing less.
fn archive_verifies(archive: &Path) -> Result<(), String> {
    let side = PathBuf::from(format!("{}.opsplan", archive.display()));
    let text = std::fs::read_to_string(side.join("opsplan-manifest.json"))
        .map_err(|e| format!("no manifest: {e}"))?;
    let manifest: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| format!("manifest: {e}"))?;
    let tree = tempfile::tempdir().map_err(|e| e.to_string())?;
    common::output_of(
        Command::new("tar")
            .arg("-xzf")
            .arg(archive)
            .arg("-C")
            .arg(tree.path()),
    )?;
    std::fs::copy(
        side.join("opsplan-backup.json"),
        tree.path().join("opsplan-backup.json"),
    )
    .map_err(|e| format!("opsplan-backup.json: {e}"))?;
    let have: std::collections::BTreeMap<String, (String, u64)> =
        common::tree_digest(tree.path(), |_| false);
    let listed: std::collections::BTreeMap<String, (String, u64)> = manifest["files"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|f| {
            (
                f["path"].as_str().unwrap_or_default().to_string(),
                (
                    f["sha256"].as_str().unwrap_or_default().to_string(),
                    f["size"].as_u64().unwrap_or(0),
                ),
            )
        })
        .collect();
    let diffs = diff_maps("file", &listed, &have);
    if diffs.is_empty() {
        Ok(())
    } else {
        Err(diffs.join("; "))
    }
}

/// The end of a failure drill: `wrong` (what the drill found) plus the restore's scratch
/// left next to `archive` and any lock left must be empty, else the drill fails naming them.
fn failed_cleanly(lab: &HossLab, archive: &Path, what: &str, mut wrong: Vec<String>, ran: &Ran) {
    if !scratch_left(lab, archive).is_empty() {
        wrong.push(format!("scratch left: {:?}", scratch_left(lab, archive)));
    }
    no_locks(lab, &mut wrong);
    assert!(
        wrong.is_empty(),
        "drill hoss: {what}: {}\n{}",
        wrong.join("; "),
        ran.all()
    );
}

/// "<archive size> + <manifest size> in <seconds>": what one backup cost.
fn sealed_cost(archive: &Path, took: std::time::Duration) -> String {
    let size = |p: &Path| std::fs::metadata(p).map_or(0, |m| m.len());
    let side = PathBuf::from(format!("{}.opsplan", archive.display()));
    format!(
        "{} + manifest {} in {:.1}s",
        size_text(size(archive)),
        size_text(
            size(&side.join("opsplan-manifest.json")) + size(&side.join("opsplan-backup.json"))
        ),
        took.as_secs_f64()
    )
}

/// The Hoss recipe of docs/reference/drill.md, as written there, up to where it would start
/// the backup (common::recipe_stops_at_the_gate): both plans load with the recipe's params
/// files, `archive` standing in until the backup's `archive-path` gives it
/// (`--restore-from-backup`), `verify-backup` is a `verify` step of the restore
/// (`--verified-by`), the staging `hoss_dir` is not the live one, and a restore into the
/// live one is refused. Not run end to end: this lab runs one Hoss server, and the recipe
/// restores into a second (staging) one.
#[test]
fn hoss_recipe_passes_the_drills_refusals() {
    let tmp = tempfile::tempdir().expect("temp dir");
    crate::common::recipe_stops_at_the_gate(
        &crate::common::GateRecipe {
            name: "hoss",
            target: "hoss_dir",
            live: "/home/hoss/.hoss",
            staging: "/home/hoss/.hoss-staging",
            destructive: "restore: hossadm-restore",
            backup: Vec::new(),
            restore: Vec::new(),
            env: Vec::new(),
        },
        tmp.path(),
    );
    let line = "drill recipes: hoss ok, its recipe of docs/reference/drill.md loads (archive from \
                the backup's archive-path, verified by the restore's verify-backup), passes the \
                target check and stops at the destructive gate without --force; restoring into \
                the live hoss_dir is refused (not run end to end)";
    report!("{line}");
}
