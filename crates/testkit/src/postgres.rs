//! A real PostgreSQL 15 for a test: `initdb` into a temp dir, `postgres` on a free loopback
//! port, scram-sha-256 over TCP, stopped by an immediate shutdown (SIGQUIT) on drop. As root
//! (CI) it runs as the `postgres` user through `runuser`, since PostgreSQL refuses root.

use crate::{free_port, is_root};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const PG_BIN: &str = "/usr/lib/postgresql/15/bin";

fn as_server_user(program: &str) -> Command {
    if is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--", program]);
        c
    } else {
        Command::new(program)
    }
}

pub struct Postgres {
    pub port: u16,
    /// The `postgres` superuser's password.
    pub password: String,
    child: Child,
    data: PathBuf,
    dir: tempfile::TempDir,
}

impl Postgres {
    /// Starts a server whose superuser `postgres` has `password`; the error names what is
    /// missing (a package, the `postgres` user) or what failed, with the server's log.
    pub fn start(password: &str) -> Result<Postgres, String> {
        for tool in ["initdb", "postgres", "pg_dump"] {
            let p = Path::new(PG_BIN).join(tool);
            if !p.is_file() {
                return Err(format!(
                    "{} is missing: install the Debian package postgresql-15",
                    p.display()
                ));
            }
        }
        if Command::new("psql").arg("--version").output().is_err() {
            return Err("psql is missing: install the Debian package postgresql-client-15".into());
        }
        if is_root() {
            if !Command::new("id")
                .args(["-u", "postgres"])
                .output()
                .is_ok_and(|o| o.status.success())
            {
                return Err(
                    "running as root, PostgreSQL needs a `postgres` user to run as \
                     (install postgresql-15, which creates it)"
                        .into(),
                );
            }
            if !Command::new("runuser")
                .arg("--version")
                .output()
                .is_ok_and(|o| o.status.success())
            {
                return Err("running as root, starting PostgreSQL as `postgres` needs \
                     `runuser` (util-linux)"
                    .into());
            }
        }
        let dir = tempfile::tempdir().map_err(|e| format!("temp dir: {e}"))?;
        let data = dir.path().join("data");
        let sock = dir.path().join("sock");
        std::fs::create_dir(&sock).map_err(|e| format!("socket dir: {e}"))?;
        let pwfile = dir.path().join("pwfile");
        std::fs::write(&pwfile, password).map_err(|e| format!("password file: {e}"))?;
        if is_root() {
            let ok = Command::new("chown")
                .args(["-R", "postgres:"])
                .arg(dir.path())
                .status()
                .is_ok_and(|s| s.success());
            if !ok {
                return Err(format!(
                    "chown of {} to postgres failed",
                    dir.path().display()
                ));
            }
        }
        let out = as_server_user(&format!("{PG_BIN}/initdb"))
            .arg("-D")
            .arg(&data)
            .args(["-U", "postgres", "-E", "UTF8", "--locale=C", "-N"])
            .args(["--auth-local=trust", "--auth-host=scram-sha-256"])
            .arg(format!("--pwfile={}", pwfile.display()))
            .output()
            .map_err(|e| format!("run initdb: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "initdb failed:\n{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        let port = free_port();
        let log = std::fs::File::create(dir.path().join("server.log"))
            .map_err(|e| format!("log file: {e}"))?;
        let child = as_server_user(&format!("{PG_BIN}/postgres"))
            .arg("-D")
            .arg(&data)
            .args(["-p", &port.to_string(), "-k"])
            .arg(&sock)
            .args(["-c", "listen_addresses=127.0.0.1", "-c", "fsync=off"])
            .args(["-c", "full_page_writes=off", "-c", "synchronous_commit=off"])
            .stdin(Stdio::null())
            .stdout(log.try_clone().map_err(|e| format!("log file: {e}"))?)
            .stderr(log)
            .spawn()
            .map_err(|e| format!("start postgres: {e}"))?;
        let pg = Postgres {
            port,
            password: password.to_string(),
            child,
            data,
            dir,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while !pg
            .psql_as("postgres", password, "postgres", "SELECT 1")
            .is_ok_and(|o| o.trim() == "1")
        {
            if Instant::now() > deadline {
                return Err(format!(
                    "PostgreSQL did not accept connections within 30s; its log:\n{}",
                    std::fs::read_to_string(pg.dir.path().join("server.log")).unwrap_or_default()
                ));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Ok(pg)
    }

    /// Runs SQL with the real psql as `user`; the error is psql's stderr.
    pub fn psql_as(
        &self,
        user: &str,
        password: &str,
        db: &str,
        sql: &str,
    ) -> Result<String, String> {
        let out = Command::new("psql")
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
            .env("PGCONNECT_TIMEOUT", "5")
            .output()
            .map_err(|e| format!("psql (install postgresql-client-15): {e}"))?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).into_owned())
        }
    }

    /// SQL as the superuser; the error is psql's stderr.
    pub fn superuser_raw(&self, db: &str, sql: &str) -> Result<String, String> {
        self.psql_as("postgres", &self.password, db, sql)
    }

    /// SQL as the superuser; panics naming the statement on failure.
    pub fn superuser(&self, db: &str, sql: &str) -> String {
        self.superuser_raw(db, sql)
            .unwrap_or_else(|e| panic!("psql {sql:?} on {db} failed: {e}"))
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        // SIGQUIT to the postmaster is an immediate shutdown; runuser then exits with it.
        let pid = std::fs::read_to_string(self.data.join("postmaster.pid"))
            .ok()
            .and_then(|s| s.lines().next().and_then(|l| l.trim().parse::<i32>().ok()));
        let signal = |p: i32, s| {
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(p), s);
        };
        if let Some(pid) = pid {
            signal(pid, nix::sys::signal::Signal::SIGQUIT);
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            match self.child.try_wait() {
                Ok(Some(_)) | Err(_) => break,
                Ok(None) if Instant::now() > deadline => {
                    if let Some(pid) = pid {
                        signal(pid, nix::sys::signal::Signal::SIGKILL);
                    }
                    let _ = self.child.kill();
                    let _ = self.child.wait();
                    break;
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            }
        }
    }
}
