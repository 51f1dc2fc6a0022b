import TTLV

/// Operations answered by the protocol layer alone (no engine state): DiscoverVersions and Query.
public enum KMIPProtocolOperations {
    /// DiscoverVersions (KMIP 1.4 §4.26): the supported versions the client also listed, in the server's order of
    /// preference; all supported versions when the client listed none.
    public static func discoverVersions(_ payload: TTLVItem?) -> [TTLVItem] {
        var requested: [ProtocolVersion] = []
        for pv in payload?.children(KMIPTag.protocolVersion) ?? [] {
            if case .integer(let major)? = pv.child(KMIPTag.protocolVersionMajor)?.value,
                case .integer(let minor)? = pv.child(KMIPTag.protocolVersionMinor)?.value
            {
                requested.append(ProtocolVersion(major, minor))
            }
        }
        let answer =
            requested.isEmpty ? ProtocolVersion.supported : ProtocolVersion.supported.filter(requested.contains)
        return answer.map { v in
            TTLVItem(
                tag: KMIPTag.protocolVersion,
                .structure([
                    TTLVItem(tag: KMIPTag.protocolVersionMajor, .integer(v.major)),
                    TTLVItem(tag: KMIPTag.protocolVersionMinor, .integer(v.minor)),
                ]))
        }
    }

    /// What the server can do, for Query Capabilities (KMIP 1.3 §2.1.20 Capability Information).
    public struct Capabilities: Sendable {
        /// Streamed (Init / Correlation Value / Final) operations.
        public var streaming: Bool
        /// Batch Error Continuation Option Undo.
        public var batchUndo: Bool
        /// Batch Error Continuation Option Continue.
        public var batchContinue: Bool
        /// Unwrap Mode (1 Unspecified, 2 Processed, 3 Not Processed): what Register does with wrapped keys.
        public var unwrapMode: UInt32
        /// Destroy Action (2 Key Material Deleted, …).
        public var destroyAction: UInt32
        /// Shredding Algorithm (1 Unspecified, 2 Cryptographic, 3 Unsupported).
        public var shreddingAlgorithm: UInt32
        /// RNG Mode (1 Unspecified, 2 Shared Instantiation, 3 Non-Shared Instantiation).
        public var rngMode: UInt32
        public init(
            streaming: Bool, batchUndo: Bool, batchContinue: Bool, unwrapMode: UInt32, destroyAction: UInt32,
            shreddingAlgorithm: UInt32,
            rngMode: UInt32
        ) {
            self.streaming = streaming
            self.batchUndo = batchUndo
            self.batchContinue = batchContinue
            self.unwrapMode = unwrapMode
            self.destroyAction = destroyAction
            self.shreddingAlgorithm = shreddingAlgorithm
            self.rngMode = rngMode
        }
    }

    /// Query (KMIP 1.4 §4.25 / 2.1 §6.1.37): operations, objects, server information, and from 1.3 on the
    /// capabilities and RNGs. Functions with nothing to report (application namespaces, extensions, attestation
    /// types, validations, profiles, registration methods) answer nothing, as the spec allows. Fields appear only in
    /// the versions that define them: Capability Information from 1.3, its Batch Undo / Continue from 1.4 (2.x's optional
    /// Quantum Safe Capability is left out: PyKMIP's 2.0 decoder rejects it).
    public static func query(
        _ payload: TTLVItem?, operations: [KMIPOperation], objectTypes: [KMIPObjectType], vendor: String,
        version: ProtocolVersion = ProtocolVersion(1, 4), capabilities: Capabilities? = nil
    ) -> [TTLVItem] {
        var functions = Set<UInt32>()
        for f in payload?.children(KMIPTag.queryFunction) ?? [] {
            if case .enumeration(let v) = f.value { functions.insert(v) }
        }
        var out: [TTLVItem] = []
        if functions.contains(QueryFunction.operations.rawValue) {
            out += operations.filter { $0.firstVersion <= version }.map {
                TTLVItem(tag: KMIPTag.operation, .enumeration($0.rawValue))
            }
        }
        if functions.contains(QueryFunction.objects.rawValue) {
            out += objectTypes.map { TTLVItem(tag: KMIPTag.objectType, .enumeration($0.rawValue)) }
        }
        if functions.contains(QueryFunction.serverInformation.rawValue) {
            out.append(TTLVItem(tag: KMIPTag.vendorIdentification, .textString(vendor)))
            out.append(TTLVItem(tag: KMIPTag.serverInformation, .structure([])))
        }
        if version >= ProtocolVersion(1, 3), functions.contains(QueryFunction.rngs.rawValue) {
            // RNG Parameters: the operating system's CSPRNG (getrandom), which is no NIST DRBG: algorithm Unspecified.
            out.append(TTLVItem(tag: 0x4200D9, .structure([TTLVItem(tag: 0x4200DA, .enumeration(1))])))
        }
        if version >= ProtocolVersion(1, 3), functions.contains(QueryFunction.capabilities.rawValue),
            let c = capabilities
        {
            var fields: [TTLVItem] = [
                TTLVItem(tag: 0x4200EF, .boolean(c.streaming)),  // Streaming Capability
                TTLVItem(tag: 0x4200F0, .boolean(false)),  // Asynchronous Capability
                TTLVItem(tag: 0x4200F1, .boolean(false)),  // Attestation Capability
            ]
            if version >= ProtocolVersion(1, 4) {
                fields.append(TTLVItem(tag: 0x4200F9, .boolean(c.batchUndo)))  // Batch Undo Capability
                fields.append(TTLVItem(tag: 0x4200FA, .boolean(c.batchContinue)))  // Batch Continue Capability
            }
            fields += [
                TTLVItem(tag: 0x4200F2, .enumeration(c.unwrapMode)),  // Unwrap Mode
                TTLVItem(tag: 0x4200F3, .enumeration(c.destroyAction)),  // Destroy Action
                TTLVItem(tag: 0x4200F4, .enumeration(c.shreddingAlgorithm)),  // Shredding Algorithm
                TTLVItem(tag: 0x4200F5, .enumeration(c.rngMode)),  // RNG Mode
            ]
            out.append(TTLVItem(tag: 0x4200F7, .structure(fields)))  // Capability Information
        }
        return out
    }
}
