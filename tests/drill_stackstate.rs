//! Restore drills for StackState (issue 6): the shipped plans/stackstate/*.yaml run through
//! the real binary against the kubectl stand-in (tests/standins/kubectl: there is no
//! Kubernetes here), whose cluster holds the chart's job templates in a configmap labelled
//! stackstate.com/backup-scripts=true.
//!
//! - Victoria Metrics, real: Debian's victoria-metrics runs as the "pod" of statefulset
//!   stackstate-victoria-metrics-0 (the stand-in's scale hook stops and starts it), data are
//!   written to it, vmbackup copies it to moto_server (S3), the data are damaged, and
//!   restore-victoria-metrics.yaml scales it down, runs the restore job (the stand-in runs
//!   its container command, the real vmrestore, on the stopped instance's data folder) and
//!   scales it up; every series value is compared with the seed.
//! - StackGraph, ClickHouse, Elasticsearch: stand-ins record what they were asked
//!   (restore-job-standin, clickhouse-backup, elasticsearch-standin.py); the drills check
//!   the scale-down/scale-up around them and what was asked.
//! - Failure drills, one per restore plan, each a real failure after the scale-down (a
//!   missing backup version for vmrestore, a non-empty StackGraph without -force, the
//!   clickhouse-backup and Elasticsearch job stand-ins' failure files): the replicas must
//!   be back to their counts, the job deleted, the lock free.
//!
//! Prints one line: `drill stackstate: ...`.

/// A drill result line, written past the test harness's capture so CI shows it.
macro_rules! report {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, $($arg)*);
    }};
}

#[path = "lab/common.rs"]
mod common;
#[path = "lab/stackstate/lab.rs"]
mod lab;

use common::{held_locks, opsplan, repo_root, Ran};
use serde_json::json;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;

const NS: &str = "drill-stackstate";
const VM_VERSION: &str = "victoria-metrics-0-20250101000000";

struct Drill {
    root: tempfile::TempDir,
    cluster: lab::Cluster,
    bin: PathBuf,
    problems: Vec<String>,
    failure_drills: u32,
}

impl Drill {
    fn state(&self) -> PathBuf {
        self.root.path().join("state")
    }
    fn dir(&self, name: &str) -> PathBuf {
        let d = self.root.path().join(name);
        std::fs::create_dir_all(&d).expect("lab folder");
        d
    }

    fn run(&self, plan: &str, sets: &[(&str, String)]) -> Ran {
        self.run_with(plan, sets, &[])
    }

    fn run_with(&self, plan: &str, sets: &[(&str, String)], extra: &[&str]) -> Ran {
        let mut cmd = opsplan(&self.state());
        cmd.arg("run")
            .arg(repo_root().join("plans/stackstate").join(plan));
        cmd.args(extra);
        cmd.args(["--set", &format!("namespace={NS}")]);
        for (k, v) in sets {
            cmd.args(["--set", &format!("{k}={v}")]);
        }
        let path = format!(
            "{}:{}",
            self.bin.display(),
            std::env::var("PATH").unwrap_or_default()
        );
        cmd.args(["--force", "--yes"])
            .env("PATH", path)
            .env("KUBECTL_STANDIN_STATE", &self.cluster.state)
            .env("CLICKHOUSE_BACKUP_STANDIN_DIR", self.dir("clickhouse"))
            .env("RESTORE_STANDIN_DIR", self.dir("jobs"));
        let ran = Ran::from(cmd.output().expect("run opsplan"));
        if std::env::var_os("DRILL_SHOW_RUNS").is_some() {
            eprintln!("--- opsplan run {plan} (exit {}):\n{}", ran.code, ran.out);
        }
        ran
    }

    /// After a run (succeeded or failed): every workload at its count, no job left, no
    /// lock left. Returns the problems found.
    fn settled(&self, want: &BTreeMap<String, u64>) -> Vec<String> {
        let mut p: Vec<String> =
            common::diff_maps("workload replicas", want, &self.cluster.replicas());
        let jobs = self.cluster.jobs();
        if !jobs.is_empty() {
            p.push(format!("jobs left in the cluster: {jobs:?}"));
        }
        p.extend(
            held_locks(&self.state())
                .into_iter()
                .map(|l| format!("lock left: {l}")),
        );
        p
    }

    fn check(&mut self, what: &str, ran: &Ran, problems: Vec<String>) {
        if !problems.is_empty() {
            self.problems.push(format!(
                "{what}: {}\n--- run output (exit {}):\n{}",
                problems.join("; "),
                ran.code,
                ran.out
            ));
        }
    }

    /// Index of the first call containing `needle` (after `from`).
    fn call_index(&self, needle: &str) -> Option<usize> {
        self.cluster.calls().iter().position(|c| c.contains(needle))
    }
}

fn job_yaml(name: &str, container: &str, command: &[String], env: &[(&str, String)]) -> String {
    let mut env_yaml = String::new();
    for (k, v) in env {
        env_yaml.push_str(&format!("            - {{name: {k}, value: \"{v}\"}}\n"));
    }
    let cmd = serde_json::to_string(command).expect("json");
    format!(
        "apiVersion: batch/v1\n\
         kind: Job\n\
         metadata:\n  name: {name}\n  labels: {{app.kubernetes.io/component: backup-restore}}\n\
         \x20 annotations:\n    standin.opsplan/run: local\n\
         spec:\n  backoffLimit: 0\n  template:\n    spec:\n      restartPolicy: Never\n\
         \x20     containers:\n        - name: {container}\n          image: lab/{container}\n\
         \x20         command: {cmd}\n          env:\n{env_yaml}"
    )
}

fn initial_state(vm_hook: Option<Vec<String>>) -> serde_json::Value {
    let connects = json!({"stackstate.com/connects-to-stackgraph": "true"});
    json!({
        "server": "127.0.0.1:6443",
        "default_namespace": "default",
        "namespaces": {NS: {
            "statefulsets": {
                "stackstate-victoria-metrics-0": {"replicas": 1, "on_scale": vm_hook},
                "stackstate-victoria-metrics-1": {"replicas": 1},
                "stackstate-otel-collector": {"replicas": 2},
                "stackstate-clickhouse-shard0": {"replicas": 1}
            },
            "deployments": {
                "stackstate-server": {"replicas": 1, "labels": connects},
                "stackstate-api": {"replicas": 2, "labels": connects},
                "stackstate-sync": {"replicas": 1, "labels": connects},
                "stackstate-ui": {"replicas": 2, "labels": {"app": "ui"}},
                "stackstate-e2es": {"replicas": 2},
                "stackstate-trace2es": {"replicas": 1},
                "stackstate-receiver": {"replicas": 3}
            },
            "pods": {
                "stackstate-clickhouse-shard0-0": {"containers": ["clickhouse", "backup"]}
            },
            "configmaps": {},
            "jobs": {}
        }},
        "calls": []
    })
}

#[test]
fn drill_stackstate() {
    let missing = lab::missing_base_tools();
    if !missing.is_empty() {
        report!(
            "drill stackstate: cannot run here: missing {}",
            missing.join(", ")
        );
        panic!(
            "drill stackstate cannot run: missing {}",
            missing.join(", ")
        );
    }
    let root = tempfile::tempdir().expect("temp dir");
    let bin = root.path().join("bin");
    std::fs::create_dir_all(&bin).expect("bin");
    std::os::unix::fs::symlink(
        repo_root().join("tests/standins/kubectl"),
        bin.join("kubectl"),
    )
    .expect("kubectl link");
    std::os::unix::fs::symlink(
        lab::lab_file("clickhouse-backup"),
        bin.join("clickhouse-backup"),
    )
    .expect("clickhouse-backup link");
    let mut d = Drill {
        cluster: lab::Cluster {
            state: root.path().join("cluster.json"),
            namespace: NS.into(),
        },
        root,
        bin,
        problems: Vec::new(),
        failure_drills: 0,
    };
    let standin = lab::lab_file("restore-job-standin").display().to_string();
    let es = lab::Es::start(
        &d.dir("es"),
        &[
            "sts_internal_events-2025.01.01",
            "sts_topology_events-2025.01.01",
            "sts_kept-2025.01.01",
        ],
    );

    // ------------------------------------------------------------ Victoria Metrics (real)
    let vm_unavailable = lab::vm_unavailable();
    let mut vm_summary = String::new();
    let moto;
    let vm;
    let vm_hook;
    let mut vm_template = String::new();
    if let Some(why) = &vm_unavailable {
        report!("drill stackstate: victoria-metrics part cannot run here: {why}");
    } else {
        moto = lab::Moto::start(&d.dir("moto").join("moto.log"));
        moto.create_bucket(lab::BUCKET);
        vm = lab::Vm::new(d.dir("vm").join("victoria-metrics-0/storage"));
        vm.scale(1);
        vm_hook = Some(vm.hook());
        let storage_template = d
            .dir("vm")
            .join("REPLACE_ME_VICTORIA_METRICS_INSTANCE_NAME/storage")
            .display()
            .to_string();
        vm_template = job_yaml(
            "victoria-metrics-restore-backup",
            "vmrestore",
            &[
                "/usr/bin/vmrestore".into(),
                format!("-src=s3://{}/REPLACE_ME_VICTORIA_METRICS_INSTANCE_NAME/REPLACE_ME_VICTORIA_METRICS_BACKUP_VERSION", lab::BUCKET),
                format!("-storageDataPath={storage_template}"),
                format!("-customS3Endpoint={}", moto.endpoint()),
                format!("-httpListenAddr=127.0.0.1:{}", common::free_port()),
            ],
            &[
                ("AWS_ACCESS_KEY_ID", lab::S3_KEY.into()),
                ("AWS_SECRET_ACCESS_KEY", lab::S3_SECRET.into()),
                ("AWS_REGION", "us-east-1".into()),
            ],
        );
        // Seed: 8 series, one sample a minute for 2 hours, ending an hour ago.
        let start_ms = (std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock")
            .as_secs()
            / 60
            * 60
            - 3 * 3600)
            * 1000;
        let mut text = String::new();
        for h in 0..5 {
            for m in 0..120u64 {
                text.push_str(&format!(
                    "lab_cpu_seconds{{host=\"h{h}\"}} {} {}\n",
                    (h as f64) * 100.0 + (m as f64) * 0.25,
                    start_ms + m * 60_000
                ));
            }
        }
        for (code, rate) in [("200", 17u64), ("500", 1), ("404", 3)] {
            for m in 0..120u64 {
                text.push_str(&format!(
                    "lab_requests_total{{code=\"{code}\"}} {} {}\n",
                    m * rate,
                    start_ms + m * 60_000
                ));
            }
        }
        vm.import(&text);
        let seed = vm.series();
        let samples: usize = seed.values().map(Vec::len).sum();
        assert_eq!((seed.len(), samples), (8, 960), "seeded series and samples");

        // The chart's scheduled backup: vmbackup from a snapshot to S3.
        let backup = Command::new("vmbackup")
            .arg(format!("-storageDataPath={}", vm.data.display()))
            .arg(format!("-snapshot.createURL={}/snapshot/create", vm.url()))
            .arg(format!(
                "-dst=s3://{}/victoria-metrics-0/{VM_VERSION}",
                lab::BUCKET
            ))
            .arg(format!("-customS3Endpoint={}", moto.endpoint()))
            .arg(format!("-httpListenAddr=127.0.0.1:{}", common::free_port()))
            .env("AWS_ACCESS_KEY_ID", lab::S3_KEY)
            .env("AWS_SECRET_ACCESS_KEY", lab::S3_SECRET)
            .env("AWS_REGION", "us-east-1")
            .output()
            .expect("run vmbackup");
        let log = String::from_utf8_lossy(&backup.stderr).into_owned();
        assert!(
            backup.status.success(),
            "vmbackup to moto S3 failed:\n{log}"
        );
        // "... is complete; backed up 907 bytes in 0.052 seconds; ..."
        let backed_up: u64 = log
            .split("backed up ")
            .nth(1)
            .and_then(|r| r.split(' ').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);

        // Damage: one series deleted, one written after the backup.
        vm.delete_series("{__name__=\"lab_cpu_seconds\",host=\"h1\"}");
        vm.import(&format!(
            "lab_after_backup{{x=\"1\"}} 1 {}\n",
            start_ms + 7_000_000
        ));
        let damaged = vm.series();
        assert_ne!(damaged, seed, "the damage changed the data");

        write_cluster(&d, vm_hook.clone(), &vm_template, &standin, &es);
        let want = d.cluster.replicas();
        let ran = d.run(
            "restore-victoria-metrics.yaml",
            &[
                ("instance", "victoria-metrics-0".into()),
                ("backup_version", VM_VERSION.into()),
            ],
        );
        let mut p = Vec::new();
        if ran.code != 0 {
            p.push(format!("restore-victoria-metrics exited {}", ran.code));
        }
        p.extend(d.settled(&want));
        if !vm.running() {
            p.push("VictoriaMetrics is not running after the scale-up".into());
        } else {
            p.extend(common::diff_maps("series", &seed, &vm.series()));
        }
        let down = d.call_index("scale statefulset/stackstate-victoria-metrics-0 --replicas=0");
        let create = d.call_index("create -f -");
        if !matches!((down, create), (Some(a), Some(b)) if a < b) {
            p.push(format!(
                "the instance was not scaled down before the restore job was created (calls {down:?}, {create:?})"
            ));
        }
        if !ran.out.contains("restored") {
            p.push("the run log does not show vmrestore's 'restored … bytes from backup'".into());
        }
        d.check("victoria-metrics restore", &ran, p);

        // Failure drill: a backup version that is not in S3; vmrestore fails after the
        // scale-down. The scale-up puts replicas back to 1, but vmrestore left its
        // restore-in-progress lock in the data folder and VictoriaMetrics refuses to start
        // on it (as a real pod would crash-loop), so the run must end "rollback failed"
        // (exit 3) instead of claiming the instance is back.
        d.cluster.clear_calls();
        let ran = d.run(
            "restore-victoria-metrics.yaml",
            &[
                ("instance", "victoria-metrics-0".into()),
                ("backup_version", "victoria-metrics-0-19990101000000".into()),
                ("scale_deadline", "15s".into()),
            ],
        );
        let mut p = Vec::new();
        if ran.code != 3 {
            p.push(format!(
                "expected exit 3 (rollback failed: the instance cannot start), got {}",
                ran.code
            ));
        }
        if !ran.out.contains("FAILED restore-job") || !ran.out.contains("FAILED cleanup scale-up") {
            p.push("expected restore-job and then the scale-up to fail".into());
        }
        let replicas = d.cluster.replicas();
        if replicas != want {
            p.extend(common::diff_maps(
                "workload replicas (spec)",
                &want,
                &replicas,
            ));
        }
        if !d.cluster.jobs().is_empty() {
            p.push(format!("jobs left: {:?}", d.cluster.jobs()));
        }
        let hook_error = d.cluster.read()["namespaces"][NS]["statefulsets"]
            ["stackstate-victoria-metrics-0"]["on_scale_error"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        if vm.running() || !hook_error.contains("restore lock file exists") {
            p.push(format!(
                "expected VictoriaMetrics to refuse to start on vmrestore's lock file; running: {}, start error: {hook_error:?}",
                vm.running()
            ));
        }
        d.check("victoria-metrics failure drill", &ran, p);

        // Recovery, as an operator would: the same plan with a good version (the failed
        // run's lock is stale: --break-lock after checking what it held, the instance).
        let ran = d.run_with(
            "restore-victoria-metrics.yaml",
            &[
                ("instance", "victoria-metrics-0".into()),
                ("backup_version", VM_VERSION.into()),
                ("scale_deadline", "30s".into()),
            ],
            &["--break-lock"],
        );
        let mut p = Vec::new();
        if ran.code != 0 {
            p.push(format!("the recovery run exited {}", ran.code));
        }
        p.extend(d.settled(&want));
        if !vm.running() {
            p.push("VictoriaMetrics is not running after the recovery run".into());
        } else {
            p.extend(common::diff_maps(
                "series after the recovery run",
                &seed,
                &vm.series(),
            ));
        }
        d.check("victoria-metrics recovery after the failure drill", &ran, p);
        d.failure_drills += 1;
        vm_summary = format!(
            "victoria-metrics: backup {} in S3 (moto); {} series, {samples} samples equal after the plan's vmrestore job; failed vmrestore leaves the instance unable to start (rollback-failed, exit 3), a re-run with a good version recovers it",
            common::size_text(backed_up),
            seed.len()
        );
    }
    if vm_unavailable.is_some() {
        write_cluster(&d, None, &vm_template, &standin, &es);
    }

    // ------------------------------------------------------------ StackGraph (stand-in job)
    let want = d.cluster.replicas();
    let jobs = d.dir("jobs");
    d.cluster.clear_calls();
    let ran = d.run(
        "restore-stackgraph.yaml",
        &[("backup", "sts-backup-20250101-0300.graph".into())],
    );
    let mut p = Vec::new();
    if ran.code != 0 {
        p.push(format!("exited {}", ran.code));
    }
    p.extend(d.settled(&want));
    let graph = std::fs::read_to_string(jobs.join("stackgraph.graph")).unwrap_or_default();
    if graph.trim() != "sts-backup-20250101-0300.graph" {
        p.push(format!("the restore job restored {graph:?}"));
    }
    for dep in ["stackstate-server", "stackstate-api", "stackstate-sync"] {
        let down = d.call_index(&format!("deployment/{dep} --replicas=0"));
        let create = d.call_index("create -f -");
        if !matches!((down, create), (Some(a), Some(b)) if a < b) {
            p.push(format!("{dep} was not scaled down before the job"));
        }
    }
    if d.call_index("stackstate-ui").is_some_and(|_| {
        d.cluster
            .calls()
            .iter()
            .any(|c| c.starts_with("scale") && c.contains("stackstate-ui"))
    }) {
        p.push("stackstate-ui (not connected to StackGraph) was scaled".into());
    }
    d.check("stackgraph restore", &ran, p);

    // Failure drill: StackGraph is not empty now; without -force the job fails.
    d.cluster.clear_calls();
    let ran = d.run(
        "restore-stackgraph.yaml",
        &[("backup", "sts-backup-20250102-0300.graph".into())],
    );
    let mut p = Vec::new();
    if ran.code != 1 {
        p.push(format!("expected exit 1, got {}", ran.code));
    }
    if !ran.out.contains("Restore isn't possible in a non empty") {
        p.push("the error does not quote the job's refusal".into());
    }
    p.extend(d.settled(&want));
    d.check("stackgraph failure drill", &ran, p);
    d.failure_drills += 1;
    let ran = d.run(
        "restore-stackgraph.yaml",
        &[
            ("backup", "sts-backup-20250102-0300.graph".into()),
            ("force", "true".into()),
        ],
    );
    let mut p = d.settled(&want);
    if ran.code != 0 {
        p.push(format!("exited {}", ran.code));
    }
    let asked = std::fs::read_to_string(jobs.join("stackgraph.log")).unwrap_or_default();
    if asked.lines().last() != Some("sts-backup-20250102-0300.graph -force") {
        p.push(format!("the forced job was asked {asked:?}"));
    }
    d.check("stackgraph forced restore", &ran, p);

    // ------------------------------------------------------------ ClickHouse (stand-in)
    let ch = d.dir("clickhouse");
    for kind in ["full", "incremental"] {
        let ran = d.run("backup-clickhouse.yaml", &[("kind", kind.into())]);
        let p = if ran.code == 0 {
            Vec::new()
        } else {
            vec![format!("exited {}", ran.code)]
        };
        d.check(&format!("clickhouse {kind} backup"), &ran, p);
        std::thread::sleep(std::time::Duration::from_millis(1100));
    }
    let remote = std::fs::read_to_string(ch.join("remote.txt")).unwrap_or_default();
    let names: Vec<&str> = remote.lines().filter_map(|l| l.split(' ').next()).collect();
    let mut p = Vec::new();
    if names.len() != 2 || !names[0].starts_with("full_") || !names[1].starts_with("incremental_") {
        p.push(format!(
            "remote backups after full + incremental: {names:?}"
        ));
    } else if !remote
        .lines()
        .nth(1)
        .unwrap_or_default()
        .ends_with(&format!("+{}", names[0]))
    {
        p.push(format!(
            "the incremental backup is not based on {}: {remote:?}",
            names[0]
        ));
    }
    let restore_name = names.last().copied().unwrap_or("none").to_string();
    d.cluster.clear_calls();
    let ran = d.run(
        "restore-clickhouse.yaml",
        &[("backup", restore_name.clone())],
    );
    if ran.code != 0 {
        p.push(format!("restore exited {}", ran.code));
    }
    p.extend(d.settled(&want));
    let restored = std::fs::read_to_string(ch.join("restored.txt")).unwrap_or_default();
    if restored.lines().last() != Some(restore_name.as_str()) {
        p.push(format!("clickhouse-backup restored {restored:?}"));
    }
    let down = d.call_index("statefulset/stackstate-otel-collector --replicas=0");
    let exec = d.call_index("restore_remote");
    if !matches!((down, exec), (Some(a), Some(b)) if a < b) {
        p.push("the producers were not stopped before restore_remote".into());
    }
    d.check("clickhouse restore", &ran, p);

    std::fs::write(
        ch.join("fail-restore_remote"),
        "can't restore: lab failure injection",
    )
    .expect("fail file");
    let ran = d.run(
        "restore-clickhouse.yaml",
        &[("backup", restore_name.clone())],
    );
    std::fs::remove_file(ch.join("fail-restore_remote")).expect("fail file");
    let mut p = Vec::new();
    if ran.code != 1 {
        p.push(format!("expected exit 1, got {}", ran.code));
    }
    p.extend(d.settled(&want));
    d.check("clickhouse failure drill", &ran, p);
    d.failure_drills += 1;

    // ------------------------------------------------------------ Elasticsearch (stand-ins)
    let indices = "[\"sts_internal_events-2025.01.01\", \"sts_topology_events-2025.01.01\"]";
    let snapshot = "sts-backup-20250101-0300-ppss8nx40yk";
    let ran = d.run(
        "restore-elasticsearch.yaml",
        &[
            ("snapshot", snapshot.into()),
            ("indices", indices.into()),
            ("elasticsearch_url", es.url()),
        ],
    );
    let mut p = Vec::new();
    if ran.code != 0 {
        p.push(format!("exited {}", ran.code));
    }
    p.extend(d.settled(&want));
    let now = es.indices();
    for i in [
        "sts_internal_events-2025.01.01",
        "sts_topology_events-2025.01.01",
    ] {
        if now.get(i).and_then(|v| v["restored_from"].as_str()) != Some(snapshot) {
            p.push(format!(
                "index {i} was not restored from {snapshot}: {:?}",
                now.get(i)
            ));
        }
        let reqs = es.requests();
        let del = reqs.iter().position(|r| r == &format!("DELETE /{i}"));
        let put = reqs.iter().position(|r| r == &format!("PUT /{i}"));
        if !matches!((del, put), (Some(a), Some(b)) if a < b) {
            p.push(format!(
                "index {i} was not deleted before the restore ({reqs:?})"
            ));
        }
    }
    if now
        .get("sts_kept-2025.01.01")
        .and_then(|v| v.get("restored_from"))
        .is_some()
        || !now.contains_key("sts_kept-2025.01.01")
    {
        p.push("an index not named in the restore was touched".into());
    }
    if d.cluster
        .calls()
        .iter()
        .any(|c| c.starts_with("scale") && c.contains("stackstate-receiver"))
    {
        p.push("stackstate-receiver (not *2es) was scaled".into());
    }
    d.check("elasticsearch restore", &ran, p);

    std::fs::write(jobs.join("fail-elasticsearch"), "lab failure injection").expect("fail file");
    let ran = d.run(
        "restore-elasticsearch.yaml",
        &[
            ("snapshot", snapshot.into()),
            ("indices", indices.into()),
            ("elasticsearch_url", es.url()),
        ],
    );
    std::fs::remove_file(jobs.join("fail-elasticsearch")).expect("fail file");
    let mut p = Vec::new();
    if ran.code != 1 {
        p.push(format!("expected exit 1, got {}", ran.code));
    }
    p.extend(d.settled(&want));
    d.check("elasticsearch failure drill", &ran, p);
    d.failure_drills += 1;

    // ------------------------------------------------------------ result
    if !d.problems.is_empty() {
        report!(
            "drill stackstate: FAILED ({} differences)",
            d.problems.len()
        );
        panic!(
            "drill stackstate found differences:\n{}",
            d.problems.join("\n\n")
        );
    }
    if let Some(why) = vm_unavailable {
        report!(
            "drill stackstate: INCOMPLETE (victoria-metrics not drilled: {why}; stackgraph, clickhouse, elasticsearch stand-in jobs ok; {} failure drills ok)",
            d.failure_drills
        );
        panic!("drill stackstate could not run its victoria-metrics part: {why}");
    }
    report!(
        "drill stackstate: ok ({vm_summary}; stackgraph, clickhouse, elasticsearch: stand-in jobs asked as expected, {} workloads back at their counts after every run; {} failure drills ok)",
        want.len(),
        d.failure_drills
    );
}

/// The cluster: workloads, the clickhouse pod and the chart's job templates.
fn write_cluster(
    d: &Drill,
    vm_hook: Option<Vec<String>>,
    vm_template: &str,
    standin: &str,
    es: &lab::Es,
) {
    let mut state = initial_state(vm_hook);
    let sg_job = job_yaml(
        "stackgraph-restore-backup",
        "restore",
        &[
            standin.into(),
            "stackgraph".into(),
            "REPLACE_ME_BACKUP_FILE_REPLACE_ME".into(),
            "REPLACE_ME_FORCE_DELETE_REPLACE_ME".into(),
        ],
        &[("RESTORE_STANDIN_DIR", d.dir("jobs").display().to_string())],
    );
    let sg_pvc = "apiVersion: v1\nkind: PersistentVolumeClaim\nmetadata:\n  name: stackgraph-restore-backup\nspec:\n  accessModes: [ReadWriteOnce]\n  resources: {requests: {storage: 1Gi}}\n";
    let es_job = job_yaml(
        "elasticsearch-restore-snapshot",
        "restore",
        &[
            standin.into(),
            "elasticsearch".into(),
            "REPLACE_ME_SNAPSHOT_NAME".into(),
            "REPLACE_ME_INDICES".into(),
            es.url(),
        ],
        &[("RESTORE_STANDIN_DIR", d.dir("jobs").display().to_string())],
    );
    let mut data = serde_json::Map::new();
    data.insert("job-stackgraph-restore-backup.yaml".into(), sg_job.into());
    data.insert("pvc-stackgraph-restore-backup.yaml".into(), sg_pvc.into());
    data.insert(
        "job-elasticsearch-restore-snapshot.yaml".into(),
        es_job.into(),
    );
    if !vm_template.is_empty() {
        data.insert(
            "job-victoria-metrics-restore-backup.yaml".into(),
            vm_template.into(),
        );
    }
    state["namespaces"][NS]["configmaps"] = json!({
        "stackstate-backup-restore-scripts": {
            "labels": {"stackstate.com/backup-scripts": "true"},
            "data": data
        }
    });
    d.cluster.write(&state);
}
