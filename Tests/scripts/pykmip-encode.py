#!/usr/bin/env python3
"""Encodes a few KMIP messages with PyKMIP (an independent implementation) and prints `name hex` lines.

The TTLV interop test decodes each with Gatehouse's codec and checks that re-encoding gives the same bytes.
"""
from kmip.core import attributes, enums, objects, utils
from kmip.core.factories import attributes as attribute_factory
from kmip.core.messages import contents, messages, payloads


def request(version, operation, payload):
    pv = contents.ProtocolVersion(version[0], version[1])
    header = messages.RequestHeader(protocol_version=pv, batch_count=contents.BatchCount(1))
    item = messages.RequestBatchItem(operation=contents.Operation(operation), request_payload=payload)
    return messages.RequestMessage(request_header=header, batch_items=[item])


def emit(name, message, kmip_version):
    stream = utils.BytearrayStream()
    message.write(stream, kmip_version=kmip_version)
    print(name, stream.buffer.hex())


f = attribute_factory.AttributeFactory()
emit("discover-versions-1.2", request((1, 2), enums.Operation.DISCOVER_VERSIONS,
     payloads.DiscoverVersionsRequestPayload([contents.ProtocolVersion(2, 1), contents.ProtocolVersion(1, 4)])),
     enums.KMIPVersion.KMIP_1_2)
template = objects.TemplateAttribute(attributes=[
    f.create_attribute(enums.AttributeType.CRYPTOGRAPHIC_ALGORITHM, enums.CryptographicAlgorithm.AES),
    f.create_attribute(enums.AttributeType.CRYPTOGRAPHIC_LENGTH, 256),
    f.create_attribute(enums.AttributeType.CRYPTOGRAPHIC_USAGE_MASK,
                       [enums.CryptographicUsageMask.ENCRYPT, enums.CryptographicUsageMask.DECRYPT]),
    f.create_attribute(enums.AttributeType.NAME,
                       attributes.Name.create("gatehouse-key", enums.NameType.UNINTERPRETED_TEXT_STRING)),
])
emit("create-symmetric-1.4", request((1, 4), enums.Operation.CREATE,
     payloads.CreateRequestPayload(object_type=enums.ObjectType.SYMMETRIC_KEY, template_attribute=template)),
     enums.KMIPVersion.KMIP_1_4)
emit("get-1.0", request((1, 0), enums.Operation.GET, payloads.GetRequestPayload(unique_identifier="1234")),
     enums.KMIPVersion.KMIP_1_0)
emit("locate-2.0", request((2, 0), enums.Operation.LOCATE, payloads.LocateRequestPayload(maximum_items=10)),
     enums.KMIPVersion.KMIP_2_0)
