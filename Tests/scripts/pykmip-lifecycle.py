#!/usr/bin/env python3
"""Key lifecycle and crypto against Gatehouse with PyKMIP 0.11.0's ProxyKmipClient (mutual TLS).

usage: pykmip-lifecycle.py HOST PORT CA CERT KEY KMIP_VERSION
KMIP_VERSION is 1.0 … 1.4 or 2.0 (PyKMIP's client speaks those).
Prints one JSON object: {"steps": {name: "ok" | "FAIL: why"}, ...}. The caller asserts every step is "ok".
"""
import json
import os
import sys
import warnings

warnings.filterwarnings("ignore")
from kmip import enums  # noqa: E402
from kmip.core import attributes as core_attributes  # noqa: E402
from kmip.core import misc  # noqa: E402
from kmip.core import objects as core_objects  # noqa: E402
from kmip.core import primitives  # noqa: E402
from kmip.core import utils  # noqa: E402
from kmip.core.factories import attributes as attribute_factory  # noqa: E402
from kmip.pie import client as pie_client  # noqa: E402
from kmip.pie import exceptions  # noqa: E402
from kmip.pie import objects  # noqa: E402

host, port, ca, cert, key, version = sys.argv[1:7]
# Key bytes the server handed out or was given (hex), so the caller can check they never reach a log.
material = []
versions = {
    "1.0": enums.KMIPVersion.KMIP_1_0, "1.1": enums.KMIPVersion.KMIP_1_1, "1.2": enums.KMIPVersion.KMIP_1_2,
    "1.3": enums.KMIPVersion.KMIP_1_3, "1.4": enums.KMIPVersion.KMIP_1_4, "2.0": enums.KMIPVersion.KMIP_2_0,
}
steps = {}
facts = {}


class LinkValue(primitives.Struct):
    """A Link attribute value (Link Type, Linked Object Identifier): PyKMIP 0.11's attribute factory has none."""

    def __init__(self, link_type, linked_id):
        super(LinkValue, self).__init__(enums.Tags.ATTRIBUTE_VALUE)
        self.link_type = primitives.Enumeration(enums.LinkType, link_type, tag=enums.Tags.LINK_TYPE)
        self.linked_id = primitives.TextString(linked_id, tag=enums.Tags.LINKED_OBJECT_IDENTIFIER)

    def write(self, ostream, kmip_version=enums.KMIPVersion.KMIP_1_0):
        inner = utils.BytearrayStream()
        self.link_type.write(inner, kmip_version=kmip_version)
        self.linked_id.write(inner, kmip_version=kmip_version)
        self.length = inner.length()
        super(LinkValue, self).write(ostream, kmip_version=kmip_version)
        ostream.write(inner.buffer)


def link_attribute(link_type, linked_id):
    return core_objects.Attribute(
        attribute_name=core_objects.Attribute.AttributeName("Link"), attribute_value=LinkValue(link_type, linked_id))


def step(name, fn):
    try:
        result = fn()
        steps[name] = "ok" if result is None or result is True else f"FAIL: {result}"
    except exceptions.KmipOperationFailure as e:
        steps[name] = f"FAIL: {e.reason.name}: {e.message}"
    except Exception as e:  # noqa: BLE001
        steps[name] = f"FAIL: {type(e).__name__}: {e}"


def expect_failure(name, reason, fn):
    try:
        fn()
        steps[name] = f"FAIL: succeeded, expected {reason}"
    except exceptions.KmipOperationFailure as e:
        steps[name] = "ok" if e.reason.name == reason else f"FAIL: {e.reason.name} ({e.message}), expected {reason}"
    except Exception as e:  # noqa: BLE001
        steps[name] = f"FAIL: {type(e).__name__}: {e}"


factory = attribute_factory.AttributeFactory()
suffix = os.urandom(4).hex()
name = f"lifecycle-{version}-{suffix}"
masks = [enums.CryptographicUsageMask.ENCRYPT, enums.CryptographicUsageMask.DECRYPT]
c = pie_client.ProxyKmipClient(
    hostname=host, port=int(port), ca=ca, cert=cert, key=key, config_file=os.devnull, kmip_version=versions[version])
with c:
    state = {}

    def create():
        state["uid"] = c.create(enums.CryptographicAlgorithm.AES, 256, name=name, cryptographic_usage_mask=masks)
        return True if state["uid"] else "no uid"
    step("create", create)
    uid = state.get("uid", "missing")

    def locate():
        found = c.locate(attributes=[factory.create_attribute(enums.AttributeType.NAME, name)])
        return True if found == [uid] else f"located {found}"
    step("locate by name", locate)

    def get():
        k = c.get(uid)
        return True if isinstance(k, objects.SymmetricKey) and len(k.value) == 32 and k.cryptographic_length == 256 else f"{k}"
    step("get", get)

    # 2.x names a wrong state Wrong Key Lifecycle State; 1.x has Illegal Operation (and Permission Denied for Destroy).
    wrong_state = "WRONG_KEY_LIFECYCLE_STATE" if version.startswith("2") else "ILLEGAL_OPERATION"
    expect_failure("encrypt while pre-active", wrong_state,
                   lambda: c.encrypt(b"x" * 16, uid=uid, cryptographic_parameters={
                       "block_cipher_mode": enums.BlockCipherMode.CBC, "padding_method": enums.PaddingMethod.PKCS5,
                       "cryptographic_algorithm": enums.CryptographicAlgorithm.AES}))
    step("activate", lambda: c.activate(uid))

    def get_attributes():
        got_uid, attrs = c.get_attributes(uid, ["State", "Cryptographic Algorithm", "Cryptographic Length", "Name"])
        values = {a.attribute_name.value: a.attribute_value for a in attrs}
        if got_uid != uid:
            return f"uid {got_uid}"
        if values.get("State").value != enums.State.ACTIVE:
            return f"state {values.get('State')}"
        if values.get("Cryptographic Algorithm").value != enums.CryptographicAlgorithm.AES:
            return "algorithm"
        if values.get("Cryptographic Length").value != 256:
            return "length"
        return True
    step("get_attributes", get_attributes)

    def get_attribute_list():
        names = c.get_attribute_list(uid)
        needed = {"Unique Identifier", "State", "Cryptographic Algorithm", "Name", "Initial Date"}
        return True if needed.issubset(set(names)) else f"names {names}"
    step("get_attribute_list", get_attribute_list)

    plaintext = b"The quick brown fox jumps over the lazy dog" * 3

    def cbc():
        params = {"block_cipher_mode": enums.BlockCipherMode.CBC, "padding_method": enums.PaddingMethod.PKCS5,
                  "cryptographic_algorithm": enums.CryptographicAlgorithm.AES}
        ct, iv = c.encrypt(plaintext, uid=uid, cryptographic_parameters=params)
        if iv is None or len(iv) != 16 or ct == plaintext or len(ct) % 16:
            return f"encrypt gave iv={iv} len={len(ct)}"
        pt = c.decrypt(ct, uid=uid, cryptographic_parameters=params, iv_counter_nonce=iv)
        return True if pt == plaintext else "round trip differs"
    step("encrypt/decrypt AES-CBC", cbc)

    def cbc_given_iv():
        params = {"block_cipher_mode": enums.BlockCipherMode.CBC, "padding_method": enums.PaddingMethod.PKCS5,
                  "cryptographic_algorithm": enums.CryptographicAlgorithm.AES}
        iv = bytes(range(16))
        ct, returned = c.encrypt(plaintext, uid=uid, cryptographic_parameters=params, iv_counter_nonce=iv)
        if returned is not None:
            return "server returned an IV although the client gave one"
        # Cross-check with a local implementation of AES-256-CBC/PKCS7.
        from cryptography.hazmat.primitives import padding
        from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
        key_bytes = c.get(uid).value
        material.append(bytes(key_bytes).hex())
        p = padding.PKCS7(128).padder()
        enc = Cipher(algorithms.AES(key_bytes), modes.CBC(iv)).encryptor()
        expected = enc.update(p.update(plaintext) + p.finalize()) + enc.finalize()
        return True if ct == expected else "ciphertext differs from a local AES-CBC"
    step("encrypt with a client IV matches local AES-CBC", cbc_given_iv)

    # ChaCha20 (an algorithm of KMIP 1.4 and later): a registered 256-bit key encrypts with the nonce in IV/Counter/Nonce
    # and the block counter in Initial Counter Value; the result matches the cryptography package's ChaCha20.
    if version in ("1.4", "2.0"):
        def chacha20():
            from cryptography.hazmat.primitives.ciphers import Cipher, algorithms
            raw, nonce = os.urandom(32), os.urandom(12)
            k = objects.SymmetricKey(enums.CryptographicAlgorithm.CHACHA20, 256, raw, name=name + "-chacha",
                                     masks=[enums.CryptographicUsageMask.ENCRYPT, enums.CryptographicUsageMask.DECRYPT])
            kid = c.register(k)
            c.activate(kid)
            params = {"cryptographic_algorithm": enums.CryptographicAlgorithm.CHACHA20, "initial_counter_value": 7}
            ct, returned = c.encrypt(plaintext, uid=kid, cryptographic_parameters=params, iv_counter_nonce=nonce)
            local = Cipher(algorithms.ChaCha20(raw, (7).to_bytes(4, "little") + nonce), None).encryptor().update(plaintext)
            if returned is not None or ct != local:
                return "ciphertext differs from a local ChaCha20"
            pt = c.decrypt(ct, uid=kid, cryptographic_parameters=params, iv_counter_nonce=nonce)
            return True if pt == plaintext else "round trip differs"
        step("ChaCha20 matches a local ChaCha20", chacha20)

    expect_failure("decrypt with a wrong IV length", "INVALID_FIELD",
                   lambda: c.decrypt(b"0" * 32, uid=uid, iv_counter_nonce=b"short", cryptographic_parameters={
                       "block_cipher_mode": enums.BlockCipherMode.CBC, "padding_method": enums.PaddingMethod.PKCS5}))

    def mac():
        mac_uid = c.create(enums.CryptographicAlgorithm.HMAC_SHA256, 256, name=name + "-mac",
                           cryptographic_usage_mask=[enums.CryptographicUsageMask.MAC_GENERATE])
        c.activate(mac_uid)
        got_uid, tag = c.mac(b"message", uid=mac_uid, algorithm=enums.CryptographicAlgorithm.HMAC_SHA256)
        import hashlib
        import hmac
        expected = hmac.new(c.get(mac_uid).value, b"message", hashlib.sha256).digest()
        facts["mac_uid"] = mac_uid
        return True if got_uid == mac_uid and tag == expected else "MAC differs from a local HMAC-SHA256"
    step("mac HMAC-SHA256", mac)
    # PyKMIP's create() always adds Encrypt|Decrypt to the mask; a registered key keeps exactly the mask given.
    expect_failure("encrypt with an HMAC key", "FEATURE_NOT_SUPPORTED",
                   lambda: c.encrypt(b"x" * 16, uid=facts.get("mac_uid", uid), cryptographic_parameters={
                       "block_cipher_mode": enums.BlockCipherMode.CBC, "cryptographic_algorithm": enums.CryptographicAlgorithm.AES}))

    def mac_only():
        k = objects.SymmetricKey(enums.CryptographicAlgorithm.AES, 128, os.urandom(16),
                                 masks=[enums.CryptographicUsageMask.MAC_GENERATE], name=name + "-maconly")
        facts["mac_only"] = c.register(k)
        c.activate(facts["mac_only"])
    step("register a MAC-only AES key", mac_only)
    expect_failure("usage mask enforced: encrypt with a MAC-only key", "PERMISSION_DENIED",
                   lambda: c.encrypt(b"x" * 16, uid=facts.get("mac_only", uid), cryptographic_parameters={
                       "block_cipher_mode": enums.BlockCipherMode.CBC, "cryptographic_algorithm": enums.CryptographicAlgorithm.AES}))

    def register_key():
        raw = os.urandom(16)
        material.append(raw.hex())
        k = objects.SymmetricKey(enums.CryptographicAlgorithm.AES, 128, raw, masks=masks, name=name + "-registered")
        rid = c.register(k)
        back = c.get(rid)
        return True if back.value == raw and back.cryptographic_length == 128 else "registered key differs"
    step("register symmetric key", register_key)

    def register_secret():
        s = objects.SecretData(b"correct horse battery staple", enums.SecretDataType.PASSWORD, name=name + "-secret")
        sid = c.register(s)
        back = c.get(sid)
        return True if isinstance(back, objects.SecretData) and back.value == b"correct horse battery staple" else f"{back}"
    step("register secret data", register_secret)

    def register_opaque():
        o = objects.OpaqueObject(b"\x00opaque\xff", enums.OpaqueDataType.NONE, name=name + "-opaque")
        oid = c.register(o)
        back = c.get(oid)
        return True if isinstance(back, objects.OpaqueObject) and back.value == b"\x00opaque\xff" else f"{back}"
    step("register opaque object", register_opaque)

    # KMIP 2.x names a missing object Object Not Found; an Active object cannot be destroyed: Permission Denied, as
    # in the OASIS profile test cases (and PyKMIP's own server).
    not_found = "OBJECT_NOT_FOUND" if version.startswith("2") else "ITEM_NOT_FOUND"
    expect_failure("get an unknown id", not_found, lambda: c.get("no-such-object"))
    expect_failure("destroy an active key", "WRONG_KEY_LIFECYCLE_STATE" if version.startswith("2") else "PERMISSION_DENIED",
                   lambda: c.destroy(uid))

    def rekey():
        new = c.rekey(uid=uid, offset=0)
        if new == uid:
            return "the replacement has the old identifier"
        if c.get(new).value == c.get(uid).value:
            return "the replacement has the old material"
        found = c.locate(attributes=[factory.create_attribute(enums.AttributeType.NAME, name)])
        return True if found == [new] else f"the name is on {found}, not only on the replacement {new}"
    step("rekey", rekey)
    step("revoke (cessation of operation)",
         lambda: c.revoke(enums.RevocationReasonCode.CESSATION_OF_OPERATION, uid, revocation_message="rotated"))

    def deactivated():
        _, attrs = c.get_attributes(uid, ["State"])
        s = attrs[0].attribute_value.value
        return True if s == enums.State.DEACTIVATED else f"state {s}"
    step("state is deactivated", deactivated)
    expect_failure("encrypt after revoke", wrong_state,
                   lambda: c.encrypt(b"x" * 16, uid=uid, cryptographic_parameters={
                       "block_cipher_mode": enums.BlockCipherMode.CBC, "cryptographic_algorithm": enums.CryptographicAlgorithm.AES}))
    step("destroy", lambda: c.destroy(uid))
    expect_failure("get after destroy", "OBJECT_DESTROYED" if version.startswith("2") else "ITEM_NOT_FOUND", lambda: c.get(uid))

    def destroyed_metadata_kept():
        _, attrs = c.get_attributes(uid, ["State"])
        s = attrs[0].attribute_value.value
        return True if s == enums.State.DESTROYED else f"state {s}"
    step("metadata kept after destroy", destroyed_metadata_kept)

    # ReKey Key Pair (KMIP 1.1 and later; PyKMIP has it only in its low-level KMIPProxy): a new RSA pair that signs
    # and verifies, with the old names, and fresh material.
    if version != "1.0":
        pair = {}

        def create_pair():
            pair["pub"], pair["priv"] = c.create_key_pair(
                enums.CryptographicAlgorithm.RSA, 2048, public_name=name + "-pub", private_name=name + "-priv",
                public_usage_mask=[enums.CryptographicUsageMask.VERIFY],
                private_usage_mask=[enums.CryptographicUsageMask.SIGN])
        step("create key pair", create_pair)

        # The server links a pair's halves: Locate by Link finds the private key of a public key, and back.
        def locate_by_link():
            priv = c.locate(attributes=[link_attribute(enums.LinkType.PUBLIC_KEY_LINK, pair.get("pub", "missing"))])
            pub = c.locate(attributes=[link_attribute(enums.LinkType.PRIVATE_KEY_LINK, pair.get("priv", "missing"))])
            none = c.locate(attributes=[link_attribute(enums.LinkType.PUBLIC_KEY_LINK, pair.get("priv", "missing"))])
            if priv != [pair["priv"]] or pub != [pair["pub"]] or none != []:
                return f"by the public key's link {priv}, by the private key's {pub}, by a link nothing has {none}"
            return True
        if version != "2.0":
            step("locate by link", locate_by_link)

        def rekey_pair():
            r = c.proxy.rekey_key_pair(
                private_key_uuid=core_attributes.PrivateKeyUniqueIdentifier(pair.get("priv", "missing")), offset=misc.Offset(0))
            if r.result_status.value != enums.ResultStatus.SUCCESS:
                return f"{r.result_reason}: {r.result_message}"
            new_priv, new_pub = r.private_key_uuid, r.public_key_uuid
            if new_priv in (pair["priv"], pair["pub"]) or new_pub in (pair["priv"], pair["pub"]):
                return "the replacement kept an old identifier"
            cp = {"cryptographic_algorithm": enums.CryptographicAlgorithm.RSA,
                  "hashing_algorithm": enums.HashingAlgorithm.SHA_256, "padding_method": enums.PaddingMethod.PKCS1v15}
            signature = c.sign(b"rotated", uid=new_priv, cryptographic_parameters=cp)
            if c.signature_verify(b"rotated", signature, uid=new_pub, cryptographic_parameters=cp) != enums.ValidityIndicator.VALID:
                return "the new public key does not verify the new private key's signature"
            if c.get(new_pub).value == c.get(pair["pub"]).value:
                return "the replacement has the old material"
            found = c.locate(attributes=[factory.create_attribute(enums.AttributeType.NAME, name + "-priv")])
            return True if found == [new_priv] else f"the private key's name is on {found}, not only on {new_priv}"
        step("rekey key pair", rekey_pair)

print(json.dumps({"version": version, "steps": steps, "material": material}))
