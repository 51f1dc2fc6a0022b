// libFuzzer target for the TTLV decoder (KMIP §9.1): any input must either decode to an item that re-encodes
// to exactly the same bytes, or throw a TTLVError — never crash, hang or read out of bounds (built with ASan).
// Built and run by Tests/Fuzz/run-fuzz.sh.

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    let decoder = TTLVDecoder(maxDepth: 16, maxMessageSize: 1 << 16)
    if let item = try? decoder.decode(bytes) {
        let again = TTLVEncoder.encode(item)
        // Strict decoding accepts only canonical encodings, so a round trip is byte-identical.
        if again != bytes { fatalError("TTLV round trip changed the bytes") }
    }
    _ = TTLVDecoder.frameLength(bytes)
    return 0
}
