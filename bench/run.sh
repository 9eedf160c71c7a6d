#!/usr/bin/env bash
# The benchmark harness (docs/benchmarks.md): installs the peers, builds the release binary,
# then bench/bench.py generates the workloads, runs every contender and prints the table.
#
#   bash bench/run.sh                      # everything, full size (takes a while)
#   BENCH_SCALE=tiny bash bench/run.sh     # every workload once at a tiny size (CI smoke, < 1 min)
#   BENCH_ONLY=overhead,journal bash bench/run.sh
#
# Environment (all optional; docs/benchmarks.md lists the size knobs):
#   BENCH_SCALE   full (default) | tiny
#   BENCH_DIR     work folder for workloads and results (default target/bench)
#   BENCH_VENV    virtual environment for the PyPI peers (default target/bench-venv)
#   BENCH_PEERS   peers to install and run: ansible,make,rclone,rsync,strace (default all) or
#                 none (strace is the counter of the syscalls workload, not a contender)
#   OPSPLAN_BIN   use this opsplan binary instead of building target/release/opsplan
#   BENCH_NO_INSTALL=1  install nothing; a missing peer stops the harness naming it (the
#                 cargo test tests/bench_smoke.rs uses this)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
export BENCH_DIR="${BENCH_DIR:-$root/target/bench}"
export BENCH_PEERS="${BENCH_PEERS:-ansible,make,rclone,rsync,strace}"
mkdir -p "$BENCH_DIR"
venv="${BENCH_VENV:-$root/target/bench-venv}"

has_peer() { [[ ",$BENCH_PEERS," == *",$1,"* ]]; }

# Debian peers: GNU make, rclone, rsync and strace. `apt-get` waits for the dpkg lock other jobs hold.
install() { [ -z "${BENCH_NO_INSTALL:-}" ]; }
need=()
if has_peer make && ! command -v make >/dev/null; then need+=(make); fi
if has_peer rclone && ! command -v rclone >/dev/null; then need+=(rclone); fi
if has_peer rsync && ! command -v rsync >/dev/null; then need+=(rsync); fi
if has_peer strace && ! command -v strace >/dev/null; then need+=(strace); fi
if [ ${#need[@]} -gt 0 ] && install; then
  echo "bench: installing ${need[*]} from Debian" >&2
  sudo_=""
  [ "$(id -u)" -eq 0 ] || sudo_=sudo
  export DEBIAN_FRONTEND=noninteractive
  $sudo_ apt-get -o DPkg::Lock::Timeout=900 update -qq
  $sudo_ apt-get -o DPkg::Lock::Timeout=900 install -y -qq --no-install-recommends "${need[@]}" >&2
fi

# PyPI peers in a virtual environment: ansible-core, and moto's S3 server (the loopback S3
# endpoint of the data-movement rows).
pip_need=()
if has_peer ansible && [ ! -x "$venv/bin/ansible-playbook" ]; then pip_need+=(ansible-core); fi
if [ ! -x "$venv/bin/moto_server" ] && ! command -v moto_server >/dev/null; then
  pip_need+=('moto[server]')
fi
if [ ${#pip_need[@]} -gt 0 ] && install; then
  echo "bench: installing ${pip_need[*]} from PyPI into $venv" >&2
  [ -x "$venv/bin/python" ] || python3 -m venv "$venv"
  "$venv/bin/python" -m pip install -q --upgrade pip >&2
  "$venv/bin/python" -m pip install -q "${pip_need[@]}" >&2
fi

if [ -z "${OPSPLAN_BIN:-}" ]; then
  echo "bench: cargo build --release" >&2
  cargo build --release --locked -q
  OPSPLAN_BIN="${CARGO_TARGET_DIR:-$root/target}/release/opsplan"
fi
export OPSPLAN_BIN BENCH_VENV="$venv"

python="$venv/bin/python"
[ -x "$python" ] || python=python3
exec "$python" bench/bench.py "$@"
