#!/usr/bin/env bash
# The web console in a real browser (ConsoleBrowserTests): a daemon in a new directory, a PAM session recorded
# with psql through the proxy, certificates, a KMIP key from PyKMIP, an admin and a viewer without PAM permission;
# then console_browser.py drives Debian's headless Chromium over it.
#
# Environment (set by the test): GATEHOUSE_LISTENERS_{HTTPS,KMIP,POSTGRES,OPERATIONS}_PORT, the libpq variables
# PGHOST PGPORT PGUSER PGPASSWORD PGDATABASE PGSSLROOTCERT, CONSOLE_PYTHON (python with selenium and PyKMIP),
# CHROMEDRIVER, SCREENSHOTS; gatehouse on PATH. Runs in the current (empty) directory.
set -euo pipefail
trap 'for p in $(jobs -p); do kill $p 2>/dev/null || true; done; wait 2>/dev/null || true' EXIT
HERE=$(cd "$(dirname "$0")" && pwd)

gatehouse serve > gatehouse.log 2>&1 &
gatehouse status --wait 60s > /dev/null
HTTPS=$GATEHOUSE_LISTENERS_HTTPS_PORT

# A database to protect, an account, and a grant for dana.
gatehouse project create console-demo --description 'recorded sessions <for review>' > /dev/null
RESOURCE=$(gatehouse pam resource create --project console-demo --name orders --host "$PGHOST" --port "$PGPORT" \
    --database "$PGDATABASE" --ca-file "$PGSSLROOTCERT" --output json | jq -r .id)
printf '%s\n' "$PGPASSWORD" | gatehouse pam account add --resource "$RESOURCE" --username "$PGUSER" > /dev/null
ACCOUNT=$(gatehouse pam account list --resource "$RESOURCE" --output json | jq -r '.[0].id')
DANA=$(gatehouse identity create dana --output json | jq -r .id)
gatehouse role assign --project console-demo "$DANA" developer > /dev/null
DANA_TOKEN=$(gatehouse identity token "$DANA" --output json | jq -r .accessToken)
GRANT=$(GATEHOUSE_TOKEN=$DANA_TOKEN gatehouse pam request "$ACCOUNT" --duration 1h --reason "INC-77" \
    --output json | jq -r .id)
gatehouse pam approve "$GRANT" > /dev/null

# The recorded session: two statements that succeed and one that fails (42P01).
GATEHOUSE_TOKEN=$DANA_TOKEN gatehouse pam connect orders --project console-demo --account "$PGUSER" -- \
    -X -A -t -c "select 'console-' || 1 as greeting" -c "select * from no_such_table_for_console" \
    -c "select generate_series(1, 5)" > psql.out 2>&1 || true
grep -q "console-1" psql.out
SESSION=$(gatehouse pam sessions list --project console-demo --output json | jq -r '.[0].id')

# Certificates with different expiries.
CA=$(gatehouse pki ca create --project console-demo --cn "Console Root" --key-algorithm EC_prime256v1 \
    --output json | jq -r .id)
cat > web.json <<'JSON'
{"name": "web", "subject": [{"type": "commonName", "allowed": ["*.example"]}],
 "sans": [{"type": "dns", "allowed": ["*.example"]}], "keyUsages": ["digitalSignature"],
 "extendedKeyUsages": ["serverAuth"], "maxTTL": "90d"}
JSON
TEMPLATE=$(gatehouse pki template create --project console-demo --file web.json --output json | jq -r .id)
gatehouse pki profile create --project console-demo --slug web --ca "$CA" --template "$TEMPLATE" > /dev/null
gatehouse pki issue web --cn later.example --san dns:later.example --ttl 60d --out ./later > /dev/null
gatehouse pki issue web --cn soon.example --san dns:soon.example --ttl 5d --out ./soon > /dev/null

# A KMIP key, made by PyKMIP over the KMIP listener.
gatehouse kmip client create array-1 --project console-demo --out ./array-1 > /dev/null
cat > kmip_key.py <<PY
from kmip import enums
from kmip.pie import client
c = client.ProxyKmipClient(hostname="127.0.0.1", port=$GATEHOUSE_LISTENERS_KMIP_PORT, ca="array-1/ca.crt",
                           cert="array-1/array-1.crt", key="array-1/array-1.key")
with c:
    c.activate(c.create(enums.CryptographicAlgorithm.AES, 256, name="console-key"))
PY
"$CONSOLE_PYTHON" kmip_key.py

# The reviewer (an organization admin) and a viewer who may read certificates only.
ADMIN=$(gatehouse identity create reviewer --org-role admin --output json | jq -r .id)
ADMIN_TOKEN=$(gatehouse identity token "$ADMIN" --output json | jq -r .accessToken)
gatehouse role create --project console-demo certs-only \
    --permissions '[{"subject":"certificates","actions":["read"]}]' > /dev/null
VIEWER=$(gatehouse identity create auditor-lite --output json | jq -r .id)
gatehouse role assign --project console-demo "$VIEWER" certs-only > /dev/null
VIEWER_TOKEN=$(gatehouse identity token "$VIEWER" --output json | jq -r .accessToken)

# A session the browser watches while it runs (console_browser.py starts it): statements with pauses between.
LIVE_COMMAND="gatehouse pam connect orders --project console-demo --account $PGUSER -- -X -A -t \
    -c \"select 'live-before'\" -c 'select pg_sleep(3)' -c \"select 'live-middle'\" -c 'select pg_sleep(8)' \
    -c \"select 'live-after'\""

GATEHOUSE_TOKEN=$DANA_TOKEN LIVE_COMMAND=$LIVE_COMMAND \
CONSOLE_URL="https://localhost:$HTTPS" ADMIN_TOKEN=$ADMIN_TOKEN VIEWER_TOKEN=$VIEWER_TOKEN PROJECT=console-demo \
    SESSION_ID=$SESSION STATEMENTS=$'select \'console-\' || 1 as greeting\nselect generate_series(1, 5)' \
    "$CONSOLE_PYTHON" "$HERE/console_browser.py"
