import EngineAPI
import Foundation
import Synchronization

/// Streamed KMIP operations in progress (Encrypt/Decrypt, MAC, Hash), by correlation value: each belongs to its
/// caller (and, for keyed ones, its key), lives on this node, at most `capacity` at once, and is dropped after
/// `idle` without a step.
final class StreamTable<State: Sendable>: Sendable {
    struct Entry: Sendable {
        let owner: Principal
        let keyID: String?
        let state: State
        var lastUse: Date
    }
    private let entries = Mutex<[[UInt8]: Entry]>([:])
    let capacity: Int
    let idle: TimeInterval

    init(capacity: Int = 1024, idle: TimeInterval = 600) {
        self.capacity = capacity
        self.idle = idle
    }

    /// The caller's stream named by `correlation` (on `keyID`), or nil; removed when this is its last step.
    func resume(_ correlation: [UInt8], owner: Principal, keyID: String?, final: Bool, now: Date) -> State? {
        entries.withLock { streams in
            guard var e = streams[correlation], e.owner == owner, e.keyID == keyID else { return nil }
            if final {
                streams[correlation] = nil
            } else {
                e.lastUse = now
                streams[correlation] = e
            }
            return e.state
        }
    }

    /// Registers a new stream and returns its correlation value; refused when `capacity` streams are live.
    func start(_ state: State, owner: Principal, keyID: String?, now: Date) throws -> [UInt8] {
        let value = RandomBytes.make(16)
        try entries.withLock { streams in
            streams = streams.filter { now.timeIntervalSince($0.value.lastUse) < idle }
            guard streams.count < capacity else {
                throw EngineError(.unavailable, "too many streamed operations in progress; retry later")
            }
            streams[value] = Entry(owner: owner, keyID: keyID, state: state, lastUse: now)
        }
        return value
    }

    func drop(_ correlation: [UInt8]) {
        entries.withLock { _ = $0.removeValue(forKey: correlation) }
    }
}
