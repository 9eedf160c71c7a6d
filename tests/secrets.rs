//! A secret with a distinctive value goes through exec (engine-set env), exec (`env:`),
//! shell, http basic auth (accepted, then refused with the password quoted in the body) and
//! a failing child that prints it. It must reach each of them, and appear nowhere else:
//! not on stdout or stderr (text and JSON logs), not in preview or `runs show`, not in any
//! file of the journal or lock folders, not in any /proc/*/cmdline sampled during the run.
//! The HTTP side is a small real server on a loopback port, started and stopped here.

// Test helpers fail the test loudly on setup errors; that is what unwrap is for here.
#![allow(clippy::unwrap_used)]

use crate::durable_common;

use durable_common::*;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const SECRET: &str = "Zq9-sEcReT-7f41c2e-hunter2";

fn b64decode(s: &str) -> Vec<u8> {
    let table = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = Vec::new();
    let (mut acc, mut bits) = (0u32, 0);
    for c in s.bytes().filter(|&c| c != b'=') {
        let Some(v) = table.iter().position(|&t| t == c) else {
            continue;
        };
        acc = (acc << 6) | v as u32;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    out
}

fn b64encode(bytes: &[u8]) -> String {
    let table = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk.len();
        let v = (u32::from(chunk[0]) << 16)
            | (u32::from(*chunk.get(1).unwrap_or(&0)) << 8)
            | u32::from(*chunk.get(2).unwrap_or(&0));
        for i in 0..4 {
            if i <= n {
                out.push(table[((v >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Answers /ok with 200 and /deny with 401 quoting the password it got; records passwords.
struct Server {
    url: String,
    stop: Arc<AtomicBool>,
    seen: Arc<Mutex<Vec<String>>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Server {
    fn start() -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let stop = Arc::new(AtomicBool::new(false));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let (s, v) = (stop.clone(), seen.clone());
        let thread = std::thread::spawn(move || {
            while !s.load(Ordering::SeqCst) {
                let Ok((stream, _)) = listener.accept() else {
                    std::thread::sleep(Duration::from_millis(10));
                    continue;
                };
                stream.set_nonblocking(false).unwrap();
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut first = String::new();
                let _ = reader.read_line(&mut first);
                let mut password = String::new();
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 || line.trim().is_empty() {
                        break;
                    }
                    if let Some(auth) = line
                        .trim()
                        .strip_prefix("authorization: Basic ")
                        .or_else(|| line.trim().strip_prefix("Authorization: Basic "))
                    {
                        let decoded = String::from_utf8_lossy(&b64decode(auth)).into_owned();
                        password = decoded
                            .split_once(':')
                            .map(|(_, p)| p.to_string())
                            .unwrap_or_default();
                    }
                }
                v.lock().unwrap().push(password.clone());
                let (status, body) = if first.contains("/deny") {
                    (
                        "401 Unauthorized",
                        format!("password {password} is wrong for ops"),
                    )
                } else {
                    ("200 OK", "{\"ok\": true}".to_string())
                };
                let mut stream = stream;
                let _ = write!(
                    stream,
                    "HTTP/1.1 {status}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
            }
        });
        Server {
            url,
            stop,
            seen,
            thread: Some(thread),
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Every file under `dir`, with its contents.
fn files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let Ok(rd) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in rd.flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(files(&p));
        } else if let Ok(bytes) = std::fs::read(&p) {
            out.push((p.display().to_string(), bytes));
        }
    }
    out
}

fn contains(hay: &[u8], needle: &str) -> bool {
    hay.windows(needle.len()).any(|w| w == needle.as_bytes())
}

/// Reads every /proc/*/cmdline until stopped; returns those holding the secret.
fn watch_cmdlines(stop: Arc<AtomicBool>) -> std::thread::JoinHandle<(usize, Vec<String>)> {
    std::thread::spawn(move || {
        let (mut samples, mut found) = (0, Vec::new());
        while !stop.load(Ordering::SeqCst) {
            samples += 1;
            if let Ok(rd) = std::fs::read_dir("/proc") {
                for e in rd.flatten() {
                    if let Ok(cmd) = std::fs::read(e.path().join("cmdline")) {
                        if contains(&cmd, SECRET) {
                            found.push(String::from_utf8_lossy(&cmd).replace('\0', " "));
                        }
                    }
                }
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        (samples, found)
    })
}

#[test]
fn a_secret_reaches_its_steps_and_nothing_else() {
    let server = Server::start();
    for format in ["text", "json"] {
        let work = tempfile::tempdir().unwrap();
        let w = work.path();
        let plan = fixture("secrets.yaml").display().to_string();
        let dir = format!("dir={}", w.display());
        let url = format!("url={}", server.url);
        let mut cmd = opsplan(
            w,
            &[
                "run",
                &plan,
                "--set",
                &dir,
                "--set",
                &url,
                "--log-format",
                format,
            ],
        );
        cmd.env("OPSPLAN_TEST_SECRET", SECRET);

        let stop = Arc::new(AtomicBool::new(false));
        let watcher = watch_cmdlines(stop.clone());
        let r = run(cmd);
        stop.store(true, Ordering::SeqCst);
        let (samples, in_cmdline) = watcher.join().unwrap();

        // It failed where it should (the refused HTTP call, then the failing child).
        assert_eq!(r.code, 3, "{}", r.all());
        // The secret reached every consumer.
        for f in ["exec.seen", "env.seen", "shell.seen"] {
            assert_eq!(std::fs::read_to_string(w.join(f)).unwrap(), SECRET, "{f}");
        }
        assert!(
            server
                .seen
                .lock()
                .unwrap()
                .iter()
                .filter(|p| *p == SECRET)
                .count()
                >= 2
        );
        // And appeared nowhere else.
        assert!(samples > 10, "only {samples} samples of /proc");
        assert!(in_cmdline.is_empty(), "secret in argv: {in_cmdline:?}");
        assert!(
            !r.stdout.contains(SECRET),
            "stdout ({format}):\n{}",
            r.stdout
        );
        assert!(
            !r.stderr.contains(SECRET),
            "stderr ({format}):\n{}",
            r.stderr
        );
        // The masked texts are there, so the streams really carried them.
        assert!(r.stderr.contains("shell saw ********"), "{}", r.stderr);
        assert!(r.stderr.contains("exec saw ********"), "{}", r.stderr);
        assert!(
            r.stderr.contains("password ******** is wrong"),
            "{}",
            r.stderr
        );
        assert!(
            r.stderr.contains("child failed with token ********"),
            "{}",
            r.stderr
        );
        for (path, bytes) in files(&w.join(".opsplan")) {
            assert!(!contains(&bytes, SECRET), "secret in {path}");
        }
        let journal = files(&w.join(".opsplan/runs"));
        assert!(journal
            .iter()
            .any(|(_, b)| contains(b, "shell saw ********")));

        let run_id = only_run(w);
        for args in [
            vec!["runs", "show", run_id.as_str()],
            vec!["runs", "show", run_id.as_str(), "--format", "json"],
            vec!["runs"],
        ] {
            let out = run(opsplan(w, &args));
            assert!(!out.all().contains(SECRET), "{args:?}: {}", out.all());
        }
        let mut preview = opsplan(w, &["preview", &plan, "--set", &dir, "--set", &url]);
        preview.env("OPSPLAN_TEST_SECRET", SECRET);
        let p = run(preview);
        assert_eq!(p.code, 0, "{}", p.all());
        assert!(!p.all().contains(SECRET), "preview: {}", p.all());
        assert!(p.stdout.contains("********"), "{}", p.stdout);
        // Every other format of preview and graph, the secret in any encoded form.
        let encoded = [
            SECRET.to_string(),
            b64encode(SECRET.as_bytes()),
            SECRET.replace(' ', "%20"),
        ];
        for extra in [
            &["preview", "--format", "json"][..],
            &["preview", "--format", "markdown"],
            &["graph", "--format", "dot"],
            &["graph", "--format", "mermaid"],
        ] {
            let mut args = vec![extra[0], plan.as_str(), "--set", &dir, "--set", &url];
            args.extend(&extra[1..]);
            let mut cmd = opsplan(w, &args);
            cmd.env("OPSPLAN_TEST_SECRET", SECRET);
            let out = run(cmd);
            assert_eq!(out.code, 0, "{args:?}: {}", out.all());
            for form in &encoded {
                assert!(
                    !out.all().contains(form.as_str()),
                    "{args:?} shows {form}: {}",
                    out.all()
                );
            }
        }
    }
}

#[test]
fn resume_needs_the_secret_again_and_says_where_from() {
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let server = Server::start();
    let plan = fixture("secrets.yaml").display().to_string();
    let dir = format!("dir={}", w.display());
    let url = format!("url={}", server.url);
    let mut cmd = opsplan(w, &["run", &plan, "--set", &dir, "--set", &url]);
    cmd.env("OPSPLAN_TEST_SECRET", SECRET)
        .env("OPSPLAN_TEST_KILL_AT", "after:2");
    let first = run(cmd);
    assert_eq!(first.signal, Some(9), "{}", first.all());
    let run_id = only_run(w);
    let r = run(opsplan(w, &["resume", &run_id]));
    assert_eq!(r.code, 2, "{}", r.all());
    assert!(
        r.stderr.contains("secret `token` came from the environment variable OPSPLAN_TEST_SECRET, which is not set now"),
        "{}",
        r.stderr
    );
    let meta =
        std::fs::read_to_string(w.join(".opsplan/runs").join(&run_id).join("meta.json")).unwrap();
    assert!(meta.contains("\"token\""), "{meta}");
    assert!(!meta.contains(SECRET), "{meta}");
}

/// Masking is for what is shown and stored: a step's output that holds the secret reaches
/// the next step as printed (a checksum must not be rewritten), while the log and the
/// journal show it masked.
#[test]
fn outputs_passed_between_steps_are_not_masked() {
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let plan = fixture("secret-outputs.yaml").display().to_string();
    let dir = format!("dir={}", w.display());
    let mut cmd = opsplan(w, &["run", &plan, "--set", &dir, "--log-format", "json"]);
    cmd.env("OPSPLAN_TEST_SECRET", SECRET);
    let r = run(cmd);
    assert_eq!(r.code, 0, "{}", r.all());
    assert_eq!(
        std::fs::read_to_string(w.join("consumed")).unwrap(),
        format!("sum={SECRET}-end")
    );
    assert!(!r.all().contains(SECRET), "{}", r.all());
    for (path, bytes) in files(&w.join(".opsplan")) {
        assert!(!contains(&bytes, SECRET), "secret in {path}");
    }
}

/// A child that echoes the secret percent-encoded, JSON-escaped, as base64 and inside a
/// Basic header (base64 of `ops:secret`), with a multi-line secret masked line by line:
/// none of those forms reaches the console or the journal.
#[test]
fn encoded_and_multi_line_forms_are_masked() {
    let multi = format!("{SECRET}\nsecond-Line-Of-It-42\nab");
    for (secret, forms) in [
        (SECRET.to_string(), true),
        (format!("{SECRET}\"quoted\"/slash?"), true),
        (multi.clone(), false),
    ] {
        let work = tempfile::tempdir().unwrap();
        let w = work.path();
        let plan = fixture("secret-echo.yaml").display().to_string();
        let mut cmd = opsplan(w, &["run", &plan]);
        cmd.env("OPSPLAN_TEST_SECRET", &secret);
        let r = run(cmd);
        assert_eq!(r.code, 1, "{}", r.all());
        let mut leaks: Vec<String> = secret
            .lines()
            .filter(|l| l.len() >= 4)
            .map(str::to_string)
            .collect();
        if forms {
            // In process: a child with the secret in its argv would be seen by the /proc
            // watcher of the test running beside this one.
            let b64 = |s: &str| b64encode(s.as_bytes());
            let url: String = secret.bytes().map(|b| format!("%{b:02x}")).collect();
            leaks.push(url.clone());
            leaks.push(url.to_uppercase());
            leaks.push(
                serde_json::to_string(&secret)
                    .unwrap()
                    .trim_matches('"')
                    .to_string(),
            );
            leaks.push(b64(&secret));
            leaks.push(b64(&format!("ops:{secret}")));
        }
        let shown = r.all();
        for leak in &leaks {
            assert!(!shown.contains(leak.as_str()), "{leak} shown:\n{shown}");
            for (path, bytes) in files(&w.join(".opsplan")) {
                assert!(!contains(&bytes, leak), "{leak} in {path}");
            }
        }
        assert!(shown.contains("raw ********"), "{shown}");
        if forms {
            for line in ["url ********", "b64 ********", "Basic ********"] {
                assert!(shown.contains(line), "{line} not masked:\n{shown}");
            }
        }
    }
}

/// The rule for short secrets: fewer than 4 characters is refused, with the rule named.
#[test]
fn short_secrets_are_refused_with_the_rule() {
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let plan = fixture("secret-outputs.yaml").display().to_string();
    let dir = format!("dir={}", w.display());
    for (value, ok) in [("", false), ("ab", false), ("abc", false), ("abcd", true)] {
        let mut cmd = opsplan(w, &["run", &plan, "--set", &dir]);
        cmd.env("OPSPLAN_TEST_SECRET", value);
        let r = run(cmd);
        if ok {
            assert_eq!(r.code, 0, "{value:?}: {}", r.all());
        } else {
            assert_eq!(r.code, 2, "{value:?}: {}", r.all());
            assert!(r.all().contains("E047"), "{}", r.all());
            assert!(r.all().contains("a secret needs at least 4"), "{}", r.all());
        }
    }
}

/// The redactor alone: every form, and text that merely looks like base64 left alone.
#[test]
fn redactor_masks_every_form() {
    use opsplan_plan::template::Redactor;
    let r = Redactor::new([SECRET.to_string(), "line-one-xx\nline-two-yy".to_string()]);
    let b64 = "b3BzOlpxOS1zRWNSZVQtN2Y0MWMyZS1odW50ZXIy"; // base64("ops:" + SECRET)
    for text in [
        format!("Authorization: Basic {b64}"),
        "x=Zq9-sEcReT-7f41c2e-hunter2".to_string(),
        "got line-two-yy back".to_string(),
    ] {
        let masked = r.redact(&text);
        assert!(masked.contains("********"), "{text} -> {masked}");
        assert!(!masked.contains("hunter2") && !masked.contains(b64));
        assert!(!masked.contains("line-two-yy"));
    }
    let plain = "sha256 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
    assert_eq!(r.redact(plain), plain);
}
