import Foundation
import PGWire
import TestSupport
import Testing

/// The PostgreSQL v3 codec without sockets: framing limits, every message both ways, SCRAM-SHA-256 (RFC 7677
/// vector); then the same codec logs in to the real PostgreSQL the test command starts and runs simple and
/// extended queries.
@Suite struct PGWireCodecTests {
    @Test func framingReassemblesFragmentsAndRefusesBadLengths() throws {
        let messages: [PGFrontendMessage] = [.query("select 1"), .sync, .terminate]
        let wire =
            PGStartup.startup(minorVersion: 0, parameters: [("user", "alice"), ("database", "db")]).frame.bytes
            + messages.flatMap(\.frame.bytes)
        var decoder = PGFrameDecoder(expectStartup: true)
        var frames: [PGFrame] = []
        for byte in wire {
            decoder.feed([byte])
            while let f = try decoder.next() {
                frames.append(f)
                decoder.expectStartup = false
            }
        }
        #expect(frames.count == 4)
        #expect(
            try PGStartup(body: frames[0].body)
                == .startup(minorVersion: 0, parameters: [("user", "alice"), ("database", "db")]))
        #expect(try frames.dropFirst().map(PGFrontendMessage.init) == messages)
        #expect(decoder.buffered == 0)

        // Lengths below the minimum, above the limit, or negative are errors at once, never a wait for more bytes.
        for bad: [UInt8] in [
            [UInt8(ascii: "Q"), 0, 0, 0, 3], [UInt8(ascii: "Q"), 0x7f, 0xff, 0xff, 0xff],
            [UInt8(ascii: "Q"), 0xff, 0xff, 0xff, 0xfc],
        ] {
            var d = PGFrameDecoder(expectStartup: false, maxMessageLength: 1 << 20)
            d.feed(bad)
            #expect(throws: PGWireError.self) { try d.next() }
        }
        for bad: [UInt8] in [[0, 0, 0, 7], [0, 0, 0x27, 0x11], [0xff, 0xff, 0xff, 0xff]] {
            var d = PGFrameDecoder(expectStartup: true)
            d.feed(bad)
            #expect(throws: PGWireError.self) { try d.next() }
        }
        // Bytes pipelined behind an SSLRequest are not frames of the TLS session (CVE-2021-23214): drain shows them.
        var d = PGFrameDecoder(expectStartup: true)
        d.feed(PGStartup.sslRequest.frame.bytes + PGFrontendMessage.query("injected").frame.bytes)
        #expect(try d.next().map { try PGStartup(body: $0.body) } == .sslRequest)
        #expect(d.drain().count == PGFrontendMessage.query("injected").frame.bytes.count)
        #expect(d.buffered == 0)
    }

    @Test func startupPackets() throws {
        #expect(PGStartup.sslRequest.frame.bytes == [0, 0, 0, 8, 4, 210, 22, 47])
        #expect(PGStartup.gssEncRequest.frame.bytes == [0, 0, 0, 8, 4, 210, 22, 48])
        #expect(
            try PGStartup(body: PGStartup.cancel(processID: 7, secretKey: -2).frame.body)
                == .cancel(processID: 7, secretKey: -2))
        #expect(throws: PGWireError.unsupportedStartup(2 << 16)) { try PGStartup(body: [0, 2, 0, 0, 0]) }
        var dup = PGWriter()
        dup.int32(3 << 16)
        for s in ["user", "a", "user", "b"] { dup.cString(s) }
        dup.byte(0)
        #expect(throws: PGWireError.self) { try PGStartup(body: dup.bytes) }
        #expect(throws: PGWireError.self) { try PGStartup(body: [0, 3, 0, 0, UInt8(ascii: "u")]) }  // unterminated
    }

    @Test func everyMessageRoundTripsAndMalformedBodiesAreRefused() throws {
        let frontend: [PGFrontendMessage] = [
            .query("select 'é'"), .parse(name: "s1", query: "select $1::int", parameterTypes: [23]),
            .bind(
                portal: "", statement: "s1", parameterFormats: [0, 1], parameters: [Array("41".utf8), nil],
                resultFormats: [1]),
            .execute(portal: "", maxRows: 0), .describe(kind: UInt8(ascii: "S"), name: "s1"),
            .close(kind: UInt8(ascii: "P"), name: "p"),
            .sync, .flush, .terminate, .copyData([1, 2, 3]), .copyDone, .copyFail("client gave up"),
            .functionCall(oid: 1598, argumentFormats: [1], arguments: [[0, 0, 0, 1], nil], resultFormat: 1),
            .authenticationResponse(Array("secret\0".utf8)),
        ]
        for m in frontend { #expect(try PGFrontendMessage(m.frame) == m) }
        let backend: [PGBackendMessage] = [
            .authentication(code: 10, data: Array("SCRAM-SHA-256\0\0".utf8)),
            .parameterStatus(name: "server_version", value: "15.8"),
            .backendKeyData(processID: 1234, secretKey: -99), .readyForQuery(status: UInt8(ascii: "I")),
            .rowDescription([
                PGField(name: "one", tableOID: 0, column: 0, typeOID: 23, typeSize: 4, typeModifier: -1, format: 0)
            ]),
            .dataRow([Array("1".utf8), nil, []]), .commandComplete(tag: "SELECT 1"),
            .error(sqlState: "28000", message: "no grant"),
            .errorOrNotice(isError: false, fields: [UInt8(ascii: "M"): "note"]),
            .parseComplete, .bindComplete, .closeComplete, .noData, .portalSuspended, .emptyQueryResponse,
            .parameterDescription([23, 25]),
            .copyResponse(kind: UInt8(ascii: "G"), overallFormat: 0, columnFormats: [0, 0]),
            .copyData([9]), .copyDone, .notification(processID: 5, channel: "ch", payload: "hi"),
            .negotiateProtocolVersion(minor: 0, unrecognized: ["_pq_.x"]), .functionCallResponse(nil),
        ]
        for m in backend { #expect(try PGBackendMessage(m.frame) == m) }

        let bad: [PGFrame] = [
            PGFrame(type: UInt8(ascii: "Q"), body: Array("no terminator".utf8)),
            PGFrame(type: UInt8(ascii: "S"), body: [1]),  // Sync with a body
            // 32767 parameter types, no bytes.
            PGFrame(type: UInt8(ascii: "P"), body: Array("s\0q\0".utf8) + [0x7f, 0xff]),
            // A parameter of length -2.
            PGFrame(type: UInt8(ascii: "B"), body: Array("\0\0".utf8) + [0, 0, 0, 1, 0xff, 0xff, 0xff, 0xfe, 0, 0]),
            PGFrame(type: UInt8(ascii: "D"), body: [UInt8(ascii: "X")] + Array("n\0".utf8)),
            PGFrame(type: UInt8(ascii: "?"), body: []),
            PGFrame(type: nil, body: [0, 3, 0, 0]),
        ]
        for f in bad { #expect(throws: PGWireError.self, "\(f)") { try PGFrontendMessage(f) } }
        #expect(throws: PGWireError.self) {
            try PGBackendMessage(PGFrame(type: UInt8(ascii: "D"), body: [0, 2, 0, 0, 0, 1]))
        }
        #expect(throws: PGWireError.self) {
            try PGBackendMessage(PGFrame(type: UInt8(ascii: "E"), body: [UInt8(ascii: "M")] + Array("x".utf8)))
        }
    }

    /// RFC 7677 §3: user "user", password "pencil".
    @Test func scramSHA256MatchesTheRFC7677Example() throws {
        var scram = SCRAMClient(password: "pencil", user: "user", nonce: "rOprNGfwEbeRWgbNEkqO")
        #expect(String(decoding: scram.clientFirst, as: UTF8.self) == "n,,n=user,r=rOprNGfwEbeRWgbNEkqO")
        let final = try scram.clientFinal(
            serverFirst: Array(
                "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096".utf8))
        #expect(
            String(decoding: final, as: UTF8.self)
                == "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
        )
        try scram.verify(serverFinal: Array("v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=".utf8))
        #expect(throws: SCRAMClient.SCRAMError.serverSignatureMismatch) {
            try scram.verify(serverFinal: Array("v=7rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=".utf8))
        }
        var other = SCRAMClient(password: "pencil", nonce: "abc")
        #expect(throws: SCRAMClient.SCRAMError.nonceMismatch) {
            try other.clientFinal(serverFirst: Array("r=xyz1,s=QUJD,i=4096".utf8))
        }
        #expect(throws: SCRAMClient.SCRAMError.iterationCount(2_000_000_000)) {
            try other.clientFinal(serverFirst: Array("r=abc1,s=QUJD,i=2000000000".utf8))
        }
    }

    /// The codec logs in to a real PostgreSQL 15 with SCRAM-SHA-256 and runs a simple query, an extended query with
    /// a parameter, and a failing query.
    @Test func talksToARealPostgreSQL() throws {
        guard let url = ProcessInfo.processInfo.environment["PG_TEST_URL"], let parts = URLComponents(string: url)
        else {
            if dependencyRequired("PG") { Issue.record("PG_TEST_URL is not set") }
            return
        }
        let fd = Loopback.connect(port: parts.port ?? 5432)
        try #require(fd >= 0, "cannot connect to \(parts.host ?? "?"):\(parts.port ?? 0)")
        defer { close(fd) }
        var decoder = PGFrameDecoder(expectStartup: false)
        func send(_ frame: PGFrame) {
            let bytes = frame.bytes
            _ = bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        }
        func receive() throws -> PGBackendMessage {
            var buffer = [UInt8](repeating: 0, count: 65536)
            while true {
                if let frame = try decoder.next() { return try PGBackendMessage(frame) }
                let n = read(fd, &buffer, buffer.count)
                guard n > 0 else { throw PGWireError.malformed("connection closed") }
                decoder.feed(buffer[0..<n])
            }
        }
        func until(_ stop: (PGBackendMessage) -> Bool) throws -> [PGBackendMessage] {
            var seen: [PGBackendMessage] = []
            while true {
                let m = try receive()
                seen.append(m)
                if stop(m) { return seen }
            }
        }
        let database = String(parts.path.dropFirst())
        send(
            PGStartup.startup(minorVersion: 0, parameters: [("user", parts.user ?? ""), ("database", database)]).frame)
        guard case .authentication(10, let mechanisms) = try receive() else {
            Issue.record("no SASL request")
            return
        }
        #expect(SCRAMClient.mechanisms(mechanisms).contains("SCRAM-SHA-256"))
        var scram = SCRAMClient(password: parts.password?.removingPercentEncoding ?? "")
        send(PGFrontendMessage.saslInitialResponse(mechanism: SCRAMClient.mechanism, data: scram.clientFirst).frame)
        guard case .authentication(11, let serverFirst) = try receive() else {
            Issue.record("no SASL continue")
            return
        }
        send(PGFrontendMessage.authenticationResponse(try scram.clientFinal(serverFirst: serverFirst)).frame)
        guard case .authentication(12, let serverFinal) = try receive() else {
            Issue.record("no SASL final")
            return
        }
        try scram.verify(serverFinal: serverFinal)
        let startup = try until { if case .readyForQuery = $0 { return true } else { return false } }
        #expect(startup.first == .authentication(code: 0, data: []))
        #expect(startup.contains { if case .backendKeyData = $0 { return true } else { return false } })
        #expect(
            startup.contains {
                if case .parameterStatus("server_encoding", "UTF8") = $0 { return true } else { return false }
            })

        send(PGFrontendMessage.query("select 1 as one, null::text as nothing").frame)
        let simple = try until { if case .readyForQuery = $0 { return true } else { return false } }
        #expect(simple.contains(.dataRow([Array("1".utf8), nil])), "\(simple)")
        #expect(simple.contains(.commandComplete(tag: "SELECT 1")))

        for m: PGFrontendMessage in [
            .parse(name: "", query: "select $1::int + 1 as answer", parameterTypes: [23]),
            .bind(portal: "", statement: "", parameterFormats: [0], parameters: [Array("41".utf8)], resultFormats: [0]),
            .describe(kind: UInt8(ascii: "P"), name: ""), .execute(portal: "", maxRows: 0), .sync,
        ] { send(m.frame) }
        let extended = try until { if case .readyForQuery = $0 { return true } else { return false } }
        #expect(extended.first == .parseComplete && extended.dropFirst().first == .bindComplete, "\(extended)")
        #expect(extended.contains(.dataRow([Array("42".utf8)])), "\(extended)")

        send(PGFrontendMessage.query("select 1/0").frame)
        let failed = try until { if case .readyForQuery = $0 { return true } else { return false } }
        let error = failed.compactMap { m -> [UInt8: String]? in
            if case .errorOrNotice(true, let f) = m { return f } else { return nil }
        }.first
        #expect(error?[UInt8(ascii: "C")] == "22012", "\(failed)")
        send(PGFrontendMessage.terminate.frame)
    }

    /// The proxy's start-up convention: user = account, database = resource; session parameters on an allow-list;
    /// replication and `options` refused with SQLSTATEs the client shows.
    @Test func startupConventionAndRefusals() throws {
        let ok = try PGStartupRequest(parameters: [
            ("user", "app_user"), ("database", "orders-db"), ("application_name", "psql"), ("client_encoding", "UTF8"),
            ("replication", "false"), ("options", " "),
        ])
        #expect(ok.account == "app_user" && ok.resource == "orders-db")
        #expect(
            ok.upstreamParameters(role: "app", database: "orders").elementsEqual(
                [("user", "app"), ("database", "orders"), ("application_name", "psql"), ("client_encoding", "UTF8")],
                by: ==))
        let cases: [([(String, String)], PGStartupRequest.Refusal)] = [
            ([("database", "r")], .missing("user")),
            ([("user", "a")], .missing("database")),
            ([("user", "a"), ("database", "r"), ("replication", "database")], .replication),
            ([("user", "a"), ("database", "r"), ("replication", "true")], .replication),
            ([("user", "a"), ("database", "r"), ("options", "-c session_replication_role=replica")], .options),
            (
                [("user", "a"), ("database", "r"), ("session_authorization", "postgres")],
                .parameter("session_authorization")
            ),
        ]
        for (parameters, refusal) in cases {
            #expect(throws: refusal) { try PGStartupRequest(parameters: parameters) }
        }
        #expect(
            PGStartupRequest.Refusal.replication.sqlState == "0A000"
                && PGStartupRequest.Refusal.missing("user").sqlState == "28000")
    }

    @Test func cancelKeysMapOnlyWithTheRightSecret() {
        var keys = PGCancelKeys()
        let upstream = PGCancelKeys.Upstream(processID: 4242, secretKey: 77, session: "s1")
        let issued = keys.issue(for: upstream)
        #expect(issued.processID != upstream.processID || issued.secretKey != upstream.secretKey)
        #expect(keys.resolve(processID: issued.processID, secretKey: issued.secretKey) == upstream)
        #expect(keys.resolve(processID: issued.processID, secretKey: issued.secretKey &+ 1) == nil)
        #expect(keys.resolve(processID: issued.processID &+ 1, secretKey: issued.secretKey) == nil)
        let many = (0..<1000).map { keys.issue(for: .init(processID: $0, secretKey: $0, session: "s\($0)")).processID }
        #expect(Set(many).count == 1000 && keys.count == 1001)
        keys.remove(processID: issued.processID)
        #expect(keys.resolve(processID: issued.processID, secretKey: issued.secretKey) == nil)
    }
}

/// Bound parameters as replay shows them: PostgreSQL's binary formats decoded to the text PostgreSQL prints.
@Suite struct PGValueTextTests {
    func be(_ v: Int64, _ n: Int) -> [UInt8] { (0..<n).map { UInt8(truncatingIfNeeded: v >> (8 * (n - 1 - $0))) } }

    @Test func binaryValuesOfTheCommonTypes() {
        typealias O = PGValueText.OID
        #expect(PGValueText.render(be(42, 4), oid: O.int4, binary: true) == "42")
        #expect(PGValueText.render(be(-2, 2), oid: O.int2, binary: true) == "-2")
        #expect(PGValueText.render(be(-9_000_000_000, 8), oid: O.int8, binary: true) == "-9000000000")
        #expect(PGValueText.render([1], oid: O.bool, binary: true) == "true")
        #expect(PGValueText.render(Array("naïve".utf8), oid: O.text, binary: true) == "naïve")
        #expect(PGValueText.render([0x01, 0x02, 0xff], oid: O.bytea, binary: true) == "\\x0102ff")
        #expect(PGValueText.render(be(Int64(Double(2.5).bitPattern), 8), oid: O.float8, binary: true) == "2.5")
        #expect(
            PGValueText.render((0..<16).map { UInt8($0 * 17) }, oid: O.uuid, binary: true)
                == "00112233-4455-6677-8899-aabbccddeeff")
        // Dates and timestamps count from 2000-01-01; before year 1 they are BC.
        #expect(PGValueText.render(be(0, 4), oid: O.date, binary: true) == "2000-01-01")
        #expect(PGValueText.render(be(-730_119, 4), oid: O.date, binary: true) == "0001-01-01")
        #expect(PGValueText.render(be(-730_120, 4), oid: O.date, binary: true) == "0001-12-31 BC")
        let micros: Int64 = (9498 * 86_400 + 3 * 3600 + 4 * 60 + 5) * 1_000_000 + 500_000
        #expect(PGValueText.render(be(micros, 8), oid: O.timestamp, binary: true) == "2026-01-02 03:04:05.5")
        #expect(PGValueText.render(be(-1, 8), oid: O.timestamptz, binary: true) == "1999-12-31 23:59:59.999999+00")
        // numeric: ndigits, weight, sign, dscale, then base-10000 digits.
        func numeric(_ weight: Int64, _ sign: Int64, _ scale: Int64, _ digits: [Int64]) -> [UInt8] {
            be(Int64(digits.count), 2) + be(weight, 2) + be(sign, 2) + be(scale, 2) + digits.flatMap { be($0, 2) }
        }
        #expect(PGValueText.render(numeric(0, 0x4000, 4, [12, 345]), oid: O.numeric, binary: true) == "-12.0345")
        #expect(PGValueText.render(numeric(-1, 0, 5, [1, 2000]), oid: O.numeric, binary: true) == "0.00012")
        #expect(PGValueText.render(numeric(1, 0, 0, [2]), oid: O.numeric, binary: true) == "20000")
        #expect(PGValueText.render(numeric(0, 0xC000, 0, []), oid: O.numeric, binary: true) == "NaN")
        // Text format is the text; what is not UTF-8, or a type not known here, is hex; NULL stays NULL.
        #expect(PGValueText.render(Array("4242".utf8), oid: 0, binary: false) == "4242")
        #expect(PGValueText.render([0xff, 0xfe], oid: 0, binary: false) == "\\xfffe")
        #expect(PGValueText.render([1, 2, 3], oid: 600, binary: true) == "\\x010203")
        #expect(PGValueText.render(be(42, 3), oid: O.int4, binary: true) == "\\x00002a", "a wrong length is shown raw")
        #expect(PGValueText.render(nil, oid: O.int4, binary: true) == nil)
    }
}
