//! Step types of the k8s group against their real counterparts (see each test).
//!
//! There is no Kubernetes API server on this machine, so the plans run against the kubectl
//! stand-in in tests/standins/kubectl (a Python 3 script that keeps a cluster in a JSON
//! state file, with kubectl's argument syntax, output shapes and error texts); each test
//! gets its own state file in a temporary folder and asserts the state the plan left. The
//! unreachable-cluster test also runs the real kubectl (/usr/bin/kubectl, or the first on
//! PATH) against a closed loopback port.

use crate::steps_common::opsplan_command;
use opsplan_testkit::bin::{self, Ran};
use opsplan_testkit::kubectl::{standin, Cluster};

use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn fixture(name: &str) -> String {
    format!("tests/fixtures/steps/k8s/{name}")
}

/// Runs `opsplan <args>` from the repository root with the cluster's state file; killed
/// after 60 s.
fn opsplan(args: &[&str], cluster: Option<&Cluster>, env: &[(&str, &str)]) -> Ran {
    let mut cmd = opsplan_command();
    cmd.args(args)
        .current_dir(root())
        .env("NO_COLOR", "1")
        .env_remove("OPSPLAN_LOG")
        .env_remove("KUBECONFIG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(c) = cluster {
        cmd.env("KUBECTL_STANDIN_STATE", c.state_path());
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    bin::run(cmd)
}

/// `opsplan run FIXTURE --set kubectl=<stand-in> --set …`.
fn run(plan: &str, cluster: &Cluster, sets: &[&str], extra: &[&str]) -> Ran {
    let plan = fixture(plan);
    let kubectl = format!("kubectl={}", standin().display());
    let mut args = vec!["run", plan.as_str(), "--set", kubectl.as_str()];
    for s in sets {
        args.extend(["--set", s]);
    }
    args.extend(extra);
    opsplan(&args, Some(cluster), &[])
}

/// Outputs of a finished step (its first `step_finished`), from `--log-format json`.
fn outputs(ran: &Ran, step: &str) -> Value {
    match ran.finished(step).first() {
        Some(event) => event["outputs"].clone(),
        None => panic!("no step_finished for {step} in:\n{}", ran.all()),
    }
}

fn dop() -> Value {
    json!({
        "server": "10.0.0.1:6443",
        "contexts": ["lab"],
        "namespaces": {"d8-observability-platform": {
            "deployments": {
                "backend": {"replicas": 2, "labels": {"app": "backend"}},
                "alertgate-receiver": {"replicas": 1, "labels": {"app": "alertgate-receiver"}},
                "alertgate-api": {"replicas": 3, "labels": {"app": "alertgate-api"}},
                "ui": {"replicas": 2, "labels": {"app": "ui"}}
            },
            "pods": {
                "postgres-a": {"labels": {"spilo-role": "master"}, "phase": "Pending", "containers": ["postgres"]},
                "postgres-b": {"labels": {"spilo-role": "master"}, "phase": "Running", "containers": ["postgres"]},
                "postgres-c": {"labels": {"spilo-role": "replica"}, "phase": "Running", "containers": ["postgres"]}
            },
            "cronjobs": {"backend-clean-silences": {}, "host-load": {}, "postgres-backup": {}}
        }}
    })
}

const DOP: &str = "d8-observability-platform";

fn dop_counts() -> BTreeMap<String, u64> {
    [
        ("alertgate-api", 3),
        ("alertgate-receiver", 1),
        ("backend", 2),
        ("ui", 2),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

// ------------------------------------------------------------------------ k8s.scale

#[test]
fn scale_down_records_previous_counts_and_scale_up_restores_them() {
    let c = Cluster::new(&dop());
    let ran = run("scale-restore.yaml", &c, &[], &["--log-format", "json"]);
    assert_eq!(ran.code, 0, "{}", ran.all());
    assert_eq!(
        outputs(&ran, "scale-down")["previous"],
        json!({"deployment/alertgate-api": 3, "deployment/alertgate-receiver": 1, "deployment/backend": 2})
    );
    assert_eq!(c.replicas(DOP, "deployments"), dop_counts());
    let calls = c.calls();
    for (down, up) in [
        (
            "scale deployment/backend --replicas=0 --current-replicas=2",
            "scale deployment/backend --replicas=2 --current-replicas=0",
        ),
        (
            "scale deployment/alertgate-api --replicas=0 --current-replicas=3",
            "scale deployment/alertgate-api --replicas=3 --current-replicas=0",
        ),
    ] {
        let d = calls
            .iter()
            .position(|c| c.ends_with(down))
            .unwrap_or_else(|| panic!("no `{down}` in {calls:#?}"));
        let u = calls
            .iter()
            .position(|c| c.ends_with(up))
            .unwrap_or_else(|| panic!("no `{up}` in {calls:#?}"));
        assert!(d < u, "scaled up before down: {calls:#?}");
    }
    assert!(
        !calls.iter().any(|c| c.contains("deployment/ui")),
        "ui was touched: {calls:#?}"
    );
    // The restore ran in the Running master, not the Pending one listed first.
    assert!(
        calls.iter().any(|c| c.contains("exec postgres-b --")),
        "{calls:#?}"
    );
}

#[test]
fn cleanup_restores_the_recorded_counts_when_a_later_step_fails() {
    let c = Cluster::new(&dop());
    let ran = run("scale-restore.yaml", &c, &["restore_exit=3"], &[]);
    assert_eq!(ran.code, 1, "{}", ran.all());
    assert_eq!(
        ran.failure("restore-db"),
        "`sh -c 'echo \"restoring into $POD_NAME\"; exit \"$1\"' sh 3` exited with code 3 in pod postgres-b (namespace `d8-observability-platform`, context `lab`)"
    );
    assert!(ran.all().contains("ok cleanup scale-up"), "{}", ran.all());
    // The workloads were really down in between, and are back at exactly their counts.
    assert!(c
        .calls()
        .iter()
        .any(|c| c.ends_with("scale deployment/backend --replicas=0 --current-replicas=2")));
    assert_eq!(c.replicas(DOP, "deployments"), dop_counts());
}

#[test]
fn scale_by_selector_and_glob() {
    let c = Cluster::new(&json!({"namespaces": {"ops": {
        "deployments": {
            "e2es": {"replicas": 2}, "trace2es": {"replicas": 1}, "api": {"replicas": 1},
            "web": {"replicas": 4, "labels": {"tier": "front"}}
        },
        "statefulsets": {"cache": {"replicas": 3, "labels": {"tier": "front"}}, "db": {"replicas": 1, "labels": {"tier": "data"}}}
    }}}));
    let ran = run(
        "one-scale.yaml",
        &c,
        &[
            "context=",
            "resource=deployment/*2es",
            "selector=tier in (front)",
        ],
        &["--log-format", "json"],
    );
    assert_eq!(ran.code, 0, "{}", ran.all());
    assert_eq!(
        outputs(&ran, "scale")["previous"],
        json!({"deployment/e2es": 2, "deployment/trace2es": 1, "deployment/web": 4, "statefulset/cache": 3})
    );
    let deployments = c.replicas("ops", "deployments");
    assert_eq!(deployments["e2es"], 0);
    assert_eq!(deployments["trace2es"], 0);
    assert_eq!(deployments["web"], 0);
    assert_eq!(deployments["api"], 1);
    let sts = c.replicas("ops", "statefulsets");
    assert_eq!((sts["cache"], sts["db"]), (0, 1));
}

#[test]
fn glob_matching_nothing_is_an_error() {
    let c =
        Cluster::new(&json!({"namespaces": {"ops": {"deployments": {"api": {"replicas": 1}}}}}));
    let ran = run(
        "one-scale.yaml",
        &c,
        &["context=", "resource=deployment/*2es"],
        &[],
    );
    assert_eq!(ran.code, 1, "{}", ran.all());
    assert_eq!(
        ran.failure("scale"),
        "no deployment matches `*2es` in namespace `ops`, current context"
    );
}

#[test]
fn a_refused_scale_puts_back_what_was_already_scaled() {
    let c = Cluster::new(&json!({
        "deny": ["scale statefulset/db"],
        "namespaces": {"ops": {
            "deployments": {"api": {"replicas": 2, "labels": {"app": "x"}}},
            "statefulsets": {"db": {"replicas": 1, "labels": {"app": "x"}}}
        }}
    }));
    let ran = run(
        "one-scale.yaml",
        &c,
        &["context=", "resource=", "selector=app=x"],
        &[],
    );
    assert_eq!(ran.code, 1, "{}", ran.all());
    assert_eq!(
        ran.failure("scale"),
        "permission denied by the Kubernetes API (current context): statefulsets.apps \"db\" is forbidden: User \"standin\" cannot patch resource \"statefulsets/scale\" in API group \"apps\" in the namespace \"ops\"; put back deployment/api to 2"
    );
    assert_eq!(c.replicas("ops", "deployments")["api"], 2);
    assert!(c
        .calls()
        .iter()
        .any(|c| c.ends_with("scale deployment/api --replicas=0 --current-replicas=2")));
}

/// The acquiring scale-down itself fails halfway: it puts back what it changed and says in
/// its `previous` output that nothing is left, so the release (`restore:` that output)
/// renders and does nothing, and the run ends failed (1), not with a failed rollback (3).
#[test]
fn a_failed_scale_down_leaves_its_release_nothing_to_do() {
    let mut state = dop();
    state["deny"] = json!(["scale deployment/backend"]);
    let c = Cluster::new(&state);
    let ran = run("scale-restore.yaml", &c, &[], &[]);
    assert_eq!(ran.code, 1, "{}", ran.all());
    assert!(
        ran.all().contains("cleanup") && ran.all().contains("scale-up"),
        "the release ran as cleanup: {}",
        ran.all()
    );
    assert!(!ran.all().contains("ROLLBACK FAILED"), "{}", ran.all());
    assert_eq!(
        c.replicas(DOP, "deployments"),
        dop_counts(),
        "every workload is back at its original count"
    );
}

#[test]
fn scale_wait_deadline_names_the_unsettled_workload() {
    let c = Cluster::new(
        &json!({"contexts": ["lab"], "namespaces": {"ops": {"deployments": {
            "backend": {"replicas": 2, "stuck": true}
        }}}}),
    );
    let ran = run("one-scale.yaml", &c, &[], &[]);
    assert_eq!(ran.code, 1, "{}", ran.all());
    assert_eq!(
        ran.failure("scale"),
        "replicas did not settle within 2s in namespace `ops`, context `lab`: deployment/backend: 2 replicas, 2 ready (want 0); put back deployment/backend to 2"
    );
    assert_eq!(c.replicas("ops", "deployments")["backend"], 2);
}

// ------------------------------------------------------------------------ errors

#[test]
fn no_kubectl_at_all() {
    let c = Cluster::new(&json!({}));
    let empty = tempfile::tempdir().expect("temp dir");
    let path = empty.path().display().to_string();
    let plan = fixture("one-scale.yaml");
    let ran = opsplan(&["run", &plan], Some(&c), &[("PATH", &path)]);
    assert_eq!(ran.code, 1, "{}", ran.all());
    assert_eq!(
        ran.failure("scale"),
        format!("kubectl not found: no executable `kubectl` in PATH ({path}); install kubectl or set `kubectl:` to its path")
    );
    let ran = opsplan(
        &["run", &plan, "--set", "kubectl=/opt/nowhere/kubectl"],
        Some(&c),
        &[],
    );
    assert_eq!(
        ran.failure("scale"),
        "kubectl not found: /opt/nowhere/kubectl does not exist; set `kubectl:` to the path of the kubectl binary"
    );
}

#[test]
fn the_standin_is_found_on_path_by_default() {
    let c = Cluster::new(
        &json!({"namespaces": {"ops": {"deployments": {"backend": {"replicas": 2}}}}}),
    );
    let dir = root()
        .join("tests/standins")
        .canonicalize()
        .expect("standins");
    let path = format!(
        "{}:{}",
        dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let ran = opsplan(
        &["run", &fixture("one-scale.yaml"), "--set", "context="],
        Some(&c),
        &[("PATH", &path)],
    );
    assert_eq!(ran.code, 0, "{}", ran.all());
    assert_eq!(c.replicas("ops", "deployments")["backend"], 0);
}

#[test]
fn unreachable_cluster_standin() {
    let c = Cluster::new(&json!({"unreachable": true, "server": "10.0.0.1:6443"}));
    let ran = run("one-scale.yaml", &c, &[], &[]);
    assert_eq!(ran.code, 1, "{}", ran.all());
    assert_eq!(
        ran.failure("scale"),
        "cannot reach the Kubernetes API server at 10.0.0.1:6443 (context `lab`): connection refused"
    );
}

/// The same classification against the real kubectl: a kubeconfig pointing at a loopback
/// port nothing listens on.
#[test]
fn unreachable_cluster_real_kubectl() {
    let real = ["/usr/bin/kubectl", "/usr/local/bin/kubectl"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .expect("this test runs the real kubectl; install it (e.g. the kubectl package) at /usr/bin/kubectl");
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr").port()
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(
        &kubeconfig,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- cluster: {{server: \"https://127.0.0.1:{port}\"}}\n  name: lab\ncontexts:\n- context: {{cluster: lab, user: u}}\n  name: lab\ncurrent-context: lab\nusers:\n- name: u\n  user: {{token: abc}}\n"
        ),
    )
    .expect("kubeconfig");
    let ran = opsplan(
        &[
            "run",
            &fixture("one-scale.yaml"),
            "--set",
            &format!("kubectl={real}"),
            "--set",
            &format!("kubeconfig={}", kubeconfig.display()),
        ],
        None,
        &[("HOME", &dir.path().display().to_string())],
    );
    assert_eq!(ran.code, 1, "{}", ran.all());
    assert_eq!(
        ran.failure("scale"),
        format!(
            "cannot reach the Kubernetes API server at 127.0.0.1:{port} (context `lab` of {}): connection refused",
            kubeconfig.display()
        )
    );
}

#[test]
fn resource_not_found() {
    let c = Cluster::new(
        &json!({"contexts": ["lab"], "namespaces": {"ops": {"deployments": {"backend": {"replicas": 2}}}}}),
    );
    let ran = run("one-scale.yaml", &c, &["resource=deployment/bakend"], &[]);
    assert_eq!(ran.code, 1, "{}", ran.all());
    assert_eq!(
        ran.failure("scale"),
        "deployment bakend not found in namespace `ops`, context `lab`"
    );
    assert!(!c.calls().iter().any(|c| c.contains(" scale ")));
}

#[test]
fn unknown_context() {
    let c = Cluster::new(&json!({"contexts": ["lab"]}));
    let ran = run("one-scale.yaml", &c, &["context=prod"], &[]);
    assert_eq!(ran.code, 1, "{}", ran.all());
    assert_eq!(ran.failure("scale"), "kubeconfig has no context `prod`");
}

// ------------------------------------------------------------------------ k8s.exec, kubectl

#[test]
fn exec_by_selector_with_stdin_and_kubectl_delete() {
    let c = Cluster::new(&dop());
    let dir = tempfile::tempdir().expect("temp dir");
    let set_dir = format!("dir={}", dir.path().display());
    let ran = run("exec-kubectl.yaml", &c, &[&set_dir], &["--force"]);
    assert_eq!(ran.code, 0, "{}", ran.all());
    let loaded =
        std::fs::read_to_string(dir.path().join("loaded-by-postgres-b.sql")).expect("dump loaded");
    assert_eq!(
        loaded,
        "CREATE TABLE alerts (id int);\nINSERT INTO alerts VALUES (1);\n"
    );
    assert!(
        c.names(DOP, "cronjobs").is_empty(),
        "cronjobs left: {:?}",
        c.names(DOP, "cronjobs")
    );
    assert!(c
        .calls()
        .iter()
        .any(|c| c.contains("exec -i postgres-b --container=postgres -- sh -c")));
}

/// A k8s.exec whose command fails still sets `pod` (its reference page says so), so the
/// cleanup after it can name or clean up the pod it ran in.
#[test]
fn a_failed_exec_still_names_its_pod_for_cleanup() {
    let c = Cluster::new(&dop());
    let dir = tempfile::tempdir().expect("temp dir");
    let set_dir = format!("dir={}", dir.path().display());
    let ran = run("exec-fails.yaml", &c, &[&set_dir], &[]);
    assert_eq!(ran.code, 1, "{}", ran.all());
    assert!(
        ran.all().contains("exited with code 3 in pod postgres-b"),
        "{}",
        ran.all()
    );
    let pod = std::fs::read_to_string(dir.path().join("pod")).expect("the cleanup ran");
    assert_eq!(pod, "postgres-b\n");
}

/// A large dump, gzip'd, streamed through `stdin_file` with `gunzip`: the command receives
/// every byte; a truncated archive fails the step even though the command exited 0.
#[test]
fn exec_streams_a_gzipped_dump_file() {
    use std::io::Write;
    let c = Cluster::new(&dop());
    let dir = tempfile::tempdir().expect("temp dir");
    let sql: String = (0..200_000)
        .map(|i| format!("INSERT INTO alerts VALUES ({i});\n"))
        .collect();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(sql.as_bytes()).expect("compress");
    let compressed = gz.finish().expect("compress");
    let dump = dir.path().join("dop.dump.gz");
    std::fs::write(&dump, &compressed).expect("write dump");
    let set_dir = format!("dir={}", dir.path().display());
    let set_dump = format!("dump={}", dump.display());
    let ran = run("exec-dump-file.yaml", &c, &[&set_dir, &set_dump], &[]);
    assert_eq!(ran.code, 0, "{}", ran.all());
    let loaded = std::fs::read_to_string(dir.path().join("loaded.sql")).expect("dump loaded");
    assert_eq!(loaded.len(), sql.len());
    assert!(loaded == sql, "the loaded dump differs from the original");

    std::fs::write(&dump, &compressed[..compressed.len() / 2]).expect("truncate dump");
    let ran = run("exec-dump-file.yaml", &c, &[&set_dir, &set_dump], &[]);
    assert_eq!(ran.code, 1, "{}", ran.all());
    let failure = ran.failure("load-dump");
    assert!(
        failure.contains("its input was not fully sent")
            && failure.contains("is not a complete gzip stream"),
        "{failure}"
    );
}

#[test]
fn kubectl_delete_is_destructive_and_refused_without_force() {
    let c = Cluster::new(&dop());
    let dir = tempfile::tempdir().expect("temp dir");
    let ran = run(
        "exec-kubectl.yaml",
        &c,
        &[&format!("dir={}", dir.path().display())],
        &[],
    );
    assert_ne!(ran.code, 0, "{}", ran.all());
    assert_eq!(c.names(DOP, "cronjobs").len(), 3);
}

#[test]
fn exec_without_a_running_pod() {
    let mut state = dop();
    state["namespaces"][DOP]["pods"]["postgres-b"]["phase"] = json!("Failed");
    let c = Cluster::new(&state);
    let dir = tempfile::tempdir().expect("temp dir");
    let ran = run(
        "exec-kubectl.yaml",
        &c,
        &[&format!("dir={}", dir.path().display())],
        &["--force"],
    );
    assert_eq!(ran.code, 1, "{}", ran.all());
    assert_eq!(
        ran.failure("load-dump"),
        "no Running pod with labels `spilo-role=master` in namespace `d8-observability-platform`, current context: found postgres-a (Pending), postgres-b (Failed)"
    );
}

// ------------------------------------------------------------------------ k8s.job

fn stackstate() -> Value {
    json!({"namespaces": {"stackstate": {"deployments": {
        "stackstate-e2es": {"replicas": 2},
        "stackstate-trace2es": {"replicas": 1},
        "stackstate-api": {"replicas": 1}
    }}}})
}

fn ss_counts(c: &Cluster) -> Vec<u64> {
    let d = c.replicas("stackstate", "deployments");
    vec![
        d["stackstate-e2es"],
        d["stackstate-trace2es"],
        d["stackstate-api"],
    ]
}

#[test]
fn job_success_streams_logs_and_is_deleted() {
    let c = Cluster::new(&stackstate());
    let ran = run(
        "es-restore.yaml",
        &c,
        &["job_seconds=0.5"],
        &["--log-format", "json"],
    );
    assert_eq!(ran.code, 0, "{}", ran.all());
    let out = outputs(&ran, "restore");
    assert!(
        out["name"]
            .as_str()
            .is_some_and(|n| n.starts_with("elasticsearch-restore-")),
        "{out}"
    );
    assert_eq!(
        out["logs"],
        "=== Restoring Elasticsearch snapshot \"sts-backup-20210223-0300\"\nrestored index sts_internal_events-2021.02.19\nshards: total 3, failed 0, successful 3"
    );
    assert!(
        ran.all()
            .contains("shards: total 3, failed 0, successful 3"),
        "logs not in the run log"
    );
    assert!(c.names("stackstate", "jobs").is_empty(), "job left behind");
    assert_eq!(ss_counts(&c), vec![2, 1, 1]);
    assert!(!c.calls().iter().any(|c| c.contains("stackstate-api")));
}

#[test]
fn job_failure_quotes_the_last_log_lines_and_keeps_the_job() {
    let c = Cluster::new(&stackstate());
    let ran = run("es-restore.yaml", &c, &["outcome=Failed"], &[]);
    assert_eq!(ran.code, 1, "{}", ran.all());
    let jobs = c.names("stackstate", "jobs");
    assert_eq!(jobs.len(), 1, "the failed job is kept for inspection");
    assert_eq!(
        ran.failure("restore"),
        format!(
            "job {0} failed in namespace `stackstate`, current context (BackoffLimitExceeded: Job has reached the specified backoff limit); the job was kept: kubectl -n stackstate describe job {0}; last log lines:\nrestored index sts_internal_events-2021.02.19\nshards: total 3, failed 0, successful 3",
            jobs[0]
        )
    );
    assert_eq!(
        ss_counts(&c),
        vec![2, 1, 1],
        "indexing restarted after the failure"
    );
}

#[test]
fn job_failure_with_delete_always_removes_the_job() {
    let c = Cluster::new(&stackstate());
    let ran = run(
        "es-restore.yaml",
        &c,
        &["outcome=Failed", "delete=always"],
        &[],
    );
    assert_eq!(ran.code, 1, "{}", ran.all());
    assert!(
        ran.failure("restore")
            .contains("; the job was deleted; last log lines:"),
        "{}",
        ran.all()
    );
    assert!(c.names("stackstate", "jobs").is_empty());
}

#[test]
fn job_deadline() {
    let c = Cluster::new(&stackstate());
    let ran = run(
        "es-restore.yaml",
        &c,
        &["job_seconds=60", "deadline=1s", "delete=never"],
        &[],
    );
    assert_eq!(ran.code, 1, "{}", ran.all());
    let jobs = c.names("stackstate", "jobs");
    assert_eq!(jobs.len(), 1);
    assert!(
        ran.failure("restore").starts_with(&format!(
            "job {} did not finish within 1s in namespace `stackstate`, current context (1 pods active); the job was kept",
            jobs[0]
        )),
        "{}",
        ran.all()
    );
    assert_eq!(ss_counts(&c), vec![2, 1, 1]);
}

// ------------------------------------------------------------------------ k8s.wait

fn ops_workloads(stuck: bool) -> Value {
    json!({"namespaces": {"ops": {
        "deployments": {"backend": {"replicas": 2, "stuck": stuck, "status_replicas": if stuck { 1 } else { 2 }}},
        "pods": {
            "backend-1": {"labels": {"app": "backend"}, "phase": "Running"},
            "db-0": {"labels": {"app": "db"}, "phase": "Running"},
            "other": {"labels": {"app": "other"}, "phase": "Pending"}
        }
    }}})
}

#[test]
fn wait_for_rollout_and_pods_ready() {
    let c = Cluster::new(&ops_workloads(false));
    let ran = run("wait.yaml", &c, &[], &["--log-format", "json"]);
    assert_eq!(ran.code, 0, "{}", ran.all());
    assert_eq!(
        outputs(&ran, "rollout")["message"],
        "deployment \"backend\" successfully rolled out"
    );
    assert_eq!(
        outputs(&ran, "pods-ready")["message"],
        "pod/backend-1 condition met\npod/db-0 condition met"
    );
}

#[test]
fn wait_deadline() {
    let c = Cluster::new(&ops_workloads(true));
    let ran = run("wait.yaml", &c, &["deadline=1s"], &[]);
    assert_eq!(ran.code, 1, "{}", ran.all());
    assert_eq!(
        ran.failure("rollout"),
        "the rollout of deployment/backend not reached within 1s in namespace `ops`, current context; last status: Waiting for deployment \"backend\" rollout to finish: 1 of 2 updated replicas are available..."
    );
}

// ------------------------------------------------------------------------ preview, validate

fn preview(args: &[&str]) -> String {
    let ran = opsplan(args, None, &[]);
    assert_eq!(ran.code, 0, "{}", ran.all());
    ran.all()
}

#[test]
fn preview_scale_restore() {
    insta::assert_snapshot!(preview(&[
        "preview",
        &fixture("scale-restore.yaml"),
        "--set",
        "kubectl=kubectl"
    ]));
}

#[test]
fn preview_scale_restore_fail_at_restore() {
    insta::assert_snapshot!(preview(&[
        "preview",
        &fixture("scale-restore.yaml"),
        "--fail-at",
        "restore-db"
    ]));
}

#[test]
fn preview_es_restore() {
    insta::assert_snapshot!(preview(&["preview", &fixture("es-restore.yaml")]));
}

#[test]
fn preview_exec_kubectl() {
    insta::assert_snapshot!(preview(&[
        "preview",
        &fixture("exec-kubectl.yaml"),
        "--set",
        "dir=/backups/dop"
    ]));
}

#[test]
fn preview_wait() {
    insta::assert_snapshot!(preview(&["preview", &fixture("wait.yaml")]));
}

#[test]
fn validate_wrong_arguments() {
    let ran = opsplan(&["validate", &fixture("invalid-args.yaml")], None, &[]);
    assert_ne!(ran.code, 0);
    insta::assert_snapshot!(ran.all());
}
