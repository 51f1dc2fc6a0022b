import ArgumentParser
import Daemon
import DaemonConfig
import Engine
import EngineAPI
import Foundation
import HSM

struct RotateRootKey: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rotate-root-key",
        abstract: "Re-wrap every data key under a new root key (stop the daemons sharing the store first).",
        discussion: """
            Without --to, a new key of the same kind: with a key file, writes <file>.new (0600), re-wraps in one \
            transaction, then renames it over the old file (if interrupted after the re-wrap, the next start or \
            rotation finishes the rename); with an environment key, give the new key's variable with --new-key-env.
            With --to, moves the root elsewhere; then set root_key on every node as the command says:
              --to 'pkcs11:token=T;object=K?module-path=/path/module.so&pin-source=file:/path/pin'   a key in an HSM \
            (create it first with `gatehouse root-key create --uri …`)
              --to file:/path/new.key   a new key file (created, mode 0600; it must not exist)
              --to env:NAME             the key in variable NAME
            """)
    @OptionGroup var options: ConfigOptions
    @Option(help: "Environment variable holding the new key (for root_key.source = \"env\").") var newKeyEnv: String?
    @Option(help: "The new root: a PKCS#11 URI, file:PATH or env:NAME.") var to: String?

    func run() async throws {
        let config = try options.load()
        do {
            // A daemon on this data directory would keep the old root key and fail on every data key re-wrapped
            // under its feet: hold the directory's lock for the whole rotation (daemons on other hosts sharing a
            // PostgreSQL store cannot be seen from here; stop those by hand).
            let lock: DataDirectoryLock
            do { lock = try DataDirectoryLock.acquire(dataDirectory: config.dataDirectory) } catch let e as DaemonError
            {
                throw DaemonError("\(e.description); stop it before rotating the root key")
            }
            defer { lock.release() }
            if let to {
                try await rotate(config, to: to)
                return
            }
            try await StoreFactory.withEngine(config, logger: quietLogger()) { engine in
                switch config.rootKey {
                case .file(let path):
                    let next = path + ".new"
                    unlink(next)
                    try FileRootKeyProvider.create(path: next)
                    let n = try await engine.rotateRootKey(to: FileRootKeyProvider(path: next))
                    guard rename(next, path) == 0 else {
                        fail("re-wrapped under \(next) but cannot rename it to \(path)")
                    }
                    print("root key rotated: \(n) data keys re-wrapped; new key in \(path)")
                case .environment:
                    guard let variable = newKeyEnv else {
                        throw ValidationError("--new-key-env is required when the root key comes from the environment")
                    }
                    let n = try await engine.rotateRootKey(to: EnvironmentRootKeyProvider(variable: variable))
                    print(
                        "root key rotated: \(n) data keys re-wrapped; set the root key variable to the value of \(variable)"
                    )
                case .pkcs11:
                    throw ValidationError(
                        "the root key is in a PKCS#11 token: give the new root with --to (create a new key first)")
                }
            }
        } catch let e as DaemonError {
            fail(e.description)
        } catch let e as EngineError {
            fail(e.message)
        }
    }

    /// Moves the root to `target` (a PKCS#11 URI, file:PATH or env:NAME) and says how to configure the nodes.
    func rotate(_ config: GatehouseConfiguration, to target: String) async throws {
        let source: RootKeySource
        var createdFile: String?
        if target.lowercased().hasPrefix("pkcs11:") {
            source = .pkcs11(uri: target)
        } else if target.hasPrefix("file:") {
            let path = String(target.dropFirst("file:".count))
            guard path.hasPrefix("/") else { throw ValidationError("--to file:PATH needs an absolute path") }
            if case .file(let current) = config.rootKey, current == path {
                throw ValidationError("\(path) is the current root key file")
            }
            guard !FileManager.default.fileExists(atPath: path) else {
                throw ValidationError("\(path) exists; --to file: creates a new key file")
            }
            source = .file(path: path)
            createdFile = path
        } else if target.hasPrefix("env:"), target.count > 4 {
            source = .environment(variable: String(target.dropFirst(4)))
        } else {
            throw ValidationError("--to must be a PKCS#11 URI (pkcs11:…), file:PATH or env:NAME")
        }
        guard source != config.rootKey else { throw ValidationError("--to names the current root key") }
        let provider = try StoreFactory.rootKeyProvider(source)
        if let createdFile { try FileRootKeyProvider.create(path: createdFile) }
        let n: Int
        do {
            n = try await StoreFactory.withEngine(config, logger: quietLogger()) { engine in
                try await engine.rotateRootKey(to: provider)
            }
        } catch {
            if let createdFile { unlink(createdFile) }
            throw error
        }
        print("root key moved: \(n) data keys re-wrapped under the \(provider.sourceDescription)")
        print("set on every node before it starts again:")
        switch source {
        case .pkcs11(let uri):
            print("  GATEHOUSE_ROOT_KEY_SOURCE=pkcs11 GATEHOUSE_ROOT_KEY_PKCS11='\(uri)'")
            print("  ([root_key] source = \"pkcs11\", pkcs11 = \"\(uri)\")")
        case .file(let path):
            print("  GATEHOUSE_ROOT_KEY_SOURCE=file GATEHOUSE_ROOT_KEY_FILE=\(path)")
            print("  ([root_key] source = \"file\", file = \"\(path)\")")
        case .environment(let variable):
            print("  GATEHOUSE_ROOT_KEY_SOURCE=env GATEHOUSE_ROOT_KEY_ENV=\(variable)")
            print("  ([root_key] source = \"env\", env = \"\(variable)\")")
        }
        if case .file(let old) = config.rootKey {
            print("the old key file \(old) no longer opens the store; destroy it once no backup needs it")
        }
    }
}

/// `gatehouse root-key create`: makes the root key in a PKCS#11 token.
struct RootKeyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "root-key", abstract: "Root keys held in an HSM.", subcommands: [Create.self])

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Generate the root key inside a PKCS#11 token (AES-256, sensitive, never extractable).",
            discussion: """
                The URI names the token, the key's label, the module and the PIN's source (a file or a variable; \
                never the PIN itself), e.g.
                  gatehouse root-key create --uri \
                'pkcs11:token=gatehouse;object=gatehouse-root?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-source=file:/etc/gatehouse/hsm.pin'
                Without --uri, root_key.pkcs11 of the configuration. Fails if the token holds a key of that label.
                """)
        @OptionGroup var options: ConfigOptions
        @Option(help: "A PKCS#11 URI (default: root_key.pkcs11 of the configuration).") var uri: String?

        func run() async throws {
            let text: String
            if let uri {
                text = uri
            } else if case .pkcs11(let configured) = try options.load().rootKey {
                text = configured
            } else {
                throw ValidationError("give --uri, or set root_key.source = \"pkcs11\" and root_key.pkcs11")
            }
            do {
                let parsed = try PKCS11URI(parsing: text)
                try PKCS11RootKey.generate(uri: parsed)
                print(
                    "created AES-256 root key \"\(parsed.keyLabel)\" in \(parsed.tokenDescription) (sensitive, not extractable)"
                )
            } catch let e as EngineError {
                fail(e.message)
            }
        }
    }
}
