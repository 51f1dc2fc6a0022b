import EngineAPI
import Foundation

/// What a permission is about: a resource type, in a project or in the organization. Rules name it by `rawValue`.
public struct PermissionSubject: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public let rawValue: String
    public init(rawValue: String) { self.rawValue = rawValue }
    public var description: String { rawValue }

    // In a project.
    public static let project = Self(rawValue: "project")
    public static let secrets = Self(rawValue: "secrets")
    public static let roles = Self(rawValue: "roles")
    public static let members = Self(rawValue: "members")
    public static let kmsKeys = Self(rawValue: "kms-keys")
    public static let certificateAuthorities = Self(rawValue: "certificate-authorities")
    public static let certificateTemplates = Self(rawValue: "certificate-templates")
    public static let certificateProfiles = Self(rawValue: "certificate-profiles")
    public static let certificates = Self(rawValue: "certificates")
    public static let pkiAlerts = Self(rawValue: "pki-alerts")
    public static let sshCertificateAuthorities = Self(rawValue: "ssh-certificate-authorities")
    public static let sshCertificates = Self(rawValue: "ssh-certificates")
    public static let sshHosts = Self(rawValue: "ssh-hosts")
    public static let pamResources = Self(rawValue: "pam-resources")
    public static let pamAccounts = Self(rawValue: "pam-accounts")
    public static let pamAccess = Self(rawValue: "pam-access")
    public static let pamSessions = Self(rawValue: "pam-sessions")
    // In the organization.
    public static let projects = Self(rawValue: "projects")
    public static let identities = Self(rawValue: "identities")
    public static let audit = Self(rawValue: "audit")
    public static let kmip = Self(rawValue: "kmip")

    /// The subjects of project roles and of organization roles.
    public static let inProject: [Self] = [
        .project, .secrets, .roles, .members, .kmsKeys, .certificateAuthorities, .certificateTemplates,
        .certificateProfiles,
        .certificates, .pkiAlerts, .sshCertificateAuthorities, .sshCertificates, .sshHosts, .pamResources, .pamAccounts,
        .pamAccess, .pamSessions,
    ]
    public static let inOrganization: [Self] = [.projects, .identities, .audit, .kmip]
}

/// What a permission allows on its subject. Rules name it by `rawValue`.
public struct PermissionAction: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public let rawValue: String
    public init(rawValue: String) { self.rawValue = rawValue }
    public var description: String { rawValue }

    public static let read = Self(rawValue: "read")
    public static let create = Self(rawValue: "create")
    public static let edit = Self(rawValue: "edit")
    public static let delete = Self(rawValue: "delete")
    public static let encrypt = Self(rawValue: "encrypt")
    public static let decrypt = Self(rawValue: "decrypt")
    public static let mac = Self(rawValue: "mac")
    public static let sign = Self(rawValue: "sign")
    public static let verify = Self(rawValue: "verify")
    public static let revoke = Self(rawValue: "revoke")
    public static let export = Self(rawValue: "export")
    public static let request = Self(rawValue: "request")
    public static let approve = Self(rawValue: "approve")
    public static let autoApprove = Self(rawValue: "auto-approve")

    public static let all: [Self] = [
        .read, .create, .edit, .delete, .encrypt, .decrypt, .mac, .sign, .verify, .revoke, .export, .request, .approve,
        .autoApprove,
    ]
}

/// What one engine call asks to do: an action on a subject (resource type), in the organization or a project,
/// with the resource's fields that conditions may test.
public struct AccessRequest: Sendable, Hashable, CustomStringConvertible {
    public enum Scope: Sendable, Hashable {
        case organization
        case project(String)
    }
    public var scope: Scope
    public var subject: PermissionSubject
    public var action: PermissionAction
    /// `name`, `path`, … of the resource (absent for collection-level requests such as listing).
    public var fields: [String: String]

    public init(
        _ scope: Scope, _ subject: PermissionSubject, _ action: PermissionAction, _ fields: [String: String] = [:]
    ) {
        self.scope = scope
        self.subject = subject
        self.action = action
        self.fields = fields
    }

    public var project: String? {
        if case .project(let p) = scope { return p }
        return nil
    }

    public var description: String { "\(subject).\(action)" }
}

/// The facts about an identity that permission templates may use.
struct TemplateFacts: Sendable {
    var id: String
    var name: String
    var metadata: [String: String]

    /// Replaces `{{ identity.id }}`, `{{ identity.name }}`, `{{ identity.metadata.KEY }}` (spaces optional). An
    /// unknown key yields nil: a condition that cannot be rendered never matches (fail closed).
    func render(_ template: String) -> String? {
        var out = ""
        var rest = Substring(template)
        while let open = rest.range(of: "{{") {
            out += rest[..<open.lowerBound]
            guard let close = rest[open.upperBound...].range(of: "}}") else { return nil }
            let key = rest[open.upperBound..<close.lowerBound].trimmingCharacters(in: .whitespaces)
            switch key {
            case "identity.id": out += id
            case "identity.name": out += name
            default:
                guard key.hasPrefix("identity.metadata."),
                    let v = metadata[String(key.dropFirst("identity.metadata.".count))]
                else { return nil }
                out += v
            }
            rest = rest[close.upperBound...]
        }
        return out + rest
    }
}

/// Evaluates permissions: a request is allowed when some non-inverted rule matches and no inverted rule does.
enum PolicyEvaluator {
    static let projectSubjects = PermissionSubject.inProject.map(\.rawValue)
    static let orgSubjects = PermissionSubject.inOrganization.map(\.rawValue)
    static let actions = PermissionAction.all.map(\.rawValue)

    /// Whether `rules` allow `request`; returns the first allowing rule's origin or nil.
    static func allows(
        _ rules: [(origin: String, permission: Permission)], _ request: AccessRequest, _ facts: TemplateFacts
    )
        -> String?
    {
        var allowedBy: String?
        for (origin, p) in rules where matches(p, request, facts) {
            if p.inverted == true { return nil }
            if allowedBy == nil { allowedBy = origin }
        }
        return allowedBy
    }

    static func matches(_ p: Permission, _ request: AccessRequest, _ facts: TemplateFacts) -> Bool {
        guard p.subject == "*" || p.subject == request.subject.rawValue else { return false }
        guard p.actions.contains("*") || p.actions.contains(request.action.rawValue) else { return false }
        guard let conditions = p.conditions, !conditions.isEmpty else { return true }
        for (field, condition) in conditions {
            // A collection-level request (no resource yet, e.g. listing) passes field conditions of allowing rules:
            // the engine filters each returned item against the same rules. Inverted conditional rules do not
            // forbid the whole collection.
            guard let value = request.fields[field] else {
                if p.inverted == true { return false }
                continue
            }
            guard holds(condition, value, facts) else { return false }
        }
        return true
    }

    static func holds(_ c: Permission.Condition, _ value: String, _ facts: TemplateFacts) -> Bool {
        if let eq = c.eq {
            guard let v = facts.render(eq), v == value else { return false }
        }
        if let ne = c.ne {
            guard let v = facts.render(ne), v != value else { return false }
        }
        if let list = c.in {
            guard list.compactMap(facts.render).contains(value) else { return false }
        }
        if let glob = c.glob {
            guard let g = facts.render(glob), Glob.matches(g, value) else { return false }
        }
        return true
    }

    /// Checks a permission list for unknown subjects/actions and malformed conditions.
    static func validate(_ permissions: [Permission]) throws {
        guard !permissions.isEmpty, permissions.count <= 200 else {
            throw EngineError(.invalidArgument, "a role needs 1–200 permissions")
        }
        for p in permissions {
            guard p.subject == "*" || projectSubjects.contains(p.subject) else {
                throw EngineError(
                    .invalidArgument,
                    "unknown subject '\(p.subject)'; project subjects are \(projectSubjects.joined(separator: ", "))")
            }
            guard !p.actions.isEmpty, p.actions.allSatisfy({ $0 == "*" || actions.contains($0) }) else {
                throw EngineError(.invalidArgument, "actions must be among \(actions.joined(separator: ", ")) or *")
            }
            for (field, c) in p.conditions ?? [:] {
                guard ["name", "path", "account"].contains(field) else {
                    throw EngineError(
                        .invalidArgument, "conditions may test 'name', 'path' or 'account', not '\(field)'")
                }
                guard c.eq != nil || c.ne != nil || c.in != nil || c.glob != nil else {
                    throw EngineError(.invalidArgument, "condition on '\(field)' needs $eq, $ne, $in or $glob")
                }
            }
        }
    }

    // MARK: Built-in roles

    static func all(_ subject: PermissionSubject) -> Permission {
        Permission(subject: subject.rawValue, actions: ["*"])
    }
    static func read(_ subject: PermissionSubject) -> Permission {
        Permission(subject: subject.rawValue, actions: [PermissionAction.read.rawValue])
    }
    static func allow(_ subject: PermissionSubject, _ actions: [PermissionAction]) -> Permission {
        Permission(subject: subject.rawValue, actions: actions.map(\.rawValue))
    }

    /// Built-in project roles.
    static let builtInProjectRoles: [String: (String, [Permission])] = [
        "admin": ("Full access to the project", [Permission(subject: "*", actions: ["*"])]),
        "developer": (
            "Manage secrets, keys and certificates; read CAs, templates, profiles, roles and members",
            [
                all(.secrets), all(.kmsKeys), all(.certificates), read(.certificateAuthorities),
                read(.certificateTemplates),
                read(.certificateProfiles), read(.project), read(.roles), read(.members),
                read(.sshCertificateAuthorities),
                read(.sshHosts), read(.pamResources), read(.pamAccounts), allow(.pamAccess, [.read, .request]),
            ]
        ),
        "viewer": ("Read-only access", PermissionSubject.inProject.map(read)),
    ]

    static func builtInRole(_ slug: String, project: String) -> RoleInfo? {
        guard let (description, permissions) = builtInProjectRoles[slug] else { return nil }
        return RoleInfo(
            slug: slug, project: project, description: description, permissions: permissions, isBuiltIn: true)
    }

    /// Organization-level permissions of an org role (org admins are handled as superusers of the org).
    static func orgPermissions(_ role: OrgRole) -> [Permission] {
        switch role {
        case .admin: return [Permission(subject: "*", actions: ["*"])]
        case .member: return [allow(.projects, [.create])]
        case .noAccess: return []
        }
    }
}

/// Shell-style globs: `*` (any run of characters except the separator, `/` by default), `**` (anything), `?` (one
/// character other than the separator).
enum Glob {
    static func matches(_ pattern: String, _ text: String, separator: Unicode.Scalar = "/") -> Bool {
        match(Array(pattern.unicodeScalars), 0, Array(text.unicodeScalars), 0, separator)
    }

    private static func match(_ p: [Unicode.Scalar], _ i: Int, _ t: [Unicode.Scalar], _ j: Int, _ sep: Unicode.Scalar)
        -> Bool
    {
        var i = i
        var j = j
        // Iterative with backtracking on the last star: linear-ish, no exponential blow-up on hostile patterns.
        var starI = -1
        var starJ = -1
        var starCrossesSlash = false
        while j < t.count {
            if i < p.count, p[i] == "*" {
                let double = i + 1 < p.count && p[i + 1] == "*"
                starCrossesSlash = double
                i += double ? 2 : 1
                starI = i
                starJ = j
            } else if i < p.count, p[i] == "?" || p[i] == t[j], !(p[i] == "?" && t[j] == sep) {
                i += 1
                j += 1
            } else if starI >= 0, starCrossesSlash || t[starJ] != sep {
                starJ += 1
                j = starJ
                i = starI
            } else {
                return false
            }
        }
        while i < p.count, p[i] == "*" { i += 1 }
        return i == p.count
    }
}

/// Durations written like `30s`, `1m`, `2h`, `3d`.
enum DurationText {
    static func seconds(_ text: String) -> Int? {
        guard let unit = text.last, let n = Int(text.dropLast()), n > 0, n <= 10_000_000 else { return nil }
        switch unit {
        case "s": return n
        case "m": return n * 60
        case "h": return n * 3600
        case "d": return n * 86400
        default: return nil
        }
    }
}

/// CIDR blocks (`10.0.0.0/8`, `::/0`, or a bare address) and membership tests.
struct CIDR: Sendable, Hashable {
    let network: [UInt8]
    let prefix: Int

    init?(_ text: String) {
        let parts = text.split(separator: "/", maxSplits: 1)
        guard let first = parts.first, let bytes = CIDR.parse(String(first)) else { return nil }
        let maxPrefix = bytes.count * 8
        let prefix: Int
        if parts.count == 2 {
            guard let p = Int(parts[1]), (0...maxPrefix).contains(p) else { return nil }
            prefix = p
        } else {
            prefix = maxPrefix
        }
        self.network = bytes
        self.prefix = prefix
    }

    func contains(_ address: String) -> Bool {
        guard var bytes = CIDR.parse(address) else { return false }
        if bytes.count == 16, network.count == 4, bytes[0..<12] == [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff][...] {
            bytes = Array(bytes[12...])  // IPv4-mapped IPv6
        }
        guard bytes.count == network.count else { return false }
        var remaining = prefix
        for k in 0..<bytes.count where remaining > 0 {
            let bits = min(8, remaining)
            let mask: UInt8 = bits == 8 ? 0xff : ~(0xff >> UInt8(bits))
            if bytes[k] & mask != network[k] & mask { return false }
            remaining -= bits
        }
        return true
    }

    static func parse(_ s: String) -> [UInt8]? {
        if s.contains(":") {
            var a = in6_addr()
            guard inet_pton(AF_INET6, s, &a) == 1 else { return nil }
            return withUnsafeBytes(of: &a) { Array($0) }
        }
        var a = in_addr()
        guard inet_pton(AF_INET, s, &a) == 1 else { return nil }
        return withUnsafeBytes(of: &a) { Array($0) }
    }

    /// Validates a list of CIDR strings from a client.
    static func validate(_ list: [String], _ field: String) throws {
        guard !list.isEmpty, list.count <= 100 else {
            throw EngineError(.invalidArgument, "\(field) needs 1–100 CIDR blocks")
        }
        for entry in list where CIDR(entry) == nil {
            throw EngineError(.invalidArgument, "\(field): '\(entry)' is not an IP address or CIDR block")
        }
    }

    /// Whether `address` is inside any block (no address = not trusted unless a block covers everything).
    static func allows(_ list: [String], _ address: String?) -> Bool {
        guard let address else {
            return list.contains { $0 == "0.0.0.0/0" || $0 == "::/0" }
        }
        return list.compactMap(CIDR.init).contains { $0.contains(address) }
    }
}
