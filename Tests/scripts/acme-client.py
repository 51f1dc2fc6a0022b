#!/usr/bin/env python3
"""A small ACME (RFC 8555) client for the error paths certbot never takes, plus IP identifiers (RFC 8738).

usage: acme-client.py DIRECTORY_URL CA_BUNDLE EAB_KID EAB_HMAC HTTP01_PORT [CHALLTESTSRV_MANAGEMENT_URL [TLSALPN01_PORT]]
Uses `cryptography` and `requests` (from certbot's venv). Answers http-01 itself on 127.0.0.1:HTTP01_PORT; with a
pebble-challtestsrv management URL it publishes dns-01 TXT records there (the server's DNS resolver).
Prints one PASS/FAIL line per check and 'N passed, M failed'; exit 1 on any failure.

With ACME_RESUME_DIR set it runs only the restart check: it answers a challenge whose http-01 response hangs, writes
ACME_RESUME_DIR/answered, waits for ACME_RESUME_DIR/restarted (the new directory URL, written once the test has killed
and restarted the server), then lets the response through and expects the restarted server to finish the validation.
"""
import base64
import hashlib
import hmac
import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa, padding
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.x509.oid import NameOID
import ipaddress

DIRECTORY, CA, EAB_KID, EAB_HMAC, PORT = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5])
DNS_MGMT = sys.argv[6] if len(sys.argv) > 6 else None
ALPN_PORT = int(sys.argv[7]) if len(sys.argv) > 7 else None
import os
os.environ["REQUESTS_CA_BUNDLE"] = CA  # requests lets CURL_CA_BUNDLE/REQUESTS_CA_BUNDLE override Session.verify
os.environ.pop("CURL_CA_BUNDLE", None)
S = requests.Session()
S.verify = CA
results = {"pass": 0, "fail": 0}
challenges = {}
hanging = set()  # tokens whose http-01 answer is held back (the connection stays open)


def check(name, ok, detail=""):
    results["pass" if ok else "fail"] += 1
    print(("PASS " if ok else "FAIL ") + name + ("" if ok else ": " + str(detail)[:400]), flush=True)


def b64(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        token = self.path.rsplit("/", 1)[-1]
        while token in hanging:
            time.sleep(0.1)
        body = challenges.get(token)
        self.send_response(200 if body else 404)
        self.end_headers()
        if body:
            self.wfile.write(body.encode())

    def log_message(self, *a):
        pass


threading.Thread(target=ThreadingHTTPServer(("127.0.0.1", PORT), Handler).serve_forever, daemon=True).start()


class Key:
    def __init__(self, kind="ec"):
        self.kind = kind
        self.key = ec.generate_private_key(ec.SECP256R1()) if kind == "ec" else rsa.generate_private_key(65537, 2048)

    def jwk(self):
        pub = self.key.public_key().public_numbers()
        if self.kind == "ec":
            return {"crv": "P-256", "kty": "EC", "x": b64(pub.x.to_bytes(32, "big")), "y": b64(pub.y.to_bytes(32, "big"))}
        n = pub.n.to_bytes((pub.n.bit_length() + 7) // 8, "big")
        return {"e": b64(pub.e.to_bytes(3, "big")), "kty": "RSA", "n": b64(n)}

    def alg(self):
        return "ES256" if self.kind == "ec" else "RS256"

    def sign(self, data):
        if self.kind == "ec":
            r, s = decode_dss_signature(self.key.sign(data, ec.ECDSA(hashes.SHA256())))
            return r.to_bytes(32, "big") + s.to_bytes(32, "big")
        return self.key.sign(data, padding.PKCS1v15(), hashes.SHA256())

    def thumbprint(self):
        return b64(hashlib.sha256(json.dumps(self.jwk(), sort_keys=True, separators=(",", ":")).encode()).digest())


d = S.get(DIRECTORY).json()


def nonce():
    return S.head(d["newNonce"]).headers["Replay-Nonce"]


def jws(key, url, payload, kid=None, alg=None, nonce_value=None, tamper=False, use_jwk=False):
    protected = {"alg": alg or key.alg(), "nonce": nonce_value or nonce(), "url": url}
    if kid and not use_jwk:
        protected["kid"] = kid
    else:
        protected["jwk"] = key.jwk()
    p = b64(json.dumps(protected).encode())
    body = "" if payload is None else b64(json.dumps(payload).encode())
    sig = key.sign((p + "." + body).encode())
    if tamper:
        body = b64(json.dumps({"tampered": True}).encode())
    return {"protected": p, "payload": body, "signature": b64(sig)}


def post(key, url, payload, **kw):
    return S.post(url, json=jws(key, url, payload, **kw), headers={"Content-Type": "application/jose+json"})


def eab(key, url, kid=EAB_KID, mac_key=EAB_HMAC):
    p = b64(json.dumps({"alg": "HS256", "kid": kid, "url": url}).encode())
    payload = b64(json.dumps(key.jwk()).encode())
    raw = base64.urlsafe_b64decode(mac_key + "=" * (-len(mac_key) % 4))
    return {"protected": p, "payload": payload, "signature": b64(hmac.new(raw, (p + "." + payload).encode(), hashlib.sha256).digest())}


def problem(r, kind):
    try:
        return r.headers.get("Content-Type", "").startswith("application/problem+json") and r.json()["type"] == "urn:ietf:params:acme:error:" + kind
    except Exception:
        return False


def await_order(key, url, order, tries=50):
    """Polls an order (POST-as-GET) until it leaves `pending` (at most tries x 0.2 s); returns the last state."""
    for _ in range(tries):
        order = post(key, url, None, kid=kid).json()
        if order["status"] != "pending":
            break
        time.sleep(0.2)
    return order


def answer_http01(key, order):
    """Publishes the key authorization of the order's first http-01 challenge here and asks the server to validate."""
    authz = post(key, order["authorizations"][0], None, kid=kid).json()
    chall = [c for c in authz["challenges"] if c["type"] == "http-01"][0]
    challenges[chall["token"]] = chall["token"] + "." + key.thumbprint()
    post(key, chall["url"], {}, kid=kid)


def resume(state_dir):
    """A validation in flight when the server is killed is finished by the server that comes back."""
    global d, kid
    key = Key("ec")
    r = post(key, d["newAccount"], {"termsOfServiceAgreed": True, "externalAccountBinding": eab(key, d["newAccount"])})
    kid = r.headers["Location"]
    r = post(key, d["newOrder"], {"identifiers": [{"type": "dns", "value": "resume.localhost"}]}, kid=kid)
    order_url, order = r.headers["Location"], r.json()
    authz_url = order["authorizations"][0]
    authz = post(key, authz_url, None, kid=kid).json()
    chall = [c for c in authz["challenges"] if c["type"] == "http-01"][0]
    hanging.add(chall["token"])
    challenges[chall["token"]] = chall["token"] + "." + key.thumbprint()
    r = post(key, chall["url"], {}, kid=kid)
    check("a challenge whose answer hangs stays processing", r.status_code == 200 and r.json().get("status") == "processing", r.text)
    open(state_dir + "/answered", "w").write("1")
    deadline = time.time() + 120
    while not os.path.exists(state_dir + "/restarted") and time.time() < deadline:
        time.sleep(0.1)
    new_directory = open(state_dir + "/restarted").read().strip()
    old_base, new_base = DIRECTORY.rsplit("/", 1)[0], new_directory.rsplit("/", 1)[0]
    d = S.get(new_directory).json()
    kid, authz_url, order_url = (u.replace(old_base, new_base) for u in (kid, authz_url, order_url))
    hanging.discard(chall["token"])
    for _ in range(120):
        authz = post(key, authz_url, None, kid=kid).json()
        if authz["status"] != "pending":
            break
        time.sleep(0.5)
    check("after kill -9 and a restart the validation is finished: authorization valid", authz["status"] == "valid", authz)
    order = post(key, order_url, None, kid=kid).json()
    check("and the order is ready", order["status"] == "ready", order)


if os.environ.get("ACME_RESUME_DIR"):
    resume(os.environ["ACME_RESUME_DIR"])
    print(f"{results['pass']} passed, {results['fail']} failed")
    sys.exit(1 if results["fail"] else 0)

acct_key = Key("ec")
new_acct = d["newAccount"]
r = post(acct_key, new_acct, {"termsOfServiceAgreed": True, "contact": ["mailto:ops@example.org"]})
check("newAccount without EAB -> externalAccountRequired", problem(r, "externalAccountRequired"), r.text)
r = post(acct_key, new_acct, {"termsOfServiceAgreed": True, "externalAccountBinding": eab(acct_key, new_acct, mac_key=b64(b"x" * 32))})
check("EAB with a wrong MAC -> unauthorized", problem(r, "unauthorized") and r.status_code == 403, r.text)
r = post(acct_key, new_acct, {"termsOfServiceAgreed": True, "externalAccountBinding": eab(acct_key, new_acct)})
check("newAccount with EAB -> 201 + Location", r.status_code == 201 and "Location" in r.headers, r.text)
kid = r.headers.get("Location")
r = post(acct_key, new_acct, {"onlyReturnExisting": True})
check("onlyReturnExisting finds the account (200, same Location)", r.status_code == 200 and r.headers.get("Location") == kid, r.text)

used = nonce()
post(acct_key, kid, None, kid=kid, nonce_value=used)
r = post(acct_key, kid, None, kid=kid, nonce_value=used)
check("replayed nonce -> badNonce with a fresh Replay-Nonce", problem(r, "badNonce") and "Replay-Nonce" in r.headers, r.text)
r = S.post(kid, json=jws(acct_key, kid + "x", None, kid=kid), headers={"Content-Type": "application/jose+json"})
check("JWS url differs from the request URL -> unauthorized", problem(r, "unauthorized"), r.text)
r = post(acct_key, kid, None, kid=kid, alg="RS256")
check("alg RS256 with an EC key -> badSignatureAlgorithm", problem(r, "badSignatureAlgorithm"), r.text)
r = post(acct_key, kid, None, kid=kid, alg="none")
check("alg none -> badSignatureAlgorithm", problem(r, "badSignatureAlgorithm"), r.text)
r = post(acct_key, kid, {"contact": []}, kid=kid, tamper=True)
check("tampered payload -> signature does not verify (malformed)", problem(r, "malformed") and r.status_code == 400, r.text)
r = S.post(kid, data="{not json", headers={"Content-Type": "application/jose+json"})
check("body that is not JSON -> malformed", problem(r, "malformed"), r.text)
r = post(acct_key, d["newOrder"], {"identifiers": [{"type": "dns", "value": "evil.example.com"}]}, kid=kid)
check("identifier outside the template -> rejectedIdentifier", problem(r, "rejectedIdentifier"), r.text)
# Several bad identifiers among good ones: one subproblem per refused identifier, naming it (RFC 8555 6.7.1).
r = post(acct_key, d["newOrder"], {"identifiers": [
    {"type": "dns", "value": "ok.localhost"}, {"type": "dns", "value": "evil.example.com"},
    {"type": "dns", "value": "bad..name"}, {"type": "ip", "value": "not-an-ip"}]}, kid=kid)
subs = r.json().get("subproblems", []) if r.headers.get("Content-Type", "").startswith("application/problem+json") else []
check("several bad identifiers -> rejectedIdentifier with one subproblem each",
      problem(r, "rejectedIdentifier") and len(subs) == 3
      and {(s["identifier"]["type"], s["identifier"]["value"]) for s in subs} == {("dns", "bad..name"), ("ip", "not-an-ip"), ("dns", "evil.example.com")}
      and all(s["type"].startswith("urn:ietf:params:acme:error:") and s["detail"] for s in subs), r.text)

# An address sent as a dns identifier is refused, pointing to ip identifiers (RFC 8738).
for literal in ["127.0.0.1", "::1", "10.1.2.3"]:
    r = post(acct_key, d["newOrder"], {"identifiers": [{"type": "dns", "value": literal}]}, kid=kid)
    check("dns identifier %s (an IP literal) -> rejectedIdentifier naming type ip" % literal,
          problem(r, "rejectedIdentifier") and "'ip'" in r.json().get("detail", ""), r.text)

# IP identifier (RFC 8738) through http-01 answered here.
r = post(acct_key, d["newOrder"], {"identifiers": [{"type": "ip", "value": "127.0.0.1"}]}, kid=kid)
check("newOrder for an IP identifier -> 201 pending", r.status_code == 201 and r.json()["status"] == "pending", r.text)
order_url, order = r.headers["Location"], r.json()
r = post(acct_key, order["finalize"], {"csr": "AAAA"}, kid=kid)
check("finalize before the order is ready -> orderNotReady", problem(r, "orderNotReady") and r.status_code == 403, r.text)
answer_http01(acct_key, order)
order = await_order(acct_key, order_url, order)
check("http-01 validated: order ready", order["status"] == "ready", order)
cert_key = ec.generate_private_key(ec.SECP256R1())


def csr(names):
    sans = [x509.IPAddress(ipaddress.ip_address(n)) if n[0].isdigit() else x509.DNSName(n) for n in names]
    req = x509.CertificateSigningRequestBuilder().subject_name(x509.Name([])).add_extension(x509.SubjectAlternativeName(sans), False)
    return b64(req.sign(cert_key, hashes.SHA256()).public_bytes(serialization.Encoding.DER))


# The valid authorization is reused by the account's next order for the same identifier: ready at once.
r = post(acct_key, d["newOrder"], {"identifiers": [{"type": "ip", "value": "127.0.0.1"}]}, kid=kid)
check("a second order for a validated identifier reuses the valid authorization (ready at once)",
      r.status_code == 201 and r.json()["status"] == "ready" and r.json()["authorizations"] == order["authorizations"], r.text)

r = post(acct_key, order["finalize"], {"csr": csr(["127.0.0.1", "other.localhost"])}, kid=kid)
check("CSR with an extra name -> badCSR", problem(r, "badCSR"), r.text)
r = post(acct_key, order["finalize"], {"csr": csr(["127.0.0.1"])}, kid=kid)
check("finalize -> valid with a certificate URL", r.status_code == 200 and r.json().get("status") == "valid", r.text)
cert_url = r.json().get("certificate", "")
r = post(acct_key, cert_url, None, kid=kid)
pem_ok = r.status_code == 200 and r.headers.get("Content-Type") == "application/pem-certificate-chain"
leaf = x509.load_pem_x509_certificates(r.content)[0] if pem_ok else None
check("certificate download: PEM chain with the IP SAN", pem_ok and leaf is not None and
      ipaddress.ip_address("127.0.0.1") in leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(x509.IPAddress), r.text[:200])

# Another account may not read this one's order or certificate.
other = Key("rsa")
r = post(other, new_acct, {"termsOfServiceAgreed": True, "externalAccountBinding": eab(other, new_acct)})
other_kid = r.headers.get("Location")
check("RS256 account created", r.status_code == 201, r.text)
r = post(other, order_url, None, kid=other_kid)
check("another account's order -> unauthorized", problem(r, "unauthorized"), r.text)
r = post(other, cert_url, None, kid=other_kid)
check("another account's certificate -> unauthorized", problem(r, "unauthorized"), r.text)

# dns-01 (RFC 8555 §8.4) through a real DNS server: a wildcard order, and a failure without the record.
if DNS_MGMT:
    r = post(acct_key, d["newOrder"], {"identifiers": [{"type": "dns", "value": "*.wild.localhost"}]}, kid=kid)
    check("wildcard newOrder -> 201", r.status_code == 201, r.text)
    w_url, w_order = r.headers.get("Location"), r.json()
    w_authz = post(acct_key, w_order["authorizations"][0], None, kid=kid).json()
    types = [c["type"] for c in w_authz["challenges"]]
    check("wildcard authorization: wildcard flag, dns-01 only", w_authz.get("wildcard") is True and types == ["dns-01"] and
          w_authz["identifier"]["value"] == "wild.localhost", w_authz)
    dc = w_authz["challenges"][0]
    digest = b64(hashlib.sha256((dc["token"] + "." + acct_key.thumbprint()).encode()).digest())
    requests.post(DNS_MGMT + "/set-txt", json={"host": "_acme-challenge.wild.localhost.", "value": digest}, verify=False)
    post(acct_key, dc["url"], {}, kid=kid)
    w_order = await_order(acct_key, w_url, w_order)
    check("dns-01 validated through the resolver: order ready", w_order["status"] == "ready", w_order)
    wkey = ec.generate_private_key(ec.SECP256R1())
    req = x509.CertificateSigningRequestBuilder().subject_name(x509.Name([])).add_extension(
        x509.SubjectAlternativeName([x509.DNSName("*.wild.localhost")]), False).sign(wkey, hashes.SHA256())
    r = post(acct_key, w_order["finalize"], {"csr": b64(req.public_bytes(serialization.Encoding.DER))}, kid=kid)
    check("wildcard certificate issued", r.status_code == 200 and r.json().get("status") == "valid", r.text)
    r = post(acct_key, d["newOrder"], {"identifiers": [{"type": "dns", "value": "missing.localhost"}]}, kid=kid)
    m_url, m_order = r.headers.get("Location"), r.json()
    m_authz = post(acct_key, m_order["authorizations"][0], None, kid=kid).json()
    mc = [c for c in m_authz["challenges"] if c["type"] == "dns-01"][0]
    post(acct_key, mc["url"], {}, kid=kid)
    m_order = await_order(acct_key, m_url, m_order, tries=60)
    m_authz = post(acct_key, m_order["authorizations"][0], None, kid=kid).json()
    failed = [c for c in m_authz["challenges"] if c["type"] == "dns-01"][0]
    check("dns-01 without the TXT record: challenge, authorization and order invalid, with the reason",
          m_order["status"] == "invalid" and m_authz["status"] == "invalid" and failed["status"] == "invalid" and
          "_acme-challenge.missing.localhost" in failed.get("error", {}).get("detail", ""), m_authz)

# tls-alpn-01 (RFC 8737): a TLS server here answering ALPN acme-tls/1 with the challenge certificate.
if ALPN_PORT:
    import datetime
    import socket
    import ssl
    import tempfile
    alpn = {"files": None}

    from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

    def alpn_cert(name, digest, kind="ec", tls=None):
        """The challenge certificate: EC P-256, Ed25519, or RSA with Key Usage keyEncipherment only (what lego
        sends); `tls` caps the server's TLS version."""
        if kind == "rsa-ke":
            k = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        elif kind == "ed25519":
            k = ed25519.Ed25519PrivateKey.generate()
        else:
            k = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.now(datetime.timezone.utc)
        builder = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
                   .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])).public_key(k.public_key())
                   .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
                   .not_valid_after(now + datetime.timedelta(days=1))
                   .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), False)
                   .add_extension(x509.UnrecognizedExtension(x509.ObjectIdentifier("1.3.6.1.5.5.7.1.31"), b"\x04\x20" + digest), True))
        if kind == "rsa-ke":
            builder = builder.add_extension(x509.KeyUsage(
                digital_signature=False, content_commitment=False, key_encipherment=True, data_encipherment=False,
                key_agreement=False, key_cert_sign=False, crl_sign=False, encipher_only=False, decipher_only=False), True)
        cert = builder.sign(k, None if kind == "ed25519" else hashes.SHA256())
        d = tempfile.mkdtemp()
        open(d + "/c.pem", "wb").write(cert.public_bytes(serialization.Encoding.PEM))
        open(d + "/k.pem", "wb").write(k.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
        alpn["files"] = (d + "/c.pem", d + "/k.pem")
        alpn["tls"] = tls

    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", ALPN_PORT))
    srv.listen(16)

    def alpn_loop():
        while True:
            conn, _ = srv.accept()
            try:
                ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
                ctx.set_alpn_protocols(["acme-tls/1"])
                if alpn.get("tls"):
                    ctx.maximum_version = alpn["tls"]
                ctx.load_cert_chain(*alpn["files"])
                tls = ctx.wrap_socket(conn, server_side=True)
                # Let the validator finish reading and close first (closing at once raced its handshake under load).
                tls.settimeout(5)
                try:
                    tls.recv(1)
                except Exception:
                    pass
                tls.close()
            except Exception:
                conn.close()

    threading.Thread(target=alpn_loop, daemon=True).start()

    def alpn_order(name, good, kind="ec", tls=None):
        r = post(acct_key, d["newOrder"], {"identifiers": [{"type": "dns", "value": name}]}, kid=kid)
        url, o = r.headers.get("Location"), r.json()
        az = post(acct_key, o["authorizations"][0], None, kid=kid).json()
        c = [c for c in az["challenges"] if c["type"] == "tls-alpn-01"][0]
        digest = hashlib.sha256((c["token"] + "." + acct_key.thumbprint()).encode()).digest()
        alpn_cert(name, digest if good else hashlib.sha256(b"wrong").digest(), kind, tls)
        post(acct_key, c["url"], {}, kid=kid)
        o = await_order(acct_key, url, o, tries=60)
        return o, post(acct_key, o["authorizations"][0], None, kid=kid).json()

    o, az = alpn_order("alpn.localhost", True)
    check("tls-alpn-01 validated: order ready", o["status"] == "ready", (o, az))
    # RFC 8737 sets no key usage, key type or TLS version for the challenge certificate.
    for name, kind, tls, what in [
            ("rsake12.localhost", "rsa-ke", ssl.TLSVersion.TLSv1_2, "RSA, keyEncipherment only, TLS 1.2 (lego)"),
            ("rsake13.localhost", "rsa-ke", None, "RSA, keyEncipherment only, TLS 1.3"),
            ("ed.localhost", "ed25519", None, "Ed25519, TLS 1.3"),
            ("ec12.localhost", "ec", ssl.TLSVersion.TLSv1_2, "ECDSA P-256, TLS 1.2")]:
        o, az = alpn_order(name, True, kind, tls)
        check("tls-alpn-01 validated with " + what, o["status"] == "ready", (o, az))

    # Authorization deactivation (RFC 8555 §7.5.2): never reused, and orders waiting on it become invalid.
    r = post(acct_key, d["newOrder"], {"identifiers": [{"type": "dns", "value": "alpn.localhost"}]}, kid=kid)
    reuse_url, reuse = r.headers.get("Location"), r.json()
    check("a second order reuses the valid tls-alpn-01 authorization (ready)", reuse.get("status") == "ready", r.text)
    authz_url = reuse["authorizations"][0]
    r = post(acct_key, authz_url, {"status": "valid"}, kid=kid)
    check("authorization update to a status other than deactivated -> malformed", problem(r, "malformed"), r.text)
    r = post(other, authz_url, {"status": "deactivated"}, kid=other_kid)
    check("another account cannot deactivate the authorization -> unauthorized", problem(r, "unauthorized"), r.text)
    r = post(acct_key, authz_url, {"status": "deactivated"}, kid=kid)
    check("authorization deactivation -> 200 deactivated", r.status_code == 200 and r.json().get("status") == "deactivated", r.text)
    r = post(acct_key, authz_url, None, kid=kid)
    check("the authorization reads back deactivated", r.json().get("status") == "deactivated", r.text)
    r = post(acct_key, reuse_url, None, kid=kid)
    check("the ready order that used it is now invalid", r.json().get("status") == "invalid" and "deactivated" in r.json().get("error", {}).get("detail", ""), r.text)
    r = post(acct_key, reuse["finalize"], {"csr": csr(["alpn.localhost"])}, kid=kid)
    check("finalizing it -> orderNotReady", problem(r, "orderNotReady"), r.text)
    r = post(acct_key, d["newOrder"], {"identifiers": [{"type": "dns", "value": "alpn.localhost"}]}, kid=kid)
    check("a newOrder for the same name gets a new pending authorization, not the deactivated one",
          r.status_code == 201 and r.json().get("status") == "pending" and r.json()["authorizations"][0] != authz_url, r.text)
    o, az = alpn_order("badalpn.localhost", False)
    failed = [c for c in az["challenges"] if c["type"] == "tls-alpn-01"][0]
    check("tls-alpn-01 with the wrong digest: invalid, naming the acmeIdentifier extension",
          o["status"] == "invalid" and "acmeIdentifier" in failed.get("error", {}).get("detail", ""), az)

# Rate limit per identifier (the test daemon allows 3 new orders per identifier per hour).
codes = [post(acct_key, d["newOrder"], {"identifiers": [{"type": "dns", "value": "busy.localhost"}]}, kid=kid) for _ in range(5)]
check("5th order for one identifier within the hour -> rateLimited (429, Retry-After)",
      [c.status_code for c in codes] == [201, 201, 201, 201, 429] and problem(codes[4], "rateLimited") and "Retry-After" in codes[4].headers,
      [c.status_code for c in codes])

# ACME Renewal Information (RFC 9773) for the issued certificate.
def cert_id(cert):
    aki = cert.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value.key_identifier
    serial = cert.serial_number.to_bytes((cert.serial_number.bit_length() + 8) // 8, "big")
    return b64(aki) + "." + b64(serial)


check("directory announces renewalInfo and keyChange", "renewalInfo" in d and "keyChange" in d, d)
meta = d.get("meta", {})
check("directory meta: EAB required, website and CAA identities from the configuration",
      meta.get("externalAccountRequired") is True and meta.get("website") == "https://pki.example.test/"
      and meta.get("caaIdentities") == ["pki.example.test", "gatehouse.test"], meta)
# An order that replaces the certificate (RFC 9773 §5): accepted once, echoed; a second one is alreadyReplaced.
r = post(acct_key, d["newOrder"], {"identifiers": [{"type": "ip", "value": "127.0.0.1"}], "replaces": cert_id(leaf)}, kid=kid)
check("newOrder with replaces -> 201, replaces echoed", r.status_code == 201 and r.json().get("replaces") == cert_id(leaf), r.text)
r = post(acct_key, d["newOrder"], {"identifiers": [{"type": "ip", "value": "127.0.0.1"}], "replaces": cert_id(leaf)}, kid=kid)
check("replacing the same certificate again -> alreadyReplaced", problem(r, "alreadyReplaced"), r.text)
r = post(acct_key, d["newOrder"], {"identifiers": [{"type": "dns", "value": "r.localhost"}], "replaces": "AAAA.AAAA"}, kid=kid)
check("replaces naming no certificate of this account -> malformed", problem(r, "malformed"), r.text)
r = S.get(d.get("renewalInfo", "") + "/" + cert_id(leaf)) if leaf else None
window = r.json().get("suggestedWindow", {}) if r is not None and r.status_code == 200 else {}
check("renewalInfo: a suggested window inside the validity, with Retry-After",
      r is not None and r.status_code == 200 and window.get("start", "") < window.get("end", "") and "Retry-After" in r.headers, r.text if r is not None else "")
r = S.get(d.get("renewalInfo", "") + "/AAAA.AAAA")
check("renewalInfo for an unknown certID -> 404 problem", r.status_code == 404 and problem(r, "malformed"), r.text)

# Key rollover (RFC 8555 §7.3.5): afterwards the old key no longer signs for the account, the new one does.
new_key = Key("ec")
inner_protected = b64(json.dumps({"alg": "ES256", "jwk": new_key.jwk(), "url": d["keyChange"]}).encode())
inner_payload = b64(json.dumps({"account": kid, "oldKey": acct_key.jwk()}).encode())
inner = {"protected": inner_protected, "payload": inner_payload, "signature": b64(new_key.sign((inner_protected + "." + inner_payload).encode()))}
r = post(acct_key, d["keyChange"], inner, kid=kid)
check("keyChange -> 200", r.status_code == 200, r.text)
r = post(acct_key, kid, None, kid=kid)
check("the old key no longer signs for the account -> malformed, signature does not verify",
      r.status_code == 400 and problem(r, "malformed") and "does not verify" in r.json().get("detail", ""), r.text)
r = post(new_key, kid, None, kid=kid)
check("the new key signs for the account", r.status_code == 200, r.text)
r = post(new_key, new_acct, {"onlyReturnExisting": True})
check("onlyReturnExisting with the new key finds the account", r.status_code == 200 and r.headers.get("Location") == kid, r.text)
acct_key = new_key

# Revocation signed with the certificate's own key (jwk), then again -> alreadyRevoked.
class CertKey(Key):
    def __init__(self, k):
        self.kind, self.key = "ec", k


der = leaf.public_bytes(serialization.Encoding.DER) if leaf else b""
r = post(CertKey(cert_key), d["revokeCert"], {"certificate": b64(der), "reason": 1}, use_jwk=True)
check("revokeCert signed by the certificate key -> 200", r.status_code == 200, r.text)
r = post(acct_key, d["revokeCert"], {"certificate": b64(der)}, kid=kid)
check("revoking again -> alreadyRevoked", problem(r, "alreadyRevoked"), r.text)
r = S.get(d.get("renewalInfo", "") + "/" + cert_id(leaf)) if leaf else None
check("renewalInfo after revocation: renew now (window in the past)",
      r is not None and r.status_code == 200 and r.json()["suggestedWindow"]["end"] < time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), r.text if r is not None else "")

# Several profiles behind one directory (draft-ietf-acme-profiles): ACME_SECOND_PROFILE is another ACME profile of
# the same project and CA, whose template allows only *.localhost names and 7-day certificates.
SECOND = os.environ.get("ACME_SECOND_PROFILE")
if SECOND:
    first = DIRECTORY.rstrip("/").split("/")[-2]
    offered = S.get(DIRECTORY).json().get("meta", {}).get("profiles", {})
    check("directory meta.profiles offers both profiles", set(offered) == {first, SECOND} and all(isinstance(v, str) and v for v in offered.values()), offered)
    r = post(acct_key, d["newOrder"], {"identifiers": [{"type": "ip", "value": "127.0.0.1"}], "profile": SECOND}, kid=kid)
    check("the chosen profile's template applies: an IP under the names-only profile -> rejectedIdentifier", problem(r, "rejectedIdentifier"), r.text)
    r = post(acct_key, d["newOrder"], {"identifiers": [{"type": "dns", "value": "p2.localhost"}], "profile": "no-such-profile"}, kid=kid)
    check("newOrder naming a profile the directory does not offer -> invalidProfile", problem(r, "invalidProfile") and r.status_code == 400, r.text)
    r = post(acct_key, d["newOrder"], {"identifiers": [{"type": "dns", "value": "p2.localhost"}], "profile": 7}, kid=kid)
    check("newOrder with a profile that is not a string -> malformed", problem(r, "malformed"), r.text)
    r = post(acct_key, d["newOrder"], {"identifiers": [{"type": "dns", "value": "p2.localhost"}], "profile": SECOND}, kid=kid)
    p_order_url, p_order = r.headers.get("Location", ""), (r.json() if r.status_code == 201 else {})
    check("newOrder with a profile -> 201, profile echoed", r.status_code == 201 and p_order.get("profile") == SECOND, r.text)
    if p_order:
        answer_http01(acct_key, p_order)
        p_order = await_order(acct_key, p_order_url, p_order)
        r = post(acct_key, p_order["finalize"], {"csr": csr(["p2.localhost"])}, kid=kid)
        p_cert_url = r.json().get("certificate", "") if r.status_code == 200 else ""
        pem = post(acct_key, p_cert_url, None, kid=kid).text if p_cert_url else ""
        p_leaf = x509.load_pem_x509_certificate(pem.encode()) if "BEGIN CERTIFICATE" in pem else None
        life = (p_leaf.not_valid_after_utc - p_leaf.not_valid_before_utc).total_seconds() if p_leaf else 0
        first_life = (leaf.not_valid_after_utc - leaf.not_valid_before_utc).total_seconds() if leaf else 0
        check("the certificate follows the chosen profile (7 days, not the directory's own 90)",
              p_leaf is not None and 0 < life <= 7 * 86400 + 600 and first_life > 30 * 86400, (life, first_life, r.text[:200]))

# The account's orders list pages (RFC 8555 §7.1.2.1): 60 orders, pages of 50 linked by Link rel="next".
pager = Key()
r = post(pager, new_acct, {"termsOfServiceAgreed": True, "externalAccountBinding": eab(pager, new_acct)})
pager_kid = r.headers.get("Location")
made = set()
for i in range(60):
    r = post(pager, d["newOrder"], {"identifiers": [{"type": "dns", "value": f"page-{i}.localhost"}]}, kid=pager_kid)
    if r.status_code == 201:
        made.add(r.headers.get("Location"))
url, seen, pages = r.status_code and post(pager, pager_kid, None, kid=pager_kid).json().get("orders"), [], 0
while url and pages < 10:
    r = post(pager, url, None, kid=pager_kid)
    pages += 1
    seen += r.json().get("orders", []) if r.status_code == 200 else []
    nxt = [l for l in r.headers.get("Link", "").split(",") if 'rel="next"' in l]
    url = nxt[0].split(">")[0].strip().lstrip("<") if nxt else None
check("orders list: 60 orders over 2 pages, each once", len(made) == 60 and pages == 2 and sorted(seen) == sorted(made),
      (len(made), pages, len(seen), len(set(seen))))

# Deactivated accounts are refused.
r = post(other, other_kid, {"status": "deactivated"}, kid=other_kid)
check("account deactivation -> deactivated", r.status_code == 200 and r.json()["status"] == "deactivated", r.text)
r = post(other, d["newOrder"], {"identifiers": [{"type": "dns", "value": "a.localhost"}]}, kid=other_kid)
check("deactivated account -> unauthorized", problem(r, "unauthorized"), r.text)

print(f"{results['pass']} passed, {results['fail']} failed")
sys.exit(1 if results["fail"] else 0)
