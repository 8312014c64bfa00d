import NBDProtocol
import NIOCore

/// A client's option request: magic, option, length, data.
func nbdOption(_ option: UInt32, _ payload: ByteBuffer = ByteBuffer()) -> ByteBuffer {
    var b = ByteBuffer()
    b.writeInteger(NBD.optionMagic)
    b.writeInteger(option)
    b.writeInteger(UInt32(payload.readableBytes))
    b.writeImmutableBuffer(payload)
    return b
}
