#!/bin/bash
# The read replica (docker-compose.yml, service `replica`): on first start, a copy of the primary made by
# `pg_basebackup -R` (which writes primary_conninfo and standby.signal), then PostgreSQL as a hot standby
# streaming from the primary. Later starts find the data directory and only start the standby.
#
# Environment: PRIMARY_HOST (default db), PRIMARY_PORT (default 5432), PGPASSWORD (the replication role's password; the standby's WAL
# receiver reads it from the environment too), REPLICA_NAME (application_name on the primary, shown in
# pg_stat_replication and as cdht_replica_lag_seconds{application_name=…}).
set -euo pipefail

PGDATA="${PGDATA:-/var/lib/postgresql/data}"
PRIMARY_HOST="${PRIMARY_HOST:-db}"
PRIMARY_PORT="${PRIMARY_PORT:-5432}"
REPLICA_NAME="${REPLICA_NAME:-cdht-replica}"

if [ "$(id -u)" = "0" ]; then
    mkdir -p "$PGDATA"
    chown postgres:postgres "$PGDATA"
    chmod 700 "$PGDATA"
    exec gosu postgres bash "${BASH_SOURCE[0]}" "$@"
fi

if [ ! -s "$PGDATA/PG_VERSION" ]; then
    until pg_isready --host="$PRIMARY_HOST" --port="$PRIMARY_PORT" --username=replicator --dbname=postgres; do
        echo "replica: waiting for the primary at $PRIMARY_HOST"
        sleep 2
    done
    # Into a scratch folder first: a copy interrupted halfway is never mistaken for a complete one.
    rm -rf "$PGDATA/.basebackup"
    pg_basebackup --pgdata="$PGDATA/.basebackup" --write-recovery-conf --wal-method=stream --checkpoint=fast \
        --progress --dbname="host=$PRIMARY_HOST port=$PRIMARY_PORT user=replicator application_name=$REPLICA_NAME"
    find "$PGDATA" -mindepth 1 -maxdepth 1 ! -name .basebackup -exec rm -rf {} +
    mv "$PGDATA/.basebackup"/* "$PGDATA"/
    rmdir "$PGDATA/.basebackup"
    chmod 700 "$PGDATA"
fi

# hot_standby_feedback: the primary keeps the rows a long dashboard read on the replica still needs, so
# such reads are not cancelled by replay.
exec postgres -c hot_standby=on -c hot_standby_feedback=on "$@"
