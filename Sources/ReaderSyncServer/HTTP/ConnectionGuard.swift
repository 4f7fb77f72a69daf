import Foundation
import HTTPTypes
import HummingbirdCore
import Logging
import NIOCore
import NIOHTTP1
import NIOHTTPTypes
import NIOHTTPTypesHTTP1
import ReaderSync

// MARK: - The child channel

/// HTTP/1.1 as Hummingbird's `HTTP1Channel` sets it up, plus the server's connection guard: a request head must
/// arrive within ``ConnectionLimits/headerTimeout``, a request body may not stall longer than
/// ``ConnectionLimits/bodyTimeout``, a connection with nothing to do is closed after
/// ``ConnectionLimits/idleTimeout``, and a request the HTTP parser refuses (a header over
/// ``ConnectionLimits/maxHeaderBytes``, bad syntax) is answered with a problem body instead of an empty 400.
///
/// The pipeline: [TLS] → ``ByteTap`` → HTTP/1 codec → HTTP types codec → ``RequestGuard`` → Hummingbird's
/// connection state handler (graceful shutdown) → the async channel that Hummingbird's responder reads.
struct GuardedHTTP1Channel: ServerChildChannel, HTTPChannelHandler {
    typealias Value = NIOAsyncChannel<HTTPRequestPart, HTTPResponsePart>

    let responder: HTTPChannelHandler.Responder
    let limits: ConnectionLimits
    /// Whether TLS sits under this channel (requests then carry the `https` scheme).
    let secure: Bool

    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        channel.eventLoop.makeCompletedFuture {
            let requestGuard = RequestGuard(limits: limits, logger: logger)
            let pipeline = channel.pipeline.syncOperations
            try pipeline.addHandler(ByteTap(requestGuard))
            var decoderLimits = NIOHTTPDecoderLimitConfiguration()
            decoderLimits.maxHeaderFieldSize = limits.maxHeaderBytes
            decoderLimits.maxHeaderListSize = limits.maxHeaderBytes
            try pipeline.configureHTTPServerPipeline(
                withPipeliningAssistance: false,  // the async channel serializes requests
                withErrorHandling: false,  // RequestGuard answers parse errors with a problem body
                withOutboundHeaderValidation: false,  // HTTP types validate headers already
                withEncoderConfiguration: .init(),
                withDecoderLimitConfiguration: decoderLimits)
            try pipeline.addHandler(HTTP1ToHTTPServerCodec(secure: secure))
            try pipeline.addHandler(requestGuard)
            // Hummingbird's handler, without its idle timeout (RequestGuard has finer ones): it closes connections
            // gracefully on shutdown once their requests are answered.
            try pipeline.addHandler(HTTPConnectionStateHandler(idleTimeout: nil, logger: logger))
            return try NIOAsyncChannel(wrappingChannelSynchronously: channel,
                                       configuration: .init(isOutboundHalfClosureEnabled: true))
        }
    }

    func handle(value asyncChannel: Value, logger: Logger) async {
        await handleHTTP(asyncChannel: asyncChannel, logger: logger)
    }
}

// MARK: - The guard

/// Watches one connection's requests and enforces the header, body and idle timeouts.
///
/// It sees HTTP parts (it sits after the HTTP codec); ``ByteTap``, at the front of the pipeline, tells it when
/// raw bytes arrive and when the channel asks for more, so that a half-sent request head (which produces no HTTP
/// part) is timed too. A timeout only runs while the server is waiting for the client (a read is pending): a
/// connection whose request the server is still working on, or whose reads are held back by the server's own
/// back-pressure, is never timed out. Used on the connection's event loop only.
final class RequestGuard: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart
    typealias OutboundIn = HTTPResponsePart
    typealias OutboundOut = HTTPResponsePart

    /// Which timeout a deadline belongs to.
    enum Timeout: Equatable {
        case header, body, idle
    }

    private let limits: ConnectionLimits
    private let logger: Logger
    private var context: ChannelHandlerContext?

    /// Requests whose head arrived and whose response has not been written to the end.
    private var requestsInProgress = 0
    /// A request head arrived, its end has not.
    private var readingBody = false
    /// Bytes of a request head arrived, the whole head has not.
    private var headStartedAt: NIODeadline?
    /// Since when the channel has been waiting for the client's bytes; nil while the server holds reads back.
    private var waitingSince: NIODeadline?
    /// When the last bytes arrived.
    private var lastBytesAt: NIODeadline
    /// When the connection last had nothing to do (opened, or answered its last request).
    private var idleSince: NIODeadline
    /// The body being read: its declared length and the bytes received so far (for the timeout's message).
    private var declaredBodyLength: Int?
    private var bodyBytes = 0
    /// Close once the response in progress is written (after a body timeout).
    private var closeAfterResponse = false
    private var closing = false
    private var check: (deadline: NIODeadline, task: Scheduled<Void>)?

    init(limits: ConnectionLimits, logger: Logger) {
        self.limits = limits
        self.logger = logger
        let now = NIODeadline.now()
        lastBytesAt = now
        idleSince = now
    }

    // MARK: Channel events

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        idleSince = .now()
        scheduleCheck()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        check?.task.cancel()
        check = nil
        self.context = nil
    }

    func channelActive(context: ChannelHandlerContext) {
        idleSince = .now()
        scheduleCheck()
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            requestsInProgress += 1
            readingBody = true
            headStartedAt = nil
            declaredBodyLength = head.headerFields[.contentLength].flatMap { Int($0) }
            bodyBytes = 0
        case .body(let buffer):
            bodyBytes += buffer.readableBytes
        case .end:
            readingBody = false
        }
        scheduleCheck()
        context.fireChannelRead(data)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        guard case .end = unwrapOutboundIn(data) else {
            context.write(data, promise: promise)
            return
        }
        requestsInProgress = max(0, requestsInProgress - 1)
        if closeAfterResponse {
            closing = true
            context.writeAndFlush(data, promise: promise)
            context.close(promise: nil)
            return
        }
        if requestsInProgress == 0 { idleSince = .now() }
        context.write(data, promise: promise)
        scheduleCheck()
    }

    /// A request the HTTP parser refused, while no response is in progress: answered here with a problem (431 for
    /// an oversized head, 400 otherwise) and the connection closed. Other errors go on to Hummingbird.
    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        guard let parseError = error as? HTTPParserError, requestsInProgress == 0, !closing else {
            context.fireErrorCaught(error)
            return
        }
        let problem: ProblemError
        if parseError == .headerOverflow {
            problem = ProblemError(.init(code: 431, reasonPhrase: "Request Header Fields Too Large"),
                                   slug: "header-too-large", title: "Request header fields too large",
                                   detail: "the request head is larger than this server accepts (\(limits.maxHeaderBytes) bytes)")
        } else {
            problem = ProblemError.badRequest("the request is not valid HTTP/1.1 (\(parseError))")
        }
        logger.debug("refused an unparsable request", metadata: ["error": "\(parseError)"])
        answerAndClose(problem, context: context)
    }

    // MARK: Bytes (from ByteTap)

    /// Raw bytes arrived.
    func bytesArrived() {
        let now = NIODeadline.now()
        lastBytesAt = now
        waitingSince = nil
        if !readingBody && headStartedAt == nil { headStartedAt = now }
        scheduleCheck()
    }

    /// The channel asked the socket for more bytes: from now on the server waits for the client.
    func readRequested() {
        if waitingSince == nil { waitingSince = .now() }
        scheduleCheck()
    }

    // MARK: Timeouts

    /// The next deadline, or nil when nothing is timed (the server is working, or holds reads back).
    private func nextDeadline() -> (NIODeadline, Timeout)? {
        guard !closing, let waitingSince else { return nil }
        if readingBody {
            return (max(waitingSince, lastBytesAt) + limits.bodyTimeout.timeAmount, .body)
        }
        if let headStartedAt {
            return (headStartedAt + limits.headerTimeout.timeAmount, .header)
        }
        if requestsInProgress == 0 {
            return (idleSince + limits.idleTimeout.timeAmount, .idle)
        }
        return nil
    }

    /// Makes sure a check runs by the next deadline (a later check is replaced by an earlier one).
    private func scheduleCheck() {
        guard let context, let (deadline, _) = nextDeadline() else { return }
        if let check, check.deadline <= deadline { return }
        check?.task.cancel()
        let task = context.eventLoop.assumeIsolated().scheduleTask(deadline: deadline) { [self] in
            check = nil
            runCheck()
        }
        check = (deadline, task)
    }

    private func runCheck() {
        guard let context, let (deadline, timeout) = nextDeadline() else { return }
        guard deadline <= .now() else {
            scheduleCheck()
            return
        }
        switch timeout {
        case .idle:
            logger.debug("closing an idle connection", metadata: ["timeout_s": "\(limits.idleTimeout.seconds)"])
            closing = true
            context.close(promise: nil)
        case .header:
            logger.debug("request head timed out", metadata: ["timeout_s": "\(limits.headerTimeout.seconds)"])
            let problem = ProblemError.requestTimeout(
                "the request head did not arrive in full within \(limits.headerTimeout.seconds) s")
            if requestsInProgress == 0 {
                answerAndClose(problem, context: context)
            } else {
                closing = true
                context.close(promise: nil)
            }
        case .body:
            logger.debug("request body timed out", metadata: ["timeout_s": "\(limits.bodyTimeout.seconds)"])
            let received = declaredBodyLength.map { "\(bodyBytes) of \($0) bytes" } ?? "\(bodyBytes) bytes"
            let problem = ProblemError.requestTimeout(
                "the request body stopped arriving: nothing for \(limits.bodyTimeout.seconds) s after \(received)")
            if requestsInProgress > 0 {
                // The handler is still reading this request: its body read fails with the problem, which it answers;
                // the connection closes once that answer is written. Waiting on this body is over either way.
                closeAfterResponse = true
                readingBody = false
                context.fireErrorCaught(problem)
            } else {
                // Already answered (the route did not need the body): nothing more to say.
                closing = true
                context.close(promise: nil)
            }
        }
    }

    /// Writes `problem` as a whole response (`Connection: close`), then closes the connection.
    private func answerAndClose(_ problem: ProblemError, context: ChannelHandlerContext) {
        closing = true
        let body = (try? JSON.encode(problem.details)) ?? Data()
        var fields = HTTPFields()
        fields[.contentType] = SyncHTTP.problemMediaType
        fields[.contentLength] = "\(body.count)"
        fields[.connection] = "close"
        context.write(wrapOutboundOut(.head(HTTPResponse(status: problem.status, headerFields: fields))), promise: nil)
        context.write(wrapOutboundOut(.body(ByteBuffer(bytes: body))), promise: nil)
        context.writeAndFlush(wrapOutboundOut(.end(nil))).assumeIsolated().whenComplete { _ in
            context.close(promise: nil)
        }
    }
}

/// The first handler of a connection (after TLS): tells the ``RequestGuard`` when bytes arrive and when the channel
/// asks for more. It passes everything on untouched.
final class ByteTap: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let requestGuard: RequestGuard

    init(_ requestGuard: RequestGuard) {
        self.requestGuard = requestGuard
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        requestGuard.bytesArrived()
        context.fireChannelRead(data)
    }

    func read(context: ChannelHandlerContext) {
        requestGuard.readRequested()
        context.read()
    }
}

// MARK: - Helpers

extension Duration {
    /// As NIO's time amount.
    var timeAmount: TimeAmount {
        let (seconds, attoseconds) = components
        return .nanoseconds(seconds * 1_000_000_000 + attoseconds / 1_000_000_000)
    }

    /// Seconds, as a short number for messages (`10`, `0.5`).
    var seconds: String {
        let (seconds, attoseconds) = components
        let value = Double(seconds) + Double(attoseconds) / 1e18
        return value == value.rounded() ? String(Int64(value)) : String(format: "%g", value)
    }
}
