import Foundation

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
