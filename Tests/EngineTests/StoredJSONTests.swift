import EngineAPI
import Foundation
import Testing

@testable import Engine

/// Stored bodies (KMIP objects, audit events) are compressed with a preset dictionary; plain bodies from before
/// read unchanged, and damaged ones are refused, never misread.
@Suite struct StoredJSONTests {
    @Test func roundTripsAndShrinksTypicalDocuments() throws {
        let event = AuditEvent(
            event: .init(
                type: "kms.create",
                metadata: [
                    "objectId": RandomUUID.lowercased(), "requestId": RandomUUID.string(), "decision": "allow",
                    "grantedBy": "bootstrap-admin",
                    "algorithm": "3", "length": "256", "name": "disk-7", "objectType": "symmetricKey",
                ]),
            actor: .init(
                type: "identity",
                metadata: [
                    "authMethod": "tlsCertificate", "id": "sha256:" + String(repeating: "ab", count: 32),
                    "name": "storage-array-1",
                    "issuer": "CN=Gatehouse Appliance CA,O=Gatehouse", "serial": "1f:22:33:44",
                    "notAfter": "2027-12-06T03:53:17Z",
                ]),
            projectId: "kmip-default", ipAddress: "10.1.2.3", userAgent: nil, userAgentType: "kmip", timestamp: Date())
        let plain = AuditChain.body(event)
        let packed = StoredJSON.pack(plain)
        #expect(packed.first == StoredJSON.markerV1)
        #expect(try StoredJSON.unpack(packed) == plain)
        #expect(packed.count * 2 < plain.count, "\(plain.count) → \(packed.count) bytes")
        // Bodies written before compression (plain JSON) read as they are.
        #expect(try StoredJSON.unpack(plain) == plain)
        // Any size and content round-trips, the empty document and large ones included.
        var rng = SystemRandomNumberGenerator()
        for size in [0, 1, 100, 5000, 300_000] {
            let data = Data((0..<size).map { _ in UInt8.random(in: 0...255, using: &rng) })
            #expect(try StoredJSON.unpack(StoredJSON.pack(data)) == data, "\(size)")
        }
    }

    @Test func damagedBodiesAreRefused() throws {
        let packed = StoredJSON.pack(Data(#"{"meta":{"id":"x","names":["a"]}}"#.utf8))
        var rng = SystemRandomNumberGenerator()
        var refused = 0
        for _ in 0..<200 {
            var damaged = packed
            let i = Int.random(in: 1..<damaged.count, using: &rng)
            damaged[damaged.startIndex + i] ^= UInt8.random(in: 1...255, using: &rng)
            // Refused, or inflated to bytes the audit hash and the JSON decoder then judge; never a crash.
            if (try? StoredJSON.unpack(damaged)) == nil { refused += 1 }
        }
        #expect(refused > 0)
        #expect(throws: EngineError.self) { try StoredJSON.unpack(Data([StoredJSON.markerV1])) }
        #expect(throws: EngineError.self) { try StoredJSON.unpack(Data([StoredJSON.markerV1, 0xFF, 0xFF, 0xFF])) }
    }
}
