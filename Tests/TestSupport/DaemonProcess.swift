import Foundation

/// A `gatehouse serve` started by a test, in its own working directory, stopped by PID.
public final class DaemonProcess: @unchecked Sendable {
    public let process = Process()
    public let directory: String
    public let dataDirectory: String
    public let logPath: String
    public private(set) var ports: [String: Int] = [:]

    /// Starts the daemon. `arguments` follow `serve`; `environment` adds GATEHOUSE_* overrides.
    /// By default both listeners get free ports (port 0) unless the caller sets them.
    public init(
        directory: String, arguments: [String] = [], environment: [String: String] = [:], ephemeralPorts: Bool = true,
        dataDirectory: String? = nil
    ) throws {
        self.directory = directory
        self.dataDirectory = dataDirectory ?? (directory + "/.gatehouse")
        self.logPath = directory + "/daemon-\(UUID().uuidString.prefix(6)).log"
        var env = ProcessInfo.processInfo.environment
        if ephemeralPorts {
            env["GATEHOUSE_LISTENERS_HTTPS_PORT"] = "0"
            env["GATEHOUSE_LISTENERS_OPERATIONS_PORT"] = "0"
            env["GATEHOUSE_LISTENERS_KMIP_PORT"] = "0"
            env["GATEHOUSE_LISTENERS_POSTGRES_PORT"] = "0"
        }
        env["GATEHOUSE_LOGGING_LEVEL"] = env["GATEHOUSE_LOGGING_LEVEL"] ?? "notice"
        for (k, v) in environment { env[k] = v }
        process.executableURL = URL(fileURLWithPath: ProcessRunner.gatehouseBinary)
        process.arguments = ["serve"] + arguments
        process.currentDirectoryURL = URL(fileURLWithPath: directory)
        process.environment = env
        FileManager.default.createFile(atPath: logPath, contents: nil)
        let log = try FileHandle(forWritingTo: URL(fileURLWithPath: logPath))
        process.standardOutput = log
        process.standardError = log
        process.standardInput = FileHandle.nullDevice
        try? FileManager.default.removeItem(atPath: self.dataDirectory + "/run/listeners.json")
        try process.run()
    }

    public var pid: Int32 { process.processIdentifier }
    public var log: String { (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "" }

    /// Waits until every enabled listener is bound (the daemon writes run/listeners.json) or the process exits.
    @discardableResult
    public func waitUntilListening(expected: Int = 4, timeout: TimeInterval = 20) throws -> [String: Int] {
        let path = dataDirectory + "/run/listeners.json"
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if !process.isRunning {
                throw DaemonFailure("daemon exited with \(process.terminationStatus):\n\(log)")
            }
            if let data = FileManager.default.contents(atPath: path),
                let map = try? JSONSerialization.jsonObject(with: data) as? [String: Int], map.count >= expected
            {
                ports = map
                return map
            }
            usleep(50_000)
        }
        var stacks = ""
        if FileManager.default.isExecutableFile(atPath: "/usr/bin/gdb") {
            stacks =
                (try? ProcessRunner.run(
                    ["gdb", "-batch", "-p", String(pid), "-ex", "thread apply all bt 25"], timeout: 30
                ).stdout) ?? ""
        }
        throw DaemonFailure("daemon did not start listening within \(timeout)s:\n\(log)\n\(stacks)")
    }

    /// Sends a signal to the daemon's PID.
    public func signal(_ sig: Int32) { kill(process.processIdentifier, sig) }

    /// Waits for exit and returns the status (kills it after `timeout`).
    @discardableResult
    public func waitForExit(timeout: TimeInterval = 30) -> Int32 {
        let deadline = Date().addingTimeInterval(timeout)
        while process.isRunning && Date() < deadline { usleep(20_000) }
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
        return process.terminationStatus
    }

    /// SIGTERM and wait.
    @discardableResult
    public func stop() -> Int32 {
        if process.isRunning { signal(SIGTERM) }
        return waitForExit()
    }

    deinit {
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
    }

    public struct DaemonFailure: Error, CustomStringConvertible {
        public var description: String
        public init(_ d: String) { description = d }
    }

    /// curl arguments for the admin client certificate made by first start.
    public var adminCurl: [String] {
        let c = dataDirectory + "/certs"
        return ["--cacert", c + "/ca.crt", "--cert", c + "/admin.crt", "--key", c + "/admin.key"]
    }

    /// Creates a project through the admin API (as the bootstrap administrator); an existing one is fine.
    public func ensureProject(_ slug: String) throws {
        let out = try ProcessRunner.run(
            [
                "curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", "-X", "POST", "-H",
                "Content-Type: application/json",
                "-d", "{\"slug\":\"\(slug)\"}",
            ] + adminCurl + [httpsBase + "/api/v1/projects"], timeout: 30)
        guard out.stdout == "201" || out.stdout == "409" else {
            throw DaemonFailure("cannot create project \(slug): HTTP \(out.stdout) \(out.stderr)")
        }
    }

    public var httpsBase: String { "https://localhost:\(ports["https"] ?? 0)" }
    public var operationsBase: String { "http://127.0.0.1:\(ports["operations"] ?? 0)" }
}
