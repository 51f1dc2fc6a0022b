import Foundation
import KMIPProtocol
import TTLV
import TestSupport
import Testing

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

/// Sends one KMIP request over the daemon's HTTPS `/kmip` endpoint (TTLV, the administrator's certificate) and
/// returns the response's batch item. `n` numbers the files the request and response go through in `dir`.
func kmipOverHTTPS(
    _ daemon: DaemonProcess, dir: String, n: Int, version: (major: Int32, minor: Int32), _ operation: KMIPOperation,
    _ payload: [TTLVItem]
) throws -> TTLVItem {
    let request = dir + "/request-\(n).ttlv"
    let response = dir + "/response-\(n).ttlv"
    FileManager.default.createFile(
        atPath: request, contents: Data(TTLVEncoder.encode(kmipRequest(version: version, operation, payload))))
    let (_, _, code) = try curl(
        daemon.adminCurl + [
            "-X", "POST", "-H", "Content-Type: application/octet-stream", "--data-binary", "@" + request, "-o",
            response, daemon.httpsBase + "/kmip",
        ])
    #expect(code == 200)
    let bytes = try #require(FileManager.default.contents(atPath: response))
    return try #require(try TTLVDecoder().decode(Array(bytes)).child(KMIPTag.batchItem))
}

/// The Object Type and 2.x Attributes of an AES key for Encrypt and Decrypt (`bits` long), plus `extra` attributes:
/// the payload of a Create, or the start of a Register's.
func aesKeyAttributes(bits: Int32, _ extra: [TTLVItem] = []) -> [TTLVItem] {
    [
        TTLVItem(tag: KMIPTag.objectType, .enumeration(2)),
        TTLVItem(
            tag: KMIPTag.attributes,
            .structure(
                [
                    TTLVItem(tag: KMIPTag.cryptographicAlgorithm, .enumeration(3)),
                    TTLVItem(tag: KMIPTag.cryptographicLength, .integer(bits)),
                    TTLVItem(tag: KMIPTag.cryptographicUsageMask, .integer(12)),
                ] + extra)),
    ]
}
