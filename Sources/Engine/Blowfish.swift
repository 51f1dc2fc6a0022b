import Foundation

/// Blowfish (Schneier, 1993), only because KMIP clients still derive keys with it (PyKMIP's ENCRYPT derivation test
/// uses Blowfish-CBC). Not offered for general encryption. The initial P-array and S-boxes are the hexadecimal digits of
/// π's fractional part; they are computed here (Machin's formula in fixed point) rather than pasted as a table.
struct Blowfish {
    private var p: [UInt32]
    private var s: [[UInt32]]

    /// π's fractional part as 32-bit words (18 for P, 4 × 256 for S), computed once.
    static let piWords: [UInt32] = PiDigits.fractionWords(18 + 4 * 256)

    init(key: [UInt8]) throws {
        guard (4...56).contains(key.count) else { throw BlowfishError.keyLength }
        let words = Self.piWords
        p = Array(words[0..<18])
        s = (0..<4).map { i in Array(words[(18 + 256 * i)..<(18 + 256 * (i + 1))]) }
        var k = 0
        for i in 0..<18 {
            var w: UInt32 = 0
            for _ in 0..<4 {
                w = (w << 8) | UInt32(key[k])
                k = (k + 1) % key.count
            }
            p[i] ^= w
        }
        var l: UInt32 = 0
        var r: UInt32 = 0
        for i in stride(from: 0, to: 18, by: 2) {
            (l, r) = encryptBlock(l, r)
            p[i] = l
            p[i + 1] = r
        }
        for box in 0..<4 {
            for i in stride(from: 0, to: 256, by: 2) {
                (l, r) = encryptBlock(l, r)
                s[box][i] = l
                s[box][i + 1] = r
            }
        }
    }

    enum BlowfishError: Error { case keyLength, blockLength, padding }

    @inline(__always) private func f(_ x: UInt32) -> UInt32 {
        ((s[0][Int(x >> 24)] &+ s[1][Int((x >> 16) & 0xff)]) ^ s[2][Int((x >> 8) & 0xff)]) &+ s[3][Int(x & 0xff)]
    }

    func encryptBlock(_ left: UInt32, _ right: UInt32) -> (UInt32, UInt32) {
        var l = left
        var r = right
        for i in 0..<16 {
            l ^= p[i]
            r ^= f(l)
            swap(&l, &r)
        }
        swap(&l, &r)
        r ^= p[16]
        l ^= p[17]
        return (l, r)
    }

    func decryptBlock(_ left: UInt32, _ right: UInt32) -> (UInt32, UInt32) {
        var l = left
        var r = right
        for i in stride(from: 17, to: 1, by: -1) {
            l ^= p[i]
            r ^= f(l)
            swap(&l, &r)
        }
        swap(&l, &r)
        r ^= p[1]
        l ^= p[0]
        return (l, r)
    }

    static func words(_ b: ArraySlice<UInt8>) -> (UInt32, UInt32) {
        let a = Array(b)
        let l = UInt32(a[0]) << 24 | UInt32(a[1]) << 16 | UInt32(a[2]) << 8 | UInt32(a[3])
        let r = UInt32(a[4]) << 24 | UInt32(a[5]) << 16 | UInt32(a[6]) << 8 | UInt32(a[7])
        return (l, r)
    }

    static func bytes(_ l: UInt32, _ r: UInt32) -> [UInt8] {
        [UInt8(l >> 24), UInt8((l >> 16) & 0xff), UInt8((l >> 8) & 0xff), UInt8(l & 0xff),
         UInt8(r >> 24), UInt8((r >> 16) & 0xff), UInt8((r >> 8) & 0xff), UInt8(r & 0xff)]
    }

    /// CBC encryption with optional PKCS#5 padding.
    func encryptCBC(_ data: [UInt8], iv: [UInt8], pad: Bool) throws -> [UInt8] {
        guard iv.count == 8 else { throw BlowfishError.blockLength }
        var input = data
        if pad {
            let n = 8 - input.count % 8
            input += [UInt8](repeating: UInt8(n), count: n)
        }
        guard input.count % 8 == 0 else { throw BlowfishError.blockLength }
        var previous = iv
        var out: [UInt8] = []
        out.reserveCapacity(input.count)
        for start in stride(from: 0, to: input.count, by: 8) {
            let block = zip(input[start..<(start + 8)], previous).map { $0 ^ $1 }
            let (l, r) = Self.words(block[...])
            let (a, b) = encryptBlock(l, r)
            previous = Self.bytes(a, b)
            out += previous
        }
        return out
    }

    /// CBC decryption, removing PKCS#5 padding when asked.
    func decryptCBC(_ data: [UInt8], iv: [UInt8], pad: Bool) throws -> [UInt8] {
        guard iv.count == 8, data.count % 8 == 0, !data.isEmpty else { throw BlowfishError.blockLength }
        var previous = iv
        var out: [UInt8] = []
        for start in stride(from: 0, to: data.count, by: 8) {
            let block = Array(data[start..<(start + 8)])
            let (l, r) = Self.words(block[...])
            let (a, b) = decryptBlock(l, r)
            out += zip(Self.bytes(a, b), previous).map { $0 ^ $1 }
            previous = block
        }
        if pad {
            guard let n = out.last, (1...8).contains(n), out.suffix(Int(n)).allSatisfy({ $0 == n }) else {
                throw BlowfishError.padding
            }
            out.removeLast(Int(n))
        }
        return out
    }
}

/// π in binary fixed point, from Machin's formula π = 16·atan(1/5) − 4·atan(1/239).
enum PiDigits {
    /// The first `count` 32-bit words of π's fractional part.
    static func fractionWords(_ count: Int) -> [UInt32] {
        let limbs = count + 3  // guard limbs absorb the truncation error of the series
        let a = arctanInverse(5, limbs: limbs)
        let b = arctanInverse(239, limbs: limbs)
        let pi = subtract(multiply(a, 16), multiply(b, 4))
        return Array(pi[1...count])
    }

    /// A fixed-point number: limb 0 is the integer part, limbs 1… the fraction, most significant first.
    static func divide(_ x: [UInt32], _ d: UInt32) -> [UInt32] {
        var out = [UInt32](repeating: 0, count: x.count)
        var remainder: UInt64 = 0
        for i in 0..<x.count {
            let cur = (remainder << 32) | UInt64(x[i])
            out[i] = UInt32(cur / UInt64(d))
            remainder = cur % UInt64(d)
        }
        return out
    }

    static func multiply(_ x: [UInt32], _ m: UInt32) -> [UInt32] {
        var out = [UInt32](repeating: 0, count: x.count)
        var carry: UInt64 = 0
        for i in stride(from: x.count - 1, through: 0, by: -1) {
            let cur = UInt64(x[i]) * UInt64(m) + carry
            out[i] = UInt32(truncatingIfNeeded: cur)
            carry = cur >> 32
        }
        return out
    }

    static func add(_ x: [UInt32], _ y: [UInt32]) -> [UInt32] {
        var out = [UInt32](repeating: 0, count: x.count)
        var carry: UInt64 = 0
        for i in stride(from: x.count - 1, through: 0, by: -1) {
            let cur = UInt64(x[i]) + UInt64(y[i]) + carry
            out[i] = UInt32(truncatingIfNeeded: cur)
            carry = cur >> 32
        }
        return out
    }

    static func subtract(_ x: [UInt32], _ y: [UInt32]) -> [UInt32] {
        var out = [UInt32](repeating: 0, count: x.count)
        var borrow: Int64 = 0
        for i in stride(from: x.count - 1, through: 0, by: -1) {
            var cur = Int64(x[i]) - Int64(y[i]) - borrow
            borrow = 0
            if cur < 0 {
                cur += 1 << 32
                borrow = 1
            }
            out[i] = UInt32(cur)
        }
        return out
    }

    static func isZero(_ x: [UInt32]) -> Bool { x.allSatisfy { $0 == 0 } }

    /// atan(1/x) = Σ (−1)^k / ((2k+1)·x^(2k+1)).
    static func arctanInverse(_ x: UInt32, limbs: Int) -> [UInt32] {
        var one = [UInt32](repeating: 0, count: limbs + 1)
        one[0] = 1
        var power = divide(one, x)  // 1/x^(2k+1)
        var sum = power
        let x2 = x * x
        var k: UInt32 = 1
        while true {
            power = divide(power, x2)
            if isZero(power) { break }
            let term = divide(power, 2 * k + 1)
            sum = k % 2 == 1 ? subtract(sum, term) : add(sum, term)
            k += 1
        }
        return sum
    }
}
