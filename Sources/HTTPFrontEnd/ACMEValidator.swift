import ACMEProtocol
import Crypto
import EngineAPI
import Foundation
import Logging
import ServerSupport
import ServiceLifecycle

/// Validates ACME challenges (RFC 8555 §8.3 http-01, §8.4 dns-01; RFC 8737 tls-alpn-01) as a service of the daemon's
/// `ServiceGroup`:
/// - the first attempt runs inside the challenge POST, so a client whose answer is in place sees the challenge valid
///   at once and does not poll;
/// - when it fails, the task joins a bounded queue; at most `maxConcurrent` validations run at once, each trying twice
///   more, one second apart, and reporting the most telling failure;
/// - every `sweepInterval` it claims validations whose lease lapsed in the store (a node stopped mid-validation, or
///   this queue was full), so a challenge left `processing` is decided after a restart or by another node;
/// - on shutdown everything in flight is cancelled without a verdict: the lease lapses and a validator picks it up.
public final class ACMEValidator: Service, Sendable {
    /// One queued validation: the task, and the failure of the attempt already made (nil: none made yet).
    struct Job: Sendable {
        var task: ACMEValidationTask
        var firstFailure: ACMEError?
    }

    let engine: any ACMEEngine
    let settings: ACMESettings
    /// How long a validator holds a validation it started before another may take it over.
    public let lease: Duration
    let maxConcurrent: Int
    let sweepInterval: Duration
    let logger: Logger
    let jobs: AsyncStream<Job>
    let queue: AsyncStream<Job>.Continuation

    public init(
        engine: any ACMEEngine, settings: ACMESettings, lease: Duration = .seconds(60), maxConcurrent: Int = 16,
        queueLimit: Int = 1000, sweepInterval: Duration = .seconds(10),
        logger: Logger = Logger(label: "gatehouse.acme.validator")
    ) {
        self.engine = engine
        self.settings = settings
        self.lease = lease
        self.maxConcurrent = max(1, maxConcurrent)
        self.sweepInterval = sweepInterval
        self.logger = logger
        (jobs, queue) = AsyncStream.makeStream(of: Job.self, bufferingPolicy: .bufferingOldest(max(1, queueLimit)))
    }

    static func context(_ task: ACMEValidationTask) -> CallContext {
        CallContext(principal: .system, frontEnd: "acme-validator", requestID: task.challenge.id)
    }

    /// The first attempt, in the challenge POST. Returns the challenge as now valid, or nil while it is processing
    /// (the task is queued for the next attempts, or left for the sweep when the queue is full).
    func validateFirst(_ task: ACMEValidationTask) async -> ACMEChallengeInfo? {
        let outcome = await check(task)
        guard outcome == nil else {
            if case .dropped = queue.yield(Job(task: task, firstFailure: outcome)) {
                logger.warning(
                    "ACME validation queue full; the sweep will retry", metadata: ["challenge": "\(task.challenge.id)"])
            }
            return nil
        }
        do {
            try await engine.acmeCompleteValidation(Self.context(task), challengeId: task.challenge.id, error: nil)
        } catch {
            logger.error("cannot record a validation result", metadata: ["error": "\(error)"])
            return nil
        }
        var valid = task.challenge
        valid.status = .valid
        valid.validated = Date()
        return valid
    }

    public func run() async throws {
        await cancelWhenGracefulShutdown {
            await withDiscardingTaskGroup { group in
                group.addTask { await self.sweep() }
                group.addTask { await self.work() }
            }
        }
        queue.finish()
    }

    /// Runs queued jobs, at most `maxConcurrent` at once, until cancelled.
    func work() async {
        await withTaskGroup(of: Void.self) { group in
            var running = 0
            for await job in jobs {
                if running >= maxConcurrent {
                    await group.next()
                    running -= 1
                }
                group.addTask { await self.finish(job) }
                running += 1
            }
        }
    }

    /// Every `sweepInterval`, claims the validations nobody holds any more and queues them.
    func sweep() async {
        while !Task.isCancelled {
            try? await Task.sleep(for: sweepInterval)
            guard !Task.isCancelled else { return }
            await sweepOnce()
        }
    }

    /// One sweep (tests call it directly).
    func sweepOnce() async {
        do {
            let tasks = try await engine.acmeClaimValidations(
                CallContext(principal: .system, frontEnd: "acme-validator", requestID: "sweep"), lease: lease.seconds,
                limit: 100)
            for task in tasks {
                logger.notice(
                    "resuming an ACME validation another validator left",
                    metadata: ["challenge": "\(task.challenge.id)"])
                if case .dropped = queue.yield(Job(task: task, firstFailure: nil)) { break }
            }
        } catch {
            logger.warning("cannot claim ACME validations", metadata: ["error": "\(error)"])
        }
    }

    /// The remaining attempts of a job, then the verdict; nothing is recorded when cancelled (shutdown).
    func finish(_ job: Job) async {
        var failure = job.firstFailure
        let attempts = job.firstFailure == nil ? 3 : 2
        for attempt in 0..<attempts {
            if attempt > 0 || job.firstFailure != nil {
                do { try await Task.sleep(for: .seconds(1)) } catch { return }
            }
            guard let outcome = await check(job.task) else {
                failure = nil
                break
            }
            // The verdict names the most telling failure: an answer that was wrong (unauthorized) is not replaced by
            // a later attempt's connection error.
            if failure?.type != ACMEProblemType.unauthorized.urn { failure = outcome }
        }
        guard !Task.isCancelled else { return }
        do {
            try await engine.acmeCompleteValidation(
                Self.context(job.task), challengeId: job.task.challenge.id, error: failure)
        } catch {
            logger.error("cannot record a validation result", metadata: ["error": "\(error)"])
        }
    }

    func check(_ task: ACMEValidationTask) async -> ACMEError? {
        switch task.challenge.type {
        case "dns-01": return await Self.checkDNS01(task, resolver: settings.resolver)
        case "tls-alpn-01": return await Self.checkTLSALPN01(task, port: settings.tlsALPN01Port)
        default: return await Self.checkHTTP01(task, port: settings.http01Port)
        }
    }

    /// http-01: GET `http://{identifier}:{port}/.well-known/acme-challenge/{token}` must return the key
    /// authorization. Names under `.localhost` are loopback (RFC 6761).
    static func checkHTTP01(_ task: ACMEValidationTask, port: Int) async -> ACMEError? {
        let value = task.identifier.value
        let host = task.identifier.type == "ip" && value.contains(":") ? "[\(value)]" : value
        let loopback = value == "localhost" || value.hasSuffix(".localhost")
        guard let url = URL(string: "http://\(host):\(port)/.well-known/acme-challenge/\(task.challenge.token)") else {
            return ACMEError(type: ACMEProblemType.malformed.urn, detail: "cannot build the validation URL")
        }
        do {
            let (status, body) = try await OneShotHTTPClient.send(
                url: url, method: .GET, body: nil, timeout: .seconds(5), maxResponseSize: 4096,
                connectTo: loopback ? "127.0.0.1" : nil)
            guard status == 200 else {
                return ACMEError(type: ACMEProblemType.unauthorized.urn, detail: "\(url) answered HTTP \(status)")
            }
            let text = String(decoding: body, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
            guard text == task.keyAuthorization else {
                return ACMEError(
                    type: ACMEProblemType.unauthorized.urn, detail: "\(url) did not return the key authorization")
            }
            return nil
        } catch {
            return ACMEError(type: ACMEProblemType.connection.urn, detail: "cannot fetch \(url): \(error)")
        }
    }

    /// dns-01 (RFC 8555 §8.4): a TXT record at `_acme-challenge.{domain}` holding base64url(SHA-256(key authorization)).
    static func checkDNS01(_ task: ACMEValidationTask, resolver: (String, Int)) async -> ACMEError? {
        let name = "_acme-challenge." + task.identifier.value
        let expected = Base64URL.encode(SHA256.hash(data: Array(task.keyAuthorization.utf8)))
        let id = UInt16.random(in: 0...UInt16.max)
        do {
            let query = try DNSTXT.query(name, id: id)
            let answer = try await UDPExchange.send(query, host: resolver.0, port: resolver.1)
            let records = try DNSTXT.answers(answer, id: id)
            guard records.contains(expected) else {
                return ACMEError(
                    type: ACMEProblemType.unauthorized.urn,
                    detail: records.isEmpty
                        ? "no TXT record at \(name)" : "no TXT record at \(name) holds the expected digest")
            }
            return nil
        } catch {
            return ACMEError(type: ACMEProblemType.dns.urn, detail: "cannot query TXT \(name): \(error)")
        }
    }

    /// tls-alpn-01 (RFC 8737): TLS to the identifier with SNI and ALPN acme-tls/1; the self-signed certificate must
    /// name the identifier and carry the critical acmeIdentifier extension with SHA-256 of the key authorization.
    static func checkTLSALPN01(_ task: ACMEValidationTask, port: Int) async -> ACMEError? {
        let value = task.identifier.value
        let loopback = value == "localhost" || value.hasSuffix(".localhost")
        do {
            let (negotiated, leaf) = try await TLSALPNProbe.probe(
                host: loopback ? "127.0.0.1" : value, port: port, serverName: value)
            if let why = TLSALPN01.problem(
                leafDER: leaf, negotiated: negotiated, identifier: value, keyAuthorization: task.keyAuthorization)
            {
                return ACMEError(type: ACMEProblemType.unauthorized.urn, detail: why)
            }
            return nil
        } catch {
            return ACMEError(type: ACMEProblemType.tls.urn, detail: "TLS to \(value):\(port) failed: \(error)")
        }
    }
}

extension Duration {
    /// The duration in seconds.
    var seconds: TimeInterval { Double(components.seconds) + Double(components.attoseconds) / 1e18 }
}
