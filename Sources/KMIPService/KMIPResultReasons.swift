import EngineAPI
import KMIPProtocol

/// The one mapping from engine errors to KMIP result reasons, each one defined by the request's version, for the TTLV
/// listener and KMIP over HTTPS alike.
public enum KMIPResultReasons {
    public static func reason(for code: EngineError.Code, version: ProtocolVersion = ProtocolVersion(1, 4))
        -> ResultReason
    {
        switch code {
        case .notFound: return version >= ProtocolVersion(2, 0) ? .objectNotFound : .itemNotFound
        // 1.x has no reasons of its own for these: Permission Denied.
        case .sensitive: return version >= ProtocolVersion(2, 0) ? .sensitive : .permissionDenied
        case .notExtractable: return version >= ProtocolVersion(2, 0) ? .notExtractable : .permissionDenied
        case .unauthenticated, .locked: return .authenticationNotSuccessful
        case .permissionDenied: return .permissionDenied
        case .invalidArgument, .alreadyExists: return .invalidField
        // Wrong Key Lifecycle State is 2.x's; 1.x has Illegal Operation for a state and Permission Denied for dates.
        case .wrongState: return version >= ProtocolVersion(2, 0) ? .wrongKeyLifecycleState : .illegalOperation
        case .outsideUseWindow: return version >= ProtocolVersion(2, 0) ? .wrongKeyLifecycleState : .permissionDenied
        case .conflict: return .illegalOperation
        case .cryptographicFailure: return .cryptographicFailure
        case .featureNotSupported: return .featureNotSupported
        // .unavailable, .gone, .internal, and codes added later.
        default: return .generalFailure
        }
    }
}
