import Foundation
import Synchronization

/// Keeps refused calls from writing unbounded audit data. Refusals are grouped by source (client address and
/// principal) and event type in fixed windows: the first `fullPerWindow` of a group are audited in full, the rest are
/// only counted, and one summary event (`audit.refusals.suppressed`, with the count) is written when the window is
/// over. At most `maxGroups` groups are tracked; past that, refusals of new sources share one overflow group, so the
/// memory and the audit events a flood costs are bounded whatever the number of sources.
final class RefusalAuditLimiter: Sendable {
    struct Key: Hashable, Sendable {
        var source: String
        var type: String
    }

    /// One group's window.
    struct Window: Sendable {
        var start: Date
        var written: Int
        var suppressed: Int
        var project: String?
        /// The last suppressed refusal's metadata (its reason and action), for the summary.
        var lastMetadata: [String: String]
    }

    /// A summary to write: a group's window closed with suppressed refusals.
    struct Summary: Sendable {
        var key: Key
        var window: Window
        var end: Date
    }

    enum Verdict: Sendable {
        case write
        case suppress
    }

    let fullPerWindow: Int
    let window: TimeInterval
    let maxGroups: Int
    static let overflowSource = "*"
    private let groups = Mutex<[Key: Window]>([:])

    init(fullPerWindow: Int = 5, window: TimeInterval = 60, maxGroups: Int = 10_000) {
        self.fullPerWindow = fullPerWindow
        self.window = window
        self.maxGroups = maxGroups
    }

    /// Whether this refusal is audited in full; also returns the summary of the group's previous window when that
    /// window is over (the caller writes it).
    func admit(source: String, type: String, project: String?, metadata: [String: String], now: Date) -> (
        Verdict, Summary?
    ) {
        groups.withLock { groups in
            var key = Key(source: source, type: type)
            if groups[key] == nil, groups.count >= maxGroups { key.source = Self.overflowSource }
            var summary: Summary?
            var w = groups[key] ?? Window(start: now, written: 0, suppressed: 0, project: project, lastMetadata: [:])
            if now.timeIntervalSince(w.start) >= window {
                // The group's window is over: its count is summarized and a new window starts with this refusal.
                if w.suppressed > 0 { summary = Summary(key: key, window: w, end: w.start.addingTimeInterval(window)) }
                w = Window(start: now, written: 0, suppressed: 0, project: project, lastMetadata: [:])
            }
            let verdict: Verdict
            if w.written < fullPerWindow {
                w.written += 1
                verdict = .write
            } else {
                w.suppressed += 1
                w.lastMetadata = metadata
                verdict = .suppress
            }
            groups[key] = w
            return (verdict, summary)
        }
    }

    /// Removes the groups whose window is over and returns the summaries of those that suppressed refusals.
    func due(now: Date) -> [Summary] {
        groups.withLock { groups in
            var out: [Summary] = []
            for (key, w) in groups where now.timeIntervalSince(w.start) >= window {
                if w.suppressed > 0 {
                    out.append(Summary(key: key, window: w, end: w.start.addingTimeInterval(window)))
                }
                groups[key] = nil
            }
            return out
        }
    }

    /// Groups tracked now (for tests and metrics).
    var count: Int { groups.withLock { $0.count } }
}
