import Foundation

/// The byte framing of a backup archive (see `BackupArchive` for the layout), pure: bytes in, values out, no
/// cryptography and no I/O, so that `Tests/Fuzz/BackupFuzz.swift` can drive it with libFuzzer. `BackupArchive` does
/// the decryption, the digests and the signature around it.
public enum BackupFraming {
    public static let magic = Array("GATEHOUSE-BACKUP-1\n".utf8)
    /// Plaintext bytes per chunk.
    public static let chunkSize = 1 << 20
    /// A chunk's nonce and tag around its ciphertext.
    public static let sealOverhead = 28
    public static let maxHeader = 64 << 10
    public static let maxManifest = 64 << 20
    public static let maxName = 1024
    public static let more = UInt8(ascii: "C")
    public static let final = UInt8(ascii: "F")

    /// What is wrong with the bytes, in words for the operator.
    public struct Malformed: Error, Sendable, Equatable {
        public var description: String
        public init(_ d: String) { description = d }
    }

    static func bigEndian(_ bytes: some Collection<UInt8>) -> Int { bytes.reduce(0) { $0 << 8 | Int($1) } }

    /// The header's length from the archive's first `magic.count + 4` bytes (fewer if the file is shorter).
    public static func headerLength(_ prefix: [UInt8]) throws(Malformed) -> Int {
        guard prefix.prefix(magic.count).elementsEqual(magic.prefix(prefix.count)) else {
            throw Malformed("not a Gatehouse backup")
        }
        guard prefix.count == magic.count + 4 else { throw Malformed("the backup is truncated") }
        let length = bigEndian(prefix[magic.count...])
        guard length > 0, length <= maxHeader else { throw Malformed("the backup's header is malformed") }
        return length
    }

    /// A chunk's 5-byte head (flag, u32 sealed length): whether it is the last, and how many sealed bytes follow.
    public static func chunkHead(_ head: [UInt8], index: UInt64) throws(Malformed) -> (final: Bool, length: Int) {
        guard head.count == 5, head[0] == more || head[0] == final else {
            throw Malformed("the backup is damaged at chunk \(index)")
        }
        let length = bigEndian(head[1...])
        guard length >= sealOverhead, length <= chunkSize + sealOverhead else {
            throw Malformed("the backup is damaged at chunk \(index)")
        }
        return (head[0] == final, length)
    }

    /// A relative path without `..`, empty or absolute parts.
    public static func safe(_ name: String) -> Bool {
        !name.hasPrefix("/")
            && !name.split(separator: "/", omittingEmptySubsequences: false).contains {
                $0.isEmpty || $0 == "." || $0 == ".."
            }
    }

    /// Parses the decrypted entry stream, whatever the chunk boundaries: a state machine fed bytes that returns what
    /// it found.
    ///
    ///     'F' | u16 name length | name | u64 size | bytes        a file
    ///     'M' | u32 length | manifest (JSON)                       the last entry
    public struct EntryParser: Sendable {
        public enum Event: Sendable, Equatable {
            /// A file starts (its bytes follow as `.bytes`, the last one marked; a file of 0 bytes has one empty).
            case file(name: String, size: Int64)
            case bytes(Data, last: Bool)
            /// The manifest's JSON; nothing may follow it.
            case manifest(Data)
        }

        private var buffer: [UInt8] = []
        /// Bytes of the current file still to come (0: between entries).
        private var fileLeft: Int64 = 0
        /// Whether the manifest has been read.
        public private(set) var finished = false

        public init() {}

        public mutating func feed(_ data: Data) throws(Malformed) -> [Event] {
            buffer.append(contentsOf: data)
            var events: [Event] = []
            var at = 0
            parsing: while at < buffer.count {
                if finished { throw Malformed("the backup has data after its manifest") }
                if fileLeft > 0 {
                    let n = Int(min(Int64(buffer.count - at), fileLeft))
                    fileLeft -= Int64(n)
                    events.append(.bytes(Data(buffer[at..<(at + n)]), last: fileLeft == 0))
                    at += n
                    continue
                }
                let available = buffer.count - at
                switch buffer[at] {
                case UInt8(ascii: "F"):
                    guard available >= 3 else { break parsing }
                    let nameLength = Int(buffer[at + 1]) << 8 | Int(buffer[at + 2])
                    guard nameLength > 0, nameLength <= BackupFraming.maxName else {
                        throw Malformed("the backup has a malformed entry")
                    }
                    guard available >= 3 + nameLength + 8 else { break parsing }
                    let name = String(decoding: buffer[(at + 3)..<(at + 3 + nameLength)], as: UTF8.self)
                    guard BackupFraming.safe(name) else { throw Malformed("the backup names an unsafe path: \(name)") }
                    let sizeBytes = buffer[(at + 3 + nameLength)..<(at + 3 + nameLength + 8)]
                    let size = sizeBytes.reduce(Int64(0)) { $0 << 8 | Int64($1) }
                    guard size >= 0 else { throw Malformed("the backup has a malformed entry") }
                    at += 3 + nameLength + 8
                    events.append(.file(name: name, size: size))
                    if size == 0 { events.append(.bytes(Data(), last: true)) } else { fileLeft = size }
                case UInt8(ascii: "M"):
                    guard available >= 5 else { break parsing }
                    let length = BackupFraming.bigEndian(buffer[(at + 1)..<(at + 5)])
                    guard length <= BackupFraming.maxManifest else {
                        throw Malformed("the backup's manifest is too large")
                    }
                    guard available >= 5 + length else { break parsing }
                    events.append(.manifest(Data(buffer[(at + 5)..<(at + 5 + length)])))
                    at += 5 + length
                    finished = true
                default:
                    throw Malformed("the backup has a malformed entry")
                }
            }
            buffer.removeFirst(at)
            return events
        }
    }
}
