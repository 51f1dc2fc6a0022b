// libFuzzer target for the PostgreSQL v3 codec (Sources/PGWire): any bytes go through the frame decoder (start-up
// mode, then typed) in odd-sized pieces; every frame is decoded as start-up packet, client message and server
// message, and whatever decodes must re-encode to a frame that decodes to the same value. Oracle: no crash, hang
// or out-of-bounds read (ASan). The relay's frame scanner (PGFrameScanner) sees the same bytes as a typed stream and
// must report exactly the frames the decoder returns, and refuse exactly where it refuses. Bound-parameter rendering
// (PGValueText) gets the bytes as a value of every type it decodes. Built by
// Tests/Fuzz/run-fuzz.sh.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    differential(bytes)
    // Bound parameters rendered for replay (PGValueText): any bytes under every type it knows, both formats.
    if let first = bytes.first {
        let oids: [Int32] = [
            16, 17, 19, 20, 21, 23, 25, 26, 114, 700, 701, 1042, 1043, 1082, 1114, 1184, 1700, 2950, 3802, 0,
        ]
        let value = Array(bytes.dropFirst())
        _ = PGValueText.render(value, oid: oids[Int(first) % oids.count], binary: first & 0x80 != 0)
    }
    var decoder = PGFrameDecoder(expectStartup: true, maxMessageLength: 1 << 16)
    var offset = 0
    var step = 1
    while offset < bytes.count {
        let end = min(bytes.count, offset + step)
        decoder.feed(bytes[offset..<end])
        offset = end
        step = step % 7 + 1
        while true {
            guard let frame = try? decoder.next() else { return 0 }
            decoder.expectStartup = false
            if frame.type == nil, let s = try? PGStartup(body: frame.body) {
                guard (try? PGStartup(body: s.frame.body)) == s else { fatalError("start-up round trip changed it") }
            }
            if let m = try? PGFrontendMessage(frame) {
                guard (try? PGFrontendMessage(m.frame)) == m else { fatalError("client message round trip changed it") }
            }
            if let m = try? PGBackendMessage(frame) {
                guard (try? PGBackendMessage(m.frame)) == m else { fatalError("server message round trip changed it") }
            }
        }
    }
    return 0
}

/// The scanner against the decoder on one typed stream fed in odd pieces.
func differential(_ bytes: [UInt8]) {
    var scanner = PGFrameScanner(maxMessageLength: 1 << 16, interesting: Set(0...255))
    var decoder = PGFrameDecoder(expectStartup: false, maxMessageLength: 1 << 16)
    var offset = 0
    var step = 3
    while offset < bytes.count {
        let end = min(bytes.count, offset + step)
        let piece = Array(bytes[offset..<end])
        offset = end
        step = step % 11 + 1
        var seen: [PGFrameScanner.Seen] = []
        var scanFailed = false
        piece.withUnsafeBytes { raw in
            do { try scanner.feed(raw) { seen.append($0) } } catch { scanFailed = true }
        }
        decoder.feed(piece)
        var decoded: [PGFrame] = []
        var decodeFailed = false
        while true {
            do {
                guard let frame = try decoder.next() else { break }
                decoded.append(frame)
            } catch {
                decodeFailed = true
                break
            }
        }
        guard seen.count == decoded.count else {
            fatalError("scanner saw \(seen.count) frames, decoder \(decoded.count)")
        }
        for (a, b) in zip(seen, decoded) where a.type != b.type || a.body != b.body || a.length != b.body.count {
            fatalError("scanner and decoder disagree on a frame")
        }
        guard scanFailed == decodeFailed else { fatalError("scanner and decoder disagree on a bad length") }
        if scanFailed { return }
    }
}
