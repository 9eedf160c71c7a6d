//! Embeds the shipped plans (the repository's plans/ folder) into the library: writes
//! `$OUT_DIR/library.rs`, a sorted list of `(relative path, include_str!(file))` for every
//! `*.yaml` and `*.yml` file below plans/. `crate::library` reads it; the test
//! `library::embedded_equals_plans_folder` checks it file for file against plans/.
//!
//! Embeds the example ops repository (examples/ops-repo/) the same way for `opsplan new`:
//! `$OUT_DIR/ops_repo.rs`, a sorted list of `(relative path, include_str!(file),
//! executable)` of every file there but `schemas/` (the scaffold writes the binary's own
//! schema) and the top-level folders its `.gitignore` names (previews a local check
//! left). `crate::scaffold` reads it; the spec test
//! `scaffold::new_ops_repo_writes_the_example_file_for_file` checks the scaffold against
//! the folder.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

fn main() {
    let manifest = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default());
    let root = manifest.join("../../plans");
    // A directory here makes cargo rescan everything below it (added, removed, changed).
    println!("cargo:rerun-if-changed={}", root.display());
    let mut files = Vec::new();
    if root.is_dir() {
        collect(&root, &mut files);
    }
    let mut rel: Vec<(String, PathBuf)> = files
        .into_iter()
        .filter_map(|p| {
            let r = p.strip_prefix(&root).ok()?;
            let name = r
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect::<Vec<_>>()
                .join("/");
            Some((name, p.canonicalize().unwrap_or(p)))
        })
        .collect();
    rel.sort();
    let mut out = String::from("&[\n");
    for (name, path) in &rel {
        println!("cargo:rerun-if-changed={}", path.display());
        let _ = writeln!(out, "    ({name:?}, include_str!({:?})),", path.display());
    }
    out.push_str("]\n");
    write_out("library.rs", &out);
    ops_repo(&manifest.join("../../examples/ops-repo"));
}

fn write_out(name: &str, text: &str) {
    let dest = PathBuf::from(std::env::var_os("OUT_DIR").unwrap_or_default()).join(name);
    if let Err(e) = std::fs::write(&dest, text) {
        panic!("cannot write {}: {e}", dest.display());
    }
}

/// The example ops repository's files, as `$OUT_DIR/ops_repo.rs`.
fn ops_repo(root: &Path) {
    println!("cargo:rerun-if-changed={}", root.display());
    let mut skip = vec!["schemas".to_string()];
    if let Ok(ignore) = std::fs::read_to_string(root.join(".gitignore")) {
        skip.extend(
            ignore
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty() && !l.starts_with('#'))
                .map(|l| l.trim_matches('/').to_string()),
        );
    }
    let mut files = Vec::new();
    if root.is_dir() {
        collect_all(root, &mut files);
    }
    let mut rel: Vec<(String, PathBuf)> = files
        .into_iter()
        .filter_map(|p| {
            let r = p.strip_prefix(root).ok()?;
            let parts: Vec<String> = r
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect();
            if parts.len() > 1 && skip.contains(&parts[0]) {
                return None;
            }
            Some((parts.join("/"), p.canonicalize().unwrap_or(p)))
        })
        .collect();
    rel.sort();
    let mut out = String::from("&[\n");
    for (name, path) in &rel {
        println!("cargo:rerun-if-changed={}", path.display());
        let _ = writeln!(
            out,
            "    ({name:?}, include_str!({:?}), {}),",
            path.display(),
            executable(path)
        );
    }
    out.push_str("]\n");
    write_out("ops_repo.rs", &out);
}

#[cfg(unix)]
fn executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::metadata(path).is_ok_and(|m| m.permissions().mode() & 0o111 != 0)
}

#[cfg(not(unix))]
fn executable(_path: &Path) -> bool {
    false
}

fn collect_all(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            collect_all(&path, out);
        } else {
            out.push(path);
        }
    }
}

fn collect(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            collect(&path, out);
        } else if matches!(
            path.extension().and_then(|e| e.to_str()),
            Some("yaml" | "yml")
        ) {
            out.push(path);
        }
    }
}
