//! The `opsplan` binary as the tests run it: a command whose journals and locks are private
//! to the test, a child that is killed when the test drops it (a failed assertion must not
//! leave a run holding locks or containers), and what a finished run left: its exit, its
//! streams and its JSON events.

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use serde_json::Value;
use std::io::Read;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The longest a test lets one run take before it kills it and fails.
pub const DEFAULT_LIMIT: Duration = Duration::from_secs(60);

/// The binary cargo built for the integration tests: beside the test executable's `deps/`
/// folder (what `CARGO_BIN_EXE_opsplan` names for the test crate itself).
pub fn path() -> PathBuf {
    let exe = std::env::current_exe().unwrap_or_default();
    exe.parent()
        .and_then(Path::parent)
        .map(|debug| debug.join("opsplan"))
        .unwrap_or_else(|| PathBuf::from("opsplan"))
}

/// The binary placed in `dir/bin/opsplan` (a hard link, or a copy across file systems),
/// for a test that runs it from a folder holding nothing of the repository, as an
/// installed binary runs; returns its path.
pub fn install_into(dir: &Path) -> PathBuf {
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).expect("create the bin folder");
    let exe = bin.join("opsplan");
    if std::fs::hard_link(path(), &exe).is_err() {
        std::fs::copy(path(), &exe).expect("copy the binary");
    }
    exe
}

/// `opsplan` with its run journals and locks under `state` (the test's temp folder), plain
/// output, no inherited log or fault-injection settings, no stdin, piped streams.
pub fn command(state: &Path) -> Command {
    command_of(&path(), state)
}

/// [`command`] for the binary at `exe` (as [`install_into`] placed it).
pub fn command_of(exe: &Path, state: &Path) -> Command {
    let mut cmd = Command::new(exe);
    cmd.env("OPSPLAN_JOURNAL_DIR", state.join("runs"))
        .env("OPSPLAN_LOCK_DIR", state.join("locks"))
        .env("NO_COLOR", "1")
        .env_remove("OPSPLAN_LOG")
        .env_remove("OPSPLAN_TEST_KILL_AT")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

/// A finished run.
#[derive(Debug, Clone, Default)]
pub struct Ran {
    /// The exit code; -1 when a signal ended it.
    pub code: i32,
    /// The signal that ended it, if one did.
    pub signal: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    pub elapsed: Duration,
}

impl Ran {
    /// Standard output, then standard error.
    pub fn all(&self) -> String {
        format!("{}{}", self.stdout, self.stderr)
    }

    /// Panics with the run's output unless it exited with `code`.
    #[track_caller]
    pub fn expect_code(&self, code: i32, what: &str) -> &Ran {
        assert_eq!(
            self.code,
            code,
            "{what}: expected exit {code}, got {} (signal {:?}); output:\n{}",
            self.code,
            self.signal,
            self.all()
        );
        self
    }

    /// Panics with the run's output unless it exited 0.
    #[track_caller]
    pub fn ok(&self) -> &Ran {
        self.expect_code(0, "the run")
    }

    /// The events of a `--log-format json` run, in order: the objects on stderr, one a
    /// line, named by their `event` field.
    pub fn events(&self) -> Vec<Value> {
        self.stderr
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|v| v["event"].is_string())
            .collect()
    }

    /// The `step_finished` events of step `id` (forward, then cleanup phase), in order.
    pub fn finished(&self, id: &str) -> Vec<Value> {
        self.events()
            .into_iter()
            .filter(|e| e["event"] == "step_finished" && e["step"] == id)
            .collect()
    }

    /// The status (`succeeded`, `failed`, `skipped`, …) of step `id`'s first finish, or
    /// `not run`.
    pub fn status(&self, id: &str) -> String {
        self.finished(id)
            .first()
            .and_then(|e| e["status"].as_str().map(str::to_string))
            .unwrap_or_else(|| "not run".into())
    }

    /// The run's final status from `run_finished`.
    pub fn run_status(&self) -> String {
        self.events()
            .into_iter()
            .find(|e| e["event"] == "run_finished")
            .and_then(|e| e["status"].as_str().map(str::to_string))
            .unwrap_or_else(|| "no run_finished event".into())
    }

    /// The forward `step_finished` event of step `id`.
    #[track_caller]
    fn forward(&self, id: &str) -> Value {
        self.finished(id)
            .into_iter()
            .find(|e| e["phase"] == "forward")
            .unwrap_or_else(|| panic!("step {id} did not finish:\n{}", self.all()))
    }

    /// The outputs of step `id`, which must have succeeded (a `--log-format json` run).
    #[track_caller]
    pub fn outputs(&self, id: &str) -> Value {
        let ev = self.forward(id);
        assert_eq!(ev["status"], "succeeded", "step {id}:\n{}", self.all());
        ev["outputs"].clone()
    }

    /// The error of step `id`, which must have failed (a `--log-format json` run).
    #[track_caller]
    pub fn error(&self, id: &str) -> String {
        let ev = self.forward(id);
        assert_eq!(ev["status"], "failed", "step {id}:\n{}", self.all());
        ev["error"].as_str().unwrap_or_default().to_string()
    }

    /// The error of the failed step `id` as the console prints it (`FAILED id (1.2s): …`),
    /// up to the rollback line or the next step.
    #[track_caller]
    pub fn failure(&self, id: &str) -> String {
        let all = self.all();
        let prefix = format!("FAILED {id} (");
        let start = all
            .find(&prefix)
            .unwrap_or_else(|| panic!("no failure of {id} in:\n{all}"));
        let rest = &all[start..];
        let rest = rest.find("): ").map_or("", |i| &rest[i + 3..]);
        let end = ["\nrolling back", "\n\nstep "]
            .iter()
            .filter_map(|m| rest.find(m))
            .min()
            .unwrap_or(rest.len());
        rest[..end].to_string()
    }
}

/// A running binary whose streams are collected by threads; killed (SIGKILL) when dropped
/// before it finished.
pub struct Running {
    child: Child,
    stdout: Arc<Mutex<String>>,
    stderr: Arc<Mutex<String>>,
    readers: Vec<JoinHandle<()>>,
    started: Instant,
    done: bool,
}

fn pump(mut from: impl Read + Send + 'static, into: Arc<Mutex<String>>) -> JoinHandle<()> {
    std::thread::spawn(move || {
        let mut buf = [0u8; 8192];
        while let Ok(n) = from.read(&mut buf) {
            if n == 0 {
                break;
            }
            if let Ok(mut s) = into.lock() {
                s.push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        }
    })
}

impl Running {
    #[track_caller]
    pub fn spawn(mut cmd: Command) -> Running {
        Running::start(&mut cmd)
    }

    /// Like [`Running::spawn`], for a command the caller keeps.
    #[track_caller]
    pub fn start(cmd: &mut Command) -> Running {
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
        let started = Instant::now();
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("start {:?}: {e}", cmd.get_program()));
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
            started,
            done: false,
        }
    }

    pub fn pid(&self) -> Pid {
        Pid::from_raw(self.child.id() as i32)
    }

    /// What it wrote to stdout so far.
    pub fn stdout_now(&self) -> String {
        self.stdout.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// What it wrote to stderr so far.
    pub fn stderr_now(&self) -> String {
        self.stderr.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// Whether it has exited.
    pub fn finished(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(Some(_)))
    }

    /// Sends `signal` (the test's way of pressing Ctrl-C or of killing it).
    pub fn signal(&self, signal: Signal) {
        let _ = kill(self.pid(), signal);
    }

    /// Waits up to `limit`, then kills it and fails the test with what it printed.
    #[track_caller]
    pub fn wait(mut self, limit: Duration) -> Ran {
        let deadline = Instant::now() + limit;
        let status = loop {
            match self.child.try_wait() {
                Ok(Some(s)) => break s,
                Ok(None) if Instant::now() > deadline => {
                    let _ = self.child.kill();
                    let _ = self.child.wait();
                    self.done = true;
                    panic!(
                        "opsplan did not finish within {limit:?}; stderr so far:\n{}",
                        self.stderr_now()
                    );
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(10)),
                Err(e) => panic!("wait for opsplan: {e}"),
            }
        };
        self.done = true;
        for r in std::mem::take(&mut self.readers) {
            let _ = r.join();
        }
        Ran {
            code: status.code().unwrap_or(-1),
            signal: status.signal(),
            stdout: self.stdout_now(),
            stderr: self.stderr_now(),
            elapsed: self.started.elapsed(),
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if !self.done && matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Runs `cmd` to the end (killed and failed after `limit`).
#[track_caller]
pub fn run_within(cmd: Command, limit: Duration) -> Ran {
    Running::spawn(cmd).wait(limit)
}

/// Runs any program to the end with no stdin (killed and failed after `limit`): the same
/// [`Ran`] for the tools a test drives as for `opsplan` itself.
#[track_caller]
pub fn run_tool(cmd: &mut Command, limit: Duration) -> Ran {
    cmd.stdin(Stdio::null());
    Running::start(cmd).wait(limit)
}

/// Runs `cmd` to the end (killed and failed after [`DEFAULT_LIMIT`]).
#[track_caller]
pub fn run(cmd: Command) -> Ran {
    run_within(cmd, DEFAULT_LIMIT)
}

/// Polls `cond` every 20 ms; fails the test after `limit`.
#[track_caller]
pub fn wait_for(limit: Duration, what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
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
