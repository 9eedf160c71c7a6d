//! The stand-in's on-disk format. Everything is a plain text file so a test can read,
//! checksum and damage it with shell tools:
//!
//! ```text
//! <root>/db/<table>/_meta              one column per line: "<name> <TYPE>[ designated]"
//! <root>/db/<table>/_txn               "txn <n>" then "partition <YYYY-MM-DD> <n> <rows>" lines:
//!                                      the committed state (partition folder suffix, row count)
//! <root>/db/<table>/<day>.<n>/rows     one row per line, comma-separated in column order,
//!                                      timestamps as integer microseconds, empty = NULL
//! <root>/db/<table>/<day>.detached/    a detached partition (rows + a copy of _meta)
//! <root>/db/<table>/<day>.attachable/  staged by an operator for ATTACH PARTITION
//! ```
//!
//! Only the first `<rows>` lines of a partition's rows file are committed: a longer file (a
//! torn write) is truncated on restore, a shorter one is corruption.

use crate::time::{day_of, fmt_day, parse_day};
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

pub const META: &str = "_meta";
pub const TXN: &str = "_txn";
pub const ROWS: &str = "rows";

#[derive(Clone, Debug, PartialEq)]
pub struct Column {
    pub name: String,
    pub ty: String,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Meta {
    pub columns: Vec<Column>,
    /// Index of the designated timestamp column (partitioning is by its UTC day).
    pub ts: usize,
}

impl Meta {
    pub fn column(&self, name: &str) -> Option<usize> {
        self.columns
            .iter()
            .position(|c| c.name.eq_ignore_ascii_case(name))
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Part {
    pub day: i64,
    pub n: u64,
    pub rows: u64,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Txn {
    pub txn: u64,
    /// Sorted by day; the last one is the active partition.
    pub parts: Vec<Part>,
}

impl Txn {
    pub fn find(&self, day: i64) -> Option<usize> {
        self.parts.iter().position(|p| p.day == day)
    }
}

pub const TYPES: &[&str] = &[
    "TIMESTAMP",
    "DOUBLE",
    "FLOAT",
    "LONG",
    "INT",
    "SHORT",
    "BYTE",
    "BOOLEAN",
    "STRING",
    "VARCHAR",
    "SYMBOL",
    "CHAR",
    "DATE",
];

pub fn db_dir(root: &Path) -> PathBuf {
    root.join("db")
}

pub fn table_dir(root: &Path, table: &str) -> PathBuf {
    db_dir(root).join(table)
}

pub fn part_dir(tdir: &Path, p: &Part) -> PathBuf {
    tdir.join(format!("{}.{}", fmt_day(p.day), p.n))
}

/// A table name is a single path component: no separators, no dot-names.
pub fn valid_table_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 127
        && !name.starts_with('.')
        && !name.contains(['/', '\\', '\0', '\n', '\''])
}

/// Write to a temporary name in the same folder and rename, so a reader (or a copy) never
/// sees half a file.
pub fn write_atomic(path: &Path, text: &str) -> io::Result<()> {
    let tmp = path.with_extension("standin-tmp");
    {
        let mut f = fs::File::create(&tmp)?;
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
    }
    fs::rename(&tmp, path)
}

pub fn parse_meta(text: &str) -> Result<Meta, String> {
    let mut columns = Vec::new();
    let mut ts = None;
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let f: Vec<&str> = line.split_whitespace().collect();
        let ok_type = f.len() >= 2 && TYPES.contains(&f[1]);
        if !ok_type || f.len() > 3 || (f.len() == 3 && f[2] != "designated") {
            return Err(format!(
                "_meta line {}: expected \"<name> <TYPE>[ designated]\", got {line:?}",
                i + 1
            ));
        }
        if f.len() == 3 {
            if f[1] != "TIMESTAMP" || ts.is_some() {
                return Err(format!(
                    "_meta line {}: only one TIMESTAMP column can be designated",
                    i + 1
                ));
            }
            ts = Some(columns.len());
        }
        columns.push(Column {
            name: f[0].to_string(),
            ty: f[1].to_string(),
        });
    }
    let ts = ts.ok_or("_meta names no designated timestamp column")?;
    Ok(Meta { columns, ts })
}

pub fn render_meta(m: &Meta) -> String {
    let mut s = String::from("# questdb-standin table metadata: <name> <TYPE>[ designated]\n");
    for (i, c) in m.columns.iter().enumerate() {
        s.push_str(&c.name);
        s.push(' ');
        s.push_str(&c.ty);
        if i == m.ts {
            s.push_str(" designated");
        }
        s.push('\n');
    }
    s
}

pub fn parse_txn(text: &str) -> Result<Txn, String> {
    let mut t = Txn::default();
    let mut seen_txn = false;
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let f: Vec<&str> = line.split_whitespace().collect();
        let bad = || format!("_txn line {}: cannot parse {line:?}", i + 1);
        match f.as_slice() {
            ["txn", n] => {
                t.txn = n.parse().map_err(|_| bad())?;
                seen_txn = true;
            }
            ["partition", day, n, rows] => t.parts.push(Part {
                day: parse_day(day).ok_or_else(bad)?,
                n: n.parse().map_err(|_| bad())?,
                rows: rows.parse().map_err(|_| bad())?,
            }),
            _ => return Err(bad()),
        }
    }
    if !seen_txn {
        return Err("_txn has no \"txn <n>\" line".into());
    }
    t.parts.sort_by_key(|p| p.day);
    if t.parts.windows(2).any(|w| w[0].day == w[1].day) {
        return Err("_txn lists a partition twice".into());
    }
    Ok(t)
}

pub fn render_txn(t: &Txn) -> String {
    let mut s = format!("# questdb-standin committed state\ntxn {}\n", t.txn);
    for p in &t.parts {
        s.push_str(&format!(
            "partition {} {} {}\n",
            fmt_day(p.day),
            p.n,
            p.rows
        ));
    }
    s
}

fn read(path: &Path) -> Result<String, String> {
    fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))
}

pub fn read_meta(tdir: &Path) -> Result<Meta, String> {
    parse_meta(&read(&tdir.join(META))?)
}

pub fn read_txn(tdir: &Path) -> Result<Txn, String> {
    parse_txn(&read(&tdir.join(TXN))?)
}

/// The committed rows of a partition folder: the first `rows` lines (all lines if None).
pub fn read_rows(pdir: &Path, rows: Option<u64>) -> Result<Vec<String>, String> {
    let text = read(&pdir.join(ROWS))?;
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    if let Some(n) = rows {
        if (lines.len() as u64) < n {
            return Err(format!(
                "{} holds {} rows but {} are committed",
                pdir.join(ROWS).display(),
                lines.len(),
                n
            ));
        }
        lines.truncate(n as usize);
    }
    Ok(lines)
}

/// The designated timestamp of a row line.
pub fn row_ts(meta: &Meta, line: &str) -> Result<i64, String> {
    let field = line.split(',').nth(meta.ts).unwrap_or("");
    field
        .parse::<i64>()
        .map_err(|_| format!("row {line:?}: designated timestamp {field:?} is not an integer"))
}

/// Every committed row parses and lies inside its partition's day.
pub fn check_rows(meta: &Meta, day: i64, rows: &[String], what: &str) -> Result<(), String> {
    for line in rows {
        if line.split(',').count() > meta.columns.len() {
            return Err(format!(
                "{what}: row {line:?} has more fields than the table has columns"
            ));
        }
        let ts = row_ts(meta, line).map_err(|e| format!("{what}: {e}"))?;
        if day_of(ts) != day {
            return Err(format!(
                "{what}: row {line:?} is outside day {}",
                fmt_day(day)
            ));
        }
    }
    Ok(())
}

/// Table names under db/, sorted.
pub fn list_tables(root: &Path) -> Result<Vec<String>, String> {
    let dir = db_dir(root);
    let mut names = Vec::new();
    let entries = fs::read_dir(&dir).map_err(|e| format!("cannot list {}: {e}", dir.display()))?;
    for e in entries {
        let e = e.map_err(|e| format!("cannot list {}: {e}", dir.display()))?;
        if e.path().is_dir() {
            if let Some(n) = e.file_name().to_str() {
                if !n.starts_with('.') {
                    names.push(n.to_string());
                }
            }
        }
    }
    names.sort();
    Ok(names)
}

/// Validate one table: metadata, committed state, every committed row.
pub fn check_table(root: &Path, table: &str) -> Result<(Meta, Txn), String> {
    let tdir = table_dir(root, table);
    let meta = read_meta(&tdir).map_err(|e| format!("table {table}: {e}"))?;
    let txn = read_txn(&tdir).map_err(|e| format!("table {table}: {e}"))?;
    for p in &txn.parts {
        let pdir = part_dir(&tdir, p);
        let what = format!("table {table}, partition {}", fmt_day(p.day));
        if !pdir.is_dir() {
            return Err(format!("{what}: folder {} is missing", pdir.display()));
        }
        let rows = read_rows(&pdir, Some(p.rows)).map_err(|e| format!("{what}: {e}"))?;
        check_rows(&meta, p.day, &rows, &what)?;
    }
    Ok((meta, txn))
}

/// Validate the whole db/ folder; Err names the first corruption found.
pub fn check_db(root: &Path) -> Result<Vec<(String, Txn)>, String> {
    let mut out = Vec::new();
    for t in list_tables(root)? {
        let (_, txn) = check_table(root, &t)?;
        out.push((t, txn));
    }
    Ok(out)
}

/// Recursive size in bytes of a folder (diskSize).
pub fn dir_size(path: &Path) -> u64 {
    let mut total = 0;
    if let Ok(rd) = fs::read_dir(path) {
        for e in rd.flatten() {
            match e.metadata() {
                Ok(m) if m.is_dir() => total += dir_size(&e.path()),
                Ok(m) => total += m.len(),
                Err(_) => {}
            }
        }
    }
    total
}

/// FNV-1a 64: a dependency-free digest for comparing row contents across a backup and a
/// restore (not a security checksum).
pub fn fnv1a(hash: u64, bytes: &[u8]) -> u64 {
    let mut h = hash;
    for b in bytes {
        h ^= *b as u64;
        h = h.wrapping_mul(0x100_0000_01b3);
    }
    h
}

pub const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
