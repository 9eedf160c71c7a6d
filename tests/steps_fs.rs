//! Step types of the fs group against their real counterparts: real files in temporary
//! folders (removed by `TempDir`'s Drop, even on failure), driven through the real binary
//! on the plans in tests/fixtures/steps/fs/. Trees are compared entry by entry with
//! std::fs metadata; `fs.sync` is also compared with the tree `rsync -a` makes (package
//! `rsync`), and archives are checked by reading them back and by crafting malicious ones.
// Test helpers set up fixtures; a failed setup should panic right there.
#![allow(clippy::unwrap_used)]

use crate::steps_common::{opsplan_command, opsplan_text};
use opsplan_testkit::bin::{self, Ran};

use filetime::FileTime;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use tempfile::TempDir;

const BIN: &str = env!("CARGO_BIN_EXE_opsplan");

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn fixture(name: &str) -> String {
    format!("tests/fixtures/steps/fs/{name}.yaml")
}

fn is_root() -> bool {
    fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Uid:"))
                .map(|l| l.split_whitespace().nth(1) == Some("0"))
        })
        .unwrap_or(false)
}

fn sets(params: &[(&str, &str)]) -> Vec<String> {
    params
        .iter()
        .flat_map(|(k, v)| ["--set".to_string(), format!("{k}={v}")])
        .collect()
}

/// Runs from the repository root, plain, with no stdin (killed after 60 s).
fn run_command(mut cmd: Command) -> Ran {
    cmd.current_dir(repo_root())
        .env("NO_COLOR", "1")
        .env_remove("OPSPLAN_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    bin::run(cmd)
}

/// `opsplan run FIXTURE --set k=v… --log-format json EXTRA…`.
fn run(plan: &str, params: &[(&str, &str)], extra: &[&str]) -> Ran {
    let mut cmd = opsplan_command();
    cmd.arg("run")
        .arg(fixture(plan))
        .args(sets(params))
        .args(["--log-format", "json"])
        .args(extra);
    run_command(cmd)
}

/// The same through `sh -c 'umask 000; exec opsplan …'`, so modes are not narrowed.
fn run_umask0(plan: &str, params: &[(&str, &str)]) -> Ran {
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg("umask 000; exec \"$@\"")
        .arg("sh")
        .arg(BIN)
        .arg("run")
        .arg(fixture(plan))
        .args(sets(params))
        .args(["--log-format", "json"]);
    run_command(cmd)
}

fn p(path: &Path) -> &str {
    path.to_str().expect("utf-8 temp path")
}

fn write(path: &Path, content: &[u8], mode: u32, mtime: i64) {
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).unwrap();
    }
    fs::write(path, content).unwrap();
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
    filetime::set_file_mtime(path, FileTime::from_unix_time(mtime, 0)).unwrap();
}

fn set_dir(path: &Path, mode: u32, mtime: i64) {
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
    filetime::set_file_mtime(path, FileTime::from_unix_time(mtime, 0)).unwrap();
}

/// A small tree with the things `rsync -a` keeps: modes (setgid, read-only, private),
/// old mtimes, nested and empty folders, relative, absolute and dangling symlinks, and
/// (as root) foreign owners. Folder attributes are set last, as a real tree would have them.
fn make_tree(root: &Path) {
    fs::create_dir_all(root.join("db/table/2026-04-15")).unwrap();
    fs::create_dir_all(root.join("empty")).unwrap();
    fs::create_dir_all(root.join("tmp")).unwrap();
    write(
        &root.join("db/table/_meta"),
        b"meta v1\n",
        0o644,
        1_700_000_000,
    );
    write(
        &root.join("db/table/2026-04-15/ts.d"),
        &vec![7u8; 100_000],
        0o600,
        1_700_000_100,
    );
    write(
        &root.join("db/readonly.txt"),
        b"read only\n",
        0o444,
        1_600_000_000,
    );
    write(
        &root.join("bin/tool.sh"),
        b"#!/bin/sh\necho hi\n",
        0o2755,
        1_650_000_000,
    );
    write(
        &root.join("server.log"),
        b"log line\n",
        0o640,
        1_710_000_000,
    );
    write(
        &root.join("tmp/scratch"),
        b"scratch\n",
        0o644,
        1_710_000_000,
    );
    std::os::unix::fs::symlink("table/_meta", root.join("db/meta-link")).unwrap();
    std::os::unix::fs::symlink("/etc/hostname", root.join("abs-link")).unwrap();
    std::os::unix::fs::symlink("does/not/exist", root.join("dangling")).unwrap();
    if is_root() {
        std::os::unix::fs::lchown(root.join("db/table/_meta"), Some(10001), Some(10001)).unwrap();
        std::os::unix::fs::lchown(root.join("db/meta-link"), Some(501), Some(501)).unwrap();
        std::os::unix::fs::lchown(root.join("db/table"), Some(10001), Some(10001)).unwrap();
    }
    set_dir(&root.join("db/table/2026-04-15"), 0o750, 1_700_000_200);
    set_dir(&root.join("db/table"), 0o755, 1_700_000_300);
    set_dir(&root.join("db"), 0o755, 1_700_000_400);
    set_dir(&root.join("bin"), 0o755, 1_650_000_000);
    set_dir(&root.join("empty"), 0o700, 1_500_000_000);
    set_dir(&root.join("tmp"), 0o1777, 1_710_000_000);
    set_dir(root, 0o755, 1_720_000_000);
}

#[derive(Debug, PartialEq, Eq)]
struct Entry {
    kind: &'static str,
    mode: u32,
    mtime: i64,
    mtime_nsec: i64,
    uid: u32,
    gid: u32,
    size: u64,
    content: String,
}

/// Every entry below and including `root` with what `rsync -a` preserves (symlink modes are
/// not compared: Linux ignores them). `nanos`: compare mtimes to the nanosecond; false for
/// tar, which keeps whole seconds. `link_times`: compare symlink mtimes (rsync does not
/// keep them; fs.sync does, like `cp -a`).
fn tree(root: &Path, nanos: bool, link_times: bool) -> BTreeMap<String, Entry> {
    let mut out = BTreeMap::new();
    for e in walkdir::WalkDir::new(root).follow_links(false) {
        let e = e.unwrap();
        let m = fs::symlink_metadata(e.path()).unwrap();
        let rel = e
            .path()
            .strip_prefix(root)
            .unwrap()
            .to_string_lossy()
            .into_owned();
        let (kind, content) = if m.file_type().is_symlink() {
            (
                "symlink",
                fs::read_link(e.path()).unwrap().display().to_string(),
            )
        } else if m.is_dir() {
            ("dir", String::new())
        } else {
            (
                "file",
                hex::encode(Sha256::digest(fs::read(e.path()).unwrap())),
            )
        };
        out.insert(
            rel,
            Entry {
                kind,
                mode: if kind == "symlink" {
                    0
                } else {
                    m.mode() & 0o7777
                },
                mtime: if kind != "symlink" || link_times {
                    m.mtime()
                } else {
                    0
                },
                mtime_nsec: if nanos && (kind != "symlink" || link_times) {
                    m.mtime_nsec()
                } else {
                    0
                },
                uid: m.uid(),
                gid: m.gid(),
                size: if kind == "dir" { 0 } else { m.len() },
                content,
            },
        );
    }
    out
}

fn assert_same_tree(a: &Path, b: &Path, nanos: bool) {
    assert_same_tree_with(a, b, nanos, true);
}

fn assert_same_tree_with(a: &Path, b: &Path, nanos: bool, link_times: bool) {
    let (ta, tb) = (tree(a, nanos, link_times), tree(b, nanos, link_times));
    let keys_a: Vec<_> = ta.keys().collect();
    let keys_b: Vec<_> = tb.keys().collect();
    assert_eq!(
        keys_a,
        keys_b,
        "{} and {} list different entries",
        a.display(),
        b.display()
    );
    for (k, ea) in &ta {
        assert_eq!(Some(ea), tb.get(k), "entry `{k}` differs");
    }
}

fn sha256_hex(path: &Path) -> String {
    hex::encode(Sha256::digest(fs::read(path).unwrap()))
}

/// `fs.sync` by the fixture `plan` of `src` into `dst`.
fn sync_with(plan: &str, src: &Path, dst: &Path) -> Ran {
    run(plan, &[("source", p(src)), ("destination", p(dst))], &[])
}

/// The error of a `fs.sync` (fixture `plan`) of `src` into `dst` that must fail.
fn sync_error(plan: &str, src: &Path, dst: &Path) -> String {
    let ran = sync_with(plan, src, dst);
    assert_eq!(ran.code, 1, "{}", ran.all());
    ran.error("sync")
}

// ---------------------------------------------------------------- fs.sync

#[test]
fn sync_copies_then_resync_copies_nothing() {
    let tmp = TempDir::new().unwrap();
    let (src, dst) = (tmp.path().join("src"), tmp.path().join("backup/data"));
    make_tree(&src);
    let params = [("source", p(&src)), ("destination", p(&dst))];

    let first = run("sync", &params, &[]);
    let out = first.ok().outputs("sync");
    // 6 files and 3 symlinks.
    assert_eq!(out["copied"], 9, "{out}");
    assert_eq!(out["copied_bytes"], 100_000 + 8 + 10 + 18 + 9 + 8, "{out}");
    assert_eq!(out["skipped"], 0);
    assert_eq!(out["deleted"], 0);
    assert_same_tree(&src, &dst, true);

    let again = run("sync", &params, &[]);
    let out = again.ok().outputs("sync");
    assert_eq!(out["copied"], 0, "{out}");
    assert_eq!(out["copied_bytes"], 0);
    assert_eq!(out["skipped"], 9);
    assert_same_tree(&src, &dst, true);

    // Same size and mtime but another byte: skipped by default, copied with checksum.
    let meta = src.join("db/table/_meta");
    write(&meta, b"meta v2\n", 0o644, 1_700_000_000);
    if is_root() {
        std::os::unix::fs::lchown(&meta, Some(10001), Some(10001)).unwrap();
    }
    set_dir(&src.join("db/table"), 0o755, 1_700_000_300);
    let quick = run("sync", &params, &[]);
    assert_eq!(quick.ok().outputs("sync")["copied"], 0);
    assert_eq!(fs::read(dst.join("db/table/_meta")).unwrap(), b"meta v1\n");
    let thorough = run(
        "sync",
        &[
            ("source", p(&src)),
            ("destination", p(&dst)),
            ("checksum", "true"),
        ],
        &[],
    );
    let out = thorough.ok().outputs("sync");
    assert_eq!(out["copied"], 1, "{out}");
    assert_eq!(out["copied_bytes"], 8);
    assert_eq!(fs::read(dst.join("db/table/_meta")).unwrap(), b"meta v2\n");
    assert_same_tree(&src, &dst, true);
    // No temporary file is left anywhere.
    for e in walkdir::WalkDir::new(&dst) {
        let name = e.unwrap().file_name().to_string_lossy().into_owned();
        assert!(
            !name.contains(".opsplan-"),
            "temporary file {name} left behind"
        );
    }
}

#[test]
fn sync_matches_rsync_a() {
    let rsync = Command::new("rsync").arg("--version").output();
    assert!(
        rsync.is_ok_and(|o| o.status.success()),
        "this test needs rsync (Debian package `rsync`) to compare fs.sync with `rsync -a`"
    );
    let tmp = TempDir::new().unwrap();
    let src = tmp.path().join("src");
    make_tree(&src);
    for (name, exclude, rsync_args) in [
        ("all", "[]", vec![]),
        (
            "excluding",
            "[\"*.log\", tmp]",
            vec!["--exclude=*.log", "--exclude=tmp"],
        ),
    ] {
        let by_rsync = tmp.path().join(format!("rsync-{name}"));
        let by_us = tmp.path().join(format!("opsplan-{name}"));
        let status = Command::new("rsync")
            .arg("-a")
            .args(&rsync_args)
            .arg(format!("{}/", src.display()))
            .arg(format!("{}/", by_rsync.display()))
            .status()
            .unwrap();
        assert!(status.success(), "rsync -a failed");
        run(
            "sync",
            &[
                ("source", p(&src)),
                ("destination", p(&by_us)),
                ("exclude", exclude),
            ],
            &[],
        )
        .ok();
        assert_same_tree_with(&by_rsync, &by_us, true, false);
    }
}

#[test]
fn sync_include_copies_only_matching_files_and_their_folders() {
    let tmp = TempDir::new().unwrap();
    let (src, dst) = (tmp.path().join("src"), tmp.path().join("dst"));
    make_tree(&src);
    let ran = run(
        "sync",
        &[
            ("source", p(&src)),
            ("destination", p(&dst)),
            ("include", "[\"*.d\", \"bin/**\"]"),
        ],
        &[],
    );
    assert_eq!(ran.ok().outputs("sync")["copied"], 2);
    let got: Vec<String> = tree(&dst, true, true).into_keys().collect();
    assert_eq!(
        got,
        [
            "",
            "bin",
            "bin/tool.sh",
            "db",
            "db/table",
            "db/table/2026-04-15",
            "db/table/2026-04-15/ts.d"
        ]
    );
}

#[test]
fn sync_delete_removes_extraneous_but_not_excluded_and_needs_force() {
    let tmp = TempDir::new().unwrap();
    let (src, dst) = (tmp.path().join("src"), tmp.path().join("dst"));
    make_tree(&src);
    let params = [("source", p(&src)), ("destination", p(&dst))];
    run("sync", &params, &[]).ok();
    write(
        &dst.join("old/partition/ts.d"),
        b"stale",
        0o644,
        1_000_000_000,
    );
    write(&dst.join("stale.txt"), b"stale", 0o644, 1_000_000_000);
    write(
        &dst.join("notes.keep"),
        b"operator notes",
        0o644,
        1_000_000_000,
    );

    // Destructive: without --force (and no terminal) nothing runs.
    let refused = run("sync-delete", &params, &[]);
    assert_ne!(refused.code, 0, "{}", refused.all());
    assert!(dst.join("stale.txt").exists());

    let forced = run("sync-delete", &params, &["--force"]);
    let out = forced.ok().outputs("mirror");
    // old/partition/ts.d, old/partition, old, stale.txt
    assert_eq!(out["deleted"], 4, "{out}");
    assert_eq!(out["copied"], 0);
    assert!(!dst.join("stale.txt").exists());
    assert!(!dst.join("old").exists());
    assert_eq!(fs::read(dst.join("notes.keep")).unwrap(), b"operator notes");
    fs::remove_file(dst.join("notes.keep")).unwrap();
    set_dir(&dst, 0o755, 1_720_000_000);
    assert_same_tree(&src, &dst, true);
}

#[test]
fn sync_error_texts() {
    let tmp = TempDir::new().unwrap();
    let missing = tmp.path().join("no-such-folder");
    let ran = run(
        "sync",
        &[
            ("source", p(&missing)),
            ("destination", p(&tmp.path().join("dst"))),
        ],
        &[],
    );
    assert_eq!(ran.code, 1);
    assert_eq!(
        ran.error("sync"),
        format!("source folder {} does not exist", missing.display())
    );

    let src = tmp.path().join("src");
    make_tree(&src);
    let file = tmp.path().join("a-file");
    fs::write(&file, "x").unwrap();
    let under_file = file.join("dst");
    let ran = sync_with("sync", &src, &under_file);
    assert_eq!(
        ran.error("sync"),
        format!(
            "cannot create the destination folder {}: a parent in the path is not a folder",
            under_file.display()
        )
    );
}

/// A destination inside the source is refused unless an exclude keeps the copy out of it
/// (Hoss copies ~/.hoss into ~/.hoss/backup/.current with `backup/**` excluded).
#[test]
fn sync_destination_inside_source_needs_an_exclude() {
    let tmp = TempDir::new().unwrap();
    let src = tmp.path().join("home");
    make_tree(&src);
    let dst = src.join("backup/.current/config");
    assert_eq!(
        sync_error("sync", &src, &dst),
        format!(
            "destination {} is inside the source folder {}; the copy would copy itself \
             (exclude it, e.g. `exclude: [\"backup/.current/config/**\"]`, or choose another \
             destination)",
            dst.display(),
            src.display()
        )
    );

    let ran = run(
        "sync",
        &[
            ("source", p(&src)),
            ("destination", p(&dst)),
            ("exclude", "[\"backup/**\"]"),
        ],
        &[],
    );
    ran.ok();
    // The copy is the source without the excluded folder (and nothing of itself).
    let copy = tmp.path().join("copy");
    fs::rename(&dst, &copy).unwrap();
    fs::remove_dir_all(src.join("backup")).unwrap();
    // As with rsync's `--exclude 'backup/**'`, the folder itself is copied, empty.
    fs::remove_dir(copy.join("backup")).unwrap();
    set_dir(&copy, 0o755, 1_720_000_000);
    set_dir(&src, 0o755, 1_720_000_000);
    assert_same_tree(&src, &copy, true);
}

/// Permission denied, for real: as root the binary is started as `nobody` (uid 65534),
/// which cannot write into a root-owned 0755 folder; otherwise the folder is made 0555.
#[test]
fn sync_permission_denied() {
    use std::os::unix::process::CommandExt;
    let tmp = TempDir::new().unwrap();
    fs::set_permissions(tmp.path(), fs::Permissions::from_mode(0o755)).unwrap();
    let src = tmp.path().join("src");
    write(&src.join("a.txt"), b"a", 0o644, 1_700_000_000);
    let locked = tmp.path().join("locked");
    fs::create_dir(&locked).unwrap();
    if !is_root() {
        fs::set_permissions(&locked, fs::Permissions::from_mode(0o555)).unwrap();
    }
    let dst = locked.join("dst");
    let mut cmd = opsplan_command();
    cmd.arg("run")
        .arg(fixture("sync"))
        .args(sets(&[("source", p(&src)), ("destination", p(&dst))]))
        .args(["--log-format", "json"]);
    if is_root() {
        // nobody cannot write the journal folder; this test is about the step's own error.
        cmd.arg("--no-journal")
            .uid(65534)
            .gid(65534)
            .env("HOME", "/nonexistent");
    }
    let ran = run_command(cmd);
    assert_eq!(
        ran.error("sync"),
        format!(
            "cannot create the destination folder {}: permission denied",
            dst.display()
        )
    );
}

/// A tree of many files for the parallel copy: 20 folders of 40 files of 0 to 60 KiB,
/// each its own mode and mtime, one file larger than a kernel copy chunk (8 MiB), and a
/// symlink per folder. Returns (files and symlinks, bytes of the files).
fn make_many(root: &Path) -> (u64, u64) {
    let (mut entries, mut bytes) = (0, 0);
    for d in 0..20u32 {
        let dir = root.join(format!("part-{d:02}"));
        for f in 0..40u32 {
            let len = ((d * 40 + f) * 1531 % 61_440) as usize;
            let content: Vec<u8> = (0..len).map(|i| (i as u32 ^ f ^ d) as u8).collect();
            let mode = [0o644, 0o600, 0o755, 0o444][(f % 4) as usize];
            write(
                &dir.join(format!("f{f:03}.dat")),
                &content,
                mode,
                1_700_000_000 + i64::from(d * 100 + f),
            );
            entries += 1;
            bytes += len as u64;
        }
        std::os::unix::fs::symlink("f000.dat", dir.join("first")).unwrap();
        entries += 1;
        set_dir(&dir, 0o750, 1_690_000_000 + i64::from(d));
    }
    let big: Vec<u8> = (0..9 * 1024 * 1024 + 123)
        .map(|i| (i % 251) as u8)
        .collect();
    write(&root.join("big.bin"), &big, 0o640, 1_710_000_000);
    set_dir(root, 0o755, 1_720_000_000);
    (entries + 1, bytes + big.len() as u64)
}

/// Each entry's ctime (seconds, nanoseconds): changed by any write of data or attributes.
fn ctimes(root: &Path) -> BTreeMap<PathBuf, (i64, i64)> {
    walkdir::WalkDir::new(root)
        .into_iter()
        .map(|e| {
            let m = e.unwrap().into_path();
            let meta = fs::symlink_metadata(&m).unwrap();
            (m, (meta.ctime(), meta.ctime_nsec()))
        })
        .collect()
}

/// 800 files, 20 symlinks and a file larger than one kernel copy chunk, copied by several
/// threads: the same tree as the source (modes, mtimes to the nanosecond, owners as root,
/// folders' mtimes set after their contents), the counts and bytes exact, no temporary
/// file left; the unchanged re-sync writes nothing at all, not even an attribute (every
/// ctime in the copy stays as it was).
#[test]
fn sync_many_files_in_parallel_keeps_every_attribute_and_resync_writes_nothing() {
    let tmp = TempDir::new().unwrap();
    let (src, dst) = (tmp.path().join("src"), tmp.path().join("copy"));
    let (entries, bytes) = make_many(&src);
    let params = [("source", p(&src)), ("destination", p(&dst))];

    let out = run("sync", &params, &[]).ok().outputs("sync");
    assert_eq!(out["copied"], entries, "{out}");
    assert_eq!(out["copied_bytes"], bytes, "{out}");
    assert_eq!(out["skipped"], 0, "{out}");
    assert_same_tree(&src, &dst, true);
    assert_eq!(temp_names(&dst), Vec::<String>::new());

    let before = ctimes(&dst);
    // ctime has the kernel's timer granularity: let it move on before the re-sync.
    std::thread::sleep(std::time::Duration::from_millis(20));
    let out = run("sync", &params, &[]).ok().outputs("sync");
    assert_eq!(out["copied"], 0, "{out}");
    assert_eq!(out["copied_bytes"], 0, "{out}");
    assert_eq!(out["skipped"], entries, "{out}");
    let after = ctimes(&dst);
    let touched: Vec<_> = before
        .iter()
        .filter(|(path, c)| after.get(*path) != Some(c))
        .map(|(path, _)| path.display().to_string())
        .collect();
    assert!(
        touched.is_empty(),
        "the unchanged re-sync wrote {} entries, e.g. {:?}",
        touched.len(),
        &touched[..touched.len().min(3)]
    );
    assert_same_tree(&src, &dst, true);
}

/// A file swapped for a symlink after the walk listed it, among 120 others being copied
/// at the same time: the step fails naming it, the file behind the symlink is not copied,
/// the other threads stop, and no temporary file is left.
#[test]
fn sync_parallel_copy_refuses_a_file_swapped_during_the_copy() {
    let tmp = TempDir::new().unwrap();
    let (src, dir) = (tmp.path().join("src"), tmp.path().join("out"));
    for i in 0..120 {
        write(
            &src.join(format!("d{}/f{i:03}", i % 6)),
            format!("file {i}").as_bytes(),
            0o644,
            1_700_000_000,
        );
    }
    write(
        &src.join("d3/victim"),
        b"listed content",
        0o644,
        1_700_000_000,
    );
    fs::create_dir_all(&dir).unwrap();
    let secret = tmp.path().join("root-only.txt");
    fs::write(&secret, "TOP-SECRET-BYTES").unwrap();
    let (ran, _) = run_swapped("sync", &src, &dir, "symlink", &secret);
    assert_eq!(ran.code, 1, "{}", ran.all());
    let error = ran.error("sync");
    assert_eq!(
        error,
        format!(
            "{}/d3/victim was replaced by a symlink after it was listed; refusing to follow it",
            src.display()
        )
    );
    let content = all_content(&dir);
    let needle = b"TOP-SECRET-BYTES";
    assert!(!content.windows(needle.len()).any(|w| w == needle));
    assert_eq!(temp_names(&dir), Vec::<String>::new());
}

/// A sync stopped by its timeout while several large copies are in flight stops within
/// seconds and leaves no temporary file: each copy thread removes its own before the step
/// reports the timeout.
#[test]
fn sync_cancelled_mid_copy_leaves_no_temporary_file() {
    let tmp = TempDir::new().unwrap();
    let (src, dst) = (tmp.path().join("src"), tmp.path().join("copy"));
    for i in 0..40 {
        write(
            &src.join(format!("small/{i:02}")),
            b"x",
            0o644,
            1_700_000_000,
        );
    }
    // Sparse: instant to make, seconds each to copy (holes are read as zeros).
    for name in ["a.bin", "b.bin", "c.bin", "d.bin"] {
        fs::File::create(src.join(name))
            .unwrap()
            .set_len(4 << 30)
            .unwrap();
    }
    let started = std::time::Instant::now();
    assert_eq!(
        sync_error("sync-timeout", &src, &dst),
        "timed out after 300ms"
    );
    assert!(
        started.elapsed() < std::time::Duration::from_secs(20),
        "cancel was not prompt"
    );
    assert_eq!(temp_names(&dst), Vec::<String>::new());
    for name in ["a.bin", "b.bin", "c.bin", "d.bin"] {
        assert!(
            !dst.join(name).exists(),
            "{name} is there, but was not copied whole"
        );
    }
}

/// A copy from one file system to another, where the kernel cannot copy
/// (`copy_file_range` answers EXDEV between a tmpfs and another file system), falls back
/// to read and write: the same tree. Skipped, saying so, where /dev/shm is not a tmpfs on
/// a device of its own.
#[test]
fn sync_across_file_systems_falls_back_to_read_and_write() {
    let shm = Path::new("/dev/shm");
    let tmp = TempDir::new().unwrap();
    let other_fs = fs::metadata(shm)
        .is_ok_and(|m| m.is_dir() && m.dev() != fs::metadata(tmp.path()).unwrap().dev())
        && fs::read_to_string("/proc/mounts")
            .unwrap_or_default()
            .lines()
            .any(|l| {
                l.split(' ').nth(1) == Some("/dev/shm") && l.split(' ').nth(2) == Some("tmpfs")
            });
    if !other_fs {
        eprintln!(
            "skipped: /dev/shm is not a tmpfs apart from {}",
            tmp.path().display()
        );
        return;
    }
    let src_root = tempfile::Builder::new()
        .prefix("opsplan-test-")
        .tempdir_in(shm)
        .unwrap();
    let src = src_root.path().join("src");
    let (entries, bytes) = make_many(&src);
    let dst = tmp.path().join("copy");
    let out = sync_with("sync", &src, &dst).ok().outputs("sync");
    assert_eq!(out["copied"], entries, "{out}");
    assert_eq!(out["copied_bytes"], bytes, "{out}");
    assert_same_tree(&src, &dst, true);
}

/// A tmpfs of 1 MiB mounted for the test, unmounted on drop; None (the test says it is
/// skipped) where mounting is not permitted.
struct SmallFs(PathBuf, #[allow(dead_code)] TempDir);

impl SmallFs {
    fn mount() -> Option<SmallFs> {
        let dir = TempDir::new().unwrap();
        let at = dir.path().join("fs");
        fs::create_dir(&at).unwrap();
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=1m", "opsplan-test", p(&at)])
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        ok.then_some(SmallFs(at, dir))
    }
}

impl Drop for SmallFs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

/// A full destination names the file that did not fit, both when the kernel copies
/// (source on the same tmpfs) and when read and write do (source on another file system),
/// and leaves no temporary file. Skipped, saying so, where a tmpfs cannot be mounted
/// (not root).
#[test]
fn sync_into_a_full_file_system_names_the_file() {
    for same_fs in [true, false] {
        let Some(small) = SmallFs::mount() else {
            eprintln!("skipped: cannot mount a 1 MiB tmpfs here (needs root)");
            return;
        };
        let other = TempDir::new().unwrap();
        let src = if same_fs {
            small.0.join("src")
        } else {
            other.path().join("src")
        };
        // On the tmpfs, 700 KiB fits once in 1 MiB, not twice; from elsewhere 1.5 MiB.
        let len = if same_fs { 700 << 10 } else { 1536 << 10 };
        write(&src.join("big.bin"), &vec![1u8; len], 0o644, 1_700_000_000);
        write(&src.join("empty"), b"", 0o644, 1_700_000_000);
        let dst = small.0.join("copy");
        assert_eq!(
            sync_error("sync", &src, &dst),
            format!(
                "cannot write {}: no space left on the device",
                dst.join("big.bin").display()
            ),
            "same file system: {same_fs}"
        );
        assert_eq!(
            temp_names(&dst),
            Vec::<String>::new(),
            "same file system: {same_fs}"
        );
    }
}

// ---------------------------------------------------------------- archive

fn list_archive(path: &Path) -> Vec<(String, u32, u64, u64, u64)> {
    let file = fs::File::open(path).unwrap();
    let reader: Box<dyn std::io::Read> = if path.extension().is_some_and(|e| e == "zst") {
        Box::new(zstd::stream::read::Decoder::new(file).unwrap())
    } else {
        Box::new(flate2::read::GzDecoder::new(file))
    };
    let mut archive = tar::Archive::new(reader);
    let mut out = Vec::new();
    for e in archive.entries().unwrap() {
        let e = e.unwrap();
        let h = e.header();
        out.push((
            e.path().unwrap().display().to_string(),
            h.mode().unwrap(),
            h.mtime().unwrap(),
            h.uid().unwrap(),
            h.gid().unwrap(),
        ));
    }
    out
}

#[test]
fn archive_round_trip_gzip_and_zstd() {
    let tmp = TempDir::new().unwrap();
    let (src, dir) = (tmp.path().join("src"), tmp.path().join("out"));
    make_tree(&src);
    fs::create_dir(&dir).unwrap();
    let ran = run("archive", &[("folder", p(&src)), ("dir", p(&dir))], &[]);
    ran.ok();
    for (step, file, magic) in [
        ("pack-gz", "backup.tar.gz", &[0x1f, 0x8b][..]),
        ("pack-zst", "backup.tar.zst", &[0x28, 0xb5, 0x2f, 0xfd][..]),
    ] {
        let out = ran.outputs(step);
        let path = dir.join(file);
        assert_eq!(out["path"], p(&path));
        assert_eq!(out["files"], 6, "{out}");
        assert_eq!(out["bytes"], 100_000 + 8 + 10 + 18 + 9 + 8);
        assert_eq!(out["sha256"], sha256_hex(&path));
        assert_eq!(out["archive_bytes"], fs::metadata(&path).unwrap().len());
        assert!(fs::read(&path).unwrap().starts_with(magic), "{file} magic");
        let entries = list_archive(&path);
        let meta = entries
            .iter()
            .find(|e| e.0 == "db/table/_meta")
            .expect("db/table/_meta in the archive");
        assert_eq!(meta.1 & 0o7777, 0o644);
        assert_eq!(meta.2, 1_700_000_000);
        if is_root() {
            assert_eq!((meta.3, meta.4), (10001, 10001), "numeric owner kept");
        }
        // Not secret: readable as usual.
        assert_eq!(fs::metadata(&path).unwrap().mode() & 0o777, 0o644);
    }
    for (step, folder) in [("unpack-gz", "from-gz"), ("unpack-zst", "from-zst")] {
        let out = ran.outputs(step);
        assert_eq!(out["files"], 6, "{out}");
        // tar keeps whole seconds; the tree's mtimes are whole seconds.
        assert_same_tree(&src, &dir.join(folder), false);
    }
    assert_eq!(ran.outputs("unpack-zst")["compression"], "zstd");
    assert_eq!(ran.outputs("unpack-gz")["compression"], "gzip");
}

/// A secret archive is 0600 even with umask 000, and so is its temporary file while it is
/// being written (watched from another thread during a multi-megabyte write).
#[test]
fn archive_secret_is_private_from_creation() {
    let tmp = TempDir::new().unwrap();
    let (src, dir) = (tmp.path().join("keys"), tmp.path().join("out"));
    fs::create_dir_all(&src).unwrap();
    fs::create_dir(&dir).unwrap();
    let mut noise = Vec::with_capacity(24 << 20);
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    while noise.len() < 24 << 20 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        noise.extend_from_slice(&x.to_le_bytes());
    }
    fs::write(src.join("private.key"), &noise).unwrap();

    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let watcher = {
        let (dir, stop) = (dir.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut seen = Vec::new();
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                for e in fs::read_dir(&dir).into_iter().flatten().flatten() {
                    if let Ok(m) = e.metadata() {
                        if m.is_file() {
                            seen.push((
                                e.file_name().to_string_lossy().into_owned(),
                                m.mode() & 0o777,
                            ));
                        }
                    }
                }
                std::thread::sleep(std::time::Duration::from_millis(2));
            }
            seen
        })
    };
    let ran = run_umask0(
        "archive",
        &[("folder", p(&src)), ("dir", p(&dir)), ("secret", "true")],
    );
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let seen = watcher.join().unwrap();
    ran.ok();
    for file in ["backup.tar.gz", "backup.tar.zst"] {
        assert_eq!(
            fs::metadata(dir.join(file)).unwrap().mode() & 0o777,
            0o600,
            "{file}"
        );
    }
    assert!(
        seen.iter().any(|(name, _)| name.contains(".opsplan-")),
        "the watcher never saw the temporary file; make the input larger"
    );
    for (name, mode) in &seen {
        assert_eq!(*mode, 0o600, "{name} was visible with mode {mode:o}");
    }

    // The same with secret off and umask 000: world-readable, as asked.
    let dir2 = tmp.path().join("out2");
    fs::create_dir(&dir2).unwrap();
    run_umask0("archive", &[("folder", p(&src)), ("dir", p(&dir2))]).ok();
    assert_eq!(
        fs::metadata(dir2.join("backup.tar.gz")).unwrap().mode() & 0o777,
        0o644
    );
}

/// A raw tar entry: name, type, link name, content.
type RawEntry<'a> = (&'a str, tar::EntryType, &'a str, &'a [u8]);

/// Writes a tar.gz whose entries are given raw (name bytes straight into the header, as
/// an attacker would), bypassing the tar crate's own path checks.
fn malicious_tar(path: &Path, entries: &[RawEntry]) {
    let file = fs::File::create(path).unwrap();
    let mut builder = tar::Builder::new(flate2::write::GzEncoder::new(
        file,
        flate2::Compression::default(),
    ));
    for (name, kind, link, data) in entries {
        let mut h = tar::Header::new_old();
        {
            let old = h.as_old_mut();
            old.name = [0; 100];
            old.name[..name.len()].copy_from_slice(name.as_bytes());
            old.linkname = [0; 100];
            old.linkname[..link.len()].copy_from_slice(link.as_bytes());
        }
        h.set_entry_type(*kind);
        h.set_mode(0o644);
        h.set_uid(0);
        h.set_gid(0);
        h.set_size(data.len() as u64);
        h.set_mtime(1_700_000_000);
        h.set_cksum();
        builder.append(&h, *data).unwrap();
    }
    builder
        .into_inner()
        .unwrap()
        .finish()
        .unwrap()
        .flush()
        .unwrap();
}

#[test]
fn archive_extract_refuses_entries_escaping_the_target() {
    let tmp = TempDir::new().unwrap();
    let outside = tmp.path().join("outside");
    fs::create_dir(&outside).unwrap();
    let outside_s = outside.display().to_string();
    let cases: Vec<(&str, Vec<RawEntry>, String)> = vec![
        (
            "dotdot",
            vec![
                ("ok.txt", tar::EntryType::Regular, "", b"fine"),
                (
                    "../outside/pwned.txt",
                    tar::EntryType::Regular,
                    "",
                    b"pwned",
                ),
            ],
            "has an entry `../outside/pwned.txt` that climbs out with `..`; refusing to \
             extract outside the target folder"
                .into(),
        ),
        (
            "absolute",
            vec![(
                "/tmp/opsplan-absolute-pwned.txt",
                tar::EntryType::Regular,
                "",
                b"pwned",
            )],
            "has an entry with an absolute path `/tmp/opsplan-absolute-pwned.txt`; refusing \
             to extract outside the target folder"
                .into(),
        ),
        (
            "symlink",
            vec![
                ("escape", tar::EntryType::Symlink, outside_s.as_str(), b""),
                ("escape/pwned.txt", tar::EntryType::Regular, "", b"pwned"),
            ],
            format!(
                "has an entry `escape/pwned.txt` that would be written through the symlink \
                 `escape` (-> {outside_s}); refusing to extract outside the target folder"
            ),
        ),
        (
            "hardlink",
            vec![("passwd", tar::EntryType::Link, "../outside/target", b"")],
            "has a hard link `../outside/target` that climbs out with `..`; refusing to \
             extract outside the target folder"
                .into(),
        ),
    ];
    for (name, entries, expected) in cases {
        let archive = tmp.path().join(format!("{name}.tar.gz"));
        malicious_tar(&archive, &entries);
        let target = tmp.path().join(format!("target-{name}"));
        let ran = run(
            "extract",
            &[("archive", p(&archive)), ("folder", p(&target))],
            &[],
        );
        assert_eq!(ran.code, 1, "{name}: {}", ran.all());
        assert_eq!(
            ran.error("unpack"),
            format!("archive {} {expected}", archive.display()),
            "{name}"
        );
        assert!(
            fs::read_dir(&outside).unwrap().next().is_none(),
            "{name}: something was written outside"
        );
    }
    assert!(!Path::new("/tmp/opsplan-absolute-pwned.txt").exists());
}

#[test]
fn archive_extract_over_non_empty_folder_needs_overwrite() {
    let tmp = TempDir::new().unwrap();
    let (src, dir) = (tmp.path().join("src"), tmp.path().join("out"));
    make_tree(&src);
    fs::create_dir(&dir).unwrap();
    run("archive", &[("folder", p(&src)), ("dir", p(&dir))], &[]).ok();
    let archive = dir.join("backup.tar.gz");
    let target = tmp.path().join("restore");
    write(&target.join("db/table/_meta"), b"local edit", 0o600, 1);

    let ran = run(
        "extract",
        &[("archive", p(&archive)), ("folder", p(&target))],
        &[],
    );
    assert_eq!(
        ran.error("unpack"),
        format!(
            "folder {} is not empty; set `overwrite: true` to extract over its contents",
            target.display()
        )
    );
    assert_eq!(
        fs::read(target.join("db/table/_meta")).unwrap(),
        b"local edit"
    );

    let params = [("archive", p(&archive)), ("folder", p(&target))];
    assert_ne!(run("extract-overwrite", &params, &[]).code, 0);
    run("extract-overwrite", &params, &["--force"]).ok();
    assert_eq!(
        fs::read(target.join("db/table/_meta")).unwrap(),
        b"meta v1\n"
    );
    assert_same_tree(&src, &target, false);

    let ran = run(
        "extract",
        &[
            ("archive", p(&tmp.path().join("nope.tar.gz"))),
            ("folder", p(&tmp.path().join("x"))),
        ],
        &[],
    );
    assert_eq!(
        ran.error("unpack"),
        format!(
            "archive {} does not exist",
            tmp.path().join("nope.tar.gz").display()
        )
    );
}

// ---------------------------------------------------------------- manifest and verify

fn backup(tmp: &Path) -> (PathBuf, PathBuf) {
    let (src, backup) = (tmp.join("src"), tmp.join("backup"));
    make_tree(&src);
    let ran = run(
        "backup",
        &[("source", p(&src)), ("backup", p(&backup))],
        &[],
    );
    let out = ran.ok().outputs("manifest");
    let manifest = backup.join("opsplan-manifest.json");
    assert_eq!(out["path"], p(&manifest));
    assert_eq!(out["files"], 6);
    assert_eq!(out["sha256"], sha256_hex(&manifest));
    (src, backup)
}

fn verify(backup: &Path, report_only: bool) -> Ran {
    run(
        "verify",
        &[
            ("backup", p(backup)),
            ("report_only", if report_only { "true" } else { "false" }),
        ],
        &[],
    )
}

#[test]
fn manifest_records_every_file_and_is_written_last() {
    let tmp = TempDir::new().unwrap();
    let (_, backup) = backup(tmp.path());
    let manifest = backup.join("opsplan-manifest.json");
    let doc: serde_json::Value = serde_json::from_slice(&fs::read(&manifest).unwrap()).unwrap();
    assert_eq!(doc["format"], "opsplan-backup-manifest");
    assert_eq!(doc["format_version"], 1);
    assert_eq!(
        doc["plan"],
        serde_json::json!({"name": "fs-backup", "version": "2.1.0", "system": "cosmo"})
    );
    assert_eq!(doc["system_version"], "0.3.1");
    assert_eq!(doc["exclude"], serde_json::json!(["*.lock"]));
    assert_eq!(doc["totals"]["files"], 6);
    let files = doc["files"].as_array().unwrap();
    let paths: Vec<&str> = files.iter().map(|f| f["path"].as_str().unwrap()).collect();
    assert_eq!(
        paths,
        [
            "data/abs-link",
            "data/bin/tool.sh",
            "data/dangling",
            "data/db/meta-link",
            "data/db/readonly.txt",
            "data/db/table/2026-04-15/ts.d",
            "data/db/table/_meta",
            "data/server.log",
            "data/tmp/scratch",
        ]
    );
    let meta = files
        .iter()
        .find(|f| f["path"] == "data/db/table/_meta")
        .unwrap();
    assert_eq!(meta["type"], "file");
    assert_eq!(meta["size"], 8);
    assert_eq!(meta["sha256"], hex::encode(Sha256::digest(b"meta v1\n")));
    assert_eq!(meta["mode"], "0644");
    assert_eq!(meta["mtime"], "2023-11-14T22:13:20Z");
    let link = files
        .iter()
        .find(|f| f["path"] == "data/db/meta-link")
        .unwrap();
    assert_eq!(link["type"], "symlink");
    assert_eq!(link["target"], "table/_meta");

    // Written last: no file of the backup is newer than the manifest (the copies keep
    // their old mtimes, so look at ctime, which nothing can set back).
    let m = fs::metadata(&manifest).unwrap();
    let manifest_time = (m.mtime(), m.mtime_nsec());
    for e in walkdir::WalkDir::new(&backup) {
        let e = e.unwrap();
        let em = fs::symlink_metadata(e.path()).unwrap();
        if e.path() != manifest && !em.is_dir() {
            assert!(
                (em.ctime(), em.ctime_nsec()) <= manifest_time,
                "{} changed after the manifest was written",
                e.path().display()
            );
        }
    }
    let ran = verify(&backup, false);
    let out = ran.ok().outputs("verify");
    assert_eq!(out["status"], "complete");
    assert_eq!(out["files"], 9);
    assert_eq!(out["bytes"], 100_000 + 8 + 10 + 18 + 9 + 8);
    assert_eq!(out["plan_name"], "fs-backup");
    assert_eq!(out["system_version"], "0.3.1");
}

#[test]
fn verify_reports_changed_missing_and_extra_files() {
    let tmp = TempDir::new().unwrap();
    let (_, backup) = backup(tmp.path());
    let data = backup.join("data");

    // One changed byte, same size and mtime.
    let ts = data.join("db/table/2026-04-15/ts.d");
    let mut bytes = fs::read(&ts).unwrap();
    bytes[50_000] ^= 1;
    fs::write(&ts, &bytes).unwrap();
    let ran = verify(&backup, false);
    assert_eq!(ran.code, 1);
    assert_eq!(
        ran.error("verify"),
        format!(
            "backup {} does not match its manifest: 1 changed (data/db/table/2026-04-15/ts.d: \
             sha256 differs)",
            backup.display()
        )
    );

    // Missing and extra, with a lock file the manifest excludes (not extra).
    fs::remove_file(data.join("server.log")).unwrap();
    fs::remove_file(data.join("db/meta-link")).unwrap();
    fs::write(data.join("db/table/new.d"), "late write").unwrap();
    fs::write(data.join("backup.lock"), "pid 1").unwrap();
    let ran = verify(&backup, false);
    assert_eq!(
        ran.error("verify"),
        format!(
            "backup {} does not match its manifest: 1 changed (data/db/table/2026-04-15/ts.d: \
             sha256 differs); 2 missing (data/db/meta-link, data/server.log); 1 extra \
             (data/db/table/new.d)",
            backup.display()
        )
    );
    let report = verify(&backup, true);
    let out = report.ok().outputs("verify");
    assert_eq!(out["status"], "mismatch");
    assert_eq!(
        out["changed"],
        serde_json::json!(["data/db/table/2026-04-15/ts.d"])
    );
    assert_eq!(
        out["missing"],
        serde_json::json!(["data/db/meta-link", "data/server.log"])
    );
    assert_eq!(out["extra"], serde_json::json!(["data/db/table/new.d"]));
}

#[test]
fn verify_without_manifest_is_incomplete() {
    let tmp = TempDir::new().unwrap();
    let (_, backup) = backup(tmp.path());
    fs::remove_file(backup.join("opsplan-manifest.json")).unwrap();
    let ran = verify(&backup, false);
    assert_eq!(
        ran.error("verify"),
        format!(
            "backup {0} is incomplete: it has no manifest {0}/opsplan-manifest.json (the \
             backup did not finish, or was not written by an opsplan plan)",
            backup.display()
        )
    );
    let out = verify(&backup, true);
    let out = out.ok().outputs("verify");
    assert_eq!(out["status"], "incomplete");
    assert_eq!(out["files"], 0);

    let ran = verify(&tmp.path().join("nope"), false);
    assert_eq!(
        ran.error("verify"),
        format!(
            "backup folder {} does not exist",
            tmp.path().join("nope").display()
        )
    );
}

/// A manifest step stopped by its timeout leaves neither the manifest nor its temporary
/// file: the backup stays "incomplete".
#[test]
fn manifest_cancelled_leaves_no_manifest() {
    let tmp = TempDir::new().unwrap();
    let backup = tmp.path().join("backup");
    fs::create_dir(&backup).unwrap();
    let big = fs::File::create(backup.join("big.bin")).unwrap();
    // Sparse: cheap to make, long to hash.
    big.set_len(4 << 30).unwrap();
    let started = std::time::Instant::now();
    let ran = run("manifest-timeout", &[("backup", p(&backup))], &[]);
    assert_eq!(ran.code, 1, "{}", ran.all());
    assert_eq!(ran.error("manifest"), "timed out after 300ms");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(20),
        "cancel was not prompt"
    );
    let names: Vec<String> = fs::read_dir(&backup)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["big.bin"]);
    assert_eq!(
        verify(&backup, true).ok().outputs("verify")["status"],
        "incomplete"
    );
}

// ---------------------------------------------------------------- fs.remove

#[test]
fn remove_tree_and_refusals() {
    let tmp = TempDir::new().unwrap();
    let target = tmp.path().join("data");
    make_tree(&target);
    fs::set_permissions(
        target.join("db/readonly.txt"),
        fs::Permissions::from_mode(0o444),
    )
    .unwrap();
    let ran = run("remove", &[("target", p(&target))], &["--yes", "--force"]);
    // 6 files, 3 symlinks, 7 folders (with `data` itself).
    assert_eq!(ran.ok().outputs("remove")["removed"], 16);
    assert!(!target.exists());

    let ran = run(
        "remove",
        &[("target", p(&target)), ("must_exist", "true")],
        &["--yes", "--force"],
    );
    assert_eq!(
        ran.error("remove"),
        format!("{} does not exist (`must_exist: true`)", target.display())
    );
    let ran = run("remove", &[("target", p(&target))], &["--yes", "--force"]);
    assert_eq!(ran.ok().outputs("remove")["existed"], false);

    // `/` spelled in ways validation cannot see.
    let sneaky = format!("{}/../../../../../../..", tmp.path().display());
    for root in ["/", "//", sneaky.as_str()] {
        let ran = run("remove", &[("target", root)], &["--yes", "--force"]);
        assert_eq!(
            ran.error("remove"),
            format!("refusing to remove `{root}`: it is the root folder /")
        );
    }
    let home = std::env::var("HOME").unwrap_or_else(|_| "/root".into());
    let ran = run("remove", &[("target", &home)], &["--yes", "--force"]);
    assert_eq!(
        ran.error("remove"),
        format!("refusing to remove `{home}`: it is the home folder")
    );
    assert!(Path::new(&home).exists());
}

// ---------------------------------------------------------------- preview and diagnostics

#[test]
fn preview_of_every_fs_step() {
    insta::assert_snapshot!(opsplan_text(&["preview", &fixture("preview")]));
}

#[test]
fn diagnostics_for_wrong_arguments() {
    insta::assert_snapshot!(opsplan_text(&["validate", &fixture("invalid-args")]));
}

// ---------------------------------------------------------------- hostile files, crashes

/// Runs `swap.yaml`'s `step` over `src` with the debug hook that, just before the step
/// opens `victim`, replaces it by what `swap` says. Killed after 30 s (an open that blocks
/// on a fifo would otherwise hang the test).
fn run_swapped(step: &str, src: &Path, dir: &Path, swap: &str, secret: &Path) -> (Ran, f64) {
    let hook = r#"case "$1" in
  */victim)
    rm -f "$1"
    case "$SWAP_TO" in
      symlink) ln -s "$SECRET" "$1" ;;
      fifo) mkfifo "$1" ;;
      device) mknod "$1" c 1 5 ;;
      hardlink) ln "$SECRET" "$1" ;;
    esac ;;
esac"#;
    let mut cmd = opsplan_command();
    cmd.arg("run")
        .arg(fixture("swap"))
        .args(sets(&[("step", step), ("source", p(src)), ("dir", p(dir))]))
        .args(["--log-format", "json"])
        .env("OPSPLAN_TEST_FS_BEFORE_OPEN", hook)
        .env("SWAP_TO", swap)
        .env("SECRET", secret)
        .current_dir(repo_root())
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let ran = bin::run_within(cmd, std::time::Duration::from_secs(30));
    let seconds = ran.elapsed.as_secs_f64();
    (ran, seconds)
}

/// Every byte below `dir`, archives decompressed, to look for content that must not be
/// there.
fn all_content(dir: &Path) -> Vec<u8> {
    let mut all = Vec::new();
    for e in walkdir::WalkDir::new(dir).follow_links(false) {
        let e = e.unwrap();
        if !e.file_type().is_file() {
            continue;
        }
        let bytes = fs::read(e.path()).unwrap();
        if e.path().extension().is_some_and(|x| x == "gz") {
            use std::io::Read;
            let mut out = Vec::new();
            let _ = flate2::read::GzDecoder::new(&bytes[..]).read_to_end(&mut out);
            all.extend(out);
        }
        all.extend(bytes);
    }
    all
}

/// A listed file swapped, between the listing and the open, for a symlink to a file the
/// copy must not read, a fifo, a device or a hard link to another existing file (a file
/// rewritten in place, even under a reused inode number, is the owner's own write and is
/// copied as rsync would): `fs.sync`, `archive` and
/// `manifest` refuse it, naming it, well within their timeout, and copy nothing of it.
#[test]
fn swapped_files_are_refused_never_read_nor_waited_on() {
    let mut swaps = vec![
        ("symlink", "was replaced by a symlink after it was listed"),
        (
            "fifo",
            "is a fifo now, not the regular file that was listed",
        ),
        (
            "hardlink",
            "was replaced by another file after it was listed",
        ),
    ];
    if is_root() {
        swaps.push((
            "device",
            "is a device now, not the regular file that was listed",
        ));
    }
    for step in ["sync", "pack", "manifest"] {
        for (swap, want) in &swaps {
            let tmp = TempDir::new().unwrap();
            let (src, dir) = (tmp.path().join("src"), tmp.path().join("out"));
            fs::create_dir_all(&src).unwrap();
            fs::create_dir_all(&dir).unwrap();
            fs::write(src.join("a.txt"), "plain").unwrap();
            fs::write(src.join("victim"), "listed content").unwrap();
            let secret = tmp.path().join("root-only.txt");
            fs::write(&secret, "TOP-SECRET-BYTES").unwrap();
            let (ran, secs) = run_swapped(step, &src, &dir, swap, &secret);
            assert_eq!(ran.code, 1, "{step}/{swap}: {}", ran.all());
            let error = ran.error(step);
            assert!(
                error.contains(want) && error.contains("victim"),
                "{step}/{swap}: {error}"
            );
            assert!(
                secs < 9.0,
                "{step}/{swap}: took {secs:.1}s, past the timeout"
            );
            let content = all_content(&dir);
            let needle = b"TOP-SECRET-BYTES";
            assert!(
                !content.windows(needle.len()).any(|w| w == needle),
                "{step}/{swap}: the file behind the swap was copied"
            );
        }
    }
}

fn temp_names(dir: &Path) -> Vec<String> {
    walkdir::WalkDir::new(dir)
        .into_iter()
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".opsplan-") && !n.starts_with("opsplan-manifest"))
        .collect()
}

/// `kill -9` in the middle of `fs.sync` leaves its temporary file; the rerun removes it,
/// and neither `manifest` nor `verify` ever counts one (a leftover placed by hand beside
/// the copy, or one an old manifest lists, is not backup content).
#[test]
fn crash_leftovers_are_cleaned_and_never_part_of_a_backup() {
    let tmp = TempDir::new().unwrap();
    let (src, backup) = (tmp.path().join("src"), tmp.path().join("backup"));
    let dest = backup.join("data");
    fs::create_dir_all(&src).unwrap();
    fs::write(src.join("small.txt"), "small").unwrap();
    // Sparse: instant to make, seconds to copy.
    fs::File::create(src.join("big.bin"))
        .unwrap()
        .set_len(8 << 30)
        .unwrap();
    let mut cmd = opsplan_command();
    cmd.arg("run")
        .arg(fixture("sync"))
        .args(sets(&[("source", p(&src)), ("destination", p(&dest))]))
        .current_dir(repo_root())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let mut child = cmd.spawn().unwrap();
    // Files are copied several at a time: kill once small.txt is done and big.bin is being
    // written, so that big.bin's is the one temporary file left.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !(dest.join("small.txt").exists()
        && temp_names(&dest)
            .iter()
            .any(|n| n.starts_with(".big.bin.opsplan-")))
    {
        assert!(
            std::time::Instant::now() < deadline,
            "no temporary file seen"
        );
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let left = temp_names(&dest);
    assert_eq!(left.len(), 1, "{left:?}");
    assert!(left[0].starts_with(".big.bin.opsplan-"), "{left:?}");

    // The rerun (on a smaller file, to be quick) removes the leftover.
    fs::File::create(src.join("big.bin"))
        .unwrap()
        .set_len(10)
        .unwrap();
    let ran = sync_with("sync", &src, &dest);
    ran.ok();
    assert!(
        ran.all()
            .contains("removed 1 temporary file(s) an interrupted run left"),
        "{}",
        ran.all()
    );
    assert_eq!(temp_names(&dest), Vec::<String>::new());

    // A leftover of another kind of write (an archive killed beside the copy) is not
    // listed by manifest, and verify calls the backup complete without counting it.
    fs::write(
        backup.join(".db.tar.gz.opsplan-0badf00d"),
        "half an archive",
    )
    .unwrap();
    let ran = run(
        "backup",
        &[("source", p(&src)), ("backup", p(&backup))],
        &[],
    );
    let out = ran.ok().outputs("manifest");
    assert_eq!(out["files"], 2, "{}", ran.all());
    let manifest = backup.join("opsplan-manifest.json");
    let text = fs::read_to_string(&manifest).unwrap();
    assert!(!text.contains(".opsplan-"), "{text}");
    assert_eq!(
        verify(&backup, true).ok().outputs("verify")["status"],
        "complete"
    );

    // A manifest that lists a temporary file (written by an older engine) is a mismatch.
    let mut doc: serde_json::Value = serde_json::from_str(&text).unwrap();
    let mut bogus = doc["files"][0].clone();
    bogus["path"] = ".db.tar.gz.opsplan-0badf00d".into();
    doc["files"].as_array_mut().unwrap().push(bogus);
    fs::write(&manifest, serde_json::to_vec_pretty(&doc).unwrap()).unwrap();
    let out = verify(&backup, true);
    let out = out.ok().outputs("verify");
    assert_eq!(out["status"], "mismatch");
    assert_eq!(
        out["changed"],
        serde_json::json!([".db.tar.gz.opsplan-0badf00d"])
    );
}

/// A stale temporary file of an archive (its create was killed) is removed by the next
/// create, and is never packed when it lies in the folder being archived.
#[test]
fn archive_removes_its_stale_temporary_files() {
    let tmp = TempDir::new().unwrap();
    let (folder, dir) = (tmp.path().join("f"), tmp.path().join("d"));
    fs::create_dir_all(&folder).unwrap();
    fs::create_dir_all(&dir).unwrap();
    fs::write(folder.join("a.txt"), "a").unwrap();
    fs::write(folder.join(".a.txt.opsplan-12345678"), "torn copy").unwrap();
    fs::write(dir.join(".backup.tar.gz.opsplan-deadbeef"), "torn").unwrap();
    let ran = run("archive", &[("folder", p(&folder)), ("dir", p(&dir))], &[]);
    ran.ok();
    assert!(!dir.join(".backup.tar.gz.opsplan-deadbeef").exists());
    let names: Vec<String> = list_archive(&dir.join("backup.tar.gz"))
        .into_iter()
        .map(|e| e.0)
        .collect();
    assert!(!names.iter().any(|n| n.contains(".opsplan-")), "{names:?}");
    assert_eq!(ran.outputs("pack-gz")["files"], 1);
}
