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
        let source = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
            .appendingPathComponent("Sources/EngineAPI/EngineError.swift")
        let text = try String(contentsOf: source, encoding: .utf8)
        let declared = text.split(separator: "\n").filter {
            $0.contains("public static let") && $0.contains("= Code(rawValue:")
        }
        #expect(
            declared.count == EngineError.Code.all.count,
            "\(declared.count) declared, \(EngineError.Code.all.count) listed")
        #expect(Set(EngineError.Code.all).count == EngineError.Code.all.count)
    }

    static let admin: [EngineError.Code: Int] = [
        .unauthenticated: 401, .permissionDenied: 403, .notFound: 404, .alreadyExists: 409, .invalidArgument: 400,
        .conflict: 409,
        .wrongState: 409, .outsideUseWindow: 409, .cryptographicFailure: 500, .unavailable: 503,
        .featureNotSupported: 501, .sensitive: 403, .notExtractable: 403, .locked: 429, .gone: 410, .internal: 500,
    ]

    @Test func adminAPI() {
        for code in EngineError.Code.all {
            #expect(Int(HTTPErrorMapping.status(for: code).code) == Self.admin[code], "\(code)")
        }
    }

    static let est: [EngineError.Code: Int] = [
        .unauthenticated: 401, .permissionDenied: 403, .notFound: 404, .alreadyExists: 409, .invalidArgument: 400,
        .conflict: 409,
        .wrongState: 409, .outsideUseWindow: 409, .cryptographicFailure: 500, .unavailable: 503,
        .featureNotSupported: 501, .sensitive: 403, .notExtractable: 403, .locked: 429, .gone: 410, .internal: 500,
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
        .unauthenticated: ("unauthorized", 403), .permissionDenied: ("unauthorized", 403),
        .notFound: ("malformed", 404),
        .alreadyExists: ("malformed", 409), .invalidArgument: ("malformed", 400), .conflict: ("malformed", 409),
        .wrongState: ("malformed", 409), .outsideUseWindow: ("malformed", 409),
        .cryptographicFailure: ("serverInternal", 500),
        .unavailable: ("serverInternal", 503),
        .featureNotSupported: ("malformed", 400), .sensitive: ("unauthorized", 403),
        .notExtractable: ("unauthorized", 403),
        .locked: ("rateLimited", 429), .gone: ("malformed", 404), .internal: ("serverInternal", 500),
    ]

    @Test func acme() {
        for code in EngineError.Code.all {
            let problem = ACMERoutes.problem(EngineError(code, "the message"))
            let want = Self.acme[code]
            #expect(
                problem.type == "urn:ietf:params:acme:error:" + (want?.0 ?? "?") && problem.status == want?.1,
                "\(code): \(problem)")
            // What went wrong inside stays inside.
            if want?.0 == "serverInternal" && problem.status == 500 { #expect(!problem.detail.contains("the message")) }
        }
    }

    /// Every ACME problem type the engine can attach: the ACME answer keeps the type with its status, and every other
    /// front end sees its category (never a code outside `EngineError.Code.all`).
    static let acmeTypes: [ACMEProblemType: (status: Int, category: EngineError.Code)] = [
        .accountDoesNotExist: (400, .notFound), .alreadyReplaced: (409, .conflict), .alreadyRevoked: (400, .conflict),
        .badCSR: (400, .invalidArgument), .badNonce: (400, .invalidArgument),
        .badRevocationReason: (400, .invalidArgument),
        .badSignatureAlgorithm: (400, .invalidArgument), .caa: (400, .unavailable), .connection: (400, .unavailable),
        .dns: (400, .unavailable), .externalAccountRequired: (400, .invalidArgument),
        .incorrectResponse: (400, .unavailable),
        .invalidContact: (400, .invalidArgument), .invalidProfile: (400, .invalidArgument),
        .malformed: (400, .invalidArgument),
        .orderNotReady: (403, .wrongState), .rateLimited: (429, .locked), .rejectedIdentifier: (400, .invalidArgument),
        .serverInternal: (500, .internal), .tls: (400, .unavailable), .unauthorized: (403, .permissionDenied),
        .unsupportedContact: (400, .invalidArgument), .unsupportedIdentifier: (400, .invalidArgument),
        .userActionRequired: (403, .permissionDenied),
    ]

    @Test func acmeProblemTypes() {
        #expect(Set(ACMEProblemType.all).count == ACMEProblemType.all.count)
        for type in ACMEProblemType.all {
            let want = Self.acmeTypes[type]
            let error = EngineError.acme(type, "why", retryAfter: 7)
            #expect(EngineError.Code.all.contains(error.code), "\(type)")
            #expect(error.code == want?.category, "\(type)")
            let problem = ACMERoutes.problem(error)
            #expect(
                problem.type == type.urn && problem.status == want?.status && problem.detail == "why",
                "\(type): \(problem)")
        }
        let rejected = EngineError.acme(
            .rejectedIdentifier, "2 of 2 identifiers were rejected",
            subproblems: [
                .acme(.unsupportedIdentifier, "no", itemType: "email", itemValue: "a@b"),
                .acme(.rejectedIdentifier, "policy", itemType: "dns", itemValue: "x.test"),
            ])
        let problem = ACMERoutes.problem(rejected)
        #expect(
            problem.subproblems?.map(\.type) == [
                ACMEProblemType.unsupportedIdentifier.urn, ACMEProblemType.rejectedIdentifier.urn,
            ])
        #expect(problem.subproblems?.map(\.identifier?.value) == ["a@b", "x.test"])
    }
}
