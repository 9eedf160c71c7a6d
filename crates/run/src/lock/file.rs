//! Local locks: one file per lock name, mutual exclusion by flock(2), the holder record as
//! the file's content. The kernel drops the flock when the holder dies (even on SIGKILL),
//! while the record stays: that is how a stale lock is told from a free one. Lock files are
//! never deleted (deleting a flock file races with a process that just opened it).

use super::{Acquired, Ended, Holder, LockBackend, LockError, LockGuard, Takeover};
use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

pub struct FileLocks {
    dir: PathBuf,
}

impl FileLocks {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        FileLocks { dir: dir.into() }
    }

    /// The file of a lock: its name with anything but `[A-Za-z0-9._-]` replaced, plus a
    /// hash of the exact name when something was replaced (so names never collide).
    pub fn path(&self, name: &str) -> PathBuf {
        let safe: String = name
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || "._-".contains(c) {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        let file = if safe == name && !name.starts_with('.') {
            format!("{name}.lock")
        } else {
            use sha2::Digest;
            let hash = hex::encode(sha2::Sha256::digest(name.as_bytes()));
            format!("{}-{}.lock", safe.trim_start_matches('.'), &hash[..12])
        };
        self.dir.join(file)
    }
}

fn read_holder(file: &mut File) -> Option<Holder> {
    let mut text = String::new();
    file.seek(SeekFrom::Start(0)).ok()?;
    file.read_to_string(&mut text).ok()?;
    serde_json::from_str(text.trim()).ok()
}

fn io_err(name: &str, what: &str, path: &Path, e: impl std::fmt::Display) -> LockError {
    LockError::Io {
        name: name.into(),
        detail: format!("cannot {what} {}: {e}", path.display()),
    }
}

impl LockBackend for FileLocks {
    fn try_acquire(
        &self,
        name: &str,
        me: &Holder,
        break_stale: bool,
    ) -> Result<Acquired, LockError> {
        let path = self.path(name);
        std::fs::create_dir_all(&self.dir)
            .map_err(|e| io_err(name, "create the lock folder", &self.dir, e))?;
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(&path)
            .map_err(|e| io_err(name, "open", &path, e))?;
        let mut lock = match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            Ok(l) => l,
            Err((mut file, Errno::EWOULDBLOCK)) => {
                // The holder writes its record right after taking the flock; give it a moment.
                let mut holder = read_holder(&mut file);
                for _ in 0..20 {
                    if holder.is_some() {
                        break;
                    }
                    std::thread::sleep(Duration::from_millis(25));
                    holder = read_holder(&mut file);
                }
                return Err(LockError::Held {
                    name: name.into(),
                    holder: holder.map(Box::new),
                });
            }
            Err((_, e)) => return Err(io_err(name, "lock", &path, e)),
        };
        let takeover = match read_holder(&mut lock) {
            None => None,
            Some(h) if h.run_id == me.run_id => Some(Takeover::SameRun(h)),
            Some(h) if break_stale => Some(Takeover::Broken(h)),
            Some(h) => {
                return Err(LockError::Stale {
                    name: name.into(),
                    holder: Box::new(h),
                })
            }
        };
        let record = serde_json::to_string(me).unwrap_or_default();
        lock.set_len(0)
            .and_then(|_| lock.seek(SeekFrom::Start(0)))
            .and_then(|_| lock.write_all(record.as_bytes()))
            .and_then(|_| lock.write_all(b"\n"))
            .and_then(|_| lock.sync_data())
            .map_err(|e| io_err(name, "write", &path, e))?;
        Ok(Acquired {
            guard: Box::new(FileGuard {
                name: name.into(),
                path,
                lock,
                record: me.clone(),
            }),
            takeover,
        })
    }
}

struct FileGuard {
    name: String,
    path: PathBuf,
    lock: Flock<File>,
    /// The record written when it was taken.
    record: Holder,
}

impl LockGuard for FileGuard {
    fn name(&self) -> &str {
        &self.name
    }
    fn release(self: Box<Self>, keep_record: bool) -> Result<(), LockError> {
        if !keep_record {
            self.lock
                .set_len(0)
                .and_then(|_| self.lock.sync_data())
                .map_err(|e| io_err(&self.name, "clear", &self.path, e))?;
        }
        // Dropping the flock unlocks it.
        Ok(())
    }
    fn mark_ended(&mut self, ended: Ended) -> Result<(), LockError> {
        let record = Holder {
            ended: Some(ended),
            ..self.record.clone()
        };
        let text = serde_json::to_string(&record).unwrap_or_default();
        let lock = &mut self.lock;
        lock.set_len(0)
            .and_then(|_| lock.seek(SeekFrom::Start(0)))
            .and_then(|_| lock.write_all(text.as_bytes()))
            .and_then(|_| lock.write_all(b"\n"))
            .and_then(|_| lock.sync_data())
            .map_err(|e| io_err(&self.name, "write", &self.path, e))
    }
}
