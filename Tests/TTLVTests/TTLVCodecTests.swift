import NIOCore
import NIOTestUtils
import Testing

@testable import TTLV

func hex(_ s: String) -> [UInt8] {
    let digits = s.filter { $0.isHexDigit }
    var out: [UInt8] = []
    var i = digits.startIndex
    while i < digits.endIndex {
        let j = digits.index(i, offsetBy: 2)
        out.append(UInt8(digits[i..<j], radix: 16) ?? 0)
        i = j
    }
    return out
}

/// The encoding examples of the KMIP specification, §9.1.2 (KMIP 1.0–1.4 and 2.x share them).
/// Origin: OASIS KMIP Specification v1.4, section 9.1.2 "Examples"; the Date-Time Extended vector follows the
/// same rules from KMIP 2.0 §9.1.1.4 (value computed, not quoted).
let specVectors: [(String, TTLVItem, String)] = [
    ("Integer 8", TTLVItem(tag: 0x420020, .integer(8)), "42 00 20 | 02 | 00 00 00 04 | 00 00 00 08 00 00 00 00"),
    (
        "Long Integer 123456789000000000", TTLVItem(tag: 0x420020, .longInteger(123_456_789_000_000_000)),
        "42 00 20 | 03 | 00 00 00 08 | 01 B6 9B 4B A5 74 92 00"
    ),
    (
        "Big Integer 1234567890000000000000000000",
        TTLVItem(tag: 0x420020, .bigInteger(hex("00 00 00 00 03 FD 35 EB 6B C2 DF 46 18 08 00 00"))),
        "42 00 20 | 04 | 00 00 00 10 | 00 00 00 00 03 FD 35 EB 6B C2 DF 46 18 08 00 00"
    ),
    (
        "Enumeration 255", TTLVItem(tag: 0x420020, .enumeration(255)),
        "42 00 20 | 05 | 00 00 00 04 | 00 00 00 FF 00 00 00 00"
    ),
    ("Boolean true", TTLVItem(tag: 0x420020, .boolean(true)), "42 00 20 | 06 | 00 00 00 08 | 00 00 00 00 00 00 00 01"),
    (
        "Text String Hello World", TTLVItem(tag: 0x420020, .textString("Hello World")),
        "42 00 20 | 07 | 00 00 00 0B | 48 65 6C 6C 6F 20 57 6F 72 6C 64 00 00 00 00 00"
    ),
    (
        "Byte String 01 02 03", TTLVItem(tag: 0x420020, .byteString([1, 2, 3])),
        "42 00 20 | 08 | 00 00 00 03 | 01 02 03 00 00 00 00 00"
    ),
    (
        "Date-Time 2008-03-14 11:56:40 GMT", TTLVItem(tag: 0x420020, .dateTime(0x47DA_67F8)),
        "42 00 20 | 09 | 00 00 00 08 | 00 00 00 00 47 DA 67 F8"
    ),
    (
        "Interval 10 days", TTLVItem(tag: 0x420020, .interval(864_000)),
        "42 00 20 | 0A | 00 00 00 04 | 00 0D 2F 00 00 00 00 00"
    ),
    (
        "Structure(Enumeration 254, Integer 255)",
        TTLVItem(
            tag: 0x420020,
            .structure([TTLVItem(tag: 0x420004, .enumeration(254)), TTLVItem(tag: 0x420005, .integer(255))])),
        "42 00 20 | 01 | 00 00 00 20 | 42 00 04 | 05 | 00 00 00 04 | 00 00 00 FE 00 00 00 00 | 42 00 05 | 02 | 00 00 00 04 | 00 00 00 FF 00 00 00 00"
    ),
    (
        "Date-Time Extended", TTLVItem(tag: 0x420020, .dateTimeExtended(1_205_495_800_000_000)),
        "42 00 20 | 0B | 00 00 00 08 | 00 04 48 64 5C EF EE 00"
    ),  // 1205495800000000 µs = 0x448645CEFEE00
]

@Suite struct TTLVCodecTests {
    @Test(arguments: specVectors.indices)
    func specVector(_ i: Int) throws {
        let (name, item, wire) = specVectors[i]
        #expect(TTLVEncoder.encode(item) == hex(wire), "\(name) encodes as in the spec")
        #expect(try TTLVDecoder().decode(hex(wire)) == item, "\(name) decodes as in the spec")
    }

    @Test func negativeNumbersAndBigIntegerSignExtension() throws {
        for item in [
            TTLVItem(tag: 0x420001, .integer(-1)), TTLVItem(tag: 0x420001, .longInteger(.min)),
            TTLVItem(tag: 0x420001, .dateTime(-86400)),
        ] {
            #expect(try TTLVDecoder().decode(TTLVEncoder.encode(item)) == item)
        }
        let negative = TTLVEncoder.encode(TTLVItem(tag: 0x420001, .bigInteger([0x80, 0x01])))
        #expect(Array(negative[8...]) == [0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x80, 0x01])
    }

    @Test func roundTripsOfRandomTrees() throws {
        var rng = SystemRandomNumberGenerator()
        func random(_ depth: Int) -> TTLVItem {
            let tag = UInt32.random(in: 0x420001...0x4200FF, using: &rng)
            switch depth > 4 ? Int.random(in: 1...10, using: &rng) : Int.random(in: 0...10, using: &rng) {
            case 0:
                return TTLVItem(
                    tag: tag, .structure((0..<Int.random(in: 0...5, using: &rng)).map { _ in random(depth + 1) }))
            case 1: return TTLVItem(tag: tag, .integer(Int32.random(in: .min ... .max, using: &rng)))
            case 2: return TTLVItem(tag: tag, .longInteger(Int64.random(in: .min ... .max, using: &rng)))
            case 3:
                return TTLVItem(
                    tag: tag,
                    .bigInteger(
                        (0..<(8 * Int.random(in: 1...4, using: &rng))).map { _ in UInt8.random(in: 0...255, using: &rng)
                        }))
            case 4: return TTLVItem(tag: tag, .enumeration(UInt32.random(in: 0 ... .max, using: &rng)))
            case 5: return TTLVItem(tag: tag, .boolean(Bool.random(using: &rng)))
            case 6:
                return TTLVItem(
                    tag: tag,
                    .textString(
                        String(
                            (0..<Int.random(in: 0...40, using: &rng)).map { _ in "aé✓z".randomElement(using: &rng)! })))
            case 7:
                return TTLVItem(
                    tag: tag,
                    .byteString(
                        (0..<Int.random(in: 0...40, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) }))
            case 8: return TTLVItem(tag: tag, .dateTime(Int64.random(in: 0...4_000_000_000, using: &rng)))
            case 9: return TTLVItem(tag: tag, .interval(UInt32.random(in: 0 ... .max, using: &rng)))
            default: return TTLVItem(tag: tag, .dateTimeExtended(Int64.random(in: 0 ... .max, using: &rng)))
            }
        }
        for _ in 0..<300 {
            let item = random(0)
            let bytes = TTLVEncoder.encode(item)
            #expect(bytes.count % 8 == 0)
            #expect(try TTLVDecoder().decode(bytes) == item)
        }
    }

    func error(_ bytes: [UInt8], _ decoder: TTLVDecoder = TTLVDecoder()) -> TTLVError.Kind? {
        do {
            _ = try decoder.decode(bytes)
            return nil
        } catch let e as TTLVError {
            return e.kind
        } catch {
            return nil
        }
    }

    @Test func strictValidation() {
        #expect(
            error(hex("42 00 20 02 00 00 00 08 00 00 00 08 00 00 00 00")) == .invalidLength, "Integer must be 4 bytes")
        #expect(error(hex("42 00 20 02 00 00 00 04 00 00 00 08 00 00 00 01")) == .nonZeroPadding)
        #expect(error(hex("42 00 20 07 00 00 00 03 41 42 43 00 00 00 00 09")) == .nonZeroPadding)
        #expect(error(hex("42 00 20 06 00 00 00 08 00 00 00 00 00 00 00 02")) == .invalidBoolean)
        #expect(error(hex("42 00 20 0C 00 00 00 04 00 00 00 08 00 00 00 00")) == .unknownType)
        #expect(error(hex("42 00 20 07 00 00 00 02 C3 28 00 00 00 00 00 00")) == .invalidUTF8)
        #expect(
            error(hex("42 00 20 04 00 00 00 03 01 02 03 00 00 00 00 00")) == .invalidLength,
            "Big Integer is a multiple of 8")
        #expect(error(hex("42 00 20 02 00 00 00 04 00 00 00")) == .truncated)
        #expect(error(hex("42 00 20 01 00 01 00 00")) == .truncated, "declared length beyond the bytes")
        #expect(error(hex("42 00 20 02 00 00 00 04 00 00 00 08 00 00 00 00 00")) == .trailingBytes)
        #expect(error(hex("99 00 20 02 00 00 00 04 00 00 00 08 00 00 00 00")) == .invalidTag)
        // A structure whose child overruns it.
        #expect(error(hex("42 00 20 01 00 00 00 08 42 00 04 05 00 00 00 04 00 00 00 FE 00 00 00 00")) == .truncated)
        #expect(error(hex("42 00 20 01 00 00 00 04 42 00 04 05")) == .invalidLength)
    }

    @Test func depthAndSizeLimits() {
        var item = TTLVItem(tag: 0x420001, .integer(1))
        for _ in 0..<40 { item = TTLVItem(tag: 0x420001, .structure([item])) }
        let bytes = TTLVEncoder.encode(item)
        #expect(error(bytes, TTLVDecoder(maxDepth: 32)) == .tooDeep)
        #expect(error(bytes, TTLVDecoder(maxDepth: 64)) == nil)
        #expect(error(bytes, TTLVDecoder(maxDepth: 64, maxMessageSize: 100)) == .tooLarge)
    }

    /// Mutated and random inputs: each is either refused with a TTLVError or decodes to a value that re-encodes and
    /// decodes to itself; both outcomes occur.
    @Test func garbageNeverCrashes() {
        var rng = SystemRandomNumberGenerator()
        let seed = TTLVEncoder.encode(specVectors[9].1)
        var accepted = 0
        var refused = 0
        func check(_ bytes: [UInt8]) {
            do {
                let item = try TTLVDecoder().decode(bytes)
                accepted += 1
                #expect((try? TTLVDecoder().decode(TTLVEncoder.encode(item))) == item, "\(bytes)")
            } catch is TTLVError {
                refused += 1
            } catch {
                Issue.record("not a TTLVError: \(error)")
            }
        }
        for _ in 0..<20_000 {
            var bytes = seed
            for _ in 0..<Int.random(in: 1...4, using: &rng) {
                let i = Int.random(in: 0..<bytes.count, using: &rng)
                bytes[i] = UInt8.random(in: 0...255, using: &rng)
            }
            if Bool.random(using: &rng) { bytes = Array(bytes.prefix(Int.random(in: 0...bytes.count, using: &rng))) }
            check(bytes)
        }
        for _ in 0..<5_000 {
            check((0..<Int.random(in: 0...64, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) })
        }
        #expect(accepted > 0 && refused > 0, "accepted \(accepted), refused \(refused)")
    }

    @Test func framingByteAtATimeAndSplitWrites() throws {
        let a = TTLVEncoder.encode(specVectors[9].1)
        let b = TTLVEncoder.encode(specVectors[5].1)
        var first = ByteBuffer(bytes: a)
        var second = ByteBuffer(bytes: b)
        let expected = [first.readSlice(length: a.count)!, second.readSlice(length: b.count)!]
        try ByteToMessageDecoderVerifier.verifyDecoder(
            inputOutputPairs: [(ByteBuffer(bytes: a + b), expected)],
            decoderFactory: { TTLVFrameDecoder(maxMessageSize: 4096) })
    }

    @Test func framingRefusesOversizeBeforeBuffering() throws {
        var decoder = TTLVFrameDecoder(maxMessageSize: 1024)
        var buffer = ByteBuffer(bytes: hex("42 00 78 01 7F FF FF F8"))
        #expect(throws: TTLVFrameDecoder.FrameTooLarge.self) { _ = try decoder.decode(buffer: &buffer) }
    }
}
