#!/usr/bin/env python3
"""PyKMIP 0.11.0's client at every protocol version it speaks (1.0-2.0): Create an AES key and a Secret Data
object, then Get Attributes with no names (every attribute) and Get Attribute List, as PyKMIP decodes them.

usage: pykmip-versions.py HOST PORT CA CERT KEY
Prints one JSON object: {version: {"create": ..., "attributes": [names], "list": [names], "error": ...}}.
"""
import json
import os
import sys
import warnings

warnings.filterwarnings("ignore")
from kmip import enums  # noqa: E402
from kmip.pie import client as pie_client  # noqa: E402
from kmip.pie import objects  # noqa: E402

host, port, ca, cert, key = sys.argv[1:6]
out = {}
for version in [enums.KMIPVersion.KMIP_1_0, enums.KMIPVersion.KMIP_1_1, enums.KMIPVersion.KMIP_1_2,
                enums.KMIPVersion.KMIP_1_3, enums.KMIPVersion.KMIP_1_4, enums.KMIPVersion.KMIP_2_0]:
    label = "%d.%d" % version.value if isinstance(version.value, tuple) else str(version.value)
    row = {"objects": []}
    c = pie_client.ProxyKmipClient(hostname=host, port=int(port), ca=ca, cert=cert, key=key,
                                   config_file=os.devnull, kmip_version=version)
    try:
        with c:
            uids = [c.create(enums.CryptographicAlgorithm.AES, 256, name="versions-%s" % label)]
            uids.append(c.register(objects.SecretData(b"\x01" * 16, enums.SecretDataType.PASSWORD)))
            for uid in uids:
                entry = {}
                try:
                    _, attributes = c.get_attributes(uid)
                    entry["all"] = sorted(set(a.attribute_name.value for a in attributes))
                except Exception as e:  # noqa: BLE001 - PyKMIP cannot decode some attributes; reported
                    entry["all_error"] = "%s: %s" % (type(e).__name__, e)
                try:
                    entry["list"] = sorted(set(c.get_attribute_list(uid)))
                except Exception as e:  # noqa: BLE001
                    entry["list_error"] = "%s: %s" % (type(e).__name__, e)
                try:
                    _, attributes = c.get_attributes(uid, ["State", "Cryptographic Usage Mask", "Object Type"])
                    entry["named"] = sorted(set(a.attribute_name.value for a in attributes))
                except Exception as e:  # noqa: BLE001
                    entry["named_error"] = "%s: %s" % (type(e).__name__, e)
                row["objects"].append(entry)
    except Exception as e:  # noqa: BLE001 - reported to the test
        row["error"] = "%s: %s" % (type(e).__name__, e)
    out[label] = row
print(json.dumps(out))
