//! The SQL subset: a small lexer and one hand-written matcher per supported statement.
//! Anything else is answered with an error that says the stand-in does not support it, so a
//! plan that starts using a new statement fails loudly in the lab instead of passing.

use crate::db::{Db, SqlErr};
use crate::store::*;
use crate::time::{fmt_day, fmt_ts, now_micros, parse_day, parse_ts, MICROS_PER_DAY};

#[derive(Clone, Debug, PartialEq)]
enum Tok {
    Word(String),
    /// A double-quoted identifier.
    QWord(String),
    Str(String),
    Num(String),
    P(char),
}

#[derive(Clone, Debug)]
struct T {
    tok: Tok,
    pos: usize,
}

fn lex(sql: &str) -> Result<Vec<T>, SqlErr> {
    let b = sql.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c.is_ascii_whitespace() {
            i += 1;
        } else if c == b'\'' || c == b'"' {
            let start = i;
            let mut s = Vec::new();
            i += 1;
            loop {
                if i >= b.len() {
                    return Err(SqlErr::at(start, "unclosed quoted string"));
                }
                if b[i] == c {
                    if i + 1 < b.len() && b[i + 1] == c {
                        s.push(c);
                        i += 2;
                        continue;
                    }
                    i += 1;
                    break;
                }
                s.push(b[i]);
                i += 1;
            }
            let s = String::from_utf8_lossy(&s).into_owned();
            out.push(T {
                tok: if c == b'\'' {
                    Tok::Str(s)
                } else {
                    Tok::QWord(s)
                },
                pos: start,
            });
        } else if c.is_ascii_digit() || (c == b'.' && i + 1 < b.len() && b[i + 1].is_ascii_digit())
        {
            let start = i;
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'.') {
                i += 1;
            }
            out.push(T {
                tok: Tok::Num(sql[start..i].to_string()),
                pos: start,
            });
        } else if c.is_ascii_alphabetic() || c == b'_' {
            let start = i;
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_' || b[i] == b'$') {
                i += 1;
            }
            out.push(T {
                tok: Tok::Word(sql[start..i].to_string()),
                pos: start,
            });
        } else if b"(),*;<-=".contains(&c) {
            out.push(T {
                tok: Tok::P(c as char),
                pos: i,
            });
            i += 1;
        } else {
            return Err(SqlErr::at(
                i,
                format!(
                    "unexpected character '{}'",
                    sql[i..].chars().next().unwrap_or('?')
                ),
            ));
        }
    }
    Ok(out)
}

struct P {
    t: Vec<T>,
    i: usize,
    len: usize,
}

impl P {
    fn pos(&self) -> usize {
        self.t.get(self.i).map(|t| t.pos).unwrap_or(self.len)
    }
    fn peek_kw(&self, kw: &str) -> bool {
        matches!(self.t.get(self.i), Some(T { tok: Tok::Word(w), .. }) if w.eq_ignore_ascii_case(kw))
    }
    fn kw(&mut self, kw: &str) -> bool {
        let m = self.peek_kw(kw);
        if m {
            self.i += 1;
        }
        m
    }
    fn expect_kw(&mut self, kw: &str) -> Result<(), SqlErr> {
        if self.kw(kw) {
            Ok(())
        } else {
            Err(SqlErr::at(
                self.pos(),
                format!("'{}' expected", kw.to_ascii_lowercase()),
            ))
        }
    }
    fn punct(&mut self, c: char) -> bool {
        let m = matches!(self.t.get(self.i), Some(T { tok: Tok::P(p), .. }) if *p == c);
        if m {
            self.i += 1;
        }
        m
    }
    fn expect_punct(&mut self, c: char) -> Result<(), SqlErr> {
        if self.punct(c) {
            Ok(())
        } else {
            Err(SqlErr::at(self.pos(), format!("'{c}' expected")))
        }
    }
    /// An identifier: bare, "quoted", or (for table names, as QuestDB allows) 'quoted'.
    fn name(&mut self, allow_str: bool) -> Result<(String, usize), SqlErr> {
        let pos = self.pos();
        match self.t.get(self.i).map(|t| t.tok.clone()) {
            Some(Tok::Word(w)) | Some(Tok::QWord(w)) => {
                self.i += 1;
                Ok((w, pos))
            }
            Some(Tok::Str(s)) if allow_str => {
                self.i += 1;
                Ok((s, pos))
            }
            _ => Err(SqlErr::at(pos, "table name expected")),
        }
    }
    fn string(&mut self) -> Result<(String, usize), SqlErr> {
        let pos = self.pos();
        match self.t.get(self.i).map(|t| t.tok.clone()) {
            Some(Tok::Str(s)) => {
                self.i += 1;
                Ok((s, pos))
            }
            _ => Err(SqlErr::at(pos, "quoted string expected")),
        }
    }
    fn int(&mut self) -> Result<i64, SqlErr> {
        let pos = self.pos();
        let neg = self.punct('-');
        match self.t.get(self.i).map(|t| t.tok.clone()) {
            Some(Tok::Num(n)) => {
                self.i += 1;
                let v: i64 = n.parse().map_err(|_| SqlErr::at(pos, "integer expected"))?;
                Ok(if neg { -v } else { v })
            }
            _ => Err(SqlErr::at(pos, "integer expected")),
        }
    }
    fn end(&mut self) -> Result<(), SqlErr> {
        self.punct(';');
        if self.i < self.t.len() {
            return Err(SqlErr::at(
                self.pos(),
                "unexpected token (end of statement expected)",
            ));
        }
        Ok(())
    }
}

#[derive(Clone, Debug)]
pub enum Val {
    Str(String),
    Long(i64),
    Bool(bool),
    Ts(i64),
    Null,
}

pub struct Rows {
    pub columns: Vec<(String, &'static str)>,
    pub rows: Vec<Vec<Val>>,
    /// Index of the designated timestamp among the columns, -1 if none (QuestDB's field).
    pub timestamp: i64,
}

pub enum Out {
    Ddl,
    Dml,
    Rows(Rows),
}

pub struct Env<'a> {
    pub version: &'a str,
}

fn unsupported(pos: usize) -> SqlErr {
    SqlErr::at(
        pos,
        "questdb-standin does not support this statement (it serves only the subset the COSMOS plans use; see its header)",
    )
}

pub fn execute(db: &mut Db, env: &Env, sql: &str) -> Result<Out, SqlErr> {
    let t = lex(sql)?;
    let mut p = P {
        t,
        i: 0,
        len: sql.len(),
    };
    if p.kw("SELECT") {
        select(db, env, &mut p)
    } else if p.kw("CHECKPOINT") {
        if p.kw("CREATE") {
            p.end()?;
            db.checkpoint_create()?;
        } else if p.kw("RELEASE") {
            p.end()?;
            db.checkpoint_release()?;
        } else {
            return Err(SqlErr::at(p.pos(), "'create' or 'release' expected"));
        }
        Ok(Out::Ddl)
    } else if p.kw("SHOW") {
        p.expect_kw("COLUMNS")?;
        p.expect_kw("FROM")?;
        let (table, pos) = p.name(true)?;
        p.end()?;
        show_columns(db, &table, pos)
    } else if p.kw("ALTER") {
        p.expect_kw("TABLE")?;
        let (table, tpos) = p.name(true)?;
        alter(db, &mut p, &table, tpos)
    } else if p.kw("CREATE") {
        p.expect_kw("TABLE")?;
        let (table, tpos) = p.name(true)?;
        create(db, &mut p, &table, tpos)
    } else if p.kw("INSERT") {
        p.expect_kw("INTO")?;
        let (table, tpos) = p.name(true)?;
        insert(db, &mut p, &table, tpos)
    } else {
        Err(unsupported(0))
    }
}

fn project(
    all: Vec<(String, &'static str)>,
    rows: Vec<Vec<Val>>,
    want: &Option<Vec<(String, usize)>>,
    ts: i64,
) -> Result<Rows, SqlErr> {
    let Some(want) = want else {
        return Ok(Rows {
            columns: all,
            rows,
            timestamp: ts,
        });
    };
    let mut idx = Vec::new();
    for (w, pos) in want {
        match all.iter().position(|(n, _)| n.eq_ignore_ascii_case(w)) {
            Some(i) => idx.push(i),
            None => return Err(SqlErr::at(*pos, format!("Invalid column: {w}"))),
        }
    }
    let timestamp = idx
        .iter()
        .position(|i| *i as i64 == ts)
        .map(|i| i as i64)
        .unwrap_or(-1);
    Ok(Rows {
        columns: idx.iter().map(|i| all[*i].clone()).collect(),
        rows: rows
            .into_iter()
            .map(|r| idx.iter().map(|i| r[*i].clone()).collect())
            .collect(),
        timestamp,
    })
}

fn cols(spec: &[(&str, &'static str)]) -> Vec<(String, &'static str)> {
    spec.iter().map(|(n, t)| (n.to_string(), *t)).collect()
}

fn select(db: &mut Db, env: &Env, p: &mut P) -> Result<Out, SqlErr> {
    // SELECT build()
    if p.peek_kw("build") {
        p.i += 1;
        p.expect_punct('(')?;
        p.expect_punct(')')?;
        p.end()?;
        let text = format!(
            "Build Information: QuestDB {}, JDK 17.0.9, Commit Hash 0000000000000000000000000000000000000000 (opsplan lab questdb-standin)",
            env.version
        );
        return Ok(Out::Rows(Rows {
            columns: cols(&[("build", "STRING")]),
            rows: vec![vec![Val::Str(text)]],
            timestamp: -1,
        }));
    }
    // SELECT count() FROM 'T' [WHERE <ts> IN 'YYYY-MM-DD']
    if p.peek_kw("count") {
        p.i += 1;
        p.expect_punct('(')?;
        p.punct('*');
        p.expect_punct(')')?;
        p.expect_kw("FROM")?;
        let (table, tpos) = p.name(true)?;
        let (_, meta, txn) = db.table(&table, tpos)?;
        let mut day = None;
        if p.kw("WHERE") {
            let (col, cpos) = p.name(false)?;
            match meta.column(&col) {
                Some(i) if i == meta.ts => {}
                Some(_) => return Err(unsupported(cpos)),
                None => return Err(SqlErr::at(cpos, format!("Invalid column: {col}"))),
            }
            p.expect_kw("IN")?;
            let (d, dpos) = p.string()?;
            day = Some(
                parse_day(&d).ok_or_else(|| SqlErr::at(dpos, format!("Invalid date [str={d}]")))?,
            );
        }
        p.end()?;
        let n: i64 = txn
            .parts
            .iter()
            .filter(|x| day.is_none_or(|d| d == x.day))
            .map(|x| x.rows as i64)
            .sum();
        return Ok(Out::Rows(Rows {
            columns: cols(&[("count", "LONG")]),
            rows: vec![vec![Val::Long(n)]],
            timestamp: -1,
        }));
    }
    // SELECT * | a, b FROM <function>(...)
    let want = if p.punct('*') {
        None
    } else {
        let mut v = vec![p.name(false)?];
        while p.punct(',') {
            v.push(p.name(false)?);
        }
        Some(v)
    };
    p.expect_kw("FROM")?;
    let fpos = p.pos();
    let (f, _) = p.name(true)?;
    if !p.punct('(') {
        return Err(unsupported(fpos));
    }
    let arg = if matches!(
        p.t.get(p.i),
        Some(T {
            tok: Tok::Str(_),
            ..
        })
    ) {
        Some(p.string()?)
    } else {
        None
    };
    p.expect_punct(')')?;
    p.end()?;
    let rows = match (f.to_ascii_lowercase().as_str(), arg) {
        ("checkpoint_status", None) => {
            let all = cols(&[("in_progress", "BOOLEAN"), ("started_at", "TIMESTAMP")]);
            let started = db.checkpoint.map(Val::Ts).unwrap_or(Val::Null);
            project(
                all,
                vec![vec![Val::Bool(db.checkpoint.is_some()), started]],
                &want,
                -1,
            )?
        }
        ("tables", None) => {
            let all = cols(&[
                ("id", "INT"),
                ("table_name", "STRING"),
                ("designatedTimestamp", "STRING"),
                ("partitionBy", "STRING"),
                ("walEnabled", "BOOLEAN"),
                ("directoryName", "STRING"),
            ]);
            let mut rows = Vec::new();
            for (i, t) in list_tables(&db.root)
                .map_err(SqlErr::io)?
                .into_iter()
                .enumerate()
            {
                let Ok(meta) = read_meta(&table_dir(&db.root, &t)) else {
                    continue;
                };
                rows.push(vec![
                    Val::Long(i as i64 + 1),
                    Val::Str(t.clone()),
                    Val::Str(meta.columns[meta.ts].name.clone()),
                    Val::Str("DAY".into()),
                    Val::Bool(true),
                    Val::Str(t),
                ]);
            }
            project(all, rows, &want, -1)?
        }
        ("table_partitions", Some((table, tpos))) => {
            let (tdir, meta, txn) = db.table(&table, tpos)?;
            let all = cols(&[
                ("index", "INT"),
                ("partitionBy", "STRING"),
                ("name", "STRING"),
                ("minTimestamp", "TIMESTAMP"),
                ("maxTimestamp", "TIMESTAMP"),
                ("numRows", "LONG"),
                ("diskSize", "LONG"),
                ("diskSizeHuman", "STRING"),
                ("readOnly", "BOOLEAN"),
                ("active", "BOOLEAN"),
                ("attached", "BOOLEAN"),
                ("detached", "BOOLEAN"),
                ("attachable", "BOOLEAN"),
            ]);
            let mut rows = Vec::new();
            for (i, part) in txn.parts.iter().enumerate() {
                let pdir = part_dir(&tdir, part);
                let lines = read_rows(&pdir, Some(part.rows)).map_err(SqlErr::io)?;
                let ts: Vec<i64> = lines.iter().filter_map(|l| row_ts(&meta, l).ok()).collect();
                let size = dir_size(&pdir);
                let opt = |v: Option<&i64>| v.map(|x| Val::Ts(*x)).unwrap_or(Val::Null);
                rows.push(vec![
                    Val::Long(i as i64),
                    Val::Str("DAY".into()),
                    Val::Str(fmt_day(part.day)),
                    opt(ts.iter().min()),
                    opt(ts.iter().max()),
                    Val::Long(part.rows as i64),
                    Val::Long(size as i64),
                    Val::Str(human(size)),
                    Val::Bool(false),
                    Val::Bool(i + 1 == txn.parts.len()),
                    Val::Bool(true),
                    Val::Bool(false),
                    Val::Bool(false),
                ]);
            }
            project(all, rows, &want, -1)?
        }
        _ => return Err(unsupported(fpos)),
    };
    Ok(Out::Rows(rows))
}

fn human(b: u64) -> String {
    match b {
        0..1024 => format!("{b}.0 B"),
        1024..1_048_576 => format!("{:.1} KiB", b as f64 / 1024.0),
        _ => format!("{:.1} MiB", b as f64 / 1_048_576.0),
    }
}

fn show_columns(db: &mut Db, table: &str, pos: usize) -> Result<Out, SqlErr> {
    let (_, meta, _) = db.table(table, pos)?;
    let columns = cols(&[
        ("column", "STRING"),
        ("type", "STRING"),
        ("indexed", "BOOLEAN"),
        ("indexBlockCapacity", "INT"),
        ("symbolCached", "BOOLEAN"),
        ("symbolCapacity", "INT"),
        ("designated", "BOOLEAN"),
        ("upsertKey", "BOOLEAN"),
    ]);
    let rows = meta
        .columns
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let sym = c.ty == "SYMBOL";
            vec![
                Val::Str(c.name.clone()),
                Val::Str(c.ty.clone()),
                Val::Bool(false),
                Val::Long(0),
                Val::Bool(sym),
                Val::Long(if sym { 128 } else { 0 }),
                Val::Bool(i == meta.ts),
                Val::Bool(false),
            ]
        })
        .collect();
    Ok(Out::Rows(Rows {
        columns,
        rows,
        timestamp: -1,
    }))
}

fn day_list(p: &mut P) -> Result<Vec<(i64, usize)>, SqlErr> {
    let mut v = Vec::new();
    loop {
        let (s, pos) = p.string()?;
        let d = parse_day(&s)
            .ok_or_else(|| SqlErr::at(pos, format!("'YYYY-MM-DD' expected, found [ts={s}]")))?;
        v.push((d, pos));
        if !p.punct(',') {
            return Ok(v);
        }
    }
}

fn alter(db: &mut Db, p: &mut P, table: &str, tpos: usize) -> Result<Out, SqlErr> {
    if p.kw("DETACH") {
        p.expect_kw("PARTITION")?;
        if p.kw("LIST") {
            let days = day_list(p)?;
            p.end()?;
            db.detach(table, &days, tpos)?;
        } else if p.kw("WHERE") {
            // WHERE <ts> < dateadd('d', -N, now())
            let (col, cpos) = p.name(false)?;
            let (_, meta, _) = db.table(table, tpos)?;
            if !(col.eq_ignore_ascii_case("timestamp") || meta.column(&col) == Some(meta.ts)) {
                return Err(SqlErr::at(cpos, format!("Invalid column: {col}")));
            }
            p.expect_punct('<')?;
            p.expect_kw("dateadd")?;
            p.expect_punct('(')?;
            let (unit, upos) = p.string()?;
            p.expect_punct(',')?;
            let n = p.int()?;
            p.expect_punct(',')?;
            p.expect_kw("now")?;
            p.expect_punct('(')?;
            p.expect_punct(')')?;
            p.expect_punct(')')?;
            p.end()?;
            let unit_micros = match unit.as_str() {
                "d" => MICROS_PER_DAY,
                "h" => 3_600_000_000,
                "w" => 7 * MICROS_PER_DAY,
                _ => {
                    return Err(SqlErr::at(
                        upos,
                        "stand-in supports dateadd units 'd', 'h' and 'w' only",
                    ))
                }
            };
            let cutoff = now_micros() + n * unit_micros;
            let days: Vec<(i64, usize)> = db
                .days_before(table, cutoff, tpos)?
                .into_iter()
                .map(|d| (d, cpos))
                .collect();
            db.detach(table, &days, tpos)?;
        } else {
            return Err(SqlErr::at(p.pos(), "'list' or 'where' expected"));
        }
        Ok(Out::Ddl)
    } else if p.kw("ATTACH") {
        p.expect_kw("PARTITION")?;
        p.expect_kw("LIST")?;
        let days = day_list(p)?;
        p.end()?;
        db.attach(table, &days, tpos)?;
        Ok(Out::Ddl)
    } else if p.kw("ADD") {
        p.expect_kw("COLUMN")?;
        let (name, npos) = p.name(false)?;
        let (ty, typos) = p.name(false)?;
        p.end()?;
        let ty = ty.to_ascii_uppercase();
        if !TYPES.contains(&ty.as_str()) {
            return Err(SqlErr::at(typos, format!("unsupported column type: {ty}")));
        }
        db.add_column(table, Column { name, ty }, npos)?;
        Ok(Out::Ddl)
    } else {
        Err(unsupported(p.pos()))
    }
}

/// CREATE TABLE 'T' (a TIMESTAMP, b DOUBLE, ...) TIMESTAMP(a) PARTITION BY DAY [WAL]
fn create(db: &mut Db, p: &mut P, table: &str, tpos: usize) -> Result<Out, SqlErr> {
    p.expect_punct('(')?;
    let mut columns = Vec::new();
    loop {
        let (name, _) = p.name(false)?;
        let (ty, typos) = p.name(false)?;
        let ty = ty.to_ascii_uppercase();
        if !TYPES.contains(&ty.as_str()) {
            return Err(SqlErr::at(typos, format!("unsupported column type: {ty}")));
        }
        columns.push(Column { name, ty });
        if !p.punct(',') {
            break;
        }
    }
    p.expect_punct(')')?;
    p.expect_kw("TIMESTAMP")?;
    p.expect_punct('(')?;
    let (ts, tspos) = p.name(false)?;
    p.expect_punct(')')?;
    p.expect_kw("PARTITION")?;
    p.expect_kw("BY")?;
    if !p.kw("DAY") {
        return Err(SqlErr::at(
            p.pos(),
            "stand-in supports PARTITION BY DAY only",
        ));
    }
    p.kw("WAL");
    p.end()?;
    let meta = Meta { ts: 0, columns };
    let ts = match meta.column(&ts) {
        Some(i) if meta.columns[i].ty == "TIMESTAMP" => i,
        _ => {
            return Err(SqlErr::at(
                tspos,
                format!("invalid designated timestamp column [name={ts}]"),
            ))
        }
    };
    db.create_table(table, &Meta { ts, ..meta }, tpos)?;
    Ok(Out::Ddl)
}

/// INSERT INTO 'T' VALUES (v, ...), (v, ...): timestamps as integer microseconds or quoted
/// ISO text; other values stored as text (no commas or newlines).
fn insert(db: &mut Db, p: &mut P, table: &str, tpos: usize) -> Result<Out, SqlErr> {
    let (_, meta, _) = db.table(table, tpos)?;
    p.expect_kw("VALUES")?;
    let mut rows = Vec::new();
    loop {
        let rpos = p.pos();
        p.expect_punct('(')?;
        let mut fields = Vec::new();
        loop {
            let vpos = p.pos();
            let neg = p.punct('-');
            let tok = p.t.get(p.i).map(|t| t.tok.clone());
            p.i += 1;
            let col = meta.columns.get(fields.len());
            let is_ts = col.is_some_and(|c| c.ty == "TIMESTAMP");
            let text = match tok {
                Some(Tok::Num(n)) => format!("{}{n}", if neg { "-" } else { "" }),
                Some(Tok::Str(s)) if is_ts => parse_ts(&s)
                    .ok_or_else(|| SqlErr::at(vpos, format!("Invalid timestamp: {s}")))?
                    .to_string(),
                Some(Tok::Str(s)) if !neg => s,
                Some(Tok::Word(w)) if w.eq_ignore_ascii_case("null") && !neg => String::new(),
                Some(Tok::Word(w))
                    if (w.eq_ignore_ascii_case("true") || w.eq_ignore_ascii_case("false"))
                        && !neg =>
                {
                    w.to_ascii_lowercase()
                }
                _ => return Err(SqlErr::at(vpos, "value expected")),
            };
            if text.contains([',', '\n', '\r', '\t']) {
                return Err(SqlErr::at(
                    vpos,
                    "stand-in stores values without commas, tabs or newlines",
                ));
            }
            if is_ts && !text.is_empty() && text.parse::<i64>().is_err() {
                return Err(SqlErr::at(vpos, format!("Invalid timestamp: {text}")));
            }
            fields.push(text);
            if !p.punct(',') {
                break;
            }
        }
        p.expect_punct(')')?;
        if fields.len() != meta.columns.len() {
            return Err(SqlErr::at(
                rpos,
                format!(
                    "row value count does not match column count [expected={}, actual={}]",
                    meta.columns.len(),
                    fields.len()
                ),
            ));
        }
        if fields[meta.ts].is_empty() {
            return Err(SqlErr::at(
                rpos,
                "designated timestamp column cannot be NULL",
            ));
        }
        rows.push(fields.join(","));
        if !p.punct(',') {
            break;
        }
    }
    p.end()?;
    db.insert(table, rows)?;
    Ok(Out::Dml)
}

fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len() + 2);
    o.push('"');
    for c in s.chars() {
        match c {
            '"' => o.push_str("\\\""),
            '\\' => o.push_str("\\\\"),
            '\n' => o.push_str("\\n"),
            '\r' => o.push_str("\\r"),
            '\t' => o.push_str("\\t"),
            c if (c as u32) < 0x20 => o.push_str(&format!("\\u{:04x}", c as u32)),
            c => o.push(c),
        }
    }
    o.push('"');
    o
}

pub fn json_ok(query: &str, out: &Out) -> String {
    match out {
        Out::Ddl => "{\"ddl\":\"OK\"}".to_string(),
        Out::Dml => "{\"dml\":\"OK\"}".to_string(),
        Out::Rows(r) => {
            let columns: Vec<String> = r
                .columns
                .iter()
                .map(|(n, t)| format!("{{\"name\":{},\"type\":{}}}", esc(n), esc(t)))
                .collect();
            let dataset: Vec<String> = r
                .rows
                .iter()
                .map(|row| {
                    let v: Vec<String> = row
                        .iter()
                        .map(|v| match v {
                            Val::Str(s) => esc(s),
                            Val::Long(n) => n.to_string(),
                            Val::Bool(b) => b.to_string(),
                            Val::Ts(t) => esc(&fmt_ts(*t)),
                            Val::Null => "null".into(),
                        })
                        .collect();
                    format!("[{}]", v.join(","))
                })
                .collect();
            format!(
                "{{\"query\":{},\"columns\":[{}],\"timestamp\":{},\"dataset\":[{}],\"count\":{}}}",
                esc(query),
                columns.join(","),
                r.timestamp,
                dataset.join(","),
                r.rows.len()
            )
        }
    }
}

pub fn json_err(query: &str, e: &SqlErr) -> String {
    format!(
        "{{\"query\":{},\"error\":{},\"position\":{}}}",
        esc(query),
        esc(&e.msg),
        e.pos
    )
}
