//! Helpers shared by the drills (tests/drill_*.rs): ports, the binary, checksums.

#![allow(dead_code)]

use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("the opsplan crate sits in crates/ of the repository")
        .clone()
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

pub fn is_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    // The owner of a file this process just created is its effective user.
    static ROOT: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ROOT.get_or_init(|| {
        let probe = tempfile::NamedTempFile::new().expect("temp file");
        probe.as_file().metadata().expect("metadata").uid() == 0
    })
}

/// `opsplan` with its journals and locks in `state` (a drill's temp folder), so the drill
/// can check that every lock was released and no run journal is left in the repository.
pub fn opsplan(state: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_opsplan"));
    cmd.env("OPSPLAN_JOURNAL_DIR", state.join("runs"))
        .env("OPSPLAN_LOCK_DIR", state.join("locks"))
        .env("NO_COLOR", "1");
    cmd
}

/// A finished run: exit code and stdout+stderr.
pub struct Ran {
    pub code: i32,
    pub out: String,
}

impl Ran {
    pub fn from(out: Output) -> Ran {
        Ran {
            code: out.status.code().unwrap_or(-1),
            out: format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        }
    }

    /// Panics with the run's output unless it exited with `code`.
    pub fn expect_code(&self, code: i32, what: &str) {
        assert_eq!(
            self.code, code,
            "{what}: expected exit {code}, got {}; output:\n{}",
            self.code, self.out
        );
    }
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
