import Crypto
import EngineAPI
import Foundation
import Synchronization

/// The running state of a streamed MAC (HMAC-SHA1/256/384/512) or Hash (SHA-1/256/384/512).
final class DigestState: Sendable {
    enum Kind {
        case hmacSHA1(HMAC<Insecure.SHA1>)
        case hmacSHA256(HMAC<SHA256>)
        case hmacSHA384(HMAC<SHA384>)
        case hmacSHA512(HMAC<SHA512>)
        case sha1(Insecure.SHA1)
        case sha256(SHA256)
        case sha384(SHA384)
        case sha512(SHA512)
    }
    private let kind: Mutex<Kind>

    init(_ kind: consuming sending Kind) { self.kind = Mutex(kind) }

    /// HMAC with `key` for a KMIP HMAC algorithm (Cryptographic Algorithm enumeration), or nil.
    static func hmac(_ algorithm: UInt32, key: SymmetricKey) -> DigestState? {
        switch algorithm {
        case Algorithm.hmacSHA1: return DigestState(.hmacSHA1(HMAC(key: key)))
        case Algorithm.hmacSHA256: return DigestState(.hmacSHA256(HMAC(key: key)))
        case Algorithm.hmacSHA384: return DigestState(.hmacSHA384(HMAC(key: key)))
        case Algorithm.hmacSHA512: return DigestState(.hmacSHA512(HMAC(key: key)))
        default: return nil
        }
    }

    /// A hash for a KMIP Hashing Algorithm (4 SHA-1, 6 SHA-256, 7 SHA-384, 8 SHA-512), or nil.
    static func hash(_ algorithm: UInt32) -> DigestState? {
        switch algorithm {
        case 4: return DigestState(.sha1(Insecure.SHA1()))
        case 6: return DigestState(.sha256(SHA256()))
        case 7: return DigestState(.sha384(SHA384()))
        case 8: return DigestState(.sha512(SHA512()))
        default: return nil
        }
    }

    func update(_ data: [UInt8]) {
        kind.withLock { k in
            switch k {
            case .hmacSHA1(var h):
                h.update(data: data)
                k = .hmacSHA1(h)
            case .hmacSHA256(var h):
                h.update(data: data)
                k = .hmacSHA256(h)
            case .hmacSHA384(var h):
                h.update(data: data)
                k = .hmacSHA384(h)
            case .hmacSHA512(var h):
                h.update(data: data)
                k = .hmacSHA512(h)
            case .sha1(var h):
                h.update(data: data)
                k = .sha1(h)
            case .sha256(var h):
                h.update(data: data)
                k = .sha256(h)
            case .sha384(var h):
                h.update(data: data)
                k = .sha384(h)
            case .sha512(var h):
                h.update(data: data)
                k = .sha512(h)
            }
        }
    }

    func finalize() -> [UInt8] {
        kind.withLock { k in
            switch k {
            case .hmacSHA1(let h): return Array(h.finalize())
            case .hmacSHA256(let h): return Array(h.finalize())
            case .hmacSHA384(let h): return Array(h.finalize())
            case .hmacSHA512(let h): return Array(h.finalize())
            case .sha1(let h): return Array(h.finalize())
            case .sha256(let h): return Array(h.finalize())
            case .sha384(let h): return Array(h.finalize())
            case .sha512(let h): return Array(h.finalize())
            }
        }
    }
}

/// Streamed MAC and Hash (KMIP 1.3+ Init Indicator / Correlation Value / Final Indicator), like streamed
/// Encrypt/Decrypt (a `StreamTable` of their own: per caller, and for MAC per key, at most 1024, dropped after 10 idle
/// minutes); every MAC step is authorized, checked, counted against Usage Limits and audited like a one-shot MAC.
extension KeysService {
    public func macStep(
        _ ctx: CallContext, id: String, _ p: CipherParameters, data: [UInt8], correlation: [UInt8]?, final: Bool
    )
        async throws -> (mac: [UInt8]?, correlation: [UInt8]?)
    {
        guard data.count <= 1 << 20 else { throw EngineError(.invalidArgument, "data is limited to 1 MiB per step") }
        let (meta, key) = try await usableKey(ctx, id, action: .mac, usage: .macGenerate, consume: data.count)
        let state: DigestState
        if let correlation {
            state = try continueDigest(ctx, correlation, keyID: id, final: final)
        } else {
            guard let fresh = DigestState.hmac(p.algorithm ?? meta.algorithm ?? 0, key: key) else {
                throw EngineError(.featureNotSupported, "MAC needs an HMAC-SHA1/256/384/512 algorithm")
            }
            state = fresh
        }
        state.update(data)
        if final { return (state.finalize(), nil) }
        return (nil, try correlation ?? startDigest(ctx, keyID: id, state))
    }

    public func hashStep(_ ctx: CallContext, algorithm: UInt32, data: [UInt8], correlation: [UInt8]?, final: Bool)
        async throws
        -> (digest: [UInt8]?, correlation: [UInt8]?)
    {
        guard data.count <= 1 << 20 else { throw EngineError(.invalidArgument, "data is limited to 1 MiB per step") }
        // A stream holds server memory: only for callers that authenticate.
        guard try await resolve(ctx.principal) != nil else {
            throw EngineError(.unauthenticated, "authentication required")
        }
        let state: DigestState
        if let correlation {
            state = try continueDigest(ctx, correlation, keyID: nil, final: final)
        } else {
            guard let fresh = DigestState.hash(algorithm) else {
                throw EngineError(
                    .invalidArgument, "Hash needs a Hashing Algorithm: SHA-1, SHA-256, SHA-384 or SHA-512")
            }
            state = fresh
        }
        state.update(data)
        if final { return (state.finalize(), nil) }
        return (nil, try correlation ?? startDigest(ctx, keyID: nil, state))
    }

    /// The caller's stream named by `correlation` (on `keyID`); removed when this is the last step.
    func continueDigest(_ ctx: CallContext, _ correlation: [UInt8], keyID: String?, final: Bool) throws -> DigestState {
        guard
            let found = digestStreams.resume(
                correlation, owner: ctx.principal, keyID: keyID, final: final, now: clock())
        else {
            throw EngineError(
                .notFound,
                "no streamed operation with that correlation value (for this caller\(keyID == nil ? "" : " and key"))")
        }
        return found
    }

    func startDigest(_ ctx: CallContext, keyID: String?, _ state: DigestState) throws -> [UInt8] {
        try digestStreams.start(state, owner: ctx.principal, keyID: keyID, now: clock())
    }
}
