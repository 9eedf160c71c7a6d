//! Helpers shared by the durable-run tests (crash matrix, locks, signals, secrets): the real
//! binary run in a temp folder whose journal and lock folders are private to the test.

#![allow(dead_code)]

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_opsplan");

pub fn repo(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(rel)
}

pub fn fixture(name: &str) -> PathBuf {
    repo("tests/fixtures/durable").join(name)
}

/// `opsplan ARGS` with the journal and locks under `work/.opsplan`.
pub fn opsplan(work: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.args(args)
        .current_dir(work)
        .env_remove("OPSPLAN_LOG")
        .env_remove("OPSPLAN_TEST_KILL_AT")
        .env("OPSPLAN_JOURNAL_DIR", work.join(".opsplan/runs"))
        .env("OPSPLAN_LOCK_DIR", work.join(".opsplan/locks"))
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

pub struct Ran {
    pub code: Option<i32>,
    pub signal: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Ran {
    pub fn all(&self) -> String {
        format!("{}{}", self.stdout, self.stderr)
    }
}

/// A running binary whose output is collected by threads.
pub struct Running {
    pub child: Child,
    pub stdout: Arc<Mutex<String>>,
    pub stderr: Arc<Mutex<String>>,
    readers: Vec<std::thread::JoinHandle<()>>,
}

fn pump(
    mut r: impl Read + Send + 'static,
    into: Arc<Mutex<String>>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = r.read(&mut buf) {
            if n == 0 {
                break;
            }
            into.lock()
                .expect("lock")
                .push_str(&String::from_utf8_lossy(&buf[..n]));
        }
    })
}

impl Running {
    pub fn spawn(mut cmd: Command) -> Running {
        let mut child = cmd.spawn().expect("start opsplan");
        let stdout = Arc::new(Mutex::new(String::new()));
        let stderr = Arc::new(Mutex::new(String::new()));
        let mut readers = Vec::new();
        if let Some(o) = child.stdout.take() {
            readers.push(pump(o, stdout.clone()));
        }
        if let Some(e) = child.stderr.take() {
            readers.push(pump(e, stderr.clone()));
        }
        Running {
            child,
            stdout,
            stderr,
            readers,
        }
    }
    pub fn pid(&self) -> Pid {
        Pid::from_raw(self.child.id() as i32)
    }
    pub fn stderr_now(&self) -> String {
        self.stderr.lock().expect("lock").clone()
    }
    pub fn finished(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(Some(_)))
    }
    /// Waits up to `limit` (then SIGKILLs it and fails the test).
    pub fn wait(mut self, limit: Duration) -> Ran {
        let deadline = Instant::now() + limit;
        let status = loop {
            if let Some(s) = self.child.try_wait().expect("wait") {
                break s;
            }
            if Instant::now() > deadline {
                let _ = kill(self.pid(), Signal::SIGKILL);
                panic!(
                    "opsplan did not finish within {limit:?}; stderr so far:\n{}",
                    self.stderr_now()
                );
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        for r in self.readers {
            let _ = r.join();
        }
        use std::os::unix::process::ExitStatusExt;
        let stdout = self.stdout.lock().expect("lock").clone();
        let stderr = self.stderr.lock().expect("lock").clone();
        Ran {
            code: status.code(),
            signal: status.signal(),
            stdout,
            stderr,
        }
    }
}

pub fn run(cmd: Command) -> Ran {
    Running::spawn(cmd).wait(Duration::from_secs(60))
}

pub fn wait_for(limit: Duration, what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The single run id in `work`'s journal folder.
pub fn only_run(work: &Path) -> String {
    let mut ids: Vec<String> = std::fs::read_dir(work.join(".opsplan/runs"))
        .expect("journal folder")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(ids.len(), 1, "expected one run: {ids:?}");
    ids.remove(0)
}

/// `opsplan runs show RUN --format json`.
pub fn show(work: &Path, run: &str) -> serde_json::Value {
    let r = self::run(opsplan(work, &["runs", "show", run, "--format", "json"]));
    assert_eq!(r.code, Some(0), "{}", r.all());
    serde_json::from_str(&r.stdout).unwrap_or_else(|e| panic!("{e}: {}", r.stdout))
}

/// A process that has exited counts as gone even while it waits, as a zombie, to be reaped.
pub fn process_gone(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => kill(Pid::from_raw(pid), None).is_err(),
        Ok(stat) => {
            let state = stat
                .rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().next());
            matches!(state, Some("Z" | "X"))
        }
    }
}
