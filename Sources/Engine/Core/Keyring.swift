import Crypto
import EngineAPI
import Foundation
import StorageAPI
import Synchronization

/// Envelope encryption at rest.
///
/// The root key (KEK) wraps data keys (DEKs); each DEK is a `datakey` record whose body holds the DEK sealed
/// with AES-256-GCM under the root key, bound to the DEK's id. Secrets are sealed with AES-256-GCM under a DEK
/// with associated data naming the record and field they belong to, so a ciphertext copied to another row,
/// field or store fails to open.
///
/// Sealed format: `0x01 | len(dekID) (1 byte) | dekID | nonce (12) | ciphertext | tag (16)`.
public final class Keyring: Sendable {
    static let formatVersion: UInt8 = 1
    static let dekKind = "datakey"
    static let systemKind = "system"
    static let initialDEK = "dek-initial"
    static let rootCheckID = "root-key-check"
    static let rootCheckPlaintext = Data("gatehouse root key check v1".utf8)

    private let rootKey: Mutex<any RootKey>
    private let cache = Mutex<[String: SymmetricKey]>([:])

    init(rootKey: any RootKey) {
        self.rootKey = Mutex(rootKey)
    }

    static func rootCheckAAD() -> Data { Data("gatehouse:v1:root-key-check".utf8) }
    static func dekAAD(_ id: String) -> Data { Data("gatehouse:v1:dek:\(id)".utf8) }
    static func fieldAAD(_ binding: String) -> Data { Data("gatehouse:v1:field:\(binding)".utf8) }

    static func rawSeal(_ plaintext: Data, key: SymmetricKey, aad: Data) throws -> Data {
        let box = try AES.GCM.seal(plaintext, using: key, authenticating: aad)
        guard let combined = box.combined else { throw EngineError(.internal, "AES-GCM produced no output") }
        return combined
    }

    static func rawOpen(_ sealed: Data, key: SymmetricKey, aad: Data) throws -> Data {
        let box = try AES.GCM.SealedBox(combined: sealed)
        return try AES.GCM.open(box, using: key, authenticating: aad)
    }

    /// Checks the root key against the store, creating the check value and the first data key in a new store.
    /// Safe when several nodes start together: creation races end in a unique violation and a re-read.
    func bootstrap(_ storage: any Storage) async throws {
        let key = rootKey.withLock { $0 }
        for _ in 0..<3 {
            do {
                try await storage.withTransaction { tx in
                    if let check = try await tx.get(kind: Self.systemKind, id: Self.rootCheckID) {
                        guard
                            (try? key.unwrap(check.body, aad: Self.rootCheckAAD())) == Self.rootCheckPlaintext
                        else {
                            throw EngineError(
                                .cryptographicFailure,
                                "the root key does not match this store (wrong key file or environment variable?)")
                        }
                    } else {
                        let body = try key.wrap(Self.rootCheckPlaintext, aad: Self.rootCheckAAD())
                        try await tx.insert(Record(kind: Self.systemKind, id: Self.rootCheckID, body: body))
                    }
                    if try await tx.get(kind: Self.dekKind, id: Self.initialDEK) == nil {
                        let dek = SymmetricKey(size: .bits256)
                        let wrapped = try dek.withUnsafeBytes {
                            try key.wrap(Data($0), aad: Self.dekAAD(Self.initialDEK))
                        }
                        try await tx.insert(Record(kind: Self.dekKind, id: Self.initialDEK, body: wrapped))
                    }
                }
                return
            } catch let error as StorageError where error.code == .uniqueViolation {
                continue  // another node created them first; check again
            }
        }
    }

    private func dataKey(_ id: String, _ tx: any StorageTransaction) async throws -> SymmetricKey {
        try await dataKey(id) { try await tx.get(kind: Self.dekKind, id: $0) }
    }

    /// The data key `id`: from the cache, or unwrapped from the record `fetch` reads.
    private func dataKey(_ id: String, fetch: (String) async throws -> Record?) async throws -> SymmetricKey {
        if let cached = cache.withLock({ $0[id] }) { return cached }
        guard let record = try await fetch(id) else {
            throw EngineError(.cryptographicFailure, "data key missing", diagnostic: "no datakey \(id)")
        }
        let key = rootKey.withLock { $0 }
        let raw: Data
        do {
            raw = try key.unwrap(record.body, aad: Self.dekAAD(id))
        } catch let e as EngineError where e.code == .unavailable {
            throw e  // the token is unreachable: say so, not "cannot unwrap"
        } catch {
            throw EngineError(.cryptographicFailure, "cannot unwrap data key", diagnostic: "datakey \(id): \(error)")
        }
        let dek = SymmetricKey(data: raw)
        cache.withLock { $0[id] = dek }
        return dek
    }

    /// Seals `plaintext` under the active data key, bound to `binding` (e.g. `secret/<id>/value`).
    func seal(_ plaintext: [UInt8], binding: String, _ tx: any StorageTransaction) async throws -> Data {
        let id = Self.initialDEK
        let dek = try await dataKey(id, tx)
        let idBytes = Data(id.utf8)
        var out = Data([Self.formatVersion, UInt8(idBytes.count)])
        out.append(idBytes)
        out.append(try Self.rawSeal(Data(plaintext), key: dek, aad: Self.fieldAAD(binding)))
        return out
    }

    /// Opens what `seal` produced for the same binding.
    func open(_ sealed: Data, binding: String, _ tx: any StorageTransaction) async throws -> [UInt8] {
        try await open(sealed, binding: binding) { try await tx.get(kind: Self.dekKind, id: $0) }
    }

    /// Like `open(_:binding:_:)` outside a transaction: the store is read (in a read transaction of its own) only
    /// when the data key is not cached yet, which saves a reads' connection lease per KMIP Get.
    func open(_ sealed: Data, binding: String, reading storage: any Storage) async throws -> [UInt8] {
        try await open(sealed, binding: binding) { id in
            try await storage.withReadTransaction { tx in try await tx.get(kind: Self.dekKind, id: id) }
        }
    }

    private func open(_ sealed: Data, binding: String, fetch: (String) async throws -> Record?) async throws -> [UInt8]
    {
        let bytes = [UInt8](sealed)
        guard bytes.count > 2, bytes[0] == Self.formatVersion else {
            throw EngineError(.cryptographicFailure, "stored ciphertext has an unknown format")
        }
        let idLength = Int(bytes[1])
        guard bytes.count >= 2 + idLength + 12 + 16 else {
            throw EngineError(.cryptographicFailure, "stored ciphertext is truncated")
        }
        let id = String(decoding: bytes[2..<(2 + idLength)], as: UTF8.self)
        let dek = try await dataKey(id, fetch: fetch)
        do {
            return [UInt8](try Self.rawOpen(Data(bytes[(2 + idLength)...]), key: dek, aad: Self.fieldAAD(binding)))
        } catch {
            throw EngineError(
                .cryptographicFailure, "stored ciphertext does not authenticate", diagnostic: "\(binding)")
        }
    }

    /// Re-wraps every data key and the root-key check under `newKey`, in one transaction. The caller persists
    /// the new key before calling and removes the old one only after this returns.
    func rotateRootKey(to newKey: any RootKey, _ storage: any Storage) async throws -> Int {
        let oldKey = rootKey.withLock { $0 }
        let count = try await storage.withTransaction { tx -> Int in
            guard let check = try await tx.get(kind: Self.systemKind, id: Self.rootCheckID),
                (try? oldKey.unwrap(check.body, aad: Self.rootCheckAAD())) == Self.rootCheckPlaintext
            else { throw EngineError(.cryptographicFailure, "the current root key does not match this store") }
            var n = 0
            var after: String?
            while true {
                let page = try await tx.list(kind: Self.dekKind, scope: "", afterID: after, limit: 100)
                for var record in page {
                    let raw = try oldKey.unwrap(record.body, aad: Self.dekAAD(record.id))
                    record.body = try newKey.wrap(raw, aad: Self.dekAAD(record.id))
                    record.updatedAt = Date()
                    _ = try await tx.update(record)
                    n += 1
                }
                guard page.count == 100 else { break }
                after = page.last?.id
            }
            var newCheck = check
            newCheck.body = try newKey.wrap(Self.rootCheckPlaintext, aad: Self.rootCheckAAD())
            _ = try await tx.update(newCheck)
            return n
        }
        rootKey.withLock { $0 = newKey }
        return count
    }
}
