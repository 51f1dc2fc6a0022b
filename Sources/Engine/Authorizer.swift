import EngineAPI
import Foundation

/// An operation the engine may be asked to perform, named `<area>.<verb>`.
public struct Action: RawRepresentable, Sendable, Hashable, CustomStringConvertible {
    public var rawValue: String
    public init(rawValue: String) { self.rawValue = rawValue }
    public var description: String { rawValue }

    public static let secretCreate = Action(rawValue: "secrets.create")
    public static let secretUpdate = Action(rawValue: "secrets.update")
    public static let secretRead = Action(rawValue: "secrets.read")
    public static let secretList = Action(rawValue: "secrets.list")
    public static let secretDelete = Action(rawValue: "secrets.delete")
    public static let auditRead = Action(rawValue: "audit.read")
}

/// What an action applies to.
public struct ResourceRef: Sendable, Hashable {
    public var type: String
    public var project: String?
    public var name: String?
    public init(type: String, project: String? = nil, name: String? = nil) {
        self.type = type
        self.project = project
        self.name = name
    }
}

/// The authorization hook: the identity/role subsystem plugs in here. Called once per engine operation.
public protocol Authorizer: Sendable {
    /// Returns nil to allow, or a reason (safe to audit, not shown to peers) to deny.
    func denialReason(_ principal: Principal, _ action: Action, _ resource: ResourceRef) async -> String?
}

/// The default policy until roles exist: the daemon itself and administrators (certificate common names listed
/// in the configuration, chained to the trusted client CA) may do everything; everyone else nothing.
public struct AdminOnlyAuthorizer: Authorizer {
    /// Certificate common names that are administrators.
    public var adminCommonNames: Set<String>
    public init(adminCommonNames: Set<String>) { self.adminCommonNames = adminCommonNames }

    public func denialReason(_ principal: Principal, _ action: Action, _ resource: ResourceRef) async -> String? {
        switch principal.method {
        case .system: return nil
        case .tlsCertificate where adminCommonNames.contains(principal.name): return nil
        case .anonymous: return "not authenticated"
        default: return "only administrators may \(action) (default policy)"
        }
    }
}
