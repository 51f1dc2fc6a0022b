#!/usr/bin/env python3
"""Drives Gatehouse's KMIP listener with PyKMIP 0.11.0's client (ProxyKmipClient over mutual TLS).

usage: pykmip-client.py HOST PORT CA CERT KEY
Prints one JSON object: the DiscoverVersions answer, the Query answer, and what a Create returned.
"""
import json
import os
import sys
import warnings

warnings.filterwarnings("ignore")
from kmip import enums  # noqa: E402
from kmip.pie import exceptions  # noqa: E402
from kmip.core.messages import contents  # noqa: E402
from kmip.pie import client as pie_client  # noqa: E402

host, port, ca, cert, key = sys.argv[1:6]
out = {}
c = pie_client.ProxyKmipClient(hostname=host, port=int(port), ca=ca, cert=cert, key=key, config_file=os.devnull)
with c:
    r = c.proxy.discover_versions()
    out["discover_status"] = r.result_status.value.name
    out["versions"] = [f"{v.major}.{v.minor}" for v in r.protocol_versions]
    r = c.proxy.discover_versions(protocol_versions=[contents.ProtocolVersion(1, 2), contents.ProtocolVersion(9, 9)])
    out["discover_filtered"] = [f"{v.major}.{v.minor}" for v in r.protocol_versions]
    q = c.proxy.query(query_functions=[enums.QueryFunction.QUERY_OPERATIONS, enums.QueryFunction.QUERY_SERVER_INFORMATION])
    out["query_status"] = q.result_status.value.name
    out["operations"] = [o.name for o in q.operations]
    out["vendor"] = q.vendor_identification
    try:
        c.create(enums.CryptographicAlgorithm.AES, 256)
        out["create"] = "succeeded"
    except exceptions.KmipOperationFailure as e:
        out["create"] = e.reason.name
print(json.dumps(out))
