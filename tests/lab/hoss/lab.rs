//! The Hoss lab (issue 11), written from the vendor contract in docs/plans/hoss.md:
//!
//! - REAL: Docker (containers named `<project>_<service>_1` and volumes
//!   `<project>_auth-secrets`, `<project>_ldap-vol0`, `<project>_ldap-vol1`, as
//!   docker-compose names them), PostgreSQL 15 in the `db` container with both databases
//!   (hoss_core, hoss_auth) and the image's init-script contract (tests/lab/hoss/pg-entrypoint.sh),
//!   OpenLDAP slapd in the `ldap` container with its data and cn=config in the two volumes
//!   (ldap-entrypoint.sh), `make`, busybox.
//! - STAND-INS: `hossadm` (tests/lab/hoss/hossadm), the server directory's Makefile
//!   (tests/lab/hoss/Makefile), OpenSearch (opensearch-standin.py), the core service's
//!   /core/v1/discover (core-standin.py), the auth service's key generation.
//!
//! The compose project is unique per drill (`hosslab<pid>`), so a real installation's
//! `server_*` containers and volumes are never touched. Containers run the local images
//! built by tests/lab/hoss/images.sh with this machine's /usr mounted read-only. Everything
//! is removed by the Drop guard.

#![allow(dead_code)]

use super::common::{free_port, output_of, repo_root};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

pub const PG_PASSWORD: &str = "hoss-pg-pw-5e1f";
pub const LDAP_PASSWORD: &str = "hoss-ldap-pw-77ad";
pub const LDAP_DOMAIN: &str = "hoss.lab.local";
pub const SUFFIX: &str = "dc=hoss,dc=lab,dc=local";
pub const VERSION: &str = "0.3.1";

/// Missing tools, each with the Debian package that provides it.
pub fn missing_tools() -> Vec<String> {
    let mut missing = Vec::new();
    for (tool, pkg) in [
        ("docker", "docker.io"),
        ("/usr/lib/postgresql/15/bin/postgres", "postgresql-15"),
        ("/usr/lib/postgresql/15/bin/pg_dump", "postgresql-client-15"),
        ("/usr/sbin/slapd", "slapd"),
        ("/usr/sbin/slaptest", "slapd"),
        ("ldapsearch", "ldap-utils"),
        ("ldapadd", "ldap-utils"),
        ("/bin/busybox", "busybox-static"),
        ("make", "make"),
        ("python3", "python3"),
        ("curl", "curl"),
        ("openssl", "openssl"),
        ("setpriv", "util-linux"),
    ] {
        if !super::common::have(tool) {
            missing.push(format!("{tool} (Debian package {pkg})"));
        }
    }
    if missing.is_empty()
        && !Command::new("docker")
            .arg("info")
            .output()
            .is_ok_and(|o| o.status.success())
    {
        missing.push("a running Docker engine (docker info failed)".into());
    }
    missing
}

pub fn lab_dir() -> PathBuf {
    repo_root().join("tests/lab/hoss")
}

pub struct HossLab {
    pub root: tempfile::TempDir,
    pub project: String,
    pub db_port: u16,
    pub search_port: u16,
    pub core_port: u16,
    pub ldap_port: u16,
}

impl HossLab {
    pub fn new() -> HossLab {
        output_of(&mut Command::new(lab_dir().join("images.sh")))
            .unwrap_or_else(|e| panic!("tests/lab/hoss/images.sh: {e}"));
        let root = tempfile::tempdir().expect("temp dir");
        let lab = HossLab {
            root,
            project: format!("hosslab{}", std::process::id()),
            db_port: free_port(),
            search_port: free_port(),
            core_port: free_port(),
            ldap_port: free_port(),
        };
        let pgbin = lab.root.path().join("pgbin");
        std::fs::create_dir_all(&pgbin).expect("pgbin");
        for b in ["pg_dump", "pg_restore", "psql", "pg_isready"] {
            std::os::unix::fs::symlink(format!("/usr/lib/postgresql/15/bin/{b}"), pgbin.join(b))
                .expect("symlink");
        }
        let server = lab.server();
        std::fs::create_dir_all(&server).expect("server dir");
        std::fs::copy(lab_dir().join("Makefile"), server.join("Makefile")).expect("Makefile");
        lab.set_repository_version(VERSION);
        std::fs::write(
            server.join("lab.mk"),
            format!(
                "LAB_PROJECT={}\nLAB_DIR={}\nLAB_IMAGE=opsplan-lab/hoss-base:latest\nLAB_PGBIN={}\n\
                 LAB_DB_PORT={}\nLAB_SEARCH_PORT={}\nLAB_CORE_PORT={}\nLAB_LDAP_PORT={}\n",
                lab.project,
                lab_dir().display(),
                pgbin.display(),
                lab.db_port,
                lab.search_port,
                lab.core_port,
                lab.ldap_port
            ),
        )
        .expect("lab.mk");
        lab
    }

    pub fn home(&self) -> PathBuf {
        self.root.path().join("home")
    }
    pub fn hoss(&self) -> PathBuf {
        self.home().join(".hoss")
    }
    pub fn backup_root(&self) -> PathBuf {
        self.hoss().join("backup")
    }
    pub fn server(&self) -> PathBuf {
        self.root.path().join("hoss/server")
    }
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.core_port)
    }
    pub fn volume(&self, name: &str) -> String {
        format!("{}_{name}", self.project)
    }
    pub fn container(&self, service: &str) -> String {
        format!("{}_{service}_1", self.project)
    }

    pub fn set_repository_version(&self, v: &str) {
        std::fs::write(self.server().join("VERSION"), format!("{v}\n")).expect("VERSION");
    }

    /// What `make env` and `make config` leave in ~/.hoss (server/Makefile): the .env keys
    /// hossadm and the compose files read, the configuration folders, the data folders and
    /// the backup root layout.
    pub fn configure(&self) {
        let h = self.hoss();
        let env = format!(
            "SERVICES=opensearch ldap db auth core sync\nHOSS_DIR={h}\nLETS_ENCRYPT_ENABLED=false\n\
             EXTERNAL_HOSTNAME=http://localhost\nDOMAIN=localhost\nNAS_ROOT={h}/data/nas\n\
             DB_ROOT={h}/data/db\nPOSTGRES_USER=postgres\nPOSTGRES_PASSWORD={PG_PASSWORD}\n\
             DB_INIT_SCRIPTS={h}/core/db-init-scripts\nPOSTGRES_CORE_DB=hoss_core\nPOSTGRES_AUTH_DB=hoss_auth\n\
             LDAP_ADMIN_PASSWORD={LDAP_PASSWORD}\nLDAP_ORGANISATION=Lab Org Inc.\nLDAP_DOMAIN={LDAP_DOMAIN}\n\
             UID={uid}\nGID={gid}\nBACKUP_ROOT={h}/backup\n",
            h = h.display(),
            uid = own_ids().0,
            gid = own_ids().1,
        );
        for d in [
            "core/db-init-scripts",
            "auth/certificates",
            "sync",
            "opensearch",
            "ui",
            "data/db",
            "data/opensearch",
            "data/events",
            "data/nas/data",
            "backup/backups",
            "backup/.db",
            "backup/.opensearch",
        ] {
            std::fs::create_dir_all(h.join(d)).expect("mkdir");
        }
        let files: [(&str, String); 10] = [
            (".env", env),
            ("traefik.yaml", "entryPoints:\n  web:\n    address: ':80'\n".into()),
            ("core/config.yaml", "server:\n  dev: false\n".into()),
            ("core/aws_credentials", "[default]\naws_access_key_id = lab\n".into()),
            ("auth/config.yaml", "client_secret: lab-oidc-secret-1f2e\n".into()),
            ("auth/config-dex.yaml", format!("ldap:\n  baseDN: {SUFFIX}\n")),
            (
                "auth/config-ldap.ldif",
                format!("dn: ou=People,{SUFFIX}\nobjectClass: organizationalUnit\nou: People\n\ndn: ou=Groups,{SUFFIX}\nobjectClass: organizationalUnit\nou: Groups\n"),
            ),
            ("sync/config.yaml", "sync:\n  enabled: true\n".into()),
            ("opensearch/opensearch.yaml", "path.repo: [\"/mnt/snapshots\"]\n".into()),
            ("ui/config.json", "{\"title\": \"Lab Hoss\"}\n".into()),
        ];
        for (rel, text) in files {
            std::fs::write(h.join(rel), text).expect("config file");
        }
        std::fs::copy(
            lab_dir().join("db-init-scripts/create-databases.sh"),
            h.join("core/db-init-scripts/create-databases.sh"),
        )
        .expect("create-databases.sh");
        std::fs::write(h.join("data/nas/data/object-1.bin"), vec![7u8; 4096]).expect("nas");
    }

    pub fn make(&self, args: &[&str]) -> Result<String, String> {
        output_of(
            Command::new("make")
                .arg("-C")
                .arg(self.server())
                .args(args)
                .env("HOME", self.home()),
        )
    }

    /// `make setup` (the external network), once per server.
    pub fn setup(&self) {
        self.make(&["setup"])
            .unwrap_or_else(|e| panic!("make setup: {e}"));
    }

    pub fn network(&self) -> String {
        format!("{}_web", self.project)
    }

    /// `make up DETACH=true`, then waits until every service answers.
    pub fn up(&self) {
        self.make(&["up", "DETACH=true"])
            .unwrap_or_else(|e| panic!("make up: {e}"));
        self.wait_ready();
    }

    pub fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            let db = self.psql("hoss_auth", "SELECT 1").is_ok();
            let ldap = self.ldap_entries().is_ok();
            let search = http_get(self.search_port, "/_cluster/health").is_ok();
            let core = http_get(self.core_port, "/core/v1/discover").is_ok();
            if db && ldap && search && core {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the lab server did not come up in 90s (db {db}, ldap {ldap}, search {search}, core {core}); db log:\n{}",
                self.logs("db")
            );
            std::thread::sleep(Duration::from_millis(300));
        }
    }

    pub fn logs(&self, service: &str) -> String {
        Command::new("docker")
            .args(["logs", &self.container(service)])
            .output()
            .map(|o| {
                format!(
                    "{}{}",
                    String::from_utf8_lossy(&o.stdout),
                    String::from_utf8_lossy(&o.stderr)
                )
            })
            .unwrap_or_default()
    }

    pub fn psql(&self, db: &str, sql: &str) -> Result<String, String> {
        output_of(
            Command::new("/usr/lib/postgresql/15/bin/psql")
                .args(["-h", "127.0.0.1", "-p", &self.db_port.to_string()])
                .args([
                    "-U",
                    "postgres",
                    "-d",
                    db,
                    "-v",
                    "ON_ERROR_STOP=1",
                    "-Atqc",
                    sql,
                ])
                .env("PGPASSWORD", PG_PASSWORD)
                .env("PGCONNECT_TIMEOUT", "3"),
        )
    }

    fn ldap_tool(&self, tool: &str) -> Command {
        let mut c = Command::new(tool);
        c.args([
            "-x",
            "-H",
            &format!("ldap://127.0.0.1:{}", self.ldap_port),
            "-D",
            &format!("cn=admin,{SUFFIX}"),
            "-w",
            LDAP_PASSWORD,
        ]);
        c
    }

    pub fn ldap_add(&self, ldif: &str) {
        let path = self.root.path().join("add.ldif");
        std::fs::write(&path, ldif).expect("ldif");
        output_of(self.ldap_tool("ldapadd").arg("-f").arg(&path)).unwrap_or_else(|e| panic!("{e}"));
    }

    /// Every entry below the suffix, normalised (dn -> sorted attribute lines).
    pub fn ldap_entries(&self) -> Result<BTreeMap<String, Vec<String>>, String> {
        let out = output_of(self.ldap_tool("ldapsearch").args([
            "-LLL",
            "-o",
            "ldif-wrap=no",
            "-b",
            SUFFIX,
            "(objectClass=*)",
        ]))?;
        Ok(normalise_ldif(&out))
    }

    /// Seeds both databases, LDAP people and groups, and search documents.
    pub fn seed(&self, rows: usize, people: usize) {
        self.psql(
            "hoss_core",
            &format!(
                "CREATE TABLE namespace (id serial PRIMARY KEY, name text NOT NULL);\
                 CREATE TABLE dataset (id serial PRIMARY KEY, namespace_id int REFERENCES namespace(id), name text, meta jsonb);\
                 INSERT INTO namespace (name) VALUES ('default'), ('lab');\
                 INSERT INTO dataset (namespace_id, name, meta) SELECT 1 + i % 2, 'ds-' || i, jsonb_build_object('i', i) FROM generate_series(1, {rows}) i;"
            ),
        )
        .unwrap_or_else(|e| panic!("seed hoss_core: {e}"));
        self.psql(
            "hoss_auth",
            "CREATE TABLE users (id serial PRIMARY KEY, username text UNIQUE, role text);\
             CREATE TABLE pats (id serial PRIMARY KEY, user_id int REFERENCES users(id), token_hash text);\
             INSERT INTO users (username, role) SELECT 'user' || i, CASE WHEN i = 1 THEN 'admin' ELSE 'user' END FROM generate_series(1, 25) i;\
             INSERT INTO pats (user_id, token_hash) SELECT i, md5('tok' || i) FROM generate_series(1, 25) i;",
        )
        .unwrap_or_else(|e| panic!("seed hoss_auth: {e}"));
        let mut ldif = String::new();
        for i in 0..people {
            ldif.push_str(&format!(
                "dn: cn=person{i},ou=People,{SUFFIX}\nobjectClass: inetOrgPerson\ncn: person{i}\nsn: Lab\nmail: person{i}@lab.example\n\n"
            ));
        }
        ldif.push_str(&format!(
            "dn: cn=admins,ou=Groups,{SUFFIX}\nobjectClass: groupOfNames\ncn: admins\nmember: cn=person0,ou=People,{SUFFIX}\n"
        ));
        self.ldap_add(&ldif);
        for i in 0..12 {
            http_put(
                self.search_port,
                &format!("/metadata-index/_doc/{i}"),
                &format!("{{\"key\": \"k{i}\", \"value\": \"v{i}\"}}"),
            )
            .unwrap_or_else(|e| panic!("seed search: {e}"));
        }
    }

    /// Per table of both databases: row count and an md5 of the ordered rows.
    pub fn db_digest(&self) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        for db in ["hoss_core", "hoss_auth"] {
            let tables = self
                .psql(
                    db,
                    "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1",
                )
                .unwrap_or_else(|e| panic!("{db}: {e}"));
            for t in tables.lines() {
                let v = self
                    .psql(
                        db,
                        &format!("SELECT count(*) || ' ' || coalesce(md5(string_agg(x::text, ',' ORDER BY x::text)), '') FROM {t} x"),
                    )
                    .unwrap_or_else(|e| panic!("{db}.{t}: {e}"));
                out.insert(format!("{db}.{t}"), v.trim().to_string());
            }
        }
        out
    }

    /// Search indices and their document counts.
    pub fn search_digest(&self) -> BTreeMap<String, String> {
        let body = http_get(self.search_port, "/_cat/indices?format=json")
            .unwrap_or_else(|e| panic!("search: {e}"));
        let v: serde_json::Value = serde_json::from_str(&body).expect("indices JSON");
        v.as_array()
            .map(|a| {
                a.iter()
                    .map(|i| {
                        (
                            i["index"].as_str().unwrap_or_default().to_string(),
                            i["docs.count"].as_str().unwrap_or_default().to_string(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// sha256 and mode of the auth service's private key, read in its volume.
    pub fn private_key(&self) -> String {
        output_of(Command::new("docker").args([
            "run",
            "--rm",
            "-v",
            &format!("{}:/mnt/auth:ro", self.volume("auth-secrets")),
            "busybox",
            "sh",
            "-c",
            "sha256sum /mnt/auth/private.pem | cut -d' ' -f1; stat -c %a /mnt/auth/private.pem",
        ]))
        .unwrap_or_else(|e| panic!("read private.pem: {e}"))
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" mode ")
    }

    /// The page's preparation of a restore on the same machine: make down, make reset, then
    /// remove by hand what is left (data/db etc. belong to the containers' users), keeping
    /// the backup directory (with the archives) and data/nas.
    pub fn reset_for_restore(&self) {
        self.make(&["down"])
            .unwrap_or_else(|e| panic!("make down: {e}"));
        // make reset removes ~/.hoss/data entirely; the object store data is kept aside
        // the way an operator would (the page: be very careful with data/nas).
        let nas_keep = self.root.path().join("nas-kept");
        let _ = std::fs::remove_dir_all(&nas_keep);
        std::fs::rename(self.hoss().join("data/nas"), &nas_keep).expect("keep data/nas");
        self.make(&["reset"])
            .unwrap_or_else(|e| panic!("make reset: {e}"));
        std::fs::create_dir_all(self.hoss().join("data")).expect("data");
        std::fs::rename(&nas_keep, self.hoss().join("data/nas")).expect("put data/nas back");
        for e in std::fs::read_dir(self.hoss())
            .expect("read ~/.hoss")
            .flatten()
        {
            let n = e.file_name();
            if n == "backup" || n == "data" {
                continue;
            }
            remove(&e.path());
        }
        for d in [".db", ".opensearch"] {
            let p = self.backup_root().join(d);
            remove(&p);
            std::fs::create_dir_all(&p).expect("recreate");
        }
    }

    /// Files of ~/.hoss that are configuration (what hossadm backs up and more):
    /// relative path -> sha256.
    pub fn config_digest(&self) -> BTreeMap<String, String> {
        super::common::tree_digest(&self.hoss(), |rel| {
            rel.starts_with("backup") || rel.starts_with("data")
        })
        .into_iter()
        .map(|(k, (sha, _))| (k, sha))
        .collect()
    }

    pub fn archives(&self) -> Vec<PathBuf> {
        let mut v: Vec<PathBuf> = std::fs::read_dir(self.backup_root().join("backups"))
            .map(|it| {
                it.flatten()
                    .map(|e| e.path())
                    .filter(|p| p.to_string_lossy().ends_with(".tar.gz"))
                    .collect()
            })
            .unwrap_or_default();
        v.sort();
        v
    }
}

impl Drop for HossLab {
    fn drop(&mut self) {
        if let Ok(o) = Command::new("docker")
            .args(["ps", "-aq", "--filter"])
            .arg(format!("label=org.opsplan.lab.project={}", self.project))
            .output()
        {
            let ids: Vec<String> = String::from_utf8_lossy(&o.stdout)
                .split_whitespace()
                .map(str::to_string)
                .collect();
            if !ids.is_empty() {
                let _ = Command::new("docker")
                    .args(["rm", "-f"])
                    .args(&ids)
                    .output();
            }
        }
        for v in ["auth-secrets", "ldap-vol0", "ldap-vol1"] {
            let _ = Command::new("docker")
                .args(["volume", "rm", "-f", &self.volume(v)])
                .output();
        }
        let _ = Command::new("docker")
            .args(["network", "rm", &self.network()])
            .output();
    }
}

/// This process's effective uid and gid: the owner of a file it creates.
fn own_ids() -> (u32, u32) {
    use std::os::unix::fs::MetadataExt;
    let probe = tempfile::NamedTempFile::new().expect("temp file");
    let m = probe.as_file().metadata().expect("metadata");
    (m.uid(), m.gid())
}

fn remove(p: &Path) {
    if p.is_dir() {
        std::fs::remove_dir_all(p).unwrap_or_else(|e| panic!("remove {}: {e}", p.display()));
    } else if p.exists() {
        std::fs::remove_file(p).unwrap_or_else(|e| panic!("remove {}: {e}", p.display()));
    }
}

pub fn http_get(port: u16, path: &str) -> Result<String, String> {
    output_of(
        Command::new("curl")
            .args(["-sf", "--max-time", "5"])
            .arg(format!("http://127.0.0.1:{port}{path}")),
    )
}

pub fn http_put(port: u16, path: &str, body: &str) -> Result<String, String> {
    output_of(
        Command::new("curl")
            .args([
                "-sf",
                "--max-time",
                "5",
                "-X",
                "PUT",
                "-H",
                "Content-Type: application/json",
                "-d",
                body,
            ])
            .arg(format!("http://127.0.0.1:{port}{path}")),
    )
}

pub fn normalise_ldif(text: &str) -> BTreeMap<String, Vec<String>> {
    let mut out = BTreeMap::new();
    for block in text.split("\n\n") {
        let mut dn = None;
        let mut attrs = Vec::new();
        for line in block.lines() {
            if let Some(d) = line.strip_prefix("dn: ") {
                dn = Some(d.to_lowercase());
            } else if !line.trim().is_empty() {
                attrs.push(line.to_string());
            }
        }
        if let Some(dn) = dn {
            attrs.sort();
            out.insert(dn, attrs);
        }
    }
    out
}
