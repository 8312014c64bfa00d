import NIOCore

/// Cuts the inbound byte stream into messages.
///
/// The header is checked as soon as its 12 bytes are there: bad magic, an unknown type, non-zero
/// flags or a length beyond the type's limit throw at once, so a hostile or confused peer cannot make
/// this node buffer a payload it will refuse anyway. Bulk bytes of the decoded message are slices of
/// the receive buffer.
public struct PeerFrameDecoder: NIOSingleStepByteToMessageDecoder, Sendable {
    public typealias InboundOut = PeerMessage

    public init() {}

    public mutating func decode(buffer: inout ByteBuffer) throws -> PeerMessage? {
        try decodeFrame(&buffer)
    }

    /// At EOF a partial frame is dropped without an error: a connection cut in the middle of a frame is
    /// a network failure, which the link sees as the channel going inactive.
    public mutating func decodeLast(buffer: inout ByteBuffer, seenEOF: Bool) throws -> PeerMessage? {
        try decodeFrame(&buffer)
    }

    private func decodeFrame(_ buffer: inout ByteBuffer) throws(PeerProtocolError) -> PeerMessage? {
        guard buffer.readableBytes >= PeerWire.headerSize else { return nil }
        let start = buffer.readerIndex
        let magic = buffer.getInteger(at: start, as: UInt32.self)!
        guard magic == PeerWire.magic else { throw .badMagic(magic) }
        let type = buffer.getInteger(at: start + 4, as: UInt16.self)!
        let flags = buffer.getInteger(at: start + 6, as: UInt16.self)!
        let length = buffer.getInteger(at: start + 8, as: UInt32.self)!
        _ = try PeerWire.checkHeader(type: type, flags: flags, length: UInt64(length))
        guard buffer.readableBytes >= PeerWire.headerSize + Int(length) else { return nil }
        buffer.moveReaderIndex(forwardBy: PeerWire.headerSize)
        let payload = buffer.readSlice(length: Int(length))!
        return try PeerMessage.decode(type: type, flags: flags, payload: payload)
    }
}

/// Encodes outbound messages: the header and fixed fields in one small buffer, then the bulk bytes
/// (write data, resync data, bitmap page) as a second write of the caller's own buffer, uncopied.
/// The write's promise completes with the last of the two.
public final class PeerFrameEncoder: ChannelOutboundHandler {
    public typealias OutboundIn = PeerMessage
    public typealias OutboundOut = ByteBuffer

    public init() {}

    public func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        let message = unwrapOutboundIn(data)
        var header = context.channel.allocator.buffer(capacity: 64)
        let bulk = message.encodeHeaderAndFixedPart(into: &header)
        if let bulk, bulk.readableBytes > 0 {
            context.write(wrapOutboundOut(header), promise: nil)
            context.write(wrapOutboundOut(bulk), promise: promise)
        } else {
            context.write(wrapOutboundOut(header), promise: promise)
        }
    }
}

@available(*, unavailable)
extension PeerFrameEncoder: Sendable {}
