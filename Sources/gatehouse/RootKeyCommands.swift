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
        abstract: "Move every data key to a new root key, online (the daemons keep serving).",
        discussion: """
            With --to, moves the root while every node sharing the store serves: the store announces the switch, \
            every node loads the new root too (each must be able to: the same PKCS#11 URI and PIN file, key file \
            path or variable), data keys are re-wrapped in batches, and the store then names the new root as \
            current. Interrupted (even by kill -9), run the same command again: it finishes. Afterwards set root_key \
            on every node as the command says (a node still configured with the old root finds the new one through \
            the store, and says so in its log).
              --to 'pkcs11:token=T;object=K?module-path=/path/module.so&pin-source=file:/path/pin'   a key in an HSM \
            (create it first with `gatehouse root-key create --uri …`)
              --to file:/path/new.key   a new key file (created, mode 0600, if it does not exist)
              --to env:NAME             the key in variable NAME
            Without --to, a new key of the same kind: a key file gets <file>.new, then the rename over the old file \
            (stop the daemons of this data directory first); an environment key needs --new-key-env.
            """)
    @OptionGroup var options: ConfigOptions
    @Option(help: "Environment variable holding the new key (for root_key.source = \"env\").") var newKeyEnv: String?
    @Option(help: "The new root: a PKCS#11 URI, file:PATH or env:NAME.") var to: String?
    @Option(help: "Data keys re-wrapped per transaction.") var batch: Int = 100

    func run() async throws {
        let config = try options.load()
        guard batch >= 1 else { throw ValidationError("--batch must be at least 1") }
        do {
            if let to {
                try await rotate(config, to: to)
                return
            }
            switch config.rootKey {
            case .file(let path):
                // The old file is replaced at the end: a daemon of this data directory would be left naming a key
                // that is gone. Hold the directory's lock for the whole rotation.
                let lock: DataDirectoryLock
                do { lock = try DataDirectoryLock.acquire(dataDirectory: config.dataDirectory) } catch let e
                    as DaemonError
                {
                    throw DaemonError("\(e.description); stop it before rotating the root key (or use --to)")
                }
                defer { lock.release() }
                let next = path + ".new"
                // An interrupted rotation left its key: go on with it; otherwise a new one.
                if !FileManager.default.fileExists(atPath: next) { try FileRootKeyProvider.create(path: next) }
                let result = try await StoreFactory.withEngine(config, logger: quietLogger()) { engine in
                    let result = try await engine.switchRootKey(
                        to: FileRootKeyProvider(path: next), batch: batch, progress: Self.report)
                    guard rename(next, path) == 0 else {
                        throw DaemonError("re-wrapped under \(next) but cannot rename it to \(path)")
                    }
                    try await engine.renameRootKey(from: "file:" + next, to: "file:" + path)
                    return result
                }
                print("root key rotated: \(result.rewrapped) data keys re-wrapped; new key in \(path)")
            case .environment:
                guard let variable = newKeyEnv else {
                    throw ValidationError("--new-key-env is required when the root key comes from the environment")
                }
                let result = try await StoreFactory.withEngine(config, logger: quietLogger()) { engine in
                    try await engine.switchRootKey(
                        to: EnvironmentRootKeyProvider(variable: variable), batch: batch, progress: Self.report)
                }
                print(
                    "root key rotated: \(result.rewrapped) data keys re-wrapped; set the root key variable to the value of \(variable)"
                )
            case .pkcs11:
                throw ValidationError(
                    "the root key is in a PKCS#11 token: give the new root with --to (create a new key first)")
            }
        } catch let e as DaemonError {
            fail(e.description)
        } catch let e as EngineError {
            fail(e.message)
        }
    }

    /// One line per batch, written at once (a pipe would hold print's buffer).
    @Sendable static func report(_ rewrapped: Int, _ seen: Int) {
        FileHandle.standardOutput.write(Data("re-wrapped \(rewrapped) of \(seen) data keys so far\n".utf8))
    }

    /// Moves the root to `target` (a PKCS#11 URI, file:PATH or env:NAME) online and says how to configure the nodes.
    func rotate(_ config: GatehouseConfiguration, to target: String) async throws {
        let source: RootKeySource
        if target.lowercased().hasPrefix("pkcs11:") {
            source = .pkcs11(uri: target)
        } else if target.hasPrefix("file:") {
            let path = String(target.dropFirst("file:".count))
            guard path.hasPrefix("/") else { throw ValidationError("--to file:PATH needs an absolute path") }
            // A new key file, unless an interrupted run made it already.
            if !FileManager.default.fileExists(atPath: path) { try FileRootKeyProvider.create(path: path) }
            source = .file(path: path)
        } else if target.hasPrefix("env:"), target.count > 4 {
            source = .environment(variable: String(target.dropFirst(4)))
        } else {
            throw ValidationError("--to must be a PKCS#11 URI (pkcs11:…), file:PATH or env:NAME")
        }
        guard source != config.rootKey else { throw ValidationError("--to names the current root key") }
        let provider = try StoreFactory.rootKeyProvider(source)
        let result = try await StoreFactory.withEngine(config, logger: quietLogger()) { engine in
            try await engine.switchRootKey(to: provider, batch: batch, progress: Self.report)
        }
        print(
            "root key switched\(result.resumed ? " (resumed)" : ""): \(result.rewrapped) of \(result.total) data keys re-wrapped under the \(provider.sourceDescription)"
        )
        print("every node uses it now; set on each before it next starts:")
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

/// `gatehouse rotate-data-key`: a new active data key.
struct RotateDataKey: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rotate-data-key",
        abstract: "Make a new data key the one new values are sealed under (online; older values keep theirs).")
    @OptionGroup var options: ConfigOptions

    func run() async throws {
        let config = try options.load()
        do {
            let id = try await StoreFactory.withEngine(config, logger: quietLogger()) { try await $0.rotateDataKey() }
            print("data key rotated: new values are sealed under \(id) (on every node within 10 s)")
        } catch let e as DaemonError {
            fail(e.description)
        } catch let e as EngineError {
            fail(e.message)
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
