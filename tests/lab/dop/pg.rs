//! The lab's PostgreSQL: a real PostgreSQL 15 (`initdb` into a temp dir, `postgres` on a free
//! loopback port, scram-sha-256 over TCP), stopped by an immediate shutdown on drop. As root
//! (CI) it runs as the `postgres` user through `runuser`, since PostgreSQL refuses root.
//!
//! It holds the platform's role and database `dop` (the role owns the database and may create
//! databases, as the page's `psql -U dop -c "DROP DATABASE dop;" postgres` needs), filled by
//! [`Postgres::seed`] with deterministic generated content.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

pub use opsplan_testkit::postgres::PG_BIN;
const SUPER_PASSWORD: &str = "lab-super-pw-51c2";
/// The `dop` role's password; the drill passes it to psql as PGPASSWORD.
pub const DOP_PASSWORD: &str = "lab-dop-pw-8e1f";

/// The test kit's PostgreSQL, with the platform's role and database.
pub struct Postgres {
    pub port: u16,
    server: opsplan_testkit::postgres::Postgres,
}

impl Postgres {
    pub fn start() -> Result<Postgres, String> {
        let server = opsplan_testkit::postgres::Postgres::start(SUPER_PASSWORD)?;
        Ok(Postgres {
            port: server.port,
            server,
        })
    }

    /// The environment that points libpq clients (psql in the master pod's stand-in exec)
    /// at this server as the `dop` role.
    pub fn client_env(&self) -> Vec<(String, String)> {
        vec![
            ("PGHOST".into(), "127.0.0.1".into()),
            ("PGPORT".into(), self.port.to_string()),
            ("PGPASSWORD".into(), DOP_PASSWORD.into()),
            ("PGCONNECT_TIMEOUT".into(), "5".into()),
        ]
    }

    fn psql_as(&self, user: &str, password: &str, db: &str, sql: &str) -> Result<String, String> {
        self.server.psql_as(user, password, db, sql)
    }

    /// SQL as the superuser; panics naming the statement on failure.
    pub fn superuser(&self, db: &str, sql: &str) -> String {
        self.psql_as("postgres", SUPER_PASSWORD, db, sql)
            .unwrap_or_else(|e| panic!("psql {sql:?} on {db} failed: {e}"))
    }

    /// SQL as `dop` on `dop`; panics naming the statement on failure.
    pub fn dop(&self, sql: &str) -> String {
        self.psql_as("dop", DOP_PASSWORD, "dop", sql)
            .unwrap_or_else(|e| panic!("psql {sql:?} on dop failed: {e}"))
    }

    /// Creates the `dop` role and database and fills it: users, hosts, alerts, silences,
    /// dashboards (with bytea), a view and their sequences. [`Postgres::add_alerts`] adds more
    /// later, so two dumps taken around it differ.
    pub fn seed(&self) {
        self.superuser(
            "postgres",
            &format!("CREATE ROLE dop LOGIN CREATEDB PASSWORD '{DOP_PASSWORD}'"),
        );
        self.superuser("postgres", "CREATE DATABASE dop OWNER dop");
        self.dop(SCHEMA);
        self.dop(
            "INSERT INTO users (login, email, created_at, settings)
             SELECT 'user' || i, 'user' || i || '@example.com',
                    timestamptz '2025-01-01 00:00:00+00' + i * interval '37 minutes',
                    jsonb_build_object('theme', CASE WHEN i % 3 = 0 THEN 'dark' ELSE 'light' END,
                                       'tz', 'UTC+' || (i % 12))
             FROM generate_series(1, 250) i;
             INSERT INTO hosts (name, labels, last_seen, load)
             SELECT 'node-' || lpad(i::text, 4, '0'),
                    jsonb_build_object('rack', 'r' || (i % 17), 'role', (ARRAY['db','web','cache'])[1 + i % 3]),
                    timestamptz '2025-04-21 00:00:00+00' - (i * interval '11 seconds'),
                    round(((i * 7919) % 10000) / 100.0, 2)
             FROM generate_series(1, 600) i;
             INSERT INTO dashboards (title, owner, body)
             SELECT 'Dashboard ' || i || ' — ' || md5(i::text), 1 + i % 250,
                    decode(repeat(md5('dash' || i), 64), 'hex')
             FROM generate_series(1, 120) i;",
        );
        self.add_alerts(0, 24_000);
        self.dop(
            "INSERT INTO silences (id, matchers, created_by, starts_at, ends_at, comment)
             SELECT md5('silence' || i)::uuid,
                    jsonb_build_array(jsonb_build_object('name', 'alertname', 'value', 'Alert' || (i % 40), 'isRegex', false)),
                    1 + i % 250,
                    timestamptz '2025-04-20 00:00:00+00' + i * interval '5 minutes',
                    timestamptz '2025-04-20 00:00:00+00' + i * interval '5 minutes' + interval '2 hours',
                    E'maintenance window ' || i || E'\\n\\tline two, \"quoted\"'
             FROM generate_series(1, 1500) i;",
        );
    }

    /// Alerts `from+1 ..= from+n` (deterministic content).
    pub fn add_alerts(&self, from: u64, n: u64) {
        self.dop(&format!(
            "INSERT INTO alerts (fingerprint, status, starts_at, ends_at, host_id, labels, annotations)
             SELECT md5('alert' || i), CASE WHEN i % 5 = 0 THEN 'resolved' ELSE 'firing' END,
                    timestamptz '2025-04-01 00:00:00+00' + i * interval '13 seconds',
                    CASE WHEN i % 5 = 0 THEN timestamptz '2025-04-01 00:10:00+00' + i * interval '13 seconds' END,
                    1 + i % 600,
                    jsonb_build_object('alertname', 'Alert' || (i % 40), 'severity', (ARRAY['info','warning','critical'])[1 + i % 3]),
                    jsonb_build_object('summary', 'value ' || (i * 31 % 977) || ' above threshold')
             FROM generate_series({}, {}) i;",
            from + 1,
            from + n
        ));
    }

    /// Per table `rows=N md5=…` of the whole content in a stable order, per sequence its
    /// last value, per view its definition's md5: what a restore must bring back.
    pub fn digest(&self) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        let tables = self
            .dop("SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename");
        for t in tables.lines().filter(|l| !l.is_empty()) {
            let row = self.dop(&format!(
                "SELECT count(*) || ' rows, md5 ' || md5(coalesce(string_agg(x::text, E'\\n' ORDER BY x::text), ''))
                 FROM public.\"{t}\" x"
            ));
            out.insert(format!("table {t}"), row.trim().to_string());
        }
        for line in self
            .dop("SELECT sequencename || '=' || coalesce(last_value::text, 'unset') FROM pg_sequences WHERE schemaname = 'public' ORDER BY 1")
            .lines()
            .filter(|l| !l.is_empty())
        {
            let (name, value) = line.split_once('=').unwrap_or((line, ""));
            out.insert(format!("sequence {name}"), value.to_string());
        }
        for line in self
            .dop("SELECT viewname || '=' || md5(definition) FROM pg_views WHERE schemaname = 'public' ORDER BY 1")
            .lines()
            .filter(|l| !l.is_empty())
        {
            let (name, value) = line.split_once('=').unwrap_or((line, ""));
            out.insert(format!("view {name}"), value.to_string());
        }
        out
    }

    /// Total rows of the public tables.
    pub fn row_count(digest: &BTreeMap<String, String>) -> u64 {
        digest
            .iter()
            .filter(|(k, _)| k.starts_with("table "))
            .filter_map(|(_, v)| v.split(' ').next()?.parse::<u64>().ok())
            .sum()
    }

    /// `pg_dump dop | gzip` (a plain SQL dump, as the page's `zcat dump | psql` expects) into
    /// `path`.
    pub fn dump_gz(&self, path: &Path) {
        let out = Command::new("bash")
            .args([
                "-o",
                "pipefail",
                "-c",
                r#""$0" -h 127.0.0.1 -p "$1" -U dop --no-password dop | gzip -c > "$2""#,
            ])
            .arg(format!("{PG_BIN}/pg_dump"))
            .arg(self.port.to_string())
            .arg(path)
            .env("PGPASSWORD", DOP_PASSWORD)
            .output()
            .expect("run pg_dump | gzip");
        assert!(
            out.status.success(),
            "pg_dump dop | gzip > {} failed: {}",
            path.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

const SCHEMA: &str = "
CREATE TABLE users (
    id serial PRIMARY KEY,
    login text NOT NULL UNIQUE,
    email text,
    created_at timestamptz NOT NULL,
    settings jsonb NOT NULL DEFAULT '{}'
);
CREATE TABLE hosts (
    id bigserial PRIMARY KEY,
    name text NOT NULL UNIQUE,
    labels jsonb,
    last_seen timestamptz,
    load numeric(6,2)
);
CREATE TABLE alerts (
    id bigserial PRIMARY KEY,
    fingerprint text NOT NULL,
    status text NOT NULL CHECK (status IN ('firing', 'resolved')),
    starts_at timestamptz NOT NULL,
    ends_at timestamptz,
    host_id bigint REFERENCES hosts(id),
    labels jsonb,
    annotations jsonb
);
CREATE INDEX alerts_status_idx ON alerts (status, starts_at);
CREATE TABLE silences (
    id uuid PRIMARY KEY,
    matchers jsonb NOT NULL,
    created_by int REFERENCES users(id),
    starts_at timestamptz NOT NULL,
    ends_at timestamptz NOT NULL,
    comment text
);
CREATE TABLE dashboards (
    id serial PRIMARY KEY,
    title text NOT NULL,
    owner int REFERENCES users(id),
    body bytea
);
CREATE VIEW firing_alerts AS
    SELECT a.id, a.fingerprint, h.name AS host FROM alerts a JOIN hosts h ON h.id = a.host_id
    WHERE a.status = 'firing';
";
