import Metrics
import Synchronization

/// Request counters and latency per listener and operation (`gatehouse_requests_total`,
/// `gatehouse_request_errors_total`, `gatehouse_request_duration_seconds`).
public enum RequestMetrics {
    /// The metric handles of one (listener, operation): made once, since making one looks it up in the registry by
    /// label and dimensions (3% of a keep-alive `/healthz` request's CPU when it was done per request). Operations are
    /// route templates, so there are as many entries as routes.
    struct Handles: Sendable {
        let requests: Counter
        let duration: Timer
    }

    static let handles = Mutex<[String: Handles]>([:])
    static let errorCounters = Mutex<[String: Counter]>([:])

    public static func record(listener: String, operation: String, status: Int, elapsed: Duration) {
        let key = listener + "\u{0}" + operation
        let h = handles.withLock { map in
            if let found = map[key] { return found }
            let dims = [("listener", listener), ("operation", operation)]
            let made = Handles(
                requests: Counter(label: "gatehouse_requests_total", dimensions: dims),
                duration: Timer(
                    label: "gatehouse_request_duration_seconds", dimensions: dims, preferredDisplayUnit: .seconds))
            map[key] = made
            return made
        }
        h.requests.increment()
        if status >= 400 {
            let errorKey = key + "\u{0}" + String(status)
            errorCounters.withLock { map in
                if let found = map[errorKey] { return found }
                let made = Counter(
                    label: "gatehouse_request_errors_total",
                    dimensions: [("listener", listener), ("operation", operation), ("status", String(status))])
                map[errorKey] = made
                return made
            }.increment()
        }
        h.duration.recordNanoseconds(HTTPListener.timeAmount(elapsed).nanoseconds)
    }
}
