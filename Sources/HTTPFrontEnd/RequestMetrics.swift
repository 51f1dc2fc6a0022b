import Metrics

/// Request counters and latency per listener and operation (`gatehouse_requests_total`,
/// `gatehouse_request_errors_total`, `gatehouse_request_duration_seconds`).
public enum RequestMetrics {
    public static func record(listener: String, operation: String, status: Int, elapsed: Duration) {
        let dims = [("listener", listener), ("operation", operation)]
        Counter(label: "gatehouse_requests_total", dimensions: dims).increment()
        if status >= 400 {
            Counter(label: "gatehouse_request_errors_total", dimensions: dims + [("status", String(status))])
                .increment()
        }
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        Timer(label: "gatehouse_request_duration_seconds", dimensions: dims, preferredDisplayUnit: .seconds)
            .recordNanoseconds(Int64(seconds * 1e9))
    }
}
