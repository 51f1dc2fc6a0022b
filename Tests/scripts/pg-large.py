#!/usr/bin/env python3
"""Recording completeness through the proxy (psycopg 3).

usage: pg-large.py CONNINFO TABLE MODE
MODE run:     one Query message of about 1.1 MB (a comment, then `select 1; delete from TABLE where id = 3`), then
              binary-format parameters of several types through a named prepared statement.
MODE refuse:  the same Query message, expected to be refused (the listener's limit is below it).
Prints `<step> ok` or `<step> FAILED: …`; exits non-zero if any failed.
"""
import datetime
import decimal
import sys
import uuid

import psycopg

from steps import finish, step

conninfo, table, mode = sys.argv[1], sys.argv[2], sys.argv[3]
big = "/* " + "x" * 1_100_000 + " */ select 1; delete from " + table + " where id = 3"


def run():
    with psycopg.connect(conninfo, application_name="gh-large", autocommit=True) as conn:
        # No parameters: psycopg sends the text as one simple-protocol Query message.
        conn.execute(big)

        def binary():
            cur = conn.cursor(binary=True)
            cur.execute(
                "select %s::int4, %s::int8, %s::text, %s::bool, %s::uuid, %s::numeric, %s::timestamp, %s::bytea, %s::float8",
                (42, -9000000000, "naïve", True, uuid.UUID("12345678-9abc-def0-1234-56789abcdef0"), decimal.Decimal("-12.0345"),
                 datetime.datetime(2026, 1, 2, 3, 4, 5, 500000), b"\x01\x02\xff", 2.5),
                prepare=True, binary=True)
            assert cur.fetchone()[0] == 42
        step("binary", binary)


def refuse():
    try:
        with psycopg.connect(conninfo, application_name="gh-large", autocommit=True) as conn:
            conn.execute(big)
    except psycopg.Error as e:
        text = str(e)
        assert "max_message_size" in text, text
        print(f"refused: {text.strip().splitlines()[0]}", flush=True)
        return
    raise AssertionError("a message over the limit was accepted")


step("large", run if mode == "run" else refuse)
finish()
