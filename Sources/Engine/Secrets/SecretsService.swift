import EngineAPI
import Foundation
import StorageAPI

/// Secrets: values sealed under a data key of the keyring, per project, versioned.
final class SecretsService: EngineService {
    let core: EngineCore
    init(core: EngineCore) { self.core = core }
}

extension SecretsService {
    static let secretKind = "secret"

    struct SecretBody: Codable {
        var value: Data
    }

    func metadata(_ r: Record) -> SecretMetadata {
        SecretMetadata(
            id: r.id, project: r.scope, name: r.name ?? "", version: r.version, createdAt: r.createdAt,
            updatedAt: r.updatedAt)
    }

    public func createSecret(_ ctx: CallContext, project: String, name: String, value: SecretBytes) async throws
        -> SecretMetadata
    {
        try Self.validateName(project, "project")
        try Self.validateName(name, "name")
        let decision = try await authorize(ctx, AccessRequest(.project(project), .secrets, .create, ["name": name]))
        let id = RecordID.make()
        let now = clock()
        return try await transact { tx in
            _ = try await self.requireProject(project, tx)
            let sealed = try await self.keyring.seal(value.bytes, binding: "secret/\(id)/value", tx)
            let body = try JSONEncoder().encode(SecretBody(value: sealed))
            let record = Record(kind: Self.secretKind, id: id, scope: project, name: name, body: body, createdAt: now)
            try await tx.insert(record)
            try await self.audit.append(
                self.allowed(ctx, decision, "secret.create", project: project, ["secretId": id, "name": name]), tx)
            return self.metadata(record)
        }
    }

    public func updateSecret(
        _ ctx: CallContext, project: String, name: String, value: SecretBytes, expectedVersion: Int64?
    ) async throws -> SecretMetadata {
        try Self.validateName(project, "project")
        try Self.validateName(name, "name")
        let decision = try await authorize(ctx, AccessRequest(.project(project), .secrets, .edit, ["name": name]))
        let now = clock()
        return try await transact { tx in
            guard var record = try await tx.find(kind: Self.secretKind, scope: project, name: name) else {
                throw EngineError(.notFound, "secret not found")
            }
            if let expectedVersion, expectedVersion != record.version {
                throw EngineError(.conflict, "secret is at version \(record.version), not \(expectedVersion)")
            }
            let sealed = try await self.keyring.seal(value.bytes, binding: "secret/\(record.id)/value", tx)
            record.body = try JSONEncoder().encode(SecretBody(value: sealed))
            record.updatedAt = now
            let stored = try await tx.update(record)
            try await self.audit.append(
                self.allowed(
                    ctx, decision, "secret.update", project: project,
                    ["secretId": record.id, "name": name, "version": "\(stored.version)"]),
                tx)
            return self.metadata(stored)
        }
    }

    public func readSecret(_ ctx: CallContext, project: String, name: String) async throws -> (
        SecretMetadata, SecretBytes
    ) {
        try Self.validateName(project, "project")
        try Self.validateName(name, "name")
        let decision = try await authorize(ctx, AccessRequest(.project(project), .secrets, .read, ["name": name]))
        return try await transact(relaxed: true) { tx in
            guard let record = try await tx.find(kind: Self.secretKind, scope: project, name: name) else {
                throw EngineError(.notFound, "secret not found")
            }
            let body: SecretBody
            do {
                body = try JSONDecoder().decode(SecretBody.self, from: record.body)
            } catch {
                throw EngineError(.internal, "stored secret is unreadable", diagnostic: "\(record.id): \(error)")
            }
            let plain = try await self.keyring.open(body.value, binding: "secret/\(record.id)/value", tx)
            // The read is audited in the same transaction: no audit event, no plaintext.
            try await self.audit.append(
                self.allowed(ctx, decision, "secret.read", project: project, ["secretId": record.id, "name": name]), tx)
            return (self.metadata(record), SecretBytes(plain))
        }
    }

    public func listSecrets(_ ctx: CallContext, project: String, after: String?, limit: Int) async throws
        -> Page<SecretMetadata>
    {
        try Self.validateName(project, "project")
        let decision = try await authorize(ctx, AccessRequest(.project(project), .secrets, .read))
        let limit = min(max(limit, 1), 1000)
        let records = try await transact { tx in
            _ = try await self.requireProject(project, tx)
            let records = try await tx.list(kind: Self.secretKind, scope: project, afterID: after, limit: limit + 1)
            try await self.audit.append(self.allowed(ctx, decision, "secret.list", project: project), tx)
            return records
        }
        let page = records.prefix(limit)
        // Items the caller's conditions do not cover are left out (the cursor still advances past them).
        let items = page.map(metadata).filter {
            decision.permits(AccessRequest(.project(project), .secrets, .read, ["name": $0.name]))
        }
        return Page(items: items, next: records.count > limit ? page.last?.id : nil)
    }

    public func deleteSecret(_ ctx: CallContext, project: String, name: String) async throws {
        try Self.validateName(project, "project")
        try Self.validateName(name, "name")
        let decision = try await authorize(ctx, AccessRequest(.project(project), .secrets, .delete, ["name": name]))
        try await transact { tx in
            guard let record = try await tx.find(kind: Self.secretKind, scope: project, name: name) else {
                throw EngineError(.notFound, "secret not found")
            }
            try await tx.delete(kind: Self.secretKind, id: record.id, expectedVersion: record.version)
            try await self.audit.append(
                self.allowed(ctx, decision, "secret.delete", project: project, ["secretId": record.id, "name": name]),
                tx)
        }
    }
}
