//! The kubectl stand-in (tests/standins/kubectl, a Python 3 script): there is no Kubernetes
//! API server here, so the plans' `kubectl` is a program with kubectl's argument syntax,
//! output shapes and error texts, keeping its cluster in a JSON state file. A [`Cluster`] is
//! one such state file and a `bin/` folder whose `kubectl` is the stand-in, both in a temp
//! folder removed on drop.

use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The stand-in's path; fails the test when python3 is missing.
#[track_caller]
pub fn standin() -> PathBuf {
    assert!(
        std::process::Command::new("python3")
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success()),
        "the kubectl stand-in needs python3, which is not installed"
    );
    crate::repo_root()
        .join("tests/standins/kubectl")
        .canonicalize()
        .unwrap_or_else(|e| panic!("tests/standins/kubectl: {e}"))
}

/// A stand-in cluster.
pub struct Cluster {
    dir: tempfile::TempDir,
}

impl Cluster {
    /// A cluster holding `state` (the stand-in's format: `namespaces.NS.KIND.NAME`, `deny`,
    /// `contexts`, `server`).
    #[track_caller]
    pub fn new(state: &Value) -> Cluster {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("temp dir: {e}"));
        let bin = dir.path().join("bin");
        std::fs::create_dir(&bin).unwrap_or_else(|e| panic!("{}: {e}", bin.display()));
        std::os::unix::fs::symlink(standin(), bin.join("kubectl"))
            .unwrap_or_else(|e| panic!("kubectl symlink: {e}"));
        let c = Cluster { dir };
        c.write(state);
        c
    }

    /// The state file (the stand-in reads it from `KUBECTL_STANDIN_STATE`).
    pub fn state_path(&self) -> PathBuf {
        self.dir.path().join("cluster.json")
    }

    /// The folder whose `kubectl` is the stand-in (other stand-in programs can be linked in).
    pub fn bin_dir(&self) -> PathBuf {
        self.dir.path().join("bin")
    }

    /// The temp folder the cluster lives in.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// PATH with the stand-in's folder first, so a plan's `kubectl` is the stand-in.
    pub fn path_env(&self) -> String {
        format!(
            "{}:{}",
            self.bin_dir().display(),
            std::env::var("PATH").unwrap_or_default()
        )
    }

    #[track_caller]
    pub fn state(&self) -> Value {
        let path = self.state_path();
        let text =
            std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }

    #[track_caller]
    pub fn write(&self, state: &Value) {
        let path = self.state_path();
        std::fs::write(&path, state.to_string())
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    }

    /// Replica counts of every object of `kind` (`deployments`, `statefulsets`) in `ns`.
    pub fn replicas(&self, ns: &str, kind: &str) -> BTreeMap<String, u64> {
        self.state()["namespaces"][ns][kind]
            .as_object()
            .map(|m| {
                m.iter()
                    .map(|(k, v)| (k.clone(), v["replicas"].as_u64().unwrap_or(1)))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The names of the objects of `kind` in `ns`.
    pub fn names(&self, ns: &str, kind: &str) -> Vec<String> {
        self.state()["namespaces"][ns][kind]
            .as_object()
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default()
    }

    /// Every kubectl invocation, as the argv after `kubectl` joined with spaces.
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
}
