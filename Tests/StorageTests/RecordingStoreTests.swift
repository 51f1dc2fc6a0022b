import Foundation
import StorageAPI
import TestSupport
import Testing

/// The recording store conformance suite on each implementation.
@Suite struct RecordingStoreTests {
    @Test func localDirectory() async throws {
        let dir = try TemporaryDirectory()
        let store = LocalRecordingStore(directory: dir.path)
        try await RecordingStoreConformance.run(store)
        // Files are the proxy's format on disk: <session>.ghrec, owner-only.
        let id = UUID().uuidString.lowercased()
        try await store.write(sessionId: id, offset: 0, [1, 2, 3])
        let attributes = try FileManager.default.attributesOfItem(atPath: dir.path + "/" + id + ".ghrec")
        #expect((attributes[.posixPermissions] as? NSNumber)?.intValue == 0o600)
    }
}
