#!/usr/bin/env bash
# Backup, restore elsewhere, and replay a recorded session (BackupTests). A daemon in the current (empty) directory
# records a psql session through its PostgreSQL proxy and keeps secrets; then:
#   sqlite:   gatehouse backup (online) -> backup verify -> restore into a new data directory -> a daemon serves it
#             -> the session replays with its statements, and its recording verifies complete.
#   postgres: the store is on PostgreSQL (recordings in it too); pg_dump --format=custom -> gatehouse backup verify
#             --pg-dump (and what it refuses: a wrong root key, a non-empty scratch database, a cut dump, a tampered
#             recording) -> pg_restore into a new database -> a daemon serves it -> the session replays.
#
# usage: backup-replay.sh sqlite|postgres
# Environment (set by the test): GATEHOUSE_LISTENERS_{HTTPS,KMIP,POSTGRES,OPERATIONS}_PORT, GATEHOUSE_ACME_HTTP01_PORT,
# the libpq variables PGHOST PGPORT PGUSER PGPASSWORD PGDATABASE PGSSLROOTCERT (the database the session talks to,
# and for "postgres" a server where new databases may be created); gatehouse on PATH.
set -euo pipefail
MODE=${1:?usage: backup-replay.sh sqlite|postgres}
DAEMON=
stop_daemon() {
    if [ -n "$DAEMON" ]; then
        kill "$DAEMON" 2>/dev/null || true
        wait "$DAEMON" 2>/dev/null || true
        DAEMON=
    fi
}
trap stop_daemon EXIT
step() { echo "== $*"; }

# PostgreSQL databases of this run: the source store, the scratch copy verify restores into, the restored store.
ADMIN_DB="postgres://$PGUSER:$PGPASSWORD@$PGHOST:$PGPORT/postgres?sslmode=disable"
SUFFIX=$$
SRC_DB=gh_backup_src_$SUFFIX SCRATCH_DB=gh_backup_scratch_$SUFFIX RESTORED_DB=gh_backup_restored_$SUFFIX
db_url() { echo "postgres://$PGUSER:$PGPASSWORD@$PGHOST:$PGPORT/$1?sslmode=disable"; }
drop_databases() {
    for db in $SRC_DB $SCRATCH_DB $RESTORED_DB; do
        psql -X -q "$ADMIN_DB" -c "DROP DATABASE IF EXISTS $db" > /dev/null 2>&1 || true
    done
}
if [ "$MODE" = postgres ]; then
    trap 'stop_daemon; drop_databases' EXIT
    for db in $SRC_DB $SCRATCH_DB $RESTORED_DB; do psql -X -q "$ADMIN_DB" -c "CREATE DATABASE $db"; done
    export GATEHOUSE_STORAGE_BACKEND=postgres GATEHOUSE_STORAGE_POSTGRES_URL=$(db_url $SRC_DB)
fi

serve() {
    gatehouse serve >> gatehouse.log 2>&1 &
    DAEMON=$!
    gatehouse status --wait 60s > /dev/null
}

step "record a session ($MODE store)"
serve
gatehouse project create shop > /dev/null
RESOURCE=$(gatehouse pam resource create --project shop --name orders --host "$PGHOST" --port "$PGPORT" \
    --database "$PGDATABASE" --ca-file "$PGSSLROOTCERT" --output json | jq -r .id)
printf '%s\n' "$PGPASSWORD" | gatehouse pam account add --resource "$RESOURCE" --username "$PGUSER" > /dev/null
ACCOUNT=$(gatehouse pam account list --resource "$RESOURCE" --output json | jq -r '.[0].id')
DANA=$(gatehouse identity create dana --output json | jq -r .id)
gatehouse role assign --project shop "$DANA" developer > /dev/null
DANA_TOKEN=$(gatehouse identity token "$DANA" --output json | jq -r .accessToken)
GRANT=$(GATEHOUSE_TOKEN=$DANA_TOKEN gatehouse pam request "$ACCOUNT" --duration 1h --reason "INC-4242" \
    --output json | jq -r .id)
gatehouse pam approve "$GRANT" > /dev/null
GATEHOUSE_TOKEN=$DANA_TOKEN gatehouse pam connect orders --project shop --account "$PGUSER" -- \
    -X -A -t -c "select 'kept-through-backup-' || 42 as marker" -c "select generate_series(1, 3)" > psql.out 2>&1
grep -q "kept-through-backup-42" psql.out
SESSION=$(gatehouse pam sessions list --project shop --output json | jq -r '.[0].id')
for i in 1 2 3; do
    curl -sf --cacert .gatehouse/certs/ca.crt --cert .gatehouse/certs/admin.crt --key .gatehouse/certs/admin.key \
        -X POST -d "{\"value\":\"value-$i\"}" \
        "https://localhost:$GATEHOUSE_LISTENERS_HTTPS_PORT/api/v1/projects/shop/secrets/kept-$i" > /dev/null
done
# The session has ended and its recording is sealed (and, on PostgreSQL, shipped into the store within seconds).
for _ in $(seq 1 100); do
    gatehouse pam sessions verify --project shop "$SESSION" > sealed.out 2>&1 && break
    sleep 0.2
done
grep -q complete sealed.out || { cat sealed.out; exit 1; }

replay_on() {
    # A daemon on the restored store: the session replays with its statements and verifies complete; a secret reads.
    serve
    gatehouse pam sessions replay "$SESSION" > replay.out
    grep -q "integrity: complete" replay.out
    grep -q "kept-through-backup-' || 42 as marker" replay.out
    grep -q "generate_series(1, 3)" replay.out
    gatehouse pam sessions verify --project shop "$SESSION" | grep -q complete
    curl -sf --cacert "$1/certs/ca.crt" --cert "$1/certs/admin.crt" --key "$1/certs/admin.key" \
        "https://localhost:$GATEHOUSE_LISTENERS_HTTPS_PORT/api/v1/projects/shop/secrets/kept-2" | grep -q value-2
    echo "replayed $SESSION: $(grep -c . replay.out) lines"
    stop_daemon
}

if [ "$MODE" = sqlite ]; then
    printf 'correct horse battery staple\n' > backup.pass
    chmod 600 backup.pass
    step "backup (online), verify, restore elsewhere"
    gatehouse backup --out shop.backup --passphrase-file backup.pass
    stop_daemon
    gatehouse backup verify shop.backup --passphrase-file backup.pass | tee verify.out
    grep -q "the signature verifies" verify.out
    GATEHOUSE_ROOT_KEY_FILE=$PWD/.gatehouse/root.key gatehouse restore shop.backup --data-dir "$PWD/restored" \
        --passphrase-file backup.pass | tee restore.out
    grep -q "audit chain intact" restore.out
    mv .gatehouse source-data  # nothing of the source is left where the restored daemon could read it
    step "serve the restored directory and replay"
    GATEHOUSE_DATA_DIR=$PWD/restored GATEHOUSE_ROOT_KEY_FILE=$PWD/source-data/root.key replay_on "$PWD/restored"
    echo "backup replay checks passed (sqlite)"
    exit 0
fi

step "pg_dump of the live store, then gatehouse backup verify --pg-dump"
export PGPASSWORD
pg_dump --format=custom --file store.dump "$(db_url $SRC_DB)"
gatehouse backup verify --pg-dump store.dump --scratch-url "$(db_url $SCRATCH_DB)" | tee verify.out
grep -q "1 ended sessions: 1 complete" verify.out
grep -q "its recordings replay" verify.out
objects() {
    psql -X -At "$(db_url $SCRATCH_DB)" -c "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'"
}
[ "$(objects)" = 0 ] || { echo "verify left tables in the scratch database"; exit 1; }

# --recordings DIR (pam.recording_store = "local": recordings kept beside the dump): the dump's session is checked
# against the directory, not the store. An empty directory misses it; its file (the store's pieces, in order) passes.
mkdir -m 700 recordings-copy
if gatehouse backup verify --pg-dump store.dump --scratch-url "$(db_url $SCRATCH_DB)" --recordings recordings-copy \
    > missing.out 2>&1; then
    echo "a missing recording verified"; cat missing.out; exit 1
fi
grep -q "recording $SESSION: missing" missing.out || { cat missing.out; exit 1; }
psql -X -At "$(db_url $SRC_DB)" -c \
    "SELECT encode(bytes, 'hex') FROM recording_pieces WHERE session = '$SESSION' ORDER BY start_at" |
    python3 -c 'import sys; sys.stdout.buffer.write(bytes.fromhex(sys.stdin.read().replace("\n", "")))' \
    > "recordings-copy/$SESSION.ghrec"
gatehouse backup verify --pg-dump store.dump --scratch-url "$(db_url $SCRATCH_DB)" --recordings recordings-copy \
    > copied.out 2>&1 || { cat copied.out; exit 1; }
grep -q "1 ended sessions: 1 complete" copied.out

step "what verify refuses"
head -c 32 /dev/urandom | base64 > wrong.key
chmod 600 wrong.key
if GATEHOUSE_ROOT_KEY_FILE=$PWD/wrong.key gatehouse backup verify --pg-dump store.dump \
    --scratch-url "$(db_url $SCRATCH_DB)" > wrong.out 2>&1; then
    echo "a wrong root key verified"; cat wrong.out; exit 1
fi
grep -qi "root key" wrong.out || { cat wrong.out; exit 1; }
[ "$(objects)" = 0 ] || { echo "a failed verify left tables in the scratch database"; exit 1; }
psql -X -q "$(db_url $SCRATCH_DB)" -c "CREATE TABLE precious (x int)"
if gatehouse backup verify --pg-dump store.dump --scratch-url "$(db_url $SCRATCH_DB)" > busy.out 2>&1; then
    echo "a non-empty scratch database was used"; exit 1
fi
grep -q "scratch database is not empty" busy.out || { cat busy.out; exit 1; }
psql -X -At "$(db_url $SCRATCH_DB)" -c "SELECT count(*) FROM precious" | grep -qx 0
psql -X -q "$(db_url $SCRATCH_DB)" -c "DROP TABLE precious"
head -c $(( $(stat -c %s store.dump) / 2 )) store.dump > cut.dump
if gatehouse backup verify --pg-dump cut.dump --scratch-url "$(db_url $SCRATCH_DB)" > cut.out 2>&1; then
    echo "a cut dump verified"; exit 1
fi
grep -q "pg_restore failed" cut.out || { cat cut.out; exit 1; }
[ "$(objects)" = 0 ] || { echo "a cut dump left tables in the scratch database"; exit 1; }
# A recording altered in the database before the dump: verify names the session.
psql -X -q "$(db_url $SRC_DB)" -c \
    "UPDATE recording_pieces SET bytes = set_byte(bytes, length(bytes) / 2, get_byte(bytes, length(bytes) / 2) # 1) WHERE session = '$SESSION' AND start_at = (SELECT min(start_at) FROM recording_pieces WHERE session = '$SESSION')"
pg_dump --format=custom --file tampered.dump "$(db_url $SRC_DB)"
if gatehouse backup verify --pg-dump tampered.dump --scratch-url "$(db_url $SCRATCH_DB)" > tampered.out 2>&1; then
    echo "a tampered recording verified"; cat tampered.out; exit 1
fi
grep -q "recording $SESSION: tampered" tampered.out || { cat tampered.out; exit 1; }
stop_daemon

step "restore the good dump into a new database and replay"
pg_restore --no-owner --exit-on-error --single-transaction --dbname "$(db_url $RESTORED_DB)" store.dump
mv .gatehouse source-data
mkdir -m 700 restored
cp -a source-data/certs restored/certs
GATEHOUSE_STORAGE_POSTGRES_URL=$(db_url $RESTORED_DB) GATEHOUSE_DATA_DIR=$PWD/restored \
    GATEHOUSE_ROOT_KEY_FILE=$PWD/source-data/root.key replay_on "$PWD/restored"
echo "backup replay checks passed (postgres)"
