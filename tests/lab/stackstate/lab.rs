//! The StackState lab: moto_server (a real S3 API) on loopback, a real VictoriaMetrics
//! (Debian's victoria-metrics: victoria-metrics, vmbackup, vmrestore) whose "pod" is
//! started and stopped by the kubectl stand-in's scale hook (tests/lab/stackstate/
//! vm-instance.sh), the kubectl stand-in's cluster (tests/standins/kubectl) holding the
//! chart's job templates in its configmap, built from the recorded contract
//! (tests/lab/stackstate/chart-contract.json: the chart's names, keys, placeholders, env and
//! args), and stand-ins for what cannot run here: the chart's job container scripts
//! (restore-job-standin), Elasticsearch's HTTP API (elasticsearch-standin.py) and
//! clickhouse-backup in server mode with its REST API (clickhouse-backup). Every process
//! stops in a Drop guard.

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
        ("jq", "jq"),
        ("bash", "bash"),
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
    /// Elasticsearch with these indices, and snapshots by repository: repo -> snapshot ->
    /// the indices it holds.
    pub fn start(dir: &Path, indices: &[&str], snapshots: &[(&str, &str, &[&str])]) -> Es {
        let state = dir.join("es-cluster.json");
        let log = dir.join("es-requests.log");
        let initial: BTreeMap<&str, serde_json::Value> = indices
            .iter()
            .map(|i| (*i, serde_json::json!({"docs.count": "100"})))
            .collect();
        let mut snaps = serde_json::Map::new();
        for (repo, snap, held) in snapshots {
            let entry = snaps
                .entry(repo.to_string())
                .or_insert_with(|| serde_json::json!({}));
            entry[*snap] = serde_json::json!({"indices": held, "state": "SUCCESS"});
        }
        let cluster = serde_json::json!({"indices": initial, "snapshots": snaps});
        std::fs::write(&state, serde_json::to_string(&cluster).expect("json")).expect("es state");
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
        let v: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&self.state).expect("es state"))
                .expect("es json");
        serde_json::from_value(v["indices"].clone()).unwrap_or_default()
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

/// The StackState namespace in a kubectl stand-in cluster of the test kit.
pub struct Cluster {
    pub kube: opsplan_testkit::kubectl::Cluster,
    pub namespace: String,
}

impl Cluster {
    pub fn read(&self) -> serde_json::Value {
        self.kube.state()
    }

    pub fn write(&self, v: &serde_json::Value) {
        self.kube.write(v);
    }

    /// The state file the stand-in reads (`KUBECTL_STANDIN_STATE`).
    pub fn state_path(&self) -> PathBuf {
        self.kube.state_path()
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
        self.kube.names(&self.namespace, "jobs")
    }

    /// Every kubectl invocation so far, as the argv joined with spaces.
    pub fn calls(&self) -> Vec<String> {
        self.kube.calls()
    }

    pub fn clear_calls(&self) {
        let mut s = self.read();
        s["calls"] = serde_json::json!([]);
        self.write(&s);
    }
}

/// The chart's configmap of job templates, from the recorded contract: each Job as the chart
/// renders it (names, labels, backoffLimit, container name, env and args with the chart's
/// placeholders, claim names), with only the container's image and command replaced by the
/// lab's stand-in of the chart's script (`restore-job-standin <script>`), and `env` (the
/// chart's backup env vars as the lab needs them) added. JSON text, which is YAML.
pub fn chart_configmap(env: &[(&str, String)]) -> (String, serde_json::Value) {
    let contract: serde_json::Value = serde_json::from_slice(
        &std::fs::read(lab_file("chart-contract.json")).expect("chart-contract.json"),
    )
    .expect("chart-contract.json is JSON");
    let job = &contract["job"];
    let standin = lab_file("restore-job-standin").display().to_string();
    let mut data = serde_json::Map::new();
    for (key, t) in contract["templates"].as_object().expect("templates") {
        let name = t["name"].as_str().expect("name");
        let manifest = if t["kind"] == "PersistentVolumeClaim" {
            serde_json::json!({
                "apiVersion": "v1", "kind": "PersistentVolumeClaim",
                "metadata": {"name": name},
                "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}
            })
        } else {
            let mut envs: Vec<serde_json::Value> = env
                .iter()
                .map(|(k, v)| serde_json::json!({"name": k, "value": v}))
                .collect();
            for (k, v) in t["env"].as_object().into_iter().flatten() {
                envs.push(serde_json::json!({"name": k, "value": v}));
            }
            let mut volumes = Vec::new();
            if let Some(claim) = t["claim"].as_str() {
                volumes.push(serde_json::json!({"name": "data", "persistentVolumeClaim": {"claimName": claim}}));
            }
            serde_json::json!({
                "apiVersion": "batch/v1", "kind": "Job",
                "metadata": {"name": name, "labels": job["labels"],
                             "annotations": {"standin.opsplan/run": "local"}},
                "spec": {
                    "backoffLimit": job["backoffLimit"],
                    "ttlSecondsAfterFinished": job["ttlSecondsAfterFinished"],
                    "template": {
                        "metadata": {"labels": job["labels"]},
                        "spec": {
                            "restartPolicy": job["restartPolicy"],
                            "containers": [{
                                "name": t["container"],
                                "image": "lab/restore-job-standin",
                                "command": [standin, t["script"]],
                                "args": t["args"].as_array().cloned().unwrap_or_default(),
                                "env": envs
                            }],
                            "volumes": volumes
                        }
                    }
                }
            })
        };
        data.insert(
            key.clone(),
            serde_json::to_string_pretty(&manifest)
                .expect("json")
                .into(),
        );
    }
    for (k, v) in contract["configmap"]["flags"].as_object().expect("flags") {
        data.insert(k.clone(), v.clone());
    }
    let cm = &contract["configmap"];
    (
        cm["name"].as_str().expect("configmap name").to_string(),
        serde_json::json!({"labels": cm["labels"], "data": data}),
    )
}

/// clickhouse-backup in server mode (the stand-in), listening on a free loopback port.
pub struct ClickHouseBackup {
    pub port: u16,
    pub dir: PathBuf,
    child: Child,
}

impl ClickHouseBackup {
    pub fn start(dir: &Path) -> ClickHouseBackup {
        let port = free_port();
        let child = Command::new(lab_file("clickhouse-backup"))
            .args(["--config", "/etc/clickhouse-backup.yaml", "server"])
            .env("CLICKHOUSE_BACKUP_STANDIN_DIR", dir)
            .env("API_LISTEN", format!("127.0.0.1:{port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .expect("start the clickhouse-backup stand-in");
        wait_port(port, "the clickhouse-backup server stand-in");
        ClickHouseBackup {
            port,
            dir: dir.to_path_buf(),
            child,
        }
    }

    pub fn api(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// POST to the API as the chart's CronJob does; returns (HTTP status, body).
    pub fn post(&self, path_and_query: &str) -> (u16, String) {
        let out = Command::new("curl")
            .args(["-s", "-X", "POST", "-w", "\n%{http_code}"])
            .arg(format!("{}{path_and_query}", self.api()))
            .output()
            .expect("curl");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let (body, code) = text.rsplit_once('\n').unwrap_or(("", "0"));
        (code.trim().parse().unwrap_or(0), body.to_string())
    }

    pub fn get(&self, path_and_query: &str) -> String {
        output_of(Command::new("curl").args(["-sf", &format!("{}{path_and_query}", self.api())]))
            .unwrap_or_else(|e| {
                panic!("GET {path_and_query} from the clickhouse-backup stand-in: {e}")
            })
    }

    /// Names of the remote backups, oldest first, with their base (`required`).
    pub fn remote(&self) -> Vec<(String, String)> {
        self.get("/backup/list/remote")
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .map(|v| {
                (
                    v["name"].as_str().unwrap_or_default().to_string(),
                    v["required"].as_str().unwrap_or_default().to_string(),
                )
            })
            .collect()
    }

    pub fn set(&self, file: &str, text: Option<&str>) {
        let p = self.dir.join(file);
        match text {
            Some(t) => std::fs::write(&p, t).expect("clickhouse-backup control file"),
            None => {
                let _ = std::fs::remove_file(&p);
            }
        }
    }

    /// Waits until no operation is in progress twice in a row, 300 ms apart (a callback
    /// starts the next operation just after one ends), at most 30 s.
    pub fn idle(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut quiet = 0;
        while quiet < 2 {
            assert!(
                Instant::now() < deadline,
                "clickhouse-backup stand-in still busy after 30s"
            );
            if self.get("/backup/status").contains("\"in progress\"") {
                quiet = 0;
            } else {
                quiet += 1;
            }
            std::thread::sleep(Duration::from_millis(300));
        }
    }
}

impl Drop for ClickHouseBackup {
    fn drop(&mut self) {
        let _ = nix::sys::signal::killpg(
            nix::unistd::Pid::from_raw(self.child.id() as i32),
            nix::sys::signal::Signal::SIGKILL,
        );
        let _ = self.child.wait();
    }
}
