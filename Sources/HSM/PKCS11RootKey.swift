import CPKCS11
import Engine
import EngineAPI
import Foundation
import Synchronization

/// The root key as an AES-256 key that never leaves a PKCS#11 token: data keys are sealed and opened inside the
/// token with CKM_AES_GCM (C_Encrypt / C_Decrypt), with the same associated data as a key file's root key, so a
/// wrapped data key stays bound to its id. The sealed form is the same as AES-GCM's combined form
/// (nonce 12 | ciphertext | tag 16); the 96-bit nonce is random, from the operating system.
///
/// One session, used under a lock (data keys are unwrapped once per process and cached, so the token is not on
/// a request's path). If the token is reset or the session is lost, the next call logs in again once.
public final class PKCS11RootKey: RootKey {
    let module: PKCS11Module
    let uri: PKCS11URI
    private let pin: [UInt8]
    private let state: Mutex<Connection?>

    struct Connection {
        var session: CK_SESSION_HANDLE
        var key: CK_OBJECT_HANDLE
    }

    public var description: String { "PKCS#11 key \"\(uri.keyLabel)\" in \(uri.tokenDescription)" }

    /// Loads the module, finds the token, logs in and finds the key. Every failure is an `EngineError(.unavailable)`
    /// saying which: module, token, PIN, key label, or a token without AES-GCM.
    public init(uri: PKCS11URI, environment: [String: String] = ProcessInfo.processInfo.environment) throws {
        self.uri = uri
        self.pin = try uri.readPIN(environment: environment)
        self.module = try PKCS11Module.load(uri.modulePath)
        let connection = try Self.connect(module, uri, pin)
        self.state = Mutex(connection)
    }

    deinit {
        if let connection = state.withLock({ $0 }) {
            _ = module.functions.pointee.C_CloseSession?(connection.session)
        }
    }

    public func wrap(_ plaintext: Data, aad: Data) throws -> Data {
        var nonce = [UInt8](repeating: 0, count: 12)
        var generator = SystemRandomNumberGenerator()
        for i in nonce.indices { nonce[i] = generator.next() }
        let sealed = try perform {
            try gcm(encrypt: true, nonce: nonce, input: [UInt8](plaintext), aad: [UInt8](aad), $0)
        }
        return Data(nonce + sealed)
    }

    public func unwrap(_ wrapped: Data, aad: Data) throws -> Data {
        let bytes = [UInt8](wrapped)
        guard bytes.count >= 12 + 16 else { throw EngineError(.cryptographicFailure, "wrapped data key is truncated") }
        let opened = try perform {
            try gcm(encrypt: false, nonce: Array(bytes[0..<12]), input: Array(bytes[12...]), aad: [UInt8](aad), $0)
        }
        return Data(opened)
    }

    /// Runs `body` on the session, reconnecting once if the session was lost.
    private func perform(_ body: (Connection) throws -> [UInt8]) throws -> [UInt8] {
        try state.withLock { state in
            for attempt in 0..<2 {
                do {
                    let connection: Connection
                    if let current = state {
                        connection = current
                    } else {
                        connection = try Self.connect(module, uri, pin)
                        state = connection
                    }
                    return try body(connection)
                } catch let e as PKCS11Error where e.sessionLost && attempt == 0 {
                    if let lost = state { _ = module.functions.pointee.C_CloseSession?(lost.session) }
                    state = nil
                }
            }
            throw EngineError(.unavailable, "\(description): the token is not reachable")
        }
    }

    private func gcm(encrypt: Bool, nonce: [UInt8], input: [UInt8], aad: [UInt8], _ c: Connection) throws -> [UInt8] {
        let f = module.functions.pointee
        guard let initEncrypt = f.C_EncryptInit, let doEncrypt = f.C_Encrypt, let initDecrypt = f.C_DecryptInit,
            let doDecrypt = f.C_Decrypt
        else { throw EngineError(.unavailable, "PKCS#11 module \(uri.modulePath) lacks C_Encrypt or C_Decrypt") }
        var nonce = nonce
        var aad = aad
        var input = input
        var output = [UInt8](repeating: 0, count: input.count + 16)
        var outputLength = CK_ULONG(output.count)
        let rv: CK_RV = nonce.withUnsafeMutableBufferPointer { n in
            aad.withUnsafeMutableBufferPointer { a in
                var params = CK_GCM_PARAMS(
                    pIv: n.baseAddress, ulIvLen: CK_ULONG(n.count), ulIvBits: CK_ULONG(n.count * 8),
                    pAAD: a.baseAddress, ulAADLen: CK_ULONG(a.count), ulTagBits: 128)
                return withUnsafeMutablePointer(to: &params) { p in
                    var mechanism = CK_MECHANISM(
                        mechanism: CK_MECHANISM_TYPE(CKM_AES_GCM), pParameter: UnsafeMutableRawPointer(p),
                        ulParameterLen: CK_ULONG(MemoryLayout<CK_GCM_PARAMS>.size))
                    let started =
                        encrypt ? initEncrypt(c.session, &mechanism, c.key) : initDecrypt(c.session, &mechanism, c.key)
                    guard started == CKR_OK else { return started }
                    return input.withUnsafeMutableBufferPointer { i in
                        output.withUnsafeMutableBufferPointer { o in
                            encrypt
                                ? doEncrypt(c.session, i.baseAddress, CK_ULONG(i.count), o.baseAddress, &outputLength)
                                : doDecrypt(c.session, i.baseAddress, CK_ULONG(i.count), o.baseAddress, &outputLength)
                        }
                    }
                }
            }
        }
        // A tag that does not verify is CKR_ENCRYPTED_DATA_INVALID in the standard; SoftHSM2 (and other tokens)
        // answer CKR_GENERAL_ERROR or CKR_FUNCTION_FAILED. Either way nothing is returned.
        let authenticationFailures = [
            CKR_ENCRYPTED_DATA_INVALID, CKR_ENCRYPTED_DATA_LEN_RANGE, CKR_GENERAL_ERROR, CKR_FUNCTION_FAILED,
        ].map { CK_RV($0) }
        if !encrypt, authenticationFailures.contains(rv) {
            throw EngineError(
                .cryptographicFailure, "wrapped data key does not authenticate under \(description)",
                diagnostic: "C_Decrypt: \(PKCS11Module.name(of: rv))")
        }
        guard rv == CKR_OK else { throw PKCS11Error(function: encrypt ? "C_Encrypt" : "C_Decrypt", rv: rv) }
        return Array(output.prefix(Int(outputLength)))
    }

    // MARK: Sessions, tokens and keys

    /// Opens a session on the URI's token, logs in and finds the key.
    static func connect(_ module: PKCS11Module, _ uri: PKCS11URI, _ pin: [UInt8]) throws -> Connection {
        let (session, token) = try openSession(module, uri, pin, readWrite: false)
        do {
            guard
                module.supports(
                    slot: token.slot, mechanism: CK_MECHANISM_TYPE(CKM_AES_GCM),
                    flags: CK_FLAGS(CKF_ENCRYPT | CKF_DECRYPT))
            else {
                throw EngineError(
                    .unavailable, "\(uri.tokenDescription) does not offer CKM_AES_GCM for encryption and decryption")
            }
            let found = try findKeys(module, session, label: uri.keyLabel)
            guard let key = found.first else {
                throw EngineError(
                    .unavailable,
                    "no AES key labelled \"\(uri.keyLabel)\" in \(uri.tokenDescription) (create it with `gatehouse root-key create`)"
                )
            }
            guard found.count == 1 else {
                throw EngineError(
                    .unavailable,
                    "\(found.count) keys are labelled \"\(uri.keyLabel)\" in \(uri.tokenDescription); keep one")
            }
            return Connection(session: session, key: key)
        } catch {
            _ = module.functions.pointee.C_CloseSession?(session)
            throw error
        }
    }

    static func openSession(_ module: PKCS11Module, _ uri: PKCS11URI, _ pin: [UInt8], readWrite: Bool) throws -> (
        CK_SESSION_HANDLE, PKCS11Module.Token
    ) {
        let f = module.functions.pointee
        guard let openSession = f.C_OpenSession, let login = f.C_Login else {
            throw EngineError(.unavailable, "PKCS#11 module \(uri.modulePath) lacks C_OpenSession or C_Login")
        }
        let tokens: [PKCS11Module.Token]
        do { tokens = try module.tokens() } catch let e as PKCS11Error {
            throw EngineError(.unavailable, "PKCS#11 module \(uri.modulePath): \(e)")
        }
        guard
            let token = tokens.first(where: { t in
                (uri.tokenLabel.map { $0 == t.label } ?? true) && (uri.tokenSerial.map { $0 == t.serial } ?? true)
            })
        else {
            let present = tokens.map { "\"\($0.label)\" (serial \($0.serial))" }.joined(separator: ", ")
            throw EngineError(
                .unavailable,
                "no PKCS#11 \(uri.tokenDescription) in \(uri.modulePath) (tokens present: \(present.isEmpty ? "none" : present))"
            )
        }
        var session: CK_SESSION_HANDLE = 0
        let flags = CK_FLAGS(CKF_SERIAL_SESSION) | (readWrite ? CK_FLAGS(CKF_RW_SESSION) : 0)
        let opened = openSession(token.slot, flags, nil, nil, &session)
        guard opened == CKR_OK else {
            throw EngineError(
                .unavailable, "\(uri.tokenDescription): C_OpenSession failed (\(PKCS11Module.name(of: opened)))")
        }
        var pin = pin
        let loggedIn = pin.withUnsafeMutableBufferPointer {
            login(session, CK_USER_TYPE(CKU_USER), $0.baseAddress, CK_ULONG($0.count))
        }
        guard loggedIn == CKR_OK || loggedIn == CKR_USER_ALREADY_LOGGED_IN else {
            _ = f.C_CloseSession?(session)
            switch loggedIn {
            case CK_RV(CKR_PIN_INCORRECT), CK_RV(CKR_PIN_LEN_RANGE):
                throw EngineError(
                    .unavailable, "the PIN for PKCS#11 \(uri.tokenDescription) is wrong (CKR_PIN_INCORRECT)")
            case CK_RV(CKR_PIN_LOCKED):
                throw EngineError(
                    .unavailable, "the user PIN of PKCS#11 \(uri.tokenDescription) is locked (CKR_PIN_LOCKED)")
            default:
                throw EngineError(
                    .unavailable, "\(uri.tokenDescription): C_Login failed (\(PKCS11Module.name(of: loggedIn)))")
            }
        }
        return (session, token)
    }

    /// Secret keys labelled `label` (the handles of at most a few).
    static func findKeys(_ module: PKCS11Module, _ session: CK_SESSION_HANDLE, label: String) throws
        -> [CK_OBJECT_HANDLE]
    {
        let f = module.functions.pointee
        guard let findInit = f.C_FindObjectsInit, let find = f.C_FindObjects, let findFinal = f.C_FindObjectsFinal
        else { throw EngineError(.unavailable, "PKCS#11 module \(module.path) lacks C_FindObjects") }
        let template: [(CK_ATTRIBUTE_TYPE, [UInt8])] = [
            (CK_ATTRIBUTE_TYPE(CKA_CLASS), ulong(CKO_SECRET_KEY)), (CK_ATTRIBUTE_TYPE(CKA_KEY_TYPE), ulong(CKK_AES)),
            (CK_ATTRIBUTE_TYPE(CKA_LABEL), Array(label.utf8)),
        ]
        try withTemplate(template) { attributes, count in
            try module.check("C_FindObjectsInit", findInit(session, attributes, count))
        }
        defer { _ = findFinal(session) }
        var handles = [CK_OBJECT_HANDLE](repeating: 0, count: 4)
        var found: CK_ULONG = 0
        try module.check("C_FindObjects", find(session, &handles, CK_ULONG(handles.count), &found))
        return Array(handles.prefix(Int(found)))
    }

    /// Generates the root key in the token: AES-256, a token object, private, sensitive and not extractable,
    /// usable only to encrypt, decrypt, wrap and unwrap. Fails if a key with the label exists.
    public static func generate(uri: PKCS11URI, environment: [String: String] = ProcessInfo.processInfo.environment)
        throws
    {
        let pin = try uri.readPIN(environment: environment)
        let module = try PKCS11Module.load(uri.modulePath)
        let (session, _) = try openSession(module, uri, pin, readWrite: true)
        defer { _ = module.functions.pointee.C_CloseSession?(session) }
        guard try findKeys(module, session, label: uri.keyLabel).isEmpty else {
            throw EngineError(
                .alreadyExists, "\(uri.tokenDescription) already holds a key labelled \"\(uri.keyLabel)\"")
        }
        guard let generate = module.functions.pointee.C_GenerateKey else {
            throw EngineError(.unavailable, "PKCS#11 module \(uri.modulePath) lacks C_GenerateKey")
        }
        let yes = [UInt8(CK_TRUE)]
        let no = [UInt8(CK_FALSE)]
        let template: [(CK_ATTRIBUTE_TYPE, [UInt8])] = [
            (CK_ATTRIBUTE_TYPE(CKA_CLASS), ulong(CKO_SECRET_KEY)), (CK_ATTRIBUTE_TYPE(CKA_KEY_TYPE), ulong(CKK_AES)),
            (CK_ATTRIBUTE_TYPE(CKA_VALUE_LEN), ulong(32)), (CK_ATTRIBUTE_TYPE(CKA_LABEL), Array(uri.keyLabel.utf8)),
            (CK_ATTRIBUTE_TYPE(CKA_TOKEN), yes), (CK_ATTRIBUTE_TYPE(CKA_PRIVATE), yes),
            (CK_ATTRIBUTE_TYPE(CKA_SENSITIVE), yes), (CK_ATTRIBUTE_TYPE(CKA_EXTRACTABLE), no),
            (CK_ATTRIBUTE_TYPE(CKA_ENCRYPT), yes), (CK_ATTRIBUTE_TYPE(CKA_DECRYPT), yes),
            (CK_ATTRIBUTE_TYPE(CKA_WRAP), yes), (CK_ATTRIBUTE_TYPE(CKA_UNWRAP), yes),
            (CK_ATTRIBUTE_TYPE(CKA_SIGN), no), (CK_ATTRIBUTE_TYPE(CKA_VERIFY), no),
        ]
        var mechanism = CK_MECHANISM(mechanism: CK_MECHANISM_TYPE(CKM_AES_KEY_GEN), pParameter: nil, ulParameterLen: 0)
        var key: CK_OBJECT_HANDLE = 0
        try withTemplate(template) { attributes, count in
            try module.check("C_GenerateKey", generate(session, &mechanism, attributes, count, &key))
        }
    }

    static func ulong<T: BinaryInteger>(_ value: T) -> [UInt8] {
        withUnsafeBytes(of: CK_ULONG(value)) { Array($0) }
    }

    /// Calls `body` with a CK_ATTRIBUTE array whose values point at copies of `items`' bytes, valid for the call.
    static func withTemplate<R>(
        _ items: [(CK_ATTRIBUTE_TYPE, [UInt8])], _ body: (UnsafeMutablePointer<CK_ATTRIBUTE>, CK_ULONG) throws -> R
    ) throws -> R {
        let total = items.reduce(0) { $0 + $1.1.count }
        let storage = UnsafeMutableRawBufferPointer.allocate(byteCount: max(total, 1), alignment: 16)
        defer { storage.deallocate() }
        var attributes: [CK_ATTRIBUTE] = []
        var offset = 0
        for (type, value) in items {
            let slice = UnsafeMutableRawBufferPointer(rebasing: storage[offset..<(offset + value.count)])
            slice.copyBytes(from: value)
            attributes.append(
                CK_ATTRIBUTE(type: type, pValue: slice.baseAddress, ulValueLen: CK_ULONG(value.count)))
            offset += value.count
        }
        return try attributes.withUnsafeMutableBufferPointer { buffer in
            guard let base = buffer.baseAddress else { throw EngineError(.internal, "empty PKCS#11 template") }
            return try body(base, CK_ULONG(buffer.count))
        }
    }
}

/// The root key from a PKCS#11 token (`root_key.source = "pkcs11"`).
public struct PKCS11RootKeyProvider: RootKeyProvider {
    public var uri: PKCS11URI
    public init(uri: PKCS11URI) { self.uri = uri }
    public var sourceDescription: String {
        "PKCS#11 key \"\(uri.keyLabel)\" in \(uri.tokenDescription) (\(uri.modulePath))"
    }
    public func loadRootKey() throws -> any RootKey { try PKCS11RootKey(uri: uri) }
    public var descriptor: String? { uri.description }
}
