#!/bin/bash
# LAB STAND-IN for ~/.hoss/core/db-init-scripts/create-databases.sh, which `make env`
# copies from the server's core/db-init-scripts (not in the searchable index: modelled from
# server/core/docker-compose.yaml, which hands the db service
# POSTGRES_MULTIPLE_DATABASES=${POSTGRES_CORE_DB},${POSTGRES_AUTH_DB}). It creates each
# database of that comma-separated list.
set -eu
for db in $(echo "$POSTGRES_MULTIPLE_DATABASES" | tr ',' ' '); do
    echo "Creating database $db"
    psql -v ON_ERROR_STOP=1 -U "$POSTGRES_USER" -d postgres -c "CREATE DATABASE \"$db\""
done
