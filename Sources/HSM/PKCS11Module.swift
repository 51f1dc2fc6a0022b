import CPKCS11
import EngineAPI
import Foundation
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// A PKCS#11 module (an HSM vendor's library, or SoftHSM2) loaded at run time.
///
/// Hand-written because no Swift package on this machine binds PKCS#11: it is a thin layer over the C function
/// list (`C_GetFunctionList`), typed by Debian's p11-kit header. A module is loaded and initialised once per
/// process (`C_Initialize` is process-wide) and never unloaded; it is told to use the operating system's locking,
/// so its sessions may be used from any thread (each `PKCS11Session` is used under a lock of its own).
final class PKCS11Module: @unchecked Sendable {
    // @unchecked: `functions` points at the module's constant function table, valid while the module is loaded
    // (for the life of the process); the module itself is thread safe (initialised with CKF_OS_LOCKING_OK).
    let path: String
    let functions: UnsafeMutablePointer<CK_FUNCTION_LIST>

    private init(path: String, functions: UnsafeMutablePointer<CK_FUNCTION_LIST>) {
        self.path = path
        self.functions = functions
    }

    private static let loaded = Mutex<[String: PKCS11Module]>([:])

    /// The module at `path`, loaded and initialised on first use.
    static func load(_ path: String) throws -> PKCS11Module {
        try loaded.withLock { modules in
            if let module = modules[path] { return module }
            guard FileManager.default.fileExists(atPath: path) else {
                throw EngineError(.unavailable, "PKCS#11 module \(path) does not exist")
            }
            guard let handle = dlopen(path, RTLD_NOW | RTLD_LOCAL) else {
                let reason = dlerror().map { String(cString: $0) } ?? "unknown error"
                throw EngineError(.unavailable, "PKCS#11 module \(path) cannot be loaded: \(reason)")
            }
            guard let symbol = dlsym(handle, "C_GetFunctionList") else {
                dlclose(handle)
                throw EngineError(.unavailable, "\(path) is not a PKCS#11 module (no C_GetFunctionList)")
            }
            let getFunctionList = unsafeBitCast(symbol, to: CK_C_GetFunctionList.self)
            var list: UnsafeMutablePointer<CK_FUNCTION_LIST>?
            let rv = getFunctionList(&list)
            guard rv == CKR_OK, let list else {
                throw EngineError(.unavailable, "PKCS#11 module \(path): C_GetFunctionList failed (\(name(of: rv)))")
            }
            guard let initialize = list.pointee.C_Initialize else {
                throw EngineError(.unavailable, "PKCS#11 module \(path) has no C_Initialize")
            }
            var args = CK_C_INITIALIZE_ARGS()
            args.flags = CK_FLAGS(CKF_OS_LOCKING_OK)
            let initRV = withUnsafeMutablePointer(to: &args) { initialize(UnsafeMutableRawPointer($0)) }
            guard initRV == CKR_OK || initRV == CKR_CRYPTOKI_ALREADY_INITIALIZED else {
                throw EngineError(.unavailable, "PKCS#11 module \(path): C_Initialize failed (\(name(of: initRV)))")
            }
            let module = PKCS11Module(path: path, functions: list)
            modules[path] = module
            return module
        }
    }

    /// A token present in one of the module's slots.
    struct Token {
        var slot: CK_SLOT_ID
        var label: String
        var serial: String
        var flags: CK_FLAGS
    }

    /// Every slot's token.
    func tokens() throws -> [Token] {
        guard let getSlotList = functions.pointee.C_GetSlotList,
            let getTokenInfo = functions.pointee.C_GetTokenInfo
        else { throw EngineError(.unavailable, "PKCS#11 module \(path) lacks C_GetSlotList") }
        var count: CK_ULONG = 0
        try check("C_GetSlotList", getSlotList(CK_BBOOL(CK_TRUE), nil, &count))
        var slots = [CK_SLOT_ID](repeating: 0, count: Int(count))
        try check("C_GetSlotList", getSlotList(CK_BBOOL(CK_TRUE), &slots, &count))
        return try slots.prefix(Int(count)).map { slot in
            var info = CK_TOKEN_INFO()
            try check("C_GetTokenInfo", getTokenInfo(slot, &info))
            return Token(
                slot: slot, label: Self.padded(info.label), serial: Self.padded(info.serialNumber), flags: info.flags)
        }
    }

    /// A blank-padded fixed-size PKCS#11 text field as a string.
    static func padded<T>(_ field: T) -> String {
        withUnsafeBytes(of: field) { raw in
            String(decoding: raw, as: UTF8.self).trimmingCharacters(in: CharacterSet(charactersIn: " \0"))
        }
    }

    /// Whether the token in `slot` offers `mechanism` for both `flags` (e.g. encrypt and decrypt).
    func supports(slot: CK_SLOT_ID, mechanism: CK_MECHANISM_TYPE, flags: CK_FLAGS) -> Bool {
        guard let getInfo = functions.pointee.C_GetMechanismInfo else { return false }
        var info = CK_MECHANISM_INFO()
        return getInfo(slot, mechanism, &info) == CKR_OK && info.flags & flags == flags
    }

    func check(_ function: String, _ rv: CK_RV) throws {
        guard rv == CKR_OK else { throw PKCS11Error(function: function, rv: rv) }
    }

    /// The standard's name of a return value, for messages.
    static func name(of rv: CK_RV) -> String { PKCS11Error.names[rv] ?? "CKR 0x" + String(rv, radix: 16) }
}

/// A failed PKCS#11 call.
struct PKCS11Error: Error, CustomStringConvertible {
    var function: String
    var rv: CK_RV
    var description: String { "\(function) failed (\(PKCS11Module.name(of: rv)))" }

    static let names: [CK_RV: String] = [
        CK_RV(CKR_OK): "CKR_OK", CK_RV(CKR_GENERAL_ERROR): "CKR_GENERAL_ERROR",
        CK_RV(CKR_ARGUMENTS_BAD): "CKR_ARGUMENTS_BAD", CK_RV(CKR_DEVICE_ERROR): "CKR_DEVICE_ERROR",
        CK_RV(CKR_DEVICE_REMOVED): "CKR_DEVICE_REMOVED",
        CK_RV(CKR_ENCRYPTED_DATA_INVALID): "CKR_ENCRYPTED_DATA_INVALID",
        CK_RV(CKR_KEY_HANDLE_INVALID): "CKR_KEY_HANDLE_INVALID",
        CK_RV(CKR_MECHANISM_INVALID): "CKR_MECHANISM_INVALID",
        CK_RV(CKR_MECHANISM_PARAM_INVALID): "CKR_MECHANISM_PARAM_INVALID",
        CK_RV(CKR_PIN_INCORRECT): "CKR_PIN_INCORRECT", CK_RV(CKR_PIN_LOCKED): "CKR_PIN_LOCKED",
        CK_RV(CKR_SESSION_CLOSED): "CKR_SESSION_CLOSED",
        CK_RV(CKR_SESSION_HANDLE_INVALID): "CKR_SESSION_HANDLE_INVALID",
        CK_RV(CKR_TOKEN_NOT_PRESENT): "CKR_TOKEN_NOT_PRESENT",
        CK_RV(CKR_TOKEN_NOT_RECOGNIZED): "CKR_TOKEN_NOT_RECOGNIZED",
        CK_RV(CKR_USER_NOT_LOGGED_IN): "CKR_USER_NOT_LOGGED_IN",
        CK_RV(CKR_USER_ALREADY_LOGGED_IN): "CKR_USER_ALREADY_LOGGED_IN",
        CK_RV(CKR_USER_PIN_NOT_INITIALIZED): "CKR_USER_PIN_NOT_INITIALIZED",
        CK_RV(CKR_TEMPLATE_INCONSISTENT): "CKR_TEMPLATE_INCONSISTENT",
        CK_RV(CKR_ATTRIBUTE_VALUE_INVALID): "CKR_ATTRIBUTE_VALUE_INVALID",
        CK_RV(CKR_BUFFER_TOO_SMALL): "CKR_BUFFER_TOO_SMALL",
        CK_RV(CKR_CRYPTOKI_NOT_INITIALIZED): "CKR_CRYPTOKI_NOT_INITIALIZED",
        CK_RV(CKR_DATA_LEN_RANGE): "CKR_DATA_LEN_RANGE", CK_RV(CKR_FUNCTION_FAILED): "CKR_FUNCTION_FAILED",
    ]

    /// Errors after which the session is gone (the token was removed or reset) and a new one may work.
    var sessionLost: Bool {
        [
            CKR_SESSION_CLOSED, CKR_SESSION_HANDLE_INVALID, CKR_DEVICE_REMOVED, CKR_TOKEN_NOT_PRESENT,
            CKR_USER_NOT_LOGGED_IN, CKR_KEY_HANDLE_INVALID, CKR_DEVICE_ERROR,
        ]
        .map { CK_RV($0) }.contains(rv)
    }
}
