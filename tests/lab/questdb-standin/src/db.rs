//! Operations on the data folder with QuestDB's semantics (as far as the stand-in goes):
//! checkpoints, writes, detach/attach, and the `_restore` start-up procedure.

use crate::store::*;
use crate::time::{day_of, fmt_day, fmt_ts, now_micros, MICROS_PER_DAY};
use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

pub const CHECKPOINT_LOG: &str = "checkpoint.log";
pub const PENDING: &str = "wal-pending.log";
pub const RESTORE_TRIGGER: &str = "_restore";
pub const CHECKPOINT_META: &str = "_checkpoint_meta";

/// An SQL-level error: QuestDB answers 400 with the message and the byte position in the
/// query; `internal` errors (I/O) answer 500.
#[derive(Debug)]
pub struct SqlErr {
    pub msg: String,
    pub pos: usize,
    pub internal: bool,
}

impl SqlErr {
    pub fn at(pos: usize, msg: impl Into<String>) -> Self {
        SqlErr {
            msg: msg.into(),
            pos,
            internal: false,
        }
    }
    pub fn io(msg: impl Into<String>) -> Self {
        SqlErr {
            msg: msg.into(),
            pos: 0,
            internal: true,
        }
    }
}

pub struct Db {
    pub root: PathBuf,
    /// QuestDB keeps the checkpoint in memory (startedAt); a restart forgets it.
    pub checkpoint: Option<i64>,
    /// Rows written while the current checkpoint is held (logged at RELEASE, for drills).
    pub written_in_checkpoint: usize,
}

fn checkpoint_db(root: &Path) -> PathBuf {
    root.join(".checkpoint").join("db")
}

pub fn append_line(path: &Path, line: &str) -> std::io::Result<()> {
    let mut f = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?;
    f.write_all(line.as_bytes())?;
    f.write_all(b"\n")?;
    f.sync_all()
}

pub fn log_event(root: &Path, event: &str) {
    let line = format!("{} {event}", fmt_ts(now_micros()));
    println!("questdb-standin: {event}");
    if let Err(e) = append_line(&root.join(CHECKPOINT_LOG), &line) {
        eprintln!(
            "questdb-standin: cannot append to {}: {e}",
            root.join(CHECKPOINT_LOG).display()
        );
    }
}

fn part_error(kind: &str, table: &str, status: &str, day: i64) -> String {
    // QuestDB's text: could not detach partition [table=t, detachStatus=DETACH_ERR_ACTIVE,
    // partitionTimestamp=2026-04-15T00:00:00.000000Z, partitionBy=DAY]
    format!(
        "could not {kind} partition [table={table}, detachStatus={status}, partitionTimestamp={}, partitionBy=DAY]",
        fmt_ts(day * MICROS_PER_DAY)
    )
}

impl Db {
    pub fn table(&self, name: &str, pos: usize) -> Result<(PathBuf, Meta, Txn), SqlErr> {
        let tdir = table_dir(&self.root, name);
        if !valid_table_name(name) || !tdir.join(META).is_file() {
            return Err(SqlErr::at(
                pos,
                format!("table does not exist [table={name}]"),
            ));
        }
        let meta = read_meta(&tdir).map_err(SqlErr::io)?;
        let txn = read_txn(&tdir).map_err(SqlErr::io)?;
        Ok((tdir, meta, txn))
    }

    pub fn checkpoint_create(&mut self) -> Result<(), SqlErr> {
        if self.checkpoint.is_some() {
            return Err(SqlErr::at(0, "Waiting for CHECKPOINT RELEASE to be called"));
        }
        let started = now_micros();
        let cdb = checkpoint_db(&self.root);
        let make = || -> Result<(), String> {
            if cdb.exists() {
                fs::remove_dir_all(&cdb).map_err(|e| {
                    format!(
                        "Could not remove checkpoint dir [dir={}]: {e}",
                        cdb.display()
                    )
                })?;
            }
            fs::create_dir_all(&cdb)
                .map_err(|e| format!("Could not create [dir={}]: {e}", cdb.display()))?;
            // Like QuestDB, the checkpoint holds each table's metadata and committed state
            // (not the data): restore rolls the copied tables back to exactly this state.
            for t in list_tables(&self.root)? {
                let src = table_dir(&self.root, &t);
                let dst = cdb.join(&t);
                fs::create_dir_all(&dst)
                    .map_err(|e| format!("could not create [dir={}]: {e}", dst.display()))?;
                for f in [META, TXN] {
                    fs::copy(src.join(f), dst.join(f)).map_err(|e| {
                        format!("error creating checkpoint [table={t}, error=cannot copy {f}: {e}]")
                    })?;
                }
            }
            write_atomic(
                &cdb.join(CHECKPOINT_META),
                &format!("started_at={}\n", fmt_ts(started)),
            )
            .map_err(|e| format!("cannot write checkpoint metadata: {e}"))
        };
        make().map_err(SqlErr::io)?;
        self.checkpoint = Some(started);
        self.written_in_checkpoint = 0;
        // The committed rows per table at the checkpoint: what a restore of a copy taken
        // under this checkpoint must give back (the drills' oracle).
        let mut committed = Vec::new();
        for t in list_tables(&self.root).map_err(SqlErr::io)? {
            let txn = read_txn(&table_dir(&self.root, &t)).map_err(SqlErr::io)?;
            let rows: u64 = txn.parts.iter().map(|p| p.rows).sum();
            committed.push(format!("{t}:{rows}"));
        }
        log_event(
            &self.root,
            &format!(
                "CHECKPOINT CREATE started_at={} committed={}",
                fmt_ts(started),
                committed.join(",")
            ),
        );
        Ok(())
    }

    pub fn checkpoint_release(&mut self) -> Result<(), SqlErr> {
        let cdb = checkpoint_db(&self.root);
        if cdb.exists() {
            // QuestDB ignores errors here too.
            let _ = fs::remove_dir_all(&cdb);
        }
        match self.checkpoint.take() {
            Some(started) => {
                // Housekeeping resumes: partition versions superseded by copy-on-write while
                // the checkpoint was held are purged now.
                let purged = purge_stale_versions(&self.root).map_err(SqlErr::io)?;
                log_event(
                    &self.root,
                    &format!(
                        "CHECKPOINT RELEASE started_at={} rows_written_during_checkpoint={} stale_versions_purged={purged}",
                        fmt_ts(started),
                        self.written_in_checkpoint
                    ),
                );
            }
            None => log_event(&self.root, "CHECKPOINT RELEASE (no checkpoint in progress)"),
        }
        Ok(())
    }

    /// INSERT, as QuestDB takes writes during a checkpoint too: rows go into db/ at once.
    /// While a checkpoint is held, files are changed in place (rows appended to the active
    /// partition, `_txn` rewritten, new partition folders created, an older partition
    /// copied-on-write into a new version folder) and superseded versions are kept until
    /// RELEASE, so a copy made meanwhile sees files grow and folders appear but none vanish.
    pub fn insert(&mut self, table: &str, rows: Vec<String>) -> Result<(), SqlErr> {
        let held = self.checkpoint.is_some();
        apply_rows_mode(&self.root, table, &rows, held).map_err(SqlErr::io)?;
        if held {
            self.written_in_checkpoint += rows.len();
        }
        Ok(())
    }

    pub fn detach(&mut self, table: &str, days: &[(i64, usize)], pos: usize) -> Result<(), SqlErr> {
        self.no_checkpoint("DETACH PARTITION", pos)?;
        let (tdir, _meta, mut txn) = self.table(table, pos)?;
        let active = txn.parts.last().map(|p| p.day);
        for (day, dpos) in days {
            let st = if txn.find(*day).is_none() {
                if tdir.join(format!("{}.detached", fmt_day(*day))).exists() {
                    "DETACH_ERR_ALREADY_DETACHED"
                } else {
                    "DETACH_ERR_MISSING_PARTITION"
                }
            } else if Some(*day) == active {
                "DETACH_ERR_ACTIVE"
            } else if tdir.join(format!("{}.detached", fmt_day(*day))).exists() {
                "DETACH_ERR_ALREADY_DETACHED"
            } else {
                ""
            };
            if !st.is_empty() {
                return Err(SqlErr::at(*dpos, part_error("detach", table, st, *day)));
            }
        }
        for (day, _) in days {
            let Some(i) = txn.find(*day) else { continue };
            let p = txn.parts.remove(i);
            let to = tdir.join(format!("{}.detached", fmt_day(p.day)));
            fs::rename(part_dir(&tdir, &p), &to).map_err(|e| {
                SqlErr::io(format!(
                    "cannot rename {} to {}: {e}",
                    part_dir(&tdir, &p).display(),
                    to.display()
                ))
            })?;
            // QuestDB copies the table metadata into the detached folder for ATTACH's checks.
            fs::copy(tdir.join(META), to.join(META))
                .map_err(|e| SqlErr::io(format!("cannot copy _meta into {}: {e}", to.display())))?;
            // The archived partition holds exactly its committed rows.
            let rows = read_rows(&to, Some(p.rows)).map_err(SqlErr::io)?;
            write_atomic(&to.join(ROWS), &join_rows(&rows))
                .map_err(|e| SqlErr::io(e.to_string()))?;
        }
        txn.txn += 1;
        write_atomic(&tdir.join(TXN), &render_txn(&txn)).map_err(|e| SqlErr::io(e.to_string()))?;
        let names: Vec<String> = days.iter().map(|(d, _)| fmt_day(*d)).collect();
        println!(
            "questdb-standin: detached {table} partitions {}",
            names.join(", ")
        );
        Ok(())
    }

    /// The partitions the WHERE form selects: partition timestamp (start of the day) below
    /// the cut-off, as QuestDB evaluates the predicate on partition timestamps.
    pub fn days_before(&self, table: &str, cutoff: i64, pos: usize) -> Result<Vec<i64>, SqlErr> {
        let (_, _, txn) = self.table(table, pos)?;
        Ok(txn
            .parts
            .iter()
            .filter(|p| p.day * MICROS_PER_DAY < cutoff)
            .map(|p| p.day)
            .collect())
    }

    pub fn attach(&mut self, table: &str, days: &[(i64, usize)], pos: usize) -> Result<(), SqlErr> {
        self.no_checkpoint("ATTACH PARTITION", pos)?;
        let (tdir, meta, mut txn) = self.table(table, pos)?;
        let mut staged = Vec::new();
        for (day, dpos) in days {
            let dir = tdir.join(format!("{}.attachable", fmt_day(*day)));
            if txn.find(*day).is_some() {
                return Err(SqlErr::at(
                    *dpos,
                    part_error("attach", table, "ATTACH_ERR_PARTITION_EXISTS", *day),
                ));
            }
            if !dir.is_dir() {
                return Err(SqlErr::at(
                    *dpos,
                    part_error("attach", table, "ATTACH_ERR_MISSING_PARTITION", *day),
                ));
            }
            let rows = read_rows(&dir, None).unwrap_or_default();
            if rows.is_empty() {
                return Err(SqlErr::at(
                    *dpos,
                    part_error("attach", table, "ATTACH_ERR_EMPTY_PARTITION", *day),
                ));
            }
            if let Ok(text) = fs::read_to_string(dir.join(META)) {
                let theirs = parse_meta(&text)
                    .map_err(|e| SqlErr::at(*dpos, format!("{}: {e}", dir.display())))?;
                if theirs != meta {
                    return Err(SqlErr::at(
                        *dpos,
                        format!(
                            "Detached partition metadata is not compatible with current table metadata [table={table}, partition={}] (stand-in wording)",
                            fmt_day(*day)
                        ),
                    ));
                }
            }
            check_rows(&meta, *day, &rows, &dir.display().to_string())
                .map_err(|e| SqlErr::at(*dpos, e))?;
            // QuestDB must be able to write the partition it adopts: a folder still owned by
            // root (no chown to the QuestDB user) fails here, as it does in QuestDB.
            for f in [dir.join(ROWS), dir.join(".standin-write-probe")] {
                let r = fs::OpenOptions::new().create(true).append(true).open(&f);
                if let Err(e) = r {
                    return Err(SqlErr::io(format!(
                        "could not open read-write [file={}, errno={}]",
                        f.display(),
                        e.raw_os_error().unwrap_or(0)
                    )));
                }
            }
            let _ = fs::remove_file(dir.join(".standin-write-probe"));
            staged.push((*day, dir, rows.len() as u64));
        }
        txn.txn += 1;
        for (day, dir, rows) in staged {
            let p = Part {
                day,
                n: txn.txn,
                rows,
            };
            fs::rename(&dir, part_dir(&tdir, &p))
                .map_err(|e| SqlErr::io(format!("cannot rename {}: {e}", dir.display())))?;
            let _ = fs::remove_file(part_dir(&tdir, &p).join(META));
            txn.parts.push(p);
        }
        txn.parts.sort_by_key(|p| p.day);
        write_atomic(&tdir.join(TXN), &render_txn(&txn)).map_err(|e| SqlErr::io(e.to_string()))?;
        let names: Vec<String> = days.iter().map(|(d, _)| fmt_day(*d)).collect();
        println!(
            "questdb-standin: attached {table} partitions {}",
            names.join(", ")
        );
        Ok(())
    }

    pub fn create_table(&mut self, table: &str, meta: &Meta, pos: usize) -> Result<(), SqlErr> {
        if !valid_table_name(table) {
            return Err(SqlErr::at(
                pos,
                format!("invalid table name [table={table}]"),
            ));
        }
        let tdir = table_dir(&self.root, table);
        if tdir.exists() {
            return Err(SqlErr::at(
                pos,
                format!("table already exists [table={table}]"),
            ));
        }
        create_table(&self.root, table, meta).map_err(SqlErr::io)
    }

    pub fn add_column(&mut self, table: &str, col: Column, pos: usize) -> Result<(), SqlErr> {
        let (tdir, mut meta, _) = self.table(table, pos)?;
        if meta.column(&col.name).is_some() {
            return Err(SqlErr::at(
                pos,
                format!("Duplicate column [name={}]", col.name),
            ));
        }
        meta.columns.push(col);
        write_atomic(&tdir.join(META), &render_meta(&meta)).map_err(|e| SqlErr::io(e.to_string()))
    }

    /// QuestDB's docs do not say what DETACH / ATTACH PARTITION do while a checkpoint is
    /// held; the stand-in refuses them, so a plan that detaches under someone's checkpoint is
    /// caught in the lab instead of relying on unspecified behaviour.
    fn no_checkpoint(&self, what: &str, pos: usize) -> Result<(), SqlErr> {
        if self.checkpoint.is_some() {
            return Err(SqlErr::at(
                pos,
                format!("{what} is refused while a checkpoint is in progress (stand-in: QuestDB's behaviour is not documented)"),
            ));
        }
        Ok(())
    }
}

pub fn join_rows(rows: &[String]) -> String {
    let mut s = rows.join("\n");
    if !s.is_empty() {
        s.push('\n');
    }
    s
}

pub fn create_table(root: &Path, table: &str, meta: &Meta) -> Result<(), String> {
    let tdir = table_dir(root, table);
    fs::create_dir_all(&tdir).map_err(|e| format!("cannot create {}: {e}", tdir.display()))?;
    write_atomic(&tdir.join(META), &render_meta(meta)).map_err(|e| e.to_string())?;
    write_atomic(&tdir.join(TXN), &render_txn(&Txn::default())).map_err(|e| e.to_string())
}

/// Append rows to their day partitions and commit them in _txn (written last), outside a
/// checkpoint (seed, tests).
pub fn apply_rows(root: &Path, table: &str, rows: &[String]) -> Result<(), String> {
    apply_rows_mode(root, table, rows, false)
}

/// Write a file in place (truncate, write): what a concurrent copy sees may be torn. Used
/// while a checkpoint is held, where the stand-in must not make files vanish (no temp file).
fn write_in_place(path: &Path, text: &str) -> std::io::Result<()> {
    let mut f = fs::File::create(path)?;
    f.write_all(text.as_bytes())?;
    f.sync_all()
}

/// Append rows to their day partitions and commit them in `_txn` (written last). The active
/// (last) partition and new partitions grow by appending; a write into an older partition is
/// copy-on-write into a new version folder `<day>.<txn>` (as QuestDB does for out-of-order
/// data). With `held` (a checkpoint in progress) the superseded version stays on disk for the
/// checkpoint and nothing is replaced by rename; otherwise it is removed at once.
pub fn apply_rows_mode(
    root: &Path,
    table: &str,
    rows: &[String],
    held: bool,
) -> Result<(), String> {
    let tdir = table_dir(root, table);
    let meta = read_meta(&tdir)?;
    let mut txn = read_txn(&tdir)?;
    let mut by_day: BTreeMap<i64, Vec<String>> = BTreeMap::new();
    for r in rows {
        by_day
            .entry(day_of(row_ts(&meta, r)?))
            .or_default()
            .push(r.clone());
    }
    txn.txn += 1;
    let last_day = txn.parts.last().map(|p| p.day);
    let mut superseded = Vec::new();
    for (day, new) in by_day {
        let i = match txn.find(day) {
            Some(i) => i,
            None => {
                let p = Part {
                    day,
                    n: txn.txn,
                    rows: 0,
                };
                fs::create_dir_all(part_dir(&tdir, &p)).map_err(|e| e.to_string())?;
                txn.parts.push(p);
                txn.parts.sort_by_key(|p| p.day);
                txn.find(day).ok_or("partition vanished")?
            }
        };
        let older = last_day.is_some_and(|l| day < l) && txn.parts[i].rows > 0;
        let p = &mut txn.parts[i];
        let old_dir = part_dir(&tdir, p);
        let committed = if p.rows == 0 {
            Vec::new()
        } else {
            read_rows(&old_dir, Some(p.rows))?
        };
        if older {
            // Copy-on-write: a new version folder with the committed rows plus the new ones.
            p.n = txn.txn;
            let new_dir = part_dir(&tdir, p);
            fs::create_dir_all(&new_dir)
                .map_err(|e| format!("cannot create {}: {e}", new_dir.display()))?;
            let mut all = committed;
            all.extend(new);
            write_in_place(&new_dir.join(ROWS), &join_rows(&all))
                .map_err(|e| format!("cannot write {}: {e}", new_dir.display()))?;
            p.rows = all.len() as u64;
            superseded.push(old_dir);
        } else {
            let path = old_dir.join(ROWS);
            let on_disk = fs::read_to_string(&path).unwrap_or_default();
            let clean = on_disk == join_rows(&committed);
            if clean {
                // Append in place: the committed prefix never changes.
                let mut f = fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&path)
                    .map_err(|e| format!("cannot open {}: {e}", path.display()))?;
                f.write_all(join_rows(&new).as_bytes())
                    .map_err(|e| format!("cannot append to {}: {e}", path.display()))?;
            } else {
                // Uncommitted lines beyond the committed rows (a torn write): rewrite.
                let mut all = committed.clone();
                all.extend(new.iter().cloned());
                let text = join_rows(&all);
                let r = if held {
                    write_in_place(&path, &text)
                } else {
                    write_atomic(&path, &text)
                };
                r.map_err(|e| format!("cannot write {}: {e}", path.display()))?;
            }
            p.rows = committed.len() as u64 + new.len() as u64;
        }
    }
    let r = if held {
        write_in_place(&tdir.join(TXN), &render_txn(&txn))
    } else {
        write_atomic(&tdir.join(TXN), &render_txn(&txn))
    };
    r.map_err(|e| e.to_string())?;
    if !held {
        for d in superseded {
            fs::remove_dir_all(&d).map_err(|e| format!("cannot remove {}: {e}", d.display()))?;
        }
    }
    Ok(())
}

/// Partition version folders (`<day>.<n>`) of a table that its `_txn` does not reference.
fn unreferenced_versions(tdir: &Path, txn: &Txn) -> Result<Vec<PathBuf>, String> {
    let keep: Vec<PathBuf> = txn.parts.iter().map(|p| part_dir(tdir, p)).collect();
    let mut out = Vec::new();
    let rd = fs::read_dir(tdir).map_err(|e| format!("cannot list {}: {e}", tdir.display()))?;
    for e in rd.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some((day, n)) = name.split_once('.') else {
            continue;
        };
        let is_version = crate::time::parse_day(day).is_some()
            && !n.is_empty()
            && n.bytes().all(|b| b.is_ascii_digit());
        if is_version && e.path().is_dir() && !keep.contains(&e.path()) {
            out.push(e.path());
        }
    }
    Ok(out)
}

/// Housekeeping after RELEASE: remove superseded partition versions of every table.
pub fn purge_stale_versions(root: &Path) -> Result<usize, String> {
    let mut n = 0;
    for t in list_tables(root)? {
        let tdir = table_dir(root, &t);
        let txn = read_txn(&tdir)?;
        for d in unreferenced_versions(&tdir, &txn)? {
            fs::remove_dir_all(&d).map_err(|e| format!("cannot remove {}: {e}", d.display()))?;
            n += 1;
        }
    }
    Ok(n)
}

/// Before this version, writes made during a checkpoint were queued in `wal-pending.log`;
/// a volume from an older lab run may still hold one. Apply it and remove it.
pub fn apply_pending(root: &Path) -> Result<usize, String> {
    let path = root.join(PENDING);
    let Ok(text) = fs::read_to_string(&path) else {
        return Ok(0);
    };
    let mut by_table: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for l in text.lines() {
        if let Some((t, r)) = l.split_once('\t') {
            by_table
                .entry(t.to_string())
                .or_default()
                .push(r.to_string());
        }
    }
    let mut n = 0;
    for (t, rows) in by_table {
        if !table_dir(root, &t).join(META).is_file() {
            eprintln!(
                "questdb-standin: dropping {} pending rows of missing table {t}",
                rows.len()
            );
            continue;
        }
        apply_rows(root, &t, &rows)?;
        n += rows.len();
    }
    fs::remove_file(&path).map_err(|e| format!("cannot remove {}: {e}", path.display()))?;
    Ok(n)
}

/// QuestDB's start-up restore (`_restore` trigger in the root): roll every table back to the
/// checkpoint's committed state, drop tables the checkpoint does not know, forget writes made
/// after it, remove the checkpoint and the trigger. Without checkpoint data the copy was not
/// made inside CHECKPOINT CREATE/RELEASE, and QuestDB refuses to start.
pub fn restore(root: &Path) -> Result<String, String> {
    let trigger = root.join(RESTORE_TRIGGER);
    let cdb = checkpoint_db(root);
    if !cdb.is_dir() {
        return Err(format!(
            "checkpoint trigger file found, but the checkpoint directory does not exist [dir={}, trigger={}]",
            cdb.display(),
            trigger.display()
        ));
    }
    let cmeta = cdb.join(CHECKPOINT_META);
    let started = fs::read_to_string(&cmeta).map_err(|_| {
        format!(
            "checkpoint trigger file found, but the checkpoint metadata file does not exist [file={}, trigger={}]",
            cmeta.display(),
            trigger.display()
        )
    })?;
    let started = started.trim().to_string();
    let in_checkpoint: Vec<String> = fs::read_dir(&cdb)
        .map_err(|e| format!("cannot list {}: {e}", cdb.display()))?
        .flatten()
        .filter(|e| e.path().is_dir())
        .filter_map(|e| e.file_name().to_str().map(str::to_string))
        .collect();
    let db = db_dir(root);
    fs::create_dir_all(&db).map_err(|e| format!("cannot create {}: {e}", db.display()))?;
    for t in list_tables(root)? {
        if !in_checkpoint.contains(&t) {
            println!("questdb-standin: restore: removing table {t}, created after the checkpoint");
            fs::remove_dir_all(table_dir(root, &t)).map_err(|e| {
                format!("Checkpoint recovery failed. Aborting QuestDB startup; could not remove orphan table directory, remove it manually to continue [dir={}]: {e}", table_dir(root, &t).display())
            })?;
        }
    }
    let mut tables = 0;
    for t in &in_checkpoint {
        let tdir = table_dir(root, t);
        if !tdir.is_dir() {
            return Err(format!("Checkpoint recovery failed: table {t} is in the checkpoint but its folder {} is missing", tdir.display()));
        }
        for f in [META, TXN] {
            fs::copy(cdb.join(t).join(f), tdir.join(f))
                .map_err(|e| format!("Checkpoint recovery failed: cannot restore {t}/{f}: {e}"))?;
        }
        // Drop rows written after the checkpoint (beyond the committed count), and partition
        // folders created after it (new partitions, copy-on-write versions): "use
        // .checkpoint to adjust the database files and remove extra data copies".
        let (_, txn) =
            check_table(root, t).map_err(|e| format!("Checkpoint recovery failed: {e}"))?;
        for d in unreferenced_versions(&tdir, &txn)
            .map_err(|e| format!("Checkpoint recovery failed: {e}"))?
        {
            println!(
                "questdb-standin: restore: removing {}, written after the checkpoint",
                d.display()
            );
            fs::remove_dir_all(&d).map_err(|e| {
                format!(
                    "Checkpoint recovery failed: cannot remove {}: {e}",
                    d.display()
                )
            })?;
        }
        for p in &txn.parts {
            let pdir = part_dir(&tdir, p);
            let rows = read_rows(&pdir, Some(p.rows))?;
            let text = join_rows(&rows);
            if fs::read_to_string(pdir.join(ROWS)).ok().as_deref() != Some(text.as_str()) {
                write_atomic(&pdir.join(ROWS), &text).map_err(|e| e.to_string())?;
            }
        }
        tables += 1;
    }
    let _ = fs::remove_file(root.join(PENDING));
    fs::remove_dir_all(&cdb).map_err(|e| format!("cannot remove {}: {e}", cdb.display()))?;
    fs::remove_file(&trigger).map_err(|e| format!("cannot remove {}: {e}", trigger.display()))?;
    Ok(format!(
        "restored {tables} tables from checkpoint {started}"
    ))
}

/// Generate a COSMOS-like table with `days` daily partitions ending on `end_day`, each with
/// `rows` rows, deterministic so a drill can recompute what it expects.
pub fn seed(root: &Path, table: &str, days: i64, rows: u64, end_day: i64) -> Result<(), String> {
    if checkpoint_db(root).exists() {
        return Err(format!(
            "{} exists: a checkpoint is in progress; seed refuses to write under it",
            checkpoint_db(root).display()
        ));
    }
    if !valid_table_name(table) {
        return Err(format!("invalid table name {table:?}"));
    }
    if table_dir(root, table).exists() {
        return Err(format!(
            "table {table} already exists in {}",
            db_dir(root).display()
        ));
    }
    let meta = Meta {
        columns: vec![
            Column {
                name: "PACKET_TIMESECONDS".into(),
                ty: "TIMESTAMP".into(),
            },
            Column {
                name: "RECEIVED_TIMESECONDS".into(),
                ty: "TIMESTAMP".into(),
            },
            Column {
                name: "TEMP1".into(),
                ty: "DOUBLE".into(),
            },
            Column {
                name: "COLLECTS".into(),
                ty: "LONG".into(),
            },
        ],
        ts: 0,
    };
    create_table(root, table, &meta)?;
    let step = MICROS_PER_DAY / rows.max(1) as i64;
    let mut all = Vec::new();
    for d in (end_day - days + 1)..=end_day {
        for i in 0..rows {
            let ts = d * MICROS_PER_DAY + i as i64 * step;
            let temp = ((d * 7 + i as i64 * 13) % 2000) as f64 / 10.0 - 50.0;
            all.push(format!("{ts},{},{temp:.1},{i}", ts + 1000));
        }
    }
    apply_rows(root, table, &all)?;
    println!(
        "questdb-standin: seeded {table}: {days} partitions {}..{} of {rows} rows",
        fmt_day(end_day - days + 1),
        fmt_day(end_day)
    );
    Ok(())
}
