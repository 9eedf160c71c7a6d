#!/bin/sh
# A STAND-IN for the pod of statefulset stackstate-victoria-metrics-N (there is no
# Kubernetes here): the kubectl stand-in runs this as the statefulset's `on_scale` command,
# with REPLICAS set, so scaling the statefulset really stops and starts a real
# VictoriaMetrics (Debian package victoria-metrics) on its data folder, as the pod would.
#   REPLICAS=0   stop it (SIGTERM, as the kubelet does, and wait until it exited: VM
#                flushes its data on the way out; the restore job must find it stopped)
#   REPLICAS>=1  start it if not running and wait until /health answers
# Usage: vm-instance.sh DATA_DIR PORT     (pid in DATA_DIR.pid, log in DATA_DIR.log)
set -eu
data=$1
port=$2
pidfile=$data.pid
running() { [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; }

if [ "${REPLICAS:-1}" -eq 0 ]; then
    if running; then
        pid=$(cat "$pidfile")
        kill -TERM "$pid"
        i=0
        while kill -0 "$pid" 2>/dev/null; do
            i=$((i + 1))
            if [ "$i" -gt 300 ]; then
                echo "victoria-metrics (pid $pid) did not stop within 30s" >&2
                exit 1
            fi
            sleep 0.1
        done
    fi
    rm -f "$pidfile"
    exit 0
fi

running && exit 0
setsid sh -c 'echo $$ > "$0"; exec victoria-metrics -storageDataPath="$1" -httpListenAddr="127.0.0.1:$2" -retentionPeriod=100y -search.latencyOffset=0s' \
    "$pidfile" "$data" "$port" </dev/null >>"$data.log" 2>&1 &
i=0
sleep 0.1
until curl -sf "http://127.0.0.1:$port/health" >/dev/null 2>&1; do
    i=$((i + 1))
    if [ -s "$pidfile" ] && ! running; then
        echo "victoria-metrics exited at start; its log:" >&2
        tail -n 3 "$data.log" >&2
        rm -f "$pidfile"
        exit 1
    fi
    if [ "$i" -gt 300 ]; then
        echo "victoria-metrics did not answer /health on 127.0.0.1:$port within 30s; its log:" >&2
        tail -n 20 "$data.log" >&2
        exit 1
    fi
    sleep 0.1
done
