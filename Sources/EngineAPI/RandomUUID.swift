import Foundation
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// Random (version 4) UUIDs and random bytes with one `getrandom` call each. Foundation's `UUID()` on Linux opens,
/// reads and closes `/dev/urandom` for every UUID: three system calls and a file descriptor per request ID, on every
/// KMIP, ACME, EST and admin request.
public enum RandomUUID {
    /// A new version 4 UUID.
    public static func make() -> UUID {
        var raw: uuid_t = (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        withUnsafeMutableBytes(of: &raw) { RandomFill.fill($0) }
        raw.6 = (raw.6 & 0x0F) | 0x40  // version 4
        raw.8 = (raw.8 & 0x3F) | 0x80  // RFC 9562 variant
        return UUID(uuid: raw)
    }

    /// `make().uuidString`: upper-case hex with dashes, like Foundation's `UUID().uuidString`.
    public static func string() -> String { make().uuidString }

    /// Lower-case, the form record ids use.
    public static func lowercased() -> String { make().uuidString.lowercased() }
}

/// Fills buffers from the kernel's CSPRNG (glibc's `arc4random_buf`, which is `getrandom`; it never fails).
public enum RandomFill {
    public static func fill(_ buffer: UnsafeMutableRawBufferPointer) {
        guard let base = buffer.baseAddress, buffer.count > 0 else { return }
        #if canImport(Glibc)
            arc4random_buf(base, buffer.count)
        #else
            var rng = SystemRandomNumberGenerator()
            for i in 0..<buffer.count {
                base.storeBytes(of: UInt8.random(in: 0...255, using: &rng), toByteOffset: i, as: UInt8.self)
            }
        #endif
    }

    /// `count` random bytes.
    public static func bytes(_ count: Int) -> [UInt8] {
        [UInt8](unsafeUninitializedCapacity: max(0, count)) { buffer, initialized in
            fill(UnsafeMutableRawBufferPointer(buffer))
            initialized = max(0, count)
        }
    }
}

/// Record ids: version 7 UUIDs (RFC 9562), lower-case. The first 48 bits are the Unix time in milliseconds and the
/// next 12 a counter within the millisecond, so the store's id order (what every list pages by) is creation order on
/// one node, and creation order to the millisecond across nodes; 62 bits stay random. Ids made before this scheme are
/// version 4 and sort among them at random.
public enum RecordID {
    private static let last = Mutex<(millis: UInt64, counter: UInt16)>((0, 0))

    /// A new record id.
    public static func make(now: Date = Date()) -> String {
        let wall = UInt64(max(0, now.timeIntervalSince1970 * 1000))
        // Monotonic within this process: the same or an earlier millisecond continues the last one's counter.
        let (millis, counter) = last.withLock { state -> (UInt64, UInt16) in
            if wall > state.millis {
                state = (wall, 0)
            } else if state.counter < 0x0FFF {
                state.counter += 1
            } else {
                state = (state.millis + 1, 0)
            }
            return state
        }
        var raw = [UInt8](repeating: 0, count: 16)
        raw.withUnsafeMutableBytes { RandomFill.fill($0) }
        for i in 0..<6 { raw[i] = UInt8(truncatingIfNeeded: millis >> (8 * (5 - i))) }
        raw[6] = 0x70 | UInt8(truncatingIfNeeded: counter >> 8)  // version 7, counter high bits
        raw[7] = UInt8(truncatingIfNeeded: counter)
        raw[8] = (raw[8] & 0x3F) | 0x80  // RFC 9562 variant
        let digits = Array("0123456789abcdef".utf8)
        var text: [UInt8] = []
        text.reserveCapacity(36)
        for (i, byte) in raw.enumerated() {
            if [4, 6, 8, 10].contains(i) { text.append(UInt8(ascii: "-")) }
            text.append(digits[Int(byte >> 4)])
            text.append(digits[Int(byte & 0x0F)])
        }
        return String(decoding: text, as: UTF8.self)
    }
}
