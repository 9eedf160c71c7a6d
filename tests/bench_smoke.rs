//! Keeps the benchmark harness working (bench/run.sh, docs/benchmarks.md): every workload
//! runs once at `BENCH_SCALE=tiny` against the debug binary. Not a timed test: the harness
//! judges no target at this size and this test checks only that every row was produced.
//!
//! The peers are the ones CI already installs (GNU make, rsync, moto_server); ansible-core
//! and rclone are left out here because CI does not install them. `BENCH_SCALE=tiny bash
//! bench/run.sh` runs the same smoke with every peer, installing them.

use std::path::PathBuf;
use std::process::Command;

#[test]
fn harness_runs_every_workload_at_tiny_size() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let dir = tempfile::tempdir().expect("temp dir");
    let out = Command::new("bash")
        .arg(root.join("bench/run.sh"))
        .env("BENCH_SCALE", "tiny")
        .env("BENCH_DIR", dir.path())
        .env("BENCH_PEERS", "make,rsync")
        .env("BENCH_NO_INSTALL", "1")
        .env("OPSPLAN_BIN", env!("CARGO_BIN_EXE_opsplan"))
        .output()
        .expect("run bash bench/run.sh");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "bench/run.sh failed ({}); a missing peer is named below (install GNU make, rsync and \
         the PyPI package `moto[server]`):\n{stderr}\n{stdout}",
        out.status
    );
    for row in [
        "| 1. chain of 20 `/bin/true` | opsplan run |",
        "| 1. chain of 20 `/bin/true` | GNU make |",
        "| 2. 64 × `sleep 0.01`, 16 wide (ideal 40.0 ms) | opsplan run --max-parallel 16 |",
        "| 2. 64 × `sleep 0.01`, 16 wide (ideal 40.0 ms) | GNU make -j16 |",
        "| 3. plan of 1000 steps: validate | opsplan |",
        "| 3. plan of 1000 steps: preview --format json | opsplan |",
        "| 4. journal, chain of 20 | opsplan run --no-journal |",
        "| 5. object.sync upload to S3: 40 × 10 KiB",
        "| 5. object.sync download again, nothing changed: 2 × 1 MiB",
        "| 5. fs.sync copy: 40 files, 0.00 GiB | rsync -a |",
    ] {
        assert!(
            stdout.contains(row),
            "no row `{row}` in the table:\n{stdout}\n{stderr}"
        );
    }
    assert!(stdout.contains("- machine: "), "no machine line:\n{stdout}");
}
