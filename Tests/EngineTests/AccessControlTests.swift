import Crypto
import EngineAPI
import Foundation
import ServerSupport
import StorageAPI
import SwiftASN1
import Synchronization
import Testing
import X509

@testable import Engine

/// A clock tests move by hand.
final class TestClock: Sendable {
    private let now = Mutex(Date(timeIntervalSince1970: 1_800_000_000))
    var read: @Sendable () -> Date { { [self] in now.withLock { $0 } } }
    func advance(_ seconds: TimeInterval) { now.withLock { $0 += seconds } }
}

func caller(_ identity: IdentityInfo, ip: String? = "127.0.0.1") -> CallContext {
    CallContext(
        principal: Principal(method: .token, id: identity.id, name: identity.name), frontEnd: "test", ipAddress: ip)
}

func code(_ body: () async throws -> Void) async -> EngineError.Code? {
    do {
        try await body()
        return nil
    } catch let e as EngineError {
        return e.code
    } catch {
        return .internal
    }
}

/// The world every matrix cell starts from: projects alpha and beta with secrets and a custom role, and one
/// identity per persona.
struct World {
    let engine: GatehouseEngine
    var personas: [String: IdentityInfo] = [:]
    var spare: IdentityInfo
    var uaIdentity: IdentityInfo
    /// Per project: an Active AES key, a Pre-Active AES key and an Active HMAC key.
    var keys: [String: (active: String, preActive: String, hmac: String)] = [:]

    static func make() async throws -> World {
        let engine = try await openEngine(InMemoryStorage(), key: SymmetricKey(size: .bits256))
        for p in ["alpha", "beta"] {
            _ = try await engine.createProject(admin, slug: p, description: "")
            for s in ["app-1", "db-1"] {
                _ = try await engine.createSecret(admin, project: p, name: s, value: SecretBytes(utf8: "v"))
            }
            _ = try await engine.createRole(
                admin, project: p,
                RoleSpec(
                    slug: "app-reader",
                    permissions: [
                        Permission(subject: "secrets", actions: ["read"], conditions: ["name": .init(glob: "app-*")])
                    ]))
            _ = try await engine.createRole(
                admin, project: p,
                RoleSpec(
                    slug: "no-delete",
                    permissions: [
                        Permission(subject: "secrets", actions: ["*"]),
                        Permission(subject: "secrets", actions: ["delete"], inverted: true),
                    ]))
        }
        func identity(_ name: String, _ role: OrgRole, projectRole: String?) async throws -> IdentityInfo {
            let i = try await engine.createIdentity(admin, IdentitySpec(name: name, orgRole: role))
            if let projectRole {
                _ = try await engine.setMembership(
                    admin, project: "alpha", identityId: i.id, roles: [RoleGrant(role: projectRole)])
            }
            return i
        }
        var w = World(
            engine: engine, spare: try await identity("spare", .noAccess, projectRole: "viewer"),
            uaIdentity: try await identity("ua-holder", .noAccess, projectRole: nil))
        _ = try await engine.attachUniversalAuth(admin, identityId: w.uaIdentity.id, AuthMethodSpec())
        for p in ["alpha", "beta"] {
            let active = try await engine.createKey(
                admin, project: p,
                ObjectSpec(objectType: .symmetricKey, algorithm: 3, cryptographicLength: 256, names: ["k-\(p)"]))
            _ = try await engine.activateObject(admin, id: active.id)
            let pre = try await engine.createKey(
                admin, project: p, ObjectSpec(objectType: .symmetricKey, algorithm: 3, cryptographicLength: 128))
            let hmac = try await engine.createKey(
                admin, project: p, ObjectSpec(objectType: .symmetricKey, algorithm: 9, cryptographicLength: 256))
            _ = try await engine.activateObject(admin, id: hmac.id)
            w.keys[p] = (active.id, pre.id, hmac.id)
        }
        w.personas["org-admin"] = try await identity("org-admin", .admin, projectRole: nil)
        w.personas["org-member"] = try await identity("org-member", .member, projectRole: nil)
        w.personas["project-admin"] = try await identity("project-admin", .noAccess, projectRole: "admin")
        w.personas["developer"] = try await identity("developer", .noAccess, projectRole: "developer")
        w.personas["viewer"] = try await identity("viewer", .noAccess, projectRole: "viewer")
        w.personas["app-reader"] = try await identity("app-reader", .noAccess, projectRole: "app-reader")
        w.personas["no-delete"] = try await identity("no-delete", .noAccess, projectRole: "no-delete")
        w.personas["outsider"] = try await identity("outsider", .noAccess, projectRole: nil)
        return w
    }
}

typealias Operation = @Sendable (World, CallContext, String) async throws -> Void

/// Every engine operation that exists, run by a caller against project `p` (org-level ones ignore `p`).
let operations: [(String, Bool, Operation)] = [
    // (name, projectScoped, call)
    (
        "secret.create", true,
        { w, c, p in _ = try await w.engine.createSecret(c, project: p, name: "app-new", value: SecretBytes([1])) }
    ),
    ("secret.read app-*", true, { w, c, p in _ = try await w.engine.readSecret(c, project: p, name: "app-1") }),
    ("secret.read db-*", true, { w, c, p in _ = try await w.engine.readSecret(c, project: p, name: "db-1") }),
    (
        "secret.update", true,
        { w, c, p in
            _ = try await w.engine.updateSecret(
                c, project: p, name: "app-1", value: SecretBytes([2]), expectedVersion: nil)
        }
    ),
    ("secret.list", true, { w, c, p in _ = try await w.engine.listSecrets(c, project: p, after: nil, limit: 10) }),
    ("secret.delete", true, { w, c, p in try await w.engine.deleteSecret(c, project: p, name: "app-1") }),
    ("project.get", true, { w, c, p in _ = try await w.engine.getProject(c, slug: p) }),
    ("project.delete", true, { w, c, p in try await w.engine.deleteProject(c, slug: p) }),
    (
        "role.create", true,
        { w, c, p in
            _ = try await w.engine.createRole(
                c, project: p, RoleSpec(slug: "r2", permissions: [Permission(subject: "secrets", actions: ["read"])]))
        }
    ),
    ("role.list", true, { w, c, p in _ = try await w.engine.listRoles(c, project: p) }),
    ("role.get", true, { w, c, p in _ = try await w.engine.getRole(c, project: p, slug: "app-reader") }),
    ("role.delete", true, { w, c, p in try await w.engine.deleteRole(c, project: p, slug: "app-reader") }),
    (
        "membership.set", true,
        { w, c, p in
            _ = try await w.engine.setMembership(
                c, project: p, identityId: w.spare.id, roles: [RoleGrant(role: "admin")])
        }
    ),
    (
        "membership.list", true,
        { w, c, p in _ = try await w.engine.listMemberships(c, project: p, after: nil, limit: 10) }
    ),
    (
        "membership.delete", true,
        { w, c, p in try await w.engine.deleteMembership(c, project: p, identityId: w.spare.id) }
    ),
    (
        "privilege.create", true,
        { w, c, p in
            _ = try await w.engine.createPrivilege(
                c, project: p,
                PrivilegeSpec(
                    identityId: w.spare.id, slug: "x", permissions: [Permission(subject: "secrets", actions: ["read"])])
            )
        }
    ),
    ("privilege.list", true, { w, c, p in _ = try await w.engine.listPrivileges(c, project: p) }),
    (
        "kms.create", true,
        { w, c, p in
            _ = try await w.engine.createKey(
                c, project: p, ObjectSpec(objectType: .symmetricKey, algorithm: 3, cryptographicLength: 256))
        }
    ),
    (
        "kms.register", true,
        { w, c, p in
            _ = try await w.engine.registerObject(
                c, project: p, ObjectSpec(objectType: .secretData), material: SecretBytes([1, 2, 3]))
        }
    ),
    ("kms.get", true, { w, c, p in _ = try await w.engine.getObject(c, id: w.keys[p]?.active ?? "") }),
    ("kms.attributes", true, { w, c, p in _ = try await w.engine.objectAttributes(c, id: w.keys[p]?.active ?? "") }),
    ("kms.locate", true, { w, c, p in _ = try await w.engine.locateObjects(c, project: p, LocateFilter()) }),
    ("kms.activate", true, { w, c, p in _ = try await w.engine.activateObject(c, id: w.keys[p]?.preActive ?? "") }),
    (
        "kms.revoke", true,
        { w, c, p in
            _ = try await w.engine.revokeObject(
                c, id: w.keys[p]?.active ?? "", reason: 5, message: nil, compromiseOccurrence: nil)
        }
    ),
    ("kms.destroy", true, { w, c, p in _ = try await w.engine.destroyObject(c, id: w.keys[p]?.preActive ?? "") }),
    (
        "kms.encrypt", true,
        { w, c, p in
            _ = try await w.engine.encrypt(
                c, id: w.keys[p]?.active ?? "", CipherParameters(), data: [1], iv: nil, aad: nil)
        }
    ),
    (
        "kms.decrypt", true,
        { w, c, p in
            _ = try await w.engine.decrypt(
                c, id: w.keys[p]?.active ?? "", CipherParameters(), data: [1], iv: Array(repeating: 0, count: 12),
                aad: nil, tag: Array(repeating: 0, count: 16))
        }
    ),
    (
        "kms.mac", true,
        { w, c, p in _ = try await w.engine.mac(c, id: w.keys[p]?.hmac ?? "", CipherParameters(), data: [1]) }
    ),
    ("project.create", false, { w, c, _ in _ = try await w.engine.createProject(c, slug: "new-one", description: "") }),
    ("identity.create", false, { w, c, _ in _ = try await w.engine.createIdentity(c, IdentitySpec(name: "fresh")) }),
    ("identity.list", false, { w, c, _ in _ = try await w.engine.listIdentities(c, after: nil, limit: 10) }),
    ("identity.get", false, { w, c, _ in _ = try await w.engine.getIdentity(c, id: w.spare.id) }),
    (
        "identity.update", false,
        { w, c, _ in _ = try await w.engine.updateIdentity(c, id: w.spare.id, IdentitySpec(orgRole: .admin)) }
    ),
    ("identity.delete", false, { w, c, _ in try await w.engine.deleteIdentity(c, id: w.spare.id) }),
    (
        "universal-auth.attach", false,
        { w, c, _ in _ = try await w.engine.attachUniversalAuth(c, identityId: w.spare.id, AuthMethodSpec()) }
    ),
    (
        "universal-auth.get", false,
        { w, c, _ in _ = try await w.engine.getUniversalAuth(c, identityId: w.uaIdentity.id) }
    ),
    (
        "client-secret.create", false,
        { w, c, _ in _ = try await w.engine.createClientSecret(c, identityId: w.uaIdentity.id, ClientSecretSpec()) }
    ),
    (
        "client-secret.list", false,
        { w, c, _ in _ = try await w.engine.listClientSecrets(c, identityId: w.uaIdentity.id) }
    ),
    (
        "token-auth.attach", false,
        { w, c, _ in _ = try await w.engine.attachTokenAuth(c, identityId: w.spare.id, AuthMethodSpec()) }
    ),
    (
        "tls-cert-auth.attach", false,
        { w, c, _ in
            _ = try await w.engine.attachTLSCertAuth(
                c, identityId: w.spare.id,
                AuthMethodSpec(caCertificate: testCA.certificatePEM, allowedCommonNames: ["x"]))
        }
    ),
    ("audit.read", false, { w, c, _ in _ = try await w.engine.auditEvents(c, cursor: nil, limit: 10) }),
    ("audit.verify", false, { w, c, _ in _ = try await w.engine.verifyAudit(c) }),
]

let testCA: CertificateFactory.Issued = {
    do { return try CertificateFactory.makeCA(commonName: "Test Identity CA", validity: 86400 * 365) } catch {
        fatalError("cannot make a test CA: \(error)")
    }
}()

let orgOps: Set<String> = Set(operations.filter { !$0.1 }.map(\.0))
let projectOps: Set<String> = Set(operations.filter { $0.1 }.map(\.0))
let secretReads: Set<String> = ["secret.read app-*", "secret.read db-*", "secret.list"]
let kmsReads: Set<String> = ["kms.get", "kms.attributes", "kms.locate"]
let kmsAll: Set<String> = Set(operations.map(\.0).filter { $0.hasPrefix("kms.") })
let projectReads: Set<String> = secretReads.union(kmsReads).union([
    "project.get", "role.list", "role.get", "membership.list", "privilege.list",
])

/// What each persona may do in project alpha (and, for org-level operations, anywhere).
let expectedAllowed: [String: Set<String>] = [
    "org-admin": orgOps.union(projectOps),
    "org-member": ["project.create"],
    "project-admin": projectOps,
    "developer": projectReads.union(["secret.create", "secret.update", "secret.delete"]).union(kmsAll),
    "viewer": projectReads,
    "app-reader": ["secret.read app-*", "secret.list"],
    "no-delete": secretReads.union(["secret.create", "secret.update"]),
    "outsider": [],
]

@Suite(.serialized) struct AuthorizationMatrixTests {
    @Test(arguments: [
        "org-admin", "org-member", "project-admin", "developer", "viewer", "app-reader", "no-delete", "outsider",
    ])
    func matrix(persona: String) async throws {
        var mismatches: [String] = []
        let allowed = try #require(expectedAllowed[persona])
        for (name, projectScoped, call) in operations {
            for project in projectScoped ? ["alpha", "beta"] : ["alpha"] {
                let w = try await World.make()
                let who = try #require(w.personas[persona])
                let result = await code { try await call(w, caller(who), project) }
                let denied = result == .permissionDenied || result == .unauthenticated
                // Zero cross-project access: only an organization admin reaches project beta.
                let expectAllow = project == "beta" ? persona == "org-admin" : allowed.contains(name)
                if expectAllow == denied {
                    mismatches.append(
                        "\(persona) \(name) in \(project): expected \(expectAllow ? "allow" : "deny"), got \(result.map { "\($0)" } ?? "success")"
                    )
                }
                if denied {
                    // Every denial is audited with the action.
                    let events = try await w.engine.auditEvents(admin, cursor: nil, limit: 1000).items
                    let last = events.last?.event
                    if last?.event.type != "authorization.denied" || last?.event.metadata["identityId"] != who.id {
                        mismatches.append("\(persona) \(name): denial not audited")
                    }
                }
            }
        }
        #expect(mismatches.isEmpty, "\(mismatches.joined(separator: "\n"))")
    }

    @Test func listingsOnlyShowWhatConditionsAllow() async throws {
        let w = try await World.make()
        let page = try await w.engine.listSecrets(
            caller(try #require(w.personas["app-reader"])), project: "alpha", after: nil, limit: 10)
        #expect(page.items.map(\.name) == ["app-1"])
        let projects = try await w.engine.listProjects(
            caller(try #require(w.personas["viewer"])), after: nil, limit: 10)
        #expect(projects.items.map(\.slug) == ["alpha"])
        let all = try await w.engine.listProjects(caller(try #require(w.personas["org-admin"])), after: nil, limit: 10)
        #expect(Set(all.items.map(\.slug)) == ["alpha", "beta", "p", "p1"])
    }

    @Test func allowedOperationsNameTheirGrant() async throws {
        let w = try await World.make()
        let dev = try #require(w.personas["developer"])
        _ = try await w.engine.readSecret(caller(dev), project: "alpha", name: "db-1")
        let last = try #require(try await w.engine.auditEvents(admin, cursor: nil, limit: 1000).items.last)
        #expect(last.event.event.type == "secret.read")
        #expect(last.event.event.metadata["decision"] == "allow")
        #expect(last.event.event.metadata["grantedBy"] == "role:developer")
        #expect(last.event.event.metadata["identityId"] == dev.id)
    }

    @Test func membersCreatingAProjectAdministerIt() async throws {
        let w = try await World.make()
        let member = try #require(w.personas["org-member"])
        _ = try await w.engine.createProject(caller(member), slug: "mine", description: "")
        _ = try await w.engine.createSecret(caller(member), project: "mine", name: "s", value: SecretBytes([1]))
        #expect(
            await code { _ = try await w.engine.readSecret(caller(member), project: "alpha", name: "app-1") }
                == .permissionDenied)
    }
}

@Suite struct PolicyFeatureTests {
    @Test func templateConditions() async throws {
        let w = try await World.make()
        let engine = w.engine
        _ = try await engine.createRole(
            admin, project: "alpha",
            RoleSpec(
                slug: "own-prefix",
                permissions: [
                    Permission(
                        subject: "secrets", actions: ["*"], conditions: ["name": .init(glob: "{{ identity.name }}-*")]),
                    Permission(
                        subject: "secrets", actions: ["read"],
                        conditions: ["name": .init(eq: "{{ identity.metadata.team }}-shared")]),
                ]))
        let i = try await engine.createIdentity(
            admin, IdentitySpec(name: "svc", orgRole: .noAccess, metadata: ["team": "payments"]))
        _ = try await engine.setMembership(
            admin, project: "alpha", identityId: i.id, roles: [RoleGrant(role: "own-prefix")])
        _ = try await engine.createSecret(admin, project: "alpha", name: "payments-shared", value: SecretBytes([1]))
        _ = try await engine.createSecret(admin, project: "alpha", name: "other-shared", value: SecretBytes([1]))
        _ = try await engine.createSecret(caller(i), project: "alpha", name: "svc-token", value: SecretBytes([1]))
        #expect(
            await code {
                _ = try await engine.createSecret(
                    caller(i), project: "alpha", name: "other-token", value: SecretBytes([1]))
            } == .permissionDenied)
        _ = try await engine.readSecret(caller(i), project: "alpha", name: "payments-shared")
        #expect(
            await code { _ = try await engine.readSecret(caller(i), project: "alpha", name: "other-shared") }
                == .permissionDenied)
        // An unknown metadata key never matches (fails closed).
        let j = try await engine.createIdentity(admin, IdentitySpec(name: "nometa", orgRole: .noAccess))
        _ = try await engine.setMembership(
            admin, project: "alpha", identityId: j.id, roles: [RoleGrant(role: "own-prefix")])
        #expect(await code { _ = try await engine.readSecret(caller(j), project: "alpha", name: "-shared") } != nil)
    }

    @Test func temporaryRolesAndPrivilegesExpireByThemselves() async throws {
        let clock = TestClock()
        let engine = try await openEngine(InMemoryStorage(), key: SymmetricKey(size: .bits256), clock: clock.read)
        _ = try await engine.createSecret(admin, project: "p", name: "s", value: SecretBytes([1]))
        let i = try await engine.createIdentity(admin, IdentitySpec(name: "oncall"))
        _ = try await engine.setMembership(
            admin, project: "p", identityId: i.id,
            roles: [RoleGrant(role: "viewer", isTemporary: true, temporaryRange: "1m")])
        _ = try await engine.readSecret(caller(i), project: "p", name: "s")
        clock.advance(59)
        _ = try await engine.readSecret(caller(i), project: "p", name: "s")
        clock.advance(2)
        #expect(await code { _ = try await engine.readSecret(caller(i), project: "p", name: "s") } == .permissionDenied)

        let k = try await engine.createIdentity(admin, IdentitySpec(name: "breakglass"))
        _ = try await engine.createPrivilege(
            admin, project: "p",
            PrivilegeSpec(
                identityId: k.id, slug: "read-s", permissions: [Permission(subject: "secrets", actions: ["read"])],
                isTemporary: true, temporaryRange: "2h"))
        _ = try await engine.readSecret(caller(k), project: "p", name: "s")
        #expect(await code { try await engine.deleteSecret(caller(k), project: "p", name: "s") } == .permissionDenied)
        clock.advance(2 * 3600)
        #expect(await code { _ = try await engine.readSecret(caller(k), project: "p", name: "s") } == .permissionDenied)
        #expect(
            await code {
                _ = try await engine.setMembership(
                    admin, project: "p", identityId: k.id,
                    roles: [RoleGrant(role: "viewer", isTemporary: true, temporaryRange: "forever")])
            } == .invalidArgument)
    }

    /// A project with more than 10,000 custom roles and privileges (a year of temporary grants): an authorization
    /// reads the caller's own membership, the roles it grants and its privileges through their keys and indexes, so
    /// a grant stored after the others (its id sorting last) counts like any other and the project's size does not.
    @Test func grantsCountWhateverTheNumberOfOthersInTheProject() async throws {
        let storage = InMemoryStorage()
        let engine = try await openEngine(storage, key: SymmetricKey(size: .bits256))
        _ = try await engine.createSecret(admin, project: "p", name: "s", value: SecretBytes([1]))
        let others = (0..<10_050).map { _ in UUID().uuidString.lowercased() }
        let read = [Permission(subject: "secrets", actions: ["read"])]
        try await storage.withTransaction { tx in
            for (i, id) in others.enumerated() {
                try await tx.insert(
                    Record(
                        kind: AccessKind.privilege, id: id, scope: "p",
                        body: try JSONEncoder().encode(
                            PrivilegeBody(identityId: id, slug: "p\(i)", permissions: read, isTemporary: false)),
                        createdAt: Date()))
                try await tx.insert(
                    Record(
                        kind: AccessKind.role, id: id, scope: "p", name: "role-\(i)",
                        body: try JSONEncoder().encode(RoleBody(description: "", permissions: read)), createdAt: Date())
                )
            }
        }
        let byPrivilege = try await engine.createIdentity(admin, IdentitySpec(name: "late-privilege"))
        let byRole = try await engine.createIdentity(admin, IdentitySpec(name: "late-role"))
        try await storage.withTransaction { tx in
            try await tx.insert(
                Record(
                    kind: AccessKind.privilege, id: "ffffffff-ffff-ffff-ffff-fffffffffffe", scope: "p",
                    body: try JSONEncoder().encode(
                        PrivilegeBody(identityId: byPrivilege.id, slug: "late", permissions: read, isTemporary: false)),
                    createdAt: Date()))
            try await tx.insert(
                Record(
                    kind: AccessKind.role, id: "ffffffff-ffff-ffff-ffff-ffffffffffff", scope: "p", name: "zz-late",
                    body: try JSONEncoder().encode(RoleBody(description: "", permissions: read)), createdAt: Date()))
        }
        _ = try await engine.setMembership(
            admin, project: "p", identityId: byRole.id, roles: [RoleGrant(role: "zz-late")])
        _ = try await engine.readSecret(caller(byPrivilege), project: "p", name: "s")
        _ = try await engine.readSecret(caller(byRole), project: "p", name: "s")
        // Someone else's privilege grants nothing.
        let nobody = try await engine.createIdentity(admin, IdentitySpec(name: "nobody"))
        #expect(
            await code { _ = try await engine.readSecret(caller(nobody), project: "p", name: "s") } == .permissionDenied
        )
    }

    /// A project's members in pages, through the per-project index: identity order, no gap or repeat, `next` only
    /// while more follow, and a page costs its size (1,205 members read in pages of 500).
    @Test func membersArePagedInIdentityOrder() async throws {
        let engine = try await openEngine(InMemoryStorage(), key: SymmetricKey(size: .bits256))
        var ids: [String] = []
        for i in 0..<1205 {
            let identity = try await engine.createIdentity(admin, IdentitySpec(name: "member-\(i)"))
            _ = try await engine.setMembership(
                admin, project: "p", identityId: identity.id, roles: [RoleGrant(role: "viewer")])
            ids.append(identity.id)
        }
        // A member of another project is not listed.
        let elsewhere = try await engine.createIdentity(admin, IdentitySpec(name: "elsewhere"))
        _ = try await engine.createProject(admin, slug: "q", description: "")
        _ = try await engine.setMembership(
            admin, project: "q", identityId: elsewhere.id, roles: [RoleGrant(role: "viewer")])
        var seen: [String] = []
        var after: String?
        var pages = 0
        repeat {
            let page = try await engine.listMemberships(admin, project: "p", after: after, limit: 500)
            #expect(page.items.count == (pages < 2 ? 500 : 205))
            seen += page.items.map(\.identityId)
            after = page.next
            pages += 1
        } while after != nil
        #expect(pages == 3)
        #expect(seen == ids.sorted())
        // After an id that is no member: the members that sort after it.
        let middle = ids.sorted()[600]
        let from = try await engine.listMemberships(admin, project: "p", after: middle + "0", limit: 1000)
        #expect(from.items.map(\.identityId) == Array(ids.sorted()[601...]))
    }

    @Test func hostilePermissionsAreRejected() async throws {
        let engine = try await openEngine(InMemoryStorage(), key: SymmetricKey(size: .bits256))
        let bad: [[Permission]] = [
            [],
            [Permission(subject: "everything", actions: ["read"])],
            [Permission(subject: "secrets", actions: ["launch"])],
            [Permission(subject: "secrets", actions: ["read"], conditions: ["owner": .init(eq: "x")])],
            [Permission(subject: "secrets", actions: ["read"], conditions: ["name": .init()])],
        ]
        for permissions in bad {
            #expect(
                await code {
                    _ = try await engine.createRole(
                        admin, project: "p", RoleSpec(slug: "bad", permissions: permissions))
                } == .invalidArgument)
        }
        #expect(
            await code {
                _ = try await engine.createRole(
                    admin, project: "p",
                    RoleSpec(slug: "admin", permissions: [Permission(subject: "secrets", actions: ["read"])]))
            } == .alreadyExists)
    }

    @Test func globsAndCIDRs() {
        #expect(Glob.matches("app-*", "app-1"))
        #expect(!Glob.matches("app-*", "app/x"))
        #expect(Glob.matches("/dev/**", "/dev/a/b"))
        #expect(Glob.matches("a?c", "abc"))
        #expect(!Glob.matches("a*b", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaac"))
        #expect(CIDR("10.0.0.0/8")?.contains("10.1.2.3") == true)
        #expect(CIDR("10.0.0.0/8")?.contains("11.1.2.3") == false)
        #expect(CIDR("10.0.0.0/8")?.contains("::ffff:10.0.0.1") == true)
        #expect(CIDR("::/0")?.contains("::1") == true)
        #expect(CIDR("2001:db8::/32")?.contains("2001:db9::1") == false)
        #expect(CIDR("127.0.0.1")?.contains("127.0.0.1") == true)
        #expect(CIDR("300.0.0.0/8") == nil)
        #expect(CIDR("10.0.0.0/33") == nil)
        #expect(DurationText.seconds("3d") == 259_200)
        #expect(DurationText.seconds("0m") == nil)
    }
}

@Suite struct AuthenticationTests {
    func universal(_ clock: TestClock, _ spec: AuthMethodSpec = AuthMethodSpec()) async throws
        -> (GatehouseEngine, IdentityInfo, UniversalAuthInfo, String)
    {
        let engine = try await openEngine(InMemoryStorage(), key: SymmetricKey(size: .bits256), clock: clock.read)
        let i = try await engine.createIdentity(admin, IdentitySpec(name: "svc"))
        _ = try await engine.setMembership(admin, project: "p", identityId: i.id, roles: [RoleGrant(role: "viewer")])
        let ua = try await engine.attachUniversalAuth(admin, identityId: i.id, spec)
        let (_, secret) = try await engine.createClientSecret(admin, identityId: i.id, ClientSecretSpec())
        return (engine, i, ua, String(decoding: secret.bytes, as: UTF8.self))
    }

    func login(_ engine: GatehouseEngine, _ clientId: String, _ secret: String, ip: String = "127.0.0.1") async throws
        -> IssuedToken
    {
        try await engine.loginUniversalAuth(
            CallContext(principal: .anonymous, frontEnd: "test", ipAddress: ip), clientId: clientId,
            clientSecret: SecretBytes(utf8: secret))
    }

    @Test func defaultsFollowTheReferencePlatform() async throws {
        let (_, _, ua, _) = try await universal(TestClock())
        #expect(ua.token.accessTokenTTL == 2_592_000)
        #expect(ua.token.accessTokenMaxTTL == 2_592_000)
        #expect(ua.token.accessTokenNumUsesLimit == 0)
        #expect(ua.token.accessTokenTrustedIps == ["0.0.0.0/0", "::/0"])
        #expect(
            ua.lockoutEnabled && ua.lockoutThreshold == 3 && ua.lockoutDurationSeconds == 300
                && ua.lockoutCounterResetSeconds == 30)
    }

    @Test func loginThenUseTheToken() async throws {
        let (engine, i, ua, secret) = try await universal(TestClock())
        let token = try await login(engine, ua.clientId, secret)
        #expect(token.tokenType == "Bearer" && token.expiresIn == 2_592_000)
        #expect(!"\(token)".contains(token.accessToken))
        let principal = try await engine.authenticate(
            bearerToken: token.accessToken, ipAddress: "127.0.0.1", frontEnd: "test")
        #expect(principal.id == i.id && principal.method == .token)
        let ctx = CallContext(principal: principal, frontEnd: "test")
        #expect(try await engine.whoami(ctx)["identityId"] == i.id)
        _ = try await engine.listSecrets(ctx, project: "p", after: nil, limit: 10)
    }

    @Test func lockoutTiming() async throws {
        let clock = TestClock()
        let (engine, _, ua, secret) = try await universal(clock)
        // Two failures, then the counter resets after 30 s of quiet.
        for _ in 0..<2 {
            #expect(await code { _ = try await login(engine, ua.clientId, "ghcs_wrong") } == .unauthenticated)
        }
        clock.advance(31)
        for _ in 0..<2 {
            #expect(await code { _ = try await login(engine, ua.clientId, "ghcs_wrong") } == .unauthenticated)
        }
        _ = try await login(engine, ua.clientId, secret)  // still not locked: 2 failures since the reset
        // Three failures within 30 s lock for 5 minutes, even for the right secret.
        for _ in 0..<3 {
            clock.advance(5)
            #expect(await code { _ = try await login(engine, ua.clientId, "ghcs_wrong") } == .unauthenticated)
        }
        #expect(await code { _ = try await login(engine, ua.clientId, secret) } == .locked)
        clock.advance(299)
        #expect(await code { _ = try await login(engine, ua.clientId, secret) } == .locked)
        clock.advance(2)
        _ = try await login(engine, ua.clientId, secret)
        let events = try await engine.auditEvents(admin, cursor: nil, limit: 1000).items.map(\.event.event)
        #expect(events.filter { $0.type == "login.failed" }.count == 9)
        #expect(events.contains { $0.type == "login.failed" && $0.metadata["reason"] == "locked out" })
    }

    @Test func lockoutCanBeDisabled() async throws {
        let (engine, _, ua, secret) = try await universal(TestClock(), AuthMethodSpec(lockoutEnabled: false))
        for _ in 0..<5 {
            #expect(await code { _ = try await login(engine, ua.clientId, "ghcs_wrong") } == .unauthenticated)
        }
        _ = try await login(engine, ua.clientId, secret)
    }

    @Test func tokenTTLMaxTTLAndRenewal() async throws {
        let clock = TestClock()
        let (engine, _, ua, secret) = try await universal(
            clock, AuthMethodSpec(accessTokenTTL: 60, accessTokenMaxTTL: 150))
        let t = try await login(engine, ua.clientId, secret)
        #expect(t.expiresIn == 60)
        clock.advance(50)
        let renewed = try await engine.renewToken(
            CallContext(principal: .anonymous, frontEnd: "test"), accessToken: t.accessToken)
        #expect(renewed.expiresIn == 60)
        clock.advance(55)  // 105 s after creation: alive thanks to the renewal
        _ = try await engine.authenticate(bearerToken: t.accessToken, ipAddress: nil, frontEnd: "test")
        let capped = try await engine.renewToken(
            CallContext(principal: .anonymous, frontEnd: "test"), accessToken: t.accessToken)
        #expect(capped.expiresIn == 45)  // capped at max TTL (150 s after creation)
        clock.advance(46)
        #expect(
            await code {
                _ = try await engine.authenticate(bearerToken: t.accessToken, ipAddress: nil, frontEnd: "test")
            } == .unauthenticated)
        #expect(
            await code {
                _ = try await engine.renewToken(
                    CallContext(principal: .anonymous, frontEnd: "test"), accessToken: t.accessToken)
            } == .unauthenticated)
    }

    @Test func periodicTokensRenewWithoutMax() async throws {
        let clock = TestClock()
        let (engine, _, ua, secret) = try await universal(
            clock, AuthMethodSpec(accessTokenTTL: 60, accessTokenMaxTTL: 60, accessTokenPeriod: 30))
        let t = try await login(engine, ua.clientId, secret)
        for _ in 0..<5 {
            clock.advance(25)
            _ = try await engine.renewToken(
                CallContext(principal: .anonymous, frontEnd: "test"), accessToken: t.accessToken)
        }
        // 125 s after login, past the 60 s maximum a non-periodic token would have: still valid.
        let still = try await engine.authenticate(bearerToken: t.accessToken, ipAddress: nil, frontEnd: "test")
        #expect(still.method == .token)
        // Not renewed within its period (30 s), it expires.
        clock.advance(31)
        #expect(
            await code {
                _ = try await engine.authenticate(bearerToken: t.accessToken, ipAddress: nil, frontEnd: "test")
            } == .unauthenticated)
    }

    @Test func usesAndTrustedIPs() async throws {
        let (engine, _, ua, secret) = try await universal(
            TestClock(), AuthMethodSpec(accessTokenNumUsesLimit: 2, accessTokenTrustedIps: ["10.0.0.0/8", "::1"]))
        let t = try await login(engine, ua.clientId, secret)
        #expect(
            await code {
                _ = try await engine.authenticate(
                    bearerToken: t.accessToken, ipAddress: "192.168.1.1", frontEnd: "test")
            } == .unauthenticated)
        _ = try await engine.authenticate(bearerToken: t.accessToken, ipAddress: "10.2.3.4", frontEnd: "test")
        _ = try await engine.authenticate(bearerToken: t.accessToken, ipAddress: "::1", frontEnd: "test")
        #expect(
            await code {
                _ = try await engine.authenticate(bearerToken: t.accessToken, ipAddress: "10.2.3.4", frontEnd: "test")
            } == .unauthenticated)
        let reasons = try await engine.auditEvents(admin, cursor: nil, limit: 1000).items.map(\.event.event).filter {
            $0.type == "authentication.failed"
        }.compactMap { $0.metadata["reason"] }
        #expect(reasons == ["token used from an untrusted address", "token use limit reached"])
    }

    @Test func clientSecretLimitsAndRevocation() async throws {
        let clock = TestClock()
        let (engine, i, ua, _) = try await universal(
            clock, AuthMethodSpec(clientSecretTrustedIps: ["127.0.0.0/8"], lockoutEnabled: false))
        let (info, s) = try await engine.createClientSecret(
            admin, identityId: i.id, ClientSecretSpec(ttl: 100, numUsesLimit: 2))
        let secret = String(decoding: s.bytes, as: UTF8.self)
        #expect(await code { _ = try await login(engine, ua.clientId, secret, ip: "10.0.0.1") } == .unauthenticated)
        _ = try await login(engine, ua.clientId, secret)
        _ = try await login(engine, ua.clientId, secret)
        #expect(await code { _ = try await login(engine, ua.clientId, secret) } == .unauthenticated)
        let (info2, s2) = try await engine.createClientSecret(admin, identityId: i.id, ClientSecretSpec(ttl: 100))
        let secret2 = String(decoding: s2.bytes, as: UTF8.self)
        clock.advance(101)
        #expect(await code { _ = try await login(engine, ua.clientId, secret2) } == .unauthenticated)
        let (info3, s3) = try await engine.createClientSecret(admin, identityId: i.id, ClientSecretSpec())
        _ = try await engine.revokeClientSecret(admin, identityId: i.id, clientSecretId: info3.id)
        #expect(
            await code { _ = try await login(engine, ua.clientId, String(decoding: s3.bytes, as: UTF8.self)) }
                == .unauthenticated)
        #expect(info.prefix.hasPrefix("ghcs_") && info2.id != info.id)
        // Secrets are stored as hashes only.
        #expect(try await engine.listClientSecrets(admin, identityId: i.id).allSatisfy { $0.prefix.count == 9 })
    }

    /// Two nodes on one store: a token checked on node B is held there as checked for at most `AccessCache.ttl`
    /// (2 s), so a revocation on node A is refused by B within that time; its expiry is checked on every request.
    @Test func aTokenRevokedOnAnotherNodeIsRefusedWithinTheCacheLifetime() async throws {
        let clock = TestClock()
        let storage = InMemoryStorage()
        let key = SymmetricKey(size: .bits256)
        let a = try await openEngine(storage, key: key, clock: clock.read, node: "a")
        let b = try await openEngine(storage, key: key, clock: clock.read, node: "b")
        let i = try await a.createIdentity(admin, IdentitySpec(name: "svc"))
        let ua = try await a.attachUniversalAuth(
            admin, identityId: i.id, AuthMethodSpec(accessTokenTTL: 60, accessTokenMaxTTL: 60))
        let (_, s) = try await a.createClientSecret(admin, identityId: i.id, ClientSecretSpec())
        let t = try await login(a, ua.clientId, String(decoding: s.bytes, as: UTF8.self))
        func onB() async -> EngineError.Code? {
            await code { _ = try await b.authenticate(bearerToken: t.accessToken, ipAddress: nil, frontEnd: "test") }
        }
        #expect(await onB() == nil)
        try await a.revokeToken(CallContext(principal: .anonymous, frontEnd: "test"), accessToken: t.accessToken)
        #expect(
            await code { _ = try await a.authenticate(bearerToken: t.accessToken, ipAddress: nil, frontEnd: "test") }
                == .unauthenticated, "refused at once on the node that revoked it")
        clock.advance(2.5)
        #expect(await onB() == .unauthenticated, "refused by the other node once its check is older than 2 s")

        // Expiry is not cached: a token checked a moment before it expires is refused the moment after.
        let t2 = try await login(a, ua.clientId, String(decoding: s.bytes, as: UTF8.self))
        clock.advance(59.5)
        _ = try await b.authenticate(bearerToken: t2.accessToken, ipAddress: nil, frontEnd: "test")
        clock.advance(1)
        #expect(
            await code { _ = try await b.authenticate(bearerToken: t2.accessToken, ipAddress: nil, frontEnd: "test") }
                == .unauthenticated)
    }

    @Test func revokedAndDeletedTokensStopWorking() async throws {
        let (engine, i, ua, secret) = try await universal(TestClock())
        let t = try await login(engine, ua.clientId, secret)
        // Used first, so that the revocation has to reach a token this node holds as checked.
        _ = try await engine.authenticate(bearerToken: t.accessToken, ipAddress: nil, frontEnd: "test")
        try await engine.revokeToken(CallContext(principal: .anonymous, frontEnd: "test"), accessToken: t.accessToken)
        #expect(
            await code {
                _ = try await engine.authenticate(bearerToken: t.accessToken, ipAddress: nil, frontEnd: "test")
            } == .unauthenticated)
        let t2 = try await login(engine, ua.clientId, secret)
        _ = try await engine.authenticate(bearerToken: t2.accessToken, ipAddress: nil, frontEnd: "test")
        try await engine.deleteIdentity(admin, id: i.id)
        #expect(
            await code {
                _ = try await engine.authenticate(bearerToken: t2.accessToken, ipAddress: nil, frontEnd: "test")
            } == .unauthenticated)
        #expect(await code { _ = try await login(engine, ua.clientId, secret) } == .unauthenticated)
        #expect(
            await code {
                _ = try await engine.authenticate(bearerToken: "ghat_nonsense", ipAddress: nil, frontEnd: "test")
            } == .unauthenticated)
        #expect(
            await code {
                _ = try await engine.authenticate(
                    bearerToken: String(repeating: "x", count: 100_000), ipAddress: nil, frontEnd: "test")
            } == .unauthenticated)
    }

    @Test func tokenAuth() async throws {
        let engine = try await openEngine(InMemoryStorage(), key: SymmetricKey(size: .bits256))
        let i = try await engine.createIdentity(admin, IdentitySpec(name: "ci"))
        #expect(await code { _ = try await engine.createIdentityToken(admin, identityId: i.id) } == .wrongState)
        _ = try await engine.attachTokenAuth(
            admin, identityId: i.id, AuthMethodSpec(accessTokenTTL: 3600, accessTokenMaxTTL: 7200))
        let t = try await engine.createIdentityToken(admin, identityId: i.id)
        #expect(t.expiresIn == 3600)
        let p = try await engine.authenticate(bearerToken: t.accessToken, ipAddress: nil, frontEnd: "test")
        #expect(p.id == i.id)
        #expect(
            await code {
                _ = try await engine.attachTokenAuth(
                    admin, identityId: i.id, AuthMethodSpec(accessTokenTTL: 10, accessTokenMaxTTL: 5))
            } == .invalidArgument)
        #expect(
            await code {
                _ = try await engine.attachTokenAuth(
                    admin, identityId: i.id, AuthMethodSpec(accessTokenTrustedIps: ["nope"]))
            } == .invalidArgument)
        // The API schema bounds the lockout fields and trusted addresses for every method: token auth, which does not
        // use them, refuses what the schema refuses instead of storing it (Schemathesis found -15315704377181 accepted).
        let j = try await engine.createIdentity(admin, IdentitySpec(name: "ci-2"))
        for spec in [
            AuthMethodSpec(lockoutDurationSeconds: -15_315_704_377_181), AuthMethodSpec(lockoutThreshold: 0),
            AuthMethodSpec(lockoutCounterResetSeconds: 3601), AuthMethodSpec(clientSecretTrustedIps: ["nope"]),
        ] {
            #expect(
                await code { _ = try await engine.attachTokenAuth(admin, identityId: j.id, spec) } == .invalidArgument,
                "\(spec)")
        }
        _ = try await engine.attachTokenAuth(admin, identityId: j.id, AuthMethodSpec(lockoutDurationSeconds: 86_400))
    }

    @Test func tlsCertificateAuth() async throws {
        let engine = try await openEngine(InMemoryStorage(), key: SymmetricKey(size: .bits256))
        _ = try await engine.createSecret(admin, project: "p", name: "k", value: SecretBytes([1]))
        let i = try await engine.createIdentity(admin, IdentitySpec(name: "array-01"))
        _ = try await engine.setMembership(admin, project: "p", identityId: i.id, roles: [RoleGrant(role: "viewer")])
        _ = try await engine.attachTLSCertAuth(
            admin, identityId: i.id,
            AuthMethodSpec(caCertificate: testCA.certificatePEM, allowedCommonNames: ["array-01.example"]))
        func principal(_ cn: String, issuer: CertificateFactory.Issued, listener: Bool = false) throws -> CallContext {
            let leaf = try CertificateFactory.issue(commonName: cn, usage: .client, issuer: issuer, validity: 3600)
            var der = DER.Serializer()
            try der.serialize(leaf.certificate)
            return CallContext(
                principal: Principal(
                    method: .tlsCertificate, id: "fp-\(cn)-\(UUID())", name: cn,
                    certificateChain: [der.serializedBytes],
                    verifiedByListener: listener),
                frontEnd: "test")
        }
        let good = try principal("array-01.example", issuer: testCA)
        _ = try await engine.readSecret(good, project: "p", name: "k")
        #expect(try await engine.whoami(good)["identityId"] == i.id)
        let token = try await engine.loginTLSCertAuth(good, identityId: i.id)
        #expect(
            try await engine.authenticate(bearerToken: token.accessToken, ipAddress: nil, frontEnd: "test").id == i.id)
        // Right CA, disallowed common name.
        let wrongName = try principal("array-02.example", issuer: testCA)
        #expect(await code { _ = try await engine.readSecret(wrongName, project: "p", name: "k") } == .unauthenticated)
        #expect(await code { _ = try await engine.loginTLSCertAuth(wrongName, identityId: i.id) } == .unauthenticated)
        // Allowed name, another CA.
        let otherCA = try CertificateFactory.makeCA(commonName: "Other CA", validity: 86400)
        let foreign = try principal("array-01.example", issuer: otherCA)
        #expect(await code { _ = try await engine.readSecret(foreign, project: "p", name: "k") } == .unauthenticated)
        #expect(await code { _ = try await engine.loginTLSCertAuth(foreign, identityId: i.id) } == .unauthenticated)
        // A bootstrap-admin common name only counts when the listener's own CA verified it.
        let fakeAdmin = try principal("gatehouse-admin", issuer: otherCA)
        #expect(await code { _ = try await engine.listIdentities(fakeAdmin, after: nil, limit: 1) } == .unauthenticated)
        let failures = try await engine.auditEvents(admin, cursor: nil, limit: 1000).items.map(\.event.event.type)
        #expect(failures.filter { $0 == "authentication.failed" || $0 == "login.failed" }.count == 5)
        // Not a CA certificate → refused.
        let leafPEM = try CertificateFactory.issue(commonName: "x", usage: .client, issuer: testCA, validity: 60)
            .certificatePEM
        #expect(
            await code {
                _ = try await engine.attachTLSCertAuth(
                    admin, identityId: i.id, AuthMethodSpec(caCertificate: leafPEM, allowedCommonNames: ["x"]))
            } == .invalidArgument)
        #expect(
            await code {
                _ = try await engine.attachTLSCertAuth(
                    admin, identityId: i.id, AuthMethodSpec(caCertificate: "garbage", allowedCommonNames: ["x"]))
            } == .invalidArgument)
    }
}
