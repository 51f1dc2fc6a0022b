import Foundation

/// moto's S3 server (`MOTO_SERVER_BIN`, with `MOTO_PYTHON` for its boto3), started by a test on a free loopback port
/// with authentication on: requests must be signed by the IAM user `Tests/scripts/moto-setup.py` creates, which owns
/// the bucket. Stopped by PID.
public final class MotoServer: @unchecked Sendable {
    public let process: Process
    public let endpoint: String
    public let bucket: String
    public let accessKeyId: String
    public let secretAccessKey: String

    /// nil when moto is not installed and not required (`GATEHOUSE_REQUIRE_MOTO`, CI).
    public static func start(bucket: String = "gatehouse-recordings", logDirectory: String) throws -> MotoServer? {
        let env = ProcessInfo.processInfo.environment
        guard let server = env["MOTO_SERVER_BIN"], let python = env["MOTO_PYTHON"] else {
            if dependencyRequired("MOTO") { throw Failure("MOTO_SERVER_BIN / MOTO_PYTHON are not set") }
            return nil
        }
        return try MotoServer(server: server, python: python, bucket: bucket, logDirectory: logDirectory)
    }

    init(process: Process, endpoint: String, bucket: String, accessKeyId: String, secretAccessKey: String) {
        self.process = process
        self.endpoint = endpoint
        self.bucket = bucket
        self.accessKeyId = accessKeyId
        self.secretAccessKey = secretAccessKey
    }

    convenience init(server: String, python: String, bucket: String, logDirectory: String) throws {
        let port = try freeLoopbackPort()
        let endpoint = "http://127.0.0.1:\(port)"
        let process = Process()
        process.executableURL = URL(fileURLWithPath: server)
        process.arguments = ["-H", "127.0.0.1", "-p", String(port)]
        var env = ProcessInfo.processInfo.environment
        env["INITIAL_NO_AUTH_ACTION_COUNT"] = "3"
        process.environment = env
        let logPath = logDirectory + "/moto-\(port).log"
        FileManager.default.createFile(atPath: logPath, contents: nil)
        let log = try FileHandle(forWritingTo: URL(fileURLWithPath: logPath))
        process.standardOutput = log
        process.standardError = log
        process.standardInput = FileHandle.nullDevice
        try process.run()
        func fail(_ why: String) -> Failure {
            Self.stop(process)
            return Failure(why)
        }
        // Ready once it answers HTTP at all.
        let deadline = Date().addingTimeInterval(30)
        var up = false
        while !up && Date() < deadline && process.isRunning {
            up =
                (try? ProcessRunner.run(["curl", "-s", "-o", "/dev/null", endpoint + "/moto-api/"], timeout: 5).status)
                == 0
            if !up { usleep(100_000) }
        }
        guard up else {
            throw fail(
                "moto_server did not start on port \(port): "
                    + ((try? String(contentsOfFile: logPath, encoding: .utf8)) ?? ""))
        }
        let setup = try ProcessRunner.run(
            [python, ProcessRunner.repositoryRoot + "/Tests/scripts/moto-setup.py", endpoint, bucket], timeout: 60)
        let words = setup.stdout.split(whereSeparator: \.isWhitespace).map(String.init)
        guard setup.status == 0, words.count == 2 else {
            throw fail("moto-setup.py failed: \(setup.stdout)\(setup.stderr)")
        }
        self.init(
            process: process, endpoint: endpoint, bucket: bucket, accessKeyId: words[0], secretAccessKey: words[1])
    }

    /// The daemon's environment for this server (`pam.recording_store = "s3"`).
    public var daemonEnvironment: [String: String] {
        [
            "GATEHOUSE_PAM_RECORDING_STORE": "s3", "GATEHOUSE_PAM_RECORDING_S3_ENDPOINT": endpoint,
            "GATEHOUSE_PAM_RECORDING_S3_BUCKET": bucket, "GATEHOUSE_PAM_RECORDING_S3_REGION": "us-east-1",
            "AWS_ACCESS_KEY_ID": accessKeyId, "AWS_SECRET_ACCESS_KEY": secretAccessKey,
        ]
    }

    public func stop() { Self.stop(process) }

    static func stop(_ process: Process) {
        if process.isRunning {
            kill(process.processIdentifier, SIGTERM)
            let deadline = Date().addingTimeInterval(5)
            while process.isRunning && Date() < deadline { usleep(20_000) }
            if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        }
        process.waitUntilExit()
    }

    deinit { if process.isRunning { stop() } }

    public struct Failure: Error, CustomStringConvertible {
        public var description: String
        init(_ d: String) { description = d }
    }
}

/// A TCP port on 127.0.0.1 that nothing listens on now (the kernel's pick for port 0).
public func freeLoopbackPort() throws -> Int {
    let out = try ProcessRunner.run(
        ["python3", "-c", "import socket; s=socket.socket(); s.bind(('127.0.0.1',0)); print(s.getsockname()[1])"])
    guard let port = Int(out.stdout.trimmingCharacters(in: .whitespacesAndNewlines)) else {
        throw MotoServer.Failure("no free port: \(out.stderr)")
    }
    return port
}
