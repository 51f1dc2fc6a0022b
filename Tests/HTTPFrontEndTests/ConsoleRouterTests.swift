import Crypto
import Engine
import EngineAPI
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import StorageAPI
import TestSupport
import Testing

@testable import HTTPFrontEnd

/// The web console in router test mode, over a real engine on an in-memory store: sign-in and its cookie, the
/// same-origin rule, the Content-Security-Policy and escaping on every page, authorization through the engine, and
/// the replay timeline. (The browser test, `ConsoleBrowserTests`, drives the same pages in Chromium.)
@Suite struct ConsoleRouterTests {
    struct World {
        let engine: GatehouseEngine
        /// The tokens as issued (what a reviewer types into the sign-in form).
        let admin: String
        let viewer: String
        let adminID: String
        /// Console sessions started from them (what the cookie holds after signing in).
        let adminSession: String
        let viewerSession: String
    }

    /// A project whose description is markup, an organization admin and a viewer who may read certificates only.
    static func world() async throws -> World {
        let engine = try await GatehouseEngine.open(
            storage: InMemoryStorage(), rootKey: StaticRootKeyProvider(SymmetricKey(size: .bits256)),
            bootstrapAdmins: [])
        let system = CallContext.system("test")
        _ = try await engine.createProject(
            system, slug: "ops", description: "<script>alert('x')</script> & \"quotes\"")
        func token(_ name: String, _ role: OrgRole) async throws -> (id: String, token: String) {
            let identity = try await engine.createIdentity(system, IdentitySpec(name: name, orgRole: role))
            _ = try await engine.attachTokenAuth(system, identityId: identity.id, AuthMethodSpec())
            return (identity.id, try await engine.createIdentityToken(system, identityId: identity.id).accessToken)
        }
        let admin = try await token("reviewer", .admin)
        let viewer = try await token("certs-viewer", .noAccess)
        _ = try await engine.createRole(
            system, project: "ops",
            RoleSpec(slug: "certs-only", permissions: [Permission(subject: "certificates", actions: ["read"])]))
        try await engine.setMembership(
            system, project: "ops", identityId: viewer.id, roles: [RoleGrant(role: "certs-only")])
        func session(_ token: String) async throws -> String {
            try await engine.startSession(bearerToken: token, ipAddress: nil, frontEnd: "test", lifetime: 3600)
                .session.accessToken
        }
        return World(
            engine: engine, admin: admin.token, viewer: viewer.token, adminID: admin.id,
            adminSession: try await session(admin.token), viewerSession: try await session(viewer.token))
    }

    static func app(_ engine: GatehouseEngine) -> some ApplicationProtocol {
        routerApp(AdminServices(serving: engine))
    }

    static func cookie(_ token: String) -> HTTPFields { [.cookie: "\(Console.cookieName)=\(token)"] }
    static let form: HTTPFields = [.contentType: "application/x-www-form-urlencoded"]

    @Test func signInKeepsTheTokenInAStrictCookieAndPagesNeedOne() async throws {
        let world = try await Self.world()
        try await Self.app(world.engine).test(.router) { client in
            let anonymous = try await client.execute(uri: "/console/audit", method: .get)
            #expect(anonymous.status == .seeOther)
            #expect(anonymous.headers[.location] == "/console/login")

            let signIn = try await client.execute(
                uri: "/console/login", method: .post, headers: Self.form,
                body: ByteBuffer(string: "token=" + world.admin))
            #expect(signIn.status == .seeOther)
            #expect(signIn.headers[.location] == "/console")
            let setCookie = try #require(signIn.headers[.setCookie])
            // The cookie holds a session of its own, not the token that was typed in.
            #expect(setCookie.hasPrefix("\(Console.cookieName)=ghat_"))
            #expect(!setCookie.contains(world.admin))
            for attribute in ["HttpOnly", "Secure", "SameSite=Strict", "Path=/console"] {
                #expect(setCookie.contains(attribute), "cookie attribute \(attribute): \(setCookie)")
            }

            let cookieToken = try #require(Self.cookieValue(setCookie))
            let overview = try await client.execute(uri: "/console", method: .get, headers: Self.cookie(cookieToken))
            #expect(overview.status == .ok)
            let html = String(buffer: overview.body)
            #expect(html.contains("<span id=\"principal\">reviewer</span>"))
            #expect(html.contains("/console/projects/ops"))

            let wrong = try await client.execute(
                uri: "/console/login", method: .post, headers: Self.form, body: ByteBuffer(string: "token=ghat_wrong"))
            #expect(wrong.status == .unauthorized)
            #expect(wrong.headers[.setCookie] == nil)
            #expect(String(buffer: wrong.body).contains("id=\"login-error\""))

            let notAToken = try await client.execute(
                uri: "/console/login", method: .post, headers: Self.form,
                body: ByteBuffer(string: "token=%3Cscript%3E%3B"))
            #expect(notAToken.status == .unauthorized)

            // A cookie whose token is no longer valid: back to the sign-in page, and the cookie is cleared.
            let stale = try await client.execute(uri: "/console", method: .get, headers: Self.cookie("ghat_gone"))
            #expect(stale.status == .unauthorized)
            #expect(stale.headers[.setCookie]?.contains("Max-Age=0") == true)
        }
    }

    static func cookieValue(_ setCookie: String) -> String? {
        setCookie.split(separator: ";").first.flatMap { $0.split(separator: "=", maxSplits: 1).last }.map(String.init)
    }

    static func signIn(_ client: some TestClientProtocol, _ token: String) async throws -> String? {
        let r = try await client.execute(
            uri: "/console/login", method: .post, headers: Self.form, body: ByteBuffer(string: "token=" + token))
        guard r.status == .seeOther, let setCookie = r.headers[.setCookie] else { return nil }
        return Self.cookieValue(setCookie)
    }

    @Test func signingOutEndsTheSessionButNotTheTokenItCameFrom() async throws {
        let world = try await Self.world()
        try await Self.app(world.engine).test(.router) { client in
            let session = try #require(try await Self.signIn(client, world.admin))
            let before = try await client.execute(uri: "/console/audit", method: .get, headers: Self.cookie(session))
            #expect(before.status == .ok)

            let signOut = try await client.execute(uri: "/console/logout", method: .post, headers: Self.cookie(session))
            #expect(signOut.status == .seeOther)
            #expect(signOut.headers[.location] == "/console/login")
            #expect(signOut.headers[.setCookie]?.contains("Max-Age=0") == true)

            // A copy of the cookie kept after signing out is worth nothing.
            let replayed = try await client.execute(uri: "/console/audit", method: .get, headers: Self.cookie(session))
            #expect(replayed.status == .unauthorized)
            #expect(String(buffer: replayed.body).contains("Your session has ended"))
            #expect(replayed.headers[.setCookie]?.contains("Max-Age=0") == true)
            await #expect(throws: EngineError.self) {
                try await world.engine.authenticate(bearerToken: session, ipAddress: nil, frontEnd: "test")
            }
            // The token typed in still works for the API, and can start a new console session.
            let principal = try await world.engine.authenticate(
                bearerToken: world.admin, ipAddress: nil, frontEnd: "test")
            #expect(principal.name == "reviewer")
            #expect(try await Self.signIn(client, world.admin) != nil)

            // Both ends are audited, with the identity as the actor.
            for type in ["token.session.start", "token.session.end"] {
                let events = try await world.engine.searchAudit(.system("test"), AuditSearch(type: type, limit: 10))
                #expect(
                    events.items.contains { $0.event.actor.metadata["name"] == "reviewer" },
                    "\(type): \(events.items.map(\.event.actor))")
            }
            // Signing out twice, or with a cookie that is already over, still clears the cookie.
            let again = try await client.execute(uri: "/console/logout", method: .post, headers: Self.cookie(session))
            #expect(again.status == .seeOther)
            #expect(again.headers[.setCookie]?.contains("Max-Age=0") == true)
        }
    }

    @Test func aSessionLastsNoLongerThanItsTokenAndOnlySessionsGoInTheCookie() async throws {
        let world = try await Self.world()
        let system = CallContext.system("test")
        try await Self.app(world.engine).test(.router) { client in
            // Revoking the token that started a session ends the session too.
            let session = try #require(try await Self.signIn(client, world.admin))
            try await world.engine.revokeToken(system, accessToken: world.admin)
            let after = try await client.execute(uri: "/console", method: .get, headers: Self.cookie(session))
            #expect(after.status == .unauthorized)

            // An API token put into the cookie by hand is not a console session.
            let viewerToken = try await client.execute(
                uri: "/console", method: .get, headers: Self.cookie(world.viewer))
            #expect(viewerToken.status == .unauthorized)
            #expect(viewerToken.headers[.setCookie]?.contains("Max-Age=0") == true)

            // A session token cannot start another session, and a use-limited token cannot start one at all.
            let viewerSession = try #require(try await Self.signIn(client, world.viewer))
            #expect(try await Self.signIn(client, viewerSession) == nil)
            let limited = try await world.engine.createIdentity(system, IdentitySpec(name: "once", orgRole: .admin))
            _ = try await world.engine.attachTokenAuth(
                system, identityId: limited.id, AuthMethodSpec(accessTokenNumUsesLimit: 3))
            let limitedToken = try await world.engine.createIdentityToken(system, identityId: limited.id).accessToken
            let refused = try await client.execute(
                uri: "/console/login", method: .post, headers: Self.form,
                body: ByteBuffer(string: "token=" + limitedToken))
            #expect(refused.status == .unauthorized)
            #expect(String(buffer: refused.body).contains("use limit"))
        }
        // A session never outlives the token it came from.
        let shortLived = try await world.engine.createIdentity(system, IdentitySpec(name: "brief", orgRole: .admin))
        _ = try await world.engine.attachTokenAuth(
            system, identityId: shortLived.id, AuthMethodSpec(accessTokenTTL: 60, accessTokenMaxTTL: 60))
        let brief = try await world.engine.createIdentityToken(system, identityId: shortLived.id).accessToken
        let started = try await world.engine.startSession(
            bearerToken: brief, ipAddress: nil, frontEnd: "test", lifetime: Console.sessionLifetime)
        #expect(started.session.expiresIn <= 60)
        #expect(started.principal.attributes["authMethod"] == Principal.sessionAuthMethod)
    }

    /// The KMIP page is one Locate per page, with the attributes it shows: pages follow each other without gaps or
    /// repeats, and each page is audited once as a Locate (not a read per object).
    @Test func kmipObjectsArePagedWithOneLocateAPage() async throws {
        let world = try await Self.world()
        let system = CallContext.system("test")
        var created: Set<String> = []
        for _ in 0..<5 {
            created.insert(
                try await world.engine.createKey(
                    system, project: "ops",
                    ObjectSpec(objectType: .symmetricKey, algorithm: 3, cryptographicLength: 256)
                ).id)
        }
        let expected = created
        try await Self.app(world.engine).test(.router) { client in
            var seen: [String] = []
            var uri: String? = "/console/projects/ops/kmip?limit=2"
            var pages = 0
            while let next = uri {
                let r = try await client.execute(uri: next, method: .get, headers: Self.cookie(world.adminSession))
                #expect(r.status == .ok)
                let html = String(buffer: r.body)
                seen += html.matches(of: #/href="/console/kmip/objects/([^"]+)"/#).map { String($0.1) }
                uri = html.firstMatch(of: #/href="([^"]+)" rel="next"/#).map {
                    String($0.1).replacingOccurrences(of: "&amp;", with: "&")
                }
                pages += 1
            }
            #expect(pages == 3)
            #expect(seen.count == 5 && Set(seen) == expected, "\(seen)")
            let locates = try await world.engine.searchAudit(system, AuditSearch(type: "kms.locate", limit: 100))
            #expect(locates.items.count == 3)
        }
    }

    @Test func formPostsFromAnotherSiteAreRefused() async throws {
        let world = try await Self.world()
        try await Self.app(world.engine).test(.router) { client in
            var headers = Self.form
            headers[.origin] = "https://evil.example"
            let crossOrigin = try await client.execute(
                uri: "/console/login", method: .post, headers: headers, body: ByteBuffer(string: "token=" + world.admin)
            )
            #expect(crossOrigin.status == .forbidden)
            #expect(crossOrigin.headers[.setCookie] == nil)

            var fetch = Self.form
            fetch[HTTPField.Name("Sec-Fetch-Site")!] = "cross-site"
            let crossSite = try await client.execute(
                uri: "/console/login", method: .post, headers: fetch, body: ByteBuffer(string: "token=" + world.admin))
            #expect(crossSite.status == .forbidden)

            var signOut = Self.cookie(world.adminSession)
            signOut[HTTPField.Name("Sec-Fetch-Site")!] = "cross-site"
            let logout = try await client.execute(uri: "/console/logout", method: .post, headers: signOut)
            #expect(logout.status == .forbidden)
        }
    }

    static let pages = [
        "/console", "/console/login", "/console/projects/ops", "/console/projects/ops/sessions",
        "/console/projects/ops/certificates", "/console/projects/ops/kmip", "/console/audit", "/console/audit/verify",
        "/console/sessions/no-such-session", "/console/projects/ops/sessions?since=yesterday",
    ]

    @Test func everyPageHasAStrictContentSecurityPolicyAndNoInlineCode() async throws {
        let world = try await Self.world()
        try await Self.app(world.engine).test(.router) { client in
            for page in Self.pages {
                let r = try await client.execute(uri: page, method: .get, headers: Self.cookie(world.adminSession))
                let csp = try #require(r.headers[.contentSecurityPolicy], "\(page) has no CSP")
                #expect(csp.contains("default-src 'none'") && csp.contains("script-src 'self'"), "\(page): \(csp)")
                #expect(!csp.contains("unsafe"), "\(page): \(csp)")
                #expect(r.headers[.init("X-Content-Type-Options")!] == "nosniff")
                #expect(r.headers[.cacheControl] == "no-store")
                let html = String(buffer: r.body)
                #expect(html.hasPrefix("<!doctype html>"), "\(page) is not a page (\(r.status))")
                // No inline script, style or event handler: the policy would block them.
                #expect(html.firstRange(of: #/<script(?![^>]*\bsrc=)/#) == nil, "\(page) has an inline script")
                #expect(html.firstRange(of: #/<style|\sstyle=|\son[a-z]+=/#) == nil, "\(page) has inline style/code")
            }
            for asset in ["console.css", "console.js"] {
                let r = try await client.execute(uri: "/console/static/" + asset, method: .get)
                #expect(r.status == .ok)
                #expect(
                    r.headers[.contentType]?.hasPrefix(asset.hasSuffix("css") ? "text/css" : "text/javascript") == true)
            }
            let missing = try await client.execute(uri: "/console/static/other.js", method: .get)
            #expect(missing.status == .notFound)
        }
    }

    @Test func storedTextIsEscapedEverywhere() async throws {
        let world = try await Self.world()
        try await Self.app(world.engine).test(.router) { client in
            let r = try await client.execute(
                uri: "/console/projects/ops", method: .get, headers: Self.cookie(world.adminSession))
            #expect(r.status == .ok)
            let html = String(buffer: r.body)
            #expect(html.contains("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;quotes&quot;"))
            #expect(!html.contains("<script>alert"))
            // A filter value comes back escaped in its field.
            let filtered = try await client.execute(
                uri: "/console/projects/ops/sessions?identity=%22%3E%3Cb%3Ex", method: .get,
                headers: Self.cookie(world.adminSession))
            #expect(String(buffer: filtered.body).contains("value=\"&quot;&gt;&lt;b&gt;x\""))
        }
    }

    @Test func theEngineDecidesWhatAViewerSees() async throws {
        let world = try await Self.world()
        try await Self.app(world.engine).test(.router) { client in
            let sessions = try await client.execute(
                uri: "/console/projects/ops/sessions", method: .get, headers: Self.cookie(world.viewerSession))
            #expect(sessions.status == .forbidden)
            let html = String(buffer: sessions.body)
            #expect(html.contains("id=\"error\""))
            #expect(!html.contains("id=\"sessions\""))
            // The project page shows what the viewer may see and says which panels are refused.
            let project = try await client.execute(
                uri: "/console/projects/ops", method: .get, headers: Self.cookie(world.viewerSession))
            #expect(project.status == .ok)
            let body = String(buffer: project.body)
            #expect(body.contains("id=\"expiries\""))
            #expect(!body.contains("id=\"open-sessions\""))
            #expect(!body.contains("id=\"active-grants\""))
            let audit = try await client.execute(
                uri: "/console/audit", method: .get, headers: Self.cookie(world.viewerSession))
            #expect(audit.status == .forbidden)
            // The refusals are audited by the engine, as the API's are.
            let refusals = try await world.engine.searchAudit(
                .system("test"), AuditSearch(type: "authorization.denied", limit: 100))
            #expect(refusals.items.contains { $0.event.actor.metadata["name"] == "certs-viewer" })
        }
    }

    @Test func badParametersAreA400PageAndPagingLinksKeepTheFilters() async throws {
        let world = try await Self.world()
        try await Self.app(world.engine).test(.router) { client in
            for uri in [
                "/console/projects/ops/sessions?since=yesterday", "/console/audit?limit=5000",
                "/console/projects/ops/certificates?status=lost", "/console/projects/ops/kmip?offset=-3",
            ] {
                let r = try await client.execute(uri: uri, method: .get, headers: Self.cookie(world.adminSession))
                #expect(r.status == .badRequest, "\(uri)")
            }
            // Five projects, two per page: the next link carries the cursor and the limit.
            for i in 1...4 { _ = try await world.engine.createProject(.system("test"), slug: "p\(i)", description: "") }
            let first = try await client.execute(
                uri: "/console?limit=2", method: .get, headers: Self.cookie(world.adminSession))
            let html = String(buffer: first.body)
            let next = try #require(html.firstMatch(of: #/href="(/console\?[^"]+)" rel="next"/#)?.1)
            #expect(next.contains("limit=2") && next.contains("after="))
            let second = try await client.execute(
                uri: String(next).replacingOccurrences(of: "&amp;", with: "&"), method: .get,
                headers: Self.cookie(world.adminSession))
            #expect(second.status == .ok)
            #expect(
                String(buffer: second.body).components(separatedBy: "<tr><td><a href=\"/console/projects/").count == 3)
        }
    }

    @Test func theTimelineFoldsEachOutcomeIntoItsStatement() {
        let events = [
            PAMRecordingEvent(t: 0, kind: "start", detail: ["who": "dana"]),
            PAMRecordingEvent(t: 0.010, kind: "query", text: "select 1"),
            PAMRecordingEvent(t: 0.012, kind: "complete", text: "SELECT 1", rows: 1),
            PAMRecordingEvent(t: 0.020, kind: "parse", text: "select * from t where id = $1", name: "s1"),
            PAMRecordingEvent(t: 0.021, kind: "bind", name: "", statement: "s1", parameters: ["42", nil]),
            PAMRecordingEvent(t: 0.022, kind: "execute", name: ""),
            PAMRecordingEvent(t: 0.030, kind: "error", text: "relation \"t\" does not exist", sqlState: "42P01"),
            PAMRecordingEvent(t: 0.040, kind: "query", text: "copy t from stdin"),
            PAMRecordingEvent(t: 0.041, kind: "copyIn", bytes: 2048),
            PAMRecordingEvent(t: 0.050, kind: "complete", text: "COPY 10", rows: 10),
            PAMRecordingEvent(t: 0.060, kind: "end", text: "client-terminated"),
        ]
        let timeline = ConsoleViews.timeline(events)
        #expect(timeline.statements == 3)
        let rows = timeline.rows
        #expect(rows.count == 5)
        #expect(rows[1]["sql"] as? String == "select 1")
        #expect(rows[1]["tag"] as? String == "SELECT 1")
        #expect(rows[1]["rows"] as? String == "1 row")
        #expect(rows[1]["duration"] as? String == "2.0 ms")
        #expect(rows[2]["sql"] as? String == "select * from t where id = $1")
        let parameters = try? #require(rows[2]["parameters"] as? [[String: Any]])
        #expect(parameters?.map { "\($0["n"] ?? "") = \($0["value"] ?? "")" } == ["$1 = 42", "$2 = NULL"])
        #expect(rows[2]["failed"] as? Bool == true)
        #expect(rows[2]["error"] as? String == "42P01 relation \"t\" does not exist")
        #expect(rows[2]["duration"] as? String == "8.0 ms")
        #expect(rows[3]["copy"] as? String == "COPY in 2.0 KiB")
        #expect(rows[3]["rows"] as? String == "10 rows")
        #expect(rows[4]["kind"] as? String == "end")
        #expect(rows[4]["note"] as? String == "client-terminated")
    }

    @Test func theTimelineRowsAreEscapedHTML() {
        let events = [
            PAMRecordingEvent(t: 0.001, kind: "query", text: "select '<script>alert(\"x\")</script>' & 1"),
            PAMRecordingEvent(t: 0.002, kind: "error", text: "bad <b>", sqlState: "42601"),
            PAMRecordingEvent(t: 0.003, kind: "parse", text: "select $1", name: "s"),
            PAMRecordingEvent(t: 0.004, kind: "bind", name: "", statement: "s", parameters: ["'><img src=x>"]),
            PAMRecordingEvent(t: 0.005, kind: "execute", name: ""),
            PAMRecordingEvent(t: 0.006, kind: "complete", text: "SELECT 1", rows: 1),
        ]
        let html = ConsoleViews.timelineHTML(ConsoleViews.timeline(events).rows)
        #expect(!html.contains("<script>") && !html.contains("<b>") && !html.contains("<img"))
        #expect(html.contains("select &#39;&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&#39; &amp; 1"))
        #expect(html.contains("<tr class=\"failed\">"))
        #expect(html.contains("<span class=\"error\">42601 bad &lt;b&gt;</span>"))
        #expect(html.contains("<span class=\"param\">$1 = &#39;&gt;&lt;img src=x&gt;</span>"))
        #expect(html.contains("SELECT 1 · 1 row"))
        #expect(html.components(separatedBy: "<tr").count == 3)
        #expect(ConsoleViews.escape("plain ünïcode") == "plain ünïcode")
    }

    /// A scripted recording store: `readPAMRecording` answers with `integrity`; `followPAMRecording` replays
    /// `updates` (the last one ends the session).
    final class Recordings: PAMEngineDouble, @unchecked Sendable {
        let integrity: String
        let ended: Bool
        let updates: [[PAMRecordingEvent]]
        let follows = CallLog()
        init(integrity: String, ended: Bool = true, updates: [[PAMRecordingEvent]] = []) {
            self.integrity = integrity
            self.ended = ended
            self.updates = updates
        }
        func session(ended: Bool) -> PAMSessionInfo {
            PAMSessionInfo(
                id: "s-1", project: "ops", grantId: "g", resourceName: "orders", username: "app", granteeId: "i",
                granteeName: "dana", clientAddress: "127.0.0.1", startedAt: Date(timeIntervalSince1970: 0),
                endedAt: ended ? Date(timeIntervalSince1970: 60) : nil, endReason: ended ? .ended : nil)
        }
        override func readPAMRecording(_ ctx: CallContext, sessionId: String) async throws -> PAMRecording {
            PAMRecording(
                integrity: integrity, integrityDetail: "chunk 3 does not verify", session: session(ended: ended),
                events: [PAMRecordingEvent(t: 0.1, kind: "query", text: "select 1")])
        }
        override func followPAMRecording(_ ctx: CallContext, sessionId: String, from: Int, interval: Duration)
            async throws -> PAMRecordingFollow
        {
            follows.add("follow \(sessionId) as \(ctx.principal.name)")
            let updates = self.updates
            return PAMRecordingFollow(from: from, interval: .milliseconds(1)) { seen in
                // `seen` counts the events already returned: the index of the next update.
                var index = 0
                var count = 0
                while index < updates.count && count < seen {
                    count += updates[index].count
                    index += 1
                }
                return PAMRecordingUpdate(
                    events: index < updates.count ? updates[index] : [],
                    session: self.session(ended: index >= updates.count - 1), integrity: "incomplete")
            }
        }
    }

    final class Tokens: AuthenticatorDouble, @unchecked Sendable {
        override func authenticate(bearerToken: String, ipAddress: String?, frontEnd: String) async throws -> Principal
        {
            guard bearerToken == "ghat_good" else { throw EngineError(.unauthenticated, "invalid access token") }
            return Principal(
                method: .token, id: "id-r", name: "reviewer", attributes: ["authMethod": Principal.sessionAuthMethod])
        }
    }

    static func services(pam: any PAMEngine) -> AdminServices {
        var services = AdminServices.doubles(authenticator: Tokens())
        services.pam = pam
        return services
    }

    @Test(arguments: [
        ("tampered", true, "Recording TAMPERED: chunk 3 does not verify"),
        ("incomplete", true, "Recording incomplete: chunk 3 does not verify"),
        ("complete", true, "Recording complete: its signed manifest matches."),
        ("incomplete", false, "Session in progress"),
    ])
    func theReplaySaysPlainlyWhatTheRecordingIsWorth(_ integrity: String, _ ended: Bool, _ banner: String)
        async throws
    {
        try await routerApp(Self.services(pam: Recordings(integrity: integrity, ended: ended))).test(.router) {
            client in
            let r = try await client.execute(
                uri: "/console/sessions/s-1", method: .get, headers: Self.cookie("ghat_good"))
            #expect(r.status == .ok)
            let html = String(buffer: r.body)
            #expect(html.contains(banner), "\(integrity): \(html)")
            #expect(html.contains("select 1"))
            #expect(html.contains("data-live=\"1\"") == !ended)
        }
    }

    @Test func aRunningSessionStreamsSettledRowsThenEnds() async throws {
        let recordings = Recordings(
            integrity: "incomplete", ended: false,
            updates: [
                [
                    PAMRecordingEvent(t: 0, kind: "start", detail: ["who": "dana"]),
                    PAMRecordingEvent(t: 0.1, kind: "query", text: "select 'first'"),
                ],
                [
                    PAMRecordingEvent(t: 0.2, kind: "complete", text: "SELECT 1", rows: 1),
                    PAMRecordingEvent(t: 0.3, kind: "query", text: "select '<second>'"),
                ],
                [PAMRecordingEvent(t: 0.4, kind: "end", text: "client-terminated")],
            ])
        try await routerApp(Self.services(pam: recordings)).test(.router) { client in
            let r = try await client.execute(
                uri: "/console/sessions/s-1/live?from=1", method: .get, headers: Self.cookie("ghat_good"))
            #expect(r.status == .ok)
            #expect(r.headers[.contentType]?.hasPrefix("text/event-stream") == true)
            let body = String(buffer: r.body)
            let rows = body.components(separatedBy: "\n\n").filter { $0.hasPrefix("event: row") }
            // The page showed the start row (from=1); then 'first' once it completed, '<second>' and the end.
            #expect(rows.count == 3, "\(body)")
            #expect(rows.first?.contains(#""sql":"select 'first'""#) == true)
            #expect(rows.first?.contains(#""tag":"SELECT 1""#) == true)
            #expect(rows.dropFirst().first?.contains("<second>") == true)
            #expect(body.hasSuffix("event: ended\ndata: {}\n\n"))
            #expect(recordings.follows.all == ["follow s-1 as reviewer"])

            let anonymous = try await client.execute(uri: "/console/sessions/s-1/live", method: .get)
            #expect(anonymous.status == .unauthorized)
        }
    }

    @Test func auditDetailsLinkToWhatTheyName() {
        #expect(ConsoleViews.objectLink(key: "sessionId", value: "s-1") == "/console/sessions/s-1")
        #expect(ConsoleViews.objectLink(key: "serialNumber", value: "0a1b") == "/console/certificates/0a1b")
        #expect(ConsoleViews.objectLink(key: "objectId", value: "a/b") == "/console/kmip/objects/a%2Fb")
        #expect(ConsoleViews.objectLink(key: "name", value: "x") == nil)
    }
}
