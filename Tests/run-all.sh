#!/usr/bin/env bash
# Installs everything the test suite needs (idempotent) and runs every test.
# Ends with one line: "N passed, N failed".
#   - Debian packages: curl, openssl, jq, PostgreSQL 15 server (started here, on loopback), SQLite/SSL headers,
#     chromium and chromium-driver (the console's browser tests), SoftHSM2 and the p11-kit PKCS#11 headers.
#   - Python tools in venvs under .build: sslyze, PyKMIP, Schemathesis, psycopg, selenium (test-venv); certbot;
#     moto (S3).
#   - swift build --build-tests, then swift test with PG_TEST_URL pointing at the PostgreSQL started here.
set -uo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
log() { printf '[run-all %s] %s\n' "$(date +%T)" "$*" >&2; }

# 1. System packages (only what is missing; apt-get update once).
need=()
for p in curl openssl ca-certificates postgresql pgbouncer libsqlite3-dev libssl-dev libssh2-1-dev zlib1g-dev python3-venv util-linux iproute2 procps pebble openssh-server openssh-client apache2-utils sqlite3 jq chromium chromium-driver fonts-dejavu-core libp11-kit-dev softhsm2; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || need+=("$p")
done
if [ ${#need[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  log "apt-get install ${need[*]}"
  $SUDO apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >&2 ||
    { log "apt-get failed"; echo "0 passed, 1 failed"; exit 1; }
fi

# 2. Python test tools in a venv under the build folder (re-installed when the list changes).
VENV="$ROOT/.build/test-venv"
# Every peer pinned: a new release changes the suite only when this line does.
PY_SPECS="sslyze==6.3.1 pykmip==0.11.0 schemathesis==4.32.5 pytest==9.2.0 testtools==2.9.1 psycopg[binary]==3.2.3 selenium==4.38.0"
if [ ! -x "$VENV/bin/python" ] || [ "$(cat "$VENV/.specs" 2>/dev/null)" != "$PY_SPECS" ]; then
  log "preparing $VENV ($PY_SPECS)"
  { [ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"; } && "$VENV/bin/pip" install -q --upgrade pip >&2 &&
    "$VENV/bin/pip" install -q $PY_SPECS >&2 && echo "$PY_SPECS" > "$VENV/.specs" ||
    { log "pip install failed"; echo "0 passed, 1 failed"; exit 1; }
fi
export SSLYZE_BIN="$VENV/bin/sslyze" PYKMIP_PYTHON="$VENV/bin/python" PSYCOPG_PYTHON="$VENV/bin/python" SCHEMATHESIS_BIN="$VENV/bin/schemathesis"

# certbot in its own venv: it needs a newer `cryptography` than sslyze accepts.
CERTBOT_VENV="$ROOT/.build/certbot-venv"
CERTBOT_SPECS="certbot==5.8.0 acme==5.9.0 requests==2.34.2"
if [ ! -x "$CERTBOT_VENV/bin/certbot" ] || [ "$(cat "$CERTBOT_VENV/.specs" 2>/dev/null)" != "$CERTBOT_SPECS" ]; then
  log "preparing $CERTBOT_VENV ($CERTBOT_SPECS)"
  { [ -x "$CERTBOT_VENV/bin/python" ] || python3 -m venv "$CERTBOT_VENV"; } &&
    "$CERTBOT_VENV/bin/pip" install -q --upgrade pip >&2 && "$CERTBOT_VENV/bin/pip" install -q $CERTBOT_SPECS >&2 &&
    echo "$CERTBOT_SPECS" > "$CERTBOT_VENV/.specs" ||
    { log "pip install certbot failed"; echo "0 passed, 1 failed"; exit 1; }
fi
export CERTBOT_BIN="$CERTBOT_VENV/bin/certbot" ACME_PYTHON="$CERTBOT_VENV/bin/python"

# moto's S3 server (the S3 recording store's peer) in its own venv: its Flask and boto3 pins are its own.
MOTO_VENV="$ROOT/.build/moto-venv"
MOTO_SPECS="moto[server]==5.2.1"
if [ ! -x "$MOTO_VENV/bin/moto_server" ] || [ "$(cat "$MOTO_VENV/.specs" 2>/dev/null)" != "$MOTO_SPECS" ]; then
  log "preparing $MOTO_VENV ($MOTO_SPECS)"
  { [ -x "$MOTO_VENV/bin/python" ] || python3 -m venv "$MOTO_VENV"; } &&
    "$MOTO_VENV/bin/pip" install -q --upgrade pip >&2 && "$MOTO_VENV/bin/pip" install -q "$MOTO_SPECS" >&2 &&
    echo "$MOTO_SPECS" > "$MOTO_VENV/.specs" ||
    { log "pip install moto failed"; echo "0 passed, 1 failed"; exit 1; }
fi
export MOTO_SERVER_BIN="$MOTO_VENV/bin/moto_server" MOTO_PYTHON="$MOTO_VENV/bin/python"

# PyKMIP's own integration suite lives in its source distribution (not in the wheel).
SDIST="$ROOT/.build/pykmip-sdist"
if [ ! -d "$SDIST/pykmip-0.11.0/kmip/tests/integration" ]; then
  log "fetching the PyKMIP 0.11.0 sdist for its integration suite"
  mkdir -p "$SDIST" && "$VENV/bin/pip" download -q --no-binary :all: --no-deps pykmip==0.11.0 -d "$SDIST" >&2 &&
    tar -xzf "$SDIST/pykmip-0.11.0.tar.gz" -C "$SDIST" ||
    { log "cannot fetch the PyKMIP sdist"; echo "0 passed, 1 failed"; exit 1; }
fi
export PYKMIP_SDIST="$SDIST/pykmip-0.11.0"

# 3. Formatting: the toolchain's swift-format with the repository's .swift-format, in lint mode (a violation fails
#    the run; `swift format -i -r -p Package.swift Sources Tests` fixes most).
log "swift format lint"
if ! swift format lint --strict --recursive --parallel Package.swift Sources Tests .ci/openapi/Package.swift .ci/openapi/Sources >&2; then
  log "swift format lint found violations"; echo "0 passed, 1 failed"; exit 1
fi

# 4. The admin API's generated Swift and served document are what Sources/AdminAPI/openapi.yaml makes
#    (swift-openapi-generator, built in .ci/openapi; `.ci/openapi/regenerate` rewrites them).
log "openapi: generated code is current"
if ! .ci/openapi/regenerate --check >&2; then
  log "Sources/AdminAPI/Generated is not what openapi.yaml makes"; echo "0 passed, 1 failed"; exit 1
fi

# Build everything (the daemon binary is used by the end-to-end tests).
log "swift build --build-tests"
if ! swift build --build-tests >&2; then log "build failed"; echo "0 passed, 1 failed"; exit 1; fi
export GATEHOUSE_BIN="$(swift build --show-bin-path)/gatehouse"

# 4. A throwaway PostgreSQL on a free loopback port.
PGDIR="$(mktemp -d /tmp/gatehouse-test-pg.XXXXXX)"
chmod 755 "$PGDIR"
cleanup() {
  "$ROOT/Tests/scripts/pg-server.sh" pooler-stop "$PGDIR" >/dev/null 2>&1
  "$ROOT/Tests/scripts/pg-server.sh" stop "$PGDIR" >/dev/null 2>&1; rm -rf "$PGDIR"
}
trap cleanup EXIT
# Try a few free ports: a port can be taken between the check and the bind.
PG_TEST_URL=""
for port in $(seq 55432 55499); do
  ss -Hltn "sport = :$port" | grep -q . && continue
  log "starting PostgreSQL on 127.0.0.1:$port"
  if PG_TEST_URL="$("$ROOT/Tests/scripts/pg-server.sh" start "$PGDIR" "$port")"; then break; fi
  log "PostgreSQL did not start on $port: $(tail -n 3 "$PGDIR/postgres.log" 2>/dev/null | tr '\n' ' ')"
  "$ROOT/Tests/scripts/pg-server.sh" stop "$PGDIR" >/dev/null 2>&1; PG_TEST_URL=""
  attempts=$((${attempts:-0} + 1)); [ "$attempts" -ge 3 ] && break
done
if [ -z "$PG_TEST_URL" ]; then log "PostgreSQL did not start"; echo "0 passed, 1 failed"; exit 1; fi
export PG_TEST_URL PG_TEST_CA="$PGDIR/tls/ca.crt"
# PgBouncer in transaction mode in front of it: the storage suite runs through it too (PG_POOLER_TEST_URL).
PG_POOLER_TEST_URL=""
for pport in $(seq 56500 56560); do
  ss -Hltn "sport = :$pport" | grep -q . && continue
  PG_POOLER_TEST_URL="$("$ROOT/Tests/scripts/pg-server.sh" pooler-start "$PGDIR" "$port" "$pport")" && break
  log "PgBouncer did not start on $pport"; PG_POOLER_TEST_URL=""; break
done
export PG_POOLER_TEST_URL
export PG_DAEMON_URL="${PG_TEST_URL/gatehouse_test/gatehouse_daemon}"
export GATEHOUSE_REQUIRE_PG=1 GATEHOUSE_REQUIRE_SSLYZE=1 GATEHOUSE_REQUIRE_PYKMIP=1 GATEHOUSE_REQUIRE_SCHEMATHESIS=1 GATEHOUSE_REQUIRE_CERTBOT=1 GATEHOUSE_REQUIRE_OPENSSH=1 GATEHOUSE_REQUIRE_MOTO=1

# 5. The whole suite.
OUT="$(mktemp /tmp/gatehouse-test-out.XXXXXX)"
log "swift test"
# A hung test must fail the run, not stall CI: the whole suite gets 45 minutes.
timeout --kill-after=30 2700 swift test --skip-build --no-parallel 2>&1 | tee "$OUT"
status=${PIPESTATUS[0]}
total=$(grep -Eo 'Test run with [0-9]+ tests?' "$OUT" | tail -1 | grep -Eo '[0-9]+' || echo 0)
failed=$(grep -E '^✘ Test .* failed after' "$OUT" | grep -vc '^✘ Test run with' || true)
rm -f "$OUT"
if [ "$status" -ne 0 ] && [ "$failed" -eq 0 ]; then failed=1; fi
passed=$((total - failed)); [ "$passed" -lt 0 ] && passed=0
# Every test the suite defines must have run: a test that silently stopped being run counts as failed.
expected=$(grep -rhE '^[[:space:]]*@Test\b' "$ROOT/Tests" --include='*.swift' | wc -l)
if [ "$total" -lt "$expected" ]; then
  log "only $total of the $expected tests the suite defines ran"
  failed=$((failed + expected - total)); status=1
fi

# 6. libFuzzer targets (AddressSanitizer), bounded: each target counts as one test.
log "fuzzing (${GATEHOUSE_FUZZ_SECONDS:-30}s per target)"
FUZZ_OUT="$(mktemp /tmp/gatehouse-fuzz-out.XXXXXX)"
"$ROOT/Tests/Fuzz/run-fuzz.sh" "${GATEHOUSE_FUZZ_SECONDS:-30}" | tee "$FUZZ_OUT"
targets=$(grep -cE '^fuzz_target [a-z]' "$ROOT/Tests/Fuzz/run-fuzz.sh")
clean=$(grep -cE '^fuzz [a-z]+: .*no crash$' "$FUZZ_OUT")
rm -f "$FUZZ_OUT"
passed=$((passed + clean))
if [ "$clean" -lt "$targets" ]; then failed=$((failed + targets - clean)); status=1; fi
echo "$passed passed, $failed failed"
exit "$status"
