#!/usr/bin/env bash
# openc3.sh: a STAND-IN for COSMOS 7's openc3.sh, for the opsplan lab only. It manages just
# the two containers the COSMOS 7 backup/restore plans touch, with the vendor's names and
# volumes (prefixed by LAB_PREFIX, default empty = the vendor's names):
#   openc3-tsdb-1   image opsplan-lab/questdb (the QuestDB stand-in), volume openc3-tsdb-v at
#                   /var/lib/questdb, port 9000 published on LAB_TSDB_BIND:LAB_TSDB_PORT
#                   (default 127.0.0.1:9000), credentials OPENC3_TSDB_USERNAME /
#                   OPENC3_TSDB_PASSWORD (default admin / quest, QuestDB's defaults)
#   openc3-buckets  image opsplan-lab/data-holder, volume openc3-object-v at /data
# Commands: run | start (both: create or start the containers and return, like
# `docker compose up -d`), stop (stop, keep containers and volumes), status, cleanup
# (remove the lab's containers and volumes; refuses anything not labelled as the lab's).
set -euo pipefail
LAB_STACK="${LAB_PREFIX:-}cosmos7"
# shellcheck source=../openc3-common.sh
. "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/../openc3-common.sh"

TSDB="${LAB_PREFIX}openc3-tsdb-1"
TSDB_V="${LAB_PREFIX}openc3-tsdb-v"
BUCKETS="${LAB_PREFIX}openc3-buckets"
OBJECT_V="${LAB_PREFIX}openc3-object-v"

up() {
    lab_volume "$TSDB_V"
    lab_volume "$OBJECT_V"
    lab_up "$BUCKETS" -- -v "$OBJECT_V:/data" "${LAB_HOLDER_IMAGE:-opsplan-lab/data-holder}"
    # The password goes through the environment, never the command line.
    export QDB_USER="${OPENC3_TSDB_USERNAME:-admin}" QDB_PASSWORD="${OPENC3_TSDB_PASSWORD:-quest}"
    lab_up "$TSDB" -- -v "$TSDB_V:/var/lib/questdb" \
        -p "${LAB_TSDB_BIND:-127.0.0.1}:${LAB_TSDB_PORT:-9000}:9000" \
        -e QDB_USER -e QDB_PASSWORD ${LAB_QDB_VERSION:+-e QDB_VERSION=$LAB_QDB_VERSION} \
        "${LAB_QUESTDB_IMAGE:-opsplan-lab/questdb}"
}

case "${1:-}" in
    run | start) up ;;
    stop) lab_stop "$TSDB" "$BUCKETS" ;;
    status) docker ps -a --filter "label=org.opsplan.lab.stack=$LAB_STACK" --format '{{.Names}}\t{{.Status}}' ;;
    cleanup) lab_cleanup "$TSDB" "$BUCKETS" -- "$TSDB_V" "$OBJECT_V" ;;
    *) lab_fail "usage: openc3.sh run|start|stop|status|cleanup (lab stand-in for COSMOS 7)" ;;
esac
