//! The one writer of a run's journal: an [`EventSink`] that appends each event as a JSON line.
//!
//! Durability point: [`EventSink::emit`] returns only after the record is on disk
//! (`fdatasync`); [`EventSink::emit_unsynced`] writes records that the next sync makes
//! durable. Which record must be durable before which effect is decided by the executor
//! (docs/design/0003-journal-and-resume.md, "Durability point": a `step_started` before the
//! effect of a step that holds something or is not rerun-safe, a `step_finished` before
//! anything that depends on it). Every record is written at once, so a killed process
//! leaves all of them on record (the page cache survives it); only a crash of the machine
//! loses what was not synced. Log lines (`StepLog`) are never synced on their own.
//!
//! Group commit: the sync runs outside the write lock, and one sync covers every record
//! written before it started, so steps starting or finishing at the same time (parallel
//! steps) wait for one `fdatasync` instead of queueing one each. A record is still never
//! reported durable before a sync that began after it was written.

use super::format::{Meta, Record, EVENTS_FILE, META_FILE, OWNER_FILE};
use crate::exec::events::{EventSink, RunEvent};
use crate::exec::Interrupts;
use crate::notice::{Notice, NoticeFn};
use nix::fcntl::{Flock, FlockArg};
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

pub struct Recorder {
    dir: PathBuf,
    inner: Mutex<Inner>,
    /// Serializes syncs; holds the highest sequence number known to be on disk.
    synced: Mutex<u64>,
    /// Bytes of the events file known to be on disk (what a crash of the machine keeps).
    synced_len: AtomicU64,
    /// `fdatasync` calls made for records (not the ones that create the journal).
    syncs: AtomicU64,
    /// The events file again, to sync while others keep writing through `inner`.
    sync_file: File,
    /// Cancelled when a record cannot be written: a run whose journal is broken cannot be
    /// resumed after a crash, so it stops and rolls back instead of going on blind.
    on_failure: Interrupts,
    /// Where the loss of the journal is told, at once (the operator must know why it stops).
    notice: NoticeFn,
    /// Why the journal stopped being written, once it did.
    lost: std::sync::OnceLock<String>,
    /// `journal-lost`, created with its full size at the start, so that marking the journal
    /// lost overwrites blocks it already has (a full disk cannot refuse it).
    lost_marker: Option<File>,
    // Held for the life of the recorder; released by the kernel on any exit.
    _owner: Flock<File>,
}

struct Inner {
    file: File,
    seq: u64,
    /// Bytes written to the events file so far.
    len: u64,
    failed: bool,
    kill: Option<KillHook>,
}

/// Test-only crash injection (debug builds): `OPSPLAN_TEST_KILL_AT=after:N` SIGKILLs the
/// process right after record N is written (and synced, if it is synced at all),
/// `before:N` just before record N is written (the step's effect happened, its record did
/// not), `torn:N` after writing half of it. `lost:N` is a crash of the machine just before
/// record N is written: the run's child processes end, what was not synced is cut off the
/// events file, then the engine is SIGKILLed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum KillHook {
    Before(u64),
    After(u64),
    Torn(u64),
    Lost(u64),
}

fn kill_hook() -> Option<KillHook> {
    if !cfg!(debug_assertions) {
        return None;
    }
    let spec = std::env::var("OPSPLAN_TEST_KILL_AT").ok()?;
    let (kind, n) = spec.split_once(':')?;
    let n: u64 = n.trim().parse().ok()?;
    match kind {
        "before" => Some(KillHook::Before(n)),
        "after" => Some(KillHook::After(n)),
        "torn" => Some(KillHook::Torn(n)),
        "lost" => Some(KillHook::Lost(n)),
        _ => None,
    }
}

fn die() -> ! {
    let _ = nix::sys::signal::raise(nix::sys::signal::Signal::SIGKILL);
    std::process::abort()
}

/// `lost:N`: the machine stops. Called with the journal's write lock held, so no record is
/// written or synced any more. The children this process started finish what they were
/// doing (the worst case for the journal: their effect happened, records after the last
/// sync are gone; a child still running after 5 s is killed), then everything past the
/// last completed sync is cut off the events file and the engine dies.
fn power_loss(file: &File, synced_len: &AtomicU64) -> ! {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while live_children(std::time::Instant::now() > deadline) > 0 {
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    // Read last: a sync that completed meanwhile may have let its step start a child,
    // which was waited for above; its record is durable and stays.
    let _ = file.set_len(synced_len.load(Ordering::SeqCst));
    die()
}

/// How many children of this process are still running (exited ones waiting to be reaped
/// do not count); with `kill`, SIGKILLs the process group of each.
fn live_children(kill_them: bool) -> usize {
    use nix::sys::signal::{kill, killpg, Signal};
    use nix::unistd::Pid;
    let me = std::process::id().to_string();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return 0;
    };
    let mut live = 0;
    for e in entries.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|n| n.parse::<i32>().ok()) else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(e.path().join("stat")) else {
            continue;
        };
        // `pid (comm) state ppid ...`; comm may hold spaces and parentheses.
        let Some((_, rest)) = stat.rsplit_once(')') else {
            continue;
        };
        let mut fields = rest.split_whitespace();
        let state = fields.next();
        if fields.next() != Some(me.as_str()) || matches!(state, Some("Z" | "X")) {
            continue;
        }
        live += 1;
        if kill_them {
            let _ = killpg(Pid::from_raw(pid), Signal::SIGKILL);
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
        }
    }
    live
}

/// Takes the run's owner lock; fails when another process is writing this run's journal.
pub fn take_owner(dir: &Path) -> std::io::Result<Flock<File>> {
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(dir.join(OWNER_FILE))?;
    Flock::lock(file, FlockArg::LockExclusiveNonblock).map_err(|(_, errno)| {
        if errno == nix::errno::Errno::EWOULDBLOCK {
            std::io::Error::new(
                std::io::ErrorKind::WouldBlock,
                "another opsplan process is running this run",
            )
        } else {
            std::io::Error::from(errno)
        }
    })
}

/// A new file only its owner can read.
fn private_file(path: &Path) -> std::io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .mode(0o600)
        .open(path)
}

fn sync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}

impl Recorder {
    /// Creates `<root>/<run id>/` with its metadata, durably, before anything runs.
    pub fn create(
        root: &Path,
        meta: &Meta,
        on_failure: Interrupts,
        notice: NoticeFn,
    ) -> std::io::Result<Recorder> {
        let dir = root.join(&meta.run_id);
        std::fs::create_dir_all(root)?;
        // A run's journal is its operator's: outputs and errors can say more about a system
        // than other local users should read (secrets themselves are masked).
        {
            use std::os::unix::fs::DirBuilderExt;
            std::fs::DirBuilder::new().mode(0o700).create(&dir)?;
        }
        let owner = take_owner(&dir)?;
        let tmp = dir.join(format!("{META_FILE}.tmp"));
        {
            let mut f = private_file(&tmp)?;
            let text = serde_json::to_string_pretty(meta).map_err(std::io::Error::other)?;
            f.write_all(text.as_bytes())?;
            f.write_all(b"\n")?;
            f.sync_all()?;
        }
        std::fs::rename(&tmp, dir.join(META_FILE))?;
        let file = {
            use std::os::unix::fs::OpenOptionsExt;
            OpenOptions::new()
                .create(true)
                .append(true)
                .mode(0o600)
                .open(dir.join(EVENTS_FILE))?
        };
        file.sync_all()?;
        sync_dir(&dir)?;
        sync_dir(root)?;
        let lost_marker = reserve_lost_marker(&dir, true);
        Ok(Recorder {
            dir,
            synced: Mutex::new(0),
            synced_len: AtomicU64::new(0),
            syncs: AtomicU64::new(0),
            sync_file: file.try_clone()?,
            inner: Mutex::new(Inner {
                file,
                seq: 0,
                len: 0,
                failed: false,
                kill: kill_hook(),
            }),
            on_failure,
            notice,
            lost: std::sync::OnceLock::new(),
            lost_marker,
            _owner: owner,
        })
    }

    /// Reopens a run's journal to append a resumed session. `owner` was taken by the caller
    /// (before deciding to resume); `valid_len` is where the last complete record ends: a
    /// torn tail is cut off first, so new records never follow half a line.
    pub fn reopen(
        dir: &Path,
        owner: Flock<File>,
        last_seq: u64,
        valid_len: u64,
        on_failure: Interrupts,
        notice: NoticeFn,
    ) -> std::io::Result<Recorder> {
        let path = dir.join(EVENTS_FILE);
        let f = OpenOptions::new().write(true).open(&path)?;
        if f.metadata()?.len() > valid_len {
            f.set_len(valid_len)?;
            f.sync_all()?;
        }
        drop(f);
        let file = OpenOptions::new().append(true).open(&path)?;
        let lost_marker = reserve_lost_marker(dir, false);
        Ok(Recorder {
            dir: dir.to_path_buf(),
            synced: Mutex::new(last_seq),
            synced_len: AtomicU64::new(valid_len),
            syncs: AtomicU64::new(0),
            sync_file: file.try_clone()?,
            inner: Mutex::new(Inner {
                file,
                seq: last_seq,
                len: valid_len,
                failed: false,
                kill: kill_hook(),
            }),
            on_failure,
            notice,
            lost: std::sync::OnceLock::new(),
            lost_marker,
            _owner: owner,
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// How many `fdatasync` calls the recorder made for records so far (creating the
    /// journal's files and folder is not counted): what the group commit and the executor's
    /// durability rules save is measured in these.
    pub fn syncs(&self) -> u64 {
        self.syncs.load(Ordering::Relaxed)
    }
}

impl Recorder {
    /// Appends one record (not yet synced): its sequence number and whether it must be
    /// durable, or `None` when nothing was written (the journal already failed).
    fn append(&self, event: &RunEvent) -> Option<(u64, bool)> {
        let Ok(mut inner) = self.inner.lock() else {
            return None;
        };
        if inner.failed {
            return None;
        }
        inner.seq += 1;
        let record = Record {
            seq: inner.seq,
            event: event.clone(),
        };
        let Ok(mut line) = serde_json::to_vec(&record) else {
            return None;
        };
        line.push(b'\n');
        let seq = inner.seq;
        match inner.kill {
            Some(KillHook::Before(n)) if n == seq => die(),
            Some(KillHook::Lost(n)) if n == seq => power_loss(&inner.file, &self.synced_len),
            Some(KillHook::Torn(n)) if n == seq => {
                let half = line.len() / 2;
                let _ = inner.file.write_all(&line[..half]);
                let _ = inner.file.sync_data();
                die()
            }
            _ => {}
        }
        if let Err(e) = inner.file.write_all(&line) {
            inner.failed = true;
            drop(inner);
            self.fail(&e);
            return None;
        }
        inner.len += line.len() as u64;
        Some((seq, !matches!(event, RunEvent::StepLog { .. })))
    }

    /// Returns once record `seq` is on disk: at once when a sync that began after it was
    /// written has finished, else after syncing everything written so far.
    fn sync_through(&self, seq: u64) {
        let Ok(mut synced) = self.synced.lock() else {
            return;
        };
        if *synced >= seq {
            return;
        }
        let (upto, len) = match self.inner.lock() {
            Ok(inner) if !inner.failed => (inner.seq, inner.len),
            _ => return,
        };
        self.syncs.fetch_add(1, Ordering::Relaxed);
        match self.sync_file.sync_data() {
            Ok(()) => {
                *synced = upto;
                self.synced_len.store(len, Ordering::SeqCst);
            }
            Err(e) => {
                if let Ok(mut inner) = self.inner.lock() {
                    inner.failed = true;
                }
                self.fail(&e);
            }
        }
    }

    fn fail(&self, e: &std::io::Error) {
        let reason = format!(
            "the run journal in {} could not be written: {e}",
            self.dir.display()
        );
        (self.notice)(&Notice::JournalLost {
            reason: reason.clone(),
        });
        if self.lost.set(reason.clone()).is_ok() {
            if let Some(f) = &self.lost_marker {
                mark_lost(f, &reason);
            }
        }
        self.on_failure.cancel_for(reason);
    }

    /// Why the journal stopped being written, if it did: the run's record is incomplete
    /// from then on, and `resume` must not build on it.
    pub fn lost(&self) -> Option<String> {
        self.lost.get().cloned()
    }

    fn kill_after(&self, seq: u64) {
        let hook = self.inner.lock().ok().and_then(|i| i.kill);
        if hook == Some(KillHook::After(seq)) {
            die();
        }
    }
}

impl EventSink for Recorder {
    fn emit(&self, event: &RunEvent) {
        let Some((seq, durable)) = self.append(event) else {
            return;
        };
        if durable {
            self.sync_through(seq);
        }
        self.kill_after(seq);
    }

    fn emit_all(&self, events: &[RunEvent]) {
        let mut last_durable = None;
        let mut written = Vec::with_capacity(events.len());
        for e in events {
            let Some((seq, durable)) = self.append(e) else {
                return;
            };
            written.push(seq);
            if durable {
                last_durable = Some(seq);
            }
        }
        if let Some(seq) = last_durable {
            self.sync_through(seq);
        }
        for seq in written {
            self.kill_after(seq);
        }
    }

    fn emit_unsynced(&self, events: &[RunEvent]) {
        for e in events {
            let Some((seq, _)) = self.append(e) else {
                return;
            };
            self.kill_after(seq);
        }
    }

    fn sync(&self) {
        let seq = match self.inner.lock() {
            Ok(inner) => inner.seq,
            Err(_) => return,
        };
        self.sync_through(seq);
    }
}

/// Size of `journal-lost`: the longest reason it records.
const LOST_MARKER_LEN: usize = 1024;

/// Reserves the marker; a resumed session keeps what an earlier one recorded in it.
fn reserve_lost_marker(dir: &Path, new: bool) -> Option<File> {
    let path = dir.join(super::format::LOST_FILE);
    let mut f = OpenOptions::new()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .open(path)
        .ok()?;
    if !new && f.metadata().ok()?.len() == LOST_MARKER_LEN as u64 {
        return Some(f);
    }
    f.write_all(&[b' '; LOST_MARKER_LEN]).ok()?;
    f.sync_all().ok()?;
    Some(f)
}

/// Overwrites the reserved marker in place (no new blocks, no size change).
fn mark_lost(f: &File, reason: &str) {
    use std::os::unix::fs::FileExt;
    let mut text = format!("lost: {reason}\n").into_bytes();
    text.truncate(LOST_MARKER_LEN);
    text.resize(LOST_MARKER_LEN, b' ');
    if f.write_all_at(&text, 0).is_ok() {
        let _ = f.sync_data();
    }
}

/// The reason recorded in `<dir>/journal-lost`, if the journal was marked lost.
pub fn lost_reason(dir: &Path) -> Option<String> {
    let text = std::fs::read_to_string(dir.join(super::format::LOST_FILE)).ok()?;
    let reason = text.trim().strip_prefix("lost: ")?;
    Some(reason.to_string())
}
