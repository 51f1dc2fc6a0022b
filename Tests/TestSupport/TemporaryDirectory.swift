import Foundation

/// A directory under the system temp folder, removed when the value is released.
public final class TemporaryDirectory: @unchecked Sendable {
    /// Absolute path of the directory.
    public let path: String

    /// Creates a fresh, empty directory.
    public init(prefix: String = "gatehouse-test") throws {
        let base = ProcessInfo.processInfo.environment["TMPDIR"] ?? NSTemporaryDirectory()
        let p = (base as NSString).appendingPathComponent("\(prefix)-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(atPath: p, withIntermediateDirectories: true)
        self.path = p
    }

    deinit { try? FileManager.default.removeItem(atPath: path) }
}
