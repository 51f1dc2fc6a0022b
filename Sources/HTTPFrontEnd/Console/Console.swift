import EngineAPI
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore

/// The read-only web console at `/console` (docs/console.md): server-rendered HTML from the same engine calls as the
/// admin API, with the caller's principal, so the engine authorizes and audits every page as it does an API call.
///
/// Authentication is the admin API's: the TLS client certificate, or an access token entered once on the sign-in
/// page and kept in an HttpOnly, Secure, SameSite=Strict cookie scoped to `/console`. Every answer carries a
/// Content-Security-Policy without `unsafe-inline` (styles and the one script are files under `/console/static`),
/// and every value from the store goes through Mustache's HTML escaping.
struct Console: Sendable {
    let services: AdminServices
    let readiness: @Sendable () async -> (Bool, String)
    let views = ConsoleViews()

    static let cookieName = "gatehouse_console"
    static let frontEnd = "console"
    /// The sign-in form's body limit: a token is a few hundred bytes.
    static let maxFormBody = 8 * 1024
    /// Seconds a console sign-in lasts at most (a working day); never longer than the token it started from.
    static let sessionLifetime = 8 * 3600

    static let securityHeaders: HTTPFields = [
        .contentSecurityPolicy:
            "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self'; connect-src 'self'; "
            + "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        .init("X-Content-Type-Options")!: "nosniff",
        // Not `no-referrer`: with it a browser sends `Origin: null` on the console's own form posts, which the
        // same-origin check then refuses.
        .init("Referrer-Policy")!: "same-origin",
        .init("X-Frame-Options")!: "DENY",
        .cacheControl: "no-store",
    ]

    func register(on router: Router<GatehouseRequestContext>) {
        router.get("console") { r, c in try await page(r, c) { try await overview($0, r) } }
        router.get("console/static/:file") { _, c in try asset(c.parameters.require("file")) }
        router.get("console/login") { r, _ in signInPage(r, status: .ok, message: nil) }
        router.post("console/login") { r, c in try await signIn(r, c) }
        router.post("console/logout") { r, c in try await signOut(r, c) }
        router.get("console/audit") { r, c in try await page(r, c) { try await audit($0, r) } }
        router.get("console/audit/verify") { r, c in try await page(r, c) { try await auditVerify($0) } }
        router.get("console/projects/:project") { r, c in
            try await page(r, c) { try await projectOverview($0, c.parameters.require("project")) }
        }
        router.get("console/projects/:project/sessions") { r, c in
            try await page(r, c) { try await sessions($0, c.parameters.require("project"), r) }
        }
        router.get("console/projects/:project/certificates") { r, c in
            try await page(r, c) { try await certificates($0, c.parameters.require("project"), r) }
        }
        router.get("console/projects/:project/kmip") { r, c in
            try await page(r, c) { try await kmip($0, c.parameters.require("project"), r) }
        }
        router.get("console/sessions/:id") { r, c in
            try await page(r, c) { try await replay($0, c.parameters.require("id")) }
        }
        router.get("console/sessions/:id/live") { r, c in try await live(r, c, id: c.parameters.require("id")) }
        router.get("console/certificates/:serial") { r, c in
            try await page(r, c) { try await certificate($0, c.parameters.require("serial")) }
        }
        router.get("console/kmip/objects/:id") { r, c in
            try await page(r, c) { try await kmipObject($0, c.parameters.require("id")) }
        }
    }

    // MARK: - Authentication

    /// Who is asking: the console cookie's session when there is one, else the client certificate. Nil when neither
    /// (the caller is sent to the sign-in page).
    func caller(_ request: Request, _ context: GatehouseRequestContext) async throws -> CallContext? {
        let requestID = RandomUUID.string()
        let principal: Principal
        if let token = request.cookies[Self.cookieName]?.value, !token.isEmpty {
            principal = try await services.authenticator.authenticate(
                bearerToken: token, ipAddress: context.peerAddress, frontEnd: Self.frontEnd)
            // The cookie holds only a session the sign-in started, which signing out ends: never a token that is
            // also used elsewhere.
            guard principal.attributes["authMethod"] == Principal.sessionAuthMethod else {
                throw EngineError(.unauthenticated, "the console cookie holds no console session; sign in again")
            }
        } else {
            principal = await context.principal()
            guard principal.method != .anonymous else { return nil }
        }
        return CallContext(
            principal: principal, frontEnd: Self.frontEnd, requestID: requestID, ipAddress: context.peerAddress,
            userAgent: request.headers[.userAgent])
    }

    /// A page: the caller is resolved, the page built, and an engine refusal shown as a page with the HTTP status
    /// the admin API would have answered.
    func page(
        _ request: Request, _ context: GatehouseRequestContext,
        _ build: (Call) async throws -> ConsolePage
    ) async throws -> Response {
        let call: Call
        do {
            guard let ctx = try await caller(request, context) else { return redirect("/console/login") }
            call = Call(ctx: ctx, signedInWithCookie: request.cookies[Self.cookieName] != nil)
        } catch let e as EngineError where e.code == .unauthenticated {
            // An expired or revoked token: forget it and ask again.
            var response = signInPage(request, status: .unauthorized, message: "Your session has ended: \(e.message)")
            response.setCookie(Self.clearedCookie)
            return response
        }
        do {
            return render(try await build(call), call: call)
        } catch let e as EngineError {
            return render(errorPage(e), call: call)
        } catch let e as ConsoleInputError {
            return render(
                ConsolePage(
                    title: "Bad request", status: .badRequest, template: "error", data: ["message": e.message]),
                call: call)
        }
    }

    struct Call: Sendable {
        let ctx: CallContext
        let signedInWithCookie: Bool
    }

    /// An engine refusal as a page, with the status the admin API answers for it (`HTTPErrorMapping`).
    func errorPage(_ e: EngineError) -> ConsolePage {
        let status = HTTPErrorMapping.status(for: e.code)
        return ConsolePage(
            title: status.reasonPhrase, status: status, template: "error", data: ["message": e.message])
    }

    static var clearedCookie: Cookie {
        Cookie(
            name: cookieName, value: "", maxAge: 0, path: "/console", secure: true, httpOnly: true, sameSite: .strict)
    }

    func signInPage(_ request: Request, status: HTTPResponse.Status, message: String?) -> Response {
        var data: [String: Any] = [:]
        if let message { data["message"] = message }
        return render(
            ConsolePage(title: "Sign in", status: status, template: "login", data: data), call: nil)
    }

    /// `POST /console/login` with `token=…` (form): the engine checks the token (and audits a failure) and starts a
    /// session from it; the cookie keeps the session's own token, so signing out can end it without touching the
    /// token that was entered.
    func signIn(_ request: Request, _ context: GatehouseRequestContext) async throws -> Response {
        var request = request
        guard sameOrigin(request) else {
            return signInPage(request, status: .forbidden, message: "The sign-in form must come from this server.")
        }
        let body = try await request.collectBody(upTo: Self.maxFormBody)
        let form = ConsoleViews.formFields(String(buffer: body))
        guard let token = form["token"]?.trimmingCharacters(in: .whitespacesAndNewlines), !token.isEmpty else {
            return signInPage(request, status: .badRequest, message: "Enter an access token.")
        }
        // A token is base64url or hex; anything else cannot be one, and could not be a cookie value.
        guard token.count <= 4096, token.unicodeScalars.allSatisfy(ConsoleViews.isTokenCharacter) else {
            return signInPage(request, status: .unauthorized, message: "That is not an access token.")
        }
        let session: IssuedToken
        do {
            session = try await services.access.startSession(
                bearerToken: token, ipAddress: context.peerAddress, frontEnd: Self.frontEnd,
                lifetime: Self.sessionLifetime
            ).session
        } catch let e as EngineError where e.code == .unauthenticated || e.code == .permissionDenied {
            return signInPage(request, status: .unauthorized, message: "The token was refused: \(e.message)")
        }
        var response = redirect("/console")
        response.setCookie(
            Cookie(
                name: Self.cookieName, value: session.accessToken, path: "/console", secure: true, httpOnly: true,
                sameSite: .strict))
        return response
    }

    /// `POST /console/logout`: the cookie's session is ended in the engine (audited), so a copy of the cookie is
    /// worthless from then on, and the browser is told to forget it.
    func signOut(_ request: Request, _ context: GatehouseRequestContext) async throws -> Response {
        guard sameOrigin(request) else { throw HTTPError(.forbidden, message: "cross-origin sign-out refused") }
        if let token = request.cookies[Self.cookieName]?.value, !token.isEmpty {
            do {
                if let ctx = try await caller(request, context) {
                    try await services.access.endSession(ctx, sessionToken: token)
                }
            } catch let e as EngineError where e.code == .unauthenticated || e.code == .invalidArgument {
                // Already over (expired, ended, or never a session): there is nothing left to end.
            }
        }
        var response = redirect("/console/login")
        response.setCookie(Self.clearedCookie)
        return response
    }

    /// A form post must come from a page of this server: `Sec-Fetch-Site`, when the browser sends it, says
    /// `same-origin`, and the Origin (sent by every current browser on POST), when present, names the host the
    /// request was sent to. A client that sends neither (curl) is not a browser another site can drive.
    func sameOrigin(_ request: Request) -> Bool {
        if let site = request.headers[.init("Sec-Fetch-Site")!], site != "same-origin", site != "none" { return false }
        guard let origin = request.headers[.origin] else { return true }
        guard let authority = request.head.authority, let url = URL(string: origin), let host = url.host else {
            return false
        }
        let originAuthority = url.port.map { "\(host):\($0)" } ?? host
        return originAuthority.lowercased() == authority.lowercased()
    }

    // MARK: - Answers

    func redirect(_ location: String) -> Response {
        var headers = Self.securityHeaders
        headers[.location] = location
        return Response(status: .seeOther, headers: headers)
    }

    func render(_ page: ConsolePage, call: Call?) -> Response {
        let html = views.render(page, principal: call?.ctx.principal.name, signOut: call?.signedInWithCookie ?? false)
        var headers = Self.securityHeaders
        headers[.contentType] = "text/html; charset=utf-8"
        return Response(status: page.status, headers: headers, body: .init(byteBuffer: ByteBuffer(string: html)))
    }

    func asset(_ file: String) throws -> Response {
        guard let (type, text) = ConsoleAssets.files[file] else {
            throw HTTPError(.notFound, message: "no such console file")
        }
        var headers = Self.securityHeaders
        headers[.contentType] = type
        headers[.cacheControl] = "max-age=3600"
        return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(string: text)))
    }
}

/// A query parameter the console cannot read (a malformed time, a limit out of range).
struct ConsoleInputError: Error {
    let message: String
}

/// One page to render: a body template with its data, inside the layout.
struct ConsolePage {
    var title: String
    var status: HTTPResponse.Status = .ok
    var template: String
    var data: [String: Any]
    /// The project whose sub-navigation the layout shows.
    var project: String?
}
