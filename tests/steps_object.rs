//! Step types of the object group against their real counterparts (see each test).
//!
//! `object.sync` runs the real binary against moto_server (PyPI `moto[server]`), a real S3
//! API implementation, started by each test on a free loopback port and killed by a Drop
//! guard. Werkzeug logs every request line to moto's stderr in order; the tests read that
//! access log to prove what was (and was not) sent, and in which order. Objects on the
//! server are read back with object_store, independently of the step under test.

use crate::steps_common::opsplan_command;
use opsplan_testkit::bin::{self, Ran};

use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::path::Path as ObjPath;
use object_store::{ObjectStore, ObjectStoreExt};
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The secret access key the plans get; no output may ever contain it.
const SECRET: &str = "opsplan-Test-Secret-Key-7f3a9c";
const KEY_ID: &str = "testing";

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn fixture(name: &str) -> String {
    format!("tests/fixtures/steps/object/{name}")
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// The test kit's moto_server.
struct Moto {
    port: u16,
    server: opsplan_testkit::moto::Moto,
}

impl Moto {
    fn start() -> Moto {
        Moto::start_with(&[])
    }

    fn start_with(env: &[(&str, &str)]) -> Moto {
        let server = opsplan_testkit::moto::Moto::start_with(env).unwrap_or_else(|e| panic!("{e}"));
        Moto {
            port: server.port,
            server,
        }
    }

    fn endpoint(&self) -> String {
        self.server.endpoint()
    }

    /// Request lines (`PUT /bucket/key HTTP/1.1`) in the order the server handled them.
    fn requests(&self) -> Vec<String> {
        self.server.requests()
    }

    /// One unsigned HTTP request (moto accepts them while it does not enforce auth).
    fn raw(&self, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> String {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).expect("connect to moto");
        let mut req = format!(
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nConnection: close\r\nContent-Length: {}\r\n",
            self.port,
            body.len()
        );
        for (k, v) in headers {
            req.push_str(&format!("{k}: {v}\r\n"));
        }
        req.push_str("\r\n");
        req.push_str(body);
        stream.write_all(req.as_bytes()).expect("send to moto");
        let mut answer = String::new();
        stream.read_to_string(&mut answer).expect("read from moto");
        answer
    }

    fn create_bucket(&self, bucket: &str) {
        let answer = self.raw("PUT", &format!("/{bucket}"), &[], "");
        assert!(
            answer.starts_with("HTTP/1.1 200"),
            "create bucket {bucket}: {answer}"
        );
    }

    fn store(&self, bucket: &str) -> AmazonS3 {
        AmazonS3Builder::new()
            .with_endpoint(self.endpoint())
            .with_allow_http(true)
            .with_bucket_name(bucket)
            .with_region("us-east-1")
            .with_access_key_id(KEY_ID)
            .with_secret_access_key("anything")
            .build()
            .expect("object_store client for moto")
    }

    /// Every object of a bucket with its content.
    fn objects(&self, bucket: &str) -> BTreeMap<String, Vec<u8>> {
        let store = self.store(bucket);
        rt().block_on(async {
            use futures::TryStreamExt;
            let metas: Vec<_> = store.list(None).try_collect().await.expect("list bucket");
            let mut out = BTreeMap::new();
            for m in metas {
                let bytes = store
                    .get(&m.location)
                    .await
                    .expect("get")
                    .bytes()
                    .await
                    .expect("body");
                out.insert(m.location.to_string(), bytes.to_vec());
            }
            out
        })
    }

    fn put(&self, bucket: &str, key: &str, content: &[u8]) {
        let store = self.store(bucket);
        rt().block_on(async {
            store
                .put(&ObjPath::from(key), content.to_vec().into())
                .await
                .expect("put object")
        });
    }
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// What the fixtures' `report` step prints, and the secret check every run gets.
trait ReportLine {
    fn report(&self) -> BTreeMap<String, String>;
    fn output(&self, name: &str) -> u64;
    fn assert_no_secret(&self);
}

impl ReportLine for Ran {
    /// The `report` step's line: `outputs copied=3 copied_bytes=...`.
    fn report(&self) -> BTreeMap<String, String> {
        let all = self.all();
        let line = all
            .lines()
            .find(|l| l.contains("outputs copied="))
            .unwrap_or_else(|| panic!("no outputs line in:\n{all}"));
        line[line.find("outputs ").expect("outputs") + 8..]
            .split_whitespace()
            .filter_map(|kv| kv.split_once('='))
            .map(|(k, v)| (k.to_string(), v.trim_matches('\'').to_string()))
            .collect()
    }
    fn output(&self, name: &str) -> u64 {
        self.report()[name].parse().expect("a number")
    }
    fn assert_no_secret(&self) {
        assert!(
            !self.all().contains(SECRET),
            "the secret leaked:\n{}",
            self.all()
        );
    }
}

fn command(plan: &str, sets: &[(&str, String)], extra: &[&str]) -> Command {
    let mut cmd = opsplan_command();
    cmd.arg("run").arg(fixture(plan)).current_dir(repo_root());
    for (k, v) in sets {
        cmd.arg("--set").arg(format!("{k}={v}"));
    }
    cmd.args(extra)
        .env_remove("OPSPLAN_LOG")
        .env("NO_COLOR", "1")
        .env("OPSPLAN_TEST_S3_SECRET", SECRET)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

fn run(plan: &str, sets: &[(&str, String)], extra: &[&str]) -> Ran {
    let ran = bin::run_within(command(plan, sets, extra), Duration::from_secs(300));
    ran.assert_no_secret();
    ran
}

fn sync(moto: &Moto, source: &str, destination: &str, more: &[(&str, &str)]) -> Ran {
    let mut sets = vec![
        ("source", source.to_string()),
        ("destination", destination.to_string()),
        ("endpoint", moto.endpoint()),
    ];
    sets.extend(more.iter().map(|(k, v)| (*k, v.to_string())));
    run("sync.yaml", &sets, &[])
}

fn write(root: &Path, rel: &str, content: &[u8]) {
    let path = root.join(rel);
    std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
    std::fs::write(&path, content).expect("write");
}

/// Every file under `root` with its content.
fn files(root: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    for e in walkdir::WalkDir::new(root) {
        let e = e.expect("walk");
        if e.file_type().is_file() {
            let rel = e.path().strip_prefix(root).expect("under root");
            out.insert(
                rel.to_string_lossy().into_owned(),
                std::fs::read(e.path()).expect("read"),
            );
        }
    }
    out
}

/// A TSDB-like tree: blocks with chunks, an index and meta.json.
fn blocks(root: &Path, count: usize) -> BTreeMap<String, Vec<u8>> {
    for b in 0..count {
        write(
            root,
            &format!("blk{b:02}/chunks/000001"),
            format!("chunk data {b}").repeat(100).as_bytes(),
        );
        write(
            root,
            &format!("blk{b:02}/index"),
            format!("index {b}").as_bytes(),
        );
        write(
            root,
            &format!("blk{b:02}/meta.json"),
            format!("{{\"ulid\":\"blk{b:02}\"}}").as_bytes(),
        );
    }
    files(root)
}

fn prefixed(files: &BTreeMap<String, Vec<u8>>, prefix: &str) -> BTreeMap<String, Vec<u8>> {
    files
        .iter()
        .map(|(k, v)| (format!("{prefix}{k}"), v.clone()))
        .collect()
}

fn puts(moto: &Moto, since: usize) -> Vec<String> {
    moto.requests()[since..]
        .iter()
        .filter(|r| r.starts_with("PUT ") || r.starts_with("POST "))
        .cloned()
        .collect()
}

// Local -> S3 -> local: every byte and every mtime survives; a nested tree, an empty file.
#[test]
fn round_trip_local_s3_local() {
    let moto = Moto::start();
    moto.create_bucket("roundtrip");
    let src = tempfile::tempdir().expect("tmp");
    let original = blocks(src.path(), 3);
    write(src.path(), "empty", b"");
    write(
        src.path(),
        "deep/er/still deeper/file with spaces.txt",
        b"spaces",
    );
    let original = {
        let mut o = original;
        o.insert("empty".into(), Vec::new());
        o.insert(
            "deep/er/still deeper/file with spaces.txt".into(),
            b"spaces".to_vec(),
        );
        o
    };
    let up = sync(
        &moto,
        &src.path().display().to_string(),
        "s3://roundtrip/backups/prod",
        &[],
    );
    assert_eq!(up.code, 0, "{}", up.all());
    assert_eq!(up.output("copied"), original.len() as u64, "{}", up.all());
    let bytes: usize = original.values().map(std::vec::Vec::len).sum();
    assert_eq!(up.output("copied_bytes"), bytes as u64);
    assert_eq!(
        moto.objects("roundtrip"),
        prefixed(&original, "backups/prod/")
    );

    let back = tempfile::tempdir().expect("tmp");
    let dest = back.path().join("restored");
    let down = sync(
        &moto,
        "s3://roundtrip/backups/prod/",
        &dest.display().to_string(),
        &[],
    );
    assert_eq!(down.code, 0, "{}", down.all());
    assert_eq!(down.output("copied"), original.len() as u64);
    assert_eq!(files(&dest), original);
    for key in original.keys() {
        let a = std::fs::metadata(src.path().join(key))
            .and_then(|m| m.modified())
            .expect("mtime");
        let b = std::fs::metadata(dest.join(key))
            .and_then(|m| m.modified())
            .expect("mtime");
        assert_eq!(a, b, "mtime of {key} did not survive the round trip");
    }
    // No temporary file is left behind.
    assert!(
        walkdir::WalkDir::new(&dest)
            .into_iter()
            .filter_map(Result::ok)
            .all(|e| !e.file_name().to_string_lossy().ends_with(".opsplan-tmp")),
        "a temporary file was left in {}",
        dest.display()
    );
    // And back down again: nothing changed, nothing copied.
    let again = sync(
        &moto,
        "s3://roundtrip/backups/prod/",
        &dest.display().to_string(),
        &[],
    );
    assert_eq!(again.code, 0, "{}", again.all());
    assert_eq!(again.output("copied"), 0, "{}", again.all());
    assert_eq!(again.output("skipped"), original.len() as u64);
}

// A second upload with nothing changed: the outputs say 0 copied, and the server saw no PUT.
// Touching one file (same size, new mtime) sends exactly that one again.
#[test]
fn unchanged_objects_are_not_sent_again() {
    let moto = Moto::start();
    moto.create_bucket("unchanged");
    let src = tempfile::tempdir().expect("tmp");
    let original = blocks(src.path(), 4);
    let first = sync(
        &moto,
        &src.path().display().to_string(),
        "s3://unchanged/",
        &[],
    );
    assert_eq!(first.code, 0, "{}", first.all());
    assert_eq!(first.output("copied"), original.len() as u64);

    let before = moto.requests().len();
    let second = sync(
        &moto,
        &src.path().display().to_string(),
        "s3://unchanged/",
        &[],
    );
    assert_eq!(second.code, 0, "{}", second.all());
    let out = second.report();
    assert_eq!(out["copied"], "0", "{}", second.all());
    assert_eq!(out["copied_bytes"], "0");
    assert_eq!(out["skipped"], original.len().to_string());
    assert_eq!(out["deleted"], "0");
    assert!(out["duration"].parse::<f64>().is_ok(), "{out:?}");
    assert_eq!(
        puts(&moto, before),
        Vec::<String>::new(),
        "the unchanged sync wrote to the server"
    );

    let touched = src.path().join("blk02/index");
    let later = std::time::SystemTime::now() + Duration::from_secs(3600);
    std::fs::File::options()
        .write(true)
        .open(&touched)
        .and_then(|f| f.set_modified(later))
        .expect("touch");
    let before = moto.requests().len();
    let third = sync(
        &moto,
        &src.path().display().to_string(),
        "s3://unchanged/",
        &[],
    );
    assert_eq!(third.code, 0, "{}", third.all());
    assert_eq!(third.output("copied"), 1, "{}", third.all());
    assert_eq!(
        puts(&moto, before),
        vec!["PUT /unchanged/blk02/index HTTP/1.1".to_string()]
    );
}

// include/exclude globs are relative to the source prefix; `*` crosses `/`.
#[test]
fn include_and_exclude_globs() {
    let moto = Moto::start();
    moto.create_bucket("source");
    let src = tempfile::tempdir().expect("tmp");
    for key in [
        "tenant/blk01/chunks/000001",
        "tenant/blk01/meta.json",
        "tenant/blk01/markers/m1",
        "tenant/bucket-index.json.gz",
        "tenant/blk02/meta.json",
        "other/blk03/meta.json",
    ] {
        write(src.path(), key, key.as_bytes());
    }
    let up = sync(
        &moto,
        &src.path().display().to_string(),
        "s3://source/mimir",
        &[],
    );
    assert_eq!(up.code, 0, "{}", up.all());

    let dest = tempfile::tempdir().expect("tmp");
    let r = sync(
        &moto,
        "s3://source/mimir",
        &dest.path().display().to_string(),
        &[
            ("include", "tenant/**"),
            ("exclude", "*/markers/*,*/bucket-index.json.gz"),
        ],
    );
    assert_eq!(r.code, 0, "{}", r.all());
    let got: Vec<String> = files(dest.path()).into_keys().collect();
    assert_eq!(
        got,
        [
            "tenant/blk01/chunks/000001",
            "tenant/blk01/meta.json",
            "tenant/blk02/meta.json"
        ]
    );
}

// exclude_if_present skips every folder holding the marker, with everything below it.
#[test]
fn exclude_if_present_skips_marked_folders() {
    let moto = Moto::start();
    moto.create_bucket("mimir");
    let src = tempfile::tempdir().expect("tmp");
    blocks(src.path(), 3);
    write(src.path(), "blk01/deletion-mark.json", b"{}");
    let r = sync(
        &moto,
        &src.path().display().to_string(),
        "s3://mimir/",
        &[("marker", "deletion-mark.json")],
    );
    assert_eq!(r.code, 0, "{}", r.all());
    let keys: Vec<String> = moto.objects("mimir").into_keys().collect();
    assert_eq!(
        keys,
        [
            "blk00/chunks/000001",
            "blk00/index",
            "blk00/meta.json",
            "blk02/chunks/000001",
            "blk02/index",
            "blk02/meta.json"
        ]
    );
}

// `last`: in the server's own access log, every meta.json PUT comes after every other PUT.
#[test]
fn last_objects_are_sent_after_everything_else() {
    let moto = Moto::start();
    moto.create_bucket("restore");
    let src = tempfile::tempdir().expect("tmp");
    let original = blocks(src.path(), 10);
    let before = moto.requests().len();
    let r = sync(
        &moto,
        &src.path().display().to_string(),
        "s3://restore/",
        &[("last", "*/meta.json"), ("parallel", "4")],
    );
    assert_eq!(r.code, 0, "{}", r.all());
    assert_eq!(moto.objects("restore"), original);
    let puts = puts(&moto, before);
    assert_eq!(puts.len(), 30, "{puts:#?}");
    let is_meta = |p: &String| p.contains("/meta.json ");
    let last_other = puts.iter().rposition(|p| !is_meta(p)).expect("block files");
    let first_meta = puts.iter().position(is_meta).expect("meta.json files");
    assert!(
        last_other < first_meta,
        "a meta.json was sent before a block file:\n{puts:#?}"
    );
    assert!(r
        .all()
        .contains("sending 10 `last` objects now that the other 20 are in place"));
}

// A failure in the first phase (the server refuses a multipart upload) means no `last`
// object is sent at all.
#[test]
fn failure_before_last_sends_no_last_object() {
    // This server wants parts of at least 8 MiB; the step sends 5 MiB parts.
    let moto = Moto::start_with(&[("S3_UPLOAD_PART_MIN_SIZE", "8388608")]);
    moto.create_bucket("restore");
    let src = tempfile::tempdir().expect("tmp");
    blocks(src.path(), 2);
    write(src.path(), "blk00/chunks/000002", &vec![7u8; 12 << 20]);
    let before = moto.requests().len();
    let r = sync(
        &moto,
        &src.path().display().to_string(),
        "s3://restore/",
        &[
            ("last", "*/meta.json"),
            ("threshold", "6MiB"),
            ("part_size", "5MiB"),
            ("parallel", "1"),
        ],
    );
    assert_eq!(r.code, 1, "{}", r.all());
    let endpoint = moto.endpoint();
    assert!(
        r.stderr.contains(&format!(
            "1 of 5 transfers failed (3 not started after the first failure): `blk00/chunks/000002`: {endpoint} refused the multipart upload while uploading `blk00/chunks/000002` (EntityTooSmall): a part is smaller than the server's minimum; raise `part_size` (S3 needs at least 5MiB); the 2 `last` objects were not sent"
        )),
        "{}",
        r.stderr
    );
    let puts = puts(&moto, before);
    assert!(puts.iter().any(|p| p.contains("?uploads")), "{puts:#?}");
    assert!(
        !puts.iter().any(|p| p.contains("meta.json")),
        "a meta.json was sent:\n{puts:#?}"
    );
    assert!(!moto
        .objects("restore")
        .keys()
        .any(|k| k.ends_with("meta.json")));
}

// delete: true removes destination objects the source lacks, after the copies; excluded keys
// are left alone. The step is destructive: it needs --force without a terminal.
#[test]
fn delete_removes_extraneous_objects() {
    let moto = Moto::start();
    moto.create_bucket("mirror");
    let src = tempfile::tempdir().expect("tmp");
    let original = blocks(src.path(), 2);
    moto.put("mirror", "blk00/stale-chunk", b"old");
    moto.put("mirror", "gone-block/meta.json", b"old");
    moto.put("mirror", "keep/markers/m1", b"excluded, so kept");
    let sets = vec![
        ("source", src.path().display().to_string()),
        ("destination", "s3://mirror/".to_string()),
        ("endpoint", moto.endpoint()),
        ("exclude", "*/markers/*".to_string()),
    ];
    let refused = run("sync-delete.yaml", &sets, &[]);
    assert_eq!(refused.code, 2, "{}", refused.all());
    assert!(refused.stderr.contains("--force"), "{}", refused.stderr);
    assert_eq!(
        moto.objects("mirror").len(),
        3,
        "the refused run touched the bucket"
    );

    let r = run("sync-delete.yaml", &sets, &["--force"]);
    assert_eq!(r.code, 0, "{}", r.all());
    assert_eq!(r.output("deleted"), 2, "{}", r.all());
    assert_eq!(r.output("copied"), original.len() as u64);
    let mut want = original;
    want.insert("keep/markers/m1".into(), b"excluded, so kept".to_vec());
    assert_eq!(moto.objects("mirror"), want);
    // Deletes come after every copy.
    let reqs = moto.requests();
    let last_put = reqs
        .iter()
        .rposition(|r| r.starts_with("PUT /mirror/"))
        .expect("puts");
    let first_delete = reqs
        .iter()
        .position(|r| r.starts_with("DELETE ") || r.starts_with("POST /mirror?delete"))
        .expect("deletes");
    assert!(last_put < first_delete, "{reqs:#?}");
}

// Multipart above the threshold: the access log shows the parts, the content is intact.
#[test]
fn large_objects_go_multipart() {
    let moto = Moto::start();
    moto.create_bucket("big");
    let src = tempfile::tempdir().expect("tmp");
    let big: Vec<u8> = (0..(12u32 << 20)).map(|i| (i % 251) as u8).collect();
    write(src.path(), "big.bin", &big);
    write(src.path(), "small.bin", b"small");
    let before = moto.requests().len();
    let r = sync(
        &moto,
        &src.path().display().to_string(),
        "s3://big/x",
        &[("threshold", "8MiB"), ("part_size", "5MiB")],
    );
    assert_eq!(r.code, 0, "{}", r.all());
    let reqs = moto.requests()[before..].to_vec();
    assert!(
        reqs.iter()
            .any(|r| r.starts_with("POST /big/x/big.bin?uploads")),
        "{reqs:#?}"
    );
    let parts = reqs
        .iter()
        .filter(|r| r.starts_with("PUT /big/x/big.bin?") && r.contains("partNumber="))
        .count();
    assert_eq!(parts, 3, "{reqs:#?}");
    assert!(
        reqs.iter()
            .any(|r| r.starts_with("PUT /big/x/small.bin HTTP")),
        "{reqs:#?}"
    );
    let objects = moto.objects("big");
    assert!(objects["x/big.bin"] == big, "the multipart object differs");
    // Its recorded mtime makes the next sync skip it.
    let again = sync(
        &moto,
        &src.path().display().to_string(),
        "s3://big/x",
        &[("threshold", "8MiB"), ("part_size", "5MiB")],
    );
    assert_eq!(again.output("copied"), 0, "{}", again.all());
}

// A sync killed midway (SIGKILL, parallel 1) and rerun copies only the remainder.
#[test]
fn killed_sync_resumes_with_the_remainder() {
    let moto = Moto::start();
    moto.create_bucket("resume");
    let src = tempfile::tempdir().expect("tmp");
    let total = 300;
    for i in 0..total {
        write(
            src.path(),
            &format!("obj/{i:04}"),
            &vec![(i % 256) as u8; 20_000],
        );
    }
    let sets = vec![
        ("source", src.path().display().to_string()),
        ("destination", "s3://resume/".to_string()),
        ("endpoint", moto.endpoint()),
        ("parallel", "1".to_string()),
    ];
    let mut child = command("sync.yaml", &sets, &[])
        .spawn()
        .expect("start opsplan");
    let deadline = Instant::now() + Duration::from_secs(60);
    while puts(&moto, 0)
        .iter()
        .filter(|p| p.starts_with("PUT /resume/"))
        .count()
        < 40
    {
        assert!(Instant::now() < deadline, "the sync did not get going");
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().expect("kill opsplan");
    let _ = child.wait();
    let present = moto.objects("resume").len();
    assert!(
        present >= 40 && present < total,
        "{present} of {total} objects before the rerun: the kill was not midway"
    );
    let before = moto.requests().len();
    let r = run("sync.yaml", &sets, &[]);
    assert_eq!(r.code, 0, "{}", r.all());
    assert_eq!(r.output("copied"), (total - present) as u64, "{}", r.all());
    assert_eq!(r.output("skipped"), present as u64);
    assert_eq!(puts(&moto, before).len(), total - present);
    assert_eq!(moto.objects("resume"), prefixed(&files(src.path()), ""));
    // Progress lines come every 200ms (the fixture's progress_interval).
    if r.elapsed > Duration::from_millis(600) {
        assert!(r.all().contains("progress: "), "{}", r.all());
        assert!(
            r.all().contains(&format!("/{} objects, ", total - present)),
            "{}",
            r.all()
        );
    }
}

// A download killed midway leaves no truncated file under the final name; the rerun
// completes it.
#[test]
fn killed_download_leaves_no_truncated_file() {
    let moto = Moto::start();
    moto.create_bucket("download");
    let big: Vec<u8> = (0..(48u32 << 20)).map(|i| (i % 253) as u8).collect();
    moto.put("download", "data/big.bin", &big);
    let dest = tempfile::tempdir().expect("tmp");
    let sets = vec![
        ("source", "s3://download/data".to_string()),
        ("destination", dest.path().display().to_string()),
        ("endpoint", moto.endpoint()),
    ];
    let tmp = dest.path().join(".big.bin.opsplan-tmp");
    let mut child = command("sync.yaml", &sets, &[])
        .spawn()
        .expect("start opsplan");
    let deadline = Instant::now() + Duration::from_secs(60);
    while std::fs::metadata(&tmp).map(|m| m.len()).unwrap_or(0) == 0 {
        assert!(Instant::now() < deadline, "the download did not start");
        std::thread::sleep(Duration::from_millis(1));
    }
    child.kill().expect("kill opsplan");
    let _ = child.wait();
    let partial = std::fs::metadata(&tmp).map(|m| m.len()).unwrap_or(0);
    assert!(
        !dest.path().join("big.bin").exists(),
        "big.bin exists under its final name after the kill (temp file had {partial} bytes)"
    );
    let r = run("sync.yaml", &sets, &[]);
    assert_eq!(r.code, 0, "{}", r.all());
    assert_eq!(r.output("copied"), 1);
    assert!(std::fs::read(dest.path().join("big.bin")).expect("big.bin") == big);
    assert!(!tmp.exists(), "the temporary file is still there");
}

// Checksum mode: equal size and mtime but different content is sent; equal content is not.
#[test]
fn checksum_mode_compares_content() {
    let moto = Moto::start();
    moto.create_bucket("sums");
    let src = tempfile::tempdir().expect("tmp");
    write(src.path(), "a", b"aaaa");
    write(src.path(), "b", b"bbbb");
    let plan = |dir: &Path| {
        vec![
            ("source", dir.display().to_string()),
            ("destination", "s3://sums/".to_string()),
            ("endpoint", moto.endpoint()),
        ]
    };
    let r = run("sync-checksum.yaml", &plan(src.path()), &[]);
    assert_eq!(r.code, 0, "{}", r.all());
    assert_eq!(r.output("copied"), 2);
    // Same size, same mtime, new content: only checksum mode notices.
    let path = src.path().join("b");
    let mtime = std::fs::metadata(&path)
        .and_then(|m| m.modified())
        .expect("mtime");
    std::fs::write(&path, b"BBBB").expect("write");
    std::fs::File::options()
        .write(true)
        .open(&path)
        .and_then(|f| f.set_modified(mtime))
        .expect("restore mtime");
    let by_mtime = sync(&moto, &src.path().display().to_string(), "s3://sums/", &[]);
    assert_eq!(by_mtime.output("copied"), 0, "{}", by_mtime.all());
    let by_sum = run("sync-checksum.yaml", &plan(src.path()), &[]);
    assert_eq!(by_sum.output("copied"), 1, "{}", by_sum.all());
    assert_eq!(moto.objects("sums")["b"], b"BBBB");
    let again = run("sync-checksum.yaml", &plan(src.path()), &[]);
    assert_eq!(again.output("copied"), 0, "{}", again.all());
}

// Unreachable endpoint: one sentence naming the endpoint and host:port, in seconds.
#[test]
fn unreachable_endpoint_fails_fast_with_a_clear_error() {
    let port = free_port();
    let src = tempfile::tempdir().expect("tmp");
    write(src.path(), "a", b"a");
    let r = run(
        "sync.yaml",
        &[
            ("source", src.path().display().to_string()),
            ("destination", "s3://backup/prod".to_string()),
            ("endpoint", format!("http://127.0.0.1:{port}")),
        ],
        &[],
    );
    assert_eq!(r.code, 1, "{}", r.all());
    assert!(r.elapsed < Duration::from_secs(10), "took {:?}", r.elapsed);
    assert!(
        r.stderr.contains(&format!(
            "cannot reach http://127.0.0.1:{port} (127.0.0.1:{port}) for bucket `backup` while listing: connection refused"
        )),
        "{}",
        r.stderr
    );
}

// Bucket not found, then bad credentials against a moto that enforces authentication: an
// unknown access key id, and a known one with the wrong secret.
#[test]
fn missing_bucket_and_bad_credentials_are_named() {
    let moto = Moto::start();
    let src = tempfile::tempdir().expect("tmp");
    write(src.path(), "a", b"a");
    let r = sync(
        &moto,
        &src.path().display().to_string(),
        "s3://no-such-bucket/x",
        &[],
    );
    assert_eq!(r.code, 1, "{}", r.all());
    assert!(
        r.stderr.contains(&format!(
            "bucket `no-such-bucket` does not exist at {}",
            moto.endpoint()
        )),
        "{}",
        r.stderr
    );
    drop(moto);

    // The first three requests are let through: the bucket, an IAM user and its access key.
    let moto = Moto::start_with(&[("INITIAL_NO_AUTH_ACTION_COUNT", "3")]);
    moto.create_bucket("locked");
    let iam = [
        ("Authorization", "AWS4-HMAC-SHA256 Credential=setup/20240101/us-east-1/iam/aws4_request, SignedHeaders=host, Signature=0"),
        ("Content-Type", "application/x-www-form-urlencoded"),
    ];
    let user = moto.raw(
        "POST",
        "/",
        &iam,
        "Action=CreateUser&UserName=backup&Version=2010-05-08",
    );
    assert!(user.starts_with("HTTP/1.1 200"), "{user}");
    let key = moto.raw(
        "POST",
        "/",
        &iam,
        "Action=CreateAccessKey&UserName=backup&Version=2010-05-08",
    );
    let key_id = key
        .split("<AccessKeyId>")
        .nth(1)
        .and_then(|s| s.split("</AccessKeyId>").next())
        .unwrap_or_else(|| panic!("no access key in {key}"))
        .to_string();

    let endpoint = moto.endpoint();
    let unknown = sync(
        &moto,
        &src.path().display().to_string(),
        "s3://locked/x",
        &[],
    );
    assert_eq!(unknown.code, 1, "{}", unknown.all());
    assert!(
        unknown.stderr.contains(&format!(
            "bad credentials for bucket `locked` at {endpoint}: the server does not know the access key id (InvalidAccessKeyId)"
        )),
        "{}",
        unknown.stderr
    );
    let wrong_secret = sync(
        &moto,
        &src.path().display().to_string(),
        "s3://locked/x",
        &[("key_id", &key_id)],
    );
    assert_eq!(wrong_secret.code, 1, "{}", wrong_secret.all());
    assert!(
        wrong_secret.stderr.contains(&format!(
            "bad credentials for bucket `locked` at {endpoint}: the secret access key does not match the access key id (SignatureDoesNotMatch)"
        )),
        "{}",
        wrong_secret.stderr
    );
    // Both were refused at the listing: nothing was attempted after it.
    assert!(puts(&moto, 0).iter().all(|p| !p.contains("/locked/")));
}

// object.stat counts a bucket prefix on moto and a local folder (per top-level prefix) and
// gives both as facts; keys beside the prefix are not counted, a folder marker (a zero-byte
// key ending in `/`) is, as S3 lists it, and the local copy's temporary files are not.
#[test]
fn stat_counts_objects_and_bytes() {
    let moto = Moto::start();
    moto.create_bucket("counted");
    let objects: BTreeMap<&str, &[u8]> = [
        ("logs/tenant-a/chunk-1", b"0123456789".as_slice()),
        ("logs/tenant-a/chunk-2", b"abc".as_slice()),
        ("logs/tenant-b/index", b"".as_slice()),
        ("logs/top.json", b"{}".as_slice()),
    ]
    .into();
    for (k, v) in &objects {
        moto.put("counted", k, v);
    }
    moto.put("counted", "other/not-counted", b"outside the prefix");
    let marker = moto.raw("PUT", "/counted/logs/empty-folder/", &[], "");
    assert!(marker.starts_with("HTTP/1.1 200"), "{marker}");
    let folder = tempfile::tempdir().expect("tmp");
    write(folder.path(), "mimir/blk/index", b"12345");
    write(folder.path(), "mimir/blk/meta.json", b"{}");
    write(folder.path(), "loki/index", b"1234567");
    write(
        folder.path(),
        "opsplan-generation.json",
        b"top level, no fact",
    );
    write(
        folder.path(),
        "loki/.chunk.opsplan-tmp",
        b"an unfinished download",
    );
    let ran = run(
        "stat.yaml",
        &[
            ("location", "s3://counted/logs".to_string()),
            ("folder", folder.path().display().to_string()),
            ("endpoint", moto.endpoint()),
        ],
        &[],
    );
    assert_eq!(ran.code, 0, "{}", ran.all());
    let all = ran.all();
    let line = all
        .lines()
        .find(|l| l.contains("stat {"))
        .unwrap_or_else(|| panic!("no stat line in:\n{all}"));
    // The JSON object starts after `stat `; the line may go on after it.
    let json: serde_json::Value =
        serde_json::Deserializer::from_str(&line[line.find("stat {").expect("stat") + 5..])
            .into_iter()
            .next()
            .expect("a JSON value")
            .expect("JSON");
    assert_eq!(
        json,
        serde_json::json!({
            "bucket": {"objects:restored": 5, "bytes:restored": 15},
            "prefixes": {
                "tenant-a": {"objects": 2, "bytes": 13},
                "tenant-b": {"objects": 1, "bytes": 0}
            },
            "folder": {
                "objects:mimir": 2, "bytes:mimir": 7,
                "objects:loki": 1, "bytes:loki": 7
            },
            "objects": 4,
            "bytes": 32
        }),
        "{all}"
    );
}

fn opsplan_stdout(args: &[&str]) -> (i32, String) {
    let out = opsplan_command()
        .args(args)
        .current_dir(repo_root())
        .env("NO_COLOR", "1")
        .env("OPSPLAN_TEST_S3_SECRET", SECRET)
        .output()
        .expect("run opsplan");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!text.contains(SECRET), "the secret leaked:\n{text}");
    (out.status.code().unwrap_or(-1), text)
}

#[test]
fn preview_snapshot() {
    let (code, text) = opsplan_stdout(&["preview", &fixture("preview.yaml")]);
    assert_eq!(code, 0, "{text}");
    insta::assert_snapshot!(text);
}

#[test]
fn argument_diagnostics_snapshot() {
    let (code, text) = opsplan_stdout(&["validate", &fixture("invalid-args.yaml")]);
    assert_eq!(code, 2, "{text}");
    insta::assert_snapshot!(text);
}
