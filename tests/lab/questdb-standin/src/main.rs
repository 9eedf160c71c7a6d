//! questdb-standin: a STAND-IN for QuestDB used by the opsplan lab (tests/lab/). It is not
//! QuestDB and stores nothing the way QuestDB does. It reproduces, over QuestDB's HTTP API on
//! port 9000 (`GET /exec?query=...`, basic auth from QDB_USER / QDB_PASSWORD, default
//! admin / quest, 401 otherwise), the subset of QuestDB the COSMOS 7 plans and procedures use,
//! with QuestDB's JSON shapes (`{"query","columns":[{"name","type"}],"timestamp","dataset",
//! "count"}`, `{"ddl":"OK"}`, `{"dml":"OK"}`, errors `400 {"query","error","position"}`).
//!
//! CONTRACT MODELLED, with its source (questdb/documentation at commit
//! 044a7aa6fe339b0189c9d8bd20ccf0231a64cdd8: documentation/reference/sql/checkpoint.md and
//! documentation/operations/backup.md; commit 8055970a82b46f09ebf1c9170b061d05f2b92320:
//! documentation/reference/sql/alter-table-{detach,attach}-partition.md; and the OpenC3
//! "Backups" page, seed 000_fe3d2ec89c86c91f.txt lines 29-155):
//!
//! - `CHECKPOINT CREATE` "takes a snapshot of table transactions across the whole database"
//!   and stores it under `/var/lib/questdb/.checkpoint` (here `.checkpoint/db/<table>/{_meta,
//!   _txn}`, each table's committed state). "QuestDB can only enter checkpoint mode once": a
//!   second CREATE fails ("Waiting for CHECKPOINT RELEASE to be called"). `CHECKPOINT
//!   RELEASE` leaves checkpoint mode and "reinstates the usual housekeeping" (here: purges
//!   superseded partition versions); a RELEASE without a checkpoint is a no-op.
//!   `SELECT * FROM checkpoint_status()`: in_progress, started_at. Each create / release is
//!   appended to `<root>/checkpoint.log` with the committed row count of every table at
//!   CREATE and the rows written while it was held (the drills' oracle; not a QuestDB file).
//! - "Once a checkpoint is created, QuestDB continues taking in writes" and "will consume more
//!   disk space": INSERTs during a checkpoint go straight into db/. The active partition's
//!   rows file grows in place, `_txn` is rewritten in place (a copy may catch it torn), a row
//!   for a new day creates a new partition folder, and a row for an older partition is
//!   copy-on-write into a new version folder `<day>.<txn>` while the superseded version is
//!   kept until RELEASE ("housekeeping" paused). Nothing vanishes while the checkpoint is held,
//!   so rsync of the volume sees files grow and folders appear. Outside a checkpoint the
//!   superseded version is removed at once (a copy taken then can miss it).
//! - Start-up with `<root>/_restore`: the restore "will use .checkpoint to adjust the database
//!   files and remove extra data copies": every table back to its checkpointed `_meta`/`_txn`,
//!   rows beyond the committed count cut, partition folders the checkpoint does not reference
//!   removed, tables created after it removed, then `.checkpoint/db` and `_restore` deleted.
//!   Without checkpoint data it refuses to start with QuestDB's "checkpoint trigger file
//!   found, but the checkpoint directory does not exist" and exits (3), leaving `_restore`
//!   in place ("Should recovery fail, QuestDB will exit with an error, and the trigger file
//!   will remain in place"). Then db/ is validated; a corrupt db/ exits 2.
//! - `SELECT build()`: "Build Information: QuestDB <QDB_VERSION, default 9.1.0>, JDK ...".
//! - `SELECT <cols|*> FROM table_partitions('T')` (attached partitions), `SHOW COLUMNS FROM
//!   'T'`, `SELECT <cols|*> FROM tables()`, `SELECT count() FROM 'T' [WHERE <designated ts>
//!   IN 'YYYY-MM-DD']`.
//! - `ALTER TABLE 'T' DETACH PARTITION LIST 'day', ...` and `... DETACH PARTITION WHERE
//!   <ts> < dateadd('d', -N, now())`: renames `<day>.<n>` to `<day>.detached` (with a copy of
//!   `_meta`); "does not support detaching an active (the last) partition". `ALTER TABLE 'T'
//!   ATTACH PARTITION LIST ...`: only `<day>.attachable` folders ("QuestDB only attaches
//!   partition directories that end in .attachable"), writable by the server's user (the
//!   page's chown to 10001), with compatible `_meta`; "fails if a partition already exists".
//!   Errors use QuestDB's "could not attach|detach partition [table=.., detachStatus=..,
//!   partitionTimestamp=.., partitionBy=DAY]".
//! - `CREATE TABLE 'T' (c TYPE, ...) TIMESTAMP(c) PARTITION BY DAY`, `ALTER TABLE 'T' ADD
//!   COLUMN c TYPE`, `INSERT INTO 'T' VALUES (..), (..)`: for the lab to write and reshape data
//!   (accepted during a checkpoint too).
//!
//! WHAT IT CANNOT MODEL: QuestDB's real file formats (column files, symbol maps, `_cv`, WAL
//! segments and the sequencer; here text files), WAL apply lag and `pendingRowCount`, the
//! extra disk space a long checkpoint costs (the docs' "at least 50% free" advice: the lab's
//! volumes are tiny), the Java process's logs and exit codes beyond the two above, whether a
//! restart during a checkpoint keeps it (the stand-in forgets it, state is in memory), and
//! DETACH / ATTACH PARTITION during a checkpoint: the docs do not say, so the stand-in refuses
//! them (the COSMOS 7 partition plans check `checkpoint_status()` first). Schema
//! compatibility of an attach is checked by equal `_meta`, not QuestDB's column-by-column
//! rules, and symbolic-link (read-only) attaches are not modelled.
//!
//! Data layout: see store.rs. Sub-commands: `serve` (default), `seed` (generate a table of N
//! daily partitions), `digest` (row counts and a hash of the committed rows per partition, to
//! compare a restore with the seed), `check` (validate db/). Failure injection for drills:
//! every line of the file QDB_FAIL_FILE (default /tmp/questdb-standin-fail) is a statement
//! prefix answered with HTTP 500; a line of `<QDB_FAIL_FILE>.race` (one-shot) makes
//! "another client" run CHECKPOINT CREATE just before the first statement with that prefix
//! (the race between a plan's checkpoint_status() check and its own CREATE). When started as root with QDB_RUN_AS=uid:gid, it chowns the
//! data folder and drops to that user, as QuestDB's image entrypoint does.

mod db;
mod sql;
mod store;
mod time;

use db::Db;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

static STOP: AtomicBool = AtomicBool::new(false);

mod sys {
    //! The few libc calls std does not wrap (std links libc already: no new dependency).
    extern "C" {
        fn signal(sig: i32, handler: usize) -> usize;
        fn geteuid() -> u32;
        fn setgid(gid: u32) -> i32;
        fn setuid(uid: u32) -> i32;
        fn setgroups(n: usize, groups: *const u32) -> i32;
    }

    extern "C" fn on_term(_: i32) {
        super::STOP.store(true, std::sync::atomic::Ordering::SeqCst);
    }

    /// PID 1 in a container ignores SIGTERM unless it installs a handler.
    pub fn install_term_handler() {
        let h = on_term as extern "C" fn(i32) as usize;
        // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
        unsafe {
            signal(15, h);
            signal(2, h);
        }
    }

    pub fn is_root() -> bool {
        // SAFETY: geteuid has no preconditions.
        unsafe { geteuid() == 0 }
    }

    pub fn drop_to(uid: u32, gid: u32) -> Result<(), String> {
        // SAFETY: plain syscalls with valid arguments; order matters (groups, gid, then uid).
        unsafe {
            if setgroups(0, std::ptr::null()) != 0 || setgid(gid) != 0 || setuid(uid) != 0 {
                return Err(format!(
                    "cannot switch to uid {uid} gid {gid}: {}",
                    std::io::Error::last_os_error()
                ));
            }
        }
        Ok(())
    }
}

struct Config {
    root: PathBuf,
    listen: String,
    user: String,
    password: String,
    version: String,
    fail_file: PathBuf,
}

fn env_or(k: &str, d: &str) -> String {
    std::env::var(k)
        .ok()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| d.to_string())
}

fn usage() -> String {
    "usage: questdb-standin [serve] [--data-dir DIR] [--listen ADDR:PORT]\n       \
     questdb-standin seed --table T [--days N] [--rows-per-day R] [--end-day YYYY-MM-DD] [--data-dir DIR]\n       \
     questdb-standin digest|check [--data-dir DIR]\n\
     env: QDB_ROOT (/var/lib/questdb), QDB_HTTP_BIND (0.0.0.0:9000), QDB_USER (admin), QDB_PASSWORD (quest),\n     \
     QDB_VERSION (9.1.0), QDB_RUN_AS (uid:gid to drop to when root), QDB_FAIL_FILE (/tmp/questdb-standin-fail)"
        .to_string()
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err((code, msg)) => {
            eprintln!("questdb-standin: {msg}");
            ExitCode::from(code)
        }
    }
}

fn run() -> Result<(), (u8, String)> {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let cmd = match args.first().map(String::as_str) {
        Some("serve" | "seed" | "digest" | "check") => args.remove(0),
        Some("-h" | "--help") => {
            println!("{}", usage());
            return Ok(());
        }
        _ => "serve".to_string(),
    };
    let mut opts = std::collections::BTreeMap::new();
    let mut it = args.into_iter();
    while let Some(a) = it.next() {
        let Some(k) = a.strip_prefix("--") else {
            return Err((64, format!("unexpected argument {a:?}\n{}", usage())));
        };
        let v = it.next().ok_or((64, format!("--{k} needs a value")))?;
        opts.insert(k.to_string(), v);
    }
    let opt = |k: &str, env: &str, d: &str| opts.get(k).cloned().unwrap_or_else(|| env_or(env, d));
    let cfg = Config {
        root: PathBuf::from(opt("data-dir", "QDB_ROOT", "/var/lib/questdb")),
        listen: opt("listen", "QDB_HTTP_BIND", "0.0.0.0:9000"),
        user: env_or("QDB_USER", "admin"),
        password: env_or("QDB_PASSWORD", "quest"),
        version: env_or("QDB_VERSION", "9.1.0"),
        fail_file: PathBuf::from(env_or("QDB_FAIL_FILE", "/tmp/questdb-standin-fail")),
    };
    drop_privileges(&cfg.root).map_err(|e| (1, e))?;
    match cmd.as_str() {
        "seed" => {
            let table = opts
                .get("table")
                .ok_or((64, "seed needs --table".to_string()))?;
            let num = |k: &str, d: i64| -> Result<i64, (u8, String)> {
                match opts.get(k) {
                    Some(v) => v
                        .parse()
                        .map_err(|_| (64, format!("--{k} {v:?} is not a number"))),
                    None => Ok(d),
                }
            };
            let end = match opts.get("end-day") {
                Some(d) => {
                    time::parse_day(d).ok_or((64, format!("--end-day {d:?} is not YYYY-MM-DD")))?
                }
                None => time::day_of(time::now_micros()) - 1,
            };
            std::fs::create_dir_all(store::db_dir(&cfg.root)).map_err(|e| (1, e.to_string()))?;
            db::seed(
                &cfg.root,
                table,
                num("days", 5)?,
                num("rows-per-day", 100)? as u64,
                end,
            )
            .map_err(|e| (1, e))
        }
        "digest" => digest(&cfg.root).map_err(|e| (2, e)),
        "check" => store::check_db(&cfg.root)
            .map(|_| println!("db OK"))
            .map_err(|e| (2, format!("db is corrupt: {e}"))),
        _ => serve(cfg),
    }
}

/// QuestDB's image starts as root, gives the data folder to the questdb user and drops to it;
/// the stand-in does the same when QDB_RUN_AS is set, so ownership mistakes show up in the lab.
fn drop_privileges(root: &Path) -> Result<(), String> {
    let Ok(spec) = std::env::var("QDB_RUN_AS") else {
        return Ok(());
    };
    if spec.is_empty() || !sys::is_root() {
        return Ok(());
    }
    let (u, g) = spec.split_once(':').unwrap_or((&spec, &spec));
    let (uid, gid): (u32, u32) = match (u.parse(), g.parse()) {
        (Ok(u), Ok(g)) => (u, g),
        _ => return Err(format!("QDB_RUN_AS={spec:?} is not uid:gid")),
    };
    std::fs::create_dir_all(root).map_err(|e| format!("cannot create {}: {e}", root.display()))?;
    chown_tree(root, uid, gid)?;
    sys::drop_to(uid, gid)
}

fn chown_tree(path: &Path, uid: u32, gid: u32) -> Result<(), String> {
    use std::os::unix::fs::MetadataExt;
    let md = std::fs::symlink_metadata(path)
        .map_err(|e| format!("cannot stat {}: {e}", path.display()))?;
    if md.uid() != uid || md.gid() != gid {
        std::os::unix::fs::lchown(path, Some(uid), Some(gid))
            .map_err(|e| format!("cannot chown {}: {e}", path.display()))?;
    }
    if md.is_dir() {
        let rd =
            std::fs::read_dir(path).map_err(|e| format!("cannot list {}: {e}", path.display()))?;
        for e in rd.flatten() {
            chown_tree(&e.path(), uid, gid)?;
        }
    }
    Ok(())
}

fn digest(root: &Path) -> Result<(), String> {
    for (t, txn) in store::check_db(root)? {
        let tdir = store::table_dir(root, &t);
        let mut th = store::FNV_OFFSET;
        let mut total = 0;
        for p in &txn.parts {
            let rows = store::read_rows(&store::part_dir(&tdir, p), Some(p.rows))?;
            let mut h = store::FNV_OFFSET;
            for r in &rows {
                h = store::fnv1a(h, r.as_bytes());
                h = store::fnv1a(h, b"\n");
                th = store::fnv1a(th, r.as_bytes());
                th = store::fnv1a(th, b"\n");
            }
            total += rows.len();
            println!(
                "partition {t} {} rows={} fnv={h:016x}",
                time::fmt_day(p.day),
                rows.len()
            );
        }
        println!(
            "table {t} partitions={} rows={total} fnv={th:016x}",
            txn.parts.len()
        );
    }
    Ok(())
}

fn serve(cfg: Config) -> Result<(), (u8, String)> {
    sys::install_term_handler();
    let root = cfg.root.clone();
    std::fs::create_dir_all(&root)
        .map_err(|e| (1, format!("cannot create {}: {e}", root.display())))?;
    if root.join(db::RESTORE_TRIGGER).exists() {
        println!(
            "questdb-standin: found {}, restoring from checkpoint",
            root.join(db::RESTORE_TRIGGER).display()
        );
        let done =
            db::restore(&root).map_err(|e| (3, format!("restore failed, not starting: {e}")))?;
        db::log_event(&root, &format!("RESTORE {done}"));
    } else {
        std::fs::create_dir_all(store::db_dir(&root)).map_err(|e| (1, e.to_string()))?;
        // A queue of writes left by an older stand-in version (see db::apply_pending).
        let n = db::apply_pending(&root)
            .map_err(|e| (2, format!("cannot apply pending writes: {e}")))?;
        if n > 0 {
            println!(
                "questdb-standin: applied {n} pending rows from {}",
                db::PENDING
            );
        }
    }
    let tables =
        store::check_db(&root).map_err(|e| (2, format!("db is corrupt, not starting: {e}")))?;
    let listener = TcpListener::bind(&cfg.listen)
        .map_err(|e| (1, format!("cannot listen on {}: {e}", cfg.listen)))?;
    listener
        .set_nonblocking(true)
        .map_err(|e| (1, e.to_string()))?;
    println!(
        "questdb-standin: QuestDB {} stand-in serving {} on http://{} ({} tables)",
        cfg.version,
        root.display(),
        cfg.listen,
        tables.len()
    );
    let state = Arc::new(Mutex::new(Db {
        root,
        checkpoint: None,
        written_in_checkpoint: 0,
    }));
    let cfg = Arc::new(cfg);
    while !STOP.load(Ordering::SeqCst) {
        match listener.accept() {
            Ok((stream, _)) => {
                let (state, cfg) = (state.clone(), cfg.clone());
                std::thread::spawn(move || {
                    if let Err(e) = handle(stream, &state, &cfg) {
                        eprintln!("questdb-standin: connection: {e}");
                    }
                });
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(25))
            }
            Err(e) => eprintln!("questdb-standin: accept: {e}"),
        }
    }
    // Wait for the statement in flight so no file is left half-changed.
    let _guard = state.lock();
    println!("questdb-standin: stopped");
    Ok(())
}

fn hex(c: u8) -> Option<u8> {
    (c as char).to_digit(16).map(|v| v as u8)
}

fn url_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => match (hex(b[i + 1]), hex(b[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push(h * 16 + l);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn b64_decode(s: &str) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    let mut buf = 0u32;
    let mut bits = 0;
    for c in s.trim().bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' | b'-' => 62,
            b'/' | b'_' => 63,
            b'=' => break,
            _ => return None,
        } as u32;
        buf = (buf << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((buf >> bits) as u8);
            buf &= (1 << bits) - 1;
        }
    }
    Some(out)
}

fn respond(
    stream: &mut TcpStream,
    status: &str,
    ctype: &str,
    extra: &str,
    body: &str,
) -> std::io::Result<()> {
    let head = format!(
        "HTTP/1.1 {status}\r\nServer: questDB/standin\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n{extra}\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes())?;
    stream.write_all(body.as_bytes())?;
    stream.flush()
}

fn handle(mut stream: TcpStream, state: &Mutex<Db>, cfg: &Config) -> std::io::Result<()> {
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let mut auth = None;
    let mut content_length = 0usize;
    let mut total = line.len();
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h)? == 0 || h == "\r\n" || h == "\n" {
            break;
        }
        total += h.len();
        if total > 65_536 {
            return respond(
                &mut stream,
                "431 Request Header Fields Too Large",
                "text/plain",
                "",
                "headers too large\n",
            );
        }
        if let Some((k, v)) = h.split_once(':') {
            let k = k.trim().to_ascii_lowercase();
            if k == "authorization" {
                auth = Some(v.trim().to_string());
            } else if k == "content-length" {
                content_length = v.trim().parse().unwrap_or(0);
            }
        }
    }
    if content_length > 0 {
        let mut sink = vec![0u8; content_length.min(1 << 20)];
        let _ = reader.read_exact(&mut sink);
    }
    let mut parts = line.split_whitespace();
    let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let (path, qs) = target.split_once('?').unwrap_or((target, ""));
    if path == "/health" || path == "/status" {
        return respond(
            &mut stream,
            "200 OK",
            "application/json",
            "",
            "{\"status\":\"Healthy\"}\n",
        );
    }
    if path != "/exec" {
        return respond(
            &mut stream,
            "404 Not Found",
            "text/plain",
            "",
            "Not Found\n",
        );
    }
    if method != "GET" {
        return respond(
            &mut stream,
            "405 Method Not Allowed",
            "text/plain",
            "",
            "Method Not Allowed\n",
        );
    }
    let ok_auth = auth
        .as_deref()
        .and_then(|a| {
            a.strip_prefix("Basic ")
                .or_else(|| a.strip_prefix("basic "))
        })
        .and_then(b64_decode)
        .map(|d| d == format!("{}:{}", cfg.user, cfg.password).into_bytes())
        .unwrap_or(false);
    if !ok_auth {
        println!("questdb-standin: 401 for /exec (missing or wrong basic auth)");
        return respond(
            &mut stream,
            "401 Unauthorized",
            "text/plain",
            "WWW-Authenticate: Basic realm=\"questdb\"\r\n",
            "Unauthorized\n",
        );
    }
    let query = qs
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .find(|(k, _)| *k == "query")
        .map(|(_, v)| url_decode(v))
        .unwrap_or_default();
    if query.trim().is_empty() {
        let e = db::SqlErr::at(0, "No query text");
        return respond(
            &mut stream,
            "400 Bad Request",
            "application/json",
            "",
            &sql::json_err(&query, &e),
        );
    }
    if let Some(prefix) = injected_failure(&cfg.fail_file, &query) {
        println!("questdb-standin: injected failure for {query:?}");
        let e = db::SqlErr::at(
            0,
            format!(
                "stand-in: failure injected for statements starting with {prefix:?} ({})",
                cfg.fail_file.display()
            ),
        );
        return respond(
            &mut stream,
            "500 Internal Server Error",
            "application/json",
            "",
            &sql::json_err(&query, &e),
        );
    }
    let result = {
        let mut db = match state.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        if STOP.load(Ordering::SeqCst) {
            return respond(
                &mut stream,
                "503 Service Unavailable",
                "text/plain",
                "",
                "shutting down\n",
            );
        }
        // A race for drills: another client (the Admin Console's TSDB tab) creates a
        // checkpoint just before a statement with the given prefix is executed; one-shot.
        let race = cfg.fail_file.with_extension("race");
        if injected_failure(&race, &query).is_some() {
            if let Err(e) = std::fs::remove_file(&race) {
                println!(
                    "questdb-standin: cannot remove {} ({e}): the race fires again until it is removed",
                    race.display()
                );
            }
            println!("questdb-standin: injected race: another client runs CHECKPOINT CREATE first");
            if let Err(e) = db.checkpoint_create() {
                println!(
                    "questdb-standin: injected CHECKPOINT CREATE failed: {}",
                    e.msg
                );
            }
        }
        sql::execute(
            &mut db,
            &sql::Env {
                version: &cfg.version,
            },
            &query,
        )
    };
    match result {
        Ok(out) => {
            println!("questdb-standin: OK  {query}");
            respond(
                &mut stream,
                "200 OK",
                "application/json",
                "",
                &sql::json_ok(&query, &out),
            )
        }
        Err(e) => {
            println!("questdb-standin: ERR {query}: {}", e.msg);
            let status = if e.internal {
                "500 Internal Server Error"
            } else {
                "400 Bad Request"
            };
            respond(
                &mut stream,
                status,
                "application/json",
                "",
                &sql::json_err(&query, &e),
            )
        }
    }
}

fn normalize(s: &str) -> String {
    s.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_ascii_uppercase()
}

fn injected_failure(file: &Path, query: &str) -> Option<String> {
    let text = std::fs::read_to_string(file).ok()?;
    let q = normalize(query);
    text.lines()
        .map(normalize)
        .find(|p| !p.is_empty() && q.starts_with(p.as_str()))
}
