import Foundation

/// Runs external programs (real peers: curl, openssl, the built `gatehouse`) from tests.
public enum ProcessRunner {
    /// The outcome of a finished command.
    public struct Output: Sendable {
        public var status: Int32
        public var stdout: String
        public var stderr: String
    }

    /// Runs `arguments[0]` (looked up in PATH) and waits, killing it after `timeout` seconds.
    public static func run(
        _ arguments: [String], cwd: String? = nil, environment: [String: String] = [:], stdin: Data? = nil,
        timeout: TimeInterval = 60
    ) throws -> Output {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = arguments
        if let cwd { process.currentDirectoryURL = URL(fileURLWithPath: cwd) }
        var env = ProcessInfo.processInfo.environment
        for (k, v) in environment { env[k] = v }
        process.environment = env
        let outPipe = Pipe()
        let errPipe = Pipe()
        process.standardOutput = outPipe
        process.standardError = errPipe
        let inPipe = Pipe()
        process.standardInput = inPipe
        try process.run()
        // A child may exit before reading all of its input (a server that answers and closes): the write then fails
        // with EPIPE, which the non-throwing `write(_:)` turns into a crash of the whole test process.
        if let stdin { try? inPipe.fileHandleForWriting.write(contentsOf: stdin) }
        try? inPipe.fileHandleForWriting.close()
        // Read both pipes concurrently so a chatty process cannot block on a full pipe.
        let group = DispatchGroup()
        nonisolated(unsafe) var out = Data()
        nonisolated(unsafe) var err = Data()
        DispatchQueue.global().async(group: group) { out = outPipe.fileHandleForReading.readDataToEndOfFile() }
        DispatchQueue.global().async(group: group) { err = errPipe.fileHandleForReading.readDataToEndOfFile() }
        let deadline = Date().addingTimeInterval(timeout)
        while process.isRunning && Date() < deadline { usleep(10_000) }
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
        }
        process.waitUntilExit()
        group.wait()
        return Output(
            status: process.terminationStatus, stdout: String(decoding: out, as: UTF8.self),
            stderr: String(decoding: err, as: UTF8.self))
    }

    /// The repository root (this file is Tests/TestSupport/ProcessRunner.swift).
    public static let repositoryRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent().path

    /// The built `gatehouse` executable: `$GATEHOUSE_BIN`, else `.build/debug/gatehouse`.
    public static var gatehouseBinary: String {
        if let bin = ProcessInfo.processInfo.environment["GATEHOUSE_BIN"], !bin.isEmpty { return bin }
        return repositoryRoot + "/.build/debug/gatehouse"
    }
}

/// Whether a missing test dependency (`PG`, `PYKMIP`, `SSLYZE`, `OPENSSH`, …) must fail the test rather than skip it:
/// `GATEHOUSE_REQUIRE_<NAME>=1`, or any CI run (`CI=true`), where a skip would hide a feature that was not tested.
public func dependencyRequired(_ name: String) -> Bool {
    let env = ProcessInfo.processInfo.environment
    return env["GATEHOUSE_REQUIRE_\(name)"] == "1" || env["CI"] == "true"
}
