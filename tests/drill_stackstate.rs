//! Restore drills for StackState (issues 6 and 11): the shipped plans/stackstate/*.yaml run
//! through the real binary against a lab written from the vendor contract
//! (docs/plans/stackstate.md), not from the plans:
//!
//! - the kubectl stand-in (tests/standins/kubectl: there is no Kubernetes here) holds the
//!   chart's job templates in the configmap labelled stackstate.com/backup-scripts=true, built
//!   from the recorded contract (tests/lab/stackstate/chart-contract.json: the chart's keys,
//!   names, backoffLimit 1, and its real placeholders such as
//!   REPLACE_ME_SNAPSHOT_NAME_REPLACE_ME and REPLACE_ME_VICTORIA_METRICS_S3_PREFIX). It
//!   refuses any object still holding a REPLACE_ME placeholder, keeps pods Terminating for
//!   3 s after a scale-down (status no longer counts them, as on Kubernetes), takes 1 s to
//!   roll out, and retries failed Jobs per backoffLimit;
//! - Victoria Metrics, real: Debian's victoria-metrics runs as the "pod" of statefulset
//!   stackstate-victoria-metrics-0, vmbackup copies it to moto_server (S3) under a backup
//!   version (the S3 prefix), the chart's list job (its container script stood in for)
//!   lists the versions from S3, and the restore job runs the real vmrestore;
//! - StackGraph and Elasticsearch restore jobs: their container scripts are stood in for
//!   (restore-job-standin) and receive what the chart's scripts receive; the Elasticsearch
//!   job restores through the Elasticsearch stand-in's snapshot API;
//! - ClickHouse: clickhouse-backup in server mode (a stand-in of its REST API), driven by
//!   the plans as the chart drives it, with a scheduled backup started through the API
//!   before and while the plan runs.
//! - Failure drills: the chart's refusals and failures (a version not in S3, an instance
//!   whose restore is disabled, a non-empty StackGraph without -force, a snapshot that does
//!   not hold an index, failing jobs, a busy clickhouse-backup server): nothing destructive
//!   may run before the data is proven present, the replicas must be back, the jobs deleted,
//!   the locks free.
//!
//! Prints one line: `drill stackstate: ...`, naming what was real and what stood in.

/// A drill result line, written past the test harness's capture so CI shows it.
macro_rules! report {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, $($arg)*);
    }};
}

use crate::common;
#[path = "lab/stackstate/lab.rs"]
mod lab;

use common::{held_locks, opsplan, repo_root, Ran};
use serde_json::json;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

const NS: &str = "drill-stackstate";
const VM_VERSION: &str = "victoria-metrics-0-20250101000000";
const SNAPSHOT: &str = "sts-backup-20250101-0300-ppss8nx40yk";
const EVENTS: &str = "sts_internal_events-2025.01.01";
const TOPOLOGY: &str = "sts_topology_events-2025.01.01";
const KEPT: &str = "sts_kept-2025.01.01";

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
            .env("KUBECTL_STANDIN_STATE", self.cluster.state_path())
            .env("CLICKHOUSE_BACKUP_STANDIN_DIR", self.dir("clickhouse"))
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .env("RESTORE_STANDIN_DIR", self.dir("jobs"));
        let ran = common::run(cmd);
        if std::env::var_os("DRILL_SHOW_RUNS").is_some() {
            eprintln!("--- opsplan run {plan} (exit {}):\n{}", ran.code, ran.all());
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
                ran.all()
            ));
        }
    }

    /// Index of the first call containing `needle`.
    fn call_index(&self, needle: &str) -> Option<usize> {
        self.cluster.calls().iter().position(|c| c.contains(needle))
    }

    /// Indices of every call containing `needle`.
    fn call_indices(&self, needle: &str) -> Vec<usize> {
        self.cluster
            .calls()
            .iter()
            .enumerate()
            .filter(|(_, c)| c.contains(needle))
            .map(|(i, _)| i)
            .collect()
    }

    /// Problems if `workload` was not scaled to 0, and its pods then waited for (a
    /// `get pods -l <its selector>`), before the first call containing `then`.
    fn stopped_before(&self, workload: &str, then: &str) -> Vec<String> {
        let (kind, name) = workload.split_once('/').unwrap_or(("", workload));
        let down = self.call_index(&format!("scale {workload} --replicas=0"));
        let pods = self.call_index(&format!("get pods -l standin.opsplan/pod-of={kind}.{name}"));
        let next = self.call_index(then);
        match (down, pods, next) {
            (Some(a), Some(b), Some(c)) if a < b && b < c => Vec::new(),
            _ => vec![format!(
                "{workload} was not scaled down and its pods waited for before `{then}` (calls {down:?}, {pods:?}, {next:?})"
            )],
        }
    }
}

fn initial_state(vm_hook: Option<Vec<String>>) -> serde_json::Value {
    let connects = json!({"stackstate.com/connects-to-stackgraph": "true"});
    let clickhouse = json!({"app.kubernetes.io/component": "clickhouse"});
    json!({
        "server": "127.0.0.1:6443",
        "default_namespace": "default",
        "terminate_seconds": 3,
        "rollout_seconds": 1,
        "namespaces": {NS: {
            "statefulsets": {
                "stackstate-victoria-metrics-0": {"replicas": 1, "on_scale": vm_hook},
                "stackstate-victoria-metrics-1": {"replicas": 1},
                "stackstate-otel-collector": {"replicas": 2}
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
                "stackstate-clickhouse-shard0-0": {"containers": ["clickhouse", "backup"], "labels": clickhouse},
                "stackstate-clickhouse-shard1-0": {"containers": ["clickhouse", "backup"], "labels": clickhouse}
            },
            "configmaps": {},
            "jobs": {}
        }},
        "calls": []
    })
}

#[test]
fn drill_stackstate() {
    let _lab = crate::common::one_at_a_time();
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
    std::os::unix::fs::symlink(opsplan_testkit::kubectl::standin(), bin.join("kubectl"))
        .expect("kubectl link");
    std::os::unix::fs::symlink(
        lab::lab_file("clickhouse-backup"),
        bin.join("clickhouse-backup"),
    )
    .expect("clickhouse-backup link");
    std::os::unix::fs::symlink(
        lab::lab_file("clickhouse-client"),
        bin.join("clickhouse-client"),
    )
    .expect("clickhouse-client link");
    let mut d = Drill {
        cluster: lab::Cluster {
            kube: opsplan_testkit::kubectl::Cluster::new(&json!({})),
            namespace: NS.into(),
        },
        root,
        bin,
        problems: Vec::new(),
        failure_drills: 0,
    };
    let jobs = d.dir("jobs");
    let es = lab::Es::start(
        &d.dir("es"),
        &[EVENTS, TOPOLOGY, KEPT],
        &[("sts-backup", SNAPSHOT, &[EVENTS, TOPOLOGY, KEPT])],
    );
    let ch = lab::ClickHouseBackup::start(&d.dir("clickhouse"));
    let vm_root = d.dir("vm");

    // The chart's backup env vars, as the lab's services answer them.
    let mut env: Vec<(&str, String)> = vec![
        ("RESTORE_STANDIN_DIR", jobs.display().to_string()),
        ("ELASTICSEARCH_ENDPOINT", format!("127.0.0.1:{}", es.port)),
        (
            "BACKUP_ELASTICSEARCH_SCHEDULED_SNAPSHOT_REPOSITORY_NAME",
            "sts-backup".into(),
        ),
        (
            "BACKUP_ELASTICSEARCH_BUCKET_NAME",
            "sts-elasticsearch-backup".into(),
        ),
        ("BACKUP_ELASTICSEARCH_SCHEDULED_INDICES", "sts*".into()),
        ("BACKUP_VICTORIA_METRICS_0_BUCKET_NAME", lab::BUCKET.into()),
        ("BACKUP_VICTORIA_METRICS_1_BUCKET_NAME", lab::BUCKET.into()),
        ("AWS_ACCESS_KEY_ID", lab::S3_KEY.into()),
        ("AWS_SECRET_ACCESS_KEY", lab::S3_SECRET.into()),
        ("AWS_REGION", "us-east-1".into()),
        ("VM_DATA_ROOT", vm_root.display().to_string()),
        (
            "VMRESTORE_HTTP",
            format!("127.0.0.1:{}", common::free_port()),
        ),
    ];

    // ------------------------------------------------------------ Victoria Metrics (real)
    let vm_unavailable = lab::vm_unavailable();
    let mut vm_summary = String::new();
    let moto;
    let vm;
    if let Some(why) = &vm_unavailable {
        report!("drill stackstate: victoria-metrics part cannot run here: {why}");
        write_cluster(&d, None, &env);
    } else {
        moto = lab::Moto::start(&d.dir("moto").join("moto.log"));
        moto.create_bucket(lab::BUCKET);
        env.push(("MINIO_ENDPOINT", format!("127.0.0.1:{}", moto.port)));
        vm = lab::Vm::new(vm_root.join("server-volume-stackstate-victoria-metrics-0-0"));
        vm.scale(1);
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

        // The chart's scheduled backup: vmbackup from a snapshot to S3, under the backup
        // version as its S3 prefix (the restore script's -src=s3://<bucket>/<S3_PREFIX>).
        let backup = Command::new("vmbackup")
            .arg(format!("-storageDataPath={}", vm.data.display()))
            .arg(format!("-snapshot.createURL={}/snapshot/create", vm.url()))
            .arg(format!("-dst=s3://{}/{VM_VERSION}", lab::BUCKET))
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

        write_cluster(&d, Some(vm.hook()), &env);
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
        // The list job first, then the scale-down and the pods gone, then the restore job.
        let creates = d.call_indices("create -f -");
        let down = d.call_index("scale statefulset/stackstate-victoria-metrics-0 --replicas=0");
        if !(creates.len() == 2 && down.is_some_and(|i| creates[0] < i && i < creates[1])) {
            p.push(format!(
                "expected the list job, then the scale-down, then the restore job (creates {creates:?}, scale-down {down:?})"
            ));
        }
        let restore_create = creates.get(1).copied().unwrap_or(usize::MAX);
        let pods = d.call_indices(
            "get pods -l standin.opsplan/pod-of=statefulset.stackstate-victoria-metrics-0",
        );
        if !pods
            .iter()
            .any(|i| down.is_some_and(|dn| *i > dn) && *i < restore_create)
        {
            p.push(
                "the restore job was created without waiting for the instance's pods to be gone"
                    .into(),
            );
        }
        if !ran.all().contains("restored") {
            p.push("the run log does not show vmrestore's 'restored … bytes from backup'".into());
        }
        d.check("victoria-metrics restore", &ran, p);

        // Failure drill: a backup version that is not in S3. The plan must refuse before
        // stopping the instance (a failed vmrestore leaves it unable to start).
        d.cluster.clear_calls();
        let ran = d.run(
            "restore-victoria-metrics.yaml",
            &[
                ("instance", "victoria-metrics-0".into()),
                ("backup_version", "victoria-metrics-0-19990101000000".into()),
            ],
        );
        let mut p = Vec::new();
        if ran.code != 1 || !ran.all().contains("FAILED version-listed") {
            p.push(format!(
                "expected exit 1 at version-listed, got {}",
                ran.code
            ));
        }
        if d.call_index("scale ").is_some() {
            p.push("the instance was scaled although the version is not in S3".into());
        }
        if !vm.running() {
            p.push("VictoriaMetrics stopped".into());
        }
        p.extend(d.settled(&want));
        d.check("victoria-metrics missing-version drill", &ran, p);
        d.failure_drills += 1;

        // Failure drill: restores are disabled for victoria-metrics-1 in the chart's values.
        d.cluster.clear_calls();
        let ran = d.run(
            "restore-victoria-metrics.yaml",
            &[
                ("instance", "victoria-metrics-1".into()),
                ("backup_version", VM_VERSION.into()),
            ],
        );
        let mut p = Vec::new();
        if ran.code != 1 || !ran.all().contains("FAILED instance-restore-enabled") {
            p.push(format!(
                "expected exit 1 at instance-restore-enabled, got {}",
                ran.code
            ));
        }
        if d.call_index("scale ").is_some() || d.call_index("create").is_some() {
            p.push("something was scaled or created for a disabled instance".into());
        }
        d.check("victoria-metrics restore-disabled drill", &ran, p);
        d.failure_drills += 1;

        // Failure drill: the restore job fails after the scale-down (both attempts:
        // backoffLimit 1); the instance must come back on its untouched data.
        std::fs::write(
            jobs.join("fail-restore-victoria-metrics-backup.sh"),
            "lab failure injection",
        )
        .expect("fail file");
        d.cluster.clear_calls();
        let before = vm.series();
        let ran = d.run(
            "restore-victoria-metrics.yaml",
            &[
                ("instance", "victoria-metrics-0".into()),
                ("backup_version", VM_VERSION.into()),
            ],
        );
        std::fs::remove_file(jobs.join("fail-restore-victoria-metrics-backup.sh"))
            .expect("fail file");
        let mut p = Vec::new();
        if ran.code != 1 || !ran.all().contains("FAILED restore-job") {
            p.push(format!("expected exit 1 at restore-job, got {}", ran.code));
        }
        p.extend(d.settled(&want));
        let attempts = std::fs::read_to_string(jobs.join("restore-victoria-metrics-backup.sh.log"))
            .unwrap_or_default()
            .lines()
            .count();
        if attempts != 3 {
            p.push(format!(
                "expected 3 runs of the restore container (1 good run + 2 attempts: backoffLimit 1), saw {attempts}"
            ));
        }
        if !vm.running() {
            p.push("VictoriaMetrics is not running after the failed restore".into());
        } else {
            p.extend(common::diff_maps(
                "series after the failed restore",
                &before,
                &vm.series(),
            ));
        }
        d.check("victoria-metrics failing-job drill", &ran, p);
        d.failure_drills += 1;
        vm_summary = format!(
            "victoria-metrics REAL (victoria-metrics, vmbackup, vmrestore; S3 = moto): backup {} under its version prefix; {} series, {samples} samples equal after the plan's restore job; a version not in S3 and a disabled instance refused before any scale-down; a failing job retried per backoffLimit and the instance back on untouched data",
            common::size_text(backed_up),
            seed.len()
        );
    }

    // ------------------------------------------------------------ StackGraph (stand-in job)
    let want = d.cluster.replicas();
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
        p.extend(d.stopped_before(&format!("deployment/{dep}"), "create -f -"));
    }
    if d.cluster
        .calls()
        .iter()
        .any(|c| c.starts_with("scale") && c.contains("stackstate-ui"))
    {
        p.push("stackstate-ui (not connected to StackGraph) was scaled".into());
    }
    d.check("stackgraph restore", &ran, p);

    // Failure drill: StackGraph is not empty now; without -force the job fails (twice:
    // backoffLimit 1) and quotes the refusal.
    d.cluster.clear_calls();
    let ran = d.run(
        "restore-stackgraph.yaml",
        &[("backup", "sts-backup-20250102-0300.graph".into())],
    );
    let mut p = Vec::new();
    if ran.code != 1 {
        p.push(format!("expected exit 1, got {}", ran.code));
    }
    if !ran.all().contains("Restore isn't possible in a non empty") {
        p.push("the error does not quote the job's refusal".into());
    }
    p.extend(d.settled(&want));
    if !d.cluster.read()["namespaces"][NS]["persistentvolumeclaims"]
        .as_object()
        .is_none_or(serde_json::Map::is_empty)
    {
        p.push("the restore volume claim was left".into());
    }
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
    let asked =
        std::fs::read_to_string(jobs.join("restore-stackgraph-backup.sh.log")).unwrap_or_default();
    let last: serde_json::Value = asked
        .lines()
        .last()
        .and_then(|l| serde_json::from_str(l).ok())
        .unwrap_or_default();
    if last["env"]
        != json!({"BACKUP_FILE": "sts-backup-20250102-0300.graph", "FORCE_DELETE": "-force"})
    {
        p.push(format!("the forced job was given {last}"));
    }
    d.check("stackgraph forced restore", &ran, p);

    // ------------------------------------------------------------ ClickHouse (server stand-in)
    let api = ("backup_api", ch.api());
    for kind in ["full", "incremental"] {
        let ran = d.run(
            "backup-clickhouse.yaml",
            &[("kind", kind.into()), api.clone()],
        );
        let p = if ran.code == 0 {
            Vec::new()
        } else {
            vec![format!("exited {}", ran.code)]
        };
        d.check(&format!("clickhouse {kind} backup"), &ran, p);
        std::thread::sleep(Duration::from_millis(1100));
    }
    let remote = ch.remote();
    let mut p = Vec::new();
    if remote.len() != 2
        || !remote[0].0.starts_with("full_")
        || !remote[1].0.starts_with("incremental_")
        || remote[1].1 != remote[0].0
    {
        p.push(format!(
            "remote backups after full + incremental: {remote:?}"
        ));
    }
    let actions = ch.get("/backup/actions");
    if !actions.contains("--tables=otel.*") {
        p.push(format!(
            "the backups were not limited to the chart's tables: {actions}"
        ));
    }
    d.check("clickhouse backups through the API", &ran_none(), p);

    // A scheduled backup is running when the plan starts: the plan must refuse.
    ch.set("seconds-create", Some("4"));
    let (code, body) = ch.post(&format!("/backup/create?name=full_scheduled-1&table=otel.*&callback={}/backup/upload/full_scheduled-1", ch.api()));
    assert_eq!(
        code, 201,
        "the lab's scheduled backup was not accepted: {body}"
    );
    let before = ch.remote().len();
    let ran = d.run(
        "backup-clickhouse.yaml",
        &[("kind", "full".into()), api.clone()],
    );
    let mut p = Vec::new();
    if ran.code != 1
        || !ran.all().contains("FAILED none-running")
        || !ran.all().contains("full_scheduled-1")
    {
        p.push(format!(
            "expected exit 1 at none-running naming the scheduled backup, got {}",
            ran.code
        ));
    }
    ch.idle();
    ch.set("seconds-create", None);
    if ch
        .get("/backup/actions")
        .matches("\"command\":\"create")
        .count()
        != 3
    {
        p.push("the plan started a backup while the scheduled one ran".into());
    }
    let _ = before;
    d.check("clickhouse busy-server drill", &ran, p);
    d.failure_drills += 1;

    // A scheduled backup fires while the plan's backup runs: the server refuses it (423),
    // the plan's backup completes.
    ch.set("seconds-create", Some("3"));
    let (ran, sched) = std::thread::scope(|s| {
        let plan = s.spawn(|| {
            d.run(
                "backup-clickhouse.yaml",
                &[("kind", "full".into()), api.clone()],
            )
        });
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        while !ch.get("/backup/status").contains("\"in progress\"")
            && std::time::Instant::now() < deadline
        {
            std::thread::sleep(Duration::from_millis(100));
        }
        let sched = ch.post("/backup/create?name=full_scheduled-2&table=otel.*");
        (plan.join().expect("plan thread"), sched)
    });
    ch.set("seconds-create", None);
    let mut p = Vec::new();
    if ran.code != 0 {
        p.push(format!("the plan's backup exited {}", ran.code));
    }
    if sched.0 != 423 || !sched.1.contains("another operation is currently running") {
        p.push(format!(
            "the scheduled backup during the plan's was not refused: {sched:?}"
        ));
    }
    let remote = ch.remote();
    if remote.iter().any(|(n, _)| n.contains("scheduled-2")) || remote.len() != 4 {
        p.push(format!("remote backups after the race: {remote:?}"));
    }
    d.check("clickhouse scheduled-backup-during-the-plan drill", &ran, p);
    d.failure_drills += 1;

    let restore_name = ch.remote().last().map(|r| r.0.clone()).unwrap_or_default();
    let post_restore = (
        "post_restore_script",
        lab::lab_file("post-restore-standin").display().to_string(),
    );
    // A restore run with the stand-in's lab controls set (`control`, text), then cleared.
    let restore_with = |d: &Drill, controls: &[(&str, &str)]| {
        for (control, value) in controls {
            ch.set(control, Some(value));
        }
        d.cluster.clear_calls();
        let ran = d.run(
            "restore-clickhouse.yaml",
            &[
                ("backup", restore_name.clone()),
                api.clone(),
                post_restore.clone(),
            ],
        );
        for (control, _) in controls {
            ch.set(control, None);
        }
        ran
    };
    let ran = restore_with(&d, &[]);
    let mut p = Vec::new();
    if ran.code != 0 {
        p.push(format!("restore exited {}", ran.code));
    }
    p.extend(d.settled(&want));
    let restored = std::fs::read_to_string(ch.dir.join("restored.txt")).unwrap_or_default();
    if restored.lines().last() != Some(restore_name.as_str()) {
        p.push(format!("clickhouse-backup restored {restored:?}"));
    }
    p.extend(d.stopped_before("statefulset/stackstate-otel-collector", "/backup/download/"));
    let marks = std::fs::read_to_string(ch.dir.join("mark-cache.log")).unwrap_or_default();
    if marks.lines().collect::<Vec<_>>()
        != [
            "SYSTEM DROP MARK CACHE stackstate-clickhouse-shard0-0",
            "SYSTEM DROP MARK CACHE stackstate-clickhouse-shard1-0",
        ]
    {
        p.push(format!("mark cache drops: {marks:?}"));
    }
    // The restore compared: it read the backup's tables from the API before the stop and
    // system.tables after the restore, and every table of the backup was there.
    let server_log = std::fs::read_to_string(ch.dir.join("server.log")).unwrap_or_default();
    if !server_log.contains(&format!("GET /backup/tables?remote_backup={restore_name}")) {
        p.push(
            "the plan did not read the backup's tables (GET /backup/tables?remote_backup=)".into(),
        );
    }
    // (read after the server log: this GET is logged too)
    let backup_tables = ch.get(&format!("/backup/tables?remote_backup={restore_name}"));
    if backup_tables.lines().count() != 6 {
        p.push(format!(
            "the lab's backup should list the 6 otel tables: {backup_tables}"
        ));
    }
    let queries = std::fs::read_to_string(ch.dir.join("clickhouse-client.log")).unwrap_or_default();
    if !queries.contains("FROM system.tables") {
        p.push(format!(
            "the plan did not read system.tables after the restore: {queries:?}"
        ));
    }
    d.check("clickhouse restore", &ran, p);

    // Failure drill: tables were dropped less than 8 minutes ago (UNDROP); the restore
    // would fail with "Directory for table data … already exists": refused before the stop.
    let ran = restore_with(&d, &[("dropped-tables", "2")]);
    let mut p = Vec::new();
    if ran.code != 1 || !ran.all().contains("FAILED no-recent-drops") {
        p.push(format!(
            "expected exit 1 at no-recent-drops, got {}",
            ran.code
        ));
    }
    if d.call_index("scale ").is_some() || d.call_index("/backup/download/").is_some() {
        p.push("the producers were stopped or a restore started despite recent drops".into());
    }
    d.check("clickhouse undrop-delay drill", &ran, p);
    d.failure_drills += 1;

    let ran = restore_with(
        &d,
        &[(
            "fail-restore",
            "can't create table: code: 57, message: Directory for table data store/abc/ already exists",
        )],
    );
    let mut p = Vec::new();
    if ran.code != 1
        || !ran.all().contains("FAILED restore ")
        || !ran.all().contains("already exists")
    {
        p.push(format!(
            "expected exit 1 at restore quoting the error, got {}",
            ran.code
        ));
    }
    p.extend(d.settled(&want));
    d.check("clickhouse failure drill", &ran, p);
    d.failure_drills += 1;

    // Damaged restore: clickhouse-backup reports success but one table of the backup is not
    // there afterwards. The comparison must fail naming it, and the producers come back.
    let ran = restore_with(&d, &[("restore-leaves-out", "otel.otel_traces")]);
    let mut p = Vec::new();
    if ran.code != 1
        || !ran.all().contains("FAILED tables-restored")
        || !ran
            .all()
            .contains("missing after the restore: otel.otel_traces")
    {
        p.push(format!(
            "expected exit 1 at tables-restored naming otel.otel_traces, got {}",
            ran.code
        ));
    }
    let restored = std::fs::read_to_string(ch.dir.join("restored.txt")).unwrap_or_default();
    if restored.lines().last() != Some(restore_name.as_str()) {
        p.push(format!("the damaged restore did not run: {restored:?}"));
    }
    p.extend(d.settled(&want));
    d.check("clickhouse damaged-restore drill", &ran, p);
    d.failure_drills += 1;

    // ------------------------------------------------------------ Elasticsearch (stand-ins)
    // Failure drill first: an index the snapshot does not hold. Nothing may be deleted.
    d.cluster.clear_calls();
    let es_sets = |indices: &str| {
        vec![
            ("snapshot", SNAPSHOT.to_string()),
            ("indices", indices.to_string()),
            ("elasticsearch_url", es.url()),
        ]
    };
    let ran = d.run(
        "restore-elasticsearch.yaml",
        &es_sets(&format!(
            "[\"{EVENTS}\", \"sts_not_in_snapshot-2025.01.01\"]"
        )),
    );
    let mut p = Vec::new();
    if ran.code != 1 || !ran.all().contains("FAILED snapshot-holds-indices") {
        p.push(format!(
            "expected exit 1 at snapshot-holds-indices, got {}",
            ran.code
        ));
    }
    if es.requests().iter().any(|r| r.starts_with("DELETE")) {
        p.push(format!("an index was deleted: {:?}", es.requests()));
    }
    if d.call_index("scale ").is_some() {
        p.push("indexing was stopped although the snapshot cannot restore".into());
    }
    d.check("elasticsearch snapshot-lacks-an-index drill", &ran, p);
    d.failure_drills += 1;

    let indices = format!("[\"{EVENTS}\", \"{TOPOLOGY}\"]");
    d.cluster.clear_calls();
    let ran = d.run("restore-elasticsearch.yaml", &es_sets(&indices));
    let mut p = Vec::new();
    if ran.code != 0 {
        p.push(format!("exited {}", ran.code));
    }
    p.extend(d.settled(&want));
    let now = es.indices();
    let reqs = es.requests();
    let snap_get = reqs
        .iter()
        .position(|r| r == &format!("GET /_snapshot/sts-backup/{SNAPSHOT}"));
    for i in [EVENTS, TOPOLOGY] {
        if now.get(i).and_then(|v| v["restored_from"].as_str()) != Some(SNAPSHOT) {
            p.push(format!(
                "index {i} was not restored from {SNAPSHOT}: {:?}",
                now.get(i)
            ));
        }
        let del = reqs.iter().position(|r| r == &format!("DELETE /{i}"));
        if !matches!((snap_get, del), (Some(a), Some(b)) if a < b) {
            p.push(format!(
                "index {i} was deleted before the snapshot was checked ({reqs:?})"
            ));
        }
    }
    if now.get(KEPT).and_then(|v| v.get("restored_from")).is_some() || !now.contains_key(KEPT) {
        p.push("an index not named in the restore was touched".into());
    }
    for dep in ["stackstate-e2es", "stackstate-trace2es"] {
        p.extend(d.stopped_before(&format!("deployment/{dep}"), "create -f -"));
    }
    if d.cluster
        .calls()
        .iter()
        .any(|c| c.starts_with("scale") && c.contains("stackstate-receiver"))
    {
        p.push("stackstate-receiver (not *2es) was scaled".into());
    }
    d.check("elasticsearch restore", &ran, p);

    std::fs::write(
        jobs.join("fail-restore-elasticsearch-snapshot.sh"),
        "lab failure injection",
    )
    .expect("fail file");
    let ran = d.run("restore-elasticsearch.yaml", &es_sets(&indices));
    std::fs::remove_file(jobs.join("fail-restore-elasticsearch-snapshot.sh")).expect("fail file");
    let mut p = Vec::new();
    if ran.code != 1 {
        p.push(format!("expected exit 1, got {}", ran.code));
    }
    p.extend(d.settled(&want));
    d.check("elasticsearch failing-job drill", &ran, p);
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
    let stand_ins = "STAND-INS: kubectl (tests/standins/kubectl: chart job templates from the recorded contract, placeholders refused, pods Terminating 3 s, rollouts 1 s, Job retries), the chart's job container scripts, Elasticsearch's API, clickhouse-backup server and its REST API, StackGraph";
    if let Some(why) = vm_unavailable {
        report!(
            "drill stackstate: INCOMPLETE (victoria-metrics not drilled: {why}; stackgraph, clickhouse, elasticsearch ok against stand-ins; {} failure drills ok; {stand_ins})",
            d.failure_drills
        );
        panic!("drill stackstate could not run its victoria-metrics part: {why}");
    }
    report!(
        "drill stackstate: ok ({vm_summary}; stackgraph, clickhouse (2 API backups, a scheduled backup refused before and during the plan's, restore + mark cache on 2 pods, the backup's tables found after it), elasticsearch (snapshot checked before deleting): {} workloads back at their counts after every run; {} failure drills ok; {stand_ins})",
        want.len(),
        d.failure_drills
    );
}

fn ran_none() -> Ran {
    Ran::default()
}

/// The cluster: workloads, the ClickHouse pods and the chart's configmap of job templates.
fn write_cluster(d: &Drill, vm_hook: Option<Vec<String>>, env: &[(&str, String)]) {
    let mut state = initial_state(vm_hook);
    let (name, cm) = lab::chart_configmap(env);
    state["namespaces"][NS]["configmaps"] = json!({ name: cm });
    d.cluster.write(&state);
}
