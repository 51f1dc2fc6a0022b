#!/usr/bin/env python3
"""Clients that connect, finish the TLS handshake and then say nothing (a login-deadline probe).

usage: silent-clients.py PROTOCOL PORT CA COUNT LIMIT [CERT KEY]
PROTOCOL: https | kmip | postgres (postgres sends an SSLRequest first, as libpq does).
Opens COUNT connections at once, then waits up to LIMIT seconds for the server to close each one. Prints one line
per connection: `closed SECONDS BYTES_HEX` when the server closed it (with what it sent first), or `open` when it
was still open at LIMIT. With GH_EXTRA=1 (postgres), one more connection is tried while the COUNT are open and again after they closed:
`extra refused while full|accepted while full, accepted after|refused after`.
Exit status 0 unless a connection could not be made.
"""
import os
import socket
import ssl
import struct
import sys
import time

protocol, port, ca, count, limit = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4]), float(sys.argv[5])
cert = sys.argv[6] if len(sys.argv) > 7 else None
key = sys.argv[7] if len(sys.argv) > 7 else None

context = ssl.create_default_context(cafile=ca)
context.check_hostname = False
if cert:
    context.load_cert_chain(cert, key)
if protocol == "postgres":
    context.set_alpn_protocols(["postgresql"])

connections = []
for _ in range(count):
    raw = socket.create_connection(("127.0.0.1", port), timeout=10)
    if protocol == "postgres":
        raw.sendall(struct.pack("!II", 8, 80877103))
        answer = raw.recv(1)
        if answer != b"S":
            print(f"no TLS offered: {answer!r}")
            sys.exit(2)
    tls = context.wrap_socket(raw, server_hostname="localhost")
    connections.append((tls, time.monotonic()))



def pg_slot_free():
    """True when a new connection gets the TLS offer ('S'); False when the server closes it at once."""
    try:
        probe = socket.create_connection(("127.0.0.1", port), timeout=3)
        probe.sendall(struct.pack("!II", 8, 80877103))
        answer = probe.recv(1)
        probe.close()
        return answer == b"S"
    except OSError:
        return False


extra = os.environ.get("GH_EXTRA") == "1"
extra_line = ""
if extra:
    # Every connection finished its TLS handshake, so the server holds all of them: no wait needed.
    extra_line = "extra " + ("accepted while full" if pg_slot_free() else "refused while full")

deadline = time.monotonic() + limit
for tls, started in connections:
    received = b""
    closed = None
    while time.monotonic() < deadline:
        tls.settimeout(max(0.05, deadline - time.monotonic()))
        try:
            data = tls.recv(4096)
        except socket.timeout:
            break
        except (ssl.SSLError, OSError):
            data = b""
        if not data:
            closed = time.monotonic() - started
            break
        received += data
    if closed is None:
        print("open", flush=True)
    else:
        print(f"closed {closed:.2f} {received.hex()}", flush=True)
    tls.close()
if extra:
    # The server frees a slot when it has processed the close it started; poll for that (up to 3 s).
    free_by = time.monotonic() + 3
    freed = pg_slot_free()
    while not freed and time.monotonic() < free_by:
        time.sleep(0.05)
        freed = pg_slot_free()
    print(extra_line + ", " + ("accepted after" if freed else "refused after"), flush=True)
