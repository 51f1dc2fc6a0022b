import Engine
import EngineAPI
import Foundation

/// A PKCS#11 URI (RFC 7512) naming the root key: the token (by label or serial), the key's label, the module to
/// load and where the PIN comes from, e.g.
/// `pkcs11:token=gatehouse;object=gatehouse-root?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-source=file:/etc/gatehouse/hsm.pin`.
///
/// The PIN is read from a file (`pin-source=file:PATH`, RFC 7512) or, a Gatehouse extension, an environment
/// variable (`pin-source=env:NAME`). `pin-value` is refused: a URI is often given on a command line, and a PIN must
/// never be in argv.
public struct PKCS11URI: Sendable, Hashable, CustomStringConvertible {
    /// The token's label (`token=`), or nil when the serial names it.
    public var tokenLabel: String?
    /// The token's serial number (`serial=`).
    public var tokenSerial: String?
    /// The label of the AES key (`object=`).
    public var keyLabel: String
    /// The module's path (`module-path=`).
    public var modulePath: String
    /// Where the PIN comes from.
    public var pin: PINSource

    public enum PINSource: Sendable, Hashable {
        case file(String)
        case environment(String)
    }

    /// The URI without secrets (it never holds one).
    public var description: String {
        var path: [String] = []
        if let tokenLabel { path.append("token=" + Self.encode(tokenLabel)) }
        if let tokenSerial { path.append("serial=" + Self.encode(tokenSerial)) }
        path.append("object=" + Self.encode(keyLabel))
        let pinSource: String
        switch pin {
        case .file(let file): pinSource = "file:" + file
        case .environment(let name): pinSource = "env:" + name
        }
        return "pkcs11:" + path.joined(separator: ";") + "?module-path=" + Self.encode(modulePath) + "&pin-source="
            + Self.encode(pinSource)
    }

    /// The token as people name it, for messages.
    public var tokenDescription: String {
        if let tokenLabel { return "token \"\(tokenLabel)\"" }
        return "token with serial \(tokenSerial ?? "")"
    }

    public init(
        tokenLabel: String?, tokenSerial: String? = nil, keyLabel: String, modulePath: String, pin: PINSource
    ) {
        self.tokenLabel = tokenLabel
        self.tokenSerial = tokenSerial
        self.keyLabel = keyLabel
        self.modulePath = modulePath
        self.pin = pin
    }

    /// Parses a URI; the error says which part is missing or wrong.
    public init(parsing text: String) throws {
        func bad(_ why: String) -> EngineError { EngineError(.invalidArgument, "PKCS#11 URI: \(why)") }
        guard text.lowercased().hasPrefix("pkcs11:") else { throw bad("must start with pkcs11:") }
        let rest = text.dropFirst("pkcs11:".count)
        let parts = rest.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false)
        var attributes: [String: String] = [:]
        func add(_ list: Substring.SubSequence, separator: Character) throws {
            for item in list.split(separator: separator) where !item.isEmpty {
                let kv = item.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
                guard kv.count == 2, let value = String(kv[1]).removingPercentEncoding else {
                    throw bad("\"\(item)\" is not name=value")
                }
                let name = kv[0].lowercased()
                guard attributes[name] == nil else { throw bad("\(name) is given twice") }
                attributes[name] = value
            }
        }
        try add(parts[0], separator: ";")
        if parts.count == 2 { try add(parts[1], separator: "&") }
        if attributes["pin-value"] != nil {
            throw bad("pin-value is not accepted (a URI may be seen in argv); use pin-source=file:PATH or env:NAME")
        }
        let known: Set = ["token", "serial", "object", "module-path", "pin-source", "type"]
        if let unknown = attributes.keys.sorted().first(where: { !known.contains($0) }) {
            throw bad("unknown attribute \(unknown) (known: token, serial, object, type, module-path, pin-source)")
        }
        if let type = attributes["type"], type != "secret-key" { throw bad("type must be secret-key") }
        guard let object = attributes["object"], !object.isEmpty else { throw bad("object=<key label> is required") }
        guard attributes["token"] != nil || attributes["serial"] != nil else {
            throw bad("token=<label> or serial=<serial> is required")
        }
        guard let module = attributes["module-path"], module.hasPrefix("/") else {
            throw bad("module-path=<absolute path of the PKCS#11 module> is required")
        }
        guard let source = attributes["pin-source"] else {
            throw bad("pin-source=file:PATH or pin-source=env:NAME is required")
        }
        let pin: PINSource
        if source.hasPrefix("file:") {
            var path = String(source.dropFirst("file:".count))
            if path.hasPrefix("//") { path = String(path.dropFirst(2)) }  // file:///path
            guard path.hasPrefix("/") else { throw bad("pin-source file must be an absolute path") }
            pin = .file(path)
        } else if source.hasPrefix("env:"), source.count > 4 {
            pin = .environment(String(source.dropFirst(4)))
        } else {
            throw bad("pin-source must be file:PATH or env:NAME")
        }
        self.init(
            tokenLabel: attributes["token"], tokenSerial: attributes["serial"], keyLabel: object, modulePath: module,
            pin: pin)
    }

    static func encode(_ s: String) -> String {
        var allowed = CharacterSet.alphanumerics
        allowed.insert(charactersIn: "-._~/:")
        return s.addingPercentEncoding(withAllowedCharacters: allowed) ?? s
    }

    /// Reads the PIN. A PIN file must not be readable by group or others; one trailing newline is ignored.
    func readPIN(environment: [String: String] = ProcessInfo.processInfo.environment) throws -> [UInt8] {
        switch pin {
        case .environment(let name):
            guard let value = environment[name], !value.isEmpty else {
                throw EngineError(.unavailable, "the PKCS#11 PIN variable \(name) is not set")
            }
            return Array(value.utf8)
        case .file(let path):
            let fm = FileManager.default
            guard let data = fm.contents(atPath: path) else {
                throw EngineError(.unavailable, "the PKCS#11 PIN file \(path) does not exist or is not readable")
            }
            try FileRootKeyProvider.requirePrivate(path, "the PKCS#11 PIN file")
            var bytes = [UInt8](data)
            if bytes.last == UInt8(ascii: "\n") { bytes.removeLast() }
            if bytes.last == UInt8(ascii: "\r") { bytes.removeLast() }
            guard !bytes.isEmpty else { throw EngineError(.unavailable, "the PKCS#11 PIN file \(path) is empty") }
            return bytes
        }
    }
}
