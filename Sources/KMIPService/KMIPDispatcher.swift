import Crypto
import EngineAPI
import Foundation
import KMIPProtocol
import ServerSupport
import TTLV

/// Turns one framed request into one framed response. Every failure becomes a KMIP result (Invalid Message,
/// Operation Not Supported, Response Too Large, …); `closeConnection` is set when the bytes were not even TTLV,
/// after which the stream cannot be trusted.
public struct KMIPDispatcher: Sendable {
    public var maxMessageSize: Int
    public var clock: @Sendable () -> Int64
    /// The key service every key operation calls (authorization and audit happen there).
    public var engine: any KeyEngine
    /// Where Log operations' messages go (the listener's logger).
    public var logSink: (@Sendable (String) -> Void)?
    /// Failed authentications per client certificate (every KMIP client has one): a certificate whose bucket is
    /// empty is refused before any work.
    public var failures: FailureRateLimiter?

    public init(maxMessageSize: Int, engine: any KeyEngine, clock: @escaping @Sendable () -> Int64) {
        self.maxMessageSize = maxMessageSize
        self.engine = engine
        self.clock = clock
    }

    /// Operations this build answers.
    public static let keyOperations: [KMIPOperation] = [
        .create, .register, .locate, .get, .getAttributes, .getAttributeList, .addAttribute, .modifyAttribute,
        .deleteAttribute, .setAttribute, .activate, .revoke, .destroy, .encrypt, .decrypt, .mac, .createKeyPair, .sign,
        .signatureVerify, .deriveKey, .macVerify, .check, .getUsageAllocation, .reKey, .reKeyKeyPair, .certify,
    ]
    public static let supportedOperations: [KMIPOperation] =
        keyOperations + [.query, .discoverVersions, .rngRetrieve, .rngSeed, .hash, .log, .interop]
    public static let vendor = "Gatehouse"
    /// Query Capabilities: streamed Encrypt/Decrypt, Batch Undo and Continue; wrapped keys are stored as sent (Not
    /// Processed); Destroy deletes the key material and keeps the metadata; no shredding; one shared OS CSPRNG.
    static let capabilities = KMIPProtocolOperations.Capabilities(
        streaming: true, batchUndo: true, batchContinue: true, unwrapMode: 3, destroyAction: 2, shreddingAlgorithm: 3,
        rngMode: 2)

    public func process(_ bytes: [UInt8], principal: Principal, ipAddress: String? = nil) async -> (
        response: [UInt8], closeConnection: Bool
    ) {
        let fallback = ProtocolVersion(1, 0)
        let item: TTLVItem
        do {
            item = try TTLVDecoder(maxDepth: 32, maxMessageSize: maxMessageSize).decode(bytes)
        } catch {
            let r = KMIPResponse.encode(
                version: fallback, timestamp: clock(),
                results: [.failure(nil, .invalidMessage, "malformed TTLV: \(error)")])
            return (r, true)
        }
        let request: KMIPRequest
        do {
            request = try KMIPRequest(item)
        } catch let e as KMIPRequest.Invalid {
            return (
                KMIPResponse.encode(
                    version: e.version ?? fallback, timestamp: clock(),
                    results: [.failure(nil, .invalidMessage, e.description)]), false
            )
        } catch {
            return (
                KMIPResponse.encode(
                    version: fallback, timestamp: clock(), results: [.failure(nil, .invalidMessage, "invalid request")]),
                false
            )
        }
        guard ProtocolVersion.supported.contains(request.protocolVersion) else {
            // Answer in the newest version we have that is not newer than the client's, so it can parse the error.
            let answerVersion = ProtocolVersion.supported.first { $0 < request.protocolVersion } ?? fallback
            return (
                KMIPResponse.encode(
                    version: answerVersion, timestamp: clock(),
                    results: [
                        .failure(nil, .invalidMessage, "protocol version \(request.protocolVersion) is not supported")
                    ]), false
            )
        }
        let source = principal.id
        if let failures, case (false, let retryAfter) = failures.check(source) {
            await failures.delayRefusal()
            let refused = request.items.map {
                KMIPBatchResult.failure(
                    $0, .permissionDenied,
                    "too many failed authentications with this certificate; retry in \(retryAfter) s")
            }
            return (KMIPResponse.encode(version: request.protocolVersion, timestamp: clock(), results: refused), false)
        }
        var results: [KMIPBatchResult] = []
        var state = BatchState()
        state.undo = request.batchErrorContinuation == 3
        let ctx = CallContext(principal: principal, frontEnd: "kmip", ipAddress: ipAddress)
        // The Authentication header: a second factor on top of the client certificate (see verifyKMIPCredential).
        do {
            try await engine.verifyKMIPCredential(
                ctx, username: request.credential?.username,
                password: request.credential.map { SecretBytes($0.password) })
        } catch {
            failures?.recordFailure(source)
            let failed = request.items.map {
                KMIPBatchResult.failure($0, .authenticationNotSuccessful, "authentication failed")
            }
            return (KMIPResponse.encode(version: request.protocolVersion, timestamp: clock(), results: failed), false)
        }
        for batchItem in request.items {
            let result = await handle(batchItem, version: request.protocolVersion, ctx: ctx, state: &state)
            results.append(result)
            if result.reason == .permissionDenied || result.reason == .authenticationNotSuccessful {
                failures?.recordFailure(source)
            }
            // Batch Error Continuation Option: 1 Continue; 2 Stop (default); 3 Undo: stop, put back what the earlier
            // items changed (objects they made are removed) and report them Operation Undone.
            guard result.status != .success, request.batchErrorContinuation != 1 else { continue }
            if state.undo, results.count > 1 {
                do {
                    try await engine.undoObjectChanges(ctx, restore: state.snapshots.reversed(), discard: state.created)
                    for i in results.indices.dropLast() where results[i].status == .success {
                        results[i].status = .operationUndone
                    }
                } catch {
                    // The earlier items stay reported as done: they are.
                    logSink?("KMIP batch undo failed: \(error)")
                }
            }
            break
        }
        var response = KMIPResponse.encode(version: request.protocolVersion, timestamp: clock(), results: results)
        if let max = request.maximumResponseSize, max > 0, response.count > Int(max) {
            response = KMIPResponse.encode(
                version: request.protocolVersion, timestamp: clock(),
                results: [
                    .failure(
                        request.items.first, .responseTooLarge,
                        "the response is \(response.count) bytes, over the requested maximum \(max)")
                ])
        }
        return (response, false)
    }

    func handle(_ item: KMIPRequest.BatchItem, version: ProtocolVersion, ctx: CallContext, state: inout BatchState)
        async
        -> KMIPBatchResult
    {
        guard let operation = item.operation else {
            return .failure(item, .operationNotSupported, "unknown operation \(item.operationCode)")
        }
        // An operation newer than the request's version is still served: clients send them (PyKMIP sends Encrypt
        // and MAC, 1.2 operations, under a 1.0 header); only the answer keeps to what the version defines.
        switch operation {
        case .discoverVersions:
            return KMIPBatchResult(
                operationCode: item.operationCode, uniqueBatchItemID: item.uniqueBatchItemID, status: .success,
                payload: KMIPProtocolOperations.discoverVersions(item.payload))
        case .query:
            return KMIPBatchResult(
                operationCode: item.operationCode, uniqueBatchItemID: item.uniqueBatchItemID, status: .success,
                payload: KMIPProtocolOperations.query(
                    item.payload, operations: Self.supportedOperations,
                    objectTypes: [
                        .symmetricKey, .publicKey, .privateKey, .splitKey, .certificate, .secretData, .opaqueObject,
                    ], vendor: Self.vendor,
                    version: version, capabilities: Self.capabilities))
        case .rngRetrieve:
            // RNG Retrieve (KMIP 1.3 §4.35): bytes from the system's CSPRNG.
            guard case .integer(let length)? = item.payload?.child(0x4200C4)?.value, length > 0, length <= 1 << 20
            else {
                return .failure(item, .invalidField, "Data Length must be 1 … 1048576")
            }
            var rng = SystemRandomNumberGenerator()
            var bytes: [UInt8] = []
            bytes.reserveCapacity(Int(length) + 8)
            // 8 bytes per draw.
            while bytes.count < Int(length) { withUnsafeBytes(of: rng.next()) { bytes.append(contentsOf: $0) } }
            bytes.removeLast(bytes.count - Int(length))
            return KMIPBatchResult(
                operationCode: item.operationCode, uniqueBatchItemID: item.uniqueBatchItemID, status: .success,
                payload: [TTLVItem(tag: KMIPTag.data, .byteString(bytes))])
        case .rngSeed:
            // RNG Seed (KMIP 1.2 §4.36): the seed goes into the kernel's entropy pool, which the server's random
            // numbers come from (a write to /dev/urandom mixes data in without crediting entropy, so a client can
            // add but never weaken). Data Length is how much was accepted: at most 4096 bytes per request.
            guard case .byteString(let seed)? = item.payload?.child(KMIPTag.data)?.value, !seed.isEmpty else {
                return .failure(item, .missingData, "RNG Seed needs Data")
            }
            let accepted = Array(seed.prefix(4096))
            let written = FileHandle(forWritingAtPath: "/dev/urandom").map { handle in
                defer { try? handle.close() }
                return (try? handle.write(contentsOf: accepted)) != nil ? accepted.count : 0
            }
            return KMIPBatchResult(
                operationCode: item.operationCode, uniqueBatchItemID: item.uniqueBatchItemID, status: .success,
                payload: [TTLVItem(tag: 0x4200C4, .integer(Int32(written ?? 0)))])
        case .hash:
            // Hash (KMIP 1.3 §4.37): SHA-1, SHA-256/384/512, in one piece or streamed (Init Indicator, Correlation
            // Value, Final Indicator; the stream's state lives in the engine).
            let streaming: (correlation: [UInt8]?, final: Bool)?
            do { streaming = try KMIPKeyOperations.streaming(item.payload) } catch let e as KMIPFieldError {
                return .failure(item, e.reason, e.message)
            } catch {
                return .failure(item, .invalidField, "invalid streaming fields")
            }
            if let (correlation, final) = streaming {
                var algorithm: UInt32 = 0
                if case .enumeration(let a)? = item.payload?.child(KMIPTag.cryptographicParameters)?.child(
                    KMIPTag.hashingAlgorithm)?.value
                {
                    algorithm = a
                }
                var data: [UInt8] = []
                if case .byteString(let d)? = item.payload?.child(KMIPTag.data)?.value { data = d }
                do {
                    let (digest, next) = try await engine.hashStep(
                        ctx, algorithm: algorithm, data: data, correlation: correlation, final: final)
                    var payload: [TTLVItem] = []
                    if let digest { payload.append(TTLVItem(tag: KMIPTag.data, .byteString(digest))) }
                    if let next { payload.append(TTLVItem(tag: KMIPTag.correlationValue, .byteString(next))) }
                    return KMIPBatchResult(
                        operationCode: item.operationCode, uniqueBatchItemID: item.uniqueBatchItemID, status: .success,
                        payload: payload)
                } catch let e as EngineError {
                    return .failure(item, KMIPResultReasons.reason(for: e.code, version: version), e.message)
                } catch {
                    return .failure(item, .generalFailure, "internal error")
                }
            }
            guard case .byteString(let data)? = item.payload?.child(KMIPTag.data)?.value, data.count <= 1 << 20 else {
                return .failure(item, .missingData, "Hash needs Data (at most 1 MiB)")
            }
            guard
                case .enumeration(let algorithm)? = item.payload?.child(KMIPTag.cryptographicParameters)?.child(
                    KMIPTag.hashingAlgorithm)?.value,
                let digest = Self.hash(algorithm, data)
            else {
                return .failure(
                    item, .invalidField, "Hash needs a Hashing Algorithm: SHA-1, SHA-256, SHA-384 or SHA-512")
            }
            return KMIPBatchResult(
                operationCode: item.operationCode, uniqueBatchItemID: item.uniqueBatchItemID, status: .success,
                payload: [TTLVItem(tag: KMIPTag.data, .byteString(digest))])
        case .interop:
            // Interop (KMIP 2.0 §6.1.32): test-case markers. Begin and End are acknowledged; Reset (clean-up of the
            // caller's objects) is not offered.
            guard case .enumeration(let function)? = item.payload?.child(0x420160)?.value, [1, 2].contains(function)
            else {
                return .failure(item, .featureNotSupported, "only Interop Begin and End are supported")
            }
            return KMIPBatchResult(
                operationCode: item.operationCode, uniqueBatchItemID: item.uniqueBatchItemID, status: .success,
                payload: [])
        case .log:
            // Log (KMIP 2.0 §6.1.33): the client's message goes to the server log (bounded).
            guard case .textString(let message)? = item.payload?.child(0x420141)?.value else {
                return .failure(item, .missingData, "Log needs a Log Message")
            }
            logSink?(String(message.prefix(1024)))
            return KMIPBatchResult(
                operationCode: item.operationCode, uniqueBatchItemID: item.uniqueBatchItemID, status: .success,
                payload: [])
        default:
            guard Self.keyOperations.contains(operation) else {
                return .failure(
                    item, .operationNotSupported, "operation \(operation) is not supported by this server")
            }
            let ops = KMIPKeyOperations(engine: engine, ctx: ctx, version: version)
            do {
                let payload: [TTLVItem]
                switch operation {
                case .create: payload = try await ops.create(item.payload, &state)
                case .register: payload = try await ops.register(item.payload, &state)
                case .get: payload = try await ops.get(item.payload, &state)
                case .getAttributes: payload = try await ops.getAttributes(item.payload, &state)
                case .getAttributeList: payload = try await ops.getAttributeList(item.payload, &state)
                case .addAttribute: payload = try await ops.changeAttribute(item.payload, .add, &state)
                case .modifyAttribute, .setAttribute:
                    payload = try await ops.changeAttribute(item.payload, .modify, &state)
                case .deleteAttribute: payload = try await ops.changeAttribute(item.payload, .delete, &state)
                case .activate: payload = try await ops.activate(item.payload, &state)
                case .createKeyPair: payload = try await ops.createKeyPair(item.payload, &state)
                case .deriveKey: payload = try await ops.deriveKey(item.payload, &state)
                case .sign: payload = try await ops.sign(item.payload, &state)
                case .signatureVerify: payload = try await ops.signatureVerify(item.payload, &state)
                case .revoke: payload = try await ops.revoke(item.payload, &state)
                case .destroy: payload = try await ops.destroy(item.payload, &state)
                case .locate: payload = try await ops.locate(item.payload, &state)
                case .encrypt: payload = try await ops.encrypt(item.payload, &state)
                case .decrypt: payload = try await ops.decrypt(item.payload, &state)
                case .mac: payload = try await ops.mac(item.payload, &state)
                case .macVerify: payload = try await ops.macVerify(item.payload, &state)
                case .check: payload = try await ops.check(item.payload, &state)
                case .getUsageAllocation: payload = try await ops.getUsageAllocation(item.payload, &state)
                case .reKey: payload = try await ops.reKey(item.payload, &state)
                case .reKeyKeyPair: payload = try await ops.reKeyKeyPair(item.payload, &state)
                case .certify: payload = try await ops.certify(item.payload, &state)
                default: return .failure(item, .operationNotSupported, "operation \(operation) is not supported")
                }
                return KMIPBatchResult(
                    operationCode: item.operationCode, uniqueBatchItemID: item.uniqueBatchItemID, status: .success,
                    payload: payload)
            } catch let e as KMIPFieldError {
                return .failure(item, e.reason, e.message)
            } catch let e as EngineError {
                return .failure(item, KMIPResultReasons.reason(for: e.code, version: version), e.message)
            } catch {
                return .failure(item, .generalFailure, "internal error")
            }
        }
    }

    static func hash(_ algorithm: UInt32, _ data: [UInt8]) -> [UInt8]? {
        switch algorithm {
        case 4: return Array(Insecure.SHA1.hash(data: data))
        case 6: return Array(SHA256.hash(data: data))
        case 7: return Array(SHA384.hash(data: data))
        case 8: return Array(SHA512.hash(data: data))
        default: return nil
        }
    }
}
