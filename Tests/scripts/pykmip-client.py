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
    # Query Capabilities and RNGs (KMIP 1.3+): PyKMIP's QueryResult drops them, so read its decoded payload.
    c14 = pie_client.ProxyKmipClient(
        hostname=host, port=int(port), ca=ca, cert=cert, key=key, config_file=os.devnull, kmip_version=enums.KMIPVersion.KMIP_1_4)
    with c14:
        item = c14.proxy._build_query_batch_item([enums.QueryFunction.QUERY_CAPABILITIES, enums.QueryFunction.QUERY_RNGS])
        answer = c14.proxy._send_and_receive_message(c14.proxy._build_request_message(None, [item])).batch_items[0]
        p = answer.response_payload
        caps = (p.capability_information or [None])[0]
        out["capabilities"] = None if caps is None else {
            "streaming": caps.streaming_capability, "asynchronous": caps.asynchronous_capability,
            "batch_continue": caps.batch_continue_capability, "unwrap_mode": caps.unwrap_mode.name,
            "destroy_action": caps.destroy_action.name, "rng_mode": caps.rng_mode.name}
        out["rngs"] = [r.rng_algorithm.name for r in (p.rng_parameters or [])]
    try:
        c.create(enums.CryptographicAlgorithm.AES, 256)
        out["create"] = "succeeded"
    except exceptions.KmipOperationFailure as e:
        out["create"] = e.reason.name
print(json.dumps(out))
