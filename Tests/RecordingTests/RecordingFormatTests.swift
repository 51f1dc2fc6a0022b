import Crypto
import Foundation
import Recording
import TestSupport
import Testing

/// The recording container: every chunk authenticated with the session and its index, the chain and the signed
/// manifest; reordering, truncation, splicing and bit flips are reported, and a crash leaves a readable prefix.
@Suite struct RecordingFormatTests {
    let signer = Curve25519.Signing.PrivateKey()
    let key = Array(SymmetricKey(size: .bits256).withUnsafeBytes { Data($0) })

    /// A recording of `chunks` chunks ("chunk 0", "chunk 1", …) with the manifest, and its record boundaries.
    func make(_ session: String, chunks: Int, key: [UInt8]? = nil, manifest: Bool = true) throws -> (
        file: [UInt8], records: [Range<Int>]
    ) {
        var encoder = RecordingEncoder(session: session, key: key ?? self.key)
        var file = encoder.header
        var records: [Range<Int>] = []
        for i in 0..<chunks {
            let record = try encoder.seal(Array("chunk \(i)\n".utf8))
            records.append(file.count..<(file.count + record.count))
            file += record
        }
        if manifest {
            let m = encoder.manifest(endedAt: Date(), endReason: "client-terminated")
            file += RecordingEncoder.manifestRecord(
                m, signature: Array(try signer.signature(for: RecordingFormat.signedManifestBytes(m))))
        }
        return (file, records)
    }

    func read(_ file: [UInt8], _ session: String, key: [UInt8]? = nil) throws -> RecordingDecoder.Result {
        try RecordingDecoder.read(file, expectedSession: session, key: key ?? self.key) {
            signer.publicKey.isValidSignature($1, for: $0)
        }
    }

    func text(_ r: RecordingDecoder.Result) -> [String] { r.chunks.map { String(decoding: $0, as: UTF8.self) } }

    @Test func aClosedRecordingIsCompleteAndCiphertextOnly() throws {
        let (file, _) = try make("s1", chunks: 3)
        let r = try read(file, "s1")
        guard case .complete(let m) = r.integrity else {
            Issue.record("\(r.integrity)")
            return
        }
        #expect(m.chunks == 3 && m.endReason == "client-terminated")
        #expect(text(r) == ["chunk 0\n", "chunk 1\n", "chunk 2\n"])
        #expect(!String(decoding: file, as: UTF8.self).contains("chunk 1"))
    }

    @Test func aCrashLeavesAReadablePrefixReportedIncomplete() throws {
        let (file, records) = try make("s1", chunks: 3, manifest: false)
        let r = try read(file, "s1")
        guard case .incomplete = r.integrity else {
            Issue.record("\(r.integrity)")
            return
        }
        #expect(r.chunks.count == 3)
        // Killed in the middle of writing the third chunk.
        let cut = try read(Array(file[..<(records[2].lowerBound + 7)]), "s1")
        guard case .incomplete = cut.integrity else {
            Issue.record("\(cut.integrity)")
            return
        }
        #expect(text(cut) == ["chunk 0\n", "chunk 1\n"])
    }

    @Test func tamperingIsDetected() throws {
        let (file, records) = try make("s1", chunks: 3)
        // A flipped bit inside chunk 1.
        var flipped = file
        flipped[records[1].lowerBound + 15] ^= 0x01
        guard case .tampered = try read(flipped, "s1").integrity else {
            Issue.record("bit flip not detected")
            return
        }
        // Chunks 1 and 2 swapped.
        let swapped =
            Array(file[..<records[1].lowerBound]) + Array(file[records[2]]) + Array(file[records[1]])
            + Array(file[records[2].upperBound...])
        let s = try read(swapped, "s1")
        guard case .tampered = s.integrity else {
            Issue.record("reordering not detected")
            return
        }
        #expect(s.chunks.count == 1)
        // Chunk 1 removed (truncation in the middle).
        let dropped = Array(file[..<records[1].lowerBound]) + Array(file[records[1].upperBound...])
        guard case .tampered = try read(dropped, "s1").integrity else {
            Issue.record("removal not detected")
            return
        }
        // The manifest cut off, then the last chunk dropped with it: the prefix is no longer what was signed.
        let noTail = Array(file[..<records[2].lowerBound])
        guard case .incomplete = try read(noTail, "s1").integrity else {
            Issue.record("truncation not reported")
            return
        }
        // The high byte of chunk 1's length field flipped: no writer makes such a length, so it is tampering (a
        // crash cannot produce it), and the chunks before it are still returned.
        var longer = file
        longer[records[1].lowerBound + 9] ^= 0x80
        let l = try read(longer, "s1")
        guard case .tampered = l.integrity else {
            Issue.record("a changed length field reported as \(l.integrity)")
            return
        }
        #expect(l.chunks.count == 1)
        // A manifest signed by someone else.
        var forged = try make("s1", chunks: 3).file
        forged[forged.count - 1] ^= 0xff
        guard case .tampered = try read(forged, "s1").integrity else {
            Issue.record("bad signature not detected")
            return
        }
    }

    @Test func chunksFromAnotherSessionDoNotOpen() throws {
        let (a, ra) = try make("session-a", chunks: 2)
        let (b, rb) = try make("session-b", chunks: 2)
        // Session b's chunk 1 spliced into session a's file, even with the same key.
        let (sameKeyB, rsb) = try make("session-b", chunks: 2, key: key)
        for (donor, range) in [(b, rb[1]), (sameKeyB, rsb[1])] {
            let spliced = Array(a[..<ra[1].lowerBound]) + Array(donor[range]) + Array(a[ra[1].upperBound...])
            let r = try read(spliced, "session-a")
            guard case .tampered = r.integrity else {
                Issue.record("splice not detected")
                return
            }
            #expect(r.chunks.count == 1)
        }
        // A whole file presented as another session's.
        guard case .tampered = try read(b, "session-a").integrity else {
            Issue.record("wrong session not detected")
            return
        }
        // The wrong key opens nothing.
        let other = Array(SymmetricKey(size: .bits256).withUnsafeBytes { Data($0) })
        let r = try read(a, "session-a", key: other)
        guard case .tampered = r.integrity else {
            Issue.record("wrong key not detected")
            return
        }
        #expect(r.chunks.isEmpty)
        #expect(throws: RecordingError.self) { try read(Array("not a recording".utf8), "session-a") }
    }

    /// The outcome of reading `file` fed in pieces of `piece` bytes: the chunks and the verdict, or nil when the
    /// reader refused the header.
    func readInPieces(_ file: [UInt8], _ session: String, piece: Int) -> ([[UInt8]], RecordingDecoder.Integrity)? {
        var reader = RecordingReader(expectedSession: session, key: key)
        var chunks: [[UInt8]] = []
        var offset = 0
        repeat {
            let end = min(file.count, offset + piece)
            do {
                chunks += try reader.feed(Array(file[offset..<end])) { signer.publicKey.isValidSignature($1, for: $0) }
            } catch {
                return nil
            }
            #expect(reader.consumed <= end)
            offset = end
        } while offset < file.count
        guard reader.session != nil else { return nil }
        return (chunks, reader.integrityIfEnded)
    }

    static func verdict(_ integrity: RecordingDecoder.Integrity) -> String {
        switch integrity {
        case .complete(let manifest): "complete \(manifest.chunks) \(manifest.chain)"
        case .incomplete: "incomplete"
        case .tampered: "tampered"
        }
    }

    /// A live view feeds the reader what was appended since its last look: wherever those boundaries fall, it must
    /// find what one read of the whole file finds, for good files, cut files and damaged ones (fixed cases, then
    /// random damage from a fixed seed so a failure reproduces).
    @Test func readingAGrowingFileInPiecesFindsWhatOneReadFinds() throws {
        let (file, records) = try make("s1", chunks: 5)
        var variants: [[UInt8]] = [
            file, Array(file[..<records[4].upperBound]), Array(file[..<(records[3].lowerBound + 20)]),
            Array(file[..<(records[4].upperBound + 9)]), file + [1, 2], Array(file[..<5]), [],
        ]
        var rng = SeededGenerator(seed: 0x5EED)
        for _ in 0..<300 {
            var damaged = file
            switch rng.next() % 4 {
            case 0: damaged[Int(rng.next() % UInt64(damaged.count))] ^= UInt8(truncatingIfNeeded: rng.next() | 1)
            case 1: damaged.removeLast(Int(rng.next() % UInt64(damaged.count)))
            case 2: damaged.insert(UInt8(truncatingIfNeeded: rng.next()), at: Int(rng.next() % UInt64(damaged.count)))
            default: damaged.remove(at: Int(rng.next() % UInt64(damaged.count)))
            }
            variants.append(damaged)
        }
        for variant in variants {
            let whole: ([[UInt8]], RecordingDecoder.Integrity)? = (try? read(variant, "s1")).map {
                ($0.chunks, $0.integrity)
            }
            for piece in [1, 3, 13, 64, 1000, max(1, variant.count)] {
                let pieces = readInPieces(variant, "s1", piece: piece)
                #expect(pieces?.0 == whole?.0, "chunks differ in pieces of \(piece)")
                // The same verdict; the reason may differ when a damaged manifest looks whole before the bytes after
                // it arrive (its signature fails then, and later it is "followed by data").
                #expect(
                    pieces.map { Self.verdict($0.1) } == whole.map { Self.verdict($0.1) },
                    "verdict differs in pieces of \(piece): \(String(describing: pieces?.1)) / \(String(describing: whole?.1))"
                )
            }
        }
        // Fed one record at a time, the chunks come as soon as they are whole, and the verdict settles at the end.
        var reader = RecordingReader(expectedSession: "s1", key: key)
        let verify: ([UInt8], [UInt8]) -> Bool = { signer.publicKey.isValidSignature($1, for: $0) }
        #expect(try reader.feed(Array(file[..<records[0].lowerBound]), verify: verify).isEmpty)
        for (i, record) in records.enumerated() {
            #expect(try reader.feed(Array(file[record]), verify: verify) == [Array("chunk \(i)\n".utf8)])
            #expect(reader.consumed == record.upperBound)
            guard case .incomplete = reader.integrityIfEnded else {
                Issue.record("a running recording reads as \(reader.integrityIfEnded)")
                return
            }
        }
        #expect(try reader.feed(Array(file[records[4].upperBound...]), verify: verify).isEmpty)
        guard case .complete = reader.integrityIfEnded else {
            Issue.record("\(reader.integrityIfEnded)")
            return
        }
        // Anything after the manifest is tampering, however late it comes.
        _ = try reader.feed([0], verify: verify)
        guard case .tampered = reader.integrityIfEnded else {
            Issue.record("data after the manifest read as \(reader.integrityIfEnded)")
            return
        }
    }
}
