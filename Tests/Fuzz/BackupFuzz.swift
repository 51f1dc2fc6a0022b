// libFuzzer target for the backup archive's framing (Sources/Daemon/Backup/BackupFraming.swift): the archive prefix,
// chunk heads, and the decrypted entry stream that `gatehouse restore` turns into files. Oracles, besides no crash,
// hang or out-of-bounds read (ASan):
// - the entry stream parses to the same files and manifest, or fails the same way, whether it arrives in one piece or
//   in pieces of any size (chunk boundaries must not matter);
// - every file's bytes add up to its declared size, every name is a safe relative path, and nothing follows the
//   manifest;
// - a stream written from the input's bytes (names, sizes, contents) parses back to exactly what was written.
// Built by Tests/Fuzz/run-fuzz.sh from BackupFraming.swift alone (it has no cryptography or I/O).
import Foundation

struct Parsed: Equatable {
    var files: [(name: String, bytes: [UInt8], complete: Bool)] = []
    var manifest: Data?

    static func == (a: Parsed, b: Parsed) -> Bool {
        a.manifest == b.manifest && a.files.count == b.files.count
            && zip(a.files, b.files).allSatisfy {
                $0.name == $1.name && $0.bytes == $1.bytes && $0.complete == $1.complete
            }
    }
}

/// Feeds `stream` in pieces of `piece` bytes; returns what was found, or nil if the parser refused the stream.
func parse(_ stream: [UInt8], piece: Int) -> Parsed? {
    var parser = BackupFraming.EntryParser()
    var parsed = Parsed()
    var declared: Int64 = 0
    var offset = 0
    while offset < stream.count {
        let end = min(stream.count, offset + piece)
        let events: [BackupFraming.EntryParser.Event]
        do {
            events = try parser.feed(Data(stream[offset..<end]))
        } catch {
            return nil
        }
        for event in events {
            if parsed.manifest != nil { fatalError("an event after the manifest") }
            switch event {
            case .file(let name, let size):
                if let last = parsed.files.last, !last.complete { fatalError("a file started inside another") }
                if !BackupFraming.safe(name) || name.isEmpty { fatalError("an unsafe name was accepted: \(name)") }
                if size < 0 { fatalError("a negative size was accepted") }
                parsed.files.append((name, [], false))
                declared = size
            case .bytes(let bytes, let last):
                guard var file = parsed.files.popLast(), !file.complete else { fatalError("bytes outside a file") }
                file.bytes += bytes
                if Int64(file.bytes.count) > declared { fatalError("more bytes than the file declared") }
                if last != (Int64(file.bytes.count) == declared) { fatalError("`last` does not match the size") }
                file.complete = last
                parsed.files.append(file)
            case .manifest(let json):
                parsed.manifest = json
            }
        }
        offset = end
    }
    if parser.finished != (parsed.manifest != nil) { fatalError("finished does not match the manifest") }
    return parsed
}

/// Writes entries the way `BackupArchive.Writer` does.
func write(_ files: [(String, [UInt8])], manifest: [UInt8]) -> [UInt8] {
    var out: [UInt8] = []
    for (name, bytes) in files {
        let nameBytes = Array(name.utf8)
        out.append(UInt8(ascii: "F"))
        out += [UInt8(nameBytes.count >> 8), UInt8(nameBytes.count & 0xff)] + nameBytes
        out += (0..<8).reversed().map { UInt8(truncatingIfNeeded: UInt64(bytes.count) >> (8 * $0)) }
        out += bytes
    }
    out.append(UInt8(ascii: "M"))
    out += (0..<4).reversed().map { UInt8(truncatingIfNeeded: manifest.count >> (8 * $0)) }
    return out + manifest
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    guard let control = bytes.first else { return 0 }
    let body = Array(bytes.dropFirst())

    // The archive's prefix and a chunk head: refused or in range, never a crash.
    let prefixLength = BackupFraming.magic.count + 4
    if let length = try? BackupFraming.headerLength(BackupFraming.magic + Array(body.prefix(4)).padded(to: 4)) {
        if length <= 0 || length > BackupFraming.maxHeader { fatalError("header length out of range") }
    }
    _ = try? BackupFraming.headerLength(Array(body.prefix(prefixLength)))
    if let (_, length) = try? BackupFraming.chunkHead(Array(body.prefix(5)), index: 0) {
        if length < BackupFraming.sealOverhead || length > BackupFraming.chunkSize + BackupFraming.sealOverhead {
            fatalError("chunk length out of range")
        }
    }

    // The entry stream, whole and in pieces: the same outcome.
    let whole = parse(body, piece: max(1, body.count))
    let pieces = parse(body, piece: Int(control % 61) + 1)
    if (whole == nil) != (pieces == nil) { fatalError("the outcome depends on how the stream was split") }
    if let whole, let pieces, whole != pieces { fatalError("the files depend on how the stream was split") }

    // A well-formed stream made from the input: parses back to what was written.
    var files: [(String, [UInt8])] = []
    var rest = body[...]
    while files.count < 4, let n = rest.first {
        rest = rest.dropFirst()
        let length = Int(n % 40)
        let content = Array(rest.prefix(length))
        rest = rest.dropFirst(content.count)
        files.append(("dir\(files.count)/file-\(n).bin", content))
    }
    let manifest = Array(rest)
    let stream = write(files, manifest: manifest)
    guard let back = parse(stream, piece: Int(control % 7) + 1) else { fatalError("a well-formed stream was refused") }
    if back.manifest != Data(manifest) || back.files.count != files.count
        || !zip(back.files, files).allSatisfy({ $0.name == $1.0 && $0.bytes == $1.1 && $0.complete })
    {
        fatalError("a well-formed stream did not parse back to what was written")
    }
    return 0
}

extension Array where Element == UInt8 {
    func padded(to n: Int) -> [UInt8] { count >= n ? self : self + [UInt8](repeating: 0, count: n - count) }
}
