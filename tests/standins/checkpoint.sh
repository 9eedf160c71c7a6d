#!/bin/sh
# STAND-IN, not the real thing: reproduces the part of QuestDB's checkpoint protocol the
# crash matrix needs, with its state in a file instead of a database.
#   CHECKPOINT CREATE  -> `checkpoint.sh STATE create`: fails when a checkpoint is already
#                         held (QuestDB: "checkpoint already in progress"), so running it
#                         twice is NOT idempotent.
#   CHECKPOINT RELEASE -> `checkpoint.sh STATE release`: releases; releasing when nothing is
#                         held succeeds (idempotent, as in QuestDB).
#   status probe       -> `checkpoint.sh STATE status`: exit 0 when held (what a plan's
#                         `probe` asks QuestDB through `SELECT ... FROM checkpoint_status()`).
# Every create and release is appended to STATE.log, so a test can count them.
set -eu
state=$1
case $2 in
  create)
    if [ "$(cat "$state" 2>/dev/null || true)" = held ]; then
      echo "checkpoint already in progress" >&2
      exit 1
    fi
    echo held > "$state.tmp" && mv "$state.tmp" "$state"
    echo create >> "$state.log"
    ;;
  release)
    echo released > "$state.tmp" && mv "$state.tmp" "$state"
    echo release >> "$state.log"
    ;;
  status)
    [ "$(cat "$state" 2>/dev/null || true)" = held ]
    ;;
  *)
    echo "usage: $0 STATE create|release|status" >&2
    exit 2
    ;;
esac
