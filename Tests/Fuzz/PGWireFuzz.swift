// libFuzzer target for the PostgreSQL v3 codec (Sources/PGWire): any bytes go through the frame decoder (start-up
// mode, then typed) in odd-sized pieces; every frame is decoded as start-up packet, client message and server
// message, and whatever decodes must re-encode to a frame that decodes to the same value. Oracle: no crash, hang
// or out-of-bounds read (ASan). Built by Tests/Fuzz/run-fuzz.sh.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
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
