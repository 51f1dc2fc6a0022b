import Foundation
import Metrics
import Synchronization

/// A token bucket per client address for one listener, spent by failed authentications: a source that keeps failing
/// is refused up front (HTTP 429, a KMIP or PostgreSQL error, each after a tarpit delay) until its bucket refills,
/// so a flood of bad credentials costs little work and no store. Sources that authenticate never touch it. At most `maxSources` buckets are kept;
/// a full table first drops the buckets that have refilled, then the oldest ones.
public final class FailureRateLimiter: Sendable {
    struct Bucket: Sendable {
        var tokens: Double
        var updated: UInt64
    }

    public let burst: Double
    /// Tokens a bucket regains per second.
    public let refillPerSecond: Double
    public let maxSources: Int
    /// How long a refused request waits before its answer: a flooding client gets one answer per connection per
    /// tarpit instead of as many as it can send, so it costs little CPU while it waits (and holds only its own
    /// connection slots, which the listener caps).
    public let tarpit: Duration
    private let buckets = Mutex<[String: Bucket]>([:])
    let limited: Counter

    /// - Parameters:
    ///   - burst: failures a source may have at once (0 disables the limiter).
    ///   - refillPerMinute: failures per minute a source may keep up.
    public init(
        listener: String, burst: Int, refillPerMinute: Int, maxSources: Int = 100_000, tarpit: Duration = .seconds(1)
    ) {
        self.tarpit = tarpit
        self.burst = Double(burst)
        self.refillPerSecond = Double(max(1, refillPerMinute)) / 60
        self.maxSources = maxSources
        limited = Counter(label: "gatehouse_failure_rate_limited_total", dimensions: [("listener", listener)])
    }

    static func now() -> UInt64 { DispatchTime.now().uptimeNanoseconds }

    private func refilled(_ b: Bucket, _ now: UInt64) -> Double {
        min(burst, b.tokens + Double(now &- b.updated) / 1e9 * refillPerSecond)
    }

    /// Whether a request from `source` may go on; when not, the seconds until it may (for Retry-After).
    public func check(_ source: String?) -> (allowed: Bool, retryAfter: Int) {
        guard let tokens = tokens(source), tokens < 1 else { return (true, 0) }
        limited.increment()
        return (false, max(1, Int(((1 - tokens) / refillPerSecond).rounded(.up))))
    }

    /// Whether `source` has a failure left, without counting a refusal (for answers that need no authentication and
    /// leave a refused source to `check`).
    public func allows(_ source: String?) -> Bool { tokens(source).map { $0 >= 1 } ?? true }

    /// The tokens `source` has now; nil when it has no bucket (or the limiter is off).
    private func tokens(_ source: String?) -> Double? {
        guard burst > 0, let source else { return nil }
        let now = Self.now()
        return buckets.withLock { buckets in buckets[source].map { refilled($0, now) } }
    }

    /// Waits the tarpit (returns early when the task is cancelled, e.g. at shutdown).
    public func delayRefusal() async {
        try? await Task.sleep(for: tarpit)
    }

    /// Spends one token of `source` for a failed authentication.
    public func recordFailure(_ source: String?) {
        guard burst > 0, let source else { return }
        let now = Self.now()
        buckets.withLock { buckets in
            if buckets[source] == nil, buckets.count >= maxSources { prune(&buckets, now) }
            let current = buckets[source].map { refilled($0, now) } ?? burst
            buckets[source] = Bucket(tokens: max(0, current - 1), updated: now)
        }
    }

    private func prune(_ buckets: inout [String: Bucket], _ now: UInt64) {
        buckets = buckets.filter { refilled($0.value, now) < burst }
        if buckets.count >= maxSources {
            let oldest = buckets.sorted { $0.value.updated < $1.value.updated }.prefix(buckets.count - maxSources / 2)
            for (key, _) in oldest { buckets[key] = nil }
        }
    }

    /// Sources tracked now (tests).
    public var count: Int { buckets.withLock { $0.count } }
}
