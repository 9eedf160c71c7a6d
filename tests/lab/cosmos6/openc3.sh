#!/usr/bin/env bash
# openc3.sh: a STAND-IN for COSMOS 6's openc3.sh, for the opsplan lab only. It manages just
# the container the COSMOS 6 backup/restore plans touch, with the vendor's names (prefixed by
# LAB_PREFIX, default empty = the vendor's names):
#   openc3-minio-1  image opsplan-lab/data-holder (holds the data, serves nothing; the plans
#                   only mount its volume), volume openc3-bucket-v at /data
# Commands: run | start (create or start and return), stop (keep container and volume),
# status, cleanup (remove the lab's container and volume; refuses anything not the lab's).
set -euo pipefail
LAB_STACK="${LAB_PREFIX:-}cosmos6"
# shellcheck source=../openc3-common.sh
. "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/../openc3-common.sh"

MINIO="${LAB_PREFIX}openc3-minio-1"
BUCKET_V="${LAB_PREFIX}openc3-bucket-v"

case "${1:-}" in
    run | start)
        lab_volume "$BUCKET_V"
        lab_up "$MINIO" -- -v "$BUCKET_V:/data" "${LAB_HOLDER_IMAGE:-opsplan-lab/data-holder}"
        ;;
    stop) lab_stop "$MINIO" ;;
    status) docker ps -a --filter "label=org.opsplan.lab.stack=$LAB_STACK" --format '{{.Names}}\t{{.Status}}' ;;
    cleanup) lab_cleanup "$MINIO" -- "$BUCKET_V" ;;
    *) lab_fail "usage: openc3.sh run|start|stop|status|cleanup (lab stand-in for COSMOS 6)" ;;
esac
