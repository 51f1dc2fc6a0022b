#!/usr/bin/env python3
"""psycopg 3 (libpq underneath) through Gatehouse's PostgreSQL proxy.

usage: pg-psycopg.py CONNINFO
Runs a fixed scenario and prints one `<step> ok` line per step that behaved as PostgreSQL would directly, or
`<step> FAILED: …`; exits non-zero if any step failed. Every statement text it sends contains the marker
`psy_marker` so the caller can find them in the session recording.
"""
import sys
import threading
import time

import psycopg
from psycopg import errors, sql

from steps import expect, fail, finish, step

conninfo = sys.argv[1]


with psycopg.connect(conninfo, application_name="gh-psycopg", autocommit=False) as conn:
    def parameters():
        # Server-side binding: Parse/Bind/Execute with typed parameters, binary results for some.
        with conn.cursor() as cur:
            cur.execute("select %s::int + %s::int as psy_marker, %s::text", (40, 2, "naïve ünïcode"))
            expect(cur.fetchone() == (42, "naïve ünïcode"), "parameters round trip")
        with conn.cursor(binary=True) as cur:
            cur.execute("select %s::bytea as psy_marker", (bytes(range(256)),))
            expect(cur.fetchone()[0] == bytes(range(256)), "binary bytea round trip")
        conn.commit()

    def transactions():
        with conn.cursor() as cur:
            cur.execute("create temp table psy_marker_t (id int primary key, v text)")
            cur.executemany("insert into psy_marker_t values (%s, %s)", [(i, f"row {i}") for i in range(200)])
            conn.commit()
            cur.execute("delete from psy_marker_t where id < 100")
            conn.rollback()
            cur.execute("select count(*) from psy_marker_t /* psy_marker */")
            expect(cur.fetchone()[0] == 200, "rollback kept the rows")

    def prepared():
        with conn.cursor() as cur:
            for i in range(10):
                cur.execute("select v from psy_marker_t where id = %s /* psy_marker prepared */", (i,), prepare=True)
                expect(cur.fetchone()[0] == f"row {i}", "prepared statement result")
        conn.commit()

    def pipeline():
        # libpq pipeline mode: many extended-protocol messages in flight before a Sync.
        with conn.pipeline():
            cur = conn.cursor()
            for i in range(50):
                cur.execute("insert into psy_marker_t values (%s, %s)", (1000 + i, "piped"))
            cur.execute("select count(*) from psy_marker_t where v = 'piped' /* psy_marker */")
        expect(cur.fetchone()[0] == 50, "pipeline inserted 50 rows")
        conn.commit()

    def server_cursor():
        with conn.cursor(name="psy_marker_cursor") as cur:
            cur.itersize = 64
            cur.execute("select generate_series(1, 5000) /* psy_marker */")
            expect(sum(r[0] for r in cur) == 5000 * 5001 // 2, "server-side cursor sum")
        conn.commit()

    def copy_in_out():
        with conn.cursor() as cur:
            with cur.copy("copy psy_marker_t (id, v) from stdin") as copy:
                for i in range(5000, 6000):
                    copy.write_row((i, f"copied {i}"))
            out = bytearray()
            with cur.copy("copy (select * from psy_marker_t where id >= 5000 order by id) to stdout /* psy_marker */") as copy:
                for data in copy:
                    out += data
            expect(out.count(b"\n") == 1000 and out.startswith(b"5000\tcopied 5000\n"), "copy out matches copy in")
        conn.commit()

    def error_then_recover():
        with conn.cursor() as cur:
            try:
                cur.execute("select 1/0 as psy_marker")
                raise AssertionError("division by zero did not fail")
            except errors.DivisionByZero as e:
                expect(e.sqlstate == "22012", "SQLSTATE 22012")
            conn.rollback()
            try:
                cur.execute(sql.SQL("select * from {}").format(sql.Identifier("psy_marker_missing")))
                raise AssertionError("missing table did not fail")
            except errors.UndefinedTable as e:
                expect(e.sqlstate == "42P01", "SQLSTATE 42P01")
            conn.rollback()
            cur.execute("select 'recovered' as psy_marker")
            expect(cur.fetchone()[0] == "recovered", "session usable after errors")
        conn.commit()

    def cancel():
        # Connection.cancel() sends a CancelRequest with the key the proxy issued.
        timer = threading.Timer(1.0, conn.cancel)
        timer.start()
        started = time.monotonic()
        try:
            with conn.cursor() as cur:
                cur.execute("select pg_sleep(20) as psy_marker")
            raise AssertionError("pg_sleep was not cancelled")
        except errors.QueryCanceled as e:
            expect(e.sqlstate == "57014", "SQLSTATE 57014")
            expect(time.monotonic() - started < 10, "cancelled promptly")
        finally:
            timer.cancel()
        conn.rollback()

    def notices_and_notifications():
        seen = []
        conn.add_notice_handler(lambda d: seen.append(d.message_primary))
        with conn.cursor() as cur:
            cur.execute("do $$ begin raise notice 'psy_marker notice'; end $$")
        expect("psy_marker notice" in seen, f"notice delivered: {seen}")
        conn.commit()
        conn.autocommit = True
        got = []
        conn.add_notify_handler(lambda n: got.append((n.channel, n.payload)))
        conn.execute("listen psy_marker_channel")
        conn.execute("notify psy_marker_channel, 'hello'")
        expect(got == [("psy_marker_channel", "hello")], f"notification delivered: {got}")
        conn.autocommit = False

    def large_result():
        with conn.cursor() as cur:
            cur.execute("select repeat('x', 1000) from generate_series(1, 20000) /* psy_marker */")
            rows = cur.fetchall()
            expect(len(rows) == 20000 and all(len(r[0]) == 1000 for r in rows), "20 MB result intact")
        conn.commit()

    for name, fn in [("parameters", parameters), ("transactions", transactions), ("prepared", prepared),
                     ("pipeline", pipeline), ("server-cursor", server_cursor), ("copy", copy_in_out),
                     ("errors", error_then_recover), ("cancel", cancel), ("notices", notices_and_notifications),
                     ("large-result", large_result)]:
        step(name, fn)
        if conn.broken:
            fail("connection broken")
            break

finish()
