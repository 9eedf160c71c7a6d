//! Step types of the pg group against their real counterparts (see each test).
//!
//! Every runtime test starts its own PostgreSQL 15 (`initdb` into a temp dir, `postgres` on a
//! free loopback port, scram-sha-256 password auth over TCP) and stops it in a Drop guard.
//! PostgreSQL refuses to run as root, so as root (CI) the server runs as the `postgres` user
//! through `runuser`. The plans under tests/fixtures/steps/pg/ run through the real
//! `opsplan` binary and the effects are read back with the real `psql`.

use crate::steps_common::opsplan_command;
use opsplan_testkit::bin::{self, Ran};
use std::path::{Path, PathBuf};

const PASSWORD: &str = "test-pw-0f3a9c";

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/steps/pg")
        .join(name)
}

use opsplan_testkit::free_port;

/// The test kit's PostgreSQL 15, stopped and removed on drop.
struct Server {
    port: u16,
    server: opsplan_testkit::postgres::Postgres,
}

impl Server {
    fn start() -> Server {
        let server = opsplan_testkit::postgres::Postgres::start(PASSWORD)
            .unwrap_or_else(|e| panic!("cannot start PostgreSQL: {e}"));
        Server {
            port: server.port,
            server,
        }
    }

    fn psql_raw(&self, db: &str, sql: &str) -> Result<String, String> {
        self.server.superuser_raw(db, sql)
    }

    /// Runs SQL with the real psql; panics on failure.
    fn psql(&self, db: &str, sql: &str) -> String {
        self.psql_raw(db, sql)
            .unwrap_or_else(|e| panic!("psql {sql:?} failed: {e}"))
            .trim_end()
            .to_string()
    }

    fn create_shop(&self) {
        self.psql("postgres", "CREATE DATABASE shop");
    }
}

/// `opsplan run` on a fixture with `--set port=…` and the password in PGTEST_PASSWORD.
fn run(plan: &str, port: u16, password: &str, extra: &[&str]) -> Ran {
    let mut cmd = opsplan_command();
    cmd.arg("run")
        .arg(fixture(plan))
        .args(["--set", &format!("port={port}")])
        .args(extra)
        .env("PGTEST_PASSWORD", password);
    let ran = bin::run(cmd);
    assert!(
        !ran.all().contains(password) || password.is_empty(),
        "the password appears in the output:\n{}",
        ran.all()
    );
    ran
}

fn assert_ok(ran: &Ran) {
    assert_eq!(ran.code, 0, "opsplan failed:\n{}", ran.all());
}

/// The failure message of step `id`: the line naming it and what follows, port replaced.
fn failure(ran: &Ran, port: u16) -> String {
    assert_ne!(
        ran.code,
        0,
        "opsplan succeeded but should fail:\n{}",
        ran.all()
    );
    eprintln!("----\n{}", ran.all());
    ran.all().replace(&port.to_string(), "PORT")
}

#[test]
fn sql_transaction_failing_midway_commits_nothing() {
    let pg = Server::start();
    pg.create_shop();
    let ran = run("rollback.yaml", pg.port, PASSWORD, &[]);
    let out = failure(&ran, pg.port);
    assert!(
        out.contains(
            "statement 3 of 4 failed at 127.0.0.1:PORT/shop: duplicate key value violates \
             unique constraint \"half_pkey\" (SQLSTATE 23505)"
        ),
        "{out}"
    );
    assert!(
        out.contains("detail: Key (id)=(2) already exists."),
        "{out}"
    );
    assert!(
        out.contains("the transaction was rolled back: nothing was committed"),
        "{out}"
    );
    assert_eq!(pg.psql("shop", "SELECT to_regclass('half') IS NULL"), "t");

    // Without a transaction the statements before the error stay.
    let ran = run(
        "rollback.yaml",
        pg.port,
        PASSWORD,
        &["--set", "transaction=false"],
    );
    let out = failure(&ran, pg.port);
    assert!(
        out.contains("no transaction: statements 1–2 before it took effect"),
        "{out}"
    );
    assert_eq!(
        pg.psql(
            "shop",
            "SELECT string_agg(id || ':' || note, ',' ORDER BY id) FROM half"
        ),
        "1:one,2:two"
    );
}

#[test]
fn sql_outputs_feed_assert_and_later_statements() {
    let pg = Server::start();
    pg.create_shop();
    let ran = run("outputs.yaml", pg.port, PASSWORD, &[]);
    assert_ok(&ran);
    assert_eq!(pg.psql("shop", "SELECT * FROM audit"), "3|12.85|bolt");
    assert_eq!(
        pg.psql(
            "shop",
            "SELECT name || '/' || coalesce(note, '-') FROM parts WHERE id IN (2, 3) ORDER BY id"
        ),
        "nut; hex/semicolon\nwasher/dollar 'quoted'; text"
    );
}

#[test]
fn sql_drop_database_without_transaction() {
    let pg = Server::start();
    let ran = run("drop-database.yaml", pg.port, PASSWORD, &["--force"]);
    assert_ok(&ran);
    assert_eq!(
        pg.psql(
            "postgres",
            "SELECT count(*) FROM pg_database WHERE datname = 'scratch'"
        ),
        "0"
    );
}

#[test]
fn sql_error_names_statement_sqlstate_and_position() {
    let pg = Server::start();
    pg.create_shop();
    let ran = run("sql-error.yaml", pg.port, PASSWORD, &[]);
    let out = failure(&ran, pg.port);
    assert!(
        out.contains(
            "statement 2 of 2 failed at 127.0.0.1:PORT/shop: relation \"no_such_table\" does not \
             exist (SQLSTATE 42P01) at line 3 of `script`, column 8\n    FROM no_such_table\n         ^"
        ),
        "{out}"
    );
}

/// Fills `shop` with types pg_dump must carry: a sequence, jsonb, numeric, text with
/// newlines and quotes, NULLs, an index and a view.
fn seed_shop(pg: &Server) {
    pg.create_shop();
    pg.psql(
        "shop",
        "CREATE TABLE items (id serial PRIMARY KEY, name text NOT NULL, price numeric(10,2), \
           tags jsonb, added date DEFAULT DATE '2024-05-01', note text); \
         INSERT INTO items (name, price, tags, note) \
           SELECT 'item ' || g, g * 1.25, jsonb_build_object('g', g, 'even', g % 2 = 0), \
                  CASE WHEN g % 7 = 0 THEN NULL ELSE E'line\\n''quoted'' ' || g END \
           FROM generate_series(1, 500) g; \
         CREATE INDEX items_name ON items (name); \
         CREATE VIEW cheap AS SELECT id, name FROM items WHERE price < 10;",
    );
}

fn shop_contents(pg: &Server) -> String {
    pg.psql(
        "shop",
        "SELECT count(*) || ' ' || md5(string_agg(i::text, ',' ORDER BY id)) FROM items i; \
         SELECT count(*) FROM cheap; SELECT last_value FROM items_id_seq;",
    )
}

#[test]
fn dump_drop_restore_round_trip() {
    let pg = Server::start();
    seed_shop(&pg);
    let before = shop_contents(&pg);
    assert!(before.starts_with("500 "), "{before}");
    let dir = tempfile::tempdir().expect("temp dir");
    let ran = run(
        "round-trip.yaml",
        pg.port,
        PASSWORD,
        &["--force", "--set", &format!("dir={}", dir.path().display())],
    );
    assert_ok(&ran);
    assert_eq!(shop_contents(&pg), before);
    let custom = std::fs::read(dir.path().join("shop.dump")).expect("custom dump");
    assert!(custom.starts_with(b"PGDMP"), "not a custom-format archive");
    let plain = std::fs::read_to_string(dir.path().join("shop.sql")).expect("plain dump");
    assert!(plain.contains("CREATE TABLE public.items"), "{plain:.300}");
    assert!(dir.path().join("shop.d/toc.dat").is_file());
    let mut names: Vec<String> = std::fs::read_dir(dir.path())
        .expect("list dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        ["shop.d", "shop.dump", "shop.sql"],
        "temporary files left"
    );
    // `jobs` is templated (`"{{ params.jobs }}"`): validation leaves it to the rendered
    // value, which is checked before pg_dump starts.
    let zero = tempfile::tempdir().expect("temp dir");
    let ran = run(
        "round-trip.yaml",
        pg.port,
        PASSWORD,
        &[
            "--force",
            "--set",
            &format!("dir={}", zero.path().display()),
            "--set",
            "jobs=0",
        ],
    );
    let out = failure(&ran, pg.port);
    assert!(
        ran.failure("dump-directory").contains(
            "`jobs` is 0: give the number of parallel jobs, at least 1, or leave `jobs` out"
        ),
        "{out}"
    );
    assert!(!zero.path().join("shop.d").exists(), "{out}");

    // A gzip-compressed plain dump (dop's `dop-….dump.gz`) restores like the plain one.
    let gz = dir.path().join("shop.sql.gz");
    let mut enc = flate2::write::GzEncoder::new(
        std::fs::File::create(&gz).expect("create gz"),
        flate2::Compression::default(),
    );
    std::io::Write::write_all(&mut enc, plain.as_bytes()).expect("gzip");
    enc.finish().expect("gzip");
    pg.psql("postgres", "DROP DATABASE shop");
    pg.create_shop();
    let ran = run(
        "restore-refused.yaml",
        pg.port,
        PASSWORD,
        &["--set", &format!("input={}", gz.display())],
    );
    assert_ok(&ran);
    assert_eq!(shop_contents(&pg), before);
    assert_eq!(
        std::fs::read_dir(dir.path()).expect("list dir").count(),
        4,
        "the decompressed temporary file was left behind"
    );
}

#[test]
fn restore_refuses_missing_and_empty_dumps() {
    let pg = Server::start();
    pg.create_shop();
    pg.psql("shop", "CREATE TABLE marker (x int)");
    let dir = tempfile::tempdir().expect("temp dir");
    let missing = dir.path().join("missing.dump");
    let ran = run(
        "restore-refused.yaml",
        pg.port,
        PASSWORD,
        &["--set", &format!("input={}", missing.display())],
    );
    let out = failure(&ran, pg.port);
    assert!(
        out.contains(&format!(
            "dump {} does not exist; refusing to restore",
            missing.display()
        )),
        "{out}"
    );
    let empty = dir.path().join("empty.dump");
    std::fs::write(&empty, b"").expect("empty file");
    let ran = run(
        "restore-refused.yaml",
        pg.port,
        PASSWORD,
        &["--set", &format!("input={}", empty.display())],
    );
    let out = failure(&ran, pg.port);
    assert!(
        out.contains(&format!(
            "dump {} is empty (0 bytes); refusing to restore",
            empty.display()
        )),
        "{out}"
    );
    assert_eq!(
        pg.psql("shop", "SELECT to_regclass('marker') IS NOT NULL"),
        "t"
    );
}

#[test]
fn connection_error_texts() {
    let pg = Server::start();
    pg.create_shop();
    let dir = tempfile::tempdir().expect("temp dir");
    let dir_arg = format!("dir={}", dir.path().display());

    let ran = run("connect.yaml", pg.port, "wrong-password-77", &[]);
    let out = failure(&ran, pg.port);
    assert!(
        out.contains("password authentication failed for user postgres at 127.0.0.1:PORT"),
        "{out}"
    );

    let ran = run(
        "connect.yaml",
        pg.port,
        PASSWORD,
        &["--set", "database=nope"],
    );
    let out = failure(&ran, pg.port);
    assert!(
        out.contains("database \"nope\" does not exist at 127.0.0.1:PORT"),
        "{out}"
    );

    let closed = free_port();
    let ran = run("connect.yaml", closed, PASSWORD, &[]);
    let out = failure(&ran, closed);
    assert!(
        out.contains("cannot reach PostgreSQL at 127.0.0.1:PORT: connection refused"),
        "{out}"
    );

    // The same through pg_dump, whose stderr is quoted after the sentence.
    let ran = run(
        "connect.yaml",
        pg.port,
        "wrong-password-77",
        &["--set", "tool=dump", "--set", &dir_arg],
    );
    let out = failure(&ran, pg.port);
    assert!(
        out.contains(
            "password authentication failed for user postgres at 127.0.0.1:PORT (`pg_dump` exited with code 1"
        ),
        "{out}"
    );
    let ran = run(
        "connect.yaml",
        closed,
        PASSWORD,
        &["--set", "tool=dump", "--set", &dir_arg],
    );
    let out = failure(&ran, closed);
    assert!(
        out.contains("cannot reach PostgreSQL at 127.0.0.1:PORT (`pg_dump` exited with code 1"),
        "{out}"
    );
    assert!(
        std::fs::read_dir(dir.path())
            .expect("list")
            .next()
            .is_none(),
        "a failed dump left files behind"
    );
}

/// `opsplan` from the repository root, so paths in its output are stable.
fn opsplan_at_root(args: &[&str]) -> (i32, String) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let out = opsplan_command()
        .args(args)
        .current_dir(root)
        .env("NO_COLOR", "1")
        .env("PGTEST_PASSWORD", "hunter2")
        .output()
        .expect("run opsplan");
    (
        out.status.code().unwrap_or(-1),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

#[test]
fn preview_of_every_pg_step() {
    let (code, out) = opsplan_at_root(&["preview", "tests/fixtures/steps/pg/preview.yaml"]);
    assert_eq!(code, 0, "{out}");
    assert!(!out.contains("hunter2"), "password in the preview:\n{out}");
    insta::assert_snapshot!(out);
}

#[test]
fn argument_diagnostics() {
    let (code, out) = opsplan_at_root(&["validate", "tests/fixtures/steps/pg/invalid.yaml"]);
    assert_ne!(code, 0, "{out}");
    assert!(!out.contains("panicked"), "{out}");
    insta::assert_snapshot!(out);
}
