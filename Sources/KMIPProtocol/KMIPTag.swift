/// KMIP tags used by the message layer (KMIP 1.4 §9.1.3.1 / 2.1 §11.2 "Tags").
public enum KMIPTag {
    public static let activationDate: UInt32 = 0x420001
    public static let attributeIndex: UInt32 = 0x420009
    public static let attributeName: UInt32 = 0x42000A
    public static let attributeValue: UInt32 = 0x42000B
    public static let blockCipherMode: UInt32 = 0x420011
    public static let compromiseDate: UInt32 = 0x420020
    public static let compromiseOccurrenceDate: UInt32 = 0x420021
    public static let cryptographicAlgorithm: UInt32 = 0x420028
    public static let cryptographicLength: UInt32 = 0x42002A
    public static let cryptographicParameters: UInt32 = 0x42002B
    public static let cryptographicUsageMask: UInt32 = 0x42002C
    public static let deactivationDate: UInt32 = 0x42002F
    public static let destroyDate: UInt32 = 0x420033
    public static let initialDate: UInt32 = 0x420039
    public static let ivCounterNonce: UInt32 = 0x42003D
    public static let correlationValue: UInt32 = 0x4200D6
    public static let initIndicator: UInt32 = 0x4200D7
    public static let finalIndicator: UInt32 = 0x4200D8
    public static let key: UInt32 = 0x42003F
    public static let keyBlock: UInt32 = 0x420040
    public static let keyCompressionType: UInt32 = 0x420041
    public static let keyFormatType: UInt32 = 0x420042
    public static let keyMaterial: UInt32 = 0x420043
    public static let keyValue: UInt32 = 0x420045
    public static let keyWrappingData: UInt32 = 0x420046
    public static let lastChangeDate: UInt32 = 0x420048
    public static let maximumItems: UInt32 = 0x42004F
    public static let name: UInt32 = 0x420053
    public static let nameType: UInt32 = 0x420054
    public static let nameValue: UInt32 = 0x420055
    public static let objectGroup: UInt32 = 0x420056
    public static let opaqueDataType: UInt32 = 0x420059
    public static let opaqueDataValue: UInt32 = 0x42005A
    public static let opaqueObject: UInt32 = 0x42005B
    public static let operationPolicyName: UInt32 = 0x42005D
    public static let paddingMethod: UInt32 = 0x42005F
    public static let revocationMessage: UInt32 = 0x420080
    public static let revocationReason: UInt32 = 0x420081
    public static let revocationReasonCode: UInt32 = 0x420082
    public static let secretData: UInt32 = 0x420085
    public static let secretDataType: UInt32 = 0x420086
    public static let storageStatusMask: UInt32 = 0x42008E
    public static let state: UInt32 = 0x42008D
    public static let symmetricKey: UInt32 = 0x42008F
    public static let templateAttribute: UInt32 = 0x420091
    public static let uniqueIdentifier: UInt32 = 0x420094
    public static let objectGroupMember: UInt32 = 0x4200AC
    public static let originalCreationDate: UInt32 = 0x4200BC
    public static let data: UInt32 = 0x4200C2
    public static let randomIV: UInt32 = 0x4200C5
    public static let macData: UInt32 = 0x4200C6
    public static let tagLength: UInt32 = 0x4200CE
    public static let offsetItems: UInt32 = 0x4200D4
    public static let locatedItems: UInt32 = 0x4200D5
    public static let authenticatedEncryptionAdditionalData: UInt32 = 0x4200FE
    public static let authenticatedEncryptionTag: UInt32 = 0x4200FF
    public static let attributes: UInt32 = 0x420125
    public static let attributeReference: UInt32 = 0x42013B
    public static let certificate: UInt32 = 0x420013
    public static let certificateType: UInt32 = 0x42001D
    public static let certificateValue: UInt32 = 0x42001E
    public static let keyPartIdentifier: UInt32 = 0x420044
    public static let primeFieldSize: UInt32 = 0x420062
    public static let privateKey: UInt32 = 0x420064
    public static let publicKey: UInt32 = 0x42006D
    public static let splitKey: UInt32 = 0x420089
    public static let splitKeyMethod: UInt32 = 0x42008A
    public static let splitKeyParts: UInt32 = 0x42008B
    public static let splitKeyThreshold: UInt32 = 0x42008C
    public static let commonTemplateAttribute: UInt32 = 0x42001F
    public static let encryptionKeyInformation: UInt32 = 0x420036
    public static let keyWrappingSpecification: UInt32 = 0x420047
    public static let wrappingMethod: UInt32 = 0x42009E
    public static let encodingOption: UInt32 = 0x4200A3
    public static let derivationData: UInt32 = 0x420030
    public static let derivationMethod: UInt32 = 0x420031
    public static let derivationParameters: UInt32 = 0x420032
    public static let initializationVector: UInt32 = 0x42003A
    public static let iterationCount: UInt32 = 0x42003C
    public static let salt: UInt32 = 0x420084
    public static let hashingAlgorithm: UInt32 = 0x420038
    public static let privateKeyTemplateAttribute: UInt32 = 0x420065
    public static let privateKeyUniqueIdentifier: UInt32 = 0x420066
    public static let publicKeyTemplateAttribute: UInt32 = 0x42006E
    public static let publicKeyUniqueIdentifier: UInt32 = 0x42006F
    public static let validityIndicator: UInt32 = 0x42009B
    public static let signatureData: UInt32 = 0x4200C3
    public static let commonAttributes: UInt32 = 0x420126
    public static let privateKeyAttributes: UInt32 = 0x420127
    public static let publicKeyAttributes: UInt32 = 0x420128
    public static let currentAttribute: UInt32 = 0x42013C
    public static let newAttribute: UInt32 = 0x42013D
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
    public static let supported: [ProtocolVersion] = [
        .init(2, 1), .init(2, 0), .init(1, 4), .init(1, 3), .init(1, 2), .init(1, 1), .init(1, 0),
    ]

}

/// KMIP operations (enumeration values, KMIP 1.4 §9.1.3.2.27 / 2.1 §11.36).
public enum KMIPOperation: UInt32, Sendable, CaseIterable {
    case create = 0x01
    case createKeyPair, register, reKey, deriveKey, certify, reCertify, locate, check, get
    case getAttributes, getAttributeList, addAttribute, modifyAttribute, deleteAttribute, obtainLease
    case getUsageAllocation, activate, revoke, destroy, archive, recover, validate, query, cancel, poll, notify, put
    case reKeyKeyPair, discoverVersions, encrypt, decrypt, sign, signatureVerify, mac, macVerify, rngRetrieve
    case rngSeed, hash, createSplitKey, joinSplitKey, `import`, export
    case log = 0x2C
    case login, logout, delegatedLogin, adjustAttribute, setAttribute, setEndpointRole, pkcs11
    case interop, reProvision, setDefaults, setConstraints, getConstraints, querySetAttributes

    /// The version that first defines the operation: 1.0 up to Put, 1.1 ReKey Key Pair and Discover Versions, 1.2
    /// the cryptographic services (Encrypt … Join Split Key), 1.4 Import and Export, 2.0 Log and later, 2.1 Set
    /// Defaults and after.
    public var firstVersion: ProtocolVersion {
        switch rawValue {
        case ...0x1C: return ProtocolVersion(1, 0)
        case ...0x1E: return ProtocolVersion(1, 1)
        case ...0x29: return ProtocolVersion(1, 2)
        case ...0x2B: return ProtocolVersion(1, 4)
        case ...0x35: return ProtocolVersion(2, 0)
        default: return ProtocolVersion(2, 1)
        }
    }
}

/// Result Status (KMIP 1.4 §9.1.3.2.30).
public enum ResultStatus: UInt32, Sendable {
    case success = 0
    case operationFailed = 1
    case operationPending = 2
    case operationUndone = 3
}

/// Result Reason (KMIP 1.4 §9.1.3.2.31 / 2.1 §11.48).
public enum ResultReason: UInt32, Sendable {
    case itemNotFound = 0x01
    case responseTooLarge, authenticationNotSuccessful, invalidMessage, operationNotSupported
    case missingData, invalidField, featureNotSupported, operationCanceledByRequester, cryptographicFailure
    case illegalOperation, permissionDenied, objectArchived, indexOutOfBounds, applicationNamespaceNotSupported
    case keyFormatTypeNotSupported, keyCompressionTypeNotSupported, encodingOptionError, keyValueNotPresent
    case attestationRequired, attestationFailed, sensitive, notExtractable, objectAlreadyExists
    /// KMIP 2.x.
    case attributeReadOnly = 0x22
    case attributeSingleValued = 0x23
    case incompatibleCryptographicUsageMask = 0x29
    case nonUniqueNameAttribute = 0x35
    case objectDestroyed = 0x36
    case objectNotFound = 0x37
    case wrongKeyLifecycleState = 0x43
    case generalFailure = 0x100
}

/// Query Function (KMIP 1.4 §9.1.3.2.24).
public enum QueryFunction: UInt32, Sendable {
    case operations = 1
    case objects, serverInformation, applicationNamespaces, extensionList, extensionMap
    case attestationTypes, rngs, validations, profiles, capabilities, clientRegistrationMethods
}

/// Object Type (KMIP 1.4 §9.1.3.2.12).
public enum KMIPObjectType: UInt32, Sendable, CaseIterable {
    case certificate = 1
    case symmetricKey, publicKey, privateKey, splitKey, template, secretData, opaqueObject, pgpKey
}
