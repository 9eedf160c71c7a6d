#!/bin/bash
# A STAND-IN for the entrypoint of the postgres image that the Hoss `db` service runs
# (server/core/docker-compose.yaml: image postgres:13.5-alpine; binds ${DB_ROOT} at
# /var/lib/postgresql/data, ${DB_INIT_SCRIPTS} at /docker-entrypoint-initdb.d and
# ${BACKUP_ROOT}/.db at /mnt/backup). It runs inside a lab container (tests/lab/hoss/Makefile)
# with this machine's /usr mounted read-only, so the server is a real PostgreSQL 15.
#
# Models the image's documented contract: when the data folder holds no database yet, it is
# initialised with POSTGRES_USER / POSTGRES_PASSWORD as the superuser, then every file of
# /docker-entrypoint-initdb.d runs once, in name order (*.sh executable: run; *.sh not
# executable: sourced; *.sql: psql), against a server listening only on its Unix socket;
# the first failure stops the container. A data folder that already holds a database is
# started as it is and the init scripts are NOT run (so a restore script placed there is
# silently ignored when ~/.hoss/data/db is not empty).
# Cannot model: PostgreSQL 13 (this is 15: a dump is restored by a newer server here), alpine
# and its musl locale, the image's POSTGRES_INITDB_ARGS / PGDATA variants.
set -eu
DATA=/var/lib/postgresql/data
mkdir -p /var/run/postgresql "$DATA"
chown 999:999 /var/run/postgresql "$DATA"
chmod 700 "$DATA"
as_pg() { setpriv --reuid=999 --regid=999 --clear-groups -- "$@"; }
BIN=/usr/lib/postgresql/15/bin
if [ ! -s "$DATA/PG_VERSION" ]; then
    echo "pg-entrypoint: initialising $DATA"
    printf '%s' "$POSTGRES_PASSWORD" > /tmp/pwfile
    chown 999 /tmp/pwfile
    as_pg "$BIN/initdb" -D "$DATA" -U "$POSTGRES_USER" -E UTF8 --locale=C --auth-local=trust --auth-host=scram-sha-256 --pwfile=/tmp/pwfile >/dev/null
    rm -f /tmp/pwfile
    echo "host all all all scram-sha-256" >> "$DATA/pg_hba.conf"
    as_pg "$BIN/pg_ctl" -D "$DATA" -o "-c listen_addresses='' -k /var/run/postgresql" -w start >/dev/null
    export PGUSER="$POSTGRES_USER" PGHOST=/var/run/postgresql
    for f in $(ls /docker-entrypoint-initdb.d/ 2>/dev/null | sort); do
        p=/docker-entrypoint-initdb.d/$f
        case "$f" in
            *.sh)
                if [ -x "$p" ]; then echo "pg-entrypoint: running $p"; as_pg env PGUSER="$PGUSER" PGHOST="$PGHOST" POSTGRES_USER="$POSTGRES_USER" POSTGRES_PASSWORD="$POSTGRES_PASSWORD" POSTGRES_MULTIPLE_DATABASES="${POSTGRES_MULTIPLE_DATABASES:-}" "$p"
                else echo "pg-entrypoint: sourcing $p"; . "$p"; fi ;;
            *.sql) echo "pg-entrypoint: running $p"; as_pg "$BIN/psql" -v ON_ERROR_STOP=1 -f "$p" ;;
            *) echo "pg-entrypoint: ignoring $p" ;;
        esac
    done
    as_pg "$BIN/pg_ctl" -D "$DATA" -m fast -w stop >/dev/null
    echo "pg-entrypoint: PostgreSQL init process complete; ready for start up."
fi
exec setpriv --reuid=999 --regid=999 --clear-groups -- "$BIN/postgres" -D "$DATA" -c listen_addresses='*' -k /var/run/postgresql -c fsync=off
