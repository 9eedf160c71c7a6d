//! Step types of the docker group against the machine's real Docker engine (`DOCKER_HOST`
//! honoured). There is no registry: each test builds its own tag of a tiny image FROM
//! scratch with Debian's static busybox (package `busybox-static`) copied in, and a [`Lab`]
//! guard removes every container, volume and image tag the test made, also when it fails.
//! Names carry the test's pid so parallel runs do not meet.
//!
//! Preview and diagnostics snapshots need no engine.

use crate::steps_common::opsplan_command;
use opsplan_testkit::bin::{self, Ran};

use bollard::models::{ContainerCreateBody, HealthConfig, HostConfig, Mount, MountType};
use bollard::query_parameters::{
    BuildImageOptionsBuilder, CreateContainerOptionsBuilder, RemoveContainerOptionsBuilder,
    RemoveImageOptionsBuilder, RemoveVolumeOptionsBuilder,
};
use bollard::Docker;
use futures::StreamExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_opsplan");
const BUSYBOX: &str = "/bin/busybox";
const FIXTURES: &str = "tests/fixtures/steps/docker";

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn fixture(name: &str) -> String {
    format!("{FIXTURES}/{name}")
}

/// The engine address the binary will use, as its error messages name it.
fn engine_address() -> String {
    match std::env::var("DOCKER_HOST") {
        Ok(h) if !h.trim().is_empty() => format!("{} (from DOCKER_HOST)", h.trim()),
        _ => "unix:///var/run/docker.sock".into(),
    }
}

/// Runs the binary from the repository root, killing it after `limit`.
fn opsplan_with(args: &[&str], configure: impl FnOnce(&mut Command), limit: Duration) -> Ran {
    let mut cmd = opsplan_command();
    cmd.args(args)
        .current_dir(repo_root())
        .env("NO_COLOR", "1")
        .env_remove("OPSPLAN_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    configure(&mut cmd);
    bin::run_within(cmd, limit)
}

fn opsplan(args: &[&str]) -> Ran {
    opsplan_with(args, |_| {}, Duration::from_secs(120))
}

/// `opsplan run FIXTURE --set k=v …`, asserting success.
fn run_ok(plan: &str, sets: &[(&str, &str)], extra: &[&str]) -> Ran {
    let ran = run_plan(plan, sets, extra);
    assert_eq!(
        ran.code,
        0,
        "{plan} failed (exit {}):\n{}",
        ran.code,
        ran.all()
    );
    ran
}

fn run_plan(plan: &str, sets: &[(&str, &str)], extra: &[&str]) -> Ran {
    let path = fixture(plan);
    let mut args: Vec<String> = vec!["run".into(), path];
    for (k, v) in sets {
        args.push("--set".into());
        args.push(format!("{k}={v}"));
    }
    args.extend(extra.iter().map(std::string::ToString::to_string));
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    opsplan(&refs)
}

/// Everything one test made on the engine, removed on drop.
struct Lab {
    rt: tokio::runtime::Runtime,
    docker: Docker,
    prefix: String,
    image: String,
    containers: Mutex<Vec<String>>,
    volumes: Mutex<Vec<String>>,
}

static SERIAL: AtomicUsize = AtomicUsize::new(0);

impl Lab {
    fn new(test: &str) -> Lab {
        assert!(
            Path::new(BUSYBOX).is_file(),
            "{BUSYBOX} is missing: install the Debian package `busybox-static`"
        );
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("tokio runtime");
        let docker = Docker::connect_with_defaults().expect("Docker client");
        let docker = rt.block_on(docker.negotiate_version()).unwrap_or_else(|e| {
            panic!(
                "these tests need a Docker engine at {}: {e}",
                engine_address()
            )
        });
        let n = SERIAL.fetch_add(1, Ordering::SeqCst);
        let prefix = format!("opsplan-test-{}-{n}-{test}", std::process::id());
        let image = format!("opsplan-test-busybox:{}-{n}", std::process::id());
        let lab = Lab {
            rt,
            docker,
            prefix,
            image,
            containers: Mutex::new(Vec::new()),
            volumes: Mutex::new(Vec::new()),
        };
        lab.build_image();
        lab
    }

    /// A unique name for a container or volume of this test.
    fn name(&self, what: &str) -> String {
        format!("{}-{what}", self.prefix)
    }

    fn track_container(&self, name: &str) {
        self.containers
            .lock()
            .expect("lab lock")
            .push(name.to_string());
    }

    fn track_volume(&self, name: &str) {
        self.volumes
            .lock()
            .expect("lab lock")
            .push(name.to_string());
    }

    /// FROM scratch, busybox with its applets, a user `app` (1234) for the `user` checks.
    fn build_image(&self) {
        let mut context = tar::Builder::new(Vec::new());
        let mut add = |name: &str, data: &[u8], mode: u32| {
            let mut header = tar::Header::new_gnu();
            header.set_size(data.len() as u64);
            header.set_mode(mode);
            header.set_cksum();
            context.append_data(&mut header, name, data).expect("tar");
        };
        let dockerfile = "FROM scratch\n\
                          COPY busybox /bin/busybox\n\
                          RUN [\"/bin/busybox\", \"--install\", \"-s\", \"/bin\"]\n\
                          COPY passwd group /etc/\n\
                          RUN [\"/bin/busybox\", \"mkdir\", \"-p\", \"/tmp\", \"/data\"]\n";
        add("Dockerfile", dockerfile.as_bytes(), 0o644);
        add(
            "busybox",
            &std::fs::read(BUSYBOX).expect("read busybox"),
            0o755,
        );
        add(
            "passwd",
            b"root:x:0:0:root:/root:/bin/sh\napp:x:1234:1234:app:/tmp:/bin/sh\n",
            0o644,
        );
        add("group", b"root:x:0:\napp:x:1234:\n", 0o644);
        let context = context.into_inner().expect("tar");
        let options = BuildImageOptionsBuilder::default()
            .dockerfile("Dockerfile")
            .t(&self.image)
            .rm(true)
            .forcerm(true)
            .build();
        self.rt.block_on(async {
            let mut stream =
                self.docker
                    .build_image(options, None, Some(bollard::body_full(context.into())));
            while let Some(item) = stream.next().await {
                match item {
                    Ok(info) => {
                        if let Some(detail) = info.error_detail {
                            panic!("building {}: {detail:?}", self.image);
                        }
                    }
                    Err(e) => panic!("building {}: {e}", self.image),
                }
            }
        });
    }

    /// A long-running "service" container (what `openc3-tsdb-1` is to the plans), with a
    /// volume at /data and optionally a healthcheck that passes after two seconds.
    fn service(&self, name: &str, volume: Option<&str>, healthcheck: bool) {
        let script = if healthcheck {
            "rm -f /tmp/ready; sleep 2; touch /tmp/ready; exec sleep 1000"
        } else {
            "exec sleep 1000"
        };
        let body = ContainerCreateBody {
            image: Some(self.image.clone()),
            cmd: Some(vec!["sh".into(), "-c".into(), script.into()]),
            healthcheck: healthcheck.then(|| HealthConfig {
                test: Some(vec![
                    "CMD".into(),
                    "test".into(),
                    "-f".into(),
                    "/tmp/ready".into(),
                ]),
                interval: Some(300_000_000),
                timeout: Some(1_000_000_000),
                retries: Some(100),
                ..Default::default()
            }),
            host_config: Some(HostConfig {
                mounts: volume.map(|v| {
                    vec![Mount {
                        target: Some("/data".into()),
                        source: Some(v.into()),
                        typ: Some(MountType::VOLUME),
                        ..Default::default()
                    }]
                }),
                ..Default::default()
            }),
            ..Default::default()
        };
        self.create_and_start(name, body, true);
    }

    fn create_and_start(&self, name: &str, body: ContainerCreateBody, start: bool) {
        self.track_container(name);
        self.rt.block_on(async {
            let options = CreateContainerOptionsBuilder::default().name(name).build();
            self.docker
                .create_container(Some(options), body)
                .await
                .unwrap_or_else(|e| panic!("creating {name}: {e}"));
            if start {
                self.docker
                    .start_container(name, None)
                    .await
                    .unwrap_or_else(|e| panic!("starting {name}: {e}"));
            }
        });
    }

    fn remove_container(&self, name: &str) {
        let options = RemoveContainerOptionsBuilder::default()
            .force(true)
            .v(true)
            .build();
        let _ = self
            .rt
            .block_on(self.docker.remove_container(name, Some(options)));
    }

    fn container_exists(&self, name: &str) -> bool {
        self.rt
            .block_on(self.docker.inspect_container(name, None))
            .is_ok()
    }

    fn volume_exists(&self, name: &str) -> bool {
        self.rt.block_on(self.docker.inspect_volume(name)).is_ok()
    }

    /// Containers of this test that the engine still knows, by the label docker.run sets
    /// or by name.
    fn leftover_containers(&self) -> Vec<String> {
        let options = bollard::query_parameters::ListContainersOptionsBuilder::default()
            .all(true)
            .build();
        self.rt
            .block_on(self.docker.list_containers(Some(options)))
            .unwrap_or_default()
            .into_iter()
            .flat_map(|c| c.names.unwrap_or_default())
            .filter(|n| n.contains(&self.prefix))
            .collect()
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for name in self
            .leftover_containers()
            .iter()
            .map(|n| n.trim_start_matches('/').to_string())
            .chain(self.containers.lock().expect("lab lock").clone())
        {
            self.remove_container(&name);
        }
        for name in self.volumes.lock().expect("lab lock").clone() {
            let options = RemoveVolumeOptionsBuilder::default().force(true).build();
            let _ = self
                .rt
                .block_on(self.docker.remove_volume(&name, Some(options)));
        }
        let options = RemoveImageOptionsBuilder::default().force(true).build();
        let _ = self
            .rt
            .block_on(self.docker.remove_image(&self.image, Some(options), None));
    }
}

fn mode(path: &Path) -> u32 {
    std::fs::symlink_metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o7777
}

fn mtime(path: &Path) -> i64 {
    std::fs::symlink_metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .mtime()
}

/// The whole data path of the COSMOS plans: volume create, a temporary container writing
/// into it through `volumes_from`, exec in the service, the volume copied out (contents,
/// modes, mtimes, owners compared with what was written) and a host folder copied in, the
/// volume refused while in use and then removed.
#[test]
fn volume_run_exec_copy_roundtrip() {
    let lab = Lab::new("data");
    let volume = lab.name("v");
    let service = lab.name("svc");
    lab.track_volume(&volume);
    let tmp = tempfile::tempdir().expect("temp dir");
    let dir = tmp.path().to_str().expect("utf-8 temp path").to_string();

    run_ok("volume-create.yaml", &[("volume", &volume)], &[]);
    assert!(lab.volume_exists(&volume));

    lab.service(&service, Some(&volume), false);
    let incoming = tmp.path().join("in");
    std::fs::create_dir_all(incoming.join("deeper")).expect("file system");
    std::fs::write(incoming.join("in.txt"), "inside\n").expect("file system");
    std::fs::write(incoming.join("deeper/f"), "sixsix").expect("file system");
    std::fs::set_permissions(incoming.join("in.txt"), PermissionsExt::from_mode(0o600))
        .expect("file system");
    std::fs::set_permissions(incoming.join("deeper"), PermissionsExt::from_mode(0o700))
        .expect("file system");
    let t = filetime::FileTime::from_unix_time(1_600_000_000, 0);
    filetime::set_file_mtime(incoming.join("in.txt"), t).expect("file system");
    filetime::set_file_mtime(incoming.join("deeper/f"), t).expect("file system");
    filetime::set_file_mtime(incoming.join("deeper"), t).expect("file system");
    filetime::set_file_mtime(&incoming, t).expect("file system");

    let ran = run_ok(
        "data.yaml",
        &[("image", &lab.image), ("service", &service), ("dir", &dir)],
        &["--force"],
    );
    let all = ran.all();
    // Output is streamed to the log line by line, stderr marked as such.
    assert!(all.contains("write | written"), "{all}");
    assert!(all.contains("env-and-dir | hello from /data/sub"), "{all}");
    assert!(all.contains("env-and-dir ! warning"), "{all}");
    // What was copied in, as the service sees it.
    assert!(all.contains("look-inside | inside"), "{all}");
    assert!(
        all.contains("look-inside | /data/incoming/in.txt 600 1600000000"),
        "{all}"
    );
    assert!(
        all.contains("look-inside | /data/incoming/deeper 700 1600000000"),
        "{all}"
    );
    assert!(
        all.contains("look-inside | /data/incoming/deeper/f 644 1600000000"),
        "{all}"
    );

    // What was copied out, compared with what the container wrote.
    let out = tmp.path().join("out");
    assert_eq!(
        std::fs::read_to_string(out.join("a.txt")).expect("file system"),
        "alpha"
    );
    assert_eq!(mode(&out.join("a.txt")), 0o640);
    assert_eq!(mtime(&out.join("a.txt")), 1_614_834_367); // 2021-03-04 05:06:07 UTC
    assert_eq!(
        std::fs::read_to_string(out.join("sub/b.sh")).expect("file system"),
        "bravo\n"
    );
    assert_eq!(mode(&out.join("sub/b.sh")), 0o755);
    assert_eq!(mode(&out.join("sub")), 0o750);
    assert_eq!(mtime(&out.join("sub")), 1_577_934_245); // 2020-01-02 03:04:05 UTC
    let sub = std::fs::metadata(out.join("sub")).expect("file system");
    assert_eq!((sub.uid(), sub.gid()), (1234, 1234), "preserve_owner");
    assert_eq!(
        std::fs::read_link(out.join("link")).expect("file system"),
        Path::new("a.txt")
    );
    let names: Vec<String> = std::fs::read_dir(tmp.path())
        .expect("list the temp dir")
        .map(|e| {
            e.expect("file system")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    assert!(
        !names.iter().any(|n| n.contains("opsplan-partial")),
        "a staging folder was left behind: {names:?}"
    );

    // A second copy out into the same folder refuses to mix copies.
    let again = run_plan(
        "copy.yaml",
        &[("container", &service), ("path", "/data"), ("dir", &dir)],
        &[],
    );
    assert_eq!(again.code, 1, "{}", again.all());
    assert!(
        again.all().contains(&format!(
            "{dir}/out/a.txt already exists; set `overwrite: true` to replace it"
        )),
        "{}",
        again.all()
    );

    // A volume in use is not removed, and says so.
    let busy = run_plan("volume-remove.yaml", &[("volume", &volume)], &["--force"]);
    assert_eq!(busy.code, 1, "{}", busy.all());
    assert!(
        busy.all()
            .contains(&format!("volume `{volume}` is in use, so it was not removed: stop and remove the containers that use it first")),
        "{}",
        busy.all()
    );
    assert!(lab.volume_exists(&volume));

    lab.remove_container(&service);
    run_ok("volume-remove.yaml", &[("volume", &volume)], &["--force"]);
    assert!(!lab.volume_exists(&volume));
    // docker.run removed its temporary container.
    assert_eq!(lab.leftover_containers(), Vec::<String>::new());
}

/// Stop, start with the wait for the healthcheck, restart: against a container whose
/// healthcheck passes two seconds after it starts.
#[test]
fn stop_start_restart_wait_for_health() {
    let lab = Lab::new("life");
    let service = lab.name("svc");
    lab.service(&service, None, true);
    let ran = run_ok("lifecycle.yaml", &[("container", &service)], &[]);
    let all = ran.all();
    assert!(all.contains("ok start"), "{all}");
    let state = lab
        .rt
        .block_on(lab.docker.inspect_container(&service, None))
        .expect("inspect the container")
        .state
        .expect("a container state");
    assert_eq!(state.running, Some(true));
    assert_eq!(
        state.health.and_then(|h| h.status).map(|s| s.to_string()),
        Some("healthy".into())
    );

    // Without a healthcheck, `healthy` means running.
    let plain = lab.name("plain");
    let body = ContainerCreateBody {
        image: Some(lab.image.clone()),
        cmd: Some(vec!["sleep".into(), "1000".into()]),
        ..Default::default()
    };
    lab.create_and_start(&plain, body, false);
    run_ok("start.yaml", &[("container", &plain)], &[]);
    let state = lab
        .rt
        .block_on(lab.docker.inspect_container(&plain, None))
        .expect("inspect the container")
        .state
        .expect("a container state");
    assert_eq!(state.running, Some(true));
}

/// A container that exits instead of coming up fails the start at once, quoting its output.
#[test]
fn start_reports_a_container_that_exits() {
    let lab = Lab::new("exits");
    let name = lab.name("dies");
    let body = ContainerCreateBody {
        image: Some(lab.image.clone()),
        cmd: Some(vec![
            "sh".into(),
            "-c".into(),
            "echo cannot open /data/db; exit 3".into(),
        ]),
        ..Default::default()
    };
    lab.create_and_start(&name, body, false);
    let started = Instant::now();
    let ran = run_plan("start.yaml", &[("container", &name)], &[]);
    assert_eq!(ran.code, 1, "{}", ran.all());
    assert!(
        ran.all().contains(&format!(
            "container `{name}` exited with code 3 instead of coming up; its last output:\ncannot open /data/db"
        )),
        "{}",
        ran.all()
    );
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "did not fail early"
    );
}

/// A timed-out docker.run stops and removes its container.
#[test]
fn run_timeout_stops_and_removes_the_container() {
    let lab = Lab::new("cancel");
    let name = lab.name("long");
    lab.track_container(&name);
    let started = Instant::now();
    let ran = run_plan(
        "run.yaml",
        &[
            ("image", &lab.image),
            ("name", &name),
            ("command", "[sleep, '300']"),
        ],
        &["--grace", "1s"],
    );
    assert_eq!(ran.code, 1, "{}", ran.all());
    assert!(ran.all().contains("timed out after 3s"), "{}", ran.all());
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "took {:?}",
        started.elapsed()
    );
    assert!(
        !lab.container_exists(&name),
        "the container was left behind"
    );
}

/// docker.run's exit code check and a volume that must exist.
#[test]
fn run_checks_exit_code_and_volume() {
    let lab = Lab::new("exit");
    let ran = run_plan(
        "run.yaml",
        &[
            ("image", &lab.image),
            ("name", &lab.name("fails")),
            ("command", "[sh, -c, 'echo broken >&2; exit 4']"),
        ],
        &[],
    );
    assert_eq!(ran.code, 1, "{}", ran.all());
    assert!(
        ran.all().contains(&format!(
            "`sh` in a container of `{}` exited with code 4 (expected 0): broken",
            lab.image
        )),
        "{}",
        ran.all()
    );
    assert!(!lab.container_exists(&lab.name("fails")));

    let missing = lab.name("nov");
    lab.track_volume(&missing);
    let ran = run_plan(
        "run.yaml",
        &[
            ("image", &lab.image),
            ("name", &lab.name("nov")),
            ("volume", &missing),
        ],
        &[],
    );
    assert_eq!(ran.code, 1, "{}", ran.all());
    assert!(
        ran.all().contains(&format!(
            "volume `{missing}` (to mount at /data) does not exist on the Docker engine at {}; create it first",
            engine_address()
        )),
        "{}",
        ran.all()
    );
    assert!(!lab.volume_exists(&missing), "the volume was created");
}

/// The error sentences for an engine that is not there, a container, an image or a path
/// that does not exist, and a socket the user may not open.
#[test]
fn error_texts() {
    let lab = Lab::new("errors");
    let missing_socket = format!("/tmp/opsplan-test-{}-missing.sock", std::process::id());
    let ran = opsplan_with(
        &["run", &fixture("exec.yaml"), "--set", "container=whatever"],
        |c| {
            c.env("DOCKER_HOST", format!("unix://{missing_socket}"));
        },
        Duration::from_secs(120),
    );
    assert_eq!(ran.code, 1, "{}", ran.all());
    assert!(
        ran.all().contains(&format!(
            "no Docker engine reachable at unix://{missing_socket} (from DOCKER_HOST): the socket does not exist (is Docker running, and does DOCKER_HOST name the right socket?)"
        )),
        "{}",
        ran.all()
    );

    let nobody = lab.name("nobody");
    let ran = run_plan("exec.yaml", &[("container", &nobody)], &[]);
    assert_eq!(ran.code, 1, "{}", ran.all());
    assert!(
        ran.all().contains(&format!(
            "container `{nobody}` not found on the Docker engine at {} (starting `true` in container `{nobody}`)",
            engine_address()
        )),
        "{}",
        ran.all()
    );

    let image = format!("opsplan-test-missing:{}", std::process::id());
    let ran = run_plan(
        "run.yaml",
        &[("image", &image), ("name", &lab.name("noimage"))],
        &[],
    );
    assert_eq!(ran.code, 1, "{}", ran.all());
    assert!(
        ran.all().contains(&format!(
            "image `{image}` not found on the Docker engine at {}: there is no registry to pull it from, so build it there (`docker build -t {image} …`) or load it (`docker load -i …`) first",
            engine_address()
        )),
        "{}",
        ran.all()
    );

    let service = lab.name("svc");
    lab.service(&service, None, false);
    let tmp = tempfile::tempdir().expect("temp dir");
    let ran = run_plan(
        "copy.yaml",
        &[
            ("container", &service),
            ("path", "/no/such/dir"),
            ("dir", tmp.path().to_str().expect("utf-8 path")),
        ],
        &[],
    );
    assert_eq!(ran.code, 1, "{}", ran.all());
    assert!(
        ran.all().contains(&format!(
            "`/no/such/dir` not found in container `{service}`"
        )),
        "{}",
        ran.all()
    );

    // Permission denied: the binary run as `nobody` against the engine's socket.
    assert!(
        std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0),
        "the permission-denied check needs root (to run the binary as nobody)"
    );
    let (host, _) = (engine_address(), ());
    if !host.starts_with("unix://") {
        panic!("the permission-denied check needs a unix socket engine, not {host}");
    }
    // The binary must be reachable for nobody: copy it and the plan to a temp folder.
    let jail = tempfile::tempdir().expect("temp dir");
    std::fs::set_permissions(jail.path(), PermissionsExt::from_mode(0o755)).expect("file system");
    let bin = jail.path().join("opsplan");
    std::fs::copy(BIN, &bin).expect("file system");
    let plan = jail.path().join("exec.yaml");
    std::fs::copy(repo_root().join(fixture("exec.yaml")), &plan).expect("file system");
    let out = Command::new(&bin)
        .args([
            "run",
            plan.to_str().expect("utf-8 path"),
            "--set",
            "container=x",
        ])
        .arg("--no-journal")
        .current_dir(jail.path())
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .uid(65534)
        .gid(65534)
        .output()
        .expect("run opsplan as nobody");
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.status.code(), Some(1), "{all}");
    assert!(
        all.contains(&format!(
            "permission denied on the Docker socket {}: run as root or as a member of the `docker` group",
            engine_address()
        )),
        "{all}"
    );
}

/// What preview shows for every docker step type, on the COSMOS procedures.
#[test]
fn preview_cosmos_shapes() {
    let ran = opsplan(&["preview", &fixture("cosmos.yaml")]);
    assert_eq!(ran.code, 0, "{}", ran.all());
    insta::assert_snapshot!(ran.stdout);
}

/// Diagnostics for wrong arguments of every docker step type.
#[test]
fn diagnostics_for_wrong_arguments() {
    let ran = opsplan(&["validate", &fixture("invalid.yaml")]);
    assert_ne!(ran.code, 0, "{}", ran.all());
    insta::assert_snapshot!(ran.all());
}
