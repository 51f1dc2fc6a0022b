#!/usr/bin/env python3
"""Hostile PostgreSQL-protocol clients against the Gatehouse access proxy (used by PAMProxyTests).

usage: pg-hostile.py PORT CA CERT KEY RESOURCE ACCOUNT
Prints one line per case: "<case> ok" or "<case> FAIL <why>"; exits 1 when a case failed.
"""
import socket, ssl, struct, sys, time

port, ca, cert, key, resource, account = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5], sys.argv[6]
port = int(port)
failed = False


def report(name, ok, why=""):
    global failed
    print(f"{name} {'ok' if ok else 'FAIL ' + why}", flush=True)
    failed |= not ok


def connect():
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    return s


def read_all(s, limit=65536):
    out = b""
    try:
        while len(out) < limit:
            b = s.recv(4096)
            if not b:
                return out, True
            out += b
    except (socket.timeout, ssl.SSLError, ConnectionResetError):
        return out, False
    return out, False


def startup(params):
    body = struct.pack("!i", 196608) + b"".join(k.encode() + b"\0" + v.encode() + b"\0" for k, v in params) + b"\0"
    return struct.pack("!i", len(body) + 4) + body


def tls(s, with_cert=True):
    s.sendall(struct.pack("!ii", 8, 80877103))
    if s.recv(1) != b"S":
        raise RuntimeError("no S")
    ctx = ssl.create_default_context(cafile=ca)
    ctx.check_hostname = False
    if with_cert:
        ctx.load_cert_chain(cert, key)
    return ctx.wrap_socket(s)


def error_fields(data):
    """SQLSTATE and message of the first ErrorResponse in data."""
    i = 0
    while i + 5 <= len(data):
        t = data[i:i + 1]
        n = struct.unpack("!i", data[i + 1:i + 5])[0]
        body = data[i + 5:i + 1 + n]
        if t == b"E":
            fields = {f[:1]: f[1:].decode(errors="replace") for f in body.split(b"\0") if f}
            return fields.get(b"C"), fields.get(b"M")
        i += 1 + n
    return None, None


# 1. A StartupMessage in clear: refused with an ErrorResponse asking for TLS.
s = connect()
s.sendall(startup([("user", account), ("database", resource)]))
data, closed = read_all(s)
code, msg = error_fields(data)
report("plaintext-startup", code == "28000" and "TLS" in (msg or "") and closed, f"{code} {msg} closed={closed}")

# 2. Plaintext smuggled behind the SSLRequest (CVE-2021-23214): no 'S', connection closed.
s = connect()
s.sendall(struct.pack("!ii", 8, 80877103) + startup([("user", account), ("database", resource)]))
data, closed = read_all(s)
report("ssl-request-with-trailing-plaintext", data == b"" and closed, f"got {data[:20]!r} closed={closed}")

# 3. An impossible start-up length.
s = connect()
s.sendall(struct.pack("!ii", 0x7FFFFFFF, 196608))
data, closed = read_all(s)
code, _ = error_fields(data)
report("startup-length-overflow", code == "08P01" and closed, f"{code} closed={closed}")

# 4. GSSENCRequest is answered N, then SSL still works.
s = connect()
s.sendall(struct.pack("!ii", 8, 80877104))
answer = s.recv(1)
t = tls(s)
t.sendall(startup([("user", account), ("database", resource), ("replication", "database")]))
data, closed = read_all(t)
code, _ = error_fields(data)
report("gssenc-then-tls-replication-refused", answer == b"N" and code == "0A000", f"answer={answer!r} code={code}")

# 5. A message length beyond the limit after login (CVE-2024-27304 smuggling): FATAL 54000 naming the configured
#    limit, nothing forwarded.
s = connect()
t = tls(s)
t.sendall(startup([("user", account), ("database", resource), ("application_name", "hostile")]))
data = b""
while b"Z\0\0\0\x05" not in data:
    chunk = t.recv(4096)
    if not chunk:
        break
    data += chunk
ok_login = b"Z\0\0\0\x05" in data
# A Query whose length claims 2 GiB, followed by a real query that must not run.
t.sendall(b"Q" + struct.pack("!i", 0x7FFFFFF0) + b"select 1\0" + b"Q" + struct.pack("!i", 4 + 9) + b"select 2\0")
data, closed = read_all(t)
code, msg = error_fields(data)
report("message-length-overflow", ok_login and code == "54000" and "max_message_size" in (msg or "") and closed
       and b"C\0\0\0\rSELECT 1" not in data, f"login={ok_login} {code} {msg} closed={closed}")

# 6. Garbage (an HTTP request) instead of a start-up packet.
s = connect()
s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
data, closed = read_all(s)
report("garbage", closed, f"closed={closed}")

# 7. No client certificate and no password message: the proxy asks for a password, the client hangs up.
s = connect()
t = tls(s, with_cert=False)
t.sendall(startup([("user", account), ("database", resource)]))
first = t.recv(9)
report("no-certificate-asks-for-password", first[:1] == b"R" and struct.unpack("!i", first[5:9])[0] == 3, f"{first!r}")
t.close()

# 8. Direct TLS (PostgreSQL 17's sslnegotiation=direct): a TLS ClientHello first, ALPN "postgresql"; the session works.
def direct_tls(alpn):
    ctx = ssl.create_default_context(cafile=ca)
    ctx.check_hostname = False
    ctx.load_cert_chain(cert, key)
    if alpn:
        ctx.set_alpn_protocols(alpn)
    return ctx.wrap_socket(connect())


def until_ready(t):
    data = b""
    while not data.endswith(b"Z\0\0\0\x05I"):
        chunk = t.recv(65536)
        if not chunk:
            break
        data += chunk
    return data


try:
    t = direct_tls(["postgresql"])
    t.sendall(startup([("user", account), ("database", resource), ("application_name", "direct-tls")]))
    login = until_ready(t)
    q = b"select 'direct-tls-marker_1'\0"
    t.sendall(b"Q" + struct.pack("!i", 4 + len(q)) + q)
    answer = until_ready(t)
    t.sendall(b"X\0\0\0\x04")
    report("direct-tls-alpn-postgresql", t.selected_alpn_protocol() == "postgresql" and login[:9] == b"R\0\0\0\x08\0\0\0\0"
           and b"direct-tls-marker_1" in answer and b"SELECT 1" in answer, f"alpn={t.selected_alpn_protocol()} login={login[:20]!r} answer={answer[:80]!r}")
except Exception as e:  # noqa: BLE001
    report("direct-tls-alpn-postgresql", False, repr(e))

# 9. Direct TLS without ALPN, or with another protocol's: FATAL 08P01 inside TLS, closed, the start-up never used.
for name, alpn in [("direct-tls-without-alpn-refused", None), ("direct-tls-other-alpn-refused", ["http/1.1"])]:
    try:
        t = direct_tls(alpn)
        t.sendall(startup([("user", account), ("database", resource)]))
        data, closed = read_all(t)
        code, msg = error_fields(data)
        report(name, code == "08P01" and "ALPN" in (msg or "") and closed and not data.startswith(b"R"), f"{code} {msg} closed={closed}")
    except Exception as e:  # noqa: BLE001
        report(name, False, repr(e))

sys.exit(1 if failed else 0)
