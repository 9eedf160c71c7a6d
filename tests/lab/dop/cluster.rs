//! The platform's namespace in the kubectl stand-in (tests/standins/kubectl): the four
//! components with their replica counts, an unrelated `ui` deployment that must never be
//! touched, the three cronjobs that touch the database plus one that must survive, and the
//! spilo pods (a running master, a replica). `kubectl` on the PATH the drill gives the plans
//! is a symlink to the stand-in; `exec` into the master runs the command (psql) on this
//! machine with the environment the plan run got, which points psql at the lab's PostgreSQL.

use opsplan_testkit::kubectl;
use serde_json::json;
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

/// The platform's namespace in a stand-in cluster of the test kit.
pub struct Cluster(kubectl::Cluster);

impl Cluster {
    pub fn new() -> Cluster {
        let c = Cluster(kubectl::Cluster::new(&json!({})));
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
        self.0.write(&json!({
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
        }));
    }

    pub fn state_path(&self) -> PathBuf {
        self.0.state_path()
    }

    /// PATH with the stand-in's folder first, so the plans' `kubectl` is the stand-in.
    pub fn path_env(&self) -> String {
        self.0.path_env()
    }

    /// Replica counts of every deployment.
    pub fn replicas(&self) -> BTreeMap<String, u64> {
        self.0.replicas(NAMESPACE, "deployments")
    }

    pub fn cronjobs(&self) -> Vec<String> {
        self.0.names(NAMESPACE, "cronjobs")
    }

    /// Every kubectl invocation, argv joined with spaces.
    pub fn calls(&self) -> Vec<String> {
        self.0.calls()
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
