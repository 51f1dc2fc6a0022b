import Foundation
import StorageAPI

/// What every `RecordingStore` must do, run against each implementation (the local directory today; the shared
/// stores as they come). Throws a description of the first difference.
public enum RecordingStoreConformance {
    public struct Failure: Error, CustomStringConvertible {
        public var description: String
    }

    static func check(_ condition: Bool, _ what: String) throws {
        if !condition { throw Failure(description: what) }
    }

    public static func run(_ store: any RecordingStore) async throws {
        let id = UUID().uuidString.lowercased()
        try check(try await store.read(sessionId: id) == nil, "a session never written has no recording")
        try check(try await store.length(sessionId: id) == 0, "a session never written has length 0")
        // Written in order, in pieces of any size.
        let first: [UInt8] = Array("GHREC1".utf8) + (0..<1000).map { UInt8(truncatingIfNeeded: $0) }
        let second: [UInt8] = (0..<70_000).map { UInt8(truncatingIfNeeded: $0 &* 7) }
        try await store.write(sessionId: id, offset: 0, first)
        try check(try await store.read(sessionId: id) == first, "the first piece reads back")
        try await store.write(sessionId: id, offset: first.count, second)
        try check(try await store.read(sessionId: id) == first + second, "both pieces read back in order")
        // An upload retried after a failure or a restart writes the same bytes at the same offset again.
        try await store.write(sessionId: id, offset: first.count, second)
        try check(try await store.read(sessionId: id) == first + second, "a retried piece is not duplicated")
        try check(
            try await store.length(sessionId: id) == first.count + second.count, "the length is where an upload resumes"
        )
        // Reads from an offset: inside the first piece, at the boundary, inside the second, at the end and past it.
        try check(try await store.read(sessionId: id, from: 0) == first + second, "a read from 0 is the whole")
        let whole = first + second
        for offset in [1, first.count - 1, first.count, first.count + 1, whole.count - 1] {
            try check(
                try await store.read(sessionId: id, from: offset) == Array(whole[offset...]),
                "a read from \(offset) is the rest of the recording")
        }
        try check(try await store.read(sessionId: id, from: whole.count) == [], "a read from the end is empty")
        try check(try await store.read(sessionId: id, from: whole.count + 5) == [], "a read past the end is empty")
        try check(
            try await store.read(sessionId: UUID().uuidString.lowercased(), from: 0) == nil,
            "a read from an offset of a session never written is nil")
        // A gap would lose bytes without anyone knowing: refused.
        var refused = false
        do { try await store.write(sessionId: id, offset: first.count + second.count + 10, [1, 2, 3]) } catch {
            refused = true
        }
        try check(refused, "a write past the end is refused")
        try check(try await store.read(sessionId: id) == first + second, "a refused write changes nothing")
        // Another session's recording is its own.
        let other = UUID().uuidString.lowercased()
        try await store.write(sessionId: other, offset: 0, [9, 9])
        try check(try await store.read(sessionId: other) == [9, 9], "sessions are separate")
        try await store.delete(sessionId: id)
        try check(try await store.read(sessionId: id) == nil, "a deleted recording is gone")
        try check(try await store.length(sessionId: id) == 0, "a deleted recording has length 0")
        try await store.delete(sessionId: id)
        try check(try await store.read(sessionId: other) == [9, 9], "deleting one leaves the others")
        // Names that are not session ids never reach a file or a key.
        for bad in ["../../etc/passwd", "", String(repeating: "a", count: 36), id.uppercased()] {
            try check(try await store.read(sessionId: bad) == nil, "'\(bad)' names no recording")
            var writeRefused = false
            do { try await store.write(sessionId: bad, offset: 0, [1]) } catch { writeRefused = true }
            try check(writeRefused, "'\(bad)' cannot be written")
        }
    }
}
