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
            t: 12.345, kind: "bind", text: "select $1, '\"quoted\"' -- \\ back\\slash\n\ttab\r", name: "stmt/1", statement: "",
            sqlState: "42P01", parameters: ["naïve ünïcode ✓ 𝄞", nil, "\u{0}\u{1}\u{1F}\u{7F}", "\\x00ff"], parameterTypes: [23, -1, 2147483647],
            formats: [0, 1, -32768], rows: Int64.max, bytes: Int64.min, detail: ["who": "alice", "client": "127.0.0.1:5", "": "\"empty key\""])
        #expect(try roundTrip(full) == full)
        let minimal = PAMRecordingEvent(t: 0, kind: "query")
        #expect(try roundTrip(minimal) == minimal)
        for t in [1e-9, 0.001, 86400.5, 1e20] {
            let e = PAMRecordingEvent(t: t, kind: "x")
            #expect(try roundTrip(e) == e)
        }
        var line: [UInt8] = []
        minimal.appendJSON(to: &line)
        #expect(String(decoding: line, as: UTF8.self) == #"{"kind":"query","t":0.0}"#)
    }

    @Test func randomTextRoundTrips() throws {
        var rng = SystemRandomNumberGenerator()
        for _ in 0..<500 {
            let scalars = (0..<Int.random(in: 0..<40, using: &rng)).compactMap { _ in
                Unicode.Scalar(UInt32.random(in: 0..<0x11_0000, using: &rng)) ?? Unicode.Scalar(UInt8.random(in: 0...127, using: &rng))
            }
            var text = ""
            text.unicodeScalars.append(contentsOf: scalars)
            let e = PAMRecordingEvent(t: Double.random(in: 0..<1e6, using: &rng), kind: "query", text: text, parameters: [text])
            #expect(try roundTrip(e) == e, "\(Array(text.unicodeScalars).map { $0.value })")
        }
    }
}
