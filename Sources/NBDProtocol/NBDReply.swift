import NIOCore

/// Encoders for transmission-phase replies. Payloads are written by the caller as separate
/// buffers after the header, so read data is never copied into a reply buffer.
public enum NBDReply {
    public static let simpleHeaderSize = 16
    public static let chunkHeaderSize = 20

    /// Simple reply header; for a successful simple READ, the data follows it.
    public static func simple(cookie: UInt64, error: NBDError?, into out: inout ByteBuffer) {
        out.writeInteger(NBD.simpleReplyMagic)
        out.writeInteger(error?.rawValue ?? 0)
        out.writeInteger(cookie)
    }

    /// Structured chunk header.
    public static func chunkHeader(cookie: UInt64, type: NBD.ChunkType, flags: UInt16, length: UInt32, into out: inout ByteBuffer) {
        out.writeInteger(NBD.structuredReplyMagic)
        out.writeInteger(flags)
        out.writeInteger(type.rawValue)
        out.writeInteger(cookie)
        out.writeInteger(length)
    }

    /// Header of a final OFFSET_DATA chunk carrying `dataLength` bytes at `offset`; the data follows.
    public static func offsetDataHeader(cookie: UInt64, offset: UInt64, dataLength: Int, into out: inout ByteBuffer) {
        chunkHeader(cookie: cookie, type: .offsetData, flags: NBD.chunkFlagDone, length: UInt32(8 + dataLength), into: &out)
        out.writeInteger(offset)
    }

    /// A final error chunk, with a message for the client's log.
    public static func errorChunk(cookie: UInt64, error: NBDError, message: String, into out: inout ByteBuffer) {
        let text = Array(message.utf8.prefix(Int(NBDLimits.maximumStringLength)))
        chunkHeader(cookie: cookie, type: .error, flags: NBD.chunkFlagDone, length: UInt32(6 + text.count), into: &out)
        out.writeInteger(error.rawValue)
        out.writeInteger(UInt16(text.count))
        out.writeBytes(text)
    }

    /// A final BLOCK_STATUS chunk for one context: (length, flags) descriptors.
    public static func blockStatus(cookie: UInt64, contextID: UInt32, extents: [(length: UInt32, flags: UInt32)], into out: inout ByteBuffer) {
        chunkHeader(cookie: cookie, type: .blockStatus, flags: NBD.chunkFlagDone, length: UInt32(4 + 8 * extents.count), into: &out)
        out.writeInteger(contextID)
        for extent in extents {
            out.writeInteger(extent.length)
            out.writeInteger(extent.flags)
        }
    }

    /// An error reply in whichever form the session uses.
    public static func error(cookie: UInt64, error: NBDError, message: String, structured: Bool, into out: inout ByteBuffer) {
        if structured {
            errorChunk(cookie: cookie, error: error, message: message, into: &out)
        } else {
            simple(cookie: cookie, error: error, into: &out)
        }
    }
}
