#!/usr/bin/env python3
"""The proxy's idle timeout against psycopg, with the listener's idle_timeout set to IDLE seconds.

usage: pg-idle.py PROXY_CONNINFO DIRECT_CONNINFO IDLE
Prints one `<step> ok` or `<step> FAILED: …` line per step; exits non-zero if any failed.
- statement: one statement that runs 1.7 × IDLE without a byte either way is not cut.
- listen: a LISTEN connection that only receives a NOTIFY every IDLE/3 s for 2 × IDLE s stays open.
- idle: a connection with no traffic at all is closed after IDLE (the timeout still exists).
"""
import sys
import select
import threading
import time

import psycopg

from steps import finish, step

proxy, direct, idle = sys.argv[1], sys.argv[2], float(sys.argv[3])


def statement():
    with psycopg.connect(proxy, application_name="gh-idle-statement", autocommit=True) as conn:
        conn.execute("select pg_sleep(%s)", (idle * 1.7,))
        assert conn.execute("select 'after'").fetchone() == ("after",)


def listen():
    with psycopg.connect(proxy, application_name="gh-idle-listen", autocommit=True) as conn:
        conn.execute("listen gh_idle")
        stop = time.monotonic() + 2 * idle
        sent = []

        def notifier():
            with psycopg.connect(direct, autocommit=True) as d:
                while time.monotonic() < stop:
                    d.execute("notify gh_idle, 'tick'")
                    sent.append(1)
                    time.sleep(idle / 3)

        t = threading.Thread(target=notifier)
        t.start()
        got = 0
        for _ in conn.notifies(timeout=2 * idle + 2):
            got += 1
            if time.monotonic() >= stop:
                break
        t.join()
        assert got >= 5, f"{got} notifications of {len(sent)}"
        assert conn.execute("select 'still-open'").fetchone() == ("still-open",)


def idle_cut():
    with psycopg.connect(proxy, application_name="gh-idle-quiet", autocommit=True) as conn:
        # Wait for the server to act on the silent connection (its error and close make the socket readable),
        # then check when that happened: not before the idle timeout, and not long after it.
        started = time.monotonic()
        readable, _, _ = select.select([conn.fileno()], [], [], idle + 5)
        waited = time.monotonic() - started
        assert readable, f"a connection with no traffic was still open {idle + 5} s later"
        assert waited >= idle - 0.5, f"closed after {waited:.2f} s, before the {idle} s idle timeout"
        try:
            conn.execute("select 1")
        except psycopg.OperationalError:
            return
        raise AssertionError("the connection still answered after the idle timeout")


step("statement", statement)
step("listen", listen)
step("idle", idle_cut)
finish()
