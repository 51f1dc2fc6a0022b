import AdminAPI
import EngineAPI
import Foundation
import OpenAPIRuntime

/// Secrets and the audit log through the generated `APIProtocol`.
extension AdminHandler {
    var secrets: any SecretsEngine { services.secrets }

    func listSecrets(_ input: Operations.ListSecrets.Input) async throws -> Operations.ListSecrets.Output {
        let page = try await secrets.listSecrets(
            try await call(), project: input.path.project, after: input.query.after,
            limit: try limit(input.query.limit))
        return .ok(.init(body: .json(.init(next: page.next, secrets: try wire(page.items)))))
    }

    func createSecret(_ input: Operations.CreateSecret.Input) async throws -> Operations.CreateSecret.Output {
        guard case .json(let body) = input.body else { throw Self.noBody }
        let meta = try await secrets.createSecret(
            try await call(), project: input.path.project, name: input.path.name, value: SecretBytes(utf8: body.value))
        return .created(.init(body: .json(.init(secret: try wire(meta)))))
    }

    func updateSecret(_ input: Operations.UpdateSecret.Input) async throws -> Operations.UpdateSecret.Output {
        guard case .json(let body) = input.body else { throw Self.noBody }
        let meta = try await secrets.updateSecret(
            try await call(), project: input.path.project, name: input.path.name, value: SecretBytes(utf8: body.value),
            expectedVersion: body.expectedVersion.map(Int64.init))
        return .ok(.init(body: .json(.init(secret: try wire(meta)))))
    }

    func readSecret(_ input: Operations.ReadSecret.Input) async throws -> Operations.ReadSecret.Output {
        let (meta, value) = try await secrets.readSecret(
            try await call(), project: input.path.project, name: input.path.name)
        return .ok(
            .init(body: .json(.init(secret: try wire(meta), value: String(decoding: value.bytes, as: UTF8.self)))))
    }

    func deleteSecret(_ input: Operations.DeleteSecret.Input) async throws -> Operations.DeleteSecret.Output {
        try await secrets.deleteSecret(try await call(), project: input.path.project, name: input.path.name)
        return .noContent(.init())
    }

    /// An audit event with its place in the chain, as listed.
    private struct ChainedItem: Encodable {
        var chain: String
        var sequence: Int64
        var hash: String
        var event: AuditEvent
    }

    func listAuditEvents(_ input: Operations.ListAuditEvents.Input) async throws -> Operations.ListAuditEvents.Output {
        // Without search parameters: the whole log in arrival order (`cursor` from the last page's `next`). With
        // type, actor, project, since, until or order: a search in time order through the store's indexes.
        let q = input.query
        let limit = try limit(q.limit)
        let searching =
            q._type != nil || q.actor != nil || q.project != nil || q.since != nil || q.until != nil
            || q.order != nil
        let page: Page<ChainedAuditEvent>
        if searching {
            page = try await services.audit.searchAudit(
                try await call(),
                AuditSearch(
                    type: try text(q._type, "type"), actor: try text(q.actor, "actor"),
                    project: try text(q.project, "project"), since: q.since, until: q.until,
                    newestFirst: q.order == .desc, cursor: q.cursor, limit: limit))
        } else {
            page = try await services.audit.auditEvents(try await call(), cursor: q.cursor, limit: limit)
        }
        let items = page.items.map {
            ChainedItem(chain: $0.chain, sequence: $0.sequence, hash: $0.hash, event: $0.event)
        }
        return .ok(.init(body: .json(.init(events: try wire(items), next: page.next))))
    }
}
