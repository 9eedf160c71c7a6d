//! The platform's namespace in the kubectl stand-in (tests/standins/kubectl): the four
//! components with their replica counts, an unrelated `ui` deployment that must never be
//! touched, the three cronjobs that touch the database plus one that must survive, and the
//! spilo pods (a running master, a replica). `kubectl` on the PATH the drill gives the plans
//! is a symlink to the stand-in; `exec` into the master runs the command (psql) on this
//! machine with the environment the plan run got, which points psql at the lab's PostgreSQL.

use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::PathBuf;

pub const NAMESPACE: &str = "lab-d8-observability-platform";
pub const CONTEXT: &str = "lab";
pub const MASTER: &str = "lab-dop-postgres-0";

/// The stopped components and the counts they run with.
pub const COMPONENTS: [(&str, u64); 4] = [
    ("backend", 2),
    ("alertgate-receiver", 1),
    ("alertgate-sender", 3),
    ("alertgate-api", 2),
];
pub const CRONJOBS: [&str; 3] = ["backend-clean-silences", "host-load", "postgres-backup"];

pub struct Cluster {
    dir: tempfile::TempDir,
}

impl Cluster {
    pub fn new() -> Cluster {
        let dir = tempfile::tempdir().expect("temp dir");
        let standin = super::repo_root()
            .join("tests/standins/kubectl")
            .canonicalize()
            .expect("tests/standins/kubectl exists");
        let bin = dir.path().join("bin");
        std::fs::create_dir(&bin).expect("bin folder");
        std::os::unix::fs::symlink(&standin, bin.join("kubectl")).expect("kubectl symlink");
        let c = Cluster { dir };
        c.reset(&[]);
        c
    }

    /// A fresh namespace, with `deny` entries ("VERB kind/name") answered Forbidden.
    pub fn reset(&self, deny: &[&str]) {
        let mut deployments = serde_json::Map::new();
        for (name, n) in COMPONENTS.iter().chain([("ui", 2)].iter()) {
            deployments.insert(
                name.to_string(),
                json!({"replicas": n, "labels": {"app": name}}),
            );
        }
        let mut cronjobs = serde_json::Map::new();
        for name in CRONJOBS.iter().chain(["unrelated-report"].iter()) {
            cronjobs.insert(name.to_string(), json!({"schedule": "*/30 * * * *"}));
        }
        let state = json!({
            "server": "127.0.0.1:6443",
            "contexts": [CONTEXT],
            "deny": deny,
            "namespaces": {NAMESPACE: {
                "deployments": deployments,
                "cronjobs": cronjobs,
                "pods": {
                    MASTER: {"labels": {"spilo-role": "master", "application": "spilo"},
                             "phase": "Running", "containers": ["postgres"]},
                    "lab-dop-postgres-1": {"labels": {"spilo-role": "replica", "application": "spilo"},
                                           "phase": "Running", "containers": ["postgres"]}
                }
            }}
        });
        std::fs::write(self.state_path(), state.to_string()).expect("write stand-in state");
    }

    pub fn state_path(&self) -> PathBuf {
        self.dir.path().join("cluster.json")
    }

    /// PATH with the stand-in's folder first, so the plans' `kubectl` is the stand-in.
    pub fn path_env(&self) -> String {
        format!(
            "{}:{}",
            self.dir.path().join("bin").display(),
            std::env::var("PATH").unwrap_or_default()
        )
    }

    fn state(&self) -> Value {
        serde_json::from_str(&std::fs::read_to_string(self.state_path()).expect("state"))
            .expect("stand-in state is JSON")
    }

    /// Replica counts of every deployment.
    pub fn replicas(&self) -> BTreeMap<String, u64> {
        self.state()["namespaces"][NAMESPACE]["deployments"]
            .as_object()
            .map(|m| {
                m.iter()
                    .map(|(k, v)| (k.clone(), v["replicas"].as_u64().unwrap_or(1)))
                    .collect()
            })
            .unwrap_or_default()
    }

    pub fn cronjobs(&self) -> Vec<String> {
        self.state()["namespaces"][NAMESPACE]["cronjobs"]
            .as_object()
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default()
    }

    /// Every kubectl invocation, argv joined with spaces.
    pub fn calls(&self) -> Vec<String> {
        self.state()["calls"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|c| {
                c.as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|a| a.as_str())
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .collect()
    }

    /// The counts the namespace was created with.
    pub fn original() -> BTreeMap<String, u64> {
        COMPONENTS
            .iter()
            .chain([("ui", 2)].iter())
            .map(|(k, v)| (k.to_string(), *v))
            .collect()
    }
}
