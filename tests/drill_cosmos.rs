//! Restore drills for COSMOS 7 and COSMOS 6 (issue 6): the shipped plans (plans/cosmos7/*.yaml,
//! plans/cosmos6/*.yaml) run end to end through the real `opsplan` binary against the lab in
//! tests/lab/ (docs/design/0005-lab.md): the QuestDB stand-in, real rsync and busybox in
//! locally built images, the `mc` stand-in, and the `openc3.sh` stand-ins, all on the
//! machine's Docker engine under a unique LAB_PREFIX and a free loopback port.
//!
//! Each test seeds data, backs it up, verifies the backup, wipes the live data, restores,
//! and compares the result with the seed (the QuestDB stand-in's digest: row counts and a
//! hash of every committed row per partition; SHA-256 of every bucket file; ownership and
//! modes). Then failure drills with real failures (a missing image, the stand-in's failure
//! file, a volume too small for the data), each checking what was released or left.
//!
//! Each test prints ONE result line, `drill <system>: ok (...)`, written past the test
//! harness's capture so it shows in `cargo test` output. A drill that finds a difference
//! fails naming it; a drill that cannot run here (no Docker engine, a missing tool) fails
//! saying so, never passes silently. A [`Lab`] guard removes every container, volume and
//! file the test made, also when it fails.

use crate::steps_common;
use steps_common::opsplan_command;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

const TSDB_USER: &str = "admin";
const TSDB_PASSWORD: &str = "drill-pw-7c41e2";
/// The table the COSMOS docs use, and a second one so restores cover more than one table.
const TABLE: &str = "DEFAULT__TLM__INST__HEALTH_STATUS";
const TABLE2: &str = "DEFAULT__TLM__INST__ADCS";
const RSYNC: &str = "opsplan-lab/rsync";
const ALPINE: &str = "opsplan-lab/alpine";
const INIT: &str = "opsplan-lab/openc3-init";

use opsplan_testkit::bin::{run_tool, Ran};
use opsplan_testkit::docker::{docker, docker_ok};
use opsplan_testkit::{free_port, repo_root};

/// The result line, written to the process's stdout directly: `println!` output is captured
/// by the test harness and shown only for failing tests.
fn result_line(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

fn run_cmd(cmd: &mut Command, what: &str) -> Ran {
    let ran = run_tool(cmd, Duration::from_secs(900));
    assert!(ran.signal.is_none(), "{what} was killed: {}", ran.all());
    ran
}

/// The lab needs the Docker engine and the tools build-images.sh uses; the images are built
/// once per test process (build-images.sh is idempotent and cached).
fn lab_images(system: &str) {
    static BUILT: OnceLock<Result<(), String>> = OnceLock::new();
    let built = BUILT.get_or_init(|| {
        let info = Command::new("docker")
            .args(["info", "--format", "{{.ServerVersion}}"])
            .output();
        match info {
            Err(e) => {
                return Err(format!(
                    "cannot run here: the `docker` CLI is missing ({e}); install docker.io"
                ))
            }
            Ok(o) if !o.status.success() => {
                return Err(format!(
                    "cannot run here: the Docker engine does not answer (`docker info`: {})",
                    String::from_utf8_lossy(&o.stderr).trim()
                ))
            }
            Ok(_) => {}
        }
        let out = Command::new(repo_root().join("tests/lab/build-images.sh"))
            .env("LAB_VENDOR_TAGS", "0")
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("cannot run tests/lab/build-images.sh: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "cannot run here: tests/lab/build-images.sh failed:\n{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        Ok(())
    });
    if let Err(e) = built {
        panic!("drill {system}: {e}");
    }
}

/// One system's lab: LAB_PREFIX, port, temp folder, run journals and locks. On drop:
/// `openc3.sh cleanup` of both stacks, the temp folder emptied from a container (files
/// written by containers belong to other uids), and a check that nothing is left.
struct Lab {
    system: &'static str,
    prefix: String,
    port: u16,
    tmp: tempfile::TempDir,
}

impl Lab {
    fn new(system: &'static str) -> Lab {
        lab_images(system);
        let prefix = format!("opsplan-drill-{}-{system}-", std::process::id());
        let tmp = tempfile::Builder::new()
            .prefix(&format!("opsplan-drill-{system}-"))
            .tempdir()
            .expect("temp dir");
        let lab = Lab {
            system,
            prefix,
            port: free_port(),
            tmp,
        };
        // A previous run of this pid (unlikely) or a crash: start from nothing.
        lab.openc3_quiet("cleanup");
        lab
    }

    fn name(&self, n: &str) -> String {
        format!("{}{n}", self.prefix)
    }

    fn dir(&self, n: &str) -> PathBuf {
        let p = self.tmp.path().join(n);
        std::fs::create_dir_all(&p).expect("create a folder in the temp dir");
        p
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn openc3_script(&self) -> PathBuf {
        repo_root().join(format!("tests/lab/{}/openc3.sh", self.system))
    }

    fn env(&self, cmd: &mut Command) {
        cmd.env("LAB_PREFIX", &self.prefix)
            .env("LAB_TSDB_PORT", self.port.to_string())
            .env("OPENC3_TSDB_USERNAME", TSDB_USER)
            .env("OPENC3_TSDB_PASSWORD", TSDB_PASSWORD);
    }

    fn openc3_quiet(&self, verb: &str) -> Ran {
        let mut cmd = Command::new(self.openc3_script());
        cmd.arg(verb);
        self.env(&mut cmd);
        run_cmd(&mut cmd, &format!("{}/openc3.sh {verb}", self.system))
    }

    fn openc3(&self, verb: &str) {
        let out = self.openc3_quiet(verb);
        assert_eq!(
            out.code,
            0,
            "{}/openc3.sh {verb} failed:\n{}",
            self.system,
            out.all()
        );
    }

    /// Pre-creates a volume of the lab's stack as a tmpfs of `size` (so `cleanup` removes
    /// it): a disk that fills up, for the failure drills. Its contents live only while a
    /// container has it mounted.
    fn small_volume(&self, volume: &str, size: &str) {
        docker_ok(&[
            "volume",
            "create",
            "--driver",
            "local",
            "--opt",
            "type=tmpfs",
            "--opt",
            "device=tmpfs",
            "--opt",
            &format!("o=size={size}"),
            "--label",
            &format!("org.opsplan.lab.stack={}{}", self.prefix, self.system),
            &self.name(volume),
        ]);
    }

    /// `opsplan run PLAN --set k=v … --force --yes`, with journals and locks in the temp dir.
    fn opsplan(&self, plan: &str, sets: &[(&str, String)]) -> Ran {
        let mut cmd = opsplan_command();
        cmd.arg("run").arg(plan);
        for (k, v) in sets {
            cmd.arg("--set").arg(format!("{k}={v}"));
        }
        cmd.args(["--force", "--yes"])
            .current_dir(repo_root())
            .env("NO_COLOR", "1")
            .env_remove("OPSPLAN_LOG")
            .env("OPSPLAN_JOURNAL_DIR", self.tmp.path().join("state/runs"))
            .env("OPSPLAN_LOCK_DIR", self.tmp.path().join("state/locks"));
        self.env(&mut cmd);
        let started = Instant::now();
        let out = run_cmd(&mut cmd, &format!("opsplan run {plan}"));
        assert!(
            started.elapsed() < Duration::from_secs(600),
            "opsplan run {plan} took {:?}",
            started.elapsed()
        );
        out
    }

    fn opsplan_ok(&self, plan: &str, sets: &[(&str, String)]) -> Ran {
        let out = self.opsplan(plan, sets);
        assert_eq!(
            out.code,
            0,
            "drill {}: {plan} failed (exit {}):\n{}",
            self.system,
            out.code,
            out.all()
        );
        out
    }

    /// `sha256sum` of every file under `path` of a volume or host folder, relative names,
    /// sorted; computed in a container so files of any owner are readable.
    fn sums(&self, mount: &str) -> Vec<String> {
        let out = docker_ok(&[
            "run",
            "--rm",
            "-v",
            &format!("{mount}:/m:ro"),
            ALPINE,
            "sh",
            "-c",
            "cd /m && find . -type f -exec sha256sum {} + | sort -k2",
        ]);
        out.lines().map(str::to_string).collect()
    }

    fn running(&self, container: &str) -> bool {
        docker(&[
            "container",
            "inspect",
            "--format",
            "{{.State.Running}}",
            &self.name(container),
        ])
        .stdout
        .trim()
            == "true"
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for system in ["cosmos7", "cosmos6"] {
            let mut cmd = Command::new(repo_root().join(format!("tests/lab/{system}/openc3.sh")));
            cmd.arg("cleanup");
            self.env(&mut cmd);
            let _ = cmd.stdin(Stdio::null()).output();
        }
        let _ = docker(&[
            "run",
            "--rm",
            "-v",
            &format!("{}:/t", self.tmp.path().display()),
            ALPINE,
            "find",
            "/t",
            "-mindepth",
            "1",
            "-delete",
        ]);
        let left = docker(&["ps", "-aq", "--filter", &format!("name={}", self.prefix)]).stdout
            + &docker(&[
                "volume",
                "ls",
                "-q",
                "--filter",
                &format!("name={}", self.prefix),
            ])
            .stdout;
        if !left.trim().is_empty() && !std::thread::panicking() {
            panic!("drill {}: the lab left behind: {left}", self.system);
        }
    }
}

// ------------------------------------------------------------------ QuestDB over HTTP

fn percent(s: &str) -> String {
    let mut o = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            o.push(b as char);
        } else {
            o.push_str(&format!("%{b:02X}"));
        }
    }
    o
}

fn base64(s: &str) -> String {
    const T: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let b = s.as_bytes();
    let mut o = String::new();
    for c in b.chunks(3) {
        let n = (c[0] as u32) << 16
            | (*c.get(1).unwrap_or(&0) as u32) << 8
            | *c.get(2).unwrap_or(&0) as u32;
        for i in 0..4 {
            if i <= c.len() {
                o.push(T[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                o.push('=');
            }
        }
    }
    o
}

/// `GET /exec?query=…` with basic auth: (HTTP status, body).
fn http_get(port: u16, path: &str) -> std::io::Result<(u16, String)> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAuthorization: Basic {}\r\nConnection: close\r\n\r\n",
        base64(&format!("{TSDB_USER}:{TSDB_PASSWORD}"))
    )?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf)?;
    let text = String::from_utf8_lossy(&buf).into_owned();
    let code = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map(|x| x.1)
        .unwrap_or("")
        .to_string();
    Ok((code, body))
}

fn query(lab: &Lab, sql: &str) -> serde_json::Value {
    let (code, body) = http_get(lab.port, &format!("/exec?query={}", percent(sql)))
        .unwrap_or_else(|e| panic!("QuestDB stand-in at {}: {e}", lab.url()));
    assert_eq!(code, 200, "{sql}: HTTP {code} {body}");
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("{sql}: not JSON ({e}): {body}"))
}

fn wait_tsdb(lab: &Lab) {
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(30) {
        if matches!(http_get(lab.port, "/health"), Ok((200, _))) {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let logs = docker(&["logs", &lab.name("openc3-tsdb-1")]);
    panic!(
        "drill cosmos7: the QuestDB stand-in did not answer on {} within 30 s:\n{}",
        lab.url(),
        logs.all()
    );
}

fn count(lab: &Lab, table: &str, day: Option<&str>) -> i64 {
    let sql = match day {
        Some(d) => format!("SELECT count() FROM '{table}' WHERE PACKET_TIMESECONDS IN '{d}'"),
        None => format!("SELECT count() FROM '{table}'"),
    };
    query(lab, &sql)["dataset"][0][0]
        .as_i64()
        .unwrap_or_else(|| panic!("{sql}: no number"))
}

fn checkpoint_in_progress(lab: &Lab) -> bool {
    query(lab, "SELECT * FROM checkpoint_status()")["dataset"][0][0]
        .as_bool()
        .expect("checkpoint_status() in_progress")
}

fn tsdb_exec(lab: &Lab, argv: &[&str]) -> String {
    let c = lab.name("openc3-tsdb-1");
    let mut args = vec!["exec", c.as_str()];
    args.extend_from_slice(argv);
    docker_ok(&args)
}

/// The stand-in's digest: one line per partition (rows, FNV of the rows) and per table.
fn digest(lab: &Lab) -> Vec<String> {
    tsdb_exec(lab, &["questdb-standin", "digest"])
        .lines()
        .map(str::to_string)
        .collect()
}

fn checkpoint_log(lab: &Lab) -> Vec<String> {
    let out = docker(&[
        "exec",
        &lab.name("openc3-tsdb-1"),
        "cat",
        "/var/lib/questdb/checkpoint.log",
    ]);
    out.stdout.lines().map(str::to_string).collect()
}

/// A writer like COSMOS's ingest: one INSERT after another into TABLE while a plan runs, in
/// three kinds of place: the active partition (yesterday: files grow), an older partition
/// (3 days ago: QuestDB's copy-on-write makes a new partition version) and a day with no
/// partition yet (today: a new partition folder appears). Each row's COLLECTS is 1000000 +
/// its sequence number; `stop` returns the day of every acknowledged row, in order.
struct Ingest {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    handle: std::thread::JoinHandle<Result<Vec<String>, String>>,
}

impl Ingest {
    fn start(port: u16) -> Ingest {
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = stop.clone();
        let days = [day_offset(-1), day_offset(-3), day_offset(0), day_offset(1)];
        let handle = std::thread::spawn(move || {
            let mut acked = Vec::new();
            let mut i: u64 = 0;
            // Tomorrow's partition is first written once a checkpoint is seen held, so a
            // partition folder is created under the checkpoint (and must not be restored).
            let mut held_seen = false;
            while !flag.load(std::sync::atomic::Ordering::SeqCst) {
                if !held_seen {
                    let q = percent("SELECT * FROM checkpoint_status()");
                    if let Ok((200, body)) = http_get(port, &format!("/exec?query={q}")) {
                        held_seen = body.contains("[[true");
                    }
                }
                let day = match i % 10 {
                    3 => &days[1],
                    7 => &days[2],
                    9 if held_seen => &days[3],
                    _ => &days[0],
                };
                let ts = format!(
                    "{day}T12:{:02}:{:02}.{:06}Z",
                    (i / 60_000_000) % 60,
                    (i / 1_000_000) % 60,
                    i % 1_000_000
                );
                let sql = format!(
                    "INSERT INTO '{TABLE}' VALUES('{ts}', '{ts}', 2.5, {})",
                    1_000_000 + i
                );
                match http_get(port, &format!("/exec?query={}", percent(&sql))) {
                    Ok((200, _)) => acked.push(day.clone()),
                    Ok((code, body)) => return Err(format!("ingest row {i}: HTTP {code} {body}")),
                    Err(e) => return Err(format!("ingest row {i}: {e}")),
                }
                i += 1;
            }
            Ok(acked)
        });
        Ingest { stop, handle }
    }

    fn stop(self) -> Vec<String> {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        match self.handle.join() {
            Ok(Ok(v)) => v,
            Ok(Err(e)) => panic!("drill cosmos7: the ingest loop failed: {e}"),
            Err(_) => panic!("drill cosmos7: the ingest loop panicked"),
        }
    }
}

/// `key=value` of a checkpoint.log line.
fn log_field<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    line.split_whitespace()
        .find_map(|w| w.strip_prefix(&format!("{key}=")))
}

/// Lines only in `a`, lines only in `b`: the difference a failing drill names.
fn diff(a: &[String], b: &[String]) -> String {
    let only_a: Vec<_> = a.iter().filter(|l| !b.contains(l)).collect();
    let only_b: Vec<_> = b.iter().filter(|l| !a.contains(l)).collect();
    format!("expected but missing: {only_a:#?}\nfound but not expected: {only_b:#?}")
}

fn assert_same(what: &str, expected: &[String], found: &[String]) {
    assert!(
        expected == found,
        "{what} differ ({} vs {} lines)\n{}",
        expected.len(),
        found.len(),
        diff(expected, found)
    );
}

/// The generation `latest` points at in a backup location, resolved (docker mounts and
/// the checks below read the real folder).
fn latest_generation(location: &Path) -> std::path::PathBuf {
    std::fs::canonicalize(location.join("latest"))
        .unwrap_or_else(|e| panic!("no latest generation in {}: {e}", location.display()))
}

/// (name, state) of a backup location's generations, newest first.
fn generation_states(location: &Path) -> Vec<(String, opsplan_steps::generation::State)> {
    let listing = opsplan_steps::generation::list(location)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", location.display()));
    listing
        .generations
        .iter()
        .rev()
        .map(|g| (g.name.clone(), g.state))
        .collect()
}

/// (files, bytes) from a backup's opsplan-manifest.json.
fn manifest_totals(dir: &Path) -> (u64, u64) {
    let path = dir.join("opsplan-manifest.json");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("no manifest at {}: {e}", path.display()));
    let m: serde_json::Value = serde_json::from_str(&text).expect("manifest JSON");
    (
        m["totals"]["files"].as_u64().expect("totals.files"),
        m["totals"]["bytes"].as_u64().expect("totals.bytes"),
    )
}

/// The status of `step` in the run's summary table (`ok`, `FAILED`, `skipped`, …); a step
/// that ran in the cleanup or undo phase is listed as `cleanup <step>` / `undo <step>`.
fn step_status(out: &Ran, step: &str) -> String {
    // The summary table is the run's result, on stdout; progress lines are on stderr.
    let table: Vec<&str> = out
        .stdout
        .lines()
        .rev()
        .take_while(|l| !l.starts_with("step "))
        .collect();
    table
        .iter()
        .find_map(|l| {
            let mut w = l.split_whitespace();
            let first = w.next()?;
            if first == step {
                return w.next().map(str::to_string);
            }
            if matches!(first, "cleanup" | "undo") && w.next() == Some(step) {
                return w.next().map(|s| format!("{first} {s}"));
            }
            None
        })
        .unwrap_or_else(|| "not run".into())
}

/// What the run reported for a failed step: its `FAILED <step>` line and the stderr lines
/// quoted after it, joined with ` | `.
fn failure_report(out: &Ran, step: &str) -> String {
    let all = out.all();
    let mut lines = all
        .lines()
        .skip_while(|l| !l.starts_with(&format!("FAILED {step} ")));
    let mut report: Vec<&str> = lines.next().into_iter().collect();
    report.extend(
        lines.take_while(|l| {
            !l.is_empty() && !l.starts_with("rolling back") && !l.starts_with("> ")
        }),
    );
    report.join(" | ")
}

/// The facts cosmos7-backup recorded just before its checkpoint: both tables; TABLE2's
/// rows (never written by the ingest) exactly the seed's 360; TABLE's rows at least the
/// seed's 1800 and at most what the checkpoint committed (the ingest ran meanwhile).
fn check_recorded_facts(generation: &Path, committed: i64) {
    let text = std::fs::read_to_string(generation.join("opsplan-manifest.json")).expect("manifest");
    let manifest: serde_json::Value = serde_json::from_str(&text).expect("manifest is JSON");
    let values = &manifest["facts"]["values"];
    assert_eq!(
        manifest["facts"]["format_version"], 1,
        "drill cosmos7: facts: {}",
        manifest["facts"]
    );
    let mut tables: Vec<&str> = values["tables"]
        .as_array()
        .unwrap_or_else(|| panic!("drill cosmos7: no tables fact: {values}"))
        .iter()
        .filter_map(serde_json::Value::as_str)
        .collect();
    tables.sort_unstable();
    assert_eq!(tables, [TABLE2, TABLE], "drill cosmos7: tables recorded");
    let sum = |t: &str| -> i64 {
        values[format!("rows:{t}")]
            .as_object()
            .unwrap_or_else(|| panic!("drill cosmos7: no rows:{t} fact: {values}"))
            .values()
            .filter_map(serde_json::Value::as_i64)
            .sum()
    };
    assert_eq!(
        sum(TABLE2),
        360,
        "drill cosmos7: rows recorded for {TABLE2}"
    );
    let rows = sum(TABLE);
    assert!(
        (1800..=committed).contains(&rows),
        "drill cosmos7: rows recorded for {TABLE}: {rows}, not between the seed's 1800 and the checkpoint's {committed}"
    );
}

/// Changes the facts of a verified generation's manifest with `edit` (on its `values`) and
/// updates the marker's checksum of the manifest, so the generation stays verified; returns
/// the original manifest and marker texts, to put back.
fn edit_recorded_facts(
    generation: &Path,
    edit: impl FnOnce(&mut serde_json::Value),
) -> (Vec<u8>, Vec<u8>) {
    use sha2::Digest;
    let manifest_path = generation.join("opsplan-manifest.json");
    let marker_path = generation.join("opsplan-generation.json");
    let manifest_text = std::fs::read(&manifest_path).expect("read manifest");
    let marker_text = std::fs::read(&marker_path).expect("read marker");
    let mut manifest: serde_json::Value =
        serde_json::from_slice(&manifest_text).expect("manifest JSON");
    edit(&mut manifest["facts"]["values"]);
    let mut text = serde_json::to_vec_pretty(&manifest).expect("manifest JSON");
    text.push(b'\n');
    std::fs::write(&manifest_path, &text).expect("write manifest");
    let mut marker: serde_json::Value = serde_json::from_slice(&marker_text).expect("marker JSON");
    marker["manifest_sha256"] = serde_json::json!(hex::encode(sha2::Sha256::digest(&text)));
    std::fs::write(
        &marker_path,
        serde_json::to_vec_pretty(&marker).expect("marker JSON"),
    )
    .expect("write marker");
    (manifest_text, marker_text)
}

/// Puts back what [`edit_recorded_facts`] changed.
fn put_back_facts(generation: &Path, (manifest_text, marker_text): (Vec<u8>, Vec<u8>)) {
    std::fs::write(generation.join("opsplan-manifest.json"), manifest_text)
        .expect("put the manifest back");
    std::fs::write(generation.join("opsplan-generation.json"), marker_text)
        .expect("put the marker back");
}

/// Objects (files) and bytes per top-level folder of `root`, as cosmos6's facts count them.
fn bucket_counts(root: &Path) -> (serde_json::Value, serde_json::Value) {
    let (mut objects, mut bytes) = (serde_json::Map::new(), serde_json::Map::new());
    for bucket in std::fs::read_dir(root).expect("read the copy") {
        let bucket = bucket.expect("entry");
        let name = bucket.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') || !bucket.path().is_dir() {
            continue;
        }
        let (mut n, mut b) = (0u64, 0u64);
        let mut stack = vec![bucket.path()];
        while let Some(dir) = stack.pop() {
            for e in std::fs::read_dir(&dir).expect("read folder") {
                let e = e.expect("entry");
                let meta = std::fs::symlink_metadata(e.path()).expect("stat");
                if meta.is_dir() {
                    stack.push(e.path());
                } else if meta.is_file() {
                    n += 1;
                    b += meta.len();
                }
            }
        }
        objects.insert(name.clone(), n.into());
        bytes.insert(name, b.into());
    }
    (objects.into(), bytes.into())
}

fn summary_line(out: &Ran) -> String {
    out.all()
        .lines()
        .rev()
        .find(|l| l.starts_with("run "))
        .unwrap_or("")
        .to_string()
}

fn day_offset(days: i64) -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs() as i64
        + days * 86_400;
    // Civil date from days since the epoch (Howard Hinnant's algorithm).
    let z = secs.div_euclid(86_400) + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}")
}

// ------------------------------------------------------------------------- COSMOS 7

#[test]
fn cosmos7() {
    let _lab = crate::common::one_at_a_time();
    let lab = Lab::new("cosmos7");
    let tsdb = lab.name("openc3-tsdb-1");
    let tsdb_v = lab.name("openc3-tsdb-v");
    let object_v = lab.name("openc3-object-v");
    let cosmos_dir = repo_root().join("tests/lab/cosmos7");

    lab.openc3("run");
    wait_tsdb(&lab);
    // The stand-in reads a request as QuestDB's HTTP clients send it: `+` for a space,
    // percent-escapes, basic auth.
    let (code, body) = http_get(lab.port, "/exec?query=SELECT+build%28%29")
        .unwrap_or_else(|e| panic!("QuestDB stand-in at {}: {e}", lab.url()));
    assert_eq!(code, 200, "SELECT+build%28%29: HTTP {code} {body}");

    // Seed: two tables of daily partitions in QuestDB, files in the bucket volume.
    tsdb_exec(
        &lab,
        &[
            "questdb-standin",
            "seed",
            "--table",
            TABLE,
            "--days",
            "6",
            "--rows-per-day",
            "300",
        ],
    );
    tsdb_exec(
        &lab,
        &[
            "questdb-standin",
            "seed",
            "--table",
            TABLE2,
            "--days",
            "3",
            "--rows-per-day",
            "120",
        ],
    );
    let seeded = digest(&lab);
    assert!(
        seeded
            .iter()
            .any(|l| l.starts_with(&format!("table {TABLE} partitions=6 rows=1800"))),
        "seed: {seeded:#?}"
    );
    docker_ok(&[
        "run",
        "--rm",
        "-v",
        &format!("{object_v}:/data"),
        ALPINE,
        "sh",
        "-c",
        "mkdir -p /data/config/DEFAULT/targets /data/logs/decom '/data/tools/a dir' && \
         for i in 1 2 3 4 5; do echo \"{\\\"target\\\": $i}\" > /data/config/DEFAULT/targets/INST$i.json; done && \
         head -c 400000 /dev/urandom > /data/logs/decom/20261101.bin.gz && \
         head -c 123457 /dev/urandom > '/data/tools/a dir/file with spaces' && \
         echo hidden > /data/.versitygw-meta",
    ]);
    let buckets_seeded = lab.sums(&object_v);

    // ---- backup
    let backup = lab.dir("backup");
    let backup_sets = |dir: &Path| {
        vec![
            ("backup_dir", dir.display().to_string()),
            ("object_volume", object_v.clone()),
            ("tsdb_container", tsdb.clone()),
            ("tsdb_url", lab.url()),
            ("rsync_image", RSYNC.to_string()),
        ]
    };
    // The backup runs under live writes, as COSMOS keeps ingesting during a checkpoint.
    let log_before = checkpoint_log(&lab).len();
    let ingest = Ingest::start(lab.port);
    std::thread::sleep(Duration::from_millis(300));
    let backup_run = lab.opsplan("plans/cosmos7/backup.yaml", &backup_sets(&backup));
    let ingested = ingest.stop();
    assert_eq!(
        backup_run.code,
        0,
        "drill cosmos7: the backup under live writes failed:\n{}",
        backup_run.all()
    );
    let first_generation = latest_generation(&backup);
    let (files, bytes) = manifest_totals(&first_generation);
    let log = checkpoint_log(&lab);
    let new_log = &log[log_before..];
    assert!(
        new_log.len() == 2
            && new_log[0].contains("CHECKPOINT CREATE")
            && new_log[1].contains("CHECKPOINT RELEASE"),
        "the backup's checkpoint.log lines are not CREATE then RELEASE: {new_log:#?}"
    );
    // What the checkpoint holds: TABLE's committed rows at CREATE = the seed + the first
    // `at_checkpoint` ingested rows (one writer, one row per INSERT, applied in order).
    let committed: i64 = log_field(&new_log[0], "committed")
        .and_then(|c| {
            c.split(',')
                .find_map(|t| t.strip_prefix(&format!("{TABLE}:")))
        })
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no committed count of {TABLE} in {}", new_log[0]));
    let during: usize = log_field(&new_log[1], "rows_written_during_checkpoint")
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no rows_written_during_checkpoint in {}", new_log[1]));
    let at_checkpoint = (committed - 1800) as usize;
    assert!(
        at_checkpoint + during <= ingested.len() && during >= 10,
        "drill cosmos7: the copy was not exercised under writes: {} rows ingested, {at_checkpoint} before the checkpoint, {during} while it was held",
        ingested.len()
    );
    assert_eq!(
        count(&lab, TABLE, None),
        1800 + ingested.len() as i64,
        "drill cosmos7: QuestDB lost writes made during the checkpoint"
    );
    let tomorrow = day_offset(1);
    let new_partition_rows = count(&lab, TABLE, Some(&tomorrow));
    assert!(
        new_partition_rows > 0,
        "drill cosmos7: no partition was created while the checkpoint was held"
    );
    assert!(
        !checkpoint_in_progress(&lab),
        "a checkpoint is still held after the backup"
    );
    // The copy was taken inside the checkpoint: it carries .checkpoint/db and a log ending in CREATE.
    let copied_log = std::fs::read_to_string(first_generation.join("questdb/checkpoint.log"))
        .expect("questdb/checkpoint.log in the backup");
    assert!(
        copied_log
            .lines()
            .last()
            .is_some_and(|l| l.contains("CHECKPOINT CREATE"))
            && first_generation.join("questdb/.checkpoint/db").is_dir(),
        "the backup's QuestDB copy was not taken inside a checkpoint"
    );
    check_recorded_facts(&first_generation, committed);
    let buckets_backup = lab.sums(&format!("{}", first_generation.join("buckets").display()));
    assert_same(
        "bucket files (volume vs backup/buckets)",
        &buckets_seeded,
        &buckets_backup,
    );

    // ---- the cost of a second backup of unchanged data against the first (issue 12): two
    // backups in a row into a location of their own, nothing ingested between them; rsync
    // --link-dest hard-links what did not change since the previous generation.
    let twice = lab.dir("backup-twice");
    let second_backup = crate::common::second_backup_cost(|what| {
        let ran = lab.opsplan("plans/cosmos7/backup.yaml", &backup_sets(&twice));
        assert_eq!(ran.code, 0, "drill cosmos7: {what} failed:\n{}", ran.all());
        latest_generation(&twice)
    });

    // ---- failure drill 1: the next backup into the same location fails halfway, right
    // after checkpoint-create; the checkpoint must be released, and the first generation
    // must stay verified and the latest (the restore below restores it). The rsync image
    // tag does not exist (a real docker error); the S3 bucket backend leaves tsdb-copy the
    // only step using it.
    let mut sets = backup_sets(&backup);
    sets.retain(|(k, _)| *k != "rsync_image");
    sets.push(("rsync_image", format!("{RSYNC}:no-such-tag")));
    sets.push(("bucket_backend", "s3".into()));
    let log_before = checkpoint_log(&lab).len();
    let out = lab.opsplan("plans/cosmos7/backup.yaml", &sets);
    assert_eq!(out.code, 1, "failure drill 1 should fail:\n{}", out.all());
    for (step, want) in [
        ("checkpoint-create", "ok"),
        ("tsdb-copy", "FAILED"),
        ("checkpoint-release", "cleanup ok"),
        ("manifest", "not run"),
    ] {
        let got = step_status(&out, step);
        assert!(
            got == want,
            "failure drill 1: {step} is {got}, expected {want}:\n{}",
            out.all()
        );
    }
    let log = checkpoint_log(&lab);
    let new_log = &log[log_before..];
    assert!(
        new_log.len() == 2
            && new_log[0].contains("CHECKPOINT CREATE")
            && new_log[1].contains("CHECKPOINT RELEASE"),
        "failure drill 1: checkpoint.log is not CREATE then RELEASE: {new_log:#?}"
    );
    assert!(
        !checkpoint_in_progress(&lab),
        "failure drill 1: checkpoint_status() still shows the checkpoint in progress"
    );
    let gens = generation_states(&backup);
    assert!(
        gens.len() == 2
            && gens[0].1 == opsplan_steps::generation::State::Incomplete
            && gens[1].1 == opsplan_steps::generation::State::Verified
            && !backup.join(&gens[0].0).join("opsplan-manifest.json").exists(),
        "failure drill 1: expected the failed generation incomplete (no manifest) and the first verified: {gens:?}"
    );
    assert_eq!(
        latest_generation(&backup),
        first_generation,
        "failure drill 1: latest moved off the verified generation"
    );
    let drill1 = format!(
        "{} / {}",
        failure_report(&out, "tsdb-copy"),
        summary_line(&out)
    );

    // ---- failure drill 1b: another client (the Admin Console) creates a checkpoint between
    // the plan's checkpoint_status() check and its CHECKPOINT CREATE (the stand-in's race
    // injection). QuestDB refuses the plan's CREATE (400); the run must fail without
    // releasing the other client's checkpoint.
    tsdb_exec(
        &lab,
        &[
            "sh",
            "-c",
            "echo 'CHECKPOINT CREATE' > /tmp/questdb-standin-fail.race",
        ],
    );
    let race_dir = lab.dir("backup-race");
    let mut sets = backup_sets(&race_dir);
    sets.push(("bucket_backend", "s3".into()));
    let log_before = checkpoint_log(&lab).len();
    let out = lab.opsplan("plans/cosmos7/backup.yaml", &sets);
    // Written by root into the sticky /tmp: the stand-in (uid 10001) cannot remove it.
    tsdb_exec(&lab, &["rm", "-f", "/tmp/questdb-standin-fail.race"]);
    assert_eq!(out.code, 1, "failure drill 1b should fail:\n{}", out.all());
    // The 400 is a refusal (`refused_when`): nothing acquired, so the release does not run.
    for (step, want) in [
        ("checkpoint-create", "FAILED"),
        ("checkpoint-release", "not run"),
        ("tsdb-copy", "not run"),
    ] {
        let got = step_status(&out, step);
        assert!(
            got == want,
            "failure drill 1b: {step} is {got}, expected {want}:\n{}",
            out.all()
        );
    }
    assert!(
        out.stdout
            .contains("questdb-checkpoint not released: its acquire was refused"),
        "failure drill 1b: the summary does not say the checkpoint was left alone:\n{}",
        out.all()
    );
    let log = checkpoint_log(&lab);
    let new_log = &log[log_before..];
    assert!(
        new_log.len() == 1 && new_log[0].contains("CHECKPOINT CREATE"),
        "failure drill 1b: the other client's checkpoint was released or another taken: {new_log:#?}"
    );
    assert!(
        checkpoint_in_progress(&lab),
        "failure drill 1b: the other client's checkpoint is gone"
    );
    let drill1b = format!(
        "{} / {}",
        failure_report(&out, "checkpoint-create"),
        summary_line(&out)
    );
    query(&lab, "CHECKPOINT RELEASE");

    // ---- damage: a write after the backup, then wipe the QuestDB volume.
    query(
        &lab,
        &format!(
            "INSERT INTO '{TABLE}' VALUES('{}T23:00:00.000000Z', '{}T23:00:00.001000Z', 1.5, 7)",
            day_offset(-1),
            day_offset(-1)
        ),
    );
    lab.openc3("stop");
    docker_ok(&[
        "run",
        "--rm",
        "-v",
        &format!("{tsdb_v}:/var/lib/questdb"),
        ALPINE,
        "find",
        "/var/lib/questdb",
        "-mindepth",
        "1",
        "-delete",
    ]);
    lab.openc3("run");
    wait_tsdb(&lab);
    let wiped = digest(&lab);
    assert!(
        wiped.is_empty(),
        "the wiped QuestDB still has data: {wiped:#?}"
    );

    // ---- restore
    let restore_sets = |dir: &Path| {
        vec![
            ("backup_dir", dir.display().to_string()),
            ("tsdb_volume", tsdb_v.clone()),
            ("tsdb_container", tsdb.clone()),
            ("tsdb_url", lab.url()),
            ("target_questdb_version", "9.1.0".to_string()),
            ("cosmos_dir", cosmos_dir.display().to_string()),
            ("helper_image", ALPINE.to_string()),
        ]
    };
    // The target's QuestDB version is asked from the running stand-in (no
    // target_questdb_version), as an operator would leave it.
    let mut sets = restore_sets(&backup);
    sets.retain(|(k, _)| *k != "target_questdb_version");
    let out = lab.opsplan_ok("plans/cosmos7/restore.yaml", &sets);
    assert_eq!(step_status(&out, "target-version"), "ok", "{}", out.all());
    wait_tsdb(&lab);
    let restored = digest(&lab);
    // Consistent with the checkpoint: the partitions the ingest never wrote are the seed's,
    // byte for byte; the written ones hold the seed's rows plus exactly the rows ingested
    // before CHECKPOINT CREATE, none of those written while the copy ran.
    let touched = [day_offset(-1), day_offset(-3), day_offset(0), day_offset(1)];
    let untouched: Vec<String> = seeded
        .iter()
        .filter(|l| {
            l.starts_with(&format!("partition {TABLE2} "))
                || l.starts_with(&format!("table {TABLE2} "))
                || (l.starts_with(&format!("partition {TABLE} "))
                    && !touched.iter().any(|d| l.contains(&format!(" {d} "))))
        })
        .cloned()
        .collect();
    let missing: Vec<&String> = untouched.iter().filter(|l| !restored.contains(l)).collect();
    assert!(
        missing.is_empty(),
        "drill cosmos7: partitions the ingest never touched differ after the restore: {missing:#?}\nrestored: {restored:#?}"
    );
    for (d, seeded_rows) in [
        (&touched[0], 300),
        (&touched[1], 300),
        (&touched[2], 0),
        (&touched[3], 0),
    ] {
        let want =
            seeded_rows + ingested[..at_checkpoint].iter().filter(|x| *x == d).count() as i64;
        assert_eq!(
            count(&lab, TABLE, Some(d)),
            want,
            "drill cosmos7: rows of {d} after the restore are not the checkpoint's ({seeded_rows} seeded + those ingested before CHECKPOINT CREATE)"
        );
    }
    let total_rows: i64 = [TABLE, TABLE2].iter().map(|t| count(&lab, t, None)).sum();
    assert_eq!(total_rows, committed + 360, "count() after the restore");
    let logs = docker(&["logs", &tsdb]).all();
    assert!(
        logs.contains("RESTORE restored 2 tables from checkpoint"),
        "the stand-in did not restore from the checkpoint:\n{logs}"
    );
    assert_same(
        "bucket files (volume after the drill vs seed)",
        &buckets_seeded,
        &lab.sums(&object_v),
    );
    assert_eq!(step_status(&out, "facts-match"), "ok", "{}", out.all());

    // ---- failure drill: the generation records a partition of TABLE2 that the restored
    // QuestDB does not have (its manifest's facts edited, the marker's checksum updated, so
    // the generation stays verified): facts-match fails naming the table, the partition and
    // its rows; QuestDB is left as restored. Then the generation's own files are put back.
    let original = edit_recorded_facts(&first_generation, |values| {
        values[format!("rows:{TABLE2}")]["2000-01-01"] = serde_json::json!(5);
    });
    let out = lab.opsplan("plans/cosmos7/restore.yaml", &restore_sets(&backup));
    put_back_facts(&first_generation, original);
    assert_ne!(
        out.code,
        0,
        "drill cosmos7: a restore missing a recorded partition passed:\n{}",
        out.all()
    );
    assert_eq!(step_status(&out, "facts-match"), "FAILED", "{}", out.all());
    let report = failure_report(&out, "facts-match");
    assert!(
        report.contains(&format!(
            "rows:{TABLE2} 2000-01-01: 5 recorded, missing after restore"
        )) && report.matches(" recorded, ").count() == 1,
        "drill cosmos7: facts-match does not name the missing partition (alone): {report}"
    );
    wait_tsdb(&lab);
    assert_same(
        "QuestDB after the failed facts check",
        &restored,
        &digest(&lab),
    );

    // ---- partitions: detach two days (archived, verified, deleted), attach them back.
    let (d1, d2) = (day_offset(-6), day_offset(-5));
    let per_day_before = (count(&lab, TABLE, Some(&d1)), count(&lab, TABLE, Some(&d2)));
    assert_eq!(
        per_day_before,
        (300, 300),
        "rows of {d1} and {d2} before detach"
    );
    let archive = lab.dir("archive");
    let part_sets = |extra: &[(&'static str, String)]| {
        let mut v = vec![
            ("table", TABLE.to_string()),
            ("partitions", format!("{d1},{d2}")),
            ("archive_dir", archive.display().to_string()),
            ("tsdb_container", tsdb.clone()),
            ("tsdb_url", lab.url()),
            ("rsync_image", RSYNC.to_string()),
        ];
        v.extend_from_slice(extra);
        v
    };
    // Refusals before anything is detached: a checkpoint held by someone (a backup from the
    // Admin Console), and the active partition, which QuestDB cannot detach.
    query(&lab, "CHECKPOINT CREATE");
    let out = lab.opsplan("plans/cosmos7/partition-detach.yaml", &part_sets(&[]));
    query(&lab, "CHECKPOINT RELEASE");
    assert_eq!(
        step_status(&out, "no-checkpoint-held"),
        "FAILED",
        "detach under a held checkpoint:\n{}",
        out.all()
    );
    assert_eq!(
        count(&lab, TABLE, Some(&d1)),
        300,
        "detached under a checkpoint"
    );
    let parts = query(
        &lab,
        &format!("SELECT name FROM table_partitions('{TABLE}')"),
    );
    let active = parts["dataset"]
        .as_array()
        .and_then(|rows| rows.last())
        .and_then(|r| r[0].as_str())
        .expect("the active partition's name")
        .to_string();
    let mut sets = part_sets(&[]);
    sets.retain(|(k, _)| *k != "partitions");
    sets.push(("partitions", format!("{d1},{active}")));
    let out = lab.opsplan("plans/cosmos7/partition-detach.yaml", &sets);
    assert_eq!(
        step_status(&out, "partitions-known"),
        "FAILED",
        "detach of the active partition {active}:\n{}",
        out.all()
    );
    assert_eq!(
        count(&lab, TABLE, Some(&d1)),
        300,
        "detached with the active partition"
    );

    // Failure drill: the archive copy fails after DETACH: archive_dir/<table> is a symlink
    // to a host folder the rsync container cannot see (its mkdir fails), while the host-side
    // schema file is written through it. The partitions stay detached in the volume. The
    // documented recovery: fix the archive folder and run the same plan again, which skips
    // the DETACH and archives.
    let elsewhere = lab.dir("archive-elsewhere");
    std::os::unix::fs::symlink(&elsewhere, archive.join(TABLE)).expect("archive symlink");
    let out = lab.opsplan(
        "plans/cosmos7/partition-detach.yaml",
        &part_sets(&[("delete_detached", "true".into())]),
    );
    assert_eq!(
        step_status(&out, "archive-detached"),
        "FAILED",
        "archive into a folder the container cannot see:\n{}",
        out.all()
    );
    assert_eq!(step_status(&out, "detach-list"), "ok", "{}", out.all());
    assert_ne!(
        step_status(&out, "delete-detached"),
        "ok",
        "deleted without an archive"
    );
    assert_eq!(
        (count(&lab, TABLE, Some(&d1)), count(&lab, TABLE, Some(&d2))),
        (0, 0),
        "the failed run did not detach"
    );
    std::fs::remove_file(archive.join(TABLE)).expect("remove the symlink");
    std::fs::create_dir(archive.join(TABLE)).expect("archive table folder");
    // The operator moves what the run wrote through the symlink (schema, row counts).
    for entry in std::fs::read_dir(&elsewhere).expect("list the symlink's target") {
        let entry = entry.expect("entry");
        std::fs::copy(entry.path(), archive.join(TABLE).join(entry.file_name()))
            .expect("copy what was written through the symlink");
    }
    let out = lab.opsplan_ok(
        "plans/cosmos7/partition-detach.yaml",
        &part_sets(&[("delete_detached", "true".into())]),
    );
    assert_eq!(
        step_status(&out, "detach-list"),
        "skipped",
        "the re-run detached again:\n{}",
        out.all()
    );
    let drill_detach = summary_line(&out);
    assert_eq!(
        (count(&lab, TABLE, Some(&d1)), count(&lab, TABLE, Some(&d2))),
        (0, 0),
        "detached partitions still counted"
    );
    let table_dir = format!("/var/lib/questdb/db/{TABLE}");
    let left = tsdb_exec(
        &lab,
        &[
            "sh",
            "-c",
            &format!("cd {table_dir} && ls -d *.detached *.attachable 2>/dev/null; true"),
        ],
    );
    assert!(
        left.trim().is_empty(),
        "detach left folders in the volume: {left}"
    );
    for d in [&d1, &d2] {
        assert!(
            archive
                .join(TABLE)
                .join(format!("{d}.detached/rows"))
                .is_file(),
            "the archive lacks {d}.detached"
        );
    }
    let (archived_files, _) = manifest_totals(&archive.join(TABLE));

    // Failure drill 2: ATTACH fails (the stand-in's failure file); the staged .attachable
    // folders are removed by the stage step's undo, and nothing is attached.
    tsdb_exec(
        &lab,
        &["sh", "-c", "echo 'ALTER TABLE' > /tmp/questdb-standin-fail"],
    );
    let out = lab.opsplan("plans/cosmos7/partition-attach.yaml", &part_sets(&[]));
    tsdb_exec(&lab, &["rm", "-f", "/tmp/questdb-standin-fail"]);
    assert_eq!(out.code, 1, "failure drill 2 should fail:\n{}", out.all());
    assert_eq!(step_status(&out, "attach"), "FAILED", "{}", out.all());
    let left = tsdb_exec(
        &lab,
        &[
            "sh",
            "-c",
            &format!("cd {table_dir} && ls -d *.attachable 2>/dev/null; true"),
        ],
    );
    assert!(
        left.trim().is_empty(),
        "failure drill 2: the failed attach left staged folders: {left}\n{}",
        out.all()
    );
    assert_eq!(
        count(&lab, TABLE, Some(&d1)),
        0,
        "failure drill 2: {d1} attached anyway"
    );
    let drill2 = summary_line(&out);

    let out = lab.opsplan_ok("plans/cosmos7/partition-attach.yaml", &part_sets(&[]));
    for d in [&d1, &d2] {
        assert!(
            std::fs::read_to_string(archive.join(TABLE).join(format!("{d}.rows")))
                .is_ok_and(|t| t.trim() == "300"),
            "the detach did not archive {d}'s row count (300)"
        );
        assert_eq!(step_status(&out, &format!("rows-present[{d}]")), "ok");
    }
    let per_day_after = (count(&lab, TABLE, Some(&d1)), count(&lab, TABLE, Some(&d2)));
    assert_eq!(
        per_day_after, per_day_before,
        "rows of {d1}, {d2} after attach"
    );
    assert_same(
        "QuestDB digest (restored vs after detach + attach)",
        &restored,
        &digest(&lab),
    );

    // ---- failure drill 3: the restore fails after clear-volume (a QuestDB volume too small
    // for the backup: "No space left on device" in copy-backup). What does the run report,
    // and what is left?
    lab.openc3("cleanup");
    lab.small_volume("openc3-tsdb-v", "4k");
    lab.openc3("run");
    wait_tsdb(&lab);
    let out = lab.opsplan("plans/cosmos7/restore.yaml", &restore_sets(&backup));
    assert_eq!(out.code, 1, "failure drill 3 should fail:\n{}", out.all());
    for (step, want) in [
        ("stop-cosmos", "ok"),
        ("clear-volume", "ok"),
        ("copy-backup", "FAILED"),
    ] {
        assert_eq!(
            step_status(&out, step),
            want,
            "failure drill 3: {step}:\n{}",
            out.all()
        );
    }
    let failed_line = failure_report(&out, "copy-backup");
    assert!(
        failed_line.contains("No space left on device"),
        "failure drill 3: the report does not name the cause: {failed_line}\n{}",
        out.all()
    );
    assert!(
        !lab.running("openc3-tsdb-1"),
        "failure drill 3: QuestDB was started on a half-restored volume"
    );
    for step in ["create-trigger", "start-cosmos"] {
        assert_ne!(step_status(&out, step), "ok", "failure drill 3: {step} ran");
    }
    let drill3 = format!("{failed_line} / {}", summary_line(&out));

    let partitions: usize = seeded
        .iter()
        .filter(|l| l.starts_with("partition "))
        .count();
    result_line(&format!(
        "drill cosmos7: ok (backup under live writes: {} rows ingested, {during} while the \
         checkpoint was held, a new partition of {new_partition_rows} rows created under it and \
         gone after the restore; {files} files, {:.2} MiB checked; {second_backup}; restore consistent with the \
         checkpoint: 2 tables, {partitions} seeded partitions, {total_rows} rows; buckets {} files equal; \
         detach/attach 2 partitions, {} rows equal, archive {archived_files} files; \
         6 failure drills ok) [real: Docker, rsync, busybox/GNU find, opsplan; stand-ins: \
         QuestDB (tests/lab/questdb-standin), openc3.sh, versitygw volume holder]",
        ingested.len(),
        bytes as f64 / 1048576.0,
        buckets_seeded.len(),
        per_day_after.0 + per_day_after.1,
    ));
    eprintln!("  failure drill cosmos7/backup, tsdb-copy fails after checkpoint-create: checkpoint.log CREATE then RELEASE, checkpoint_status() false; run: {drill1}");
    eprintln!("  failure drill cosmos7/backup, another client's checkpoint appears before CREATE: refused (400), not released; run: {drill1b}");
    eprintln!("  failure drill cosmos7/partition-detach, refused under a held checkpoint and for the active partition; archive fails after DETACH, re-run skips DETACH and completes: {drill_detach}");
    eprintln!("  failure drill cosmos7/partition-attach, ATTACH fails: staged .attachable folders removed by undo; run: {drill2}");
    eprintln!("  failure drill cosmos7/restore, copy fails after clear-volume: COSMOS left stopped; run: {drill3}");
}

// ------------------------------------------------------------------------- COSMOS 6

#[test]
fn cosmos6() {
    let _lab = crate::common::one_at_a_time();
    let lab = Lab::new("cosmos6");
    let minio = lab.name("openc3-minio-1");
    let bucket_v = lab.name("openc3-bucket-v");
    let cosmos_dir = repo_root().join("tests/lab/cosmos6");

    lab.openc3("run");
    docker_ok(&[
        "run",
        "--rm",
        "-v",
        &format!("{bucket_v}:/data"),
        ALPINE,
        "sh",
        "-c",
        "mkdir -p /data/.minio.sys/config /data/config/DEFAULT/targets /data/logs/decom \
           '/data/tools/a dir' && \
         echo '{\"version\":\"33\"}' > /data/.minio.sys/config/config.json && \
         for i in 1 2 3 4 5; do echo \"target $i\" > /data/config/DEFAULT/targets/INST$i.json; done && \
         head -c 500000 /dev/urandom > /data/logs/decom/20261101.bin.gz && \
         head -c 77777 /dev/urandom > '/data/tools/a dir/file with spaces' && \
         chown -R 501:501 /data && chmod -R 755 /data",
    ]);

    // The backup dir must be writable by the image's user (uid 501; docs/plans/cosmos6.md).
    let backup = lab.dir("backup");
    docker_ok(&[
        "run",
        "--rm",
        "-v",
        &format!("{}:/b", backup.display()),
        ALPINE,
        "chown",
        "501:501",
        "/b",
    ]);
    let backup_sets = vec![
        ("backup_dir", backup.display().to_string()),
        ("minio_container", minio.clone()),
        ("init_image", INIT.to_string()),
    ];
    // The cost of a second backup of unchanged data against the first (issue 12): mc mirror
    // cannot reuse the previous generation, so each is a full copy.
    let second_backup = crate::common::second_backup_cost(|_| {
        lab.opsplan_ok("plans/cosmos6/backup.yaml", &backup_sets);
        latest_generation(&backup)
    });

    // A scheduled third run after MinIO changed a file and added one: the page says the
    // mirror copies new or changed files (the plan needs --overwrite for that).
    docker_ok(&[
        "run",
        "--rm",
        "--user",
        "501:501",
        "-v",
        &format!("{bucket_v}:/data"),
        ALPINE,
        "sh",
        "-c",
        "echo changed >> /data/config/DEFAULT/targets/INST1.json && \
         echo new > /data/config/DEFAULT/targets/INST6.json",
    ]);
    let seeded = lab.sums(&bucket_v);
    let first_generation = latest_generation(&backup);
    lab.opsplan_ok("plans/cosmos6/backup.yaml", &backup_sets);
    // A second generation, with the changed and the new file; the first one untouched.
    let second_generation = latest_generation(&backup);
    assert_ne!(second_generation, first_generation);
    assert_same(
        "bucket files (volume vs the second generation's minio)",
        &seeded,
        &lab.sums(&second_generation.join("minio").display().to_string()),
    );
    assert!(
        !first_generation
            .join("minio/config/DEFAULT/targets/INST6.json")
            .exists(),
        "the second backup wrote into the first generation"
    );
    // Failure drill: a file mc cannot read. Real mc skips it and the mirror "succeeds"
    // (the mc stand-in models that); the plan's mirror-complete must catch it.
    docker_ok(&[
        "run",
        "--rm",
        "-v",
        &format!("{bucket_v}:/data"),
        ALPINE,
        "sh",
        "-c",
        "echo locked > /data/config/locked.json && chown 0:0 /data/config/locked.json && chmod 000 /data/config/locked.json",
    ]);
    let out = lab.opsplan("plans/cosmos6/backup.yaml", &backup_sets);
    assert_eq!(out.code, 1, "an incomplete mirror passed:\n{}", out.all());
    assert_eq!(step_status(&out, "mirror"), "ok", "{}", out.all());
    assert_eq!(
        step_status(&out, "mirror-complete"),
        "FAILED",
        "{}",
        out.all()
    );
    let unreadable_report = failure_report(&out, "mirror-complete");
    assert!(
        out.all().contains("locked.json"),
        "mirror-complete does not name the skipped file:\n{}",
        out.all()
    );
    let gens = generation_states(&backup);
    assert!(
        gens[0].1 == opsplan_steps::generation::State::Incomplete
            && !backup
                .join(&gens[0].0)
                .join("opsplan-manifest.json")
                .exists(),
        "an incomplete backup got a manifest or was committed: {gens:?}"
    );
    assert_eq!(
        latest_generation(&backup),
        second_generation,
        "the incomplete backup moved latest"
    );
    docker_ok(&[
        "run",
        "--rm",
        "-v",
        &format!("{bucket_v}:/data"),
        ALPINE,
        "rm",
        "-f",
        "/data/config/locked.json",
    ]);
    lab.opsplan_ok("plans/cosmos6/backup.yaml", &backup_sets);
    let (files, bytes) = manifest_totals(&latest_generation(&backup));
    // The facts: objects and bytes of every bucket, as the copy holds them.
    let generation = latest_generation(&backup);
    let manifest: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(generation.join("opsplan-manifest.json")).expect("manifest"),
    )
    .expect("manifest JSON");
    let (objects, bucket_bytes) = bucket_counts(&generation.join("minio"));
    assert!(
        objects.as_object().is_some_and(|o| !o.is_empty()),
        "cosmos6: no bucket in the copy"
    );
    assert_eq!(
        manifest["facts"],
        serde_json::json!({"format_version": 1, "values": {"objects": objects, "bytes": bucket_bytes}}),
        "cosmos6: the backup's facts are not the copy's objects and bytes per bucket"
    );
    assert_same(
        "bucket files (volume vs backup/minio)",
        &seeded,
        &lab.sums(
            &latest_generation(&backup)
                .join("minio")
                .display()
                .to_string(),
        ),
    );

    // ---- wipe
    lab.openc3("stop");
    docker_ok(&[
        "run",
        "--rm",
        "--user",
        "root",
        "-v",
        &format!("{bucket_v}:/data"),
        INIT,
        "find",
        "/data",
        "-mindepth",
        "1",
        "-delete",
    ]);
    assert!(
        lab.sums(&bucket_v).is_empty(),
        "the wiped volume still has files"
    );
    lab.openc3("start");

    // ---- restore
    let restore_sets = vec![
        ("backup_dir", backup.display().to_string()),
        ("bucket_volume", bucket_v.clone()),
        ("init_image", INIT.to_string()),
        ("cosmos_dir", cosmos_dir.display().to_string()),
    ];
    let out = lab.opsplan_ok("plans/cosmos6/restore.yaml", &restore_sets);
    assert_eq!(step_status(&out, "facts-match"), "ok", "{}", out.all());
    assert_same(
        "bucket files (seed vs restored)",
        &seeded,
        &lab.sums(&bucket_v),
    );
    let wrong_owner = docker_ok(&[
        "run",
        "--rm",
        "-v",
        &format!("{bucket_v}:/data:ro"),
        ALPINE,
        "find",
        "/data",
        "(",
        "!",
        "-user",
        "501",
        "-o",
        "!",
        "-group",
        "501",
        "-o",
        "!",
        "-perm",
        "777",
        ")",
    ]);
    assert!(
        wrong_owner.trim().is_empty(),
        "restored entries not owned 501:501 with mode 777 (the page's chown/chmod):\n{wrong_owner}"
    );
    let entries = docker_ok(&[
        "run",
        "--rm",
        "-v",
        &format!("{bucket_v}:/data:ro"),
        ALPINE,
        "find",
        "/data",
    ])
    .lines()
    .count();
    assert!(
        lab.running("openc3-minio-1"),
        "COSMOS 6 (MinIO) not started after the restore"
    );

    // ---- failure drill: the generation records one object more in a bucket than it holds
    // (its manifest's facts edited, the marker's checksum updated): the restore mirrors
    // every file, facts-match fails naming the bucket and both counts, and COSMOS stays
    // stopped. The facts are put back and COSMOS started, as before the drill.
    let (first_bucket, held) = objects
        .as_object()
        .and_then(|o| o.iter().next())
        .map(|(b, n)| (b.clone(), n.as_u64().unwrap_or(0)))
        .expect("cosmos6: a bucket");
    let original = edit_recorded_facts(&generation, |values| {
        values["objects"][&first_bucket] = serde_json::json!(held + 1);
    });
    let out = lab.opsplan("plans/cosmos6/restore.yaml", &restore_sets);
    put_back_facts(&generation, original);
    assert_ne!(
        out.code,
        0,
        "cosmos6: a restore short of a recorded object passed:\n{}",
        out.all()
    );
    assert_eq!(step_status(&out, "facts-match"), "FAILED", "{}", out.all());
    let report = failure_report(&out, "facts-match");
    assert!(
        report.contains(&format!(
            "objects {first_bucket}: {} recorded, {held} restored",
            held + 1
        )) && report.matches(" recorded, ").count() == 1,
        "cosmos6: facts-match does not name the bucket (alone): {report}"
    );
    assert_eq!(
        step_status(&out, "start-cosmos"),
        "not run",
        "{}",
        out.all()
    );
    assert!(
        !lab.running("openc3-minio-1"),
        "cosmos6: COSMOS started on a volume that failed the facts check"
    );
    lab.openc3("start");

    // ---- failure drill: the restore fails after clear-volume (a volume too small).
    lab.openc3("cleanup");
    lab.small_volume("openc3-bucket-v", "64k");
    lab.openc3("run");
    let out = lab.opsplan("plans/cosmos6/restore.yaml", &restore_sets);
    assert_eq!(
        out.code,
        1,
        "cosmos6 failure drill should fail:\n{}",
        out.all()
    );
    for (step, want) in [
        ("stop-cosmos", "ok"),
        ("clear-volume", "ok"),
        ("mirror", "FAILED"),
    ] {
        assert_eq!(
            step_status(&out, step),
            want,
            "cosmos6 failure drill: {step}:\n{}",
            out.all()
        );
    }
    for step in ["fix-ownership", "start-cosmos"] {
        assert_ne!(
            step_status(&out, step),
            "ok",
            "cosmos6 failure drill: {step} ran"
        );
    }
    assert!(
        !lab.running("openc3-minio-1"),
        "cosmos6 failure drill: MinIO was started on a half-restored volume"
    );
    let failed_line = failure_report(&out, "mirror");
    assert!(
        failed_line.contains("No space left on device"),
        "cosmos6 failure drill: the report does not name the cause: {failed_line}\n{}",
        out.all()
    );

    result_line(&format!(
        "drill cosmos6: ok (backup {files} files, {:.2} MiB checked, a second generation beside the first, an incomplete one left incomplete; \
         {second_backup}; \
         restore equal: {} files same SHA-256, {entries} entries 501:501 mode 777; 2 failure drills ok) \
         [real: Docker, busybox/GNU find, opsplan; stand-ins: mc (tests/lab/images/openc3-init/mc), \
         MinIO (a volume holder), openc3.sh]",
        bytes as f64 / 1048576.0,
        seeded.len(),
    ));
    eprintln!("  failure drill cosmos6/backup, mc skips an unreadable file: {unreadable_report}");
    eprintln!(
        "  failure drill cosmos6/restore, mirror fails after clear-volume: MinIO left stopped; run: {failed_line} / {}",
        summary_line(&out)
    );
}

/// The COSMOS recipes of docs/reference/drill.md, as written there, up to the point where
/// they would start the backup: they are not run end to end here (the COSMOS drills above
/// already take minutes each; docs/reference/drill.md's dop recipes are the ones run end to
/// end, in drill_dop.rs). Without `--force` and without a terminal, the drill stops at the
/// destructive gate, which comes after every other refusal: so a refusal at `gate` proves
/// both plans loaded and compiled with the recipe's params files, the target check passed
/// (the staging container or volume is not the live one), and the backup plan has a
/// manifest to verify. Nothing runs: no generation, no journal. The same recipe with the
/// restore's target set to the live system's is refused at `target`, naming the param.
#[test]
fn cosmos_recipes_pass_the_drills_refusals() {
    for (system, target, live, staging) in [
        (
            "cosmos7",
            "tsdb_container",
            "openc3-tsdb-1",
            "cosmos-staging-openc3-tsdb-1",
        ),
        (
            "cosmos6",
            "bucket_volume",
            "openc3-bucket-v",
            "cosmos-staging_openc3-bucket-v",
        ),
    ] {
        let tmp = tempfile::tempdir().expect("temp dir");
        let location = tmp.path().join(format!("{system}-drill"));
        let staging_dir = tmp.path().join("cosmos-staging");
        std::fs::create_dir_all(&staging_dir).expect("mkdir");
        let backup_dir = ("backup_dir", location.display().to_string());
        crate::common::recipe_stops_at_the_gate(
            &crate::common::GateRecipe {
                name: system,
                target,
                live,
                staging,
                destructive: "restore: clear-volume",
                backup: vec![backup_dir.clone()],
                restore: vec![
                    backup_dir,
                    ("cosmos_dir", staging_dir.display().to_string()),
                ],
                env: vec![
                    ("OPENC3_TSDB_USERNAME", TSDB_USER),
                    ("OPENC3_TSDB_PASSWORD", TSDB_PASSWORD),
                ],
            },
            tmp.path(),
        );
        assert!(
            !location.exists(),
            "{system}: the refused drill wrote {}",
            location.display()
        );
    }
    result_line(
        "drill recipes: cosmos7 and cosmos6 ok, their recipes of docs/reference/drill.md load, \
         pass the target check and stop at the destructive gate without --force; restoring into \
         the live container or volume is refused (not run end to end)",
    );
}
