//! The StackState lab: moto_server (a real S3 API) on loopback, a real VictoriaMetrics
//! (Debian's victoria-metrics: victoria-metrics, vmbackup, vmrestore) whose "pod" is
//! started and stopped by the kubectl stand-in's scale hook (tests/lab/stackstate/
//! vm-instance.sh), the kubectl stand-in's cluster (tests/standins/kubectl) with the chart's
//! job templates in a configmap, and stand-ins for what cannot run here: StackGraph and
//! Elasticsearch restore job containers (restore-job-standin), Elasticsearch's HTTP API
//! (elasticsearch-standin.py) and clickhouse-backup. Every process stops in a Drop guard.

#![allow(dead_code)]

use super::common::{free_port, output_of, repo_root};
use std::collections::BTreeMap;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const BUCKET: &str = "sts-victoria-metrics-backup";
pub const S3_KEY: &str = "lab-key";
pub const S3_SECRET: &str = "lab-secret";

pub fn lab_file(name: &str) -> PathBuf {
    repo_root().join("tests/lab/stackstate").join(name)
}

/// Tools the non-VictoriaMetrics part needs, each with its package.
pub fn missing_base_tools() -> Vec<String> {
    [
        ("python3", "python3"),
        ("curl", "curl"),
        ("sh", "dash"),
        ("pgrep", "procps"),
    ]
    .iter()
    .filter(|(t, _)| !super::common::have(t))
    .map(|(t, p)| format!("{t} (Debian package {p})"))
    .collect()
}

/// Why the VictoriaMetrics part cannot run here, if it cannot.
pub fn vm_unavailable() -> Option<String> {
    let mut missing: Vec<String> = ["victoria-metrics", "vmbackup", "vmrestore"]
        .iter()
        .filter(|t| !super::common::have(t))
        .map(|t| format!("{t} (Debian package victoria-metrics)"))
        .collect();
    if !super::common::have("moto_server") {
        missing.push("moto_server (PyPI package moto[server])".into());
    }
    (!missing.is_empty()).then(|| format!("missing {}", missing.join(", ")))
}

/// A moto_server on a free loopback port; its process group is killed on drop.
pub struct Moto {
    pub port: u16,
    child: Child,
}

impl Moto {
    pub fn start(log: &Path) -> Moto {
        let port = free_port();
        let log = std::fs::File::create(log).expect("moto log");
        let child = Command::new("moto_server")
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .process_group(0)
            .spawn()
            .expect("start moto_server (PyPI package moto[server])");
        let moto = Moto { port, child };
        wait_port(port, "moto_server");
        moto
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn create_bucket(&self, bucket: &str) {
        output_of(Command::new("curl").args([
            "-sf",
            "-X",
            "PUT",
            &format!("{}/{bucket}", self.endpoint()),
        ]))
        .unwrap_or_else(|e| panic!("create bucket {bucket} on moto: {e}"));
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = nix::sys::signal::killpg(
            nix::unistd::Pid::from_raw(self.child.id() as i32),
            nix::sys::signal::Signal::SIGKILL,
        );
        let _ = self.child.wait();
    }
}

pub fn wait_port(port: u16, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "{what} did not listen on {port} within 30s"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// One VictoriaMetrics instance, started and stopped by vm-instance.sh (the same command
/// the kubectl stand-in runs when its statefulset is scaled).
pub struct Vm {
    pub data: PathBuf,
    pub port: u16,
}

impl Vm {
    pub fn new(data: PathBuf) -> Vm {
        std::fs::create_dir_all(&data).expect("vm data dir");
        Vm {
            data,
            port: free_port(),
        }
    }

    /// The statefulset's on_scale command.
    pub fn hook(&self) -> Vec<String> {
        vec![
            lab_file("vm-instance.sh").display().to_string(),
            self.data.display().to_string(),
            self.port.to_string(),
        ]
    }

    pub fn scale(&self, replicas: u32) {
        let hook = self.hook();
        output_of(
            Command::new(&hook[0])
                .args(&hook[1..])
                .env("REPLICAS", replicas.to_string()),
        )
        .unwrap_or_else(|e| panic!("vm-instance.sh REPLICAS={replicas}: {e}"));
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn running(&self) -> bool {
        Command::new("curl")
            .args(["-sf", &format!("{}/health", self.url())])
            .output()
            .is_ok_and(|o| o.status.success())
    }

    /// Imports Prometheus text-format samples and flushes them to disk.
    pub fn import(&self, text: &str) {
        let file = self.data.with_extension("import.txt");
        std::fs::write(&file, text).expect("import file");
        output_of(Command::new("curl").args([
            "-sf",
            "--data-binary",
            &format!("@{}", file.display()),
            &format!("{}/api/v1/import/prometheus", self.url()),
        ]))
        .unwrap_or_else(|e| panic!("import into VictoriaMetrics: {e}"));
        self.flush();
    }

    pub fn flush(&self) {
        output_of(
            Command::new("curl").args(["-sf", &format!("{}/internal/force_flush", self.url())]),
        )
        .unwrap_or_else(|e| panic!("force_flush: {e}"));
    }

    pub fn delete_series(&self, selector: &str) {
        output_of(Command::new("curl").args([
            "-sfg",
            "-X",
            "POST",
            &format!(
                "{}/api/v1/admin/tsdb/delete_series?match[]={selector}",
                self.url()
            ),
        ]))
        .unwrap_or_else(|e| panic!("delete_series {selector}: {e}"));
    }

    /// Every `lab_*` series: its labels -> [(timestamp, value)], from /api/v1/export.
    pub fn series(&self) -> BTreeMap<String, Vec<(i64, String)>> {
        let text = output_of(Command::new("curl").args([
            "-sfg",
            &format!(
                "{}/api/v1/export?match[]={{__name__=~\"lab_.*\"}}",
                self.url()
            ),
        ]))
        .unwrap_or_else(|e| panic!("export from VictoriaMetrics: {e}"));
        let mut out = BTreeMap::new();
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            let v: serde_json::Value =
                serde_json::from_str(line).unwrap_or_else(|e| panic!("export line {line}: {e}"));
            let labels: BTreeMap<String, String> = v["metric"]
                .as_object()
                .map(|m| {
                    m.iter()
                        .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                        .collect()
                })
                .unwrap_or_default();
            let ts = v["timestamps"].as_array().cloned().unwrap_or_default();
            let vals = v["values"].as_array().cloned().unwrap_or_default();
            let mut points: Vec<(i64, String)> = ts
                .iter()
                .zip(vals.iter())
                .map(|(t, x)| (t.as_i64().unwrap_or(0), x.to_string()))
                .collect();
            points.sort();
            out.entry(format!("{labels:?}"))
                .or_insert_with(Vec::new)
                .extend(points);
        }
        out
    }
}

impl Drop for Vm {
    fn drop(&mut self) {
        let hook = self.hook();
        let _ = Command::new(&hook[0])
            .args(&hook[1..])
            .env("REPLICAS", "0")
            .output();
    }
}

/// The Elasticsearch HTTP stand-in.
pub struct Es {
    pub port: u16,
    pub state: PathBuf,
    pub log: PathBuf,
    child: Child,
}

impl Es {
    pub fn start(dir: &Path, indices: &[&str]) -> Es {
        let state = dir.join("es-indices.json");
        let log = dir.join("es-requests.log");
        let initial: BTreeMap<&str, serde_json::Value> = indices
            .iter()
            .map(|i| (*i, serde_json::json!({"docs.count": "100"})))
            .collect();
        std::fs::write(&state, serde_json::to_string(&initial).expect("json")).expect("es state");
        std::fs::write(&log, "").expect("es log");
        let port = free_port();
        let child = Command::new("python3")
            .arg(lab_file("elasticsearch-standin.py"))
            .args(["--port", &port.to_string()])
            .arg("--state")
            .arg(&state)
            .arg("--log")
            .arg(&log)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .expect("start the Elasticsearch stand-in");
        wait_port(port, "the Elasticsearch stand-in");
        Es {
            port,
            state,
            log,
            child,
        }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn indices(&self) -> BTreeMap<String, serde_json::Value> {
        serde_json::from_slice(&std::fs::read(&self.state).expect("es state")).expect("es json")
    }

    pub fn requests(&self) -> Vec<String> {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }
}

impl Drop for Es {
    fn drop(&mut self) {
        let _ = nix::sys::signal::killpg(
            nix::unistd::Pid::from_raw(self.child.id() as i32),
            nix::sys::signal::Signal::SIGKILL,
        );
        let _ = self.child.wait();
    }
}

/// The kubectl stand-in's cluster state file.
pub struct Cluster {
    pub state: PathBuf,
    pub namespace: String,
}

impl Cluster {
    pub fn read(&self) -> serde_json::Value {
        serde_json::from_slice(&std::fs::read(&self.state).expect("kubectl state"))
            .expect("kubectl state json")
    }

    pub fn write(&self, v: &serde_json::Value) {
        std::fs::write(&self.state, serde_json::to_string_pretty(v).expect("json"))
            .expect("kubectl state");
    }

    /// Replica counts of every deployment and statefulset, as `kind/name`.
    pub fn replicas(&self) -> BTreeMap<String, u64> {
        let state = self.read();
        let ns = &state["namespaces"][&self.namespace];
        let mut out = BTreeMap::new();
        for (kind, store) in [
            ("deployment", "deployments"),
            ("statefulset", "statefulsets"),
        ] {
            if let Some(items) = ns[store].as_object() {
                for (name, obj) in items {
                    out.insert(
                        format!("{kind}/{name}"),
                        obj["replicas"].as_u64().unwrap_or(1),
                    );
                }
            }
        }
        out
    }

    pub fn jobs(&self) -> Vec<String> {
        self.read()["namespaces"][&self.namespace]["jobs"]
            .as_object()
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default()
    }

    /// Every kubectl invocation so far, as the argv joined with spaces.
    pub fn calls(&self) -> Vec<String> {
        self.read()["calls"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|c| {
                        c.as_array()
                            .map(|w| {
                                w.iter()
                                    .map(|x| x.as_str().unwrap_or_default())
                                    .collect::<Vec<_>>()
                                    .join(" ")
                            })
                            .unwrap_or_default()
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    pub fn clear_calls(&self) {
        let mut s = self.read();
        s["calls"] = serde_json::json!([]);
        self.write(&s);
    }
}
