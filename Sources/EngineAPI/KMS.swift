import Foundation

// The key-management engine API (used by KMIP). Values mirror KMIP's managed-object model (KMIP 1.4 §2–3,
// 2.1 §2–4) without its wire encoding.

/// Managed object types served (KMIP Object Type).
public enum ManagedObjectType: String, Sendable, Hashable, Codable, CaseIterable {
    case symmetricKey, secretData, opaqueObject, publicKey, privateKey, certificate, splitKey
}

/// The Split Key fields (KMIP 1.4 §2.2.5).
public struct SplitKeyInfo: Sendable, Hashable, Codable {
    public var parts: Int32
    public var partIdentifier: Int32
    public var threshold: Int32
    public var method: UInt32
    /// Big-endian bytes of the prime field size, for polynomial sharing over a prime field.
    public var primeFieldSize: [UInt8]?
    public init(parts: Int32, partIdentifier: Int32, threshold: Int32, method: UInt32, primeFieldSize: [UInt8]?) {
        self.parts = parts
        self.partIdentifier = partIdentifier
        self.threshold = threshold
        self.method = method
        self.primeFieldSize = primeFieldSize
    }
}

/// Key lifecycle states (KMIP 1.4 §3.22); raw values are KMIP's enumeration values.
public enum KeyState: Int, Sendable, Hashable, Codable {
    case preActive = 1
    case active, deactivated, compromised, destroyed, destroyedCompromised
}

/// Cryptographic Usage Mask bits (KMIP 1.4 §3.19).
public struct UsageMask: OptionSet, Sendable, Hashable, Codable {
    public var rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }
    public static let sign = UsageMask(rawValue: 0x1)
    public static let verify = UsageMask(rawValue: 0x2)
    public static let encrypt = UsageMask(rawValue: 0x4)
    public static let decrypt = UsageMask(rawValue: 0x8)
    public static let wrapKey = UsageMask(rawValue: 0x10)
    public static let unwrapKey = UsageMask(rawValue: 0x20)
    public static let export = UsageMask(rawValue: 0x40)
    public static let macGenerate = UsageMask(rawValue: 0x80)
    public static let macVerify = UsageMask(rawValue: 0x100)
    public static let deriveKey = UsageMask(rawValue: 0x200)
    /// Uses that apply protection (stopped by a Protect Stop Date) and that process protected data (held back until a
    /// Process Start Date).
    public static let protecting: UsageMask = [.sign, .encrypt, .wrapKey, .macGenerate]
    public static let processing: UsageMask = [.verify, .decrypt, .unwrapKey, .macVerify]
}

/// The public facts of a managed object (never its key material).
public struct ManagedObject: Sendable, Hashable, Codable {
    public var id: String
    public var project: String
    public var objectType: ManagedObjectType
    /// KMIP Cryptographic Algorithm enumeration value (3 = AES, 9 = HMAC-SHA256, …), if any.
    public var algorithm: UInt32?
    public var cryptographicLength: Int32?
    public var usageMask: UInt32
    public var state: KeyState
    public var names: [String]
    public var objectGroups: [String]
    public var initialDate: Date
    public var activationDate: Date?
    public var deactivationDate: Date?
    public var destroyDate: Date?
    public var compromiseDate: Date?
    public var compromiseOccurrenceDate: Date?
    public var revocationReason: UInt32?
    public var revocationMessage: String?
    public var lastChangeDate: Date
    /// Secret Data Type / Opaque Data Type enumeration value, for those object types.
    public var dataType: UInt32?
    /// Attributes the engine stores for clients without interpreting them (Application Specific Information,
    /// Contact Information, custom `x-…` attributes): name → values in the front end's own encoding, in order.
    public var customAttributes: [String: [[UInt8]]]?
    /// The KMIP Key Format Type the material is stored in (registered keys keep the client's format).
    public var keyFormatType: UInt32?
    public var splitKey: SplitKeyInfo?
    /// For keys registered already wrapped: the Key Wrapping Data in the front end's encoding. The material is the
    /// wrapped bytes; the server cannot use such a key for cryptography, only store and return it.
    public var wrappingData: [UInt8]?
    /// SHA-256 of the key material as stored (in `keyFormatType`), for keys (KMIP's Digest attribute). Not kept for
    /// secret data or opaque objects: a digest of a low-entropy secret would allow guessing it offline.
    public var digest: [UInt8]?
    /// True for keys this server generated (Create, Create Key Pair): KMIP's Random Number Generator attribute.
    public var serverGenerated: Bool?
    /// KMIP Sensitive: the material leaves the server only wrapped by another key (nil: false).
    public var sensitive: Bool?
    /// Sensitive has been true since the object was made.
    public var alwaysSensitive: Bool?
    /// KMIP Extractable: false keeps the material inside the server, wrapped or not (nil: true).
    public var extractable: Bool?
    /// Extractable has been false since the object was made.
    public var neverExtractable: Bool?
    /// KMIP Fresh: no client has obtained the material yet (true for keys the server generated, until the first Get).
    public var fresh: Bool?
    /// KMIP Usage Limits: how much the key may still protect (Encrypt, Sign, MAC, usage allocations).
    public var usageLimits: UsageLimits?
    /// Links the server made (KMIP Link: type, object): a re-keyed key's replacement and the key it replaced.
    public var links: [ObjectLink]?
    /// For X.509 certificates: what the certificate says (read from it at registration).
    public var certificate: CertificateFacts?
    /// KMIP Process Start Date: before it the key may not process protected data (decrypt, verify, unwrap).
    public var processStartDate: Date?
    /// KMIP Protect Stop Date: from it on the key may not apply protection (encrypt, sign, MAC, wrap).
    public var protectStopDate: Date?

    public init(
        id: String, project: String, objectType: ManagedObjectType, algorithm: UInt32?, cryptographicLength: Int32?,
        usageMask: UInt32, state: KeyState, names: [String], objectGroups: [String], initialDate: Date,
        lastChangeDate: Date, dataType: UInt32? = nil
    ) {
        self.id = id
        self.project = project
        self.objectType = objectType
        self.algorithm = algorithm
        self.cryptographicLength = cryptographicLength
        self.usageMask = usageMask
        self.state = state
        self.names = names
        self.objectGroups = objectGroups
        self.initialDate = initialDate
        self.lastChangeDate = lastChangeDate
        self.dataType = dataType
    }
}

/// A link between two objects; `type` is the KMIP Link Type (0x106 Replacement Object, 0x107 Replaced Object, …).
public struct ObjectLink: Sendable, Hashable, Codable {
    public var type: UInt32
    public var id: String
    public init(type: UInt32, id: String) {
        self.type = type
        self.id = id
    }
    public static let certificate: UInt32 = 0x101
    public static let publicKey: UInt32 = 0x102
    public static let privateKey: UInt32 = 0x103
    public static let replacementObject: UInt32 = 0x106
    public static let replacedObject: UInt32 = 0x107
}

/// The facts of an X.509 certificate that KMIP exposes as attributes.
public struct CertificateFacts: Sendable, Hashable, Codable {
    /// One attribute of a distinguished name: its short type (CN, O, OU, C, ST, L, emailAddress, UID, serialNumber,
    /// title, DC, dnQualifier, or the dotted OID) and its text.
    public struct NameComponent: Sendable, Hashable, Codable {
        public var type: String
        public var value: String
        public init(type: String, value: String) {
            self.type = type
            self.value = value
        }
    }
    /// DER length in bytes.
    public var length: Int
    public var subject: [NameComponent]
    public var issuer: [NameComponent]
    public var serialNumber: [UInt8]
    public init(length: Int, subject: [NameComponent], issuer: [NameComponent], serialNumber: [UInt8]) {
        self.length = length
        self.subject = subject
        self.issuer = issuer
        self.serialNumber = serialNumber
    }
}

/// An object's stored record at one moment (its material still sealed): opaque to front ends.
public struct ObjectSnapshot: Sendable, Hashable {
    public let id: String
    public let body: Data
    public init(id: String, body: Data) {
        self.id = id
        self.body = body
    }
}

/// KMIP Usage Limits: `total` units may be protected with the key; `count` remain. Unit 1: bytes, 2: objects
/// (operations).
public struct UsageLimits: Sendable, Hashable, Codable {
    public var total: Int64
    public var count: Int64
    public var unit: UInt32
    public init(total: Int64, count: Int64, unit: UInt32) {
        self.total = total
        self.count = count
        self.unit = unit
    }
    /// What one operation on `bytes` bytes uses.
    public func units(bytes: Int) -> Int64 { unit == 1 ? Int64(bytes) : 1 }
}

/// What to create or register.
public struct ObjectSpec: Sendable, Hashable {
    public var objectType: ManagedObjectType
    public var algorithm: UInt32?
    public var cryptographicLength: Int32?
    public var usageMask: UInt32?
    public var names: [String]
    public var objectGroups: [String]
    public var activationDate: Date?
    /// A Deactivation Date given by the client: the key stops protecting/processing then (Deactivated at once if past).
    public var deactivationDate: Date?
    public var dataType: UInt32?
    public var customAttributes: [String: [[UInt8]]] = [:]
    public var keyFormatType: UInt32?
    public var splitKey: SplitKeyInfo?
    public var wrappingData: [UInt8]?
    /// KMIP Sensitive / Extractable / Fresh as the client set them (nil: the defaults).
    public var sensitive: Bool?
    public var extractable: Bool?
    public var fresh: Bool?
    /// Usage Limits as the client set them (Count starts at Total).
    public var usageLimits: UsageLimits?
    public var processStartDate: Date?
    public var protectStopDate: Date?
    public init(
        objectType: ManagedObjectType, algorithm: UInt32? = nil, cryptographicLength: Int32? = nil,
        usageMask: UInt32? = nil,
        names: [String] = [], objectGroups: [String] = [], activationDate: Date? = nil, dataType: UInt32? = nil
    ) {
        self.objectType = objectType
        self.algorithm = algorithm
        self.cryptographicLength = cryptographicLength
        self.usageMask = usageMask
        self.names = names
        self.objectGroups = objectGroups
        self.activationDate = activationDate
        self.dataType = dataType
    }
}

/// The date attributes Locate can filter on.
public enum DateAttribute: String, Sendable, Hashable, CaseIterable {
    case initial, activation, deactivation, processStart, protectStop, compromise, compromiseOccurrence, destroy,
        lastChange

    public func value(in m: ManagedObject) -> Date? {
        switch self {
        case .initial: return m.initialDate
        case .activation: return m.activationDate
        case .deactivation: return m.deactivationDate
        case .processStart: return m.processStartDate
        case .protectStop: return m.protectStopDate
        case .compromise: return m.compromiseDate
        case .compromiseOccurrence: return m.compromiseOccurrenceDate
        case .destroy: return m.destroyDate
        case .lastChange: return m.lastChangeDate
        }
    }
}

/// Locate filters (all given ones must match).
public struct LocateFilter: Sendable, Hashable {
    public var name: String?
    public var objectType: ManagedObjectType?
    public var algorithm: UInt32?
    public var cryptographicLength: Int32?
    public var state: KeyState?
    public var objectGroup: String?
    public var maximumItems: Int?
    public var offsetItems: Int
    public var id: String?
    /// Objects whose Cryptographic Usage Mask has at least these bits.
    public var usageMask: UInt32?
    /// Stored client attributes that must be present with exactly these encoded values.
    public var customAttributes: [String: [UInt8]] = [:]
    /// Client attributes whose filter value is the implicit default: an object without the attribute matches too.
    public var customAttributeDefaults: Set<String> = []
    /// For certificates: the certificate type (KMIP Certificate Type).
    public var certificateType: UInt32?
    /// Date attribute ranges, in whole seconds, inclusive: an object matches when it has the date and it is inside.
    public var dateRanges: [DateAttribute: ClosedRange<Int64>] = [:]
    /// Objects whose Digest (SHA-256 of the material, as Get Attributes reports it) is this value.
    public var digest: [UInt8]?
    /// Certificates whose subject (or issuer) has each of these name components (type as `CertificateFacts` names
    /// it, exact text).
    public var certificateFields: [CertificateFieldCondition] = []
    /// Links the object must have (all of them): set by the server (a key pair's halves, ReKey's replacement) or
    /// by the client as a Link attribute.
    public var links: [LinkCondition] = []
    /// Destroyed objects (metadata only) are found only when asked for (KMIP 2.x Storage Status Mask
    /// "Destroyed Storage", or a State filter naming a destroyed state).
    public var includeDestroyed = false
    public init(
        name: String? = nil, objectType: ManagedObjectType? = nil, algorithm: UInt32? = nil,
        cryptographicLength: Int32? = nil,
        state: KeyState? = nil, objectGroup: String? = nil, maximumItems: Int? = nil, offsetItems: Int = 0
    ) {
        self.name = name
        self.objectType = objectType
        self.algorithm = algorithm
        self.cryptographicLength = cryptographicLength
        self.state = state
        self.objectGroup = objectGroup
        self.maximumItems = maximumItems
        self.offsetItems = offsetItems
    }
}

/// One component a located certificate's subject or issuer must have (KMIP 2.x "Certificate Subject CN" …).
public struct CertificateFieldCondition: Sendable, Hashable {
    public var issuer: Bool
    public var component: CertificateFacts.NameComponent
    public init(issuer: Bool, component: CertificateFacts.NameComponent) {
        self.issuer = issuer
        self.component = component
    }
}

/// One Link a located object must have: the server's link of that type to that object, or a client Link attribute
/// stored with exactly `clientValue` (the client attribute's stored encoding; nil when there is none to compare).
public struct LinkCondition: Sendable, Hashable {
    public var link: ObjectLink
    public var clientValue: [UInt8]?
    public init(link: ObjectLink, clientValue: [UInt8]?) {
        self.link = link
        self.clientValue = clientValue
    }
}

/// Symmetric cipher parameters (KMIP Cryptographic Parameters, the parts served).
public struct CipherParameters: Sendable, Hashable {
    /// KMIP Block Cipher Mode: 1 CBC, 2 ECB, 6 CTR, 9 GCM (default GCM when absent).
    public var blockCipherMode: UInt32?
    /// KMIP Padding Method: 1 None, 3 PKCS5.
    public var paddingMethod: UInt32?
    /// Authentication tag length in bytes (GCM; default 16).
    public var tagLength: Int?
    /// KMIP Cryptographic Algorithm for MAC (HMAC variants) when the key does not say.
    public var algorithm: UInt32?
    /// RSA-OAEP: the KMIP Hashing Algorithm, the MGF1 hash (Mask Generator Hashing Algorithm) and the label (P Source).
    public var hashingAlgorithm: UInt32?
    public var maskGeneratorHashingAlgorithm: UInt32?
    public var label: [UInt8]?
    /// ChaCha20's initial block counter (KMIP Initial Counter Value; 0 when absent).
    public var initialCounterValue: Int?
    public init(
        blockCipherMode: UInt32? = nil, paddingMethod: UInt32? = nil, tagLength: Int? = nil, algorithm: UInt32? = nil
    ) {
        self.blockCipherMode = blockCipherMode
        self.paddingMethod = paddingMethod
        self.tagLength = tagLength
        self.algorithm = algorithm
    }
}

/// Signature parameters (KMIP Cryptographic Parameters: Padding Method 8 PKCS#1 v1.5 / 10 PSS, Hashing Algorithm
/// 6 SHA-256 / 7 SHA-384 / 8 SHA-512).
public struct SignatureParameters: Sendable, Hashable {
    public var paddingMethod: UInt32?
    public var hashingAlgorithm: UInt32?
    public init(paddingMethod: UInt32? = nil, hashingAlgorithm: UInt32? = nil) {
        self.paddingMethod = paddingMethod
        self.hashingAlgorithm = hashingAlgorithm
    }
}

/// DeriveKey parameters (KMIP 1.4 §4.6): method 1 PBKDF2, 2 HASH, 3 HMAC (HKDF), 4 ENCRYPT, 5 NIST SP 800-108
/// counter mode.
public struct DerivationParameters: Sendable, Hashable {
    public var method: UInt32
    /// KMIP Hashing Algorithm (4 SHA-1, 6 SHA-256, 7 SHA-384, 8 SHA-512); default SHA-256.
    public var hashingAlgorithm: UInt32?
    public var derivationData: [UInt8]?
    public var salt: [UInt8]?
    public var iterationCount: Int?
    /// ENCRYPT derivation: the IV, and the cipher (KMIP Cryptographic Algorithm 3 AES / 16 Blowfish, Block Cipher
    /// Mode 1 CBC, Padding Method 1 none / 3 PKCS#5).
    public var initializationVector: [UInt8]?
    public var algorithm: UInt32?
    public var blockCipherMode: UInt32?
    public var paddingMethod: UInt32?
    public init(
        method: UInt32, hashingAlgorithm: UInt32? = nil, derivationData: [UInt8]? = nil, salt: [UInt8]? = nil,
        iterationCount: Int? = nil
    ) {
        self.method = method
        self.hashingAlgorithm = hashingAlgorithm
        self.derivationData = derivationData
        self.salt = salt
        self.iterationCount = iterationCount
    }
}

/// The output of Encrypt / Decrypt.
public struct CipherResult: Sendable, Hashable {
    public var data: [UInt8]
    /// The IV/nonce the server generated (Encrypt without one).
    public var iv: [UInt8]?
    /// The GCM tag (Encrypt).
    public var tag: [UInt8]?
    public init(data: [UInt8], iv: [UInt8]? = nil, tag: [UInt8]? = nil) {
        self.data = data
        self.iv = iv
        self.tag = tag
    }
}

/// The client-editable attributes of an object (Add/Modify/Delete Attribute edit these in one transaction).
public struct EditableAttributes: Sendable, Hashable {
    public var names: [String]
    public var objectGroups: [String]
    public var customAttributes: [String: [[UInt8]]]
    public var sensitive: Bool
    public var extractable: Bool
    /// Changes only while the object is Pre-Active (`wrongState` otherwise); a date that has come activates it.
    public var activationDate: Date?
    public init(
        names: [String], objectGroups: [String], customAttributes: [String: [[UInt8]]], sensitive: Bool = false,
        extractable: Bool = true, activationDate: Date? = nil
    ) {
        self.names = names
        self.objectGroups = objectGroups
        self.customAttributes = customAttributes
        self.sensitive = sensitive
        self.extractable = extractable
        self.activationDate = activationDate
    }
}

/// Key management (part of `Engine`). Objects live in a project: the caller's KMIP project when `project` is nil.
public protocol KeyEngine: Sendable {
    func createKey(_ ctx: CallContext, project: String?, _ spec: ObjectSpec) async throws -> ManagedObject
    func registerObject(_ ctx: CallContext, project: String?, _ spec: ObjectSpec, material: SecretBytes) async throws
        -> ManagedObject
    /// The object and its material (nil once destroyed). Refused (`sensitive`, `notExtractable`) for objects whose
    /// material may not leave in the clear; the first Get of a Fresh object clears Fresh.
    func getObject(_ ctx: CallContext, id: String) async throws -> (ManagedObject, SecretBytes?)
    /// KMIP Get Usage Allocation: takes `amount` units from the key's Usage Limits for the client to use on its own.
    func allocateUsage(_ ctx: CallContext, id: String, amount: Int64) async throws -> ManagedObject
    func objectAttributes(_ ctx: CallContext, id: String) async throws -> ManagedObject
    func activateObject(_ ctx: CallContext, id: String) async throws -> ManagedObject
    /// Revokes: reason 1 (Unspecified) / 2 (Key Compromise) / 3 (CA Compromise) → Compromised; others → Deactivated.
    func revokeObject(_ ctx: CallContext, id: String, reason: UInt32, message: String?, compromiseOccurrence: Date?)
        async throws -> ManagedObject
    /// Erases the material and keeps the metadata (Destroyed / Destroyed Compromised).
    func destroyObject(_ ctx: CallContext, id: String) async throws -> ManagedObject
    func locateObjects(_ ctx: CallContext, project: String?, _ filter: LocateFilter) async throws -> [String]
    /// `locateObjects` with each object's attributes (what a listing shows), read in the same index scans: one call
    /// for a page instead of one per object. Authorized and audited as a Locate.
    func locateObjectAttributes(_ ctx: CallContext, project: String?, _ filter: LocateFilter) async throws
        -> [ManagedObject]
    func encrypt(_ ctx: CallContext, id: String, _ p: CipherParameters, data: [UInt8], iv: [UInt8]?, aad: [UInt8]?)
        async throws -> CipherResult
    func decrypt(
        _ ctx: CallContext, id: String, _ p: CipherParameters, data: [UInt8], iv: [UInt8]?, aad: [UInt8]?, tag: [UInt8]?
    ) async throws -> CipherResult
    /// KMIP ReKey: a replacement for a symmetric key, with fresh material and the old key's attributes (its names
    /// move to the replacement); linked both ways. `offset`: the replacement's activation is that long after its
    /// creation (its other dates keep their distances to it); without it the old key's dates are kept.
    func rekey(_ ctx: CallContext, id: String, offset: TimeInterval?) async throws -> ManagedObject
    /// KMIP ReKey Key Pair: a replacement pair for a private key (and the public key it links to), fresh material of
    /// the same algorithm and size, the old keys' attributes (names move), Replacement/Replaced Object links both
    /// ways for each key; `offset` as in `rekey`. Returns (private key, public key).
    func rekeyKeyPair(_ ctx: CallContext, privateKeyID: String, offset: TimeInterval?) async throws -> (
        ManagedObject, ManagedObject
    )
    /// KMIP Certify: a certificate for a public key object (subject CN `commonName`, else the key's first name) or
    /// a PKCS#10 request, from the project's certificate profile whose enrollment method is `kmip`; stored as a
    /// certificate object linked to the public key (both ways when there is one).
    func certify(
        _ ctx: CallContext, project: String?, publicKeyID: String?, csrDER: [UInt8]?, commonName: String?,
        names: [String]
    ) async throws
        -> ManagedObject
    /// KMIP's Authentication header as a second factor after the TLS client certificate: a Username and Password
    /// credential is the caller's own Universal Auth client ID and a valid client secret of it (checked like a login:
    /// constant time, lockout, audited). Required when the caller's identity has metadata `kmip.credential` =
    /// `required`; checked whenever one is sent.
    func verifyKMIPCredential(_ ctx: CallContext, username: String?, password: SecretBytes?) async throws
    /// An object's stored state, to put back if a KMIP batch with the Undo option fails.
    func snapshotObject(_ ctx: CallContext, id: String) async throws -> ObjectSnapshot
    /// Puts objects back as `restore` captured them and removes the objects in `discard` (made by the failed
    /// batch), in one transaction; audited as `kms.undo`.
    func undoObjectChanges(_ ctx: CallContext, restore: [ObjectSnapshot], discard: [String]) async throws
    /// KMIP streamed MAC: the first step (no `correlation`) starts an HMAC with the key; later steps name the
    /// correlation value returned; the last (`final`) returns the MAC. Same ownership and limits as `cipherStep`.
    func macStep(
        _ ctx: CallContext, id: String, _ p: CipherParameters, data: [UInt8], correlation: [UInt8]?, final: Bool
    )
        async throws -> (mac: [UInt8]?, correlation: [UInt8]?)
    /// KMIP streamed Hash (`algorithm`: Hashing Algorithm 4 SHA-1, 6 SHA-256, 7 SHA-384, 8 SHA-512), like `macStep`
    /// without a key; only for authenticated callers.
    func hashStep(_ ctx: CallContext, algorithm: UInt32, data: [UInt8], correlation: [UInt8]?, final: Bool) async throws
        -> (digest: [UInt8]?, correlation: [UInt8]?)
    /// One step of a streamed Encrypt / Decrypt (KMIP Init Indicator, Correlation Value, Final Indicator): the first
    /// step (no `correlation`) takes the IV and AAD and returns a correlation value unless it is also the last; later
    /// steps name it; the last returns the rest and, for GCM encryption, the tag (GCM decryption checks `tag` then).
    /// A stream belongs to its caller and key, lives on this node, and is dropped after 10 idle minutes.
    func cipherStep(
        _ ctx: CallContext, id: String, encrypt: Bool, _ p: CipherParameters, data: [UInt8], iv: [UInt8]?,
        aad: [UInt8]?,
        tag: [UInt8]?, correlation: [UInt8]?, final: Bool
    ) async throws -> (result: CipherResult, correlation: [UInt8]?)
    func mac(_ ctx: CallContext, id: String, _ p: CipherParameters, data: [UInt8]) async throws -> [UInt8]
    /// Recomputes the MAC (the key needs MAC Verify usage) and compares it in constant time.
    func macVerify(_ ctx: CallContext, id: String, _ p: CipherParameters, data: [UInt8], mac: [UInt8]) async throws
        -> Bool
    /// Creates an asymmetric key pair (RSA 2048/3072/4096); returns (private key, public key). `privateSpec` and
    /// `publicSpec` carry each key's names, groups and usage mask (common attributes already merged in).
    func createKeyPair(
        _ ctx: CallContext, project: String?, algorithm: UInt32, length: Int32, privateSpec: ObjectSpec,
        publicSpec: ObjectSpec
    )
        async throws -> (ManagedObject, ManagedObject)
    /// The object's material wrapped (RFC 3394 AES Key Wrap) with an Active AES key that allows Wrap Key.
    func getWrapped(_ ctx: CallContext, id: String, wrappingKeyID: String) async throws -> (ManagedObject, [UInt8])
    /// Derives a symmetric key or secret data (of `spec.cryptographicLength` bits) from a base object that allows
    /// Derive Key.
    func deriveKey(_ ctx: CallContext, project: String?, baseID: String, _ p: DerivationParameters, _ spec: ObjectSpec)
        async throws -> ManagedObject
    /// Signs `data` with a private key (RSA PKCS#1 v1.5 or PSS, SHA-256/384/512).
    func sign(_ ctx: CallContext, id: String, _ p: SignatureParameters, data: [UInt8]) async throws -> [UInt8]
    /// Verifies a signature with a public key; false when it does not verify.
    func verify(_ ctx: CallContext, id: String, _ p: SignatureParameters, data: [UInt8], signature: [UInt8])
        async throws -> Bool
    /// Edits names, object groups and stored client attributes atomically; `edit` throws `EngineError` to refuse.
    func editObjectAttributes(
        _ ctx: CallContext, id: String, _ edit: @Sendable (inout EditableAttributes) throws -> Void
    )
        async throws -> ManagedObject
}

/// The organization's KMIP client PKI: the CA that issues KMIP clients' certificates, generated on demand with the
/// key algorithm chosen at setup. The KMIP listener trusts it (in addition to its configured client CA).
public struct KMIPPKIInfo: Sendable, Hashable, Codable {
    public var keyAlgorithm: PKIKeyAlgorithm
    /// The CA certificate (PEM).
    public var caCertificate: String
    public var serialNumber: String
    public var notBefore: Date
    public var notAfter: Date
    public var createdAt: Date
    public init(
        keyAlgorithm: PKIKeyAlgorithm, caCertificate: String, serialNumber: String, notBefore: Date, notAfter: Date,
        createdAt: Date
    ) {
        self.keyAlgorithm = keyAlgorithm
        self.caCertificate = caCertificate
        self.serialNumber = serialNumber
        self.notBefore = notBefore
        self.notAfter = notAfter
        self.createdAt = createdAt
    }
}

/// A KMIP client certificate to issue: for `commonName` (the client identity's name), over the client's own public
/// key (PEM SubjectPublicKeyInfo; the private key never reaches the server), valid `ttl` (a duration such as 365d;
/// default 365d, at most 10 years and never past the CA). When the KMIP PKI
/// does not exist yet it is generated with `caKeyAlgorithm` (default EC P-256).
public struct KMIPClientCertificateRequest: Sendable, Hashable, Codable {
    public var commonName: String
    public var publicKey: String
    public var ttl: String?
    public var caKeyAlgorithm: PKIKeyAlgorithm?
    public init(commonName: String, publicKey: String, ttl: String? = nil, caKeyAlgorithm: PKIKeyAlgorithm? = nil) {
        self.commonName = commonName
        self.publicKey = publicKey
        self.ttl = ttl
        self.caKeyAlgorithm = caKeyAlgorithm
    }
}

/// An issued KMIP client certificate and the chain above it (PEM, CA last).
public struct KMIPClientCertificate: Sendable, Hashable, Codable {
    public var certificate: String
    public var certificateChain: [String]
    public var serialNumber: String
    public var notAfter: Date
    public init(certificate: String, certificateChain: [String], serialNumber: String, notAfter: Date) {
        self.certificate = certificate
        self.certificateChain = certificateChain
        self.serialNumber = serialNumber
        self.notAfter = notAfter
    }
}

/// The organization's KMIP client PKI (part of `Engine`).
public protocol KMIPPKIEngine: Sendable {
    /// The KMIP PKI; `.notFound` until it is set up (explicitly or by the first client certificate).
    func kmipPKI(_ ctx: CallContext) async throws -> KMIPPKIInfo
    /// Generates the KMIP client CA with `keyAlgorithm`; `.alreadyExists` when there is one.
    func setUpKMIPPKI(_ ctx: CallContext, keyAlgorithm: PKIKeyAlgorithm) async throws -> KMIPPKIInfo
    /// Issues a TLS client certificate from the KMIP client CA, generating the CA first when there is none.
    func issueKMIPClientCertificate(_ ctx: CallContext, _ request: KMIPClientCertificateRequest) async throws
        -> KMIPClientCertificate
    /// The KMIP client CA certificates (PEM) the KMIP listener trusts; public facts, not authorized or audited.
    func kmipClientCACertificates() async throws -> [String]
}
