import CPKCS11
import Crypto
import Engine
import EngineAPI
import Foundation
import StorageAPI
import Testing

@testable import HSM

/// SoftHSM2 (Debian's `softhsm2`) in a token directory of this test process. SoftHSM reads SOFTHSM2_CONF once, when
/// the module is initialised, so every test shares one directory and uses tokens of its own, all made up front.
enum SoftHSM {
    static let module = "/usr/lib/softhsm/libsofthsm2.so"
    static let pin = "4711-gatehouse"
    static let tokens = ["gh-engine", "gh-errors", "gh-wrap"]

    struct Setup: Sendable {
        var directory: String
        var pinFile: String
    }

    static let setup: Result<Setup, SetupError> = {
        let dir = NSTemporaryDirectory() + "gatehouse-softhsm-\(getpid())"
        try? FileManager.default.createDirectory(atPath: dir + "/tokens", withIntermediateDirectories: true)
        let conf = dir + "/softhsm2.conf"
        let text = "directories.tokendir = \(dir)/tokens\nobjectstore.backend = file\nlog.level = ERROR\n"
        FileManager.default.createFile(atPath: conf, contents: Data(text.utf8))
        // The only setenv of the test process, before the module is loaded; glibc's first setenv copies environ
        // to a new array and frees nothing, so threads reading the environment meanwhile are safe.
        setenv("SOFTHSM2_CONF", conf, 1)
        for label in tokens {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: "/usr/bin/softhsm2-util")
            p.arguments = ["--init-token", "--free", "--label", label, "--pin", pin, "--so-pin", "so-" + pin]
            p.standardOutput = FileHandle.nullDevice
            do {
                try p.run()
                p.waitUntilExit()
            } catch {
                return .failure(SetupError(message: "softhsm2-util cannot run (apt-get install softhsm2): \(error)"))
            }
            guard p.terminationStatus == 0 else {
                return .failure(SetupError(message: "softhsm2-util --init-token \(label) failed"))
            }
        }
        let pinFile = dir + "/pin"
        FileManager.default.createFile(
            atPath: pinFile, contents: Data((pin + "\n").utf8), attributes: [.posixPermissions: 0o600])
        return .success(Setup(directory: dir, pinFile: pinFile))
    }()

    struct SetupError: Error, CustomStringConvertible {
        var message: String
        var description: String { message }
    }

    static func uri(token: String, key: String, pinFile: String? = nil) throws -> PKCS11URI {
        let setup = try setup.get()
        return PKCS11URI(tokenLabel: token, keyLabel: key, modulePath: module, pin: .file(pinFile ?? setup.pinFile))
    }
}

@Suite(.serialized) struct PKCS11RootKeyTests {
    @Test func uriParsing() throws {
        let uri = try PKCS11URI(
            parsing:
                "pkcs11:token=my%20token;object=root?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-source=file:/etc/gh/pin"
        )
        #expect(uri.tokenLabel == "my token")
        #expect(uri.keyLabel == "root")
        #expect(uri.modulePath == "/usr/lib/softhsm/libsofthsm2.so")
        #expect(uri.pin == .file("/etc/gh/pin"))
        #expect(try PKCS11URI(parsing: uri.description) == uri)
        let env = try PKCS11URI(parsing: "pkcs11:serial=abc;object=k?module-path=/m.so&pin-source=env:HSM_PIN")
        #expect(env.tokenSerial == "abc" && env.tokenLabel == nil && env.pin == .environment("HSM_PIN"))
        let refused: [(String, String)] = [
            ("pkcs11:token=t;object=k?module-path=/m.so&pin-value=1234", "pin-value is not accepted"),
            ("pkcs11:token=t?module-path=/m.so&pin-source=env:P", "object=<key label> is required"),
            ("pkcs11:object=k?module-path=/m.so&pin-source=env:P", "token=<label> or serial=<serial>"),
            ("pkcs11:token=t;object=k?pin-source=env:P", "module-path"),
            ("pkcs11:token=t;object=k?module-path=/m.so", "pin-source"),
            ("pkcs11:token=t;object=k;slot=3?module-path=/m.so&pin-source=env:P", "unknown attribute slot"),
            ("pkcs11:token=t;token=u;object=k?module-path=/m.so&pin-source=env:P", "token is given twice"),
            ("file:/x", "must start with pkcs11:"),
        ]
        for (text, message) in refused {
            #expect(throws: EngineError.self, "\(text)") { try PKCS11URI(parsing: text) }
            do { _ = try PKCS11URI(parsing: text) } catch let e as EngineError {
                #expect(e.message.contains(message), "\(text): \(e.message)")
            }
        }
    }

    @Test func keyIsGeneratedInTheTokenAndNeverLeavesIt() throws {
        let uri = try SoftHSM.uri(token: "gh-wrap", key: "root-wrap")
        try PKCS11RootKey.generate(uri: uri)
        #expect { try PKCS11RootKey.generate(uri: uri) } throws: { ($0 as? EngineError)?.code == .alreadyExists }
        let root = try PKCS11RootKey(uri: uri)
        let dek = Data((0..<32).map { UInt8($0) })
        let aad = Data("gatehouse:v1:dek:dek-initial".utf8)
        let wrapped = try root.wrap(dek, aad: aad)
        #expect(wrapped.count == 12 + 32 + 16)
        #expect(try root.unwrap(wrapped, aad: aad) == dek)
        #expect(try root.wrap(dek, aad: aad) != wrapped)  // a fresh nonce each time
        // Bound to its associated data, and authenticated.
        #expect { try root.unwrap(wrapped, aad: Data("gatehouse:v1:dek:other".utf8)) } throws: {
            ($0 as? EngineError)?.code == .cryptographicFailure
        }
        var flipped = wrapped
        flipped[20] ^= 1
        #expect { try root.unwrap(flipped, aad: aad) } throws: { ($0 as? EngineError)?.code == .cryptographicFailure }
        // A second instance (another process, a restart) opens what the first sealed.
        #expect(try PKCS11RootKey(uri: uri).unwrap(wrapped, aad: aad) == dek)

        // The token refuses to reveal the key: CKA_VALUE is sensitive, and the key is not extractable.
        let state = try PKCS11RootKey.openSession(root.module, uri, Array(SoftHSM.pin.utf8), readWrite: false)
        defer { _ = root.module.functions.pointee.C_CloseSession?(state.0) }
        let handles = try PKCS11RootKey.findKeys(root.module, state.0, label: uri.keyLabel)
        #expect(handles.count == 1)
        var value = [UInt8](repeating: 0, count: 64)
        var extractable: CK_BBOOL = 1
        var sensitive: CK_BBOOL = 0
        let rv = value.withUnsafeMutableBytes { v in
            var attribute = CK_ATTRIBUTE(
                type: CK_ATTRIBUTE_TYPE(CKA_VALUE), pValue: v.baseAddress, ulValueLen: CK_ULONG(v.count))
            return root.module.functions.pointee.C_GetAttributeValue?(state.0, handles[0], &attribute, 1)
        }
        #expect(rv == CK_RV(CKR_ATTRIBUTE_SENSITIVE))
        #expect(value.allSatisfy { $0 == 0 })
        try withUnsafeMutableBytes(of: &extractable) { e in
            try withUnsafeMutableBytes(of: &sensitive) { s in
                var attributes = [
                    CK_ATTRIBUTE(type: CK_ATTRIBUTE_TYPE(CKA_EXTRACTABLE), pValue: e.baseAddress, ulValueLen: 1),
                    CK_ATTRIBUTE(type: CK_ATTRIBUTE_TYPE(CKA_SENSITIVE), pValue: s.baseAddress, ulValueLen: 1),
                ]
                try root.module.check(
                    "C_GetAttributeValue",
                    root.module.functions.pointee.C_GetAttributeValue?(state.0, handles[0], &attributes, 2)
                        ?? CK_RV(CKR_GENERAL_ERROR))
            }
        }
        #expect(extractable == 0 && sensitive == 1)
    }

    @Test func failsClosedWithAClearReason() throws {
        let setup = try SoftHSM.setup.get()
        let good = try SoftHSM.uri(token: "gh-errors", key: "root-errors")
        try PKCS11RootKey.generate(uri: good)
        _ = try PKCS11RootKey(uri: good)

        func refusal(_ uri: PKCS11URI, environment: [String: String] = [:]) -> String {
            do {
                _ = try PKCS11RootKey(uri: uri, environment: environment)
                return "loaded"
            } catch let e as EngineError {
                #expect(e.code == .unavailable)
                return e.message
            } catch { return "\(error)" }
        }
        let wrongPIN = setup.directory + "/wrong-pin"
        FileManager.default.createFile(
            atPath: wrongPIN, contents: Data("0000\n".utf8), attributes: [.posixPermissions: 0o600])
        #expect(refusal(try SoftHSM.uri(token: "gh-errors", key: "root-errors", pinFile: wrongPIN)).contains("wrong"))
        #expect(refusal(try SoftHSM.uri(token: "gh-errors", key: "no-such-key")).contains("no AES key labelled"))
        #expect(
            refusal(try SoftHSM.uri(token: "no-such-token", key: "k")).contains("no PKCS#11 token \"no-such-token\""))
        var missingModule = good
        missingModule.modulePath = "/nonexistent/libpkcs11.so"
        #expect(refusal(missingModule).contains("does not exist"))
        var notAModule = good
        notAModule.modulePath = "/etc/hostname"
        #expect(refusal(notAModule).contains("cannot be loaded"))
        let open = setup.directory + "/open-pin"
        FileManager.default.createFile(
            atPath: open, contents: Data(SoftHSM.pin.utf8), attributes: [.posixPermissions: 0o644])
        #expect(refusal(try SoftHSM.uri(token: "gh-errors", key: "root-errors", pinFile: open)).contains("chmod 600"))
        var fromEnv = good
        fromEnv.pin = .environment("GATEHOUSE_TEST_HSM_PIN")
        #expect(refusal(fromEnv).contains("is not set"))
        #expect(refusal(fromEnv, environment: ["GATEHOUSE_TEST_HSM_PIN": SoftHSM.pin]) == "loaded")
    }

    @Test func engineKeepsEverythingReadableAcrossRestartsAndRootMoves() async throws {
        let uri = try SoftHSM.uri(token: "gh-engine", key: "root-engine")
        try PKCS11RootKey.generate(uri: uri)
        let storage = InMemoryStorage()
        let admin = CallContext(
            principal: Principal(method: .tlsCertificate, id: "fp-admin", name: "admin", verifiedByListener: true),
            frontEnd: "test")
        func open(_ provider: any RootKeyProvider) async throws -> GatehouseEngine {
            try await GatehouseEngine.open(storage: storage, rootKey: provider, bootstrapAdmins: ["admin"])
        }
        let first = try await open(PKCS11RootKeyProvider(uri: uri))
        _ = try await first.createProject(admin, slug: "p", description: "")
        _ = try await first.createSecret(admin, project: "p", name: "s", value: SecretBytes(utf8: "kept in the HSM"))
        // The data key is wrapped by the token, not by any key this process holds.
        let dek = try await storage.withTransaction { try await $0.get(kind: "datakey", id: "dek-initial") }
        let wrapped = try #require(dek?.body)
        #expect(
            try PKCS11RootKey(uri: uri).unwrap(wrapped, aad: Data("gatehouse:v1:dek:dek-initial".utf8)).count == 32)

        // A restart (a new engine, a new session on the token) reads it back; a file key cannot open the store.
        let second = try await open(PKCS11RootKeyProvider(uri: uri))
        #expect(try await second.readSecret(admin, project: "p", name: "s").1 == SecretBytes(utf8: "kept in the HSM"))
        let other = SymmetricKey(size: .bits256)
        await #expect { _ = try await open(StaticRootKeyProvider(other)) } throws: {
            ($0 as? EngineError)?.code == .cryptographicFailure
        }

        // Moving the root out of the token and back in.
        #expect(try await second.rotateRootKey(to: StaticRootKeyProvider(other)) == 1)
        let software = try await open(StaticRootKeyProvider(other))
        #expect(try await software.readSecret(admin, project: "p", name: "s").1 == SecretBytes(utf8: "kept in the HSM"))
        await #expect(throws: EngineError.self) { _ = try await open(PKCS11RootKeyProvider(uri: uri)) }
        #expect(try await software.rotateRootKey(to: PKCS11RootKeyProvider(uri: uri)) == 1)
        let back = try await open(PKCS11RootKeyProvider(uri: uri))
        #expect(try await back.readSecret(admin, project: "p", name: "s").1 == SecretBytes(utf8: "kept in the HSM"))
        #expect(try await back.verifyAudit(admin).isIntact)
    }
}
