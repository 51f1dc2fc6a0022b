import Testing

@testable import Engine

@Suite struct BlowfishTests {
    @Test func piWordsAreTheKnownOnes() {
        let w = Blowfish.piWords
        #expect(w.count == 18 + 1024)
        #expect(w[0] == 0x243F_6A88 && w[1] == 0x85A3_08D3 && w[17] == 0x8979_FB1B)
        #expect(w[18] == 0xD131_0BA6)  // S-box 1, first word
        #expect(w[18 + 1023] == 0x3AC3_72E6)  // S-box 4, last word
    }

    @Test func knownAnswers() throws {
        // Eric Young's Blowfish test vectors (ECB): key, plaintext, ciphertext.
        let vectors: [(UInt64, UInt64, UInt64)] = [
            (0x0000_0000_0000_0000, 0x0000_0000_0000_0000, 0x4EF9_9745_6198_DD78),
            (0xFFFF_FFFF_FFFF_FFFF, 0xFFFF_FFFF_FFFF_FFFF, 0x5186_6FD5_B85E_CB8A),
            (0x0123_4567_89AB_CDEF, 0x1111_1111_1111_1111, 0x61F9_C380_2281_B096),
        ]
        for (k, p, c) in vectors {
            let key = (0..<8).map { UInt8(truncatingIfNeeded: k >> (56 - 8 * $0)) }
            let bf = try Blowfish(key: key)
            let (l, r) = bf.encryptBlock(UInt32(p >> 32), UInt32(truncatingIfNeeded: p))
            #expect(UInt64(l) << 32 | UInt64(r) == c)
            let (dl, dr) = bf.decryptBlock(l, r)
            #expect(UInt64(dl) << 32 | UInt64(dr) == p)
        }
        let bf = try Blowfish(key: Array("a 16-byte secret".utf8))
        let iv: [UInt8] = [1, 2, 3, 4, 5, 6, 7, 8]
        let message = Array("not a multiple of eight".utf8)
        #expect(try bf.decryptCBC(try bf.encryptCBC(message, iv: iv, pad: true), iv: iv, pad: true) == message)
    }
}
