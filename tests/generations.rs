//! Backup generations through the real binary: two backups leave two verified generations
//! (the second hard-linked to the first), an interrupted backup leaves the previous one
//! verified and its own incomplete, a tampered one is marked verify-failed, retention over
//! generations of different ages keeps what it must, `generation.select` refuses what is
//! not verified naming the usable ones, `opsplan generations` lists them; and the shipped
//! plans' system locks: a restore is refused while a backup of the same system holds the
//! lock (naming it), while plans about another system do not collide.

// Test helpers fail the test loudly on setup errors; that is what unwrap is for here.
#![allow(clippy::unwrap_used)]

use crate::durable_common::{opsplan, repo, run, Running};
use opsplan_testkit::bin::Ran;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

fn fixture(name: &str) -> String {
    repo(&format!("tests/fixtures/generations/{name}.yaml"))
        .display()
        .to_string()
}

fn backup(work: &Path, extra: &[(&str, &str)]) -> Ran {
    let plan = fixture("backup");
    let mut args: Vec<String> = vec![
        "run".into(),
        plan,
        "--set".into(),
        format!("source={}", work.join("src").display()),
        "--set".into(),
        format!("backup_dir={}", work.join("b").display()),
    ];
    for (k, v) in extra {
        args.push("--set".into());
        args.push(format!("{k}={v}"));
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    run(opsplan(work, &args))
}

fn select(work: &Path, generation: &str) -> Ran {
    let plan = fixture("select");
    let dir = format!("backup_dir={}", work.join("b").display());
    let generation = format!("generation={generation}");
    run(opsplan(
        work,
        &["run", &plan, "--set", &dir, "--set", &generation],
    ))
}

fn listing(work: &Path) -> serde_json::Value {
    let dir = work.join("b").display().to_string();
    let out = run(opsplan(work, &["generations", &dir, "--format", "json"]));
    assert_eq!(out.code, 0, "{}", out.all());
    serde_json::from_str(&out.stdout).unwrap()
}

/// (name, state) newest first.
fn states(work: &Path) -> Vec<(String, String)> {
    listing(work)["generations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| {
            (
                g["name"].as_str().unwrap().to_string(),
                g["state"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn source(work: &Path) {
    let src = work.join("src/db");
    fs::create_dir_all(&src).unwrap();
    // 4 MiB of content in 16 files, the size a second backup should not write again.
    for i in 0..16u8 {
        fs::write(src.join(format!("part-{i}")), vec![i; 256 * 1024]).unwrap();
    }
    fs::write(work.join("src/small"), b"small\n").unwrap();
}

/// After a failed second backup: two generations, the new one incomplete, the previous one
/// verified, the latest, untouched (its own content) and what a restore selects by default.
fn previous_kept_new_incomplete(w: &Path) -> Vec<(String, String)> {
    let gens = states(w);
    assert_eq!(gens.len(), 2, "{gens:?}");
    assert_eq!(gens[0].1, "incomplete", "{gens:?}");
    assert_eq!(gens[1].1, "verified", "{gens:?}");
    assert_eq!(listing(w)["latest"], gens[1].0.as_str());
    let prev = w.join("b").join(&gens[1].0);
    assert_eq!(fs::read(prev.join("data/small")).unwrap(), b"small\n");
    let latest = select(w, "");
    assert_eq!(latest.code, 0, "{}", latest.all());
    gens
}

fn du(path: &Path) -> u64 {
    // Blocks actually used, each inode once (as `du` counts hard links).
    let mut seen = std::collections::HashSet::new();
    let mut total = 0;
    for e in walkdir::WalkDir::new(path).into_iter().flatten() {
        let m = e.path().symlink_metadata().unwrap();
        if seen.insert((m.dev(), m.ino())) {
            total += m.blocks() * 512;
        }
    }
    total
}

#[test]
fn two_backups_leave_two_verified_generations_the_second_hard_linked() {
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    source(w);
    let t0 = Instant::now();
    let first = backup(w, &[]);
    let first_time = t0.elapsed();
    assert_eq!(first.code, 0, "{}", first.all());
    std::thread::sleep(Duration::from_millis(1100));
    let t1 = Instant::now();
    let second = backup(w, &[]);
    let second_time = t1.elapsed();
    assert_eq!(second.code, 0, "{}", second.all());

    let gens = states(w);
    assert_eq!(gens.len(), 2, "{gens:?}");
    assert!(gens.iter().all(|(_, s)| s == "verified"), "{gens:?}");
    let l = listing(w);
    assert_eq!(l["latest"], gens[0].0.as_str());
    assert_eq!(l["generations"][0]["latest"], true);
    assert_eq!(l["generations"][1]["latest"], false);

    // The second generation's files are the first's inodes: nothing was copied again.
    let (new, old) = (w.join("b").join(&gens[0].0), w.join("b").join(&gens[1].0));
    for i in 0..16 {
        let rel = format!("data/db/part-{i}");
        let (a, b) = (
            fs::metadata(new.join(&rel)).unwrap(),
            fs::metadata(old.join(&rel)).unwrap(),
        );
        assert_eq!(a.ino(), b.ino(), "{rel} was copied, not linked");
    }
    let (size_first, size_both) = (du(&old), du(&w.join("b")));
    let size_second = size_both - size_first;
    assert!(size_first > 4 * 1024 * 1024, "{size_first}");
    assert!(
        size_second < 256 * 1024,
        "the unchanged second backup used {size_second} bytes"
    );
    // The measurement the issue asks for, in the test log.
    println!(
        "generation cost: first backup {size_first} bytes in {first_time:?}; second, \
         unchanged, {size_second} bytes in {second_time:?}"
    );

    // Text listing: newest first, latest marked, states in words.
    let dir = w.join("b").display().to_string();
    let text = run(opsplan(w, &["generations", &dir]));
    let lines: Vec<&str> = text.stdout.lines().collect();
    assert_eq!(
        lines[1].split_whitespace().collect::<Vec<_>>(),
        ["generation", "state", "age", "note"],
        "{}",
        text.stdout
    );
    assert!(
        lines[2].starts_with(&format!("*  {}  complete and verified  ", gens[0].0)),
        "{}",
        text.stdout
    );
    assert!(
        lines[3].starts_with(&format!("   {}  complete and verified  ", gens[1].0)),
        "{}",
        text.stdout
    );
}

#[test]
fn an_interrupted_backup_leaves_the_previous_generation_verified_and_its_own_incomplete() {
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    source(w);
    let good = backup(w, &[]);
    assert_eq!(good.code, 0, "{}", good.all());
    std::thread::sleep(Duration::from_millis(1100));
    fs::write(w.join("src/small"), b"changed\n").unwrap();
    let broken = backup(w, &[("fail_copy", "true")]);
    assert_eq!(broken.code, 1, "{}", broken.all());

    let gens = previous_kept_new_incomplete(w);
    // A restore took the verified one by default ...
    // ... and refuses the incomplete one by name, listing what it can use.
    let refused = select(w, &gens[0].0);
    assert_eq!(refused.code, 1, "{}", refused.all());
    let expected = format!(
        "generation `{}` in {} cannot be restored: it is incomplete (not committed: the \
         backup is running or did not finish); usable generations: {}",
        gens[0].0,
        w.join("b").display(),
        gens[1].0
    );
    assert!(refused.stderr.contains(&expected), "{}", refused.stderr);
    let unknown = select(w, "20200101T000000Z-nope");
    assert!(
        unknown.stderr.contains(&format!(
            "no generation `20200101T000000Z-nope` in {}; usable generations: {}",
            w.join("b").display(),
            gens[1].0
        )),
        "{}",
        unknown.stderr
    );

    // The next backup does not build on the incomplete one: it links to the verified one
    // and prune removes the incomplete leftover.
    std::thread::sleep(Duration::from_millis(1100));
    let next = backup(w, &[]);
    assert_eq!(next.code, 0, "{}", next.all());
    let gens = states(w);
    assert_eq!(
        gens.iter().map(|g| g.1.as_str()).collect::<Vec<_>>(),
        ["verified", "verified"],
        "{gens:?}"
    );
}

#[test]
fn a_backup_killed_halfway_leaves_the_previous_generation_verified_and_usable() {
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    source(w);
    let good = backup(w, &[]);
    assert_eq!(good.code, 0, "{}", good.all());
    let verified = states(w)[0].0.clone();
    std::thread::sleep(Duration::from_millis(1100));
    let plan = fixture("backup");
    let src = format!("source={}", w.join("src").display());
    let dir = format!("backup_dir={}", w.join("b").display());
    let running = Running::spawn(opsplan(
        w,
        &[
            "run",
            &plan,
            "--set",
            &src,
            "--set",
            &dir,
            "--set",
            "hold=true",
        ],
    ));
    // Killed once the copy is done and the hold step's shell runs (it writes its pid first;
    // waiting for "> hold" alone could kill the engine before it started the shell).
    let hold_pid = w.join("b.hold.pid");
    crate::durable_common::wait_for(Duration::from_secs(20), "the hold shell", || {
        fs::read_to_string(&hold_pid).is_ok_and(|p| p.ends_with('\n'))
    });
    let pid = running.pid();
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL).unwrap();
    let killed = running.wait(Duration::from_secs(10));
    assert_eq!(killed.signal, Some(9), "{}", killed.all());
    // The step's own shell is in its own process group; it must not outlive the test.
    if let Ok(p) = fs::read_to_string(&hold_pid).unwrap().trim().parse::<i32>() {
        let _ = nix::sys::signal::killpg(
            nix::unistd::Pid::from_raw(p),
            nix::sys::signal::Signal::SIGKILL,
        );
    }

    let gens = states(w);
    assert_eq!(gens.len(), 2, "{gens:?}");
    assert_eq!(gens[0].1, "incomplete", "{gens:?}");
    assert_eq!(
        gens[1],
        (verified.clone(), "verified".to_string()),
        "{gens:?}"
    );
    assert_eq!(listing(w)["latest"], verified.as_str());
    // Usable: a restore (past the killed run's stale lock) selects and verifies it.
    let plan = fixture("select");
    let restore = run(opsplan(w, &["run", &plan, "--set", &dir, "--break-lock"]));
    assert_eq!(restore.code, 0, "{}", restore.all());
    assert!(restore.stderr.contains("ok verify"), "{}", restore.stderr);
}

/// A backup that fills the backup disk fails naming the cause and the file; the previous
/// generation stays verified, the latest and restorable, the new one is marked incomplete;
/// with room again, the next backup becomes the latest and retention removes the leftover.
#[test]
fn a_backup_onto_a_full_disk_fails_naming_it_and_keeps_the_previous_generation() {
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    source(w);
    // Room for one generation (4 MiB) and its manifest, not for a second full copy.
    let disk = match crate::faults::Tmpfs::mount(&w.join("b"), "6m") {
        Ok(m) => m,
        Err(e) => {
            // Not root here: the case is reported, never silently passed.
            eprintln!("NOT RUN: a_backup_onto_a_full_disk...: cannot mount a tmpfs ({e})");
            return;
        }
    };
    let good = backup(w, &[]);
    assert_eq!(good.code, 0, "{}", good.all());
    std::thread::sleep(Duration::from_millis(1100));
    // Without hard links the second copy needs another 4 MiB.
    let full = backup(w, &[("link", "false")]);
    assert_eq!(full.code, 1, "{}", full.all());
    // The step, the file and the cause are named.
    let failed = full
        .all()
        .lines()
        .find(|l| l.starts_with("FAILED copy ("))
        .map(str::to_string)
        .unwrap_or_else(|| panic!("no failed copy:\n{}", full.all()));
    assert!(
        failed.contains(&format!("cannot write {}", w.join("b").display()))
            && failed.contains("/data/db/part-")
            && failed.ends_with(": no space left on the device"),
        "{failed}"
    );
    let gens = previous_kept_new_incomplete(w);

    // Room again (the operator deletes the partial one): the next backup, hard-linked,
    // becomes the latest.
    fs::remove_dir_all(w.join("b").join(&gens[0].0)).unwrap();
    std::thread::sleep(Duration::from_millis(1100));
    let next = backup(w, &[]);
    assert_eq!(next.code, 0, "{}", next.all());
    let after = states(w);
    assert_eq!(
        after.iter().map(|g| g.1.as_str()).collect::<Vec<_>>(),
        ["verified", "verified"],
        "{after:?}"
    );
    assert_eq!(listing(w)["latest"], after[0].0.as_str());
    drop(disk);
}

#[test]
fn a_generation_that_changed_after_its_manifest_is_marked_verify_failed_and_never_latest() {
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    source(w);
    let good = backup(w, &[]);
    assert_eq!(good.code, 0, "{}", good.all());
    std::thread::sleep(Duration::from_millis(1100));
    let bad = backup(w, &[("tamper", "true")]);
    assert_eq!(bad.code, 1, "{}", bad.all());
    assert!(
        bad.stderr
            .contains("does not match its manifest: 1 changed (data/small: size 8 instead of 6)"),
        "{}",
        bad.stderr
    );
    let gens = states(w);
    assert_eq!(gens[0].1, "verify-failed", "{gens:?}");
    assert_eq!(gens[1].1, "verified", "{gens:?}");
    assert_eq!(listing(w)["latest"], gens[1].0.as_str());
    let refused = select(w, &gens[0].0);
    assert!(
        refused
            .stderr
            .contains("cannot be restored: it is verify failed (1 changed"),
        "{}",
        refused.stderr
    );
}

/// Renames a generation so that its name says it began `days` ago (the age prune reads).
fn age_generation(dir: &Path, name: &str, days: i64) -> String {
    let (_, run_id) = opsplan_steps::generation::parse_name(name).unwrap();
    let run_id = run_id.to_string();
    renamed(dir, name, -days * 86_400, &run_id)
}

/// Renames generation `name` to one that began `secs` from now under `run_id`.
fn renamed(dir: &Path, name: &str, secs: i64, run_id: &str) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let new = opsplan_steps::generation::format_name(now + secs, run_id);
    fs::rename(dir.join(name), dir.join(&new)).unwrap();
    new
}

#[test]
fn retention_keeps_the_newest_and_the_young_and_deletes_the_rest() {
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    source(w);
    let dir = w.join("b");
    // Four verified generations, aged 40, 20, 10 and 5 days, and an incomplete one of 30.
    let mut aged = Vec::new();
    for (days, fail) in [
        (40, false),
        (30, true),
        (20, false),
        (10, false),
        (5, false),
    ] {
        let fail = if fail { "true" } else { "false" };
        let r = backup(w, &[("fail_copy", fail), ("prune", "false")]);
        assert_eq!(r.code == 0, fail == "false", "{}", r.all());
        let newest = states(w)[0].0.clone();
        aged.push(age_generation(&dir, &newest, days));
        if fail == "false" {
            // `latest` named the folder before it was renamed.
            fs::remove_file(dir.join("latest")).unwrap();
            std::os::unix::fs::symlink(aged.last().unwrap(), dir.join("latest")).unwrap();
        }
    }
    // Each aged generation is still verified: its state is in the folder, not the name.
    let before = states(w);
    assert_eq!(before.len(), 5, "{before:?}");

    // keep 2 newest, or younger than 15 days: the new one and 5d (count), 10d (age) stay;
    // 20d and 40d go, and the 30-day incomplete one goes.
    let r = backup(w, &[("keep_count", "2"), ("keep_age", "15d")]);
    assert_eq!(r.code, 0, "{}", r.all());
    let after: Vec<String> = states(w).into_iter().map(|g| g.0).collect();
    assert_eq!(after.len(), 3, "{after:?}");
    assert_eq!(&after[1..], [aged[4].clone(), aged[3].clone()], "{after:?}");
    for gone in [&aged[0], &aged[1], &aged[2]] {
        assert!(!dir.join(gone).exists(), "{gone} was kept");
    }
    // The prune step said what it removed.
    assert!(r.stderr.contains("ok prune"), "{}", r.stderr);

    // keep 1 with no age: only the newest (the latest verified) stays; never zero.
    let r = backup(w, &[("keep_count", "1")]);
    assert_eq!(r.code, 0, "{}", r.all());
    let last = states(w);
    assert_eq!(last.len(), 1, "{last:?}");
    assert_eq!(listing(w)["latest"], last[0].0.as_str());
}

/// Moves a generation's name to `secs` from now and its run id to `run_id`, and `latest` with it.
fn rename_generation(dir: &Path, name: &str, secs: i64, run_id: &str) -> String {
    let new = renamed(dir, name, secs, run_id);
    fs::remove_file(dir.join("latest")).unwrap();
    std::os::unix::fs::symlink(&new, dir.join("latest")).unwrap();
    new
}

#[test]
fn a_backup_in_the_same_second_as_the_last_becomes_the_latest() {
    // Names carry the second; two backups within one second used to sort by their random
    // run ids, so the newer one could sort first and never become `latest`.
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    source(w);
    let dir = w.join("b");
    let r = backup(w, &[]);
    assert_eq!(r.code, 0, "{}", r.all());
    // The first generation now says it began this second, under a run id that sorts last.
    let first = rename_generation(&dir, &states(w)[0].0, 0, "zzzzzzzz-last");
    let r = backup(w, &[("keep_count", "1")]);
    assert_eq!(r.code, 0, "{}", r.all());
    let gens = states(w);
    assert_eq!(gens.len(), 1, "{gens:?}");
    assert_ne!(gens[0].0, first, "{gens:?}");
    assert_eq!(listing(w)["latest"], gens[0].0.as_str());
}

#[test]
fn a_clock_far_behind_the_newest_generation_is_refused_naming_both_times() {
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    source(w);
    let dir = w.join("b");
    let r = backup(w, &[]);
    assert_eq!(r.code, 0, "{}", r.all());
    let future = rename_generation(&dir, &states(w)[0].0, 3600, "run-from-the-future");
    let r = backup(w, &[]);
    assert_eq!(r.code, 1, "{}", r.all());
    assert!(
        r.stderr.contains(&format!("generation {future} began at ")),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr
            .contains("would sort before it and never become latest; fix the clock"),
        "{}",
        r.stderr
    );
    // Nothing was begun: the future generation is still the only one, and still latest.
    let gens = states(w);
    assert_eq!(gens.len(), 1, "{gens:?}");
    assert_eq!(listing(w)["latest"], future.as_str());
}

#[test]
fn preview_of_prune_lists_what_it_would_delete_now() {
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    source(w);
    let dir = w.join("b");
    let r = backup(w, &[]);
    assert_eq!(r.code, 0, "{}", r.all());
    let old = age_generation(&dir, &states(w)[0].0, 40);
    fs::remove_file(dir.join("latest")).unwrap();
    std::os::unix::fs::symlink(&old, dir.join("latest")).unwrap();
    let plan = fixture("backup");
    let out = run(opsplan(
        w,
        &[
            "preview",
            &plan,
            "--set",
            &format!("source={}", w.join("src").display()),
            "--set",
            &format!("backup_dir={}", dir.display()),
            "--set",
            "keep_count=1",
        ],
    ));
    assert!(
        out.stdout.contains(&format!(
            "would delete now: {old} (not among the newest 1 verified) (checked again after \
             commit)"
        )),
        "{}",
        out.stdout
    );
}

#[test]
fn preview_and_diagnostics_of_the_generation_steps() {
    // From the repository root with relative paths, so the snapshots hold no machine path.
    let root = repo("");
    let preview = run(opsplan(
        &root,
        &["preview", "tests/fixtures/generations/preview.yaml"],
    ));
    insta::assert_snapshot!("generations-preview", preview.all());
    let invalid = run(opsplan(
        &root,
        &["validate", "tests/fixtures/generations/invalid-args.yaml"],
    ));
    insta::assert_snapshot!("generations-invalid-args", invalid.all());
}

// ------------------------------------------------------------- system locks, real plans

/// A TCP port that accepts and never answers: the backup's first QuestDB query hangs there,
/// holding the plan's locks.
fn silent_server() -> (std::net::TcpListener, u16) {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    (l, port)
}

fn plan_cmd(work: &Path, plan: &str, sets: &[(&str, String)]) -> std::process::Command {
    let plan = repo(&format!("plans/{plan}.yaml")).display().to_string();
    let mut args: Vec<String> = vec!["run".into(), plan, "--yes".into(), "--force".into()];
    for (k, v) in sets {
        args.push("--set".into());
        args.push(format!("{k}={v}"));
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut cmd = opsplan(work, &args);
    cmd.env("OPENC3_TSDB_PASSWORD", "lock-test-password");
    cmd
}

fn dir_of(work: &Path, name: &str) -> String {
    let d: PathBuf = work.join(name);
    fs::create_dir_all(&d).unwrap();
    d.display().to_string()
}

#[test]
fn a_restore_is_refused_while_a_backup_of_the_same_system_holds_its_lock() {
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let (_server, port) = silent_server();
    let url = format!("http://127.0.0.1:{port}");
    let backup = Running::spawn(plan_cmd(
        w,
        "cosmos7/backup",
        &[
            ("backup_dir", dir_of(w, "backups-a")),
            ("tsdb_url", url.clone()),
            // No bucket copy: the backup waits on QuestDB, holding its locks.
            ("bucket_backend", "s3".into()),
        ],
    ));
    crate::durable_common::wait_for(
        Duration::from_secs(20),
        "the backup to hold its locks",
        || backup.stderr_now().contains("> tsdb-version"),
    );
    let holder = backup
        .stderr_now()
        .lines()
        .find_map(|l| {
            l.strip_prefix("run ")?
                .split(':')
                .next()
                .map(str::to_string)
        })
        .unwrap();

    // Same system (container openc3-tsdb-1), another backup location: refused by the
    // system lock, naming the backup's run.
    let restore = run(plan_cmd(
        w,
        "cosmos7/restore",
        &[
            ("backup_dir", dir_of(w, "backups-b")),
            ("tsdb_url", url.clone()),
        ],
    ));
    assert_eq!(restore.code, 4, "{}", restore.all());
    assert!(
        restore.stderr.contains(&format!(
            "lock `cosmos7-openc3-tsdb-1` is held by run {holder} (plan cosmos7-backup)"
        )),
        "{}",
        restore.stderr
    );
    // The partition plans about the same system collide too.
    let detach = run(plan_cmd(
        w,
        "cosmos7/partition-detach",
        &[
            ("table", "T".into()),
            ("older_than_days", "90".into()),
            ("archive_dir", dir_of(w, "archive")),
            ("tsdb_url", url.clone()),
        ],
    ));
    assert_eq!(detach.code, 4, "{}", detach.all());
    assert!(
        detach
            .stderr
            .contains("lock `cosmos7-openc3-tsdb-1` is held by run"),
        "{}",
        detach.stderr
    );
    // Same backup location, another system: refused by the location lock (a prune could
    // delete the generation being restored).
    let other_target = run(plan_cmd(
        w,
        "cosmos7/restore",
        &[
            ("backup_dir", w.join("backups-a").display().to_string()),
            ("tsdb_container", "other-tsdb-1".into()),
            ("tsdb_url", url.clone()),
        ],
    ));
    assert_eq!(other_target.code, 4, "{}", other_target.all());
    assert!(
        other_target.stderr.contains("is held by run")
            && other_target.stderr.contains("lock `backup-location-"),
        "{}",
        other_target.stderr
    );

    // Another system and another location: no collision; the restore runs and stops at its
    // first step (no generation there), not at a lock.
    let other = run(plan_cmd(
        w,
        "cosmos7/restore",
        &[
            ("backup_dir", dir_of(w, "backups-c")),
            ("tsdb_container", "other-tsdb-1".into()),
            ("tsdb_url", url),
        ],
    ));
    assert_eq!(other.code, 1, "{}", other.all());
    assert!(!other.stderr.contains("is held by"), "{}", other.stderr);
    assert!(
        other
            .stderr
            .contains("no complete and verified generation in"),
        "{}",
        other.stderr
    );

    let pid = backup.pid();
    let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
    let done = backup.wait(Duration::from_secs(30));
    assert_ne!(done.code, 0, "{}", done.all());
}
