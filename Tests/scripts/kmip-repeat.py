#!/usr/bin/env python3
"""Sends the same KMIP 1.4 Locate request COUNT times on one mutual-TLS connection and classifies each response.

usage: kmip-repeat.py PORT CA CERT KEY COUNT [HEX]
With HEX, sends those bytes (once) instead of the Locate request.
Prints one line per response: `success`, `limited` (refused with "too many failed authentications") or
`refused REASON` (the Result Reason number); `closed` when the server closed the connection instead of answering
(and, after the last response, `then closed` if it closes within 3 s); then exits 0.
"""
import socket
import ssl
import struct
import sys

port, ca, cert, key, count = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5])


def item(tag, typ, value):
    """One TTLV item; value is bytes already encoded for its type."""
    pad = (8 - len(value) % 8) % 8
    return struct.pack("!I", tag)[1:] + bytes([typ]) + struct.pack("!I", len(value)) + value + b"\0" * pad


def integer(tag, v):
    return item(tag, 0x02, struct.pack("!i", v))


def enum(tag, v):
    return item(tag, 0x05, struct.pack("!I", v))


def structure(tag, *children):
    return item(tag, 0x01, b"".join(children))


request = structure(0x420078,
                    structure(0x420077, structure(0x420069, integer(0x42006A, 1), integer(0x42006B, 4)), integer(0x42000D, 1)),
                    structure(0x42000F, enum(0x42005C, 8), structure(0x420079)))

context = ssl.create_default_context(cafile=ca)
context.check_hostname = False
context.load_cert_chain(cert, key)
tls = context.wrap_socket(socket.create_connection(("127.0.0.1", port), timeout=10), server_hostname="localhost")


def read_exact(n):
    data = b""
    while len(data) < n:
        chunk = tls.recv(n - len(data))
        if not chunk:
            raise EOFError("closed")
        data += chunk
    return data


def find(data, tag):
    """The value bytes of the first item with this tag (depth-first)."""
    i = 0
    while i + 8 <= len(data):
        t = struct.unpack("!I", b"\0" + data[i:i + 3])[0]
        typ = data[i + 3]
        n = struct.unpack("!I", data[i + 4:i + 8])[0]
        value = data[i + 8:i + 8 + n]
        if t == tag:
            return value
        if typ == 0x01:
            inner = find(value, tag)
            if inner is not None:
                return inner
        i += 8 + n + (8 - n % 8) % 8
    return None


if len(sys.argv) > 6:
    request = bytes.fromhex(sys.argv[6])
for _ in range(count):
    tls.sendall(request)
    try:
        header = read_exact(8)
        body = read_exact(struct.unpack("!I", header[4:8])[0])
    except (EOFError, OSError):
        print("closed", flush=True)
        sys.exit(0)
    status = find(body, 0x42007F)
    if status is not None and struct.unpack("!I", status)[0] == 0:
        print("success", flush=True)
    elif b"too many failed authentications" in body:
        print("limited", flush=True)
    else:
        reason = find(body, 0x42007E)
        print(f"refused {struct.unpack('!I', reason)[0] if reason else '?'}", flush=True)
tls.settimeout(3)
try:
    if tls.recv(1) == b"":
        print("then closed", flush=True)
except (socket.timeout, ssl.SSLError, OSError):
    pass
tls.close()
