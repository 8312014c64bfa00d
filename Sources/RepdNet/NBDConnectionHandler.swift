import NBDProtocol
import NIOConcurrencyHelpers
import NIOCore
import NIOSSL

/// TLS on an NBD listener: the policy, and the server context NBD_OPT_STARTTLS switches to.
public struct NBDServerTLS: Sendable {
    public var policy: NBDNegotiation.TLSPolicy
    public var context: NIOSSLContext
    /// For messages: the CA client certificates must chain to (nil: no client certificate asked).
    public var clientCA: String?

    public init(policy: NBDNegotiation.TLSPolicy, context: NIOSSLContext, clientCA: String?) {
        self.policy = policy
        self.context = context
        self.clientCA = clientCA
    }
}

/// One NBD client connection: negotiation, then requests executed concurrently with replies
/// sent as each completes.
///
/// A malformed request gets an error reply and the connection lives on; only broken framing
/// (bad magic, an option too large to buffer) closes it. Reading pauses while too much is in
/// flight, so a client cannot make the server buffer without bound.
final class NBDConnectionHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let backend: any NBDBackend
    private var negotiation: NBDNegotiation?
    private var session: NBDSession?
    private var cumulation: ByteBuffer?
    /// A WRITE whose payload is being skipped (too large to accept): bytes left, and the reply due.
    private var discarding: (remaining: Int, request: NBDRequest, error: NBDError, message: String)?
    private var inFlight = 0
    private var inFlightBytes = 0
    private var paused = false
    private var disconnectRequested = false
    private var peerName = "client"

    static let maximumInFlight = 512
    static let maximumInFlightBytes = 256 << 20

    /// The session of a connection that starts in the transmission phase (the kernel's nbd driver
    /// is handed its socket after the handshake it would have made), nil for a normal client.
    private let preNegotiated: NBDSession?

    /// Called once the client opened the export (the transmission phase began).
    private let opened: (@Sendable () -> Void)?
    /// The size of the export for the block device repd attached itself, which follows
    /// `repd resize` (the kernel learns the new size from repd, not from a new handshake).
    private let grownSize: NIOLockedValueBox<UInt64>?

    /// This listener's TLS, and why a client's certificate was refused (for the log).
    private let tls: NBDServerTLS?
    private let tlsDiagnosis = TLSSetup.Diagnosis()

    init(backend: any NBDBackend, transmission session: NBDSession? = nil, name: String? = nil, opened: (@Sendable () -> Void)? = nil,
         grownSize: NIOLockedValueBox<UInt64>? = nil, tls: NBDServerTLS? = nil) {
        self.backend = backend
        self.tls = tls
        self.preNegotiated = session
        self.opened = opened
        self.grownSize = grownSize
        if let name { peerName = name }
    }

    func channelActive(context: ChannelHandlerContext) {
        if let session = preNegotiated {
            self.session = session
            return
        }
        if let address = context.channel.remoteAddress {
            peerName = "\(address)"
        }
        negotiation = NBDNegotiation(exports: backend.exports(), tls: tls?.policy ?? .off)
        context.writeAndFlush(wrapOutboundOut(NBDNegotiation.greeting()), promise: nil)
    }

    static let reclaimThreshold = 256 * 1024

    private var throttled: Bool {
        inFlight >= Self.maximumInFlight || inFlightBytes >= Self.maximumInFlightBytes
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var incoming = unwrapInboundIn(data)
        if cumulation == nil || cumulation!.readableBytes == 0 {
            cumulation = incoming
        } else {
            // Requests keep arriving mid-buffer under pipelining, so the buffer is rarely empty:
            // drop the consumed bytes before appending, or it would grow with every byte received.
            if cumulation!.readerIndex >= Self.reclaimThreshold { cumulation!.discardReadBytes() }
            cumulation!.writeBuffer(&incoming)
        }
        process(context: context)
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        context.flush()
        if cumulation?.readableBytes == 0 { cumulation = nil }
    }

    /// NBD_OPT_STARTTLS acknowledged: the ACK goes out in clear, then TLS is put in front of this
    /// handler and the negotiation goes on inside it. Bytes the client sent after STARTTLS in clear
    /// would be read as if they came through TLS (the STARTTLS injection attack): refused.
    private func startTLS(context: ChannelHandlerContext, reply: ByteBuffer, leftover: Int) {
        cumulation = nil
        guard let tls, leftover == 0 else {
            backend.report("closing connection: \(leftover) bytes sent in clear after NBD_OPT_STARTTLS, before the TLS handshake",
                           connection: peerName)
            negotiation = nil
            context.close(promise: nil)
            return
        }
        context.writeAndFlush(wrapOutboundOut(reply), promise: nil)
        do {
            let trust = tls.clientCA.map { "nbd-tls-ca \($0)" } ?? "the CA"
            let handler = try NIOSSLServerHandler(context: tls.context, verificationCallback: tlsDiagnosis.callback(trust: trust))
            try context.pipeline.syncOperations.addHandler(handler, position: .first)
        } catch {
            backend.report("closing connection: cannot start TLS: \(error)", connection: peerName)
            negotiation = nil
            context.close(promise: nil)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        if error is NIOSSLError || error is BoringSSLError {
            let explained = TLSSetup.explain(error, diagnosis: tlsDiagnosis, peer: "the client")
            backend.report("closing connection: \(explained)", connection: peerName)
        }
        context.close(promise: nil)
    }

    private func process(context: ChannelHandlerContext) {
        while var buffer = cumulation, context.channel.isActive {
            if var skip = discarding {
                let n = min(skip.remaining, buffer.readableBytes)
                buffer.moveReaderIndex(forwardBy: n)
                skip.remaining -= n
                cumulation = buffer
                if skip.remaining > 0 {
                    discarding = skip
                    return
                }
                discarding = nil
                sendError(context: context, request: skip.request, error: skip.error, message: skip.message)
                continue
            }
            if negotiation != nil {
                guard let action = negotiation!.process(&buffer) else {
                    cumulation = buffer
                    return
                }
                cumulation = buffer
                switch action {
                case .send(let reply):
                    if reply.readableBytes > 0 { context.write(wrapOutboundOut(reply), promise: nil) }
                case .sendAndClose(let reply, let reason):
                    backend.report("negotiation ended: \(reason)", connection: peerName)
                    cumulation = nil
                    context.writeAndFlush(wrapOutboundOut(reply)).whenComplete { _ in context.close(promise: nil) }
                    negotiation = nil
                    return
                case .transmit(let reply, let session):
                    context.write(wrapOutboundOut(reply), promise: nil)
                    self.session = session
                    negotiation = nil
                    opened?()
                case .startTLS(let reply):
                    startTLS(context: context, reply: reply, leftover: buffer.readableBytes)
                    return
                }
                continue
            }
            guard var session else { return }
            if let grownSize {
                session.export.size = max(session.export.size, grownSize.withLockedValue { $0 })
                self.session = session
            }
            let request: NBDRequest
            do {
                guard let decoded = try NBDRequest.decodeHeader(&buffer) else {
                    cumulation = buffer
                    return
                }
                request = decoded
            } catch {
                backend.report("closing connection: \(error)", connection: peerName)
                cumulation = nil
                context.flush()
                context.close(promise: nil)
                return
            }
            let validation = request.validate(in: session)
            if request.hasPayload {
                let length = Int(request.length)
                if let (error, message) = validation, length > Int(NBDLimits.maximumPayload) {
                    // Too large to buffer: skip the payload as it streams in, then reply.
                    cumulation = buffer
                    discarding = (length, request, error, message)
                    backend.report("\(message); discarding its payload", connection: peerName)
                    continue
                }
                guard buffer.readableBytes >= length else {
                    // Put the header back until the whole payload is here.
                    buffer.moveReaderIndex(to: buffer.readerIndex - NBDRequest.headerSize)
                    cumulation = buffer
                    return
                }
                let payload = buffer.readSlice(length: length)!
                cumulation = buffer
                if let (error, message) = validation {
                    sendError(context: context, request: request, error: error, message: message)
                    continue
                }
                dispatch(context: context, request: request, payload: payload, session: session)
            } else {
                cumulation = buffer
                if let (error, message) = validation {
                    sendError(context: context, request: request, error: error, message: message)
                    continue
                }
                if request.command == .disconnect {
                    disconnectRequested = true
                    cumulation = nil
                    closeIfDone(context: context)
                    return
                }
                dispatch(context: context, request: request, payload: nil, session: session)
            }
        }
    }

    private func sendError(context: ChannelHandlerContext, request: NBDRequest, error: NBDError, message: String) {
        var out = context.channel.allocator.buffer(capacity: 64)
        NBDReply.error(cookie: request.cookie, error: error, message: message, structured: session?.structuredReplies ?? false, into: &out)
        context.write(wrapOutboundOut(out), promise: nil)
    }

    private func dispatch(context: ChannelHandlerContext, request: NBDRequest, payload: ByteBuffer?, session: NBDSession) {
        inFlight += 1
        let weight = Int(request.length)
        let counted = (request.command == .read || request.command == .write) ? weight : 0
        inFlightBytes += counted
        if throttled && !paused {
            paused = true
            context.channel.setOption(ChannelOptions.autoRead, value: false).whenFailure { _ in }
        }
        let future = backend.execute(request, payload: payload, session: session, on: context.eventLoop)
        future.hop(to: context.eventLoop).whenComplete { result in
            self.inFlight -= 1
            self.inFlightBytes -= counted
            self.reply(context: context, request: request, result: result)
            if self.paused && !self.throttled {
                self.paused = false
                context.channel.setOption(ChannelOptions.autoRead, value: true).whenFailure { _ in }
            }
            self.closeIfDone(context: context)
        }
    }

    private func reply(context: ChannelHandlerContext, request: NBDRequest, result: Result<NBDOutcome, Error>) {
        guard context.channel.isActive else { return }
        let structured = session?.structuredReplies ?? false
        var header = context.channel.allocator.buffer(capacity: 32)
        switch result {
        case .success(.done):
            NBDReply.simple(cookie: request.cookie, error: nil, into: &header)
            context.write(wrapOutboundOut(header), promise: nil)
            scheduleFlush(context: context)
        case .success(.data(let data)):
            if structured {
                NBDReply.offsetDataHeader(cookie: request.cookie, offset: request.offset, dataLength: data.readableBytes, into: &header)
            } else {
                NBDReply.simple(cookie: request.cookie, error: nil, into: &header)
            }
            context.write(wrapOutboundOut(header), promise: nil)
            context.write(wrapOutboundOut(data), promise: nil)
            scheduleFlush(context: context)
        case .success(.extents(let extents)):
            NBDReply.blockStatus(cookie: request.cookie, contextID: NBD.baseAllocationID, extents: extents, into: &header)
            context.write(wrapOutboundOut(header), promise: nil)
            scheduleFlush(context: context)
        case .failure(let error):
            let failure = (error as? NBDFailure) ?? NBDFailure(.io, "\(error)")
            NBDReply.error(cookie: request.cookie, error: failure.error, message: failure.message, structured: structured, into: &header)
            context.write(wrapOutboundOut(header), promise: nil)
            scheduleFlush(context: context)
        }
    }

    /// Replies completed in the same turn of the event loop go out with one flush.
    private var flushScheduled = false
    private func scheduleFlush(context: ChannelHandlerContext) {
        guard !flushScheduled else { return }
        flushScheduled = true
        context.eventLoop.execute {
            self.flushScheduled = false
            context.flush()
        }
    }

    private func closeIfDone(context: ChannelHandlerContext) {
        if disconnectRequested && inFlight == 0 {
            context.flush()
            context.close(promise: nil)
        }
    }
}
