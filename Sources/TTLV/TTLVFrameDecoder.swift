import NIOCore

/// Frames KMIP messages on a byte stream: reads the 8-byte header, then exactly the declared length, however
/// the peer splits its writes. A frame over `maxMessageSize` is an error before any of its body is buffered.
public struct TTLVFrameDecoder: NIOSingleStepByteToMessageDecoder {
    public typealias InboundOut = ByteBuffer

    public let maxMessageSize: Int

    public init(maxMessageSize: Int) { self.maxMessageSize = maxMessageSize }

    /// A frame declared larger than the limit.
    public struct FrameTooLarge: Error, Hashable { public var declared: Int }

    public mutating func decode(buffer: inout ByteBuffer) throws -> ByteBuffer? {
        guard let header = buffer.getBytes(at: buffer.readerIndex, length: 8),
            let total = TTLVDecoder.frameLength(header)
        else { return nil }
        guard total <= maxMessageSize else { throw FrameTooLarge(declared: total) }
        return buffer.readSlice(length: total)
    }

    public mutating func decodeLast(buffer: inout ByteBuffer, seenEOF: Bool) throws -> ByteBuffer? {
        try decode(buffer: &buffer)
    }
}
