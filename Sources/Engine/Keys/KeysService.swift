import Crypto
import EngineAPI
import Foundation
import StorageAPI
import SwiftASN1
import Synchronization
import SystemCrypto
import X509
import _CryptoExtras

/// Stored form of a managed object: public facts plus the sealed material (nil once destroyed).
struct ManagedObjectBody: Codable {
    var meta: ManagedObject
    var material: Data?
}

/// Random bytes from the kernel generator.
enum RandomBytes {
    /// One `getrandom` call for all of them (`SystemRandomNumberGenerator` made one per 8 bytes).
    static func make(_ count: Int) -> [UInt8] { RandomFill.bytes(count) }
}

/// KMIP Cryptographic Algorithm values the engine understands.
enum Algorithm {
    static let tripleDES: UInt32 = 2
    static let aes: UInt32 = 3
    static let hmacSHA1: UInt32 = 7
    static let hmacSHA224: UInt32 = 8
    static let hmacSHA256: UInt32 = 9
    static let hmacSHA384: UInt32 = 10
    static let hmacSHA512: UInt32 = 11
    static let rsa: UInt32 = 4
    static let ecdsa: UInt32 = 6
    static let ec: UInt32 = 0x1A
    static let ed25519: UInt32 = 0x37
    static let blowfish: UInt32 = 16
    static let idea: UInt32 = 19
    static let chacha20: UInt32 = 0x1C
    static let chacha20Poly1305: UInt32 = 0x1E
    static let hmac: Set<UInt32> = [7, 8, 9, 10, 11]
}

/// Keys: KMS keys and KMIP managed objects (create, register, locate, crypto, streams, derivation, key pairs,
/// certificates), and the organization's KMIP client PKI. Certificates come from the PKI domain through
/// `CertificateIssuing`.
public final class KeysService: EngineService {
    let core: EngineCore
    let issuer: any CertificateIssuing
    /// Streamed Encrypt/Decrypt operations in progress (KMIP Correlation Value → stream).
    let cipherStreams = StreamTable<CipherStreamState>()
    /// Streamed MAC and Hash operations in progress, by correlation value.
    let digestStreams = StreamTable<DigestState>()
    /// Decoded managed-object bodies by id, with the record version and bytes they were decoded from (see
    /// `EngineCore.decodedRecords`).
    let objectCache = Mutex<[String: (version: Int64, raw: Data, body: ManagedObjectBody)]>([:])
    /// Whether this engine has seen the administrators' default KMIP project exist (then it is not read again before
    /// each request; a Create that finds it gone clears this, so the next request makes it again).
    let defaultKMIPProjectSeen = Mutex(false)
    /// Told the KMIP client CA (PEM) when this node creates it, so its KMIP listener trusts it at once (other nodes
    /// pick it up on their periodic refresh).
    let kmipClientCAsCreated: @Sendable ([String]) -> Void

    init(core: EngineCore, issuer: any CertificateIssuing, kmipClientCAsCreated: @escaping @Sendable ([String]) -> Void)
    {
        self.core = core
        self.issuer = issuer
        self.kmipClientCAsCreated = kmipClientCAsCreated
    }
}

extension KeysService {
    static let objectKind = "kms-object"
    static let defaultKMIPProject = "kmip-default"

    /// The usage mask of an object created without one: symmetric keys may encrypt, decrypt, wrap, unwrap and MAC;
    /// other objects nothing cryptographic.
    static func defaultUsage(_ type: ManagedObjectType) -> UInt32 {
        type == .symmetricKey
            ? ([.encrypt, .decrypt, .wrapKey, .unwrapKey, .macGenerate, .macVerify] as UsageMask).rawValue : 0
    }

    // MARK: - Helpers

    /// The project objects go to: the explicit one, else the identity's `kmip.project` metadata, else its only
    /// project membership; the bootstrap administrator uses `kmip-default` (created on first use).
    func keyProject(_ ctx: CallContext, explicit: String?) async throws -> String {
        if let explicit { return explicit }
        guard let caller = try await resolve(ctx.principal) else {
            await auditFailure(
                ctx, "authentication.failed", project: nil,
                ["action": "kms-keys", "reason": "no identity accepts these credentials"])
            throw EngineError(.unauthenticated, "authentication required")
        }
        if caller.kind == .superuser {
            if defaultKMIPProjectSeen.withLock({ $0 }) { return Self.defaultKMIPProject }
            // Read first (one round trip on PostgreSQL), create only when missing; several requests may race to
            // create it, and the losers' unique violation means it exists.
            let exists = try await read { tx in
                try await tx.find(kind: AccessKind.project, scope: AccessKind.org, name: Self.defaultKMIPProject) != nil
            }
            if !exists {
                do {
                    try await transact { tx in
                        if try await tx.find(
                            kind: AccessKind.project, scope: AccessKind.org, name: Self.defaultKMIPProject) == nil
                        {
                            try await tx.insert(
                                Record(
                                    kind: AccessKind.project, id: RecordID.make(), scope: AccessKind.org,
                                    name: Self.defaultKMIPProject,
                                    body: try Self.encode(
                                        ProjectBody(description: "objects created over KMIP by administrators")),
                                    createdAt: self.clock()))
                        }
                    }
                } catch let e as EngineError where e.code == .alreadyExists {}
            }
            defaultKMIPProjectSeen.withLock { $0 = true }
            return Self.defaultKMIPProject
        }
        if let p = caller.metadata["kmip.project"] { return p }
        let id = caller.identityId ?? ""
        // The identity's memberships, from the membership index (not a scan of every membership of the appliance).
        let projects = try await read { tx -> [String] in
            try await tx.lookup(
                .prefix(
                    kind: AccessKind.membership, index: MembershipIndex.identity, scope: nil, IndexKey(id), limit: 3)
            ).map(\.record.scope)
        }
        guard projects.count == 1, let only = projects.first else {
            throw EngineError(
                .invalidArgument,
                projects.isEmpty
                    ? "the identity belongs to no project; set its metadata kmip.project"
                    : "the identity belongs to several projects; set its metadata kmip.project")
        }
        return only
    }

    func loadObject(_ id: String, _ tx: any StorageTransaction) async throws -> (Record, ManagedObjectBody) {
        guard id.utf8.count <= 64, let record = try await tx.get(kind: Self.objectKind, id: id) else {
            throw EngineError(.notFound, "object not found")
        }
        // Decoding the JSON body was a tenth of a KMIP Get's CPU: reuse the decoded body while the stored version and
        // bytes are unchanged.
        if let cached = objectCache.withLock({ $0[id] }), cached.version == record.version, cached.raw == record.body {
            return (record, cached.body)
        }
        let body = try decode(ManagedObjectBody.self, record)
        objectCache.withLock { cache in
            if cache.count > 50_000 { cache.removeAll() }
            cache[id] = (record.version, record.body, body)
        }
        return (record, body)
    }

    /// Loads an object's facts (outside a transaction) to authorize against its project and name.
    func objectFacts(_ id: String) async throws -> ManagedObject {
        try await read { tx in try await self.loadObject(id, tx).1.meta }
    }

    /// `facts`: the object's facts when the caller already loaded them (saves a read on the hot path).
    func authorizeObject(_ ctx: CallContext, _ id: String, _ action: PermissionAction, facts: ManagedObject? = nil)
        async throws -> (Decision, ManagedObject)
    {
        let meta: ManagedObject
        if let facts { meta = facts } else { meta = try await objectFacts(id) }
        let decision = try await authorize(
            ctx, AccessRequest(.project(meta.project), .kmsKeys, action, ["name": meta.names.first ?? meta.id]))
        return (decision, meta)
    }

    static func validate(_ spec: ObjectSpec) throws {
        guard spec.names.count <= 16, spec.names.allSatisfy({ !$0.isEmpty && $0.utf8.count <= 256 }),
            spec.objectGroups.count <= 16, spec.objectGroups.allSatisfy({ !$0.isEmpty && $0.utf8.count <= 256 })
        else { throw EngineError(.invalidArgument, "names and object groups: at most 16 of 1–256 bytes") }
        guard spec.customAttributes.count <= 64,
            spec.customAttributes.allSatisfy({
                !$0.key.isEmpty && $0.key.utf8.count <= 256 && $0.value.count <= 16
                    && $0.value.allSatisfy { $0.count <= 4096 }
            })
        else { throw EngineError(.invalidArgument, "too many or too large attributes") }
    }

    func newObject(_ spec: ObjectSpec, project: String, now: Date) -> ManagedObject {
        var meta = ManagedObject(
            id: RecordID.make(), project: project, objectType: spec.objectType, algorithm: spec.algorithm,
            cryptographicLength: spec.cryptographicLength,
            usageMask: spec.usageMask ?? Self.defaultUsage(spec.objectType),
            state: .preActive,
            names: spec.names, objectGroups: spec.objectGroups, initialDate: now, lastChangeDate: now,
            dataType: spec.dataType)
        meta.customAttributes = spec.customAttributes.isEmpty ? nil : spec.customAttributes
        meta.keyFormatType = spec.keyFormatType
        meta.splitKey = spec.splitKey
        meta.wrappingData = spec.wrappingData
        let sensitive = spec.sensitive ?? false
        let extractable = spec.extractable ?? true
        meta.sensitive = sensitive
        meta.alwaysSensitive = sensitive
        meta.extractable = extractable
        meta.neverExtractable = !extractable
        meta.fresh = spec.fresh
        meta.usageLimits = spec.usageLimits
        meta.processStartDate = spec.processStartDate
        meta.protectStopDate = spec.protectStopDate
        if let activation = spec.activationDate {
            meta.activationDate = activation
            if activation <= now { meta.state = .active }
        }
        if let deactivation = spec.deactivationDate {
            meta.deactivationDate = deactivation
            if deactivation <= now { meta.state = .deactivated }
        }
        return meta
    }

    func store(
        _ ctx: CallContext, _ decision: Decision, _ meta: ManagedObject, material: [UInt8], event: String
    ) async throws -> ManagedObject {
        var meta = meta
        if [.symmetricKey, .publicKey, .privateKey].contains(meta.objectType), meta.wrappingData == nil {
            meta.digest = Array(SHA256.hash(data: material))
        }
        return try await transact { [meta] tx in
            do {
                _ = try await self.requireProject(meta.project, tx)
            } catch let e as EngineError where e.code == .notFound && meta.project == Self.defaultKMIPProject {
                self.defaultKMIPProjectSeen.withLock { $0 = false }
                throw e
            }
            let sealed = try await self.keyring.seal(material, binding: "kms-object/\(meta.id)/material", tx)
            try await tx.insert(
                Record(
                    kind: Self.objectKind, id: meta.id, scope: meta.project,
                    body: try Self.encode(ManagedObjectBody(meta: meta, material: sealed)), createdAt: meta.initialDate)
            )
            try await self.audit.append(
                self.allowed(
                    ctx, decision, event, project: meta.project,
                    [
                        "objectId": meta.id, "objectType": meta.objectType.rawValue, "name": meta.names.first ?? "",
                        "algorithm": meta.algorithm.map { "\($0)" } ?? "",
                        "length": meta.cryptographicLength.map { "\($0)" } ?? "",
                    ]), tx)
            return meta
        }
    }

    // MARK: - Create / Register

    public func createKey(_ ctx: CallContext, project: String?, _ spec: ObjectSpec) async throws -> ManagedObject {
        try Self.validate(spec)
        guard spec.objectType == .symmetricKey else {
            throw EngineError(.invalidArgument, "Create makes symmetric keys; register other objects")
        }
        guard let algorithm = spec.algorithm else {
            throw EngineError(.invalidArgument, "Cryptographic Algorithm is required")
        }
        let length = Int(spec.cryptographicLength ?? 0)
        let valid: Bool
        switch algorithm {
        case Algorithm.aes: valid = [128, 192, 256].contains(length)
        case Algorithm.tripleDES: valid = [112, 168, 192].contains(length)
        case Algorithm.idea: valid = length == 128
        case Algorithm.chacha20, Algorithm.chacha20Poly1305: valid = length == 256
        case Algorithm.blowfish: valid = length >= 32 && length <= 448 && length % 8 == 0
        case _ where Algorithm.hmac.contains(algorithm): valid = length >= 128 && length <= 1024 && length % 8 == 0
        default: valid = false
        }
        guard valid else {
            throw EngineError(
                .invalidArgument, "unsupported algorithm \(algorithm) / length \(length) for a symmetric key")
        }
        let p = try await keyProject(ctx, explicit: project)
        let decision = try await authorize(
            ctx, AccessRequest(.project(p), .kmsKeys, .create, ["name": spec.names.first ?? ""]))
        let material = SymmetricKey(size: .init(bitCount: algorithm == Algorithm.tripleDES ? 192 : length))
            .withUnsafeBytes { Array($0) }
        var meta = newObject(spec, project: p, now: clock())
        meta.serverGenerated = true
        meta.fresh = spec.fresh ?? true
        return try await store(ctx, decision, meta, material: material, event: "kms.create")
    }

    public func registerObject(_ ctx: CallContext, project: String?, _ spec: ObjectSpec, material: SecretBytes)
        async throws
        -> ManagedObject
    {
        try Self.validate(spec)
        guard !material.bytes.isEmpty, material.bytes.count <= 64 * 1024 else {
            throw EngineError(.invalidArgument, "object material must be 1 byte to 64 KiB")
        }
        // Any length is accepted for a registered key (a 512-bit "AES" key is a common KDF base); Encrypt and
        // Decrypt check the length when the key is used.
        let p = try await keyProject(ctx, explicit: project)
        let decision = try await authorize(
            ctx, AccessRequest(.project(p), .kmsKeys, .create, ["name": spec.names.first ?? ""]))
        var meta = newObject(spec, project: p, now: clock())
        if spec.objectType == .symmetricKey, meta.cryptographicLength == nil {
            meta.cryptographicLength = Int32(material.bytes.count * 8)
        }
        if spec.objectType == .certificate, (spec.dataType ?? 1) == 1 {
            meta.certificate = try Self.certificateFacts(material.bytes)
        }
        return try await store(ctx, decision, meta, material: material.bytes, event: "kms.register")
    }

    /// Reads an X.509 certificate's names, serial number and length; a registered "X.509 certificate" that does not
    /// parse is refused.
    static func certificateFacts(_ der: [UInt8]) throws -> CertificateFacts {
        let certificate: Certificate
        do { certificate = try Certificate(derEncoded: der) } catch {
            throw EngineError(
                .invalidArgument, "the certificate is not a DER X.509 certificate", diagnostic: "\(error)")
        }
        let short: [ASN1ObjectIdentifier: String] = [
            [2, 5, 4, 3]: "CN", [2, 5, 4, 10]: "O", [2, 5, 4, 11]: "OU", [2, 5, 4, 6]: "C", [2, 5, 4, 8]: "ST",
            [2, 5, 4, 7]: "L",
            [2, 5, 4, 5]: "serialNumber", [2, 5, 4, 12]: "title", [2, 5, 4, 46]: "dnQualifier",
            [0, 9, 2342, 19_200_300, 100, 1, 1]: "UID", [0, 9, 2342, 19_200_300, 100, 1, 25]: "DC",
            [1, 2, 840, 113_549, 1, 9, 1]: "emailAddress",
        ]
        func components(_ name: DistinguishedName) -> [CertificateFacts.NameComponent] {
            name.flatMap { rdn in
                rdn.map { attribute in
                    CertificateFacts.NameComponent(
                        type: short[attribute.type] ?? attribute.type.description,
                        value: String(attribute.value) ?? attribute.value.description)
                }
            }
        }
        return CertificateFacts(
            length: der.count, subject: components(certificate.subject), issuer: components(certificate.issuer),
            serialNumber: Array(certificate.serialNumber.bytes))
    }

    // MARK: - Read

    public func getObject(_ ctx: CallContext, id: String) async throws -> (ManagedObject, SecretBytes?) {
        try await getObject(ctx, id: id, wrapped: false)
    }

    /// `wrapped`: the material leaves wrapped by another key (allowed for Sensitive objects).
    func getObject(_ ctx: CallContext, id: String, wrapped: Bool) async throws -> (ManagedObject, SecretBytes?) {
        // One read of the object serves the authorization and, for an ordinary Get, the answer (a Get changes
        // nothing but the audit log: the object as read is a state it had while the request ran).
        let loaded = try await read { tx in try await self.loadObject(id, tx).1 }
        let (decision, facts) = try await authorizeObject(ctx, id, .read, facts: loaded.meta)
        if facts.extractable == false {
            throw EngineError(.notExtractable, "the object is not extractable: its material never leaves the server")
        }
        if facts.sensitive == true, !wrapped {
            throw EngineError(.sensitive, "the object is sensitive: its material leaves the server only wrapped")
        }
        let event = allowed(ctx, decision, "kms.get", project: facts.project, ["objectId": id])
        guard facts.fresh == true else {
            var plain: SecretBytes?
            if let sealed = loaded.material {
                plain = SecretBytes(
                    try await mappingStorageErrors {
                        try await self.keyring.open(sealed, binding: "kms-object/\(id)/material", reading: self.storage)
                    })
            }
            // No audit event, no material.
            try await self.record(event)
            return (facts, plain)
        }
        // The first Get of a Fresh object also clears Fresh, durably, with its event.
        let now = clock()
        return try await transact(reloads: true) { tx in
            var (record, body) = try await self.loadObject(id, tx)
            var plain: SecretBytes?
            if let sealed = body.material {
                plain = SecretBytes(try await self.keyring.open(sealed, binding: "kms-object/\(id)/material", tx))
            }
            if body.meta.fresh == true, plain != nil {
                body.meta.fresh = false
                body.meta.lastChangeDate = now
                record.body = try Self.encode(body)
                record.updatedAt = now
                _ = try await tx.update(record)
            }
            try await self.audit.append(event, tx)
            return (body.meta, plain)
        }
    }

    public func objectAttributes(_ ctx: CallContext, id: String) async throws -> ManagedObject {
        let (_, meta) = try await authorizeObject(ctx, id, .read)
        return meta
    }

    /// The objects a KMIP Locate finds. Audited as `kms.locate` with the number found: enumerating a project's keys
    /// is as much worth a record as reading one.
    public func locateObjects(_ ctx: CallContext, project: String?, _ filter: LocateFilter) async throws -> [String] {
        try await locateObjectAttributes(ctx, project: project, filter).map(\.id)
    }

    public func locateObjectAttributes(_ ctx: CallContext, project: String?, _ filter: LocateFilter) async throws
        -> [ManagedObject]
    {
        let p = try await keyProject(ctx, explicit: project)
        let decision = try await authorize(ctx, AccessRequest(.project(p), .kmsKeys, .read))
        let found = try await locate(p, decision, filter)
        try await transact { tx in
            try await self.audit.append(
                self.allowed(ctx, decision, "kms.locate", project: p, ["located": String(found.count)]), tx)
        }
        return found
    }

    private func locate(_ p: String, _ decision: Decision, _ filter: LocateFilter) async throws -> [ManagedObject] {
        func permitted(_ m: ManagedObject) -> Bool {
            Self.locateMatches(m, filter)
                && decision.permits(AccessRequest(.project(p), .kmsKeys, .read, ["name": m.names.first ?? m.id]))
        }
        // A Unique Identifier in the filter: that object or nothing.
        if let id = filter.id {
            guard filter.offsetItems == 0, filter.maximumItems != 0,
                let record = try await read({ tx in try await tx.get(kind: Self.objectKind, id: id) }),
                record.scope == p
            else { return [] }
            let m = try decode(ManagedObjectBody.self, record).meta
            return permitted(m) ? [m] : []
        }
        // Index scans, newest first (every key ends with the Initial Date), page by page until the filter's Offset
        // Items and Maximum Items are satisfied: the cost follows the objects examined, not the size of the project.
        // Several scans (a Link, which the server or the client may have set) are merged in the same order.
        let wanted = filter.maximumItems.flatMap { $0 >= 0 ? $0 : nil }  // a negative maximum is no maximum
        if wanted == 0 { return [] }
        let pageSize = wanted.map { min(500, max(32, 2 * ($0 + filter.offsetItems))) } ?? 500
        var scans = Self.locatePlans(filter).map { plan in
            LocateScan(
                query: IndexQuery(
                    kind: Self.objectKind, index: plan.index, scope: p, lower: plan.lower, upper: plan.upper,
                    after: nil, descending: true,
                    limit: pageSize))
        }
        var found: [ManagedObject] = []
        var seen = Set<String>()
        var skipped = 0
        while true {
            for i in scans.indices where scans[i].head == nil && !scans[i].exhausted {
                let current = scans[i].query
                let page = try await read { tx in try await tx.lookup(current) }
                scans[i].buffer = try page.map { ($0, try decode(ManagedObjectBody.self, $0.record).meta) }
                scans[i].position = 0
                scans[i].exhausted = page.count < pageSize
                if let last = page.last { scans[i].query.after = last.cursor }
            }
            // The newest head of the scans (Initial Date, then id, descending: each scan's own order).
            guard
                let next = scans.indices.filter({ scans[$0].head != nil }).max(by: { a, b in
                    guard let x = scans[a].head?.1, let y = scans[b].head?.1 else { return false }
                    return (Record.millis(x.initialDate), x.id) < (Record.millis(y.initialDate), y.id)
                }), let (hit, m) = scans[next].head
            else { return found }
            scans[next].position += 1
            guard seen.insert(hit.record.id).inserted, permitted(m) else { continue }
            if skipped < filter.offsetItems {
                skipped += 1
                continue
            }
            found.append(m)
            if let wanted, found.count >= wanted { return found }
        }
    }

    /// One index scan of a Locate: its next page's query, and what it read and has not been merged yet.
    struct LocateScan {
        var query: IndexQuery
        var buffer: [(IndexedRecord, ManagedObject)] = []
        var position = 0
        var exhausted = false
        var head: (IndexedRecord, ManagedObject)? { position < buffer.count ? buffer[position] : nil }
    }

    /// Whether an object satisfies every condition of a Locate filter.
    static func locateMatches(_ m: ManagedObject, _ filter: LocateFilter) -> Bool {
        if let n = filter.name, !m.names.contains(n) { return false }
        if let id = filter.id, m.id != id { return false }
        if let mask = filter.usageMask, m.usageMask & mask != mask { return false }
        if !filter.customAttributes.allSatisfy({ name, value in
            let values = m.customAttributes?[name] ?? []
            return values.contains(value) || (values.isEmpty && filter.customAttributeDefaults.contains(name))
        }) {
            return false
        }
        if let c = filter.certificateType, m.objectType != .certificate || (m.dataType ?? 1) != c { return false }
        if let t = filter.objectType, m.objectType != t { return false }
        if let a = filter.algorithm, m.algorithm != a { return false }
        if let l = filter.cryptographicLength, m.cryptographicLength != l { return false }
        if let s = filter.state, m.state != s { return false }
        if (m.state == .destroyed || m.state == .destroyedCompromised) && !filter.includeDestroyed
            && filter.state != m.state
        {
            return false
        }
        if let g = filter.objectGroup, !m.objectGroups.contains(g) { return false }
        if let d = filter.digest, m.digest != d { return false }
        for f in filter.certificateFields {
            guard let c = m.certificate, (f.issuer ? c.issuer : c.subject).contains(f.component) else { return false }
        }
        for l in filter.links {
            let client = l.clientValue.map { m.customAttributes?["Link"]?.contains($0) ?? false } ?? false
            guard m.links?.contains(l.link) == true || client else { return false }
        }
        return filter.dateRanges.allSatisfy { field, range in
            field.value(in: m).map { range.contains(Int64($0.timeIntervalSince1970.rounded(.down))) } ?? false
        }
    }

    // MARK: - Lifecycle

    func transition(
        _ ctx: CallContext, _ id: String, action: PermissionAction, event: String,
        _ change: @Sendable (inout ManagedObjectBody, Date) throws -> Void
    ) async throws -> ManagedObject {
        let (decision, _) = try await authorizeObject(ctx, id, action)
        let now = clock()
        return try await transact { tx in
            var (record, body) = try await self.loadObject(id, tx)
            try change(&body, now)
            body.meta.lastChangeDate = now
            record.body = try Self.encode(body)
            record.updatedAt = now
            _ = try await tx.update(record)
            try await self.audit.append(
                self.allowed(
                    ctx, decision, event, project: body.meta.project, ["objectId": id, "state": "\(body.meta.state)"]),
                tx)
            return body.meta
        }
    }

    public func editObjectAttributes(
        _ ctx: CallContext, id: String, _ edit: @Sendable (inout EditableAttributes) throws -> Void
    ) async throws -> ManagedObject {
        try await transition(ctx, id, action: .edit, event: "kms.attributes.edit") { body, now in
            var e = EditableAttributes(
                names: body.meta.names, objectGroups: body.meta.objectGroups,
                customAttributes: body.meta.customAttributes ?? [:],
                sensitive: body.meta.sensitive ?? false, extractable: body.meta.extractable ?? true,
                activationDate: body.meta.activationDate)
            try edit(&e)
            if e.activationDate != body.meta.activationDate {
                // KMIP 1.4 §3.24 / 2.1 §4.1: the client may set it while the object is Pre-Active, not after.
                guard body.meta.state == .preActive else {
                    throw EngineError(
                        .wrongState, "the Activation Date of an object that is \(body.meta.state) cannot change")
                }
                body.meta.activationDate = e.activationDate
                if let d = e.activationDate, d <= now { body.meta.state = .active }
            }
            let spec = ObjectSpec(objectType: body.meta.objectType, names: e.names, objectGroups: e.objectGroups)
            try Self.validate(spec)
            guard e.customAttributes.count <= 64,
                e.customAttributes.values.allSatisfy({ $0.count <= 16 && $0.allSatisfy { $0.count <= 4096 } })
            else { throw EngineError(.invalidArgument, "too many or too large attributes") }
            body.meta.names = e.names
            body.meta.objectGroups = e.objectGroups
            body.meta.customAttributes = e.customAttributes.isEmpty ? nil : e.customAttributes
            body.meta.sensitive = e.sensitive
            body.meta.extractable = e.extractable
            if !e.sensitive { body.meta.alwaysSensitive = false }
            if e.extractable { body.meta.neverExtractable = false }
        }
    }

    public func activateObject(_ ctx: CallContext, id: String) async throws -> ManagedObject {
        try await transition(ctx, id, action: .edit, event: "kms.activate") { body, now in
            guard body.meta.state == .preActive else {
                throw EngineError(.wrongState, "only a Pre-Active object can be activated (it is \(body.meta.state))")
            }
            body.meta.state = .active
            body.meta.activationDate = now
        }
    }

    public func revokeObject(
        _ ctx: CallContext, id: String, reason: UInt32, message: String?, compromiseOccurrence: Date?
    )
        async throws -> ManagedObject
    {
        guard (1...8).contains(reason) else {
            throw EngineError(.invalidArgument, "unknown revocation reason \(reason)")
        }
        return try await transition(ctx, id, action: .edit, event: "kms.revoke") { body, now in
            let compromise = reason == 2 || reason == 3
            switch body.meta.state {
            case .destroyed, .destroyedCompromised:
                throw EngineError(.wrongState, "the object is destroyed")
            case .compromised where !compromise:
                throw EngineError(.wrongState, "the object is already compromised")
            default: break
            }
            body.meta.revocationReason = reason
            body.meta.revocationMessage = message.map { String($0.prefix(1000)) }
            if compromise {
                body.meta.state = .compromised
                body.meta.compromiseDate = now
                body.meta.compromiseOccurrenceDate = compromiseOccurrence ?? now
            } else {
                body.meta.state = .deactivated
                body.meta.deactivationDate = now
            }
        }
    }

    public func destroyObject(_ ctx: CallContext, id: String) async throws -> ManagedObject {
        try await transition(ctx, id, action: .delete, event: "kms.destroy") { body, now in
            switch body.meta.state {
            case .active:
                throw EngineError(.wrongState, "an Active object must be revoked before it is destroyed")
            case .destroyed, .destroyedCompromised:
                throw EngineError(.wrongState, "the object is already destroyed")
            case .compromised:
                body.meta.state = .destroyedCompromised
            case .preActive, .deactivated:
                body.meta.state = .destroyed
            }
            body.meta.destroyDate = now
            body.material = nil  // the sealed key material is gone; metadata stays
        }
    }

    // MARK: - Cryptography

    /// Opens a usable key: the object must be Active, of the right type, and allow `usage`.
    /// Process Start / Protect Stop dates: Permission Denied outside the key's window for this use.
    static func checkUseWindow(_ meta: ManagedObject, _ usage: UsageMask, now: Date) throws {
        if let stop = meta.protectStopDate, stop <= now, !usage.isDisjoint(with: .protecting) {
            throw EngineError(.outsideUseWindow, "the key is past its Protect Stop Date: it no longer protects data")
        }
        if let start = meta.processStartDate, start > now, !usage.isDisjoint(with: .processing) {
            throw EngineError(
                .outsideUseWindow, "the key is before its Process Start Date: it does not process data yet")
        }
    }

    /// Takes what an operation uses from a key's Usage Limits (nothing for keys without limits); Permission Denied
    /// once they are used up. Returns whether the body changed.
    static func consumeUsage(_ meta: inout ManagedObject, bytes: Int?) throws -> Bool {
        guard let bytes, var limits = meta.usageLimits else { return false }
        let units = limits.units(bytes: bytes)
        guard limits.count >= units else {
            throw EngineError(
                .permissionDenied, "the key's Usage Limits are used up (\(limits.count) of \(limits.total) left)")
        }
        limits.count -= units
        meta.usageLimits = limits
        return true
    }

    /// `consume`: the bytes this use protects, counted against the key's Usage Limits (nil: a use that protects
    /// nothing, e.g. decryption).
    func usableKey(
        _ ctx: CallContext, _ id: String, action: PermissionAction, usage: UsageMask, facts: ManagedObject? = nil,
        consume: Int? = nil
    ) async throws -> (ManagedObject, SymmetricKey) {
        // One read of the object when the caller did not bring it; it serves the authorization and, for a use that
        // changes nothing (no Usage Limits to count), the key itself.
        let loaded = facts == nil ? try await read { tx in try await self.loadObject(id, tx).1 } : nil
        let (decision, known) = try await authorizeObject(ctx, id, action, facts: facts ?? loaded?.meta)
        // A use that counts against Usage Limits commits durably (the count must not come back after a crash).
        let limited = consume != nil && known.usageLimits != nil
        if !limited {
            let body: ManagedObjectBody
            if let loaded { body = loaded } else { body = try await read { tx in try await self.loadObject(id, tx).1 } }
            let raw = try await Self.checkUsable(body, usage: usage, now: clock()) { sealed in
                try await self.mappingStorageErrors {
                    try await self.keyring.open(sealed, binding: "kms-object/\(id)/material", reading: self.storage)
                }
            }
            try await record(allowed(ctx, decision, "kms.\(action)", project: body.meta.project, ["objectId": id]))
            return (body.meta, SymmetricKey(data: raw))
        }
        return try await transact(reloads: true) { tx in
            var (record, body) = try await self.loadObject(id, tx)
            let meta = body.meta
            let now = self.clock()
            let raw = try await Self.checkUsable(body, usage: usage, now: now) { sealed in
                try await self.keyring.open(sealed, binding: "kms-object/\(id)/material", tx)
            }
            if try Self.consumeUsage(&body.meta, bytes: consume) {
                record.body = try Self.encode(body)
                record.updatedAt = now
                _ = try await tx.update(record)
            }
            try await self.audit.append(
                self.allowed(ctx, decision, "kms.\(action)", project: meta.project, ["objectId": id]), tx)
            return (meta, SymmetricKey(data: raw))
        }
    }

    /// Refuses a key that cannot serve `usage` now; otherwise opens its material with `open`.
    static func checkUsable(
        _ body: ManagedObjectBody, usage: UsageMask, now: Date, open: (Data) async throws -> [UInt8]
    ) async throws -> [UInt8] {
        let meta = body.meta
        guard meta.objectType == .symmetricKey else {
            throw EngineError(.invalidArgument, "the object is not a symmetric key")
        }
        guard meta.wrappingData == nil else {
            throw EngineError(.invalidArgument, "the key was registered wrapped; the server cannot use it")
        }
        guard meta.state == .active else {
            throw EngineError(.wrongState, "the key is \(meta.state), not Active")
        }
        if let d = meta.deactivationDate, d <= now {
            throw EngineError(.wrongState, "the key is past its deactivation date")
        }
        guard UsageMask(rawValue: meta.usageMask).contains(usage) else {
            throw EngineError(.permissionDenied, "the key's Cryptographic Usage Mask does not allow this operation")
        }
        try checkUseWindow(meta, usage, now: now)
        guard let sealed = body.material else { throw EngineError(.wrongState, "the key material was destroyed") }
        return try await open(sealed)
    }

    public func allocateUsage(_ ctx: CallContext, id: String, amount: Int64) async throws -> ManagedObject {
        guard amount > 0 else { throw EngineError(.invalidArgument, "the allocation must be positive") }
        return try await transition(ctx, id, action: .encrypt, event: "kms.usage-allocation") { body, now in
            guard var limits = body.meta.usageLimits else {
                throw EngineError(.wrongState, "the object has no Usage Limits to allocate from")
            }
            guard body.meta.state == .active else {
                throw EngineError(.wrongState, "the key is \(body.meta.state), not Active")
            }
            guard limits.count >= amount else {
                throw EngineError(
                    .permissionDenied, "the key's Usage Limits have \(limits.count) left, less than \(amount)")
            }
            limits.count -= amount
            body.meta.usageLimits = limits
        }
    }

    public func encrypt(
        _ ctx: CallContext, id: String, _ p: CipherParameters, data: [UInt8], iv: [UInt8]?, aad: [UInt8]?
    )
        async throws -> CipherResult
    {
        guard data.count <= 1 << 20 else { throw EngineError(.invalidArgument, "data is limited to 1 MiB") }
        let facts = try await objectFacts(id)
        if facts.algorithm == Algorithm.rsa { return try await rsaOAEP(ctx, id, p, data, encrypt: true, facts: facts) }
        let (meta, key) = try await usableKey(
            ctx, id, action: .encrypt, usage: .encrypt, facts: facts, consume: data.count)
        if let chacha = Self.chachaAlgorithm(meta, p) {
            return try Self.chacha(chacha, key: key, p, data: data, iv: iv, aad: aad, tag: nil, encrypt: true)
        }
        guard meta.algorithm == Algorithm.aes else { throw EngineError(.featureNotSupported, "only AES keys encrypt") }
        guard [16, 24, 32].contains(key.bitCount / 8) else {
            throw EngineError(.invalidArgument, "an AES key is 128, 192 or 256 bits")
        }
        if let iv { try Self.checkIV(iv, mode: p.blockCipherMode ?? 9) }
        do {
            switch p.blockCipherMode ?? 9 {
            case 9 where (p.tagLength ?? 16) != 16 || (iv.map { $0.count != 12 } ?? false):
                // Truncated tags or IVs other than 12 bytes (NIST SP 800-38D allows both; KMIP's CS-BC cases use them).
                let tagLength = p.tagLength ?? 16
                guard (12...16).contains(tagLength) || tagLength == 8 || tagLength == 4 else {
                    throw EngineError(.invalidArgument, "GCM tags are 4, 8 or 12–16 bytes")
                }
                let nonce = iv ?? RandomBytes.make(12)
                guard
                    let box = AESGCMAnyLength.seal(
                        key: key.withUnsafeBytes { Array($0) }, iv: nonce, aad: aad ?? [], plaintext: data,
                        tagLength: tagLength)
                else { throw EngineError(.invalidArgument, "invalid GCM parameters") }
                return CipherResult(data: box.ciphertext, iv: iv == nil ? nonce : nil, tag: box.tag)
            case 9:
                let nonce = try iv.map { try AES.GCM.Nonce(data: $0) } ?? AES.GCM.Nonce()
                let box = try AES.GCM.seal(data, using: key, nonce: nonce, authenticating: aad ?? [])
                return CipherResult(
                    data: Array(box.ciphertext), iv: iv == nil ? Array(nonce) : nil, tag: Array(box.tag))
            case 1:
                let ivBytes = iv ?? RandomBytes.make(16)
                let out = try AES._CBC.encrypt(
                    data, using: key, iv: AES._CBC.IV(ivBytes: ivBytes), noPadding: (p.paddingMethod ?? 3) == 1)
                return CipherResult(data: Array(out), iv: iv == nil ? ivBytes : nil)
            case 2:
                // ECB (KMIP CS-BC profile): no IV; PKCS#5 padding only when asked for.
                return CipherResult(data: try Self.ecb(data, key: key, encrypt: true, pkcs5: p.paddingMethod == 3))
            case 6:
                let nonceBytes = iv ?? RandomBytes.make(16)
                let out = try AES._CTR.encrypt(data, using: key, nonce: AES._CTR.Nonce(nonceBytes: nonceBytes))
                return CipherResult(data: Array(out), iv: iv == nil ? nonceBytes : nil)
            default:
                throw EngineError(.featureNotSupported, "block cipher mode \(p.blockCipherMode ?? 0) is not supported")
            }
        } catch let e as EngineError {
            throw e
        } catch {
            throw EngineError(
                .invalidArgument, "invalid cryptographic parameters (IV length, padding)", diagnostic: "\(error)")
        }
    }

    public func decrypt(
        _ ctx: CallContext, id: String, _ p: CipherParameters, data: [UInt8], iv: [UInt8]?, aad: [UInt8]?, tag: [UInt8]?
    ) async throws -> CipherResult {
        guard data.count <= 1 << 20 else { throw EngineError(.invalidArgument, "data is limited to 1 MiB") }
        let facts = try await objectFacts(id)
        if facts.algorithm == Algorithm.rsa { return try await rsaOAEP(ctx, id, p, data, encrypt: false, facts: facts) }
        let (meta, key) = try await usableKey(ctx, id, action: .decrypt, usage: .decrypt, facts: facts)
        if let chacha = Self.chachaAlgorithm(meta, p) {
            return try Self.chacha(chacha, key: key, p, data: data, iv: iv, aad: aad, tag: tag, encrypt: false)
        }
        guard meta.algorithm == Algorithm.aes else { throw EngineError(.featureNotSupported, "only AES keys decrypt") }
        guard [16, 24, 32].contains(key.bitCount / 8) else {
            throw EngineError(.invalidArgument, "an AES key is 128, 192 or 256 bits")
        }
        if p.blockCipherMode == 2 {
            do {
                return CipherResult(data: try Self.ecb(data, key: key, encrypt: false, pkcs5: p.paddingMethod == 3))
            } catch let e as EngineError {
                throw e
            } catch {
                throw EngineError(.cryptographicFailure, "decryption failed")
            }
        }
        guard let iv else { throw EngineError(.invalidArgument, "decryption needs the IV/Counter/Nonce") }
        try Self.checkIV(iv, mode: p.blockCipherMode ?? 9)
        do {
            switch p.blockCipherMode ?? 9 {
            case 9 where iv.count != 12 || (tag.map { $0.count != 16 } ?? false):
                guard let tag, tag.count >= 4, tag.count <= 16 else {
                    throw EngineError(.invalidArgument, "GCM decryption needs the tag")
                }
                if let wanted = p.tagLength, wanted != tag.count {
                    throw EngineError(.invalidArgument, "the tag is \(tag.count) bytes, the Tag Length says \(wanted)")
                }
                guard
                    let plain = AESGCMAnyLength.open(
                        key: key.withUnsafeBytes { Array($0) }, iv: iv, aad: aad ?? [], ciphertext: data, tag: tag)
                else { throw EngineError(.cryptographicFailure, "authentication tag mismatch") }
                return CipherResult(data: plain)
            case 9:
                guard let tag, tag.count == 16 else {
                    throw EngineError(.invalidArgument, "GCM decryption needs the 16-byte tag")
                }
                let box = try AES.GCM.SealedBox(nonce: AES.GCM.Nonce(data: iv), ciphertext: data, tag: tag)
                do {
                    return CipherResult(data: Array(try AES.GCM.open(box, using: key, authenticating: aad ?? [])))
                } catch {
                    throw EngineError(.cryptographicFailure, "authentication tag mismatch")
                }
            case 1:
                do {
                    return CipherResult(
                        data: Array(
                            try AES._CBC.decrypt(
                                data, using: key, iv: AES._CBC.IV(ivBytes: iv), noPadding: (p.paddingMethod ?? 3) == 1))
                    )
                } catch {
                    throw EngineError(.cryptographicFailure, "decryption failed (bad padding or key)")
                }
            case 6:
                return CipherResult(
                    data: Array(try AES._CTR.decrypt(data, using: key, nonce: AES._CTR.Nonce(nonceBytes: iv))))
            default:
                throw EngineError(.featureNotSupported, "block cipher mode \(p.blockCipherMode ?? 0) is not supported")
            }
        } catch let e as EngineError {
            throw e
        } catch {
            throw EngineError(.invalidArgument, "invalid cryptographic parameters (IV length)", diagnostic: "\(error)")
        }
    }

    /// ChaCha20 or ChaCha20-Poly1305 when the key is one (the Cryptographic Parameters may name the other of the
    /// two: both take the same 256-bit key), else nil.
    static func chachaAlgorithm(_ meta: ManagedObject, _ p: CipherParameters) -> UInt32? {
        let chacha: Set<UInt32> = [Algorithm.chacha20, Algorithm.chacha20Poly1305]
        guard let algorithm = meta.algorithm, chacha.contains(algorithm) else { return nil }
        if let asked = p.algorithm, chacha.contains(asked) { return asked }
        return algorithm
    }

    /// KMIP 2.1 ChaCha20 and ChaCha20-Poly1305 (as the profile's CS-BC-M-CHACHA20 cases use them):
    /// - ChaCha20: the nonce in IV/Counter/Nonce, 8 bytes (the original cipher, 64-bit block counter) or 12 (RFC 8439
    ///   §2.4, 32-bit counter); the counter starts at Initial Counter Value, 0 when absent.
    /// - ChaCha20-Poly1305 (RFC 8439 §2.8): a 12-byte nonce, Authenticated Encryption Additional Data and a tag of
    ///   12–16 bytes (Tag Length; 16 by default); a tag that does not authenticate is a Cryptographic Failure.
    /// A nonce the client leaves out is made here (12 bytes) and returned.
    static func chacha(
        _ algorithm: UInt32, key: SymmetricKey, _ p: CipherParameters, data: [UInt8], iv: [UInt8]?, aad: [UInt8]?,
        tag: [UInt8]?, encrypt: Bool
    ) throws -> CipherResult {
        guard key.bitCount == 256 else { throw EngineError(.invalidArgument, "a ChaCha20 key is 256 bits") }
        guard encrypt || iv != nil else { throw EngineError(.invalidArgument, "decryption needs the nonce") }
        let nonce = iv ?? RandomBytes.make(12)
        let returned = iv == nil ? nonce : nil
        let raw = key.withUnsafeBytes { Array($0) }
        if algorithm == Algorithm.chacha20 {
            guard nonce.count == 8 || nonce.count == 12 else {
                throw EngineError(.invalidArgument, "the ChaCha20 nonce is 8 or 12 bytes")
            }
            guard p.tagLength == nil, aad == nil, tag == nil else {
                throw EngineError(.invalidArgument, "ChaCha20 has no tag or additional data: use ChaCha20-Poly1305")
            }
            guard let counter = UInt64(exactly: p.initialCounterValue ?? 0),
                let out = ChaCha20Stream.apply(key: raw, nonce: nonce, counter: counter, data: data)
            else { throw EngineError(.invalidArgument, "the initial counter does not fit the nonce's counter field") }
            return CipherResult(data: out, iv: returned)
        }
        guard nonce.count == 12 else { throw EngineError(.invalidArgument, "the ChaCha20-Poly1305 nonce is 12 bytes") }
        let tagLength = p.tagLength ?? tag?.count ?? 16
        guard (12...16).contains(tagLength) else {
            throw EngineError(.invalidArgument, "Poly1305 tags are 12 to 16 bytes, not \(tagLength)")
        }
        let chachaNonce = try ChaChaPoly.Nonce(data: nonce)
        if encrypt {
            let box = try ChaChaPoly.seal(data, using: key, nonce: chachaNonce, authenticating: aad ?? [])
            return CipherResult(data: Array(box.ciphertext), iv: returned, tag: Array(box.tag.prefix(tagLength)))
        }
        guard let tag, tag.count == tagLength else {
            throw EngineError(.invalidArgument, "ChaCha20-Poly1305 decryption needs the \(tagLength)-byte tag")
        }
        if tagLength == 16 {
            do {
                let box = try ChaChaPoly.SealedBox(nonce: chachaNonce, ciphertext: data, tag: tag)
                return CipherResult(data: Array(try ChaChaPoly.open(box, using: key, authenticating: aad ?? [])))
            } catch {
                throw EngineError(.cryptographicFailure, "authentication tag mismatch")
            }
        }
        // A truncated tag: recover the plaintext with the stream (counter 1, RFC 8439 §2.8), seal it again and compare
        // the tag's first bytes in constant time (the tag covers only the ciphertext and the additional data).
        guard let plain = ChaCha20Stream.apply(key: raw, nonce: nonce, counter: 1, data: data) else {
            throw EngineError(.invalidArgument, "invalid ChaCha20-Poly1305 parameters")
        }
        let full = try ChaChaPoly.seal(plain, using: key, nonce: chachaNonce, authenticating: aad ?? [])
        guard Array(full.ciphertext) == data, Self.constantTimeEqual(Data(full.tag.prefix(tagLength)), Data(tag)) else {
            throw EngineError(.cryptographicFailure, "authentication tag mismatch")
        }
        return CipherResult(data: plain)
    }

    /// IV/nonce lengths: 16 bytes for CBC and CTR, 12 for GCM (the only nonce size swift-crypto's GCM takes).
    /// RSA-OAEP with a public key (encrypt) or a private key (decrypt).
    func rsaOAEP(
        _ ctx: CallContext, _ id: String, _ p: CipherParameters, _ data: [UInt8], encrypt: Bool, facts: ManagedObject
    ) async throws
        -> CipherResult
    {
        guard (p.paddingMethod ?? 2) == 2 else {
            throw EngineError(
                .featureNotSupported, "RSA encryption uses OAEP (padding method 2), not \(p.paddingMethod ?? 0)")
        }
        func code(_ h: UInt32) throws -> Int32 {
            switch h {
            case 4: return 1
            case 5: return 224
            case 6: return 256
            case 7: return 384
            case 8: return 512
            default: throw EngineError(.featureNotSupported, "hashing algorithm \(h) is not supported for OAEP")
            }
        }
        let hash = try code(p.hashingAlgorithm ?? 4)
        let mgf = try code(p.maskGeneratorHashingAlgorithm ?? p.hashingAlgorithm ?? 4)
        let label = p.label ?? []
        guard label.count <= 1024 else { throw EngineError(.invalidArgument, "the OAEP label is limited to 1 KiB") }
        if encrypt {
            let (_, der) = try await usableAsymmetricKey(
                ctx, id, action: .encrypt, type: .publicKey, usage: .encrypt, facts: facts, consume: data.count)
            guard let out = RSAOAEP.encrypt(publicKeyDER: der, hash: hash, mgfHash: mgf, label: label, plaintext: data)
            else {
                throw EngineError(.cryptographicFailure, "RSA-OAEP encryption failed (message too long for the key?)")
            }
            return CipherResult(data: out)
        }
        let (_, der) = try await usableAsymmetricKey(
            ctx, id, action: .decrypt, type: .privateKey, usage: .decrypt, facts: facts)
        guard let out = RSAOAEP.decrypt(privateKeyDER: der, hash: hash, mgfHash: mgf, label: label, ciphertext: data)
        else {
            throw EngineError(.cryptographicFailure, "RSA-OAEP decryption failed")
        }
        return CipherResult(data: out)
    }

    /// AES-ECB, block by block (each block through the AES permutation), with optional PKCS#5 padding.
    static func ecb(_ data: [UInt8], key: SymmetricKey, encrypt: Bool, pkcs5: Bool) throws -> [UInt8] {
        var input = data
        if encrypt && pkcs5 {
            let pad = 16 - input.count % 16
            input += [UInt8](repeating: UInt8(pad), count: pad)
        }
        guard input.count % 16 == 0, !input.isEmpty else {
            throw EngineError(.invalidArgument, "ECB without padding needs whole 16-byte blocks")
        }
        var out: [UInt8] = []
        out.reserveCapacity(input.count)
        var offset = 0
        while offset < input.count {
            var block = Array(input[offset..<(offset + 16)])
            if encrypt { try AES.permute(&block, key: key) } else { try AES.inversePermute(&block, key: key) }
            out += block
            offset += 16
        }
        if !encrypt && pkcs5 {
            guard let pad = out.last, (1...16).contains(pad), out.suffix(Int(pad)).allSatisfy({ $0 == pad }) else {
                throw EngineError(.cryptographicFailure, "decryption failed (bad padding or key)")
            }
            out.removeLast(Int(pad))
        }
        return out
    }

    static func checkIV(_ iv: [UInt8], mode: UInt32) throws {
        let expected: Int
        switch mode {
        case 1, 6: expected = 16
        case 9:
            guard (1...128).contains(iv.count) else { throw EngineError(.invalidArgument, "a GCM IV is 1–128 bytes") }
            return
        default: return
        }
        guard iv.count == expected else {
            throw EngineError(
                .invalidArgument, "the IV/Counter/Nonce must be \(expected) bytes for this mode, not \(iv.count)")
        }
    }

    public func mac(_ ctx: CallContext, id: String, _ p: CipherParameters, data: [UInt8]) async throws -> [UInt8] {
        guard data.count <= 1 << 20 else { throw EngineError(.invalidArgument, "data is limited to 1 MiB") }
        let (meta, key) = try await usableKey(ctx, id, action: .mac, usage: .macGenerate, consume: data.count)
        return try Self.hmac(p.algorithm ?? meta.algorithm ?? 0, key, data)
    }

    public func macVerify(_ ctx: CallContext, id: String, _ p: CipherParameters, data: [UInt8], mac: [UInt8])
        async throws -> Bool
    {
        guard data.count <= 1 << 20, mac.count <= 256 else {
            throw EngineError(.invalidArgument, "data is limited to 1 MiB")
        }
        let (meta, key) = try await usableKey(ctx, id, action: .verify, usage: .macVerify)
        let expected = try Self.hmac(p.algorithm ?? meta.algorithm ?? 0, key, data)
        // Constant time over the expected length; a length mismatch is simply invalid.
        var diff = UInt8(expected.count == mac.count ? 0 : 1)
        for (i, b) in expected.enumerated() { diff |= b ^ (i < mac.count ? mac[i] : 0) }
        return diff == 0
    }

    static func hmac(_ algorithm: UInt32, _ key: SymmetricKey, _ data: [UInt8]) throws -> [UInt8] {
        switch algorithm {
        case Algorithm.hmacSHA1: return Array(HMAC<Insecure.SHA1>.authenticationCode(for: data, using: key))
        case Algorithm.hmacSHA256: return Array(HMAC<SHA256>.authenticationCode(for: data, using: key))
        case Algorithm.hmacSHA384: return Array(HMAC<SHA384>.authenticationCode(for: data, using: key))
        case Algorithm.hmacSHA512: return Array(HMAC<SHA512>.authenticationCode(for: data, using: key))
        default: throw EngineError(.featureNotSupported, "MAC needs an HMAC-SHA1/256/384/512 algorithm")
        }
    }
}

// MARK: - Links

extension KeysService {
    /// Adds a server-made link to an object (replacing one of the same type).
    func linkObjects(_ ctx: CallContext, _ id: String, _ link: ObjectLink) async throws -> ManagedObject {
        try await transition(ctx, id, action: .edit, event: "kms.link") { body, _ in
            body.meta.links = (body.meta.links ?? []).filter { $0.type != link.type } + [link]
        }
    }
}

// MARK: - ReKey

extension KeysService {
    public func rekey(_ ctx: CallContext, id: String, offset: TimeInterval?) async throws -> ManagedObject {
        let (_, old) = try await authorizeObject(ctx, id, .edit)  // re-keying changes the old key (names, link)
        guard old.objectType == .symmetricKey, old.wrappingData == nil, let algorithm = old.algorithm,
            let length = old.cryptographicLength
        else {
            throw EngineError(.invalidArgument, "ReKey replaces symmetric keys this server can use")
        }
        guard old.state != .destroyed, old.state != .destroyedCompromised else {
            throw EngineError(.wrongState, "the key was destroyed")
        }
        let decision = try await authorize(
            ctx, AccessRequest(.project(old.project), .kmsKeys, .create, ["name": old.names.first ?? ""]))
        let bits = algorithm == Algorithm.tripleDES ? 192 : Int(length)
        let material = SymmetricKey(size: .init(bitCount: bits)).withUnsafeBytes { Array($0) }
        let now = clock()
        var meta = replacement(for: old, offset: offset, now: now)
        meta.links = [ObjectLink(type: ObjectLink.replacedObject, id: id)]
        meta.digest = Array(SHA256.hash(data: material))
        let replacement = meta
        try await transact { tx in
            try await self.markReplaced(id, by: replacement.id, now: now, tx)
            try await self.insertObject(replacement, material: material, now: now, tx)
            try await self.audit.append(
                self.allowed(
                    ctx, decision, "kms.rekey", project: old.project, ["objectId": id, "replacementId": replacement.id]),
                tx)
        }
        return replacement
    }

    public func rekeyKeyPair(_ ctx: CallContext, privateKeyID: String, offset: TimeInterval?) async throws -> (
        ManagedObject, ManagedObject
    ) {
        let (_, oldPrivate) = try await authorizeObject(ctx, privateKeyID, .edit)
        guard oldPrivate.objectType == .privateKey, oldPrivate.wrappingData == nil,
            let algorithm = oldPrivate.algorithm,
            let length = oldPrivate.cryptographicLength
        else {
            throw EngineError(.invalidArgument, "ReKey Key Pair replaces private keys this server can use")
        }
        guard oldPrivate.state != .destroyed, oldPrivate.state != .destroyedCompromised else {
            throw EngineError(.wrongState, "the key was destroyed")
        }
        // The public key of the old pair, when the private key links to one this caller may change too.
        let oldPublic: ManagedObject?
        if let link = oldPrivate.links?.first(where: { $0.type == ObjectLink.publicKey }) {
            let (_, pub) = try await authorizeObject(ctx, link.id, .edit)
            guard pub.objectType == .publicKey else {
                throw EngineError(.invalidArgument, "the Public Key Link names no public key")
            }
            oldPublic = pub
        } else {
            oldPublic = nil
        }
        let decision = try await authorize(
            ctx, AccessRequest(.project(oldPrivate.project), .kmsKeys, .create, ["name": oldPrivate.names.first ?? ""]))
        let generated = try Self.generateKeyPair(
            algorithm: algorithm, length: algorithm == Algorithm.ed25519 ? 255 : length)
        let now = clock()
        var priv = replacement(for: oldPrivate, offset: offset, now: now)
        priv.keyFormatType = generated.privateFormat
        priv.digest = Array(SHA256.hash(data: generated.privateDER))
        var pub: ManagedObject
        if let oldPublic {
            pub = replacement(for: oldPublic, offset: offset, now: now)
        } else {
            pub = newObject(
                ObjectSpec(objectType: .publicKey, algorithm: algorithm, cryptographicLength: length),
                project: oldPrivate.project, now: now)
            pub.serverGenerated = true
            pub.fresh = true
            pub.usageMask = UsageMask.verify.rawValue
        }
        pub.objectType = .publicKey
        pub.algorithm = algorithm
        pub.cryptographicLength = generated.length
        pub.keyFormatType = generated.publicFormat
        pub.digest = Array(SHA256.hash(data: generated.publicDER))
        priv.links = [
            ObjectLink(type: ObjectLink.publicKey, id: pub.id),
            ObjectLink(type: ObjectLink.replacedObject, id: privateKeyID),
        ]
        pub.links = [ObjectLink(type: ObjectLink.privateKey, id: priv.id)]
        if let oldPublic { pub.links?.append(ObjectLink(type: ObjectLink.replacedObject, id: oldPublic.id)) }
        let (newPrivate, newPublic) = (priv, pub)
        try await transact { tx in
            try await self.markReplaced(privateKeyID, by: newPrivate.id, now: now, tx)
            if let oldPublic { try await self.markReplaced(oldPublic.id, by: newPublic.id, now: now, tx) }
            try await self.insertObject(newPrivate, material: generated.privateDER, now: now, tx)
            try await self.insertObject(newPublic, material: generated.publicDER, now: now, tx)
            try await self.audit.append(
                self.allowed(
                    ctx, decision, "kms.rekey-key-pair", project: oldPrivate.project,
                    [
                        "objectId": privateKeyID, "replacementId": newPrivate.id, "publicKeyId": oldPublic?.id ?? "",
                        "replacementPublicKeyId": newPublic.id,
                    ]), tx)
        }
        return (newPrivate, newPublic)
    }

    /// A replacement's metadata: the old object's attributes (names, masks, groups, custom attributes, sensitivity,
    /// a full usage allowance) with fresh identity and dates. With an offset, activation at creation + offset and
    /// the other dates at their old distances from the old activation; without one, the old object's dates.
    func replacement(for old: ManagedObject, offset: TimeInterval?, now: Date) -> ManagedObject {
        var spec = ObjectSpec(
            objectType: old.objectType, algorithm: old.algorithm, cryptographicLength: old.cryptographicLength,
            usageMask: old.usageMask,
            names: old.names, objectGroups: old.objectGroups)
        spec.customAttributes = old.customAttributes ?? [:]
        spec.sensitive = old.sensitive
        spec.extractable = old.extractable
        spec.usageLimits = old.usageLimits.map { UsageLimits(total: $0.total, count: $0.total, unit: $0.unit) }
        func shifted(_ d: Date?) -> Date? {
            guard let d else { return nil }
            guard let offset else { return d }
            return d.addingTimeInterval(
                now.addingTimeInterval(offset).timeIntervalSince(old.activationDate ?? old.initialDate))
        }
        spec.activationDate = offset.map { now.addingTimeInterval($0) } ?? old.activationDate
        spec.deactivationDate = shifted(old.deactivationDate)
        spec.processStartDate = shifted(old.processStartDate)
        spec.protectStopDate = shifted(old.protectStopDate)
        var meta = newObject(spec, project: old.project, now: now)
        meta.serverGenerated = true
        meta.fresh = true
        return meta
    }

    /// The replaced object gives its names to the replacement and links to it.
    func markReplaced(_ id: String, by replacementID: String, now: Date, _ tx: any StorageTransaction) async throws {
        var (record, body) = try await loadObject(id, tx)
        body.meta.names = []
        body.meta.links =
            (body.meta.links ?? []).filter { $0.type != ObjectLink.replacementObject }
            + [ObjectLink(type: ObjectLink.replacementObject, id: replacementID)]
        body.meta.lastChangeDate = now
        record.body = try Self.encode(body)
        record.updatedAt = now
        _ = try await tx.update(record)
    }

    /// Stores a new object with its material sealed under the root key.
    func insertObject(_ meta: ManagedObject, material: [UInt8], now: Date, _ tx: any StorageTransaction) async throws {
        let sealed = try await keyring.seal(material, binding: "kms-object/\(meta.id)/material", tx)
        try await tx.insert(
            Record(
                kind: Self.objectKind, id: meta.id, scope: meta.project,
                body: try Self.encode(ManagedObjectBody(meta: meta, material: sealed)), createdAt: now))
    }
}

// MARK: - Batch undo

extension KeysService {
    public func snapshotObject(_ ctx: CallContext, id: String) async throws -> ObjectSnapshot {
        _ = try await authorizeObject(ctx, id, .edit)
        return try await transact { tx in
            let (record, _) = try await self.loadObject(id, tx)
            return ObjectSnapshot(id: id, body: record.body)
        }
    }

    public func undoObjectChanges(_ ctx: CallContext, restore: [ObjectSnapshot], discard: [String]) async throws {
        var decisions: [Decision] = []
        for snapshot in restore { decisions.append(try await authorizeObject(ctx, snapshot.id, .edit).0) }
        for id in discard { decisions.append(try await authorizeObject(ctx, id, .delete).0) }
        let now = clock()
        let decision = decisions.first
        try await transact { tx in
            var project = ""
            for snapshot in restore {
                guard var record = try await tx.get(kind: Self.objectKind, id: snapshot.id) else { continue }
                project = record.scope
                record.body = snapshot.body
                record.updatedAt = now
                _ = try await tx.update(record)
            }
            for id in discard {
                guard let record = try await tx.get(kind: Self.objectKind, id: id) else { continue }
                project = record.scope
                try await tx.delete(kind: Self.objectKind, id: id, expectedVersion: record.version)
            }
            if let decision {
                try await self.audit.append(
                    self.allowed(
                        ctx, decision, "kms.undo", project: project,
                        [
                            "restored": restore.map(\.id).joined(separator: ","),
                            "discarded": discard.joined(separator: ","),
                        ]), tx)
            }
        }
        objectCache.withLock { cache in
            for id in restore.map(\.id) + discard { cache[id] = nil }
        }
    }
}

// MARK: - Streamed Encrypt / Decrypt

/// A streamed Encrypt/Decrypt's OpenSSL context and GCM tag length.
struct CipherStreamState: Sendable {
    let stream: CipherStream
    let tagLength: Int
}

extension KeysService {
    public func cipherStep(
        _ ctx: CallContext, id: String, encrypt: Bool, _ p: CipherParameters, data: [UInt8], iv: [UInt8]?,
        aad: [UInt8]?,
        tag: [UInt8]?, correlation: [UInt8]?, final: Bool
    ) async throws -> (result: CipherResult, correlation: [UInt8]?) {
        guard data.count <= 1 << 20 else { throw EngineError(.invalidArgument, "data is limited to 1 MiB per step") }
        // Every step is authorized, checked against the key's state and window, counted against Usage Limits (when
        // encrypting) and audited, like a one-shot operation.
        let (meta, key) = try await usableKey(
            ctx, id, action: encrypt ? .encrypt : .decrypt, usage: encrypt ? .encrypt : .decrypt,
            consume: encrypt ? data.count : nil)
        let now = clock()
        let entry: CipherStreamState
        var newCorrelation: [UInt8]?
        if let correlation {
            guard
                let found = cipherStreams.resume(correlation, owner: ctx.principal, keyID: id, final: final, now: now),
                found.stream.encrypting == encrypt
            else {
                throw EngineError(
                    .notFound, "no streamed operation with that correlation value (on this key, for this caller)")
            }
            entry = found
        } else {
            guard meta.algorithm == Algorithm.aes, [16, 24, 32].contains(key.bitCount / 8) else {
                throw EngineError(.featureNotSupported, "only AES keys stream")
            }
            let mode = p.blockCipherMode ?? 9
            guard [1, 2, 6, 9].contains(mode) else {
                throw EngineError(.featureNotSupported, "block cipher mode \(mode) does not stream")
            }
            let tagLength = p.tagLength ?? 16
            guard mode != 9 || tagLength == 4 || tagLength == 8 || (12...16).contains(tagLength) else {
                throw EngineError(.invalidArgument, "GCM tags are 4, 8 or 12–16 bytes")
            }
            guard mode == 2 || iv != nil else {
                throw EngineError(.invalidArgument, "a streamed operation needs its IV/Counter/Nonce")
            }
            guard
                let stream = CipherStream(
                    encrypt: encrypt, mode: mode, key: key.withUnsafeBytes { Array($0) }, iv: iv ?? [],
                    padding: (p.paddingMethod ?? 1) == 3,
                    aad: aad ?? [])
            else { throw EngineError(.invalidArgument, "invalid cryptographic parameters (key length, IV length)") }
            entry = CipherStreamState(stream: stream, tagLength: tagLength)
            if !final { newCorrelation = try cipherStreams.start(entry, owner: ctx.principal, keyID: id, now: now) }
        }
        guard var out = entry.stream.update(data) else {
            if let correlation { cipherStreams.drop(correlation) }
            throw EngineError(.cryptographicFailure, encrypt ? "encryption failed" : "decryption failed")
        }
        guard final else { return (CipherResult(data: out), newCorrelation) }
        do {
            let (rest, outTag) = try entry.stream.finish(tag: encrypt ? nil : tag, tagLength: entry.tagLength)
            out += rest
            return (CipherResult(data: out, tag: outTag), nil)
        } catch {
            throw EngineError(
                .cryptographicFailure,
                encrypt ? "encryption failed" : "decryption failed: the tag or padding does not check out")
        }
    }
}

// MARK: - Key wrapping

extension KeysService {
    public func getWrapped(_ ctx: CallContext, id: String, wrappingKeyID: String) async throws -> (
        ManagedObject, [UInt8]
    ) {
        let (wrapMeta, kek) = try await usableKey(ctx, wrappingKeyID, action: .encrypt, usage: .wrapKey)
        guard wrapMeta.algorithm == Algorithm.aes, [16, 24, 32].contains(kek.bitCount / 8) else {
            throw EngineError(.invalidArgument, "the wrapping key must be an AES-128/192/256 key")
        }
        let (meta, material) = try await getObject(ctx, id: id, wrapped: true)
        guard let material else { throw EngineError(.wrongState, "the object's material was destroyed") }
        guard material.bytes.count >= 16, material.bytes.count % 8 == 0 else {
            throw EngineError(.invalidArgument, "AES Key Wrap needs material of at least 16 bytes, a multiple of 8")
        }
        do {
            return (meta, Array(try AES.KeyWrap.wrap(SymmetricKey(data: material.bytes), using: kek)))
        } catch {
            throw EngineError(.cryptographicFailure, "key wrapping failed", diagnostic: "\(error)")
        }
    }
}
