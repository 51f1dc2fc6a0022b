import ACMEProtocol
import Foundation
import Testing

/// Base64url without padding (RFC 7515 §2): the encoder agrees with Foundation's base64 (alphabet swapped, padding
/// dropped) for every length and byte value, and the strict decoder inverts it.
@Suite struct Base64URLTests {
    @Test func agreesWithFoundationAndRoundTrips() {
        var generator = SystemRandomNumberGenerator()
        for length in 0..<200 {
            let bytes = (0..<length).map { _ in UInt8.random(in: 0...255, using: &generator) }
            let expected = Data(bytes).base64EncodedString().replacingOccurrences(of: "+", with: "-")
                .replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
            let encoded = Base64URL.encode(bytes)
            #expect(encoded == expected, "length \(length)")
            #expect(Base64URL.decode(encoded) == bytes, "length \(length)")
        }
        #expect(Base64URL.encode([0xFB, 0xFF, 0xBF]) == "-_-_")
        #expect(Base64URL.encode(Array("hello".utf8)) == "aGVsbG8")
    }

    @Test func decoderRefusesWhatIsNotCanonicalBase64URL() {
        #expect(Base64URL.decode("aGVsbG8=") == nil, "padding")
        #expect(Base64URL.decode("+/") == nil, "the base64 alphabet")
        #expect(Base64URL.decode("a") == nil, "a lone sextet")
        #expect(Base64URL.decode("aGVsbG9") == nil, "non-zero leftover bits")
        #expect(Base64URL.decode("") == [])
    }
}
