import Crypto
import EngineAPI
import Foundation
import StorageAPI
import Synchronization

/// Envelope encryption at rest.
///
/// The root key (KEK) wraps data keys (DEKs); each DEK is a `datakey` record whose body holds the DEK sealed
/// by the root key, bound to the DEK's id. Secrets are sealed with AES-256-GCM under a DEK with associated data
/// naming the record and field they belong to, so a ciphertext copied to another row, field or store fails to open.
/// New values are sealed under the *active* data key (`system/active-data-key`, `dek-initial` until the first
/// `rotateDataKey`); older data keys stay to open what they sealed.
///
/// Sealed format: `0x01 | len(dekID) (1 byte) | dekID | nonce (12) | ciphertext | tag (16)`.
///
/// **Switching the root online.** The store names the roots it uses: `system/root-key-check` opens under the current
/// root; during a switch `system/root-key-next` names the new root (a descriptor such as `pkcs11:…`, `file:PATH`,
/// `env:NAME`) with a check value sealed under it and the root it moves from; a finished switch leaves
/// `system/root-key-current` naming the new root. Every node knows the root of its configuration and loads the ones
/// the store names (through the daemon's resolver), and opens a data key with whichever root wrapped it; a node
/// that meets a data key none of its roots opens reads those records again. So nodes keep serving while data keys
/// move, a node (re)started at any point of a switch finds its roots, and a switch interrupted at any point is
/// finished by running it again.
public final class Keyring: Sendable {
    static let formatVersion: UInt8 = 1
    static let dekKind = "datakey"
    static let systemKind = "system"
    static let initialDEK = "dek-initial"
    static let rootCheckID = "root-key-check"
    static let rootNextID = "root-key-next"
    static let rootCurrentID = "root-key-current"
    static let activeDEKID = "active-data-key"
    static let rootCheckPlaintext = Data("gatehouse root key check v1".utf8)
    /// How long a node keeps the active data key's id before reading it again (another node may have rotated it).
    static let activeDEKTTL: Duration = .seconds(10)

    /// Loads the root a descriptor names (`pkcs11:…`, `file:PATH`, `env:NAME`); the daemon supplies it.
    public typealias RootResolver = @Sendable (String) throws -> any RootKey

    /// A root this node can use: the configured one, or one the store named.
    struct KnownRoot: Sendable {
        var descriptor: String?
        var key: any RootKey
    }

    /// Known roots, the one that opens the check first; new data keys are wrapped by the last (the target of a
    /// switch in progress, else the current root).
    private let roots: Mutex<[KnownRoot]>
    private let resolver: RootResolver?
    private let cache = Mutex<[String: SymmetricKey]>([:])
    private let active = Mutex<(id: String, readAt: ContinuousClock.Instant)?>(nil)
    private let lastRefresh = Mutex<ContinuousClock.Instant?>(nil)
    /// Said once at start-up, for the log (e.g. the configuration names a root the store moved away from).
    let notices = Mutex<[String]>([])

    init(rootKey: any RootKey, descriptor: String? = nil, resolver: RootResolver? = nil) {
        self.roots = Mutex([KnownRoot(descriptor: descriptor, key: rootKey)])
        self.resolver = resolver
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

    /// What `system/root-key-next` and `system/root-key-current` hold.
    struct RootTarget: Codable, Sendable {
        /// The root's descriptor.
        var target: String
        /// The check value sealed under it (`next` only).
        var check: Data?
        /// The descriptor of the root the switch moves from, when the switching node knew it (`next` only).
        var from: String?
    }

    static func target(_ record: Record?) -> RootTarget? {
        record.flatMap { try? JSONDecoder().decode(RootTarget.self, from: $0.body) }
    }

    static func opensCheck(_ sealed: Data, _ key: any RootKey) -> Bool {
        (try? key.unwrap(sealed, aad: rootCheckAAD())) == rootCheckPlaintext
    }

    /// The error for a root the store names that this node cannot load: the daemon waits sealed for it.
    static func unavailableRoot(_ descriptor: String, _ why: String) -> EngineError {
        EngineError(
            .unavailable, "the store's root key \(descriptor) cannot be loaded here: \(why)",
            diagnostic: rootKeyUnavailableDiagnostic)
    }
    /// `EngineError.diagnostic` of every "this node cannot load its root key" error.
    public static let rootKeyUnavailableDiagnostic = "root-key-unavailable"

    /// Loads the root `descriptor` names through the resolver (nil without one).
    private func resolve(_ descriptor: String) throws -> (any RootKey)? {
        if let known = roots.withLock({ $0.first { $0.descriptor == descriptor } }) { return known.key }
        guard let resolver else { return nil }
        do { return try resolver(descriptor) } catch let e as EngineError {
            throw Self.unavailableRoot(descriptor, e.message)
        }
    }

    /// Checks the root key against the store, creating the check value and the first data key in a new store.
    /// Finds the current root among the configured one and those the store names, and the target of a switch in
    /// progress. Safe when several nodes start together: creation races end in a unique violation and a re-read.
    func bootstrap(_ storage: any Storage) async throws {
        for _ in 0..<3 {
            do {
                try await storage.withTransaction { tx in
                    let configured = self.roots.withLock { $0[0] }
                    if try await !self.findRoots(get: { try await tx.get(kind: Self.systemKind, id: $0) }) {
                        let body = try configured.key.wrap(Self.rootCheckPlaintext, aad: Self.rootCheckAAD())
                        try await tx.insert(Record(kind: Self.systemKind, id: Self.rootCheckID, body: body))
                    }
                    if try await tx.get(kind: Self.dekKind, id: Self.initialDEK) == nil {
                        let dek = SymmetricKey(size: .bits256)
                        let wrapped = try dek.withUnsafeBytes {
                            try self.wrappingRoot.wrap(Data($0), aad: Self.dekAAD(Self.initialDEK))
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

    /// Sets `roots` from the store's records (see the type's comment). False when the store has no check value yet.
    private func findRoots(get: (String) async throws -> Record?) async throws -> Bool {
        let configured = roots.withLock { $0[0] }
        let next = Self.target(try await get(Self.rootNextID))
        guard let check = try await get(Self.rootCheckID) else { return false }
        var current: KnownRoot?
        if Self.opensCheck(check.body, configured.key) {
            current = configured
        } else {
            // The store's root moved (a finished switch names it), or a switch is in progress and this node's
            // configuration already names its target (the root it moves from opens the check).
            let candidates = [Self.target(try await get(Self.rootCurrentID))?.target, next?.from].compactMap { $0 }
            for descriptor in candidates where descriptor != configured.descriptor {
                if let key = try resolve(descriptor), Self.opensCheck(check.body, key) {
                    current = KnownRoot(descriptor: descriptor, key: key)
                    notices.withLock {
                        $0.append(
                            "the configuration names the \(configured.key.description) but the store's root key is \(descriptor); update root_key"
                        )
                    }
                    break
                }
            }
        }
        guard let current else {
            throw EngineError(
                .cryptographicFailure,
                "the root key does not match this store (wrong key file, environment variable or PKCS#11 key?)")
        }
        var found = [current]
        if let next, next.target != current.descriptor {
            let key: (any RootKey)?
            if next.target == configured.descriptor {
                key = configured.key
            } else {
                key = try resolve(next.target)
            }
            if let key {
                guard let nextCheck = next.check, Self.opensCheck(nextCheck, key) else {
                    throw Self.unavailableRoot(next.target, "it does not open the switch's check value")
                }
                found.append(KnownRoot(descriptor: next.target, key: key))
            }
        }
        roots.withLock { $0 = found }
        return true
    }

    /// Reads the roots the store names again (at most once a second): a switch started or finished elsewhere.
    func refreshRoots(_ storage: any Storage) async throws {
        guard refreshDue() else { return }
        _ = try await storage.withReadTransaction { tx in
            try await self.findRoots(get: { try await tx.get(kind: Self.systemKind, id: $0) })
        }
    }

    /// The secret sealed at `system/<id>`, made by `make` and sealed under `binding` on first use. Nodes that make it
    /// at once race on the insert; the losers read the winner's.
    func systemSecret(
        _ id: String, binding: String, _ storage: any Storage, make: @escaping @Sendable () -> [UInt8]
    ) async throws -> [UInt8] {
        for _ in 0..<3 {
            do {
                return try await storage.withTransaction { tx -> [UInt8] in
                    if let record = try await tx.get(kind: Self.systemKind, id: id) {
                        return try await self.open(record.body, binding: binding, tx)
                    }
                    let fresh = make()
                    let sealed = try await self.seal(fresh, binding: binding, tx)
                    try await tx.insert(Record(kind: Self.systemKind, id: id, body: sealed))
                    return fresh
                }
            } catch let e as StorageError where e.code == .uniqueViolation {
                continue  // another node made it first
            }
        }
        throw EngineError(.unavailable, "cannot create \(binding)")
    }

    /// Writes `body` to `system/<id>`, creating the record if needed.
    private static func putSystem(_ id: String, _ body: Data, _ tx: any StorageTransaction) async throws {
        if var record = try await tx.get(kind: systemKind, id: id) {
            record.body = body
            record.updatedAt = Date()
            _ = try await tx.update(record)
        } else {
            try await tx.insert(Record(kind: systemKind, id: id, body: body))
        }
    }

    /// Whether the roots may be read again now (at most once a second), noting that they are.
    private func refreshDue() -> Bool {
        let now = ContinuousClock.now
        return lastRefresh.withLock { last -> Bool in
            if let last, last.duration(to: now) < .seconds(1) { return false }
            last = now
            return true
        }
    }

    /// The root that wraps new data keys.
    var wrappingRoot: any RootKey { roots.withLock { $0[$0.count - 1].key } }

    /// The roots this node knows, for status: descriptor (or description) of each, current first.
    var rootDescriptions: [String] { roots.withLock { $0.map { $0.descriptor ?? $0.key.description } } }

    private func dataKey(_ id: String, _ tx: any StorageTransaction) async throws -> SymmetricKey {
        try await dataKey(id) { try await tx.get(kind: $0, id: $1) }
    }

    /// The data key `id`: from the cache, or unwrapped from the record `fetch` reads, with whichever known root
    /// wrapped it; if none does, the roots are read from the store again (a switch elsewhere) and tried once more.
    private func dataKey(_ id: String, fetch: (String, String) async throws -> Record?) async throws -> SymmetricKey {
        if let cached = cache.withLock({ $0[id] }) { return cached }
        guard let record = try await fetch(Self.dekKind, id) else {
            throw EngineError(.cryptographicFailure, "data key missing", diagnostic: "no datakey \(id)")
        }
        var unavailable: EngineError?
        for attempt in 0..<2 {
            for root in roots.withLock({ $0 }) {
                do {
                    let raw = try root.key.unwrap(record.body, aad: Self.dekAAD(id))
                    let dek = SymmetricKey(data: raw)
                    cache.withLock { $0[id] = dek }
                    return dek
                } catch let e as EngineError where e.code == .unavailable {
                    unavailable = e  // the token is unreachable: say so, not "cannot unwrap"
                } catch {}
            }
            if attempt == 0 {
                // Read the store's root records again, in the caller's transaction.
                guard refreshDue() else { break }
                _ = try await findRoots(get: { try await fetch(Self.systemKind, $0) })
            }
        }
        if let unavailable { throw unavailable }
        throw EngineError(.cryptographicFailure, "cannot unwrap data key", diagnostic: "datakey \(id)")
    }

    /// Unwraps every data key in the store with the roots this node knows (a page of 500 per read transaction) and
    /// returns how many there are; throws naming the first that opens under none. For `gatehouse backup verify`.
    func checkDataKeys(_ storage: any Storage) async throws -> Int {
        var total = 0
        var after: String?
        while true {
            let cursor = after
            let page = try await storage.withReadTransaction { tx in
                try await tx.list(kind: Self.dekKind, scope: "", afterID: cursor, limit: 500)
            }
            for record in page {
                _ = try await dataKey(record.id) { kind, id in
                    kind == Self.dekKind && id == record.id
                        ? record : try await storage.withReadTransaction { try await $0.get(kind: kind, id: id) }
                }
            }
            total += page.count
            guard page.count == 500, let last = page.last?.id else { return total }
            after = last
        }
    }

    /// Seals `plaintext` under the active data key, bound to `binding` (e.g. `secret/<id>/value`).
    func seal(_ plaintext: [UInt8], binding: String, _ tx: any StorageTransaction) async throws -> Data {
        let id = try await activeDataKeyID(tx)
        let dek = try await dataKey(id, tx)
        let idBytes = Data(id.utf8)
        var out = Data([Self.formatVersion, UInt8(idBytes.count)])
        out.append(idBytes)
        out.append(try Self.rawSeal(Data(plaintext), key: dek, aad: Self.fieldAAD(binding)))
        return out
    }

    /// The id of the data key new values are sealed under, read again every `activeDEKTTL`.
    private func activeDataKeyID(_ tx: any StorageTransaction) async throws -> String {
        let now = ContinuousClock.now
        if let active = active.withLock({ $0 }), active.readAt.duration(to: now) < Self.activeDEKTTL {
            return active.id
        }
        let record = try await tx.get(kind: Self.systemKind, id: Self.activeDEKID)
        let id = record.map { String(decoding: $0.body, as: UTF8.self) } ?? Self.initialDEK
        active.withLock { $0 = (id, now) }
        return id
    }

    /// Opens what `seal` produced for the same binding.
    func open(_ sealed: Data, binding: String, _ tx: any StorageTransaction) async throws -> [UInt8] {
        try await open(sealed, binding: binding) { try await tx.get(kind: $0, id: $1) }
    }

    /// Like `open(_:binding:_:)` outside a transaction: the store is read (in a read transaction of its own) only
    /// when the data key is not cached yet, which saves a reads' connection lease per KMIP Get.
    func open(_ sealed: Data, binding: String, reading storage: any Storage) async throws -> [UInt8] {
        try await open(sealed, binding: binding) { kind, id in
            try await storage.withReadTransaction { tx in try await tx.get(kind: kind, id: id) }
        }
    }

    private func open(
        _ sealed: Data, binding: String, fetch: (String, String) async throws -> Record?
    ) async throws -> [UInt8] {
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

    // MARK: Data key rotation

    /// Makes a new data key and makes it the active one: values sealed from now on (on every node within
    /// `activeDEKTTL`) use it; older data keys stay to open what they sealed. Returns its id.
    func rotateDataKey(_ storage: any Storage) async throws -> String {
        let id = "dek-" + RecordID.make()
        try await storage.withTransaction { tx in
            // A switch that started elsewhere: wrap under its target, so the switch need not come back for it.
            _ = try await self.findRoots(get: { try await tx.get(kind: Self.systemKind, id: $0) })
            let dek = SymmetricKey(size: .bits256)
            let wrapped = try dek.withUnsafeBytes { try self.wrappingRoot.wrap(Data($0), aad: Self.dekAAD(id)) }
            try await tx.insert(Record(kind: Self.dekKind, id: id, body: wrapped))
            try await Self.putSystem(Self.activeDEKID, Data(id.utf8), tx)
        }
        active.withLock { $0 = (id, .now) }
        return id
    }

    // MARK: Switching the root

    /// How a switch went.
    public struct SwitchResult: Sendable {
        /// Data keys re-wrapped by this run.
        public var rewrapped: Int
        /// Data keys in the store.
        public var total: Int
        /// Whether this run resumed a switch to the same target that had started before.
        public var resumed: Bool
    }

    /// Moves the store to `newKey` (named `target`) while nodes serve: announces the switch, re-wraps data keys in
    /// batches of `batch` (one transaction each, so no lock is held long), then, in one transaction, re-checks every
    /// data key, seals the check value under the new root and records it as current. Idempotent: run it again after
    /// a crash and it finishes. Refuses while a switch to another root is in progress.
    func switchRoot(
        to newKey: any RootKey, target: String, batch: Int, _ storage: any Storage,
        progress: @Sendable (Int, Int) async throws -> Void = { _, _ in }
    ) async throws -> SwitchResult {
        let batch = max(1, batch)
        let from = roots.withLock { $0[0].descriptor }
        let newCheck = try newKey.wrap(Self.rootCheckPlaintext, aad: Self.rootCheckAAD())
        // 1. Announce (or find the announcement of an interrupted run).
        let resumed = try await storage.withTransaction { tx -> Bool in
            _ = try await self.findRoots(get: { try await tx.get(kind: Self.systemKind, id: $0) })
            guard let check = try await tx.get(kind: Self.systemKind, id: Self.rootCheckID) else {
                throw EngineError(.wrongState, "the store has no root key check value")
            }
            if Self.opensCheck(check.body, newKey) {
                return true  // the check already moved: only the bookkeeping may be left
            }
            if let record = try await tx.get(kind: Self.systemKind, id: Self.rootNextID),
                let next = Self.target(record)
            {
                guard next.target == target else {
                    throw EngineError(
                        .conflict,
                        "a switch of the root key to \(next.target) is in progress; finish it first (rotate-root-key --to \(next.target))"
                    )
                }
                if let check = next.check, Self.opensCheck(check, newKey) { return true }
                var updated = record
                updated.body = try JSONEncoder().encode(RootTarget(target: target, check: newCheck, from: from))
                _ = try await tx.update(updated)
                return true
            }
            let body = try JSONEncoder().encode(RootTarget(target: target, check: newCheck, from: from))
            try await tx.insert(Record(kind: Self.systemKind, id: Self.rootNextID, body: body))
            return false
        }
        roots.withLock { known in
            if !known.contains(where: { $0.descriptor == target }) {
                known.append(KnownRoot(descriptor: target, key: newKey))
            }
        }
        // 2. Re-wrap in batches.
        var rewrapped = 0
        var seen = 0
        var after: String?
        while true {
            let cursor = after
            let (count, moved, last) = try await storage.withTransaction { tx -> (Int, Int, String?) in
                let page = try await tx.list(kind: Self.dekKind, scope: "", afterID: cursor, limit: batch)
                var moved = 0
                for record in page {
                    if try await self.rewrap(record, to: newKey, tx) { moved += 1 }
                }
                return (page.count, moved, page.last?.id)
            }
            rewrapped += moved
            seen += count
            try await progress(rewrapped, seen)
            guard count == batch, let last else { break }
            after = last
        }
        // 3. Finish: every data key again (one written meanwhile by a node that did not know of the switch yet), the
        // check, the record of the current root, and the end of the announcement, atomically.
        let (total, late) = try await storage.withTransaction { tx -> (Int, Int) in
            var total = 0
            var late = 0
            var after: String?
            while true {
                let page = try await tx.list(kind: Self.dekKind, scope: "", afterID: after, limit: 500)
                for record in page {
                    if try await self.rewrap(record, to: newKey, tx) { late += 1 }
                }
                total += page.count
                guard page.count == 500, let last = page.last?.id else { break }
                after = last
            }
            if var check = try await tx.get(kind: Self.systemKind, id: Self.rootCheckID),
                !Self.opensCheck(check.body, newKey)
            {
                check.body = newCheck
                check.updatedAt = Date()
                _ = try await tx.update(check)
            }
            try await Self.putSystem(Self.rootCurrentID, try JSONEncoder().encode(RootTarget(target: target)), tx)
            if let next = try await tx.get(kind: Self.systemKind, id: Self.rootNextID) {
                try await tx.delete(kind: Self.systemKind, id: Self.rootNextID, expectedVersion: next.version)
            }
            return (total, late)
        }
        roots.withLock { $0 = [KnownRoot(descriptor: target, key: newKey)] }
        return SwitchResult(rewrapped: rewrapped + late, total: total, resumed: resumed)
    }

    /// Renames the current root in the store's record of it (a key file renamed after its rotation).
    func renameCurrentRoot(from old: String, to new: String, _ storage: any Storage) async throws {
        try await storage.withTransaction { tx in
            guard var record = try await tx.get(kind: Self.systemKind, id: Self.rootCurrentID),
                Self.target(record)?.target == old
            else { return }
            record.body = try JSONEncoder().encode(RootTarget(target: new))
            record.updatedAt = Date()
            _ = try await tx.update(record)
        }
        roots.withLock { known in
            for i in known.indices where known[i].descriptor == old { known[i].descriptor = new }
        }
    }

    /// Re-wraps one data key under `newKey` unless it is already; true when it wrote.
    private func rewrap(_ record: Record, to newKey: any RootKey, _ tx: any StorageTransaction) async throws -> Bool {
        let aad = Self.dekAAD(record.id)
        if (try? newKey.unwrap(record.body, aad: aad)) != nil { return false }
        var raw: Data?
        var unavailable: EngineError?
        for root in roots.withLock({ $0 }) {
            do {
                raw = try root.key.unwrap(record.body, aad: aad)
                break
            } catch let e as EngineError where e.code == .unavailable { unavailable = e } catch {}
        }
        guard let raw else {
            if let unavailable { throw unavailable }
            throw EngineError(
                .cryptographicFailure, "data key \(record.id) opens under no known root key; the switch stops")
        }
        var updated = record
        updated.body = try newKey.wrap(raw, aad: aad)
        updated.updatedAt = Date()
        _ = try await tx.update(updated)
        return true
    }
}
