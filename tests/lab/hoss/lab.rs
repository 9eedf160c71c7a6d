//! The Hoss lab: a real PostgreSQL 15 and a real OpenLDAP slapd on free loopback ports in
//! temp folders, a ~/.hoss stand-in folder with configuration and private keys, and a
//! server folder whose Makefile (tests/lab/hoss/Makefile, a stand-in) starts a health
//! endpoint (tests/lab/hoss/health-server.py, a stand-in). Every process is stopped by a
//! Drop guard.

#![allow(dead_code)]

use super::common::{free_port, is_root, output_of, repo_root};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const PG_BIN: &str = "/usr/lib/postgresql/15/bin";
const PG_SUPER_PASSWORD: &str = "lab-super-pw-81c2";

/// Missing tools, each with the Debian package that provides it.
pub fn missing_tools() -> Vec<String> {
    let mut missing = Vec::new();
    for (tool, pkg) in [
        ("/usr/lib/postgresql/15/bin/initdb", "postgresql-15"),
        ("/usr/lib/postgresql/15/bin/postgres", "postgresql-15"),
        ("psql", "postgresql-client-15"),
        ("pg_dump", "postgresql-client-15"),
        ("pg_restore", "postgresql-client-15"),
        ("/usr/sbin/slapd", "slapd"),
        ("ldapsearch", "ldap-utils"),
        ("ldapadd", "ldap-utils"),
        ("ldapdelete", "ldap-utils"),
        ("make", "make"),
        ("python3", "python3"),
    ] {
        if !super::common::have(tool) {
            missing.push(format!("{tool} (Debian package {pkg})"));
        }
    }
    if is_root() && !super::common::have("runuser") {
        missing.push("runuser (Debian package util-linux)".into());
    }
    missing
}

fn as_postgres(program: &str) -> Command {
    if is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--", program]);
        c
    } else {
        Command::new(program)
    }
}

/// A PostgreSQL 15 server (initdb in a temp dir, scram-sha-256 over TCP on loopback).
pub struct Pg {
    pub port: u16,
    child: Option<Child>,
    data: PathBuf,
    dir: tempfile::TempDir,
}

impl Pg {
    pub fn start() -> Pg {
        let dir = tempfile::tempdir().expect("temp dir");
        let data = dir.path().join("data");
        let pwfile = dir.path().join("pwfile");
        std::fs::create_dir(dir.path().join("sock")).expect("socket dir");
        std::fs::write(&pwfile, PG_SUPER_PASSWORD).expect("password file");
        if is_root() {
            let st = Command::new("chown")
                .args(["-R", "postgres:"])
                .arg(dir.path())
                .status()
                .expect("chown");
            assert!(st.success(), "chown {} to postgres", dir.path().display());
        }
        let initdb = as_postgres(&format!("{PG_BIN}/initdb"))
            .arg("-D")
            .arg(&data)
            .args(["-U", "postgres", "-E", "UTF8", "--locale=C", "-N"])
            .args(["--auth-local=trust", "--auth-host=scram-sha-256"])
            .arg(format!("--pwfile={}", pwfile.display()))
            .output()
            .expect("run initdb");
        assert!(
            initdb.status.success(),
            "initdb failed: {}",
            String::from_utf8_lossy(&initdb.stderr)
        );
        let mut pg = Pg {
            port: free_port(),
            child: None,
            data,
            dir,
        };
        pg.launch();
        pg
    }

    fn launch(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("server.log"))
            .expect("log file");
        let child = as_postgres(&format!("{PG_BIN}/postgres"))
            .arg("-D")
            .arg(&self.data)
            .args(["-p", &self.port.to_string(), "-k"])
            .arg(self.dir.path().join("sock"))
            .args(["-c", "listen_addresses=127.0.0.1", "-c", "fsync=off"])
            .args(["-c", "full_page_writes=off", "-c", "synchronous_commit=off"])
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log file"))
            .stderr(log)
            .spawn()
            .expect("start postgres");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        while self
            .sql_as("postgres", PG_SUPER_PASSWORD, "postgres", "SELECT 1")
            .is_err()
        {
            assert!(
                Instant::now() < deadline,
                "PostgreSQL did not accept connections within 30s; its log:\n{}",
                std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Stops the server (a real outage for a failure drill); `start_again` brings it back.
    pub fn stop(&mut self) {
        let pid = std::fs::read_to_string(self.data.join("postmaster.pid"))
            .ok()
            .and_then(|s| s.lines().next().and_then(|l| l.trim().parse::<i32>().ok()));
        if let Some(pid) = pid {
            // SIGINT: fast shutdown (clean, so the restart needs no recovery).
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGINT,
            );
        }
        if let Some(mut child) = self.child.take() {
            let deadline = Instant::now() + Duration::from_secs(15);
            loop {
                match child.try_wait() {
                    Ok(Some(_)) | Err(_) => break,
                    Ok(None) if Instant::now() > deadline => {
                        if let Some(pid) = pid {
                            let _ = nix::sys::signal::kill(
                                nix::unistd::Pid::from_raw(pid),
                                nix::sys::signal::Signal::SIGKILL,
                            );
                        }
                        let _ = child.kill();
                        let _ = child.wait();
                        break;
                    }
                    Ok(None) => std::thread::sleep(Duration::from_millis(20)),
                }
            }
        }
    }

    pub fn start_again(&mut self) {
        if self.child.is_none() {
            self.launch();
        }
    }

    pub fn sql_as(
        &self,
        user: &str,
        password: &str,
        db: &str,
        sql: &str,
    ) -> Result<String, String> {
        output_of(
            Command::new("psql")
                .args(["-X", "-At", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1"])
                .args([
                    "-p",
                    &self.port.to_string(),
                    "-U",
                    user,
                    "-d",
                    db,
                    "-c",
                    sql,
                ])
                .env("PGPASSWORD", password)
                .env("PGCONNECT_TIMEOUT", "2"),
        )
        .map(|s| s.trim_end().to_string())
    }

    /// SQL as the superuser; panics on failure.
    pub fn admin(&self, db: &str, sql: &str) -> String {
        self.sql_as("postgres", PG_SUPER_PASSWORD, db, sql)
            .unwrap_or_else(|e| panic!("psql {sql:?}: {e}"))
    }
}

impl Drop for Pg {
    fn drop(&mut self) {
        self.stop();
    }
}

/// An OpenLDAP slapd with a generated slapd.conf (mdb backend, the Debian schemas), in the
/// foreground (`-d 0`) so the guard owns the process.
pub struct Slapd {
    pub port: u16,
    pub suffix: String,
    pub admin_dn: String,
    pub password: String,
    child: Option<Child>,
    conf: PathBuf,
    dir: tempfile::TempDir,
}

impl Slapd {
    pub fn start(suffix: &str, password: &str) -> Slapd {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::create_dir(dir.path().join("db")).expect("db dir");
        let conf = dir.path().join("slapd.conf");
        let admin_dn = format!("cn=admin,{suffix}");
        std::fs::write(
            &conf,
            format!(
                "include /etc/ldap/schema/core.schema\n\
                 include /etc/ldap/schema/cosine.schema\n\
                 include /etc/ldap/schema/inetorgperson.schema\n\
                 include /etc/ldap/schema/nis.schema\n\
                 pidfile {dir}/slapd.pid\n\
                 modulepath /usr/lib/ldap\n\
                 moduleload back_mdb\n\
                 database mdb\n\
                 maxsize 104857600\n\
                 suffix \"{suffix}\"\n\
                 rootdn \"{admin_dn}\"\n\
                 rootpw {password}\n\
                 directory {dir}/db\n",
                dir = dir.path().display()
            ),
        )
        .expect("slapd.conf");
        let mut s = Slapd {
            port: free_port(),
            suffix: suffix.into(),
            admin_dn,
            password: password.into(),
            child: None,
            conf,
            dir,
        };
        s.launch();
        s
    }

    fn launch(&mut self) {
        let log = std::fs::File::create(self.dir.path().join("slapd.log")).expect("log");
        let child = Command::new("/usr/sbin/slapd")
            .args(["-d", "0", "-h", &format!("ldap://127.0.0.1:{}/", self.port)])
            .arg("-f")
            .arg(&self.conf)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("start slapd");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "slapd did not listen within 20s; its log:\n{}",
                std::fs::read_to_string(self.dir.path().join("slapd.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn uri(&self) -> String {
        format!("ldap://127.0.0.1:{}", self.port)
    }

    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(child.id() as i32),
                nix::sys::signal::Signal::SIGTERM,
            );
            let deadline = Instant::now() + Duration::from_secs(10);
            while matches!(child.try_wait(), Ok(None)) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    pub fn start_again(&mut self) {
        if self.child.is_none() {
            self.launch();
        }
    }

    fn tool(&self, tool: &str) -> Command {
        let mut c = Command::new(tool);
        c.args([
            "-x",
            "-H",
            &self.uri(),
            "-D",
            &self.admin_dn,
            "-w",
            &self.password,
        ]);
        c
    }

    /// ldapadd of LDIF text.
    pub fn add(&self, ldif: &str) {
        let path = self.dir.path().join("add.ldif");
        std::fs::write(&path, ldif).expect("ldif");
        output_of(self.tool("ldapadd").arg("-f").arg(&path)).unwrap_or_else(|e| panic!("{e}"));
    }

    /// Deletes every entry below the suffix (the suffix entry stays, as the server creates
    /// it at start).
    pub fn delete_below_suffix(&self) {
        let children = output_of(
            self.tool("ldapsearch")
                .args([
                    "-LLL",
                    "-o",
                    "ldif-wrap=no",
                    "-s",
                    "one",
                    "-b",
                    &self.suffix,
                ])
                .args(["(objectClass=*)", "1.1"]),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        for dn in children.lines().filter_map(|l| l.strip_prefix("dn: ")) {
            output_of(self.tool("ldapdelete").args(["-r", dn])).unwrap_or_else(|e| panic!("{e}"));
        }
    }

    /// Every entry of the tree, normalised: dn -> sorted attribute lines (base64 values
    /// kept as printed), so order of entries and attributes does not matter.
    pub fn entries(&self) -> BTreeMap<String, Vec<String>> {
        let text = output_of(self.tool("ldapsearch").args([
            "-LLL",
            "-o",
            "ldif-wrap=no",
            "-b",
            &self.suffix,
            "(objectClass=*)",
        ]))
        .unwrap_or_else(|e| panic!("{e}"));
        normalise_ldif(&text)
    }
}

impl Drop for Slapd {
    fn drop(&mut self) {
        self.stop();
    }
}

/// LDIF (unwrapped) -> dn -> sorted attribute lines; `dn::` (base64) dns are kept as is.
pub fn normalise_ldif(text: &str) -> BTreeMap<String, Vec<String>> {
    let mut out = BTreeMap::new();
    for block in text.split("\n\n") {
        let mut lines: Vec<String> = block
            .lines()
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .map(str::to_string)
            .collect();
        if lines.is_empty() {
            continue;
        }
        let dn = lines.remove(0).to_lowercase();
        lines.sort();
        out.insert(dn, lines);
    }
    out
}

/// The seed: a directory as Hoss's internal LDAP holds it (people, groups, service accounts).
pub fn seed_ldif(suffix: &str, people: usize) -> String {
    let mut s = format!(
        "dn: {suffix}\nobjectClass: dcObject\nobjectClass: organization\ndc: hoss\no: Hoss lab\n\n\
         dn: ou=people,{suffix}\nobjectClass: organizationalUnit\nou: people\n\n\
         dn: ou=groups,{suffix}\nobjectClass: organizationalUnit\nou: groups\n\n\
         dn: ou=services,{suffix}\nobjectClass: organizationalUnit\nou: services\n\n"
    );
    let mut members = String::new();
    for i in 0..people {
        s.push_str(&format!(
            "dn: uid=user{i:03},ou=people,{suffix}\nobjectClass: inetOrgPerson\n\
             objectClass: posixAccount\nuid: user{i:03}\ncn: User {i}\nsn: Number{i}\n\
             givenName: Lab\nmail: user{i:03}@hoss.local\nuidNumber: {}\ngidNumber: 5000\n\
             homeDirectory: /home/user{i:03}\nuserPassword: {{SSHA}}c2VlZC1oYXNoLXtpfQ{i:03}\n\
             description: Zoë Ünïcode user {i} (non-ASCII, so LDIF base64 is exercised)\n\n",
            10000 + i
        ));
        members.push_str(&format!("member: uid=user{i:03},ou=people,{suffix}\n"));
    }
    s.push_str(&format!(
        "dn: cn=hoss-admins,ou=groups,{suffix}\nobjectClass: groupOfNames\ncn: hoss-admins\n{members}\n\
         dn: cn=sync,ou=services,{suffix}\nobjectClass: inetOrgPerson\ncn: sync\nsn: service\n\
         userPassword: {{SSHA}}c3luYy1zZXJ2aWNl\n\n"
    ));
    s
}

/// The server folder: a copy of the Makefile stand-in and its lab.mk.
pub fn server_dir(dir: &Path, health_port: u16) {
    std::fs::create_dir_all(dir).expect("server dir");
    std::fs::copy(
        repo_root().join("tests/lab/hoss/Makefile"),
        dir.join("Makefile"),
    )
    .expect("copy the Makefile stand-in");
    std::fs::write(
        dir.join("lab.mk"),
        format!(
            "HEALTH_PORT := {health_port}\nHEALTH_SERVER := {}\n",
            repo_root()
                .join("tests/lab/hoss/health-server.py")
                .display()
        ),
    )
    .expect("lab.mk");
}

/// Stops the health server stand-in a plan started (pid file in the server folder).
pub fn stop_server(dir: &Path) {
    if let Some(pid) = std::fs::read_to_string(dir.join("server.pid"))
        .ok()
        .and_then(|s| s.trim().parse::<i32>().ok())
    {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGTERM,
        );
        let deadline = Instant::now() + Duration::from_secs(5);
        while nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None).is_ok()
            && Instant::now() < deadline
        {
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = std::fs::remove_file(dir.join("server.pid"));
    }
}

/// Guard stopping the health server stand-in whatever happens.
pub struct ServerGuard(pub PathBuf);

impl Drop for ServerGuard {
    fn drop(&mut self) {
        stop_server(&self.0);
    }
}

/// ~/.hoss: .env, configuration, private keys (mode 0600), object store data (data/nas,
/// never backed up, never touched by a restore) and the backup root with search index
/// snapshots in backup/.opensearch.
pub fn seed_hoss_dir(hoss: &Path, db_password: &str) {
    let w = |rel: &str, content: &[u8], mode: u32| {
        use std::os::unix::fs::PermissionsExt;
        let p = hoss.join(rel);
        std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        std::fs::write(&p, content).expect("write");
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).expect("chmod");
    };
    w(
        ".env",
        format!(
            "BACKUP_ROOT={}/backup\nDB_PASSWORD={db_password}\nHEALTH_CHECK_HOST=localhost\n",
            hoss.display()
        )
        .as_bytes(),
        0o600,
    );
    w(
        "config/core.yaml",
        b"auth:\n  provider: ldap\nsync:\n  enabled: true\n",
        0o644,
    );
    w(
        "config/nginx/hoss.conf",
        b"server { listen 443 ssl; }\n",
        0o644,
    );
    for (i, name) in ["keys/server.key", "keys/jwt-signing.key", "keys/sync.key"]
        .iter()
        .enumerate()
    {
        let mut body = String::from("-----BEGIN PRIVATE KEY-----\n");
        for line in 0..25 {
            let bytes: Vec<u8> = (0..48)
                .map(|b| ((b * 31 + line * 7 + i * 13) % 251) as u8)
                .collect();
            body.push_str(&hex::encode(bytes));
            body.push('\n');
        }
        body.push_str("-----END PRIVATE KEY-----\n");
        w(name, body.as_bytes(), 0o600);
    }
    w(
        "keys/server.crt",
        b"-----BEGIN CERTIFICATE-----\nlab\n-----END CERTIFICATE-----\n",
        0o644,
    );
    for i in 0..20 {
        w(
            &format!("data/nas/bucket-{}/object-{i:03}", i % 3),
            format!("object store payload {i}\n").repeat(50).as_bytes(),
            0o644,
        );
    }
    for i in 0..5 {
        w(
            &format!("backup/.opensearch/snapshots/index-{i}.dat"),
            format!("opensearch snapshot shard {i}\n")
                .repeat(200)
                .as_bytes(),
            0o644,
        );
    }
}

/// The database the plan dumps: role and database `hoss`, three related tables.
pub fn seed_db(pg: &Pg, password: &str, rows: usize) {
    pg.admin(
        "postgres",
        &format!("CREATE ROLE hoss LOGIN PASSWORD '{password}'"),
    );
    pg.admin("postgres", "CREATE DATABASE hoss OWNER hoss");
    let sql = format!(
        "CREATE TABLE users (id serial PRIMARY KEY, name text NOT NULL, email text UNIQUE, created timestamptz NOT NULL);
         CREATE TABLE datasets (id serial PRIMARY KEY, owner int REFERENCES users(id), name text, bucket text, size bigint, meta jsonb);
         CREATE TABLE api_keys (id serial PRIMARY KEY, user_id int REFERENCES users(id), key_hash bytea, expires date);
         INSERT INTO users (name, email, created)
           SELECT 'user ' || g, 'user' || g || '@hoss.local', timestamptz '2024-01-01 00:00+00' + g * interval '1 hour'
           FROM generate_series(1, {rows}) g;
         INSERT INTO datasets (owner, name, bucket, size, meta)
           SELECT 1 + g % {rows}, 'dataset-' || g, 'bucket-' || (g % 3), g * 1048576,
                  jsonb_build_object('tags', jsonb_build_array('t' || g % 7, 'lab'), 'note', 'Zoë ' || g)
           FROM generate_series(1, {rows} * 2) g;
         INSERT INTO api_keys (user_id, key_hash, expires)
           SELECT 1 + g % {rows}, sha256(('key-' || g)::bytea), date '2030-01-01' + g
           FROM generate_series(1, {rows}) g;"
    );
    pg.sql_as("hoss", password, "hoss", &sql)
        .unwrap_or_else(|e| panic!("seed the hoss database: {e}"));
}

pub const TABLES: [&str; 3] = ["users", "datasets", "api_keys"];

/// Per table: row count and md5 of every row's text in id order; plus the sequences' values.
pub fn db_digest(pg: &Pg, password: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for t in TABLES {
        let r = pg.sql_as(
            "hoss",
            password,
            "hoss",
            &format!("SELECT count(*) || ' rows, md5 ' || coalesce(md5(string_agg(t::text, E'\\n' ORDER BY t.id)), '-') FROM {t} t"),
        );
        out.insert(
            format!("table {t}"),
            r.unwrap_or_else(|e| format!("unreadable: {e}")),
        );
        let s = pg.sql_as(
            "hoss",
            password,
            "hoss",
            &format!("SELECT last_value FROM {t}_id_seq"),
        );
        out.insert(
            format!("sequence {t}_id_seq"),
            s.unwrap_or_else(|e| format!("unreadable: {e}")),
        );
    }
    out
}

/// Drops the database's content (the tables and their sequences).
pub fn wipe_db(pg: &Pg, password: &str) {
    pg.sql_as(
        "hoss",
        password,
        "hoss",
        "DROP TABLE api_keys, datasets, users CASCADE",
    )
    .unwrap_or_else(|e| panic!("wipe the hoss database: {e}"));
}
