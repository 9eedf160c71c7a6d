//! Facts recorded at backup time, compared after a restore (`manifest`'s `facts`,
//! `facts.compare`), against a real PostgreSQL 15 (the test kit's, stopped on drop): the
//! plans in tests/fixtures/steps/facts/ read the tables, the partitions, the rows of every
//! table and the server version with the `sql` step, record them with the dump, restore the
//! dump into another database, damage it as a bad restore would, read the same facts and
//! compare. Without a server: manifests without facts, with facts of a newer format
//! version, and `verify`, which does not care.
// Test helpers set up fixtures; a failed setup should panic right there.
#![allow(clippy::unwrap_used)]

use crate::steps_common::{opsplan_command, opsplan_text};
use opsplan_testkit::bin::{self, Ran};
use opsplan_testkit::postgres::Postgres;
use serde_json::{json, Value};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

const PASSWORD: &str = "facts-pw-7d21b4";

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/steps/facts")
        .join(format!("{name}.yaml"))
}

/// `opsplan run FIXTURE --set port=… --set backup=… --set k=v… --force --log-format json`.
fn run(plan: &str, pg: &Postgres, backup: &Path, sets: &[(&str, &str)]) -> Ran {
    let mut cmd = opsplan_command();
    cmd.arg("run")
        .arg(fixture(plan))
        .args(["--set", &format!("port={}", pg.port)])
        .args(["--set", &format!("backup={}", backup.display())])
        .args(
            sets.iter()
                .flat_map(|(k, v)| ["--set".to_string(), format!("{k}={v}")]),
        )
        .args(["--force", "--log-format", "json"])
        .env("PGTEST_PASSWORD", PASSWORD);
    bin::run(cmd)
}

/// Database shop: a plain table, a table with rows, and a table partitioned by month with
/// two partitions (120 trades: 70 in January, 50 in February).
fn seed(pg: &Postgres) {
    pg.superuser("postgres", "CREATE DATABASE shop");
    pg.superuser(
        "shop",
        "CREATE TABLE audit (id int PRIMARY KEY, what text);
         INSERT INTO audit SELECT i, 'event ' || i FROM generate_series(1, 5) i;
         CREATE TABLE settings (k text PRIMARY KEY, v text);
         CREATE TABLE trades (id int, at date NOT NULL, qty int) PARTITION BY RANGE (at);
         CREATE TABLE trades_2026_01 PARTITION OF trades FOR VALUES FROM ('2026-01-01') TO ('2026-02-01');
         CREATE TABLE trades_2026_02 PARTITION OF trades FOR VALUES FROM ('2026-02-01') TO ('2026-03-01');
         INSERT INTO trades SELECT i, DATE '2026-01-01' + (i % 31), i FROM generate_series(1, 70) i;
         INSERT INTO trades SELECT i, DATE '2026-02-01' + (i % 28), i FROM generate_series(71, 120) i;",
    );
}

/// A backup of shop with its facts; returns the server, the temp dir and the backup folder.
fn backed_up() -> (Postgres, tempfile::TempDir, PathBuf) {
    let pg = Postgres::start(PASSWORD).unwrap_or_else(|e| panic!("cannot start PostgreSQL: {e}"));
    seed(&pg);
    let tmp = tempfile::tempdir().unwrap();
    let backup = tmp.path().join("backup");
    fs::create_dir(&backup).unwrap();
    run("backup", &pg, &backup, &[]).ok();
    (pg, tmp, backup)
}

fn manifest(backup: &Path) -> Value {
    serde_json::from_slice(&fs::read(backup.join("opsplan-manifest.json")).unwrap()).unwrap()
}

fn write_manifest(backup: &Path, doc: &Value) {
    fs::write(
        backup.join("opsplan-manifest.json"),
        serde_json::to_vec_pretty(doc).unwrap(),
    )
    .unwrap();
}

#[test]
fn backup_records_the_facts_in_a_versioned_section_of_the_manifest() {
    let (pg, _tmp, backup) = backed_up();
    let doc = manifest(&backup);
    assert_eq!(doc["format_version"], 1);
    let version = pg.superuser("shop", "SHOW server_version_num");
    let version = version.trim();
    assert_eq!(
        doc["facts"],
        json!({
            "format_version": 1,
            "values": {
                "tables": ["public.audit", "public.settings", "public.trades",
                           "public.trades_2026_01", "public.trades_2026_02"],
                "rows": {"public.audit": 5, "public.settings": 0, "public.trades": 120,
                         "public.trades_2026_01": 70, "public.trades_2026_02": 50},
                "partitions": ["trades_2026_01", "trades_2026_02"],
                "version": version,
            }
        })
    );
    assert_eq!(doc["system_version"], version);
}

#[test]
fn a_matching_restore_passes_and_reports_what_it_compared() {
    let (pg, _tmp, backup) = backed_up();
    let ran = run("restore", &pg, &backup, &[]);
    let out = ran.ok().outputs("compare");
    assert_eq!(out["status"], "match");
    assert_eq!(out["differences"], json!([]));
    assert_eq!(
        out["compared"],
        json!(["partitions", "rows", "tables", "version"])
    );
    assert_eq!(out["unrecorded"], json!([]));
    assert_eq!(out["recorded"]["rows"]["public.trades"], 120);
}

#[test]
fn a_dropped_table_fails_naming_it() {
    let (pg, _tmp, backup) = backed_up();
    let ran = run("restore", &pg, &backup, &[("damage", "DROP TABLE audit")]);
    assert_eq!(ran.code, 1, "{}", ran.all());
    assert_eq!(
        ran.error("compare"),
        format!(
            "the restored system differs from the facts recorded in {}/opsplan-manifest.json: \
             rows public.audit: 5 recorded, missing after restore; tables public.audit: \
             recorded, missing after restore",
            backup.display()
        )
    );
}

#[test]
fn a_missing_partition_fails_naming_it_and_its_rows() {
    let (pg, _tmp, backup) = backed_up();
    let ran = run(
        "restore",
        &pg,
        &backup,
        &[("damage", "DROP TABLE trades_2026_02")],
    );
    assert_eq!(ran.code, 1, "{}", ran.all());
    assert_eq!(
        ran.error("compare"),
        format!(
            "the restored system differs from the facts recorded in {}/opsplan-manifest.json: \
             partitions trades_2026_02: recorded, missing after restore; rows public.trades: \
             120 recorded, 70 restored; rows public.trades_2026_02: 50 recorded, missing after \
             restore; tables public.trades_2026_02: recorded, missing after restore",
            backup.display()
        )
    );
}

#[test]
fn changed_counts_fail_and_at_least_accepts_only_growth() {
    let (pg, _tmp, backup) = backed_up();
    let lost = "DELETE FROM audit WHERE id > 3; INSERT INTO settings VALUES ('a', 'b')";
    let ran = run("restore", &pg, &backup, &[("damage", lost)]);
    assert_eq!(ran.code, 1, "{}", ran.all());
    assert_eq!(
        ran.error("compare"),
        format!(
            "the restored system differs from the facts recorded in {}/opsplan-manifest.json: \
             rows public.audit: 5 recorded, 3 restored; rows public.settings: 0 recorded, 1 \
             restored",
            backup.display()
        )
    );

    // `at_least: [rows]`: the settings row a live system added is fine, lost audit rows
    // are not.
    let ran = run(
        "restore",
        &pg,
        &backup,
        &[("damage", lost), ("at_least", "[rows]")],
    );
    assert_eq!(
        ran.error("compare"),
        format!(
            "the restored system differs from the facts recorded in {}/opsplan-manifest.json: \
             rows public.audit: 5 recorded, only 3 restored",
            backup.display()
        )
    );
    let grown = "INSERT INTO audit VALUES (6, 'late'); CREATE TABLE extra (i int)";
    let ran = run(
        "restore",
        &pg,
        &backup,
        &[("damage", grown), ("at_least", "[rows, tables]")],
    );
    assert_eq!(ran.ok().outputs("compare")["status"], "match");

    // report_only: the differences become outputs, one object each.
    let ran = run(
        "restore",
        &pg,
        &backup,
        &[
            ("damage", "DELETE FROM audit WHERE id > 3"),
            ("report_only", "true"),
        ],
    );
    let out = ran.ok().outputs("compare");
    assert_eq!(out["status"], "differ");
    assert_eq!(
        out["differences"],
        json!([{
            "fact": "rows", "key": "public.audit", "recorded": 5, "restored": 3,
            "message": "rows public.audit: 5 recorded, 3 restored",
        }])
    );
}

#[test]
fn manifests_without_facts_or_with_newer_facts_are_refused_and_verify_reads_both() {
    let (pg, _tmp, backup) = backed_up();
    let mut doc = manifest(&backup);

    // A facts section of a later format: `facts.compare` refuses it by name, `verify`
    // (which does not read facts) still checks the backup.
    doc["facts"]["format_version"] = json!(2);
    write_manifest(&backup, &doc);
    let ran = run("restore", &pg, &backup, &[]);
    assert_eq!(ran.status("verify"), "succeeded", "{}", ran.all());
    assert_eq!(
        ran.error("compare"),
        format!(
            "manifest {}/opsplan-manifest.json has facts of format version 2; this opsplan \
             reads facts version 1",
            backup.display()
        )
    );

    // A manifest written before facts existed (format version 1 without the section).
    doc.as_object_mut().unwrap().remove("facts");
    write_manifest(&backup, &doc);
    let ran = run("restore", &pg, &backup, &[]);
    assert_eq!(ran.status("verify"), "succeeded", "{}", ran.all());
    assert_eq!(
        ran.error("compare"),
        format!(
            "manifest {}/opsplan-manifest.json records no facts (written by facts-backup \
             1.0.0, which did not record any); nothing to compare the restored system with",
            backup.display()
        )
    );

    // Facts the restore reads but the backup did not record are listed, not compared;
    // with none left to compare, the step fails rather than prove nothing.
    doc["facts"] = json!({"format_version": 1, "values": {"objects": {"loki": 3}}});
    write_manifest(&backup, &doc);
    let ran = run("restore", &pg, &backup, &[]);
    assert_eq!(
        ran.error("compare"),
        format!(
            "no fact to compare: the manifest {}/opsplan-manifest.json records objects, and \
             `actual` reads partitions, rows, tables, version",
            backup.display()
        )
    );
    doc["facts"]["values"]["version"] = manifest_version(&pg);
    write_manifest(&backup, &doc);
    let out = run("restore", &pg, &backup, &[]).ok().outputs("compare");
    assert_eq!(out["compared"], json!(["version"]));
    assert_eq!(out["unrecorded"], json!(["partitions", "rows", "tables"]));
}

fn manifest_version(pg: &Postgres) -> Value {
    json!(pg.superuser("shop", "SHOW server_version_num").trim())
}

#[test]
fn preview_shows_what_is_recorded_and_compared() {
    insta::assert_snapshot!(opsplan_text(&[
        "preview",
        "tests/fixtures/steps/facts/preview.yaml"
    ]));
}

#[test]
fn diagnostics_for_wrong_arguments() {
    let text = opsplan_text(&["validate", "tests/fixtures/steps/facts/invalid-args.yaml"]);
    assert_eq!(text.matches("E080(step-arguments)").count(), 8, "{text}");
    assert_eq!(text.matches("E010(unknown-field)").count(), 1, "{text}");
    insta::assert_snapshot!(text);
}

// ---------------------------------------------------------------- the shipped dop plans

/// The `with` of step `id` in `opsplan preview PLAN --params PARAMS --format json`.
fn shipped_step(plan: &str, params: &str, id: &str) -> Value {
    let text = opsplan_text(&["preview", plan, "--params", params, "--format", "json"]);
    let preview: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"));
    let mut found = None;
    let mut walk = |v: &Value| {
        if v["id"] == id && v.get("with").is_some() {
            found = Some(v["with"].clone());
        }
    };
    fn visit(v: &Value, f: &mut dyn FnMut(&Value)) {
        f(v);
        match v {
            Value::Array(items) => items.iter().for_each(|i| visit(i, f)),
            Value::Object(map) => map.values().for_each(|i| visit(i, f)),
            _ => {}
        }
    }
    visit(&preview, &mut walk);
    found.unwrap_or_else(|| panic!("no step {id} in the preview of {plan}"))
}

fn as_set(v: &Value) -> std::collections::BTreeSet<String> {
    v.as_array()
        .unwrap_or_else(|| panic!("not a list: {v}"))
        .iter()
        .map(|s| s.as_str().unwrap().to_string())
        .collect()
}

/// dop-backup reads the facts of every dump in the backup bucket's copy (its
/// `postgres-facts` script over the plain pg_dump), dop-restore-postgres reads them from
/// the restored database (its `restored-facts` SQL): both, taken from the shipped plans,
/// agree on a real database (quoted names, a partitioned table, values with newlines, an
/// empty and an unlogged table), and disagree once the database is damaged. A dump that
/// does not decompress gets no facts and fails nothing.
#[test]
fn dop_dump_facts_and_restored_database_facts_agree() {
    let pg = Postgres::start(PASSWORD).unwrap_or_else(|e| panic!("cannot start PostgreSQL: {e}"));
    seed(&pg);
    pg.superuser(
        "shop",
        r#"CREATE TABLE "Mixed Case" (k text);
           INSERT INTO "Mixed Case" VALUES (E'\\.'), (E'two\nlines');
           CREATE UNLOGGED TABLE scratch (k int);
           INSERT INTO scratch VALUES (1);
           CREATE SCHEMA app;
           CREATE TABLE app.silences (id int);
           INSERT INTO app.silences SELECT generate_series(1, 3);"#,
    );
    let tmp = tempfile::tempdir().unwrap();
    let folder = tmp.path().join("backup/postgres-backup");
    fs::create_dir_all(&folder).unwrap();
    let dump = Command::new("pg_dump")
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            &pg.port.to_string(),
            "-U",
            "postgres",
            "shop",
        ])
        .env("PGPASSWORD", PASSWORD)
        .output()
        .unwrap();
    assert!(
        dump.status.success(),
        "{}",
        String::from_utf8_lossy(&dump.stderr)
    );
    let mut gz = flate2::write::GzEncoder::new(
        fs::File::create(folder.join("dop-1.dump.gz")).unwrap(),
        flate2::Compression::default(),
    );
    std::io::Write::write_all(&mut gz, &dump.stdout).unwrap();
    gz.finish().unwrap();
    fs::write(
        folder.join("dop-0.dump.gz"),
        &fs::read(folder.join("dop-1.dump.gz")).unwrap()[..200],
    )
    .unwrap();

    let script = shipped_step(
        "plans/dop/backup.yaml",
        "tests/fixtures/plans/dop/backup.params.yaml",
        "postgres-facts",
    )["argv"][2]
        .as_str()
        .unwrap()
        .to_string();
    let out = sh_ok(&script, &[tmp.path().to_str().unwrap(), "backup"], None);
    assert_eq!(
        String::from_utf8_lossy(&out.stderr).trim(),
        "gzip: backup/postgres-backup/dop-0.dump.gz: unexpected end of file\nno facts for \
         backup/postgres-backup/dop-0.dump.gz: it does not decompress whole"
    );
    let recorded: Value = serde_json::from_slice(&out.stdout).unwrap();
    let key = "backup/postgres-backup/dop-1.dump.gz";
    assert_eq!(
        recorded.as_object().unwrap().keys().collect::<Vec<_>>(),
        [&format!("pg_rows:{key}"), &format!("pg_tables:{key}")]
    );

    let command = shipped_step(
        "plans/dop/restore-postgres.yaml",
        "tests/fixtures/plans/dop/restore-postgres.params.yaml",
        "restored-facts",
    )["command"]
        .clone();
    let sql = command[6].as_str().unwrap().to_string();
    assert_eq!(command[5], "-tAc");
    let read = |db: &str| -> Value { serde_json::from_str(&pg.superuser(db, &sql)).unwrap() };
    let restored = read("shop");
    assert_eq!(
        as_set(&recorded[format!("pg_tables:{key}")]),
        as_set(&restored["tables"])
    );
    assert_eq!(recorded[format!("pg_rows:{key}")], restored["rows"]);
    assert_eq!(restored["rows"]["public.Mixed Case"], 2);
    assert_eq!(restored["rows"]["public.trades_2026_01"], 70);
    assert!(restored["rows"].get("public.trades").is_none());

    pg.superuser(
        "shop",
        "DROP TABLE audit; DELETE FROM app.silences WHERE id = 3",
    );
    let damaged = read("shop");
    assert!(!as_set(&damaged["tables"]).contains("public.audit"));
    assert_eq!(damaged["rows"]["app.silences"], 2);
    assert_ne!(recorded[format!("pg_rows:{key}")], damaged["rows"]);
}

// ---------------------------------------------------------------- the shipped COSMOS plans

/// A QuestDB `/exec` endpoint of QuestDB's JSON shapes for the queries cosmos7's facts
/// scripts send (`tables()`, `table_partitions('<t>')`), with basic auth `admin:p"w\x` (a
/// password that needs quoting); anything else, or other credentials, answers as QuestDB
/// does (401, or 400 with an error). Serves until the test process ends.
fn questdb_facts_endpoint() -> u16 {
    use std::io::{BufRead, BufReader, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut request = String::new();
            let _ = reader.read_line(&mut request);
            let mut auth = false;
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line.trim().is_empty() {
                    break;
                }
                auth |= line.trim() == "Authorization: Basic YWRtaW46cCJ3XHg=";
            }
            let query = request
                .split_whitespace()
                .nth(1)
                .and_then(|path| path.split_once("?query="))
                .map(|(_, q)| percent_decode(q))
                .unwrap_or_default();
            let dataset = match query.as_str() {
                "SELECT table_name FROM tables()" => Some(r#"[["TLM__INST"],["it's empty"]]"#),
                "SELECT name, numRows FROM table_partitions('TLM__INST')" => {
                    Some(r#"[["2026-04-15",2],["2026-04-16",1]]"#)
                }
                "SELECT name, numRows FROM table_partitions('it''s empty')" => Some("[]"),
                _ => None,
            };
            let (status, body) = match (auth, dataset) {
                (false, _) => ("401 Unauthorized", "Unauthorized".to_string()),
                (true, Some(d)) => (
                    "200 OK",
                    format!(
                        r#"{{"query":{},"columns":[],"timestamp":-1,"dataset":{d},"count":0}}"#,
                        Value::from(query.clone())
                    ),
                ),
                (true, None) => (
                    "400 Bad Request",
                    format!(
                        r#"{{"query":{},"error":"unexpected","position":0}}"#,
                        Value::from(query)
                    ),
                ),
            };
            let _ = write!(
                stream,
                "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    port
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 3 <= b.len() {
            let hex = std::str::from_utf8(&b[i + 1..i + 3]).unwrap();
            out.push(u8::from_str_radix(hex, 16).unwrap());
            i += 3;
        } else {
            out.push(if b[i] == b'+' { b' ' } else { b[i] });
            i += 1;
        }
    }
    String::from_utf8(out).unwrap()
}

/// `sh -c SCRIPT sh ARGS…`, with `QDB_PASSWORD` when given.
fn sh(script: &str, args: &[&str], password: Option<&str>) -> std::process::Output {
    let mut cmd = Command::new("sh");
    cmd.args(["-c", script, "sh"]).args(args);
    if let Some(p) = password {
        cmd.env("QDB_PASSWORD", p);
    }
    cmd.output().unwrap()
}

/// [`sh`], which must succeed.
fn sh_ok(script: &str, args: &[&str], password: Option<&str>) -> std::process::Output {
    let out = sh(script, args, password);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// The script of a shipped plan's exec step, from its preview.
fn shipped_script(plan: &str, params: &str, id: &str, at: usize) -> String {
    let with = shipped_step(plan, params, id);
    with["argv"][at]
        .as_str()
        .unwrap_or_else(|| panic!("no script in {id}: {with}"))
        .to_string()
}

/// cosmos7-backup's `tsdb-facts` and cosmos7-restore's `restored-facts` send the same
/// queries through QuestDB's /exec (the password on curl's standard input, quoted), and
/// read the tables and each table's rows per partition, a table name with a quote and a
/// table without partitions included; wrong credentials fail the step.
#[test]
fn cosmos7_facts_scripts_read_tables_and_rows_per_partition() {
    let port = questdb_facts_endpoint();
    let backup = shipped_script(
        "plans/cosmos7/backup.yaml",
        "tests/fixtures/plans/cosmos7/backup.params.yaml",
        "tsdb-facts",
        2,
    );
    let restore = shipped_script(
        "plans/cosmos7/restore.yaml",
        "tests/fixtures/plans/cosmos7/restore.params.yaml",
        "restored-facts",
        2,
    );
    assert_eq!(
        backup, restore,
        "the backup and the restore read the facts differently"
    );
    let url = format!("http://127.0.0.1:{port}");
    let out = sh_ok(&backup, &[&url, "admin"], Some("p\"w\\x"));
    let facts: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        facts,
        json!({
            "tables": ["TLM__INST", "it's empty"],
            "rows:TLM__INST": {"2026-04-15": 2, "2026-04-16": 1},
            "rows:it's empty": {},
        })
    );
    let out = sh(&backup, &[&url, "admin"], Some("wrong"));
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("QuestDB did not answer with a dataset: Unauthorized"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// cosmos6-backup's `bucket-facts` (on the copy) and cosmos6-restore's `restored-facts` (on
/// the volume, in the init image) run the same count: files and bytes per top-level folder,
/// hidden folders and top-level files left out, an empty bucket counted as 0.
#[test]
fn cosmos6_facts_script_counts_objects_and_bytes_per_bucket() {
    let backup = shipped_script(
        "plans/cosmos6/backup.yaml",
        "tests/fixtures/plans/cosmos6/backup.params.yaml",
        "bucket-facts",
        2,
    );
    let restore = shipped_step(
        "plans/cosmos6/restore.yaml",
        "tests/fixtures/plans/cosmos6/restore.params.yaml",
        "restored-facts",
    )["argv"]
        .clone();
    assert_eq!(restore[0], "docker");
    let at = restore
        .as_array()
        .unwrap()
        .iter()
        .position(|a| a == "-c")
        .unwrap();
    assert_eq!(
        restore[at + 1],
        backup.as_str(),
        "the backup and the restore count differently"
    );
    assert_eq!(restore[at + 3], "/data");

    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    for (path, bytes) in [
        ("config/a/b/one", 100),
        ("config/two", 3),
        ("logs/l1", 4),
        (".minio.sys/format.json", 9),
        ("stray", 5),
    ] {
        let p = root.join(path);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, vec![b'x'; bytes]).unwrap();
    }
    fs::create_dir(root.join("empty")).unwrap();
    let out = sh_ok(&backup, &[root.to_str().unwrap()], None);
    assert_eq!(
        serde_json::from_slice::<Value>(&out.stdout).unwrap(),
        json!({
            "objects": {"config": 2, "empty": 0, "logs": 1},
            "bytes": {"config": 103, "empty": 0, "logs": 4},
        })
    );
}
