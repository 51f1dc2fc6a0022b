#!/usr/bin/env bash
# A throwaway PostgreSQL 15 cluster on 127.0.0.1 for the test suite (scram-sha-256 over TCP).
# usage: pg-server.sh start DIR PORT   → prints the URL for PG_TEST_URL (TLS offered too; CA in DIR/tls/ca.crt)
#        pg-server.sh stop DIR
#        pg-server.sh pooler-start DIR PG_PORT POOLER_PORT → PgBouncer in transaction mode in front of it; prints
#                     the URL for PG_POOLER_TEST_URL (database gatehouse_pooled)
#        pg-server.sh pooler-stop DIR
# Runs the server as the 'postgres' system user when invoked as root (initdb refuses root).
set -euo pipefail
cmd="${1:?start|stop}"; dir="${2:?dir}"
PGBIN="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)"
[ -x "$PGBIN/initdb" ] || { echo "PostgreSQL server binaries not found (apt-get install postgresql)" >&2; exit 1; }
as_pg() { if [ "$(id -u)" = 0 ]; then setpriv --reuid=postgres --regid=postgres --init-groups "$@"; else "$@"; fi; }
case "$cmd" in
start)
  port="${3:?port}"
  mkdir -p "$dir"
  [ "$(id -u)" = 0 ] && chown postgres:postgres "$dir"
  if [ ! -s "$dir/data/PG_VERSION" ]; then
    printf 'gatehouse-test\n' > "$dir/pw"; [ "$(id -u)" = 0 ] && chown postgres "$dir/pw"
    as_pg "$PGBIN/initdb" -D "$dir/data" -U gatehouse --pwfile="$dir/pw" --auth-local=trust \
      --auth-host=scram-sha-256 --no-instructions > "$dir/initdb.log" 2>&1 || { cat "$dir/initdb.log" >&2; exit 1; }
    rm -f "$dir/pw"
  fi
  # TLS for clients that ask (sslmode=disable still works): a throwaway CA and a server certificate for
  # localhost / 127.0.0.1 in $dir/tls (the proxy's upstream TLS tests use $dir/tls/ca.crt).
  if [ ! -s "$dir/tls/server.crt" ]; then
    mkdir -p "$dir/tls"
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj "/CN=gatehouse-test-pg-ca" \
      -keyout "$dir/tls/ca.key" -out "$dir/tls/ca.crt" > /dev/null 2>&1
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=localhost" \
      -keyout "$dir/tls/server.key" -out "$dir/tls/server.csr" > /dev/null 2>&1
    printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n' > "$dir/tls/ext"
    openssl x509 -req -in "$dir/tls/server.csr" -CA "$dir/tls/ca.crt" -CAkey "$dir/tls/ca.key" -CAcreateserial -days 2 \
      -extfile "$dir/tls/ext" -out "$dir/tls/server.crt" > /dev/null 2>&1
    chmod 600 "$dir/tls/server.key"
    [ "$(id -u)" = 0 ] && chown -R postgres:postgres "$dir/tls"
  fi
  if ! as_pg "$PGBIN/pg_ctl" -D "$dir/data" status > /dev/null 2>&1; then
    as_pg "$PGBIN/pg_ctl" -D "$dir/data" -l "$dir/postgres.log" -w -t 60 -o \
      "-c listen_addresses=127.0.0.1 -p $port -k $dir -c max_connections=500 -c fsync=on -c ssl=on -c ssl_cert_file=$dir/tls/server.crt -c ssl_key_file=$dir/tls/server.key" start > /dev/null
  fi
  for db in gatehouse_test gatehouse_daemon gatehouse_outage gatehouse_engine gatehouse_keys gatehouse_pooled gatehouse_locate gatehouse_race; do
    as_pg "$PGBIN/psql" -h "$dir" -p "$port" -U gatehouse -d postgres -qAt \
      -c "SELECT 1 FROM pg_database WHERE datname='$db'" | grep -q 1 ||
      as_pg "$PGBIN/psql" -h "$dir" -p "$port" -U gatehouse -d postgres -q -c "CREATE DATABASE $db" > /dev/null
  done
  echo "postgres://gatehouse:gatehouse-test@127.0.0.1:$port/gatehouse_test?sslmode=disable"
  ;;
stop)
  [ -d "$dir/data" ] && as_pg "$PGBIN/pg_ctl" -D "$dir/data" -m fast -w stop > /dev/null 2>&1 || true
  ;;
pooler-start)
  pgport="${3:?postgres port}"; port="${4:?pooler port}"
  [ -x /usr/sbin/pgbouncer ] || { echo "pgbouncer not found (apt-get install pgbouncer)" >&2; exit 1; }
  mkdir -p "$dir/pgbouncer"
  printf '"gatehouse" "gatehouse-test"\n' > "$dir/pgbouncer/userlist.txt"
  cat > "$dir/pgbouncer/pgbouncer.ini" <<EOF
[databases]
gatehouse_pooled = host=127.0.0.1 port=$pgport dbname=gatehouse_pooled
[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $port
unix_socket_dir =
auth_type = scram-sha-256
auth_file = $dir/pgbouncer/userlist.txt
pool_mode = transaction
max_client_conn = 200
default_pool_size = 20
logfile = $dir/pgbouncer/pgbouncer.log
pidfile = $dir/pgbouncer/pgbouncer.pid
EOF
  [ "$(id -u)" = 0 ] && chown -R postgres "$dir/pgbouncer"
  as_pg /usr/sbin/pgbouncer -d "$dir/pgbouncer/pgbouncer.ini" > /dev/null 2>&1 ||
    { tail -n 5 "$dir/pgbouncer/pgbouncer.log" >&2 2>/dev/null; exit 1; }
  for _ in $(seq 1 50); do ss -Hltn "sport = :$port" | grep -q . && break; sleep 0.1; done
  ss -Hltn "sport = :$port" | grep -q . || { echo "pgbouncer did not listen on $port" >&2; exit 1; }
  echo "postgres://gatehouse:gatehouse-test@127.0.0.1:$port/gatehouse_pooled?sslmode=disable"
  ;;
pooler-stop)
  pid="$(cat "$dir/pgbouncer/pgbouncer.pid" 2>/dev/null || true)"
  [ -n "$pid" ] && kill "$pid" 2>/dev/null || true
  ;;
*) echo "usage: $0 start DIR PORT | stop DIR | pooler-start DIR PG_PORT POOLER_PORT | pooler-stop DIR" >&2; exit 2 ;;
esac
