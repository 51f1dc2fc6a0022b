import EngineAPI
import Foundation
import Testing

/// The proxy's hand-written event JSON decodes to the same event with Foundation's decoder, whatever the statement
/// text holds.
@Suite struct RecordingEventJSONTests {
    func roundTrip(_ event: PAMRecordingEvent) throws -> PAMRecordingEvent {
        var out: [UInt8] = []
        event.appendJSON(to: &out)
        return try JSONDecoder().decode(PAMRecordingEvent.self, from: Data(out))
    }

    @Test func everyFieldRoundTrips() throws {
        let full = PAMRecordingEvent(
            t: 12.345, kind: "bind", text: "select $1, '\"quoted\"' -- \\ back\\slash\n\ttab\r", name: "stmt/1",
            statement: "",
            sqlState: "42P01", parameters: ["naïve ünïcode ✓ 𝄞", nil, "\u{0}\u{1}\u{1F}\u{7F}", "\\x00ff"],
            parameterTypes: [23, -1, 2_147_483_647],
            formats: [0, 1, -32768], rows: Int64.max, bytes: Int64.min,
            detail: ["who": "alice", "client": "127.0.0.1:5", "": "\"empty key\""])
        #expect(try roundTrip(full) == full)
        let minimal = PAMRecordingEvent(t: 0, kind: "query")
        #expect(try roundTrip(minimal) == minimal)
        for t in [1e-9, 0.001, 86400.5, 1e20] {
            let e = PAMRecordingEvent(t: t, kind: "x")
            #expect(try roundTrip(e) == e)
        }
        // Whole milliseconds (the recorder's clock) take a fast path that must print what `description` prints.
        for millis in [0, 1, 10, 100, 999, 1000, 1001, 12345, 86_400_500, 999_999_999_999_999] as [Int64] {
            let t = Double(millis) / 1000
            var out: [UInt8] = []
            PAMRecordingEvent(t: t, kind: "x").appendJSON(to: &out)
            #expect(String(decoding: out, as: UTF8.self) == #"{"kind":"x","t":"# + t.description + "}")
        }
        for n in [0, 7, -7, 1_234_567_890, Int64.max, Int64.min] as [Int64] {
            var out: [UInt8] = []
            PAMRecordingEvent(t: 0, kind: "x", rows: n).appendJSON(to: &out)
            #expect(String(decoding: out, as: UTF8.self) == #"{"kind":"x","rows":\#(n),"t":0.0}"#)
        }
        var line: [UInt8] = []
        minimal.appendJSON(to: &line)
        #expect(String(decoding: line, as: UTF8.self) == #"{"kind":"query","t":0.0}"#)
    }

    @Test func randomTextRoundTrips() throws {
        var rng = SystemRandomNumberGenerator()
        for _ in 0..<500 {
            let scalars = (0..<Int.random(in: 0..<40, using: &rng)).compactMap { _ in
                Unicode.Scalar(UInt32.random(in: 0..<0x11_0000, using: &rng))
                    ?? Unicode.Scalar(UInt8.random(in: 0...127, using: &rng))
            }
            var text = ""
            text.unicodeScalars.append(contentsOf: scalars)
            let e = PAMRecordingEvent(
                t: Double.random(in: 0..<1e6, using: &rng), kind: "query", text: text, parameters: [text])
            #expect(try roundTrip(e) == e, "\(Array(text.unicodeScalars).map { $0.value })")
        }
    }

    /// String escaping writes what `JSONEncoder` (slashes unescaped) writes, byte for byte: every ASCII byte alone and
    /// among others, long texts with nothing to escape, and JSON inside JSON (a quote every few bytes).
    @Test func stringsMatchJSONEncoder() throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.withoutEscapingSlashes]
        var cases = (0..<128).map { String(UnicodeScalar(UInt8($0))) }
        cases.append(String((0..<128).map { Character(UnicodeScalar(UInt8($0))) }))
        cases.append("")
        cases.append(String(repeating: "select 1; ", count: 500))
        cases.append(String(repeating: #"{"k": "v"}, "#, count: 372))
        cases.append("naïve ✓ 𝄞 \\ \" \u{7F} \u{1B}[0m </tag>\r\n")
        var rng = SystemRandomNumberGenerator()
        for _ in 0..<200 {
            var text = ""
            for _ in 0..<Int.random(in: 0..<300, using: &rng) {
                text.unicodeScalars.append(Unicode.Scalar(UInt8.random(in: 0...127, using: &rng)))
            }
            cases.append(text)
        }
        for text in cases {
            var ours: [UInt8] = [0x41]
            JSONText.append(string: text, to: &ours)
            let theirs = [0x41] + Array(try encoder.encode(text))
            #expect(ours == theirs, "\(Array(text.utf8))")
        }
    }

    /// The general writer (ACME resources and problems) writes what JSONSerialization writes with sorted keys and
    /// unescaped slashes, byte for byte, for the shapes the front ends build.
    @Test func documentsMatchJSONSerialization() throws {
        let cases: [Any] = [
            [String: Any](),
            [
                "status": "pending", "expires": "2026-11-29T00:00:00Z",
                "identifiers": [["type": "dns", "value": "a.localhost"]],
                "authorizations": ["https://h/acme/p/authz/1", "https://h/acme/p/authz/2"], "wildcard": true,
                "count": 3,
                "retry": 1.5, "big": -9_007_199_254_740_991, "nothing": NSNull(),
                "nested": ["z": [1, 2, [3]], "a": ["b": false]],
            ] as [String: Any],
            [
                "detail": "quote \" backslash \\ newline \n tab \t ctl \u{01} é 😀 </script>",
                "type": "urn:ietf:params:acme:error:malformed",
            ],
            ["keys": ["b", "a", "B", "_", "aa", "a b"]] as [String: Any],
        ]
        for value in cases {
            let ours = JSONText.document(value)
            let theirs = Array(
                try JSONSerialization.data(withJSONObject: value, options: [.sortedKeys, .withoutEscapingSlashes]))
            #expect(
                ours == theirs, "\(String(decoding: ours, as: UTF8.self)) vs \(String(decoding: theirs, as: UTF8.self))"
            )
        }
        let optional: String? = nil
        #expect(
            JSONText.document(["a": optional as Any, "b": Optional("x") as Any]) == Array(#"{"a":null,"b":"x"}"#.utf8))
    }

}
