import EngineAPI
import Foundation
import Testing

/// Record ids are version 7 UUIDs: the store's id order, which every list pages by, is creation order.
@Suite struct RecordIDTests {
    @Test func idsAreVersion7AndSortInCreationOrder() {
        let ids = (0..<5000).map { _ in RecordID.make() }
        #expect(ids == ids.sorted(), "ids made one after another sort in that order, within a millisecond too")
        #expect(Set(ids).count == ids.count)
        for id in ids.prefix(50) {
            let uuid = UUID(uuidString: id)
            #expect(uuid != nil && id == id.lowercased(), "\(id)")
            let bytes = Array(id.replacingOccurrences(of: "-", with: ""))
            #expect(bytes[12] == "7", "version 7: \(id)")
            #expect(["8", "9", "a", "b"].contains(bytes[16]), "RFC 9562 variant: \(id)")
        }
        // The first 48 bits are the time in milliseconds.
        let at = Date(timeIntervalSince1970: 1_800_000_000.123)
        let id = RecordID.make(now: at.addingTimeInterval(86400 * 365 * 10))
        let millis = UInt64(id.replacingOccurrences(of: "-", with: "").prefix(12), radix: 16) ?? 0
        #expect(millis == UInt64((at.timeIntervalSince1970 + 86400 * 365 * 10) * 1000))
        // A clock that steps back does not reorder ids.
        let before = RecordID.make(now: at)
        #expect(before > id, "a later id never sorts before an earlier one, even if the clock went back")
    }
}
