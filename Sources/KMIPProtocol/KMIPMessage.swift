import TTLV

/// A decoded Request Message (KMIP 1.4 §7.1): the header facts the server needs and the batch items.
public struct KMIPRequest: Sendable {
    /// One Batch Item of a request.
    public struct BatchItem: Sendable {
        /// The operation code as sent (may be one this server does not know).
        public var operationCode: UInt32
        public var operation: KMIPOperation? { KMIPOperation(rawValue: operationCode) }
        public var uniqueBatchItemID: [UInt8]?
        public var payload: TTLVItem?
    }

    public var protocolVersion: ProtocolVersion
    public var maximumResponseSize: Int32?
    /// Batch Error Continuation Option: 1 Continue, 2 Stop (default), 3 Undo.
    public var batchErrorContinuation: UInt32
    public var batchOrder: Bool
    public var items: [BatchItem]
    public var hasAuthentication: Bool
    /// The header's Username and Password credential (KMIP Authentication, credential type 1), if it carries one.
    public var credential: UsernamePassword?

    /// A Username and Password credential.
    public struct UsernamePassword: Sendable {
        public var username: String
        public var password: [UInt8]
    }

    /// Why a message is not a usable request; answered with Invalid Message.
    public struct Invalid: Error, Sendable, CustomStringConvertible {
        public var description: String
        /// The protocol version, if the header got that far, so the error response can use it.
        public var version: ProtocolVersion?
    }

    /// Reads a request from its TTLV tree.
    public init(_ message: TTLVItem) throws {
        guard message.tag == KMIPTag.requestMessage, case .structure = message.value else {
            throw Invalid(description: "not a Request Message")
        }
        guard let header = message.child(KMIPTag.requestHeader) else {
            throw Invalid(description: "missing Request Header")
        }
        guard let pv = header.child(KMIPTag.protocolVersion),
            case .integer(let major)? = pv.child(KMIPTag.protocolVersionMajor)?.value,
            case .integer(let minor)? = pv.child(KMIPTag.protocolVersionMinor)?.value
        else { throw Invalid(description: "missing or malformed Protocol Version") }
        let version = ProtocolVersion(major, minor)
        protocolVersion = version
        var parsedCredential: UsernamePassword?
        if case .integer(let m)? = header.child(KMIPTag.maximumResponseSize)?.value { maximumResponseSize = m }
        if case .enumeration(let e)? = header.child(KMIPTag.batchErrorContinuationOption)?.value {
            batchErrorContinuation = e
        } else {
            batchErrorContinuation = 2
        }
        if case .boolean(let b)? = header.child(KMIPTag.batchOrderOption)?.value {
            batchOrder = b
        } else {
            batchOrder = true
        }
        hasAuthentication = header.child(KMIPTag.authentication) != nil
        // Authentication → Credential (Credential Type 1: Username and Password → Username, Password). Other types
        // (device, attestation) are not taken: the TLS client certificate is the first factor.
        for credential in header.child(KMIPTag.authentication)?.children(0x420023) ?? [] {
            guard case .enumeration(1)? = credential.child(0x420024)?.value, let value = credential.child(0x420025)
            else { continue }
            guard case .textString(let user)? = value.child(0x420099)?.value else {
                throw Invalid(description: "a Username and Password credential needs a Username", version: version)
            }
            var password: [UInt8] = []
            if case .textString(let p)? = value.child(0x4200A1)?.value { password = Array(p.utf8) }
            parsedCredential = UsernamePassword(username: user, password: password)
        }
        credential = parsedCredential
        guard case .integer(let count)? = header.child(KMIPTag.batchCount)?.value else {
            throw Invalid(description: "missing Batch Count", version: version)
        }
        let batch = message.children(KMIPTag.batchItem)
        guard Int(count) == batch.count, count > 0 else {
            throw Invalid(
                description: "Batch Count \(count) does not match \(batch.count) Batch Items", version: version)
        }
        items = try batch.map { item in
            guard case .enumeration(let op)? = item.child(KMIPTag.operation)?.value else {
                throw Invalid(description: "a Batch Item has no Operation", version: version)
            }
            var id: [UInt8]?
            if case .byteString(let b)? = item.child(KMIPTag.uniqueBatchItemID)?.value { id = b }
            return BatchItem(operationCode: op, uniqueBatchItemID: id, payload: item.child(KMIPTag.requestPayload))
        }
    }
}

/// The outcome of one batch item, ready to encode.
public struct KMIPBatchResult: Sendable {
    public var operationCode: UInt32?
    public var uniqueBatchItemID: [UInt8]?
    public var status: ResultStatus
    public var reason: ResultReason?
    public var message: String?
    public var payload: [TTLVItem]?

    public init(
        operationCode: UInt32?, uniqueBatchItemID: [UInt8]?, status: ResultStatus, reason: ResultReason? = nil,
        message: String? = nil, payload: [TTLVItem]? = nil
    ) {
        self.operationCode = operationCode
        self.uniqueBatchItemID = uniqueBatchItemID
        self.status = status
        self.reason = reason
        self.message = message
        self.payload = payload
    }

    /// A failure with a reason and a message.
    public static func failure(_ item: KMIPRequest.BatchItem?, _ reason: ResultReason, _ message: String) -> Self {
        KMIPBatchResult(
            operationCode: item?.operationCode, uniqueBatchItemID: item?.uniqueBatchItemID, status: .operationFailed,
            reason: reason, message: message)
    }
}

/// Builds Response Messages (KMIP 1.4 §7.2) in the request's protocol version.
public enum KMIPResponse {
    /// Encodes a response. `timestamp` is POSIX seconds.
    public static func encode(version: ProtocolVersion, timestamp: Int64, results: [KMIPBatchResult]) -> [UInt8] {
        var header: [TTLVItem] = [
            TTLVItem(
                tag: KMIPTag.protocolVersion,
                .structure([
                    TTLVItem(tag: KMIPTag.protocolVersionMajor, .integer(version.major)),
                    TTLVItem(tag: KMIPTag.protocolVersionMinor, .integer(version.minor)),
                ])),
            TTLVItem(tag: KMIPTag.timeStamp, .dateTime(timestamp)),
        ]
        header.append(TTLVItem(tag: KMIPTag.batchCount, .integer(Int32(results.count))))
        var children = [TTLVItem(tag: KMIPTag.responseHeader, .structure(header))]
        for r in results {
            var item: [TTLVItem] = []
            if let op = r.operationCode { item.append(TTLVItem(tag: KMIPTag.operation, .enumeration(op))) }
            if let id = r.uniqueBatchItemID { item.append(TTLVItem(tag: KMIPTag.uniqueBatchItemID, .byteString(id))) }
            item.append(TTLVItem(tag: KMIPTag.resultStatus, .enumeration(r.status.rawValue)))
            if let reason = r.reason { item.append(TTLVItem(tag: KMIPTag.resultReason, .enumeration(reason.rawValue))) }
            if let message = r.message { item.append(TTLVItem(tag: KMIPTag.resultMessage, .textString(message))) }
            if let payload = r.payload { item.append(TTLVItem(tag: KMIPTag.responsePayload, .structure(payload))) }
            children.append(TTLVItem(tag: KMIPTag.batchItem, .structure(item)))
        }
        return TTLVEncoder.encode(TTLVItem(tag: KMIPTag.responseMessage, .structure(children)))
    }
}
