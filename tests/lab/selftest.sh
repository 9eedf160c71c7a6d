#!/usr/bin/env bash
# Self-test of the opsplan lab (tests/lab/): builds the images, starts the COSMOS 7 and
# COSMOS 6 labs under a unique LAB_PREFIX on a free loopback port, and exercises them with
# the vendor procedures' own commands (curl against the QuestDB stand-in, eeacms/rsync,
# alpine, openc3inc/openc3-init with mc, openc3.sh stop/run/start). Prints one PASS/FAIL
# line per check and exits non-zero if any check failed. Everything it creates (containers,
# volumes, temp folder) is removed on exit, including on failure or Ctrl-C.
#
# Needs: docker (engine running), curl, cargo, busybox-static, rsync, GNU find, ss or python3.
# LAB_SKIP_BUILD=1 skips build-images.sh (images already built).
set -uo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
PASSES=0
FAILS=0
pass() { echo "PASS $*"; PASSES=$((PASSES + 1)); }
fail() { echo "FAIL $*"; FAILS=$((FAILS + 1)); }
die() {
    echo "FAIL selftest cannot continue: $*"
    exit 1
}

for tool in docker curl; do
    command -v "$tool" >/dev/null || die "missing tool: $tool"
done

# Images: the lab's own names, so the self-test never depends on vendor tags.
RSYNC=opsplan-lab/rsync
ALPINE=opsplan-lab/alpine
INIT=opsplan-lab/openc3-init

if [ "${LAB_SKIP_BUILD:-0}" != 1 ]; then
    if "$HERE/build-images.sh" >/tmp/opsplan-lab-build.$$ 2>&1; then
        pass "build-images.sh built the lab images"
    else
        cat /tmp/opsplan-lab-build.$$
        rm -f /tmp/opsplan-lab-build.$$
        die "build-images.sh failed"
    fi
    rm -f /tmp/opsplan-lab-build.$$
fi

free_port() {
    local p
    for _ in $(seq 1 50); do
        p=$((20000 + RANDOM % 40000))
        if command -v ss >/dev/null; then
            [ -z "$(ss -Htln "sport = :$p")" ] && { echo "$p"; return; }
        else
            python3 -c "import socket;s=socket.socket();s.bind(('127.0.0.1',$p))" 2>/dev/null && { echo "$p"; return; }
        fi
    done
    return 1
}

export LAB_PREFIX="opsplan-selftest-$$-"
export LAB_TSDB_PORT
LAB_TSDB_PORT=$(free_port) || die "no free loopback port found"
export OPENC3_TSDB_USERNAME=admin
export OPENC3_TSDB_PASSWORD="selftest-$$-secret"
URL="http://127.0.0.1:$LAB_TSDB_PORT"
C7="$HERE/cosmos7/openc3.sh"
C6="$HERE/cosmos6/openc3.sh"
TSDB="${LAB_PREFIX}openc3-tsdb-1"
TSDB_V="${LAB_PREFIX}openc3-tsdb-v"
MINIO="${LAB_PREFIX}openc3-minio-1"
BUCKET_V="${LAB_PREFIX}openc3-bucket-v"
TABLE=DEFAULT__TLM__INST__HEALTH_STATUS
TMP=$(mktemp -d /tmp/opsplan-lab-selftest.XXXXXX)

teardown() {
    "$C7" cleanup >/dev/null 2>&1
    "$C6" cleanup >/dev/null 2>&1
    # Files written by containers may belong to other uids: remove them from a container.
    docker run --rm -v "$TMP:/t" "$ALPINE" find /t -mindepth 1 -delete >/dev/null 2>&1
    rm -rf "$TMP"
    local left
    left=$(docker ps -aq --filter "name=$LAB_PREFIX"; docker volume ls -q --filter "name=$LAB_PREFIX")
    [ -z "$left" ] || echo "FAIL teardown left: $left"
}
trap teardown EXIT
trap 'exit 130' INT TERM

# q QUERY [USER:PASSWORD] -> sets BODY and CODE
q() {
    local out
    out=$(curl -sS -u "${2:-$OPENC3_TSDB_USERNAME:$OPENC3_TSDB_PASSWORD}" -G --data-urlencode "query=$1" \
        -w '\n%{http_code}' "$URL/exec" 2>&1)
    CODE=${out##*$'\n'}
    BODY=${out%$'\n'*}
}
# expect DESCRIPTION QUERY HTTP_CODE SUBSTRING
expect() {
    q "$2"
    if [ "$CODE" = "$3" ] && [[ "$BODY" == *"$4"* ]]; then
        pass "$1"
    else
        fail "$1: got HTTP $CODE $BODY"
    fi
}
# The first number of the dataset (count() results).
first_number() { grep -o '"dataset":\[\[[0-9]*' <<<"$BODY" | grep -o '[0-9]*$'; }
count() {
    q "SELECT count() FROM '$TABLE'${1:+ WHERE PACKET_TIMESECONDS IN '$1'}"
    first_number
}
in_tsdb() { docker exec "$TSDB" sh -c "$1"; }
db_sums() { in_tsdb 'cd /var/lib/questdb && find db -type f -exec sha256sum {} + | sort'; }
digest() { docker exec "$TSDB" questdb-standin digest; }
wait_health() {
    for _ in $(seq 1 100); do
        curl -fsS "$URL/health" >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    return 1
}
running() { [ "$(docker container inspect --format '{{.State.Running}}' "$1" 2>/dev/null)" = true ]; }
day_offset() { date -u -d "@$(($(date -u +%s) + $1 * 86400))" +%F; }

echo "selftest: LAB_PREFIX=$LAB_PREFIX port=$LAB_TSDB_PORT tmp=$TMP"

# ----------------------------------------------------------------------------- COSMOS 7
"$C7" run >/dev/null || die "cosmos7/openc3.sh run failed"
if wait_health; then pass "cosmos7: openc3.sh run started $TSDB, QuestDB stand-in answers on $URL"; else
    docker logs "$TSDB" 2>&1 | tail -5
    die "the QuestDB stand-in did not answer on $URL"
fi
mounts=$(docker inspect --format '{{range .Mounts}}{{.Name}}:{{.Destination}} {{end}}' "$TSDB" "${LAB_PREFIX}openc3-buckets" | tr -s '\n ' ' ')
if [[ "$mounts" == *"$TSDB_V:/var/lib/questdb"* && "$mounts" == *"${LAB_PREFIX}openc3-object-v:/data"* ]]; then
    pass "cosmos7: volumes as the plans expect ($mounts)"
else
    fail "cosmos7: volumes: $mounts"
fi

D1=$(day_offset -5) D2=$(day_offset -4) D3=$(day_offset -3) D4=$(day_offset -2) D5=$(day_offset -1)
if docker exec "$TSDB" questdb-standin seed --table "$TABLE" --days 5 --rows-per-day 100 >/dev/null; then
    n=$(count)
    [ "$n" = 500 ] && pass "seed: $TABLE has 5 daily partitions $D1..$D5, count() = 500" || fail "seed: count() = $n, expected 500"
else
    fail "seed failed"
fi

q "SELECT build()" "admin:wrong"
[ "$CODE" = 401 ] && pass "wrong password -> 401" || fail "wrong password -> HTTP $CODE"
CODE=$(curl -sS -o /dev/null -w '%{http_code}' "$URL/exec?query=SELECT+build()")
[ "$CODE" = 401 ] && pass "no credentials -> 401" || fail "no credentials -> HTTP $CODE"
expect "SELECT build() reports QuestDB 9.1.0" "SELECT build()" 200 '"dataset":[["Build Information: QuestDB 9.1.0, JDK'
expect "table_partitions lists 5 partitions with name/min/max/diskSize" \
    "SELECT name, minTimestamp, maxTimestamp, diskSize FROM table_partitions('$TABLE')" 200 '"count":5'
expect "SHOW COLUMNS names the designated timestamp" "SHOW COLUMNS FROM '$TABLE'" 200 '["PACKET_TIMESECONDS","TIMESTAMP",false,0,false,0,true,false]'
expect "tables() lists the table" "SELECT table_name FROM tables()" 200 "[[\"$TABLE\"]]"
expect "unsupported statement is refused, not ignored" "DROP TABLE '$TABLE'" 400 'does not support this statement'

# --- the engine's own http/assert steps (the cosmos7 plans' queries) against the stand-in
OPSPLAN=${OPSPLAN_BIN:-$HERE/../../target/debug/opsplan}
if [ -x "$OPSPLAN" ]; then
    if out=$("$OPSPLAN" run "$HERE/cosmos7/http-probe.yaml" --set "tsdb_url=$URL" --set "day=$D3" 2>&1); then
        pass "opsplan run cosmos7/http-probe.yaml: the plans' QuestDB queries succeed against the stand-in"
    else
        fail "opsplan http probe: $(tail -5 <<<"$out")"
    fi
    if out=$(OPENC3_TSDB_PASSWORD=wrong "$OPSPLAN" run "$HERE/cosmos7/http-probe.yaml" --set "tsdb_url=$URL" --set "day=$D3" 2>&1); then
        fail "opsplan http probe with a wrong password succeeded"
    else
        pass "opsplan http probe with a wrong password fails: $(grep -m1 -i '401\|unauthor\|credential' <<<"$out" | cut -c1-150)"
    fi
else
    echo "SKIP opsplan http probe: no opsplan binary at $OPSPLAN (cargo build, or set OPSPLAN_BIN)"
fi

# --- checkpoint, copy inside it, release
before_cp=$(digest)
expect "CHECKPOINT CREATE" "CHECKPOINT CREATE" 200 '{"ddl":"OK"}'
expect "second CHECKPOINT CREATE refused with QuestDB's error" "CHECKPOINT CREATE" 400 '"error":"Waiting for CHECKPOINT RELEASE to be called","position":0'
expect "checkpoint_status() shows in_progress" "SELECT * FROM checkpoint_status()" 200 '"dataset":[[true,"'
sums1=$(db_sums)
expect "INSERT during the checkpoint accepted" "INSERT INTO '$TABLE' VALUES('${D5}T23:00:00.000000Z', '${D5}T23:00:00.001000Z', 21.5, 999)" 200 '{"dml":"OK"}'
n=$(count)
[ "$n" = 501 ] && pass "the row written during the checkpoint is visible (count 501)" || fail "count during checkpoint = $n"
expect "partition changes refused during the checkpoint" "ALTER TABLE '$TABLE' DETACH PARTITION LIST '$D1'" 400 'refused while a checkpoint is in progress'
[ "$sums1" = "$(db_sums)" ] && pass "files under db/ unchanged during the checkpoint" || fail "db/ changed during the checkpoint"
mkdir -p "$TMP/backup"
if docker run --rm --volumes-from "$TSDB" -v "$TMP/backup:/backup" "$RSYNC" rsync -a --delete /var/lib/questdb/ /backup/questdb/; then
    pass "backup copy with rsync -a --volumes-from $TSDB (the plan's command)"
else
    fail "rsync copy of the tsdb volume"
fi
if [ -f "$TMP/backup/questdb/.checkpoint/db/_checkpoint_meta" ] && tail -1 "$TMP/backup/questdb/checkpoint.log" | grep -q 'CHECKPOINT CREATE'; then
    pass "the copy carries the checkpoint (.checkpoint/db, checkpoint.log ends with CREATE)"
else
    fail "the copy lacks the checkpoint data"
fi
expect "CHECKPOINT RELEASE" "CHECKPOINT RELEASE" 200 '{"ddl":"OK"}'
expect "checkpoint_status() shows none in progress" "SELECT * FROM checkpoint_status()" 200 '"dataset":[[false,null]]'
log=$(in_tsdb 'cat /var/lib/questdb/checkpoint.log')
if grep -q 'CHECKPOINT CREATE started_at=' <<<"$log" && grep -q 'CHECKPOINT RELEASE started_at=.* pending_rows_applied=1' <<<"$log"; then
    pass "checkpoint.log records CREATE and RELEASE with timestamps"
else
    fail "checkpoint.log: $log"
fi
[ "$sums1" != "$(db_sums)" ] && [ "$(count)" = 501 ] && pass "pending write applied to db/ on release" || fail "pending write not applied on release"
expect "CHECKPOINT RELEASE without a checkpoint is a no-op" "CHECKPOINT RELEASE" 200 '{"ddl":"OK"}'

# --- failure injection for drills
in_tsdb 'echo "CHECKPOINT RELEASE" > /tmp/questdb-standin-fail'
expect "injected failure: CHECKPOINT RELEASE answers 500" "CHECKPOINT RELEASE" 500 'failure injected'
in_tsdb 'rm -f /tmp/questdb-standin-fail'
expect "injection removed: CHECKPOINT RELEASE answers 200" "CHECKPOINT RELEASE" 200 '{"ddl":"OK"}'

# --- detach / archive / attach (the partition procedures)
P="/var/lib/questdb/db/$TABLE"
expect "DETACH PARTITION LIST '$D1'" "ALTER TABLE '$TABLE' DETACH PARTITION LIST '$D1'" 200 '{"ddl":"OK"}'
in_tsdb "[ -d $P/$D1.detached ] && ! ls -d $P/$D1.[0-9]* 2>/dev/null" >/dev/null &&
    pass "detach renamed the folder to $D1.detached" || fail "no $D1.detached folder"
[ "$(count "$D1")" = 0 ] && pass "detached partition no longer counted" || fail "detached partition still counted"
expect "detaching it again: DETACH_ERR_ALREADY_DETACHED" "ALTER TABLE '$TABLE' DETACH PARTITION LIST '$D1'" 400 'detachStatus=DETACH_ERR_ALREADY_DETACHED'
expect "detaching the active partition: DETACH_ERR_ACTIVE" "ALTER TABLE '$TABLE' DETACH PARTITION LIST '$D5'" 400 'detachStatus=DETACH_ERR_ACTIVE'
expect "ATTACH without a .attachable folder: ATTACH_ERR_MISSING_PARTITION" "ALTER TABLE '$TABLE' ATTACH PARTITION LIST '$D1'" 400 "could not attach partition [table=$TABLE, detachStatus=ATTACH_ERR_MISSING_PARTITION, partitionTimestamp=${D1}T00:00:00.000000Z, partitionBy=DAY]"
mkdir -p "$TMP/archive"
docker run --rm --volumes-from "$TSDB" -v "$TMP/archive:/backup" "$RSYNC" rsync -a "$P/$D1.detached" "/backup/$TABLE/" &&
    docker run --rm --volumes-from "$TSDB" "$ALPINE" rm -rf "$P/$D1.detached" &&
    [ -f "$TMP/archive/$TABLE/$D1.detached/rows" ] && pass "archived $D1.detached out of the volume and deleted it" || fail "archive of $D1.detached"
# Staged by someone else as root (cp, not rsync -a): QuestDB's user cannot write it yet.
docker run --rm --volumes-from "$TSDB" -v "$TMP/archive:/backup:ro" "$ALPINE" cp -r "/backup/$TABLE/$D1.detached" "$P/$D1.attachable"
expect "ATTACH of a root-owned .attachable fails until chown" "ALTER TABLE '$TABLE' ATTACH PARTITION LIST '$D1'" 500 'could not open read-write'
docker exec "$TSDB" chown -R 10001:10001 "$P/$D1.attachable"
expect "ATTACH after chown 10001:10001" "ALTER TABLE '$TABLE' ATTACH PARTITION LIST '$D1'" 200 '{"ddl":"OK"}'
[ "$(count "$D1")" = 100 ] && pass "count() WHERE PACKET_TIMESECONDS IN '$D1' = 100 after attach" || fail "count after attach"
expect "DETACH PARTITION WHERE timestamp < dateadd('d', -3, now())" "ALTER TABLE '$TABLE' DETACH PARTITION WHERE timestamp < dateadd('d', -3, now())" 200 '{"ddl":"OK"}'
detached=$(in_tsdb "cd $P && ls -d *.detached" | tr '\n' ' ')
[ "$detached" = "$D1.detached $D2.detached $D3.detached " ] && pass "the WHERE form detached $detached" || fail "WHERE form detached: $detached"
in_tsdb "cd $P && for d in $D1 $D2 $D3; do mv \$d.detached \$d.attachable; done"
expect "ATTACH PARTITION LIST of three days" "ALTER TABLE '$TABLE' ATTACH PARTITION LIST '$D1', '$D2', '$D3'" 200 '{"ddl":"OK"}'
[ "$(count)" = 501 ] && pass "all rows back after re-attaching (501)" || fail "count after re-attach = $(count)"

# --- restore from the checkpointed copy (the COSMOS 7 restore procedure)
restore_from() { # folder holding questdb/
    "$C7" stop >/dev/null &&
        docker run --rm -v "$TSDB_V:/var/lib/questdb" "$ALPINE" find /var/lib/questdb -mindepth 1 -delete &&
        docker run --rm -v "$TSDB_V:/var/lib/questdb" -v "$1:/backup:ro" "$ALPINE" cp -a /backup/questdb/. /var/lib/questdb/ &&
        docker run --rm -v "$TSDB_V:/var/lib/questdb" "$ALPINE" touch /var/lib/questdb/_restore &&
        "$C7" run >/dev/null
}
if restore_from "$TMP/backup" && timeout 30 docker exec "$TSDB" sh -c 'while [ -e /var/lib/questdb/_restore ]; do sleep 1; done'; then
    pass "restore: openc3.sh stop, clear, cp -a, touch _restore, openc3.sh run; _restore consumed"
else
    fail "restore procedure"
    docker logs "$TSDB" 2>&1 | tail -5
fi
wait_health
after=$(digest)
if [ "$after" = "$before_cp" ] && [ "$(count)" = 500 ]; then
    pass "restored data equal the checkpoint's ($(grep -c '^partition' <<<"$after") partitions, 500 rows, same digest; the row written during the checkpoint is not in it)"
else
    fail "restored data differ: before=[$before_cp] after=[$after]"
fi
docker logs "$TSDB" 2>&1 | grep -q 'RESTORE restored 1 tables from checkpoint' && pass "docker logs show the restore" || fail "no restore line in docker logs"
in_tsdb '[ ! -e /var/lib/questdb/.checkpoint/db ]' && pass "checkpoint data removed after restore" || fail ".checkpoint/db left after restore"

# --- a copy made outside a checkpoint cannot be restored
mkdir -p "$TMP/nocp"
docker run --rm --volumes-from "$TSDB" -v "$TMP/nocp:/backup" "$RSYNC" rsync -a /var/lib/questdb/ /backup/questdb/
restore_from "$TMP/nocp"
sleep 1
if ! running "$TSDB" && docker logs "$TSDB" 2>&1 | grep -q 'checkpoint trigger file found, but the checkpoint directory does not exist'; then
    pass "restore of a copy made outside a checkpoint: QuestDB stand-in refuses to start (exit $(docker inspect --format '{{.State.ExitCode}}' "$TSDB"))"
else
    fail "copy without checkpoint was restored"
fi

# --- a corrupt db/ refuses to start
restore_from "$TMP/backup" && timeout 30 docker exec "$TSDB" sh -c 'while [ -e /var/lib/questdb/_restore ]; do sleep 1; done'
"$C7" stop >/dev/null
docker run --rm -v "$TSDB_V:/var/lib/questdb" "$ALPINE" sh -c ": > /var/lib/questdb/db/$TABLE/$D2.1/rows"
"$C7" run >/dev/null
sleep 1
if ! running "$TSDB" && docker logs "$TSDB" 2>&1 | tail -1 | grep -q 'db is corrupt, not starting'; then
    pass "corrupt db/ (emptied rows file): refuses to start: $(docker logs "$TSDB" 2>&1 | tail -1 | cut -c1-120)"
else
    fail "corrupt db/ was accepted"
fi
"$C7" cleanup >/dev/null

# ----------------------------------------------------------------------------- COSMOS 6
"$C6" run >/dev/null && running "$MINIO" && pass "cosmos6: openc3.sh run started $MINIO with $BUCKET_V at /data" || fail "cosmos6: openc3.sh run"
docker run --rm -v "$BUCKET_V:/data" "$ALPINE" sh -c '
    mkdir -p /data/.minio.sys/config /data/config/targets /data/logs/decom && 
    echo "{\"version\":\"1\"}" > /data/.minio.sys/config/config.json &&
    for i in 1 2 3; do echo "target $i" > /data/config/targets/INST$i.json; done &&
    head -c 100000 /dev/urandom > "/data/logs/decom/a file with spaces.bin" &&
    chown -R 501:501 /data'
sums_c6() { docker run --rm -v "$1" "$ALPINE" sh -c "cd $2 && find . -type f -exec sha256sum {} + | sort"; }
seeded=$(sums_c6 "$BUCKET_V:/data" /data)
mkdir -p "$TMP/c6"
mirror_out=$(docker run --rm --volumes-from "$MINIO" -v "$TMP/c6:/backup" "$INIT" mc mirror --preserve /data /backup/minio 2>&1)
if [ $? -ne 0 ] && grep -q 'Permission denied' <<<"$mirror_out"; then
    pass "cosmos6: backup as the image's uid 501 into a root-owned 755 backup dir fails (Permission denied): the backup dir must be writable by uid 501"
else
    fail "cosmos6: mirror into a root-owned backup dir: $mirror_out"
fi
chmod 777 "$TMP/c6"
mirror_out=$(docker run --rm --volumes-from "$MINIO" -v "$TMP/c6:/backup" "$INIT" mc mirror --preserve /data /backup/minio 2>&1) &&
    [ "$(sums_c6 "$TMP/c6:/b" /b/minio)" = "$seeded" ] && pass "cosmos6: mc mirror --preserve /data /backup/minio copied every file ($mirror_out)" || fail "cosmos6 backup: $mirror_out"
mirror_out=$(docker run --rm --volumes-from "$MINIO" -v "$TMP/c6:/backup" "$INIT" mc mirror --preserve /data /backup/minio 2>&1) &&
    grep -q ' 0 copied' <<<"$mirror_out" && pass "cosmos6: second mirror copies nothing ($mirror_out)" || fail "cosmos6 second mirror: $mirror_out"
"$C6" stop >/dev/null &&
    docker run --rm --user root -v "$BUCKET_V:/data" "$INIT" find /data -mindepth 1 -delete &&
    [ -z "$(sums_c6 "$BUCKET_V:/data" /data)" ] &&
    docker run --rm --user root -v "$BUCKET_V:/data" -v "$TMP/c6:/backup:ro" "$INIT" mc mirror --preserve /backup/minio /data >/dev/null &&
    docker run --rm --user root -v "$BUCKET_V:/data" "$INIT" sh -c "chown -R 501:501 /data && chmod -R 777 /data" &&
    "$C6" start >/dev/null && running "$MINIO" &&
    [ "$(sums_c6 "$BUCKET_V:/data" /data)" = "$seeded" ] &&
    pass "cosmos6: restore (stop, clear, mc mirror back, chown 501, start) gives the seeded files back ($(wc -l <<<"$seeded") files, same SHA-256)" ||
    fail "cosmos6 restore"
"$C6" cleanup >/dev/null

echo "selftest: $PASSES passed, $FAILS failed"
[ "$FAILS" -eq 0 ]
