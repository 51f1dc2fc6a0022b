import KMIPProtocol
import TTLV

/// A KMIP Request Message with one batch item.
func kmipRequest(version: (major: Int32, minor: Int32), _ operation: KMIPOperation, _ payload: [TTLVItem]) -> TTLVItem {
    TTLVItem(
        tag: KMIPTag.requestMessage,
        .structure([
            TTLVItem(
                tag: KMIPTag.requestHeader,
                .structure([
                    TTLVItem(
                        tag: KMIPTag.protocolVersion,
                        .structure([
                            TTLVItem(tag: KMIPTag.protocolVersionMajor, .integer(version.major)),
                            TTLVItem(tag: KMIPTag.protocolVersionMinor, .integer(version.minor)),
                        ])),
                    TTLVItem(tag: KMIPTag.batchCount, .integer(1)),
                ])),
            TTLVItem(
                tag: KMIPTag.batchItem,
                .structure([
                    TTLVItem(tag: KMIPTag.operation, .enumeration(operation.rawValue)),
                    TTLVItem(tag: KMIPTag.requestPayload, .structure(payload)),
                ])),
        ]))
}
