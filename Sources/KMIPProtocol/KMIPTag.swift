/// KMIP tags used by the message layer (KMIP 1.4 §9.1.3.1 / 2.1 §11.2 "Tags").
public enum KMIPTag {
    public static let attribute: UInt32 = 0x420008
    public static let authentication: UInt32 = 0x42000C
    public static let batchCount: UInt32 = 0x42000D
    public static let batchErrorContinuationOption: UInt32 = 0x42000E
    public static let batchItem: UInt32 = 0x42000F
    public static let batchOrderOption: UInt32 = 0x420010
    public static let maximumResponseSize: UInt32 = 0x420050
    public static let objectType: UInt32 = 0x420057
    public static let operation: UInt32 = 0x42005C
    public static let protocolVersion: UInt32 = 0x420069
    public static let protocolVersionMajor: UInt32 = 0x42006A
    public static let protocolVersionMinor: UInt32 = 0x42006B
    public static let queryFunction: UInt32 = 0x420074
    public static let requestHeader: UInt32 = 0x420077
    public static let requestMessage: UInt32 = 0x420078
    public static let requestPayload: UInt32 = 0x420079
    public static let responseHeader: UInt32 = 0x42007A
    public static let responseMessage: UInt32 = 0x42007B
    public static let responsePayload: UInt32 = 0x42007C
    public static let resultMessage: UInt32 = 0x42007D
    public static let resultReason: UInt32 = 0x42007E
    public static let resultStatus: UInt32 = 0x42007F
    public static let serverInformation: UInt32 = 0x420088
    public static let timeStamp: UInt32 = 0x420092
    public static let uniqueBatchItemID: UInt32 = 0x420093
    public static let vendorIdentification: UInt32 = 0x42009D
}

/// KMIP protocol versions served, newest first (the DiscoverVersions answer, KMIP 1.4 §4.26).
public struct ProtocolVersion: Sendable, Hashable, Comparable, CustomStringConvertible {
    public var major: Int32
    public var minor: Int32
    public init(_ major: Int32, _ minor: Int32) {
        self.major = major
        self.minor = minor
    }
    public static func < (a: Self, b: Self) -> Bool { (a.major, a.minor) < (b.major, b.minor) }
    public var description: String { "\(major).\(minor)" }

    /// 2.1, 2.0, 1.4, 1.3, 1.2, 1.1, 1.0.
    public static let supported: [ProtocolVersion] = [.init(2, 1), .init(2, 0), .init(1, 4), .init(1, 3), .init(1, 2), .init(1, 1), .init(1, 0)]

}

/// KMIP operations (enumeration values, KMIP 1.4 §9.1.3.2.27 / 2.1 §11.36).
public enum KMIPOperation: UInt32, Sendable, CaseIterable {
    case create = 0x01, createKeyPair, register, reKey, deriveKey, certify, reCertify, locate, check, get
    case getAttributes, getAttributeList, addAttribute, modifyAttribute, deleteAttribute, obtainLease
    case getUsageAllocation, activate, revoke, destroy, archive, recover, validate, query, cancel, poll, notify, put
    case reKeyKeyPair, discoverVersions, encrypt, decrypt, sign, signatureVerify, mac, macVerify, rngRetrieve
    case rngSeed, hash, createSplitKey, joinSplitKey, `import`, export
    case log = 0x2C, login, logout, delegatedLogin, adjustAttribute, setAttribute, setEndpointRole, pkcs11
    case interop, reProvision, setDefaults, setConstraints, getConstraints, querySetAttributes
}

/// Result Status (KMIP 1.4 §9.1.3.2.30).
public enum ResultStatus: UInt32, Sendable {
    case success = 0, operationFailed = 1, operationPending = 2, operationUndone = 3
}

/// Result Reason (KMIP 1.4 §9.1.3.2.31 / 2.1 §11.48).
public enum ResultReason: UInt32, Sendable {
    case itemNotFound = 0x01, responseTooLarge, authenticationNotSuccessful, invalidMessage, operationNotSupported
    case missingData, invalidField, featureNotSupported, operationCanceledByRequester, cryptographicFailure
    case illegalOperation, permissionDenied, objectArchived, indexOutOfBounds, applicationNamespaceNotSupported
    case keyFormatTypeNotSupported, keyCompressionTypeNotSupported, encodingOptionError, keyValueNotPresent
    case attestationRequired, attestationFailed, sensitive, notExtractable, objectAlreadyExists
    case generalFailure = 0x100
}

/// Query Function (KMIP 1.4 §9.1.3.2.24).
public enum QueryFunction: UInt32, Sendable {
    case operations = 1, objects, serverInformation, applicationNamespaces, extensionList, extensionMap
    case attestationTypes, rngs, validations, profiles, capabilities, clientRegistrationMethods
}

/// Object Type (KMIP 1.4 §9.1.3.2.12).
public enum KMIPObjectType: UInt32, Sendable, CaseIterable {
    case certificate = 1, symmetricKey, publicKey, privateKey, splitKey, template, secretData, opaqueObject, pgpKey
}
