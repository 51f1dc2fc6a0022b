import EngineAPI
import Foundation
import HTTPTypes
import Testing

@testable import HTTPFrontEnd

/// Every `EngineError` code, through each HTTP front end's mapping: a table per protocol, so a new code (or a changed
/// mapping) is a decision made here, not a default taken silently.
@Suite struct ErrorMappingTests {
    /// `EngineError.Code.all` lists every code EngineError.swift declares.
    @Test func theListOfCodesIsComplete() throws {
        let source = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Sources/EngineAPI/EngineError.swift")
        let text = try String(contentsOf: source, encoding: .utf8)
        let declared = text.split(separator: "\n").filter { $0.contains("public static let") && $0.contains("= Code(rawValue:") }
        #expect(declared.count == EngineError.Code.all.count, "\(declared.count) declared, \(EngineError.Code.all.count) listed")
        #expect(Set(EngineError.Code.all).count == EngineError.Code.all.count)
    }

    static let admin: [EngineError.Code: Int] = [
        .unauthenticated: 401, .permissionDenied: 403, .notFound: 404, .alreadyExists: 409, .invalidArgument: 400, .conflict: 409,
        .wrongState: 409, .cryptographicFailure: 500, .unavailable: 503, .featureNotSupported: 501, .sensitive: 403,
        .notExtractable: 403, .locked: 429, .gone: 410, .internal: 500,
    ]

    @Test func adminAPI() {
        for code in EngineError.Code.all {
            #expect(Int(HTTPErrorMapping.status(for: code).code) == Self.admin[code], "\(code)")
        }
    }

    static let est: [EngineError.Code: Int] = [
        .unauthenticated: 401, .permissionDenied: 403, .notFound: 404, .alreadyExists: 409, .invalidArgument: 400, .conflict: 409,
        .wrongState: 409, .cryptographicFailure: 500, .unavailable: 503, .featureNotSupported: 501, .sensitive: 403,
        .notExtractable: 403, .locked: 429, .gone: 410, .internal: 500,
    ]

    @Test func est() {
        for code in EngineError.Code.all {
            let response = ESTRoutes.failure(EngineError(code, "the message"))
            #expect(Int(response.status.code) == Self.est[code], "\(code)")
            // A 401 invites Basic authentication (RFC 7030 §3.2.3).
            #expect((response.headers[.wwwAuthenticate] != nil) == (code == .unauthenticated), "\(code)")
        }
    }

    static let acme: [EngineError.Code: (String, Int)] = [
        .unauthenticated: ("unauthorized", 403), .permissionDenied: ("unauthorized", 403), .notFound: ("malformed", 404),
        .alreadyExists: ("malformed", 409), .invalidArgument: ("malformed", 400), .conflict: ("malformed", 409),
        .wrongState: ("malformed", 409), .cryptographicFailure: ("serverInternal", 500), .unavailable: ("serverInternal", 503),
        .featureNotSupported: ("malformed", 400), .sensitive: ("unauthorized", 403), .notExtractable: ("unauthorized", 403),
        .locked: ("rateLimited", 429), .gone: ("malformed", 404), .internal: ("serverInternal", 500),
    ]

    @Test func acme() {
        for code in EngineError.Code.all {
            let problem = ACMERoutes.problem(EngineError(code, "the message"))
            let want = Self.acme[code]
            #expect(problem.type == "urn:ietf:params:acme:error:" + (want?.0 ?? "?") && problem.status == want?.1, "\(code): \(problem)")
            // What went wrong inside stays inside.
            if want?.0 == "serverInternal" && problem.status == 500 { #expect(!problem.detail.contains("the message")) }
        }
        // ACME's own problem types keep their type.
        let limited = ACMERoutes.problem(EngineError(EngineError.Code(rawValue: "acme:rateLimited"), "slow down"))
        #expect(limited.type == "urn:ietf:params:acme:error:rateLimited" && limited.status == 429)
    }
}
