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
        let answer = requested.isEmpty ? ProtocolVersion.supported : ProtocolVersion.supported.filter(requested.contains)
        return answer.map { v in
            TTLVItem(
                tag: KMIPTag.protocolVersion,
                .structure([
                    TTLVItem(tag: KMIPTag.protocolVersionMajor, .integer(v.major)),
                    TTLVItem(tag: KMIPTag.protocolVersionMinor, .integer(v.minor)),
                ]))
        }
    }

    /// Query (KMIP 1.4 §4.25) for operations, objects and server information.
    public static func query(_ payload: TTLVItem?, operations: [KMIPOperation], objectTypes: [KMIPObjectType], vendor: String)
        -> [TTLVItem]
    {
        var functions = Set<UInt32>()
        for f in payload?.children(KMIPTag.queryFunction) ?? [] {
            if case .enumeration(let v) = f.value { functions.insert(v) }
        }
        var out: [TTLVItem] = []
        if functions.contains(QueryFunction.operations.rawValue) {
            out += operations.map { TTLVItem(tag: KMIPTag.operation, .enumeration($0.rawValue)) }
        }
        if functions.contains(QueryFunction.objects.rawValue) {
            out += objectTypes.map { TTLVItem(tag: KMIPTag.objectType, .enumeration($0.rawValue)) }
        }
        if functions.contains(QueryFunction.serverInformation.rawValue) {
            out.append(TTLVItem(tag: KMIPTag.vendorIdentification, .textString(vendor)))
            out.append(TTLVItem(tag: KMIPTag.serverInformation, .structure([])))
        }
        return out
    }
}
