//! Helpers shared by the drills (tests/drill_*.rs): ports, the binary, checksums.

#![allow(dead_code)]

use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

#[allow(unused_imports)]
pub use opsplan_testkit::{free_port, is_root, repo_root};

pub use opsplan_testkit::bin::{self, Ran};

/// The drills share Docker images, the lab's image builds and host tools, so they run one
/// at a time whatever `--test-threads` says: each holds this for its whole length.
pub fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    static LAB: std::sync::Mutex<()> = std::sync::Mutex::new(());
    // A drill that failed (panicked) while holding it leaves nothing the next one needs.
    LAB.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The longest one plan run of a drill may take before the drill kills it and fails.
pub const RUN_LIMIT: std::time::Duration = std::time::Duration::from_secs(20 * 60);

/// `opsplan` with its journals and locks in `state` (a drill's temp folder), so the drill
/// can check that every lock was released and no run journal is left in the repository.
pub fn opsplan(state: &Path) -> Command {
    bin::command(state)
}

/// Runs a plan command of a drill to its end.
pub fn run(cmd: Command) -> Ran {
    bin::run_within(cmd, RUN_LIMIT)
}

pub fn sha256_file(path: &Path) -> String {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    hex::encode(Sha256::digest(&bytes))
}

/// Every regular file under `root` (relative path -> sha256, size), skipping entries for
/// which `skip` says yes (relative path).
pub fn tree_digest(root: &Path, skip: impl Fn(&Path) -> bool) -> BTreeMap<String, (String, u64)> {
    let mut out = BTreeMap::new();
    for entry in walkdir::WalkDir::new(root).min_depth(1) {
        let entry = entry.unwrap_or_else(|e| panic!("walk {}: {e}", root.display()));
        let rel = entry
            .path()
            .strip_prefix(root)
            .expect("under root")
            .to_path_buf();
        if skip(&rel) || !entry.file_type().is_file() {
            continue;
        }
        let size = entry.metadata().map(|m| m.len()).unwrap_or(0);
        out.insert(rel.display().to_string(), (sha256_file(entry.path()), size));
    }
    out
}

/// The differences between two digests, one line each (empty when equal).
pub fn diff_maps<V: PartialEq + std::fmt::Debug>(
    what: &str,
    want: &BTreeMap<String, V>,
    got: &BTreeMap<String, V>,
) -> Vec<String> {
    let mut out = Vec::new();
    for (k, v) in want {
        match got.get(k) {
            None => out.push(format!("{what} {k}: missing after restore")),
            Some(g) if g != v => {
                out.push(format!("{what} {k}: differs ({v:?} before, {g:?} after)"));
            }
            _ => {}
        }
    }
    for k in got.keys().filter(|k| !want.contains_key(*k)) {
        out.push(format!(
            "{what} {k}: present after restore but not in the seed"
        ));
    }
    out
}

/// Locks in `state/locks` still held or left with a holder record (a run that ended
/// cleanly clears its record; a record left behind makes the next run refuse as stale).
pub fn held_locks(state: &Path) -> Vec<String> {
    let dir = state.join("locks");
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Vec::new();
    };
    let mut held = Vec::new();
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Ok(f) = std::fs::File::open(e.path()) else {
            continue;
        };
        let recorded = f.metadata().map(|m| m.len() > 0).unwrap_or(false);
        match nix::fcntl::Flock::lock(f, nix::fcntl::FlockArg::LockExclusiveNonblock) {
            Ok(_) if !recorded => {}
            Ok(_) => held.push(format!("{name} (holder record left)")),
            Err(_) => held.push(format!("{name} (held)")),
        }
    }
    held
}

/// Files and folders directly in `dir` whose name starts with `prefix`.
pub fn entries_with_prefix(dir: &Path, prefix: &str) -> Vec<String> {
    std::fs::read_dir(dir)
        .map(|it| {
            it.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with(prefix))
                .collect()
        })
        .unwrap_or_default()
}

/// Runs a command, returning stdout or a message with its stderr.
pub fn output_of(cmd: &mut Command) -> Result<String, String> {
    let out = cmd.output().map_err(|e| format!("{cmd:?}: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!(
            "{cmd:?} exited {}: {}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

/// Whether `tool` is found on PATH or as an absolute path.
pub fn have(tool: &str) -> bool {
    if tool.contains('/') {
        return Path::new(tool).is_file();
    }
    std::env::var_os("PATH")
        .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(tool).is_file()))
}

/// Disk space a backup generation takes beyond `earlier` ones: the blocks of every file
/// below `generation` whose inode is not also below one of `earlier` (hard links to an
/// older generation cost nothing), each inode once, as `du` counts.
pub fn generation_cost(generation: &Path, earlier: &[&Path]) -> u64 {
    use std::os::unix::fs::MetadataExt;
    let inodes = |root: &Path| -> Vec<(u64, u64, u64)> {
        walkdir::WalkDir::new(root)
            .into_iter()
            .flatten()
            .filter_map(|e| e.path().symlink_metadata().ok())
            .map(|m| (m.dev(), m.ino(), m.blocks() * 512))
            .collect()
    };
    let mut seen: std::collections::HashSet<(u64, u64)> = earlier
        .iter()
        .flat_map(|e| inodes(e))
        .map(|(dev, ino, _)| (dev, ino))
        .collect();
    inodes(generation)
        .into_iter()
        .filter(|(dev, ino, _)| seen.insert((*dev, *ino)))
        .map(|(_, _, bytes)| bytes)
        .sum()
}

/// Two backups in a row of unchanged data, `backup` running one (its argument says which,
/// for its failure message) and returning the generation it made: "first X in Ts; second,
/// unchanged Y in Us (Z% of the first's space)", the second's space beyond the first's
/// (issue 12's closing figure).
pub fn second_backup_cost(mut backup: impl FnMut(&str) -> std::path::PathBuf) -> String {
    let started = std::time::Instant::now();
    let first = backup("the first of two backups in a row");
    let first_took = started.elapsed();
    let started = std::time::Instant::now();
    let second = backup("the second of two backups in a row");
    let second_took = started.elapsed();
    assert_ne!(
        first, second,
        "the second backup made no generation of its own"
    );
    let (first_space, second_space) = (
        generation_cost(&first, &[]),
        generation_cost(&second, &[&first]),
    );
    format!(
        "first {} in {:.1}s; second, unchanged {} in {:.1}s ({:.0}% of the first's space)",
        size_text(first_space),
        first_took.as_secs_f64(),
        size_text(second_space),
        second_took.as_secs_f64(),
        second_space as f64 * 100.0 / first_space.max(1) as f64
    )
}

/// Human size.
pub fn size_text(bytes: u64) -> String {
    if bytes >= 1 << 20 {
        format!("{:.1} MiB", bytes as f64 / (1u64 << 20) as f64)
    } else if bytes >= 1 << 10 {
        format!("{:.1} KiB", bytes as f64 / 1024.0)
    } else {
        format!("{bytes} B")
    }
}

/// The command line of a drill recipe exactly as docs/reference/drill.md writes it (the
/// `sh` block after `<!-- recipe: NAME -->`), as arguments after `opsplan`, with the
/// recipe's operator folders replaced by the drill's own (`/etc/opsplan/drill/` holds the
/// params files, `/var/log/opsplan/` the report). The recipes use no quoting, so words are
/// split on white space; a recipe that starts to need more fails here, not silently.
pub fn recipe(name: &str, etc: &Path, log: &Path) -> Vec<String> {
    let block = drill_doc_block(&format!("<!-- recipe: {name} -->\n```sh\n"));
    let line = block.replace("\\\n", " ");
    assert!(
        line.trim().lines().count() == 1 && !line.contains(['\'', '"', '$', '`']),
        "recipe `{name}` is more than one plain command line:\n{block}"
    );
    let mut words = line.split_whitespace().map(|w| {
        w.replace("/etc/opsplan/drill/", &format!("{}/", etc.display()))
            .replace("/var/log/opsplan/", &format!("{}/", log.display()))
    });
    assert_eq!(words.next().as_deref(), Some("opsplan"), "recipe `{name}`");
    words.collect()
}

/// A recipe's params file as docs/reference/drill.md writes it (the `yaml` block after
/// `` `/etc/opsplan/drill/FILE`: ``), each `key: value` line kept, with the values of the
/// keys in `lab` replaced by the lab's (its ports, folders and names); keys of `lab` the
/// page does not have are the lab's own settings (e.g. `s3_allow_http` for moto's plain
/// http endpoint) and are added after. The page's params are thus the ones loaded.
pub fn recipe_params(file: &str, lab: &[(&str, String)]) -> String {
    let block = drill_doc_block(&format!("`/etc/opsplan/drill/{file}`:\n```yaml\n"));
    let mut out = String::new();
    let mut seen = Vec::new();
    for line in block.lines() {
        let (key, value) = line
            .split_once(": ")
            .unwrap_or_else(|| panic!("params file `{file}`: not `key: value`: {line}"));
        let value = match lab.iter().find(|(k, _)| *k == key) {
            Some((_, v)) => v.clone(),
            None => value.to_string(),
        };
        seen.push(key.to_string());
        out.push_str(&format!("{key}: {value}\n"));
    }
    for (k, v) in lab.iter().filter(|(k, _)| !seen.iter().any(|s| s == k)) {
        out.push_str(&format!("{k}: {v}\n"));
    }
    out
}

/// The text of the code block that `opening` (what precedes it and its opening fence)
/// starts in docs/reference/drill.md.
fn drill_doc_block(opening: &str) -> String {
    let doc = std::fs::read_to_string(repo_root().join("docs/reference/drill.md"))
        .expect("read docs/reference/drill.md");
    let start = doc
        .find(opening)
        .unwrap_or_else(|| panic!("docs/reference/drill.md has no {opening:?}"))
        + opening.len();
    let block = &doc[start..];
    block[..block.find("```").expect("the block ends")].to_string()
}

/// A recipe of docs/reference/drill.md checked up to where it would start the backup.
pub struct GateRecipe<'a> {
    /// The recipe's name, also its params files' prefix (`NAME-backup.yaml`).
    pub name: &'a str,
    /// The `--target-param` both plans share, its live and its staging value (as written).
    pub target: &'a str,
    pub live: &'a str,
    pub staging: &'a str,
    /// How the gate names the recipe's destructive steps (`restore: clear-volume`).
    pub destructive: &'a str,
    /// The lab's values for the backup's and the restore's params files.
    pub backup: Vec<(&'a str, String)>,
    pub restore: Vec<(&'a str, String)>,
    pub env: Vec<(&'a str, &'a str)>,
}

/// Runs a recipe as written with its params files (the lab's values in `dir`), up to the
/// point where it would start the backup. Without `--force` and without a terminal, the
/// drill stops at the destructive gate, which comes after every other refusal: a refusal at
/// `gate` proves both plans loaded and compiled with the recipe's params, the target check
/// passed (the staging value is not the live one) and the drill's other arguments hold.
/// Then the same recipe with the restore's target set to the live value must be refused at
/// `target`, even with `--force`. Nothing may run: no journaled run.
pub fn recipe_stops_at_the_gate(r: &GateRecipe, dir: &Path) {
    let name = r.name;
    let (etc, log, state) = (dir.join("etc"), dir.join("log"), dir.join("state"));
    for d in [&etc, &log] {
        std::fs::create_dir_all(d).expect("mkdir");
    }
    let write_params = |restore_target: &str| {
        let file = format!("{name}-backup.yaml");
        let text = recipe_params(&file, &r.backup);
        assert!(
            text.contains(&format!("{}: {}\n", r.target, r.live)),
            "{name}: the recipe's backup params do not name {} {}:\n{text}",
            r.target,
            r.live
        );
        std::fs::write(etc.join(&file), text).expect("write params");
        let file = format!("{name}-restore.yaml");
        let mut lab = r.restore.clone();
        lab.push((r.target, restore_target.to_string()));
        std::fs::write(etc.join(&file), recipe_params(&file, &lab)).expect("write params");
    };
    let drill = |args: &[String]| {
        let mut cmd = opsplan(&state);
        cmd.args(args)
            .current_dir(repo_root())
            .stdin(std::process::Stdio::null())
            .env("NO_COLOR", "1")
            .env_remove("OPSPLAN_LOG")
            .env("OPSPLAN_JOURNAL_DIR", state.join("runs"))
            .env("OPSPLAN_LOCK_DIR", state.join("locks"));
        for (k, v) in &r.env {
            cmd.env(k, v);
        }
        run(cmd)
    };
    let report = |what: &str| -> serde_json::Value {
        let path = log.join(format!("drill-{name}.json"));
        let text = std::fs::read(&path)
            .unwrap_or_else(|e| panic!("{name}: {what}: no report {}: {e}", path.display()));
        serde_json::from_slice(&text).expect("parse the report")
    };
    let recipe = recipe(name, &etc, &log);
    assert!(
        recipe.iter().any(|a| a == "--force"),
        "{name}: the recipe has no --force: {recipe:?}"
    );

    // As written, less --force: refused at the gate, after every other check passed.
    write_params(r.staging);
    let unforced: Vec<String> = recipe.iter().filter(|a| *a != "--force").cloned().collect();
    let ran = drill(&unforced);
    assert!(
        ran.code == 2
            && ran.stdout.trim().starts_with("drill REFUSED (gate):")
            && ran.all().contains(r.destructive),
        "{name}: the recipe without --force is not refused at the destructive gate naming \
         `{}` (exit {}):\n{}",
        r.destructive,
        ran.code,
        ran.all()
    );
    let rep = report("gate");
    assert_eq!(rep["failed_phase"], "gate", "{name}: report {rep:#}");
    assert_eq!(
        (
            &rep["target"][0]["backup_value"],
            &rep["target"][0]["restore_value"]
        ),
        (&serde_json::json!(r.live), &serde_json::json!(r.staging)),
        "{name}: the target the drill checked: {rep:#}"
    );
    assert!(
        rep["phases"]
            .as_array()
            .is_some_and(|p| p.iter().all(|p| p["status"] == "not_run")),
        "{name}: a phase ran: {rep:#}"
    );

    // The restore's target set to the live system: refused at `target`, even forced.
    write_params(r.live);
    let ran = drill(&recipe);
    let same = format!(
        "backup param `{0}` and restore param `{0}` name the same place",
        r.target
    );
    assert!(
        ran.code == 2
            && ran.stdout.trim().starts_with("drill REFUSED (target):")
            && ran.all().contains(&same),
        "{name}: a recipe restoring into the live {} is not refused at the target check \
         (exit {}):\n{}",
        r.target,
        ran.code,
        ran.all()
    );
    assert_eq!(report("target")["failed_phase"], "target");
    let runs = std::fs::read_dir(state.join("runs")).map_or(0, Iterator::count);
    assert_eq!(runs, 0, "{name}: the refused drill journaled runs");
}
