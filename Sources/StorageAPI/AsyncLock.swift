import Foundation
import Synchronization

/// A fair, async mutual-exclusion lock (FIFO). Used by backends that serialize transactions on one connection.
///
/// The state sits behind a `Mutex` rather than in an actor: taking a free lock and releasing it are plain function
/// calls, not two executor hops per transaction (which showed up as context switches under load).
public final class AsyncLock: Sendable {
    private struct State {
        var locked = false
        var waiters: [CheckedContinuation<Void, Never>] = []
    }
    private let state = Mutex(State())

    /// Creates an unlocked lock.
    public init() {}

    /// Waits until the lock is free and takes it.
    public func lock() async {
        let taken = state.withLock { s -> Bool in
            if s.locked { return false }
            s.locked = true
            return true
        }
        if taken { return }
        await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
            let now = state.withLock { s -> Bool in
                // Released between the fast path and here: take it at once.
                if !s.locked {
                    s.locked = true
                    return true
                }
                s.waiters.append(c)
                return false
            }
            if now { c.resume() }
        }
    }

    /// Releases the lock, handing it to the next waiter if any.
    public func unlock() {
        let next = state.withLock { s -> CheckedContinuation<Void, Never>? in
            if s.waiters.isEmpty {
                s.locked = false
                return nil
            }
            return s.waiters.removeFirst()
        }
        next?.resume()
    }

    /// Whether someone is waiting for the lock (a holder may then leave work for the next one to finish).
    public var hasWaiters: Bool { state.withLock { !$0.waiters.isEmpty } }

    /// Runs `body` while holding the lock.
    public func withLock<T: Sendable>(_ body: () async throws -> T) async rethrows -> T {
        await lock()
        do {
            let value = try await body()
            unlock()
            return value
        } catch {
            unlock()
            throw error
        }
    }
}
