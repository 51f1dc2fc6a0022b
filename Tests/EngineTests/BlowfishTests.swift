import SystemCrypto
import Testing

/// Blowfish-CBC from OpenSSL's legacy provider (KMIP ENCRYPT derivation), against Eric Young's published vectors.
@Suite struct BlowfishTests {
    static func hex(_ s: String) -> [UInt8] {
        var out: [UInt8] = []
        var i = s.startIndex
        while i < s.endIndex {
            let j = s.index(i, offsetBy: 2)
            out.append(UInt8(s[i..<j], radix: 16) ?? 0)
            i = j
        }
        return out
    }

    @Test func theLegacyProviderIsThere() {
        // Debian's libssl3 ships ossl-modules/legacy.so; without it the derivation says so (featureNotSupported).
        #expect(BlowfishCBC.available)
    }

    @Test func knownAnswers() throws {
        // Eric Young's CBC vector: key 0123456789ABCDEFF0E1D2C3B4A59687, IV FEDCBA9876543210, the 29-byte text
        // "7654321 Now is the time for " with a zero byte, zero-filled to 32 bytes.
        let key = Self.hex("0123456789ABCDEFF0E1D2C3B4A59687")
        let iv = Self.hex("FEDCBA9876543210")
        let plain = Array("7654321 Now is the time for ".utf8) + [0, 0, 0, 0]
        let cipher = try #require(BlowfishCBC.run(encrypt: true, key: key, iv: iv, pad: false, plain))
        #expect(cipher == Self.hex("6B77B4D63006DEE605B156E27403979358DEB9E7154616D959F1652BD5FF92CC"))
        #expect(BlowfishCBC.run(encrypt: false, key: key, iv: iv, pad: false, cipher) == plain)
        // ECB vectors through CBC with a zero IV (one block): key, plaintext, ciphertext.
        for (k, p, c) in [
            ("0000000000000000", "0000000000000000", "4EF997456198DD78"),
            ("FFFFFFFFFFFFFFFF", "FFFFFFFFFFFFFFFF", "51866FD5B85ECB8A"),
            ("0123456789ABCDEF", "1111111111111111", "61F9C3802281B096"),
        ] {
            #expect(
                BlowfishCBC.run(
                    encrypt: true, key: Self.hex(k), iv: [UInt8](repeating: 0, count: 8), pad: false, Self.hex(p))
                    == Self.hex(c))
        }
        let message = Array("not a multiple of eight".utf8)
        let padded = try #require(
            BlowfishCBC.run(encrypt: true, key: Array("a 16-byte secret".utf8), iv: Array(iv), pad: true, message))
        #expect(padded.count == 24)
        #expect(
            BlowfishCBC.run(encrypt: false, key: Array("a 16-byte secret".utf8), iv: iv, pad: true, padded) == message)
    }

    @Test func unusableParametersAreRefused() {
        let iv = [UInt8](repeating: 0, count: 8)
        #expect(BlowfishCBC.run(encrypt: true, key: [1, 2, 3], iv: iv, pad: true, [1]) == nil, "key under 4 bytes")
        #expect(
            BlowfishCBC.run(encrypt: true, key: [UInt8](repeating: 1, count: 57), iv: iv, pad: true, [1]) == nil,
            "key over 56 bytes")
        #expect(BlowfishCBC.run(encrypt: true, key: [1, 2, 3, 4], iv: [0], pad: true, [1]) == nil, "IV not 8 bytes")
        #expect(
            BlowfishCBC.run(encrypt: true, key: [1, 2, 3, 4], iv: iv, pad: false, [1, 2, 3]) == nil,
            "unpadded, not whole blocks")
    }
}
