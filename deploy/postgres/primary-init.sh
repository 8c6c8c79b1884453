#!/bin/bash
# Run once by the postgres:15 image when it initialises the primary's data directory (mounted into
# /docker-entrypoint-initdb.d/): a login role that may stream WAL, and the pg_hba.conf line that lets it
# connect for replication (`host all all …` does not match replication connections).
set -euo pipefail

: "${CDHT_REPLICATION_PASSWORD:?set CDHT_REPLICATION_PASSWORD}"

psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
    --set=password="$CDHT_REPLICATION_PASSWORD" <<'SQL'
CREATE ROLE replicator WITH REPLICATION LOGIN PASSWORD :'password';
SQL

echo "host replication replicator all scram-sha-256" >> "$PGDATA/pg_hba.conf"
