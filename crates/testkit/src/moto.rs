//! moto's S3 server (PyPI `moto[server]`) for a test: a process group on a free loopback
//! port, its request log kept, killed on drop.

use crate::free_port;
use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use std::io::{BufRead, BufReader};
use std::net::TcpStream;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub struct Moto {
    pub port: u16,
    child: Child,
    log: Arc<Mutex<Vec<String>>>,
}

impl Moto {
    /// Starts moto_server with extra environment (e.g. `MOTO_S3_...` settings).
    pub fn start_with(env: &[(&str, &str)]) -> Result<Moto, String> {
        let port = free_port();
        let mut child = Command::new("moto_server")
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .process_group(0)
            .spawn()
            .map_err(|e| {
                format!(
                    "cannot start moto_server ({e}): install the PyPI package `moto[server]` \
                     (`pip install 'moto[server]'`) so that `moto_server` is on PATH"
                )
            })?;
        let log = Arc::new(Mutex::new(Vec::new()));
        if let Some(stderr) = child.stderr.take() {
            let log = log.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stderr).lines() {
                    let Ok(line) = line else { break };
                    if let Ok(mut l) = log.lock() {
                        l.push(line);
                    }
                }
            });
        }
        let moto = Moto { port, child, log };
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if Instant::now() > deadline {
                return Err(format!(
                    "moto_server did not listen on 127.0.0.1:{port} within 30s; its stderr:\n{}",
                    moto.log.lock().map(|l| l.join("\n")).unwrap_or_default()
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(moto)
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Request lines (`PUT /bucket/key HTTP/1.1`) in the order the server handled them.
    pub fn requests(&self) -> Vec<String> {
        self.log
            .lock()
            .map(|l| {
                l.iter()
                    .filter_map(|l| {
                        let start = l.find('"')? + 1;
                        let end = l[start..].find('"')? + start;
                        Some(l[start..end].to_string())
                    })
                    .collect()
            })
            .unwrap_or_default()
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = killpg(Pid::from_raw(self.child.id() as i32), Signal::SIGKILL);
        let _ = self.child.wait();
    }
}
