#!/usr/bin/env bash
# Writes a data directory with an older gatehouse binary, for the upgrade-in-place test
# (DaemonSafetyTests.aStoreFromThePreviousSchemaUpgradesInPlace).
#
# usage: make-upgrade-fixture.sh GATEHOUSE_BINARY OUT_DIR [POSTGRES_URL]
#
# With POSTGRES_URL (an empty database), the store is PostgreSQL and OUT_DIR gets a plain pg_dump of it
# (postgres.sql) instead of gatehouse.sqlite; Tests/vectors/upgrade/postgres-schema2 was made so (schema 2).
#
# Tests/vectors/upgrade/sqlite-schema1 was made with the build of c327049 (SQLite schema 1, before secondary
# indexes): `git worktree add /tmp/old c327049 && (cd /tmp/old && swift build --product gatehouse)`, then this script
# with /tmp/old/.build/debug/gatehouse. Its root key is a test key made for the fixture, nothing else.
# Contents: project "app" with secret db-password = "upgrade-secret-1"; KMIP keys upgrade-key-0..4 (AES-256); a root
# CA, a template, a profile "upgrade" and one certificate for app.upgrade.test (valid 10 years).
set -euo pipefail
bin=$(realpath "$1")
out=$(realpath -m "$2")
pg=${3:-}
work=$(mktemp -d)
trap 'kill "$pid" 2>/dev/null || true; rm -rf "$work"' EXIT
data="$work/.gatehouse"
cd "$work"
export GATEHOUSE_LISTENERS_HTTPS_PORT=0 GATEHOUSE_LISTENERS_OPERATIONS_PORT=0 GATEHOUSE_LISTENERS_KMIP_PORT=0 GATEHOUSE_LISTENERS_POSTGRES_PORT=0
if [ -n "$pg" ]; then export GATEHOUSE_STORAGE_BACKEND=postgres GATEHOUSE_STORAGE_POSTGRES_URL="$pg"; fi
"$bin" serve --data-dir "$data" > "$work/daemon.log" 2>&1 &
pid=$!
for _ in $(seq 1 100); do [ -s "$data/run/listeners.json" ] && break; sleep 0.1; done
https=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["https"])' "$data/run/listeners.json")
base="https://localhost:$https"
c=(curl -sS --fail --cacert "$data/certs/ca.crt" --cert "$data/certs/admin.crt" --key "$data/certs/admin.key")
gh() { "$bin" "$@" --data-dir "$data"; }

gh project create app > /dev/null
"${c[@]}" -X POST -H 'Content-Type: application/json' -d '{"value":"upgrade-secret-1"}' "$base/api/v1/projects/app/secrets/db-password" > /dev/null
for i in 0 1 2 3 4; do
  "${c[@]}" -X POST -H 'Content-Type: text/xml' --data-binary @- "$base/kmip" > /dev/null <<EOF
<RequestMessage><RequestHeader><ProtocolVersion><ProtocolVersionMajor type="Integer" value="1"/><ProtocolVersionMinor type="Integer" value="4"/></ProtocolVersion><BatchCount type="Integer" value="1"/></RequestHeader><BatchItem><Operation type="Enumeration" value="Create"/><RequestPayload><ObjectType type="Enumeration" value="SymmetricKey"/><TemplateAttribute><Attribute><AttributeName type="TextString" value="Cryptographic Algorithm"/><AttributeValue type="Enumeration" value="AES"/></Attribute><Attribute><AttributeName type="TextString" value="Cryptographic Length"/><AttributeValue type="Integer" value="256"/></Attribute><Attribute><AttributeName type="TextString" value="Name"/><AttributeValue><NameValue type="TextString" value="upgrade-key-$i"/><NameType type="Enumeration" value="UninterpretedTextString"/></AttributeValue></Attribute></TemplateAttribute></RequestPayload></BatchItem></RequestMessage>
EOF
done
ca=$(gh pki ca create --project app --cn "Upgrade Root" --output json | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
echo '{"name":"upgrade","subject":[{"type":"commonName","allowed":["*.upgrade.test"]}],"sans":[],"maxTTL":"3650d"}' > "$work/template.json"
template=$(gh pki template create --project app --file "$work/template.json" --output json | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
gh pki profile create --project app --slug upgrade --ca "$ca" --template "$template" > /dev/null
gh pki issue upgrade --cn app.upgrade.test --ttl 3650d --out "$work/cert" > /dev/null

kill -TERM "$pid"
wait "$pid" || true
# The store and its root key only: the TLS certificates would expire, and a daemon makes new ones when they are absent.
mkdir -p "$out"
cp "$data/root.key" "$out/"
if [ -n "$pg" ]; then
  pg_dump --no-owner --no-privileges "${pg%%\?*}" > "$out/postgres.sql"
else
  cp "$data"/gatehouse.sqlite* "$out/"
fi
echo "wrote $out"
